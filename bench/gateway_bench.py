#!/usr/bin/python3
"""Gateway benchmark: the sandcell gateway against Debian's jupyter-server + ipykernel.

Run with Debian's interpreter (it has python3-websocket, jupyter-server 1.23, ipykernel 6.17):

    /usr/bin/python3 bench/gateway_bench.py --builddir build-release          # about 10 minutes
    /usr/bin/python3 bench/gateway_bench.py --builddir build-release --quick  # about 2 minutes

Both servers are driven the same way, as a browser drives Jupyter: REST over HTTP and one
WebSocket per kernel on /api/kernels/{id}/channels with the `v1.kernel.websocket.jupyter.org`
subprotocol (binary frames; the encoder and decoder are written here). In one run it measures,
for each server:

  start        POST /api/kernels -> WebSocket opened -> kernel_info_request sent -> its
               kernel_info_reply received (N starts each, alternating between the servers);
  execute      `1+1`: execute_request sent -> execute_reply AND iopub status idle received
               (warm-up, then M round trips each, in alternating blocks);
  one-shot     sandcell only: `POST /python/execute` of `print(1)` until the whole result;
  first byte   `print('x')`: execute_request sent -> first stream message received;
  streaming    a cell writing 50 MB to stdout in 1 MB writes: MB/s of stream text received,
               execute_request sent -> idle;
  sessions     10, 100 and 1000 kernels (--sessions), one WebSocket each, started 16 at a time
               and all looping `1+1` for a fixed time from one client thread (an epoll loop):
               executes/s and latency; a level a server cannot fit in this machine's memory or
               in the time limit is not run, with the reason computed from the levels measured;
  memory       at each level, with the sessions connected and idle: PSS per kernel (all of a
               kernel's processes), the server's own RSS.

Prints a markdown report (stdout; progress goes to stderr). Exits non-zero only when something
could not be measured, never because a target was missed. See bench/README.md.
"""

import argparse
import concurrent.futures
import datetime
import gc
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import secrets
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import machine_info as benchlib_machine_info  # noqa: E402
from benchlib import percentile, fmt_ratio, git_rev, loadavg, meson_build_type, write_marked  # noqa: E402
from benchlib import KeepAliveHTTP, execute_task_body, execute_task_problem  # noqa: E402
from benchlib import sandcell_listening  # noqa: E402

try:
    import websocket  # Debian: python3-websocket (websocket-client)
except ImportError as exc:  # wrong interpreter
    sys.exit(
        f"gateway_bench: cannot import websocket ({exc}).\n"
        "Install Debian's python3-websocket and run it with /usr/bin/python3 bench/gateway_bench.py"
    )

SANDCELL = "sandcell"
JUPYTER = "jupyter"
LABEL = {SANDCELL: "sandcell", JUPYTER: "jupyter-server + ipykernel"}
SHORT = {SANDCELL: "sandcell", JUPYTER: "jupyter-server"}
KERNEL_NAME = {SANDCELL: "sandcell", JUPYTER: "python3"}
V1 = "v1.kernel.websocket.jupyter.org"
CODE = "1+1"
FIRST_BYTE_CODE = "print('x')"
ONESHOT_CODE = "print(1)"
MARK_BEGIN = "<!-- gateway_bench:begin -->"
MARK_END = "<!-- gateway_bench:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000  # the issue's targets are in MB; memory is reported in MiB, as smaps counts it
MIB = 1 << 20

# The issue's targets: printed next to the measured values, never asserted.
TARGET_START_MS = 5.0  # kernel start p50, with the pool (the default)
TARGET_EXEC_MS = 0.5  # execute `1+1` p50
TARGET_ONESHOT_MS = 10.0  # one-shot POST /python/execute p50
TARGET_STREAM_MBS = 200.0  # stdout MB/s reaching the client
TARGET_FIRST_MS = 5.0  # first stream message
TARGET_PSS_MB = 8.0  # PSS per idle kernel
TARGET_SESSIONS = 1000  # sessions at once ...
TARGET_GATEWAY_RSS_MB = 200.0  # ... with the gateway's RSS below this
TARGET_RATIO = 20.0  # every figure this many times better than jupyter-server

# Small counts for --quick; the defaults are the full run. An option given on the command
# line wins over both.
FULL = {"starts": 20, "iters": 300, "warmup": 20, "first_byte_runs": 50, "stream_mb": 50,
        "stream_runs": 3, "oneshot_iters": 100, "oneshot_warmup": 5, "sessions": "10,100,1000",
        "seconds": 10.0, "load_warmup": 2.0, "ramp_limit": 300.0}
QUICK = {"starts": 5, "iters": 100, "warmup": 10, "first_byte_runs": 20, "stream_mb": 20,
         "stream_runs": 1, "oneshot_iters": 30, "oneshot_warmup": 3, "sessions": "10,50",
         "seconds": 3.0, "load_warmup": 1.0, "ramp_limit": 90.0}

SANDCELL_PROBLEM_RE = re.compile(r"sandcell\[\d+\] (warning|error): (.*)")
SANDCELL_POOL_RE = re.compile(r"info: kernel (\S+) \(\S+\) from the pool")
JUPYTER_PROBLEM_RE = re.compile(r"^\[([WEC]) [^\]]*\] (.*)")
SANDCELL_WS_DROPPED_RE = re.compile(r"info: kernel \S+: client disconnected")
KERNEL_FILE_RE = re.compile(r"kernel-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json")


class MeasureError(Exception):
    """Something could not be measured (a server did not start, a reply timed out, ...)."""


class WSClosed(MeasureError):
    pass


def log(msg):
    print(f"[gateway_bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# statistics / formatting
# --------------------------------------------------------------------------


def mean(samples):
    return sum(samples) / len(samples) if samples else None


def median(samples):
    return percentile(samples, 50)


def div(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt_num(v, digits):
    return "n/a" if v is None else f"{v:,.{digits}f}".replace(",", " ")


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid, utime+stime ticks, starttime) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def process_table():
    """({pid: stat}, {ppid: [pids]}) of every live process."""
    stats, kids = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] not in ("Z", "X"):
                stats[int(name)] = st
                kids.setdefault(st[1], []).append(int(name))
    return stats, kids


def subtree(kids, pid):
    """pid's descendants (not pid itself) in a process table's {ppid: [pids]}."""
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def descendants(pid):
    """{pid: starttime} of every live descendant of pid."""
    stats, kids = process_table()
    return {p: stats[p][3] for p in subtree(kids, pid) if p in stats}


def alive(pid, starttime):
    st = proc_stat(pid)
    return bool(st) and st[3] == starttime and st[0] not in ("Z", "X")


def smaps_rollup(pid):
    """(rss_kib, pss_kib) of one process, or None if it is gone."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return None
    if rss is None or pss is None:
        return None
    return rss, pss


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def meminfo(key):
    """A /proc/meminfo field in KiB, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_info():
    """benchlib's machine facts, the machine's memory, and whether the scheduler groups
    processes by session (autogroup: every sandcell kernel and every ipykernel is in a session
    of its own, so then each gets as much CPU as the whole server)."""
    info = benchlib_machine_info()
    total = meminfo("MemTotal")
    info["memory"] = "?" if total is None else f"{total / MIB:.1f} GiB RAM"
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            info["autogroup"] = "on" if f.read().strip() == "1" else "off"
    except OSError:
        info["autogroup"] = "?"
    return info


