/*
 * proto_ws: the data-driven cases under data/{valid,invalid}/ws-* (frames made and read by
 * jupyter_server's and JupyterLab's own serializers), the v1 vectors, round trips in both
 * framings, the rejections and allocation-failure loops.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proto_ws.h"
#include "testdata.h"

TestSuite(proto_ws, .fini = test_check_leaks);

static const struct proto_limits default_limits = PROTO_LIMITS_DEFAULT;

#define BUF(s) ((struct proto_buf){(unsigned char *)(uintptr_t)(s), sizeof(s) - 1})

/* The expect file's result as a negative errno; testdata.c does not know EPROTO. */
static int case_result(const struct test_case *c)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {{"0", 0}, {"EBADMSG", -EBADMSG}, {"EPROTO", -EPROTO}, {"EMSGSIZE", -EMSGSIZE}};
	char *r = test_expect(c, "result");
	int code = 1;

	cr_assert(r, "%s: expect has no result", c->name);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(r, codes[i].name))
			code = codes[i].code;
	cr_assert(code <= 0, "%s: unknown result %s", c->name, r);
	free(r);
	return code;
}

static bool case_is(const struct test_case *c, const char *name, const char *value)
{
	char *v = test_expect(c, name);
	bool same = v && !strcmp(v, value);

	free(v);
	return same;
}

static size_t case_number(const struct test_case *c, const char *name)
{
	char *v = test_expect(c, name);
	size_t n;

	cr_assert(v, "%s: expect has no %s", c->name, name);
	n = strtoul(v, NULL, 10);
	free(v);
	return n;
}

static enum proto_ws_framing case_framing(const struct test_case *c)
{
	return case_is(c, "framing", "v1") ? PROTO_WS_V1 : PROTO_WS_LEGACY;
}

static enum proto_ws_channel case_channel(const struct test_case *c)
{
	for (int ch = PROTO_WS_SHELL; ch <= PROTO_WS_IOPUB; ch++)
		if (case_is(c, "channel", proto_ws_channel_name(ch)))
			return ch;
	cr_assert_fail("%s: expect has no known channel", c->name);
	return PROTO_WS_SHELL;
}

/* Reads the case's file name (owned, NUL-terminated); fails the test when it is missing. */
static struct proto_buf case_file(const struct test_case *c, const char *name)
{
	char path[700];
	struct proto_buf b;

	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	cr_assert_eq(test_read_file(path, &b), 0, "%s: no %s", c->name, name);
	return b;
}

/* Reads <prefix>00, <prefix>01, ... until one is missing; returns how many. */
static size_t case_buffers(const struct test_case *c, const char *prefix, struct proto_buf **out)
{
	size_t n = 0;

	*out = NULL;
	for (;;) {
		char path[700];
		struct proto_buf b;

		snprintf(path, sizeof(path), "%s/%s%02zu", c->dir, prefix, n);
		if (test_read_file(path, &b) < 0)
			return n;
		*out = realloc(*out, (n + 1) * sizeof(**out));
		cr_assert(*out);
		(*out)[n++] = b;
	}
}

static void free_bufs(struct proto_buf *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}

/* The JSON text data as jansson dumps it compactly (owned): what legacy parts must look like. */
static char *canonical(const unsigned char *data, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, len, JSON_ALLOW_NUL, &jerr);
	char *s;

	cr_assert(j, "not JSON: %s (%.*s)", jerr.text, (int)len, data);
	s = json_dumps(j, JSON_COMPACT);
	cr_assert(s);
	json_decref(j);
	return s;
}

static bool buf_is(const struct proto_buf *b, const void *data, size_t len)
{
	return b->len == len && (!len || !memcmp(b->data, data, len));
}

static bool buf_is_text(const struct proto_buf *b, const char *s)
{
	return buf_is(b, s, strlen(s));
}

static struct proto_buf *parts_of(struct proto_ws_msg *m, int i)
{
	struct proto_buf *parts[4] = {&m->header, &m->parent, &m->metadata, &m->content};

	return parts[i];
}

static const char *const part_files[4] = {"part-header", "part-parent", "part-metadata",
                                          "part-content"};
static const char *const in_files[4] = {"in-header", "in-parent", "in-metadata", "in-content"};

