/*
 * Fuzzes proto_ws_decode() and proto_ws_encode(). Input: one mode byte, then one WebSocket
 * frame. Mode bit 0 picks v1 over legacy, bit 1 says the frame is binary, bit 2 uses tiny
 * limits. Every accepted frame must encode in both framings and decode back to the same
 * message. With bit 3 the rest is instead one JSON part for the encoder, whose own check must
 * accept every object jansson parses (but for jansson's raw-NUL quirk) and refuse nothing the
 * legacy path accepts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "proto_ws.h"

static const struct proto_limits dflt = PROTO_LIMITS_DEFAULT;

static bool buf_equal(const struct proto_buf *a, const struct proto_buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static bool json_same(const struct proto_buf *a, const struct proto_buf *b)
{
	json_t *ja = json_loadb((const char *)a->data, a->len, JSON_ALLOW_NUL, NULL);
	json_t *jb = json_loadb((const char *)b->data, b->len, JSON_ALLOW_NUL, NULL);
	bool same = ja && jb && json_equal(ja, jb);

	json_decref(ja);
	json_decref(jb);
	return same;
}

static const struct proto_buf *part(const struct proto_ws_msg *m, int i)
{
	const struct proto_buf *parts[4] = {&m->header, &m->parent, &m->metadata, &m->content};

	return parts[i];
}

/*
 * Encodes m (decoded in framing from) in framing to and decodes it again. v1 copies parts, and
 * the legacy decoder's compact dumps dump to themselves, so those compare byte for byte.
 */
static void check_round_trip(const struct proto_ws_msg *m, enum proto_ws_framing from,
                             enum proto_ws_framing to)
{
	struct proto_ws_msg back;
	struct proto_buf out;
	bool binary;

	FUZZ_CHECK(proto_ws_encode(to, m, &out, &binary, NULL) == 0);
	FUZZ_CHECK(binary == (to == PROTO_WS_V1 || m->n_buffers > 0));
	FUZZ_CHECK(proto_ws_decode(to, out.data, out.len, binary, &dflt, &back, NULL) == 0);
	FUZZ_CHECK(back.channel == m->channel);
	FUZZ_CHECK(!strcmp(back.msg_id, m->msg_id) && !strcmp(back.msg_type, m->msg_type));
	for (int i = 0; i < 4; i++) {
		if (to == PROTO_WS_V1 || from == PROTO_WS_LEGACY)
			FUZZ_CHECK(buf_equal(part(&back, i), part(m, i)));
		else
			FUZZ_CHECK(json_same(part(&back, i), part(m, i)));
	}
	FUZZ_CHECK(back.n_buffers == m->n_buffers);
	for (size_t i = 0; i < m->n_buffers; i++)
		FUZZ_CHECK(buf_equal(&back.buffers[i], &m->buffers[i]));
	proto_ws_msg_clear(&back);
	free(out.data);
}

static void check_decoded(const struct proto_ws_msg *m, enum proto_ws_framing f,
                          const struct proto_limits *lim)
{
	FUZZ_CHECK(m->channel == PROTO_WS_SHELL || m->channel == PROTO_WS_CONTROL ||
	           m->channel == PROTO_WS_STDIN);
	FUZZ_CHECK(strlen(m->msg_id) < sizeof(m->msg_id));
	FUZZ_CHECK(strlen(m->msg_type) < sizeof(m->msg_type));
	for (int i = 0; i < 4; i++) {
		FUZZ_CHECK(part(m, i)->len >= 2 && part(m, i)->len <= lim->max_json_frame);
		FUZZ_CHECK(part(m, i)->data[part(m, i)->len] == '\0');
	}
	FUZZ_CHECK(m->n_buffers < lim->max_frames);
	for (size_t i = 0; i < m->n_buffers; i++)
		FUZZ_CHECK(m->buffers[i].len <= lim->max_buffer);
	check_round_trip(m, f, PROTO_WS_LEGACY);
	check_round_trip(m, f, PROTO_WS_V1);
}

/* The encoder's check of one part against jansson's parser. */
static void check_json_part(const unsigned char *data, size_t len)
{
	struct proto_ws_msg m = {
	        .channel = PROTO_WS_IOPUB,
	        .header = {(unsigned char *)(uintptr_t) "{\"msg_id\":\"1\",\"msg_type\":\"t\"}",
	                   29},
	        .parent = {(unsigned char *)(uintptr_t) "{}", 2},
	        .metadata = {(unsigned char *)(uintptr_t) "{}", 2},
	        .content = {(unsigned char *)(uintptr_t)data, len},
	};
	struct proto_buf out;
	bool binary;
	json_t *j;
	int rv, rl;

	rv = proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL);
	FUZZ_CHECK(rv == 0 || rv == -EBADMSG);
	free(out.data);
	rl = proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, NULL);
	FUZZ_CHECK(rl == 0 || rl == -EBADMSG);
	free(out.data);
	j = json_loadb((const char *)data, len, JSON_ALLOW_NUL, NULL);
	/* jansson 2.14 skips a raw NUL byte after a number; the check rightly refuses it. */
	if (json_is_object(j) && !memchr(data, 0, len))
		FUZZ_CHECK(rv == 0);
	if (rl == 0)
		FUZZ_CHECK(rv == 0);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_limits tiny = {
	        .max_frames = 10,
	        .max_idents = 4,
	        .max_ident_len = 16,
	        .max_json_frame = 200,
	        .max_buffer = 64,
	        .max_total = 1024,
	};
	const struct proto_limits *lim;
	struct proto_error err = {0};
	enum proto_ws_framing f;
	struct proto_ws_msg m;
	unsigned char *frame;
	unsigned int mode;
	int r;

	if (!size)
		return 0;
	mode = data[0];
	data++;
	size--;
	/* An exact-size copy, so that ASan sees any read past the end of the frame. */
	frame = malloc(size ? size : 1);
	FUZZ_CHECK(frame);
	if (size)
		memcpy(frame, data, size);

	if (mode & 8) {
		check_json_part(frame, size);
		free(frame);
		return 0;
	}
	f = mode & 1 ? PROTO_WS_V1 : PROTO_WS_LEGACY;
	lim = mode & 4 ? &tiny : &dflt;
	memset(&m, 0x5a, sizeof(m));
	r = proto_ws_decode(f, frame, size, mode & 2, lim, &m, &err);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EPROTO || r == -EMSGSIZE);
	if (r == 0) {
		check_decoded(&m, f, lim);
		proto_ws_msg_clear(&m);
	} else {
		FUZZ_CHECK(m.header.data == NULL && m.buffers == NULL && m.n_buffers == 0);
		FUZZ_CHECK(err.text[0] != '\0');
	}
	free(frame);
	return 0;
}
