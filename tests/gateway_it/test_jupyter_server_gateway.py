"""Debian's jupyter-server in gateway mode (--gateway-url, --GatewayClient.auth_token) in
front of the server under test: every kernel request and WebSocket message goes through it,
as it does for a JupyterLab whose server delegates kernels to a gateway.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/test_jupyter_server_gateway.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/test_jupyter_server_gateway.py
"""

import threading
import time
import unittest
import uuid

import harness
from harness import ISO_MICRO_Z, REFERENCE, KernelWS, Server, is_status, wait_until


class GatewayModeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = Server(name="backend").start()
        try:
            cls.front = Server(name="front", kind="jupyter", gateway_url=cls.backend.base,
                               gateway_token=cls.backend.token).start()
        except Exception:
            cls.backend.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.front.stop(check=False)
        finally:
            cls.backend.stop()

    def start_kernel(self):
        r = self.front.request("POST", "/api/kernels",
                               body={"name": self.backend.default_kernel}, timeout=120)
        self.assertEqual(r.status, 201, "%r\nfront log:\n%s\nbackend log:\n%s" % (
            r, self.front.log_tail(3000), self.backend.log_tail(3000)))
        kid = r.json()["id"]
        self.backend.snapshot_kernels()
        self.addCleanup(self._delete, kid)
        return kid

    def _delete(self, kid):
        try:
            self.front.request("DELETE", "/api/kernels/" + kid)
        except Exception:
            pass
        try:
            self.backend.delete_kernel(kid)
        except Exception:
            pass

    def connect(self, kid, protocol="legacy"):
        # Legacy framing: jupyter-server 1.23 in gateway mode does not negotiate
        # v1.kernel.websocket.jupyter.org with its clients (jupyter_server #1310); it talks to
        # the gateway without a subprotocol too.
        c = KernelWS(self.front, kid, protocol=protocol, timeout=60)
        self.addCleanup(c.close)
        c.wait_ready(90)
        return c

    def test_kernelspecs_through_front(self):
        specs = self.front.get_json("/api/kernelspecs")
        self.assertEqual(specs["default"], self.backend.default_kernel)
        self.assertIn(self.backend.default_kernel, specs["kernelspecs"])

    def test_start_list_execute_shutdown(self):
        kid = self.start_kernel()
        # The kernel lives on the backend, and the front can list it (it parses
        # last_activity with %Y-%m-%dT%H:%M:%S.%fZ).
        self.assertIn(kid, self.backend.kernel_ids())
        back = self.backend.get_json("/api/kernels/" + kid)
        self.assertRegex(back["last_activity"], ISO_MICRO_Z)
        listing = self.front.get_json("/api/kernels")
        self.assertIn(kid, [k["id"] for k in listing])
        model = self.front.get_json("/api/kernels/" + kid)
        self.assertEqual(model["id"], kid)

        c = self.connect(kid)
        mid = c.execute("print('through the front')\n6 * 7")
        r = c.collect(mid, 60)
        self.assertEqual(r.types, ["status", "execute_input", "stream", "execute_result",
                                   "status"], r.describe())
        self.assertEqual(r.stdout, "through the front\n")
        self.assertEqual(r.result_text, "42")
        self.assertEqual(r.reply.content["status"], "ok")

        # Streaming through two hops.
        mid = c.execute("import time\nfor i in range(3):\n    print(i, flush=True)\n"
                        "    time.sleep(0.3)\n")
        r = c.collect(mid, 60)
        streams = [m for m in r.iopub if m.msg_type == "stream"]
        self.assertEqual("".join(m.content["text"] for m in streams), "0\n1\n2\n")
        self.assertGreater(r.iopub[-1]["_t"] - streams[0]["_t"], 0.4,
                           "output was not forwarded while the cell ran")
        c.close()

        r = self.front.request("DELETE", "/api/kernels/" + kid, timeout=60)
        self.assertEqual(r.status, 204, r)
        wait_until(lambda: kid not in self.backend.kernel_ids(), 30,
                   what="kernel gone from the backend after DELETE through the front")
        self.assertNotIn(kid, [k["id"] for k in self.front.get_json("/api/kernels")])

    def test_interrupt_through_front(self):
        kid = self.start_kernel()
        c = self.connect(kid)
        mid = c.execute("import time\ntime.sleep(30)")
        c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 20)
        time.sleep(0.3)
        r = self.front.request("POST", "/api/kernels/%s/interrupt" % kid, timeout=60)
        self.assertEqual(r.status, 204, r)
        res = c.collect(mid, 30)
        self.assertEqual(res.reply.content["status"], "error", res.describe())
        self.assertEqual(res.reply.content["ename"], "KeyboardInterrupt")
        self.assertEqual(c.run("1+1").result_text, "2")

    def test_restart_through_front(self):
        kid = self.start_kernel()
        c = self.connect(kid)
        self.assertEqual(c.run("x = 5; x").result_text, "5")
        mid = c.execute("import time\ntime.sleep(30)")
        c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 20)
        box = {}
        th = threading.Thread(target=lambda: box.setdefault("r", self.front.request(
            "POST", "/api/kernels/%s/restart" % kid, timeout=120)))
        th.start()
        deadline = time.monotonic() + 90
        while th.is_alive() and time.monotonic() < deadline:
            c.drain(0.2)
        th.join(30)
        self.backend.snapshot_kernels()
        self.assertEqual(box["r"].status, 200, box["r"])
        self.assertEqual(box["r"].json()["id"], kid)
        c.pending.clear()
        try:
            c.wait_ready(60)
        except AssertionError:
            # The front may drop the client's WebSocket on restart; a new one must work.
            c.close()
            c = self.connect(kid)
        r = c.run("x")
        self.assertEqual(r.reply.content.get("ename"), "NameError", r.describe())
        self.assertEqual(c.run("'restarted'").result_text, "'restarted'")

    def test_sessions_through_front(self):
        path = "gw-%s.ipynb" % uuid.uuid4().hex[:8]
        r = self.front.request("POST", "/api/sessions", body={
            "path": path, "type": "notebook", "name": "",
            "kernel": {"name": self.backend.default_kernel}}, timeout=120)
        self.assertEqual(r.status, 201, r)
        s = r.json()
        kid = s["kernel"]["id"]
        self.addCleanup(self._delete, kid)
        self.backend.snapshot_kernels()
        self.assertIn(kid, self.backend.kernel_ids())
        c = self.connect(kid)
        self.assertEqual(c.run("'session'").result_text, "'session'")
        c.close()
        r = self.front.request("DELETE", "/api/sessions/" + s["id"], timeout=60)
        self.assertEqual(r.status, 204, r)
        wait_until(lambda: kid not in self.backend.kernel_ids(), 30,
                   what="session's kernel gone from the backend")

    def test_two_kernels_through_front(self):
        k1, k2 = self.start_kernel(), self.start_kernel()
        a, b = self.connect(k1), self.connect(k2)
        a.run("x = 'one'")
        b.run("x = 'two'")
        self.assertEqual(a.run("x").result_text, "'one'")
        self.assertEqual(b.run("x").result_text, "'two'")


if __name__ == "__main__":
    harness.main()
