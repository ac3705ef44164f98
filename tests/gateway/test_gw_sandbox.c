/*
 * gw_sandbox: the probe against fake kernels (shell scripts written here: a good report, a
 * failure, garbage, a hang, a flood), each profile's verdict, and the model of GET
 * /api/sandbox and --check-sandbox. Each test owns its scripts (removed at teardown).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "gw_sandbox.h"
#include "testdata.h"

static struct gw_config cfg;
static char scripts[4][64];
static size_t n_scripts;
static json_t *report, *model;
static char why[512];

static void setup(void)
{
	cr_assert_eq(gw_config_defaults(&cfg), 0);
}

static void teardown(void)
{
	json_decref(report);
	json_decref(model);
	report = model = NULL;
	gw_config_free(&cfg);
	for (size_t i = 0; i < n_scripts; i++)
		unlink(scripts[i]);
	n_scripts = 0;
	test_check_leaks();
}

TestSuite(gw_sandbox, .init = setup, .fini = teardown);

/* A fake sandcell-kernel: an executable /bin/sh script with body. Returns its path. */
static const char *fake_kernel(const char *body)
{
	char *path = scripts[n_scripts];
	FILE *f;
	int fd;

	cr_assert_lt(n_scripts, sizeof(scripts) / sizeof(scripts[0]));
	snprintf(path, sizeof(scripts[0]), "/tmp/gwsandbox-test-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	n_scripts++;
	f = fdopen(fd, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, 0700), 0);
	return path;
}

#define LAYERS                                                                              \
	"\"layers\": [{\"name\": \"user namespace\", \"active\": true, \"detail\": \"x\"}," \
	" {\"name\": \"seccomp\", \"active\": false, \"detail\": \"not built in\"}]"

/* A report where strict lacks seccomp and the rest can run. */
static const char good_report[] =
        "echo '{\"host\": {\"kernel\": \"6.1\", \"root\": false, \"cgroup\": \"v2\"}, " LAYERS
        ", \"profiles\": {\"strict\": {\"ok\": false, \"missing\": [\"seccomp\", \"landlock\"]},"
        " \"moderate\": {\"ok\": true, \"missing\": []},"
        " \"permissive\": {\"ok\": true, \"missing\": []}}}'\n"
        "test \"$1 $2\" = '--check-sandbox --json' || exit 9\nexit 1";

Test(gw_sandbox, probe_reads_the_report)
{
	char missing[128];

	report = gw_sandbox_probe(fake_kernel(good_report), 5, why, sizeof(why));
	cr_assert(report, "%s", why);
	cr_expect_eq(json_array_size(json_object_get(report, "layers")), 2);
	cr_expect_not(gw_sandbox_profile_ok(report, GW_PROFILE_STRICT, missing, sizeof(missing)));
	cr_expect_str_eq(missing, "seccomp, landlock");
	cr_expect(gw_sandbox_profile_ok(report, GW_PROFILE_MODERATE, missing, sizeof(missing)));
	cr_expect_str_eq(missing, "");
	cr_expect(gw_sandbox_profile_ok(report, GW_PROFILE_CUSTOM, missing, sizeof(missing)),
	          "custom is judged as moderate when the report has no custom entry");
	/* A short buffer is cut, never overrun. */
	cr_expect_not(gw_sandbox_profile_ok(report, GW_PROFILE_STRICT, missing, 5));
	cr_expect_leq(strlen(missing), 4);
}

Test(gw_sandbox, no_report_lets_the_kernel_decide)
{
	char missing[16] = "x";

	cr_expect(gw_sandbox_profile_ok(NULL, GW_PROFILE_STRICT, missing, sizeof(missing)));
	cr_expect_str_eq(missing, "");
}

Test(gw_sandbox, a_failing_check_says_why)
{
	report = gw_sandbox_probe(fake_kernel("echo 'sandcell-kernel: unknown option' >&2; "
	                                      "echo 'second line' >&2; exit 2"),
	                          5, why, sizeof(why));
	cr_expect_null(report);
	cr_expect(strstr(why, "exited with status 2: sandcell-kernel: unknown option"), "%s", why);
	cr_expect_null(strstr(why, "second line"), "%s", why);
}

Test(gw_sandbox, garbage_is_not_a_report)
{
	report = gw_sandbox_probe(fake_kernel("echo 'not json'"), 5, why, sizeof(why));
	cr_expect_null(report);
	cr_expect(strstr(why, "no valid report"), "%s", why);
	report = gw_sandbox_probe(fake_kernel("echo '{\"layers\": [], \"profiles\": "
	                                      "{\"strict\": {\"ok\": \"yes\"}}}'"),
	                          5, why, sizeof(why));
	cr_expect_null(report, "ok must be a boolean");
	report = gw_sandbox_probe(fake_kernel("echo '[1, 2]'"), 5, why, sizeof(why));
	cr_expect_null(report);
}

Test(gw_sandbox, a_hung_check_is_killed)
{
	report = gw_sandbox_probe(fake_kernel("exec sleep 30"), 0.3, why, sizeof(why));
	cr_expect_null(report);
	cr_expect(strstr(why, "did not finish"), "%s", why);
}

