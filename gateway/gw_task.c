/*
 * The task API's engine (see gw_task.h): tasks, their kernels, their executions and results.
 * The transports (HTTP requests, WebSocket frames, the history and session endpoints) are in
 * gw_task_io.c; both share gw_task_internal.h.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_kernel.h"
#include "gw_task_internal.h"
#include "gw_ws.h"
#include "gw_zygote.h"
#include "proto_id.h"
#include "proto_utf8.h"

/* A borrowed JSON value the task keeps const, for jansson's non-const setters (which only
 * take a reference). */
static json_t *gw_mut(const json_t *v)
{
	return (json_t *)(uintptr_t)v;
}

static const char *gw_or(const char *a, const char *b)
{
	return a ? a : b;
}

/* a, or b (a new reference, e.g. json_null()): for jansson's "O" format. */
static json_t *gw_jor(json_t *a, json_t *b)
{
	return a ? a : b;
}

/* ---- captured text: the start and the end of a stream ---- */

static void gw_text_free(struct gw_text *x)
{
	free(x->head);
	free(x->tail);
	memset(x, 0, sizeof(*x));
}

static void gw_text_add(struct gw_text *x, const char *s, size_t len)
{
	x->total += len;
	if (x->head_len < GW_TASK_HALF) {
		size_t n = len < GW_TASK_HALF - x->head_len ? len : GW_TASK_HALF - x->head_len;

		if (!x->head)
			x->head = malloc(GW_TASK_HALF);
		if (!x->head) {
			x->cut = true;
			return;
		}
		memcpy(x->head + x->head_len, s, n);
		x->head_len += n;
		s += n;
		len -= n;
	}
	if (!len)
		return;
	x->cut = true;
	if (!x->tail)
		x->tail = malloc(GW_TASK_HALF);
	if (!x->tail)
		return;
	/* A ring of the newest GW_TASK_HALF bytes. */
	if (len >= GW_TASK_HALF) {
		memcpy(x->tail, s + len - GW_TASK_HALF, GW_TASK_HALF);
		x->tail_len = GW_TASK_HALF;
		x->tail_pos = 0;
		return;
	}
	for (size_t i = 0; i < len;) {
		size_t at = (x->tail_pos + x->tail_len) % GW_TASK_HALF, n;

		if (x->tail_len == GW_TASK_HALF) {
			at = x->tail_pos;
			n = GW_TASK_HALF - at;
			if (n > len - i)
				n = len - i;
			memcpy(x->tail + at, s + i, n);
			x->tail_pos = (x->tail_pos + n) % GW_TASK_HALF;
		} else {
			n = GW_TASK_HALF - at;
			if (n > GW_TASK_HALF - x->tail_len)
				n = GW_TASK_HALF - x->tail_len;
			if (n > len - i)
				n = len - i;
			memcpy(x->tail + at, s + i, n);
			x->tail_len += n;
		}
		i += n;
	}
}

/* The captured text as a JSON string: all of it, or its start, a marker and its end. */
static json_t *gw_text_json(const struct gw_text *x)
{
	char marker[96], *buf;
	size_t hl = x->head ? proto_utf8_complete_prefix((const unsigned char *)x->head,
	                                                 x->head_len)
	                    : 0,
	       n = 0, skip = 0;
	json_t *j;

	if (!x->cut || !x->tail_len)
		return json_stringn(x->head ? x->head : "", hl);
	snprintf(marker, sizeof(marker), "\n[... %zu bytes left out ...]\n",
	         x->total - x->head_len - x->tail_len);
	buf = malloc(hl + strlen(marker) + x->tail_len);
	if (!buf)
		return json_string("");
	memcpy(buf, x->head, hl);
	n = hl;
	memcpy(buf + n, marker, strlen(marker));
	n += strlen(marker);
	for (size_t i = 0; i < x->tail_len; i++)
		buf[n + i] = x->tail[(x->tail_pos + i) % GW_TASK_HALF];
	/* The tail starts on a whole character. */
	while (skip < 4 && skip < x->tail_len && ((unsigned char)buf[n + skip] & 0xC0) == 0x80)
		skip++;
	memmove(buf + n, buf + n + skip, x->tail_len - skip);
	n += x->tail_len - skip;
	j = json_stringn(buf, n);
	free(buf);
	return j ? j : json_string("");
}

/* ---- events ---- */

void gw_task_emit(struct gw_task *t, json_t *ev, bool droppable)
{
	char *text;

	if (!ev)
		return;
	if (t->sink != GW_SINK_WS || !t->conn) {
		json_decref(ev);
		return;
	}
	json_object_set(ev, "id", t->cid ? t->cid : json_null());
	if (t->p.type == PROTO_TASK_BATCH && !json_object_get(ev, "item") &&
	    t->phase != GW_TASK_DONE)
		json_object_set_new(ev, "item", json_integer((json_int_t)t->item));
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (text)
		gw_ws_send_text(t->conn, text, strlen(text), droppable);
	free(text);
}

/* ---- size and time formats ---- */

void gw_task_format_mb(size_t bytes, char *buf, size_t len)
{
	snprintf(buf, len, "%.1fMB", (double)bytes / 1e6);
}

/* ---- steps: everything that may free runs from this timer ---- */

static void gw_task_step_cb(lws_sorted_usec_list_t *sul);

void gw_task_poke(struct gw_task *t)
{
	lws_sul_schedule(t->srv->cx, 0, &t->sul_step, gw_task_step_cb, 1);
}

/* ---- sessions ---- */

struct gw_tsession *gw_tsession_find(struct gw_server *srv, const char *id)
{
	for (struct gw_tsession *s = srv->tsessions; s; s = s->next)
		if (!strcmp(s->id, id))
			return s;
	return NULL;
}

