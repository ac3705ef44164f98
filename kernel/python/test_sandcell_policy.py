"""Unit tests for sandcell_policy and its use by sandcell_kernel.

Run with:  /usr/bin/python3 -m unittest test_sandcell_policy -v

Decisions, messages and the static check are tested in this process.  The
import hooks are installed here only inside a test and removed after it.
Whole kernels with a policy run in a fresh interpreter (so that modules
are really not loaded yet), with the helper modules compiled under the
file names the kernel binary gives them ("<sandcell>/...").

What these tests show is policy, not the wall.  Bypasses of the policy
are expected and are stopped by the sandbox's OS layer (namespaces,
seccomp, rlimits) instead; for example, under the strict profile:
    ().__class__.__base__.__subclasses__()   reaches classes of loaded modules,
    random._os                               os through an allowed module,
    display.__globals__                      the kernel's own globals,
    exec(compile("import os", "/usr/lib/python3.11/x.py", "exec"))
                                             code under a library's file name.
The tests below cover the routes the policy is meant to catch.
"""

import ast
import errno
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import sandcell_policy as sp  # noqa: E402

LIMITS = {"memory": 100 << 20, "cpu_time": 30, "processes": 1, "threads": 8,
          "open_files": 64, "file_size": 16 << 20, "disk": 16 << 20}


def policy(profile, **config):
    config["profile"] = profile
    return sp.from_config(config)


# ---------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------

class ProfileTests(unittest.TestCase):

    def test_strict_allowlist(self):
        p = policy("strict")
        for name in ("math", "json", "json.decoder", "collections.abc",
                     "datetime", "decimal", "zoneinfo", "io", "__future__"):
            self.assertFalse(p.refuses(name), name)
        for name in ("os", "os.path", "sys", "socket", "subprocess", "ctypes",
                     "importlib", "inspect", "pickle", "threading", "asyncio",
                     "numpy", "jsonx", "IPython"):
            self.assertTrue(p.refuses(name), name)

    def test_strict_allowlist_names_real_modules(self):
        import importlib.util
        for name in sp.PROFILES["strict"]["allow"]:
            self.assertIsNotNone(importlib.util.find_spec(name), name)

    def test_moderate_blocklist(self):
        p = policy("moderate")
        for name in ("os", "os.path", "posix", "subprocess", "multiprocessing.pool",
                     "ctypes", "socket", "ssl", "signal", "resource", "mmap",
                     "importlib", "importlib.metadata", "marshal", "pdb"):
            self.assertTrue(p.refuses(name), name)
        for name in ("sys", "json", "threading", "pickle", "shutil", "pathlib",
                     "asyncio", "asyncio.subprocess", "gc", "builtins",
                     "numpy", "posixpath", "osx"):
            self.assertFalse(p.refuses(name), name)

    def test_permissive_blocklist(self):
        p = policy("permissive")
        for name in ("ctypes", "ctypes.util", "_ctypes", "cffi", "pty"):
            self.assertTrue(p.refuses(name), name)
        for name in ("os", "subprocess", "socket", "mmap", "signal", "sys"):
            self.assertFalse(p.refuses(name), name)

    def test_custom_is_what_is_given(self):
        self.assertFalse(policy("custom").refuses("os"))
        p = policy("custom", allow=["math", "json"], block=["json.tool"])
        self.assertFalse(p.refuses("math"))
        self.assertTrue(p.refuses("json.tool"))
        self.assertTrue(p.refuses("os"))

    def test_kernel_modules_refused_under_every_profile(self):
        for profile in sp.PROFILES:
            p = policy(profile)
            for name in sp.KERNEL_MODULES:
                self.assertTrue(p.refuses(name), (profile, name))

    def test_given_lists_only_narrow(self):
        p = policy("strict", allow=["json", "os", "collections.abc"])
        self.assertFalse(p.refuses("json"))
        self.assertFalse(p.refuses("collections.abc"))
        self.assertTrue(p.refuses("collections"))
        self.assertTrue(p.refuses("os"))
        self.assertTrue(p.refuses("math"))
        # A narrower entry of the profile survives a wider given one.
        p = sp.Policy("x", ["collections.abc"], [])
        self.assertEqual(sp._combined_allow(p.allow, frozenset(["collections"])),
                         frozenset(["collections.abc"]))
        # No allowlist in the profile: the given list becomes it.
        p = policy("moderate", allow=["math"])
        self.assertEqual(p.allow, frozenset(["math"]))
        # None keeps the profile's allowlist; blocks add up and win.
        p = policy("strict", allow=None, block=["json"])
        self.assertTrue(p.refuses("json"))
        self.assertFalse(p.refuses("math"))
        self.assertTrue(policy("moderate", block=["numpy"]).refuses("numpy.linalg"))
        self.assertTrue(policy("moderate", block=["numpy"]).refuses("os"))

    def test_from_config(self):
        self.assertIsNone(sp.from_config(None))
        self.assertIsNone(sp.from_config({"profile": "none"}))
        self.assertEqual(sp.from_config({}).profile, "moderate")
        p = sp.from_config({"profile": "strict", "limits": LIMITS,
                            "network": False}, provided=["IPython"])
        self.assertEqual(p.limits, LIMITS)
        self.assertFalse(p.network)
        self.assertFalse(p.refuses("IPython.display"))
        for bad in ({"profile": "lax"}, {"allow": "math"}, {"block": [1]},
                    {"limits": []}, ["strict"]):
            with self.assertRaises(ValueError, msg=bad):
                sp.from_config(bad)

    def test_preload_files(self):
        files = sp.preload_files()
        self.assertTrue(files)
        for path in files:
            self.assertTrue(os.path.isfile(path), path)
            self.assertTrue(path.endswith(".so"), path)
        # Built-in and missing modules are left out.
        self.assertEqual(sp.preload_files(["sys", "no_such_module_xyz"]), [])


