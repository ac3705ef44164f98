#!/usr/bin/python3
"""What the kernel's OS sandbox costs: start, `1+1` round trip and memory, per profile.

Run with Debian's interpreter (it has pyzmq):

    /usr/bin/python3 bench/sandbox_bench.py --builddir build

Measures, in one run and interleaved, the sandcell kernel with `--profile none` (no sandbox),
`strict`, `moderate`, `permissive` and `strict --preinit`:

  start     wall time from just before the kernel process is spawned (subprocess.Popen, ipc
            transport, a connection file written here) to the first kernel_info_reply on shell.
            A signed kernel_info_request goes out as soon as the kernel's ZeroMQ completes the
            handshake and again every --resend-ms until one is answered. The handshake time
            (from a socket monitor) is recorded too: it splits the start into "up to the
            kernel's ZeroMQ" and "from there to the first reply".
  execute   `1+1` round trip: execute_request sent -> execute_reply received on shell AND
            iopub status idle for that request received.
  memory    PSS of all the kernel's processes (supervisor, middle process, kernel; found by
            walking /proc/PID/task/*/children) after start and one execute, and PSS of the
            sandboxed kernel process alone.

Prints a markdown report on stdout (progress on stderr). Exits 0 when everything was measured,
1 when something could not be, 2 when the kernel binary is missing, 130 when interrupted.
See bench/README.md.
"""

import argparse
import datetime
import gc
import hashlib
import hmac
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import machine_info, percentile, fmt_ratio, git_rev, loadavg, meson_build_type, write_marked  # noqa: E402

try:
    import zmq
    from zmq.utils.monitor import recv_monitor_message
except ImportError as exc:  # wrong interpreter
    sys.exit(
        f"sandbox_bench: cannot import pyzmq ({exc}).\n"
        "Run it with Debian's interpreter: /usr/bin/python3 bench/sandbox_bench.py"
    )

MARK_BEGIN = "<!-- sandbox_bench:begin -->"
MARK_END = "<!-- sandbox_bench:end -->"
CODE = "1+1"
BASE = "none"
# label -> extra argv after `-f CONN`
CONFIGS = {
    "none": ["--profile", "none"],
    "strict": ["--profile", "strict"],
    "moderate": ["--profile", "moderate"],
    "permissive": ["--profile", "permissive"],
    "strict --preinit": ["--profile", "strict", "--preinit"],
}
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
MAX_DRAIN = 10000  # messages read from one socket in one go, at most


class MeasureError(Exception):
    """Something could not be measured (a kernel did not start, a reply timed out, ...)."""


