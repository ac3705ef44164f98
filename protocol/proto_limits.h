/*
 * Size limits applied to every message read from a socket or a file. One struct, passed by
 * pointer to each parser; proto_limits_default() gives the values documented in docs/protocol.md.
 */
#pragma once

#include <stddef.h>

struct proto_limits {
	size_t max_frames;    /* frames in one multipart message, identities and buffers included */
	size_t max_idents;    /* routing identities before "<IDS|MSG>" */
	size_t max_ident_len; /* bytes in one identity */
	size_t max_json_frame; /* bytes in header, parent_header, metadata or content */
	size_t max_buffer;     /* bytes in one binary buffer */
	size_t max_total;      /* bytes in the whole message */
};

/* 256 frames, 16 identities of 1 KiB, 32 MiB per JSON frame, 64 MiB per buffer and in total. */
#define PROTO_LIMITS_DEFAULT                                                                  \
	{                                                                                     \
		.max_frames = 256, .max_idents = 16, .max_ident_len = 1024,                   \
		.max_json_frame = 32u << 20, .max_buffer = 64u << 20, .max_total = 64u << 20, \
	}