/* Unlinks and frees s; its kernel is shut down; tasks queued on it are told (later). */
void gw_tsession_end(struct gw_server *srv, struct gw_tsession *s, const char *why)
{
	for (struct gw_tsession **pp = &srv->tsessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (struct gw_task *t = s->queue; t; t = t->snext) {
		t->session = NULL;
		if (!t->lost[0])
			snprintf(t->lost, sizeof(t->lost), "%s", why);
		gw_task_poke(t);
	}
	if (s->kernel) {
		struct gw_kernel *k = s->kernel;

		s->kernel = NULL;
		k->task = NULL;
		gw_log(srv, GW_INFO, "task session %s ended (%s): shutting down kernel %s", s->id,
		       why, k->id);
		gw_kernel_shutdown(k);
	}
	free(s);
}

static void gw_tsession_dequeue(struct gw_tsession *s, struct gw_task *t)
{
	for (struct gw_task **pp = &s->queue; *pp; pp = &(*pp)->snext) {
		if (*pp == t) {
			*pp = t->snext;
			break;
		}
	}
	t->snext = NULL;
	t->session = NULL;
	if (s->queued)
		s->queued--;
	if (s->queue)
		gw_task_poke(s->queue);
}

static void gw_tsession_expire_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_server *srv = lws_container_of(sul, struct gw_server, sul_tsessions);
	double idle = srv->cfg->session_idle_timeout;
	int64_t now = gw_now_us();

	for (struct gw_tsession *s = srv->tsessions, *next; s; s = next) {
		next = s->next;
		int64_t last = s->last_us;

		if (s->queue)
			continue;
		/* A notebook working in the session's kernel keeps it alive too. */
		if (s->kernel && s->kernel->active_us > last)
			last = s->kernel->active_us;
		if (now - last > (int64_t)(idle * 1e6))
			gw_tsession_end(srv, s, "idle timeout");
	}
	gw_tsession_schedule(srv);
}

void gw_tsession_schedule(struct gw_server *srv)
{
	double every = srv->cfg->session_idle_timeout / 4;

	if (!srv->tsessions)
		return;
	if (every < 0.25)
		every = 0.25;
	if (every > 30)
		every = 30;
	lws_sul_schedule(srv->cx, 0, &srv->sul_tsessions, gw_tsession_expire_cb,
	                 (lws_usec_t)(every * LWS_US_PER_SEC));
}

/* ---- kernels ---- */

/* The kernelspec name of a security level (NULL: the operator's default). */
static const char *gw_task_kernel_name(const struct gw_server *srv, const char *level, char *buf,
                                       size_t len)
{
	if (!level)
		return srv->cfg->default_kernel;
	snprintf(buf, len, "sandcell-%s", level);
	return buf;
}

/*
 * Starts a kernel for t (its current item); oneshot: thrown away afterwards. Returns 0, or
 * an HTTP status with why filled.
 */
int gw_task_start_kernel(struct gw_task *t, bool oneshot, char *why, size_t why_len)
{
	struct gw_server *srv = t->srv;
	struct proto_error err = {{0}};
	struct gw_kernel *k = NULL;
	char name_buf[64];
	const char *name =
	        gw_task_kernel_name(srv, t->p.security_level, name_buf, sizeof(name_buf));
	json_t *narrow = json_object();
	int r;

	if (!narrow) {
		snprintf(why, why_len, "out of memory");
		return 500;
	}
	/* A timeout needs no kernel of its own: each execution carries its wall-clock limit. */
	if (t->p.memory_limit)
		json_object_set(narrow, "memory", gw_mut(t->p.memory_limit));
	if (t->p.allowed_imports)
		json_object_set(narrow, "allow_import", gw_mut(t->p.allowed_imports));
	r = gw_kernel_start(srv, name, json_object_size(narrow) ? narrow : NULL, &k, &err);
	json_decref(narrow);
	if (r < 0) {
		snprintf(why, why_len, "%s", err.text);
		if (r == -EBUSY)
			return 503;
		if (r == -EPERM && strstr(err.text, "--allow-weaker-sandbox"))
			return 503;
		if (r == -EPERM || r == -EINVAL || r == -ENOENT)
			return 400;
		return 500;
	}
	k->oneshot = oneshot;
	t->kernel = k;
	gw_task_note_limits(t, k);
	/* A kernel from the pool is ready at once. */
	t->kernel_ready = k->ready;
	if (k->ready)
		gw_task_poke(t);
	snprintf(t->kernel_id, sizeof(t->kernel_id), "%s", k->id);
	return 0;
}

/* The limits t runs under on k, kept for the result even if the kernel goes. */
void gw_task_note_limits(struct gw_task *t, const struct gw_kernel *k)
{
	t->lim_memory = k->profile.memory;
	t->lim_cpu = k->profile.cpu_time;
	t->lim_output = k->profile.output;
	t->lim_wall = t->p.timeout > 0 && t->p.timeout < k->profile.wall_time
	                      ? t->p.timeout
	                      : k->profile.wall_time;
}

/* Lets go of a one-shot kernel: shut down (the kernel module frees it later). */
static void gw_task_drop_kernel(struct gw_task *t)
{
	struct gw_kernel *k = t->kernel;

	t->kernel = NULL;
	if (!k)
		return;
	if (k->task == t)
		k->task = NULL;
	if (k->oneshot)
		gw_kernel_shutdown(k);
}

void gw_task_kernel_gone(struct gw_server *srv, struct gw_kernel *k)
{
	for (struct gw_task *t = srv->tasks; t; t = t->next) {
		if (t->kernel != k)
			continue;
		t->kernel = NULL;
		if (!t->lost[0])
			snprintf(t->lost, sizeof(t->lost), "the kernel was shut down");
		gw_task_poke(t);
	}
	for (struct gw_tsession *s = srv->tsessions; s; s = s->next) {
		if (s->kernel == k) {
			s->kernel = NULL;
			s->dead = true;
		}
	}
	k->task = NULL;
}

