"""The task WebSocket (/python/ws) and tasks on a kernel's channels socket: output streamed while
the code runs, progress, metrics and resource alerts, many tasks in flight on one socket,
cancellation, ids (unknown, duplicate, integer), and the same tasks as text frames on
/api/kernels/{id}/channels in both framings.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_streaming.py
"""

import re
import time
import uuid

import tasklib
from tasklib import TEXT, TaskSocket, TaskTestCase

TICKS = ("import time\n"
         "for i in range(4):\n"
         "    print('tick', i, flush=True)\n"
         "    time.sleep(0.3)\n"
         "'done'\n")


def execute(code, **fields):
    t = {"type": "execute", "code": code}
    t.update(fields)
    return t


class StreamingTests(TaskTestCase):
    def test_output_arrives_while_the_code_runs(self):
        o = self.ws.run(execute(TICKS))
        self.assertEqual(o.status, 200, o)
        self.assertEqual(o.result.get("stdout"), "".join("tick %d\n" % i for i in range(4)), o)
        kinds = [e["event"] for e in o.events]
        self.assertEqual(kinds[0], "accepted", o)
        self.assertEqual(kinds[-1], "result", o)
        streams = o.of("stream")
        text = "".join(e.get("text", "") for e in streams)
        self.assertEqual([int(x) for x in re.findall(r"tick (\d)", text)], [0, 1, 2, 3], o)
        result_t = o.events[-1]["_t"]
        first_t = streams[0]["_t"]
        self.assertGreater(result_t - first_t, 0.6,
                           "the first print reached the client only %.2fs before the result: "
                           "output is not forwarded while the code runs" % (result_t - first_t))
        self.assertGreater(streams[-1]["_t"] - first_t, 0.5,
                           "prints 0.3 s apart arrived together: %r"
                           % [round(e["_t"] - first_t, 2) for e in streams])

    def test_progress(self):
        code = ("import sandcell\nimport time\n"
                "sandcell.progress(0.5, 'half')\n"
                "time.sleep(0.2)\n"
                "sandcell.progress(1.0, 'done')\n")
        o = self.ws.run(execute(code))
        self.assertEqual(o.status, 200, o)
        self.assertIs(o.result.get("success"), True, o)
        got = [(e.get("fraction"), e.get("message")) for e in o.of("progress")]
        self.assertEqual(got, [(0.5, "half"), (1.0, "done")], o)
        self.assertLess(o.events.index(o.of("progress")[-1]), len(o.events) - 1)

    def test_progress_is_rate_limited(self):
        code = ("import sandcell\n"
                "for i in range(1, 1001):\n"
                "    sandcell.progress(i / 1000)\n")
        o = self.ws.run(execute(code))
        self.assertIs(o.result.get("success"), True, o)
        p = o.of("progress")
        self.assertTrue(p, o)
        self.assertLess(len(p), 100, "1000 calls in well under a second gave %d events" % len(p))
        self.assertEqual(p[0].get("fraction"), 0.001, "the first call is always sent")
        self.assertEqual(p[-1].get("fraction"), 1.0, "the last (1.0) is always sent")

    def test_metrics_during_a_long_run(self):
        o = self.ws.run(execute("import time\ntime.sleep(2.5)\n"))
        self.assertIs(o.result.get("success"), True, o)
        m = o.of("metrics")
        self.assertGreaterEqual(len(m), 2, "a 2.5 s run should give a metrics event every "
                                           "second: %s" % o)
        for e in m:
            for key in ("elapsed", "cpu_time", "memory_bytes"):
                self.assertIsInstance(e.get(key), (int, float), e)
            self.assertIsInstance(e.get("memory"), str, e)
        el = [e["elapsed"] for e in m]
        self.assertEqual(el, sorted(el), "elapsed must grow: %r" % el)
        self.assertGreaterEqual(el[0], 0.5, el)
        short = self.ws.run(execute("1"))
        self.assertEqual(short.of("metrics"), [], "a run under a second has no metrics")

    def test_no_memory_alert_for_a_run_that_allocates_nothing(self):
        # The interpreter's own ~45 MB, shared with its supervisor after the fork, is not what
        # the limit counts: a sleeping run under a 100MB limit raises no memory alert.
        o = self.ws.run(execute("import time\ntime.sleep(2.2)\n", memory_limit="100MB"))
        self.assertIs(o.result.get("success"), True, o)
        self.assertGreaterEqual(len(o.of("metrics")), 1, o)
        self.assertEqual([e for e in o.of("resource_alert") if e.get("resource") == "memory"],
                         [], o)
        # The metrics count the interpreter's resident size, as memory_used does, not the sum
        # over the kernel's processes (which share the interpreter's pages after the fork, and
        # would count them three times).
        used = o.result["memory_used_bytes"]
        for m in o.of("metrics"):
            self.assertLess(m["memory_bytes"], 1.5 * used + 10e6, (m, used))

    def test_resource_alert_for_memory(self):
        code = ("import time\n"
                "b = b'x' * (85 * 1024 * 1024)\n"
                "time.sleep(2.5)\n"
                "len(b)\n")
        o = self.ws.run(execute(code, memory_limit="100MB"))
        self.assertEqual(o.status, 200, o)
        self.assertIs(o.result.get("success"), True, o)
        alerts = [e for e in o.of("resource_alert") if e.get("resource") == "memory"]
        self.assertEqual(len(alerts), 1, "one memory alert at 80%% of the limit: %s" % o)
        a = alerts[0]
        self.assertGreaterEqual(a.get("fraction", 0), 0.8, a)
        self.assertIsInstance(a.get("message"), str, a)
        self.assertIn("used", a)
        self.assertIn("limit", a)

    def test_many_tasks_in_flight_on_one_socket(self):
        s = self.socket()
        sleeps = {"m0": 3.0, "m1": 0.5, "m2": 2.5, "m3": 1.0, "m4": 2.0, "m5": 1.5}
        # A memory limit gives each task a kernel of its own, started now. Kernels start at
        # slightly different times (much more so in a sanitized build), so each task reports
        # on stderr when its code began and ended, by the wall clock all kernels share.
        for tid, secs in sleeps.items():
            s.submit(execute("import sys, time\n"
                             "sys.stderr.write('%%r ' %% time.time())\n"
                             "time.sleep(%s)\n"
                             "print('%s')\n"
                             "sys.stderr.write('%%r' %% time.time())\n"
                             "'%s'" % (secs, tid, tid), memory_limit="300MB"), tid)
        def six_done(s):
            done = [e for e in s.events if e["event"] in ("result", "error")]
            return done if len(done) >= 6 else None

        done = s.wait(six_done, 90, "six results")
        self.assertEqual([e["event"] for e in done], ["result"] * 6,
                         [tasklib.short(e) for e in done])
        span = {}
        for e in done:
            r = e["result"]
            self.assertEqual(r.get("stdout"), e["id"] + "\n", "output of %s mixed up: %r"
                             % (e["id"], r.get("stdout")))
            self.assertEqual(r.get("return_value"), e["id"])
            began, ended = (float(x) for x in r.get("stderr", "").split())
            self.assertGreaterEqual(ended - began, sleeps[e["id"]], r)
            span[e["id"]] = (began, ended)
        # Each result is sent as its task ends, whatever the order they were submitted in.
        # (Two that end within a tenth of a second of each other may arrive either way.)
        order = [e["id"] for e in done]
        for a, b in zip(order, order[1:]):
            self.assertLess(span[a][1], span[b][1] + 0.1,
                            "results should come back in the order the tasks ended: %s came "
                            "before %s; %s" % (a, b, span))
        self.assertNotEqual(order, list(sleeps), "results came back in submission order")
        # And the six ran side by side: one after another would take the sum of their sleeps.
        wall = max(e for _, e in span.values()) - min(b for b, _ in span.values())
        self.assertLess(wall, sum(sleeps.values()) - 2, "the tasks did not overlap: %s" % span)
        for tid in sleeps:
            evs = s.of(tid)
            self.assertEqual(evs[0]["event"], "accepted", evs)
            self.assertEqual([x["event"] for x in evs].count("result"), 1, evs)
            self.assertEqual(evs[-1]["event"], "result", "events of %s after its result" % tid)

    def test_cancel(self):
        s = self.socket()
        tid = s.submit(execute("print('started', flush=True)\nwhile True:\n    pass\n"), "spin")
        s.wait(lambda s: any(e["event"] == "stream" for e in s.of(tid)), 30,
               "the spinning task's first output")
        t0 = time.monotonic()
        s.cancel(tid)
        o = s.finish(tid, 30, t0=t0)
        self.assertEqual(o.status, 200, o)
        r = o.result
        self.assertIs(r.get("success"), False, o)
        self.assertEqual(r["limits"].get("hit"), "cancelled", o)
        self.assertEqual(r.get("exit_code"), 130, o)
        self.assertIn("started", r.get("stdout", ""), o)
        self.assertLess(o.elapsed, 10, "cancel took %.1fs" % o.elapsed)
        # The socket serves on.
        again = s.run(execute("'after cancel'"))
        self.assertEqual(again.result.get("return_value"), "after cancel", again)

    def test_cancel_unknown_id(self):
        s = self.socket()
        s.cancel("never-sent")
        e = s.wait(lambda s: s.terminal("never-sent"), 10, "an answer to a cancel of an "
                                                            "unknown id")
        self.assertEqual(e["event"], "error", e)
        self.assertIsInstance(e.get("status"), int, e)
        self.assertGreaterEqual(e["status"], 400, e)
        self.assertLess(e["status"], 500, e)
        self.assertIsInstance(e.get("message"), str, e)
        self.assertEqual(s.run(execute("'still fine'")).result.get("return_value"),
                         "still fine")

    def test_cancel_after_the_result(self):
        s = self.socket()
        o = s.run(execute("1"), task_id="quick")
        self.assertEqual(o.status, 200, o)
        n = len(s.events)
        s.cancel("quick")
        e = s.wait(lambda s: s.terminal("quick", n), 10, "an answer to a late cancel")
        self.assertEqual(e["event"], "error", e)

    def test_duplicate_id_in_flight(self):
        s = self.socket()
        s.submit(execute("import time\ntime.sleep(1.5)\n'first'"), "dup")
        s.wait(lambda s: s.of("dup"), 30, "the first task's accepted")
        n = len(s.events)
        s.submit(execute("'second'"), "dup")
        err = s.wait(lambda s: [e for e in s.of("dup", n) if e["event"] == "error"], 10,
                     "an error for the duplicate id")[0]
        self.assertIsInstance(err.get("message"), str, err)
        self.assertGreaterEqual(err.get("status", 0), 400, err)
        res = s.wait(lambda s: [e for e in s.of("dup") if e["event"] == "result"], 30,
                     "the first task's result")
        self.assertEqual(len(res), 1, [tasklib.short(e) for e in s.of("dup")])
        self.assertEqual(res[0]["result"].get("return_value"), "first", res[0])
        # Once it is done, the id may be used again.
        self.assertEqual(s.run(execute("'reused'"), task_id="dup").result.get("return_value"),
                         "reused")

    def test_integer_ids(self):
        s = self.socket()
        o = s.run(execute("print('n')\n7"), task_id=42)
        self.assertEqual(o.status, 200, o)
        self.assertTrue(all(e["id"] == 42 and isinstance(e["id"], int) for e in o.events), o)
        o = s.run(execute("8"), task_id="42")
        self.assertTrue(all(e["id"] == "42" for e in o.events), o)

    def test_all_task_types_on_one_socket(self):
        s = self.socket()
        ids = {
            s.submit(execute("1 + 1")): "execute",
            s.submit({"type": "validate", "code": "eval('1')"}): "validate",
            s.submit({"type": "batch", "items": ["1", "2"]}): "batch",
            s.submit({"type": "interactive", "code": "w = 3\nw",
                      "session_id": "ws-all-types"}): "interactive",
        }
        for tid, kind in ids.items():
            o = s.finish(tid, 60)
            self.assertEqual(o.status, 200, o)
            self.assertEqual(o.events[0].get("task_type"), kind, o)
        self.server.request("DELETE", "/python/sessions/ws-all-types")

    def test_slow_reader_still_gets_the_result(self):
        s = self.socket()
        tid = s.submit(execute("import sys\nfor i in range(20000):\n"
                               "    sys.stdout.write('%05d ' % i + 'z' * 200 + '\\n')\n"
                               "'end'"))
        time.sleep(3)  # do not read for a while: the gateway must queue or drop, not block
        o = s.finish(tid, 60)
        self.assertEqual(o.status, 200, o.describe()[:1000])
        self.assertEqual(o.result.get("return_value"), "end")
        self.assertTrue(o.result.get("stdout", "").endswith("z" * 200 + "\n"))
        self.assert_serves("ws")


