/*
 * proto_wire: the data-driven cases under data/{valid,invalid}/wire-*, encoding round trips,
 * serialisation rules (compact, insertion order, raw UTF-8) and allocation-failure loops.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proto_sign.h"
#include "proto_wire.h"
#include "testdata.h"

TestSuite(proto_wire, .fini = test_check_leaks);

static const struct proto_limits default_limits = PROTO_LIMITS_DEFAULT;

/* Checks the optional expectations of a valid case against the decoded message. */
static void check_expectations(const struct test_case *c, const struct proto_msg *m)
{
	char *v;

	if ((v = test_expect(c, "msg_type"))) {
		cr_expect_str_eq(proto_msg_type(m), v, "%s: msg_type", c->name);
		free(v);
	}
	if ((v = test_expect(c, "msg_id"))) {
		cr_expect_str_eq(proto_msg_id(m), v, "%s: msg_id", c->name);
		free(v);
	}
	if ((v = test_expect(c, "idents"))) {
		cr_expect_eq(m->n_idents, strtoul(v, NULL, 10), "%s: identities", c->name);
		free(v);
	}
	if ((v = test_expect(c, "ident_0"))) {
		cr_expect_str_eq((const char *)m->idents[0].data, v, "%s: identity 0", c->name);
		free(v);
	}
	if ((v = test_expect(c, "buffers"))) {
		cr_expect_eq(m->n_buffers, strtoul(v, NULL, 10), "%s: buffers", c->name);
		free(v);
	}
	for (size_t i = 0; i < m->n_buffers; i++) {
		char key[32];

		snprintf(key, sizeof(key), "buffer_%zu_len", i);
		if ((v = test_expect(c, key))) {
			cr_expect_eq(m->buffers[i].len, strtoul(v, NULL, 10), "%s: %s", c->name,
			             key);
			free(v);
		}
	}
	if ((v = test_expect(c, "parent_msg_id"))) {
		cr_expect_str_eq(json_string_value(json_object_get(m->parent, "msg_id")), v,
		                 "%s: parent msg_id", c->name);
		free(v);
	}
	if ((v = test_expect(c, "is_reply"))) {
		cr_expect_eq(proto_msg_is_reply(m), atoi(v) != 0, "%s: is_reply", c->name);
		free(v);
	}
	if ((v = test_expect(c, "content_text_len"))) {
		cr_expect_eq(json_string_length(json_object_get(m->content, "text")),
		             strtoul(v, NULL, 10), "%s: content text length", c->name);
		free(v);
	}
}

static void expect_same_bufs(const struct proto_buf *a, const struct proto_buf *b, size_t n,
                             const char *name)
{
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(a[i].len, b[i].len, "%s: length of frame %zu", name, i);
		if (a[i].len == b[i].len && a[i].len)
			cr_expect(!memcmp(a[i].data, b[i].data, a[i].len), "%s: frame %zu", name,
			          i);
	}
}

/* Re-encodes m with key, decodes the result and expects the same message back. */
static void expect_round_trip(const struct proto_msg *m, const void *key, size_t keylen,
                              const char *name)
{
	struct proto_wire_out out;
	struct proto_buf *frames;
	struct proto_msg *back = NULL;
	struct proto_error err = {0};
	char sig[PROTO_SIGN_HEX_LEN + 1];
	size_t n;
	int r;

	cr_assert_eq(proto_wire_out_from_msg(m, &out), 0, "%s: out_from_msg", name);
	frames = calloc(proto_wire_frame_count(&out), sizeof(*frames));
	cr_assert(frames);
	n = proto_wire_encode(&out, key, keylen, sig, frames);
	cr_expect_eq(n, proto_wire_frame_count(&out), "%s: frame count", name);
	r = proto_wire_decode(frames, n, key, keylen, &default_limits, &back, &err);
	cr_assert_eq(r, 0, "%s: re-decode failed: %s", name, err.text);
	cr_expect(json_equal(m->header, back->header), "%s: header", name);
	cr_expect(json_equal(m->parent, back->parent), "%s: parent", name);
	cr_expect(json_equal(m->metadata, back->metadata), "%s: metadata", name);
	cr_expect(json_equal(m->content, back->content), "%s: content", name);
	cr_expect_eq(back->n_idents, m->n_idents, "%s: identities", name);
	cr_expect_eq(back->n_buffers, m->n_buffers, "%s: buffers", name);
	expect_same_bufs(m->idents, back->idents, m->n_idents, name);
	expect_same_bufs(m->buffers, back->buffers, m->n_buffers, name);
	proto_msg_free(back);
	free(frames);
	proto_wire_out_release(&out);
}

