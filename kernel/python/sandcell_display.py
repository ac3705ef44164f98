"""Rich output for the sandcell kernel.

* ``format_object(obj)`` turns any object into a MIME bundle
  ``(data, metadata)``; ``text/plain`` is always there.
* ``display()``, ``update_display()``, ``clear_output()``,
  ``publish_display_data()`` and ``DisplayHandle`` publish
  ``display_data`` / ``update_display_data`` / ``clear_output``.
* A small stand-in for ``IPython.display`` (``HTML``, ``Markdown``,
  ``Image``, ``JSON``, ...) served by an import hook when IPython is not
  installed, and ``patch_ipython_module()`` which points a real IPython's
  display functions at this kernel.
* matplotlib: figures are rendered to PNG and shown after each cell.

Formatter rules (see docs/kernel-python.md):
  - ``_repr_*_`` methods are looked up on the type (walking the MRO), never
    on the instance, so ``__getattr__`` tricks are not triggered; classes
    themselves only get ``text/plain``.
  - ``_repr_mimebundle_`` wins over the single-MIME methods; any method may
    return ``(data, metadata)``; ``None`` means "no such representation".
  - A method that raises is skipped with a one-line warning on stderr.
    KeyboardInterrupt and SystemExit are not caught.
  - Binary image/PDF data is base64-encoded; text types become str.
"""

import os
import sys

import sandcell_kernel as _kernel

_THIS_FILE = (lambda: 0).__code__.co_filename


# ---------------------------------------------------------------------------
# Formatter
# ---------------------------------------------------------------------------

# Single-MIME representation methods, in the order IPython checks them.
_REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
    ("application/pdf", "_repr_pdf_"),
)

_TEXT_MIMES = ("image/svg+xml", "application/javascript")

_CONTAINER_REPRS = (dict.__repr__, list.__repr__, tuple.__repr__,
                    set.__repr__, frozenset.__repr__)

# Containers longer than this are shown with repr() (one line) instead of
# the slower pprint layout.
_PPRINT_MAX_ITEMS = 2000
_WIDTH = 79

# Read a class's own namespace and MRO through type's descriptors, so a
# metaclass cannot intercept the lookups.
_type_dict = type.__dict__["__dict__"].__get__   # klass -> mappingproxy
_type_mro = type.__dict__["__mro__"].__get__     # klass -> tuple


def _is_class(obj):
    """isinstance(obj, type) without consulting obj.__class__."""
    return issubclass(type(obj), type)


def _warn(message):
    _kernel._warn(message)


def _first_line(text, limit=200):
    text = text.strip().split("\n", 1)[0]
    return text if len(text) <= limit else text[:limit] + "..."


def _describe_exc(exc):
    return "%s: %s" % (type(exc).__name__, _first_line(_kernel._safe_str(exc)))


def _type_name(obj):
    try:
        name = type(obj).__qualname__
        return name if isinstance(name, str) else "object"
    except Exception:
        return "object"


def lookup_method(obj, name):
    """Find ``name`` on type(obj) without touching the instance.

    Returns the bound method (or plain attribute), or None.  Classes are
    never asked for rich representations.
    """
    if _is_class(obj):
        return None
    cls = type(obj)
    for klass in _type_mro(cls):
        try:
            namespace = _type_dict(klass)
        except Exception:
            continue
        if name in namespace:
            attr = namespace[name]
            break
    else:
        return None
    if attr is None:
        return None
    getter = getattr(type(attr), "__get__", None)
    if getter is None:
        return attr
    return getter(attr, obj, cls)


def _call_repr(obj, name, mime, *args, **kwargs):
    """Call a representation method; on error warn and return None."""
    try:
        method = lookup_method(obj, name)
        if method is None:
            return None
        return method(*args, **kwargs)
    except Exception as exc:
        _warn("Warning: %s.%s() failed (%s); %s output skipped."
              % (_type_name(obj), name, _describe_exc(exc), mime))
        return None


