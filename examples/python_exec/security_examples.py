#!/usr/bin/python3
"""What the sandbox says no to, as results: validation of risky code (nothing runs), an import
the strict profile refuses, a wall-clock timeout and a memory limit.

    examples/python_exec/security_examples.py --url http://127.0.0.1:8888 --token "$SANDCELL_TOKEN"

Exits 1 if a result is not what it should be.
"""
import json

from task_client import Client, parse_args, summary

RISKY = """\
import socket
data = open('/etc/passwd').read()
x = eval(input_text)
().__class__.__mro__[1].__subclasses__()
print('this line never runs during validation')
"""


def main():
    args = parse_args(__doc__.splitlines()[0])
    c = Client(args.url, args.token)

    print("1. validate risky code under strict (static analysis in a sandboxed kernel)")
    status, v = c.post_task("validate", {"code": RISKY, "security_level": "strict"})
    for w in v.get("security_warnings", []):
        print("  warning line %d: %s/%s %s" % (w["line"], w["severity"], w["category"],
                                              w["message"]))
    for i in v.get("import_issues", []):
        print("  import issue line %d: %s" % (i["line"], i["message"]))
    for rec in v.get("recommendations", []):
        print("  recommendation: %s" % rec)
    categories = {w["category"] for w in v.get("security_warnings", [])}
    c.check(status == 200 and v["is_valid"] is False, "not valid (socket is refused)")
    c.check({"dynamic_code", "introspection", "file"} <= categories,
            "warnings for eval, __subclasses__ and open")
    c.check("stdout" not in v, "nothing ran")

    print("2. the strict profile refuses an import when the code runs")
    status, r = c.post_task("execute", {"code": "import socket", "security_level": "strict"})
    print("  " + summary(r))
    c.check((r.get("exception_info") or {}).get("type", "").endswith("ImportPolicyError"),
            "ImportPolicyError")

    print("3. a 2 second timeout on an endless loop")
    status, r = c.post_task("execute", {"code": "while True:\n    pass", "timeout": 2})
    print("  " + summary(r))
    c.check(r.get("limits", {}).get("hit") == "wall_time" and r.get("exit_code") == 124,
            "limit hit: wall_time, exit code 124")

    print("4. a 100MB memory limit and a 300 MB allocation")
    status, r = c.post_task("execute", {"code": "block = b'x' * (300 * 1024 * 1024)",
                                        "memory_limit": "100MB"})
    print("  " + summary(r))
    c.check(r.get("limits", {}).get("hit") == "memory", "limit hit: memory")

    print("5. the limits a result ran under")
    print("  " + json.dumps(r.get("limits")))
    c.exit()


if __name__ == "__main__":
    main()
