/*
 * The task API's request model: the envelope {"task": {"type": …, …}, "assigned_by": …}
 * (plus "id" and "cancel" on a WebSocket), checked field by field. Every problem is listed,
 * not only the first, so that a client can fix its request in one go. Pure: no I/O. The
 * parsed task borrows strings from the JSON it was parsed from, which the caller keeps alive.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "proto_util.h"

enum proto_task_type {
	PROTO_TASK_EXECUTE,
	PROTO_TASK_EXECUTE_FILE,
	PROTO_TASK_INTERACTIVE,
	PROTO_TASK_VALIDATE,
	PROTO_TASK_BATCH,
};

/* Caps on a task's fields; PROTO_TASK_LIMITS_DEFAULT gives the documented defaults. */
struct proto_task_limits {
	size_t max_code;      /* bytes of code (or of one batch item's code) */
	size_t max_names;     /* entries in return_variables and in allowed_imports */
	size_t max_args;      /* entries in arguments */
	size_t max_args_size; /* bytes of all arguments together */
	size_t max_env;       /* entries in environment_vars */
	size_t max_env_value; /* bytes of one environment value */
	size_t max_items;     /* items in a batch */
	size_t max_path;      /* bytes of file_path and working_directory */
	size_t max_id;        /* bytes of a client id, session_id and assigned_by */
};

#define PROTO_TASK_LIMITS_DEFAULT                                                                  \
	{                                                                                          \
		.max_code = 1u << 20, .max_names = 256, .max_args = 256,                           \
		.max_args_size = 64u << 10, .max_env = 64, .max_env_value = 4096, .max_items = 64, \
		.max_path = 1024, .max_id = 128,                                                   \
	}

/*
 * At most this many problems are listed in errors; one more entry ({"field": "", "message":
 * "more problems not listed"}) then says the list was cut.
 */
#define PROTO_TASK_MAX_ERRORS 64

/* One item of a batch: code, or a file with its arguments and environment. */
struct proto_task_item {
	const char *code; /* NULL for a file item */
	size_t code_len;
	const char *file_path;          /* NULL for a code item */
	const json_t *arguments;        /* borrowed array of strings, or NULL */
	const json_t *environment_vars; /* borrowed object of strings, or NULL */
};

/* A checked task. Strings and JSON values are borrowed from the parsed envelope. */
struct proto_task {
	enum proto_task_type type;
	const json_t *id;           /* borrowed string or integer (WebSocket only), or NULL */
	const char *assigned_by;    /* NULL when absent */
	const char *code;           /* execute, interactive, validate; NULL otherwise */
	size_t code_len;            /* bytes (code may hold no NUL: it is valid UTF-8 JSON text) */
	double timeout;             /* seconds; 0 when absent */
	const json_t *memory_limit; /* borrowed string ("100MB") or integer (bytes), or NULL */
	const char *security_level; /* strict | moderate | permissive | custom, or NULL */
	const json_t *allowed_imports;  /* borrowed array of module names, or NULL */
	bool capture_output;            /* default true */
	const json_t *return_variables; /* borrowed array of identifiers, or NULL */
	const char *working_directory;  /* NULL when absent */
	/* execute_file */
	const char *file_path;
	const json_t *arguments;        /* borrowed array of strings, or NULL */
	const json_t *environment_vars; /* borrowed object name -> string, or NULL */
	/* interactive */
	const char *session_id; /* NULL when absent: the gateway makes one */
	bool continue_session;  /* default true */
	bool reset_session;     /* default false */
	/* validate */
	bool check_syntax;  /* default true */
	bool check_imports; /* default true */
	/* batch */
	struct proto_task_item *items; /* owned array (proto_task_clear) */
	size_t n_items;
	bool fresh_kernel;  /* default false: every item in one kernel */
	bool stop_on_error; /* default true */
};

/* The name of a task type as written in requests ("execute_file"), and back (-1: unknown). */
const char *proto_task_type_name(enum proto_task_type type);
int proto_task_type_from_name(const char *name);

/*
 * True when an environment variable name may be set by a request: a C identifier that is not
 * one of those that change how the interpreter, the loader or the C library behave (PYTHON*,
 * LD_*, GLIBC_TUNABLES, MALLOC_*, …). *why (when not NULL) says why a name is refused.
 */
bool proto_task_env_name_ok(const char *name, const char **why);

/*
 * True when path is a relative path of normal components: not empty, not absolute, no "."
 * or ".." component, no empty component (“a//b”), no NUL, no backslash.
 */
bool proto_task_relative_path_ok(const char *path);

/*
 * Checks envelope (a JSON value of any kind) as a task. expected is the type the transport
 * implies (an HTTP path), or -1 when the task's "type" decides (a WebSocket). allow_ws_keys
 * accepts the WebSocket's "id" in the envelope (and then requires it). On success returns 0
 * with *t filled (clear it with proto_task_clear); t borrows from envelope. On a malformed task
 * returns -EINVAL and appends one {"field": "task.code", "message": "…"} object per problem
 * (at most PROTO_TASK_MAX_ERRORS, then one that says more were left out) to errors (a JSON
 * array the caller owns; NULL only counts them); *t is then cleared. When the type is wrong or
 * unknown the task's other fields are not checked. -ENOMEM when out of memory (*t cleared,
 * errors may hold some of the problems).
 */
int proto_task_parse(const json_t *envelope, int expected, bool allow_ws_keys,
                     const struct proto_task_limits *limits, struct proto_task *t, json_t *errors);

/* Frees what t owns (the batch items) and zeroes it. Safe on a zeroed struct. */
void proto_task_clear(struct proto_task *t);
