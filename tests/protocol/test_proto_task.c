/*
 * proto_task: valid tasks of every type with their defaults, every field's wrong type, caps,
 * paths, environment names, the envelope's keys, several problems listed at once, and
 * allocation failures. Cases are written as JSON with ' for " so that they read as requests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proto_task.h"
#include "testdata.h"

TestSuite(proto_task, .fini = test_check_leaks);

static const struct proto_task_limits dflt = PROTO_TASK_LIMITS_DEFAULT;

/* One parse: the envelope (which the task borrows from), the errors and the result. */
struct run {
	json_t *root;
	json_t *errors;
	struct proto_task t;
	int r;
};

static json_t *load(const char *text)
{
	char *json = strdup(text);
	json_error_t jerr;
	json_t *root;

	cr_assert(json);
	for (char *p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	root = json_loads(json, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	cr_assert(root, "%s: %s", json, jerr.text);
	free(json);
	return root;
}

/* Parses root (stolen) as a task. */
static void run_json(struct run *x, json_t *root, int expected, bool ws,
                     const struct proto_task_limits *lim)
{
	x->root = root;
	x->errors = json_array();
	cr_assert(x->errors);
	memset(&x->t, 0x5a, sizeof(x->t));
	x->r = proto_task_parse(x->root, expected, ws, lim ? lim : &dflt, &x->t, x->errors);
}

static void run(struct run *x, const char *text, int expected, bool ws)
{
	run_json(x, load(text), expected, ws, NULL);
}

static void run_done(struct run *x)
{
	proto_task_clear(&x->t);
	json_decref(x->root);
	json_decref(x->errors);
}

static char *errors_text(const struct run *x)
{
	char *s = json_dumps(x->errors, JSON_COMPACT);

	cr_assert(s);
	return s;
}

/* Expects the parse to have failed with exactly these (field, message) pairs, in order. */
static void expect_errors_v(const struct run *x, const char *const *pairs)
{
	static const struct proto_task zero;
	char *text = errors_text(x);
	size_t n = 0;

	while (pairs[2 * n])
		n++;
	cr_expect_eq(x->r, -EINVAL, "result %d, errors %s", x->r, text);
	cr_expect(!memcmp(&x->t, &zero, sizeof(x->t)), "task not cleared");
	cr_expect_eq(json_array_size(x->errors), n, "want %zu errors, got %s", n, text);
	for (size_t i = 0; i < n && i < json_array_size(x->errors); i++) {
		const json_t *e = json_array_get(x->errors, i);
		const char *field = json_string_value(json_object_get(e, "field"));
		const char *message = json_string_value(json_object_get(e, "message"));

		cr_expect_eq(json_object_size(e), 2, "%s", text);
		cr_expect(field && !strcmp(field, pairs[2 * i]), "error %zu: field %s, want %s", i,
		          field ? field : "(none)", pairs[2 * i]);
		cr_expect(message && !strcmp(message, pairs[2 * i + 1]),
		          "error %zu: message \"%s\", want \"%s\"", i, message ? message : "(none)",
		          pairs[2 * i + 1]);
	}
	free(text);
}

#define EXPECT_ERRORS(x, ...) expect_errors_v((x), (const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(const struct run *x)
{
	char *text = errors_text(x);

	cr_expect_eq(x->r, 0, "result %d, errors %s", x->r, text);
	cr_expect_eq(json_array_size(x->errors), 0, "%s", text);
	free(text);
}

/* Parses one case and expects exactly one error. */
static void expect_one_error(const char *text, int expected, const char *field, const char *message)
{
	struct run x;

	run(&x, text, expected, false);
	EXPECT_ERRORS(&x, field, message);
	run_done(&x);
}

static void expect_accepted(const char *text, int expected)
{
	struct run x;

	run(&x, text, expected, false);
	expect_ok(&x);
	run_done(&x);
}

static void expect_defaults(const struct proto_task *t)
{
	cr_expect_null(t->id);
	cr_expect_null(t->assigned_by);
	cr_expect_eq(t->timeout, 0);
	cr_expect_null(t->memory_limit);
	cr_expect_null(t->security_level);
	cr_expect_null(t->allowed_imports);
	cr_expect(t->capture_output);
	cr_expect_null(t->return_variables);
	cr_expect_null(t->working_directory);
	cr_expect_null(t->arguments);
	cr_expect_null(t->environment_vars);
	cr_expect_null(t->session_id);
	cr_expect(t->continue_session);
	cr_expect_not(t->reset_session);
	cr_expect(t->check_syntax);
	cr_expect(t->check_imports);
	cr_expect_not(t->fresh_kernel);
	cr_expect(t->stop_on_error);
}

Test(proto_task, type_names_round_trip)
{
	for (int i = PROTO_TASK_EXECUTE; i <= PROTO_TASK_BATCH; i++)
		cr_expect_eq(proto_task_type_from_name(proto_task_type_name(i)), i);
	cr_expect_str_eq(proto_task_type_name(PROTO_TASK_EXECUTE_FILE), "execute_file");
	cr_expect_str_eq(proto_task_type_name((enum proto_task_type)99), "unknown");
	cr_expect_eq(proto_task_type_from_name("Execute"), -1);
	cr_expect_eq(proto_task_type_from_name("execute-file"), -1);
	cr_expect_eq(proto_task_type_from_name(""), -1);
	cr_expect_eq(proto_task_type_from_name(NULL), -1);
}

Test(proto_task, minimal_execute_has_the_defaults)
{
	struct run x;

	run(&x, "{'task': {'type': 'execute', 'code': 'print(1)'}}", -1, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_EXECUTE);
	cr_expect_str_eq(x.t.code, "print(1)");
	cr_expect_eq(x.t.code_len, 8);
	cr_expect_null(x.t.file_path);
	cr_expect_null(x.t.items);
	expect_defaults(&x.t);
	run_done(&x);
}

Test(proto_task, minimal_execute_file_has_the_defaults)
{
	struct run x;

	run(&x, "{'task': {'type': 'execute_file', 'file_path': 'jobs/report.py'}}", -1, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_EXECUTE_FILE);
	cr_expect_str_eq(x.t.file_path, "jobs/report.py");
	cr_expect_null(x.t.code);
	expect_defaults(&x.t);
	run_done(&x);
}

Test(proto_task, minimal_interactive_has_the_defaults)
{
	struct run x;

	run(&x, "{'task': {'type': 'interactive', 'code': 'x = 1'}}", -1, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_INTERACTIVE);
	cr_expect_str_eq(x.t.code, "x = 1");
	expect_defaults(&x.t);
	run_done(&x);
}

Test(proto_task, minimal_validate_has_the_defaults)
{
	struct run x;

	run(&x, "{'task': {'type': 'validate', 'code': 'import os'}}", -1, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_VALIDATE);
	cr_expect_str_eq(x.t.code, "import os");
	expect_defaults(&x.t);
	run_done(&x);
}

Test(proto_task, minimal_batch_has_the_defaults)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'batch', 'items': ['x = 1', {'code': 'y = 2'}, "
	    "{'file_path': 'a.py'}]}}",
	    -1, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_BATCH);
	cr_expect_null(x.t.code);
	cr_assert_eq(x.t.n_items, 3);
	cr_expect_str_eq(x.t.items[0].code, "x = 1");
	cr_expect_eq(x.t.items[0].code_len, 5);
	cr_expect_null(x.t.items[0].file_path);
	cr_expect_str_eq(x.t.items[1].code, "y = 2");
	cr_expect_null(x.t.items[2].code);
	cr_expect_str_eq(x.t.items[2].file_path, "a.py");
	cr_expect_null(x.t.items[2].arguments);
	cr_expect_null(x.t.items[2].environment_vars);
	expect_defaults(&x.t);
	run_done(&x);
}

Test(proto_task, every_field_of_execute)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'execute', 'code': 'x', 'timeout': 2.5, 'memory_limit': '100MB', "
	    "'security_level': 'strict', 'allowed_imports': ['os.path', 'json', '_x1'], "
	    "'capture_output': false, 'return_variables': ['x', '_y'], "
	    "'working_directory': '/tmp/w'}, 'assigned_by': 'ray'}",
	    PROTO_TASK_EXECUTE, false);
	expect_ok(&x);
	cr_expect_eq(x.t.timeout, 2.5);
	cr_expect_str_eq(json_string_value(x.t.memory_limit), "100MB");
	cr_expect_str_eq(x.t.security_level, "strict");
	cr_expect_eq(json_array_size(x.t.allowed_imports), 3);
	cr_expect_not(x.t.capture_output);
	cr_expect_eq(json_array_size(x.t.return_variables), 2);
	cr_expect_str_eq(x.t.working_directory, "/tmp/w");
	cr_expect_str_eq(x.t.assigned_by, "ray");
	run_done(&x);
}

