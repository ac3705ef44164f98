"""validate, over HTTP (POST /python/validate) and /python/ws: syntax errors with line and
column, security warnings (dynamic code, introspection, files, processes), refused and missing
imports per profile, is_valid, recommendations, check_imports, and that nothing runs.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_validate.py
"""

import tasklib
from tasklib import TRANSPORTS, TaskTestCase

RESULT_KEYS = ("is_valid", "syntax_errors", "security_warnings", "import_issues", "imports",
               "recommendations", "security_level", "validation_time")
SEVERITIES = {"low", "medium", "high"}
CATEGORIES = {"dynamic_code", "introspection", "file", "process", "network"}


class ValidateTests(TaskTestCase):
    def validate(self, transport, code, **fields):
        task = {"type": "validate", "code": code}
        task.update(fields)
        o = self.result_of(task, transport)
        v = o.result
        for key in RESULT_KEYS:
            self.assertIn(key, v, "ValidationResult without %r: %s" % (key, o))
        for key in ("syntax_errors", "security_warnings", "import_issues", "imports",
                    "recommendations"):
            self.assertIsInstance(v[key], list, o)
        for w in v["security_warnings"]:
            self.assertIn(w.get("severity"), SEVERITIES, w)
            self.assertIn(w.get("category"), CATEGORIES, w)
            self.assertIsInstance(w.get("line"), int, w)
            self.assertIsInstance(w.get("column"), int, w)
            self.assertIsInstance(w.get("message"), str, w)
        for i in v["import_issues"]:
            self.assertIn(i.get("reason"), ("not_allowed", "not_installed"), i)
            self.assertIsInstance(i.get("message"), str, i)
        self.assertIsInstance(v["validation_time"], (int, float), o)
        if transport == "ws":
            self.assertEqual(o.events[0].get("task_type"), "validate", o)
        return o

    def warnings(self, v, category):
        return [w for w in v["security_warnings"] if w.get("category") == category]

    def test_clean_code(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "import math\nx = math.sqrt(4)\nprint(x)\n")
                v = o.result
                self.assertIs(v["is_valid"], True, o)
                self.assertEqual(v["syntax_errors"], [], o)
                self.assertEqual(v["security_warnings"], [], o)
                self.assertEqual(v["import_issues"], [], o)
                self.assertEqual(v["security_level"], "moderate", o)
                self.assertEqual([(i.get("module"), i.get("line"), i.get("allowed"),
                                   i.get("installed")) for i in v["imports"]],
                                 [("math", 1, True, True)], o)

    def test_syntax_error(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "x = 1\nx = = 2\n")
                v = o.result
                self.assertIs(v["is_valid"], False, o)
                self.assertEqual(len(v["syntax_errors"]), 1, o)
                e = v["syntax_errors"][0]
                self.assertEqual(e.get("line"), 2, o)
                # "column counts from 0": the second '=' is at index 4 of "x = = 2".
                self.assertEqual(e.get("column"), 4, o)
                self.assertIsInstance(e.get("message"), str, o)
                self.assertEqual((e.get("text") or "").rstrip("\n"), "x = = 2", o)
                self.assertTrue(v["recommendations"], "nothing recommended for a syntax error")

    def test_unclosed_paren(self):
        o = self.validate("http", "print('a'\nx = 1\n")
        self.assertIs(o.result["is_valid"], False, o)
        self.assertEqual(o.result["syntax_errors"][0].get("line"), 1, o)

    def test_eval_is_a_high_dynamic_code_warning(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "data = '1 + 1'\nx = eval(data)\n")
                v = o.result
                ws = self.warnings(v, "dynamic_code")
                self.assertEqual(len(ws), 1, o)
                self.assertEqual(ws[0].get("severity"), "high", o)
                self.assertEqual(ws[0].get("code"), "eval", o)
                self.assertEqual((ws[0].get("line"), ws[0].get("column")), (2, 4), o)
                # A warning is not an error.
                self.assertIs(v["is_valid"], True, o)
                self.assertTrue(v["recommendations"], o)

    def test_other_dynamic_code(self):
        o = self.validate("http", "exec('x = 1')\ncompile('1', 'f', 'eval')\n"
                                  "m = __import__('json')\n")
        codes = {w.get("code") for w in self.warnings(o.result, "dynamic_code")}
        self.assertTrue({"exec", "compile", "__import__"} <= codes, o)

    def test_introspection_warning(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "().__class__.__mro__[1].__subclasses__()\n")
                ws = self.warnings(o.result, "introspection")
                self.assertTrue(ws, o)
                self.assertTrue(any("__subclasses__" in (w.get("code") or "") + w["message"]
                                    for w in ws), "no warning names __subclasses__: %s" % o)
                self.assertTrue(o.result["recommendations"], o)

    def test_more_introspection(self):
        code = ("import sys\n"
                "f = sys._getframe()\n"
                "g = f.f_back.f_globals\n"
                "h = getattr(f, '__class__')\n"
                "b = (lambda: 0).__globals__['__builtins__']\n")
        o = self.validate("http", code)
        lines = {w["line"] for w in self.warnings(o.result, "introspection")}
        self.assertTrue({3, 4, 5} <= lines, o)

    def test_file_and_process_warnings(self):
        code = ("import os\nimport subprocess\n"
                "open('/etc/passwd').read()\n"
                "os.system('ls')\n"
                "subprocess.run(['ls'])\n")
        o = self.validate("http", code, security_level="permissive")
        v = o.result
        self.assertIn(3, {w["line"] for w in self.warnings(v, "file")}, o)
        self.assertTrue({4, 5} <= {w["line"] for w in self.warnings(v, "process")}, o)
        self.assertIs(v["is_valid"], True, "permissive allows os and subprocess: %s" % o)
        self.assertEqual(v["security_level"], "permissive", o)

    def test_strict_refuses_socket(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "import math\n\nimport socket\n", security_level="strict")
                v = o.result
                self.assertIs(v["is_valid"], False, o)
                self.assertEqual(len(v["import_issues"]), 1, o)
                i = v["import_issues"][0]
                self.assertEqual((i.get("module"), i.get("line"), i.get("reason")),
                                 ("socket", 3, "not_allowed"), o)
                self.assertIn("strict", i.get("message", ""), o)
                imp = {x["module"]: x for x in v["imports"]}
                self.assertIs(imp["socket"]["allowed"], False, o)
                self.assertIs(imp["socket"]["installed"], True, o)
                self.assertIs(imp["math"]["allowed"], True, o)
                self.assertEqual(v["security_level"], "strict", o)
                self.assertTrue(v["recommendations"], o)

    def test_module_not_installed(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, "import sc_surely_not_installed_module\n")
                v = o.result
                self.assertIs(v["is_valid"], False, o)
                self.assertEqual([(i.get("module"), i.get("reason")) for i in v["import_issues"]],
                                 [("sc_surely_not_installed_module", "not_installed")], o)
                self.assertIs(v["imports"][0]["installed"], False, o)
                self.assertTrue(v["recommendations"], o)

    def test_allowed_imports_narrow_validation(self):
        o = self.validate("ws", "import json\nimport math\n", allowed_imports=["math"])
        v = o.result
        self.assertIs(v["is_valid"], False, o)
        self.assertEqual([(i["module"], i["reason"]) for i in v["import_issues"]],
                         [("json", "not_allowed")], o)

    def test_check_imports_false(self):
        o = self.validate("http", "import socket\n", security_level="strict",
                          check_imports=False)
        self.assertEqual(o.result["import_issues"], [], o)
        self.assertIs(o.result["is_valid"], True, o)

    def test_nothing_runs(self):
        code = "print('RAN')\nimport time\nwhile True:\n    time.sleep(1)\n"
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.validate(t, code)
                self.assertIs(o.result["is_valid"], True, o)
                self.assertNotIn("stdout", o.result, o)
                self.assertLess(o.elapsed, 30, "validating an endless loop took %.0fs"
                                % o.elapsed)
                if t == "ws":
                    self.assertEqual(o.of("stream"), [], "validate ran the code: %s" % o)


if __name__ == "__main__":
    tasklib.main()
