"""Shared helpers for the task API integration tests (/python/*, docs/python-api-json-reference.md).

They reuse tests/gateway_it/harness.py (the gateway on 127.0.0.1 with a token, a free port and
private directories, REST helpers, the WebSocket client, the leftover-kernel check at stop) and
add:

  post_task(server, task)   one task over HTTP: POST /python/<type>; returns an Outcome
  TaskSocket               a WebSocket carrying tasks: /python/ws, or a kernel's
                           /api/kernels/{id}/channels (legacy or v1 framing; tasks are text
                           frames with a "task" key there); events are kept per id, in order,
                           each with its arrival time "_t" (time.monotonic())
  Outcome                  what a user gets back, whatever the transport: status (200 for a
                           result; the HTTP status or the error event's status otherwise),
                           result, error, events (WebSocket only), elapsed seconds
  TaskTestCase             one gateway per test class; run(task, transport) on either
                           transport; assertions for error answers and for a gateway that
                           still serves

Use Debian's /usr/bin/python3 (python3-websocket). Every wait is bounded.
"""

import hashlib
import json
import os
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "gateway_it"))

import websocket  # noqa: E402  (Debian: python3-websocket)

import harness  # noqa: E402
from harness import KernelWS, Server, WSClosed, WSTimeout, wait_until  # noqa: E402,F401

TEXT = websocket.ABNF.OPCODE_TEXT
BINARY = websocket.ABNF.OPCODE_BINARY
TRANSPORTS = ("http", "ws")
PATHS = {
    "execute": "/python/execute",
    "execute_file": "/python/execute-file",
    "interactive": "/python/interactive",
    "validate": "/python/validate",
    "batch": "/python/batch",
}
TERMINAL = ("result", "error")
_DEFAULT = object()


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def short(ev):
    """One event in a few words, for failure messages."""
    if not isinstance(ev, dict):
        return repr(ev)[:120]
    kind = ev.get("event")
    extra = ""
    if kind == "stream":
        extra = "%s:%r" % (ev.get("name"), (ev.get("text") or "")[:40])
    elif kind == "result":
        r = ev.get("result") or {}
        extra = "success=%r exit=%r hit=%r" % (r.get("success"), r.get("exit_code"),
                                                (r.get("limits") or {}).get("hit"))
    elif kind == "error":
        extra = "%r %r" % (ev.get("status"), (ev.get("message") or "")[:80])
    elif kind == "item_result":
        extra = "item %r" % ev.get("item")
    return "%r/%s(%s)" % (ev.get("id"), kind, extra)


class Outcome:
    """What one task gave back."""

    def __init__(self, transport, status, result=None, error=None, events=(), elapsed=0.0,
                 raw=b""):
        self.transport = transport
        self.status = status
        self.result = result
        self.error = error
        self.events = list(events)
        self.elapsed = elapsed
        self.raw = raw

    def of(self, kind):
        return [e for e in self.events if e.get("event") == kind]

    def streamed(self, name="stdout"):
        return "".join(e.get("text", "") for e in self.of("stream") if e.get("name") == name)

    def describe(self):
        if self.transport == "http":
            body = self.result if self.result is not None else self.error
            text = json.dumps(body)[:1500] if body is not None else repr(self.raw[:500])
            return "HTTP %s in %.2fs: %s" % (self.status, self.elapsed, text)
        last = self.result if self.result is not None else self.error
        return "%s in %.2fs: events %s; last %s" % (
            self.transport, self.elapsed, [short(e) for e in self.events[:40]],
            json.dumps(last)[:1500])

    __repr__ = describe


def envelope(task, **extra):
    env = {"task": task}
    env.update(extra)
    return env


