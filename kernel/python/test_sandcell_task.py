"""Unit tests for task mode: sandcell_task (JSON-safe values, results),
sandcell_validate (static analysis) and sandcell.progress().

Run with:  /usr/bin/python3 -m unittest test_sandcell_task -v   (in kernel/python)

Like test_sandcell_kernel (whose fake _sandcell and helpers this file uses),
requests go through sandcell_kernel.handle() and every published message
and reply is checked to be strict JSON.
"""

import math
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import test_sandcell_kernel as base
from test_sandcell_kernel import FAKE, strict_loads

import sandcell
import sandcell_kernel
import sandcell_policy
import sandcell_task
import sandcell_validate
from sandcell_task import json_safe

MB = 1 << 20


def setUpModule():
    base.setUpModule()


def tearDownModule():
    base.tearDownModule()


class Thing:
    def __repr__(self):
        return "Thing()"


class Outer:
    class Inner:
        pass


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no")


class HugeRepr:
    def __repr__(self):
        return "h" * 5000


class Meta(type):
    def __getattribute__(cls, name):
        if name in ("__qualname__", "__module__", "__name__"):
            raise RuntimeError("metaclass code must not run")
        return super().__getattribute__(name)


class WithMeta(metaclass=Meta):
    pass


class IntSub(int):
    pass


class FloatSub(float):
    pass


class LyingList(list):
    def __len__(self):
        raise RuntimeError("user __len__ must not run")

    def __iter__(self):
        raise RuntimeError("user __iter__ must not run")


class JsonSafeTests(unittest.TestCase):

    def roundtrip(self, value):
        out = json_safe(value)
        # Strict JSON, and what the kernel would send.
        self.assertEqual(strict_loads(sandcell_kernel._dumps(out)), out)
        return out

    def test_natives(self):
        for v in (None, True, False, 0, -5, 2**63 - 1, -2**63, 1.5, "", "é\n\"",
                  [1, "a", None], {"a": [1, {"b": 2.5}]}):
            self.assertEqual(self.roundtrip(v), v)
        self.assertEqual(self.roundtrip((1, (2, 3))), [1, [2, 3]])
        self.assertIs(type(self.roundtrip(IntSub(7))), int)
        self.assertEqual(self.roundtrip(FloatSub(2.5)), 2.5)

    def test_big_int_and_non_finite_float(self):
        self.assertEqual(self.roundtrip(2**63), {"type": "int", "repr": str(2**63)})
        self.assertEqual(self.roundtrip(-2**63 - 1)["repr"], str(-2**63 - 1))
        self.assertEqual(self.roundtrip(float("nan")), {"type": "float", "repr": "nan"})
        self.assertEqual(self.roundtrip(float("inf")), {"type": "float", "repr": "inf"})
        self.assertEqual(self.roundtrip([float("-inf")]), [{"type": "float", "repr": "-inf"}])
        huge = self.roundtrip(10**5000)     # repr refused by int_max_str_digits
        self.assertEqual(huge, {"type": "int", "repr": "<repr failed: ValueError>"})

    def test_other_values_are_described(self):
        self.assertEqual(self.roundtrip(Thing()),
                         {"type": "test_sandcell_task.Thing", "repr": "Thing()"})
        self.assertEqual(self.roundtrip(Outer.Inner())["type"], "test_sandcell_task.Outer.Inner")
        self.assertEqual(self.roundtrip({1, 2}), {"type": "set", "repr": "{1, 2}"})
        self.assertEqual(self.roundtrip(b"ab"), {"type": "bytes", "repr": "b'ab'"})
        self.assertEqual(self.roundtrip({1: "a"}), {"type": "dict", "repr": "{1: 'a'}"})
        self.assertEqual(self.roundtrip({"k": Thing()}),
                         {"k": {"type": "test_sandcell_task.Thing", "repr": "Thing()"}})
        self.assertEqual(self.roundtrip(WithMeta())["type"], "test_sandcell_task.WithMeta")
        self.assertEqual(self.roundtrip(math)["type"], "module")

    def test_repr_failure_and_cut(self):
        self.assertEqual(self.roundtrip(BadRepr())["repr"], "<repr failed: RuntimeError>")
        self.assertEqual(self.roundtrip(HugeRepr())["repr"], "h" * 1000)
        self.assertNotIn("truncated", self.roundtrip(HugeRepr()))

    def test_subclasses_read_through_the_base(self):
        self.assertEqual(self.roundtrip(LyingList([1, 2])), [1, 2])

    def test_depth_limit(self):
        deep = 0
        for _ in range(25):
            deep = [deep]
        out = self.roundtrip(deep)
        for _ in range(20):
            out = out[0]
        self.assertEqual(out["type"], "list")
        self.assertTrue(out["repr"].startswith("[[[[[0]]]]]"))
        cycle = []
        cycle.append(cycle)
        self.assertIsInstance(self.roundtrip(cycle), list)

    def test_size_limit(self):
        big = list(range(100000))
        out = self.roundtrip(big)
        self.assertEqual(out["type"], "list")
        self.assertTrue(out["truncated"])
        self.assertEqual(len(out["repr"]), 1000)
        self.assertTrue(out["repr"].startswith("[0, 1, 2, 3"))
        out = self.roundtrip("x" * 70000)
        self.assertEqual((out["type"], out["truncated"], len(out["repr"])), ("str", True, 1000))
        self.assertEqual(out["repr"], repr("x" * 1000)[:1000])
        # Just under the limit stays a value; escapes count.
        self.assertEqual(self.roundtrip("y" * 60000), "y" * 60000)
        self.assertTrue(self.roundtrip("\x01" * 20000)["truncated"])
        many = [Thing()] * 10000
        self.assertTrue(self.roundtrip(many)["truncated"])

    def test_bounded_repr_of_containers(self):
        value = {"a": [1, (2,), set(), frozenset({3})], "b": ()}
        self.assertEqual(sandcell_task.bounded_repr(value), repr(value))
        self.assertEqual(sandcell_task.bounded_repr(list(range(1000)), 50),
                         repr(list(range(1000)))[:50])
        cycle = {}
        cycle["self"] = cycle
        self.assertEqual(sandcell_task.bounded_repr(cycle), repr(cycle))
        import array
        import collections
        ring = collections.deque([1, [2]], maxlen=5)
        ring.append(ring)
        small = (ring, collections.deque(range(3)), array.array("i", range(5)),
                 collections.OrderedDict(a=1), type("L", (list,), {})([1, 2]))
        for v in small:
            self.assertEqual(sandcell_task.bounded_repr(v), repr(v))

    def test_huge_values_repr_prefix(self):
        import array
        import collections
        calls = []
        for v in (b"x" * (8 << 20), bytearray(8 << 20), "s" * (8 << 20),
                  array.array("b", bytes(8 << 20)), collections.deque(range(1 << 20)),
                  list(range(1 << 20)), {i: i for i in range(1 << 18)}):
            text = sandcell_task.bounded_repr(v)
            self.assertEqual(text, repr(v)[:1000], type(v))
            calls.append(len(text))
        self.assertEqual(set(calls), {1000})


