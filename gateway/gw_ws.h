/*
 * Kernel WebSocket connections (/api/kernels/{id}/channels): reassembly and decoding of client
 * frames, a bounded out-queue per connection, notices when output had to be dropped, and
 * closing with a reason. lws owns struct gw_conn (per-session data); the kernel lists it.
 */
#pragma once

#include "gw.h"

/* Called once the upgrade is done: attaches c to k with the negotiated framing. */
void gw_ws_open(struct gw_conn *c, struct lws *wsi, struct gw_kernel *k,
                enum proto_ws_framing framing, const char *session_id);

/*
 * Encodes m for this connection and queues it. droppable output is dropped (and counted,
 * with a notice later) when the queue is over its cap; anything else over twice the cap
 * closes the connection as too slow. Returns 0 or -errno.
 */
int gw_ws_send(struct gw_conn *c, const struct proto_ws_msg *m, bool droppable);

/* Queues a text frame (a task event): droppable ones go first when the client is slow. */
int gw_ws_send_text(struct gw_conn *c, const char *text, size_t len, bool droppable);

/* Queues a stderr `stream` notice from the gateway itself, parented to parent (may be NULL). */
void gw_ws_notice(struct gw_conn *c, const char *text, const struct proto_buf *parent);

/* Closes the connection soon with a status and a reason the client will see. */
void gw_ws_close(struct gw_conn *c, int code, const char *reason);

/* A (part of a) frame arrived. Returns -1 to close the connection. */
int gw_ws_receive(struct gw_conn *c, const void *in, size_t len);

/* The connection may write: sends one queued frame. Returns -1 to close. */
int gw_ws_writeable(struct gw_conn *c);

/* The client said goodbye: stop sending it anything (later output goes to the replay). */
void gw_ws_detach(struct gw_conn *c);

/* The connection is gone: detaches it and frees its queue. */
void gw_ws_closed(struct gw_conn *c);
