"""Shared harness for the gateway integration tests.

Which server is tested (environment):
  SANDCELL_GW_TARGET=sandcell   (default) <SANDCELL_BUILDDIR>/gateway/sandcell, with
                                SANDCELL_BUILDDIR defaulting to <repo>/build.
  SANDCELL_GW_TARGET=jupyter    Debian's jupyter-server 1.23 with ipykernel (kernel `python3`):
                                the reference implementation of the same API, used to check
                                the tests themselves. Tests of behaviour where sandcell is
                                specified to do better (``@sandcell_only``) are skipped there,
                                and only there.

What it gives:
  Server       starts the server under test on 127.0.0.1 with a token, a free port and private
               temporary directories; REST helpers over http.client; remembers the pid of every
               kernel process it saw and, on stop(), checks that none is left running.
  KernelWS     a WebSocket client for /api/kernels/{id}/channels speaking both framings (the
               legacy JSON one and v1.kernel.websocket.jupyter.org), with message helpers.
  v1_encode / v1_decode / legacy_encode / legacy_decode   the framings, written here from the
               specification so that the tests do not share code with either server.

Use Debian's /usr/bin/python3 (python3-websocket, python3-jupyter-server, python3-ipykernel).
Every wait is bounded; all traffic goes to 127.0.0.1.
"""

import atexit
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

try:
    import websocket  # Debian: python3-websocket (websocket-client)
except ImportError as e:  # pragma: no cover - environment problem
    raise SystemExit(
        "gateway tests need Debian's python3-websocket; run them with /usr/bin/python3 (%s)" % e
    )

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

TARGET = os.environ.get("SANDCELL_GW_TARGET", "sandcell").strip().lower()
if TARGET in ("jupyter", "jupyter-server", "jupyter_server", "reference"):
    TARGET = "jupyter"
elif TARGET != "sandcell":
    raise SystemExit("SANDCELL_GW_TARGET must be 'sandcell' or 'jupyter', not %r" % TARGET)
REFERENCE = TARGET == "jupyter"
BUILDDIR = os.path.abspath(os.environ.get("SANDCELL_BUILDDIR") or os.path.join(REPO, "build"))
GATEWAY_EXE = os.path.join(BUILDDIR, "gateway", "sandcell")
KERNEL_EXE = os.path.join(BUILDDIR, "kernel", "sandcell-kernel")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"

# A kernel whose import policy lets tests kill it from a cell (os._exit): sandcell's permissive
# profile; the reference has only its default kernel (None: the default).
PERMISSIVE_KERNEL = None if TARGET == "jupyter" else "sandcell-permissive"
ISO_MICRO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# SANDCELL_GW_RUN_ALL=1 runs the sandcell-only tests in reference mode too: they should fail
# there, for the reasons they state (a check of the tests, not of a server).
sandcell_only = unittest.skipIf(
    REFERENCE and not os.environ.get("SANDCELL_GW_RUN_ALL"),
    "sandcell-specific behaviour (skipped against the jupyter-server reference)"
)

# One private directory for this process; /tmp is shared with other sessions.
TMP = tempfile.mkdtemp(prefix="sc-gwit-")
atexit.register(shutil.rmtree, TMP, True)

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

# Every server still running; stopped at exit, also when the test process is sent SIGTERM
# (meson's timeout) or SIGHUP.
_LIVE = set()


def _stop_all():
    for srv in list(_LIVE):
        try:
            srv.stop(timeout=10, check=False)
        except Exception:
            srv.kill()


atexit.register(_stop_all)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _on_signal)


def _die_with_parent():
    """preexec_fn: the server gets SIGTERM (and so stops its kernels) if we die."""
    import ctypes
    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


