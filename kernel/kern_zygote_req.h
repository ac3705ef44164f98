/*
 * The zygote's request parser, apart from the zygote so that it can be fuzzed alone: a
 * request is a kernel's command line, each argument followed by a NUL.
 */
#pragma once

#include <stddef.h>

#define KERN_ZYGOTE_ARGS_MAX 512

/*
 * Splits buf[0..n) into a NULL-terminated vector of at most KERN_ZYGOTE_ARGS_MAX arguments
 * pointing into buf (the vector is owned, the strings are buf's), with their count in *argc.
 * NULL when buf is empty, does not end in a NUL, has too many arguments or memory is out.
 */
char **kern_zygote_args(char *buf, size_t n, int *argc);
