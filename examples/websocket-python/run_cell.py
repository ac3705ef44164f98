#!/usr/bin/python3
"""Start a kernel on a sandcell gateway, run one cell over the kernel WebSocket, print its
output as it arrives, and shut the kernel down. Uses only the standard library plus
websocket-client (Debian: python3-websocket), speaking the v1 framing by hand.

    examples/websocket-python/run_cell.py http://127.0.0.1:8888 TOKEN "for i in range(3): print(i)"
"""
import json
import struct
import sys
import urllib.request
import uuid

import websocket

V1 = "v1.kernel.websocket.jupyter.org"


def rest(base, token, method, path):
    req = urllib.request.Request(base + path, method=method,
                                 headers={"Authorization": "token " + token})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return json.loads(body) if body else None


def encode(channel, msg):
    """v1: u64le count, u64le offsets, then channel, header, parent, metadata, content."""
    parts = [channel.encode()] + [json.dumps(msg[k]).encode()
                                  for k in ("header", "parent_header", "metadata", "content")]
    offsets = [8 * (len(parts) + 2)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    head = struct.pack("<%dQ" % (len(offsets) + 1), len(offsets), *offsets)
    return head + b"".join(parts)


def decode(frame):
    n = struct.unpack_from("<Q", frame)[0]
    offsets = struct.unpack_from("<%dQ" % n, frame, 8)
    parts = [frame[offsets[i]:offsets[i + 1]] for i in range(n - 1)]
    header, parent, _, content = (json.loads(p) for p in parts[1:5])
    return parts[0].decode(), header, parent, content


def main(base, token, code):
    kernel = rest(base, token, "POST", "/api/kernels")
    ws_url = base.replace("http", "ws", 1) + "/api/kernels/%s/channels?session_id=%s&token=%s" % (
        kernel["id"], uuid.uuid4().hex, token)
    ws = websocket.create_connection(ws_url, subprotocols=[V1], timeout=60)
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "example",
              "session": uuid.uuid4().hex, "date": "", "version": "5.3"}
    ws.send_binary(encode("shell", {"header": header, "parent_header": {}, "metadata": {},
                                    "content": {"code": code, "silent": False}}))
    status, idle = None, False
    try:
        while status is None or not idle:
            channel, h, parent, content = decode(ws.recv())
            if parent.get("msg_id") != msg_id:
                continue
            kind = h["msg_type"]
            if kind == "stream":
                (sys.stdout if content["name"] == "stdout" else sys.stderr).write(content["text"])
                sys.stdout.flush()
            elif kind in ("execute_result", "display_data"):
                print(content["data"].get("text/plain", ""))
            elif kind == "error":
                print("\n".join(content["traceback"]), file=sys.stderr)
            elif kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    finally:
        ws.close()
        rest(base, token, "DELETE", "/api/kernels/" + kernel["id"])
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]))
