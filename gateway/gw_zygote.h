/*
 * Starting kernel processes: through the zygote (`sandcell-kernel --zygote 3`, one warm
 * interpreter that forks kernels, so that a kernel costs a fork and its sandbox instead of an
 * interpreter start), or spawned directly. Forks of one zygote share CPython's string-hash
 * seed, so the zygote is replaced after --zygote-kernels kernels.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <libwebsockets.h>

#include "gw.h"

/*
 * Spawns argv with the environment envp (NULL: ours) in a new session with default signals,
 * nothing blocked, err_fd as its stderr (-1: ours), fd3 as its descriptor 3 (-1: none) and no
 * other descriptor. 0 with *pid, or -errno.
 */
int gw_process_spawn(char **argv, char **envp, int err_fd, int fd3, pid_t *pid);

/*
 * Kills a kernel process and its process group. Both: a zygote's fork makes its session a
 * moment after the zygote answered, and before that it has no children to kill.
 */
void gw_process_kill(pid_t pid);

/* Starts the zygote unless it runs, is disabled (--zygote-kernels 0) or failed lately. */
void gw_zygote_start(struct gw_server *srv);

/*
 * Has the zygote fork the kernel argv (argv[0] must be the gateway's kernel binary) with
 * err_fd as its stderr: 0 with *pid, the gateway's child. -EAGAIN when the zygote is not
 * ready, not enabled or failed (then spawn it with gw_process_spawn), or another -errno.
 */
int gw_zygote_spawn(struct gw_server *srv, char **argv, int err_fd, pid_t *pid);

#define GW_ZYGOTE_PROTOCOL "sandcell-zygote"

/* The event-loop side of the zygote's socket: its hello and its end. */
int gw_zygote_callback(struct lws *wsi, enum lws_callback_reasons reason);

/* Ends the zygote; kernels it forked go on. */
void gw_zygote_stop(struct gw_server *srv);
