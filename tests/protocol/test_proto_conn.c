/*
 * proto_conn: the data-driven connection files under data/{valid,invalid}/conn-*, endpoint
 * formatting, dump/parse round trips and allocation failures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto_conn.h"
#include "testdata.h"

TestSuite(proto_conn, .fini = test_check_leaks);

/* Reads the case's connection.json. */
static struct proto_buf conn_file(const struct test_case *c)
{
	struct proto_buf b;
	char path[600];

	snprintf(path, sizeof(path), "%s/connection.json", c->dir);
	cr_assert_eq(test_read_file(path, &b), 0, "%s: no connection.json", c->name);
	return b;
}

static bool conn_equal(const struct proto_conn *a, const struct proto_conn *b)
{
	return !strcmp(a->transport, b->transport) && !strcmp(a->ip, b->ip) &&
	       !memcmp(a->ports, b->ports, sizeof(a->ports)) && a->key_len == b->key_len &&
	       !memcmp(a->key, b->key, a->key_len) && !strcmp(a->kernel_name, b->kernel_name);
}

static void check_expectations(const struct test_case *c, const struct proto_conn *conn)
{
	char *v;

	if ((v = test_expect(c, "transport"))) {
		cr_expect_str_eq(conn->transport, v, "%s", c->name);
		free(v);
	}
	if ((v = test_expect(c, "ip"))) {
		cr_expect_str_eq(conn->ip, v, "%s", c->name);
		free(v);
	}
	if ((v = test_expect(c, "key_len"))) {
		cr_expect_eq(conn->key_len, strtoul(v, NULL, 10), "%s: key_len", c->name);
		cr_expect_eq(strlen(conn->key), conn->key_len, "%s: key is NUL-terminated",
		             c->name);
		free(v);
	}
	if ((v = test_expect(c, "kernel_name"))) {
		cr_expect_str_eq(conn->kernel_name, v, "%s", c->name);
		free(v);
	}
	for (int ch = 0; ch < PROTO_CHANNEL_COUNT; ch++) {
		char key[64], ep[600];

		snprintf(key, sizeof(key), "port_%s", proto_channel_name(ch));
		if ((v = test_expect(c, key))) {
			cr_expect_eq(conn->ports[ch], atoi(v), "%s: %s", c->name, key);
			free(v);
		}
		snprintf(key, sizeof(key), "endpoint_%s", proto_channel_name(ch));
		if ((v = test_expect(c, key))) {
			cr_expect_eq(proto_conn_endpoint(conn, ch, ep, sizeof(ep)), (int)strlen(v));
			cr_expect_str_eq(ep, v, "%s: %s", c->name, key);
			free(v);
		}
	}
}

Test(proto_conn, parses_every_valid_case)
{
	struct test_case *cases;
	size_t n = test_cases_load("conn", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		struct proto_buf b;
		struct proto_conn conn;
		struct proto_error err = {0};
		int r;

		if (!cases[i].valid)
			continue;
		seen++;
		b = conn_file(&cases[i]);
		r = proto_conn_parse((const char *)b.data, b.len, &conn, &err);
		cr_expect_eq(r, 0, "%s: %d (%s)", cases[i].name, r, err.text);
		if (r == 0)
			check_expectations(&cases[i], &conn);
		proto_conn_clear(&conn);
		free(b.data);
	}
	cr_expect_gt(seen, 5);
	test_cases_free(cases, n);
}

Test(proto_conn, rejects_every_invalid_case_and_leaves_the_struct_cleared)
{
	static const struct proto_conn zero;
	struct test_case *cases;
	size_t n = test_cases_load("conn", &cases), seen = 0;

	for (size_t i = 0; i < n; i++) {
		struct proto_buf b;
		struct proto_conn conn;
		struct proto_error err = {0};
		int r, want;

		if (cases[i].valid)
			continue;
		seen++;
		want = test_expect_result(&cases[i]);
		b = conn_file(&cases[i]);
		memset(&conn, 0x5a, sizeof(conn));
		r = proto_conn_parse((const char *)b.data, b.len, &conn, &err);
		cr_expect_eq(r, want, "%s: %d (%s)", cases[i].name, r, err.text);
		cr_expect(!memcmp(&conn, &zero, sizeof(conn)), "%s: not cleared", cases[i].name);
		cr_expect_neq(err.text[0], '\0', "%s: no error text", cases[i].name);
		free(b.data);
	}
	cr_expect_gt(seen, 10);
	test_cases_free(cases, n);
}