def _split(result):
    """Representation methods may return data or (data, metadata)."""
    if isinstance(result, tuple) and len(result) == 2:
        return result[0], result[1]
    return result, None


def valid_mime(key):
    """'type/subtype' made of word characters, '-', '+' and '.' (the
    protocol's JSON schema)."""
    if not isinstance(key, str) or key.count("/") != 1:
        return False
    for part in key.split("/"):
        if not part:
            return False
        for ch in part:
            if not (ch.isalnum() or ch in "_-+."):
                return False
    return True


def _is_binary_mime(mime):
    return mime == "application/pdf" or (
        mime.startswith("image/") and not mime.endswith(("+xml", "/svg")))


def _is_text_mime(mime):
    return (mime.startswith("text/") or mime in _TEXT_MIMES
            or mime.endswith("+xml"))


def _normalize(mime, value):
    """Make a representation JSON-friendly; None to drop it."""
    if value is None:
        return None
    if _is_binary_mime(mime):
        if isinstance(value, (bytes, bytearray, memoryview)):
            import base64
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, str):
            return value          # assumed to be base64 already
        return _kernel._safe_str(value)
    if _is_text_mime(mime):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "replace")
        if isinstance(value, str):
            return str.__str__(value)
        return _kernel._safe_str(value)
    if mime == "application/json" and isinstance(value, str):
        try:
            return _kernel._json_module().loads(value)
        except ValueError:
            return value
    return value                  # JSON-ish data (dicts for widgets, ...)


def _repr_failed(obj, exc):
    try:
        where = "%#x" % id(obj)
    except Exception:
        where = "?"
    return "<%s object at %s (repr() failed: %s)>" % (
        _type_name(obj), where, _describe_exc(exc))


def plain_text(obj):
    """text/plain for obj: repr(), pretty-printed for long builtin
    containers, IPython's pretty printer for objects with _repr_pretty_
    when IPython is already loaded."""
    try:
        if (lookup_method(obj, "_repr_pretty_") is not None
                and "IPython.lib.pretty" in sys.modules):
            return sys.modules["IPython.lib.pretty"].pretty(obj)
    except Exception:
        pass
    try:
        text = repr(obj)
    except Exception as exc:
        return _repr_failed(obj, exc)
    if len(text) > _WIDTH:
        try:
            if (type(obj).__repr__ in _CONTAINER_REPRS
                    and len(obj) <= _PPRINT_MAX_ITEMS):
                import pprint
                text = pprint.pformat(obj, width=_WIDTH, sort_dicts=False)
        except Exception:
            pass
    return text


def _is_mpl_figure(obj):
    try:
        for klass in _type_mro(type(obj)):
            if (klass.__name__ == "Figure"
                    and klass.__module__ == "matplotlib.figure"):
                return True
    except Exception:
        pass
    return False


# Output formats for matplotlib figures (set_matplotlib_formats).
_figure_formats = ["png"]


def _figure_bundle(fig):
    """Render a matplotlib figure; empty figures give nothing."""
    if not getattr(fig, "axes", None) and not getattr(fig, "lines", None):
        return {}
    import io
    data = {}
    for fmt in _figure_formats:
        buf = io.BytesIO()
        dpi = None
        real = fmt
        if fmt == "retina":
            real, dpi = "png", 2 * fig.dpi
        fig.savefig(buf, format=real, bbox_inches="tight",
                    **({"dpi": dpi} if dpi else {}))
        raw = buf.getvalue()
        if real == "svg":
            data["image/svg+xml"] = raw.decode("utf-8")
        elif real in ("png", "jpeg", "jpg"):
            mime = "image/png" if real == "png" else "image/jpeg"
            data[mime] = _normalize(mime, raw)
        elif real == "pdf":
            data["application/pdf"] = _normalize("application/pdf", raw)
    return data


