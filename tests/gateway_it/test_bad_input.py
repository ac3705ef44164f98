"""Bad input: each bad frame or body gets a clear error (an error message, a WebSocket close
with a code, or a JSON error body), and afterwards another session on the same server still
executes code correctly.

The "clear error" half is sandcell's specification (jupyter-server mostly drops the
connection or ignores the input); the "others still work" half is checked against both.

    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/test_bad_input.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/test_bad_input.py
"""

import json
import os
import socket
import struct
import sys
import time
import unittest
import uuid

import websocket

import harness
from harness import (REFERENCE, FramingError, KernelWS, ServerTestCase, WSClosed, WSTimeout,
                     is_status, legacy_encode, sandcell_only, v1_encode)

MAX_FRAME = 1024 * 1024
TEXT = websocket.ABNF.OPCODE_TEXT
BINARY = websocket.ABNF.OPCODE_BINARY


def j(x):
    return json.dumps(x).encode()


def header(msg_type="execute_request", **over):
    h = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "gwit",
         "session": uuid.uuid4().hex, "date": harness.now_iso(), "version": "5.3"}
    h.update(over)
    return h


EXEC_CONTENT = {"code": "1", "silent": False, "store_history": False, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True}


def v1_parts(hdr=None, parent=None, meta=None, content=None):
    return [j(header() if hdr is None else hdr), j(parent or {}), j(meta or {}),
            j(EXEC_CONTENT if content is None else content)]


def legacy_msg(**over):
    d = {"header": header(), "parent_header": {}, "metadata": {}, "content": EXEC_CONTENT,
         "channel": "shell"}
    d.update(over)
    return d


def is_error_message(m):
    c = m.content
    if m.msg_type and (m.msg_type == "error" or m.msg_type.endswith("_error")):
        return True
    if c.get("status") == "error":
        return True
    return m.msg_type == "stream" and c.get("name") == "stderr"


