/*
 * The embedded interpreter: the only part of the kernel that includes Python.h. It owns the
 * interpreter; the main thread holds the GIL except while it waits (kern_python_unlock).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kern.h"

struct kern_sandbox;

/*
 * Starts CPython with the `_sandcell` builtin module and the frozen helper modules and imports
 * sandcell_kernel. The caller's thread holds the GIL afterwards. Returns 0 or -errno (logged).
 */
int kern_python_start(struct kern *k);

/* Makes k the kernel of an interpreter started for another (the zygote's fork). */
void kern_python_attach(struct kern *k);

/*
 * In the zygote: imports what every kernel's setup imports (the kernel's modules, IPython's
 * display when installed) and maps the extension modules of sandcell_policy.PRELOAD, so that
 * the forks find them loaded. Returns 0 or -errno (logged).
 */
int kern_python_warm(struct kern *k);

/*
 * Runs sandcell_kernel.setup(): the kernel's hooks and, unless sb is NULL or of profile none,
 * the sandbox profile's import policy and limits. Call on the main thread once the sockets and
 * the output thread are up. Returns 0 or -errno (details logged).
 */
int kern_python_setup(struct kern *k, bool shim_ipython, const struct kern_sandbox *sb);

/*
 * Loads the extension modules a profile without new executable mappings may import later
 * (sandcell_policy.PRELOAD), without importing them. Returns 0 or -errno.
 */
int kern_python_preload(struct kern *k);

/* Around a fork of a running interpreter (kern_sandbox_enter's hooks). */
void kern_python_before_fork(void);
void kern_python_after_fork_parent(void);
void kern_python_after_fork_child(void);

/*
 * Under a memory limit: keeps `bytes` of address space in reserve, freed by the first
 * allocation Python is refused so that the MemoryError can still be raised and answered, and
 * mapped again before a later request. Call once, holding the GIL, before kern_sandbox_lock.
 */
void kern_python_reserve(size_t bytes);

/*
 * Passes one request to sandcell_kernel.handle(). Returns the reply content as owned JSON text,
 * or NULL when the request has no reply. Never fails: a Python failure becomes an error reply.
 */
char *kern_python_handle(struct kern *k, const char *msg_type, const char *content);

/* The execution count of the last stored execute (0 before any). */
long kern_python_execution_count(void);

/* Releases the GIL; returns the state to give back to kern_python_lock(). */
void *kern_python_unlock(void);
void kern_python_lock(void *state);

/* Runs pending signal handlers and forgets a KeyboardInterrupt that arrived while idle. */
void kern_python_discard_interrupt(void);

/* "3.11.2" */
const char *kern_python_version(void);
