/*
 * notify - readiness and reload notifications to systemd (see notify.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "util/log.h"
#include "util/notify.h"

/* notify_send - one sd_notify(3) message; failures are logged */
static void
notify_send(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int r;

	/* 0: NOTIFY_SOCKET unset; the environment is left alone, so that
	 * a reload can notify again */
	if ((r = sd_notify(0, state)) < 0)
		log_warnx("sd_notify: %s", strerror(-r));
#else
	(void)state;
#endif
}

void
notify_ready(const char *status)
{
	char msg[512];
	int n;

	if (status == NULL) {
		notify_send("READY=1");
		return;
	}
	n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	notify_send(n < 0 || (size_t)n >= sizeof(msg) ? "READY=1" : msg);
}

void
notify_reloading(void)
{
	notify_send("RELOADING=1");
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1");
}