static bool msgs_same(struct proto_ws_msg *a, struct proto_ws_msg *b)
{
	if (a->channel != b->channel || a->n_buffers != b->n_buffers ||
	    strcmp(a->msg_id, b->msg_id) || strcmp(a->msg_type, b->msg_type))
		return false;
	for (int i = 0; i < 4; i++)
		if (!buf_is(parts_of(a, i), parts_of(b, i)->data, parts_of(b, i)->len))
			return false;
	for (size_t i = 0; i < a->n_buffers; i++)
		if (!buf_is(&a->buffers[i], b->buffers[i].data, b->buffers[i].len))
			return false;
	return true;
}

/*
 * Encodes m in framing f and decodes the frame again: the same message comes back (legacy
 * parts are compact dumps, which dump to themselves, so both framings compare bytes).
 */
static void expect_round_trip(struct proto_ws_msg *m, enum proto_ws_framing f, const char *name)
{
	struct proto_ws_msg back;
	struct proto_error err = {0};
	struct proto_buf frame;
	bool binary;
	int r;

	r = proto_ws_encode(f, m, &frame, &binary, &err);
	cr_assert_eq(r, 0, "%s: encode: %d (%s)", name, r, err.text);
	cr_expect_eq(binary, f == PROTO_WS_V1 || m->n_buffers > 0, "%s: frame type", name);
	r = proto_ws_decode(f, frame.data, frame.len, binary, &default_limits, &back, &err);
	cr_assert_eq(r, 0, "%s: re-decode: %d (%s)", name, r, err.text);
	if (f == PROTO_WS_V1) {
		cr_expect(msgs_same(m, &back), "%s: v1 round trip", name);
	} else {
		for (int i = 0; i < 4; i++) {
			char *want = canonical(parts_of(m, i)->data, parts_of(m, i)->len);

			cr_expect(buf_is_text(parts_of(&back, i), want), "%s: part %d: %.*s", name,
			          i, (int)parts_of(&back, i)->len, parts_of(&back, i)->data);
			free(want);
		}
		cr_expect_eq(back.channel, m->channel);
		cr_expect_str_eq(back.msg_id, m->msg_id);
		cr_expect_str_eq(back.msg_type, m->msg_type);
		cr_expect_eq(back.n_buffers, m->n_buffers);
		for (size_t i = 0; i < m->n_buffers && i < back.n_buffers; i++)
			cr_expect(buf_is(&back.buffers[i], m->buffers[i].data, m->buffers[i].len),
			          "%s: buffer %zu", name, i);
	}
	proto_ws_msg_clear(&back);
	free(frame.data);
}

Test(proto_ws, decodes_every_valid_case_as_jupyter_server_does)
{
	struct test_case *cases;
	size_t n = test_cases_load("ws", &cases), seen = 0;

	cr_assert_gt(n, 0, "no ws cases under %s", test_data_dir());
	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		enum proto_ws_framing f = case_framing(c);
		struct proto_error err = {0};
		struct proto_ws_msg m;
		struct proto_buf *bufs;
		size_t nb;
		char *v;
		int r;

		if (!c->valid || !case_is(c, "direction", "decode"))
			continue;
		seen++;
		cr_assert_eq(c->n_frames, 1, "%s: one frame", c->name);
		r = proto_ws_decode(f, c->frames[0].data, c->frames[0].len,
		                    case_is(c, "binary", "1"), &c->limits, &m, &err);
		cr_expect_eq(r, 0, "%s: got %d (%s)", c->name, r, err.text);
		if (r < 0)
			continue;
		cr_expect_eq(m.channel, case_channel(c), "%s: channel", c->name);
		v = test_expect(c, "msg_id");
		cr_expect_str_eq(m.msg_id, v, "%s: msg_id", c->name);
		free(v);
		v = test_expect(c, "msg_type");
		cr_expect_str_eq(m.msg_type, v, "%s: msg_type", c->name);
		free(v);
		for (int p = 0; p < 4; p++) {
			struct proto_buf want = case_file(c, part_files[p]);
			struct proto_buf *got = parts_of(&m, p);

			if (f == PROTO_WS_V1) {
				cr_expect(buf_is(got, want.data, want.len),
				          "%s: %s is not the client's bytes", c->name,
				          part_files[p]);
			} else {
				char *canon = canonical(want.data, want.len);

				cr_expect(buf_is_text(got, canon), "%s: %s: got %.*s, want %s",
				          c->name, part_files[p], (int)got->len, got->data, canon);
				free(canon);
			}
			cr_expect_eq(got->data[got->len], '\0', "%s: parts are NUL-terminated",
			             c->name);
			free(want.data);
		}
		nb = case_buffers(c, "buffer-", &bufs);
		cr_expect_eq(nb, case_number(c, "buffers"), "%s", c->name);
		cr_expect_eq(m.n_buffers, nb, "%s: buffers", c->name);
		for (size_t b = 0; b < nb && b < m.n_buffers; b++)
			cr_expect(buf_is(&m.buffers[b], bufs[b].data, bufs[b].len),
			          "%s: buffer %zu", c->name, b);
		free_bufs(bufs, nb);
		expect_round_trip(&m, PROTO_WS_LEGACY, c->name);
		expect_round_trip(&m, PROTO_WS_V1, c->name);
		proto_ws_msg_clear(&m);
	}
	cr_expect_gt(seen, 20);
	test_cases_free(cases, n);
}

