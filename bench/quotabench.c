/*
 * quotabench - admissions per second, latency and bytes per key of a
 * quota store (LMDB or Redis).
 *
 *	quotabench -b lmdb -p PATH | -b redis -u URL
 *	    [-k KEYS] [-t THREADS] [-l 1|3] [-e] [-K] [-B] [-y SYNC]
 *	    [-i SECONDS]
 *	    [-s SECONDS]
 *	    [-n COUNT]
 *	    [-w WARM_SECONDS] [-x populate|run|both] [-S POPULATE_SECONDS]
 *	    [-L LABEL]
 *
 * The store is opened from a configuration written here (conf_load_string,
 * so limits are what the loader makes of them):
 *	-l 1: login-hourly (window, 1h, 60 buckets)
 *	-l 3: that, login-daily (calendar day, Europe/Berlin) and login-burst
 *	      (rate with a burst); the example set (default)
 * and, for LMDB, store.sync = SYNC if -y is given (else the default)
 * and store.sync_interval = -i SECONDS if given (else the default),
 * with limits high enough that nothing is refused (refusals are counted
 * and reported; a refused admission writes nothing, so it would flatter
 * the figures).  The rate limit is 100 a day with a burst of 1000000, so
 * each admission moves its record's TAT 864 s ahead and the record stays
 * live through the run, as an active sender's does; with -e it is
 * 1000000 a minute instead, so a rate record expires 60 us after its
 * admission and the store finds (and reclaims) expired records all the
 * time, as it would for the many senders who went quiet.
 *
 * -K (for comparison with the layout before record format 2): the record
 * keys passed to the store are made "KEY\x1fNAME" instead of quota_rkey()'s
 * "NAME\x1fKEY"; the LMDB store turns record keys around for its file
 * (store_lmdb.c), so the file then holds them name first, as record
 * format 1 did: the records of one sender in three leaves of the tree
 * instead of one.  Admission works the same; outpostctl would not read
 * such records.
 *
 * -B (busy senders): before the runs, every key's login-hourly counter is
 * replaced (the store's put(), as outpostctl quota set does) by one that
 * holds a recipient in each of its 61 buckets, as a sender active all
 * hour has; the runs then admit on full windows instead of windows of a
 * bucket or two.  Give it few keys (one put() each).
 *
 * populate: one admission (1 recipient) on each of KEYS distinct keys
 * ("user0000042@example.com"), split over the threads, bounded by -S
 * seconds (default 900; not finishing in time is an error).  For Redis,
 * used_memory from INFO before and after gives bytes per key; for LMDB
 * the file is measured after the run (see below).
 * run: THREADS threads admit on keys drawn uniformly at random from the
 * KEYS, back to back, until SECONDS (default 5) or COUNT admissions in
 * all (default 2000000), whichever comes first, after a warm-up of
 * WARM_SECONDS (default 1; not reported) that does the same, so that a
 * fresh process's first touches of the store (page faults, connections)
 * do not count, as they would not in a long-running daemon.  Each
 * admission is the store's admit() of one op per limit, as quota_admit()
 * calls it (record keys formatted and the calendar period looked up for
 * each one), timed with CLOCK_MONOTONIC; latency percentiles are over
 * every admission.
 *
 * LMDB bytes per key, after each phase: the store is closed and the file
 * opened read only: the "counters" database's pages (branch + leaf +
 * overflow, times the page size) over KEYS, and the file's used pages
 * (last page number + 1: all databases and free pages) over KEYS.
 *
 * Output: a human line, then one machine-readable line
 *	RESULT label=.. backend=.. phase=.. keys=N threads=N limits=N
 *	    admissions=N refused=N errors=N secs=S rate=R p50_us=.. p90_us=..
 *	    p99_us=.. p999_us=.. max_us=.. bytes_per_key=.. tree_bytes_per_key=..
 *	    cpu_s=.. faults=.. depth=..
 * (bytes figures -1 when not measured in that phase; cpu_s is this
 * process's CPU time during the phase, faults its page faults, depth the
 * LMDB counters tree's depth, -1 for Redis).  Exit 0, 1 when an
 * admission failed or populate did not finish, 2 on usage or set-up.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "conf/conf.h"
#include "quota/store.h"
#include "util/tz.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define QB_MAX_THREADS	64
#define QB_MAX_KEYS	100000000ULL
#define QB_MAX_COUNT	100000000ULL
#define QB_MAX_SECONDS	3600
#define QB_MAX_LIMITS	3
#define QB_KEY_FMT	"user%07" PRIu64 "@example.com"

struct bench {
	const char *backend;
	const char *path;
	const char *url;
	const char *label;
	uint64_t keys;
	unsigned int threads;
	unsigned int nlimits;
	int expiring;			/* -e: rate records expire at once */
	int key_first;			/* -K: record keys "KEY\x1fNAME" */
	int busy;			/* -B: full windows before the runs */
	const char *sync;		/* -y: LMDB store.sync, or NULL */
	unsigned int sync_interval;	/* -i: seconds, 0 = the default */
	unsigned int seconds;
	unsigned int warm_seconds;
	unsigned int populate_seconds;
	uint64_t count;
	struct conf *conf;
	struct quota_store *store;

	/* shared by the threads of a phase */
	int populate;
	int64_t deadline;		/* monotonic ns */
	uint64_t taken;			/* admissions handed out (atomic) */
};

