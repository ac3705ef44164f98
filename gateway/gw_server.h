/*
 * The HTTP side of the gateway: the lws context and its protocols, request parsing (method,
 * path, query, body with a cap), authentication, origins and CORS, JSON responses, requests
 * that wait for a kernel event, and the dispatch of lws callbacks to the other modules.
 */
#pragma once

#include <jansson.h>

#include "gw.h"

/* What a REST handler sees of one request and fills in as its response. */
struct gw_http {
	struct gw_http *next_waiter; /* in srv->waiters while waiting */
	struct lws *wsi;
	char method[8];
	char path[1024];     /* below base_url, without the query */
	unsigned char *body; /* owned, NUL-terminated */
	size_t body_len;
	bool body_expected, body_too_large;
	char origin[256];
	bool cors; /* add Access-Control-Allow-Origin: origin */
	/* response */
	bool responded;
	int status;
	char *resp;               /* owned: JSON text, or a file read from --web-dir */
	size_t resp_len;          /* bytes of resp */
	const unsigned char *raw; /* an embedded file's bytes (not owned), sent instead of resp */
	size_t raw_len;
	const char *ctype; /* Content-Type (static string); NULL = application/json */
	const char *etag;  /* quoted ETag (static string) or NULL */
	bool page;         /* a page file: add its cache and security headers */
	char location[512];
	/* waiting for a kernel event */
	bool waiting;
	struct gw_kernel *wait_kernel;
	enum gw_wait_kind wait_kind;
	struct gw_session *wait_session; /* POST /api/sessions: answer with the session model */
	struct gw_task *task;            /* a task answering this request (not owned), or NULL */
};

/* Per-session data of every connection on the HTTP and WebSocket protocols. */
struct gw_pss {
	struct gw_http http;
	struct gw_conn ws;
};

/*
 * Creates the runtime directory (unless configured), the ZeroMQ context and the lws context
 * listening on cfg's address. srv borrows cfg. Returns 0 or -errno (logged).
 */
int gw_server_init(struct gw_server *srv, struct gw_config *cfg);

/* Runs the loop until SIGINT/SIGTERM. Returns the exit code. */
int gw_server_run(struct gw_server *srv);

/* Stops every kernel, closes everything and removes the runtime files. */
void gw_server_fini(struct gw_server *srv);

/*
 * Adopts fd (a file descriptor lws may poll and will close) into the loop under the named
 * raw-file protocol, with opaque as its user data. Returns the wsi, or NULL (fd closed).
 */
struct lws *gw_server_adopt(struct gw_server *srv, int fd, const char *protocol, void *opaque);

/* The port actually listened on (for --port 0). */
int gw_server_port(const struct gw_server *srv);

/* Answers h with status and a JSON body (stolen; NULL for none). */
void gw_http_respond(struct gw_http *h, int status, json_t *body);

/* Answers h with {"message": text} and status. */
void gw_http_error(struct gw_http *h, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Parks h until kernel k reports kind (see gw_server_kernel_event). */
void gw_http_wait(struct gw_server *srv, struct gw_http *h, struct gw_kernel *k,
                  enum gw_wait_kind kind);

/*
 * A kernel event: every request waiting on (k, kind) gets its answer (ok: the kernel model,
 * or 204 for a delete; not ok: 500 with why).
 */
void gw_server_kernel_event(struct gw_server *srv, struct gw_kernel *k, enum gw_wait_kind kind,
                            bool ok, const char *why);
