/*
 * The gateway's objects and who owns them: the server owns its kernels, HTTP waiters and
 * sessions; a kernel owns its ZeroMQ channels, its process and its replay buffer, and lists
 * (but does not own) the WebSocket connections attached to it; lws owns each connection's
 * memory (per-session data) and tells us when it goes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "gw_buffer.h"
#include "gw_config.h"
#include "gw_profile.h"
#include "proto_conn.h"
#include "proto_id.h"
#include "proto_limits.h"
#include "proto_ws.h"

#define GW_VERSION SANDCELL_VERSION /* from meson.build */

struct gw_kernel;
struct gw_conn;
struct gw_task;
struct gw_tsession;
struct gw_history;

/* One ZeroMQ socket of a kernel, its fd adopted into the lws loop. */
struct gw_channel {
	struct gw_kernel *kernel;
	enum proto_ws_channel which;
	void *sock;
	struct lws *wsi; /* the adopted duplicate of ZMQ_FD */
	/* In the server's list of channels to look at again (after sends or a spent budget). */
	struct gw_channel *drain_prev, *drain_next;
	bool drain_queued;
};

enum gw_kernel_state {
	GW_KERNEL_STARTING,
	GW_KERNEL_IDLE,
	GW_KERNEL_BUSY,
	GW_KERNEL_RESTARTING,
	GW_KERNEL_DEAD,
};

/* An HTTP request waiting for a kernel event (ready, restarted, gone). */
enum gw_wait_kind {
	GW_WAIT_START,   /* POST /api/kernels, POST /api/sessions: 201 when ready */
	GW_WAIT_RESTART, /* POST .../restart: 200 when ready again */
	GW_WAIT_DELETE,  /* DELETE: 204 when the process is gone */
};

struct gw_http; /* per-HTTP-request data (gw_server.c) */

/*
 * An execute_request sent to a kernel and not answered yet, or the last one answered (its late
 * output still counts): what the per-execution limits need to know about it.
 */
struct gw_exec {
	struct gw_exec *next;
	char msg_id[128];
	struct proto_buf parent; /* owned: the request's header, for the gateway's messages */
	size_t output;           /* bytes of output counted against the profile's cap */
	bool capped;             /* the cap was reached (and the clients told so) */
	bool armed;              /* its wall-clock timer was started */
	double wall;             /* its wall-clock limit in seconds (the profile's or lower) */
};

/* execute_requests a kernel may have waiting; more are refused with a notice. */
#define GW_EXEC_MAX 256

/* Bytes of the kernel's stderr kept as one line (longer lines are cut). */
#define GW_ERR_LINE 256

struct gw_kernel {
	struct gw_server *srv;
	struct gw_kernel *next;
	char id[PROTO_UUID_LEN + 1];
	char name[64];
	enum gw_kernel_state state;
	char last_activity[PROTO_DATE_LEN + 1];
	int64_t active_us;      /* monotonic time of the last activity, for culling */
	struct proto_conn conn; /* endpoints and key (owned) */
	char conn_path[4096];
	pid_t pid;
	struct lws *pid_wsi; /* the adopted pidfd; NULL when no process runs */
	int restarts;        /* automatic restarts so far */
	size_t rss_base;     /* the interpreter's resident bytes when it became ready: its memory
	                      * limit counts what runs add to this */
	bool deleting, restarting_manual, ready;
	bool restart_spawned; /* the process running is the one a requested restart started */
	bool info_reply_seen, info_iopub_seen;
	char info_msg_id[128];   /* our readiness kernel_info_request */
	struct gw_channel ch[4]; /* indexed by enum proto_ws_channel */
	struct gw_conn *conns;   /* attached WebSocket connections (not owned) */
	size_t n_conns;
	struct gw_routes routes;          /* who asked what, for replies */
	struct gw_replay replay;          /* held while no client is connected (owned) */
	lws_sorted_usec_list_t sul_ready; /* kernel_info retries, start timeout */
	lws_sorted_usec_list_t sul_kill;  /* shutdown grace before SIGKILL */
	int64_t start_deadline_us;
	struct gw_profile profile;  /* owned: the limits this kernel runs under */
	char **argv;                /* owned: its command line (gw_profile_command) */
	struct lws *err_wsi;        /* the adopted read end of the kernel's stderr pipe */
	char err_part[GW_ERR_LINE]; /* a stderr line being read */
	size_t err_part_len;
	char err_line[GW_ERR_LINE]; /* the kernel's last non-empty line on stderr */
	struct gw_exec *execs;      /* owned: waiting for their execute_reply, oldest first */
	size_t n_execs;
	struct gw_exec *exec_done;            /* owned: the last one answered, or NULL */
	lws_sorted_usec_list_t sul_wall;      /* the oldest request's wall-clock limit */
	lws_sorted_usec_list_t sul_wall_kill; /* after its interrupt: kill if still running */
	char wall_msg_id[128];                /* the request interrupted for its wall-clock limit */
	double wall_secs;                     /* and that limit */
	bool wall_killed;                     /* the process was killed for it */
	struct gw_replay stdin_wait; /* owned: shell/stdin messages held until stdin connects */
	lws_sorted_usec_list_t sul_stdin; /* checks whether it has */
	int64_t stdin_deadline_us;        /* sent anyway after this */
	struct gw_task *task; /* the task whose execution runs here (not owned), or NULL */
	bool oneshot;         /* a task's throw-away kernel: never restarted, output not held */
	bool pooled;          /* started ahead, not handed out yet: invisible to clients */
	int pool_index;       /* its kernelspec's index in gw_config_kernel_names() */
};