def format_object(obj, include=None, exclude=None):
    """Return the MIME bundle ``(data, metadata)`` for obj.

    An object with ``_ipython_display_`` displays itself and gives
    ``({}, {})``.  include/exclude restrict the MIME types produced.
    """
    include = set(include) if include else None
    exclude = set(exclude) if exclude else set()

    def wanted(mime):
        return (include is None or mime in include) and mime not in exclude

    data, md = {}, {}
    if not _is_class(obj):
        self_display = lookup_method(obj, "_ipython_display_")
        if self_display is not None:
            try:
                self_display()
                return {}, {}
            except Exception as exc:
                _warn("Warning: %s._ipython_display_() failed (%s)."
                      % (_type_name(obj), _describe_exc(exc)))

        bundle, bundle_md = _split(_call_repr(
            obj, "_repr_mimebundle_", "mimebundle",
            include=sorted(include) if include else None,
            exclude=sorted(exclude) if exclude else None))
        if isinstance(bundle, dict):
            for mime, value in list(bundle.items()):
                if not valid_mime(mime) or not wanted(mime):
                    continue
                value = _normalize(mime, value)
                if value is not None:
                    data[mime] = value
        if isinstance(bundle_md, dict):
            for key, value in bundle_md.items():
                if isinstance(key, str):
                    md[key] = value

        for mime, name in _REPR_METHODS:
            if mime in data or not wanted(mime):
                continue
            value, value_md = _split(_call_repr(obj, name, mime))
            value = _normalize(mime, value)
            if value is None:
                continue
            data[mime] = value
            if isinstance(value_md, dict) and value_md:
                md[mime] = value_md

        if _is_mpl_figure(obj):
            for mime, value in _figure_bundle(obj).items():
                if wanted(mime) and mime not in data:
                    data[mime] = value

    if "text/plain" not in data and wanted("text/plain"):
        data["text/plain"] = plain_text(obj)
    return data, md


# ---------------------------------------------------------------------------
# display() and friends
# ---------------------------------------------------------------------------

def _merge(target, extra):
    """Recursive dict merge: extra wins, sub-dicts are merged."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


def _new_id():
    return os.urandom(16).hex()


class DisplayHandle:
    """Handle on a display with an id: ``update()`` replaces what it shows,
    ``display()`` shows it again (all copies stay in sync)."""

    def __init__(self, display_id=None):
        self.display_id = display_id if display_id is not None else _new_id()

    def __repr__(self):
        return "<%s display_id=%s>" % (type(self).__name__, self.display_id)

    def display(self, obj, **kwargs):
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        update_display(obj, display_id=self.display_id, **kwargs)


# Class of the handles display() returns; IPython's own DisplayHandle once
# IPython's display module has been loaded.
_handle_class = DisplayHandle


def display(*objs, include=None, exclude=None, metadata=None, transient=None,
            display_id=None, raw=False, clear=False, **kwargs):
    """Show objects in the frontend as ``display_data`` messages.

    raw=True: each obj is already a MIME bundle dict.  display_id=True
    creates a new id; with an id a handle is returned that can update the
    output later.  clear=True clears the output area first (wait=True).
    update=True (keyword) sends ``update_display_data`` instead.
    """
    transient = dict(transient) if transient else {}
    metadata = dict(metadata) if metadata else {}
    if display_id:
        if display_id is True:
            display_id = _new_id()
        transient["display_id"] = display_id
    update = bool(kwargs.get("update", False))
    if update and "display_id" not in transient:
        raise TypeError("display_id required for update_display")
    if not objs and display_id:
        # An empty output that can be filled later through the handle.
        objs, raw = ({},), True
    if clear:
        clear_output(wait=True)
    msg_type = "update_display_data" if update else "display_data"
    for obj in objs:
        if raw:
            if not isinstance(obj, dict):
                raise TypeError("display(raw=True) expects MIME bundle dicts, "
                                "got %s" % type(obj).__name__)
            data = {}
            for mime, value in obj.items():
                if valid_mime(mime):
                    value = _normalize(mime, value)
                    if value is not None:
                        data[mime] = value
            md = dict(metadata)
        else:
            data, md = format_object(obj, include=include, exclude=exclude)
            if not data:
                continue
            if metadata:
                _merge(md, metadata)
        _kernel.publish(msg_type, {"data": data, "metadata": md,
                                   "transient": transient})
    if display_id:
        return _handle_class(display_id)
    return None


def update_display(obj, *, display_id, **kwargs):
    """Replace what the display with this id shows."""
    kwargs["update"] = True
    display(obj, display_id=display_id, **kwargs)


def clear_output(wait=False):
    """Clear the cell's output; wait=True clears when new output arrives."""
    _kernel.publish("clear_output", {"wait": bool(wait)})


