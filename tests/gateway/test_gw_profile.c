/*
 * gw_profile: the built-in defaults, sizes, the JSON form and its errors, narrowing (a request
 * may lower a limit, never raise it) and the kernel's command line. Each test owns the suite's
 * profiles, cleared and leak-checked after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "gw_profile.h"
#include "testdata.h"

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

static struct gw_profile base, out;
static struct proto_error err;

static void teardown(void)
{
	gw_profile_clear(&base);
	gw_profile_clear(&out);
	test_check_leaks();
}

TestSuite(gw_profile, .fini = teardown);

/* Parses text as JSON (owned by the caller). */
static json_t *js(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	cr_assert(j, "bad test JSON %s: %s", text, jerr.text);
	return j;
}

/* Applies text over p with prefix; returns what gw_profile_apply_json returned. */
static int apply(struct gw_profile *p, const char *text, const char *prefix)
{
	json_t *j = js(text);
	int r;

	memset(&err, 0, sizeof(err));
	r = gw_profile_apply_json(p, j, prefix, &err);
	json_decref(j);
	return r;
}

static void expect_apply_error(const char *text, const char *want1, const char *want2)
{
	struct gw_profile p;

	gw_profile_defaults(&p, GW_PROFILE_STRICT);
	cr_expect_eq(apply(&p, text, "profiles.strict"), -EINVAL, "%s accepted", text);
	cr_expect(strstr(err.text, want1), "message \"%s\" lacks \"%s\"", err.text, want1);
	if (want2)
		cr_expect(strstr(err.text, want2), "message \"%s\" lacks \"%s\"", err.text, want2);
	gw_profile_clear(&p);
}

/* Narrows base by text (NULL: no request). */
static int narrow(const char *text)
{
	json_t *j = text ? js(text) : NULL;
	int r;

	memset(&err, 0, sizeof(err));
	r = gw_profile_narrow(&base, j, &out, &err);
	json_decref(j);
	return r;
}

static size_t argc_of(char **v)
{
	size_t n = 0;

	while (v[n])
		n++;
	return n;
}

/* The index of the first arg equal to s, or -1. */
static int arg_index(char **v, const char *s)
{
	for (int i = 0; v[i]; i++)
		if (!strcmp(v[i], s))
			return i;
	return -1;
}

/* --- defaults --- */

Test(gw_profile, defaults_are_the_contract_table)
{
	struct gw_profile p;

	gw_profile_defaults(&p, GW_PROFILE_STRICT);
	cr_expect_eq(p.memory, 100 * MIB);
	cr_expect_eq(p.cpu_time, 30);
	cr_expect_eq(p.wall_time, 30.0);
	cr_expect_eq(p.processes, 1);
	cr_expect_eq(p.threads, 8);
	cr_expect_eq(p.open_files, 64);
	cr_expect_eq(p.file_size, 16 * MIB);
	cr_expect_eq(p.disk, 16 * MIB);
	cr_expect_eq(p.output, 10 * MIB);
	cr_expect_not(p.network);
	cr_expect_null(p.read_only);
	cr_expect_null(p.allow_import);
	cr_expect_null(p.block_import);

	gw_profile_defaults(&p, GW_PROFILE_MODERATE);
	cr_expect_eq(p.memory, 512 * MIB);
	cr_expect_eq(p.cpu_time, 300);
	cr_expect_eq(p.wall_time, 300.0);
	cr_expect_eq(p.processes, 32);
	cr_expect_eq(p.threads, 32);
	cr_expect_eq(p.open_files, 256);
	cr_expect_eq(p.file_size, 128 * MIB);
	cr_expect_eq(p.disk, 256 * MIB);
	cr_expect_eq(p.output, 50 * MIB);

	gw_profile_defaults(&p, GW_PROFILE_PERMISSIVE);
	cr_expect_eq(p.memory, 2 * GIB);
	cr_expect_eq(p.cpu_time, 3600);
	cr_expect_eq(p.wall_time, 3600.0);
	cr_expect_eq(p.processes, 128);
	cr_expect_eq(p.threads, 128);
	cr_expect_eq(p.open_files, 1024);
	cr_expect_eq(p.file_size, 1 * GIB);
	cr_expect_eq(p.disk, 1 * GIB);
	cr_expect_eq(p.output, 100 * MIB);
	cr_expect_not(p.network, "permissive has network only when configured");

	gw_profile_defaults(&p, GW_PROFILE_CUSTOM);
	cr_expect_eq(p.kind, GW_PROFILE_CUSTOM);
	cr_expect_eq(p.memory, 512 * MIB, "custom is as moderate");
	cr_expect_eq(p.processes, 32);
}

