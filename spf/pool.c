/*
 * pool - see pool.h.  The milter's side: start the supervisor, keep one
 * socket per worker, lend a worker to one check at a time.
 *
 * Locks: pool->mu guards the slots (busy flags, the count in use, the
 * sequence number); pool->ctl_mu serializes the spawn round trips with
 * the supervisor.  A slot's fd and pid are touched only by the thread
 * that borrowed it, so a slow replacement blocks that check alone.
 *
 * Growth: the slot array is allocated at its largest (spf.max_workers)
 * so that a borrowed slot never moves; n of them are in use.  A borrower
 * that finds none idle takes slot n (n++), whose worker it then spawns
 * itself, like a dead one (send_request).  Slots stay in use until
 * spf_pool_free.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spf/inflight.h"
#include "spf/pool.h"
#include "spf/wire.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

#define CTL_TIMEOUT_MS	10000	/* a spawn round trip, at most */
#define START_TIMEOUT_MS 10000	/* the supervisor's first hello */
#define SLOW_CACHE_MAX	1024	/* domains kept after an inbound timeout */

struct spf_slot {
	int fd;			/* -1: no worker (spawned at next use) */
	pid_t pid;
	int busy;
};

struct spf_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* a slot became free */
	struct spf_slot *slots;	/* max allocated, n in use */
	size_t n;
	size_t max;
	unsigned int timeout_ms;
	uint32_t seq;
	unsigned long checks;
	unsigned long replaced;

	pthread_mutex_t ctl_mu;
	int ctl;		/* -1 once the supervisor is gone */
	pid_t sup_pid;

	/* inbound only (spf_pool_check_inbound) */
	struct spf_inflight *inflight;	/* per client and domain */
	struct spf_cache *slow;		/* domains that timed out */
};

/* wait_readable - poll fd until readable or deadline: 1, 0 (timeout), -1 */
static int
wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int r;

	for (;;) {
		left = deadline - clock_mono_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r > 0)
			return 1;
		if (left == 0)
			return 0;
	}
}

/* ctl_recv - one hello from the supervisor, with the fd it carries (or
 * -1); 0, or -1 with err (the channel is then unusable) */
static int
ctl_recv(int ctl, int64_t deadline, struct spf_wire_hello *h, int *fdp,
    char *err, size_t errlen)
{
	unsigned char buf[sizeof(*h) + 1];
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;
	char why[128];
	ssize_t n;
	size_t i, nfd;
	int r, fds[4];

	*fdp = -1;
	if ((r = wait_readable(ctl, deadline)) <= 0) {
		snprintf(err, errlen, "SPF supervisor %s", r == 0 ?
		    "did not answer in time" : "unreachable");
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	while ((n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC)) < 0 &&
	    errno == EINTR)
		continue;
	if (n <= 0) {
		snprintf(err, errlen, "SPF supervisor gone");
		return -1;
	}
	/* collect every descriptor passed, so none leaks */
	nfd = 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS)
			for (i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int) && nfd < 4; i++)
				memcpy(&fds[nfd++], CMSG_DATA(cm) +
				    i * sizeof(int), sizeof(int));
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || nfd > 1 ||
	    spf_wire_hello_decode(buf, (size_t)n, h, why, sizeof(why)) < 0) {
		for (i = 0; i < nfd; i++)
			close(fds[i]);
		snprintf(err, errlen, "SPF supervisor sent a bad record");
		return -1;
	}
	if (nfd == 1)
		*fdp = fds[0];
	return 0;
}

/* ctl_lost - the supervisor channel failed: close it, reap if we can */
static void
ctl_lost(struct spf_pool *p)
{
	if (p->ctl >= 0) {
		close(p->ctl);
		p->ctl = -1;
		log_warnx("spf: the SPF supervisor is gone: SPF checks will "
		    "tempfail as workers end");
	}
	if (p->sup_pid > 0 && waitpid(p->sup_pid, NULL, WNOHANG) != 0)
		p->sup_pid = 0;
}

/* ctl_spawn - ask for a new worker (killing kill_pid first); its socket
 * and pid, or -1 with err */