# ---------------------------------------------------------------------------
# Messages and the static check
# ---------------------------------------------------------------------------

def check(p, code):
    """The ImportPolicyError message of p.check_tree for code, or None."""
    try:
        p.check_tree(ast.parse(textwrap.dedent(code)))
    except sp.ImportPolicyError as exc:
        return str(exc)
    return None


class MessageTests(unittest.TestCase):

    def test_runtime_wording(self):
        strict = policy("strict")
        text = strict.message([("socket", [])])
        self.assertTrue(text.startswith(
            "import of 'socket' is not allowed under the strict security "
            "profile (allowed: abc, array, base64,"), text)
        self.assertNotIn("_strptime", text)
        shim = sp.from_config({"profile": "strict"},
                              provided=["IPython", "IPython.display"])
        self.assertIn("(allowed: IPython, abc,", shim.message([("os", [])]))
        self.assertNotIn("pathlib", text)     # no hint that cannot be followed
        self.assertEqual(policy("permissive").message([("ctypes", [])]),
                         "import of 'ctypes' is blocked under the permissive "
                         "security profile")
        self.assertEqual(policy("moderate").message([("os.path", [])]),
                         "import of 'os.path' is blocked under the moderate "
                         "security profile; pathlib and shutil cover files "
                         "and paths")

    def test_error_class(self):
        exc = policy("moderate").error([("socket", [3])])
        self.assertIsInstance(exc, ModuleNotFoundError)
        self.assertIsInstance(exc, ImportError)
        self.assertEqual(exc.name, "socket")


