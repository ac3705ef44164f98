"""Helpers shared by the benchmarks in bench/: machine and build facts, statistics, ratio
formatting, the sandcell gateway's listening line."""
import datetime
import json
import os
import platform
import re
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
