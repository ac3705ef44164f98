#!/usr/bin/python3
"""Where an execute round trip's time goes, for sandcell and jupyter-server + ipykernel.

Runs `1+1` over the kernel WebSocket (v1 framing) of each server, as gateway_bench.py does,
and splits every round trip with the kernel's own timestamps: each message's header carries
the wall-clock time (microseconds) at which the kernel made it, and the client, the servers
and the kernels share this machine's clock. Per round trip:

  inbound   client sends execute_request  -> the kernel stamps status busy
  kernel    status busy                   -> status idle (code, replies, publishing)
  outbound  the kernel stamps status idle -> the client has the reply and idle

plus the kernel's own steps (busy -> execute_input -> execute_result -> execute_reply -> idle).
Medians of each, and how the three parts add up to the round trip.

    /usr/bin/python3 bench/rtt_profile.py --builddir build-release [--iters 500] [--markdown docs/performance.md]
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_bench as gb  # noqa: E402
from benchlib import git_rev, loadavg, meson_build_type, write_marked  # noqa: E402

MARK_BEGIN = "<!-- rtt_profile:begin -->"
MARK_END = "<!-- rtt_profile:end -->"
STEPS = ("busy", "execute_input", "execute_result", "execute_reply", "idle")


def stamp_us(iso):
    """Microseconds since the epoch from a header date (ISO 8601, UTC, 'Z' or an offset)."""
    d = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp() * 1e6


def one_round_trip(conn, timeout):
    """Runs 1+1; returns {step: µs since the client sent} for the kernel's stamps and the
    client's arrival times ('got_reply', 'got_idle')."""
    content = gb.execute_content(gb.CODE)
    deadline = time.perf_counter() + timeout
    t0 = time.time_ns() / 1e3
    p0 = time.perf_counter_ns()
    mid = conn.send("shell", "execute_request", content)
    out = {}
    while "got_reply" not in out or "got_idle" not in out:
        try:
            msgs = conn.recv(deadline)
        except TimeoutError:
            raise gb.MeasureError(f"no execute_reply and idle within {timeout:.0f}s")
        now = (time.perf_counter_ns() - p0) / 1e3
        for data in msgs:
            ch, parts = gb.v1_decode(data)
            if json.loads(parts[1]).get("msg_id") != mid:
                continue
            header = json.loads(parts[0])
            mtype = header.get("msg_type")
            if mtype == "status":
                mtype = json.loads(parts[3]).get("execution_state")
            if mtype in STEPS:
                out[mtype] = stamp_us(header["date"]) - t0
            if mtype == "execute_reply":
                out["got_reply"] = now
            elif mtype == "idle":
                out["got_idle"] = now
    out["total"] = max(out["got_reply"], out["got_idle"])
    return out


def zmq_echo_floor(n=3000):
    """Median µs of a one-byte DEALER -> ROUTER -> DEALER echo over ipc:// between two
    processes: what libzmq's hops (each side's I/O thread and application thread) cost on this
    machine before any Jupyter work."""
    import tempfile
    import zmq
    d = tempfile.mkdtemp(prefix="sandcell-rtt-")
    ep = f"ipc://{d}/echo"
    pid = os.fork()
    if pid == 0:
        try:
            s = zmq.Context().socket(zmq.ROUTER)
            s.bind(ep)
            for _ in range(n + 200):
                s.send_multipart(s.recv_multipart())
        finally:
            os._exit(0)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.connect(ep)
    ts = []
    try:
        for i in range(n + 200):
            t = time.perf_counter_ns()
            s.send(b"x")
            s.recv()
            if i >= 200:
                ts.append((time.perf_counter_ns() - t) / 1e3)
    finally:
        s.close(0)
        ctx.term()
        os.waitpid(pid, 0)
        shutil.rmtree(d, ignore_errors=True)
    return med(ts)


class IdleSpinners:
    """n processes that spin under SCHED_IDLE: they run only when nothing else wants a CPU, so
    they take no time from the servers, but the CPUs never go idle (no halt, no wake-up from
    it). With them the round trip shows what it costs without waking idle CPUs."""

    def __init__(self, n):
        self.n = n
        self.pids = []

    def __enter__(self):
        for _ in range(self.n):
            pid = os.fork()
            if pid == 0:
                try:
                    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                    deadline = time.monotonic() + 3600
                    while time.monotonic() < deadline:
                        pass
                finally:
                    os._exit(0)
            self.pids.append(pid)
        return self

    def __exit__(self, *exc):
        for pid in self.pids:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
        self.pids = []


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def profile(bench, kind, iters, warmup, timeout):
    s = bench.srv[kind]
    _, kid, conn = bench.timed_start(s, timeout, snapshot=False)
    try:
        for _ in range(warmup):
            one_round_trip(conn, timeout)
        runs = [one_round_trip(conn, timeout) for _ in range(iters)]
        with IdleSpinners(os.cpu_count() or 1):
            for _ in range(warmup):
                one_round_trip(conn, timeout)
            awake = [one_round_trip(conn, timeout)["total"] for _ in range(iters)]
    finally:
        bench.drop(s, kid, conn, timeout)
    missing = [st for st in STEPS if any(st not in r for r in runs)]
    m = {"total": med([r["total"] for r in runs]),
         "inbound": med([r["busy"] for r in runs]),
         "kernel": med([r["idle"] - r["busy"] for r in runs if "idle" in r]),
         "outbound": med([r["total"] - r["idle"] for r in runs if "idle" in r])}
    prev = "busy"
    for st in STEPS[1:]:
        if st in missing:
            continue
        m[f"{prev} -> {st}"] = med([r[st] - r[prev] for r in runs])
        prev = st
    m["missing"] = missing
    m["awake"] = med(awake)
    return m


