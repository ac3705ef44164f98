/*
 * The gateway's settings: built-in defaults, then a JSON config file, then SANDCELL_*
 * environment variables, then the command line, each overriding the one before. The struct
 * owns every string in it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gw_profile.h"
#include "proto_util.h"

struct gw_config {
	char *ip;       /* --ip, SANDCELL_IP, "ip": "127.0.0.1" */
	int port;       /* --port, SANDCELL_PORT, "port": 8888 (0 = any free port) */
	char *token;    /* --token, SANDCELL_TOKEN, "token": NULL = generate one; "" = no auth */
	char *base_url; /* --base-url: "/" ; always starts and ends with '/' */
	char **allow_origins; /* --allow-origin (repeatable), comma list in env, JSON array in file;
	                       * NULL-terminated; "*" allows any; none = same origin only */
	char *web_dir;        /* --web-dir: serve the notebook page from this directory; NULL =
	                       * the copy built into the binary */
	char *kernel_binary;  /* --kernel-binary: path to sandcell-kernel; NULL = next to the
	                       * gateway binary (../kernel/sandcell-kernel in a build tree, or the
	                       * same directory), else "sandcell-kernel" on PATH */
	char *runtime_dir;    /* --runtime-dir: NULL = a new private directory under
	                       * $XDG_RUNTIME_DIR or /tmp, removed at exit */
	char *default_kernel; /* --default-kernel: "sandcell" */
	int max_kernels;      /* --max-kernels: 64 (counting kernels still starting) */
	double kernel_start_timeout; /* --kernel-start-timeout seconds: 30 */
	int restart_limit;        /* --restart-limit: automatic restarts of a crashed kernel: 5 */
	double cull_idle_timeout; /* --cull-idle-timeout seconds: 0 = never cull */
	double cull_interval;     /* --cull-interval seconds: 60 */
	bool cull_connected;      /* --cull-connected: also cull kernels with clients: false */
	bool cull_busy;           /* --cull-busy: also cull busy kernels: false */
	size_t max_body;          /* --max-body bytes of a REST request body: 1 MiB */
	size_t max_ws_frame;  /* --max-ws-frame bytes of one WebSocket message from a client: 16 MiB
	                       */
	size_t ws_queue_cap;  /* --ws-queue-cap bytes queued for one slow client: 32 MiB */
	size_t replay_cap;    /* --replay-cap bytes kept per kernel while no client is connected:
	                       * 8 MiB */
	double ping_interval; /* --ping-interval seconds between WebSocket pings: 30 */
	int log_level;        /* --log-level: 0 errors, 1 warnings, 2 info (default), 3 debug */
	char *config_file;    /* --config FILE / SANDCELL_CONFIG: the file that was read, or NULL */
	char *default_profile;     /* --default-profile: the profile of kernelspec "sandcell":
	                            * "moderate" */
	bool allow_weaker_sandbox; /* --allow-weaker-sandbox: run profiles whose sandbox layers
	                            * this host lacks: false */
	struct gw_profile profiles[GW_PROFILE_COUNT]; /* "profiles" (file only): built-in
	                                               * defaults, overridden key by key */
	bool custom_profile;  /* "profiles": {"custom": ...} given: kernelspec sandcell-custom */
	char *scripts_dir;    /* --scripts-dir: execute_file's root; NULL = refused */
	char *history_db;     /* --history-db: NULL = the XDG state default */
	int history_max_rows; /* --history-max-rows: 100000 */
	double session_idle_timeout;  /* --session-idle-timeout seconds: 1800 */
	int max_tasks_per_connection; /* --max-tasks-per-connection: 32 */
	int kernel_pool;    /* --kernel-pool: ready kernels kept per kernelspec in use: 2 */
	int zygote_kernels; /* --zygote-kernels: kernels per zygote, 0 = no zygote: 64 */
	bool check_sandbox; /* --check-sandbox (command line only) */
	bool check_json;    /* --json with --check-sandbox */
};

/* What gw_config_load asks the caller to do next. */
enum gw_config_action {
	GW_CONFIG_RUN,           /* start the gateway */
	GW_CONFIG_HELP,          /* --help was printed to the given stream: exit 0 */
	GW_CONFIG_VERSION,       /* --version was printed: exit 0 */
	GW_CONFIG_CHECK_SANDBOX, /* --check-sandbox: report the sandbox (check_json: as JSON) */
};

/* Fills c with the defaults above (strings owned). Returns 0 or -ENOMEM. */
int gw_config_defaults(struct gw_config *c);

/*
 * Applies, over the defaults already in c: the config file (from --config or SANDCELL_CONFIG;
 * unknown keys and wrong types are errors that name the key), the environment (envp, a
 * NULL-terminated "NAME=value" list: SANDCELL_IP, SANDCELL_PORT, SANDCELL_TOKEN,
 * SANDCELL_MAX_KERNELS, ... one per option, the option's long name upper-cased with '-'
 * turned into '_'), then argv (long options "--name value" or "--name=value"). Sizes accept
 * suffixes K, M, G (KiB...) and numbers are range-checked. --help and --version print to out.
 * Returns 0 with *action set, or -EINVAL with a message naming the offending option in err.
 */
int gw_config_load(struct gw_config *c, int argc, char **argv, char **envp, FILE *out,
                   enum gw_config_action *action, struct proto_error *err);

/*
 * The profile a kernelspec name runs: "sandcell" and default_kernel (when it is none of the
 * others) the default profile, "sandcell-strict", "sandcell-moderate", "sandcell-permissive",
 * and "sandcell-custom" when a custom profile is configured. -ENOENT for any other name.
 */
int gw_config_kernel_profile(const struct gw_config *c, const char *name);

/*
 * The kernelspec names offered, in order (at most GW_CONFIG_KERNEL_NAMES, borrowed from c or
 * static). Returns how many.
 */
#define GW_CONFIG_KERNEL_NAMES 6
size_t gw_config_kernel_names(const struct gw_config *c, const char **names);

/* The default profile (default_profile resolved). */
enum gw_profile_kind gw_config_default_profile(const struct gw_config *c);

/* Frees every string and zeroes c. Safe on a zeroed struct. */
void gw_config_free(struct gw_config *c);
