/*
 * Shared helpers of libsandcell-protocol: byte views, error details and the
 * cleanup/ownership macros every module uses. No allocation lives here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* A view of bytes. Owned or borrowed as the holder's comment says. */
struct proto_buf {
	unsigned char *data;
	size_t len;
};

/* Details of a failure, filled by functions taking a last `struct proto_error *` (may be NULL). */
struct proto_error {
	char text[160];
};

/* Writes a formatted message into err when err is not NULL; returns -code (an errno value). */
int proto_error_set(struct proto_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define _cleanup_(f) __attribute__((cleanup(f)))
#define TAKE_PTR(p)                            \
	__extension__({                        \
		__typeof__(p) take_ptr_ = (p); \
		(p) = NULL;                    \
		take_ptr_;                     \
	})

static inline void proto_freep(void *p)
{
	free(*(void **)p);
}
