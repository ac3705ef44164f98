/*
 * Identifiers and timestamps for message headers: random UUIDs (version 4) and ISO-8601 UTC
 * dates with microseconds, the format Jupyter clients parse.
 */
#pragma once

#include <stddef.h>

#define PROTO_UUID_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define PROTO_DATE_LEN 27 /* "2026-11-26T09:30:27.123456Z" */

/* Writes a random version-4 UUID and a NUL. Returns 0 or -errno if no randomness was had. */
int proto_id_uuid(char out[PROTO_UUID_LEN + 1]);

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.ffffffZ" and a NUL. */
void proto_id_date_now(char out[PROTO_DATE_LEN + 1]);
