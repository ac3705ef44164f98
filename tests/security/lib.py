"""Framework of the security corpus: the test environment (gateway, planted secrets, sleepers,
listeners), kernels driven over the gateway's WebSocket, outside-the-kernel observations of
processes, files, sockets and namespaces, and the case registry.

Every check that decides a case is made from *outside* the kernel (files, listeners, /proc of
the outer namespaces); what the attack code prints is used only to tell whether it reached the
operating system (the TRY/OK/ERR/RET/EXC lines of prelude.py) and for the report.
"""

import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "gateway_it"))

import harness  # noqa: E402  (tests/gateway_it/harness.py: Server, KernelWS)

# The harness gives the gateway PR_SET_PDEATHSIG, which fires when the *thread* that started it
# ends: a gateway restarted by a worker thread would be stopped when that worker finishes. The
# outer net's pid namespace already guarantees that nothing outlives the run.
harness._die_with_parent = lambda: None

from prelude import PRELUDE  # noqa: E402

PY = "/usr/bin/python3"
PROFILES = ("strict", "moderate", "permissive")


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------

class CaseFail(Exception):
    """kind: 'breach' (a safety check saw the attack succeed), 'inconclusive' (the attack never
    reached the OS, so the case proves nothing), 'error' (the test itself could not run the case:
    no kernel, timeout of the harness...)."""

    def __init__(self, kind, msg):
        super().__init__(msg)
        self.kind = kind
        self.msg = msg


class CaseSkip(Exception):
    pass


def breach(msg):
    raise CaseFail("breach", msg)


def inconclusive(msg):
    raise CaseFail("inconclusive", msg)


def error(msg):
    raise CaseFail("error", msg)


TRY_RE = re.compile(r"^(TRY|OK|ERR|RET|EXC) ([^\s:]+)(?:: (.*))?$")

# What an EXC line says when the OS, not Python, refused the step: dlopen of an extension
# failing because the kernel refused an executable mapping (strict's seccomp rule), or a
# PermissionError text inside an ImportError.
OS_REFUSAL = ("failed to map segment", "Operation not permitted", "Permission denied")


def os_refused(text):
    return any(x in (text or "") for x in OS_REFUSAL)


class Outcome:
    """What one execute_request produced, as the client saw it."""

    def __init__(self, msg_id):
        self.msg_id = msg_id
        self.msgs = []          # messages parented to the request (but execute_input)
        self.reply = None       # execute_reply content
        self.idle = False
        self.died = None        # 'restarting' / 'dead' status seen while waiting
        self.closed = None
        self.timed_out = False
        self.elapsed = 0.0
        self.other = []

    @property
    def stdout(self):
        return "".join(m.content.get("text", "") for m in self.msgs
                       if m.msg_type == "stream" and m.content.get("name") == "stdout")

    @property
    def stderr(self):
        return "".join(m.content.get("text", "") for m in self.msgs
                       if m.msg_type == "stream" and m.content.get("name") == "stderr")

    @property
    def errors(self):
        out = [m.content for m in self.msgs if m.msg_type == "error"]
        if self.reply and self.reply.get("status") == "error":
            out.append(self.reply)
        return out

    @property
    def result_text(self):
        for m in self.msgs:
            if m.msg_type == "execute_result":
                return m.content.get("data", {}).get("text/plain")
        return None

    def alltext(self):
        """Everything the kernel sent for this request, as text (for secret searches)."""
        parts = []
        for m in self.msgs:
            parts.append(json.dumps(m.content, ensure_ascii=False))
        if self.reply:
            parts.append(json.dumps(self.reply, ensure_ascii=False))
        return "\n".join(parts)

    def error_text(self):
        return " | ".join("%s: %s" % (e.get("ename"), e.get("evalue")) for e in self.errors)

    def limit(self):
        """The gateway's structured limit report (sandcell_limit), or None."""
        for e in self.errors:
            if e.get("sandcell_limit"):
                return e
        return None

    def tries(self):
        """{label: (status, text)} of the attack's TRY/OK/ERR/RET/EXC lines (last wins)."""
        res = {}
        for line in self.stdout.splitlines():
            m = TRY_RE.match(line.strip())
            if m:
                st, label, text = m.group(1), m.group(2), m.group(3) or ""
                if st == "TRY" and label in res:
                    continue
                res[label] = (st, text)
        return res

    def summary(self, n=300):
        bits = []
        if self.died:
            bits.append("kernel %s" % self.died)
        if self.timed_out:
            bits.append("no reply (timeout)")
        if self.errors:
            bits.append("error " + self.error_text()[:n])
        out = self.stdout.strip()
        if out:
            bits.append("stdout %r" % (out[-n:],))
        return "; ".join(bits) or "no output"


