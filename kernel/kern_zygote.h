/*
 * The zygote (`sandcell-kernel --zygote FD`): one warm interpreter that forks the gateway's
 * kernels, so that a kernel costs a fork and its sandbox instead of an interpreter start.
 */
#pragma once

#include "kern.h"

/*
 * Serves the gateway's requests on the SOCK_SEQPACKET socket sock. In the zygote it never
 * returns but on a failure to start (-errno, logged): it exits when the gateway hangs up. In
 * each kernel it forks it returns 0 with the kernel's command line in *argc and *argv (owned
 * by the kernel for its life), with stderr in place, no other descriptor above 2 open and a
 * session of its own. Call with the interpreter started and the GIL held, with one thread.
 */
/*
 * Writes the n arguments args over this process's command line (argc, argv: main's), as far as
 * its room goes: what /proc/PID/cmdline and ps show.
 */
void kern_zygote_title(int argc, char **argv, int n, const char *const *args);

int kern_zygote_serve(struct kern *k, int sock, int *argc, char ***argv);