class InFlightTests(TaskTestCase):
    server_options = {"history-db": ":memory:", "max-tasks-per-connection": 3}

    def test_closing_the_socket_cancels_its_one_shot_tasks(self):
        before = set(self.server.kernel_ids())
        s = TaskSocket(self.server)
        try:
            tid = s.submit(execute("print('spinning', flush=True)\nwhile True:\n    pass\n"))
            s.wait(lambda s: any(e["event"] == "stream" for e in s.of(tid)), 30,
                   "the spinning task's first output")
            mine = set(self.server.kernel_ids()) - before
            self.assertEqual(len(mine), 1, "one new kernel expected: %r" % mine)
        finally:
            s.close()
        kid = mine.pop()
        tasklib.wait_until(lambda: kid not in self.server.kernel_ids(), 15,
                           what="the closed socket's one-shot kernel %s gone" % kid)
        self.assert_serves("ws")

    def test_too_many_in_flight(self):
        s = self.socket()
        sid = "inflight-" + uuid.uuid4().hex[:6]
        self.addCleanup(lambda: self.server.request("DELETE", "/python/sessions/" + sid))
        # Interactive tasks of one session queue behind each other in one kernel.
        ids = [s.submit({"type": "interactive", "session_id": sid,
                         "code": "import time\ntime.sleep(1.5)\n%d" % i}) for i in range(3)]
        s.wait(lambda s: all(s.of(i) for i in ids), 30, "the first three tasks answered")
        extra = s.submit({"type": "interactive", "session_id": sid, "code": "'extra'"})
        e = s.wait(lambda s: s.terminal(extra), 10, "an answer to a fourth task in flight")
        self.assertEqual(e["event"], "error", "max-tasks-per-connection 3 let a fourth in")
        self.assertIsInstance(e.get("message"), str, e)
        for i, tid in enumerate(ids):
            o = s.finish(tid, 30)
            self.assertEqual(o.status, 200, o)
            self.assertEqual(o.result.get("return_value"), i, o)
        # Room again once they are done.
        self.assertEqual(s.run({"type": "interactive", "session_id": sid, "code": "'again'"})
                         .result.get("return_value"), "again")

    def test_session_tasks_run_in_order(self):
        s = self.socket()
        sid = "order-" + uuid.uuid4().hex[:6]
        self.addCleanup(lambda: self.server.request("DELETE", "/python/sessions/" + sid))
        a = s.submit({"type": "interactive", "session_id": sid,
                      "code": "import time\ntime.sleep(1)\nseq = ['a']"})
        b = s.submit({"type": "interactive", "session_id": sid,
                      "code": "seq.append('b')\nseq"})
        ra = s.finish(a, 30)
        rb = s.finish(b, 30)
        self.assertIs(ra.result.get("success"), True, ra)
        self.assertEqual(rb.result.get("return_value"), ["a", "b"],
                         "the second task of a session must run after the first: %s" % rb)
        self.assertGreater(rb.events[-1]["_t"], ra.events[-1]["_t"])