Test(proto_conn, dump_then_parse_gives_the_same_connection)
{
	struct test_case *cases;
	size_t n = test_cases_load("conn", &cases);

	for (size_t i = 0; i < n; i++) {
		struct proto_buf b;
		struct proto_conn a, back;
		char *text;

		if (!cases[i].valid)
			continue;
		b = conn_file(&cases[i]);
		cr_assert_eq(proto_conn_parse((const char *)b.data, b.len, &a, NULL), 0);
		text = proto_conn_dump(&a);
		cr_assert(text, "%s: dump failed", cases[i].name);
		cr_assert_eq(proto_conn_parse(text, strlen(text), &back, NULL), 0, "%s: %s",
		             cases[i].name, text);
		cr_expect(conn_equal(&a, &back), "%s: round trip differs", cases[i].name);
		cr_expect(strstr(text, "\"signature_scheme\": \"hmac-sha256\""), "%s", text);
		free(text);
		proto_conn_clear(&a);
		proto_conn_clear(&back);
		free(b.data);
	}
	test_cases_free(cases, n);
}

Test(proto_conn, channel_names_match_jupyter)
{
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_SHELL), "shell");
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_IOPUB), "iopub");
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_STDIN), "stdin");
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_CONTROL), "control");
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_HB), "hb");
	cr_expect_str_eq(proto_channel_name(PROTO_CHANNEL_COUNT), "unknown");
}

Test(proto_conn, endpoint_reports_a_buffer_too_small)
{
	struct proto_conn c = {.transport = "tcp", .ip = "127.0.0.1", .ports = {5555}};
	char buf[64];

	/* "tcp://127.0.0.1:5555" is 20 characters: it needs 21 bytes. */
	cr_expect_eq(proto_conn_endpoint(&c, PROTO_CHANNEL_SHELL, buf, 21), 20);
	cr_expect_str_eq(buf, "tcp://127.0.0.1:5555");
	cr_expect_eq(proto_conn_endpoint(&c, PROTO_CHANNEL_SHELL, buf, 20), -ENAMETOOLONG);
	cr_expect_eq(proto_conn_endpoint(&c, PROTO_CHANNEL_SHELL, NULL, 0), -ENAMETOOLONG);
	cr_expect_eq(proto_conn_endpoint(&c, PROTO_CHANNEL_COUNT, buf, sizeof(buf)), -EINVAL);
}

Test(proto_conn, endpoint_uses_the_jupyter_client_ipc_form)
{
	struct proto_conn c = {.transport = "ipc", .ip = "kernel-ipc", .ports = {1, 2, 3, 4, 5}};
	char buf[64];

	cr_expect_eq(proto_conn_endpoint(&c, PROTO_CHANNEL_CONTROL, buf, sizeof(buf)), 18);
	cr_expect_str_eq(buf, "ipc://kernel-ipc-4");
}

Test(proto_conn, clear_is_safe_twice_and_on_a_zeroed_struct)
{
	struct proto_conn c = {0};
	static const char text[] = "{\"transport\":\"tcp\",\"ip\":\"::1\",\"shell_port\":1,"
	                           "\"iopub_port\":2,\"stdin_port\":3,\"control_port\":4,"
	                           "\"hb_port\":5,\"key\":\"k\"}";

	proto_conn_clear(&c);
	proto_conn_clear(NULL);
	cr_assert_eq(proto_conn_parse(text, sizeof(text) - 1, &c, NULL), 0);
	cr_expect_str_eq(c.key, "k");
	proto_conn_clear(&c);
	cr_expect_null(c.key);
	proto_conn_clear(&c);
}

Test(proto_conn, parse_survives_every_allocation_failure)
{
	/* Tokens under 16 bytes: see akheron/jansson#362 in test_proto_wire.c. */
	static const char text[] = "{\"transport\":\"tcp\",\"ip\":\"127.0.0.1\",\"shell_port\":1,"
	                           "\"iopub_port\":2,\"stdin_port\":3,\"control_port\":4,"
	                           "\"hb_port\":5,\"key\":\"short-key\",\"kernel_name\":\"py\","
	                           "\"x1\":1,\"x2\":2,\"x3\":3,\"x4\":[4]}";
	struct proto_conn ref;
	unsigned long nth;

	test_alloc_install();
	cr_assert_eq(proto_conn_parse(text, sizeof(text) - 1, &ref, NULL), 0);
	for (nth = 1;; nth++) {
		struct proto_conn c;
		bool failed;
		int r;

		test_alloc_fail_at(nth, false);
		r = proto_conn_parse(text, sizeof(text) - 1, &c, NULL);
		failed = test_alloc_stop();
		if (!failed) {
			cr_expect_eq(r, 0);
			cr_expect(conn_equal(&c, &ref));
			proto_conn_clear(&c);
			break;
		}
		cr_expect(r == -ENOMEM || r == -EBADMSG, "allocation %lu, got %d", nth, r);
		cr_expect_null(c.key);
		cr_expect_eq(test_alloc_live(), 1, "leak after allocation %lu", nth);
	}
	cr_expect_gt(nth, 20);
	proto_conn_clear(&ref);
	cr_expect_eq(test_alloc_live(), 0);
}