void gw_task_kernel_event(struct gw_server *srv, struct gw_kernel *k, enum gw_wait_kind kind,
                          bool ok, const char *why)
{
	if (kind == GW_WAIT_DELETE)
		return;
	for (struct gw_task *t = srv->tasks; t; t = t->next) {
		if (t->kernel != k)
			continue;
		if (ok) {
			t->kernel_ready = true;
		} else if (!t->lost[0]) {
			snprintf(t->lost, sizeof(t->lost), "the kernel could not start: %s",
			         why ? why : "unknown reason");
		}
		gw_task_poke(t);
	}
	/* Sessions whose tasks wait for their kernel. */
	for (struct gw_tsession *s = srv->tsessions; s; s = s->next) {
		if (s->kernel != k)
			continue;
		if (!ok && k->state == GW_KERNEL_DEAD)
			s->dead = true;
		if (s->queue)
			gw_task_poke(s->queue);
	}
}

/* ---- running one execution ---- */

static void gw_task_metrics_cb(lws_sorted_usec_list_t *sul);

/* The code of the current item (borrowed), or NULL. */
static const char *gw_task_item_code(struct gw_task *t, size_t *len)
{
	if (t->p.type == PROTO_TASK_BATCH) {
		struct gw_task_item_run *ir = &t->runs[t->item];

		*len = ir->code_len;
		return ir->code;
	}
	*len = t->code_len;
	return t->code;
}

/* Builds and sends the execute_request of the current item. Returns 0 or -errno. */
static int gw_task_send(struct gw_task *t)
{
	struct gw_kernel *k = t->kernel;
	const struct proto_task_item *it =
	        t->p.type == PROTO_TASK_BATCH ? &t->p.items[t->item] : NULL;
	const char *file = t->p.type == PROTO_TASK_EXECUTE_FILE ? t->p.file_path
	                   : it && it->file_path                ? it->file_path
	                                                        : NULL;
	const json_t *args = it ? it->arguments : t->p.arguments;
	const json_t *env = it ? it->environment_vars : t->p.environment_vars;
	const char *mode = t->p.type == PROTO_TASK_VALIDATE ? "validate"
	                   : file                           ? "file"
	                                                    : "execute";
	size_t code_len;
	const char *code = gw_task_item_code(t, &code_len);
	json_t *task = json_object(), *content, *argv = NULL;
	struct proto_ws_msg m;
	int r;

	if (!task)
		return -ENOMEM;
	json_object_set_new(task, "mode", json_string(mode));
	json_object_set_new(task, "return_variables",
	                    t->p.return_variables ? json_incref(gw_mut(t->p.return_variables))
	                                          : json_array());
	json_object_set_new(task, "working_directory",
	                    t->p.working_directory ? json_string(t->p.working_directory)
	                                           : json_null());
	if (file) {
		argv = json_array();
		json_array_append_new(argv, json_string(file));
		if (args)
			json_array_extend(argv, gw_mut(args));
	}
	json_object_set_new(task, "argv", argv ? argv : json_null());
	json_object_set(task, "env", env ? gw_mut(env) : json_null());
	json_object_set_new(task, "file_name", file ? json_string(file) : json_null());
	json_object_set_new(task, "check_syntax", json_boolean(t->p.check_syntax));
	json_object_set_new(task, "check_imports", json_boolean(t->p.check_imports));
	content = json_pack("{s:s%, s:b, s:b, s:{}, s:b, s:b, s:o}", "code", code ? code : "",
	                    code ? code_len : 0, "silent", 0, "store_history",
	                    t->p.type == PROTO_TASK_INTERACTIVE, "user_expressions", "allow_stdin",
	                    0, "stop_on_error", 1, "sandcell_task", task);
	if (!content)
		return -ENOMEM;
	r = gw_kernel_make_msg("execute_request", content, NULL, &m);
	json_decref(content);
	if (r < 0)
		return r;
	m.channel = PROTO_WS_SHELL;
	snprintf(t->msg_id, sizeof(t->msg_id), "%s", m.msg_id);
	r = gw_kernel_send_task(k, NULL, &m, t->p.timeout);
	proto_ws_msg_clear(&m);
	if (r < 0)
		return r;
	gw_task_note_limits(t, k);
	k->task = t;
	return 0;
}

/* Starts the current item on t->kernel (ready). */
static void gw_task_run(struct gw_task *t)
{
	int r;

	gw_task_exec_reset(t);
	t->phase = GW_TASK_RUNNING;
	t->sent_us = gw_now_us();
	proto_id_date_now(t->started_iso);
	r = gw_task_send(t);
	if (r < 0) {
		snprintf(t->lost, sizeof(t->lost), "could not send the code to the kernel: %s",
		         strerror(-r));
		gw_task_poke(t);
		return;
	}
	/* The first tick only notes the CPU time the kernel had used: off the request's path, and
	 * never for the short runs that end before it. */
	lws_sul_schedule(t->srv->cx, 0, &t->sul_metrics, gw_task_metrics_cb, GW_TASK_CPU_BASE_US);
}

/* ---- observing the kernel ---- */

/* The text of a stream or the bundle of a display, as JSON (new reference), or NULL. */
static json_t *gw_task_content(const struct proto_ws_msg *m)
{
	return json_loadb((const char *)m->content.data, m->content.len, 0, NULL);
}

