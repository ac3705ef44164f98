/*
 * Shared helpers: error details and the allocation wrappers every module uses. The wrappers
 * route through jansson's allocator so failure-injection tests reach our own allocations too.
 */
#include "proto_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "proto_internal.h"

int proto_error_set(struct proto_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof(err->text), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void *proto__malloc(size_t size)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	return m(size ? size : 1);
}

void *proto__calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	bytes = n * size;
	p = proto__malloc(bytes);
	if (p && bytes)
		memset(p, 0, bytes);
	return p;
}

void proto__free(void *p)
{
	json_malloc_t m;
	json_free_t f;

	if (!p)
		return;
	json_get_alloc_funcs(&m, &f);
	f(p);
}

int proto__buf_copy(struct proto_buf *dst, const void *data, size_t len)
{
	dst->data = NULL;
	dst->len = 0;
	if (len == SIZE_MAX)
		return -ENOMEM;
	dst->data = proto__malloc(len + 1);
	if (!dst->data)
		return -ENOMEM;
	if (len)
		memcpy(dst->data, data, len);
	dst->data[len] = '\0';
	dst->len = len;
	return 0;
}

void proto__hex_encode(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0x0f];
	}
}

int proto__parse_object(const void *data, size_t len, const char *name, json_t **out,
                        struct proto_error *err)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (!len)
		return proto_error_set(err, EBADMSG, "%s is empty", name);
	/* jansson 2.14 skips a raw NUL byte after a number ({"a":1<NUL>} parses); JSON has none. */
	if (memchr(data, 0, len))
		return proto_error_set(err, EBADMSG, "%s contains a NUL byte", name);
	/* Python clients send "\u0000" in output text; keep it instead of dropping the message. */
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return proto_error_set(err, ENOMEM, "%s: out of memory", name);
		return proto_error_set(err, EBADMSG, "%s: %s", name, jerr.text);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return proto_error_set(err, EBADMSG, "%s is not an object", name);
	}
	*out = j;
	return 0;
}
