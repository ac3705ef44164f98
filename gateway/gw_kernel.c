/*
 * Kernel lifecycle and message routing (see gw_kernel.h). Everything runs on the lws loop.
 * Messages from a kernel are untrusted: they are checked (framing, signature, JSON) before
 * anything is read from them, and a kernel can only reach its own clients. The per-execution
 * limits of the kernel's profile (wall clock, output) are enforced here, and a kernel that dies
 * answers for its pending execute_requests through the gateway.
 */
#include "gw_kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "gw_channel.h"
#include "gw_sandbox.h"
#include "gw_server.h"
#include "gw_task.h"
#include "gw_ws.h"
#include "gw_zygote.h"
#include "proto_sign.h"
#include "proto_wire.h"

#define GW_POOL_BACKOFF_US      (30 * LWS_US_PER_SEC) /* a pool whose kernel failed rests */
#define GW_POOL_REFILL_DELAY_US (50 * LWS_US_PER_MS)  /* after a kernel was taken from it */
/* msg_ids of requests the gateway itself sends start with this. */
#define GW_OWN_PREFIX     "sandcell-gw-"
#define GW_OWN_PREFIX_LEN (sizeof(GW_OWN_PREFIX) - 1)
/* kernel_info is re-sent at this interval until the kernel answers on shell and iopub. */
#define GW_NUDGE_US (10 * LWS_US_PER_MS)
/* A request that allows input waits this long at most for the stdin socket, checked this often. */
#define GW_STDIN_WAIT_US (2 * LWS_US_PER_SEC)
#define GW_STDIN_POLL_US (1 * LWS_US_PER_MS)
/* A kernel asked to shut down is killed after this long. */
#define GW_SHUTDOWN_GRACE_US (3 * LWS_US_PER_SEC)
/* A kernel still running a request this long after its wall-clock interrupt is killed. */
#define GW_WALL_GRACE_US (3 * LWS_US_PER_SEC)
/* What the kernel's supervisor exit status says (see docs/gateway.md). */
#define GW_EXIT_MEMORY  101
#define GW_EXIT_CPU     102
#define GW_EXIT_SANDBOX 103
#define GW_EXIT_SECCOMP 104

static const char *const gw_state_names[] = {
        [GW_KERNEL_STARTING] = "starting",     [GW_KERNEL_IDLE] = "idle", [GW_KERNEL_BUSY] = "busy",
        [GW_KERNEL_RESTARTING] = "restarting", [GW_KERNEL_DEAD] = "dead",
};

const char *gw_kernel_state_name(enum gw_kernel_state state)
{
	return gw_state_names[state];
}

static void gw_kernel_warm_up(struct gw_kernel *k);
static void gw_kernel_pool_schedule(struct gw_server *srv);
static int gw_pool_index(const struct gw_config *cfg, const char *name);

static void gw_kernel_touch(struct gw_kernel *k)
{
	proto_id_date_now(k->last_activity);
	k->active_us = gw_now_us();
}

struct gw_kernel *gw_kernel_find(struct gw_server *srv, const char *id)
{
	for (struct gw_kernel *k = srv->kernels; k; k = k->next)
		if (!k->pooled && strcmp(k->id, id) == 0)
			return k;
	return NULL;
}

json_t *gw_kernel_model(const struct gw_kernel *k)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", k->id, "name", k->name, "last_activity",
	                 k->last_activity, "execution_state", gw_state_names[k->state],
	                 "connections", (json_int_t)k->n_conns);
}

/* ---- messages made by the gateway ---- */

static struct proto_buf gw_dump_buf(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	return (struct proto_buf){.data = (unsigned char *)s, .len = s ? strlen(s) : 0};
}

/* Builds a message with a new msg_id that starts with prefix; owned parts in *m. */
static int gw_make_msg(const char *msg_type, const char *prefix, json_t *content,
                       const struct proto_buf *parent, struct proto_ws_msg *m)
{
	char id[PROTO_UUID_LEN + 1], date[PROTO_DATE_LEN + 1];
	json_t *h;

	memset(m, 0, sizeof(*m));
	if (proto_id_uuid(id) < 0)
		return -EIO;
	proto_id_date_now(date);
	snprintf(m->msg_id, sizeof(m->msg_id), "%s%s", prefix, id);
	snprintf(m->msg_type, sizeof(m->msg_type), "%s", msg_type);
	h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", m->msg_id, "msg_type", msg_type,
	              "username", "sandcell", "session", "sandcell-gateway", "date", date,
	              "version", "5.3");
	if (!h)
		return -ENOMEM;
	m->channel = PROTO_WS_IOPUB;
	m->header = gw_dump_buf(h);
	json_decref(h);
	if (parent && parent->len) {
		m->parent.data = malloc(parent->len);
		if (m->parent.data)
			memcpy(m->parent.data, parent->data, parent->len);
		m->parent.len = parent->len;
	} else {
		m->parent.data = (unsigned char *)strdup("{}");
		m->parent.len = 2;
	}
	m->metadata.data = (unsigned char *)strdup("{}");
	m->metadata.len = 2;
	m->content = gw_dump_buf(content);
	if (!m->header.data || !m->parent.data || !m->metadata.data || !m->content.data) {
		proto_ws_msg_clear(m);
		return -ENOMEM;
	}
	return 0;
}

int gw_kernel_make_msg(const char *msg_type, json_t *content, const struct proto_buf *parent,
                       struct proto_ws_msg *m)
{
	return gw_make_msg(msg_type, "", content, parent, m);
}

/* Sends an iopub status made by the gateway (restarting, dead) to every client. */
static void gw_kernel_broadcast_status(struct gw_kernel *k, const char *state)
{
	struct proto_ws_msg m;
	json_t *content = json_pack("{s:s}", "execution_state", state);

	if (content && gw_kernel_make_msg("status", content, NULL, &m) == 0) {
		for (struct gw_conn *c = k->conns; c; c = c->next)
			gw_ws_send(c, &m, false);
		proto_ws_msg_clear(&m);
	}
	json_decref(content);
}

/* ---- the replay buffer ---- */

/* Keeps a copy of m for the next client, within the replay cap (oldest output goes first). */
static void gw_kernel_hold(struct gw_kernel *k, const struct proto_ws_msg *m, bool droppable)
{
	if (gw_replay_hold(&k->replay, m, droppable, k->srv->cfg->replay_cap) == -ENOMEM)
		gw_log(k->srv, GW_WARN, "kernel %s: out of memory, a %s was not kept", k->id,
		       m->msg_type);
}

void gw_kernel_attach(struct gw_kernel *k, struct gw_conn *c)
{
	struct gw_held *h;
	size_t bytes, dropped = gw_replay_take_dropped(&k->replay, &bytes);

	c->kernel = k;
	c->next = k->conns;
	k->conns = c;
	k->n_conns++;
	if (dropped) {
		char text[256];

		snprintf(text, sizeof(text),
		         "[sandcell] %zu messages (%zu bytes) of output were dropped while no "
		         "client "
		         "was connected (the replay buffer holds %zu bytes).\n",
		         dropped, bytes, k->srv->cfg->replay_cap);
		gw_ws_notice(c, text, &k->replay.dropped_parent);
		gw_replay_forget_parent(&k->replay);
	}
	while ((h = gw_replay_pop(&k->replay))) {
		gw_ws_send(c, &h->msg, false);
		gw_held_free(h);
	}
}

void gw_kernel_detach(struct gw_kernel *k, struct gw_conn *c)
{
	for (struct gw_conn **pp = &k->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			k->n_conns--;
			break;
		}
	}
	/* Its replies still to come go to its session's next connection (a reloaded page). */
	gw_routes_orphan(&k->routes, c, c->session_id);
	c->kernel = NULL;
	c->next = NULL;
}

