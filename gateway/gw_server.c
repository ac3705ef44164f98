/*
 * The lws context, its protocols and the callback that dispatches every event: HTTP requests
 * (REST), WebSocket upgrades and frames (kernel channels), and raw files (ZeroMQ sockets,
 * kernel pidfds, the signalfd). See gw_server.h.
 */
#include "gw_server.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "gw_channel.h"
#include "gw_kernel.h"
#include "gw_rest.h"
#include "gw_static.h"
#include "gw_task.h"
#include "gw_ws.h"
#include "gw_zygote.h"

#define GW_SIGNAL_PROTOCOL "sandcell-signal"

/*
 * lws gives every WebSocket a receive buffer of rx_buffer_size (else pt_serv_buf_size, 64 KiB):
 * a client's messages are small, and a large one arrives in pieces that gw_ws_receive joins,
 * so 4 KiB each keeps a thousand sessions from costing 64 MiB. Sends stay in pieces of
 * GW_WS_TX_PACKET (lws takes rx_buffer_size for that too when tx_packet_size is 0).
 */
#define GW_WS_RX_BUFFER 4096
#define GW_WS_TX_PACKET (64 * 1024)
/* What a WebSocket's SO_SNDBUF was before (Linux doubles it: 4 MiB, its tcp_wmem maximum). */
#define GW_WS_SNDBUF (2 << 20)

static int gw_server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                              void *in, size_t len);

int64_t gw_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gw_log(const struct gw_server *srv, int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char line[1024];
	va_list ap;
	int n;

	if (srv && srv->cfg && level > srv->cfg->log_level)
		return;
	n = snprintf(line, sizeof(line), "sandcell[%d] %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

/* ---- responses ---- */

void gw_http_respond(struct gw_http *h, int status, json_t *body)
{
	free(h->resp);
	h->resp = NULL;
	if (body) {
		h->resp = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(body);
		if (!h->resp)
			status = 500;
	}
	h->resp_len = h->resp ? strlen(h->resp) : 0;
	h->raw = NULL;
	h->ctype = NULL;
	h->etag = NULL;
	h->page = false;
	h->status = status;
	h->responded = true;
	h->waiting = false;
	if (h->wsi)
		lws_callback_on_writable(h->wsi);
}

void gw_http_error(struct gw_http *h, int status, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	gw_http_respond(h, status, json_pack("{s:s}", "message", text));
}

static void gw_http_unwait(struct gw_server *srv, struct gw_http *h)
{
	for (struct gw_http **pp = &srv->waiters; *pp; pp = &(*pp)->next_waiter) {
		if (*pp == h) {
			*pp = h->next_waiter;
			break;
		}
	}
	h->next_waiter = NULL;
	h->waiting = false;
}

void gw_http_wait(struct gw_server *srv, struct gw_http *h, struct gw_kernel *k,
                  enum gw_wait_kind kind)
{
	h->waiting = true;
	h->wait_kernel = k;
	h->wait_kind = kind;
	h->next_waiter = srv->waiters;
	srv->waiters = h;
	/* A kernel from the pool is ready already: answer now. */
	if (kind == GW_WAIT_START && k->ready)
		gw_server_kernel_event(srv, k, GW_WAIT_START, true, NULL);
}

void gw_server_kernel_event(struct gw_server *srv, struct gw_kernel *k, enum gw_wait_kind kind,
                            bool ok, const char *why)
{
	gw_task_kernel_event(srv, k, kind, ok, why);
	for (struct gw_http *h = srv->waiters, *next; h; h = next) {
		next = h->next_waiter;
		if (h->wait_kernel != k || h->wait_kind != kind)
			continue;
		gw_http_unwait(srv, h);
		if (!ok) {
			gw_http_error(h, 500, "%s", why ? why : "kernel failure");
		} else if (kind == GW_WAIT_DELETE) {
			gw_http_respond(h, 204, NULL);
		} else if (h->wait_session) {
			struct gw_session *s = h->wait_session;
			json_t *kernel = gw_kernel_model(k);

			h->wait_session = NULL;
			gw_http_respond(h, h->status ? h->status : 201,
			                json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "id",
			                          s->id, "path", s->path, "name", s->name, "type",
			                          s->type, "kernel", kernel, "notebook", "path",
			                          s->path, "name", s->name));
		} else {
			if (kind == GW_WAIT_START)
				snprintf(h->location, sizeof(h->location), "%sapi/kernels/%s",
				         srv->cfg->base_url, k->id);
			gw_http_respond(h, kind == GW_WAIT_START ? 201 : 200, gw_kernel_model(k));
		}
	}
}

static int gw_http_write(struct gw_server *srv, struct gw_http *h)
{
	unsigned char hdr[LWS_PRE + 2048], *start = hdr + LWS_PRE, *p = start,
	                                   *end = hdr + sizeof(hdr) - 1;
	const unsigned char *data = h->raw ? h->raw : (const unsigned char *)h->resp;
	size_t len = h->raw ? h->raw_len : (h->resp ? h->resp_len : 0);
	struct lws *wsi = h->wsi;

	if (!strcmp(h->method, "HEAD") || h->status == 304) {
		data = NULL; /* headers only */
		len = 0;
	}
	if (lws_add_http_common_headers(wsi, (unsigned int)h->status,
	                                h->ctype ? h->ctype : "application/json", len, &p, end))
		return -1;
	if (h->page && gw_static_headers(wsi, h, &p, end))
		return -1;
	if (h->location[0] && lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
	                                                  (const unsigned char *)h->location,
	                                                  (int)strlen(h->location), &p, end))
		return -1;
	if (h->cors) {
		static const char methods[] = "GET, POST, PATCH, DELETE, OPTIONS";
		static const char headers[] = "Authorization, Content-Type, X-XSRFToken";

		if (lws_add_http_header_by_name(
		            wsi, (const unsigned char *)"access-control-allow-origin:",
		            (const unsigned char *)h->origin, (int)strlen(h->origin), &p, end) ||
		    lws_add_http_header_by_name(
		            wsi, (const unsigned char *)"access-control-allow-methods:",
		            (const unsigned char *)methods, sizeof(methods) - 1, &p, end) ||
		    lws_add_http_header_by_name(
		            wsi, (const unsigned char *)"access-control-allow-headers:",
		            (const unsigned char *)headers, sizeof(headers) - 1, &p, end) ||
		    lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
		                                (const unsigned char *)"Origin", 6, &p, end))
			return -1;
	}
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (data && len) {
		unsigned char *body = malloc(LWS_PRE + len);

		if (!body)
			return -1;
		memcpy(body + LWS_PRE, data, len);
		if (lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < (int)len) {
			free(body);
			return -1;
		}
		free(body);
	}
	gw_log(srv, GW_DBG, "%s /%s -> %d", h->method, h->path, h->status);
	free(h->resp);
	h->resp = NULL;
	h->raw = NULL;
	h->responded = false;
	free(h->body);
	h->body = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- requests ---- */

