/*
 * Fuzzes proto_task_parse() on JSON text: every input that jansson loads is parsed as an HTTP
 * task of each type and as a WebSocket task, under the default and under tiny limits. An
 * accepted task must hold everything its type requires, within the limits; a refused one must
 * be cleared and list at least one {"field", "message"} problem.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "proto_task.h"

static const struct proto_task_limits dflt = PROTO_TASK_LIMITS_DEFAULT;
static const struct proto_task_limits tiny = {
        .max_code = 8,
        .max_names = 2,
        .max_args = 2,
        .max_args_size = 8,
        .max_env = 2,
        .max_env_value = 4,
        .max_items = 2,
        .max_path = 8,
        .max_id = 4,
};

static bool string_ok(const char *s, size_t max)
{
	return s && strlen(s) <= max;
}

static void check_strings(const json_t *arr, size_t max_count, size_t max_total)
{
	size_t total = 0;

	if (!arr)
		return;
	FUZZ_CHECK(json_is_array(arr) && json_array_size(arr) <= max_count);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *v = json_array_get(arr, i);

		FUZZ_CHECK(json_is_string(v));
		FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
		total += json_string_length(v);
	}
	FUZZ_CHECK(total <= max_total);
}

static void check_env(const json_t *env, const struct proto_task_limits *lim)
{
	const char *key;
	json_t *v;

	if (!env)
		return;
	FUZZ_CHECK(json_is_object(env) && json_object_size(env) <= lim->max_env);
	json_object_foreach((json_t *)(uintptr_t)env, key, v) {
		FUZZ_CHECK(proto_task_env_name_ok(key, NULL));
		FUZZ_CHECK(json_is_string(v) && json_string_length(v) <= lim->max_env_value);
		FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
	}
}

static void check_accepted(const struct proto_task *t, const json_t *root, int expected, bool ws,
                           const struct proto_task_limits *lim)
{
	const json_t *task = json_object_get(root, "task");

	FUZZ_CHECK(json_is_object(task));
	FUZZ_CHECK(expected < 0 || (int)t->type == expected);
	FUZZ_CHECK(proto_task_type_from_name(proto_task_type_name(t->type)) == (int)t->type);
	FUZZ_CHECK(ws ? t->id != NULL : t->id == NULL && !json_object_get(root, "id"));
	FUZZ_CHECK(!t->assigned_by || string_ok(t->assigned_by, lim->max_id));
	FUZZ_CHECK(t->timeout == 0 || (t->timeout > 0 && t->timeout <= 1e6));
	FUZZ_CHECK(!t->security_level || !strcmp(t->security_level, "strict") ||
	           !strcmp(t->security_level, "moderate") ||
	           !strcmp(t->security_level, "permissive") ||
	           !strcmp(t->security_level, "custom"));
	FUZZ_CHECK(!t->memory_limit || json_is_string(t->memory_limit) ||
	           json_integer_value(t->memory_limit) > 0);
	check_strings(t->allowed_imports, lim->max_names, SIZE_MAX);
	check_strings(t->return_variables, lim->max_names, SIZE_MAX);
	FUZZ_CHECK(!t->working_directory ||
	           (string_ok(t->working_directory, lim->max_path) && t->working_directory[0]));
	FUZZ_CHECK(!t->session_id || string_ok(t->session_id, lim->max_id));

	switch (t->type) {
	case PROTO_TASK_EXECUTE:
	case PROTO_TASK_INTERACTIVE:
	case PROTO_TASK_VALIDATE:
		FUZZ_CHECK(t->code && strlen(t->code) == t->code_len);
		FUZZ_CHECK(t->code_len <= lim->max_code);
		FUZZ_CHECK(!t->file_path && !t->items);
		break;
	case PROTO_TASK_EXECUTE_FILE:
		FUZZ_CHECK(!t->code && !t->items);
		FUZZ_CHECK(proto_task_relative_path_ok(t->file_path));
		FUZZ_CHECK(strlen(t->file_path) <= lim->max_path);
		check_strings(t->arguments, lim->max_args, lim->max_args_size);
		check_env(t->environment_vars, lim);
		break;
	case PROTO_TASK_BATCH:
		FUZZ_CHECK(!t->code && !t->file_path);
		FUZZ_CHECK(t->items && t->n_items >= 1 && t->n_items <= lim->max_items);
		FUZZ_CHECK(t->n_items == json_array_size(json_object_get(task, "items")));
		for (size_t i = 0; i < t->n_items; i++) {
			const struct proto_task_item *it = &t->items[i];

			FUZZ_CHECK(!it->code != !it->file_path);
			if (it->code) {
				FUZZ_CHECK(strlen(it->code) == it->code_len);
				FUZZ_CHECK(it->code_len <= lim->max_code);
				FUZZ_CHECK(!it->arguments && !it->environment_vars);
			} else {
				FUZZ_CHECK(proto_task_relative_path_ok(it->file_path));
				check_strings(it->arguments, lim->max_args, lim->max_args_size);
				check_env(it->environment_vars, lim);
			}
		}
		break;
	}
}

static void check_refused(const struct proto_task *t, const json_t *errors)
{
	static const struct proto_task zero;
	size_t n = json_array_size(errors);
	char *text;

	FUZZ_CHECK(!memcmp(t, &zero, sizeof(*t)));
	FUZZ_CHECK(n >= 1 && n <= PROTO_TASK_MAX_ERRORS + 1);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(errors, i);
		const json_t *msg = json_object_get(e, "message");

		FUZZ_CHECK(json_object_size(e) == 2);
		FUZZ_CHECK(json_is_string(json_object_get(e, "field")));
		FUZZ_CHECK(json_is_string(msg) && json_string_length(msg) > 0);
	}
	/* Every error must be sendable as it is. */
	text = json_dumps(errors, JSON_COMPACT);
	FUZZ_CHECK(text);
	free(text);
}

/* Parses root one way; returns the result. */
static int parse_once(const json_t *root, int expected, bool ws,
                      const struct proto_task_limits *lim)
{
	struct proto_task t;
	json_t *errors = json_array();
	int r;

	FUZZ_CHECK(errors);
	r = proto_task_parse(root, expected, ws, lim, &t, errors);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		FUZZ_CHECK(json_array_size(errors) == 0);
		check_accepted(&t, root, expected, ws, lim);
		/* A task that names its type is accepted at that type's endpoint too. */
		if (expected < 0) {
			struct proto_task again;

			FUZZ_CHECK(proto_task_parse(root, (int)t.type, ws, lim, &again, NULL) == 0);
			FUZZ_CHECK(again.type == t.type && again.code == t.code &&
			           again.n_items == t.n_items);
			proto_task_clear(&again);
		}
	} else {
		check_refused(&t, errors);
	}
	proto_task_clear(&t);
	json_decref(errors);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);

	if (!root)
		return 0;
	for (int lim = 0; lim < 2; lim++) {
		for (int ws = 0; ws < 2; ws++) {
			const struct proto_task_limits *l = lim ? &tiny : &dflt;
			int any = parse_once(root, -1, ws, l);
			bool some_type = false;

			for (int type = PROTO_TASK_EXECUTE; type <= PROTO_TASK_BATCH; type++)
				some_type |= parse_once(root, type, ws, l) == 0;
			/* Accepted without an endpoint: accepted at its own endpoint. */
			FUZZ_CHECK(any != 0 || some_type);
		}
	}
	json_decref(root);
	return 0;
}
