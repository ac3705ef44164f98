/*
 * proto_util: error details and the ownership macros every module relies on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto_util.h"
#include "testdata.h"

TestSuite(proto_util, .fini = test_check_leaks);

Test(proto_util, error_set_formats_text_and_returns_negative_errno)
{
	struct proto_error err = {0};

	cr_expect_eq(proto_error_set(&err, EBADMSG, "frame %d of %s", 3, "msg"), -EBADMSG);
	cr_expect_str_eq(err.text, "frame 3 of msg");
}

Test(proto_util, error_set_accepts_a_null_error)
{
	cr_expect_eq(proto_error_set(NULL, EMSGSIZE, "ignored %s", "x"), -EMSGSIZE);
}

Test(proto_util, error_set_truncates_long_text_with_a_nul)
{
	struct proto_error err;
	char big[400];

	memset(&err, 'x', sizeof(err));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	proto_error_set(&err, EACCES, "%s", big);
	cr_expect_eq(strlen(err.text), sizeof(err.text) - 1);
}

Test(proto_util, take_ptr_moves_ownership_out_of_a_cleanup_variable)
{
	char *kept;

	{
		_cleanup_(proto_freep) char *p = strdup("owned");

		cr_assert(p);
		kept = TAKE_PTR(p);
		cr_expect_null(p, "TAKE_PTR leaves NULL behind");
	}
	cr_expect_str_eq(kept, "owned", "the cleanup did not free the taken pointer");
	free(kept);
}

Test(proto_util, freep_frees_at_scope_exit_and_accepts_null)
{
	_cleanup_(proto_freep) char *p = strdup("freed by cleanup");
	_cleanup_(proto_freep) char *q = NULL;

	cr_assert(p);
	cr_expect_null(q);
}
