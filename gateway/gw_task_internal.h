/*
 * What gw_task.c (the engine) and gw_task_io.c (the transports) share: the task and session
 * structs and the engine's entry points.
 */
#pragma once

#include <stdarg.h>

#include "gw_history.h"
#include "gw_task.h"
#include "proto_task.h"

#define GW_TASK_HALF           (512u << 10) /* bytes kept of a stream's start, and of its end */
#define GW_TASK_DISPLAYS_MAX   32
#define GW_TASK_DISPLAYS_BYTES (8u << 20)
#define GW_TASK_REPLY_MAX      (16u << 20) /* an execute_reply larger is not believed */
#define GW_TASK_QUEUE_MAX      64          /* tasks waiting for one session */
#define GW_TASK_PROGRESS_MIME  "application/vnd.sandcell.progress+json"
#define GW_TASK_CPU_BASE_US    (50 * 1000) /* when a run's CPU baseline is read */

/* A captured stream: its first GW_TASK_HALF bytes, then a ring of its newest. */
struct gw_text {
	char *head;
	size_t head_len;
	char *tail;
	size_t tail_len, tail_pos;
	size_t total;
	bool cut;
};

enum gw_task_sink { GW_SINK_NONE, GW_SINK_HTTP, GW_SINK_WS };

enum gw_task_phase {
	GW_TASK_WAIT_KERNEL, /* its kernel starts (or restarts for reset_session) */
	GW_TASK_QUEUED,      /* behind other tasks of its session */
	GW_TASK_RUNNING,     /* its execute_request was sent */
	GW_TASK_DONE,
};

/* A batch item's code: the item's own, or a script's source read for it (owned). */
struct gw_task_item_run {
	const char *code;
	size_t code_len;
	char *owned;
};

struct gw_task {
	struct gw_task *next; /* in srv->tasks */
	struct gw_server *srv;
	json_t *envelope; /* owned: the request, which p borrows from */
	struct proto_task p;
	json_t *cid; /* borrowed from envelope: the client's id (WebSocket), or NULL */
	char task_id[PROTO_UUID_LEN + 1];
	enum gw_task_sink sink;
	struct gw_http *http; /* not owned */
	struct gw_conn *conn; /* not owned */
	enum gw_task_phase phase;
	/* what runs */
	const char *code; /* borrowed (p) or code_owned */
	size_t code_len;
	char *code_owned;              /* execute_file: the script's source */
	struct gw_task_item_run *runs; /* batch: one per item (owned) */
	size_t item;                   /* batch: the current item */
	json_t *results;               /* batch: results so far (owned) */
	struct gw_kernel *kernel;      /* not owned */
	char kernel_id[PROTO_UUID_LEN + 1];
	bool kernel_ready;
	struct gw_tsession *session; /* interactive: not owned; t is in its queue */
	struct gw_task *snext;       /* in session->queue */
	char session_id[132];
	bool reset_done;
	/* the current execution */
	char msg_id[128];
	int64_t sent_us;
	char started_iso[PROTO_DATE_LEN + 1];
	bool got_reply, got_idle, wall_hit, output_capped;
	json_t *reply;         /* owned: execute_reply content */
	struct gw_text out[2]; /* stdout, stderr */
	size_t output_bytes;
	json_t *displays; /* owned */
	size_t n_displays, displays_bytes;
	bool displays_cut;
	size_t lim_memory, lim_output;
	unsigned lim_cpu;
	double lim_wall;
	size_t peak_rss;
	double cpu_base; /* the kernel's CPU seconds at the first metrics tick */
	bool cpu_base_set;
	bool alerted[4];
	bool cancel_requested, cancelled;
	char lost[256]; /* why its kernel or session went, when they did */
	lws_sorted_usec_list_t sul_step, sul_metrics, sul_cancel;
};

struct gw_tsession {
	struct gw_tsession *next;
	char id[132];
	char level[16];           /* its security level, "" for the operator's default */
	struct gw_kernel *kernel; /* not owned (the server's) */
	bool dead;                /* its kernel went */
	struct gw_task *queue;    /* the running task first, then those waiting (not owned) */
	size_t queued;
	int64_t created_us, last_us;
	char created_iso[PROTO_DATE_LEN + 1], last_iso[PROTO_DATE_LEN + 1];
	unsigned executions;
};

/* gw_task.c */
void gw_task_emit(struct gw_task *t, json_t *ev, bool droppable);
void gw_task_poke(struct gw_task *t);
int gw_task_start_kernel(struct gw_task *t, bool oneshot, char *why, size_t why_len);
void gw_task_exec_reset(struct gw_task *t);
void gw_task_note_limits(struct gw_task *t, const struct gw_kernel *k);
void gw_task_free(struct gw_task *t);
void gw_task_answer(struct gw_task *t, int status, json_t *body);
void gw_task_fail(struct gw_task *t, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void gw_task_cancel(struct gw_task *t);
void gw_task_format_mb(size_t bytes, char *buf, size_t len);
struct gw_tsession *gw_tsession_find(struct gw_server *srv, const char *id);
void gw_tsession_end(struct gw_server *srv, struct gw_tsession *s, const char *why);
void gw_tsession_schedule(struct gw_server *srv);