class StaticCheckTests(unittest.TestCase):

    def setUp(self):
        self.moderate = policy("moderate")
        self.strict = policy("strict")

    def test_allowed_cell(self):
        self.assertIsNone(check(self.strict, """
            from __future__ import annotations
            import math, json.decoder
            from collections import abc, OrderedDict
            from . import sibling
            from .. import cousin
            __import__("datetime")
        """))

    def test_every_refusal_with_lines(self):
        text = check(self.moderate, """
            import json
            import os
            def f():
                import socket
                class C:
                    from subprocess import run
            import os
        """)
        self.assertEqual(text, "imports of 'os' (lines 3, 8), 'socket' (line 5), "
                               "'subprocess' (line 7) are blocked under the "
                               "moderate security profile; pathlib and shutil "
                               "cover files and paths")

    def test_one_refusal(self):
        self.assertEqual(check(self.moderate, "x = 1\n\nimport signal\n"),
                         "import of 'signal' (line 3) is blocked under the "
                         "moderate security profile")

    def test_submodules_are_reported_under_their_package(self):
        self.assertEqual(check(self.moderate, "from os import system, path"),
                         check(self.moderate, "import os"))
        self.assertIn("'os.path' (line 1)", check(self.moderate, "import os.path"))
        # A blocked submodule of an allowed package.
        p = policy("custom", block=["xml.etree"])
        self.assertIn("'xml.etree' (line 1)", check(p, "from xml import etree"))
        self.assertIsNone(check(p, "from xml import dom"))

    def test_import_calls_with_constant_names(self):
        text = check(self.moderate, """
            m = __import__('os')
            import importlib
            s = importlib.import_module("socket")
            b = __builtins__.__import__("ctypes")
        """)
        for part in ("'os' (line 2)", "'importlib' (line 3)",
                     "'socket' (line 4)", "'ctypes' (line 5)"):
            self.assertIn(part, text)

    def test_dynamic_and_relative_calls_are_left_to_run_time(self):
        self.assertIsNone(check(self.moderate, """
            name = 'o' + 's'
            __import__(name)
            __import__('os', globals(), None, [], 1)
            __import__('os', level=2)
            import_module('.os', 'pkg')
            exec("import os")
        """))

    def test_strict_lists_what_is_allowed(self):
        text = check(self.strict, "import os, sys")
        self.assertTrue(text.startswith(
            "imports of 'os' (line 1), 'sys' (line 1) are not allowed under "
            "the strict security profile (allowed: abc,"), text)


# ---------------------------------------------------------------------------
# Run-time hooks, in this process
# ---------------------------------------------------------------------------