Test(proto_ws, rejects_every_invalid_frame_with_its_errno)
{
	static const struct proto_ws_msg zero;
	struct test_case *cases;
	size_t n = test_cases_load("ws", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		struct proto_error err = {0};
		struct proto_ws_msg m;
		int want, r;

		if (c->valid || !case_is(c, "direction", "decode"))
			continue;
		seen++;
		want = case_result(c);
		memset(&m, 0xa5, sizeof(m));
		r = proto_ws_decode(case_framing(c), c->frames[0].data, c->frames[0].len,
		                    case_is(c, "binary", "1"), &c->limits, &m, &err);
		cr_expect_eq(r, want, "%s: got %d (%s), want %d", c->name, r, err.text, want);
		cr_expect(!memcmp(&m, &zero, sizeof(m)), "%s: output not cleared", c->name);
		cr_expect_neq(err.text[0], '\0', "%s: no error text", c->name);
	}
	cr_expect_gt(seen, 80);
	test_cases_free(cases, n);
}

/* Borrows the in-* parts and buffers of an encode case into m (free with free_encode_input). */
static void encode_input(const struct test_case *c, struct proto_ws_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->channel = case_channel(c);
	for (int p = 0; p < 4; p++)
		*parts_of(m, p) = case_file(c, in_files[p]);
	m->n_buffers = case_buffers(c, "in-buffer-", &m->buffers);
	cr_expect_eq(m->n_buffers, case_number(c, "buffers"), "%s", c->name);
}

static void free_encode_input(struct proto_ws_msg *m)
{
	for (int p = 0; p < 4; p++)
		free(parts_of(m, p)->data);
	free_bufs(m->buffers, m->n_buffers);
}

/* Splits a legacy binary frame: the JSON and n - 1 buffers (borrowed views). Returns n. */
static size_t legacy_split(const struct proto_buf *f, struct proto_buf *parts, size_t max)
{
	size_t n, start[64] = {0};

	cr_assert_geq(f->len, 4);
	n = (size_t)f->data[0] << 24 | f->data[1] << 16 | f->data[2] << 8 | f->data[3];
	cr_assert(n >= 1 && n <= max && n <= 64 && 4 * (n + 1) <= f->len);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = f->data + 4 * (i + 1);

		start[i] = (size_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
	}
	cr_assert_eq(start[0], 4 * (n + 1));
	for (size_t i = 0; i < n; i++) {
		size_t end = i + 1 < n ? start[i + 1] : f->len;

		cr_assert(start[i] <= end && end <= f->len);
		parts[i] = (struct proto_buf){f->data + start[i], end - start[i]};
	}
	return n;
}

