/*
 * engine - our milter protocol engine; see engine.h.
 *
 * Protocol (Sendmail milter, version 6): every packet is a 4-byte
 * big-endian length, a command byte and length-1 bytes of data.  The
 * connection thread keeps a read buffer, parses as many packets as one
 * read() brought, and queues replies in an output buffer that is written
 * once per reply due.  Packets over ENGINE_PACKET_MAX, malformed packets
 * and unknown commands end the connection (the MTA then applies its
 * milter_default_action); nothing the MTA sends ends the process.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#include "milter/engine.h"
#include "milter/milter.h"
#include "util/buf.h"
#include "util/listen.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define ENGINE_READ_SIZE	(64 * 1024)
#define ENGINE_PACKET_MAX	(1024 * 1024)
#define ENGINE_CONNS_MAX	4096
#define ENGINE_NSTAGES		7	/* SMFIM_CONNECT .. SMFIM_EOH */
#define ENGINE_VERSION		6
/* At a stop: how long messages in flight may take to finish, then how
 * long the threads of the connections shut down after it may take to
 * end (one may be waiting for an SPF worker or the quota store). */
#define ENGINE_STOP_GRACE	10
#define ENGINE_STOP_JOIN	30
/* Workers kept waiting in accept() for the next connection, and how long
 * each waits before it ends (one always waits): Postfix opens a milter
 * connection per SMTP session, and a thread created for each cost about
 * 0.08 ms of CPU (bench/miltload -M 1: 0.51 -> 0.43 ms per signed
 * message); an acceptor thread handing each connection to a worker cost
 * another context switch and three futex calls per connection. */
#define ENGINE_IDLE_MAX		32
#define ENGINE_IDLE_SECS	60

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
/* Connections and their worker threads, all by conns_lock. */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_done = PTHREAD_COND_INITIALIZER; /* nthreads 0 */
static unsigned int nconns;		/* connections being served */
static unsigned int nthreads;		/* workers alive, serving or idle */
static unsigned int nidle;		/* workers in (or going to) accept() */
static struct econn *conns;		/* served connections */
static int stopping;			/* conns_stop() began: no more idling */
static const struct conf *run_conf;	/* engine_run()'s, for the workers */

struct econn {
	int fd;
	unsigned int timeout;
	unsigned char *in;		/* read buffer */
	size_t inoff, inlen, incap;
	struct buf out;			/* replies not yet written */
	struct buf macros[ENGINE_NSTAGES]; /* "name\0value\0"... */
	char reply[1024];		/* setreply text, or "" */
	unsigned long pflags;		/* negotiated SMFIP_* */
	struct milter_conn *mc;
	char peer[64];
	struct econn *prev, *next;	/* on conns, by conns_lock */
};

/* ---- output ------------------------------------------------------------ */

static void
put_u32(struct buf *b, uint32_t v)
{
	uint32_t n = htonl(v);

	buf_append(b, &n, 4);
}

/* queue - one packet into the output buffer */
static void
queue(struct econn *e, char cmd, const void *data, size_t len)
{
	put_u32(&e->out, (uint32_t)len + 1);
	buf_appendc(&e->out, cmd);
	if (len > 0)
		buf_append(&e->out, data, len);
}

/* flush - write everything queued; 0 or -1 */
static int
flush(struct econn *e)
{
	size_t off = 0;
	ssize_t n;

	while (off < e->out.len) {
		n = write(e->fd, e->out.data + off, e->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("%s: write to MTA", e->peer);
			return -1;
		}
		off += (size_t)n;
	}
	buf_truncate(&e->out, 0);
	return 0;
}

/* reply - the packet for a handler's verdict (nothing for NOREPLY) */
static void
reply(struct econn *e, sfsistat rc)
{
	switch (rc) {
	case SMFIS_NOREPLY:
		break;
	case SMFIS_ACCEPT:
		queue(e, SMFIR_ACCEPT, NULL, 0);
		break;
	case SMFIS_REJECT:
	case SMFIS_TEMPFAIL:
		if (e->reply[0] != '\0')
			queue(e, SMFIR_REPLYCODE, e->reply,
			    strlen(e->reply) + 1);
		else
			queue(e, rc == SMFIS_REJECT ? SMFIR_REJECT :
			    SMFIR_TEMPFAIL, NULL, 0);
		break;
	case SMFIS_DISCARD:
		queue(e, SMFIR_DISCARD, NULL, 0);
		break;
	case SMFIS_SKIP:
		queue(e, SMFIR_SKIP, NULL, 0);
		break;
	default:
		queue(e, SMFIR_CONTINUE, NULL, 0);
		break;
	}
	e->reply[0] = '\0';
}

