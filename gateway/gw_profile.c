/*
 * Sandbox profiles (see gw_profile.h): one table of keys drives parsing, narrowing and the JSON
 * form, so the config file, a narrowing request and the API can never disagree about a name.
 * Nothing here logs; errors name the key in err.
 */
#include "gw_profile.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

static const char *const gw_profile_names[GW_PROFILE_COUNT] = {
        [GW_PROFILE_STRICT] = "strict",
        [GW_PROFILE_MODERATE] = "moderate",
        [GW_PROFILE_PERMISSIVE] = "permissive",
        [GW_PROFILE_CUSTOM] = "custom",
};

/* The built-in defaults (docs/configuration.md has the same table). */
static const struct gw_profile gw_profile_builtin[GW_PROFILE_COUNT] = {
        [GW_PROFILE_STRICT] = {.kind = GW_PROFILE_STRICT,
                               .memory = 100 * MIB,
                               .cpu_time = 30,
                               .wall_time = 30,
                               .processes = 1,
                               .threads = 8,
                               .open_files = 64,
                               .file_size = 16 * MIB,
                               .disk = 16 * MIB,
                               .output = 10 * MIB},
        [GW_PROFILE_MODERATE] = {.kind = GW_PROFILE_MODERATE,
                                 .memory = 512 * MIB,
                                 .cpu_time = 300,
                                 .wall_time = 300,
                                 .processes = 32,
                                 .threads = 32,
                                 .open_files = 256,
                                 .file_size = 128 * MIB,
                                 .disk = 256 * MIB,
                                 .output = 50 * MIB},
        [GW_PROFILE_PERMISSIVE] = {.kind = GW_PROFILE_PERMISSIVE,
                                   .memory = 2 * GIB,
                                   .cpu_time = 3600,
                                   .wall_time = 3600,
                                   .processes = 128,
                                   .threads = 128,
                                   .open_files = 1024,
                                   .file_size = 1 * GIB,
                                   .disk = 1 * GIB,
                                   .output = 100 * MIB},
};

const char *gw_profile_name(enum gw_profile_kind kind)
{
	return kind < GW_PROFILE_COUNT ? gw_profile_names[kind] : "?";
}

int gw_profile_kind_from_name(const char *name)
{
	for (int i = 0; i < GW_PROFILE_COUNT; i++)
		if (!strcmp(name, gw_profile_names[i]))
			return i;
	return -EINVAL;
}

void gw_profile_defaults(struct gw_profile *p, enum gw_profile_kind kind)
{
	*p = gw_profile_builtin[kind == GW_PROFILE_CUSTOM ? GW_PROFILE_MODERATE : kind];
	p->kind = kind;
}

/* ---- string lists (NULL-terminated, owned) ---- */

static size_t gw_list_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static void gw_list_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static bool gw_list_has(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* An empty list (non-NULL): how an empty allowlist differs from none. */
static char **gw_list_new(void)
{
	return calloc(1, sizeof(char *));
}

/* Appends a copy of s to *v (which may be NULL: created). Returns 0 or -ENOMEM. */
static int gw_list_push(char ***v, const char *s)
{
	size_t n = gw_list_len(*v);
	char **grown, *copy = strdup(s);

	if (!copy)
		return -ENOMEM;
	grown = realloc(*v, (n + 2) * sizeof(*grown));
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	grown[n] = copy;
	grown[n + 1] = NULL;
	*v = grown;
	return 0;
}

/* A deep copy of v into *out (NULL stays NULL). Returns 0 or -ENOMEM. */
static int gw_list_copy(char *const *v, char ***out)
{
	char **copy;

	*out = NULL;
	if (!v)
		return 0;
	copy = gw_list_new();
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; v[i]; i++) {
		if (gw_list_push(&copy, v[i]) < 0) {
			gw_list_free(copy);
			return -ENOMEM;
		}
	}
	*out = copy;
	return 0;
}