static const struct {
	enum lws_token_indexes tok;
	const char *name;
} gw_methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
};

/* Constant-time comparison of a presented token with ours. */
static bool gw_token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(a[i % (la ? la : 1)] ^ b[i]);
	return diff == 0 && la == lb;
}

/* True when the request carries our token (header or ?token=), or auth is off. */
static bool gw_authorised(struct gw_server *srv, struct lws *wsi)
{
	const char *token = srv->cfg->token;
	char buf[512];
	const char *v;
	int n;

	if (!token || !token[0])
		return true;
	n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 0) {
		if (!strncasecmp(buf, "token ", 6) && gw_token_equal(buf + 6, token))
			return true;
		if (!strncasecmp(buf, "bearer ", 7) && gw_token_equal(buf + 7, token))
			return true;
	}
	v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
	return v && gw_token_equal(v, token);
}

/*
 * Checks the Origin header: absent (not a browser), the same host, or in the allowed list.
 * Fills h->origin/cors for the response.
 */
static bool gw_origin_ok(struct gw_server *srv, struct lws *wsi, char *origin, size_t olen,
                         bool *cors)
{
	char host[256];
	const char *o;

	*cors = false;
	origin[0] = '\0';
	if (lws_hdr_copy(wsi, origin, (int)olen, WSI_TOKEN_ORIGIN) <= 0)
		return true;
	if (srv->cfg->allow_origins) {
		for (char **a = srv->cfg->allow_origins; *a; a++) {
			if (!strcmp(*a, "*") || !strcmp(*a, origin)) {
				*cors = true;
				return true;
			}
		}
	}
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	o = strstr(origin, "://");
	return o && !strcmp(o + 3, host);
}