class TaskTestCase(base.KernelTestCase):

    def task(self, code, silent=False, **spec):
        spec.setdefault("mode", "execute")
        reply = self.request("execute_request", code=code, silent=silent,
                             store_history=not silent, user_expressions={},
                             allow_stdin=False, stop_on_error=True, sandcell_task=spec)
        return reply

    def result(self, code, **spec):
        reply = self.task(code, **spec)
        self.assertIn("sandcell_result", reply, reply)
        return reply["sandcell_result"]


class ExecuteModeTests(TaskTestCase):

    def test_result_shape(self):
        r = self.result("1 + 1")
        self.assertEqual(set(r), {"return_value", "has_return_value", "variables",
                                  "missing_variables", "changed_variables", "cpu_time",
                                  "memory_peak", "exception", "exit_code"})
        self.assertEqual((r["return_value"], r["has_return_value"], r["exit_code"]), (2, True, 0))
        self.assertIsNone(r["exception"])
        # Still an ordinary execute: execute_input and execute_result are published.
        self.assertEqual(self.contents("execute_result")[0]["data"]["text/plain"], "2")
        self.assertEqual(len(self.contents("execute_input")), 1)

    def test_return_value(self):
        self.assertEqual(self.result("[1, (2, 'a')]")["return_value"], [1, [2, "a"]])
        r = self.result("x_none = None\nx_none")
        self.assertEqual((r["return_value"], r["has_return_value"]), (None, False))
        r = self.result("3;")
        self.assertFalse(r["has_return_value"])
        r = self.result("v = 5")
        self.assertFalse(r["has_return_value"])
        r = self.result("{1: 'a'}")
        self.assertEqual(r["return_value"], {"type": "dict", "repr": "{1: 'a'}"})
        # Silent requests publish nothing but still capture the value.
        r = self.task("40 + 2", silent=True)["sandcell_result"]
        self.assertEqual(r["return_value"], 42)
        self.assertEqual(self.published("execute_result"), [])

    def test_top_level_await_value(self):
        r = self.result("import asyncio\nawait asyncio.sleep(0)\n7")
        self.assertEqual(r["return_value"], 7)

    def test_variables_and_missing(self):
        r = self.result("va = {'k': [1, 2]}\nvb = object()",
                        return_variables=["va", "vb", "nope", "va", 3])
        self.assertEqual(r["variables"]["va"], {"k": [1, 2]})
        self.assertEqual(r["variables"]["vb"]["type"], "object")
        self.assertEqual(r["missing_variables"], ["nope"])

    def test_changed_variables(self):
        self.execute("cl = [1]\ncd = {}\ncs = 'same'\n_hidden = 1\nkeep = 1")
        r = self.result("cl.append(2)\ncd['a'] = 1\ncs = 'same'\nnew = 'n' * 300\n"
                        "_private = 2\nkeep = keep\nIn = In\nrebound = 1\n")
        changed = r["changed_variables"]
        self.assertEqual(changed["cl"], {"type": "list", "repr": "[1, 2]"})
        self.assertEqual(changed["cd"], {"type": "dict", "repr": "{'a': 1}"})
        self.assertEqual(changed["new"]["type"], "str")
        self.assertEqual(len(changed["new"]["repr"]), 200)
        for name in ("cs", "_private", "_hidden", "keep", "In", "Out", "exit"):
            self.assertNotIn(name, changed)
        r = self.result("rebound = 2\ncl = list(cl)")
        self.assertEqual(set(r["changed_variables"]), {"rebound", "cl"})

    def test_exception_info(self):
        r = self.result("a = 1\n\ndef f():\n    return 1 / 0\nf()\n", return_variables=["a"])
        self.assertEqual(r["exit_code"], 1)
        self.assertEqual(r["variables"], {"a": 1})
        self.assertFalse(r["has_return_value"])
        e = r["exception"]
        self.assertEqual((e["type"], e["message"], e["line"]),
                         ("ZeroDivisionError", "division by zero", 4))
        self.assertIn('line 4, in f', e["traceback"])
        self.assertNotIn("\x1b", e["traceback"])
        self.assertNotIn("sandcell_", e["traceback"])
        self.assertTrue(e["traceback"].endswith("ZeroDivisionError: division by zero"))
        reply = self.task("raise ValueError('v')")
        self.assertEqual(reply["status"], "error")
        self.assertEqual(reply["ename"], "ValueError")
        self.assertEqual(len(self.contents("error")), 1)

    def test_exception_type_is_qualified(self):
        r = self.result("class MyError(Exception):\n    pass\nraise MyError('m')")
        self.assertEqual(r["exception"]["type"], "__main__.MyError")
        r = self.result("import json\njson.loads('{')")
        self.assertEqual(r["exception"]["type"], "json.decoder.JSONDecodeError")
        self.assertEqual(r["exception"]["line"], 2)

    def test_syntax_error_line(self):
        r = self.result("x = 1\ny = = 2")
        self.assertEqual((r["exception"]["type"], r["exception"]["line"]), ("SyntaxError", 2))

    def test_refused_import_line(self):
        old = sandcell_kernel._S.policy
        sandcell_kernel._S.policy = sandcell_policy.from_config({"profile": "strict"})
        try:
            r = self.result("x = 1\n\nimport socket")
        finally:
            sandcell_kernel._S.policy = old
        self.assertEqual(r["exception"]["type"], "ImportPolicyError")
        self.assertEqual(r["exception"]["line"], 3)
        self.assertIn("'socket'", r["exception"]["message"])

    def test_system_exit(self):
        for code, status, exit_code in (("sys.exit()", "ok", 0), ("sys.exit(0)", "ok", 0),
                                        ("raise SystemExit(False)", "ok", 0),
                                        ("sys.exit(3)", "error", 3),
                                        ("sys.exit('bye')", "error", 1),
                                        ("exit(2)", "error", 2),
                                        ("sys.exit(2**40)", "error", 1)):
            reply = self.task("import sys\n" + code)
            r = reply["sandcell_result"]
            self.assertEqual((reply["status"], r["exit_code"]), (status, exit_code), code)
            if status == "ok":
                self.assertIsNone(r["exception"])
                self.assertEqual(self.published("error"), [])
            else:
                self.assertEqual(r["exception"]["type"], "SystemExit")
                self.assertEqual(r["exception"]["line"], 2)
                self.assertNotIn("kernel keeps running", r["exception"]["traceback"])

    def test_keyboard_interrupt(self):
        r = self.result("raise KeyboardInterrupt")
        self.assertEqual((r["exit_code"], r["exception"]["type"]), (1, "KeyboardInterrupt"))

    def test_measurements(self):
        r = self.result("s = 0\nfor i in range(300000):\n    s += i\nbuf = bytearray(30 << 20)")
        self.assertGreater(r["cpu_time"], 0)
        self.assertLess(r["cpu_time"], 60)
        self.assertIsInstance(r["memory_peak"], int)
        self.assertGreater(r["memory_peak"], 30 << 20)
        self.execute("del buf")

    def test_peak_without_reset(self):
        status = [(100, 50), (100, 60)]
        with mock.patch.object(sandcell_task, "reset_peak_memory", lambda: False), \
                mock.patch.object(sandcell_task, "memory_status", lambda: status.pop(0)):
            # An earlier cell's peak is not this one's: the RSS is the best figure.
            self.assertEqual(sandcell_task.PeakMemory().peak(), 60)
        status = [(100 * MB, 50 * MB), (150 * MB, 60 * MB)]
        with mock.patch.object(sandcell_task, "reset_peak_memory", lambda: False), \
                mock.patch.object(sandcell_task, "memory_status", lambda: status.pop(0)):
            self.assertEqual(sandcell_task.PeakMemory().peak(), 150 * MB)
        # The counters are approximate: a few pages more is no new peak.
        status = [(100 * MB, 50 * MB), (100 * MB + 8192, 60 * MB)]
        with mock.patch.object(sandcell_task, "reset_peak_memory", lambda: False), \
                mock.patch.object(sandcell_task, "memory_status", lambda: status.pop(0)):
            self.assertEqual(sandcell_task.PeakMemory().peak(), 60 * MB)
        status = [(100, 50), (100, 60)]
        with mock.patch.object(sandcell_task, "reset_peak_memory", lambda: True), \
                mock.patch.object(sandcell_task, "memory_status", lambda: status.pop(0)):
            self.assertEqual(sandcell_task.PeakMemory().peak(), 100)
        status = [(None, None), (None, None)]
        with mock.patch.object(sandcell_task, "reset_peak_memory", lambda: False), \
                mock.patch.object(sandcell_task, "memory_status", lambda: status.pop(0)):
            self.assertGreater(sandcell_task.PeakMemory().peak(), 1 << 20)

    def test_unknown_mode(self):
        reply = self.task("1", mode="sideways")
        self.assertEqual(reply["status"], "error")
        self.assertEqual(reply["sandcell_result"]["exception"]["type"], "ValueError")
        self.assertIn("sideways", reply["sandcell_result"]["exception"]["message"])

    def test_plain_execute_has_no_result(self):
        self.assertNotIn("sandcell_result", self.execute("1"))


