/*
 * The state one sandcell-kernel process shares between its threads: the connection, the ZeroMQ
 * sockets, the session and the request being handled. main() owns the one struct kern; each
 * socket belongs to the thread that uses it, except iopub, which any thread may use while it
 * holds iopub_lock.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto_conn.h"
#include "proto_id.h"
#include "proto_limits.h"
#include "proto_msg.h"
#include "proto_wire.h"

#define KERN_VERSION SANDCELL_VERSION /* from meson.build */

enum kern_interrupt_mode {
	KERN_INTERRUPT_SIGNAL,
	KERN_INTERRUPT_MESSAGE,
};

struct kern_output;

struct kern {
	struct proto_conn conn;
	struct proto_limits limits;
	char session[PROTO_UUID_LEN + 1]; /* new for every process start */

	void *zctx;
	int listen_fd[PROTO_CHANNEL_COUNT]; /* bound before the sandbox, or -1: zmq binds itself */
	void *shell;                        /* main thread */
	void *stdin_s;                      /* main thread */
	void *control;                      /* control thread */
	void *hb;                           /* heartbeat thread */
	void *iopub;                        /* any thread, under iopub_lock */
	pthread_mutex_t iopub_lock;

	pthread_t main_thread;
	pthread_t control_thread;
	pthread_t hb_thread;
	bool control_started, hb_started;

	int log_fd;  /* the stderr we were started with; fd 2 itself is captured */
	int wake_fd; /* eventfd: wakes the main loop (shutdown) */
	atomic_bool shutting_down;
	atomic_bool busy;          /* the main thread is handling a shell request */
	atomic_bool output_silent; /* a silent execute runs: captured output is dropped */

	struct kern_output *output;

	/*
	 * The shell request being handled (main thread writes, others read under parent_lock):
	 * its header as JSON text, the parent of every iopub message until the next request.
	 */
	pthread_mutex_t parent_lock;
	char *parent_json;         /* owned */
	struct proto_msg *request; /* owned by the main thread; identities used for stdin */
	bool allow_stdin;

	/* Why the next interrupt comes (a limit the gateway enforces), under parent_lock. */
	char interrupt_reason[160];
};

/* Writes one line to the kernel's original stderr, prefixed with "sandcell-kernel: ". */
void kern_log(struct kern *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Publishes an iopub message. parent_json NULL means the current request's header. content and
 * metadata are JSON text (metadata NULL means {}). Borrowed arguments. Returns 0 or -errno.
 */
int kern_publish(struct kern *k, const char *msg_type, const char *parent_json, const char *content,
                 size_t content_len, const char *metadata, const struct proto_buf *buffers,
                 size_t n_buffers);

/* Publishes {"execution_state": state} with the given parent (NULL: current). */
int kern_publish_status(struct kern *k, const char *state, const char *parent_json);

/*
 * Sends a reply to request req on sock (shell, control or stdin): the identities of req,
 * parent = req's header, msg_type given, content JSON text. Returns 0 or -errno.
 */
int kern_send_reply(struct kern *k, void *sock, const struct proto_msg *req, const char *msg_type,
                    const char *content, size_t content_len);
/* The same, with req's header already dumped as parent_json (NULL: dumped here). */
int kern_send_reply_to(struct kern *k, void *sock, const struct proto_msg *req,
                       const char *parent_json, const char *msg_type, const char *content,
                       size_t content_len);

/* Returns the request's header as compact JSON text (owned) or NULL. */
char *kern_header_dump(const struct proto_msg *m);

/* kernel_info_reply content as JSON text (owned). */
char *kern_info_content(void);

/* Threads: heartbeat echo and control channel. Each returns 0 or -errno. */
int kern_hb_start(struct kern *k);
int kern_control_start(struct kern *k);

/* Answers one decoded control or shell request that needs no Python (kernel_info, shutdown,
 * interrupt). Returns true when it handled msg. */
bool kern_handle_builtin(struct kern *k, void *sock, const struct proto_msg *msg);

/* Receives and decodes one message from sock; logs and returns < 0 for bad input. */
int kern_recv(struct kern *k, void *sock, int flags, const char *chan, struct proto_msg **out);
