#!/bin/sh
# Test for this example: starts the gateway on a free port, runs the README's command and
# compares what it prints. Usage: check.sh PATH/TO/sandcell
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
env -u SANDCELL_KERNEL "$1" --port 0 --token example-token >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 300); do # up to 30 s on a busy machine
	grep -q listening "$out" && break
	sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^?]*\)?token=.*/\1/p' "$out")
[ -n "$url" ] || { echo "the gateway did not start"; exit 1; }
got=$(/usr/bin/python3 "$here/run_cell.py" "$url" example-token "for i in range(3): print(i)
6 * 7")
want="0
1
2
42"
if [ "$got" != "$want" ]; then
	printf 'expected:\n%s\ngot:\n%s\n' "$want" "$got"
	exit 1
fi
echo "1 passed, 0 failed"