Test(proto_task, every_field_of_execute_file)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'execute_file', 'file_path': 'a/b.py', 'arguments': ['-v', ''], "
	    "'environment_vars': {'FOO_BAR': '1', 'PATH': '/usr/bin', 'HOME': '/w'}, "
	    "'timeout': 10, 'memory_limit': 1048576, 'security_level': 'moderate', "
	    "'capture_output': true, 'return_variables': [], 'working_directory': 'sub'}}",
	    -1, false);
	expect_ok(&x);
	cr_expect_str_eq(x.t.file_path, "a/b.py");
	cr_expect_eq(json_array_size(x.t.arguments), 2);
	cr_expect_eq(json_object_size(x.t.environment_vars), 3);
	cr_expect_eq(x.t.timeout, 10);
	cr_expect_eq(json_integer_value(x.t.memory_limit), 1048576);
	cr_expect_str_eq(x.t.security_level, "moderate");
	cr_expect_str_eq(x.t.working_directory, "sub");
	run_done(&x);
}

Test(proto_task, every_field_of_interactive)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'interactive', 'code': '', 'session_id': 'ray:s-1.A_b', "
	    "'continue_session': false, 'reset_session': true, 'timeout': 1, "
	    "'security_level': 'permissive', 'memory_limit': '1.5 GiB', "
	    "'return_variables': ['df'], 'capture_output': false, 'working_directory': 'w'}}",
	    PROTO_TASK_INTERACTIVE, false);
	expect_ok(&x);
	cr_expect_str_eq(x.t.code, "");
	cr_expect_eq(x.t.code_len, 0);
	cr_expect_str_eq(x.t.session_id, "ray:s-1.A_b");
	cr_expect_not(x.t.continue_session);
	cr_expect(x.t.reset_session);
	cr_expect_str_eq(x.t.security_level, "permissive");
	run_done(&x);
}

Test(proto_task, every_field_of_validate)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'validate', 'code': 'import os', 'security_level': 'custom', "
	    "'check_syntax': false, 'check_imports': false, 'allowed_imports': ['numpy']}}",
	    -1, false);
	expect_ok(&x);
	cr_expect_not(x.t.check_syntax);
	cr_expect_not(x.t.check_imports);
	cr_expect_str_eq(x.t.security_level, "custom");
	cr_expect_eq(json_array_size(x.t.allowed_imports), 1);
	run_done(&x);
}

Test(proto_task, every_field_of_batch)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'batch', 'items': [{'file_path': 'a.py', 'arguments': ['1'], "
	    "'environment_vars': {'N': '2'}}], 'fresh_kernel': true, 'stop_on_error': false, "
	    "'timeout': 3, 'memory_limit': '1GB', 'security_level': 'strict', "
	    "'capture_output': true, 'return_variables': ['r'], 'working_directory': 'w'}}",
	    PROTO_TASK_BATCH, false);
	expect_ok(&x);
	cr_assert_eq(x.t.n_items, 1);
	cr_expect_eq(json_array_size(x.t.items[0].arguments), 1);
	cr_expect_eq(json_object_size(x.t.items[0].environment_vars), 1);
	cr_expect(x.t.fresh_kernel);
	cr_expect_not(x.t.stop_on_error);
	cr_expect_eq(x.t.timeout, 3);
	run_done(&x);
}

