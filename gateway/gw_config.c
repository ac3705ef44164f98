/*
 * The gateway's settings. One table below describes every option (name, kind, limits, default,
 * help); the defaults, the config file, the environment, the command line and --help all read
 * it, so the sources can never disagree about a name or a syntax. struct gw_config owns its
 * strings (malloc'd, freed with free()); this file never logs, the caller prints the error text.
 * Errors: -EINVAL for anything the operator wrote, -ENOMEM, and -EIO when --help cannot be
 * written. Operators' page: docs/configuration.md.
 */
#include "gw_config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#ifndef SANDCELL_VERSION
#define SANDCELL_VERSION "0.1.0"
#endif

#define GW_CONFIG_FILE_MAX    ((size_t)1 << 20) /* a config file is a few hundred bytes */
#define GW_CONFIG_STRING_MAX  4096              /* any one string value, paths included */
#define GW_CONFIG_SIZE_MAX    ((unsigned long long)1 << 40) /* 1 TiB */
#define GW_CONFIG_SECONDS_MAX 1e9 /* ~31 years: still exact in int64 microseconds */
#define GW_CONFIG_NAME_MAX    64

enum opt_kind {
	OPT_STRING,   /* char *, checked and normalised by opt->check */
	OPT_INT,      /* int in [min, max], or one of opt->names */
	OPT_SECONDS,  /* double in [0 or > 0, GW_CONFIG_SECONDS_MAX] */
	OPT_BOOL,     /* bool */
	OPT_SIZE,     /* size_t in [1, 1 TiB] */
	OPT_ORIGINS,  /* char **, NULL-terminated */
	OPT_CONFIG,   /* --config: read first, then recorded in config_file */
	OPT_PROFILES, /* "profiles": config file only, an object of profile objects */
	OPT_ACTION,   /* bool set by a bare command-line flag (--check-sandbox, --json) */
	OPT_HELP,     /* command line only */
	OPT_VERSION,  /* command line only */
};

enum {
	OPT_NULLABLE = 1 << 0, /* JSON null in the file resets it to NULL */
	OPT_SECRET = 1 << 1,   /* never copied into an error message */
	OPT_POSITIVE = 1 << 2, /* OPT_SECONDS: 0 is not allowed */
};

/*
 * Checks a string value; on success stores an owned, normalised copy in *out. Returns 0,
 * -EINVAL with *why set to a static reason, or -ENOMEM.
 */
typedef int opt_check_fn(const char *in, char **out, const char **why);

struct opt {
	const char *name; /* long option without "--"; env and file names derive from it */
	enum opt_kind kind;
	size_t offset;  /* of the field in struct gw_config */
	unsigned flags; /* OPT_* above */
	long long min;  /* OPT_INT range */
	long long max;
	double max_seconds;       /* OPT_SECONDS: upper bound, 0 = GW_CONFIG_SECONDS_MAX */
	const char *const *names; /* OPT_INT: names for 0, 1, ... (NULL-terminated) or NULL */
	opt_check_fn *check;      /* OPT_STRING, OPT_CONFIG */
	const char *def;          /* default in command-line syntax; NULL = NULL or none */
	const char *group;        /* --help heading, printed when it changes */
	const char *metavar;      /* --help: "--port PORT" */
	const char *def_help;     /* --help: what the default is when def is NULL */
	const char *help;         /* --help: what the option does, one paragraph */
};

static opt_check_fn check_ip, check_token, check_base_url, check_path, check_kernel_name,
        check_profile_name;

static const char *const log_level_names[] = {"error", "warning", "info", "debug", NULL};

#define OFF(f) offsetof(struct gw_config, f)

