/*
 * Fuzzes kern_zygote_args, the zygote's request parser: an accepted request gives at most
 * KERN_ZYGOTE_ARGS_MAX arguments, each a string inside the request, which laid end to end with
 * their NULs are the request again; a refused one is empty, unterminated or too long a list.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kern_zygote_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	char **v;
	size_t off = 0, nuls = 0;
	int argc = -1;

	FUZZ_CHECK(buf);
	if (size)
		memcpy(buf, data, size);
	for (size_t i = 0; i < size; i++)
		nuls += buf[i] == '\0';
	v = kern_zygote_args(buf, size, &argc);
	if (!v) {
		FUZZ_CHECK(size == 0 || buf[size - 1] != '\0' || nuls > KERN_ZYGOTE_ARGS_MAX);
		free(buf);
		return 0;
	}
	FUZZ_CHECK(size > 0 && buf[size - 1] == '\0');
	FUZZ_CHECK(argc >= 1 && (size_t)argc == nuls && argc <= KERN_ZYGOTE_ARGS_MAX);
	for (int i = 0; i < argc; i++) {
		FUZZ_CHECK(v[i] == buf + off);
		off += strlen(v[i]) + 1;
		FUZZ_CHECK(off <= size);
	}
	FUZZ_CHECK(off == size);
	FUZZ_CHECK(v[argc] == NULL);
	free(v);
	free(buf);
	return 0;
}
