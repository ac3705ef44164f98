/*
 * gw_buffer: a slow client's out-queue drops output (counted) before it drops anything else,
 * and closes only past twice its cap; the replay buffer keeps the newest messages within its
 * cap, dropping the oldest output first, and hands them back in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "gw_buffer.h"
#include "testdata.h"

TestSuite(gw_buffer, .fini = test_check_leaks);

Test(gw_buffer, queue_keeps_order_and_headroom)
{
	struct gw_queue q = {0};
	struct gw_frame *f;

	cr_assert_eq(gw_queue_push(&q, "one", 3, false, false, 16, 100), GW_QUEUE_OK);
	cr_assert_eq(gw_queue_push(&q, "two!", 4, true, true, 16, 100), GW_QUEUE_OK);
	cr_expect_eq(q.bytes, 7);
	cr_expect_eq(q.count, 2);
	f = gw_queue_pop(&q);
	cr_expect_eq(f->len, 3);
	cr_expect_eq(memcmp(f->data + 16, "one", 3), 0);
	cr_expect_not(f->binary);
	free(f);
	f = gw_queue_pop(&q);
	cr_expect(f->binary);
	cr_expect_eq(memcmp(f->data + 16, "two!", 4), 0);
	free(f);
	cr_expect_null(gw_queue_pop(&q));
	cr_expect_eq(q.bytes, 0);
}

Test(gw_buffer, queue_drops_only_output_over_its_cap)
{
	struct gw_queue q = {0};
	char block[40] = {0};
	size_t bytes;

	cr_assert_eq(gw_queue_push(&q, block, 40, false, true, 0, 100), GW_QUEUE_OK);
	cr_assert_eq(gw_queue_push(&q, block, 40, false, true, 0, 100), GW_QUEUE_OK);
	/* Output over the cap is dropped and counted... */
	cr_expect_eq(gw_queue_push(&q, block, 40, false, true, 0, 100), GW_QUEUE_DROPPED);
	cr_expect_eq(gw_queue_push(&q, block, 30, false, true, 0, 100), GW_QUEUE_DROPPED);
	/* ...a reply or a status still gets through, up to twice the cap... */
	cr_expect_eq(gw_queue_push(&q, block, 40, false, false, 0, 100), GW_QUEUE_OK);
	cr_expect_eq(gw_queue_push(&q, block, 40, false, false, 0, 100), GW_QUEUE_OK);
	/* ...and past that (160 + 41 > 200) the client is too slow. */
	cr_expect_eq(gw_queue_push(&q, block, 41, false, false, 0, 100), GW_QUEUE_OVERFLOW);
	cr_expect_eq(gw_queue_take_dropped(&q, &bytes), 2);
	cr_expect_eq(bytes, 70);
	cr_expect_eq(gw_queue_take_dropped(&q, &bytes), 0);
	cr_expect_eq(bytes, 0);
	cr_expect_eq(q.count, 4);
	gw_queue_clear(&q);
	cr_expect_eq(q.bytes, 0);
	cr_expect_null(q.head);
}

/* A message whose four parts hold text of the given sizes; the strings are owned by the test. */
static struct proto_ws_msg make_msg(const char *id, size_t content_len)
{
	struct proto_ws_msg m = {0};
	char *content = malloc(content_len + 1);

	memset(content, 'x', content_len);
	content[content_len] = '\0';
	m.channel = PROTO_WS_IOPUB;
	m.header.data = (unsigned char *)strdup(id);
	m.header.len = strlen(id);
	m.parent.data = (unsigned char *)strdup("{}");
	m.parent.len = 2;
	m.metadata.data = (unsigned char *)strdup("{}");
	m.metadata.len = 2;
	m.content.data = (unsigned char *)content;
	m.content.len = content_len;
	snprintf(m.msg_id, sizeof(m.msg_id), "%s", id);
	return m;
}

static void hold(struct gw_replay *r, const char *id, size_t len, bool droppable, size_t cap,
                 int expect)
{
	struct proto_ws_msg m = make_msg(id, len);

	cr_expect_eq(gw_replay_hold(r, &m, droppable, cap), expect, "holding %s", id);
	proto_ws_msg_clear(&m);
}

