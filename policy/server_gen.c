/*
 * server_gen - configuration generations (see server.h): a generation
 * is one loaded configuration with its store and its decide, counted by
 * reference (the server's current one, each connection's, each batch of
 * replies in flight); SIGHUP and SIGUSR1 build a new one and swap it in.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "policy/decide.h"
#include "policy/listeners.h"
#include "policy/server_impl.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/xmalloc.h"

struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

void
gen_unref(struct gen *g)
{
	const struct decide_stats *st;

	if (g == NULL || --g->refs > 0)
		return;
	if (g->async != NULL)
		event_free(g->async);
	if (g->d != NULL) {
		/* its last answers first: they write into slots */
		decide_wait(g->d);
		st = decide_stats(g->d);
		g->srv->stats.requests += st->requests;
		g->srv->stats.admitted += st->admitted;
		g->srv->stats.refused += st->refused;
		g->srv->stats.errors += st->errors;
	}
	decide_free(g->d);
	quota_close(g->quota);
	conf_free(g->conf);
	free(g);
}

/* gen_new - open conf's store; the generation takes conf */
struct gen *
gen_new(struct server *s, struct conf *conf, char *err, size_t errlen)
{
	struct gen *g;
	struct quota *q;
	int fd;

	if ((q = quota_open(&conf->quota, err, errlen)) == NULL)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	g->conf = conf;
	g->quota = q;
	g->d = decide_new(conf, q);
	g->refs = 1;
	g->srv = s;
	if ((fd = decide_fd(g->d)) >= 0 && ((g->async = event_new(s->base,
	    fd, EV_READ | EV_PERSIST, gen_async, g)) == NULL ||
	    event_add(g->async, NULL) < 0)) {
		snprintf(err, errlen, "cannot watch the store's answers");
		g->conf = NULL;		/* the caller keeps conf */
		gen_unref(g);
		return NULL;
	}
	return g;
}

/* on_reload - SIGHUP, SIGUSR1: build, validate, swap; keep the old
 * one on error */
void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	struct conf *c;
	struct gen *g, *old;
	char err[1024];

	log_info("%s: reloading %s", strsignal((int)sig), s->conf_path);
	notify_reloading();
	if ((c = conf_load(s->conf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the old configuration: %s",
		    err);
		notify_ready(NULL);
		return;
	}
	if ((g = gen_new(s, c, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the old configuration: "
		    "store: %s", err);
		conf_free(c);
		notify_ready(NULL);
		return;
	}
	if (!listeners_same(s->cur->conf, c))
		log_warnx("policyd.listen changed: restart to apply it");
	log_set_verbose(c->log.verbose || log_verbose());
	old = s->cur;
	s->cur = g;
	gen_unref(old);
	log_info("reloaded: %zu limits", c->quota.nlimits);
	notify_ready(NULL);
}
