#!/usr/bin/python3
"""Task API benchmark: sandcell's /python/* tasks against the closest thing Jupyter offers.

Run with Debian's interpreter (it has python3-websocket, jupyter-server 1.23, ipykernel 6.17):

    /usr/bin/python3 bench/task_bench.py --builddir build

In one run it starts the sandcell gateway (with a token, a temporary --history-db, --log-level
debug) and Debian's jupyter-server + ipykernel, and measures:

  one-shot HTTP   POST /python/execute {"task": {"type": "execute", "code": "print(1)"}} on one
                  keep-alive connection: request sent -> whole JSON result received;
  one-shot WS     the same task as a text frame on /python/ws: frame sent -> `result` event;
  20 clients      20 threads, one HTTP connection each, one-shot `print(1)` for a fixed time:
                  tasks/s, latency, errors, CPU per task;
  interactive     `x = 1` in a warm session (`interactive` with a session_id), over HTTP and over
                  /python/ws; and a plain `x = 1` execute_request on a sandcell kernel's channels
                  WebSocket, to show what the task layer adds;
  reference       jupyter-server: POST /api/kernels -> channels WebSocket -> execute `print(1)` ->
                  execute_reply and idle -> DELETE the kernel; and `x = 1` on a warm kernel over
                  its WebSocket.

The jupyter-server launcher, its v1 WebSocket client and the kernel start come from
gateway_bench.py. Prints a markdown report (stdout; progress on stderr). Exits non-zero only when
something could not be measured. See bench/README.md.
"""

import argparse
import gc
import http.client
import json
import math
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_bench as gb  # noqa: E402
from benchlib import fmt_ratio, git_rev, loadavg, meson_build_type, percentile  # noqa: E402
from benchlib import KeepAliveHTTP, sandcell_listening, write_marked  # noqa: E402

websocket = gb.websocket
MeasureError = gb.MeasureError
SANDCELL, JUPYTER = gb.SANDCELL, gb.JUPYTER
SHORT = gb.SHORT
MARK_BEGIN = "<!-- task_bench:begin -->"
MARK_END = "<!-- task_bench:end -->"
ONESHOT_CODE = "print(1)"
STEP_CODE = "x = 1"
MAX_EVENTS = 10000  # events read for one task before giving up on it

LOG_LAUNCH = re.compile(r"debug: kernel (\S+): started pid (\d+)")
LOG_READY = re.compile(r"info: kernel (\S+) \(\S+\) ready, pid")
LOG_DOWN = re.compile(r"info: kernel (\S+) shut down")
LOG_BAD = re.compile(r"sandcell\[\d+\] (warning|error): (.*)")


def log(msg):
    print(f"[task_bench] {msg}", file=sys.stderr, flush=True)


def proc_cpu(pid):
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return ((int(rest[11]) + int(rest[12])) / gb.CLK_TCK, (int(rest[13]) + int(rest[14])) / gb.CLK_TCK)


def machine_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


# --------------------------------------------------------------------------
# sandcell: the gateway with a history database and a timestamped log
# --------------------------------------------------------------------------


class TaskServer(gb.Server):
    """gateway_bench's Server for sandcell, started with --history-db, --log-level debug and
    --max-kernels; its stderr is read by a thread that stamps each line on arrival
    (perf_counter) and copies it to the log file. The stamps of kernel launch, ready and
    shutdown, by kernel id, split a one-shot task's time."""

    def _start_sandcell(self, timeout):
        a = self.bench.args
        self.history_db = os.path.join(self.dir, "history.sqlite3")
        self.launch, self.ready, self.down = {}, {}, {}
        self.bad_lines = []
        self.argv = [self.bench.gateway_path, "--ip", "127.0.0.1", "--port", "0", "--token", self.token,
                     "--runtime-dir", os.path.join(self.dir, "runtime"),
                     "--history-db", self.history_db, "--log-level", "debug",
                     "--max-kernels", str(a.max_kernels)]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env(),
                                     cwd=os.path.join(self.dir, "root"), start_new_session=True)
        self.stderr_thread = threading.Thread(target=self._read_stderr, args=(self.proc.stderr,),
                                              daemon=True)
        self.stderr_thread.start()
        try:
            self.version, self.port = sandcell_listening(self.proc, self.token, timeout)
        except TimeoutError as exc:
            raise MeasureError(f"{exc}:\n{self.log_tail()}")
        except ValueError as exc:
            raise MeasureError(str(exc))

    def _read_stderr(self, pipe):
        with open(self.log_path, "ab") as logf:
            for raw in pipe:
                t = time.perf_counter()
                logf.write(raw)
                logf.flush()
                line = raw.decode(errors="replace").rstrip("\n")
                m = LOG_LAUNCH.search(line)
                if m:
                    self.launch[m.group(1)] = t
                    continue
                m = LOG_READY.search(line)
                if m:
                    self.ready[m.group(1)] = t
                    continue
                m = LOG_DOWN.search(line)
                if m:
                    self.down[m.group(1)] = t
                    continue
                m = LOG_BAD.search(line)
                if m and len(self.bad_lines) < 1000:
                    self.bad_lines.append(m.group(1) + ": " + m.group(2))

    def stop(self, wait):
        proc = self.proc
        super().stop(wait)
        if proc is not None:
            self.stderr_thread.join(5)
            if proc.stderr is not None:
                proc.stderr.close()


