/*
 * daemon - see daemon.h.
 */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "util/daemon.h"
#include "util/log.h"

void
daemon_drop_privileges(const char *user, const char *setting)
{
	struct passwd *pw;

	if (user == NULL)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatalx(EX_CONFIG, "%s: no user \"%s\"", setting, user);
	if (geteuid() != 0) {
		if (geteuid() != pw->pw_uid)
			fatalx(EX_CONFIG, "%s \"%s\": cannot switch user "
			    "without root", setting, user);
		return;
	}
	if (setgroups(0, NULL) < 0 || initgroups(user, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		fatal(EX_OSERR, "cannot become user %s", user);
}

void
daemon_write_pid(const char *path)
{
	char buf[32];
	int fd, n;

	if (path == NULL)
		return;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0)
		fatal(EX_CANTCREAT, "pid file %s", path);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n)
		fatal(EX_IOERR, "pid file %s", path);
	close(fd);
}

int
daemon_facility(const char *name)
{
	static const struct {
		const char *name;
		int code;
	} tab[] = { { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 } };
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(tab[i].name, name) == 0)
			return tab[i].code;
	return -1;
}
