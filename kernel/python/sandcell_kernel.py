"""Python side of the sandcell kernel.

The C kernel embeds CPython, owns the sockets and the wire protocol, and
calls into this module:

* ``setup(config)`` once at start-up: installs the output streams, the
  displayhook, ``input``/``getpass``, ``display``, the user namespace and
  the import hooks that make ``IPython.display`` publish through us.
* ``handle(msg_type, content)`` for every shell request: takes the request
  content as JSON text and returns the reply content as JSON text (or None
  for messages without a reply).  It never raises.

Everything the module sends goes through the builtin module ``_sandcell``
provided by C (see docs/kernel-python.md for the contract).

The module is split in six:

* ``sandcell_kernel``     (this file): request dispatch, execution, streams,
  input, history, comms, JSON encoding, import hooks.
* ``sandcell_display``    formatter, ``display()`` and friends, the
  ``IPython.display`` shim, matplotlib figures.
* ``sandcell_introspect`` completion, inspection and ``is_complete``; only
  imported the first time one of those requests arrives.
* ``sandcell_policy``     the import policy and friendly limit messages of a
  sandboxed kernel; only imported when the configuration has a policy.
* ``sandcell_task``       task mode (``sandcell_task`` in an execute
  request): measurements and ``sandcell_result``; imported on first use.
* ``sandcell_validate``   static analysis for validate tasks; imported on
  first use.

Start-up cost matters (every kernel start pays it), so only modules that
the interpreter has already loaded are imported at module level; json,
ast, traceback and friends are imported on first use.
"""

import builtins
import io
import os
import sys

import _sandcell

__all__ = ["setup", "handle", "kernel_info", "Comm", "register_comm_target",
           "StdinNotImplementedError"]

# Code objects compiled from this file carry this filename; tracebacks shown
# to the user drop frames that come from our modules.
_THIS_FILE = (lambda: 0).__code__.co_filename

# Flags not exported by the ast module under these names.
_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, set by top-level await

_PROTOCOL_VERSION = "5.3"


class StdinNotImplementedError(NotImplementedError):
    """Raised by input()/getpass() when the request did not allow stdin."""


# ---------------------------------------------------------------------------
# Kernel state
# ---------------------------------------------------------------------------

class _State:
    """Everything that lives between requests.  One instance: ``_S``."""

    def __init__(self):
        self.ready = False
        self.session = ""
        self.debug = False            # keep our frames in tracebacks
        self.shim_ipython = False
        self.implementation_version = ""
        self.policy = None            # sandcell_policy.Policy or None
        self.ns = {}                  # user namespace (__main__.__dict__)
        self.execution_count = 0
        # Per-request flags, valid while an execute_request runs.
        self.allow_stdin = False
        self.silent = False
        self.store_history = False
        self.current_count = 0
        self.payload = []
        # History: list of [line_number, source, output_text_or_None].
        self.history = []
        self.last_inputs = ["", "", ""]   # _i00 (current), _i, _ii, rotated
        # Displayhook bookkeeping for _, __, ___.
        self.last_outputs = ["", "", ""]
        # Compilation.
        self.future_flags = 0
        self.run_seq = 0
        self.cell_files = set()
        self.loop = None              # asyncio loop for top-level await
        # Task mode: the sandcell_task.Task of the running request, or None.
        self.task = None
        self.cell_serial = 0          # counts execute requests (progress ids)
        # Comms.
        self.comms = {}               # comm_id -> Comm
        self.comm_targets = {}        # target_name -> callback(comm, msg)


_S = _State()

# Lazily imported modules (see _lazy()).
_json = None
_encoder = None       # json.JSONEncoder for _dumps, made with the module


def _json_module():
    global _json, _encoder
    if _json is None:
        import json
        _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                    default=_json_default,
                                    separators=(",", ":"))
        _json = json
    return _json


# ---------------------------------------------------------------------------
# JSON: strict, valid UTF-8, never fails
# ---------------------------------------------------------------------------

