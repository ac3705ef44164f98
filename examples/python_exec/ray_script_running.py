#!/usr/bin/python3
"""Running the operator's scripts with execute_file: arguments, environment variables, exit
codes, streaming, and a path that is refused. The scripts are in examples/python_exec/scripts/;
start sandcell with --scripts-dir pointing there (see README.md).

    examples/python_exec/ray_script_running.py --url http://127.0.0.1:8888 --token "$SANDCELL_TOKEN"

Exits 1 if a result is not what it should be.
"""
import json

from task_client import Client, parse_args, show_event, summary


def main():
    args = parse_args(__doc__.splitlines()[0])
    c = Client(args.url, args.token)

    print("1. stats.py with arguments")
    status, r = c.post_task("execute-file", {"file_path": "stats.py",
                                             "arguments": ["3", "1", "4", "1", "5"]})
    if status != 200:
        print("  HTTP %s: %s" % (status, r))
        if status == 503:
            print("  (is sandcell started with --scripts-dir examples/python_exec/scripts?)")
        c.check(False, "stats.py ran")
        c.exit()
    print("  %s\n  stdout: %s" % (summary(r), r["stdout"].strip()))
    stats = json.loads(r["stdout"])
    c.check(stats == {"n": 5, "mean": 2.8, "median": 3, "min": 1, "max": 5},
            "the statistics are right")

    print("2. stats.py without arguments: its exit status comes back")
    status, r = c.post_task("execute-file", {"file_path": "stats.py"})
    print("  %s\n  stderr: %s" % (summary(r), r.get("stderr", "").strip()))
    c.check(status == 200 and r["exit_code"] == 2 and r["success"] is False, "exit code 2")

    print("3. greet.py with environment variables (it reads os.environ: permissive profile)")
    status, r = c.post_task("execute-file", {"file_path": "greet.py",
                                             "environment_vars": {"GREETING": "Hi",
                                                                  "NAME": "Ray"},
                                             "security_level": "permissive"})
    print("  %s\n  stdout: %s" % (summary(r), r.get("stdout", "").strip()))
    c.check(status == 200 and r["stdout"] == "Hi, Ray!\n", "the greeting used the environment")

    print("4. an environment variable that could change the interpreter is refused")
    status, r = c.post_task("execute-file", {"file_path": "greet.py",
                                             "environment_vars": {"PYTHONPATH": "/tmp"}})
    print("  HTTP %s: %s" % (status, json.dumps(r)))
    c.check(status == 400, "HTTP 400")

    print("5. countdown.py over the WebSocket, output as it is printed")
    ws = c.websocket()
    event = Client.run_ws(ws, "countdown", {"type": "execute_file", "file_path": "countdown.py",
                                            "arguments": ["4"]}, show_event)
    r = event.get("result") or {}
    print("  result: %s" % summary(r))
    c.check(r.get("stdout", "").endswith("lift-off\n"), "the countdown finished")
    ws.close()

    print("6. a path outside the scripts directory")
    status, r = c.post_task("execute-file", {"file_path": "../README.md"})
    print("  HTTP %s: %s" % (status, json.dumps(r)))
    c.check(status == 400, "HTTP 400")
    c.exit()


if __name__ == "__main__":
    main()
