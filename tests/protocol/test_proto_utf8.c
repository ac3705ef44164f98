/*
 * proto_utf8: which bytes of a chunk may be published, and how invalid bytes are replaced.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "proto_utf8.h"
#include "testdata.h"

TestSuite(proto_utf8, .fini = test_check_leaks);

struct prefix_case {
	const char *in;
	size_t keep;
};

static const struct prefix_case prefix_cases[] = {
        {"", 0},
        {"abc", 3},
        {"caf\xC3\xA9", 5},      /* complete two-byte character */
        {"caf\xC3", 3},          /* lead byte of two: held back */
        {"\xE2\x82", 0},         /* two of three bytes of the euro sign */
        {"x\xE2\x82\xAC", 4},    /* the whole euro sign */
        {"\xF0\x9F\x98", 0},     /* three of four bytes of an emoji */
        {"\xF0\x9F\x98\x80", 4}, /* the whole emoji */
        {"a\x80", 2},            /* stray continuation byte: published, replaced later */
        {"\x80\x80\x80\x80", 4}, /* four continuation bytes: nothing to wait for */
        {"ab\xFF", 3},           /* an invalid byte is not a lead byte */
};

Test(proto_utf8, holds_back_only_a_cut_character)
{
	for (size_t i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
		const struct prefix_case *c = &prefix_cases[i];

		cr_expect_eq(
		        proto_utf8_complete_prefix((const unsigned char *)c->in, strlen(c->in)),
		        c->keep, "case %zu", i);
	}
}

struct sanitize_case {
	const char *in;
	const char *out;
};

static const struct sanitize_case sanitize_cases[] = {
        {"plain", "plain"},
        {"caf\xC3\xA9", "caf\xC3\xA9"},
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"a\xC3", "a\xEF\xBF\xBD"},                               /* truncated at the end */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong slash */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a UTF-16 surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"\xE2\x28\xA1", "\xEF\xBF\xBD(\xEF\xBF\xBD"}, /* bad continuation */
};

Test(proto_utf8, replaces_each_invalid_byte)
{
	char out[64];

	for (size_t i = 0; i < sizeof(sanitize_cases) / sizeof(sanitize_cases[0]); i++) {
		const struct sanitize_case *c = &sanitize_cases[i];
		size_t n = proto_utf8_sanitize((const unsigned char *)c->in, strlen(c->in), out);

		cr_expect_eq(n, strlen(c->out), "case %zu", i);
		cr_expect_str_eq(out, c->out, "case %zu", i);
		cr_expect(proto_utf8_is_valid((const unsigned char *)out, n), "case %zu", i);
		cr_expect_eq(proto_utf8_is_valid((const unsigned char *)c->in, strlen(c->in)),
		             strcmp(c->in, c->out) == 0, "case %zu", i);
	}
}

Test(proto_utf8, keeps_nul_bytes)
{
	char out[16];
	size_t n = proto_utf8_sanitize((const unsigned char *)"a\0b", 3, out);

	cr_expect_eq(n, 3);
	cr_expect_eq(memcmp(out, "a\0b", 3), 0);
}

Test(proto_utf8, validity_does_not_depend_on_where_text_starts)
{
	/* Long ASCII runs are checked a word at a time: put each kind of sequence at every
	 * offset of a word, with ASCII before and after. */
	static const char *const seqs[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
	                                   "\xC3",     "\xE2\x82",     "\x80",
	                                   "\xFF",     "\xED\xA0\x80"};
	unsigned char buf[64];

	for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
		size_t sl = strlen(seqs[s]);
		bool valid = s < 3;

		for (size_t before = 0; before < 20; before++) {
			for (size_t after = 0; after < 20; after++) {
				memset(buf, 'a', sizeof(buf));
				memcpy(buf + before, seqs[s], sl);
				cr_expect_eq(proto_utf8_is_valid(buf, before + sl + after), valid,
				             "sequence %zu after %zu bytes, %zu after it", s,
				             before, after);
			}
		}
	}
}
