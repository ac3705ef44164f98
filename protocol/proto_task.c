/*
 * Task requests: proto_task_parse() checks an envelope field by field against the tables of
 * docs/python-api-json-reference.md and lists every problem it finds. The parsed task borrows
 * every string and JSON value from the envelope; it owns only its array of batch items.
 */
#include "proto_task.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto_internal.h"

#define TYPE_BIT(type) (1u << (type))
#define T_EXEC         TYPE_BIT(PROTO_TASK_EXECUTE)
#define T_FILE         TYPE_BIT(PROTO_TASK_EXECUTE_FILE)
#define T_INTER        TYPE_BIT(PROTO_TASK_INTERACTIVE)
#define T_VALID        TYPE_BIT(PROTO_TASK_VALIDATE)
#define T_BATCH        TYPE_BIT(PROTO_TASK_BATCH)
#define T_RUNS         (T_EXEC | T_FILE | T_INTER | T_BATCH)
#define T_ALL          (T_RUNS | T_VALID)

#define MAX_TIMEOUT          1e6 /* seconds: eleven days is no longer a "limit" */
#define MAX_MEMORY_LIMIT_LEN 32  /* bytes of a size string such as "1.5 GiB" */
#define MAX_ENV_NAME         128
/* A client's key or type name is quoted in a field path or a message up to this many bytes. */
#define MAX_QUOTED 64
#define PATH_SIZE  256

static const char *const type_names[] = {
        [PROTO_TASK_EXECUTE] = "execute",
        [PROTO_TASK_EXECUTE_FILE] = "execute_file",
        [PROTO_TASK_INTERACTIVE] = "interactive",
        [PROTO_TASK_VALIDATE] = "validate",
        [PROTO_TASK_BATCH] = "batch",
};
#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

static const char *const security_levels[] = {"strict", "moderate", "permissive", "custom"};

enum task_field {
	F_TYPE,
	F_CODE,
	F_FILE_PATH,
	F_ITEMS,
	F_TIMEOUT,
	F_MEMORY_LIMIT,
	F_SECURITY_LEVEL,
	F_ALLOWED_IMPORTS,
	F_CAPTURE_OUTPUT,
	F_RETURN_VARIABLES,
	F_WORKING_DIRECTORY,
	F_ARGUMENTS,
	F_ENVIRONMENT_VARS,
	F_SESSION_ID,
	F_CONTINUE_SESSION,
	F_RESET_SESSION,
	F_CHECK_SYNTAX,
	F_CHECK_IMPORTS,
	F_FRESH_KERNEL,
	F_STOP_ON_ERROR,
	F_COUNT,
};

/*
 * Which task types accept a field, and in which it is required. The reference's batch row
 * leaves working_directory out, but its table of common fields names batch among the types
 * that take it: batch accepts it.
 */
static const struct task_field_spec {
	const char *name;
	unsigned int types;
	unsigned int required;
} fields[F_COUNT] = {
        [F_TYPE] = {"type", T_ALL, 0},
        [F_CODE] = {"code", T_EXEC | T_INTER | T_VALID, T_EXEC | T_INTER | T_VALID},
        [F_FILE_PATH] = {"file_path", T_FILE, T_FILE},
        [F_ITEMS] = {"items", T_BATCH, T_BATCH},
        [F_TIMEOUT] = {"timeout", T_RUNS, 0},
        [F_MEMORY_LIMIT] = {"memory_limit", T_RUNS, 0},
        [F_SECURITY_LEVEL] = {"security_level", T_ALL, 0},
        [F_ALLOWED_IMPORTS] = {"allowed_imports", T_EXEC | T_VALID, 0},
        [F_CAPTURE_OUTPUT] = {"capture_output", T_RUNS, 0},
        [F_RETURN_VARIABLES] = {"return_variables", T_RUNS, 0},
        [F_WORKING_DIRECTORY] = {"working_directory", T_RUNS, 0},
        [F_ARGUMENTS] = {"arguments", T_FILE, 0},
        [F_ENVIRONMENT_VARS] = {"environment_vars", T_FILE, 0},
        [F_SESSION_ID] = {"session_id", T_INTER, 0},
        [F_CONTINUE_SESSION] = {"continue_session", T_INTER, 0},
        [F_RESET_SESSION] = {"reset_session", T_INTER, 0},
        [F_CHECK_SYNTAX] = {"check_syntax", T_VALID, 0},
        [F_CHECK_IMPORTS] = {"check_imports", T_VALID, 0},
        [F_FRESH_KERNEL] = {"fresh_kernel", T_BATCH, 0},
        [F_STOP_ON_ERROR] = {"stop_on_error", T_BATCH, 0},
};

