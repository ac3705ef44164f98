/*
 * proto_sign: SHA-256 (FIPS 180-4 vectors), HMAC-SHA256 (RFC 4231 vectors), a signature
 * computed by Python's hmac (data/sign/python-hmac) and the verification rules.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto_sign.h"
#include "testdata.h"

TestSuite(proto_sign, .fini = test_check_leaks);

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void expect_sha256(const void *data, size_t len, const char *want)
{
	struct proto_sha256 s;
	unsigned char md[PROTO_SHA256_LEN];
	char hex[2 * PROTO_SHA256_LEN + 1];

	proto_sha256_init(&s);
	proto_sha256_update(&s, data, len);
	proto_sha256_final(&s, md);
	to_hex(md, sizeof(md), hex);
	cr_expect_str_eq(hex, want, "SHA-256 of %zu bytes", len);
}

Test(proto_sign, sha256_of_empty_input)
{
	expect_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	expect_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(proto_sign, sha256_of_abc)
{
	expect_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(proto_sign, sha256_of_two_block_message)
{
	static const char m[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	expect_sha256(m, sizeof(m) - 1,
	              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(proto_sign, sha256_of_a_million_a_in_uneven_chunks)
{
	static const char want[] =
	        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	char *a = malloc(1000000);
	struct proto_sha256 s;
	unsigned char md[PROTO_SHA256_LEN];
	char hex[2 * PROTO_SHA256_LEN + 1];
	size_t off = 0, step = 1;

	cr_assert(a);
	memset(a, 'a', 1000000);
	expect_sha256(a, 1000000, want);

	/* Chunk sizes 1, 2, 3 ... cross every block boundary position. */
	proto_sha256_init(&s);
	while (off < 1000000) {
		size_t n = step < 1000000 - off ? step : 1000000 - off;

		proto_sha256_update(&s, a + off, n);
		off += n;
		step = step % 131 + 1;
	}
	proto_sha256_final(&s, md);
	to_hex(md, sizeof(md), hex);
	cr_expect_str_eq(hex, want);
	free(a);
}

Test(proto_sign, sha256_pads_every_length_around_the_block_edge)
{
	/* Lengths 55, 56 and 64 need one or two padding blocks; compare with one-byte updates. */
	unsigned char buf[130];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 1);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		struct proto_sha256 a, b;
		unsigned char ma[PROTO_SHA256_LEN], mb[PROTO_SHA256_LEN];

		proto_sha256_init(&a);
		proto_sha256_update(&a, buf, len);
		proto_sha256_final(&a, ma);
		proto_sha256_init(&b);
		for (size_t i = 0; i < len; i++)
			proto_sha256_update(&b, &buf[i], 1);
		proto_sha256_final(&b, mb);
		cr_expect(!memcmp(ma, mb, sizeof(ma)), "length %zu", len);
	}
}

struct hmac_vector {
	const char *key_hex;
	size_t key_repeat; /* key_hex is one byte repeated this many times when > 0 */
	const char *data;
	size_t data_len;
	const char *mac; /* expected hex, possibly truncated */
};

static size_t from_hex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return n;
}

