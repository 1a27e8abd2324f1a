/*
 * conf_host - what a loaded configuration needs of this host: the users
 * it names exist, and the key files can be read by the user the milter
 * runs as.  conf_load() checks the file; this checks the machine, for
 * `outpost-milter -n`, `outpost-policyd -n` and `outpostctl check-config`,
 * so that what would stop a daemon at start (or at its first reload,
 * when it reads the keys again as its own user) is said before.
 *
 * Reads the user and group databases and stat(2)s the key files; opens
 * nothing.  Returns 0, or -1 with the first problem in err.
 */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "conf/conf.h"

#define HOST_GROUPS_MAX 256

/* user_get - the passwd entry of the user a setting names, into *pw */
static int
user_get(const char *setting, const char *user, struct passwd *pw,
    char *buf, size_t buflen, char *err, size_t errlen)
{
	struct passwd *res = NULL;

	if (getpwnam_r(user, pw, buf, buflen, &res) != 0 || res == NULL) {
		(void)snprintf(err, errlen, "%s: no user \"%s\" on this host",
		    setting, user);
		return -1;
	}
	return 0;
}

/* in_groups - 1 if gid is the user's primary group or one of its others */
static int
in_groups(const struct passwd *pw, gid_t gid)
{
	gid_t groups[HOST_GROUPS_MAX];
	int i, n = HOST_GROUPS_MAX;

	if (pw->pw_gid == gid)
		return 1;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return 0;	/* more groups than we look at: say no */
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/* readable_by - 1 if the file st describes can be read by pw's user */
static int
readable_by(const struct stat *st, const struct passwd *pw)
{
	if (pw->pw_uid == 0)
		return 1;
	if (st->st_uid == pw->pw_uid)
		return (st->st_mode & S_IRUSR) != 0;
	if (in_groups(pw, st->st_gid))
		return (st->st_mode & S_IRGRP) != 0;
	return (st->st_mode & S_IROTH) != 0;
}

/* keys_check - every dkim.keys file exists and pw's user can read it */
static int
keys_check(const struct conf *c, const struct passwd *pw, char *err,
    size_t errlen)
{
	struct stat st;
	size_t i;

	for (i = 0; i < c->dkim.nkeys; i++) {
		const char *f = c->dkim.keys[i].file;

		if (stat(f, &st) < 0)
			continue;	/* the key loader says why */
		if (!readable_by(&st, pw)) {
			(void)snprintf(err, errlen, "%s: key \"%s\": milter.user "
			    "\"%s\" cannot read %s (owner uid %ld, mode %04o): "
			    "chown %s %s", c->path, c->dkim.keys[i].name,
			    pw->pw_name, f, (long)st.st_uid,
			    (unsigned int)(st.st_mode & 07777), pw->pw_name, f);
			return -1;
		}
	}
	return 0;
}

int
conf_check_host(const struct conf *c, unsigned int what, char *err,
    size_t errlen)
{
	struct passwd pw;
	char buf[4096];

	if ((what & CONF_HOST_MILTER) && c->milter.user != NULL) {
		if (user_get("milter.user", c->milter.user, &pw, buf,
		    sizeof(buf), err, errlen) < 0 ||
		    keys_check(c, &pw, err, errlen) < 0)
			return -1;
	}
	if ((what & CONF_HOST_MILTER) && (c->spf.inbound.enabled ||
	    c->spf.outbound.enabled) && c->spf.user != NULL &&
	    user_get("spf.user", c->spf.user, &pw, buf, sizeof(buf), err,
	    errlen) < 0)
		return -1;
	if ((what & CONF_HOST_POLICYD) && c->policyd.user != NULL &&
	    user_get("policyd.user", c->policyd.user, &pw, buf, sizeof(buf),
	    err, errlen) < 0)
		return -1;
	return 0;
}
