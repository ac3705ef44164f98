/*
 * Kernel lifecycle and message routing (see gw_kernel.h). Everything runs on the lws loop.
 * Messages from a kernel are untrusted: they are checked (framing, signature, JSON) before
 * anything is read from them, and a kernel can only reach its own clients.
 */
#include "gw_kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "gw_server.h"
#include "gw_ws.h"
#include "proto_sign.h"
#include "proto_wire.h"

/* msg_ids of requests the gateway itself sends start with this. */
#define GW_OWN_PREFIX     "sandcell-gw-"
#define GW_OWN_PREFIX_LEN (sizeof(GW_OWN_PREFIX) - 1)
/* kernel_info is re-sent at this interval until the kernel answers on shell and iopub. */
#define GW_NUDGE_US (10 * LWS_US_PER_MS)
/* A kernel asked to shut down is killed after this long. */
#define GW_SHUTDOWN_GRACE_US (3 * LWS_US_PER_SEC)

static const char *const gw_state_names[] = {
        [GW_KERNEL_STARTING] = "starting",     [GW_KERNEL_IDLE] = "idle", [GW_KERNEL_BUSY] = "busy",
        [GW_KERNEL_RESTARTING] = "restarting", [GW_KERNEL_DEAD] = "dead",
};

static void gw_kernel_touch(struct gw_kernel *k)
{
	proto_id_date_now(k->last_activity);
	k->active_us = gw_now_us();
}

