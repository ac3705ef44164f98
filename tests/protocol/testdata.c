/*
 * Case loading and the failing allocator for the protocol tests (see testdata.h). Test-only
 * code: it may abort on impossible conditions instead of unwinding.
 */
#include "testdata.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_HAVE_LSAN 1
#endif
#endif

#ifdef TEST_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

void test_check_leaks(void)
{
#ifdef TEST_HAVE_LSAN
	if (__lsan_do_recoverable_leak_check()) {
		fprintf(stderr, "LeakSanitizer found a leak in this test (report above)\n");
		abort();
	}
#endif
}

const char *test_data_dir(void)
{
	const char *d = getenv("PROTO_DATA");

	cr_assert(d && *d, "PROTO_DATA must name tests/protocol/data");
	return d;
}

int test_read_file(const char *path, struct proto_buf *out)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, len = 0;
	unsigned char *buf;

	out->data = NULL;
	out->len = 0;
	if (!f)
		return -errno;
	buf = malloc(cap);
	cr_assert(buf);
	for (;;) {
		size_t got = fread(buf + len, 1, cap - len - 1, f);

		len += got;
		if (len + 1 < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
		cr_assert(buf);
	}
	fclose(f);
	buf[len] = '\0';
	out->data = buf;
	out->len = len;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct test_case *)a)->name, ((const struct test_case *)b)->name);
}

/* Applies the "name value" lines of a limits file over the defaults. */
static void load_limits(const char *dir, struct proto_limits *lim)
{
	char path[600], name[64];
	unsigned long long value;
	FILE *f;

	*lim = (struct proto_limits)PROTO_LIMITS_DEFAULT;
	snprintf(path, sizeof(path), "%s/limits", dir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		if (!strcmp(name, "max_frames"))
			lim->max_frames = value;
		else if (!strcmp(name, "max_idents"))
			lim->max_idents = value;
		else if (!strcmp(name, "max_ident_len"))
			lim->max_ident_len = value;
		else if (!strcmp(name, "max_json_frame"))
			lim->max_json_frame = value;
		else if (!strcmp(name, "max_buffer"))
			lim->max_buffer = value;
		else if (!strcmp(name, "max_total"))
			lim->max_total = value;
		else
			cr_assert_fail("%s: unknown limit %s", dir, name);
	}
	fclose(f);
}

/* Loads frame-00, frame-01, ... until one is missing. */
static void load_frames(struct test_case *c)
{
	for (;;) {
		char path[600];
		struct proto_buf b;

		snprintf(path, sizeof(path), "%s/frame-%02zu", c->dir, c->n_frames);
		if (test_read_file(path, &b) < 0)
			return;
		c->frames = realloc(c->frames, (c->n_frames + 1) * sizeof(*c->frames));
		cr_assert(c->frames);
		c->frames[c->n_frames++] = b;
	}
}

static void load_dir(const char *kind, bool valid, struct test_case **v, size_t *n)
{
	char top[512];
	struct dirent *e;
	DIR *d;

	snprintf(top, sizeof(top), "%s/%s", test_data_dir(), valid ? "valid" : "invalid");
	d = opendir(top);
	cr_assert(d, "cannot open %s", top);
	while ((e = readdir(d))) {
		struct test_case *c;
		struct proto_buf b;
		char path[700];
		char *kind_value;

		if (e->d_name[0] == '.')
			continue;
		*v = realloc(*v, (*n + 1) * sizeof(**v));
		cr_assert(*v);
		c = &(*v)[*n];
		memset(c, 0, sizeof(*c));
		cr_assert_lt(snprintf(c->name, sizeof(c->name), "%s", e->d_name),
		             (int)sizeof(c->name));
		cr_assert_lt(snprintf(c->dir, sizeof(c->dir), "%s/%s", top, e->d_name),
		             (int)sizeof(c->dir));
		c->valid = valid;
		snprintf(path, sizeof(path), "%s/expect", c->dir);
		cr_assert(test_read_file(path, &b) == 0, "%s has no expect file", c->dir);
		c->expect = (char *)b.data;
		kind_value = test_expect(c, "kind");
		cr_assert(kind_value, "%s: expect has no kind", c->name);
		if (strcmp(kind_value, kind) != 0) {
			free(kind_value);
			free(c->expect);
			continue;
		}
		free(kind_value);
		snprintf(path, sizeof(path), "%s/key", c->dir);
		test_read_file(path, &c->key);
		load_limits(c->dir, &c->limits);
		load_frames(c);
		(*n)++;
	}
	closedir(d);
}

size_t test_cases_load(const char *kind, struct test_case **out)
{
	struct test_case *v = NULL;
	size_t n = 0;

	load_dir(kind, true, &v, &n);
	load_dir(kind, false, &v, &n);
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return n;
}

void test_cases_free(struct test_case *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].n_frames; j++)
			free(v[i].frames[j].data);
		free(v[i].frames);
		free(v[i].key.data);
		free(v[i].expect);
	}
	free(v);
}

char *test_expect(const struct test_case *c, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *line = c->expect; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t llen = end ? (size_t)(end - line) : strlen(line);

		if (llen > nlen && !strncmp(line, name, nlen) && line[nlen] == ' ')
			return strndup(line + nlen + 1, llen - nlen - 1);
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

int test_expect_result(const struct test_case *c)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {
	        {"0", 0},
	        {"EBADMSG", -EBADMSG},
	        {"EACCES", -EACCES},
	        {"EMSGSIZE", -EMSGSIZE},
	        {"ENOMEM", -ENOMEM},
	};
	char *r = test_expect(c, "result");
	int code = 1;

	cr_assert(r, "%s: expect has no result", c->name);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(r, codes[i].name))
			code = codes[i].code;
	cr_assert(code <= 0, "%s: unknown result %s", c->name, r);
	free(r);
	return code;
}

/* Allocator state; tests run in their own process, so plain statics are enough. */
static unsigned long alloc_countdown;
static bool alloc_sticky;
static long alloc_live;
static bool alloc_did_fail;

/* Each block carries a header so the counter can tell our blocks on free. */
static void *failing_malloc(size_t size)
{
	size_t *p;

	if ((alloc_did_fail && alloc_sticky) || (alloc_countdown && --alloc_countdown == 0)) {
		alloc_did_fail = true;
		return NULL;
	}
	p = malloc(size + sizeof(max_align_t));
	if (!p)
		return NULL;
	alloc_live++;
	return (char *)p + sizeof(max_align_t);
}

static void counting_free(void *p)
{
	if (!p)
		return;
	alloc_live--;
	free((char *)p - sizeof(max_align_t));
}

void test_alloc_install(void)
{
	json_set_alloc_funcs(failing_malloc, counting_free);
}

void test_alloc_fail_at(unsigned long n, bool sticky)
{
	alloc_countdown = n;
	alloc_sticky = sticky;
	alloc_did_fail = false;
}

long test_alloc_live(void)
{
	return alloc_live;
}

bool test_alloc_stop(void)
{
	bool failed = alloc_did_fail;

	alloc_countdown = 0;
	alloc_sticky = false;
	alloc_did_fail = false;
	return failed;
}

void *test_malloc(size_t size)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	return m(size);
}
