"""Helpers shared by the benchmarks in bench/: machine and build facts, statistics, ratio
formatting, the sandcell gateway's listening line, a keep-alive HTTP client for the task API."""
import datetime
import http.client
import json
import os
import platform
import re
import select
import socket
import subprocess
import threading
import time

SANDCELL_LISTEN_RE = re.compile(r"^sandcell (\S+) listening on http://127\.0\.0\.1:(\d+)/\?token=(\S*)$")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.1f}x"


def git_rev(path):
    try:
        out = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )
        rev = out.stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def meson_build_type(builddir):
    """e.g. 'debugoptimized' or 'debug, sanitize=address' from meson-info; None if unknown."""
    try:
        with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    text = str(opts.get("buildtype", "?"))
    if opts.get("b_sanitize") not in (None, "none", ""):
        text += f", sanitize={opts['b_sanitize']}"
    return text


def percentile(samples, p, empty=None):
    """Linear interpolation between closest ranks (numpy's default method); empty when there
    are no samples."""
    s = sorted(samples)
    if not s:
        return empty
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def machine_info():
    """CPU model, usable CPUs, kernel and the time of the run."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "nproc": nproc,
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_marked(path, report, begin, end):
    """Replaces the region of path between the markers begin and end with report (markers
    kept); appends the region, with its markers, when path has none (or does not exist)."""
    block = f"{begin}\n{report}{end}\n"
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        _, tail = rest.split(end, 1)
        tail = tail.lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def sandcell_listening(proc, token, timeout):
    """Waits for the first line a sandcell gateway started with stdout=PIPE prints,
    `sandcell VERSION listening on http://127.0.0.1:PORT/?token=T`; a daemon thread keeps
    draining its stdout afterwards. Returns (version, port). Raises TimeoutError when no line
    came within timeout seconds or the process exited first, ValueError when the line is not
    that one or has another token."""
    lines = []
    got = threading.Event()

    def reader():
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            got.set()

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not got.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise TimeoutError(f"sandcell printed no listening line within {timeout:.0f}s "
                               f"(exit status {proc.poll()})")
    m = SANDCELL_LISTEN_RE.match(lines[0])
    if not m or m.group(3) != token:
        raise ValueError(f"sandcell's first line is {lines[0]!r}, expected "
                         "'sandcell VERSION listening on http://127.0.0.1:PORT/?token=T'")
    return m.group(1), int(m.group(2))


class KeepAliveHTTP:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (http.client) with TCP_NODELAY and
    `Authorization: token T`, for timing requests such as the task API's `POST /python/execute`.

    Before each request it checks, as urllib3 does, whether the server closed the connection
    while it sat idle (the socket is readable: EOF); such a connection is reopened, and counted
    in `reconnects`."""

    def __init__(self, port, token, timeout):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        self.connects = 0
        self.last_t1 = None  # perf_counter seconds when the last answer was complete

    @property
    def reconnects(self):
        return max(0, self.connects - 1)

    def post(self, path, body):
        """(ns from sending the request until the whole body was read, status, decoded JSON or
        None); raises OSError or http.client.HTTPException (the connection is then closed)."""
        sock = self.conn.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self.conn.close()
        if self.conn.sock is None:
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1
        try:
            t0 = time.perf_counter_ns()
            self.conn.request("POST", path, body=body, headers=self.headers)
            r = self.conn.getresponse()
            data = r.read()
            t1 = time.perf_counter_ns()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        self.last_t1 = t1 / 1e9
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            obj = None
        return t1 - t0, r.status, obj

    def close(self):
        self.conn.close()


def execute_task_body(code):
    """The body of a one-shot `POST /python/execute` (or a /python/ws message's task)."""
    return json.dumps({"task": {"type": "execute", "code": code}}).encode()


def execute_task_problem(status, obj, stdout):
    """None when a one-shot execute answered HTTP 200 with success and exactly stdout, else a
    short description of what is wrong."""
    if status != 200:
        return f"HTTP {status}: {json.dumps(obj)[:300] if obj is not None else ''}"
    if not isinstance(obj, dict):
        return "the result is not a JSON object"
    if obj.get("success") is not True or obj.get("stdout") != stdout:
        return (f"success {obj.get('success')!r}, stdout {obj.get('stdout')!r}, "
                f"stderr {str(obj.get('stderr'))[:200]!r}, exit_code {obj.get('exit_code')!r}")
    return None