Test(proto_task, type_may_be_left_out_when_the_endpoint_says_it)
{
	struct run x;

	run(&x, "{'task': {'code': '1'}}", PROTO_TASK_VALIDATE, false);
	expect_ok(&x);
	cr_expect_eq(x.t.type, PROTO_TASK_VALIDATE);
	run_done(&x);
	expect_one_error("{'task': {'code': '1'}}", -1, "task.type", "required");
}

Test(proto_task, type_must_match_the_endpoint)
{
	expect_one_error("{'task': {'type': 'validate', 'code': '1'}}", PROTO_TASK_EXECUTE_FILE,
	                 "task.type", "does not match the endpoint (execute_file)");
	expect_accepted("{'task': {'type': 'validate', 'code': '1'}}", PROTO_TASK_VALIDATE);
}

Test(proto_task, unknown_type_is_the_only_problem_reported_in_the_task)
{
	expect_one_error("{'task': {'type': 'foo', 'code': 1, 'bogus': 2}}", -1, "task.type",
	                 "unknown task type 'foo' (expected one of execute, execute_file, "
	                 "interactive, validate, batch)");
	expect_one_error("{'task': {'type': 7, 'bogus': 2}}", -1, "task.type", "must be a string");
	expect_one_error("{'task': {'type': 'Execute'}}", PROTO_TASK_EXECUTE, "task.type",
	                 "unknown task type 'Execute' (expected one of execute, execute_file, "
	                 "interactive, validate, batch)");
	/* Envelope problems are still listed. */
	{
		struct run x;

		run(&x, "{'task': {'type': 'nope'}, 'assigned_by': 3}", -1, false);
		EXPECT_ERRORS(&x, "assigned_by", "must be a string", "task.type",
		              "unknown task type 'nope' (expected one of execute, execute_file, "
		              "interactive, validate, batch)");
		run_done(&x);
	}
}

Test(proto_task, a_long_unknown_type_is_quoted_cut_at_a_character)
{
	char text[300];
	struct run x;
	const char *m;

	/* 63 'a' then 'é' (2 bytes) straddling the 64-byte quote limit, then more. */
	snprintf(text, sizeof(text), "{'task': {'type': '%.63s\xc3\xa9%s'}}",
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	run(&x, text, -1, false);
	cr_assert_eq(x.r, -EINVAL);
	m = json_string_value(json_object_get(json_array_get(x.errors, 0), "message"));
	cr_assert(m);
	cr_expect(strstr(m, "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…'"),
	          "%s", m);
	run_done(&x);
}

/* One wrong value per field: the task type it belongs to, the field, the value, the message. */
static const struct wrong_case {
	const char *type;
	const char *field;
	const char *value;
	const char *message;
} wrong_cases[] = {
        {"execute", "code", "1", "must be a string"},
        {"execute", "code", "null", "must be a string"},
        {"execute", "code", "['x']", "must be a string"},
        {"execute", "timeout", "'10'", "must be a positive number of seconds"},
        {"execute", "timeout", "0", "must be a positive number of seconds"},
        {"execute", "timeout", "-1.5", "must be a positive number of seconds"},
        {"execute", "timeout", "true", "must be a positive number of seconds"},
        {"execute", "timeout", "1000000.5", "longer than the limit of 1000000 seconds"},
        {"execute", "memory_limit", "true",
         "must be a size such as \"100MB\" or a number of bytes"},
        {"execute", "memory_limit", "1.5", "must be a size such as \"100MB\" or a number of bytes"},
        {"execute", "memory_limit", "0", "must be a positive number of bytes"},
        {"execute", "memory_limit", "-5", "must be a positive number of bytes"},
        {"execute", "memory_limit", "''", "must not be empty"},
        {"execute", "memory_limit", "'100MB; rm'", "must be a size such as \"100MB\""},
        {"execute", "memory_limit", "'100000000000000000000000000000000'",
         "longer than the limit of 32 bytes"},
        {"execute", "security_level", "'lax'",
         "must be one of strict, moderate, permissive, custom"},
        {"execute", "security_level", "'Strict'",
         "must be one of strict, moderate, permissive, custom"},
        {"execute", "security_level", "1", "must be a string"},
        {"execute", "allowed_imports", "'os'", "must be an array"},
        {"execute", "capture_output", "'yes'", "must be a boolean"},
        {"execute", "capture_output", "1", "must be a boolean"},
        {"execute", "return_variables", "{}", "must be an array"},
        {"execute", "working_directory", "7", "must be a string"},
        {"execute", "working_directory", "''", "must not be empty"},
        {"execute_file", "file_path", "['a.py']", "must be a string"},
        {"execute_file", "arguments", "'-v'", "must be an array"},
        {"execute_file", "environment_vars", "['A=1']", "must be an object"},
        {"interactive", "session_id", "5", "must be a string"},
        {"interactive", "session_id", "''", "must not be empty"},
        {"interactive", "session_id", "'a b'", "may only hold A-Z a-z 0-9 _ . : -"},
        {"interactive", "session_id", "'s/1'", "may only hold A-Z a-z 0-9 _ . : -"},
        {"interactive", "continue_session", "'true'", "must be a boolean"},
        {"interactive", "reset_session", "0", "must be a boolean"},
        {"validate", "check_syntax", "'yes'", "must be a boolean"},
        {"validate", "check_imports", "[]", "must be a boolean"},
        {"batch", "items", "'x = 1'", "must be an array"},
        {"batch", "items", "[]", "must hold at least one item"},
        {"batch", "fresh_kernel", "'no'", "must be a boolean"},
        {"batch", "stop_on_error", "1", "must be a boolean"},
};

/* A valid task of the type with the field set to value (the required fields filled in). */
static void wrong_case_text(const struct wrong_case *w, char *buf, size_t size)
{
	const char *required = "";

	if (!strcmp(w->type, "execute_file") && strcmp(w->field, "file_path"))
		required = ", 'file_path': 'a.py'";
	else if (!strcmp(w->type, "batch") && strcmp(w->field, "items"))
		required = ", 'items': ['1']";
	else if (strcmp(w->type, "execute_file") && strcmp(w->type, "batch") &&
	         strcmp(w->field, "code"))
		required = ", 'code': '1'";
	snprintf(buf, size, "{'task': {'type': '%s'%s, '%s': %s}}", w->type, required, w->field,
	         w->value);
}

Test(proto_task, every_field_refuses_a_wrong_value)
{
	for (size_t i = 0; i < sizeof(wrong_cases) / sizeof(wrong_cases[0]); i++) {
		const struct wrong_case *w = &wrong_cases[i];
		char text[400], field[64];

		wrong_case_text(w, text, sizeof(text));
		snprintf(field, sizeof(field), "task.%s", w->field);
		expect_one_error(text, -1, field, w->message);
	}
}

Test(proto_task, accepts_the_edges_of_each_value)
{
	expect_accepted("{'task': {'type': 'execute', 'code': '1', 'timeout': 1000000}}", -1);
	expect_accepted("{'task': {'type': 'execute', 'code': '1', 'timeout': 1e-3}}", -1);
	expect_accepted("{'task': {'type': 'execute', 'code': '1', 'memory_limit': "
	                "'10000000000000000000000000000000'}}",
	                -1);
	expect_accepted("{'task': {'type': 'execute', 'code': '1', 'memory_limit': 1}}", -1);
	expect_accepted("{'task': {'type': 'execute', 'code': '', 'allowed_imports': []}}", -1);
	expect_accepted("{'task': {'type': 'execute', 'code': '1', 'working_directory': '/'}}", -1);
	expect_accepted("{'task': {'type': 'interactive', 'code': '1', 'session_id': "
	                "'Az09_.:-'}}",
	                -1);
}

Test(proto_task, names_must_be_identifiers_and_module_names)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'execute', 'code': '1', 'allowed_imports': ['os', 'os.path', "
	    "'', 'os.', '.os', 'a..b', '1x', 'é', 5], 'return_variables': ['ok', 'a.b', 'x-y', "
	    "'9', '', null]}}",
	    -1, false);
	EXPECT_ERRORS(
	        &x, "task.allowed_imports[2]", "must not be empty", "task.allowed_imports[3]",
	        "not a valid module name", "task.allowed_imports[4]", "not a valid module name",
	        "task.allowed_imports[5]", "not a valid module name", "task.allowed_imports[6]",
	        "not a valid module name", "task.allowed_imports[7]", "not a valid module name",
	        "task.allowed_imports[8]", "must be a string", "task.return_variables[1]",
	        "not a valid identifier", "task.return_variables[2]", "not a valid identifier",
	        "task.return_variables[3]", "not a valid identifier", "task.return_variables[4]",
	        "must not be empty", "task.return_variables[5]", "must be a string");
	run_done(&x);
}

