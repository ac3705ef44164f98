#!/usr/bin/python3
"""Writes the WebSocket cases valid/ws-* and invalid/ws-* (run once; the output is checked in).

Run it with Debian's /usr/bin/python3 with python3-jupyter-server installed: the frames a
client sends and the frames jupyter_server writes are made by jupyter_server's own functions
(serialize_binary_message, serialize_msg_to_ws_v1, Session.deserialize) and the expected
parts come from its deserializers. With JLAB_SERVICES=<dir of an unpacked
@jupyterlab/services package> (and NODE_PATH so that it finds @lumino/coreutils) it also
writes ws-decode-jlab-* cases with frames made by JupyterLab's lib/kernel/serialize.js under node;
without it the ws-decode-jlab-* cases already present are kept.

A case directory holds, besides `expect` ("name value" lines) and an optional `limits`:
- direction decode (a frame from a client): frame-00 is the frame; a valid case also has
  part-header, part-parent, part-metadata, part-content and buffer-NN, what the decoder must
  give (legacy: the JSON that jansson re-serialises compactly, compared after the C test
  parses and dumps it the same way; v1: the exact bytes);
- direction encode (a kernel message for a client): in-header, in-parent, in-metadata,
  in-content and in-buffer-NN are the parts; in a valid case frame-00 is what jupyter_server
  writes for them (v1: byte for byte; legacy: the same JSON, compared after parsing).
Keys of expect: kind ws, result (0 or an errno name), direction, framing (legacy|v1), binary
(the frame type given, or expected), channel, msg_id, msg_type, buffers.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session, json_packer
from jupyter_server.base.zmqhandlers import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = ("header", "parent", "metadata", "content")
MSG_KEYS = ("header", "parent_header", "metadata", "content")
DATE = "2026-11-26T09:30:27.123456Z"  # six digits: Python's extract_dates keeps it as it is
SESSION = Session(key=b"", packer="json")


def header(msg_type="execute_request", msg_id="c0ffee-1", **extra):
    h = {"msg_id": msg_id, "username": "u", "session": "s-1", "date": DATE, "msg_type": msg_type,
         "version": "5.3"}
    h.update(extra)
    return h


def message(msg_type="execute_request", msg_id="c0ffee-1", content=None, parent=None, metadata=None,
            channel="shell", buffers=(), **extra):
    """A message dict as a client holds it (legacy keys)."""
    return {"header": header(msg_type, msg_id, **extra), "msg_id": msg_id, "msg_type": msg_type,
            "parent_header": parent if parent is not None else {},
            "metadata": metadata if metadata is not None else {},
            "content": content if content is not None else {}, "buffers": list(buffers),
            "channel": channel}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                      default=json_default).encode()


def write(kind, name, expect, files, limits=None):
    d = os.path.join(HERE, kind, "ws-" + name)
    os.makedirs(d)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as fh:
            fh.write(data)
    if limits:
        with open(os.path.join(d, "limits"), "w") as fh:
            for k, v in limits.items():
                fh.write("%s %d\n" % (k, v))
    with open(os.path.join(d, "expect"), "w") as fh:
        fh.write("kind ws\n")
        for k, v in expect:
            fh.write("%s %s\n" % (k, v))


def legacy_expect(frame, binary):
    """What jupyter_server reads from a client's legacy frame: channel, four parts, buffers."""
    if binary or frame[:1] == b"\x00":
        msg = deserialize_binary_message(frame)
        blob_end = struct.unpack("!I", frame[8:12])[0] if len(msg["buffers"]) else len(frame)
        raw = json.loads(frame[4 * (struct.unpack("!I", frame[:4])[0] + 1):blob_end])
        bufs = [bytes(b) for b in msg["buffers"]]
    else:
        raw = json.loads(frame)
        bufs = []
    channel = raw.get("channel") or "shell"
    parts = [compact(raw.get(k) or {}) for k in MSG_KEYS]
    return channel, raw["header"], parts, bufs


def v1_expect(frame):
    channel, parts = deserialize_msg_from_ws_v1(frame)
    return channel, json.loads(parts[0]), list(parts[:4]), list(parts[4:])


