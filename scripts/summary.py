"""Prints one closing line for a meson test run: 'name: N passed, N failed, N skipped'.

Usage: summary.py NAME TESTLOG.json. Exits 1 when a test failed or nothing ran.
"""
import json
import sys

name, path = sys.argv[1], sys.argv[2]
passed = failed = skipped = 0
with open(path) as f:
    for line in f:
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
            print("failed: %s (%s)" % (r.get("name"), res))
print("%s: %d passed, %d failed, %d skipped" % (name.split()[0], passed, failed, skipped))
sys.exit(1 if failed or passed == 0 else 0)