/*
 * The connection a reply to msg_id goes to: the one that asked, or when that one has left, the
 * newest connection of its session; NULL when neither is here.
 */
static struct gw_conn *gw_kernel_reply_conn(struct gw_kernel *k, const char *msg_id)
{
	struct gw_conn *to = gw_routes_find(&k->routes, msg_id), *same = NULL;
	const char *session;

	if (to)
		return to;
	session = gw_routes_orphan_session(&k->routes, msg_id);
	if (!session)
		return NULL;
	/* Connections are added at the head: the first match is the newest. */
	for (struct gw_conn *c = k->conns; c && !same; c = c->next)
		if (!strcmp(c->session_id, session))
			same = c;
	return same;
}

/* ---- gateway-made messages for clients ---- */

/*
 * Delivers a message the gateway made as the kernel would: iopub to every client, a reply to
 * the client that asked reply_to; either to the replay buffer when no client is connected.
 */
static void gw_kernel_deliver(struct gw_kernel *k, const struct proto_ws_msg *m,
                              const char *reply_to)
{
	struct gw_conn *to;

	if (k->task && gw_task_observe(k->task, m, reply_to) && m->channel != PROTO_WS_IOPUB)
		return;
	if (!k->conns) {
		if (!k->oneshot)
			gw_kernel_hold(k, m, false);
		return;
	}
	if (m->channel == PROTO_WS_IOPUB) {
		for (struct gw_conn *c = k->conns; c; c = c->next)
			gw_ws_send(c, m, false);
		return;
	}
	to = gw_kernel_reply_conn(k, reply_to);
	if (to)
		gw_ws_send(to, m, false);
}

/* Makes a message (content borrowed) and delivers it; out of memory is logged. */
static void gw_kernel_say(struct gw_kernel *k, enum proto_ws_channel channel, const char *msg_type,
                          json_t *content, const struct gw_exec *e)
{
	struct proto_ws_msg m;

	if (!content || gw_kernel_make_msg(msg_type, content, &e->parent, &m) < 0) {
		gw_log(k->srv, GW_WARN, "kernel %s: out of memory, a %s was not sent", k->id,
		       msg_type);
		return;
	}
	m.channel = channel;
	gw_kernel_deliver(k, &m, e->msg_id);
	proto_ws_msg_clear(&m);
}

/* ---- per-execution limits ---- */

/* Why a kernel ended, as its pending requests are told. */
struct gw_death {
	const char *kind;  /* sandcell_limit: memory, cpu_time, wall_time, seccomp, crash */
	const char *ename; /* MemoryError, TimeoutError, KernelDied */
	char evalue[200];
};

static void gw_exec_free(struct gw_exec *e)
{
	if (e) {
		free(e->parent.data);
		free(e);
	}
}

/* Forgets every request (a restart or a delete: nobody waits for their answers). */
static void gw_exec_clear(struct gw_kernel *k)
{
	while (k->execs) {
		struct gw_exec *e = k->execs;

		k->execs = e->next;
		gw_exec_free(e);
	}
	k->n_execs = 0;
	gw_exec_free(k->exec_done);
	k->exec_done = NULL;
	lws_sul_cancel(&k->sul_wall);
	lws_sul_cancel(&k->sul_wall_kill);
	k->wall_msg_id[0] = '\0';
}

/*
 * A record of the request m: its msg_id and a small parent header (the header's identifying
 * fields only, each bounded, so that a huge client header is not kept). NULL when out of memory.
 */
static struct gw_exec *gw_exec_new(const struct proto_ws_msg *m)
{
	static const char *const keep[] = {"msg_id",   "msg_type", "session",
	                                   "username", "date",     "version"};
	json_t *h = json_loadb((const char *)m->header.data, m->header.len, 0, NULL);
	json_t *small = json_object();
	struct gw_exec *e = calloc(1, sizeof(*e));
	char *text = NULL;

