/*
 * The sandbox (see kern_sandbox.h for the shape). Profiles and sizes first, then the
 * supervisor's cgroups, the split into supervisor and kernel, the kernel's new root, and last
 * kern_sandbox_lock's rlimits and seccomp filter. kern_sandbox_check() is at the end.
 */
#include "kern_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kern_log.h"

#define KERN_SB_UID            1000    /* the kernel's uid and gid inside its user namespace */
#define KERN_SB_OUTER_UID_BASE 1000000 /* + the supervisor's pid, when it runs as root */
#define KERN_SB_HOSTNAME       "sandcell"
#define KERN_SB_INODES         16384                /* files in the workspace and in /tmp, each */
#define KERN_SB_AS_SLACK       ((uint64_t)8 << 20)  /* the kernel's own allocations later */
#define KERN_SB_CG_SLACK       ((uint64_t)48 << 20) /* the kernel's own resident memory */
#define KERN_SB_LOG_CAP        (256 << 10)          /* kernel log bytes the supervisor relays */

#if defined(__SANITIZE_ADDRESS__)
#define KERN_SB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KERN_SB_ASAN 1
#endif
#endif
#ifndef KERN_SB_ASAN
#define KERN_SB_ASAN 0
#endif

/* snprintf for paths and values: a truncated result is reported, never used silently. */
static int sb_fmt(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int sb_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- profiles and sizes ---- */

static const char *const kern_layer_names[KERN_LAYER_COUNT] = {
        [KERN_LAYER_USERNS] = "user namespace",
        [KERN_LAYER_PIDNS] = "pid namespace",
        [KERN_LAYER_MOUNTNS] = "mount namespace",
        [KERN_LAYER_NETNS] = "net namespace",
        [KERN_LAYER_IPCNS] = "ipc namespace",
        [KERN_LAYER_UTSNS] = "uts namespace",
        [KERN_LAYER_CGROUPNS] = "cgroup namespace",
        [KERN_LAYER_ROOT] = "minimal root (pivot_root)",
        [KERN_LAYER_UID] = "unprivileged uid",
        [KERN_LAYER_CAPS] = "capabilities dropped",
        [KERN_LAYER_NNP] = "no_new_privs",
        [KERN_LAYER_RLIMITS] = "rlimits",
        [KERN_LAYER_CGROUP_MEMORY] = "cgroup memory",
        [KERN_LAYER_CGROUP_PIDS] = "cgroup pids",
        [KERN_LAYER_SECCOMP] = "seccomp",
};

const char *kern_layer_name(enum kern_layer l)
{
	return l < KERN_LAYER_COUNT ? kern_layer_names[l] : "?";
}

const char *kern_profile_name(enum kern_profile p)
{
	static const char *const names[] = {"none", "strict", "moderate", "permissive", "custom"};

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

int kern_sandbox_defaults(struct kern_sandbox *sb, const char *profile)
{
	static const struct {
		const char *name;
		enum kern_profile p;
		uint64_t memory_mb;
		uint32_t cpu, processes, threads, files;
		uint64_t fsize_mb, disk_mb;
	} table[] = {
	        {"none", KERN_PROFILE_NONE, 0, 0, 0, 0, 0, 0, 0},
	        {"strict", KERN_PROFILE_STRICT, 100, 30, 1, 8, 64, 16, 16},
	        {"moderate", KERN_PROFILE_MODERATE, 512, 300, 32, 32, 256, 128, 256},
	        {"permissive", KERN_PROFILE_PERMISSIVE, 2048, 3600, 128, 128, 1024, 1024, 1024},
	        {"custom", KERN_PROFILE_CUSTOM, 512, 300, 32, 32, 256, 128, 256},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(profile, table[i].name) != 0)
			continue;
		memset(sb, 0, sizeof(*sb));
		sb->profile = table[i].p;
		sb->memory = table[i].memory_mb << 20;
		sb->cpu_time = table[i].cpu;
		sb->processes = table[i].processes;
		sb->threads = table[i].threads;
		sb->open_files = table[i].files;
		sb->file_size = table[i].fsize_mb << 20;
		sb->disk = table[i].disk_mb << 20;
		sb->log_fd = STDERR_FILENO;
		return 0;
	}
	return -EINVAL;
}

bool kern_sandbox_needs(const struct kern_sandbox *sb, enum kern_layer l)
{
	if (sb->profile == KERN_PROFILE_NONE)
		return false;
	switch (l) {
	case KERN_LAYER_CGROUPNS:
	case KERN_LAYER_CGROUP_MEMORY:
	case KERN_LAYER_CGROUP_PIDS:
		return false; /* the rlimits stand in where the host has no cgroups */
	case KERN_LAYER_NETNS:
		return !sb->network;
	default:
		return true;
	}
}

/* ---- small helpers ---- */

/*
 * The tasks user code may add: the operating system counts processes and threads together
 * (pids cgroup, RLIMIT_NPROC), so both limits draw on one budget. For each to hold, the budget
 * is the smaller of the two where user code may fork.
 */
static uint64_t sb_task_budget(const struct kern_sandbox *sb)
{
	uint64_t procs = sb->processes ? sb->processes - 1 : 0;

	if (procs == 0)
		return sb->threads; /* no child processes (seccomp): threads alone */
	return sb->threads < procs ? sb->threads : procs;
}

static void sb_log(const struct kern_sandbox *sb, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void sb_log(const struct kern_sandbox *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kern_vlog(sb->log_fd, fmt, ap);
	va_end(ap);
}

static void sb_set(struct kern_sandbox *sb, enum kern_layer l, bool on, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void sb_set(struct kern_sandbox *sb, enum kern_layer l, bool on, const char *fmt, ...)
{
	va_list ap;

	sb->active[l] = on;
	va_start(ap, fmt);
	vsnprintf(sb->detail[l], sizeof(sb->detail[l]), fmt, ap);
	va_end(ap);
}

static int sb_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(text);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, text, len);
	if (w < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	close(fd);
	return (size_t)w == len ? 0 : -EIO;
}

static int sb_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/* Looks for "key N" in text (memory.events, memory.oom_control, pids.events). */
static uint64_t sb_counter(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtoull(p + klen + 1, NULL, 10);
	}
	return 0;
}

/* ---- cgroups (the supervisor's side) ---- */

struct sb_cgroup {
	int version; /* 0 none, 1, 2 */
	char mem[PATH_MAX];
	char pids[PATH_MAX];
	char v1_mem_base[PATH_MAX]; /* the sandcell directories made, removed when empty */
	char v1_pids_base[PATH_MAX];
};

/* The mount point of a cgroup hierarchy: v1 with controller, or v2 when controller is NULL. */
static int sb_cgroup_mount(const char *controller, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - "), *mnt, *fstype, *opts, *save = NULL;

		if (!dash)
			continue;
		*dash = '\0';
		strtok_r(line, " ", &save); /* id */
		strtok_r(NULL, " ", &save); /* parent */
		strtok_r(NULL, " ", &save); /* dev */
		strtok_r(NULL, " ", &save); /* root */
		mnt = strtok_r(NULL, " ", &save);
		fstype = strtok_r(dash + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		opts = strtok_r(NULL, " \n", &save);
		if (!mnt || !fstype || !opts)
			continue;
		if (!controller && strcmp(fstype, "cgroup2") == 0) {
			sb_fmt(out, size, "%s", mnt);
			found = 0;
		} else if (controller && strcmp(fstype, "cgroup") == 0) {
			char *o, *s2 = NULL;

			for (o = strtok_r(opts, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
				if (strcmp(o, controller) == 0)
					break;
			if (o) {
				sb_fmt(out, size, "%s", mnt);
				found = 0;
			}
		}
	}
	fclose(f);
	return found;
}

/* Our own cgroup path in a hierarchy: v1 controller, or v2 ("0::") when controller is NULL. */
static int sb_cgroup_self(const char *controller, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		line[strcspn(line, "\n")] = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		if (!controller ? strcmp(c1 + 1, "") == 0 && strcmp(line, "0") == 0 : 0) {
			sb_fmt(out, size, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
			found = 0;
		} else if (controller) {
			char *o, *s2 = NULL;

			for (o = strtok_r(c1 + 1, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
				if (strcmp(o, controller) == 0)
					break;
			if (o) {
				sb_fmt(out, size, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
				found = 0;
			}
		}
	}
	fclose(f);
	return found;
}

/*
 * Removes the cgroups of kernels whose supervisor is gone: one killed outright (SIGKILL)
 * cannot remove its own. Only empty cgroups can be removed, so a live kernel's stays; one
 * made in the last minute is left alone, since its kernel may not have moved in yet. (Pids
 * cannot tell: supervisors in other pid namespaces share this directory.)
 */
static void sb_cgroup_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char path[PATH_MAX + 300];
	time_t now = time(NULL);

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] != 'k' || sb_fmt(path, sizeof(path), "%s/%s", base, e->d_name) ||
		    stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || now - st.st_ctime < 60)
			continue;
		rmdir(path);
	}
	closedir(d);
}

/* Makes base/sandcell/NAME in a v1 hierarchy; fills dir. */
static int sb_cgroup_v1_make(const char *controller, const char *name, char *base, char *dir)
{
	char mnt[PATH_MAX], self[PATH_MAX];

	if (sb_cgroup_mount(controller, mnt, sizeof(mnt)) < 0 ||
	    sb_cgroup_self(controller, self, sizeof(self)) < 0)
		return -ENOENT;
	sb_fmt(base, PATH_MAX, "%s%s/sandcell", mnt, self);
	sb_fmt(dir, PATH_MAX, "%s/%s", base, name);
	/* The shared parent goes when the last kernel leaves: it may vanish under us. */
	for (int i = 0; i < 5; i++) {
		if (mkdir(base, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (i == 0)
			sb_cgroup_sweep(base);
		if (mkdir(dir, 0755) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
	}
	return -ENOENT;
}

static int sb_cgroup_v2_make(const char *name, char *dir)
{
	char mnt[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 64], text[512];

	if (sb_cgroup_mount(NULL, mnt, sizeof(mnt)) < 0 ||
	    sb_cgroup_self(NULL, self, sizeof(self)) < 0)
		return -ENOENT;
	sb_fmt(path, sizeof(path), "%s%s/cgroup.controllers", mnt, self);
	if (sb_read_file(path, text, sizeof(text)) < 0 || !strstr(text, "memory") ||
	    !strstr(text, "pids"))
		return -ENOENT;
	/* Our own cgroup must delegate the controllers to a child: only possible when it holds
	 * no processes itself (or is the root), which a service manager arranges for us. */
	sb_fmt(path, sizeof(path), "%s%s/cgroup.subtree_control", mnt, self);
	if (sb_write_file(path, "+memory +pids") < 0)
		return -EPERM;
	sb_fmt(path, sizeof(path), "%s%s/sandcell", mnt, self);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	sb_cgroup_sweep(path);
	sb_fmt(path, sizeof(path), "%s%s/sandcell/cgroup.subtree_control", mnt, self);
	if (sb_write_file(path, "+memory +pids") < 0)
		return -EPERM;
	sb_fmt(dir, PATH_MAX, "%s%s/sandcell/%s", mnt, self, name);
	if (mkdir(dir, 0755) < 0)
		return -errno;
	return 0;
}

static void sb_cgroup_setup(struct kern_sandbox *sb, struct sb_cgroup *cg, uint64_t pids_max)
{
	char name[32], path[PATH_MAX + 64], val[32];
	/* The workspace's and /tmp's files are memory too (tmpfs), and count here. */
	uint64_t mem = sb->memory ? sb->memory + KERN_SB_CG_SLACK : 0;

	uint32_t salt = 0;

	memset(cg, 0, sizeof(*cg));
	/* Unique even across pid namespaces (the pid alone is not). */
	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt))
		salt = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	sb_fmt(name, sizeof(name), "k%d-%08x", (int)getpid(), salt);
	if (geteuid() != 0) {
		sb_set(sb, KERN_LAYER_CGROUP_MEMORY, false, "needs root to make cgroups");
		sb_set(sb, KERN_LAYER_CGROUP_PIDS, false, "needs root to make cgroups");
		return;
	}
	if (sb_cgroup_v2_make(name, cg->mem) == 0) {
		cg->version = 2;
		sb_fmt(cg->pids, sizeof(cg->pids), "%s", cg->mem);
		sb_fmt(val, sizeof(val), "%" PRIu64, mem);
		sb_fmt(path, sizeof(path), "%s/memory.max", cg->mem);
		sb_set(sb, KERN_LAYER_CGROUP_MEMORY, sb_write_file(path, mem ? val : "max") == 0,
		       "cgroup v2 memory.max");
		sb_fmt(path, sizeof(path), "%s/memory.swap.max", cg->mem);
		sb_write_file(path, "0");
		sb_fmt(val, sizeof(val), "%" PRIu64, pids_max);
		sb_fmt(path, sizeof(path), "%s/pids.max", cg->pids);
		sb_set(sb, KERN_LAYER_CGROUP_PIDS, sb_write_file(path, pids_max ? val : "max") == 0,
		       "cgroup v2 pids.max");
		return;
	}
	cg->version = 1;
	if (sb_cgroup_v1_make("memory", name, cg->v1_mem_base, cg->mem) == 0) {
		sb_fmt(val, sizeof(val), "%" PRIu64, mem);
		sb_fmt(path, sizeof(path), "%s/memory.limit_in_bytes", cg->mem);
		sb_set(sb, KERN_LAYER_CGROUP_MEMORY, sb_write_file(path, mem ? val : "-1") == 0,
		       "cgroup v1 memory.limit_in_bytes");
		sb_fmt(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", cg->mem);
		if (mem && access(path, W_OK) == 0)
			sb_write_file(path, val);
		sb_fmt(path, sizeof(path), "%s/memory.swappiness", cg->mem);
		sb_write_file(path, "0");
	} else {
		cg->mem[0] = '\0';
		sb_set(sb, KERN_LAYER_CGROUP_MEMORY, false, "no writable memory cgroup");
	}
	if (sb_cgroup_v1_make("pids", name, cg->v1_pids_base, cg->pids) == 0) {
		sb_fmt(val, sizeof(val), "%" PRIu64, pids_max);
		sb_fmt(path, sizeof(path), "%s/pids.max", cg->pids);
		sb_set(sb, KERN_LAYER_CGROUP_PIDS, sb_write_file(path, pids_max ? val : "max") == 0,
		       "cgroup v1 pids.max");
	} else {
		cg->pids[0] = '\0';
		sb_set(sb, KERN_LAYER_CGROUP_PIDS, false, "no writable pids cgroup");
	}
	if (!cg->mem[0] && !cg->pids[0])
		cg->version = 0;
}

/* Moves pid into the kernel's cgroups. Returns 0 or -1 (the cgroup is reported, so must hold). */
static int sb_cgroup_attach(const struct sb_cgroup *cg, pid_t pid)
{
	char path[PATH_MAX + 32], val[32];
	int r = 0;

	sb_fmt(val, sizeof(val), "%d", (int)pid);
	if (cg->mem[0]) {
		sb_fmt(path, sizeof(path), "%s/cgroup.procs", cg->mem);
		if (sb_write_file(path, val) < 0)
			r = -1;
	}
	if (cg->pids[0] && strcmp(cg->pids, cg->mem) != 0) {
		sb_fmt(path, sizeof(path), "%s/cgroup.procs", cg->pids);
		if (sb_write_file(path, val) < 0)
			r = -1;
	}
	return r;
}

/* Whether the memory cgroup killed something for running out of memory. */
static bool sb_cgroup_oom(const struct sb_cgroup *cg)
{
	char path[PATH_MAX + 32], text[1024];

	if (!cg->mem[0])
		return false;
	sb_fmt(path, sizeof(path), "%s/%s", cg->mem,
	       cg->version == 2 ? "memory.events" : "memory.oom_control");
	if (sb_read_file(path, text, sizeof(text)) < 0)
		return false;
	return sb_counter(text, "oom_kill") > 0;
}

/* SIGKILLs every process left in the kernel's cgroups. */
static void sb_cgroup_kill(const struct sb_cgroup *cg)
{
	const char *dirs[2] = {cg->mem, cg->pids};
	char path[PATH_MAX + 32], text[4096];

	for (int i = 0; i < 2; i++) {
		if (!dirs[i][0])
			continue;
		sb_fmt(path, sizeof(path), "%s/cgroup.procs", dirs[i]);
		if (sb_read_file(path, text, sizeof(text)) <= 0)
			continue;
		for (char *p = text; *p;) {
			long pid = strtol(p, &p, 10);

			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
			while (*p == '\n')
				p++;
			if (pid <= 0)
				break;
		}
	}
}

static void sb_cgroup_remove(const struct sb_cgroup *cg)
{
	/* The kernel's processes are gone (its pid namespace died with it); a few retries cover
	 * the moment the cgroup takes to notice. */
	for (int i = 0; i < 50; i++) {
		bool left = false;

		if (cg->mem[0] && rmdir(cg->mem) < 0 && errno == EBUSY)
			left = true;
		if (cg->pids[0] && strcmp(cg->pids, cg->mem) != 0 && rmdir(cg->pids) < 0 &&
		    errno == EBUSY)
			left = true;
		if (!left)
			break;
		usleep(2000);
	}
	/* The shared parents go when the last kernel leaves (EBUSY while others run). */
	if (cg->v1_mem_base[0])
		rmdir(cg->v1_mem_base);
	if (cg->v1_pids_base[0])
		rmdir(cg->v1_pids_base);
}

/* ---- the kernel's new root ---- */

/* mkdir -p under the new root. */
static int sb_mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The flags a remount must keep: those locked on the source mount by its owner. */
static unsigned long sb_locked_flags(const char *path)
{
	struct statvfs st;
	unsigned long f = 0;

	if (statvfs(path, &st) < 0)
		return 0;
	if (st.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (st.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (st.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (st.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (st.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (st.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Remounts one mount read-only, keeping the flags its owner locked. */
static int sb_remount_ro(const char *path)
{
	if (mount(NULL, path, NULL,
	          MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | sb_locked_flags(path),
	          NULL) < 0)
		return -errno;
	return 0;
}

/*
 * Makes the mount at path and every mount below it read-only: a recursive bind brings the
 * host's submounts along (a separate /usr/local, say), and each would stay writable.
 */
static int sb_read_only_tree(const char *path)
{
	struct mount_attr attr = {.attr_set =
	                                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
	size_t len = strlen(path);
	char line[4096];
	FILE *f;
	int r;

	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	/* Before Linux 5.12: each mount on its own, from the table of mounts. */
	if ((r = sb_remount_ro(path)) < 0)
		return r;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char *save = NULL, *mnt;

		strtok_r(line, " ", &save);
		strtok_r(NULL, " ", &save);
		strtok_r(NULL, " ", &save);
		strtok_r(NULL, " ", &save);
		mnt = strtok_r(NULL, " ", &save);
		if (mnt && strncmp(mnt, path, len) == 0 && mnt[len] == '/')
			r = sb_remount_ro(mnt);
	}
	fclose(f);
	return r;
}

/* Binds src at dst (made as a directory or an empty file like src), read-only unless rw. */
static int sb_bind(const char *src, const char *dst, bool rw, bool optional)
{
	struct stat st;

	if (stat(src, &st) < 0)
		return optional ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		int r = sb_mkdirs(dst, 0755);

		if (r < 0)
			return r;
	} else {
		char parent[PATH_MAX];
		char *slash;
		int fd;

		sb_fmt(parent, sizeof(parent), "%s", dst);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			sb_mkdirs(parent, 0755);
		}
		fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
		if (fd < 0 && errno != EEXIST)
			return -errno;
		if (fd >= 0)
			close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return rw ? 0 : sb_read_only_tree(dst);
}

/* Writes a small file into the new root. */
static int sb_put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, text, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -EIO;
}

/* The host's /bin, /lib... as they are: a symlink (merged /usr) or a read-only directory. */
static int sb_top_level(const char *root, const char *name)
{
	char host[64], dst[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;

	sb_fmt(host, sizeof(host), "/%s", name);
	sb_fmt(dst, sizeof(dst), "%s/%s", root, name);
	if (lstat(host, &st) < 0)
		return 0;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(host, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		return symlink(target, dst) < 0 ? -errno : 0;
	}
	return S_ISDIR(st.st_mode) ? sb_bind(host, dst, false, false) : 0;
}

/* A directory not on the way to anything we bind, to hold the new root while it is built. */
static const char *sb_pick_base(const struct kern_sandbox *sb)
{
	static const char *const candidates[] = {"/mnt",  "/media", "/srv",     "/opt", "/boot",
	                                         "/home", "/tmp",   "/var/tmp", "/run"};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		const char *c = candidates[i];
		size_t len = strlen(c);
		struct stat st;
		bool clash = false;

		if (lstat(c, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		for (size_t j = 0; j < sb->n_read_only; j++)
			if (strncmp(sb->read_only[j], c, len) == 0 &&
			    (sb->read_only[j][len] == '/' || sb->read_only[j][len] == '\0'))
				clash = true;
		if (!clash)
			return c;
	}
	return NULL;
}

/* With a sanitizer build, the directory its reports go to (from log_path=) stays writable. */
static void sb_sanitizer_dir(char *out, size_t size)
{
	const char *opts = getenv("ASAN_OPTIONS"), *p;

	out[0] = '\0';
	if (!KERN_SB_ASAN || !opts || !(p = strstr(opts, "log_path=")))
		return;
	p += strlen("log_path=");
	sb_fmt(out, size, "%.*s", (int)strcspn(p, ":"), p);
	if (strrchr(out, '/'))
		*strrchr(out, '/') = '\0';
	else
		out[0] = '\0';
}

static int sb_build_root(struct kern_sandbox *sb)
{
	static const char *const etc_files[] = {
	        "ld.so.cache", "fonts",      "ssl",          "mime.types", "alternatives",
	        "python3",     "python3.11", "matplotlibrc", "timezone",
	};
	static const char *const etc_net[] = {"resolv.conf", "nsswitch.conf", "protocols",
	                                      "services",    "gai.conf",      "host.conf"};
	static const char *const devs[] = {"null", "zero", "full", "random", "urandom"};
	static const char *const top[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
	static const char *const proc_ro[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
	const char *base = sb_pick_base(sb);
	char root[PATH_MAX], p[PATH_MAX + 64], p2[PATH_MAX + 64], opts[160], san[PATH_MAX];
	unsigned long ws_flags = MS_NOSUID | MS_NODEV;
	int r;
	ssize_t n;

	if (!base)
		return -ENOENT;
	sb_fmt(root, sizeof(root), "%s", base);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("sandcell-root", root, "tmpfs", MS_NOSUID | MS_NODEV,
	          "size=1m,nr_inodes=4096,mode=0755") < 0)
		return -errno;

	sb_fmt(p, sizeof(p), "%s/usr", root);
	if ((r = sb_bind("/usr", p, false, false)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		if ((r = sb_top_level(root, top[i])) < 0)
			return r;

	/* /etc: what the interpreter and its libraries read, and an identity of our own. */
	sb_fmt(p, sizeof(p), "%s/etc", root);
	if (mkdir(p, 0755) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(etc_files) / sizeof(etc_files[0]); i++) {
		sb_fmt(p, sizeof(p), "/etc/%s", etc_files[i]);
		sb_fmt(p2, sizeof(p2), "%s/etc/%s", root, etc_files[i]);
		if ((r = sb_bind(p, p2, false, true)) < 0)
			return r;
	}
	for (size_t i = 0; sb->network && i < sizeof(etc_net) / sizeof(etc_net[0]); i++) {
		sb_fmt(p, sizeof(p), "/etc/%s", etc_net[i]);
		sb_fmt(p2, sizeof(p2), "%s/etc/%s", root, etc_net[i]);
		if ((r = sb_bind(p, p2, false, true)) < 0)
			return r;
	}
	n = readlink("/etc/localtime", p2, sizeof(p2) - 1);
	if (n > 0) {
		p2[n] = '\0';
		sb_fmt(p, sizeof(p), "%s/etc/localtime", root);
		if (symlink(p2, p) < 0)
			return -errno;
	}
	sb_fmt(p, sizeof(p), "%s/etc/passwd", root);
	if ((r = sb_put(p, "sandbox:x:1000:1000:sandcell:/workspace:/usr/sbin/nologin\n")) < 0)
		return r;
	sb_fmt(p, sizeof(p), "%s/etc/group", root);
	if ((r = sb_put(p, "sandbox:x:1000:\n")) < 0)
		return r;
	sb_fmt(p, sizeof(p), "%s/etc/hostname", root);
	if ((r = sb_put(p, KERN_SB_HOSTNAME "\n")) < 0)
		return r;
	if (!sb->network) {
		sb_fmt(p, sizeof(p), "%s/etc/hosts", root);
		if ((r = sb_put(p, "127.0.0.1 localhost " KERN_SB_HOSTNAME "\n::1 localhost\n")) <
		    0)
			return r;
	} else {
		sb_fmt(p2, sizeof(p2), "%s/etc/hosts", root);
		if ((r = sb_bind("/etc/hosts", p2, false, true)) < 0)
			return r;
	}

	/* /dev: the harmless devices, bound from the host (no device can be made here). */
	sb_fmt(p, sizeof(p), "%s/dev", root);
	if (mkdir(p, 0755) < 0 || mount("sandcell-dev", p, "tmpfs", MS_NOSUID | MS_NOEXEC,
	                                "size=64k,nr_inodes=64,mode=0755") < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		sb_fmt(p, sizeof(p), "/dev/%s", devs[i]);
		sb_fmt(p2, sizeof(p2), "%s/dev/%s", root, devs[i]);
		if ((r = sb_bind(p, p2, true, false)) < 0)
			return r;
	}
	sb_fmt(p, sizeof(p), "%s/dev/fd", root);
	if (symlink("/proc/self/fd", p) < 0)
		return -errno;
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = {"stdin", "stdout", "stderr"};

		sb_fmt(p, sizeof(p), "%s/dev/%s", root, names[i]);
		sb_fmt(p2, sizeof(p2), "/proc/self/fd/%d", i);
		if (symlink(p2, p) < 0)
			return -errno;
	}
	sb_fmt(p, sizeof(p), "%s/dev/shm", root);
	if (symlink("/tmp", p) < 0)
		return -errno;
	sb_fmt(p, sizeof(p), "%s/dev", root);
	if (mount(NULL, p, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
		return -errno;

	/* /proc of our own pid namespace; what it shows of the host stays read-only. */
	sb_fmt(p, sizeof(p), "%s/proc", root);
	if (mkdir(p, 0555) < 0 && errno != EEXIST)
		return -errno;
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(proc_ro) / sizeof(proc_ro[0]); i++) {
		sb_fmt(p, sizeof(p), "%s/proc/%s", root, proc_ro[i]);
		if (access(p, F_OK) == 0 && (r = sb_bind(p, p, false, false)) < 0)
			return r;
	}

	/* The workspace and /tmp: private, size-limited, gone with the kernel. */
	if (sb->profile == KERN_PROFILE_STRICT || sb->profile == KERN_PROFILE_MODERATE)
		ws_flags |= MS_NOEXEC;
	sb_fmt(opts, sizeof(opts), "size=%" PRIu64 ",nr_inodes=%d,mode=0700,uid=%d,gid=%d",
	       sb->disk ? sb->disk : (uint64_t)64 << 20, KERN_SB_INODES, KERN_SB_UID, KERN_SB_UID);
	sb_fmt(p, sizeof(p), "%s/workspace", root);
	if (mkdir(p, 0755) < 0 || mount("sandcell-workspace", p, "tmpfs", ws_flags, opts) < 0)
		return -errno;
	sb_fmt(p, sizeof(p), "%s/tmp", root);
	if (mkdir(p, 01777) < 0 || mount("sandcell-tmp", p, "tmpfs", ws_flags, opts) < 0)
		return -errno;

	for (size_t i = 0; i < sb->n_read_only; i++) {
		sb_fmt(p, sizeof(p), "%s%s", root, sb->read_only[i]);
		if ((r = sb_bind(sb->read_only[i], p, false, false)) < 0) {
			sb_log(sb, "cannot bind the data directory %s: %s", sb->read_only[i],
			       strerror(-r));
			return r;
		}
	}
	sb_sanitizer_dir(san, sizeof(san));
	if (san[0]) {
		sb_fmt(p, sizeof(p), "%s%s", root, san);
		if ((r = sb_bind(san, p, true, true)) < 0)
			return r;
	}

	/* Swap roots: the host's disappears from this namespace. */
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0)
		return -errno;
	if (chdir("/workspace") < 0)
		return -errno;
	return 0;
}

/* ---- the kernel's side of the split ---- */

static int sb_drop_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

static void sb_close_fds(const int *keep, size_t n_keep, int also)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int dfd;

	if (!d)
		return;
	dfd = dirfd(d);
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd <= 2 || fd == dfd || fd == also)
			continue;
		for (size_t i = 0; i < n_keep; i++)
			if (keep[i] == fd)
				goto next;
		close(fd);
next:;
	}
	closedir(d);
}

static void sb_set_env(const struct kern_sandbox *sb)
{
	const char *shim = getenv("SANDCELL_SHIM_IPYTHON");
	char keep_shim[8] = "";
	char san[3][1024] = {"", "", ""};
	static const char *const san_vars[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};

	if (shim)
		sb_fmt(keep_shim, sizeof(keep_shim), "%s", shim);
	for (int i = 0; KERN_SB_ASAN && i < 3; i++) {
		const char *v = getenv(san_vars[i]);

		if (v)
			sb_fmt(san[i], sizeof(san[i]), "%s", v);
	}
	clearenv();
	setenv("HOME", "/workspace", 1);
	setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
	setenv("LANG", "C.UTF-8", 1);
	setenv("TMPDIR", "/tmp", 1);
	setenv("USER", "sandbox", 1);
	setenv("MPLCONFIGDIR", "/tmp/matplotlib", 1);
	setenv("OPENBLAS_NUM_THREADS", "1", 1);
	setenv("OMP_NUM_THREADS", "1", 1);
	if (keep_shim[0])
		setenv("SANDCELL_SHIM_IPYTHON", keep_shim, 1);
	for (int i = 0; i < 3; i++)
		if (san[i][0])
			setenv(san_vars[i], san[i], 1);
	(void)sb;
}

/* Fails the start unless the operator accepted a weaker sandbox. */
static int sb_require(struct kern_sandbox *sb, enum kern_layer l, int err)
{
	if (sb->active[l] || !kern_sandbox_needs(sb, l))
		return 0;
	if (sb->allow_weaker) {
		sb_log(sb,
		       "WARNING: running the %s profile without its %s (%s): the operator "
		       "accepted a weaker sandbox",
		       kern_profile_name(sb->profile), kern_layer_name(l), sb->detail[l]);
		return 0;
	}
	sb_log(sb,
	       "cannot start the %s profile: its %s is not available here (%s%s%s); "
	       "--allow-weaker-sandbox accepts that explicitly",
	       kern_profile_name(sb->profile), kern_layer_name(l), sb->detail[l], err ? ": " : "",
	       err ? strerror(-err) : "");
	return -EPERM;
}

/* The kernel's side, from just after the clone until it may start its interpreter. */
static int sb_child(struct kern_sandbox *sb, unsigned long flags, int alive, const int *keep,
                    size_t n_keep)
{
	int r;
	struct rlimit rl;
	struct pollfd pfd = {.fd = alive, .events = POLLIN};

	sb_set(sb, KERN_LAYER_USERNS, flags & CLONE_NEWUSER, "%s",
	       flags & CLONE_NEWUSER ? "1000 inside, unmapped outside" : "unshare refused it");
	sb_set(sb, KERN_LAYER_PIDNS, flags & CLONE_NEWPID, "%s",
	       flags & CLONE_NEWPID ? "the kernel is pid 1" : "unshare refused it");
	sb_set(sb, KERN_LAYER_MOUNTNS, flags & CLONE_NEWNS, "%s", "");
	sb_set(sb, KERN_LAYER_NETNS, flags & CLONE_NEWNET, "%s",
	       flags & CLONE_NEWNET ? "no interfaces up"
	       : sb->network        ? "the host's network (profile allows it)"
	                            : "unshare refused it");
	sb_set(sb, KERN_LAYER_IPCNS, flags & CLONE_NEWIPC, "%s", "");
	sb_set(sb, KERN_LAYER_UTSNS, flags & CLONE_NEWUTS, "%s",
	       flags & CLONE_NEWUTS ? "hostname " KERN_SB_HOSTNAME : "");
	sb_set(sb, KERN_LAYER_CGROUPNS, flags & CLONE_NEWCGROUP, "%s", "");

	if ((flags & CLONE_NEWUSER) && (setresgid(KERN_SB_UID, KERN_SB_UID, KERN_SB_UID) < 0 ||
	                                setresuid(KERN_SB_UID, KERN_SB_UID, KERN_SB_UID) < 0))
		sb_set(sb, KERN_LAYER_UID, false, "setresuid: %s", strerror(errno));
	else if (getuid() != 0 && geteuid() != 0)
		sb_set(sb, KERN_LAYER_UID, true, "uid %d inside", (int)getuid());
	else
		sb_set(sb, KERN_LAYER_UID, false, "still root");

	if (flags & CLONE_NEWNS) {
		r = sb_build_root(sb);
		sb_set(sb, KERN_LAYER_ROOT, r == 0, "%s",
		       r == 0 ? "read-only /usr, private /workspace and /tmp" : strerror(-r));
	} else {
		sb_set(sb, KERN_LAYER_ROOT, false, "no mount namespace");
	}
	if ((flags & CLONE_NEWUTS) && sethostname(KERN_SB_HOSTNAME, strlen(KERN_SB_HOSTNAME)) < 0)
		sb_set(sb, KERN_LAYER_UTSNS, false, "sethostname: %s", strerror(errno));

	r = sb_drop_caps();
	sb_set(sb, KERN_LAYER_CAPS, r == 0, "%s",
	       r == 0 ? "none left, bounding set empty" : strerror(-r));
	r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
	sb_set(sb, KERN_LAYER_NNP, r == 0, "%s", r == 0 ? "" : strerror(-r));

	/* The rlimits that do not depend on the kernel's own use; the rest in kern_sandbox_lock. */
	rl.rlim_cur = rl.rlim_max = 0;
	r = setrlimit(RLIMIT_CORE, &rl);
	if (r == 0 && sb->cpu_time) {
		rl.rlim_cur = sb->cpu_time;
		rl.rlim_max = sb->cpu_time + 1;
		r = setrlimit(RLIMIT_CPU, &rl);
	}
	if (r == 0 && sb->file_size) {
		rl.rlim_cur = rl.rlim_max = sb->file_size;
		r = setrlimit(RLIMIT_FSIZE, &rl);
	}
	rl.rlim_cur = rl.rlim_max = 64 << 10;
	if (r == 0)
		r = setrlimit(RLIMIT_MEMLOCK, &rl);
	sb_set(sb, KERN_LAYER_RLIMITS, r == 0, "%s",
	       r == 0 ? "core 0, cpu, fsize, memlock" : strerror(errno));

	sb_set_env(sb);
	/* Die with our parent. Set last: a change of uid or capabilities clears it. The pipe's
	 * other end closes if the parent is already gone. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (poll(&pfd, 1, 0) != 0)
		_exit(KERN_EXIT_SANDBOX);
	close(alive);
	sb_close_fds(keep, n_keep, -1);

	for (int l = 0; l < KERN_LAYER_COUNT; l++) {
		if (l == KERN_LAYER_SECCOMP)
			continue; /* applied by kern_sandbox_lock */
		if ((r = sb_require(sb, (enum kern_layer)l, 0)) < 0)
			_exit(KERN_EXIT_SANDBOX);
	}
	return 0;
}

/* ---- the supervisor ---- */

/* Writes a one-entry uid/gid map for the kernel. */
static int sb_write_maps(pid_t pid, uid_t outer_uid, gid_t outer_gid)
{
	char path[64], map[64];
	int r;

	sb_fmt(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	sb_write_file(path, "deny");
	sb_fmt(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	sb_fmt(map, sizeof(map), "%d %u 1\n", KERN_SB_UID, (unsigned)outer_uid);
	if ((r = sb_write_file(path, map)) < 0)
		return r;
	sb_fmt(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	sb_fmt(map, sizeof(map), "%d %u 1\n", KERN_SB_UID, (unsigned)outer_gid);
	return sb_write_file(path, map);
}

static const char *sb_signame(int sig)
{
	const char *s = sigabbrev_np(sig);

	return s ? s : "?";
}

/* Waits for the kernel and leaves with a status that says how it ended. Never returns. */
/*
 * Passes the kernel's log lines on to our stderr, at most KERN_SB_LOG_CAP bytes in all: the
 * kernel runs hostile code, which could otherwise flood the gateway's log. Returns false at EOF.
 */
static bool sb_relay_log(struct kern_sandbox *sb, int fd, size_t *relayed)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (*relayed < KERN_SB_LOG_CAP) {
		size_t room = KERN_SB_LOG_CAP - *relayed;
		size_t len = (size_t)n < room ? (size_t)n : room;

		if (write(sb->log_fd, buf, len) < 0) {
			/* the gateway's log is gone; keep draining */
		}
		*relayed += (size_t)n;
		if (*relayed >= KERN_SB_LOG_CAP)
			sb_log(sb, "\nthe kernel logged more than %d KiB; the rest is dropped",
			       KERN_SB_LOG_CAP >> 10);
	}
	return true;
}

static void sb_supervise(struct kern_sandbox *sb, struct sb_cgroup *cg, pid_t child, int log_rd)
{
	sigset_t set;
	int status = 0, sfd;
	struct rusage ru;
	char lim[32];
	size_t relayed = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGINT, SIG_IGN); /* an interrupt is for the kernel, which shares our group */
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	for (;;) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
		                      {.fd = log_rd, .events = POLLIN}};
		pid_t w = wait4(child, &status, WNOHANG, &ru);

		if (w == child)
			break;
		if ((w < 0 && errno != EINTR) || sfd < 0)
			break;
		if (poll(p, log_rd >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (p[1].revents && !sb_relay_log(sb, log_rd, &relayed)) {
			close(log_rd);
			log_rd = -1;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
			    si.ssi_signo != SIGCHLD)
				kill(child, SIGKILL);
		}
	}
	/* What the kernel logged last (why it stopped) still goes out. */
	while (log_rd >= 0 && fcntl(log_rd, F_SETFL, O_NONBLOCK) == 0 &&
	       sb_relay_log(sb, log_rd, &relayed) && errno != EAGAIN)
		;
	/* The kernel dies with the middle process (its parent-death signal); make sure of it and
	 * reap it, so that nothing of the sandbox outlives this process. */
	sb_cgroup_kill(cg);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;

	if (WIFEXITED(status)) {
		sb_cgroup_remove(cg);
		_exit(WEXITSTATUS(status));
	}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		             ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
		bool oom = sig == SIGKILL && sb_cgroup_oom(cg);

		sb_cgroup_remove(cg);
		if (oom) {
			kern_size_format(sb->memory, lim, sizeof(lim));
			sb_log(sb, "memory limit of %s exceeded: the kernel was killed", lim);
			_exit(KERN_EXIT_MEMORY);
		}
		if ((sig == SIGKILL || sig == SIGXCPU) && sb->cpu_time &&
		    cpu >= (double)sb->cpu_time) {
			sb_log(sb, "CPU time limit of %u s exceeded: the kernel was stopped",
			       (unsigned)sb->cpu_time);
			_exit(KERN_EXIT_CPU);
		}
		if (sig == SIGSYS) {
			sb_log(sb, "the kernel was killed by the seccomp filter");
			_exit(KERN_EXIT_SECCOMP);
		}
		if (sig != SIGKILL)
			sb_log(sb, "the kernel died from signal %d (SIG%s)", sig, sb_signame(sig));
		/* Die the same way, so that our parent sees what the kernel saw. */
		signal(sig, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		prctl(PR_SET_DUMPABLE, 0);
		kill(getpid(), sig);
		_exit(128 + sig);
	}
	sb_cgroup_remove(cg);
	_exit(KERN_EXIT_SANDBOX);
}

/* Names the namespace this host refuses, trying each in a throwaway child. */
static const char *sb_which_namespace(unsigned long want, int err)
{
	static const struct {
		unsigned long flag;
		enum kern_layer layer;
	} each[] = {
	        {CLONE_NEWUSER, KERN_LAYER_USERNS},     {CLONE_NEWPID, KERN_LAYER_PIDNS},
	        {CLONE_NEWNS, KERN_LAYER_MOUNTNS},      {CLONE_NEWNET, KERN_LAYER_NETNS},
	        {CLONE_NEWIPC, KERN_LAYER_IPCNS},       {CLONE_NEWUTS, KERN_LAYER_UTSNS},
	        {CLONE_NEWCGROUP, KERN_LAYER_CGROUPNS},
	};
	static char text[160];

	sb_fmt(text, sizeof(text), "its namespaces are not available here: %s", strerror(err));
	for (size_t i = 0; i < sizeof(each) / sizeof(each[0]); i++) {
		int status = 0;
		pid_t t;

		if (!(want & each[i].flag))
			continue;
		/* The others need the user namespace first when we are not root. */
		t = fork();
		if (t == 0)
			_exit(unshare((int)(each[i].flag |
			                    (each[i].flag == CLONE_NEWUSER || geteuid() == 0
			                             ? 0
			                             : CLONE_NEWUSER))) < 0
			              ? 1
			              : 0);
		if (t > 0 && waitpid(t, &status, 0) == t && WIFEXITED(status) &&
		    WEXITSTATUS(status)) {
			sb_fmt(text, sizeof(text), "its %s is not available here (%s)",
			       kern_layer_name(each[i].layer), strerror(err));
			break;
		}
	}
	return text;
}

/*
 * The middle process: makes the namespaces (a fork's child is single-threaded, as unshare of a
 * user namespace needs), then forks the kernel, which is pid 1 of the new pid namespace, and
 * passes on how it ended. Two pipes talk to the supervisor: `up` carries the namespace flags
 * that took, `down` the supervisor's go-ahead once the uid map is written.
 */
static int sb_middle(struct kern_sandbox *sb, unsigned long want, int up, int down, const int *keep,
                     size_t n_keep)
{
	unsigned long flags = want;
	int status, alive[2];
	pid_t kernel;
	char b;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* A memory limit counts 4 KiB pages: a transparent huge page would charge 2 MiB for one
	 * byte touched, and khugepaged would fill the thread stacks' reserve behind the limit. */
	if (sb->memory)
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	if (read(down, &b, 1) != 1) /* the cgroups hold us now (EOF: the supervisor died) */
		_exit(KERN_EXIT_SANDBOX);
	if (unshare((int)flags) < 0) {
		if (!sb->allow_weaker) {
			sb_log(sb,
			       "cannot start the %s profile: %s (--allow-weaker-sandbox keeps the "
			       "namespaces that work)",
			       kern_profile_name(sb->profile), sb_which_namespace(want, errno));
			_exit(KERN_EXIT_SANDBOX);
		}
		/* Keep what this host allows, one namespace at a time, the user namespace first. */
		flags = 0;
		for (unsigned long bit = CLONE_NEWUSER;; bit = 0) {
			static const unsigned long rest[] = {CLONE_NEWPID, CLONE_NEWNS,
			                                     CLONE_NEWNET, CLONE_NEWIPC,
			                                     CLONE_NEWUTS, CLONE_NEWCGROUP};

			if (bit && (want & bit) && unshare((int)bit) == 0)
				flags |= bit;
			for (size_t i = 0; !bit && i < sizeof(rest) / sizeof(rest[0]); i++)
				if ((want & rest[i]) && unshare((int)rest[i]) == 0)
					flags |= rest[i];
			if (!bit)
				break;
		}
	}
	if (write(up, &flags, sizeof(flags)) != (ssize_t)sizeof(flags) || read(down, &b, 1) != 1)
		_exit(KERN_EXIT_SANDBOX);
	close(up);
	close(down);

	if (pipe2(alive, O_CLOEXEC) < 0)
		_exit(KERN_EXIT_SANDBOX);
	if (sb->before_fork)
		sb->before_fork();
	kernel = fork();
	if (kernel == 0) {
		if (sb->after_fork_child)
			sb->after_fork_child();
		close(alive[1]);
		return sb_child(sb, flags, alive[0], keep, n_keep);
	}
	close(alive[0]); /* alive[1] stays open as long as this process lives */
	if (kernel < 0) {
		sb_log(sb, "cannot start the kernel process: %s", strerror(errno));
		_exit(KERN_EXIT_SANDBOX);
	}
	/* Only the kernel uses the descriptors; an interrupt is for it alone. */
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] != sb->log_fd && keep[i] > 2)
			close(keep[i]);
	signal(SIGINT, SIG_IGN);
	while (waitpid(kernel, &status, 0) < 0)
		if (errno != EINTR)
			_exit(KERN_EXIT_SANDBOX);
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	/* Die the same way, for the supervisor to read (a pid-1 kernel cannot pass it on). */
	signal(WTERMSIG(status), SIG_DFL);
	prctl(PR_SET_DUMPABLE, 0);
	kill(getpid(), WTERMSIG(status));
	_exit(128 + WTERMSIG(status));
}

int kern_sandbox_enter(struct kern_sandbox *sb, const int *keep, size_t n_keep)
{
	unsigned long want = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC |
	                     CLONE_NEWUTS | CLONE_NEWCGROUP | (sb->network ? 0 : CLONE_NEWNET);
	unsigned long flags = 0;
	struct sb_cgroup cg;
	int up[2] = {-1, -1}, down[2] = {-1, -1}, lg[2] = {-1, -1}, r;
	uint64_t pids_max = 0;
	pid_t middle;
	uid_t outer;

	if (sb->profile == KERN_PROFILE_NONE)
		return 0;
	/* The kernel's own tasks (main, output, heartbeat, control and ZeroMQ's two), its parent
	 * and a few for the interpreter; user code gets its processes and threads on top. */
	if (sb->processes || sb->threads)
		pids_max = 12 + sb_task_budget(sb);
	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0 || pipe2(lg, O_CLOEXEC) < 0) {
		r = -errno;
		for (int i = 0; i < 2; i++) {
			if (up[i] >= 0)
				close(up[i]);
			if (down[i] >= 0)
				close(down[i]);
		}
		return r;
	}
	sb_cgroup_setup(sb, &cg, pids_max);
	if (geteuid() == 0)
		setgroups(0, NULL); /* nothing of root's groups may follow the kernel */
	outer = geteuid() == 0 ? (uid_t)(KERN_SB_OUTER_UID_BASE + getpid()) : geteuid();
	/* The kernel comes back to us if the middle process dies first: we end after it. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	if (sb->before_fork)
		sb->before_fork();
	middle = fork();
	if (middle == 0) {
		if (sb->after_fork_child)
			sb->after_fork_child();
		close(up[0]);
		close(down[1]);
		close(lg[0]);
		/* Everything the sandbox says goes through the supervisor, never straight into
		 * the gateway's log: the log descriptor and, until the kernel captures them, 1
		 * and 2. Standard input is nothing. */
		if (dup3(lg[1], sb->log_fd, O_CLOEXEC) < 0 || dup2(lg[1], STDOUT_FILENO) < 0 ||
		    dup2(lg[1], STDERR_FILENO) < 0)
			_exit(KERN_EXIT_SANDBOX);
		close(lg[1]);
		r = open("/dev/null", O_RDONLY);
		if (r >= 0 && r != STDIN_FILENO) {
			dup2(r, STDIN_FILENO);
			close(r);
		}
		return sb_middle(sb, want, up[1], down[0], keep, n_keep);
	}
	if (sb->after_fork_parent)
		sb->after_fork_parent();
	close(up[1]);
	close(down[0]);
	close(lg[1]);
	if (middle < 0) {
		r = -errno;
		close(up[0]);
		close(down[1]);
		close(lg[0]);
		sb_cgroup_remove(&cg);
		return r;
	}
	if (sb_cgroup_attach(&cg, middle) < 0) {
		/* A cgroup reported active must hold the kernel: no kernel rather than a weaker
		 * one. */
		sb_log(sb, "cannot move the kernel into its cgroup: %s", strerror(errno));
		kill(middle, SIGKILL);
		waitpid(middle, NULL, 0);
		sb_cgroup_remove(&cg);
		_exit(KERN_EXIT_SANDBOX);
	}
	if (write(down[1], "c", 1) != 1 ||
	    read(up[0], &flags, sizeof(flags)) != (ssize_t)sizeof(flags)) {
		kill(middle, SIGKILL);
	} else if (flags & CLONE_NEWUSER) {
		r = sb_write_maps(middle, outer, geteuid() == 0 ? (gid_t)outer : getegid());
		if (r < 0) {
			sb_log(sb, "cannot write the kernel's uid map: %s", strerror(-r));
			kill(middle, SIGKILL);
		}
	}
	if (write(down[1], "g", 1) != 1)
		kill(middle, SIGKILL);
	close(up[0]);
	close(down[1]);
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] != sb->log_fd && keep[i] > 2)
			close(keep[i]);
	sb_supervise(sb, &cg, middle, lg[0]);
	return 0; /* not reached */
}

/* ---- the last step: rlimits over the kernel's own use, then seccomp ---- */

#include <asm/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>

#include <seccomp.h>

/* Calls every profile may make: computing, memory, time, signals to itself, files inside the
 * sandbox's own root, and talking on the sockets the kernel already holds. */
static const char *const sb_allowed[] = {
        "read",
        "write",
        "readv",
        "writev",
        "pread64",
        "pwrite64",
        "preadv",
        "pwritev",
        "preadv2",
        "pwritev2",
        "close",
        "close_range",
        "fstat",
        "stat",
        "lstat",
        "newfstatat",
        "statx",
        "lseek",
        "open",
        "openat",
        "openat2",
        "access",
        "faccessat",
        "faccessat2",
        "readlink",
        "readlinkat",
        "getdents",
        "getdents64",
        "getcwd",
        "chdir",
        "fchdir",
        "mkdir",
        "mkdirat",
        "rmdir",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "chmod",
        "fchmod",
        "fchmodat",
        "truncate",
        "ftruncate",
        "fsync",
        "fdatasync",
        "fallocate",
        "utimensat",
        "umask",
        "statfs",
        "fstatfs",
        "dup",
        "dup2",
        "dup3",
        "pipe",
        "pipe2",
        "sendfile",
        "copy_file_range",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "eventfd2",
        "munmap",
        "mremap",
        "madvise",
        "brk",
        "msync",
        "mincore",
        "futex",
        "futex_waitv",
        "set_robust_list",
        "get_robust_list",
        "rseq",
        "set_tid_address",
        "clock_gettime",
        "clock_getres",
        "clock_nanosleep",
        "nanosleep",
        "gettimeofday",
        "time",
        "getitimer",
        "setitimer",
        "alarm",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigsuspend",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "sigaltstack",
        "kill",
        "tgkill",
        "tkill",
        "getrandom",
        "getpid",
        "getppid",
        "gettid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getresuid",
        "getresgid",
        "getgroups",
        "getpgrp",
        "getpgid",
        "getsid",
        "uname",
        "sysinfo",
        "getrusage",
        "times",
        "getrlimit",
        "sched_yield",
        "sched_getaffinity",
        "sched_getparam",
        "sched_getscheduler",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "getpriority",
        "getcpu",
        "membarrier",
        "exit",
        "exit_group",
        "wait4",
        "waitid",
        "restart_syscall",
        "accept",
        "accept4",
        "recvfrom",
        "sendto",
        "recvmsg",
        "sendmsg",
        "recvmmsg",
        "sendmmsg",
        "getsockopt",
        "setsockopt",
        "getsockname",
        "getpeername",
        "shutdown",
};

/* With the profile's network: new sockets and connections. */
static const char *const sb_network[] = {"socket", "socketpair", "connect", "bind", "listen"};

static int sb_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                   const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a call on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, args);
}

/* What a filter depends on: one compiled program serves every kernel with the same key. */
struct sb_filter_key {
	bool strict, fork, exec, network;
};

static struct sb_filter_key sb_filter_key(const struct kern_sandbox *sb)
{
	struct sb_filter_key key = {
	        .strict = sb->profile == KERN_PROFILE_STRICT,
	        .fork = sb->processes > 1,
	        .exec = sb->profile == KERN_PROFILE_PERMISSIVE ||
	                sb->profile == KERN_PROFILE_CUSTOM,
	        .network = sb->network,
	};

	return key;
}

/* The filter for key, built but not loaded (NULL: out of memory or a rule refused, *r). */
static scmp_filter_ctx sb_seccomp_build(struct sb_filter_key key, int *out)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	const bool strict = key.strict, fork = key.fork, exec = key.exec;
	const uint64_t ns_flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
	                          CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWTIME;
	static const unsigned long ioctls[] = {TCGETS,  TIOCGWINSZ, FIONREAD,
	                                       FIONBIO, FIOCLEX,    FIONCLEX};
	static const int fcntls[] = {F_GETFD, F_SETFD,         F_GETFL,     F_SETFL,
	                             F_DUPFD, F_DUPFD_CLOEXEC, F_GETPIPE_SZ};
	static const int lock_fcntls[] = {F_GETLK,     F_SETLK,     F_SETLKW,
	                                  F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW};
	static const int prctls[] = {PR_SET_NAME,    PR_GET_NAME,         PR_GET_DUMPABLE,
	                             PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ};
	int r = 0;

	*out = -ENOMEM;
	if (!ctx)
		return NULL;
	/* Other architectures' calls (int 0x80, x32) are refused like any unknown call. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(EPERM));
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; r == 0 && i < sizeof(sb_allowed) / sizeof(sb_allowed[0]); i++)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, sb_allowed[i], 0, NULL);
	for (size_t i = 0; r == 0 && key.network && i < sizeof(sb_network) / sizeof(sb_network[0]);
	     i++)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, sb_network[i], 0, NULL);

	/* Memory: in strict, no new executable mappings (no loaded code, no shellcode). */
	if (r == 0 && strict) {
		struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "mmap", 1, &noexec);
		if (r == 0)
			r = sb_rule(ctx, SCMP_ACT_ALLOW, "mprotect", 1, &noexec);
		if (r == 0)
			r = sb_rule(ctx, SCMP_ACT_ALLOW, "pkey_mprotect", 1, &noexec);
	} else if (r == 0) {
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "mmap", 0, NULL);
		if (r == 0)
			r = sb_rule(ctx, SCMP_ACT_ALLOW, "mprotect", 0, NULL);
	}

	/*
	 * A thread may set the normal policy (SCHED_OTHER, priority 0) on itself or another of
	 * the sandbox's: every ZeroMQ thread does so first thing (pthread_setschedparam) and aborts
	 * when refused, and the filter reaches threads that are still starting. No other policy:
	 * nothing here is real-time, and SCHED_OTHER raises nothing without CAP_SYS_NICE.
	 */
	if (r == 0) {
		struct scmp_arg_cmp other = SCMP_A1(SCMP_CMP_EQ, SCHED_OTHER, 0);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "sched_setscheduler", 1, &other);
	}

	/* Threads always; processes when the profile has room for them; never new namespaces.
	 * clone3 hides its flags from seccomp: ENOSYS sends glibc back to clone. */
	if (r == 0) {
		struct scmp_arg_cmp a =
		        fork ? SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags, 0)
		             : SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags | CLONE_THREAD, CLONE_THREAD);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &a);
	}
	if (r == 0)
		r = sb_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	/* A connected pair inside the process reaches nobody; asyncio's loop needs one. */
	if (r == 0 && !key.network) {
		struct scmp_arg_cmp a = {
		        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_UNIX, .datum_b = 0};

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, &a);
	}
	if (r == 0 && fork)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "fork", 0, NULL);
	if (r == 0 && fork)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "vfork", 0, NULL);
	if (r == 0 && exec)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "execve", 0, NULL);
	if (r == 0 && exec)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "execveat", 0, NULL);
	/* A program exec'd sets up its thread-local storage before main. */
	for (int code = ARCH_SET_GS; r == 0 && exec && code <= ARCH_GET_GS; code++) {
		struct scmp_arg_cmp a = {
		        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (uint64_t)code, .datum_b = 0};

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "arch_prctl", 1, &a);
	}

	/* Descriptor and terminal controls that only look or set plain flags. */
	for (size_t i = 0; r == 0 && i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
		struct scmp_arg_cmp a = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffU, ioctls[i]);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &a);
	}
	for (size_t i = 0; r == 0 && i < sizeof(fcntls) / sizeof(fcntls[0]); i++) {
		struct scmp_arg_cmp a =
		        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffU, (unsigned)fcntls[i]);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "fcntl", 1, &a);
	}
	/* File locks (sqlite needs them) only outside strict: they reach files the host shares. */
	for (size_t i = 0; r == 0 && !strict && i < sizeof(lock_fcntls) / sizeof(lock_fcntls[0]);
	     i++) {
		struct scmp_arg_cmp a =
		        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffU, (unsigned)lock_fcntls[i]);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "fcntl", 1, &a);
	}
	if (r == 0 && !strict)
		r = sb_rule(ctx, SCMP_ACT_ALLOW, "flock", 0, NULL);
	for (size_t i = 0; r == 0 && i < sizeof(prctls) / sizeof(prctls[0]); i++) {
		struct scmp_arg_cmp a =
		        SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffU, (unsigned)prctls[i]);

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &a);
	}
	/* prlimit64 may read limits (new_limit NULL), never set them. */
	if (r == 0) {
		struct scmp_arg_cmp a = {.arg = 2, .op = SCMP_CMP_EQ, .datum_a = 0, .datum_b = 0};

		r = sb_rule(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, &a);
	}
	*out = r;
	if (r < 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Programs compiled ahead (kern_sandbox_precompile, in the zygote): libseccomp takes tens of
 * milliseconds to turn the rules into BPF, which every kernel would pay again.
 */
static struct {
	struct sb_filter_key key;
	struct sock_filter *code;
	unsigned short len;
} sb_compiled[8];
static size_t sb_n_compiled;

static int sb_seccomp(const struct kern_sandbox *sb)
{
	struct sb_filter_key key = sb_filter_key(sb);
	scmp_filter_ctx ctx;
	int r;

	for (size_t i = 0; i < sb_n_compiled; i++) {
		struct sock_fprog prog = {sb_compiled[i].len, sb_compiled[i].code};

		if (memcmp(&sb_compiled[i].key, &key, sizeof(key)) != 0)
			continue;
		/* What seccomp_load does with our attributes: all threads, no new privileges. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return -errno;
		return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
		               &prog) == 0
		               ? 0
		               : -errno;
	}
	ctx = sb_seccomp_build(key, &r);
	if (!ctx)
		return r;
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int kern_sandbox_precompile(const struct kern_sandbox *sb)
{
	struct sb_filter_key key = sb_filter_key(sb);
	scmp_filter_ctx ctx;
	struct stat st;
	void *code;
	int fd, r;

	for (size_t i = 0; i < sb_n_compiled; i++)
		if (memcmp(&sb_compiled[i].key, &key, sizeof(key)) == 0)
			return 0;
	if (sb_n_compiled == sizeof(sb_compiled) / sizeof(sb_compiled[0]))
		return -ENOSPC;
	ctx = sb_seccomp_build(key, &r);
	if (!ctx)
		return r;
	fd = memfd_create("sandcell-seccomp", MFD_CLOEXEC);
	r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) ||
	               st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -EINVAL;
	code = r == 0 ? malloc((size_t)st.st_size) : NULL;
	if (r == 0 && (!code || pread(fd, code, (size_t)st.st_size, 0) != st.st_size))
		r = code ? -EIO : -ENOMEM;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(code);
		return r;
	}
	sb_compiled[sb_n_compiled].key = key;
	sb_compiled[sb_n_compiled].code = code; /* kept for the life of the process */
	sb_compiled[sb_n_compiled].len =
	        (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	sb_n_compiled++;
	return 0;
}

static long sb_count_dir(const char *path, long *max_name)
{
	DIR *d = opendir(path);
	struct dirent *e;
	long n = 0;

	if (max_name)
		*max_name = -1;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		if (max_name && atol(e->d_name) > *max_name)
			*max_name = atol(e->d_name);
	}
	closedir(d);
	return n;
}

static uint64_t sb_vm_size(void)
{
	char text[4096];
	const char *p;

	if (sb_read_file("/proc/self/status", text, sizeof(text)) < 0 ||
	    !(p = strstr(text, "VmSize:")))
		return 0;
	return strtoull(p + 7, NULL, 10) << 10;
}

int kern_sandbox_lock(struct kern_sandbox *sb)
{
	struct rlimit rl;
	long max_fd = -1, tasks;
	int r;

	if (sb->profile == KERN_PROFILE_NONE)
		return 0;
	sb_count_dir("/proc/self/fd", &max_fd);
	tasks = sb_count_dir("/proc/self/task", NULL);
	r = 0;
	if (sb->open_files) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)(max_fd + 1 + (long)sb->open_files);
		r = setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
	}
	/* Per user inside our own user namespace: the kernel's tasks plus the profile's. */
	if (r == 0 && sb->active[KERN_LAYER_USERNS] && (sb->processes || sb->threads) &&
	    tasks > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)tasks + sb_task_budget(sb);
		r = setrlimit(RLIMIT_NPROC, &rl) < 0 ? -errno : 0;
	}
	if (r == 0 && sb->memory && !KERN_SB_ASAN) {
		rl.rlim_cur = rl.rlim_max = sb_vm_size() + sb->memory + KERN_SB_AS_SLACK;
		r = setrlimit(RLIMIT_AS, &rl) < 0 ? -errno : 0;
	}
	if (r < 0) {
		sb_set(sb, KERN_LAYER_RLIMITS, false, "setrlimit: %s", strerror(-r));
		if ((r = sb_require(sb, KERN_LAYER_RLIMITS, r)) < 0)
			return r;
	} else if (sb->active[KERN_LAYER_RLIMITS]) {
		sb_set(sb, KERN_LAYER_RLIMITS, true, "core 0, cpu, fsize, nofile, nproc, %s",
		       KERN_SB_ASAN ? "no address-space limit (sanitizer build)" : "as");
	}

	r = sb_seccomp(sb);
	sb_set(sb, KERN_LAYER_SECCOMP, r == 0, "%s",
	       r == 0 ? "allowlist, default EPERM, all threads" : strerror(-r));
	return sb_require(sb, KERN_LAYER_SECCOMP, r);
}

