/*
 * log - see log.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util/log.h"

static int log_foreground = 1;
static int log_verbosity;
static int log_discarding;
static const char *log_ident = "outpost";

/* log_init - choose stderr or syslog; ident must outlive the process */
void
log_init(const char *ident, int foreground, int facility)
{
	log_ident = ident;
	log_foreground = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_verbose(int verbose)
{
	log_verbosity = verbose;
}

void
log_discard(int on)
{
	log_discarding = on;
}

int
log_verbose(void)
{
	return log_verbosity;
}

/* log_vmsg - format one line and write it in one call */
void
log_vmsg(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info",
		"debug" };
	char line[2048];
	int saved = errno;
	int n;

	if ((level == LOGL_DEBUG && !log_verbosity) ||
	    (log_discarding && level != LOGL_ERR))
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (with_errno)
		snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
	if (log_foreground)
		fprintf(stderr, "%s: %s: %s\n", log_ident, name[level], line);
	else
		syslog(prio[level], "%s", line);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_WARN, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_WARN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_ERR, 1, fmt, ap);
	va_end(ap);
	exit(code);
}

void
fatalx(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOGL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(code);
}

void
log_assert_failed(const char *cond, const char *file, int line)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "assertion failed: %s at %s:%d", cond,
	    file, line);
	if (log_foreground)
		fprintf(stderr, "%s: %s\n", log_ident, buf);
	else
		syslog(LOG_CRIT, "%s", buf);
	abort();
}
