"""Shared harness for the sandcell-kernel integration tests.

Which kernel is tested:
  SANDCELL_KERNEL=/path/to/sandcell-kernel   the real run: the binary installs its kernelspec
                                             into a temporary JUPYTER_PATH (kernel name
                                             ``sandcell``) and nothing is skipped.
  SANDCELL_TEST_KERNEL_NAME=python3          development only: run against an installed kernel
                                             (Debian's ipykernel) to check the tests themselves;
                                             tests marked ``sandcell_only`` are skipped.
With neither set, <repo>/build/kernel/sandcell-kernel is used if it exists.

Importing this module sets JUPYTER_PATH (and JUPYTER_RUNTIME_DIR) for the whole process, so
jupyter_client, jupyter_kernel_test and nbclient all find the kernel under test.
"""

import atexit
import datetime
import hashlib
import hmac
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Silence ipykernel's debugpy warnings in development mode; harmless otherwise.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

TMP = tempfile.mkdtemp(prefix="sc-it-")
atexit.register(shutil.rmtree, TMP, True)
_PREFIX = os.path.join(TMP, "jupyter")
os.makedirs(os.path.join(_PREFIX, "kernels"))
_RUNTIME = os.path.join(TMP, "runtime")
os.makedirs(_RUNTIME)


def _load_spec_dir(path):
    with open(os.path.join(path, "kernel.json")) as f:
        return json.load(f)