/* ---- the handlers' view (struct milter_io) ------------------------------ */

/* name_eq - macro names compare without their braces: i == {i} */
static int
name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la >= 2 && a[0] == '{' && a[la - 1] == '}')
		a++, la -= 2;
	if (lb >= 2 && b[0] == '{' && b[lb - 1] == '}')
		b++, lb -= 2;
	return la == lb && memcmp(a, b, la) == 0;
}

static const char *
e_symval(void *ctx, const char *name)
{
	/* Most recent stage first, as libmilter looks them up. */
	static const int order[] = { SMFIM_EOM, SMFIM_EOH, SMFIM_DATA,
		SMFIM_ENVRCPT, SMFIM_ENVFROM, SMFIM_HELO, SMFIM_CONNECT };
	struct econn *e = ctx;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const struct buf *b = &e->macros[order[i]];
		const char *p, *end;

		if (b->data == NULL)	/* no macros of that stage yet */
			continue;
		p = b->data;
		end = b->data + b->len;
		while (p < end) {
			const char *v = p + strlen(p) + 1;

			if (v >= end)
				break;
			if (name_eq(p, name))
				return v;
			p = v + strlen(v) + 1;
		}
	}
	return NULL;
}

static int
e_setreply(void *ctx, const char *rcode, const char *xcode,
    const char *text)
{
	struct econn *e = ctx;
	int n;

	n = snprintf(e->reply, sizeof(e->reply), "%s %s %s", rcode, xcode,
	    text);
	if (n < 0 || (size_t)n >= sizeof(e->reply)) {
		e->reply[0] = '\0';
		return -1;
	}
	return 0;
}

static int
e_insheader(void *ctx, int index, const char *name, const char *value)
{
	struct econn *e = ctx;
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;

	put_u32(&e->out, (uint32_t)(1 + 4 + nl + vl));
	buf_appendc(&e->out, SMFIR_INSHEADER);
	put_u32(&e->out, (uint32_t)index);
	buf_append(&e->out, name, nl);
	buf_append(&e->out, value, vl);
	return 0;
}

static int
e_quarantine(void *ctx, const char *reason)
{
	struct econn *e = ctx;

	queue(e, SMFIR_QUARANTINE, reason, strlen(reason) + 1);
	return 0;
}

static const struct milter_io engine_io = { e_symval, e_setreply,
	e_insheader, e_quarantine };

/* ---- input ------------------------------------------------------------- */

/*
 * next_packet - the next whole packet: 1 with cmd, data, len set; 0 on
 * orderly close; -1 on error (logged).  Reads only when the buffer holds
 * no whole packet, and then as much as the socket has.
 */
static int
next_packet(struct econn *e, char *cmd, unsigned char **data, size_t *len)
{
	uint32_t plen;
	ssize_t n;

	for (;;) {
		size_t avail = e->inlen - e->inoff, need = 4;

		if (avail >= 4) {
			memcpy(&plen, e->in + e->inoff, 4);
			plen = ntohl(plen);
			if (plen == 0 || plen > ENGINE_PACKET_MAX) {
				log_warnx("%s: bad packet length %u", e->peer,
				    plen);
				return -1;
			}
			need = 4 + (size_t)plen;
			if (avail >= need) {
				*cmd = (char)e->in[e->inoff + 4];
				*data = e->in + e->inoff + 5;
				*len = plen - 1;
				e->inoff += need;
				return 1;
			}
		}
		/* Move what is left to the front, grow, then read more. */
		if (e->inoff > 0) {
			memmove(e->in, e->in + e->inoff, avail);
			e->inlen = avail;
			e->inoff = 0;
		}
		if (need > e->incap) {
			e->incap = need + ENGINE_READ_SIZE;
			e->in = xreallocarray(e->in, e->incap, 1);
		}
		n = read(e->fd, e->in + e->inlen, e->incap - e->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				log_warnx("%s: MTA silent for %u s, closing",
				    e->peer, e->timeout);
			else
				log_warn("%s: read from MTA", e->peer);
			return -1;
		}
		if (n == 0) {
			if (avail > 0)
				log_warnx("%s: MTA closed mid-packet", e->peer);
			return avail > 0 ? -1 : 0;
		}
		e->inlen += (size_t)n;
	}
}