class WorkingDirectoryTests(TaskTestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="sc-task-")
        self.workspace = os.path.join(self.root, "workspace")
        os.mkdir(self.workspace)
        patcher = mock.patch.multiple(sandcell_task, WORKSPACE=self.workspace,
                                      TMP=os.path.join(self.root, "tmp"))
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(shutil.rmtree, self.root, True)
        self.cwd = os.getcwd()

    def tearDown(self):
        os.chdir(self.cwd)

    def test_relative_is_below_workspace_and_created(self):
        r = self.result("import os\nwhere = os.getcwd()", working_directory="a/b",
                        return_variables=["where"])
        self.assertEqual(r["variables"]["where"], os.path.join(self.workspace, "a", "b"))
        self.assertEqual(os.getcwd(), self.cwd)     # put back afterwards

    def test_absolute_below_tmp_is_created(self):
        target = os.path.join(self.root, "tmp", "x")
        r = self.result("import os\nwhere = os.getcwd()", working_directory=target,
                        return_variables=["where"])
        self.assertEqual(r["variables"]["where"], target)

    def test_missing_elsewhere_is_an_error(self):
        target = os.path.join(self.root, "elsewhere")
        reply = self.task("ran = True", working_directory=target, return_variables=["ran"])
        r = reply["sandcell_result"]
        self.assertEqual(reply["status"], "error")
        self.assertEqual(r["exception"]["type"], "FileNotFoundError")
        self.assertIn(target, r["exception"]["message"])
        self.assertIsNone(r["exception"]["line"])
        self.assertEqual(r["exception"]["traceback"],
                         "FileNotFoundError: " + r["exception"]["message"])
        self.assertEqual(r["missing_variables"], ["ran"])
        self.assertFalse(os.path.exists(target))

    def test_relative_may_not_leave_the_workspace(self):
        for wd in ("../etc", "a/../../tmp"):
            reply = self.task("ran = True", working_directory=wd)
            e = reply["sandcell_result"]["exception"]
            self.assertEqual(e["type"], "ValueError", wd)
            self.assertIn("relative paths are below", e["message"])
        r = self.result("import os\nwhere = os.getcwd()", working_directory="a/../b",
                        return_variables=["where"])
        self.assertEqual(r["variables"]["where"], os.path.join(self.workspace, "b"))

    def test_existing_directory(self):
        r = self.result("import os\nwhere = os.getcwd()", working_directory=self.root,
                        return_variables=["where"])
        self.assertEqual(r["variables"]["where"], self.root)


