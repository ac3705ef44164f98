/*
 * Kernel processes: started by the zygote (a warm sandcell-kernel that forks them) when it is
 * up, else spawned here. See gw_zygote.h and kernel/kern_zygote.c for the other side.
 *
 * The zygote is our child and so is every kernel it forks (clone with CLONE_PARENT): a kernel
 * is watched the same way whichever way it started. Talking to the zygote is synchronous, a
 * request and a pid back, which is a fork's time; it is never waited for while it warms up
 * (its first message says it is ready), and one that does not answer within
 * GW_ZYGOTE_REPLY_MS is killed and replaced, the kernel spawned here instead.
 */
#include "gw_zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_server.h"

#define GW_ZYGOTE_REPLY_MS   2000
#define GW_ZYGOTE_BACKOFF_US (30 * 1000000LL) /* after a zygote failed: spawn meanwhile */
#define GW_ZYGOTE_REQUEST    (64 << 10)       /* the zygote's cap on one command line */
#define GW_ZYGOTE_TITLE      4096             /* room for a kernel's command line in ps */

extern char **environ;

struct gw_zygote {
	pid_t pid;
	int fd;          /* our end of the SOCK_SEQPACKET pair */
	struct lws *wsi; /* a duplicate of fd in the event loop: the hello, or the zygote's end */
	bool ready;      /* its "ready" message arrived */
	unsigned served; /* kernels forked: replaced at cfg->zygote_kernels */
	int64_t started_us;
};

int gw_process_spawn(char **argv, char **envp, int err_fd, int fd3, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int r;

	sigemptyset(&none);
	sigemptyset(&dfl);
	/* The gateway blocks SIGTERM and SIGINT for its signalfd and ignores SIGPIPE. */
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	if (posix_spawn_file_actions_init(&fa))
		return -ENOMEM;
	if (posix_spawnattr_init(&at)) {
		posix_spawn_file_actions_destroy(&fa);
		return -ENOMEM;
	}
	r = err_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO) : 0;
	if (!r && fd3 >= 0)
		r = posix_spawn_file_actions_adddup2(&fa, fd3, 3);
	if (!r)
		r = posix_spawn_file_actions_addclosefrom_np(&fa, fd3 >= 0 ? 4 : 3);
	if (!r)
		r = posix_spawnattr_setsigmask(&at, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(&at, &dfl);
	if (!r)
		r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
		                                          POSIX_SPAWN_SETSID);
	if (!r)
		r = posix_spawn(pid, argv[0], &fa, &at, argv, envp ? envp : environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

void gw_process_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	killpg(pid, SIGKILL);
}