Test(gw_sandbox, a_flood_is_cut_off)
{
	report = gw_sandbox_probe(fake_kernel("exec yes '{}'"), 5, why, sizeof(why));
	cr_expect_null(report);
	cr_expect(strstr(why, "more than 1048576 bytes"), "%s", why);
}

Test(gw_sandbox, a_missing_binary_is_reported)
{
	report = gw_sandbox_probe("/nonexistent/sandcell-kernel", 5, why, sizeof(why));
	cr_expect_null(report);
	cr_expect(strstr(why, "status 127"), "%s", why);
}

Test(gw_sandbox, model_adds_each_profile_limits)
{
	const json_t *profiles, *strict;

	report = gw_sandbox_probe(fake_kernel(good_report), 5, why, sizeof(why));
	cr_assert(report, "%s", why);
	model = gw_sandbox_model(&cfg, report, NULL);
	cr_assert(model);
	cr_expect_str_eq(json_string_value(json_object_get(model, "default_profile")), "moderate");
	cr_expect(json_is_false(json_object_get(model, "allow_weaker_sandbox")));
	cr_expect_str_eq(
	        json_string_value(json_object_get(json_object_get(model, "host"), "kernel")),
	        "6.1");
	cr_expect_eq(json_array_size(json_object_get(model, "layers")), 2);
	cr_expect_null(json_object_get(model, "error"));
	profiles = json_object_get(model, "profiles");
	cr_expect_eq(json_object_size(profiles), 3, "no custom unless configured");
	strict = json_object_get(profiles, "strict");
	cr_expect(json_is_false(json_object_get(strict, "ok")));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(strict, "missing"), 0)),
	                 "seccomp");
	cr_expect_eq(
	        json_integer_value(json_object_get(json_object_get(strict, "limits"), "memory")),
	        100 << 20);
	cr_expect_str_eq(json_string_value(json_object_get(strict, "kernelspec")),
	                 "sandcell-strict");
	cr_expect(json_is_true(json_object_get(json_object_get(profiles, "moderate"), "ok")));
	cr_expect_not(gw_sandbox_model_ok(model));

	/* A configured custom profile is listed (judged as moderate). */
	cfg.custom_profile = true;
	cfg.profiles[GW_PROFILE_CUSTOM].memory = 1 << 20;
	json_decref(model);
	model = gw_sandbox_model(&cfg, report, NULL);
	cr_assert(model);
	profiles = json_object_get(model, "profiles");
	cr_expect(json_is_true(json_object_get(json_object_get(profiles, "custom"), "ok")));
	cr_expect_eq(
	        json_integer_value(json_object_get(
	                json_object_get(json_object_get(profiles, "custom"), "limits"), "memory")),
	        1 << 20);
}

Test(gw_sandbox, model_without_a_report_says_why)
{
	model = gw_sandbox_model(&cfg, NULL, "it broke");
	cr_assert(model);
	cr_expect_str_eq(json_string_value(json_object_get(model, "error")), "it broke");
	cr_expect(json_is_null(json_object_get(model, "host")));
	cr_expect_eq(json_array_size(json_object_get(model, "layers")), 0);
	cr_expect(json_is_null(json_object_get(
	        json_object_get(json_object_get(model, "profiles"), "strict"), "ok")));
	cr_expect_not(gw_sandbox_model_ok(model));
}

Test(gw_sandbox, a_good_report_is_ok)
{
	report = gw_sandbox_probe(
	        fake_kernel("echo '{\"layers\": [], \"profiles\": {\"strict\": {\"ok\": true},"
	                    " \"moderate\": {\"ok\": true}, \"permissive\": {\"ok\": true}}}'"),
	        5, why, sizeof(why));
	cr_assert(report, "%s", why);
	model = gw_sandbox_model(&cfg, report, NULL);
	cr_expect(gw_sandbox_model_ok(model));
}

Test(gw_sandbox, print_names_what_is_missing)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	report = gw_sandbox_probe(fake_kernel(good_report), 5, why, sizeof(why));
	cr_assert(report, "%s", why);
	model = gw_sandbox_model(&cfg, report, NULL);
	cr_assert(out);
	gw_sandbox_print(out, model);
	fclose(out);
	cr_expect(strstr(text, "strict      MISSING"), "%s", text);
	cr_expect(strstr(text, "lacks: seccomp, landlock"), "%s", text);
	cr_expect(strstr(text, "--allow-weaker-sandbox"), "%s", text);
	cr_expect(strstr(text, "NO   seccomp"), "%s", text);
	cr_expect(strstr(text, "memory 100 MB"), "%s", text);
	cr_expect(strstr(text, "Default profile: moderate"), "%s", text);
	for (const char *line = text; *line;) {
		size_t n = strcspn(line, "\n");

		cr_expect(n == 0 || line[n - 1] != ' ', "trailing space: %.*s", (int)n, line);
		line += n + (line[n] == '\n');
	}
	free(text);
}
