/*
 * listeners - see listeners.h.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "policy/listeners.h"
#include "util/cidr.h"
#include "util/listen.h"
#include "util/xmalloc.h"

/* open_inet - a listening TCP socket at "HOST:PORT" or "[V6]:PORT" */
static int
open_inet(const char *spec, int backlog, char *err, size_t len)
{
	char host[256], *port;

	if (snprintf(host, sizeof(host), "%s", spec) >= (int)sizeof(host)) {
		snprintf(err, len, "inet:%s: address too long", spec);
		return -1;
	}
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		if ((port = strchr(host, ']')) == NULL || port[1] != ':') {
			snprintf(err, len, "inet:%s: bad address", spec);
			return -1;
		}
		*port = '\0';
		port += 2;
	} else {
		if ((port = strrchr(host, ':')) == NULL) {
			snprintf(err, len, "inet:%s: no port", spec);
			return -1;
		}
		*port++ = '\0';
	}
	return listen_inet(host, port, AF_UNSPEC, backlog, err, len);
}

/* listeners_open - see listeners.h */
int
listeners_open(struct event_base *base, const struct conf *cf,
    evconnlistener_cb accept_cb, evconnlistener_errorcb error_cb,
    struct server *srv, struct listener **ls, size_t *nls, char *err,
    size_t len)
{
	size_t i;
	int fd;

	*ls = xcalloc(cf->policyd.nlisten, sizeof(**ls));
	for (i = 0; i < cf->policyd.nlisten; i++) {
		const char *spec = cf->policyd.listen[i];
		struct listener *l = &(*ls)[i];

		l->srv = srv;
		l->name = xstrdup(spec);
		*nls = i + 1;		/* listeners_close() frees a part */
		if (strncmp(spec, "unix:", 5) == 0) {
			l->is_unix = 1;
			if ((fd = listen_unix(spec + 5,
			    (int)cf->policyd.backlog, err, len)) < 0)
				return -1;
			l->path = xstrdup(spec + 5);
			if (listen_unix_access(l->path,
			    cf->policyd.socket_owner, cf->policyd.socket_group,
			    cf->policyd.socket_mode, "policyd", err, len) < 0) {
				close(fd);
				return -1;
			}
		} else if ((fd = open_inet(spec + 5, (int)cf->policyd.backlog,
		    err, len)) < 0)
			return -1;
		evutil_make_socket_nonblocking(fd);
		/* backlog 0: fd listens already, with policyd.backlog */
		l->ev = evconnlistener_new(base, accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (l->ev == NULL) {
			snprintf(err, len, "%s: cannot listen", spec);
			close(fd);
			return -1;
		}
		evconnlistener_set_error_cb(l->ev, error_cb);
	}
	return 0;
}

/* listeners_close - see listeners.h */
void
listeners_close(struct listener *ls, size_t *nls)
{
	size_t i;

	for (i = 0; i < *nls; i++) {
		if (ls[i].ev != NULL)
			evconnlistener_free(ls[i].ev);
		ls[i].ev = NULL;
		if (ls[i].path != NULL)
			unlink(ls[i].path);
		free(ls[i].path);
		free(ls[i].name);
		ls[i].path = ls[i].name = NULL;
	}
	*nls = 0;
}

/* listeners_same - see listeners.h */
int
listeners_same(const struct conf *a, const struct conf *b)
{
	size_t i;

	if (a->policyd.nlisten != b->policyd.nlisten)
		return 0;
	for (i = 0; i < a->policyd.nlisten; i++)
		if (strcmp(a->policyd.listen[i], b->policyd.listen[i]) != 0)
			return 0;
	return 1;
}

/* listener_peer - see listeners.h */
int
listener_peer(const struct sockaddr *sa, char *buf, size_t len,
    uint8_t addr16[16])
{
	char host[INET6_ADDRSTRLEN];
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	} else {
		snprintf(buf, len, "unix");
		return 0;
	}
	snprintf(buf, len, "%s:%d", host, port);
	return cidr_addr_from_sockaddr(sa, addr16) < 0 ? -1 : 1;
}
