#!/usr/bin/python3
"""The security corpus runner: every attack in cases.py, run as user code through a real
gateway (build/gateway/sandcell) in sandboxed kernels, inside an outer safety net.

Outer safety net: this script re-executes itself under
    unshare --pid --fork --mount-proc --net --mount --uts --ipc --propagation private
and, as pid 1 of that namespace, mounts fresh tmpfs on /tmp, /root, /run, /var/tmp and
/dev/shm, overlays /etc and the Python directories (writes land in a tmpfs upper layer the test
watches), makes every other mount read-only (/usr, /lib*, /bin, /sbin, /boot, /opt, /work and
the source tree, /sys) except the build directory, a scratch directory and
/sys/fs/cgroup, and brings loopback up. A sandbox bug can then not kill, write or connect
outside the test; pid 1 outlives kill(-1, SIGKILL) and reports the case that sent it.

Usage (as root; Debian's /usr/bin/python3):
    tests/security/run.py                       the corpus (strict, moderate, permissive)
    tests/security/run.py --control             self-check: representative cases against an
                                                UNSANDBOXED kernel must all be caught
    tests/security/run.py --list                the cases, one line each
    options: --only REGEX  --profiles strict,moderate  --workers N  --kernel NAME  -v

Environment: SANDCELL_BUILDDIR (default <repo>/build), SCSEC_PROBE (the syscall probe
binary, default <builddir>/tests/security/syscall_probe).
Last line: `security: N passed, N failed, N skipped`; exit status 1 on any failure.
"""

import argparse
import ctypes
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
OUTER_MARK = "SCSEC_OUTER_NET"
SCRATCH = "/tmp/scsec"
PROGRESS = os.path.join(SCRATCH, "progress.jsonl")


def builddir():
    return os.path.abspath(os.environ.get("SANDCELL_BUILDDIR") or os.path.join(REPO, "build"))


def say(*a):
    print(*a, flush=True)


# =============================================================================================
# The outer safety net
# =============================================================================================

def reexec_in_outer_net():
    """Replaces this process with `unshare ... python3 run.py ARGS` (never returns)."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    base = [unshare, "--pid", "--fork", "--mount-proc", "--net", "--mount", "--uts", "--ipc",
            "--propagation", "private", "--kill-child=SIGKILL"]
    if os.geteuid() != 0:
        base[1:1] = ["--user", "--map-root-user"]
    argv = base + [PY, os.path.abspath(__file__)] + sys.argv[1:]
    env = dict(os.environ)
    env[OUTER_MARK] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    try:
        os.execve(unshare, argv, env)
    except OSError as e:
        say("security: cannot build the outer safety net (%s: %s); refusing to run attacks "
            "outside it" % (unshare, e))
        say("security: 0 passed, 1 failed, 0 skipped")
        sys.exit(1)


def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                r.stdout.decode(errors="replace").strip()))
    return r.stdout.decode(errors="replace")


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
SYS_mount_setattr = 442


def mount_setattr(path, set_=0, clr=0, recursive=True):
    attr = (ctypes.c_uint64 * 4)(set_, clr, 0, 0)
    r = _libc.syscall(ctypes.c_long(SYS_mount_setattr), ctypes.c_int(AT_FDCWD),
                      ctypes.c_char_p(path.encode()),
                      ctypes.c_uint(AT_RECURSIVE if recursive else 0),
                      ctypes.byref(attr), ctypes.c_size_t(32))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount_setattr(%s): %s" % (path, os.strerror(e)))


def clone_tree(path):
    """open_tree(OPEN_TREE_CLONE | AT_RECURSIVE): a detached copy of the mounts at path."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(428, -100, path.encode(), 1 | 0x8000 | os.O_CLOEXEC)  # AT_FDCWD
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, "open_tree(%s): %s" % (path, os.strerror(e)))
    return fd


