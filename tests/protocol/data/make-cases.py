#!/usr/bin/python3
"""Writes the protocol test cases under valid/ and invalid/ (run once; the output is checked in).

Each case is a directory. Wire cases hold frame-00, frame-01, ... (one multipart frame each),
an optional `key` and an optional `limits` ("name value" lines overriding the defaults).
Connection cases hold connection.json. Every case has an `expect` file of "name value" lines;
`kind` (wire|conn) and `result` (0 or an errno name) are always present.
Signatures are computed here with Python's hmac, so the C tests cross-check against it.
"""
import hashlib
import hmac
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DELIM = b"<IDS|MSG>"
KEY = b"5b0f1b6e-3a0f-4bd4-9c1e-2d8f0c7a9e11"


def jdump(obj):
    # What jupyter_client sends: ensure_ascii=False, default separators.
    return json.dumps(obj, ensure_ascii=False).encode()


def sign(key, parts):
    if not key:
        return b""
    return hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()


def header(msg_type="kernel_info_request", msg_id="a1b2", **extra):
    h = {"msg_id": msg_id, "session": "s-1", "username": "u", "date": "2026-11-26T09:30:27.123456Z",
         "msg_type": msg_type, "version": "5.3"}
    h.update(extra)
    return h


def write_case(kind, name, expect, frames=None, key=None, limits=None, conn=None):
    d = os.path.join(HERE, kind, name)
    os.makedirs(d)
    if frames is not None:
        for i, f in enumerate(frames):
            with open(os.path.join(d, "frame-%02d" % i), "wb") as fh:
                fh.write(f)
    if key is not None:
        with open(os.path.join(d, "key"), "wb") as fh:
            fh.write(key)
    if limits:
        with open(os.path.join(d, "limits"), "w") as fh:
            for k, v in limits.items():
                fh.write("%s %d\n" % (k, v))
    if conn is not None:
        with open(os.path.join(d, "connection.json"), "wb") as fh:
            fh.write(conn if isinstance(conn, bytes) else json.dumps(conn, indent=1).encode())
    with open(os.path.join(d, "expect"), "w") as fh:
        for k, v in expect:
            fh.write("%s %s\n" % (k, v))


def msg(parts, key=KEY, idents=(), buffers=(), sig=None):
    """Frames of a message whose four JSON parts are given as bytes."""
    if sig is None:
        sig = sign(key, parts)
    return list(idents) + [DELIM, sig] + list(parts) + list(buffers)


def wire(kind, name, result, frames, key=KEY, limits=None, **fields):
    expect = [("kind", "wire"), ("result", result)] + list(fields.items())
    write_case(kind, name, expect, frames=frames, key=key, limits=limits)


def conn(kind, name, result, data, **fields):
    expect = [("kind", "conn"), ("result", result)] + list(fields.items())
    write_case(kind, name, expect, conn=data)


def std_parts(h=None, parent=None, metadata=None, content=None):
    return [jdump(header() if h is None else h), jdump({} if parent is None else parent),
            jdump({} if metadata is None else metadata), jdump({} if content is None else content)]


