"""Task mode of the sandcell kernel: what an ``execute_request`` that carries
``sandcell_task`` measures and reports (docs/python-api-json-reference.md,
"The kernel side").

* ``json_safe(value)`` turns any value into JSON the gateway can pass on:
  JSON natives as they are, anything else as ``{"type", "repr"}``.
* ``Task`` is one run: it snapshots the namespace, enters the working
  directory (and, for a script, sets up ``__main__``, ``sys.argv`` and the
  environment), measures CPU time and peak memory, keeps the value of the
  final expression, and builds ``sandcell_result``; ``finish()`` puts back
  what it changed.

sandcell_kernel imports this module on the first task and owns the Task it
creates; user code may not import it (sandcell_policy.KERNEL_MODULES).
"""

import builtins
import io
import os
import sys

__all__ = ["json_safe", "bounded_repr", "type_name", "snapshot",
           "changed_variables", "enter_directory", "exit_code", "Task"]

# Code objects compiled from this file carry this filename; tracebacks shown
# to the user drop frames that come from our modules.
_THIS_FILE = (lambda: 0).__code__.co_filename

# Relative working directories are below WORKSPACE; missing directories are
# created below WORKSPACE or TMP only.  (Module attributes: tests move them.)
WORKSPACE = "/workspace"
TMP = "/tmp"

MAX_DEPTH = 20               # nesting of a JSON value
MAX_JSON = 64 * 1024         # bytes of one value's JSON text
MAX_REPR = 1000              # characters of a repr in a value
MAX_CHANGED_REPR = 200       # characters of a repr in changed_variables
MAX_CHANGED = 1000           # entries in changed_variables
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1

# Names a fresh user namespace holds for the kernel, not for the user.
KERNEL_NAMES = frozenset(("In", "Out", "get_ipython", "exit", "quit",
                          "display"))


# ---------------------------------------------------------------------------
# Values as JSON
# ---------------------------------------------------------------------------

_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__


def type_name(obj):
    """"module.qualname" of obj's type, the bare name for builtins.  Read
    through type's own descriptors, so a metaclass cannot run code here."""
    try:
        t = type(obj)
        qual = _type_qualname(t)
        mod = _type_module(t)
        if not isinstance(qual, str):
            return "object"
        if not isinstance(mod, str) or mod == "builtins":
            return str.__str__(qual)
        return "%s.%s" % (str.__str__(mod), str.__str__(qual))
    except BaseException:
        return "object"


class _Enough(Exception):
    """The repr being built is long enough."""


_OPEN_CLOSE = {list: ("[", "]"), tuple: ("(", ")"), dict: ("{", "}"),
               set: ("{", "}"), frozenset: ("frozenset({", "})")}


def _emit(out, text, room):
    out.append(text[:room[0]])
    room[0] -= len(text)
    if room[0] <= 0:
        raise _Enough


def _repr_into(obj, out, room, depth, active):
    """Append repr(obj) to out piece by piece, stopping (_Enough) when room
    is used up: builtin containers, strings, bytes and arrays are never
    turned into one huge string first."""
    t = type(obj)
    base = _base_with_own_repr(t)
    if base in (str, bytes, bytearray) or (base is not None and base is _array_type()):
        if len(obj) > room[0]:
            obj = base.__getitem__(obj, slice(0, room[0]))
        _emit(out, base.__repr__(obj), room)
    elif base is not None and base is _deque_type() and depth < MAX_DEPTH:
        if id(obj) in active:
            _emit(out, "[...]", room)
            return
        active.add(id(obj))
        _emit(out, "deque([", room)
        for i, item in enumerate(base.__iter__(obj)):
            if i:
                _emit(out, ", ", room)
            _repr_into(item, out, room, depth + 1, active)
        _emit(out, "]", room)
        if base.maxlen.__get__(obj) is not None:
            _emit(out, ", maxlen=%d" % base.maxlen.__get__(obj), room)
        _emit(out, ")", room)
        active.discard(id(obj))
    elif base in _OPEN_CLOSE and depth < MAX_DEPTH:
        if id(obj) in active:
            _emit(out, "[...]" if base is list else "{...}" if base is dict else "...", room)
            return
        if not base.__len__(obj):
            _emit(out, {list: "[]", tuple: "()", dict: "{}", set: "set()",
                        frozenset: "frozenset()"}[base], room)
            return
        active.add(id(obj))
        opening, closing = _OPEN_CLOSE[base]
        _emit(out, opening, room)
        items = dict.items(obj) if base is dict else base.__iter__(obj)
        for i, item in enumerate(items):
            if i:
                _emit(out, ", ", room)
            if base is dict:
                _repr_into(item[0], out, room, depth + 1, active)
                _emit(out, ": ", room)
                item = item[1]
            _repr_into(item, out, room, depth + 1, active)
        if base is tuple and tuple.__len__(obj) == 1:
            _emit(out, ",", room)
        _emit(out, closing, room)
        active.discard(id(obj))
    else:
        _emit(out, repr(obj), room)


