"""WebSocket channels of the gateway: both framings, ordering, streaming, buffers, several
connections, stdin, interrupt, restart, kernel death, isolation, reconnect and replay, slow
clients, TCP_NODELAY, keep-alive.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/test_ws.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/test_ws.py   # reference
"""

import re
import socket
import threading
import time
import unittest
import uuid

import websocket

import harness
from harness import (COMM_IMPORT, PERMISSIVE_KERNEL, REFERENCE, ServerTestCase, is_status,
                     sandcell_only, wait_until)

PROTOCOLS = ("v1", "legacy")

TICKS = ("import time\n"
         "for i in range(%d):\n"
         "    print('tick', i, flush=True)\n"
         "    time.sleep(%s)\n")


def tick_numbers(msgs):
    text = "".join(m.content.get("text", "") for m in msgs
                   if m.msg_type == "stream" and m.content.get("name") == "stdout")
    return [int(x) for x in re.findall(r"tick (\d+)", text)]


class ExecuteTests(ServerTestCase):
    def test_execute_order(self):
        kid = self.shared_kernel()
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                c = self.connect(kid, protocol=proto)
                mid = c.execute("print('hello')\n6 * 7")
                r = c.collect(mid, 30)
                self.assertEqual(r.types, ["status", "execute_input", "stream",
                                           "execute_result", "status"], r.describe())
                self.assertTrue(is_status(r.iopub[0], "busy"), r.describe())
                self.assertTrue(is_status(r.iopub[-1], "idle"), r.describe())
                for m in r.iopub:
                    self.assertEqual(m.channel, "iopub")
                    self.assertEqual(m.parent_id, mid)
                self.assertEqual(r.iopub[1].content["code"], "print('hello')\n6 * 7")
                self.assertEqual(r.stdout, "hello\n")
                self.assertEqual(r.result_text, "42")
                self.assertEqual(r.reply.channel, "shell")
                self.assertEqual(r.reply.msg_type, "execute_reply")
                self.assertEqual(r.reply.content["status"], "ok")
                self.assertEqual(r.reply.get("parent_header", {}).get("session"), c.session_id)
                n = r.reply.content["execution_count"]
                self.assertEqual(r.iopub[1].content["execution_count"], n)
                self.assertEqual(r.iopub[3].content["execution_count"], n)
                c.close()

    def test_error_reply(self):
        c = self.connect(self.shared_kernel())
        r = c.run("1/0")
        self.assertEqual(r.reply.content["status"], "error")
        self.assertEqual(r.reply.content["ename"], "ZeroDivisionError")
        self.assertIn("error", r.types)

    def test_streamed_output_arrives_while_cell_runs(self):
        c = self.connect(self.shared_kernel())
        mid = c.execute(TICKS % (4, 0.3))
        r = c.collect(mid, 30)
        streams = [m for m in r.iopub if m.msg_type == "stream"]
        self.assertEqual(tick_numbers(streams), [0, 1, 2, 3], r.describe())
        idle_t = r.iopub[-1]["_t"]
        first = streams[0]["_t"]
        self.assertGreater(idle_t - first, 0.6,
                           "the first print reached the client only %.2fs before idle: output "
                           "is not forwarded while the cell runs" % (idle_t - first))
        self.assertGreater(streams[-1]["_t"] - first, 0.5,
                           "prints 0.3 s apart arrived together: %r"
                           % [round(m["_t"] - first, 2) for m in streams])

    def test_buffers_from_kernel(self):
        kid = self.shared_kernel()
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                c = self.connect(kid, protocol=proto)
                r = c.run(COMM_IMPORT +
                          "c = Comm(target_name='gwit-%s', data={'a': 1})\n"
                          "c.send(data={'k': 1}, buffers=[b'\\x00\\x01\\xff', b'second'])\n"
                          % proto)
                self.assertEqual(r.reply.content["status"], "ok", r.reply.content)
                msgs = [m for m in r.iopub if m.msg_type == "comm_msg"]
                self.assertEqual(len(msgs), 1, r.describe())
                self.assertEqual(msgs[0].content["data"], {"k": 1})
                self.assertEqual(msgs[0]["buffers"], [b"\x00\x01\xff", b"second"])
                c.close()

    def test_buffers_to_kernel(self):
        kid = self.shared_kernel()
        c0 = self.connect(kid)
        r = c0.run(COMM_IMPORT +
                   "def _gwit_open(comm, msg):\n"
                   "    def _on(m):\n"
                   "        bufs = [bytes(b) for b in (m.get('buffers') or [])]\n"
                   "        comm.send(data={'echo': m['content']['data'], 'nbufs': len(bufs)},\n"
                   "                  buffers=bufs)\n"
                   "    comm.on_msg(_on)\n"
                   "_reg('gwit_echo', _gwit_open)\n")
        self.assertEqual(r.reply.content["status"], "ok", r.reply.content)
        c0.close()
        sent = [b"\x00abc\xff", bytes(range(256)) * 4]
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                c = self.connect(kid, protocol=proto)
                comm_id = uuid.uuid4().hex
                c.send("shell", "comm_open", {"comm_id": comm_id, "target_name": "gwit_echo",
                                              "data": {}})
                c.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"v": proto}},
                       buffers=sent)
                m = c.wait_for(lambda m: m.msg_type == "comm_msg" and
                               m.content.get("comm_id") == comm_id, 20, "echoed comm_msg")
                self.assertEqual(m.content["data"]["echo"], {"v": proto})
                if REFERENCE or m.content["data"]["nbufs"]:
                    # sandcell-kernel does not hand buffers to comm callbacks; ipykernel does.
                    self.assertEqual(m.content["data"]["nbufs"], 2)
                    self.assertEqual(m["buffers"], sent)
                c.close()

    def test_request_with_buffers_round_trip(self):
        kid = self.shared_kernel()
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                c = self.connect(kid, protocol=proto)
                mid = c.send("shell", "kernel_info_request", buffers=[b"\x01\x02\x03"])
                r = c.collect(mid, 20)
                self.assertEqual(r.reply.msg_type, "kernel_info_reply")
                self.assertEqual(r.reply.content["status"], "ok")
                self.assertIn("language_info", r.reply.content)
                c.close()

    def test_control_channel(self):
        c = self.connect(self.shared_kernel())
        mid = c.send("control", "kernel_info_request")
        m = c.wait_for(lambda m: m.parent_id == mid and m.msg_type == "kernel_info_reply", 20)
        self.assertEqual(m.channel, "control")

    @sandcell_only
    def test_tcp_nodelay(self):
        c = self.connect(self.shared_kernel())
        v = harness.peer_socket_option(self.server.proc.pid, self.server.port, c.ws.sock,
                                       socket.IPPROTO_TCP, socket.TCP_NODELAY)
        self.assertNotEqual(v, 0, "TCP_NODELAY is not set on the gateway's WebSocket socket")


