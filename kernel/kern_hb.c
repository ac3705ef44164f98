/*
 * Heartbeat: a ROUTER socket that echoes every message to its sender, on its own thread so that
 * it answers whatever Python is doing. The thread owns k->hb until the context is shut down.
 */
#include <errno.h>

#include <zmq.h>

#include "kern.h"

static void *kern_hb_main(void *arg)
{
	struct kern *k = arg;

	/* A proxy from the socket to itself sends each message back to its identity. */
	zmq_proxy(k->hb, k->hb, NULL);
	zmq_close(k->hb);
	k->hb = NULL;
	return NULL;
}

int kern_hb_start(struct kern *k)
{
	int r = pthread_create(&k->hb_thread, NULL, kern_hb_main, k);

	if (r)
		return -r;
	k->hb_started = true;
	return 0;
}