	for (size_t i = 0; h && small && i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *v = json_object_get(h, keep[i]);

		if (json_is_string(v) && json_string_length(v) <= 256)
			json_object_set(small, keep[i], v);
	}
	if (small)
		text = json_dumps(small, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(h);
	json_decref(small);
	if (!e || !text) {
		free(text);
		free(e);
		return NULL;
	}
	snprintf(e->msg_id, sizeof(e->msg_id), "%s", m->msg_id);
	e->parent.data = (unsigned char *)text;
	e->parent.len = strlen(text);
	return e;
}

static void gw_exec_wall_cb(lws_sorted_usec_list_t *sul);

/* Starts the wall-clock limit of the oldest request once the kernel can run it. */
static void gw_exec_arm(struct gw_kernel *k)
{
	struct gw_exec *e = k->execs;

	if (!e || e->armed || !k->ready || !k->pid_wsi)
		return;
	e->armed = true;
	lws_sul_schedule(k->srv->cx, 0, &k->sul_wall, gw_exec_wall_cb,
	                 (lws_usec_t)(e->wall * LWS_US_PER_SEC));
}

/* The kernel answered request msg_id: it is done, the next one starts its clock. */
static void gw_exec_answered(struct gw_kernel *k, const char *msg_id)
{
	for (struct gw_exec **pp = &k->execs; *pp; pp = &(*pp)->next) {
		struct gw_exec *e = *pp;

		if (strcmp(e->msg_id, msg_id) != 0)
			continue;
		if (e == k->execs) {
			lws_sul_cancel(&k->sul_wall);
			lws_sul_cancel(&k->sul_wall_kill);
		}
		*pp = e->next;
		k->n_execs--;
		e->next = NULL;
		gw_exec_free(k->exec_done);
		k->exec_done = e;
		gw_exec_arm(k);
		return;
	}
}

/*
 * The request output parented to parent_id counts against: a waiting one or the last answered
 * one by id, else (output of a thread, or a kernel that names no known parent) the oldest
 * waiting one or the last answered one.
 */
static struct gw_exec *gw_exec_for_output(struct gw_kernel *k, const char *parent_id)
{
	for (struct gw_exec *e = k->execs; e; e = e->next)
		if (!strcmp(e->msg_id, parent_id))
			return e;
	if (k->exec_done && !strcmp(k->exec_done->msg_id, parent_id))
		return k->exec_done;
	return k->execs ? k->execs : k->exec_done;
}

/* What to do with an output message (gw_exec_count). */
enum gw_output_verdict {
	GW_OUTPUT_PASS,    /* within the cap */
	GW_OUTPUT_LAST,    /* cut to what fits: send it, then the notice */
	GW_OUTPUT_CAPPED,  /* the first past the cap: the notice instead of it */
	GW_OUTPUT_DROPPED, /* past the cap, already said */
};

/* The length of the longest prefix of s[0..len) within max bytes that ends on a character. */
static size_t gw_utf8_cut(const char *s, size_t max)
{
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/*
 * Counts an output message against its request's cap: the bytes of its content as the kernel
 * sent it (JSON text: a little more than a stream's text) and of its buffers. Only the message
 * that crosses the cap is parsed: a stream is cut to fit, its new content (owned) in *cut. *out
 * is the request it counted against (may be NULL).
 */
static enum gw_output_verdict gw_exec_count(struct gw_kernel *k, const struct proto_ws_msg *m,
                                            const char *parent_id, struct proto_buf *cut,
                                            struct gw_exec **out)
{
	struct gw_exec *e = gw_exec_for_output(k, parent_id);
	size_t size = m->content.len, room;
	json_t *content, *text, *part;
	char *dumped = NULL;

	*out = e;
	if (!e)
		return GW_OUTPUT_PASS;
	if (e->capped)
		return GW_OUTPUT_DROPPED;
	for (size_t i = 0; i < m->n_buffers; i++)
		size += m->buffers[i].len;
	room = k->profile.output - e->output;
	if (size <= room) {
		e->output += size;
		return GW_OUTPUT_PASS;
	}
	e->capped = true;
	if (strcmp(m->msg_type, "stream") != 0 || room == 0)
		return GW_OUTPUT_CAPPED;
	content = json_loadb((const char *)m->content.data, m->content.len, 0, NULL);
	text = json_object_get(content, "text");
	if (json_is_string(text) && json_string_length(text) > room) {
		part = json_stringn(json_string_value(text),
		                    gw_utf8_cut(json_string_value(text), room));
		if (part && json_object_set_new(content, "text", part) == 0)
			dumped = json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	json_decref(content);
	if (!dumped)
		return GW_OUTPUT_CAPPED;
	cut->data = (unsigned char *)dumped;
	cut->len = strlen(dumped);
	e->output = k->profile.output;
	return GW_OUTPUT_LAST;
}

/* Tells the clients, once, that the output of request e reached the cap. */
static void gw_exec_capped(struct gw_kernel *k, const struct gw_exec *e)
{
	char text[128], limit[32];
	json_t *content;

	gw_profile_format_size(k->profile.output, limit, sizeof(limit));
	snprintf(text, sizeof(text), "output limit of %s reached, rest discarded\n", limit);
	gw_log(k->srv, GW_INFO, "kernel %s: request %.40s: output limit of %s reached", k->id,
	       e->msg_id, limit);
	content = json_pack("{s:s, s:s}", "name", "stderr", "text", text);
	gw_kernel_say(k, PROTO_WS_IOPUB, "stream", content, e);
	json_decref(content);
	if (k->task)
		gw_task_output_capped(k->task, e->msg_id);
}

static int gw_kernel_send_own(struct gw_kernel *k, enum proto_ws_channel which,
                              const char *msg_type, json_t *content, char *id_out, size_t id_len);

static void gw_exec_wall_kill_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_kernel *k = lws_container_of(sul, struct gw_kernel, sul_wall_kill);

	if (!k->execs || strcmp(k->execs->msg_id, k->wall_msg_id) != 0 || !k->pid_wsi)
		return;
	gw_log(k->srv, GW_WARN,
	       "kernel %s: request %.40s still running 3 s after its wall-clock interrupt: "
	       "killing the kernel",
	       k->id, k->wall_msg_id);
	k->wall_killed = true;
	gw_process_kill(k->pid);
}

/* The oldest request ran out of wall-clock time: interrupt it, with the reason. */
static void gw_exec_wall_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_kernel *k = lws_container_of(sul, struct gw_kernel, sul_wall);
	char reason[96], secs[32];
	json_t *content;

	if (!k->execs || !k->pid_wsi)
		return;
	k->wall_secs = k->execs->wall;
	gw_profile_format_seconds(k->wall_secs, secs, sizeof(secs));
	snprintf(reason, sizeof(reason), "wall-clock timeout of %s", secs);
	snprintf(k->wall_msg_id, sizeof(k->wall_msg_id), "%s", k->execs->msg_id);
	gw_log(k->srv, GW_INFO, "kernel %s: request %.40s: %s, interrupting it", k->id,
	       k->wall_msg_id, reason);
	content = json_pack("{s:s}", "reason", reason);
	if (!content ||
	    gw_kernel_send_own(k, PROTO_WS_CONTROL, "interrupt_request", content, NULL, 0) < 0)
		gw_log(k->srv, GW_WARN, "kernel %s: could not send the interrupt", k->id);
	json_decref(content);
	lws_sul_schedule(k->srv->cx, 0, &k->sul_wall_kill, gw_exec_wall_kill_cb, GW_WALL_GRACE_US);
}

/* Reads what ended the process: the supervisor's exit status, a signal, or our own kill. */
static void gw_kernel_death(const struct gw_kernel *k, int status, int si_code, struct gw_death *d)
{
	char size[32], secs[32];

	d->kind = "crash";
	d->ename = "KernelDied";
	if (k->wall_killed) {
		gw_profile_format_seconds(k->wall_secs, secs, sizeof(secs));
		d->kind = "wall_time";
		d->ename = "TimeoutError";
		snprintf(d->evalue, sizeof(d->evalue), "wall-clock timeout of %s", secs);
	} else if (si_code == CLD_EXITED && status == GW_EXIT_MEMORY) {
		gw_profile_format_size(k->profile.memory, size, sizeof(size));
		d->kind = "memory";
		d->ename = "MemoryError";
		snprintf(d->evalue, sizeof(d->evalue), "memory limit of %s exceeded", size);
	} else if (si_code == CLD_EXITED && status == GW_EXIT_CPU) {
		d->kind = "cpu_time";
		d->ename = "TimeoutError";
		snprintf(d->evalue, sizeof(d->evalue), "CPU time limit of %u s exceeded",
		         k->profile.cpu_time);
	} else if (si_code == CLD_EXITED && status == GW_EXIT_SECCOMP) {
		d->kind = "seccomp";
		snprintf(d->evalue, sizeof(d->evalue),
		         "the kernel made a system call its sandbox forbids, and was killed");
	} else if (si_code == CLD_EXITED && status == GW_EXIT_SANDBOX) {
		snprintf(d->evalue, sizeof(d->evalue), "the kernel could not set up its sandbox");
	} else if (si_code == CLD_EXITED) {
		snprintf(d->evalue, sizeof(d->evalue), "the kernel died (exit status %d)", status);
	} else {
		const char *abbrev = sigabbrev_np(status);

		snprintf(d->evalue, sizeof(d->evalue), "the kernel died (signal %d, SIG%s)", status,
		         abbrev ? abbrev : "?");
	}
}

/*
 * The kernel died with requests pending: each gets, from the gateway, an iopub error, an
 * execute_reply with status error and "sandcell_limit", and the idle that ends it.
 */
static void gw_exec_fail_all(struct gw_kernel *k, const struct gw_death *d)
{
	for (struct gw_exec *e = k->execs; e; e = e->next) {
		json_t *error, *reply, *idle;

		error = json_pack("{s:s, s:s, s:[s], s:s}", "ename", d->ename, "evalue", d->evalue,
		                  "traceback", d->evalue, "sandcell_limit", d->kind);
		reply = json_pack("{s:s, s:n, s:s, s:s, s:[s], s:s}", "status", "error",
		                  "execution_count", "ename", d->ename, "evalue", d->evalue,
		                  "traceback", d->evalue, "sandcell_limit", d->kind);
		idle = json_pack("{s:s}", "execution_state", "idle");
		gw_kernel_say(k, PROTO_WS_IOPUB, "error", error, e);
		gw_kernel_say(k, PROTO_WS_SHELL, "execute_reply", reply, e);
		gw_kernel_say(k, PROTO_WS_IOPUB, "status", idle, e);
		json_decref(error);
		json_decref(reply);
		json_decref(idle);
	}
	gw_exec_clear(k);
}

/* ---- sending to the kernel ---- */

static int gw_kernel_send_parts(struct gw_kernel *k, enum proto_ws_channel which,
                                const struct proto_ws_msg *m)
{
	struct proto_wire_out out = {0};
	struct proto_buf frames[8 + 64];
	char sig[PROTO_SIGN_HEX_LEN + 1];
	size_t n;

	if (m->n_buffers > 64)
		return -EMSGSIZE;
	out.header = m->header;
	out.parent = m->parent;
	out.metadata = m->metadata;
	out.content = m->content;
	out.buffers = m->buffers;
	out.n_buffers = m->n_buffers;
	n = proto_wire_encode(&out, k->conn.key, k->conn.key_len, sig, frames);
	return gw_channel_send(&k->ch[which], frames, n);
}

/* Sends a request made by the gateway (kernel_info, shutdown) on shell or control. */
static int gw_kernel_send_own(struct gw_kernel *k, enum proto_ws_channel which,
                              const char *msg_type, json_t *content, char *id_out, size_t id_len)
{
	struct proto_ws_msg m;
	int r = gw_make_msg(msg_type, GW_OWN_PREFIX, content, NULL, &m);

	if (r < 0)
		return r;
	if (id_out)
		snprintf(id_out, id_len, "%s", m.msg_id);
	r = gw_kernel_send_parts(k, which, &m);
	proto_ws_msg_clear(&m);
	return r;
}

/* An execute_request that lets the kernel ask for input (content "allow_stdin": true). */
static bool gw_msg_allows_stdin(const struct proto_ws_msg *m)
{
	json_t *content;
	bool yes;

	if (m->channel != PROTO_WS_SHELL || strcmp(m->msg_type, "execute_request"))
		return false;
	/* Parsed only when the key may be there (written plainly or with escapes). */
	if (!memmem(m->content.data, m->content.len, "allow_stdin", 11) &&
	    !memmem(m->content.data, m->content.len, "\\u", 2))
		return false;
	content = json_loadb((const char *)m->content.data, m->content.len, 0, NULL);
	yes = json_is_true(json_object_get(content, "allow_stdin"));
	json_decref(content);
	return yes;
}

/* Sends what waited for stdin, once it is connected or has had its time. */
static void gw_kernel_stdin_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_kernel *k = lws_container_of(sul, struct gw_kernel, sul_stdin);
	struct gw_held *h;

