"""Each layer of the kernel's sandbox, seen from inside the kernel and from the host.

The kernel binary runs under each profile with a real jupyter_client; code in the kernel reads
its own state (/proc/self/status, /proc/self/limits, the file system) and the test also looks
from outside (/proc of the kernel's processes, its cgroups). The Python import policy would
refuse `import os` under strict, so the probes reach os the way an attacker would: through
object.__subclasses__(). That is the point: the policy is not the wall, these layers are.

Run: SANDCELL_KERNEL=build/kernel/sandcell-kernel /usr/bin/python3 tests/sandbox/test_layers.py
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KERNEL = os.environ.get("SANDCELL_KERNEL") or os.path.join(REPO, "build", "kernel", "sandcell-kernel")
SANITIZER_BUILD = "sanitizer_build\": true" in subprocess.run(
    [KERNEL, "--check-sandbox", "--json", "--profile", "strict"], capture_output=True, text=True
).stdout

# os, reached without an import statement (what a policy bypass looks like).
OS = ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close']"
      "[0].__init__.__globals__['sys'].modules['os']")


class Kernel:
    """One sandcell-kernel process (the supervisor) and a client connected to it."""

    def __init__(self, profile, *extra, transport="ipc"):
        self.dir = tempfile.mkdtemp(prefix="sc-sbx-")
        ip = os.path.join(self.dir, "k") if transport == "ipc" else "127.0.0.1"
        self.cf, _ = write_connection_file(os.path.join(self.dir, "k.json"), transport=transport,
                                           ip=ip)
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen([KERNEL, "-f", self.cf, "--profile", profile, *extra],
                                     stdin=subprocess.DEVNULL, stderr=self.stderr,
                                     start_new_session=True)
        self.client = BlockingKernelClient()
        self.client.load_connection_file(self.cf)
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=30)
        except BaseException:
            # A kernel that never answered must not outlive the test (its supervisor would be
            # left to init with the kernel under it).
            self.close()
            raise

    def run(self, code, timeout=30):
        """Runs code; returns (stdout text, error content or None)."""
        out, err = [], []

        def hook(m):
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                err.append(m["content"])
            elif m["msg_type"] == "execute_result":
                out.append(m["content"]["data"]["text/plain"])

        self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        return "".join(out), (err[0] if err else None)

    def value(self, expr):
        """The value of a Python expression in the kernel, through JSON."""
        out, err = self.run("import json as _j\nprint(_j.dumps(%s))" % expr)
        if err:
            raise AssertionError("%s: %s %s" % (expr, err["ename"], err["evalue"]))
        return json.loads(out.strip().splitlines()[-1])

    def kernel_pid(self):
        """The host pid of the sandboxed kernel: the supervisor's grandchild."""
        for _ in range(100):
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
            if kids:
                with open("/proc/%s/task/%s/children" % (kids[0], kids[0])) as f:
                    grand = f.read().split()
                if grand:
                    return int(grand[0])
            time.sleep(0.02)
        raise AssertionError("no kernel process under the supervisor")

    def stderr_text(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self):
        self.client.stop_channels()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def status(k):
    """/proc/self/status of the kernel as a dict."""
    return k.value("dict(l.rstrip('\\n').split(':\\t', 1) for l in open('/proc/self/status') if ':\\t' in l)")


