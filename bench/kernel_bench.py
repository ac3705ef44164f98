#!/usr/bin/python3
"""Kernel start / execute round trip / idle memory benchmark: sandcell vs ipykernel.

Run with Debian's interpreter (it has jupyter_client 7.4.9 and ipykernel 6.17):

    /usr/bin/python3 bench/kernel_bench.py --builddir build

Measures, in one run, for the `sandcell` kernel and for Debian's ipykernel
(kernel name `python3`):

  start     wall time from just before KernelManager.start_kernel() to the
            first kernel_info_reply received by a BlockingKernelClient
            (N starts each, interleaved between the two kernels);
  execute   `1+1` round trip: execute_request sent -> execute_reply received
            on shell AND status=idle for that request received on iopub
            (warm-up, then M iterations each, interleaved);
  memory    RSS and PSS (/proc/PID/smaps_rollup) of the kernel process after
            start and one execute.

Prints a markdown report (stdout; progress goes to stderr). Exits non-zero
only when something could not be measured, never because a target was
missed. See bench/README.md.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import fmt_ratio, git_rev, loadavg, machine_info, meson_build_type, write_marked  # noqa: E402
from benchlib import percentile as _percentile  # noqa: E402


def percentile(samples, p):
    return _percentile(samples, p, empty=float("nan"))


try:
    import zmq
    import zmq.asyncio
    import jupyter_client
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
except ImportError as exc:  # wrong interpreter
    sys.exit(
        f"kernel_bench: cannot import jupyter_client/pyzmq ({exc}).\n"
        "Run it with Debian's interpreter: /usr/bin/python3 bench/kernel_bench.py"
    )

SANDCELL = "sandcell"
IPYKERNEL = "python3"
LABEL = {SANDCELL: "sandcell", IPYKERNEL: "ipykernel"}
START_TARGET = 10.0  # start speedup target (p50 ipykernel / p50 sandcell)
CODE = "1+1"
MARK_BEGIN = "<!-- kernel_bench:begin -->"
MARK_END = "<!-- kernel_bench:end -->"


class MeasureError(Exception):
    """Something could not be measured (kernel did not start, timed out, ...)."""


def log(msg):
    print(f"[kernel_bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# statistics / formatting
# --------------------------------------------------------------------------


def mean(samples):
    return sum(samples) / len(samples) if samples else float("nan")


def ratio(ipy, sc):
    if ipy is None or sc is None or sc <= 0:
        return None
    return ipy / sc



def fmt_num(v, digits):
    return "n/a" if v is None else f"{v:.{digits}f}"


# --------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------


def read_smaps_rollup(pid):
    """Return (rss_kib, pss_kib) of one process."""
    rss = pss = None
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    if rss is None or pss is None:
        raise MeasureError(f"no Rss/Pss in /proc/{pid}/smaps_rollup")
    return rss, pss


def descendants(pid):
    """PIDs of all live descendants of pid (from /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces/parens: fields after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# --------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------


class Kernel:
    """One launched kernel. Always stopped via stop() (registry guarantees it)."""

    def __init__(self, bench, name):
        self.bench = bench
        self.name = name
        self.km = KernelManager(kernel_name=name)
        self.km.shutdown_wait_time = bench.args.shutdown_wait
        self.proc = None
        self.pid = None
        self.logfile = None
        self.logpath = None
        self.shell = self.iopub = self.poller = None

    # ---- lifecycle -------------------------------------------------------

    def launch(self):
        """start_kernel(); returns immediately after the process is spawned."""
        b = self.bench
        b.seq += 1
        self.logpath = os.path.join(b.tmp, "logs", f"{self.name}-{b.seq}.log")
        self.logfile = open(self.logpath, "wb")
        b.live.append(self)
        self.km.start_kernel(
            env=b.kernel_env, cwd=b.kernel_cwd, stdout=self.logfile, stderr=self.logfile
        )
        self.proc = self.km.provisioner.process
        self.pid = self.proc.pid

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None

    def describe_exit(self):
        return f"{LABEL[self.name]} kernel (pid {self.pid}) exited with status {self.proc.returncode}"

    def log_tail(self, lines=20):
        try:
            with open(self.logpath, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(data[-lines:])
        except (OSError, TypeError):
            return ""

    def close_sockets(self):
        for s in (self.shell, self.iopub):
            if s is not None:
                s.close(linger=0)
        self.shell = self.iopub = self.poller = None

    def stop(self):
        """Shut down politely (bounded by shutdown_wait); kill by pid if that fails."""
        self.close_sockets()
        leader_alive = False
        if self.proc is None and self.km.has_kernel:  # interrupted inside start_kernel()
            self.proc = getattr(self.km.provisioner, "process", None)
            self.pid = self.proc.pid if self.proc is not None else None
        try:
            if self.km.has_kernel:
                t0 = time.monotonic()
                self.km.shutdown_kernel(now=False)
                took = time.monotonic() - t0
                if took > 2.0:
                    log(f"note: {LABEL[self.name]} pid {self.pid} took {took:.1f}s to shut down")
        except Exception as exc:  # noqa: BLE001 - we must fall through to kill
            log(f"shutdown of {LABEL[self.name]} pid {self.pid} failed: {exc!r}")
        finally:
            if self.proc is not None and self.proc.poll() is None:
                leader_alive = True
                log(f"killing {LABEL[self.name]} kernel pid {self.pid}")
                try:
                    # Launched with start_new_session: its group id is its pid,
                    # and the group is ours while the leader is alive.
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.kill()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log(f"pid {self.pid} did not die after SIGKILL")
            if leader_alive:
                try:
                    self.km.cleanup_resources()
                except Exception:  # noqa: BLE001
                    pass
            if self.logfile is not None:
                self.logfile.close()
                self.logfile = None
            if self in self.bench.live:
                self.bench.live.remove(self)

    # ---- direct sockets (low-overhead path for the round trip) ------------

    def open_sockets(self):
        self.shell = self.km.connect_shell()
        self.iopub = self.km.connect_iopub()
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)

    def _drain(self, sock):
        """All messages ready on sock, fully deserialized by jupyter_client's Session."""
        out = []
        while True:
            _, msg = self.km.session.recv(sock, mode=zmq.NOBLOCK)
            if msg is None:
                return out
            out.append(msg)

    def _drain_lean(self, sock):
        """All messages ready on sock as (msg_type, parent msg_id, raw content).

        Session.deserialize costs ~90 us per message on a slow machine (date
        parsing etc.) and a `1+1` round trip carries five messages, which would
        swamp a fast kernel's latency. Here the HMAC signature is still checked
        (Session.sign), but only header and parent header are decoded.
        """
        session = self.km.session
        out = []
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return out
            try:
                i = frames.index(b"<IDS|MSG>")
                sig, header, parent, meta, content = frames[i + 1 : i + 6]
            except ValueError:
                raise MeasureError(f"{LABEL[self.name]}: malformed message {frames[:8]!r}")
            if session.auth is not None and sig != session.sign([header, parent, meta, content]):
                raise MeasureError(f"{LABEL[self.name]}: bad message signature")
            out.append((json.loads(header)["msg_type"], json.loads(parent).get("msg_id"), content))

    def wait_iopub_ready(self, timeout):
        """Defeat the PUB/SUB slow-joiner: poke with kernel_info until iopub delivers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.km.session.send(self.shell, "kernel_info_request", {})
            if self.iopub.poll(200):
                time.sleep(0.05)  # let the rest of that burst arrive
                self._drain(self.iopub)
                self._drain(self.shell)
                return
            self._drain(self.shell)
            if self.exited():
                raise MeasureError(self.describe_exit())
        raise MeasureError(
            f"{LABEL[self.name]}: no iopub traffic within {timeout:.0f}s "
            "(does it publish status for kernel_info_request?)"
        )

    def round_trip(self, timeout, full=False):
        """Send execute_request(CODE) and wait for execute_reply + idle status.

        Returns (nanoseconds, reply content, [iopub msgs for it]); the message
        list is only filled with full=True (Session.recv, full validation).
        """
        session = self.km.session
        content = {
            "code": CODE, "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
        }
        timeout_ns = int(timeout * 1e9)
        t0 = time.perf_counter_ns()
        sent = session.send(self.shell, "execute_request", content)
        mid = sent["header"]["msg_id"]
        reply = None
        idle = False
        seen = []
        while reply is None or not idle:
            left_ms = (t0 + timeout_ns - time.perf_counter_ns()) / 1e6
            if left_ms <= 0:
                if self.exited():
                    raise MeasureError(self.describe_exit())
                raise MeasureError(
                    f"{LABEL[self.name]}: no "
                    + ("execute_reply" if reply is None else "idle status")
                    + f" within {timeout:.0f}s"
                )
            events = dict(self.poller.poll(max(1, int(left_ms) + 1)))
            if full:
                if self.shell in events:
                    for m in self._drain(self.shell):
                        if m["msg_type"] == "execute_reply" and m["parent_header"].get("msg_id") == mid:
                            reply = m["content"]
                if self.iopub in events:
                    for m in self._drain(self.iopub):
                        if m["parent_header"].get("msg_id") != mid:
                            continue
                        seen.append(m)
                        if m["msg_type"] == "status" and m["content"].get("execution_state") == "idle":
                            idle = True
            else:
                if self.shell in events:
                    for mtype, pid, raw in self._drain_lean(self.shell):
                        if mtype == "execute_reply" and pid == mid:
                            reply = json.loads(raw)
                if self.iopub in events:
                    for mtype, pid, raw in self._drain_lean(self.iopub):
                        if mtype == "status" and pid == mid and json.loads(raw).get("execution_state") == "idle":
                            idle = True
        t1 = time.perf_counter_ns()
        if reply.get("status") != "ok":
            raise MeasureError(f"{LABEL[self.name]}: execute_reply status {reply!r}")
        return t1 - t0, reply, seen


class Bench:
    def __init__(self, args):
        self.args = args
        self.live = []
        self.seq = 0
        self.tmp = None
        self.kinfo = {}
        self.notes = []

    # ---- setup ------------------------------------------------------------

    def setup(self, names):
        a = self.args
        self.tmp = tempfile.mkdtemp(prefix="sandcell-bench-")
        for d in ("kernels", "logs", "runtime", "cwd", "ipython"):
            os.makedirs(os.path.join(self.tmp, d))
        if IPYKERNEL in names:
            spec_dir = os.path.join(self.tmp, "kernels", IPYKERNEL)
            os.makedirs(spec_dir)
            with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
                json.dump({
                    "argv": [a.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }, f, indent=1)
        if SANDCELL in names:
            try:
                r = subprocess.run(
                    [self.kernel_path, "--install-kernelspec", self.tmp],
                    capture_output=True, text=True, timeout=30,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise MeasureError(f"{self.kernel_path} --install-kernelspec failed: {exc}")
            if r.returncode != 0:
                raise MeasureError(
                    f"{self.kernel_path} --install-kernelspec {self.tmp} exited {r.returncode}:\n"
                    f"{r.stdout}{r.stderr}"
                )
        os.environ["JUPYTER_PATH"] = self.tmp
        os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(self.tmp, "runtime")
        ksm = KernelSpecManager()
        # jupyter_client imports ipykernel to resolve "python3"; that import makes
        # pydevd print a frozen-modules warning to our stderr. Silence it here only.
        self.user_pydevd_env = "PYDEVD_DISABLE_FILE_VALIDATION" in os.environ
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.argv = {}
        for n in names:
            try:
                spec = ksm.get_kernel_spec(n)
            except Exception as exc:  # noqa: BLE001 - NoSuchKernel and friends
                raise MeasureError(f"kernelspec {n!r} does not resolve: {exc}")
            if os.path.realpath(spec.resource_dir) != os.path.realpath(os.path.join(self.tmp, "kernels", n)):
                raise MeasureError(
                    f"kernelspec {n!r} resolved to {spec.resource_dir}, not the one in {self.tmp}"
                )
            self.argv[n] = list(spec.argv)
            log(f"kernelspec {n}: {shlex.join(spec.argv)}")
        if IPYKERNEL in names:
            try:
                r = subprocess.run(
                    [a.python, "-c", "import importlib.metadata as m; print(m.version('ipykernel'))"],
                    capture_output=True, text=True, timeout=30,
                )
                self.ipykernel_version = r.stdout.strip() or "?"
            except (OSError, subprocess.SubprocessError):
                self.ipykernel_version = "?"
        env = dict(os.environ)
        if not self.user_pydevd_env:
            env.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)  # kernels get the stock environment
        env["IPYTHONDIR"] = os.path.join(self.tmp, "ipython")  # no user profile/startup files
        self.kernel_env = env
        self.kernel_cwd = os.path.join(self.tmp, "cwd")
        for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
            if os.environ.get(var):
                self.notes.append(f"{var} was set in the environment and inherited by both kernels")
        # Client context for the start measurement. A zmq client connecting
        # before the kernel has bound its ports gets ECONNREFUSED and retries
        # after RECONNECT_IVL (100 ms by default), which would quantize start
        # times to 100 ms; use a short interval so we measure the kernel.
        self.ctx = zmq.asyncio.Context()
        self.ctx.setsockopt(zmq.RECONNECT_IVL, a.reconnect_ivl)
        self.ctx.setsockopt(zmq.LINGER, 0)

    def cleanup(self):
        # Ignore Ctrl-C / SIGTERM while tearing down: every step below is bounded.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for k in list(self.live):
                k.stop()
            if getattr(self, "ctx", None) is not None:
                self.ctx.destroy(linger=0)
            if self.tmp and not self.args.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            elif self.tmp:
                log(f"kept {self.tmp}")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def fail(self, kernel, msg):
        tail = kernel.log_tail() if kernel is not None else ""
        if tail:
            msg += f"\n--- last lines of {LABEL[kernel.name]} kernel output ---\n{tail}"
        return MeasureError(msg)

    # ---- start --------------------------------------------------------------

    def timed_start(self, name):
        """Launch, poll kernel_info until answered. Returns (seconds, Kernel)."""
        a = self.args
        k = Kernel(self, name)
        t0 = time.perf_counter()
        k.launch()
        kc = k.km.client(context=self.ctx)
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            deadline = t0 + a.timeout
            sent = {kc.kernel_info()}
            next_resend = time.perf_counter() + a.resend
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    raise self.fail(k, f"{LABEL[name]}: no kernel_info_reply within {a.timeout:.0f}s")
                try:
                    msg = kc.get_shell_msg(timeout=min(0.05, deadline - now))
                except queue.Empty:
                    if k.exited():
                        raise self.fail(k, k.describe_exit() + " before answering kernel_info")
                    if time.perf_counter() >= next_resend:
                        sent.add(kc.kernel_info())
                        next_resend += a.resend
                    continue
                if msg["msg_type"] == "kernel_info_reply" and msg["parent_header"].get("msg_id") in sent:
                    elapsed = time.perf_counter() - t0
                    break
        finally:
            kc.stop_channels()
        self.kinfo.setdefault(name, msg["content"])
        return elapsed, k

    def measure_starts(self, names):
        a = self.args
        res = {n: [] for n in names}
        for w in range(a.start_warmup):
            for n in names:
                time.sleep(a.settle)
                t, k = self.timed_start(n)
                k.stop()
                log(f"warm-up start {LABEL[n]}: {t * 1e3:.1f} ms")
        for i in range(a.starts):
            order = names if i % 2 == 0 else list(reversed(names))
            for n in order:
                time.sleep(a.settle)
                t, k = self.timed_start(n)
                k.stop()
                res[n].append(t)
            log(f"start {i + 1}/{a.starts}: "
                + ", ".join(f"{LABEL[n]} {res[n][-1] * 1e3:.1f} ms" for n in names))
        return res

    # ---- execute + memory -----------------------------------------------------

    def measure_exec(self, names):
        a = self.args
        kernels = {}
        for n in names:
            _, k = self.timed_start(n)
            kernels[n] = k
        mem, lat, bkc = {}, {n: [] for n in names}, {n: [] for n in names}
        for n, k in kernels.items():
            k.open_sockets()
            try:
                k.wait_iopub_ready(a.timeout)
                _, reply, seen = k.round_trip(a.timeout, full=True)
            except MeasureError as exc:
                raise self.fail(k, str(exc))
            result = [m for m in seen if m["msg_type"] == "execute_result"]
            text = result[0]["content"].get("data", {}).get("text/plain") if result else None
            if text != "2":
                self.notes.append(f"{LABEL[n]}: `{CODE}` produced execute_result {text!r}, expected '2'")
        time.sleep(0.2)  # let post-execute housekeeping settle before sampling memory
        for n, k in kernels.items():
            rss, pss = read_smaps_rollup(k.pid)
            kids = descendants(k.pid)
            trss, tpss = rss, pss
            for c in kids:
                try:
                    r, p = read_smaps_rollup(c)
                except (OSError, MeasureError):
                    continue
                trss += r
                tpss += p
            mem[n] = {"rss": rss, "pss": pss, "children": len(kids), "tree_rss": trss, "tree_pss": tpss}
            log(f"memory {LABEL[n]}: RSS {rss / 1024:.1f} MiB, PSS {pss / 1024:.1f} MiB"
                + (f", {len(kids)} child processes" if kids else ""))

        def loop(record, step):
            # Alternate blocks of --block round trips between the kernels, with a
            # pause at each switch. Interleaving single round trips would time one
            # kernel while the other is still busy after its idle status (ipykernel
            # keeps working for a while); on a 2-CPU machine that made sandcell's
            # p50 1.3-1.7x slower.
            gc_was = gc.isenabled()
            gc.disable()
            try:
                for n in names:
                    time.sleep(a.settle)
                    for _ in range(a.warmup):
                        step(kernels[n])
                left = {n: a.iters for n in names}
                rnd = 0
                while any(left.values()):
                    order = names if rnd % 2 == 0 else list(reversed(names))
                    rnd += 1
                    for n in order:
                        take = min(a.block, left[n])
                        if not take:
                            continue
                        left[n] -= take
                        time.sleep(a.settle)
                        step(kernels[n])  # first after a switch: unrecorded
                        for _ in range(take):
                            record[n].append(step(kernels[n]) / 1e3)  # microseconds
            finally:
                if gc_was:
                    gc.enable()

        def direct_step(k):
            try:
                return k.round_trip(a.timeout)[0]
            except MeasureError as exc:
                raise self.fail(k, str(exc))

        log(f"execute round trips (direct sockets): {a.warmup} warm-up + {a.iters} each")
        loop(lat, direct_step)
        for k in kernels.values():
            k.close_sockets()

        if not a.no_client_row:
            clients = {}
            try:
                for n, k in kernels.items():
                    kc = k.km.client(context=self.ctx)
                    kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
                    clients[n] = kc
                    kc.allow_stdin = False
                    try:
                        kc.wait_for_ready(timeout=a.timeout)
                    except RuntimeError as exc:
                        raise self.fail(k, f"{LABEL[n]}: BlockingKernelClient not ready: {exc}")
                    while True:  # drain iopub
                        try:
                            kc.get_iopub_msg(timeout=0.05)
                        except queue.Empty:
                            break

                def client_step(k):
                    kc = clients[k.name]
                    t0 = time.perf_counter_ns()
                    mid = kc.execute(CODE)
                    deadline = time.monotonic() + a.timeout
                    while True:
                        try:
                            m = kc.get_shell_msg(timeout=max(0.001, deadline - time.monotonic()))
                        except queue.Empty:
                            raise self.fail(k, f"{LABEL[k.name]}: client: no execute_reply")
                        if m["parent_header"].get("msg_id") == mid and m["msg_type"] == "execute_reply":
                            break
                    while True:
                        try:
                            m = kc.get_iopub_msg(timeout=max(0.001, deadline - time.monotonic()))
                        except queue.Empty:
                            raise self.fail(k, f"{LABEL[k.name]}: client: no idle status")
                        if (m["parent_header"].get("msg_id") == mid and m["msg_type"] == "status"
                                and m["content"].get("execution_state") == "idle"):
                            break
                    return time.perf_counter_ns() - t0

                log(f"execute round trips (BlockingKernelClient): {a.warmup} warm-up + {a.iters} each")
                loop(bkc, client_step)
            finally:
                for kc in clients.values():
                    kc.stop_channels()

        for k in kernels.values():
            k.stop()
        return lat, bkc, mem

    # ---- report -------------------------------------------------------------------

    def report(self, names, starts, lat, bkc, mem):
        a = self.args
        m = machine_info()
        sc_on, ipy_on = SANDCELL in names, IPYKERNEL in names

        def row(title, key, fn, digits):
            vals = {n: fn(key(n)) if n in names else None for n in (SANDCELL, IPYKERNEL)}
            r = ratio(vals[IPYKERNEL], vals[SANDCELL])
            return (f"| {title} | {fmt_num(vals[SANDCELL], digits)} | "
                    f"{fmt_num(vals[IPYKERNEL], digits)} | {fmt_ratio(r)} |"), r

        lines = ["## Kernel start and round trip", ""]
        lines.append(f"Command: `{a.command}`")
        lines.append("")
        lines.append(
            f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['kernel']}; {m['date']}; "
            f"1-min load average {self.load_before} before, {loadavg()} after the run"
        )
        kdesc = []
        if sc_on:
            ki = self.kinfo.get(SANDCELL, {})
            li = ki.get("language_info", {})
            rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
            build = meson_build_type(os.path.dirname(os.path.dirname(self.kernel_path)))
            kdesc.append(
                f"sandcell {ki.get('implementation_version', '?')} "
                f"(`{self.kernel_path}`{', git ' + rev if rev else ''}"
                f"{', meson ' + build if build else ''}; "
                f"{li.get('name', '?')} {li.get('version', '?')})"
            )
        if ipy_on:
            ki = self.kinfo.get(IPYKERNEL, {})
            li = ki.get("language_info", {})
            kdesc.append(
                f"ipykernel {self.ipykernel_version} "
                f"(`{shlex.join(self.argv[IPYKERNEL][:3])}`; IPython {ki.get('implementation_version', '?')}, "
                f"Python {li.get('version', '?')})"
            )
        lines.append(f"- Kernels: {'; '.join(kdesc)}")
        lines.append(
            f"- Client: jupyter_client {jupyter_client.__version__}, pyzmq {zmq.__version__} "
            f"(libzmq {zmq.zmq_version()}), Python {platform.python_version()}"
        )
        lines.append(
            f"- Samples: {a.starts} starts per kernel after {a.start_warmup} warm-up; "
            f"{a.iters} `{CODE}` round trips per kernel after {a.warmup} warm-up"
            + (f"; starts alternate between the kernels, round trips alternate in blocks of {a.block}"
               if len(names) > 1 else "")
        )
        lines.append("")
        lines.append("| Metric | sandcell | ipykernel | ipykernel/sandcell |")
        lines.append("|---|---:|---:|---:|")
        ms = lambda n: [t * 1e3 for t in starts[n]]  # noqa: E731
        r_start = None
        for title, p in (("start min (ms)", 0), ("start p50 (ms)", 50), ("start p90 (ms)", 90)):
            text, r = row(title, ms, lambda s, p=p: percentile(s, p), 1)
            lines.append(text)
            if p == 50:
                r_start = r
        r_exec = None
        for title, fn in ((f"execute `{CODE}` p50 (µs)", lambda s: percentile(s, 50)),
                          ("execute p99 (µs)", lambda s: percentile(s, 99)),
                          ("execute mean (µs)", mean)):
            text, r = row(title, lambda n: lat[n], fn, 0)
            lines.append(text)
            if r_exec is None:
                r_exec = r
        if not a.no_client_row:
            text, _ = row("execute p50 via BlockingKernelClient (µs)", lambda n: bkc[n],
                          lambda s: percentile(s, 50), 0)
            lines.append(text)
        mib = lambda key: (lambda n: mem[n][key] / 1024)  # noqa: E731
        if any(mem[n]["children"] for n in names):
            # A sandboxed sandcell kernel is three processes (supervisor, middle, kernel):
            # only the whole tree compares with ipykernel's one process.
            lines.append(row("idle PSS, all the kernel's processes (MiB)", mib("tree_pss"), lambda v: v, 1)[0])
            lines.append(row("idle RSS, process started (MiB)", mib("rss"), lambda v: v, 1)[0])
            lines.append(row("idle PSS, process started (MiB)", mib("pss"), lambda v: v, 1)[0])
        else:
            lines.append(row("idle RSS (MiB)", mib("rss"), lambda v: v, 1)[0])
            lines.append(row("idle PSS (MiB)", mib("pss"), lambda v: v, 1)[0])
        lines.append("")
        lines.append(
            "start: `KernelManager.start_kernel()` to first `kernel_info_reply` "
            f"(client zmq reconnect interval {a.reconnect_ivl} ms). "
            "execute: `execute_request` sent to `execute_reply` and iopub `status: idle` both "
            "received, on plain zmq sockets from `KernelManager.connect_shell/iopub` with jupyter_client's "
            "`Session` signing requests and replies' signatures checked but only headers decoded; the "
            "BlockingKernelClient row is the stock client path (full deserialization, asyncio wrapper). memory: `/proc/PID/smaps_rollup` of the kernel "
            f"process after start and one `{CODE}`, both kernels alive (with the sandbox, the process started is "
            "sandcell's supervisor; its middle process and the sandboxed kernel are its children). Ratios > 1 favour sandcell."
        )
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        lines.append("")
        only = f" (--only {a.only})" if a.only else ""
        lines.append(
            f"start speedup: {fmt_ratio(r_start)}{only} (p50 ipykernel/sandcell; target >= {START_TARGET:g}x)"
        )
        lines.append(f"execute p50 ratio: {fmt_ratio(r_exec)}{only} (ipykernel/sandcell)")
        return "\n".join(lines) + "\n"


def write_markdown(path, report):
    write_marked(path, report, MARK_BEGIN, MARK_END)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark sandcell vs ipykernel: start time, 1+1 round trip, idle memory.")
    p.add_argument("--builddir", default="build", help="meson build dir (default: ./build)")
    p.add_argument("--kernel", help="path to sandcell-kernel (default: BUILDDIR/kernel/sandcell-kernel)")
    p.add_argument("--starts", type=int, default=10, help="measured starts per kernel (default 10)")
    p.add_argument("--start-warmup", type=int, default=1,
                   help="unmeasured starts per kernel before measuring (default 1)")
    p.add_argument("--iters", type=int, default=300, help="measured round trips per kernel (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up round trips per kernel (default 20)")
    p.add_argument("--block", type=int, default=50,
                   help="round trips per kernel before switching to the other kernel (default 50)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="pause in seconds before each start and at each switch between kernels (default 0.2)")
    p.add_argument("--only", choices=["sandcell", "python3", "ipykernel"],
                   help="measure one kernel only (ratios become n/a)")
    p.add_argument("--markdown", metavar="FILE",
                   help=f"also write the report to FILE (between {MARK_BEGIN} / {MARK_END} if present)")
    p.add_argument("--json", metavar="FILE", help="also write the raw samples (ms / µs / KiB) to FILE")
    p.add_argument("--python", default="/usr/bin/python3", help="interpreter for ipykernel (default /usr/bin/python3)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for any single start/reply (default 30)")
    p.add_argument("--resend", type=float, default=1.0,
                   help="resend kernel_info every this many seconds while starting (default 1)")
    p.add_argument("--reconnect-ivl", type=int, default=1,
                   help="client zmq RECONNECT_IVL in ms during start (default 1; libzmq default is 100)")
    p.add_argument("--shutdown-wait", type=float, default=5.0,
                   help="seconds a kernel gets to exit after shutdown_request before being killed")
    p.add_argument("--no-client-row", action="store_true",
                   help="skip the BlockingKernelClient round-trip row")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (kernelspecs, kernel logs)")
    a = p.parse_args(argv)
    if a.only == "ipykernel":
        a.only = IPYKERNEL
    if a.starts < 1 or a.iters < 1 or a.block < 1 or a.warmup < 0 or a.start_warmup < 0 or a.settle < 0:
        p.error("--starts/--iters/--block must be >= 1, warm-ups and --settle >= 0")
    a.command = shlex.join(["/usr/bin/python3", "bench/kernel_bench.py"] + list(argv))
    return a


def main(argv):
    a = parse_args(argv)
    names = [a.only] if a.only else [SANDCELL, IPYKERNEL]
    bench = Bench(a)
    bench.load_before = loadavg()
    if SANDCELL in names:
        path = a.kernel or os.path.join(a.builddir, "kernel", "sandcell-kernel")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            log(f"sandcell kernel not found at {path} (build it, pass --kernel, or use --only python3)")
            return 2
        bench.kernel_path = os.path.abspath(path)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.setup(names)
        starts = bench.measure_starts(names)
        lat, bkc, mem = bench.measure_exec(names)
        report = bench.report(names, starts, lat, bkc, mem)
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
                "kernels": {LABEL[n]: {
                    "start_ms": [t * 1e3 for t in starts[n]],
                    "execute_us": lat[n],
                    "execute_client_us": bkc[n],
                    "memory_kib": mem[n],
                } for n in names},
            }, f, indent=1)
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
