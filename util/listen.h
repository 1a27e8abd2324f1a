/*
 * listen - listening stream sockets for the daemons, in the spirit of
 * Redis's anet.c: a few calls that each do one thing, return a
 * descriptor or -1, and put the reason into the caller's err buffer.
 * Nothing here knows the milter or the policy protocol; the daemons
 * parse their own socket syntax and call these.
 *
 *	fd = listen_inet("127.0.0.1", "10027", AF_UNSPEC, 1000, err,
 *	    sizeof(err));
 *	fd = listen_unix("/run/outpost/policy", 1000, err, sizeof(err));
 *	listen_unix_access("/run/outpost/policy", NULL, "postfix", 0660,
 *	    err, sizeof(err));
 *
 * The descriptors are the caller's (close-on-exec, blocking) and
 * already listen with the backlog given: hand them to an event loop
 * without listening again (libevent: evconnlistener_new() with backlog
 * 0), or the kernel's queue takes the loop's length instead.
 */
#ifndef OUTPOST_LISTEN_H
#define OUTPOST_LISTEN_H

#include <stddef.h>

/* listen_unix - a listening unix socket at path.  A stale socket there
 * is removed first; anything else there is refused. */
int listen_unix(const char *path, int backlog, char *err, size_t errlen);

/* listen_inet - a listening TCP socket on host (NULL or "": every
 * address of family) and the numeric port; family AF_INET, AF_INET6 or
 * AF_UNSPEC.  SO_REUSEADDR is set. */
int listen_inet(const char *host, const char *port, int family,
    int backlog, char *err, size_t errlen);

/* listen_unix_access - give the socket at path its mode, and its owner
 * and group when named (NULL: leave); errors name setting (e.g.
 * "policyd": "policyd.socket_owner: no user ...").  On -1, errno is 0
 * for an unknown name (a configuration error), else chown's or chmod's. */
int listen_unix_access(const char *path, const char *owner,
    const char *group, unsigned int mode, const char *setting, char *err,
    size_t errlen);

/* listen_unix_path - the path of a "unix:PATH" or "local:PATH" socket
 * specification (borrowed from spec), or NULL for any other */
const char *listen_unix_path(const char *spec);

#endif
