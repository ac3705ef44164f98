"""interactive sessions, over HTTP (POST /python/interactive) and /python/ws: state kept across
requests, reset_session, continue_session, sessions as ordinary kernels (listed in
/api/kernels, a notebook can attach), GET/DELETE /python/sessions, the security level of a
session (409), the history (GET /python/history) in SQLite, and session expiry.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_interactive.py
"""

import datetime
import os
import re
import time
import unittest
import urllib.parse
import uuid

import tasklib
from tasklib import TRANSPORTS, KernelWS, Server, TaskTestCase, harness, sha256, wait_until

SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
SESSION_KEYS = ("session_id", "kernel_id", "security_level", "created", "last_activity",
                "executions", "execution_state", "expires_in")
HISTORY_KEYS = ("task_id", "task_type", "session_id", "item", "assigned_by", "kernel_id",
                "security_level", "code_sha256", "code_size", "started", "finished",
                "execution_time", "success", "exit_code", "error_type", "limit_hit",
                "stdout_bytes", "stderr_bytes")


def new_sid(tag=""):
    return "s-%s%s" % (tag, uuid.uuid4().hex[:10])


def parse_iso(text):
    """An ISO 8601 UTC time as written by the gateway; raises ValueError otherwise."""
    if not isinstance(text, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text):
        raise ValueError("not ISO 8601: %r" % (text,))
    t = text.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(t)


class InteractiveBase(TaskTestCase):
    def step(self, transport, session_id, code, expect=200, assigned_by=None, **fields):
        """One interactive task; fields go into the task, assigned_by into the envelope."""
        task = {"type": "interactive", "code": code}
        if session_id is not None:
            task["session_id"] = session_id
        task.update(fields)
        extra = {} if assigned_by is None else {"assigned_by": assigned_by}
        if expect == 200:
            return self.result_of(task, transport, **extra)
        return self.run_task(task, transport, **extra)

    def delete_session(self, sid):
        return self.server.request("DELETE", "/python/sessions/" + urllib.parse.quote(sid))

    def cleanup_session(self, sid):
        self.addCleanup(lambda: self.server.proc is not None and self.delete_session(sid))

    def sessions(self):
        body = self.server.get_json("/python/sessions")
        self.assertIsInstance(body.get("sessions"), list, body)
        return {s.get("session_id"): s for s in body["sessions"]}