class HookTests(unittest.TestCase):
    """User code here is code compiled under a cell-like file name."""

    @classmethod
    def setUpClass(cls):
        # A "library" directory, on sys.path before the policy is
        # installed, and a "workspace" added after.
        cls.tmp = tempfile.TemporaryDirectory()
        cls.lib = os.path.join(cls.tmp.name, "lib")
        cls.work = os.path.join(cls.tmp.name, "work")
        os.makedirs(cls.lib)
        os.makedirs(cls.work)
        with open(os.path.join(cls.lib, "sc_probe_lib.py"), "w") as f:
            f.write("def load(name):\n    return __import__(name)\n"
                    "def load_late():\n    import sc_probe_unloaded\n"
                    "    return sc_probe_unloaded\n")
        with open(os.path.join(cls.lib, "sc_probe_unloaded.py"), "w") as f:
            f.write("VALUE = 42\n")
        with open(os.path.join(cls.work, "sc_probe_user.py"), "w") as f:
            f.write("import os\n")
        sys.path.insert(0, cls.lib)

    @classmethod
    def tearDownClass(cls):
        sys.path.remove(cls.lib)
        for name in ("sc_probe_lib", "sc_probe_unloaded", "sc_probe_user"):
            sys.modules.pop(name, None)
        cls.tmp.cleanup()

    def install(self, profile, **config):
        p = policy(profile, **config)
        saved = list(sys.meta_path)
        p.install()
        self.addCleanup(sys.meta_path.__setitem__, slice(None), saved)
        self.addCleanup(sp.uninstall)
        return p

    def run_user(self, code, ns=None):
        ns = {"__name__": "__main__"} if ns is None else ns
        exec(compile(textwrap.dedent(code), "<In[1]>", "exec"), ns)
        return ns

    def assertRefused(self, code, module, ns=None):
        with self.assertRaises(sp.ImportPolicyError) as cm:
            self.run_user(code, ns)
        self.assertEqual(cm.exception.name, module)
        self.assertIn("'%s'" % module, str(cm.exception))

    def test_install_and_uninstall(self):
        import builtins
        original = builtins.__import__
        self.install("moderate")
        self.assertIsInstance(sys.meta_path[0], sp._PolicyFinder)
        self.assertIsNot(builtins.__import__, original)
        policy("strict").install()          # replaces, never stacks
        self.assertEqual(sum(isinstance(f, sp._PolicyFinder)
                             for f in sys.meta_path), 1)
        sp.uninstall()
        self.assertIs(builtins.__import__, original)
        self.assertFalse(any(isinstance(f, sp._PolicyFinder)
                             for f in sys.meta_path))

    def test_loaded_module_is_refused(self):
        self.install("moderate")
        self.assertIn("os", sys.modules)
        self.assertRefused("import os", "os")
        self.assertRefused("import os.path", "os.path")
        self.assertRefused("from os import system", "os")
        self.assertRefused("__import__('os')", "os")
        self.assertRefused("exec('import os')", "os")

    def test_user_code_catches_it_as_import_error(self):
        self.install("moderate")
        ns = self.run_user("""
            try:
                import socket
            except ModuleNotFoundError as e:
                first = type(e).__name__
            try:
                from subprocess import run
            except ImportError as e:
                second = str(e)
        """)
        self.assertEqual(ns["first"], "ImportPolicyError")
        self.assertIn("'subprocess' is blocked", ns["second"])

    def test_allowed_imports_work(self):
        self.install("strict")
        ns = self.run_user("from __future__ import annotations\n"
                           "import json, collections.abc\n"
                           "from math import sqrt\nr = sqrt(json.loads('4'))")
        self.assertEqual(ns["r"], 2.0)

    def test_import_module_of_unloaded_module_is_refused(self):
        import importlib
        self.install("custom", block=["sc_probe_unloaded"])
        self.assertNotIn("sc_probe_unloaded", sys.modules)
        self.assertRefused("il.import_module('sc_probe_unloaded')",
                           "sc_probe_unloaded", {"il": importlib})
        self.assertNotIn("sc_probe_unloaded", sys.modules)

    def test_library_code_imports_freely(self):
        self.install("custom", block=["sc_probe_unloaded", "os"])
        ns = self.run_user("import sc_probe_lib\n"
                           "m = sc_probe_lib.load('os')\n"
                           "v = sc_probe_lib.load_late().VALUE")
        self.assertIs(ns["m"], os)
        self.assertEqual(ns["v"], 42)

    def test_workspace_module_is_user_code(self):
        self.install("moderate")
        sys.path.insert(0, self.work)
        self.addCleanup(sys.path.remove, self.work)
        self.assertRefused("import sc_probe_user", "os")
        self.assertNotIn("sc_probe_user", sys.modules)

    def test_relative_import_from_a_faked_package(self):
        self.install("moderate")
        ns = {"__name__": "__main__", "__package__": "os"}
        self.assertRefused("from . import path", "os", ns)
        ns = {"__name__": "__main__", "__package__": "xml"}
        self.install("custom", block=["xml.etree"])
        self.assertRefused("from .etree import ElementTree", "xml.etree", ns)
        # Without a package the real import raises its usual error.
        with self.assertRaises(ImportError) as cm:
            self.run_user("from . import x")
        self.assertNotIsInstance(cm.exception, sp.ImportPolicyError)

    def test_pickle_names_are_checked(self):
        self.install("moderate")
        import pickle
        data = b"cos\nsystem\n."
        self.assertRefused("loads(data)", "os",
                           {"loads": pickle.loads, "data": data})

    def test_refused_import_keeps_allowed_fromlist_checks(self):
        self.install("custom", block=["xml.etree"])
        self.assertRefused("from xml import etree", "xml.etree")
        self.run_user("from xml import dom")


# ---------------------------------------------------------------------------
# Friendly limit messages
# ---------------------------------------------------------------------------

def raised(exc, where="run"):
    """exc raised inside a function named `where`, caught."""
    ns = {"exc": exc}
    exec(compile("def %s():\n    raise exc\n" % where, "<probe>", "exec"), ns)
    try:
        ns[where]()
    except BaseException as caught:
        return caught
    raise AssertionError("not raised")