static int
ctl_spawn(struct spf_pool *p, pid_t kill_pid, pid_t *pid, char *err,
    size_t errlen)
{
	struct spf_wire_hello h;
	struct spf_wire_ctl c;
	int fd = -1;

	pthread_mutex_lock(&p->ctl_mu);
	if (p->ctl < 0) {
		snprintf(err, errlen, "SPF supervisor gone");
		goto out;
	}
	spf_wire_ctl_encode(&c, (long)kill_pid);
	if (send(p->ctl, &c, sizeof(c), MSG_NOSIGNAL) != (ssize_t)sizeof(c)) {
		snprintf(err, errlen, "SPF supervisor gone");
		ctl_lost(p);
		goto out;
	}
	if (ctl_recv(p->ctl, clock_mono_ms() + CTL_TIMEOUT_MS, &h, &fd, err,
	    errlen) < 0) {
		ctl_lost(p);
		goto out;
	}
	if (h.status != 0 || fd < 0) {
		snprintf(err, errlen, "no new SPF worker: %s",
		    h.status != 0 ? h.text : "no socket passed");
		if (fd >= 0)
			close(fd);
		fd = -1;
		goto out;
	}
	*pid = (pid_t)h.pid;
out:
	pthread_mutex_unlock(&p->ctl_mu);
	return fd;
}

static struct metric m_restarts = METRIC_DEF(
	"outpost_spf_worker_restarts_total",
	"SPF workers replaced: died, timed out or retired.", METRIC_COUNTER,
	NULL, NULL, NULL, NULL);
struct metric *const spf_pool_metrics[] = { &m_restarts, NULL };

/* slot_replace - kill the slot's worker (if any), spawn another; 0/-1 */
static int
slot_replace(struct spf_pool *p, struct spf_slot *s, char *err,
    size_t errlen)
{
	pid_t old = s->pid;

	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->pid = 0;
	if (old > 0) {
		__atomic_add_fetch(&p->replaced, 1, __ATOMIC_RELAXED);
		metric_inc(&m_restarts, NULL, NULL);
	}
	if ((s->fd = ctl_spawn(p, old, &s->pid, err, errlen)) < 0) {
		s->pid = 0;
		return -1;
	}
	return 0;
}

/* borrow - an idle slot before deadline, marked busy; its index or -1 */
static long
borrow(struct spf_pool *p, int64_t deadline, uint32_t *seq)
{
	struct timespec ts;
	long i = -1;
	size_t k;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (k = 0; k < p->n; k++)
			if (!p->slots[k].busy) {
				i = (long)k;
				break;
			}
		if (i < 0 && p->n < p->max) {
			/* all busy: one more worker (spawned by the caller) */
			i = (long)p->n++;
			log_info("spf: all SPF workers busy: %zu now "
			    "(spf.max_workers %zu)", p->n, p->max);
		}
		if (i >= 0 || clock_mono_ms() >= deadline)
			break;
		ts.tv_sec = (time_t)(deadline / 1000);
		ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	if (i >= 0) {
		p->slots[i].busy = 1;
		*seq = ++p->seq;
		p->checks++;
	}
	pthread_mutex_unlock(&p->mu);
	return i;
}

/* give_back - the slot is idle again */
static void
give_back(struct spf_pool *p, long i)
{
	pthread_mutex_lock(&p->mu);
	p->slots[i].busy = 0;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* idle_broken - an idle worker's socket is readable: it died or talks
 * out of turn */
static int
idle_broken(int fd)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) != 0;
}

/* send_request - write req to a healthy worker of slot s, replacing a
 * dead idle one first (that costs no check); 0, or -1 with err */
static int
send_request(struct spf_pool *p, struct spf_slot *s,
    const struct spf_wire_req *req, char *err, size_t errlen)
{
	int attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		if ((s->fd < 0 || idle_broken(s->fd)) &&
		    slot_replace(p, s, err, errlen) < 0)
			return -1;
		/* never blocks: an idle worker's queue is empty, and one
		 * that stopped reading is as good as dead */
		if (send(s->fd, req, sizeof(*req), MSG_NOSIGNAL |
		    MSG_DONTWAIT) == (ssize_t)sizeof(*req))
			return 0;
		/* died between the poll and the send: it saw nothing */
		close(s->fd);
		s->fd = -1;
	}
	snprintf(err, errlen, "SPF worker died");
	return -1;
}

/* get_answer - the answer to seq from slot s before deadline; 0, or -1
 * with err saying why */
static int
get_answer(struct spf_slot *s, uint32_t seq, int64_t deadline,
    struct spf_answer *a, uint32_t *flags, char *err, size_t errlen)
{
	unsigned char buf[sizeof(struct spf_wire_ans) + 1];
	char why[128];
	ssize_t n;
	int r;

