/*
 * The sandbox report (see gw_sandbox.h). The probe forks the kernel binary once, outside the
 * event loop (at start, before any kernel runs), with a deadline and a cap on what it reads.
 */
#include "gw_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GW_SANDBOX_STDERR_MAX 1024 /* bytes of the kernel's stderr kept for a message */

static int64_t gw_sandbox_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of text (in place), without control characters. */
static const char *gw_first_line(char *text)
{
	text[strcspn(text, "\r\n")] = '\0';
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return text;
}

/* Checks the shape the gateway relies on: {"layers": [...], "profiles": {NAME: {"ok"}}}. */
static bool gw_sandbox_report_ok(const json_t *r)
{
	const json_t *profiles = json_object_get(r, "profiles"), *p;
	const char *name;

	if (!json_is_object(r) || !json_is_array(json_object_get(r, "layers")) ||
	    !json_is_object(profiles))
		return false;
	json_object_foreach((json_t *)(uintptr_t)profiles, name, p)
		if (!json_is_boolean(json_object_get(p, "ok")))
			return false;
	return true;
}

json_t *gw_sandbox_probe(const char *binary, double timeout, char *why, size_t why_len)
{
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, status = 0;
	char errtext[GW_SANDBOX_STDERR_MAX + 1] = "";
	char *buf = NULL;
	size_t len = 0, errlen = 0;
	bool too_big = false, timed_out = false;
	int64_t deadline = gw_sandbox_ms() + (int64_t)(timeout * 1000);
	json_t *report = NULL;
	json_error_t jerr;
	pid_t pid;

	buf = malloc(GW_SANDBOX_OUTPUT_MAX + 1);
	if (!buf || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(why, why_len, "cannot run %s --check-sandbox: %s", binary,
		         strerror(errno ? errno : ENOMEM));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, why_len, "cannot run %s --check-sandbox: %s", binary,
		         strerror(errno));
		goto out;
	}
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execl(binary, binary, "--check-sandbox", "--json", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	while (out[0] >= 0 || errp[0] >= 0) {
		struct pollfd pf[2] = {{.fd = out[0], .events = POLLIN},
		                       {.fd = errp[0], .events = POLLIN}};
		int64_t left = deadline - gw_sandbox_ms();
		int n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		n = poll(pf, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (pf[0].revents) {
			char chunk[4096];
			ssize_t got = read(out[0], chunk, sizeof(chunk));

			if (got > 0 && len + (size_t)got > GW_SANDBOX_OUTPUT_MAX) {
				too_big = true;
				break;
			}
			if (got > 0) {
				memcpy(buf + len, chunk, (size_t)got);
				len += (size_t)got;
			} else if (got == 0 || errno != EINTR) {
				close(out[0]);
				out[0] = -1;
			}
		}
		if (pf[1].revents) {
			char chunk[1024];
			ssize_t got = read(errp[0], chunk, sizeof(chunk));

			if (got > 0) {
				size_t take = (size_t)got;

				if (take > GW_SANDBOX_STDERR_MAX - errlen)
					take = GW_SANDBOX_STDERR_MAX - errlen;
				memcpy(errtext + errlen, chunk, take);
				errlen += take;
				errtext[errlen] = '\0';
			} else if (got == 0 || errno != EINTR) {
				close(errp[0]);
				errp[0] = -1;
			}
		}
	}
	if (timed_out || too_big)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	if (timed_out) {
		snprintf(why, why_len, "%s --check-sandbox --json did not finish within %.0f s",
		         binary, timeout);
		goto out;
	}
	if (too_big) {
		snprintf(why, why_len, "%s --check-sandbox --json printed more than %zu bytes",
		         binary, GW_SANDBOX_OUTPUT_MAX);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		char st[48];

		if (WIFEXITED(status))
			snprintf(st, sizeof(st), "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(st, sizeof(st), "was killed by signal %d", WTERMSIG(status));
		snprintf(why, why_len, "%s --check-sandbox --json %s%s%.200s", binary, st,
		         errtext[0] ? ": " : "", gw_first_line(errtext));
		goto out;
	}
	report = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!report || !gw_sandbox_report_ok(report)) {
		snprintf(why, why_len, "%s --check-sandbox --json printed no valid report%s%.100s",
		         binary, report ? "" : ": ", report ? "" : jerr.text);
		json_decref(report);
		report = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free(buf);
	return report;
}

/* The report's entry for a profile (custom falls back to moderate), or NULL. */
static const json_t *gw_sandbox_entry(const json_t *report, enum gw_profile_kind kind)
{
	const json_t *profiles = json_object_get(report, "profiles");
	const json_t *e = json_object_get(profiles, gw_profile_name(kind));

	if (!e && kind == GW_PROFILE_CUSTOM)
		e = json_object_get(profiles, gw_profile_name(GW_PROFILE_MODERATE));
	return e;
}

bool gw_sandbox_profile_ok(const json_t *report, enum gw_profile_kind kind, char *missing,
                           size_t missing_len)
{
	const json_t *e, *m, *item;
	size_t i, used = 0;

	if (missing_len)
		missing[0] = '\0';
	if (!report)
		return true;
	e = gw_sandbox_entry(report, kind);
	if (!e)
		return true; /* a report of an older kernel: it decides at launch */
	if (json_is_true(json_object_get(e, "ok")))
		return true;
	m = json_object_get(e, "missing");
	json_array_foreach((json_t *)(uintptr_t)m, i, item) {
		const char *s = json_string_value(item);
		int n;

		if (!s || used >= missing_len)
			continue;
		n = snprintf(missing + used, missing_len - used, "%s%s", used ? ", " : "", s);
		used += n > 0 ? (size_t)n : 0;
	}
	if (!used && missing_len)
		snprintf(missing, missing_len, "(the kernel names none)");
	return false;
}

json_t *gw_sandbox_model(const struct gw_config *cfg, const json_t *report, const char *error)
{
	json_t *model, *profiles, *layers;

	profiles = json_object();
	for (int i = 0; profiles && i < GW_PROFILE_COUNT; i++) {
		const struct gw_profile *p = &cfg->profiles[i];
		const json_t *e = gw_sandbox_entry(report, (enum gw_profile_kind)i);
		json_t *entry, *missing;
		char spec[32];

		if (i == GW_PROFILE_CUSTOM && !cfg->custom_profile)
			continue;
		entry = gw_profile_json(p);
		missing = json_deep_copy(json_object_get(e, "missing"));
		if (!json_is_array(missing)) {
			json_decref(missing);
			missing = json_array();
		}
		snprintf(spec, sizeof(spec), "sandcell-%s", gw_profile_name(p->kind));
		if (!entry ||
		    json_object_set_new(entry, "ok",
		                        e ? json_boolean(json_is_true(json_object_get(e, "ok")))
		                          : json_null()) < 0 ||
		    json_object_set_new(entry, "missing", missing) < 0 ||
		    json_object_set_new(entry, "kernelspec", json_string(spec)) < 0 ||
		    json_object_set_new(profiles, gw_profile_name(p->kind), entry) < 0) {
			json_decref(entry);
			json_decref(profiles);
			return NULL;
		}
	}
	layers = json_object_get(report, "layers");
	model = json_pack("{s:O?, s:o, s:o, s:s, s:b}", "host", json_object_get(report, "host"),
	                  "layers", layers ? json_incref(layers) : json_array(), "profiles",
	                  profiles, "default_profile",
	                  gw_profile_name(gw_config_default_profile(cfg)), "allow_weaker_sandbox",
	                  cfg->allow_weaker_sandbox);
	if (model && !report)
		json_object_set_new(
		        model, "error",
		        json_string(error ? error : "the kernel gave no sandbox report"));
	return model;
}

bool gw_sandbox_model_ok(const json_t *model)
{
	const json_t *profiles = json_object_get(model, "profiles"), *p;
	const char *name;

	if (json_object_get(model, "error"))
		return false;
	json_object_foreach((json_t *)(uintptr_t)profiles, name, p)
		if (!json_is_true(json_object_get(p, "ok")))
			return false;
	return true;
}

/* Writes a JSON scalar as text ("6.18", "true", "v2"). */
static void gw_print_scalar(FILE *out, const json_t *v)
{
	if (json_is_string(v))
		fputs(json_string_value(v), out);
	else if (json_is_integer(v))
		fprintf(out, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(out, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		fputs(json_is_true(v) ? "yes" : "no", out);
	else
		fputs("-", out);
}

static void gw_print_profile(FILE *out, const char *name, const json_t *p, bool weaker)
{
	const json_t *lim = json_object_get(p, "limits"), *ok = json_object_get(p, "ok");
	char mem[32], fsz[32], disk[32], outp[32], wall[32];

	gw_profile_format_size((size_t)json_integer_value(json_object_get(lim, "memory")), mem,
	                       sizeof(mem));
	gw_profile_format_size((size_t)json_integer_value(json_object_get(lim, "file_size")), fsz,
	                       sizeof(fsz));
	gw_profile_format_size((size_t)json_integer_value(json_object_get(lim, "disk")), disk,
	                       sizeof(disk));
	gw_profile_format_size((size_t)json_integer_value(json_object_get(lim, "output")), outp,
	                       sizeof(outp));
	gw_profile_format_seconds(json_number_value(json_object_get(lim, "wall_time")), wall,
	                          sizeof(wall));
	fprintf(out, "  %-11s %-8s kernelspec %s\n", name,
	        json_is_null(ok)   ? "unknown"
	        : json_is_true(ok) ? "ok"
	                           : "MISSING",
	        json_string_value(json_object_get(p, "kernelspec")));
	if (json_is_false(ok)) {
		const json_t *item;
		size_t i;

		fprintf(out, "              lacks:");
		json_array_foreach(json_object_get(p, "missing"), i, item)
			fprintf(out, "%s %s", i ? "," : "", json_string_value(item));
		fprintf(out, "\n              %s\n",
		        weaker ? "runs anyway, less isolated (--allow-weaker-sandbox)"
		               : "refuses to start kernels (--allow-weaker-sandbox runs them)");
	}
	fprintf(out,
	        "              memory %s, CPU time %lld s, wall clock %s, processes %lld,\n"
	        "              threads %lld, open files %lld, file size %s, disk %s,\n"
	        "              output %s, network %s\n",
	        mem, (long long)json_integer_value(json_object_get(lim, "cpu_time")), wall,
	        (long long)json_integer_value(json_object_get(lim, "processes")),
	        (long long)json_integer_value(json_object_get(lim, "threads")),
	        (long long)json_integer_value(json_object_get(lim, "open_files")), fsz, disk, outp,
	        json_is_true(json_object_get(p, "network")) ? "on" : "off");
}

void gw_sandbox_print(FILE *out, const json_t *model)
{
	const json_t *host = json_object_get(model, "host"), *v;
	const json_t *profiles = json_object_get(model, "profiles");
	const char *key;
	size_t i;
	bool weaker = json_is_true(json_object_get(model, "allow_weaker_sandbox"));

	fputs("sandcell sandbox check\n", out);
	if (json_object_get(model, "error"))
		fprintf(out, "\nNo report from the kernel: %s\n",
		        json_string_value(json_object_get(model, "error")));
	if (json_is_object(host)) {
		fputs("\nHost:\n", out);
		json_object_foreach((json_t *)(uintptr_t)host, key, v) {
			if (json_is_object(v) || json_is_array(v))
				continue;
			fprintf(out, "  %-20s ", key);
			gw_print_scalar(out, v);
			fputc('\n', out);
		}
	}
	if (json_array_size(json_object_get(model, "layers"))) {
		fputs("\nLayers:\n", out);
		json_array_foreach(json_object_get(model, "layers"), i, v) {
			const char *detail = json_string_value(json_object_get(v, "detail"));

			const char *name = json_string_value(json_object_get(v, "name"));

			fprintf(out, "  %-4s %s%*s%s\n",
			        json_is_true(json_object_get(v, "active")) ? "yes" : "NO",
			        name ? name : "?",
			        detail && *detail ? (int)(28 - strlen(name ? name : "?")) : 0, "",
			        detail ? detail : "");
		}
	}
	fputs("\nProfiles:\n", out);
	json_object_foreach((json_t *)(uintptr_t)profiles, key, v)
		gw_print_profile(out, key, v, weaker);
	fprintf(out, "\nDefault profile: %s (kernelspec \"sandcell\")\n",
	        json_string_value(json_object_get(model, "default_profile")));
	if (weaker)
		fputs("--allow-weaker-sandbox is set: profiles run even without their layers.\n",
		      out);
}