# ---------------------------------------------------------------------------------------------
# /proc observations (outer namespaces)
# ---------------------------------------------------------------------------------------------

def read_text(path, default=None, binary=False):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data if binary else data.decode(errors="replace")
    except OSError:
        return default


def proc_stat(pid):
    raw = read_text("/proc/%d/stat" % pid)
    if not raw:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return {"state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2]),
            "starttime": int(rest[19])}


def proc_status(pid):
    raw = read_text("/proc/%d/status" % pid)
    if not raw:
        return None
    d = {}
    for line in raw.splitlines():
        k, _, v = line.partition(":")
        d[k.strip()] = v.strip()
    return d


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st["state"] not in ("Z", "X", "x")


def live_problem(pid, what):
    """None if pid lives, is not stopped and not traced; else a description."""
    st = proc_stat(pid)
    if st is None:
        return "%s (pid %d) is gone" % (what, pid)
    if st["state"] in ("Z", "X", "x"):
        return "%s (pid %d) died (state %s)" % (what, pid, st["state"])
    if st["state"] in ("T", "t"):
        return "%s (pid %d) is stopped (state %s)" % (what, pid, st["state"])
    status = proc_status(pid) or {}
    if status.get("TracerPid", "0") != "0":
        return "%s (pid %d) is being ptraced by pid %s" % (what, pid, status["TracerPid"])
    return None


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def cmdline(pid):
    raw = read_text("/proc/%d/cmdline" % pid, binary=True)
    return raw.split(b"\0") if raw else []


def children_map():
    kids = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            kids.setdefault(st["ppid"], []).append(pid)
    return kids


def descendants(pid, kids=None):
    kids = kids if kids is not None else children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def ns_id(pid, kind):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def fd_targets(pid):
    out = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            pass
    return out


def socket_inodes(pid):
    out = set()
    for t in fd_targets(pid).values():
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            out.add(int(m.group(1)))
    return out


def net_tables(pid):
    """{inode: (table, line)} for every socket of pid's network namespace."""
    res = {}
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix", "packet", "netlink",
                  "icmp", "icmp6", "udplite", "udplite6"):
        raw = read_text("/proc/%d/net/%s" % (pid, table))
        if not raw:
            continue
        lines = raw.splitlines()[1:]
        for line in lines:
            f = line.split()
            ino = None
            try:
                if table == "unix":
                    ino = int(f[6])
                elif table == "packet":
                    ino = int(f[8])
                elif table == "netlink":
                    ino = int(f[9])
                else:
                    ino = int(f[9])
            except (IndexError, ValueError):
                continue
            res[ino] = (table, line)
    return res


def socket_inventory(pid):
    """{inode: table} of the sockets pid holds: the table of pid's network namespace, else
    'outer-<table>' when the socket belongs to the test's (outer) namespace, else 'unknown'."""
    tables = net_tables(pid)
    out = {}
    outer = None
    for ino in socket_inodes(pid):
        if ino in tables:
            out[ino] = tables[ino][0]
            continue
        if outer is None:
            outer = net_tables(os.getpid())
        out[ino] = ("outer-" + outer[ino][0]) if ino in outer else "unknown"
    return out


def unix_connected(pid, path):
    """Sockets in pid's net namespace that are connected (state 03) and carry path (an accepted
    connection on a listener shows the listener's path)."""
    raw = read_text("/proc/%d/net/unix" % pid) or ""
    n = 0
    for line in raw.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[7] == path and f[5] == "03":
            n += 1
    return n


def mountinfo(pid):
    out = []
    for line in (read_text("/proc/%d/mountinfo" % pid) or "").splitlines():
        pre, _, post = line.partition(" - ")
        a = pre.split()
        b = post.split()
        if len(a) >= 6 and len(b) >= 2:
            out.append({"mount_point": a[4], "root": a[3], "opts": a[5], "fstype": b[0],
                        "source": b[1], "super": b[2] if len(b) > 2 else ""})
    return out


