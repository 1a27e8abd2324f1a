/*
 * lm - the libmilter engine: libmilter speaks the protocol and calls
 * these thin wrappers, which hand over to the handlers of milter.c.
 *
 * Kept as the reference for our own engine (engine.c): the integration
 * tests run against both (milter.engine = "libmilter").  It costs more:
 * libmilter polls and reads twice for every packet, and writes each
 * modification separately.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "milter/engine.h"
#include "milter/milter.h"
#include "util/log.h"

static const char *
lm_symval(void *ctx, const char *name)
{
	return smfi_getsymval(ctx, (char *)name);
}

static int
lm_setreply(void *ctx, const char *rcode, const char *xcode,
    const char *text)
{
	return smfi_setreply(ctx, (char *)rcode, (char *)xcode,
	    (char *)text) == MI_SUCCESS ? 0 : -1;
}

static int
lm_insheader(void *ctx, int index, const char *name, const char *value)
{
	return smfi_insheader(ctx, index, (char *)name, (char *)value) ==
	    MI_SUCCESS ? 0 : -1;
}

static int
lm_quarantine(void *ctx, const char *reason)
{
	return smfi_quarantine(ctx, (char *)reason) == MI_SUCCESS ? 0 : -1;
}

/* How long lm_run() waits for libmilter's connection threads to end. */
#define LM_STOP_WAIT	10

/* Connections with handler state: libmilter does not wait for their
 * threads when smfi_main() returns, lm_run() does. */
static pthread_mutex_t lm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lm_done = PTHREAD_COND_INITIALIZER;
static unsigned int lm_nconns;

static const struct milter_io lm_io = { lm_symval, lm_setreply,
	lm_insheader, lm_quarantine };

/* conn - this connection's handler state, made on first use */
static struct milter_conn *
conn(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c == NULL) {
		c = milter_conn_new(&lm_io, ctx);
		smfi_setpriv(ctx, c);
		pthread_mutex_lock(&lm_lock);
		lm_nconns++;
		pthread_mutex_unlock(&lm_lock);
	}
	return c;
}

static sfsistat
lm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	sfsistat rc = milter_negotiate(conn(ctx), f0, f1, pf0, pf1);

	*pf2 = *pf3 = 0;
	if (rc == SMFIS_CONTINUE && (f0 & SMFIF_SETSYMLIST)) {
		*pf0 |= SMFIF_SETSYMLIST;
		smfi_setsymlist(ctx, SMFIM_CONNECT, MILTER_MACROS_CONNECT);
		smfi_setsymlist(ctx, SMFIM_HELO, MILTER_MACROS_HELO);
		smfi_setsymlist(ctx, SMFIM_ENVFROM, MILTER_MACROS_ENVFROM);
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, MILTER_MACROS_ENVRCPT);
		smfi_setsymlist(ctx, SMFIM_DATA, MILTER_MACROS_DATA);
		smfi_setsymlist(ctx, SMFIM_EOH, MILTER_MACROS_EOH);
		smfi_setsymlist(ctx, SMFIM_EOM, MILTER_MACROS_EOM);
	}
	return rc;
}

static sfsistat
lm_connect(SMFICTX *ctx, char *host, struct sockaddr *sa)
{
	return milter_connect(conn(ctx), host, sa);
}

static sfsistat
lm_helo(SMFICTX *ctx, char *name)
{
	return milter_helo(conn(ctx), name);
}

static sfsistat
lm_envfrom(SMFICTX *ctx, char **argv)
{
	return milter_envfrom(conn(ctx), argv ? argv[0] : NULL);
}

static sfsistat
lm_envrcpt(SMFICTX *ctx, char **argv)
{
	return milter_envrcpt(conn(ctx), argv && argv[0] ? argv[0] : "");
}

static sfsistat
lm_header(SMFICTX *ctx, char *name, char *value)
{
	return milter_header(conn(ctx), name, value);
}

static sfsistat
lm_body(SMFICTX *ctx, unsigned char *p, size_t len)
{
	return milter_body(conn(ctx), p, len);
}

static sfsistat
lm_eom(SMFICTX *ctx)
{
	return milter_eom(conn(ctx));
}

static sfsistat
lm_abort(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c != NULL)
		milter_abort(c);
	return SMFIS_CONTINUE;
}

static sfsistat
lm_close(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	milter_conn_free(c);
	smfi_setpriv(ctx, NULL);
	pthread_mutex_lock(&lm_lock);
	if (--lm_nconns == 0)
		pthread_cond_broadcast(&lm_done);
	pthread_mutex_unlock(&lm_lock);
	return SMFIS_CONTINUE;
}