/* "a,b,c" (owned), or NULL when out of memory. */
static char *gw_list_join(char *const *v)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; v && v[i]; i++)
		len += strlen(v[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	*p = '\0';
	for (size_t i = 0; v && v[i]; i++) {
		size_t n = strlen(v[i]);

		if (i)
			*p++ = ',';
		memcpy(p, v[i], n);
		p += n;
		*p = '\0';
	}
	return s;
}

static json_t *gw_list_json(char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

void gw_profile_clear(struct gw_profile *p)
{
	if (!p)
		return;
	gw_list_free(p->read_only);
	gw_list_free(p->allow_import);
	gw_list_free(p->block_import);
	memset(p, 0, sizeof(*p));
}

int gw_profile_copy(struct gw_profile *dst, const struct gw_profile *src)
{
	struct gw_profile copy = *src;

	copy.read_only = copy.allow_import = copy.block_import = NULL;
	if (gw_list_copy(src->read_only, &copy.read_only) < 0 ||
	    gw_list_copy(src->allow_import, &copy.allow_import) < 0 ||
	    gw_list_copy(src->block_import, &copy.block_import) < 0) {
		gw_profile_clear(&copy);
		gw_profile_clear(dst);
		return -ENOMEM;
	}
	gw_profile_clear(dst);
	*dst = copy;
	return 0;
}

/* ---- formatting ---- */

void gw_profile_format_size(size_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KB", "MB", "GB", "TB"};
	unsigned long long b = bytes, unit = 1024, tenths;
	int u = -1;

	while (u < 3 && b >= unit) {
		u++;
		if (u < 3 && b >= unit * 1024)
			unit *= 1024;
		else
			break;
	}
	if (u < 0) {
		snprintf(buf, len, "%llu byte%s", b, b == 1 ? "" : "s");
		return;
	}
	/* One decimal, rounded to nearest; none when it is .0 */
	tenths = (b * 10 + unit / 2) / unit;
	if (tenths % 10 == 0)
		snprintf(buf, len, "%llu %s", tenths / 10, units[u]);
	else
		snprintf(buf, len, "%llu.%llu %s", tenths / 10, tenths % 10, units[u]);
}

void gw_profile_format_seconds(double seconds, char *buf, size_t len)
{
	snprintf(buf, len, "%.10g s", seconds);
}

/* ---- parsing ---- */

static bool gw_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char gw_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int gw_profile_parse_size(const char *s, size_t *out)
{
	static const char letters[] = "kmgt";
	unsigned long long whole = 0, frac = 0, frac_div = 1, mult = 1, total;
	const char *p = s;
	bool digits = false;

	for (; gw_is_digit(*p); p++, digits = true) {
		if (whole > GW_PROFILE_SIZE_MAX)
			return -EINVAL;
		whole = whole * 10 + (unsigned long long)(*p - '0');
	}
	if (*p == '.') {
		/* Digits past a millionth of a unit cannot change whole bytes below 1 TiB much. */
		for (p++; gw_is_digit(*p); p++, digits = true)
			if (frac_div < 1000000) {
				frac = frac * 10 + (unsigned long long)(*p - '0');
				frac_div *= 10;
			}
	}
	if (!digits)
		return -EINVAL;
	if (*p) {
		const char *l = strchr(letters, gw_lower(*p));

		if (!l || !*l)
			return -EINVAL;
		mult = 1ULL << (10 * (l - letters + 1));
		p++;
		/* "M", "MB" and "MiB" all mean 2^20: a limit is a memory size. */
		if (gw_lower(*p) == 'i' && gw_lower(p[1]) == 'b')
			p += 2;
		else if (gw_lower(*p) == 'b')
			p++;
		if (*p)
			return -EINVAL;
	}
	if (whole > GW_PROFILE_SIZE_MAX / mult)
		return -EINVAL;
	total = whole * mult + frac * mult / frac_div;
	if (total < 1 || total > GW_PROFILE_SIZE_MAX || total > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)total;
	return 0;
}

size_t gw__edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

enum gw_key_type {
	KEY_SIZE,    /* size_t: integer bytes or "100MB" */
	KEY_CPU,     /* unsigned: whole seconds */
	KEY_SECONDS, /* double: seconds above 0 */
	KEY_COUNT,   /* unsigned: 1..GW_PROFILE_COUNT_MAX */
	KEY_BOOL,    /* bool */
	KEY_PATHS,   /* char **: absolute paths */
	KEY_MODULES, /* char **: module names; allow_import also takes null */
};

struct gw_key {
	const char *name;
	enum gw_key_type type;
	size_t offset;
	bool nullable;
	bool limit; /* in "limits" (numbers); the others are listed beside it */
};

#define OFF(f) offsetof(struct gw_profile, f)

static const struct gw_key gw_keys[] = {
        {"memory", KEY_SIZE, OFF(memory), false, true},
        {"cpu_time", KEY_CPU, OFF(cpu_time), false, true},
        {"wall_time", KEY_SECONDS, OFF(wall_time), false, true},
        {"processes", KEY_COUNT, OFF(processes), false, true},
        {"threads", KEY_COUNT, OFF(threads), false, true},
        {"open_files", KEY_COUNT, OFF(open_files), false, true},
        {"file_size", KEY_SIZE, OFF(file_size), false, true},
        {"disk", KEY_SIZE, OFF(disk), false, true},
        {"output", KEY_SIZE, OFF(output), false, true},
        {"read_only", KEY_PATHS, OFF(read_only), false, false},
        {"network", KEY_BOOL, OFF(network), false, false},
        {"allow_import", KEY_MODULES, OFF(allow_import), true, false},
        {"block_import", KEY_MODULES, OFF(block_import), false, false},
};

#define N_KEYS (sizeof(gw_keys) / sizeof(gw_keys[0]))

static void *gw_key_field(const struct gw_profile *p, const struct gw_key *k)
{
	return (char *)(uintptr_t)p + k->offset;
}

/* err = `key "PREFIX.NAME": reason`; returns -code. */
static int gw_key_error(struct proto_error *err, int code, const char *prefix, const char *name,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int gw_key_error(struct proto_error *err, int code, const char *prefix, const char *name,
                        const char *fmt, ...)
{
	char reason[sizeof(err->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return proto_error_set(err, code, "key \"%s%s%.40s\": %s", prefix ? prefix : "",
	                       prefix && *prefix ? "." : "", name, reason);
}

/* A Python module name: dotted identifiers of ASCII letters, digits and '_'. */
static bool gw_module_ok(const char *s)
{
	size_t len = strlen(s);
	bool start = true;

	if (!len || len > GW_PROFILE_MODULE_MAX)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (c == '.') {
			if (start)
				return false;
			start = true;
			continue;
		}
		if (!alpha && !(gw_is_digit(c) && !start))
			return false;
		start = false;
	}
	return !start;
}

/* An absolute path without control characters or "." and ".." segments. */
static bool gw_path_ok(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > GW_PROFILE_PATH_MAX || s[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	for (const char *seg = s; *seg;) {
		size_t n = strcspn(seg, "/");

		if ((n == 1 && seg[0] == '.') || (n == 2 && !strncmp(seg, "..", 2)))
			return false;
		seg += n;
		seg += *seg == '/';
	}
	return true;
}

/* Parses a JSON array of strings checked by ok into an owned list. */
static int gw_parse_list(const json_t *v, bool (*ok)(const char *), const char *what,
                         const char *prefix, const char *name, char ***out, struct proto_error *err)
{
	char **list;
	const json_t *item;
	size_t i;

	if (!json_is_array(v))
		return gw_key_error(err, EINVAL, prefix, name, "expected an array of %ss", what);
	if (json_array_size(v) > GW_PROFILE_LIST_MAX)
		return gw_key_error(err, EINVAL, prefix, name, "more than %d items",
		                    GW_PROFILE_LIST_MAX);
	list = gw_list_new();
	if (!list)
		return proto_error_set(err, ENOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);

		if (!s || strlen(s) != json_string_length(item) || !ok(s)) {
			gw_list_free(list);
			return gw_key_error(err, EINVAL, prefix, name, "item %zu: expected %s %s",
			                    i, what[0] == 'a' ? "an" : "a", what);
		}
		if (gw_list_has(list, s))
			continue;
		if (gw_list_push(&list, s) < 0) {
			gw_list_free(list);
			return proto_error_set(err, ENOMEM, "out of memory");
		}
	}
	*out = list;
	return 0;
}

static int gw_apply_key(struct gw_profile *p, const struct gw_key *k, const json_t *v,
                        const char *prefix, struct proto_error *err)
{
	void *f = gw_key_field(p, k);
	char **list = NULL;
	int r;

	switch (k->type) {
	case KEY_SIZE: {
		size_t n;

		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    (unsigned long long)json_integer_value(v) <= GW_PROFILE_SIZE_MAX) {
			*(size_t *)f = (size_t)json_integer_value(v);
			return 0;
		}
		if (json_is_string(v) && gw_profile_parse_size(json_string_value(v), &n) == 0) {
			*(size_t *)f = n;
			return 0;
		}
		return gw_key_error(err, EINVAL, prefix, k->name,
		                    "expected a size 1..1T like \"100MB\", \"1.5GiB\" or 65536");
	}
	case KEY_CPU: {
		double d = json_number_value(v);

		if (json_is_number(v) && d >= 1 && d <= GW_PROFILE_SECONDS_MAX && d == floor(d)) {
			*(unsigned *)f = (unsigned)d;
			return 0;
		}
		return gw_key_error(err, EINVAL, prefix, k->name,
		                    "expected a whole number of seconds 1..1000000000");
	}
	case KEY_SECONDS: {
		double d = json_number_value(v);

		if (json_is_number(v) && d > 0 && d <= GW_PROFILE_SECONDS_MAX && isfinite(d)) {
			*(double *)f = d;
			return 0;
		}
		return gw_key_error(err, EINVAL, prefix, k->name,
		                    "expected seconds, a number above 0 and at most 1000000000");
	}
	case KEY_COUNT:
		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= GW_PROFILE_COUNT_MAX) {
			*(unsigned *)f = (unsigned)json_integer_value(v);
			return 0;
		}
		return gw_key_error(err, EINVAL, prefix, k->name, "expected an integer 1..%d",
		                    GW_PROFILE_COUNT_MAX);
	case KEY_BOOL:
		if (json_is_boolean(v)) {
			*(bool *)f = json_is_true(v);
			return 0;
		}
		return gw_key_error(err, EINVAL, prefix, k->name, "expected true or false");
	case KEY_PATHS:
	case KEY_MODULES:
		if (k->nullable && json_is_null(v)) {
			gw_list_free(*(char ***)f);
			*(char ***)f = NULL;
			return 0;
		}
		if (k->type == KEY_PATHS)
			r = gw_parse_list(v, gw_path_ok, "absolute path", prefix, k->name, &list,
			                  err);
		else
			r = gw_parse_list(v, gw_module_ok, "module name", prefix, k->name, &list,
			                  err);
		if (r < 0) {
			if (r == -EINVAL && k->nullable && !json_is_array(v))
				return gw_key_error(err, EINVAL, prefix, k->name,
				                    "expected null or an array of module names");
			return r;
		}
		gw_list_free(*(char ***)f);
		*(char ***)f = list;
		return 0;
	}
	return -EINVAL;
}

static const struct gw_key *gw_key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(gw_keys[i].name, name))
			return &gw_keys[i];
	return NULL;
}

