/*
 * gw_config: defaults, each source (file, environment, command line) and their precedence,
 * value syntax and ranges, unknown names, error messages, --help and --version. Each test owns
 * the suite's one struct gw_config: set up with the defaults, freed and leak-checked after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "gw_config.h"
#include "testdata.h"

static struct gw_config cfg;
static struct proto_error err;
static enum gw_config_action action;
static char *out_text;
static char temp_paths[16][64];
static size_t n_temp;

static void setup(void)
{
	cr_assert_eq(gw_config_defaults(&cfg), 0);
}

static void teardown(void)
{
	gw_config_free(&cfg);
	free(out_text);
	out_text = NULL;
	for (size_t i = 0; i < n_temp; i++)
		unlink(temp_paths[i]);
	test_check_leaks();
}

TestSuite(gw_config, .init = setup, .fini = teardown);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE      ((const char *const[]){NULL})

/* An owned, writable copy of a NULL-terminated list, with prefix first when not NULL. */
static char **dupv(const char *prefix, const char *const *v)
{
	size_t n = 0;
	char **copy;

	while (v[n])
		n++;
	copy = calloc(n + 2, sizeof(*copy));
	cr_assert(copy);
	for (size_t i = 0, j = 0; i <= n; i++) {
		const char *s = i == 0 ? prefix : v[i - 1];

		if (!s)
			continue;
		copy[j] = strdup(s);
		cr_assert(copy[j++]);
	}
	return copy;
}

