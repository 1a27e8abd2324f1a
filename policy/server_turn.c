/*
 * server_turn - turns and the batches of replies (see server.c, at the
 * top): a turn's requests go to the store in one flush when it ends,
 * their replies are written into the slots of the turn's batch, and the
 * batches whose slots are all written give them, oldest first, to their
 * connections' pending output.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "policy/decide.h"
#include "policy/reply.h"
#include "policy/server_impl.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

struct metric server_m_request = METRIC_DEF(
	"outpost_policyd_request_seconds", "Time from a policy request to "
	"its reply (quota calls included).", METRIC_HISTOGRAM, NULL, NULL,
	NULL, NULL);

/* sbatch_new - an empty batch (a spare one if any) */
struct sbatch *
sbatch_new(struct server *s)
{
	struct sbatch *b = s->spare;

	if (b != NULL)
		s->spare = b->next;
	else {
		b = xcalloc(1, sizeof(*b));
		b->slots = xcalloc(BATCH_MAX, sizeof(*b->slots));
	}
	b->nslots = 0;
	b->g = NULL;
	b->waiting = 0;
	b->next = NULL;
	return b;
}

/* sbatch_done - b is out: keep it for reuse, drop its generation */
void
sbatch_done(struct server *s, struct sbatch *b)
{
	gen_unref(b->g);
	b->g = NULL;
	b->next = s->spare;
	s->spare = b;
}

/* conn_mark - c has pending replies to send */
static void
conn_mark(struct server *s, struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	c->dnext = s->dirty;
	s->dirty = c;
}

/*
 * batches_release - the batches in flight whose slots are all written,
 * from the oldest on, give their replies to their connections' pending
 * output
 */
void
batches_release(struct server *s)
{
	struct sbatch *b;
	struct conn *c;
	unsigned int i;

	while ((b = s->fly) != NULL && b->waiting == 0) {
		s->fly = b->next;
		if (s->fly == NULL)
			s->fly_tail = NULL;
		for (i = 0; i < b->nslots; i++) {
			struct slot *sl = &b->slots[i];

			if ((c = sl->c) == NULL)
				continue;
			c->nqueued--;
			if (sl->reply[0] == '\0') {
				log_warnx("%s: no answer from the batch (bug); "
				    "answering per store.on_error", c->peer);
				reply_set(sl->reply, sizeof(sl->reply),
				    reply_on_error(
				    b->g->conf->quota.store.on_error));
				s->stats.errors++;
			}
			buf_appends(&c->pending, sl->reply);
			conn_mark(s, c);
			metric_since(&server_m_request, NULL, NULL, sl->t0);
		}
		sbatch_done(s, b);
	}
}

/* send_pending - send the replies of every connection that has some */
void
send_pending(struct server *s)
{
	struct conn *c, *list;

	/* Sending may start the next turn: it gets a list of its own. */
	list = s->dirty;
	s->dirty = NULL;
	while ((c = list) != NULL) {
		list = c->dnext;
		c->dirty = 0;
		c->dnext = NULL;
		conn_send(c);	/* may free c */
	}
}

/* gen_flush - send what g's requests submitted */
void
gen_flush(struct gen *g)
{
	(void)decide_flush(g->d);
}

/*
 * batch_close - end the open batch: it joins the batches in flight,
 * its calls go to the store, and it leaves the list when its slots are
 * all written
 */
void
batch_close(struct server *s)
{
	struct sbatch *b = s->open;

	b->g = s->batch_gen;	/* the batch's reference from here on */
	s->open = NULL;
	s->batch_gen = NULL;
	s->batch_requests = 0;
	if (s->fly_tail != NULL)
		s->fly_tail->next = b;
	else
		s->fly = b;
	s->fly_tail = b;
	gen_flush(b->g);
	batches_release(s);
}

/* gen_async - answers are back: deliver, release, send */
void
gen_async(evutil_socket_t fd, short what, void *arg)
{
	struct gen *g = arg;
	struct server *s = g->srv;

	(void)fd;
	(void)what;
	gen_ref(g);
	(void)decide_poll(g->d);
	batches_release(s);
	gen_unref(g);
	if (!s->in_turn)	/* else the turn's end sends them */
		send_pending(s);
}

/* turn_end - end the turn's batch, then send every pending reply */
void
turn_end(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	s->in_turn = 0;
	if (s->batch_gen != NULL)
		batch_close(s);
	else
		batches_release(s);	/* answers delivered meanwhile */
	send_pending(s);
}

/* turn_join - the calls that follow belong to this turn's batch */
void
turn_join(struct server *s)
{
	if (!s->in_turn) {
		s->in_turn = 1;
		event_active(s->turn, EV_TIMEOUT, 0);
	}
	if (s->batch_gen != NULL)
		return;
	s->open = sbatch_new(s);
	s->batch_gen = gen_ref(s->cur);
}

/* slot_reply - the reply of a request: into its slot */
void
slot_reply(void *arg, const char *reply)
{
	struct slot *sl = arg;

	str_copy(sl->reply, reply, sizeof(sl->reply));
	ASSERT(sl->b->waiting > 0);
	sl->b->waiting--;
}