def check_target():
    """Raises a clear error when the server under test cannot be run."""
    if REFERENCE:
        r = subprocess.run([PYTHON, "-c", "import jupyter_server, ipykernel"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("reference mode needs Debian's python3-jupyter-server and "
                               "python3-ipykernel: " + r.stdout.decode(errors="replace"))
        return
    for exe in (GATEWAY_EXE, KERNEL_EXE):
        if not os.access(exe, os.X_OK):
            raise RuntimeError(
                "%s is missing: build sandcell (ninja -C %s) or set SANDCELL_BUILDDIR; to check "
                "the tests themselves against jupyter-server set SANDCELL_GW_TARGET=jupyter"
                % (exe, BUILDDIR))


# ---------------------------------------------------------------------------
# Framings
# ---------------------------------------------------------------------------

class FramingError(ValueError):
    pass


def v1_encode(channel, parts):
    """v1.kernel.websocket.jupyter.org: u64le n | u64le offset[n] | channel | parts...

    parts: header, parent_header, metadata, content (bytes) then the buffers.
    n = len(parts) + 2; offset[0] = 8 * (1 + n) is where the channel starts; the last offset
    is the total length.
    """
    chunks = [channel.encode("utf-8") if isinstance(channel, str) else bytes(channel)]
    chunks += [bytes(p) for p in parts]
    n = len(chunks) + 1
    offsets = [8 * (1 + n)]
    for c in chunks:
        offsets.append(offsets[-1] + len(c))
    return struct.pack("<%dQ" % (1 + n), n, *offsets) + b"".join(chunks)


def v1_decode(data):
    """Returns (channel, [parts...]) of a v1 frame; raises FramingError on a bad frame."""
    data = bytes(data)
    if len(data) < 8:
        raise FramingError("v1 frame of %d bytes" % len(data))
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 2 or 8 * (1 + n) > len(data):
        raise FramingError("v1 offset count %d for a frame of %d bytes" % (n, len(data)))
    offsets = struct.unpack_from("<%dQ" % n, data, 8)
    if offsets[0] != 8 * (1 + n) or offsets[-1] != len(data):
        raise FramingError("v1 offsets %r for a frame of %d bytes" % (offsets, len(data)))
    if any(b < a for a, b in zip(offsets, offsets[1:])):
        raise FramingError("v1 offsets not increasing: %r" % (offsets,))
    channel = data[offsets[0]:offsets[1]].decode("utf-8")
    parts = [data[offsets[i]:offsets[i + 1]] for i in range(1, n - 1)]
    return channel, parts


def legacy_encode(msg_dict, buffers=()):
    """Legacy framing: a JSON text frame, or with buffers a binary frame
    u32be nbufs | u32be offset[nbufs] | json | buf0 | buf1 ... (nbufs = len(buffers) + 1).
    Returns (opcode, payload)."""
    body = json.dumps(msg_dict, separators=(",", ":")).encode("utf-8")
    if not buffers:
        return websocket.ABNF.OPCODE_TEXT, body
    nbufs = len(buffers) + 1
    offsets = [4 * (nbufs + 1)]
    offsets.append(offsets[0] + len(body))
    for b in buffers[:-1]:
        offsets.append(offsets[-1] + len(b))
    head = struct.pack(">%dI" % (nbufs + 1), nbufs, *offsets)
    return websocket.ABNF.OPCODE_BINARY, head + body + b"".join(bytes(b) for b in buffers)


def legacy_decode(opcode, data):
    """Returns (msg_dict, [buffers]) of a legacy frame; raises FramingError on a bad one."""
    if opcode == websocket.ABNF.OPCODE_TEXT:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text), []
    data = bytes(data)
    if len(data) < 4:
        raise FramingError("legacy binary frame of %d bytes" % len(data))
    (nbufs,) = struct.unpack_from(">I", data, 0)
    if nbufs < 1 or 4 * (nbufs + 1) > len(data):
        raise FramingError("legacy nbufs %d for %d bytes" % (nbufs, len(data)))
    offsets = list(struct.unpack_from(">%dI" % nbufs, data, 4)) + [len(data)]
    if offsets[0] != 4 * (nbufs + 1) or any(b < a for a, b in zip(offsets, offsets[1:])):
        raise FramingError("legacy offsets %r for %d bytes" % (offsets, len(data)))
    msg = json.loads(data[offsets[0]:offsets[1]].decode("utf-8"))
    bufs = [data[offsets[i]:offsets[i + 1]] for i in range(1, nbufs)]
    return msg, bufs


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def clean_env():
    """The environment for a server: without SANDCELL_* variables (sandcell reads its options
    from them and refuses unknown ones, such as the harness's SANDCELL_BUILDDIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDCELL_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid):
    """(state, ppid, starttime) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def _children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st:
                kids.setdefault(st[1], []).append(int(name))
    return kids


def descendants(pid):
    """{pid: starttime} of every live descendant of pid."""
    kids = _children_map()
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            st = _proc_stat(c)
            if st and c not in out:
                out[c] = st[2]
                todo.append(c)
    return out


def alive(pid, starttime):
    st = _proc_stat(pid)
    return bool(st) and st[2] == starttime and st[0] not in ("Z", "X")


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _socket_inode(local_port, remote_port):
    """Inode of the 127.0.0.1 TCP socket local_port -> remote_port, from /proc/net/tcp."""
    want_l = "0100007F:%04X" % local_port
    want_r = "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == want_l and cols[2] == want_r:
                return int(cols[9])
    return None


def peer_socket_option(pid, server_port, client_sock, level, option):
    """Reads a socket option of the server's end of client_sock's TCP connection, by
    duplicating the server's descriptor with pidfd_getfd(2) (needs ptrace rights: root here).
    Returns the option's int value; raises OSError/LookupError if it cannot be read."""
    import ctypes
    client_port = client_sock.getsockname()[1]
    inode = _socket_inode(server_port, client_port)
    if inode is None:
        raise LookupError("no socket 127.0.0.1:%d -> :%d in /proc/net/tcp"
                          % (server_port, client_port))
    target = "socket:[%d]" % inode
    fdnum = None
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, name)) == target:
                fdnum = int(name)
                break
        except OSError:
            continue
    if fdnum is None:
        raise LookupError("server %d holds no descriptor for %s" % (pid, target))
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, fdnum, 0)  # SYS_pidfd_getfd (x86-64 and arm64 alike)
        if dup < 0:
            err = ctypes.get_errno()
            raise OSError(err, "pidfd_getfd: " + os.strerror(err))
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=dup)
    try:
        return s.getsockopt(level, option)
    finally:
        s.close()