def _json_default(obj):
    """json.dumps fallback for values that are not JSON types."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        import base64
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return _safe_str(obj)


def _safe_str(obj):
    """str(obj), or a placeholder if that fails."""
    try:
        s = str(obj)
        if type(s) is str:
            return s
    except Exception:
        pass
    try:
        return "<unprintable %s object>" % type(obj).__name__
    except Exception:
        return "<unprintable object>"


def _sanitize(obj, depth=0, active=None):
    """Return a copy of obj that json.dumps(allow_nan=False) accepts.

    NaN and infinities become null, unknown objects become strings, keys
    become strings, cycles and very deep nesting are cut off.
    """
    if active is None:
        active = set()
    if obj is None or obj is True or obj is False or type(obj) is str:
        return obj
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            return None
        return float(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str.__str__(obj)
    if depth > 100:
        return "<nested too deeply>"
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        if id(obj) in active:
            return "<circular reference>"
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                out = {}
                for k, v in list(dict.items(obj)):
                    if not isinstance(k, str):
                        k = _safe_str(k)
                    out[str.__str__(k)] = _sanitize(v, depth + 1, active)
                return out
            return [_sanitize(v, depth + 1, active) for v in list(obj)]
        finally:
            active.discard(id(obj))
    try:
        return _sanitize(_json_default(obj), depth + 1, active)
    except Exception:
        return "<unserializable>"


def _fix_surrogates(s):
    """Replace lone surrogates (not encodable as UTF-8) with U+FFFD.

    Going through UTF-16 also joins a correct high/low pair into one code
    point instead of replacing it.
    """
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _dumps(obj):
    """Serialize obj as strict JSON text that is valid UTF-8."""
    json = _json_module()
    try:
        # What json.dumps(obj, <the same options>) gives, without building
        # an encoder for every message.
        text = _encoder.encode(obj)
    except Exception:
        text = json.dumps(_sanitize(obj), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _fix_surrogates(text)
    return text


def publish(msg_type, content, metadata=None, buffers=None):
    """Publish an IOPub message (content/metadata are Python objects)."""
    md = _dumps(metadata) if metadata else "{}"
    if buffers:
        _sandcell.publish(msg_type, _dumps(content), md,
                          [bytes(b) for b in buffers])
    else:
        _sandcell.publish(msg_type, _dumps(content), md)


# ---------------------------------------------------------------------------
# Output streams
# ---------------------------------------------------------------------------

class _BinaryStream(io.RawIOBase):
    """``sys.stdout.buffer``: bytes straight to the captured fd."""

    def __init__(self, fd, name):
        super().__init__()
        self._fd = fd
        self._name = name

    @property
    def name(self):
        return self._name

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def write(self, data):
        data = bytes(memoryview(data))
        if data:
            _sandcell.write(self._fd, data)
        return len(data)

    def close(self):
        # Closing the kernel's stdout would break every later cell.
        pass


class KernelStream(io.TextIOBase):
    """Text stream for sys.stdout / sys.stderr.

    Every write goes straight to fd 1 or 2 through ``_sandcell.write``; a C
    thread reads those pipes and publishes ``stream`` messages, coalescing
    small writes.  So ``flush`` has nothing to do, and output written by C
    extensions or subprocesses to the same fds keeps its order.
    """

    def __init__(self, fd, name):
        super().__init__()
        self._fd = fd
        self._name = name
        self._buffer = None

    name = property(lambda self: self._name)
    encoding = property(lambda self: "utf-8")
    errors = property(lambda self: "backslashreplace")
    newlines = property(lambda self: None)
    line_buffering = property(lambda self: False)
    closed = property(lambda self: False)

    @property
    def buffer(self):
        if self._buffer is None:
            self._buffer = _BinaryStream(self._fd, self._name)
        return self._buffer

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s"
                            % type(s).__name__)
        if s:
            _sandcell.write(self._fd, s)
        return len(s)

    def flush(self):
        pass

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def close(self):
        pass

    def __repr__(self):
        return "<KernelStream name=%r fd=%d>" % (self._name, self._fd)


_builtin_print = builtins.print


def kernel_print(*args, sep=" ", end="\n", file=None, flush=False):
    """builtins.print that hands a whole line to the kernel's streams in one
    write, so that one print becomes one piece of output (the builtin writes
    the text and the end separately, and the output thread may publish
    between the two).  Any other file goes to the builtin."""
    target = sys.stdout if file is None else file
    if (isinstance(target, KernelStream)
            and (sep is None or isinstance(sep, str))
            and (end is None or isinstance(end, str))):
        text = (" " if sep is None else sep).join([str(a) for a in args])
        target.write(text + ("\n" if end is None else end))
        return None
    return _builtin_print(*args, sep=sep, end=end, file=file, flush=flush)


kernel_print.__doc__ = _builtin_print.__doc__
kernel_print.__name__ = kernel_print.__qualname__ = "print"
kernel_print.__module__ = "builtins"


def _warn(message):
    """One line on the user's stderr (used for non-fatal problems)."""
    try:
        sys.stderr.write(message.rstrip("\n") + "\n")
    except Exception:
        pass


# ---------------------------------------------------------------------------
# input() and getpass()
# ---------------------------------------------------------------------------

def _request_input(prompt, password, what):
    if not _S.allow_stdin:
        raise StdinNotImplementedError(
            "%s was called, but this frontend does not support input requests."
            % what)
    # Make what was printed so far visible before the prompt appears.
    try:
        _sandcell.flush()
    except Exception:
        pass
    # The C side takes a NUL-terminated string.
    prompt = str(prompt).replace("\0", "")
    value = _sandcell.input_request(prompt, bool(password))
    if value == "\x04":       # Ctrl-D typed in the frontend
        raise EOFError("EOF when reading a line")
    return value


def kernel_input(prompt=""):
    """Replacement for builtins.input: asks the frontend for a line."""
    return _request_input(prompt, False, "input()")


def kernel_getpass(prompt="Password: ", stream=None):
    """Replacement for getpass.getpass: asks the frontend, without echo."""
    return _request_input(prompt, True, "getpass()")


# ---------------------------------------------------------------------------
# exit / quit
# ---------------------------------------------------------------------------

class _ExitHelper:
    """``exit``/``quit`` in the user namespace.

    Calling it raises SystemExit, which the kernel reports as an error of
    the cell and otherwise ignores: the kernel process is managed by the
    frontend (restart / shut down), not by the code it runs.
    """

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return ("%s() does not stop this kernel; use the frontend's "
                "restart or shut down command." % self._name)

    def __call__(self, code=None):
        raise SystemExit(code)


_SYSTEM_EXIT_NOTE = ("SystemExit was raised by the cell; the kernel keeps "
                     "running. Use the frontend to restart or shut it down.")


# ---------------------------------------------------------------------------
# Import hooks: patch modules right after they execute
# ---------------------------------------------------------------------------

def _patch_getpass(module):
    module.getpass = kernel_getpass


def _display_module():
    import sandcell_display
    return sandcell_display


def _patch_ipython(module):
    _display_module().patch_ipython_module(module)


def _patch_pyplot(module):
    _display_module().patch_pyplot(module)


# module name -> function(module) called right after the module executed.
_POST_IMPORT_PATCHES = {
    "getpass": _patch_getpass,
    "IPython.core.display_functions": _patch_ipython,
    "IPython.core.display": _patch_ipython,
    "IPython.display": _patch_ipython,
    "matplotlib.pyplot": _patch_pyplot,
}