/* get_u32 - a big-endian number at data[*off], bounds checked */
static int
get_u32(const unsigned char *data, size_t len, size_t *off, uint32_t *v)
{
	if (*off + 4 > len)
		return -1;
	memcpy(v, data + *off, 4);
	*v = ntohl(*v);
	*off += 4;
	return 0;
}

/* get_str - a NUL-terminated string at data[*off], bounds checked */
static const char *
get_str(const unsigned char *data, size_t len, size_t *off)
{
	const unsigned char *nul;
	const char *s;

	if (*off >= len ||
	    (nul = memchr(data + *off, '\0', len - *off)) == NULL)
		return NULL;
	s = (const char *)data + *off;
	*off = (size_t)(nul - data) + 1;
	return s;
}

/* stage_of - the macro stage a SMFIC_MACRO packet is for */
static int
stage_of(char cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return SMFIM_CONNECT;
	case SMFIC_HELO:
		return SMFIM_HELO;
	case SMFIC_MAIL:
		return SMFIM_ENVFROM;
	case SMFIC_RCPT:
		return SMFIM_ENVRCPT;
	case SMFIC_DATA:
		return SMFIM_DATA;
	case SMFIC_BODYEOB:
	case SMFIC_BODY:
		return SMFIM_EOM;
	case SMFIC_EOH:
	case SMFIC_HEADER:
		return SMFIM_EOH;
	}
	return -1;
}

static void
clear_macros(struct econn *e, int from)
{
	int i;

	for (i = from; i < ENGINE_NSTAGES; i++)
		buf_truncate(&e->macros[i], 0);
}

static int
do_macro(struct econn *e, const unsigned char *data, size_t len)
{
	int st;

	if (len < 1)
		return -1;
	if ((st = stage_of((char)data[0])) < 0)
		return 0;		/* macros for a step we ignore */
	if (st == SMFIM_ENVFROM)
		clear_macros(e, SMFIM_ENVFROM);	/* a new transaction */
	if (st == SMFIM_CONNECT)
		clear_macros(e, SMFIM_CONNECT);
	buf_truncate(&e->macros[st], 0);
	buf_append(&e->macros[st], data + 1, len - 1);
	/* The pairs must end with a NUL for e_symval's strlen(). */
	if (len > 1 && data[len - 1] != '\0')
		buf_appendc(&e->macros[st], '\0');
	return 0;
}

/* The macro list of every stage (milter.h), sent at negotiation. */
static const struct {
	int stage;
	const char *names;
} symlists[] = {
	{ SMFIM_CONNECT, MILTER_MACROS_CONNECT },
	{ SMFIM_HELO, MILTER_MACROS_HELO },
	{ SMFIM_ENVFROM, MILTER_MACROS_ENVFROM },
	{ SMFIM_ENVRCPT, MILTER_MACROS_ENVRCPT },
	{ SMFIM_DATA, MILTER_MACROS_DATA },
	{ SMFIM_EOH, MILTER_MACROS_EOH },
	{ SMFIM_EOM, MILTER_MACROS_EOM },
};