static void freev(char **v)
{
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Runs gw_config_load over cfg with "sandcell" + args and env; keeps what it printed. */
static int load(const char *const *args, const char *const *env)
{
	char **argv = dupv("sandcell", args), **envp = dupv(NULL, env);
	size_t out_len = 0;
	FILE *out;
	int argc = 0, r;

	while (argv[argc])
		argc++;
	free(out_text);
	out_text = NULL;
	out = open_memstream(&out_text, &out_len);
	cr_assert(out);
	memset(&err, 0, sizeof(err));
	action = (enum gw_config_action) - 1;
	r = gw_config_load(&cfg, argc, argv, envp, out, &action, &err);
	fclose(out);
	freev(argv);
	freev(envp);
	return r;
}

/* Back to the defaults between cases of one test. */
static void reset(void)
{
	gw_config_free(&cfg);
	cr_assert_eq(gw_config_defaults(&cfg), 0);
}

static void expect_ok(const char *const *args, const char *const *env)
{
	int r = load(args, env);

	cr_assert_eq(r, 0, "load failed (%d): %s", r, err.text);
	cr_assert_eq(action, GW_CONFIG_RUN);
}

/* Expects -EINVAL with every one of the NULL-terminated substrings in the message. */
static void expect_error_v(const char *const *args, const char *const *env, const char *const *want)
{
	int r = load(args, env);

	cr_assert_eq(r, -EINVAL, "expected -EINVAL, got %d (%s); first arg %s", r, err.text,
	             args[0] ? args[0] : "(none)");
	for (; *want; want++)
		cr_expect(strstr(err.text, *want), "message \"%s\" does not mention \"%s\"",
		          err.text, *want);
}

#define expect_error(args, env, ...) expect_error_v(args, env, ARGS(__VA_ARGS__))

/* Writes content to a new temporary file, removed at teardown; returns its path. */
static const char *temp_file(const char *content, size_t len)
{
	char *path;
	FILE *f;
	int fd;

	cr_assert_lt(n_temp, sizeof(temp_paths) / sizeof(temp_paths[0]));
	path = temp_paths[n_temp];
	snprintf(path, sizeof(temp_paths[0]), "/tmp/gwconfig-test-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	n_temp++;
	f = fdopen(fd, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(content, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return path;
}

static const char *temp_json(const char *json)
{
	return temp_file(json, strlen(json));
}

/* Loads a config file holding json; returns what gw_config_load returned. */
static int load_file(const char *json)
{
	return load(ARGS("--config", temp_json(json)), NONE);
}

static size_t count_origins(void)
{
	size_t n = 0;

	cr_assert(cfg.allow_origins, "allow_origins is never NULL");
	while (cfg.allow_origins[n])
		n++;
	return n;
}

static void expect_origins(const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	cr_assert_eq(count_origins(), n);
	for (size_t i = 0; i < n; i++)
		cr_expect_str_eq(cfg.allow_origins[i], want[i]);
}

/* --- defaults --- */

Test(gw_config, defaults_are_the_documented_ones)
{
	cr_expect_str_eq(cfg.ip, "127.0.0.1");
	cr_expect_eq(cfg.port, 8888);
	cr_expect_null(cfg.token);
	cr_expect_str_eq(cfg.base_url, "/");
	cr_expect_eq(count_origins(), 0);
	cr_expect_null(cfg.kernel_binary);
	cr_expect_null(cfg.runtime_dir);
	cr_expect_str_eq(cfg.default_kernel, "sandcell");
	cr_expect_eq(cfg.max_kernels, 64);
	cr_expect_eq(cfg.kernel_start_timeout, 30.0);
	cr_expect_eq(cfg.restart_limit, 5);
	cr_expect_eq(cfg.cull_idle_timeout, 0.0);
	cr_expect_eq(cfg.cull_interval, 60.0);
	cr_expect_not(cfg.cull_connected);
	cr_expect_not(cfg.cull_busy);
	cr_expect_eq(cfg.max_body, (size_t)1 << 20);
	cr_expect_eq(cfg.max_ws_frame, (size_t)16 << 20);
	cr_expect_eq(cfg.ws_queue_cap, (size_t)32 << 20);
	cr_expect_eq(cfg.replay_cap, (size_t)8 << 20);
	cr_expect_eq(cfg.ping_interval, 30.0);
	cr_expect_eq(cfg.log_level, 2);
	cr_expect_null(cfg.config_file);
	cr_expect_str_eq(cfg.default_profile, "moderate");
	cr_expect_not(cfg.allow_weaker_sandbox);
	cr_expect_not(cfg.custom_profile);
	cr_expect_not(cfg.check_sandbox);
	cr_expect_eq(cfg.profiles[GW_PROFILE_STRICT].memory, (size_t)100 << 20);
	cr_expect_eq(cfg.profiles[GW_PROFILE_MODERATE].wall_time, 300.0);
	cr_expect_eq(cfg.profiles[GW_PROFILE_PERMISSIVE].processes, 128);
	cr_expect_eq(cfg.profiles[GW_PROFILE_CUSTOM].kind, GW_PROFILE_CUSTOM);
}

Test(gw_config, empty_sources_keep_the_defaults)
{
	expect_ok(NONE, ARGS("PATH=/usr/bin", "HOME=/root", "SANDCELLX=1", "sandcell_port=1",
	                     "NOEQUALS"));
	cr_expect_eq(cfg.port, 8888);
	cr_expect_str_eq(cfg.ip, "127.0.0.1");
	cr_expect_null(cfg.config_file);
	cr_expect_str_eq(out_text, "", "nothing printed when running");
}

Test(gw_config, free_is_safe_on_a_zeroed_struct_and_twice)
{
	struct gw_config z;

	memset(&z, 0, sizeof(z));
	gw_config_free(&z);
	gw_config_free(&cfg);
	gw_config_free(&cfg);
	cr_expect_null(cfg.ip);
	cr_expect_null(cfg.allow_origins);
	cr_assert_eq(gw_config_defaults(&cfg), 0);
}

Test(gw_config, a_null_envp_is_an_empty_environment)
{
	char *argv[] = {NULL};

	cr_expect_eq(gw_config_load(&cfg, 0, argv, NULL, stdout, &action, &err), 0);
	cr_expect_eq(action, GW_CONFIG_RUN);
	cr_expect_eq(cfg.port, 8888);
}

/* --- command line --- */

Test(gw_config, command_line_sets_every_option)
{
	expect_ok(ARGS("--ip", "::1", "--port", "9000", "--token", "s3cret", "--base-url", "/sc",
	               "--allow-origin", "https://a.example", "--kernel-binary", "/opt/k",
	               "--runtime-dir", "/run/sc", "--default-kernel", "py-3.11_x", "--max-kernels",
	               "7", "--kernel-start-timeout", "2.5", "--restart-limit", "0",
	               "--cull-idle-timeout", "600", "--cull-interval", "0.5", "--cull-connected",
	               "--cull-busy=true", "--max-body", "2K", "--max-ws-frame", "3M",
	               "--ws-queue-cap", "1G", "--replay-cap", "123", "--ping-interval", "0",
	               "--log-level", "3"),
	          NONE);
	cr_expect_str_eq(cfg.ip, "::1");
	cr_expect_eq(cfg.port, 9000);
	cr_expect_str_eq(cfg.token, "s3cret");
	cr_expect_str_eq(cfg.base_url, "/sc/");
	expect_origins(ARGS("https://a.example"));
	cr_expect_str_eq(cfg.kernel_binary, "/opt/k");
	cr_expect_str_eq(cfg.runtime_dir, "/run/sc");
	cr_expect_str_eq(cfg.default_kernel, "py-3.11_x");
	cr_expect_eq(cfg.max_kernels, 7);
	cr_expect_eq(cfg.kernel_start_timeout, 2.5);
	cr_expect_eq(cfg.restart_limit, 0);
	cr_expect_eq(cfg.cull_idle_timeout, 600.0);
	cr_expect_eq(cfg.cull_interval, 0.5);
	cr_expect(cfg.cull_connected);
	cr_expect(cfg.cull_busy);
	cr_expect_eq(cfg.max_body, 2048);
	cr_expect_eq(cfg.max_ws_frame, 3 << 20);
	cr_expect_eq(cfg.ws_queue_cap, (size_t)1 << 30);
	cr_expect_eq(cfg.replay_cap, 123);
	cr_expect_eq(cfg.ping_interval, 0.0);
	cr_expect_eq(cfg.log_level, 3);
}

Test(gw_config, command_line_accepts_name_equals_value)
{
	expect_ok(ARGS("--port=1234", "--token=", "--base-url=", "--ip=0.0.0.0", "--token=a=b"),
	          NONE);
	cr_expect_eq(cfg.port, 1234);
	cr_expect_str_eq(cfg.token, "a=b", "only the first '=' splits");
	cr_expect_str_eq(cfg.base_url, "/");
	cr_expect_str_eq(cfg.ip, "0.0.0.0");
}

Test(gw_config, an_empty_token_turns_auth_off_and_stays_empty)
{
	expect_ok(ARGS("--token="), NONE);
	cr_assert_not_null(cfg.token);
	cr_expect_str_eq(cfg.token, "");
	reset();
	expect_ok(ARGS("--token", ""), NONE);
	cr_expect_str_eq(cfg.token, "");
}

Test(gw_config, booleans_on_the_command_line)
{
	expect_ok(ARGS("--cull-busy"), NONE);
	cr_expect(cfg.cull_busy);
	expect_ok(ARGS("--cull-busy", "--cull-busy=false"), NONE);
	cr_expect_not(cfg.cull_busy);
	for (size_t i = 0; i < 6; i++) {
		static const char *const yes[] = {"--cull-busy=1",    "--cull-busy=yes",
		                                  "--cull-busy=TRUE", "--cull-busy=Yes",
		                                  "--cull-busy=true", "--cull-busy"};

		reset();
		expect_ok(ARGS(yes[i]), NONE);
		cr_expect(cfg.cull_busy, "%s", yes[i]);
		expect_ok(ARGS("--cull-busy=0"), NONE);
		cr_expect_not(cfg.cull_busy);
		expect_ok(ARGS("--cull-busy", "--cull-busy=no"), NONE);
		cr_expect_not(cfg.cull_busy);
	}
	/* A separate word is an argument, not the boolean's value. */
	expect_error(ARGS("--cull-busy", "false"), NONE, "unexpected argument \"false\"",
	             "--cull-busy=false");
	expect_error(ARGS("--cull-busy="), NONE, "--cull-busy", "true or false");
	expect_error(ARGS("--cull-connected=maybe"), NONE, "--cull-connected \"maybe\"",
	             "true or false");
}

Test(gw_config, later_occurrences_win)
{
	expect_ok(ARGS("--port", "1", "--port=2", "--ip", "::1", "--ip", "10.0.0.1", "--token", "a",
	               "--token", "b"),
	          NONE);
	cr_expect_eq(cfg.port, 2);
	cr_expect_str_eq(cfg.ip, "10.0.0.1");
	cr_expect_str_eq(cfg.token, "b");
}

Test(gw_config, a_missing_value_is_an_error)
{
	expect_error(ARGS("--port"), NONE, "--port needs a value");
	expect_error(ARGS("--port", "--ip", "::1"), NONE, "--port needs a value");
	expect_error(ARGS("--max-body"), NONE, "--max-body needs a value", "BYTES");
	expect_error(ARGS("--allow-origin"), NONE, "--allow-origin needs a value");
	expect_error(ARGS("--config"), NONE, "--config needs a value");
	expect_error(ARGS("--token"), NONE, "--token needs a value");
}

Test(gw_config, unknown_options_are_errors_that_name_them)
{
	expect_error(ARGS("--prot", "1"), NONE, "command line", "unknown option --prot",
	             "did you mean --port?");
	expect_error(ARGS("--max-kernel=3"), NONE, "--max-kernel", "did you mean --max-kernels?");
	expect_error(ARGS("--frobnicate"), NONE, "unknown option --frobnicate");
	expect_error(ARGS("--max_kernels", "3"), NONE, "did you mean --max-kernels?");
	expect_error(ARGS("-p", "1"), NONE, "unexpected argument \"-p\"");
	expect_error(ARGS("8888"), NONE, "unexpected argument \"8888\"");
	expect_error(ARGS("--"), NONE, "unexpected argument \"--\"");
	expect_error(ARGS("--help=yes"), NONE, "--help takes no value");
	expect_error(ARGS("--version=1"), NONE, "--version takes no value");
	cr_expect_eq(cfg.port, 8888, "nothing was applied");
}

Test(gw_config, option_names_are_not_prefixes)
{
	expect_error(ARGS("--max", "3"), NONE, "unknown option --max");
	expect_error(ARGS("--por", "3"), NONE, "unknown option --por");
}

/* --- environment --- */

Test(gw_config, environment_sets_every_option)
{
	expect_ok(NONE, ARGS("SANDCELL_IP=::", "SANDCELL_PORT=0", "SANDCELL_TOKEN=tok",
	                     "SANDCELL_BASE_URL=a/b", "SANDCELL_ALLOW_ORIGIN=http://x:1, *",
	                     "SANDCELL_KERNEL_BINARY=k", "SANDCELL_RUNTIME_DIR=/r",
	                     "SANDCELL_DEFAULT_KERNEL=other", "SANDCELL_MAX_KERNELS=100000",
	                     "SANDCELL_KERNEL_START_TIMEOUT=.25", "SANDCELL_RESTART_LIMIT=1000",
	                     "SANDCELL_CULL_IDLE_TIMEOUT=1", "SANDCELL_CULL_INTERVAL=2",
	                     "SANDCELL_CULL_CONNECTED=yes", "SANDCELL_CULL_BUSY=1",
	                     "SANDCELL_MAX_BODY=10", "SANDCELL_MAX_WS_FRAME=1KiB",
	                     "SANDCELL_WS_QUEUE_CAP=2MB", "SANDCELL_REPLAY_CAP=1t",
	                     "SANDCELL_PING_INTERVAL=4.5", "SANDCELL_LOG_LEVEL=warning"));
	cr_expect_str_eq(cfg.ip, "::");
	cr_expect_eq(cfg.port, 0);
	cr_expect_str_eq(cfg.token, "tok");
	cr_expect_str_eq(cfg.base_url, "/a/b/");
	expect_origins(ARGS("http://x:1", "*"));
	cr_expect_str_eq(cfg.kernel_binary, "k");
	cr_expect_str_eq(cfg.runtime_dir, "/r");
	cr_expect_str_eq(cfg.default_kernel, "other");
	cr_expect_eq(cfg.max_kernels, 100000);
	cr_expect_eq(cfg.kernel_start_timeout, 0.25);
	cr_expect_eq(cfg.restart_limit, 1000);
	cr_expect_eq(cfg.cull_idle_timeout, 1.0);
	cr_expect_eq(cfg.cull_interval, 2.0);
	cr_expect(cfg.cull_connected);
	cr_expect(cfg.cull_busy);
	cr_expect_eq(cfg.max_body, 10);
	cr_expect_eq(cfg.max_ws_frame, 1024);
	cr_expect_eq(cfg.ws_queue_cap, 2 << 20);
	cr_expect_eq(cfg.replay_cap, (size_t)1 << 40);
	cr_expect_eq(cfg.ping_interval, 4.5);
	cr_expect_eq(cfg.log_level, 1);
}

Test(gw_config, environment_booleans)
{
	static const char *const truthy[] = {"true", "1", "yes", "YES", "True"};
	static const char *const falsy[] = {"false", "0", "no", "No", "FALSE"};
	char var[64];

	for (size_t i = 0; i < 5; i++) {
		snprintf(var, sizeof(var), "SANDCELL_CULL_BUSY=%s", truthy[i]);
		expect_ok(NONE, ARGS(var));
		cr_expect(cfg.cull_busy, "%s", var);
		snprintf(var, sizeof(var), "SANDCELL_CULL_BUSY=%s", falsy[i]);
		expect_ok(NONE, ARGS(var));
		cr_expect_not(cfg.cull_busy, "%s", var);
	}
	expect_error(NONE, ARGS("SANDCELL_CULL_BUSY="), "SANDCELL_CULL_BUSY", "true or false");
	expect_error(NONE, ARGS("SANDCELL_CULL_BUSY=on"), "SANDCELL_CULL_BUSY=\"on\"");
	expect_error(NONE, ARGS("SANDCELL_CULL_BUSY=2"), "SANDCELL_CULL_BUSY=\"2\"");
}

Test(gw_config, unknown_sandcell_variables_are_errors_that_name_them)
{
	expect_error(NONE, ARGS("SANDCELL_PROT=1"), "environment", "SANDCELL_PROT",
	             "did you mean SANDCELL_PORT?");
	expect_error(NONE, ARGS("SANDCELL_MAX_KERNEL=1"), "did you mean SANDCELL_MAX_KERNELS?");
	expect_error(NONE, ARGS("SANDCELL_FROBNICATE=1"), "unknown variable SANDCELL_FROBNICATE");
	expect_error(NONE, ARGS("SANDCELL_=1"), "unknown variable SANDCELL_");
	expect_error(NONE, ARGS("SANDCELL_HELP=1"), "unknown variable SANDCELL_HELP");
	expect_error(NONE, ARGS("SANDCELL_VERSION="), "unknown variable SANDCELL_VERSION");
}

Test(gw_config, other_sandcell_programs_variables_are_ignored)
{
	expect_ok(NONE, ARGS("SANDCELL_SHIM_IPYTHON=1", "SANDCELL_KERNEL=/x",
	                     "SANDCELL_TEST_KERNEL_NAME=python3"));
	cr_expect_null(cfg.kernel_binary);
}

Test(gw_config, a_repeated_variable_takes_the_last_value)
{
	expect_ok(NONE, ARGS("SANDCELL_PORT=1", "SANDCELL_PORT=2"));
	cr_expect_eq(cfg.port, 2);
}

Test(gw_config, environment_origins_are_a_comma_list)
{
	expect_ok(NONE, ARGS("SANDCELL_ALLOW_ORIGIN= https://A.example ,,http://b:80,\t"));
	expect_origins(ARGS("https://a.example", "http://b:80"));
	expect_ok(NONE, ARGS("SANDCELL_ALLOW_ORIGIN="));
	expect_origins(NONE);
	expect_error(NONE, ARGS("SANDCELL_ALLOW_ORIGIN=https://ok,https://bad/"),
	             "SANDCELL_ALLOW_ORIGIN", "no path");
}

/* --- config file --- */

Test(gw_config, file_sets_every_option)
{
	const char *path = temp_json(
	        "{\"ip\": \"0.0.0.0\", \"port\": 1, \"token\": \"t\", \"base_url\": \"/x/\","
	        " \"allow_origin\": [\"https://a\", \"*\"], \"kernel_binary\": \"/k\","
	        " \"runtime_dir\": \"/r\", \"default_kernel\": \"d\", \"max_kernels\": 2,"
	        " \"kernel_start_timeout\": 1.5, \"restart_limit\": 3, \"cull_idle_timeout\": 4,"
	        " \"cull_interval\": 0.125, \"cull_connected\": true, \"cull_busy\": 1,"
	        " \"max_body\": 5, \"max_ws_frame\": \"6K\", \"ws_queue_cap\": \"7M\","
	        " \"replay_cap\": 8, \"ping_interval\": 9, \"log_level\": \"debug\"}");

	expect_ok(ARGS("--config", path), NONE);
	cr_expect_str_eq(cfg.config_file, path);
	cr_expect_str_eq(cfg.ip, "0.0.0.0");
	cr_expect_eq(cfg.port, 1);
	cr_expect_str_eq(cfg.token, "t");
	cr_expect_str_eq(cfg.base_url, "/x/");
	expect_origins(ARGS("https://a", "*"));
	cr_expect_str_eq(cfg.kernel_binary, "/k");
	cr_expect_str_eq(cfg.runtime_dir, "/r");
	cr_expect_str_eq(cfg.default_kernel, "d");
	cr_expect_eq(cfg.max_kernels, 2);
	cr_expect_eq(cfg.kernel_start_timeout, 1.5);
	cr_expect_eq(cfg.restart_limit, 3);
	cr_expect_eq(cfg.cull_idle_timeout, 4.0);
	cr_expect_eq(cfg.cull_interval, 0.125);
	cr_expect(cfg.cull_connected);
	cr_expect(cfg.cull_busy);
	cr_expect_eq(cfg.max_body, 5);
	cr_expect_eq(cfg.max_ws_frame, 6 << 10);
	cr_expect_eq(cfg.ws_queue_cap, 7 << 20);
	cr_expect_eq(cfg.replay_cap, 8);
	cr_expect_eq(cfg.ping_interval, 9.0);
	cr_expect_eq(cfg.log_level, 3);
}

Test(gw_config, file_from_the_environment_and_command_line_wins)
{
	const char *a = temp_json("{\"port\": 1}"), *b = temp_json("{\"port\": 2}");
	char var[128];

	snprintf(var, sizeof(var), "SANDCELL_CONFIG=%s", a);
	expect_ok(NONE, ARGS(var));
	cr_expect_eq(cfg.port, 1);
	cr_expect_str_eq(cfg.config_file, a);
	reset();
	expect_ok(ARGS("--config", b), ARGS(var));
	cr_expect_eq(cfg.port, 2, "--config overrides SANDCELL_CONFIG");
	cr_expect_str_eq(cfg.config_file, b);
	reset();
	expect_ok(ARGS("--config", a, "--config", b), NONE);
	cr_expect_eq(cfg.port, 2);
}

Test(gw_config, file_accepts_command_line_strings_and_null_for_defaults)
{
	cr_assert_eq(
	        load_file("{\"port\": \"8080\", \"cull_busy\": \"yes\", \"max_body\": \"1k\","
	                  " \"ping_interval\": \"0.5\", \"allow_origin\": \"http://a, http://b\","
	                  " \"token\": null, \"kernel_binary\": null, \"runtime_dir\": null}"),
	        0, "%s", err.text);
	cr_expect_eq(cfg.port, 8080);
	cr_expect(cfg.cull_busy);
	cr_expect_eq(cfg.max_body, 1024);
	cr_expect_eq(cfg.ping_interval, 0.5);
	expect_origins(ARGS("http://a", "http://b"));
	cr_expect_null(cfg.token);
	cr_expect_null(cfg.kernel_binary);
	cr_expect_null(cfg.runtime_dir);
}

Test(gw_config, file_null_resets_a_string_set_before)
{
	const char *path = temp_json("{\"token\": null, \"runtime_dir\": null}");

	expect_ok(ARGS("--token", "x", "--runtime-dir", "/r"), NONE);
	expect_ok(ARGS("--config", path), NONE);
	cr_expect_null(cfg.token);
	cr_expect_null(cfg.runtime_dir);
	expect_ok(ARGS("--config", path, "--token", "x"), NONE);
	cr_expect_str_eq(cfg.token, "x", "the command line still wins over the file");
}

Test(gw_config, file_wrong_types_name_the_key_and_the_type)
{
	static const struct {
		const char *json, *want1, *want2;
	} cases[] = {
	        {"{\"port\": \"http\"}", "key \"port\"", "expected an integer 0..65535"},
	        {"{\"port\": 1.5}", "key \"port\"", "expected an integer 0..65535"},
	        {"{\"port\": true}", "key \"port\"", "expected an integer"},
	        {"{\"port\": 65536}", "key \"port\"", "0..65535"},
	        {"{\"port\": -1}", "key \"port\"", "0..65535"},
	        {"{\"port\": null}", "key \"port\"", "expected an integer"},
	        {"{\"max_kernels\": 0}", "key \"max_kernels\"", "1..100000"},
	        {"{\"restart_limit\": 1001}", "key \"restart_limit\"", "0..1000"},
	        {"{\"log_level\": 4}", "key \"log_level\"", "0..3"},
	        {"{\"ip\": 127}", "key \"ip\"", "expected a string"},
	        {"{\"ip\": null}", "key \"ip\"", "expected a string"},
	        {"{\"token\": 5}", "key \"token\"", "expected a string or null"},
	        {"{\"base_url\": []}", "key \"base_url\"", "expected a string"},
	        {"{\"cull_busy\": \"maybe\"}", "key \"cull_busy\"", "true or false"},
	        {"{\"cull_busy\": 2}", "key \"cull_busy\"", "true or false"},
	        {"{\"cull_busy\": null}", "key \"cull_busy\"", "true or false"},
	        {"{\"max_body\": 0}", "key \"max_body\"", "a size 1..1T"},
	        {"{\"max_body\": -5}", "key \"max_body\"", "a size"},
	        {"{\"max_body\": 1.5}", "key \"max_body\"", "a size"},
	        {"{\"max_body\": 1099511627777}", "key \"max_body\"", "a size"},
	        {"{\"max_body\": \"12Q\"}", "key \"max_body\"", "a size"},
	        {"{\"ping_interval\": -1}", "key \"ping_interval\"", "seconds"},
	        {"{\"ping_interval\": 1e10}", "key \"ping_interval\"", "at most 3600"},
	        {"{\"ping_interval\": 3600.5}", "key \"ping_interval\"", "at most 3600"},
	        {"{\"cull_interval\": 1e10}", "key \"cull_interval\"", "at most 1000000000"},
	        {"{\"ping_interval\": \"1e3\"}", "key \"ping_interval\"", "seconds"},
	        {"{\"ping_interval\": false}", "key \"ping_interval\"", "seconds"},
	        {"{\"cull_interval\": 0}", "key \"cull_interval\"", "above 0"},
	        {"{\"allow_origin\": {}}", "key \"allow_origin\"", "an array"},
	        {"{\"allow_origin\": 1}", "key \"allow_origin\"", "an array"},
	        {"{\"allow_origin\": [\"https://a\", 1]}", "key \"allow_origin\"",
	         "item 1: expected a string"},
	        {"{\"allow_origin\": [\"https://a/\"]}", "key \"allow_origin\"", "item 0"},
	        {"{\"allow_origin\": [\"https://a,https://b\"]}", "key \"allow_origin\"", "item 0"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path;

		reset();
		path = temp_json(cases[i].json);
		expect_error(ARGS("--config", path), NONE, "config file ", cases[i].want1,
		             cases[i].want2);
		cr_expect(strstr(err.text, path + strlen("/tmp/")), "%s names the file", err.text);
		unlink(path);
		n_temp--;
	}
}

Test(gw_config, file_message_has_the_documented_shape)
{
	char want[200];
	const char *path = temp_json("{\"port\": \"x\"}");

	cr_assert_eq(load(ARGS("--config", path), NONE), -EINVAL);
	snprintf(want, sizeof(want), "config file %s: key \"port\": expected an integer 0..65535",
	         path);
	cr_expect_str_eq(err.text, want);
}

Test(gw_config, file_unknown_keys_are_errors_that_name_them)
{
	expect_error(ARGS("--config", temp_json("{\"prot\": 1}")), NONE, "config file",
	             "unknown key \"prot\"", "did you mean \"port\"?");
	reset();
	expect_error(ARGS("--config", temp_json("{\"max-kernels\": 1}")), NONE,
	             "unknown key \"max-kernels\"", "did you mean \"max_kernels\"?");
	reset();
	expect_error(ARGS("--config", temp_json("{\"zzzzzzzzzzzzzz\": 1}")), NONE,
	             "unknown key \"zzzzzzzzzzzzzz\"");
	reset();
	expect_error(ARGS("--config", temp_json("{\"config\": \"/etc/x\"}")), NONE,
	             "key \"config\"", "cannot name another");
}

Test(gw_config, file_must_be_a_json_object_within_1_mib)
{
	static const char *const bad[] = {"",
	                                  "[]",
	                                  "1",
	                                  "\"x\"",
	                                  "{",
	                                  "{\"port\": 1,}",
	                                  "{\"port\": 1} x",
	                                  "{\"port\": 1, \"port\": 2}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		cr_expect_eq(load_file(bad[i]), -EINVAL, "%s", bad[i]);
		cr_expect(strstr(err.text, "config file /tmp/gwconfig-test-"), "%s", err.text);
		unlink(temp_paths[--n_temp]);
	}
	reset();
	expect_error(ARGS("--config", temp_json("{\n\"port\": 1,\n\"ip\" 2}")), NONE, "line 3");
}

Test(gw_config, file_size_cap_is_exactly_1_mib)
{
	size_t cap = (size_t)1 << 20;
	char *json = malloc(cap + 1);

	cr_assert(json);
	memset(json, ' ', cap + 1);
	memcpy(json, "{\"port\": 7", 10);
	json[cap - 1] = '}';
	expect_ok(ARGS("--config", temp_file(json, cap)), NONE);
	cr_expect_eq(cfg.port, 7);
	json[cap - 1] = ' ';
	json[cap] = '}';
	reset();
	expect_error(ARGS("--config", temp_file(json, cap + 1)), NONE, "larger than 1 MiB");
	free(json);
}

Test(gw_config, unreadable_files_are_errors_that_name_them)
{
	expect_error(ARGS("--config", "/nonexistent/sandcell.json"), NONE,
	             "config file /nonexistent/sandcell.json: cannot read",
	             "No such file or directory");
	expect_error(ARGS("--config", "/tmp"), NONE, "config file /tmp: cannot read",
	             "Is a directory");
	expect_error(ARGS("--config="), NONE, "--config", "must not be empty");
	expect_error(NONE, ARGS("SANDCELL_CONFIG="), "SANDCELL_CONFIG", "must not be empty");
	cr_expect_null(cfg.config_file);
}

Test(gw_config, long_file_paths_are_shortened_from_the_left)
{
	char path[400];

	snprintf(path, sizeof(path), "/nonexistent/%0300d/x.json", 0);
	cr_assert_eq(load(ARGS("--config", path), NONE), -EINVAL);
	cr_expect(strstr(err.text, "...") && strstr(err.text, "0/x.json: cannot read"), "%s",
	          err.text);
}

/* --- precedence --- */

Test(gw_config, command_line_beats_environment_beats_file_beats_defaults)
{
	const char *path = temp_json("{\"port\": 1, \"max_kernels\": 11, \"log_level\": 0,"
	                             " \"token\": \"file\"}");
	char var[128];

	snprintf(var, sizeof(var), "SANDCELL_CONFIG=%s", path);
	expect_ok(ARGS("--port", "3"), ARGS("SANDCELL_PORT=2", var, "SANDCELL_MAX_KERNELS=22"));
	cr_expect_eq(cfg.port, 3);
	cr_expect_eq(cfg.max_kernels, 22);
	cr_expect_eq(cfg.log_level, 0);
	cr_expect_str_eq(cfg.token, "file");
	cr_expect_eq(cfg.restart_limit, 5);
	/* The environment is read after the file, whatever its order in envp. */
	reset();
	expect_ok(NONE, ARGS("SANDCELL_TOKEN=env", var));
	cr_expect_str_eq(cfg.token, "env");
}

Test(gw_config, origins_accumulate_within_a_source_and_replace_across_sources)
{
	const char *path = temp_json("{\"allow_origin\": [\"https://file1\", \"https://file2\"]}");

	expect_ok(ARGS("--config", path), NONE);
	expect_origins(ARGS("https://file1", "https://file2"));
	reset();
	expect_ok(ARGS("--config", path), ARGS("SANDCELL_ALLOW_ORIGIN=https://env"));
	expect_origins(ARGS("https://env"));
	reset();
	expect_ok(ARGS("--config", path, "--allow-origin", "https://a", "--allow-origin",
	               "https://b,https://c"),
	          ARGS("SANDCELL_ALLOW_ORIGIN=https://env"));
	expect_origins(ARGS("https://a", "https://b", "https://c"));
	reset();
	expect_ok(ARGS("--config", path), ARGS("SANDCELL_ALLOW_ORIGIN="));
	expect_origins(NONE);
	reset();
	expect_ok(ARGS("--config", path, "--allow-origin="), NONE);
	expect_origins(NONE);
	reset();
	expect_ok(ARGS("--allow-origin", "https://a", "--allow-origin", "", "--allow-origin",
	               "https://b"),
	          NONE);
	expect_origins(ARGS("https://a", "https://b"));
}

Test(gw_config, a_failed_load_leaves_a_freeable_config)
{
	/* The teardown frees and leak-checks whatever each failure left behind. */
	expect_error(ARGS("--allow-origin", "https://a", "--allow-origin", "https://b", "--token",
	                  "t", "--allow-origin", "nope"),
	             NONE, "--allow-origin \"nope\"");
	expect_error(ARGS("--config", temp_json("{\"token\": \"x\", \"allow_origin\": [\"*\"],"
	                                        " \"ip\": \"::1\", \"port\": \"no\"}")),
	             NONE, "key \"port\"");
	expect_error(ARGS("--base-url", "/ok", "--base-url", "/a b"), NONE, "--base-url");
}

/* --- value syntax --- */

Test(gw_config, sizes)
{
	static const struct {
		const char *text;
		size_t want;
	} good[] = {
	        {"1", 1},
	        {"0001", 1},
	        {"4096", 4096},
	        {"1K", 1024},
	        {"1k", 1024},
	        {"1KB", 1024},
	        {"1kb", 1024},
	        {"1KiB", 1024},
	        {"1kib", 1024},
	        {"16M", 16 << 20},
	        {"16MiB", 16 << 20},
	        {"16MB", 16 << 20},
	        {"3G", (size_t)3 << 30},
	        {"1024G", (size_t)1 << 40},
	        {"1T", (size_t)1 << 40},
	        {"1TiB", (size_t)1 << 40},
	        {"1099511627776", (size_t)1 << 40},
	};
	static const char *const bad[] = {
	        "",
	        "0",
	        "0K",
	        "-1",
	        "+1",
	        "12Q",
	        "1.5M",
	        "1,5M",
	        " 1",
	        "1 ",
	        "1 K",
	        "K",
	        "1KiBB",
	        "1Ki",
	        "1Kb2",
	        "1B",
	        "1KK",
	        "0x10",
	        "1e3",
	        "1025G",
	        "2T",
	        "1P",
	        "1099511627777",
	        "99999999999999999999999",
	        "18446744073709551616K",
	        "1\n",
	};
	char arg[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(arg, sizeof(arg), "--max-body=%s", good[i].text);
		expect_ok(ARGS(arg), NONE);
		cr_expect_eq(cfg.max_body, good[i].want, "%s", good[i].text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(arg, sizeof(arg), "--replay-cap=%s", bad[i]);
		expect_error(ARGS(arg), NONE, "--replay-cap", "expected a size 1..1T");
	}
	cr_expect_eq(cfg.replay_cap, (size_t)8 << 20, "bad values change nothing");
}

Test(gw_config, durations)
{
	static const struct {
		const char *text;
		double want;
	} good[] = {
	        {"0", 0},
	        {"30", 30},
	        {"0.5", 0.5},
	        {".25", 0.25},
	        {"2.", 2},
	        {"0.1", 0.1},
	        {"0.3", 0.3},
	        {"3600.000", 3600},
	        {"1000000000", 1e9},
	        {"0.000000001", 1e-9},
	        {"0.0000000019999", 1e-9}, /* beyond nanoseconds is dropped */
	        {"00012", 12},
	};
	static const char *const bad[] = {
	        "",
	        ".",
	        "-1",
	        "+1",
	        "inf",
	        "nan",
	        "1e3",
	        "1E3",
	        "0x1p3",
	        "1.2.3",
	        "1,5",
	        " 1",
	        "1 ",
	        "1s",
	        "1000000001",
	        "1000000000.5",
	        "99999999999999999999999999999999999",
	};
	char arg[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(arg, sizeof(arg), "--cull-idle-timeout=%s", good[i].text);
		expect_ok(ARGS(arg), NONE);
		cr_expect_eq(cfg.cull_idle_timeout, good[i].want, "%s", good[i].text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(arg, sizeof(arg), "--ping-interval=%s", bad[i]);
		expect_error(ARGS(arg), NONE, "--ping-interval", "seconds");
	}
	/* Zero would make these fire in a loop. */
	expect_error(ARGS("--kernel-start-timeout", "0"), NONE, "above 0");
	expect_error(ARGS("--cull-interval", "0.0"), NONE, "above 0");
	expect_ok(ARGS("--cull-interval", "0.001", "--ping-interval", "0"), NONE);
	cr_expect_eq(cfg.cull_interval, 0.001);
	expect_ok(ARGS("--ping-interval", "3600"), NONE);
	expect_error(ARGS("--ping-interval", "3601"), NONE, "at most 3600");
}

Test(gw_config, integer_ranges)
{
	static const struct {
		const char *opt, *text;
		bool ok;
	} cases[] = {
	        {"--port", "0", true},
	        {"--port", "65535", true},
	        {"--port", "65536", false},
	        {"--port", "-1", false},
	        {"--port", "80a", false},
	        {"--port", "", false},
	        {"--port", "0x50", false},
	        {"--port", "99999999999999999999999", false},
	        {"--max-kernels", "0", false},
	        {"--max-kernels", "1", true},
	        {"--max-kernels", "100000", true},
	        {"--max-kernels", "100001", false},
	        {"--restart-limit", "0", true},
	        {"--restart-limit", "1000", true},
	        {"--restart-limit", "1001", false},
	        {"--log-level", "0", true},
	        {"--log-level", "3", true},
	        {"--log-level", "4", false},
	        {"--log-level", "error", true},
	        {"--log-level", "DEBUG", true},
	        {"--log-level", "verbose", false},
	        {"--log-level", "warn", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = load(ARGS(cases[i].opt, cases[i].text), NONE);

		cr_expect_eq(r, cases[i].ok ? 0 : -EINVAL, "%s %s: %s", cases[i].opt, cases[i].text,
		             err.text);
		if (!cases[i].ok)
			cr_expect(strstr(err.text, cases[i].opt), "%s", err.text);
	}
	expect_error(ARGS("--port", "70000"), NONE,
	             "command line: --port \"70000\": expected an "
	             "integer 0..65535");
	expect_error(NONE, ARGS("SANDCELL_MAX_KERNELS=0"),
	             "environment: SANDCELL_MAX_KERNELS=\"0\": expected an integer 1..100000");
	expect_ok(ARGS("--log-level", "Warning"), NONE);
	cr_expect_eq(cfg.log_level, 1);
}

Test(gw_config, base_url_is_normalised)
{
	static const struct {
		const char *in, *want;
	} good[] = {
	        {"", "/"},          {"/", "/"},         {"//", "/"},
	        {"sc", "/sc/"},     {"/sc", "/sc/"},    {"sc/", "/sc/"},
	        {"/a//b", "/a/b/"}, {"/a/b/", "/a/b/"}, {"/a.b/~c_d-e/", "/a.b/~c_d-e/"},
	        {"/...", "/.../"},
	};
	static const char *const bad[] = {"/a b",   "/x?y", "/x#y",  "/%20",      "/../x",
	                                  "/a/./b", "..",   "/a/..", "http://x/", "/\xc3\xa9"};
	char arg[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(arg, sizeof(arg), "--base-url=%s", good[i].in);
		expect_ok(ARGS(arg), NONE);
		cr_expect_str_eq(cfg.base_url, good[i].want, "%s", good[i].in);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(arg, sizeof(arg), "--base-url=%s", bad[i]);
		expect_error(ARGS(arg), NONE, "--base-url");
	}
	cr_expect_str_eq(cfg.base_url, "/.../");
}

Test(gw_config, origins_are_checked_and_lower_cased)
{
	static const struct {
		const char *in, *want;
	} good[] = {
	        {"*", "*"},
	        {"https://Example.COM", "https://example.com"},
	        {"HTTP://x:8443", "http://x:8443"},
	        {"http://[::1]:8888", "http://[::1]:8888"},
	        {"http://127.0.0.1", "http://127.0.0.1"},
	        {"app+x-y.z://h_~", "app+x-y.z://h_~"},
	};
	static const char *const bad[] = {
	        "example.com",
	        "https://",
	        "https://x/",
	        "https://x/path",
	        "https://x:99999",
	        "https://x:",
	        "https://x:8a",
	        "null",
	        "**",
	        "https://*.example.com",
	        "1http://x",
	        "http://[::1",
	        "http://[]",
	        "https://x?y",
	        "https://u@x",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		expect_ok(ARGS("--allow-origin", good[i].in), NONE);
		expect_origins(ARGS(good[i].want));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(ARGS("--allow-origin", bad[i]), NONE, "--allow-origin", "origin");
	expect_error(ARGS("--allow-origin", "https://x/"), NONE, "trailing '/'");
}

Test(gw_config, strings_are_checked)
{
	expect_ok(ARGS("--ip", "::1"), NONE);
	expect_ok(ARGS("--ip", "fe80::1:2"), NONE);
	expect_error(ARGS("--ip", "localhost"), NONE, "--ip \"localhost\"", "IP address");
	expect_error(ARGS("--ip", ""), NONE, "--ip", "IP address");
	expect_error(ARGS("--ip", "1.2.3.4 "), NONE, "--ip");
	expect_error(ARGS("--default-kernel", "a/b"), NONE, "--default-kernel", "kernel name");
	expect_error(ARGS("--default-kernel", ""), NONE, "--default-kernel", "kernel name");
	expect_error(ARGS("--kernel-binary", ""), NONE, "--kernel-binary", "must not be empty");
	expect_error(ARGS("--runtime-dir", "a\nb"), NONE, "--runtime-dir \"a?b\"",
	             "control character");
	expect_ok(ARGS("--runtime-dir", "/path with spaces"), NONE);
	cr_expect_str_eq(cfg.runtime_dir, "/path with spaces");
}

Test(gw_config, strings_have_a_length_cap)
{
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(ARGS("--kernel-binary", big), NONE, "--kernel-binary", "longer than 4096");
	expect_error(ARGS("--base-url", big), NONE, "--base-url", "longer than 4096");
	big[4096] = '\0';
	expect_ok(ARGS("--kernel-binary", big), NONE);
	cr_expect_eq(strlen(cfg.kernel_binary), 4096);
}

Test(gw_config, tokens_are_short_printable_ascii)
{
	char big[300];

	expect_ok(ARGS("--token", "AZaz09-._~+/=!@#$%^&*()[]{}"), NONE);
	cr_expect_str_eq(cfg.token, "AZaz09-._~+/=!@#$%^&*()[]{}");
	memset(big, 'a', sizeof(big));
	big[256] = '\0';
	expect_ok(ARGS("--token", big), NONE);
	big[256] = 'a';
	big[257] = '\0';
	expect_error(ARGS("--token", big), NONE, "--token", "at most 256");
	expect_error(ARGS("--token", "caf\xc3\xa9"), NONE, "--token", "printable ASCII");
	expect_error(ARGS("--token", "a\x7f"), NONE, "--token", "printable ASCII");
}

Test(gw_config, the_token_never_appears_in_a_message)
{
	expect_error(ARGS("--token", "hunter2 x"), NONE, "--token", "no spaces");
	cr_expect_null(strstr(err.text, "hunter2"), "%s", err.text);
	expect_error(NONE, ARGS("SANDCELL_TOKEN=hunter2\t"), "SANDCELL_TOKEN");
	cr_expect_null(strstr(err.text, "hunter2"), "%s", err.text);
	cr_assert_eq(load_file("{\"token\": \"hunter2\\n\"}"), -EINVAL);
	cr_expect(strstr(err.text, "key \"token\""), "%s", err.text);
	cr_expect_null(strstr(err.text, "hunter2"), "%s", err.text);
}

Test(gw_config, long_values_are_shortened_in_messages)
{
	char big[300];

	memset(big, '9', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(ARGS("--port", big), NONE, "--port \"9999", "...\": expected an integer");
	cr_expect_lt(strlen(err.text), sizeof(err.text) - 1, "not cut off: %s", err.text);
}

/* --- help and version --- */

Test(gw_config, version_prints_the_version)
{
	cr_assert_eq(load(ARGS("--version"), NONE), 0);
	cr_expect_eq(action, GW_CONFIG_VERSION);
	cr_expect_str_eq(out_text, "sandcell 0.1.0\n");
	cr_assert_eq(load(ARGS("-V"), NONE), 0);
	cr_expect_eq(action, GW_CONFIG_VERSION);
}

Test(gw_config, help_documents_every_option_with_its_default_and_variable)
{
	static const struct {
		const char *opt, *env, *def;
	} documented[] = {
	        {"--ip ADDRESS", "SANDCELL_IP", "Default: 127.0.0.1."},
	        {"--port PORT", "SANDCELL_PORT", "Default: 8888."},
	        {"--token TOKEN", "SANDCELL_TOKEN", "Default: a random token made"},
	        {"--base-url PATH", "SANDCELL_BASE_URL", "Default: /."},
	        {"--allow-origin ORIGIN", "SANDCELL_ALLOW_ORIGIN", "Default: none"},
	        {"--kernel-binary PATH", "SANDCELL_KERNEL_BINARY", "Default: sandcell-kernel next"},
	        {"--runtime-dir DIR", "SANDCELL_RUNTIME_DIR", "Default: a new private directory"},
	        {"--default-kernel NAME", "SANDCELL_DEFAULT_KERNEL", "Default: sandcell."},
	        {"--max-kernels N", "SANDCELL_MAX_KERNELS", "Default: 64."},
	        {"--kernel-start-timeout SECONDS", "SANDCELL_KERNEL_START_TIMEOUT", "Default: 30."},
	        {"--restart-limit N", "SANDCELL_RESTART_LIMIT", "Default: 5."},
	        {"--cull-idle-timeout SECONDS", "SANDCELL_CULL_IDLE_TIMEOUT", "Default: 0."},
	        {"--cull-interval SECONDS", "SANDCELL_CULL_INTERVAL", "Default: 60."},
	        {"--cull-connected[=BOOL]", "SANDCELL_CULL_CONNECTED", "Default: false."},
	        {"--cull-busy[=BOOL]", "SANDCELL_CULL_BUSY", "Default: false."},
	        {"--max-body BYTES", "SANDCELL_MAX_BODY", "Default: 1M."},
	        {"--max-ws-frame BYTES", "SANDCELL_MAX_WS_FRAME", "Default: 16M."},
	        {"--ws-queue-cap BYTES", "SANDCELL_WS_QUEUE_CAP", "Default: 32M."},
	        {"--replay-cap BYTES", "SANDCELL_REPLAY_CAP", "Default: 8M."},
	        {"--ping-interval SECONDS", "SANDCELL_PING_INTERVAL", "Default: 30."},
	        {"--log-level LEVEL", "SANDCELL_LOG_LEVEL", "Default: 2."},
	        {"--default-profile PROFILE", "SANDCELL_DEFAULT_PROFILE", "Default: moderate."},
	        {"--allow-weaker-sandbox[=BOOL]", "SANDCELL_ALLOW_WEAKER_SANDBOX",
	         "Default: false."},
	        {"\"profiles\": {...}   (config file only)", NULL, NULL},
	        {"--check-sandbox", NULL, NULL},
	        {"--json", NULL, NULL},
	        {"--config FILE", "SANDCELL_CONFIG", "Default: none."},
	        {"-h, --help", NULL, NULL},
	        {"-V, --version", NULL, NULL},
	};

	cr_assert_eq(load(ARGS("--help"), NONE), 0);
	cr_expect_eq(action, GW_CONFIG_HELP);
	cr_assert(out_text);
	for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
		const char *at = strstr(out_text, documented[i].opt), *next;

		cr_expect(at, "help lacks %s", documented[i].opt);
		if (!at || !documented[i].env)
			continue;
		/* The default and the variable come before the next option. */
		next = strstr(at + 1, "\n  -");
		cr_expect(strstr(at, documented[i].env) && strstr(at, documented[i].env) < next,
		          "help of %s lacks %s", documented[i].opt, documented[i].env);
		cr_expect(strstr(at, documented[i].def) && strstr(at, documented[i].def) < next,
		          "help of %s lacks \"%s\"", documented[i].opt, documented[i].def);
	}
	cr_expect(strstr(out_text, "Usage: sandcell"));
	cr_expect(strstr(out_text, "docs/configuration.md"));
}

Test(gw_config, help_fits_80_columns)
{
	cr_assert_eq(load(ARGS("-h"), NONE), 0);
	cr_expect_eq(action, GW_CONFIG_HELP);
	for (const char *line = out_text; *line;) {
		size_t len = strcspn(line, "\n");

		cr_expect_leq(len, 80, "too long: %.*s", (int)len, line);
		cr_expect(len == 0 || line[len - 1] != ' ', "trailing space: %.*s", (int)len, line);
		line += len + (line[len] == '\n');
	}
}

Test(gw_config, help_comes_before_reading_any_source)
{
	cr_assert_eq(load(ARGS("--port", "1", "--help", "--bogus"),
	                  ARGS("SANDCELL_CONFIG=/nonexistent", "SANDCELL_BOGUS=1")),
	             0);
	cr_expect_eq(action, GW_CONFIG_HELP);
	cr_expect_eq(cfg.port, 8888, "nothing applied");
	expect_error(ARGS("--bogus", "--help"), NONE, "--bogus");
}

Test(gw_config, help_write_errors_are_reported)
{
	FILE *full = fopen("/dev/full", "w");
	char prog[] = "sandcell", help[] = "--help";
	char *argv[] = {prog, help, NULL};

	cr_assert(full);
	cr_expect_eq(gw_config_load(&cfg, 2, argv, NULL, full, &action, &err), -EIO);
	cr_expect(strstr(err.text, "--help"), "%s", err.text);
	fclose(full);
}

/* --- allocation failures inside jansson --- */

Test(gw_config, jansson_allocation_failures_are_enomem_and_leak_nothing)
{
	const char *path = temp_json("{\"ip\": \"::1\", \"allow_origin\": [\"https://a\", \"*\"],"
	                             " \"token\": \"t\", \"max_body\": \"1M\"}");
	bool failed = true;

	test_alloc_install();
	for (unsigned long nth = 1; failed && nth < 1000; nth++) {
		int r;

		reset();
		test_alloc_fail_at(nth, false);
		r = load(ARGS("--config", path), NONE);
		failed = test_alloc_stop();
		/* jansson reports some failed allocations as syntax errors (akheron/jansson#362).
		 */
		if (failed)
			cr_expect(r == -ENOMEM || r == -EINVAL, "allocation %lu: %d %s", nth, r,
			          err.text);
		else
			cr_expect_eq(r, 0, "allocation %lu: %s", nth, err.text);
		cr_expect_eq(test_alloc_live(), 0, "jansson leak after allocation %lu", nth);
	}
	cr_expect_not(failed, "the loop ended");
	expect_origins(ARGS("https://a", "*"));
}

/* --- sandbox profiles --- */

Test(gw_config, default_profile_from_every_source)
{
	expect_ok(ARGS("--default-profile", "strict"), NONE);
	cr_expect_str_eq(cfg.default_profile, "strict");
	cr_expect_eq(gw_config_default_profile(&cfg), GW_PROFILE_STRICT);
	reset();
	expect_ok(NONE, ARGS("SANDCELL_DEFAULT_PROFILE=permissive"));
	cr_expect_eq(gw_config_default_profile(&cfg), GW_PROFILE_PERMISSIVE);
	reset();
	cr_assert_eq(load_file("{\"default_profile\": \"strict\"}"), 0, "%s", err.text);
	cr_expect_eq(gw_config_default_profile(&cfg), GW_PROFILE_STRICT);
	reset();
	expect_error(ARGS("--default-profile", "lax"), NONE, "--default-profile \"lax\"",
	             "strict, moderate, permissive or custom");
	expect_error(ARGS("--default-profile", "none"), NONE, "--default-profile");
	cr_assert_eq(load_file("{\"default_profile\": 1}"), -EINVAL);
	cr_expect(strstr(err.text, "key \"default_profile\""), "%s", err.text);
}

Test(gw_config, custom_needs_a_custom_profile)
{
	expect_error(ARGS("--default-profile", "custom"), NONE, "default profile \"custom\"",
	             "\"profiles\": {\"custom\"");
	reset();
	expect_error(ARGS("--default-kernel", "sandcell-custom"), NONE, "sandcell-custom",
	             "\"custom\"");
	reset();
	cr_assert_eq(load(ARGS("--config",
	                       temp_json("{\"profiles\": {\"custom\": {\"network\": true}}}"),
	                       "--default-profile", "custom"),
	                  NONE),
	             0, "%s", err.text);
	cr_expect(cfg.custom_profile);
	cr_expect(cfg.profiles[GW_PROFILE_CUSTOM].network);
	cr_expect_eq(cfg.profiles[GW_PROFILE_CUSTOM].memory, (size_t)512 << 20, "as moderate");
	cr_expect_eq(gw_config_default_profile(&cfg), GW_PROFILE_CUSTOM);
}

Test(gw_config, allow_weaker_sandbox_is_a_boolean)
{
	expect_ok(ARGS("--allow-weaker-sandbox"), NONE);
	cr_expect(cfg.allow_weaker_sandbox);
	reset();
	expect_ok(NONE, ARGS("SANDCELL_ALLOW_WEAKER_SANDBOX=yes"));
	cr_expect(cfg.allow_weaker_sandbox);
	reset();
	cr_assert_eq(load_file("{\"allow_weaker_sandbox\": true}"), 0);
	cr_expect(cfg.allow_weaker_sandbox);
	reset();
	expect_error(ARGS("--allow-weaker-sandbox=maybe"), NONE, "--allow-weaker-sandbox");
}

Test(gw_config, profiles_come_from_the_file)
{
	cr_assert_eq(
	        load_file("{\"profiles\": {"
	                  " \"strict\": {\"memory\": \"64MB\", \"wall_time\": 10,"
	                  "   \"output\": 4096},"
	                  " \"permissive\": {\"network\": true, \"read_only\": [\"/data\"]}}}"),
	        0, "%s", err.text);
	cr_expect_eq(cfg.profiles[GW_PROFILE_STRICT].memory, (size_t)64 << 20);
	cr_expect_eq(cfg.profiles[GW_PROFILE_STRICT].wall_time, 10.0);
	cr_expect_eq(cfg.profiles[GW_PROFILE_STRICT].output, 4096);
	cr_expect_eq(cfg.profiles[GW_PROFILE_STRICT].cpu_time, 30, "unset keys keep defaults");
	cr_expect(cfg.profiles[GW_PROFILE_PERMISSIVE].network);
	cr_expect_str_eq(cfg.profiles[GW_PROFILE_PERMISSIVE].read_only[0], "/data");
	cr_expect_eq(cfg.profiles[GW_PROFILE_MODERATE].memory, (size_t)512 << 20);
	cr_expect_not(cfg.custom_profile);
}

Test(gw_config, profile_errors_name_the_key)
{
	cr_assert_eq(load_file("{\"profiles\": {\"strict\": {\"memory\": \"lots\"}}}"), -EINVAL);
	cr_expect(strstr(err.text, "config file"), "%s", err.text);
	cr_expect(strstr(err.text, "key \"profiles.strict.memory\": expected a size"), "%s",
	          err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": {\"moderate\": {\"wal_time\": 3}}}"), -EINVAL);
	cr_expect(strstr(err.text, "\"profiles.moderate.wal_time\""), "%s", err.text);
	cr_expect(strstr(err.text, "did you mean \"wall_time\""), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": {\"stirct\": {}}}"), -EINVAL);
	cr_expect(strstr(err.text, "unknown profile \"stirct\" (did you mean \"strict\"?)"), "%s",
	          err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": {\"none\": {}}}"), -EINVAL);
	cr_expect(strstr(err.text, "unknown profile \"none\""), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": [1]}"), -EINVAL);
	cr_expect(strstr(err.text, "key \"profiles\": expected an object"), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": \"strict\"}"), -EINVAL);
	cr_expect(strstr(err.text, "key \"profiles\""), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": {\"strict\": 5}}"), -EINVAL);
	cr_expect(strstr(err.text, "\"profiles.strict\": expected an object"), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profiles\": {\"strict\": {\"processes\": 1.5}}}"), -EINVAL);
	cr_expect(strstr(err.text, "profiles.strict.processes"), "%s", err.text);
	reset();
	cr_assert_eq(load_file("{\"profile\": {}}"), -EINVAL);
	cr_expect(strstr(err.text, "did you mean \"profiles\""), "%s", err.text);
}

Test(gw_config, profiles_are_only_in_the_file)
{
	expect_error(ARGS("--profiles", "{}"), NONE, "--profiles",
	             "only be set in the config file");
	expect_error(NONE, ARGS("SANDCELL_PROFILES={}"), "unknown variable SANDCELL_PROFILES");
}

Test(gw_config, check_sandbox_is_an_action)
{
	expect_ok(NONE, NONE);
	cr_expect_eq(action, GW_CONFIG_RUN);
	cr_assert_eq(load(ARGS("--check-sandbox"), NONE), 0, "%s", err.text);
	cr_expect_eq(action, GW_CONFIG_CHECK_SANDBOX);
	cr_expect_not(cfg.check_json);
	reset();
	cr_assert_eq(load(ARGS("--json", "--check-sandbox"), NONE), 0, "%s", err.text);
	cr_expect_eq(action, GW_CONFIG_CHECK_SANDBOX);
	cr_expect(cfg.check_json);
	reset();
	expect_error(ARGS("--json"), NONE, "--json only goes with --check-sandbox");
	expect_error(ARGS("--check-sandbox=yes"), NONE, "--check-sandbox takes no value");
	expect_error(NONE, ARGS("SANDCELL_CHECK_SANDBOX=1"), "unknown variable");
	cr_assert_eq(load_file("{\"check_sandbox\": true}"), -EINVAL);
	cr_expect(strstr(err.text, "unknown key \"check_sandbox\""), "%s", err.text);
}

Test(gw_config, kernelspec_names_and_their_profiles)
{
	const char *names[GW_CONFIG_KERNEL_NAMES];
	size_t n = gw_config_kernel_names(&cfg, names);

	cr_assert_eq(n, 4);
	cr_expect_str_eq(names[0], "sandcell");
	cr_expect_str_eq(names[1], "sandcell-strict");
	cr_expect_str_eq(names[2], "sandcell-moderate");
	cr_expect_str_eq(names[3], "sandcell-permissive");
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell"), GW_PROFILE_MODERATE);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell-strict"), GW_PROFILE_STRICT);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell-permissive"), GW_PROFILE_PERMISSIVE);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell-custom"), -ENOENT);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell-none"), -ENOENT);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "python3"), -ENOENT);

	/* A custom profile, a strict default and a default kernel of the operator's own. */
	cr_assert_eq(load(ARGS("--config", temp_json("{\"profiles\": {\"custom\": {}}}"),
	                       "--default-profile", "strict", "--default-kernel", "py3"),
	                  NONE),
	             0, "%s", err.text);
	n = gw_config_kernel_names(&cfg, names);
	cr_assert_eq(n, 6);
	cr_expect_str_eq(names[1], "py3");
	cr_expect_str_eq(names[5], "sandcell-custom");
	cr_expect_eq(gw_config_kernel_profile(&cfg, "py3"), GW_PROFILE_STRICT);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell"), GW_PROFILE_STRICT);
	cr_expect_eq(gw_config_kernel_profile(&cfg, "sandcell-custom"), GW_PROFILE_CUSTOM);

	/* A default kernel that is one of the profiles' names is not listed twice. */
	reset();
	expect_ok(ARGS("--default-kernel", "sandcell-permissive"), NONE);
	cr_expect_eq(gw_config_kernel_names(&cfg, names), 4);
}

Test(gw_config, profile_allocation_failures_are_enomem_and_leak_nothing)
{
	const char *path = temp_json("{\"profiles\": {\"strict\": {\"read_only\": [\"/a\", \"/b\"],"
	                             " \"allow_import\": [\"m\"], \"memory\": \"1GB\"},"
	                             " \"custom\": {\"block_import\": [\"x\", \"y\"]}}}");
	bool failed = true;

	test_alloc_install();
	for (unsigned long nth = 1; failed && nth < 1000; nth++) {
		int r;

		reset();
		test_alloc_fail_at(nth, false);
		r = load(ARGS("--config", path), NONE);
		failed = test_alloc_stop();
		if (failed)
			cr_expect(r == -ENOMEM || r == -EINVAL, "allocation %lu: %d %s", nth, r,
			          err.text);
		else
			cr_expect_eq(r, 0, "allocation %lu: %s", nth, err.text);
		cr_expect_eq(test_alloc_live(), 0, "jansson leak after allocation %lu", nth);
	}
	cr_expect_not(failed, "the loop ended");
	cr_expect_str_eq(cfg.profiles[GW_PROFILE_CUSTOM].block_import[1], "y");
}