def _setup():
    exe = os.environ.get("SANDCELL_KERNEL")
    dev_name = os.environ.get("SANDCELL_TEST_KERNEL_NAME")
    if not exe and not dev_name:
        guess = os.path.join(REPO, "build", "kernel", "sandcell-kernel")
        if os.access(guess, os.X_OK):
            exe = guess
        else:
            raise RuntimeError(
                "set SANDCELL_KERNEL=/path/to/sandcell-kernel (or, to check the tests "
                "themselves against ipykernel, SANDCELL_TEST_KERNEL_NAME=python3)"
            )
    if exe:
        exe = os.path.abspath(exe)
        # The protocol tests run in a real sandbox with the custom profile's empty import
        # policy: they use os and ctypes, which the other profiles' policies refuse.
        r = subprocess.run(
            [exe, "--install-kernelspec", _PREFIX, "--profile",
             os.environ.get("SANDCELL_TEST_PROFILE", "custom")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError(
                "%s --install-kernelspec %s failed (exit %d): %s"
                % (exe, _PREFIX, r.returncode, r.stdout.decode(errors="replace"))
            )
        name = "sandcell"
        spec_dir = os.path.join(_PREFIX, "kernels", name)
        if not os.path.isfile(os.path.join(spec_dir, "kernel.json")):
            raise RuntimeError("--install-kernelspec did not write %s/kernel.json" % spec_dir)
        spec = _load_spec_dir(spec_dir)
        dev = False
    else:
        from jupyter_client.kernelspec import KernelSpecManager

        name = dev_name
        spec = _load_spec_dir(KernelSpecManager().get_kernel_spec(name).resource_dir)
        dev = True
    # A second kernelspec, identical but with interrupt_mode "message".
    msg_spec = dict(spec)
    msg_spec["interrupt_mode"] = "message"
    msg_spec["display_name"] = spec.get("display_name", name) + " (message interrupt)"
    msg_dir = os.path.join(_PREFIX, "kernels", name + "-message-interrupt")
    os.makedirs(msg_dir, exist_ok=True)
    with open(os.path.join(msg_dir, "kernel.json"), "w") as f:
        json.dump(msg_spec, f, indent=1)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = _PREFIX + (os.pathsep + old if old else "")
    os.environ["JUPYTER_RUNTIME_DIR"] = _RUNTIME
    return name, name + "-message-interrupt", spec, dev, exe


KERNEL_NAME, MESSAGE_INTERRUPT_KERNEL_NAME, KERNEL_SPEC, DEV_MODE, KERNEL_EXE = _setup()

STARTUP_TIMEOUT = 30


def sandcell_only(reason):
    """Mark a test (or class) that checks sandcell-specific behaviour: skipped only when the
    tests are run against another kernel in development mode (SANDCELL_TEST_KERNEL_NAME)."""
    return unittest.skipIf(DEV_MODE, "sandcell-specific (%s); dev mode against %s"
                           % (reason, KERNEL_NAME))


def kernel_argv(connection_file):
    """The kernelspec's argv for the kernel under test, as jupyter_client would run it."""
    argv = [a.replace("{connection_file}", connection_file) for a in KERNEL_SPEC["argv"]]
    if argv[0] in ("python", "python3", "python%d.%d" % sys.version_info[:2]):
        argv[0] = sys.executable
    return argv


def start_kernel(kernel_name=None, **kw):
    from jupyter_client.manager import start_new_kernel

    return start_new_kernel(startup_timeout=STARTUP_TIMEOUT,
                            kernel_name=kernel_name or KERNEL_NAME, **kw)


def stop_kernel(km, kc):
    try:
        kc.stop_channels()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def parent_id(msg):
    return (msg.get("parent_header") or {}).get("msg_id")


def stream_text(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def summary(msgs):
    """Short description of a list of iopub messages, for assertion messages."""
    out = []
    for m in msgs:
        t = m["msg_type"]
        c = m["content"]
        if t == "status":
            out.append("status:" + c.get("execution_state", "?"))
        elif t == "stream":
            out.append("stream:%s:%r" % (c.get("name"), c.get("text", "")[:40]))
        elif t == "error":
            out.append("error:%s" % c.get("ename"))
        else:
            out.append(t)
    return out


class Client:
    """A BlockingKernelClient wrapper that never loses messages: replies and iopub messages
    that arrive while waiting for something else are kept, by parent msg_id, with their
    arrival time (time.monotonic()) in msg['_t']."""

    def __init__(self, kc):
        self.kc = kc
        self.iopub = defaultdict(list)
        self.replies = {"shell": {}, "control": {}}

    # -- low level
    def _get(self, channel, timeout):
        getter = {"shell": self.kc.get_shell_msg, "control": self.kc.get_control_msg,
                  "iopub": self.kc.get_iopub_msg, "stdin": self.kc.get_stdin_msg}[channel]
        m = getter(timeout=timeout)
        m["_t"] = time.monotonic()
        return m

    def pump_iopub(self, timeout):
        try:
            m = self._get("iopub", timeout)
        except queue.Empty:
            return None
        self.iopub[parent_id(m)].append(m)
        return m

    def drain_iopub(self, quiet=0.1):
        while self.pump_iopub(quiet) is not None:
            pass

    # -- replies
    def reply(self, msg_id, timeout=30, channel="shell"):
        box = self.replies[channel]
        deadline = time.monotonic() + timeout
        while msg_id not in box:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s reply to %s within %.1f s (iopub so far: %s)"
                                     % (channel, msg_id, timeout, summary(self.iopub[msg_id])))
            try:
                m = self._get(channel, min(left, 0.01))
            except queue.Empty:
                self.pump_iopub(0)  # keep iopub arrival times honest
                continue
            box[parent_id(m)] = m
        return box.pop(msg_id)

    def no_reply(self, msg_id, wait, channel="shell"):
        """True if no reply to msg_id arrives within `wait` seconds."""
        try:
            self.reply(msg_id, wait, channel)
        except AssertionError:
            return True
        return False

    # -- iopub
    def wait_iopub(self, msg_id, pred, timeout=30):
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            msgs = self.iopub[msg_id]
            for m in msgs[seen:]:
                if pred(m):
                    return m
            seen = len(msgs)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("expected iopub message for %s not seen within %.1f s; "
                                     "got %s" % (msg_id, timeout, summary(msgs)))
            self.pump_iopub(min(left, 0.05))

    def until_idle(self, msg_id, timeout=30):
        """All iopub messages parented to msg_id, up to and including status idle."""
        self.wait_iopub(msg_id, lambda m: m["msg_type"] == "status"
                        and m["content"]["execution_state"] == "idle", timeout)
        return list(self.iopub[msg_id])

    # -- requests
    def execute(self, code, timeout=30, **kw):
        """Run code; return (reply, iopub messages up to idle)."""
        msg_id = self.kc.execute(code, **kw)
        reply = self.reply(msg_id, timeout)
        return reply, self.until_idle(msg_id, timeout)

    def request(self, msg_type, content=None, channel="shell"):
        msg = self.kc.session.msg(msg_type, content=content or {})
        getattr(self.kc, channel + "_channel").send(msg)
        return msg["header"]["msg_id"]

    def eval(self, expr, timeout=30):
        """Value of expr (text/plain) through user_expressions of a silent execute."""
        reply, _ = self.execute("", timeout=timeout, silent=True,
                                user_expressions={"v": expr})
        if reply["content"].get("status") != "ok" or "v" not in reply["content"].get(
                "user_expressions", {}):
            raise AssertionError("evaluating %r through user_expressions: reply %s"
                                 % (expr, reply["content"]))
        r = reply["content"]["user_expressions"]["v"]
        if r["status"] != "ok":
            return ("error", r.get("ename"))
        return r["data"]["text/plain"]


# ---------------------------------------------------------------------------------------------
# Kernels launched by hand (own connection file, stderr captured) and raw wire access.

class LaunchedKernel:
    """The kernel under test started with subprocess from our own connection file, its
    stderr captured in a file."""

    def __init__(self, transport="tcp", key=None):
        from jupyter_client.connect import write_connection_file

        self.dir = tempfile.mkdtemp(prefix="k", dir=TMP)
        self.key = key if key is not None else uuid.uuid4().hex.encode()
        cf = os.path.join(self.dir, "conn.json")
        ip = os.path.join(self.dir, "s") if transport == "ipc" else "127.0.0.1"
        self.connection_file, self.info = write_connection_file(
            fname=cf, ip=ip, key=self.key, transport=transport, kernel_name=KERNEL_NAME)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(kernel_argv(cf), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     cwd=self.dir, start_new_session=True)

    def stderr_text(self):
        self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def url(self, channel):
        port = self.info[channel + "_port"]
        if self.info["transport"] == "ipc":
            return "ipc://%s-%s" % (self.info["ip"], port)
        return "tcp://%s:%s" % (self.info["ip"], port)

    def client(self):
        from jupyter_client.blocking import BlockingKernelClient

        # A client without a manager judges liveness by the heartbeat only, and gives up if
        # the kernel is not beating yet: wait for a kernel_info_reply on a raw socket first.
        w = Wire(self, "shell")
        try:
            if w.reply_to(w.send("kernel_info_request"), STARTUP_TIMEOUT) is None:
                raise AssertionError("kernel did not answer kernel_info within %d s; stderr:\n%s"
                                     % (STARTUP_TIMEOUT, self.stderr_text()[-2000:]))
        finally:
            w.close()
        kc = BlockingKernelClient(connection_file=self.connection_file)
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        return kc

    def stop(self):
        if self.proc.poll() is None:
            try:
                w = Wire(self, "control")
                w.send("shutdown_request", {"restart": False})
                w.close()
                self.proc.wait(3)
            except Exception:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self._stderr.close()


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class Wire:
    """A raw ZeroMQ DEALER on one of the kernel's ROUTER sockets; messages built and signed
    by hand, so that broken ones can be sent."""

    DELIM = b"<IDS|MSG>"

    def __init__(self, kernel, channel="shell"):
        import zmq

        self.zmq = zmq
        self.key = kernel.key
        self.session = uuid.uuid4().hex
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(kernel.url(channel))

    def close(self):
        self.sock.close(0)

    def sign(self, parts):
        if not self.key:
            return b""
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def header(self, msg_type, **extra):
        h = {"msg_id": uuid.uuid4().hex, "session": self.session, "username": "it",
             "date": _now_iso(), "msg_type": msg_type, "version": "5.3"}
        h.update(extra)
        return h

    def frames(self, msg_type, content, header=None, buffers=()):
        header = header or self.header(msg_type)
        parts = [json.dumps(header).encode(), b"{}", b"{}",
                 content if isinstance(content, bytes) else json.dumps(content).encode()]
        return header["msg_id"], [self.DELIM, self.sign(parts)] + parts + list(buffers)

    def send(self, msg_type, content=None, buffers=()):
        msg_id, frames = self.frames(msg_type, content if content is not None else {},
                                     buffers=buffers)
        self.sock.send_multipart(frames, copy=False)
        return msg_id

    def send_raw(self, frames):
        self.sock.send_multipart(frames)

    def recv(self, timeout):
        """Next message (parsed dict) within timeout, or None. Checks the signature."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        i = frames.index(self.DELIM)
        sig, parts = frames[i + 1], frames[i + 2:i + 6]
        if self.key and not hmac.compare_digest(sig, self.sign(parts)):
            raise AssertionError("kernel sent a message with a bad signature: %r" % frames[:6])
        h, p, md, c = (json.loads(x) for x in parts)
        return {"header": h, "parent_header": p, "metadata": md, "content": c,
                "msg_type": h.get("msg_type")}

    def reply_to(self, msg_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.recv(left)
            if m is None:
                return None
            if m["parent_header"].get("msg_id") == msg_id:
                return m
