/*
 * Internals shared by the files of libsandcell-protocol; not part of the public API.
 * Every allocation of the library goes through jansson's allocator, so one
 * json_set_alloc_funcs() hook covers both jansson and us in failure-injection tests.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "proto_util.h"

/* Allocates with jansson's current malloc; returns owned memory or NULL. */
void *proto__malloc(size_t size);

/* Allocates zeroed memory for n elements of size bytes; NULL on failure or overflow. */
void *proto__calloc(size_t n, size_t size);

/* Frees memory from proto__malloc/proto__calloc. NULL is fine. */
void proto__free(void *p);
static inline void proto__freep(void *p)
{
	proto__free(*(void **)p);
}

/*
 * Copies len bytes of data into dst as an owned buffer with one extra NUL byte (so identities
 * can be read as strings). Returns 0 or -ENOMEM (dst cleared).
 */
int proto__buf_copy(struct proto_buf *dst, const void *data, size_t len);

/* Writes 2*len lower-case hex digits of data to out (no NUL). */
void proto__hex_encode(const unsigned char *data, size_t len, char *out);

/*
 * Parses len bytes as exactly one JSON object (duplicate keys refused, "\u0000" in strings
 * kept, a raw NUL byte refused); name labels errors. *out gets a new reference, NULL on
 * failure. Returns 0, -EBADMSG or -ENOMEM.
 */
int proto__parse_object(const void *data, size_t len, const char *name, json_t **out,
                        struct proto_error *err);
