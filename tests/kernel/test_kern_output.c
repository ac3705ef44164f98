/*
 * kern_output: the stream content encoder against jansson and proto_utf8_sanitize, and the
 * output thread itself (fd 1 and 2 captured, iopub on an inproc PUB socket): no output lost,
 * and everything written before a sync published before what is published after it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <zmq.h>

#include "kern.h"
#include "kern_output.h"
#include "proto_utf8.h"
#include "proto_zmq.h"

/* Encodes buf as stdout content and checks it against what jansson reads back. */
static void check_encoding(const unsigned char *buf, size_t n)
{
	size_t room = kern_output_json_size("stdout", buf, n);
	char *out = malloc(room), *want = malloc(3 * n + 1);
	size_t len, want_len;
	json_error_t err;
	json_t *j;

	cr_assert(out && want);
	memset(out, 0x5a, room);
	len = kern_output_json("stdout", buf, n, out);
	cr_assert_lt(len, room, "the encoder wrote %zu of %zu bytes of room", len, room);
	cr_assert_eq(out[len], '\0');
	j = json_loadb(out, len, JSON_ALLOW_NUL, &err);
	cr_assert_not_null(j, "not JSON (%s): %.80s", err.text, out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "stdout");
	want_len = proto_utf8_sanitize(buf, n, want);
	cr_assert_eq(json_string_length(json_object_get(j, "text")), want_len);
	cr_assert(memcmp(json_string_value(json_object_get(j, "text")), want, want_len) == 0);
	cr_assert_eq(json_object_size(j), 2);
	json_decref(j);
	free(out);
	free(want);
}

Test(kern_output, encodes_text_controls_and_quotes)
{
	static const char *const cases[] = {
	        "",
	        "x\n",
	        "plain ascii, longer than one word of eight bytes",
	        "quote \" backslash \\ slash / tab \t cr \r ff \f bs \b nul-free \x01\x1f\x7f",
	        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8",
	        "\"\"\"\"\"\"\"\"\\\\\\\\\\\\\\\\",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_encoding((const unsigned char *)cases[i], strlen(cases[i]));
	check_encoding((const unsigned char *)"a\0b", 3);
}

Test(kern_output, replaces_invalid_utf8_like_the_sanitizer)
{
	static const char *const cases[] = {
	        "\xff",
	        "\xc3",
	        "a\xc3",
	        "\xc3z",
	        "\xe2\x82",
	        "\xe2\x82z",
	        "\xed\xa0\x80",
	        "\xc0\xaf",
	        "\xf4\x90\x80\x80",
	        "\x80\x80\x80\x80\x80",
	        "ok \xf0\x9f\x98 then \xe2\x82\xac",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_encoding((const unsigned char *)cases[i], strlen(cases[i]));
}

Test(kern_output, random_bytes_round_trip)
{
	static const unsigned char alphabet[] =
	        "ab\"\\\n\t\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff";
	unsigned char buf[300];
	uint32_t seed = 12345;

	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)(round % 300);

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly plain text, so runs and words both get exercised. */
			buf[i] = (seed >> 16) % 4 ? (unsigned char)('a' + (seed >> 20) % 26)
			                          : alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		check_encoding(buf, n);
	}
}

Test(kern_output, size_is_exact_for_ascii_and_bounded)
{
	unsigned char ctl[64], high[64];
	char *out = malloc(1024);

	memset(ctl, 0x01, sizeof(ctl));
	memset(high, 0xff, sizeof(high));
	cr_assert_eq(kern_output_json_size("stdout", (const unsigned char *)"ab", 2),
	             kern_output_json("stdout", (const unsigned char *)"ab", 2, out) + 1 + 2);
	cr_assert_leq(kern_output_json_size("stderr", ctl, sizeof(ctl)), 6 * sizeof(ctl) + 64);
	cr_assert_leq(kern_output_json_size("stderr", high, sizeof(high)), 6 * sizeof(high) + 64);
	free(out);
}

/* ---- the thread, against a PUB socket ---- */

static struct kern test_k;
static void *test_ctx, *test_sub;