class LayerTests(unittest.TestCase):
    profile = "strict"
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.k = Kernel(cls.profile, *cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_identity_and_privileges(self):
        st = status(self.k)
        self.assertEqual(st["Uid"].split(), ["1000"] * 4)
        self.assertEqual(st["Gid"].split(), ["1000"] * 4)
        self.assertEqual(st["Groups"].strip(), "")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, cap)
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        self.assertEqual(st["Seccomp"].strip(), "2")

    def test_pid_namespace(self):
        self.assertEqual(self.k.value(OS + ".getpid()"), 1)
        self.assertEqual(self.k.value(OS + ".getppid()"), 0)
        # Only the kernel itself is in its /proc.
        self.assertEqual(self.k.value("sorted(p for p in %s.listdir('/proc') if p.isdigit())" % OS),
                         ["1"])

    def test_uts_and_net_namespace(self):
        self.assertEqual(self.k.value("open('/proc/sys/kernel/hostname').read().strip()"), "sandcell")
        ifaces = self.k.value("[l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]")
        self.assertEqual(ifaces, ["lo"])

    def test_minimal_read_only_root(self):
        want = {"bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "sbin", "tmp", "usr",
                "workspace"}
        if SANITIZER_BUILD:
            # A sanitizer build binds the directory its reports go to (log_path=) writable.
            log_path = dict(kv.split("=", 1) for kv in os.environ.get("ASAN_OPTIONS", "").split(":")
                            if "=" in kv).get("log_path", "")
            if log_path.startswith("/"):
                want.add(log_path.split("/")[1])
        self.assertEqual(sorted(self.k.value(OS + ".listdir('/')")), sorted(want))
        self.assertEqual(self.k.value(OS + ".getcwd()"), "/workspace")
        for path in ("/usr/sandcell-probe", "/etc/sandcell-probe", "/sandcell-probe",
                     "/dev/sandcell-probe", "/proc/sys/kernel/hostname"):
            out, err = self.k.run("open(%r, 'w').write('x')" % path)
            self.assertIsNotNone(err, path)
            self.assertIn(err["ename"], ("OSError", "PermissionError", "FileNotFoundError"), path)
        self.assertFalse(os.path.exists("/usr/sandcell-probe"))
        # The identity files are the sandbox's own.
        self.assertEqual(self.k.value("open('/etc/passwd').read()").split(":")[0], "sandbox")
        self.assertFalse(self.k.value(OS + ".path.exists('/etc/shadow')"))

    def test_workspace_and_tmp_are_private_and_sized(self):
        out, err = self.k.run("open('/workspace/a.txt', 'w').write('hello')\n"
                              "open('/tmp/b.txt', 'w').write('hello')")
        self.assertIsNone(err)
        size = self.k.value("(lambda s: s.f_blocks * s.f_frsize)(%s.statvfs('/workspace'))" % OS)
        self.assertEqual(size, 16 << 20)
        # Nothing of it shows on the host.
        self.assertFalse(os.path.exists("/workspace/a.txt"))
        self.assertFalse(os.path.exists("/tmp/b.txt"))

    def test_rlimits(self):
        limits = self.k.value("open('/proc/self/limits').read()")
        rows = {l[:26].strip(): l[26:].split() for l in limits.splitlines()[1:]}
        self.assertEqual(rows["Max cpu time"][:2], ["30", "31"])
        self.assertEqual(rows["Max file size"][0], str(16 << 20))
        self.assertEqual(rows["Max core file size"][0], "0")
        self.assertNotEqual(rows["Max open files"][0], "unlimited")
        self.assertNotEqual(rows["Max processes"][0], "unlimited")
        if not SANITIZER_BUILD:
            self.assertNotEqual(rows["Max address space"][0], "unlimited")

    def test_seccomp_denies_with_eperm_and_kernel_goes_on(self):
        # Calls only the filter refuses (the name is built at run time: the import policy
        # would stop a plain import first, and the policy is not what is tested here).
        code = ("os = %s\n"
                "saved = os.sys.meta_path[:]\n"
                "os.sys.meta_path[:] = [f for f in saved if 'olicy' not in type(f).__name__]\n"
                "_socket = os.sys.modules['importlib'].import_module('_so' + 'cket')\n"
                "os.sys.meta_path[:] = saved\n"
                "for name, call in (('socket', lambda: _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)),\n"
                "                   ('memfd_create', lambda: os.memfd_create('x')),\n"
                "                   ('mount-ish setns', lambda: os.setns(0, 0) if hasattr(os, 'setns') else os.memfd_create('y'))):\n"
                "    try:\n        call()\n    except OSError as e:\n        print(name, 'errno', e.errno)\n"
                "    else:\n        print(name, 'allowed')\n" % OS)
        out, err = self.k.run(code)
        self.assertIsNone(err, err)
        self.assertIn("socket errno 1", out)
        self.assertIn("memfd_create errno 1", out)
        self.assertNotIn("allowed", out)
        self.assertEqual(self.k.value("1 + 1"), 2)

    def test_fork_refused_in_strict(self):
        out, err = self.k.run("try:\n    pid = %s.fork()\nexcept OSError as e:\n    print('errno', e.errno)\n"
                              "else:\n    print('forked', pid)\n    %s._exit(0) if pid == 0 else None" % (OS, OS))
        self.assertIn("errno 1", out)

    def test_outside_view(self):
        pid = self.k.kernel_pid()
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        outer = int(st["Uid"].split()[0])
        self.assertEqual(outer, 1000000 + self.k.proc.pid)
        # Its namespaces are not ours.
        for ns in ("user", "pid", "mnt", "net", "ipc", "uts"):
            self.assertNotEqual(os.readlink("/proc/%d/ns/%s" % (pid, ns)),
                                os.readlink("/proc/self/ns/%s" % ns), ns)
        with open("/proc/%d/cgroup" % pid) as f:
            cg = f.read()
        with open("/proc/self/cgroup") as f:
            has_memory_cgroup = "memory" in f.read()
        if has_memory_cgroup and os.geteuid() == 0:
            self.assertIn("/sandcell/k%d-" % self.k.proc.pid, cg)