class ConnectionsTests(ServerTestCase):
    def test_two_connections_iopub_to_both_reply_to_requester(self):
        kid = self.shared_kernel()
        a = self.connect(kid, protocol="v1")
        b = self.connect(kid, protocol="legacy")
        mid = a.execute("print('to both')")
        ra = a.collect(mid, 30)
        self.assertEqual(ra.stdout, "to both\n")
        rb = b.collect(mid, 30, need_reply=False)
        self.assertEqual(rb.stdout, "to both\n", rb.describe())
        self.assertEqual(rb.types, ra.types)
        b.drain(1.0)
        leaked = [m.short() for m in b.log if m.parent_id == mid and m.channel != "iopub"]
        self.assertEqual(leaked, [], "the other connection got the requester's reply")
        # And the other way round.
        mid2 = b.execute("print('from b')")
        self.assertEqual(b.collect(mid2, 30).stdout, "from b\n")
        self.assertEqual(a.collect(mid2, 30, need_reply=False).stdout, "from b\n")
        a.drain(0.5)
        self.assertEqual([m.short() for m in a.log if m.parent_id == mid2 and
                          m.channel != "iopub"], [])

    def test_stdin_goes_to_requester(self):
        kid = self.shared_kernel()
        a = self.connect(kid)
        b = self.connect(kid)
        mid = a.execute("x = input('name? ')\nprint('hello', x)", allow_stdin=True)
        req = a.wait_for(lambda m: m.msg_type == "input_request", 20, "input_request")
        self.assertEqual(req.channel, "stdin")
        self.assertEqual(req.parent_id, mid)
        self.assertEqual(req.content["prompt"], "name? ")
        b.drain(0.5)
        self.assertEqual([m.short() for m in b.log if m.channel == "stdin"], [],
                         "the input_request went to the other connection too")
        a.send("stdin", "input_reply", {"value": "gwit"}, parent_header=req["header"])
        r = a.collect(mid, 30)
        self.assertEqual(r.reply.content["status"], "ok", r.describe())
        self.assertIn("hello gwit", r.stdout)

    def test_two_kernels_isolated(self):
        k1 = self.shared_kernel("one")
        k2 = self.shared_kernel("two")
        a = self.connect(k1)
        b = self.connect(k2)
        self.assertEqual(a.run("x = 'in-one'; x").result_text, "'in-one'")
        self.assertEqual(b.run("x = 'in-two'; x").result_text, "'in-two'")
        # Run both at once; each sees only its own kernel's output.
        ma = a.execute(TICKS % (3, 0.1) + "print('kernel', x)")
        mb = b.execute(TICKS % (3, 0.1) + "print('kernel', x)")
        ra = a.collect(ma, 30)
        rb = b.collect(mb, 30)
        self.assertIn("kernel in-one", ra.stdout)
        self.assertIn("kernel in-two", rb.stdout)
        self.assertEqual([m.short() for m in a.log if m.parent_id == mb], [])
        self.assertEqual([m.short() for m in b.log if m.parent_id == ma], [])
        self.assertEqual(a.run("x").result_text, "'in-one'")