/* Pops everything and checks the ids in order. */
static void expect_ids(struct gw_replay *r, const char *const *ids, size_t n)
{
	struct gw_held *h;
	size_t i = 0;

	while ((h = gw_replay_pop(r))) {
		cr_assert_lt(i, n, "more held messages than expected");
		cr_expect_str_eq(h->msg.msg_id, ids[i]);
		/* The copy is deep: the parts survived the originals being freed. */
		cr_expect_eq(memcmp(h->msg.header.data, ids[i], strlen(ids[i])), 0);
		gw_held_free(h);
		i++;
	}
	cr_expect_eq(i, n);
	cr_expect_eq(r->bytes, 0);
	gw_replay_clear(r);
}

Test(gw_buffer, replay_returns_messages_in_order)
{
	struct gw_replay r = {0};
	static const char *const ids[] = {"a1", "a2", "a3"};

	for (size_t i = 0; i < 3; i++)
		hold(&r, ids[i], 10, true, 1000, 0);
	cr_expect_eq(r.count, 3);
	expect_ids(&r, ids, 3);
}

Test(gw_buffer, replay_drops_oldest_output_first)
{
	struct gw_replay r = {0};
	size_t bytes, dropped;
	/* each message is id (2) + {} + {} + content bytes */
	static const char *const left[] = {"r1", "o3", "r4", "o5"};

	hold(&r, "r1", 16, false, 100, 0); /* 22 bytes, a reply: kept */
	hold(&r, "o2", 16, true, 100, 0);  /* output */
	hold(&r, "o3", 16, true, 100, 0);
	hold(&r, "r4", 16, false, 100, 0); /* 88 bytes so far */
	hold(&r, "o5", 16, true, 100, 0);  /* needs 22: o2, the oldest output, goes */
	dropped = gw_replay_take_dropped(&r, &bytes);
	cr_expect_eq(dropped, 1);
	cr_expect_eq(bytes, 22);
	/* The notice names the request of the newest dropped message. */
	cr_expect_eq(r.dropped_parent.len, 2);
	cr_expect_eq(memcmp(r.dropped_parent.data, "{}", 2), 0);
	expect_ids(&r, left, 4);
}

Test(gw_buffer, replay_drops_anything_when_only_replies_are_left)
{
	struct gw_replay r = {0};
	size_t bytes;
	static const char *const left[] = {"r2", "r3"};

	hold(&r, "r1", 34, false, 100, 0); /* 40 bytes */
	hold(&r, "r2", 34, false, 100, 0);
	hold(&r, "r3", 34, false, 100, 0); /* no output to drop: r1 goes */
	cr_expect_eq(gw_replay_take_dropped(&r, &bytes), 1);
	cr_expect_eq(bytes, 40);
	expect_ids(&r, left, 2);
}

Test(gw_buffer, replay_refuses_a_message_larger_than_its_cap)
{
	struct gw_replay r = {0};
	size_t bytes;
	static const char *const left[] = {"k1"};

	hold(&r, "k1", 10, true, 100, 0);
	hold(&r, "big", 200, true, 100, -ENOBUFS);
	cr_expect_eq(gw_replay_take_dropped(&r, &bytes), 1);
	cr_expect_eq(bytes, 3 + 2 + 2 + 200);
	expect_ids(&r, left, 1);
}

Test(gw_buffer, replay_copies_buffers)
{
	struct gw_replay r = {0};
	struct proto_ws_msg m = make_msg("b1", 4);
	struct gw_held *h;

	m.buffers = calloc(2, sizeof(*m.buffers));
	m.n_buffers = 2;
	m.buffers[0].data = (unsigned char *)strdup("abc");
	m.buffers[0].len = 3;
	m.buffers[1].data = (unsigned char *)strdup("");
	m.buffers[1].len = 0;
	cr_assert_eq(gw_replay_hold(&r, &m, false, 1000), 0);
	proto_ws_msg_clear(&m);
	h = gw_replay_pop(&r);
	cr_assert_not_null(h);
	cr_expect_eq(h->msg.n_buffers, 2);
	cr_expect_eq(h->size, 2 + 2 + 2 + 4 + 3);
	cr_expect_eq(memcmp(h->msg.buffers[0].data, "abc", 3), 0);
	cr_expect_eq(h->msg.buffers[1].len, 0);
	gw_held_free(h);
	gw_replay_clear(&r);
}

