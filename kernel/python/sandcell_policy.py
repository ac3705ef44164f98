"""Import policy and friendly limit messages of a sandboxed sandcell kernel.

This is policy, not the wall.  The sandbox proper (namespaces, seccomp,
rlimits, cgroups) is set up by the C side and holds whatever Python code
does.  This module only makes the common cases fail early and clearly:

* an import policy per security profile: ``strict`` has an allowlist of
  pure computation modules, ``moderate`` and ``permissive`` a blocklist of
  modules that reach for operating-system power;
* a static check of a cell before any of it runs, reporting every refused
  import with its line;
* better messages for errors caused by the sandbox's limits (``MemoryError``
  -> "memory limit of 100 MB exceeded", ``ENOSPC`` -> "disk limit ...").

Only imports made *directly by user code* are checked.  Modules imported by
a library the user imported (json importing re, random importing os) are
always allowed.  The importer is the code that ran the import statement,
the ``__import__`` call or ``importlib.import_module``; it counts as user
code unless its file lies under one of the interpreter's library
directories (``sys.path`` when the policy is installed) or is frozen
(``<frozen ...>``, ``<sandcell>/...``).  So cells, ``exec``'d strings and
modules the user wrote into the workspace are all user code.

Two hooks are needed: a meta-path finder sees only modules that are not
loaded yet (os, sys and friends are loaded at start-up), and
``builtins.__import__`` sees every import statement but not
``importlib.import_module``.

Expected bypasses, stopped by the OS layer instead: any allowed module's
attributes (``random._os``), ``sys.modules``, ``object.__subclasses__()``,
frames and globals of kernel functions, code compiled under a library
file name, rebinding ``builtins.__import__``.  Refusing an import here is a
courtesy to the user, never a security boundary.
"""

import builtins
import errno
import sys
from importlib.util import resolve_name

__all__ = ["PROFILES", "PRELOAD", "KERNEL_MODULES", "ImportPolicyError",
           "Policy", "from_config", "uninstall", "friendly_error",
           "format_size", "preload_files"]

# Code objects compiled from this file carry this filename: the import
# hooks skip their own frames, tracebacks shown to the user drop them.
_THIS_FILE = (lambda: 0).__code__.co_filename

# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------

# An entry covers the module and its submodules ("collections" covers
# "collections.abc").  "allow": None means no allowlist.
PROFILES = {
    # Pure computation.  Everything here is safe to call with no OS access
    # beyond reading the clock, random bytes and (zoneinfo) the time-zone
    # database.  io and csv are here for StringIO/BytesIO and in-memory
    # CSV; open() is a builtin anyway.  _strptime is imported by
    # time.strptime/datetime.strptime from C, i.e. from the user's frame.
    "strict": {
        "allow": (
            "_strptime", "abc", "array", "base64", "binascii", "bisect",
            "calendar", "cmath", "collections", "contextlib", "copy", "csv",
            "dataclasses", "datetime", "decimal", "difflib", "enum",
            "fractions", "functools", "graphlib", "hashlib", "heapq", "hmac",
            "io", "itertools", "json", "math", "numbers", "operator",
            "pprint", "random", "re", "reprlib", "secrets", "statistics",
            "string", "struct", "textwrap", "time", "traceback", "types",
            "typing", "unicodedata", "uuid", "warnings", "zoneinfo",
        ),
        "block": (),
    },
    # Operating-system power: processes, raw files and descriptors, FFI,
    # sockets, signals, limits, terminals, memory maps, code loading and
    # the debugger.  Deliberately NOT blocked:
    # * sys: sys.version, sys.getsizeof, sys.setrecursionlimit, sys.exit and
    #   sys.stdout are everyday notebook code; its real power (sys.modules
    #   reaching an already loaded os) is one of the bypasses listed above;
    # * threading (the thread limit bounds it), shutil and tempfile (file
    #   work inside the workspace, as pathlib), pickle (the modules a pickle
    #   names are imported from the user's frame, so they are checked),
    #   builtins, gc, code/codeop: they grant nothing the sandbox does not
    #   already bound;
    # * asyncio.subprocess: an attribute of asyncio, which top-level await
    #   needs; running a program fails at exec in the sandbox.
    # importlib is blocked although import_module is followed (the finder
    # looks past importlib's frames): its loaders run files as modules.
    "moderate": {
        "allow": None,
        "block": (
            "_cffi_backend", "_ctypes", "_multiprocessing", "_posixshmem",
            "_posixsubprocess", "_signal", "_socket", "_ssl", "cffi",
            "ctypes", "faulthandler", "fcntl", "importlib", "marshal", "mmap",
            "multiprocessing", "nt", "os", "pdb", "posix", "pty", "resource",
            "select", "selectors", "signal", "socket", "ssl", "subprocess",
            "sysconfig", "termios", "tty",
        ),
    },
    # Processes and exec are allowed in this profile, so are subprocess and
    # mmap (numpy.memmap).  Left: foreign-function interfaces, which can
    # rewrite the interpreter's memory, and pseudo-terminals.
    "permissive": {
        "allow": None,
        "block": ("_cffi_backend", "_ctypes", "cffi", "ctypes", "pty"),
    },
    # Only what the configuration gives (allow/block in the policy).
    "custom": {
        "allow": None,
        "block": (),
    },
}