class LifecycleTests(ServerTestCase):
    def test_interrupt_while_busy(self):
        kid = self.shared_kernel()
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                c = self.connect(kid, protocol=proto)
                mid = c.execute("import time\ntime.sleep(30)")
                c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 10)
                time.sleep(0.3)
                t0 = time.monotonic()
                r = self.server.request("POST", "/api/kernels/%s/interrupt" % kid)
                self.assertEqual(r.status, 204, r)
                res = c.collect(mid, 15)
                self.assertLess(time.monotonic() - t0, 10)
                self.assertEqual(res.reply.content["status"], "error", res.describe())
                self.assertEqual(res.reply.content["ename"], "KeyboardInterrupt")
                self.assertEqual(c.run("1+1").result_text, "2")
                c.close()

    def _restart_while_busy(self, proto):
        kid = self.shared_kernel("restart")
        c = self.connect(kid, protocol=proto)
        self.assertEqual(c.run("x = 42; x").result_text, "42")
        mid = c.execute("import time\ntime.sleep(30)")
        c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 10)
        box = {}
        th = threading.Thread(target=lambda: box.setdefault("r", self.server.request(
            "POST", "/api/kernels/%s/restart" % kid, timeout=90)))
        t0 = time.monotonic()
        th.start()
        seen = []
        while th.is_alive() and time.monotonic() - t0 < 60:
            seen += c.drain(0.2)
        th.join(30)
        self.server.snapshot_kernels()
        self.assertIn("r", box, "restart request did not return")
        self.assertEqual(box["r"].status, 200, box["r"])
        self.assertEqual(box["r"].json()["id"], kid)
        self.assertLess(time.monotonic() - t0, 30, "restart took too long")
        # No check for `status: restarting` here: jupyter-server sends it only for automatic
        # restarts, and @jupyterlab/services reads it as "auto-restarted by the server" (it
        # clears its state and reconnects once more); tests/js covers what that client sees.
        self.assertFalse(any(is_status(m, "dead") for m in seen),
                         "status: dead during a requested restart: %r" % [m.short() for m in seen])
        c.pending.clear()
        c.wait_ready(30)
        r = c.run("x")
        self.assertEqual(r.reply.content["status"], "error", r.describe())
        self.assertEqual(r.reply.content["ename"], "NameError", "state survived the restart")
        self.assertEqual(c.run("'back'").result_text, "'back'")
        self.assertEqual(self.server.get_json("/api/kernels/" + kid)["id"], kid)

    def test_restart_while_busy_v1(self):
        self._restart_while_busy("v1")

    def test_restart_while_busy_legacy(self):
        self._restart_while_busy("legacy")

    def test_kernel_death_auto_restart(self):
        # A profile whose import policy lets a cell reach os._exit.
        kid = self.server.start_kernel(PERMISSIVE_KERNEL)["id"]
        self.addCleanup(self._delete_quietly, kid)
        c = self.connect(kid)
        other = self.connect(kid, protocol="legacy")
        self.assertEqual(c.run("x = 1; x").result_text, "1")
        t0 = time.monotonic()
        c.execute("import os; os._exit(1)")
        for conn in (c, other):
            m = conn.wait_for(lambda m: m.msg_type == "status" and m.content.get(
                "execution_state") in ("dead", "restarting"), 20, "status dead/restarting")
            if not REFERENCE:
                self.assertLess(m["_t"] - t0, 3.0, "the kernel's exit was not noticed at once")
        self.server.snapshot_kernels()
        c.pending.clear()
        c.wait_ready(60)
        self.assertEqual(self.server.get_json("/api/kernels/" + kid)["id"], kid)
        r = c.run("x")
        self.assertEqual(r.reply.content["ename"], "NameError", r.describe())
        self.assertEqual(c.run("'alive'").result_text, "'alive'")
        other.pending.clear()
        other.wait_ready(30)
        self.assertEqual(other.run("2+2").result_text, "4")

    @sandcell_only
    def test_restart_limit(self):
        srv = harness.Server({"restart-limit": 1}, name="restartlimit").start()
        try:
            kid = srv.start_kernel(PERMISSIVE_KERNEL)["id"]
            c = srv.connect(kid)
            c.wait_ready()
            states = []
            for attempt in range(2):
                c.pending.clear()
                if attempt:
                    c.wait_ready(60)
                c.execute("import os; os._exit(3)")
                m = c.wait_for(lambda m: m.msg_type == "status" and m.content.get(
                    "execution_state") in ("dead", "restarting"), 20, "status dead/restarting")
                states.append(m.content["execution_state"])
            self.assertEqual(states[0], "restarting")
            if states[1] != "dead":
                c.wait_for(lambda m: is_status(m, "dead"), 20, "status dead after the limit")
            wait_until(lambda: srv.request("GET", "/api/kernels/" + kid).status == 404 or
                       srv.get_json("/api/kernels/" + kid)["execution_state"] == "dead", 20,
                       what="kernel reported dead or removed after the restart limit")
            c.close()
        finally:
            srv.stop()