Test(gw_buffer, replay_keeps_the_newest_part_of_a_large_stream)
{
	struct gw_replay r = {0};
	struct proto_ws_msg m = {0};
	struct gw_held *h;
	size_t bytes;
	char text[400];
	json_t *content, *back;

	for (size_t i = 0; i < sizeof(text) - 1; i++)
		text[i] = (char)('a' + i % 26);
	text[sizeof(text) - 1] = '\0';
	content = json_pack("{s:s, s:s}", "name", "stdout", "text", text);
	m.content.data = (unsigned char *)json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER);
	m.content.len = strlen((char *)m.content.data);
	json_decref(content);
	m.header.data = (unsigned char *)strdup("{\"msg_type\":\"stream\"}");
	m.header.len = strlen((char *)m.header.data);
	m.parent.data = (unsigned char *)strdup("{\"msg_id\":\"p\"}");
	m.parent.len = strlen((char *)m.parent.data);
	m.metadata.data = (unsigned char *)strdup("{}");
	m.metadata.len = 2;
	snprintf(m.msg_type, sizeof(m.msg_type), "stream");
	cr_assert_eq(gw_replay_hold(&r, &m, true, 200), 0);
	h = gw_replay_pop(&r);
	cr_assert_not_null(h);
	cr_expect_leq(h->size, 200);
	back = json_loadb((const char *)h->msg.content.data, h->msg.content.len, 0, NULL);
	cr_assert_not_null(back);
	const char *kept = json_string_value(json_object_get(back, "text"));
	cr_assert_not_null(kept);
	/* What is kept is the end of the text, and the rest is counted as dropped. */
	cr_expect_str_eq(kept, text + strlen(text) - strlen(kept));
	cr_expect_gt(strlen(kept), 50);
	cr_expect_eq(gw_replay_take_dropped(&r, &bytes), 1);
	cr_expect_eq(bytes, strlen(text) - strlen(kept));
	cr_expect_eq(memcmp(r.dropped_parent.data, "{\"msg_id\":\"p\"}", r.dropped_parent.len), 0);
	json_decref(back);
	gw_held_free(h);
	proto_ws_msg_clear(&m);
	gw_replay_clear(&r);
}

/* A stream that fills the buffer is trimmed, not dropped whole, when a reply needs room. */
Test(gw_buffer, replay_trims_held_output_to_make_room)
{
	struct gw_replay r = {0};
	struct proto_ws_msg m = {0};
	struct gw_held *h;
	size_t bytes;
	char text[2000];
	json_t *content, *back;

	for (size_t i = 0; i < sizeof(text) - 1; i++)
		text[i] = (char)('a' + i % 26);
	text[sizeof(text) - 5] = 'E';
	text[sizeof(text) - 4] = 'N';
	text[sizeof(text) - 3] = 'D';
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	content = json_pack("{s:s, s:s}", "name", "stdout", "text", text);
	m.content.data = (unsigned char *)json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER);
	m.content.len = strlen((char *)m.content.data);
	json_decref(content);
	m.header.data = (unsigned char *)strdup("s1");
	m.header.len = 2;
	m.parent.data = (unsigned char *)strdup("{}");
	m.parent.len = 2;
	m.metadata.data = (unsigned char *)strdup("{}");
	m.metadata.len = 2;
	snprintf(m.msg_type, sizeof(m.msg_type), "stream");
	snprintf(m.msg_id, sizeof(m.msg_id), "s1");
	/* The whole output is held: it fits, with 100 bytes to spare. */
	cr_assert_eq(gw_replay_hold(&r, &m, true, m.content.len + 6 + 100), 0);
	/* A reply of 400 bytes arrives: the output keeps its end and the reply is kept too. */
	hold(&r, "r2", 394, false, m.content.len + 6 + 100, 0);
	cr_expect_eq(r.count, 2);
	cr_expect_leq(r.bytes, m.content.len + 6 + 100);
	h = gw_replay_pop(&r);
	cr_assert_not_null(h);
	cr_expect_str_eq(h->msg.msg_id, "s1");
	back = json_loadb((const char *)h->msg.content.data, h->msg.content.len, 0, NULL);
	cr_assert_not_null(back);
	const char *kept = json_string_value(json_object_get(back, "text"));
	cr_assert_not_null(kept);
	cr_expect_gt(strlen(kept), 1000);
	cr_expect_lt(strlen(kept), strlen(text));
	cr_expect_str_eq(kept, text + strlen(text) - strlen(kept));
	cr_expect_eq(gw_replay_take_dropped(&r, &bytes), 1);
	cr_expect_eq(bytes, strlen(text) - strlen(kept));
	json_decref(back);
	gw_held_free(h);
	h = gw_replay_pop(&r);
	cr_assert_not_null(h);
	cr_expect_str_eq(h->msg.msg_id, "r2");
	gw_held_free(h);
	proto_ws_msg_clear(&m);
	gw_replay_clear(&r);
}