/* ---- --check-sandbox ---- */

struct sb_report {
	bool active[KERN_LAYER_COUNT];
	char detail[KERN_LAYER_COUNT][96];
	bool seccomp_denies; /* socket() gave EPERM under the filter */
	bool ran;
};

/* Runs one profile's sandbox for real in a throwaway child and reads back what held. */
static void sb_probe(const char *profile, struct sb_report *rep)
{
	int fds[2], devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid;

	memset(rep, 0, sizeof(*rep));
	if (devnull < 0 || pipe2(fds, O_CLOEXEC) < 0) {
		if (devnull >= 0)
			close(devnull);
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct kern_sandbox sb;
		int keep[2] = {fds[1], devnull};

		close(fds[0]);
		kern_sandbox_defaults(&sb, profile);
		sb.allow_weaker = true; /* go on past a missing layer, to report the others */
		sb.log_fd = devnull;
		if (kern_sandbox_enter(&sb, keep, 2) < 0)
			_exit(1);
		kern_sandbox_lock(&sb);
		memcpy(rep->active, sb.active, sizeof(rep->active));
		memcpy(rep->detail, sb.detail, sizeof(rep->detail));
		if (sb.active[KERN_LAYER_SECCOMP]) {
			long s = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);

			rep->seccomp_denies = s < 0 && errno == EPERM;
		}
		rep->ran = true;
		if (write(fds[1], rep, sizeof(*rep)) != (ssize_t)sizeof(*rep))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	close(devnull);
	if (pid > 0) {
		size_t got = 0;

		while (got < sizeof(*rep)) {
			ssize_t n = read(fds[0], (char *)rep + got, sizeof(*rep) - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != sizeof(*rep))
			memset(rep, 0, sizeof(*rep));
		waitpid(pid, NULL, 0);
	}
	close(fds[0]);
	if (rep->active[KERN_LAYER_SECCOMP] && !rep->seccomp_denies) {
		rep->active[KERN_LAYER_SECCOMP] = false;
		sb_fmt(rep->detail[KERN_LAYER_SECCOMP], sizeof(rep->detail[0]),
		       "loaded, but socket() was not refused");
	}
}

static void sb_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

int kern_sandbox_check(FILE *out, bool json, const char *only_profile)
{
	static const char *const profiles[] = {"strict", "moderate", "permissive"};
	struct sb_report rep[3];
	struct utsname un;
	struct sb_cgroup cg;
	char mnt[PATH_MAX];
	const char *cgv;
	bool all_ok = true;
	size_t n = 0;

	uname(&un);
	cgv = sb_cgroup_mount("memory", mnt, sizeof(mnt)) == 0 ? "v1"
	      : sb_cgroup_mount(NULL, mnt, sizeof(mnt)) == 0   ? "v2"
	                                                       : "none";
	(void)cg;
	for (size_t i = 0; i < 3; i++) {
		if (only_profile && strcmp(only_profile, profiles[i]) != 0) {
			rep[i].ran = false;
			continue;
		}
		sb_probe(profiles[i], &rep[i]);
		n++;
	}
	if (only_profile && n == 0)
		return 2;

	if (json) {
		bool first = true;

		fprintf(out, "{\"host\": {\"kernel\": ");
		sb_json_str(out, un.release);
		fprintf(out, ", \"machine\": ");
		sb_json_str(out, un.machine);
		fprintf(out, ", \"root\": %s, \"cgroup\": \"%s\", \"sanitizer_build\": %s}",
		        geteuid() == 0 ? "true" : "false", cgv, KERN_SB_ASAN ? "true" : "false");
		fprintf(out, ", \"layers\": [");
		/* The layers as the strictest profile that ran saw them. */
		for (size_t i = 0; i < 3; i++) {
			if (!rep[i].ran && !(only_profile == NULL))
				continue;
			if (!rep[i].ran)
				continue;
			for (int l = 0; l < KERN_LAYER_COUNT; l++) {
				fprintf(out, "%s{\"name\": ", l ? ", " : "");
				sb_json_str(out, kern_layer_name((enum kern_layer)l));
				fprintf(out, ", \"active\": %s, \"detail\": ",
				        rep[i].active[l] ? "true" : "false");
				sb_json_str(out, rep[i].detail[l]);
				fputc('}', out);
			}
			break;
		}
		fprintf(out, "], \"profiles\": {");
		for (size_t i = 0; i < 3; i++) {
			struct kern_sandbox sb;
			bool ok = rep[i].ran, firstm = true;

			if (only_profile && strcmp(only_profile, profiles[i]) != 0)
				continue;
			kern_sandbox_defaults(&sb, profiles[i]);
			fprintf(out, "%s\"%s\": {\"missing\": [", first ? "" : ", ", profiles[i]);
			first = false;
			for (int l = 0; l < KERN_LAYER_COUNT; l++) {
				if (rep[i].active[l] ||
				    !kern_sandbox_needs(&sb, (enum kern_layer)l))
					continue;
				ok = false;
				fprintf(out, "%s", firstm ? "" : ", ");
				sb_json_str(out, kern_layer_name((enum kern_layer)l));
				firstm = false;
			}
			fprintf(out, "], \"ok\": %s}", ok ? "true" : "false");
			all_ok = all_ok && ok;
		}
		fprintf(out, "}}\n");
		return all_ok ? 0 : 1;
	}

	fprintf(out, "sandcell sandbox check on Linux %s (%s), %s, cgroups %s%s\n\n", un.release,
	        un.machine, geteuid() == 0 ? "root" : "not root", cgv,
	        KERN_SB_ASAN ? ", sanitizer build" : "");
	for (size_t i = 0; i < 3; i++) {
		struct kern_sandbox sb;
		bool ok = rep[i].ran;

		if (only_profile && strcmp(only_profile, profiles[i]) != 0)
			continue;
		kern_sandbox_defaults(&sb, profiles[i]);
		fprintf(out, "profile %s\n", profiles[i]);
		for (int l = 0; l < KERN_LAYER_COUNT; l++) {
			bool need = kern_sandbox_needs(&sb, (enum kern_layer)l);

			fprintf(out, "  %-28s %-8s %s%s\n", kern_layer_name((enum kern_layer)l),
			        rep[i].active[l] ? "active"
			        : need           ? "MISSING"
			                         : "off",
			        rep[i].detail[l], need ? "" : " (optional)");
			if (need && !rep[i].active[l])
				ok = false;
		}
		fprintf(out, "  => %s\n\n",
		        ok ? "ok" : "cannot run: start with --allow-weaker-sandbox to accept that");
		all_ok = all_ok && ok;
	}
	return all_ok ? 0 : 1;
}
