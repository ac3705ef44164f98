/*
 * sandcell-kernel: a Jupyter kernel for Python. main() owns the one struct kern: it reads the
 * connection file, binds the five sockets, starts the output, heartbeat and control threads,
 * starts Python and runs the shell loop until a shutdown request.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.h>

#include "kern.h"
#include "kern_info.h"
#include "kern_loop.h"
#include "kern_output.h"
#include "kern_python.h"

/* A connection file is a few hundred bytes; refuse anything absurd. */
#define KERN_CONN_FILE_MAX (64 * 1024)
/* ZeroMQ drops a peer that sends a message larger than this; smaller ones reach our limits. */
#define KERN_ZMQ_MAXMSGSIZE ((int64_t)256 << 20)

static void kern_usage(FILE *f)
{
	fputs("Usage: sandcell-kernel -f CONNECTION_FILE [--shim-ipython]\n"
	      "       sandcell-kernel --install-kernelspec PREFIX [--name NAME]\n"
	      "                       [--display-name TEXT] [--interrupt-mode signal|message]\n"
	      "\n"
	      "A Jupyter kernel for Python 3 (messaging protocol " PROTO_VERSION ").\n"
	      "\n"
	      "  -f, --connection-file FILE  ports, transport and key, as written by Jupyter\n"
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
	if (proto_conn_endpoint(&k->conn, ch, ep, sizeof(ep)) < 0 || zmq_bind(s, ep) < 0) {
		kern_log(k, "cannot bind %s to %s: %s", proto_channel_name(ch), ep,
		         zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
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
	int r;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--name") == 0)
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

int main(int argc, char **argv)
{
	static struct kern k;
	static const struct option opts[] = {
	        {"connection-file", required_argument, NULL, 'f'},
	        {"install-kernelspec", required_argument, NULL, 'i'},
	        {"name", required_argument, NULL, 'n'},
	        {"display-name", required_argument, NULL, 'd'},
	        {"interrupt-mode", required_argument, NULL, 'm'},
	        {"shim-ipython", no_argument, NULL, 's'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *conn_path = NULL, *spec_prefix = NULL, *env;
	bool shim = (env = getenv("SANDCELL_SHIM_IPYTHON")) && strcmp(env, "1") == 0;
	struct proto_error err = {{0}};
	const struct proto_limits limits = PROTO_LIMITS_DEFAULT;
	sigset_t sigint, old;
	char *text = NULL;
	size_t len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "f:hV", opts, NULL)) != -1) {
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
	}
	if (spec_prefix)
		return kern_install_spec(argc, argv, spec_prefix);
	if (!conn_path || optind != argc) {
		kern_usage(stderr);
		return 2;
	}

	k.limits = limits;
	k.main_thread = pthread_self();
	k.log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	pthread_mutex_init(&k.iopub_lock, NULL);
	pthread_mutex_init(&k.parent_lock, NULL);
	if (k.log_fd < 0) {
		perror("sandcell-kernel: stderr");
		return 1;
	}
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
	if (proto_id_uuid(k.session) < 0 ||
	    (k.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		kern_log(&k, "cannot start: %s", strerror(errno));
		return 1;
	}

	/* Threads started from here on never take SIGINT: it must reach Python's main thread. */
	sigemptyset(&sigint);
	sigaddset(&sigint, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigint, &old);
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
	signal(SIGINT, SIG_DFL);
	r = kern_python_init(&k, shim);
	if (r < 0)
		_exit(1);
	kern_publish_status(&k, "starting", "{}");
	kern_loop_run(&k);

	kern_shutdown(&k);
	/* Python is not finalised: user threads could make that wait forever. */
	_exit(0);
}
