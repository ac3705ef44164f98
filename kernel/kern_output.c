/*
 * The output thread: reads the stdout/stderr pipes, keeps one bounded buffer per stream and
 * publishes `stream` messages. The first bytes after a quiet spell go out at once (after a
 * gather of KERN_OUTPUT_GATHER_US, low latency); during a burst, messages are spaced by
 * KERN_OUTPUT_WINDOW_MS so that a loop of many prints turns into a few large messages, and a
 * full buffer goes out at once (throughput). The thread also owns the buffer it encodes into.
 */
#include "kern_output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "proto_utf8.h"

/* The encode buffer is given back at the end of a request when it grew past this. */
#define KERN_OUTPUT_JSON_KEEP (64u << 10)

struct kern_stream {
	const char *name; /* "stdout" or "stderr" */
	int rfd;          /* read end of the pipe */
	unsigned char *buf;
	size_t len;
	uint64_t since; /* arrival order of the oldest byte in buf, for fair ordering */
};

struct kern_output {
	struct kern *k;
	struct kern_stream s[2];
	int event_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	uint64_t sync_req, sync_done; /* under lock */
	bool stop;                    /* under lock */
	/*
	 * True from before the thread reads a pipe until what it read is published: with both
	 * pipes empty and this false, nothing written earlier is left to publish (see sync).
	 */
	atomic_bool holding;
	/* A request ended without a wake-up (fast sync): its next output need not wait. */
	atomic_bool fresh;
	uint64_t arrivals;
	int64_t last_publish_us;
	int64_t pending_since_us; /* when the oldest unpublished byte arrived */
	char *json;               /* the stream content being published */
	size_t json_cap;
};

static int64_t kern_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the stream content encoder ---- */

#define KERN_OUTPUT_ONES  UINT64_C(0x0101010101010101)
#define KERN_OUTPUT_HIGHS UINT64_C(0x8080808080808080)

/* True when one of the 8 bytes in w is a control, '"', '\\' or not ASCII. */
static bool kern_output_word_special(uint64_t w)
{
	uint64_t quote = w ^ (KERN_OUTPUT_ONES * '"'), bslash = w ^ (KERN_OUTPUT_ONES * '\\');
	uint64_t special = (w - KERN_OUTPUT_ONES * 0x20) & ~w;

	special |= (quote - KERN_OUTPUT_ONES) & ~quote;
	special |= (bslash - KERN_OUTPUT_ONES) & ~bslash;
	return ((special | w) & KERN_OUTPUT_HIGHS) != 0;
}

static bool kern_output_byte_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The length of the run of bytes at p that go into a JSON string as they are. */
static size_t kern_output_plain_run(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, sizeof(w));
		if (kern_output_word_special(w))
			break;
	}
	while (i < n && kern_output_byte_plain(p[i]))
		i++;
	return i;
}

/* The escaped length of an ASCII byte that is not plain. */
static size_t kern_output_escaped_len(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	return 6;
}

static const char kern_output_prefix_a[] = "{\"name\":\"",
                  kern_output_prefix_b[] = "\",\"text\":\"";

size_t kern_output_json_size(const char *name, const unsigned char *buf, size_t n)
{
	size_t size =
	        sizeof(kern_output_prefix_a) + strlen(name) + sizeof(kern_output_prefix_b) + 3;

	for (size_t i = 0; i < n;) {
		size_t run = kern_output_plain_run(buf + i, n - i);

		size += run;
		i += run;
		if (i < n) {
			size += buf[i] >= 0x80 ? 3 : kern_output_escaped_len(buf[i]);
			i++;
		}
	}
	return size;
}

size_t kern_output_json(const char *name, const unsigned char *buf, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, nl = strlen(name);

	memcpy(out, kern_output_prefix_a, sizeof(kern_output_prefix_a) - 1);
	o += sizeof(kern_output_prefix_a) - 1;
	memcpy(out + o, name, nl);
	o += nl;
	memcpy(out + o, kern_output_prefix_b, sizeof(kern_output_prefix_b) - 1);
	o += sizeof(kern_output_prefix_b) - 1;
	for (size_t i = 0; i < n;) {
		size_t run = kern_output_plain_run(buf + i, n - i), end;
		unsigned char c;

		memcpy(out + o, buf + i, run);
		o += run;
		i += run;
		if (i == n)
			break;
		c = buf[i];
		if (c >= 0x80) {
			/*
			 * Non-ASCII bytes never need escaping, and an ASCII byte always ends a
			 * character: sanitizing the run alone gives what the whole text would.
			 */
			for (end = i + 1; end < n && buf[end] >= 0x80; end++)
				;
			o += proto_utf8_sanitize(buf + i, end - i, out + o);
			i = end;
			continue;
		}
		out[o++] = '\\';
		switch (c) {
		case '"':
		case '\\':
			out[o++] = (char)c;
			break;
		case '\b':
			out[o++] = 'b';
			break;
		case '\f':
			out[o++] = 'f';
			break;
		case '\n':
			out[o++] = 'n';
			break;
		case '\r':
			out[o++] = 'r';
			break;
		case '\t':
			out[o++] = 't';
			break;
		default:
			memcpy(out + o, "u00", 3);
			out[o + 3] = hex[c >> 4];
			out[o + 4] = hex[c & 0xf];
			o += 5;
			break;
		}
		i++;
	}
	memcpy(out + o, "\"}", 3);
	return o + 2;
}

