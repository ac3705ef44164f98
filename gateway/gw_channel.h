/*
 * The glue between ZeroMQ and the lws loop: each kernel socket's ZMQ_FD is duplicated and
 * adopted as a raw file; when it fires we drain the socket while ZMQ_EVENTS says so, within a
 * budget, and re-check after every send (a send can swallow the edge). The only file that
 * knows about ZMQ_FD.
 */
#pragma once

#include "gw.h"
#include "proto_util.h"

#define GW_ZMQ_PROTOCOL "sandcell-zmq"

/*
 * Creates the socket for one channel of k (DEALER for shell/control/stdin with the kernel's
 * routing id, SUB subscribed to everything for iopub), connects it to the kernel's endpoint
 * and adopts its fd. stdin sends only on a connection that is up (ZMQ_IMMEDIATE), so that
 * gw_channel_connected tells when the kernel can reach it. Returns 0 or -errno.
 */
int gw_channel_open(struct gw_kernel *k, enum proto_ws_channel which);

/*
 * Whether the channel's socket has a connection to send on: true at once for shell and
 * control (they queue until connected), after the handshake for stdin (ZMQ_IMMEDIATE).
 */
bool gw_channel_connected(struct gw_channel *ch);

/* Closes the socket and drops the lws handle. Safe on a closed channel. */
void gw_channel_close(struct gw_channel *ch);

/* Sends frames as one multipart message without blocking. Returns 0 or -errno (-EAGAIN). */
int gw_channel_send(struct gw_channel *ch, const struct proto_buf *frames, size_t n);

/* Dispatches what k's sockets hold now (the kernel exited: its last words first). */
void gw_channel_flush(struct gw_kernel *k);

/* lws callback for the raw-file wsi of a channel (RAW_RX_FILE, RAW_CLOSE_FILE). */
int gw_channel_callback(struct lws *wsi, enum lws_callback_reasons reason);