Test(proto_ws, encodes_every_message_as_jupyter_server_does)
{
	struct test_case *cases;
	size_t n = test_cases_load("ws", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		const struct proto_buf *want;
		struct proto_error err = {0};
		struct proto_ws_msg m;
		struct proto_buf out;
		bool binary;
		int r;

		if (!c->valid || !case_is(c, "direction", "encode"))
			continue;
		seen++;
		cr_assert_eq(c->n_frames, 1, "%s: one frame", c->name);
		want = &c->frames[0];
		encode_input(c, &m);
		r = proto_ws_encode(case_framing(c), &m, &out, &binary, &err);
		cr_assert_eq(r, 0, "%s: got %d (%s)", c->name, r, err.text);
		cr_expect_eq(binary, case_is(c, "binary", "1"), "%s: frame type", c->name);
		if (case_framing(c) == PROTO_WS_V1) {
			cr_expect(buf_is(&out, want->data, want->len),
			          "%s: not jupyter_server's frame byte for byte", c->name);
		} else if (!binary) {
			char *canon = canonical(want->data, want->len);

			cr_expect(buf_is_text(&out, canon), "%s: got %.*s, want %s", c->name,
			          (int)out.len, out.data, canon);
			cr_expect_eq(out.data[out.len], '\0', "%s: text is NUL-terminated",
			             c->name);
			free(canon);
		} else {
			struct proto_buf ours[64], theirs[64];
			size_t no = legacy_split(&out, ours, 64),
			       nt = legacy_split(want, theirs, 64);
			char *canon = canonical(theirs[0].data, theirs[0].len);

			cr_expect_eq(no, nt, "%s: part count", c->name);
			cr_expect_eq(no, m.n_buffers + 1, "%s: nbufs counts the JSON", c->name);
			cr_expect(buf_is_text(&ours[0], canon), "%s: got %.*s, want %s", c->name,
			          (int)ours[0].len, ours[0].data, canon);
			for (size_t b = 1; b < no && b < nt; b++)
				cr_expect(buf_is(&ours[b], theirs[b].data, theirs[b].len),
				          "%s: buffer %zu", c->name, b - 1);
			free(canon);
		}
		free(out.data);
		free_encode_input(&m);
	}
	cr_expect_gt(seen, 10);
	test_cases_free(cases, n);
}

Test(proto_ws, encode_refuses_parts_that_are_not_one_json_object)
{
	struct test_case *cases;
	size_t n = test_cases_load("ws", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		struct proto_error err = {0};
		struct proto_ws_msg m;
		unsigned char dummy = 0;
		struct proto_buf out = {&dummy, 1};
		bool binary = true;
		int r;

		if (c->valid || !case_is(c, "direction", "encode"))
			continue;
		seen++;
		encode_input(c, &m);
		r = proto_ws_encode(case_framing(c), &m, &out, &binary, &err);
		cr_expect_eq(r, case_result(c), "%s: got %d (%s)", c->name, r, err.text);
		cr_expect(out.data == NULL && out.len == 0 && !binary, "%s: output set", c->name);
		cr_expect_neq(err.text[0], '\0', "%s: no error text", c->name);
		free_encode_input(&m);
	}
	cr_expect_gt(seen, 30);
	test_cases_free(cases, n);
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The vectors measured with jupyter_server (NOTES.md, "The gateway"). */
Test(proto_ws, v1_matches_the_measured_vectors)
{
	static const uint64_t shell[] = {6, 56, 61, 63, 65, 67, 69};
	static const uint64_t iopub[] = {7, 64, 69, 71, 73, 75, 77, 80};
	struct proto_buf three = BUF("\x01\x02\x03");
	struct proto_ws_msg m = {
	        .channel = PROTO_WS_SHELL,
	        .header = BUF("{}"),
	        .parent = BUF("{}"),
	        .metadata = BUF("{}"),
	        .content = BUF("{}"),
	};
	struct proto_buf out;
	bool binary = false;

	cr_assert_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0);
	cr_expect(binary);
	cr_assert_eq(out.len, 69);
	for (size_t i = 0; i < 7; i++)
		cr_expect_eq(le64(out.data + 8 * i), shell[i], "word %zu", i);
	cr_expect(!memcmp(out.data + 56, "shell{}{}{}{}", 13));
	free(out.data);

	m.channel = PROTO_WS_IOPUB;
	m.buffers = &three;
	m.n_buffers = 1;
	cr_assert_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0);
	cr_assert_eq(out.len, 80);
	for (size_t i = 0; i < 8; i++)
		cr_expect_eq(le64(out.data + 8 * i), iopub[i], "word %zu", i);
	cr_expect(!memcmp(out.data + 64, "iopub{}{}{}{}\x01\x02\x03", 16));
	free(out.data);
}

/* A kernel message with the fields a legacy client reads at the top level. */
static struct proto_ws_msg kernel_msg(void)
{
	return (struct proto_ws_msg){
	        .channel = PROTO_WS_IOPUB,
	        .header = BUF("{\"msg_id\": \"k-1\", \"msg_type\": \"stream\", \"date\": \"D\"}"),
	        .parent = BUF("{\"msg_id\": \"p-1\"}"),
	        .metadata = BUF("{}"),
	        .content = BUF("{\"name\": \"stdout\", \"text\": \"h\\u00e9\\n\"}"),
	};
}