class BadInputTests(ServerTestCase):
    server_options = {"max-ws-frame": MAX_FRAME}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.witness_kernel = cls.server.start_kernel()["id"]
        cls.victim_kernel = cls.server.start_kernel()["id"]
        cls.witness = KernelWS(cls.server, cls.witness_kernel)
        cls.witness.wait_ready()
        cls.witness_runs = 0

    @classmethod
    def tearDownClass(cls):
        cls.witness.close()
        super().tearDownClass()

    # -- helpers ------------------------------------------------------------------------

    def victim(self, protocol="v1"):
        return self.connect(self.victim_kernel, protocol=protocol)

    def outcome(self, c, timeout=5.0):
        """What the server did about the bad input: ('closed', code, reason),
        ('error', description) or ('nothing', seen)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return ("nothing", seen)
            try:
                opcode, data = c.recv_frame(left)
            except WSTimeout:
                return ("nothing", seen)
            except WSClosed as e:
                return ("closed", e.code, e.reason)
            try:
                m = c.decode(opcode, data)
            except (FramingError, ValueError, UnicodeDecodeError):
                text = bytes(data).decode("utf-8", "replace") if isinstance(
                    data, (bytes, bytearray)) else str(data)
                if "error" in text.lower() or "message" in text.lower():
                    return ("error", "undecodable frame %r" % text[:200])
                seen.append("undecodable %r" % text[:80])
                continue
            if is_error_message(m):
                return ("error", m.short() + " " + json.dumps(m.content)[:300])
            seen.append(m.short())

    def assert_clear_error(self, c, what, timeout=5.0):
        """sandcell: the bad input got an error message or a close with a code. Reference:
        whatever jupyter-server did is only drained."""
        if REFERENCE:
            return self.outcome(c, 0.3)
        o = self.outcome(c, timeout)
        if os.environ.get("SANDCELL_GW_VERBOSE"):
            sys.stderr.write("\n    [%s] -> %r\n" % (what, o))
        if o[0] == "closed":
            self.assertIsNotNone(o[1], "%s: connection dropped without a close frame" % what)
            self.assertNotIn(o[1], (1005, 1006), "%s: close without a code" % what)
            if o[1] == 1000:
                self.assertTrue(o[2], "%s: normal close (1000) without a reason" % what)
            return o
        self.assertEqual(o[0], "error", "%s: no error and no close within %.0fs; got %r"
                         % (what, timeout, o[1]))
        return o

    def assert_others_work(self, fresh_victim=False):
        cls = type(self)
        cls.witness_runs += 1
        n = cls.witness_runs
        self.assertEqual(self.server.request("GET", "/api", timeout=10).status, 200)
        r = cls.witness.run("sum(range(%d))" % n, timeout=30)
        self.assertEqual(r.reply.content["status"], "ok", r.describe())
        self.assertEqual(r.result_text, str(sum(range(n))), r.describe())
        if fresh_victim:
            c = self.victim("legacy")
            self.assertEqual(c.run("'victim ok'").result_text, "'victim ok'")
            c.close()

    def bad_frames(self, protocol, frames, **kw):
        """Sends each (label, payload, opcode[, breaks_reference]) on its own connection and
        checks the outcome. Frames marked breaks_reference are not sent to jupyter-server:
        it tries to allocate what the offset count says and hangs at 100 % CPU."""
        for label, payload, opcode, *rest in frames:
            if REFERENCE and rest and rest[0]:
                continue
            with self.subTest(protocol=protocol, frame=label):
                c = self.victim(protocol)
                c.send_raw(payload, opcode)
                self.assert_clear_error(c, label, **kw)
                c.close()
                self.assert_others_work()
        self.assert_others_work(fresh_victim=True)

    # -- WebSocket ------------------------------------------------------------------------

    def test_malformed_json_text_frame(self):
        self.bad_frames("legacy", [
            ("truncated JSON", b'{"header": {"msg_id": "x", ', TEXT),
            ("not JSON", b"hello kernel", TEXT),
            ("JSON array", b"[1, 2, 3]", TEXT),
            ("JSON string", b'"shell"', TEXT),
            ("empty text frame", b"", TEXT),
        ])

    def test_malformed_json_in_v1_parts(self):
        hdr = header()
        self.bad_frames("v1", [
            ("header not JSON", v1_encode("shell", [b"{bad json"] + v1_parts()[1:]), BINARY),
            ("content not JSON", v1_encode("shell", v1_parts()[:3] + [b"{\"code\": "]),
             BINARY),
            ("header not UTF-8", v1_encode("shell", [b'{"msg_id": "\xff\xfe"}'] +
                                           v1_parts()[1:]), BINARY),
            ("header a JSON array", v1_encode("shell", [b"[]"] + v1_parts(hdr)[1:]), BINARY),
            ("text frame on a v1 connection", j(legacy_msg()), TEXT),
        ])

    def test_unknown_channel(self):
        self.bad_frames("legacy", [
            ("legacy channel 'bogus'", j(legacy_msg(channel="bogus")), TEXT),
            ("legacy channel not a string", j(legacy_msg(channel=5)), TEXT),
        ])
        self.bad_frames("v1", [
            ("v1 channel 'bogus'", v1_encode("bogus", v1_parts()), BINARY),
            ("v1 empty channel", v1_encode("", v1_parts()), BINARY),
            ("v1 channel not UTF-8", v1_encode(b"\xff\xfe", v1_parts()), BINARY),
        ])

    def test_missing_header_fields(self):
        no_type = header()
        del no_type["msg_type"]
        no_id = header()
        del no_id["msg_id"]
        d = legacy_msg()
        del d["header"]
        self.bad_frames("legacy", [
            ("legacy without header", j(d), TEXT),
            ("legacy header {}", j(legacy_msg(header={})), TEXT),
            ("legacy header without msg_type", j(legacy_msg(header=no_type)), TEXT),
            ("legacy header a string", j(legacy_msg(header="x")), TEXT),
        ])
        self.bad_frames("v1", [
            ("v1 header {}", v1_encode("shell", v1_parts(hdr={})), BINARY),
            ("v1 header without msg_type", v1_encode("shell", v1_parts(hdr=no_type)), BINARY),
            ("v1 header without msg_id", v1_encode("shell", v1_parts(hdr=no_id)), BINARY),
            ("v1 msg_type not a string", v1_encode("shell", v1_parts(
                hdr=header(msg_type=7))), BINARY),
        ])

    def test_oversized_frame(self):
        pad = "p" * (MAX_FRAME + MAX_FRAME // 2)
        frames_v1 = [("v1 frame over --max-ws-frame", v1_encode(
            "shell", v1_parts(meta={"pad": pad})), BINARY)]
        frames_legacy = [("legacy frame over --max-ws-frame",
                          j(legacy_msg(metadata={"pad": pad})), TEXT)]
        self.bad_frames("v1", frames_v1, timeout=15)
        self.bad_frames("legacy", frames_legacy, timeout=15)

    def test_oversized_fragmented_message(self):
        c = self.victim("legacy")
        body = j(legacy_msg(metadata={"pad": "q" * (MAX_FRAME + 4096)}))
        step = 256 * 1024
        chunks = [body[i:i + step] for i in range(0, len(body), step)]
        try:
            for i, chunk in enumerate(chunks):
                frame = websocket.ABNF.create_frame(
                    chunk, TEXT if i == 0 else websocket.ABNF.OPCODE_CONT,
                    fin=1 if i == len(chunks) - 1 else 0)
                c.ws.send_frame(frame)
        except (OSError, websocket.WebSocketException):
            pass  # the server may close before the last fragment
        self.assert_clear_error(c, "fragmented message over --max-ws-frame", timeout=15)
        c.close()
        self.assert_others_work(fresh_victim=True)

    def test_frame_under_the_cap_works(self):
        c = self.victim("v1")
        mid = c.send("shell", "execute_request", dict(EXEC_CONTENT, code="'big ok'"),
                     metadata={"pad": "m" * (MAX_FRAME - 64 * 1024)})
        r = c.collect(mid, 30)
        self.assertEqual(r.result_text, "'big ok'", r.describe())

    def test_non_utf8_text_frame(self):
        self.bad_frames("legacy", [
            ("invalid UTF-8", b'{"channel": "shell", "x": "\xff\xfe\xfd"}', TEXT),
            ("overlong encoding", b'{"a": "\xc0\xaf"}', TEXT),
            ("UTF-16 surrogate", b'{"a": "\xed\xa0\x80"}', TEXT),
        ])

    @sandcell_only
    def test_error_goes_only_to_the_offender(self):
        observer = self.victim("v1")
        bad = self.victim("legacy")
        bad.send_raw(b"{not json", TEXT)
        self.assert_clear_error(bad, "malformed JSON")
        seen = observer.drain(1.0)
        self.assertEqual([m.short() for m in seen if is_error_message(m)], [],
                         "another client of the same kernel got the offender's error")
        self.assertEqual(observer.run("'observer ok'").result_text, "'observer ok'")

    def test_unknown_msg_type(self):
        # Unknown message types may be forwarded (the kernel ignores them) or refused with an
        # error; either way the connection and every other session keep working.
        for proto in ("v1", "legacy"):
            with self.subTest(protocol=proto):
                c = self.victim(proto)
                c.send("shell", "gwit_bogus_request", {"x": 1})
                c.send("control", "gwit_bogus_request", {"x": 1})
                c.send("shell", "execute_reply", {"status": "ok"})
                o = self.outcome(c, 1.5)
                self.assertNotEqual(o[0], "closed", "the connection was closed for an unknown "
                                    "message type: %r" % (o,))
                c.pending.clear()
                self.assertEqual(c.run("'same connection ok'").result_text,
                                 "'same connection ok'")
                c.close()
        self.assert_others_work(fresh_victim=True)

    def test_wrong_content_types(self):
        # Well-framed messages whose content is wrong for their type: no crash anywhere.
        for content in ([1, 2], {"code": 5}, {"code": None, "silent": "yes"}, "text"):
            with self.subTest(content=content):
                c = self.victim("v1")
                c.send("shell", "execute_request", content)
                self.outcome(c, 1.0)
                c.close()
                self.assert_others_work()
        self.assert_others_work(fresh_victim=True)

    def _v1_bad(self):
        good = v1_encode("shell", v1_parts())
        n = struct.unpack_from("<Q", good)[0]
        offs = list(struct.unpack_from("<%dQ" % n, good, 8))
        body = good[8 * (1 + n):]

        def frame(count, offsets, rest=body):
            return struct.pack("<Q", count) + struct.pack("<%dQ" % len(offsets), *offsets) + rest

        return [
            ("empty binary frame", b"", BINARY),
            ("3 bytes", b"\x01\x02\x03", BINARY),
            ("offset count 0", struct.pack("<Q", 0), BINARY),
            ("offset count 1", frame(1, [16], b""), BINARY),
            ("offset count 2^60", struct.pack("<Q", 1 << 60) + bytes(64), BINARY, True),
            ("offset count 2^64-1", struct.pack("<Q", (1 << 64) - 1) + bytes(64), BINARY,
             True),
            ("offset table longer than frame", frame(n, offs[:2], b""), BINARY),
            ("first offset wrong", frame(n, [0] + offs[1:]), BINARY),
            ("first offset inside the table", frame(n, [8] + offs[1:]), BINARY),
            ("offsets decreasing", frame(n, [offs[0], offs[2], offs[1]] + offs[3:]), BINARY),
            ("offset past the end", frame(n, offs[:-2] + [offs[-1] + 1000, offs[-1]]),
             BINARY),
            ("last offset short of the end", frame(n, offs[:-1] + [offs[-1] - 1]), BINARY),
            ("last offset past the end", frame(n, offs[:-1] + [offs[-1] + 1]), BINARY),
            ("offset 2^64-1", frame(n, offs[:-2] + [(1 << 64) - 1, offs[-1]]), BINARY),
            ("only two parts", v1_encode("shell", v1_parts()[:2]), BINARY),
        ]

    def test_bad_v1_offsets(self):
        self.bad_frames("v1", self._v1_bad())

    def test_bad_legacy_binary_offsets(self):
        op, good = legacy_encode(legacy_msg(), [b"abc"])
        self.bad_frames("legacy", [
            ("nbufs 0", struct.pack(">I", 0) + good[4:], BINARY),
            ("nbufs huge", struct.pack(">I", 0xFFFFFFFF) + good[4:], BINARY),
            ("offset past the end", good[:8] + struct.pack(">I", len(good) + 50) + good[12:],
             BINARY),
            ("json offset wrong", good[:4] + struct.pack(">I", 0) + good[8:], BINARY),
            ("2 bytes", b"\x00\x01", BINARY),
        ])

    def test_flood_of_bad_frames(self):
        c = self.victim("legacy")
        t0 = time.monotonic()
        sent = 0
        try:
            for i in range(300):
                c.send_raw(b"{garbage %d" % i, TEXT)
                sent += 1
        except (OSError, websocket.WebSocketException):
            pass
        if not REFERENCE:
            self.assert_clear_error(c, "a flood of malformed frames")
        c.close()
        self.assertLess(time.monotonic() - t0, 30)
        self.assert_others_work(fresh_victim=True)

    @sandcell_only
    def test_garbage_from_kernel(self):
        # The kernel itself publishes a message whose content is not JSON: only its own
        # session may suffer, and it keeps working.
        for proto in ("v1", "legacy"):
            with self.subTest(protocol=proto):
                c = self.victim(proto)
                mid = c.execute("import _sandcell\n"
                                "_sandcell.publish('stream', '{not json')\n"
                                "_sandcell.publish('display_data', '\\xff')\n"
                                "_sandcell.publish('', '{}')\n"
                                "print('after garbage')\n")
                deadline = time.monotonic() + 20
                idle = False
                while not idle and time.monotonic() < deadline:
                    try:
                        opcode, data = c.recv_frame(deadline - time.monotonic())
                    except WSTimeout:
                        break
                    try:
                        m = c.decode(opcode, data)
                    except (FramingError, ValueError, UnicodeDecodeError):
                        continue
                    idle = is_status(m, "idle") and m.parent_id == mid
                self.assertTrue(idle, "no idle after the kernel published garbage")
                self.assertEqual(c.run("'kernel session ok'").result_text,
                                 "'kernel session ok'")
                c.close()
                self.assert_others_work()

    # -- handshake -------------------------------------------------------------------------

    def test_websocket_handshake_errors(self):
        with self.assertRaises(websocket.WebSocketBadStatusException) as cm:
            KernelWS(self.server, None, path="/api/kernels/00000000-0000-4000-8000-"
                     "000000000000/channels").close()
        self.assertEqual(cm.exception.status_code, 404)
        with self.assertRaises(websocket.WebSocketBadStatusException) as cm:
            KernelWS(self.server, None,
                     path="/api/kernels/%s/channelsX" % self.victim_kernel).close()
        self.assertIn(cm.exception.status_code, (400, 404))
        self.assert_others_work()

    # -- REST --------------------------------------------------------------------------------

    def test_garbage_rest_bodies(self):
        sid = None
        r = self.server.request("POST", "/api/sessions", body={
            "path": "bad-input.ipynb", "type": "notebook",
            "kernel": {"id": self.victim_kernel}})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["id"]
        cases = [("POST", "/api/kernels", b"{garbage"),
                 ("POST", "/api/kernels", b"\x00\x01\x02\xff" * 100),
                 ("POST", "/api/sessions", b"{garbage"),
                 ("POST", "/api/sessions", b"\xff\xfe"),
                 ("PATCH", "/api/sessions/" + sid, b"{garbage")]
        before = sorted(self.server.kernel_ids())
        for method, path, raw in cases:
            with self.subTest(method=method, path=path, raw=raw[:10]):
                r = self.server.request(method, path, raw=raw,
                                        headers={"Content-Type": "application/json"})
                if REFERENCE:
                    self.assertGreaterEqual(r.status, 400, r)
                else:
                    self.assert_error_json(r, 400)
                self.assert_others_work()
        self.assertEqual(sorted(self.server.kernel_ids()), before)
        # Removing the session must not take the victim kernel along for the next tests.
        self.server.request("PATCH", "/api/sessions/" + sid, body={"path": "x"})

    @sandcell_only
    def test_huge_rest_body_413(self):
        big = b"{" + b" " * (8 * 1024 * 1024) + b"}"
        for path in ("/api/kernels", "/api/sessions"):
            with self.subTest(path=path):
                try:
                    r = self.server.request("POST", path, raw=big,
                                            headers={"Content-Type": "application/json"})
                    self.assert_error_json(r, 413)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may answer 413 and close before reading it all
                self.assert_others_work()
        # Chunked upload without a length: bounded too.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(("POST /api/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Authorization: token %s\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n" % self.server.token).encode())
            status = None
            try:
                for _ in range(40):
                    s.sendall(b"40000\r\n" + b" " * 0x40000 + b"\r\n")
            except OSError:
                pass
            s.settimeout(10)
            try:
                data = s.recv(4096)
                status = data.split(b"\r\n")[0].decode(errors="replace")
            except OSError:
                pass
        if status:
            self.assertRegex(status, r"^HTTP/1\.[01] (400|411|413|501)")
        self.assert_others_work()

    def _raw_http(self, payload, timeout=5.0):
        """Sends raw bytes; returns the status line, '' if the server closed without one, or
        None if it neither answered nor closed within timeout."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=timeout) as s:
            try:
                s.sendall(payload)
            except OSError:
                return ""
            data = b""
            deadline = time.monotonic() + timeout
            while b"\r\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    return None
                except OSError:
                    return ""
                if not chunk:
                    return data.decode(errors="replace")
                data += chunk
            return data.split(b"\r\n")[0].decode(errors="replace")

    def test_garbage_http(self):
        cases = [
            ("request line garbage", b"GARBAGE\r\n\r\n"),
            ("binary junk", bytes(range(256)) * 4 + b"\r\n\r\n"),
            ("TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)
             + b"\r\n\r\n"),
            ("huge header", b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
             b"a" * 200000 + b"\r\n\r\n"),
            ("huge request line", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n"),
            ("negative content-length", b"POST /api/kernels HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: -5\r\n\r\n"),
        ]
        for label, payload in cases:
            with self.subTest(case=label):
                line = self._raw_http(payload)
                self.assertIsNotNone(line, "%s: neither an answer nor a close within 5 s"
                                     % label)
                if line and not REFERENCE:
                    self.assertRegex(line, r"^HTTP/1\.[01] [45]\d\d", label)
                self.assert_others_work()

    def test_half_open_connections(self):
        # Connections that send half a request and stall must not block anyone.
        socks = []
        try:
            for i in range(20):
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                s.sendall(b"GET /api/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            t0 = time.monotonic()
            self.assert_others_work()
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    harness.main()
