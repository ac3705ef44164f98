/*
 * The task API's transports (see gw_task.h): HTTP requests and WebSocket frames become tasks;
 * scripts are read for execute_file; the history and session endpoints; process usage for
 * the metrics events.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_kernel.h"
#include "gw_profile.h"
#include "gw_task_internal.h"
#include "gw_ws.h"
#include "proto_id.h"
#include "proto_utf8.h"

/* ---- process usage ---- */

/* Reads at most size - 1 bytes of a small file into buf, NUL-terminated. Returns the length
 * or -1. */
static ssize_t gw_read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/*
 * Adds pid's CPU ticks and resident pages (and raises *largest to them); returns how many
 * children it listed in kids.
 */
static size_t gw_proc_one(pid_t pid, unsigned long long *ticks, unsigned long long *pages,
                          unsigned long long *largest, pid_t *kids, size_t room)
{
	char path[64], buf[1024], *p;
	size_t found = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (gw_read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');
	if (p) {
		unsigned long long ut = 0, st = 0, cut = 0, cst = 0, rss = 0;
		long long dummy;
		char state;

		/* Fields 3 to 24: state ... utime(14) stime(15) cutime(16) cstime(17) ... rss(24).
		 */
		if (sscanf(p + 2,
		           "%c %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %llu %llu %llu "
		           "%llu "
		           "%lld %lld %lld %lld %lld %lld %llu",
		           &state, &dummy, &dummy, &dummy, &dummy, &dummy, &dummy, &dummy, &dummy,
		           &dummy, &dummy, &ut, &st, &cut, &cst, &dummy, &dummy, &dummy, &dummy,
		           &dummy, &dummy, &rss) == 22) {
			*ticks += ut + st + cut + cst;
			*pages += rss;
			if (rss > *largest)
				*largest = rss;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if (gw_read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	for (char *s = buf, *end; found < room; s = end) {
		long v = strtol(s, &end, 10);

		if (end == s)
			break;
		kids[found++] = (pid_t)v;
	}
	return found;
}

void gw_task_proc_usage(pid_t pid, double *cpu, size_t *rss, size_t *rss_largest)
{
	pid_t todo[64];
	size_t n = 1;
	unsigned long long ticks = 0, pages = 0, largest = 0;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

	todo[0] = pid;
	/* Breadth first over at most 64 processes: the supervisor, its child, the kernel, ... */
	for (size_t i = 0; i < n; i++)
		n += gw_proc_one(todo[i], &ticks, &pages, &largest, todo + n, 64 - n);
	*cpu = (double)ticks / (double)(hz > 0 ? hz : 100);
	*rss = (size_t)pages * (size_t)(page > 0 ? page : 4096);
	if (rss_largest)
		*rss_largest = (size_t)largest * (size_t)(page > 0 ? page : 4096);
}

/* ---- scripts ---- */

/*
 * Reads the script rel below the scripts directory into *out (owned, NUL-terminated). Returns
 * 0 or an HTTP status with why filled.
 */
static int gw_task_read_script(struct gw_server *srv, const char *rel, size_t max, char **out,
                               size_t *len, char *why, size_t why_len)
{
	struct open_how how = {
	        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	struct stat st;
	char *buf;
	size_t got = 0;
	int dir, fd;

	*out = NULL;
	if (!srv->cfg->scripts_dir) {
		snprintf(why, why_len,
		         "execute_file is not available: the operator configured no scripts "
		         "directory (--scripts-dir)");
		return 503;
	}
	if (!proto_task_relative_path_ok(rel)) {
		snprintf(why, why_len,
		         "file_path %.200s: not a relative path inside the scripts "
		         "directory",
		         rel);
		return 400;
	}
	dir = open(srv->cfg->scripts_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		snprintf(why, why_len, "the scripts directory cannot be opened: %s",
		         strerror(errno));
		return 503;
	}
	fd = (int)syscall(SYS_openat2, dir, rel, &how, sizeof(how));
	if (fd < 0) {
		int e = errno;

		close(dir);
		if (e == ENOENT || e == ENOTDIR) {
			snprintf(why, why_len, "file_path %.200s: no such script", rel);
			return 404;
		}
		if (e == EXDEV || e == ELOOP) {
			snprintf(why, why_len,
			         "file_path %.200s: leads out of the scripts directory", rel);
			return 400;
		}
		snprintf(why, why_len, "file_path %.200s: %s", rel, strerror(e));
		return e == EACCES ? 403 : 400;
	}
	close(dir);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, why_len, "file_path %.200s: not a regular file", rel);
		return 400;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		snprintf(why, why_len, "file_path %.200s: larger than the limit of %zu bytes", rel,
		         max);
		return 400;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(why, why_len, "out of memory");
		return 500;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (!proto_utf8_is_valid((const unsigned char *)buf, got) || memchr(buf, '\0', got)) {
		free(buf);
		snprintf(why, why_len, "file_path %.200s: not UTF-8 text", rel);
		return 400;
	}
	*out = buf;
	*len = got;
	return 0;
}

/* ---- making tasks ---- */

/* "task.code: required", the first field error, for the one-line message. */
static const char *gw_first_error(json_t *errors)
{
	static __thread char text[300];
	json_t *e = json_array_get(errors, 0);
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	snprintf(text, sizeof(text), "%s%s%s", field ? field : "", field ? ": " : "",
	         msg ? msg : "malformed");
	return text;
}

static const struct proto_task_limits gw_task_limits = PROTO_TASK_LIMITS_DEFAULT;

/* Answers a request that never became a task: over HTTP, or as an error event. */
static void gw_task_refuse(struct gw_http *h, struct gw_conn *c, json_t *cid, int status,
                           json_t *errors, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

static void gw_task_refuse(struct gw_http *h, struct gw_conn *c, json_t *cid, int status,
                           json_t *errors, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	json_t *body;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	body = json_pack("{s:s, s:o}", "message", text, "errors", errors ? errors : json_array());
	if (h) {
		gw_http_respond(h, status, body);
		return;
	}
	if (!body)
		return;
	json_object_set(body, "id", cid ? cid : json_null());
	json_object_set_new(body, "event", json_string("error"));
	json_object_set_new(body, "status", json_integer(status));
	char *dump = json_dumps(body, JSON_COMPACT);

	if (dump)
		gw_ws_send_text(c, dump, strlen(dump), false);
	free(dump);
	json_decref(body);
}

/* The smallest memory limit a request may ask for: a kernel needs about 20 MB to start. */
#define GW_TASK_MEMORY_MIN ((size_t)32 << 20)

/*
 * Checks the task's limits against the profile its security level names (for interactive, its
 * session's level when it names none): a limit may only be lowered. Field errors go to errors.
 */
static void gw_task_check_limits(struct gw_server *srv, const struct proto_task *p, json_t *errors)
{
	const char *level = p->security_level;
	char name[64], have[32], buf[200];
	const struct gw_profile *prof;
	int kind;

	if (!level && p->type == PROTO_TASK_INTERACTIVE && p->session_id) {
		const struct gw_tsession *s = gw_tsession_find(srv, p->session_id);

		if (s && s->level[0])
			level = s->level;
	}
	if (level)
		snprintf(name, sizeof(name), "sandcell-%s", level);
	else
		snprintf(name, sizeof(name), "%s", srv->cfg->default_kernel);
	kind = gw_config_kernel_profile(srv->cfg, name);
	if (kind < 0)
		return; /* the kernel's start says why */
	prof = &srv->cfg->profiles[kind];
	if (p->memory_limit) {
		size_t bytes = 0;
		bool ok = true;

		if (json_is_string(p->memory_limit))
			ok = gw_profile_parse_size(json_string_value(p->memory_limit), &bytes) == 0;
		else
			bytes = (size_t)json_integer_value(p->memory_limit);
		gw_profile_format_size(prof->memory, have, sizeof(have));
		if (!ok) {
			json_array_append_new(errors,
			                      json_pack("{s:s, s:s}", "field", "task.memory_limit",
			                                "message",
			                                "not a size: write it like 100MB or "
			                                "1.5GiB"));
		} else if (bytes > prof->memory) {
			snprintf(buf, sizeof(buf), "above the %s profile's memory limit of %s",
			         gw_profile_name(prof->kind), have);
			json_array_append_new(errors,
			                      json_pack("{s:s, s:s}", "field", "task.memory_limit",
			                                "message", buf));
		} else if (bytes < GW_TASK_MEMORY_MIN) {
			json_array_append_new(errors, json_pack("{s:s, s:s}", "field",
			                                        "task.memory_limit", "message",
			                                        "below the 32 MiB a kernel needs"));
		}
	}
	if (p->timeout > prof->wall_time) {
		gw_profile_format_seconds(prof->wall_time, have, sizeof(have));
		snprintf(buf, sizeof(buf), "above the %s profile's wall-clock limit of %s",
		         gw_profile_name(prof->kind), have);
		json_array_append_new(
		        errors, json_pack("{s:s, s:s}", "field", "task.timeout", "message", buf));
	}
}

/* Puts an interactive task in its session's queue, starting the session when needed. */
static int gw_task_join_session(struct gw_task *t, char *why, size_t why_len)
{
	struct gw_server *srv = t->srv;
	struct gw_tsession *s;
	const char *level = t->p.security_level;

	if (t->p.session_id)
		snprintf(t->session_id, sizeof(t->session_id), "%s", t->p.session_id);
	else if (proto_id_uuid(t->session_id) < 0)
		return snprintf(why, why_len, "no randomness for a session id"), 500;
	s = gw_tsession_find(srv, t->session_id);
	if (s && (s->dead || !s->kernel)) {
		gw_tsession_end(srv, s, "its kernel is gone");
		s = NULL;
	}
	if (s && !t->p.continue_session) {
		gw_tsession_end(srv, s, "replaced by a new session of the same id");
		s = NULL;
	}
	if (s) {
		const char *have = s->level[0] ? s->level : srv->cfg->default_profile;

		if (level && strcmp(level, have) != 0) {
			snprintf(
			        why, why_len,
			        "session %s runs under the %s security level, not %s: end it first "
			        "(DELETE /python/sessions/%s) or use continue_session false",
			        s->id, have, level, s->id);
			return 409;
		}
		if (s->queued >= GW_TASK_QUEUE_MAX) {
			snprintf(why, why_len, "session %s has %d tasks waiting already", s->id,
			         GW_TASK_QUEUE_MAX);
			return 429;
		}
		gw_task_note_limits(t, s->kernel);
	} else {
		int status;

		s = calloc(1, sizeof(*s));
		if (!s)
			return snprintf(why, why_len, "out of memory"), 500;
		status = gw_task_start_kernel(t, false, why, why_len);
		if (status) {
			free(s);
			return status;
		}
		snprintf(s->id, sizeof(s->id), "%s", t->session_id);
		snprintf(s->level, sizeof(s->level), "%s", level ? level : "");
		s->kernel = t->kernel;
		t->kernel = NULL;
		s->created_us = s->last_us = gw_now_us();
		proto_id_date_now(s->created_iso);
		memcpy(s->last_iso, s->created_iso, sizeof(s->last_iso));
		s->next = srv->tsessions;
		srv->tsessions = s;
		/* A new session has nothing to reset. */
		t->reset_done = true;
		gw_log(srv, GW_INFO, "task session %s started: kernel %s", s->id, s->kernel->id);
		gw_tsession_schedule(srv);
	}
	{
		struct gw_task **pp = &s->queue;

		while (*pp)
			pp = &(*pp)->snext;
		*pp = t;
	}
	s->queued++;
	t->session = s;
	t->phase = GW_TASK_QUEUED;
	gw_task_poke(t);
	return 0;
}

/* Reads what the task runs (scripts) and starts it. Returns 0 or an HTTP status. */
static int gw_task_begin(struct gw_task *t, char *why, size_t why_len)
{
	size_t max = gw_task_limits.max_code;
	int status;

	switch (t->p.type) {
	case PROTO_TASK_EXECUTE:
	case PROTO_TASK_VALIDATE:
		t->code = t->p.code;
		t->code_len = t->p.code_len;
		break;
	case PROTO_TASK_EXECUTE_FILE:
		status = gw_task_read_script(t->srv, t->p.file_path, max, &t->code_owned,
		                             &t->code_len, why, why_len);
		if (status)
			return status;
		t->code = t->code_owned;
		break;
	case PROTO_TASK_INTERACTIVE:
		t->code = t->p.code;
		t->code_len = t->p.code_len;
		return gw_task_join_session(t, why, why_len);
	case PROTO_TASK_BATCH:
		t->runs = calloc(t->p.n_items, sizeof(*t->runs));
		t->results = json_array();
		if (!t->runs || !t->results)
			return snprintf(why, why_len, "out of memory"), 500;
		for (size_t i = 0; i < t->p.n_items; i++) {
			const struct proto_task_item *it = &t->p.items[i];

			if (it->code) {
				t->runs[i].code = it->code;
				t->runs[i].code_len = it->code_len;
				continue;
			}
			status = gw_task_read_script(t->srv, it->file_path, max, &t->runs[i].owned,
			                             &t->runs[i].code_len, why, why_len);
			if (status) {
				char item[64];

				snprintf(item, sizeof(item), "items[%zu]: ", i);
				memmove(why + strlen(item), why, why_len - strlen(item));
				memcpy(why, item, strlen(item));
				why[why_len - 1] = '\0';
				return status;
			}
			t->runs[i].code = t->runs[i].owned;
		}
		break;
	}
	status = gw_task_start_kernel(t, true, why, why_len);
	if (status)
		return status;
	t->phase = GW_TASK_WAIT_KERNEL;
	return 0;
}

/*
 * After a refused parse: the limit checks on the fields that were well-formed, so that one 400
 * lists every problem. The task is parsed again without the fields already in errors (a top-
 * level field of the task, "task.NAME"); when that passes, its limits are checked.
 */
static void gw_task_more_errors(struct gw_server *srv, const json_t *envelope, int expected,
                                bool ws, json_t *errors)
{
	json_t *copy = json_deep_copy(envelope), *task = json_object_get(copy, "task"), *e;
	struct proto_task p;
	size_t i;

	if (!json_is_object(task)) {
		json_decref(copy);
		return;
	}
	json_array_foreach(errors, i, e) {
		const char *f = json_string_value(json_object_get(e, "field"));
		char name[128];

		if (!f || strncmp(f, "task.", 5) != 0)
			continue;
		snprintf(name, sizeof(name), "%s", f + 5);
		name[strcspn(name, ".[")] = '\0';
		if (!strcmp(name, "type")) { /* without its type a task has no fields to check */
			json_decref(copy);
			return;
		}
		/* A required field goes back as a harmless value, or it would be "required". */
		if (!strcmp(name, "code"))
			json_object_set_new(task, name, json_string(""));
		else if (!strcmp(name, "file_path"))
			json_object_set_new(task, name, json_string("placeholder.py"));
		else if (!strcmp(name, "session_id"))
			json_object_set_new(task, name, json_string("placeholder"));
		else
			json_object_del(task, name);
	}
	if (proto_task_parse(copy, expected, ws, &gw_task_limits, &p, NULL) == 0) {
		gw_task_check_limits(srv, &p, errors);
		proto_task_clear(&p);
	}
	json_decref(copy);
}

/*
 * Makes a task of envelope (stolen) for the sink h or c. expected: the type an HTTP path
 * implies, or -1.
 */
static void gw_task_create(struct gw_server *srv, json_t *envelope, int expected, struct gw_http *h,
                           struct gw_conn *c)
{
	json_t *errors = json_array(), *cid = c ? json_object_get(envelope, "id") : NULL;
	struct gw_task *t = calloc(1, sizeof(*t));
	char why[600];
	int r, status;

	if (!t || !errors) {
		free(t);
		json_decref(errors);
		gw_task_refuse(h, c, cid, 500, NULL, "out of memory");
		json_decref(envelope);
		return;
	}
	r = proto_task_parse(envelope, expected, c != NULL, &gw_task_limits, &t->p, errors);
	if (r == -EINVAL)
		gw_task_more_errors(srv, envelope, expected, c != NULL, errors);
	if (r < 0) {
		size_t n = json_array_size(errors);

		if (r == -EINVAL)
			gw_task_refuse(h, c, cid, 400, json_incref(errors),
			               "invalid task: %zu problem%s: %s", n, n == 1 ? "" : "s",
			               gw_first_error(errors));
		else
			gw_task_refuse(h, c, cid, 500, NULL, "out of memory");
		json_decref(errors);
		json_decref(envelope);
		free(t);
		return;
	}
	gw_task_check_limits(srv, &t->p, errors);
	if (json_array_size(errors)) {
		size_t n = json_array_size(errors);

		gw_task_refuse(h, c, cid, 400, json_incref(errors),
		               "invalid task: %zu problem%s: %s", n, n == 1 ? "" : "s",
		               gw_first_error(errors));
		json_decref(errors);
		proto_task_clear(&t->p);
		json_decref(envelope);
		free(t);
		return;
	}
	json_decref(errors);
	t->srv = srv;
	t->envelope = envelope;
	t->cid = cid;
	t->displays = json_array();
	proto_id_uuid(t->task_id);
	if (h) {
		t->sink = GW_SINK_HTTP;
		t->http = h;
		h->task = t;
	} else {
		t->sink = GW_SINK_WS;
		t->conn = c;
		c->n_tasks++;
	}
	t->next = srv->tasks;
	srv->tasks = t;
	status = gw_task_begin(t, why, sizeof(why));
	if (status) {
		gw_task_fail(t, status, "%s", why);
		return;
	}
	gw_log(srv, GW_DBG, "task %s: %s started", t->task_id, proto_task_type_name(t->p.type));
	gw_task_emit(t,
	             json_pack("{s:s, s:s, s:s}", "event", "accepted", "task_id", t->task_id,
	                       "task_type", proto_task_type_name(t->p.type)),
	             false);
}

/* ---- HTTP ---- */

void gw_task_http(struct gw_server *srv, struct gw_http *h, int type)
{
	json_error_t jerr;
	json_t *body;

	if (strcmp(h->method, "POST") != 0) {
		gw_http_error(h, 405, "use POST on /%s", h->path);
		return;
	}
	if (!h->body_len) {
		gw_task_refuse(h, NULL, NULL, 400, NULL,
		               "the request needs a JSON body: {\"task\": {...}}");
		return;
	}
	body = json_loadb((const char *)h->body, h->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body) {
		gw_task_refuse(h, NULL, NULL, 400, NULL, "malformed JSON at line %d, column %d: %s",
		               jerr.line, jerr.column, jerr.text);
		return;
	}
	gw_task_create(srv, body, type, h, NULL);
}

void gw_task_http_gone(struct gw_server *srv, struct gw_http *h)
{
	struct gw_task *t = h->task;

	(void)srv;
	if (!t)
		return;
	h->task = NULL;
	t->http = NULL;
	t->sink = GW_SINK_NONE;
	/* Nobody will read a one-shot result: stop it. A session's code runs on. */
	if (t->p.type != PROTO_TASK_INTERACTIVE)
		gw_task_cancel(t);
}

/* ---- WebSocket ---- */

static struct gw_task *gw_task_by_cid(struct gw_server *srv, struct gw_conn *c, json_t *cid)
{
	for (struct gw_task *t = srv->tasks; t; t = t->next)
		if (t->sink == GW_SINK_WS && t->conn == c && t->cid && json_equal(t->cid, cid))
			return t;
	return NULL;
}

static bool gw_task_cid_ok(json_t *cid)
{
	return (json_is_string(cid) && json_string_length(cid) >= 1 &&
	        json_string_length(cid) <= 128) ||
	       json_is_integer(cid);
}

void gw_task_ws_frame(struct gw_server *srv, struct gw_conn *c, const unsigned char *data,
                      size_t len)
{
	json_error_t jerr;
	json_t *env = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr), *cid;
	struct gw_task *t;

	if (!env) {
		gw_task_refuse(NULL, c, NULL, 400, NULL, "malformed JSON at line %d, column %d: %s",
		               jerr.line, jerr.column, jerr.text);
		return;
	}
	if (!json_is_object(env)) {
		gw_task_refuse(NULL, c, NULL, 400, NULL,
		               "a task frame is a JSON object: {\"id\": ..., \"task\": {...}}");
		json_decref(env);
		return;
	}
	cid = json_object_get(env, "id");
	if (!gw_task_cid_ok(cid)) {
		gw_task_refuse(NULL, c, NULL, 400,
		               json_pack("[{s:s, s:s}]", "field", "id", "message",
		                         cid ? "must be a string of 1 to 128 bytes or an integer"
		                             : "required"),
		               "every task frame needs an id");
		json_decref(env);
		return;
	}
	t = gw_task_by_cid(srv, c, cid);
	if (json_object_get(env, "cancel")) {
		if (!json_is_true(json_object_get(env, "cancel")) || json_object_size(env) != 2)
			gw_task_refuse(NULL, c, cid, 400, NULL,
			               "a cancel frame is {\"id\": ..., \"cancel\": true}");
		else if (!t)
			gw_task_refuse(NULL, c, cid, 404, NULL, "no task with this id is running");
		else
			gw_task_cancel(t);
		json_decref(env);
		return;
	}
	if (t) {
		gw_task_refuse(NULL, c, cid, 409, NULL,
		               "a task with this id is still running on this connection");
		json_decref(env);
		return;
	}
	if (c->n_tasks >= (size_t)srv->cfg->max_tasks_per_connection) {
		gw_task_refuse(NULL, c, cid, 429, NULL,
		               "too many tasks in flight on this connection (the limit is %d)",
		               srv->cfg->max_tasks_per_connection);
		json_decref(env);
		return;
	}
	gw_task_create(srv, env, -1, NULL, c);
}

void gw_task_conn_gone(struct gw_server *srv, struct gw_conn *c)
{
	for (struct gw_task *t = srv->tasks; t; t = t->next) {
		if (t->sink != GW_SINK_WS || t->conn != c)
			continue;
		t->conn = NULL;
		t->sink = GW_SINK_NONE;
		if (t->p.type != PROTO_TASK_INTERACTIVE)
			gw_task_cancel(t);
	}
	c->n_tasks = 0;
}

/* ---- history and sessions ---- */

static json_t *gw_tsession_model(struct gw_server *srv, const struct gw_tsession *s)
{
	int64_t last =
	        s->kernel && s->kernel->active_us > s->last_us ? s->kernel->active_us : s->last_us;
	double left = srv->cfg->session_idle_timeout - (double)(gw_now_us() - last) / 1e6;
	const char *state = s->kernel ? gw_kernel_state_name(s->kernel->state) : "dead";

	return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:s, s:f}", "session_id", s->id,
	                 "kernel_id", s->kernel ? s->kernel->id : NULL, "security_level",
	                 s->level[0] ? s->level : srv->cfg->default_profile, "created",
	                 s->created_iso, "last_activity", s->last_iso, "executions",
	                 (json_int_t)s->executions, "execution_state", state, "expires_in",
	                 s->queue ? srv->cfg->session_idle_timeout : (left > 0 ? left : 0));
}

void gw_task_rest(struct gw_server *srv, struct gw_http *h, char **seg, size_t n)
{
	if (!strcmp(seg[1], "history") && n == 2) {
		struct proto_error err = {{0}};
		char sid[160], before[64], limit_s[32];
		const char *lim;
		long limit = 100;
		json_t *list;

		if (strcmp(h->method, "GET") != 0) {
			gw_http_error(h, 405, "use GET on /python/history");
			return;
		}
		if (!srv->history) {
			gw_http_error(h, 503, "the history database is not available");
			return;
		}
		lim = lws_get_urlarg_by_name(h->wsi, "limit=", limit_s, sizeof(limit_s));
		if (lim) {
			char *end;

			limit = strtol(lim, &end, 10);
			if (!*lim || *end || limit < 1 || limit > 1000) {
				gw_http_error(h, 400, "limit must be an integer from 1 to 1000");
				return;
			}
		}
		/* lws returns a pointer to the value, inside the buffer. */
		list = gw_history_list(
		        srv->history,
		        lws_get_urlarg_by_name(h->wsi, "session_id=", sid, sizeof(sid)),
		        lws_get_urlarg_by_name(h->wsi, "before=", before, sizeof(before)),
		        (size_t)limit, &err);
		if (!list)
			gw_http_error(h, 500, "%s", err.text);
		else
			gw_http_respond(h, 200, json_pack("{s:o}", "executions", list));
		return;
	}
	if (!strcmp(seg[1], "sessions") && n == 2) {
		json_t *list = json_array();

		if (strcmp(h->method, "GET") != 0) {
			gw_http_error(h, 405, "use GET on /python/sessions");
			json_decref(list);
			return;
		}
		for (struct gw_tsession *s = srv->tsessions; s; s = s->next)
			json_array_append_new(list, gw_tsession_model(srv, s));
		gw_http_respond(h, 200, json_pack("{s:o}", "sessions", list));
		return;
	}
	if (!strcmp(seg[1], "sessions") && n == 3) {
		struct gw_tsession *s = gw_tsession_find(srv, seg[2]);

		if (!s) {
			gw_http_error(h, 404, "no task session %.128s", seg[2]);
		} else if (!strcmp(h->method, "GET")) {
			gw_http_respond(h, 200, gw_tsession_model(srv, s));
		} else if (!strcmp(h->method, "DELETE")) {
			gw_tsession_end(srv, s, "deleted by a client");
			gw_http_respond(h, 204, NULL);
		} else {
			gw_http_error(h, 405, "use GET or DELETE on /python/sessions/{id}");
		}
		return;
	}
	gw_http_error(h, 404, "not found: /%s", h->path);
}

/* ---- the server ---- */

int gw_task_init(struct gw_server *srv)
{
	struct proto_error err = {{0}};
	char path[4096];
	const char *p = srv->cfg->history_db;
	int r;

	if (!p) {
		const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

		if (state && state[0] == '/')
			snprintf(path, sizeof(path), "%s/sandcell/history.sqlite3", state);
		else if (home && home[0] == '/')
			snprintf(path, sizeof(path), "%s/.local/state/sandcell/history.sqlite3",
			         home);
		else
			snprintf(path, sizeof(path), ":memory:");
		p = path;
	}
	r = gw_history_open(p, (size_t)srv->cfg->history_max_rows, &srv->history, &err);
	if (r < 0) {
		gw_log(srv, GW_ERR, "%s; the task history is off", err.text);
		return r;
	}
	gw_log(srv, GW_INFO, "task history in %s", p);
	return 0;
}