struct worker {
	struct bench *b;
	unsigned int id;
	pthread_t tid;
	uint64_t seed;
	uint64_t lo, hi;		/* populate: keys [lo, hi) */
	uint32_t *lat;			/* ns, capped */
	uint64_t nlat, caplat;
	uint64_t done, refused, errors;
	char err[256];
};

/* mono_ns - the monotonic clock, ns */
static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* wall_ms - the wall clock, ms (the time passed to the store) */
static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cpu_s - this process's CPU time (user + system), s; and page faults */
static double
cpu_s(long *minflt)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1) {
		*minflt = 0;
		return 0;
	}
	*minflt = ru.ru_minflt + ru.ru_majflt;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* rnd - xorshift64 */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
usage(void)
{
	fprintf(stderr, "usage: quotabench -b lmdb -p PATH | -b redis -u URL "
	    "[-k KEYS] [-t THREADS]\n"
	    "\t[-l 1|3] [-e] [-K] [-B] [-y periodic|always] [-i SECONDS] "
	    "[-s SECONDS] "
	    "[-n COUNT] [-w WARM_SECONDS]\n"
	    "\t[-x populate|run|both] [-S POPULATE_SECONDS] [-L LABEL]\n");
	exit(2);
}

/* num - a number in [min, max] from an option, or usage */
static uint64_t
num(const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || x < min || x > max) {
		fprintf(stderr, "quotabench: %s: want a number in [%" PRIu64
		    ", %" PRIu64 "]\n", s, min, max);
		exit(2);
	}
	return x;
}

/* make_conf - the configuration of the run, through the real loader */
static struct conf *
make_conf(const struct bench *b)
{
	struct buf t = BUF_INIT;
	struct conf *c;
	char err[512];

	if (strcmp(b->backend, "lmdb") == 0) {
		buf_appendf(&t, "store = { backend = \"lmdb\"; path = \"%s\"; "
		    "map_size = \"16g\";%s%s%s", b->path,
		    b->sync != NULL ? " sync = \"" : "",
		    b->sync != NULL ? b->sync : "", b->sync != NULL ? "\";" : "");
		if (b->sync_interval > 0)
			buf_appendf(&t, " sync_interval = %u;",
			    b->sync_interval);
		buf_appends(&t, " };\n");
	} else
		buf_appendf(&t, "store = { backend = \"redis\"; url = \"%s\"; "
		    "timeout = \"2s\"; };\n", b->url);
	buf_appends(&t, "limits = (\n"
	    "  { name = \"login-hourly\"; key = \"sasl_username\"; "
	    "count = \"recipients\"; kind = \"window\"; limit = 1000000000; "
	    "period = \"1h\"; }");
	if (b->nlimits == 3) {
		buf_appends(&t, ",\n"
		    "  { name = \"login-daily\"; key = \"sasl_username\"; "
		    "count = \"recipients\"; kind = \"calendar\"; "
		    "limit = 1000000000; period = \"day\"; "
		    "timezone = \"Europe/Berlin\"; },\n"
		    "  { name = \"login-burst\"; key = \"sasl_username\"; "
		    "count = \"messages\"; kind = \"rate\"; ");
		buf_appends(&t, b->expiring ?
		    "limit = 1000000; period = \"1m\"; burst = 1000000; }" :
		    "limit = 100; period = \"1d\"; burst = 1000000; }");
	}
	buf_appends(&t, "\n);\n");
	c = conf_load_string("quotabench.conf", buf_cstr(&t), err, sizeof(err));
	buf_free(&t);
	if (c == NULL) {
		fprintf(stderr, "quotabench: %s\n", err);
		exit(2);
	}
	return c;
}

