/*
 * Bounded out-queues and replay buffers (see gw_buffer.h). No lws, no sockets: pure data.
 */
#include "gw_buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

enum gw_queue_verdict gw_queue_push(struct gw_queue *q, const void *data, size_t len, bool binary,
                                    bool droppable, size_t headroom, size_t cap)
{
	struct gw_frame *f;

	if (droppable && q->bytes + len > cap) {
		q->dropped++;
		q->dropped_bytes += len;
		return GW_QUEUE_DROPPED;
	}
	if (q->bytes + len > 2 * cap)
		return GW_QUEUE_OVERFLOW;
	f = malloc(sizeof(*f) + headroom + len);
	if (!f)
		return GW_QUEUE_NOMEM;
	f->next = NULL;
	f->len = len;
	f->binary = binary;
	f->droppable = droppable;
	memcpy(f->data + headroom, data, len);
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->bytes += len;
	q->count++;
	return GW_QUEUE_OK;
}

struct gw_frame *gw_queue_pop(struct gw_queue *q)
{
	struct gw_frame *f = q->head;

	if (!f)
		return NULL;
	q->head = f->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= f->len;
	q->count--;
	f->next = NULL;
	return f;
}

size_t gw_queue_take_dropped(struct gw_queue *q, size_t *bytes)
{
	size_t n = q->dropped;

	*bytes = q->dropped_bytes;
	q->dropped = q->dropped_bytes = 0;
	return n;
}

void gw_queue_clear(struct gw_queue *q)
{
	struct gw_frame *f;

	while ((f = gw_queue_pop(q)))
		free(f);
}

/* Drops entry i, keeping the order. */
static void gw_routes_drop(struct gw_routes *r, size_t i)
{
	free(r->v[i].msg_id);
	free(r->v[i].session);
	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
	r->n--;
	/* A burst of requests is over: give its memory back. */
	if (r->n == 0 && r->cap > 8)
		gw_routes_clear(r);
}

int gw_routes_add(struct gw_routes *r, const char *msg_id, void *conn)
{
	size_t len = strlen(msg_id);
	char *id;

	if (!conn || !len || len >= GW_ROUTE_ID_MAX)
		return 0;
	id = malloc(len + 1);
	if (!id)
		return -ENOMEM;
	memcpy(id, msg_id, len + 1);
	if (r->n == GW_ROUTES)
		gw_routes_drop(r, 0);
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 4;
		struct gw_route *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			free(id);
			return -ENOMEM;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].msg_id = id;
	r->v[r->n].conn = conn;
	r->v[r->n].session = NULL;
	r->n++;
	return 0;
}

/* The index of the newest route for msg_id, or -1. */
static ssize_t gw_routes_index(const struct gw_routes *r, const char *msg_id)
{
	if (!msg_id[0])
		return -1;
	for (size_t i = r->n; i-- > 0;)
		if (!strcmp(r->v[i].msg_id, msg_id))
			return (ssize_t)i;
	return -1;
}

void *gw_routes_find(const struct gw_routes *r, const char *msg_id)
{
	ssize_t i = gw_routes_index(r, msg_id);

	return i < 0 ? NULL : r->v[i].conn;
}

void gw_routes_remove(struct gw_routes *r, const char *msg_id)
{
	ssize_t i = gw_routes_index(r, msg_id);

	if (i >= 0)
		gw_routes_drop(r, (size_t)i);
}

void gw_routes_forget(struct gw_routes *r, const void *conn)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].conn == conn) {
			free(r->v[i].msg_id);
			free(r->v[i].session);
		} else {
			r->v[kept++] = r->v[i];
		}
	}
	r->n = kept;
	if (r->n == 0)
		gw_routes_clear(r);
}

void gw_routes_orphan(struct gw_routes *r, const void *conn, const char *session)
{
	if (!session || !session[0]) {
		gw_routes_forget(r, conn);
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].conn != conn)
			continue;
		r->v[i].conn = NULL;
		r->v[i].session = strdup(session);
	}
	/* Routes nobody can take any more (no memory for their session) go. */
	for (size_t i = 0; i < r->n; i++)
		if (!r->v[i].conn && !r->v[i].session)
			gw_routes_drop(r, i--);
}

const char *gw_routes_orphan_session(const struct gw_routes *r, const char *msg_id)
{
	ssize_t i = gw_routes_index(r, msg_id);

	return i < 0 || r->v[i].conn ? NULL : r->v[i].session;
}

void gw_routes_clear(struct gw_routes *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].msg_id);
		free(r->v[i].session);
	}
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

