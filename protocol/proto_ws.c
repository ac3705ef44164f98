/*
 * Jupyter's kernel WebSocket encodings, legacy JSON and v1.kernel.websocket.jupyter.org. Frames
 * from clients become a proto_ws_msg that owns copies of every part; messages for clients become
 * one malloc() buffer. Both directions are untrusted, so every JSON part is checked.
 */
#include "proto_ws.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "proto_internal.h"
#include "proto_utf8.h"

/* The checks proto_wire applies to the kernel's frames, so a part we accept the kernel accepts. */

/* v1: the start of the channel, then the end of the channel and of each of the four JSON parts. */
#define WS_V1_MIN_OFFSETS 6

/* Container nesting the v1 check allows: as deep as jansson parses, so it never refuses less. */
#define WS_MAX_DEPTH JSON_PARSER_MAX_DEPTH

static const char *const channel_names[] = {
        [PROTO_WS_SHELL] = "shell",
        [PROTO_WS_CONTROL] = "control",
        [PROTO_WS_STDIN] = "stdin",
        [PROTO_WS_IOPUB] = "iopub",
};
#define WS_CHANNEL_COUNT (sizeof(channel_names) / sizeof(channel_names[0]))

static const char *const part_names[4] = {"header", "parent_header", "metadata", "content"};

const char *proto_ws_channel_name(enum proto_ws_channel ch)
{
	if ((unsigned int)ch >= WS_CHANNEL_COUNT)
		return "unknown";
	return channel_names[ch];
}

