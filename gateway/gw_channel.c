/*
 * ZeroMQ sockets inside the lws loop (see gw_channel.h). Each received multipart message goes
 * to gw_kernel_on_message(); nothing here parses it.
 */
#include "gw_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "gw_kernel.h"
#include "gw_server.h"
#include "proto_wire.h"
#include "proto_zmq.h"

/*
 * Messages, and bytes, taken per wake-up before yielding to other connections and to writes:
 * a kernel that streams output fast must not fill a client's out-queue in one drain.
 */
#define GW_DRAIN_BUDGET       64
#define GW_DRAIN_BYTES_BUDGET (4u << 20)

/* What the socket can do now without blocking (ZMQ_POLLIN, ZMQ_POLLOUT), 0 when closed. */
static int gw_channel_events(struct gw_channel *ch)
{
	int events = 0;
	size_t len = sizeof(events);

	if (!ch->sock || zmq_getsockopt(ch->sock, ZMQ_EVENTS, &events, &len) < 0)
		return 0;
	return events;
}

static bool gw_channel_readable(struct gw_channel *ch)
{
	return gw_channel_events(ch) & ZMQ_POLLIN;
}

static void gw_channel_drain(struct gw_channel *ch);

static void gw_channel_unqueue(struct gw_server *srv, struct gw_channel *ch)
{
	if (!ch->drain_queued)
		return;
	if (ch->drain_prev)
		ch->drain_prev->drain_next = ch->drain_next;
	else
		srv->drain_head = ch->drain_next;
	if (ch->drain_next)
		ch->drain_next->drain_prev = ch->drain_prev;
	else
		srv->drain_tail = ch->drain_prev;
	ch->drain_prev = ch->drain_next = NULL;
	ch->drain_queued = false;
	srv->n_drain--;
}

/* Drains the channels queued before this turn; those queued meanwhile wait for the next. */
static void gw_channel_drain_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_server *srv = lws_container_of(sul, struct gw_server, sul_drain);

	srv->drain_scheduled = false;
	for (size_t n = srv->n_drain; n > 0 && srv->drain_head; n--) {
		struct gw_channel *ch = srv->drain_head;

		gw_channel_unqueue(srv, ch);
		gw_channel_drain(ch);
	}
}

static void gw_channel_recheck(struct gw_channel *ch)
{
	struct gw_server *srv = ch->kernel->srv;

	if (!ch->drain_queued) {
		ch->drain_prev = srv->drain_tail;
		ch->drain_next = NULL;
		if (srv->drain_tail)
			srv->drain_tail->drain_next = ch;
		else
			srv->drain_head = ch;
		srv->drain_tail = ch;
		ch->drain_queued = true;
		srv->n_drain++;
	}
	if (!srv->drain_scheduled) {
		lws_sul_schedule(srv->cx, 0, &srv->sul_drain, gw_channel_drain_cb, 1);
		srv->drain_scheduled = true;
	}
}

/* One received message waiting to be dispatched in the kernel's order. */
struct gw_pending {
	struct proto_frames frames;
	enum proto_ws_channel which;
	char date[40]; /* the kernel's header date: the order it sent things in */
	size_t seq;
};

/* Copies the header's "date" (the kernel's clock, microseconds) into out, or "". */
static void gw_channel_date(const struct gw_kernel *k, const struct proto_frames *f, char *out,
                            size_t len)
{
	struct proto_wire_parts parts;
	json_t *h;
	const char *d;

	out[0] = '\0';
	if (proto_wire_split(f->v, f->n, &k->srv->limits, &parts, NULL) < 0)
		return;
	h = json_loadb((const char *)parts.header.data, parts.header.len, 0, NULL);
	d = json_string_value(json_object_get(h, "date"));
	if (d)
		snprintf(out, len, "%s", d);
	json_decref(h);
}

