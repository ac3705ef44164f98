#!/usr/bin/python3
"""An interactive session step by step: state kept between requests, the session as a kernel,
its history, a reset, and ending it.

    examples/python_exec/interactive_examples.py --token "$SANDCELL_TOKEN"

Exits 1 if a result is not what it should be.
"""
import hashlib
import json
import uuid

from task_client import Client, parse_args, summary


def main():
    args = parse_args(__doc__.splitlines()[0])
    c = Client(args.url, args.token)
    sid = "example-" + uuid.uuid4().hex[:8]
    steps = ["import statistics\ndata = [1, 2, 3]",
             "data.append(10)\nstatistics.mean(data)"]

    print("1. two steps in session %s" % sid)
    results = []
    for code in steps:
        status, r = c.post_task("interactive", {"code": code, "session_id": sid},
                                assigned_by="example")
        print("  >>> %s\n  %s\n  return_value=%r changed=%s" % (
            code.replace("\n", "\n  ... "), summary(r), r.get("return_value"),
            json.dumps(r.get("changed_variables"))))
        results.append(r)
    c.check(results[1].get("return_value") == 4, "the second step saw the first step's data")
    c.check(list(results[1].get("changed_variables", {})) == ["data"],
            "changed_variables names the list that grew")

    print("2. over the WebSocket, same session")
    ws = c.websocket()
    event = Client.run_ws(ws, "step-3", {"type": "interactive", "session_id": sid,
                                         "code": "len(data)"})
    ws.close()
    c.check(event.get("result", {}).get("return_value") == 4, "len(data) is 4")

    print("3. the session, and its kernel (a notebook could attach to it)")
    status, s = c.request("GET", "/python/sessions/" + sid)
    print("  " + json.dumps(s))
    c.check(status == 200 and s["executions"] == 3, "3 executions so far")
    status, kernels = c.request("GET", "/api/kernels")
    c.check(any(k["id"] == s["kernel_id"] for k in kernels),
            "its kernel %s is listed in /api/kernels" % s["kernel_id"])

    print("4. its history, newest first")
    status, h = c.request("GET", "/python/history?session_id=" + sid)
    for e in h["executions"]:
        print("  %s %s success=%s sha256=%s… %d bytes" % (e["started"], e["task_id"],
                                                      e["success"], e["code_sha256"][:12],
                                                      e["code_size"]))
    c.check(len(h["executions"]) == 3, "3 entries")
    c.check(h["executions"][-1]["code_sha256"] == hashlib.sha256(steps[0].encode()).hexdigest(),
            "the oldest entry is the first step (by its sha256)")

    print("5. reset_session: same session, fresh kernel state")
    status, r = c.post_task("interactive", {"code": "pass", "session_id": sid,
                                            "reset_session": True,
                                            "return_variables": ["data"]})
    print("  missing_variables=%s" % r.get("missing_variables"))
    c.check(r.get("missing_variables") == ["data"], "data is gone")

    print("6. ending the session")
    status, _ = c.request("DELETE", "/python/sessions/" + sid)
    print("  DELETE -> %s" % status)
    c.check(status == 204, "204")
    status, _ = c.request("GET", "/python/sessions/" + sid)
    c.check(status == 404, "the session is gone (404)")
    c.exit()


if __name__ == "__main__":
    main()
