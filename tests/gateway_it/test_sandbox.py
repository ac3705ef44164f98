"""Sandbox profiles through the gateway: the kernelspecs, GET /api/sandbox and --check-sandbox,
the limits the gateway enforces per execution (wall clock, output), what a client sees when a
kernel dies of a limit, and profiles that cannot run on the host (a fake kernel binary stands
in for the real one where a test needs the kernel to misbehave).

sandcell only: jupyter-server has no profiles. Run:
    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/test_sandbox.py
"""

import json
import os
import stat
import subprocess
import time
import unittest
import uuid

import harness
from harness import GATEWAY_EXE, KERNEL_EXE, REFERENCE, Server, is_status, wait_until

PROFILES = ("strict", "moderate", "permissive")
LIMIT_KEYS = {"memory", "cpu_time", "wall_time", "processes", "threads", "open_files",
              "file_size", "disk", "output"}


def kernel_cmdline(server, kernel_id):
    """The argv of the process the gateway started for kernel_id (its connection file names
    the id)."""
    for pid in harness.descendants(server.proc.pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        args = [a.decode() for a in argv]
        if any(a.endswith("kernel-%s.json" % kernel_id) for a in args):
            return args
    raise AssertionError("no process for kernel %s" % kernel_id)


def fake_kernel(directory, body):
    """Writes an executable /bin/sh script standing in for sandcell-kernel; returns its path.
    REAL is the real kernel, LOG a file the script may append to."""
    path = os.path.join(directory, "fake-kernel-%s.sh" % uuid.uuid4().hex[:8])
    log = path + ".log"
    with open(path, "w") as f:
        f.write("#!/bin/sh\nREAL='%s'\nLOG='%s'\n%s\n" % (KERNEL_EXE, log, body))
    os.chmod(path, stat.S_IRWXU)
    return path, log


# A report where strict lacks seccomp and landlock; otherwise the real kernel runs.
FAKE_REPORT = r"""
if [ "$1" = "--check-sandbox" ]; then
  echo '{"host": {"kernel": "test"}, "layers": [{"name": "seccomp", "active": false,
         "detail": "test"}], "profiles": {"strict": {"ok": false,
         "missing": ["seccomp", "landlock"]}, "moderate": {"ok": true, "missing": []},
         "permissive": {"ok": true, "missing": []}}}'
  exit 1
fi
exec "$REAL" "$@"
"""

# A kernel that cannot set up its sandbox: says why on stderr and exits 103, every time.
FAKE_NO_SANDBOX = r"""
if [ "$1" = "--check-sandbox" ]; then exec "$REAL" "$@"; fi
# No zygote from this binary: the gateway spawns each kernel, and each launch is logged.
if [ "$1" = "--zygote" ]; then exit 2; fi
echo launched >> "$LOG"
echo 'sandcell-kernel: cannot set up the sandbox: user namespaces are off (test)' >&2
exit 103
"""


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class KernelspecTests(harness.ServerTestCase):
    def test_kernelspecs_offer_every_profile(self):
        specs = self.server.get_json("/api/kernelspecs")
        self.assertEqual(specs["default"], "sandcell")
        self.assertEqual(set(specs["kernelspecs"]),
                         {"sandcell", "sandcell-strict", "sandcell-moderate",
                          "sandcell-permissive"}, "no sandcell-custom unless configured")
        for name, model in specs["kernelspecs"].items():
            spec = model["spec"]
            meta = spec["metadata"]["sandcell"]
            profile = "moderate" if name == "sandcell" else name[len("sandcell-"):]
            self.assertEqual(meta["profile"], profile, name)
            self.assertEqual(set(meta["limits"]), LIMIT_KEYS, name)
            self.assertEqual(spec["display_name"],
                             "Python 3 (sandcell)" if name == "sandcell"
                             else "Python 3 (sandcell, %s)" % profile)
            self.assertEqual(spec["argv"][spec["argv"].index("--profile") + 1], profile)
            self.assertIn("{connection_file}", spec["argv"])
            self.assertEqual(spec["language"], "python")
        strict = specs["kernelspecs"]["sandcell-strict"]["spec"]["metadata"]["sandcell"]
        self.assertEqual(strict["limits"]["memory"], 100 << 20)
        self.assertEqual(strict["limits"]["wall_time"], 30)
        self.assertEqual(strict["limits"]["processes"], 1)
        self.assertEqual(strict["limits"]["output"], 10 << 20)
        self.assertFalse(strict["network"])
        one = self.server.get_json("/api/kernelspecs/sandcell-permissive")
        self.assertEqual(one["spec"]["metadata"]["sandcell"]["limits"]["memory"], 2 << 30)
        self.assertEqual(self.server.request("GET", "/api/kernelspecs/sandcell-custom").status,
                         404)

    def test_each_kernelspec_launches_its_profile(self):
        for name, profile, memory in (("sandcell-strict", "strict", 100 << 20),
                                      ("sandcell", "moderate", 512 << 20)):
            kid = self.server.start_kernel(name)["id"]
            self.addCleanup(self._delete_quietly, kid)
            argv = kernel_cmdline(self.server, kid)
            self.assertEqual(argv[0], KERNEL_EXE)
            self.assertEqual(argv[argv.index("--profile") + 1], profile, argv)
            self.assertEqual(argv[argv.index("--memory") + 1], str(memory), argv)
            for flag in ("--cpu-time", "--processes", "--threads", "--open-files",
                         "--file-size", "--disk"):
                self.assertIn(flag, argv)
            self.assertNotIn("--allow-weaker-sandbox", argv)
            self.assertNotIn("--network", argv)
            self.assertEqual(self.server.get_json("/api/kernels/" + kid)["name"], name)

    def test_sandbox_report(self):
        sb = self.server.get_json("/api/sandbox")
        self.assertEqual(sb["default_profile"], "moderate")
        self.assertIs(sb["allow_weaker_sandbox"], False)
        self.assertIsInstance(sb["host"], dict, sb)
        self.assertIsInstance(sb["layers"], list)
        self.assertTrue(sb["layers"], "the kernel reports its layers")
        for layer in sb["layers"]:
            self.assertIsInstance(layer["name"], str)
            self.assertIsInstance(layer["active"], bool)
        self.assertEqual(set(sb["profiles"]), set(PROFILES))
        for name, p in sb["profiles"].items():
            self.assertIsInstance(p["ok"], bool, name)
            self.assertIsInstance(p["missing"], list, name)
            self.assertEqual(p["ok"], not p["missing"], name)
            self.assertEqual(set(p["limits"]), LIMIT_KEYS)
            self.assertEqual(p["kernelspec"], "sandcell-" + name)
        self.assertEqual(sb["profiles"]["moderate"]["limits"]["processes"], 32)
        self.assertNotIn("error", sb)
        self.assertEqual(self.server.request("POST", "/api/sandbox", body={}).status, 405)
        self.assertEqual(self.server.request("GET", "/api/sandbox", token=None).status, 403)

    def test_check_sandbox_command(self):
        env = harness.clean_env()
        r = subprocess.run([GATEWAY_EXE, "--check-sandbox", "--json"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        report = json.loads(r.stdout)
        self.assertEqual(set(report["profiles"]), set(PROFILES))
        all_ok = all(p["ok"] for p in report["profiles"].values())
        self.assertEqual(r.returncode, 0 if all_ok else 1, r.stderr)
        self.assertEqual(report, self.server.get_json("/api/sandbox"),
                         "the API and the command give the same report")
        r = subprocess.run([GATEWAY_EXE, "--check-sandbox"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        text = r.stdout.decode()
        self.assertEqual(r.returncode, 0 if all_ok else 1)
        for word in ("Layers:", "Profiles:", "strict", "moderate", "permissive",
                     "Default profile: moderate"):
            self.assertIn(word, text)
        r = subprocess.run([GATEWAY_EXE, "--json"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--json only goes with --check-sandbox", r.stderr)


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
def png_size(b64):
    """(width, height) from a base64 PNG's IHDR chunk."""
    import base64
    import struct
    raw = base64.b64decode(b64)
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or raw[12:16] != b"IHDR":
        raise AssertionError("not a PNG: %r" % raw[:16])
    return struct.unpack(">II", raw[16:24])


class RichOutputTests(harness.ServerTestCase):
    """What a notebook shows: matplotlib figures, PIL images and pandas DataFrames under the
    moderate profile, inside the sandbox (read-only root, no writable home), as rich MIME
    bundles on the Jupyter protocol."""

    @harness.sandcell_only
    def test_plots_pictures_and_tables(self):
        kid = self.server.start_kernel("sandcell-moderate")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)

        # plt.show() displays at once; a figure left open is displayed when the cell ends.
        r = c.collect(c.execute(
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 3, 2])\n"
            "plt.show()\n"
            "print('after show')\n"
            "plt.figure(figsize=(3, 2))\n"
            "plt.bar(['a', 'b'], [1, 2])\n"), timeout=120)
        self.assertEqual(r.reply.content["status"], "ok", r.reply.content)
        kinds = [m.msg_type for m in r.iopub if m.msg_type in ("display_data", "stream")]
        self.assertEqual(kinds, ["display_data", "stream", "display_data"], r.types)
        shown = [m.content["data"] for m in r.iopub if m.msg_type == "display_data"]
        for data in shown:
            self.assertIn("image/png", data)
            self.assertIn("text/plain", data)
        # 6.4 x 4.8 in and 3 x 2 in at 100 dpi, trimmed to what was drawn.
        w, h = png_size(shown[0]["image/png"])
        self.assertTrue(400 <= w <= 640 and 300 <= h <= 480, (w, h))
        w, h = png_size(shown[1]["image/png"])
        self.assertTrue(150 <= w <= 300 and 100 <= h <= 200, (w, h))
        # No complaint about a home or cache directory it cannot write.
        self.assertEqual(r.stderr, "")

        # A PIL image as the cell's value: its PNG.
        r = c.collect(c.execute("from PIL import Image\nImage.new('RGB', (40, 30), 'red')"),
                      timeout=60)
        res = [m for m in r.iopub if m.msg_type == "execute_result"]
        self.assertEqual(len(res), 1, r.types)
        self.assertEqual(png_size(res[0].content["data"]["image/png"]), (40, 30))

        # A DataFrame as the cell's value: an HTML table and its text.
        r = c.collect(c.execute("import pandas as pd\n"
                                "pd.DataFrame({'city': ['Oslo', 'Lima'], 'n': [3, 4]})"),
                      timeout=120)
        res = [m for m in r.iopub if m.msg_type == "execute_result"]
        self.assertEqual(len(res), 1, (r.types, r.stderr))
        data = res[0].content["data"]
        self.assertIn("<table", data.get("text/html", ""))
        self.assertIn("Lima", data["text/html"])
        self.assertIn("Oslo", data["text/plain"])


class CustomProfileTests(harness.ServerTestCase):
    server_options = {"default-profile": "custom", "default-kernel": "py3"}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_options, name="customprofile", config={
            "profiles": {"custom": {"memory": "300MB", "wall_time": 7.5,
                                    "block_import": ["json"]},
                         "strict": {"output": "1KB"}}}).start()
        cls._kernels = {}

    def test_custom_is_offered_and_default(self):
        specs = self.server.get_json("/api/kernelspecs")
        self.assertEqual(specs["default"], "py3")
        self.assertEqual(set(specs["kernelspecs"]),
                         {"sandcell", "py3", "sandcell-strict", "sandcell-moderate",
                          "sandcell-permissive", "sandcell-custom"})
        for name in ("sandcell", "py3", "sandcell-custom"):
            meta = specs["kernelspecs"][name]["spec"]["metadata"]["sandcell"]
            self.assertEqual(meta["profile"], "custom", name)
            self.assertEqual(meta["limits"]["memory"], 300 << 20)
            self.assertEqual(meta["limits"]["wall_time"], 7.5)
            self.assertEqual(meta["limits"]["processes"], 32, "the rest as moderate")
            self.assertEqual(meta["block_import"], ["json"])
        strict = specs["kernelspecs"]["sandcell-strict"]["spec"]["metadata"]["sandcell"]
        self.assertEqual(strict["limits"]["output"], 1024)
        sb = self.server.get_json("/api/sandbox")
        self.assertEqual(sb["default_profile"], "custom")
        self.assertIn("custom", sb["profiles"])

    def test_default_kernel_launches_custom(self):
        kid = self.server.start_kernel("py3")["id"]
        self.addCleanup(self._delete_quietly, kid)
        argv = kernel_cmdline(self.server, kid)
        self.assertEqual(argv[argv.index("--profile") + 1], "custom")
        self.assertEqual(argv[argv.index("--memory") + 1], str(300 << 20))
        self.assertEqual(argv[argv.index("--block-import") + 1], "json")
        r = self.server.request("POST", "/api/kernels", body={})
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self._delete_quietly, r.json()["id"])
        self.assertEqual(r.json()["name"], "py3")


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class OutputCapTests(harness.ServerTestCase):
    """A profile with a small output cap: output past it is dropped with one notice."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(name="outputcap", config={
            "profiles": {"moderate": {"output": "64KB"}}}).start()
        cls._kernels = {}

    def test_output_past_the_cap_is_dropped_with_one_notice(self):
        kid = self.new_kernel()
        c = self.connect(kid)
        r = c.run("for i in range(4000):\n    print('x' * 250)\n", timeout=120)
        self.assertEqual(r.reply.content["status"], "ok", r.describe())
        # The stream that crosses the cap is cut to fit: the cap, less the JSON around the
        # text of each message (the gateway counts content bytes as the kernel sent them).
        self.assertLessEqual(len(r.stdout), 64 << 10)
        self.assertGreater(len(r.stdout), 60 << 10)
        self.assertTrue((("x" * 250 + "\n") * 4000).startswith(r.stdout), "a prefix, in order")
        notices = [m for m in r.iopub if m.msg_type == "stream" and
                   m.content.get("name") == "stderr"]
        self.assertEqual(len(notices), 1, [m.short() for m in notices])
        self.assertEqual(notices[0].content["text"],
                         "output limit of 64 KB reached, rest discarded\n")
        self.assertEqual(notices[0].parent_id, r.msg_id)
        # The next request has a cap of its own.
        r = c.run("print('after'); 'result'")
        self.assertEqual(r.stdout, "after\n")
        self.assertEqual(r.result_text, "'result'")
        self.assertNotIn("output limit", r.stderr)
        # A display and a result count too.
        r = c.run("from IPython.display import display\n"
                  "for i in range(40):\n    display({'text/plain': 'y' * 4000}, raw=True)\n"
                  "'z' * 100")
        shown = [m for m in r.iopub if m.msg_type in ("display_data", "execute_result")]
        self.assertLess(len(shown), 20, "displays past the cap are dropped")
        self.assertIn("output limit of 64 KB reached", r.stderr)

    def test_other_kernels_keep_their_output(self):
        kid = self.new_kernel()
        c = self.connect(kid)
        r = c.run("print('z' * 1000)")
        self.assertEqual(len(r.stdout), 1001)


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class WallClockTests(harness.ServerTestCase):
    """wall_time 2 s: a cell that runs longer is interrupted, and killed if it ignores that."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(name="wallclock", config={
            "profiles": {"moderate": {"wall_time": 2}, "permissive": {"wall_time": 2}}}
        ).start()
        cls._kernels = {}

    def test_a_busy_loop_is_interrupted_with_a_timeout_error(self):
        """Needs the kernel to report the interrupt's reason (the contract's TimeoutError)."""
        kid = self.new_kernel()
        other_kid = self.new_kernel()
        c = self.connect(kid)
        other = self.connect(other_kid)
        c.run("x = 41")
        t0 = time.monotonic()
        mid = c.execute("while True: pass")
        # Another kernel works meanwhile.
        self.assertEqual(other.run("6 * 7").result_text, "42")
        r = c.collect(mid, timeout=30)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 10, "interrupted late")
        self.assertEqual(r.reply.content["status"], "error", r.describe())
        self.assertEqual(r.reply.content["ename"], "TimeoutError", r.reply.content)
        self.assertEqual(r.reply.content["evalue"], "wall-clock timeout of 2 s")
        # Interrupted, not restarted: the kernel keeps its state.
        self.assertEqual(c.run("x + 1").result_text, "42")
        self.assertEqual(other.run("'still'").result_text, "'still'")

    def test_a_cell_that_ignores_the_interrupt_is_killed(self):
        kid = self.server.start_kernel("sandcell-permissive")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        watcher = self.connect(kid, protocol="legacy")
        other_kid = self.new_kernel()
        other = self.connect(other_kid)
        t0 = time.monotonic()
        # Interrupts reach the kernel as SIGINT: a cell that ignores it keeps running.
        mid = c.execute("import signal, time\n"
                        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                        "while True:\n"
                        "    time.sleep(0.05)\n")
        r = c.collect(mid, timeout=30)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 4.5, "2 s, then 3 s of grace")
        self.assertLess(took, 15)
        self.assertEqual(r.reply.content["status"], "error", r.describe())
        self.assertEqual(r.reply.content["ename"], "TimeoutError")
        self.assertEqual(r.reply.content["evalue"], "wall-clock timeout of 2 s")
        self.assertEqual(r.reply.content["sandcell_limit"], "wall_time")
        errors = [m for m in r.iopub if m.msg_type == "error"]
        self.assertEqual(len(errors), 1, r.describe())
        self.assertEqual(errors[0].content["traceback"], ["wall-clock timeout of 2 s"])
        # The other client saw the error too (iopub), and the restart.
        watcher.wait_for(lambda m: m.msg_type == "error" and m.parent_id == mid, 10)
        c.wait_for(lambda m: is_status(m, "restarting"), 10, "status restarting")
        c.pending.clear()
        c.wait_ready(60)
        self.assertEqual(c.run("'restarted'").result_text, "'restarted'")
        self.assertEqual(other.run("1 + 1").result_text, "2", "another kernel is unaffected")

    def test_queued_requests_wait_for_their_turn(self):
        """Two 1.5 s cells sent at once: each has its own 2 s, counted from its start."""
        kid = self.new_kernel()
        c = self.connect(kid)
        first = c.execute("import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.5:"
                          " pass\n'one'")
        second = c.execute("t = time.monotonic()\nwhile time.monotonic() - t < 1.5: pass\n"
                           "'two'")
        self.assertEqual(c.collect(first, timeout=20).result_text, "'one'")
        self.assertEqual(c.collect(second, timeout=20).result_text, "'two'")


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class CrashServer(Server):
    """A server whose kernels crash on purpose: in a sanitizer build they must die of their
    signal, as in a release build, not be reported by AddressSanitizer as a bug of sandcell's."""

    def _env(self):
        env = super()._env()
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if env.get(var):
                env[var] += ":handle_segv=0:handle_sigbus=0:handle_abort=0"
        return env