# Names of the shim modules we can provide for IPython.
_SHIM_MODULES = ("IPython", "IPython.display", "IPython.core",
                 "IPython.core.display", "IPython.core.display_functions",
                 "IPython.core.getipython")


class _PatchingLoader:
    """Wraps a real loader; runs our patch after the module body ran."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        # Put the real loader back so nothing else sees the wrapper.
        try:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        except Exception:
            pass
        try:
            self._patch(module)
        except Exception as exc:
            _warn("sandcell: could not patch %s: %s" % (module.__name__, exc))

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _ShimLoader:
    """Creates our small stand-in modules for IPython."""

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        _display_module().fill_shim_module(module)


class _KernelFinder:
    """First entry of sys.meta_path.

    * For the modules in _POST_IMPORT_PATCHES it asks the other finders for
      the real spec and wraps its loader, so the module is patched as soon
      as it has executed (no eager import of IPython or getpass).
    * With shim_ipython forced it serves the IPython shim modules itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if _S.shim_ipython and fullname in _SHIM_MODULES:
            return _shim_spec(fullname)
        patch = _POST_IMPORT_PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _KernelFinder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


class _ShimFallbackFinder:
    """Last entry of sys.meta_path: provides the IPython shim when the real
    IPython is not installed (no other finder found it)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _SHIM_MODULES:
            return _shim_spec(fullname)
        return None


def _shim_spec(fullname):
    from importlib.machinery import ModuleSpec
    is_package = fullname in ("IPython", "IPython.core")
    spec = ModuleSpec(fullname, _ShimLoader, origin="sandcell-shim",
                      is_package=is_package)
    if is_package:
        spec.submodule_search_locations = []
    return spec


def _install_import_hooks():
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, (_KernelFinder, _ShimFallbackFinder))]
    sys.meta_path.insert(0, _KernelFinder())
    sys.meta_path.append(_ShimFallbackFinder())
    # Modules imported before setup() get patched right away.
    for name, patch in _POST_IMPORT_PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            try:
                patch(module)
            except Exception:
                pass


# ---------------------------------------------------------------------------
# setup()
# ---------------------------------------------------------------------------

def _new_user_namespace():
    import types
    main = types.ModuleType("__main__")
    ns = main.__dict__
    history_in = [""]
    history_out = {}
    ns.update({
        "__builtins__": builtins,
        "In": history_in, "Out": history_out,
        "_ih": history_in, "_oh": history_out,
        "_": "", "__": "", "___": "",
        "_i": "", "_ii": "", "_iii": "",
        "exit": _ExitHelper("exit"), "quit": _ExitHelper("quit"),
    })
    sys.modules["__main__"] = main
    return ns


def execution_count():
    """The count of the last stored execution (C uses it in aborted replies)."""
    return _S.execution_count


def setup(config=None):
    """Install the kernel's hooks into the interpreter.  Called once by C
    before the first request; calling it again re-installs the hooks."""
    if not isinstance(config, dict):
        config = {}
    _S.session = str(config.get("session") or "")
    _S.shim_ipython = bool(config.get("shim_ipython", False))
    _S.policy = _policy_from_config(config.get("policy"))
    if _S.policy is not None and _S.policy.allow is not None:
        # The real IPython is far outside any allowlist; the shim is ours.
        _S.shim_ipython = True
    _S.debug = bool(config.get("debug", False))
    _S.implementation_version = str(config.get("implementation_version") or "")

    stdout = KernelStream(1, "<stdout>")
    stderr = KernelStream(2, "<stderr>")
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = stderr

    display_mod = _display_module()
    sys.displayhook = _displayhook
    builtins.input = kernel_input
    builtins.print = kernel_print
    builtins.display = display_mod.display

    _S.ns = _new_user_namespace()
    _CODE_CACHE.clear()
    # matplotlib: draw into images that we display, never open windows.
    os.environ.setdefault("MPLBACKEND", "agg")
    _install_import_hooks()
    _apply_policy(_S.policy)
    _S.ready = True


# Address space the C side budgets per thread when the sandbox has limits.
_THREAD_STACK_SIZE = 4 * 1024 * 1024


def _policy_from_config(config):
    """A sandcell_policy.Policy for config["policy"], or None.  A malformed
    policy raises: a sandboxed kernel must not start without its policy."""
    if config is None:
        return None
    import sandcell_policy
    return sandcell_policy.from_config(config, provided=_SHIM_MODULES)


def _apply_policy(policy):
    """Install the import policy (first on sys.meta_path) and fit the
    interpreter to the sandbox's limits."""
    if policy is None:
        module = sys.modules.get("sandcell_policy")
        if module is not None:
            module.uninstall()
        return
    policy.install()
    if policy.limits:
        import _thread
        _thread.stack_size(_THREAD_STACK_SIZE)
        # BLAS and OpenMP start one thread per CPU by default, each with
        # its own stack: that overruns the thread and memory limits.
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.environ["OMP_NUM_THREADS"] = "1"


# ---------------------------------------------------------------------------
# Displayhook (execute_result)
# ---------------------------------------------------------------------------

def _rotate_output(value):
    """Update _, __, ___ unless the user rebound them to something else."""
    ns = _S.ns
    old = _S.last_outputs
    new = [value, old[0], old[1]]
    for name, prev, cur in zip(("_", "__", "___"), old, new):
        if name not in ns or ns[name] is prev:
            ns[name] = cur
    _S.last_outputs = new


# Exact types whose text/plain is their repr() and that have nothing else.
_PLAIN_TYPES = frozenset((int, float, bool, complex, str, bytes))


