/*
 * server - see server.h: connections, listeners, shutdown and the
 * server's life here; configuration generations and reload in
 * server_gen.c; turns and the batches of replies in server_turn.c (the
 * structures they share: server_impl.h).
 *
 * Turns: the requests that one turn of the event loop reads (from every
 * connection that has input) are decided (decide.h), and their quota
 * calls go to the store together when the turn ends (decide_flush): one
 * exchange for all of them, whatever the store.  The first request of a
 * turn activates the "turn" event, which libevent runs after the
 * callbacks already active in this turn.  The replies are written into
 * the slots of the turn's batch (struct sbatch, in the order of the
 * requests) as the answers come; a batch whose slots are all written
 * leaves the list of batches in flight (s->fly), oldest first, for its
 * connections' pending output (batches_release), so a connection's
 * replies keep their order, and no reply leaves before what it says is
 * final.  When the flush leaves answers pending, the generation's async
 * event (decide_fd readable) delivers them (decide_poll), and the loop
 * goes on with other connections meanwhile.  A turn with more than
 * BATCH_MAX requests (clients that pipeline) is cut into several
 * batches.  A connection stays open while its replies are in flight
 * (nqueued); one that is freed first leaves its slots empty.  A reply is
 * written to the socket directly when nothing else is queued on it (no
 * write event to add and remove); what the socket does not take goes to
 * the bufferevent.
 *
 * Input: each connection reads with recv() from an event of its own
 * (persistent, with the idle timeout), not through the bufferevent,
 * which would ask the kernel how much is readable (ioctl FIONREAD) and
 * copy through an evbuffer for every request; the bufferevent is kept
 * for output that the socket did not take at once, its write timeout,
 * and the linger after the last reply.  Input that arrives while a
 * connection is throttled (its client does not read its replies) waits
 * in the connection's held buffer.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "policy/decide.h"
#include "policy/listeners.h"
#include "policy/proto.h"
#include "policy/server.h"
#include "policy/server_impl.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/notify.h"
#include "util/xmalloc.h"

#define LINGER_SECS	2	/* wait for the client's EOF after the replies */
#define OUT_HIGH (64 * 1024)	/* stop reading while more is unsent */
#define IN_READ (16 * 1024)	/* read at most this much at once */
#define STOP_GRACE 10		/* seconds for replies in flight */

/* What outpost-policyd counts (util/metrics.h), besides the quota's. */
static struct metric m_conns = METRIC_DEF("outpost_policyd_connections",
	"Policy connections open.", METRIC_GAUGE, NULL, NULL, NULL, NULL);

static void conn_input(struct conn *, const char *, size_t);
static void conn_linger(struct conn *);

/* ---- connections ------------------------------------------------------ */

/* slots_forget - c is going away: its replies in b go nowhere */
static void
slots_forget(struct sbatch *b, struct conn *c)
{
	unsigned int i;

	for (i = 0; c->nqueued > 0 && i < b->nslots; i++)
		if (b->slots[i].c == c) {
			b->slots[i].c = NULL;
			c->nqueued--;
		}
}

/* conn_free - end the instance, forget the connection */
static void
conn_free(struct conn *c)
{
	struct server *s = c->srv;
	struct conn **pp;
	struct sbatch *b;

	/* its calls in flight still answer (into slots it forgets); its
	 * releases go now, or with the turn's flush */
	decide_txn_close(c->txn, clock_wall_ms());
	if (!s->in_turn || c->gen != s->batch_gen)
		gen_flush(c->gen);
	if (s->open != NULL)
		slots_forget(s->open, c);
	for (b = s->fly; b != NULL; b = b->next)
		slots_forget(b, c);
	gen_unref(c->gen);
	proto_free(c->p);
	if (c->dirty)
		for (pp = &s->dirty; *pp != NULL; pp = &(*pp)->dnext)
			if (*pp == c) {
				*pp = c->dnext;
				break;
			}
	buf_free(&c->pending);
	buf_free(&c->held);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	metric_add(&m_conns, NULL, NULL, -1);
	free(c);
	if (s->stopping && s->nconns == 0)
		event_base_loopexit(s->base, NULL);
}

/* linger_read - after our side is shut, input is read and dropped */
static void
linger_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
linger_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

/*
 * conn_linger - the replies are out: shut our side and wait (at most
 * LINGER_SECS) for the client's EOF before closing.  Closing a socket
 * that still has unread input makes the kernel send a reset, and a reset
 * can destroy replies the client has not read yet.
 */
