"""Helpers shared by the benchmarks in bench/: machine and build facts, ratio formatting."""
import json
import os
import subprocess


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.1f}x"


def git_rev(path):
    try:
        out = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )
        rev = out.stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def meson_build_type(builddir):
    """e.g. 'debugoptimized' or 'debug, sanitize=address' from meson-info; None if unknown."""
    try:
        with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    text = str(opts.get("buildtype", "?"))
    if opts.get("b_sanitize") not in (None, "none", ""):
        text += f", sanitize={opts['b_sanitize']}"
    return text
