/*
 * Wire framing: a multipart message [identities..., "<IDS|MSG>", signature, header,
 * parent_header, metadata, content, buffers...] to and from proto_msg. Pure and fuzzed: the
 * frames are borrowed, the decoded message owns copies.
 */
#pragma once

#include <stddef.h>

#include "proto_limits.h"
#include "proto_msg.h"
#include "proto_util.h"

#define PROTO_DELIM     "<IDS|MSG>"
#define PROTO_DELIM_LEN 9

/* Borrowed views of one received multipart message after the delimiter split. */
struct proto_wire_parts {
	const struct proto_buf *idents;
	size_t n_idents;
	struct proto_buf signature, header, parent, metadata, content;
	const struct proto_buf *buffers;
	size_t n_buffers;
};

/*
 * Finds the delimiter and checks every limit (frame count, identity count and length, JSON
 * frame sizes, buffer sizes, total). Returns 0, -EBADMSG (no delimiter, fewer than five frames
 * after it) or -EMSGSIZE (a limit), with details in err.
 */
int proto_wire_split(const struct proto_buf *frames, size_t n, const struct proto_limits *lim,
                     struct proto_wire_parts *out, struct proto_error *err);

/*
 * Splits, verifies the signature with key (empty key: no check), parses the four JSON parts
 * (each must be an object; the header needs string msg_id and msg_type) and copies identities
 * and buffers. On success *out is a new owned message. Returns 0, -EBADMSG, -EMSGSIZE,
 * -EACCES (bad signature) or -ENOMEM; *out is NULL on failure. Limits are checked before the
 * signature, the signature before any JSON is parsed. Duplicate keys and invalid UTF-8 are
 * -EBADMSG; "\u0000" inside strings is kept, except in msg_id and msg_type. Some allocation
 * failures inside jansson's parser come back as -EBADMSG.
 */
int proto_wire_decode(const struct proto_buf *frames, size_t n, const void *key, size_t keylen,
                      const struct proto_limits *lim, struct proto_msg **out,
                      struct proto_error *err);

/* Serialised parts of an outgoing message; all borrowed. */
struct proto_wire_out {
	const struct proto_buf *idents; /* for iopub: one topic frame */
	size_t n_idents;
	struct proto_buf header, parent, metadata, content; /* JSON text */
	const struct proto_buf *buffers;
	size_t n_buffers;
};

/*
 * Builds the frame list of an outgoing message: identities, delimiter, signature (written into
 * sigbuf), the four JSON parts and buffers. frames must hold proto_wire_frame_count(m) entries;
 * they borrow from m, sigbuf and a static delimiter. Returns the number of frames.
 */
size_t proto_wire_frame_count(const struct proto_wire_out *m);
size_t proto_wire_encode(const struct proto_wire_out *m, const void *key, size_t keylen,
                         char sigbuf[65], struct proto_buf *frames);

/*
 * Serialises the JSON parts of msg (compact, UTF-8, keys in insertion order) into owned strings
 * and fills out (identities and buffers borrowed from msg). A NULL parent, metadata or content
 * is sent as {}. Release with proto_wire_out_release() (only for a struct filled here).
 * Returns 0, -EINVAL (msg has no header) or -ENOMEM (also when jansson refuses to dump: a
 * string made with a *_nocheck constructor that is not UTF-8, or a reference cycle).
 */
int proto_wire_out_from_msg(const struct proto_msg *msg, struct proto_wire_out *out);
void proto_wire_out_release(struct proto_wire_out *out);