Test(gw_profile, names_round_trip)
{
	for (int i = 0; i < GW_PROFILE_COUNT; i++)
		cr_expect_eq(gw_profile_kind_from_name(gw_profile_name((enum gw_profile_kind)i)),
		             i);
	cr_expect_eq(gw_profile_kind_from_name("none"), -EINVAL);
	cr_expect_eq(gw_profile_kind_from_name("Strict"), -EINVAL);
	cr_expect_eq(gw_profile_kind_from_name(""), -EINVAL);
}

/* --- sizes --- */

Test(gw_profile, sizes_take_units_and_fractions)
{
	static const struct {
		const char *text;
		size_t bytes;
	} ok[] = {
	        {"65536", 65536},
	        {"1", 1},
	        {"512K", 512 << 10},
	        {"512k", 512 << 10},
	        {"100MB", 100 * MIB},
	        {"100mb", 100 * MIB},
	        {"100MiB", 100 * MIB},
	        {"100M", 100 * MIB},
	        {"1.5GiB", 3 * GIB / 2},
	        {"1.5G", 3 * GIB / 2},
	        {"2GB", 2 * GIB},
	        {"1T", (size_t)1 << 40},
	        {".5M", MIB / 2},
	        {"1.0001K", 1024},
	        {"1.", 1},
	        {"0.5", 0}, /* 0: rounds down to nothing */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = 12345;
		int r = gw_profile_parse_size(ok[i].text, &n);

		if (ok[i].bytes == 0) {
			cr_expect_eq(r, -EINVAL, "%s rounds to 0 bytes", ok[i].text);
			continue;
		}
		cr_expect_eq(r, 0, "%s refused", ok[i].text);
		cr_expect_eq(n, ok[i].bytes, "%s = %zu, not %zu", ok[i].text, n, ok[i].bytes);
	}
}

Test(gw_profile, bad_sizes_are_refused)
{
	static const char *const bad[] = {
	        "",     "0",     "0MB", "-1", "+1",    "1 MB", "12Q", "M",
	        "1MBB", "1KiBx", "1e6", "2T", "1.5.2", "1i",   ".",   "99999999999999999999999"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 7;

		cr_expect_eq(gw_profile_parse_size(bad[i], &n), -EINVAL, "\"%s\" accepted", bad[i]);
		cr_expect_eq(n, 7, "\"%s\" changed the output", bad[i]);
	}
}

Test(gw_profile, sizes_and_seconds_print_as_people_read_them)
{
	static const struct {
		size_t bytes;
		const char *text;
	} cases[] = {
	        {100 * MIB, "100 MB"},     {3 * GIB / 2, "1.5 GB"}, {2 * GIB, "2 GB"},
	        {65536, "64 KB"},          {512, "512 bytes"},      {1, "1 byte"},
	        {(size_t)1 << 40, "1 TB"}, {10 * MIB, "10 MB"},     {1536, "1.5 KB"},
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_profile_format_size(cases[i].bytes, buf, sizeof(buf));
		cr_expect_str_eq(buf, cases[i].text);
	}
	gw_profile_format_seconds(30, buf, sizeof(buf));
	cr_expect_str_eq(buf, "30 s");
	gw_profile_format_seconds(0.5, buf, sizeof(buf));
	cr_expect_str_eq(buf, "0.5 s");
	gw_profile_format_seconds(3600, buf, sizeof(buf));
	cr_expect_str_eq(buf, "3600 s");
}

/* --- JSON --- */