bool gw_task_observe(struct gw_task *t, const struct proto_ws_msg *m, const char *parent_id)
{
	json_t *c;

	if (t->phase != GW_TASK_RUNNING || !parent_id || strcmp(parent_id, t->msg_id) != 0)
		return false;
	if (m->channel == PROTO_WS_SHELL) {
		if (strcmp(m->msg_type, "execute_reply") != 0)
			return true;
		if (m->content.len <= GW_TASK_REPLY_MAX) {
			json_decref(t->reply);
			t->reply = gw_task_content(m);
		}
		if (t->kernel && !strcmp(t->kernel->wall_msg_id, t->msg_id))
			t->wall_hit = true;
		t->got_reply = true;
		if (t->got_idle)
			gw_task_poke(t);
		return true;
	}
	if (m->channel != PROTO_WS_IOPUB)
		return true;
	if (!strcmp(m->msg_type, "status")) {
		c = gw_task_content(m);
		if (!strcmp(gw_or(json_string_value(json_object_get(c, "execution_state")), ""),
		            "idle")) {
			t->got_idle = true;
			if (t->got_reply)
				gw_task_poke(t);
		}
		json_decref(c);
		return true;
	}
	if (!strcmp(m->msg_type, "stream")) {
		const char *name, *text;

		c = gw_task_content(m);
		name = json_string_value(json_object_get(c, "name"));
		text = json_string_value(json_object_get(c, "text"));
		if (name && text) {
			bool err = !strcmp(name, "stderr");
			size_t len = json_string_length(json_object_get(c, "text"));

			t->output_bytes += len;
			if (t->p.capture_output)
				gw_text_add(&t->out[err], text, len);
			else
				t->out[err].total += len;
			gw_task_emit(t,
			             json_pack("{s:s, s:s, s:O}", "event", "stream", "name",
			                       err ? "stderr" : "stdout", "text",
			                       json_object_get(c, "text")),
			             true);
		}
		json_decref(c);
		return true;
	}
	if (!strcmp(m->msg_type, "display_data") || !strcmp(m->msg_type, "update_display_data")) {
		json_t *data, *progress, *ev;
		const char *did;

		c = gw_task_content(m);
		data = json_object_get(c, "data");
		progress = json_object_get(data, GW_TASK_PROGRESS_MIME);
		did = json_string_value(
		        json_object_get(json_object_get(c, "transient"), "display_id"));
		t->output_bytes += m->content.len;
		if (json_is_object(progress)) {
			json_t *f = json_object_get(progress, "fraction");
			json_t *msg = json_object_get(progress, "message");

			if (json_is_number(f))
				gw_task_emit(t,
				             json_pack("{s:s, s:f, s:O}", "event", "progress",
				                       "fraction", json_number_value(f), "message",
				                       json_is_string(msg) ? msg : json_null()),
				             true);
		} else if (json_is_object(data)) {
			bool update = !strcmp(m->msg_type, "update_display_data");

			if (t->n_displays < GW_TASK_DISPLAYS_MAX &&
			    t->displays_bytes + m->content.len <= GW_TASK_DISPLAYS_BYTES) {
				json_t *d = json_pack(
				        "{s:O, s:O}", "data", data, "metadata",
				        gw_jor(json_object_get(c, "metadata"), json_null()));

				if (d && did)
					json_object_set_new(d, "display_id", json_string(did));
				if (d && update)
					json_object_set_new(d, "update", json_true());
				if (d && !json_array_append_new(t->displays, d)) {
					t->n_displays++;
					t->displays_bytes += m->content.len;
				}
			} else {
				t->displays_cut = true;
			}
			ev = json_pack("{s:s, s:O, s:O}", "event", "display", "data", data,
			               "metadata",
			               gw_jor(json_object_get(c, "metadata"), json_null()));
			if (ev && did)
				json_object_set_new(ev, "display_id", json_string(did));
			if (ev && update)
				json_object_set_new(ev, "update", json_true());
			gw_task_emit(t, ev, true);
		}
		json_decref(c);
		return true;
	}
	if (!strcmp(m->msg_type, "clear_output"))
		gw_task_emit(t, json_pack("{s:s}", "event", "clear_output"), true);
	return true;
}

void gw_task_output_capped(struct gw_task *t, const char *msg_id)
{
	if (t->phase == GW_TASK_RUNNING && !strcmp(msg_id, t->msg_id))
		t->output_capped = true;
}

/* ---- metrics ---- */

static void gw_task_alert(struct gw_task *t, int which, const char *resource, double used,
                          double limit, const char *unit)
{
	char msg[160];

	if (t->alerted[which] || limit <= 0 || used < 0.8 * limit)
		return;
	t->alerted[which] = true;
	if (!strcmp(unit, "MB"))
		snprintf(msg, sizeof(msg), "%s at %.0f%% of its limit (%.1f of %.1f MB)", resource,
		         100 * used / limit, used / 1e6, limit / 1e6);
	else
		snprintf(msg, sizeof(msg), "%s at %.0f%% of its limit (%.1f of %.1f s)", resource,
		         100 * used / limit, used, limit);
	gw_task_emit(t,
	             json_pack("{s:s, s:s, s:f, s:f, s:f, s:s}", "event", "resource_alert",
	                       "resource", resource, "used", used, "limit", limit, "fraction",
	                       used / limit, "message", msg),
	             false);
}

