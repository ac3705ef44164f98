/*
 * Wire framing of Jupyter messages: split a received frame list at "<IDS|MSG>" under the size
 * limits, verify and parse it into an owned proto_msg, and build the frame list of an outgoing
 * message. Received frames are borrowed; everything decoded is copied.
 */
#include "proto_wire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto_internal.h"
#include "proto_sign.h"

static bool is_delim(const struct proto_buf *f)
{
	return f->len == PROTO_DELIM_LEN && memcmp(f->data, PROTO_DELIM, PROTO_DELIM_LEN) == 0;
}

int proto_wire_split(const struct proto_buf *frames, size_t n, const struct proto_limits *lim,
                     struct proto_wire_parts *out, struct proto_error *err)
{
	static const char *const json_names[4] = {"header", "parent_header", "metadata", "content"};
	const struct proto_buf *rest;
	size_t total = 0, delim, after;

	memset(out, 0, sizeof(*out));
	if (n > lim->max_frames)
		return proto_error_set(err, EMSGSIZE, "%zu frames, limit %zu", n, lim->max_frames);
	for (size_t i = 0; i < n; i++) {
		if (frames[i].len > lim->max_total - total)
			return proto_error_set(err, EMSGSIZE, "message over %zu bytes",
			                       lim->max_total);
		total += frames[i].len;
	}

	/* jupyter_client splits at the first delimiter; so do we. */
	for (delim = 0; delim < n; delim++)
		if (is_delim(&frames[delim]))
			break;
	if (delim == n)
		return proto_error_set(err, EBADMSG, "no " PROTO_DELIM " delimiter");
	if (delim > lim->max_idents)
		return proto_error_set(err, EMSGSIZE, "%zu identities, limit %zu", delim,
		                       lim->max_idents);
	for (size_t i = 0; i < delim; i++)
		if (frames[i].len > lim->max_ident_len)
			return proto_error_set(err, EMSGSIZE,
			                       "identity %zu has %zu bytes, limit %zu", i,
			                       frames[i].len, lim->max_ident_len);

	after = n - delim - 1;
	if (after < 5)
		return proto_error_set(err, EBADMSG,
		                       "%zu frames after the delimiter, need signature and 4 JSON",
		                       after);
	rest = &frames[delim + 1];
	for (size_t i = 0; i < 4; i++)
		if (rest[1 + i].len > lim->max_json_frame)
			return proto_error_set(err, EMSGSIZE, "%s has %zu bytes, limit %zu",
			                       json_names[i], rest[1 + i].len, lim->max_json_frame);
	for (size_t i = 5; i < after; i++)
		if (rest[i].len > lim->max_buffer)
			return proto_error_set(err, EMSGSIZE, "buffer %zu has %zu bytes, limit %zu",
			                       i - 5, rest[i].len, lim->max_buffer);

	out->idents = delim ? frames : NULL;
	out->n_idents = delim;
	out->signature = rest[0];
	out->header = rest[1];
	out->parent = rest[2];
	out->metadata = rest[3];
	out->content = rest[4];
	out->buffers = after > 5 ? &rest[5] : NULL;
	out->n_buffers = after - 5;
	return 0;
}

