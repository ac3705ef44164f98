"""Summary statistics of the numbers given as arguments, printed as JSON.

    stats.py 3 1 4 1 5    ->  {"n": 5, "mean": 2.8, "median": 3, "min": 1, "max": 5}

Exits with status 2 and a usage line when no number is given. Needs only the standard
library, so it runs under every security profile.
"""
import json
import statistics
import sys


def main(args):
    if not args:
        print("usage: stats.py NUMBER...", file=sys.stderr)
        return 2
    numbers = [float(a) if "." in a else int(a) for a in args]
    print(json.dumps({"n": len(numbers), "mean": statistics.mean(numbers),
                      "median": statistics.median(numbers), "min": min(numbers),
                      "max": max(numbers)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