def _displayhook(value):
    """sys.displayhook: publishes execute_result for the cell's value (and
    keeps it as a task's return value)."""
    if _S.task is not None:
        _S.task.capture(value)
    if value is None or _S.silent:
        return
    data = None
    if type(value) in _PLAIN_TYPES:
        # What format_object gives for these (no rich repr can be added
        # to a builtin type), without its lookups.
        try:
            data, md = {"text/plain": repr(value)}, {}
        except Exception:
            data = None       # e.g. an int too long for str(): the slow way
    if data is None:
        data, md = _display_module().format_object(value)
    count = _S.current_count
    publish("execute_result",
            {"execution_count": count, "data": data, "metadata": md})
    _rotate_output(value)
    if _S.store_history and count > 0:
        out = _S.ns.get("Out")
        if isinstance(out, dict):
            out[count] = value
        _S.ns["_%d" % count] = value
        if _S.history and _S.history[-1][0] == count:
            _S.history[-1][2] = data.get("text/plain")


# ---------------------------------------------------------------------------
# Tracebacks
# ---------------------------------------------------------------------------

def _our_files():
    files = {_THIS_FILE}
    for name in ("sandcell", "sandcell_display", "sandcell_introspect",
                 "sandcell_policy", "sandcell_task", "sandcell_validate"):
        mod = sys.modules.get(name)
        f = getattr(mod, "_THIS_FILE", None)
        if f:
            files.add(f)
    return files


def _strip_frames(te):
    """Remove kernel machinery from a TracebackException chain, in place:
    frames before the first cell frame (our dispatcher, asyncio) and any
    frame from our own modules."""
    import traceback
    ours = _our_files()
    cells = _S.cell_files
    seen = set()
    todo = [te]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        frames = list(cur.stack)
        for i, fs in enumerate(frames):
            if fs.filename in cells:
                frames = frames[i:]
                break
        frames = [fs for fs in frames if fs.filename not in ours]
        cur.stack = traceback.StackSummary.from_list(frames)
        todo.append(cur.__cause__)
        todo.append(cur.__context__)
        todo.extend(getattr(cur, "exceptions", None) or ())


def _format_exception(exc, override=None):
    """Return (ename, evalue, traceback_lines) for an exception.

    override: (ename, evalue) to report instead of the exception's own
    (the reason of an interrupt).  Without one, the policy may supply a
    clearer message for an error a sandbox limit caused.  Either way the
    traceback's final line says the same."""
    etype = type(exc)
    ename = getattr(etype, "__name__", "Exception")
    evalue = _safe_str(exc)
    if override is None and _S.policy is not None:
        override = _S.policy.explain(exc)
    try:
        import traceback
        te = traceback.TracebackException(etype, exc, exc.__traceback__,
                                          compact=True)
        if not _S.debug:
            _strip_frames(te)
        lines = [chunk.rstrip("\n") for chunk in te.format()]
        own = [chunk.rstrip("\n") for chunk in te.format_exception_only()]
    except BaseException:
        lines = own = ["%s: %s" % (ename, evalue)]
    if override is not None:
        ename, evalue = override
        final = "%s: %s" % (ename, evalue)
        # The exception's own lines end the traceback (its notes last).
        if own and lines[len(lines) - len(own):] == own:
            lines[len(lines) - len(own)] = final
        else:
            lines.append(final)
    if isinstance(exc, SystemExit) and _S.task is None:
        # (A task's kernel is the task's own: nothing to say about it.)
        lines.append(_SYSTEM_EXIT_NOTE)
    elif isinstance(exc, SyntaxError):
        hint = _magic_hint(exc)
        if hint:
            lines.append(hint)
    return ename, evalue, lines


def _magic_hint(exc):
    text = (getattr(exc, "text", None) or "").lstrip()
    if text.startswith(("%", "!")):
        return ("Note: IPython magics (%...) and shell escapes (!...) are not "
                "supported by this kernel; use Python code (e.g. subprocess).")
    return None


def _error_content(exc, override=None):
    ename, evalue, lines = _format_exception(exc, override)
    return {"ename": ename, "evalue": evalue, "traceback": lines}


def _take_interrupt_reason():
    """The reason the C side gave for the last interrupt ("wall-clock
    timeout of 30 s"), or None; reading it clears it."""
    reason = getattr(_sandcell, "interrupt_reason", None)
    if reason is None:
        return None
    try:
        text = reason()
    except Exception:
        return None
    return text if isinstance(text, str) and text else None


def _cell_error_content(exc):
    """_error_content for the error that ended a cell: an interrupt that
    came with a reason is reported as TimeoutError with that reason."""
    override = None
    if isinstance(exc, KeyboardInterrupt):
        reason = _take_interrupt_reason()
        if reason is not None:
            override = ("TimeoutError", reason)
    return _error_content(exc, override)


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

def _cell_filename(count, stored):
    """A filename for the cell's code objects, unique per run."""
    _S.run_seq += 1
    if stored:
        name = "<In[%d]>" % count
    else:
        name = "<run-%d>" % _S.run_seq
    while name in _S.cell_files:       # e.g. after a counter reset
        name = "<run-%d>" % _S.run_seq
        _S.run_seq += 1
    _S.cell_files.add(name)
    return name


def _register_source(filename, code):
    """Put the cell into linecache so tracebacks and inspect see its lines.
    An mtime of None keeps linecache.checkcache() from dropping it."""
    import linecache
    lines = code.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (len(code), None, lines, filename)