/* Per-connection data of a kernel WebSocket (lws allocates it). */
struct gw_conn {
	struct gw_conn *next; /* in kernel->conns */
	struct lws *wsi;
	struct gw_kernel *kernel; /* NULL once the kernel is gone */
	enum proto_ws_framing framing;
	char session_id[128];
	struct gw_queue out;          /* owned */
	struct proto_buf drop_parent; /* owned: parent_header of the last dropped output */
	unsigned char *rx;            /* a message being reassembled from fragments */
	size_t rx_len, rx_cap;
	bool rx_binary, rx_overflow;
	bool closing;
	char close_reason[124];
	int close_code;
	struct gw_server *srv;
	bool tasks_only; /* /python/ws: task frames only, no kernel */
	size_t n_tasks;  /* tasks in flight whose events go here */
};

struct gw_server {
	struct gw_config *cfg;
	struct lws_context *cx;
	struct lws_vhost *vh;
	void *zctx;
	char runtime_dir[4096];
	bool own_runtime_dir;
	char kernel_binary[4096];
	struct gw_kernel *kernels;
	size_t n_kernels; /* including starting ones: the limit applies to this */
	struct gw_http *waiters;
	struct proto_limits limits; /* for kernel and client messages */
	bool stopping;
	int exit_code;
	lws_sorted_usec_list_t sul_cull;
	struct gw_session *sessions;
	json_t *sandbox;               /* owned: the kernel's --check-sandbox report, or NULL */
	char sandbox_error[512];       /* why there is no report */
	struct gw_task *tasks;         /* owned: tasks not finished yet */
	struct gw_tsession *tsessions; /* owned: interactive task sessions */
	struct gw_history *history;    /* owned: the execution history, or NULL */
	lws_sorted_usec_list_t sul_tsessions; /* expiry of idle task sessions */
	lws_sorted_usec_list_t sul_pool;      /* refills the pool of ready kernels */
	unsigned pool_used;                   /* kernelspecs (by index) whose pool is kept full */
	int64_t pool_backoff_us[8];           /* no refill before: a pooled kernel failed */
	size_t n_pooled;                      /* kernels in the pool (in n_kernels too) */
	struct gw_zygote *zygote;             /* owned: forks kernels (gw_zygote.c), or NULL */
	/*
	 * Channels to drain on the next loop turn, oldest first, under one timer: a timer each
	 * made every re-check walk libwebsockets' sorted list of thousands.
	 */
	struct gw_channel *drain_head, *drain_tail;
	size_t n_drain;
	lws_sorted_usec_list_t sul_drain;
	bool drain_scheduled;
	int64_t zygote_backoff_us; /* no zygote before: the last one failed */
};

/* REST /api/sessions model. */
struct gw_session {
	struct gw_session *next;
	char id[PROTO_UUID_LEN + 1];
	char *path, *name, *type;
	struct gw_kernel *kernel; /* not owned */
};

/* Logging to stderr with a level (cfg->log_level). */
void gw_log(const struct gw_server *srv, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
#define GW_ERR  0
#define GW_WARN 1
#define GW_INFO 2
#define GW_DBG  3

int64_t gw_now_us(void);
