/*
 * Sending and receiving Jupyter messages for the kernel: headers for our messages, signing,
 * the iopub lock, and the one place where bad input from a socket is logged and dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "kern.h"
#include "kern_log.h"
#include "proto_zmq.h"

void kern_log(struct kern *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kern_vlog(k->log_fd, fmt, ap);
	va_end(ap);
}

char *kern_header_dump(const struct proto_msg *m)
{
	return json_dumps(m->header, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* Returns our header for msg_type as owned JSON text. */
static char *kern_new_header(struct kern *k, const char *msg_type)
{
	json_t *h = proto_header_new(msg_type, k->session, "kernel");
	char *s;

	if (!h)
		return NULL;
	s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(h);
	return s;
}

static struct proto_buf kern_buf(const char *s, size_t len)
{
	return (struct proto_buf){.data = (unsigned char *)(uintptr_t)s, .len = len};
}

int kern_publish(struct kern *k, const char *msg_type, const char *parent_json, const char *content,
                 size_t content_len, const char *metadata, const struct proto_buf *buffers,
                 size_t n_buffers)
{
	_cleanup_(proto_freep) char *header = kern_new_header(k, msg_type);
	_cleanup_(proto_freep) char *parent_copy = NULL;
	char topic[64 + PROTO_UUID_LEN];
	struct proto_buf topic_buf;
	struct proto_wire_out out = {0};
	int r;

	if (!header)
		return -ENOMEM;
	if (!parent_json) {
		pthread_mutex_lock(&k->parent_lock);
		parent_copy = strdup(k->parent_json ? k->parent_json : "{}");
		pthread_mutex_unlock(&k->parent_lock);
		if (!parent_copy)
			return -ENOMEM;
		parent_json = parent_copy;
	}
	if (!metadata)
		metadata = "{}";
	snprintf(topic, sizeof(topic), "kernel.%s.%s", k->session, msg_type);
	topic_buf = kern_buf(topic, strlen(topic));
	out.idents = &topic_buf;
	out.n_idents = 1;
	out.header = kern_buf(header, strlen(header));
	out.parent = kern_buf(parent_json, strlen(parent_json));
	out.metadata = kern_buf(metadata, strlen(metadata));
	out.content = kern_buf(content, content_len);
	out.buffers = buffers;
	out.n_buffers = n_buffers;

	pthread_mutex_lock(&k->iopub_lock);
	r = proto_zmq_send(k->iopub, &out, k->conn.key, k->conn.key_len);
	pthread_mutex_unlock(&k->iopub_lock);
	return r;
}

int kern_publish_status(struct kern *k, const char *state, const char *parent_json)
{
	char content[64];
	int n = snprintf(content, sizeof(content), "{\"execution_state\":\"%s\"}", state);

	return kern_publish(k, "status", parent_json, content, (size_t)n, NULL, NULL, 0);
}

int kern_send_reply(struct kern *k, void *sock, const struct proto_msg *req, const char *msg_type,
                    const char *content, size_t content_len)
{
	_cleanup_(proto_freep) char *header = kern_new_header(k, msg_type);
	_cleanup_(proto_freep) char *parent = kern_header_dump(req);
	struct proto_wire_out out = {0};

	if (!header || !parent)
		return -ENOMEM;
	out.idents = req->idents;
	out.n_idents = req->n_idents;
	out.header = kern_buf(header, strlen(header));
	out.parent = kern_buf(parent, strlen(parent));
	out.metadata = kern_buf("{}", 2);
	out.content = kern_buf(content, content_len);
	return proto_zmq_send(sock, &out, k->conn.key, k->conn.key_len);
}

int kern_recv(struct kern *k, void *sock, int flags, const char *chan, struct proto_msg **out)
{
	struct proto_frames frames = {0};
	struct proto_error err = {{0}};
	int r;

	*out = NULL;
	r = proto_zmq_recv(sock, flags, &k->limits, &frames);
	if (r == -EMSGSIZE) {
		kern_log(k, "%s: dropped a message over the size limits", chan);
		return r;
	}
	if (r < 0)
		return r;
	r = proto_wire_decode(frames.v, frames.n, k->conn.key, k->conn.key_len, &k->limits, out,
	                      &err);
	if (r < 0)
		kern_log(k, "%s: dropped a message (%s): %s", chan,
		         r == -EACCES ? "bad signature" : strerror(-r), err.text);
	proto_frames_clear(&frames);
	return r;
}