Test(gw_profile, json_sets_every_key)
{
	gw_profile_defaults(&base, GW_PROFILE_PERMISSIVE);
	cr_assert_eq(apply(&base,
	                   "{\"memory\": \"1.5GiB\", \"cpu_time\": 60, \"wall_time\": 2.5,"
	                   " \"processes\": 4, \"threads\": 16, \"open_files\": 100,"
	                   " \"file_size\": 1048576, \"disk\": \"64MB\", \"output\": \"1K\","
	                   " \"read_only\": [\"/data\", \"/srv/sets\"], \"network\": true,"
	                   " \"allow_import\": [\"math\", \"numpy.linalg\"],"
	                   " \"block_import\": [\"pickle\"]}",
	                   "profiles.permissive"),
	             0, "%s", err.text);
	cr_expect_eq(base.memory, 3 * GIB / 2);
	cr_expect_eq(base.cpu_time, 60);
	cr_expect_eq(base.wall_time, 2.5);
	cr_expect_eq(base.processes, 4);
	cr_expect_eq(base.threads, 16);
	cr_expect_eq(base.open_files, 100);
	cr_expect_eq(base.file_size, MIB);
	cr_expect_eq(base.disk, 64 * MIB);
	cr_expect_eq(base.output, 1024);
	cr_expect(base.network);
	cr_assert(base.read_only);
	cr_expect_str_eq(base.read_only[0], "/data");
	cr_expect_str_eq(base.read_only[1], "/srv/sets");
	cr_expect_null(base.read_only[2]);
	cr_assert(base.allow_import);
	cr_expect_str_eq(base.allow_import[1], "numpy.linalg");
	cr_assert(base.block_import);
	cr_expect_str_eq(base.block_import[0], "pickle");
	/* Keys left out keep their value; null resets the allowlist; whole floats are fine. */
	cr_assert_eq(apply(&base, "{\"allow_import\": null, \"cpu_time\": 90.0}", NULL), 0, "%s",
	             err.text);
	cr_expect_null(base.allow_import);
	cr_expect_eq(base.cpu_time, 90);
	cr_expect_eq(base.processes, 4);
	/* An empty allowlist is not the same as none. */
	cr_assert_eq(apply(&base, "{\"allow_import\": []}", NULL), 0);
	cr_assert(base.allow_import);
	cr_expect_null(base.allow_import[0]);
	/* Duplicates are kept once. */
	cr_assert_eq(apply(&base, "{\"block_import\": [\"a\", \"b\", \"a\"]}", NULL), 0);
	cr_expect_str_eq(base.block_import[1], "b");
	cr_expect_null(base.block_import[2]);
}

Test(gw_profile, json_errors_name_the_key)
{
	expect_apply_error("{\"memroy\": 1}", "\"profiles.strict.memroy\"",
	                   "did you mean \"memory\"");
	expect_apply_error("{\"colour\": 1}", "\"profiles.strict.colour\"", "unknown key");
	expect_apply_error("{\"memory\": \"12Q\"}", "\"profiles.strict.memory\"",
	                   "expected a size");
	expect_apply_error("{\"memory\": 0}", "profiles.strict.memory", "1..1T");
	expect_apply_error("{\"memory\": -5}", "profiles.strict.memory", NULL);
	expect_apply_error("{\"memory\": 2199023255553}", "profiles.strict.memory", NULL);
	expect_apply_error("{\"memory\": true}", "profiles.strict.memory", NULL);
	expect_apply_error("{\"cpu_time\": 0.5}", "profiles.strict.cpu_time", "whole number");
	expect_apply_error("{\"cpu_time\": \"30\"}", "profiles.strict.cpu_time", NULL);
	expect_apply_error("{\"cpu_time\": 0}", "profiles.strict.cpu_time", NULL);
	expect_apply_error("{\"wall_time\": 0}", "profiles.strict.wall_time", "above 0");
	expect_apply_error("{\"wall_time\": -1}", "profiles.strict.wall_time", NULL);
	expect_apply_error("{\"wall_time\": 1e10}", "profiles.strict.wall_time", NULL);
	expect_apply_error("{\"processes\": 0}", "profiles.strict.processes", "integer 1..");
	expect_apply_error("{\"threads\": 2.5}", "profiles.strict.threads", NULL);
	expect_apply_error("{\"open_files\": 1000001}", "profiles.strict.open_files", NULL);
	expect_apply_error("{\"network\": 1}", "profiles.strict.network", "true or false");
	expect_apply_error("{\"read_only\": \"/data\"}", "profiles.strict.read_only", "array");
	expect_apply_error("{\"read_only\": [\"data\"]}", "profiles.strict.read_only",
	                   "item 0: expected an absolute path");
	expect_apply_error("{\"read_only\": [\"/a/../etc\"]}", "read_only", "item 0");
	expect_apply_error("{\"read_only\": [\"/a\", 3]}", "read_only", "item 1");
	expect_apply_error("{\"allow_import\": [\"os.\"]}", "allow_import", "module name");
	expect_apply_error("{\"allow_import\": [\"a,b\"]}", "allow_import", "module name");
	expect_apply_error("{\"allow_import\": [\"1abc\"]}", "allow_import", "module name");
	expect_apply_error("{\"allow_import\": \"math\"}", "allow_import", "null or an array");
	expect_apply_error("{\"block_import\": null}", "block_import", "array");
	expect_apply_error("[1]", "profiles.strict", "expected an object");
}