class ModerateLayerTests(LayerTests):
    profile = "moderate"

    def test_pid_namespace(self):
        # Children user code forked may be left in /proc (as zombies): only check pid 1.
        self.assertEqual(self.k.value(OS + ".getpid()"), 1)
        self.assertEqual(self.k.value(OS + ".getppid()"), 0)

    def test_workspace_and_tmp_are_private_and_sized(self):
        size = self.k.value("(lambda s: s.f_blocks * s.f_frsize)(%s.statvfs('/workspace'))" % OS)
        self.assertEqual(size, 256 << 20)

    def test_rlimits(self):
        limits = self.k.value("open('/proc/self/limits').read()")
        self.assertIn("300", [l[26:].split()[0] for l in limits.splitlines() if l.startswith("Max cpu time")])

    def test_fork_refused_in_strict(self):
        out, err = self.k.run("try:\n    pid = %s.fork()\nexcept OSError as e:\n    print('errno', e.errno)\n"
                              "else:\n    %s._exit(0) if pid == 0 else print('forked')" % (OS, OS))
        self.assertIn("forked", out)


class PreinitLayerTests(LayerTests):
    """The same sandbox when the kernel is a fork of an interpreter that already runs."""
    extra = ("--preinit",)

    def test_forks_do_not_share_random_state(self):
        other = Kernel("strict", "--preinit")
        try:
            a = self.k.value("__import__('random').random()")
            b = other.value("__import__('random').random()")
            self.assertNotEqual(a, b)
        finally:
            other.close()