Test(proto_task, lists_every_problem_with_its_field_path)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'batch', 'items': ['ok', 3, {'code': 'x', 'file_path': 'a.py'}, "
	    "{'file_path': '../x', 'arguments': [1], 'environment_vars': {'LD_PRELOAD': 'x.so', "
	    "'OK': 2}}, {}, {'code': 'y', 'arguments': [], 'foo': 1}], 'timeout': -1, "
	    "'typo': true, 'code': 'x'}, 'assigned_by': 'a', 'extra': 1}",
	    -1, false);
	EXPECT_ERRORS(&x, "extra", "unknown field", "task.items[1]",
	              "must be a code string or an object", "task.items[2]",
	              "holds both code and file_path", "task.items[3].file_path",
	              "'..' is not allowed", "task.items[3].arguments[0]", "must be a string",
	              "task.items[3].environment_vars.LD_PRELOAD",
	              "name refused: it changes how the interpreter or loader behaves",
	              "task.items[3].environment_vars.OK", "must be a string", "task.items[4]",
	              "needs code or file_path", "task.items[5].foo", "unknown field",
	              "task.items[5].arguments", "only allowed with file_path", "task.timeout",
	              "must be a positive number of seconds", "task.typo", "unknown field",
	              "task.code", "not a field of batch tasks");
	run_done(&x);
}

Test(proto_task, reports_missing_required_fields)
{
	expect_one_error("{'task': {'type': 'execute'}}", -1, "task.code", "required");
	expect_one_error("{'task': {'type': 'interactive'}}", -1, "task.code", "required");
	expect_one_error("{'task': {'type': 'validate'}}", -1, "task.code", "required");
	expect_one_error("{'task': {'type': 'execute_file'}}", -1, "task.file_path", "required");
	expect_one_error("{'task': {}}", PROTO_TASK_BATCH, "task.items", "required");
}

Test(proto_task, refuses_fields_of_other_types)
{
	expect_one_error("{'task': {'type': 'validate', 'code': '1', 'timeout': 5}}", -1,
	                 "task.timeout", "not a field of validate tasks");
	expect_one_error("{'task': {'type': 'interactive', 'code': '1', 'allowed_imports': []}}",
	                 -1, "task.allowed_imports", "not a field of interactive tasks");
	expect_one_error("{'task': {'type': 'execute', 'code': '1', 'session_id': 's'}}", -1,
	                 "task.session_id", "not a field of execute tasks");
	expect_one_error("{'task': {'type': 'execute_file', 'file_path': 'a', 'code': '1'}}", -1,
	                 "task.code", "not a field of execute_file tasks");
}