# The kernel's own modules: refused to user code under every policy (the
# obvious way to switch the policy off from a cell).
KERNEL_MODULES = ("_sandcell", "sandcell_display", "sandcell_introspect",
                  "sandcell_kernel", "sandcell_policy", "sandcell_task",
                  "sandcell_validate")

# Always allowed: `from __future__ import ...` also imports the module, and
# `sandcell` is the kernel's public module for user code (comms).
_ALWAYS_ALLOWED = ("__future__", "sandcell")

# Extra words for a refusal, by top-level module: (the module suggested,
# which the policy must allow, the words).
_HINTS = {
    "os": ("pathlib", "pathlib and shutil cover files and paths"),
}

# Every C extension module that the strict allowlist, the encodings that
# str.encode can reach and the kernel's own machinery (json, top-level
# await through asyncio, tracebacks, completion, a task's CPU time) may
# load.  Some are built into the interpreter on one build and shared
# objects on another; the list covers both.  A kernel whose sandbox forbids new executable
# mappings must load these before the seccomp filter (preload_files()).
PRELOAD = (
    "_asyncio", "_bisect", "_blake2", "_bz2", "_codecs_cn", "_codecs_hk",
    "_codecs_iso2022", "_codecs_jp", "_codecs_kr", "_codecs_tw",
    "_contextvars", "_csv", "_datetime", "_decimal", "_hashlib", "_heapq",
    "_json", "_md5", "_multibytecodec", "_opcode", "_posixsubprocess",
    "_random", "_sha1", "_sha256", "_sha3", "_sha512", "_socket", "_ssl",
    "_statistics", "_struct", "_typing", "_uuid", "_zoneinfo", "array",
    "binascii", "cmath", "fcntl", "math", "resource", "select",
    "unicodedata", "zlib",
)


def preload_files(names=PRELOAD):
    """The files of the extension modules in names that are shared objects
    on this interpreter (built-in ones and missing ones are left out), for
    the C side to dlopen before the seccomp filter.  Nothing is imported."""
    from importlib.machinery import ExtensionFileLoader, PathFinder
    files = []
    for name in names:
        if name in sys.builtin_module_names:
            continue
        spec = PathFinder.find_spec(name)
        if spec is not None and isinstance(spec.loader, ExtensionFileLoader):
            files.append(spec.origin)
    return files


# ---------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------

class ImportPolicyError(ModuleNotFoundError):
    """An import refused by the security profile.  A ModuleNotFoundError,
    so `except ImportError` and `except ModuleNotFoundError` catch it."""


def _covered(name, entries):
    """True if name or one of its parent packages is in entries."""
    while True:
        if name in entries:
            return True
        name, dot, _ = name.rpartition(".")
        if not dot:
            return False


def _names(value, what):
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) and v for v in value):
        raise ValueError("policy: %s must be a list of module names" % what)
    return frozenset(value)