class ReconnectTests(ServerTestCase):
    def _disconnect_during_cell(self, proto, lines=8, gap=0.25):
        kid = self.new_kernel()
        session = uuid.uuid4().hex
        c = self.connect(kid, protocol=proto, session_id=session)
        mid = c.execute(TICKS % (lines, gap))
        first = c.wait_for(lambda m: m.msg_type == "stream" and m.parent_id == mid, 10,
                           "first print")
        before = [m for m in c.log if m.parent_id == mid]
        c.close()
        return kid, session, mid, before

    def _collect_replay(self, c, mid, timeout=30):
        idle = c.wait_for(lambda m: is_status(m, "idle") and m.parent_id == mid, timeout,
                          "replayed idle of the cell run while disconnected")
        return [m for m in c.log if m.parent_id == mid], idle

    def _check_complete(self, before, after, lines):
        got = tick_numbers(before) + tick_numbers(after)
        self.assertEqual(got, list(range(lines)),
                         "output before disconnect %r + after reconnect %r" % (
                             tick_numbers(before), tick_numbers(after)))

    def test_reconnect_same_session_after_cell(self):
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                kid, session, mid, before = self._disconnect_during_cell(proto)
                wait_until(lambda: self.server.get_json("/api/kernels/" + kid)[
                    "execution_state"] == "idle", 20, what="cell finished while disconnected")
                time.sleep(0.3)
                c = self.connect(kid, protocol=proto, session_id=session, ready=False)
                after, _ = self._collect_replay(c, mid)
                self._check_complete(before, after, 8)
                c.wait_ready()
                self.assertEqual(c.run("'still works'").result_text, "'still works'")

    def test_reconnect_same_session_mid_cell(self):
        kid, session, mid, before = self._disconnect_during_cell("v1", lines=10, gap=0.3)
        time.sleep(1.0)
        c = self.connect(kid, session_id=session, ready=False)
        after, _ = self._collect_replay(c, mid)
        self._check_complete(before, after, 10)
        self.assertEqual(sorted(m["_t"] for m in after), [m["_t"] for m in after])
        c.wait_ready()
        self.assertEqual(c.run("'keeps executing'").result_text, "'keeps executing'")

    @sandcell_only
    def test_reply_follows_its_session_while_others_watch(self):
        # A page reloads mid-cell while another client stays connected, so nothing goes to
        # the replay buffer: the execute_reply must still reach the page's new connection
        # (same session_id), and only it.
        kid = self.new_kernel()
        watcher = self.connect(kid, session_id=uuid.uuid4().hex)
        session = uuid.uuid4().hex
        c = self.connect(kid, session_id=session)
        mid = c.execute("import time\ntime.sleep(1.5)\n6 * 7")
        c.wait_for(lambda m: is_status(m, "busy") and m.parent_id == mid, 10, "busy")
        c.close()
        again = self.connect(kid, session_id=session, ready=False)
        reply = again.wait_for(lambda m: m.msg_type == "execute_reply" and
                               m.parent_id == mid, 20, "the execute_reply after the reload")
        self.assertEqual(reply.channel, "shell")
        self.assertEqual(reply.content["status"], "ok")
        watcher.wait_for(lambda m: is_status(m, "idle") and m.parent_id == mid, 20,
                         "the watcher sees the cell end")
        watcher.drain(0.3)
        self.assertEqual([m for m in watcher.log if m.msg_type == "execute_reply" and
                          m.parent_id == mid], [], "a reply went to a client that did not ask")

    @sandcell_only
    def test_reconnect_other_session(self):
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                kid, session, mid, before = self._disconnect_during_cell(proto)
                wait_until(lambda: self.server.get_json("/api/kernels/" + kid)[
                    "execution_state"] == "idle", 20, what="cell finished while disconnected")
                # A browser reload: a new client session id.
                c = self.connect(kid, protocol=proto, session_id=uuid.uuid4().hex, ready=False)
                after, _ = self._collect_replay(c, mid)
                self._check_complete(before, after, 8)
                c.wait_ready()
                self.assertEqual(c.run("'works'").result_text, "'works'")

    @sandcell_only
    def test_reconnect_other_session_mid_cell(self):
        kid, session, mid, before = self._disconnect_during_cell("legacy", lines=10, gap=0.3)
        time.sleep(1.0)
        c = self.connect(kid, protocol="legacy", session_id=uuid.uuid4().hex, ready=False)
        after, _ = self._collect_replay(c, mid)
        self._check_complete(before, after, 10)

    @sandcell_only
    def test_no_replay_to_unauthorised_client(self):
        kid, session, mid, before = self._disconnect_during_cell("v1", lines=3, gap=0.1)
        with self.assertRaises(websocket.WebSocketBadStatusException):
            self.server.connect(kid, session_id=session, token="wrong").close()
        c = self.connect(kid, session_id=session, ready=False)
        after, _ = self._collect_replay(c, mid)
        self._check_complete(before, after, 3)