/* The path below base_url, or NULL when the URI is outside it. */
static const char *gw_below_base(struct gw_server *srv, const char *uri)
{
	const char *base = srv->cfg->base_url;
	size_t n = strlen(base);

	if (!strncmp(uri, base, n))
		return uri + n;
	if (n > 1 && !strncmp(uri, base, n - 1) && uri[n - 1] == '\0')
		return uri + n - 1;
	return NULL;
}

static int gw_http_begin(struct gw_server *srv, struct gw_http *h, struct lws *wsi, const char *uri)
{
	char clen[32];
	const char *below;

	free(h->body);
	free(h->resp);
	memset(h, 0, sizeof(*h));
	h->wsi = wsi;
	snprintf(h->method, sizeof(h->method), "?");
	for (size_t i = 0; i < sizeof(gw_methods) / sizeof(gw_methods[0]); i++)
		if (lws_hdr_total_length(wsi, gw_methods[i].tok))
			snprintf(h->method, sizeof(h->method), "%s", gw_methods[i].name);
	below = gw_below_base(srv, uri);
	snprintf(h->path, sizeof(h->path), "%s", below ? below : uri);
	if (!gw_origin_ok(srv, wsi, h->origin, sizeof(h->origin), &h->cors)) {
		gw_http_error(h, 403, "origin %s is not allowed", h->origin);
		return 0;
	}
	if (!below) {
		gw_http_error(h, 404, "not found: %s", uri);
		return 0;
	}
	if (!strcmp(h->method, "OPTIONS")) { /* CORS preflight */
		gw_http_respond(h, 204, NULL);
		return 0;
	}
	/* base_url without its slash ("/nb" for "/nb/"): the page's relative links need it. */
	if (!below[0] && uri[0] && uri[strlen(uri) - 1] != '/' &&
	    (!strcmp(h->method, "GET") || !strcmp(h->method, "HEAD"))) {
		snprintf(h->location, sizeof(h->location), "%s", srv->cfg->base_url);
		gw_http_respond(h, 308, NULL);
		return 0;
	}
	/* The notebook page holds no secret: it is served without a token. */
	if (gw_static_serve(srv, h))
		return 0;
	/* GET /api tells clients the server is there, as Jupyter's does, without a token. */
	if (strcmp(h->path, "api") != 0 && strcmp(h->path, "api/") != 0 &&
	    !gw_authorised(srv, wsi)) {
		gw_http_error(h, 403, "Forbidden: a valid token is required");
		return 0;
	}
	if (lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
		char *endp;
		unsigned long long n = strtoull(clen, &endp, 10);

		if (*endp || n > srv->cfg->max_body) {
			gw_http_error(h, 413, "the request body is larger than %zu bytes",
			              srv->cfg->max_body);
			return 0;
		}
		h->body_expected = n > 0;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING))
		h->body_expected = true;
	if (!h->body_expected)
		gw_rest_handle(srv, h);
	return 0;
}

static int gw_http_body(struct gw_server *srv, struct gw_http *h, const void *in, size_t len)
{
	unsigned char *grown;

	if (h->body_too_large || h->responded || !len)
		return 0;
	if (h->body_len + len > srv->cfg->max_body) {
		h->body_too_large = true;
		return 0;
	}
	grown = realloc(h->body, h->body_len + len + 1);
	if (!grown) {
		h->body_too_large = true;
		return 0;
	}
	h->body = grown;
	memcpy(h->body + h->body_len, in, len);
	h->body_len += len;
	h->body[h->body_len] = '\0';
	return 0;
}

/* ---- WebSocket upgrades ---- */

/* The kernel of a channels URI below base_url ("api/kernels/ID/channels"), or NULL. */
static struct gw_kernel *gw_ws_target(struct gw_server *srv, struct lws *wsi)
{
	char uri[1024], id[PROTO_UUID_LEN + 2];
	const char *below;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return NULL;
	below = gw_below_base(srv, uri);
	if (!below || strncmp(below, "api/kernels/", 12) != 0)
		return NULL;
	below += 12;
	if (strlen(below) != PROTO_UUID_LEN + 9 || strcmp(below + PROTO_UUID_LEN, "/channels"))
		return NULL;
	memcpy(id, below, PROTO_UUID_LEN);
	id[PROTO_UUID_LEN] = '\0';
	return gw_kernel_find(srv, id);
}

/* The task WebSocket: /python/ws below base_url. */
static bool gw_ws_is_task_socket(struct gw_server *srv, struct lws *wsi)
{
	char uri[1024];
	const char *below;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return false;
	below = gw_below_base(srv, uri);
	return below && !strcmp(below, "python/ws");
}

