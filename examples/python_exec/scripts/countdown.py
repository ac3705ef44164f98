"""Counts down from the first argument (default 3), one line and one progress report every
0.2 s: run it over the WebSocket to watch the output arrive as it is printed."""
import sys
import time

import sandcell

start = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for i in range(start, 0, -1):
    print(i, flush=True)
    sandcell.progress((start - i + 1) / start, "%d to go" % (i - 1))
    time.sleep(0.2)
print("lift-off")