Test(proto_ws, legacy_text_has_the_keys_jupyter_server_writes)
{
	struct proto_ws_msg m = kernel_msg();
	struct proto_buf out;
	bool binary = true;

	cr_assert_eq(proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, NULL), 0);
	cr_expect(!binary);
	cr_expect_str_eq((const char *)out.data,
	                 "{\"header\":{\"msg_id\":\"k-1\",\"msg_type\":\"stream\",\"date\":\"D\"},"
	                 "\"msg_id\":\"k-1\",\"msg_type\":\"stream\",\"parent_header\":{\"msg_id\":"
	                 "\"p-1\"},\"metadata\":{},\"content\":{\"name\":\"stdout\",\"text\":"
	                 "\"h\xc3\xa9\\n\"},\"buffers\":[],\"channel\":\"iopub\"}");
	cr_expect_eq(out.len, strlen((const char *)out.data));
	free(out.data);
}

Test(proto_ws, legacy_binary_counts_the_json_and_drops_the_buffers_key)
{
	struct proto_buf bufs[2] = {BUF("\x01\x02\x03"), BUF("")};
	struct proto_ws_msg m = kernel_msg();
	struct proto_buf out, parts[3];
	bool binary = false;
	char *json;

	m.buffers = bufs;
	m.n_buffers = 2;
	cr_assert_eq(proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, NULL), 0);
	cr_expect(binary);
	cr_assert_eq(legacy_split(&out, parts, 3), 3);
	cr_expect(!memcmp(out.data, "\x00\x00\x00\x03\x00\x00\x00\x10", 8));
	json = strndup((const char *)parts[0].data, parts[0].len);
	cr_expect(strstr(json, "\"buffers\"") == NULL, "%s", json);
	cr_expect(strstr(json, ",\"channel\":\"iopub\"}") != NULL, "%s", json);
	cr_expect(buf_is(&parts[1], "\x01\x02\x03", 3));
	cr_expect_eq(parts[2].len, 0);
	cr_expect_eq(out.len, 16 + parts[0].len + 3);
	free(json);
	free(out.data);
}

Test(proto_ws, round_trips_every_client_channel_in_both_framings)
{
	struct proto_buf bufs[3] = {BUF("\x00\xff"), BUF(""), BUF("<IDS|MSG>")};
	struct proto_ws_msg m = kernel_msg();

	strcpy(m.msg_id, "k-1");
	strcpy(m.msg_type, "stream");
	for (int ch = PROTO_WS_SHELL; ch <= PROTO_WS_STDIN; ch++) {
		m.channel = ch;
		for (size_t nb = 0; nb <= 3; nb++) {
			m.buffers = nb ? bufs : NULL;
			m.n_buffers = nb;
			expect_round_trip(&m, PROTO_WS_LEGACY, proto_ws_channel_name(ch));
			expect_round_trip(&m, PROTO_WS_V1, proto_ws_channel_name(ch));
		}
	}
}

Test(proto_ws, iopub_goes_to_clients_but_never_comes_from_them)
{
	struct proto_ws_msg m = kernel_msg(), back;
	struct proto_error err = {0};
	struct proto_buf out;
	bool binary;

	for (int f = PROTO_WS_LEGACY; f <= PROTO_WS_V1; f++) {
		cr_assert_eq(proto_ws_encode(f, &m, &out, &binary, NULL), 0);
		cr_expect_eq(
		        proto_ws_decode(f, out.data, out.len, binary, &default_limits, &back, &err),
		        -EPROTO);
		cr_expect_str_eq(err.text, "channel \"iopub\" is not shell, control or stdin");
		free(out.data);
	}
}

Test(proto_ws, channel_names)
{
	cr_expect_str_eq(proto_ws_channel_name(PROTO_WS_SHELL), "shell");
	cr_expect_str_eq(proto_ws_channel_name(PROTO_WS_CONTROL), "control");
	cr_expect_str_eq(proto_ws_channel_name(PROTO_WS_STDIN), "stdin");
	cr_expect_str_eq(proto_ws_channel_name(PROTO_WS_IOPUB), "iopub");
	cr_expect_str_eq(proto_ws_channel_name((enum proto_ws_channel)9), "unknown");
}

Test(proto_ws, encode_refuses_an_unknown_channel)
{
	struct proto_ws_msg m = kernel_msg();
	struct proto_buf out;
	bool binary;

	m.channel = (enum proto_ws_channel)7;
	cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), -EINVAL);
	cr_expect_eq(proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, NULL), -EINVAL);
	cr_expect_null(out.data);
}