static int gw_ws_filter(struct gw_server *srv, struct lws *wsi)
{
	char origin[256];
	bool cors;
	struct gw_kernel *k;

	if (!gw_origin_ok(srv, wsi, origin, sizeof(origin), &cors)) {
		gw_log(srv, GW_INFO, "refused a WebSocket from origin %s", origin);
		lws_return_http_status(wsi, 403, "origin not allowed");
		return -1;
	}
	if (!gw_authorised(srv, wsi)) {
		lws_return_http_status(wsi, 403, "a valid token is required");
		return -1;
	}
	if (gw_ws_is_task_socket(srv, wsi))
		return 0;
	k = gw_ws_target(srv, wsi);
	if (!k || k->deleting) {
		lws_return_http_status(wsi, 404, "no such kernel");
		return -1;
	}
	return 0;
}

static void gw_ws_established(struct gw_server *srv, struct gw_pss *pss, struct lws *wsi)
{
	char buf[256];
	const char *session = lws_get_urlarg_by_name(wsi, "session_id=", buf, sizeof(buf));
	struct gw_kernel *k = gw_ws_target(srv, wsi);
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	enum proto_ws_framing framing =
	        proto && proto->name && !strcmp(proto->name, PROTO_WS_V1_SUBPROTOCOL)
	                ? PROTO_WS_V1
	                : PROTO_WS_LEGACY;

	int one = 1, sndbuf = GW_WS_SNDBUF;

	/* Output must leave as it is produced (lws sets this too; we depend on it). */
	setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * lws sized SO_SNDBUF by the small receive buffer: give output its room back (socket
	 * buffers are the kernel's memory, used only while output is in flight).
	 */
	setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	memset(&pss->ws, 0, sizeof(pss->ws));
	pss->ws.wsi = wsi;
	pss->ws.srv = srv;
	if (gw_ws_is_task_socket(srv, wsi)) {
		pss->ws.tasks_only = true;
		pss->ws.framing = PROTO_WS_LEGACY;
		gw_log(srv, GW_INFO, "task WebSocket connected");
		return;
	}
	if (!k) {
		gw_ws_close(&pss->ws, LWS_CLOSE_STATUS_GOINGAWAY, "the kernel is gone");
		return;
	}
	gw_ws_open(&pss->ws, wsi, k, framing, session ? session : "");
}

/* ---- signals ---- */

static int gw_signal_callback(struct gw_server *srv, struct lws *wsi,
                              enum lws_callback_reasons reason)
{
	struct signalfd_siginfo si;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	if (read(lws_get_socket_fd(wsi), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		gw_log(srv, GW_INFO, "signal %u: shutting down", si.ssi_signo);
		srv->stopping = true;
		lws_cancel_service(srv->cx);
	}
	return 0;
}

/* ---- the one callback ---- */

static int gw_server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                              void *in, size_t len)
{
	struct gw_server *srv = lws_context_user(lws_get_context(wsi));
	struct gw_pss *pss = user;
	const struct lws_protocols *proto = lws_get_protocol(wsi);

	if (proto && proto->name && !strcmp(proto->name, GW_ZMQ_PROTOCOL))
		return gw_channel_callback(wsi, reason);
	if (proto && proto->name && !strcmp(proto->name, GW_PID_PROTOCOL))
		return gw_kernel_pid_callback(wsi, reason);
	if (proto && proto->name && !strcmp(proto->name, GW_ERR_PROTOCOL))
		return gw_kernel_err_callback(wsi, reason);
	if (proto && proto->name && !strcmp(proto->name, GW_SIGNAL_PROTOCOL))
		return gw_signal_callback(srv, wsi, reason);
	if (proto && proto->name && !strcmp(proto->name, GW_ZYGOTE_PROTOCOL))
		return gw_zygote_callback(wsi, reason);

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return gw_http_begin(srv, &pss->http, wsi, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_BODY:
		return gw_http_body(srv, &pss->http, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (pss->http.responded || pss->http.waiting)
			return 0;
		if (pss->http.body_too_large)
			gw_http_error(&pss->http, 413, "the request body is larger than %zu bytes",
			              srv->cfg->max_body);
		else
			gw_rest_handle(srv, &pss->http);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (pss->http.responded)
			return gw_http_write(srv, &pss->http);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss && pss->http.waiting)
			gw_http_unwait(srv, &pss->http);
		if (pss && pss->http.task)
			gw_task_http_gone(srv, &pss->http);
		if (pss) {
			free(pss->http.body);
			free(pss->http.resp);
			pss->http.body = NULL;
			pss->http.resp = NULL;
			pss->http.wsi = NULL;
		}
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return gw_ws_filter(srv, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		gw_ws_established(srv, pss, wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return gw_ws_receive(&pss->ws, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return gw_ws_writeable(&pss->ws);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* Nothing more reaches this client: what the kernel says next is kept for replay.
		 */
		gw_ws_detach(&pss->ws);
		return 0;
	case LWS_CALLBACK_CLOSED:
		gw_ws_closed(&pss->ws);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols gw_protocols[] = {
        {"http", gw_server_callback, sizeof(struct gw_pss), GW_WS_RX_BUFFER, 0, NULL,
         GW_WS_TX_PACKET},
        {PROTO_WS_V1_SUBPROTOCOL, gw_server_callback, sizeof(struct gw_pss), GW_WS_RX_BUFFER, 0,
         NULL, GW_WS_TX_PACKET},
        {GW_ZMQ_PROTOCOL, gw_server_callback, 0, 0, 0, NULL, 0},
        {GW_PID_PROTOCOL, gw_server_callback, 0, 0, 0, NULL, 0},
        {GW_ERR_PROTOCOL, gw_server_callback, 0, 0, 0, NULL, 0},
        {GW_SIGNAL_PROTOCOL, gw_server_callback, 0, 0, 0, NULL, 0},
        {GW_ZYGOTE_PROTOCOL, gw_server_callback, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- setup and teardown ---- */

static int gw_server_runtime_dir(struct gw_server *srv)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (srv->cfg->runtime_dir) {
		snprintf(srv->runtime_dir, sizeof(srv->runtime_dir), "%s", srv->cfg->runtime_dir);
		if (mkdir(srv->runtime_dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		return 0;
	}
	if (!base || stat(base, &st) < 0 || !S_ISDIR(st.st_mode) || access(base, W_OK) < 0)
		base = "/tmp";
	snprintf(srv->runtime_dir, sizeof(srv->runtime_dir), "%s/sandcell-XXXXXX", base);
	if (!mkdtemp(srv->runtime_dir))
		return -errno;
	srv->own_runtime_dir = true;
	return 0;
}

/* Removes what kernels left in the runtime directory (their sockets, connection files). */
static void gw_server_clean_runtime(struct gw_server *srv)
{
	DIR *d = opendir(srv->runtime_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[4400];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* Only files the gateway names: kernel-<id>.json and <id8>-<port> sockets. */
		if (strncmp(e->d_name, "kernel-", 7) && !strchr(e->d_name, '-'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", srv->runtime_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	if (srv->own_runtime_dir)
		rmdir(srv->runtime_dir);
}

struct lws *gw_server_adopt(struct gw_server *srv, int fd, const char *protocol, void *opaque)
{
	lws_adopt_desc_t desc = {0};

	desc.vh = srv->vh;
	desc.type = LWS_ADOPT_RAW_FILE_DESC;
	desc.fd.filefd = fd;
	desc.vh_prot_name = protocol;
	desc.opaque = opaque;
	return lws_adopt_descriptor_vhost_via_info(&desc);
}

static int gw_server_signals(struct gw_server *srv)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	return gw_server_adopt(srv, fd, GW_SIGNAL_PROTOCOL, NULL) ? 0 : -ENOMEM;
}

/*
 * Raises the soft limit of open files for --max-kernels: a kernel costs about a dozen
 * descriptors here (its sockets and ZeroMQ's signalling pipes, a pidfd, a stderr pipe, its
 * clients), and the default soft limit of 1024 would stop at about eighty kernels.
 */
static void gw_server_fd_limit(struct gw_server *srv)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)srv->cfg->max_kernels * 16 + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		gw_log(srv, GW_WARN, "cannot raise the open-file limit to %llu: %s",
		       (unsigned long long)want, strerror(errno));
	else if (rl.rlim_cur < want)
		gw_log(srv, GW_WARN,
		       "open files are limited to %llu: fewer than --max-kernels %d may fit",
		       (unsigned long long)rl.rlim_cur, srv->cfg->max_kernels);
}

int gw_server_init(struct gw_server *srv, struct gw_config *cfg)
{
	static const lws_retry_bo_t retry = {
	        .secs_since_valid_ping = 30,
	        .secs_since_valid_hangup = 90,
	};
	static lws_retry_bo_t policy;
	struct lws_context_creation_info info;
	const struct proto_limits limits = PROTO_LIMITS_DEFAULT;
	int r;

	srv->cfg = cfg;
	srv->limits = limits;
	/* A client's message may be as large as the configured frame cap. */
	if (cfg->max_ws_frame > srv->limits.max_total) {
		srv->limits.max_total = cfg->max_ws_frame;
		srv->limits.max_buffer = cfg->max_ws_frame;
	}
	r = gw_server_runtime_dir(srv);
	if (r < 0) {
		gw_log(srv, GW_ERR, "cannot create the runtime directory: %s", strerror(-r));
		return r;
	}
	gw_server_fd_limit(srv);
	srv->zctx = zmq_ctx_new();
	if (!srv->zctx)
		return -ENOMEM;
	/* Four sockets a kernel, pooled ones included (ZeroMQ's default allows 1023 in all). */
	zmq_ctx_set(srv->zctx, ZMQ_MAX_SOCKETS,
	            4 * (cfg->max_kernels + GW_CONFIG_KERNEL_NAMES * cfg->kernel_pool) + 64);
	policy = retry;
	/* 0 means no pings; otherwise whole seconds, at least 1 (the option allows fractions). */
	if (cfg->ping_interval > 0) {
		double secs = cfg->ping_interval < 1 ? 1 : cfg->ping_interval;

		policy.secs_since_valid_ping = (uint16_t)(secs + 0.5);
		policy.secs_since_valid_hangup = (uint16_t)(3 * policy.secs_since_valid_ping);
	} else {
		policy.secs_since_valid_ping = 0;
		policy.secs_since_valid_hangup = 0;
	}
	memset(&info, 0, sizeof(info));
	info.port = cfg->port; /* 0: lws binds a free port */
	info.iface = cfg->ip;
	info.protocols = gw_protocols;
	info.user = srv;
	info.retry_and_idle_policy = &policy;
	/*
	 * No LWS_SERVER_OPTION_VALIDATE_UTF8: a Jupyter server in gateway mode forwards a
	 * browser's binary legacy frames as text frames; gw_ws_receive checks text itself.
	 */
	info.options = 0;
	/* An IPv4 address on an IPv6 socket makes lws 4.1 listen on every address. */
	if (!strchr(cfg->ip, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.pt_serv_buf_size = 64 * 1024;
	lws_set_log_level(cfg->log_level >= GW_DBG ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR,
	                  NULL);
	srv->cx = lws_create_context(&info);
	if (!srv->cx) {
		gw_log(srv, GW_ERR, "cannot listen on %s:%d", cfg->ip, cfg->port);
		return -EADDRINUSE;
	}
	srv->vh = lws_get_vhost_by_name(srv->cx, "default");
	if (!srv->vh)
		return -EINVAL;
	r = gw_server_signals(srv);
	if (r < 0)
		return r;
	gw_kernel_cull_start(srv);
	gw_task_init(srv);    /* without a history the task API still runs */
	gw_zygote_start(srv); /* warms up while the gateway serves */
	return 0;
}

int gw_server_port(const struct gw_server *srv)
{
	return lws_get_vhost_listen_port(srv->vh);
}

int gw_server_run(struct gw_server *srv)
{
	while (!srv->stopping)
		if (lws_service(srv->cx, 0) < 0)
			break;
	return srv->exit_code;
}

void gw_server_fini(struct gw_server *srv)
{
	srv->stopping = true;
	gw_task_fini(srv);
	if (srv->cx)
		gw_kernel_kill_all(srv);
	gw_zygote_stop(srv);
	while (srv->sessions) {
		struct gw_session *s = srv->sessions;

		srv->sessions = s->next;
		free(s->path);
		free(s->name);
		free(s->type);
		free(s);
	}
	if (srv->cx) {
		lws_sul_cancel(&srv->sul_cull);
		lws_context_destroy(srv->cx);
		srv->cx = NULL;
	}
	if (srv->zctx) {
		zmq_ctx_term(srv->zctx);
		srv->zctx = NULL;
	}
	if (srv->runtime_dir[0])
		gw_server_clean_runtime(srv);
	json_decref(srv->sandbox);
	srv->sandbox = NULL;
}