def decode_ok(name, framing, frame, binary, limits=None, **more):
    """A frame the decoder must accept; the expectations come from jupyter_server's decoder."""
    if framing == "v1":
        channel, hdr, parts, bufs = v1_expect(frame)
    else:
        channel, hdr, parts, bufs = legacy_expect(frame, binary)
    files = {"frame-00": frame}
    for p, data in zip(PARTS, parts):
        files["part-" + p] = data
    for i, b in enumerate(bufs):
        files["buffer-%02d" % i] = b
    expect = [("result", "0"), ("direction", "decode"), ("framing", framing),
              ("binary", int(binary)), ("channel", channel), ("msg_id", hdr["msg_id"]),
              ("msg_type", hdr["msg_type"]), ("buffers", len(bufs))] + list(more.items())
    write("valid", "decode-" + name, expect, files, limits)


def decode_bad(name, framing, frame, binary, result="EBADMSG", limits=None):
    expect = [("result", result), ("direction", "decode"), ("framing", framing),
              ("binary", int(binary))]
    write("invalid", "decode-" + name, expect, {"frame-00": frame}, limits)


def parts_of(msg):
    return [json_packer(msg[k]) for k in MSG_KEYS]


def server_frame(framing, parts, bufs, channel):
    """What jupyter_server 1.23's ZMQStreamHandler._on_zmq_reply writes for a kernel message."""
    if framing == "v1":
        return serialize_msg_to_ws_v1(list(parts) + list(bufs), channel), True
    # _reserialize_reply(): Session.deserialize, add the channel, then binary or JSON.
    msg = SESSION.deserialize([b""] + list(parts) + list(bufs))
    msg["channel"] = channel
    if msg["buffers"]:
        return serialize_binary_message(msg), True
    return json.dumps(msg, default=json_default).encode(), False


def encode_files(parts, bufs):
    files = {}
    for p, data in zip(PARTS, parts):
        files["in-" + p] = data
    for i, b in enumerate(bufs):
        files["in-buffer-%02d" % i] = b
    return files


def encode_ok(name, framing, parts, bufs=(), channel="iopub"):
    frame, binary = server_frame(framing, parts, bufs, channel)
    files = encode_files(parts, bufs)
    files["frame-00"] = frame
    expect = [("result", "0"), ("direction", "encode"), ("framing", framing),
              ("binary", int(binary)), ("channel", channel), ("buffers", len(bufs))]
    write("valid", "encode-" + name, expect, files)


def encode_bad(name, framing, parts, bufs=(), channel="iopub"):
    expect = [("result", "EBADMSG"), ("direction", "encode"), ("framing", framing),
              ("channel", channel), ("buffers", len(bufs))]
    write("invalid", "encode-" + name, expect, encode_files(parts, bufs))


def v1_frame(chunks, count=None, offsets=None, tail=b""):
    """A v1 frame of raw chunks (channel first) with the given or the right offsets."""
    if offsets is None:
        offsets = [8 * (len(chunks) + 2)]
        for c in chunks:
            offsets.append(offsets[-1] + len(c))
    if count is None:
        count = len(offsets)
    return struct.pack("<Q", count) + b"".join(struct.pack("<Q", o) for o in offsets) + \
        b"".join(chunks) + tail


def legacy_binary(blob, bufs, count=None, offsets=None):
    if offsets is None:
        offsets = [4 * (len(bufs) + 2)]
        for c in [blob] + list(bufs[:-1]):
            offsets.append(offsets[-1] + len(c))
    if count is None:
        count = len(offsets)
    return struct.pack("!I", count) + b"".join(struct.pack("!I", o) for o in offsets) + blob + \
        b"".join(bufs)