def publish_display_data(data, metadata=None, source=None, *, transient=None,
                         **kwargs):
    """Publish an already formatted MIME bundle."""
    display(data, raw=True, metadata=metadata, transient=transient,
            update=bool(kwargs.get("update", False)))


def _display_mime(mime, objs, raw=False, metadata=None):
    if raw:
        for obj in objs:
            publish_display_data({mime: obj}, metadata=metadata)
    else:
        display(*objs, metadata=metadata, include=[mime])


def display_pretty(*objs, **kw):
    _display_mime("text/plain", objs, **kw)


def display_html(*objs, **kw):
    _display_mime("text/html", objs, **kw)


def display_markdown(*objs, **kw):
    _display_mime("text/markdown", objs, **kw)


def display_svg(*objs, **kw):
    _display_mime("image/svg+xml", objs, **kw)


def display_png(*objs, **kw):
    _display_mime("image/png", objs, **kw)


def display_jpeg(*objs, **kw):
    _display_mime("image/jpeg", objs, **kw)


def display_latex(*objs, **kw):
    _display_mime("text/latex", objs, **kw)


def display_json(*objs, **kw):
    _display_mime("application/json", objs, **kw)


def display_javascript(*objs, **kw):
    _display_mime("application/javascript", objs, **kw)


def display_pdf(*objs, **kw):
    _display_mime("application/pdf", objs, **kw)


def get_ipython():
    """There is no IPython shell in this kernel."""
    return None


def set_matplotlib_formats(*formats, **kwargs):
    """Choose how matplotlib figures are sent: 'png', 'retina', 'svg',
    'jpeg', 'pdf' (several allowed)."""
    chosen = []
    for fmt in formats:
        fmt = str(fmt).lower()
        fmt = {"png2x": "retina", "jpg": "jpeg"}.get(fmt, fmt)
        if fmt not in ("png", "retina", "svg", "jpeg", "pdf"):
            raise ValueError("unsupported figure format %r" % fmt)
        chosen.append(fmt)
    _figure_formats[:] = chosen or ["png"]


# ---------------------------------------------------------------------------
# IPython.display stand-ins (used when IPython is missing or shimmed)
# ---------------------------------------------------------------------------

def _is_file(path):
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def _escape(text):
    import html
    return html.escape(str(text), quote=True)


class DisplayObject:
    """Base of the stand-in display classes: holds data (or reads it from
    a file).  URLs are remembered but never fetched."""

    _binary = False

    def __init__(self, data=None, url=None, filename=None, metadata=None):
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if isinstance(data, str) and url is None and filename is None:
            if data.startswith(("http://", "https://")):
                url, data = data, None
            elif len(data) < 4096 and "\n" not in data and _is_file(data):
                filename, data = data, None
        self.data = data
        self.url = url
        self.filename = None if filename is None else os.fspath(filename)
        self.metadata = dict(metadata) if metadata else {}
        self.reload()
        self._check_data()

    def reload(self):
        """Re-read the data from the file, if one was given."""
        if self.filename is not None:
            if self._binary:
                with open(self.filename, "rb") as f:
                    self.data = f.read()
            else:
                with open(self.filename, encoding="utf-8") as f:
                    self.data = f.read()

    def _check_data(self):
        pass

    def _data_and_metadata(self):
        if self.metadata:
            return self.data, dict(self.metadata)
        return self.data

    def __repr__(self):
        return "<%s object>" % type(self).__name__