static void
conn_linger(struct conn *c)
{
	struct timeval tv = { LINGER_SECS, 0 };
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (c->lingering)
		return;
	c->lingering = 1;
	event_del(c->rev);
	if (fd < 0 || shutdown(fd, SHUT_WR) < 0) {
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, linger_read, NULL, linger_event, c);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	linger_read(c->bev, c);
	bufferevent_enable(c->bev, EV_READ);
}

/*
 * conn_unsent - bytes of replies not yet taken by the socket (and one
 * for each reply still in the open batch's slots)
 */
static size_t
conn_unsent(struct conn *c)
{
	return c->nqueued + c->pending.len +
	    evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* conn_close - stop answering; close once the output is sent */
static void
conn_close(struct conn *c)
{
	c->closing = 1;
	event_del(c->rev);
	if (conn_unsent(c) == 0)
		conn_linger(c);
}

/*
 * conn_resume - read again after a throttle: first what is held; may
 * free c
 */
static void
conn_resume(struct conn *c)
{
	size_t len = c->held.len;
	char *data;

	c->throttled = 0;
	if (c->srv->stopping || c->closing)
		return;
	event_add(c->rev, &c->idle);
	if (len == 0)
		return;
	data = buf_steal(&c->held);
	conn_input(c, data, len);
	free(data);
}

/*
 * conn_send - send the pending replies: straight to the socket when
 * nothing is queued before them, the rest through the bufferevent
 */
void
conn_send(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	size_t off = 0;
	ssize_t n;

	if (c->pending.len > 0 && fd >= 0 && evbuffer_get_length(out) == 0) {
		while (off < c->pending.len) {
			n = send(fd, c->pending.data + off,
			    c->pending.len - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno == EINTR)
				continue;
			else	/* full, or an error the bufferevent reports */
				break;
		}
	}
	if (off < c->pending.len)
		bufferevent_write(c->bev, c->pending.data + off,
		    c->pending.len - off);
	buf_truncate(&c->pending, 0);
	if (evbuffer_get_length(out) > 0)
		return;		/* conn_write carries on */
	if (c->closing) {
		conn_linger(c);
	} else if (c->throttled) {
		/* throttled on pending replies that the socket took whole */
		conn_resume(c);		/* may free c */
	}
}

/* conn_request - answer the complete request in c->p; -1: close */
static int
conn_request(struct conn *c)
{
	struct server *s = c->srv;
	struct slot *sl;
	char err[256];
	int64_t now = clock_wall_ms();

	/* a new instance moves the connection to the current config */
	if (c->gen != s->cur && (decide_new_instance(c->txn, c->p) ||
	    !c->txn->active)) {
		decide_txn_close(c->txn, now);
		gen_flush(c->gen);
		gen_unref(c->gen);
		c->gen = gen_ref(s->cur);
		c->txn = decide_txn_new(c->gen->d);
	}
	turn_join(s);
	ASSERT(s->open->nslots < BATCH_MAX);
	sl = &s->open->slots[s->open->nslots];
	sl->c = c;
	sl->b = s->open;
	sl->reply[0] = '\0';
	sl->t0 = metrics_now_us();
	s->open->waiting++;
	if (decide_request(c->txn, c->p, now, slot_reply, sl, err,
	    sizeof(err)) < 0) {
		s->open->waiting--;
		log_warnx("%s: malformed request: %s; closing without a reply",
		    c->peer, err);
		s->malformed++;
		return -1;
	}
	if (c->gen != s->batch_gen)	/* an old configuration's */
		gen_flush(c->gen);
	s->open->nslots++;
	c->nqueued++;
	if (++s->batch_requests >= BATCH_MAX)
		batch_close(s);	/* the next request opens another */
	return 0;
}

/*
 * conn_input - feed len bytes that arrived to the parser, answer each
 * request; what is left when the connection gets throttled is held
 */
static void
conn_input(struct conn *c, const char *data, size_t len)
{
	enum proto_status st;
	char err[128];
	size_t used;

	while (!c->closing && len > 0) {
		st = proto_feed(c->p, data, len, &used, err, sizeof(err));
		data += used;
		len -= used;
		if (st == PROTO_ERROR) {
			log_warnx("%s: malformed request: %s; closing without "
			    "a reply", c->peer, err);
			c->srv->malformed++;
			conn_close(c);
			return;
		}
		if (st != PROTO_REQUEST)
			continue;
		if (conn_request(c) < 0) {
			conn_close(c);
			return;
		}
		if (conn_unsent(c) > OUT_HIGH) {
			/* the client does not read its answers: wait */
			c->throttled = 1;
			event_del(c->rev);
			buf_append(&c->held, data, len);
			return;
		}
	}
}

/* conn_readable - input, end of input, or the idle timeout */
static void
conn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char buf[IN_READ], err[128];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		log_debug("%s: idle for %us, closing", c->peer,
		    c->gen->conf->policyd.idle_timeout);
		conn_free(c);
		return;
	}
	if ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		conn_input(c, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n == 0) {
		if (proto_eof(c->p, err, sizeof(err)) < 0) {
			log_warnx("%s: %s", c->peer, err);
			c->srv->malformed++;
		}
		/* a client that shut down its side still gets its replies */
		conn_close(c);
		return;
	}
	log_debug("%s: %s", c->peer, strerror(errno));
	conn_free(c);
}

