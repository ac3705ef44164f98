/*
 * HMAC-SHA256 signatures of Jupyter messages: the lower-case hex digest of the key over
 * header, parent_header, metadata and content, exactly as sent. An empty key means unsigned.
 * Pure functions with a SHA-256 of our own; no allocation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto_util.h"

#define PROTO_SHA256_LEN   32
#define PROTO_SIGN_HEX_LEN 64

struct proto_sha256 {
	uint32_t state[8];
	uint64_t count; /* bytes hashed so far */
	unsigned char block[64];
	size_t fill;
};

void proto_sha256_init(struct proto_sha256 *s);
void proto_sha256_update(struct proto_sha256 *s, const void *data, size_t len);
void proto_sha256_final(struct proto_sha256 *s, unsigned char out[PROTO_SHA256_LEN]);

/* HMAC-SHA256 of the concatenation of n parts. */
void proto_hmac_sha256(const void *key, size_t keylen, const struct proto_buf *parts, size_t n,
                       unsigned char out[PROTO_SHA256_LEN]);

/*
 * Writes the signature of the four JSON parts (header, parent, metadata, content) to out as
 * 64 hex digits and a NUL; with an empty key writes "" and returns 0. Returns the length.
 */
size_t proto_sign_hex(const void *key, size_t keylen, const struct proto_buf parts[4],
                      char out[PROTO_SIGN_HEX_LEN + 1]);

/*
 * Checks sig against the four parts. With an empty key every signature passes (Jupyter's
 * "no signing"). Otherwise the length is checked first, then the digest is compared in
 * constant time. Returns 0 or -EACCES.
 */
int proto_sign_verify(const void *key, size_t keylen, const struct proto_buf parts[4],
                      const struct proto_buf *sig);