# ---------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("response %d is not JSON (%s): %r"
                                 % (self.status, e, self.body[:300]))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


_DEFAULT = object()


class Server:
    """The server under test (sandcell or jupyter-server), on 127.0.0.1 with a token.

    options: sandcell long options without '--' ({"max-kernels": 2}); ignored for jupyter.
    jupyter_args: extra command-line arguments for jupyter-server only.
    gateway_url/gateway_token: start jupyter-server in gateway mode in front of another server
    (this is always a jupyter-server, whatever the target).
    """

    def __init__(self, options=None, jupyter_args=(), name="server", kind=None,
                 gateway_url=None, gateway_token=None, generate_token=False, config=None):
        self.kind = kind or TARGET
        self.options = dict(options or {})
        self.jupyter_args = list(jupyter_args)
        self.name = name
        self.gateway_url = gateway_url
        self.gateway_token = gateway_token
        self.generate_token = generate_token  # sandcell: omit --token, read it from stdout
        self.token = None if generate_token else "tok-" + uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
        self.runtime_dir = os.path.join(self.dir, "runtime")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None
        self.kernel_pids = {}  # pid -> starttime of every kernel process seen
        self._default_kernel = None
        self._stdout_lines = []
        # sandcell: a JSON config file (a dict) written into the server's directory.
        self.config = config

    # -- life cycle ---------------------------------------------------------

    def start(self, timeout=60):
        if self.kind == "sandcell":
            self._start_sandcell(timeout)
        else:
            self._start_jupyter(timeout)
        self.wait_answering(timeout)
        return self

    def _env(self):
        return clean_env()

    def _start_sandcell(self, timeout):
        check_target()
        argv = [GATEWAY_EXE, "--ip", "127.0.0.1", "--port", "0"]
        if not self.generate_token:
            argv += ["--token", self.token]
        argv += ["--runtime-dir", self.runtime_dir]
        if self.config is not None:
            path = os.path.join(self.dir, "config.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            argv += ["--config", path]
        for k, v in self.options.items():
            if isinstance(v, (list, tuple)):
                for item in v:
                    argv += ["--" + k, str(item)]
            else:
                argv += ["--" + k, str(v)]
        self.argv = argv
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=log, env=self._env(), cwd=self.dir,
                                     preexec_fn=_die_with_parent)
        _LIVE.add(self)
        log.close()
        got = threading.Event()

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self._stdout_lines.append(line)
                got.set()

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if got.wait(0.1):
                break
            if self.proc.poll() is not None:
                break
        if not self._stdout_lines:
            self._fail_start("printed no line on stdout within %ds" % timeout)
        line = self._stdout_lines[0]
        m = re.match(r"^sandcell \S+ listening on http://127\.0\.0\.1:(\d+)/\?token=(\S+)$", line)
        if not m or (not self.generate_token and m.group(2) != self.token):
            self._fail_start("first stdout line is %r; expected 'sandcell VERSION listening on "
                             "http://127.0.0.1:PORT/?token=%s'" % (line, self.token or "..."))
        if self.generate_token:
            self.token = m.group(2)
        self.port = int(m.group(1))
        self.listen_line = line

    def _start_jupyter(self, timeout):
        if self.kind == "jupyter":
            check_target()
        self.port = free_port()
        for d in ("config", "data", "root", "ipython"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.makedirs(self.runtime_dir, exist_ok=True)
        argv = [PYTHON, "-m", "jupyter_server",
                "--ServerApp.ip=127.0.0.1",
                "--ServerApp.port=%d" % self.port,
                "--ServerApp.port_retries=0",
                "--ServerApp.token=%s" % self.token,
                "--ServerApp.password=",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                "--ServerApp.root_dir=%s" % os.path.join(self.dir, "root"),
                "--ServerApp.log_level=INFO"]
        if self.gateway_url:
            argv += ["--gateway-url=%s" % self.gateway_url,
                     "--GatewayClient.auth_token=%s" % self.gateway_token,
                     "--GatewayClient.request_timeout=60",
                     "--GatewayClient.connect_timeout=30"]
        argv += self.jupyter_args
        self.argv = argv
        env = self._env()
        env.update(JUPYTER_CONFIG_DIR=os.path.join(self.dir, "config"),
                   JUPYTER_DATA_DIR=os.path.join(self.dir, "data"),
                   JUPYTER_RUNTIME_DIR=self.runtime_dir,
                   IPYTHONDIR=os.path.join(self.dir, "ipython"),
                   JUPYTER_NO_CONFIG="1",
                   # jupyter_core makes a jupyter-clean-cfg-* directory in TMPDIR for
                   # JUPYTER_NO_CONFIG in every process and leaves it: keep them in ours.
                   TMPDIR=self.dir)
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_GATEWAY_URL", None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.dir,
                                     preexec_fn=_die_with_parent)
        _LIVE.add(self)
        log.close()

    def _fail_start(self, why):
        self.kill()
        raise RuntimeError("%s (%s) %s; log:\n%s" % (self.name, " ".join(self.argv), why,
                                                     self.log_tail()))

    def wait_answering(self, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail_start("exited with %s before answering" % self.proc.returncode)
            try:
                r = self.request("GET", "/api/kernelspecs", timeout=5)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.1)
        self._fail_start("did not answer GET /api/kernelspecs within %ds (last: %r)"
                         % (timeout, last))

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return data[-n:].decode(errors="replace")
        except OSError:
            return ""

    def snapshot_kernels(self):
        """Remembers every live descendant of the server (its kernels)."""
        if self.proc and self.proc.poll() is None:
            self.kernel_pids.update(descendants(self.proc.pid))

    def kill(self):
        _LIVE.discard(self)
        if self.proc and self.proc.poll() is None:
            self.snapshot_kernels()
            self.proc.kill()
            self.proc.wait(10)
        for pid, st in self.kernel_pids.items():
            if alive(pid, st):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def stop(self, sig=signal.SIGTERM, timeout=None, check=None):
        """Stops the server with sig and checks that it and every kernel process it started
        are gone (and, for sandcell, that the runtime directory is empty or removed); kills
        whatever is left. Returns a list of problems; with check (default: for sandcell only;
        jupyter-server's own shutdown is not under test) raises AssertionError if there are
        any."""
        if check is None:
            check = self.kind == "sandcell"
        if timeout is None:
            timeout = 30 if self.kind == "sandcell" else 15
        problems = []
        _LIVE.discard(self)
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.snapshot_kernels()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append("%s did not exit within %ds of %s"
                                % (self.name, timeout, signal.Signals(sig).name))
                self.proc.kill()
                self.proc.wait(10)
        else:
            problems.append("%s had already exited with %s" % (self.name, self.proc.returncode))
        self.returncode = self.proc.returncode
        deadline = time.monotonic() + 10
        left = {}
        while time.monotonic() < deadline:
            left = {p: s for p, s in self.kernel_pids.items() if alive(p, s)}
            if not left:
                break
            time.sleep(0.1)
        for pid, st in left.items():
            problems.append("kernel process %d (%s) still running after %s stopped"
                            % (pid, _cmdline(pid), self.name))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.kind == "sandcell" and os.path.isdir(self.runtime_dir):
            rest = os.listdir(self.runtime_dir)
            if rest:
                problems.append("runtime directory %s not empty after stop: %r"
                                % (self.runtime_dir, rest[:10]))
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        if problems and check:
            raise AssertionError("; ".join(problems) + "\nlog tail:\n" + self.log_tail())
        if problems:
            sys.stderr.write("[harness] %s: %s\n" % (self.name, "; ".join(problems)))
        return problems

    # -- URLs ---------------------------------------------------------------

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def ws_base(self):
        return "ws://127.0.0.1:%d" % self.port

    # -- REST ---------------------------------------------------------------

    def request(self, method, path, body=None, token=_DEFAULT, auth="header", headers=None,
                raw=None, timeout=60):
        """One HTTP request. body: a JSON-able value; raw: bytes sent as they are.
        auth: 'header' (Authorization: token T), 'query' (?token=T) or None."""
        token = self.token if token is _DEFAULT else token
        hdrs = {}
        if token is not None and auth == "header":
            hdrs["Authorization"] = "token " + token
        if token is not None and auth == "query":
            path += ("&" if "?" in path else "?") + "token=" + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            return Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()},
                            payload)
        finally:
            conn.close()

    def get_json(self, path, expect=200):
        r = self.request("GET", path)
        if r.status != expect:
            raise AssertionError("GET %s: expected %d, got %d %r" % (path, expect, r.status,
                                                                      r.body[:500]))
        return r.json()

    @property
    def default_kernel(self):
        if self._default_kernel is None:
            self._default_kernel = self.get_json("/api/kernelspecs")["default"]
        return self._default_kernel

    def start_kernel(self, name=None, timeout=90):
        body = {"name": name or self.default_kernel}
        r = self.request("POST", "/api/kernels", body=body, timeout=timeout)
        if r.status != 201:
            raise AssertionError("POST /api/kernels %r: expected 201, got %d %r\n%s"
                                 % (body, r.status, r.body[:500], self.log_tail(2000)))
        self.snapshot_kernels()
        return r.json()

    def delete_kernel(self, kernel_id, timeout=60):
        r = self.request("DELETE", "/api/kernels/" + kernel_id, timeout=timeout)
        if r.status not in (204, 404):
            raise AssertionError("DELETE kernel %s: %d %r" % (kernel_id, r.status, r.body))
        return r

    def kernel_ids(self):
        return [k["id"] for k in self.get_json("/api/kernels")]

    def connect(self, kernel_id, **kw):
        return KernelWS(self, kernel_id, **kw)


