/*
 * Helpers shared by the protocol tests: read the data-driven cases under $PROTO_DATA
 * (tests/protocol/data/{valid,invalid}/<case>/) and fail-on-demand allocators for jansson.
 * Everything returned is owned by the caller and released with the matching *_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto_limits.h"
#include "proto_util.h"

/* One case directory: its frames (wire), key, limits and "name value" expectations. */
struct test_case {
	char name[128];
	char dir[512];
	bool valid;
	struct proto_buf *frames;
	size_t n_frames;
	struct proto_buf key; /* empty when the case has no key file */
	struct proto_limits limits;
	char *expect; /* whole expect file, NUL-terminated */
};

/*
 * Suite teardown for every test: under AddressSanitizer, runs LeakSanitizer now and aborts on
 * a leak. criterion ignores a worker's exit status (LSan's usual report at exit), but a crash
 * in teardown makes the test binary exit non-zero.
 */
void test_check_leaks(void);

/* The data directory from $PROTO_DATA; aborts the test when it is unset. */
const char *test_data_dir(void);

/* Reads a whole file into an owned buffer (NUL-terminated past len). Returns 0 or -errno. */
int test_read_file(const char *path, struct proto_buf *out);

/*
 * Loads every case of kind ("wire" or "conn") under valid/ and invalid/, sorted by name.
 * Returns the number of cases and stores an owned array in *out.
 */
size_t test_cases_load(const char *kind, struct test_case **out);
void test_cases_free(struct test_case *v, size_t n);

/* The value of `name` in the case's expect file (owned copy), or NULL. */
char *test_expect(const struct test_case *c, const char *name);

/* The errno named by the expect file's `result` ("0", "EBADMSG", ...), as a negative number. */
int test_expect_result(const struct test_case *c);

/*
 * Failing allocator for jansson (and so for libsandcell-protocol, which allocates through
 * jansson's hooks): after test_alloc_fail_at(n, sticky) the n-th allocation from now fails,
 * and with sticky every one after it too . test_alloc_live() counts blocks
 * allocated and not yet freed, to catch leaks even without LeakSanitizer. Install before the
 * test's first jansson allocation.
 */
void test_alloc_install(void);

/* Allocates with jansson's current allocator, as memory handed to a proto_msg must be. */
void *test_malloc(size_t size);
void test_alloc_fail_at(unsigned long n, bool sticky);

/* Stops injecting failures; returns whether any allocation failed since test_alloc_fail_at(). */
bool test_alloc_stop(void);
long test_alloc_live(void);
