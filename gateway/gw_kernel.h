/*
 * Kernels: launch (a sandcell-kernel process per kernel, ipc:// endpoints in the private
 * runtime directory), readiness, routing of messages between clients and the kernel, exit
 * noticed through a pidfd, automatic restart, shutdown, and the replay buffer kept while no
 * client is connected. The server owns every kernel.
 */
#pragma once

#include <jansson.h>

#include "gw.h"
#include "proto_zmq.h"

#define GW_PID_PROTOCOL "sandcell-pid"
#define GW_ERR_PROTOCOL "sandcell-stderr"

/*
 * Starts a kernel named name (a kernelspec the gateway offers: its profile) under the
 * profile's limits narrowed by narrow (borrowed JSON object of lower limits, see
 * gw_profile_narrow; NULL for none). Errors, with err saying why: -ENOENT an unknown name,
 * -EPERM a profile this host lacks sandbox layers for (without --allow-weaker-sandbox) or a
 * request above the profile, -EINVAL a malformed narrow, -EBUSY the kernel limit. On success
 * *out is registered with the server and is starting; gw_server_kernel_event() tells when it
 * is ready.
 */
int gw_kernel_start(struct gw_server *srv, const char *name, const json_t *narrow,
                    struct gw_kernel **out, struct proto_error *err);

/* "starting", "idle", "busy", "restarting", "dead". */
const char *gw_kernel_state_name(enum gw_kernel_state state);

/* Looks a kernel up by id. Borrowed; NULL when unknown. */
struct gw_kernel *gw_kernel_find(struct gw_server *srv, const char *id);

/* The REST model {id, name, last_activity, execution_state, connections} (new reference). */
json_t *gw_kernel_model(const struct gw_kernel *k);

/*
 * Sends the kernel an interrupt_request on control: with a reason (the kernel then raises
 * TimeoutError(reason)) or without (KeyboardInterrupt).
 */
void gw_kernel_interrupt_request(struct gw_kernel *k, const char *reason);

/* Sends SIGINT to the kernel's process group. */
void gw_kernel_interrupt(struct gw_kernel *k);

/* Restarts the kernel (state gone); gw_server_kernel_event(GW_WAIT_RESTART) when ready. */
void gw_kernel_restart(struct gw_kernel *k);

/* Asks the kernel to shut down, kills it after a grace period, then frees it. */
void gw_kernel_shutdown(struct gw_kernel *k);

/* Kills every kernel at once (server exit) and frees them. */
void gw_kernel_kill_all(struct gw_server *srv);

/* Attaches a WebSocket connection; replays what was held while no client was connected. */
void gw_kernel_attach(struct gw_kernel *k, struct gw_conn *c);
void gw_kernel_detach(struct gw_kernel *k, struct gw_conn *c);

/*
 * Forwards a decoded client message to the kernel (signed with the kernel's key) and
 * remembers who asked, so that the reply goes back to that connection. Returns 0 or -errno.
 */
int gw_kernel_send(struct gw_kernel *k, struct gw_conn *from, const struct proto_ws_msg *m);

/* As gw_kernel_send, for a task: an execute_request gets wall seconds (when lower than the
 * profile's, > 0) as its wall-clock limit. from may be NULL. */
int gw_kernel_send_task(struct gw_kernel *k, struct gw_conn *from, const struct proto_ws_msg *m,
                        double wall);

/* One multipart message arrived from the kernel on channel which (borrowed frames). */
void gw_kernel_on_message(struct gw_kernel *k, enum proto_ws_channel which,
                          const struct proto_frames *frames);

/* lws callback for a kernel's pidfd (RAW_RX_FILE: the process exited). */
int gw_kernel_pid_callback(struct lws *wsi, enum lws_callback_reasons reason);

/* lws callback for a kernel's stderr pipe: each line is logged, the last one kept. */
int gw_kernel_err_callback(struct lws *wsi, enum lws_callback_reasons reason);

/* Culls idle kernels according to the configuration; rescheduled by itself. */
void gw_kernel_cull_start(struct gw_server *srv);

/*
 * Builds a gateway-made iopub message (a status or a stream notice) with parent as its
 * parent_header (NULL: {}), so that a front end shows it with the request it concerns.
 * Owned parts in *m.
 */
int gw_kernel_make_msg(const char *msg_type, json_t *content, const struct proto_buf *parent,
                       struct proto_ws_msg *m);
