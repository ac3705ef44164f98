/*
 * Fuzzes proto_wire_decode(). Input: one mode byte, then frames separated by 0xFF bytes (0xFF
 * never occurs in UTF-8, so JSON frames stay easy to write by hand). Mode bit 0 signs with a
 * key, bit 1 also re-signs the frames so the JSON parser is reached, bit 2 uses tiny limits.
 * Every decoded message must encode and decode back to itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto_sign.h"
#include "proto_wire.h"

#define MAX_FRAMES 300

static const char fuzz_key[] = "fuzz-key";

static bool bufs_equal(const struct proto_buf *a, const struct proto_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].len != b[i].len || (a[i].len && memcmp(a[i].data, b[i].data, a[i].len)))
			return false;
	return true;
}

/* Encodes m and decodes it again: the result must be the same message. */
static void check_round_trip(const struct proto_msg *m, const void *key, size_t keylen)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct proto_wire_out out;
	struct proto_buf *frames;
	struct proto_msg *back = NULL;
	char sig[PROTO_SIGN_HEX_LEN + 1];
	size_t n;

	FUZZ_CHECK(proto_wire_out_from_msg(m, &out) == 0);
	frames = calloc(proto_wire_frame_count(&out), sizeof(*frames));
	FUZZ_CHECK(frames);
	n = proto_wire_encode(&out, key, keylen, sig, frames);
	FUZZ_CHECK(n == proto_wire_frame_count(&out));
	FUZZ_CHECK(proto_wire_decode(frames, n, key, keylen, &lim, &back, NULL) == 0);
	FUZZ_CHECK(json_equal(m->header, back->header));
	FUZZ_CHECK(json_equal(m->parent, back->parent));
	FUZZ_CHECK(json_equal(m->metadata, back->metadata));
	FUZZ_CHECK(json_equal(m->content, back->content));
	FUZZ_CHECK(back->n_idents == m->n_idents && back->n_buffers == m->n_buffers);
	FUZZ_CHECK(bufs_equal(m->idents, back->idents, m->n_idents));
	FUZZ_CHECK(bufs_equal(m->buffers, back->buffers, m->n_buffers));
	proto_msg_free(back);
	free(frames);
	proto_wire_out_release(&out);
}

/* Replaces the signature after the first delimiter with the right one for key. */
static void resign(struct proto_buf *f, size_t n, char sig[PROTO_SIGN_HEX_LEN + 1])
{
	for (size_t d = 0; d < n; d++) {
		if (f[d].len != PROTO_DELIM_LEN || memcmp(f[d].data, PROTO_DELIM, PROTO_DELIM_LEN))
			continue;
		if (n - d - 1 < 5)
			return;
		proto_sign_hex(fuzz_key, sizeof(fuzz_key) - 1, &f[d + 2], sig);
		free(f[d + 1].data);
		f[d + 1].data = malloc(PROTO_SIGN_HEX_LEN);
		FUZZ_CHECK(f[d + 1].data);
		memcpy(f[d + 1].data, sig, PROTO_SIGN_HEX_LEN);
		f[d + 1].len = PROTO_SIGN_HEX_LEN;
		return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_limits tiny = {
	        .max_frames = 16,
	        .max_idents = 4,
	        .max_ident_len = 16,
	        .max_json_frame = 256,
	        .max_buffer = 64,
	        .max_total = 1024,
	};
	static const struct proto_limits dflt = PROTO_LIMITS_DEFAULT;
	struct proto_buf frames[MAX_FRAMES];
	struct proto_wire_parts parts;
	struct proto_error err = {0};
	struct proto_msg *m = NULL;
	char sig[PROTO_SIGN_HEX_LEN + 1];
	const struct proto_limits *lim;
	const void *key = NULL;
	size_t keylen = 0, n = 0, start;
	unsigned int mode;
	int r, rs;

	if (!size)
		return 0;
	mode = data[0];
	data++;
	size--;
	/* Each frame gets its own allocation so that ASan sees any read past its end. */
	start = 0;
	for (size_t i = 0; i <= size && n < MAX_FRAMES; i++) {
		if (i < size && data[i] != 0xff)
			continue;
		if (size == 0)
			break;
		frames[n].len = i - start;
		frames[n].data = malloc(frames[n].len ? frames[n].len : 1);
		FUZZ_CHECK(frames[n].data);
		if (frames[n].len)
			memcpy(frames[n].data, data + start, frames[n].len);
		n++;
		start = i + 1;
	}

	if (mode & 1) {
		key = fuzz_key;
		keylen = sizeof(fuzz_key) - 1;
		if (mode & 2)
			resign(frames, n, sig);
	}
	lim = mode & 4 ? &tiny : &dflt;

	m = (struct proto_msg *)&err;
	r = proto_wire_decode(frames, n, key, keylen, lim, &m, &err);
	rs = proto_wire_split(frames, n, lim, &parts, NULL);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE || r == -EACCES);
	/* The split decides framing errors; decode adds only signature and JSON errors. */
	FUZZ_CHECK(rs == 0 || rs == r);
	if (r == 0) {
		FUZZ_CHECK(m && m->header && m->parent && m->metadata && m->content);
		FUZZ_CHECK(m->n_idents == parts.n_idents && m->n_buffers == parts.n_buffers);
		FUZZ_CHECK(json_is_string(json_object_get(m->header, "msg_type")));
		(void)proto_msg_is_reply(m);
		(void)proto_msg_session(m);
		FUZZ_CHECK(strlen(proto_msg_id(m)) ==
		           json_string_length(json_object_get(m->header, "msg_id")));
		check_round_trip(m, key, keylen);
		check_round_trip(m, NULL, 0);
		proto_msg_free(m);
	} else {
		FUZZ_CHECK(m == NULL);
		FUZZ_CHECK(err.text[0] != '\0');
	}

	for (size_t i = 0; i < n; i++)
		free(frames[i].data);
	return 0;
}