def _array_type():
    return getattr(sys.modules.get("array"), "array", None)


def _deque_type():
    return getattr(sys.modules.get("collections"), "deque", None)


_REPR_BASES = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _base_with_own_repr(t):
    """The builtin type whose repr t uses unchanged (t itself, or a subclass
    that does not define __repr__), else None."""
    try:
        candidates = _REPR_BASES + tuple(x for x in (_array_type(), _deque_type())
                                         if x is not None)
        for base in candidates:
            if t is base or (issubclass(t, base) and t.__repr__ is base.__repr__):
                return base
    except Exception:
        pass
    return None


def bounded_repr(obj, limit=MAX_REPR):
    """repr(obj) cut at limit characters; "<repr failed: ExcType>" when the
    repr raises (anything, KeyboardInterrupt included).  Never raises."""
    out = []
    try:
        _repr_into(obj, out, [limit], 0, set())
    except _Enough:
        pass
    except BaseException as exc:
        return "<repr failed: %s>" % type_name(exc)
    try:
        text = "".join(out)
        return text if type(text) is str else "<repr failed: TypeError>"
    except BaseException as exc:
        return "<repr failed: %s>" % type_name(exc)


def _describe(value, limit=MAX_REPR):
    return {"type": type_name(value), "repr": bounded_repr(value, limit)}


def _json_string(s):
    """s as a JSON string literal, non-ASCII kept (json's encoder)."""
    global _json_string
    from json.encoder import encode_basestring
    _json_string = encode_basestring
    return encode_basestring(s)


class _TooBig(Exception):
    """The value's JSON text is over MAX_JSON."""


def _str_size(s):
    """Bytes of s as a JSON string (quotes and escapes included)."""
    text = _json_string(s)
    return len(text.encode("utf-8", "surrogatepass"))


def _spend(room, n):
    room[0] -= n
    if room[0] < 0:
        raise _TooBig


def _native(value, depth, room):
    """value as JSON natives, with non-JSON parts described; raises _TooBig
    when the JSON text would be over room[0] bytes."""
    if value is None:
        _spend(room, 4)
        return None
    if value is True or value is False:
        _spend(room, 5)
        return bool(value)
    if isinstance(value, str):
        if len(value) > room[0]:
            raise _TooBig
        value = str.__str__(value)
        _spend(room, _str_size(value))
        return value
    if isinstance(value, int):
        number = int.__int__(value)
        if _INT_MIN <= number <= _INT_MAX:
            _spend(room, len(int.__repr__(number)))
            return number
        value = {"type": type_name(value), "repr": bounded_repr(number)}
    elif isinstance(value, float):
        number = float.__float__(value)
        if number != number or number in (float("inf"), float("-inf")):
            value = {"type": "float", "repr": float.__repr__(number)}
        else:
            _spend(room, len(float.__repr__(number)))
            return number
    elif isinstance(value, (list, tuple)) and depth < MAX_DEPTH:
        items = list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value)
        out = []
        _spend(room, 2)
        for item in items:
            if out:
                _spend(room, 1)
            out.append(_native(item, depth + 1, room))
        return out
    elif (isinstance(value, dict) and depth < MAX_DEPTH
          and all(isinstance(k, str) for k in dict.keys(value))):
        out = {}
        _spend(room, 2)
        for key, item in list(dict.items(value)):
            if out:
                _spend(room, 1)
            key = str.__str__(key)
            _spend(room, _str_size(key) + 1)
            out[key] = _native(item, depth + 1, room)
        return out
    else:
        value = _describe(value)
    # A description: its size counts too.
    _spend(room, 12 + _str_size(value["type"]) + _str_size(value["repr"]))
    return value


