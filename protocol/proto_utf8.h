/*
 * UTF-8 for bytes that programs write: where a chunk may be cut in the middle of a character,
 * and how to turn arbitrary bytes into valid UTF-8 for JSON. Pure functions, fuzzed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Returns how many leading bytes of buf to publish now: all of them, except the start of a
 * multi-byte character at the very end that the next bytes may still complete (at most 3
 * bytes are held back).
 */
size_t proto_utf8_complete_prefix(const unsigned char *buf, size_t len);

/*
 * Copies buf into out as valid UTF-8, each byte of an invalid or truncated sequence (overlong
 * forms, surrogates, code points above U+10FFFF included) replaced by U+FFFD. out must hold
 * 3 * len + 1 bytes; it is NUL-terminated. Returns the length written.
 */
size_t proto_utf8_sanitize(const unsigned char *buf, size_t len, char *out);

/* True when buf is valid UTF-8 in the sense above. */
bool proto_utf8_is_valid(const unsigned char *buf, size_t len);
