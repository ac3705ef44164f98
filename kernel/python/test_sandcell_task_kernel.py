"""Task mode end to end: the real sandboxed sandcell-kernel under the strict and
moderate profiles, driven with jupyter_client (an execute_request carrying
``sandcell_task``, as the gateway sends it).

Run:  SANDCELL_KERNEL=build/kernel/sandcell-kernel /usr/bin/python3 test_sandcell_task_kernel.py
(in kernel/python; meson registers it in the integration suite).
"""

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KERNEL = os.environ.get("SANDCELL_KERNEL") or os.path.join(REPO, "build", "kernel",
                                                           "sandcell-kernel")
MB = 1 << 20
# AddressSanitizer keeps freed memory in quarantine: a freed block stays resident.
SANITIZER_BUILD = "sanitizer_build\": true" in subprocess.run(
    [KERNEL, "--check-sandbox", "--json", "--profile", "strict"], capture_output=True,
    text=True).stdout


class Kernel:
    """One sandcell-kernel (under a profile) and a blocking client."""

    def __init__(self, profile):
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file
        self.dir = tempfile.mkdtemp(prefix="sc-task-")
        self.cf, _ = write_connection_file(os.path.join(self.dir, "k.json"), transport="ipc",
                                           ip=os.path.join(self.dir, "k"))
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen([KERNEL, "-f", self.cf, "--profile", profile],
                                     stdin=subprocess.DEVNULL, stderr=self.stderr,
                                     start_new_session=True)
        self.client = BlockingKernelClient()
        self.client.load_connection_file(self.cf)
        self.client.start_channels()
        try:
            self.wait_ready(60)
        except BaseException:
            self.close()  # else its process and the client's threads outlive the test
            raise

    def wait_ready(self, timeout):
        """kernel_info until it is answered. Not jupyter_client's wait_for_ready: that one
        calls a kernel dead when one heartbeat is late, as on a loaded machine."""
        deadline = time.monotonic() + timeout
        replied = False
        while True:
            msg_id = self.client.kernel_info()
            try:
                while not replied:
                    r = self.client.get_shell_msg(timeout=1)
                    replied = r["parent_header"].get("msg_id") == msg_id
                # iopub too: a status for a request proves the subscription is live.
                while True:
                    m = self.client.get_iopub_msg(timeout=1)
                    if m["msg_type"] == "status":
                        return
            except queue.Empty:
                pass
            if self.proc.poll() is not None:
                self.stderr.seek(0)
                raise RuntimeError("the kernel exited (%s): %s" % (self.proc.returncode,
                                                                   self.stderr.read()[-2000:]))
            if time.monotonic() > deadline:
                raise TimeoutError("no kernel_info_reply within %d s" % timeout)

    def task(self, code, **spec):
        """Sends code with a sandcell_task; returns (reply content, [(msg_type,
        content)] of the iopub messages it caused, status messages included)."""
        spec.setdefault("mode", "execute")
        msg = self.client.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True, "sandcell_task": spec})
        self.client.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        while True:
            reply = self.client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        published = []
        while True:
            m = self.client.get_iopub_msg(timeout=30)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            published.append((m["msg_type"], m["content"]))
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return reply["content"], published

    def close(self):
        self.client.stop_channels()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class StrictTaskTests(unittest.TestCase):
    profile = "strict"

    @classmethod
    def setUpClass(cls):
        if not os.access(KERNEL, os.X_OK):
            raise unittest.SkipTest("no kernel binary at %s" % KERNEL)
        cls.k = Kernel(cls.profile)

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_measurements(self):
        reply, _ = self.k.task("big = bytearray(60 << 20)\ns = 0\nfor i in range(400000):\n"
                               "    s += i\nlen(big)", return_variables=["s", "nope"])
        r = reply["sandcell_result"]
        self.assertEqual((reply["status"], r["exit_code"], r["return_value"]),
                         ("ok", 0, 60 * MB))
        self.assertEqual((r["variables"], r["missing_variables"]),
                         ({"s": sum(range(400000))}, ["nope"]))
        self.assertEqual(r["changed_variables"]["big"]["type"], "bytearray")
        self.assertGreater(r["cpu_time"], 0.001)
        self.assertLess(r["cpu_time"], 30)
        self.assertGreater(r["memory_peak"], 60 * MB)
        self.assertLess(r["memory_peak"], 1024 * MB)
        # A later, small run does not report the earlier peak.
        self.k.task("del big")
        reply, _ = self.k.task("sum(range(10))")
        if not SANITIZER_BUILD:
            self.assertLess(reply["sandcell_result"]["memory_peak"], 60 * MB)
        self.assertGreater(reply["sandcell_result"]["memory_peak"], 4 * MB)

    def test_exception(self):
        reply, published = self.k.task("x = 1\n\ndef f():\n    return {}['k']\nf()")
        e = reply["sandcell_result"]["exception"]
        self.assertEqual(reply["status"], "error")
        self.assertEqual((e["type"], e["message"], e["line"]), ("KeyError", "'k'", 4))
        self.assertIn("line 4, in f", e["traceback"])
        self.assertIn("error", [t for t, _ in published])

    def test_refused_import(self):
        reply, _ = self.k.task("import socket")
        e = reply["sandcell_result"]["exception"]
        self.assertEqual((e["type"], e["line"]), ("ImportPolicyError", 1))

    def test_validate(self):
        reply, published = self.k.task("import socket\nimport json\neval('1')", mode="validate")
        self.assertEqual([t for t, _ in published], ["status", "status"])
        v = reply["sandcell_validation"]
        self.assertEqual((v["is_valid"], v["security_level"]), (False, self.profile))
        self.assertEqual([(i["module"], i["allowed"], i["installed"]) for i in v["imports"]],
                         [("socket", False, True), ("json", True, True)])
        self.assertEqual(v["security_warnings"][0]["code"], "eval")

    def test_progress(self):
        reply, published = self.k.task("import sandcell\nfor i in range(3):\n"
                                       "    sandcell.progress(i / 2, 'step')")
        self.assertEqual(reply["status"], "ok")
        shown = [(t, c) for t, c in published if t in ("display_data", "update_display_data")]
        self.assertEqual([t for t, _ in shown], ["display_data", "update_display_data"])
        self.assertEqual(shown[-1][1]["data"]["application/vnd.sandcell.progress+json"],
                         {"fraction": 1.0, "message": "step"})

    def test_working_directory(self):
        reply, _ = self.k.task("open('here.txt', 'w').write('x')", working_directory="wd/a")
        self.assertEqual(reply["sandcell_result"]["exit_code"], 0)
        reply, _ = self.k.task("open('wd/a/here.txt').read()")
        self.assertEqual(reply["sandcell_result"]["return_value"], "x")


class ModerateTaskTests(StrictTaskTests):
    profile = "moderate"

    def test_file_mode(self):
        reply, published = self.k.task(
            "import sys, pathlib\nprint(__name__, __file__, sys.argv[1:], pathlib.Path.cwd())\n"
            "sys.exit(3)", mode="file", file_name="job.py", argv=["job.py", "a"],
            working_directory="/tmp/job")
        r = reply["sandcell_result"]
        self.assertEqual((r["exit_code"], r["exception"]["type"], r["exception"]["line"]),
                         (3, "SystemExit", 3))
        out = "".join(c["text"] for t, c in published if t == "stream")
        self.assertEqual(out, "__main__ job.py ['a'] /tmp/job\n")


if __name__ == "__main__":
    unittest.main()
