#!/usr/bin/python3
"""One-shot code execution on sandcell, as an assistant ("ray") does it.

1. over HTTP: POST /python/execute, read the ExecutionResult;
2. over the task WebSocket /python/ws: send the same kind of task with an id, print the events
   (output, progress) as they arrive, then the result;
3. a failing piece of code: an exception is a result with success false, not an HTTP error.

    examples/python_exec/ray_code_execution.py --url http://127.0.0.1:8888 --token "$SANDCELL_TOKEN"

Exits 1 if a result is not what it should be.
"""
import time

from task_client import Client, parse_args, show_event, summary


def main():
    args = parse_args(__doc__.splitlines()[0])
    c = Client(args.url, args.token)

    print("1. POST /python/execute")
    status, r = c.post_task("execute", {
        "code": "import math\nprint('hello from sandcell')\nroot = math.sqrt(2)\nsum(range(10))",
        "return_variables": ["root"],
    }, assigned_by="example")
    print("  HTTP %s: %s" % (status, summary(r) if status == 200 else r))
    c.check(status == 200 and r["success"], "the code ran")
    c.check(status == 200 and r["stdout"] == "hello from sandcell\n", "stdout captured")
    c.check(status == 200 and r["return_value"] == 45, "return_value is 45")
    c.check(status == 200 and abs(r["variables"].get("root", 0) - 2 ** 0.5) < 1e-12,
            "variables['root'] is sqrt(2)")

    print("2. the same over /python/ws, with output as it happens")
    ws = c.websocket()
    code = ("import sandcell, time\n"
            "for i in range(3):\n"
            "    print('step', i, flush=True)\n"
            "    sandcell.progress((i + 1) / 3, 'step %d' % i)\n"
            "    time.sleep(0.3)\n"
            "'finished'\n")
    t0 = time.monotonic()
    seen = []

    def on_event(event):
        seen.append((event["event"], time.monotonic() - t0))
        show_event(event)

    event = Client.run_ws(ws, "demo-1", {"type": "execute", "code": code}, on_event)
    r = event.get("result") or {}
    print("  result: %s" % summary(r) if event["event"] == "result" else "  error: %s" % event)
    c.check(event["event"] == "result" and r["return_value"] == "finished", "the task finished")
    streams = [t for kind, t in seen if kind == "stream"]
    c.check(len(streams) >= 2 and streams[-1] - streams[0] > 0.3,
            "output arrived while the code ran, not all at the end")
    c.check(sum(1 for kind, _ in seen if kind == "progress") >= 1, "progress events arrived")

    print("3. code that fails")
    event = Client.run_ws(ws, "demo-2", {"type": "execute",
                                         "code": "values = [1, 2]\nvalues[5]"}, show_event)
    r = event.get("result") or {}
    print("  result: %s" % summary(r))
    c.check(r.get("success") is False and r.get("exit_code") == 1, "success false, exit code 1")
    c.check((r.get("exception_info") or {}).get("type") == "IndexError"
            and r["exception_info"].get("line") == 2, "IndexError on line 2")
    ws.close()
    c.exit()


if __name__ == "__main__":
    main()
