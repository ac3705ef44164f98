/*
 * SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and Jupyter message signatures. Everything
 * works on caller memory: no allocation, no state outside the structs passed in.
 */
#include "proto_sign.h"

#ifdef PROTO_HAVE_LIBCRYPTO
#include <openssl/evp.h>
#endif

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto_internal.h"

#define HMAC_BLOCK 64

static const uint32_t sha256_k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned int n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One application of the compression function to a 64-byte block. */
static void sha256_block(uint32_t state[8], const unsigned char block[64])
{
	uint32_t w[64];
	uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
	uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

	for (int i = 0; i < 16; i++)
		w[i] = load_be32(block + 4 * i);
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	for (int i = 0; i < 64; i++) {
		uint32_t s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + s1 + ch + sha256_k[i] + w[i];
		uint32_t s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = s0 + maj;

		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
	state[5] += f;
	state[6] += g;
	state[7] += h;
}

void proto_sha256_init(struct proto_sha256 *s)
{
	static const uint32_t iv[8] = {
	        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->state, iv, sizeof(iv));
	s->count = 0;
	s->fill = 0;
}

void proto_sha256_update(struct proto_sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!len)
		return;
	s->count += len;
	if (s->fill) {
		size_t take = sizeof(s->block) - s->fill;

		if (take > len)
			take = len;
		memcpy(s->block + s->fill, p, take);
		s->fill += take;
		p += take;
		len -= take;
		if (s->fill < sizeof(s->block))
			return;
		sha256_block(s->state, s->block);
		s->fill = 0;
	}
	while (len >= sizeof(s->block)) {
		sha256_block(s->state, p);
		p += sizeof(s->block);
		len -= sizeof(s->block);
	}
	if (len) {
		memcpy(s->block, p, len);
		s->fill = len;
	}
}

void proto_sha256_final(struct proto_sha256 *s, unsigned char out[PROTO_SHA256_LEN])
{
	uint64_t bits = s->count * 8;

	/* Padding: 0x80, zeros up to 56 mod 64, then the message length in bits. */
	s->block[s->fill++] = 0x80;
	if (s->fill > 56) {
		memset(s->block + s->fill, 0, sizeof(s->block) - s->fill);
		sha256_block(s->state, s->block);
		s->fill = 0;
	}
	memset(s->block + s->fill, 0, 56 - s->fill);
	store_be32(s->block + 56, (uint32_t)(bits >> 32));
	store_be32(s->block + 60, (uint32_t)bits);
	sha256_block(s->state, s->block);

	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->state[i]);
	/* The state is key-derived inside HMAC: leave nothing behind. */
	explicit_bzero(s, sizeof(*s));
}

#ifdef PROTO_HAVE_LIBCRYPTO
/*
 * SHA-256 of the concatenation of n pieces through OpenSSL, which uses the CPU's SHA
 * instructions where it has them (several times faster than the portable code below on large
 * messages). Returns false when OpenSSL fails (no memory): the caller then computes it itself.
 */
static bool proto_sha256_pieces(const struct proto_buf *pieces, size_t n,
                                unsigned char out[PROTO_SHA256_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(c, pieces[i].data, pieces[i].len) == 1;
	ok = ok && EVP_DigestFinal_ex(c, out, &len) == 1 && len == PROTO_SHA256_LEN;
	EVP_MD_CTX_free(c);
	return ok;
}

/* HMAC-SHA256 with OpenSSL's digest; false when it could not be done (see above). */
static bool proto_hmac_sha256_fast(const unsigned char k[HMAC_BLOCK], const struct proto_buf *parts,
                                   size_t n, unsigned char out[PROTO_SHA256_LEN])
{
	unsigned char ipad[HMAC_BLOCK], opad[HMAC_BLOCK], inner[PROTO_SHA256_LEN];
	struct proto_buf pieces[9];
	bool ok;

	if (n > 8)
		return false;
	for (size_t i = 0; i < HMAC_BLOCK; i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	pieces[0] = (struct proto_buf){.data = ipad, .len = HMAC_BLOCK};
	for (size_t i = 0; i < n; i++)
		pieces[i + 1] = parts[i];
	ok = proto_sha256_pieces(pieces, n + 1, inner);
	pieces[0] = (struct proto_buf){.data = opad, .len = HMAC_BLOCK};
	pieces[1] = (struct proto_buf){.data = inner, .len = PROTO_SHA256_LEN};
	ok = ok && proto_sha256_pieces(pieces, 2, out);
	explicit_bzero(ipad, sizeof(ipad));
	explicit_bzero(opad, sizeof(opad));
	explicit_bzero(inner, sizeof(inner));
	return ok;
}
#endif

void proto_hmac_sha256(const void *key, size_t keylen, const struct proto_buf *parts, size_t n,
                       unsigned char out[PROTO_SHA256_LEN])
{
	unsigned char k[HMAC_BLOCK] = {0};
	unsigned char pad[HMAC_BLOCK];
	unsigned char inner[PROTO_SHA256_LEN];
	struct proto_sha256 s;

	/* RFC 2104: keys longer than the block are hashed first, shorter ones zero-padded. */
	if (keylen > HMAC_BLOCK) {
		proto_sha256_init(&s);
		proto_sha256_update(&s, key, keylen);
		proto_sha256_final(&s, k);
	} else if (keylen) {
		memcpy(k, key, keylen);
	}
#ifdef PROTO_HAVE_LIBCRYPTO
	if (proto_hmac_sha256_fast(k, parts, n, out)) {
		explicit_bzero(k, sizeof(k));
		return;
	}
#endif

	for (size_t i = 0; i < HMAC_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	proto_sha256_init(&s);
	proto_sha256_update(&s, pad, sizeof(pad));
	for (size_t i = 0; i < n; i++)
		proto_sha256_update(&s, parts[i].data, parts[i].len);
	proto_sha256_final(&s, inner);

	for (size_t i = 0; i < HMAC_BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	proto_sha256_init(&s);
	proto_sha256_update(&s, pad, sizeof(pad));
	proto_sha256_update(&s, inner, sizeof(inner));
	proto_sha256_final(&s, out);

	explicit_bzero(k, sizeof(k));
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(inner, sizeof(inner));
}

size_t proto_sign_hex(const void *key, size_t keylen, const struct proto_buf parts[4],
                      char out[PROTO_SIGN_HEX_LEN + 1])
{
	unsigned char mac[PROTO_SHA256_LEN];

	if (!keylen) {
		out[0] = '\0';
		return 0;
	}
	proto_hmac_sha256(key, keylen, parts, 4, mac);
	proto__hex_encode(mac, sizeof(mac), out);
	out[PROTO_SIGN_HEX_LEN] = '\0';
	return PROTO_SIGN_HEX_LEN;
}

int proto_sign_verify(const void *key, size_t keylen, const struct proto_buf parts[4],
                      const struct proto_buf *sig)
{
	char want[PROTO_SIGN_HEX_LEN + 1];
	volatile unsigned char diff = 0;

	if (!keylen)
		return 0;
	/* The length is public (always 64); only the digits are compared in constant time. */
	if (!sig || sig->len != PROTO_SIGN_HEX_LEN)
		return -EACCES;
	proto_sign_hex(key, keylen, parts, want);
	for (size_t i = 0; i < PROTO_SIGN_HEX_LEN; i++)
		diff |= (unsigned char)(sig->data[i] ^ (unsigned char)want[i]);
	explicit_bzero(want, sizeof(want));
	return diff ? -EACCES : 0;
}