def report(bench, res, args, res_floor):
    kinds = list(res)
    m = gb.machine_info()
    lines = ["## Where a `1+1` round trip goes", "",
             f"Command: `/usr/bin/python3 bench/rtt_profile.py --builddir {args.builddir}"
             f" --iters {args.iters}" + (f" --markdown {args.markdown}`" if args.markdown else "`"),
             "",
             f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['kernel']}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"1-min load average {bench.load_before} before, {loadavg()} after the run",
             f"- sandcell git {bench.rev}, meson {bench.build}; {args.iters} round trips per server after "
             f"{args.warmup} warm-up, one WebSocket each (v1 framing)",
             "",
             "| Part (median, µs) | " + " | ".join(gb.LABEL[k] for k in kinds) + " |",
             "|---|" + "---:|" * len(kinds)]
    rows = ["total", "inbound", "kernel", "outbound"]
    for k in kinds:
        for key in res[k]:
            if "->" in key and key not in rows:
                rows.append(key)
    names = {"total": "round trip (client sends → has reply and idle)",
             "inbound": "inbound: client sends → kernel stamps busy",
             "kernel": "kernel: busy → idle",
             "outbound": "outbound: idle stamped → client has reply and idle"}
    for r in rows:
        cells = []
        for k in kinds:
            v = res[k].get(r)
            cells.append("–" if v is None else f"{v:.0f}")
        lines.append(f"| {names.get(r, '  kernel: ' + r)} | " + " | ".join(cells) + " |")
    lines.append("| round trip with the CPUs kept awake (SCHED_IDLE spinners, one per CPU) | "
                 + " | ".join(f"{res[k]['awake']:.0f}" for k in kinds) + " |")
    lines += ["",
              f"For scale: a one-byte libzmq echo (DEALER → ROUTER → DEALER over `ipc://` between two "
              f"processes, pyzmq) takes {res_floor:.0f} µs here, median of 3000: the floor of the libzmq "
              "part of a round trip (the gateway's request to the kernel, the kernel's messages back, "
              "each through the sender's and the receiver's I/O threads).",
              "",
              "The last row runs the same round trips again while one process per CPU spins under "
              "`SCHED_IDLE`: such a process runs only when nothing else wants the CPU, so it takes no "
              "time from the servers, but no CPU ever goes idle. The difference to the first row is "
              "what waking idle CPUs costs on this machine (on a virtual machine, a halted virtual "
              "CPU is woken through the hypervisor).",
              "",
              "The parts are medians of their own, so they need not add up to the median round trip "
              "exactly. Stamps are the kernel's header dates (microseconds, this machine's clock); "
              "the client's send time is taken just before its write."]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--builddir", default="build")
    p.add_argument("--only", choices=[gb.SANDCELL, gb.JUPYTER])
    p.add_argument("--iters", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--python", default="/usr/bin/python3")
    a = p.parse_args(argv)
    # what gateway_bench's servers read from their Bench's arguments
    a.session_levels = [1]
    a.shutdown_wait = 20.0
    a.keep_tmp = False
    return a


def main(argv):
    a = parse_args(argv)
    kinds = [a.only] if a.only else [gb.SANDCELL, gb.JUPYTER]
    bench = gb.Bench(a)
    bench.gateway_path = os.path.abspath(os.path.join(a.builddir, "gateway", "sandcell"))
    bench.load_before = loadavg()
    res = {}
    try:
        bench.setup(kinds)
        bench.rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
        bench.build = meson_build_type(a.builddir)
        for k in kinds:
            gb.log(f"{gb.SHORT[k]}: {a.iters} round trips")
            res[k] = profile(bench, k, a.iters, a.warmup, a.timeout)
    finally:
        bench.cleanup()
    floor = zmq_echo_floor()
    text = report(bench, res, a, floor)
    print(text)
    if a.markdown:
        write_marked(a.markdown, text + "\n", MARK_BEGIN, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