def post_task(server, task, path=None, timeout=120, token=_DEFAULT, raw=None, **extra):
    """POST one task; path defaults to the one of task["type"]. raw: bytes sent as the body
    instead of the envelope."""
    if path is None:
        path = PATHS[task["type"]]
    t0 = time.monotonic()
    kw = {} if token is _DEFAULT else {"token": token}
    if raw is not None:
        r = server.request("POST", path, raw=raw, timeout=timeout,
                           headers={"Content-Type": "application/json"}, **kw)
    else:
        r = server.request("POST", path, body=envelope(task, **extra), timeout=timeout, **kw)
    elapsed = time.monotonic() - t0
    body = None
    try:
        body = json.loads(r.body.decode("utf-8")) if r.body else None
    except ValueError:
        pass
    if r.status == 200:
        return Outcome("http", 200, result=body, elapsed=elapsed, raw=r.body)
    return Outcome("http", r.status, error=body, elapsed=elapsed, raw=r.body)


def _key(task_id):
    return json.dumps(task_id, sort_keys=True)


class TaskSocket:
    """A WebSocket that carries tasks.

    kernel_id None: /python/ws (no subprotocol). Otherwise the kernel's channels socket, in
    the given framing ("legacy" or "v1"); task events are the text frames that are JSON objects
    with an "event" key, everything else is the kernel's own traffic (kept in kernel_frames).
    """

    def __init__(self, server, kernel_id=None, protocol="legacy", token=_DEFAULT, auth="query",
                 timeout=30):
        self.server = server
        kw = {} if token is _DEFAULT else {"token": token}
        if kernel_id is None:
            self.conn = KernelWS(server, None, session_id="", protocol="legacy",
                                 path="/python/ws", auth=auth, timeout=timeout, **kw)
            self.name = "ws"
        else:
            self.conn = KernelWS(server, kernel_id, protocol=protocol, auth=auth,
                                 timeout=timeout, **kw)
            self.name = "channels-" + protocol
        self.events = []          # every task event, in arrival order
        self.kernel_frames = []   # (opcode, data) of everything else
        self.undecodable = []     # text frames that were neither
        self._n = 0

    @property
    def closed(self):
        return self.conn.ws is None or self.conn.closed is not None

    def close(self):
        self.conn.close()

    # -- sending --------------------------------------------------------------------------

    def send_json(self, obj):
        self.conn.send_raw(json.dumps(obj).encode("utf-8"), TEXT)

    def send_text(self, data):
        """Sends data (str or bytes, sent as they are, valid UTF-8 or not) as a text frame."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.conn.ws.send(data, TEXT)

    def new_id(self):
        self._n += 1
        return "t%d-%s" % (self._n, uuid.uuid4().hex[:6])

    def submit(self, task, task_id=_DEFAULT, **extra):
        """Sends {"id", "task", ...extra}; returns the id."""
        if task_id is _DEFAULT:
            task_id = self.new_id()
        env = {"id": task_id, "task": task}
        env.update(extra)
        self.send_json(env)
        return task_id

    def cancel(self, task_id):
        self.send_json({"id": task_id, "cancel": True})

    # -- receiving ------------------------------------------------------------------------

    def pump(self, timeout):
        """Reads one frame (waiting at most timeout); returns the task event or None.
        Raises WSTimeout or WSClosed."""
        opcode, data = self.conn.recv_frame(timeout)
        if opcode == TEXT:
            try:
                obj = json.loads(bytes(data).decode("utf-8") if isinstance(
                    data, (bytes, bytearray)) else data)
            except ValueError:
                self.undecodable.append(data)
                return None
            if isinstance(obj, dict) and "event" in obj:
                obj["_t"] = time.monotonic()
                obj["_opcode"] = opcode
                self.events.append(obj)
                return obj
        elif opcode == BINARY and self.name == "ws":
            # /python/ws sends text frames only; keep a binary one visible to the tests.
            try:
                obj = json.loads(bytes(data).decode("utf-8"))
                if isinstance(obj, dict) and "event" in obj:
                    obj["_t"] = time.monotonic()
                    obj["_opcode"] = opcode
                    self.events.append(obj)
                    return obj
            except ValueError:
                pass
        self.kernel_frames.append((opcode, data))
        return None

    def of(self, task_id, start=0):
        k = _key(task_id)
        return [e for e in self.events[start:] if _key(e.get("id")) == k]

    def wait(self, pred, timeout, what):
        """Reads until pred(self) is true; returns its value. Fails with what arrived."""
        deadline = time.monotonic() + timeout
        while True:
            got = pred(self)
            if got:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: not within %.0fs on %s; events so far: %s" % (
                    what, timeout, self.name, [short(e) for e in self.events[-40:]]))
            try:
                self.pump(min(left, 1.0))
            except WSTimeout:
                continue
            except WSClosed as e:
                got = pred(self)
                if got:
                    return got
                raise AssertionError("%s: the socket closed (%s) on %s; events so far: %s" % (
                    what, e, self.name, [short(e2) for e2 in self.events[-40:]]))

    def terminal(self, task_id, start=0):
        for e in self.of(task_id, start):
            if e.get("event") in TERMINAL:
                return e
        return None

    def finish(self, task_id, timeout=120, start=0, t0=None):
        """Waits for the result or error event of task_id; returns an Outcome whose events are
        those of task_id (from index start of self.events) up to that one."""
        t0 = time.monotonic() if t0 is None else t0
        last = self.wait(lambda s: s.terminal(task_id, start), timeout,
                         "the result of task %r" % (task_id,))
        evs = []
        for e in self.of(task_id, start):
            evs.append(e)
            if e is last:
                break
        elapsed = time.monotonic() - t0
        if last["event"] == "result":
            return Outcome(self.name, 200, result=last.get("result"), events=evs,
                           elapsed=elapsed)
        return Outcome(self.name, last.get("status"), error=last, events=evs, elapsed=elapsed)

    def run(self, task, timeout=120, task_id=_DEFAULT, **extra):
        start = len(self.events)
        t0 = time.monotonic()
        tid = self.submit(task, task_id, **extra)
        return self.finish(tid, timeout, start=start, t0=t0)

    def next_closing(self, timeout=10):
        """Reads until the server closes; returns (code, reason), or None if it did not close
        within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.pump(left)
            except WSTimeout:
                return None
            except WSClosed as e:
                return (e.code, e.reason)