void gw_held_free(struct gw_held *h)
{
	if (!h)
		return;
	proto_ws_msg_clear(&h->msg);
	free(h);
}

static int gw_copy_buf(struct proto_buf *dst, const struct proto_buf *src)
{
	dst->data = malloc(src->len ? src->len : 1);
	if (!dst->data)
		return -ENOMEM;
	memcpy(dst->data, src->data, src->len);
	dst->len = src->len;
	return 0;
}

/* An owned deep copy of m, or NULL. */
static struct gw_held *gw_held_copy(const struct proto_ws_msg *m, bool droppable, size_t size)
{
	struct gw_held *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return NULL;
	h->droppable = droppable;
	h->size = size;
	h->msg.channel = m->channel;
	memcpy(h->msg.msg_type, m->msg_type, sizeof(h->msg.msg_type));
	memcpy(h->msg.msg_id, m->msg_id, sizeof(h->msg.msg_id));
	r = gw_copy_buf(&h->msg.header, &m->header);
	if (!r)
		r = gw_copy_buf(&h->msg.parent, &m->parent);
	if (!r)
		r = gw_copy_buf(&h->msg.metadata, &m->metadata);
	if (!r)
		r = gw_copy_buf(&h->msg.content, &m->content);
	if (!r && m->n_buffers) {
		h->msg.buffers = calloc(m->n_buffers, sizeof(*h->msg.buffers));
		r = h->msg.buffers ? 0 : -ENOMEM;
		for (size_t i = 0; !r && i < m->n_buffers; i++, h->msg.n_buffers++)
			r = gw_copy_buf(&h->msg.buffers[i], &m->buffers[i]);
	}
	if (r) {
		gw_held_free(h);
		return NULL;
	}
	return h;
}

/* Remembers the parent_header of a dropped message for the notice. */
static void gw_replay_note_parent(struct gw_replay *r, const struct proto_buf *parent)
{
	unsigned char *copy = malloc(parent->len ? parent->len : 1);

	if (!copy)
		return;
	memcpy(copy, parent->data, parent->len);
	free(r->dropped_parent.data);
	r->dropped_parent.data = copy;
	r->dropped_parent.len = parent->len;
}

/*
 * For a `stream` message larger than the cap: new content JSON whose text keeps only its
 * newest part, so that at most max bytes of content remain. Returns 0 with *out owned and *cut
 * the bytes of text left out, or -ENOBUFS when that cannot be done.
 */
static int gw_stream_tail(const struct proto_buf *content, size_t max, struct proto_buf *out,
                          size_t *cut)
{
	json_t *c = json_loadb((const char *)content->data, content->len, 0, NULL);
	json_t *text = json_object_get(c, "text");
	const char *t = json_string_value(text);
	size_t len = json_string_length(text), excess = content->len > max ? content->len - max : 0;
	int r = -ENOBUFS;

	/* Escapes make the JSON longer than the text: cut more on each try. */
	for (int attempt = 0; t && attempt < 6 && excess < len; attempt++) {
		size_t start = excess;
		char *dump;

		while (start < len && ((unsigned char)t[start] & 0xC0) == 0x80)
			start++;
		json_object_set_new(c, "text", json_stringn(t + start, len - start));
		dump = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (dump && strlen(dump) <= max) {
			out->data = (unsigned char *)dump;
			out->len = strlen(dump);
			*cut = start;
			r = 0;
			break;
		}
		free(dump);
		/* The text object was replaced: read it again from the original. */
		json_decref(c);
		c = json_loadb((const char *)content->data, content->len, 0, NULL);
		text = json_object_get(c, "text");
		t = json_string_value(text);
		excess = excess * 2 + 64;
	}
	json_decref(c);
	return r;
}

/*
 * Output that only needs to shrink by over bytes keeps its newest part instead of going
 * whole: true when o was trimmed in place and now frees enough.
 */
static bool gw_replay_trim(struct gw_replay *r, struct gw_held *o, size_t over)
{
	struct proto_buf content;
	size_t cut = 0, old;

	if (!o->droppable || strcmp(o->msg.msg_type, "stream") || o->msg.n_buffers ||
	    o->msg.content.len < over + 256)
		return false;
	if (gw_stream_tail(&o->msg.content, o->msg.content.len - over, &content, &cut))
		return false;
	old = o->msg.content.len;
	free(o->msg.content.data);
	o->msg.content = content;
	o->size = o->size - old + content.len;
	r->bytes = r->bytes - old + content.len;
	r->dropped++;
	r->dropped_bytes += cut;
	gw_replay_note_parent(r, &o->msg.parent);
	return true;
}