static struct smfiDesc lm_desc = {
	.xxfi_name = "outpost-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = MILTER_ACTIONS,
	.xxfi_connect = lm_connect,
	.xxfi_helo = lm_helo,
	.xxfi_envfrom = lm_envfrom,
	.xxfi_envrcpt = lm_envrcpt,
	.xxfi_header = lm_header,
	.xxfi_body = lm_body,
	.xxfi_eom = lm_eom,
	.xxfi_abort = lm_abort,
	.xxfi_close = lm_close,
	.xxfi_negotiate = lm_negotiate,
};

/*
 * tcp_nodelay_listener - set TCP_NODELAY on libmilter's listening TCP
 * socket; Linux passes it on to every accepted connection.  Without it
 * libmilter's separate small writes at end of message (each header
 * insertion, then the reply) meet Nagle's algorithm and the MTA's
 * delayed ACK, and every message waits ~40 ms.  libmilter does not
 * expose the descriptor, so we find it: this process's listening TCP
 * socket.
 */
static void
tcp_nodelay_listener(void)
{
	int fd, on = 1, listening, domain;
	socklen_t len;

	for (fd = 3; fd < 1024; fd++) {
		len = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &len) < 0 || !listening)
			continue;
		len = sizeof(domain);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
		    (domain != AF_INET && domain != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) < 0)
			log_warn("setsockopt TCP_NODELAY");
	}
}

/* lm_listen - hand libmilter the settings and let it open the socket */
static int
lm_listen(const struct conf *c, char *err, size_t errlen)
{
	if (smfi_setconn(c->milter.socket) != MI_SUCCESS ||
	    smfi_settimeout((int)c->milter.timeout) != MI_SUCCESS ||
	    smfi_setbacklog((int)c->milter.backlog) != MI_SUCCESS ||
	    smfi_register(lm_desc) != MI_SUCCESS) {
		snprintf(err, errlen, "libmilter set-up failed");
		return -1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		snprintf(err, errlen, "cannot open milter socket %s",
		    c->milter.socket);
		return -1;
	}
	tcp_nodelay_listener();
	return 0;
}

/*
 * lm_run - libmilter's loop; then wait (LM_STOP_WAIT) for the
 * connections libmilter leaves running: -1 if some still are.
 */
static int
lm_run(const struct conf *c)
{
	struct timespec deadline;
	int rc;

	(void)c;
	rc = smfi_main() == MI_SUCCESS ? 0 : -1;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += LM_STOP_WAIT;
	pthread_mutex_lock(&lm_lock);
	while (lm_nconns > 0 && pthread_cond_timedwait(&lm_done, &lm_lock,
	    &deadline) == 0)
		;
	if (lm_nconns > 0)
		rc = -1;
	pthread_mutex_unlock(&lm_lock);
	return rc;
}

/* lm_stop - close libmilter's socket: smfi_main() returns */
static void
lm_stop(void)
{
	(void)smfi_stop();
}

const struct milter_engine engine_libmilter = {
	.name = "libmilter",
	.listen = lm_listen,
	.run = lm_run,
	.stop = lm_stop,
};

/*
 * sigwait - keep libmilter's signal thread from our signals.
 *
 * smfi_main() starts a thread that waits in sigwait() for SIGHUP,
 * SIGTERM and SIGINT and stops the milter on any of them, so under
 * libmilter SIGHUP could not reload, and which thread took a signal,
 * ours or libmilter's, was the kernel's choice.  main.c's signal thread
 * takes those signals under both engines, with sigwaitinfo().  This
 * definition in the program is the one the dynamic linker binds
 * libmilter's call to: the signals main.c owns (MILTER_SIGNALS) leave the
 * set, and a caller left waiting for nothing (libmilter's thread) sleeps
 * for good; its signals stay blocked, so pause() never returns.
 */
int
sigwait(const sigset_t *set, int *sig)
{
	static const int ours[] = { MILTER_SIGNALS };
	sigset_t rest = *set;
	size_t i;
	int s;

	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		(void)sigdelset(&rest, ours[i]);
	if (sigisemptyset(&rest))
		for (;;)
			(void)pause();
	while ((s = sigwaitinfo(&rest, NULL)) < 0)
		if (errno != EINTR)
			return errno;
	*sig = s;
	return 0;
}