def _record_input(count, code):
    """Input history: In, _i*, history list (IPython's rotation rules)."""
    ns = _S.ns
    history_in = ns.get("In")
    if isinstance(history_in, list):
        while len(history_in) < count:
            history_in.append("")
        history_in.append(code)
    cur, prev1, prev2 = _S.last_inputs
    _S.last_inputs = [code, cur, prev1]
    ns["_i"], ns["_ii"], ns["_iii"] = cur, prev1, prev2
    ns["_i%d" % count] = code
    _S.history.append([count, code, None])


def _ends_with_semicolon(code, node):
    """True if the source after the last expression is ';' (+ comments):
    IPython's way to suppress the Out[] of a cell."""
    lines = code.splitlines(True)
    try:
        line = lines[node.end_lineno - 1]
    except (IndexError, TypeError):
        return False
    # end_col_offset counts UTF-8 bytes.
    rest = line.encode("utf-8")[node.end_col_offset:].decode("utf-8", "replace")
    rest = "".join([rest] + lines[node.end_lineno:])
    for raw in rest.splitlines():
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        return s.startswith(";")
    return False


def _future_flags(tree):
    """The compiler flags of the __future__ imports in a parsed cell."""
    import __future__
    flags = 0
    for node in tree.body:
        if type(node).__name__ == "ImportFrom" and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                flag = getattr(feature, "compiler_flag", 0)
                if isinstance(flag, int):
                    flags |= flag
    return flags


# ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, without importing ast at start-up (the
# value is part of CPython's stable API).
_PyCF_ALLOW_TOP_LEVEL_AWAIT = 0x2000


# ---------------------------------------------------------------------------
# Compiled code cache
# ---------------------------------------------------------------------------

_CodeType = type((lambda: 0).__code__)


def _with_filename(code, filename):
    """code and the code objects nested in it (functions, classes,
    comprehensions) with co_filename set to filename."""
    consts = code.co_consts
    if any(type(c) is _CodeType for c in consts):
        consts = tuple(_with_filename(c, filename) if type(c) is _CodeType
                       else c for c in consts)
        return code.replace(co_filename=filename, co_consts=consts)
    return code.replace(co_filename=filename)


class _CodeCache:
    """Compiled code by source text, so that code sent again (a one-shot
    task's code, a cell run in a loop) is parsed, checked against the
    import policy and compiled once.

    Keys hold everything the compilation depended on (the source, compiler
    flags, mode); the policy is checked by identity, so a new policy
    empties nothing it should not.  Only code that compiled and passed the
    policy is kept.  Each run gets its code objects under its own filename
    (tracebacks and linecache name the run).  Bounded: at most max_entries,
    max_chars of source in all, none longer than max_one; the least
    recently used entry goes first."""

    def __init__(self, max_entries=64, max_chars=256 * 1024,
                 max_one=64 * 1024):
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_one = max_one
        self._entries = {}    # key -> (policy, value, filename); LRU order
        self._chars = 0
        self.hits = self.misses = 0

    def __len__(self):
        return len(self._entries)

    @property
    def chars(self):
        return self._chars

    def clear(self):
        self._entries.clear()
        self._chars = 0

    def get(self, key, filename):
        """The cached (code objects, extra) for key with the code objects
        renamed to filename, or None."""
        entry = self._entries.pop(key, None)
        if entry is None or entry[0] is not _S.policy:
            self._drop(key, entry)
            self.misses += 1
            return None
        self._entries[key] = entry          # now the most recently used
        self.hits += 1
        code_objects, extra = entry[1]
        if entry[2] != filename:
            code_objects = tuple(_with_filename(c, filename)
                                 for c in code_objects)
        return code_objects, extra

    def put(self, key, value, filename):
        """Keep value, (code objects compiled as filename, extra), for key."""
        size = len(key[1])
        if size > self.max_one:
            return
        self._drop(key, self._entries.pop(key, None))
        while self._entries and (len(self._entries) >= self.max_entries
                                 or self._chars + size > self.max_chars):
            oldest = next(iter(self._entries))
            self._drop(oldest, self._entries.pop(oldest))
        self._entries[key] = (_S.policy, value, filename)
        self._chars += size

    def _drop(self, key, entry):
        if entry is not None:
            self._chars -= len(key[1])


_CODE_CACHE = _CodeCache()


def _run_coroutine(coro):
    """Run a top-level-await cell on the kernel's persistent event loop."""
    import asyncio
    loop = _S.loop
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _S.loop = loop
    asyncio.set_event_loop(loop)
    if loop.is_running():
        coro.close()
        raise RuntimeError("cannot run a top-level await cell: the kernel's "
                           "event loop is already running")
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt as exc:
        # The interrupt landed in the event loop's machinery; report it
        # where the cell was waiting instead.
        where = None
        if not task.done():
            try:
                where = _traceback_from_frames(_awaiting_frames(coro))
            except Exception:
                where = None
            task.cancel()
        if where is None:
            raise
        raise KeyboardInterrupt(*exc.args).with_traceback(where) from None
    except BaseException:
        if not task.done():
            task.cancel()
        raise


def _awaiting_frames(coro):
    """Frames of a suspended coroutine and of what it awaits, outermost
    first."""
    frames = []
    while coro is not None and len(frames) < 1000:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _traceback_from_frames(frames):
    """A traceback object through the given frames (oldest first)."""
    import types
    tb = None
    for frame in reversed(frames):
        tb = types.TracebackType(tb, frame, frame.f_lasti, frame.f_lineno)
    return tb


async def _run_async(code_objects):
    """Run a cell that uses top-level await: all of it runs inside the
    event loop, so e.g. asyncio.get_running_loop() works anywhere in it."""
    for code_obj in code_objects:
        result = eval(code_obj, _S.ns)
        if code_obj.co_flags & _CO_COROUTINE:
            await result


