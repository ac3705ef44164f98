/*
 * sandcell-kernel: a Jupyter kernel for Python. main() owns the one struct kern: it reads the
 * connection file, binds the five sockets, starts the output, heartbeat and control threads,
 * starts Python and runs the shell loop until a shutdown request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <zmq.h>

#include "kern.h"
#include "kern_info.h"
#include "kern_loop.h"
#include "kern_output.h"
#include "kern_python.h"
#include "kern_sandbox.h"
#include "kern_zygote.h"

/* A connection file is a few hundred bytes; refuse anything absurd. */
#define KERN_CONN_FILE_MAX (64 * 1024)
/* ZeroMQ drops a peer that sends a message larger than this; smaller ones reach our limits. */
#define KERN_ZMQ_MAXMSGSIZE ((int64_t)256 << 20)

/* Address space kept back for reporting a MemoryError under a memory limit. */
#define KERN_OOM_RESERVE ((size_t)4 << 20)

static void kern_usage(FILE *f)
{
	fputs("Usage: sandcell-kernel -f CONNECTION_FILE [--profile NAME] [LIMITS...]\n"
	      "       sandcell-kernel --check-sandbox [--json] [--profile NAME]\n"
	      "       sandcell-kernel --install-kernelspec PREFIX [--name NAME] [--profile NAME]\n"
	      "                       [--display-name TEXT] [--interrupt-mode signal|message]\n"
	      "\n"
	      "A Jupyter kernel for Python 3 (messaging protocol " PROTO_VERSION
	      "), run inside an\n"
	      "operating-system sandbox.\n"
	      "\n"
	      "  -f, --connection-file FILE  ports, transport and key, as written by Jupyter\n"
	      "      --profile NAME          strict, moderate (default), permissive, custom, or\n"
	      "                              none (no sandbox: for debugging only)\n"
	      "      --memory SIZE           memory user code may use (100MB, 1.5GiB)\n"
	      "      --cpu-time SECONDS      CPU time of the whole kernel\n"
	      "      --processes N           processes, counting the kernel (1: no children)\n"
	      "      --threads N             threads user code may start\n"
	      "      --open-files N          descriptors user code may open\n"
	      "      --file-size SIZE        largest file user code may write\n"
	      "      --disk SIZE             size of the workspace and of /tmp, each\n"
	      "      --read-only PATH        a data directory to show read-only (repeatable)\n"
	      "      --network, --no-network the host's network (permissive and custom only)\n"
	      "      --allow-import M,N      narrow the imports user code may make\n"
	      "      --block-import M,N      block more imports\n"
	      "      --allow-weaker-sandbox  start even when a layer the profile needs is missing\n"
	      "      --check-sandbox         try every layer for each profile and report\n"
	      "      --json                  with --check-sandbox: print JSON\n"
	      "      --shim-ipython          use sandcell's own IPython.display even when\n"
	      "                              IPython is installed (also SANDCELL_SHIM_IPYTHON=1)\n"
	      "      --install-kernelspec P  write P/kernels/NAME/kernel.json and exit; then\n"
	      "                              JUPYTER_PATH=P makes kernel NAME usable\n"
	      "      --name NAME             kernelspec name (default: sandcell)\n"
	      "      --display-name TEXT     (default: Python 3 (sandcell))\n"
	      "      --interrupt-mode MODE   signal (default) or message\n"
	      "  -h, --help                  this text\n"
	      "  -V, --version               print the version\n",
	      f);
}