class TextDisplayObject(DisplayObject):
    """Display object whose data is text."""

    def _check_data(self):
        if self.data is not None and not isinstance(self.data, str):
            raise TypeError("%s expects text data, got %s"
                            % (type(self).__name__, type(self.data).__name__))


class Pretty(TextDisplayObject):
    """Plain text shown as is."""

    def __repr__(self):
        return self.data if self.data is not None else ""


class HTML(TextDisplayObject):
    def _repr_html_(self):
        return self._data_and_metadata()

    def __html__(self):
        return self.data


class Markdown(TextDisplayObject):
    def _repr_markdown_(self):
        return self._data_and_metadata()


class Latex(TextDisplayObject):
    def _repr_latex_(self):
        return self._data_and_metadata()


class Math(TextDisplayObject):
    """A LaTeX formula, displayed as display-style math."""

    def _repr_latex_(self):
        text = r"$\displaystyle %s$" % (self.data or "").strip("$")
        return (text, dict(self.metadata)) if self.metadata else text


class Code(TextDisplayObject):
    """Source code, shown preformatted."""

    def __init__(self, data=None, url=None, filename=None, language=None):
        self.language = language
        super().__init__(data=data, url=url, filename=filename)

    def _repr_html_(self):
        return "<pre><code>%s</code></pre>" % _escape(self.data or "")

    def _repr_markdown_(self):
        fence = "```"
        while fence in (self.data or ""):
            fence += "`"
        return "%s%s\n%s\n%s" % (fence, self.language or "",
                                 (self.data or "").rstrip("\n"), fence)

    def __repr__(self):
        return self.data or ""


class SVG(DisplayObject):
    """SVG image; any XML prolog before ``<svg`` is dropped."""

    def _check_data(self):
        if isinstance(self.data, (bytes, bytearray)):
            self.data = bytes(self.data).decode("utf-8", "replace")
        if isinstance(self.data, str):
            start = self.data.find("<svg")
            if start > 0:
                self.data = self.data[start:]

    def _repr_svg_(self):
        return self._data_and_metadata()


class JSON(DisplayObject):
    """JSON data for the frontend's JSON viewer."""

    def __init__(self, data=None, url=None, filename=None, expanded=False,
                 metadata=None, root="root", **kwargs):
        self.expanded = expanded
        self.root = root
        self.kwargs = kwargs
        super().__init__(data=data, url=url, filename=filename,
                         metadata=metadata)

    def _check_data(self):
        if isinstance(self.data, (str, bytes)):
            self.data = _kernel._json_module().loads(self.data)

    def _repr_json_(self):
        md = {"expanded": self.expanded, "root": self.root}
        md.update(self.metadata)
        return self.data, md


class Javascript(TextDisplayObject):
    """JavaScript run by the frontend, after loading optional libraries
    (``lib``) and stylesheets (``css``)."""

    def __init__(self, data=None, url=None, filename=None, lib=None, css=None):
        self.lib = [lib] if isinstance(lib, str) else list(lib or [])
        self.css = [css] if isinstance(css, str) else list(css or [])
        super().__init__(data=data, url=url, filename=filename)

    def _repr_javascript_(self):
        dumps = _kernel._json_module().dumps
        code = []
        for href in self.css:
            code.append('(function(){var l=document.createElement("link");'
                        'l.rel="stylesheet";l.type="text/css";l.href=%s;'
                        'document.head.appendChild(l);})();' % dumps(href))
        body = self.data or ""
        if self.lib:
            code.append('(function(){var libs=%s,i=0;function next(){'
                        'if(i<libs.length){var s=document.createElement("script");'
                        's.src=libs[i++];s.onload=next;document.head.appendChild(s);'
                        '}else{\n%s\n}}next();})();' % (dumps(self.lib), body))
        else:
            code.append(body)
        return "\n".join(code)


_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8", "jpeg"),
                (b"GIF87a", "gif"), (b"GIF89a", "gif"))


