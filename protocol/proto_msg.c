/*
 * The Jupyter message model. A proto_msg owns its identity and buffer copies and one
 * reference to each JSON part; the accessors return views borrowed from the header.
 */
#include "proto_msg.h"

#include <string.h>

#include "proto_id.h"
#include "proto_internal.h"

struct proto_msg *proto_msg_new(void)
{
	return proto__calloc(1, sizeof(struct proto_msg));
}

/* Frees an owned array of n owned buffers. */
static void free_bufs(struct proto_buf *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		proto__free(v[i].data);
	proto__free(v);
}

void proto_msg_free(struct proto_msg *m)
{
	if (!m)
		return;
	free_bufs(m->idents, m->n_idents);
	json_decref(m->header);
	json_decref(m->parent);
	json_decref(m->metadata);
	json_decref(m->content);
	free_bufs(m->buffers, m->n_buffers);
	proto__free(m);
}

/* Returns the string value of key in the header, or "" when absent or not a string. */
static const char *header_string(const struct proto_msg *m, const char *key)
{
	const char *s;

	if (!m || !json_is_object(m->header))
		return "";
	s = json_string_value(json_object_get(m->header, key));
	return s ? s : "";
}

const char *proto_msg_type(const struct proto_msg *m)
{
	return header_string(m, "msg_type");
}

const char *proto_msg_id(const struct proto_msg *m)
{
	return header_string(m, "msg_id");
}

const char *proto_msg_session(const struct proto_msg *m)
{
	return header_string(m, "session");
}

bool proto_msg_is_reply(const struct proto_msg *m)
{
	static const char suffix[] = "_reply";
	const char *t = proto_msg_type(m);
	size_t len = strlen(t);

	return len >= sizeof(suffix) - 1 &&
	       memcmp(t + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0;
}

/* Adds key: a new string copied from value; returns 0 or -1 (invalid UTF-8 or no memory). */
static int set_string(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, json_string(value ? value : ""));
}

json_t *proto_header_new(const char *msg_type, const char *session, const char *username)
{
	char id[PROTO_UUID_LEN + 1];
	char date[PROTO_DATE_LEN + 1];
	json_t *h;

	if (proto_id_uuid(id) < 0)
		return NULL;
	proto_id_date_now(date);

	h = json_object();
	if (!h)
		return NULL;
	/* Insertion order is the dump order: the order jupyter_client writes. */
	if (set_string(h, "msg_id", id) < 0 || set_string(h, "session", session) < 0 ||
	    set_string(h, "username", username) < 0 || set_string(h, "date", date) < 0 ||
	    set_string(h, "msg_type", msg_type) < 0 ||
	    set_string(h, "version", PROTO_VERSION) < 0) {
		json_decref(h);
		return NULL;
	}
	return h;
}
