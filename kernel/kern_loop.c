/*
 * The main thread: waits on the shell socket with the GIL released, and for each request
 * publishes busy, lets Python (or a built-in handler) answer, flushes output, replies and
 * publishes idle. After a failed execute with stop_on_error it aborts the queued requests.
 */
#include "kern_loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "kern_output.h"
#include "kern_python.h"

/* "execute_request" -> "execute_reply" into buf. */
static void kern_loop_reply_type(const char *req, char *buf, size_t len)
{
	size_t n = strlen(req);

	if (n > 8 && strcmp(req + n - 8, "_request") == 0)
		n -= 8;
	snprintf(buf, len, "%.*s_reply", (int)n, req);
}

/* Makes msg the current request: the parent of iopub messages and the target of stdin. */
static void kern_loop_set_request(struct kern *k, struct proto_msg *msg, char *parent_json)
{
	json_t *allow = json_object_get(msg->content, "allow_stdin");

	pthread_mutex_lock(&k->parent_lock);
	free(k->parent_json);
	k->parent_json = parent_json;
	pthread_mutex_unlock(&k->parent_lock);
	proto_msg_free(k->request);
	k->request = msg;
	k->allow_stdin = json_is_true(allow);
}

/*
 * Replies "aborted" (with the current execution count) to every request already queued on
 * shell; kernel_info, interrupt and shutdown are still answered. Call with the GIL held.
 */
static void kern_loop_abort_queue(struct kern *k)
{
	for (;;) {
		struct proto_msg *m = NULL;
		_cleanup_(proto_freep) char *parent = NULL;
		char reply_type[128];
		char aborted[96];
		int n;
		int r = kern_recv(k, k->shell, ZMQ_DONTWAIT, "shell", &m);

		if (r == -EAGAIN || r == -ETERM || r == -EINTR)
			return;
		if (r < 0)
			continue;
		if (kern_handle_builtin(k, k->shell, m)) {
			proto_msg_free(m);
			continue;
		}
		parent = kern_header_dump(m);
		if (parent) {
			kern_loop_reply_type(proto_msg_type(m), reply_type, sizeof(reply_type));
			kern_publish_status(k, "busy", parent);
			n = snprintf(aborted, sizeof(aborted),
			             "{\"status\":\"aborted\",\"execution_count\":%ld}",
			             kern_python_execution_count());
			kern_send_reply_to(k, k->shell, m, parent, reply_type, aborted, (size_t)n);
			kern_publish_status(k, "idle", parent);
		}
		proto_msg_free(m);
	}
}

/* True when an execute reply failed and its request asked to stop on errors. */
static bool kern_loop_should_abort(const struct proto_msg *req, const char *reply)
{
	json_t *stop = json_object_get(req->content, "stop_on_error");
	json_t *r;
	bool failed;

	if (strcmp(proto_msg_type(req), "execute_request") != 0 || json_is_false(stop))
		return false;
	/* A reply that names no "error" cannot have it as status: most replies are not parsed. */
	if (!strstr(reply, "\"error\""))
		return false;
	r = json_loads(reply, 0, NULL);
	failed = r && json_is_string(json_object_get(r, "status")) &&
	         strcmp(json_string_value(json_object_get(r, "status")), "error") == 0;
	json_decref(r);
	return failed;
}

/* Handles one shell request; steals msg. */
static void kern_loop_handle(struct kern *k, struct proto_msg *msg)
{
	char *parent = kern_header_dump(msg);
	char *content = json_dumps(msg->content, JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *type = proto_msg_type(msg);
	char *reply = NULL;
	char reply_type[128];
	bool abort = false, silent;

	if (!parent || !content) {
		kern_log(k, "out of memory: dropped a %s", type);
		free(parent);
		free(content);
		proto_msg_free(msg);
		return;
	}
	atomic_store(&k->busy, true);
	kern_loop_set_request(k, msg, parent);
	if (kern_handle_builtin(k, k->shell, msg)) {
		atomic_store(&k->busy, false);
		free(content);
		return;
	}
	kern_publish_status(k, "busy", NULL);
	silent = strcmp(type, "execute_request") == 0 &&
	         json_is_true(json_object_get(msg->content, "silent"));
	if (silent)
		atomic_store(&k->output_silent, true);
	/* Like ipykernel, the kernel ignores SIGINT between requests. */
	kern_python_discard_interrupt();
	reply = kern_python_handle(k, type, content);
	kern_output_sync(k);
	atomic_store(&k->output_silent, false);
	/* An interrupt that arrives after the code finished is meant for nothing now. */
	kern_python_discard_interrupt();
	if (reply) {
		kern_loop_reply_type(type, reply_type, sizeof(reply_type));
		kern_send_reply_to(k, k->shell, msg, parent, reply_type, reply, strlen(reply));
		abort = kern_loop_should_abort(msg, reply);
	}
	/* Before idle: a client that sees idle may send the next request, which must run. */
	if (abort)
		kern_loop_abort_queue(k);
	kern_publish_status(k, "idle", NULL);
	atomic_store(&k->busy, false);
	free(reply);
	free(content);
}

void kern_loop_run(struct kern *k)
{
	while (!atomic_load(&k->shutting_down)) {
		zmq_pollitem_t items[2] = {
		        {.socket = k->shell, .events = ZMQ_POLLIN},
		        {.fd = k->wake_fd, .events = ZMQ_POLLIN},
		};
		void *state = kern_python_unlock();
		int r = zmq_poll(items, 2, -1);

		kern_python_lock(state);
		if (r < 0) {
			if (zmq_errno() == EINTR) {
				kern_python_discard_interrupt();
				continue;
			}
			kern_log(k, "shell: poll failed: %s", zmq_strerror(zmq_errno()));
			return;
		}
		/* Take every pending request: the shell fd is edge-triggered. */
		while (!atomic_load(&k->shutting_down)) {
			struct proto_msg *msg = NULL;

			r = kern_recv(k, k->shell, ZMQ_DONTWAIT, "shell", &msg);
			if (r == -EAGAIN || r == -ETERM)
				break;
			if (r == -EINTR) {
				kern_python_discard_interrupt();
				continue;
			}
			if (r < 0)
				continue;
			kern_loop_handle(k, msg);
		}
	}
}
