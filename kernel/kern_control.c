/*
 * The control channel on its own thread: kernel_info, interrupt and shutdown are answered while
 * the main thread runs user code. Also the handlers of those requests, shared with shell.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "kern.h"
#include "kern_output.h"

/* How long a shutdown waits for the main thread before the process ends anyway. */
#define KERN_SHUTDOWN_GRACE_MS 2000

static void kern_wake_main(struct kern *k)
{
	uint64_t one = 1;

	if (write(k->wake_fd, &one, sizeof(one)) < 0) {
		/* the eventfd is saturated: the main loop will wake anyway */
	}
}

bool kern_handle_builtin(struct kern *k, void *sock, const struct proto_msg *msg)
{
	const char *type = proto_msg_type(msg);
	_cleanup_(proto_freep) char *parent = NULL;
	_cleanup_(proto_freep) char *content = NULL;
	const char *reply_type;

	if (strcmp(type, "kernel_info_request") == 0) {
		reply_type = "kernel_info_reply";
		content = kern_info_content();
	} else if (strcmp(type, "interrupt_request") == 0) {
		reply_type = "interrupt_reply";
		content = strdup("{\"status\":\"ok\"}");
	} else if (strcmp(type, "shutdown_request") == 0) {
		json_t *restart = json_object_get(msg->content, "restart");

		reply_type = "shutdown_reply";
		content = strdup(json_is_true(restart) ? "{\"status\":\"ok\",\"restart\":true}"
		                                       : "{\"status\":\"ok\",\"restart\":false}");
	} else {
		return false;
	}
	parent = kern_header_dump(msg);
	if (!parent || !content) {
		kern_log(k, "out of memory answering %s", type);
		return true;
	}
	kern_publish_status(k, "busy", parent);
	if (strcmp(type, "interrupt_request") == 0) {
		/* The gateway names the limit that ended the cell; Python reports it. */
		const char *reason = json_string_value(json_object_get(msg->content, "reason"));

		pthread_mutex_lock(&k->parent_lock);
		snprintf(k->interrupt_reason, sizeof(k->interrupt_reason), "%s",
		         reason && atomic_load(&k->busy) ? reason : "");
		pthread_mutex_unlock(&k->parent_lock);
		pthread_kill(k->main_thread, SIGINT);
	}
	kern_send_reply_to(k, sock, msg, parent, reply_type, content, strlen(content));
	if (strcmp(type, "shutdown_request") == 0) {
		atomic_store(&k->shutting_down, true);
		kern_publish_status(k, "idle", parent);
		/* A busy main thread is interrupted so that it can reach its loop and exit. */
		if (atomic_load(&k->busy) && !pthread_equal(pthread_self(), k->main_thread))
			pthread_kill(k->main_thread, SIGINT);
		kern_wake_main(k);
		return true;
	}
	kern_publish_status(k, "idle", parent);
	return true;
}

static int64_t kern_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *kern_control_main(void *arg)
{
	struct kern *k = arg;
	int64_t shutdown_at = 0;

	for (;;) {
		zmq_pollitem_t item = {.socket = k->control, .events = ZMQ_POLLIN};
		struct proto_msg *msg = NULL;
		long timeout = -1;
		int r;

		/*
		 * An idle kernel sleeps here until a message comes or the context ends (the main
		 * thread's exit): no timer. Only a shutdown asked for on this channel, which this
		 * thread sets, needs one: the grace the main thread has to reach its loop.
		 */
		if (atomic_load(&k->shutting_down)) {
			if (!shutdown_at)
				shutdown_at = kern_ms();
			timeout = KERN_SHUTDOWN_GRACE_MS - (long)(kern_ms() - shutdown_at);
			if (timeout <= 0) {
				/* User code ignored the interrupt; the reply has long been sent. */
				kern_log(k, "main thread still busy %d ms after shutdown: exiting",
				         KERN_SHUTDOWN_GRACE_MS);
				_exit(0);
			}
		}
		r = zmq_poll(&item, 1, timeout);
		if (r < 0 && zmq_errno() == ETERM)
			break;
		if (r <= 0)
			continue;
		r = kern_recv(k, k->control, ZMQ_DONTWAIT, "control", &msg);
		if (r == -ETERM)
			break;
		if (r < 0)
			continue;
		if (!kern_handle_builtin(k, k->control, msg))
			kern_log(k, "control: ignored a message of type '%s'", proto_msg_type(msg));
		proto_msg_free(msg);
	}
	zmq_close(k->control);
	k->control = NULL;
	return NULL;
}

int kern_control_start(struct kern *k)
{
	int r = pthread_create(&k->control_thread, NULL, kern_control_main, k);

	if (r)
		return -r;
	k->control_started = true;
	return 0;
}