Test(proto_wire, decodes_every_valid_case)
{
	struct test_case *cases;
	size_t n = test_cases_load("wire", &cases), seen = 0;

	cr_assert_gt(n, 0, "no wire cases under %s", test_data_dir());
	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		struct proto_error err = {0};
		struct proto_msg *m = NULL;
		int r;

		if (!c->valid)
			continue;
		seen++;
		r = proto_wire_decode(c->frames, c->n_frames, c->key.data, c->key.len, &c->limits,
		                      &m, &err);
		cr_expect_eq(r, 0, "%s: got %d (%s)", c->name, r, err.text);
		if (r == 0) {
			check_expectations(c, m);
			expect_round_trip(m, c->key.data, c->key.len, c->name);
		}
		proto_msg_free(m);
	}
	cr_expect_gt(seen, 5);
	test_cases_free(cases, n);
}

Test(proto_wire, rejects_every_invalid_case_with_its_errno)
{
	struct test_case *cases;
	size_t n = test_cases_load("wire", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		struct proto_error err = {0};
		struct proto_msg *m = (struct proto_msg *)&err; /* must be reset to NULL */
		int want, r;

		if (c->valid)
			continue;
		seen++;
		want = test_expect_result(c);
		r = proto_wire_decode(c->frames, c->n_frames, c->key.data, c->key.len, &c->limits,
		                      &m, &err);
		cr_expect_eq(r, want, "%s: got %d (%s), want %d", c->name, r, err.text, want);
		cr_expect_null(m, "%s: output not NULL on failure", c->name);
		cr_expect_neq(err.text[0], '\0', "%s: no error text", c->name);
	}
	cr_expect_gt(seen, 20);
	test_cases_free(cases, n);
}

Test(proto_wire, split_borrows_parts_from_the_frames)
{
	struct test_case *cases;
	size_t n = test_cases_load("wire", &cases);

	for (size_t i = 0; i < n; i++) {
		const struct test_case *c = &cases[i];
		struct proto_wire_parts p;
		size_t d;

		if (!c->valid)
			continue;
		cr_assert_eq(proto_wire_split(c->frames, c->n_frames, &c->limits, &p, NULL), 0,
		             "%s", c->name);
		d = p.n_idents;
		cr_expect_eq(p.idents, d ? c->frames : NULL, "%s: identities", c->name);
		cr_expect_eq(p.signature.data, c->frames[d + 1].data, "%s: signature", c->name);
		cr_expect_eq(p.header.data, c->frames[d + 2].data, "%s: header", c->name);
		cr_expect_eq(p.content.data, c->frames[d + 5].data, "%s: content", c->name);
		cr_expect_eq(p.n_buffers, c->n_frames - d - 6, "%s: buffers", c->name);
		if (p.n_buffers)
			cr_expect_eq(p.buffers, &c->frames[d + 6], "%s: buffers", c->name);
	}
	test_cases_free(cases, n);
}

/* A message built in code: [id, <IDS|MSG>, sig, 4 JSON, 1 buffer]. */
static struct proto_msg *sample_msg(void)
{
	struct proto_msg *m = proto_msg_new();

