/*
 * Fuzzes proto_conn_parse() on raw bytes. A parsed connection must give an endpoint for every
 * channel, fail cleanly on short buffers, and survive proto_conn_dump() and a second parse
 * unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto_conn.h"

static bool conn_equal(const struct proto_conn *a, const struct proto_conn *b)
{
	return !strcmp(a->transport, b->transport) && !strcmp(a->ip, b->ip) &&
	       !memcmp(a->ports, b->ports, sizeof(a->ports)) && a->key_len == b->key_len &&
	       !memcmp(a->key, b->key, a->key_len) && !strcmp(a->kernel_name, b->kernel_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_conn zero;
	struct proto_conn c, back;
	struct proto_error err = {0};
	char *copy, *text;
	int r;

	/* An exact-size copy: ASan then sees any read past the end. */
	copy = malloc(size ? size : 1);
	FUZZ_CHECK(copy);
	if (size)
		memcpy(copy, data, size);
	r = proto_conn_parse(copy, size, &c, &err);
	free(copy);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(!memcmp(&c, &zero, sizeof(c)));
		FUZZ_CHECK(err.text[0] != '\0');
		return 0;
	}

	FUZZ_CHECK(!strcmp(c.transport, "tcp") || !strcmp(c.transport, "ipc"));
	FUZZ_CHECK(c.key && strlen(c.key) == c.key_len);
	for (int ch = 0; ch < PROTO_CHANNEL_COUNT; ch++) {
		char ep[300 + 20], small[12];
		int len = proto_conn_endpoint(&c, ch, ep, sizeof(ep));

		FUZZ_CHECK(len > 0 && (size_t)len == strlen(ep));
		FUZZ_CHECK(!strncmp(ep, c.transport, 3) && !strncmp(ep + 3, "://", 3));
		r = proto_conn_endpoint(&c, ch, small, sizeof(small));
		FUZZ_CHECK(r == (len < (int)sizeof(small) ? len : -ENAMETOOLONG));
		FUZZ_CHECK(strlen(proto_channel_name(ch)) > 0);
	}

	text = proto_conn_dump(&c);
	FUZZ_CHECK(text);
	FUZZ_CHECK(proto_conn_parse(text, strlen(text), &back, NULL) == 0);
	FUZZ_CHECK(conn_equal(&c, &back));
	free(text);
	proto_conn_clear(&back);
	proto_conn_clear(&c);
	FUZZ_CHECK(!memcmp(&c, &zero, sizeof(c)));
	return 0;
}