class FileModeTests(TaskTestCase):

    def test_script_runs_as_main(self):
        code = ("import sys, os\n"
                "seen = (__name__, __file__, sys.argv, os.environ.get('SC_TEST_VAR'))\n"
                "is_main = sys.modules['__main__'].__dict__ is globals()\n")
        r = self.result(code, mode="file", file_name="tools/job.py",
                        argv=["tools/job.py", "--n", "3"], env={"SC_TEST_VAR": "v"},
                        return_variables=["seen", "is_main", "In"])
        self.assertEqual(r["variables"]["seen"],
                         ["__main__", "tools/job.py", ["tools/job.py", "--n", "3"], "v"])
        self.assertTrue(r["variables"]["is_main"])
        # A fresh namespace: none of the kernel's names.
        self.assertEqual(r["missing_variables"], ["In"])
        self.assertEqual(set(r["changed_variables"]), {"sys", "os", "seen", "is_main"})
        self.assertFalse(r["has_return_value"])
        # Put back afterwards.
        self.assertNotIn("SC_TEST_VAR", os.environ)
        self.assertNotEqual(sys.argv[:1], ["tools/job.py"])
        self.assertIs(sys.modules["__main__"].__dict__, sandcell_kernel._S.ns)

    def test_fresh_namespace_each_time(self):
        self.execute("user_var = 1")
        r = self.result("x = 1\nprint(1)", mode="file", file_name="a.py",
                        return_variables=["user_var"])
        self.assertEqual(r["missing_variables"], ["user_var"])
        self.assertNotIn("x", sandcell_kernel._S.ns)

    def test_traceback_names_the_script(self):
        code = "def f():\n    raise KeyError('k')\n\nf()\n"
        reply = self.task(code, mode="file", file_name="job.py")
        e = reply["sandcell_result"]["exception"]
        self.assertEqual((e["type"], e["line"]), ("KeyError", 2))
        self.assertIn('File "job.py", line 4, in <module>', e["traceback"])
        self.assertIn('File "job.py", line 2, in f', e["traceback"])
        self.assertIn("raise KeyError('k')", e["traceback"])
        self.assertNotIn("sandcell_kernel", e["traceback"])

    def test_script_exit_codes(self):
        r = self.result("import sys\nsys.exit(4)", mode="file", file_name="e.py")
        self.assertEqual(r["exit_code"], 4)
        reply = self.task("raise SystemExit", mode="file", file_name="e.py")
        self.assertEqual((reply["status"], reply["sandcell_result"]["exit_code"]), ("ok", 0))

    def test_no_top_level_await_in_a_script(self):
        r = self.result("import asyncio\nawait asyncio.sleep(0)", mode="file", file_name="s.py")
        self.assertEqual((r["exception"]["type"], r["exception"]["line"]), ("SyntaxError", 2))

    def test_import_policy_applies(self):
        old = sandcell_kernel._S.policy
        sandcell_kernel._S.policy = sandcell_policy.from_config({"profile": "strict"})
        try:
            r = self.result("import json\nimport subprocess", mode="file", file_name="s.py")
        finally:
            sandcell_kernel._S.policy = old
        self.assertEqual((r["exception"]["type"], r["exception"]["line"]),
                         ("ImportPolicyError", 2))

    def test_absolute_file_name_is_not_library_code(self):
        reply = self.task("1/0", mode="file", file_name="/usr/lib/python3/x.py")
        tb = reply["sandcell_result"]["exception"]["traceback"]
        self.assertIn('"<script>/x.py"', tb)