/* conn_write - the output drained below the watermark */
static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->closing) {
		if (conn_unsent(c) == 0)
			conn_linger(c);
		return;
	}
	if (c->throttled && c->pending.len == 0)
		conn_resume(c);
}

/* conn_event - end of input, error or idle timeout */
static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char err[128];

	if (what & BEV_EVENT_TIMEOUT)
		log_debug("%s: idle for %us, closing", c->peer,
		    c->gen->conf->policyd.idle_timeout);
	else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		if (proto_eof(c->p, err, sizeof(err)) < 0) {
			log_warnx("%s: %s", c->peer, err);
			c->srv->malformed++;
		}
		/* a client that shut down its side still gets its replies */
		conn_close(c);
		return;
	} else if (what & BEV_EVENT_ERROR)
		log_debug("%s: %s", c->peer, strerror(errno));
	conn_free(c);
}

static void
listener_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct server *s = l->srv;
	const struct conf *cf = s->cur->conf;
	struct timeval tv;
	struct conn *c;
	uint8_t addr[16];
	char peer[80];
	int tcp;

	tcp = listener_peer(sa, peer, sizeof(peer), addr);
	if (s->stopping) {
		evutil_closesocket(fd);
		return;
	}
	if (!l->is_unix && (tcp <= 0 || !cidr_list_match(cf->policyd.networks,
	    cf->policyd.nnetworks, addr))) {
		if (s->refused_net++ % 1000 == 0)
			log_warnx("%s: not in policyd.networks, closed "
			    "(%llu so far)", peer,
			    (unsigned long long)s->refused_net);
		evutil_closesocket(fd);
		return;
	}
	if (s->nconns >= cf->policyd.max_connections) {
		if (s->refused_full++ % 1000 == 0)
			log_warnx("%s: policyd.max_connections (%u) reached, "
			    "closed (%llu so far)", peer,
			    cf->policyd.max_connections,
			    (unsigned long long)s->refused_full);
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = s;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("%s: cannot make a bufferevent", peer);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	{
		struct proto_limits lim = { cf->policyd.line_max,
			cf->policyd.attributes_max, cf->policyd.request_max };

		c->p = proto_new(&lim);
	}
	c->gen = gen_ref(s->cur);
	c->txn = decide_txn_new(c->gen->d);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	metric_add(&m_conns, NULL, NULL, 1);
	tv.tv_sec = cf->policyd.idle_timeout;
	tv.tv_usec = 0;
	c->idle = tv;
	/* input through c->rev; the bufferevent writes (see the top) */
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setcb(c->bev, NULL, conn_write, conn_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
	bufferevent_disable(c->bev, EV_READ);
	c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_readable,
	    c);
	if (c->rev == NULL || event_add(c->rev, &c->idle) < 0) {
		log_warnx("%s: cannot make a read event", peer);
		conn_free(c);
		return;
	}
	log_debug("%s: connected (%zu connections)", peer, s->nconns);
}

/* resume_listeners - accept again after running out of descriptors */
static void
resume_listeners(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	size_t i;

	for (i = 0; i < s->nls && !s->stopping; i++)
		evconnlistener_enable(s->ls[i].ev);
}

static void
listener_error(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 1, 0 };
	size_t i;
	int e = EVUTIL_SOCKET_ERROR();

	log_warnx("%s: accept: %s; pausing for 1s", l->name,
	    evutil_socket_error_to_string(e));
	for (i = 0; i < l->srv->nls; i++)
		evconnlistener_disable(l->srv->ls[i].ev);
	evtimer_add(l->srv->resume, &tv);
}

/* ---- signals ---------------------------------------------------------- */

static void
stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	log_warnx("%zu connections still busy after %ds, exiting", s->nconns,
	    STOP_GRACE);
	event_base_loopexit(s->base, NULL);
}