def limits(pid):
    out = {}
    for line in (read_text("/proc/%d/limits" % pid) or "").splitlines()[1:]:
        m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def sha(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return "missing (%s)" % e.strerror


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def hostname():
    return socket.gethostname()


def lo_addresses():
    r = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=10)
    return sorted(line.split()[3] for line in r.stdout.decode().splitlines() if len(line.split()) > 3)


def proc_keys():
    return read_text("/proc/keys") or ""


# ---------------------------------------------------------------------------------------------
# Listeners the test opens (the attacks must not reach them)
# ---------------------------------------------------------------------------------------------

class Listener:
    """kind: tcp4 tcp6 udp4 udp6 unix unixdgram abstract icmp (raw, root only)."""

    def __init__(self, kind, path=None, tag=None):
        self.kind = kind
        self.tag = tag
        self.count = 0
        self.data = b""
        self.path = path
        if kind in ("tcp4", "udp4"):
            fam, addr = socket.AF_INET, ("127.0.0.1", 0)
        elif kind in ("tcp6", "udp6"):
            fam, addr = socket.AF_INET6, ("::1", 0)
        elif kind in ("unix", "unixdgram"):
            fam, addr = socket.AF_UNIX, path
        elif kind == "abstract":
            fam = socket.AF_UNIX
            addr = "\0scsec-" + (tag or secrets.token_hex(6))
        elif kind == "icmp":
            fam = socket.AF_INET
        else:
            raise ValueError(kind)
        if kind == "icmp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            self.sock.setblocking(False)
            self.addr = None
            return
        stype = socket.SOCK_DGRAM if kind in ("udp4", "udp6", "unixdgram") else \
            socket.SOCK_STREAM
        self.sock = socket.socket(fam, stype)
        if fam != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if kind in ("unix", "unixdgram") and os.path.exists(path):
            os.unlink(path)
        self.sock.bind(addr)
        if kind in ("unix", "unixdgram"):
            os.chmod(path, 0o777)
        if stype == socket.SOCK_STREAM:
            self.sock.listen(64)
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        if kind == "abstract":
            self.addr = addr

    def attack_addr(self):
        """The address as Python source for the attack code."""
        if self.kind in ("tcp4", "udp4", "tcp6", "udp6"):
            return repr((self.addr[0], self.addr[1]))
        if self.kind == "abstract":
            return repr(self.addr.encode() if isinstance(self.addr, str) else self.addr)
        return repr(self.addr)

    def family(self):
        return {"tcp4": 2, "udp4": 2, "tcp6": 10, "udp6": 10, "unix": 1, "unixdgram": 1,
                "abstract": 1}[self.kind]

    def stype(self):
        return 2 if self.kind in ("udp4", "udp6", "unixdgram") else 1

    def poll(self):
        """Counts what arrived since the last poll; returns the total."""
        while True:
            try:
                if self.kind in ("tcp4", "tcp6", "unix", "abstract"):
                    c, _ = self.sock.accept()
                    c.setblocking(False)
                    try:
                        self.data += c.recv(4096)
                    except OSError:
                        pass
                    c.close()
                    self.count += 1
                elif self.kind == "icmp":
                    d = self.sock.recv(65536)
                    if self.tag and self.tag.encode() in d:
                        self.count += 1
                        self.data += d
                else:
                    d, _ = self.sock.recvfrom(65536)
                    self.data += d
                    self.count += 1
            except (BlockingIOError, InterruptedError):
                return self.count
            except OSError:
                return self.count

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.kind in ("unix", "unixdgram") and self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------