static int kern_read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t n = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(KERN_CONN_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, KERN_CONN_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			close(fd);
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > KERN_CONN_FILE_MAX) {
			close(fd);
			free(buf);
			return -EFBIG;
		}
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Creates a socket of type and binds it to the channel's endpoint. Returns NULL on failure. */
static void *kern_bind(struct kern *k, int type, enum proto_channel ch)
{
	char ep[512];
	void *s = zmq_socket(k->zctx, type);
	int linger = 1000, one = 1;
	int64_t maxmsg = KERN_ZMQ_MAXMSGSIZE;

	if (!s)
		return NULL;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (type == ZMQ_ROUTER)
		zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof(one));
	/* Bound before the sandbox closed the network: ZeroMQ only accepts on it. */
	if (k->listen_fd[ch] >= 0)
		zmq_setsockopt(s, ZMQ_USE_FD, &k->listen_fd[ch], sizeof(k->listen_fd[ch]));
	if (proto_conn_endpoint(&k->conn, ch, ep, sizeof(ep)) < 0 || zmq_bind(s, ep) < 0) {
		kern_log(k, "cannot bind %s to %s: %s", proto_channel_name(ch), ep,
		         zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
}

/*
 * Binds and listens on a channel's endpoint before the sandbox: a kernel in its own network
 * namespace (tcp) or mount namespace (ipc) could not bind there afterwards. Returns the
 * descriptor or -errno.
 */
static int kern_listen(const struct proto_conn *c, enum proto_channel ch)
{
	union {
		struct sockaddr sa;
		struct sockaddr_un un;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
	socklen_t alen;
	int fd, one = 1;

	memset(&a, 0, sizeof(a));
	if (strcmp(c->transport, "ipc") == 0) {
		a.un.sun_family = AF_UNIX;
		if (snprintf(a.un.sun_path, sizeof(a.un.sun_path), "%s-%d", c->ip, c->ports[ch]) >=
		    (int)sizeof(a.un.sun_path))
			return -ENAMETOOLONG;
		unlink(a.un.sun_path); /* a leftover of an earlier kernel, as ZeroMQ does */
		alen = sizeof(a.un);
	} else if (inet_pton(AF_INET, strcmp(c->ip, "*") == 0 ? "0.0.0.0" : c->ip,
	                     &a.in.sin_addr) == 1) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons((uint16_t)c->ports[ch]);
		alen = sizeof(a.in);
	} else if (inet_pton(AF_INET6, c->ip, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)c->ports[ch]);
		alen = sizeof(a.in6);
	} else {
		return -EINVAL;
	}
	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a.sa.sa_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, &a.sa, alen) < 0 || listen(fd, 128) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int kern_open_sockets(struct kern *k)
{
	k->zctx = zmq_ctx_new();
	if (!k->zctx)
		return -errno;
	k->shell = kern_bind(k, ZMQ_ROUTER, PROTO_CHANNEL_SHELL);
	k->control = kern_bind(k, ZMQ_ROUTER, PROTO_CHANNEL_CONTROL);
	k->stdin_s = kern_bind(k, ZMQ_ROUTER, PROTO_CHANNEL_STDIN);
	k->iopub = kern_bind(k, ZMQ_PUB, PROTO_CHANNEL_IOPUB);
	k->hb = kern_bind(k, ZMQ_ROUTER, PROTO_CHANNEL_HB);
	if (!k->shell || !k->control || !k->stdin_s || !k->iopub || !k->hb)
		return -EADDRNOTAVAIL;
	return 0;
}

/* Ends the threads and sockets in an order that lets queued messages go out. */
static void kern_shutdown(struct kern *k)
{
	kern_output_stop(k);
	zmq_ctx_shutdown(k->zctx);
	if (k->control_started)
		pthread_join(k->control_thread, NULL);
	if (k->hb_started)
		pthread_join(k->hb_thread, NULL);
	zmq_close(k->shell);
	zmq_close(k->stdin_s);
	zmq_close(k->iopub);
	zmq_ctx_term(k->zctx);
}

