/*
 * Fuzzes kern_size: a parsed size is at most KERN_SIZE_MAX; a printed size is terminated and
 * fits its buffer; a size that prints as a whole number of a unit parses back to itself.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kern_size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), text[64], small[4];
	uint64_t v, back, raw = 0;

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	if (kern_size_parse(s, &v) == 0) {
		FUZZ_CHECK(v <= KERN_SIZE_MAX);
		kern_size_format(v, text, sizeof(text));
		FUZZ_CHECK(memchr(text, '\0', sizeof(text)));
		if (!strchr(text, '.')) {
			/* "100 MB" -> "100MB" parses back exactly. */
			char *sp = strchr(text, ' ');

			FUZZ_CHECK(sp);
			memmove(sp, sp + 1, strlen(sp));
			if (strcmp(sp, "bytes") == 0)
				*sp = '\0';
			FUZZ_CHECK(kern_size_parse(text, &back) == 0 && back == v);
		}
	}
	free(s);
	/* Any 64-bit value prints, even into a buffer too small for it. */
	memcpy(&raw, data, size < sizeof(raw) ? size : sizeof(raw));
	kern_size_format(raw, text, sizeof(text));
	FUZZ_CHECK(memchr(text, '\0', sizeof(text)));
	kern_size_format(raw, small, sizeof(small));
	FUZZ_CHECK(memchr(small, '\0', sizeof(small)));
	return 0;
}
