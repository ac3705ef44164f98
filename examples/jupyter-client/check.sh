#!/bin/sh
# Test for this example: runs the README's commands and compares what they print.
# Usage: check.sh PATH/TO/sandcell-kernel
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
"$1" --install-kernelspec "$prefix" >/dev/null
got=$(JUPYTER_PATH="$prefix" /usr/bin/python3 "$here/run_code.py" \
	"import math; r = 2" "print('area', math.pi * r * r)" "r ** 10")
want="area 12.566370614359172
1024"
if [ "$got" != "$want" ]; then
	printf 'expected:\n%s\ngot:\n%s\n' "$want" "$got"
	exit 1
fi
# A cell that raises makes the example exit 1.
if JUPYTER_PATH="$prefix" /usr/bin/python3 "$here/run_code.py" "1/0" 2>/dev/null; then
	echo "a failing cell should make run_code.py exit 1"
	exit 1
fi
echo "1 passed, 0 failed"
