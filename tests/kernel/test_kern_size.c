/* kern_size: limits as people write them, and as messages print them. */
#include <errno.h>

#include <criterion/criterion.h>

#include "kern_sandbox.h"
#include "kern_size.h"

static uint64_t parsed(const char *s)
{
	uint64_t v = UINT64_MAX;

	cr_assert_eq(kern_size_parse(s, &v), 0, "%s should parse", s);
	return v;
}

Test(kern_size, units_are_powers_of_1024)
{
	cr_assert_eq(parsed("65536"), 65536);
	cr_assert_eq(parsed("100MB"), (uint64_t)100 << 20);
	cr_assert_eq(parsed("100mib"), (uint64_t)100 << 20);
	cr_assert_eq(parsed("100M"), (uint64_t)100 << 20);
	cr_assert_eq(parsed("1GiB"), (uint64_t)1 << 30);
	cr_assert_eq(parsed("1.5GiB"), (uint64_t)3 << 29);
	cr_assert_eq(parsed("2K"), 2048);
	cr_assert_eq(parsed("7b"), 7);
	cr_assert_eq(parsed("1024T"), KERN_SIZE_MAX);
	cr_assert_eq(parsed("0"), 0);
}

Test(kern_size, refuses_what_is_not_a_size)
{
	static const char *const bad[] = {"",
	                                  "MB",
	                                  "-1MB",
	                                  "+1MB",
	                                  " 1MB",
	                                  "1MB ",
	                                  "1 MB",
	                                  "1e6",
	                                  "1.MB",
	                                  ".5MB",
	                                  "1PB",
	                                  "12Q",
	                                  "1024.1T",
	                                  "1125899906842625",
	                                  "99999999999999999999999"};
	uint64_t v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(kern_size_parse(bad[i], &v), -EINVAL, "\"%s\" should be refused",
		             bad[i]);
	cr_assert_eq(v, 42, "a refused size leaves the output alone");
}

Test(kern_size, prints_what_users_read)
{
	char b[32];

	kern_size_format((uint64_t)100 << 20, b, sizeof(b));
	cr_assert_str_eq(b, "100 MB");
	kern_size_format((uint64_t)3 << 29, b, sizeof(b));
	cr_assert_str_eq(b, "1.5 GB");
	kern_size_format((uint64_t)2 << 30, b, sizeof(b));
	cr_assert_str_eq(b, "2 GB");
	kern_size_format(512 << 10, b, sizeof(b));
	cr_assert_str_eq(b, "512 KB");
	kern_size_format(1000, b, sizeof(b));
	cr_assert_str_eq(b, "1000 bytes");
	kern_size_format(0, b, sizeof(b));
	cr_assert_str_eq(b, "0 bytes");
}

Test(kern_sandbox, profiles_have_their_defaults)
{
	struct kern_sandbox sb;

	cr_assert_eq(kern_sandbox_defaults(&sb, "strict"), 0);
	cr_assert_eq(sb.memory, (uint64_t)100 << 20);
	cr_assert_eq(sb.cpu_time, 30);
	cr_assert_eq(sb.processes, 1);
	cr_assert(!sb.network);
	cr_assert(kern_sandbox_needs(&sb, KERN_LAYER_SECCOMP));
	cr_assert(kern_sandbox_needs(&sb, KERN_LAYER_NETNS));
	cr_assert(!kern_sandbox_needs(&sb, KERN_LAYER_CGROUP_MEMORY), "cgroups are optional");
	cr_assert_eq(kern_sandbox_defaults(&sb, "moderate"), 0);
	cr_assert_eq(sb.memory, (uint64_t)512 << 20);
	cr_assert_eq(kern_sandbox_defaults(&sb, "permissive"), 0);
	sb.network = true;
	cr_assert(!kern_sandbox_needs(&sb, KERN_LAYER_NETNS),
	          "a networked profile keeps the host's");
	cr_assert_eq(kern_sandbox_defaults(&sb, "none"), 0);
	cr_assert(!kern_sandbox_needs(&sb, KERN_LAYER_SECCOMP));
	cr_assert_eq(kern_sandbox_defaults(&sb, "Strict"), -EINVAL);
	cr_assert_eq(kern_sandbox_defaults(&sb, ""), -EINVAL);
}
