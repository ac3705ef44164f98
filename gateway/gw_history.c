/*
 * The execution history in SQLite (see gw_history.h).
 */
#include "gw_history.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto_sign.h"

struct gw_history {
	sqlite3 *db;
	sqlite3_stmt *insert, *trim;
	size_t max_rows;
	unsigned inserts; /* since the last trim */
};

static const char gw_history_schema[] =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS executions ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " task_id TEXT NOT NULL, task_type TEXT NOT NULL, session_id TEXT, item INTEGER,"
        " assigned_by TEXT, kernel_id TEXT, security_level TEXT,"
        " code_sha256 TEXT, code_size INTEGER,"
        " started TEXT, finished TEXT, execution_time REAL,"
        " success INTEGER, exit_code INTEGER, error_type TEXT, limit_hit TEXT,"
        " stdout_bytes INTEGER, stderr_bytes INTEGER);"
        "CREATE INDEX IF NOT EXISTS executions_session ON executions(session_id, seq);"
        "CREATE INDEX IF NOT EXISTS executions_task ON executions(task_id);";

static int gw_history_fail(sqlite3 *db, struct proto_error *err, const char *what)
{
	return proto_error_set(err, EIO, "history: %s: %s", what,
	                       db ? sqlite3_errmsg(db) : "out of memory");
}

/* Creates the parent directories of path (mode 0700), ignoring those that exist. */
static void gw_history_mkdirs(const char *path)
{
	char dir[4096];
	size_t n = strlen(path);

	if (n >= sizeof(dir))
		return;
	memcpy(dir, path, n + 1);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
}

int gw_history_open(const char *path, size_t max_rows, struct gw_history **out,
                    struct proto_error *err)
{
	struct gw_history *h = calloc(1, sizeof(*h));
	char *msg = NULL;

	*out = NULL;
	if (!h)
		return proto_error_set(err, ENOMEM, "history: out of memory");
	h->max_rows = max_rows ? max_rows : 100000;
	if (strcmp(path, ":memory:") != 0)
		gw_history_mkdirs(path);
	if (sqlite3_open_v2(path, &h->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		int r = gw_history_fail(h->db, err, path);

		gw_history_close(h);
		return r;
	}
	sqlite3_busy_timeout(h->db, 2000);
	if (sqlite3_exec(h->db, gw_history_schema, NULL, NULL, &msg) != SQLITE_OK) {
		int r = proto_error_set(err, EIO, "history: %s: %s", path, msg ? msg : "?");

		sqlite3_free(msg);
		gw_history_close(h);
		return r;
	}
	if (sqlite3_prepare_v2(h->db,
	                       "INSERT INTO executions (task_id, task_type, session_id, item,"
	                       " assigned_by, kernel_id, security_level, code_sha256, code_size,"
	                       " started, finished, execution_time, success, exit_code,"
	                       " error_type, limit_hit, stdout_bytes, stderr_bytes)"
	                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	                       -1, &h->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h->db,
	                       "DELETE FROM executions WHERE seq <="
	                       " (SELECT MAX(seq) FROM executions) - ?",
	                       -1, &h->trim, NULL) != SQLITE_OK) {
		int r = gw_history_fail(h->db, err, "prepare");

		gw_history_close(h);
		return r;
	}
	*out = h;
	return 0;
}

static void gw_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int gw_history_add(struct gw_history *h, const struct gw_history_entry *e, struct proto_error *err)
{
	sqlite3_stmt *st = h->insert;
	int rc;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	gw_bind_text(st, 1, e->task_id);
	gw_bind_text(st, 2, e->task_type);
	gw_bind_text(st, 3, e->session_id);
	if (e->item >= 0)
		sqlite3_bind_int(st, 4, e->item);
	gw_bind_text(st, 5, e->assigned_by);
	gw_bind_text(st, 6, e->kernel_id);
	gw_bind_text(st, 7, e->security_level);
	gw_bind_text(st, 8, e->code_sha256);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)e->code_size);
	gw_bind_text(st, 10, e->started);
	gw_bind_text(st, 11, e->finished);
	sqlite3_bind_double(st, 12, e->execution_time);
	sqlite3_bind_int(st, 13, e->success);
	sqlite3_bind_int(st, 14, e->exit_code);
	gw_bind_text(st, 15, e->error_type);
	gw_bind_text(st, 16, e->limit_hit);
	sqlite3_bind_int64(st, 17, (sqlite3_int64)e->stdout_bytes);
	sqlite3_bind_int64(st, 18, (sqlite3_int64)e->stderr_bytes);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return gw_history_fail(h->db, err, "insert");
	/* Trim now and then rather than on every insert. */
	if (++h->inserts >= 256 || h->max_rows < 256) {
		h->inserts = 0;
		sqlite3_reset(h->trim);
		sqlite3_bind_int64(h->trim, 1, (sqlite3_int64)h->max_rows);
		rc = sqlite3_step(h->trim);
		sqlite3_reset(h->trim);
		if (rc != SQLITE_DONE)
			return gw_history_fail(h->db, err, "trim");
	}
	return 0;
}