class FriendlyTests(unittest.TestCase):

    def friendly(self, exc, limits=LIMITS, network=True):
        return sp.friendly_error(exc, limits, network)

    def test_format_size(self):
        for n, text in ((100 << 20, "100 MB"), (1 << 30, "1 GB"),
                        (3 << 29, "1.5 GB"), (16 << 20, "16 MB"),
                        (512 << 20, "512 MB"), (65536, "64 KB"),
                        (1 << 40, "1 TB"), (1000, "1000 bytes"), (1, "1 byte"),
                        (1234567, "1.18 MB")):
            self.assertEqual(sp.format_size(n), text)

    def test_memory(self):
        self.assertEqual(self.friendly(MemoryError()),
                         ("MemoryError", "memory limit of 100 MB exceeded"))
        self.assertEqual(self.friendly(OSError(errno.ENOMEM, "x")),
                         ("OSError", "memory limit of 100 MB exceeded"))
        self.assertIsNone(self.friendly(MemoryError(), {}))

    def test_processes_and_threads(self):
        text = "process limit reached (1 process, 8 threads)"
        self.assertEqual(self.friendly(RuntimeError("can't start new thread")),
                         ("RuntimeError", text))
        fork = raised(BlockingIOError(errno.EAGAIN, "Resource temporarily "
                                      "unavailable"), "fork")
        self.assertEqual(self.friendly(fork), ("BlockingIOError", text))
        self.assertEqual(self.friendly(fork, dict(LIMITS, processes=16,
                                                  threads=32))[1],
                         "process limit reached (16 processes, 32 threads)")
        # EAGAIN from anything else is not about processes.
        self.assertIsNone(self.friendly(raised(BlockingIOError(errno.EAGAIN,
                                                               "x"), "read")))
        self.assertIsNone(self.friendly(RuntimeError("other")))

    def test_files_and_disk(self):
        self.assertEqual(self.friendly(OSError(errno.EFBIG, "File too large")),
                         ("OSError", "file size limit of 16 MB reached"))
        for code in (errno.ENOSPC, errno.EDQUOT):
            self.assertEqual(self.friendly(OSError(code, "x", "f")),
                             ("OSError", "disk limit of 16 MB reached (the "
                                         "workspace is full)"))
        self.assertEqual(self.friendly(OSError(errno.EMFILE, "x")),
                         ("OSError", "open file limit of 64 reached"))

    def test_denied_by_the_sandbox(self):
        self.assertEqual(self.friendly(PermissionError(errno.EPERM,
                                                       "Operation not permitted")),
                         ("PermissionError", "[Errno 1] Operation not "
                                             "permitted (denied by the sandbox)"))
        execd = raised(PermissionError(errno.EPERM, "Operation not permitted",
                                       "ls"), "_execute_child")
        self.assertTrue(self.friendly(execd)[1].endswith("(denied by the sandbox)"))
        # A file's own permissions are not the sandbox.
        self.assertIsNone(self.friendly(PermissionError(errno.EPERM, "x", "/f")))
        self.assertIsNone(self.friendly(PermissionError(errno.EACCES, "x")))

    def test_network(self):
        import socket
        gai = socket.gaierror(socket.EAI_AGAIN,
                              "Temporary failure in name resolution")
        unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
        import urllib.error
        wrapped = urllib.error.URLError(gai)
        for exc in (gai, unreachable, wrapped):
            self.assertTrue(self.friendly(exc, network=False)[1].endswith(
                "(network access is off in this sandbox)"), exc)
            self.assertIsNone(self.friendly(exc, network=True))
        self.assertEqual(self.friendly(wrapped, network=False)[1],
                         "<urlopen error [Errno -3] Temporary failure in name "
                         "resolution> (network access is off in this sandbox)")
        self.assertIsNone(self.friendly(OSError(errno.ECONNREFUSED, "x"),
                                        network=False))

    def test_other_errors_unchanged(self):
        for exc in (ValueError("x"), KeyboardInterrupt(), OSError(errno.ENOENT, "x"),
                    SystemExit(1)):
            self.assertIsNone(self.friendly(exc))


# ---------------------------------------------------------------------------
# The kernel with a policy, in a fresh interpreter
# ---------------------------------------------------------------------------

