/*
 * Sending and receiving Jupyter messages for the kernel: headers for our messages, signing,
 * the iopub lock, and the one place where bad input from a socket is logged and dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/*
 * Writes our header for msg_type into out (KERN_HEADER_MAX bytes); returns its length, or -1
 * when msg_type does not fit. Written by hand, in the order jupyter_client writes: every field
 * is ours and needs no escaping (msg_type is one of the kernel's own names). The msg_id is the
 * session (a fresh UUID for every kernel process) and a counter, as jupyter_client's own
 * sessions make theirs: unique, and no system call per message.
 */
#define KERN_HEADER_MAX 320

static int kern_new_header(struct kern *k, const char *msg_type, char *out)
{
	static atomic_ulong seq;
	char date[PROTO_DATE_LEN + 1];
	int n;

	proto_id_date_now(date);
	n = snprintf(out, KERN_HEADER_MAX,
	             "{\"msg_id\":\"%s_%lu\",\"session\":\"%s\",\"username\":\"kernel\","
	             "\"date\":\"%s\",\"msg_type\":\"%s\",\"version\":\"" PROTO_VERSION "\"}",
	             k->session, atomic_fetch_add(&seq, 1) + 1, k->session, date, msg_type);
	return n > 0 && n < KERN_HEADER_MAX ? n : -1;
}

static struct proto_buf kern_buf(const char *s, size_t len)
{
	return (struct proto_buf){.data = (unsigned char *)(uintptr_t)s, .len = len};
}

int kern_publish(struct kern *k, const char *msg_type, const char *parent_json, const char *content,
                 size_t content_len, const char *metadata, const struct proto_buf *buffers,
                 size_t n_buffers)
{
	_cleanup_(proto_freep) char *parent_copy = NULL;
	char header[KERN_HEADER_MAX];
	char topic[64 + PROTO_UUID_LEN];
	struct proto_buf topic_buf;
	struct proto_wire_out out = {0};
	int header_len = kern_new_header(k, msg_type, header);
	int r;

	if (header_len < 0)
		return -EINVAL;
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
	out.header = kern_buf(header, (size_t)header_len);
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

int kern_send_reply_to(struct kern *k, void *sock, const struct proto_msg *req,
                       const char *parent_json, const char *msg_type, const char *content,
                       size_t content_len)
{
	_cleanup_(proto_freep) char *parent_copy = NULL;
	char header[KERN_HEADER_MAX];
	int header_len = kern_new_header(k, msg_type, header);
	struct proto_wire_out out = {0};

	if (header_len < 0)
		return -EINVAL;
	if (!parent_json) {
		parent_copy = kern_header_dump(req);
		if (!parent_copy)
			return -ENOMEM;
		parent_json = parent_copy;
	}
	out.idents = req->idents;
	out.n_idents = req->n_idents;
	out.header = kern_buf(header, (size_t)header_len);
	out.parent = kern_buf(parent_json, strlen(parent_json));
	out.metadata = kern_buf("{}", 2);
	out.content = kern_buf(content, content_len);
	return proto_zmq_send(sock, &out, k->conn.key, k->conn.key_len);
}

int kern_send_reply(struct kern *k, void *sock, const struct proto_msg *req, const char *msg_type,
                    const char *content, size_t content_len)
{
	return kern_send_reply_to(k, sock, req, NULL, msg_type, content, content_len);
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