/* do_optneg - answer the MTA's offer: actions, protocol, macro lists */
static int
do_optneg(struct econn *e, const unsigned char *data, size_t len)
{
	uint32_t version, actions, protocol;
	unsigned long want_a, want_p;
	size_t off = 0, i;
	struct buf r = BUF_INIT;

	if (get_u32(data, len, &off, &version) < 0 ||
	    get_u32(data, len, &off, &actions) < 0 ||
	    get_u32(data, len, &off, &protocol) < 0 || version < 2) {
		log_warnx("%s: bad option negotiation", e->peer);
		return -1;
	}
	if (milter_negotiate(e->mc, actions, protocol, &want_a, &want_p) !=
	    SMFIS_CONTINUE)
		return -1;
	e->pflags = want_p;
	if (actions & SMFIF_SETSYMLIST)
		want_a |= SMFIF_SETSYMLIST;
	put_u32(&r, version < ENGINE_VERSION ? version : ENGINE_VERSION);
	put_u32(&r, (uint32_t)want_a);
	put_u32(&r, (uint32_t)want_p);
	if (actions & SMFIF_SETSYMLIST)
		for (i = 0; i < sizeof(symlists) / sizeof(symlists[0]); i++) {
			put_u32(&r, (uint32_t)symlists[i].stage);
			buf_append(&r, symlists[i].names,
			    strlen(symlists[i].names) + 1);
		}
	queue(e, SMFIC_OPTNEG, r.data, r.len);
	buf_free(&r);
	return flush(e);
}

static int
do_connect(struct econn *e, const unsigned char *data, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa = NULL;
	const char *host, *addr;
	size_t off = 0;
	char family;
	uint16_t port = 0;

	memset(&ss, 0, sizeof(ss));
	if ((host = get_str(data, len, &off)) == NULL || off >= len)
		return -1;
	family = (char)data[off++];
	if (family == SMFIA_INET || family == SMFIA_INET6) {
		if (off + 2 > len)
			return -1;
		memcpy(&port, data + off, 2);
		off += 2;
		if ((addr = get_str(data, len, &off)) == NULL)
			return -1;
		if (family == SMFIA_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

			if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
				sin->sin_family = AF_INET;
				sin->sin_port = port;
				sa = (struct sockaddr *)sin;
			}
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			if (strncasecmp(addr, "IPv6:", 5) == 0)
				addr += 5;
			if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
				sin6->sin6_family = AF_INET6;
				sin6->sin6_port = port;
				sa = (struct sockaddr *)sin6;
			}
		}
	}
	reply(e, milter_connect(e->mc, host, sa));
	return 0;
}

static int
do_header(struct econn *e, const unsigned char *data, size_t len)
{
	const char *name, *value;
	size_t off = 0;

	if ((name = get_str(data, len, &off)) == NULL ||
	    (value = get_str(data, len, &off)) == NULL)
		return -1;
	reply(e, milter_header(e->mc, name, value));
	return 0;
}

/* continue_unless - CONTINUE for a step we do not use, unless told not to */
static void
continue_unless(struct econn *e, unsigned long nr)
{
	if (!(e->pflags & nr))
		reply(e, SMFIS_CONTINUE);
}

/*
 * dispatch - one packet after option negotiation: 1 or what its
 * handler returned (-1 malformed), -2 for an unknown command (logged)
 */
static int
dispatch(struct econn *e, char cmd, unsigned char *data, size_t len)
{
	switch (cmd) {
	case SMFIC_MACRO:
		return do_macro(e, data, len);
	case SMFIC_CONNECT:
		return do_connect(e, data, len);
	case SMFIC_HELO:
		reply(e, milter_helo(e->mc,
		    len > 0 && data[len - 1] == '\0' ?
		    (const char *)data : ""));
		break;
	case SMFIC_MAIL:
		reply(e, milter_envfrom(e->mc,
		    len > 0 && data[len - 1] == '\0' ?
		    (const char *)data : NULL));
		break;
	case SMFIC_RCPT:
		/* data: the address, then ESMTP arguments */
		reply(e, milter_envrcpt(e->mc,
		    len > 0 && data[len - 1] == '\0' ?
		    (const char *)data : ""));
		break;
	case SMFIC_DATA:
		continue_unless(e, SMFIP_NR_DATA);
		break;
	case SMFIC_UNKNOWN:
		continue_unless(e, SMFIP_NR_UNKN);
		break;
	case SMFIC_HEADER:
		return do_header(e, data, len);
	case SMFIC_EOH:
		continue_unless(e, SMFIP_NR_EOH);
		break;
	case SMFIC_BODY:
		reply(e, milter_body(e->mc, data, len));
		break;
	case SMFIC_BODYEOB:
		if (len > 0)
			(void)milter_body(e->mc, data, len);
		reply(e, milter_eom(e->mc));
		clear_macros(e, SMFIM_ENVRCPT);
		break;
	case SMFIC_ABORT:
		milter_abort(e->mc);
		clear_macros(e, SMFIM_ENVRCPT);
		break;
	case SMFIC_QUIT_NC:
		/* The MTA reuses the socket for a new SMTP session:
		 * the next CONNECT starts over, with what was
		 * negotiated and the generation kept. */
		milter_abort(e->mc);
		clear_macros(e, SMFIM_CONNECT);
		break;
	default:
		log_warnx("%s: unknown milter command 0x%02x, closing",
		    e->peer, (unsigned char)cmd);
		return -2;
	}
	return 1;
}

