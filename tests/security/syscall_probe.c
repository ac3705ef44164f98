/*
 * syscall_probe: calls, one by one, the syscalls the kernel's seccomp policy must deny (the same
 * list as DENIED in cases.py, with the same harmless arguments), plus a few it must allow, and
 * the i386 `int 0x80` ABI. Each call runs in a forked child when fork works, so that a kill by
 * SIGSYS is reported for that call only. One line per call on stdout:
 *
 *     PROBE <name> ret=<r> errno=<NAME>      (ret=-2 errno=SIG<n> when a signal killed it)
 *
 * Usage: syscall_probe SLEEPER_PID   (a process of the test that ptrace and
 * process_vm_readv are pointed at). Exit status 0 once every line is printed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct call {
	const char *name;
	long nr;
	long a[6];
};

static char buf[4][512];

static const char *errname(int e)
{
	switch (e) {
	case 0:
		return "0";
	case EPERM:
		return "EPERM";
	case ENOENT:
		return "ENOENT";
	case ESRCH:
		return "ESRCH";
	case EINTR:
		return "EINTR";
	case EBADF:
		return "EBADF";
	case EAGAIN:
		return "EAGAIN";
	case ENOMEM:
		return "ENOMEM";
	case EACCES:
		return "EACCES";
	case EFAULT:
		return "EFAULT";
	case EBUSY:
		return "EBUSY";
	case EEXIST:
		return "EEXIST";
	case EINVAL:
		return "EINVAL";
	case ENOSYS:
		return "ENOSYS";
	case ENOKEY:
		return "ENOKEY";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	case EPROTONOSUPPORT:
		return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT:
		return "ESOCKTNOSUPPORT";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case ENOEXEC:
		return "ENOEXEC";
	case ENOTDIR:
		return "ENOTDIR";
	case EROFS:
		return "EROFS";
	case ENODEV:
		return "ENODEV";
	default: {
		static char tmp[32];
		snprintf(tmp, sizeof(tmp), "E%d", e);
		return tmp;
	}
	}
}

static void line(const char *name, long r, const char *err)
{
	char out[256];
	int n = snprintf(out, sizeof(out), "PROBE %s ret=%ld errno=%s\n", name, r, err);

	if (n > 0 && write(STDOUT_FILENO, out, (size_t)n) < 0)
		_exit(3);
}

static long int80(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

static void do_call(const struct call *c)
{
	long r;
	int e = 0;

	if (c->nr == -80) { /* i386 ABI: a[0] = i386 nr, a[1..3] = args */
		int raw = (int)int80(c->a[0], c->a[1], c->a[2], c->a[3]);

		if (raw < 0 && raw > -4096) {
			e = -raw;
			r = -1;
		} else {
			r = raw;
		}
	} else {
		errno = 0;
		r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
		e = r == -1 ? errno : 0;
	}
	line(c->name, r, errname(e));
}

