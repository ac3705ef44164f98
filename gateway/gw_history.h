/*
 * The execution history: one row per task execution in an embedded SQLite database (session,
 * code hash and size, times, result summary, limits hit), for GET /python/history. The server
 * owns the one gw_history; its statements are prepared once. Writes are small and synchronous
 * (WAL, synchronous=NORMAL); the table keeps at most a configured number of rows.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto_util.h"

struct gw_history;

/* One execution, as recorded. Strings are borrowed; NULL is stored as SQL NULL. */
struct gw_history_entry {
	const char *task_id, *task_type, *session_id, *assigned_by, *kernel_id, *security_level;
	int item;                /* batch index, or -1 */
	const char *code_sha256; /* 64 hex digits */
	size_t code_size;
	const char *started, *finished; /* ISO 8601 UTC */
	double execution_time;
	bool success;
	int exit_code;
	const char *error_type, *limit_hit;
	size_t stdout_bytes, stderr_bytes;
};

/*
 * Opens (creating it and its table) the database at path (":memory:" allowed); the parent
 * directory is created when missing. max_rows bounds the table (oldest rows go first).
 * Returns 0 with *out owned, or -errno with err saying why.
 */
int gw_history_open(const char *path, size_t max_rows, struct gw_history **out,
                    struct proto_error *err);

/* Records one execution. Returns 0 or -EIO (err says why). */
int gw_history_add(struct gw_history *h, const struct gw_history_entry *e, struct proto_error *err);

/*
 * The newest executions (at most limit), of session_id when not NULL, older than the row of
 * task id before when not NULL: a new JSON array of entry objects, or NULL (err says why).
 */
json_t *gw_history_list(struct gw_history *h, const char *session_id, const char *before,
                        size_t limit, struct proto_error *err);

void gw_history_close(struct gw_history *h);

/* The lower-case hex SHA-256 of data into out (65 bytes). */
void gw_history_sha256_hex(const void *data, size_t len, char out[65]);
