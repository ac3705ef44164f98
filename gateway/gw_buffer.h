/*
 * The gateway's two bounded buffers, kept free of the event loop so that they can be tested
 * alone: a connection's out-queue of encoded frames, and a kernel's replay buffer of
 * messages held while no client is connected. Each owns what it holds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto_ws.h"

/* One queued outgoing frame; data has `headroom` spare bytes before the payload. */
struct gw_frame {
	struct gw_frame *next;
	size_t len;
	bool binary;
	bool droppable; /* output a slow client may lose (stream, display...) */
	unsigned char data[];
};

struct gw_queue {
	struct gw_frame *head, *tail;
	size_t bytes, count;
	size_t dropped, dropped_bytes; /* since the last gw_queue_take_dropped() */
};

enum gw_queue_verdict {
	GW_QUEUE_OK,       /* queued */
	GW_QUEUE_DROPPED,  /* droppable and over cap: counted, not queued */
	GW_QUEUE_OVERFLOW, /* over twice the cap: the client is too slow, close it */
	GW_QUEUE_NOMEM,
};

/*
 * Queues a copy of data (len bytes, placed after headroom spare bytes). A droppable frame is
 * dropped when the queue would exceed cap; any frame when it would exceed twice the cap.
 */
enum gw_queue_verdict gw_queue_push(struct gw_queue *q, const void *data, size_t len, bool binary,
                                    bool droppable, size_t headroom, size_t cap);

/* Takes the oldest frame (owned by the caller, free()), or NULL. */
struct gw_frame *gw_queue_pop(struct gw_queue *q);

/* Returns and resets the count of dropped frames and their bytes. */
size_t gw_queue_take_dropped(struct gw_queue *q, size_t *bytes);

void gw_queue_clear(struct gw_queue *q);

/*
 * Reply routes: which connection sent a request with a given msg_id, so that its reply (and an
 * input_request it causes) go back there. Only requests not answered yet are kept, oldest
 * first, in an array that grows with them: an idle kernel holds none. Past GW_ROUTES the oldest
 * are forgotten, and their late replies go nowhere (or to the replay buffer).
 */
#define GW_ROUTES       512
#define GW_ROUTE_ID_MAX 128 /* longer msg_ids are not remembered: their replies go nowhere */
struct gw_route {
	char *msg_id;  /* owned */
	void *conn;    /* borrowed; NULL once the connection that asked has left */
	char *session; /* owned: the session_id of the connection that left, or NULL */
};
struct gw_routes {
	struct gw_route *v; /* owned, oldest first */
	size_t n, cap;
};

/* Remembers that conn asked msg_id. Returns 0, or -ENOMEM (the request is then not routed). */
int gw_routes_add(struct gw_routes *r, const char *msg_id, void *conn);

/* The connection that asked msg_id (newest first), or NULL. */
void *gw_routes_find(const struct gw_routes *r, const char *msg_id);

/* Forgets the newest request msg_id (its reply came). */
void gw_routes_remove(struct gw_routes *r, const char *msg_id);

/* Forgets every route to conn (it closed). */
void gw_routes_forget(struct gw_routes *r, const void *conn);

/*
 * conn is leaving with the client session session (its WebSocket's session_id): its routes
 * are kept, without the connection, for a connection of the same session to take their
 * replies (a page that reloads keeps its session). An empty session forgets them, and so does
 * running out of memory.
 */
void gw_routes_orphan(struct gw_routes *r, const void *conn, const char *session);

/* The session of the connection that asked msg_id and has left, or NULL. */
const char *gw_routes_orphan_session(const struct gw_routes *r, const char *msg_id);

/* Forgets every route and frees the array. */
void gw_routes_clear(struct gw_routes *r);

/* A message held for replay: owned copies of every part. */
struct gw_held {
	struct gw_held *next;
	bool droppable;
	size_t size;
	struct proto_ws_msg msg;
};

struct gw_replay {
	struct gw_held *head, *tail;
	size_t bytes, count;
	size_t dropped, dropped_bytes;   /* since the last gw_replay_take_dropped() */
	struct proto_buf dropped_parent; /* owned: parent_header of the newest dropped message */
};

/*
 * Holds a copy of m within cap bytes: makes room by dropping the oldest droppable messages,
 * then the oldest of any kind; a message larger than cap is dropped itself. Drops are
 * counted. Returns 0, -ENOBUFS (m dropped) or -ENOMEM.
 */
int gw_replay_hold(struct gw_replay *r, const struct proto_ws_msg *m, bool droppable, size_t cap);

/* Takes the oldest held message (owned by the caller: gw_held_free), or NULL. */
struct gw_held *gw_replay_pop(struct gw_replay *r);

size_t gw_replay_take_dropped(struct gw_replay *r, size_t *bytes);

/* Frees what is held and the remembered parent. */
void gw_replay_clear(struct gw_replay *r);

/* Forgets the parent of dropped messages (after it was reported). */
void gw_replay_forget_parent(struct gw_replay *r);

void gw_held_free(struct gw_held *h);
