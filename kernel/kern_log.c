/* See kern_log.h. */
#include "kern_log.h"

#include <stdio.h>
#include <unistd.h>

void kern_vlog(int fd, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "sandcell-kernel[%d]: ", (int)getpid());

	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}