/* admit_key - one admission of 1 recipient (1 message) on key number k */
static int
admit_key(struct worker *w, uint64_t k)
{
	struct bench *b = w->b;
	const struct conf *c = b->conf;
	struct quota_op ops[QB_MAX_LIMITS];
	struct quota_op_result res[QB_MAX_LIMITS];
	char key[64];
	int64_t now = wall_ms();
	size_t i, n = c->quota.nlimits;
	int admitted;

	snprintf(key, sizeof(key), QB_KEY_FMT, k);
	memset(ops, 0, sizeof(ops));
	for (i = 0; i < n; i++) {
		const struct conf_limit *l = &c->quota.limits[i];

		ops[i].limit = l;
		if ((b->key_first ? quota_rkey(key, l->name, ops[i].rkey,
		    sizeof(ops[i].rkey)) : quota_rkey(l->name, key, ops[i].rkey,
		    sizeof(ops[i].rkey))) == -1) {
			snprintf(w->err, sizeof(w->err), "rkey too long");
			return -1;
		}
		ops[i].amount = 1;
		ops[i].eff_limit = l->limit;
		if (l->kind == CONF_QKIND_CALENDAR && tz_period(l->timezone,
		    l->month, now, &ops[i].period) == -1) {
			snprintf(w->err, sizeof(w->err), "tz_period %s",
			    l->timezone);
			return -1;
		}
	}
	if (b->store->ops->admit(b->store, ops, n, now, 0, 0, res, &admitted,
	    w->err, sizeof(w->err)) == -1)
		return -1;
	return admitted ? 0 : 1;
}

/*
 * make_busy - every key's login-hourly counter full: one recipient in
 * each bucket of the last hour (algo_charge at each bucket's time);
 * 0, or -1 with a message
 */
static int
make_busy(const struct bench *b)
{
	const struct conf_limit *l = &b->conf->quota.limits[0];
	int64_t now = wall_ms(), w = (int64_t)l->period * 1000 / l->buckets;
	struct quota_state st;
	char key[64], rkey[QUOTA_RKEY_MAX], err[512];
	uint64_t k;
	int64_t j;

	for (k = 0; k < b->keys; k++) {
		snprintf(key, sizeof(key), QB_KEY_FMT, k);
		if ((b->key_first ? quota_rkey(key, l->name, rkey,
		    sizeof(rkey)) : quota_rkey(l->name, key, rkey,
		    sizeof(rkey))) == -1) {
			fprintf(stderr, "quotabench: rkey too long\n");
			return -1;
		}
		memset(&st, 0, sizeof(st));
		for (j = l->buckets; j >= 0; j--)
			algo_charge(l, &st, 1, now - j * w, NULL);
		if (b->store->ops->put(b->store, rkey, &st,
		    algo_expires(l, &st, NULL), err, sizeof(err)) == -1) {
			fprintf(stderr, "quotabench: put: %s\n", err);
			return -1;
		}
	}
	return 0;
}