Test(proto_task, refuses_unknown_fields_everywhere)
{
	expect_one_error("{'task': {'type': 'execute', 'code': '1', 'Code': '2'}}", -1, "task.Code",
	                 "unknown field");
	expect_one_error("{'task': {'type': 'execute', 'code': '1'}, 'assignedBy': 'x'}", -1,
	                 "assignedBy", "unknown field");
	expect_one_error("{'task': {'type': 'batch', 'items': [{'code': '1', 'x': 2}]}}", -1,
	                 "task.items[0].x", "unknown field");
}

Test(proto_task, the_envelope_must_hold_a_task_object)
{
	expect_one_error("[1]", -1, "", "must be an object");
	expect_one_error("'execute'", -1, "", "must be an object");
	expect_one_error("{}", -1, "task", "required");
	expect_one_error("{'task': 'print(1)'}", -1, "task", "must be an object");
	expect_one_error("{'task': null}", PROTO_TASK_EXECUTE, "task", "must be an object");
	expect_one_error("{'task': {'type': 'execute', 'code': '1'}, 'assigned_by': [1]}", -1,
	                 "assigned_by", "must be a string");
}

Test(proto_task, websocket_id_is_a_string_or_an_integer)
{
	struct run x;

	run(&x, "{'id': 'c1', 'task': {'type': 'execute', 'code': '1'}}", -1, true);
	expect_ok(&x);
	cr_expect_str_eq(json_string_value(x.t.id), "c1");
	run_done(&x);

	run(&x, "{'id': -42, 'task': {'type': 'execute', 'code': '1'}}", -1, true);
	expect_ok(&x);
	cr_expect_eq(json_integer_value(x.t.id), -42);
	run_done(&x);

	run(&x, "{'id': 1.5, 'task': {'type': 'execute', 'code': '1'}}", -1, true);
	EXPECT_ERRORS(&x, "id", "must be a string or an integer");
	run_done(&x);

	run(&x, "{'id': '', 'task': {'type': 'execute', 'code': '1'}}", -1, true);
	EXPECT_ERRORS(&x, "id", "must not be empty");
	run_done(&x);

	run(&x, "{'task': {'type': 'execute', 'code': '1'}}", -1, true);
	EXPECT_ERRORS(&x, "id", "required");
	run_done(&x);

	/* Over HTTP an id is an unknown field like any other. */
	run(&x, "{'id': 'c1', 'task': {'type': 'execute', 'code': '1'}}", -1, false);
	EXPECT_ERRORS(&x, "id", "unknown field");
	run_done(&x);
}

