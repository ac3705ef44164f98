#!/usr/bin/python3
"""Run Python code on a sandcell kernel through jupyter_client and print what comes back.

    JUPYTER_PATH=PREFIX examples/jupyter-client/run_code.py "print('hi'); 6 * 7"

PREFIX is where `sandcell-kernel --install-kernelspec PREFIX` wrote the kernelspec. Each
argument is one cell; the cells share one kernel, so later cells see earlier variables.
Exits 1 if a cell raised.
"""
import sys

from jupyter_client.manager import start_new_kernel


def show(msg):
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        target = sys.stdout if content["name"] == "stdout" else sys.stderr
        target.write(content["text"])
    elif kind in ("execute_result", "display_data"):
        data = content["data"]
        print(data.get("text/plain", "<%s>" % ", ".join(sorted(data))))
    elif kind == "error":
        print("\n".join(content["traceback"]), file=sys.stderr)


def main(cells):
    km, kc = start_new_kernel(kernel_name="sandcell")
    failed = False
    try:
        for code in cells:
            reply = kc.execute_interactive(code, output_hook=show, timeout=60)
            failed |= reply["content"]["status"] != "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