int gw_profile_apply_json(struct gw_profile *p, const json_t *obj, const char *prefix,
                          struct proto_error *err)
{
	const char *name;
	json_t *v;

	if (!json_is_object(obj)) {
		if (prefix && *prefix)
			return proto_error_set(err, EINVAL, "key \"%s\": expected an object {...}",
			                       prefix);
		return proto_error_set(err, EINVAL, "expected an object {...}");
	}
	json_object_foreach((json_t *)(uintptr_t)obj, name, v) {
		const struct gw_key *k = gw_key_find(name);
		int r;

		if (!k) {
			const struct gw_key *guess = NULL;
			size_t best = 3;

			for (size_t i = 0; i < N_KEYS; i++) {
				size_t d = gw__edit_distance(name, gw_keys[i].name);

				if (d < best) {
					best = d;
					guess = &gw_keys[i];
				}
			}
			if (guess)
				return gw_key_error(err, EINVAL, prefix, name,
				                    "unknown key (did you mean \"%s\"?)",
				                    guess->name);
			return gw_key_error(err, EINVAL, prefix, name,
			                    "unknown key (see docs/configuration.md)");
		}
		r = gw_apply_key(p, k, v, prefix, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- narrowing ---- */

/* -EPERM with `key "NAME": VALUE is above the profile's BASE`. */
static int gw_narrow_refuse(const struct gw_key *k, const struct gw_profile *want,
                            const struct gw_profile *base, struct proto_error *err)
{
	char a[32], b[32];

	switch (k->type) {
	case KEY_SIZE:
		gw_profile_format_size(*(size_t *)gw_key_field(want, k), a, sizeof(a));
		gw_profile_format_size(*(size_t *)gw_key_field(base, k), b, sizeof(b));
		break;
	case KEY_CPU:
		gw_profile_format_seconds(*(unsigned *)gw_key_field(want, k), a, sizeof(a));
		gw_profile_format_seconds(*(unsigned *)gw_key_field(base, k), b, sizeof(b));
		break;
	case KEY_SECONDS:
		gw_profile_format_seconds(*(double *)gw_key_field(want, k), a, sizeof(a));
		gw_profile_format_seconds(*(double *)gw_key_field(base, k), b, sizeof(b));
		break;
	default:
		snprintf(a, sizeof(a), "%u", *(unsigned *)gw_key_field(want, k));
		snprintf(b, sizeof(b), "%u", *(unsigned *)gw_key_field(base, k));
		break;
	}
	return gw_key_error(err, EPERM, NULL, k->name,
	                    "%s is above the %s profile's limit of %s: a request may only lower "
	                    "limits",
	                    a, gw_profile_name(base->kind), b);
}

int gw_profile_narrow(const struct gw_profile *base, const json_t *request, struct gw_profile *out,
                      struct proto_error *err)
{
	struct gw_profile want = {0}, res = {0};
	int r;

	gw_profile_clear(out);
	r = gw_profile_copy(&want, base);
	if (r < 0)
		return proto_error_set(err, ENOMEM, "out of memory");
	if (request) {
		r = gw_profile_apply_json(&want, request, NULL, err);
		if (r < 0)
			goto out;
	}
	r = -ENOMEM;
	if (gw_profile_copy(&res, base) < 0)
		goto out_nomem;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct gw_key *k = &gw_keys[i];
		bool above = false;

		switch (k->type) {
		case KEY_SIZE:
			above = *(size_t *)gw_key_field(&want, k) >
			        *(size_t *)gw_key_field(base, k);
			*(size_t *)gw_key_field(&res, k) = *(size_t *)gw_key_field(&want, k);
			break;
		case KEY_CPU:
		case KEY_COUNT:
			above = *(unsigned *)gw_key_field(&want, k) >
			        *(unsigned *)gw_key_field(base, k);
			*(unsigned *)gw_key_field(&res, k) = *(unsigned *)gw_key_field(&want, k);
			break;
		case KEY_SECONDS:
			above = *(double *)gw_key_field(&want, k) >
			        *(double *)gw_key_field(base, k);
			*(double *)gw_key_field(&res, k) = *(double *)gw_key_field(&want, k);
			break;
		default:
			continue;
		}
		if (above) {
			r = gw_narrow_refuse(k, &want, base, err);
			goto out;
		}
	}
	if (want.network && !base->network) {
		r = proto_error_set(err, EPERM,
		                    "key \"network\": the %s profile has no network access to give",
		                    gw_profile_name(base->kind));
		goto out;
	}
	res.network = want.network;
	for (size_t i = 0; want.read_only && want.read_only[i]; i++) {
		if (!gw_list_has(base->read_only, want.read_only[i])) {
			r = proto_error_set(err, EPERM,
			                    "key \"read_only\": %.60s is not a read-only directory "
			                    "of the %s profile",
			                    want.read_only[i], gw_profile_name(base->kind));
			goto out;
		}
	}
	gw_list_free(res.read_only);
	res.read_only = NULL;
	if (gw_list_copy(want.read_only, &res.read_only) < 0)
		goto out_nomem;
	/* Allowlist: the request's, within base's when base has one (null keeps base's). */
	if (want.allow_import) {
		char **allow = gw_list_new();

		if (!allow)
			goto out_nomem;
		for (size_t i = 0; want.allow_import[i]; i++) {
			if (base->allow_import &&
			    !gw_list_has(base->allow_import, want.allow_import[i]))
				continue;
			if (gw_list_push(&allow, want.allow_import[i]) < 0) {
				gw_list_free(allow);
				goto out_nomem;
			}
		}
		gw_list_free(res.allow_import);
		res.allow_import = allow;
	}
	/* Blocklist: base's and the request's. */
	for (size_t i = 0; want.block_import && want.block_import[i]; i++)
		if (!gw_list_has(res.block_import, want.block_import[i]) &&
		    gw_list_push(&res.block_import, want.block_import[i]) < 0)
			goto out_nomem;
	*out = res;
	res = (struct gw_profile){0};
	r = 0;
	goto out;
out_nomem:
	r = proto_error_set(err, ENOMEM, "out of memory");
out:
	gw_profile_clear(&want);
	gw_profile_clear(&res);
	return r;
}

/* ---- the kernel's command line ---- */

void gw_profile_argv_free(char **argv)
{
	gw_list_free(argv);
}

static int gw_argv_add(char ***v, const char *opt, const char *value)
{
	if (opt && gw_list_push(v, opt) < 0)
		return -ENOMEM;
	return value ? gw_list_push(v, value) : 0;
}

static int gw_argv_num(char ***v, const char *opt, unsigned long long n)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", n);
	return gw_argv_add(v, opt, num);
}

char **gw_profile_argv(const struct gw_profile *p, const char *binary, const char *conn_path,
                       bool allow_weaker)
{
	char **v = gw_list_new(), *joined = NULL;
	int r;

	if (!v)
		return NULL;
	r = gw_argv_add(&v, binary, NULL);
	r = r ? r : gw_argv_add(&v, "-f", conn_path);
	r = r ? r : gw_argv_add(&v, "--profile", gw_profile_name(p->kind));
	r = r ? r : gw_argv_num(&v, "--memory", p->memory);
	r = r ? r : gw_argv_num(&v, "--cpu-time", p->cpu_time);
	r = r ? r : gw_argv_num(&v, "--processes", p->processes);
	r = r ? r : gw_argv_num(&v, "--threads", p->threads);
	r = r ? r : gw_argv_num(&v, "--open-files", p->open_files);
	r = r ? r : gw_argv_num(&v, "--file-size", p->file_size);
	r = r ? r : gw_argv_num(&v, "--disk", p->disk);
	for (size_t i = 0; !r && p->read_only && p->read_only[i]; i++)
		r = gw_argv_add(&v, "--read-only", p->read_only[i]);
	if (!r && p->network)
		r = gw_argv_add(&v, "--network", NULL);
	if (!r && p->allow_import) {
		joined = gw_list_join(p->allow_import);
		r = joined ? gw_argv_add(&v, "--allow-import", joined) : -ENOMEM;
		free(joined);
	}
	if (!r && gw_list_len(p->block_import)) {
		joined = gw_list_join(p->block_import);
		r = joined ? gw_argv_add(&v, "--block-import", joined) : -ENOMEM;
		free(joined);
	}
	if (!r && allow_weaker)
		r = gw_argv_add(&v, "--allow-weaker-sandbox", NULL);
	if (r < 0) {
		gw_list_free(v);
		return NULL;
	}
	return v;
}

int gw_profile_command(const struct gw_profile *base, const json_t *narrow, const char *binary,
                       const char *conn_path, bool allow_weaker, struct gw_profile *effective,
                       char ***argv, struct proto_error *err)
{
	int r = gw_profile_narrow(base, narrow, effective, err);

	*argv = NULL;
	if (r < 0)
		return r;
	*argv = gw_profile_argv(effective, binary, conn_path, allow_weaker);
	if (!*argv) {
		gw_profile_clear(effective);
		return proto_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- JSON ---- */

/* A number of seconds as an integer when whole (30, not 30.0). */
static json_t *gw_seconds_json(double s)
{
	if (s == floor(s) && s <= GW_PROFILE_SECONDS_MAX)
		return json_integer((json_int_t)s);
	return json_real(s);
}

json_t *gw_profile_limits_json(const struct gw_profile *p)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < N_KEYS; i++) {
		const struct gw_key *k = &gw_keys[i];
		json_t *v = NULL;

		switch (k->type) {
		case KEY_SIZE:
			v = json_integer((json_int_t) * (size_t *)gw_key_field(p, k));
			break;
		case KEY_CPU:
		case KEY_COUNT:
			v = json_integer(*(unsigned *)gw_key_field(p, k));
			break;
		case KEY_SECONDS:
			v = gw_seconds_json(*(double *)gw_key_field(p, k));
			break;
		default:
			continue;
		}
		if (json_object_set_new(o, k->name, v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *gw_profile_json(const struct gw_profile *p)
{
	json_t *allow = p->allow_import ? gw_list_json(p->allow_import) : json_null();

	return json_pack("{s:s, s:o, s:b, s:o, s:o, s:o}", "profile", gw_profile_name(p->kind),
	                 "limits", gw_profile_limits_json(p), "network", p->network, "read_only",
	                 gw_list_json(p->read_only), "allow_import", allow, "block_import",
	                 gw_list_json(p->block_import));
}