def strict():
    return sandcell_policy.from_config({"profile": "strict"},
                                       provided=sandcell_kernel._SHIM_MODULES)


def moderate():
    return sandcell_policy.from_config({"profile": "moderate"},
                                       provided=sandcell_kernel._SHIM_MODULES)


class ValidateTests(TaskTestCase):

    def validate(self, code, policy=None, **kw):
        out = sandcell_validate.validate(code, policy, provided=sandcell_kernel._SHIM_MODULES,
                                         **kw)
        self.assertEqual(strict_loads(sandcell_kernel._dumps(out)), out)
        return out

    def warnings(self, code, policy=None):
        return [(w["code"], w["category"], w["severity"])
                for w in self.validate(code, policy)["security_warnings"]]

    def test_shape_of_valid_code(self):
        out = self.validate("import json\nx = json.dumps([1])\n", strict())
        self.assertEqual(out, {
            "is_valid": True, "syntax_errors": [], "security_warnings": [],
            "import_issues": [],
            "imports": [{"module": "json", "line": 1, "allowed": True, "installed": True}],
            "recommendations": [], "security_level": "strict"})

    def test_syntax_error_position(self):
        out = self.validate("x = 1\ny = = 2\n")
        self.assertFalse(out["is_valid"])
        self.assertEqual(out["syntax_errors"],
                         [{"line": 2, "column": 4, "message": "invalid syntax", "text": "y = = 2"}])
        self.assertEqual(out["recommendations"], ["Fix the syntax error on line 2 first"])
        # Characters, not bytes.
        err = self.validate("s = 'ééé' +* 1")["syntax_errors"][0]
        self.assertEqual(err["column"], "s = 'ééé' +* 1".index("*"))
        # Found by the compiler, after parsing.
        err = self.validate("x = 1\nreturn x")["syntax_errors"][0]
        self.assertEqual((err["line"], err["message"]), (2, "'return' outside function"))
        # Top-level await is fine, as in a cell.
        self.assertTrue(self.validate("import asyncio\nawait asyncio.sleep(0)")["is_valid"])
        # Null bytes.
        self.assertFalse(self.validate("x = 1\0")["is_valid"])

    def test_check_syntax_false(self):
        out = self.validate("eval(\nimport socket", strict(), check_syntax=False)
        self.assertEqual(out["syntax_errors"], [])
        self.assertEqual((out["security_warnings"], out["imports"]), ([], []))
        self.assertFalse(out["is_valid"])

    def test_dynamic_code(self):
        self.assertEqual(self.warnings("eval('1')\nexec('x=1')\ncompile('1', 'f', 'eval')\n"
                                       "__import__('json')\nimport builtins\nbuiltins.eval('2')"),
                         [("eval", "dynamic_code", "high"), ("exec", "dynamic_code", "high"),
                          ("compile", "dynamic_code", "high"),
                          ("__import__", "dynamic_code", "high"),
                          ("eval", "dynamic_code", "high")])
        self.assertEqual(self.warnings("import re\nre.compile('x')\nfrom re import compile\n"
                                       "compile('y')"), [])
        self.assertEqual(self.warnings("import importlib\nimportlib.import_module(name)"),
                         [("importlib.import_module", "dynamic_code", "medium")])
        w = self.validate("x = 1; y = eval(s)")["security_warnings"][0]
        self.assertEqual((w["line"], w["column"]), (1, 11))
        self.assertTrue(w["message"])

    def test_introspection(self):
        got = self.warnings("().__class__.__base__.__subclasses__()\nf.__globals__\n"
                            "g.__code__\nh.__closure__\nimport sys\nsys._getframe().f_back\n"
                            "tb.tb_frame.f_globals\nT.__mro__\nT.__bases__\n__builtins__\n"
                            "getattr(o, '__globals__')\ngetattr(o, '__dict__')\n"
                            "getattr(o, 'name')\nsetattr(o, '__class__', C)\ngen.gi_frame")
        self.assertEqual(got, [
            ("__base__", "introspection", "medium"), ("__subclasses__", "introspection", "high"),
            ("__globals__", "introspection", "high"), ("__code__", "introspection", "high"),
            ("__closure__", "introspection", "medium"),
            ("f_back", "introspection", "high"), ("sys._getframe", "introspection", "high"),
            ("f_globals", "introspection", "high"), ("tb_frame", "introspection", "high"),
            ("__mro__", "introspection", "medium"), ("__bases__", "introspection", "medium"),
            ("__builtins__", "introspection", "high"), ("getattr", "introspection", "high"),
            ("getattr", "introspection", "medium"), ("setattr", "introspection", "medium"),
            ("gi_frame", "introspection", "high")])

    def test_file(self):
        got = self.warnings("open('a')\nopen('b', 'w')\nopen('c', mode='rb')\nopen('d', m)\n"
                            "import os, shutil\nos.remove('a')\nshutil.rmtree('d')\n"
                            "from shutil import copy as cp\ncp('a', 'b')\nos.path.join('a')")
        self.assertEqual(got, [("open", "file", "low"), ("open", "file", "medium"),
                               ("open", "file", "low"), ("open", "file", "medium"),
                               ("os.remove", "file", "medium"),
                               ("shutil.rmtree", "file", "medium"),
                               ("shutil.copy", "file", "medium")])

    def test_process(self):
        got = self.warnings("import os, subprocess, signal\nos.system('ls')\n"
                            "subprocess.run(['ls'])\nfrom subprocess import Popen\nPopen('x')\n"
                            "os.execv('/bin/ls', [])\nos.spawnlp(0, 'ls')\nos.fork()\n"
                            "os.kill(1, 9)\nsignal.signal(2, h)\nos.popen('ls')")
        self.assertEqual(got, [("os.system", "process", "high"),
                               ("subprocess.run", "process", "high"),
                               ("subprocess.Popen", "process", "high"),
                               ("os.execv", "process", "high"),
                               ("os.spawnlp", "process", "high"),
                               ("os.fork", "process", "high"),
                               ("os.kill", "process", "high"),
                               ("signal.signal", "process", "high"),
                               ("os.popen", "process", "high")])

    def test_network(self):
        got = self.warnings("import socket, requests, http.client\n"
                            "from urllib.request import urlopen\n"
                            "s = socket.socket()\nurlopen('http://x')\nrequests.get('u')\n"
                            "c = http.client.HTTPSConnection('h')\n"
                            "import urllib.request as ur\nur.Request('u')")
        self.assertEqual(got, [("socket.socket", "network", "medium"),
                               ("urllib.request.urlopen", "network", "medium"),
                               ("requests.get", "network", "medium"),
                               ("http.client.HTTPSConnection", "network", "medium"),
                               ("urllib.request.Request", "network", "medium")])

    def test_imports_under_strict(self):
        code = ("import json, socket\nfrom os import path\nimport collections.abc\n"
                "__import__('subprocess')\nimport importlib\nimportlib.import_module('math')\n"
                "import IPython.display\nimport sandcell\nfrom . import sibling\n"
                "from __future__ import annotations\n")
        out = self.validate(code, strict())
        verdicts = [(i["module"], i["line"], i["allowed"], i["installed"]) for i in out["imports"]]
        self.assertEqual(verdicts, [
            ("json", 1, True, True), ("socket", 1, False, True), ("os", 2, False, True),
            ("collections.abc", 3, True, True), ("subprocess", 4, False, True),
            ("importlib", 5, False, True), ("math", 6, True, True),
            ("IPython.display", 7, True, True), ("sandcell", 8, True, True)])
        self.assertEqual([(i["module"], i["reason"]) for i in out["import_issues"]],
                         [("socket", "not_allowed"), ("os", "not_allowed"),
                          ("subprocess", "not_allowed"), ("importlib", "not_allowed")])
        self.assertEqual(out["import_issues"][0]["message"],
                         "import of 'socket' is not allowed under the strict security profile")
        self.assertFalse(out["is_valid"])
        recs = out["recommendations"]
        self.assertIn("Remove the import of 'socket': the strict security profile does not "
                      "allow it", recs)
        self.assertTrue(any("Relative imports (line 9)" in r for r in recs), recs)

    def test_imports_under_moderate(self):
        out = self.validate("import requests_not_here_xyz\nimport os\nimport pathlib\n"
                            "from os import path\nimport requests_not_here_xyz\n", moderate())
        self.assertEqual([(i["module"], i["reason"], i["line"]) for i in out["import_issues"]],
                         [("requests_not_here_xyz", "not_installed", 1),
                          ("os", "not_allowed", 2)])
        self.assertEqual(out["import_issues"][1]["message"],
                         "import of 'os' is blocked under the moderate security profile")
        self.assertEqual(len(out["imports"]), 5)
        self.assertEqual(out["security_level"], "moderate")
        self.assertIn("'requests_not_here_xyz' is not installed in the sandbox; use the "
                      "standard library", out["recommendations"])
        self.assertTrue(any("pathlib and shutil" in r for r in out["recommendations"]))

    def test_submodule_refused_alone(self):
        policy = sandcell_policy.from_config({"profile": "custom", "block": ["xml.sax"]})
        out = self.validate("from xml import sax, dom", policy)
        self.assertEqual([(i["module"], i["allowed"]) for i in out["imports"]],
                         [("xml", True), ("xml.sax", False)])

    def test_nothing_is_imported(self):
        before = set(sys.modules)
        out = self.validate("import email.mime.text\nimport xmlrpc.server\nimport tkinter")
        self.assertTrue(out["imports"][0]["installed"])
        self.assertEqual(set(sys.modules) - before, set())

    def test_recommendations(self):
        out = self.validate("import requests\nx = eval(s)\nimport socket\nsocket.socket()",
                            moderate())
        recs = out["recommendations"]
        self.assertIn("Remove eval(): parse data with json.loads or ast.literal_eval instead",
                      recs)
        self.assertIn("The sandbox has no network access: socket.socket will fail", recs)
        if not out["imports"][0]["installed"]:
            self.assertIn("'requests' is not installed in the sandbox; use urllib.request "
                          "(network permitting)", recs)

    def test_check_imports_false(self):
        out = self.validate("import socket", strict(), check_imports=False)
        self.assertEqual((out["imports"], out["import_issues"], out["is_valid"]),
                         ([], [], True))

    def test_no_policy(self):
        out = self.validate("import os")
        self.assertEqual((out["imports"][0]["allowed"], out["security_level"]), (True, "none"))

    def test_validate_request(self):
        count = sandcell_kernel._S.execution_count
        old = sandcell_kernel._S.policy
        sandcell_kernel._S.policy = strict()
        try:
            reply = self.task("import socket\nraise SystemExit('must not run')", mode="validate",
                              check_syntax=True, check_imports=True)
        finally:
            sandcell_kernel._S.policy = old
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["execution_count"], count)
        self.assertEqual(sandcell_kernel._S.execution_count, count)
        self.assertEqual(FAKE.events, [])       # no execute_input, no output
        self.assertNotIn("sandcell_result", reply)
        v = reply["sandcell_validation"]
        self.assertEqual(set(v), {"is_valid", "syntax_errors", "security_warnings",
                                  "import_issues", "imports", "recommendations",
                                  "security_level"})
        self.assertEqual((v["is_valid"], v["security_level"]), (False, "strict"))


