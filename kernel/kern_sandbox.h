/*
 * The sandbox: the operating-system wall around a kernel that runs hostile code.
 *
 * kern_sandbox_enter() splits the process in two. The process that called it stays outside as
 * a small supervisor: it makes the kernel's cgroups, writes its uid and gid maps, waits for it
 * and turns the way it died into an exit status that names the limit it hit. The child is the
 * kernel: pid 1 of new user, pid, mount, net, ipc, uts and cgroup namespaces, in a minimal
 * read-only root with a private workspace, with an unprivileged uid, no capabilities,
 * no_new_privs and rlimits. kern_sandbox_lock() is its last step before user code: the rlimits
 * that depend on what the kernel itself uses, then the seccomp allowlist for every thread.
 *
 * The caller may be a fresh process or a fork of an initialised interpreter; it must be
 * single-threaded when it calls kern_sandbox_enter().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kern_size.h"

enum kern_profile {
	KERN_PROFILE_NONE,
	KERN_PROFILE_STRICT,
	KERN_PROFILE_MODERATE,
	KERN_PROFILE_PERMISSIVE,
	KERN_PROFILE_CUSTOM,
};

/* The supervisor's exit statuses beyond the kernel's own (see docs/python-security-guidelines.md).
 */
#define KERN_EXIT_MEMORY  101 /* killed by the memory cgroup */
#define KERN_EXIT_CPU     102 /* ran out of CPU seconds */
#define KERN_EXIT_SANDBOX 103 /* the sandbox could not be set up */
#define KERN_EXIT_SECCOMP 104 /* killed by the seccomp filter */

#define KERN_SANDBOX_MAX_PATHS 32

/* The layers, in the order they are applied; each is reported by --check-sandbox. */
enum kern_layer {
	KERN_LAYER_USERNS,
	KERN_LAYER_PIDNS,
	KERN_LAYER_MOUNTNS,
	KERN_LAYER_NETNS,
	KERN_LAYER_IPCNS,
	KERN_LAYER_UTSNS,
	KERN_LAYER_CGROUPNS,
	KERN_LAYER_ROOT, /* pivot_root into a minimal read-only root */
	KERN_LAYER_UID,  /* an unprivileged uid and gid of its own */
	KERN_LAYER_CAPS,
	KERN_LAYER_NNP,
	KERN_LAYER_RLIMITS,
	KERN_LAYER_CGROUP_MEMORY,
	KERN_LAYER_CGROUP_PIDS,
	KERN_LAYER_SECCOMP,
	KERN_LAYER_COUNT,
};

struct kern_sandbox {
	enum kern_profile profile;
	uint64_t memory;     /* bytes user code may allocate; 0 = no limit */
	uint32_t cpu_time;   /* CPU seconds; 0 = no limit */
	uint32_t processes;  /* processes, counting the kernel: 1 = no child processes */
	uint32_t threads;    /* threads user code may start */
	uint32_t open_files; /* descriptors user code may open */
	uint64_t file_size;  /* largest file written */
	uint64_t disk;       /* size of the workspace and of /tmp, each */
	bool network;        /* keep the host's network and allow sockets (permissive, custom) */
	bool allow_weaker;   /* start even when a layer the profile needs is missing */
	const char *read_only[KERN_SANDBOX_MAX_PATHS]; /* data directories, bound read-only */
	size_t n_read_only;
	const char *allow_import; /* comma lists for the Python policy (borrowed) */
	const char *block_import;

	/* Filled by kern_sandbox_enter in the kernel (child). */
	bool active[KERN_LAYER_COUNT];
	char detail[KERN_LAYER_COUNT][96];
	int log_fd;
	/* Called around the fork when an interpreter is already running (may be NULL). */
	void (*before_fork)(void);
	void (*after_fork_parent)(void);
	void (*after_fork_child)(void);
};

/* The name of a layer ("user namespace", "seccomp", ...). */
const char *kern_layer_name(enum kern_layer l);
const char *kern_profile_name(enum kern_profile p);

/* Sets sb to the profile's defaults (NONE: no limits). Returns 0 or -EINVAL for a bad name. */
int kern_sandbox_defaults(struct kern_sandbox *sb, const char *profile);

/* Whether the profile cannot run without this layer. */
bool kern_sandbox_needs(const struct kern_sandbox *sb, enum kern_layer l);

/*
 * Enters the sandbox. keep lists the descriptors the kernel goes on using (all others are
 * closed in the kernel). Returns 0 in the kernel, with every layer but the last ones applied;
 * the supervisor never returns (it exits with the kernel's status). Returns -errno when the
 * split itself failed, before any child exists.
 */
int kern_sandbox_enter(struct kern_sandbox *sb, const int *keep, size_t n_keep);

/*
 * The kernel's last step before user code, once its own threads run: address-space, file and
 * process rlimits sized over what the kernel uses, then the seccomp allowlist on every thread.
 * Returns 0, or -errno when a layer the profile needs failed (the caller exits).
 */
int kern_sandbox_lock(struct kern_sandbox *sb);

/*
 * Tries every layer in a throwaway sandbox for each profile and prints the truth about this
 * host: a table, or JSON. Returns 0 when every profile can run, 1 otherwise.
 */
int kern_sandbox_check(FILE *out, bool json, const char *only_profile);

/*
 * Compiles sb's seccomp filter ahead and keeps it for the life of the process, so that a
 * kernel later forked from this one (the zygote's) with the same filter loads it as is.
 * Returns 0 or -errno; without it, kern_sandbox_lock compiles the filter itself.
 */
int kern_sandbox_precompile(const struct kern_sandbox *sb);
