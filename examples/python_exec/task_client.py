"""A small client for sandcell's task API, shared by the examples in this folder.

Only the standard library and websocket-client (Debian: python3-websocket). Every example
takes --url and --token (defaults http://127.0.0.1:8888 and $SANDCELL_TOKEN), prints what it
does, and exits 1 when a result is not what it should be, so the examples double as smoke
tests.
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import websocket


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", default="http://127.0.0.1:8888", help="the gateway's base URL")
    p.add_argument("--token", default=os.environ.get("SANDCELL_TOKEN", ""),
                   help="the gateway's token (default: $SANDCELL_TOKEN)")
    return p.parse_args()


class Client:
    def __init__(self, url, token):
        self.url = url.rstrip("/")
        self.token = token
        self.failures = 0

    # -- HTTP -----------------------------------------------------------------------------

    def request(self, method, path, body=None):
        """Returns (status, parsed JSON body or None). Errors (4xx/5xx) are answers too."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "token " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, (json.loads(raw) if raw else None)

    def post_task(self, path, task, **envelope):
        """POST {"task": task, ...} to /python/<path>; returns (status, body)."""
        return self.request("POST", "/python/" + path, dict(envelope, task=task))

    # -- WebSocket ------------------------------------------------------------------------

    def websocket(self):
        """One /python/ws connection: every task of a program can share it."""
        ws_url = self.url.replace("http", "ws", 1) + "/python/ws"
        return websocket.create_connection(ws_url, timeout=120,
                                           header=["Authorization: token " + self.token])

    @staticmethod
    def run_ws(ws, task_id, task, on_event=None):
        """Sends one task and reads its events until its result (or error) event, which it
        returns. Events of other tasks on the same socket are passed to on_event too."""
        ws.send(json.dumps({"id": task_id, "task": task}))
        while True:
            event = json.loads(ws.recv())
            if on_event:
                on_event(event)
            if event.get("id") == task_id and event["event"] in ("result", "error"):
                return event

    # -- checks ---------------------------------------------------------------------------

    def check(self, ok, what):
        """Prints what was checked; counts a failure."""
        print("  [%s] %s" % ("ok" if ok else "FAILED", what))
        if not ok:
            self.failures += 1

    def exit(self):
        if self.failures:
            print("%d check(s) failed" % self.failures)
            sys.exit(1)
        print("all checks passed")


def show_event(event):
    """Prints one WebSocket event the way a user would want to read it."""
    kind = event["event"]
    if kind == "stream":
        sys.stdout.write("  [%s %s] %s" % (event["id"], event["name"], event["text"]))
        if not event["text"].endswith("\n"):
            sys.stdout.write("\n")
    elif kind == "progress":
        print("  [%s progress] %3.0f%% %s" % (event["id"], 100 * event["fraction"],
                                              event.get("message") or ""))
    elif kind in ("result", "error"):
        pass  # the caller prints those
    else:
        print("  [%s %s] %s" % (event["id"], kind,
                               json.dumps({k: v for k, v in event.items()
                                           if k not in ("id", "event")})))


def summary(result):
    """One line about an ExecutionResult."""
    limits = result.get("limits") or {}
    text = "success=%s exit_code=%s time=%.3fs memory=%s" % (
        result.get("success"), result.get("exit_code"), result.get("execution_time") or 0,
        result.get("memory_used"))
    if limits.get("hit"):
        text += " limit hit: %s (%s)" % (limits["hit"], limits.get("message"))
    if result.get("exception_info"):
        e = result["exception_info"]
        text += " exception: %s: %s (line %s)" % (e.get("type"), e.get("message"),
                                                 e.get("line"))
    return text
