/* Kernelspec installation (see kern_info.c). */
#pragma once

#include <stddef.h>

struct kern_spec_opts {
	const char *prefix;         /* writes PREFIX/kernels/NAME/kernel.json */
	const char *name;           /* "sandcell" */
	const char *display_name;   /* "Python 3 (sandcell)" */
	const char *interrupt_mode; /* "signal" or "message" */
	char *const *extra_argv;    /* NULL-terminated arguments after "-f {connection_file}" */
};

/* Writes the kernelspec; the path written goes to out_path. Returns 0 or -errno. */
int kern_info_install_spec(const struct kern_spec_opts *o, char *out_path, size_t out_len);