Test(gw_buffer, routes_find_the_requester_newest_first)
{
	static struct gw_routes r; /* large: not on the stack */
	int a, b;

	memset(&r, 0, sizeof(r));
	cr_expect_null(gw_routes_find(&r, "m1"));
	gw_routes_add(&r, "m1", &a);
	gw_routes_add(&r, "m2", &b);
	cr_expect_eq(gw_routes_find(&r, "m1"), &a);
	cr_expect_eq(gw_routes_find(&r, "m2"), &b);
	cr_expect_null(gw_routes_find(&r, "m3"));
	cr_expect_null(gw_routes_find(&r, ""));
	/* The same msg_id from another connection later: the newest wins. */
	gw_routes_add(&r, "m1", &b);
	cr_expect_eq(gw_routes_find(&r, "m1"), &b);
	/* A connection that closes is forgotten everywhere. */
	gw_routes_forget(&r, &b);
	cr_expect_eq(gw_routes_find(&r, "m1"), &a);
	cr_expect_null(gw_routes_find(&r, "m2"));
	gw_routes_clear(&r);
}

Test(gw_buffer, routes_of_a_leaving_connection_wait_for_its_session)
{
	struct gw_routes r = {0};
	int a, b;

	cr_expect_eq(gw_routes_add(&r, "m1", &a), 0);
	cr_expect_eq(gw_routes_add(&r, "m2", &b), 0);
	cr_expect_eq(gw_routes_add(&r, "m3", &a), 0);
	gw_routes_orphan(&r, &a, "page-session");
	/* a's requests have no connection now, but remember whose they were. */
	cr_expect_null(gw_routes_find(&r, "m1"));
	cr_expect_str_eq(gw_routes_orphan_session(&r, "m1"), "page-session");
	cr_expect_str_eq(gw_routes_orphan_session(&r, "m3"), "page-session");
	/* b's are untouched. */
	cr_expect_eq(gw_routes_find(&r, "m2"), &b);
	cr_expect_null(gw_routes_orphan_session(&r, "m2"));
	cr_expect_null(gw_routes_orphan_session(&r, "unknown"));
	/* The answer comes: the route goes, session and all. */
	gw_routes_remove(&r, "m1");
	cr_expect_null(gw_routes_orphan_session(&r, "m1"));
	/* A connection without a session leaves nothing behind. */
	gw_routes_orphan(&r, &b, "");
	cr_expect_null(gw_routes_find(&r, "m2"));
	cr_expect_null(gw_routes_orphan_session(&r, "m2"));
	cr_expect_eq(r.n, 1);
	gw_routes_clear(&r);
	cr_expect_eq(r.n, 0);
}

Test(gw_buffer, routes_keep_only_requests_not_answered)
{
	struct gw_routes r = {0};
	int a, b;

	cr_expect_eq(gw_routes_add(&r, "m1", &a), 0);
	cr_expect_eq(gw_routes_add(&r, "m2", &b), 0);
	cr_expect_eq(gw_routes_add(&r, "m1", &b), 0);
	/* The newest m1 was answered: the older one is still waiting. */
	gw_routes_remove(&r, "m1");
	cr_expect_eq(gw_routes_find(&r, "m1"), &a);
	gw_routes_remove(&r, "m1");
	cr_expect_null(gw_routes_find(&r, "m1"));
	cr_expect_eq(gw_routes_find(&r, "m2"), &b);
	gw_routes_remove(&r, "unknown");
	gw_routes_remove(&r, "m2");
	cr_expect_eq(r.n, 0);
	/* A request with no one to answer to is not remembered. */
	cr_expect_eq(gw_routes_add(&r, "m3", NULL), 0);
	cr_expect_eq(r.n, 0);
	/* Many requests answered one by one leave no memory behind. */
	for (int i = 0; i < 100; i++) {
		char id[32];

		snprintf(id, sizeof(id), "x%d", i);
		gw_routes_add(&r, id, &a);
	}
	for (int i = 0; i < 100; i++) {
		char id[32];

		snprintf(id, sizeof(id), "x%d", i);
		gw_routes_remove(&r, id);
	}
	cr_expect_eq(r.n, 0);
	cr_expect_null(r.v);
	gw_routes_clear(&r);
}

