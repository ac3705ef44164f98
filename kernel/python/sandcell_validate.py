"""Static analysis of code for the task API's ``validate`` (nothing runs).

``validate(code, policy, ...)`` returns the ValidationResult of
docs/python-api-json-reference.md without ``validation_time``:

* syntax errors, as the compiler reports them (line, 0-based column, text);
* every import (statements, ``__import__("x")`` and
  ``importlib.import_module("x")`` with a literal name) with the import
  policy's verdict and whether the top-level package can be found;
* calls and attributes worth a warning (dynamic code, interpreter
  internals, file changes, processes, network), found by name, with the
  names bound by imports followed (``from os import system as s; s()``);
* short recommendations derived from all of it.

It is a reading of the source, not a guarantee: code can reach anything by
routes no static check sees, and the sandbox, not this module, holds.
Nothing is imported or executed; ``importlib.util.find_spec`` looks for a
top-level name only, which loads nothing.  Imported by sandcell_kernel on
the first validate task; user code may not import it.
"""

import sys

__all__ = ["validate"]

# Code objects compiled from this file carry this filename; tracebacks shown
# to the user drop frames that come from our modules.
_THIS_FILE = (lambda: 0).__code__.co_filename

MAX_ENTRIES = 1000      # per list: imports, warnings, import issues

# ---------------------------------------------------------------------------
# What is worth a warning
# ---------------------------------------------------------------------------

# Builtins called by name.
_DYNAMIC = {
    "eval": "eval() runs code built at run time",
    "exec": "exec() runs code built at run time",
    "compile": "compile() builds code objects at run time",
    "__import__": "__import__() imports modules chosen at run time",
}

# Attributes that reach interpreter internals: name -> severity.
_INTROSPECTION = {
    "__subclasses__": "high", "__globals__": "high", "__builtins__": "high",
    "__code__": "high", "f_back": "high", "f_globals": "high",
    "f_locals": "high", "f_builtins": "high", "tb_frame": "high",
    "gi_frame": "high", "cr_frame": "high", "ag_frame": "high",
    "__closure__": "medium", "__mro__": "medium", "__bases__": "medium",
    "__base__": "medium",
}