	if ((r = wait_readable(s->fd, deadline)) == 0) {
		snprintf(err, errlen, "SPF check timed out");
		return -1;
	}
	n = -1;
	if (r > 0)
		while ((n = recv(s->fd, buf, sizeof(buf), MSG_TRUNC)) < 0 &&
		    errno == EINTR)
			continue;
	if (n <= 0) {
		snprintf(err, errlen, "SPF worker died");
		return -1;
	}
	if (spf_wire_ans_decode(buf, (size_t)n, seq, a, flags, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "SPF worker sent a bad answer (%s)",
		    why);
		return -1;
	}
	return 0;
}

/* fail_answer - a temperror answer saying why */
static void
fail_answer(struct spf_answer *a, const char *why)
{
	a->result = SPF_RES_TEMPERROR;
	a->domain[0] = '\0';
	snprintf(a->text, sizeof(a->text), "%s", why);
}

/* ask_worker - one encoded request through a borrowed worker; fills a;
 * *worker_ms: how long the worker had it (-1: never sent); 0/-1 */
static int
ask_worker(struct spf_pool *p, struct spf_wire_req *req,
    struct spf_answer *a, int64_t *worker_ms)
{
	struct spf_slot *s;
	char err[SPF_TEXT_MAX], rerr[SPF_TEXT_MAX];
	uint32_t seq = 0, flags = 0;
	int64_t deadline, sent;
	long i;

	*worker_ms = -1;
	deadline = clock_mono_ms() + p->timeout_ms;
	if ((i = borrow(p, deadline, &seq)) < 0) {
		fail_answer(a, "no SPF worker free in time");
		return -1;
	}
	if (clock_mono_ms() >= deadline) {
		/* freed just too late: do not send (that would cost a kill) */
		fail_answer(a, "no SPF worker free in time");
		give_back(p, i);
		return -1;
	}
	req->seq = seq;
	s = &p->slots[i];
	if (send_request(p, s, req, err, sizeof(err)) < 0) {
		fail_answer(a, err);
		give_back(p, i);
		return -1;
	}
	sent = clock_mono_ms();
	if (get_answer(s, seq, deadline, a, &flags, err, sizeof(err)) < 0) {
		*worker_ms = clock_mono_ms() - sent;
		log_warnx("spf: worker %ld: %s: replaced", (long)s->pid, err);
		fail_answer(a, err);
		if (slot_replace(p, s, rerr, sizeof(rerr)) < 0)
			log_warnx("spf: %s", rerr);
		give_back(p, i);
		return -1;
	}
	*worker_ms = clock_mono_ms() - sent;
	if ((flags & SPF_WIRE_RETIRE) != 0 &&
	    slot_replace(p, s, rerr, sizeof(rerr)) < 0)
		log_warnx("spf: %s", rerr);
	give_back(p, i);
	return 0;
}

/* prepare - answer defaults and the encoded request: 1 (ask a worker),
 * or 0/-1 with a final answer (no pool, malformed identity) */
static int
prepare(struct spf_pool *p, enum spf_kind kind, const struct spf_query *q,
    struct spf_answer *a, struct spf_wire_req *req)
{
	char err[SPF_TEXT_MAX];

	memset(a, 0, sizeof(*a));
	a->identity = kind == SPF_KIND_HELO ? SPF_ID_HELO : SPF_ID_MAILFROM;
	if (p == NULL || q == NULL || q->ip == NULL || q->ip[0] == '\0') {
		fail_answer(a, "SPF check without a pool or client address");
		return -1;
	}
	if (spf_wire_req_encode(req, 0, kind, q, err, sizeof(err)) < 0) {
		/* RFC 7208 4.3: a malformed identity gives "none" */
		a->result = SPF_RES_NONE;
		snprintf(a->text, sizeof(a->text), "%s", err);
		return 0;
	}
	return 1;
}

int
spf_pool_check(struct spf_pool *p, enum spf_kind kind,
    const struct spf_query *q, struct spf_answer *a)
{
	struct spf_wire_req req;
	int64_t worker_ms;
	int r;

	if ((r = prepare(p, kind, q, a, &req)) <= 0)
		return r;
	return ask_worker(p, &req, a, &worker_ms);
}

/* check_domain - the domain an inbound check is about: the HELO name, or
 * the part of the sender after its last '@' (the whole when none) */