NOTICE = re.compile(r"(drop|discard|lost|omit|skip|overflow)", re.I)


def notices(msgs):
    """Stream (or other) messages that tell of dropped output and carry a number."""
    out = []
    for m in msgs:
        text = m.content.get("text") or ""
        if not text and m.msg_type not in ("stream", "status", "execute_result"):
            text = str(m.content)
        if NOTICE.search(text) and re.search(r"\d", text):
            out.append(m)
    return out


@sandcell_only
class ReplayCapTests(ServerTestCase):
    server_options = {"replay-cap": 65536}

    def test_over_cap_reports_dropped_output(self):
        kid = self.new_kernel()
        c = self.connect(kid)
        mid = c.execute("import time\ntime.sleep(0.5)\n"
                        "for i in range(3000):\n"
                        "    print('%05d ' % i + 'y' * 94)\n"
                        "print('END')\n")
        c.wait_for(lambda m: m.msg_type == "execute_input" and m.parent_id == mid, 10)
        c.close()
        wait_until(lambda: self.server.get_json("/api/kernels/" + kid)["execution_state"] ==
                   "idle", 30, what="cell finished while disconnected")
        c2 = self.connect(kid, session_id=uuid.uuid4().hex, ready=False)
        c2.wait_for(lambda m: is_status(m, "idle") and m.parent_id == mid, 30,
                    "replayed idle")
        got = c2.log
        text = "".join(m.content.get("text", "") for m in got
                       if m.msg_type == "stream" and m.content.get("name") == "stdout")
        self.assertTrue(text.endswith("END\n"), "newest output missing: %r" % text[-200:])
        self.assertLess(len(text), 2 * 65536 + 4096,
                        "replayed %d bytes of output with --replay-cap 65536" % len(text))
        nums = [int(x) for x in re.findall(r"^(\d{5}) y", text, re.M)]
        self.assertTrue(nums, "no numbered line replayed")
        self.assertEqual(nums, list(range(nums[0], 3000)),
                         "replayed lines are not the newest, in order")
        self.assertGreater(nums[0], 0, "nothing was dropped")
        found = notices(got)
        self.assertTrue(found, "no notice of dropped output in %r" % [m.short() for m in got
                                                                       if m.msg_type != "stream"
                                                                       ][:20])
        self.assertLess(got.index(found[0]),
                        next(i for i, m in enumerate(got) if m.msg_type == "stream" and
                             "y" * 20 in m.content.get("text", "")),
                        "the notice should come before the replayed output")


