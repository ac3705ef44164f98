"""Bad input to the task API, over HTTP and /python/ws: malformed JSON, missing fields, wrong
types (every problem listed with its field path), unknown types and fields, oversized code and
bodies, bad ids, invalid UTF-8 (close 1007), path traversal, wrong methods and paths, and
authentication. After each kind, the gateway still runs an ordinary execute.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_bad_input.py
"""

import json
import tempfile

import websocket

import tasklib
from tasklib import TRANSPORTS, Outcome, TaskSocket, TaskTestCase, harness, post_task

MIB = 1024 * 1024
ROOT = tempfile.mkdtemp(prefix="bad-scripts-", dir=harness.TMP)
SCRIPTS = tasklib.make_scripts_dir(ROOT)

# (label, task, the fields its errors must name). Sent over HTTP to the path of the task's
# type (/python/execute when it has none or an unknown one), over the WebSocket with an id.
BAD_TASKS = [
    ("missing code", {"type": "execute"}, ["task.code"]),
    ("several wrong types at once",
     {"type": "execute", "code": 5, "timeout": "soon", "return_variables": "x",
      "capture_output": "yes", "memory_limit": [1]},
     ["task.code", "task.timeout", "task.return_variables", "task.capture_output",
      "task.memory_limit"]),
    ("negative timeout", {"type": "execute", "code": "1", "timeout": -1}, ["task.timeout"]),
    ("zero timeout", {"type": "execute", "code": "1", "timeout": 0}, ["task.timeout"]),
    ("memory_limit not a size", {"type": "execute", "code": "1", "memory_limit": "lots"},
     ["task.memory_limit"]),
    ("unknown security level", {"type": "execute", "code": "1",
                                "security_level": "paranoid"}, ["task.security_level"]),
    ("return_variables not identifiers",
     {"type": "execute", "code": "1", "return_variables": ["ok", "1bad", "a-b", 3]},
     ["task.return_variables"]),
    ("too many return_variables",
     {"type": "execute", "code": "1", "return_variables": ["v%d" % i for i in range(257)]},
     ["task.return_variables"]),
    ("allowed_imports not names", {"type": "execute", "code": "1", "allowed_imports": [3]},
     ["task.allowed_imports"]),
    ("working_directory too long",
     {"type": "execute", "code": "1", "working_directory": "d" * 1025},
     ["task.working_directory"]),
    ("unknown field", {"type": "execute", "code": "1", "tiemout": 3}, ["task.tiemout"]),
    ("field of another type", {"type": "execute", "code": "1", "file_path": "x.py"},
     ["task.file_path"]),
    ("code in a validate with a wrong flag",
     {"type": "validate", "code": "1", "check_syntax": "yes"}, ["task.check_syntax"]),
    ("interactive with a bad flag",
     {"type": "interactive", "code": "1", "reset_session": 1}, ["task.reset_session"]),
    ("execute_file without a path", {"type": "execute_file"}, ["task.file_path"]),
    ("too many arguments", {"type": "execute_file", "file_path": "argv_echo.py",
                            "arguments": ["a"] * 257}, ["task.arguments"]),
    ("task not an object", "print(1)", ["task"]),
    # The profile's limits are checked on the well-formed fields even when others are wrong:
    # one answer lists every problem.
    ("a wrong type and limits above the profile together",
     {"type": "execute", "code": 5, "memory_limit": "lots", "timeout": 99999,
      "security_level": "strict"},
     ["task.code", "task.memory_limit", "task.timeout"]),
    ("a path out of the scripts and a memory_limit not a size",
     {"type": "execute_file", "file_path": "/etc/passwd", "memory_limit": "lots"},
     ["task.file_path", "task.memory_limit"]),
]