class Policy:
    """One kernel's import policy and limits (see from_config)."""

    def __init__(self, profile, allow, block, limits=None, network=False,
                 provided=()):
        self.profile = profile
        self.allow = None if allow is None else frozenset(allow)
        self.block = frozenset(block) | frozenset(KERNEL_MODULES)
        self.limits = dict(limits or {})
        self.network = bool(network)
        # Modules the kernel serves itself (the IPython shim): allowed by
        # any allowlist, still subject to the blocklist.
        self.provided = frozenset(provided)

    def refuses(self, name):
        """True if user code may not import the module `name`."""
        if _covered(name, self.block):
            return True
        if self.allow is None:
            return False
        return not (_covered(name, self.allow) or _covered(name, self.provided)
                    or _covered(name, _ALWAYS_ALLOWED))

    def message(self, refused):
        """The refusal text for [(module, [line, ...]), ...]."""
        parts = []
        for name, lines in refused:
            where = ""
            if lines:
                where = " (line%s %s)" % ("s" if len(lines) > 1 else "",
                                          ", ".join(str(n) for n in lines))
            parts.append("'%s'%s" % (name, where))
        several = len(refused) > 1
        text = "import%s of %s %s " % ("s" if several else "", ", ".join(parts),
                                      "are" if several else "is")
        if self.allow is None:
            text += "blocked under the %s security profile" % self.profile
        else:
            names = {n for n in self.allow | self.provided
                     if not n.startswith("_") and not self.refuses(n)}
            # "IPython" stands for IPython.display and the rest.
            shown = sorted(n for n in names
                           if not _covered(n.rpartition(".")[0], names))
            text += ("not allowed under the %s security profile (allowed: %s)"
                     % (self.profile, ", ".join(shown) or "none"))
        hints = set()
        for name, _ in refused:
            alternative, hint = _HINTS.get(name.partition(".")[0], (None, ""))
            if alternative and not self.refuses(alternative):
                hints.add(hint)
        if hints:
            text += "; " + "; ".join(sorted(hints))
        return text

    def error(self, refused):
        return ImportPolicyError(self.message(refused), name=refused[0][0])

    def check_tree(self, tree):
        """Raise one ImportPolicyError naming every refused import in a
        parsed cell (ast.Module) with its lines; return None if all pass."""
        found = {}
        for name, line in _imports_in(tree):
            if self.refuses(name):
                found.setdefault(name, set()).add(line)
        # A refused submodule of a refused package is reported under the
        # package: `from os import path` is about 'os'.
        for name in sorted(found, key=len, reverse=True):
            parent = name.rpartition(".")[0]
            while parent and parent not in found:
                parent = parent.rpartition(".")[0]
            if parent:
                found[parent] |= found.pop(name)
        if found:
            refused = sorted((min(lines), name, sorted(lines))
                             for name, lines in found.items())
            error = self.error([(name, lines) for _, name, lines in refused])
            # The first refused line, for a task's exception "line".
            error.sandcell_line = refused[0][0]
            raise error

    def explain(self, exc):
        """friendly_error() with this policy's limits and network."""
        return friendly_error(exc, self.limits, self.network)

    def install(self):
        """Hook this policy into the import system (replaces any other)."""
        _install(self)


def _combined_allow(base, given):
    """The allowlist narrowed by a given list: what both admit."""
    if given is None:
        return base
    if base is None:
        return given
    return (frozenset(n for n in given if _covered(n, base))
            | frozenset(n for n in base if _covered(n, given)))


