/*
 * The Jupyter message model: routing identities, header, parent_header, metadata, content and
 * binary buffers. A proto_msg owns everything it points to (copies of identities and buffers,
 * one jansson reference per JSON part). The identity and buffer arrays and their data are freed
 * with jansson's allocator (json_set_alloc_funcs(); plain malloc/free unless a test changes it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "proto_util.h"

#define PROTO_VERSION "5.3"

struct proto_msg {
	struct proto_buf *idents; /* owned array of owned copies */
	size_t n_idents;
	json_t *header;            /* owned; an object with string msg_id and msg_type */
	json_t *parent;            /* owned; an object, {} when there is no parent */
	json_t *metadata;          /* owned; an object */
	json_t *content;           /* owned; an object */
	struct proto_buf *buffers; /* owned array of owned copies */
	size_t n_buffers;
};

/* Returns a new empty message (all JSON parts NULL) or NULL. */
struct proto_msg *proto_msg_new(void);

/* Frees m and all it owns. NULL is fine. */
void proto_msg_free(struct proto_msg *m);
static inline void proto_msg_freep(struct proto_msg **m)
{
	proto_msg_free(*m);
}

/* Borrowed views into the header; "" when absent. */
const char *proto_msg_type(const struct proto_msg *m);
const char *proto_msg_id(const struct proto_msg *m);
const char *proto_msg_session(const struct proto_msg *m);

/* True when msg_type ends in "_reply". */
bool proto_msg_is_reply(const struct proto_msg *m);

/*
 * Returns a new header object {msg_id, session, username, date, msg_type, version} (owned),
 * or NULL on allocation failure.
 */
json_t *proto_header_new(const char *msg_type, const char *session, const char *username);