def _run_code_objects(code_objects):
    if any(c.co_flags & _CO_COROUTINE for c in code_objects):
        _run_coroutine(_run_async(code_objects))
    else:
        for code_obj in code_objects:
            exec(code_obj, _S.ns)


def _compile_cell(code, filename, flags, show_last):
    """Parse, check and compile a cell: (code objects, __future__ flags it
    sets).  With show_last, a final expression is compiled in 'single'
    mode so that sys.displayhook shows its value."""
    import ast
    tree = compile(code, filename, "exec", flags | ast.PyCF_ONLY_AST,
                   dont_inherit=True)
    if _S.policy is not None:
        # Refused imports fail the cell before any of it runs.
        _S.policy.check_tree(tree)
    body = list(tree.body)
    last = None
    if (show_last and body and isinstance(body[-1], ast.Expr)
            and not _ends_with_semicolon(code, body[-1])):
        last = body.pop()
    main = compile(ast.Module(body=body, type_ignores=[]), filename, "exec",
                   flags, dont_inherit=True)
    code_objects = [main]
    if last is not None:
        code_objects.append(compile(ast.Interactive(body=[last]), filename,
                                    "single", flags, dont_inherit=True))
    return tuple(code_objects), _future_flags(tree)


def _run_cell(code, filename, show_result=True):
    """Compile (or take from the cache) and run a cell."""
    _register_source(filename, code)
    flags = _S.future_flags | _PyCF_ALLOW_TOP_LEVEL_AWAIT
    show_last = show_result and (not _S.silent or _S.task is not None)
    key = ("cell", code, flags, show_last)
    found = _CODE_CACHE.get(key, filename)
    if found is None:
        found = _compile_cell(code, filename, flags, show_last)
        _CODE_CACHE.put(key, found, filename)
    code_objects, future = found
    # The cell compiled: its __future__ imports apply to later cells.
    _S.future_flags |= future
    # A previous cell may have replaced the hook; cells always get ours.
    sys.displayhook = _displayhook
    _run_code_objects(code_objects)


def _post_execute():
    """Show matplotlib figures the cell drew (like the inline backend).
    Silent runs publish nothing; their figures show after the next cell."""
    if not _S.silent and "matplotlib.pyplot" in sys.modules:
        _display_module().flush_figures()


def _page_request(code):
    """Recognise a help request on the cell's last line: 'obj?', 'obj??',
    '?obj' or '??obj' (obj a dotted name).  Returns (code_before, name,
    level) or None; code_before is what precedes that line."""
    head, _, last = code.rstrip().rpartition("\n")
    s = last.strip()
    if "?" not in s:
        return None
    level = 0
    if s.endswith("??"):
        name, level = s[:-2], 1
    elif s.endswith("?"):
        name = s[:-1]
    elif s.startswith("??"):
        name, level = s[2:], 1
    elif s.startswith("?"):
        name = s[1:]
    else:
        return None
    name = name.strip()
    if not all(p.isidentifier() for p in name.split(".")):
        return None
    return head, name, level


def _lazy_introspect():
    import sandcell_introspect
    return sandcell_introspect


def _show_page(name, level):
    intro = _lazy_introspect()
    found, obj = intro.resolve_name(name, _S.ns)
    if not found:
        print("Object `%s` not found." % name)
        return
    text = intro.object_info_text(name, obj, level)
    _S.payload.append({"source": "page", "data": {"text/plain": text},
                       "start": 0})


def _user_expressions(expressions):
    results = {}
    if not expressions or not isinstance(expressions, dict):
        return results
    fmt = _display_module().format_object
    for key, expr in expressions.items():
        key = _safe_str(key)
        try:
            value = eval(compile(str(expr), "<user_expression>", "eval",
                                 _S.future_flags, dont_inherit=True), _S.ns)
            data, md = fmt(value)
            results[key] = {"status": "ok", "data": data, "metadata": md}
        except BaseException as exc:
            err = _error_content(exc)
            err["status"] = "error"
            results[key] = err
    return results


def _task_module():
    import sandcell_task
    return sandcell_task


def _execute(req):
    code = req.get("code", "")
    if not isinstance(code, str):
        code = _safe_str(code)
    spec = req.get("sandcell_task")
    task = None
    if isinstance(spec, dict):
        if spec.get("mode") == "validate":
            return _validate(code, spec)
        task = _task_module().Task(spec)
    _S.task = task
    try:
        return _execute_code(req, code, task)
    finally:
        _S.task = None


def _execute_code(req, code, task):
    """An execute request; task (a sandcell_task.Task or None) adds its
    measurements to the reply as sandcell_result."""
    silent = bool(req.get("silent", False))
    store = bool(req.get("store_history", not silent)) and not silent
    if not code.strip():
        store = False               # empty cells are not counted (IPython)
    if store:
        _S.execution_count += 1
        _record_input(_S.execution_count, code)
    count = _S.execution_count
    if not silent:
        publish("execute_input", {"code": code, "execution_count": count})

    _S.allow_stdin = bool(req.get("allow_stdin", False))
    _S.silent = silent
    _S.store_history = store
    _S.current_count = count
    _S.payload = []
    _S.cell_serial += 1
    _take_interrupt_reason()    # a reason left from an idle interrupt is stale
    error = None
    try:
        try:
            page = _page_request(code) if task is None else None
            if task is not None:        # tasks are code: no help requests
                _run_task(task, code, count, store)
            elif page is not None:
                head, name, level = page
                if head.strip():
                    _run_cell(head, _cell_filename(count, store),
                              show_result=False)
                _show_page(name, level)
            elif code.strip():
                _run_cell(code, _cell_filename(count, store))
        except BaseException as exc:
            error = exc
        try:
            _post_execute()
        except BaseException as exc:
            if error is None:
                error = exc
    finally:
        if task is not None:
            task.finish()
        _reset_request_flags()

    if (task is not None and isinstance(error, SystemExit)
            and _task_module().exit_code(error) == 0):
        error = None                # sys.exit(0) ends a task successfully

    if error is not None:
        # Keep the exception around for pdb.pm() in a later cell.
        sys.last_type, sys.last_value = type(error), error
        sys.last_traceback = error.__traceback__
        content = _cell_error_content(error)
        if not silent:
            publish("error", content)
        content["status"] = "error"
        content["execution_count"] = count
        if task is not None:
            content["sandcell_result"] = task.result(error, content)
        error = None
        return content

    reply = {"status": "ok", "execution_count": count,
             "payload": _S.payload,
             "user_expressions": _user_expressions(
                 req.get("user_expressions") or {})}
    if task is not None:
        reply["sandcell_result"] = task.result()
    return reply