# ---------------------------------------------------------------------------
# WebSocket client
# ---------------------------------------------------------------------------

class WSClosed(Exception):
    def __init__(self, code=None, reason=""):
        super().__init__("WebSocket closed (code %r, reason %r)" % (code, reason))
        self.code = code
        self.reason = reason


class WSTimeout(Exception):
    pass


class Msg(dict):
    """A decoded message: header, parent_header, metadata, content, channel, buffers."""

    @property
    def msg_type(self):
        return (self.get("header") or {}).get("msg_type")

    @property
    def msg_id(self):
        return (self.get("header") or {}).get("msg_id")

    @property
    def parent_id(self):
        return (self.get("parent_header") or {}).get("msg_id")

    @property
    def channel(self):
        return self.get("channel")

    @property
    def content(self):
        return self.get("content") or {}

    def short(self):
        c = self.content
        extra = ""
        if self.msg_type == "status":
            extra = c.get("execution_state")
        elif self.msg_type == "stream":
            extra = "%s:%r" % (c.get("name"), c.get("text", "")[:60])
        elif self.msg_type and self.msg_type.endswith("_reply"):
            extra = c.get("status")
        return "%s/%s(%s)" % (self.channel, self.msg_type, extra)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Result:
    def __init__(self, msg_id, reply, iopub):
        self.msg_id = msg_id
        self.reply = reply
        self.iopub = iopub

    @property
    def types(self):
        return [m.msg_type for m in self.iopub]

    @property
    def stdout(self):
        return "".join(m.content.get("text", "") for m in self.iopub
                       if m.msg_type == "stream" and m.content.get("name") == "stdout")

    @property
    def stderr(self):
        return "".join(m.content.get("text", "") for m in self.iopub
                       if m.msg_type == "stream" and m.content.get("name") == "stderr")

    @property
    def result_text(self):
        for m in self.iopub:
            if m.msg_type == "execute_result":
                return m.content.get("data", {}).get("text/plain")
        return None

    def describe(self):
        return "reply=%s iopub=%s" % (self.reply and self.reply.short(),
                                      [m.short() for m in self.iopub])


