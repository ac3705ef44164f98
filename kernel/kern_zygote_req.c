/* The zygote's request: see kern_zygote_req.h. */
#include "kern_zygote_req.h"

#include <stdlib.h>
#include <string.h>

/* Splits buf[0..n) (NUL-terminated arguments) into a NULL-terminated vector (owned). */
char **kern_zygote_args(char *buf, size_t n, int *argc)
{
	char **v;
	int count = 0;

	if (n == 0 || buf[n - 1] != '\0')
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0' && ++count > KERN_ZYGOTE_ARGS_MAX)
			return NULL;
	v = calloc((size_t)count + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (int i = 0; i < count; i++) {
		v[i] = buf;
		buf += strlen(buf) + 1;
	}
	*argc = count;
	return v;
}