class BadInputTests(TaskTestCase):
    server_options = {"history-db": ":memory:", "scripts-dir": SCRIPTS, "max-body": "4M"}

    # -- helpers ----------------------------------------------------------------------------

    def ws_bad(self, payload, sock=None, what="bad input", task_id=tasklib._DEFAULT):
        """Sends payload (an object: as JSON; str/bytes: as they are) as a text frame and
        returns the error event that answers it as an Outcome. With task_id, the error must
        carry it."""
        s = sock or self.ws
        n = len(s.events)
        if isinstance(payload, (str, bytes)):
            s.send_text(payload)
        else:
            s.send_json(payload)
        ev = s.wait(lambda s: next((e for e in s.events[n:] if e["event"] in ("error",
                                                                             "result")), None),
                    10, "an error event for %s" % what)
        self.assertEqual(ev["event"], "error", "%s was answered with %s" % (what,
                                                                            tasklib.short(ev)))
        if task_id is not tasklib._DEFAULT:
            self.assertEqual(ev.get("id"), task_id, ev)
        self.assertFalse([e for e in s.events[n:] if e["event"] == "accepted"],
                         "%s was accepted" % what)
        return Outcome(s.name, ev.get("status"), error=ev, events=[ev])

    def http_raw(self, raw, path="/python/execute"):
        return post_task(self.server, None, path=path, raw=raw)

    # -- malformed --------------------------------------------------------------------------

    def test_malformed_json(self):
        for raw in (b'{"task": ', b"hello", b"{'task': 1}", b'{"task": {"type": "execute", '
                    b'"code": "1"}} trailing', b"", b'{"task": {"type": "execute", "code": '
                    b'"1", "code": "2"}}'):
            with self.subTest(transport="http", body=raw[:40]):
                if raw.startswith(b'{"task": {"type": "execute", "code": "1", "code"'):
                    # A repeated key: refused, or the JSON parser's last one wins. Either way
                    # the gateway must answer sanely.
                    o = self.http_raw(raw)
                    self.assertIn(o.status, (200, 400), o)
                    continue
                self.assert_error(self.http_raw(raw), 400)
            with self.subTest(transport="ws", body=raw[:40]):
                if raw == b"" or raw.startswith(b'{"task": {"type": "execute", "code": "1", '
                                                b'"code"'):
                    continue
                self.assert_error(self.ws_bad(raw, what="malformed JSON %r" % raw[:20]), 400)
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_not_an_object(self):
        for raw in (b"[1, 2]", b'"execute"', b"null", b"42", b"true"):
            with self.subTest(body=raw):
                self.assert_error(self.http_raw(raw), 400)
                self.assert_error(self.ws_bad(raw, what=raw.decode()), 400)
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_missing_task(self):
        self.assert_error(self.http_raw(b"{}"), 400, ["task"])
        self.assert_error(self.http_raw(b'{"assigned_by": "x"}'), 400, ["task"])
        self.assert_error(self.ws_bad({"id": "no-task"}, task_id="no-task"), 400, ["task"])
        self.assert_serves("ws")

    def test_bad_tasks(self):
        for label, task, fields in BAD_TASKS:
            for t in TRANSPORTS:
                with self.subTest(case=label, transport=t):
                    if t == "http":
                        kind = task.get("type") if isinstance(task, dict) else None
                        o = post_task(self.server, task,
                                      path=tasklib.PATHS.get(kind, "/python/execute"))
                    else:
                        tid = self.ws.new_id()
                        o = self.ws_bad({"id": tid, "task": task}, what=label, task_id=tid)
                    errors = self.assert_error(o, 400, fields)
                    if len(fields) > 1:
                        self.assertGreaterEqual(len(errors), len(fields),
                                                "every problem must be listed: %s" % o)
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_unknown_or_missing_type(self):
        for t in TRANSPORTS:
            for task in ({"type": "explode", "code": "1"}, {"type": 3, "code": "1"}):
                with self.subTest(transport=t, task=task):
                    if t == "http":
                        o = post_task(self.server, task, path="/python/execute")
                    else:
                        o = self.ws_bad({"id": "u1", "task": task}, task_id="u1")
                    self.assert_error(o, 400, ["task.type"])
        # The WebSocket has no path: type is required there.
        self.assert_error(self.ws_bad({"id": "u2", "task": {"code": "1"}}, task_id="u2"), 400,
                          ["task.type"])
        # Over HTTP it may be left out, but must match the path when given.
        o = post_task(self.server, {"code": "1"}, path="/python/execute")
        self.assertEqual(o.status, 200, o)
        o = post_task(self.server, {"type": "execute", "code": "1"}, path="/python/validate")
        self.assert_error(o, 400, ["task.type"])
        r = self.server.request("POST", "/python/explode", body={"task": {"code": "1"}})
        self.assertEqual(r.status, 404, r)
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_bad_envelopes(self):
        cases = [
            ("unknown envelope key", {"task": {"type": "execute", "code": "1"}, "extra": 1},
             ["extra"]),
            ("assigned_by too long", {"task": {"type": "execute", "code": "1"},
                                      "assigned_by": "a" * 129}, ["assigned_by"]),
            ("assigned_by not a string", {"task": {"type": "execute", "code": "1"},
                                          "assigned_by": 5}, ["assigned_by"]),
        ]
        for label, env, fields in cases:
            with self.subTest(case=label, transport="http"):
                self.assert_error(self.http_raw(json.dumps(env).encode()), 400, fields)
            with self.subTest(case=label, transport="ws"):
                env = dict(env, id="env-" + label.replace(" ", "-"))
                self.assert_error(self.ws_bad(env, what=label, task_id=env["id"]), 400, fields)
        # id and cancel belong to the WebSocket.
        for extra in ({"id": "h1"}, {"cancel": True}):
            with self.subTest(http_envelope_key=list(extra)[0]):
                env = dict({"task": {"type": "execute", "code": "1"}}, **extra)
                self.assert_error(self.http_raw(json.dumps(env).encode()), 400, list(extra))
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_bad_ids(self):
        task = {"type": "execute", "code": "1"}
        for label, env in (("no id", {"task": task}),
                           ("empty id", {"id": "", "task": task}),
                           ("id too long", {"id": "i" * 129, "task": task}),
                           ("id a list", {"id": [1], "task": task}),
                           ("id an object", {"id": {"a": 1}, "task": task}),
                           ("id a float", {"id": 1.5, "task": task}),
                           ("id a boolean", {"id": True, "task": task}),
                           ("cancel with a task", {"id": "ct", "cancel": True, "task": task}),
                           ("cancel not true", {"id": "cf", "cancel": "yes"})):
            with self.subTest(case=label):
                self.assert_error(self.ws_bad(env, what=label), 400)
        self.assert_serves("ws")

    # -- sizes ------------------------------------------------------------------------------

    def test_code_over_one_mib(self):
        big = "#" + "x" * MIB  # 1 MiB + 1 byte
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                task = {"type": "execute", "code": big}
                if t == "http":
                    o = post_task(self.server, task)
                else:
                    o = self.ws_bad({"id": "big", "task": task}, task_id="big")
                self.assert_error(o, 400, ["task.code"])
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_code_of_exactly_one_mib(self):
        code = "#" + "x" * (MIB - 1)
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_task({"type": "execute", "code": code}, t)
                self.assertEqual(o.status, 200, o.describe()[:500])
                self.assertIs(o.result.get("success"), True, o.describe()[:500])

    def test_body_over_the_cap_413(self):
        code = "#" + "x" * (5 * MIB)
        raw = json.dumps({"task": {"type": "execute", "code": code}}).encode()
        try:
            o = self.http_raw(raw)
            self.assert_error(o, 413)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer 413 and close before reading it all
        self.assert_serves("http")

    # -- WebSocket framing ------------------------------------------------------------------

    def test_invalid_utf8_closes_with_1007(self):
        for payload in (b'{"id": "u", "task": {"type": "execute", "code": "\xff\xfe"}}',
                        b'{"id": "\xc0\xaf", "task": {}}', b'\xed\xa0\x80'):
            with self.subTest(payload=payload):
                s = self.socket()
                ok = s.run({"type": "execute", "code": "'before'"})
                self.assertEqual(ok.result.get("return_value"), "before", ok)
                s.send_text(payload)
                closing = s.next_closing(10)
                self.assertIsNotNone(closing, "no close after invalid UTF-8; events: %s"
                                     % [tasklib.short(e) for e in s.events[-5:]])
                self.assertEqual(closing[0], 1007, closing)
                self.assert_serves("ws")
                self.assert_serves("http")

    def test_invalid_utf8_over_http_is_a_400(self):
        for raw in (b'{"task": {"type": "execute", "code": "\xff\xfe"}}',
                    b'{"task": {"code": "print(1)"}, "assigned_by": "\xc0\xaf"}'):
            with self.subTest(raw=raw):
                self.assert_error(self.http_raw(raw), 400)
        self.assert_serves("http")

    def test_binary_frame(self):
        s = self.socket()
        s.conn.send_raw(json.dumps({"id": "b", "task": {"type": "execute", "code": "1"}})
                        .encode(), websocket.ABNF.OPCODE_BINARY)
        n = len(s.events)
        closing = None
        try:
            ev = s.wait(lambda s: next((e for e in s.events[n:]), None), 10,
                        "an answer to a binary frame")
            self.assertEqual(ev["event"], "error", "a binary frame must not run a task")
        except AssertionError as e:
            if "closed" not in str(e):
                raise
            closing = s.conn.closed
            self.assertNotIn(closing.code, (None, 1005, 1006), "closed without a code")
        self.assert_serves("ws")

    def test_flood_of_bad_frames(self):
        s = self.socket()
        for i in range(300):
            s.send_text('{"id": "f%d", "task": ' % i)
        errors = 0
        closed = False
        while True:
            try:
                s.wait(lambda s: len([e for e in s.events if e["event"] == "error"]) > errors,
                       5, "more errors")
            except AssertionError:
                closed = s.closed
                break
            errors = len([e for e in s.events if e["event"] == "error"])
            if errors >= 300:
                break
        self.assertTrue(errors == 300 or closed,
                        "300 bad frames: %d errors and the socket still open" % errors)
        self.assert_serves("ws")
        self.assert_serves("http")

    # -- paths --------------------------------------------------------------------------------

    def test_path_traversal(self):
        for t in TRANSPORTS:
            for path in ("../x", "../../etc/passwd", "/etc/passwd", "sub/../../x",
                         "escape.py"):
                with self.subTest(transport=t, file_path=path):
                    o = self.run_task({"type": "execute_file", "file_path": path}, t)
                    self.assert_error(o, 400)
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_methods_and_paths(self):
        for method, path, status in (("GET", "/python/execute", 405),
                                     ("PUT", "/python/validate", 405),
                                     ("DELETE", "/python/batch", 405),
                                     ("POST", "/python/sessions", 405),
                                     ("POST", "/python/history", 405),
                                     ("GET", "/python/nothing", 404),
                                     ("POST", "/python/", 404)):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path)
                self.assertEqual(r.status, status, r)
        self.assert_serves()