# Dotted names (after following imports): exact names, then "module.*"
# entries that cover every attribute of a module.  Value: (category,
# severity, message).
_CALLS = {
    "os.system": ("process", "high", "os.system() runs a shell command"),
    "os.popen": ("process", "high", "os.popen() runs a shell command"),
    "os.fork": ("process", "high", "os.fork() starts a process"),
    "os.forkpty": ("process", "high", "os.forkpty() starts a process"),
    "os.kill": ("process", "high", "os.kill() sends signals to processes"),
    "os.killpg": ("process", "high", "os.killpg() sends signals to processes"),
    "os.posix_spawn": ("process", "high", "os.posix_spawn() starts a program"),
    "os.posix_spawnp": ("process", "high", "os.posix_spawnp() starts a program"),
    "pty.spawn": ("process", "high", "pty.spawn() starts a program"),
    "asyncio.create_subprocess_exec": ("process", "high", "starts a program"),
    "asyncio.create_subprocess_shell": ("process", "high", "runs a shell command"),
    "subprocess.*": ("process", "high", "subprocess starts programs"),
    "signal.*": ("process", "high", "signal changes how the process handles signals"),
    "multiprocessing.*": ("process", "medium", "multiprocessing starts processes"),
    "os.remove": ("file", "medium", "os.remove() deletes a file"),
    "os.unlink": ("file", "medium", "os.unlink() deletes a file"),
    "os.rmdir": ("file", "medium", "os.rmdir() deletes a directory"),
    "os.removedirs": ("file", "medium", "os.removedirs() deletes directories"),
    "os.rename": ("file", "medium", "os.rename() moves a file"),
    "os.renames": ("file", "medium", "os.renames() moves files"),
    "os.replace": ("file", "medium", "os.replace() overwrites a file"),
    "os.truncate": ("file", "medium", "os.truncate() cuts a file"),
    "os.chmod": ("file", "medium", "os.chmod() changes permissions"),
    "os.chown": ("file", "medium", "os.chown() changes ownership"),
    "os.link": ("file", "medium", "os.link() creates a hard link"),
    "os.symlink": ("file", "medium", "os.symlink() creates a symbolic link"),
    "shutil.rmtree": ("file", "medium", "shutil.rmtree() deletes a directory tree"),
    "shutil.move": ("file", "medium", "shutil.move() moves files"),
    "shutil.copy": ("file", "medium", "shutil.copy() writes files"),
    "shutil.copy2": ("file", "medium", "shutil.copy2() writes files"),
    "shutil.copyfile": ("file", "medium", "shutil.copyfile() writes a file"),
    "shutil.copytree": ("file", "medium", "shutil.copytree() writes a directory tree"),
    "shutil.chown": ("file", "medium", "shutil.chown() changes ownership"),
    "socket.*": ("network", "medium", "socket opens network connections"),
    "urllib.request.*": ("network", "medium", "urllib.request fetches URLs"),
    "http.client.*": ("network", "medium", "http.client opens HTTP connections"),
    "requests.*": ("network", "medium", "requests fetches URLs"),
    "httpx.*": ("network", "medium", "httpx fetches URLs"),
    "urllib3.*": ("network", "medium", "urllib3 fetches URLs"),
    "aiohttp.*": ("network", "medium", "aiohttp opens network connections"),
    "ftplib.*": ("network", "medium", "ftplib opens network connections"),
    "smtplib.*": ("network", "medium", "smtplib opens network connections"),
    "sys._getframe": ("introspection", "high", "sys._getframe() reaches frames"),
    "inspect.currentframe": ("introspection", "medium", "inspect.currentframe() reaches frames"),
    "inspect.stack": ("introspection", "medium", "inspect.stack() reaches frames"),
    "gc.get_objects": ("introspection", "medium", "gc.get_objects() reaches every object"),
    "gc.get_referrers": ("introspection", "medium", "gc.get_referrers() reaches objects"),
    "pickle.load": ("dynamic_code", "medium", "unpickling runs code named by the data"),
    "pickle.loads": ("dynamic_code", "medium", "unpickling runs code named by the data"),
    "marshal.loads": ("dynamic_code", "medium", "marshal.loads() builds code objects"),
}

# os functions by prefix: os.execv, os.spawnlp, ...
_OS_PREFIXES = (("exec", "replaces the process with a program"),
                ("spawn", "starts a program"))

_WRITE_MODE_CHARS = set("wax+")

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

# ---------------------------------------------------------------------------
# Recommendations
# ---------------------------------------------------------------------------

_DYNAMIC_ADVICE = {
    "eval": "Remove eval(): parse data with json.loads or ast.literal_eval instead",
    "exec": "Remove exec(): write the code itself, or call functions chosen from a dict",
    "compile": "Remove compile(): write the code itself instead of building it at run time",
    "__import__": "Use an import statement instead of __import__()",
    "importlib.import_module": "Import modules by name with an import statement",
}

_CATEGORY_ADVICE = {
    "introspection": "Avoid interpreter internals (__subclasses__, __globals__, frames): "
                     "they do not reach past the sandbox and make code fragile",
    "file": "File changes stay inside the sandbox: write below /workspace or /tmp",
    "process": "Do the work in Python rather than in other programs: starting processes "
               "is limited or refused in the sandbox",
}