def from_config(config, provided=()):
    """A Policy from the kernel configuration's "policy" object, or None
    for no policy (config None, or profile "none").

    Keys: "profile" (default "moderate"), "allow" (list or None),
    "block" (list), "limits" (dict), "network" (bool).  The given lists can
    only narrow the profile: the allowlist becomes the given list
    intersected with the profile's, the blocklist the profile's plus the
    given one.  So passing the fully resolved lists works as well.  Raises
    ValueError on a malformed policy (the kernel must not start then)."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ValueError("policy: must be an object")
    profile = config.get("profile", "moderate")
    if profile == "none":
        return None
    if profile not in PROFILES:
        raise ValueError("policy: unknown profile %r" % (profile,))
    base = PROFILES[profile]
    given = config.get("allow")
    if given is not None:
        given = _names(given, "allow")
    base_allow = None if base["allow"] is None else frozenset(base["allow"])
    allow = _combined_allow(base_allow, given)
    block = frozenset(base["block"]) | _names(config.get("block") or [], "block")
    limits = config.get("limits")
    if limits is None:
        limits = {}
    if not isinstance(limits, dict):
        raise ValueError("policy: limits must be an object")
    return Policy(profile, allow, block, limits,
                  config.get("network", False), provided)


# ---------------------------------------------------------------------------
# Static check
# ---------------------------------------------------------------------------

def _import_call_target(call):
    """The module a call imports when it is __import__("x") or
    import_module("x") (also as an attribute: importlib.import_module)
    with a constant, absolute name; else None."""
    import ast
    func = call.func
    called = (func.id if isinstance(func, ast.Name) else
              func.attr if isinstance(func, ast.Attribute) else None)
    if called not in ("__import__", "import_module") or not call.args:
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    name = first.value
    if not name or name.startswith("."):
        return None
    if called == "__import__":
        level = call.args[4] if len(call.args) > 4 else None
        for kw in call.keywords:
            if kw.arg == "level":
                level = kw.value
        if level is not None and not (isinstance(level, ast.Constant)
                                      and level.value == 0):
            return None     # relative, or not known before run time
    return name


def _imports_in(tree):
    """(module, line) for every import in the tree, nested ones included.
    Relative imports are left to run time: a cell has no package, so they
    fail there unless the namespace fakes one, which the hook resolves."""
    import ast      # on first use, like the kernel: start-up cost matters
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module == "__future__":
                continue
            yield node.module, node.lineno
            # `from pkg import sub` may import the submodule pkg.sub.
            for alias in node.names:
                if alias.name != "*":
                    yield node.module + "." + alias.name, node.lineno
        elif isinstance(node, ast.Call):
            name = _import_call_target(node)
            if name:
                yield name, node.lineno


# ---------------------------------------------------------------------------
# Run-time hooks
# ---------------------------------------------------------------------------

class _Hooks:
    """What install() put in place, for uninstall()."""
    policy = None
    original_import = None
    trusted = ()       # filename prefixes of library (non-user) code
    machinery = ()     # filename prefixes of import-system frames


def _trusted_prefixes():
    """Library directories (absolute sys.path entries) and frozen code."""
    import os
    prefixes = ["<frozen ", "<sandcell>/"]
    for entry in sys.path:
        if isinstance(entry, str) and os.path.isabs(entry):
            prefixes.append(os.path.join(os.path.normpath(entry), ""))
    return tuple(prefixes)


def _is_user_code(frame):
    return frame is not None and not frame.f_code.co_filename.startswith(
        _Hooks.trusted)


def _absolute_name(name, globals, level):
    """The module an import resolves to, or None when it cannot resolve
    (the real import then raises its usual error)."""
    if level == 0:
        return name
    if not isinstance(globals, dict):
        return None
    package = globals.get("__package__")
    if package is None:
        spec = globals.get("__spec__")
        package = getattr(spec, "parent", None)
    if package is None:
        package = globals.get("__name__", "")
        if "__path__" not in globals:
            package = package.rpartition(".")[0] if isinstance(package, str) else ""
    if not package or not isinstance(package, str):
        return None
    try:
        return resolve_name("." * level + name, package)
    except (ImportError, ValueError):
        return None


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    """builtins.__import__ while a policy is installed."""
    original = _Hooks.original_import
    policy = _Hooks.policy
    # f_back is None for an import made from C with no Python frame.
    if policy is None or not _is_user_code(sys._getframe().f_back):
        return original(name, globals, locals, fromlist, level)
    target = _absolute_name(name, globals, level) if isinstance(name, str) else None
    if target:
        if policy.refuses(target):
            raise policy.error([(target, [])])
        for item in fromlist or ():
            if isinstance(item, str) and item != "*":
                sub = target + "." + item
                if policy.refuses(sub):
                    raise policy.error([(sub, [])])
    return original(name, globals, locals, fromlist, level)


class _PolicyFinder:
    """First entry of sys.meta_path: refuses modules that are not loaded
    yet when user code asks for them, by any route (import_module too)."""

    def find_spec(self, fullname, path=None, target=None):
        policy = _Hooks.policy
        if policy is None or not policy.refuses(fullname):
            return None
        frame = sys._getframe().f_back
        while frame is not None and frame.f_code.co_filename.startswith(
                _Hooks.machinery):
            frame = frame.f_back
        if _is_user_code(frame):
            raise policy.error([(fullname, [])])
        return None


def _install(policy):
    import importlib
    uninstall()
    _Hooks.trusted = _trusted_prefixes()
    _Hooks.machinery = ("<frozen importlib.", _THIS_FILE,
                        importlib.import_module.__code__.co_filename)
    _Hooks.policy = policy
    _Hooks.original_import = builtins.__import__
    builtins.__import__ = _guarded_import
    sys.meta_path.insert(0, _PolicyFinder())


def uninstall():
    """Remove the hooks of any installed policy.  (If something wrapped
    builtins.__import__ after us, our hook stays in its chain and lets
    every import through.)"""
    if builtins.__import__ is _guarded_import:
        builtins.__import__ = _Hooks.original_import
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, _PolicyFinder)]
    _Hooks.policy = None


_guarded_import.__name__ = _guarded_import.__qualname__ = "__import__"
_guarded_import.__doc__ = builtins.__import__.__doc__


# ---------------------------------------------------------------------------
# Friendly limit messages
# ---------------------------------------------------------------------------

_SIZE_UNITS = (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20),
               ("KB", 1 << 10))


def format_size(n):
    """Bytes as the sandbox prints limits: "100 MB", "1 GB", "1.5 GB"
    (powers of 1024, at most two decimals, trailing zeros dropped)."""
    n = int(n)
    for unit, scale in _SIZE_UNITS:
        if n >= scale:
            text = ("%.2f" % (n / scale)).rstrip("0").rstrip(".")
            return "%s %s" % (text, unit)
    return "%d byte%s" % (n, "" if n == 1 else "s")


def _count(n, noun, plural):
    return "%d %s" % (n, noun if n == 1 else plural)


def _failing_call(exc):
    """The function name and source line of the innermost frame of the
    exception's traceback, lower-case ("" without a traceback)."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    import linecache
    code = tb.tb_frame.f_code
    line = linecache.getline(code.co_filename, tb.tb_lineno or 0,
                             tb.tb_frame.f_globals)
    return (code.co_name + " " + line).lower()


