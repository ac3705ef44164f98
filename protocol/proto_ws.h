/*
 * Jupyter's kernel WebSocket encodings (jupyter_server's /api/kernels/{id}/channels):
 *  - legacy (no subprotocol): a text frame of JSON {header, msg_id, msg_type, parent_header,
 *    metadata, content, buffers, channel}; with buffers, a binary frame
 *    u32be nbufs | u32be offset[nbufs] | JSON | buffer... (nbufs = buffers + 1);
 *  - "v1.kernel.websocket.jupyter.org": always binary, u64le count | u64le offset[count] |
 *    channel | header | parent_header | metadata | content | buffer...
 * Pure functions and fuzzed: frames from clients and messages from kernels are both untrusted,
 * so every JSON part is checked to be one JSON object before it is used or forwarded.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto_limits.h"
#include "proto_util.h"

#define PROTO_WS_V1_SUBPROTOCOL "v1.kernel.websocket.jupyter.org"

enum proto_ws_framing {
	PROTO_WS_LEGACY,
	PROTO_WS_V1,
};

/* The channels a WebSocket message may name. */
enum proto_ws_channel {
	PROTO_WS_SHELL,
	PROTO_WS_CONTROL,
	PROTO_WS_STDIN,
	PROTO_WS_IOPUB,
};

/* "shell", "control", "stdin", "iopub". */
const char *proto_ws_channel_name(enum proto_ws_channel ch);

/*
 * A message in transit, as the four JSON parts in text form plus binary buffers. Whether the
 * pointers are owned is said by the function that fills it.
 */
struct proto_ws_msg {
	enum proto_ws_channel channel;
	struct proto_buf header, parent, metadata, content; /* JSON text of one object each */
	struct proto_buf *buffers;
	size_t n_buffers;
	char msg_type[64]; /* copied from the header, NUL-terminated ("" when unknown) */
	char msg_id[128];  /* copied from the header */
};

/*
 * Decodes one frame from a client (binary tells a binary frame from a text one). Checks: the
 * framing (offsets increasing and in range, at least the four parts), the channel (shell,
 * control or stdin; a missing channel in legacy JSON means shell; iopub or anything else is
 * -EPROTO), every JSON part an object (legacy: parent_header, metadata and content default to
 * {} when absent), a header with string msg_id and msg_type, valid UTF-8 in a text frame, and
 * lim (buffers, sizes). On success *out owns copies of everything (free with
 * proto_ws_msg_clear). Returns 0, -EBADMSG (malformed), -EPROTO (bad channel), -EMSGSIZE, or
 * -ENOMEM; err says what was wrong in words fit for the client.
 */
int proto_ws_decode(enum proto_ws_framing f, const unsigned char *data, size_t len, bool binary,
                    const struct proto_limits *lim, struct proto_ws_msg *out,
                    struct proto_error *err);

/*
 * Encodes a message for a client. The four parts in msg must each be the JSON text of one
 * object (this is checked: bytes from a kernel are untrusted; -EBADMSG otherwise) and are
 * re-serialised compactly for the legacy framing, copied as they are for v1. *out becomes an
 * owned buffer (free()); *binary says how to send it. Returns 0, -EBADMSG, -ENOMEM, -EINVAL
 * (an unknown channel) or -EMSGSIZE (a legacy frame past 4 GiB).
 */
int proto_ws_encode(enum proto_ws_framing f, const struct proto_ws_msg *msg, struct proto_buf *out,
                    bool *binary, struct proto_error *err);

/* Frees what a decode gave *m and zeroes it. Safe on a zeroed struct. */
void proto_ws_msg_clear(struct proto_ws_msg *m);