class TaskTestCase(unittest.TestCase):
    """One gateway per test class (server_options: sandcell long options without '--';
    server_config: a config file as a dict), with a /python/ws socket opened on demand."""

    server_options = {"history-db": ":memory:"}
    server_config = None
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_options, config=cls.server_config,
                            name=cls.__name__.lower()[:24]).start()
        cls._ws = None
        cls._sanity_runs = 0

    @classmethod
    def tearDownClass(cls):
        if cls._ws is not None:
            cls._ws.close()
        srv = cls.__dict__.get("server")
        if srv is not None and srv.proc is not None:
            srv.stop()

    # -- transports -------------------------------------------------------------------------

    @property
    def ws(self):
        """The class's /python/ws socket, reopened when a test closed it."""
        cls = type(self)
        if cls._ws is None or cls._ws.closed:
            cls._ws = TaskSocket(self.server)
        return cls._ws

    def socket(self, **kw):
        """A socket of this test's own, closed at its end."""
        s = TaskSocket(self.server, **kw)
        self.addCleanup(s.close)
        return s

    def run_task(self, task, transport, timeout=120, **extra):
        """Runs task over "http" or "ws"; returns the Outcome."""
        if transport == "http":
            return post_task(self.server, task, timeout=timeout, **extra)
        return self.ws.run(task, timeout=timeout, **extra)

    def result_of(self, task, transport, timeout=120, **extra):
        """Runs task and returns its result, failing unless the gateway answered with one."""
        o = self.run_task(task, transport, timeout=timeout, **extra)
        self.assertEqual(o.status, 200, "expected a result, got " + o.describe())
        self.assertIsInstance(o.result, dict, o.describe())
        if transport != "http":
            self.check_event_stream(o)
        return o

    def check_event_stream(self, o, task_type=None):
        """Every WebSocket task: 'accepted' first, one terminal event last, ids everywhere."""
        self.assertTrue(o.events, o.describe())
        first = o.events[0]
        self.assertEqual(first.get("event"), "accepted",
                         "the first event of a task must be 'accepted': " + o.describe())
        self.assertIsInstance(first.get("task_id"), str, o.describe())
        if task_type:
            self.assertEqual(first.get("task_type"), task_type, o.describe())
        for e in o.events:
            self.assertIn("id", e, "event without an id: %r" % e)
            self.assertEqual(e.get("_opcode"), TEXT, "task events are text frames: %r" % e)
        self.assertEqual([e["event"] for e in o.events].count("result"),
                         1 if o.status == 200 else 0, o.describe())

    # -- assertions -----------------------------------------------------------------------

    def assert_error(self, o, status, fields=()):
        """o is an error answer with this status (an int or a tuple of allowed ones), a
        message, an errors list, and every field of fields named by one of its errors
        (exactly, or as the prefix of a longer path like task.items[1].code). Returns the
        list of errors."""
        allowed = status if isinstance(status, tuple) else (status,)
        self.assertIn(o.status, allowed, "expected %s, got %s" % (allowed, o.describe()))
        self.assertIsInstance(o.error, dict, "error without a JSON body: " + o.describe())
        self.assertIsInstance(o.error.get("message"), str, o.describe())
        self.assertTrue(o.error["message"], "empty error message: " + o.describe())
        errors = o.error.get("errors")
        if o.transport != "http" or fields:
            self.assertIsInstance(errors, list, "errors must be a list: " + o.describe())
        for want in fields:
            self.assertTrue(any(field_matches(e.get("field"), want) for e in errors or []),
                            "no error names the field %r: %s" % (want, o.describe()))
        return errors or []

    def assert_serves(self, transport="http"):
        """The gateway still runs an ordinary execute (and answers /api)."""
        cls = type(self)
        cls._sanity_runs += 1
        n = cls._sanity_runs
        self.assertEqual(self.server.request("GET", "/api", timeout=10).status, 200)
        o = self.run_task({"type": "execute", "code": "sum(range(%d))" % n}, transport,
                          timeout=60)
        self.assertEqual(o.status, 200, "the gateway no longer serves: " + o.describe())
        self.assertEqual(o.result.get("return_value"), sum(range(n)), o.describe())