/* Whether the header has key as a string without an inner NUL (callers read it as C text). */
static bool header_has_text(const json_t *header, const char *key)
{
	const json_t *v = json_object_get(header, key);

	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* Copies n borrowed frames into an owned array; NULL array when n is 0. */
static int copy_bufs(const struct proto_buf *src, size_t n, struct proto_buf **dst, size_t *dst_n)
{
	struct proto_buf *v;

	*dst = NULL;
	*dst_n = 0;
	if (!n)
		return 0;
	v = proto__calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* Publish the array first: a partial copy then frees cleanly with the message. */
	*dst = v;
	*dst_n = n;
	for (size_t i = 0; i < n; i++)
		if (proto__buf_copy(&v[i], src[i].data, src[i].len) < 0)
			return -ENOMEM;
	return 0;
}

int proto_wire_decode(const struct proto_buf *frames, size_t n, const void *key, size_t keylen,
                      const struct proto_limits *lim, struct proto_msg **out,
                      struct proto_error *err)
{
	_cleanup_(proto_msg_freep) struct proto_msg *m = NULL;
	struct proto_wire_parts p;
	int r;

	*out = NULL;
	r = proto_wire_split(frames, n, lim, &p, err);
	if (r < 0)
		return r;

	/* Check the signature before parsing: unsigned input never reaches the JSON parser. */
	{
		const struct proto_buf signed_parts[4] = {p.header, p.parent, p.metadata,
		                                          p.content};

		if (proto_sign_verify(key, keylen, signed_parts, &p.signature) < 0)
			return proto_error_set(err, EACCES, "bad signature");
	}

	m = proto_msg_new();
	if (!m)
		return proto_error_set(err, ENOMEM, "out of memory");
	r = proto__parse_object(p.header.data, p.header.len, "header", &m->header, err);
	if (r < 0)
		return r;
	if (!header_has_text(m->header, "msg_id"))
		return proto_error_set(err, EBADMSG, "header has no string msg_id");
	if (!header_has_text(m->header, "msg_type"))
		return proto_error_set(err, EBADMSG, "header has no string msg_type");
	r = proto__parse_object(p.parent.data, p.parent.len, "parent_header", &m->parent, err);
	if (r < 0)
		return r;
	r = proto__parse_object(p.metadata.data, p.metadata.len, "metadata", &m->metadata, err);
	if (r < 0)
		return r;
	r = proto__parse_object(p.content.data, p.content.len, "content", &m->content, err);
	if (r < 0)
		return r;

	if (copy_bufs(p.idents, p.n_idents, &m->idents, &m->n_idents) < 0 ||
	    copy_bufs(p.buffers, p.n_buffers, &m->buffers, &m->n_buffers) < 0)
		return proto_error_set(err, ENOMEM, "out of memory");

	*out = TAKE_PTR(m);
	return 0;
}

size_t proto_wire_frame_count(const struct proto_wire_out *m)
{
	/* identities, delimiter, signature, four JSON parts, buffers */
	return m->n_idents + 6 + m->n_buffers;
}

size_t proto_wire_encode(const struct proto_wire_out *m, const void *key, size_t keylen,
                         char sigbuf[65], struct proto_buf *frames)
{
	const struct proto_buf parts[4] = {m->header, m->parent, m->metadata, m->content};
	size_t k = 0, siglen;

	for (size_t i = 0; i < m->n_idents; i++)
		frames[k++] = m->idents[i];
	/* Frames are read-only views; the cast only drops const from the static delimiter. */
	frames[k++] = (struct proto_buf){(unsigned char *)(uintptr_t)PROTO_DELIM, PROTO_DELIM_LEN};
	siglen = proto_sign_hex(key, keylen, parts, sigbuf);
	frames[k++] = (struct proto_buf){(unsigned char *)sigbuf, siglen};
	for (size_t i = 0; i < 4; i++)
		frames[k++] = parts[i];
	for (size_t i = 0; i < m->n_buffers; i++)
		frames[k++] = m->buffers[i];
	return k;
}

/* Dumps j (NULL means {}) as compact UTF-8 JSON into an owned, NUL-terminated buffer. */
static int dump_part(const json_t *j, struct proto_buf *out)
{
	const size_t flags = JSON_COMPACT;
	size_t len;

	out->data = NULL;
	out->len = 0;
	if (!j)
		return proto__buf_copy(out, "{}", 2);
	/*
	 * jansson refuses to dump a string that is not valid UTF-8 (only the *_nocheck
	 * constructors can make one), so a successful dump is valid UTF-8; its failures
	 * (that, reference cycles, no memory) are reported as -ENOMEM.
	 */
	len = json_dumpb(j, NULL, 0, flags);
	if (!len)
		return -ENOMEM;
	out->data = proto__malloc(len + 1);
	if (!out->data)
		return -ENOMEM;
	if (json_dumpb(j, (char *)out->data, len, flags) != len) {
		proto__free(out->data);
		out->data = NULL;
		return -ENOMEM;
	}
	out->data[len] = '\0';
	out->len = len;
	return 0;
}

int proto_wire_out_from_msg(const struct proto_msg *msg, struct proto_wire_out *out)
{
	memset(out, 0, sizeof(*out));
	if (!msg->header)
		return -EINVAL;
	if (dump_part(msg->header, &out->header) < 0 || dump_part(msg->parent, &out->parent) < 0 ||
	    dump_part(msg->metadata, &out->metadata) < 0 ||
	    dump_part(msg->content, &out->content) < 0) {
		proto_wire_out_release(out);
		return -ENOMEM;
	}
	out->idents = msg->idents;
	out->n_idents = msg->n_idents;
	out->buffers = msg->buffers;
	out->n_buffers = msg->n_buffers;
	return 0;
}

void proto_wire_out_release(struct proto_wire_out *out)
{
	proto__free(out->header.data);
	proto__free(out->parent.data);
	proto__free(out->metadata.data);
	proto__free(out->content.data);
	memset(out, 0, sizeof(*out));
}