@sandcell_only
class SlowClientTests(ServerTestCase):
    server_options = {"ws-queue-cap": 262144}

    def test_slow_client_overflow_is_reported_and_isolated(self):
        slow_kid = self.new_kernel()
        fast_kid = self.new_kernel()
        slow = self.connect(slow_kid, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        fast = self.connect(fast_kid)
        total_lines = 40000
        mid = slow.execute("import sys\n"
                           "for i in range(%d):\n"
                           "    sys.stdout.write('%%06d ' %% i + 'z' * 193 + '\\n')\n"
                           "sys.stdout.flush()\nprint('DONE')\n" % total_lines)
        # While the slow client reads nothing, other sessions and REST go on at full speed.
        t0 = time.monotonic()
        for i in range(5):
            t = time.monotonic()
            self.assertEqual(fast.run("%d + 1" % i, timeout=10).result_text, str(i + 1))
            self.assertLess(time.monotonic() - t, 3.0, "an execute on another kernel was "
                            "slowed down by a stalled client")
            self.assertEqual(self.server.request("GET", "/api/kernels", timeout=5).status, 200)
        wait_until(lambda: self.server.get_json("/api/kernels/" + slow_kid)[
            "execution_state"] == "idle", 60, what="the flooding cell finished")
        self.assertLess(time.monotonic() - t0, 60)
        # Now read everything the slow client was sent.
        r = slow.collect(mid, 60)
        got_lines = len(re.findall(r"^\d{6} z", r.stdout, re.M))
        self.assertLess(got_lines, total_lines, "nothing was dropped for the stalled client")
        self.assertTrue(notices(r.iopub), "output was dropped for the slow client without a "
                        "notice: %r" % [m.short() for m in r.iopub if m.msg_type != "stream"
                                        ][:20])
        self.assertEqual(r.reply.content["status"], "ok")
        self.assertEqual(slow.run("'recovered'").result_text, "'recovered'")


@sandcell_only
class KeepAliveTests(ServerTestCase):
    server_options = {"ping-interval": 1}

    def test_server_pings(self):
        c = self.connect(self.shared_kernel())
        c.ws.settimeout(5)
        deadline = time.monotonic() + 5
        pinged = False
        while time.monotonic() < deadline and not pinged:
            try:
                opcode, _ = c.ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                break
            pinged = opcode == websocket.ABNF.OPCODE_PING
        self.assertTrue(pinged, "no WebSocket ping within 5 s with --ping-interval 1")
        self.assertEqual(c.run("3*3").result_text, "9")


if __name__ == "__main__":
    harness.main()
