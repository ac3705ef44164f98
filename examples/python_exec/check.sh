#!/bin/sh
# Test for these examples: starts the gateway on a free port with --scripts-dir pointing at
# scripts/, runs one example against it (as the README says) and passes on its exit status.
# Usage: check.sh PATH/TO/sandcell EXAMPLE.py
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
# The gateway reads SANDCELL_* variables as options and refuses unknown ones.
unset_vars=$(env | sed -n 's/^\(SANDCELL_[A-Z0-9_]*\)=.*/-u \1/p')
# shellcheck disable=SC2086
env $unset_vars "$1" --port 0 --token example-token --scripts-dir "$here/scripts" \
	--history-db :memory: >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 300); do # up to 30 s on a busy machine
	grep -q listening "$out" && break
	sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^?]*\)?token=.*/\1/p' "$out")
[ -n "$url" ] || { echo "the gateway did not start"; exit 1; }
cd "$here"
PYTHONDONTWRITEBYTECODE=1 SANDCELL_TOKEN=example-token /usr/bin/python3 "$here/$2" --url "${url%/}"