Test(proto_task, websocket_id_has_a_length_cap)
{
	struct proto_task_limits lim = dflt;
	struct run x;

	lim.max_id = 4;
	run_json(&x, load("{'id': 'abcd', 'task': {'type': 'execute', 'code': '1'}}"), -1, true,
	         &lim);
	expect_ok(&x);
	run_done(&x);
	run_json(&x, load("{'id': 'abcde', 'task': {'type': 'execute', 'code': '1'}}"), -1, true,
	         &lim);
	EXPECT_ERRORS(&x, "id", "longer than the limit of 4 bytes");
	run_done(&x);
	run_json(&x, load("{'assigned_by': 'abcde', 'task': {'type': 'execute', 'code': '1'}}"), -1,
	         false, &lim);
	EXPECT_ERRORS(&x, "assigned_by", "longer than the limit of 4 bytes");
	run_done(&x);
	run_json(&x, load("{'task': {'type': 'interactive', 'code': '1', 'session_id': 'abcde'}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.session_id", "longer than the limit of 4 bytes");
	run_done(&x);
}

Test(proto_task, cancel_is_refused_here)
{
	struct run x;

	run(&x, "{'id': 'c1', 'cancel': true, 'task': {'type': 'execute', 'code': '1'}}", -1, true);
	EXPECT_ERRORS(&x, "cancel", "cancel frames carry no task");
	run_done(&x);
	run(&x, "{'id': 'c1', 'cancel': true}", -1, true);
	EXPECT_ERRORS(&x, "cancel", "cancel frames carry no task", "task", "required");
	run_done(&x);
	run(&x, "{'cancel': true, 'task': {'type': 'execute', 'code': '1'}}", -1, false);
	EXPECT_ERRORS(&x, "cancel", "unknown field");
	run_done(&x);
}

Test(proto_task, refuses_nul_characters)
{
	expect_one_error("{'task': {'type': 'execute', 'code': 'a\\u0000b'}}", -1, "task.code",
	                 "contains a NUL character");
	expect_one_error("{'task': {'type': 'execute_file', 'file_path': 'a\\u0000b'}}", -1,
	                 "task.file_path", "contains a NUL character");
	expect_one_error("{'task': {'type': 'execute_file', 'file_path': 'a', "
	                 "'arguments': ['\\u0000']}}",
	                 -1, "task.arguments[0]", "contains a NUL character");
	expect_one_error("{'task': {'type': 'execute_file', 'file_path': 'a', "
	                 "'environment_vars': {'A': 'x\\u0000'}}}",
	                 -1, "task.environment_vars.A", "contains a NUL character");
	expect_one_error("{'task': {'type': 'execute', 'code': '1', 'working_directory': "
	                 "'/tmp\\u0000x'}}",
	                 -1, "task.working_directory", "contains a NUL character");
	expect_one_error("{'task': {'type': 'batch', 'items': ['\\u0000']}}", -1, "task.items[0]",
	                 "contains a NUL character");
	expect_one_error("{'task': {'type': 'execute\\u0000', 'code': '1'}}", -1, "task.type",
	                 "unknown task type 'execute' (expected one of execute, execute_file, "
	                 "interactive, validate, batch)");
}

Test(proto_task, relative_paths)
{
	static const char *const ok[] = {"a", "a.py", "a/b", "a/b/c.py", "...", ".a", "a..b", "é"};
	static const char *const bad[] = {"",     "/etc/passwd", "../x", "a/../b", "a/./b",
	                                  "a//b", ".",           "..",   "x\\y",   "a/",
	                                  "./a",  "a/..",        "/",    "//a"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect(proto_task_relative_path_ok(ok[i]), "%s", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(proto_task_relative_path_ok(bad[i]), "%s", bad[i]);
	cr_expect_not(proto_task_relative_path_ok(NULL));
}

Test(proto_task, file_path_problems_say_what_is_wrong)
{
	static const struct {
		const char *path, *message;
	} cases[] = {
	        {"", "must not be empty"},
	        {"/etc/passwd", "absolute paths are not allowed"},
	        {"../x", "'..' is not allowed"},
	        {"a/../b", "'..' is not allowed"},
	        {"a/./b", "'.' components are not allowed"},
	        {".", "'.' components are not allowed"},
	        {"a//b", "empty components ('//' or a trailing '/') are not allowed"},
	        {"a/", "empty components ('//' or a trailing '/') are not allowed"},
	        {"x\\y", "backslashes are not allowed"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run x;
		/* Built with json_pack: the messages hold quotes of their own. */
		json_t *root = json_pack("{s:{s:s, s:s}}", "task", "type", "execute_file",
		                         "file_path", cases[i].path);

		cr_assert(root);
		run_json(&x, root, -1, false, NULL);
		EXPECT_ERRORS(&x, "task.file_path", cases[i].message);
		run_done(&x);
	}
}

Test(proto_task, environment_names)
{
	static const char *const ok[] = {"FOO_BAR", "PATH",       "HOME",  "_x", "a1",    "LANG",
	                                 "TMPDIR",  "ld_preload", "PYTHO", "LD", "MALLOC"};
	static const char *const refused[] = {"PYTHONPATH",
	                                      "PYTHONHOME",
	                                      "PYTHONSTARTUP",
	                                      "_PYTHON_SYSCONFIGDATA_NAME",
	                                      "LD_PRELOAD",
	                                      "LD_LIBRARY_PATH",
	                                      "LD_AUDIT",
	                                      "GLIBC_TUNABLES",
	                                      "MALLOC_ARENA_MAX",
	                                      "MALLOC_CHECK_",
	                                      "GCONV_PATH",
	                                      "LOCPATH",
	                                      "NLSPATH",
	                                      "HOSTALIASES",
	                                      "RES_OPTIONS",
	                                      "LOCALDOMAIN",
	                                      "TZDIR",
	                                      "SANDCELL_TOKEN",
	                                      "JPY_SESSION_NAME",
	                                      "OPENSSL_CONF"};
	static const char *const invalid[] = {"", "1A", "A-B", "A B", "A=B", "é", "A.B"};
	char long_name[130];
	const char *why;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = "unset";
		cr_expect(proto_task_env_name_ok(ok[i], &why), "%s", ok[i]);
		cr_expect_null(why, "%s", ok[i]);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		why = NULL;
		cr_expect_not(proto_task_env_name_ok(refused[i], &why), "%s", refused[i]);
		cr_expect(why && !strncmp(why, "name refused: ", 14), "%s", refused[i]);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		why = NULL;
		cr_expect_not(proto_task_env_name_ok(invalid[i], &why), "%s", invalid[i]);
		cr_expect(why && !strcmp(why, "not a valid identifier"), "%s", invalid[i]);
	}
	cr_expect_not(proto_task_env_name_ok(NULL, NULL));
	cr_expect_not(proto_task_env_name_ok("PYTHONPATH", NULL));

	memset(long_name, 'A', sizeof(long_name));
	long_name[128] = '\0';
	cr_expect(proto_task_env_name_ok(long_name, NULL));
	long_name[128] = 'A';
	long_name[129] = '\0';
	cr_expect_not(proto_task_env_name_ok(long_name, &why));
	cr_expect_str_eq(why, "longer than the limit of 128 bytes");
}

Test(proto_task, environment_names_are_checked_in_tasks)
{
	struct run x;

	run(&x,
	    "{'task': {'type': 'execute_file', 'file_path': 'a.py', 'environment_vars': "
	    "{'PYTHONPATH': '/x', 'FOO_BAR': '1', 'PATH': '/bin', 'GLIBC_TUNABLES': 'x', "
	    "'MALLOC_ARENA_MAX': '1', '1A': '', 'A-B': ''}}}",
	    -1, false);
	EXPECT_ERRORS(&x, "task.environment_vars.PYTHONPATH",
	              "name refused: it changes how the interpreter or loader behaves",
	              "task.environment_vars.GLIBC_TUNABLES",
	              "name refused: it changes how the interpreter or loader behaves",
	              "task.environment_vars.MALLOC_ARENA_MAX",
	              "name refused: it changes how the interpreter or loader behaves",
	              "task.environment_vars.1A", "not a valid identifier",
	              "task.environment_vars.A-B", "not a valid identifier");
	run_done(&x);
}

/* A task of type with field set to n copies of item (a JSON value), built with jansson. */
static json_t *task_with_array(const char *type, const char *field, size_t n, json_t *item)
{
	json_t *arr = json_array(), *task;

	cr_assert(arr);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(json_array_append(arr, item), 0);
	json_decref(item);
	task = json_pack("{s:s, s:o}", "type", type, field, arr);
	cr_assert(task);
	if (!strcmp(type, "execute_file"))
		json_object_set_new(task, "file_path", json_string("a.py"));
	else if (strcmp(type, "batch"))
		json_object_set_new(task, "code", json_string("1"));
	return json_pack("{s:o}", "task", task);
}

static void expect_array_cap(const char *type, const char *field, size_t cap, json_t *item,
                             const char *message)
{
	struct run x;

	run_json(&x, task_with_array(type, field, cap, json_incref(item)), -1, false, NULL);
	expect_ok(&x);
	run_done(&x);
	run_json(&x, task_with_array(type, field, cap + 1, item), -1, false, NULL);
	{
		char path[64];

		snprintf(path, sizeof(path), "task.%s", field);
		EXPECT_ERRORS(&x, path, message);
	}
	run_done(&x);
}

Test(proto_task, array_caps)
{
	expect_array_cap("execute", "allowed_imports", dflt.max_names, json_string("os"),
	                 "more than the limit of 256 entries");
	expect_array_cap("interactive", "return_variables", dflt.max_names, json_string("x"),
	                 "more than the limit of 256 entries");
	expect_array_cap("execute_file", "arguments", dflt.max_args, json_string("-v"),
	                 "more than the limit of 256 entries");
	expect_array_cap("batch", "items", dflt.max_items, json_string("1"),
	                 "more than the limit of 64 items");
}

Test(proto_task, code_cap_is_exact)
{
	struct proto_task_limits lim = dflt;
	struct run x;

	lim.max_code = 4;
	run_json(&x, load("{'task': {'type': 'execute', 'code': 'abcd'}}"), -1, false, &lim);
	expect_ok(&x);
	run_done(&x);
	run_json(&x, load("{'task': {'type': 'execute', 'code': 'abcde'}}"), -1, false, &lim);
	EXPECT_ERRORS(&x, "task.code", "longer than the limit of 4 bytes");
	run_done(&x);
	run_json(&x,
	         load("{'task': {'type': 'batch', 'items': ['abcd', {'code': 'abcde'}, "
	              "'12345']}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.items[1].code", "longer than the limit of 4 bytes", "task.items[2]",
	              "longer than the limit of 4 bytes");
	run_done(&x);
}

Test(proto_task, default_code_cap_is_one_mebibyte)
{
	char *code = malloc((1u << 20) + 2);
	struct run x;

	cr_assert(code);
	memset(code, '#', (1u << 20) + 1);
	code[1u << 20] = '\0';
	run_json(&x, json_pack("{s:{s:s, s:s}}", "task", "type", "execute", "code", code), -1,
	         false, NULL);
	expect_ok(&x);
	cr_expect_eq(x.t.code_len, 1u << 20);
	run_done(&x);
	code[1u << 20] = '#';
	code[(1u << 20) + 1] = '\0';
	run_json(&x, json_pack("{s:{s:s, s:s}}", "task", "type", "execute", "code", code), -1,
	         false, NULL);
	EXPECT_ERRORS(&x, "task.code", "longer than the limit of 1048576 bytes");
	run_done(&x);
	free(code);
}

Test(proto_task, arguments_size_cap_counts_all_arguments)
{
	struct proto_task_limits lim = dflt;
	struct run x;

	lim.max_args_size = 6;
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a', "
	              "'arguments': ['abc', 'def']}}"),
	         -1, false, &lim);
	expect_ok(&x);
	run_done(&x);
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a', "
	              "'arguments': ['abc', 'defg']}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.arguments", "longer than the limit of 6 bytes in all");
	run_done(&x);
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a', "
	              "'arguments': ['abcdefg']}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.arguments[0]", "longer than the limit of 6 bytes");
	run_done(&x);
}