def valid_decode():
    m = message(content={"code": "print('h\u00e9 \u2603 \U0001F600')", "silent": False})
    # What jupyter_server in gateway mode forwards from a browser, and websocket-client scripts send.
    decode_ok("legacy-text-python", "legacy", json.dumps(m, default=json_default).encode(), False)
    m = message("kernel_info_request")
    for k in ("channel", "buffers", "parent_header", "metadata", "msg_id", "msg_type"):
        del m[k]
    decode_ok("legacy-text-minimal", "legacy", json.dumps(m).encode(), False)
    m = message("interrupt_request", channel=None)
    decode_ok("legacy-text-null-channel", "legacy", json.dumps(m).encode(), False)
    m = message("shutdown_request", channel="control", content={"restart": False})
    decode_ok("legacy-text-control", "legacy", json.dumps(m).encode(), False)
    m = message("input_reply", channel="stdin", content={"value": "42"},
                parent=header("input_request", "req-1"))
    decode_ok("legacy-text-stdin", "legacy", json.dumps(m).encode(), False)
    m = message(content={"code": "1"})
    m.update(msg_id="top-level-is-ignored", msg_type="also", extra_top=[1, 2], session="x")
    m["parent_header"] = None
    m["metadata"] = None
    decode_ok("legacy-text-extra-keys-and-nulls", "legacy", json.dumps(m).encode(), False)
    m = message(content={"text": "a\u0000b", "esc": "\\/\b\f\n\r\t\u0001"})
    del m["header"]["date"]
    decode_ok("legacy-text-no-date-escapes", "legacy", json.dumps(m, ensure_ascii=True).encode(),
              False)
    m = message(content={"k%d" % i: [i, {"n": None}] for i in range(20)})
    decode_ok("legacy-text-pretty", "legacy", json.dumps(m, indent=2).encode(), False)
    m = message("comm_msg", content={"comm_id": "w1", "data": {"buffer_paths": [["x"], ["y"]]}},
                buffers=[b"\x00\x01\x02\xff", b""])
    frame = serialize_binary_message(m)
    decode_ok("legacy-binary-python", "legacy", frame, True)
    # jupyter_server 1.x in gateway mode forwards a browser's binary frame as a text frame.
    decode_ok("legacy-binary-sent-as-text", "legacy", frame, False)
    m = message("comm_msg", buffers=[])
    decode_ok("legacy-binary-no-buffers", "legacy", serialize_binary_message(m), True)
    m = message("comm_msg", buffers=["ignored"])
    blob = json.dumps(m)
    decode_ok("legacy-binary-buffers-key-ignored", "legacy",
              legacy_binary(blob.encode(), [b"x" * 5]), True)

    pack = SESSION.pack
    m = message(content={"code": "print('h\u00e9')", "silent": False})
    decode_ok("v1-python", "v1", serialize_msg_to_ws_v1(m, "shell", pack), True)
    m = message("comm_msg", content={"comm_id": "w1"})
    decode_ok("v1-python-buffers", "v1",
              serialize_msg_to_ws_v1(parts_of(m) + [b"\x00\xff", b"", b"abc"], "shell"), True)
    m = message("interrupt_request")
    decode_ok("v1-control", "v1", serialize_msg_to_ws_v1(m, "control", pack), True)
    m = message("input_reply", content={"value": ""})
    decode_ok("v1-stdin", "v1", serialize_msg_to_ws_v1(m, "stdin", pack), True)
    parts = [b' \n{"msg_id":"1","msg_type":"t","date":"x"}\t', b"{ }", b'{"a":[1,2.50,-0]}',
             b'{"text":"\\u00e9\\ud83d\\ude00\\u0000"}']
    decode_ok("v1-parts-kept-verbatim", "v1", serialize_msg_to_ws_v1(parts, "shell"), True)
    parts = [b'{"msg_id":"1","msg_type":"t"}', b"{}", b"{}", b"{}"]
    frame = serialize_msg_to_ws_v1(parts + [b"1234"], "shell")
    limits = {"max_frames": 7, "max_json_frame": len(parts[0]), "max_buffer": 4,
              "max_total": len(frame)}
    decode_ok("v1-exactly-at-every-limit", "v1", frame, True, limits)
    parts = [b'{"msg_id":"' + b"i" * 127 + b'","msg_type":"' + b"t" * 63 + b'"}', b"{}", b"{}", b"{}"]
    decode_ok("v1-longest-ids", "v1", serialize_msg_to_ws_v1(parts, "shell"), True)