static const struct opt opts[] = {
        {
                .name = "ip",
                .kind = OPT_STRING,
                .offset = OFF(ip),
                .check = check_ip,
                .def = "127.0.0.1",
                .group = "Listening",
                .metavar = "ADDRESS",
                .help = "IP address (IPv4 or IPv6) to listen on. The default accepts clients on "
                        "this machine only; 0.0.0.0 or :: accept them from any network, so set "
                        "a token before using either.",
        },
        {
                .name = "port",
                .kind = OPT_INT,
                .offset = OFF(port),
                .min = 0,
                .max = 65535,
                .def = "8888",
                .metavar = "PORT",
                .help = "TCP port to listen on; 0 picks a free port.",
        },
        {
                .name = "base-url",
                .kind = OPT_STRING,
                .offset = OFF(base_url),
                .check = check_base_url,
                .def = "/",
                .metavar = "PATH",
                .help = "URL path under which the API is served, for a gateway behind a "
                        "reverse proxy: with /sandcell/ the kernels are listed at "
                        "/sandcell/api/kernels. A missing leading or trailing '/' is added. "
                        "Letters, digits, '-', '.', '_', '~' and '/' only.",
        },
        {
                .name = "token",
                .kind = OPT_STRING,
                .offset = OFF(token),
                .flags = OPT_NULLABLE | OPT_SECRET,
                .check = check_token,
                .metavar = "TOKEN",
                .def_help = "a random token made at each start and printed in the startup line",
                .help = "Secret every client must present, as the header 'Authorization: "
                        "token TOKEN' or the query parameter '?token=TOKEN'. An empty TOKEN "
                        "turns authentication off: do that only on a listener no one else can "
                        "reach. Prefer SANDCELL_TOKEN or the config file to this option: other "
                        "users of the machine can read command lines.",
        },
        {
                .name = "allow-origin",
                .kind = OPT_ORIGINS,
                .offset = OFF(allow_origins),
                .def = "",
                .metavar = "ORIGIN",
                .def_help = "none: browsers allow same-origin pages only",
                .help = "Let web pages from ORIGIN, written scheme://host[:port] with no path "
                        "(https://app.example.com), call the API and open WebSockets. Repeat "
                        "the option, or give a comma-separated list, for several origins; '*' "
                        "allows every origin. An empty ORIGIN clears the list.",
        },
        {
                .name = "web-dir",
                .kind = OPT_STRING,
                .offset = OFF(web_dir),
                .flags = OPT_NULLABLE,
                .check = check_path,
                .metavar = "DIR",
                .def_help = "the page built into the binary",
                .help = "Serve the notebook page (at / and /static/NAME) from the files in "
                        "DIR instead, read at each request: for working on the page (web/ "
                        "in the source tree).",
        },
        {
                .name = "kernel-binary",
                .kind = OPT_STRING,
                .offset = OFF(kernel_binary),
                .flags = OPT_NULLABLE,
                .check = check_path,
                .group = "Kernels",
                .metavar = "PATH",
                .def_help = "sandcell-kernel next to the gateway's own binary (or at "
                            "../kernel/sandcell-kernel in a build tree), else on PATH",
                .help = "The sandcell-kernel executable to launch for each kernel.",
        },
        {
                .name = "runtime-dir",
                .kind = OPT_STRING,
                .offset = OFF(runtime_dir),
                .flags = OPT_NULLABLE,
                .check = check_path,
                .metavar = "DIR",
                .def_help = "a new private directory under $XDG_RUNTIME_DIR or /tmp, removed "
                            "at exit",
                .help = "Directory for the kernels' connection files.",
        },
        {
                .name = "default-kernel",
                .kind = OPT_STRING,
                .offset = OFF(default_kernel),
                .check = check_kernel_name,
                .def = "sandcell",
                .metavar = "NAME",
                .help = "Kernel name used when a client starts a kernel without naming one.",
        },
        {
                .name = "max-kernels",
                .kind = OPT_INT,
                .offset = OFF(max_kernels),
                .min = 1,
                .max = 100000,
                .def = "64",
                .metavar = "N",
                .help = "Most kernels at once, counting those still starting; further start "
                        "requests are refused.",
        },
        {
                .name = "zygote-kernels",
                .kind = OPT_INT,
                .offset = OFF(zygote_kernels),
                .min = 0,
                .max = 100000,
                .def = "64",
                .metavar = "N",
                .help = "Fork kernels from a zygote, a kernel process that started Python and "
                        "imported the kernel's modules once, so that a kernel costs a fork and "
                        "its sandbox; it is replaced after N kernels, because the kernels of "
                        "one zygote share Python's string-hash seed. 0 starts every kernel as "
                        "a new process.",
        },
        {
                .name = "kernel-pool",
                .kind = OPT_INT,
                .offset = OFF(kernel_pool),
                .min = 0,
                .max = 64,
                .def = "2",
                .metavar = "N",
                .help = "Keep N kernels started and ready for each kernelspec in use, so that a "
                        "new kernel (or a one-shot task) is handed out at once and the pool "
                        "refills in the background; 0 starts every kernel on demand. Pooled "
                        "kernels are not listed and do not count against --max-kernels.",
        },
        {
                .name = "kernel-start-timeout",
                .kind = OPT_SECONDS,
                .offset = OFF(kernel_start_timeout),
                .flags = OPT_POSITIVE,
                .def = "30",
                .metavar = "SECONDS",
                .help = "Give up on a kernel that has not answered this long after its launch.",
        },
        {
                .name = "restart-limit",
                .kind = OPT_INT,
                .offset = OFF(restart_limit),
                .min = 0,
                .max = 1000,
                .def = "5",
                .metavar = "N",
                .help = "How many times a kernel that crashed is restarted automatically "
                        "before it is left dead; 0 never restarts one.",
        },
        {
                .name = "cull-idle-timeout",
                .kind = OPT_SECONDS,
                .offset = OFF(cull_idle_timeout),
                .def = "0",
                .group = "Culling idle kernels",
                .metavar = "SECONDS",
                .help = "Shut down a kernel that has been idle this long; 0 never culls.",
        },
        {
                .name = "cull-interval",
                .kind = OPT_SECONDS,
                .offset = OFF(cull_interval),
                .flags = OPT_POSITIVE,
                .def = "60",
                .metavar = "SECONDS",
                .help = "How often to look for kernels to cull.",
        },
        {
                .name = "cull-connected",
                .kind = OPT_BOOL,
                .offset = OFF(cull_connected),
                .def = "false",
                .metavar = "BOOL",
                .help = "Also cull idle kernels that still have clients connected.",
        },
        {
                .name = "cull-busy",
                .kind = OPT_BOOL,
                .offset = OFF(cull_busy),
                .def = "false",
                .metavar = "BOOL",
                .help = "Also cull kernels that are busy running code.",
        },
        {
                .name = "max-body",
                .kind = OPT_SIZE,
                .offset = OFF(max_body),
                .def = "1M",
                .group = "Limits",
                .metavar = "BYTES",
                .help = "Largest REST request body accepted.",
        },
        {
                .name = "max-ws-frame",
                .kind = OPT_SIZE,
                .offset = OFF(max_ws_frame),
                .def = "16M",
                .metavar = "BYTES",
                .help = "Largest WebSocket message accepted from a client.",
        },
        {
                .name = "ws-queue-cap",
                .kind = OPT_SIZE,
                .offset = OFF(ws_queue_cap),
                .def = "32M",
                .metavar = "BYTES",
                .help = "Most output queued for one WebSocket client that reads slowly.",
        },
        {
                .name = "replay-cap",
                .kind = OPT_SIZE,
                .offset = OFF(replay_cap),
                .def = "8M",
                .metavar = "BYTES",
                .help = "Most output kept for a kernel while no client is connected, and "
                        "replayed to the next client that connects.",
        },
        {
                .name = "ping-interval",
                .kind = OPT_SECONDS,
                .offset = OFF(ping_interval),
                .max_seconds = 3600, /* libwebsockets keeps it in 16 bits, and 3 times it */
                .def = "30",
                .metavar = "SECONDS",
                .help = "Time between WebSocket pings, which keep connections open through "
                        "proxies and detect dead clients; 0 sends none.",
        },
        {
                .name = "scripts-dir",
                .kind = OPT_STRING,
                .offset = OFF(scripts_dir),
                .flags = OPT_NULLABLE,
                .check = check_path,
                .group = "Task API",
                .metavar = "DIR",
                .def_help = "none: execute_file tasks are refused",
                .help = "Directory of the scripts an execute_file task may run, named by "
                        "paths relative to it; nothing outside it can be reached.",
        },
        {
                .name = "history-db",
                .kind = OPT_STRING,
                .offset = OFF(history_db),
                .flags = OPT_NULLABLE,
                .check = check_path,
                .metavar = "PATH",
                .def_help = "$XDG_STATE_HOME/sandcell/history.sqlite3 (~/.local/state/...)",
                .help = "SQLite database where every task execution is recorded (session, "
                        "code hash and size, times, outcome). ':memory:' keeps it in memory "
                        "only.",
        },
        {
                .name = "history-max-rows",
                .kind = OPT_INT,
                .offset = OFF(history_max_rows),
                .min = 100,
                .max = 100000000,
                .def = "100000",
                .metavar = "N",
                .help = "Most executions the history keeps; the oldest go first.",
        },
        {
                .name = "session-idle-timeout",
                .kind = OPT_SECONDS,
                .offset = OFF(session_idle_timeout),
                .flags = OPT_POSITIVE,
                .def = "1800",
                .metavar = "SECONDS",
                .help = "An interactive task session unused this long is ended and its kernel "
                        "shut down.",
        },
        {
                .name = "max-tasks-per-connection",
                .kind = OPT_INT,
                .offset = OFF(max_tasks_per_connection),
                .min = 1,
                .max = 10000,
                .def = "32",
                .metavar = "N",
                .help = "Most tasks in flight on one WebSocket; more are refused.",
        },
        {
                .name = "default-profile",
                .kind = OPT_STRING,
                .offset = OFF(default_profile),
                .check = check_profile_name,
                .def = "moderate",
                .group = "Sandbox",
                .metavar = "PROFILE",
                .help = "Sandbox profile of the kernelspec \"sandcell\": strict, moderate, "
                        "permissive, or custom when the config file defines one. The others "
                        "are offered as sandcell-strict, sandcell-moderate, ...",
        },
        {
                .name = "allow-weaker-sandbox",
                .kind = OPT_BOOL,
                .offset = OFF(allow_weaker_sandbox),
                .def = "false",
                .metavar = "BOOL",
                .help = "Start kernels even under a profile whose sandbox layers this host "
                        "lacks (see --check-sandbox): their isolation is weaker than the "
                        "profile promises. Without it such a profile refuses to start "
                        "kernels.",
        },
        {
                .name = "profiles",
                .kind = OPT_PROFILES,
                .metavar = "{...}",
                .help = "The limits of each profile, e.g. \"profiles\": "
                        "{\"strict\": {\"memory\": \"64MB\", \"wall_time\": 10}}. Keys: "
                        "memory, cpu_time, wall_time, processes, threads, open_files, "
                        "file_size, disk, output, read_only, network, allow_import, "
                        "block_import. A \"custom\" profile offers sandcell-custom.",
        },
        {
                .name = "check-sandbox",
                .kind = OPT_ACTION,
                .offset = OFF(check_sandbox),
                .help = "Report which sandbox layers this host gives kernels and what each "
                        "profile gets, then exit: 0 when every profile can run, 1 otherwise.",
        },
        {
                .name = "json",
                .kind = OPT_ACTION,
                .offset = OFF(check_json),
                .help = "With --check-sandbox: print the report as JSON (as GET /api/sandbox).",
        },
        {
                .name = "log-level",
                .kind = OPT_INT,
                .offset = OFF(log_level),
                .min = 0,
                .max = 3,
                .names = log_level_names,
                .def = "2",
                .group = "Other",
                .metavar = "LEVEL",
                .help = "How much to log: 0 or error, 1 or warning, 2 or info, 3 or debug.",
        },
        {
                .name = "config",
                .kind = OPT_CONFIG,
                .offset = OFF(config_file),
                .check = check_path,
                .metavar = "FILE",
                .def_help = "none",
                .help = "Read settings from this JSON file first; the environment and the "
                        "command line override them.",
        },
        {
                .name = "help",
                .kind = OPT_HELP,
                .help = "Print this help and exit.",
        },
        {
                .name = "version",
                .kind = OPT_VERSION,
                .help = "Print the version and exit.",
        },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/*
 * SANDCELL_* variables that belong to other sandcell programs and may be in the gateway's
 * environment for them: the kernel's own switch (inherited by the kernels the gateway starts)
 * and the integration test harness's. Everything else under SANDCELL_ must be an option.
 */
static const char *const foreign_env[] = {
        "SANDCELL_SHIM_IPYTHON",
        "SANDCELL_KERNEL",
        "SANDCELL_TEST_KERNEL_NAME",
};

enum source_kind { SOURCE_DEFAULT, SOURCE_FILE, SOURCE_ENV, SOURCE_ARGV };

/* Where values come from, for error messages and for --allow-origin's accumulation. */
struct source {
	enum source_kind kind;
	const char *path;  /* SOURCE_FILE */
	bool origins_seen; /* an --allow-origin came from this source already: append */
};

static bool opt_in_env(const struct opt *o)
{
	return o->kind != OPT_HELP && o->kind != OPT_VERSION && o->kind != OPT_PROFILES &&
	       o->kind != OPT_ACTION;
}

static bool opt_in_file(const struct opt *o)
{
	return (opt_in_env(o) && o->kind != OPT_CONFIG) || o->kind == OPT_PROFILES;
}

static bool opt_on_command_line(const struct opt *o)
{
	return o->kind != OPT_PROFILES;
}

static bool opt_takes_value(const struct opt *o)
{
	return o->kind != OPT_BOOL && o->kind != OPT_HELP && o->kind != OPT_VERSION &&
	       o->kind != OPT_ACTION;
}

static void *opt_field(struct gw_config *c, const struct opt *o)
{
	return (char *)c + o->offset;
}

/* "max-kernels" -> "SANDCELL_MAX_KERNELS" */
static void env_name(const struct opt *o, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "SANDCELL_%s", o->name);

	for (size_t i = 0; i < n && i < size; i++) {
		if (buf[i] == '-')
			buf[i] = '_';
		else if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (char)(buf[i] - 'a' + 'A');
	}
}