def attach_tree(fd, path):
    """move_mount(MOVE_MOUNT_F_EMPTY_PATH): puts a detached tree at path."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(429, fd, b"", -100, path.encode(), 0x4) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "move_mount(%s): %s" % (path, os.strerror(e)))


OVERLAID = ["/etc", "/usr/lib/python3/dist-packages", "/usr/local/lib/python3.11/dist-packages",
            "/usr/lib/python3.11"]
TMPFS = [("/tmp", "1777", "4g"), ("/root", "0755", "64m"), ("/run", "0755", "64m"),
         ("/var/tmp", "1777", "256m"), ("/dev/shm", "1777", "1g")]


def setup_outer_net(bdir):
    """Runs as pid 1 of the new namespaces: the mounts and loopback. Returns a description."""
    if os.getpid() != 1:
        raise RuntimeError("not pid 1 of a new pid namespace (pid %d)" % os.getpid())
    devs = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
    if devs != ["lo"]:
        raise RuntimeError("the network namespace is not new: interfaces %r" % devs)
    sh("mount", "--make-rprivate", "/")
    # The source tree and the build may live under a directory the net covers with a fresh
    # tmpfs (a CI clone in /tmp): take a copy of their mounts first, put it back on top.
    covered = [d for d, _, _ in TMPFS if os.path.isdir(d)]
    keep = []
    for path in sorted({os.path.realpath(REPO), os.path.realpath(bdir)}):
        if any(path == d or path.startswith(d + "/") for d in covered) and \
                not any(path.startswith(k + "/") for k, _ in keep):
            keep.append((path, clone_tree(path)))
    for d, mode, size in TMPFS:
        if os.path.isdir(d):
            sh("mount", "-t", "tmpfs", "-o", "mode=%s,size=%s" % (mode, size), "scsec-" +
               d.strip("/").replace("/", "-"), d)
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        attach_tree(fd, path)
        os.close(fd)
    os.makedirs(SCRATCH, exist_ok=True)
    overlays = []
    for i, d in enumerate(OVERLAID):
        if not os.path.isdir(d):
            continue
        up, wk = "/tmp/.scsec-ovl/%d/u" % i, "/tmp/.scsec-ovl/%d/w" % i
        os.makedirs(up)
        os.makedirs(wk)
        sh("mount", "-t", "overlay", "scsec-ovl", "-o",
           "lowerdir=%s,upperdir=%s,workdir=%s" % (d, up, wk), d)
        overlays.append((d, up))
    # /proc/sys is left as it is: a bind mount over part of /proc makes proc "not fully
    # visible", and the kernel then refuses the sandbox's own procfs mount in its user
    # namespace. The invariants restore kernel.core_pattern if an attack ever changes it.
    sh("mount", "--bind", bdir, bdir)
    mount_setattr("/", set_=MOUNT_ATTR_RDONLY)
    for d in ["/tmp", "/root", "/run", "/var/tmp", "/dev", "/sys/fs/cgroup"]:
        if os.path.isdir(d):
            mount_setattr(d, clr=MOUNT_ATTR_RDONLY, recursive=True)
    for path, _ in keep:  # the source tree put back under a scratch tmpfs stays read-only
        mount_setattr(path, set_=MOUNT_ATTR_RDONLY, recursive=True)
    mount_setattr(bdir, clr=MOUNT_ATTR_RDONLY, recursive=True)
    for d, _ in overlays:
        mount_setattr(d, clr=MOUNT_ATTR_RDONLY, recursive=False)
    mount_setattr("/proc", clr=MOUNT_ATTR_RDONLY, recursive=False)
    sh("ip", "link", "set", "lo", "up")
    # Check the net: system directories refuse writes, the scratch and build dirs accept them.
    for p in ("/usr/scsec-ro-check", os.path.join(REPO, "scsec-ro-check"), "/boot/scsec-check"):
        if p.startswith("/boot") and not os.path.isdir("/boot"):
            continue
        try:
            with open(p, "w") as f:
                f.write("x")
        except OSError as e:
            if e.errno not in (30, 13, 1):  # EROFS, EACCES, EPERM
                raise RuntimeError("%s: unexpected %s" % (p, e))
        else:
            raise RuntimeError("the outer net leaves %s writable" % p)
    for p in (SCRATCH, bdir):
        with open(os.path.join(p, ".scsec-rw-check"), "w") as f:
            f.write("x")
        os.unlink(os.path.join(p, ".scsec-rw-check"))
    return {"overlays": overlays}


def pid1_main(args):
    """pid 1 of the outer net: sets it up, forks the runner, reaps, reports a killed runner."""
    bdir = builddir()
    try:
        info = setup_outer_net(bdir)
    except Exception as e:
        say("security: cannot set up the outer safety net: %s; refusing to run attacks" % e)
        say("security: 0 passed, 1 failed, 0 skipped")
        return 1
    signal.signal(signal.SIGTERM, lambda *a: None)  # pid 1: die only with the namespace
    worker = os.fork()
    if worker == 0:
        code = 1
        try:
            code = worker_main(args, info)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    status = None
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == worker:
            status = st
            break
    # Everything else in the namespace dies with us; give stdout a moment.
    if status is not None and os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status) if status is not None else 0
    last, results = None, []
    try:
        for line in open(PROGRESS):
            d = json.loads(line)
            if d.get("event") == "start":
                last = d["id"]
            else:
                results.append(d)
    except OSError:
        pass
    running = [d for d in results if d.get("event") == "running"]
    done = {d["id"] for d in results if d.get("event") == "result"}
    suspects = [d["id"] for d in running if d["id"] not in done] or ([last] if last else [])
    say("FAIL  runner  the test runner itself was killed by signal %d (%s) while running %s: "
        "an attack reached processes outside its sandbox"
        % (sig, signal.Signals(sig).name if sig else "?", ", ".join(suspects) or "?"))
    npass = sum(1 for d in results if d.get("event") == "result" and d["status"] == "PASS")
    nfail = sum(1 for d in results if d.get("event") == "result" and d["status"] == "FAIL")
    nskip = sum(1 for d in results if d.get("event") == "result" and d["status"] == "SKIP")
    say("security: %d passed, %d failed, %d skipped" % (npass, nfail + 1, nskip))
    return 1


# =============================================================================================
# The environment the cases run in
# =============================================================================================

def main_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--control", action="store_true",
                    help="self-check: run the representative cases against an unsandboxed "
                         "kernel; each must be detected as a breach")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--only", help="run the cases whose name matches this regex")
    ap.add_argument("--group", help="run the cases of these groups (comma-separated)")
    ap.add_argument("--profiles", default="strict,moderate,permissive")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--kernel", help="use this kernelspec for every profile (debugging)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print the kernel output of failed cases")
    return ap.parse_args()


class Ctx:
    """The shared test environment: gateway, secrets, sleepers, global listeners."""

    def __init__(self, args, info):
        import lib
        self.lib = lib
        self.args = args
        self.control = args.control
        self.bdir = builddir()
        self.scratch = SCRATCH
        self.overlays = info.get("overlays", [])
        self.gw_exe = os.path.join(self.bdir, "gateway", "sandcell")
        self.kernel_exe = os.path.join(self.bdir, "kernel", "sandcell-kernel")
        self.probe = os.environ.get("SCSEC_PROBE") or os.path.join(
            self.bdir, "tests", "security", "syscall_probe")
        # A sanitizer build (the kernel says so) has no address-space limit by design.
        try:
            report = json.loads(subprocess.run(
                [self.kernel_exe, "--check-sandbox", "--json", "--profile", "strict"],
                capture_output=True, text=True, timeout=60).stdout)
            self.sanitizer_build = bool(report["host"].get("sanitizer_build"))
        except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
            self.sanitizer_build = False
        # Attacks crash kernels on purpose: they must die of their signal, as in a release
        # build, not be caught and reported by the sanitizer as if sandcell had a bug.
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if os.environ.get(var):
                os.environ[var] += ":handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0:handle_sigill=0"
        self.marker_dir = os.path.join(SCRATCH, "host")
        os.makedirs(self.marker_dir, exist_ok=True)
        os.chmod(self.marker_dir, 0o1777)
        self.lock = threading.RLock()
        self.secrets = {}
        self.sleeper_procs = {}
        self.server = None
        self.notes = []
        self.kernel_help = self._kernel_help()
        self.sandbox_in_kernel = "--profile" in self.kernel_help

    # -- setup --------------------------------------------------------------------------------

    def _kernel_help(self):
        try:
            r = subprocess.run([self.kernel_exe, "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            return r.stdout.decode(errors="replace")
        except OSError as e:
            return "cannot run %s: %s" % (self.kernel_exe, e)

    def new_secret(self, name):
        v = "SCSEC-%s-%s" % (name.upper(), secrets.token_hex(12))
        self.secrets[name] = v
        return v

    def plant(self):
        """Secrets and victims outside the sandbox. Planted files are world-readable and their
        directories world-writable where the host would allow it, so that only the sandbox
        (not file permissions of the outer uid) stands between them and the kernel."""
        self.secret_files = {}
        v = self.new_secret("root-file")
        self._plant_file("/root/scsec-secret.txt", v + "\n", 0o644)
        v = self.new_secret("tmp-file")
        self._plant_file("/tmp/scsec-host-secret.txt", v + "\n", 0o644)
        self._plant_file("/root/.bashrc", "# scsec planted bashrc\n", 0o644)
        self._plant_file("/tmp/scsec-victim.txt", "scsec victim: must stay as it is\n", 0o666)
        v = self.new_secret("shadow")
        self._plant_file("/etc/shadow", "root:*:19000:0:99999:7:::\nscsec:$6$%s:19000:0:99999:7:::\n"
                         % v, 0o640)
        # a secret on the same (ext4) file system as the host's real root, for handle and
        # raw-device attacks
        self.ext4_dir = os.path.join(self.bdir, "tests", "security", "scsec-host-target")
        shutil.rmtree(self.ext4_dir, ignore_errors=True)
        os.makedirs(self.ext4_dir)
        os.chmod(self.ext4_dir, 0o1777)
        v = self.new_secret("ext4-file")
        self._plant_file(os.path.join(self.ext4_dir, "ext4-secret.txt"), v + "\n", 0o644)
        for d, _ in self.overlays:
            if d != "/usr/lib/python3.11":
                os.chmod(d, 0o1777)  # in the overlay only: no DAC between a kernel and them
        self.upper_baseline = self.upper_listing()
        self.sleeper_env_secret = self.new_secret("sleeper-env")
        self.sleeper_argv_secret = self.new_secret("sleeper-argv")
        # not in self.secrets: every kernel inherits it today (see env-gateway-environment)
        self.gw_env_secret = "SCSEC-GATEWAY-ENV-" + secrets.token_hex(12)
        self.kmsg_secret = self.new_secret("kmsg")
        try:
            with open("/dev/kmsg", "w") as f:
                f.write("scsec: %s\n" % self.kmsg_secret)
        except OSError:
            self.notes.append("cannot write /dev/kmsg: the kmsg secret is not planted")
        self.hostname0 = self.lib.hostname()
        self.lo0 = self.lib.lo_addresses()
        self.core_pattern0 = self.lib.read_text("/proc/sys/kernel/core_pattern")
        self.root_dev = self._root_device()
        self.sleeper = self.start_sleeper()
        self.global_listeners = [self.lib.Listener("tcp4", tag="scsec-global"),
                                 self.lib.Listener("abstract", tag="scsec-global-%s" % secrets.token_hex(4))]

    def _plant_file(self, path, content, mode):
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, mode)
        st = os.stat(path)
        self.secret_files[path] = (self.lib.sha(path), st.st_nlink, st.st_mode)

    def _root_device(self):
        """(/dev path, first 4 KiB after the ext4 superblock offset) of the root file system."""
        for m in self.lib.mountinfo(os.getpid()):
            if m["mount_point"] == "/" or (m["mount_point"] == self.bdir):
                src = m["source"]
                if src.startswith("/dev/") and os.path.exists(src):
                    try:
                        with open(src, "rb") as f:
                            f.seek(1024)
                            sb = f.read(1024)
                        return src, sb
                    except OSError:
                        return src, None
        return None, None

    def upper_listing(self):
        out = set()
        for d, up in self.overlays:
            for root, dirs, files in os.walk(up):
                for n in dirs + files:
                    out.add(os.path.join(d, os.path.relpath(os.path.join(root, n), up)))
        return out

    def start_sleeper(self):
        code = "import time\nwhile True: time.sleep(100)\n"
        env = {"PATH": "/usr/bin:/bin", "SCSEC_SLEEPER_SECRET": self.sleeper_env_secret}
        p = subprocess.Popen([PY, "-c", code, "scsec-sleeper", self.sleeper_argv_secret],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        with self.lock:
            self.sleeper_procs[p.pid] = p
        # wait until it runs python (its stack then holds env and argv)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if b"scsec-sleeper" in b" ".join(self.lib.cmdline(p.pid)):
                break
            time.sleep(0.02)
        return p.pid

    def stop_sleeper(self, pid):
        with self.lock:
            p = self.sleeper_procs.pop(pid, None)
        if p is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.wait(5)
            except Exception:
                pass

    # -- gateway --------------------------------------------------------------------------------

    def gateway_config(self):
        ro = []
        if os.path.exists(self.probe):
            ro.append(os.path.dirname(self.probe))
        cfg = {"profiles": {
            "strict": {"cpu_time": 3, "wall_time": 10, "output": "1MB"},
            "moderate": {"cpu_time": 3, "wall_time": 10, "output": "1MB", "memory": "256MB",
                         "disk": "64MB", "file_size": "64MB"},
            "permissive": {"cpu_time": 5, "wall_time": 15, "output": "1MB", "memory": "512MB",
                           "disk": "64MB", "file_size": "64MB", "read_only": ro},
        }}
        return cfg

    WANTED_LIMITS = {
        "strict": {"memory": 100 << 20, "cpu_time": 3, "wall_time": 10, "processes": 1,
                   "threads": 8, "open_files": 64, "file_size": 16 << 20, "disk": 16 << 20,
                   "output": 1 << 20},
        "moderate": {"memory": 256 << 20, "cpu_time": 3, "wall_time": 10, "processes": 16,
                     "threads": 32, "open_files": 256, "file_size": 64 << 20,
                     "disk": 64 << 20, "output": 1 << 20},
        "permissive": {"memory": 512 << 20, "cpu_time": 5, "wall_time": 15, "processes": 64,
                       "threads": 128, "open_files": 1024, "file_size": 64 << 20,
                       "disk": 64 << 20, "output": 1 << 20},
    }

    def write_wrapper(self):
        """Control mode: a kernel binary that drops every sandbox option and runs the real
        kernel with --profile none (or without a profile when the kernel knows none)."""
        path = os.path.join(SCRATCH, "unsandboxed-kernel")
        none = "--profile none" if self.sandbox_in_kernel else ""
        with open(path, "w") as f:
            f.write("""#!/bin/sh