/* ---- the thread ---- */

/* Makes o->json hold at least size bytes. Returns false when out of memory. */
static bool kern_output_reserve(struct kern_output *o, size_t size)
{
	size_t cap = o->json_cap ? o->json_cap : 4096;
	char *grown;

	if (size <= o->json_cap)
		return true;
	while (cap < size)
		cap *= 2;
	/* The old content is not needed: free first, so that both never count at once. */
	free(o->json);
	o->json_cap = 0;
	grown = malloc(cap);
	o->json = grown;
	if (!grown)
		return false;
	o->json_cap = cap;
	return true;
}

/* Publishes the whole-character prefix of one stream's buffer (all of it when final). */
static void kern_output_publish(struct kern_output *o, struct kern_stream *s, bool final)
{
	size_t n = final ? s->len : proto_utf8_complete_prefix(s->buf, s->len);

	if (n == 0)
		return;
	if (atomic_load(&o->k->output_silent)) {
		memmove(s->buf, s->buf + n, s->len - n);
		s->len -= n;
		return;
	}
	if (kern_output_reserve(o, kern_output_json_size(s->name, s->buf, n))) {
		size_t len = kern_output_json(s->name, s->buf, n, o->json);

		kern_publish(o->k, "stream", NULL, o->json, len, NULL, NULL, 0);
	} else {
		kern_log(o->k, "out of memory: %zu bytes of %s lost", n, s->name);
	}
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	o->last_publish_us = kern_now_us();
}

/* Publishes both streams, the one that has waited longer first. */
static void kern_output_publish_all(struct kern_output *o, bool final)
{
	struct kern_stream *a = &o->s[0], *b = &o->s[1];

	if (b->len && (!a->len || b->since < a->since)) {
		a = &o->s[1];
		b = &o->s[0];
	}
	if (a->len)
		kern_output_publish(o, a, final);
	if (b->len)
		kern_output_publish(o, b, final);
}

