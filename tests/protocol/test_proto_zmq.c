/*
 * proto_zmq: multipart send and receive over a real inproc ROUTER/DEALER pair, including
 * over-limit messages (consumed whole, the next one still arrives), EAGAIN, EINTR and ETERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <criterion/criterion.h>
#include <zmq.h>

#include "proto_wire.h"
#include "proto_zmq.h"
#include "testdata.h"

static void *ctx, *router, *dealer;

/* A connected ROUTER (the kernel's side) and DEALER with identity "dealer-1". */
static void pair_up(void)
{
	int linger = 0;

	ctx = zmq_ctx_new();
	cr_assert(ctx);
	router = zmq_socket(ctx, ZMQ_ROUTER);
	dealer = zmq_socket(ctx, ZMQ_DEALER);
	cr_assert(router && dealer);
	zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
	cr_assert_eq(zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "dealer-1", 8), 0);
	cr_assert_eq(zmq_bind(router, "inproc://proto-zmq-test"), 0);
	cr_assert_eq(zmq_connect(dealer, "inproc://proto-zmq-test"), 0);
}

static void tear_down(void)
{
	if (router)
		zmq_close(router);
	if (dealer)
		zmq_close(dealer);
	if (ctx)
		zmq_ctx_term(ctx);
	router = dealer = ctx = NULL;
}

TestSuite(proto_zmq, .init = pair_up, .fini = tear_down, .timeout = 30);

static struct proto_buf text(const char *s)
{
	return (struct proto_buf){(unsigned char *)(uintptr_t)s, strlen(s)};
}

/* Sends [delim, "", header, {}, {}, {"n": n}] unsigned from the dealer. */
static void send_numbered(int n)
{
	char content[32];
	struct proto_buf f[6] = {text(PROTO_DELIM), text(""),
	                         text("{\"msg_id\":\"x\",\"msg_type\":\"t\"}"), text("{}"),
	                         text("{}")};

	snprintf(content, sizeof(content), "{\"n\":%d}", n);
	f[5] = text(content);
	cr_assert_eq(proto_zmq_send_frames(dealer, f, 6), 0);
}

/* Receives on the router and expects the numbered message from send_numbered(). */
static void expect_numbered(int n)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct proto_frames f = {0};
	struct proto_msg *m = NULL;

	cr_assert_eq(proto_zmq_recv(router, 0, &lim, &f), 0);
	cr_assert_eq(f.n, 7, "identity plus six frames, got %zu", f.n);
	cr_assert_eq(proto_wire_decode(f.v, f.n, NULL, 0, &lim, &m, NULL), 0);
	cr_expect_eq(json_integer_value(json_object_get(m->content, "n")), n);
	proto_msg_free(m);
	proto_frames_clear(&f);
}

Test(proto_zmq, sends_and_receives_a_signed_message_both_ways)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct proto_wire_out out = {
	        .header = text("{\"msg_id\":\"1\",\"msg_type\":\"kernel_info_request\"}"),
	        .parent = text("{}"),
	        .metadata = text("{}"),
	        .content = text("{}"),
	};
	struct proto_frames f = {0};
	struct proto_msg *m = NULL, *reply = NULL;
	struct proto_wire_out back;

	cr_assert_eq(proto_zmq_send(dealer, &out, "key", 3), 0);
	cr_assert_eq(proto_zmq_recv(router, 0, &lim, &f), 0);
	cr_expect_eq(f.n, 7);
	cr_expect_eq(f.total, 8 + 9 + 64 + out.header.len + 6);
	cr_assert_eq(proto_wire_decode(f.v, f.n, "key", 3, &lim, &m, NULL), 0);
	cr_assert_eq(m->n_idents, 1);
	cr_expect_str_eq((const char *)m->idents[0].data, "dealer-1");
	cr_expect_str_eq(proto_msg_type(m), "kernel_info_request");
	proto_frames_clear(&f);

	/* Reply to the identity that asked: the dealer sees no identity frame. */
	json_object_set_new(m->header, "msg_type", json_string("kernel_info_reply"));
	cr_assert_eq(proto_wire_out_from_msg(m, &back), 0);
	cr_assert_eq(proto_zmq_send(router, &back, "key", 3), 0);
	proto_wire_out_release(&back);
	cr_assert_eq(proto_zmq_recv(dealer, 0, &lim, &f), 0);
	cr_expect_eq(f.n, 6);
	cr_assert_eq(proto_wire_decode(f.v, f.n, "key", 3, &lim, &reply, NULL), 0);
	cr_expect(proto_msg_is_reply(reply));
	proto_msg_free(reply);
	proto_msg_free(m);
	proto_frames_clear(&f);
}

Test(proto_zmq, recv_without_waiting_reports_eagain_when_idle)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct proto_frames f = {0};

	cr_expect_eq(proto_zmq_recv(router, ZMQ_DONTWAIT, &lim, &f), -EAGAIN);
	cr_expect_eq(f.n, 0);
	cr_expect_null(f.v);
}