def valid_wire():
    p = std_parts()
    wire("valid", "wire-minimal-unsigned", "0", msg(p, key=None), key=None,
         msg_type="kernel_info_request", msg_id="a1b2", idents=0, buffers=0)
    p = std_parts(header("execute_request", "m-42"), content={"code": "print('hi')", "silent": False})
    wire("valid", "wire-signed-python-hmac", "0", msg(p, idents=[b"client-1"]),
         msg_type="execute_request", msg_id="m-42", idents=1, buffers=0, signature=sign(KEY, p).decode())
    p = std_parts(header("comm_msg"), content={"data": {"x": 1}})
    wire("valid", "wire-identities-and-buffers", "0",
         msg(p, idents=[b"\x00\x80\x01id", b"second"], buffers=[b"\x00\x01\x02\xfe", b""]),
         msg_type="comm_msg", idents=2, buffers=2, buffer_0_len=4, buffer_1_len=0)
    p = std_parts()
    wire("valid", "wire-identity-resembles-delimiter", "0", msg(p, idents=[b"<IDS|MSG", b"<IDS|MSG>x"]),
         idents=2, ident_0="<IDS|MSG")
    p = std_parts()
    wire("valid", "wire-delimiter-repeated-in-buffer", "0", msg(p, buffers=[DELIM]), idents=0, buffers=1)
    p = std_parts(content={"text": "h\u00e9llo \u2603 \U0001F600", "esc": "\\ud83d\\ude00"})
    p[3] = '{"text": "h\u00e9llo \u2603 \U0001F600", "esc": "\\ud83d\\ude00"}'.encode()
    wire("valid", "wire-unicode-content", "0", msg(p), msg_type="kernel_info_request")
    p = std_parts(content={"name": "stdout", "text": "a\u0000b"})
    wire("valid", "wire-nul-escape-in-content", "0", msg(p), content_text_len=3)
    p = std_parts()
    wire("valid", "wire-no-key-ignores-signature", "0", msg(p, key=None, sig=b"not-a-signature"), key=None)
    p = std_parts(header("complete_request", extra={"nested": [1, {"a": None}]}, subshell_id=None),
                  parent=header("execute_request", "parent-1"), metadata={"deleted": True})
    wire("valid", "wire-parent-and-extra-fields", "0", msg(p), msg_type="complete_request",
         parent_msg_id="parent-1")
    p = std_parts(header("shutdown_reply"))
    wire("valid", "wire-reply-type", "0", msg(p), msg_type="shutdown_reply", is_reply=1)
    p = std_parts()
    p[1] = b" \t\r\n{ } \n"
    wire("valid", "wire-whitespace-around-json", "0", msg(p))
    p = std_parts(content={"n": 9223372036854775807, "r": -1.5e300, "f": False, "z": None})
    wire("valid", "wire-number-extremes", "0", msg(p))
    # Exactly at every limit.
    p = [b'{"msg_id":"1","msg_type":"t"}', b"{}", b"{}", b"{}"]
    frames = msg(p, idents=[b"abcd", b"efgh"], buffers=[b"12345678"])
    lim = {"max_frames": len(frames), "max_idents": 2, "max_ident_len": 4,
           "max_json_frame": len(p[0]), "max_buffer": 8, "max_total": sum(len(f) for f in frames)}
    wire("valid", "wire-exactly-at-every-limit", "0", frames, limits=lim, idents=2, buffers=1)


def invalid_wire():
    p = std_parts()
    wire("invalid", "wire-no-frames", "EBADMSG", [])
    wire("invalid", "wire-no-delimiter", "EBADMSG", [b"id", sign(KEY, p)] + p)
    wire("invalid", "wire-only-delimiter", "EBADMSG", [DELIM])
    wire("invalid", "wire-too-few-frames", "EBADMSG", [DELIM, sign(KEY, p)] + p[:3])
    wire("invalid", "wire-delimiter-wrong-case", "EBADMSG", [b"<ids|msg>", sign(KEY, p)] + p)
    good = sign(KEY, p)
    flipped = bytes([good[0] ^ 1]) + good[1:]
    wire("invalid", "wire-signature-flipped-digit", "EACCES", msg(p, sig=flipped))
    wire("invalid", "wire-signature-truncated", "EACCES", msg(p, sig=good[:63]))
    wire("invalid", "wire-signature-overlong", "EACCES", msg(p, sig=good + b"0"))
    wire("invalid", "wire-signature-non-hex", "EACCES", msg(p, sig=b"g" * 64))
    wire("invalid", "wire-signature-uppercase", "EACCES", msg(p, sig=good.upper()))
    wire("invalid", "wire-signature-empty-with-key", "EACCES", msg(p, sig=b""))
    wire("invalid", "wire-signature-wrong-key", "EACCES", msg(p, sig=sign(b"other", p)))
    wire("invalid", "wire-signature-with-whitespace", "EACCES", msg(p, sig=good[:63] + b"\n"))
    for name, idx, body in [("header-array", 0, b"[1,2]"), ("parent-number", 1, b"7"),
                            ("metadata-null", 2, b"null"), ("content-string", 3, b'"x"'),
                            ("content-empty-frame", 3, b""), ("content-truncated", 3, b'{"a":'),
                            ("content-trailing-garbage", 3, b"{} {}"),
                            ("content-duplicate-keys", 3, b'{"a":1,"a":2}'),
                            ("content-invalid-utf8", 3, b'{"a":"\xff"}'),
                            ("content-overlong-utf8", 3, b'{"a":"\xc0\xaf"}'),
                            ("content-utf8-surrogate", 3, b'{"a":"\xed\xa0\x80"}'),
                            ("content-lone-surrogate-escape", 3, b'{"a":"\\ud800"}'),
                            ("content-raw-control-char", 3, b'{"a":"\x01"}'),
                            ("content-nan", 3, b'{"a":NaN}'),
                            ("content-integer-overflow", 3, b'{"a":99999999999999999999}'),
                            ("content-too-deep", 3, b"{\"a\":" + b"[" * 3000 + b"]" * 3000 + b"}"),
                            ("header-no-msg-type", 0, b'{"msg_id":"1"}'),
                            ("header-no-msg-id", 0, b'{"msg_type":"t"}'),
                            ("header-msg-type-not-string", 0, b'{"msg_id":"1","msg_type":5}'),
                            ("header-msg-type-with-nul", 0, b'{"msg_id":"1","msg_type":"a\\u0000b"}')]:
        q = list(p)
        q[idx] = body
        wire("invalid", "wire-" + name, "EBADMSG", msg(q))
    frames = msg(p, idents=[b"a", b"b", b"c"], buffers=[b"x" * 10])
    lens = [len(f) for f in frames]
    for name, lim in [("too-many-frames", {"max_frames": len(frames) - 1}),
                      ("too-many-identities", {"max_idents": 2}),
                      ("identity-too-long", {"max_ident_len": 0}),
                      ("header-too-big", {"max_json_frame": len(p[0]) - 1}),
                      ("buffer-too-big", {"max_buffer": 9}),
                      ("total-too-big", {"max_total": sum(lens) - 1})]:
        wire("invalid", "wire-limit-" + name, "EMSGSIZE", frames, limits=lim)
    for idx, part in [(1, "parent"), (2, "metadata"), (3, "content")]:
        q = list(p)
        q[idx] = b'{"pad":"' + b"x" * 100 + b'"}'
        wire("invalid", "wire-limit-%s-too-big" % part, "EMSGSIZE", msg(q), limits={"max_json_frame": 100})
    # Limits win over a bad signature: sizes are checked before any hashing.
    wire("invalid", "wire-limit-checked-before-signature", "EMSGSIZE", msg(p, sig=b"bad"),
         limits={"max_total": 10})