/* Unlinks *pp (whose predecessor is prev), counts it as dropped and frees it. */
static void gw_replay_unlink(struct gw_replay *r, struct gw_held **pp, struct gw_held *prev)
{
	struct gw_held *o = *pp;

	*pp = o->next;
	if (r->tail == o)
		r->tail = prev;
	r->bytes -= o->size;
	r->count--;
	r->dropped++;
	r->dropped_bytes += o->size;
	gw_held_free(o);
}

/* Unlinks and frees every droppable (output) message held. */
static void gw_replay_drop_output(struct gw_replay *r)
{
	struct gw_held **pp = &r->head, *prev = NULL;

	while (*pp) {
		struct gw_held *o = *pp;

		if (!o->droppable) {
			prev = o;
			pp = &o->next;
			continue;
		}
		gw_replay_unlink(r, pp, prev);
	}
}

/* Unlinks and frees held messages until need more bytes fit, output first. */
static void gw_replay_make_room(struct gw_replay *r, size_t need, size_t cap)
{
	for (int pass = 0; pass < 2 && r->bytes + need > cap; pass++) {
		struct gw_held **pp = &r->head, *prev = NULL;

		while (*pp && r->bytes + need > cap) {
			struct gw_held *o = *pp;

			if (pass == 0 && !o->droppable) {
				prev = o;
				pp = &o->next;
				continue;
			}
			if (gw_replay_trim(r, o, r->bytes + need - cap)) {
				prev = o;
				pp = &o->next;
				continue;
			}
			gw_replay_note_parent(r, &o->msg.parent);
			gw_replay_unlink(r, pp, prev);
		}
	}
}

int gw_replay_hold(struct gw_replay *r, const struct proto_ws_msg *m, bool droppable, size_t cap)
{
	size_t size = m->header.len + m->parent.len + m->metadata.len + m->content.len;
	struct gw_held *h;

	for (size_t i = 0; i < m->n_buffers; i++)
		size += m->buffers[i].len;
	if (size > cap && droppable && !strcmp(m->msg_type, "stream") && !m->n_buffers) {
		/* Keep the newest part of a large piece of output rather than none of it. */
		size_t rest = size - m->content.len, cut = 0;
		struct proto_ws_msg tail = *m;
		int rc = rest < cap ? gw_stream_tail(&m->content, cap - rest, &tail.content, &cut)
		                    : -ENOBUFS;

		if (rc == 0) {
			r->dropped_bytes += cut;
			r->dropped++;
			gw_replay_note_parent(r, &m->parent);
			/*
			 * Its start is gone: older output would leave a gap before what is kept, so
			 * it goes too (the newest output is kept, without holes).
			 */
			gw_replay_drop_output(r);
			rc = gw_replay_hold(r, &tail, droppable, cap);
			free(tail.content.data);
			return rc;
		}
	}
	if (size > cap) {
		r->dropped++;
		r->dropped_bytes += size;
		gw_replay_note_parent(r, &m->parent);
		return -ENOBUFS;
	}
	gw_replay_make_room(r, size, cap);
	h = gw_held_copy(m, droppable, size);
	if (!h) {
		r->dropped++;
		r->dropped_bytes += size;
		gw_replay_note_parent(r, &m->parent);
		return -ENOMEM;
	}
	if (r->tail)
		r->tail->next = h;
	else
		r->head = h;
	r->tail = h;
	r->bytes += size;
	r->count++;
	return 0;
}

struct gw_held *gw_replay_pop(struct gw_replay *r)
{
	struct gw_held *h = r->head;

	if (!h)
		return NULL;
	r->head = h->next;
	if (!r->head)
		r->tail = NULL;
	r->bytes -= h->size;
	r->count--;
	h->next = NULL;
	return h;
}

size_t gw_replay_take_dropped(struct gw_replay *r, size_t *bytes)
{
	size_t n = r->dropped;

	*bytes = r->dropped_bytes;
	r->dropped = r->dropped_bytes = 0;
	return n;
}

void gw_replay_forget_parent(struct gw_replay *r)
{
	free(r->dropped_parent.data);
	r->dropped_parent.data = NULL;
	r->dropped_parent.len = 0;
}

void gw_replay_clear(struct gw_replay *r)
{
	struct gw_held *h;

	while ((h = gw_replay_pop(r)))
		gw_held_free(h);
	gw_replay_forget_parent(r);
}