class ChannelsTests(TaskTestCase):
    """Tasks as text frames on a kernel's own channels socket."""

    def setUp(self):
        self.kid = self.server.start_kernel()["id"]
        self.addCleanup(lambda: self.server.proc and self.server.delete_kernel(self.kid))

    def check_channels(self, protocol):
        s = self.socket(kernel_id=self.kid, protocol=protocol)
        o = s.run(execute("print('via channels')\n1 + 1"))
        self.assertEqual(o.status, 200, o)
        self.check_event_stream(o, "execute")
        self.assertEqual(o.result.get("stdout"), "via channels\n", o)
        self.assertEqual(o.result.get("return_value"), 2, o)
        self.assertEqual(o.streamed("stdout"), "via channels\n", o)
        for e in o.events:
            self.assertEqual(e["_opcode"], TEXT)
        v = s.run({"type": "validate", "code": "import socket"}, task_id="v1")
        self.assertEqual(v.status, 200, v)
        self.assertIn("is_valid", v.result, v)
        bad = s.run({"type": "execute"}, task_id="bad")
        self.assert_error(bad, 400, ["task.code"])
        return s

    def test_legacy_framing(self):
        s = self.check_channels("legacy")
        # The kernel's own traffic still works on that socket.
        s.conn.wait_ready()
        r = s.conn.run("6 * 7")
        self.assertEqual(r.result_text, "42", r.describe())

    def test_v1_framing(self):
        s = self.check_channels("v1")
        s.conn.wait_ready()
        r = s.conn.run("6 * 7")
        self.assertEqual(r.result_text, "42", r.describe())

    def test_cancel_on_channels(self):
        s = self.socket(kernel_id=self.kid, protocol="v1")
        tid = s.submit(execute("print('go', flush=True)\nwhile True:\n    pass\n"))
        s.wait(lambda s: any(e["event"] == "stream" for e in s.of(tid)), 30, "first output")
        s.cancel(tid)
        o = s.finish(tid, 30)
        self.assertEqual(o.result["limits"].get("hit"), "cancelled", o)
        self.assertEqual(o.result.get("exit_code"), 130, o)


if __name__ == "__main__":
    tasklib.main()