def invalid_decode():
    good = json.loads(json.dumps(message(content={"code": "1"})))

    def text(name, obj_or_bytes, result="EBADMSG", limits=None):
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
        decode_bad("legacy-text-" + name, "legacy", data, False, result, limits)

    def with_(**kw):
        m = json.loads(json.dumps(good))
        for k, v in kw.items():
            if v is DROP:
                del m[k]
            else:
                m[k] = v
        return m

    def hdr(**kw):
        h = dict(good["header"])
        for k, v in kw.items():
            if v is DROP:
                del h[k]
            else:
                h[k] = v
        return with_(header=h)

    text("empty", b"")
    text("not-json", b"hello")
    text("array", b"[1,2]")
    text("string", b'"x"')
    text("trailing-garbage", json.dumps(good).encode() + b" {}")
    text("invalid-utf8", json.dumps(good).encode().replace(b'"1"', b'"\xff"'))
    text("lone-surrogate-escape", json.dumps(good).encode().replace(b'"1"', b'"\\ud800"'))
    text("raw-nul-after-number", b'{"header":{"msg_id":"1","msg_type":"t"},"content":{"a":1\x00}}')
    text("duplicate-keys", b'{"header":{"msg_id":"1","msg_type":"t"},"header":{}}')
    text("no-header", with_(header=DROP))
    text("header-null", with_(header=None))
    text("header-array", with_(header=["msg_id", "msg_type"]))
    text("header-no-msg-id", hdr(msg_id=DROP))
    text("header-no-msg-type", hdr(msg_type=DROP))
    text("header-msg-type-number", hdr(msg_type=5))
    text("header-msg-id-null", hdr(msg_id=None))
    text("header-msg-id-nul", hdr(msg_id="a\u0000b"))
    text("header-msg-id-too-long", hdr(msg_id="i" * 128))
    text("header-msg-type-too-long", hdr(msg_type="t" * 64))
    text("parent-string", with_(parent_header="p"))
    text("metadata-array", with_(metadata=[]))
    text("content-number", with_(content=1))
    text("content-too-deep", b'{"header":{"msg_id":"1","msg_type":"t"},"content":{"a":' +
         b"[" * 3000 + b"]" * 3000 + b"}}")
    text("buffers-in-text-frame", with_(buffers=["AAEC"]))
    text("buffers-not-a-list", with_(buffers={}))
    text("channel-iopub", with_(channel="iopub"), "EPROTO")
    text("channel-hb", with_(channel="hb"), "EPROTO")
    text("channel-empty", with_(channel=""), "EPROTO")
    text("channel-case", with_(channel="Shell"), "EPROTO")
    text("channel-number", with_(channel=1), "EPROTO")
    text("channel-list", with_(channel=["shell"]), "EPROTO")
    text("channel-nul", with_(channel="shell\u0000"), "EPROTO")
    big = with_(content={"pad": "x" * 200})
    text("content-over-limit", big, "EMSGSIZE", {"max_json_frame": 180})
    text("over-total", big, "EMSGSIZE", {"max_total": 100})

    def binary(name, frame, result="EBADMSG", limits=None):
        decode_bad("legacy-binary-" + name, "legacy", frame, True, result, limits)

    blob = json.dumps(good).encode()
    binary("empty", b"")
    binary("short-count", b"\x00\x00\x01")
    binary("zero-parts", legacy_binary(blob, [], count=0))
    binary("huge-count", legacy_binary(blob, [], count=0xFFFFFFFF), "EMSGSIZE")
    binary("table-past-end", legacy_binary(blob, [b"x"], count=200))
    binary("gap-after-table", legacy_binary(blob, [b"x"], offsets=[16, 12 + len(blob)]))
    binary("first-offset-in-table", legacy_binary(blob, [b"x"], offsets=[8, 12 + len(blob)]))
    binary("offset-past-end", legacy_binary(blob, [b"x"], offsets=[12, 14 + len(blob)]))
    binary("offsets-decreasing", legacy_binary(blob, [b"ab", b"cd"],
                                               offsets=[16, 16 + len(blob) + 2, 16 + len(blob)]))
    binary("json-invalid", legacy_binary(b"{]", [b"x"]))
    binary("json-not-object", legacy_binary(b"[]", [b"x"]))
    binary("json-empty", legacy_binary(b"", [b"x"]))
    binary("channel-iopub", legacy_binary(json.dumps(with_(channel="iopub")).encode(), [b"x"]),
           "EPROTO")
    binary("buffer-over-limit", legacy_binary(blob, [b"x" * 11]), "EMSGSIZE", {"max_buffer": 10})
    binary("too-many-parts", legacy_binary(blob, [b"x"] * 4), "EMSGSIZE", {"max_frames": 4})
    decode_bad("legacy-text-binary-garbage", "legacy", b"\x00\x00\x00\x02\x00", False)

    def v1(name, frame, result="EBADMSG", limits=None, binary=True):
        decode_bad("v1-" + name, "v1", frame, binary, result, limits)

    parts = parts_of(good)
    ok = serialize_msg_to_ws_v1(parts, "shell")
    v1("text-frame", ok, binary=False)
    v1("empty", b"")
    v1("short-count", b"\x06\x00\x00")
    v1("zero-offsets", struct.pack("<Q", 0))
    v1("five-offsets", v1_frame([b"shell"] + parts[:3]))
    v1("huge-count", struct.pack("<Q", 2 ** 63) + ok[8:], "EMSGSIZE")
    v1("table-past-end", struct.pack("<Q", 200) + ok[8:])
    v1("first-offset-in-table", v1_frame([b"shell"] + parts, offsets=[48, 61] + [0] * 4))
    offs = [56]
    for c in [b"shell"] + parts:
        offs.append(offs[-1] + len(c))
    v1("gap-after-table", v1_frame([b"shell"] + parts, offsets=[64] + offs[1:]))
    v1("offset-past-end", v1_frame([b"shell"] + parts, offsets=offs[:-1] + [offs[-1] + 1]))
    v1("offsets-decreasing", v1_frame([b"shell"] + parts,
                                      offsets=offs[:3] + [offs[2] - 1] + offs[4:]))
    v1("offsets-overlap-table", v1_frame([b"shell"] + parts, offsets=[56, 8] + offs[2:]))
    v1("bytes-after-last-part", v1_frame([b"shell"] + parts, tail=b"{}"))
    v1("last-offset-short", v1_frame([b"shell"] + parts, offsets=offs[:-1] + [offs[-1] - 1]))
    for label, ch in [("iopub", b"iopub"), ("hb", b"hb"), ("empty", b""), ("case", b"Shell"),
                      ("nul", b"shell\x00"), ("bytes", b"\xff\xfe")]:
        v1("channel-" + label, v1_frame([ch] + parts), "EPROTO")
    for idx, pname, body in [(0, "header-trailing-bracket", b"{}]"),
                             (0, "header-two-objects", b'{"msg_id":"1","msg_type":"t"} {"b":2}'),
                             (0, "header-no-msg-id", b'{"msg_type":"t"}'),
                             (0, "header-msg-type-nul", b'{"msg_id":"1","msg_type":"t\\u0000"}'),
                             (0, "header-msg-id-too-long",
                              b'{"msg_id":"' + b"i" * 128 + b'","msg_type":"t"}'),
                             (0, "header-array", b"[]"),
                             (1, "parent-empty", b""),
                             (1, "parent-null", b"null"),
                             (2, "metadata-truncated", b'{"a":'),
                             (2, "metadata-duplicate-keys", b'{"a":1,"a":2}'),
                             (3, "content-array", b"[{}]"),
                             (3, "content-invalid-utf8", b'{"t":"\xc3\x28"}'),
                             (3, "content-nan", b'{"a":NaN}'),
                             (3, "content-lone-surrogate", b'{"a":"\\udc00"}'),
                             # jansson 2.14 alone would skip this NUL and accept the part.
                             (3, "content-raw-nul-after-number", b'{"a":1\x00}')]:
        q = list(parts)
        q[idx] = body
        v1(pname, serialize_msg_to_ws_v1(q, "shell"))
    q = list(parts)
    q[3] = b'{"pad":"' + b"x" * 200 + b'"}'
    v1("content-over-limit", serialize_msg_to_ws_v1(q, "shell"), "EMSGSIZE",
       {"max_json_frame": 180})
    v1("buffer-over-limit", serialize_msg_to_ws_v1(parts + [b"", b"x" * 11], "shell"), "EMSGSIZE",
       {"max_buffer": 10})
    v1("over-total", ok, "EMSGSIZE", {"max_total": len(ok) - 1})
    v1("too-many-offsets", serialize_msg_to_ws_v1(parts + [b"b"] * 3, "shell"), "EMSGSIZE",
       {"max_frames": 8})