# scsec control mode: the same kernel, without its sandbox
conn=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--connection-file) conn="$2"; shift 2 ;;
    --connection-file=*) conn="${1#--connection-file=}"; shift ;;
    *) shift ;;
  esac
done
exec %s -f "$conn" %s
""" % (self.kernel_exe, none))
        os.chmod(path, 0o755)
        return path

    def start_gateway(self):
        lib = self.lib
        os.environ["SCSEC_GW_SECRET"] = self.gw_env_secret
        cfg_path = os.path.join(SCRATCH, "gateway-config.json")
        with open(cfg_path, "w") as f:
            json.dump(self.gateway_config(), f, indent=1)
        opts = {"config": cfg_path, "log-level": "3", "max-kernels": 48,
                "restart-limit": 100}
        if self.control:
            opts["kernel-binary"] = self.write_wrapper()
        srv = lib.harness.Server(opts, name="scsec")
        try:
            srv.start()
            self.gw_config_used = True
        except RuntimeError as e:
            if "profiles" not in str(e):
                raise
            self.notes.append("the gateway refuses the 'profiles' config key (not implemented "
                              "yet): limits are the built-in ones")
            opts.pop("config")
            srv = lib.harness.Server(opts, name="scsec")
            srv.start()
            self.gw_config_used = False
        self.server = srv
        self.gw_pid = srv.proc.pid
        self.secrets["gateway-token"] = srv.token
        # a secret in the gateway's own log (its stderr, an inherited-looking fd)
        with open(srv.log_path, "a") as f:
            f.write("scsec planted log line %s\n" % self.new_secret("gateway-log"))
        specs = srv.get_json("/api/kernelspecs")
        self.kernelspecs = specs.get("kernelspecs", {})
        self.default_spec = specs.get("default")
        self.spec_limits = {}
        for name, s in self.kernelspecs.items():
            md = (s.get("spec") or {}).get("metadata") or {}
            sc = md.get("sandcell") or {}
            if sc.get("profile") and isinstance(sc.get("limits"), dict):
                self.spec_limits[sc["profile"]] = sc["limits"]
        return srv

    def gateway_problem(self):
        srv = self.server
        if srv is None or srv.proc is None:
            return "the gateway is not running"
        if srv.proc.poll() is not None:
            return "the gateway exited (status %s)" % srv.proc.returncode
        return self.lib.live_problem(srv.proc.pid, "the gateway")

    def ensure_gateway(self):
        with self.lock:
            p = self.gateway_problem()
            if p is None:
                return None
            try:
                self.server.kill()
            except Exception:
                pass
            self.start_gateway()
            return p

    def kernel_name(self, profile):
        if self.args.kernel:
            return self.args.kernel
        if self.control:
            return "sandcell-" + profile if ("sandcell-" + profile) in self.kernelspecs \
                else self.default_spec
        name = "sandcell-" + profile
        if name not in self.kernelspecs:
            self.lib.error("the gateway does not offer the kernelspec %s (it offers: %s)"
                           % (name, ", ".join(sorted(self.kernelspecs)) or "none"))
        return name

    def profile_limits(self, profile):
        d = dict(self.WANTED_LIMITS.get(profile, {}))
        got = self.spec_limits.get(profile) or {}
        for k, v in got.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                d[k] = v
        return d

    # -- per-case checks --------------------------------------------------------------------------

    def fresh_session(self, profile):
        """A new kernel of the profile runs 1+1 = 2; returns None or a problem."""
        lib = self.lib
        try:
            name = self.kernel_name(profile)
        except lib.CaseFail as e:
            return e.msg
        t0 = time.monotonic()
        k = None
        try:
            k = lib.Kernel(self, name)
            o = k.run("1+1", timeout=30, prelude=False)
            if o.result_text != "2":
                return "a fresh %s session: 1+1 gave %s" % (name, o.summary())
        except lib.CaseFail as e:
            return "a fresh %s session: %s" % (name, e.msg)
        except Exception as e:
            return "a fresh %s session: %s" % (name, e)
        finally:
            if k is not None:
                left = k.delete()
                if left:
                    return "a fresh session's processes outlived DELETE: %s" % left
        if time.monotonic() - t0 > 30:
            return "a fresh session took %.0f s" % (time.monotonic() - t0)
        return None

    def invariants(self):
        """What must hold after every case, whoever ran it."""
        lib = self.lib
        problems = []
        p = self.gateway_problem()
        if p:
            problems.append(p)
        p = lib.live_problem(self.sleeper, "the test's sleeper process")
        if p:
            problems.append(p)
        for li in self.global_listeners:
            if li.poll():
                problems.append("a connection reached the test's global %s listener" % li.kind)
                li.count = 0
        for path, (h, nlink, mode) in self.secret_files.items():
            try:
                st = os.lstat(path)
            except OSError:
                problems.append("planted file %s is gone" % path)
                continue
            h1 = lib.sha(path)
            if h1 != h:
                problems.append("planted file %s was modified" % path)
            if st.st_nlink != nlink:
                problems.append("planted file %s has %d links now (was %d)" % (
                    path, st.st_nlink, nlink))
            if st.st_mode != mode:
                problems.append("planted file %s changed mode" % path)
            self.secret_files[path] = (h1, st.st_nlink, st.st_mode)  # report each change once
        new = self.upper_listing() - self.upper_baseline
        if new:
            problems.append("written into system directories: %s" % ", ".join(sorted(new)[:8]))
            self.upper_baseline |= new
        for d in ("/tmp", SCRATCH, self.marker_dir, "/root", "/run", "/var/tmp", "/dev/shm",
                  self.bdir, self.ext4_dir):
            try:
                names = os.listdir(d)
            except OSError:
                continue
            bad = [n for n in names if "scpwn" in n.lower()]
            if bad:
                problems.append("attack markers on the host side: %s" % ", ".join(
                    os.path.join(d, n) for n in bad[:5]))
                for n in bad:
                    try:
                        os.unlink(os.path.join(d, n))
                    except OSError:
                        pass
        if lib.hostname() != self.hostname0:
            problems.append("the outer hostname changed to %r" % lib.hostname())
            self.hostname0 = lib.hostname()
        lo = lib.lo_addresses()
        if lo != self.lo0:
            problems.append("the outer loopback addresses changed: %s" % lo)
            self.lo0 = lo
        if lib.read_text("/proc/sys/kernel/core_pattern") != self.core_pattern0:
            problems.append("kernel.core_pattern changed")
            try:
                with open("/proc/sys/kernel/core_pattern", "w") as f:
                    f.write(self.core_pattern0)
            except OSError as e:
                problems.append("cannot restore kernel.core_pattern: %s" % e)
        return problems


# =============================================================================================
# Scheduling and reporting
# =============================================================================================

class Report:
    def __init__(self, verbose=False):
        self.lock = threading.Lock()
        self.results = []
        self.verbose = verbose
        self.t0 = time.monotonic()

    def progress(self, event, cid, **kw):
        d = dict(kw, event=event, id=cid)
        with self.lock:
            with open(PROGRESS, "a") as f:
                f.write(json.dumps(d) + "\n")

    def add(self, cid, status, secs, reason, detail=None):
        with self.lock:
            self.results.append((cid, status, secs, reason))
            say("%-4s  %-44s %5.1fs  %s" % (status, cid, secs, reason))
            if detail and self.verbose:
                for line in detail.splitlines()[:60]:
                    say("          | " + line)
        self.progress("result", cid, status=status, reason=reason)

    def counts(self):
        p = sum(1 for r in self.results if r[1] == "PASS")
        f = sum(1 for r in self.results if r[1] == "FAIL")
        s = sum(1 for r in self.results if r[1] == "SKIP")
        return p, f, s


def run_one(ctx, report, c, profile):
    lib = ctx.lib
    t = lib.CaseRun(ctx, c, profile)
    report.progress("running", t.id)
    t0 = time.monotonic()
    status, reason, detail, kind = "PASS", "", None, None
    try:
        if ctx.control:
            t.note("control")
        for need in c.needs:
            ok = ctx.has(need)
            if ok is not True:
                raise lib.CaseSkip(ok)
        c.fn(t)
    except lib.CaseSkip as e:
        status, reason = "SKIP", str(e)
    except lib.CaseFail as e:
        status, kind = "FAIL", e.kind
        reason = {"breach": "BREACH: ", "inconclusive": "INCONCLUSIVE: ",
                  "error": "ERROR: "}[e.kind] + e.msg
    except Exception:
        status, kind = "FAIL", "error"
        reason = "ERROR: the test raised " + lib.fmt_exc().strip().splitlines()[-1]
        detail = lib.fmt_exc()
    finally:
        # an attack that stopped or killed the gateway: a new one first, so that cleanup and the
        # fresh-session check do not wait on the old one (its kernels are killed by pid)
        gp = ctx.gateway_problem()
        if gp:
            for k in t.kernels:
                for p in k.pids():
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            ctx.ensure_gateway()
            t.notes.append("the gateway had to be restarted (%s)" % gp)
        try:
            problems = t.cleanup()
        except Exception:
            problems = ["cleanup raised: " + lib.fmt_exc().strip().splitlines()[-1]]
    if problems and status != "SKIP":
        if status == "PASS":
            status, kind = "FAIL", "breach"
            reason = "BREACH: " + "; ".join(problems)
        else:
            reason += " [also: %s]" % "; ".join(problems)
    if status != "SKIP":
        # the gateway must still serve a fresh session, and nothing outside may have changed
        gp = ctx.ensure_gateway() or (gp and "it was %s" % gp)
        if gp:
            reason_add = "the gateway died or hung (%s); restarted it" % gp
        else:
            reason_add = ctx.fresh_session(profile if not ctx.args.kernel else "strict")
        inv = ctx.invariants()
        extra = [x for x in [reason_add] + inv if x]
        if extra:
            if status == "PASS":
                status, kind = "FAIL", "breach"
                reason = "BREACH: " + "; ".join(extra)
            else:
                reason += " [also: %s]" % "; ".join(extra)
    if status == "PASS" and t.notes:
        reason = "; ".join(t.notes)
    if ctx.control and status != "SKIP":
        # control: the check must catch the unsandboxed attack
        if status == "FAIL" and kind == "breach":
            status, reason = "PASS", "detected: " + reason[len("BREACH: "):]
        elif status == "FAIL":
            reason = "control case could not run: " + reason
        else:
            status, reason = "FAIL", "NOT DETECTED: the unsandboxed attack passed the checks (%s)" % reason
    if status == "FAIL" and report.verbose:
        detail = (detail or "") + "\n".join(
            "--- outcome %d: %s\n%s" % (i, o.summary(100), o.stdout[-3000:])
            for i, o in enumerate(t.outcomes))
    report.add(t.id, status, time.monotonic() - t0, reason, detail)


def worker_main(args, info):
    sys.path.insert(0, HERE)
    import lib
    import cases  # noqa: F401  (registers the cases)
    report = Report(args.verbose)
    open(PROGRESS, "w").close()
    selected = select_cases(lib.CASES, args)
    ctx = Ctx(args, info)
    ctx.has = lambda need: cases.has(ctx, need)
    ctx.plant()
    try:
        ctx.start_gateway()
    except Exception as e:
        say("security: cannot start the gateway: %s" % e)
        say("security: 0 passed, 1 failed, 0 skipped")
        return 1
    say("security: %s; gateway %s; kernel %s (%s); kernelspecs: %s; %d jobs, %d workers"
        % ("CONTROL MODE (unsandboxed kernels: every case must be DETECTED)" if ctx.control
           else "attack corpus", ctx.gw_exe, ctx.kernel_exe,
           "sandbox options present" if ctx.sandbox_in_kernel else
           "NO --profile option: the kernel has no sandbox yet",
           ", ".join(sorted(ctx.kernelspecs)), len(selected), args.workers))
    for n in ctx.notes:
        say("security: note: " + n)
    conc = [j for j in selected if not j[0].exclusive]
    excl = [j for j in selected if j[0].exclusive]
    q = queue.Queue()
    for j in conc:
        q.put(j)

    def work():
        while True:
            try:
                c, prof = q.get_nowait()
            except queue.Empty:
                return
            run_one(ctx, report, c, prof)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, args.workers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for c, prof in excl:
        run_one(ctx, report, c, prof)
    try:
        problems = ctx.server.stop(check=False, timeout=30)
    except Exception as e:
        problems = ["stop raised %s" % e]
    for pid in list(ctx.sleeper_procs):
        ctx.stop_sleeper(pid)
    shutil.rmtree(ctx.ext4_dir, ignore_errors=True)
    p, f, s = report.counts()
    if problems:
        say("FAIL  gateway-shutdown  %s" % "; ".join(problems))
        f += 1
    fails = [r for r in report.results if r[1] == "FAIL"]
    if fails:
        say("")
        say("failures:")
        for cid, _, _, reason in sorted(fails):
            say("  %s: %s" % (cid, reason))
    say("security: run time %.0f s" % (time.monotonic() - report.t0))
    say("security: %d passed, %d failed, %d skipped" % (p, f, s))
    return 1 if f else 0


def select_cases(all_cases, args):
    profs = [p.strip() for p in args.profiles.split(",") if p.strip()]
    groups = set(g.strip() for g in args.group.split(",")) if args.group else None
    out = []
    for c in all_cases:
        if args.only and not re.search(args.only, c.name):
            continue
        if groups and c.group not in groups:
            continue
        if args.control and not c.control:
            continue
        for p in c.profiles:
            if args.control:
                out.append((c, p))
                break  # one profile is enough for the control
            if p in profs:
                out.append((c, p))
    return out


def list_cases():
    sys.path.insert(0, HERE)
    import lib
    import cases  # noqa: F401
    n = 0
    for c in lib.CASES:
        n += 1
        say("%-34s %-9s %-28s%s %s" % (c.name, c.group, ",".join(c.profiles),
                                      " [control]" if c.control else "",
                                      c.doc))
    say("%d cases" % n)


def main():
    args = main_args()
    if args.list:
        list_cases()
        return 0
    if os.environ.get(OUTER_MARK) != "1":
        reexec_in_outer_net()
    return pid1_main(args)


if __name__ == "__main__":
    sys.exit(main())