/* The column as a JSON value (NULL → null). */
static json_t *gw_column_json(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:
		return json_stringn((const char *)sqlite3_column_text(st, i),
		                    (size_t)sqlite3_column_bytes(st, i));
	default:
		return json_null();
	}
}

json_t *gw_history_list(struct gw_history *h, const char *session_id, const char *before,
                        size_t limit, struct proto_error *err)
{
	static const char *const cols[] = {
	        "task_id",   "task_type",      "session_id",   "item",      "assigned_by",
	        "kernel_id", "security_level", "code_sha256",  "code_size", "started",
	        "finished",  "execution_time", "success",      "exit_code", "error_type",
	        "limit_hit", "stdout_bytes",   "stderr_bytes",
	};
	char sql[1024];
	sqlite3_stmt *st = NULL;
	json_t *list = json_array();
	int rc, bind = 1;

	snprintf(sql, sizeof(sql),
	         "SELECT task_id, task_type, session_id, item, assigned_by, kernel_id,"
	         " security_level, code_sha256, code_size, started, finished, execution_time,"
	         " success, exit_code, error_type, limit_hit, stdout_bytes, stderr_bytes"
	         " FROM executions WHERE 1%s%s ORDER BY seq DESC LIMIT ?",
	         session_id ? " AND session_id = ?" : "",
	         before ? " AND seq < (SELECT MIN(seq) FROM executions WHERE task_id = ?)" : "");
	if (!list || sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK) {
		gw_history_fail(h->db, err, "select");
		json_decref(list);
		return NULL;
	}
	if (session_id)
		sqlite3_bind_text(st, bind++, session_id, -1, SQLITE_TRANSIENT);
	if (before)
		sqlite3_bind_text(st, bind++, before, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, bind, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json_object();

		for (int i = 0; row && i < (int)(sizeof(cols) / sizeof(cols[0])); i++) {
			json_t *v = gw_column_json(st, i);

			if (!strcmp(cols[i], "success") && json_is_integer(v)) {
				json_t *b = json_boolean(json_integer_value(v));

				json_decref(v);
				v = b;
			}
			json_object_set_new(row, cols[i], v);
		}
		if (!row || json_array_append_new(list, row) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		gw_history_fail(h->db, err, "select");
		json_decref(list);
		return NULL;
	}
	return list;
}

void gw_history_close(struct gw_history *h)
{
	if (!h)
		return;
	sqlite3_finalize(h->insert);
	sqlite3_finalize(h->trim);
	sqlite3_close(h->db);
	free(h);
}

void gw_history_sha256_hex(const void *data, size_t len, char out[65])
{
	struct proto_sha256 s;
	unsigned char d[PROTO_SHA256_LEN];

	proto_sha256_init(&s);
	proto_sha256_update(&s, data, len);
	proto_sha256_final(&s, d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}
