/*
 * The kernel's log lines: "sandcell-kernel[PID]: text", one write each, to a descriptor (the
 * original stderr, or the pipe to the sandbox's supervisor).
 */
#pragma once

#include <stdarg.h>

/* Writes one line; long text is cut. Never fails loudly: there is nowhere left to say so. */
void kern_vlog(int fd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
