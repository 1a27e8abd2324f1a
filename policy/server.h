/*
 * server - outpost-policyd's single-threaded libevent loop: listeners
 * (unix and TCP sockets), connections, requests through proto and decide,
 * SIGHUP and SIGUSR1 reload, SIGTERM and SIGINT shutdown.
 *
 * A generation is one loaded configuration with its open quota store.
 * The server owns the current one; each connection holds the generation
 * its current instance began under, so a reload never changes the store
 * under a reservation (OpenDKIM's design: build, validate, swap, free the
 * old one when its last connection moves on).
 *
 * Peer trouble (malformed or oversized requests, idle or slow clients,
 * a full table of connections) closes that connection only and is
 * logged; nothing a peer sends ends the process.
 */
#ifndef OUTPOST_POLICY_SERVER_H
#define OUTPOST_POLICY_SERVER_H

#include <stddef.h>

#include "conf/conf.h"
#include "quota/quota.h"

struct server;

/*
 * server_new - bind every policyd.listen socket of conf (unix sockets get
 * policyd.socket_mode/owner/group); conf_path is what SIGHUP and SIGUSR1 reload.
 * The server takes conf; NULL with err on failure.
 */
struct server *server_new(const char *conf_path, struct conf *conf,
    char *err, size_t errlen);
/* server_start - open the store (after privileges are dropped) */
int server_start(struct server *, char *err, size_t errlen);
/* server_metrics_register - register what outpost-policyd counts and
 * the quota's metrics, before server_start */
void server_metrics_register(void);
/* server_run - the loop; returns 0 after SIGTERM/SIGINT and shutdown */
int server_run(struct server *);
struct server *server_free(struct server *);

#endif