/* "max-kernels" -> "max_kernels" */
static void file_key(const struct opt *o, char *buf, size_t size)
{
	snprintf(buf, size, "%s", o->name);
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = '_';
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* ASCII only, so that no locale can change how a name or a suffix is read. */
static char ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool ascii_iequal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

/*
 * The option a mistyped name was probably meant to be, or NULL. name is in option form
 * (lower case, '-'); the caller spells the answer the way its source does.
 */
static const struct opt *opt_suggest(const char *name, bool (*usable)(const struct opt *))
{
	const struct opt *best = NULL;
	size_t best_d = 3; /* at most two edits */

	for (size_t i = 0; i < N_OPTS; i++) {
		size_t d;

		if (!usable(&opts[i]))
			continue;
		d = gw__edit_distance(name, opts[i].name);
		if (d < best_d) {
			best = &opts[i];
			best_d = d;
		}
	}
	return best;
}

static bool opt_any(const struct opt *o)
{
	(void)o;
	return true;
}

/* Turns "SANDCELL_MAX_KERNEL" or "max_kernel" into the option form "max-kernel". */
static void to_option_form(const char *in, char *buf, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		buf[i] = in[i] == '_' ? '-' : ascii_lower(in[i]);
	buf[i] = '\0';
}

/*
 * Copies s into buf for an error message: at most max characters, non-printable ones as '?',
 * "..." when cut.
 */
static const char *shorten(const char *s, size_t max, bool keep_tail, char *buf, size_t size)
{
	size_t len = strlen(s), start = 0, n;

	if (max + 4 > size)
		max = size - 4;
	if (len > max && keep_tail)
		start = len - max;
	n = len > max ? max : len;
	buf[0] = '\0';
	if (len > max && keep_tail)
		strcpy(buf, "...");
	for (size_t i = 0, o = strlen(buf); i < n; i++, o++) {
		unsigned char ch = (unsigned char)s[start + i];

		buf[o] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
		buf[o + 1] = '\0';
	}
	if (len > max && !keep_tail)
		strcat(buf, "...");
	return buf;
}

/* The "where" part of a message: the source, and the option as that source spells it. */
static void describe_where(const struct source *src, const struct opt *o, const char *value,
                           char *buf, size_t size)
{
	char name[GW_CONFIG_NAME_MAX], shown[64], path[64];

	if (value && (o->flags & OPT_SECRET))
		value = NULL;
	switch (src->kind) {
	case SOURCE_FILE:
		file_key(o, name, sizeof(name));
		snprintf(buf, size, "config file %s: key \"%s\"",
		         shorten(src->path, 48, true, path, sizeof(path)), name);
		break;
	case SOURCE_ENV:
		env_name(o, name, sizeof(name));
		if (value)
			snprintf(buf, size, "environment: %s=\"%s\"", name,
			         shorten(value, 32, false, shown, sizeof(shown)));
		else
			snprintf(buf, size, "environment: %s", name);
		break;
	case SOURCE_ARGV:
		if (value)
			snprintf(buf, size, "command line: --%s \"%s\"", o->name,
			         shorten(value, 32, false, shown, sizeof(shown)));
		else
			snprintf(buf, size, "command line: --%s", o->name);
		break;
	case SOURCE_DEFAULT:
		snprintf(buf, size, "default of --%s", o->name);
		break;
	}
}

/* Sets err to "<where>: <reason>" and returns -EINVAL. */
static int bad_value(const struct source *src, const struct opt *o, const char *value,
                     struct proto_error *err, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static int bad_value(const struct source *src, const struct opt *o, const char *value,
                     struct proto_error *err, const char *fmt, ...)
{
	char where[sizeof(err->text)], reason[sizeof(err->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	describe_where(src, o, value, where, sizeof(where));
	return proto_error_set(err, EINVAL, "%s: %s", where, reason);
}

static int out_of_memory(struct proto_error *err)
{
	return proto_error_set(err, ENOMEM, "out of memory");
}

static double seconds_max(const struct opt *o)
{
	return o->max_seconds > 0 ? o->max_seconds : GW_CONFIG_SECONDS_MAX;
}

/* What a value of o must look like, after "expected ". */
static void describe_expected(const struct opt *o, char *buf, size_t size)
{
	switch (o->kind) {
	case OPT_INT:
		if (o->names)
			snprintf(buf, size, "%lld..%lld or error, warning, info, debug", o->min,
			         o->max);
		else
			snprintf(buf, size, "an integer %lld..%lld", o->min, o->max);
		break;
	case OPT_SECONDS:
		snprintf(buf, size, "seconds, a decimal number %s and at most %.0f",
		         o->flags & OPT_POSITIVE ? "above 0" : "from 0", seconds_max(o));
		break;
	case OPT_BOOL:
		snprintf(buf, size, "true or false (also yes/no, 1/0)");
		break;
	case OPT_SIZE:
		snprintf(buf, size, "a size 1..1T in bytes, like 65536, 512K, 16M or 1G");
		break;
	case OPT_ORIGINS:
		snprintf(buf, size, "an array of origins (strings)");
		break;
	case OPT_PROFILES:
		snprintf(buf, size, "an object of profiles");
		break;
	default:
		snprintf(buf, size, "a string");
		break;
	}
}

static int bad_type(const struct source *src, const struct opt *o, const char *value,
                    struct proto_error *err)
{
	char expected[100];

	describe_expected(o, expected, sizeof(expected));
	return bad_value(src, o, value, err, "expected %s", expected);
}

/* Parses one or more decimal digits at s; *end is left on the first non-digit. */
static int parse_digits(const char *s, unsigned long long *out, const char **end)
{
	unsigned long long n = 0;
	const char *p = s;

	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (n > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	if (p == s)
		return -EINVAL;
	*out = n;
	*end = p;
	return 0;
}

static int parse_int(const struct opt *o, const char *s, int *out)
{
	unsigned long long n;
	const char *end;

	if (o->names)
		for (int i = 0; o->names[i]; i++)
			if (ascii_iequal(s, o->names[i])) {
				*out = i;
				return 0;
			}
	if (parse_digits(s, &n, &end) < 0 || *end || n < (unsigned long long)o->min ||
	    n > (unsigned long long)o->max)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (ascii_iequal(s, "true") || ascii_iequal(s, "yes") || !strcmp(s, "1"))
		*out = true;
	else if (ascii_iequal(s, "false") || ascii_iequal(s, "no") || !strcmp(s, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/*
 * A whole number of bytes with an optional binary suffix: K, KB, KiB (1024), M..., G..., T...
 * in any case. No sign, no space, no fraction; 1..1 TiB.
 */
static int parse_size(const char *s, size_t *out)
{
	static const struct {
		char letter;
		unsigned shift;
	} units[] = {{'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}};
	unsigned long long n;
	unsigned shift = 0;
	const char *end;

	if (parse_digits(s, &n, &end) < 0)
		return -EINVAL;
	if (*end) {
		bool found = false;

		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (ascii_lower(*end) == units[i].letter) {
				shift = units[i].shift;
				found = true;
			}
		if (!found)
			return -EINVAL;
		end++;
		if (!(*end == '\0' || ascii_iequal(end, "b") || ascii_iequal(end, "ib")))
			return -EINVAL;
	}
	if (n == 0 || n > GW_CONFIG_SIZE_MAX >> shift || (n << shift) > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)(n << shift);
	return 0;
}

static bool seconds_in_range(const struct opt *o, double v)
{
	return isfinite(v) && v >= 0 && v <= seconds_max(o) &&
	       (v > 0 || !(o->flags & OPT_POSITIVE));
}

/*
 * Decimal seconds: digits with an optional fraction ("30", "0.5", ".25", "2."), no sign,
 * exponent, "inf" or "nan". Parsed by hand so the C locale's decimal point is not needed.
 */
static int parse_seconds(const struct opt *o, const char *s, double *out)
{
	double mantissa = 0, divisor = 1;
	bool any = false;
	const char *p = s;

	for (; is_digit(*p); p++, any = true)
		mantissa = mantissa * 10 + (*p - '0');
	if (*p == '.')
		/* Digits past nanoseconds cannot matter to a timer; they are read and dropped. */
		for (p++; is_digit(*p); p++, any = true)
			if (divisor < 1e9) {
				mantissa = mantissa * 10 + (*p - '0');
				divisor *= 10;
			}
	if (!any || *p || !seconds_in_range(o, mantissa / divisor))
		return -EINVAL;
	*out = mantissa / divisor;
	return 0;
}

/* Copies in if it is at most GW_CONFIG_STRING_MAX bytes and has no control character. */
static int dup_plain(const char *in, bool spaces_ok, char **out, const char **why)
{
	size_t len = strlen(in);

	if (len > GW_CONFIG_STRING_MAX) {
		*why = "longer than 4096 bytes";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch < 0x20 || ch == 0x7f || (!spaces_ok && ch == ' ')) {
			*why = spaces_ok ? "contains a control character"
			                 : "contains a space or a control character";
			return -EINVAL;
		}
	}
	*out = strdup(in);
	return *out ? 0 : -ENOMEM;
}

static int check_ip(const char *in, char **out, const char **why)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, in, addr) != 1 && inet_pton(AF_INET6, in, addr) != 1) {
		*why = "expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1";
		return -EINVAL;
	}
	return dup_plain(in, false, out, why);
}

/*
 * Tokens travel in a header and a query string, through the server's 512-byte header copies:
 * printable ASCII without spaces, and short enough to arrive whole.
 */
static int check_token(const char *in, char **out, const char **why)
{
	size_t len = strlen(in);
	bool ok = len <= 256;

	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)in[i] > ' ' && (unsigned char)in[i] < 0x7f;
	if (!ok) {
		*why = "expected at most 256 printable ASCII characters, no spaces";
		return -EINVAL;
	}
	return dup_plain(in, false, out, why);
}

static int check_path(const char *in, char **out, const char **why)
{
	if (!*in) {
		*why = "must not be empty";
		return -EINVAL;
	}
	return dup_plain(in, true, out, why);
}

static int check_kernel_name(const char *in, char **out, const char **why)
{
	size_t len = strlen(in);
	bool ok = len >= 1 && len <= 64;

	for (size_t i = 0; ok && i < len; i++)
		ok = is_alpha(in[i]) || is_digit(in[i]) || strchr("._-", in[i]);
	if (!ok) {
		*why = "expected a kernel name of 1 to 64 letters, digits, '.', '_' or '-'";
		return -EINVAL;
	}
	return dup_plain(in, false, out, why);
}

/* The profile the kernelspec "sandcell" runs; custom is checked against the file at the end. */
static int check_profile_name(const char *in, char **out, const char **why)
{
	if (gw_profile_kind_from_name(in) < 0) {
		*why = "expected a profile: strict, moderate, permissive or custom";
		return -EINVAL;
	}
	return dup_plain(in, false, out, why);
}

/*
 * "sandcell" -> "/sandcell/", "/a//b" -> "/a/b/", "" -> "/". Only URL path characters that
 * never need escaping, and no "." or ".." segment, so routes can compare bytes.
 */
static int check_base_url(const char *in, char **out, const char **why)
{
	size_t len = strlen(in), n = 0;
	char *url;

	if (len > GW_CONFIG_STRING_MAX) {
		*why = "longer than 4096 bytes";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if (!is_alpha(in[i]) && !is_digit(in[i]) && !strchr("-._~/", in[i])) {
			*why = "expected a URL path of letters, digits, '-', '.', '_', '~' and '/'";
			return -EINVAL;
		}
	url = malloc(len + 3);
	if (!url)
		return -ENOMEM;
	url[n++] = '/';
	for (const char *seg = in; *seg;) {
		size_t seg_len = strcspn(seg, "/");

		if ((seg_len == 1 && seg[0] == '.') || (seg_len == 2 && !strncmp(seg, "..", 2))) {
			free(url);
			*why = "must not contain a \".\" or \"..\" segment";
			return -EINVAL;
		}
		if (seg_len) {
			memcpy(url + n, seg, seg_len);
			n += seg_len;
			url[n++] = '/';
		}
		seg += seg_len;
		seg += *seg == '/';
	}
	url[n] = '\0';
	*out = url;
	return 0;
}

/*
 * One origin as browsers send it: "*" or scheme://host[:port], no path. Stored lower-case
 * (browsers serialise scheme and host that way), so the server can compare bytes.
 */
static int check_origin(const char *in, size_t len, char **out, const char **why)
{
	size_t i = 0, host;
	char *o;

	*why = "expected \"*\" or an origin scheme://host[:port] with no path";
	if (len == 1 && in[0] == '*')
		goto copy;
	if (!len || !is_alpha(in[0]))
		return -EINVAL;
	while (i < len && (is_alpha(in[i]) || is_digit(in[i]) || strchr("+-.", in[i])))
		i++;
	if (len - i < 3 || memcmp(in + i, "://", 3) != 0)
		return -EINVAL;
	i += 3;
	host = i;
	if (i < len && in[i] == '[') {
		while (++i < len && (is_digit(in[i]) || strchr("abcdefABCDEF:.", in[i])))
			;
		if (i == len || in[i] != ']' || i == host + 1)
			return -EINVAL;
		i++;
	} else {
		while (i < len && (is_alpha(in[i]) || is_digit(in[i]) || strchr("-._~", in[i])))
			i++;
		if (i == host)
			return -EINVAL;
	}
	if (i < len && in[i] == ':') {
		unsigned long port = 0;
		size_t digits = 0;

		while (++i < len && is_digit(in[i]) && ++digits <= 5)
			port = port * 10 + (unsigned long)(in[i] - '0');
		if (!digits || digits > 5 || port > 65535)
			return -EINVAL;
	}
	if (i < len && in[i] == '/')
		*why = "an origin has no path, not even a trailing '/': scheme://host[:port]";
	if (i != len)
		return -EINVAL;
copy:
	o = strndup(in, len);
	if (!o)
		return -ENOMEM;
	for (char *p = o; *p; p++)
		*p = ascii_lower(*p);
	*out = o;
	return 0;
}

static void origins_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static size_t origins_count(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* Appends the owned string s to *v (a NULL-terminated array, may be NULL); frees s on failure. */
static int origins_push(char ***v, char *s)
{
	size_t n = origins_count(*v);
	char **grown = realloc(*v, (n + 2) * sizeof(*grown));

	if (!grown) {
		free(s);
		return -ENOMEM;
	}
	grown[n] = s;
	grown[n + 1] = NULL;
	*v = grown;
	return 0;
}

/* An empty list: the struct's allow_origins is never NULL after gw_config_defaults. */
static char **origins_new(void)
{
	return calloc(1, sizeof(char *));
}

/*
 * Installs list (owned) as c's origins: the first --allow-origin of a source replaces the
 * previous source's list, later ones of the same source add to it. Frees list on failure.
 */
static int origins_install(struct gw_config *c, struct source *src, char **list)
{
	size_t n_old = origins_count(c->allow_origins), n_new = origins_count(list);
	char **merged;

	if (!src->origins_seen) {
		origins_free(c->allow_origins);
		c->allow_origins = list;
		src->origins_seen = true;
		return 0;
	}
	merged = malloc((n_old + n_new + 1) * sizeof(*merged));
	if (!merged) {
		origins_free(list);
		return -ENOMEM;
	}
	if (n_old)
		memcpy(merged, c->allow_origins, n_old * sizeof(*merged));
	memcpy(merged + n_old, list, (n_new + 1) * sizeof(*merged));
	free(c->allow_origins);
	free(list);
	c->allow_origins = merged;
	return 0;
}

/* Parses a comma-separated list of origins; spaces around items and empty items are ignored. */
static int parse_origins_text(const char *s, char ***out, const char **why)
{
	char **list = origins_new();

	if (!list)
		return -ENOMEM;
	while (*s) {
		size_t len = strcspn(s, ","), trimmed;
		const char *item = s;
		char *o;
		int r;

		s += len;
		s += *s == ',';
		while (len && (*item == ' ' || *item == '\t')) {
			item++;
			len--;
		}
		trimmed = len;
		while (trimmed && (item[trimmed - 1] == ' ' || item[trimmed - 1] == '\t'))
			trimmed--;
		if (!trimmed)
			continue;
		r = check_origin(item, trimmed, &o, why);
		if (r == 0)
			r = origins_push(&list, o);
		if (r < 0) {
			origins_free(list);
			return r;
		}
	}
	*out = list;
	return 0;
}

/* Applies one value written as on the command line (also env values and JSON strings). */
static int apply_text(struct gw_config *c, const struct opt *o, const char *text,
                      struct source *src, struct proto_error *err)
{
	void *f = opt_field(c, o);
	const char *why = NULL;
	char *s = NULL, **list = NULL;
	int r = -EINVAL;

	switch (o->kind) {
	case OPT_STRING:
	case OPT_CONFIG:
		r = o->check(text, &s, &why);
		if (r == 0) {
			free(*(char **)f);
			*(char **)f = s;
		}
		break;
	case OPT_INT:
		r = parse_int(o, text, (int *)f);
		break;
	case OPT_SECONDS:
		r = parse_seconds(o, text, (double *)f);
		break;
	case OPT_BOOL:
		r = parse_bool(text, (bool *)f);
		break;
	case OPT_SIZE:
		r = parse_size(text, (size_t *)f);
		break;
	case OPT_ORIGINS:
		r = parse_origins_text(text, &list, &why);
		if (r == 0)
			r = origins_install(c, src, list);
		break;
	case OPT_ACTION:
		*(bool *)f = true;
		r = 0;
		break;
	case OPT_PROFILES:
	case OPT_HELP:
	case OPT_VERSION:
		assert(!"not a setting");
		break;
	}
	if (r == -ENOMEM)
		return out_of_memory(err);
	if (r < 0 && why)
		return bad_value(src, o, text, err, "%s", why);
	if (r < 0)
		return bad_type(src, o, text, err);
	return 0;
}

/*
 * "profiles": {"strict": {...}, "moderate": {...}, "permissive": {...}, "custom": {...}}, each
 * applied over the built-in defaults; errors name the key as profiles.NAME.KEY.
 */
static int apply_profiles(struct gw_config *c, const json_t *v, const struct source *src,
                          struct proto_error *err)
{
	char where[64];
	const char *name;
	json_t *p;

	shorten(src->path, 48, true, where, sizeof(where));
	if (!json_is_object(v))
		return proto_error_set(err, EINVAL,
		                       "config file %s: key \"profiles\": expected an object of "
		                       "profiles {\"strict\": {...}, ...}",
		                       where);
	json_object_foreach((json_t *)(uintptr_t)v, name, p) {
		struct proto_error perr = {{0}};
		char prefix[48], shown[40];
		int kind = gw_profile_kind_from_name(name), r;

		if (kind < 0) {
			const char *guess = NULL;

			for (int i = 0; i < GW_PROFILE_COUNT; i++)
				if (gw__edit_distance(name, gw_profile_name(i)) <= 2)
					guess = gw_profile_name(i);
			shorten(name, 32, false, shown, sizeof(shown));
			if (guess)
				return proto_error_set(err, EINVAL,
				                       "config file %s: key \"profiles\": unknown "
				                       "profile \"%s\" (did you mean \"%s\"?)",
				                       where, shown, guess);
			return proto_error_set(err, EINVAL,
			                       "config file %s: key \"profiles\": unknown profile "
			                       "\"%s\" (strict, moderate, permissive or custom)",
			                       where, shown);
		}
		snprintf(prefix, sizeof(prefix), "profiles.%s", name);
		r = gw_profile_apply_json(&c->profiles[kind], p, prefix, &perr);
		if (r == -ENOMEM)
			return out_of_memory(err);
		if (r < 0)
			return proto_error_set(err, EINVAL, "config file %s: %s", where, perr.text);
		if (kind == GW_PROFILE_CUSTOM)
			c->custom_profile = true;
	}
	return 0;
}

/* Applies one JSON value of the config file: its natural type, or a string as on the CLI. */
static int apply_json(struct gw_config *c, const struct opt *o, const json_t *v, struct source *src,
                      struct proto_error *err)
{
	void *f = opt_field(c, o);

	if (o->kind == OPT_PROFILES)
		return apply_profiles(c, v, src, err);
	if (json_is_string(v))
		return apply_text(c, o, json_string_value(v), src, err);
	switch (o->kind) {
	case OPT_STRING:
		if (json_is_null(v) && (o->flags & OPT_NULLABLE)) {
			free(*(char **)f);
			*(char **)f = NULL;
			return 0;
		}
		return bad_value(src, o, NULL, err, "expected a string%s",
		                 o->flags & OPT_NULLABLE ? " or null" : "");
	case OPT_INT:
		if (json_is_integer(v) && json_integer_value(v) >= o->min &&
		    json_integer_value(v) <= o->max) {
			*(int *)f = (int)json_integer_value(v);
			return 0;
		}
		break;
	case OPT_SECONDS:
		if (json_is_number(v) && seconds_in_range(o, json_number_value(v))) {
			*(double *)f = json_number_value(v);
			return 0;
		}
		break;
	case OPT_BOOL:
		if (json_is_boolean(v) || (json_is_integer(v) && (json_integer_value(v) == 0 ||
		                                                  json_integer_value(v) == 1))) {
			*(bool *)f =
			        json_is_true(v) || (json_is_integer(v) && json_integer_value(v));
			return 0;
		}
		break;
	case OPT_SIZE:
		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    (unsigned long long)json_integer_value(v) <= GW_CONFIG_SIZE_MAX &&
		    (unsigned long long)json_integer_value(v) <= SIZE_MAX) {
			*(size_t *)f = (size_t)json_integer_value(v);
			return 0;
		}
		break;
	case OPT_ORIGINS: {
		char **list;
		size_t i;
		json_t *item;

		if (!json_is_array(v))
			break;
		list = origins_new();
		if (!list)
			return out_of_memory(err);
		json_array_foreach(v, i, item) {
			const char *why = "expected a string";
			char *o_str = NULL;
			int r = -EINVAL;

			if (json_is_string(item))
				r = check_origin(json_string_value(item), json_string_length(item),
				                 &o_str, &why);
			if (r == 0)
				r = origins_push(&list, o_str);
			if (r < 0) {
				origins_free(list);
				if (r == -ENOMEM)
					return out_of_memory(err);
				return bad_value(src, o, NULL, err, "item %zu: %s", i, why);
			}
		}
		return origins_install(c, src, list) < 0 ? out_of_memory(err) : 0;
	}
	default:
		assert(!"not in a file");
		break;
	}
	return bad_type(src, o, NULL, err);
}

int gw_config_defaults(struct gw_config *c)
{
	struct source src = {.kind = SOURCE_DEFAULT};

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < GW_PROFILE_COUNT; i++)
		gw_profile_defaults(&c->profiles[i], (enum gw_profile_kind)i);
	for (size_t i = 0; i < N_OPTS; i++) {
		int r;

		if (!opts[i].def)
			continue;
		r = apply_text(c, &opts[i], opts[i].def, &src, NULL);
		if (r < 0) {
			/* The table's defaults are valid; only an allocation can fail here. */
			assert(r == -ENOMEM);
			gw_config_free(c);
			return r;
		}
	}
	return 0;
}

void gw_config_free(struct gw_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < N_OPTS; i++) {
		if (opts[i].kind == OPT_STRING || opts[i].kind == OPT_CONFIG)
			free(*(char **)opt_field(c, &opts[i]));
	}
	origins_free(c->allow_origins);
	for (int i = 0; i < GW_PROFILE_COUNT; i++)
		gw_profile_clear(&c->profiles[i]);
	memset(c, 0, sizeof(*c));
}

enum gw_profile_kind gw_config_default_profile(const struct gw_config *c)
{
	int kind = c->default_profile ? gw_profile_kind_from_name(c->default_profile) : -1;

	return kind < 0 ? GW_PROFILE_MODERATE : (enum gw_profile_kind)kind;
}

/* "sandcell-strict" -> strict; -ENOENT for anything else. */
static int kernel_name_profile(const struct gw_config *c, const char *name)
{
	static const char prefix[] = "sandcell-";
	int kind;

	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
		return -ENOENT;
	kind = gw_profile_kind_from_name(name + sizeof(prefix) - 1);
	if (kind < 0 || (kind == GW_PROFILE_CUSTOM && !c->custom_profile))
		return -ENOENT;
	return kind;
}

int gw_config_kernel_profile(const struct gw_config *c, const char *name)
{
	int kind = kernel_name_profile(c, name);

	if (kind >= 0)
		return kind;
	if (!strcmp(name, "sandcell") || (c->default_kernel && !strcmp(name, c->default_kernel)))
		return (int)gw_config_default_profile(c);
	return -ENOENT;
}

size_t gw_config_kernel_names(const struct gw_config *c, const char **names)
{
	static const char *const builtin[] = {"sandcell-strict", "sandcell-moderate",
	                                      "sandcell-permissive", "sandcell-custom"};
	size_t n = 0;

	names[n++] = "sandcell";
	/* A default kernel name of the operator's own is one more name for the default. */
	if (c->default_kernel && strcmp(c->default_kernel, "sandcell") != 0 &&
	    kernel_name_profile(c, c->default_kernel) < 0)
		names[n++] = c->default_kernel;
	for (int i = 0; i < GW_PROFILE_COUNT; i++)
		if (i != GW_PROFILE_CUSTOM || c->custom_profile)
			names[n++] = builtin[i];
	return n;
}

/* --- command line --- */

static const struct opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strlen(opts[i].name) == len && !memcmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

static const struct opt *opt_find_kind(enum opt_kind kind)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].kind == kind)
			return &opts[i];
	return NULL;
}

/* Walks argv one option at a time; *i is the next index. */
struct arg {
	const struct opt *opt;
	const char *value; /* NULL for a bare boolean, --help, --version */
};

/* Returns 1 with *a filled, 0 at the end, or -EINVAL with err set. Never allocates. */
static int arg_next(int argc, char **argv, int *i, struct arg *a, struct proto_error *err)
{
	const char *arg, *eq;
	char shown[64];

	if (*i >= argc)
		return 0;
	arg = argv[(*i)++];
	/* The short forms every operator tries first, as sandcell-kernel has them. */
	if (!strcmp(arg, "-h") || !strcmp(arg, "-V")) {
		a->opt = opt_find_kind(arg[1] == 'h' ? OPT_HELP : OPT_VERSION);
		a->value = NULL;
		return 1;
	}
	if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
		const struct opt *prev = NULL;

		/* "--cull-busy false": a boolean's value must be attached, say so. */
		if (*i >= 3 && !strncmp(argv[*i - 2], "--", 2))
			prev = opt_find(argv[*i - 2] + 2, strlen(argv[*i - 2] + 2));
		if (prev && prev->kind == OPT_BOOL)
			return proto_error_set(
			        err, EINVAL,
			        "command line: unexpected argument \"%s\" (a boolean "
			        "takes its value as --%s=%s)",
			        shorten(arg, 32, false, shown, sizeof(shown)), prev->name, shown);
		return proto_error_set(err, EINVAL,
		                       "command line: unexpected argument \"%s\"; options are "
		                       "--name VALUE or --name=VALUE (see --help)",
		                       shorten(arg, 32, false, shown, sizeof(shown)));
	}
	arg += 2;
	eq = strchr(arg, '=');
	a->opt = opt_find(arg, eq ? (size_t)(eq - arg) : strlen(arg));
	if (!a->opt) {
		char name[GW_CONFIG_NAME_MAX];
		const struct opt *guess;

		snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - arg : (int)strlen(arg)), arg);
		guess = opt_suggest(name, opt_any);
		if (guess)
			return proto_error_set(
			        err, EINVAL,
			        "command line: unknown option --%s (did you mean --%s?)",
			        shorten(name, 40, false, shown, sizeof(shown)), guess->name);
		return proto_error_set(err, EINVAL,
		                       "command line: unknown option --%s (see --help)",
		                       shorten(name, 40, false, shown, sizeof(shown)));
	}
	a->value = eq ? eq + 1 : NULL;
	if (!opt_on_command_line(a->opt))
		return proto_error_set(err, EINVAL,
		                       "command line: --%s: \"%s\" can only be set in the "
		                       "config file",
		                       a->opt->name, a->opt->name);
	if (a->value &&
	    (a->opt->kind == OPT_HELP || a->opt->kind == OPT_VERSION || a->opt->kind == OPT_ACTION))
		return proto_error_set(err, EINVAL, "command line: --%s takes no value",
		                       a->opt->name);
	if (!a->value && opt_takes_value(a->opt)) {
		/* "--port --ip x" is a forgotten value, not a port called "--ip". */
		if (*i >= argc || !strncmp(argv[*i], "--", 2))
			return proto_error_set(err, EINVAL,
			                       "command line: --%s needs a value (--%s %s)",
			                       a->opt->name, a->opt->name, a->opt->metavar);
		a->value = argv[(*i)++];
	}
	return 1;
}