static void setup_kernel(void)
{
	static char key[] = "test-key";
	int hwm = 0;

	memset(&test_k, 0, sizeof(test_k));
	test_k.conn.key = key;
	test_k.conn.key_len = strlen(key);
	test_k.limits = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	snprintf(test_k.session, sizeof(test_k.session), "%s", "test-session");
	test_k.log_fd = dup(2);
	test_k.wake_fd = -1;
	pthread_mutex_init(&test_k.iopub_lock, NULL);
	pthread_mutex_init(&test_k.parent_lock, NULL);
	test_k.parent_json = strdup("{\"msg_id\":\"req\"}");
	test_ctx = zmq_ctx_new();
	test_k.iopub = zmq_socket(test_ctx, ZMQ_PUB);
	test_sub = zmq_socket(test_ctx, ZMQ_SUB);
	zmq_setsockopt(test_k.iopub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(test_sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	cr_assert_eq(zmq_bind(test_k.iopub, "inproc://iopub"), 0);
	cr_assert_eq(zmq_connect(test_sub, "inproc://iopub"), 0);
	zmq_setsockopt(test_sub, ZMQ_SUBSCRIBE, "", 0);
	cr_assert_eq(kern_output_start(&test_k), 0);
}

static void teardown_kernel(void)
{
	kern_output_stop(&test_k);
	zmq_close(test_sub);
	zmq_close(test_k.iopub);
	zmq_ctx_term(test_ctx);
	free(test_k.parent_json);
}

/* Receives one iopub message: its type into type, a stream's text appended to the stream's
 * string, a marker's number returned (-1 for anything else). */
static long receive_one(char *type, size_t type_len, char **out, size_t *out_len, char **err,
                        size_t *err_len)
{
	struct proto_frames frames = {0};
	struct proto_msg *m = NULL;
	long mark = -1;

	cr_assert_eq(proto_zmq_recv(test_sub, 0, &test_k.limits, &frames), 0);
	cr_assert_eq(proto_wire_decode(frames.v, frames.n, test_k.conn.key, test_k.conn.key_len,
	                               &test_k.limits, &m, NULL),
	             0);
	snprintf(type, type_len, "%s", proto_msg_type(m));
	if (!strcmp(type, "stream")) {
		json_t *text = json_object_get(m->content, "text");
		bool is_out =
		        !strcmp(json_string_value(json_object_get(m->content, "name")), "stdout");
		char **dst = is_out ? out : err;
		size_t *dst_len = is_out ? out_len : err_len;
		size_t n = json_string_length(text);

		*dst = realloc(*dst, *dst_len + n + 1);
		memcpy(*dst + *dst_len, json_string_value(text), n);
		*dst_len += n;
		(*dst)[*dst_len] = '\0';
	} else {
		mark = (long)json_integer_value(json_object_get(m->content, "mark"));
	}
	proto_msg_free(m);
	proto_frames_clear(&frames);
	return mark;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		cr_assert_gt(w, 0);
		s += w;
		n -= (size_t)w;
	}
}

Test(kern_output, sync_orders_output_before_later_messages, .init = setup_kernel,
     .fini = teardown_kernel)
{
	char *out = NULL, *err = NULL, type[64], content[64];
	size_t out_len = 0, err_len = 0, want_out = 0, want_err = 0;
	size_t at_mark_out[400], at_mark_err[400];
	uint32_t seed = 7;
	long expect = 0;

	for (long i = 0; i < 400; i++) {
		int n;

		seed = seed * 1103515245u + 12345u;
		/* Half the rounds write nothing: the sync then takes its fast path. */
		if (seed >> 16 & 1) {
			char line[64];
			int fd = (seed >> 17 & 3) == 0 ? 2 : 1;

			n = snprintf(line, sizeof(line), "%ld:%s\n", i, fd == 1 ? "out" : "err");
			write_all(fd, line, (size_t)n);
			*(fd == 1 ? &want_out : &want_err) += (size_t)n;
		}
		if ((seed >> 20) % 5 == 0)
			usleep(300); /* sometimes let the thread read on its own first */
		kern_output_sync(&test_k);
		at_mark_out[i] = want_out;
		at_mark_err[i] = want_err;
		n = snprintf(content, sizeof(content), "{\"mark\":%ld}", i);
		cr_assert_eq(
		        kern_publish(&test_k, "marker", NULL, content, (size_t)n, NULL, NULL, 0),
		        0);
	}
	while (expect < 400) {
		long mark = receive_one(type, sizeof(type), &out, &out_len, &err, &err_len);

		if (mark < 0)
			continue;
		cr_assert_eq(mark, expect);
		cr_assert_eq(out_len, at_mark_out[mark], "marker %ld: %zu stdout bytes, wanted %zu",
		             mark, out_len, at_mark_out[mark]);
		cr_assert_eq(err_len, at_mark_err[mark], "marker %ld: %zu stderr bytes, wanted %zu",
		             mark, err_len, at_mark_err[mark]);
		expect++;
	}
	free(out);
	free(err);
}

Test(kern_output, large_output_arrives_whole_and_in_order, .init = setup_kernel,
     .fini = teardown_kernel)
{
	size_t total = 5 * KERN_OUTPUT_BUF_CAP + 12345, chunk = 300000, sent = 0;
	char *data = malloc(chunk), *out = NULL, *err = NULL, type[64];
	size_t out_len = 0, err_len = 0;
	long mark = -1;

	for (size_t i = 0; i < chunk; i++)
		data[i] = (char)('a' + i % 26);
	/* The pipe holds less than this: a writer thread keeps the reader busy meanwhile. */
	while (sent < total) {
		size_t n = total - sent < chunk ? total - sent : chunk;

		write_all(1, data, n);
		sent += n;
		/* Drain the subscriber as we go so that nothing waits on our own reads. */
		while (zmq_poll(&(zmq_pollitem_t){.socket = test_sub, .events = ZMQ_POLLIN}, 1, 0) >
		       0)
			receive_one(type, sizeof(type), &out, &out_len, &err, &err_len);
	}
	kern_output_sync(&test_k);
	cr_assert_eq(kern_publish(&test_k, "marker", NULL, "{\"mark\":1}", 10, NULL, NULL, 0), 0);
	while (mark < 0)
		mark = receive_one(type, sizeof(type), &out, &out_len, &err, &err_len);
	cr_assert_eq(out_len, total);
	for (size_t i = 0, j = 0; i < total; i++, j = (j + 1) % chunk)
		cr_assert_eq(out[i], data[j], "byte %zu", i);
	free(out);
	free(err);
	free(data);
}