/* Decodes a v1 frame built from raw offsets; returns the result and the error text. */
static int decode_v1_words(const uint64_t *words, size_t n, const char *tail, char *text)
{
	unsigned char frame[256];
	struct proto_error err = {0};
	struct proto_ws_msg m;
	size_t len = 0;
	int r;

	for (size_t i = 0; i < n; i++, len += 8)
		for (int b = 0; b < 8; b++)
			frame[len + b] = words[i] >> (8 * b);
	memcpy(frame + len, tail, strlen(tail));
	len += strlen(tail);
	r = proto_ws_decode(PROTO_WS_V1, frame, len, true, &default_limits, &m, &err);
	strcpy(text, err.text);
	proto_ws_msg_clear(&m);
	return r;
}

Test(proto_ws, error_texts_say_what_was_wrong)
{
	static const char parts[] = "shell{\"msg_id\":\"1\",\"msg_type\":\"t\"}{}{}{}";
	char text[sizeof(((struct proto_error *)0)->text)];

	cr_expect_eq(decode_v1_words((uint64_t[]){6, 56, 61, 90, 92, 94, 96}, 7, parts, text), 0,
	             "%s", text);
	cr_expect_eq(decode_v1_words((uint64_t[]){6, 56, 61, 90, 92, 94, 97}, 7, parts, text),
	             -EBADMSG);
	cr_expect_str_eq(text, "offset 5 is past the end of the frame (97 > 96)");
	cr_expect_eq(decode_v1_words((uint64_t[]){6, 56, 61, 90, 89, 94, 96}, 7, parts, text),
	             -EBADMSG);
	cr_expect_str_eq(text, "offset 3 (89) is before offset 2 (90)");
	cr_expect_eq(decode_v1_words((uint64_t[]){6, 56, 61, 90, 92, 94, 95}, 7, parts, text),
	             -EBADMSG);
	cr_expect_str_eq(text, "extra bytes after the last part (1)");
	cr_expect_eq(decode_v1_words((uint64_t[]){1000, 56}, 2, "", text), -EMSGSIZE);
	cr_expect_str_eq(text, "1000 offsets, limit 256");
	cr_expect_eq(decode_v1_words((uint64_t[]){0}, 1, "", text), -EBADMSG);
	cr_expect_str_eq(text, "0 offsets, need at least 6");
	cr_expect_eq(decode_v1_words((uint64_t[]){6, 56, 61, 62, 92, 94, 96}, 7, parts, text),
	             -EBADMSG);
	cr_expect(!strncmp(text, "header: ", 8), "%s", text);
}

Test(proto_ws, v1_check_lets_through_what_browsers_read_and_jansson_refuses)
{
	/* Duplicate keys and integers beyond 64 bits: JSON.parse reads them, jansson does not. */
	struct proto_ws_msg m = kernel_msg();
	struct proto_buf out;
	bool binary;

	m.content = BUF("{\"a\":1,\"a\":123456789012345678901234567890}");
	cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0);
	free(out.data);
	cr_expect_eq(proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, NULL), -EBADMSG);
}

/* Nesting of n arrays inside {"a": ...}, as an owned string. */
static char *nested(size_t n)
{
	char *s = malloc(2 * n + 8);

	cr_assert(s);
	strcpy(s, "{\"a\":");
	memset(s + 5, '[', n);
	memset(s + 5 + n, ']', n);
	strcpy(s + 5 + 2 * n, "}");
	return s;
}

