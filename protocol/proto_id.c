/*
 * Message identifiers and timestamps: version-4 UUIDs from getrandom(2) and UTC dates with
 * microseconds from CLOCK_REALTIME. Writes into caller buffers; allocates nothing.
 */
#include "proto_id.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "proto_internal.h"

/* Fills buf from the kernel's CSPRNG, retrying short reads and signals. */
static int fill_random(unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = getrandom(buf + got, len - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int proto_id_uuid(char out[PROTO_UUID_LEN + 1])
{
	unsigned char b[16];
	char *p = out;
	int r;

	r = fill_random(b, sizeof(b));
	if (r < 0)
		return r;
	/* RFC 4122 §4.4: version 4 in the high nibble of byte 6, variant 10xx in byte 8. */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);

	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		proto__hex_encode(&b[i], 1, p);
		p += 2;
	}
	*p = '\0';
	return 0;
}

/* Writes v as exactly n decimal digits (v is reduced modulo 10^n) and returns the end. */
static char *put_digits(char *p, unsigned long v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

void proto_id_date_now(char out[PROTO_DATE_LEN + 1])
{
	struct timespec ts = {0};
	struct tm tm = {0};
	char *p = out;
	long year;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* The fixed-width format has four year digits; clamp rather than overflow. */
	year = (long)tm.tm_year + 1900;
	if (year < 0)
		year = 0;
	if (year > 9999)
		year = 9999;

	p = put_digits(p, (unsigned long)year, 4);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned long)tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned long)(ts.tv_nsec / 1000), 6);
	*p++ = 'Z';
	*p = '\0';
}
