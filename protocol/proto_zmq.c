/*
 * Multipart send and receive over ZeroMQ sockets, the only protocol/ file that includes
 * zmq.h. A receive always drains the whole multipart message so that an over-limit or failed
 * message never leaves frames behind to be mistaken for the start of the next one.
 */
#include "proto_zmq.h"

#include <errno.h>
#include <string.h>

#include <zmq.h>

#include "proto_internal.h"
#include "proto_sign.h"

void proto_frames_clear(struct proto_frames *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		proto__free(f->v[i].data);
	proto__free(f->v);
	memset(f, 0, sizeof(*f));
}

/* The largest single frame any role may have: the socket cannot know the roles yet. */
static size_t max_frame(const struct proto_limits *lim)
{
	size_t m = lim->max_ident_len;

	if (lim->max_json_frame > m)
		m = lim->max_json_frame;
	if (lim->max_buffer > m)
		m = lim->max_buffer;
	return m;
}

/* Whether the part just received has more parts after it. */
static bool has_more(void *sock)
{
	int more = 0;
	size_t sz = sizeof(more);

	if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) < 0)
		return false;
	return more != 0;
}

/* Appends a copy of part to f, growing the array up to cap entries. */
static int frames_push(struct proto_frames *f, size_t *cap, zmq_msg_t *part)
{
	size_t len = zmq_msg_size(part);

	if (f->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct proto_buf *nv = proto__calloc(ncap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		if (f->n)
			memcpy(nv, f->v, f->n * sizeof(*nv));
		proto__free(f->v);
		f->v = nv;
		*cap = ncap;
	}
	if (proto__buf_copy(&f->v[f->n], zmq_msg_data(part), len) < 0)
		return -ENOMEM;
	f->n++;
	f->total += len;
	return 0;
}

int proto_zmq_recv(void *sock, int flags, const struct proto_limits *lim, struct proto_frames *out)
{
	struct proto_frames f = {0};
	size_t cap = 0, fmax = max_frame(lim);
	int fail = 0;
	bool more = false;

	do {
		zmq_msg_t part;
		size_t len;

		zmq_msg_init(&part);
		/* Parts of a multipart message arrive together: only the first one can wait. */
		if (zmq_msg_recv(&part, sock, f.n || fail ? 0 : flags) < 0) {
			int e = zmq_errno();

			zmq_msg_close(&part);
			if (f.n == 0 && !fail) {
				/* Nothing consumed yet: report EAGAIN/EINTR/ETERM as is. */
				proto_frames_clear(&f);
				return -e;
			}
			if (e == EINTR)
				continue;
			/* The context is going away mid-message: nothing left to keep in sync. */
			proto_frames_clear(&f);
			return -e;
		}
		len = zmq_msg_size(&part);
		more = has_more(sock);

		if (!fail) {
			if (f.n + 1 > lim->max_frames || len > fmax ||
			    len > lim->max_total - f.total)
				fail = -EMSGSIZE;
			else
				fail = frames_push(&f, &cap, &part);
			if (fail)
				proto_frames_clear(&f);
		}
		zmq_msg_close(&part);
	} while (more);

	if (fail)
		return fail;
	*out = f;
	return 0;
}

int proto_zmq_send_frames(void *sock, const struct proto_buf *frames, size_t n)
{
	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int fl = i + 1 < n ? ZMQ_SNDMORE : 0;

		while (zmq_send(sock, frames[i].data, frames[i].len, fl) < 0) {
			int e = zmq_errno();

			/*
			 * Before the first part nothing is queued and the caller may retry;
			 * after it, giving up would leave half a message, so retry signals.
			 */
			if (e != EINTR || i == 0)
				return -e;
		}
	}
	return 0;
}

int proto_zmq_send(void *sock, const struct proto_wire_out *m, const void *key, size_t keylen)
{
	_cleanup_(proto__freep) struct proto_buf *frames = NULL;
	char sig[PROTO_SIGN_HEX_LEN + 1];
	size_t n;

	frames = proto__calloc(proto_wire_frame_count(m), sizeof(*frames));
	if (!frames)
		return -ENOMEM;
	n = proto_wire_encode(m, key, keylen, sig, frames);
	return proto_zmq_send_frames(sock, frames, n);
}