HARNESS = textwrap.dedent(r'''
    import json, os, sys, types
    here, config, requests = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    events = []
    fake = types.ModuleType("_sandcell")
    def publish(msg_type, content, metadata="{}", buffers=None):
        events.append(["publish", msg_type, json.loads(content)])
    def write(fd, data):
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        events.append(["stream", fd, data])
        return len(data)
    fake.publish = publish
    fake.write = write
    fake.flush = lambda: None
    fake.input_request = lambda prompt, password: ""
    sys.modules["_sandcell"] = fake
    sys.path.insert(0, here)
    real_stdout = os.dup(1)
    # The helper modules, compiled as the kernel binary freezes them.
    for name in ("sandcell_kernel", "sandcell_display", "sandcell_introspect",
                 "sandcell_policy"):
        with open(os.path.join(here, name + ".py"), encoding="utf-8") as f:
            code = compile(f.read(), "<sandcell>/%s.py" % name, "exec",
                           dont_inherit=True)
        module = types.ModuleType(name)
        sys.modules[name] = module
        exec(code, module.__dict__)
    sys.path.remove(here)
    import _thread, sandcell_kernel
    sandcell_kernel.setup(config)
    results = []
    for msg_type, content in requests:
        del events[:]
        reply = sandcell_kernel.handle(msg_type, json.dumps(content))
        results.append({"reply": json.loads(reply), "events": list(events)})
    probe = {"stack_size": _thread.stack_size(),
             "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
             "omp": os.environ.get("OMP_NUM_THREADS"),
             "has_policy": sandcell_kernel._S.policy is not None,
             "real_ipython": "IPython.core.interactiveshell" in sys.modules}
    os.write(real_stdout, json.dumps({"results": results, "probe": probe}).encode())
''')


def run_kernel(requests, **config):
    """Run requests ([msg_type, content] or a cell's code) in a fresh
    kernel; returns (results, probe)."""
    requests = [r if isinstance(r, list) else
                ["execute_request", {"code": r, "silent": False,
                                     "store_history": True,
                                     "user_expressions": {},
                                     "allow_stdin": False}]
                for r in requests]
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, HERE, json.dumps(config),
         json.dumps(requests)], capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError("harness failed:\n" + proc.stderr.decode())
    out = json.loads(proc.stdout.decode())
    return out["results"], out["probe"]


def result_text(result):
    for e in result["events"]:
        if e[0] == "publish" and e[1] == "execute_result":
            return e[2]["data"]["text/plain"]
    raise AssertionError("no execute_result: %r" % (result,))


def stdout_text(result):
    return "".join(e[2] for e in result["events"]
                   if e[0] == "stream" and e[1] == 1)