def field_matches(got, want):
    if not isinstance(got, str):
        return False
    return got == want or got.startswith(want + ".") or got.startswith(want + "[")


def make_scripts_dir(root):
    """A scripts directory for execute_file, with a few scripts and hostile links; returns its
    path. Under root also: outside/secret.py (the target of the escaping link)."""
    scripts = os.path.join(root, "scripts")
    outside = os.path.join(root, "outside")
    os.makedirs(os.path.join(scripts, "sub"), exist_ok=True)
    os.makedirs(outside, exist_ok=True)
    files = {
        "argv_echo.py": "import json\nimport sys\nprint(json.dumps(sys.argv[1:]))\n",
        # os is refused by the moderate profile: run it with security_level permissive.
        "env_echo.py": ("import json\nimport os\nimport sys\n"
                        "print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))\n"),
        "sub/names.py": "print(__name__)\nprint(__file__)\n",
        "exit_code.py": "import sys\nprint('exiting', flush=True)\nsys.exit(int(sys.argv[1]))\n",
        "raises.py": "x = 1\n\nraise RuntimeError('from the script')\n",
        "counter.py": "total = sum(int(a) for a in __import__('sys').argv[1:])\nprint(total)\n",
    }
    for name, text in files.items():
        with open(os.path.join(scripts, name), "w") as f:
            f.write(text)
    with open(os.path.join(outside, "secret.py"), "w") as f:
        f.write("print('outside the scripts dir')\n")
    for link, target in (("escape.py", os.path.join(outside, "secret.py")),
                         ("escape_rel.py", "../outside/secret.py"),
                         ("inside_link.py", "argv_echo.py"),
                         ("subdir_link", outside)):
        path = os.path.join(scripts, link)
        if not os.path.lexists(path):
            os.symlink(target, path)
    return scripts


def main():
    if harness.REFERENCE:
        # The task API is sandcell's own: jupyter-server has nothing to check the tests against.
        print("the task API tests run against sandcell only (SANDCELL_GW_TARGET=jupyter)")
        sys.exit(77)
    harness.check_target()
    print("task API tests against %s" % harness.GATEWAY_EXE, flush=True)
    unittest.main(verbosity=2)