# --------------------------------------------------------------------------
# task clients
# --------------------------------------------------------------------------


class TaskHTTP(KeepAliveHTTP):
    """benchlib's keep-alive connection to one TaskServer."""

    def __init__(self, server, timeout):
        super().__init__(server.port, server.token, timeout)
        self.server = server
        self.timeout = timeout


class TaskWS:
    """One /python/ws connection (websocket-client, TCP_NODELAY); tasks run one at a time."""

    def __init__(self, server, timeout):
        self.server = server
        self.n = 0
        self.stray = 0
        url = f"ws://127.0.0.1:{server.port}/python/ws"
        try:
            self.ws = websocket.create_connection(
                url, timeout=timeout, header=[f"Authorization: token {server.token}"],
                sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                skip_utf8_validation=True, enable_multithread=False)
        except (OSError, websocket.WebSocketException) as exc:
            raise MeasureError(f"sandcell: WebSocket to /python/ws: {exc!r}")

    def run(self, task, timeout):
        """Sends one task; returns (ns from send to its result event, result, [event names])."""
        self.n += 1
        tid = f"b{self.n}"
        frame = json.dumps({"id": tid, "task": task})
        deadline = time.perf_counter() + timeout
        events = []
        t0 = time.perf_counter_ns()
        self.ws.send(frame)
        for _ in range(MAX_EVENTS):
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self.ws.settimeout(left)
            try:
                msg = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            except (OSError, websocket.WebSocketException) as exc:
                raise MeasureError(f"sandcell: /python/ws: {exc!r}")
            t1 = time.perf_counter_ns()
            try:
                ev = json.loads(msg)
            except ValueError:
                raise MeasureError(f"sandcell: /python/ws sent a frame that is not JSON: {msg[:200]!r}")
            if not isinstance(ev, dict) or ev.get("id") != tid:
                self.stray += 1
                continue
            events.append(ev.get("event"))
            if ev.get("event") == "result":
                return t1 - t0, ev.get("result"), events
            if ev.get("event") == "error":
                raise MeasureError(f"sandcell: /python/ws: error event for {task!r}: {ev!r}")
        raise MeasureError(f"sandcell: /python/ws: no result for {task!r} within {timeout:.0f}s "
                           f"(events {events[:20]!r})")

    def close(self):
        try:
            self.ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------