/* serve - the protocol loop of one connection; returns when it ends */
static void
serve(struct econn *e)
{
	unsigned char *data;
	size_t len;
	char cmd;
	int rc;

	while ((rc = next_packet(e, &cmd, &data, &len)) == 1) {
		if (cmd == SMFIC_OPTNEG) {
			if (do_optneg(e, data, len) < 0)
				return;
			continue;
		}
		if (cmd == SMFIC_QUIT)
			return;
		if ((rc = dispatch(e, cmd, data, len)) == -2)
			return;
		if (rc < 0) {
			log_warnx("%s: malformed '%c' packet, closing", e->peer,
			    cmd);
			return;
		}
		/* One write per reply: modifications and verdict together. */
		if (e->out.len > 0 && flush(e) < 0)
			return;
	}
}

/* econn_new - a worker's state, no connection yet (econn_free) */
static struct econn *
econn_new(void)
{
	struct econn *e = xcalloc(1, sizeof(*e));

	e->fd = -1;
	e->incap = ENGINE_READ_SIZE;
	e->in = xmalloc(e->incap);
	return e;
}

/* econn_open - start serving the connected socket fd with e: the
 * buffers of the last connection are kept, emptied */
static void
econn_open(struct econn *e, int fd, unsigned int timeout)
{
	int i;

	e->fd = fd;
	e->timeout = timeout;
	e->inoff = e->inlen = 0;
	buf_truncate(&e->out, 0);
	for (i = 0; i < ENGINE_NSTAGES; i++)
		buf_truncate(&e->macros[i], 0);
	e->reply[0] = '\0';
	e->pflags = 0;
	e->mc = milter_conn_new(&engine_io, e);
	snprintf(e->peer, sizeof(e->peer), "MTA connection %d", fd);
}

/* econn_close - release what the connection held (the handlers' state,
 * a read buffer grown for a large packet); the socket is the caller's */
static void
econn_close(struct econn *e)
{
	milter_conn_free(e->mc);
	e->mc = NULL;
	if (e->incap > ENGINE_READ_SIZE) {
		free(e->in);
		e->incap = ENGINE_READ_SIZE;
		e->in = xmalloc(e->incap);
	}
}

/* econn_free - release e (after econn_close) */
static void
econn_free(struct econn *e)
{
	int i;

	milter_conn_free(e->mc);
	free(e->in);
	buf_free(&e->out);
	for (i = 0; i < ENGINE_NSTAGES; i++)
		buf_free(&e->macros[i]);
	free(e);
}

void
engine_serve_fd(int fd, unsigned int timeout)
{
	struct econn *e = econn_new();

	econn_open(e, fd, timeout);
	serve(e);
	econn_close(e);
	econn_free(e);
}

/* list_push - put e at the head of *list; conns_lock held */
static void
list_push(struct econn **list, struct econn *e)
{
	e->prev = NULL;
	e->next = *list;
	if (*list != NULL)
		(*list)->prev = e;
	*list = e;
}

/* list_unlink - take e off *list; conns_lock held */
static void
list_unlink(struct econn **list, struct econn *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else if (*list == e)
		*list = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

/*
 * conn_end - the connection served by e is over: off the list of live
 * connections before the socket closes (conns_stop() never meets a
 * reused descriptor), then its state released
 */
static void
conn_end(struct econn *e)
{
	pthread_mutex_lock(&conns_lock);
	list_unlink(&conns, e);
	nconns--;
	pthread_mutex_unlock(&conns_lock);
	close(e->fd);
	e->fd = -1;
	econn_close(e);
}

static void *conn_thread(void *);

/* start_worker - one more worker, counted as idle by the caller (nthreads,
 * nidle) before; 0, or -1 (nothing started) */
static int
start_worker(void)
{
	pthread_attr_t attr;
	pthread_t tid;
	struct econn *e = econn_new();
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, conn_thread, e);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		econn_free(e);
		return -1;
	}
	return 0;
}