class Kernel:
    """One kernel started through the gateway's REST API and driven over its WebSocket."""

    def __init__(self, ctx, name, ready_timeout=60):
        self.ctx = ctx
        self.name = name
        srv = ctx.server
        r = srv.request("POST", "/api/kernels", body={"name": name}, timeout=90)
        if r.status != 201:
            error("POST /api/kernels {name: %s}: HTTP %d %s" % (name, r.status,
                                                                r.body[:300].decode(errors="replace")))
        self.id = r.json()["id"]
        self.ws = None
        self.deleted = False
        try:
            self.ws = srv.connect(self.id, timeout=30)
            self.ws.wait_ready(ready_timeout)
        except Exception as e:
            self.delete()
            error("kernel %s (%s) did not become ready: %s" % (self.id[:8], name, e))
        self._pids_seen = set(self.pids())

    @property
    def conn_file(self):
        return os.path.join(self.ctx.server.runtime_dir, "kernel-%s.json" % self.id)

    def key(self):
        try:
            with open(self.conn_file) as f:
                return json.load(f).get("key")
        except (OSError, ValueError):
            return None

    def endpoints(self):
        """The kernel's ipc endpoint paths (runtime_dir/<id8>-N)."""
        try:
            with open(self.conn_file) as f:
                c = json.load(f)
        except (OSError, ValueError):
            return []
        if c.get("transport") != "ipc":
            return []
        return ["%s-%d" % (c["ip"], c[k]) for k in
                ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port") if k in c]

    def pids(self):
        """Outer pids of every process of this kernel (the supervisor, the sandboxed kernel and
        whatever they forked), found by the connection file on their command line."""
        needle = ("kernel-%s.json" % self.id).encode()
        found = [p for p in all_pids() if any(needle in a for a in cmdline(p))]
        kids = children_map()
        out = set(found)
        for p in found:
            out.update(descendants(p, kids))
        if hasattr(self, "_pids_seen"):
            self._pids_seen.update(out)
        return sorted(out)

    def inner_pid(self):
        """The process that runs user code: the deepest process of the kernel whose pid
        namespace differs from ours, else the deepest one."""
        pids = self.pids()
        if not pids:
            return None
        me = ns_id(os.getpid(), "pid")
        other = [p for p in pids if ns_id(p, "pid") != me]
        cands = other or pids

        def depth(p):
            d = 0
            while p > 1 and d < 50:
                st = proc_stat(p)
                if not st:
                    break
                p = st["ppid"]
                d += 1
            return d
        # the interpreter: prefer one whose cmdline is the kernel's and that is deepest
        cands.sort(key=lambda p: (-depth(p), p))
        return cands[0]

    def run(self, code, timeout=30, settle=8.0, prelude=True):
        """Executes code (with the attack prelude); returns an Outcome. Never raises for what the
        kernel does (death, silence): those are in the Outcome."""
        ws = self.ws
        out = Outcome(None)
        t0 = time.monotonic()
        src = (PRELUDE + "\n" + code) if prelude else code
        try:
            mid = ws.execute(src, store_history=False)
        except Exception as e:
            out.closed = "send failed: %s" % e
            return out
        out.msg_id = mid
        deadline = t0 + timeout
        died_at = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                out.timed_out = True
                break
            if died_at is not None and now > died_at + settle:
                break
            try:
                m = ws._read(min(0.5, deadline - now))
            except harness.WSTimeout:
                continue
            except harness.WSClosed as e:
                out.closed = str(e)
                break
            if m.parent_id == mid:
                if m.msg_type == "execute_input":
                    continue
                out.msgs.append(m)
                if m.channel == "iopub" and m.msg_type == "status" and \
                        m.content.get("execution_state") == "idle":
                    out.idle = True
                if m.channel == "shell" and m.msg_type == "execute_reply":
                    out.reply = m.content
            elif m.channel == "iopub" and m.msg_type == "status" and \
                    m.content.get("execution_state") in ("restarting", "dead"):
                if out.died is None:
                    out.died = m.content.get("execution_state")
                    died_at = time.monotonic()
            else:
                out.other.append(m)
            if out.reply is not None and (out.idle or out.died):
                break
        out.elapsed = time.monotonic() - t0
        if out.died is None and out.limit() and out.limit().get("ename") == "KernelDied":
            out.died = "died"
        return out

    def ready(self, timeout=60):
        """Waits until the kernel answers again (after a restart)."""
        self.ws.pending = []
        return self.ws.wait_ready(timeout)

    def alive_after(self, timeout=60):
        """Runs 1+1 in this kernel (after waiting for it to answer); returns None or a problem."""
        try:
            self.ready(timeout)
        except Exception as e:
            return "kernel %s no longer answers: %s" % (self.id[:8], e)
        o = self.run("1+1", timeout=30, prelude=False)
        if o.result_text != "2":
            return "kernel %s: 1+1 gave %s" % (self.id[:8], o.summary())
        return None

    def delete(self, wait=10.0):
        """Deletes the kernel; returns the outer pids of its processes still alive after wait
        seconds."""
        if self.deleted:
            return []
        self.deleted = True
        try:
            self.pids()
        except Exception:
            pass
        if self.ws is not None:
            self.ws.close()
        try:
            self.ctx.server.request("DELETE", "/api/kernels/" + self.id, timeout=60)
        except Exception:
            pass
        deadline = time.monotonic() + wait
        left = []
        while time.monotonic() < deadline:
            left = [p for p in getattr(self, "_pids_seen", ()) if alive(p)]
            if not left:
                break
            time.sleep(0.05)
        return left


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

class Case:
    def __init__(self, name, group, fn, profiles, control, exclusive, doc, timeout, needs):
        self.name = name
        self.group = group
        self.fn = fn
        self.profiles = profiles
        self.control = control
        self.exclusive = exclusive
        self.doc = doc
        self.timeout = timeout
        self.needs = needs


CASES = []


def case(name, group, profiles=("strict", "moderate"), control=False, exclusive=False,
         timeout=60, needs=()):
    def deco(fn):
        doc = " ".join((fn.__doc__ or "").split())
        CASES.append(Case(name, group, fn, tuple(profiles), control, exclusive, doc, timeout,
                          needs))
        return fn
    return deco


class CaseRun:
    """One case under one profile: the handle the case function gets (called t)."""

    def __init__(self, ctx, c, profile):
        self.ctx = ctx
        self.case = c
        self.profile = profile
        self.id = "%s[%s]" % (c.name, profile)
        self.kernels = []
        self.listeners = []
        self.sleepers = []
        self.markers = []
        self.case_secrets = {}
        self.notes = []
        self.cleanups = []
        self.outcomes = []

    # -- resources ----------------------------------------------------------------------------

    @property
    def kernel_name(self):
        return self.ctx.kernel_name(self.profile)

    def limit(self, key):
        return self.ctx.profile_limits(self.profile).get(key)

    def kernel(self, name=None):
        k = Kernel(self.ctx, name or self.kernel_name)
        self.kernels.append(k)
        return k

    def listener(self, kind, path=None):
        tag = "scpwn-%s-%s-%s" % (self.case.name, self.profile, secrets.token_hex(3))
        if kind in ("unix", "unixdgram") and path is None:
            path = os.path.join(self.ctx.scratch, "l-%s" % secrets.token_hex(4))
        li = Listener(kind, path=path, tag=tag)
        self.listeners.append(li)
        return li

    def sleeper(self):
        pid = self.ctx.start_sleeper()
        self.sleepers.append(pid)
        return pid

    def marker(self, directory=None, name=None):
        d = directory or self.ctx.marker_dir
        p = os.path.join(d, name or "scpwn-%s-%s-%d" % (self.case.name, self.profile,
                                                         len(self.markers)))
        self.markers.append(p)
        return p

    def secret(self, name):
        v = "SCSEC-%s-%s" % (name.upper(), secrets.token_hex(12))
        self.case_secrets[name] = v
        return v

    def note(self, s):
        self.notes.append(s)

    def on_cleanup(self, fn):
        self.cleanups.append(fn)

    # -- running --------------------------------------------------------------------------------

    def run(self, k, code, timeout=30, **kw):
        o = k.run(code, timeout=timeout, **kw)
        self.outcomes.append(o)
        return o

    # -- checks (raise CaseFail) ------------------------------------------------------------------

    def check_no_secrets(self, o, extra=()):
        text = o.alltext() if isinstance(o, Outcome) else str(o)
        allsec = dict(self.ctx.secrets)
        allsec.update(self.case_secrets)
        for name, v in list(allsec.items()) + [(x, x) for x in extra]:
            if v and v in text:
                breach("the kernel's output contains the secret %s planted outside the sandbox"
                       % name)

    def check_absent(self, *paths):
        for p in paths:
            if os.path.lexists(p):
                breach("%s exists on the host side (written from inside the kernel)" % p)

    def check_markers(self):
        self.check_absent(*self.markers)

    def check_no_arrivals(self, *listeners):
        time.sleep(0.2)
        for li in listeners or self.listeners:
            n = li.poll()
            if n:
                breach("%d connection(s)/datagram(s) reached the test's %s listener %s"
                       % (n, li.kind, li.addr))

    def check_alive(self, pid, what):
        p = live_problem(pid, what)
        if p:
            breach(p)

    def check_reached(self, o, *labels, any_of=False):
        """The wire: the attack must have reached the OS call (OK/ERR/RET), not failed before."""
        t = o.tries()
        missing = []
        for lb in labels:
            st = t.get(lb)
            if st is None:
                missing.append("%s (never tried)" % lb)
            elif st[0] == "EXC" and os_refused(st[1]):
                continue
            elif st[0] in ("TRY", "EXC"):
                missing.append("%s (%s %s)" % (lb, st[0], st[1][:160]))
        if missing and (not any_of or len(missing) == len(labels)):
            if o.died or o.timed_out:
                # the kernel died or hung at the attempt: it was reached
                return
            inconclusive("the attack did not reach the OS for: %s; %s" % (
                ", ".join(missing), o.summary(200)))

    def errnos(self, o):
        """{label: errno name or 'OK' or ret} of the attempts, for notes."""
        res = {}
        for lb, (st, text) in o.tries().items():
            if st == "ERR":
                res[lb] = text.split()[0] if text else "?"
            elif st == "EXC" and os_refused(text):
                res[lb] = "OS-refused(%s)" % next(x for x in OS_REFUSAL if x in text)
            elif st == "RET":
                m = re.search(r"ret=(-?\d+) errno=(\S+)", text)
                res[lb] = (m.group(2) if m and m.group(1) == "-1" else "ret=%s" % (
                    m.group(1) if m else "?"))
            else:
                res[lb] = st
        return res

    def note_errnos(self, o, *labels):
        e = self.errnos(o)
        items = [(lb, e.get(lb, "-")) for lb in (labels or sorted(e))]
        if items:
            self.note(" ".join("%s=%s" % kv for kv in items))

    def check_denied(self, o, *labels, allowed=("EPERM",)):
        """Raw syscalls (RET lines) must have failed with one of allowed errnos."""
        t = o.tries()
        bad = []
        for lb in labels:
            st = t.get(lb)
            if st is not None and st[0] == "EXC" and os_refused(st[1]):
                continue  # the OS refused an earlier step (e.g. loading native code)
            if st is None or st[0] in ("TRY", "EXC"):
                if o.died:
                    bad.append("%s: the kernel died at it (%s)" % (lb, o.summary(120)))
                    continue
                inconclusive("syscall %s not reached: %s" % (lb, st and st[1][:200]))
            if st[0] == "RET":
                m = re.search(r"ret=(-?\d+) errno=(\S+)", st[1])
                if not m:
                    bad.append("%s: %s" % (lb, st[1]))
                elif m.group(1) != "-1":
                    bad.append("%s succeeded (ret=%s)" % (lb, m.group(1)))
                elif m.group(2) not in allowed:
                    bad.append("%s failed with %s, not %s" % (lb, m.group(2), "/".join(allowed)))
            elif st[0] == "OK":
                bad.append("%s succeeded: %s" % (lb, st[1][:120]))
            elif st[0] == "ERR":
                en = st[1].split()[0] if st[1] else "?"
                if en not in allowed:
                    bad.append("%s failed with %s, not %s" % (lb, en, "/".join(allowed)))
        if bad:
            breach("; ".join(bad))

    def check_kernel_ok(self, k, what="the attacked kernel"):
        p = k.alive_after()
        if p:
            breach("%s: %s" % (what, p))

    # -- cleanup ----------------------------------------------------------------------------------

    def cleanup(self):
        problems = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                problems.append("cleanup: %s" % e)
        for k in self.kernels:
            left = k.delete()
            if left:
                problems.append("processes of kernel %s still alive 10 s after DELETE: %s"
                                % (k.id[:8], ", ".join("%d (%s)" % (p, b" ".join(cmdline(p))[:80]
                                                                   .decode(errors="replace"))
                                                       for p in left)))
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        for li in self.listeners:
            li.close()
        for pid in self.sleepers:
            self.ctx.stop_sleeper(pid)
        for m in self.markers:
            try:
                if os.path.isdir(m) and not os.path.islink(m):
                    os.rmdir(m)
                else:
                    os.unlink(m)
            except OSError:
                pass
        return problems


def fmt_exc():
    return traceback.format_exc(limit=6)
