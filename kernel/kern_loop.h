/* The main thread's shell loop (see kern_loop.c). */
#pragma once

#include "kern.h"

/* Serves the shell channel until shutdown. Call with the GIL held. */
void kern_loop_run(struct kern *k);
