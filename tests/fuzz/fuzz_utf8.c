/*
 * Fuzzes proto_utf8: sanitised output is always valid and leaves valid input unchanged; a
 * complete prefix never holds back more than 3 bytes, and what it holds back is the start of
 * a character that more bytes could complete.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = malloc(3 * size + 1);
	size_t n, keep;

	FUZZ_CHECK(out);
	n = proto_utf8_sanitize(data, size, out);
	FUZZ_CHECK(n <= 3 * size);
	FUZZ_CHECK(out[n] == '\0');
	FUZZ_CHECK(proto_utf8_is_valid((const unsigned char *)out, n));
	if (proto_utf8_is_valid(data, size))
		FUZZ_CHECK(n == size && memcmp(out, data, size) == 0);
	free(out);

	keep = proto_utf8_complete_prefix(data, size);
	FUZZ_CHECK(keep <= size && size - keep <= 3);
	if (keep < size)
		FUZZ_CHECK(data[keep] >= 0xC0);
	return 0;
}