/* --- help --- */

/* Prints text word-wrapped to width columns, every line indented by indent spaces. */
static void print_wrapped(FILE *out, int indent, int width, const char *text)
{
	const char *p = text;

	while (*p) {
		int col = indent;
		const char *line = p, *brk = NULL;

		while (*p && col < width) {
			if (*p == ' ')
				brk = p;
			p++;
			col++;
		}
		if (*p && *p != ' ' && brk)
			p = brk;
		fprintf(out, "%*s%.*s\n", indent, "", (int)(p - line), line);
		while (*p == ' ')
			p++;
	}
}

static void print_help(FILE *out)
{
	const char *group = NULL;

	fputs("Usage: sandcell [OPTION]...\n"
	      "The sandcell gateway: Jupyter's kernel REST and WebSocket API, serving\n"
	      "sandboxed Python kernels (sandcell-kernel).\n"
	      "\n"
	      "Settings come from, weakest first: built-in defaults, the config file\n"
	      "(--config), SANDCELL_* environment variables, the command line. Each option\n"
	      "below is also the environment variable named under it, and a config file key\n"
	      "spelt with '_' for '-' (max_kernels). An unknown option, SANDCELL_ variable or\n"
	      "config file key is an error.\n",
	      out);
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		char env[GW_CONFIG_NAME_MAX], line[200];

		if (o->group && o->group != group) {
			group = o->group;
			fprintf(out, "\n%s:\n", group);
		}
		if (o->kind == OPT_BOOL)
			fprintf(out, "  --%s[=%s]\n", o->name, o->metavar);
		else if (o->kind == OPT_PROFILES)
			fprintf(out, "  \"%s\": %s   (config file only)\n", o->name, o->metavar);
		else if (o->kind == OPT_ACTION)
			fprintf(out, "  --%s\n", o->name);
		else if (o->metavar)
			fprintf(out, "  --%s %s%s\n", o->name, o->metavar,
			        o->kind == OPT_ORIGINS ? "   (repeatable)" : "");
		else if (o->kind == OPT_HELP)
			fprintf(out, "  -h, --%s\n", o->name);
		else
			fprintf(out, "  -V, --%s\n", o->name);
		print_wrapped(out, 6, 80, o->help);
		if (!opt_in_env(o))
			continue;
		env_name(o, env, sizeof(env));
		snprintf(line, sizeof(line), "Default: %s. Environment: %s.",
		         o->def && *o->def ? o->def : o->def_help, env);
		if (strlen(line) + 6 > 80) {
			snprintf(line, sizeof(line), "Default: %s.",
			         o->def && *o->def ? o->def : o->def_help);
			print_wrapped(out, 6, 80, line);
			snprintf(line, sizeof(line), "Environment: %s.", env);
		}
		print_wrapped(out, 6, 80, line);
	}
	fputs("\n"
	      "Values:\n"
	      "  N is a whole number. SECONDS is a decimal number of seconds, like 30 or 0.5.\n"
	      "  BYTES is a whole number of bytes, optionally followed by K, M, G or T, powers\n"
	      "  of 1024 (also written KiB... or KB..., with the same meaning): 16M is 16777216\n"
	      "  bytes; at most 1T. BOOL is true or false, also yes/no or 1/0; a boolean option\n"
	      "  written alone, like --cull-busy, means true.\n"
	      "\n"
	      "Config file: one JSON object of at most 1 MiB, for example\n"
	      "  {\"port\": 8888, \"token\": \"...\", \"allow_origin\": "
	      "[\"https://app.example.com\"],\n"
	      "   \"max_kernels\": 16, \"max_ws_frame\": \"64M\", \"cull_idle_timeout\": 3600}\n"
	      "allow_origin takes an array of strings; any key also takes a string written as\n"
	      "on the command line. SANDCELL_ALLOW_ORIGIN takes a comma-separated list.\n"
	      "When an option is given twice the last one wins, except that --allow-origin adds\n"
	      "to the list (and replaces the list of the file or the environment).\n"
	      "\n"
	      "More in docs/configuration.md.\n",
	      out);
}

