/*
 * The notebook page: the files of web/, compiled into the gateway (gw_static_data.c, made by
 * gen_static.py) or read from --web-dir, served at "" (index.html) and "static/NAME" below
 * base_url. They hold no secret, so they need no token; the page reads the token from its
 * own URL and presents it to the API.
 */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include <stdbool.h>
#include <stddef.h>

struct gw_server;
struct gw_http;
struct lws;

struct gw_static_file {
	const char *name; /* base name, e.g. "notebook.js"; its type is gw_static_ctype(name) */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted strong ETag */
};

/* Every embedded file, ended by an entry whose name is NULL. */
extern const struct gw_static_file gw_static_files[];

/* The embedded file called name, or NULL. */
const struct gw_static_file *gw_static_find(const char *name);

/* The Content-Type for a file name by its extension ("application/octet-stream" if unknown). */
const char *gw_static_ctype(const char *name);

/* True when name may be served: a plain base name of letters, digits, '-', '_' and '.', not
 * starting with '.', at most 64 bytes. Anything else (slashes, "..") is a 404. */
bool gw_static_name_ok(const char *name);

/*
 * Answers h when it asks for a page file: GET or HEAD of "" (index.html) or "static/NAME",
 * from --web-dir when set, else from the embedded copy; 304 when If-None-Match names its ETag.
 * Returns false for any other request.
 */
bool gw_static_serve(struct gw_server *srv, struct gw_http *h);

/* Adds a page file's headers (ETag, Cache-Control, Content-Security-Policy, ...) to a
 * response being built between *p and end. Returns 0, or -1 when they do not fit. */
int gw_static_headers(struct lws *wsi, const struct gw_http *h, unsigned char **p,
                      unsigned char *end);

#endif
