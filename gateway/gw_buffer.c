/*
 * Bounded out-queues and replay buffers (see gw_buffer.h). No lws, no sockets: pure data.
 */
#include "gw_buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
			*pp = o->next;
			if (r->tail == o)
				r->tail = prev;
			r->bytes -= o->size;
			r->count--;
			r->dropped++;
			r->dropped_bytes += o->size;
			gw_held_free(o);
		}
	}
}

int gw_replay_hold(struct gw_replay *r, const struct proto_ws_msg *m, bool droppable, size_t cap)
{
	size_t size = m->header.len + m->parent.len + m->metadata.len + m->content.len;
	struct gw_held *h;

	for (size_t i = 0; i < m->n_buffers; i++)
		size += m->buffers[i].len;
	if (size > cap) {
		r->dropped++;
		r->dropped_bytes += size;
		return -ENOBUFS;
	}
	gw_replay_make_room(r, size, cap);
	h = gw_held_copy(m, droppable, size);
	if (!h) {
		r->dropped++;
		r->dropped_bytes += size;
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

void gw_replay_clear(struct gw_replay *r)
{
	struct gw_held *h;

	while ((h = gw_replay_pop(r)))
		gw_held_free(h);
}