	if (!gw_channel_connected(&k->ch[PROTO_WS_STDIN]) && gw_now_us() < k->stdin_deadline_us) {
		lws_sul_schedule(k->srv->cx, 0, &k->sul_stdin, gw_kernel_stdin_cb,
		                 GW_STDIN_POLL_US);
		return;
	}
	while ((h = gw_replay_pop(&k->stdin_wait))) {
		int r = gw_kernel_send_parts(k, h->msg.channel, &h->msg);

		if (r < 0)
			gw_log(k->srv, GW_WARN, "kernel %s: a %s was not sent: %s", k->id,
			       h->msg.msg_type, strerror(-r));
		gw_held_free(h);
	}
}

/*
 * Sends a client's message. Most kernels are never asked for input: their stdin socket is
 * made for the first execute_request that allows it, and that request (with what follows it
 * on shell and stdin) waits until the socket is connected, since the kernel's input_request
 * to a peer it does not know yet would be lost.
 */
static int gw_kernel_send_client(struct gw_kernel *k, const struct proto_ws_msg *m)
{
	bool waits = k->stdin_wait.head && m->channel != PROTO_WS_CONTROL;
	int r;

	if (!waits && !k->ch[PROTO_WS_STDIN].sock && k->ch[PROTO_WS_SHELL].sock &&
	    gw_msg_allows_stdin(m)) {
		r = gw_channel_open(k, PROTO_WS_STDIN);
		if (r < 0)
			return r;
		waits = !gw_channel_connected(&k->ch[PROTO_WS_STDIN]);
		k->stdin_deadline_us = gw_now_us() + GW_STDIN_WAIT_US;
	}
	if (!waits)
		return gw_kernel_send_parts(k, m->channel, m);
	r = gw_replay_hold(&k->stdin_wait, m, false, k->srv->cfg->ws_queue_cap);
	if (r < 0)
		return r;
	lws_sul_schedule(k->srv->cx, 0, &k->sul_stdin, gw_kernel_stdin_cb, GW_STDIN_POLL_US);
	return 0;
}

int gw_kernel_send(struct gw_kernel *k, struct gw_conn *from, const struct proto_ws_msg *m)
{
	return gw_kernel_send_task(k, from, m, 0);
}

int gw_kernel_send_task(struct gw_kernel *k, struct gw_conn *from, const struct proto_ws_msg *m,
                        double wall)
{
	struct gw_exec *e = NULL;
	int r;

	if (m->channel == PROTO_WS_IOPUB)
		return -EPROTO;
	if (k->state == GW_KERNEL_DEAD)
		return -EPIPE;
	/* An execute_request gets its limits: tracked from before it leaves. */
	if (m->channel == PROTO_WS_SHELL && !strcmp(m->msg_type, "execute_request")) {
		if (k->n_execs >= GW_EXEC_MAX)
			return -ENOBUFS;
		e = gw_exec_new(m);
		if (!e)
			return -ENOMEM;
		e->wall = wall > 0 && wall < k->profile.wall_time ? wall : k->profile.wall_time;
	}
	r = gw_kernel_send_client(k, m);
	if (r < 0) {
		gw_exec_free(e);
		return r;
	}
	if (e) {
		struct gw_exec **tail = &k->execs;

		while (*tail)
			tail = &(*tail)->next;
		*tail = e;
		k->n_execs++;
		gw_exec_arm(k);
	}
	gw_kernel_touch(k);
	/* An input_reply gets no reply. */
	if (m->channel != PROTO_WS_STDIN && gw_routes_add(&k->routes, m->msg_id, from) < 0)
		gw_log(k->srv, GW_WARN,
		       "kernel %s: out of memory: the reply to %s has no route back", k->id,
		       m->msg_id);
	return 0;
}

/* ---- receiving from the kernel ---- */

static void gw_kernel_became_ready(struct gw_kernel *k)
{
	bool restart = k->restarting_manual;

	k->ready = true;
	k->restarting_manual = false;
	k->restart_spawned = false;
	/* Its limit counts what runs add to this (RLIMIT_AS was set from the size at start). */
	{
		double cpu;
		size_t sum;

		k->rss_base = 0;
		if (k->pid > 0)
			gw_task_proc_usage(k->pid, &cpu, &sum, &k->rss_base);
	}
	if (k->state == GW_KERNEL_STARTING || k->state == GW_KERNEL_RESTARTING)
		k->state = GW_KERNEL_IDLE;
	lws_sul_cancel(&k->sul_ready);
	gw_log(k->srv, GW_INFO, "kernel %s (%s) ready, pid %d%s", k->id, k->name, (int)k->pid,
	       k->pooled ? " (pool)" : "");
	if (k->pooled && !restart)
		gw_kernel_warm_up(k);
	/* Kernels of this spec start here: from now on its pool is kept full. */
	if (!k->pooled && k->pool_index >= 0 && k->pool_index < 8 &&
	    !(k->srv->pool_used & (1u << k->pool_index))) {
		k->srv->pool_used |= 1u << k->pool_index;
		gw_kernel_pool_schedule(k->srv);
	}
	gw_exec_arm(k);
	gw_server_kernel_event(k->srv, k, restart ? GW_WAIT_RESTART : GW_WAIT_START, true, NULL);
	if (!restart)
		gw_server_kernel_event(k->srv, k, GW_WAIT_RESTART, true, NULL);
}

/* Output types a slow client may lose (with a notice); replies and status never. */
static bool gw_msg_is_droppable(const char *msg_type)
{
	return !strcmp(msg_type, "stream") || !strcmp(msg_type, "display_data") ||
	       !strcmp(msg_type, "update_display_data") || !strcmp(msg_type, "execute_result") ||
	       !strcmp(msg_type, "clear_output");
}

/* A reply (kernel_info_reply, execute_reply, …): the answer that ends a request. */
static bool gw_msg_is_reply(const char *msg_type)
{
	size_t n = strlen(msg_type);

	return n > 6 && !strcmp(msg_type + n - 6, "_reply");
}

/* Output counted against a request's output cap. */
static bool gw_msg_is_counted(const char *msg_type)
{
	return !strcmp(msg_type, "stream") || !strcmp(msg_type, "display_data") ||
	       !strcmp(msg_type, "update_display_data") || !strcmp(msg_type, "execute_result");
}