void proto_ws_msg_clear(struct proto_ws_msg *m)
{
	proto__free(m->header.data);
	proto__free(m->parent.data);
	proto__free(m->metadata.data);
	proto__free(m->content.data);
	for (size_t i = 0; m->buffers && i < m->n_buffers; i++)
		proto__free(m->buffers[i].data);
	proto__free(m->buffers);
	memset(m, 0, sizeof(*m));
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static size_t size_from_u64(uint64_t v)
{
#if SIZE_MAX < UINT64_MAX
	if (v > SIZE_MAX)
		return SIZE_MAX;
#endif
	return (size_t)v;
}

/* The channels a client may send on; iopub is the kernel's. */
static bool client_channel(const char *s, size_t len, enum proto_ws_channel *out)
{
	for (size_t i = 0; i < WS_CHANNEL_COUNT; i++) {
		if (i == PROTO_WS_IOPUB)
			continue;
		if (strlen(channel_names[i]) == len && !memcmp(s, channel_names[i], len)) {
			*out = (enum proto_ws_channel)i;
			return true;
		}
	}
	return false;
}

/* -EPROTO for a channel a client may not use; names it when it is short, plain text. */
static int bad_channel(const char *s, size_t len, struct proto_error *err)
{
	bool plain = len <= 16;

	for (size_t i = 0; plain && i < len; i++)
		plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\';
	if (plain)
		return proto_error_set(err, EPROTO,
		                       "channel \"%.*s\" is not shell, control or stdin", (int)len,
		                       s);
	return proto_error_set(err, EPROTO, "channel is not shell, control or stdin");
}

/*
 * A binary frame's offset table, read in place. Legacy: u32be count, then the start of each of
 * count parts (the last one runs to the end of the frame). v1: u64le count, then count offsets
 * that bound count - 1 parts, the last being the end of the frame.
 */
struct ws_frame {
	const unsigned char *data;
	size_t len;
	bool legacy;
	size_t count;  /* entries in the offset table */
	size_t nparts; /* parts they bound */
};

/* Bound i of the frame's parts: part i runs from bound i to bound i + 1. */
static size_t frame_bound(const struct ws_frame *f, size_t i)
{
	if (f->legacy)
		return i == f->count ? f->len : get_be32(f->data + 4 * (i + 1));
	return size_from_u64(get_le64(f->data + 8 * (i + 1)));
}

static struct proto_buf frame_part(const struct ws_frame *f, size_t i)
{
	size_t start = frame_bound(f, i);

	/* Parts are read-only views; the cast only drops const from the caller's frame. */
	return (struct proto_buf){(unsigned char *)(uintptr_t)(f->data + start),
	                          frame_bound(f, i + 1) - start};
}

/*
 * Checks the offset table: a count between the minimum and lim->max_frames, a table inside
 * the frame, the first part right after it, bounds that never decrease or pass the end, and
 * (v1) a last offset at the end of the frame.
 */
static int frame_parse(struct ws_frame *f, bool legacy, const unsigned char *data, size_t len,
                       const struct proto_limits *lim, struct proto_error *err)
{
	const size_t word = legacy ? 4 : 8;
	const uint64_t min = legacy ? 1 : WS_V1_MIN_OFFSETS;
	uint64_t count;
	size_t table, prev;

	memset(f, 0, sizeof(*f));
	if (len < word)
		return proto_error_set(err, EBADMSG, "frame of %zu bytes has no offset count", len);
	count = legacy ? get_be32(data) : get_le64(data);
	if (count < min)
		return proto_error_set(err, EBADMSG, "%llu offsets, need at least %llu",
		                       (unsigned long long)count, (unsigned long long)min);
	if (count > lim->max_frames)
		return proto_error_set(err, EMSGSIZE, "%llu offsets, limit %zu",
		                       (unsigned long long)count, lim->max_frames);
	if (count > len / word - 1)
		return proto_error_set(
		        err, EBADMSG,
		        "table of %llu offsets is past the end of the frame (%zu bytes)",
		        (unsigned long long)count, len);
	table = word * ((size_t)count + 1);
	f->data = data;
	f->len = len;
	f->legacy = legacy;
	f->count = (size_t)count;
	f->nparts = legacy ? f->count : f->count - 1;

	prev = table;
	for (size_t i = 0; i < f->count; i++) {
		size_t b = frame_bound(f, i);

		if (i == 0 && b != table)
			return proto_error_set(err, EBADMSG,
			                       "offset 0 is %zu, the offset table ends at %zu", b,
			                       table);
		if (b > len)
			return proto_error_set(
			        err, EBADMSG, "offset %zu is past the end of the frame (%zu > %zu)",
			        i, b, len);
		if (b < prev)
			return proto_error_set(err, EBADMSG,
			                       "offset %zu (%zu) is before offset %zu (%zu)", i, b,
			                       i - 1, prev);
		prev = b;
	}
	if (!legacy && prev != len)
		return proto_error_set(err, EBADMSG, "extra bytes after the last part (%zu)",
		                       len - prev);
	return 0;
}

/* Checks each of n buffers (parts first..first + n - 1 of f) against lim->max_buffer. */
static int check_buffers(const struct ws_frame *f, size_t first, size_t n,
                         const struct proto_limits *lim, struct proto_error *err)
{
	for (size_t i = 0; i < n; i++) {
		struct proto_buf b = frame_part(f, first + i);

		if (b.len > lim->max_buffer)
			return proto_error_set(err, EMSGSIZE, "buffer %zu has %zu bytes, limit %zu",
			                       i, b.len, lim->max_buffer);
	}
	return 0;
}

/* Copies n buffers, parts first.. of f, into an owned array in out. */
static int copy_buffers(const struct ws_frame *f, size_t first, size_t n, struct proto_ws_msg *out)
{
	if (!n)
		return 0;
	out->buffers = proto__calloc(n, sizeof(*out->buffers));
	if (!out->buffers)
		return -ENOMEM;
	/* Counted before the copies: a partial copy then frees cleanly with the message. */
	out->n_buffers = n;
	for (size_t i = 0; i < n; i++) {
		struct proto_buf b = frame_part(f, first + i);

		if (proto__buf_copy(&out->buffers[i], b.data, b.len) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Copies header[key], a string without "\u0000" shorter than size, into dst. */
static int copy_header_text(const json_t *header, const char *key, char *dst, size_t size,
                            struct proto_error *err)
{
	const json_t *v = json_object_get(header, key);
	size_t len;

	if (!json_is_string(v))
		return proto_error_set(err, EBADMSG, "header has no string %s", key);
	len = json_string_length(v);
	if (strlen(json_string_value(v)) != len)
		return proto_error_set(err, EBADMSG, "header %s contains \\u0000", key);
	if (len >= size)
		return proto_error_set(err, EBADMSG, "header %s is longer than %zu bytes", key,
		                       size - 1);
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

static int copy_header_ids(const json_t *header, struct proto_ws_msg *out, struct proto_error *err)
{
	int r = copy_header_text(header, "msg_id", out->msg_id, sizeof(out->msg_id), err);

	if (r < 0)
		return r;
	return copy_header_text(header, "msg_type", out->msg_type, sizeof(out->msg_type), err);
}

static struct proto_buf *msg_part(struct proto_ws_msg *m, size_t i)
{
	struct proto_buf *parts[4] = {&m->header, &m->parent, &m->metadata, &m->content};

	return parts[i];
}

/*
 * v1: channel and parts as the client sent them. The JSON parts are parsed only to check
 * them (the header also for msg_id and msg_type) and then copied byte for byte.
 */
static int decode_v1(const unsigned char *data, size_t len, const struct proto_limits *lim,
                     struct proto_ws_msg *out, struct proto_error *err)
{
	struct ws_frame f;
	struct proto_buf chan;
	int r;

	r = frame_parse(&f, false, data, len, lim, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < 4; i++) {
		struct proto_buf p = frame_part(&f, 1 + i);

		if (p.len > lim->max_json_frame)
			return proto_error_set(err, EMSGSIZE, "%s has %zu bytes, limit %zu",
			                       part_names[i], p.len, lim->max_json_frame);
	}
	r = check_buffers(&f, 5, f.nparts - 5, lim, err);
	if (r < 0)
		return r;

	chan = frame_part(&f, 0);
	if (!client_channel((const char *)chan.data, chan.len, &out->channel))
		return bad_channel((const char *)chan.data, chan.len, err);

	for (size_t i = 0; i < 4; i++) {
		_cleanup_(json_decrefp) json_t *j = NULL;
		struct proto_buf p = frame_part(&f, 1 + i);

		r = proto__parse_object(p.data, p.len, part_names[i], &j, err);
		if (r < 0)
			return r;
		if (i == 0) {
			r = copy_header_ids(j, out, err);
			if (r < 0)
				return r;
		}
	}

	for (size_t i = 0; i < 4; i++) {
		struct proto_buf p = frame_part(&f, 1 + i);

		if (proto__buf_copy(msg_part(out, i), p.data, p.len) < 0)
			return proto_error_set(err, ENOMEM, "out of memory");
	}
	if (copy_buffers(&f, 5, f.nparts - 5, out) < 0)
		return proto_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/*
 * Dumps object j (NULL: {}) compactly into dst, an owned NUL-terminated buffer, unless it is
 * over max bytes (-EMSGSIZE).
 */
static int dump_object(const json_t *j, size_t max, const char *name, struct proto_buf *dst,
                       struct proto_error *err)
{
	size_t len;

	if (!j) {
		if (proto__buf_copy(dst, "{}", 2) < 0)
			return proto_error_set(err, ENOMEM, "out of memory");
		return 0;
	}
	/* The object was parsed from text, so dumping fails only for want of memory. */
	len = json_dumpb(j, NULL, 0, JSON_COMPACT);
	if (!len)
		return proto_error_set(err, ENOMEM, "out of memory");
	if (len > max)
		return proto_error_set(err, EMSGSIZE, "%s has %zu bytes, limit %zu", name, len,
		                       max);
	dst->data = proto__malloc(len + 1);
	if (!dst->data)
		return proto_error_set(err, ENOMEM, "out of memory");
	if (json_dumpb(j, (char *)dst->data, len, JSON_COMPACT) != len) {
		proto__free(dst->data);
		dst->data = NULL;
		return proto_error_set(err, ENOMEM, "out of memory");
	}
	dst->data[len] = '\0';
	dst->len = len;
	return 0;
}

/*
 * Legacy: one JSON object {header, parent_header, metadata, content, channel, ...}, alone in a
 * text frame or first in a binary frame that carries the buffers after it. The parts are
 * re-serialised compactly from the parsed object.
 */
static int decode_legacy(const unsigned char *data, size_t len, bool binary,
                         const struct proto_limits *lim, struct proto_ws_msg *out,
                         struct proto_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	struct ws_frame f = {0};
	struct proto_buf text = {(unsigned char *)(uintptr_t)data, len};
	const json_t *v;
	size_t n_buffers = 0;
	int r;

	/*
	 * jupyter_server 1.x in gateway mode forwards a browser's binary frame to us as a text
	 * frame (tornado writes text by default). No JSON text starts with a zero byte.
	 */
	if (!binary && len && data[0] == 0)
		binary = true;
	if (binary) {
		r = frame_parse(&f, true, data, len, lim, err);
		if (r < 0)
			return r;
		n_buffers = f.nparts - 1;
		r = check_buffers(&f, 1, n_buffers, lim, err);
		if (r < 0)
			return r;
		text = frame_part(&f, 0);
	}

	r = proto__parse_object(text.data, text.len, "message", &root, err);
	if (r < 0)
		return r;

	/* jupyter_server sends a message without a channel (or a null one) to shell. */
	v = json_object_get(root, "channel");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return proto_error_set(err, EPROTO, "channel is not a string");
		if (!client_channel(json_string_value(v), json_string_length(v), &out->channel))
			return bad_channel(json_string_value(v), json_string_length(v), err);
	}

	v = json_object_get(root, "header");
	if (!v)
		return proto_error_set(err, EBADMSG, "message has no header");
	if (!json_is_object(v))
		return proto_error_set(err, EBADMSG, "header is not an object");
	r = copy_header_ids(v, out, err);
	if (r < 0)
		return r;

	/* A binary frame's buffers follow the JSON (its "buffers" key is ignored, as in Python). */
	v = json_object_get(root, "buffers");
	if (!binary && v && !json_is_null(v) && !(json_is_array(v) && !json_array_size(v)))
		return proto_error_set(err, EBADMSG, "buffers in a text frame");

	for (size_t i = 0; i < 4; i++) {
		v = json_object_get(root, part_names[i]);
		if (json_is_null(v))
			v = NULL;
		if (v && !json_is_object(v))
			return proto_error_set(err, EBADMSG, "%s is not an object", part_names[i]);
		r = dump_object(v, lim->max_json_frame, part_names[i], msg_part(out, i), err);
		if (r < 0)
			return r;
	}
	if (copy_buffers(&f, 1, n_buffers, out) < 0)
		return proto_error_set(err, ENOMEM, "out of memory");
	return 0;
}

int proto_ws_decode(enum proto_ws_framing f, const unsigned char *data, size_t len, bool binary,
                    const struct proto_limits *lim, struct proto_ws_msg *out,
                    struct proto_error *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (len > lim->max_total)
		return proto_error_set(err, EMSGSIZE, "frame of %zu bytes, limit %zu", len,
		                       lim->max_total);
	if (f == PROTO_WS_V1) {
		if (!binary)
			return proto_error_set(err, EBADMSG,
			                       PROTO_WS_V1_SUBPROTOCOL " takes binary frames only");
		r = decode_v1(data, len, lim, out, err);
	} else {
		r = decode_legacy(data, len, binary, lim, out, err);
	}
	if (r < 0)
		proto_ws_msg_clear(out);
	return r;
}

/* -- Encoding ------------------------------------------------------------------------------ */

static size_t skip_ws(const unsigned char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* The value of 4 hex digits at p, or -1. */
static long hex4(const unsigned char *p)
{
	long v = 0;

	for (int k = 0; k < 4; k++) {
		unsigned char c = p[k];

		v <<= 4;
		if (is_digit(c))
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * The string starting at p[i] == '"': returns the index after its closing quote, or 0. Escapes
 * must be JSON's, and \u escapes of surrogates must pair up (as jansson requires).
 */
static size_t scan_string(const unsigned char *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		long u, lo;

		/* Long runs of plain text (output): skip 8 bytes at a time while none ends them. */
		for (uint64_t w, q, b; i + 8 <= n; i += 8) {
			memcpy(&w, p + i, sizeof(w));
			q = w ^ UINT64_C(0x2222222222222222);
			b = w ^ UINT64_C(0x5c5c5c5c5c5c5c5c);
			if (((w - UINT64_C(0x2020202020202020)) |
			     (q - UINT64_C(0x0101010101010101)) |
			     (b - UINT64_C(0x0101010101010101))) &
			    ~w & UINT64_C(0x8080808080808080))
				break;
		}
		if (i == n)
			return 0;
		if (p[i] == '"')
			return i + 1;
		if (p[i] < 0x20)
			return 0;
		if (p[i] != '\\')
			continue;
		if (++i == n)
			return 0;
		if (p[i] && strchr("\"\\/bfnrt", p[i]))
			continue;
		if (p[i] != 'u' || n - i <= 4 || (u = hex4(p + i + 1)) < 0)
			return 0;
		i += 4;
		if (u >= 0xDC00 && u <= 0xDFFF)
			return 0;
		if (u < 0xD800 || u > 0xDBFF)
			continue;
		if (n - i <= 6 || p[i + 1] != '\\' || p[i + 2] != 'u')
			return 0;
		lo = hex4(p + i + 3);
		if (lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		i += 6;
	}
	return 0;
}

/* A number at p[i] in JSON's grammar: returns the index after it, or 0. */
static size_t scan_number(const unsigned char *p, size_t n, size_t i)
{
	if (p[i] == '-')
		i++;
	if (i == n)
		return 0;
	if (p[i] == '0')
		i++;
	else if (is_digit(p[i]))
		while (i < n && is_digit(p[i]))
			i++;
	else
		return 0;
	if (i < n && p[i] == '.') {
		if (++i == n || !is_digit(p[i]))
			return 0;
		while (i < n && is_digit(p[i]))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i == n || !is_digit(p[i]))
			return 0;
		while (i < n && is_digit(p[i]))
			i++;
	}
	return i;
}

/* A string, number or literal at p[i]: returns the index after it, or 0. */
static size_t scan_scalar(const unsigned char *p, size_t n, size_t i)
{
	static const char *const literals[] = {"true", "false", "null"};

	if (p[i] == '"')
		return scan_string(p, n, i);
	if (p[i] == '-' || is_digit(p[i]))
		return scan_number(p, n, i);
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(literals[k]);

		if (n - i >= l && !memcmp(p + i, literals[k], l))
			return i + l;
	}
	return 0;
}

/*
 * Whether p is the text of exactly one JSON object (whitespace around it allowed): RFC 8259's
 * grammar, valid UTF-8, paired surrogate escapes, nesting up to jansson's limit. Allocates
 * nothing and builds nothing, for the v1 fast path. Everything jansson parses as an object
 * passes; unlike jansson it lets duplicate keys and numbers beyond 64 bits through, which
 * JavaScript and Python clients read without trouble.
 */
static bool text_is_one_object(const unsigned char *p, size_t n)
{
	enum { S_VALUE, S_FIRST_KEY, S_KEY, S_COLON, S_FIRST_ITEM, S_AFTER } s = S_VALUE;
	unsigned char in_array[(WS_MAX_DEPTH + 7) / 8] = {0};
	size_t depth = 0, i;

	if (!proto_utf8_is_valid(p, n))
		return false;
	i = skip_ws(p, n, 0);
	if (i == n || p[i] != '{')
		return false;
	for (;;) {
		unsigned char c;

		i = skip_ws(p, n, i);
		if (i == n)
			return false;
		c = p[i];
		if ((s == S_FIRST_KEY && c == '}') || (s == S_FIRST_ITEM && c == ']')) {
			depth--;
			i++;
			s = S_AFTER;
		} else if (s == S_FIRST_KEY || s == S_KEY) {
			if (c != '"' || !(i = scan_string(p, n, i)))
				return false;
			s = S_COLON;
		} else if (s == S_COLON) {
			if (c != ':')
				return false;
			i++;
			s = S_VALUE;
		} else if (s == S_VALUE || s == S_FIRST_ITEM) {
			if (c == '{' || c == '[') {
				if (depth == WS_MAX_DEPTH)
					return false;
				in_array[depth / 8] &= ~(1u << depth % 8);
				in_array[depth / 8] |= (c == '[') << depth % 8;
				depth++;
				i++;
				s = c == '{' ? S_FIRST_KEY : S_FIRST_ITEM;
				continue;
			}
			if (!(i = scan_scalar(p, n, i)))
				return false;
			s = S_AFTER;
		} else {
			bool array = in_array[(depth - 1) / 8] >> (depth - 1) % 8 & 1;

			if (c == ',') {
				i++;
				s = array ? S_VALUE : S_KEY;
				continue;
			}
			if (c != (array ? ']' : '}'))
				return false;
			depth--;
			i++;
		}
		if (s == S_AFTER && depth == 0)
			return skip_ws(p, n, i) == n;
	}
}

/* v1: the parts verbatim after the check, behind a table of little-endian offsets. */
static int encode_v1(const struct proto_ws_msg *msg, const char *channel, struct proto_buf *out,
                     struct proto_error *err)
{
	const struct proto_buf *parts[4] = {&msg->header, &msg->parent, &msg->metadata,
	                                    &msg->content};
	size_t count, table, total, o, chan_len = strlen(channel);
	unsigned char *buf;

	for (size_t i = 0; i < 4; i++)
		if (!text_is_one_object(parts[i]->data, parts[i]->len))
			return proto_error_set(err, EBADMSG, "%s is not one JSON object",
			                       part_names[i]);
	if (msg->n_buffers > SIZE_MAX / 8 - WS_V1_MIN_OFFSETS - 1)
		return proto_error_set(err, EMSGSIZE, "%zu buffers", msg->n_buffers);
	count = WS_V1_MIN_OFFSETS + msg->n_buffers;
	table = 8 * (count + 1);
	total = table + chan_len;
	for (size_t i = 0; i < 4 + msg->n_buffers; i++) {
		size_t len = i < 4 ? parts[i]->len : msg->buffers[i - 4].len;

		if (len > SIZE_MAX - total)
			return proto_error_set(err, EMSGSIZE, "message too large");
		total += len;
	}

	/* Plain malloc: the caller frees the frame with free(). */
	buf = malloc(total);
	if (!buf)
		return proto_error_set(err, ENOMEM, "out of memory");
	put_le64(buf, count);
	put_le64(buf + 8, table);
	memcpy(buf + table, channel, chan_len);
	o = table + chan_len;
	put_le64(buf + 16, o);
	for (size_t i = 0; i < 4 + msg->n_buffers; i++) {
		const struct proto_buf *p = i < 4 ? parts[i] : &msg->buffers[i - 4];

		if (p->len)
			memcpy(buf + o, p->data, p->len);
		o += p->len;
		put_le64(buf + 8 * (i + 3), o);
	}
	out->data = buf;
	out->len = total;
	return 0;
}

/*
 * Legacy: the JSON jupyter_server writes, {header, msg_id, msg_type, parent_header, metadata,
 * content, buffers: [], channel}, compact. With buffers it goes first in a binary frame, and
 * without the "buffers" key, as serialize_binary_message() pops it.
 */
static json_t *legacy_object(json_t *const parts[4], const char *channel, bool with_buffers)
{
	json_t *root = json_object();

	if (!root)
		return NULL;
	if (json_object_set(root, "header", parts[0]) < 0 ||
	    json_object_set(root, "msg_id", json_object_get(parts[0], "msg_id")) < 0 ||
	    json_object_set(root, "msg_type", json_object_get(parts[0], "msg_type")) < 0 ||
	    json_object_set(root, "parent_header", parts[1]) < 0 ||
	    json_object_set(root, "metadata", parts[2]) < 0 ||
	    json_object_set(root, "content", parts[3]) < 0 ||
	    (with_buffers && json_object_set_new(root, "buffers", json_array()) < 0) ||
	    json_object_set_new(root, "channel", json_string(channel)) < 0) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static int encode_legacy(const struct proto_ws_msg *msg, const char *channel, struct proto_buf *out,
                         bool *binary, struct proto_error *err)
{
	const struct proto_buf *src[4] = {&msg->header, &msg->parent, &msg->metadata,
	                                  &msg->content};
	json_t *parts[4] = {NULL, NULL, NULL, NULL};
	_cleanup_(json_decrefp) json_t *root = NULL;
	size_t json_len, table = 0, total, nbufs = 1 + msg->n_buffers;
	unsigned char *buf;
	int r = 0;

	for (size_t i = 0; i < 4 && r == 0; i++)
		r = proto__parse_object(src[i]->data, src[i]->len, part_names[i], &parts[i], err);
	if (r == 0 && !json_is_string(json_object_get(parts[0], "msg_id")))
		r = proto_error_set(err, EBADMSG, "header has no string msg_id");
	if (r == 0 && !json_is_string(json_object_get(parts[0], "msg_type")))
		r = proto_error_set(err, EBADMSG, "header has no string msg_type");
	if (r == 0 && !(root = legacy_object(parts, channel, !msg->n_buffers)))
		r = proto_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < 4; i++)
		json_decref(parts[i]);
	if (r < 0)
		return r;

	json_len = json_dumpb(root, NULL, 0, JSON_COMPACT);
	if (!json_len)
		return proto_error_set(err, ENOMEM, "out of memory");
	total = json_len;
	if (msg->n_buffers) {
		/* Every part's start must fit the u32 offsets: the last buffer's end need not. */
		if (nbufs >= UINT32_MAX / 4)
			return proto_error_set(err, EMSGSIZE, "%zu buffers", msg->n_buffers);
		table = 4 * (nbufs + 1);
		total = table + json_len;
		for (size_t i = 0; i < msg->n_buffers; i++) {
			if (total > UINT32_MAX || msg->buffers[i].len > SIZE_MAX - total)
				return proto_error_set(err, EMSGSIZE,
				                       "buffer %zu starts past 4 GiB", i);
			total += msg->buffers[i].len;
		}
	}

	/* Plain malloc: the caller frees the frame with free(). One more byte for a NUL. */
	buf = malloc(total + 1);
	if (!buf)
		return proto_error_set(err, ENOMEM, "out of memory");
	if (json_dumpb(root, (char *)buf + table, json_len, JSON_COMPACT) != json_len) {
		free(buf);
		return proto_error_set(err, ENOMEM, "out of memory");
	}
	if (msg->n_buffers) {
		size_t o = table + json_len;

		put_be32(buf, (uint32_t)nbufs);
		put_be32(buf + 4, (uint32_t)table);
		for (size_t i = 0; i < msg->n_buffers; i++) {
			put_be32(buf + 4 * (i + 2), (uint32_t)o);
			if (msg->buffers[i].len)
				memcpy(buf + o, msg->buffers[i].data, msg->buffers[i].len);
			o += msg->buffers[i].len;
		}
	}
	buf[total] = '\0';
	out->data = buf;
	out->len = total;
	*binary = msg->n_buffers > 0;
	return 0;
}

int proto_ws_encode(enum proto_ws_framing f, const struct proto_ws_msg *msg, struct proto_buf *out,
                    bool *binary, struct proto_error *err)
{
	out->data = NULL;
	out->len = 0;
	*binary = false;
	if ((unsigned int)msg->channel >= WS_CHANNEL_COUNT)
		return proto_error_set(err, EINVAL, "unknown channel %d", (int)msg->channel);
	if (f == PROTO_WS_V1) {
		int r = encode_v1(msg, channel_names[msg->channel], out, err);

		*binary = r == 0;
		return r;
	}
	return encode_legacy(msg, channel_names[msg->channel], out, binary, err);
}