def _script_filename(name):
    """The filename a script's code objects carry: its name, unless that
    looks like a library or kernel file (an absolute path, "<...>"), which
    the import policy would take for trusted code."""
    if name.startswith(("/", "<")):
        return "<script>/" + (name.rstrip("/").rpartition("/")[2] or "script.py")
    return name


def _run_task(task, code, count, store):
    """Run a task's code: a cell (mode execute) or a script as __main__ in
    a fresh namespace (mode file)."""
    if task.mode == "file":
        filename = _script_filename(task.file_name)
        ns = task.script_namespace()
        task.start(ns, filename)
        _run_script(code, filename, ns)
    else:
        filename = _cell_filename(count, store)
        task.start(_S.ns, filename)
        if code.strip():
            _run_cell(code, filename)


def _compile_script(code, filename):
    import ast
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    if _S.policy is not None:
        _S.policy.check_tree(tree)
    return (compile(tree, filename, "exec", dont_inherit=True),), 0


def _run_script(code, filename, ns):
    """Compile (or take from the cache) and run a script in ns, as `python
    filename` would (no top-level await, no future flags of earlier
    cells)."""
    _register_source(filename, code)
    _S.cell_files.add(filename)
    key = ("script", code)
    found = _CODE_CACHE.get(key, filename)
    if found is None:
        found = _compile_script(code, filename)
        _CODE_CACHE.put(key, found, filename)
    exec(found[0][0], ns)


def _validate(code, spec):
    """A validate task: analyse the code, run nothing, count nothing."""
    import sandcell_validate
    result = sandcell_validate.validate(
        code, _S.policy, check_syntax=spec.get("check_syntax") is not False,
        check_imports=spec.get("check_imports") is not False,
        provided=_SHIM_MODULES)
    return {"status": "ok", "execution_count": _S.execution_count,
            "payload": [], "user_expressions": {},
            "sandcell_validation": result}


def _reset_request_flags():
    """Between requests, input() is refused and the displayhook publishes
    (e.g. for code run from a comm callback)."""
    _S.allow_stdin = False
    _S.silent = False
    _S.store_history = False


# ---------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------

_HISTORY_SESSION = 1     # in-memory history: this process is session 1


def _history_entry(entry, output):
    line, source, out = entry
    if output:
        return [_HISTORY_SESSION, line, [source, out]]
    return [_HISTORY_SESSION, line, source]


