/*
 * The output thread: reads the stdout/stderr pipes, keeps one bounded buffer per stream and
 * publishes `stream` messages. The first bytes after a quiet spell go out at once (low latency);
 * during a burst, messages are spaced by KERN_OUTPUT_WINDOW_MS so that a loop of many prints
 * turns into a few large messages.
 */
#include "kern_output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "proto_utf8.h"

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
	uint64_t arrivals;
	int64_t last_publish_us;
	int64_t pending_since_us; /* when the oldest unpublished byte arrived */
};

static int64_t kern_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Publishes the whole-character prefix of one stream's buffer (all of it when final). */
static void kern_output_publish(struct kern_output *o, struct kern_stream *s, bool final)
{
	size_t n = final ? s->len : proto_utf8_complete_prefix(s->buf, s->len);
	size_t textlen = 0;
	char *text;
	json_t *content;
	char *dump;

	if (n == 0)
		return;
	if (atomic_load(&o->k->output_silent)) {
		memmove(s->buf, s->buf + n, s->len - n);
		s->len -= n;
		return;
	}
	text = malloc(3 * n + 1);
	if (text)
		textlen = proto_utf8_sanitize(s->buf, n, text);
	content = text ? json_pack("{s:s, s:s%}", "name", s->name, "text", text, textlen) : NULL;
	dump = content ? json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (dump)
		kern_publish(o->k, "stream", NULL, dump, strlen(dump), NULL, NULL, 0);
	else
		kern_log(o->k, "out of memory: %zu bytes of %s lost", n, s->name);
	free(dump);
	json_decref(content);
	free(text);
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
	int64_t gathered = o->pending_since_us + KERN_OUTPUT_GATHER_MS * 1000;
	int64_t spaced = o->last_publish_us + KERN_OUTPUT_WINDOW_MS * 1000;

	return gathered > spaced ? gathered : spaced;
}

static void *kern_output_main(void *arg)
{
	struct kern_output *o = arg;

	for (;;) {
		bool pending = o->s[0].len || o->s[1].len;
		int64_t now = kern_now_us();
		int timeout = -1;
		struct pollfd p[3] = {
		        {.fd = o->s[0].rfd, .events = POLLIN},
		        {.fd = o->s[1].rfd, .events = POLLIN},
		        {.fd = o->event_fd, .events = POLLIN},
		};

		if (pending) {
			int64_t wait = kern_output_due(o) - now;
			timeout = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
		}
		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			kern_output_read(o, &o->s[0]);
		if (p[1].revents)
			kern_output_read(o, &o->s[1]);
		if (p[2].revents) {
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
			pthread_mutex_lock(&o->lock);
			o->sync_done = req;
			pthread_cond_broadcast(&o->done_cond);
			pthread_mutex_unlock(&o->lock);
			if (stop)
				break;
			continue;
		}
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

void kern_output_sync(struct kern *k)
{
	struct kern_output *o = k->output;
	uint64_t one = 1, mine;

	if (!o)
		return;
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
	close(o->event_fd);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->done_cond);
	free(o);
}