/*
 * worker_take - the worker e accepted fd: count and list it, and start
 * another worker when none is left to accept (e serves this one).  0, or
 * -1 when fd is refused (closed) and e is to accept again.
 */
static int
worker_take(struct econn *e, int fd, const struct sockaddr *sa)
{
	struct timeval tv = { (time_t)run_conf->milter.timeout, 0 };
	int on = 1, spare;

	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&conns_lock);
	if (nconns >= ENGINE_CONNS_MAX) {
		pthread_mutex_unlock(&conns_lock);
		log_warnx("too many MTA connections (%d), refusing one",
		    ENGINE_CONNS_MAX);
		close(fd);
		return -1;
	}
	nidle--;
	nconns++;
	econn_open(e, fd, run_conf->milter.timeout);
	list_push(&conns, e);
	if ((spare = nidle == 0 && !stopping)) {
		nthreads++;
		nidle++;
	}
	pthread_mutex_unlock(&conns_lock);
	if (spare && start_worker() < 0) {
		log_warnx("cannot start a connection thread");
		pthread_mutex_lock(&conns_lock);
		nthreads--;
		nidle--;
		pthread_mutex_unlock(&conns_lock);
	}
	return 0;
}

/*
 * worker_failed - accept4() failed with err: 0 to accept again, -1 when
 * the thread is to end (a stop, or ENGINE_IDLE_SECS without a connection
 * while another worker accepts)
 */
static int
worker_failed(int err)
{
	int end;

	pthread_mutex_lock(&conns_lock);
	end = stopping || ((err == EAGAIN || err == EWOULDBLOCK) && nidle > 1);
	if (end)
		nidle--;
	pthread_mutex_unlock(&conns_lock);
	if (end || err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
	    err == ECONNABORTED)
		return end ? -1 : 0;
	errno = err;
	log_warn("accept");
	usleep(100000);	/* EMFILE, ENFILE: let connections end first */
	return 0;
}

/* worker_back - e's connection is over: 0 to accept the next, -1 when
 * the thread is to end (a stop, or ENGINE_IDLE_MAX others accepting) */
static int
worker_back(void)
{
	int end;

	pthread_mutex_lock(&conns_lock);
	if (!(end = stopping || nidle >= ENGINE_IDLE_MAX))
		nidle++;
	pthread_mutex_unlock(&conns_lock);
	return end ? -1 : 0;
}

/*
 * conn_thread - a worker: accepts a connection itself (the kernel wakes
 * one of the workers waiting in accept), serves it, and accepts the next,
 * so that a connection costs no hand-off between threads and no thread
 * creation while workers are idle.  It counts in nthreads until
 * everything it used is released, so that engine_run() returning with
 * none left means no thread touches the handlers' state any more.
 */
static void *
conn_thread(void *arg)
{
	struct econn *e = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	for (;;) {
		sl = sizeof(ss);
		fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl,
		    SOCK_CLOEXEC);
		if (fd < 0) {
			if (worker_failed(errno) < 0)
				break;
			continue;
		}
		if (worker_take(e, fd, (struct sockaddr *)&ss) < 0)
			continue;
		serve(e);
		conn_end(e);
		if (worker_back() < 0)
			break;
	}
	econn_free(e);
	/* before it stops counting: nothing of the thread is released
	 * after engine_run() has seen the last one end */
	milter_thread_end();
	pthread_mutex_lock(&conns_lock);
	if (--nthreads == 0)
		pthread_cond_broadcast(&conns_done);
	pthread_mutex_unlock(&conns_lock);
	return NULL;
}

/* ---- listening ---------------------------------------------------------- */