class Image(DisplayObject):
    """An image from bytes, a file or a URL.

    PNG/JPEG/GIF are recognised from their first bytes; data and files are
    embedded, a URL is only referenced (``<img src=...>``), never fetched.
    """

    _binary = True

    def __init__(self, data=None, url=None, filename=None, format=None,
                 embed=None, width=None, height=None, retina=False,
                 unconfined=False, metadata=None, alt=None):
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if isinstance(data, str) and url is None and filename is None:
            if _is_file(data):
                filename, data = data, None
            else:
                url, data = data, None
        if embed is None:
            embed = url is None
        if embed and data is None and filename is None:
            raise ValueError("an image from a URL cannot be embedded: the "
                             "kernel does not download it; pass embed=False, "
                             "data or filename")
        self.embed = embed
        self.width = width
        self.height = height
        self.retina = retina
        self.unconfined = unconfined
        self.alt = alt
        super().__init__(data=data, url=url, filename=filename,
                         metadata=metadata)
        self.format = self._guess_format(format)
        if retina and self.format == "png" and isinstance(self.data, bytes):
            if len(self.data) >= 24 and self.width is None and self.height is None:
                self.width = int.from_bytes(self.data[16:20], "big") // 2
                self.height = int.from_bytes(self.data[20:24], "big") // 2

    def _guess_format(self, fmt):
        if fmt:
            fmt = str(fmt).lower()
        elif isinstance(self.data, (bytes, bytearray)):
            for magic, name in _IMAGE_MAGIC:
                if bytes(self.data[:len(magic)]) == magic:
                    fmt = name
                    break
        if not fmt:
            source = self.filename or self.url or ""
            ext = os.path.splitext(source.split("?", 1)[0])[1][1:].lower()
            fmt = ext or "png"
        return "jpeg" if fmt == "jpg" else fmt

    def _image_metadata(self):
        md = {}
        if self.width:
            md["width"] = self.width
        if self.height:
            md["height"] = self.height
        if self.unconfined:
            md["unconfined"] = self.unconfined
        if self.alt:
            md["alt"] = self.alt
        md.update(self.metadata)
        return md

    def _img_tag(self):
        attrs = ['src="%s"' % _escape(self.url)]
        for name in ("width", "height", "alt"):
            value = getattr(self, name)
            if value:
                attrs.append('%s="%s"' % (name, _escape(value)))
        return "<img %s/>" % " ".join(attrs)

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not self.embed:
            return {"text/html": self._img_tag()}, {}
        mime = "image/" + self.format
        md = self._image_metadata()
        return {mime: self.data}, ({mime: md} if md else {})

    def _repr_png_(self):
        if self.embed and self.format == "png":
            md = self._image_metadata()
            return (self.data, md) if md else self.data
        return None

    def _repr_jpeg_(self):
        if self.embed and self.format == "jpeg":
            md = self._image_metadata()
            return (self.data, md) if md else self.data
        return None


class IFrame:
    """An <iframe> pointing at src."""

    def __init__(self, src, width, height, extras=None, **kwargs):
        self.src = src
        self.width = width
        self.height = height
        self.extras = list(extras or [])
        self.params = kwargs

    def _repr_html_(self):
        src = self.src
        if self.params:
            from urllib.parse import urlencode
            src += "?" + urlencode(self.params)
        return ('<iframe width="%s" height="%s" src="%s" frameborder="0" '
                'allowfullscreen %s></iframe>'
                % (_escape(self.width), _escape(self.height), _escape(src),
                   " ".join(self.extras)))


class ProgressBar:
    """A progress bar that updates in place; iterate over it or set
    ``.progress``."""

    def __init__(self, total):
        self.total = total
        self._progress = 0
        self.html_width = "60ex"
        self.text_width = 60
        self._display_id = _new_id()

    def __repr__(self):
        fraction = self._progress / self.total if self.total else 1.0
        filled = max(0, min(self.text_width, int(round(fraction * self.text_width))))
        return "[%s%s] %s/%s" % ("#" * filled, " " * (self.text_width - filled),
                                 self._progress, self.total)

    def _repr_html_(self):
        return "<progress style='width:%s' max='%s' value='%s'></progress>" % (
            self.html_width, self.total, self._progress)

    def display(self):
        display(self, display_id=self._display_id)

    def update(self):
        display(self, display_id=self._display_id, update=True)

    @property
    def progress(self):
        return self._progress

    @progress.setter
    def progress(self, value):
        self._progress = value
        self.update()

    def __iter__(self):
        self.display()
        self._progress = -1
        return self

    def __next__(self):
        self.progress += 1
        if self.progress < self.total:
            return self.progress
        raise StopIteration()