def _starts_process(exc):
    """Heuristic: did the failing call create a process?  (os.fork,
    subprocess's _fork_exec and _execute_child, posix_spawn, forkpty.)"""
    text = _failing_call(exc)
    return any(word in text for word in ("fork", "spawn", "exec"))


def _process_limit(limits):
    counts = []
    if limits.get("processes"):
        counts.append(_count(limits["processes"], "process", "processes"))
    if limits.get("threads"):
        counts.append(_count(limits["threads"], "thread", "threads"))
    if not counts:
        return None
    return "process limit reached (%s)" % ", ".join(counts)


def _size_limit(limits, key, text):
    if not limits.get(key):
        return None
    return text % format_size(limits[key])


def _friendly_evalue(exc, limits, network):
    if isinstance(exc, MemoryError):
        return _size_limit(limits, "memory", "memory limit of %s exceeded")
    if isinstance(exc, RuntimeError):
        if str(exc).startswith("can't start new thread"):
            return _process_limit(limits)
        return None
    if not isinstance(exc, OSError):
        return None
    code = exc.errno
    if code == errno.EAGAIN and _starts_process(exc):
        return _process_limit(limits)
    if code == errno.ENOMEM:
        return _size_limit(limits, "memory", "memory limit of %s exceeded")
    if code == errno.EFBIG:
        return _size_limit(limits, "file_size", "file size limit of %s reached")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return _size_limit(limits, "disk",
                           "disk limit of %s reached (the workspace is full)")
    if code == errno.EMFILE and limits.get("open_files"):
        return "open file limit of %d reached" % limits["open_files"]
    if code == errno.EPERM and (exc.filename is None or _starts_process(exc)):
        return "%s (denied by the sandbox)" % exc
    if not network and _is_offline_error(exc):
        return "%s (network access is off in this sandbox)" % exc
    return None


def _is_offline_error(exc):
    """A failed name lookup or an unreachable network, also wrapped (as
    urllib's URLError wraps it in .reason, or as a chained cause)."""
    for _ in range(5):
        if not isinstance(exc, BaseException):
            return False
        if (type(exc).__name__ == "gaierror" or getattr(exc, "errno", None)
                in (errno.ENETUNREACH, errno.EHOSTUNREACH)):
            return True
        reason = getattr(exc, "reason", None)
        exc = (reason if isinstance(reason, BaseException)
               else exc.__cause__ or exc.__context__)
    return False


def friendly_error(exc, limits, network=True):
    """A clearer (ename, evalue) for an exception that a sandbox limit
    probably caused, or None.  limits: the policy's "limits" object
    (bytes for memory, file_size and disk; counts otherwise); network:
    whether the sandbox has network access."""
    try:
        evalue = _friendly_evalue(exc, limits or {}, network)
    except Exception:
        return None
    if evalue is None:
        return None
    return type(exc).__name__, evalue