/* --- config file --- */

/* Reads the whole file into an owned NUL-terminated buffer; -errno, -EFBIG over the cap. */
static int read_file(const char *path, char **data, size_t *len)
{
	_cleanup_(proto_freep) char *buf = NULL;
	size_t n = 0, cap = 4096;
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out_close;
	}
	if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > GW_CONFIG_FILE_MAX) {
		r = -EFBIG;
		goto out_close;
	}
	/* A pipe or a file that grew has no trustworthy size: the loop caps the read too. */
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t got;

		if (n == cap - 1) {
			char *grown;

			/* Room for one byte past the cap tells a file at the cap from a longer one.
			 */
			if (cap == GW_CONFIG_FILE_MAX + 2) {
				r = -EFBIG;
				goto out_close;
			}
			cap = cap * 2 > GW_CONFIG_FILE_MAX + 2 ? GW_CONFIG_FILE_MAX + 2 : cap * 2;
			grown = realloc(buf, cap);
			if (!grown) {
				r = -ENOMEM;
				goto out_close;
			}
			buf = grown;
		}
		got = read(fd, buf + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out_close;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > GW_CONFIG_FILE_MAX) {
		r = -EFBIG;
		goto out_close;
	}
	buf[n] = '\0';
	*data = TAKE_PTR(buf);
	*len = n;