DROP = object()


def fixed(msg, msg_id):
    """Makes a Session.msg() reproducible: its msg_id has the pid in it, its date is now."""
    msg["header"].update(msg_id=msg_id, date=DATE)
    msg["msg_id"] = msg_id
    return [json_packer(msg[k]) for k in MSG_KEYS]


def valid_encode():
    s = Session(key=b"", packer="json", session="kernel-session-1")
    parent = header("execute_request", "req-1")
    stream = {"name": "stdout", "text": "h\u00e9 \u2603 \U0001F600 a\u0000b \"q\" \\ /\n"}
    parts = fixed(s.msg("stream", content=stream, parent=parent), "k-stream-1")
    encode_ok("legacy-text-python", "legacy", parts)
    encode_ok("v1-python", "v1", parts)
    rparts = fixed(s.msg("execute_reply", content={"status": "ok", "execution_count": 3},
                         parent=parent), "k-reply-1")
    encode_ok("legacy-text-shell", "legacy", rparts, channel="shell")
    encode_ok("v1-shell", "v1", rparts, channel="shell")
    encode_ok("legacy-text-stdin", "legacy", rparts, channel="stdin")
    encode_ok("legacy-text-control", "legacy", rparts, channel="control")
    cparts = fixed(s.msg("comm_msg", content={"comm_id": "w1", "data": {"buffer_paths": [["b"]]}},
                         parent=parent), "k-comm-1")
    bufs = [b"\x00\x01\x02\xff", b"", b"<IDS|MSG>"]
    encode_ok("legacy-binary-python", "legacy", cparts, bufs)
    encode_ok("v1-python-buffers", "v1", cparts, bufs)
    encode_ok("legacy-binary-one-buffer", "legacy", cparts, [b"\x01\x02\x03"])
    # The vectors in NOTES.md: four {} on shell; four {} and a 3-byte buffer on iopub.
    encode_ok("v1-vector-shell", "v1", [b"{}"] * 4, channel="shell")
    encode_ok("v1-vector-iopub", "v1", [b"{}"] * 4, [b"\x01\x02\x03"], channel="iopub")
    # Kernel parts with whitespace and escapes: v1 forwards them as they are.
    # (With date and version: jupyter_server's legacy path adds them and adapts 4.x messages.)
    odd = [b' {"msg_id" : "1", "msg_type":"t", "date": "' + DATE.encode() + b'", "version":"5.3"}\n', b"{ }", b'{"n":1.0e2,"d":{"d":{}}}',
           b'{"e":"\\u00e9\\ud83d\\ude00\\/"}']
    encode_ok("v1-parts-verbatim", "v1", odd)
    encode_ok("legacy-text-parts-reserialised", "legacy", odd)


