/*
 * Output capture: fd 1 and 2 become pipes read by one thread, which publishes what it reads as
 * iopub `stream` messages, coalesced. The thread owns both buffers; other threads only ask it to
 * flush (kern_output_sync) and wait.
 */
#pragma once

#include "kern.h"

/* Coalescing window: after a stream message, the next one waits at least this long. */
#define KERN_OUTPUT_WINDOW_MS 50
/* Output that arrives after a quiet spell waits this long for more (a print is two writes). */
#define KERN_OUTPUT_GATHER_MS 2
/* A stream buffer this full is published at once. */
#define KERN_OUTPUT_BUF_CAP (1u << 20)

/*
 * Replaces fd 1 and 2 by pipes and starts the reader thread. k->log_fd must already hold a
 * duplicate of the original stderr. Returns 0 or -errno.
 */
int kern_output_start(struct kern *k);

/*
 * Returns once everything written to fd 1 and 2 before the call is published. Thread-safe. */
void kern_output_sync(struct kern *k);

/* Publishes what is left and stops the thread. */
void kern_output_stop(struct kern *k);
