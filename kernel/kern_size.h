/*
 * Sizes for limits: parsed from "100MB", "1.5GiB", "65536" and printed as "100 MB".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The largest size accepted: 1 PiB. */
#define KERN_SIZE_MAX (UINT64_C(1) << 50)

/*
 * Parses digits with an optional fraction and an optional unit: B, K, KB, KiB, M, MB, MiB, G,
 * GB, GiB, T, TB, TiB in any case, each a power of 1024. The result is rounded down to whole
 * bytes and is at most KERN_SIZE_MAX. Returns 0, or -EINVAL for anything else (signs, spaces,
 * exponents, other units, an empty string).
 */
int kern_size_parse(const char *s, uint64_t *out);

/* Writes "100 MB", "1.5 GB", "512 KB" or "100 bytes" into buf (always terminated). */
void kern_size_format(uint64_t bytes, char *buf, size_t size);