void gw_kernel_on_message(struct gw_kernel *k, enum proto_ws_channel which,
                          const struct proto_frames *frames)
{
	struct proto_wire_parts parts;
	struct proto_error err = {{0}};
	struct proto_ws_msg m = {0};
	struct proto_buf cut = {0};
	enum gw_output_verdict verdict = GW_OUTPUT_PASS;
	struct gw_exec *e = NULL;
	json_t *header = NULL, *parent = NULL, *content = NULL;
	const char *msg_type = NULL, *parent_id;
	bool answered;
	int r;

	/*
	 * A subscriber's frames start with the topic; everything else as shell. The signature is
	 * not checked: the only other holder of the key is the kernel that sent the message (it
	 * signs with it), on a socket the gateway connected to itself, in a directory of its own.
	 * A check would cost a SHA-256 pass over every byte of output and prove nothing; the
	 * kernel still checks what the gateway sends, which keeps other kernels out of it.
	 */
	r = proto_wire_split(frames->v, frames->n, &k->srv->limits, &parts, &err);
	if (r == 0) {
		header = json_loadb((const char *)parts.header.data, parts.header.len, 0, NULL);
		parent = json_loadb((const char *)parts.parent.data, parts.parent.len, 0, NULL);
		msg_type = json_string_value(json_object_get(header, "msg_type"));
		if (!json_is_object(header) || !json_is_object(parent) || !msg_type) {
			r = -EBADMSG;
			snprintf(err.text, sizeof(err.text), "bad header or parent_header");
		}
	}
	if (r < 0) {
		gw_log(k->srv, GW_WARN, "kernel %s: %s: dropped a message: %s", k->id,
		       proto_ws_channel_name(which), err.text);
		goto out;
	}
	parent_id = json_string_value(json_object_get(parent, "msg_id"));
	if (!parent_id)
		parent_id = "";
	m.channel = which;
	m.header = parts.header;
	m.parent = parts.parent;
	m.metadata = parts.metadata;
	m.content = parts.content;
	m.buffers = (struct proto_buf *)(uintptr_t)parts.buffers;
	m.n_buffers = parts.n_buffers;
	snprintf(m.msg_type, sizeof(m.msg_type), "%s", msg_type);
	const char *id = json_string_value(json_object_get(header, "msg_id"));

	snprintf(m.msg_id, sizeof(m.msg_id), "%s", id ? id : "");
	bool own = strncmp(parent_id, GW_OWN_PREFIX, GW_OWN_PREFIX_LEN) == 0;

	if (which == PROTO_WS_IOPUB) {
		gw_kernel_touch(k);
		/* The busy/idle of our own requests (an interrupt) says nothing of user code. */
		if (!strcmp(msg_type, "status") && !own) {
			content = json_loadb((const char *)parts.content.data, parts.content.len, 0,
			                     NULL);
			const char *st =
			        json_string_value(json_object_get(content, "execution_state"));
			if (st && k->ready && !strcmp(st, "busy"))
				k->state = GW_KERNEL_BUSY;
			else if (st && k->ready && !strcmp(st, "idle"))
				k->state = GW_KERNEL_IDLE;
		}
		if (own) {
			if (!k->ready && !strcmp(parent_id, k->info_msg_id))
				k->info_iopub_seen = true;
			if (!k->ready && k->info_reply_seen && k->info_iopub_seen)
				gw_kernel_became_ready(k);
			goto out;
		}
		if (gw_msg_is_counted(msg_type))
			verdict = gw_exec_count(k, &m, parent_id, &cut, &e);
		if (verdict == GW_OUTPUT_CAPPED)
			gw_exec_capped(k, e);
		if (verdict == GW_OUTPUT_CAPPED || verdict == GW_OUTPUT_DROPPED)
			goto out;
		if (cut.data)
			m.content = cut;
		if (k->task)
			gw_task_observe(k->task, &m, parent_id);
		/* Before it is ready a kernel has nothing a client missed (its "starting"). */
		if (!k->conns && k->ready && !k->oneshot)
			gw_kernel_hold(k, &m, gw_msg_is_droppable(msg_type));
		for (struct gw_conn *c = k->conns; c; c = c->next)
			gw_ws_send(c, &m, gw_msg_is_droppable(msg_type));
		if (verdict == GW_OUTPUT_LAST)
			gw_exec_capped(k, e);
		goto out;
	}
	if (own) {
		if (!k->ready && !strcmp(msg_type, "kernel_info_reply") &&
		    !strcmp(parent_id, k->info_msg_id))
			k->info_reply_seen = true;
		if (!k->ready && k->info_reply_seen && k->info_iopub_seen)
			gw_kernel_became_ready(k);
		goto out;
	}
	if (which == PROTO_WS_SHELL && !strcmp(msg_type, "execute_reply"))
		gw_exec_answered(k, parent_id);
	/* A request has one reply: its route goes with it (an input_request keeps it). */
	answered = which != PROTO_WS_STDIN && gw_msg_is_reply(msg_type);
	/* A task's replies are its own. */
	if (k->task && gw_task_observe(k->task, &m, parent_id)) {
		if (answered)
			gw_routes_remove(&k->routes, parent_id);
		goto out;
	}
	{
		struct gw_conn *to = gw_kernel_reply_conn(k, parent_id);

		if (answered)
			gw_routes_remove(&k->routes, parent_id);
		if (to)
			gw_ws_send(to, &m, false);
		else if (!k->conns)
			gw_kernel_hold(k, &m, false);
		else
			gw_log(k->srv, GW_DBG, "kernel %s: a %s for a client that left", k->id,
			       msg_type);
	}
out:
	free(cut.data);
	json_decref(header);
	json_decref(parent);
	json_decref(content);
}

/* ---- the kernel's stderr ---- */

/* A whole line the kernel wrote on stderr: logged, and kept as its last word. */
static void gw_kernel_err_line(struct gw_kernel *k)
{
	char *line = k->err_part;

	line[k->err_part_len] = '\0';
	k->err_part_len = 0;
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = *p == '\t' ? ' ' : '?';
	if (!line[strspn(line, " ")])
		return;
	gw_log(k->srv, GW_WARN, "kernel %s: %s", k->id, line);
	snprintf(k->err_line, sizeof(k->err_line), "%s", line);
}

static void gw_kernel_err_feed(struct gw_kernel *k, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			gw_kernel_err_line(k);
			continue;
		}
		k->err_part[k->err_part_len++] = buf[i];
		/* A line longer than the buffer is logged in pieces. */
		if (k->err_part_len == sizeof(k->err_part) - 1)
			gw_kernel_err_line(k);
	}
}

/* Reads what the pipe holds now; returns false at its end (or on an error). */
static bool gw_kernel_err_read(struct gw_kernel *k, int fd)
{
	char buf[4096];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			gw_kernel_err_feed(k, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
	return true;
}

/* The process is gone: takes the rest of what it wrote, so its last line is known. */
static void gw_kernel_err_drain(struct gw_kernel *k)
{
	if (k->err_wsi)
		gw_kernel_err_read(k, lws_get_socket_fd(k->err_wsi));
	if (k->err_part_len)
		gw_kernel_err_line(k);
}

static void gw_kernel_err_close(struct gw_kernel *k)
{
	if (k->err_wsi) {
		lws_set_opaque_user_data(k->err_wsi, NULL);
		lws_set_timeout(k->err_wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		k->err_wsi = NULL;
	}
	k->err_part_len = 0;
}

int gw_kernel_err_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct gw_kernel *k = lws_get_opaque_user_data(wsi);

	if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
		if (k && k->err_wsi == wsi)
			k->err_wsi = NULL;
		return 0;
	}
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	if (!k)
		return -1;
	if (gw_kernel_err_read(k, lws_get_socket_fd(wsi)))
		return 0;
	lws_set_opaque_user_data(wsi, NULL);
	k->err_wsi = NULL;
	return -1; /* the end of the pipe: close it */
}

/* ---- process ---- */

static void gw_kernel_nudge_cb(lws_sorted_usec_list_t *sul);