	cr_assert(m);
	m->header = proto_header_new("execute_request", "session-1", "tester");
	m->parent = json_object();
	m->metadata = json_pack("{s:b}", "trusted", 1);
	m->content = json_pack("{s:s, s:b}", "code", "print('h\xc3\xa9')", "silent", 0);
	cr_assert(m->header && m->parent && m->metadata && m->content);
	/* A proto_msg frees what it owns with the library's allocator. */
	m->idents = test_malloc(sizeof(*m->idents));
	m->buffers = test_malloc(sizeof(*m->buffers));
	cr_assert(m->idents && m->buffers);
	m->idents[0].data = test_malloc(6);
	cr_assert(m->idents[0].data);
	memcpy(m->idents[0].data, "client", 6);
	m->idents[0].len = 6;
	m->n_idents = 1;
	m->buffers[0].data = test_malloc(3);
	cr_assert(m->buffers[0].data);
	memcpy(m->buffers[0].data, "\x00\xff\x01", 3);
	m->buffers[0].len = 3;
	m->n_buffers = 1;
	return m;
}

Test(proto_wire, encode_then_decode_round_trips_signed)
{
	struct proto_msg *m = sample_msg();

	expect_round_trip(m, "secret", 6, "signed");
	expect_round_trip(m, NULL, 0, "unsigned");
	proto_msg_free(m);
}

Test(proto_wire, encode_lays_out_frames_and_signs_the_four_json_parts)
{
	struct proto_msg *m = sample_msg();
	struct proto_wire_out out;
	struct proto_buf frames[8];
	char sig[PROTO_SIGN_HEX_LEN + 1], want[PROTO_SIGN_HEX_LEN + 1];
	size_t n;

	cr_assert_eq(proto_wire_out_from_msg(m, &out), 0);
	cr_assert_eq(proto_wire_frame_count(&out), 8);
	n = proto_wire_encode(&out, "k", 1, sig, frames);
	cr_assert_eq(n, 8);
	cr_expect_eq(frames[0].len, 6);
	cr_expect(frames[1].len == PROTO_DELIM_LEN && !memcmp(frames[1].data, PROTO_DELIM, 9));
	{
		const struct proto_buf parts[4] = {frames[3], frames[4], frames[5], frames[6]};

		proto_sign_hex("k", 1, parts, want);
	}
	cr_expect_eq(frames[2].len, 64);
	cr_expect_str_eq(sig, want);
	cr_expect_eq(frames[7].len, 3);

	n = proto_wire_encode(&out, NULL, 0, sig, frames);
	cr_expect_eq(frames[2].len, 0, "an empty key sends an empty signature");
	cr_expect_str_eq(sig, "");
	proto_wire_out_release(&out);
	proto_msg_free(m);
}

Test(proto_wire, out_from_msg_is_compact_ordered_and_raw_utf8)
{
	struct proto_msg *m = proto_msg_new();
	struct proto_wire_out out;

	cr_assert(m);
	m->header = json_pack("{s:s, s:s, s:s}", "msg_type", "t", "msg_id", "1", "a", "z");
	m->content = json_pack("{s:i, s:[i,i], s:s, s:s}", "zeta", 1, "alpha", 1, 2, "text",
	                       "\xc3\xa9\xe2\x98\x83", "esc", "\"\\\n");
	cr_assert(m->header && m->content);
	cr_assert_eq(proto_wire_out_from_msg(m, &out), 0);
	cr_expect_str_eq((const char *)out.header.data,
	                 "{\"msg_type\":\"t\",\"msg_id\":\"1\",\"a\":\"z\"}");
	cr_expect_str_eq((const char *)out.content.data,
	                 "{\"zeta\":1,\"alpha\":[1,2],\"text\":\"\xc3\xa9\xe2\x98\x83\","
	                 "\"esc\":\"\\\"\\\\\\n\"}");
	cr_expect_str_eq((const char *)out.parent.data, "{}", "a NULL parent is sent as {}");
	cr_expect_str_eq((const char *)out.metadata.data, "{}");
	cr_expect_eq(out.content.len, strlen((const char *)out.content.data));
	proto_wire_out_release(&out);
	cr_expect_null(out.header.data, "release clears the struct");
	proto_msg_free(m);
}