class ProgressTests(base.KernelTestCase):

    def setUp(self):
        self.clock = [1000.0]
        patcher = mock.patch.object(sandcell.time, "monotonic", lambda: self.clock[0])
        patcher.start()
        self.addCleanup(patcher.stop)

    def progress_messages(self):
        return [(t, c) for t, c, _ in self.published()
                if t in ("display_data", "update_display_data")
                and sandcell.PROGRESS_MIME in c["data"]]

    def test_throttling(self):
        sandcell_kernel._S.cell_serial += 1     # as a new cell would
        FAKE.events.clear()
        calls = [(0.0, 0.0, None), (0.05, 0.1, None), (0.06, 0.2, None),   # second dropped
                 (0.07, 0.3, "phase 2"),                                   # message changed
                 (0.08, 0.35, "phase 2"),                                  # dropped
                 (0.09, 1.0, "phase 2"),                                   # the last
                 (0.25, 0.5, "phase 2")]                                   # 0.1 s later
        for t, f, m in calls:
            self.clock[0] = 1000.0 + t
            self.assertIsNone(sandcell.progress(f, m))
        sent = self.progress_messages()
        self.assertEqual([(t, c["data"][sandcell.PROGRESS_MIME]) for t, c in sent], [
            ("display_data", {"fraction": 0.0, "message": None}),
            ("update_display_data", {"fraction": 0.3, "message": "phase 2"}),
            ("update_display_data", {"fraction": 1.0, "message": "phase 2"}),
            ("update_display_data", {"fraction": 0.5, "message": "phase 2"})])
        ids = {c["transient"]["display_id"] for _, c in sent}
        self.assertEqual(len(ids), 1)
        self.assertTrue(ids.pop().startswith("sandcell-progress-"))
        self.assertEqual(sent[2][1]["data"]["text/plain"], "[##########] 100% phase 2")
        self.assertEqual(sent[3][1]["data"]["text/plain"], "[#####-----] 50% phase 2")
        self.assertEqual(sent[0][1]["data"]["text/plain"], "[----------] 0%")

    def test_new_cell_new_display(self):
        self.execute("import sandcell\nsandcell.progress(0.5)")
        first = self.progress_messages()
        self.execute("sandcell.progress(0.5)")
        second = self.progress_messages()
        self.assertEqual([t for t, _ in first + second], ["display_data", "display_data"])
        self.assertNotEqual(first[0][1]["transient"]["display_id"],
                            second[0][1]["transient"]["display_id"])

    def test_validation(self):
        reply = self.execute("import sandcell\nsandcell.progress(float('nan'))")
        self.assertEqual(reply["ename"], "ValueError")
        self.assertNotIn("sandcell.py", "\n".join(reply["traceback"]))
        for bad in ("'half'", "None", "True", "1j"):
            reply = self.execute("sandcell.progress(%s)" % bad)
            self.assertEqual(reply["ename"], "TypeError", bad)
        self.assertEqual(self.execute("sandcell.progress(0.5, 3)")["ename"], "TypeError")
        sandcell_kernel._S.cell_serial += 1
        FAKE.events.clear()
        sandcell.progress(7, "m" * 600)
        sandcell.progress(-2)
        data = [c["data"][sandcell.PROGRESS_MIME] for _, c in self.progress_messages()]
        self.assertEqual(data, [{"fraction": 1.0, "message": "m" * 500},
                                {"fraction": 0.0, "message": None}])
        from fractions import Fraction
        sandcell.progress(Fraction(1, 4), "q")
        self.assertEqual(self.progress_messages()[-1][1]["data"][sandcell.PROGRESS_MIME],
                         {"fraction": 0.25, "message": "q"})


if __name__ == "__main__":
    unittest.main()
