/*
 * What the sandbox can do on this host: the kernel's own report (`sandcell-kernel
 * --check-sandbox --json`, run once at start), combined with each profile's effective limits
 * for GET /api/sandbox and `sandcell --check-sandbox`, and the verdict that lets a profile
 * start kernels or not. The caller owns the report (a jansson reference); nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "gw_config.h"

#define GW_SANDBOX_OUTPUT_MAX ((size_t)1 << 20) /* bytes of report accepted from the kernel */
#define GW_SANDBOX_TIMEOUT    10.0              /* seconds the check may take */

/*
 * Runs `binary --check-sandbox --json` and returns its report (new reference): a JSON object
 * with "layers" and "profiles". The kernel exits 0 or 1 (some profile cannot run); anything
 * else, a timeout, more than GW_SANDBOX_OUTPUT_MAX bytes or output that is not such an object
 * gives NULL with why (the status and the kernel's first line on stderr).
 */
json_t *gw_sandbox_probe(const char *binary, double timeout, char *why, size_t why_len);

/*
 * Whether profile kind can start kernels according to report (borrowed; NULL = no report,
 * then the kernel decides for itself at launch: true). When not, missing gets the layers it
 * lacks, comma-separated. custom is judged as the report's "custom" entry, else "moderate".
 */
bool gw_sandbox_profile_ok(const json_t *report, enum gw_profile_kind kind, char *missing,
                           size_t missing_len);

/*
 * The model of GET /api/sandbox (new reference): {"host", "layers", "profiles": {NAME: {"ok",
 * "missing", "kernelspec", "profile", "limits", "network", "read_only", "allow_import",
 * "block_import"}}, "default_profile", "allow_weaker_sandbox"} plus "error" when there is no
 * report (then "ok" is null). report and error are borrowed and may be NULL.
 */
json_t *gw_sandbox_model(const struct gw_config *cfg, const json_t *report, const char *error);

/* True when every profile of a model is ok: the exit status 0 of --check-sandbox. */
bool gw_sandbox_model_ok(const json_t *model);

/* Prints a model as a table for people. */
void gw_sandbox_print(FILE *out, const json_t *model);