Test(proto_wire, out_from_msg_keeps_nul_characters_escaped)
{
	struct proto_msg *m = proto_msg_new();
	struct proto_wire_out out;

	cr_assert(m);
	m->header = json_pack("{s:s, s:s}", "msg_id", "1", "msg_type", "stream");
	m->content = json_pack("{s:s%}", "text", "a\0b", (size_t)3);
	cr_assert(m->header && m->content);
	cr_assert_eq(proto_wire_out_from_msg(m, &out), 0);
	cr_expect_str_eq((const char *)out.content.data, "{\"text\":\"a\\u0000b\"}");
	proto_wire_out_release(&out);
	proto_msg_free(m);
}

Test(proto_wire, out_from_msg_refuses_a_message_without_header)
{
	struct proto_msg *m = proto_msg_new();
	struct proto_wire_out out;

	cr_assert(m);
	cr_expect_eq(proto_wire_out_from_msg(m, &out), -EINVAL);
	proto_msg_free(m);
}

Test(proto_wire, out_from_msg_fails_on_invalid_utf8_instead_of_sending_it)
{
	struct proto_msg *m = proto_msg_new();
	struct proto_wire_out out;

	cr_assert(m);
	m->header = json_pack("{s:s, s:s}", "msg_id", "1", "msg_type", "t");
	m->content = json_object();
	cr_assert(m->header && m->content);
	/* Only the *_nocheck constructors can smuggle bad bytes into jansson. */
	json_object_set_new(m->content, "bad", json_string_nocheck("\xff\xfe"));
	cr_expect_eq(proto_wire_out_from_msg(m, &out), -ENOMEM);
	cr_expect_null(out.header.data, "nothing is kept on failure");
	proto_msg_free(m);
}

Test(proto_wire, split_reports_each_limit)
{
	/* One frame of each role: ident, delimiter, signature, 4 JSON, buffer. */
	struct proto_buf f[8] = {
	        {(unsigned char *)(uintptr_t) "id", 2},
	        {(unsigned char *)(uintptr_t)PROTO_DELIM, 9},
	        {(unsigned char *)(uintptr_t) "", 0},
	        {(unsigned char *)(uintptr_t) "{}", 2},
	        {(unsigned char *)(uintptr_t) "{}", 2},
	        {(unsigned char *)(uintptr_t) "{}", 2},
	        {(unsigned char *)(uintptr_t) "{}", 2},
	        {(unsigned char *)(uintptr_t) "buf", 3},
	};
	struct proto_wire_parts p;
	struct proto_limits lim = PROTO_LIMITS_DEFAULT;

	cr_assert_eq(proto_wire_split(f, 8, &lim, &p, NULL), 0);
	cr_expect_eq(p.n_idents, 1);
	cr_expect_eq(p.n_buffers, 1);

	lim.max_frames = 7;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	lim.max_idents = 0;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	lim.max_ident_len = 1;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	lim.max_json_frame = 1;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	lim.max_buffer = 2;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	lim.max_total = 21;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), -EMSGSIZE);
	lim.max_total = 22;
	cr_expect_eq(proto_wire_split(f, 8, &lim, &p, NULL), 0, "exactly at the total is fine");
	cr_expect_eq(proto_wire_split(NULL, 0, &lim, &p, NULL), -EBADMSG);
}

static bool msg_equal(const struct proto_msg *a, const struct proto_msg *b)
{
	return json_equal(a->header, b->header) && json_equal(a->parent, b->parent) &&
	       json_equal(a->metadata, b->metadata) && json_equal(a->content, b->content) &&
	       a->n_idents == b->n_idents && a->n_buffers == b->n_buffers;
}

/*
 * The message of the allocation-failure loop. jansson 2.14 ignores a failed allocation while
 * growing its token buffer (akheron/jansson#362: a silently wrong value, or an assert), so
 * every token here stays under its initial 16 bytes; everything else jansson and we allocate
 * is failed in turn. Twelve content keys make the object's hash table grow.
 */