static void gw_task_metrics_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_task *t = lws_container_of(sul, struct gw_task, sul_metrics);
	double elapsed = (double)(gw_now_us() - t->sent_us) / 1e6, cpu = 0;
	size_t sum = 0, rss = 0;
	char mem[32];

	if (t->phase != GW_TASK_RUNNING || !t->kernel || t->kernel->pid <= 0)
		return;
	/*
	 * The memory is the interpreter's resident size (the largest process: a sum would count
	 * the pages a forked kernel shares with its supervisor once per process), as memory_used
	 * reports it. The limit counts what runs add to the interpreter's size when it became
	 * ready (every run of the kernel together), so the alert compares that growth with it.
	 */
	gw_task_proc_usage(t->kernel->pid, &cpu, &sum, &rss);
	/* CPU time of this execution: what the kernel used since the first tick. */
	if (!t->cpu_base_set) {
		t->cpu_base = cpu;
		t->cpu_base_set = true;
		lws_sul_schedule(t->srv->cx, 0, &t->sul_metrics, gw_task_metrics_cb,
		                 LWS_US_PER_SEC - GW_TASK_CPU_BASE_US);
		return;
	}
	cpu -= t->cpu_base;
	if (cpu < 0)
		cpu = 0;
	if (rss > t->peak_rss)
		t->peak_rss = rss;
	gw_task_format_mb(rss, mem, sizeof(mem));
	gw_task_emit(t,
	             json_pack("{s:s, s:f, s:f, s:s, s:I}", "event", "metrics", "elapsed", elapsed,
	                       "cpu_time", cpu, "memory", mem, "memory_bytes", (json_int_t)rss),
	             true);
	gw_task_alert(t, 0, "memory",
	              rss > t->kernel->rss_base ? (double)(rss - t->kernel->rss_base) : 0,
	              (double)t->lim_memory, "MB");
	gw_task_alert(t, 1, "cpu_time", cpu, (double)t->lim_cpu, "s");
	gw_task_alert(t, 2, "wall_time", elapsed, t->lim_wall, "s");
	gw_task_alert(t, 3, "output", (double)t->output_bytes, (double)t->lim_output, "MB");
	lws_sul_schedule(t->srv->cx, 0, &t->sul_metrics, gw_task_metrics_cb, LWS_US_PER_SEC);
}

/* ---- results ---- */