class InteractiveTests(InteractiveBase):
    def test_variables_persist(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                a = self.step(t, sid, "counter = 1")
                self.assertIs(a.result.get("success"), True, a)
                self.assertEqual(a.result.get("session_id"), sid, a)
                self.assertIsInstance(a.result.get("execution_count"), int, a)
                b = self.step(t, sid, "counter += 1\ncounter")
                self.assertEqual(b.result.get("return_value"), 2, b)
                self.assertEqual(b.result.get("session_id"), sid, b)
                self.assertEqual(b.result.get("kernel_id"), a.result.get("kernel_id"), b)
                self.assertEqual(b.result.get("execution_count"),
                                 a.result["execution_count"] + 1, b)
                if t == "ws":
                    self.assertEqual(b.events[0].get("task_type"), "interactive", b)

    def test_session_id_made_by_the_gateway(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                a = self.step(t, None, "made = 'here'")
                sid = a.result.get("session_id")
                self.assertRegex(sid or "", SESSION_ID, a)
                self.cleanup_session(sid)
                b = self.step(t, sid, "made")
                self.assertEqual(b.result.get("return_value"), "here", b)

    def test_changed_variables(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                a = self.step(t, sid, "lst = [1]\nkeep = 5\n")
                self.assertEqual(a.result.get("changed_variables"), {
                    "lst": {"type": "list", "repr": "[1]"},
                    "keep": {"type": "int", "repr": "5"}}, a)
                b = self.step(t, sid, "lst.append(2)")
                self.assertEqual(b.result.get("changed_variables"),
                                 {"lst": {"type": "list", "repr": "[1, 2]"}}, b)
                c = self.step(t, sid, "keep = 'six'\nlen(lst)")
                self.assertEqual(c.result.get("changed_variables"),
                                 {"keep": {"type": "str", "repr": "'six'"}}, c)
                self.assertEqual(c.result.get("return_value"), 2, c)

    def test_errors_do_not_end_the_session(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                self.step(t, sid, "z = 1")
                e = self.step(t, sid, "1 / 0")
                self.assertIs(e.result.get("success"), False, e)
                self.assertEqual((e.result.get("exception_info") or {}).get("type"),
                                 "ZeroDivisionError", e)
                self.assertEqual(self.step(t, sid, "z").result.get("return_value"), 1)

    def test_timeout_interrupts_but_keeps_the_session(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                self.step(t, sid, "kept = 'yes'")
                o = self.step(t, sid, "while True:\n    pass\n", timeout=1)
                self.assertEqual(o.result["limits"].get("hit"), "wall_time", o)
                self.assertEqual(o.result.get("exit_code"), 124, o)
                self.assertLess(o.elapsed, 10, o)
                self.assertEqual(self.step(t, sid, "kept").result.get("return_value"), "yes")

    def test_reset_session(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                self.step(t, sid, "x = 1")
                o = self.step(t, sid, "pass", reset_session=True, return_variables=["x"])
                self.assertEqual(o.result.get("missing_variables"), ["x"], o)
                self.assertEqual(o.result.get("session_id"), sid, o)
                # The history stays.
                h = self.server.get_json("/python/history?session_id=" + sid)
                self.assertEqual(len(h.get("executions", [])), 2, h)
                # And the session works on.
                self.assertEqual(self.step(t, sid, "x = 5\nx").result.get("return_value"), 5)

    def test_continue_session_false_starts_fresh(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                a = self.step(t, sid, "y = 1")
                b = self.step(t, sid, "pass", continue_session=False, return_variables=["y"])
                self.assertEqual(b.result.get("missing_variables"), ["y"], b)
                self.assertEqual(b.result.get("session_id"), sid, b)
                old = a.result["kernel_id"]
                self.assertNotEqual(b.result.get("kernel_id"), old, b)
                wait_until(lambda: old not in self.server.kernel_ids(), 15,
                           what="the replaced session's kernel gone from /api/kernels")
                # Of a session that does not exist: simply a new one.
                sid2 = new_sid(t)
                self.cleanup_session(sid2)
                c = self.step(t, sid2, "1", continue_session=False)
                self.assertEqual(c.result.get("session_id"), sid2, c)

    def test_sessions_are_kernels(self):
        sid = new_sid()
        self.cleanup_session(sid)
        a = self.step("http", sid, "counter = 1")
        self.step("ws", sid, "counter += 1")
        kid = a.result["kernel_id"]
        listed = self.sessions()
        self.assertIn(sid, listed, "GET /python/sessions: %r" % listed)
        s = listed[sid]
        for key in SESSION_KEYS:
            self.assertIn(key, s, "session without %r: %r" % (key, s))
        self.assertEqual(s["kernel_id"], kid)
        self.assertEqual(s["security_level"], "moderate")
        self.assertEqual(s["executions"], 2, s)
        self.assertIsInstance(s["expires_in"], (int, float), s)
        self.assertGreater(s["expires_in"], 0, s)
        self.assertLessEqual(s["expires_in"], 1800, s)
        parse_iso(s["created"])
        parse_iso(s["last_activity"])
        one = self.server.get_json("/python/sessions/" + sid)
        self.assertEqual(one.get("session_id"), sid, one)
        self.assertEqual(one.get("kernel_id"), kid, one)
        self.assertIn(kid, self.server.kernel_ids(), "the session's kernel is not in /api/kernels")
        # A notebook attaches to it like to any kernel, and sees the same namespace.
        c = KernelWS(self.server, kid)
        try:
            c.wait_ready()
            r = c.run("counter")
            self.assertEqual(r.result_text, "2", r.describe())
            r = c.run("from_notebook = counter * 10")
            self.assertEqual(r.reply.content.get("status"), "ok", r.describe())
        finally:
            c.close()
        b = self.step("http", sid, "from_notebook + 1")
        self.assertEqual(b.result.get("return_value"), 21, b)

    def test_delete_session(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                a = self.step(t, sid, "gone_soon = 1")
                kid = a.result["kernel_id"]
                r = self.delete_session(sid)
                self.assertEqual(r.status, 204, r)
                wait_until(lambda: kid not in self.server.kernel_ids(), 15,
                           what="the deleted session's kernel gone from /api/kernels")
                self.assertNotIn(sid, self.sessions())
                self.assertEqual(self.server.request("GET", "/python/sessions/" + sid).status,
                                 404)
                self.assertEqual(self.delete_session(sid).status, 404)
                b = self.step(t, sid, "pass", return_variables=["gone_soon"])
                self.assertEqual(b.result.get("missing_variables"), ["gone_soon"], b)
                self.assertEqual(self.delete_session(sid).status, 204)

    def test_unknown_session(self):
        r = self.server.request("GET", "/python/sessions/no-such-session")
        self.assertEqual(r.status, 404, r)
        self.assertIsInstance(r.json().get("message"), str, r)
        self.assertEqual(self.delete_session("no-such-session").status, 404)

    def test_security_level_conflict(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                sid = new_sid(t)
                self.cleanup_session(sid)
                a = self.step(t, sid, "level = 'strict'", security_level="strict")
                self.assertIs(a.result.get("success"), True, a)
                o = self.step(t, sid, "level", expect=409, security_level="permissive")
                self.assert_error(o, 409)
                self.assertEqual(self.step(t, sid, "level", security_level="strict")
                                 .result.get("return_value"), "strict")
                # Without a level the session's own applies: strict refuses socket.
                b = self.step(t, sid, "import socket")
                self.assertIs(b.result.get("success"), False, b)
                self.assertEqual(self.sessions()[sid]["security_level"], "strict")

    def test_bad_session_ids(self):
        for t in TRANSPORTS:
            for bad in ("has space", "slash/inside", "x" * 129, "é", 7):
                with self.subTest(transport=t, session_id=bad):
                    o = self.step(t, bad, "1", expect=400)
                    self.assert_error(o, 400, ["task.session_id"])
        self.assert_serves()


class HistoryTests(InteractiveBase):
    DB = os.path.join(harness.TMP, "history-%s.sqlite" % uuid.uuid4().hex[:8])
    server_options = {"history-db": DB}

    def test_history_of_a_session(self):
        sid = new_sid()
        self.cleanup_session(sid)
        codes = ["a = 1", "s = 'é ü ✓'\nprint(s)", "1 / 0", "a + 1"]
        results = []
        for i, code in enumerate(codes):
            t = TRANSPORTS[i % 2]
            o = self.step(t, sid, code, assigned_by="tester-%d" % i)
            results.append(o.result)
        h = self.server.get_json("/python/history?session_id=" + sid)
        ex = h.get("executions")
        self.assertIsInstance(ex, list, h)
        self.assertEqual([e.get("task_id") for e in ex],
                         [r["task_id"] for r in reversed(results)], "newest first: %r" % ex)
        for e, code, r, i in zip(reversed(ex), codes, results, range(len(codes))):
            for key in HISTORY_KEYS:
                self.assertIn(key, e, "history entry without %r: %r" % (key, e))
            self.assertEqual(e["code_sha256"], sha256(code), e)
            self.assertEqual(e["code_size"], len(code.encode("utf-8")), e)
            self.assertEqual(e["task_type"], "interactive", e)
            self.assertEqual(e["session_id"], sid, e)
            self.assertIsNone(e["item"], e)
            self.assertEqual(e["assigned_by"], "tester-%d" % i, e)
            self.assertEqual(e["kernel_id"], r["kernel_id"], e)
            self.assertEqual(e["success"], r["success"], e)
            self.assertEqual(e["exit_code"], r["exit_code"], e)
            self.assertLessEqual(parse_iso(e["started"]), parse_iso(e["finished"]), e)
        self.assertEqual(ex[1]["error_type"], "ZeroDivisionError", ex[1])
        self.assertIs(ex[1]["success"], False)
        self.assertIsNone(ex[0]["error_type"], ex[0])
        self.assertEqual(ex[2]["stdout_bytes"], len("é ü ✓\n".encode("utf-8")), ex[2])
        # limit and before page through it.
        two = self.server.get_json("/python/history?limit=2&session_id=" + sid)["executions"]
        self.assertEqual([e["task_id"] for e in two], [e["task_id"] for e in ex[:2]])
        older = self.server.get_json("/python/history?session_id=%s&before=%s"
                                     % (sid, ex[1]["task_id"]))["executions"]
        self.assertEqual([e["task_id"] for e in older], [e["task_id"] for e in ex[2:]])

    def test_one_shot_runs_are_in_the_history(self):
        code = "print('one shot')"
        o = self.result_of({"type": "execute", "code": code}, "http", assigned_by="ray")
        ex = self.server.get_json("/python/history?limit=50")["executions"]
        mine = [e for e in ex if e.get("task_id") == o.result["task_id"]]
        self.assertEqual(len(mine), 1, ex[:5])
        e = mine[0]
        self.assertEqual(e["task_type"], "execute")
        self.assertIsNone(e["session_id"])
        self.assertEqual(e["assigned_by"], "ray")
        self.assertEqual(e["code_sha256"], sha256(code))
        self.assertEqual(e["stdout_bytes"], len("one shot\n"))
        self.assertEqual(ex[0]["task_id"], o.result["task_id"], "newest first")

    def test_limit_hit_recorded(self):
        o = self.result_of({"type": "execute", "code": "while True:\n    pass",
                            "timeout": 1}, "http")
        ex = self.server.get_json("/python/history?limit=1")["executions"]
        self.assertEqual(ex[0]["task_id"], o.result["task_id"], ex)
        self.assertEqual(ex[0]["limit_hit"], "wall_time", ex)
        self.assertEqual(ex[0]["exit_code"], 124, ex)

    def test_bad_history_queries(self):
        for q in ("limit=-1", "limit=abc", "limit=1001", "before=no-such-task"):
            with self.subTest(query=q):
                r = self.server.request("GET", "/python/history?" + q)
                # A limit above 1000 may be refused or held at 1000.
                if q == "limit=1001" and r.status == 200:
                    self.assertLessEqual(len(r.json()["executions"]), 1000)
                    continue
                # An unknown task id in before: refused, or nothing is older than it.
                if q.startswith("before=") and r.status == 200:
                    self.assertEqual(r.json()["executions"], [], r)
                    continue
                self.assertEqual(r.status, 400, r)



class HistoryFileTests(unittest.TestCase):
    def test_history_is_an_sqlite_file_that_outlives_the_gateway(self):
        db = os.path.join(harness.TMP, "history-file-%s.sqlite" % uuid.uuid4().hex[:8])
        first = Server({"history-db": db}, name="history1").start()
        try:
            o = tasklib.post_task(first, {"type": "execute", "code": "'persist'"},
                                  assigned_by="persist-check")
            self.assertEqual(o.status, 200, o)
        finally:
            first.stop()
        with open(db, "rb") as f:
            self.assertEqual(f.read(16), b"SQLite format 3\x00")
        second = Server({"history-db": db}, name="history2").start()
        try:
            ex = second.get_json("/python/history?limit=1000")["executions"]
            mine = [e for e in ex if e.get("task_id") == o.result["task_id"]]
            self.assertEqual(len(mine), 1, "the restarted gateway lost the entry: %r" % ex[:3])
            self.assertEqual(mine[0]["assigned_by"], "persist-check")
        finally:
            second.stop()


class SessionExpiryTests(InteractiveBase):
    server_options = {"history-db": ":memory:", "session-idle-timeout": 2}

    def test_idle_session_expires(self):
        sid = new_sid()
        a = self.step("http", sid, "v = 1")
        kid = a.result["kernel_id"]
        s = self.sessions().get(sid)
        self.assertIsNotNone(s, "the session is not listed")
        self.assertLessEqual(s["expires_in"], 2, s)
        wait_until(lambda: sid not in self.sessions(), 20,
                   what="session %s removed after 2 s idle" % sid)
        wait_until(lambda: kid not in self.server.kernel_ids(), 15,
                   what="the expired session's kernel gone from /api/kernels")
        self.assertEqual(self.server.request("GET", "/python/sessions/" + sid).status, 404)
        b = self.step("http", sid, "pass", return_variables=["v"])
        self.assertEqual(b.result.get("missing_variables"), ["v"], b)
        self.delete_session(sid)

    def test_activity_keeps_a_session(self):
        sid = new_sid()
        self.cleanup_session(sid)
        self.step("ws", sid, "n = 0")
        for i in range(5):
            time.sleep(0.7)  # below the 2 s idle timeout each time
            o = self.step("ws", sid, "n += 1\nn")
            self.assertEqual(o.result.get("return_value"), i + 1,
                             "the session expired although it was used every 0.7 s: %s" % o)


if __name__ == "__main__":
    tasklib.main()