static const char *const oom_text[] = {
        "{\"msg_id\":\"m1\",\"msg_type\":\"t_reply\"}",
        "{\"msg_id\":\"p0\",\"a\":[1,2.5,null]}",
        "{}",
        ("{\"k1\":1,\"k2\":\"v\",\"k3\":[],\"k4\":{},\"k5\":true,\"k6\":-3,\"k7\":\"\\u00e9\","
         "\"k8\":[[{}]],\"k9\":0.1,\"k10\":\"x\",\"k11\":false,\"k12\":{\"n\":[1]}}"),
};

static size_t oom_frames(struct proto_buf f[10], char sig[PROTO_SIGN_HEX_LEN + 1])
{
	f[0] = (struct proto_buf){(unsigned char *)(uintptr_t) "ident-1", 7};
	f[1] = (struct proto_buf){(unsigned char *)(uintptr_t) "id2", 3};
	f[2] = (struct proto_buf){(unsigned char *)(uintptr_t)PROTO_DELIM, PROTO_DELIM_LEN};
	for (int i = 0; i < 4; i++)
		f[4 + i] = (struct proto_buf){(unsigned char *)(uintptr_t)oom_text[i],
		                              strlen(oom_text[i])};
	f[8] = (struct proto_buf){(unsigned char *)(uintptr_t) "\x00\x01", 2};
	f[9] = (struct proto_buf){(unsigned char *)(uintptr_t) "", 0};
	proto_sign_hex("k", 1, &f[4], sig);
	f[3] = (struct proto_buf){(unsigned char *)sig, PROTO_SIGN_HEX_LEN};
	return 10;
}

Test(proto_wire, decode_survives_every_allocation_failure)
{
	struct proto_buf f[10];
	char sig[PROTO_SIGN_HEX_LEN + 1];
	size_t n = oom_frames(f, sig);
	struct proto_msg *ref = NULL;

	test_alloc_install();
	cr_assert_eq(proto_wire_decode(f, n, "k", 1, &default_limits, &ref, NULL), 0);
	for (int sticky = 0; sticky <= 1; sticky++) {
		unsigned long nth;

		for (nth = 1;; nth++) {
			struct proto_msg *m = NULL;
			struct proto_error err = {0};
			long live = test_alloc_live();
			bool failed;
			int r;

			test_alloc_fail_at(nth, sticky);
			r = proto_wire_decode(f, n, "k", 1, &default_limits, &m, &err);
			failed = test_alloc_stop();
			if (!failed) {
				cr_expect_eq(r, 0, "%d without failures", r);
				cr_expect(msg_equal(m, ref));
				proto_msg_free(m);
				break;
			}
			/* jansson reports a failed string allocation as an invalid token. */
			cr_expect(r == -ENOMEM || r == -EBADMSG,
			          "allocation %lu failed, got %d (%s)", nth, r, err.text);
			cr_expect_null(m);
			cr_expect_eq(test_alloc_live(), live, "leak after allocation %lu", nth);
		}
		cr_expect_gt(nth, 40, "the loop failed only %lu allocations", nth);
	}
	proto_msg_free(ref);
	cr_expect_eq(test_alloc_live(), 0);
}

Test(proto_wire, out_from_msg_survives_every_allocation_failure)
{
	struct proto_msg *m;
	unsigned long nth;

	test_alloc_install();
	m = sample_msg();
	for (nth = 1;; nth++) {
		struct proto_wire_out out;
		long live = test_alloc_live();
		bool failed;
		int r;

		test_alloc_fail_at(nth, false);
		r = proto_wire_out_from_msg(m, &out);
		failed = test_alloc_stop();
		if (!failed) {
			cr_expect_eq(r, 0);
			proto_wire_out_release(&out);
			break;
		}
		cr_expect_eq(r, -ENOMEM, "allocation %lu failed, got %d", nth, r);
		cr_expect_eq(test_alloc_live(), live, "leak after allocation %lu", nth);
	}
	cr_expect_gt(nth, 4);
	proto_msg_free(m);
}