static void run(const struct call *c)
{
	pid_t pid = fork();
	int st;

	if (pid < 0) { /* no fork: in-process */
		do_call(c);
		return;
	}
	if (pid == 0) {
		do_call(c);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return;
	if (WIFSIGNALED(st)) {
		char sig[32];

		snprintf(sig, sizeof(sig), "SIG%d", WTERMSIG(st));
		line(c->name, -2, sig);
	}
}

int main(int argc, char **argv)
{
	long sl = argc > 1 ? atol(argv[1]) : 1;
	long b0 = (long)buf[0], b1 = (long)buf[1];
	const struct call calls[] = {
	        {"socket-inet", SYS_socket, {2, 1, 0}},
	        {"socket-inet6-udp", SYS_socket, {10, 2, 0}},
	        {"socket-unix", SYS_socket, {1, 1, 0}},
	        {"socket-netlink", SYS_socket, {16, 3, 0}},
	        {"socket-packet", SYS_socket, {17, 3, 0x0300}},
	        {"socket-raw", SYS_socket, {2, 3, 1}},
	        {"socket-mptcp", SYS_socket, {2, 1, 262}},
	        {"socket-vsock", SYS_socket, {40, 1, 0}},
	        {"socketpair-inet", SYS_socketpair, {2, 1, 0, b0}},
	        {"ptrace-attach", SYS_ptrace, {16, sl, 0, 0}},
	        {"process-vm-readv", SYS_process_vm_readv, {sl, 0, 0, 0, 0, 0}},
	        {"mount",
	         SYS_mount,
	         {(long)"none", (long)"/nonexistent-scsec", (long)"tmpfs", 0, 0}},
	        {"umount2", SYS_umount2, {(long)"/nonexistent-scsec", 0}},
	        {"unshare-user", SYS_unshare, {0x10000000}},
	        {"unshare-ns", SYS_unshare, {0x00020000}},
	        {"setns", SYS_setns, {-1, 0}},
	        {"pivot-root", SYS_pivot_root, {(long)"/nonexistent-a", (long)"/nonexistent-b"}},
	        {"chroot", SYS_chroot, {(long)"/nonexistent-scsec"}},
	        {"clone-newuser", SYS_clone, {0x10000000 | 0x200, 0, 0, 0, 0}},
	        {"bpf", 321, {5, 0, 0}},
	        {"keyctl", SYS_keyctl, {0, -2, 1}},
	        {"add-key", SYS_add_key, {(long)"user", (long)"scsec", (long)"x", 1, -2}},
	        {"request-key", SYS_request_key, {(long)"user", (long)"scsec-none", 0, 0}},
	        {"perf-event-open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
	        {"userfaultfd", 323, {0}},
	        {"personality", SYS_personality, {0x0040000}},
	        {"kexec-load", SYS_kexec_load, {0, 0, 0, 0xdead0000L}},
	        {"kexec-file-load", 320, {-1, -1, 0, 0, 0xdead0000L}},
	        {"init-module", SYS_init_module, {0, 0, (long)""}},
	        {"finit-module", SYS_finit_module, {-1, (long)"", 0}},
	        {"delete-module", SYS_delete_module, {(long)"scsec_none", 0x800}},
	        {"io-uring-setup", 425, {1, 0}},
	        {"io-uring-enter", 426, {-1, 0, 0, 0, 0, 0}},
	        {"io-uring-register", 427, {-1, 0, 0, 0}},
	        {"open-by-handle-at", SYS_open_by_handle_at, {-1, 0, 0}},
	        {"reboot", SYS_reboot, {0, 0, 0, 0}},
	        {"swapon", SYS_swapon, {(long)"/nonexistent-scsec", 0}},
	        {"swapoff", SYS_swapoff, {(long)"/nonexistent-scsec"}},
	        {"acct", SYS_acct, {(long)"/nonexistent-scsec"}},
	        {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
	        {"iopl", SYS_iopl, {4}},
	        {"ioperm", SYS_ioperm, {0x10000, 1, 1}},
	        {"modify-ldt", SYS_modify_ldt, {0, b1, 8}},
	        {"syslog", SYS_syslog, {3, b1, 8}},
	        {"fsopen", 430, {(long)"tmpfs", 0}},
	        {"fsmount", 432, {-1, 0, 0}},
	        {"fspick", 433, {-100, (long)"/nonexistent-scsec", 0}},
	        {"open-tree", 428, {-100, (long)"/nonexistent-scsec", 1}},
	        {"move-mount", 429, {-1, (long)"", -1, (long)"", 0}},
	        {"mount-setattr", 442, {-1, (long)"", 0, 0, 0}},
	        {"clock-settime", SYS_clock_settime, {0, 0}},
	        {"sethostname", SYS_sethostname, {(long)"scpwn", 5}},
	        {"kcmp", SYS_kcmp, {0, 0, 0, 0, 0}},
	        {"fanotify-init", SYS_fanotify_init, {0, 0}},
	        /* the i386 ABI: getpid (20) and kill(sleeper, 0) (37) */
	        {"int80-getpid", -80, {20, 0, 0, 0}},
	        {"int80-kill", -80, {37, sl, 0, 0}},
	        /* allowed */
	        {"allowed-getpid", SYS_getpid, {0}},
	        {"allowed-getppid", SYS_getppid, {0}},
	        {"allowed-uname", SYS_uname, {(long)buf[2]}},
	        {"allowed-getrandom", SYS_getrandom, {(long)buf[3], 8, 0}},
	        {"allowed-mmap", SYS_mmap, {0, 4096, 3, 0x22, -1, 0}},
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		run(&calls[i]);
	return 0;
}
