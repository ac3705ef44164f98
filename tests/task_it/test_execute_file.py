"""execute_file, over HTTP (POST /python/execute-file) and /python/ws: arguments, environment,
__name__ and __file__, exit codes, exceptions with the script's line; paths that leave
--scripts-dir (.., absolute, symlinks out), missing scripts, refused environment names, and a
gateway without --scripts-dir.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/task_it/test_execute_file.py
"""

import json
import os
import tempfile

import tasklib
from tasklib import TRANSPORTS, TaskTestCase, harness

ROOT = tempfile.mkdtemp(prefix="scripts-", dir=harness.TMP)
SCRIPTS = tasklib.make_scripts_dir(ROOT)


class ExecuteFileTests(TaskTestCase):
    server_options = {"history-db": ":memory:", "scripts-dir": SCRIPTS}

    def run_file(self, transport, file_path, **fields):
        task = {"type": "execute_file", "file_path": file_path}
        task.update(fields)
        return self.run_task(task, transport)

    def result_file(self, transport, file_path, **fields):
        task = {"type": "execute_file", "file_path": file_path}
        task.update(fields)
        return self.result_of(task, transport)

    def test_arguments(self):
        args = ["one", "two words", "", "--flag=ü"]
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.result_file(t, "argv_echo.py", arguments=args)
                r = o.result
                self.assertIs(r.get("success"), True, o)
                self.assertEqual(json.loads(r.get("stdout") or "null"), args, o)
                self.assertEqual(r.get("file_path"), "argv_echo.py", o)
                self.assertEqual(r.get("arguments"), args, o)
                if t == "ws":
                    self.assertEqual(o.events[0].get("task_type"), "execute_file", o)
                o = self.result_file(t, "argv_echo.py")
                self.assertEqual(json.loads(o.result.get("stdout") or "null"), [], o)

    def test_environment(self):
        env = {"GREETING": "hello world", "OTHER": "a=b;c", "EMPTY": ""}
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                # os is refused under moderate: the script runs under permissive.
                o = self.result_file(t, "env_echo.py", arguments=sorted(env) + ["UNSET_ONE"],
                                     environment_vars=env, security_level="permissive")
                got = json.loads(o.result.get("stdout") or "null")
                want = dict(env, UNSET_ONE=None)
                self.assertEqual(got, want, o)

    def test_name_and_file(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.result_file(t, "sub/names.py")
                lines = (o.result.get("stdout") or "").splitlines()
                self.assertEqual(len(lines), 2, o)
                self.assertEqual(lines[0], "__main__", o)
                self.assertTrue(lines[1].endswith("sub/names.py"),
                                "__file__ should be the script's path: %r" % lines[1])

    def test_exit_code(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.result_file(t, "exit_code.py", arguments=["7"])
                self.assertEqual(o.result.get("exit_code"), 7, o)
                self.assertIs(o.result.get("success"), False, o)
                self.assertEqual(o.result.get("stdout"), "exiting\n", o)
                o = self.result_file(t, "exit_code.py", arguments=["0"])
                self.assertEqual(o.result.get("exit_code"), 0, o)
                self.assertIs(o.result.get("success"), True, o)

    def test_exception_line_is_the_scripts(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.result_file(t, "raises.py")
                info = o.result.get("exception_info") or {}
                self.assertEqual(info.get("type"), "RuntimeError", o)
                self.assertEqual(info.get("message"), "from the script", o)
                self.assertEqual(info.get("line"), 3, o)
                self.assertEqual(o.result.get("exit_code"), 1, o)

    def test_symlink_inside_the_dir_is_followed(self):
        o = self.result_file("http", "inside_link.py", arguments=["x"])
        self.assertEqual(json.loads(o.result.get("stdout") or "null"), ["x"], o)

    def test_paths_out_of_the_dir_are_refused(self):
        for t in TRANSPORTS:
            for path in ("escape.py", "escape_rel.py", "subdir_link/secret.py", "../x",
                         "../outside/secret.py", "/etc/passwd", os.path.join(SCRIPTS,
                         "argv_echo.py"), "sub/../argv_echo.py", "./argv_echo.py", ""):
                with self.subTest(transport=t, file_path=path):
                    o = self.run_file(t, path)
                    self.assert_error(o, 400)
                    self.assertNotIn("outside the scripts dir", json.dumps(o.error))
        self.assert_serves("http")
        self.assert_serves("ws")

    def test_missing_script(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                self.assert_error(self.run_file(t, "no_such_script.py"), 404)
                self.assert_error(self.run_file(t, "sub/nope/deeper.py"), 404)

    def test_refused_environment_names(self):
        for t in TRANSPORTS:
            for name in ("PYTHONPATH", "LD_PRELOAD", "PYTHONSTARTUP", "GLIBC_TUNABLES",
                         "MALLOC_ARENA_MAX", "LD_LIBRARY_PATH"):
                with self.subTest(transport=t, name=name):
                    o = self.run_file(t, "argv_echo.py", environment_vars={name: "/tmp/x"})
                    errors = self.assert_error(o, 400, ["task.environment_vars"])
                    self.assertTrue(any(name in (e.get("field") or "") + (e.get("message") or "")
                                        for e in errors),
                                    "no error names %s: %s" % (name, o))
            with self.subTest(transport=t, name="two at once"):
                o = self.run_file(t, "argv_echo.py",
                                  environment_vars={"PYTHONPATH": "/x", "LD_PRELOAD": "/y",
                                                    "FINE": "ok"})
                errors = self.assert_error(o, 400)
                text = json.dumps(errors)
                self.assertIn("PYTHONPATH", text, o)
                self.assertIn("LD_PRELOAD", text, o)
                self.assertNotIn("FINE", text, o)
        self.assert_serves()

    def test_bad_argument_types(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_file(t, "argv_echo.py", arguments=["ok", 3],
                                  environment_vars={"A": 1})
                self.assert_error(o, 400, ["task.arguments", "task.environment_vars"])


class NoScriptsDirTests(TaskTestCase):
    server_options = {"history-db": ":memory:"}

    def test_503_without_scripts_dir(self):
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                o = self.run_task({"type": "execute_file", "file_path": "argv_echo.py"}, t)
                self.assert_error(o, 503)
        self.assert_serves()


if __name__ == "__main__":
    tasklib.main()
