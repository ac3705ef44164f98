"""Completion, object inspection and is_complete for the sandcell kernel.

Imported on the first complete/inspect/is_complete request (or ``obj?``),
so kernel start-up does not pay for it.

Safety rule for completion and inspection: only plain dotted names are
evaluated (a namespace lookup followed by getattr for each part); nothing
is ever called, subscripted or evaluated as an expression.  Module-name
completion after ``from x import`` imports ``x``, as IPython does.
"""

import builtins
import keyword
import sys

_THIS_FILE = (lambda: 0).__code__.co_filename


def _is_name_char(ch):
    return ("a" + ch).isidentifier()


def _clamp(pos, length):
    try:
        pos = int(pos)
    except (TypeError, ValueError):
        return length
    return max(0, min(pos, length))


def resolve_name(name, ns):
    """Look up a dotted name in the user namespace, then builtins.

    Returns (found, obj).  Attribute access may run properties, but
    nothing is called explicitly.
    """
    parts = name.split(".")
    if not parts or not all(p.isidentifier() for p in parts):
        return False, None
    first = parts[0]
    if keyword.iskeyword(first):
        return False, None
    if first in ns:
        obj = ns[first]
    elif hasattr(builtins, first):
        obj = getattr(builtins, first)
    else:
        return False, None
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except Exception:
            return False, None
    return True, obj


# ---------------------------------------------------------------------------
# Scanning helpers
# ---------------------------------------------------------------------------

def _open_brackets(text):
    """Brackets still open at the end of text: list of (char, index).
    String literals and comments are skipped (a rough but safe scan)."""
    stack = []
    i, n = 0, len(text)
    closing = {")": "(", "]": "[", "}": "{"}
    while i < n:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        if ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
            j = i + len(quote)
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if len(quote) == 1 and text[j] == "\n":
                    break
                j += 1
            i = j + len(quote)
            continue
        if ch in "([{":
            stack.append((ch, i))
        elif ch in closing:
            if stack and stack[-1][0] == closing[ch]:
                stack.pop()
        i += 1
    return stack


def _name_before(text, index):
    """The dotted name that ends right before text[index] (spaces allowed)."""
    j = index
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    end = j
    while j > 0 and (text[j - 1] == "." or _is_name_char(text[j - 1])):
        j -= 1
    name = text[j:end]
    if name and all(p.isidentifier() for p in name.split(".")):
        return name
    return None


# ---------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------

def _visible(name, prefix):
    return name.startswith(prefix) and (
        not name.startswith("_") or prefix.startswith("_"))


def _attribute_names(obj):
    try:
        names = dir(obj)
    except Exception:
        return []
    return [n for n in names if isinstance(n, str) and n.isidentifier()]


def _parameter_names(call_name, ns):
    found, func = resolve_name(call_name, ns)
    if not found or not callable(func):
        return []
    try:
        import inspect
        sig = inspect.signature(func)
    except Exception:
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in sig.parameters.values() if p.kind in kinds]


_module_cache = {"key": None, "names": frozenset()}


def _top_level_modules():
    key = tuple(p for p in sys.path if isinstance(p, str))
    if _module_cache["key"] != key:
        import pkgutil
        names = set(sys.builtin_module_names)
        names.update(n for n in sys.modules if "." not in n)
        try:
            names.update(info.name for info in pkgutil.iter_modules())
        except Exception:
            pass
        _module_cache["names"] = frozenset(n for n in names if n.isidentifier())
        _module_cache["key"] = key
    return _module_cache["names"]


def _import_quietly(name):
    """Import a module for completion; None if that fails in any way
    except an interrupt."""
    try:
        import importlib
        return importlib.import_module(name)
    except (Exception, SystemExit):
        return None


def _submodules(package):
    """Submodules of a package (found on disk or already imported, like
    os.path) and the imported module itself (None if it failed)."""
    names = set()
    module = sys.modules.get(package) or _import_quietly(package)
    if module is None:
        return names, None
    path = getattr(module, "__path__", None)
    if path:
        import pkgutil
        try:
            names.update(info.name for info in pkgutil.iter_modules(path))
        except Exception:
            pass
    try:
        namespace = vars(module)
        names.update(k for k, v in list(namespace.items())
                     if isinstance(k, str) and type(v) is type(sys))
    except TypeError:
        pass
    return names, module


def _complete_module_path(dotted):
    if "." in dotted:
        package, _, prefix = dotted.rpartition(".")
        if not all(p.isidentifier() for p in package.split(".")):
            return [], len(prefix)
        names, _ = _submodules(package)
    else:
        prefix = dotted
        names = _top_level_modules()
    return [n for n in names if _visible(n, prefix)], len(prefix)


