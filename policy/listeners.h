/*
 * listeners - outpost-policyd's listening sockets: every policyd.listen
 * entry opened (unix sockets with policyd.socket_mode, owner and group,
 * through util/listen.h), each behind an evconnlistener that calls the
 * server's accept and error functions with its struct listener.
 *
 * Ownership: listeners_open() fills *ls (an array of *nls, owned by the
 * caller, freed with free() after listeners_close(), which also closes a
 * part opened before a failure).
 */
#ifndef OUTPOST_POLICY_LISTENERS_H
#define OUTPOST_POLICY_LISTENERS_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <event2/listener.h>

#include "conf/conf.h"

struct server;

struct listener {
	struct server *srv;
	struct evconnlistener *ev;
	int is_unix;		/* unix socket (no allow-list) */
	char *path;		/* unix: to unlink at exit */
	char *name;
};

/* listeners_open - open cf's policyd.listen sockets; 0, or -1 with err */
int listeners_open(struct event_base *, const struct conf *cf,
    evconnlistener_cb accept_cb, evconnlistener_errorcb error_cb,
    struct server *srv, struct listener **ls, size_t *nls, char *err,
    size_t len);
/* listeners_close - close them (unix sockets unlinked); *nls becomes 0 */
void listeners_close(struct listener *ls, size_t *nls);
/* listeners_same - a and b listen on the same sockets */
int listeners_same(const struct conf *a, const struct conf *b);
/*
 * listener_peer - "ADDR:PORT" or "unix" for logs; addr16 filled for TCP
 * (1), 0 for a unix peer, -1 when the address cannot be read
 */
int listener_peer(const struct sockaddr *sa, char *buf, size_t len,
    uint8_t addr16[16]);

#endif