/* record - count the outcome and keep the latency */
static void
record(struct worker *w, int rc, int64_t ns)
{
	if (rc == -1)
		w->errors++;
	else if (rc == 1)
		w->refused++;
	w->done++;
	if (w->nlat < w->caplat)
		w->lat[w->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	int64_t t0, t1;
	uint64_t k;
	int rc;

	if (b->populate) {
		for (k = w->lo; k < w->hi; k++) {
			t0 = mono_ns();
			if (t0 >= b->deadline)
				break;
			rc = admit_key(w, k);
			record(w, rc, mono_ns() - t0);
		}
		return NULL;
	}
	for (;;) {
		if (__atomic_fetch_add(&b->taken, 1, __ATOMIC_RELAXED) >=
		    b->count)
			break;
		k = rnd(&w->seed) % b->keys;
		t0 = mono_ns();
		if (t0 >= b->deadline)
			break;
		rc = admit_key(w, k);
		t1 = mono_ns();
		record(w, rc, t1 - t0);
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* pct - the p-th percentile (0..1) of sorted v, in us */
static double
pct(const uint32_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (n == 0)
		return -1;
	i = (uint64_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* redis_used_memory - INFO memory used_memory of the URL's server */
static long long
redis_used_memory(const char *url)
{
	char host[256] = "127.0.0.1";
	int port = 6379;
	const char *p, *e;
	redisContext *c;
	redisReply *r;
	struct timeval tv = { 2, 0 };
	long long used = -1;

	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	if ((e = strchr(p, '@')) != NULL)
		p = e + 1;	/* no AUTH here: the bench servers have none */
	e = strpbrk(p, ":/");
	if (e == NULL)
		e = p + strlen(p);
	if ((size_t)(e - p) >= sizeof(host) || e == p)
		return -1;
	memcpy(host, p, (size_t)(e - p));
	host[e - p] = '\0';
	if (*e == ':')
		port = atoi(e + 1);
	if ((c = redisConnectWithTimeout(host, port, tv)) == NULL)
		return -1;
	if (c->err) {
		redisFree(c);
		return -1;
	}
	redisSetTimeout(c, tv);
	if ((r = redisCommand(c, "INFO memory")) != NULL) {
		if (r->type == REDIS_REPLY_STRING &&
		    (p = strstr(r->str, "used_memory:")) != NULL)
			used = atoll(p + strlen("used_memory:"));
		freeReplyObject(r);
	}
	redisFree(c);
	return used;
}

/*
 * lmdb_usage - bytes of the counters database and of the used file
 * pages; -1 each when the file cannot be read
 */
static void
lmdb_usage(const char *path, double *tree, double *used, int *depth)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_stat st;
	MDB_envinfo info;

	*tree = *used = -1;
	*depth = -1;
	if (mdb_env_create(&env) != 0)
		return;
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, 16ULL << 30);
	if (mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600) != 0)
		goto out;
	if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &st) == 0)
		*used = (double)(info.me_last_pgno + 1) * st.ms_psize;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		goto out;
	if (mdb_dbi_open(txn, "counters", 0, &dbi) == 0 &&
	    mdb_stat(txn, dbi, &st) == 0) {
		*tree = (double)(st.ms_branch_pages + st.ms_leaf_pages +
		    st.ms_overflow_pages) * st.ms_psize;
		*depth = (int)st.ms_depth;
	}
	mdb_txn_abort(txn);
out:
	mdb_env_close(env);
}

/* open_store - the store of the configuration, or exit 2 */
static struct quota_store *
open_store(const struct bench *b)
{
	struct quota_store *s;
	char err[256];

	if (strcmp(b->backend, "lmdb") == 0)
		s = store_lmdb_open(&b->conf->quota, err, sizeof(err));
	else
		s = store_redis_open(&b->conf->quota, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "quotabench: %s\n", err);
		exit(2);
	}
	return s;
}

/*
 * phase - run the threads of one phase (populate, or run: quiet for the
 * warm-up, which is not reported), print its figures; 0 or 1
 */
