/*
 * Multipart send and receive over ZeroMQ sockets: the only protocol/ file that includes zmq.h.
 * Received frames are owned by a proto_frames list; nothing here parses JSON.
 */
#pragma once

#include <stddef.h>

#include "proto_limits.h"
#include "proto_util.h"
#include "proto_wire.h"

struct proto_frames {
	struct proto_buf *v; /* owned array of owned frames */
	size_t n;
	size_t total; /* bytes in all frames */
};

void proto_frames_clear(struct proto_frames *f);

/*
 * Receives one whole multipart message (flags: 0 or ZMQ_DONTWAIT). The whole message is always
 * consumed, even when it breaks a limit. Returns 0; -EAGAIN when nothing is pending;
 * -EMSGSIZE when frames, frame sizes or total exceed lim (nothing kept); -EINTR; -ETERM;
 * -ENOMEM; or another -errno from zmq.
 * *out must be empty (zeroed or cleared) and is filled only on success. A frame may not exceed
 * the largest of max_ident_len, max_json_frame and max_buffer (roles are unknown here);
 * proto_wire_split() applies the per-role limits. -EAGAIN and -EINTR are only returned before
 * the first frame; a signal during the rest of a message is retried.
 */
int proto_zmq_recv(void *sock, int flags, const struct proto_limits *lim, struct proto_frames *out);

/*
 * Sends n frames as one multipart message (blocking). Returns 0 or -errno (-EINVAL when n is 0).
 * A signal before the first frame returns -EINTR; after it, sending is retried so that no
 * half message is left on the socket.
 */
int proto_zmq_send_frames(void *sock, const struct proto_buf *frames, size_t n);

/* Encodes, signs and sends m. Returns 0 or -errno. */
int proto_zmq_send(void *sock, const struct proto_wire_out *m, const void *key, size_t keylen);
