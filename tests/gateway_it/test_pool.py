"""The pool of ready kernels (--kernel-pool): once a kernelspec is used, N kernels of it are kept
started and hidden; a start request that narrows nothing gets one at once, and the pool refills.
Pooled kernels are not listed, not reachable by id, and do not count against --max-kernels."""
import json
import os
import time
import unittest

import harness
from harness import ServerTestCase, sandcell_only, wait_until


def kernel_ids_running(server):
    """The ids of every kernel process the server runs, listed or pooled (from the connection
    file on each kernel's command line)."""
    ids = set()
    for pid in harness.descendants(server.proc.pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for a in args:
            base = os.path.basename(a)
            if base.startswith("kernel-") and base.endswith(".json"):
                ids.add(base[len("kernel-"):-len(".json")])
    return ids


def listed(server):
    return {k["id"] for k in server.get_json("/api/kernels")}


@sandcell_only
class PoolTests(ServerTestCase):
    server_options = {"kernel-pool": 2, "max-kernels": 3}

    def pooled(self):
        return kernel_ids_running(self.server) - listed(self.server)

    def wait_pool_ready(self):
        """Waits until two hidden kernels run and the log says both are ready."""
        def ready():
            hidden = self.pooled()
            log = self.server.log_tail(1 << 20)
            return len(hidden) == 2 and all("kernel %s (sandcell) ready" % i in log
                                            for i in hidden)
        wait_until(ready, 60, what="two ready kernels in the pool")
        return self.pooled()

    def test_pool_hands_out_ready_kernels_and_refills(self):
        first = self.new_kernel()  # the first use of the kernelspec turns its pool on
        hidden = self.wait_pool_ready()
        # Hidden kernels are not reachable by id.
        some = next(iter(hidden))
        self.assertEqual(self.server.request("GET", "/api/kernels/" + some).status, 404)
        t = time.monotonic()
        second = self.new_kernel()
        took = time.monotonic() - t
        self.assertIn(second, hidden, "the new kernel did not come from the pool")
        self.assertEqual(listed(self.server), {first, second})
        # It is an ordinary kernel: it runs code over its WebSocket.
        c = self.connect(second)
        self.assertEqual(c.run("6 * 7", timeout=30).result_text, "42")
        # The pool refills in the background.
        self.assertNotIn(second, self.wait_pool_ready())
        print("pooled kernel handed out in %.1f ms" % (took * 1000))

    def test_pooled_kernels_do_not_count_against_the_limit(self):
        kids = [self.new_kernel() for _ in range(3)]
        wait_until(lambda: len(self.pooled()) == 2, 60, what="the pool full")
        r = self.server.request("POST", "/api/kernels", body={})
        self.assertEqual(r.status, 503, r.body)
        self.assertIn("limit of 3 kernels", r.json()["message"])
        for kid in kids:
            self.server.delete_kernel(kid)

    def test_a_task_that_narrows_limits_gets_a_kernel_of_its_own(self):
        self.new_kernel()
        hidden = self.wait_pool_ready()
        r = self.server.request("POST", "/python/execute",
                                body={"task": {"code": "print(1)", "memory_limit": "200MB"}})
        self.assertEqual(r.status, 200, r.body)
        res = r.json()
        self.assertTrue(res["success"], res)
        self.assertNotIn(res["kernel_id"], hidden)
        self.assertEqual(res["limits"]["memory"], "200 MB")
        # A plain one comes from the pool (and is thrown away after).
        r = self.server.request("POST", "/python/execute", body={"task": {"code": "print(2)"}})
        res = r.json()
        self.assertEqual(res["stdout"], "2\n", res)
        self.assertIn(res["kernel_id"], hidden)
        wait_until(lambda: res["kernel_id"] not in kernel_ids_running(self.server), 30,
                   what="the one-shot kernel shut down")


@sandcell_only
class NoPoolTests(ServerTestCase):
    server_options = {"kernel-pool": 0}

    def test_no_kernel_is_started_ahead(self):
        kid = self.new_kernel()
        time.sleep(1.5)
        self.assertEqual(kernel_ids_running(self.server), {kid})


@sandcell_only
class ScaleLimitTests(ServerTestCase):
    """Room for --max-kernels kernels: the open-file limit is raised to fit them."""
    server_options = {"max-kernels": 500}

    def test_open_file_limit_fits_the_kernels(self):
        with open("/proc/%d/limits" % self.server.proc.pid) as f:
            line = next(l for l in f if l.startswith("Max open files"))
        soft, hard = line.split()[3:5]
        want = 500 * 16 + 1024
        self.assertGreaterEqual(int(soft), min(want, int(hard)), line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