class DeathTests(harness.ServerTestCase):
    """The supervisor's exit status becomes a structured error for the pending request."""

    server_options = {"restart-limit": 1}

    @classmethod
    def setUpClass(cls):
        # custom: no import blocklist of its own, so a cell can reach ctypes for a real fault
        # (the kernel is pid 1 of its namespace: a signal it sends itself is ignored).
        cls.server = CrashServer(cls.server_options, name="death", config={
            "profiles": {"custom": {}}}).start()
        cls._kernels = {}

    def _die(self, code, ename, evalue, kind):
        kid = self.server.start_kernel("sandcell-permissive")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        other = self.connect(kid, protocol="legacy")
        for attempt in range(2):  # limits do not count against --restart-limit 1
            c.pending.clear()
            if attempt:
                c.wait_ready(60)
            mid = c.execute(code)
            r = c.collect(mid, timeout=30)
            self.assertEqual(r.reply.content["status"], "error", r.describe())
            self.assertEqual(r.reply.content["ename"], ename, r.reply.content)
            self.assertEqual(r.reply.content["evalue"], evalue)
            self.assertEqual(r.reply.content["sandcell_limit"], kind)
            self.assertEqual(r.reply.content["traceback"], [evalue])
            self.assertEqual(r.reply.parent_id, mid)
            err = [m for m in r.iopub if m.msg_type == "error"]
            self.assertEqual(len(err), 1)
            self.assertEqual(err[0].content["sandcell_limit"], kind)
            other.wait_for(lambda m: m.msg_type == "error" and m.parent_id == mid, 10)
            c.wait_for(lambda m: is_status(m, "restarting"), 10, "status restarting")
        self.server.snapshot_kernels()
        c.pending.clear()
        c.wait_ready(60)
        self.assertEqual(c.run("'alive'").result_text, "'alive'")
        return kid

    def test_memory_exit_status(self):
        self._die("import os; os._exit(101)", "MemoryError", "memory limit of 2 GB exceeded",
                  "memory")

    def test_cpu_exit_status(self):
        self._die("import os; os._exit(102)", "TimeoutError",
                  "CPU time limit of 3600 s exceeded", "cpu_time")

    def test_a_death_nobody_saw_is_replayed(self):
        kid = self.server.start_kernel("sandcell-permissive")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        mid = c.execute("import os, time; time.sleep(1); os._exit(101)")
        c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 10)
        c.close()
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["execution_state"] in
                   ("restarting", "starting", "idle"), 20, what="the kernel restarted")
        time.sleep(0.5)
        late = self.connect(kid, ready=False)
        err = late.wait_for(lambda m: m.msg_type == "error" and m.parent_id == mid, 10)
        self.assertEqual(err.content["sandcell_limit"], "memory")
        reply = late.wait_for(lambda m: m.msg_type == "execute_reply" and m.parent_id == mid,
                              10)
        self.assertEqual(reply.content["ename"], "MemoryError")
        late.wait_for(lambda m: is_status(m, "idle") and m.parent_id == mid, 10)

    def test_segfault(self):
        kid = self.server.start_kernel("sandcell-custom")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        r = c.run("import ctypes; ctypes.string_at(0)", timeout=30)
        self.assertEqual(r.reply.content["ename"], "KernelDied", r.describe())
        self.assertEqual(r.reply.content["evalue"], "the kernel died (signal 11, SIGSEGV)")
        self.assertEqual(r.reply.content["sandcell_limit"], "crash")

    def test_exit_status(self):
        kid = self.server.start_kernel("sandcell-permissive")["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        queued = []
        mid = c.execute("import os, time; time.sleep(0.5); os._exit(3)")
        queued.append(c.execute("'never runs'"))
        r = c.collect(mid, timeout=30)
        self.assertEqual(r.reply.content["evalue"], "the kernel died (exit status 3)")
        self.assertEqual(r.reply.content["sandcell_limit"], "crash")
        # The request behind it is answered too.
        q = c.collect(queued[0], timeout=10)
        self.assertEqual(q.reply.content["status"], "error")
        self.assertEqual(q.reply.content["ename"], "KernelDied")


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class MissingLayerTests(unittest.TestCase):
    """A profile whose layers the host lacks (per the kernel's report) refuses to start."""

    def _server(self, config=None):
        tmp = harness.tempfile.mkdtemp(prefix="fake-", dir=harness.TMP)
        path, _ = fake_kernel(tmp, FAKE_REPORT)
        srv = Server({"kernel-binary": path}, name="missinglayer", config=config).start()
        self.addCleanup(srv.stop)
        return srv

    def test_refused_without_allow_weaker_sandbox(self):
        srv = self._server()
        r = srv.request("POST", "/api/kernels", body={"name": "sandcell-strict"})
        self.assertEqual(r.status, 503, r)
        message = r.json()["message"]
        self.assertIn("profile strict", message)
        self.assertIn("seccomp, landlock", message)
        self.assertIn("--allow-weaker-sandbox", message)
        r = srv.request("POST", "/api/sessions", body={
            "path": "a.ipynb", "type": "notebook", "kernel": {"name": "sandcell-strict"}})
        self.assertEqual(r.status, 503, r)
        sb = srv.get_json("/api/sandbox")
        self.assertFalse(sb["profiles"]["strict"]["ok"])
        self.assertEqual(sb["profiles"]["strict"]["missing"], ["seccomp", "landlock"])
        spec = srv.get_json("/api/kernelspecs/sandcell-strict")
        self.assertFalse(spec["spec"]["metadata"]["sandcell"]["available"])
        # The other profiles start.
        kid = srv.start_kernel("sandcell-moderate")["id"]
        self.assertNotIn("--allow-weaker-sandbox", kernel_cmdline(srv, kid))
        self.assertIn("profile strict lacks seccomp, landlock", srv.log_tail(20000))

    def test_allowed_with_allow_weaker_sandbox(self):
        srv = self._server({"allow_weaker_sandbox": True})
        kid = srv.start_kernel("sandcell-strict")["id"]
        self.assertIn("--allow-weaker-sandbox", kernel_cmdline(srv, kid))
        self.assertTrue(srv.get_json("/api/sandbox")["allow_weaker_sandbox"])
        self.assertIn("WITHOUT seccomp, landlock", srv.log_tail(20000))
        c = srv.connect(kid)
        c.wait_ready()
        self.assertEqual(c.run("1 + 2").result_text, "3")
        c.close()


@unittest.skipIf(REFERENCE, "sandcell's sandbox profiles (jupyter-server has none)")
class SandboxSetupFailureTests(unittest.TestCase):
    """A kernel that cannot set up its sandbox (exit 103) is not restarted in a loop."""

    def test_start_fails_with_the_kernels_words(self):
        tmp = harness.tempfile.mkdtemp(prefix="fake-", dir=harness.TMP)
        path, log = fake_kernel(tmp, FAKE_NO_SANDBOX)
        srv = Server({"kernel-binary": path}, name="nosandbox").start()
        self.addCleanup(srv.stop)
        t0 = time.monotonic()
        r = srv.request("POST", "/api/kernels", body={"name": "sandcell"})
        self.assertEqual(r.status, 500, r)
        self.assertLess(time.monotonic() - t0, 10)
        message = r.json()["message"]
        self.assertIn("could not set up its sandbox", message)
        self.assertIn("user namespaces are off (test)", message)
        time.sleep(1.5)
        with open(log) as f:
            self.assertEqual(f.read().count("launched"), 1, "restarted after exit 103")
        kernels = srv.get_json("/api/kernels")
        self.assertEqual([k["execution_state"] for k in kernels], ["dead"])
        self.assertIn("user namespaces are off (test)", srv.log_tail(20000))
        # A restart someone asks for tries once more, and fails the same way.
        r = srv.request("POST", "/api/kernels/%s/restart" % kernels[0]["id"], body={})
        self.assertEqual(r.status, 500, r)
        self.assertIn("user namespaces are off (test)", r.json()["message"])
        time.sleep(1.5)
        with open(log) as f:
            self.assertEqual(f.read().count("launched"), 2, "a restart loop")
        srv.delete_kernel(kernels[0]["id"])
        self.assertEqual(srv.get_json("/api/kernels"), [])


if __name__ == "__main__":
    harness.main()
