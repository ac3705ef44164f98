/*
 * Jupyter connection files: {transport, ip, *_port, key, signature_scheme, ...}. The parser is
 * pure (bytes in, struct out) and fuzzed; the struct owns its key.
 */
#pragma once

#include <stddef.h>

#include "proto_util.h"

enum proto_channel {
	PROTO_CHANNEL_SHELL,
	PROTO_CHANNEL_IOPUB,
	PROTO_CHANNEL_STDIN,
	PROTO_CHANNEL_CONTROL,
	PROTO_CHANNEL_HB,
	PROTO_CHANNEL_COUNT,
};

/* "shell", "iopub", "stdin", "control", "hb". */
const char *proto_channel_name(enum proto_channel ch);

struct proto_conn {
	char transport[4]; /* "tcp" or "ipc" */
	char ip[256];      /* an address for tcp, a path prefix for ipc */
	int ports[PROTO_CHANNEL_COUNT];
	char *key; /* owned, NUL-terminated; "" when messages are unsigned */
	size_t key_len;
	char kernel_name[128]; /* optional, "" when absent */
};

/*
 * Parses a connection file's bytes. Requires transport (tcp|ipc), ip, the five ports
 * (0..65535; 0 only for tcp, meaning "pick one"), key (a string, may be empty) and
 * signature_scheme "hmac-sha256" when key is not empty. Unknown fields are ignored.
 * Ports are JSON integers (not strings or reals); ip is 1..255 bytes; kernel_name (string or
 * null) at most 127 bytes; a missing signature_scheme with a key means hmac-sha256.
 * On success *out owns its key; release it with proto_conn_clear(). On failure *out is
 * left cleared. Returns 0, -EBADMSG (malformed, details in err) or -ENOMEM.
 */
int proto_conn_parse(const char *data, size_t len, struct proto_conn *out, struct proto_error *err);

/* Frees the key and zeroes the struct. Safe on a cleared struct. */
void proto_conn_clear(struct proto_conn *c);

/*
 * Writes the ZeroMQ endpoint of a channel: "tcp://IP:PORT" or "ipc://IP-PORT" (the form
 * jupyter_client uses). Returns the length, or -ENAMETOOLONG when it does not fit in len
 * (-EINVAL for an unknown channel).
 */
int proto_conn_endpoint(const struct proto_conn *c, enum proto_channel ch, char *buf, size_t len);

/*
 * Serialises c as a connection file (JSON text, owned by the caller, free()). Returns NULL on
 * allocation failure or when a string is not valid UTF-8.
 */
char *proto_conn_dump(const struct proto_conn *c);
