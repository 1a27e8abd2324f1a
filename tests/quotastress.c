/*
 * quotastress - drive one quota key from many threads, for the
 * concurrency and crash tests (tests/integration/quota_*.sh).
 *
 *   quotastress -c CONF -k KEY [-t THREADS] [-n ATTEMPTS] [-g GOFILE] [-R]
 *	Admits one unit (1 message, 1 recipient, 1 byte) per attempt for
 *	SASL login KEY, ATTEMPTS in all (default 1000) shared among
 *	THREADS threads (default 1), and prints
 *	    admitted A refused R errors E
 *	Exit 0, or 1 if any admission failed (QUOTA_ERROR).
 *
 *   quotastress -C -c CONF -k KEY [-t THREADS] [-n MAX] [-s SECONDS] [-R]
 *	Crash mode: admits in a loop and prints "seq N" (fflush) after
 *	each admission the store has committed, N counting them; stops
 *	after MAX admissions (default 10000000) or SECONDS (default 120),
 *	unless killed first, which is the point.  Every N printed was
 *	committed before it was printed, so the store must hold at least
 *	the last N printed, whenever the process dies.
 *
 * -g GOFILE: open the store, then wait (at most 60 s) until GOFILE
 * exists before the first attempt, so several processes start together.
 * -R: reserve and commit (quota_reserve + quota_commit) instead of
 * quota_admit.  Time is the wall clock.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "quota/quota.h"
#include "util/parse.h"

struct stress {
	struct quota *q;
	const char *key;
	int crash;
	int reserve;
	uint64_t attempts;		/* normal mode: this thread's share */
	uint64_t max;			/* crash mode: all threads together */
	int64_t deadline_ms;
	uint64_t admitted, refused, errors;
};

static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seq, started;

/* now_ms - the wall clock, ms */
static int64_t
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* usage - the synopsis, EX_USAGE */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: quotastress -c conf -k key [-t threads] "
	    "[-n attempts] [-g gofile] [-R]\n"
	    "       quotastress -C -c conf -k key [-t threads] [-n max] "
	    "[-s seconds] [-R]\n");
	exit(EX_USAGE);
}

/* one - one admission (or reservation + commit); QUOTA_ADMIT... */
static enum quota_result
one(struct stress *st)
{
	struct quota_who who = { st->key, NULL, NULL };
	struct quota_amount amt = { 1, 1, 1 };
	struct quota_verdict v;
	uint64_t token = 0;

	if (!st->reserve) {
		(void)quota_admit(st->q, &who, &amt, now_ms(), &v);
		return v.result;
	}
	(void)quota_reserve(st->q, &who, &amt, now_ms(), &token, &v);
	if (v.result != QUOTA_ADMIT || token == 0)
		return v.result;
	if (quota_commit(st->q, token, &who, &amt, now_ms(), &v) == -1) {
		fprintf(stderr, "quotastress: commit: %s\n", v.error);
		return QUOTA_ERROR;
	}
	return v.result;
}

/* run - a thread: its attempts, or the crash loop */
static void *
run(void *arg)
{
	struct stress *st = arg;
	enum quota_result r;
	uint64_t i;

	for (i = 0;; i++) {
		if (st->crash) {
			(void)pthread_mutex_lock(&seq_lock);
			if (started >= st->max || now_ms() >= st->deadline_ms) {
				(void)pthread_mutex_unlock(&seq_lock);
				break;
			}
			started++;
			(void)pthread_mutex_unlock(&seq_lock);
		} else if (i >= st->attempts) {
			break;
		}
		r = one(st);
		if (r == QUOTA_ADMIT) {
			st->admitted++;
			if (st->crash) {
				(void)pthread_mutex_lock(&seq_lock);
				printf("seq %llu\n",
				    (unsigned long long)++seq);
				(void)fflush(stdout);
				(void)pthread_mutex_unlock(&seq_lock);
			}
		} else if (r == QUOTA_REFUSE) {
			st->refused++;
		} else {
			st->errors++;
		}
	}
	return NULL;
}

/* wait_go - wait until path exists (60 s at most); 0 or -1 */
static int
wait_go(const char *path)
{
	struct stat sb;
	int i;

	for (i = 0; i < 60000; i++) {
		if (stat(path, &sb) == 0)
			return 0;
		(void)usleep(1000);
	}
	return -1;
}

int
main(int argc, char **argv)
{
	const char *cfile = NULL, *key = NULL, *gofile = NULL;
	uint64_t threads = 1, attempts = 0, seconds = 120, i;
	uint64_t admitted = 0, refused = 0, errors = 0;
	struct stress *st;
	pthread_t *tid;
	struct quota *q;
	struct conf *c;
	char err[1024];
	int ch, crash = 0, reserve = 0;

	while ((ch = getopt(argc, argv, "c:Cg:k:n:Rs:t:")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'C':
			crash = 1;
			break;
		case 'g':
			gofile = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, 1, UINT64_MAX / 2, &attempts, err,
			    sizeof(err)) == -1)
				usage();
			break;
		case 'R':
			reserve = 1;
			break;
		case 's':
			if (parse_u64(optarg, 1, 86400, &seconds, err,
			    sizeof(err)) == -1)
				usage();
			break;
		case 't':
			if (parse_u64(optarg, 1, 1024, &threads, err,
			    sizeof(err)) == -1)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || cfile == NULL || key == NULL)
		usage();
	if (attempts == 0)
		attempts = crash ? 10000000 : 1000;
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "quotastress: %s\n", err);
		return EX_CONFIG;
	}
	if ((q = quota_open(&c->quota, err, sizeof(err))) == NULL) {
		fprintf(stderr, "quotastress: %s\n", err);
		conf_free(c);
		return EX_UNAVAILABLE;
	}
	if (gofile != NULL && wait_go(gofile) == -1) {
		fprintf(stderr, "quotastress: %s did not appear\n", gofile);
		quota_close(q);
		conf_free(c);
		return EX_TEMPFAIL;
	}
	st = calloc(threads, sizeof(*st));
	tid = calloc(threads, sizeof(*tid));
	if (st == NULL || tid == NULL) {
		fprintf(stderr, "quotastress: out of memory\n");
		return EX_OSERR;
	}
	for (i = 0; i < threads; i++) {
		st[i].q = q;
		st[i].key = key;
		st[i].crash = crash;
		st[i].reserve = reserve;
		st[i].attempts = attempts / threads +
		    (i < attempts % threads ? 1 : 0);
		st[i].max = attempts;
		st[i].deadline_ms = now_ms() + (int64_t)seconds * 1000;
		if ((errno = pthread_create(&tid[i], NULL, run, &st[i])) != 0) {
			fprintf(stderr, "quotastress: thread: %s\n",
			    strerror(errno));
			return EX_OSERR;
		}
	}
	for (i = 0; i < threads; i++) {
		(void)pthread_join(tid[i], NULL);
		admitted += st[i].admitted;
		refused += st[i].refused;
		errors += st[i].errors;
	}
	if (!crash)
		printf("admitted %llu refused %llu errors %llu\n",
		    (unsigned long long)admitted, (unsigned long long)refused,
		    (unsigned long long)errors);
	else
		fprintf(stderr, "quotastress: done: admitted %llu refused "
		    "%llu errors %llu\n", (unsigned long long)admitted,
		    (unsigned long long)refused, (unsigned long long)errors);
	free(st);
	free(tid);
	quota_close(q);
	conf_free(c);
	return errors == 0 ? 0 : 1;
}