static int
phase(struct bench *b, int populate, int quiet)
{
	struct worker *w;
	uint32_t *all;
	uint64_t nall = 0, done = 0, refused = 0, errors = 0, per, i;
	long long mem0 = -1, mem1 = -1;
	double secs, cpu, tree = -1, used = -1, bpk = -1, tbpk = -1;
	int64_t start;
	unsigned int t;
	long flt0, flt1;
	int rc = 0, depth = -1;

	b->populate = populate;
	b->taken = 0;
	w = xcalloc(b->threads, sizeof(*w));
	per = populate ? b->keys : b->count;
	if (strcmp(b->backend, "redis") == 0 && populate)
		mem0 = redis_used_memory(b->url);
	for (t = 0; t < b->threads; t++) {
		w[t].b = b;
		w[t].id = t;
		w[t].seed = 0x9e3779b97f4a7c15ULL * (t + 1) ^ (uint64_t)mono_ns();
		if (w[t].seed == 0)
			w[t].seed = 1;
		w[t].lo = b->keys * t / b->threads;
		w[t].hi = b->keys * (t + 1) / b->threads;
		/* every admission's latency, up to 4M a thread */
		w[t].caplat = per / b->threads + 1;
		if (w[t].caplat > (4U << 20))
			w[t].caplat = 4U << 20;
		w[t].lat = xcalloc(w[t].caplat, sizeof(uint32_t));
	}
	cpu = cpu_s(&flt0);
	start = mono_ns();
	b->deadline = start + (int64_t)(populate ? b->populate_seconds :
	    quiet ? b->warm_seconds : b->seconds) * 1000000000;
	for (t = 0; t < b->threads; t++)
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "quotabench: pthread_create failed\n");
			exit(2);
		}
	for (t = 0; t < b->threads; t++)
		pthread_join(w[t].tid, NULL);
	secs = (double)(mono_ns() - start) / 1e9;
	cpu = cpu_s(&flt1) - cpu;
	all = xcalloc(per + b->threads, sizeof(uint32_t));
	for (t = 0; t < b->threads; t++) {
		done += w[t].done;
		refused += w[t].refused;
		errors += w[t].errors;
		for (i = 0; i < w[t].nlat; i++)
			all[nall++] = w[t].lat[i];
		if (w[t].errors > 0)
			fprintf(stderr, "quotabench: thread %u: %" PRIu64
			    " errors, last: %s\n", t, w[t].errors, w[t].err);
		free(w[t].lat);
	}
	qsort(all, nall, sizeof(all[0]), cmp_u32);
	if (populate && done < b->keys) {
		fprintf(stderr, "quotabench: populate: %" PRIu64 " of %" PRIu64
		    " keys in %u s\n", done, b->keys, b->populate_seconds);
		rc = 1;
	}
	if (errors > 0)
		rc = 1;
	if (quiet) {
		if (errors > 0)
			fprintf(stderr, "quotabench: warm-up: %" PRIu64
			    " errors\n", errors);
		free(all);
		free(w);
		return rc;
	}
	if (populate && mem0 >= 0) {
		mem1 = redis_used_memory(b->url);
		if (mem1 >= 0)
			bpk = (double)(mem1 - mem0) / (double)b->keys;
	}
	if (strcmp(b->backend, "lmdb") == 0) {
		/* measured on the closed file: reopened for what follows */
		b->store->ops->close(b->store);
		lmdb_usage(b->path, &tree, &used, &depth);
		if (used >= 0)
			bpk = used / (double)b->keys;
		if (tree >= 0)
			tbpk = tree / (double)b->keys;
		b->store = open_store(b);
	}
	printf("%s %s: %" PRIu64 " admissions on %" PRIu64 " keys, %u "
	    "thread(s), %u limit(s), in %.2f s: %.0f/s; latency us p50 %.1f "
	    "p99 %.1f p99.9 %.1f max %.1f; refused %" PRIu64 ", errors %"
	    PRIu64 "\n", b->backend, populate ? "populate" : "run", done,
	    b->keys, b->threads, b->nlimits, secs, done / secs,
	    pct(all, nall, 0.5), pct(all, nall, 0.99), pct(all, nall, 0.999),
	    pct(all, nall, 1.0), refused, errors);
	printf("RESULT label=%s backend=%s phase=%s keys=%" PRIu64
	    " threads=%u limits=%u admissions=%" PRIu64 " refused=%" PRIu64
	    " errors=%" PRIu64 " secs=%.3f rate=%.1f p50_us=%.2f "
	    "p90_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f "
	    "bytes_per_key=%.1f tree_bytes_per_key=%.1f cpu_s=%.3f "
	    "faults=%ld depth=%d\n", b->label,
	    b->backend, populate ? "populate" : "run", b->keys, b->threads,
	    b->nlimits, done, refused, errors, secs, done / secs,
	    pct(all, nall, 0.5), pct(all, nall, 0.9), pct(all, nall, 0.99),
	    pct(all, nall, 0.999), pct(all, nall, 1.0), bpk, tbpk, cpu,
	    flt1 - flt0, depth);
	fflush(stdout);
	free(all);
	free(w);
	return rc;
}