class AuthTests(TaskTestCase):
    def test_http_needs_the_token(self):
        for method, path, body in (("POST", "/python/execute",
                                    {"task": {"type": "execute", "code": "1"}}),
                                   ("POST", "/python/validate",
                                    {"task": {"type": "validate", "code": "1"}}),
                                   ("GET", "/python/sessions", None),
                                   ("GET", "/python/sessions/x", None),
                                   ("DELETE", "/python/sessions/x", None),
                                   ("GET", "/python/history", None)):
            for token in (None, "wrong-token"):
                with self.subTest(method=method, path=path, token=token):
                    r = self.server.request(method, path, body=body, token=token)
                    self.assertIn(r.status, (401, 403), r)
        # ?token= works like the header.
        r = self.server.request("POST", "/python/execute", auth="query",
                                body={"task": {"type": "execute", "code": "'q'"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json().get("return_value"), "q")

    def test_websocket_needs_the_token(self):
        for token in (None, "wrong-token"):
            with self.subTest(token=token):
                with self.assertRaises(websocket.WebSocketBadStatusException) as cm:
                    TaskSocket(self.server, token=token)
                self.assertIn(cm.exception.status_code, (401, 403))
        s = TaskSocket(self.server, auth="header")
        try:
            o = s.run({"type": "execute", "code": "'header auth'"})
            self.assertEqual(o.result.get("return_value"), "header auth", o)
        finally:
            s.close()


if __name__ == "__main__":
    tasklib.main()