def log(msg):
    print(f"[sandbox_bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# statistics, machine, /proc
# --------------------------------------------------------------------------


def fmt_num(v, digits, sign=False):
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def smaps_rollup(pid):
    """{'rss', 'pss', 'uss'} in KiB of one process (uss = Private_Clean + Private_Dirty)."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                vals[key] = int(rest.split()[0])
    if "Rss" not in vals or "Pss" not in vals:
        raise MeasureError(f"no Rss/Pss in /proc/{pid}/smaps_rollup")
    return {"rss": vals["Rss"], "pss": vals["Pss"],
            "uss": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)}


def children(pid):
    """Direct children of pid, from /proc/PID/task/*/children."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def process_tree(pid, limit=64):
    """[(pid, depth)] of pid and its descendants, breadth first, at most `limit` processes."""
    out, todo = [], [(pid, 0)]
    while todo and len(out) < limit:
        p, d = todo.pop(0)
        out.append((p, d))
        todo.extend((c, d + 1) for c in children(p))
    return out


def leftover_cgroups(pids):
    """Cgroup directories `sandcell/k<pid>` that the supervisors we started left behind.

    A supervisor makes them under its own cgroup, which is ours (see kern_sandbox.c), and
    removes them when its kernel ends; one that is killed with SIGKILL cannot.
    """
    bases = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                path = path.rstrip("/")
                if controllers:
                    for c in controllers.split(","):
                        bases.append(f"/sys/fs/cgroup/{c.replace('name=', '')}{path}/sandcell")
                else:
                    bases.append(f"/sys/fs/cgroup{path}/sandcell")
    except (OSError, ValueError):
        return []
    return [d for b in bases if os.path.isdir(b) for d in (f"{b}/k{p}" for p in pids)
            if os.path.isdir(d)]


# --------------------------------------------------------------------------
# a minimal Jupyter wire client (signed with the connection file's key)
# --------------------------------------------------------------------------


class Wire:
    DELIM = b"<IDS|MSG>"

    def __init__(self, key):
        self.key = key.encode()
        self.session = uuid.uuid4().hex

    def sign(self, parts):
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def build(self, msg_type, content):
        mid = uuid.uuid4().hex
        header = json.dumps({
            "msg_id": mid, "msg_type": msg_type, "session": self.session, "username": "bench",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3",
        }).encode()
        parts = [header, b"{}", b"{}", json.dumps(content).encode()]
        return mid, [self.DELIM, self.sign(parts)] + parts

    def parse(self, frames, who):
        """(msg_type, parent msg_id, raw content); checks the signature, decodes the headers only."""
        try:
            i = frames.index(self.DELIM)
            sig, header, parent, meta, content = frames[i + 1:i + 6]
        except ValueError:
            raise MeasureError(f"{who}: malformed message {frames[:8]!r}")
        if not hmac.compare_digest(sig, self.sign([header, parent, meta, content])):
            raise MeasureError(f"{who}: bad message signature")
        return json.loads(header)["msg_type"], json.loads(parent).get("msg_id"), content


# --------------------------------------------------------------------------
# one kernel process
# --------------------------------------------------------------------------


class Kernel:
    """One sandcell-kernel started by us. stop() always runs (the bench keeps a registry)."""

    def __init__(self, bench, label):
        self.bench = bench
        self.label = label
        bench.seq += 1
        self.dir = os.path.join(bench.tmp, f"k{bench.seq}")
        os.mkdir(self.dir)
        self.key = uuid.uuid4().hex
        self.wire = Wire(self.key)
        self.ip = os.path.join(self.dir, "s")
        self.conn = os.path.join(self.dir, "conn.json")
        with open(self.conn, "w") as f:
            json.dump({
                **{f"{c}_port": i + 1 for i, c in enumerate(CHANNELS)},
                "ip": self.ip, "transport": "ipc", "key": self.key,
                "signature_scheme": "hmac-sha256", "kernel_name": "sandcell",
            }, f)
        self.logpath = os.path.join(self.dir, "log")
        self.logfile = None
        self.proc = None
        self.pid = None
        self.shell = self.iopub = self.control = self.mon = self.poller = None

    def endpoint(self, ch):
        return f"ipc://{self.ip}-{CHANNELS.index(ch) + 1}"

    def who(self):
        return f"{self.label} (pid {self.pid})" if self.pid else self.label

    # ---- lifecycle ---------------------------------------------------------

    def connect_shell(self):
        """The shell socket and its monitor, connected before the kernel exists."""
        ctx = self.bench.ctx
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        # Retry a refused connect after 1 ms, not libzmq's 100 ms (which would round starts up).
        s.setsockopt(zmq.RECONNECT_IVL, self.bench.args.reconnect_ivl)
        # Queue requests only on a completed connection (after the ZMTP handshake): a send
        # before then fails with EAGAIN instead of piling up requests for the kernel.
        s.setsockopt(zmq.IMMEDIATE, 1)
        self.mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        s.connect(self.endpoint("shell"))
        self.shell = s

    def launch(self):
        b = self.bench
        self.logfile = open(self.logpath, "wb")
        b.live.append(self)
        self.proc = subprocess.Popen(
            [b.kernel_path, "-f", self.conn] + CONFIGS[self.label],
            stdin=subprocess.DEVNULL, stdout=self.logfile, stderr=self.logfile,
            cwd=b.cwd, start_new_session=True,
        )
        self.pid = self.proc.pid
        if self.label != BASE:
            b.sandbox_pids.append(self.pid)

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None

    def log_tail(self, lines=15):
        try:
            with open(self.logpath, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def fail(self, msg):
        if self.exited():
            msg += f" (the kernel exited with status {self.proc.returncode})"
        tail = self.log_tail()
        if tail:
            msg += f"\n--- last lines of the {self.label} kernel's output ---\n{tail}"
        return MeasureError(msg)

    def close_sockets(self):
        if self.shell is not None and self.mon is not None:
            try:
                self.shell.disable_monitor()
            except zmq.ZMQError:
                pass
        for s in (self.mon, self.shell, self.iopub, self.control):
            if s is not None:
                s.close(linger=0)
        self.shell = self.iopub = self.control = self.mon = self.poller = None

    def stop(self):
        """shutdown_request on control; then SIGTERM to the supervisor (it ends its sandbox and
        removes its cgroups); then SIGKILL to our process group. All bounded in time."""
        a = self.bench.args
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    c = self.bench.ctx.socket(zmq.DEALER)
                    c.setsockopt(zmq.LINGER, 0)
                    c.connect(self.endpoint("control"))
                    self.control = c
                    _, frames = self.wire.build("shutdown_request", {"restart": False})
                    c.send_multipart(frames, zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
                try:
                    self.proc.wait(timeout=a.shutdown_wait)
                except subprocess.TimeoutExpired:
                    log(f"{self.who()}: still alive {a.shutdown_wait:g}s after shutdown_request; SIGTERM")
                    try:
                        self.proc.send_signal(signal.SIGTERM)
                        self.proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        log(f"{self.who()}: still alive after SIGTERM; SIGKILL to its process group")
                        try:
                            # start_new_session: its group id is its pid, ours while it is unreaped.
                            os.killpg(self.pid, signal.SIGKILL)
                        except OSError:
                            pass
                        try:
                            self.proc.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            log(f"{self.who()}: did not die after SIGKILL")
        finally:
            self.close_sockets()
            if self.logfile is not None:
                self.logfile.close()
                self.logfile = None
            if self in self.bench.live:
                self.bench.live.remove(self)

    # ---- messages ------------------------------------------------------------

    def drain(self, sock, limit=MAX_DRAIN):
        """Ready messages on sock as (msg_type, parent id, raw content), without waiting."""
        out = []
        while len(out) < limit:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            out.append(self.wire.parse(frames, self.label))
        return out

    def timed_start(self):
        """Spawn the kernel and poll kernel_info until answered.

        Returns (seconds to the first reply, seconds to the shell handshake or None, reply content).
        """
        a = self.bench.args
        self.connect_shell()
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.mon, zmq.POLLIN)
        resend = a.resend_ms / 1e3
        sent = set()
        t_hs = None
        t0 = time.perf_counter()
        self.launch()
        deadline = t0 + a.timeout
        next_send = t0
        for _ in range(int(a.timeout * 1e3 / max(a.resend_ms, 0.1)) * 4 + 100):  # bounded
            now = time.perf_counter()
            if now >= deadline:
                raise self.fail(f"{self.label}: no kernel_info_reply within {a.timeout:g}s")
            if now >= next_send:
                mid, frames = self.wire.build("kernel_info_request", {})
                try:
                    self.shell.send_multipart(frames, zmq.NOBLOCK)
                    sent.add(mid)
                except zmq.Again:  # no completed connection yet
                    pass
                next_send = now + resend
            wait_ms = max(0, min(next_send, deadline) - time.perf_counter()) * 1e3
            events = dict(poller.poll(max(1, int(wait_ms + 0.999))))
            if self.mon in events:
                while True:
                    try:
                        ev = recv_monitor_message(self.mon, zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED and t_hs is None:
                        t_hs = time.perf_counter() - t0
                        next_send = 0  # send at once, do not wait for the next tick
            if self.shell in events:
                for mtype, parent, content in self.drain(self.shell):
                    if mtype == "kernel_info_reply" and parent in sent:
                        return time.perf_counter() - t0, t_hs, json.loads(content)
            if self.exited():
                raise self.fail(f"{self.label}: the kernel exited before answering kernel_info")
        raise self.fail(f"{self.label}: start loop ran out of iterations")

    def open_iopub(self):
        """Subscribe to iopub and defeat the PUB/SUB slow joiner (poke until status arrives)."""
        a = self.bench.args
        s = self.bench.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(self.endpoint("iopub"))
        self.iopub = s
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            _, frames = self.wire.build("kernel_info_request", {})
            self.shell.send_multipart(frames)
            if self.iopub.poll(100):
                time.sleep(0.05)  # the rest of that burst
                self.drain(self.iopub)
                self.drain(self.shell)
                return
            self.drain(self.shell)
            if self.exited():
                raise self.fail(f"{self.label}: the kernel exited")
        raise self.fail(f"{self.label}: no iopub traffic within {a.timeout:g}s")

    def round_trip(self, check=False):
        """execute_request(CODE) until execute_reply and idle; returns nanoseconds.

        With check=True, also checks that the reply is ok and the result is '2'.
        """
        a = self.bench.args
        content = {"code": CODE, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        mid, frames = self.wire.build("execute_request", content)
        timeout_ns = int(a.timeout * 1e9)
        t0 = time.perf_counter_ns()
        self.shell.send_multipart(frames)
        reply = idle = False
        result = status = None
        while not (reply and idle):
            left_ms = (t0 + timeout_ns - time.perf_counter_ns()) / 1e6
            if left_ms <= 0:
                raise self.fail(f"{self.label}: no {'execute_reply' if not reply else 'idle status'}"
                                f" within {a.timeout:g}s")
            events = dict(self.poller.poll(max(1, int(left_ms) + 1)))
            if self.shell in events:
                for mtype, parent, raw in self.drain(self.shell):
                    if mtype == "execute_reply" and parent == mid:
                        reply = True
                        if check:
                            status = json.loads(raw).get("status")
            if self.iopub in events:
                for mtype, parent, raw in self.drain(self.iopub):
                    if parent != mid:
                        continue
                    if mtype == "status" and b'"idle"' in raw:
                        if json.loads(raw).get("execution_state") == "idle":
                            idle = True
                    elif check and mtype == "execute_result":
                        result = json.loads(raw).get("data", {}).get("text/plain")
        elapsed = time.perf_counter_ns() - t0
        if check and (status != "ok" or result != "2"):
            raise self.fail(f"{self.label}: `{CODE}` gave status {status!r}, result {result!r}")
        return elapsed

    def memory(self):
        """PSS/USS/RSS of every process of this kernel, and of the sandboxed kernel process."""
        tree = process_tree(self.pid)
        total = {"rss": 0, "pss": 0, "uss": 0}
        per = []
        for p, depth in tree:
            try:
                m = smaps_rollup(p)
            except OSError as exc:
                raise self.fail(f"{self.label}: cannot read /proc/{p}/smaps_rollup: {exc}")
            per.append({"pid": p, "depth": depth, **m})
            for key in total:
                total[key] += m[key]
        # none: the process we started is the kernel; a sandbox: supervisor -> middle -> kernel.
        want = 0 if CONFIGS[self.label][1] == "none" else 2
        kern = [m for m in per if m["depth"] == want]
        if len(kern) != 1:
            raise self.fail(f"{self.label}: expected one kernel process at depth {want}, "
                            f"found the tree {[(m['pid'], m['depth']) for m in per]}")
        return {"total": total, "kernel": kern[0], "processes": per}


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, args, labels):
        self.args = args
        self.labels = labels
        self.seq = 0
        self.live = []
        self.tmp = None
        self.ctx = None
        self.kinfo = {}
        self.notes = []
        self.sandbox_pids = []  # supervisors started; each makes cgroups named k<pid>
        self.t_end = time.monotonic() + args.budget

    def check_budget(self):
        if time.monotonic() > self.t_end:
            raise MeasureError(f"the run took longer than --budget {self.args.budget:g}s")

    def setup(self):
        self.tmp = tempfile.mkdtemp(prefix="sc-sbbench-")
        self.cwd = os.path.join(self.tmp, "cwd")
        os.mkdir(self.cwd)
        if not self.args.no_copy:
            # One binary for the whole run, even if the build directory is rebuilt meanwhile.
            copy = os.path.join(self.tmp, "sandcell-kernel")
            shutil.copy2(self.kernel_path, copy)
            self.kernel_path = copy
        self.ctx = zmq.Context()
        try:
            r = subprocess.run([self.kernel_path, "--check-sandbox", "--json"],
                               capture_output=True, text=True, timeout=60)
            self.check = json.loads(r.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self.check = None
            self.notes.append(f"`--check-sandbox --json` gave no report ({exc})")

    def cleanup(self):
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for k in list(self.live):
                k.stop()
            if self.ctx is not None:
                self.ctx.destroy(linger=0)
            if self.tmp and not self.args.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            elif self.tmp:
                log(f"kept {self.tmp}")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def one_start(self, label):
        k = Kernel(self, label)
        try:
            t, hs, info = k.timed_start()
            self.kinfo.setdefault(label, info)
        finally:
            k.stop()
        return t, hs

    def measure_starts(self):
        a = self.args
        starts = {n: [] for n in self.labels}
        hs = {n: [] for n in self.labels}
        for _ in range(a.start_warmup):
            for n in self.labels:
                time.sleep(a.settle)
                t, _ = self.one_start(n)
                log(f"warm-up start {n}: {t * 1e3:.1f} ms")
        for i in range(a.starts):
            # Rotate the order: every profile starts in every position equally often.
            r = i % len(self.labels)
            order = self.labels[r:] + self.labels[:r]
            for n in order:
                self.check_budget()
                time.sleep(a.settle)
                t, h = self.one_start(n)
                starts[n].append(t * 1e3)
                hs[n].append(None if h is None else h * 1e3)
            log(f"start {i + 1}/{a.starts}: "
                + ", ".join(f"{n} {starts[n][-1]:.1f} ms" for n in self.labels))
        return starts, hs

    def measure_exec(self):
        a = self.args
        kernels = {}
        for n in self.labels:
            k = Kernel(self, n)
            t, _, info = k.timed_start()
            self.kinfo.setdefault(n, info)
            kernels[n] = k
        mem = {}
        for n, k in kernels.items():
            k.open_iopub()
            k.round_trip(check=True)
        time.sleep(0.2)  # post-execute housekeeping settles before memory is sampled
        for n, k in kernels.items():
            mem[n] = k.memory()
            log(f"memory {n}: PSS {mem[n]['total']['pss'] / 1024:.1f} MiB in "
                f"{len(mem[n]['processes'])} processes, kernel process "
                f"{mem[n]['kernel']['pss'] / 1024:.1f} MiB")

        lat = {n: [] for n in self.labels}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for n in self.labels:
                time.sleep(a.settle)
                for _ in range(a.warmup):
                    kernels[n].round_trip()
            left = {n: a.iters for n in self.labels}
            rnd = 0
            while any(left.values()):
                self.check_budget()
                r = rnd % len(self.labels)
                rnd += 1
                for n in self.labels[r:] + self.labels[:r]:
                    take = min(a.block, left[n])
                    if not take:
                        continue
                    left[n] -= take
                    time.sleep(a.settle)
                    kernels[n].round_trip()  # first after a switch: not recorded
                    for _ in range(take):
                        lat[n].append(kernels[n].round_trip() / 1e3)  # µs
            log("round trips: " + ", ".join(
                f"{n} p50 {percentile(lat[n], 50):.0f} µs" for n in self.labels))
        finally:
            if gc_was:
                gc.enable()
        for k in kernels.values():
            k.stop()
        return lat, mem

    # ---- report ----------------------------------------------------------------

    def report(self, starts, hs, lat, mem):
        a = self.args
        m = machine_info()
        load_after = loadavg()
        L = self.labels
        p = lambda xs, q: percentile([x for x in xs if x is not None], q)  # noqa: E731
        lines = ["## What the sandbox costs", ""]
        lines.append(f"Command: `{a.command}`")
        lines.append("")
        lines.append(
            f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['kernel']}; {m['date']}; "
            f"1-min load average {self.load_before} before, {load_after} after the run")
        info = next(iter(self.kinfo.values()), {})
        rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
        build = meson_build_type(os.path.dirname(os.path.dirname(self.kernel_source)))
        try:
            built = datetime.datetime.fromtimestamp(
                os.stat(self.kernel_path).st_mtime, datetime.timezone.utc).strftime("%H:%M UTC")
        except OSError:
            built = None
        lines.append(
            f"- Kernel: sandcell {info.get('implementation_version', '?')} "
            f"(`{self.kernel_source}`{', built ' + built if built else ''}"
            f"{', copied for the run' if not a.no_copy else ''}"
            f"{', git ' + rev if rev else ''}"
            f"{', meson ' + build if build else ''}; "
            f"Python {info.get('language_info', {}).get('version', '?')})")
        if self.check:
            host = self.check.get("host", {})
            layers = self.check.get("layers", [])
            off = [x["name"] for x in layers if not x.get("active")]
            lines.append(
                f"- Sandbox (`--check-sandbox --json`): {len(layers) - len(off)} of {len(layers)} "
                f"layers available ({'missing: ' + ', '.join(off) if off else 'all'}); "
                f"running as {'root' if host.get('root') else 'non-root'}, "
                f"cgroup {host.get('cgroup', '?')}")
        lines.append(
            f"- Client: pyzmq {zmq.__version__} (libzmq {zmq.zmq_version()}), Python "
            f"{platform.python_version()}; ipc transport; signed with HMAC-SHA256, "
            "replies' signatures checked, only headers decoded")
        lines.append(
            f"- Samples: {a.starts} starts per profile after {a.start_warmup} warm-up, in rotating "
            f"order, {a.settle:g} s pause before each; {a.iters} `{CODE}` round trips per profile "
            f"after {a.warmup} warm-up, all {len(L)} kernels alive, in blocks of {a.block} "
            "rotating between them")
        lines.append("")
        lines.append("| Metric | " + " | ".join(f"`{n}`" for n in L) + " |")
        lines.append("|---|" + "---:|" * len(L))

        def row(title, fn, digits):
            lines.append(f"| {title} | " + " | ".join(fmt_num(fn(n), digits) for n in L) + " |")

        row("start p50 (ms)", lambda n: p(starts[n], 50), 1)
        row("start p99 (ms)", lambda n: p(starts[n], 99), 1)
        row("&nbsp;&nbsp;kernel's ZeroMQ up, p50 (ms)", lambda n: p(hs[n], 50), 1)
        after = {n: [t - h for t, h in zip(starts[n], hs[n]) if h is not None] for n in L}
        row("&nbsp;&nbsp;from there to the reply, p50 (ms)", lambda n: p(after[n], 50), 1)
        row(f"execute `{CODE}` p50 (µs)", lambda n: p(lat[n], 50), 0)
        row("execute p99 (µs)", lambda n: p(lat[n], 99), 0)
        mib = lambda v: v / 1024  # noqa: E731
        row("PSS, all its processes (MiB)", lambda n: mib(mem[n]["total"]["pss"]), 1)
        row("PSS, kernel process (MiB)", lambda n: mib(mem[n]["kernel"]["pss"]), 1)
        row("private (USS), all its processes (MiB)", lambda n: mib(mem[n]["total"]["uss"]), 1)
        row("processes", lambda n: len(mem[n]["processes"]), 0)
        lines.append("")

        base = BASE if BASE in L else None
        if base:
            lines.append(f"Differences against `{base}` (no sandbox):")
            lines.append("")
            lines.append("| Profile | start p50 | start p50 ratio | before ZeroMQ, p50 | after, p50 "
                         "| execute p50 | execute p50 ratio | PSS, all processes |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            s0 = p(starts[base], 50)
            h0 = p(hs[base], 50)
            a0 = p(after[base], 50)
            e0 = p(lat[base], 50)
            m0 = mib(mem[base]["total"]["pss"])
            for n in L:
                if n == base:
                    continue
                s, h, af, e = p(starts[n], 50), p(hs[n], 50), p(after[n], 50), p(lat[n], 50)
                diff = lambda x, y: None if x is None or y is None else x - y  # noqa: E731
                lines.append(
                    f"| `{n}` | {fmt_num(diff(s, s0), 1, True)} ms | {fmt_ratio(s / s0 if s0 else None)} "
                    f"| {fmt_num(diff(h, h0), 1, True)} ms | {fmt_num(diff(af, a0), 1, True)} ms "
                    f"| {fmt_num(diff(e, e0), 0, True)} µs | {fmt_ratio(e / e0 if e0 else None)} "
                    f"| {fmt_num(mib(mem[n]['total']['pss']) - m0, 1, True)} MiB |")
            lines.append("")
        lines.append(
            "start: from just before `subprocess.Popen` of `sandcell-kernel -f CONN --profile P` "
            "to the first `kernel_info_reply` on shell; a signed `kernel_info_request` goes out "
            f"when the shell handshake completes and every {a.resend_ms:g} ms until answered "
            f"(client `RECONNECT_IVL` {a.reconnect_ivl} ms, `ZMQ_IMMEDIATE`). \"kernel's ZeroMQ "
            "up\" is when the client's shell socket completed the ZMTP handshake with the kernel "
            "(socket monitor); with a sandbox the kernel is inside it by then, and without "
            "`--preinit` its interpreter is not started yet. execute: `execute_request` sent to "
            "`execute_reply` and iopub `status: idle` both received. memory: "
            f"`/proc/PID/smaps_rollup` after start and one execute, with the {len(L)} kernels and the "
            "benchmark alive (PSS splits shared pages among them); \"all its processes\" walks "
            "`/proc/PID/task/*/children` from the process we started (supervisor, middle "
            "process, kernel), \"kernel process\" is the sandboxed one (pid 1 of its namespace). "
            f"With {a.starts} starts, start p99 is close to the slowest start.")
        try:
            busy = max(float(self.load_before), float(load_after)) > 0.5 * m["nproc"]
        except ValueError:
            busy = False
        left = leftover_cgroups(self.sandbox_pids)
        if left:
            self.notes.append(f"{len(left)} cgroup directories of the kernels started here were "
                              f"still there after they ended (e.g. `{left[0]}`).")
        if busy:
            self.notes.append(
                f"the 1-minute load average was {self.load_before} before and {load_after} after "
                f"the run on {m['nproc']} CPUs: other work was running, so the numbers are noisy "
                "(the interleaving spreads that noise over all profiles alike, but differences of "
                "a few ms or a few hundred µs may be noise).")
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        if base:
            lines.append("")
            s0 = p(starts[base], 50)
            for n in L:
                if n == base:
                    continue
                s = p(starts[n], 50)
                lines.append(
                    f"- sandbox start cost `{n}`: {fmt_num(s - s0, 1, True)} ms "
                    f"(p50 {s:.1f} ms vs {s0:.1f} ms without: {fmt_ratio(s / s0)})")
        return "\n".join(lines) + "\n"


def write_markdown(path, report):
    write_marked(path, report, MARK_BEGIN, MARK_END)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="What the sandcell kernel's sandbox costs: start, 1+1 round trip, memory per profile.")
    p.add_argument("--builddir", default="build", help="meson build dir (default: ./build)")
    p.add_argument("--kernel", help="path to sandcell-kernel (default: BUILDDIR/kernel/sandcell-kernel)")
    p.add_argument("--profiles", default=",".join(CONFIGS),
                   help=f"comma-separated subset of: {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--starts", type=int, default=20, help="measured starts per profile (default 20)")
    p.add_argument("--start-warmup", type=int, default=1, help="unmeasured starts per profile first (default 1)")
    p.add_argument("--iters", type=int, default=200, help="measured round trips per profile (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up round trips per profile (default 20)")
    p.add_argument("--block", type=int, default=50, help="round trips per profile before switching (default 50)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="pause in seconds before each start and at each switch (default 0.2)")
    p.add_argument("--resend-ms", type=float, default=5.0,
                   help="resend kernel_info_request every this many ms while starting (default 5)")
    p.add_argument("--reconnect-ivl", type=int, default=1,
                   help="client ZeroMQ RECONNECT_IVL in ms (default 1; libzmq's default is 100)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for any one start or reply (default 30)")
    p.add_argument("--shutdown-wait", type=float, default=5.0,
                   help="seconds a kernel gets to exit after shutdown_request before SIGTERM (default 5)")
    p.add_argument("--budget", type=float, default=900.0,
                   help="give up when the whole run takes longer than this many seconds (default 900)")
    p.add_argument("--markdown", metavar="FILE",
                   help=f"also write the report into FILE between {MARK_BEGIN} and {MARK_END} "
                        "(appended with them when missing)")
    p.add_argument("--json", metavar="FILE", help="also write every raw sample (ms / µs / KiB) to FILE")
    p.add_argument("--no-copy", action="store_true",
                   help="run the kernel binary in place instead of a copy made at the start")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (kernel logs)")
    a = p.parse_args(argv)
    a.labels = [x.strip() for x in a.profiles.split(",") if x.strip()]
    bad = [x for x in a.labels if x not in CONFIGS]
    if bad or not a.labels:
        p.error(f"--profiles: unknown {bad}; choose from {list(CONFIGS)}")
    if a.starts < 1 or a.iters < 1 or a.block < 1 or a.warmup < 0 or a.start_warmup < 0 \
            or a.settle < 0 or a.resend_ms <= 0 or a.timeout <= 0:
        p.error("--starts/--iters/--block must be >= 1, warm-ups and --settle >= 0, "
                "--resend-ms and --timeout > 0")
    a.command = shlex.join(["/usr/bin/python3", "bench/sandbox_bench.py"] + list(argv))
    return a


def main(argv):
    a = parse_args(argv)
    path = a.kernel or os.path.join(a.builddir, "kernel", "sandcell-kernel")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        log(f"sandcell kernel not found at {path} (build it or pass --kernel)")
        return 2
    bench = Bench(a, a.labels)
    bench.kernel_path = bench.kernel_source = os.path.abspath(path)
    bench.load_before = loadavg()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.setup()
        starts, hs = bench.measure_starts()
        lat, mem = bench.measure_exec()
        report = bench.report(starts, hs, lat, mem)
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
    left = leftover_cgroups(bench.sandbox_pids)
    if left:
        log(f"{len(left)} cgroup directories of our kernels were left behind: {left[:5]}")
    sys.stdout.write(report)
    sys.stdout.flush()
    if a.markdown:
        write_markdown(a.markdown, report)
        log(f"wrote {a.markdown}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": a.command, "machine": machine_info(), "profiles": {
                n: {"start_ms": starts[n], "zmq_up_ms": hs[n], "execute_us": lat[n],
                    "memory_kib": mem[n]} for n in a.labels}}, f, indent=1)
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