def invalid_encode():
    h = b'{"msg_id":"1","msg_type":"t"}'
    for name, idx, body in [("trailing-bracket", 3, b"{}]"),
                            ("two-objects", 3, b'{"a":1} {"b":2}'),
                            ("array", 3, b"[]"),
                            ("empty", 2, b""),
                            ("null", 1, b"null"),
                            ("unclosed", 3, b'{"a":[1,2}'),
                            ("array-closed-by-brace", 3, b'{"a":[1}}'),
                            ("object-closed-by-bracket", 3, b'{"a":{"b":1]}'),
                            ("invalid-utf8", 3, b'{"a":"\xff"}'),
                            ("raw-control-char", 3, b'{"a":"\x01"}'),
                            ("raw-nul-after-number", 3, b'{"a":1\x00}'),
                            ("lone-surrogate", 3, b'{"a":"\\ud800x"}'),
                            ("bad-escape", 3, b'{"a":"\\x41"}'),
                            ("lone-low-surrogate", 3, b'{"a":"\\udc00"}'),
                            ("two-high-surrogates", 3, b'{"a":"\\ud800\\ud800"}'),
                            ("short-unicode-escape", 3, b'{"a":"\\u12"}'),
                            ("number-no-fraction-digits", 3, b'{"a":1.}'),
                            ("number-bare-minus", 3, b'{"a":-}'),
                            ("number-no-exponent-digits", 3, b'{"a":1e+}'),
                            ("number-leading-dot", 3, b'{"a":.5}'),
                            ("number-plus", 3, b'{"a":+1}'),
                            ("literal-truncated", 3, b'{"a":tru}'),
                            ("key-not-string", 3, b'{a:1}'),
                            ("missing-colon", 3, b'{"a" 1}'),
                            ("missing-comma", 3, b'{"a":1 "b":2}'),
                            ("leading-zero", 3, b'{"a":01}'),
                            ("nan", 3, b'{"a":NaN}'),
                            ("single-quotes", 3, b"{'a':1}"),
                            ("trailing-comma", 3, b'{"a":1,}'),
                            ("header-string", 0, b'"x"'),
                            ("too-deep", 3, b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}")]:
        parts = [h, b"{}", b"{}", b"{}"]
        parts[idx] = body
        encode_bad("legacy-" + name, "legacy", parts)
        encode_bad("v1-" + name, "v1", parts)
    encode_bad("legacy-header-no-msg-id", "legacy", [b'{"msg_type":"t"}', b"{}", b"{}", b"{}"])
    encode_bad("legacy-duplicate-keys", "legacy", [h, b"{}", b"{}", b'{"a":1,"a":2}'])


JLAB_SCRIPT = r"""
const path = require('path');
const s = require(path.join(process.env.JLAB_SERVICES, 'lib/kernel/serialize.js'));
const m = require(path.join(process.env.JLAB_SERVICES, 'lib/kernel/messages.js'));
const V1 = 'v1.kernel.websocket.jupyter.org';
const out = [];
function add(name, framing, data) {
  const binary = typeof data !== 'string';
  const bytes = binary ? Buffer.from(data) : Buffer.from(data, 'utf8');
  out.push({name, framing, binary, hex: bytes.toString('hex')});
}
function msg(opts) {
  const r = m.createMessage(Object.assign({session: 'jlab-session', username: 'jl'}, opts));
  r.header.date = '2026-11-26T09:30:27.123Z'; /* JupyterLab's format, a fixed time */
  return r;
}
const exec = () => msg({msgType: 'execute_request', channel: 'shell', msgId: 'jl-1',
  content: {code: 'print("h\u00e9 \u2603")', silent: false, store_history: true,
            user_expressions: {}, allow_stdin: true, stop_on_error: true}});
add('legacy-text', 'legacy', s.serialize(exec()));
add('v1', 'v1', s.serialize(exec(), V1));
const comm = () => msg({msgType: 'comm_msg', channel: 'shell', msgId: 'jl-2',
  content: {comm_id: 'w', data: {buffer_paths: [['a']]}},
  buffers: [new Uint8Array([0, 1, 2, 255]).buffer, new Uint8Array([]).buffer]});
add('legacy-binary', 'legacy', s.serialize(comm()));
add('v1-buffers', 'v1', s.serialize(comm(), V1));
const inp = () => msg({msgType: 'input_reply', channel: 'stdin', msgId: 'jl-3',
  content: {value: 'x', status: 'ok'}});
add('v1-stdin', 'v1', s.serialize(inp(), V1));
const intr = () => msg({msgType: 'interrupt_request', channel: 'control', msgId: 'jl-4', content: {}});
add('legacy-text-control', 'legacy', s.serialize(intr()));
console.log(JSON.stringify(out));
"""


def jlab_cases():
    jl = os.environ.get("JLAB_SERVICES")
    if not jl:
        return False
    res = subprocess.run(["node", "-e", JLAB_SCRIPT], check=True, capture_output=True)
    for c in json.loads(res.stdout):
        decode_ok("jlab-" + c["name"], c["framing"], bytes.fromhex(c["hex"]), c["binary"])
    return True


def main():
    jlab = bool(os.environ.get("JLAB_SERVICES"))
    for sub in ("valid", "invalid"):
        top = os.path.join(HERE, sub)
        for name in os.listdir(top):
            if name.startswith("ws-") and (jlab or not name.startswith("ws-decode-jlab-")):
                shutil.rmtree(os.path.join(top, name))
    valid_decode()
    invalid_decode()
    valid_encode()
    invalid_encode()
    jlab_cases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