static int gw_pending_cmp(const void *a, const void *b)
{
	const struct gw_pending *x = a, *y = b;
	int c = strcmp(x->date, y->date);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Takes what all of a kernel's sockets hold (within a budget) and dispatches it in the order
 * the kernel sent it: a reply on shell and the output before it on iopub travel on different
 * sockets, and clients expect output, reply, then idle, as the kernel published them.
 */
static void gw_channel_drain(struct gw_channel *ch)
{
	struct gw_kernel *k = ch->kernel;
	static const enum proto_ws_channel order[] = {PROTO_WS_IOPUB, PROTO_WS_SHELL,
	                                              PROTO_WS_CONTROL, PROTO_WS_STDIN};
	struct gw_pending pend[GW_DRAIN_BUDGET];
	size_t n = 0, bytes = 0;

	for (size_t i = 0; i < 4; i++) {
		struct gw_channel *c = &k->ch[order[i]];

		while (n < GW_DRAIN_BUDGET && bytes < GW_DRAIN_BYTES_BUDGET &&
		       gw_channel_readable(c)) {
			struct gw_pending *p = &pend[n];
			int r;

			memset(p, 0, sizeof(*p));
			r = proto_zmq_recv(c->sock, ZMQ_DONTWAIT, &k->srv->limits, &p->frames);
			if (r == -EAGAIN)
				break;
			if (r < 0) {
				gw_log(k->srv, GW_WARN, "kernel %s: %s: dropped a message: %s",
				       k->id, proto_ws_channel_name(c->which), strerror(-r));
				continue;
			}
			p->which = c->which;
			p->seq = n;
			bytes += p->frames.total;
			gw_channel_date(k, &p->frames, p->date, sizeof(p->date));
			n++;
		}
	}
	qsort(pend, n, sizeof(pend[0]), gw_pending_cmp);
	for (size_t i = 0; i < n; i++) {
		/* A message may end the kernel's sockets (a restart closes nothing, a free does).
		 */
		if (k->ch[pend[i].which].sock)
			gw_kernel_on_message(k, pend[i].which, &pend[i].frames);
		proto_frames_clear(&pend[i].frames);
	}
	if (gw_channel_readable(ch))
		gw_channel_recheck(ch);
	for (size_t i = 0; i < 4; i++)
		if (&k->ch[i] != ch && gw_channel_readable(&k->ch[i]))
			gw_channel_recheck(&k->ch[i]);
}

void gw_channel_flush(struct gw_kernel *k)
{
	/* A drain takes from all four sockets; a few rounds empty them within the budget. */
	for (int round = 0; round < 16 && k->ch[PROTO_WS_SHELL].sock; round++) {
		bool any = false;

		for (int i = 0; i < 4; i++)
			any = any || gw_channel_readable(&k->ch[i]);
		if (!any)
			break;
		gw_channel_drain(&k->ch[PROTO_WS_SHELL]);
	}
}

int gw_channel_open(struct gw_kernel *k, enum proto_ws_channel which)
{
	static const enum proto_channel map[] = {
	        [PROTO_WS_SHELL] = PROTO_CHANNEL_SHELL,
	        [PROTO_WS_CONTROL] = PROTO_CHANNEL_CONTROL,
	        [PROTO_WS_STDIN] = PROTO_CHANNEL_STDIN,
	        [PROTO_WS_IOPUB] = PROTO_CHANNEL_IOPUB,
	};
	struct gw_channel *ch = &k->ch[which];
	char ep[512], routing_id[64];
	int zfd, dupfd, linger = 0, ivl = 5, ivl_max = 100;
	size_t len = sizeof(zfd);
	int64_t maxmsg = (int64_t)k->srv->limits.max_total + 65536;

	ch->kernel = k;
	ch->which = which;
	ch->sock = zmq_socket(k->srv->zctx, which == PROTO_WS_IOPUB ? ZMQ_SUB : ZMQ_DEALER);
	if (!ch->sock)
		return -zmq_errno();
	zmq_setsockopt(ch->sock, ZMQ_LINGER, &linger, sizeof(linger));
	/* Kernels bind a few milliseconds after they start: retry quickly. */
	zmq_setsockopt(ch->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	zmq_setsockopt(ch->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
	/* A kernel that sends more than our limits is disconnected, not buffered. */
	zmq_setsockopt(ch->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (which == PROTO_WS_IOPUB) {
		zmq_setsockopt(ch->sock, ZMQ_SUBSCRIBE, "", 0);
	} else {
		/* shell and stdin share one identity: the kernel sends input_request to it. */
		int n = snprintf(routing_id, sizeof(routing_id), "sandcell-%s", k->id);
		zmq_setsockopt(ch->sock, ZMQ_ROUTING_ID, routing_id, (size_t)n);
	}
	if (which == PROTO_WS_STDIN) {
		int one = 1;

		zmq_setsockopt(ch->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	}
	if (proto_conn_endpoint(&k->conn, map[which], ep, sizeof(ep)) < 0 ||
	    zmq_connect(ch->sock, ep) < 0)
		goto fail;
	if (zmq_getsockopt(ch->sock, ZMQ_FD, &zfd, &len) < 0)
		goto fail;
	/* lws closes what it adopts; ZMQ_FD belongs to libzmq, so give lws a duplicate. */
	dupfd = fcntl(zfd, F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0)
		goto fail;
	ch->wsi = gw_server_adopt(k->srv, dupfd, GW_ZMQ_PROTOCOL, ch);
	if (!ch->wsi) {
		errno = ENOMEM;
		goto fail; /* lws closed dupfd */
	}
	gw_channel_recheck(ch);
	return 0;
fail : {
	int e = errno ? -errno : -EIO;

	zmq_close(ch->sock);
	ch->sock = NULL;
	return e;
}
}

bool gw_channel_connected(struct gw_channel *ch)
{
	return gw_channel_events(ch) & ZMQ_POLLOUT;
}

void gw_channel_close(struct gw_channel *ch)
{
	if (ch->wsi) {
		lws_set_opaque_user_data(ch->wsi, NULL);
		lws_set_timeout(ch->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		ch->wsi = NULL;
	}
	if (ch->sock) {
		zmq_close(ch->sock);
		ch->sock = NULL;
	}
	if (ch->kernel)
		gw_channel_unqueue(ch->kernel->srv, ch);
}

int gw_channel_send(struct gw_channel *ch, const struct proto_buf *frames, size_t n)
{
	int r;

	if (!ch->sock)
		return -ENOTCONN;
	for (size_t i = 0; i < n; i++) {
		r = zmq_send(ch->sock, frames[i].data, frames[i].len,
		             ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0));
		if (r < 0)
			return -zmq_errno();
	}
	/* The send may have consumed the readable edge of ZMQ_FD. */
	gw_channel_recheck(ch);
	return 0;
}

int gw_channel_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct gw_channel *ch = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (ch)
			gw_channel_drain(ch);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (ch && ch->wsi == wsi)
			ch->wsi = NULL;
		return 0;
	default:
		return 0;
	}
}