def json_safe(value):
    """value as a JSON-safe object: None, bool, 64-bit int, finite float,
    str, and lists/tuples (as lists) and str-keyed dicts of those up to
    MAX_DEPTH levels stay what they are; anything else becomes
    {"type": "module.qualname", "repr": repr cut at MAX_REPR} (non-finite
    floats {"type": "float", "repr": "nan"}); a value whose JSON text would
    be over MAX_JSON bytes becomes its description with "truncated": true.
    Never raises."""
    try:
        return _native(value, 0, [MAX_JSON])
    except _TooBig:
        out = _describe(value)
        out["truncated"] = True
        return out
    except BaseException:
        return _describe(value)


# ---------------------------------------------------------------------------
# Changed variables
# ---------------------------------------------------------------------------

def _sized_types():
    types = [list, dict, set, bytearray]
    collections = sys.modules.get("collections")
    deque = getattr(collections, "deque", None)
    if isinstance(deque, type):
        types.append(deque)
    return tuple(types)


def _fingerprint(value, sized):
    """(id, type, length for builtin containers): what a rebinding or a
    resize changes.  The length is read through the base class, so no user
    __len__ runs."""
    length = None
    for base in sized:
        if isinstance(value, base):
            try:
                length = base.__len__(value)
            except BaseException:
                length = None
            break
    return (id(value), type(value), length)


def _watched(name):
    return (isinstance(name, str) and not name.startswith("_")
            and name not in KERNEL_NAMES)


def snapshot(ns):
    """name -> fingerprint for the user's names in the namespace ns.  Holds
    no reference to the values (a rebound value must be free to go)."""
    sized = _sized_types()
    return {name: _fingerprint(value, sized)
            for name, value in list(dict.items(ns)) if _watched(name)}


def changed_variables(before, ns):
    """name -> {"type", "repr"} of every watched name of ns created,
    rebound or resized since the snapshot before (at most MAX_CHANGED)."""
    sized = _sized_types()
    out = {}
    for name, value in list(dict.items(ns)):
        if not _watched(name):
            continue
        if before.get(name) != _fingerprint(value, sized):
            out[str.__str__(name)] = _describe(value, MAX_CHANGED_REPR)
            if len(out) >= MAX_CHANGED:
                break
    return out


# ---------------------------------------------------------------------------
# Working directory, measurements, exit codes
# ---------------------------------------------------------------------------

