"""batch, over HTTP (POST /python/batch) and /python/ws: items sharing one kernel, stop_on_error,
fresh_kernel, file items, item_result events, return_variables per item, the summary.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_batch.py
"""

import json
import tempfile

import tasklib
from tasklib import TRANSPORTS, TaskTestCase, harness

ROOT = tempfile.mkdtemp(prefix="batch-scripts-", dir=harness.TMP)
SCRIPTS = tasklib.make_scripts_dir(ROOT)


class BatchTests(TaskTestCase):
    server_options = {"history-db": ":memory:", "scripts-dir": SCRIPTS}

    def batch(self, transport, items, **fields):
        task = {"type": "batch", "items": items}
        task.update(fields)
        o = self.result_of(task, transport)
        r = o.result
        self.assertIsInstance(r.get("results"), list, o)
        self.assertEqual(len(r["results"]), len(items), o)
        self.assertIsInstance(r.get("summary"), dict, o)
        s = r["summary"]
        self.assertEqual(s.get("total"), len(items), o)
        self.assertEqual(s.get("succeeded", 0) + s.get("failed", 0) + s.get("skipped", 0),
                         len(items), o)
        self.assertIsInstance(s.get("execution_time"), (int, float), o)
        if transport == "ws":
            self.assertEqual(o.events[0].get("task_type"), "batch", o)
            done = o.of("item_result")
            ran = [i for i, x in enumerate(r["results"]) if not x.get("skipped")]
            self.assertEqual([e.get("item") for e in done], ran,
                             "one item_result per item that ran, in order: %s" % o)
            for e in done:
                self.assertEqual(e.get("result"), r["results"][e["item"]], o)
            last = o.events[-1]
            self.assertEqual(last.get("event"), "result", o)
        return o

    def test_items_share_one_kernel(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.batch(t, ["a = 1", {"code": "a += 1\nprint('a is', a)"}, "a * 10"])
                r = o.result
                self.assertIs(r.get("success"), True, o)
                res = r["results"]
                self.assertEqual(res[1].get("stdout"), "a is 2\n", o)
                self.assertEqual(res[2].get("return_value"), 20, o)
                self.assertEqual(len({x.get("kernel_id") for x in res}), 1, o)
                self.assertEqual(r["summary"], dict(r["summary"], total=3, succeeded=3,
                                                    failed=0, skipped=0), o)
                if t == "ws":
                    items = [e.get("item") for e in o.of("stream")]
                    self.assertEqual(items, [1] * len(items), "stream events carry their item")
                    self.assertTrue(items, o)

    def test_stop_on_error(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.batch(t, ["x = 1", "1 / 0", "x", "print('never')"])
                r = o.result
                self.assertIs(r.get("success"), False, o)
                res = r["results"]
                self.assertIs(res[0].get("success"), True, o)
                self.assertIs(res[1].get("success"), False, o)
                self.assertEqual((res[1].get("exception_info") or {}).get("type"),
                                 "ZeroDivisionError", o)
                for skipped in res[2:]:
                    self.assertEqual(skipped, {"success": False, "skipped": True}, o)
                self.assertEqual(r["summary"], dict(r["summary"], total=4, succeeded=1,
                                                    failed=1, skipped=2), o)
                if t == "ws":
                    self.assertNotIn("never", o.streamed(), o)

    def test_stop_on_error_false(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.batch(t, ["x = 1", "1 / 0", "x"], stop_on_error=False)
                r = o.result
                self.assertIs(r.get("success"), False, o)
                self.assertEqual(r["results"][2].get("return_value"), 1, o)
                self.assertEqual(r["summary"], dict(r["summary"], total=3, succeeded=2,
                                                    failed=1, skipped=0), o)

    def test_fresh_kernel_isolates_items(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.batch(t, ["iso = 1", "iso = locals().get('iso', 0) + 1"],
                               fresh_kernel=True, return_variables=["iso"])
                res = o.result["results"]
                self.assertEqual(res[0].get("variables"), {"iso": 1}, o)
                self.assertEqual(res[1].get("variables"), {"iso": 1},
                                 "the second item saw the first item's variable: %s" % o)
                self.assertNotEqual(res[0].get("kernel_id"), res[1].get("kernel_id"), o)
                o = self.batch(t, ["iso = 1", "iso = locals().get('iso', 0) + 1"],
                               return_variables=["iso"])
                self.assertEqual(o.result["results"][1].get("variables"), {"iso": 2}, o)

    def test_return_variables_asked_of_every_item(self):
        o = self.batch("http", ["p = 1", "q = 2"], return_variables=["p", "q"])
        res = o.result["results"]
        self.assertEqual((res[0].get("variables"), res[0].get("missing_variables")),
                         ({"p": 1}, ["q"]), o)
        self.assertEqual((res[1].get("variables"), res[1].get("missing_variables")),
                         ({"p": 1, "q": 2}, []), o)

    def test_file_items(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.batch(t, [{"file_path": "argv_echo.py", "arguments": ["a", "b"]},
                                   "2 + 2",
                                   {"file_path": "counter.py", "arguments": ["1", "2", "3"]}])
                res = o.result["results"]
                self.assertEqual(json.loads(res[0].get("stdout") or "null"), ["a", "b"], o)
                self.assertEqual(res[1].get("return_value"), 4, o)
                self.assertEqual(res[2].get("stdout"), "6\n", o)
                self.assertIs(o.result.get("success"), True, o)

    def test_items_in_the_history(self):
        o = self.batch("http", ["1", "2 / 0", "3"], stop_on_error=False)
        ex = self.server.get_json("/python/history?limit=3")["executions"]
        self.assertEqual([(e.get("task_type"), e.get("item")) for e in ex],
                         [("batch", 2), ("batch", 1), ("batch", 0)], ex)
        self.assertEqual([e.get("success") for e in ex], [True, False, True], ex)
        self.assertEqual(ex[1].get("error_type"), "ZeroDivisionError", ex)
        self.assertEqual([e.get("code_sha256") for e in ex],
                         [tasklib.sha256(c) for c in ("3", "2 / 0", "1")], ex)
        self.assertTrue(o.result.get("results"), o)

    def test_timeout_per_item(self):
        o = self.batch("ws", ["import time\ntime.sleep(0.5)\n'a'", "while True:\n    pass",
                              "'c'"], timeout=1.5, stop_on_error=False)
        res = o.result["results"]
        self.assertEqual(res[0].get("return_value"), "a", "the timeout is per item: %s" % o)
        self.assertEqual(res[1]["limits"].get("hit"), "wall_time", o)
        self.assertEqual(res[1].get("exit_code"), 124, o)
        self.assertEqual(res[2].get("return_value"), "c", o)

    def test_bad_batches(self):
        cases = [
            ("no items", {"type": "batch", "items": []}, "task.items"),
            ("65 items", {"type": "batch", "items": ["1"] * 65}, "task.items"),
            ("item of a wrong type", {"type": "batch", "items": ["1", 2]}, "task.items"),
            ("item with both", {"type": "batch", "items": [{"code": "1", "file_path": "x.py"}]},
             "task.items"),
            ("item with an unknown key", {"type": "batch", "items": [{"cod": "1"}]},
             "task.items"),
            ("items missing", {"type": "batch"}, "task.items"),
            ("bad path in an item", {"type": "batch", "items": [{"file_path": "../x.py"}]},
             None),
        ]
        for t in TRANSPORTS:
            for label, task, field in cases:
                with self.subTest(transport=t, case=label):
                    self.assert_error(self.run_task(task, t), 400, [field] if field else [])
        self.assert_serves()


if __name__ == "__main__":
    tasklib.main()
