/*
 * proto_id: version-4 UUIDs and microsecond UTC dates in the exact layouts clients parse.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "proto_id.h"
#include "testdata.h"

TestSuite(proto_id, .fini = test_check_leaks);

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

Test(proto_id, uuid_has_the_version4_layout)
{
	for (int round = 0; round < 100; round++) {
		char id[PROTO_UUID_LEN + 1];

		memset(id, '?', sizeof(id));
		cr_assert_eq(proto_id_uuid(id), 0);
		cr_assert_eq(strlen(id), PROTO_UUID_LEN);
		for (int i = 0; i < PROTO_UUID_LEN; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				cr_assert_eq(id[i], '-', "%s", id);
			else
				cr_assert(is_lower_hex(id[i]), "%s", id);
		}
		cr_assert_eq(id[14], '4', "version nibble in %s", id);
		cr_assert(strchr("89ab", id[19]), "variant nibble in %s", id);
	}
}

Test(proto_id, uuids_do_not_repeat)
{
	char a[PROTO_UUID_LEN + 1], b[PROTO_UUID_LEN + 1];

	cr_assert_eq(proto_id_uuid(a), 0);
	cr_assert_eq(proto_id_uuid(b), 0);
	cr_expect_str_neq(a, b);
}

Test(proto_id, date_has_iso8601_layout_with_microseconds)
{
	static const char layout[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	char d[PROTO_DATE_LEN + 1];

	memset(d, '?', sizeof(d));
	proto_id_date_now(d);
	cr_assert_eq(strlen(d), PROTO_DATE_LEN, "%s", d);
	cr_assert_eq(sizeof(layout) - 1, PROTO_DATE_LEN);
	for (int i = 0; i < PROTO_DATE_LEN; i++) {
		if (layout[i] == 'd')
			cr_expect(isdigit((unsigned char)d[i]), "position %d of %s", i, d);
		else
			cr_expect_eq(d[i], layout[i], "position %d of %s", i, d);
	}
}

Test(proto_id, date_is_the_current_utc_time)
{
	char d[PROTO_DATE_LEN + 1];
	struct tm tm = {0};
	time_t before = time(NULL), parsed, after;
	const char *end;

	proto_id_date_now(d);
	after = time(NULL);
	end = strptime(d, "%Y-%m-%dT%H:%M:%S", &tm);
	cr_assert(end && *end == '.', "%s", d);
	parsed = timegm(&tm);
	cr_expect(parsed >= before && parsed <= after, "%s is not now (UTC)", d);
}