/*
 * Environment variables a request may not set. The first ones change how CPython or ld.so
 * behave; the C library ones are glibc's own list of variables it drops for set-user-ID
 * programs (unsecvars.h), TMPDIR excepted; the OpenSSL ones load shared objects.
 */
#define WHY_INTERP "name refused: it changes how the interpreter or loader behaves"
#define WHY_LIBC   "name refused: it changes how the C library behaves"
#define WHY_CODE   "name refused: it makes a library load code"
#define WHY_OURS   "name refused: it is reserved for sandcell and Jupyter"

static const struct env_rule {
	const char *name;
	bool prefix;
	const char *why;
} refused_env[] = {
        {"PYTHON", true, WHY_INTERP},
        {"_PYTHON", true, WHY_INTERP}, /* _PYTHON_SYSCONFIGDATA_NAME names a module to import */
        {"LD_", true, WHY_INTERP},
        {"GLIBC_TUNABLES", false, WHY_INTERP},
        {"MALLOC_", true, WHY_INTERP},
        {"GCONV_PATH", false, WHY_LIBC},
        {"GETCONF_DIR", false, WHY_LIBC},
        {"GMON_OUT_PREFIX", false, WHY_LIBC},
        {"HOSTALIASES", false, WHY_LIBC},
        {"LOCALDOMAIN", false, WHY_LIBC},
        {"LOCPATH", false, WHY_LIBC},
        {"NIS_PATH", false, WHY_LIBC},
        {"NLSPATH", false, WHY_LIBC},
        {"RESOLV_HOST_CONF", false, WHY_LIBC},
        {"RES_OPTIONS", false, WHY_LIBC},
        {"TZDIR", false, WHY_LIBC},
        {"OPENSSL_CONF", false, WHY_CODE},
        {"OPENSSL_ENGINES", false, WHY_CODE},
        {"OPENSSL_MODULES", false, WHY_CODE},
        {"SANDCELL_", true, WHY_OURS},
        {"JPY_", true, WHY_OURS},
};

/* One run of proto_task_parse(): the limits, where problems go and whether memory ran out. */
struct task_check {
	const struct proto_task_limits *lim;
	json_t *errors; /* borrowed; NULL only counts */
	size_t n_errors;
	bool nomem;
};

const char *proto_task_type_name(enum proto_task_type type)
{
	if ((unsigned int)type >= N_TYPES)
		return "unknown";
	return type_names[type];
}

int proto_task_type_from_name(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < N_TYPES; i++)
		if (!strcmp(name, type_names[i]))
			return (int)i;
	return -1;
}

/* jansson's iterators take a non-const object but do not change it. */
static json_t *unconst(const json_t *v)
{
	return (json_t *)(uintptr_t)v;
}