def _complete_import(line):
    """Completion inside 'import ...' and 'from ... import ...' lines, or
    None when the line is not an import statement."""
    s = line.lstrip()
    if s.startswith("import ") or s.startswith("import\t"):
        last = s[len("import"):].split(",")[-1].strip()
        if " " in last:            # 'import x as y'
            return [], 0
        return _complete_module_path(last)
    if s.startswith("from ") or s.startswith("from\t"):
        rest = s[4:].lstrip()
        head, sep, names = rest.partition(" import")
        if not sep:
            if rest.endswith((" ", "\t")) and rest.strip():
                return ["import"], 0
            return _complete_module_path(rest.strip())
        module_name = head.strip()
        prefix = names.replace("(", " ").split(",")[-1].strip()
        if (module_name.startswith(".")
                or not all(p.isidentifier() for p in module_name.split("."))
                or " " in prefix):
            return [], len(prefix)
        candidates, module = _submodules(module_name)
        if module is not None:
            candidates.update(_attribute_names(module))
        return [n for n in candidates if _visible(n, prefix)], len(prefix)
    return None


def _complete_dict_key(line, ns):
    """d['ab -> string keys of the dict d that start with 'ab'."""
    import re
    m = re.search(r"((?:[^\W\d]\w*\.)*[^\W\d]\w*)\s*\[\s*(['\"])([^'\"]*)$", line)
    if m is None:
        return None
    found, obj = resolve_name(m.group(1), ns)
    if not found or not isinstance(obj, dict):
        return None
    quote, part = m.group(2), m.group(3)
    keys = []
    for i, key in enumerate(dict.keys(obj)):
        if i >= 10000:
            break
        if isinstance(key, str) and key.startswith(part) and quote not in key:
            keys.append(key)
    return keys, len(part)


def _complete_name(line, before, ns):
    i = len(line)
    while i > 0 and (line[i - 1] == "." or _is_name_char(line[i - 1])):
        i -= 1
    token = line[i:]
    if token[:1].isdigit():
        return [], 0                      # a number, e.g. '1.'
    if "." in token:
        base, _, prefix = token.rpartition(".")
        if base:
            found, obj = resolve_name(base, ns)
            if not found:
                return [], len(prefix)
        elif i > 0 and line[i - 1] in "'\"":
            obj = ""                      # "text".<tab>: str attributes
        else:
            return [], len(prefix)
        names = _attribute_names(obj)
        return [n for n in names if _visible(n, prefix)], len(prefix)

    prefix = token
    names = {k for k in ns if isinstance(k, str)}
    names.update(dir(builtins))
    names.update(keyword.kwlist)
    matches = [n for n in names if _visible(n, prefix)]
    # Keyword arguments of the call the cursor is in: 'print(se' -> 'sep='.
    stack = _open_brackets(before)
    if stack and stack[-1][0] == "(":
        call = _name_before(before, stack[-1][1])
        if call and not keyword.iskeyword(call):
            matches.extend(p + "=" for p in _parameter_names(call, ns)
                           if _visible(p, prefix))
    return matches, len(prefix)


def complete(code, cursor_pos, ns):
    """complete_reply content."""
    if not isinstance(code, str):
        code = ""
    pos = _clamp(len(code) if cursor_pos is None else cursor_pos, len(code))
    before = code[:pos]
    line = before[before.rfind("\n") + 1:]
    result = _complete_import(line)
    if result is None:
        result = _complete_dict_key(line, ns)
    if result is None:
        result = _complete_name(line, before, ns)
    matches, replaced = result
    return {"status": "ok", "matches": sorted(set(matches)),
            "cursor_start": pos - replaced, "cursor_end": pos,
            "metadata": {}}


# ---------------------------------------------------------------------------
# Inspection
# ---------------------------------------------------------------------------

def _inspect_candidates(code, pos):
    """Names to try for an inspect request: the name at/just before the
    cursor, then the function of the call the cursor is in."""
    start = pos
    while start > 0 and (code[start - 1] == "." or _is_name_char(code[start - 1])):
        start -= 1
    end = pos
    while end < len(code) and _is_name_char(code[end]):
        end += 1
    candidates = []
    word = code[start:end].strip(".")
    if word and not word[0].isdigit():
        candidates.append(word)
    stack = _open_brackets(code[:pos])
    if stack and stack[-1][0] == "(":
        call = _name_before(code, stack[-1][1])
        if call and call not in candidates:
            candidates.append(call)
    return candidates


def _short_repr(obj, limit=500):
    try:
        text = repr(obj)
    except Exception as exc:
        return "<repr() failed: %s>" % type(exc).__name__
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def _signature_text(name, obj):
    import inspect
    try:
        return name + str(inspect.signature(obj))
    except Exception:
        pass
    # Builtins without a signature usually start their docstring with one.
    doc = getattr(obj, "__doc__", None)
    if isinstance(doc, str):
        first = doc.strip().split("\n", 1)[0]
        short = name.rsplit(".", 1)[-1]
        if first.startswith(short + "("):
            return first
    return None


def object_info_text(name, obj, detail_level=0):
    """Plain-text description of obj: signature, type, value, file,
    docstring; with detail_level 1 the source replaces the docstring when
    it is available.  Objects that break introspection get a short note."""
    try:
        return _object_info_text(name, obj, detail_level)
    except Exception as exc:
        return "%s: %s object (introspection failed: %s)" % (
            name, type(obj).__name__, type(exc).__name__)