TCP = {"shell_port": 53794, "iopub_port": 53795, "stdin_port": 53796, "control_port": 53797,
       "hb_port": 53798, "ip": "127.0.0.1", "key": "a0436f6c-1916-498b-8eb9-e81ab9368e84",
       "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "python3"}


def with_(base, **kw):
    d = dict(base)
    for k, v in kw.items():
        if v is DROP:
            d.pop(k, None)
        else:
            d[k] = v
    return d


DROP = object()


def valid_conn():
    conn("valid", "conn-tcp-jupyter-client", "0", TCP, transport="tcp", ip="127.0.0.1",
         key_len=36, kernel_name="python3", endpoint_shell="tcp://127.0.0.1:53794",
         endpoint_hb="tcp://127.0.0.1:53798", port_iopub=53795)
    conn("valid", "conn-ipc", "0", with_(TCP, transport="ipc", ip="/tmp/kernel-ipc", shell_port=1,
                                         iopub_port=2, stdin_port=3, control_port=4, hb_port=5),
         transport="ipc", endpoint_shell="ipc:///tmp/kernel-ipc-1", endpoint_hb="ipc:///tmp/kernel-ipc-5")
    conn("valid", "conn-empty-key-unsigned", "0", with_(TCP, key="", signature_scheme=""), key_len=0)
    conn("valid", "conn-empty-key-any-scheme", "0", with_(TCP, key="", signature_scheme="hmac-md5"), key_len=0)
    conn("valid", "conn-key-without-scheme", "0", with_(TCP, signature_scheme=DROP), key_len=36)
    conn("valid", "conn-tcp-port-zero-picks", "0", with_(TCP, shell_port=0), port_shell=0,
         endpoint_shell="tcp://127.0.0.1:0")
    conn("valid", "conn-extra-fields-ignored", "0",
         with_(TCP, curve_publickey="x", extra={"nested": [1, 2]}, kernel_name=DROP), kernel_name="")
    conn("valid", "conn-null-kernel-name", "0", with_(TCP, kernel_name=None), kernel_name="")
    conn("valid", "conn-wildcard-ip", "0", with_(TCP, ip="*"), endpoint_iopub="tcp://*:53795")
    conn("valid", "conn-port-max", "0", with_(TCP, hb_port=65535), port_hb=65535)
    conn("valid", "conn-unicode-key", "0", with_(TCP, key="cl\u00e9-\U0001F511"), key_len=9)
    conn("valid", "conn-compact-json", "0", json.dumps(TCP, separators=(",", ":")).encode())


def invalid_conn():
    e = "EBADMSG"
    conn("invalid", "conn-empty-file", e, b"")
    conn("invalid", "conn-not-object", e, b"[1,2,3]")
    conn("invalid", "conn-not-json", e, b"shell_port=1")
    conn("invalid", "conn-trailing-garbage", e, json.dumps(TCP).encode() + b" x")
    conn("invalid", "conn-duplicate-field", e, b'{"ip":"a","ip":"b"}')
    conn("invalid", "conn-invalid-utf8", e, json.dumps(TCP).encode().replace(b"127.0.0.1", b"127\xff0.0.1"))
    conn("invalid", "conn-missing-transport", e, with_(TCP, transport=DROP))
    conn("invalid", "conn-unknown-transport", e, with_(TCP, transport="udp"))
    conn("invalid", "conn-transport-prefix", e, with_(TCP, transport="tcpx"))
    conn("invalid", "conn-transport-not-string", e, with_(TCP, transport=1))
    conn("invalid", "conn-missing-ip", e, with_(TCP, ip=DROP))
    conn("invalid", "conn-empty-ip", e, with_(TCP, ip=""))
    conn("invalid", "conn-ip-too-long", e, with_(TCP, ip="a" * 256))
    conn("invalid", "conn-nul-in-ip", e, json.dumps(TCP).encode().replace(b"127.0.0.1", b"127\\u0000"))
    conn("invalid", "conn-missing-port", e, with_(TCP, control_port=DROP))
    conn("invalid", "conn-port-string", e, with_(TCP, shell_port="53794"))
    conn("invalid", "conn-port-real", e, with_(TCP, shell_port=53794.0))
    conn("invalid", "conn-port-negative", e, with_(TCP, iopub_port=-1))
    conn("invalid", "conn-port-too-big", e, with_(TCP, stdin_port=65536))
    conn("invalid", "conn-port-huge", e, with_(TCP, hb_port=2 ** 62))
    conn("invalid", "conn-port-null", e, with_(TCP, hb_port=None))
    conn("invalid", "conn-ipc-port-zero", e, with_(TCP, transport="ipc", ip="/tmp/k", shell_port=0))
    conn("invalid", "conn-missing-key", e, with_(TCP, key=DROP))
    conn("invalid", "conn-key-not-string", e, with_(TCP, key=123))
    conn("invalid", "conn-unsupported-scheme", e, with_(TCP, signature_scheme="hmac-md5"))
    conn("invalid", "conn-scheme-not-string", e, with_(TCP, signature_scheme=["hmac-sha256"]))
    conn("invalid", "conn-kernel-name-too-long", e, with_(TCP, kernel_name="k" * 128))
    conn("invalid", "conn-kernel-name-not-string", e, with_(TCP, kernel_name=3))


def sign_vector():
    """One signature over a realistic message, computed by Python's hmac, for test_proto_sign."""
    d = os.path.join(HERE, "sign", "python-hmac")
    os.makedirs(d)
    parts = std_parts(header("execute_request", "5f0c"), content={"code": "1+1\n\u00e9", "silent": False})
    for name, body in zip(["header", "parent", "metadata", "content"], parts):
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(body)
    with open(os.path.join(d, "key"), "wb") as fh:
        fh.write(KEY)
    with open(os.path.join(d, "expect"), "wb") as fh:
        fh.write(sign(KEY, parts) + b"\n")


def main():
    # Only this script's cases: make-ws-cases.py owns the ws-* ones.
    shutil.rmtree(os.path.join(HERE, "sign"), ignore_errors=True)
    for sub in ("valid", "invalid"):
        top = os.path.join(HERE, sub)
        for name in os.listdir(top) if os.path.isdir(top) else []:
            if name.startswith(("wire-", "conn-")):
                shutil.rmtree(os.path.join(top, name))
    valid_wire()
    invalid_wire()
    valid_conn()
    invalid_conn()
    sign_vector()
    return 0


if __name__ == "__main__":
    sys.exit(main())