struct gw_kernel *gw_kernel_find(struct gw_server *srv, const char *id)
{
	for (struct gw_kernel *k = srv->kernels; k; k = k->next)
		if (strcmp(k->id, id) == 0)
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
	gw_routes_forget(&k->routes, c);
	c->kernel = NULL;
	c->next = NULL;
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

int gw_kernel_send(struct gw_kernel *k, struct gw_conn *from, const struct proto_ws_msg *m)
{
	int r;

	if (m->channel == PROTO_WS_IOPUB)
		return -EPROTO;
	if (k->state == GW_KERNEL_DEAD)
		return -EPIPE;
	r = gw_kernel_send_parts(k, m->channel, m);
	if (r < 0)
		return r;
	gw_kernel_touch(k);
	if (m->channel != PROTO_WS_STDIN) /* an input_reply gets no reply */
		gw_routes_add(&k->routes, m->msg_id, from);
	return 0;
}

/* ---- receiving from the kernel ---- */

static void gw_kernel_became_ready(struct gw_kernel *k)
{
	bool restart = k->restarting_manual;

	k->ready = true;
	k->restarting_manual = false;
	if (k->state == GW_KERNEL_STARTING || k->state == GW_KERNEL_RESTARTING)
		k->state = GW_KERNEL_IDLE;
	lws_sul_cancel(&k->sul_ready);
	gw_log(k->srv, GW_INFO, "kernel %s (%s) ready, pid %d", k->id, k->name, (int)k->pid);
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

void gw_kernel_on_message(struct gw_kernel *k, enum proto_ws_channel which,
                          const struct proto_frames *frames)
{
	struct proto_wire_parts parts;
	struct proto_error err = {{0}};
	struct proto_ws_msg m = {0};
	struct proto_buf four[4];
	json_t *header = NULL, *parent = NULL, *content = NULL;
	const char *msg_type = NULL, *parent_id;
	int r;

	/* A subscriber's frames start with the topic; everything else as shell. */
	r = proto_wire_split(frames->v, frames->n, &k->srv->limits, &parts, &err);
	if (r == 0) {
		four[0] = parts.header;
		four[1] = parts.parent;
		four[2] = parts.metadata;
		four[3] = parts.content;
		r = proto_sign_verify(k->conn.key, k->conn.key_len, four, &parts.signature);
		if (r < 0)
			snprintf(err.text, sizeof(err.text), "bad signature");
	}
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
		if (!strcmp(msg_type, "status")) {
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
		/* Before it is ready a kernel has nothing a client missed (its "starting"). */
		if (!k->conns && k->ready)
			gw_kernel_hold(k, &m, gw_msg_is_droppable(msg_type));
		for (struct gw_conn *c = k->conns; c; c = c->next)
			gw_ws_send(c, &m, gw_msg_is_droppable(msg_type));
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
	{
		struct gw_conn *to = gw_routes_find(&k->routes, parent_id);

		if (to)
			gw_ws_send(to, &m, false);
		else if (!k->conns)
			gw_kernel_hold(k, &m, false);
		else
			gw_log(k->srv, GW_DBG, "kernel %s: a %s for a client that left", k->id,
			       msg_type);
	}
out:
	json_decref(header);
	json_decref(parent);
	json_decref(content);
}

/* ---- process ---- */

static void gw_kernel_nudge_cb(lws_sorted_usec_list_t *sul);

/* Starts (or restarts) the kernel process with the kernel's connection file. */
static int gw_kernel_spawn(struct gw_kernel *k)
{
	struct gw_server *srv = k->srv;
	int pidfd;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;

		/* The gateway blocks SIGTERM and SIGINT for its signalfd: unblock them. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		setsid();
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execl(srv->kernel_binary, srv->kernel_binary, "-f", k->conn_path, (char *)NULL);
		_exit(127);
	}
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
	k->info_reply_seen = k->info_iopub_seen = false;
	k->info_msg_id[0] = '\0';
	k->start_deadline_us = gw_now_us() + (int64_t)(srv->cfg->kernel_start_timeout * 1e6);
	lws_sul_schedule(srv->cx, 0, &k->sul_ready, gw_kernel_nudge_cb, 1);
	gw_log(srv, GW_DBG, "kernel %s: started pid %d", k->id, (int)pid);
	return 0;
}

static void gw_kernel_kill(struct gw_kernel *k)
{
	if (k->pid > 0 && k->pid_wsi)
		killpg(k->pid, SIGKILL);
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
	if (k->pid_wsi) {
		lws_set_opaque_user_data(k->pid_wsi, NULL);
		lws_set_timeout(k->pid_wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
	}
	if (k->conn_path[0])
		unlink(k->conn_path);
	gw_replay_clear(&k->replay);
	proto_conn_clear(&k->conn);
	free(k);
}

/* The process is gone (reaped): shut down, restart or give up. */
static void gw_kernel_exited(struct gw_kernel *k, int status_code, int si_code)
{
	struct gw_server *srv = k->srv;

	lws_sul_cancel(&k->sul_kill);
	lws_sul_cancel(&k->sul_ready);
	k->pid = 0;
	if (k->deleting || srv->stopping) {
		gw_log(srv, GW_INFO, "kernel %s shut down", k->id);
		gw_server_kernel_event(srv, k, GW_WAIT_DELETE, true, NULL);
		gw_kernel_free(k);
		return;
	}
	if (k->restarting_manual) {
		if (gw_kernel_spawn(k) < 0) {
			k->state = GW_KERNEL_DEAD;
			gw_server_kernel_event(srv, k, GW_WAIT_RESTART, false,
			                       "the kernel could not be restarted");
		}
		return;
	}
	gw_log(srv, GW_WARN, "kernel %s (pid exit %s %d) died unexpectedly", k->id,
	       si_code == CLD_EXITED ? "status" : "signal", status_code);
	if (k->restarts < srv->cfg->restart_limit) {
		k->restarts++;
		k->state = GW_KERNEL_RESTARTING;
		gw_kernel_broadcast_status(k, "restarting");
		if (gw_kernel_spawn(k) == 0)
			return;
	}
	k->state = GW_KERNEL_DEAD;
	gw_kernel_broadcast_status(k, "dead");
	gw_server_kernel_event(srv, k, GW_WAIT_START, false, "the kernel died while starting");
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

int gw_kernel_start(struct gw_server *srv, const char *name, struct gw_kernel **out)
{
	struct gw_kernel *k;
	unsigned char raw[16];
	char key[33], *text;
	int fd, r;

	*out = NULL;
	if (strcmp(name, srv->cfg->default_kernel) != 0)
		return -ENOENT;
	if (srv->n_kernels >= (size_t)srv->cfg->max_kernels)
		return -EBUSY;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->srv = srv;
	if (proto_id_uuid(k->id) < 0 || getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
		free(k);
		return -EIO;
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
		return -ENAMETOOLONG;
	}
	for (int i = 0; i < PROTO_CHANNEL_COUNT; i++)
		k->conn.ports[i] = i + 1;
	k->conn.key = strdup(key);
	k->conn.key_len = strlen(key);
	snprintf(k->conn_path, sizeof(k->conn_path), "%.3000s/kernel-%s.json", srv->runtime_dir,
	         k->id);
	/* Count it now: the limit includes kernels that are still starting. */
	k->next = srv->kernels;
	srv->kernels = k;
	srv->n_kernels++;
	text = k->conn.key ? proto_conn_dump(&k->conn) : NULL;
	fd = text ? open(k->conn_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	r = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -EIO;
	if (fd >= 0)
		close(fd);
	free(text);
	for (int i = 0; r == 0 && i < 4; i++)
		r = gw_channel_open(k, (enum proto_ws_channel)i);
	if (r == 0)
		r = gw_kernel_spawn(k);
	if (r < 0) {
		gw_log(srv, GW_ERR, "cannot start a kernel: %s", strerror(-r));
		gw_kernel_free(k);
		return r;
	}
	*out = k;
	return 0;
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
			killpg(k->pid, SIGKILL);
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
		if (k->deleting || k->state == GW_KERNEL_STARTING ||
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