/* on_term - stop accepting, send the replies in flight, then exit */
static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	struct conn *c, *next;
	struct timeval tv = { STOP_GRACE, 0 };

	if (s->stopping)
		return;
	log_info("%s: stopping after %zu connections finish their replies",
	    strsignal((int)sig), s->nconns);
	notify_stopping();
	s->stopping = 1;
	listeners_close(s->ls, &s->nls);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	if (s->nconns == 0)
		event_base_loopexit(s->base, NULL);
	else
		evtimer_add(s->stoptimer, &tv);
}

/* ---- server ----------------------------------------------------------- */

void
server_metrics_register(void)
{
	static struct metric *const own[] = { &m_conns, &server_m_request,
		NULL };

	metrics_register_list(own);
	metrics_register_list(quota_metrics);
}

struct server *
server_new(const char *conf_path, struct conf *conf, char *err,
    size_t errlen)
{
	struct server *s = xcalloc(1, sizeof(*s));

	s->conf_path = xstrdup(conf_path);
	s->boot = conf;
	if ((s->base = event_base_new()) == NULL) {
		snprintf(err, errlen, "cannot make an event base");
		goto fail;
	}
	if (listeners_open(s->base, conf, listener_accept, listener_error, s,
	    &s->ls, &s->nls, err, errlen) < 0)
		goto fail;
	return s;
fail:
	return server_free(s);
}

int
server_start(struct server *s, char *err, size_t errlen)
{
	/* after daemon(): the kernel event queue must be this process's */
	if (event_reinit(s->base) < 0) {
		snprintf(err, errlen, "event_reinit failed");
		return -1;
	}
	if ((s->cur = gen_new(s, s->boot, err, errlen)) == NULL)
		return -1;
	s->boot = NULL;
	s->sighup = evsignal_new(s->base, SIGHUP, on_reload, s);
	s->sigusr1 = evsignal_new(s->base, SIGUSR1, on_reload, s);
	s->sigterm = evsignal_new(s->base, SIGTERM, on_term, s);
	s->sigint = evsignal_new(s->base, SIGINT, on_term, s);
	s->stoptimer = evtimer_new(s->base, stop_timeout, s);
	s->resume = evtimer_new(s->base, resume_listeners, s);
	s->turn = event_new(s->base, -1, 0, turn_end, s);
	if (s->sighup == NULL || s->sigusr1 == NULL || s->sigterm == NULL ||
	    s->sigint == NULL || s->turn == NULL || s->stoptimer == NULL ||
	    s->resume == NULL ||
	    evsignal_add(s->sighup, NULL) < 0 ||
	    evsignal_add(s->sigusr1, NULL) < 0 ||
	    evsignal_add(s->sigterm, NULL) < 0 ||
	    evsignal_add(s->sigint, NULL) < 0) {
		snprintf(err, errlen, "cannot install signal events");
		return -1;
	}
	return 0;
}

int
server_run(struct server *s)
{
	int rc = event_base_dispatch(s->base);
	const struct decide_stats *st = decide_stats(s->cur->d);

	log_info("stopped: %llu requests, %llu admitted, %llu refused, "
	    "%llu store errors, %llu malformed",
	    (unsigned long long)(s->stats.requests + st->requests),
	    (unsigned long long)(s->stats.admitted + st->admitted),
	    (unsigned long long)(s->stats.refused + st->refused),
	    (unsigned long long)(s->stats.errors + st->errors),
	    (unsigned long long)s->malformed);
	return rc < 0 ? -1 : 0;
}

struct server *
server_free(struct server *s)
{
	struct sbatch *b;

	if (s == NULL)
		return NULL;
	if (s->in_turn)		/* the loop ended inside a turn */
		turn_end(-1, 0, s);
	while (s->conns != NULL)
		conn_free(s->conns);
	while ((b = s->fly) != NULL) {	/* no connection left for them */
		s->fly = b->next;
		sbatch_done(s, b);
	}
	while ((b = s->spare) != NULL) {
		s->spare = b->next;
		free(b->slots);
		free(b);
	}
	listeners_close(s->ls, &s->nls);
	free(s->ls);
	if (s->sighup != NULL)
		event_free(s->sighup);
	if (s->sigusr1 != NULL)
		event_free(s->sigusr1);
	if (s->sigterm != NULL)
		event_free(s->sigterm);
	if (s->sigint != NULL)
		event_free(s->sigint);
	if (s->stoptimer != NULL)
		event_free(s->stoptimer);
	if (s->resume != NULL)
		event_free(s->resume);
	if (s->turn != NULL)
		event_free(s->turn);
	gen_unref(s->cur);
	conf_free(s->boot);
	if (s->base != NULL)
		event_base_free(s->base);
	free(s->conf_path);
	free(s);
	return NULL;
}
