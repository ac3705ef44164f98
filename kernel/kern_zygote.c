/*
 * The zygote: a sandcell-kernel that started CPython and imported the kernel's modules once,
 * and then forks one kernel per request of the gateway. See kern_zygote.h.
 *
 * A request is one SOCK_SEQPACKET message: the kernel's command line, each argument ending in
 * a NUL, with one descriptor attached (SCM_RIGHTS) that becomes the kernel's stderr. The
 * answer is one int32: the kernel's pid, or -errno.
 *
 * The kernel is made with clone(CLONE_PARENT): its parent is the gateway, as for a kernel the
 * gateway spawned itself, so the gateway's pidfd, waitid and process-group handling see no
 * difference. The fork happens with one thread and the interpreter idle: Python's fork hooks
 * run around it (random reseeds itself in the child), and the child goes on exactly like
 * `sandcell-kernel --preinit` with the command line it was sent.
 *
 * The raw clone is not glibc's fork(): the child keeps the zygote's thread id in its thread
 * descriptor (pthread_kill() and pthread_setschedparam() on its main thread would aim at the
 * zygote), and neither atfork handlers nor AddressSanitizer's fork interceptor run. With one
 * thread and nothing locked that leaves memory consistent, and the child only supervises the
 * sandbox: the process that runs the kernel and starts threads is the sandbox's fork() of it.
 * A kernel without a sandbox (--profile none, which the gateway never asks for) would need a
 * fork() first.
 */
#include "kern_zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kern_python.h"
#include "kern_zygote_req.h"

#define KERN_ZYGOTE_REQUEST_MAX (64 << 10) /* a command line: well under a page in practice */

/* Threads of this process (the fork is only sound with one). */
static long kern_zygote_threads(void)
{
	char text[4096];
	const char *p;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	p = strstr(text, "\nThreads:");
	return p ? strtol(p + 9, NULL, 10) : -1;
}

void kern_zygote_title(int argc, char **argv, int n, const char *const *args)
{
	/* Measured once: a title written before shortens the arguments. */
	static char *area;
	static size_t room;
	char text[8192]; /* more than the gateway's room */
	size_t used = 0;

	if (!area) {
		area = argv[0];
		room = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - area);
	}

	/* Copied first: args may point into the area itself. */
	for (int i = 0; i < n && used < sizeof(text); i++) {
		size_t l = strlen(args[i]) + 1;

		if (l > sizeof(text) - used)
			break;
		memcpy(text + used, args[i], l);
		used += l;
	}
	if (used > room)
		used = room;
	memcpy(area, text, used);
	memset(area + used, 0, room - used);
	if (room)
		area[room - 1] = '\0';
}

/* Receives one request; returns its length (0: the gateway hung up) with *fd, or -errno. */
static ssize_t kern_zygote_recv(int sock, char *buf, size_t size, int *fd)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {buf, size};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.space,
	                    .msg_controllen = sizeof(ctl.space)};
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -E2BIG;
	return n;
}

static void kern_zygote_answer(int sock, int32_t value)
{
	while (send(sock, &value, sizeof(value), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

int kern_zygote_serve(struct kern *k, int sock, int *argc, char ***argv)
{
	char *buf = malloc(KERN_ZYGOTE_REQUEST_MAX);
	long threads;

	if (!buf)
		return -ENOMEM;
	/* The gateway is our parent: go with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	threads = kern_zygote_threads();
	if (threads != 1) {
		kern_log(k, "zygote: %ld threads after the warm-up, a fork needs one", threads);
		return -EDEADLK;
	}
	kern_zygote_answer(sock, 0); /* ready */
	for (;;) {
		int fd = -1, n_args = 0;
		ssize_t n = kern_zygote_recv(sock, buf, KERN_ZYGOTE_REQUEST_MAX, &fd);
		char **args;
		pid_t pid;
		int e;

		if (n == 0)
			_exit(0);
		if (n < 0 && n != -E2BIG) {
			kern_log(k, "zygote: cannot read a request: %s", strerror((int)-n));
			_exit(1);
		}
		args = n > 0 ? kern_zygote_args(buf, (size_t)n, &n_args) : NULL;
		if (!args || fd < 0 || n_args < 2) {
			if (fd >= 0)
				close(fd);
			free(args);
			kern_zygote_answer(sock, -EINVAL);
			continue;
		}
		kern_python_before_fork();
		pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, NULL,
		                     NULL, 0UL);
		e = errno;
		if (pid == 0) {
			setsid(); /* first: the gateway signals the kernel's process group */
			kern_python_after_fork_child();
			if (dup2(fd, STDERR_FILENO) < 0)
				_exit(1);
			/* Nothing of the zygote's but the interpreter: its socket and log go. */
			close_range(3, UINT_MAX, 0);
			*argc = n_args;
			*argv = args; /* the child's for good, as buf is */
			return 0;
		}
		kern_python_after_fork_parent();
		close(fd);
		free(args);
		kern_zygote_answer(sock, pid > 0 ? (int32_t)pid : (int32_t)-e);
	}
}
