/*
 * UTF-8 helpers for captured output: hold back a character cut at a chunk's end, replace
 * invalid bytes with U+FFFD. No allocation.
 */
#include "proto_utf8.h"

#include <stdint.h>
#include <string.h>

size_t proto_utf8_complete_prefix(const unsigned char *buf, size_t len)
{
	/* Walk back over at most 3 continuation bytes to the lead byte of the last character. */
	for (size_t back = 1; back <= 4 && back <= len; back++) {
		unsigned char c = buf[len - back];
		size_t need;

		if (c >= 0x80 && c < 0xC0)
			continue; /* a continuation byte */
		if (c < 0xC2 || c > 0xF4)
			return len; /* ASCII, or a byte that starts no character */
		need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		return back < need ? len - back : len;
	}
	return len;
}

/* Length of the valid sequence at buf[0], or 0 when it is not one. */
static size_t proto_utf8_seq(const unsigned char *buf, size_t len)
{
	unsigned char c = buf[0];
	size_t need;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (need > len)
		return 0;
	for (size_t j = 1; j < need; j++) {
		if ((buf[j] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (buf[j] & 0x3F);
	}
	if (need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		return 0;
	if (need == 4 && (cp < 0x10000 || cp > 0x10FFFF))
		return 0;
	return need;
}

size_t proto_utf8_sanitize(const unsigned char *buf, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		size_t n = proto_utf8_seq(buf + i, len - i);

		if (n) {
			memcpy(out + o, buf + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return o;
}

bool proto_utf8_is_valid(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n;

		/* Output is mostly ASCII: skip it a word at a time. */
		for (uint64_t w; i + 8 <= len; i += 8) {
			memcpy(&w, buf + i, sizeof(w));
			if (w & UINT64_C(0x8080808080808080))
				break;
		}
		if (i == len)
			break;
		n = proto_utf8_seq(buf + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}
