/*
 * WebSocket connections to kernels (see gw_ws.h). A WRITEABLE callback writes queued frames
 * while the socket takes them, within a budget, and several small ones leave as one TCP
 * segment; everything queued is bounded by the configuration's ws_queue_cap.
 */
#include "gw_ws.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_kernel.h"
#include "gw_task.h"
#include "proto_utf8.h"

/* What one WRITEABLE callback may write before yielding to other connections. */
#define GW_WS_WRITE_FRAMES 64
#define GW_WS_WRITE_BYTES  (4u << 20)
/* Frames below this size that are written together are corked into few segments. */
#define GW_WS_CORK_BELOW (64u << 10)
/* A receive buffer larger than this is freed after its message: idle sessions keep little. */
#define GW_WS_RX_KEEP (16u << 10)

void gw_ws_open(struct gw_conn *c, struct lws *wsi, struct gw_kernel *k,
                enum proto_ws_framing framing, const char *session_id)
{
	memset(c, 0, sizeof(*c));
	c->wsi = wsi;
	c->srv = k->srv;
	c->framing = framing;
	snprintf(c->session_id, sizeof(c->session_id), "%.120s", session_id);
	gw_kernel_attach(k, c);
	gw_log(k->srv, GW_INFO, "kernel %s: client connected (%s framing, session %s), %zu now",
	       k->id, framing == PROTO_WS_V1 ? "v1" : "legacy", c->session_id, k->n_conns);
}

void gw_ws_close(struct gw_conn *c, int code, const char *reason)
{
	if (c->closing || !c->wsi)
		return;
	c->closing = true;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%.120s", reason);
	lws_callback_on_writable(c->wsi);
}

static int gw_ws_enqueue(struct gw_conn *c, const struct proto_buf *buf, bool binary,
                         bool droppable);

static void gw_ws_dropped_notice(struct gw_conn *c)
{
	char text[256];
	size_t bytes, n = gw_queue_take_dropped(&c->out, &bytes);

	if (c->tasks_only) {
		struct proto_buf b = {.data = (unsigned char *)text};

		snprintf(text, sizeof(text),
		         "{\"event\":\"dropped\",\"messages\":%zu,\"bytes\":%zu,\"message\":"
		         "\"%zu events were dropped because this connection could not keep up\"}",
		         n, bytes, n);
		b.len = strlen(text);
		gw_ws_enqueue(c, &b, false, false);
		return;
	}

	snprintf(text, sizeof(text),
	         "[sandcell] %zu output messages (%zu bytes) were dropped because this connection "
	         "could not keep up.\n",
	         n, bytes);
	gw_ws_notice(c, text, &c->drop_parent);
	free(c->drop_parent.data);
	c->drop_parent.data = NULL;
	c->drop_parent.len = 0;
}

/* Queues a copy of an encoded frame (behind LWS_PRE headroom). */
static int gw_ws_enqueue(struct gw_conn *c, const struct proto_buf *buf, bool binary,
                         bool droppable)
{
	size_t cap = c->srv ? c->srv->cfg->ws_queue_cap : (size_t)32 << 20;

	if (c->closing)
		return -EPIPE;
	/* Output was dropped: say so before the next reply or status, where it happened. */
	if (!droppable && c->out.dropped)
		gw_ws_dropped_notice(c);
	switch (gw_queue_push(&c->out, buf->data, buf->len, binary, droppable, LWS_PRE, cap)) {
	case GW_QUEUE_OK:
		lws_callback_on_writable(c->wsi);
		return 0;
	case GW_QUEUE_DROPPED:
		return -ENOBUFS;
	case GW_QUEUE_OVERFLOW:
		gw_ws_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		            "client too slow: its output queue is full");
		return -ENOBUFS;
	default:
		return -ENOMEM;
	}
}

int gw_ws_send(struct gw_conn *c, const struct proto_ws_msg *m, bool droppable)
{
	struct proto_error err = {{0}};
	struct proto_buf out = {0};
	bool binary = false;
	int r = proto_ws_encode(c->framing, m, &out, &binary, &err);

	if (r < 0) {
		if (c->kernel)
			gw_log(c->kernel->srv, GW_WARN, "kernel %s: not forwarding a %s: %s",
			       c->kernel->id, m->msg_type, err.text);
		return r;
	}
	r = gw_ws_enqueue(c, &out, binary, droppable);
	free(out.data);
	if (r == -ENOBUFS && droppable) {
		/* The notice will name the request whose output was lost. */
		unsigned char *copy = malloc(m->parent.len ? m->parent.len : 1);

		if (copy) {
			memcpy(copy, m->parent.data, m->parent.len);
			free(c->drop_parent.data);
			c->drop_parent.data = copy;
			c->drop_parent.len = m->parent.len;
		}
	}
	return r;
}

