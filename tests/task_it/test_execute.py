"""execute, over HTTP (POST /python/execute) and /python/ws: output, the final value, variables
asked for and variables changed, exceptions and exit codes, values that are not JSON,
capture_output, working_directory, allowed_imports, one-shot kernels that share nothing, the
wall-clock and memory limits, the result's caps.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_execute.py
"""

import re

import tasklib
from tasklib import TRANSPORTS, TaskTestCase, wait_until

SIZE_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)? ?[kKMGT]?i?B$")
MIB = 1024 * 1024


class ExecuteTests(TaskTestCase):
    # permissive gets a small output cap so that cutting the output is quick to provoke.
    server_config = {"profiles": {"permissive": {"output": "2MB"}}}

    def execute(self, transport, code, **fields):
        task = {"type": "execute", "code": code}
        task.update(fields)
        return self.result_of(task, transport)

    def test_stdout_stderr_and_final_value(self):
        code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code)
                r = o.result
                self.assertIs(r.get("success"), True, o)
                self.assertEqual(r.get("stdout"), "out\n", o)
                self.assertEqual(r.get("stderr"), "err\n", o)
                self.assertEqual(r.get("return_value"), 42, o)
                self.assertEqual(r.get("exit_code"), 0, o)
                self.assertIsNone(r.get("exception_info"), o)
                self.assertIsNone(r["limits"].get("hit"), o)
                self.assertIsNone(r["limits"].get("message"), o)
                self.assertEqual(r.get("truncated"),
                                 {"stdout": False, "stderr": False, "output": False}, o)
                self.assertEqual(r.get("displays"), [], o)
                for key in ("execution_time", "cpu_time"):
                    self.assertIsInstance(r.get(key), (int, float), "%s: %s" % (key, o))
                    self.assertGreaterEqual(r[key], 0, o)
                self.assertRegex(r.get("memory_used") or "", SIZE_TEXT, o)
                self.assertIsInstance(r.get("memory_used_bytes"), int, o)
                self.assertGreater(r["memory_used_bytes"], 0, o)
                self.assertTrue(r.get("task_id"), o)
                self.assertTrue(r.get("kernel_id"), o)
                for key in ("memory", "timeout", "cpu_time", "output"):
                    self.assertIn(key, r["limits"], o)
                if t == "ws":
                    self.assertEqual(o.events[0]["task_type"], "execute", o)
                    self.assertEqual(o.events[0]["task_id"], r["task_id"], o)
                    self.assertEqual(o.streamed("stdout"), "out\n", o)
                    self.assertEqual(o.streamed("stderr"), "err\n", o)

    def test_return_variables(self):
        code = "x = 1\ny = [1, 'two', None]\nz = {'k': 1.5}\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, return_variables=["x", "y", "z", "nope"])
                r = o.result
                self.assertEqual(r.get("variables"),
                                 {"x": 1, "y": [1, "two", None], "z": {"k": 1.5}}, o)
                self.assertEqual(r.get("missing_variables"), ["nope"], o)
                self.assertIsNone(r.get("return_value"), o)

    def test_changed_variables(self):
        code = "a = 1\nb = [1, 2]\n_private = 3\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code)
                self.assertEqual(o.result.get("changed_variables"), {
                    "a": {"type": "int", "repr": "1"},
                    "b": {"type": "list", "repr": "[1, 2]"},
                }, o)

    def test_exception_info(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, "x = 1\ny = 2\nraise ValueError('bad value')\n")
                r = o.result
                self.assertIs(r.get("success"), False, o)
                self.assertEqual(r.get("exit_code"), 1, o)
                info = r.get("exception_info")
                self.assertIsInstance(info, dict, o)
                self.assertEqual(info.get("type"), "ValueError", o)
                self.assertEqual(info.get("message"), "bad value", o)
                self.assertEqual(info.get("line"), 3, o)
                self.assertIsInstance(info.get("traceback"), str, o)
                self.assertIn("ValueError", info["traceback"], o)
                self.assertNotIn("\x1b[", info["traceback"], "colour codes in the traceback")
                # Raised inside a function: the line of the raise.
                o = self.execute(t, "def f():\n    return 1 / 0\n\n\nf()\n")
                info = o.result.get("exception_info") or {}
                self.assertEqual(info.get("type"), "ZeroDivisionError", o)
                self.assertEqual(info.get("line"), 2, o)

    def test_system_exit(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, "import sys\nprint('before')\nsys.exit(3)\nprint('after')")
                self.assertEqual(o.result.get("exit_code"), 3, o)
                self.assertIs(o.result.get("success"), False, o)
                self.assertEqual(o.result.get("stdout"), "before\n", o)
                o = self.execute(t, "raise SystemExit(0)")
                self.assertEqual(o.result.get("exit_code"), 0, o)
                self.assertIs(o.result.get("success"), True, o)

    def test_values_that_are_not_json(self):
        code = ("import fractions\n"
                "fr = fractions.Fraction(1, 3)\n"
                "s = {3}\n"
                "nan = float('nan')\n"
                "long = set(range(5000))\n"
                "blob = 'y' * 70000\n"
                "fr\n")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, return_variables=["s", "nan", "long", "blob"])
                r = o.result
                self.assertEqual(r.get("return_value"),
                                 {"type": "fractions.Fraction", "repr": "Fraction(1, 3)"}, o)
                v = r.get("variables") or {}
                self.assertEqual(v.get("s"), {"type": "set", "repr": "{3}"}, o)
                self.assertEqual(v.get("nan"), {"type": "float", "repr": "nan"}, o)
                self.assertEqual((v.get("long") or {}).get("type"), "set", o)
                rep = (v.get("long") or {}).get("repr", "")
                self.assertTrue(rep.startswith("{0, 1, 2, 3"), rep[:100])
                # "cut at 1000 characters" (a marker of a few characters may follow the cut)
                self.assertLessEqual(len(rep), 1003, "repr of %d characters" % len(rep))
                blob = v.get("blob")
                self.assertIsInstance(blob, dict, "a 70 kB string must become {type, repr, "
                                      "truncated}: %r" % (str(blob)[:200],))
                self.assertEqual(blob.get("type"), "str")
                self.assertIs(blob.get("truncated"), True, str(blob)[:200])

    def test_numpy_value(self):
        # The reference's own example.
        o = self.execute("http", "import numpy as np\nnp.array([1, 2])")
        self.assertEqual(o.result.get("return_value"),
                         {"type": "numpy.ndarray", "repr": "array([1, 2])"}, o)

    def test_capture_output_false(self):
        code = "import sys\nprint('hidden out')\nprint('hidden err', file=sys.stderr)\n1"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, capture_output=False)
                r = o.result
                # The reference says both "left out of the result" and '"" with
                # capture_output: false': either passes.
                self.assertEqual(r.get("stdout", ""), "", o)
                self.assertEqual(r.get("stderr", ""), "", o)
                self.assertEqual(r.get("return_value"), 1, o)
                if t == "ws":
                    self.assertEqual(o.streamed("stdout"), "hidden out\n",
                                     "still streamed on a WebSocket: %s" % o)
                    self.assertEqual(o.streamed("stderr"), "hidden err\n", o)

    def test_working_directory(self):
        code = "import pathlib\nstr(pathlib.Path.cwd())"
        cases = ((None, "/workspace"), ("sub/dir", "/workspace/sub/dir"),
                 ("/workspace/abs", "/workspace/abs"), ("/tmp/wd", "/tmp/wd"))
        for t in TRANSPORTS:
            for wd, want in cases:
                with self.subTest(transport=t, working_directory=wd):
                    fields = {} if wd is None else {"working_directory": wd}
                    o = self.execute(t, code, **fields)
                    self.assertEqual(o.result.get("return_value"), want, o)
        o = self.execute("http", "open('made_here.txt', 'w').write('x')\n"
                                 "import pathlib\n"
                                 "pathlib.Path('/workspace/w2/made_here.txt').exists()",
                         working_directory="w2")
        self.assertIs(o.result.get("return_value"), True, o)

    def test_relative_working_directory_stays_below_workspace(self):
        # "relative paths are below /workspace": one that climbs out is refused, or at least
        # does not land outside /workspace.
        code = "import pathlib\nstr(pathlib.Path.cwd())"
        for t in TRANSPORTS:
            for wd in ("../etc", "a/../../tmp"):
                with self.subTest(transport=t, working_directory=wd):
                    o = self.run_task({"type": "execute", "code": code,
                                       "working_directory": wd}, t)
                    if o.status == 400:
                        self.assert_error(o, 400, ["task.working_directory"])
                        continue
                    self.assertEqual(o.status, 200, o)
                    if o.result.get("success"):
                        self.assertTrue(o.result["return_value"].startswith("/workspace"),
                                        "working_directory %r ran in %r" % (
                                            wd, o.result["return_value"]))

    def test_allowed_imports_narrow(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, "import json\njson.dumps(1)", allowed_imports=["math"])
                r = o.result
                self.assertIs(r.get("success"), False, o)
                self.assertEqual(r.get("exit_code"), 1, o)
                info = r.get("exception_info") or {}
                self.assertEqual((info.get("type") or "").rpartition(".")[2],
                                 "ImportPolicyError", o)
                msg = info.get("message") or ""
                self.assertIn("'json'", msg, o)
                self.assertTrue("not allowed" in msg or "blocked" in msg,
                                "the message should say the import is refused: %r" % msg)
                o = self.execute(t, "import math\nmath.floor(2.5)", allowed_imports=["math"])
                self.assertEqual(o.result.get("return_value"), 2, o)

    def test_allowed_imports_cannot_widen(self):
        # os is blocked under moderate (the default); naming it must not let it in. Refusing
        # the request (400 naming allowed_imports) or refusing the import both keep that.
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_task({"type": "execute", "code": "import os\nos.getpid()",
                                   "allowed_imports": ["os", "math"]}, t)
                if o.status == 400:
                    self.assert_error(o, 400, ["task.allowed_imports"])
                    continue
                self.assertEqual(o.status, 200, o)
                self.assertIs(o.result.get("success"), False, o)
                info = o.result.get("exception_info") or {}
                self.assertEqual((info.get("type") or "").rpartition(".")[2],
                                 "ImportPolicyError", o)

    def test_one_shot_runs_share_nothing(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                a = self.execute(t, "leak_var = 41\nopen('leak.txt', 'w').write('x')\n")
                self.assertIs(a.result.get("success"), True, a)
                b = self.execute(t, "import pathlib\npathlib.Path('leak.txt').exists()",
                                 return_variables=["leak_var"])
                self.assertEqual(b.result.get("missing_variables"), ["leak_var"], b)
                self.assertEqual(b.result.get("variables"), {}, b)
                self.assertIs(b.result.get("return_value"), False, b)
                self.assertNotEqual(a.result["kernel_id"], b.result["kernel_id"])
                for kid in (a.result["kernel_id"], b.result["kernel_id"]):
                    wait_until(lambda: kid not in self.server.kernel_ids(), 15,
                               what="one-shot kernel %s gone from /api/kernels" % kid)

    def test_timeout(self):
        code = "print('spinning', flush=True)\nwhile True:\n    pass\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, timeout=1)
                r = o.result
                self.assertIs(r.get("success"), False, o)
                self.assertEqual(r["limits"].get("hit"), "wall_time", o)
                self.assertEqual(r.get("exit_code"), 124, o)
                self.assertIsInstance(r["limits"].get("message"), str, o)
                self.assertTrue(r["limits"]["message"], o)
                self.assertEqual(r["limits"].get("timeout"), 1, o)
                self.assertIn("spinning", r.get("stdout", ""), o)
                self.assertLess(o.elapsed, 10, "a 1 s timeout took %.1fs to answer" % o.elapsed)

    def test_timeout_above_the_profile(self):
        # "may only be lower than the profile's" (moderate: 300 s): refused, or held at 300.
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_task({"type": "execute", "code": "1", "timeout": 100000}, t)
                if o.status == 400:
                    self.assert_error(o, 400, ["task.timeout"])
                else:
                    self.assertEqual(o.status, 200, o)
                    self.assertLessEqual(o.result["limits"]["timeout"], 300, o)

    def test_memory_limit(self):
        code = "b = b'x' * (400 * 1024 * 1024)\nprint('allocated')\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, memory_limit="100MB")
                r = o.result
                self.assertIs(r.get("success"), False, o)
                self.assertEqual(r["limits"].get("hit"), "memory", o)
                self.assertIn(r.get("exit_code"), (1, 137), o)
                self.assertNotIn("allocated", r.get("stdout", ""), o)
                self.assertIn("memory", (r["limits"].get("message") or "").lower(), o)
        self.assert_serves()

    def test_memory_limit_as_bytes(self):
        o = self.execute("http", "b = b'x' * (400 * 1024 * 1024)", memory_limit=100 * MIB)
        self.assertEqual(o.result["limits"].get("hit"), "memory", o)

    def test_result_keeps_start_and_end_of_big_output(self):
        code = ("import sys\nline = 'x' * 1023 + '\\n'\n"
                "for i in range(3 * 1024):\n    sys.stdout.write(line)\n"
                "print('END')\n")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code)
                r = o.result
                self.assertIs(r.get("success"), True, o.describe()[:2000])
                self.assertEqual(r.get("truncated"),
                                 {"stdout": True, "stderr": False, "output": False},
                                 o.describe()[:2000])
                out = r.get("stdout", "")
                self.assertLessEqual(len(out.encode()), MIB + 1024,
                                     "the result keeps at most 1 MiB of stdout, got %d bytes"
                                     % len(out.encode()))
                self.assertGreater(len(out.encode()), MIB // 2)
                self.assertTrue(out.startswith("x" * 1023 + "\n"), out[:100])
                self.assertTrue(out.endswith("END\n"), out[-100:])

    def test_output_cap_of_the_profile(self):
        # permissive's output cap is 2MB in this server's config; write 4 MiB.
        code = ("import sys\nline = 'y' * 1023 + '\\n'\n"
                "for i in range(4 * 1024):\n    sys.stdout.write(line)\n"
                "print('END')\n")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, security_level="permissive")
                r = o.result
                self.assertIs((r.get("truncated") or {}).get("output"), True,
                              o.describe()[:2000])
                self.assertNotIn("END", r.get("stdout", "")[-2000:],
                                 "output past the cap reached the result")
        self.assert_serves()

    def test_displays(self):
        code = "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\n1"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code)
                d = o.result.get("displays") or []
                self.assertEqual(len(d), 1, o)
                self.assertEqual(d[0].get("data", {}).get("text/html"), "<b>hi</b>", o)
                if t == "ws":
                    ev = o.of("display")
                    self.assertEqual(len(ev), 1, o)
                    self.assertEqual(ev[0].get("data", {}).get("text/html"), "<b>hi</b>", o)

    def test_fd_level_output(self):
        code = "import os\nos.write(1, b'raw fd\\n')\nos.write(2, b'raw err\\n')\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code, security_level="permissive")
                self.assertIn("raw fd\n", o.result.get("stdout", ""), o)
                self.assertIn("raw err\n", o.result.get("stderr", ""), o)

    def test_unicode_round_trip(self):
        code = "s = 'é ✓ 😀'\nprint(s)\ns"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.execute(t, code)
                self.assertEqual(o.result.get("stdout"), "é ✓ 😀\n", o)
                self.assertEqual(o.result.get("return_value"), "é ✓ 😀", o)

    def test_stdin_is_not_available(self):
        o = self.execute("http", "x = input('name? ')")
        self.assertIs(o.result.get("success"), False, o)
        self.assertIn("input", (o.result.get("exception_info") or {}).get("message", ""), o)


class KernelLimitTests(TaskTestCase):
    server_options = {"history-db": ":memory:", "max-kernels": 1}

    def test_503_when_no_kernel_can_start(self):
        sid = "holds-the-only-kernel"
        a = self.result_of({"type": "interactive", "session_id": sid, "code": "1"}, "http")
        self.assertIs(a.result.get("success"), True, a)
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_task({"type": "execute", "code": "1"}, t)
                self.assert_error(o, 503)
        self.assertEqual(self.server.request("DELETE", "/python/sessions/" + sid).status, 204)
        wait_until(lambda: not self.server.kernel_ids(), 15, what="the session's kernel gone")
        self.assert_serves("http")


if __name__ == "__main__":
    tasklib.main()