/* Reads what the pipe holds, up to the buffer's room. Returns bytes read, 0 at EOF/EAGAIN. */
static size_t kern_output_read(struct kern_output *o, struct kern_stream *s)
{
	size_t total = 0;

	/* Before the read: a sync that finds the pipe empty must then see us holding its bytes. */
	atomic_store(&o->holding, true);
	/* Bounded, so that a writer that never pauses cannot starve timers and sync requests. */
	for (int rounds = 0; rounds < 16; rounds++) {
		if (s->len == KERN_OUTPUT_BUF_CAP)
			kern_output_publish(o, s, false);
		if (s->len == KERN_OUTPUT_BUF_CAP) /* only a partial character left: flush it */
			kern_output_publish(o, s, true);
		ssize_t r = read(s->rfd, s->buf + s->len, KERN_OUTPUT_BUF_CAP - s->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return total;
		if (s->len == 0) {
			s->since = ++o->arrivals;
			if (!o->s[0].len && !o->s[1].len)
				o->pending_since_us = kern_now_us();
		}
		s->len += (size_t)r;
		total += (size_t)r;
	}
	return total;
}

/* Reads everything pending now (bounded, so a writer that never stops cannot hold us). */
static void kern_output_drain(struct kern_output *o)
{
	for (int round = 0; round < 16; round++) {
		size_t got = kern_output_read(o, &o->s[0]) + kern_output_read(o, &o->s[1]);

		if (got == 0)
			break;
	}
}

/* When pending output is due: a short gather after it arrived, and a window after the last. */
static int64_t kern_output_due(const struct kern_output *o)
{
	int64_t gathered = o->pending_since_us + KERN_OUTPUT_GATHER_US;
	int64_t spaced = o->last_publish_us + KERN_OUTPUT_WINDOW_MS * 1000;

	return gathered > spaced ? gathered : spaced;
}

/* Answers the sync requests made so far (and a stop): everything read is published. */
static bool kern_output_answer(struct kern_output *o)
{
	uint64_t v, req;
	bool stop;

	if (read(o->event_fd, &v, sizeof(v)) < 0) {
		/* a spurious wake-up: the counter was already read */
	}
	pthread_mutex_lock(&o->lock);
	req = o->sync_req;
	stop = o->stop;
	pthread_mutex_unlock(&o->lock);
	kern_output_drain(o);
	kern_output_publish_all(o, true);
	/* A sync ends a request: the next one's first output goes out at once. */
	o->last_publish_us = 0;
	atomic_store(&o->fresh, false);
	if (o->json_cap > KERN_OUTPUT_JSON_KEEP) {
		free(o->json);
		o->json = NULL;
		o->json_cap = 0;
	}
	atomic_store(&o->holding, false);
	pthread_mutex_lock(&o->lock);
	o->sync_done = req;
	pthread_cond_broadcast(&o->done_cond);
	pthread_mutex_unlock(&o->lock);
	return stop;
}

static void *kern_output_main(void *arg)
{
	struct kern_output *o = arg;

	for (;;) {
		bool pending = o->s[0].len || o->s[1].len;
		int timeout = -1;
		struct pollfd p[3] = {
		        {.fd = o->s[0].rfd, .events = POLLIN},
		        {.fd = o->s[1].rfd, .events = POLLIN},
		        {.fd = o->event_fd, .events = POLLIN},
		};

		/* Published everything read: after a store of false, sync may skip us. */
		if (!pending)
			atomic_store(&o->holding, false);
		if (atomic_exchange(&o->fresh, false))
			o->last_publish_us = 0;
		if (pending) {
			int64_t wait = kern_output_due(o) - kern_now_us();
			timeout = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
		}
		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			kern_output_read(o, &o->s[0]);
		if (p[1].revents)
			kern_output_read(o, &o->s[1]);
		if (p[2].revents) {
			if (kern_output_answer(o))
				break;
			continue;
		}
		if (atomic_exchange(&o->fresh, false))
			o->last_publish_us = 0;
		if ((o->s[0].len || o->s[1].len) && kern_now_us() >= kern_output_due(o))
			kern_output_publish_all(o, false);
	}
	return NULL;
}

static int kern_output_pipe(struct kern_output *o, int idx, int target_fd, const char *name)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* A larger pipe lets bursts through without blocking the writer on every 64 KiB. */
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0 || dup2(p[1], target_fd) < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	close(p[1]);
	o->s[idx].rfd = p[0];
	o->s[idx].name = name;
	o->s[idx].buf = malloc(KERN_OUTPUT_BUF_CAP);
	return o->s[idx].buf ? 0 : -ENOMEM;
}

int kern_output_start(struct kern *k)
{
	struct kern_output *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->k = k;
	o->s[0].rfd = o->s[1].rfd = -1;
	atomic_init(&o->holding, false);
	atomic_init(&o->fresh, false);
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->done_cond, NULL);
	o->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->event_fd < 0)
		return -errno;
	r = kern_output_pipe(o, 0, STDOUT_FILENO, "stdout");
	if (r == 0)
		r = kern_output_pipe(o, 1, STDERR_FILENO, "stderr");
	if (r == 0)
		r = -pthread_create(&o->thread, NULL, kern_output_main, o);
	if (r < 0)
		return r; /* the process exits on this path */
	k->output = o;
	return 0;
}

/*
 * True when everything written to fd 1 and 2 before the call is published already. The order
 * matters: bytes that left a pipe before the poll were taken by a read that began with holding
 * set, and holding is cleared only once those bytes are published.
 */
static bool kern_output_is_published(struct kern_output *o)
{
	struct pollfd p[2] = {
	        {.fd = o->s[0].rfd, .events = POLLIN},
	        {.fd = o->s[1].rfd, .events = POLLIN},
	};

	if (poll(p, 2, 0) != 0)
		return false; /* bytes waiting, or a failure: take the slow way */
	return !atomic_load(&o->holding);
}

void kern_output_sync(struct kern *k)
{
	struct kern_output *o = k->output;
	uint64_t one = 1, mine;

	if (!o)
		return;
	if (kern_output_is_published(o)) {
		atomic_store(&o->fresh, true);
		return;
	}
	pthread_mutex_lock(&o->lock);
	mine = ++o->sync_req;
	if (write(o->event_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated, so a wake-up is already pending */
	}
	while (o->sync_done < mine)
		pthread_cond_wait(&o->done_cond, &o->lock);
	pthread_mutex_unlock(&o->lock);
}

void kern_output_stop(struct kern *k)
{
	struct kern_output *o = k->output;
	uint64_t one = 1;

	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	o->sync_req++;
	pthread_mutex_unlock(&o->lock);
	if (write(o->event_fd, &one, sizeof(one)) < 0) {
		/* see kern_output_sync */
	}
	pthread_join(o->thread, NULL);
	k->output = NULL;
	for (int i = 0; i < 2; i++) {
		close(o->s[i].rfd);
		free(o->s[i].buf);
	}
	free(o->json);
	close(o->event_fd);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->done_cond);
	free(o);
}
