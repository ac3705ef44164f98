"""Runs Node tests in tests/js (`node --test`) against a server started by the harness: the
server's URL and token go to node in SANDCELL_GW_URL / SANDCELL_GW_TOKEN.

    npm ci --prefix tests/js          # once: installs the pinned packages
    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/run_js.py
    SANDCELL_GW_TARGET=jupyter /usr/bin/python3 tests/gateway_it/run_js.py   # reference
    SANDCELL_BUILDDIR=build /usr/bin/python3 tests/gateway_it/run_js.py --dir browser

--dir test (the default) holds the @jupyterlab/services tests; --dir browser the headless
Chromium tests (playwright-core driving Debian's /usr/bin/chromium): the notebook page, and
classic Jupyter Notebook in gateway mode. Their screenshots go to SANDCELL_SHOTS_DIR
(default BUILDDIR/browser-shots), whose files are listed at the end.

Exits with node's status, or 1 if the server left kernel processes behind.
"""

import argparse
import os
import shutil
import subprocess
import sys

import harness

JS_DIR = os.path.join(harness.REPO, "tests", "js")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--dir", default="test", choices=["test", "browser"],
                    help="which tests/js directory to run")
    args = ap.parse_args()
    node = shutil.which("node")
    if not node:
        print("run_js: `node` is not on PATH (Node.js 20 or newer is needed)", file=sys.stderr)
        return 1
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@jupyterlab", "services")):
        print("run_js: %s/node_modules is missing: run `npm ci --prefix tests/js` first"
              % JS_DIR, file=sys.stderr)
        return 1
    env_extra = {}
    if args.dir == "browser":
        if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "playwright-core")):
            print("run_js: playwright-core is missing: run `npm ci --prefix tests/js` first",
                  file=sys.stderr)
            return 1
        if not os.access("/usr/bin/chromium", os.X_OK):
            print("run_js: /usr/bin/chromium is missing: install Debian's chromium "
                  "(scripts/deps does)", file=sys.stderr)
            return 1
        shots = os.environ.get("SANDCELL_SHOTS_DIR") or os.path.join(
            os.environ.get("SANDCELL_BUILDDIR", harness.REPO), "browser-shots")
        os.makedirs(shots, exist_ok=True)
        env_extra["SANDCELL_SHOTS_DIR"] = os.path.abspath(shots)
    harness.check_target()
    srv = harness.Server(name="js-" + args.dir).start()
    print("run_js: node --test %s/ against %s at %s" % (args.dir, harness.TARGET, srv.base),
          flush=True)
    env = dict(os.environ, SANDCELL_GW_URL=srv.base, SANDCELL_GW_TOKEN=srv.token,
               SANDCELL_GW_TARGET=harness.TARGET, **env_extra)
    tests = sorted(os.path.join(args.dir, f)
                   for f in os.listdir(os.path.join(JS_DIR, args.dir))
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
        if env_extra.get("SANDCELL_SHOTS_DIR"):
            shots = env_extra["SANDCELL_SHOTS_DIR"]
            for f in sorted(os.listdir(shots)):
                kind = "screenshot" if f.endswith(".png") else "file"
                print("run_js: %s %s" % (kind, os.path.join(shots, f)))
    if problems and not harness.REFERENCE:
        print("run_js: " + "; ".join(problems), file=sys.stderr)
        return rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