def pkg_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard limit: the client holds a socket per session, and both
    servers inherit the limit. Returns (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as exc:
            log(f"cannot raise the open-file limit from {soft} to {want}: {exc}")
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------
# v1.kernel.websocket.jupyter.org framing
# --------------------------------------------------------------------------


def v1_encode(channel, parts):
    """u64le n | u64le offset[n] | channel | parts...; n = len(parts) + 2.

    offset[0] = 8 * (1 + n) is where the channel starts, offset[i + 1] where part i starts,
    and the last offset is the total length. parts: header, parent_header, metadata, content
    (JSON, UTF-8), then any buffers.
    """
    chunks = [channel] + list(parts)
    n = len(chunks) + 1
    offsets = [8 * (1 + n)]
    for c in chunks:
        offsets.append(offsets[-1] + len(c))
    return struct.pack(f"<{1 + n}Q", n, *offsets) + b"".join(chunks)


def v1_decode(data):
    """(channel, [parts]) of one v1 message; raises MeasureError on a malformed one."""
    size = len(data)
    if size < 8:
        raise MeasureError(f"v1 message of {size} bytes")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 2 or 8 * (1 + n) > size:
        raise MeasureError(f"v1 message: {n} offsets in {size} bytes")
    offs = struct.unpack_from(f"<{n}Q", data, 8)
    if offs[0] != 8 * (1 + n) or offs[-1] != size or any(b < a for a, b in zip(offs, offs[1:])):
        raise MeasureError(f"v1 message: bad offsets {offs[:8]!r} for {size} bytes")
    channel = data[offs[0] : offs[1]]
    return channel, [data[offs[i] : offs[i + 1]] for i in range(1, n - 1)]


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def execute_content(code):
    return json.dumps({
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True,
    }).encode()


# --------------------------------------------------------------------------
# WebSocket connection (handshake by websocket-client, frames handled here)
# --------------------------------------------------------------------------


class Conn:
    """One WebSocket to /api/kernels/{id}/channels with the v1 subprotocol.

    websocket-client does the HTTP upgrade (it reads the response a byte at a time, so nothing
    past the handshake is left in its buffers); then the socket is non-blocking and frames are
    read here from large recv()s, several per system call, so that one client thread can
    drive many connections. Server pings are answered. Only the header and parent header of
    each message are decoded unless the caller asks for the content.
    """

    def __init__(self, server, kernel_id, timeout):
        self.server = server
        self.kernel_id = kernel_id
        self.session = uuid.uuid4().hex
        url = (f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
               f"?session_id={self.session}")
        try:
            self.ws = websocket.create_connection(
                url, timeout=timeout, subprotocols=[V1],
                header=[f"Authorization: token {server.token}"],
                sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                skip_utf8_validation=True, enable_multithread=False,
            )
        except (OSError, websocket.WebSocketException) as exc:
            raise MeasureError(f"{SHORT[server.kind]}: WebSocket to kernel {kernel_id}: {exc!r}")
        if self.ws.getsubprotocol() != V1:
            self.ws.close()
            raise MeasureError(f"{SHORT[server.kind]}: offered {V1}, got {self.ws.getsubprotocol()!r}")
        self.sock = self.ws.sock
        if self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0:
            raise MeasureError("TCP_NODELAY is not set on the client socket")
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.poller = select.poll()  # poll, not select: a client may hold more than 1024 fds
        self.poller.register(self.fd, select.POLLIN)
        self.out_poller = None
        self.buf = bytearray()
        self.frag = None
        self.closed = False
        self.quickack = False  # re-arm TCP_QUICKACK after every read (see README)
        self.header_prefix = (f'{{"username":"bench","session":"{self.session}",'
                              '"version":"5.3","msg_type":"').encode()

    # ---- sending --------------------------------------------------------

    def _send_frame(self, opcode, payload, timeout=30.0):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = os.urandom(4)
        if n:
            k = int.from_bytes((key * (n // 4 + 1))[:n], "little")
            payload = (int.from_bytes(payload, "little") ^ k).to_bytes(n, "little")
        data = memoryview(head + key + payload)
        deadline = None
        while data:
            try:
                sent = self.sock.send(data)
                data = data[sent:]
            except BlockingIOError:
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MeasureError(f"{SHORT[self.server.kind]}: send blocked for {timeout:.0f}s")
                if self.out_poller is None:
                    self.out_poller = select.poll()
                    self.out_poller.register(self.fd, select.POLLOUT)
                self.out_poller.poll(max(1, int(left * 1000) + 1))
            except OSError as exc:
                raise WSClosed(f"{SHORT[self.server.kind]}: send failed: {exc!r}")

    def send(self, channel, msg_type, content=b"{}"):
        """Sends one message; returns its msg_id. content: JSON bytes."""
        mid = uuid.uuid4().hex
        header = (self.header_prefix + msg_type.encode()
                  + f'","msg_id":"{mid}","date":"{now_iso()}"}}'.encode())
        self._send_frame(0x2, v1_encode(channel.encode(), [header, b"{}", b"{}", content]))
        return mid

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self._send_frame(0x8, struct.pack("!H", 1000), timeout=1.0)
        except MeasureError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- receiving ------------------------------------------------------

    def _parse(self):
        """Complete messages in the buffer, as payload bytes; answers pings."""
        out = []
        buf = self.buf
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            ln = b1 & 0x7F
            hp = pos + 2
            if ln == 126:
                if end - hp < 2:
                    break
                ln = int.from_bytes(buf[hp : hp + 2], "big")
                hp += 2
            elif ln == 127:
                if end - hp < 8:
                    break
                ln = int.from_bytes(buf[hp : hp + 8], "big")
                hp += 8
            if b1 & 0x80:
                raise MeasureError(f"{SHORT[self.server.kind]}: server sent a masked frame")
            if end - hp < ln:
                break
            payload = bytes(buf[hp : hp + ln])
            pos = hp + ln
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise WSClosed(f"{SHORT[self.server.kind]}: server closed the WebSocket "
                               f"(code {code}, {payload[2:].decode(errors='replace')!r})")
            elif opcode == 0x0:
                if self.frag is None:
                    raise MeasureError(f"{SHORT[self.server.kind]}: continuation without a start")
                self.frag.append(payload)
                if fin:
                    out.append(b"".join(self.frag))
                    self.frag = None
            elif fin:
                out.append(payload)
            else:
                self.frag = [payload]
        if pos:
            del buf[:pos]
        return out

    def read_ready(self):
        """One recv() of whatever is there; returns the complete messages it made."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise WSClosed(f"{SHORT[self.server.kind]}: recv failed: {exc!r}")
        if not data:
            raise WSClosed(f"{SHORT[self.server.kind]}: server closed the connection")
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self.buf += data
        return self._parse()

    def recv(self, deadline):
        """Messages (at least one) received before deadline (perf_counter seconds)."""
        while True:
            msgs = self.read_ready()
            if msgs:
                return msgs
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            self.poller.poll(max(1, int(left * 1000) + 1))

    # ---- requests -------------------------------------------------------

    def request_reply(self, msg_type, reply_type, timeout, channel="shell"):
        """Sends msg_type, returns the decoded reply content (other messages are skipped)."""
        deadline = time.perf_counter() + timeout
        mid = self.send(channel, msg_type)
        while True:
            try:
                msgs = self.recv(deadline)
            except TimeoutError:
                raise MeasureError(f"{SHORT[self.server.kind]}: no {reply_type} within {timeout:.0f}s")
            for data in msgs:
                ch, parts = v1_decode(data)
                header = json.loads(parts[0])
                if header.get("msg_type") == reply_type and json.loads(parts[1]).get("msg_id") == mid:
                    return json.loads(parts[3])

    def run(self, code, timeout, mode="plain"):
        """Executes code; waits for execute_reply and status idle.

        mode 'plain': returns ns from send to done.
        mode 'first': returns ns from send to the first stream message.
        mode 'stream': returns (ns, stdout chars, stderr texts) and decodes every stream.
        mode 'full': returns (ns, reply content, [(msg_type, content)] of iopub).
        """
        content = execute_content(code)
        timeout_s = timeout
        t0 = time.perf_counter_ns()
        deadline = time.perf_counter() + timeout_s
        mid = self.send("shell", "execute_request", content)
        reply = None
        idle = False
        first = None
        chars = 0
        stderr = []
        seen = []
        while reply is None or not idle:
            try:
                msgs = self.recv(deadline)
            except TimeoutError:
                raise MeasureError(
                    f"{SHORT[self.server.kind]}: no "
                    + ("execute_reply" if reply is None else "idle status")
                    + f" for {code!r} within {timeout_s:.0f}s")
            for data in msgs:
                ch, parts = v1_decode(data)
                if json.loads(parts[1]).get("msg_id") != mid:
                    continue
                mtype = json.loads(parts[0]).get("msg_type")
                if mtype == "stream":
                    if first is None:
                        first = time.perf_counter_ns()
                    if mode == "stream":
                        c = json.loads(parts[3])
                        if c.get("name") == "stdout":
                            chars += len(c.get("text", ""))
                        else:
                            stderr.append(c.get("text", ""))
                elif mtype == "status":
                    if json.loads(parts[3]).get("execution_state") == "idle":
                        idle = True
                elif mtype == "execute_reply":
                    reply = json.loads(parts[3])
                if mode == "full" and ch == b"iopub":
                    seen.append((mtype, json.loads(parts[3])))
        t1 = time.perf_counter_ns()
        if reply.get("status") != "ok":
            raise MeasureError(f"{SHORT[self.server.kind]}: {code!r}: execute_reply {reply!r}")
        if mode == "first":
            if first is None:
                raise MeasureError(f"{SHORT[self.server.kind]}: {code!r} produced no stream message")
            return first - t0
        if mode == "stream":
            return t1 - t0, chars, stderr
        if mode == "full":
            return t1 - t0, reply, seen
        return t1 - t0


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------


class Server:
    """One gateway under test. stop() always runs (the Bench keeps a list)."""

    def __init__(self, bench, kind):
        self.bench = bench
        self.kind = kind
        self.dir = os.path.join(bench.tmp, kind)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "server.log")
        self.token = secrets.token_hex(16)
        self.proc = None
        self.port = None
        self.version = None
        self.seen = {}  # pid -> starttime of every descendant seen (kernels)
        self.kernels = set()  # ids of kernels started and not deleted
        self.argv = None

    # ---- life cycle -------------------------------------------------------

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDCELL_", "JUPYTER"))}
        env["IPYTHONDIR"] = os.path.join(self.dir, "ipython")
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(self.dir, "runtime")
        env["JUPYTER_CONFIG_DIR"] = os.path.join(self.dir, "config")
        env["JUPYTER_DATA_DIR"] = os.path.join(self.dir, "data")
        env["JUPYTER_NO_CONFIG"] = "1"
        env["TMPDIR"] = self.dir  # jupyter_core leaves a jupyter-clean-cfg-* directory there
        return env

    def start(self, timeout):
        for d in ("ipython", "runtime", "config", "data", "root"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.bench.servers.append(self)
        if self.kind == SANDCELL:
            self._start_sandcell(timeout)
        else:
            self._start_jupyter(timeout)
        self.wait_answering(timeout)
        log(f"{SHORT[self.kind]} up on port {self.port} (pid {self.proc.pid})")

    def _start_sandcell(self, timeout):
        a = self.bench.args
        self.argv = [self.bench.gateway_path, "--ip", "127.0.0.1", "--port", "0", "--token", self.token,
                     "--runtime-dir", os.path.join(self.dir, "runtime"),
                     "--history-db", os.path.join(self.dir, "history.sqlite3"),
                     "--max-kernels", str(max_kernels_for(a.session_levels))]
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=logf, env=self.env(), cwd=os.path.join(self.dir, "root"),
                                         start_new_session=True)
        try:
            self.version, self.port = sandcell_listening(self.proc, self.token, timeout)
        except TimeoutError as exc:
            raise MeasureError(f"{exc}:\n{self.log_tail()}")
        except ValueError as exc:
            raise MeasureError(str(exc))

    def _start_jupyter(self, timeout):
        a = self.bench.args
        spec = os.path.join(self.dir, "data", "kernels", "python3")
        os.makedirs(spec)
        with open(os.path.join(spec, "kernel.json"), "w") as f:
            json.dump({"argv": [a.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "Python 3 (ipykernel)", "language": "python"}, f, indent=1)
        self.port = free_port()
        self.argv = [a.python, "-m", "jupyter_server",
                     "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                     "--ServerApp.port_retries=0", f"--ServerApp.token={self.token}",
                     "--ServerApp.password=", "--ServerApp.open_browser=False",
                     "--ServerApp.allow_root=True", "--ServerApp.limit_rate=False",
                     f"--ServerApp.root_dir={os.path.join(self.dir, 'root')}"]
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=self.env(),
                                         cwd=os.path.join(self.dir, "root"), start_new_session=True)
        self.version = pkg_version("jupyter_server")

    def wait_answering(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MeasureError(f"{SHORT[self.kind]} exited with status {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                st, body = self.rest("GET", "/api/kernelspecs", timeout=5)
                if st == 200:
                    specs = body.get("kernelspecs", {})
                    name = KERNEL_NAME[self.kind]
                    if name not in specs:
                        raise MeasureError(f"{SHORT[self.kind]} has no kernelspec {name!r}: {sorted(specs)}")
                    self.kernelspec_argv = specs[name].get("spec", {}).get("argv")
                    return
                last = st
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise MeasureError(f"{SHORT[self.kind]} did not answer within {timeout:.0f}s (last: {last!r}):\n"
                           f"{self.log_tail()}")

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_lines(self, start=0):
        """The log's lines from byte offset start on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def log_problems(self, start=0):
        """{message: count} of the warnings and errors the server logged from offset start on
        (sandcell: `sandcell[PID] warning|error: ...`; jupyter-server: `[W|E|C ...] ...`), with
        ids, numbers and addresses folded so that repeats of one problem count together."""
        rx = SANDCELL_PROBLEM_RE if self.kind == SANDCELL else JUPYTER_PROBLEM_RE
        out = {}
        for line in self.log_lines(start):
            m = rx.search(line)
            if m:
                text = f"{m.group(1)}: {m.group(2)}"
                text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)
                text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)[:300]
                out[text] = out.get(text, 0) + 1
        return out

    def count_log(self, rx, start=0):
        """Lines of the log from offset start on that match the regular expression rx."""
        return sum(1 for line in self.log_lines(start) if rx.search(line))

    def pooled_ids(self, start=0):
        """Ids of the kernels sandcell logged as handed out from its pool, from offset start on."""
        if self.kind != SANDCELL:
            return set()
        return {m.group(1) for m in map(SANDCELL_POOL_RE.search, self.log_lines(start)) if m}

    def snapshot(self):
        if self.proc is not None and self.proc.poll() is None:
            self.seen.update(descendants(self.proc.pid))

    def kernel_pids(self):
        return list(descendants(self.proc.pid)) if self.proc.poll() is None else []

    def stop(self, wait):
        """SIGTERM, then SIGKILL, the server; then every kernel process it had, by pid."""
        if self.proc is None:
            return
        self.snapshot()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                log(f"{SHORT[self.kind]} (pid {self.proc.pid}) still running {wait:.0f}s after SIGTERM: SIGKILL")
                self.proc.kill()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    log(f"pid {self.proc.pid} did not die after SIGKILL")
        left = {p: s for p, s in self.seen.items() if alive(p, s)}
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = {p: s for p, s in left.items() if alive(p, s)}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not left:
                break
            log(f"{SHORT[self.kind]}: {len(left)} kernel process(es) left after the server stopped: "
                f"{signal.Signals(sig).name} to {sorted(left)}")
            for p in left:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 3
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = {p: s for p, s in left.items() if alive(p, s)}
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    # ---- REST ---------------------------------------------------------------

    def rest(self, method, path, body=None, timeout=30.0):
        """(status, decoded JSON or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {"Authorization": f"token {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
        finally:
            conn.close()
        return r.status, (json.loads(payload) if payload else None)

    def delete_kernel(self, kid, timeout):
        try:
            st, body = self.rest("DELETE", f"/api/kernels/{kid}", timeout=timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise MeasureError(f"{SHORT[self.kind]}: DELETE kernel {kid}: {exc!r}")
        if st not in (204, 404):
            raise MeasureError(f"{SHORT[self.kind]}: DELETE kernel {kid}: {st} {body!r}")
        self.kernels.discard(kid)


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------


def max_kernels_for(levels):
    """sandcell's --max-kernels for a run: the largest level and room for kernels still
    shutting down (its default, 64, when that is more)."""
    return max(64, max(levels) + 64)


class Prober:
    """While a phase runs, a thread asks the server `GET /api` (its cheapest request) every
    interval seconds on a fresh connection and records how long the answer took: a server
    whose event loop is blocked or starved answers late, or not within the timeout."""

    def __init__(self, server, interval=2.0, timeout=10.0):
        self.server = server
        self.interval = interval
        self.timeout = timeout
        self.ms = []
        self.failures = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_event.wait(self.interval):
            t0 = time.perf_counter()
            try:
                st, _ = self.server.rest("GET", "/api", timeout=self.timeout)
                if st == 200:
                    self.ms.append((time.perf_counter() - t0) * 1e3)
                else:
                    self.failures.append(f"HTTP {st}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.failures.append(f"{type(exc).__name__} after {time.perf_counter() - t0:.1f} s")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(self.timeout + 5)

    def result(self):
        return {"n": len(self.ms) + len(self.failures), "p50_ms": percentile(self.ms, 50),
                "max_ms": max(self.ms) if self.ms else None, "failures": self.failures[:5],
                "n_failures": len(self.failures)}


class CPUMeter:
    """CPU used between start() and stop() by the server process, by its kernels (live
    descendants, plus the children it reaped meanwhile: stat fields 16-17), and by this
    client, as shares of one CPU over the wall time."""

    def __init__(self, server):
        self.pid = server.proc.pid

    def _sample(self):
        stats, kids = process_table()
        live = {p: stats[p][2] for p in subtree(kids, self.pid) if p in stats}
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
            rest = raw[raw.rfind(")") + 2 :].split()
            own, reaped = int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])
        except (OSError, IndexError, ValueError):
            own = reaped = 0
        return time.perf_counter(), own, reaped, live, time.process_time()

    def start(self):
        self.t0 = self._sample()
        return self

    def stop(self):
        t1 = self._sample()
        wall = max(1e-9, t1[0] - self.t0[0])
        old = self.t0[3]
        kernels = sum(v - old.get(p, 0) for p, v in t1[3].items()) + (t1[2] - self.t0[2])
        return {"gateway": (t1[1] - self.t0[1]) / CLK_TCK / wall, "kernels": kernels / CLK_TCK / wall,
                "client": (t1[4] - self.t0[4]) / wall, "seconds": wall}


class Bench:
    def __init__(self, args):
        self.args = args
        self.servers = []
        self.conns = []
        self.tmp = None
        self.notes = []
        self.kinfo = {}
        self.results = {}
        self.t_begin = time.monotonic()
        self.unmeasured = []  # what could not be measured: the exit status is then 1

    def setup(self, kinds):
        # the tree's revision when the run starts (others may commit while it runs)
        self.rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
        self.build = meson_build_type(self.args.builddir)
        self.tmp = tempfile.mkdtemp(prefix="sandcell-gwbench-")
        self.srv = {}
        for k in kinds:
            s = Server(self, k)
            s.start(self.args.timeout * 2)
            self.srv[k] = s
        if JUPYTER in kinds:
            argv = self.srv[JUPYTER].kernelspec_argv or []
            if argv[:3] != [self.args.python, "-m", "ipykernel_launcher"]:
                raise MeasureError(f"jupyter-server's python3 kernelspec is {argv!r}, not the one written")
        for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
            if os.environ.get(var):
                self.notes.append(f"{var} was set in the environment and inherited by both servers")

    def cleanup(self):
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for c in self.conns:
                c.close()
            self.conns = []
            for s in self.servers:
                try:
                    s.stop(self.args.shutdown_wait)
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    log(f"stopping {SHORT[s.kind]} failed: {exc!r}")
            if self.tmp and not self.args.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            elif self.tmp:
                log(f"kept {self.tmp}")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def fail(self, server, msg):
        return MeasureError(f"{msg}\n--- last lines of the {SHORT[server.kind]} log ---\n{server.log_tail()}")

    # ---- start ----------------------------------------------------------------

    def timed_start(self, s, timeout, snapshot=True):
        """POST /api/kernels, open the WebSocket, kernel_info. Returns (seconds, id, Conn).
        Safe to call from several threads at once (with snapshot=False)."""
        t0 = time.perf_counter()
        try:
            st, body = s.rest("POST", "/api/kernels", {"name": KERNEL_NAME[s.kind]}, timeout=timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise MeasureError(f"{SHORT[s.kind]}: POST /api/kernels: {exc!r}")
        if st != 201 or not isinstance(body, dict) or "id" not in body:
            raise MeasureError(f"{SHORT[s.kind]}: POST /api/kernels: {st} {json.dumps(body)[:300]}")
        kid = body["id"]
        s.kernels.add(kid)
        left = max(1.0, t0 + timeout - time.perf_counter())
        conn = Conn(s, kid, left)
        self.conns.append(conn)
        try:
            info = conn.request_reply("kernel_info_request", "kernel_info_reply",
                                      max(1.0, t0 + timeout - time.perf_counter()))
        except MeasureError:
            conn.close()
            raise
        elapsed = time.perf_counter() - t0
        if snapshot:
            s.snapshot()
        self.kinfo.setdefault(s.kind, info)
        return elapsed, kid, conn

    def drop(self, s, kid, conn, timeout):
        conn.close()
        if conn in self.conns:
            self.conns.remove(conn)
        s.delete_kernel(kid, timeout)

    def measure_starts(self, kinds):
        a = self.args
        res = {k: [] for k in kinds}
        ids = {k: [] for k in kinds}
        log_from = {k: self.srv[k].log_size() for k in kinds}
        for _ in range(a.start_warmup):
            for k in kinds:
                time.sleep(a.settle)
                t, kid, conn = self.timed_start(self.srv[k], a.timeout)
                self.drop(self.srv[k], kid, conn, a.timeout)
                log(f"warm-up start {SHORT[k]}: {t * 1e3:.1f} ms")
        for i in range(a.starts):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                time.sleep(a.settle)
                t, kid, conn = self.timed_start(self.srv[k], a.timeout)
                self.drop(self.srv[k], kid, conn, a.timeout)
                res[k].append(t * 1e3)
                ids[k].append(kid)
            log(f"start {i + 1}/{a.starts}: " + ", ".join(f"{SHORT[k]} {res[k][-1]:.1f} ms" for k in kinds))
        if SANDCELL in kinds:
            pooled = self.srv[SANDCELL].pooled_ids(log_from[SANDCELL])
            self.results["starts_pooled"] = sum(kid in pooled for kid in ids[SANDCELL])
        return res

    # ---- execute, first byte, streaming -------------------------------------------

    def alternate(self, kinds, conns, step, n, block, warmup):
        """Runs step(kind, conn) n times per server in alternating blocks; returns samples."""
        a = self.args
        out = {k: [] for k in kinds}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for k in kinds:
                time.sleep(a.settle)
                for _ in range(warmup):
                    step(k, conns[k])
            left = {k: n for k in kinds}
            rnd = 0
            while any(left.values()):
                order = kinds if rnd % 2 == 0 else list(reversed(kinds))
                rnd += 1
                for k in order:
                    take = min(block, left[k])
                    if not take:
                        continue
                    left[k] -= take
                    time.sleep(a.settle)
                    step(k, conns[k])  # first after a switch: unrecorded
                    for _ in range(take):
                        out[k].append(step(k, conns[k]))
        finally:
            if gc_was:
                gc.enable()
        return out

    def measure_single(self, kinds):
        a = self.args
        conns, kids = {}, {}
        for k in kinds:
            _, kids[k], conns[k] = self.timed_start(self.srv[k], a.timeout)
        for k in kinds:
            _, reply, seen = conns[k].run(CODE, a.timeout, mode="full")
            text = [c.get("data", {}).get("text/plain") for t, c in seen if t == "execute_result"]
            if text != ["2"]:
                self.notes.append(f"{SHORT[k]}: `{CODE}` produced execute_result {text!r}, expected ['2']")
            _, reply, seen = conns[k].run(FIRST_BYTE_CODE, a.timeout, mode="full")
            out = "".join(c.get("text", "") for t, c in seen if t == "stream")
            if out != "x\n":
                self.notes.append(f"{SHORT[k]}: `{FIRST_BYTE_CODE}` printed {out!r}, expected 'x\\n'")

        def exec_step(k, c):
            return c.run(CODE, a.timeout) / 1e3  # µs

        log(f"execute `{CODE}`: {a.warmup} warm-up + {a.iters} each, blocks of {a.block}")
        lat = self.alternate(kinds, conns, exec_step, a.iters, a.block, a.warmup)
        for k in kinds:
            log(f"execute {SHORT[k]}: p50 {percentile(lat[k], 50):.0f} µs")

        qa = {k: [] for k in kinds}
        if not a.no_quickack_row:
            log(f"execute `{CODE}` with client TCP_QUICKACK: {a.iters} each, blocks of {a.block}")
            for c in conns.values():
                c.quickack = True
            try:
                qa = self.alternate(kinds, conns, exec_step, a.iters, a.block, 5)
            finally:
                for c in conns.values():
                    c.quickack = False
            for k in kinds:
                log(f"execute with TCP_QUICKACK {SHORT[k]}: p50 {percentile(qa[k], 50):.0f} µs")

        def first_step(k, c):
            return c.run(FIRST_BYTE_CODE, a.timeout, mode="first") / 1e3  # µs

        log(f"first byte `{FIRST_BYTE_CODE}`: {a.first_byte_runs} each")
        fb = self.alternate(kinds, conns, first_step, a.first_byte_runs,
                            max(1, min(a.block, (a.first_byte_runs + 1) // 2)), 3)
        for k in kinds:
            log(f"first byte {SHORT[k]}: p50 {percentile(fb[k], 50):.0f} µs")

        mb = a.stream_mb
        code = f"import sys\nfor _ in range({mb}):\n    sys.stdout.write('x' * 1_000_000)\n"
        expect = mb * MB
        stream = {k: [] for k in kinds}
        stream_cpu = {k: [] for k in kinds}
        stream_timeout = max(a.timeout, 10.0 + mb * 1.0)
        log(f"streaming {mb} MB: {a.stream_runs} run(s) each")
        for i in range(a.stream_runs):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                time.sleep(a.settle)
                c0 = time.process_time()
                ns, chars, stderr = conns[k].run(code, stream_timeout, mode="stream")
                cpu = time.process_time() - c0
                secs = ns / 1e9
                stream[k].append(chars / MB / secs)
                stream_cpu[k].append(cpu / secs)
                if chars != expect or stderr:
                    self.notes.append(
                        f"{SHORT[k]}: streaming run {i + 1} delivered {chars} of {expect} stdout "
                        f"characters" + (f"; stderr: {''.join(stderr)[:300]!r}" if stderr else ""))
                log(f"stream {SHORT[k]}: {chars / MB:.1f} MB in {secs:.2f} s = {stream[k][-1]:.0f} MB/s "
                    f"(client CPU {cpu / secs * 100:.0f}%)")
        for k in kinds:
            self.drop(self.srv[k], kids[k], conns[k], a.timeout)
        return lat, qa, fb, stream, stream_cpu

    # ---- one-shot task (sandcell) --------------------------------------------------

    def measure_oneshot(self):
        """`POST /python/execute` of `print(1)` on one keep-alive connection, one after another,
        each after a --settle pause (as for the starts, so the pool has refilled)."""
        a = self.args
        s = self.srv[SANDCELL]
        hc = KeepAliveHTTP(s.port, s.token, a.timeout)
        body = execute_task_body(ONESHOT_CODE)
        res = {"ms": [], "execution_ms": [], "errors": [], "pooled": 0}
        ids = []
        log(f"one-shot `POST /python/execute` of `{ONESHOT_CODE}`: {a.oneshot_warmup} warm-up + "
            f"{a.oneshot_iters}")
        log_from = s.log_size()
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for i in range(a.oneshot_warmup + a.oneshot_iters):
                time.sleep(a.settle)
                try:
                    ns, status, obj = hc.post("/python/execute", body)
                except (OSError, http.client.HTTPException) as exc:
                    res["errors"].append(f"request failed: {exc!r}")
                    continue
                bad = execute_task_problem(status, obj, "1\n")
                if bad:
                    res["errors"].append(bad)
                    continue
                if i >= a.oneshot_warmup:
                    res["ms"].append(ns / 1e6)
                    res["execution_ms"].append((obj.get("execution_time") or 0) * 1e3)
                    ids.append(obj.get("kernel_id"))
        finally:
            if gc_was:
                gc.enable()
            hc.close()
        time.sleep(0.2)  # the last kernel's log lines
        pooled = s.pooled_ids(log_from)
        res["pooled"] = sum(kid in pooled for kid in ids)
        res["reconnects"] = hc.reconnects
        if res["errors"]:
            log(f"one-shot: {len(res['errors'])} error(s), first: {res['errors'][0]}")
        if not res["ms"]:
            raise MeasureError("sandcell: no one-shot task succeeded"
                               + (f" ({res['errors'][0]})" if res["errors"] else ""))
        log(f"one-shot: p50 {percentile(res['ms'], 50):.1f} ms, p99 {percentile(res['ms'], 99):.1f} ms; "
            f"{res['pooled']} of {len(ids)} kernels from the pool")
        return res

    # ---- concurrent sessions + memory ----------------------------------------------

    def elapsed(self):
        return time.monotonic() - self.t_begin

    def measure_sessions(self, k):
        """Grows the number of sessions level by level (--sessions): starts the kernels a level
        adds, warms them with one `1+1` each, runs the load, samples memory. A level that the
        levels before it show would not fit in memory or time is not run, with the reason."""
        a = self.args
        s = self.srv[k]
        out = {"levels": [], "baseline": None, "delete": None}
        conns, kids = [], []
        self.wait_kernels_at_most(s, a.pool_size if k == SANDCELL else 0, a.timeout)
        time.sleep(a.settle)
        out["baseline"] = self.memory(s)
        out["baseline"]["gateway_fds"] = open_fds(s.proc.pid)
        prev = None
        broken = None  # why no further level can run
        try:
            for n in a.session_levels:
                lv = {"n": n, "status": "ok", "reason": None, "running": len(conns)}
                out["levels"].append(lv)
                if broken:
                    lv["status"], lv["reason"] = "not run", broken
                    continue
                why = self.level_unfit(s, n, len(conns), prev, out["baseline"])
                if why:
                    lv["status"], lv["reason"] = "not run", why
                    broken = f"not run: the level below was not run ({why.split(':')[0]})"
                    log(f"{SHORT[k]}: {n} sessions not run: {why}")
                    continue
                log_from = s.log_size()
                limit = min(a.ramp_limit, max(10.0, a.budget - self.elapsed()))
                lv["ramp"] = self.ramp(s, conns, kids, n, limit)
                lv["warm"] = self.drive(s, conns, None, None)
                lv["running"] = len(conns)
                if conns and s.proc.poll() is None:
                    lv["load"] = self.drive(s, conns, a.load_warmup, a.seconds)
                    lv["running"] = len(conns)
                    time.sleep(1.0)
                if s.proc.poll() is None:
                    lv["memory"] = self.memory(s)
                    lv["gateway_fds"] = open_fds(s.proc.pid)
                lv["problems"] = s.log_problems(log_from)
                if k == SANDCELL:
                    lv["ws_dropped"] = s.count_log(SANDCELL_WS_DROPPED_RE, log_from)
                if s.proc.poll() is not None:
                    lv["status"] = "failed"
                    lv["reason"] = (f"{SHORT[k]} exited with status {s.proc.returncode} during this level; "
                                    f"the end of its log: {s.log_tail(1500)!r}")
                    broken = f"not run: {SHORT[k]} had exited"
                    self.unmeasured.append(f"{SHORT[k]} {n} sessions: the server exited")
                    log(f"{SHORT[k]} EXITED (status {s.proc.returncode}) at {n} sessions:\n{s.log_tail()}")
                else:
                    ld = lv.get("load") or {}
                    bad = []
                    if lv["running"] < n:
                        bad.append(f"{lv['running']} of {n} sessions running")
                    if ld.get("stalled"):
                        bad.append(f"{ld['stalled']} session(s) stalled in the load")
                    if lv["running"] and not ld.get("executes"):
                        bad.append("no execute completed in the timed window")
                    if bad:
                        lv["status"], lv["reason"] = "partial", "; ".join(bad)
                        self.unmeasured.append(f"{SHORT[k]} {n} sessions: {lv['reason']}")
                if lv.get("memory"):
                    prev = lv
        finally:
            out["delete"] = self.teardown(s, conns)
        return out

    def level_unfit(self, s, n, running, prev, baseline):
        """Why level n would not fit, from the level measured before it (None: try it)."""
        a = self.args
        if self.elapsed() > a.budget:
            return f"the run has used up its --budget of {a.budget:.0f} s"
        if prev is None or n <= running:
            return None
        more = n - running
        mem = prev["memory"]
        per_kernel = mem["kernels_pss"] / max(1, mem["kernels"])  # KiB
        per_session_gw = max(0, mem["gateway_rss"] - baseline["gateway_rss"]) / max(1, prev["running"])
        need = more * (per_kernel + per_session_gw)
        avail, total = meminfo("MemAvailable"), meminfo("MemTotal")
        if avail is not None and total is not None:
            reserve = total // 10
            if need > avail - reserve:
                return (f"memory: {more} more kernels would need about {need / MIB:.1f} GiB "
                        f"({per_kernel / 1024:.1f} MiB PSS per kernel and {per_session_gw:.0f} KiB of "
                        f"server RSS per session, as measured at {prev['n']} sessions), but "
                        f"{avail / MIB:.1f} GiB are available (MemAvailable) and "
                        f"{reserve / MIB:.1f} GiB (a tenth of the RAM) are kept free")
        r = prev.get("ramp") or {}
        if r.get("added") and r.get("seconds"):
            est = more * r["seconds"] / r["added"]
            if est > 1.5 * a.ramp_limit:
                return (f"time: starting {more} more kernels at the rate measured at {prev['n']} "
                        f"sessions ({r['added'] / r['seconds']:.2f} kernels/s) would take about "
                        f"{est:.0f} s, over the --ramp-limit of {a.ramp_limit:.0f} s")
        return None

    def ramp(self, s, conns, kids, n, limit):
        """Starts kernels until n sessions are connected, --start-concurrency at a time, for at
        most limit seconds; meanwhile reads the sessions already open (so that server pings are
        answered). Returns what it took."""
        a = self.args
        want = n - len(conns)
        r = {"wanted": want, "added": 0, "seconds": 0.0, "start_ms": [], "errors": [], "closed": 0,
             "pooled": 0, "limit": limit, "hit_limit": False}
        if want <= 0:
            return r
        log(f"{SHORT[s.kind]}: starting {want} kernels, {a.start_concurrency} at a time "
            f"(limit {limit:.0f} s)")
        log_from = s.log_size()
        ep = select.epoll()
        by_fd = {}
        for c in conns:
            ep.register(c.fd, select.EPOLLIN)
            by_fd[c.fd] = c
        t0 = time.monotonic()
        deadline = t0 + limit
        futs = set()
        submitted = 0
        stop = None
        last_log = t0
        new_ids = []
        meter = CPUMeter(s).start()
        with Prober(s) as probe, \
                concurrent.futures.ThreadPoolExecutor(max_workers=a.start_concurrency) as pool:
            while True:
                now = time.monotonic()
                if stop is None and now >= deadline and submitted < want:
                    stop = f"the ramp limit of {limit:.0f} s was reached"
                    r["hit_limit"] = True
                while stop is None and submitted < want and len(futs) < a.start_concurrency:
                    futs.add(pool.submit(self.timed_start, s, a.session_start_timeout, False))
                    submitted += 1
                if not futs:
                    break
                done, _ = concurrent.futures.wait(futs, timeout=0.02,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    futs.discard(f)
                    try:
                        t, kid, conn = f.result()
                    except MeasureError as exc:
                        r["errors"].append(str(exc).split("\n")[0][:400])
                        if len(r["errors"]) <= 3:
                            log(f"{SHORT[s.kind]}: a kernel start failed: {r['errors'][-1]}")
                        if stop is None and s.proc.poll() is not None:
                            stop = f"{SHORT[s.kind]} exited (status {s.proc.returncode})"
                        elif stop is None and len(r["errors"]) >= a.max_start_errors:
                            stop = f"{len(r['errors'])} kernel starts failed"
                        continue
                    conns.append(conn)
                    kids.append(kid)
                    new_ids.append(kid)
                    r["start_ms"].append(t * 1e3)
                    ep.register(conn.fd, select.EPOLLIN)
                    by_fd[conn.fd] = conn
                for fd, _ in ep.poll(0):
                    c = by_fd.get(fd)
                    try:
                        c.read_ready()  # idle sessions: pings, nothing else expected
                    except WSClosed as exc:
                        r["closed"] += 1
                        log(f"{SHORT[s.kind]}: session {c.kernel_id} closed during the ramp: {exc}")
                        ep.unregister(fd)
                        del by_fd[fd]
                        conns.remove(c)
                if now - last_log >= 10:
                    last_log = now
                    log(f"{SHORT[s.kind]}: {len(conns)} sessions up ({now - t0:.0f} s, "
                        f"{len(r['errors'])} failed starts)")
        ep.close()
        r["cpu"] = meter.stop()
        r["probe"] = probe.result()
        r["seconds"] = time.monotonic() - t0
        r["added"] = len(r["start_ms"])
        r["stopped"] = stop
        pooled = s.pooled_ids(log_from)
        r["pooled"] = sum(kid in pooled for kid in new_ids)
        s.snapshot()
        log(f"{SHORT[s.kind]}: {r['added']} of {want} kernels started in {r['seconds']:.1f} s "
            f"(start p50 {percentile(r['start_ms'], 50) or 0:.0f} ms, p99 "
            f"{percentile(r['start_ms'], 99) or 0:.0f} ms; {len(r['errors'])} failed"
            + (f"; stopped: {stop}" if stop else "") + f"; CPU: server {r['cpu']['gateway'] * 100:.0f}%, "
            f"kernels {r['cpu']['kernels'] * 100:.0f}%, client {r['cpu']['client'] * 100:.0f}%; "
            f"GET /api max {r['probe']['max_ms'] or 0:.0f} ms, {r['probe']['n_failures']} unanswered)")
        return r

    def drive(self, s, conns, warm_s, window_s):
        """Every session loops `1+1` (execute_request -> execute_reply and idle -> the next one)
        from this one thread, on an epoll set. With window_s None: one execute per session, all
        timed (the warm-up round of new sessions). Otherwise for warm_s + window_s seconds, timing
        the round trips that end inside the window. Sessions whose WebSocket closes are removed
        from conns."""
        a = self.args
        once = window_s is None
        content = execute_content(CODE)
        res = {"sessions": len(conns), "latency_ms": [], "per_session": [], "stalled": 0, "closed": 0,
               "exec_errors": 0, "first_error": None, "cpu": None, "executes": 0, "executes_per_s": None}
        if not conns:
            return res
        ep = select.epoll(sizehint=len(conns))
        state = {}  # fd -> [conn, msg_id or None, t0_ns, reply seen, idle seen, count in window]
        timeout_ns = int(a.timeout * 1e9)
        lat = res["latency_ms"]
        dead = []

        def send(c, st):
            st[2] = time.perf_counter_ns()
            st[1] = c.send("shell", "execute_request", content)
            st[3] = st[4] = False

        def error(msg):
            if res["first_error"] is None:
                res["first_error"] = msg
                log(f"{SHORT[s.kind]}: {msg}")

        meter = CPUMeter(s).start()
        probe = Prober(s).__enter__()
        gc_was = gc.isenabled()
        gc.disable()
        try:
            t_start = time.perf_counter_ns()
            t_meas = t_start if once else t_start + int(warm_s * 1e9)
            t_end = t_start if once else t_meas + int(window_s * 1e9)
            busy = 0
            for c in conns:
                st = state[c.fd] = [c, None, 0, False, False, 0]
                ep.register(c.fd, select.EPOLLIN)
                try:
                    send(c, st)
                    busy += 1
                except WSClosed as exc:
                    res["closed"] += 1
                    error(f"session {c.kernel_id}: {exc}")
                    ep.unregister(c.fd)
                    st[1] = None
                    dead.append(c)
            last_check = t_start
            while busy:
                now = time.perf_counter_ns()
                if now - last_check > 500_000_000:
                    last_check = now
                    for fd, st in state.items():
                        if st[1] is not None and now - st[2] > timeout_ns:
                            res["stalled"] += 1
                            error(f"session {st[0].kernel_id} stalled: no "
                                  f"{'execute_reply' if not st[3] else 'idle'} within {a.timeout:.0f}s")
                            st[1] = None
                            busy -= 1
                            ep.unregister(fd)
                    if now > t_end + timeout_ns:
                        break
                for fd, _ in ep.poll(0.1):
                    st = state[fd]
                    c = st[0]
                    try:
                        msgs = c.read_ready()
                    except WSClosed as exc:
                        res["closed"] += 1
                        error(f"session {c.kernel_id}: {exc}")
                        ep.unregister(fd)
                        dead.append(c)
                        if st[1] is not None:
                            st[1] = None
                            busy -= 1
                        continue
                    for data in msgs:
                        if st[1] is None:
                            break
                        ch, parts = v1_decode(data)
                        if json.loads(parts[1]).get("msg_id") != st[1]:
                            continue
                        mtype = json.loads(parts[0]).get("msg_type")
                        if mtype == "execute_reply":
                            st[3] = True
                            status = json.loads(parts[3]).get("status")
                            if status != "ok":
                                res["exec_errors"] += 1
                                error(f"session {c.kernel_id}: execute_reply status {status!r}")
                        elif mtype == "status" and json.loads(parts[3]).get("execution_state") == "idle":
                            st[4] = True
                        if st[3] and st[4]:
                            t1 = time.perf_counter_ns()
                            if once or t_meas <= t1 <= t_end:
                                lat.append((t1 - st[2]) / 1e6)
                                st[5] += 1
                            if t1 < t_end:
                                try:
                                    send(c, st)
                                except WSClosed as exc:
                                    res["closed"] += 1
                                    error(f"session {c.kernel_id}: {exc}")
                                    ep.unregister(fd)
                                    dead.append(c)
                                    st[1] = None
                                    busy -= 1
                            else:
                                st[1] = None
                                busy -= 1
            for fd, st in state.items():
                if st[1] is not None:  # still waiting past the hard end
                    res["stalled"] += 1
        finally:
            if gc_was:
                gc.enable()
            ep.close()
            probe.__exit__()
        res["cpu"] = meter.stop()
        res["probe"] = probe.result()
        wall = res["cpu"]["seconds"]
        if not once:
            res["executes_per_s"] = len(lat) / window_s
        res["per_session"] = [st[5] for st in state.values()]
        res["executes"] = len(lat)
        res["seconds"] = wall
        for c in dead:
            if c in conns:
                conns.remove(c)
        what = "warm-up round" if once else f"load over {window_s:g} s"
        log(f"{SHORT[s.kind]}: {what}, {len(state)} sessions: {len(lat)} executes"
            + ("" if once else f" = {res['executes_per_s']:.0f}/s")
            + f", p50 {percentile(lat, 50) or 0:.1f} ms, p99 {percentile(lat, 99) or 0:.1f} ms"
            + (f"; CPU: server {res['cpu']['gateway'] * 100:.0f}%, kernels {res['cpu']['kernels'] * 100:.0f}%, "
               f"client {res['cpu']['client'] * 100:.0f}%" if res["cpu"] else "")
            + (f"; {res['stalled']} stalled, {res['closed']} closed, {res['exec_errors']} errors"
               if res["stalled"] or res["closed"] or res["exec_errors"] else "")
            + f"; GET /api p50 {res['probe']['p50_ms'] or 0:.0f} ms, max {res['probe']['max_ms'] or 0:.0f} ms, "
            f"{res['probe']['n_failures']} unanswered")
        return res

    def teardown(self, s, conns):
        """Closes the sessions' WebSockets and deletes every kernel of the run through the API,
        --start-concurrency at a time; then waits (bounded) until only pooled kernels are left."""
        a = self.args
        for c in conns:
            c.close()
            if c in self.conns:
                self.conns.remove(c)
        conns.clear()
        kids = list(s.kernels)
        res = {"kernels": len(kids), "seconds": None, "errors": []}
        if s.proc.poll() is not None:
            res["errors"].append("the server had exited")
            return res
        log(f"{SHORT[s.kind]}: deleting {len(kids)} kernels")
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.start_concurrency) as pool:
            for f in [pool.submit(s.delete_kernel, kid, a.timeout * 2) for kid in kids]:
                try:
                    f.result()
                except MeasureError as exc:
                    res["errors"].append(str(exc)[:300])
        res["seconds"] = time.monotonic() - t0
        self.wait_kernels_at_most(s, a.pool_size if s.kind == SANDCELL else 0, a.timeout)
        log(f"{SHORT[s.kind]}: {len(kids)} kernels deleted in {res['seconds']:.1f} s"
            + (f"; {len(res['errors'])} deletions failed, first: {res['errors'][0]}" if res["errors"] else ""))
        if res["errors"]:
            self.notes.append(f"{SHORT[s.kind]}: {len(res['errors'])} kernel deletions failed: {res['errors'][0]}")
        return res

    def server_children(self, s, kids=None):
        """({kernel id: pid}, [other pids]) of the server's direct children: a kernel is a child
        whose command line names its connection file (`kernel-ID.json`, sandcell's and
        ipykernel's alike); the others are helpers (sandcell's zygote)."""
        if kids is None:
            _, kids = process_table()
        kernels, other = {}, []
        for child in kids.get(s.proc.pid, []):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            m = KERNEL_FILE_RE.search(cmd)
            if m:
                kernels[m.group(1)] = child
            else:
                other.append(child)
        return kernels, other

    def wait_kernels_at_most(self, s, n, timeout):
        """Waits (bounded) until the server has at most n kernel processes (pooled ones count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and s.proc.poll() is None:
            if len(self.server_children(s)[0]) <= n:
                return True
            time.sleep(0.1)
        return False

    def memory(self, s):
        """The server's RSS and PSS, and its kernels' PSS: each kernel is a direct child of the
        server (see server_children) and its PSS is summed over the child and all its
        descendants (sandcell: the supervisor, the middle process and the kernel; ipykernel: one
        process). Other children (sandcell's zygote) are summed apart."""
        g = smaps_rollup(s.proc.pid)
        if g is None:
            raise self.fail(s, f"{SHORT[s.kind]}: cannot read the server's smaps_rollup")
        _, kids = process_table()
        kernels, other = self.server_children(s, kids)

        def tree_pss(pid):
            rss = pss = n = 0
            for p in [pid] + subtree(kids, pid):
                m = smaps_rollup(p)
                if m:
                    rss, pss, n = rss + m[0], pss + m[1], n + 1
            return rss, pss, n

        per_kernel = []
        rss = nproc = 0
        for pid in kernels.values():
            r, p, n = tree_pss(pid)
            rss += r
            nproc += n
            per_kernel.append(p)
        other_pss = other_n = 0
        for pid in other:
            _, p, n = tree_pss(pid)
            other_pss += p
            other_n += n
        mem = {"gateway_rss": g[0], "gateway_pss": g[1], "kernels": len(per_kernel), "processes": nproc,
               "kernels_rss": rss, "kernels_pss": sum(per_kernel), "kernel_pss_each": sorted(per_kernel),
               "other_processes": other_n, "other_pss": other_pss}
        log(f"{SHORT[s.kind]} memory: server RSS {g[0] / 1024:.1f} MiB; {len(per_kernel)} kernels "
            f"({nproc} processes), PSS {sum(per_kernel) / 1024:.0f} MiB in all, "
            f"{sum(per_kernel) / 1024 / max(1, len(per_kernel)):.1f} MiB per kernel"
            + (f"; {other_n} other processes, PSS {other_pss / 1024:.1f} MiB" if other_n else ""))
        return mem

    # ---- report -----------------------------------------------------------------

    def report(self, kinds, starts, lat, qa, fb, stream, stream_cpu, one, sess):
        a = self.args
        m = machine_info()
        both = SANDCELL in kinds and JUPYTER in kinds
        levels = a.session_levels
        figures = []  # (title, ratio) of every compared figure, for the 20x target

        def level(k, n):
            if k not in kinds:
                return None
            for lv in sess[k]["levels"]:
                if lv["n"] == n:
                    return lv
            return None

        def cell(v, digits):
            return v if isinstance(v, str) else fmt_num(v, digits)

        def row(title, fn, digits, better="lower", compare=True):
            sc = fn(SANDCELL) if SANDCELL in kinds else None
            jp = fn(JUPYTER) if JUPYTER in kinds else None
            num = lambda v: v if isinstance(v, (int, float)) else None  # noqa: E731
            r = div(num(jp), num(sc)) if better == "lower" else div(num(sc), num(jp))
            if compare and r is not None:
                figures.append((title, r))
            return f"| {title} | {cell(sc, digits)} | {cell(jp, digits)} | {fmt_ratio(r)} |", r

        lines = [f"## Gateway: start, round trip, one-shot, streaming, {'/'.join(map(str, levels))} sessions, "
                 "memory", ""]
        lines.append(f"Command: `{a.command}`")
        lines.append("")
        lines.append(f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['memory']}, {m['kernel']}; "
                     f"sched_autogroup {m['autogroup']}; {m['date']}; 1-min load average {self.load_before} before, "
                     f"{loadavg()} after the run; the run took {self.elapsed() / 60:.1f} min")
        desc = []
        if SANDCELL in kinds:
            ki = self.kinfo.get(SANDCELL, {})
            rev, build = self.rev, self.build
            desc.append(f"sandcell {self.srv[SANDCELL].version} (`{self.gateway_path}`"
                        f"{', git ' + rev if rev else ''}{', meson ' + build if build else ''}; kernel "
                        f"{ki.get('implementation', '?')} {ki.get('implementation_version', '?')}, "
                        f"Python {ki.get('language_info', {}).get('version', '?')}) with its defaults "
                        f"(sandbox profile moderate, `--kernel-pool {a.pool_size}`) but `--max-kernels "
                        f"{max_kernels_for(levels)}` and `--history-db` in the run's temporary directory. "
                        "Kernels come from its pool of ready kernels when one is there: the start and "
                        "one-shot rows are what a client waits for, not a cold start (`sandbox_bench.py` "
                        "measures those)")
        if JUPYTER in kinds:
            ki = self.kinfo.get(JUPYTER, {})
            desc.append(f"jupyter-server {self.srv[JUPYTER].version} (tornado {pkg_version('tornado')}, "
                        f"jupyter_client {pkg_version('jupyter_client')}, pyzmq {pkg_version('pyzmq')}) with "
                        f"ipykernel {pkg_version('ipykernel')} (IPython {ki.get('implementation_version', '?')}, "
                        f"Python {ki.get('language_info', {}).get('version', '?')}), "
                        "`--ServerApp.limit_rate=False`")
        lines.append(f"- Servers: {'; '.join(desc)}")
        lines.append(f"- Client: one Python {platform.python_version()} process, websocket-client "
                     f"{pkg_version('websocket-client')} for the upgrade, its own v1 framing and frame "
                     "reader, TCP_NODELAY; subprotocol `v1.kernel.websocket.jupyter.org`; open-file limit "
                     f"{self.fd_limit[0]} (raised to the hard limit; both servers inherit it)")
        lines.append(
            f"- Samples: {a.starts} starts per server after {a.start_warmup} warm-up; {a.iters} `{CODE}` "
            f"round trips after {a.warmup} warm-up; {a.oneshot_iters} one-shots after {a.oneshot_warmup} "
            f"warm-up; {a.first_byte_runs} first-byte runs; {a.stream_runs} streaming run(s) of "
            f"{a.stream_mb} MB; sessions {', '.join(map(str, levels))}, each level run for {a.seconds:g} s "
            f"after {a.load_warmup:g} s of warm-up"
            + ("; starts alternate between the servers, round trips alternate in blocks of "
               f"{a.block}, streaming runs alternate; the session levels run one server after the other"
               if both else ""))
        lines.append("")
        lines.append("| Metric | sandcell | jupyter-server + ipykernel | ratio |")
        lines.append("|---|---:|---:|---:|")
        rat = {}
        for title, p in (("kernel start min (ms)", 0), ("kernel start p50 (ms)", 50),
                         ("kernel start p99 (ms)", 99)):
            text, r = row(title, lambda k, p=p: percentile(starts[k], p), 1)
            lines.append(text)
            rat[f"start p{p}"] = r
        for title, fn, key in ((f"execute `{CODE}` p50 (µs)", lambda k: percentile(lat[k], 50), "exec p50"),
                               (f"execute `{CODE}` p99 (µs)", lambda k: percentile(lat[k], 99), "exec p99"),
                               (f"execute `{CODE}` mean (µs)", lambda k: mean(lat[k]), "exec mean")):
            text, rat[key] = row(title, fn, 0)
            lines.append(text)
        if not a.no_quickack_row:
            text, rat["qa"] = row(f"execute `{CODE}` p50, client TCP_QUICKACK (µs)",
                                  lambda k: percentile(qa[k], 50), 0)
            lines.append(text)
        if one:
            na = lambda v: (lambda k: v if k == SANDCELL else "—")  # noqa: E731
            lines.append(row(f"one-shot `POST /python/execute` `{ONESHOT_CODE}` p50 (ms)",
                             na(percentile(one["ms"], 50)), 1)[0])
            lines.append(row(f"one-shot `POST /python/execute` `{ONESHOT_CODE}` p99 (ms)",
                             na(percentile(one["ms"], 99)), 1)[0])
        lines.append(row(f"first stream message, `{FIRST_BYTE_CODE}`, p50 (µs)",
                         lambda k: percentile(fb[k], 50), 0)[0])
        lines.append(row(f"first stream message, `{FIRST_BYTE_CODE}`, p99 (µs)",
                         lambda k: percentile(fb[k], 99), 0)[0])
        lines.append(row(f"streaming {a.stream_mb} MB of stdout, median (MB/s)",
                         lambda k: median(stream[k]), 0, better="higher")[0])

        def lv_val(n, fn):
            def get(k):
                lv = level(k, n)
                if lv is None:
                    return None
                if lv["status"] == "not run":
                    return "not run"
                try:
                    return fn(lv)
                except (KeyError, TypeError, ZeroDivisionError):
                    return None
            return get

        for n in levels:
            lines.append(row(f"{n} sessions: sessions connected", lv_val(n, lambda lv: lv["running"]), 0,
                             better="higher", compare=False)[0])
            lines.append(row(f"{n} sessions: executes/s (all sessions)",
                             lv_val(n, lambda lv: lv["load"]["executes_per_s"]), 0, better="higher")[0])
            lines.append(row(f"{n} sessions: execute p50 (ms)",
                             lv_val(n, lambda lv: percentile(lv["load"]["latency_ms"], 50)), 1)[0])
            lines.append(row(f"{n} sessions: execute p99 (ms)",
                             lv_val(n, lambda lv: percentile(lv["load"]["latency_ms"], 99)), 1)[0])
            lines.append(row(f"{n} sessions: PSS per idle kernel (MiB)",
                             lv_val(n, lambda lv: lv["memory"]["kernels_pss"] / 1024 / lv["memory"]["kernels"]),
                             1)[0])
            lines.append(row(f"{n} sessions: server RSS (MiB)",
                             lv_val(n, lambda lv: lv["memory"]["gateway_rss"] / 1024), 1)[0])
        lines.append("")
        lines.append(
            "Ratios are jupyter-server/sandcell for times and memory, sandcell/jupyter-server for "
            "throughput: above 1 favours sandcell. start: from sending `POST /api/kernels` until the "
            "`kernel_info_reply` arrives on a WebSocket opened right after the POST returned, with a "
            f"{a.settle:g} s pause before each; every kernel is deleted after. execute: `execute_request` "
            "sent until `execute_reply` and iopub `status: idle` have both arrived. "
            + ("" if a.no_quickack_row else
               "TCP_QUICKACK row: the same, with the client re-arming `TCP_QUICKACK` after every "
               "read, so that it never delays an ACK. ")
            + f"one-shot (sandcell only: jupyter-server has no such call; `task_bench.py` compares it with "
            f"the Jupyter sequence): `POST /python/execute` with `{ONESHOT_CODE}` on a keep-alive "
            "connection, from sending the request until the whole result has been read (it must say "
            f"`success` with stdout `1\\n`), a {a.settle:g} s pause before each. first stream message: "
            "`execute_request` sent until the first `stream` message. streaming: "
            f"`sys.stdout.write('x' * 1_000_000)` {a.stream_mb} times, stdout characters received / time "
            "from `execute_request` to idle (MB = 10^6 bytes). sessions: the levels grow one from the "
            f"other (the kernels of a level stay for the next); a level's new kernels are started "
            f"{a.start_concurrency} at a time (POST, WebSocket, `kernel_info`), each runs one `{CODE}`, "
            f"then every session loops `{CODE}` from one client thread (an epoll loop); executes/s counts "
            "the round trips completed in the timed window, p50/p99 are over those. memory: "
            "`/proc/PID/smaps_rollup` 1 s after the load stopped, with the sessions still connected and "
            "idle: the server process's RSS; PSS per idle kernel is the PSS of every kernel's processes "
            "(a direct child of the server whose command line names a `kernel-ID.json` connection file, "
            "and its descendants: for sandcell the supervisor, the middle process and the kernel), "
            "summed and divided by the number of kernels (sandcell's pooled kernels included). Other "
            "children of the server (sandcell's zygote) are not in it; the notes give their PSS. "
            "MiB = 2^20 bytes.")
        lines.extend(self.growth_table(kinds, sess, levels))
        lines.extend(self.level_notes(kinds, sess, levels))
        cpu_bits = []
        for k in kinds:
            for lv in sess[k]["levels"]:
                c = (lv.get("load") or {}).get("cpu")
                if c:
                    cpu_bits.append(f"{SHORT[k]} at {lv['n']}: server {c['gateway'] * 100:.0f}%, kernels "
                                    f"{c['kernels'] * 100:.0f}%, client {c['client'] * 100:.0f}%")
        if cpu_bits:
            lines.append("")
            lines.append("CPU during the session runs, warm-up included (100% = one CPU): "
                         + "; ".join(cpu_bits) + ".")
        sc_bits = [f"{SHORT[k]} {mean(stream_cpu[k]) * 100:.0f}%" for k in kinds if stream_cpu[k]]
        if sc_bits:
            lines.append(f"Client CPU during streaming (share of the run's wall time): {', '.join(sc_bits)}.")
        if one:
            sp = self.results.get("starts_pooled")
            lines.append(
                f"From sandcell's pool (its log's `from the pool` lines): {sp} of {a.starts} measured starts, "
                f"{one['pooled']} of {len(one['ms'])} one-shots; the one-shots' own `execution_time` "
                f"p50 {percentile(one['execution_ms'], 50):.1f} ms"
                + (f"; the keep-alive connection was reopened {one['reconnects']} time(s)" if one["reconnects"] else "")
                + (f"; {len(one['errors'])} one-shot(s) failed, first: {one['errors'][0]}" if one["errors"] else "")
                + ".")
        if JUPYTER in kinds and not a.no_quickack_row:
            p_stock, p_qa = percentile(lat[JUPYTER], 50), percentile(qa[JUPYTER], 50)
            if p_stock and p_qa and p_stock > 2 * p_qa:
                self.notes.append(
                    "jupyter-server 1.23 leaves Nagle's algorithm on for its WebSockets (tornado does not "
                    "set TCP_NODELAY unless the handler asks). A reply that follows another small frame "
                    "waits for the client's delayed ACK (about 40 ms on Linux), which is most of its "
                    "round trip and first-stream-message times above and slows its session runs too; a "
                    "browser sees the same. With the client acknowledging at once (TCP_QUICKACK row) its "
                    f"`{CODE}` p50 is {p_qa:.0f} µs instead of {p_stock:.0f} µs; the execute speedup "
                    f"measured that way is {fmt_ratio(rat.get('qa'))}.")
        if float(self.load_before) > m["nproc"] / 2:
            self.notes.append(f"the 1-minute load average was {self.load_before} before the run on "
                              f"{m['nproc']} CPUs: other work was running, so differences of a few ms, "
                              "and the CPU-bound session figures, are noisy")
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        lines.append("")
        lines.extend(self.target_lines(kinds, starts, lat, one, fb, stream, sess, levels, figures))
        return "\n".join(lines) + "\n"

    def growth_table(self, kinds, sess, levels):
        """How each session figure changes from the smallest level to the largest."""
        lines = ["", "How the figures grow with the number of sessions (growth: the largest level run "
                     "against the smallest):", ""]
        lines.append("| Figure | server | " + " | ".join(str(n) for n in levels) + " | growth |")
        lines.append("|---|---|" + "---:|" * len(levels) + "---:|")

        def pss(lv):
            return lv["memory"]["kernels_pss"] / 1024 / lv["memory"]["kernels"]

        def per_session_kib(k):
            base = sess[k]["baseline"]["gateway_rss"]
            return lambda lv: (lv["memory"]["gateway_rss"] - base) / lv["running"]

        figs = [
            ("sessions connected", lambda k: lambda lv: lv["running"], 0),
            ("kernel start while ramping, p50 (ms)", lambda k: lambda lv: percentile(lv["ramp"]["start_ms"], 50), 0),
            ("kernel start while ramping, p99 (ms)", lambda k: lambda lv: percentile(lv["ramp"]["start_ms"], 99), 0),
            ("kernels started per second", lambda k: lambda lv: lv["ramp"]["added"] / lv["ramp"]["seconds"], 1),
            ("CPU per kernel started, server + kernels (ms)", lambda k: lambda lv: (
                lv["ramp"]["cpu"]["gateway"] + lv["ramp"]["cpu"]["kernels"]) * lv["ramp"]["cpu"]["seconds"]
                / lv["ramp"]["added"] * 1e3, 0),
            ("executes/s", lambda k: lambda lv: lv["load"]["executes_per_s"], 0),
            ("executes/s per session", lambda k: lambda lv: lv["load"]["executes_per_s"] / lv["load"]["sessions"], 2),
            ("execute p50 (ms)", lambda k: lambda lv: percentile(lv["load"]["latency_ms"], 50), 1),
            ("execute p99 (ms)", lambda k: lambda lv: percentile(lv["load"]["latency_ms"], 99), 1),
            ("PSS per idle kernel (MiB)", lambda k: pss, 1),
            ("kernels' PSS, total (MiB)", lambda k: lambda lv: lv["memory"]["kernels_pss"] / 1024, 0),
            ("server RSS (MiB)", lambda k: lambda lv: lv["memory"]["gateway_rss"] / 1024, 1),
            ("server RSS per session, above the idle server (KiB)", per_session_kib, 0),
            ("server open fds", lambda k: lambda lv: lv["gateway_fds"], 0),
            ("server CPU during the load (%)", lambda k: lambda lv: lv["load"]["cpu"]["gateway"] * 100, 0),
            ("client CPU during the load (%)", lambda k: lambda lv: lv["load"]["cpu"]["client"] * 100, 0),
        ]
        for title, make, digits in figs:
            for k in kinds:
                fn = make(k)
                vals, cells = [], []
                for lv in sess[k]["levels"]:
                    if lv["status"] == "not run":
                        cells.append("not run")
                        continue
                    try:
                        v = fn(lv)
                    except (KeyError, TypeError, ZeroDivisionError):
                        v = None
                    cells.append(fmt_num(v, digits))
                    if v is not None:
                        vals.append((lv["n"], v))
                g = "n/a"
                if len(vals) >= 2 and vals[0][1]:
                    g = f"{vals[-1][1] / vals[0][1]:.2f}x ({vals[-1][0]} vs {vals[0][0]})"
                lines.append(f"| {title} | {SHORT[k]} | " + " | ".join(cells) + f" | {g} |")
        base = [f"{SHORT[k]} {sess[k]['baseline']['gateway_rss'] / 1024:.1f} MiB RSS, "
                f"{sess[k]['baseline']['gateway_fds']} fds, {sess[k]['baseline']['kernels']} "
                + ("pooled kernels" if k == SANDCELL else "kernels")
                + (f", {sess[k]['baseline']['other_processes']} other child process(es) "
                   f"({sess[k]['baseline']['other_pss'] / 1024:.1f} MiB PSS)"
                   if sess[k]["baseline"]["other_processes"] else "") for k in kinds]
        lines.append("")
        lines.append("The idle servers before the first level: " + "; ".join(base) + ".")
        return lines

    def level_notes(self, kinds, sess, levels):
        """What each level did besides its figures: not run and why, failures, stalls, log lines."""
        out = []
        a = self.args
        for k in kinds:
            bits = []
            for lv in sess[k]["levels"]:
                n = lv["n"]
                if lv["status"] == "not run":
                    bits.append(f"{n} sessions not run: {lv['reason']}")
                    continue
                b = []
                r = lv.get("ramp") or {}
                if r.get("wanted"):
                    c = r["cpu"]
                    per = (c["gateway"] + c["kernels"]) * c["seconds"] / max(1, r["added"]) * 1e3
                    b.append(f"{r['added']} of {r['wanted']} new kernels started in {r['seconds']:.1f} s"
                             + (f" ({r['pooled']} from the pool)" if k == SANDCELL else "")
                             + f", using {c['gateway'] * 100:.0f}% CPU in the server, {c['kernels'] * 100:.0f}% "
                             f"in kernels ({per:.0f} ms of CPU per kernel started), "
                             f"{c['client'] * 100:.0f}% in the client")
                if r.get("errors"):
                    b.append(f"{len(r['errors'])} start(s) failed, first: {r['errors'][0]}")
                if r.get("stopped"):
                    b.append(f"starting stopped: {r['stopped']}")
                if r.get("closed"):
                    b.append(f"{r['closed']} WebSocket(s) closed while ramping")
                d = lv.get("load") or {}
                if d.get("stalled") or d.get("closed") or d.get("exec_errors"):
                    b.append(f"in the load, {d['stalled']} session(s) stalled (no reply within {a.timeout:.0f} s), "
                             f"{d['closed']} WebSocket(s) were closed by the server, {d['exec_errors']} executes "
                             f"failed; first: {d['first_error']}")
                ld = lv.get("load") or {}
                if ld.get("per_session"):
                    b.append(f"executes per session in the window min {min(ld['per_session'])}, "
                             f"max {max(ld['per_session'])}")
                w = lv.get("warm") or {}
                if w.get("sessions"):
                    b.append(f"first `{CODE}` in every session: {len(w['latency_ms'])} of {w['sessions']} "
                             f"answered within {a.timeout:.0f} s"
                             + (f", p50 {percentile(w['latency_ms'], 50):.0f} ms, p99 "
                                f"{percentile(w['latency_ms'], 99):.0f} ms" if w["latency_ms"] else "")
                             + (f", {w['closed']} WebSocket(s) closed by the server" if w["closed"] else "")
                             + (f", {w['exec_errors']} failed" if w["exec_errors"] else "")
                             + f"; {w['cpu']['seconds']:.1f} s with the kernels at "
                             f"{w['cpu']['kernels'] * 100:.0f}% CPU and the server at {w['cpu']['gateway'] * 100:.0f}%")
                probes = [d["probe"] for d in (lv.get("ramp"), w, ld) if d and d.get("probe")]
                if probes and any(pr["n"] for pr in probes):
                    worst = max((pr["max_ms"] or 0) for pr in probes)
                    fails = sum(pr["n_failures"] for pr in probes)
                    b.append(f"`GET /api` every 2 s meanwhile: slowest answer {worst:.0f} ms"
                             + (f", {fails} of {sum(pr['n'] for pr in probes)} unanswered within 10 s (first: "
                                f"{next(f for pr in probes for f in pr['failures'])})" if fails else ""))
                if lv.get("ws_dropped"):
                    b.append(f"the gateway logged `client disconnected` (a WebSocket closed without the client's "
                             f"close frame) {lv['ws_dropped']} time(s)")
                mem = lv.get("memory") or {}
                if mem.get("other_processes"):
                    b.append(f"{mem['other_processes']} other child process(es) of the server, "
                             f"{mem['other_pss'] / 1024:.1f} MiB PSS, outside the per-kernel figure")
                if lv.get("problems"):
                    probs = sorted(lv["problems"].items(), key=lambda kv: -kv[1])
                    b.append(f"{sum(lv['problems'].values())} warning/error line(s) in the server log, "
                             + "; ".join(f"{c}x `{t}`" for t, c in probs[:3]))
                if lv["status"] in ("failed", "partial"):
                    b.append(f"{lv['status'].upper()}: {lv['reason']}")
                bits.append(f"{n} sessions: " + "; ".join(b))
            d = sess[k].get("delete") or {}
            if d.get("seconds") is not None:
                bits.append(f"the {d['kernels']} kernels were deleted in {d['seconds']:.1f} s "
                            f"({a.start_concurrency} DELETEs in flight)")
            if bits:
                out.append("")
                out.append(f"{SHORT[k]} sessions: " + ". ".join(bits) + ".")
        return out

    def target_lines(self, kinds, starts, lat, one, fb, stream, sess, levels, figures):
        """The issue's targets next to sandcell's measured values; printed, never asserted."""
        out = ["Targets (from the issue; printed, not asserted):", ""]
        if SANDCELL not in kinds:
            return out + ["- sandcell was not measured (--only jupyter)"]

        def t(name, value, unit, ok, digits=1):
            if value is None:
                out.append(f"- {name}: not measured")
            else:
                out.append(f"- {name}: {fmt_num(value, digits)} {unit} — {'met' if ok(value) else 'MISSED'}")

        t(f"kernel start p50 ≤ {TARGET_START_MS:g} ms (pool on, the default)",
          percentile(starts[SANDCELL], 50), "ms", lambda v: v <= TARGET_START_MS)
        e = percentile(lat[SANDCELL], 50)
        t(f"execute `{CODE}` p50 ≤ {TARGET_EXEC_MS:g} ms", None if e is None else e / 1e3, "ms",
          lambda v: v <= TARGET_EXEC_MS, 2)
        t(f"one-shot `POST /python/execute` p50 ≤ {TARGET_ONESHOT_MS:g} ms",
          percentile(one["ms"], 50) if one else None, "ms", lambda v: v <= TARGET_ONESHOT_MS)
        t(f"stdout ≥ {TARGET_STREAM_MBS:g} MB/s", median(stream[SANDCELL]), "MB/s",
          lambda v: v >= TARGET_STREAM_MBS, 0)
        f = percentile(fb[SANDCELL], 50)
        t(f"first byte (first stream message) p50 ≤ {TARGET_FIRST_MS:g} ms", None if f is None else f / 1e3,
          "ms", lambda v: v <= TARGET_FIRST_MS, 2)
        pss_mib = TARGET_PSS_MB * MB / MIB
        measured = [lv for lv in sess[SANDCELL]["levels"] if lv.get("memory")]
        if measured:
            lv = measured[-1]
            v = lv["memory"]["kernels_pss"] / 1024 / lv["memory"]["kernels"]
            t(f"PSS per idle kernel ≤ {TARGET_PSS_MB:g} MB ({pss_mib:.2f} MiB), at {lv['n']} sessions", v, "MiB",
              lambda v: v <= pss_mib, 2)
        else:
            t(f"PSS per idle kernel ≤ {TARGET_PSS_MB:g} MB", None, "", None)
        rss_mib = TARGET_GATEWAY_RSS_MB * MB / MIB
        big = [lv for lv in sess[SANDCELL]["levels"] if lv["n"] >= TARGET_SESSIONS]
        name = (f"{TARGET_SESSIONS} sessions with gateway RSS < {TARGET_GATEWAY_RSS_MB:g} MB "
                f"({rss_mib:.1f} MiB)")
        if not big:
            out.append(f"- {name}: not measured (no level of {TARGET_SESSIONS} sessions; "
                       f"--sessions {','.join(map(str, levels))})")
        else:
            lv = big[0]
            mem = lv.get("memory")
            if mem is None:
                out.append(f"- {name}: not measured ({lv['status']}: {lv['reason']})")
            else:
                ld = lv.get("load") or {}
                ok = (lv["running"] >= TARGET_SESSIONS and lv["status"] == "ok"
                      and mem["gateway_rss"] / 1024 < rss_mib)
                out.append(f"- {name}: {lv['running']} of {lv['n']} sessions connected, "
                           f"{ld.get('executes', 0)} executes completed in the window"
                           + (f" ({ld['stalled']} sessions stalled)" if ld.get("stalled") else "")
                           + f", gateway RSS {mem['gateway_rss'] / 1024:.1f} MiB — {'met' if ok else 'MISSED'}")
        if JUPYTER in kinds and figures:
            low = [(title, r) for title, r in figures if r < TARGET_RATIO]
            out.append(f"- every figure ≥ {TARGET_RATIO:g}x better than jupyter-server: "
                       f"{len(figures) - len(low)} of {len(figures)} compared figures reach it — "
                       + ("met" if not low else "MISSED by: "
                          + "; ".join(f"{title} {fmt_ratio(r)}" for title, r in low)))
        else:
            out.append(f"- every figure ≥ {TARGET_RATIO:g}x better than jupyter-server: not measured "
                       "(--only sandcell)")
        return out


def write_markdown(path, report):
    write_marked(path, report, MARK_BEGIN, MARK_END)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark the sandcell gateway against jupyter-server + ipykernel over the "
                    "kernel WebSocket API: start, round trip, one-shot, streaming, 10 to 1000 "
                    "concurrent sessions, memory.")
    p.add_argument("--builddir", default="build", help="meson build dir (default: build)")
    p.add_argument("--only", choices=["sandcell", "jupyter"], help="measure one server only (ratios become n/a)")
    p.add_argument("--quick", action="store_true",
                   help="small counts for a fast check: " + ", ".join(f"--{k.replace('_', '-')} {v}"
                                                                      for k, v in QUICK.items()))
    p.add_argument("--starts", type=int, help=f"measured kernel starts per server (default {FULL['starts']})")
    p.add_argument("--start-warmup", type=int, default=1, help="unmeasured starts per server first (default 1)")
    p.add_argument("--iters", type=int, help=f"measured `1+1` round trips per server (default {FULL['iters']})")
    p.add_argument("--warmup", type=int, help=f"warm-up round trips per server (default {FULL['warmup']})")
    p.add_argument("--block", type=int, default=50, help="round trips per server before switching (default 50)")
    p.add_argument("--no-quickack-row", action="store_true",
                   help="skip the round trips with client TCP_QUICKACK")
    p.add_argument("--oneshot-iters", type=int,
                   help=f"measured one-shot POST /python/execute (default {FULL['oneshot_iters']})")
    p.add_argument("--oneshot-warmup", type=int,
                   help=f"unmeasured one-shots first (default {FULL['oneshot_warmup']})")
    p.add_argument("--first-byte-runs", type=int,
                   help=f"`print('x')` runs per server (default {FULL['first_byte_runs']})")
    p.add_argument("--stream-mb", type=int, help=f"MB written by the streaming cell (default {FULL['stream_mb']})")
    p.add_argument("--stream-runs", type=int, help=f"streaming runs per server (default {FULL['stream_runs']})")
    p.add_argument("--sessions", help=f"session levels, comma-separated, growing (default {FULL['sessions']})")
    p.add_argument("--seconds", type=float, help=f"timed window of each session level (default {FULL['seconds']:g})")
    p.add_argument("--load-warmup", type=float,
                   help=f"seconds of session load before the timed window (default {FULL['load_warmup']:g})")
    p.add_argument("--start-concurrency", type=int, default=16,
                   help="kernel starts (and deletions) in flight while a level ramps up (default 16)")
    p.add_argument("--ramp-limit", type=float,
                   help="seconds one level may spend starting its kernels; a level estimated to need more "
                        f"than 1.5 times that is not run (default {FULL['ramp_limit']:g})")
    p.add_argument("--max-start-errors", type=int, default=20,
                   help="failed kernel starts after which a level stops starting more (default 20)")
    p.add_argument("--budget", type=float, default=1200.0,
                   help="seconds the whole run may take: no session level starts after that (default 1200)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="pause in seconds before each start, one-shot, and switch between servers (default 0.2)")
    p.add_argument("--markdown", metavar="FILE",
                   help=f"also write the report into FILE, between {MARK_BEGIN} and {MARK_END} "
                        "(appended if they are missing)")
    p.add_argument("--json", metavar="FILE", help="also write the raw samples to FILE")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter for jupyter-server and ipykernel (default /usr/bin/python3)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for any single reply (default 30)")
    p.add_argument("--session-start-timeout", type=float, default=120.0,
                   help="seconds one kernel start may take while a level ramps up (default 120)")
    p.add_argument("--shutdown-wait", type=float, default=20.0,
                   help="seconds a server gets to exit after SIGTERM before SIGKILL (default 20)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs)")
    a = p.parse_args(argv)
    for key, full in FULL.items():
        if getattr(a, key) is None:
            setattr(a, key, (QUICK if a.quick else FULL)[key])
    try:
        a.session_levels = [int(x) for x in str(a.sessions).split(",") if x.strip()]
    except ValueError:
        p.error(f"--sessions takes comma-separated whole numbers, not {a.sessions!r}")
    if not a.session_levels or min(a.session_levels) < 1 or a.session_levels != sorted(set(a.session_levels)):
        p.error("--sessions needs one or more growing numbers >= 1, e.g. 10,100,1000")
    if min(a.starts, a.iters, a.block, a.first_byte_runs, a.stream_runs, a.stream_mb, a.oneshot_iters,
           a.start_concurrency, a.max_start_errors) < 1:
        p.error("--starts/--iters/--block/--first-byte-runs/--stream-runs/--stream-mb/--oneshot-iters/"
                "--start-concurrency/--max-start-errors must be >= 1")
    if min(a.warmup, a.start_warmup, a.oneshot_warmup, a.settle, a.load_warmup) < 0 or a.seconds <= 0 \
            or a.ramp_limit <= 0:
        p.error("warm-ups and --settle must be >= 0, --seconds and --ramp-limit > 0")
    a.pool_size = 2  # sandcell's default --kernel-pool, which the run keeps
    a.command = shlex.join(["/usr/bin/python3", "bench/gateway_bench.py"] + list(argv))
    return a


def main(argv):
    a = parse_args(argv)
    kinds = [a.only] if a.only else [SANDCELL, JUPYTER]
    bench = Bench(a)
    bench.load_before = loadavg()
    bench.fd_limit = raise_fd_limit()
    if SANDCELL in kinds:
        path = os.path.join(a.builddir, "gateway", "sandcell")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            log(f"sandcell gateway not found at {path} (build it, pass --builddir, or use --only jupyter)")
            return 2
        bench.gateway_path = os.path.abspath(path)
        need = max_kernels_for(a.session_levels) * 16 + 1024  # what the gateway asks for itself
        if bench.fd_limit[0] < need:
            bench.notes.append(f"the open-file limit is {bench.fd_limit[0]}, below the {need} the gateway "
                               f"wants for --max-kernels {max_kernels_for(a.session_levels)}")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    one = None
    try:
        bench.setup(kinds)
        starts = bench.measure_starts(kinds)
        lat, qa, fb, stream, stream_cpu = bench.measure_single(kinds)
        if SANDCELL in kinds:
            one = bench.measure_oneshot()
        sess = {k: bench.measure_sessions(k) for k in kinds}
        report = bench.report(kinds, starts, lat, qa, fb, stream, stream_cpu, one, sess)
    except MeasureError as exc:
        log(f"measurement failed: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception:  # noqa: BLE001 - any other failure is a failure to measure
        import traceback

        log("measurement failed with an unexpected error:\n" + traceback.format_exc())
        return 1
    finally:
        bench.cleanup()
    sys.stdout.write(report)
    sys.stdout.flush()
    if a.markdown:
        write_markdown(a.markdown, report)
        log(f"wrote {a.markdown}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({
                "command": a.command,
                "machine": machine_info(),
                "seconds": bench.elapsed(),
                "servers": {SHORT[k]: {
                    "start_ms": starts[k],
                    "execute_us": lat[k],
                    "execute_quickack_us": qa[k],
                    "first_stream_us": fb[k],
                    "stream_mb_per_s": stream[k],
                    "stream_client_cpu": stream_cpu[k],
                    "oneshot": one if k == SANDCELL else None,
                    "sessions": sess[k],
                } for k in kinds},
                "notes": bench.notes,
                "unmeasured": bench.unmeasured,
            }, f, indent=1)
        log(f"wrote {a.json}")
    log(f"done in {bench.elapsed():.0f} s")
    if bench.unmeasured:
        log("not everything could be measured: " + "; ".join(bench.unmeasured))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