class KernelWS:
    """One WebSocket connection to /api/kernels/{id}/channels.

    protocol: 'v1' (offers v1.kernel.websocket.jupyter.org) or 'legacy' (offers nothing).
    Received messages that a wait did not ask for stay in self.pending, in arrival order.
    """

    def __init__(self, server, kernel_id, session_id=None, protocol="v1", token=_DEFAULT,
                 auth="query", origin=None, path=None, timeout=30, sockopt=(), connect=True):
        self.server = server
        self.kernel_id = kernel_id
        self.session_id = session_id or uuid.uuid4().hex
        self.protocol = protocol
        self.token = server.token if token is _DEFAULT else token
        self.auth = auth
        self.origin = origin
        self.path = path
        self.timeout = timeout
        self.sockopt = list(sockopt)
        self.pending = []
        self.log = []  # every message received, in order
        self.ws = None
        self.closed = None
        if connect:
            self.open()

    def url(self):
        path = self.path or "/api/kernels/%s/channels" % self.kernel_id
        q = []
        if self.session_id:
            q.append("session_id=" + self.session_id)
        if self.token is not None and self.auth == "query":
            q.append("token=" + self.token)
        return self.server.ws_base + path + ("?" + "&".join(q) if q else "")

    def open(self):
        kw = {"timeout": self.timeout, "sockopt": self.sockopt}
        if self.protocol == "v1":
            kw["subprotocols"] = [V1_PROTOCOL]
        hdr = []
        if self.token is not None and self.auth == "header":
            hdr.append("Authorization: token " + self.token)
        if hdr:
            kw["header"] = hdr
        if self.origin is not None:
            kw["origin"] = self.origin
        self.ws = websocket.create_connection(self.url(), **kw)
        got = self.ws.getsubprotocol()
        if self.protocol == "v1" and got != V1_PROTOCOL:
            self.ws.close()
            raise AssertionError("offered %s, server chose subprotocol %r" % (V1_PROTOCOL, got))
        if self.protocol == "legacy" and got:
            self.ws.close()
            raise AssertionError("offered no subprotocol, server chose %r" % got)
        return self

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except Exception:
                pass
            finally:
                try:
                    self.ws.shutdown()
                except Exception:
                    pass
            self.ws = None

    def abort(self):
        """Drops the TCP connection without a close handshake."""
        if self.ws is not None:
            try:
                self.ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.ws.sock.close()
            except OSError:
                pass
            self.ws = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending --------------------------------------------------------------

    def make_header(self, msg_type, **over):
        h = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "gwit",
             "session": self.session_id, "date": now_iso(), "version": "5.3"}
        h.update(over)
        return h

    def send(self, channel, msg_type, content=None, metadata=None, buffers=(),
             parent_header=None, header=None):
        """Sends one message; returns its msg_id."""
        header = header if header is not None else self.make_header(msg_type)
        content = {} if content is None else content
        metadata = {} if metadata is None else metadata
        parent_header = {} if parent_header is None else parent_header
        if self.protocol == "v1":
            parts = [json.dumps(x).encode("utf-8")
                     for x in (header, parent_header, metadata, content)]
            self.send_raw(v1_encode(channel, parts + [bytes(b) for b in buffers]),
                          websocket.ABNF.OPCODE_BINARY)
        else:
            d = {"header": header, "parent_header": parent_header, "metadata": metadata,
                 "content": content, "channel": channel}
            opcode, payload = legacy_encode(d, [bytes(b) for b in buffers])
            self.send_raw(payload, opcode)
        return header.get("msg_id")

    def send_raw(self, payload, opcode=websocket.ABNF.OPCODE_BINARY):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.ws.send(payload, opcode)

    def execute(self, code, silent=False, store_history=True, allow_stdin=False,
                stop_on_error=True, user_expressions=None):
        return self.send("shell", "execute_request", {
            "code": code, "silent": silent, "store_history": store_history,
            "user_expressions": user_expressions or {}, "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error})

    # -- receiving ------------------------------------------------------------

    def recv_frame(self, timeout):
        """(opcode, payload) of the next data frame; raises WSTimeout or WSClosed."""
        if self.ws is None:
            raise WSClosed(None, "not connected")
        if self.closed is not None:
            raise self.closed
        self.ws.settimeout(max(0.001, timeout))
        try:
            opcode, frame = self.ws.recv_data_frame(False)
        except websocket.WebSocketTimeoutException:
            raise WSTimeout()
        except socket.timeout:
            raise WSTimeout()
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as e:
            self.closed = WSClosed(None, "connection dropped: %s" % e)
            raise self.closed
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            self.closed = WSClosed(code, data[2:].decode("utf-8", "replace"))
            raise self.closed
        return opcode, frame.data

    def decode(self, opcode, data):
        if self.protocol == "v1":
            if opcode != websocket.ABNF.OPCODE_BINARY:
                raise FramingError("v1 connection got a text frame: %r" % (data[:200],))
            channel, parts = v1_decode(data)
            if len(parts) < 4:
                raise FramingError("v1 message with %d parts" % len(parts))
            m = Msg(channel=channel,
                    header=json.loads(parts[0].decode("utf-8")),
                    parent_header=json.loads(parts[1].decode("utf-8")),
                    metadata=json.loads(parts[2].decode("utf-8")),
                    content=json.loads(parts[3].decode("utf-8")),
                    buffers=[bytes(p) for p in parts[4:]])
        else:
            d, bufs = legacy_decode(opcode, data)
            m = Msg(d)
            m["buffers"] = bufs
        m["_t"] = time.monotonic()
        return m

    def recv(self, timeout=None):
        """Next message (from pending first); raises WSTimeout or WSClosed."""
        if self.pending:
            return self.pending.pop(0)
        return self._read(self.timeout if timeout is None else timeout)

    def _read(self, timeout):
        opcode, data = self.recv_frame(timeout)
        m = self.decode(opcode, data)
        self.log.append(m)
        return m

    def wait_for(self, pred, timeout=30, what="message"):
        """Returns the first message (pending or new) for which pred(m) is true; the others
        stay pending. Raises AssertionError on timeout or close."""
        for i, m in enumerate(self.pending):
            if pred(m):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.1fs; got %s" % (
                    what, timeout, [m.short() for m in self.pending[-30:]]))
            try:
                m = self._read(left)
            except WSTimeout:
                continue
            except WSClosed as e:
                raise AssertionError("connection closed while waiting for %s: %s; got %s"
                                     % (what, e, [m.short() for m in self.pending[-30:]]))
            if pred(m):
                return m
            self.pending.append(m)

    def drain(self, duration):
        """Reads everything that arrives within duration seconds into pending; returns the
        new messages. Stops early on close."""
        out = []
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                m = self._read(left)
            except WSTimeout:
                break
            except WSClosed:
                break
            self.pending.append(m)
            out.append(m)
        return out

    def take(self, pred):
        """Removes and returns the pending messages for which pred is true."""
        got = [m for m in self.pending if pred(m)]
        self.pending = [m for m in self.pending if not pred(m)]
        return got

    def collect(self, msg_id, timeout=30, reply_channel="shell", need_reply=True):
        """Waits for the reply to msg_id and its iopub `idle`; returns a Result with the iopub
        messages parented to msg_id in arrival order (busy ... idle)."""
        deadline = time.monotonic() + timeout
        reply = None
        iopub = []
        idle = False

        def mine(m):
            return m.parent_id == msg_id

        # Messages already pending come first.
        keep = []
        for m in self.pending:
            if mine(m):
                if m.channel == "iopub":
                    iopub.append(m)
                    if m.msg_type == "status" and m.content.get("execution_state") == "idle":
                        idle = True
                elif m.channel == reply_channel and m.msg_type.endswith("_reply"):
                    reply = m
                else:
                    keep.append(m)
            else:
                keep.append(m)
        self.pending = keep
        while not (idle and (reply is not None or not need_reply)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "no reply/idle for %s within %.0fs: reply=%s iopub=%s other=%s" % (
                        msg_id, timeout, reply and reply.short(), [m.short() for m in iopub],
                        [m.short() for m in self.pending[-20:]]))
            try:
                m = self._read(left)
            except WSTimeout:
                continue
            except WSClosed as e:
                raise AssertionError("connection closed waiting for reply/idle of %s: %s; "
                                     "iopub=%s" % (msg_id, e, [x.short() for x in iopub]))
            if mine(m) and m.channel == "iopub":
                iopub.append(m)
                if m.msg_type == "status" and m.content.get("execution_state") == "idle":
                    idle = True
            elif mine(m) and m.channel == reply_channel and (m.msg_type or "").endswith(
                    "_reply"):
                reply = m
            else:
                self.pending.append(m)
        return Result(msg_id, reply, iopub)

    def run(self, code, timeout=30, **kw):
        return self.collect(self.execute(code, **kw), timeout=timeout)

    def kernel_info(self, timeout=30):
        return self.collect(self.send("shell", "kernel_info_request"), timeout=timeout)

    def wait_ready(self, timeout=60):
        """Sends kernel_info_request until one is answered (a kernel still starting may miss
        the first); then waits for that request's idle. Returns the reply."""
        deadline = time.monotonic() + timeout
        sent = set()
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError("kernel %s did not answer kernel_info within %ds; got %s"
                                     % (self.kernel_id, timeout,
                                        [m.short() for m in self.pending[-20:]]))
            if now >= next_send:
                sent.add(self.send("shell", "kernel_info_request"))
                next_send = now + 2.0
            try:
                m = self._read(min(0.25, max(0.001, deadline - now)))
            except WSTimeout:
                continue
            except WSClosed as e:
                raise AssertionError("connection closed before kernel_info_reply: %s" % e)
            if m.channel == "shell" and m.msg_type == "kernel_info_reply" and \
                    m.parent_id in sent:
                reply = m
                break
            self.pending.append(m)
        # Let the iopub idle of the answered request pass, then forget the kernel_info noise.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            if any(x.parent_id == reply.parent_id and x.msg_type == "status" and
                   x.content.get("execution_state") == "idle" for x in self.pending):
                break
            try:
                self.pending.append(self._read(max(0.001, end - time.monotonic())))
            except (WSTimeout, WSClosed):
                break
        self.drain(0.2)
        self.pending = [m for m in self.pending if m.parent_id not in sent]
        return reply