out_close:
	close(fd);
	return r;
}

static int apply_file(struct gw_config *c, const char *path, struct proto_error *err)
{
	json_auto_t *root = NULL;
	_cleanup_(proto_freep) char *data = NULL;
	struct source src = {.kind = SOURCE_FILE, .path = path};
	char shown[64];
	json_error_t jerr;
	const char *key;
	json_t *v;
	size_t len = 0;
	int r;

	shorten(path, 48, true, shown, sizeof(shown));
	r = read_file(path, &data, &len);
	if (r == -ENOMEM)
		return out_of_memory(err);
	if (r == -EFBIG)
		return proto_error_set(err, EINVAL, "config file %s: larger than 1 MiB", shown);
	if (r < 0)
		return proto_error_set(err, EINVAL, "config file %s: cannot read: %s", shown,
		                       strerror(-r));
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return out_of_memory(err);
		return proto_error_set(err, EINVAL, "config file %s: line %d column %d: %s", shown,
		                       jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(root))
		return proto_error_set(err, EINVAL, "config file %s: expected a JSON object {...}",
		                       shown);
	json_object_foreach(root, key, v) {
		const struct opt *o = NULL;
		char k[GW_CONFIG_NAME_MAX], name[GW_CONFIG_NAME_MAX];

		for (size_t i = 0; i < N_OPTS && !o; i++) {
			file_key(&opts[i], k, sizeof(k));
			if (opt_in_file(&opts[i]) && !strcmp(k, key))
				o = &opts[i];
		}
		if (!o) {
			const struct opt *guess;
			char kshown[48];

			shorten(key, 32, false, kshown, sizeof(kshown));
			if (!strcmp(key, "config"))
				return proto_error_set(
				        err, EINVAL,
				        "config file %s: key \"config\": a config file "
				        "cannot name another",
				        shown);
			to_option_form(key, name, sizeof(name));
			guess = opt_suggest(name, opt_in_file);
			if (!guess)
				return proto_error_set(err, EINVAL,
				                       "config file %s: unknown key \"%s\"", shown,
				                       kshown);
			file_key(guess, k, sizeof(k));
			return proto_error_set(
			        err, EINVAL,
			        "config file %s: unknown key \"%s\" (did you mean \"%s\"?)", shown,
			        kshown, k);
		}
		r = apply_json(c, o, v, &src, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- environment --- */

/* The option SANDCELL_<...>=value names; NULL with err set for an unknown one. */
static int env_find(const char *entry, size_t name_len, const struct opt **found,
                    struct proto_error *err)
{
	char env[GW_CONFIG_NAME_MAX], name[GW_CONFIG_NAME_MAX], shown[64];
	const struct opt *guess;

	*found = NULL;
	for (size_t i = 0; i < sizeof(foreign_env) / sizeof(foreign_env[0]); i++)
		if (strlen(foreign_env[i]) == name_len && !memcmp(foreign_env[i], entry, name_len))
			return 0;
	for (size_t i = 0; i < N_OPTS; i++) {
		if (!opt_in_env(&opts[i]))
			continue;
		env_name(&opts[i], env, sizeof(env));
		if (strlen(env) == name_len && !memcmp(env, entry, name_len)) {
			*found = &opts[i];
			return 0;
		}
	}
	snprintf(shown, sizeof(shown), "%.*s", (int)(name_len > 48 ? 48 : name_len), entry);
	to_option_form(shown + strlen("SANDCELL_"), name, sizeof(name));
	guess = opt_suggest(name, opt_in_env);
	if (!guess)
		return proto_error_set(err, EINVAL,
		                       "environment: unknown variable %s (not a sandcell option)",
		                       shown);
	env_name(guess, env, sizeof(env));
	return proto_error_set(err, EINVAL, "environment: unknown variable %s (did you mean %s?)",
	                       shown, env);
}

/*
 * Applies the SANDCELL_ variables of envp, all of them when config is false, or only reports
 * SANDCELL_CONFIG in *config_path (borrowed) when it is true.
 */
static int apply_env(struct gw_config *c, char **envp, bool config, const char **config_path,
                     struct proto_error *err)
{
	struct source src = {.kind = SOURCE_ENV};

	for (char **e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		const struct opt *o;
		int r;

		if (!eq || strncmp(*e, "SANDCELL_", strlen("SANDCELL_")) != 0)
			continue;
		r = env_find(*e, (size_t)(eq - *e), &o, err);
		if (r < 0)
			return r;
		if (!o)
			continue;
		if (config && o->kind == OPT_CONFIG)
			*config_path = eq + 1;
		if (!config && o->kind != OPT_CONFIG) {
			r = apply_text(c, o, eq + 1, &src, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* --- load --- */

/* What no single option can check: settings that must agree with each other. */
static int check_together(struct gw_config *c, enum gw_config_action *action,
                          struct proto_error *err)
{
	if (c->check_json && !c->check_sandbox)
		return proto_error_set(err, EINVAL,
		                       "command line: --json only goes with --check-sandbox");
	if (!c->custom_profile && gw_config_default_profile(c) == GW_PROFILE_CUSTOM)
		return proto_error_set(err, EINVAL,
		                       "default profile \"custom\": the config file defines no "
		                       "\"profiles\": {\"custom\": {...}}");
	if (!c->custom_profile && !strcmp(c->default_kernel, "sandcell-custom"))
		return proto_error_set(err, EINVAL,
		                       "default kernel \"sandcell-custom\": the config file "
		                       "defines no \"profiles\": {\"custom\": {...}}");
	if (c->check_sandbox)
		*action = GW_CONFIG_CHECK_SANDBOX;
	return 0;
}

int gw_config_load(struct gw_config *c, int argc, char **argv, char **envp, FILE *out,
                   enum gw_config_action *action, struct proto_error *err)
{
	struct source src = {.kind = SOURCE_ARGV};
	const char *config_path = NULL, *why;
	struct arg a;
	int i = 1, r;

	assert(out && action);
	*action = GW_CONFIG_RUN;

	/* Pass 1: the syntax of argv, --help and --version, and which config file to read. */
	while ((r = arg_next(argc, argv, &i, &a, err)) > 0) {
		if (a.opt->kind == OPT_HELP || a.opt->kind == OPT_VERSION) {
			if (a.opt->kind == OPT_HELP)
				print_help(out);
			else
				fputs("sandcell " SANDCELL_VERSION "\n", out);
			if (fflush(out) != 0 || ferror(out))
				return proto_error_set(err, EIO, "cannot write --%s: %s",
				                       a.opt->name, strerror(errno));
			*action = a.opt->kind == OPT_HELP ? GW_CONFIG_HELP : GW_CONFIG_VERSION;
			return 0;
		}
		if (a.opt->kind == OPT_CONFIG)
			config_path = a.value;
	}
	if (r < 0)
		return r;
	if (!config_path) {
		r = apply_env(c, envp, true, &config_path, err);
		if (r < 0)
			return r;
		src.kind = SOURCE_ENV;
	}

	if (config_path) {
		char *path;

		/* Check the name as any other value, so an empty one is reported as such. */
		r = check_path(config_path, &path, &why);
		if (r == -ENOMEM)
			return out_of_memory(err);
		if (r < 0)
			return bad_value(&src, opt_find_kind(OPT_CONFIG), config_path, err, "%s",
			                 why);
		r = apply_file(c, path, err);
		if (r < 0) {
			free(path);
			return r;
		}
		free(c->config_file);
		c->config_file = path;
	}

	r = apply_env(c, envp, false, NULL, err);
	if (r < 0)
		return r;

	src = (struct source){.kind = SOURCE_ARGV};
	i = 1;
	while ((r = arg_next(argc, argv, &i, &a, err)) > 0) {
		if (a.opt->kind == OPT_CONFIG)
			continue;
		r = apply_text(c, a.opt, a.value ? a.value : "true", &src, err);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return check_together(c, action, err);
}