Test(gw_profile, json_lists_are_capped)
{
	json_t *obj = json_object(), *list = json_array();
	struct gw_profile p;

	for (int i = 0; i <= GW_PROFILE_LIST_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%d", i);
		json_array_append_new(list, json_string(name));
	}
	json_object_set_new(obj, "block_import", list);
	gw_profile_defaults(&p, GW_PROFILE_STRICT);
	cr_expect_eq(gw_profile_apply_json(&p, obj, NULL, &err), -EINVAL);
	cr_expect(strstr(err.text, "more than 512"), "%s", err.text);
	json_decref(obj);
	gw_profile_clear(&p);
}

Test(gw_profile, limits_json_holds_numbers)
{
	json_t *j;

	gw_profile_defaults(&base, GW_PROFILE_STRICT);
	base.wall_time = 2.5;
	j = gw_profile_limits_json(&base);
	cr_assert(j);
	cr_expect_eq(json_integer_value(json_object_get(j, "memory")), 100 * MIB);
	cr_expect_eq(json_integer_value(json_object_get(j, "cpu_time")), 30);
	cr_expect_eq(json_real_value(json_object_get(j, "wall_time")), 2.5);
	cr_expect_eq(json_integer_value(json_object_get(j, "processes")), 1);
	cr_expect_eq(json_integer_value(json_object_get(j, "output")), 10 * MIB);
	cr_expect_eq(json_object_size(j), 9);
	json_decref(j);

	base.wall_time = 30;
	j = gw_profile_json(&base);
	cr_assert(j);
	cr_expect_str_eq(json_string_value(json_object_get(j, "profile")), "strict");
	cr_expect(json_is_integer(json_object_get(json_object_get(j, "limits"), "wall_time")),
	          "whole seconds as an integer");
	cr_expect(json_is_false(json_object_get(j, "network")));
	cr_expect(json_is_null(json_object_get(j, "allow_import")));
	cr_expect_eq(json_array_size(json_object_get(j, "read_only")), 0);
	json_decref(j);
}

/* --- narrowing --- */

Test(gw_profile, no_request_is_the_profile_itself)
{
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(apply(&base, "{\"read_only\": [\"/data\"], \"block_import\": [\"x\"]}", NULL),
	             0);
	cr_assert_eq(narrow(NULL), 0, "%s", err.text);
	cr_expect_eq(out.memory, base.memory);
	cr_expect_eq(out.wall_time, base.wall_time);
	cr_expect_str_eq(out.read_only[0], "/data");
	cr_expect_str_eq(out.block_import[0], "x");
	cr_expect_neq(out.read_only, base.read_only, "a copy, not shared");
	cr_assert_eq(narrow("{}"), 0);
	cr_expect_eq(out.processes, base.processes);
}