/* How many bytes of s to quote: all, or at most MAX_QUOTED cut at a UTF-8 character start. */
static int quoted_len(const char *s)
{
	size_t n = strlen(s);

	if (n <= MAX_QUOTED)
		return (int)n;
	n = MAX_QUOTED;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

/* Writes base.key into buf (PATH_SIZE bytes), a long key cut with a mark. */
static const char *path_key(char *buf, const char *base, const char *key)
{
	int n = quoted_len(key);

	/* A path longer than the buffer is cut: the return value says so, and that is fine. */
	if (snprintf(buf, PATH_SIZE, "%s%s%.*s%s", base, *base ? "." : "", n, key,
	             key[n] ? "…" : "") >= PATH_SIZE)
		buf[PATH_SIZE - 1] = '\0';
	return buf;
}

static const char *path_index(char *buf, const char *base, size_t i)
{
	if (snprintf(buf, PATH_SIZE, "%s[%zu]", base, i) >= PATH_SIZE)
		buf[PATH_SIZE - 1] = '\0';
	return buf;
}

/*
 * Appends {"field", "message"} to the errors, up to PROTO_TASK_MAX_ERRORS and one entry that
 * says the rest were left out. Every problem is counted, listed or not.
 */
__attribute__((format(printf, 3, 4))) static void report(struct task_check *c, const char *field,
                                                         const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	json_t *e;

	c->n_errors++;
	if (!c->errors || c->n_errors > PROTO_TASK_MAX_ERRORS + 1)
		return;
	if (c->n_errors == PROTO_TASK_MAX_ERRORS + 1) {
		field = "";
		snprintf(msg, sizeof(msg), "more problems not listed");
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	e = json_pack("{s:s, s:s}", "field", field, "message", msg);
	/* json_array_append_new() steals e, on failure too. */
	if (!e || json_array_append_new(c->errors, e) < 0)
		c->nomem = true;
}

static bool is_ascii_alpha(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool is_ascii_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* [A-Za-z_][A-Za-z0-9_]*: a C identifier, and an ASCII Python one. */
static bool is_identifier(const char *s, size_t len)
{
	if (!len || !(is_ascii_alpha(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(is_ascii_alpha(s[i]) || is_ascii_digit(s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* Identifiers joined by dots: "os", "os.path", "_x.y2". */
static bool is_module_name(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (!is_identifier(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* NULL when path is a relative path of normal components, else the reason it is not. */
/* True when a component of the path p is "..". */
static bool has_dotdot(const char *p)
{
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return true;
		s += n;
		while (*s == '/')
			s++;
	}
	return false;
}

static const char *relative_path_problem(const char *p, size_t len)
{
	if (!len)
		return "must not be empty";
	if (memchr(p, '\0', len))
		return "contains a NUL character";
	if (p[0] == '/')
		return "absolute paths are not allowed";
	if (memchr(p, '\\', len))
		return "backslashes are not allowed";
	for (size_t start = 0; start <= len;) {
		size_t end = start, n;

		while (end < len && p[end] != '/')
			end++;
		n = end - start;
		if (n == 0)
			return "empty components ('//' or a trailing '/') are not allowed";
		if (n == 1 && p[start] == '.')
			return "'.' components are not allowed";
		if (n == 2 && p[start] == '.' && p[start + 1] == '.')
			return "'..' is not allowed";
		start = end + 1;
	}
	return NULL;
}

bool proto_task_relative_path_ok(const char *path)
{
	return path && !relative_path_problem(path, strlen(path));
}

bool proto_task_env_name_ok(const char *name, const char **why)
{
	size_t len = name ? strlen(name) : 0;
	const char *w = NULL;

	if (len > MAX_ENV_NAME)
		w = "longer than the limit of 128 bytes";
	else if (!is_identifier(name, len))
		w = "not a valid identifier";
	for (size_t i = 0; !w && i < sizeof(refused_env) / sizeof(refused_env[0]); i++) {
		const struct env_rule *r = &refused_env[i];

		if (r->prefix ? !strncmp(name, r->name, strlen(r->name)) : !strcmp(name, r->name))
			w = r->why;
	}
	if (why)
		*why = w;
	return !w;
}

/*
 * Checks that v is a string of at most max bytes (and not empty unless allow_empty) without
 * NUL; returns it (its length in *lenp when not NULL), or NULL after reporting the problem.
 */
static const char *check_string(struct task_check *c, const json_t *v, const char *path, size_t max,
                                bool allow_empty, size_t *lenp)
{
	const char *s;
	size_t len;

	if (!json_is_string(v)) {
		report(c, path, "must be a string");
		return NULL;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (!len && !allow_empty) {
		report(c, path, "must not be empty");
		return NULL;
	}
	if (len > max) {
		report(c, path, "longer than the limit of %zu bytes", max);
		return NULL;
	}
	/* jansson keeps "\u0000" when the caller loaded with JSON_ALLOW_NUL. */
	if (memchr(s, '\0', len)) {
		report(c, path, "contains a NUL character");
		return NULL;
	}
	if (lenp)
		*lenp = len;
	return s;
}

static void check_bool(struct task_check *c, const json_t *v, const char *path, bool *out)
{
	if (!json_is_boolean(v))
		report(c, path, "must be a boolean");
	else
		*out = json_is_true(v);
}

static void check_timeout(struct task_check *c, const json_t *v, const char *path, double *out)
{
	double d = json_is_number(v) ? json_number_value(v) : 0;

	if (!(d > 0) || !isfinite(d))
		report(c, path, "must be a positive number of seconds");
	else if (d > MAX_TIMEOUT)
		report(c, path, "longer than the limit of %.0f seconds", MAX_TIMEOUT);
	else
		*out = d;
}

/* A positive integer of bytes, or a short size string; the gateway parses the string later. */
static const json_t *check_memory_limit(struct task_check *c, const json_t *v, const char *path)
{
	const char *s;
	size_t len;

	if (json_is_integer(v)) {
		if (json_integer_value(v) > 0)
			return v;
		report(c, path, "must be a positive number of bytes");
		return NULL;
	}
	if (!json_is_string(v)) {
		report(c, path, "must be a size such as \"100MB\" or a number of bytes");
		return NULL;
	}
	s = check_string(c, v, path, MAX_MEMORY_LIMIT_LEN, false, &len);
	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (!is_ascii_digit(s[i]) && !is_ascii_alpha(s[i]) && s[i] != '.' && s[i] != ' ') {
			report(c, path, "must be a size such as \"100MB\"");
			return NULL;
		}
	}
	return v;
}

static const char *check_security_level(struct task_check *c, const json_t *v, const char *path)
{
	const char *s = check_string(c, v, path, SIZE_MAX, true, NULL);

	if (!s)
		return NULL;
	for (size_t i = 0; i < sizeof(security_levels) / sizeof(security_levels[0]); i++)
		if (!strcmp(s, security_levels[i]))
			return s;
	report(c, path, "must be one of strict, moderate, permissive, custom");
	return NULL;
}

/* An array of at most max_names identifiers, or of dotted module names. */
static const json_t *check_names(struct task_check *c, const json_t *v, const char *path,
                                 bool dotted)
{
	char p[PATH_SIZE];
	size_t n;
	bool ok = true;

	if (!json_is_array(v)) {
		report(c, path, "must be an array");
		return NULL;
	}
	n = json_array_size(v);
	if (n > c->lim->max_names) {
		report(c, path, "more than the limit of %zu entries", c->lim->max_names);
		n = c->lim->max_names;
		ok = false;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *s = check_string(c, json_array_get(v, i), path_index(p, path, i),
		                             SIZE_MAX, false, &len);

		if (!s) {
			ok = false;
		} else if (dotted ? !is_module_name(s, len) : !is_identifier(s, len)) {
			report(c, p, dotted ? "not a valid module name" : "not a valid identifier");
			ok = false;
		}
	}
	return ok ? v : NULL;
}

static const char *check_file_path(struct task_check *c, const json_t *v, const char *path)
{
	const char *s = check_string(c, v, path, c->lim->max_path, true, NULL);
	const char *problem;

	if (!s)
		return NULL;
	problem = relative_path_problem(s, strlen(s));
	if (problem) {
		report(c, path, "%s", problem);
		return NULL;
	}
	return s;
}

static const json_t *check_arguments(struct task_check *c, const json_t *v, const char *path)
{
	char p[PATH_SIZE];
	size_t n, total = 0;
	bool ok = true;

	if (!json_is_array(v)) {
		report(c, path, "must be an array");
		return NULL;
	}
	n = json_array_size(v);
	if (n > c->lim->max_args) {
		report(c, path, "more than the limit of %zu entries", c->lim->max_args);
		n = c->lim->max_args;
		ok = false;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len;

		if (check_string(c, json_array_get(v, i), path_index(p, path, i),
		                 c->lim->max_args_size, true, &len))
			total += len;
		else
			ok = false;
	}
	if (total > c->lim->max_args_size) {
		report(c, path, "longer than the limit of %zu bytes in all", c->lim->max_args_size);
		ok = false;
	}
	return ok ? v : NULL;
}

static const json_t *check_environment(struct task_check *c, const json_t *v, const char *path)
{
	char p[PATH_SIZE];
	const char *key;
	const json_t *value;
	size_t i = 0;
	bool ok = true;

	if (!json_is_object(v)) {
		report(c, path, "must be an object");
		return NULL;
	}
	if (json_object_size(v) > c->lim->max_env) {
		report(c, path, "more than the limit of %zu entries", c->lim->max_env);
		ok = false;
	}
	json_object_foreach(unconst(v), key, value) {
		const char *why;

		if (i++ == c->lim->max_env)
			break;
		path_key(p, path, key);
		if (!proto_task_env_name_ok(key, &why)) {
			report(c, p, "%s", why);
			ok = false;
		}
		if (!check_string(c, value, p, c->lim->max_env_value, true, NULL))
			ok = false;
	}
	return ok ? v : NULL;
}

static const char *check_session_id(struct task_check *c, const json_t *v, const char *path)
{
	size_t len;
	const char *s = check_string(c, v, path, c->lim->max_id, false, &len);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (!is_ascii_alpha(s[i]) && !is_ascii_digit(s[i]) && !strchr("_.:-", s[i])) {
			report(c, path, "may only hold A-Z a-z 0-9 _ . : -");
			return NULL;
		}
	}
	return s;
}

/*
 * One batch item: a code string, {"code": …}, or {"file_path": …} with optional arguments
 * and environment_vars.
 */
static void check_item(struct task_check *c, const json_t *v, size_t index,
                       struct proto_task_item *it)
{
	char path[PATH_SIZE], p[PATH_SIZE];
	bool has_code = false, has_file = false;
	const char *key;
	const json_t *value;

	path_index(path, "task.items", index);
	if (json_is_string(v)) {
		it->code = check_string(c, v, path, c->lim->max_code, true, &it->code_len);
		return;
	}
	if (!json_is_object(v)) {
		report(c, path, "must be a code string or an object");
		return;
	}
	json_object_foreach(unconst(v), key, value) {
		path_key(p, path, key);
		if (!strcmp(key, "code")) {
			has_code = true;
			it->code = check_string(c, value, p, c->lim->max_code, true, &it->code_len);
		} else if (!strcmp(key, "file_path")) {
			has_file = true;
			it->file_path = check_file_path(c, value, p);
		} else if (!strcmp(key, "arguments")) {
			it->arguments = check_arguments(c, value, p);
		} else if (!strcmp(key, "environment_vars")) {
			it->environment_vars = check_environment(c, value, p);
		} else {
			report(c, p, "unknown field");
		}
	}
	if (has_code && has_file) {
		report(c, path, "holds both code and file_path");
	} else if (!has_code && !has_file) {
		report(c, path, "needs code or file_path");
	} else if (has_code) {
		if (json_object_get(v, "arguments"))
			report(c, path_key(p, path, "arguments"), "only allowed with file_path");
		if (json_object_get(v, "environment_vars"))
			report(c, path_key(p, path, "environment_vars"),
			       "only allowed with file_path");
	}
}

static void check_items(struct task_check *c, const json_t *v, const char *path,
                        struct proto_task *t)
{
	size_t n;

	if (!json_is_array(v)) {
		report(c, path, "must be an array");
		return;
	}
	n = json_array_size(v);
	if (!n) {
		report(c, path, "must hold at least one item");
		return;
	}
	if (n > c->lim->max_items) {
		report(c, path, "more than the limit of %zu items", c->lim->max_items);
		n = c->lim->max_items;
	}
	t->items = proto__calloc(n, sizeof(*t->items));
	if (!t->items) {
		c->nomem = true;
		return;
	}
	t->n_items = n;
	for (size_t i = 0; i < n; i++)
		check_item(c, json_array_get(v, i), i, &t->items[i]);
}

/*
 * Empty code is accepted for execute, interactive and validate (and as a batch item): it runs
 * nothing and succeeds, as an empty notebook cell does, so a client need not special-case it.
 */
static void check_field(struct task_check *c, enum task_field f, const json_t *v, const char *path,
                        struct proto_task *t)
{
	switch (f) {
	case F_TYPE:
	case F_COUNT:
		break;
	case F_CODE:
		t->code = check_string(c, v, path, c->lim->max_code, true, &t->code_len);
		break;
	case F_FILE_PATH:
		t->file_path = check_file_path(c, v, path);
		break;
	case F_ITEMS:
		check_items(c, v, path, t);
		break;
	case F_TIMEOUT:
		check_timeout(c, v, path, &t->timeout);
		break;
	case F_MEMORY_LIMIT:
		t->memory_limit = check_memory_limit(c, v, path);
		break;
	case F_SECURITY_LEVEL:
		t->security_level = check_security_level(c, v, path);
		break;
	case F_ALLOWED_IMPORTS:
		t->allowed_imports = check_names(c, v, path, true);
		break;
	case F_CAPTURE_OUTPUT:
		check_bool(c, v, path, &t->capture_output);
		break;
	case F_RETURN_VARIABLES:
		t->return_variables = check_names(c, v, path, false);
		break;
	case F_WORKING_DIRECTORY:
		t->working_directory = check_string(c, v, path, c->lim->max_path, false, NULL);
		/* A relative directory is below /workspace: no ".." may lead out of it. */
		if (t->working_directory && t->working_directory[0] != '/' &&
		    has_dotdot(t->working_directory)) {
			report(c, path, "'..' is not allowed in a relative working_directory");
			t->working_directory = NULL;
		}
		break;
	case F_ARGUMENTS:
		t->arguments = check_arguments(c, v, path);
		break;
	case F_ENVIRONMENT_VARS:
		t->environment_vars = check_environment(c, v, path);
		break;
	case F_SESSION_ID:
		t->session_id = check_session_id(c, v, path);
		break;
	case F_CONTINUE_SESSION:
		check_bool(c, v, path, &t->continue_session);
		break;
	case F_RESET_SESSION:
		check_bool(c, v, path, &t->reset_session);
		break;
	case F_CHECK_SYNTAX:
		check_bool(c, v, path, &t->check_syntax);
		break;
	case F_CHECK_IMPORTS:
		check_bool(c, v, path, &t->check_imports);
		break;
	case F_FRESH_KERNEL:
		check_bool(c, v, path, &t->fresh_kernel);
		break;
	case F_STOP_ON_ERROR:
		check_bool(c, v, path, &t->stop_on_error);
		break;
	}
}

static int find_field(const char *name)
{
	for (int f = 0; f < F_COUNT; f++)
		if (!strcmp(name, fields[f].name))
			return f;
	return -1;
}

/* The task's type, or -1 after reporting why it has none that fits. */
static int check_type(struct task_check *c, const json_t *task, int expected)
{
	const json_t *v = json_object_get(task, "type");
	const char *name;
	int type, n;

	if (!v) {
		if (expected < 0)
			report(c, "task.type", "required");
		return expected;
	}
	if (!json_is_string(v)) {
		report(c, "task.type", "must be a string");
		return -1;
	}
	name = json_string_value(v);
	type = strlen(name) == json_string_length(v) ? proto_task_type_from_name(name) : -1;
	if (type < 0) {
		n = quoted_len(name);
		report(c, "task.type",
		       "unknown task type '%.*s%s' (expected one of execute, execute_file, "
		       "interactive, validate, batch)",
		       n, name, name[n] ? "…" : "");
		return -1;
	}
	if (expected >= 0 && type != expected) {
		report(c, "task.type", "does not match the endpoint (%s)", type_names[expected]);
		return -1;
	}
	return type;
}

/* Every field of the task object, in the order written, then the missing required ones. */
static void check_task(struct task_check *c, const json_t *task, enum proto_task_type type,
                       struct proto_task *t)
{
	char p[PATH_SIZE];
	const char *key;
	const json_t *value;

	json_object_foreach(unconst(task), key, value) {
		int f = find_field(key);

		path_key(p, "task", key);
		if (f >= 0 && json_is_null(value) && !(fields[f].required & TYPE_BIT(type)))
			continue; /* null: not given (clients that serialise None) */
		if (f < 0)
			report(c, p, "unknown field");
		else if (!(fields[f].types & TYPE_BIT(type)))
			report(c, p, "not a field of %s tasks", type_names[type]);
		else
			check_field(c, (enum task_field)f, value, p, t);
	}
	for (int f = 0; f < F_COUNT; f++)
		if ((fields[f].required & TYPE_BIT(type)) && !json_object_get(task, fields[f].name))
			report(c, path_key(p, "task", fields[f].name), "required");
}

static const json_t *check_id(struct task_check *c, const json_t *v)
{
	if (json_is_integer(v))
		return v;
	if (!json_is_string(v)) {
		report(c, "id", "must be a string or an integer");
		return NULL;
	}
	return check_string(c, v, "id", c->lim->max_id, false, NULL) ? v : NULL;
}

int proto_task_parse(const json_t *envelope, int expected, bool allow_ws_keys,
                     const struct proto_task_limits *limits, struct proto_task *t, json_t *errors)
{
	struct task_check c = {.lim = limits, .errors = errors};
	const json_t *task = NULL, *value;
	bool has_id = false;
	const char *key;
	char p[PATH_SIZE];
	int type, r;

	assert(expected >= -1 && expected < (int)N_TYPES);
	assert(limits && t);
	memset(t, 0, sizeof(*t));
	t->capture_output = true;
	t->continue_session = true;
	t->check_syntax = true;
	t->check_imports = true;
	t->stop_on_error = true;

	if (!json_is_object(envelope)) {
		report(&c, "", "must be an object");
		goto out;
	}
	json_object_foreach(unconst(envelope), key, value) {
		if (!strcmp(key, "task")) {
			task = value;
			if (!json_is_object(task))
				report(&c, "task", "must be an object");
		} else if (!strcmp(key, "assigned_by")) {
			t->assigned_by =
			        check_string(&c, value, "assigned_by", limits->max_id, true, NULL);
		} else if (allow_ws_keys && !strcmp(key, "id")) {
			has_id = true;
			t->id = check_id(&c, value);
		} else if (allow_ws_keys && !strcmp(key, "cancel")) {
			/* The gateway takes cancel frames before they get here. */
			report(&c, "cancel", "cancel frames carry no task");
		} else {
			report(&c, path_key(p, "", key), "unknown field");
		}
	}
	if (allow_ws_keys && !has_id)
		report(&c, "id", "required");
	if (!task) {
		report(&c, "task", "required");
	} else if (json_is_object(task)) {
		/* Without a type that fits, which fields belong is unknown: check none of them. */
		type = check_type(&c, task, expected);
		if (type >= 0) {
			t->type = (enum proto_task_type)type;
			check_task(&c, task, t->type, t);
		}
	}

out:
	if (!c.nomem && !c.n_errors)
		return 0;
	r = c.nomem ? -ENOMEM : -EINVAL;
	proto_task_clear(t);
	return r;
}

void proto_task_clear(struct proto_task *t)
{
	if (!t)
		return;
	proto__free(t->items);
	memset(t, 0, sizeof(*t));
}
