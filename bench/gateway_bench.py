#!/usr/bin/python3
"""Gateway benchmark: the sandcell gateway against Debian's jupyter-server + ipykernel.

Run with Debian's interpreter (it has python3-websocket, jupyter-server 1.23, ipykernel 6.17):

    /usr/bin/python3 bench/gateway_bench.py --builddir build

Both servers are driven the same way, as a browser drives Jupyter: REST over HTTP and one
WebSocket per kernel on /api/kernels/{id}/channels with the `v1.kernel.websocket.jupyter.org`
subprotocol (binary frames; the encoder and decoder are written here). In one run it measures,
for each server:

  start        POST /api/kernels -> WebSocket opened -> kernel_info_request sent -> its
               kernel_info_reply received (N starts each, alternating between the servers);
  execute      `1+1`: execute_request sent -> execute_reply AND iopub status idle received
               (warm-up, then M round trips each, in alternating blocks);
  first byte   `print('x')`: execute_request sent -> first stream message received;
  streaming    a cell writing 50 MB to stdout in 1 MB writes: MB/s of stream text received,
               execute_request sent -> idle;
  sessions     50 kernels, one WebSocket each, all looping `1+1` for a fixed time from one
               client thread (a poll loop): executes/s and latency;
  memory       with those sessions up: gateway RSS, total PSS of the kernel processes.

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
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import machine_info as benchlib_machine_info  # noqa: E402
from benchlib import percentile, fmt_ratio, git_rev, loadavg, meson_build_type, write_marked  # noqa: E402
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
START_TARGET = 10.0
EXEC_TARGET = 5.0
CODE = "1+1"
FIRST_BYTE_CODE = "print('x')"
MARK_BEGIN = "<!-- gateway_bench:begin -->"
MARK_END = "<!-- gateway_bench:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def descendants(pid):
    """{pid: starttime} of every live descendant of pid."""
    kids = {}
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                stats[int(name)] = st
                kids.setdefault(st[1], []).append(int(name))
    out, todo = {}, [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out and stats[c][0] not in ("Z", "X"):
                out[c] = stats[c][3]
                todo.append(c)
    return out


def alive(pid, starttime):
    st = proc_stat(pid)
    return bool(st) and st[3] == starttime and st[0] not in ("Z", "X")


def cpu_ticks(pids):
    total = 0
    for p in pids:
        st = proc_stat(p)
        if st:
            total += st[2]
    return total


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


def machine_info():
    """benchlib's machine facts and the machine's memory."""
    info = benchlib_machine_info()
    info["memory"] = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                    break
    except OSError:
        pass
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
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)
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
                select.select([], [self.fd], [], left)
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
                     "--max-kernels", str(max(64, a.sessions + 8))]
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


class Bench:
    def __init__(self, args):
        self.args = args
        self.servers = []
        self.conns = []
        self.tmp = None
        self.notes = []
        self.kinfo = {}
        self.results = {}

    def setup(self, kinds):
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

    def timed_start(self, s, timeout):
        """POST /api/kernels, open the WebSocket, kernel_info. Returns (seconds, id, Conn)."""
        t0 = time.perf_counter()
        try:
            st, body = s.rest("POST", "/api/kernels", {"name": KERNEL_NAME[s.kind]}, timeout=timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise MeasureError(f"{SHORT[s.kind]}: POST /api/kernels: {exc!r}")
        if st != 201 or not isinstance(body, dict) or "id" not in body:
            raise MeasureError(f"{SHORT[s.kind]}: POST /api/kernels: {st} {body!r}")
        kid = body["id"]
        s.kernels.add(kid)
        left = max(1.0, t0 + timeout - time.perf_counter())
        conn = Conn(s, kid, left)
        self.conns.append(conn)
        info = conn.request_reply("kernel_info_request", "kernel_info_reply",
                                  max(1.0, t0 + timeout - time.perf_counter()))
        elapsed = time.perf_counter() - t0
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
            log(f"start {i + 1}/{a.starts}: " + ", ".join(f"{SHORT[k]} {res[k][-1]:.1f} ms" for k in kinds))
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
        expect = mb * 1_000_000
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
                stream[k].append(chars / 1e6 / secs)
                stream_cpu[k].append(cpu / secs)
                if chars != expect or stderr:
                    self.notes.append(
                        f"{SHORT[k]}: streaming run {i + 1} delivered {chars} of {expect} stdout "
                        f"characters" + (f"; stderr: {''.join(stderr)[:300]!r}" if stderr else ""))
                log(f"stream {SHORT[k]}: {chars / 1e6:.1f} MB in {secs:.2f} s = {stream[k][-1]:.0f} MB/s "
                    f"(client CPU {cpu / secs * 100:.0f}%)")
        for k in kinds:
            self.drop(self.srv[k], kids[k], conns[k], a.timeout)
        return lat, qa, fb, stream, stream_cpu

    # ---- concurrent sessions + memory ----------------------------------------------

    def measure_sessions(self, k):
        a = self.args
        s = self.srv[k]
        res = {"wanted": a.sessions, "started": 0, "start_error": None, "stalled": 0, "closed": 0,
               "latency_ms": [], "executes": 0, "executes_per_s": None, "per_session": [],
               "memory": None, "cpu": None, "start_s": None}
        conns, kids = [], []
        log(f"{SHORT[k]}: starting {a.sessions} kernels one after another")
        t_begin = time.monotonic()
        for i in range(a.sessions):
            try:
                _, kid, conn = self.timed_start(s, a.session_start_timeout)
            except MeasureError as exc:
                res["start_error"] = f"kernel {i + 1}: {exc}"
                log(f"{SHORT[k]}: could not start session {i + 1}: {exc}")
                if s.proc.poll() is not None:
                    raise self.fail(s, f"{SHORT[k]} exited while starting session {i + 1}")
                break
            conns.append(conn)
            kids.append(kid)
            if (i + 1) % 10 == 0:
                log(f"{SHORT[k]}: {i + 1} kernels up ({time.monotonic() - t_begin:.0f} s)")
        res["start_s"] = time.monotonic() - t_begin
        res["started"] = len(conns)
        try:
            if conns:
                for c in conns:  # one unrecorded execute each: every session is warm
                    c.run(CODE, a.session_start_timeout)
                s.snapshot()
                self.load(s, conns, res)
                time.sleep(0.5)
                res["memory"] = self.memory(s)
        finally:
            log(f"{SHORT[k]}: deleting {len(kids)} kernels")
            for c in conns:
                c.close()
                if c in self.conns:
                    self.conns.remove(c)
            errors = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                futs = [pool.submit(s.delete_kernel, kid, a.timeout * 2) for kid in kids]
                for f in futs:
                    try:
                        f.result()
                    except MeasureError as exc:
                        errors.append(str(exc))
            if errors:
                self.notes.append(f"{SHORT[k]}: {len(errors)} kernel deletions failed: {errors[0]}")
        return res

    def load(self, s, conns, res):
        """All sessions loop `1+1` for --load-warmup + --seconds; records the timed window."""
        a = self.args
        content = execute_content(CODE)
        poller = select.poll()
        by_fd = {}
        state = {}  # fd -> [conn, msg_id, t0_ns, reply, idle, count]
        for c in conns:
            poller.register(c.fd, select.POLLIN)
            by_fd[c.fd] = c
        timeout_ns = int(a.timeout * 1e9)
        lat = []
        kernel_pids = s.kernel_pids()
        tck = CLK_TCK

        def send(c, st):
            st[2] = time.perf_counter_ns()
            st[1] = c.send("shell", "execute_request", content)
            st[3] = st[4] = False

        gc_was = gc.isenabled()
        gc.disable()
        try:
            t_start = time.perf_counter_ns()
            t_meas = t_start + int(a.load_warmup * 1e9)
            t_end = t_meas + int(a.seconds * 1e9)
            for c in conns:
                st = state[c.fd] = [c, None, 0, False, False, 0]
                send(c, st)
            busy = len(conns)
            cpu0 = None
            cpu1 = None
            last_check = t_start
            while busy:
                now = time.perf_counter_ns()
                if cpu0 is None and now >= t_meas:
                    cpu0 = (now, cpu_ticks([s.proc.pid]), cpu_ticks(kernel_pids), time.process_time())
                if now - last_check > 500_000_000:  # stalls
                    last_check = now
                    for fd, st in list(state.items()):
                        if st[1] is not None and now - st[2] > timeout_ns:
                            res["stalled"] += 1
                            log(f"{SHORT[s.kind]}: session {st[0].kernel_id} stalled: no "
                                f"{'execute_reply' if not st[3] else 'idle'} within {a.timeout:.0f}s")
                            st[1] = None
                            busy -= 1
                            poller.unregister(fd)
                    if now > t_end + timeout_ns:
                        break
                wait_ms = 100
                if cpu0 is None:
                    wait_ms = max(0, min(wait_ms, (t_meas - now) // 1_000_000 + 1))
                elif cpu1 is None:
                    wait_ms = max(0, min(wait_ms, (t_end - now) // 1_000_000 + 1))
                for fd, ev in poller.poll(wait_ms):
                    st = state[fd]
                    c = st[0]
                    try:
                        msgs = c.read_ready()
                    except WSClosed as exc:
                        res["closed"] += 1
                        log(f"{SHORT[s.kind]}: session {c.kernel_id}: {exc}")
                        poller.unregister(fd)
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
                        elif mtype == "status" and json.loads(parts[3]).get("execution_state") == "idle":
                            st[4] = True
                        if st[3] and st[4]:
                            t1 = time.perf_counter_ns()
                            if t_meas <= t1 <= t_end:
                                lat.append((t1 - st[2]) / 1e6)
                                st[5] += 1
                            if t1 < t_end:
                                send(c, st)
                            else:
                                st[1] = None
                                busy -= 1
                now = time.perf_counter_ns()
                if cpu1 is None and cpu0 is not None and now >= t_end:
                    cpu1 = (now, cpu_ticks([s.proc.pid]), cpu_ticks(kernel_pids), time.process_time())
        finally:
            if gc_was:
                gc.enable()
        if cpu1 is None:
            cpu1 = (time.perf_counter_ns(), cpu_ticks([s.proc.pid]), cpu_ticks(kernel_pids), time.process_time())
        if cpu0 is not None:
            wall = (cpu1[0] - cpu0[0]) / 1e9
            res["cpu"] = {"gateway": (cpu1[1] - cpu0[1]) / tck / wall, "kernels": (cpu1[2] - cpu0[2]) / tck / wall,
                          "client": (cpu1[3] - cpu0[3]) / wall}
            res["per_session"] = [st[5] for st in state.values()]
        res["latency_ms"] = lat
        res["executes"] = len(lat)
        res["executes_per_s"] = len(lat) / a.seconds
        log(f"{SHORT[s.kind]}: {len(lat)} executes in {a.seconds:g} s over {len(conns)} sessions = "
            f"{len(lat) / a.seconds:.0f}/s, p50 {percentile(lat, 50) or 0:.1f} ms, p99 {percentile(lat, 99) or 0:.1f} ms"
            + (f"; CPU: gateway {res['cpu']['gateway'] * 100:.0f}%, kernels {res['cpu']['kernels'] * 100:.0f}%, "
               f"client {res['cpu']['client'] * 100:.0f}%" if res["cpu"] else ""))

    def memory(self, s):
        g = smaps_rollup(s.proc.pid)
        if g is None:
            raise self.fail(s, f"{SHORT[s.kind]}: cannot read the gateway's smaps_rollup")
        pids = s.kernel_pids()
        rss = pss = n = 0
        for p in pids:
            m = smaps_rollup(p)
            if m:
                rss += m[0]
                pss += m[1]
                n += 1
        mem = {"gateway_rss": g[0], "gateway_pss": g[1], "kernel_processes": n,
               "kernels_rss": rss, "kernels_pss": pss}
        log(f"{SHORT[s.kind]} memory: gateway RSS {g[0] / 1024:.1f} MiB; {n} kernel processes, "
            f"PSS {pss / 1024:.1f} MiB in all")
        return mem

    # ---- report -----------------------------------------------------------------

    def report(self, kinds, starts, lat, qa, fb, stream, stream_cpu, sess):
        a = self.args
        m = machine_info()
        both = SANDCELL in kinds and JUPYTER in kinds

        def val(k, fn):
            return fn(k) if k in kinds else None

        def row(title, fn, digits, better="lower"):
            sc, jp = val(SANDCELL, fn), val(JUPYTER, fn)
            r = div(jp, sc) if better == "lower" else div(sc, jp)
            return f"| {title} | {fmt_num(sc, digits)} | {fmt_num(jp, digits)} | {fmt_ratio(r)} |", r

        lines = ["## Gateway: kernel start, round trip, streaming, 50 sessions", ""]
        lines.append(f"Command: `{a.command}`")
        lines.append("")
        lines.append(f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['memory']}, {m['kernel']}; "
                     f"{m['date']}; 1-min load average {self.load_before} before, {loadavg()} after the run")
        desc = []
        if SANDCELL in kinds:
            ki = self.kinfo.get(SANDCELL, {})
            rev = git_rev(os.path.dirname(os.path.abspath(__file__)))
            build = meson_build_type(self.args.builddir)
            desc.append(f"sandcell {self.srv[SANDCELL].version} (`{self.gateway_path}`"
                        f"{', git ' + rev if rev else ''}{', meson ' + build if build else ''}; kernel "
                        f"{ki.get('implementation', '?')} {ki.get('implementation_version', '?')}, "
                        f"Python {ki.get('language_info', {}).get('version', '?')}); its defaults, "
                        "so kernels come from its pool of ready kernels (`--kernel-pool 2`) when "
                        "one is there: the start row is what a client waits for, not a cold start "
                        "(`sandbox_bench.py` measures those)")
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
                     "reader, TCP_NODELAY; subprotocol `v1.kernel.websocket.jupyter.org`")
        lines.append(
            f"- Samples: {a.starts} starts per server after {a.start_warmup} warm-up; {a.iters} `{CODE}` "
            f"round trips after {a.warmup} warm-up; {a.first_byte_runs} first-byte runs; {a.stream_runs} "
            f"streaming run(s) of {a.stream_mb} MB; {a.sessions} sessions for {a.seconds:g} s after "
            f"{a.load_warmup:g} s of warm-up"
            + ("; starts alternate between the servers, round trips alternate in blocks of "
               f"{a.block}, streaming runs alternate; the session runs are one server after the other"
               if both else ""))
        lines.append("")
        lines.append("| Metric | sandcell | jupyter-server + ipykernel | ratio |")
        lines.append("|---|---:|---:|---:|")
        r_start = r_exec = None
        for title, p in (("kernel start min (ms)", 0), ("kernel start p50 (ms)", 50), ("kernel start p90 (ms)", 90)):
            text, r = row(title, lambda k, p=p: percentile(starts[k], p), 1)
            lines.append(text)
            if p == 50:
                r_start = r
        for title, fn in ((f"execute `{CODE}` p50 (µs)", lambda k: percentile(lat[k], 50)),
                          ("execute p99 (µs)", lambda k: percentile(lat[k], 99)),
                          ("execute mean (µs)", lambda k: mean(lat[k]))):
            text, r = row(title, fn, 0)
            lines.append(text)
            if r_exec is None:
                r_exec = r
        r_qa = None
        if not a.no_quickack_row:
            text, r_qa = row(f"execute `{CODE}` p50, client TCP_QUICKACK (µs)",
                             lambda k: percentile(qa[k], 50), 0)
            lines.append(text)
        lines.append(row(f"first stream message, `{FIRST_BYTE_CODE}`, p50 (µs)",
                         lambda k: percentile(fb[k], 50), 0)[0])
        lines.append(row(f"streaming {a.stream_mb} MB of stdout, median (MB/s)",
                         lambda k: median(stream[k]), 0, better="higher")[0])
        n = a.sessions

        def sess_ok(k, fn):
            r = sess[k]
            return fn(r) if r["started"] else None

        lines.append(row(f"{n} sessions: sessions running", lambda k: sess[k]["started"], 0, better="higher")[0])
        lines.append(row(f"{n} sessions: executes/s (all sessions)",
                         lambda k: sess_ok(k, lambda r: r["executes_per_s"]), 0, better="higher")[0])
        lines.append(row(f"{n} sessions: execute p50 (ms)",
                         lambda k: sess_ok(k, lambda r: percentile(r["latency_ms"], 50)), 1)[0])
        lines.append(row(f"{n} sessions: execute p99 (ms)",
                         lambda k: sess_ok(k, lambda r: percentile(r["latency_ms"], 99)), 1)[0])
        mem = lambda key, per=False: (lambda k: sess_ok(  # noqa: E731
            k, lambda r: None if not r["memory"] else
            r["memory"][key] / 1024 / (r["started"] if per else 1)))
        lines.append(row(f"{n} sessions: gateway RSS (MiB)", mem("gateway_rss"), 1)[0])
        lines.append(row(f"{n} sessions: kernels' PSS, total (MiB)", mem("kernels_pss"), 0)[0])
        lines.append(row(f"{n} sessions: kernels' PSS per kernel (MiB)", mem("kernels_pss", True), 1)[0])
        lines.append("")
        lines.append(
            "Ratios are jupyter-server/sandcell for times and memory, sandcell/jupyter-server for "
            "throughput: above 1 favours sandcell. start: from sending `POST /api/kernels` until the "
            "`kernel_info_reply` arrives on a WebSocket opened right after the POST returned; every kernel "
            "is deleted after. execute: `execute_request` sent until `execute_reply` and iopub `status: idle` "
            "have both arrived. "
            + ("" if a.no_quickack_row else
               "TCP_QUICKACK row: the same, with the client re-arming `TCP_QUICKACK` after every "
               "read, so that it never delays an ACK. ")
            + "first stream message: `execute_request` sent until the first `stream` "
            f"message. streaming: `sys.stdout.write('x' * 1_000_000)` {a.stream_mb} times, stdout "
            "characters received / time from `execute_request` to idle (MB = 10^6 bytes). sessions: "
            f"{n} kernels started one after another, one WebSocket each, all looping `{CODE}` from one "
            "client thread (a poll loop); executes/s counts round trips completed in the timed window. "
            "memory: `/proc/PID/smaps_rollup` right after the session run, with the sessions still "
            "connected: RSS of the gateway process, PSS summed over its descendant (kernel) processes.")
        cpu_bits = []
        for k in kinds:
            c = sess[k].get("cpu")
            if c:
                cpu_bits.append(f"{SHORT[k]}: gateway {c['gateway'] * 100:.0f}%, kernels "
                                f"{c['kernels'] * 100:.0f}%, client {c['client'] * 100:.0f}%")
        if cpu_bits:
            lines.append("")
            lines.append("CPU during the session run (100% = one CPU): " + "; ".join(cpu_bits) + ".")
        sc_bits = [f"{SHORT[k]} {mean(stream_cpu[k]) * 100:.0f}%" for k in kinds if stream_cpu[k]]
        if sc_bits:
            lines.append(f"Client CPU during streaming (share of the run's wall time): {', '.join(sc_bits)}.")
        for k in kinds:
            r = sess[k]
            bits = []
            if r["started"] < r["wanted"]:
                bits.append(f"only {r['started']} of {r['wanted']} sessions started ({r['start_error']})")
            if r["stalled"]:
                bits.append(f"{r['stalled']} session(s) stalled (no reply within {a.timeout:.0f}s)")
            if r["closed"]:
                bits.append(f"{r['closed']} WebSocket(s) closed by the server")
            if r["per_session"] and r["started"]:
                ps = r["per_session"]
                bits.append(f"executes per session in the window: min {min(ps)}, max {max(ps)}; "
                            f"{r['started']} kernels started in {r['start_s']:.0f} s")
            if bits:
                self.notes.append(f"{SHORT[k]} sessions: " + "; ".join(bits))
        if JUPYTER in kinds and not a.no_quickack_row:
            p_stock, p_qa = percentile(lat[JUPYTER], 50), percentile(qa[JUPYTER], 50)
            if p_stock and p_qa and p_stock > 2 * p_qa:
                self.notes.append(
                    "jupyter-server 1.23 leaves Nagle's algorithm on for its WebSockets (tornado does not "
                    "set TCP_NODELAY unless the handler asks). A reply that follows another small frame "
                    "waits for the client's delayed ACK (about 40 ms on Linux), which is most of its "
                    "round trip and first-stream-message times above and slows its session run too; a "
                    "browser sees the same. With the client acknowledging at once (TCP_QUICKACK row) its "
                    f"`{CODE}` p50 is {p_qa:.0f} µs instead of {p_stock:.0f} µs; the execute speedup "
                    f"measured that way is {fmt_ratio(r_qa)}.")
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        lines.append("")
        only = f" (--only {a.only})" if a.only else ""
        lines.append(f"gateway start speedup: {fmt_ratio(r_start)}{only} (target >= {START_TARGET:g}x)")
        lines.append(f"gateway execute p50 speedup: {fmt_ratio(r_exec)}{only} (target >= {EXEC_TARGET:g}x)")
        return "\n".join(lines) + "\n"


def write_markdown(path, report):
    write_marked(path, report, MARK_BEGIN, MARK_END)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark the sandcell gateway against jupyter-server + ipykernel over the "
                    "kernel WebSocket API: start, round trip, streaming, concurrent sessions, memory.")
    p.add_argument("--builddir", default="build", help="meson build dir (default: build)")
    p.add_argument("--only", choices=["sandcell", "jupyter"], help="measure one server only (ratios become n/a)")
    p.add_argument("--starts", type=int, default=10, help="measured kernel starts per server (default 10)")
    p.add_argument("--start-warmup", type=int, default=1, help="unmeasured starts per server first (default 1)")
    p.add_argument("--iters", type=int, default=300, help="measured `1+1` round trips per server (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up round trips per server (default 20)")
    p.add_argument("--block", type=int, default=50, help="round trips per server before switching (default 50)")
    p.add_argument("--no-quickack-row", action="store_true",
                   help="skip the round trips with client TCP_QUICKACK")
    p.add_argument("--first-byte-runs", type=int, default=50, help="`print('x')` runs per server (default 50)")
    p.add_argument("--stream-mb", type=int, default=50, help="MB written by the streaming cell (default 50)")
    p.add_argument("--stream-runs", type=int, default=3, help="streaming runs per server (default 3)")
    p.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    p.add_argument("--seconds", type=float, default=10.0, help="timed window of the session run (default 10)")
    p.add_argument("--load-warmup", type=float, default=2.0,
                   help="seconds of session load before the timed window (default 2)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="pause in seconds before each start and at each switch between servers (default 0.2)")
    p.add_argument("--markdown", metavar="FILE",
                   help=f"also write the report into FILE, between {MARK_BEGIN} and {MARK_END} "
                        "(appended if they are missing)")
    p.add_argument("--json", metavar="FILE", help="also write the raw samples to FILE")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter for jupyter-server and ipykernel (default /usr/bin/python3)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for any single reply (default 30)")
    p.add_argument("--session-start-timeout", type=float, default=120.0,
                   help="seconds one kernel start may take during the session ramp-up (default 120)")
    p.add_argument("--shutdown-wait", type=float, default=20.0,
                   help="seconds a server gets to exit after SIGTERM before SIGKILL (default 20)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs)")
    a = p.parse_args(argv)
    if min(a.starts, a.iters, a.block, a.first_byte_runs, a.stream_runs, a.sessions, a.stream_mb) < 1:
        p.error("--starts/--iters/--block/--first-byte-runs/--stream-runs/--sessions/--stream-mb must be >= 1")
    if a.warmup < 0 or a.start_warmup < 0 or a.settle < 0 or a.seconds <= 0 or a.load_warmup < 0:
        p.error("warm-ups and --settle must be >= 0, --seconds > 0")
    a.command = shlex.join(["/usr/bin/python3", "bench/gateway_bench.py"] + list(argv))
    return a


def main(argv):
    a = parse_args(argv)
    kinds = [a.only] if a.only else [SANDCELL, JUPYTER]
    bench = Bench(a)
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
        starts = bench.measure_starts(kinds)
        lat, qa, fb, stream, stream_cpu = bench.measure_single(kinds)
        sess = {k: bench.measure_sessions(k) for k in kinds}
        report = bench.report(kinds, starts, lat, qa, fb, stream, stream_cpu, sess)
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
                "servers": {SHORT[k]: {
                    "start_ms": starts[k],
                    "execute_us": lat[k],
                    "execute_quickack_us": qa[k],
                    "first_stream_us": fb[k],
                    "stream_mb_per_s": stream[k],
                    "stream_client_cpu": stream_cpu[k],
                    "sessions": sess[k],
                } for k in kinds},
                "notes": bench.notes,
            }, f, indent=1)
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