static int kern_install_spec(int argc, char **argv, const char *prefix)
{
	struct kern_spec_opts o = {
	        .prefix = prefix,
	        .name = "sandcell",
	        .display_name = "Python 3 (sandcell)",
	        .interrupt_mode = "signal",
	};
	char path[4096];
	char *extra[3] = {NULL, NULL, NULL};
	struct kern_sandbox probe;
	int r;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--profile") == 0) {
			/* The kernelspec then starts kernels of that profile (by kernel name). */
			if (kern_sandbox_defaults(&probe, argv[i + 1]) < 0) {
				fprintf(stderr,
				        "sandcell-kernel: --profile \"%s\": expected strict, "
				        "moderate, permissive, custom or none\n",
				        argv[i + 1]);
				return 2;
			}
			extra[0] = argv[i];
			extra[1] = argv[++i];
			o.extra_argv = extra;
		} else if (strcmp(argv[i], "--name") == 0)
			o.name = argv[++i];
		else if (strcmp(argv[i], "--display-name") == 0)
			o.display_name = argv[++i];
		else if (strcmp(argv[i], "--interrupt-mode") == 0)
			o.interrupt_mode = argv[++i];
	}
	if (strcmp(o.interrupt_mode, "signal") != 0 && strcmp(o.interrupt_mode, "message") != 0) {
		fprintf(stderr, "sandcell-kernel: --interrupt-mode must be signal or message\n");
		return 2;
	}
	if (!o.name[0] || strspn(o.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                 "0123456789._-") != strlen(o.name)) {
		fprintf(stderr, "sandcell-kernel: a kernel name uses only A-Z a-z 0-9 . _ -\n");
		return 2;
	}
	r = kern_info_install_spec(&o, path, sizeof(path));
	if (r < 0) {
		fprintf(stderr, "sandcell-kernel: cannot write the kernelspec under %s: %s\n",
		        prefix, strerror(-r));
		return 1;
	}
	printf("%s\n", path);
	return 0;
}

/* A module list for --allow-import/--block-import: names, dots and commas only. */
static bool kern_module_list_ok(const char *s)
{
	return s[0] &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,") ==
	               strlen(s);
}

static int kern_number(const char *opt, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > 1000000) {
		fprintf(stderr,
		        "sandcell-kernel: --%s \"%s\": expected a whole number 0..1000000\n", opt,
		        s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int kern_size(const char *opt, const char *s, uint64_t *out)
{
	if (kern_size_parse(s, out) < 0) {
		fprintf(stderr,
		        "sandcell-kernel: --%s \"%s\": expected a size like 100MB or 1.5GiB\n", opt,
		        s);
		return -EINVAL;
	}
	return 0;
}

/*
 * A kernel is a session of its own, so the scheduler gives it (with autogrouping, the default)
 * as much CPU as the whole gateway: a thousand busy kernels left the gateway's one thread 1%.
 * The lowest weight for the kernel's session keeps the gateway, which serves every kernel,
 * ahead of them; kernels still share the CPU fairly among themselves. Best effort: without
 * autogrouping the file is missing and nothing changes.
 */
static void kern_autogroup_nice(void)
{
	int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "19", 2) < 0) {
		/* unchanged: a weight is a preference, not a limit */
	}
	close(fd);
}

/* Python's hooks, the policy, the preloaded libraries (strict) and the room for a MemoryError. */
static int kern_python_ready(struct kern *k, bool shim, const struct kern_sandbox *sb)
{
	if (kern_python_setup(k, shim, sb) < 0)
		return -1;
	if (sb->profile == KERN_PROFILE_STRICT && kern_python_preload(k) < 0)
		return -1;
	if (sb->profile != KERN_PROFILE_NONE && sb->memory)
		kern_python_reserve(KERN_OOM_RESERVE);
	return 0;
}

/*
 * The kernel: argv is its command line. warm: the interpreter is already started, this is a
 * fork of the zygote (which behaves as --preinit).
 */
