"""Idle culling: a kernel idle longer than --cull-idle-timeout is shut down, unless it has a
client (without --cull-connected) or is busy (without --cull-busy)."""
import time
import unittest

import harness
from harness import ServerTestCase, sandcell_only, wait_until


@sandcell_only
class CullTests(ServerTestCase):
    server_options = {"cull-idle-timeout": 1, "cull-interval": 0.5}

    def ids(self):
        return [k["id"] for k in self.server.get_json("/api/kernels")]

    def test_idle_kernel_without_client_is_culled(self):
        kid = self.new_kernel()
        wait_until(lambda: kid not in self.ids(), 15, what="the idle kernel culled")

    def test_connected_kernel_is_kept(self):
        kid = self.new_kernel()
        c = self.connect(kid)
        c.run("1")
        time.sleep(3)
        self.assertIn(kid, self.ids(), "a kernel with a client was culled")
        c.close()
        wait_until(lambda: kid not in self.ids(), 15, what="culled once the client left")

    def test_busy_kernel_is_kept(self):
        kid = self.new_kernel()
        c = self.connect(kid)
        c.execute("import time; time.sleep(4)")
        c.close()
        time.sleep(2.5)
        self.assertIn(kid, self.ids(), "a busy kernel was culled")
        wait_until(lambda: kid not in self.ids(), 20, what="culled once idle")


if __name__ == "__main__":
    unittest.main()
