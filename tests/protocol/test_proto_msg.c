/*
 * proto_msg: ownership of a message, the header accessors and proto_header_new().
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proto_id.h"
#include "proto_msg.h"
#include "testdata.h"

TestSuite(proto_msg, .fini = test_check_leaks);

Test(proto_msg, new_message_is_empty_and_free_accepts_null)
{
	struct proto_msg *m = proto_msg_new();

	cr_assert(m);
	cr_expect_null(m->header);
	cr_expect_null(m->content);
	cr_expect_eq(m->n_idents, 0);
	cr_expect_eq(m->n_buffers, 0);
	proto_msg_free(m);
	proto_msg_free(NULL);
}

Test(proto_msg, accessors_read_the_header_or_return_empty)
{
	_cleanup_(proto_msg_freep) struct proto_msg *m = proto_msg_new();

	cr_assert(m);
	cr_expect_str_eq(proto_msg_type(m), "");
	cr_expect_str_eq(proto_msg_type(NULL), "");
	m->header = json_pack("{s:s, s:s, s:i}", "msg_type", "execute_request", "msg_id", "abc",
	                      "session", 7);
	cr_assert(m->header);
	cr_expect_str_eq(proto_msg_type(m), "execute_request");
	cr_expect_str_eq(proto_msg_id(m), "abc");
	cr_expect_str_eq(proto_msg_session(m), "", "a non-string session reads as empty");
	json_decref(m->header);
	m->header = json_array();
	cr_expect_str_eq(proto_msg_id(m), "", "a non-object header reads as empty");
}

Test(proto_msg, is_reply_needs_the_reply_suffix)
{
	static const struct {
		const char *type;
		bool reply;
	} cases[] = {
	        {"execute_reply", true},   {"_reply", true},           {"reply", false},
	        {"execute_replyx", false}, {"execute_request", false}, {"", false},
	};
	_cleanup_(proto_msg_freep) struct proto_msg *m = proto_msg_new();

	cr_assert(m);
	cr_expect_not(proto_msg_is_reply(m), "no header");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_decref(m->header);
		m->header = json_pack("{s:s}", "msg_type", cases[i].type);
		cr_assert(m->header);
		cr_expect_eq(proto_msg_is_reply(m), cases[i].reply, "%s", cases[i].type);
	}
}

Test(proto_msg, header_new_has_every_field_in_jupyter_client_order)
{
	static const char *const keys[] = {"msg_id", "session",  "username",
	                                   "date",   "msg_type", "version"};
	json_t *h = proto_header_new("kernel_info_reply", "sess", "user");
	const char *key;
	json_t *value;
	size_t i = 0;

	cr_assert(h);
	json_object_foreach(h, key, value) {
		cr_assert_lt(i, 6);
		cr_expect_str_eq(key, keys[i]);
		cr_expect(json_is_string(value), "%s", key);
		i++;
	}
	cr_expect_eq(i, 6);
	cr_expect_eq(strlen(json_string_value(json_object_get(h, "msg_id"))), PROTO_UUID_LEN);
	cr_expect_eq(strlen(json_string_value(json_object_get(h, "date"))), PROTO_DATE_LEN);
	cr_expect_str_eq(json_string_value(json_object_get(h, "version")), "5.3");
	cr_expect_str_eq(json_string_value(json_object_get(h, "session")), "sess");
	json_decref(h);
}

Test(proto_msg, header_new_treats_null_strings_as_empty)
{
	json_t *h = proto_header_new("status", NULL, NULL);

	cr_assert(h);
	cr_expect_str_eq(json_string_value(json_object_get(h, "session")), "");
	cr_expect_str_eq(json_string_value(json_object_get(h, "username")), "");
	json_decref(h);
}

Test(proto_msg, header_new_refuses_invalid_utf8)
{
	cr_expect_null(proto_header_new("bad\xff", "s", "u"));
}

Test(proto_msg, header_new_survives_every_allocation_failure)
{
	unsigned long nth;

	test_alloc_install();
	for (nth = 1;; nth++) {
		bool failed;
		json_t *h;

		test_alloc_fail_at(nth, false);
		h = proto_header_new("status", "s", "u");
		failed = test_alloc_stop();
		if (!failed) {
			cr_expect(h);
			json_decref(h);
			break;
		}
		cr_expect_null(h, "allocation %lu failed but a header came back", nth);
		cr_expect_eq(test_alloc_live(), 0, "leak after allocation %lu", nth);
	}
	cr_expect_gt(nth, 6);
	cr_expect_eq(test_alloc_live(), 0);
}

Test(proto_msg, free_releases_identities_buffers_and_json)
{
	/* Run under LeakSanitizer (and the counting allocator) to see nothing left behind. */
	struct proto_msg *m;

	test_alloc_install();
	m = proto_msg_new();
	cr_assert(m);
	m->header = json_object();
	m->content = json_pack("{s:[i,i,{s:s}]}", "a", 1, 2, "b", "c");
	m->idents = test_malloc(2 * sizeof(*m->idents));
	cr_assert(m->idents);
	m->n_idents = 2;
	m->idents[0].data = test_malloc(4);
	m->idents[0].len = 4;
	m->idents[1].data = NULL; /* a half-built message frees cleanly */
	m->idents[1].len = 0;
	proto_msg_free(m);
	cr_expect_eq(test_alloc_live(), 0);
}