def _below(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def enter_directory(path):
    """chdir to path (relative: below WORKSPACE), creating it when missing
    below WORKSPACE or TMP.  Returns the previous working directory (None
    when it is gone).  Raises OSError (FileNotFoundError for a missing
    directory elsewhere), TypeError, or ValueError for a relative path
    that climbs out of WORKSPACE."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise TypeError("working_directory must be a non-empty string")
    target = os.path.normpath(os.path.join(WORKSPACE, path))
    if not os.path.isabs(path) and not _below(target, WORKSPACE):
        raise ValueError("working directory '%s' leaves %s: relative paths are "
                         "below %s" % (path, WORKSPACE, WORKSPACE))
    if not os.path.isdir(target):
        if os.path.lexists(target):
            raise NotADirectoryError(
                "working directory '%s' is not a directory" % target)
        if not (_below(target, WORKSPACE) or _below(target, TMP)):
            raise FileNotFoundError(
                "working directory '%s' does not exist (only directories "
                "below %s or %s are created)" % (target, WORKSPACE, TMP))
        os.makedirs(target, exist_ok=True)
    try:
        previous = os.getcwd()
    except OSError:
        previous = None
    os.chdir(target)
    return previous


def cpu_seconds():
    """CPU time of this process and its waited-for children (user + system,
    all threads)."""
    try:
        import resource
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    except Exception:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


def reset_peak_memory():
    """Reset the peak RSS (VmHWM) to the current RSS; False when the
    kernel refuses it (a sandboxed kernel is not dumpable, so its /proc
    files belong to root)."""
    try:
        with io.open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except (OSError, ValueError):
        return False


def memory_status():
    """(VmHWM, VmRSS) in bytes from /proc/self/status; None for what
    cannot be read."""
    hwm = rss = None
    try:
        with io.open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return hwm, rss


def lifetime_peak_memory():
    """The process's peak RSS from getrusage, or None."""
    try:
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:
        return None


class PeakMemory:
    """The peak resident memory of one run.  With the peak reset, VmHWM
    after the run is exact.  Without it, a VmHWM that grew during the run
    is still exact; one that did not means the run stayed below an earlier
    peak, and the larger of the RSS before and after is the best figure
    (a lower bound; the lifetime peak would report an earlier cell's).
    The kernel's RSS counters are approximate (per-CPU), so VmHWM "grows"
    only by more than GROWTH_SLACK (or 1/64 of itself).  Without /proc,
    the lifetime peak from getrusage."""

    GROWTH_SLACK = 1 << 20

    def __init__(self):
        self.reset = reset_peak_memory()
        self.hwm, self.rss = memory_status()

    def peak(self):
        hwm, rss = memory_status()
        if hwm is None:
            return lifetime_peak_memory()
        if (self.reset or self.hwm is None
                or hwm > self.hwm + max(self.GROWTH_SLACK, self.hwm // 64)):
            return hwm
        return max(x for x in (self.rss, rss, 0) if x is not None) or hwm


def exit_code(error):
    """The exit code of a run that ended with error (None: success):
    SystemExit(n) gives n (None -> 0, not an int -> 1), any other
    exception 1."""
    if error is None:
        return 0
    if isinstance(error, SystemExit):
        code = error.code
        if code is None:
            return 0
        if isinstance(code, int):
            code = int.__int__(code)
            return code if -(1 << 31) <= code < (1 << 31) else 1
        return 1
    return 1


def error_line(error, filename):
    """The line of the submitted code (compiled as filename) where error
    was raised: its innermost frame from that code, else the line a
    SyntaxError or a refused import names, else None."""
    line = None
    tb = getattr(error, "__traceback__", None)
    seen = 0
    while tb is not None and seen < 100000:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
        seen += 1
    if line is None and isinstance(error, SyntaxError) and error.filename == filename:
        line = error.lineno
    if line is None:
        line = getattr(error, "sandcell_line", None)
    return line if isinstance(line, int) and not isinstance(line, bool) else None


_KERNEL_MODULES = ("sandcell_kernel", "sandcell_policy", "sandcell_task",
                   "sandcell_validate", "sandcell_display",
                   "sandcell_introspect", "sandcell")


def exception_info(error, content, filename):
    """{"type", "message", "traceback", "line"} for the error that ended a
    run; content is the error reply's {ename, evalue, traceback} (which may
    name a clearer error than the exception's own, e.g. TimeoutError for
    an interrupt by the wall-clock limit)."""
    qualified = type_name(error)
    mod, _, name = qualified.rpartition(".")
    ename = content.get("ename") or name
    if ename != type(error).__name__ or mod in _KERNEL_MODULES:
        qualified = ename
    lines = content.get("traceback") or []
    return {"type": qualified,
            "message": str(content.get("evalue", "")),
            "traceback": "\n".join(str(x) for x in lines),
            "line": error_line(error, filename)}


# ---------------------------------------------------------------------------
# A task run
# ---------------------------------------------------------------------------

def _names(value):
    """The strings of a list (anything else: empty), without repeats."""
    if not isinstance(value, list):
        return []
    out = []
    for v in value:
        if isinstance(v, str) and v not in out:
            out.append(v)
    return out


class Task:
    """One run of a task (mode "execute" or "file").  The kernel calls
    start() before the code runs (it may raise: the run then fails with
    that error), capture() from the displayhook, finish() in every case
    once the code is done, then result()."""

    MODES = ("execute", "file")

    def __init__(self, spec):
        self.mode = spec.get("mode") or "execute"
        self.return_variables = _names(spec.get("return_variables"))
        self.working_directory = spec.get("working_directory")
        self.argv = spec.get("argv")
        self.env = spec.get("env")
        file_name = spec.get("file_name")
        self.file_name = file_name if isinstance(file_name, str) and file_name else "script.py"
        self.filename = None       # the code objects' filename (for `line`)
        self.ns = None
        self.before = {}
        self.has_value = False
        self.value = None
        self.cpu_time = 0.0
        self.memory_peak = None
        self._memory = None
        self._cpu0 = None
        self._cwd = None           # previous cwd, when we changed it
        self._argv = None
        self._environ = None       # name -> previous value (None: unset)
        self._main = None

    def script_namespace(self):
        """A fresh __main__ for a script: installed as sys.modules
        ["__main__"] with sys.argv and the environment until finish()."""
        import types
        main = types.ModuleType("__main__")
        ns = main.__dict__
        ns.update({"__file__": self.file_name, "__builtins__": builtins,
                   "__cached__": None})
        self._main = sys.modules.get("__main__")
        sys.modules["__main__"] = main
        self._argv = sys.argv
        argv = self.argv if isinstance(self.argv, list) else [self.file_name]
        sys.argv = [a if isinstance(a, str) else str(a) for a in argv]
        if isinstance(self.env, dict):
            self._environ = {}
            for name, value in self.env.items():
                if isinstance(name, str) and isinstance(value, str):
                    self._environ.setdefault(name, os.environ.get(name))
                    os.environ[name] = value
        return ns

    def start(self, ns, filename):
        """Snapshot ns, reset the measurements, enter the working
        directory.  Raises for an unknown mode or a bad directory."""
        self.ns = ns
        self.filename = filename
        if self.mode not in self.MODES:
            raise ValueError("unknown sandcell_task mode %r" % (self.mode,))
        self.before = snapshot(ns)
        self._memory = PeakMemory()
        self._cpu0 = cpu_seconds()
        if self.working_directory is not None:
            self._cwd = enter_directory(self.working_directory)

    def capture(self, value):
        """The value of the final expression (the displayhook's)."""
        self.value = value
        self.has_value = value is not None

    def finish(self):
        """Stop measuring; put back the cwd, sys.argv, the environment and
        __main__.  Never raises."""
        try:
            if self._cpu0 is not None:
                self.cpu_time = max(0.0, cpu_seconds() - self._cpu0)
                self.memory_peak = self._memory.peak()
        except BaseException:
            pass
        try:
            if self._cwd is not None:
                os.chdir(self._cwd)
        except BaseException:
            pass
        self._cwd = None
        try:
            if self._argv is not None:
                sys.argv = self._argv
            if self._environ:
                for name, value in self._environ.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
            if self._main is not None:
                sys.modules["__main__"] = self._main
        except BaseException:
            pass
        self._argv = self._environ = self._main = None

    def result(self, error=None, content=None):
        """sandcell_result for a run that ended with error (None: success;
        content: the error reply's content)."""
        ns = self.ns if isinstance(self.ns, dict) else {}
        variables, missing = {}, []
        for name in self.return_variables:
            if name in ns:
                variables[name] = json_safe(ns[name])
            else:
                missing.append(name)
        try:
            changed = changed_variables(self.before, ns)
        except BaseException:
            changed = {}
        has_value = self.has_value and error is None
        exception = None
        if error is not None:
            try:
                exception = exception_info(error, content or {}, self.filename)
            except BaseException:
                exception = {"type": type_name(error), "message": "",
                             "traceback": "", "line": None}
        return {
            "return_value": json_safe(self.value) if has_value else None,
            "has_return_value": has_value,
            "variables": variables,
            "missing_variables": missing,
            "changed_variables": changed,
            "cpu_time": round(self.cpu_time, 6),
            "memory_peak": self.memory_peak,
            "exception": exception,
            "exit_code": exit_code(error),
        }