def _int_or(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _history(req):
    kind = req.get("hist_access_type", "tail")
    output = bool(req.get("output", False))
    entries = _S.history
    if kind == "tail":
        n = _int_or(req.get("n"), 10)
        picked = entries[-n:] if n > 0 else []
    elif kind == "range":
        session = _int_or(req.get("session"), 0)
        if session not in (0, _HISTORY_SESSION):
            picked = []     # only the current session is kept
        else:
            start = _int_or(req.get("start"), 0)
            stop = req.get("stop")
            stop = _int_or(stop, None) if stop is not None else None
            if stop is not None and stop <= 0:
                stop = None
            picked = [e for e in entries
                      if e[0] >= start and (stop is None or e[0] < stop)]
    elif kind == "search":
        import fnmatch
        pattern = req.get("pattern") or "*"
        if not isinstance(pattern, str):
            pattern = "*"
        picked = [e for e in entries if fnmatch.fnmatchcase(e[1], pattern)]
        if req.get("unique"):
            last_index = {}
            for i, e in enumerate(picked):
                last_index[e[1]] = i
            keep = set(last_index.values())
            picked = [e for i, e in enumerate(picked) if i in keep]
        n = req.get("n")
        if n is not None:
            n = _int_or(n, 0)
            picked = picked[-n:] if n > 0 else picked
    else:
        picked = []
    return {"status": "ok",
            "history": [_history_entry(e, output) for e in picked]}


# ---------------------------------------------------------------------------
# Comms (minimal)
# ---------------------------------------------------------------------------

class Comm:
    """A kernel-side comm.  Messages from the frontend go to the callbacks
    given to on_msg/on_close; send/close publish on IOPub."""

    def __init__(self, target_name="", data=None, metadata=None,
                 buffers=None, comm_id=None, primary=True):
        self.comm_id = comm_id or os.urandom(16).hex()
        self.target_name = target_name
        self._msg_callback = None
        self._close_callback = None
        self._closed = False
        _S.comms[self.comm_id] = self
        if primary:
            publish("comm_open", {"comm_id": self.comm_id,
                                  "target_name": target_name,
                                  "data": data or {}},
                    metadata, buffers)

    def send(self, data=None, metadata=None, buffers=None):
        if self._closed:
            raise ValueError("comm %s is closed" % self.comm_id)
        publish("comm_msg", {"comm_id": self.comm_id, "data": data or {}},
                metadata, buffers)

    def close(self, data=None, metadata=None, buffers=None):
        if self._closed:
            return
        self._closed = True
        _S.comms.pop(self.comm_id, None)
        publish("comm_close", {"comm_id": self.comm_id, "data": data or {}},
                metadata, buffers)

    def on_msg(self, callback):
        self._msg_callback = callback

    def on_close(self, callback):
        self._close_callback = callback

    def __repr__(self):
        return "<Comm %s target=%r>" % (self.comm_id, self.target_name)


def register_comm_target(target_name, callback):
    """callback(comm, open_msg) runs when the frontend opens a comm with
    this target.  open_msg is {'content': <comm_open content>}."""
    if callback is None:
        _S.comm_targets.pop(target_name, None)
    else:
        _S.comm_targets[target_name] = callback


def _run_callback(callback, *args):
    try:
        callback(*args)
    except Exception as exc:
        _, _, lines = _format_exception(exc)
        _warn("\n".join(lines))


def _comm_open(req):
    comm_id = req.get("comm_id")
    if not isinstance(comm_id, str):
        return
    target = req.get("target_name")
    callback = _S.comm_targets.get(target)
    if callback is None:
        # Nobody listens: tell the frontend the comm is closed.
        publish("comm_close", {"comm_id": comm_id, "data": {}})
        return
    comm = Comm(target_name=target, comm_id=comm_id, primary=False)
    _run_callback(callback, comm, {"content": req})


def _comm_msg(req):
    comm = _S.comms.get(req.get("comm_id"))
    if comm is not None and comm._msg_callback is not None:
        _run_callback(comm._msg_callback, {"content": req})


def _comm_close(req):
    comm = _S.comms.pop(req.get("comm_id"), None)
    if comm is not None:
        comm._closed = True
        if comm._close_callback is not None:
            _run_callback(comm._close_callback, {"content": req})


def _comm_info(req):
    target = req.get("target_name")
    comms = {cid: {"target_name": c.target_name}
             for cid, c in _S.comms.items()
             if not target or c.target_name == target}
    return {"status": "ok", "comms": comms}


# ---------------------------------------------------------------------------
# kernel_info
# ---------------------------------------------------------------------------

def kernel_info():
    """kernel_info_reply content (dict).  The C side may use it or build
    its own; handle('kernel_info_request', ...) returns it as JSON."""
    v = sys.version_info
    version = "%d.%d.%d" % (v.major, v.minor, v.micro)
    return {
        "status": "ok",
        "protocol_version": _PROTOCOL_VERSION,
        "implementation": "sandcell",
        "implementation_version": _S.implementation_version or "0",
        "language_info": {
            "name": "python",
            "version": version,
            "mimetype": "text/x-python",
            "file_extension": ".py",
            "pygments_lexer": "ipython%d" % v.major,
            "codemirror_mode": {"name": "ipython", "version": v.major},
            "nbconvert_exporter": "python",
        },
        "banner": "Python %s (sandcell kernel)" % sys.version.split("\n")[0],
        "help_links": [
            {"text": "Python Reference",
             "url": "https://docs.python.org/%d.%d" % (v.major, v.minor)},
        ],
    }


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

def _complete(req):
    return _lazy_introspect().complete(req.get("code", ""),
                                       req.get("cursor_pos"), _S.ns)


def _inspect(req):
    return _lazy_introspect().inspect(req.get("code", ""),
                                      req.get("cursor_pos"),
                                      req.get("detail_level", 0), _S.ns)


def _is_complete(req):
    return _lazy_introspect().is_complete(req.get("code", ""))


_HANDLERS = {
    "execute_request": _execute,
    "complete_request": _complete,
    "inspect_request": _inspect,
    "is_complete_request": _is_complete,
    "history_request": _history,
    "comm_info_request": _comm_info,
    "kernel_info_request": lambda req: kernel_info(),
    "comm_open": _comm_open,
    "comm_msg": _comm_msg,
    "comm_close": _comm_close,
}


def _fallback_reply(msg_type, exc_name):
    """A reply built with as little machinery as possible, for when the
    normal path failed (e.g. an interrupt landed in our own code)."""
    name = exc_name if exc_name.isidentifier() else "InternalError"
    text = ('"status":"error","ename":"%s","evalue":"the kernel failed to '
            'handle %s","traceback":[]' % (name, msg_type.replace('"', "")))
    if msg_type == "execute_request":
        return '{%s,"execution_count":%d}' % (text, _S.execution_count)
    return "{%s}" % text


def handle(msg_type, content):
    """Handle one shell request.  Returns the reply content as JSON text,
    or None when the message type has no reply.  Never raises."""
    try:
        try:
            handler = _HANDLERS.get(msg_type)
            if handler is None:
                return None
            try:
                req = _json_module().loads(content) if content else {}
            except Exception:
                req = {}
            if not isinstance(req, dict):
                req = {}
            reply = handler(req)
            if reply is None:
                return None
            return _dumps(reply)
        except BaseException as exc:
            # Our own failure (or an interrupt that hit our code, not the
            # user's).  Build an error reply the normal way if possible.
            _reset_request_flags()
            if not isinstance(msg_type, str) or msg_type.endswith(
                    ("comm_open", "comm_msg", "comm_close")):
                return None
            if msg_type == "execute_request":
                err = _cell_error_content(exc)
                err["execution_count"] = _S.execution_count
            else:
                err = _error_content(exc)
            err["status"] = "error"
            return _dumps(err)
    except BaseException as exc:
        try:
            return _fallback_reply(str(msg_type), type(exc).__name__)
        except BaseException:
            return '{"status":"error","ename":"InternalError","evalue":"","traceback":[]}'
