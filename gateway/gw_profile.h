/*
 * Sandbox profiles: the limits a kernel runs under (strict, moderate, permissive, custom), their
 * built-in defaults, their JSON form (the config file's "profiles", a request's narrower
 * limits), narrowing (a request may lower a limit, never raise it) and the sandcell-kernel
 * command line they give. Pure: no event loop, no logging. A struct gw_profile owns its lists.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "proto_util.h"

enum gw_profile_kind {
	GW_PROFILE_STRICT,
	GW_PROFILE_MODERATE,
	GW_PROFILE_PERMISSIVE,
	GW_PROFILE_CUSTOM,
	GW_PROFILE_COUNT,
};

#define GW_PROFILE_COUNT_MAX   1000000           /* processes, threads, open_files */
#define GW_PROFILE_SIZE_MAX    ((size_t)1 << 40) /* 1 TiB */
#define GW_PROFILE_SECONDS_MAX 1e9
#define GW_PROFILE_LIST_MAX    512  /* entries of read_only, allow_import, block_import */
#define GW_PROFILE_MODULE_MAX  128  /* bytes of one module name */
#define GW_PROFILE_PATH_MAX    4096 /* bytes of one read_only path */

struct gw_profile {
	enum gw_profile_kind kind;
	size_t memory;       /* bytes of memory (cgroup) */
	unsigned cpu_time;   /* seconds of CPU time (RLIMIT_CPU) */
	double wall_time;    /* seconds one execute_request may run (enforced by the gateway) */
	unsigned processes;  /* processes, the kernel's own included */
	unsigned threads;    /* threads */
	unsigned open_files; /* open file descriptors */
	size_t file_size;    /* bytes of one written file */
	size_t disk;         /* bytes of the kernel's writable scratch space */
	size_t output;       /* bytes of output per execute_request (enforced by the gateway) */
	bool network;        /* network access (permissive and custom only) */
	char **read_only;    /* NULL-terminated data directories bound read-only; NULL = none */
	char **allow_import; /* NULL = no allowlist of our own (the kernel's profile decides);
	                      * else NULL-terminated, possibly empty */
	char **block_import; /* NULL-terminated modules added to the blocklist; NULL = none */
};

/* "strict", "moderate", "permissive", "custom". */
const char *gw_profile_name(enum gw_profile_kind kind);

/* The kind named name, or -EINVAL. */
int gw_profile_kind_from_name(const char *name);

/* Fills p with the built-in defaults of kind (custom: as moderate). Allocates nothing. */
void gw_profile_defaults(struct gw_profile *p, enum gw_profile_kind kind);

/* Frees p's lists and zeroes it. Safe on a zeroed struct. */
void gw_profile_clear(struct gw_profile *p);

/* Makes dst (cleared first) a deep copy of src. Returns 0 or -ENOMEM (dst then zeroed). */
int gw_profile_copy(struct gw_profile *dst, const struct gw_profile *src);

/*
 * Applies the keys of obj (a JSON object: "memory", "cpu_time", "wall_time", "processes",
 * "threads", "open_files", "file_size", "disk", "output", "read_only", "network",
 * "allow_import", "block_import") over p; each one replaces p's value. Sizes are integers of
 * bytes or strings like "100MB" / "1.5GiB"; seconds are numbers. prefix names obj in messages
 * ("profiles.strict" gives `key "profiles.strict.memory": ...`). On -EINVAL (a wrong key,
 * type or range) or -ENOMEM, err says which key and p may be partly changed.
 */
int gw_profile_apply_json(struct gw_profile *p, const json_t *obj, const char *prefix,
                          struct proto_error *err);

/*
 * Narrows base by a request (a JSON object with the keys above, NULL = none): every limit may
 * be lowered, none raised; network may be turned off, not on; read_only may only name
 * directories base has; the import allowlist becomes the request's list intersected with
 * base's (or the request's when base has none); block_import is added to base's. *out (owned,
 * cleared first) is the result. Returns 0, -EINVAL (a malformed request), -EPERM (a request
 * above base: err names the key and both values) or -ENOMEM.
 */
int gw_profile_narrow(const struct gw_profile *base, const json_t *request, struct gw_profile *out,
                      struct proto_error *err);

/*
 * The command line that starts sandcell-kernel under p: binary -f conn_path --profile NAME
 * --memory BYTES --cpu-time S --processes N --threads N --open-files N --file-size BYTES
 * --disk BYTES [--read-only PATH]... [--network] [--allow-import A,B] [--block-import C,D]
 * [--allow-weaker-sandbox]. Returns an owned NULL-terminated array (gw_profile_argv_free) or
 * NULL when out of memory.
 */
char **gw_profile_argv(const struct gw_profile *p, const char *binary, const char *conn_path,
                       bool allow_weaker);

/* Frees what gw_profile_argv returned. NULL is fine. */
void gw_profile_argv_free(char **argv);

/*
 * The one way a kernel's command line is made: base narrowed by narrow (NULL for none, see
 * gw_profile_narrow) into *effective (owned, cleared first), and its command line into *argv
 * (owned, gw_profile_argv_free). Returns 0, or -EINVAL, -EPERM, -ENOMEM with err set (then
 * nothing is left owned).
 */
int gw_profile_command(const struct gw_profile *base, const json_t *narrow, const char *binary,
                       const char *conn_path, bool allow_weaker, struct gw_profile *effective,
                       char ***argv, struct proto_error *err);

/*
 * {"memory", "cpu_time", "wall_time", "processes", "threads", "open_files", "file_size",
 * "disk", "output"} in bytes and seconds (new reference, NULL when out of memory).
 */
json_t *gw_profile_limits_json(const struct gw_profile *p);

/*
 * {"profile": NAME, "limits": {...}, "network", "read_only", "allow_import", "block_import"}
 * (new reference, NULL when out of memory).
 */
json_t *gw_profile_json(const struct gw_profile *p);

/* "100 MB", "1.5 GB", "64 KB", "512 bytes": sizes as messages show them (powers of 1024). */
void gw_profile_format_size(size_t bytes, char *buf, size_t len);

/* "30 s", "0.5 s". */
void gw_profile_format_seconds(double seconds, char *buf, size_t len);

/*
 * A size: a whole or decimal number with an optional unit K, M, G, T (also KB, KiB...: all
 * powers of 1024), in any case, no space: "65536", "512K", "100MB", "1.5GiB". The value is
 * rounded down to whole bytes and must be 1..1 TiB. Returns 0 or -EINVAL.
 */
int gw_profile_parse_size(const char *s, size_t *out);

/* Levenshtein distance of two short names (SIZE_MAX above 64 bytes), for "did you mean". */
size_t gw__edit_distance(const char *a, const char *b);
