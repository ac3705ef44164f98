/*
 * sandcell: the gateway. main() owns the configuration and the server: it reads the settings,
 * finds the kernel binary, asks it what sandbox this host allows (and answers --check-sandbox
 * with that), makes a token when none is given, prints one line when it listens and runs the
 * loop until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "gw.h"
#include "gw_config.h"
#include "gw_sandbox.h"
#include "gw_server.h"

extern char **environ;

/* Finds sandcell-kernel: configured, next to us (build tree or install), or on PATH. */
static int gw_find_kernel(const struct gw_config *cfg, char *out, size_t len)
{
	char self[4096], dir[4096];
	ssize_t n;
	static const char *const rel[2] = {"../kernel/sandcell-kernel", "sandcell-kernel"};
	const char *path = getenv("PATH");

	if (cfg->kernel_binary) {
		snprintf(out, len, "%s", cfg->kernel_binary);
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		for (int i = 0; i < 2; i++) {
			char cand[4200];

			snprintf(cand, sizeof(cand), "%s/%s", dir, rel[i]);
			if (access(cand, X_OK) == 0 && realpath(cand, out))
				return 0;
		}
	}
	for (const char *p = path; p && *p;) {
		const char *colon = strchr(p, ':');
		size_t l = colon ? (size_t)(colon - p) : strlen(p);

		snprintf(out, len, "%.*s/sandcell-kernel", (int)l, p);
		if (l && access(out, X_OK) == 0)
			return 0;
		p = colon ? colon + 1 : NULL;
	}
	return -ENOENT;
}

static int gw_make_token(struct gw_config *cfg)
{
	unsigned char raw[24];
	char hex[49];

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	free(cfg->token);
	cfg->token = strdup(hex);
	return cfg->token ? 0 : -ENOMEM;
}

/* sandcell --check-sandbox [--json]: the report, and 0 when every profile can run. */
static int gw_check_sandbox(const struct gw_config *cfg, const json_t *report, const char *why)
{
	json_t *model = gw_sandbox_model(cfg, report, why);
	int code;

	if (!model) {
		fprintf(stderr, "sandcell: out of memory\n");
		return 1;
	}
	if (cfg->check_json) {
		json_dumpf(model, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		gw_sandbox_print(stdout, model);
	}
	code = gw_sandbox_model_ok(model) ? 0 : 1;
	json_decref(model);
	return fflush(stdout) == 0 ? code : 1;
}

/* Says at start what the sandbox cannot give, loudly when kernels will run anyway. */
static void gw_sandbox_warn(const struct gw_server *srv)
{
	const struct gw_config *cfg = srv->cfg;

	if (!srv->sandbox) {
		gw_log(srv, GW_WARN,
		       "cannot check the sandbox (%s): each kernel checks its own at launch",
		       srv->sandbox_error);
		return;
	}
	for (int i = 0; i < GW_PROFILE_COUNT; i++) {
		char missing[256];

		if (i == GW_PROFILE_CUSTOM && !cfg->custom_profile)
			continue;
		if (gw_sandbox_profile_ok(srv->sandbox, (enum gw_profile_kind)i, missing,
		                          sizeof(missing)))
			continue;
		if (cfg->allow_weaker_sandbox)
			gw_log(srv, GW_WARN,
			       "!!! profile %s runs WITHOUT %s (--allow-weaker-sandbox): "
			       "its kernels are less isolated than the profile promises !!!",
			       gw_profile_name((enum gw_profile_kind)i), missing);
		else
			gw_log(srv, GW_WARN,
			       "profile %s lacks %s on this host: its kernels are refused "
			       "(--allow-weaker-sandbox runs them anyway)",
			       gw_profile_name((enum gw_profile_kind)i), missing);
	}
}

int main(int argc, char **argv)
{
	struct gw_config cfg = {0};
	struct gw_server srv = {0};
	struct proto_error err = {{0}};
	enum gw_config_action action;
	char host[300];
	int r, code;

	/*
	 * Output passes through in buffers of up to a few MiB each, allocated and freed per
	 * message (received frames, the encoded frame, its queue copy). glibc maps every one of
	 * them anew (its sliding threshold stops at the size just freed) and trims the heap behind
	 * them: a page fault per 4 KiB of output, two thirds of the gateway's time when streaming.
	 * Keep them on the heap, and 8 MiB of freed heap for the next ones (more kept the RSS of
	 * an idle gateway high after a burst).
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	if (gw_config_defaults(&cfg) < 0) {
		fprintf(stderr, "sandcell: out of memory\n");
		return 1;
	}
	r = gw_config_load(&cfg, argc, argv, environ, stdout, &action, &err);
	if (r < 0) {
		fprintf(stderr, "sandcell: %s\n(see sandcell --help)\n", err.text);
		gw_config_free(&cfg);
		return 2;
	}
	if (action == GW_CONFIG_HELP || action == GW_CONFIG_VERSION) {
		gw_config_free(&cfg);
		return 0;
	}
	if (gw_find_kernel(&cfg, srv.kernel_binary, sizeof(srv.kernel_binary)) < 0) {
		fprintf(stderr, "sandcell: cannot find sandcell-kernel (set --kernel-binary)\n");
		gw_config_free(&cfg);
		return 1;
	}
	srv.sandbox = gw_sandbox_probe(srv.kernel_binary, GW_SANDBOX_TIMEOUT, srv.sandbox_error,
	                               sizeof(srv.sandbox_error));
	if (action == GW_CONFIG_CHECK_SANDBOX) {
		code = gw_check_sandbox(&cfg, srv.sandbox, srv.sandbox_error);
		json_decref(srv.sandbox);
		gw_config_free(&cfg);
		return code;
	}
	if (!cfg.token && gw_make_token(&cfg) < 0) {
		fprintf(stderr, "sandcell: cannot make a token\n");
		json_decref(srv.sandbox);
		gw_config_free(&cfg);
		return 1;
	}
	r = gw_server_init(&srv, &cfg);
	if (r < 0) {
		gw_server_fini(&srv);
		gw_config_free(&cfg);
		return 1;
	}
	gw_sandbox_warn(&srv);
	/* An IPv6 address goes in brackets in a URL. */
	snprintf(host, sizeof(host), strchr(cfg.ip, ':') ? "[%s]" : "%s", cfg.ip);
	if (cfg.token[0])
		printf("sandcell %s listening on http://%s:%d%s?token=%s\n", GW_VERSION, host,
		       gw_server_port(&srv), cfg.base_url, cfg.token);
	else
		printf("sandcell %s listening on http://%s:%d%s (no token: anyone who can connect "
		       "can run code)\n",
		       GW_VERSION, host, gw_server_port(&srv), cfg.base_url);
	printf("open that URL in a browser for the notebook page; Jupyter clients take it as "
	       "their server URL\n");
	fflush(stdout);
	code = gw_server_run(&srv);
	gw_server_fini(&srv);
	gw_config_free(&cfg);
	return code;
}