Test(gw_profile, a_request_may_lower_every_limit)
{
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(narrow("{\"memory\": \"64MB\", \"cpu_time\": 10, \"wall_time\": 5,"
	                    " \"processes\": 1, \"threads\": 2, \"open_files\": 32,"
	                    " \"file_size\": \"1MB\", \"disk\": \"2MB\", \"output\": \"1KB\","
	                    " \"network\": false}"),
	             0, "%s", err.text);
	cr_expect_eq(out.memory, 64 * MIB);
	cr_expect_eq(out.cpu_time, 10);
	cr_expect_eq(out.wall_time, 5.0);
	cr_expect_eq(out.processes, 1);
	cr_expect_eq(out.threads, 2);
	cr_expect_eq(out.open_files, 32);
	cr_expect_eq(out.file_size, MIB);
	cr_expect_eq(out.disk, 2 * MIB);
	cr_expect_eq(out.output, 1024);
	cr_expect_eq(out.kind, GW_PROFILE_MODERATE);
	/* Equal is not above. */
	cr_assert_eq(narrow("{\"memory\": \"512MB\", \"wall_time\": 300}"), 0, "%s", err.text);
}

Test(gw_profile, a_request_never_raises_a_limit)
{
	static const struct {
		const char *request, *key, *said;
	} cases[] = {
	        {"{\"memory\": \"513MB\"}", "\"memory\"",
	         "513 MB is above the moderate profile's "
	         "limit of 512 MB"},
	        {"{\"cpu_time\": 301}", "\"cpu_time\"", "301 s"},
	        {"{\"wall_time\": 300.5}", "\"wall_time\"", "300.5 s"},
	        {"{\"processes\": 33}", "\"processes\"", "33 is above"},
	        {"{\"threads\": 33}", "\"threads\"", "limit of 32"},
	        {"{\"open_files\": 257}", "\"open_files\"", NULL},
	        {"{\"file_size\": \"129MB\"}", "\"file_size\"", NULL},
	        {"{\"disk\": \"1GB\"}", "\"disk\"", "1 GB"},
	        {"{\"output\": \"51MB\"}", "\"output\"", NULL},
	        {"{\"memory\": \"1MB\", \"threads\": 64}", "\"threads\"", NULL},
	};

	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(narrow(cases[i].request), -EPERM, "%s accepted", cases[i].request);
		cr_expect(strstr(err.text, cases[i].key), "\"%s\" lacks %s", err.text,
		          cases[i].key);
		if (cases[i].said)
			cr_expect(strstr(err.text, cases[i].said), "\"%s\" lacks \"%s\"", err.text,
			          cases[i].said);
		cr_expect_eq(out.memory, 0, "nothing given on a refusal");
	}
}

Test(gw_profile, a_request_cannot_turn_the_network_on)
{
	gw_profile_defaults(&base, GW_PROFILE_PERMISSIVE);
	cr_expect_eq(narrow("{\"network\": true}"), -EPERM);
	cr_expect(strstr(err.text, "network"), "%s", err.text);
	base.network = true;
	cr_assert_eq(narrow("{\"network\": true}"), 0);
	cr_expect(out.network);
	cr_assert_eq(narrow("{\"network\": false}"), 0);
	cr_expect_not(out.network);
	cr_assert_eq(narrow(NULL), 0);
	cr_expect(out.network);
}

Test(gw_profile, read_only_directories_only_from_the_profile)
{
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(apply(&base, "{\"read_only\": [\"/data\", \"/sets\"]}", NULL), 0);
	cr_assert_eq(narrow("{\"read_only\": [\"/sets\"]}"), 0, "%s", err.text);
	cr_expect_str_eq(out.read_only[0], "/sets");
	cr_expect_null(out.read_only[1]);
	cr_assert_eq(narrow("{\"read_only\": []}"), 0);
	cr_expect(!out.read_only || !out.read_only[0]);
	cr_expect_eq(narrow("{\"read_only\": [\"/etc\"]}"), -EPERM);
	cr_expect(strstr(err.text, "/etc"), "%s", err.text);
}