def is_status(m, state):
    return m.channel == "iopub" and m.msg_type == "status" and \
        m.content.get("execution_state") == state


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s not met within %.0fs (last: %r)" % (what, timeout, last))


# Code that makes a comm and sends it a message with a binary buffer, on either kernel.
COMM_IMPORT = (
    "try:\n"
    "    from sandcell import Comm, register_comm_target as _reg\n"
    "except ImportError:\n"
    "    from ipykernel.comm import Comm\n"
    "    _reg = get_ipython().kernel.comm_manager.register_target\n"
)


class ServerTestCase(unittest.TestCase):
    """Base class: one server per test class, stopped (and checked for leftovers) at the end."""

    server_options = {}
    jupyter_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_options, cls.jupyter_args,
                            name=cls.__name__.lower()[:24]).start()
        cls._kernels = {}

    @classmethod
    def tearDownClass(cls):
        srv = cls.__dict__.get("server") or getattr(cls, "server", None)
        if srv is not None and srv.proc is not None:
            srv.stop()

    @classmethod
    def shared_kernel(cls, key="a"):
        """A kernel started once per class (started lazily, kept running)."""
        if key not in cls._kernels:
            cls._kernels[key] = cls.server.start_kernel()["id"]
        return cls._kernels[key]

    def connect(self, kernel_id, ready=True, **kw):
        c = self.server.connect(kernel_id, **kw)
        self.addCleanup(c.close)
        if ready:
            c.wait_ready()
        return c

    def new_kernel(self):
        kid = self.server.start_kernel()["id"]
        self.addCleanup(self._delete_quietly, kid)
        return kid

    def _delete_quietly(self, kid):
        try:
            if self.server.proc is not None:
                self.server.delete_kernel(kid)
        except Exception:
            pass

    def assert_error_json(self, r, status):
        self.assertEqual(r.status, status, "expected HTTP %d, got %d %r" % (status, r.status,
                                                                           r.body[:300]))
        body = r.json()
        self.assertIsInstance(body, dict, r.body[:300])
        self.assertIsInstance(body.get("message"), str, "error body without a message: %r"
                              % body)
        return body


def main():
    check_target()
    print("gateway tests against %s" % (
        "jupyter-server (reference)" if REFERENCE else GATEWAY_EXE), flush=True)
    unittest.main(verbosity=2)