int
main(int argc, char **argv)
{
	struct bench b;
	const char *what = "both";
	int ch, rc = 0;

	memset(&b, 0, sizeof(b));
	b.label = "-";
	b.keys = 1000;
	b.threads = 1;
	b.nlimits = 3;
	b.seconds = 5;
	b.warm_seconds = 1;
	b.populate_seconds = 900;
	b.count = 2000000;
	while ((ch = getopt(argc, argv, "b:p:u:k:t:l:s:n:w:eKBy:i:x:S:L:")) != -1) {
		switch (ch) {
		case 'b': b.backend = optarg; break;
		case 'p': b.path = optarg; break;
		case 'u': b.url = optarg; break;
		case 'k': b.keys = num(optarg, 1, QB_MAX_KEYS); break;
		case 't': b.threads = (unsigned int)num(optarg, 1,
		    QB_MAX_THREADS); break;
		case 'l': b.nlimits = (unsigned int)num(optarg, 1, 3); break;
		case 's': b.seconds = (unsigned int)num(optarg, 1,
		    QB_MAX_SECONDS); break;
		case 'n': b.count = num(optarg, 1, QB_MAX_COUNT); break;
		case 'x': what = optarg; break;
		case 'e': b.expiring = 1; break;
		case 'K': b.key_first = 1; break;
		case 'B': b.busy = 1; break;
		case 'y': b.sync = optarg; break;
		case 'i': b.sync_interval = (unsigned int)num(optarg, 1,
		    3600); break;
		case 'w': b.warm_seconds = (unsigned int)num(optarg, 0,
		    QB_MAX_SECONDS); break;
		case 'S': b.populate_seconds = (unsigned int)num(optarg, 1,
		    QB_MAX_SECONDS); break;
		case 'L': b.label = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || b.backend == NULL || (b.nlimits != 1 &&
	    b.nlimits != 3) || (strcmp(what, "populate") != 0 &&
	    strcmp(what, "run") != 0 && strcmp(what, "both") != 0))
		usage();
	if (strcmp(b.backend, "lmdb") == 0 ? b.path == NULL :
	    strcmp(b.backend, "redis") != 0 || b.url == NULL)
		usage();
	log_init("quotabench", 1, 0);
	b.conf = make_conf(&b);
	b.store = open_store(&b);
	if (strcmp(what, "run") != 0)
		rc |= phase(&b, 1, 0);
	if (rc == 0 && b.busy)
		rc |= make_busy(&b) == -1;
	if (rc == 0 && strcmp(what, "populate") != 0 && b.warm_seconds > 0)
		rc |= phase(&b, 0, 1);
	if (rc == 0 && strcmp(what, "populate") != 0)
		rc |= phase(&b, 0, 0);
	b.store->ops->close(b.store);
	conf_free(b.conf);
	return rc;
}