Test(gw_buffer, routes_forget_the_oldest_past_the_ring)
{
	static struct gw_routes r;
	char id[32];
	int conn;

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < GW_ROUTES + 10; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		gw_routes_add(&r, id, &conn);
	}
	cr_expect_null(gw_routes_find(&r, "m0"));
	cr_expect_null(gw_routes_find(&r, "m9"));
	cr_expect_eq(gw_routes_find(&r, "m10"), &conn);
	snprintf(id, sizeof(id), "m%d", GW_ROUTES + 9);
	cr_expect_eq(gw_routes_find(&r, id), &conn);
	gw_routes_clear(&r);
}

Test(gw_buffer, routes_truncate_overlong_ids)
{
	static struct gw_routes r;
	char id[300];
	int conn;

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	gw_routes_add(&r, id, &conn);
	/* Not stored: its replies go nowhere, never to a wrong connection. */
	cr_expect_null(gw_routes_find(&r, id));
	id[GW_ROUTE_ID_MAX - 1] = '\0';
	cr_expect_null(gw_routes_find(&r, id));
	gw_routes_clear(&r);
}

/* A stream message of numbered lines first..last-1 (owned parts). */
static struct proto_ws_msg stream_lines(int first, int last)
{
	struct proto_ws_msg m = {0};
	size_t len = (size_t)(last - first) * 101 + 1;
	char *text = malloc(len), *p = text;
	json_t *content;

	for (int i = first; i < last; i++)
		p += sprintf(p, "%05d %0*d\n", i, 94, 0);
	*p = '\0';
	content = json_pack("{s:s, s:s}", "name", "stdout", "text", text);
	free(text);
	m.content.data = (unsigned char *)json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER);
	m.content.len = strlen((char *)m.content.data);
	json_decref(content);
	m.header.data = (unsigned char *)strdup("{\"msg_type\":\"stream\"}");
	m.header.len = strlen((char *)m.header.data);
	m.parent.data = (unsigned char *)strdup("{}");
	m.parent.len = 2;
	m.metadata.data = (unsigned char *)strdup("{}");
	m.metadata.len = 2;
	snprintf(m.msg_type, sizeof(m.msg_type), "stream");
	return m;
}

/* Whatever the sizes, what is held of a stream is its newest lines, without a gap. */
Test(gw_buffer, replay_keeps_a_contiguous_end_of_the_output)
{
	unsigned seed = 12345;

	for (int round = 0; round < 200; round++) {
		struct gw_replay r = {0};
		struct gw_held *h;
		int next = 0, expect = -1;
		size_t cap = 65536;

		hold(&r, "busy", 40, false, cap, 0);
		while (next < 3000) {
			int n = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 1200;

			/* Some rounds: a first part that fills most of the buffer, then the rest at
			 * once (larger than the buffer). */
			if (round % 4 == 0)
				n = next == 0 ? 533 : 3000 - next;
			struct proto_ws_msg m;

			if (next + n > 3000)
				n = 3000 - next;
			m = stream_lines(next, next + n);
			gw_replay_hold(&r, &m, true, cap);
			proto_ws_msg_clear(&m);
			next += n;
		}
		hold(&r, "idle", 40, false, cap, 0);
		while ((h = gw_replay_pop(&r))) {
			json_t *c = json_loadb((const char *)h->msg.content.data,
			                       h->msg.content.len, 0, NULL);
			const char *t = json_string_value(json_object_get(c, "text"));

			for (const char *line = t; line && *line;) {
				const char *nl = strchr(line, '\n');
				int num;

				/* A cut first line is not a whole line: skip it. */
				if (nl && nl - line == 100 && sscanf(line, "%5d", &num) == 1) {
					if (expect >= 0)
						cr_assert_eq(num, expect,
						             "round %d: line %d after %d", round,
						             num, expect - 1);
					expect = num + 1;
				}
				line = nl ? nl + 1 : line + strlen(line);
			}
			json_decref(c);
			gw_held_free(h);
		}
		cr_assert_eq(expect, 3000, "round %d: the newest line is missing", round);
		gw_replay_clear(&r);
	}
}