/* Starts (or restarts) the kernel process with the kernel's connection file and profile. */
static int gw_kernel_spawn(struct gw_kernel *k)
{
	struct gw_server *srv = k->srv;
	int pidfd, errp[2], r;
	pid_t pid;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	/*
	 * The zygote's fork when it is up; else posix_spawn (a vfork-like clone in glibc) rather
	 * than fork: copying the gateway's page tables, and the TLB flushes that copying a
	 * threaded process costs, was a third of the gateway's CPU per kernel.
	 */
	r = gw_zygote_spawn(srv, k->argv, errp[1], &pid);
	if (r < 0)
		r = gw_process_spawn(k->argv, NULL, errp[1], -1, &pid);
	if (r < 0) {
		close(errp[0]);
		close(errp[1]);
		return r;
	}
	close(errp[1]);
	gw_kernel_err_close(k);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	k->err_wsi = gw_server_adopt(srv, errp[0], GW_ERR_PROTOCOL, k);
	if (!k->err_wsi)
		gw_log(srv, GW_WARN, "kernel %s: its stderr cannot be read", k->id);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		int e = -errno;

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return e;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	k->pid_wsi = gw_server_adopt(srv, pidfd, GW_PID_PROTOCOL, k);
	if (!k->pid_wsi) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	k->pid = pid;
	k->ready = false;
	k->wall_killed = false;
	k->err_line[0] = '\0';
	k->info_reply_seen = k->info_iopub_seen = false;
	k->info_msg_id[0] = '\0';
	k->start_deadline_us = gw_now_us() + (int64_t)(srv->cfg->kernel_start_timeout * 1e6);
	lws_sul_schedule(srv->cx, 0, &k->sul_ready, gw_kernel_nudge_cb, 1);
	gw_log(srv, GW_DBG, "kernel %s: started pid %d (profile %s)", k->id, (int)pid,
	       gw_profile_name(k->profile.kind));
	return 0;
}

static void gw_kernel_kill(struct gw_kernel *k)
{
	if (k->pid > 0 && k->pid_wsi)
		gw_process_kill(k->pid);
}

static void gw_kernel_kill_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_kernel *k = lws_container_of(sul, struct gw_kernel, sul_kill);

	gw_log(k->srv, GW_INFO, "kernel %s: did not exit in time, killing it", k->id);
	gw_kernel_kill(k);
}

/* kernel_info until the kernel answers on shell and on iopub (its subscription is live). */
static void gw_kernel_nudge_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_kernel *k = lws_container_of(sul, struct gw_kernel, sul_ready);
	json_t *empty;

	if (k->ready || !k->pid_wsi)
		return;
	if (gw_now_us() > k->start_deadline_us) {
		gw_log(k->srv, GW_WARN, "kernel %s did not answer within %.0f s", k->id,
		       k->srv->cfg->kernel_start_timeout);
		k->state = GW_KERNEL_DEAD;
		gw_server_kernel_event(k->srv, k, GW_WAIT_START, false,
		                       "the kernel did not start in time");
		gw_server_kernel_event(k->srv, k, GW_WAIT_RESTART, false,
		                       "the kernel did not start in time");
		gw_kernel_kill(k);
		return;
	}
	empty = json_object();
	k->info_iopub_seen = false;
	gw_kernel_send_own(k, PROTO_WS_SHELL, "kernel_info_request", empty, k->info_msg_id,
	                   sizeof(k->info_msg_id));
	json_decref(empty);
	lws_sul_schedule(k->srv->cx, 0, &k->sul_ready, gw_kernel_nudge_cb, GW_NUDGE_US);
}