def _object_info_text(name, obj, detail_level):
    import inspect
    lines = []

    def field(label, value):
        lines.append("%-12s %s" % (label + ":", value))

    # Decide by type(obj), never by obj.__class__ (which objects can fake).
    is_class = issubclass(type(obj), type)
    is_module = issubclass(type(obj), type(sys))
    if callable(obj) and not is_module:
        sig = _signature_text(name, obj)
        if sig:
            field("Signature", sig)
    try:
        field("Type", type(obj).__name__)
    except Exception:
        pass
    if not (callable(obj) or is_module or is_class):
        field("String form", _short_repr(obj))
        try:
            if isinstance(obj, (str, bytes, list, tuple, dict, set, frozenset)):
                field("Length", len(obj))
        except Exception:
            pass
    source_file = None
    if is_module or is_class or inspect.isroutine(obj):
        try:
            source_file = inspect.getsourcefile(obj) or inspect.getfile(obj)
        except Exception:
            source_file = None
        if source_file:
            field("File", source_file)

    source = None
    if detail_level == 1 and (is_module or is_class or inspect.isroutine(obj)):
        try:
            source = inspect.getsource(obj)
        except Exception:
            source = None
    if source:
        lines.append("Source:")
        lines.append(source.rstrip("\n"))
    else:
        try:
            doc = inspect.getdoc(obj)
        except Exception:
            doc = None
        lines.append("Docstring:")
        lines.append(doc if doc else "<no docstring>")
    return "\n".join(lines)


def inspect(code, cursor_pos, detail_level, ns):
    """inspect_reply content."""
    if not isinstance(code, str):
        code = ""
    pos = _clamp(len(code) if cursor_pos is None else cursor_pos, len(code))
    level = 1 if detail_level in (1, "1", True) else 0
    for name in _inspect_candidates(code, pos):
        found, obj = resolve_name(name, ns)
        if found:
            return {"status": "ok", "found": True,
                    "data": {"text/plain": object_info_text(name, obj, level)},
                    "metadata": {}}
    return {"status": "ok", "found": False, "data": {}, "metadata": {}}


# ---------------------------------------------------------------------------
# is_complete
# ---------------------------------------------------------------------------

_PyCF_DONT_IMPLY_DEDENT = 0x200
_PyCF_ALLOW_INCOMPLETE_INPUT = 0x4000


def _indent_of(line):
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += 4
        else:
            break
    return width


def _incomplete(indent):
    return {"status": "incomplete", "indent": " " * indent}


def is_complete(code):
    """is_complete_reply content, following IPython's rules:

    * unclosed brackets/strings, a trailing backslash, a line ending in ':'
      or code the parser calls "incomplete input" -> incomplete;
    * an indented block as the last line without a final newline ->
      incomplete (the user may want another line in the block);
    * a closing bracket with no opener, or any other syntax error -> invalid.
    """
    if not isinstance(code, str):
        return {"status": "unknown"}
    if not code.strip():
        return {"status": "complete"}
    import sandcell_kernel
    if sandcell_kernel._page_request(code) is not None:
        return {"status": "complete"}

    ends_with_newline = code.rstrip(" \t\f\r")[-1:] == "\n"
    source = code if ends_with_newline else code + "\n"
    lines = source.splitlines(True)
    last_indent = _indent_of(lines[-1]) if lines else 0

    import io
    import tokenize
    tokens = []
    unfinished = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            tokens.append(tok)
    except tokenize.TokenError:
        unfinished = True             # open bracket, string or backslash
    except SyntaxError:               # IndentationError and friends
        return {"status": "invalid"}

    depth = 0
    for tok in tokens:
        if tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
                if depth < 0:
                    return {"status": "invalid"}
    if unfinished:
        return _incomplete(last_indent)

    skip = {tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENDMARKER}
    significant = [i for i, t in enumerate(tokens) if t.type not in skip]
    if not significant:
        return {"status": "complete"}        # only comments
    last_index = significant[-1]
    last = tokens[last_index]
    if last.type == tokenize.OP and last.string == ":":
        # Start of a block: indent relative to the logical line's start.
        first = last_index
        while first > 0 and tokens[first - 1].type not in (
                tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            first -= 1
        while tokens[first].type in (tokenize.NL, tokenize.COMMENT):
            first += 1
        return _incomplete(tokens[first].start[1] + 4)

    import warnings
    import ast
    flags = (ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
             | _PyCF_DONT_IMPLY_DEDENT | _PyCF_ALLOW_INCOMPLETE_INPUT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<is_complete>", "exec", flags, dont_inherit=True)
    except SyntaxError as exc:
        if "incomplete input" in str(getattr(exc, "msg", "")):
            return _incomplete(last_indent)
        return {"status": "invalid"}
    except (ValueError, TypeError, OverflowError, MemoryError, RecursionError):
        return {"status": "invalid"}

    # The code ends inside an indented block (the tokenizer closes it with
    # DEDENT tokens) and no newline was typed after it yet.
    if not ends_with_newline:
        tail = tokens[last_index + 1:]
        if any(t.type == tokenize.DEDENT for t in tail):
            return _incomplete(last_indent)
    return {"status": "complete"}