Test(proto_sign, hmac_matches_rfc4231)
{
	static char dd[50], cd[50];
	static const char t7[] =
	        "This is a test using a larger than block-size key and a larger than block-size "
	        "data. The key needs to be hashed before being used by the HMAC algorithm.";
	static const struct hmac_vector v[] = {
	        {"0b", 20, "Hi There", 8,
	         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	        {"4a656665", 0, "what do ya want for nothing?", 28,
	         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	        {"aa", 20, dd, 50,
	         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
	        {"0102030405060708090a0b0c0d0e0f10111213141516171819", 0, cd, 50,
	         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
	        {"0c", 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"},
	        {"aa", 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
	         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	        {"aa", 131, t7, sizeof(t7) - 1,
	         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};

	memset(dd, 0xdd, sizeof(dd));
	memset(cd, 0xcd, sizeof(cd));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char key[200], mac[PROTO_SHA256_LEN];
		char hex[2 * PROTO_SHA256_LEN + 1];
		size_t keylen = from_hex(v[i].key_hex, key);
		struct proto_buf part = {(unsigned char *)(uintptr_t)v[i].data, v[i].data_len};

		if (v[i].key_repeat) {
			memset(key, key[0], v[i].key_repeat);
			keylen = v[i].key_repeat;
		}
		proto_hmac_sha256(key, keylen, &part, 1, mac);
		to_hex(mac, sizeof(mac), hex);
		cr_expect(!strncmp(hex, v[i].mac, strlen(v[i].mac)), "RFC 4231 case %zu: %s", i + 1,
		          hex);
	}
}

Test(proto_sign, hmac_of_parts_equals_hmac_of_their_concatenation)
{
	struct proto_buf parts[4] = {
	        {(unsigned char *)(uintptr_t) "what do ya ", 11},
	        {NULL, 0},
	        {(unsigned char *)(uintptr_t) "want for ", 9},
	        {(unsigned char *)(uintptr_t) "nothing?", 8},
	};
	unsigned char mac[PROTO_SHA256_LEN];
	char hex[2 * PROTO_SHA256_LEN + 1];

	proto_hmac_sha256("Jefe", 4, parts, 4, mac);
	to_hex(mac, sizeof(mac), hex);
	cr_expect_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* The four parts and key of data/sign/python-hmac; expect holds Python's hexdigest. */
struct py_vector {
	struct proto_buf parts[4], key, expect;
};

static void load_py_vector(struct py_vector *v)
{
	static const char *const names[4] = {"header", "parent", "metadata", "content"};
	char path[600];

	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/sign/python-hmac/%s", test_data_dir(), names[i]);
		cr_assert_eq(test_read_file(path, &v->parts[i]), 0, "%s", path);
	}
	snprintf(path, sizeof(path), "%s/sign/python-hmac/key", test_data_dir());
	cr_assert_eq(test_read_file(path, &v->key), 0);
	snprintf(path, sizeof(path), "%s/sign/python-hmac/expect", test_data_dir());
	cr_assert_eq(test_read_file(path, &v->expect), 0);
	cr_assert_geq(v->expect.len, PROTO_SIGN_HEX_LEN);
	v->expect.data[PROTO_SIGN_HEX_LEN] = '\0'; /* drop the newline */
	v->expect.len = PROTO_SIGN_HEX_LEN;
}

static void free_py_vector(struct py_vector *v)
{
	for (int i = 0; i < 4; i++)
		free(v->parts[i].data);
	free(v->key.data);
	free(v->expect.data);
}

Test(proto_sign, sign_hex_matches_python_hmac)
{
	struct py_vector v;
	char sig[PROTO_SIGN_HEX_LEN + 1];

	load_py_vector(&v);
	cr_expect_eq(proto_sign_hex(v.key.data, v.key.len, v.parts, sig), PROTO_SIGN_HEX_LEN);
	cr_expect_str_eq(sig, (const char *)v.expect.data);
	cr_expect_eq(proto_sign_verify(v.key.data, v.key.len, v.parts, &v.expect), 0);
	free_py_vector(&v);
}

Test(proto_sign, sign_hex_with_empty_key_writes_nothing)
{
	struct proto_buf parts[4] = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};
	char sig[PROTO_SIGN_HEX_LEN + 1] = "junk";

	cr_expect_eq(proto_sign_hex(NULL, 0, parts, sig), 0);
	cr_expect_str_eq(sig, "");
}

/* Verifies a mutated copy of Python's signature; returns proto_sign_verify's result. */
static int verify_variant(struct py_vector *v, const char *sig, size_t len)
{
	struct proto_buf b = {(unsigned char *)(uintptr_t)sig, len};

	return proto_sign_verify(v->key.data, v->key.len, v->parts, &b);
}

Test(proto_sign, rejects_truncated_overlong_and_altered_signatures)
{
	struct py_vector v;
	char s[PROTO_SIGN_HEX_LEN + 2];

	load_py_vector(&v);
	memcpy(s, v.expect.data, PROTO_SIGN_HEX_LEN);
	s[PROTO_SIGN_HEX_LEN] = '0';
	s[PROTO_SIGN_HEX_LEN + 1] = '\0';
	cr_expect_eq(verify_variant(&v, s, PROTO_SIGN_HEX_LEN), 0);
	cr_expect_eq(verify_variant(&v, s, PROTO_SIGN_HEX_LEN - 1), -EACCES, "truncated");
	cr_expect_eq(verify_variant(&v, s, PROTO_SIGN_HEX_LEN + 1), -EACCES, "overlong");
	cr_expect_eq(verify_variant(&v, s, 0), -EACCES, "empty");
	cr_expect_eq(verify_variant(&v, s, 32), -EACCES, "half (raw digest length)");

	for (size_t i = 0; i < PROTO_SIGN_HEX_LEN; i += 7) {
		char t[PROTO_SIGN_HEX_LEN];

		memcpy(t, v.expect.data, sizeof(t));
		t[i] = t[i] == 'f' ? 'e' : 'f';
		cr_expect_eq(verify_variant(&v, t, sizeof(t)), -EACCES, "digit %zu changed", i);
		t[i] = 'g';
		cr_expect_eq(verify_variant(&v, t, sizeof(t)), -EACCES, "non-hex at %zu", i);
	}
	{
		char t[PROTO_SIGN_HEX_LEN];

		for (size_t i = 0; i < sizeof(t); i++)
			t[i] = (char)toupper(v.expect.data[i]);
		cr_expect_eq(verify_variant(&v, t, sizeof(t)), -EACCES, "upper-case hex");
	}
	cr_expect_eq(proto_sign_verify(v.key.data, v.key.len, v.parts, NULL), -EACCES);
	free_py_vector(&v);
}

Test(proto_sign, rejects_a_signature_of_other_parts)
{
	struct py_vector v;
	struct proto_buf saved;

	load_py_vector(&v);
	saved = v.parts[3];
	v.parts[3].len--;
	cr_expect_eq(proto_sign_verify(v.key.data, v.key.len, v.parts, &v.expect), -EACCES);
	v.parts[3] = saved;
	cr_expect_eq(proto_sign_verify(v.key.data, v.key.len - 1, v.parts, &v.expect), -EACCES);
	free_py_vector(&v);
}

Test(proto_sign, empty_key_accepts_any_signature)
{
	struct proto_buf parts[4] = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};
	struct proto_buf junk = {(unsigned char *)(uintptr_t) "not hex at all", 14};
	struct proto_buf none = {NULL, 0};

	cr_expect_eq(proto_sign_verify(NULL, 0, parts, &junk), 0);
	cr_expect_eq(proto_sign_verify("", 0, parts, &none), 0);
	cr_expect_eq(proto_sign_verify(NULL, 0, parts, NULL), 0);
}