int gw_ws_send_text(struct gw_conn *c, const char *text, size_t len, bool droppable)
{
	struct proto_buf b = {.data = (unsigned char *)(uintptr_t)text, .len = len};

	if (!c || !c->wsi)
		return -EPIPE;
	return gw_ws_enqueue(c, &b, false, droppable);
}

void gw_ws_notice(struct gw_conn *c, const char *text, const struct proto_buf *parent)
{
	struct proto_ws_msg m;
	json_t *content = json_pack("{s:s, s:s}", "name", "stderr", "text", text);

	if (content && gw_kernel_make_msg("stream", content, parent, &m) == 0) {
		gw_ws_send(c, &m, false);
		proto_ws_msg_clear(&m);
	}
	json_decref(content);
}

/* Tells the client in words why its message was refused (an error on its iopub). */
static void gw_ws_reject(struct gw_conn *c, const char *why)
{
	char text[300];

	snprintf(text, sizeof(text), "[sandcell] message refused: %s\n", why);
	gw_ws_notice(c, text, NULL);
	if (c->kernel)
		gw_log(c->kernel->srv, GW_INFO, "kernel %s: refused a client message: %s",
		       c->kernel->id, why);
}

/*
 * A text frame on a kernel's channels socket that is a task, not a Jupyter message: a JSON
 * object with "task" or "cancel" and no "header". Only frames that mention those keys are
 * parsed twice.
 */
static bool gw_ws_is_task_frame(const unsigned char *rx, size_t len)
{
	json_t *j;
	bool task;

	if (!memmem(rx, len, "\"task\"", 6) && !memmem(rx, len, "\"cancel\"", 8))
		return false;
	j = json_loadb((const char *)rx, len, 0, NULL);
	task = json_is_object(j) && !json_object_get(j, "header") &&
	       (json_object_get(j, "task") || json_object_get(j, "cancel"));
	json_decref(j);
	return task;
}

static void gw_ws_rx_free(struct gw_conn *c)
{
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
}

/* A message was handled: keep a small buffer for the next one, not a large one. */
static void gw_ws_rx_done(struct gw_conn *c)
{
	c->rx_len = 0;
	if (c->rx_cap > GW_WS_RX_KEEP)
		gw_ws_rx_free(c);
}

int gw_ws_receive(struct gw_conn *c, const void *in, size_t len)
{
	struct gw_kernel *k = c->kernel;
	size_t cap;
	struct proto_ws_msg m = {0};
	struct proto_error err = {{0}};
	int r;

	if ((!k && !c->tasks_only) || !c->srv)
		return 0;
	cap = c->srv->cfg->max_ws_frame;
	if (lws_is_first_fragment(c->wsi)) {
		c->rx_len = 0;
		c->rx_overflow = false;
		c->rx_binary = lws_frame_is_binary(c->wsi);
	}
	if (!c->rx_overflow && c->rx_len + len > cap) {
		c->rx_overflow = true;
		gw_ws_rx_free(c);
	}
	if (!c->rx_overflow) {
		size_t need = c->rx_len + len + 1;

		/*
		 * lws hands over a large frame in pieces of its small receive buffer: grow by
		 * doubling (within the cap), not by a piece at a time.
		 */
		if (need > c->rx_cap) {
			size_t grow = 2 * c->rx_cap < cap + 1 ? 2 * c->rx_cap : cap + 1;
			unsigned char *grown;

			if (grow < need)
				grow = need;
			grown = realloc(c->rx, grow);
			if (!grown) {
				gw_ws_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				            "out of memory");
				return 0;
			}
			c->rx = grown;
			c->rx_cap = grow;
		}
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
	}
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
		return 0;
	if (c->rx_overflow) {
		char why[128];

		snprintf(why, sizeof(why), "message larger than the limit of %zu bytes", cap);
		gw_ws_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
		return 0;
	}
	if (c->tasks_only || (!c->rx_binary && gw_ws_is_task_frame(c->rx, c->rx_len))) {
		if (c->rx_binary) {
			gw_ws_close(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
			            "task frames are JSON text frames");
			return 0;
		}
		if (!proto_utf8_is_valid(c->rx, c->rx_len)) {
			gw_ws_close(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD,
			            "text frame is not valid UTF-8");
			return 0;
		}
		gw_task_ws_frame(c->srv, c, c->rx, c->rx_len);
		gw_ws_rx_done(c);
		return 0;
	}
	/* A legacy binary frame sent as text (a u32be count: starts with 0) is decoded as such. */
	if (!c->rx_binary && !(c->framing == PROTO_WS_LEGACY && c->rx_len && c->rx[0] == 0) &&
	    !proto_utf8_is_valid(c->rx, c->rx_len)) {
		gw_ws_close(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text frame is not valid UTF-8");
		return 0;
	}
	r = proto_ws_decode(c->framing, c->rx, c->rx_len, c->rx_binary, &k->srv->limits, &m, &err);
	gw_ws_rx_done(c);
	if (r < 0) {
		gw_ws_reject(c, err.text[0] ? err.text : strerror(-r));
		return 0;
	}
	r = gw_kernel_send(k, c, &m);
	if (r < 0) {
		char why[160];

		snprintf(why, sizeof(why), "could not pass a %s to the kernel: %s", m.msg_type,
		         r == -EPIPE     ? "the kernel is dead"
		         : r == -ENOBUFS ? "too many execute requests are waiting for it"
		                         : strerror(-r));
		gw_ws_reject(c, why);
	}
	proto_ws_msg_clear(&m);
	return 0;
}

