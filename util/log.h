/*
 * log - process-wide logging to stderr (foreground) or syslog (mail facility).
 *
 * log_warn() and fatal() append strerror(errno); the *x variants do not.
 * fatal*() exit with the given sysexits code; they are for start-up and
 * configuration failures only, never for anything a peer sent.
 * Thread-safe: each call formats into a stack buffer, then writes once.
 */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

#include <stdarg.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum log_level {
	LOGL_ERR,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG,
};

void log_init(const char *ident, int foreground, int facility);
void log_set_verbose(int verbose);
/* log_discard - drop every message but fatal ones (fuzz targets) */
void log_discard(int on);
int log_verbose(void);

void log_warn(const char *, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *, ...) LOG_PRINTF(1, 2);
void log_info(const char *, ...) LOG_PRINTF(1, 2);
void log_debug(const char *, ...) LOG_PRINTF(1, 2);
void log_vmsg(enum log_level, int with_errno, const char *, va_list);
__attribute__((noreturn)) void fatal(int code, const char *, ...)
    LOG_PRINTF(2, 3);
__attribute__((noreturn)) void fatalx(int code, const char *, ...)
    LOG_PRINTF(2, 3);

/* ASSERT - always-on invariant check; logs file and line, then aborts. */
#define ASSERT(cond)                                                     \
	do {                                                             \
		if (!(cond))                                             \
			log_assert_failed(#cond, __FILE__, __LINE__);    \
	} while (0)
__attribute__((noreturn)) void log_assert_failed(const char *, const char *,
    int);

#endif