class KernelTests(unittest.TestCase):

    def assertOk(self, result):
        self.assertEqual(result["reply"]["status"], "ok", result)

    def assertError(self, result, ename, evalue_part):
        reply = result["reply"]
        self.assertEqual(reply["status"], "error", result)
        self.assertEqual(reply["ename"], ename, reply)
        self.assertIn(evalue_part, reply["evalue"])
        # The traceback's last line says the same as ename/evalue (the
        # policy's error class is shown with its module).
        self.assertTrue(reply["traceback"][-1].endswith(
            "%s: %s" % (ename, reply["evalue"])), reply["traceback"])
        errors = [e[2] for e in result["events"]
                  if e[0] == "publish" and e[1] == "error"]
        self.assertEqual(len(errors), 1, result)

    def test_strict(self):
        results, probe = run_kernel([
            # Allowed modules import what they need (inspect, os, _sha512...).
            "import dataclasses, statistics, json, decimal, uuid, hashlib\n"
            "import random, zoneinfo, datetime, collections.abc, time\n"
            "statistics.mean([1, 2, 3])",
            # strptime imports _strptime from C, from the cell's frame.
            "time.strptime('2024', '%Y').tm_year + "
            "datetime.datetime.strptime('5', '%d').day",
            # Refused: nothing of the cell runs.
            "ran = 1\nimport os\ndef f():\n    import socket",
            "'ran' in dir()",
            "__import__('o' + 's')",
            "import inspect",
            "import sandcell_policy",
            # Top-level await works: the kernel's asyncio is not user code.
            "async def f():\n    return 7\nawait f()",
            # display through the kernel's own IPython shim.
            "from IPython.display import HTML\nHTML('<b>x</b>')",
            "raise MemoryError",
            ["complete_request", {"code": "import js", "cursor_pos": 9}],
            ["inspect_request", {"code": "json.dumps", "cursor_pos": 10,
                                 "detail_level": 0}],
        ], policy={"profile": "strict", "allow": None, "block": [],
                   "limits": LIMITS, "network": False})
        self.assertOk(results[0])
        self.assertEqual(result_text(results[0]), "2")
        self.assertEqual(result_text(results[1]), "2029")
        self.assertError(results[2], "ImportPolicyError",
                         "imports of 'os' (line 2), 'socket' (line 4) are not "
                         "allowed under the strict security profile (allowed:")
        self.assertEqual(result_text(results[3]), "False")
        self.assertError(results[4], "ImportPolicyError", "import of 'os' is not allowed")
        self.assertError(results[5], "ImportPolicyError", "'inspect' (line 1)")
        self.assertError(results[6], "ImportPolicyError", "'sandcell_policy'")
        self.assertEqual(result_text(results[7]), "7")
        html = [e[2] for e in results[8]["events"]
                if e[0] == "publish" and e[1] == "execute_result"]
        self.assertEqual(html[0]["data"]["text/html"], "<b>x</b>")
        self.assertError(results[9], "MemoryError", "memory limit of 100 MB exceeded")
        self.assertIn("json", results[10]["reply"]["matches"])
        self.assertTrue(results[11]["reply"]["found"])
        self.assertEqual(probe, {"stack_size": 4 << 20, "openblas": "1",
                                 "omp": "1", "has_policy": True,
                                 "real_ipython": False})

    def test_moderate(self):
        workspace = tempfile.TemporaryDirectory()
        self.addCleanup(workspace.cleanup)
        results, _ = run_kernel([
            "import sys, json, threading, pathlib, shutil\nsys.version_info[0]",
            "import os",
            "from os import system",
            "__import__('o' + 's')",
            "exec('import socket')",
            "import importlib",
            # A module the user writes is user code too.
            "d = pathlib.Path(%r)\n(d / 'sc_user_mod.py').write_text('import subprocess')\n"
            "sys.path.insert(0, str(d))\nimport sc_user_mod" % workspace.name,
            "import numpy\nint(numpy.arange(4).sum())",
            "raise OSError(28, 'No space left on device')",
            "import socket",
        ], policy={"profile": "moderate", "allow": None, "block": ["socket"],
                   "limits": dict(LIMITS, disk=256 << 20), "network": False})
        self.assertEqual(result_text(results[0]), "3")
        self.assertError(results[1], "ImportPolicyError",
                         "import of 'os' (line 1) is blocked under the moderate "
                         "security profile; pathlib and shutil cover")
        self.assertError(results[2], "ImportPolicyError", "'os' (line 1)")
        self.assertError(results[3], "ImportPolicyError", "import of 'os' is blocked")
        self.assertError(results[4], "ImportPolicyError", "import of 'socket' is blocked")
        self.assertError(results[5], "ImportPolicyError", "'importlib' (line 1)")
        self.assertError(results[6], "ImportPolicyError", "'subprocess' is blocked")
        if results[7]["reply"].get("ename") != "ModuleNotFoundError":
            self.assertEqual(result_text(results[7]), "6")
        self.assertError(results[8], "OSError",
                         "disk limit of 256 MB reached (the workspace is full)")
        self.assertError(results[9], "ImportPolicyError", "'socket' (line 1)")

    def test_profile_none_and_bad_policy(self):
        results, probe = run_kernel(["import os\nos.sep"],
                                    policy={"profile": "none"})
        self.assertEqual(result_text(results[0]), "'/'")
        # No policy: nothing of it is loaded or changed.
        self.assertFalse(probe["has_policy"])
        self.assertNotEqual(probe["stack_size"], 4 << 20)
        with self.assertRaises(AssertionError) as cm:
            run_kernel(["1"], policy={"profile": "lax"})
        self.assertIn("unknown profile", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
