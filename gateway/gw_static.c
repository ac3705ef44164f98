/*
 * The notebook page's files: looked up by name in the embedded table (or read from
 * --web-dir), answered with an ETag so a reload costs a 304, and with headers that keep the
 * page's own token out of Referer headers and other origins' scripts out of the page.
 */
#include "gw_static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "gw_server.h"

/* A page file read from --web-dir may not be larger than this. */
#define GW_STATIC_MAX_FILE (8u << 20)

/*
 * What the page may load: its own scripts and styles, images from data: and blob: URLs
 * (outputs), connections to its own origin (the API and WebSockets, ws: included by 'self'),
 * frames from srcdoc (HTML outputs, sandboxed by the page). No inline script.
 */
static const char gw_static_csp[] =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const struct gw_static_file *gw_static_find(const char *name)
{
	for (const struct gw_static_file *f = gw_static_files; f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

const char *gw_static_ctype(const char *name)
{
	static const struct {
		const char *ext, *ctype;
	} types[] = {
	        {".html", "text/html; charset=utf-8"},
	        {".css", "text/css; charset=utf-8"},
	        {".js", "text/javascript; charset=utf-8"},
	        {".json", "application/json"},
	        {".svg", "image/svg+xml"},
	        {".png", "image/png"},
	        {".ico", "image/x-icon"},
	        {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].ctype;
	return "application/octet-stream";
}

bool gw_static_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* Reads dir/name into h->resp. Returns 0, or -errno. */
static int gw_static_read(const char *dir, const char *name, struct gw_http *h)
{
	char path[4096];
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd, err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	/* O_NONBLOCK: a FIFO put there must not stop the loop (it is then refused as not a
	 * regular file). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > GW_STATIC_MAX_FILE) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[got] = '\0';
	free(h->resp);
	h->resp = buf;
	h->resp_len = got;
	return 0;
}

bool gw_static_serve(struct gw_server *srv, struct gw_http *h)
{
	const char *name;
	const struct gw_static_file *f = NULL;
	char inm[64];

	if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "HEAD") != 0)
		return false;
	if (!h->path[0])
		name = "index.html";
	else if (!strncmp(h->path, "static/", 7))
		name = h->path + 7;
	else
		return false;
	if (!gw_static_name_ok(name)) {
		gw_http_error(h, 404, "not found: /%s", h->path);
		return true;
	}
	if (srv->cfg->web_dir) {
		int err = gw_static_read(srv->cfg->web_dir, name, h);

		if (err) {
			/* Missing, not a regular file, or a symlink (O_NOFOLLOW): not there. */
			gw_http_error(h, err == -ENOMEM || err == -EIO ? 500 : 404, "%s/%s: %s",
			              srv->cfg->web_dir, name, strerror(-err));
			return true;
		}
		h->status = 200;
		h->etag = NULL;
	} else {
		f = gw_static_find(name);
		if (!f) {
			gw_http_error(h, 404, "not found: /%s", h->path);
			return true;
		}
		free(h->resp);
		h->resp = NULL;
		h->raw = f->data;
		h->raw_len = f->len;
		h->etag = f->etag;
		h->status = 200;
		if (lws_hdr_copy(h->wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
		    strstr(inm, f->etag))
			h->status = 304;
	}
	h->ctype = gw_static_ctype(name);
	h->page = true;
	h->responded = true;
	lws_callback_on_writable(h->wsi);
	return true;
}

static int gw_static_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                            unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

int gw_static_headers(struct lws *wsi, const struct gw_http *h, unsigned char **p,
                      unsigned char *end)
{
	/* Revalidated on every load (a cheap 304), so a new gateway's page is used at once. */
	if (gw_static_header(wsi, "cache-control:", h->etag ? "no-cache" : "no-store", p, end) ||
	    (h->etag && gw_static_header(wsi, "etag:", h->etag, p, end)) ||
	    gw_static_header(wsi, "x-content-type-options:", "nosniff", p, end) ||
	    gw_static_header(wsi, "referrer-policy:", "no-referrer", p, end))
		return -1;
	if (h->ctype && !strncmp(h->ctype, "text/html", 9) &&
	    gw_static_header(wsi, "content-security-policy:", gw_static_csp, p, end))
		return -1;
	return 0;
}