Test(gw_profile, the_allowlist_only_shrinks)
{
	gw_profile_defaults(&base, GW_PROFILE_STRICT);
	/* No allowlist of the gateway's own: the request's list goes to the kernel as it is. */
	cr_assert_eq(narrow("{\"allow_import\": [\"math\", \"json\"]}"), 0, "%s", err.text);
	cr_assert(out.allow_import);
	cr_expect_str_eq(out.allow_import[0], "math");
	cr_expect_str_eq(out.allow_import[1], "json");
	/* With one: the intersection, never more. */
	cr_assert_eq(apply(&base, "{\"allow_import\": [\"math\", \"re\"]}", NULL), 0);
	cr_assert_eq(narrow("{\"allow_import\": [\"math\", \"socket\"]}"), 0, "%s", err.text);
	cr_expect_str_eq(out.allow_import[0], "math");
	cr_expect_null(out.allow_import[1], "socket is not in the profile's list");
	/* null cannot remove the profile's allowlist. */
	cr_assert_eq(narrow("{\"allow_import\": null}"), 0);
	cr_assert(out.allow_import);
	cr_expect_str_eq(out.allow_import[1], "re");
	cr_assert_eq(narrow(NULL), 0);
	cr_expect_str_eq(out.allow_import[0], "math");
}

Test(gw_profile, the_blocklist_only_grows)
{
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(apply(&base, "{\"block_import\": [\"pickle\"]}", NULL), 0);
	cr_assert_eq(narrow("{\"block_import\": [\"json\", \"pickle\"]}"), 0, "%s", err.text);
	cr_expect_str_eq(out.block_import[0], "pickle");
	cr_expect_str_eq(out.block_import[1], "json");
	cr_expect_null(out.block_import[2]);
	cr_assert_eq(narrow("{\"block_import\": []}"), 0);
	cr_expect_str_eq(out.block_import[0], "pickle", "an empty list removes nothing");
}

Test(gw_profile, a_malformed_request_is_einval)
{
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_expect_eq(narrow("{\"memory\": \"lots\"}"), -EINVAL);
	cr_expect(strstr(err.text, "\"memory\""), "%s", err.text);
	cr_expect_eq(narrow("{\"bogus\": 1}"), -EINVAL);
	cr_expect_eq(narrow("[]"), -EINVAL);
}

/* --- the kernel's command line --- */