/* Holds (on) or pushes (off) the connection's partial TCP segments; false when not corked. */
static bool gw_ws_cork(struct gw_conn *c, bool on)
{
	int v = on, fd = lws_get_socket_fd(c->wsi);

	return fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v)) == 0;
}

int gw_ws_writeable(struct gw_conn *c)
{
	size_t frames = 0, bytes = 0;
	bool corked = false;
	int r = 0;

	if (c->closing && !c->out.head) {
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
		                 (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	}
	/* Once the queue has room again, say what was dropped meanwhile. */
	if (c->out.dropped && c->srv && c->out.bytes < c->srv->cfg->ws_queue_cap / 2)
		gw_ws_dropped_notice(c);
	if (!c->out.head)
		return c->closing ? -1 : 0;
	/*
	 * A reply comes with a few small iopub messages (status, input, result): written one per
	 * callback, each costs a loop turn and a segment, and wakes the client once more.
	 */
	if (c->out.head->next && c->out.head->len < GW_WS_CORK_BELOW)
		corked = gw_ws_cork(c, true);
	for (;;) {
		struct gw_frame *f = gw_queue_pop(&c->out);
		int n = lws_write(c->wsi, f->data + LWS_PRE, f->len,
		                  f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);

		frames++;
		bytes += f->len;
		if (n < (int)f->len)
			r = -1;
		free(f);
		/* lws allows a second write only once it says the socket takes more. */
		if (r < 0 || !c->out.head || frames == GW_WS_WRITE_FRAMES ||
		    bytes >= GW_WS_WRITE_BYTES || lws_send_pipe_choked(c->wsi))
			break;
	}
	if (corked)
		gw_ws_cork(c, false);
	if (r == 0 && (c->out.head || c->closing))
		lws_callback_on_writable(c->wsi);
	return r;
}

void gw_ws_detach(struct gw_conn *c)
{
	if (c->kernel) {
		struct gw_kernel *k = c->kernel;

		gw_kernel_detach(k, c);
		gw_log(k->srv, GW_INFO, "kernel %s: client closed, %zu left", k->id, k->n_conns);
	}
}

void gw_ws_closed(struct gw_conn *c)
{
	if (c->srv && c->n_tasks)
		gw_task_conn_gone(c->srv, c);
	if (c->kernel) {
		struct gw_kernel *k = c->kernel;

		gw_kernel_detach(k, c);
		gw_log(k->srv, GW_INFO, "kernel %s: client disconnected, %zu left", k->id,
		       k->n_conns);
	}
	gw_queue_clear(&c->out);
	free(c->drop_parent.data);
	c->drop_parent.data = NULL;
	gw_ws_rx_free(c);
	c->wsi = NULL;
}
