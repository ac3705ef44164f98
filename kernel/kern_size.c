/*
 * Sizes as people write them ("100MB", "1.5GiB") and as error messages print them ("100 MB").
 * Every unit is a power of 1024, as in the gateway's configuration.
 */
#include "kern_size.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

int kern_size_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		int shift;
	} units[] = {
	        {"", 0},     {"b", 0},   {"k", 10},   {"kb", 10},  {"kib", 10},
	        {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},   {"gb", 30},
	        {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40},
	};
	uint64_t whole = 0, frac = 0, frac_div = 1;
	const char *p = s;

	if (!s || !(*p >= '0' && *p <= '9'))
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > KERN_SIZE_MAX)
			return -EINVAL;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (frac_div < UINT64_C(1000000)) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t v;

		if (strcasecmp(p, units[i].suffix) != 0)
			continue;
		if (whole > (KERN_SIZE_MAX >> units[i].shift))
			return -EINVAL;
		v = (whole << units[i].shift) + ((frac << units[i].shift) / frac_div);
		if (v > KERN_SIZE_MAX)
			return -EINVAL;
		*out = v;
		return 0;
	}
	return -EINVAL;
}

void kern_size_format(uint64_t bytes, char *buf, size_t size)
{
	static const struct {
		int shift;
		const char *name;
	} units[] = {{40, "TB"}, {30, "GB"}, {20, "MB"}, {10, "KB"}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t unit = UINT64_C(1) << units[i].shift;

		if (bytes < unit)
			continue;
		if (bytes % unit == 0) {
			snprintf(buf, size, "%" PRIu64 " %s", bytes / unit, units[i].name);
			return;
		}
		if (((bytes % unit) * 10) % unit == 0 || bytes / unit >= 10) {
			snprintf(buf, size, "%.1f %s", (double)bytes / (double)unit, units[i].name);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64 " bytes", bytes);
}