static const char *
check_domain(enum spf_kind kind, const struct spf_query *q)
{
	const char *at;

	if (kind == SPF_KIND_HELO)
		return q->helo != NULL ? q->helo : "";
	if (q->sender == NULL)
		return "";
	return (at = strrchr(q->sender, '@')) != NULL ? at + 1 : q->sender;
}

/* limited - a temperror answer for domain that no worker saw */
static void
limited(struct spf_answer *a, const char *domain, const char *why)
{
	a->result = SPF_RES_TEMPERROR;
	snprintf(a->text, sizeof(a->text), "%.*s", (int)sizeof(a->text) - 1,
	    why);
	snprintf(a->domain, sizeof(a->domain), "%s", domain);
}

int
spf_pool_check_inbound(struct spf_pool *p, enum spf_kind kind,
    const struct spf_query *q, struct spf_answer *a)
{
	struct spf_wire_req req;
	struct spf_preflight kept;
	const char *domain;
	char why[SPF_TEXT_MAX], client[SPF_NAME_MAX];
	int64_t worker_ms;
	int r;

	if ((r = prepare(p, kind, q, a, &req)) <= 0)
		return r;
	domain = check_domain(kind, q);
	if (spf_cache_get(p->slow, domain, clock_mono_ms() / 1000, &kept)) {
		limited(a, domain, kept.reply);
		return -1;
	}
	spf_inflight_client_key(q->ip, client, sizeof(client));
	if (spf_inflight_enter(p->inflight, client, domain, why,
	    sizeof(why)) < 0) {
		log_warnx("spf: client %s, domain %s: %s: temperror", q->ip,
		    domain, why);
		limited(a, domain, why);
		return -1;
	}
	r = ask_worker(p, &req, a, &worker_ms);
	spf_inflight_leave(p->inflight, client, domain);
	/* the domain's DNS is slow or hangs: the next checks of it get the
	 * temperror at once, for a while, instead of a worker each */
	if (a->result == SPF_RES_TEMPERROR &&
	    worker_ms >= (int64_t)p->timeout_ms / 2) {
		memset(&kept, 0, sizeof(kept));
		kept.worst = SPF_RES_TEMPERROR;
		snprintf(kept.reply, sizeof(kept.reply), "SPF check of %s "
		    "timed out less than %d s ago", domain,
		    SPF_CACHE_TEMPERROR_TTL);
		spf_cache_put(p->slow, domain, clock_mono_ms() / 1000,
		    SPF_CACHE_TEMPERROR_TTL, &kept);
		log_info("spf: domain %s timed out: temperror for %d s",
		    domain, SPF_CACHE_TEMPERROR_TTL);
	}
	return r;
}