/* listen_milter_inet - "PORT@HOST" or "PORT" (every address) */
static int
listen_milter_inet(const char *spec, int family, const struct conf *c,
    char *err, size_t errlen)
{
	char port[16];
	const char *at = strchr(spec, '@');
	size_t plen = at ? (size_t)(at - spec) : strlen(spec);

	if (plen == 0 || plen >= sizeof(port) || (at && strlen(at + 1) >= 256)) {
		snprintf(err, errlen, "bad socket \"%s\"", spec);
		return -1;
	}
	memcpy(port, spec, plen);
	port[plen] = '\0';
	return listen_inet(at ? at + 1 : NULL, port, family,
	    (int)c->milter.backlog, err, errlen);
}

/* engine_listen - open the socket and the stop pipe */
static int
engine_listen(const struct conf *c, char *err, size_t errlen)
{
	const char *s = c->milter.socket, *path;

	if ((path = listen_unix_path(s)) != NULL)
		listen_fd = listen_unix(path, (int)c->milter.backlog, err,
		    errlen);
	else if (strncmp(s, "inet6:", 6) == 0)
		listen_fd = listen_milter_inet(s + 6, AF_INET6, c, err, errlen);
	else if (strncmp(s, "inet:", 5) == 0)
		listen_fd = listen_milter_inet(s + 5, AF_INET, c, err, errlen);
	else
		snprintf(err, errlen, "bad socket \"%s\"", s);
	if (listen_fd < 0)
		return -1;
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* engine_stop - make engine_run() return */
static void
engine_stop(void)
{
	char c = 'x';

	if (stop_pipe[1] >= 0 && write(stop_pipe[1], &c, 1) < 0)
		log_warn("engine_stop");
}

/* conns_wait - wait up to seconds for every worker to end; the number
 * left.  Called with conns_lock held. */
static unsigned int
conns_wait(int seconds)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	while (nthreads > 0 && pthread_cond_timedwait(&conns_done, &conns_lock,
	    &deadline) == 0)
		;
	return nthreads;
}

/*
 * conns_stop - end every connection and worker: the listening socket is
 * shut, so that the workers waiting in accept() end at once; messages in
 * flight may finish (ENGINE_STOP_GRACE), then the sockets of those still
 * open are shut (their threads see the MTA close, abort the message and
 * end) and their threads waited for.  0 when none is left; -1 when
 * threads still run after ENGINE_STOP_JOIN (their memory must then be
 * left to the exit).
 */
static int
conns_stop(void)
{
	struct econn *e;
	unsigned int n;

	pthread_mutex_lock(&conns_lock);
	stopping = 1;
	pthread_mutex_unlock(&conns_lock);
	/* accept() then fails with EINVAL, now and for late callers */
	(void)shutdown(listen_fd, SHUT_RDWR);
	pthread_mutex_lock(&conns_lock);
	if ((n = conns_wait(ENGINE_STOP_GRACE)) > 0) {
		log_warnx("closing %u MTA connections still open", nconns);
		for (e = conns; e != NULL; e = e->next)
			(void)shutdown(e->fd, SHUT_RDWR);
		n = conns_wait(ENGINE_STOP_JOIN);
	}
	pthread_mutex_unlock(&conns_lock);
	return n > 0 ? -1 : 0;
}

/* engine_run - start the first worker, wait for engine_stop(); then end
 * the connections and workers */
static int
engine_run(const struct conf *c)
{
	struct timeval tv = { ENGINE_IDLE_SECS, 0 };
	struct pollfd pfd;
	int rc;

	run_conf = c;
	/* accept() in a worker gives up after ENGINE_IDLE_SECS (EAGAIN) */
	(void)setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&conns_lock);
	nthreads++;
	nidle++;
	pthread_mutex_unlock(&conns_lock);
	if (start_worker() < 0) {
		log_warnx("cannot start a connection thread");
		pthread_mutex_lock(&conns_lock);
		nthreads--;
		nidle--;
		pthread_mutex_unlock(&conns_lock);
	}
	pfd.fd = stop_pipe[0];
	pfd.events = POLLIN;
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	rc = conns_stop();
	if (rc == 0) {
		close(listen_fd);
		listen_fd = -1;
	}
	return rc;
}

const struct milter_engine engine_native = {
	.name = "native",
	.listen = engine_listen,
	.run = engine_run,
	.stop = engine_stop,
};
