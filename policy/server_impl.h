/*
 * server_impl - what the files of outpost-policyd's server share (not
 * for other callers): the generation, the connection, the server and
 * the turn's batches of replies (see server.c for how they work), and
 * the functions each file offers the others:
 *  - server.c: connections, listeners, shutdown, the server's life;
 *  - server_gen.c: configuration generations and their reload;
 *  - server_turn.c: turns, the batches of replies, their flush and
 *    their release to the connections.
 */
#ifndef OUTPOST_POLICY_SERVER_IMPL_H
#define OUTPOST_POLICY_SERVER_IMPL_H

#include <sys/time.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "policy/decide.h"
#include "policy/proto.h"
#include "quota/quota.h"
#include "util/buf.h"
#include "util/metrics.h"

#define BATCH_MAX 256		/* requests in one quota batch */

struct gen {
	struct conf *conf;
	struct quota *quota;
	struct decide *d;
	unsigned int refs;
	struct server *srv;
	struct event *async;	/* decide_fd readable; NULL: none */
};

struct conn {
	struct server *srv;
	struct bufferevent *bev;
	struct event *rev;	/* readable, or idle for idle_timeout */
	struct timeval idle;
	struct buf held;	/* input not parsed yet (throttled) */
	struct proto *p;
	struct decide_txn *txn;
	struct gen *gen;
	int closing;		/* close once the output is sent */
	int lingering;		/* output sent, our side shut: awaiting EOF */
	int throttled;		/* reading stopped: output too big */
	struct buf pending;	/* replies of this turn, not sent yet */
	unsigned int nqueued;	/* its replies in the open batch's slots */
	int dirty;		/* on the server's dirty list */
	struct conn *dnext;
	char peer[80];
	struct conn *prev, *next;
};

struct server {
	char *conf_path;
	struct event_base *base;
	struct gen *cur;
	struct conf *boot;	/* conf until server_start */
	struct listener *ls;
	size_t nls;
	struct conn *conns;
	size_t nconns;
	uint64_t refused_full, refused_net, malformed;
	struct decide_stats stats;
	struct event *sighup, *sigusr1, *sigterm, *sigint, *stoptimer, *resume;
	int stopping;
	/* the current turn (see the top) */
	struct event *turn;
	int in_turn;
	struct gen *batch_gen;	/* the generation when the batch was opened;
				 * NULL: no batch open */
	unsigned int batch_requests;
	struct sbatch *open;	/* the open batch's replies */
	struct sbatch *fly, *fly_tail;	/* ended, replies not out yet */
	struct sbatch *spare;	/* batches to reuse */
	struct conn *dirty;	/* connections with pending replies */
};

/* The reply to one request of a batch, written when it is known. */
struct slot {
	struct conn *c;		/* NULL: the connection is gone */
	uint64_t t0;		/* metrics_now_us() at the request */
	struct sbatch *b;
	char reply[DECIDE_REPLY_MAX];
};

/* A batch's replies, in the order of its requests (see the top). */
struct sbatch {
	struct slot *slots;	/* BATCH_MAX */
	unsigned int nslots;
	struct gen *g;		/* a reference, once ended */
	unsigned int waiting;	/* slots not written yet */
	struct sbatch *next;
};

/* The time from a request to its reply (server_turn.c). */
extern struct metric server_m_request;

/* server.c */
/* conn_send - send c's pending replies; may free c */
void conn_send(struct conn *);

/* server_gen.c */
struct gen *gen_ref(struct gen *);
/* gen_unref - drop a reference; the last one waits for g's answers and
 * frees it (NULL is fine) */
void gen_unref(struct gen *);
/* gen_new - open conf's store; the generation takes conf */
struct gen *gen_new(struct server *, struct conf *, char *err,
    size_t errlen);
/* on_reload - SIGHUP, SIGUSR1 */
void on_reload(evutil_socket_t, short, void *);

/* server_turn.c */
struct sbatch *sbatch_new(struct server *);
void sbatch_done(struct server *, struct sbatch *);
void batches_release(struct server *);
void send_pending(struct server *);
void gen_flush(struct gen *);
void batch_close(struct server *);
void gen_async(evutil_socket_t, short, void *);
void turn_end(evutil_socket_t, short, void *);
void turn_join(struct server *);
void slot_reply(void *, const char *);

#endif