Test(gw_profile, argv_of_the_defaults)
{
	static const char *const want[] = {
	        "/bin/sandcell-kernel",
	        "-f",
	        "/run/k.json",
	        "--profile",
	        "strict",
	        "--memory",
	        "104857600",
	        "--cpu-time",
	        "30",
	        "--processes",
	        "1",
	        "--threads",
	        "8",
	        "--open-files",
	        "64",
	        "--file-size",
	        "16777216",
	        "--disk",
	        "16777216",
	};
	char **v;

	gw_profile_defaults(&base, GW_PROFILE_STRICT);
	v = gw_profile_argv(&base, "/bin/sandcell-kernel", "/run/k.json", false);
	cr_assert(v);
	cr_assert_eq(argc_of(v), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_str_eq(v[i], want[i]);
	gw_profile_argv_free(v);
}

Test(gw_profile, argv_of_every_option)
{
	char **v;
	int i;

	gw_profile_defaults(&base, GW_PROFILE_CUSTOM);
	cr_assert_eq(apply(&base,
	                   "{\"read_only\": [\"/data\", \"/sets\"], \"network\": true,"
	                   " \"allow_import\": [\"math\", \"json\"], \"block_import\": [\"re\"]}",
	                   NULL),
	             0);
	v = gw_profile_argv(&base, "k", "c", true);
	cr_assert(v);
	cr_expect_str_eq(v[arg_index(v, "--profile") + 1], "custom");
	i = arg_index(v, "--read-only");
	cr_assert_geq(i, 0);
	cr_expect_str_eq(v[i + 1], "/data");
	cr_expect_str_eq(v[i + 2], "--read-only");
	cr_expect_str_eq(v[i + 3], "/sets");
	cr_expect_geq(arg_index(v, "--network"), 0);
	cr_expect_str_eq(v[arg_index(v, "--allow-import") + 1], "math,json");
	cr_expect_str_eq(v[arg_index(v, "--block-import") + 1], "re");
	cr_expect_str_eq(v[argc_of(v) - 1], "--allow-weaker-sandbox");
	gw_profile_argv_free(v);

	/* No network, no lists, no weaker: none of those flags. */
	gw_profile_clear(&base);
	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	v = gw_profile_argv(&base, "k", "c", false);
	cr_assert(v);
	cr_expect_eq(arg_index(v, "--network"), -1);
	cr_expect_eq(arg_index(v, "--read-only"), -1);
	cr_expect_eq(arg_index(v, "--allow-import"), -1);
	cr_expect_eq(arg_index(v, "--block-import"), -1);
	cr_expect_eq(arg_index(v, "--allow-weaker-sandbox"), -1);
	gw_profile_argv_free(v);

	/* An empty allowlist is passed (nothing may be imported), not dropped. */
	cr_assert_eq(apply(&base, "{\"allow_import\": []}", NULL), 0);
	v = gw_profile_argv(&base, "k", "c", false);
	cr_expect_str_eq(v[arg_index(v, "--allow-import") + 1], "");
	gw_profile_argv_free(v);
}

Test(gw_profile, narrowed_argv_carries_the_lower_limits)
{
	char **v;

	gw_profile_defaults(&base, GW_PROFILE_PERMISSIVE);
	cr_assert_eq(narrow("{\"memory\": \"256MB\", \"processes\": 2, \"block_import\": "
	                    "[\"socket\"]}"),
	             0, "%s", err.text);
	v = gw_profile_argv(&out, "k", "c", false);
	cr_assert(v);
	cr_expect_str_eq(v[arg_index(v, "--memory") + 1], "268435456");
	cr_expect_str_eq(v[arg_index(v, "--processes") + 1], "2");
	cr_expect_str_eq(v[arg_index(v, "--cpu-time") + 1], "3600", "the rest as the profile");
	cr_expect_str_eq(v[arg_index(v, "--block-import") + 1], "socket");
	gw_profile_argv_free(v);
}

Test(gw_profile, copy_is_deep_and_clear_is_idempotent)
{
	struct gw_profile c = {0};

	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(apply(&base, "{\"read_only\": [\"/d\"], \"allow_import\": [\"m\"]}", NULL), 0);
	cr_assert_eq(gw_profile_copy(&c, &base), 0);
	cr_expect_neq(c.read_only, base.read_only);
	cr_expect_str_eq(c.read_only[0], "/d");
	cr_expect_str_eq(c.allow_import[0], "m");
	cr_expect_null(c.block_import);
	gw_profile_clear(&c);
	gw_profile_clear(&c);
	cr_expect_null(c.read_only);
}

Test(gw_profile, edit_distance_for_suggestions)
{
	cr_expect_eq(gw__edit_distance("memroy", "memory"), 2);
	cr_expect_eq(gw__edit_distance("", "abc"), 3);
	cr_expect_eq(gw__edit_distance("same", "same"), 0);
}

Test(gw_profile, command_narrows_then_builds_the_line)
{
	json_t *lower = js("{\"memory\": \"64MB\", \"wall_time\": 5}");
	json_t *higher = js("{\"memory\": \"1GB\"}");
	char **v = NULL;

	gw_profile_defaults(&base, GW_PROFILE_MODERATE);
	cr_assert_eq(gw_profile_command(&base, lower, "k", "c", false, &out, &v, &err), 0, "%s",
	             err.text);
	cr_assert(v);
	cr_expect_str_eq(v[arg_index(v, "--memory") + 1], "67108864");
	cr_expect_eq(out.wall_time, 5.0, "the gateway's own limits are in the profile");
	gw_profile_argv_free(v);

	cr_expect_eq(gw_profile_command(&base, higher, "k", "c", false, &out, &v, &err), -EPERM);
	cr_expect_null(v, "no command line for a refused request");
	cr_expect_eq(out.memory, 0);
	cr_expect(strstr(err.text, "1 GB is above the moderate profile's limit of 512 MB"), "%s",
	          err.text);

	cr_assert_eq(gw_profile_command(&base, NULL, "k", "c", true, &out, &v, &err), 0);
	cr_expect_str_eq(v[arg_index(v, "--memory") + 1], "536870912");
	cr_expect_str_eq(v[argc_of(v) - 1], "--allow-weaker-sandbox");
	gw_profile_argv_free(v);
	json_decref(lower);
	json_decref(higher);
}
