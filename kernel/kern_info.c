/*
 * What the kernel says about itself: the kernel_info_reply content and the kernelspec that
 * makes `sandcell` a kernel name for every Jupyter client.
 */
#include "kern_info.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "kern.h"
#include "kern_python.h"

char *kern_info_content(void)
{
	const char *version = kern_python_version();
	char banner[256];
	json_t *info;
	char *s;

	snprintf(banner, sizeof(banner),
	         "sandcell-kernel %s, Python %s\nA Jupyter kernel for Python, written in C.\n",
	         KERN_VERSION, version);
	info = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i}, s:s}, "
	                 "s:s, s:b, s:[{s:s, s:s}]}",
	                 "status", "ok", "protocol_version", PROTO_VERSION, "implementation",
	                 "sandcell", "implementation_version", KERN_VERSION, "language_info",
	                 "name", "python", "version", version, "mimetype", "text/x-python",
	                 "file_extension", ".py", "pygments_lexer", "ipython3", "codemirror_mode",
	                 "name", "ipython", "version", 3, "nbconvert_exporter", "python", "banner",
	                 banner, "debugger", 0, "help_links", "text", "Python Reference", "url",
	                 "https://docs.python.org/3.11/");
	if (!info)
		return NULL;
	s = json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(info);
	return s;
}

static int kern_mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int kern_info_install_spec(const struct kern_spec_opts *o, char *out_path, size_t out_len)
{
	char exe[4096], dir[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	json_t *spec;
	int r;

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	if (snprintf(dir, sizeof(dir), "%s/kernels/%s", o->prefix, o->name) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	r = kern_mkdirs(dir);
	if (r < 0)
		return r;
	spec = json_pack("{s:[s,s,s], s:s, s:s, s:s, s:{s:s}}", "argv", exe, "-f",
	                 "{connection_file}", "display_name", o->display_name, "language", "python",
	                 "interrupt_mode", o->interrupt_mode, "metadata", "sandcell_version",
	                 KERN_VERSION);
	if (!spec)
		return -ENOMEM;
	if (o->extra_argv) {
		json_t *argv = json_object_get(spec, "argv");
		for (char *const *a = o->extra_argv; *a; a++)
			json_array_append_new(argv, json_string(*a));
	}
	if (snprintf(out_path, out_len, "%s/kernel.json", dir) >= (int)out_len) {
		json_decref(spec);
		return -ENAMETOOLONG;
	}
	r = json_dump_file(spec, out_path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(spec);
	return r < 0 ? -EIO : 0;
}