static int kern_run(int argc, char **argv, bool warm)
{
	static struct kern k;
	static struct kern_sandbox sb;
	enum {
		OPT_PROFILE = 256,
		OPT_MEMORY,
		OPT_CPU,
		OPT_PROCESSES,
		OPT_THREADS,
		OPT_FILES,
		OPT_FSIZE,
		OPT_DISK,
		OPT_RO,
		OPT_NET,
		OPT_NONET,
		OPT_ALLOW,
		OPT_BLOCK,
		OPT_WEAKER,
		OPT_CHECK,
		OPT_JSON,
		OPT_PREINIT,
	};
	static const struct option opts[] = {
	        {"connection-file", required_argument, NULL, 'f'},
	        {"install-kernelspec", required_argument, NULL, 'i'},
	        {"name", required_argument, NULL, 'n'},
	        {"display-name", required_argument, NULL, 'd'},
	        {"interrupt-mode", required_argument, NULL, 'm'},
	        {"shim-ipython", no_argument, NULL, 's'},
	        {"profile", required_argument, NULL, OPT_PROFILE},
	        {"memory", required_argument, NULL, OPT_MEMORY},
	        {"cpu-time", required_argument, NULL, OPT_CPU},
	        {"processes", required_argument, NULL, OPT_PROCESSES},
	        {"threads", required_argument, NULL, OPT_THREADS},
	        {"open-files", required_argument, NULL, OPT_FILES},
	        {"file-size", required_argument, NULL, OPT_FSIZE},
	        {"disk", required_argument, NULL, OPT_DISK},
	        {"read-only", required_argument, NULL, OPT_RO},
	        {"network", no_argument, NULL, OPT_NET},
	        {"no-network", no_argument, NULL, OPT_NONET},
	        {"allow-import", required_argument, NULL, OPT_ALLOW},
	        {"block-import", required_argument, NULL, OPT_BLOCK},
	        {"allow-weaker-sandbox", no_argument, NULL, OPT_WEAKER},
	        {"check-sandbox", no_argument, NULL, OPT_CHECK},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"preinit", no_argument, NULL, OPT_PREINIT},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *conn_path = NULL, *spec_prefix = NULL, *env, *profile = "moderate";
	bool shim = (env = getenv("SANDCELL_SHIM_IPYTHON")) && strcmp(env, "1") == 0;
	bool check = false, json = false, preinit = warm, net = false, nonet = false;
	bool profile_given = false;
	struct proto_error err = {{0}};
	const struct proto_limits limits = PROTO_LIMITS_DEFAULT;
	/* Limits from the command line; UINT64_MAX = the profile's. */
	uint64_t memory = UINT64_MAX, fsize = UINT64_MAX, disk = UINT64_MAX;
	uint32_t cpu = UINT32_MAX, procs = UINT32_MAX, threads = UINT32_MAX, files = UINT32_MAX;
	const char *ro[KERN_SANDBOX_MAX_PATHS], *allow = NULL, *block = NULL;
	size_t n_ro = 0;
	bool weaker = false;
	sigset_t sigint, old;
	char *text = NULL;
	size_t len = 0;
	int c, r, keep[PROTO_CHANNEL_COUNT + 1];

	while ((c = getopt_long(argc, argv, "f:hV", opts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'f':
			conn_path = optarg;
			break;
		case 'i':
			spec_prefix = optarg;
			break;
		case 'n':
		case 'd':
		case 'm':
			break; /* read again by kern_install_spec */
		case 's':
			shim = true;
			break;
		case OPT_PROFILE:
			profile = optarg;
			profile_given = true;
			break;
		case OPT_MEMORY:
			r = kern_size("memory", optarg, &memory);
			break;
		case OPT_CPU:
			r = kern_number("cpu-time", optarg, &cpu);
			break;
		case OPT_PROCESSES:
			r = kern_number("processes", optarg, &procs);
			if (r == 0 && procs == 0)
				r = kern_number("processes", "-", &procs);
			break;
		case OPT_THREADS:
			r = kern_number("threads", optarg, &threads);
			break;
		case OPT_FILES:
			r = kern_number("open-files", optarg, &files);
			break;
		case OPT_FSIZE:
			r = kern_size("file-size", optarg, &fsize);
			break;
		case OPT_DISK:
			r = kern_size("disk", optarg, &disk);
			break;
		case OPT_RO:
			if (optarg[0] != '/' || strstr(optarg, "/..") ||
			    n_ro == KERN_SANDBOX_MAX_PATHS) {
				fprintf(stderr,
				        "sandcell-kernel: --read-only \"%s\": expected an absolute "
				        "path without .. (at most %d)\n",
				        optarg, KERN_SANDBOX_MAX_PATHS);
				r = -EINVAL;
			} else {
				ro[n_ro++] = optarg;
			}
			break;
		case OPT_NET:
			net = true;
			break;
		case OPT_NONET:
			nonet = true;
			break;
		case OPT_ALLOW:
		case OPT_BLOCK:
			if (!kern_module_list_ok(optarg)) {
				fprintf(stderr,
				        "sandcell-kernel: --%s \"%s\": expected module names "
				        "separated by commas\n",
				        c == OPT_ALLOW ? "allow-import" : "block-import", optarg);
				r = -EINVAL;
			} else if (c == OPT_ALLOW) {
				allow = optarg;
			} else {
				block = optarg;
			}
			break;
		case OPT_WEAKER:
			weaker = true;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_PREINIT:
			preinit = true;
			break;
		case 'h':
			kern_usage(stdout);
			return 0;
		case 'V':
			printf("sandcell-kernel %s\n", KERN_VERSION);
			return 0;
		default:
			kern_usage(stderr);
			return 2;
		}
		if (r < 0)
			return 2;
	}
	if (spec_prefix)
		return kern_install_spec(argc, argv, spec_prefix);
	if (check)
		return kern_sandbox_check(stdout, json, profile_given ? profile : NULL);
	if (!conn_path || optind != argc) {
		kern_usage(stderr);
		return 2;
	}
	if (kern_sandbox_defaults(&sb, profile) < 0) {
		fprintf(stderr,
		        "sandcell-kernel: --profile \"%s\": expected strict, moderate, "
		        "permissive, custom or none\n",
		        profile);
		return 2;
	}
	if (memory != UINT64_MAX)
		sb.memory = memory;
	if (fsize != UINT64_MAX)
		sb.file_size = fsize;
	if (disk != UINT64_MAX)
		sb.disk = disk;
	if (cpu != UINT32_MAX)
		sb.cpu_time = cpu;
	if (procs != UINT32_MAX)
		sb.processes = procs;
	if (threads != UINT32_MAX)
		sb.threads = threads;
	if (files != UINT32_MAX)
		sb.open_files = files;
	memcpy(sb.read_only, ro, n_ro * sizeof(ro[0]));
	sb.n_read_only = n_ro;
	sb.allow_import = allow;
	sb.block_import = block;
	sb.allow_weaker = weaker;
	/* The network is only ever the operator's choice for the wide profiles. */
	sb.network = net && !nonet &&
	             (sb.profile == KERN_PROFILE_PERMISSIVE || sb.profile == KERN_PROFILE_CUSTOM);
	if (net && !sb.network && sb.profile != KERN_PROFILE_NONE)
		fprintf(stderr,
		        "sandcell-kernel: --network ignored: the %s profile has no network\n",
		        profile);

	k.limits = limits;
	k.log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	pthread_mutex_init(&k.iopub_lock, NULL);
	pthread_mutex_init(&k.parent_lock, NULL);
	for (int i = 0; i < PROTO_CHANNEL_COUNT; i++)
		k.listen_fd[i] = -1;
	if (k.log_fd < 0) {
		perror("sandcell-kernel: stderr");
		return 1;
	}
	sb.log_fd = k.log_fd;
	r = kern_read_file(conn_path, &text, &len);
	if (r < 0) {
		kern_log(&k, "cannot read %s: %s", conn_path, strerror(-r));
		return 1;
	}
	r = proto_conn_parse(text, len, &k.conn, &err);
	free(text);
	if (r < 0) {
		kern_log(&k, "bad connection file %s: %s", conn_path, err.text);
		return 1;
	}
	if (sb.profile == KERN_PROFILE_NONE)
		kern_log(&k, "WARNING: --profile none: user code runs with this process's rights, "
		             "outside any sandbox");
	else
		kern_autogroup_nice();

	/*
	 * With --preinit the interpreter starts before the sandbox and the kernel is a fork of it,
	 * as when a warm process hands out kernels: the sandbox must hold the same either way.
	 */
	if (warm) {
		kern_python_attach(&k);
	} else if (preinit && kern_python_start(&k) < 0) {
		return 1;
	}
	if (preinit) {
		sb.before_fork = kern_python_before_fork;
		sb.after_fork_parent = kern_python_after_fork_parent;
		sb.after_fork_child = kern_python_after_fork_child;
	}
	if (sb.profile != KERN_PROFILE_NONE) {
		for (int i = 0; i < PROTO_CHANNEL_COUNT; i++) {
			k.listen_fd[i] = kern_listen(&k.conn, (enum proto_channel)i);
			if (k.listen_fd[i] < 0) {
				kern_log(&k, "cannot listen on the %s channel: %s",
				         proto_channel_name((enum proto_channel)i),
				         strerror(-k.listen_fd[i]));
				return 1;
			}
			keep[i] = k.listen_fd[i];
		}
		keep[PROTO_CHANNEL_COUNT] = k.log_fd;
		/* From here on this process supervises; the kernel goes on in the child. */
		r = kern_sandbox_enter(&sb, keep, PROTO_CHANNEL_COUNT + 1);
		if (r < 0)
			return KERN_EXIT_SANDBOX;
	}
	k.main_thread = pthread_self();
	/*
	 * One malloc arena. A thread's arena reserves 64 MiB of address space up front, and
	 * glibc retries an allocation that RLIMIT_AS refused in another arena: with a second
	 * one, user code got up to 64 MiB past its memory limit.
	 */
	mallopt(M_ARENA_MAX, 1);
	if (proto_id_uuid(k.session) < 0 ||
	    (k.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		kern_log(&k, "cannot start: %s", strerror(errno));
		_exit(1);
	}

	/* Threads started from here on never take SIGINT: it must reach Python's main thread. */
	sigemptyset(&sigint);
	sigaddset(&sigint, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigint, &old);
	/*
	 * A running interpreter (a fork of the zygote, or --preinit) is set up before ZeroMQ and
	 * our threads start: what setting up writes to, it copies from the pages it shares with
	 * the zygote, and in a process of one thread that copy needs no other CPU's TLB flushed
	 * (about half of the set-up's time on a virtual machine).
	 */
	if (preinit && kern_python_ready(&k, shim, &sb) < 0)
		_exit(1);
	r = kern_open_sockets(&k);
	if (r == 0)
		r = kern_output_start(&k);
	if (r == 0)
		r = kern_hb_start(&k);
	if (r == 0)
		r = kern_control_start(&k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		kern_log(&k, "cannot start: %s", strerror(-r));
		_exit(1);
	}
	/*
	 * A kernel started from a background job inherits SIGINT ignored, and Python then
	 * installs no KeyboardInterrupt handler: interrupts must work however we were started.
	 */
	if (!preinit)
		signal(SIGINT, SIG_DFL);
	if (!preinit && kern_python_start(&k) < 0)
		_exit(1);
	if (!preinit && kern_python_ready(&k, shim, &sb) < 0)
		_exit(1);
	if (kern_sandbox_lock(&sb) < 0)
		_exit(KERN_EXIT_SANDBOX);
	kern_publish_status(&k, "starting", "{}");
	kern_loop_run(&k);

	kern_shutdown(&k);
	/* Python is not finalised: user threads could make that wait forever. */
	_exit(0);
}

/* `sandcell-kernel --zygote FD`: warms up, then serves on FD; forks go on as kernels. */
static int kern_zygote_main(int argc, char **argv)
{
	static struct kern zk;
	static const char *const profiles[] = {"strict", "moderate", "permissive"};
	char *end = NULL;
	long fd = argc == 3 || argc == 4 ? strtol(argv[2], &end, 10) : -1;
	int k_argc = 0;
	char **k_argv = NULL;

	if (fd < 3 || fd > INT_MAX || !end || *end) {
		fprintf(stderr, "sandcell-kernel: --zygote FD [ROOM]: expected a socket descriptor "
		                "above 2 (ROOM: any text, its length the room for the kernels' "
		                "command lines)\n");
		return 2;
	}
	zk.log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (zk.log_fd < 0 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
		perror("sandcell-kernel: --zygote");
		return 1;
	}
	if (kern_python_start(&zk) < 0 || kern_python_warm(&zk) < 0)
		return 1;
	/* The default profiles' seccomp filters, compiled once for every fork. */
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		struct kern_sandbox sb;
		int r = kern_sandbox_defaults(&sb, profiles[i]);

		if (r == 0)
			r = kern_sandbox_precompile(&sb);
		if (r < 0)
			kern_log(&zk, "zygote: cannot compile the %s seccomp filter ahead: %s",
			         profiles[i], strerror(-r));
	}
	kern_zygote_title(argc, argv, 3, (const char *const *)argv);
	if (kern_zygote_serve(&zk, (int)fd, &k_argc, &k_argv) < 0)
		return 1;
	/* ps and /proc/PID/cmdline show the kernel's command line, not the zygote's. */
	kern_zygote_title(argc, argv, k_argc, (const char *const *)k_argv);
	optind = 0; /* the kernel parses its own command line from scratch */
	return kern_run(k_argc, k_argv, true);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--zygote") == 0)
		return kern_zygote_main(argc, argv);
	return kern_run(argc, argv, false);
}