/* Removes ANSI colour sequences from s (in place). */
static void gw_strip_ansi(char *s)
{
	char *w = s;

	for (const char *r = s; *r;) {
		if (r[0] == '\x1b' && r[1] == '[') {
			r += 2;
			while (*r && !(*r >= '@' && *r <= '~'))
				r++;
			if (*r)
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
}

/* exception_info from a reply without sandcell_result (the gateway's own, or a failure). */
static json_t *gw_task_exception_from_reply(json_t *reply)
{
	const char *ename = json_string_value(json_object_get(reply, "ename"));
	const char *evalue = json_string_value(json_object_get(reply, "evalue"));
	json_t *tb = json_object_get(reply, "traceback"), *v;
	size_t i, total = 0;
	char *text;

	json_array_foreach(tb, i, v)
		total += json_string_length(v) + 1;
	text = calloc(1, total + 1);
	if (text) {
		json_array_foreach(tb, i, v) {
			if (!json_is_string(v))
				continue;
			strcat(text, json_string_value(v));
			strcat(text, "\n");
		}
		gw_strip_ansi(text);
	}
	v = json_pack("{s:s, s:s, s:s, s:n}", "type", ename ? ename : "Error", "message",
	              evalue ? evalue : "", "traceback", text ? text : "", "line");
	free(text);
	return v;
}

/* A value the kernel sent, if it has the expected JSON type; else a default. */
static json_t *gw_pick(json_t *obj, const char *key, json_type type, json_t *def)
{
	json_t *v = json_object_get(obj, key);

	if (v && (json_typeof(v) == type || (type == JSON_REAL && json_typeof(v) == JSON_INTEGER) ||
	          (type == JSON_TRUE && json_is_boolean(v)))) {
		json_decref(def);
		return json_incref(v);
	}
	return def;
}

/* Which limit ended the execution: the gateway's evidence first, then the kernel's words. */
static void gw_task_limit(struct gw_task *t, const char **hit, char *msg, size_t len)
{
	const char *kind = json_string_value(json_object_get(t->reply, "sandcell_limit"));
	const char *ename = json_string_value(json_object_get(t->reply, "ename"));
	const char *evalue = json_string_value(json_object_get(t->reply, "evalue"));
	char secs[32];

	*hit = NULL;
	msg[0] = '\0';
	if (t->cancelled) {
		*hit = "cancelled";
		snprintf(msg, len, "cancelled by the client");
	} else if (t->wall_hit || (kind && !strcmp(kind, "wall_time"))) {
		*hit = "wall_time";
		gw_profile_format_seconds(t->lim_wall, secs, sizeof(secs));
		snprintf(msg, len, "wall-clock timeout of %s", secs);
	} else if (kind) {
		*hit = kind;
		snprintf(msg, len, "%s", evalue ? evalue : kind);
	} else if (ename && evalue && !strcmp(ename, "MemoryError") &&
	           strstr(evalue, "memory limit")) {
		*hit = "memory";
		snprintf(msg, len, "%s", evalue);
	} else if (evalue && strstr(evalue, "process limit")) {
		*hit = "processes";
		snprintf(msg, len, "%s", evalue);
	} else if (ename && evalue && !strcmp(ename, "TimeoutError") &&
	           strstr(evalue, "CPU time limit")) {
		*hit = "cpu_time";
		snprintf(msg, len, "%s", evalue);
	} else if (t->output_capped) {
		char size[32];

		*hit = "output";
		gw_profile_format_size(t->lim_output, size, sizeof(size));
		snprintf(msg, len, "output limit of %s reached, rest discarded", size);
	}
}

/* The ExecutionResult of the execution that just ended (new reference). */
static json_t *gw_task_execution_result(struct gw_task *t, double exec_time)
{
	json_t *sr = json_object_get(t->reply, "sandcell_result"), *res, *exc, *limits;
	const char *status = json_string_value(json_object_get(t->reply, "status"));
	const char *hit;
	char msg[256], mem[32], size[32];
	json_int_t exit_code;
	size_t peak;

	if (!json_is_object(sr))
		sr = NULL;
	gw_task_limit(t, &hit, msg, sizeof(msg));
	exc = sr ? json_object_get(sr, "exception") : NULL;
	if (json_is_object(exc))
		exc = json_incref(exc);
	else if (status && !strcmp(status, "error"))
		exc = gw_task_exception_from_reply(t->reply);
	else if (!t->reply)
		exc = json_pack("{s:s, s:s, s:s, s:n}", "type", "KernelDied", "message",
		                t->lost[0] ? t->lost : "the kernel gave no answer", "traceback", "",
		                "line");
	else
		exc = json_null();
	if (json_is_integer(json_object_get(sr, "exit_code")))
		exit_code = json_integer_value(json_object_get(sr, "exit_code"));
	else
		exit_code = json_is_null(exc) ? 0 : 1;
	if (hit && !strcmp(hit, "cancelled"))
		exit_code = 130;
	else if (hit && !strcmp(hit, "wall_time"))
		exit_code = 124;
	else if (json_object_get(t->reply, "sandcell_limit") || !t->reply)
		exit_code = 137;
	peak = json_is_integer(json_object_get(sr, "memory_peak"))
	               ? (size_t)json_integer_value(json_object_get(sr, "memory_peak"))
	               : t->peak_rss;
	gw_task_format_mb(peak, mem, sizeof(mem));
	gw_profile_format_size(t->lim_memory, size, sizeof(size));
	limits = json_pack("{s:s, s:f, s:I, s:s%}", "memory", size, "timeout", t->lim_wall,
	                   "cpu_time", (json_int_t)t->lim_cpu, "output", "", (size_t)0);
	gw_profile_format_size(t->lim_output, size, sizeof(size));
	json_object_set_new(limits, "output", json_string(size));
	json_object_set_new(limits, "hit", hit ? json_string(hit) : json_null());
	json_object_set_new(limits, "message", hit ? json_string(msg) : json_null());
	res = json_object();
	json_object_set_new(res, "success", json_boolean(exit_code == 0));
	json_object_set_new(res, "stdout",
	                    t->p.capture_output ? gw_text_json(&t->out[0]) : json_string(""));
	json_object_set_new(res, "stderr",
	                    t->p.capture_output ? gw_text_json(&t->out[1]) : json_string(""));
	json_object_set_new(res, "return_value",
	                    sr ? gw_pick(sr, "return_value", JSON_NULL, json_null()) : json_null());
	if (sr && json_object_get(sr, "return_value"))
		json_object_set(res, "return_value", json_object_get(sr, "return_value"));
	json_object_set_new(res, "variables", gw_pick(sr, "variables", JSON_OBJECT, json_object()));
	json_object_set_new(res, "missing_variables",
	                    gw_pick(sr, "missing_variables", JSON_ARRAY, json_array()));
	json_object_set_new(res, "changed_variables",
	                    gw_pick(sr, "changed_variables", JSON_OBJECT, json_object()));
	json_object_set_new(res, "execution_time", json_real(exec_time));
	json_object_set_new(res, "cpu_time", gw_pick(sr, "cpu_time", JSON_REAL, json_real(0)));
	json_object_set_new(res, "memory_used", json_string(mem));
	json_object_set_new(res, "memory_used_bytes", json_integer((json_int_t)peak));
	json_object_set_new(res, "exit_code", json_integer(exit_code));
	json_object_set_new(res, "exception_info", exc);
	json_object_set_new(res, "limits", limits);
	json_object_set_new(res, "truncated",
	                    json_pack("{s:b, s:b, s:b}", "stdout", t->out[0].cut, "stderr",
	                              t->out[1].cut, "output", t->output_capped));
	json_object_set(res, "displays", t->displays);
	if (t->displays_cut)
		json_object_set_new(res, "displays_truncated", json_true());
	json_object_set_new(res, "task_id", json_string(t->task_id));
	json_object_set_new(res, "kernel_id", json_string(t->kernel_id));
	if (t->p.type == PROTO_TASK_INTERACTIVE) {
		json_object_set_new(res, "session_id", json_string(t->session_id));
		json_object_set(res, "execution_count",
		                gw_jor(json_object_get(t->reply, "execution_count"), json_null()));
	}
	return res;
}

/* The ValidationResult (new reference). */
static json_t *gw_task_validation_result(struct gw_task *t, double exec_time)
{
	json_t *v = json_object_get(t->reply, "sandcell_validation"), *res;

	if (json_is_object(v)) {
		res = json_deep_copy(v);
	} else {
		const char *why =
		        t->lost[0] ? t->lost
		                   : gw_or(json_string_value(json_object_get(t->reply, "evalue")),
		                           "the kernel did not analyse the code");

		res = json_pack("{s:b, s:[], s:[], s:[], s:[], s:[s]}", "is_valid", 0,
		                "syntax_errors", "security_warnings", "import_issues", "imports",
		                "recommendations", why);
		json_object_set_new(res, "error", json_string(why));
	}
	json_object_set_new(res, "security_level",
	                    json_string(t->p.security_level ? t->p.security_level
	                                                    : t->srv->cfg->default_profile));
	json_object_set_new(res, "validation_time", json_real(exec_time));
	json_object_set_new(res, "task_id", json_string(t->task_id));
	return res;
}

/* Records the execution that ended in the history. */
static void gw_task_record(struct gw_task *t, json_t *res, double exec_time)
{
	struct proto_error err = {{0}};
	struct gw_history_entry e = {0};
	char finished[PROTO_DATE_LEN + 1], sha[65];
	size_t code_len;
	const char *code = gw_task_item_code(t, &code_len);
	json_t *exc = json_object_get(res, "exception_info");
	json_t *limits = json_object_get(res, "limits");

	if (!t->srv->history)
		return;
	proto_id_date_now(finished);
	gw_history_sha256_hex(code ? code : "", code ? code_len : 0, sha);
	e.task_id = t->task_id;
	e.task_type = proto_task_type_name(t->p.type);
	e.session_id = t->p.type == PROTO_TASK_INTERACTIVE ? t->session_id : NULL;
	e.item = t->p.type == PROTO_TASK_BATCH ? (int)t->item : -1;
	e.assigned_by = t->p.assigned_by;
	e.kernel_id = t->kernel_id[0] ? t->kernel_id : NULL;
	e.security_level = t->p.security_level ? t->p.security_level : t->srv->cfg->default_profile;
	e.code_sha256 = sha;
	e.code_size = code ? code_len : 0;
	e.started = t->started_iso;
	e.finished = finished;
	e.execution_time = exec_time;
	e.success = json_is_true(json_object_get(res, "success")) ||
	            json_is_true(json_object_get(res, "is_valid"));
	e.exit_code = (int)json_integer_value(json_object_get(res, "exit_code"));
	e.error_type = json_string_value(json_object_get(exc, "type"));
	e.limit_hit = json_string_value(json_object_get(limits, "hit"));
	e.stdout_bytes = t->out[0].total;
	e.stderr_bytes = t->out[1].total;
	if (gw_history_add(t->srv->history, &e, &err) < 0)
		gw_log(t->srv, GW_WARN, "%s", err.text);
}

/* ---- finishing ---- */

void gw_task_exec_reset(struct gw_task *t)
{
	gw_text_free(&t->out[0]);
	gw_text_free(&t->out[1]);
	json_decref(t->reply);
	t->reply = NULL;
	json_decref(t->displays);
	t->displays = json_array();
	t->n_displays = 0;
	t->displays_bytes = 0;
	t->displays_cut = false;
	t->got_reply = t->got_idle = false;
	t->wall_hit = t->output_capped = false;
	t->output_bytes = 0;
	t->peak_rss = 0;
	t->cpu_base_set = false;
	memset(t->alerted, 0, sizeof(t->alerted));
	t->msg_id[0] = '\0';
	lws_sul_cancel(&t->sul_metrics);
}

void gw_task_free(struct gw_task *t)
{
	struct gw_server *srv = t->srv;

	for (struct gw_task **pp = &srv->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	if (t->session)
		gw_tsession_dequeue(t->session, t);
	if (t->kernel && t->kernel->task == t)
		t->kernel->task = NULL;
	lws_sul_cancel(&t->sul_step);
	lws_sul_cancel(&t->sul_metrics);
	lws_sul_cancel(&t->sul_cancel);
	if (t->sink == GW_SINK_HTTP && t->http)
		t->http->task = NULL;
	if (t->sink == GW_SINK_WS && t->conn && t->conn->n_tasks)
		t->conn->n_tasks--;
	gw_text_free(&t->out[0]);
	gw_text_free(&t->out[1]);
	json_decref(t->reply);
	json_decref(t->displays);
	json_decref(t->results);
	for (size_t i = 0; t->runs && i < t->p.n_items; i++)
		free(t->runs[i].owned);
	free(t->runs);
	free(t->code_owned);
	proto_task_clear(&t->p);
	json_decref(t->envelope);
	free(t);
}

/* Sends the task's final answer to its sink and frees it. */
void gw_task_answer(struct gw_task *t, int status, json_t *body)
{
	t->phase = GW_TASK_DONE;
	if (t->sink == GW_SINK_HTTP && t->http) {
		t->http->task = NULL;
		gw_http_respond(t->http, status, body);
		t->http = NULL;
	} else if (status == 200) {
		gw_task_emit(t, json_pack("{s:s, s:o}", "event", "result", "result", body), false);
	} else {
		json_object_set_new(body, "event", json_string("error"));
		json_object_set_new(body, "status", json_integer(status));
		if (!json_object_get(body, "errors"))
			json_object_set_new(body, "errors", json_array());
		gw_task_emit(t, body, false);
	}
	gw_task_free(t);
}

void gw_task_fail(struct gw_task *t, int status, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	gw_log(t->srv, GW_INFO, "task %s: %s", t->task_id, text);
	gw_task_drop_kernel(t);
	gw_task_answer(t, status, json_pack("{s:s, s:[]}", "message", text, "errors"));
}

/* The result of a batch so far, with its summary (new reference). */
static json_t *gw_task_batch_result(struct gw_task *t)
{
	size_t ok = 0, failed = 0, skipped = 0, i;
	json_t *r, *v;
	double total = 0;

	json_array_foreach(t->results, i, r) {
		if (json_is_true(json_object_get(r, "skipped")))
			skipped++;
		else if (json_is_true(json_object_get(r, "success")))
			ok++;
		else
			failed++;
		v = json_object_get(r, "execution_time");
		if (json_is_number(v))
			total += json_number_value(v);
	}
	return json_pack("{s:b, s:O, s:{s:I, s:I, s:I, s:I, s:f}, s:s}", "success",
	                 failed == 0 && skipped == 0, "results", t->results, "summary", "total",
	                 (json_int_t)json_array_size(t->results), "succeeded", (json_int_t)ok,
	                 "failed", (json_int_t)failed, "skipped", (json_int_t)skipped,
	                 "execution_time", total, "task_id", t->task_id);
}

/* The execution of the current item ended (reply and idle seen, or the kernel lost). */
static void gw_task_execution_done(struct gw_task *t)
{
	double exec_time = (double)(gw_now_us() - t->sent_us) / 1e6;
	json_t *res;
	bool ok;

	lws_sul_cancel(&t->sul_metrics);
	lws_sul_cancel(&t->sul_cancel);
	if (t->kernel && t->kernel->task == t)
		t->kernel->task = NULL;
	if (t->p.type == PROTO_TASK_VALIDATE)
		res = gw_task_validation_result(t, exec_time);
	else
		res = gw_task_execution_result(t, exec_time);
	if (!res) {
		gw_task_fail(t, 500, "out of memory");
		return;
	}
	gw_task_record(t, res, exec_time);
	if (t->p.type == PROTO_TASK_EXECUTE_FILE) {
		json_object_set_new(res, "file_path", json_string(t->p.file_path));
		json_object_set_new(res, "arguments",
		                    t->p.arguments ? json_incref(gw_mut(t->p.arguments))
		                                   : json_array());
	}
	if (t->session) {
		struct gw_tsession *s = t->session;

		s->executions++;
		s->last_us = gw_now_us();
		proto_id_date_now(s->last_iso);
	}
	if (t->p.type != PROTO_TASK_BATCH) {
		gw_task_drop_kernel(t);
		gw_task_answer(t, 200, res);
		return;
	}
	/* A batch: one more result; then the next item, or the end. */
	ok = json_is_true(json_object_get(res, "success"));
	if (t->p.items[t->item].file_path)
		json_object_set_new(res, "file_path", json_string(t->p.items[t->item].file_path));
	json_array_append(t->results, res);
	gw_task_emit(t,
	             json_pack("{s:s, s:I, s:o}", "event", "item_result", "item",
	                       (json_int_t)t->item, "result", res),
	             false);
	t->item++;
	if ((!ok && t->p.stop_on_error) || t->cancelled) {
		for (; t->item < t->p.n_items; t->item++)
			json_array_append_new(t->results,
			                      json_pack("{s:b, s:b}", "success", 0, "skipped", 1));
	}
	if (t->item >= t->p.n_items) {
		gw_task_drop_kernel(t);
		gw_task_answer(t, 200, gw_task_batch_result(t));
		return;
	}
	/* Next item: the same kernel, unless each gets its own or this one is gone. */
	if (t->p.fresh_kernel || !t->kernel || t->kernel->state == GW_KERNEL_DEAD) {
		char why[300];
		int status;

		gw_task_drop_kernel(t);
		status = gw_task_start_kernel(t, true, why, sizeof(why));
		if (status) {
			gw_task_fail(t, status, "%s", why);
			return;
		}
		t->phase = GW_TASK_WAIT_KERNEL;
		return;
	}
	gw_task_run(t);
}

/* The task is cancelled before it ran (or its item never started). */
static void gw_task_cancel_waiting(struct gw_task *t)
{
	t->phase = GW_TASK_RUNNING;
	t->sent_us = gw_now_us();
	proto_id_date_now(t->started_iso);
	t->cancelled = true;
	gw_task_execution_done(t);
}

static void gw_task_step_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_task *t = lws_container_of(sul, struct gw_task, sul_step);
	struct gw_tsession *s = t->session;

	switch (t->phase) {
	case GW_TASK_RUNNING:
		if ((t->got_reply && t->got_idle) || t->lost[0] || !t->kernel)
			gw_task_execution_done(t);
		return;
	case GW_TASK_WAIT_KERNEL:
		if (t->cancel_requested) {
			gw_task_drop_kernel(t);
			gw_task_cancel_waiting(t);
		} else if (t->lost[0] || !t->kernel) {
			gw_task_fail(t, 503, "%s", t->lost[0] ? t->lost : "the kernel is gone");
		} else if (t->kernel_ready && t->kernel->ready) {
			gw_task_run(t);
		}
		return;
	case GW_TASK_QUEUED:
		if (t->cancel_requested) {
			if (s)
				gw_tsession_dequeue(s, t);
			gw_task_cancel_waiting(t);
			return;
		}
		if (!s || s->dead || !s->kernel) {
			gw_task_fail(t, 503, "%s",
			             t->lost[0] ? t->lost : "the session's kernel is gone");
			return;
		}
		if (s->queue != t || !s->kernel->ready)
			return; /* its turn comes later: poked again */
		t->kernel = s->kernel;
		snprintf(t->kernel_id, sizeof(t->kernel_id), "%s", s->kernel->id);
		if (t->p.reset_session && !t->reset_done) {
			t->reset_done = true;
			t->kernel_ready = false;
			t->phase = GW_TASK_WAIT_KERNEL;
			gw_kernel_restart(s->kernel);
			return;
		}
		gw_task_run(t);
		return;
	default:
		return;
	}
}

/* ---- cancelling ---- */

static void gw_task_cancel_kill_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_task *t = lws_container_of(sul, struct gw_task, sul_cancel);

	if (t->phase != GW_TASK_RUNNING || !t->kernel)
		return;
	/* The interrupt did not stop it: the session's kernel starts again. */
	gw_log(t->srv, GW_INFO, "task %s: still running 3 s after its cancel: restarting kernel %s",
	       t->task_id, t->kernel->id);
	t->kernel->task = NULL;
	gw_kernel_restart(t->kernel);
	snprintf(t->lost, sizeof(t->lost), "the kernel was restarted to cancel the task");
	gw_task_execution_done(t);
}

void gw_task_cancel(struct gw_task *t)
{
	t->cancel_requested = true;
	if (t->phase != GW_TASK_RUNNING) {
		gw_task_poke(t);
		return;
	}
	t->cancelled = true;
	if (!t->kernel) {
		gw_task_poke(t);
		return;
	}
	if (t->kernel->oneshot) {
		/* Nothing of a one-shot kernel is kept: it ends at once. */
		if (t->kernel->pid > 0)
			gw_process_kill(t->kernel->pid);
		return;
	}
	gw_kernel_interrupt_request(t->kernel, NULL);
	lws_sul_schedule(t->srv->cx, 0, &t->sul_cancel, gw_task_cancel_kill_cb, 3 * LWS_US_PER_SEC);
}

/* ---- the server ---- */

void gw_task_fini(struct gw_server *srv)
{
	lws_sul_cancel(&srv->sul_tsessions);
	while (srv->tasks) {
		struct gw_task *t = srv->tasks;

		if (t->sink == GW_SINK_HTTP && t->http)
			t->http->task = NULL;
		t->sink = GW_SINK_NONE;
		t->session = NULL;
		gw_task_free(t);
	}
	while (srv->tsessions) {
		struct gw_tsession *s = srv->tsessions;

		srv->tsessions = s->next;
		free(s);
	}
	gw_history_close(srv->history);
	srv->history = NULL;
}
