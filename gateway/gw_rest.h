/* The REST API (see gw_rest.c). */
#pragma once

#include "gw_server.h"

/* Handles one authenticated request whose body (if any) is complete. */
void gw_rest_handle(struct gw_server *srv, struct gw_http *h);

/* The kernelspec model of the kernel name (new reference), NULL when unknown. */
json_t *gw_rest_kernelspec(const struct gw_server *srv, const char *name);
