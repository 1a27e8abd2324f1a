/*
 * listen - see listen.h.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/listen.h"

/* listen_unix - a listening unix socket; stale sockets replaced */
int
listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix:%s: path too long", path);
		return -1;
	}
	/* A stale socket from an earlier run; never remove anything else. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "unix:%s: exists and is not a "
			    "socket", path);
			return -1;
		}
		(void)unlink(path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, backlog) < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* listen_inet - a listening TCP socket on host and port */
int
listen_inet(const char *host, const char *port, int family, int backlog,
    char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	int fd, on = 1, gai;

	if (host != NULL && host[0] == '\0')
		host = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((gai = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s port %s: %s", host ? host : "*",
		    port, gai_strerror(gai));
		return -1;
	}
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, backlog) < 0) {
		snprintf(err, errlen, "cannot listen on %s port %s: %s",
		    host ? host : "*", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* listen_unix_access - mode, owner and group of a unix socket */
int
listen_unix_access(const char *path, const char *owner, const char *group,
    unsigned int mode, const char *setting, char *err, size_t errlen)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	struct passwd *pw;
	struct group *gr;

	if (owner != NULL) {
		if ((pw = getpwnam(owner)) == NULL) {
			errno = 0;
			snprintf(err, errlen, "%s.socket_owner: no user "
			    "\"%s\"", setting, owner);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			errno = 0;
			snprintf(err, errlen, "%s.socket_group: no group "
			    "\"%s\"", setting, group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    chown(path, uid, gid) < 0) {
		snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
		return -1;
	}
	if (chmod(path, (mode_t)mode) < 0) {
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* listen_unix_path - the path of "unix:" and "local:" specs */
const char *
listen_unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}