static void gw_kernel_free(struct gw_kernel *k)
{
	struct gw_server *srv = k->srv;

	for (struct gw_kernel **pp = &srv->kernels; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	srv->n_kernels--;
	if (k->pooled)
		srv->n_pooled--;
	gw_task_kernel_gone(srv, k);
	for (struct gw_session *s = srv->sessions; s; s = s->next)
		if (s->kernel == k)
			s->kernel = NULL;
	while (k->conns) {
		struct gw_conn *c = k->conns;

		gw_kernel_detach(k, c);
		gw_ws_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "the kernel was shut down");
	}
	for (int i = 0; i < 4; i++)
		gw_channel_close(&k->ch[i]);
	lws_sul_cancel(&k->sul_ready);
	lws_sul_cancel(&k->sul_kill);
	lws_sul_cancel(&k->sul_stdin);
	gw_replay_clear(&k->stdin_wait);
	gw_exec_clear(k);
	if (k->pid_wsi) {
		lws_set_opaque_user_data(k->pid_wsi, NULL);
		lws_set_timeout(k->pid_wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
	}
	gw_kernel_err_close(k);
	if (k->conn_path[0])
		unlink(k->conn_path);
	gw_replay_clear(&k->replay);
	gw_routes_clear(&k->routes);
	proto_conn_clear(&k->conn);
	gw_profile_clear(&k->profile);
	gw_profile_argv_free(k->argv);
	free(k);
}

/* Gives up on the kernel: dead, its clients and waiting requests told why. */
static void gw_kernel_give_up(struct gw_kernel *k, const char *why)
{
	if (k->pooled && k->pool_index >= 0 && k->pool_index < 8) {
		/* Kernels of this spec do not start here: stop refilling its pool for a while. */
		k->srv->pool_backoff_us[k->pool_index] = gw_now_us() + GW_POOL_BACKOFF_US;
		gw_log(k->srv, GW_WARN, "kernel pool (%s): a kernel failed (%s); refilling paused",
		       k->name, why);
		gw_kernel_pool_schedule(k->srv);
	}
	k->state = GW_KERNEL_DEAD;
	gw_kernel_broadcast_status(k, "dead");
	gw_server_kernel_event(k->srv, k, GW_WAIT_START, false, why);
	gw_server_kernel_event(k->srv, k, GW_WAIT_RESTART, false, why);
}

/* Limits a running kernel hit for a request: a restart for those is not a crash loop. */
static bool gw_death_is_limit(const struct gw_death *d)
{
	return strcmp(d->kind, "crash") != 0;
}

/* The process is gone (reaped): report, then shut down, restart or give up. */
static void gw_kernel_exited(struct gw_kernel *k, int status_code, int si_code)
{
	struct gw_server *srv = k->srv;
	struct gw_death d;
	char why[512];
	bool was_ready = k->ready, had_requests, counts;

	lws_sul_cancel(&k->sul_kill);
	lws_sul_cancel(&k->sul_ready);
	/* What the kernel said last, on its sockets and on stderr, comes before its death. */
	if (k->ready)
		gw_channel_flush(k);
	gw_kernel_err_drain(k);
	k->pid = 0;
	k->ready = false;
	if (k->deleting || srv->stopping) {
		gw_log(srv, GW_INFO, "kernel %s shut down", k->id);
		gw_server_kernel_event(srv, k, GW_WAIT_DELETE, true, NULL);
		gw_kernel_free(k);
		return;
	}
	/* The old process ended for a requested restart: start the new one (once). */
	if (k->restarting_manual && !k->restart_spawned) {
		gw_exec_clear(k);
		k->restart_spawned = true;
		if (gw_kernel_spawn(k) < 0) {
			k->state = GW_KERNEL_DEAD;
			gw_server_kernel_event(srv, k, GW_WAIT_RESTART, false,
			                       "the kernel could not be restarted");
		}
		return;
	}
	gw_kernel_death(k, status_code, si_code, &d);
	had_requests = k->execs != NULL;
	gw_log(srv, GW_WARN, "kernel %s died: %s (%s %d)%s%s", k->id, d.evalue,
	       si_code == CLD_EXITED ? "exit status" : "signal", status_code,
	       k->err_line[0] ? "; its last words: " : "", k->err_line);
	gw_exec_fail_all(k, &d);
	if (k->oneshot) {
		/* A task's throw-away kernel: its task was told; it is not started again. */
		gw_kernel_give_up(k, d.evalue);
		return;
	}
	if (si_code == CLD_EXITED && status_code == GW_EXIT_SANDBOX) {
		/* It cannot run here at all: restarting would only fail again. */
		snprintf(why, sizeof(why), "the kernel could not set up its sandbox: %s",
		         k->err_line[0] ? k->err_line : "(it said nothing on stderr)");
		gw_log(srv, GW_ERR, "kernel %s: %s; not restarting it", k->id, why);
		gw_kernel_give_up(k, why);
		return;
	}
	/* A limit a running kernel hit for a request is not a crash: it does not count. */
	counts = !(was_ready && had_requests && gw_death_is_limit(&d));
	if (srv->cfg->restart_limit == 0 || (counts && k->restarts >= srv->cfg->restart_limit)) {
		snprintf(why, sizeof(why), "the kernel died%s: %s%s%s",
		         was_ready ? "" : " while starting", d.evalue, k->err_line[0] ? ": " : "",
		         k->err_line);
		gw_kernel_give_up(k, why);
		return;
	}
	if (counts)
		k->restarts++;
	k->state = GW_KERNEL_RESTARTING;
	gw_kernel_broadcast_status(k, "restarting");
	if (gw_kernel_spawn(k) < 0)
		gw_kernel_give_up(k, "the kernel could not be restarted");
}

int gw_kernel_pid_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct gw_kernel *k = lws_get_opaque_user_data(wsi);
	siginfo_t si = {0};

	if (reason != LWS_CALLBACK_RAW_RX_FILE) {
		if (reason == LWS_CALLBACK_RAW_CLOSE_FILE && k && k->pid_wsi == wsi)
			k->pid_wsi = NULL;
		return 0;
	}
	if (!k)
		return -1;
	if (waitid(P_PIDFD, (id_t)lws_get_socket_fd(wsi), &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return 0; /* not exited yet */
	lws_set_opaque_user_data(wsi, NULL);
	k->pid_wsi = NULL;
	gw_kernel_exited(k, si.si_status, si.si_code);
	return -1; /* close the pidfd */
}

static int gw_kernel_create(struct gw_server *srv, const char *name, const json_t *narrow,
                            bool pooled, struct gw_kernel **out, struct proto_error *err)
{
	struct gw_kernel *k;
	unsigned char raw[16];
	char key[33], *text, missing[256];
	int fd, r, kind;

	*out = NULL;
	kind = gw_config_kernel_profile(srv->cfg, name);
	if (kind < 0)
		return proto_error_set(err, ENOENT, "No such kernel spec: %.64s", name);
	if (!srv->cfg->allow_weaker_sandbox &&
	    !gw_sandbox_profile_ok(srv->sandbox, (enum gw_profile_kind)kind, missing,
	                           sizeof(missing)))
		return proto_error_set(err, EPERM,
		                       "profile %s cannot run here without --allow-weaker-sandbox: "
		                       "this host lacks %s",
		                       gw_profile_name((enum gw_profile_kind)kind), missing);
	if (!pooled && srv->n_kernels - srv->n_pooled >= (size_t)srv->cfg->max_kernels)
		return proto_error_set(err, EBUSY, "the limit of %d kernels is reached",
		                       srv->cfg->max_kernels);
	k = calloc(1, sizeof(*k));
	if (!k)
		return proto_error_set(err, ENOMEM, "out of memory");
	k->srv = srv;
	k->pooled = pooled;
	k->pool_index = gw_pool_index(srv->cfg, name);
	if (proto_id_uuid(k->id) < 0 || getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
		free(k);
		return proto_error_set(err, EIO, "no randomness for the kernel's id and key");
	}
	snprintf(k->name, sizeof(k->name), "%s", name);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(key + 2 * i, 3, "%02x", raw[i]);
	k->state = GW_KERNEL_STARTING;
	gw_kernel_touch(k);
	snprintf(k->conn.transport, sizeof(k->conn.transport), "ipc");
	/* Short names: a UNIX socket path holds at most 107 bytes. */
	if (snprintf(k->conn.ip, sizeof(k->conn.ip), "%.200s/%.8s", srv->runtime_dir, k->id) >=
	    (int)sizeof(k->conn.ip)) {
		free(k);
		return proto_error_set(err, ENAMETOOLONG,
		                       "the runtime directory's name is too long");
	}
	for (int i = 0; i < PROTO_CHANNEL_COUNT; i++)
		k->conn.ports[i] = i + 1;
	k->conn.key = strdup(key);
	k->conn.key_len = strlen(key);
	snprintf(k->conn_path, sizeof(k->conn_path), "%.3000s/kernel-%s.json", srv->runtime_dir,
	         k->id);
	r = gw_profile_command(&srv->cfg->profiles[kind], narrow, srv->kernel_binary, k->conn_path,
	                       srv->cfg->allow_weaker_sandbox, &k->profile, &k->argv, err);
	if (r < 0) {
		proto_conn_clear(&k->conn);
		free(k);
		return r;
	}
	/* Count it now: the limit includes kernels that are still starting. */
	k->next = srv->kernels;
	srv->kernels = k;
	srv->n_kernels++;
	if (pooled)
		srv->n_pooled++;
	text = k->conn.key ? proto_conn_dump(&k->conn) : NULL;
	fd = text ? open(k->conn_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	r = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -EIO;
	if (fd >= 0)
		close(fd);
	free(text);
	/* stdin is opened when first needed (gw_kernel_send_client). */
	for (int i = 0; r == 0 && i < 4; i++)
		if (i != PROTO_WS_STDIN)
			r = gw_channel_open(k, (enum proto_ws_channel)i);
	if (r == 0)
		r = gw_kernel_spawn(k);
	if (r < 0) {
		gw_log(srv, GW_ERR, "cannot start a kernel: %s", strerror(-r));
		gw_kernel_free(k);
		return proto_error_set(err, -r, "the kernel could not be started: %s",
		                       strerror(-r));
	}
	*out = k;
	return 0;
}

/* ---- the pool of ready kernels ---- */

/* The index of a kernelspec name among those offered, or -1. */
static int gw_pool_index(const struct gw_config *cfg, const char *name)
{
	const char *names[GW_CONFIG_KERNEL_NAMES];
	size_t n = gw_config_kernel_names(cfg, names);

	for (size_t i = 0; i < n && i < 8; i++)
		if (!strcmp(names[i], name))
			return (int)i;
	return -1;
}

/*
 * Runs a silent task-mode `pass` in a pooled kernel: the modules a first execution imports
 * (ast, linecache, the task helpers) are loaded before a client waits for them.
 */
static void gw_kernel_warm_up(struct gw_kernel *k)
{
	json_t *content =
	        json_pack("{s:s, s:b, s:b, s:{}, s:b, s:{s:s, s:[]}}", "code", "pass", "silent", 1,
	                  "store_history", 0, "user_expressions", "allow_stdin", 0, "sandcell_task",
	                  "mode", "execute", "return_variables");

	if (content)
		gw_kernel_send_own(k, PROTO_WS_SHELL, "execute_request", content, NULL, 0);
	json_decref(content);
}

static void gw_kernel_pool_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_server *srv = lws_container_of(sul, struct gw_server, sul_pool);
	const char *names[GW_CONFIG_KERNEL_NAMES];
	size_t n = gw_config_kernel_names(srv->cfg, names);
	int64_t now = gw_now_us(), next = 0;
	struct gw_kernel *dead;

	if (srv->stopping)
		return;
	/* Dead pooled kernels go first (one at a time: a shutdown may free at once). */
	do {
		dead = NULL;
		for (struct gw_kernel *k = srv->kernels; k && !dead; k = k->next)
			if (k->pooled && k->state == GW_KERNEL_DEAD && !k->deleting)
				dead = k;
		if (dead)
			gw_kernel_shutdown(dead);
	} while (dead);
	for (size_t i = 0; i < n && i < 8; i++) {
		struct proto_error err = {{0}};
		struct gw_kernel *k;
		int have = 0;

		if (!(srv->pool_used & (1u << i)))
			continue;
		if (now < srv->pool_backoff_us[i]) {
			if (!next || srv->pool_backoff_us[i] < next)
				next = srv->pool_backoff_us[i];
			continue;
		}
		for (k = srv->kernels; k; k = k->next)
			if (k->pooled && k->pool_index == (int)i && !k->deleting)
				have++;
		while (have < srv->cfg->kernel_pool) {
			if (gw_kernel_create(srv, names[i], NULL, true, &k, &err) < 0) {
				gw_log(srv, GW_WARN, "kernel pool (%s): %s; refilling paused",
				       names[i], err.text);
				srv->pool_backoff_us[i] = now + GW_POOL_BACKOFF_US;
				if (!next || srv->pool_backoff_us[i] < next)
					next = srv->pool_backoff_us[i];
				break;
			}
			have++;
		}
	}
	if (next)
		lws_sul_schedule(srv->cx, 0, &srv->sul_pool, gw_kernel_pool_cb,
		                 (lws_usec_t)(next - now));
}

static void gw_kernel_pool_schedule_in(struct gw_server *srv, lws_usec_t us)
{
	if (srv->cfg->kernel_pool > 0 && srv->cx && !srv->stopping)
		lws_sul_schedule(srv->cx, 0, &srv->sul_pool, gw_kernel_pool_cb, us);
}

static void gw_kernel_pool_schedule(struct gw_server *srv)
{
	gw_kernel_pool_schedule_in(srv, 1);
}

int gw_kernel_start(struct gw_server *srv, const char *name, const json_t *narrow,
                    struct gw_kernel **out, struct proto_error *err)
{
	int idx = gw_pool_index(srv->cfg, name);

	/* A request that narrows nothing gets a ready kernel from the pool, when there is one. */
	if (!narrow && idx >= 0 && srv->cfg->kernel_pool > 0) {
		struct gw_kernel *found = NULL;

		for (struct gw_kernel *k = srv->kernels; k; k = k->next)
			if (k->pooled && k->pool_index == idx && k->ready && !k->deleting &&
			    k->state == GW_KERNEL_IDLE)
				found = k;
		/*
		 * The refill waits a little: starting a kernel takes the event loop a few
		 * milliseconds and the CPU some tens, which the answer to this request and the
		 * handed-out kernel's first messages would otherwise wait behind.
		 */
		gw_kernel_pool_schedule_in(srv, GW_POOL_REFILL_DELAY_US);
		if (found && srv->n_kernels - srv->n_pooled >= (size_t)srv->cfg->max_kernels)
			return proto_error_set(err, EBUSY, "the limit of %d kernels is reached",
			                       srv->cfg->max_kernels);
		if (found) {
			found->pooled = false;
			srv->n_pooled--;
			gw_kernel_touch(found);
			gw_log(srv, GW_INFO, "kernel %s (%s) from the pool", found->id,
			       found->name);
			*out = found;
			return 0;
		}
	}
	return gw_kernel_create(srv, name, narrow, false, out, err);
}

void gw_kernel_interrupt_request(struct gw_kernel *k, const char *reason)
{
	json_t *content = reason ? json_pack("{s:s}", "reason", reason) : json_object();

	if (!content ||
	    gw_kernel_send_own(k, PROTO_WS_CONTROL, "interrupt_request", content, NULL, 0) < 0)
		gw_log(k->srv, GW_WARN, "kernel %s: could not send an interrupt", k->id);
	json_decref(content);
}

void gw_kernel_interrupt(struct gw_kernel *k)
{
	if (k->pid > 0 && k->pid_wsi)
		killpg(k->pid, SIGINT);
}

void gw_kernel_restart(struct gw_kernel *k)
{
	json_t *content = json_pack("{s:b}", "restart", 1);

	k->restarting_manual = true;
	k->restart_spawned = !k->pid_wsi;
	k->restarts = 0; /* a restart someone asked for starts the count again */
	k->ready = false;
	k->info_reply_seen = k->info_iopub_seen = false;
	k->info_msg_id[0] = '\0';
	k->state = GW_KERNEL_RESTARTING;
	/*
	 * No `status: restarting` to clients here: front ends read that as an automatic restart
	 * by the server (JupyterLab then reconnects twice); the client that asked knows.
	 */
	if (!k->pid_wsi) {
		json_decref(content);
		if (gw_kernel_spawn(k) < 0) {
			k->state = GW_KERNEL_DEAD;
			gw_server_kernel_event(k->srv, k, GW_WAIT_RESTART, false,
			                       "the kernel could not be restarted");
		}
		return;
	}
	gw_kernel_send_own(k, PROTO_WS_CONTROL, "shutdown_request", content, NULL, 0);
	json_decref(content);
	lws_sul_schedule(k->srv->cx, 0, &k->sul_kill, gw_kernel_kill_cb, GW_SHUTDOWN_GRACE_US);
}

void gw_kernel_shutdown(struct gw_kernel *k)
{
	json_t *content;

	if (k->deleting)
		return;
	k->deleting = true;
	if (!k->pid_wsi) {
		gw_server_kernel_event(k->srv, k, GW_WAIT_DELETE, true, NULL);
		gw_kernel_free(k);
		return;
	}
	content = json_pack("{s:b}", "restart", 0);
	gw_kernel_send_own(k, PROTO_WS_CONTROL, "shutdown_request", content, NULL, 0);
	json_decref(content);
	lws_sul_schedule(k->srv->cx, 0, &k->sul_kill, gw_kernel_kill_cb, GW_SHUTDOWN_GRACE_US);
}

void gw_kernel_kill_all(struct gw_server *srv)
{
	while (srv->kernels) {
		struct gw_kernel *k = srv->kernels;

		if (k->pid > 0 && k->pid_wsi) {
			gw_process_kill(k->pid);
			waitpid(k->pid, NULL, 0);
		}
		gw_server_kernel_event(srv, k, GW_WAIT_DELETE, true, NULL);
		gw_kernel_free(k);
	}
}

/* ---- culling ---- */

static void gw_kernel_cull_cb(lws_sorted_usec_list_t *sul)
{
	struct gw_server *srv = lws_container_of(sul, struct gw_server, sul_cull);
	const struct gw_config *cfg = srv->cfg;

	for (struct gw_kernel *k = srv->kernels, *next; k; k = next) {
		next = k->next;
		if (k->pooled || k->deleting || k->state == GW_KERNEL_STARTING ||
		    k->state == GW_KERNEL_RESTARTING)
			continue;
		if (k->state == GW_KERNEL_BUSY && !cfg->cull_busy)
			continue;
		if (k->n_conns && !cfg->cull_connected)
			continue;
		double idle = (double)(gw_now_us() - k->active_us) / 1e6;

		if (k->state == GW_KERNEL_DEAD || idle > cfg->cull_idle_timeout) {
			gw_log(srv, GW_INFO, "culling kernel %s (%s, idle %.0f s)", k->id,
			       gw_state_names[k->state], idle);
			gw_kernel_shutdown(k);
		}
	}
	lws_sul_schedule(srv->cx, 0, &srv->sul_cull, gw_kernel_cull_cb,
	                 (lws_usec_t)(cfg->cull_interval * LWS_US_PER_SEC));
}

void gw_kernel_cull_start(struct gw_server *srv)
{
	if (srv->cfg->cull_idle_timeout <= 0)
		return;
	lws_sul_schedule(srv->cx, 0, &srv->sul_cull, gw_kernel_cull_cb,
	                 (lws_usec_t)(srv->cfg->cull_interval * LWS_US_PER_SEC));
}