Test(proto_ws, v1_check_accepts_everything_jansson_parses)
{
	static const char *const texts[] = {
	        "{}",
	        " \t\r\n{ \"a\" : [ 1 , -0 , 0.5e-3 , 1E+2 , -1.25E2 , true , false , null ] }\n",
	        "{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\uD83D\\uDE00\\uffff\"}",
	        "{\"\xc3\xa9\":\"\xe2\x98\x83\xf0\x9f\x98\x80\x7f\",\"\":{\"\":[]}}",
	        "{\"a\":[{},[],[[{\"b\":[]}]]],\"c\":9223372036854775807}",
	};
	struct proto_ws_msg m = kernel_msg();
	struct proto_buf out;
	bool binary;
	char *deep;
	json_t *j;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		j = json_loads(texts[i], JSON_ALLOW_NUL, NULL);
		cr_assert(json_is_object(j), "jansson refuses %s", texts[i]);
		json_decref(j);
		m.content =
		        (struct proto_buf){(unsigned char *)(uintptr_t)texts[i], strlen(texts[i])};
		cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0, "%s",
		             texts[i]);
		free(out.data);
	}
	/* jansson's limit: 2048 nested values, the object counting as one. */
	deep = nested(2047);
	j = json_loads(deep, 0, NULL);
	cr_assert(j, "jansson parses 2048 levels");
	json_decref(j);
	m.content = (struct proto_buf){(unsigned char *)deep, strlen(deep)};
	cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0);
	free(out.data);
	free(deep);
	deep = nested(2048);
	cr_assert_null(json_loads(deep, 0, NULL), "jansson refuses 2049 levels");
	m.content = (struct proto_buf){(unsigned char *)deep, strlen(deep)};
	cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), -EBADMSG);
	free(deep);
}

Test(proto_ws, v1_check_finds_string_ends_at_every_offset)
{
	/* Plain text is skipped a word at a time: an end, an escape or a control character
	 * must be seen wherever it falls in a word. */
	static const char *const mids[] = {"\\\"", "\\n", "\\u00e9", "\\\\", "\xc3\xa9",
	                                   "\"",   "\n",  "\x01",    "\\x"};
	static const bool ok[] = {true, true, true, true, true, false, false, false, false};
	struct proto_ws_msg m = kernel_msg();
	char text[128];

	for (size_t k = 0; k < sizeof(mids) / sizeof(mids[0]); k++) {
		for (size_t before = 0; before < 20; before++) {
			for (size_t after = 0; after < 20; after++) {
				struct proto_buf out = {0};
				bool binary;
				int n = snprintf(text, sizeof(text), "{\"text\":\"%.*s%s%.*s\"}",
				                 (int)before, "aaaaaaaaaaaaaaaaaaaa", mids[k],
				                 (int)after, "bbbbbbbbbbbbbbbbbbbb");
				int r;

				m.content = (struct proto_buf){(unsigned char *)text, (size_t)n};
				r = proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL);
				cr_expect_eq(r, ok[k] ? 0 : -EBADMSG, "%s", text);
				free(out.data);
			}
		}
		/* An unterminated string is refused wherever it stops. */
		for (size_t len = 9; len < 40; len++) {
			struct proto_buf out = {0};
			bool binary;

			memset(text, 'a', sizeof(text));
			memcpy(text, "{\"text\":\"", 9);
			m.content = (struct proto_buf){(unsigned char *)text, len};
			cr_expect_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL),
			             -EBADMSG);
			free(out.data);
		}
	}
}

/*
 * Frames for the allocation-failure loops. Every JSON token stays under 16 bytes: jansson 2.14
 * ignores a failed allocation while growing a longer one (see docs/protocol.md).
 */
static const char oom_json[] =
        "{\"header\":{\"msg_id\":\"m1\",\"msg_type\":\"t\"},\"parent_header\":{\"a\":[1,null]},"
        "\"content\":{\"k1\":1,\"k2\":\"v\",\"k3\":[],\"k4\":{},\"k5\":true,\"k6\":-3,\"k7\":"
        "\"\\u00e9\",\"k8\":[[{}]],\"k9\":0.5,\"k10\":\"x\",\"k11\":false,\"k12\":{\"n\":[1]}},"
        "\"channel\":\"control\",\"buffers\":[]}";

static void oom_loop(enum proto_ws_framing f, const unsigned char *data, size_t len, bool binary,
                     const char *name)
{
	struct proto_ws_msg ref;

	test_alloc_install();
	cr_assert_eq(proto_ws_decode(f, data, len, binary, &default_limits, &ref, NULL), 0, "%s",
	             name);
	for (int sticky = 0; sticky <= 1; sticky++) {
		unsigned long nth;

		for (nth = 1;; nth++) {
			struct proto_error err = {0};
			struct proto_ws_msg m;
			long live = test_alloc_live();
			bool failed;
			int r;

			test_alloc_fail_at(nth, sticky);
			r = proto_ws_decode(f, data, len, binary, &default_limits, &m, &err);
			failed = test_alloc_stop();
			if (!failed) {
				cr_expect_eq(r, 0, "%s: %d without failures", name, r);
				cr_expect(msgs_same(&m, &ref), "%s", name);
				proto_ws_msg_clear(&m);
				break;
			}
			/* jansson reports some failed allocations as invalid tokens. */
			cr_expect(r == -ENOMEM || r == -EBADMSG, "%s: allocation %lu: %d (%s)",
			          name, nth, r, err.text);
			cr_expect_eq(m.header.data, NULL, "%s", name);
			cr_expect_eq(m.buffers, NULL, "%s", name);
			cr_expect_eq(test_alloc_live(), live, "%s: leak after allocation %lu", name,
			             nth);
		}
		cr_expect_gt(nth, 10, "%s: the loop failed only %lu allocations", name, nth);
	}
	proto_ws_msg_clear(&ref);
	cr_expect_eq(test_alloc_live(), 0);
}