Test(proto_task, environment_caps)
{
	struct proto_task_limits lim = dflt;
	struct run x;

	lim.max_env = 2;
	lim.max_env_value = 3;
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a', "
	              "'environment_vars': {'A': 'abc', 'B': ''}}}"),
	         -1, false, &lim);
	expect_ok(&x);
	run_done(&x);
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a', "
	              "'environment_vars': {'A': 'abcd', 'B': '', 'C': ''}}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.environment_vars", "more than the limit of 2 entries",
	              "task.environment_vars.A", "longer than the limit of 3 bytes");
	run_done(&x);
}

Test(proto_task, path_caps)
{
	struct proto_task_limits lim = dflt;
	struct run x;

	lim.max_path = 5;
	run_json(&x,
	         load("{'task': {'type': 'execute_file', 'file_path': 'a/b.c', "
	              "'working_directory': '/tmp/x'}}"),
	         -1, false, &lim);
	EXPECT_ERRORS(&x, "task.working_directory", "longer than the limit of 5 bytes");
	run_done(&x);
	run_json(&x, load("{'task': {'type': 'execute_file', 'file_path': 'a/b.py'}}"), -1, false,
	         &lim);
	EXPECT_ERRORS(&x, "task.file_path", "longer than the limit of 5 bytes");
	run_done(&x);
}

Test(proto_task, batch_items_take_one_form)
{
	expect_one_error("{'task': {'type': 'batch', 'items': [{'code': '1', 'file_path': 'a'}]}}",
	                 -1, "task.items[0]", "holds both code and file_path");
	expect_one_error("{'task': {'type': 'batch', 'items': [{'arguments': []}]}}", -1,
	                 "task.items[0]", "needs code or file_path");
	expect_one_error("{'task': {'type': 'batch', 'items': [{'code': '1', "
	                 "'environment_vars': {}}]}}",
	                 -1, "task.items[0].environment_vars", "only allowed with file_path");
	expect_one_error("{'task': {'type': 'batch', 'items': [null]}}", -1, "task.items[0]",
	                 "must be a code string or an object");
	expect_one_error("{'task': {'type': 'batch', 'items': [{'file_path': '/etc/passwd'}]}}", -1,
	                 "task.items[0].file_path", "absolute paths are not allowed");
	expect_one_error("{'task': {'type': 'batch', 'items': ['1', {'file_path': 'a', "
	                 "'environment_vars': {'LD_PRELOAD': 'x'}}]}}",
	                 -1, "task.items[1].environment_vars.LD_PRELOAD",
	                 "name refused: it changes how the interpreter or loader behaves");
}

Test(proto_task, long_keys_are_cut_in_field_paths)
{
	char key[200];
	json_t *root;
	struct run x;
	const char *field;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	root = json_pack("{s:{s:s, s:s, s:i}}", "task", "type", "execute", "code", "1", key, 1);
	cr_assert(root);
	run_json(&x, root, -1, false, NULL);
	cr_assert_eq(x.r, -EINVAL);
	field = json_string_value(json_object_get(json_array_get(x.errors, 0), "field"));
	cr_assert(field);
	cr_expect_eq(strlen(field), strlen("task.") + 64 + strlen("…"), "%s", field);
	run_done(&x);
}

