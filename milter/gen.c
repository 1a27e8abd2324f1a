/*
 * gen - configuration generations of the milter (milter.h).
 *
 * A generation is a loaded struct conf, the DKIM table built from it
 * and, when the milter counts quotas, the quota store it opened (which
 * borrows the conf).  One generation is current (gen_current); each
 * connection holds a counted reference to the one it started its
 * message under, so a reload (milter_reload) swaps in a new one without
 * disturbing messages in flight, and the old one is freed by whoever
 * drops its last reference (milter_gen_release).  gen_lock guards
 * gen_current and every refs count; nothing else here needs it.
 *
 * Fails: loading (the config, its keys, the quota store) reports into
 * err and leaves nothing behind; a failed reload keeps the running
 * generation and logs why.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "milter/milter_impl.h"
#include "util/log.h"
#include "util/xmalloc.h"

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_gen *gen_current;

/* gen_free - release a generation no connection uses any more */
static void
gen_free(struct milter_gen *g)
{
	if (g == NULL)
		return;
	quota_close(g->quota);
	dkim_table_free(g->table);
	conf_free(g->conf);
	free(g);
}

/* gen_counts - does this generation count quotas at all? */
static int
gen_counts(const struct conf *cf)
{
	return cf->milter.quotas != CONF_MQUOTA_OFF && cf->quota.nlimits > 0;
}

/* milter_gen_counts_rcpts - ... and recipients (then RCPT is needed) */
int
milter_gen_counts_rcpts(const struct conf *cf)
{
	size_t i;

	if (!gen_counts(cf))
		return 0;
	for (i = 0; i < cf->quota.nlimits; i++)
		if (cf->quota.limits[i].count == CONF_QCOUNT_RECIPIENTS)
			return 1;
	return 0;
}

/* gen_load - a generation; open_store: open the quota store too */
static struct milter_gen *
gen_load(const char *path, int open_store, char *err, size_t errlen)
{
	struct milter_gen *g = xcalloc(1, sizeof(*g));

	if ((g->conf = conf_load(path, err, errlen)) == NULL ||
	    (g->table = dkim_table_new(&g->conf->dkim,
	    g->conf->path, err, errlen)) == NULL ||
	    (open_store && milter_gen_open(g, err, errlen) < 0)) {
		gen_free(g);
		return NULL;
	}
	return g;
}

/* milter_gen_open - open the quota store of a checked generation */
int
milter_gen_open(struct milter_gen *g, char *err, size_t errlen)
{
	char qerr[512];

	if (g->quota != NULL || !gen_counts(g->conf))
		return 0;
	/* The quota borrows g->conf: both live and die with g. */
	if ((g->quota = quota_open(&g->conf->quota, qerr,
	    sizeof(qerr))) == NULL) {
		snprintf(err, errlen, "%s: quota store: %s", g->conf->path,
		    qerr);
		return -1;
	}
	return 0;
}

/* milter_gen_load - a generation with its quota store open */
struct milter_gen *
milter_gen_load(const char *path, char *err, size_t errlen)
{
	return gen_load(path, 1, err, errlen);
}

/* milter_gen_check - a generation without its quota store (-n) */
struct milter_gen *
milter_gen_check(const char *path, char *err, size_t errlen)
{
	return gen_load(path, 0, err, errlen);
}

/* milter_gen_acquire - a reference to the current generation */
struct milter_gen *
milter_gen_acquire(void)
{
	struct milter_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = gen_current;
	if (g != NULL)
		g->refs++;
	pthread_mutex_unlock(&gen_lock);
	return g;
}

/* milter_gen_release - drop a reference; the last one frees g */
void
milter_gen_release(struct milter_gen *g)
{
	int last;

	if (g == NULL)
		return;
	pthread_mutex_lock(&gen_lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	if (last)
		gen_free(g);
}

/* milter_gen_counts_conn - do g's quotas apply on a connection
 * (non_smtp: one of cleanup(8) for sendmail(1))? */
int
milter_gen_counts_conn(const struct milter_gen *g, int non_smtp)
{
	return g->quota != NULL &&
	    (g->conf->milter.quotas == CONF_MQUOTA_ALL || non_smtp);
}

/*
 * milter_conn_take_current - at a new transaction or SMTP session (an MTA such
 * as Sendmail keeps the milter connection across sessions, SMFIC_QUIT_NC),
 * move c to the current generation, so that a reload's keys and settings
 * apply to the next message on every connection.  Call it with no message
 * active (its reservations belong to the old store).  What was negotiated
 * stays: a connection negotiated without RCPT (no recipient limits then)
 * cannot count recipients under a generation that has them, which is
 * logged; its messages and bytes are counted.
 */
void
milter_conn_take_current(struct milter_conn *c)
{
	struct milter_gen *g = milter_gen_acquire();

	if (g == NULL || g == c->gen) {
		milter_gen_release(g);
		return;
	}
	milter_gen_release(c->gen);
	c->gen = g;
	c->counting = milter_gen_counts_conn(g, c->non_smtp);
	if (c->counting && (c->pflags & SMFIP_NORCPT) &&
	    milter_gen_counts_rcpts(g->conf))
		log_info("recipient limits came with a reload: an MTA "
		    "connection that sends no recipients counts them from "
		    "its next connection");
}

/* milter_install - make g current, dropping the old one */
void
milter_install(struct milter_gen *g)
{
	struct milter_gen *old;

	pthread_mutex_lock(&gen_lock);
	old = gen_current;
	g->refs++;			/* the "current" reference */
	gen_current = g;
	pthread_mutex_unlock(&gen_lock);
	milter_gen_release(old);
}

/* milter_thread_end - see milter.h */
void
milter_thread_end(void)
{
	dkim_thread_end();
}

/* milter_reload - load a new generation and swap it in, or keep the old */
int
milter_reload(const char *path)
{
	struct milter_gen *g;
	char err[1024];

	if ((g = milter_gen_load(path, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the running configuration: "
		    "%s", err);
		return -1;
	}
	log_set_verbose(g->conf->log.verbose);
	milter_install(g);
	log_info("configuration reloaded from %s: %zu keys", path,
	    dkim_table_nkeys(g->table));
	return 0;
}

/* milter_shutdown - drop the current generation at exit */
void
milter_shutdown(void)
{
	struct milter_gen *old;

	pthread_mutex_lock(&gen_lock);
	old = gen_current;
	gen_current = NULL;
	pthread_mutex_unlock(&gen_lock);
	milter_gen_release(old);
}