class TransportAndLimitTests(unittest.TestCase):
    def test_tcp_kernel_reachable_but_cannot_connect_out(self):
        k = Kernel("strict", transport="tcp")
        try:
            self.assertEqual(k.value("1 + 1"), 2)
            ifaces = k.value("[l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]")
            self.assertEqual(ifaces, ["lo"])
        finally:
            k.close()

    def test_permissive_network_only_when_asked(self):
        for extra, host_net in (((), False), (("--network",), True)):
            k = Kernel("permissive", *extra)
            try:
                ifaces = k.value("[l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]")
                self.assertEqual(ifaces != ["lo"], host_net, extra)
                out, err = k.run("import socket\ntry:\n    socket.socket().close(); print('socket ok')\n"
                                 "except OSError as e:\n    print('errno', e.errno)")
                self.assertIn("socket ok" if host_net else "errno 1", out, extra)
            finally:
                k.close()

    def test_cpu_limit_names_itself(self):
        k = Kernel("strict", "--cpu-time", "1")
        try:
            k.client.execute("while True: pass")
            self.assertEqual(k.proc.wait(30), 102)
            self.assertIn("CPU time limit of 1 s exceeded", k.stderr_text())
        finally:
            k.close()

    def test_memory_limit_names_itself(self):
        k = Kernel("strict", "--memory", "64MB")
        try:
            out, err = k.run("x = [b'x' * (1 << 20) for _ in range(400)]", timeout=20)
            if k.proc.poll() is None:
                # The address-space limit came first: a MemoryError naming the limit.
                self.assertEqual(err["ename"], "MemoryError")
                self.assertIn("memory limit of 64 MB exceeded", err["evalue"])
                self.assertEqual(k.value("1 + 1"), 2)
            else:
                self.assertEqual(k.proc.wait(10), 101)
                self.assertIn("memory limit of 64 MB exceeded", k.stderr_text())
        except (RuntimeError, TimeoutError):
            # The cgroup killed the kernel mid-cell (a sanitizer build has no address limit).
            self.assertEqual(k.proc.wait(30), 101)
            self.assertIn("memory limit of 64 MB exceeded", k.stderr_text())
        finally:
            k.close()

    def test_kernel_log_flood_is_capped(self):
        # Hostile code writes into every pipe it holds; what reaches the gateway's log (the
        # supervisor's stderr) stays under the cap.
        k = Kernel("moderate")
        try:
            code = ("import time\nos = %s\n"
                    "for fd in range(3, 64):\n"
                    "    try:\n"
                    "        if not os.readlink('/proc/self/fd/%%d' %% fd).startswith('pipe:'):\n"
                    "            continue\n"
                    "        os.set_blocking(fd, False)\n"
                    "    except OSError:\n"
                    "        continue\n"
                    "    sent, end = 0, time.time() + 3\n"
                    "    while sent < 400000 and time.time() < end:\n"
                    "        try:\n"
                    "            sent += os.write(fd, b'A' * 65536)\n"
                    "        except BlockingIOError:\n"
                    "            time.sleep(0.01)\n"
                    "        except OSError:\n"
                    "            break\n" % OS)
            k.run(code, timeout=60)
            deadline = time.time() + 10
            while "the rest is dropped" not in k.stderr_text() and time.time() < deadline:
                time.sleep(0.1)
            log = k.stderr_text()
            self.assertLess(len(log), 300 << 10)
            self.assertTrue("the rest is dropped" in log, "no notice after %d bytes" % len(log))
        finally:
            k.close()

    def test_sigterm_to_the_supervisor_ends_the_kernel(self):
        k = Kernel("strict")
        try:
            pid = k.kernel_pid()
            k.run("import signal\n")  # (refused by policy; the point is the kernel below)
            os.kill(k.proc.pid, signal.SIGTERM)
            k.proc.wait(10)
            time.sleep(0.1)
            self.assertFalse(os.path.exists("/proc/%d/status" % pid))
        finally:
            k.close()

    def test_missing_layer_refuses_to_start(self):
        # In a user namespace that may not make user namespaces, strict must refuse, naming
        # the layer, unless the operator accepts a weaker sandbox.
        d = tempfile.mkdtemp(prefix="sc-sbx-")
        try:
            cf, _ = write_connection_file(os.path.join(d, "k.json"), transport="ipc",
                                          ip=os.path.join(d, "k"))
            script = ("echo 0 > /proc/sys/user/max_user_namespaces && exec %s -f %s --profile strict"
                      % (KERNEL, cf))
            r = subprocess.run(["unshare", "-U", "-r", "-m", "-p", "-f", "--mount-proc", "sh", "-c", script],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 103, r.stderr)
            self.assertIn("user namespace", r.stderr)
            self.assertIn("--allow-weaker-sandbox", r.stderr)
            check = subprocess.run(["unshare", "-U", "-r", "sh", "-c",
                                    "echo 0 > /proc/sys/user/max_user_namespaces && exec %s "
                                    "--check-sandbox --json" % KERNEL],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 1)
            report = json.loads(check.stdout)
            self.assertFalse(report["profiles"]["strict"]["ok"])
            self.assertIn("user namespace", report["profiles"]["strict"]["missing"])
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_check_sandbox_tells_the_truth_here(self):
        r = subprocess.run([KERNEL, "--check-sandbox", "--json"], capture_output=True, text=True,
                           timeout=60)
        report = json.loads(r.stdout)
        layers = {l["name"]: l["active"] for l in report["layers"]}
        for name in ("user namespace", "pid namespace", "mount namespace", "net namespace",
                     "ipc namespace", "uts namespace", "minimal root (pivot_root)",
                     "unprivileged uid", "capabilities dropped", "no_new_privs", "rlimits",
                     "seccomp"):
            self.assertTrue(layers[name], name)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(all(p["ok"] for p in report["profiles"].values()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
