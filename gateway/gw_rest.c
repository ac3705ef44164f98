/*
 * Jupyter Server's kernel REST API: /api, /api/kernelspecs, /api/kernels and /api/sessions,
 * with its models, status codes and Location headers, and a JSON {"message"} for every
 * failure; and sandcell's own /api/sandbox.
 */
#include "gw_rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_kernel.h"
#include "gw_sandbox.h"
#include "gw_task.h"

/* Splits "a/b/c" into at most n segments in place; returns how many. */
static size_t gw_rest_split(char *path, char **seg, size_t n)
{
	size_t count = 0;
	char *save = NULL;

	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (count == n)
			return n + 1;
		seg[count++] = t;
	}
	return count;
}

/* The kernel's command line as a JSON array of strings (new reference), or NULL. */
static json_t *gw_rest_argv(const struct gw_server *srv, const struct gw_profile *p)
{
	char **argv = gw_profile_argv(p, srv->kernel_binary, "{connection_file}",
	                              srv->cfg->allow_weaker_sandbox);
	json_t *a = argv ? json_array() : NULL;

	for (size_t i = 0; a && argv[i]; i++) {
		if (json_array_append_new(a, json_string(argv[i])) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	gw_profile_argv_free(argv);
	return a;
}

json_t *gw_rest_kernelspec(const struct gw_server *srv, const char *name)
{
	int kind = gw_config_kernel_profile(srv->cfg, name);
	const struct gw_profile *p;
	json_t *sandcell;
	char display[96];

	if (kind < 0)
		return NULL;
	p = &srv->cfg->profiles[kind];
	/* The plain names run the default profile; the others say which profile they are. */
	if (!strncmp(name, "sandcell-", 9))
		snprintf(display, sizeof(display), "Python 3 (sandcell, %s)",
		         gw_profile_name(p->kind));
	else
		snprintf(display, sizeof(display), "Python 3 (sandcell)");
	sandcell = gw_profile_json(p);
	if (sandcell)
		json_object_set_new(
		        sandcell, "available",
		        json_boolean(srv->cfg->allow_weaker_sandbox ||
		                     gw_sandbox_profile_ok(srv->sandbox, p->kind, NULL, 0)));
	return json_pack("{s:s, s:{s:o, s:s, s:s, s:s, s:{}, s:{s:s, s:o}}, s:{}}", "name", name,
	                 "spec", "argv", gw_rest_argv(srv, p), "display_name", display, "language",
	                 "python", "interrupt_mode", "signal", "env", "metadata",
	                 "sandcell_version", GW_VERSION, "sandcell", sandcell, "resources");
}

/* Parses the body as a JSON object; answers 400 and returns NULL when it is not one. */
static json_t *gw_rest_body(struct gw_http *h, bool required)
{
	json_error_t jerr;
	json_t *j;

	if (!h->body_len) {
		if (required) {
			gw_http_error(h, 400, "a JSON body is required");
			return NULL;
		}
		return json_object();
	}
	j = json_loadb((const char *)h->body, h->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		gw_http_error(h, 400, "the body is not valid JSON: %s (line %d, column %d)",
		              jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		gw_http_error(h, 400, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Reads an optional string field; answers 400 when it has another type. */
static bool gw_rest_opt_string(struct gw_http *h, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		gw_http_error(h, 400, "\"%s\" must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/*
 * Checks "env" (Jupyter servers in gateway mode send KERNEL_* variables): an object of strings.
 * The values are not passed to kernels yet: the sandbox decides what a kernel may see.
 */
static bool gw_rest_env_ok(struct gw_http *h, json_t *body)
{
	json_t *env = json_object_get(body, "env"), *v;
	const char *key;

	if (!env || json_is_null(env))
		return true;
	if (!json_is_object(env)) {
		gw_http_error(h, 400, "\"env\" must be an object of strings");
		return false;
	}
	json_object_foreach(env, key, v) {
		if (!json_is_string(v)) {
			gw_http_error(h, 400, "\"env\": the value of %s must be a string", key);
			return false;
		}
	}
	return true;
}

/* Starts a kernel for a request, answering the errors; the caller then waits on it. */
static struct gw_kernel *gw_rest_start_kernel(struct gw_server *srv, struct gw_http *h,
                                              const char *name)
{
	struct proto_error err = {{0}};
	struct gw_kernel *k;
	int r = gw_kernel_start(srv, name ? name : srv->cfg->default_kernel, NULL, &k, &err);

	if (r == -ENOENT)
		gw_http_error(h, 404, "%s", err.text);
	else if (r == -EBUSY || r == -EPERM)
		gw_http_error(h, 503, "%s", err.text);
	else if (r == -EINVAL)
		gw_http_error(h, 400, "%s", err.text);
	else if (r < 0)
		gw_http_error(h, 500, "%s", err.text);
	return r < 0 ? NULL : k;
}

/*
 * A kernel's model plus what its processes use now, for a resource meter:
 * "sandcell_usage": {"cpu_time": s, "memory_bytes": n, "memory_base_bytes": n,
 * "memory_limit_bytes": n|null, "cpu_time_limit": s|null}; the limit counts what the code
 * adds to memory_base_bytes, the interpreter's size when it became ready. The memory is the
 * resident size of the largest process (the interpreter; a sum would count the pages a forked
 * kernel shares with its parents once per process). Only on GET of one kernel: the list stays
 * cheap.
 */
static json_t *gw_rest_kernel_with_usage(struct gw_kernel *k)
{
	json_t *model = gw_kernel_model(k), *usage;
	double cpu = 0;
	size_t sum = 0, rss = 0;

	if (!model)
		return NULL;
	if (k->pid > 0)
		gw_task_proc_usage(k->pid, &cpu, &sum, &rss);
	usage = json_pack(
	        "{s:f, s:I, s:I, s:o, s:o}", "cpu_time", cpu, "memory_bytes", (json_int_t)rss,
	        "memory_base_bytes", (json_int_t)k->rss_base, "memory_limit_bytes",
	        k->profile.memory ? json_integer((json_int_t)k->profile.memory) : json_null(),
	        "cpu_time_limit",
	        k->profile.cpu_time ? json_integer(k->profile.cpu_time) : json_null());
	json_object_set_new(model, "sandcell_usage", usage);
	return model;
}

static void gw_rest_kernels(struct gw_server *srv, struct gw_http *h, char **seg, size_t n)
{
	struct gw_kernel *k;
	const char *m = h->method;

	if (n == 2) { /* api/kernels */
		if (!strcmp(m, "GET")) {
			json_t *list = json_array();

			for (k = srv->kernels; k; k = k->next)
				if (!k->pooled)
					json_array_append_new(list, gw_kernel_model(k));
			gw_http_respond(h, 200, list);
		} else if (!strcmp(m, "POST")) {
			json_t *body = gw_rest_body(h, false);
			const char *name;

			if (!body)
				return;
			if (gw_rest_opt_string(h, body, "name", &name) && gw_rest_env_ok(h, body) &&
			    (k = gw_rest_start_kernel(srv, h, name)))
				gw_http_wait(srv, h, k, GW_WAIT_START);
			json_decref(body);
		} else {
			gw_http_error(h, 405, "%s is not allowed on /api/kernels", m);
		}
		return;
	}
	k = gw_kernel_find(srv, seg[2]);
	if (!k || k->deleting) {
		gw_http_error(h, 404, "Kernel does not exist: %s", seg[2]);
		return;
	}
	if (n == 3) {
		if (!strcmp(m, "GET")) {
			gw_http_respond(h, 200, gw_rest_kernel_with_usage(k));
		} else if (!strcmp(m, "DELETE")) {
			gw_http_wait(srv, h, k, GW_WAIT_DELETE);
			gw_kernel_shutdown(k); /* may answer at once and free k */
		} else {
			gw_http_error(h, 405, "%s is not allowed on a kernel", m);
		}
		return;
	}
	if (n == 4 && !strcmp(seg[3], "interrupt")) {
		if (strcmp(m, "POST") != 0) {
			gw_http_error(h, 405, "use POST to interrupt");
			return;
		}
		gw_kernel_interrupt(k);
		gw_http_respond(h, 204, NULL);
		return;
	}
	if (n == 4 && !strcmp(seg[3], "restart")) {
		if (strcmp(m, "POST") != 0) {
			gw_http_error(h, 405, "use POST to restart");
			return;
		}
		if (k->state == GW_KERNEL_STARTING || k->restarting_manual) {
			gw_http_wait(srv, h, k, GW_WAIT_RESTART);
			return;
		}
		gw_http_wait(srv, h, k, GW_WAIT_RESTART);
		gw_kernel_restart(k);
		return;
	}
	if (n == 4 && !strcmp(seg[3], "channels")) {
		gw_http_error(h, 400, "this path takes a WebSocket upgrade");
		return;
	}
	gw_http_error(h, 404, "not found: /%s", h->path);
}

/* ---- sessions ---- */

static json_t *gw_rest_session_model(const struct gw_session *s)
{
	json_t *kernel = s->kernel ? gw_kernel_model(s->kernel) : json_null();

	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "id", s->id, "path", s->path,
	                 "name", s->name, "type", s->type, "kernel", kernel, "notebook", "path",
	                 s->path, "name", s->name);
}

static struct gw_session *gw_rest_session_find(struct gw_server *srv, const char *id)
{
	for (struct gw_session *s = srv->sessions; s; s = s->next)
		if (!strcmp(s->id, id))
			return s;
	return NULL;
}

static void gw_rest_session_free(struct gw_server *srv, struct gw_session *s)
{
	for (struct gw_session **pp = &srv->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	free(s->path);
	free(s->name);
	free(s->type);
	free(s);
}

static bool gw_rest_set(char **dst, const char *v)
{
	char *copy;

	if (!v)
		return true;
	copy = strdup(v);
	if (!copy)
		return false;
	free(*dst);
	*dst = copy;
	return true;
}

/* Reads kernel {id?, name?} of a session request; answers 400/404 when wrong. */
static bool gw_rest_session_kernel(struct gw_server *srv, struct gw_http *h, json_t *body,
                                   const char **kid, const char **kname)
{
	json_t *kobj = json_object_get(body, "kernel");

	*kid = *kname = NULL;
	if (!kobj || json_is_null(kobj))
		return true;
	if (!json_is_object(kobj)) {
		gw_http_error(h, 400, "\"kernel\" must be an object");
		return false;
	}
	if (!gw_rest_opt_string(h, kobj, "id", kid) || !gw_rest_opt_string(h, kobj, "name", kname))
		return false;
	if (*kid && !gw_kernel_find(srv, *kid)) {
		gw_http_error(h, 404, "Kernel does not exist: %s", *kid);
		return false;
	}
	return true;
}

static void gw_rest_sessions_post(struct gw_server *srv, struct gw_http *h)
{
	json_t *body = gw_rest_body(h, true);
	const char *path, *name, *type, *kid, *kname;
	struct gw_session *s;
	struct gw_kernel *k;

	if (!body)
		return;
	if (!gw_rest_opt_string(h, body, "path", &path) ||
	    !gw_rest_opt_string(h, body, "name", &name) ||
	    !gw_rest_opt_string(h, body, "type", &type) ||
	    !gw_rest_session_kernel(srv, h, body, &kid, &kname))
		goto out;
	if (!path || !type) {
		gw_http_error(h, 400, "\"path\" and \"type\" are required");
		goto out;
	}
	for (s = srv->sessions; s; s = s->next) {
		if (!strcmp(s->path, path) && s->kernel) {
			gw_http_respond(h, 201, gw_rest_session_model(s));
			goto out;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s || proto_id_uuid(s->id) < 0 || !gw_rest_set(&s->path, path) ||
	    !gw_rest_set(&s->name, name ? name : "") ||
	    !gw_rest_set(&s->type, type ? type : "notebook")) {
		if (s) {
			free(s->path);
			free(s->name);
			free(s->type);
		}
		free(s);
		gw_http_error(h, 500, "out of memory");
		goto out;
	}
	s->next = srv->sessions;
	srv->sessions = s;
	snprintf(h->location, sizeof(h->location), "%sapi/sessions/%s", srv->cfg->base_url, s->id);
	if (kid) {
		s->kernel = gw_kernel_find(srv, kid);
		gw_http_respond(h, 201, gw_rest_session_model(s));
		goto out;
	}
	k = gw_rest_start_kernel(srv, h, kname);
	if (!k) {
		gw_rest_session_free(srv, s);
		goto out;
	}
	s->kernel = k;
	h->wait_session = s;
	gw_http_wait(srv, h, k, GW_WAIT_START);
out:
	json_decref(body);
}

static void gw_rest_sessions(struct gw_server *srv, struct gw_http *h, char **seg, size_t n)
{
	const char *m = h->method;
	struct gw_session *s;

	if (n == 2) {
		if (!strcmp(m, "GET")) {
			json_t *list = json_array();

			for (s = srv->sessions; s; s = s->next)
				json_array_append_new(list, gw_rest_session_model(s));
			gw_http_respond(h, 200, list);
		} else if (!strcmp(m, "POST")) {
			gw_rest_sessions_post(srv, h);
		} else {
			gw_http_error(h, 405, "%s is not allowed on /api/sessions", m);
		}
		return;
	}
	s = n == 3 ? gw_rest_session_find(srv, seg[2]) : NULL;
	if (!s) {
		gw_http_error(h, 404, "Session not found: %s", n >= 3 ? seg[2] : "");
		return;
	}
	if (!strcmp(m, "GET")) {
		gw_http_respond(h, 200, gw_rest_session_model(s));
	} else if (!strcmp(m, "DELETE")) {
		struct gw_kernel *k = s->kernel;

		gw_rest_session_free(srv, s);
		if (k) {
			gw_http_wait(srv, h, k, GW_WAIT_DELETE);
			gw_kernel_shutdown(k);
		} else {
			gw_http_respond(h, 204, NULL);
		}
	} else if (!strcmp(m, "PATCH")) {
		json_t *body = gw_rest_body(h, true);
		const char *path, *name, *type, *kid, *kname;

		if (!body)
			return;
		if (gw_rest_opt_string(h, body, "path", &path) &&
		    gw_rest_opt_string(h, body, "name", &name) &&
		    gw_rest_opt_string(h, body, "type", &type) &&
		    gw_rest_session_kernel(srv, h, body, &kid, &kname)) {
			if (!gw_rest_set(&s->path, path) || !gw_rest_set(&s->name, name) ||
			    !gw_rest_set(&s->type, type)) {
				gw_http_error(h, 500, "out of memory");
			} else if (kid) {
				s->kernel = gw_kernel_find(srv, kid);
				gw_http_respond(h, 200, gw_rest_session_model(s));
			} else if (kname && (!s->kernel || strcmp(kname, s->kernel->name))) {
				struct gw_kernel *old = s->kernel, *k;

				k = gw_rest_start_kernel(srv, h, kname);
				if (k) {
					s->kernel = k;
					if (old)
						gw_kernel_shutdown(old);
					h->wait_session = s;
					h->status = 200;
					gw_http_wait(srv, h, k, GW_WAIT_START);
				}
			} else {
				gw_http_respond(h, 200, gw_rest_session_model(s));
			}
		}
		json_decref(body);
	} else {
		gw_http_error(h, 405, "%s is not allowed on a session", m);
	}
}

void gw_rest_handle(struct gw_server *srv, struct gw_http *h)
{
	char path[sizeof(h->path)], *seg[8];
	size_t n;

	snprintf(path, sizeof(path), "%s", h->path);
	n = gw_rest_split(path, seg, 6);
	if (n >= 2 && n <= 3 && !strcmp(seg[0], "python")) {
		static const char *const types[] = {"execute", "execute-file", "interactive",
		                                    "validate", "batch"};

		for (int i = 0; n == 2 && i < 5; i++) {
			if (!strcmp(seg[1], types[i])) {
				gw_task_http(srv, h, i);
				return;
			}
		}
		gw_task_rest(srv, h, seg, n);
		return;
	}
	if (n == 0 || strcmp(seg[0], "api") != 0 || n > 5) {
		gw_http_error(h, 404, "not found: /%s", h->path);
		return;
	}
	if (n == 1) {
		if (strcmp(h->method, "GET") != 0)
			gw_http_error(h, 405, "use GET on /api");
		else
			gw_http_respond(h, 200,
			                json_pack("{s:s, s:s}", "version", GW_VERSION,
			                          "implementation", "sandcell"));
		return;
	}
	if (!strcmp(seg[1], "kernels")) {
		gw_rest_kernels(srv, h, seg, n);
	} else if (!strcmp(seg[1], "sessions")) {
		gw_rest_sessions(srv, h, seg, n);
	} else if (!strcmp(seg[1], "sandbox") && n == 2) {
		if (strcmp(h->method, "GET") != 0)
			gw_http_error(h, 405, "use GET on /api/sandbox");
		else
			gw_http_respond(
			        h, 200,
			        gw_sandbox_model(srv->cfg, srv->sandbox, srv->sandbox_error));
	} else if (!strcmp(seg[1], "kernelspecs") && n <= 3) {
		if (strcmp(h->method, "GET") != 0) {
			gw_http_error(h, 405, "use GET on kernelspecs");
		} else if (n == 2) {
			const char *names[GW_CONFIG_KERNEL_NAMES];
			size_t count = gw_config_kernel_names(srv->cfg, names);
			json_t *specs = json_object();

			for (size_t i = 0; i < count; i++)
				json_object_set_new(specs, names[i],
				                    gw_rest_kernelspec(srv, names[i]));
			gw_http_respond(h, 200,
			                json_pack("{s:s, s:o}", "default", srv->cfg->default_kernel,
			                          "kernelspecs", specs));
		} else {
			json_t *spec = gw_rest_kernelspec(srv, seg[2]);

			if (spec)
				gw_http_respond(h, 200, spec);
			else
				gw_http_error(h, 404, "Kernel spec %s not found", seg[2]);
		}
	} else {
		gw_http_error(h, 404, "not found: /%s", h->path);
	}
}