Test(proto_task, the_error_list_has_a_cap)
{
	json_t *task = json_pack("{s:s, s:s}", "type", "execute", "code", "1");
	struct run x;
	const json_t *last;

	cr_assert(task);
	for (int i = 0; i < 100; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_new(task, key, json_true());
	}
	run_json(&x, json_pack("{s:o}", "task", task), -1, false, NULL);
	cr_expect_eq(x.r, -EINVAL);
	cr_assert_eq(json_array_size(x.errors), PROTO_TASK_MAX_ERRORS + 1);
	last = json_array_get(x.errors, PROTO_TASK_MAX_ERRORS);
	cr_expect_str_eq(json_string_value(json_object_get(last, "field")), "");
	cr_expect_str_eq(json_string_value(json_object_get(last, "message")),
	                 "more problems not listed");
	run_done(&x);
}

Test(proto_task, errors_may_be_null)
{
	json_t *root = load("{'task': {'type': 'execute'}}");
	struct proto_task t;

	cr_expect_eq(proto_task_parse(root, -1, false, &dflt, &t, NULL), -EINVAL);
	json_decref(root);
}

Test(proto_task, clear_is_safe_twice_and_on_a_zeroed_struct)
{
	struct proto_task t = {0};
	json_t *root = load("{'task': {'type': 'batch', 'items': ['1', '2']}}");

	proto_task_clear(&t);
	proto_task_clear(NULL);
	cr_assert_eq(proto_task_parse(root, -1, false, &dflt, &t, NULL), 0);
	cr_expect_not_null(t.items);
	proto_task_clear(&t);
	cr_expect_null(t.items);
	cr_expect_eq(t.n_items, 0);
	proto_task_clear(&t);
	json_decref(root);
}

/* Parses text again and again, failing the n-th allocation, until nothing fails. */
static void survive_allocation_failures(const char *text, int want)
{
	json_t *root, *errors;
	struct proto_task t;
	unsigned long nth;
	long live;

	test_alloc_install();
	root = load(text);
	errors = json_array();
	cr_assert(errors);
	live = test_alloc_live();
	for (nth = 1;; nth++) {
		bool failed;
		int r;

		test_alloc_fail_at(nth, false);
		r = proto_task_parse(root, -1, true, &dflt, &t, errors);
		failed = test_alloc_stop();
		if (!failed) {
			cr_expect_eq(r, want, "allocation %lu", nth);
			proto_task_clear(&t);
			break;
		}
		cr_expect(r == -ENOMEM, "allocation %lu, got %d", nth, r);
		cr_expect_null(t.items);
		json_array_clear(errors);
		cr_expect_eq(test_alloc_live(), live, "leak after allocation %lu", nth);
	}
	cr_expect_gt(nth, 1);
	json_decref(errors);
	json_decref(root);
	cr_expect_eq(test_alloc_live(), 0);
}

Test(proto_task, valid_batch_survives_every_allocation_failure)
{
	survive_allocation_failures("{'id': 1, 'task': {'type': 'batch', 'items': ['1', "
	                            "{'file_path': 'a'}]}}",
	                            0);
}

Test(proto_task, invalid_task_survives_every_allocation_failure)
{
	survive_allocation_failures("{'id': 1, 'x': 1, 'task': {'type': 'batch', 'items': [1, "
	                            "{'file_path': '..'}], 'y': 2, 'timeout': 0}}",
	                            -EINVAL);
}

/* An optional field given as null counts as not given; a required one as missing. */
Test(proto_task, null_means_not_given)
{
	struct proto_task t;
	json_t *errors = json_array();
	json_t *env = json_loads("{\"task\": {\"type\": \"execute\", \"code\": \"1\", "
	                         "\"timeout\": null, \"security_level\": null}}",
	                         0, NULL);
	struct proto_task_limits lim = PROTO_TASK_LIMITS_DEFAULT;

	cr_assert_eq(proto_task_parse(env, -1, false, &lim, &t, errors), 0);
	cr_expect_eq(t.timeout, 0);
	cr_expect_null(t.security_level);
	proto_task_clear(&t);
	json_decref(env);
	env = json_loads("{\"task\": {\"type\": \"execute\", \"code\": null}}", 0, NULL);
	cr_expect_eq(proto_task_parse(env, -1, false, &lim, &t, errors), -EINVAL);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
	                 "task.code");
	json_decref(env);
	json_decref(errors);
}

/* A relative working directory stays below /workspace. */
Test(proto_task, relative_working_directory_cannot_climb)
{
	struct proto_task t;
	struct proto_task_limits lim = PROTO_TASK_LIMITS_DEFAULT;
	static const char *const bad[] = {"..", "../etc", "a/../../tmp", "a/.."};
	static const char *const good[] = {"a", "a/b", "/tmp", "/workspace/../tmp", "a..b"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *errors = json_array();
		json_t *env = json_pack("{s:{s:s, s:s, s:s}}", "task", "type", "execute", "code",
		                        "1", "working_directory", bad[i]);

		cr_expect_eq(proto_task_parse(env, -1, false, &lim, &t, errors), -EINVAL, "%s",
		             bad[i]);
		cr_expect_str_eq(
		        json_string_value(json_object_get(json_array_get(errors, 0), "field")),
		        "task.working_directory");
		json_decref(env);
		json_decref(errors);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *errors = json_array();
		json_t *env = json_pack("{s:{s:s, s:s, s:s}}", "task", "type", "execute", "code",
		                        "1", "working_directory", good[i]);

		cr_expect_eq(proto_task_parse(env, -1, false, &lim, &t, errors), 0, "%s", good[i]);
		proto_task_clear(&t);
		json_decref(env);
		json_decref(errors);
	}
}
