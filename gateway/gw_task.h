/*
 * The task API (see docs/python-api-json-reference.md): execute, execute_file, interactive,
 * validate and batch tasks, each run in a sandboxed kernel as an ordinary execute_request with
 * a `sandcell_task` key, its output gathered and streamed as events, its reply turned into an
 * ExecutionResult or a ValidationResult, and recorded in the history.
 *
 * Ownership: the server owns every task (srv->tasks) until it has answered, and every
 * interactive session (srv->tsessions). A task names where its events go (a sink: an HTTP
 * request or a WebSocket connection) without owning it; when the sink goes, the task is told
 * and finishes quietly. A task's kernel is borrowed: one-shot kernels are shut down when their
 * task is done, session kernels when their session ends. Kernel callbacks only record what
 * happened; anything that could free a kernel, a session or a task runs later from a timer.
 */
#pragma once

#include <jansson.h>

#include "gw.h"
#include "gw_server.h"

/* ---- from the kernel module ---- */

/*
 * A message from (or made by the gateway for) the kernel that runs t: output on iopub,
 * replies on shell. Returns true when it belonged to t's current execution.
 */
bool gw_task_observe(struct gw_task *t, const struct proto_ws_msg *m, const char *parent_id);

/* The output of t's request msg_id reached the profile's output cap. */
void gw_task_output_capped(struct gw_task *t, const char *msg_id);

/* A kernel is being freed: tasks and sessions using it let go of it. */
void gw_task_kernel_gone(struct gw_server *srv, struct gw_kernel *k);

/* A kernel became ready, restarted or failed (as gw_server_kernel_event). */
void gw_task_kernel_event(struct gw_server *srv, struct gw_kernel *k, enum gw_wait_kind kind,
                          bool ok, const char *why);

/* ---- from the transports ---- */

/*
 * CPU seconds and resident bytes of pid and its descendants, and (when rss_largest is not
 * NULL) the resident bytes of the largest of them (gw_task_io.c).
 */
void gw_task_proc_usage(pid_t pid, double *cpu, size_t *rss, size_t *rss_largest);

/* POST /python/{execute,execute-file,interactive,validate,batch}: h gets one result. */
void gw_task_http(struct gw_server *srv, struct gw_http *h, int type);

/* The HTTP request h went away before its answer. */
void gw_task_http_gone(struct gw_server *srv, struct gw_http *h);

/* A whole text frame on /python/ws or (a task frame) on a kernel's channels socket. */
void gw_task_ws_frame(struct gw_server *srv, struct gw_conn *c, const unsigned char *data,
                      size_t len);

/* The WebSocket c closed: its tasks lose their sink (one-shot ones are cancelled). */
void gw_task_conn_gone(struct gw_server *srv, struct gw_conn *c);

/* GET /python/history, GET|DELETE /python/sessions[/{id}]. */
void gw_task_rest(struct gw_server *srv, struct gw_http *h, char **seg, size_t n);

/* ---- the server ---- */

/* Opens the history (logged on failure: the API then answers without one). */
int gw_task_init(struct gw_server *srv);

/* Ends every task and session (server exit). */
void gw_task_fini(struct gw_server *srv);