Test(proto_ws, legacy_text_decode_survives_every_allocation_failure)
{
	oom_loop(PROTO_WS_LEGACY, (const unsigned char *)oom_json, sizeof(oom_json) - 1, false,
	         "legacy text");
}

static void put_be32(unsigned char *p, size_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (24 - 8 * i);
}

Test(proto_ws, legacy_binary_decode_survives_every_allocation_failure)
{
	size_t jl = sizeof(oom_json) - 1, len = 16 + jl + 3;
	unsigned char *frame = malloc(len);

	cr_assert(frame);
	put_be32(frame, 3);
	put_be32(frame + 4, 16);
	put_be32(frame + 8, 16 + jl);
	put_be32(frame + 12, 16 + jl + 3);
	memcpy(frame + 16, oom_json, jl);
	memcpy(frame + 16 + jl, "\x01\x02\x03", 3);
	oom_loop(PROTO_WS_LEGACY, frame, len, true, "legacy binary");
	free(frame);
}

Test(proto_ws, v1_decode_survives_every_allocation_failure)
{
	struct proto_buf bufs[2] = {BUF("\x00\x01"), BUF("")};
	struct proto_ws_msg m = {
	        .channel = PROTO_WS_STDIN,
	        .header = BUF("{\"msg_id\":\"m1\",\"msg_type\":\"t\"}"),
	        .parent = BUF("{\"a\":[1,null]}"),
	        .metadata = BUF("{}"),
	        .content = BUF("{\"k1\":1,\"k2\":\"v\",\"k3\":[],\"k4\":{},\"k5\":true,\"k6\":-3,"
	                       "\"k7\":\"\\u00e9\",\"k8\":[[{}]],\"k9\":0.5,\"k10\":\"x\","
	                       "\"k11\":false,\"k12\":{\"n\":[1]}}"),
	        .buffers = bufs,
	        .n_buffers = 2,
	};
	struct proto_buf out;
	bool binary;

	cr_assert_eq(proto_ws_encode(PROTO_WS_V1, &m, &out, &binary, NULL), 0);
	oom_loop(PROTO_WS_V1, out.data, out.len, true, "v1");
	free(out.data);
}

Test(proto_ws, legacy_encode_survives_every_allocation_failure)
{
	struct proto_buf bufs[1] = {BUF("\x00\x01")};
	struct proto_ws_msg m = kernel_msg();
	unsigned long nth;

	m.content = BUF("{\"k1\":1,\"k2\":\"v\",\"k3\":[],\"k4\":{},\"k5\":true,\"k6\":-3,\"k7\":"
	                "\"\\u00e9\",\"k8\":[[{}]],\"k9\":0.5,\"k10\":\"x\",\"k11\":false}");
	test_alloc_install();
	for (size_t nb = 0; nb <= 1; nb++) {
		m.buffers = nb ? bufs : NULL;
		m.n_buffers = nb;
		for (nth = 1;; nth++) {
			struct proto_error err = {0};
			long live = test_alloc_live();
			struct proto_buf out;
			bool failed, binary;
			int r;

			test_alloc_fail_at(nth, false);
			r = proto_ws_encode(PROTO_WS_LEGACY, &m, &out, &binary, &err);
			failed = test_alloc_stop();
			if (!failed) {
				cr_expect_eq(r, 0);
				free(out.data);
				break;
			}
			cr_expect(r == -ENOMEM || r == -EBADMSG, "allocation %lu: %d (%s)", nth, r,
			          err.text);
			cr_expect_null(out.data);
			cr_expect_eq(test_alloc_live(), live, "leak after allocation %lu", nth);
		}
		cr_expect_gt(nth, 10);
	}
	cr_expect_eq(test_alloc_live(), 0);
}
