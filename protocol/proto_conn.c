/*
 * Jupyter connection files. proto_conn_parse() turns untrusted bytes into a struct that owns
 * only its key; endpoints are formatted the way jupyter_client formats them.
 */
#include "proto_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "proto_internal.h"

static const char *const channel_names[PROTO_CHANNEL_COUNT] = {
        [PROTO_CHANNEL_SHELL] = "shell", [PROTO_CHANNEL_IOPUB] = "iopub",
        [PROTO_CHANNEL_STDIN] = "stdin", [PROTO_CHANNEL_CONTROL] = "control",
        [PROTO_CHANNEL_HB] = "hb",
};

static const char *const port_keys[PROTO_CHANNEL_COUNT] = {
        [PROTO_CHANNEL_SHELL] = "shell_port", [PROTO_CHANNEL_IOPUB] = "iopub_port",
        [PROTO_CHANNEL_STDIN] = "stdin_port", [PROTO_CHANNEL_CONTROL] = "control_port",
        [PROTO_CHANNEL_HB] = "hb_port",
};

#define SCHEME_HMAC_SHA256 "hmac-sha256"

const char *proto_channel_name(enum proto_channel ch)
{
	if ((unsigned int)ch >= PROTO_CHANNEL_COUNT)
		return "unknown";
	return channel_names[ch];
}

/*
 * Copies the string member key of obj into dst (size bytes with the NUL). A missing or null
 * member is an error when required, "" otherwise.
 */
static int get_string(const json_t *obj, const char *key, bool required, char *dst, size_t size,
                      struct proto_error *err)
{
	const json_t *v = json_object_get(obj, key);
	size_t len;

	dst[0] = '\0';
	if (!v || json_is_null(v)) {
		if (required)
			return proto_error_set(err, EBADMSG, "missing %s", key);
		return 0;
	}
	if (!json_is_string(v))
		return proto_error_set(err, EBADMSG, "%s is not a string", key);
	len = json_string_length(v);
	if (len >= size)
		return proto_error_set(err, EBADMSG, "%s is longer than %zu bytes", key, size - 1);
	/* jansson rejects \u0000 unless JSON_ALLOW_NUL, so the value has no inner NUL. */
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

int proto_conn_parse(const char *data, size_t len, struct proto_conn *out, struct proto_error *err)
{
	json_auto_t *root = NULL;
	json_error_t jerr;
	const json_t *key, *scheme;
	bool ipc;
	int r;

	memset(out, 0, sizeof(*out));
	if (!len)
		return proto_error_set(err, EBADMSG, "empty connection file");
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return proto_error_set(err, ENOMEM, "out of memory");
		return proto_error_set(err, EBADMSG, "%s", jerr.text);
	}
	if (!json_is_object(root))
		return proto_error_set(err, EBADMSG, "connection file is not an object");

	r = get_string(root, "transport", true, out->transport, sizeof(out->transport), err);
	if (r < 0 || (strcmp(out->transport, "tcp") != 0 && strcmp(out->transport, "ipc") != 0)) {
		memset(out, 0, sizeof(*out));
		return proto_error_set(err, EBADMSG, "transport must be \"tcp\" or \"ipc\"");
	}
	ipc = out->transport[0] == 'i';

	r = get_string(root, "ip", true, out->ip, sizeof(out->ip), err);
	if (r == 0 && !out->ip[0])
		r = proto_error_set(err, EBADMSG, "ip is empty");
	if (r == 0)
		r = get_string(root, "kernel_name", false, out->kernel_name,
		               sizeof(out->kernel_name), err);
	if (r < 0)
		goto fail;

	for (int ch = 0; ch < PROTO_CHANNEL_COUNT; ch++) {
		const json_t *v = json_object_get(root, port_keys[ch]);
		json_int_t port;

		if (!json_is_integer(v)) {
			r = proto_error_set(err, EBADMSG, "%s is missing or not an integer",
			                    port_keys[ch]);
			goto fail;
		}
		port = json_integer_value(v);
		/* 0 asks tcp to pick a port; an ipc path needs a real suffix. */
		if (port < (ipc ? 1 : 0) || port > 65535) {
			r = proto_error_set(err, EBADMSG, "%s %lld out of range", port_keys[ch],
			                    (long long)port);
			goto fail;
		}
		out->ports[ch] = (int)port;
	}

	key = json_object_get(root, "key");
	if (!json_is_string(key)) {
		r = proto_error_set(err, EBADMSG, "key is missing or not a string");
		goto fail;
	}
	scheme = json_object_get(root, "signature_scheme");
	if (scheme && !json_is_null(scheme) && !json_is_string(scheme)) {
		r = proto_error_set(err, EBADMSG, "signature_scheme is not a string");
		goto fail;
	}
	/* Without a key nothing is signed and the scheme does not matter; missing means HMAC. */
	if (json_string_length(key) && json_is_string(scheme) &&
	    strcmp(json_string_value(scheme), SCHEME_HMAC_SHA256) != 0) {
		r = proto_error_set(err, EBADMSG, "unsupported signature_scheme \"%.40s\"",
		                    json_string_value(scheme));
		goto fail;
	}

	out->key_len = json_string_length(key);
	out->key = proto__malloc(out->key_len + 1);
	if (!out->key) {
		r = proto_error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(out->key, json_string_value(key), out->key_len + 1);
	return 0;

fail:
	memset(out, 0, sizeof(*out));
	return r;
}

void proto_conn_clear(struct proto_conn *c)
{
	if (!c)
		return;
	if (c->key) {
		explicit_bzero(c->key, c->key_len);
		proto__free(c->key);
	}
	memset(c, 0, sizeof(*c));
}

int proto_conn_endpoint(const struct proto_conn *c, enum proto_channel ch, char *buf, size_t len)
{
	int n;

	if ((unsigned int)ch >= PROTO_CHANNEL_COUNT)
		return -EINVAL;
	/* jupyter_client: "tcp://IP:PORT", and for ipc the path "IP-PORT". */
	if (strcmp(c->transport, "ipc") == 0)
		n = snprintf(buf, len, "ipc://%s-%d", c->ip, c->ports[ch]);
	else
		n = snprintf(buf, len, "tcp://%s:%d", c->ip, c->ports[ch]);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

char *proto_conn_dump(const struct proto_conn *c)
{
	json_auto_t *root = NULL;
	size_t len;
	char *text;

	/* The field order jupyter_client writes. */
	root = json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s%, s:s, s:s, s:s}", "shell_port",
	                 c->ports[PROTO_CHANNEL_SHELL], "iopub_port", c->ports[PROTO_CHANNEL_IOPUB],
	                 "stdin_port", c->ports[PROTO_CHANNEL_STDIN], "control_port",
	                 c->ports[PROTO_CHANNEL_CONTROL], "hb_port", c->ports[PROTO_CHANNEL_HB],
	                 "ip", c->ip, "key", c->key ? c->key : "", c->key ? c->key_len : 0,
	                 "transport", c->transport, "signature_scheme", SCHEME_HMAC_SHA256,
	                 "kernel_name", c->kernel_name);
	if (!root)
		return NULL;
	len = json_dumpb(root, NULL, 0, JSON_INDENT(1));
	if (!len)
		return NULL;
	/* Plain malloc: the caller frees the text with free(). */
	text = malloc(len + 1);
	if (!text)
		return NULL;
	if (json_dumpb(root, text, len, JSON_INDENT(1)) != len) {
		free(text);
		return NULL;
	}
	text[len] = '\0';
	return text;
}