/* start_supervisor - fork and exec the supervisor on a socketpair; 0/-1 */
static int
start_supervisor(struct spf_pool *p, const struct conf_spf *c,
    const struct conf_log *lg, char *err, size_t errlen)
{
	char mem[32], tmo[32], dns[16], voids[16];
	const char *argv[24];
	int sv[2], n = 0;
	pid_t pid;

	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)c->memory);
	snprintf(tmo, sizeof(tmo), "%u", c->timeout_ms);
	snprintf(dns, sizeof(dns), "%u", c->max_dns_lookups);
	snprintf(voids, sizeof(voids), "%u", c->max_void_lookups);
	argv[n++] = c->worker;
	argv[n++] = "--supervisor";
	argv[n++] = "3";
	if (c->user != NULL) {
		argv[n++] = "--user";
		argv[n++] = c->user;
	}
	argv[n++] = "--memory";
	argv[n++] = mem;
	argv[n++] = "--timeout-ms";
	argv[n++] = tmo;
	argv[n++] = "--max-dns-lookups";
	argv[n++] = dns;
	argv[n++] = "--max-void-lookups";
	argv[n++] = voids;
	if (c->inbound.allow_loopback)
		argv[n++] = "--allow-loopback";
	if (lg->facility != NULL) {
		argv[n++] = "--facility";
		argv[n++] = lg->facility;
	}
	if (getenv("OUTPOST_SPF_STDERR") != NULL)
		argv[n++] = "--stderr";
	if (lg->verbose || log_verbose())
		argv[n++] = "--verbose";
	argv[n] = NULL;

	if (access(c->worker, X_OK) < 0) {
		snprintf(err, errlen, "spf.worker %s: %s", c->worker,
		    strerror(errno));
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* async-signal-safe only: the milter may have threads */
		if (sv[1] == 3)
			(void)fcntl(3, F_SETFD, 0);
		else if (dup2(sv[1], 3) < 0)
			_exit(127);
		execv(c->worker, (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);
	p->ctl = sv[0];
	p->sup_pid = pid;
	return 0;
}

struct spf_pool *
spf_pool_new(const struct conf_spf *c, const struct conf_log *lg, char *err,
    size_t errlen)
{
	struct spf_pool *p;
	struct spf_wire_hello h;
	pthread_condattr_t ca;
	char why[SPF_TEXT_MAX];
	size_t k;
	int fd, st;

	if (c->workers < 1 || c->workers > 1024 ||
	    c->max_workers > 1024 ||
	    c->worker == NULL || c->timeout_ms == 0) {
		snprintf(err, errlen, "spf: bad pool settings");
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->ctl_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->ctl = -1;
	p->timeout_ms = c->timeout_ms;
	p->n = c->workers;
	p->max = c->max_workers > c->workers ? c->max_workers :
	    c->workers;
	p->slots = xcalloc(p->max, sizeof(*p->slots));
	for (k = 0; k < p->max; k++)
		p->slots[k].fd = -1;
	p->inflight = spf_inflight_new(c->inbound.max_per_client,
	    c->inbound.max_per_domain);
	p->slow = spf_cache_new(SLOW_CACHE_MAX);
	if (p->inflight == NULL || p->slow == NULL) {
		snprintf(err, errlen, "spf: out of resources");
		goto fail;
	}

	if (start_supervisor(p, c, lg, err, errlen) < 0)
		goto fail;
	if (ctl_recv(p->ctl, clock_mono_ms() + START_TIMEOUT_MS, &h, &fd, why,
	    sizeof(why)) < 0) {
		if (waitpid(p->sup_pid, &st, WNOHANG) == p->sup_pid) {
			p->sup_pid = 0;
			snprintf(err, errlen, "spf.worker %s did not start "
			    "(exit %d)", c->worker, WIFEXITED(st) ?
			    WEXITSTATUS(st) : 128 + WTERMSIG(st));
		} else
			snprintf(err, errlen, "spf.worker %s: %s",
			    c->worker, why);
		goto fail;
	}
	if (fd >= 0)
		close(fd);
	if (h.status != 0) {
		snprintf(err, errlen, "spf.worker %s: %s", c->worker,
		    h.text);
		goto fail;
	}
	if (h.flags & SPF_WIRE_NOT_ROOT)
		log_warnx("spf: not started as root: SPF workers run as uid "
		    "%lu, not as spf.user \"%s\"", (unsigned long)h.uid,
		    c->user);
	for (k = 0; k < p->n; k++)
		if ((p->slots[k].fd = ctl_spawn(p, 0, &p->slots[k].pid, err,
		    errlen)) < 0)
			goto fail;
	return p;
fail:
	spf_pool_free(p);
	return NULL;
}

struct spf_pool *
spf_pool_free(struct spf_pool *p)
{
	int64_t until;
	size_t k;
	pid_t r;

	if (p == NULL)
		return NULL;
	for (k = 0; k < p->n; k++)
		if (p->slots[k].fd >= 0)
			close(p->slots[k].fd);
	/* the supervisor kills its workers and exits on EOF */
	if (p->ctl >= 0)
		close(p->ctl);
	if (p->sup_pid > 0) {
		until = clock_mono_ms() + 2000;
		while ((r = waitpid(p->sup_pid, NULL, WNOHANG)) == 0 &&
		    clock_mono_ms() < until)
			poll(NULL, 0, 10);
		if (r == 0) {
			(void)kill(p->sup_pid, SIGKILL);
			(void)waitpid(p->sup_pid, NULL, 0);
		}
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->ctl_mu);
	spf_inflight_free(p->inflight);
	spf_cache_free(p->slow);
	free(p->slots);
	free(p);
	return NULL;
}

unsigned long
spf_pool_replaced(const struct spf_pool *p)
{
	return __atomic_load_n(&p->replaced, __ATOMIC_RELAXED);
}

unsigned long
spf_pool_checks(struct spf_pool *p)
{
	unsigned long n;

	pthread_mutex_lock(&p->mu);
	n = p->checks;
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t
spf_pool_pids(struct spf_pool *p, long *pids, size_t max)
{
	size_t k;

	pthread_mutex_lock(&p->mu);
	for (k = 0; k < p->n && k < max; k++)
		pids[k] = (long)p->slots[k].pid;
	pthread_mutex_unlock(&p->mu);
	return p->n;
}