class TaskBench(gb.Bench):
    def __init__(self, args):
        super().__init__(args)
        self.errors = {}  # phase -> [messages]
        self.tasks_answered = {"execute": 0, "interactive": 0}  # results received (any outcome)
        self.t_begin = time.monotonic()

    def setup(self, kinds):
        import tempfile

        self.tmp = tempfile.mkdtemp(prefix="sandcell-taskbench-")
        self.srv = {}
        for k in kinds:
            s = (TaskServer if k == SANDCELL else gb.Server)(self, k)
            s.start(self.args.timeout * 2)
            self.srv[k] = s
        if JUPYTER in kinds:
            argv = self.srv[JUPYTER].kernelspec_argv or []
            if argv[:3] != [self.args.python, "-m", "ipykernel_launcher"]:
                raise MeasureError(f"jupyter-server's python3 kernelspec is {argv!r}, not the one written")

    def check_budget(self):
        if time.monotonic() - self.t_begin > self.args.budget:
            raise MeasureError(f"the run took longer than --budget {self.args.budget:.0f} s")

    def error(self, phase, msg):
        lst = self.errors.setdefault(phase, [])
        lst.append(msg)
        if len(lst) <= 3:
            log(f"{phase}: {msg}")

    def wait_no_kernels(self, s, timeout=5.0):
        """Waits (bounded) until the server has no kernel processes left; the previous one-shot
        kernel is still shutting down right after its result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not s.kernel_pids():
                return True
            time.sleep(0.02)
        return False

    # ---- sandcell steps ------------------------------------------------------------

    def oneshot_body(self):
        return json.dumps({"task": {"type": "execute", "code": ONESHOT_CODE}}).encode()

    def check_oneshot(self, status, obj):
        """None when the answer is a successful `print(1)`, else what is wrong."""
        if status != 200:
            return f"HTTP {status}: {json.dumps(obj)[:300] if obj is not None else ''}"
        if not isinstance(obj, dict):
            return "result is not a JSON object"
        if obj.get("success") is not True or obj.get("stdout") != "1\n":
            return (f"success {obj.get('success')!r}, stdout {obj.get('stdout')!r}, "
                    f"stderr {str(obj.get('stderr'))[:200]!r}, exit_code {obj.get('exit_code')!r}")
        return None

    def http_oneshot(self, hc, phase):
        """One one-shot over HTTP: a sample dict, or None after an error (recorded)."""
        try:
            ns, status, obj = hc.post("/python/execute", self.oneshot_body())
        except (OSError, http.client.HTTPException) as exc:
            self.error(phase, f"request failed: {exc!r}")
            return None
        self.tasks_answered["execute"] += status == 200
        bad = self.check_oneshot(status, obj)
        if bad:
            self.error(phase, bad)
            return None
        return {"ms": ns / 1e6, "t1": hc.last_t1, "kernel_id": obj.get("kernel_id"),
                "execution_time": obj.get("execution_time")}

    def ws_oneshot(self, ws, phase):
        ns, res, events = ws.run({"type": "execute", "code": ONESHOT_CODE}, self.args.timeout)
        self.tasks_answered["execute"] += 1
        bad = self.check_oneshot(200, res)
        if bad:
            self.error(phase, bad)
            return None
        return {"ms": ns / 1e6, "events": events}

    # ---- jupyter steps -------------------------------------------------------------

    def jupyter_oneshot(self):
        """POST /api/kernels, channels WebSocket, execute `print(1)`, reply + idle, DELETE.
        Returns the times of each step in ms."""
        a = self.args
        s = self.srv[JUPYTER]
        t0 = time.perf_counter()
        try:
            st, body = s.rest("POST", "/api/kernels", {"name": gb.KERNEL_NAME[JUPYTER]}, timeout=a.timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise MeasureError(f"jupyter-server: POST /api/kernels: {exc!r}")
        if st != 201 or not isinstance(body, dict) or "id" not in body:
            raise MeasureError(f"jupyter-server: POST /api/kernels: {st} {body!r}")
        kid = body["id"]
        s.kernels.add(kid)
        t1 = time.perf_counter()
        conn = gb.Conn(s, kid, a.timeout)
        self.conns.append(conn)
        t2 = time.perf_counter()
        s.snapshot()
        _, reply, seen = conn.run(ONESHOT_CODE, a.timeout, mode="full")
        t3 = time.perf_counter()
        out = "".join(c.get("text", "") for t, c in seen if t == "stream" and c.get("name") == "stdout")
        self.drop(s, kid, conn, a.timeout)
        t4 = time.perf_counter()
        if out != "1\n":
            self.error("jupyter one-shot", f"`{ONESHOT_CODE}` printed {out!r}")
        return {"post": (t1 - t0) * 1e3, "ws": (t2 - t1) * 1e3, "execute": (t3 - t2) * 1e3,
                "delete": (t4 - t3) * 1e3, "result": (t3 - t0) * 1e3, "total": (t4 - t0) * 1e3}

    # ---- phase 1: one-shot rounds ----------------------------------------------------

    def measure_oneshot(self, kinds):
        """Rounds of: one reference one-shot, a block of HTTP one-shots, a block of WS
        one-shots (order alternating), so that machine noise hits both servers alike."""
        a = self.args
        res = {"http": [], "ws": [], "ref": [], "cpu": {}}
        hc = ws = None
        if SANDCELL in kinds:
            s = self.srv[SANDCELL]
            hc = TaskHTTP(s, a.timeout)
            self.conns.append(hc)
            ws = TaskWS(s, a.timeout)
            self.conns.append(ws)
            self.ws = ws
            log(f"sandcell one-shot: {a.warmup} warm-up(s) over HTTP and over /python/ws")
            for _ in range(a.warmup):
                self.http_oneshot(hc, "one-shot HTTP warm-up")
                self.ws_oneshot(ws, "one-shot WS warm-up")
        if JUPYTER in kinds:
            log(f"jupyter one-shot: {a.ref_warmup} warm-up(s)")
            for _ in range(a.ref_warmup):
                self.jupyter_oneshot()
        rounds = max(1, a.ref_runs if JUPYTER in kinds else 1)
        per_round = math.ceil(a.iters / rounds)
        left = a.iters if SANDCELL in kinds else 0
        cpu0 = {k: proc_cpu(self.srv[k].proc.pid) for k in kinds}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for r in range(rounds):
                self.check_budget()
                take = min(per_round, left)
                left -= take
                steps = []
                if JUPYTER in kinds and r < a.ref_runs:
                    steps.append("ref")
                if take:
                    steps += ["http", "ws"]
                if r % 2:
                    steps.reverse()
                for step in steps:
                    for k in kinds:
                        self.wait_no_kernels(self.srv[k])
                    time.sleep(a.settle)
                    if step == "ref":
                        res["ref"].append(self.jupyter_oneshot())
                        continue
                    for _ in range(take):
                        if step == "http":
                            smp = self.http_oneshot(hc, "one-shot HTTP")
                        else:
                            smp = self.ws_oneshot(ws, "one-shot WS")
                        if smp:
                            res[step].append(smp)
                bits = []
                if res["ref"]:
                    bits.append(f"jupyter {res['ref'][-1]['total']:.0f} ms")
                if res["http"]:
                    bits.append(f"sandcell HTTP p50 so far {percentile([x['ms'] for x in res['http']], 50):.1f} ms")
                if res["ws"]:
                    bits.append(f"WS {percentile([x['ms'] for x in res['ws']], 50):.1f} ms")
                log(f"one-shot round {r + 1}/{rounds}: " + ", ".join(bits))
        finally:
            if gc_was:
                gc.enable()
        for k in kinds:
            self.wait_no_kernels(self.srv[k])
            c1 = proc_cpu(self.srv[k].proc.pid)
            n = len(res["ref"]) if k == JUPYTER else len(res["http"]) + len(res["ws"])
            if cpu0[k] and c1 and n:
                res["cpu"][k] = {"server_ms": (c1[0] - cpu0[k][0]) / n * 1e3,
                                 "kernels_ms": (c1[1] - cpu0[k][1]) / n * 1e3, "tasks": n}
        if SANDCELL in kinds:
            s = self.srv[SANDCELL]
            res["reconnects"] = hc.reconnects
            res["ws_stray"] = ws.stray
            # the split of each HTTP one-shot, from the gateway's log stamps
            split = []
            for smp in res["http"]:
                kid = smp["kernel_id"]
                t1 = smp["t1"]
                t0 = t1 - smp["ms"] / 1e3
                tl, tr, td = s.launch.get(kid), s.ready.get(kid), s.down.get(kid)
                if tl is None or tr is None:
                    continue
                # A kernel from the pool was launched (and ready) before the request.
                pooled = tl < t0
                split.append({"pooled": pooled,
                              "to_launch": None if pooled else (tl - t0) * 1e3,
                              "start": None if pooled else (tr - tl) * 1e3,
                              "ready_to_result": (t1 - max(tr, t0)) * 1e3,
                              "total": smp["ms"],
                              "execution_time": (smp["execution_time"] or 0) * 1e3,
                              "down_after": (td - t1) * 1e3 if td is not None else None})
            res["split"] = split
            if not res["http"] or not res["ws"]:
                raise MeasureError("sandcell: no one-shot task succeeded ("
                                   + "; ".join(f"{p}: {e[0]}" for p, e in self.errors.items()) + ")")
        return res

    # ---- phase 2: concurrent clients -------------------------------------------------

    def measure_concurrent(self):
        a = self.args
        s = self.srv[SANDCELL]
        self.wait_no_kernels(s)
        time.sleep(a.settle)
        n = a.clients
        lat = [[] for _ in range(n)]
        errs = [[] for _ in range(n)]
        done_in_window = [0] * n
        sent = [0] * n
        answered = [0] * n
        stop = threading.Event()
        barrier = threading.Barrier(n + 1)
        body = self.oneshot_body()
        max_per_client = int(a.seconds * 1000) + 10  # a bound on each loop, far above reach
        window = {}

        def client(i):
            hc = TaskHTTP(s, a.timeout)
            try:
                barrier.wait(a.timeout)
                t_end = window["end"]
                for _ in range(max_per_client):
                    if stop.is_set() or time.perf_counter() >= t_end:
                        break
                    sent[i] += 1
                    try:
                        ns, status, obj = hc.post("/python/execute", body)
                    except (OSError, http.client.HTTPException) as exc:
                        errs[i].append(f"request failed: {exc!r}")
                        continue
                    t1 = time.perf_counter()
                    answered[i] += status == 200
                    bad = self.check_oneshot(status, obj)
                    if bad:
                        errs[i].append(bad)
                        continue
                    lat[i].append(ns / 1e6)
                    if t1 <= t_end:
                        done_in_window[i] += 1
            except threading.BrokenBarrierError:
                errs[i].append("never started")
            finally:
                hc.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        cpu0 = proc_cpu(s.proc.pid)
        mach0 = machine_busy()
        ccpu0 = time.process_time()
        t_start = time.perf_counter()
        window["end"] = t_start + a.seconds
        log(f"{n} clients, one-shot `{ONESHOT_CODE}` for {a.seconds:g} s")
        try:
            barrier.wait(a.timeout)
        except threading.BrokenBarrierError:
            stop.set()
            raise MeasureError("the client threads did not start")
        try:
            deadline = time.monotonic() + a.seconds + a.timeout + 5
            for t in threads:
                t.join(max(0.1, deadline - time.monotonic()))
        except KeyboardInterrupt:
            stop.set()
            raise
        stop.set()
        hung = sum(t.is_alive() for t in threads)
        t_stop = time.perf_counter()
        mach1 = machine_busy()
        ccpu1 = time.process_time()
        self.wait_no_kernels(s, 10)
        cpu1 = proc_cpu(s.proc.pid)
        self.tasks_answered["execute"] += sum(answered)
        all_lat = [x for ls in lat for x in ls]
        all_err = [e for es in errs for e in es]
        for e in all_err[:3]:
            self.error(f"{n} clients", e)
        for e in all_err[3:]:
            self.errors[f"{n} clients"].append(e)
        res = {"clients": n, "seconds": a.seconds, "sent": sum(sent), "ok": len(all_lat),
               "in_window": sum(done_in_window), "errors": len(all_err), "hung": hung,
               "tasks_per_s": sum(done_in_window) / a.seconds, "latency_ms": all_lat,
               "per_client": [len(x) for x in lat], "wall_s": t_stop - t_start}
        if cpu0 and cpu1 and all_lat:
            res["cpu_per_task_ms"] = {"server": (cpu1[0] - cpu0[0]) / len(all_lat) * 1e3,
                                      "kernels": (cpu1[1] - cpu0[1]) / len(all_lat) * 1e3}
        busy = mach1[0] - mach0[0]
        total = mach1[1] - mach0[1]
        if total > 0:
            res["machine_busy"] = busy / total
        res["client_cpu"] = (ccpu1 - ccpu0) / (t_stop - t_start)
        log(f"{n} clients: {res['in_window']} tasks in {a.seconds:g} s = {res['tasks_per_s']:.1f}/s, "
            f"p50 {percentile(all_lat, 50) or 0:.0f} ms, p99 {percentile(all_lat, 99) or 0:.0f} ms, "
            f"{len(all_err)} error(s)")
        if hung:
            raise MeasureError(f"{hung} client thread(s) still running after the run")
        return res

    # ---- phase 3: interactive steps ----------------------------------------------------

    def measure_interactive(self, kinds):
        a = self.args
        labels, conns = [], {}
        sid = "bench-" + secrets.token_hex(6)
        body = json.dumps({"task": {"type": "interactive", "code": STEP_CODE, "session_id": sid}}).encode()
        task = {"type": "interactive", "code": STEP_CODE, "session_id": sid}
        kids = {}
        res = {"session_start_ms": None}
        count = [0]
        if SANDCELL in kinds:
            s = self.srv[SANDCELL]
            hc = TaskHTTP(s, a.timeout)
            self.conns.append(hc)
            self.wait_no_kernels(s)
            ns, status, obj = hc.post("/python/interactive", body)
            self.tasks_answered["interactive"] += status == 200
            if status != 200 or not isinstance(obj, dict) or obj.get("success") is not True:
                raise MeasureError(f"sandcell: first interactive step: {status} {json.dumps(obj)[:300]}")
            if obj.get("session_id") != sid:
                raise MeasureError(f"sandcell: session {sid!r} answered as {obj.get('session_id')!r}")
            res["session_start_ms"] = ns / 1e6
            count[0] = obj.get("execution_count") or 0
            log(f"sandcell: session {sid} started by its first step in {ns / 1e6:.0f} ms")
            _, kids[SANDCELL], conns["sc_plain"] = self.timed_start(s, a.timeout)
            conns["sc_http"] = hc
            conns["sc_ws"] = self.ws
            labels += ["sc_http", "sc_ws", "sc_plain"]
        if JUPYTER in kinds:
            _, kids[JUPYTER], conns["jp_plain"] = self.timed_start(self.srv[JUPYTER], a.timeout)
            labels.append("jp_plain")

        def check_step(phase, obj):
            if not isinstance(obj, dict) or obj.get("success") is not True:
                self.error(phase, f"result {json.dumps(obj)[:300]}")
                return
            if obj.get("session_id") != sid:
                self.error(phase, f"session_id {obj.get('session_id')!r}")
            ec = obj.get("execution_count")
            if ec != count[0] + 1:
                self.error(phase, f"execution_count {ec!r} after {count[0]}")
            count[0] = ec if isinstance(ec, int) else count[0]

        def step(label, c):
            if label == "sc_http":
                try:
                    ns, status, obj = c.post("/python/interactive", body)
                except (OSError, http.client.HTTPException) as exc:
                    raise MeasureError(f"sandcell: interactive step: {exc!r}")
                self.tasks_answered["interactive"] += status == 200
                if status != 200:
                    raise MeasureError(f"sandcell: interactive step: HTTP {status} {json.dumps(obj)[:300]}")
                check_step("interactive HTTP", obj)
                return ns / 1e3
            if label == "sc_ws":
                ns, obj, _ = c.run(task, a.timeout)
                self.tasks_answered["interactive"] += 1
                check_step("interactive WS", obj)
                return ns / 1e3
            return c.run(STEP_CODE, a.timeout) / 1e3

        log(f"interactive `{STEP_CODE}`: {a.warmup} warm-up + {a.iters} each, blocks of {a.block}: "
            + ", ".join(labels))
        lat = self.alternate(labels, conns, step, a.iters, a.block, a.warmup)
        for lb in labels:
            log(f"{lb}: p50 {percentile(lat[lb], 50):.0f} µs, p99 {percentile(lat[lb], 99):.0f} µs")
        res["lat_us"] = lat
        if SANDCELL in kinds:
            s = self.srv[SANDCELL]
            st, obj = s.rest("DELETE", f"/python/sessions/{sid}", timeout=a.timeout)
            if st != 204:
                self.error("interactive", f"DELETE /python/sessions/{sid}: {st} {obj!r}")
            self.drop(s, kids[SANDCELL], conns["sc_plain"], a.timeout)
        if JUPYTER in kinds:
            self.drop(self.srv[JUPYTER], kids[JUPYTER], conns["jp_plain"], a.timeout)
        return res

    # ---- history ---------------------------------------------------------------------

    def history_rows(self):
        """{task_type: rows} in the gateway's history database, or None."""
        s = self.srv[SANDCELL]
        try:
            db = sqlite3.connect(f"file:{s.history_db}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute("SELECT task_type, COUNT(*) FROM executions GROUP BY task_type").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            self.notes.append(f"could not read the history database: {exc}")
            return None
        return dict(rows)

    # ---- report ----------------------------------------------------------------------

    def report(self, kinds, one, conc, inter, hist):
        a = self.args
        m = gb.machine_info()
        both = SANDCELL in kinds and JUPYTER in kinds
        ms = lambda key: [x["ms"] for x in one[key]]  # noqa: E731
        ref = lambda key: [x[key] for x in one["ref"]]  # noqa: E731
        lat = inter.get("lat_us", {})

        def num(v, digits):
            return "—" if v is None else gb.fmt_num(v, digits)

        def row(title, sc, jp, digits, better="lower"):
            r = gb.div(jp, sc) if better == "lower" else gb.div(sc, jp)
            return f"| {title} | {num(sc, digits)} | {num(jp, digits)} | {fmt_ratio(r)} |", r

        sc_on, jp_on = SANDCELL in kinds, JUPYTER in kinds
        P = lambda xs, p: percentile(xs, p) if xs else None  # noqa: E731
        lines = ["## Task API: one-shot execute, task WebSocket, concurrent clients, interactive step", ""]
        lines.append(f"Command: `{a.command}`")
        lines.append("")
        lines.append(f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['memory']}, {m['kernel']}; "
                     f"{m['date']}; 1-min load average {self.load_before} before, {loadavg()} after the run")
        desc = []
        if sc_on:
            ki = self.kinfo.get(SANDCELL, {})
            rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
            build = meson_build_type(a.builddir)
            desc.append(f"sandcell {self.srv[SANDCELL].version} (`{self.gateway_path}`"
                        f"{', git ' + rev if rev else ''}{', meson ' + build if build else ''}; kernel "
                        f"{ki.get('implementation', '?')} {ki.get('implementation_version', '?')}, "
                        f"Python {ki.get('language_info', {}).get('version', '?')}; default profile; "
                        f"`--history-db` in a temporary directory, `--log-level debug`, "
                        f"`--max-kernels {a.max_kernels}`)")
        if jp_on:
            ki = self.kinfo.get(JUPYTER, {})
            desc.append(f"jupyter-server {self.srv[JUPYTER].version} (tornado {gb.pkg_version('tornado')}, "
                        f"jupyter_client {gb.pkg_version('jupyter_client')}) with ipykernel "
                        f"{gb.pkg_version('ipykernel')} (IPython {ki.get('implementation_version', '?')}, "
                        f"Python {ki.get('language_info', {}).get('version', '?')}), no sandbox, "
                        "`--ServerApp.limit_rate=False`")
        lines.append(f"- Servers: {'; '.join(desc)}")
        lines.append(f"- Client: Python {platform.python_version()}; http.client (one keep-alive connection, "
                     f"TCP_NODELAY), websocket-client {gb.pkg_version('websocket-client')} for /python/ws, "
                     "gateway_bench's v1 client for the channels WebSockets")
        samp = []
        if sc_on:
            samp.append(f"one-shot: {a.warmup} warm-up then {a.iters} over HTTP and {a.iters} over /python/ws")
        if jp_on:
            samp.append(f"reference one-shot: {a.ref_warmup} warm-up then {a.ref_runs}")
        if both:
            samp.append(f"one-shot runs in {max(1, a.ref_runs)} rounds (one reference run, a block of "
                        "HTTP, a block of WS; order alternating), each block after the previous "
                        f"one-shot kernels are gone and a {a.settle:g} s pause")
        if sc_on:
            samp.append(f"{a.clients} clients for {a.seconds:g} s")
        samp.append(f"interactive: {a.warmup} warm-up then {a.iters} `{STEP_CODE}` per row, rows alternating "
                    f"in blocks of {a.block}")
        lines.append("- Samples: " + "; ".join(samp))
        lines.append("")
        lines.append("| Metric | sandcell | jupyter-server + ipykernel | ratio |")
        lines.append("|---|---:|---:|---:|")
        rows = []
        h, w = ms("http") if sc_on else [], ms("ws") if sc_on else []
        rt, rr = (ref("total"), ref("result")) if jp_on else ([], [])
        r_main = None
        for title, sc, jp, p in (
                (f"one-shot `{ONESHOT_CODE}`, HTTP, p50 (ms)", h, rt, 50),
                ("one-shot, HTTP, p99 (ms)", h, rt, 99),
                ("one-shot, HTTP, mean (ms)", h, rt, None),
                (f"one-shot `{ONESHOT_CODE}`, task WebSocket, p50 (ms)", w, rt, 50),
                ("one-shot, task WebSocket, p99 (ms)", w, rt, 99)):
            f = (lambda xs: gb.mean(xs) if xs else None) if p is None else (lambda xs, p=p: P(xs, p))
            text, r = row(title, f(sc), f(jp), 1)
            rows.append(text)
            if r_main is None:
                r_main = r
        text, r_result = row("one-shot p50, reference stopped at its result, before DELETE (ms)",
                             P(h, 50), P(rr, 50), 1)
        rows.append(text)
        cpu = one.get("cpu", {})
        cpu_of = lambda k: (cpu[k]["server_ms"] + cpu[k]["kernels_ms"]) if k in cpu else None  # noqa: E731
        rows.append(row("CPU per one-shot, server + kernel processes (ms)", cpu_of(SANDCELL), cpu_of(JUPYTER), 0)[0])
        if conc:
            cl = conc["latency_ms"]
            n = conc["clients"]
            rows.append(row(f"{n} clients: one-shot tasks/s", conc["tasks_per_s"], None, 1, better="higher")[0])
            rows.append(row(f"{n} clients: latency p50 (ms)", P(cl, 50), None, 0)[0])
            rows.append(row(f"{n} clients: latency p99 (ms)", P(cl, 99), None, 0)[0])
            rows.append(row(f"{n} clients: errors (of {conc['sent']} sent)", conc["errors"], None, 0)[0])
        jp_step = lat.get("jp_plain")
        r_step = None
        for title, key, p in ((f"interactive `{STEP_CODE}`, warm session, HTTP, p50 (µs)", "sc_http", 50),
                              ("interactive, HTTP, p99 (µs)", "sc_http", 99),
                              ("interactive, task WebSocket, p50 (µs)", "sc_ws", 50),
                              ("interactive, task WebSocket, p99 (µs)", "sc_ws", 99),
                              (f"plain `{STEP_CODE}` execute_request on the channels WebSocket, p50 (µs)",
                               "sc_plain", 50),
                              ("plain execute_request, p99 (µs)", "sc_plain", 99)):
            text, r = row(title, P(lat.get(key), p), P(jp_step, p), 0)
            rows.append(text)
            if r_step is None:
                r_step = r
        lines += rows
        lines.append("")
        lines.append(
            "Ratios are jupyter-server/sandcell for times and CPU, so above 1 favours sandcell. "
            f"one-shot: sandcell's time is from sending the request (or the frame) until the whole "
            f"result (or the `result` event) has arrived and shows `success` and stdout `\"1\\n\"`; the "
            f"kernel is started for the task and shut down after it. The reference's time is the whole "
            f"sequence a Jupyter client needs for the same: `POST /api/kernels`, the channels WebSocket "
            f"(jupyter-server completes the upgrade once the kernel answers `kernel_info`), "
            f"`execute_request` of `{ONESHOT_CODE}`, `execute_reply` and `status: idle` received, "
            f"`DELETE /api/kernels/{{id}}` answered; one row stops it at the reply and idle. CPU per "
            f"one-shot: user + system time of the server process and of its reaped children (the "
            f"kernels), over the one-shot rounds, divided by the tasks. interactive: request (frame) "
            f"sent until the result of `{STEP_CODE}` in the same session has arrived; the reference "
            f"column is an `execute_request` of `{STEP_CODE}` on a warm ipykernel over its channels "
            f"WebSocket until `execute_reply` and `status: idle`, the same measurement as sandcell's "
            f"plain rows. Every task, warm-ups included, is written to sandcell's history.")
        if sc_on and one.get("split"):
            sp = one["split"]
            pool = [x for x in sp if x["pooled"]]
            cold = [x for x in sp if not x["pooled"]]
            med = lambda rows, key: P([x[key] for x in rows if x[key] is not None], 50)  # noqa: E731
            lines.append("")
            lines.append(f"Where a one-shot's time goes (medians, ms): {len(pool)} of the {len(sp)} "
                         f"HTTP one-shots got a ready kernel from the gateway's pool "
                         f"(`--kernel-pool`), {len(cold)} found it empty (the next request came "
                         f"before the pool had refilled) and waited for a kernel to start.")
            lines.append("")
            lines.append("| sandcell, HTTP one-shot | from the pool | started for it |")
            lines.append("|---|---:|---:|")
            for title, key in (("whole one-shot (request sent → result received)", "total"),
                               ("request sent → kernel launched (gateway log)", "to_launch"),
                               ("kernel launched → kernel ready (`kernel_info_reply`)", "start"),
                               ("kernel ready (or request sent) → result received", "ready_to_result"),
                               ("… of which `execution_time` (code sent → `execute_reply`, gateway clock)",
                                "execution_time"),
                               ("result received → kernel shut down (after the answer, not in the latency)",
                                "down_after")):
                lines.append(f"| {title} | {num(med(pool, key), 1)} | {num(med(cold, key), 1)} |")
            if jp_on and one["ref"]:
                jm = lambda key: P(ref(key), 50)  # noqa: E731
                lines.append("")
                lines.append(f"The reference, medians of its {len(one['ref'])} runs: `POST /api/kernels` answered "
                             f"in {jm('post'):.1f} ms, the channels WebSocket open (the kernel ready) "
                             f"{jm('ws'):.1f} ms later, `{ONESHOT_CODE}` until reply and idle {jm('execute'):.1f} ms, "
                             f"`DELETE` answered {jm('delete'):.1f} ms.")
            lines.append("")
            lines.append(
                f"Measured on {len(sp)} HTTP one-shots: the benchmark stamps each line of the gateway's "
                "debug log as it arrives on a pipe and matches the kernel id of the result to "
                "`kernel …: started pid`, `kernel … ready` and `kernel … shut down`.")
        extra = []
        if conc:
            bits = [f"{n} clients: {conc['ok']} tasks completed, {conc['in_window']} of them inside the "
                    f"{conc['seconds']:g} s window (the tasks/s)"]
            if conc.get("cpu_per_task_ms"):
                c = conc["cpu_per_task_ms"]
                bits.append(f"CPU per task {c['server'] + c['kernels']:.0f} ms (gateway {c['server']:.1f}, "
                            f"kernels {c['kernels']:.0f})")
            if conc.get("machine_busy") is not None:
                bits.append(f"the machine's CPUs were {conc['machine_busy'] * 100:.0f}% busy, the "
                            f"benchmark's client used {conc['client_cpu'] * 100:.0f}% of one")
            pc = conc["per_client"]
            if pc:
                bits.append(f"tasks per client: min {min(pc)}, max {max(pc)}")
            extra.append("; ".join(bits) + ".")
        if cpu:
            names = {SANDCELL: ("sandcell", "gateway", "kernels"), JUPYTER: ("jupyter", "jupyter-server", "ipykernels")}
            extra.append("CPU per one-shot in the one-shot rounds: " + "; ".join(
                f"{names[k][0]}: {names[k][1]} {cpu[k]['server_ms']:.1f} ms, {names[k][2]} "
                f"{cpu[k]['kernels_ms']:.0f} ms ({cpu[k]['tasks']} tasks)" for k in kinds if k in cpu) + ".")
        if inter.get("session_start_ms") is not None:
            extra.append(f"The session's first step, which starts its kernel, took "
                         f"{inter['session_start_ms']:.0f} ms (one sample).")
        if hist is not None:
            sent = {k: v for k, v in self.tasks_answered.items() if v}
            got = {k: hist.get(k, 0) for k in sent}
            if got == sent:
                extra.append("History: " + ", ".join(f"{v} `{k}` rows" for k, v in got.items())
                             + ", one per task answered.")
            else:
                self.notes.append("history rows " + ", ".join(f"{k} {got[k]}" for k in sent)
                                  + " for tasks answered " + ", ".join(f"{k} {v}" for k, v in sent.items()))
        if extra:
            lines.append("")
            lines += extra
        if sc_on:
            if one.get("reconnects"):
                self.notes.append(f"the one-shot HTTP connection was reopened {one['reconnects']} time(s), "
                                  "because the gateway had closed it while it was idle: it closes an idle "
                                  "keep-alive connection after about 5 s (libwebsockets' default), without a "
                                  "`Keep-Alive` header saying so, and between two HTTP blocks the connection "
                                  "waits through a WebSocket block and one or two reference one-shots. The "
                                  "client checks before each request, as urllib3 does, so no request was lost.")
            s = self.srv[SANDCELL]
            if s.bad_lines:
                self.notes.append(f"the gateway logged {len(s.bad_lines)} warning(s)/error(s), first: "
                                  f"{s.bad_lines[0]!r}")
        for phase, errs in self.errors.items():
            self.notes.append(f"{phase}: {len(errs)} error(s), first: {errs[0]}")
        try:
            if float(self.load_before) > m["nproc"] / 2:
                self.notes.append(f"the load average was {self.load_before} before the run: other work "
                                  "was running on this machine, so the times are noisy")
        except ValueError:
            pass
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        lines.append("")
        lines.append(f"one-shot p50 speedup: {fmt_ratio(r_main)} (reference: kernel start, execute, DELETE); "
                     f"{fmt_ratio(r_result)} against the reference stopped at its result")
        lines.append(f"interactive step p50 speedup: {fmt_ratio(r_step)} (HTTP task against an execute_request "
                     "on a warm ipykernel)")
        return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark sandcell's task API (one-shot execute over HTTP and /python/ws, "
                    "concurrent clients, interactive steps) against the closest jupyter-server + "
                    "ipykernel equivalent.")
    p.add_argument("--builddir", default="build", help="meson build dir (default: build)")
    p.add_argument("--only", choices=["sandcell", "jupyter"], help="measure one server only (ratios become n/a)")
    p.add_argument("--iters", type=int, default=200,
                   help="measured one-shots per transport, and interactive steps per row (default 200)")
    p.add_argument("--warmup", type=int, default=10, help="warm-ups before each of those (default 10)")
    p.add_argument("--ref-runs", type=int, default=20, help="measured reference one-shots (default 20)")
    p.add_argument("--ref-warmup", type=int, default=1, help="reference one-shot warm-ups (default 1)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the concurrent run (default 10)")
    p.add_argument("--block", type=int, default=50, help="interactive steps per row before switching (default 50)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="pause in seconds before each block and at each switch (default 0.2)")
    p.add_argument("--max-kernels", type=int, default=64, help="the gateway's --max-kernels (default 64)")
    p.add_argument("--markdown", metavar="FILE",
                   help=f"also write the report into FILE, between {MARK_BEGIN} and {MARK_END} "
                        "(appended if they are missing)")
    p.add_argument("--json", metavar="FILE", help="also write the raw samples to FILE")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter for jupyter-server and ipykernel (default /usr/bin/python3)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for any single answer (default 30)")
    p.add_argument("--budget", type=float, default=1200.0,
                   help="seconds the whole run may take before it gives up (default 1200)")
    p.add_argument("--shutdown-wait", type=float, default=20.0,
                   help="seconds a server gets to exit after SIGTERM before SIGKILL (default 20)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs, history)")
    a = p.parse_args(argv)
    if min(a.iters, a.block, a.clients) < 1 or a.ref_runs < 1:
        p.error("--iters, --block, --clients and --ref-runs must be >= 1")
    if a.warmup < 0 or a.ref_warmup < 0 or a.settle < 0 or a.seconds <= 0:
        p.error("warm-ups and --settle must be >= 0, --seconds > 0")
    if a.max_kernels < a.clients + 2:
        p.error(f"--max-kernels must be at least --clients + 2 ({a.clients + 2}): one kernel per client, "
                "and the one-shot kernels still shutting down")
    a.command = shlex.join(["/usr/bin/python3", "bench/task_bench.py"] + list(argv))
    return a


def main(argv):
    a = parse_args(argv)
    kinds = [a.only] if a.only else [SANDCELL, JUPYTER]
    bench = TaskBench(a)
    bench.load_before = loadavg()
    if SANDCELL in kinds:
        path = os.path.join(a.builddir, "gateway", "sandcell")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            log(f"sandcell gateway not found at {path} (build it, pass --builddir, or use --only jupyter)")
            return 2
        bench.gateway_path = os.path.abspath(path)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.setup(kinds)
        one = bench.measure_oneshot(kinds)
        bench.check_budget()
        conc = bench.measure_concurrent() if SANDCELL in kinds else None
        bench.check_budget()
        inter = bench.measure_interactive(kinds)
        hist = bench.history_rows() if SANDCELL in kinds else None
        report = bench.report(kinds, one, conc, inter, hist)
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
        write_marked(a.markdown, report, MARK_BEGIN, MARK_END)
        log(f"wrote {a.markdown}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": a.command, "machine": gb.machine_info(), "oneshot": one,
                       "concurrent": conc, "interactive": inter, "history": hist,
                       "errors": bench.errors, "notes": bench.notes}, f, indent=1)
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
