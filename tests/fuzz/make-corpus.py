#!/usr/bin/python3
"""Writes the hand-made seeds of corpus/wire and corpus/conn (run once; output is checked in).

Wire inputs: one mode byte (bit 0 key, bit 1 re-sign, bit 2 tiny limits), then frames separated
by 0xFF. Inputs libFuzzer found are added next to these as crash-*/found-* files by hand.
"""
import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"fuzz-key"
D = b"<IDS|MSG>"
H = b'{"msg_id":"1","msg_type":"execute_request"}'


def wire(name, mode, frames):
    with open(os.path.join(HERE, "corpus", "wire", name), "wb") as f:
        f.write(bytes([mode]) + b"\xff".join(frames))


def conn(name, data):
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    with open(os.path.join(HERE, "corpus", "conn", name), "wb") as f:
        f.write(data)


def sig(parts):
    return hmac.new(KEY, b"".join(parts), hashlib.sha256).hexdigest().encode()


def msg(content=b"{}", header=H, parent=b"{}", metadata=b"{}", idents=(), buffers=(), s=b""):
    return list(idents) + [D, s, header, parent, metadata, content] + list(buffers)


def wire_seeds():
    wire("minimal-unsigned", 0, msg())
    parts = [H, b"{}", b"{}", b'{"code":"1+1"}']
    wire("signed-by-python", 1, msg(parts[3], s=sig(parts)))
    wire("resigned-idents-buffers", 3, msg(b'{"a":[1,2]}', idents=[b"id-1", b""], buffers=[b"\x00\x01", b""]))
    wire("tiny-limits-ok", 4, msg())
    wire("tiny-limits-exceeded", 4, msg(b'{"pad":"' + b"x" * 300 + b'"}'))
    wire("empty-after-mode", 0, [])
    wire("no-delimiter", 0, [b"id", b"", H, b"{}", b"{}", b"{}"])
    wire("only-delimiter", 0, [D])
    wire("delimiter-lower-case", 0, [b"<ids|msg>", b"", H, b"{}", b"{}", b"{}"])
    wire("four-frames-after-delimiter", 0, [D, b"", H, b"{}", b"{}"])
    wire("header-array", 0, msg(header=b'["msg_id","msg_type"]'))
    wire("header-no-msg-type", 0, msg(header=b'{"msg_id":"1"}'))
    wire("header-msg-type-nul", 0, msg(header=b'{"msg_id":"1","msg_type":"a\\u0000"}'))
    wire("invalid-utf8", 0, msg(b'{"a":"\xc3\x28"}'))
    wire("overlong-utf8", 0, msg(b'{"a":"\xe0\x80\xaf"}'))
    wire("lone-surrogate", 0, msg(b'{"a":"\\udc00"}'))
    wire("surrogate-pair", 3, msg(b'{"a":"\\ud83d\\ude00\xf0\x9f\x98\x80"}'))
    wire("nul-escape", 3, msg(b'{"text":"a\\u0000b"}'))
    wire("all-escapes", 3, msg(b'{"e":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f"}'))
    wire("nested-500", 0, msg(b'{"a":' + b"[" * 500 + b"]" * 500 + b"}"))
    wire("nested-2100", 0, msg(b'{"a":' + b"[" * 2100 + b"]" * 2100 + b"}"))
    wire("numbers", 3, msg(b'{"a":1e308,"b":-0.0,"c":4.9e-324,"d":-9223372036854775808,"e":0.1,"f":1E+2}'))
    wire("number-overflow", 0, msg(b'{"a":123456789012345678901234567890}'))
    wire("real-overflow", 0, msg(b'{"a":1e999}'))
    wire("duplicate-keys", 0, msg(b'{"a":1,"a":1}'))
    wire("trailing-garbage", 0, msg(b"{}]"))
    wire("empty-json-frames", 0, msg(b"", parent=b""))
    wire("whitespace", 0, msg(b" \n\t{ \"a\" : [ ] }\r\n"))
    wire("many-frames", 0, msg(buffers=[b"b"] * 280))
    wire("many-identities", 4, msg(idents=[b"i"] * 20))
    wire("delimiter-twice", 3, msg(buffers=[D, D]))
    wire("wrong-length-signature", 1, msg(s=b"abc"))
    wire("uppercase-signature", 1, msg(s=sig([H, b"{}", b"{}", b"{}"]).upper()))
    wire("unicode-keys", 3, msg(b'{"\xc3\xa9":"\xe2\x98\x83","\\u00e9x":1}'))
    wire("literals", 3, msg(b'{"t":true,"f":false,"n":null,"o":{"p":{}},"l":[true,null]}'))
    with open(os.path.join(HERE, "corpus", "wire", "zero-bytes"), "wb"):
        pass


TCP = {"shell_port": 53794, "iopub_port": 53795, "stdin_port": 53796, "control_port": 53797,
       "hb_port": 53798, "ip": "127.0.0.1", "key": "a0436f6c-1916-498b-8eb9-e81ab9368e84",
       "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "python3"}


def w(**kw):
    d = dict(TCP)
    for k, v in kw.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


def conn_seeds():
    conn("jupyter-client", json.dumps(TCP, indent=1).encode())
    conn("ipc", w(transport="ipc", ip="kernel-ipc", shell_port=1, iopub_port=2, stdin_port=3,
                  control_port=4, hb_port=5))
    conn("empty-key", w(key=""))
    conn("no-scheme", w(signature_scheme=None))
    conn("bad-scheme", w(signature_scheme="hmac-sha1"))
    conn("port-zero", w(shell_port=0))
    conn("port-max", w(hb_port=65535))
    conn("port-over", w(hb_port=65536))
    conn("port-negative", w(hb_port=-1))
    conn("port-string", w(hb_port="1"))
    conn("port-real", w(hb_port=1.0))
    conn("port-huge", b'{"transport":"tcp","ip":"a","shell_port":99999999999999999999999}')
    conn("ip-255", w(ip="i" * 255))
    conn("ip-256", w(ip="i" * 256))
    conn("ip-format-chars", w(ip="%s%n%d%%"))
    conn("ip-ipv6", w(ip="::1"))
    conn("ip-unicode", w(ip="h\u00f4te"))
    conn("ip-nul", json.dumps(w()).encode().replace(b"127.0.0.1", b"127\\u0000"))
    conn("kernel-name-127", w(kernel_name="k" * 127))
    conn("kernel-name-null", w(kernel_name=None) | {"kernel_name": None})
    conn("key-unicode", w(key="\U0001F511\u00e9"))
    conn("key-escapes", w(key="\"\\\n\t/"))
    conn("extra-fields", w(curve_publickey="x", more={"a": [1, {"b": None}]}))
    conn("not-object", b"[1]")
    conn("empty", b"")
    conn("garbage", b"\x00\xff\xfe{")
    conn("duplicate", b'{"ip":"a","ip":"a"}')
    conn("invalid-utf8", json.dumps(w()).encode().replace(b"python3", b"py\xc0\xafon3"))
    conn("deep", b'{"x":' + b"[" * 3000 + b"]" * 3000 + b"}")
    conn("missing-everything", b"{}")


def main():
    for sub in ("wire", "conn"):
        d = os.path.join(HERE, "corpus", sub)
        os.makedirs(d, exist_ok=True)
    wire_seeds()
    conn_seeds()


if __name__ == "__main__":
    main()