/* Sends n frames of size bytes each, then a good message, and expects -EMSGSIZE, then it. */
static void expect_over_limit_skipped(const struct proto_limits *lim, size_t n, size_t size)
{
	struct proto_buf *frames = calloc(n, sizeof(*frames));
	unsigned char *payload = calloc(1, size + 1);
	struct proto_frames f = {0};

	cr_assert(frames && payload);
	for (size_t i = 0; i < n; i++)
		frames[i] = (struct proto_buf){payload, size};
	cr_assert_eq(proto_zmq_send_frames(dealer, frames, n), 0);
	send_numbered(42);

	cr_expect_eq(proto_zmq_recv(router, 0, lim, &f), -EMSGSIZE);
	cr_expect_eq(f.n, 0, "nothing kept");
	cr_expect_null(f.v);
	/* Nothing of the big message is left to be read as the next message. */
	expect_numbered(42);
	cr_expect_eq(proto_zmq_recv(router, ZMQ_DONTWAIT, lim, &f), -EAGAIN);
	free(frames);
	free(payload);
}

Test(proto_zmq, too_many_frames_are_consumed_whole_and_the_next_message_arrives)
{
	struct proto_limits lim = PROTO_LIMITS_DEFAULT;

	lim.max_frames = 10;
	expect_over_limit_skipped(&lim, 50, 3);
}

Test(proto_zmq, oversized_frame_is_consumed_whole_and_the_next_message_arrives)
{
	struct proto_limits lim = PROTO_LIMITS_DEFAULT;

	lim.max_ident_len = lim.max_json_frame = lim.max_buffer = 1000;
	expect_over_limit_skipped(&lim, 5, 1001);
}

Test(proto_zmq, oversized_total_is_consumed_whole_and_the_next_message_arrives)
{
	struct proto_limits lim = PROTO_LIMITS_DEFAULT;

	lim.max_total = 4000;
	expect_over_limit_skipped(&lim, 8, 600);
}

Test(proto_zmq, a_large_buffer_arrives_intact)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	size_t big = 3u << 20;
	unsigned char *payload = malloc(big);
	struct proto_buf frames[7] = {text(PROTO_DELIM), text(""),   text("{}"),
	                              text("{}"),        text("{}"), text("{}")};
	struct proto_frames f = {0};

	cr_assert(payload);
	for (size_t i = 0; i < big; i++)
		payload[i] = (unsigned char)(i * 31);
	frames[6] = (struct proto_buf){payload, big};
	cr_assert_eq(proto_zmq_send_frames(dealer, frames, 7), 0);
	cr_assert_eq(proto_zmq_recv(router, 0, &lim, &f), 0);
	cr_assert_eq(f.n, 8);
	cr_expect_eq(f.v[7].len, big);
	cr_expect(!memcmp(f.v[7].data, payload, big));
	proto_frames_clear(&f);
	free(payload);
}

Test(proto_zmq, out_of_memory_consumes_the_message_and_keeps_nothing)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	unsigned long nth;

	test_alloc_install();
	for (nth = 1;; nth++) {
		struct proto_frames f = {0};
		bool failed;
		int r;

		send_numbered((int)nth);
		test_alloc_fail_at(nth, false);
		r = proto_zmq_recv(router, 0, &lim, &f);
		failed = test_alloc_stop();
		if (!failed) {
			cr_expect_eq(r, 0);
			proto_frames_clear(&f);
			break;
		}
		cr_expect_eq(r, -ENOMEM, "allocation %lu, got %d", nth, r);
		cr_expect_eq(f.n, 0);
		cr_expect_eq(test_alloc_live(), 0, "leak after allocation %lu", nth);
	}
	cr_expect_gt(nth, 7, "one array and seven frame copies at least");
	send_numbered(7);
	expect_numbered(7);
}

static void on_alarm(int sig)
{
	(void)sig;
}

Test(proto_zmq, recv_reports_eintr_when_a_signal_interrupts_the_wait)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	struct itimerval it = {.it_value = {.tv_usec = 100000}};
	struct proto_frames f = {0};

	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	cr_expect_eq(proto_zmq_recv(router, 0, &lim, &f), -EINTR);
	cr_expect_eq(f.n, 0);
}

Test(proto_zmq, recv_reports_eterm_once_the_context_shuts_down)
{
	static const struct proto_limits lim = PROTO_LIMITS_DEFAULT;
	struct proto_frames f = {0};

	cr_assert_eq(zmq_ctx_shutdown(ctx), 0);
	cr_expect_eq(proto_zmq_recv(router, 0, &lim, &f), -ETERM);
	cr_expect_eq(proto_zmq_send_frames(dealer, (struct proto_buf[]){text("x")}, 1), -ETERM);
}

Test(proto_zmq, send_frames_refuses_an_empty_message)
{
	cr_expect_eq(proto_zmq_send_frames(dealer, NULL, 0), -EINVAL);
}

Test(proto_zmq, frames_clear_accepts_empty_and_null)
{
	struct proto_frames f = {0};

	proto_frames_clear(&f);
	proto_frames_clear(NULL);
}