/* Ends the zygote (its kernels live on: they are ours, not its). */
static void gw_zygote_retire(struct gw_server *srv, const char *why)
{
	struct gw_zygote *z = srv->zygote;

	if (!z)
		return;
	if (why)
		gw_log(srv, GW_INFO, "zygote %d: %s", (int)z->pid, why);
	if (z->wsi) {
		lws_set_opaque_user_data(z->wsi, NULL);
		lws_set_timeout(z->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
	}
	close(z->fd);
	kill(z->pid, SIGKILL);
	while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(z);
	srv->zygote = NULL;
}

static void gw_zygote_failed(struct gw_server *srv, const char *why)
{
	gw_log(srv, GW_WARN, "zygote %d: %s; kernels start as new processes for %d s",
	       srv->zygote ? (int)srv->zygote->pid : 0, why, (int)(GW_ZYGOTE_BACKOFF_US / 1000000));
	gw_zygote_retire(srv, NULL);
	srv->zygote_backoff_us = gw_now_us() + GW_ZYGOTE_BACKOFF_US;
}

void gw_zygote_start(struct gw_server *srv)
{
	static char opt[] = "--zygote", fd3[] = "3", room[GW_ZYGOTE_TITLE];
	static const char *const keep[] = {
	        "SANDCELL_SHIM_IPYTHON=", "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
	static char lang[] = "LANG=C.UTF-8", path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
	char *argv[] = {srv->kernel_binary, opt, fd3, room, NULL};
	/*
	 * Its interpreter copies the environment into os.environ once, for every fork: only what
	 * a kernel takes from its launcher, never the gateway's own (a token, credentials).
	 */
	char *envp[sizeof(keep) / sizeof(keep[0]) + 3] = {lang, path};
	size_t n_env = 2;
	struct gw_zygote *z;
	int sv[2], r;

	for (char **e = environ; *e; e++)
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			if (strncmp(*e, keep[i], strlen(keep[i])) == 0 &&
			    n_env < sizeof(envp) / sizeof(envp[0]) - 1)
				envp[n_env++] = *e;
	envp[n_env] = NULL;

	/* Room for the kernels' command lines, which they show in place of the zygote's. */
	if (!room[0])
		memset(room, '.', sizeof(room) - 1);
	if (srv->zygote || srv->cfg->zygote_kernels <= 0 || srv->stopping ||
	    gw_now_us() < srv->zygote_backoff_us)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	z = calloc(1, sizeof(*z));
	r = z ? gw_process_spawn(argv, envp, -1, sv[1], &z->pid) : -ENOMEM;
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		free(z);
		gw_log(srv, GW_WARN, "cannot start the zygote: %s", strerror(-r));
		srv->zygote_backoff_us = gw_now_us() + GW_ZYGOTE_BACKOFF_US;
		return;
	}
	z->fd = sv[0];
	z->started_us = gw_now_us();
	srv->zygote = z;
	/* Watched, so that its hello and its end are seen when they happen. */
	r = srv->cx ? fcntl(z->fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (r >= 0 && !(z->wsi = gw_server_adopt(srv, r, GW_ZYGOTE_PROTOCOL, z)))
		close(r);
	gw_log(srv, GW_DBG, "zygote %d: started", (int)z->pid);
}

/* Reads one int32 from the zygote within ms (0: only what is there). 1, 0 (none) or -errno. */
static int gw_zygote_read(struct gw_zygote *z, int ms, int32_t *value)
{
	struct pollfd p = {z->fd, POLLIN, 0};
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	n = recv(z->fd, value, sizeof(*value), MSG_DONTWAIT);
	if (n == (ssize_t)sizeof(*value))
		return 1;
	return n == 0 ? -EPIPE : n < 0 ? -errno : -EPROTO;
}

/* True when the zygote is up and has said it is ready; false (and maybe retired) if not. */
static bool gw_zygote_usable(struct gw_server *srv)
{
	struct gw_zygote *z = srv->zygote;
	int32_t hello = -1;
	int r;

	if (!z)
		return false;
	if (z->ready)
		return true;
	r = gw_zygote_read(z, 0, &hello);
	if (r == 0)
		return false; /* still warming up */
	if (r < 0 || hello != 0) {
		gw_zygote_failed(srv, r < 0 ? "ended while warming up (see its log above)"
		                            : "sent a malformed hello");
		return false;
	}
	z->ready = true;
	gw_log(srv, GW_DBG, "zygote %d: ready after %.1f ms", (int)z->pid,
	       (double)(gw_now_us() - z->started_us) / 1000.0);
	return true;
}

int gw_zygote_spawn(struct gw_server *srv, char **argv, int err_fd, pid_t *pid)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov;
	struct msghdr mh = {0};
	struct gw_zygote *z;
	size_t len = 0, off = 0;
	char *buf;
	int32_t reply = 0;
	ssize_t n;
	int r;

	gw_zygote_start(srv);
	if (!gw_zygote_usable(srv) || strcmp(argv[0], srv->kernel_binary) != 0)
		return -EAGAIN;
	z = srv->zygote;
	for (size_t i = 0; argv[i]; i++)
		len += strlen(argv[i]) + 1;
	if (len > GW_ZYGOTE_REQUEST)
		return -E2BIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; argv[i]; i++) {
		size_t l = strlen(argv[i]) + 1;

		memcpy(buf + off, argv[i], l);
		off += l;
	}
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.space;
	mh.msg_controllen = sizeof(ctl.space);
	memset(ctl.space, 0, sizeof(ctl.space));
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &err_fd, sizeof(int));
	do
		n = sendmsg(z->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	free(buf);
	if (n != (ssize_t)len) {
		gw_zygote_failed(srv, "does not take requests");
		return -EAGAIN;
	}
	r = gw_zygote_read(z, GW_ZYGOTE_REPLY_MS, &reply);
	if (r <= 0) {
		gw_zygote_failed(srv, r == 0 ? "did not answer in time" : "ended");
		return -EAGAIN;
	}
	if (reply <= 0) {
		/* A refused request is ours or the system's, not the zygote's fault: spawn it. */
		gw_log(srv, GW_WARN, "zygote %d: cannot fork a kernel: %s", (int)z->pid,
		       strerror(reply < 0 ? -reply : EPROTO));
		return -EAGAIN;
	}
	*pid = (pid_t)reply;
	if (++z->served >= (unsigned)srv->cfg->zygote_kernels) {
		/* Its kernels share its string-hash seed: a fresh zygote draws a new one. */
		gw_zygote_retire(srv, "replaced after its kernels quota");
		gw_zygote_start(srv);
	}
	return 0;
}

int gw_zygote_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct gw_zygote *z = lws_get_opaque_user_data(wsi);
	struct gw_server *srv = lws_context_user(lws_get_context(wsi));
	char b;

	if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
		if (z && z->wsi == wsi)
			z->wsi = NULL;
		return 0;
	}
	if (reason != LWS_CALLBACK_RAW_RX_FILE || !z || z != srv->zygote)
		return 0;
	if (!z->ready)
		gw_zygote_usable(srv); /* reads the hello, or finds the end */
	else if (recv(z->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		gw_zygote_failed(srv, "ended");
	return 0;
}

void gw_zygote_stop(struct gw_server *srv)
{
	gw_zygote_retire(srv, NULL);
}
