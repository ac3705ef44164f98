"""Runs the @jupyterlab/services tests (tests/js, `node --test`) against a server started by
the harness: the server's URL and token go to node in SANDCELL_GW_URL / SANDCELL_GW_TOKEN.

    npm ci --prefix tests/js          # once: installs the pinned packages
    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/run_js.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/run_js.py   # reference

Exits with node's status, or 1 if the server left kernel processes behind.
"""

import os
import shutil
import subprocess
import sys

import harness

JS_DIR = os.path.join(harness.REPO, "tests", "js")


def main():
    node = shutil.which("node")
    if not node:
        print("run_js: `node` is not on PATH (Node.js 20 or newer is needed)", file=sys.stderr)
        return 1
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@jupyterlab", "services")):
        print("run_js: %s/node_modules is missing: run `npm ci --prefix tests/js` first"
              % JS_DIR, file=sys.stderr)
        return 1
    harness.check_target()
    srv = harness.Server(name="js").start()
    print("run_js: node --test against %s at %s" % (harness.TARGET, srv.base), flush=True)
    env = dict(os.environ, SANDCELL_GW_URL=srv.base, SANDCELL_GW_TOKEN=srv.token,
               SANDCELL_GW_TARGET=harness.TARGET)
    tests = sorted(os.path.join("test", f) for f in os.listdir(os.path.join(JS_DIR, "test"))
                   if f.endswith(".test.js"))
    argv = [node, "--test", "--test-concurrency=1", "--test-timeout=240000"] + tests
    rc = 1
    try:
        proc = subprocess.Popen(argv, cwd=JS_DIR, env=env)
        try:
            rc = proc.wait(timeout=400)
        except subprocess.TimeoutExpired:
            print("run_js: node --test did not finish within 400 s", file=sys.stderr)
            proc.kill()
            proc.wait()
            rc = 1
    finally:
        srv.snapshot_kernels()
        problems = srv.stop(check=False)
    if problems and not harness.REFERENCE:
        print("run_js: " + "; ".join(problems), file=sys.stderr)
        return rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
