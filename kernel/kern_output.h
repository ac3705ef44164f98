/*
 * Output capture: fd 1 and 2 become pipes read by one thread, which publishes what it reads as
 * iopub `stream` messages, coalesced. The thread owns both buffers; other threads only ask it to
 * flush (kern_output_sync) and wait.
 */
#pragma once

#include "kern.h"

/* Coalescing window: after a stream message, the next one waits at least this long. */
#define KERN_OUTPUT_WINDOW_MS 50
/*
 * Output that arrives after a quiet spell waits this long for more: a burst of small writes
 * (C's stdio, several write() calls) becomes one message, and the first byte is still prompt.
 */
#define KERN_OUTPUT_GATHER_US 1000
/* A stream buffer this full is published at once. */
#define KERN_OUTPUT_BUF_CAP (1u << 20)

/*
 * Replaces fd 1 and 2 by pipes and starts the reader thread. k->log_fd must already hold a
 * duplicate of the original stderr. Returns 0 or -errno.
 */
int kern_output_start(struct kern *k);

/*
 * Returns once everything written to fd 1 and 2 before the call is published. Thread-safe.
 * When nothing is pending (the common case between a request's messages) it costs one poll()
 * and no wake-up of the output thread.
 */
void kern_output_sync(struct kern *k);

/*
 * The content of a `stream` message for n bytes of output: {"name":NAME,"text":TEXT}, TEXT being
 * buf as valid UTF-8 (each byte of an invalid sequence becomes U+FFFD), JSON-escaped. out must
 * hold kern_output_json_size(name, buf, n) bytes; it is NUL-terminated. Returns the length
 * written. Pure functions (the output thread's encoder), public for their tests.
 */
size_t kern_output_json(const char *name, const unsigned char *buf, size_t n, char *out);

/* The room kern_output_json() needs: exact for ASCII, 3 bytes per other byte (< 6 n + 64). */
size_t kern_output_json_size(const char *name, const unsigned char *buf, size_t n);

/* Publishes what is left and stops the thread. */
void kern_output_stop(struct kern *k);