_SHIM_EXPORTS = (
    "display", "clear_output", "update_display", "publish_display_data",
    "DisplayHandle", "display_pretty", "display_html", "display_markdown",
    "display_svg", "display_png", "display_jpeg", "display_latex",
    "display_json", "display_javascript", "display_pdf",
    "DisplayObject", "TextDisplayObject", "Pretty", "HTML", "Markdown",
    "Latex", "Math", "Code", "SVG", "JSON", "Javascript", "Image", "IFrame",
    "ProgressBar", "set_matplotlib_formats",
)

SHIM_VERSION = "0.0.0+sandcell.shim"


def fill_shim_module(module):
    """Populate one of our stand-in IPython modules."""
    name = module.__name__
    namespace = globals()
    module.__doc__ = "Stand-in for %s provided by the sandcell kernel." % name
    if name == "IPython":
        module.get_ipython = get_ipython
        module.__version__ = SHIM_VERSION
        module.version_info = (0, 0, 0, "sandcell-shim")
    elif name == "IPython.core.getipython":
        module.get_ipython = get_ipython
    elif name != "IPython.core":
        for export in _SHIM_EXPORTS:
            setattr(module, export, namespace[export])
        module.__all__ = list(_SHIM_EXPORTS)


# ---------------------------------------------------------------------------
# Real IPython: make its display functions publish through this kernel
# ---------------------------------------------------------------------------

_IPYTHON_FUNCTIONS = ("display", "clear_output", "update_display",
                      "publish_display_data")


def patch_ipython_module(module):
    """Called right after IPython.core.display_functions, IPython.core.display
    or IPython.display executed.

    IPython's display() needs a running InteractiveShell; without one it
    just prints.  We replace the module-level functions with ours.  Other
    IPython code looks them up at call time (``display_functions.display``
    in core/display.py, the global ``update_display`` in
    ``DisplayHandle.update``), so everything routes here.  IPython's
    display classes (HTML, Image, ...) are formatted by format_object via
    their _repr_*_ methods.
    """
    global _handle_class
    namespace = vars(module)
    for name in _IPYTHON_FUNCTIONS:
        if name in namespace:
            namespace[name] = globals()[name]
    handle = namespace.get("DisplayHandle")
    if isinstance(handle, type) and module.__name__ == "IPython.core.display_functions":
        _handle_class = handle


# ---------------------------------------------------------------------------
# matplotlib
# ---------------------------------------------------------------------------

def _pyplot_inline(pyplot):
    try:
        return str(pyplot.get_backend()).lower() == "agg"
    except Exception:
        return False


def flush_figures():
    """Display every open pyplot figure and close them (what the inline
    backend does after each cell).  Only with the non-GUI Agg backend."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None or not _pyplot_inline(pyplot):
        return
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return
    managers = helpers.Gcf.get_all_fig_managers()
    if not managers:
        return
    try:
        for manager in managers:
            display(manager.canvas.figure)
    finally:
        pyplot.close("all")


def patch_pyplot(module):
    """plt.show() displays the figures instead of warning that Agg cannot
    show them."""
    original = getattr(module, "show", None)
    if original is None or getattr(original, "_sandcell", False):
        return

    def show(*args, **kwargs):
        if _pyplot_inline(module):
            flush_figures()
            return None
        return original(*args, **kwargs)

    show._sandcell = True
    show.__doc__ = original.__doc__
    show.__wrapped__ = original
    module.show = show