# Standard-library stand-ins for popular packages.
_ALTERNATIVES = {
    "requests": "urllib.request (network permitting)",
    "httpx": "urllib.request (network permitting)",
    "urllib3": "urllib.request (network permitting)",
    "aiohttp": "urllib.request (network permitting)",
    "numpy": "lists with the math and statistics modules",
    "pandas": "csv with the statistics module",
    "scipy": "the math and statistics modules",
    "yaml": "json",
    "toml": "tomllib",
    "bs4": "html.parser",
    "lxml": "xml.etree.ElementTree",
    "dateutil": "datetime",
    "pytz": "zoneinfo",
    "simplejson": "json",
    "ujson": "json",
    "orjson": "json",
    "regex": "re",
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

class _Source:
    """The code's lines, to turn the AST's byte columns into characters."""

    def __init__(self, code):
        self.lines = code.splitlines()

    def column(self, lineno, byte_offset):
        if not isinstance(byte_offset, int) or byte_offset <= 0:
            return 0
        try:
            line = self.lines[lineno - 1]
        except (IndexError, TypeError):
            return byte_offset
        raw = line.encode("utf-8", "surrogatepass")
        return len(raw[:byte_offset].decode("utf-8", "replace"))


def _dotted(node):
    """"a.b.c" for a Name/Attribute chain, else None."""
    import ast
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _aliases(tree):
    """Local name -> dotted name, for the names import statements bind."""
    import ast
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.partition(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = node.module + "." + alias.name
    return names


def _resolve(dotted, aliases):
    head, dot, rest = dotted.partition(".")
    base = aliases.get(head)
    if base is None:
        return dotted
    return base + dot + rest


def _classify(name):
    """(category, severity, code, message) for a dotted name, or None.  The
    longest matching prefix wins: os.system.__doc__ is about os.system."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        hit = _CALLS.get(prefix)
        if hit is not None:
            return hit[0], hit[1], prefix, hit[2]
        if n >= 2:
            module = ".".join(parts[:n - 1])
            hit = _CALLS.get(module + ".*")
            if hit is not None:
                return hit[0], hit[1], prefix, hit[2]
            if module == "os":
                for start, what in _OS_PREFIXES:
                    if parts[n - 1].startswith(start):
                        return "process", "high", prefix, "%s() %s" % (prefix, what)
    return None


def _literal_str(node):
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_dunder(text):
    return (isinstance(text, str) and len(text) > 4 and text.startswith("__")
            and text.endswith("__"))


def _open_mode(call):
    """The mode argument of an open() call: a string, None when absent
    (read), False when it is not a literal."""
    mode_node = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode_node = kw.value
    if mode_node is None:
        return None
    mode = _literal_str(mode_node)
    return False if mode is None else mode


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------

class _Findings:
    def __init__(self, source):
        self.source = source
        self.warnings = {}

    def warn(self, node, severity, category, code, message):
        line = getattr(node, "lineno", 1)
        column = self.source.column(line, getattr(node, "col_offset", 0))
        key = (line, column, code)
        old = self.warnings.get(key)
        if old is None or _SEVERITY_ORDER[severity] < _SEVERITY_ORDER[old["severity"]]:
            self.warnings[key] = {"line": line, "column": column,
                                  "severity": severity, "category": category,
                                  "code": code, "message": message}

    def sorted(self):
        return [self.warnings[k] for k in sorted(self.warnings)][:MAX_ENTRIES]


def _call_warnings(node, aliases, found):
    """Warnings for a call of a builtin by name (eval, open, getattr, ...)."""
    import ast
    func = node.func
    if not isinstance(func, ast.Name) or func.id in aliases:
        name = _dotted(func)
        name = _resolve(name, aliases) if name else None
        if name not in ("builtins.eval", "builtins.exec", "builtins.compile",
                        "builtins.__import__", "builtins.open", "io.open",
                        "builtins.getattr", "builtins.setattr",
                        "builtins.delattr", "importlib.import_module"):
            return
        called = name.rpartition(".")[2]
    else:
        called = func.id
    if called in _DYNAMIC:
        found.warn(node, "high", "dynamic_code", called, _DYNAMIC[called])
    elif called == "import_module":
        if not node.args or _literal_str(node.args[0]) is None:
            found.warn(node, "medium", "dynamic_code", "importlib.import_module",
                       "import_module() imports a module chosen at run time")
    elif called == "open":
        mode = _open_mode(node)
        if mode is False:
            found.warn(node, "medium", "file", "open",
                       "open() with a mode chosen at run time may write files")
        elif mode is not None and _WRITE_MODE_CHARS & set(mode):
            found.warn(node, "medium", "file", "open",
                       "open() in mode %r writes a file" % mode)
        else:
            found.warn(node, "low", "file", "open", "open() reads a file")
    elif called in ("getattr", "setattr", "delattr"):
        attr = _literal_str(node.args[1]) if len(node.args) > 1 else None
        if _is_dunder(attr) or attr in _INTROSPECTION:
            severity = _INTROSPECTION.get(attr, "medium")
            found.warn(node, severity, "introspection", called,
                       "%s() with %r reaches interpreter internals" % (called, attr))


def _warnings(tree, source):
    import ast
    aliases = _aliases(tree)
    found = _Findings(source)
    inner = set()       # ids of Name/Attribute nodes inside a longer chain
    nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Attribute, ast.Name)):
            inner.add(id(node.value))
    for node in nodes:
        if isinstance(node, ast.Call):
            _call_warnings(node, aliases, found)
        elif isinstance(node, ast.Attribute):
            severity = _INTROSPECTION.get(node.attr)
            if severity is not None:
                found.warn(node, severity, "introspection", node.attr,
                           "%s reaches interpreter internals" % node.attr)
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.warn(node, "high", "introspection", "__builtins__",
                       "__builtins__ reaches the interpreter's builtins")
        if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in inner:
            name = _dotted(node)
            if name is None or (isinstance(node, ast.Name) and node.id not in aliases):
                continue
            hit = _classify(_resolve(name, aliases))
            if hit is not None:
                category, severity, code, message = hit
                found.warn(node, severity, category, code, message)
    return found.sorted()


def _import_sites(tree):
    """(module, line, names_from) for every absolute import, in source order;
    names_from are the names of a `from module import a, b`."""
    import ast
    from sandcell_policy import _import_call_target
    sites = []
    relative = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                sites.append((alias.name, node.lineno, ()))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.append(node.lineno)
            elif node.module != "__future__":
                sites.append((node.module, node.lineno,
                              tuple(a.name for a in node.names if a.name != "*")))
        elif isinstance(node, ast.Call):
            name = _import_call_target(node)
            if name:
                sites.append((name, node.lineno, ()))
    sites.sort(key=lambda s: s[1])
    return sites, sorted(relative)


def _installed(top, provided, cache):
    """True when the top-level module `top` can be imported here (loaded,
    built in, served by the kernel, or found on the path)."""
    if top in cache:
        return cache[top]
    found = top in sys.modules or top in sys.builtin_module_names or top in provided
    if not found:
        try:
            import importlib.util
            found = importlib.util.find_spec(top) is not None
        except Exception:
            found = False
    cache[top] = found
    return found


def _refusal_text(policy, module):
    verb = "is blocked" if policy.allow is None else "is not allowed"
    return "import of '%s' %s under the %s security profile" % (module, verb, policy.profile)


def _imports(tree, policy, provided):
    """(imports, import_issues, relative_lines)."""
    sites, relative = _import_sites(tree)
    provided_tops = {p.partition(".")[0] for p in provided}
    cache = {}
    imports, issues, reported = [], [], set()
    seen = set()
    for module, line, names in sites:
        refused = policy is not None and policy.refuses(module)
        entries = [(module, refused)]
        if policy is not None and not refused:
            # `from xml import sax` imports xml.sax, which may be refused alone.
            entries += [(module + "." + n, True) for n in names
                        if policy.refuses(module + "." + n)]
        for name, is_refused in entries:
            if (name, line) in seen:
                continue
            seen.add((name, line))
            installed = _installed(name.partition(".")[0], provided_tops, cache)
            imports.append({"module": name, "line": line, "allowed": not is_refused,
                            "installed": installed})
            if is_refused and (name, "not_allowed") not in reported:
                reported.add((name, "not_allowed"))
                issues.append({"module": name, "line": line, "reason": "not_allowed",
                               "message": _refusal_text(policy, name)})
            elif not is_refused and not installed and (name, "not_installed") not in reported:
                reported.add((name, "not_installed"))
                issues.append({"module": name, "line": line, "reason": "not_installed",
                               "message": "module '%s' is not installed in the sandbox"
                                          % name.partition(".")[0]})
    return imports[:MAX_ENTRIES], issues[:MAX_ENTRIES], relative


def _syntax_error(exc, source):
    line = exc.lineno if isinstance(exc.lineno, int) else 1
    offset = exc.offset if isinstance(exc.offset, int) else 1
    text = exc.text
    if not isinstance(text, str):
        try:
            text = source.lines[line - 1]
        except IndexError:
            text = ""
    return {"line": line, "column": max(0, offset - 1), "message": str(exc.msg),
            "text": text.rstrip("\r\n")}


def _parse(code, source):
    """(tree, syntax_errors): the AST (None when the code does not parse) and
    the error.  The code is also compiled (not run), which finds the errors
    the parser leaves to the compiler ('return' outside function, ...).
    Top-level await is allowed, as in a cell."""
    import ast
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        tree = compile(code, "<code>", "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return None, [_syntax_error(exc, source)]
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, [{"line": 1, "column": 0, "message": str(exc) or type(exc).__name__,
                       "text": source.lines[0] if source.lines else ""}]
    try:
        compile(tree, "<code>", "exec", flags, dont_inherit=True)
    except SyntaxError as exc:
        return tree, [_syntax_error(exc, source)]
    except (ValueError, RecursionError, MemoryError) as exc:
        return tree, [{"line": 1, "column": 0, "message": str(exc) or type(exc).__name__,
                       "text": source.lines[0] if source.lines else ""}]
    return tree, []


def _recommendations(syntax_errors, parsed, warnings, issues, relative, policy):
    out = []

    def add(text):
        if text not in out:
            out.append(text)

    if syntax_errors:
        add("Fix the syntax error on line %d first" % syntax_errors[0]["line"])
    elif not parsed:
        add("The code does not parse (syntax checking was turned off): fix it first")
    for issue in issues:
        name = issue["module"]
        top = name.partition(".")[0]
        if issue["reason"] == "not_allowed":
            text = ("Remove the import of '%s': the %s security profile does not allow it"
                    % (name, policy.profile))
            try:
                from sandcell_policy import _HINTS
                alternative, hint = _HINTS.get(top, (None, ""))
                if alternative and not policy.refuses(alternative):
                    text += "; %s" % hint
            except Exception:
                pass
            add(text)
        else:
            alternative = _ALTERNATIVES.get(top)
            if alternative:
                add("'%s' is not installed in the sandbox; use %s" % (top, alternative))
            else:
                add("'%s' is not installed in the sandbox; use the standard library" % top)
    if relative:
        add("Relative imports (line %d) fail here: the code runs as a top-level "
            "script, not inside a package" % relative[0])
    for w in warnings:
        code = w["code"]
        if w["category"] == "dynamic_code" and code in _DYNAMIC_ADVICE:
            add(_DYNAMIC_ADVICE[code])
        elif w["category"] == "dynamic_code":
            add("Do not load pickled or marshalled data from untrusted sources")
        elif w["category"] == "network":
            if policy is not None and not policy.network:
                add("The sandbox has no network access: %s will fail" % code)
            else:
                add("Network access may be limited in the sandbox: handle failures of %s"
                    % code)
        elif w["category"] == "file" and w["severity"] == "low":
            continue
        else:
            add(_CATEGORY_ADVICE[w["category"]])
    return out


def validate(code, policy=None, check_syntax=True, check_imports=True, provided=()):
    """The ValidationResult (without validation_time) for code under the
    import policy (a sandcell_policy.Policy, or None for no policy).
    provided: modules the kernel serves itself (count as installed).
    Never runs or imports the code."""
    if not isinstance(code, str):
        code = ""
    source = _Source(code)
    tree, syntax_errors = _parse(code, source)
    warnings, imports, issues, relative = [], [], [], []
    if tree is not None:
        warnings = _warnings(tree, source)
        if check_imports:
            imports, issues, relative = _imports(tree, policy, provided)
    parsed = tree is not None and not syntax_errors
    reported_syntax = syntax_errors if check_syntax else []
    return {
        "is_valid": parsed and not issues,
        "syntax_errors": reported_syntax,
        "security_warnings": warnings,
        "import_issues": issues,
        "imports": imports,
        "recommendations": _recommendations(reported_syntax, parsed, warnings, issues,
                                            relative, policy),
        "security_level": policy.profile if policy is not None else "none",
    }
