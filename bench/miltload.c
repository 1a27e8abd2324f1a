/*
 * miltload - load a milter through the milter protocol, as Postfix would.
 *
 *	miltload -s SOCKET [-c CONNS] [-n COUNT] [-t SECONDS] [-M PERCONN]
 *	    [-S KIB] [-e SIGS] [-p PID] [-a AUTH] [-f FROM] [-r RCPT]
 *	    [-T TIMEOUT_MS] [-l LABEL] [-q]
 *
 * CONNS threads (default 1) each open a milter connection (OPTNEG,
 * CONNECT from 127.0.0.1, HELO) and send messages back to back over it:
 * MAIL, RCPT, DATA, headers, EOH, body, EOM, ABORT, as Postfix does for
 * each transaction of one SMTP session.  -M closes the milter connection
 * after PERCONN messages and opens a new one (-M 1: one message per SMTP
 * session, Postfix's usual case for submission; default 0: never).  The
 * run stops after COUNT messages (default 1000) or SECONDS (default 10),
 * whichever comes first; a message under way at the deadline finishes.
 *
 * The message (generated once, -S KiB of body, default 10) has the
 * headers a mail client writes: From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type, Content-Transfer-Encoding.  Macros make it
 * signable: {auth_authen} AUTH (default alice; -a "" sends none), client
 * address 127.0.0.1, a fresh queue id {i} per message.
 *
 * Each EOM reply must insert (or add) exactly SIGS DKIM-Signature headers
 * (-e, default 1) and accept or continue; anything else counts as an
 * error, as does a protocol or connection failure (the thread then opens
 * a new connection).
 *
 * Reports messages/s, latency per message (MAIL sent to EOM decision
 * read) p50/p99, and, with -p PID, the milter process's CPU time per
 * message from /proc/PID/stat (utime+stime, all threads, before and
 * after).  The last line is machine-readable:
 *	RESULT label=.. conns=N permsg=N msgs=N errors=N secs=S rate=R
 *	    p50_ms=X p99_ms=Y cpu_ms=Z client_cpu_ms=C sigs=K
 * (cpu_ms=-1 without -p; client_cpu_ms is this load client's own CPU time
 * per message, to tell when the client rather than the milter is the
 * limit on a small machine; other_pct is the share of the machine's CPU
 * time that neither the milter nor this client used during the run:
 * other work that skews the figures, -1 without -p).  Exit 0 when no error, 1 when some, 2 on usage.
 */
#include "config.h"

#include <errno.h>
#include <sys/resource.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tests/milterproto.h"
#include "util/buf.h"
#include "util/xmalloc.h"

#define MILTLOAD_MAX_CONNS	256
#define MILTLOAD_MAX_COUNT	10000000
#define MILTLOAD_MAX_SECONDS	3600
#define MILTLOAD_MAX_KIB	(64 * 1024)
#define MILTLOAD_MAX_ERRTEXT	5	/* distinct errors printed per thread */

struct load {
	const char *sock;
	const char *auth;
	const char *from;
	const char *rcpt;
	const char *label;
	int conns;
	long count;
	double seconds;
	long perconn;
	int sigs;
	int timeout_ms;
	struct mp_header *headers;
	size_t nheaders;
	struct buf body;
	double deadline;	/* monotonic seconds */
	long issued;		/* messages handed out (atomic) */
	pthread_mutex_t lock;	/* serialises error output */
};

struct worker {
	struct load *ld;
	int id;
	pthread_t tid;
	double *lat;		/* seconds, one per good message */
	size_t nlat, caplat;
	long ok;
	long errors;
	long connects;
	int printed;
	double last_done;	/* monotonic time of the last completion */
};

/* now - monotonic time in seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* usage - print the synopsis and exit 2 */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: miltload -s SOCKET [-c CONNS] [-n COUNT] "
	    "[-t SECONDS] [-M PERCONN]\n"
	    "\t[-S KIB] [-e SIGS] [-p PID] [-a AUTH] [-f FROM] [-r RCPT]\n"
	    "\t[-T TIMEOUT_MS] [-l LABEL] [-q]\n");
	exit(2);
}

/* num_arg - parse a bounded integer option or exit 2 */
static long
num_arg(int opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "miltload: -%c wants %ld..%ld, got \"%s\"\n",
		    opt, min, max, s);
		exit(2);
	}
	return v;
}

/* cpu_ticks - utime+stime of a process in clock ticks, -1 if unknown */
static long long
cpu_ticks(long pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	FILE *fp;
	size_t n;

	if (snprintf(path, sizeof(path), "/proc/%ld/stat", pid) >=
	    (int)sizeof(path))
		return -1;
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	n = fread(line, 1, sizeof(line) - 1, fp);
	fclose(fp);
	line[n] = '\0';
	/* Fields after "(comm)": state is field 3, utime 14, stime 15. */
	if ((p = strrchr(line, ')')) == NULL)
		return -1;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* machine_busy - busy clock ticks of all CPUs from /proc/stat, or -1 */
static long long
machine_busy(void)
{
	unsigned long long v[8];
	char line[512];
	FILE *fp;
	int n;

	if ((fp = fopen("/proc/stat", "r")) == NULL)
		return -1;
	n = fgets(line, sizeof(line), fp) == NULL ? 0 : sscanf(line,
	    "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(fp);
	if (n != 8)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

/* self_cpu - this process's user+system CPU time in seconds */
static double
self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* make_message - the headers and the body of the test message */
static void
make_message(struct load *ld, long kib)
{
	static const char *const words[] = { "milter", "outpost", "signing",
		"message", "quota", "header", "canonical", "relaxed", "body",
		"domain", "selector", "submission", "postfix", "kilobyte" };
	static struct mp_header h[8];
	struct buf line = BUF_INIT;
	size_t target = (size_t)kib * 1024, w = 0;
	char from[300];

	if (snprintf(from, sizeof(from), " Alice Example %s",
	    ld->from) >= (int)sizeof(from))
		fprintf(stderr, "miltload: -f too long, truncated\n");
	h[0].name = "From";
	h[0].value = xstrdup(from);
	h[1].name = "To";
	h[1].value = " Bob Example <bob@example.net>";
	h[2].name = "Subject";
	h[2].value = " Outpost benchmark message with a subject line of a "
	    "usual length";
	h[3].name = "Date";
	h[3].value = " Fri, 28 Nov 2025 10:00:00 +0000";
	h[4].name = "Message-ID";
	h[4].value = " <bench.20251128100000.4711@example.com>";
	h[5].name = "MIME-Version";
	h[5].value = " 1.0";
	h[6].name = "Content-Type";
	h[6].value = " text/plain; charset=utf-8; format=flowed";
	h[7].name = "Content-Transfer-Encoding";
	h[7].value = " 8bit";
	ld->headers = h;
	ld->nheaders = 8;
	while (ld->body.len < target) {
		buf_truncate(&line, 0);
		while (line.len < 70) {
			buf_appends(&line, words[w++ % (sizeof(words) /
			    sizeof(words[0]))]);
			buf_appendc(&line, ' ');
		}
		line.data[line.len - 1] = '.';
		if (ld->body.len + line.len + 2 > target && target -
		    ld->body.len > 2)
			buf_truncate(&line, target - ld->body.len - 2);
		buf_append(&ld->body, line.data, line.len);
		buf_append(&ld->body, "\r\n", 2);
	}
	buf_free(&line);
}

/* worker_error - count an error, print the first few */
static void LOG_PRINTF(2, 3)
worker_error(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	w->errors++;
	if (w->printed >= MILTLOAD_MAX_ERRTEXT)
		return;
	w->printed++;
	pthread_mutex_lock(&w->ld->lock);
	fprintf(stderr, "miltload: conn %d: ", w->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&w->ld->lock);
}

/* count_sigs - DKIM-Signature headers inserted or added by a reply */
static int
count_sigs(const struct mp_reply *r)
{
	size_t i;
	int n = 0;

	for (i = 0; i < r->nmods; i++)
		if ((r->mods[i].type == MP_MOD_INSHEADER ||
		    r->mods[i].type == MP_MOD_ADDHEADER) &&
		    strcasecmp(r->mods[i].name, "DKIM-Signature") == 0)
			n++;
	return n;
}

/* take_slot - claim the next message, or 0 when count or time is up */
static int
take_slot(struct load *ld)
{
	if (now() >= ld->deadline)
		return 0;
	return __atomic_fetch_add(&ld->issued, 1, __ATOMIC_RELAXED) <
	    ld->count;
}

/* open_session - connect, negotiate, CONNECT and HELO */
static struct mp_conn *
open_session(struct worker *w)
{
	struct mp_options opt = MP_OPTIONS_INIT;
	struct mp_reply r = MP_REPLY_INIT;
	struct mp_conn *c;
	char err[256];

	opt.timeout_ms = w->ld->timeout_ms;
	if ((c = mp_open(w->ld->sock, &opt, err, sizeof(err))) == NULL) {
		worker_error(w, "%s", err);
		return NULL;
	}
	w->connects++;
	mp_macro_set(c, "j", "mta.example");
	mp_macro_set(c, "{daemon_name}", "mta.example");
	mp_macro_set(c, "{daemon_addr}", "127.0.0.1");
	mp_macro_set(c, "v", "Postfix 3.7.11");
	mp_macro_set(c, "_", "localhost [127.0.0.1]");
	mp_macro_set(c, "{client_addr}", "127.0.0.1");
	mp_macro_set(c, "{client_name}", "localhost");
	if (w->ld->auth[0] != '\0') {
		mp_macro_set(c, "{auth_type}", "PLAIN");
		mp_macro_set(c, "{auth_authen}", w->ld->auth);
	}
	if (mp_connect_event(c, "localhost", "127.0.0.1", 40000 + w->id, &r,
	    err, sizeof(err)) < 0 || mp_helo(c, "client.example", &r, err,
	    sizeof(err)) < 0) {
		worker_error(w, "session start: %s", err);
		mp_reply_free(&r);
		return mp_close(c);
	}
	if (mp_verdict_final(r.verdict)) {
		worker_error(w, "milter answered %s at %s",
		    mp_verdict_name(r.verdict), r.stage == SMFIC_HELO ?
		    "HELO" : "CONNECT");
		mp_reply_free(&r);
		return mp_close(c);
	}
	mp_reply_free(&r);
	return c;
}

/* worker_run - one connection's loop */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct load *ld = w->ld;
	struct mp_reply r = MP_REPLY_INIT;
	struct mp_message m;
	struct mp_conn *c = NULL;
	const char *rcpts[1];
	char err[256], qid[32];
	long sent = 0, serial = 0;
	double t0, t1;
	int n;

	memset(&m, 0, sizeof(m));
	rcpts[0] = ld->rcpt;
	m.sender = ld->from;
	m.rcpts = rcpts;
	m.nrcpts = 1;
	m.headers = ld->headers;
	m.nheaders = ld->nheaders;
	m.body = ld->body.data;
	m.bodylen = ld->body.len;
	while (take_slot(ld)) {
		if (c == NULL) {
			if ((c = open_session(w)) == NULL) {
				usleep(10000);	/* a failing milter: no spin */
				continue;
			}
			sent = 0;
		}
		snprintf(qid, sizeof(qid), "4B%02X%08lX", w->id & 0xff,
		    ++serial);
		mp_macro_set(c, "i", qid);
		t0 = now();
		if (mp_send_message(c, &m, &r, err, sizeof(err)) < 0) {
			worker_error(w, "%s", err);
			c = mp_close(c);
			continue;
		}
		t1 = now();
		if (r.verdict != MP_ACCEPT && r.verdict != MP_CONTINUE)
			worker_error(w, "verdict %s%s%s at %c",
			    mp_verdict_name(r.verdict), r.text ? " " : "",
			    r.text ? r.text : "", r.stage);
		else if ((n = count_sigs(&r)) != ld->sigs)
			worker_error(w, "%d DKIM-Signature headers, want %d",
			    n, ld->sigs);
		else {
			if (w->nlat == w->caplat) {
				w->caplat = w->caplat ? w->caplat * 2 : 1024;
				w->lat = xreallocarray(w->lat, w->caplat,
				    sizeof(*w->lat));
			}
			w->lat[w->nlat++] = t1 - t0;
			w->ok++;
		}
		w->last_done = t1;
		mp_reply_free(&r);
		if (ld->perconn > 0 && ++sent >= ld->perconn)
			c = mp_close(c);
	}
	mp_close(c);
	return NULL;
}

/* cmp_double - qsort order for latencies */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* percentile - nearest-rank percentile of sorted values */
static double
percentile(const double *v, size_t n, double p)
{
	double x = p / 100.0 * (double)n;
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)x;
	if ((double)k < x)
		k++;		/* ceil without libm */
	if (k < 1)
		k = 1;
	return v[k - 1];
}

int
main(int argc, char **argv)
{
	struct load ld;
	struct worker *w;
	double start, end, secs, rate, p50, p99, cpu_ms = -1, self0, self_ms;
	double *all;
	long long cpu0 = -1, cpu1 = -1, busy0, busy1;
	double other_pct = -1;
	long pid = 0, kib = 10, ok = 0, errors = 0, connects = 0;
	size_t nall = 0, i;
	int ch, quiet = 0;

	memset(&ld, 0, sizeof(ld));
	ld.conns = 1;
	ld.count = 1000;
	ld.seconds = 10;
	ld.sigs = 1;
	ld.timeout_ms = 10000;
	ld.auth = "alice";
	ld.from = "<alice@example.com>";
	ld.rcpt = "<bob@example.net>";
	ld.label = "-";
	while ((ch = getopt(argc, argv, "s:c:n:t:M:S:e:p:a:f:r:T:l:q")) != -1) {
		switch (ch) {
		case 's': ld.sock = optarg; break;
		case 'c':
			ld.conns = (int)num_arg(ch, optarg, 1,
			    MILTLOAD_MAX_CONNS);
			break;
		case 'n':
			ld.count = num_arg(ch, optarg, 1, MILTLOAD_MAX_COUNT);
			break;
		case 't':
			ld.seconds = (double)num_arg(ch, optarg, 1,
			    MILTLOAD_MAX_SECONDS);
			break;
		case 'M':
			ld.perconn = num_arg(ch, optarg, 0,
			    MILTLOAD_MAX_COUNT);
			break;
		case 'S': kib = num_arg(ch, optarg, 0, MILTLOAD_MAX_KIB); break;
		case 'e': ld.sigs = (int)num_arg(ch, optarg, 0, 100); break;
		case 'p': pid = num_arg(ch, optarg, 1, 1L << 30); break;
		case 'a': ld.auth = optarg; break;
		case 'f': ld.from = optarg; break;
		case 'r': ld.rcpt = optarg; break;
		case 'T':
			ld.timeout_ms = (int)num_arg(ch, optarg, 1, 600000);
			break;
		case 'l': ld.label = optarg; break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (ld.sock == NULL || optind != argc)
		usage();
	make_message(&ld, kib);
	pthread_mutex_init(&ld.lock, NULL);
	w = xcalloc((size_t)ld.conns, sizeof(*w));

	if (pid > 0 && (cpu0 = cpu_ticks(pid)) < 0) {
		fprintf(stderr, "miltload: cannot read /proc/%ld/stat\n", pid);
		return 2;
	}
	self0 = self_cpu();
	busy0 = machine_busy();
	start = now();
	ld.deadline = start + ld.seconds;
	for (i = 0; i < (size_t)ld.conns; i++) {
		w[i].ld = &ld;
		w[i].id = (int)i;
		if (pthread_create(&w[i].tid, NULL, worker_run, &w[i]) != 0) {
			fprintf(stderr, "miltload: pthread_create failed\n");
			return 2;
		}
	}
	end = start;
	for (i = 0; i < (size_t)ld.conns; i++) {
		pthread_join(w[i].tid, NULL);
		ok += w[i].ok;
		errors += w[i].errors;
		connects += w[i].connects;
		nall += w[i].nlat;
		if (w[i].last_done > end)
			end = w[i].last_done;
	}
	if (pid > 0) {
		/* Let the milter finish what the last QUIT started. */
		usleep(100000);
		cpu1 = cpu_ticks(pid);
	}
	busy1 = machine_busy();
	self_ms = ok > 0 ? (self_cpu() - self0) * 1000.0 / (double)ok : -1;
	all = xcalloc(nall > 0 ? nall : 1, sizeof(*all));
	for (nall = 0, i = 0; i < (size_t)ld.conns; i++) {
		if (w[i].nlat > 0)
			memcpy(all + nall, w[i].lat, w[i].nlat * sizeof(*all));
		nall += w[i].nlat;
		free(w[i].lat);
	}
	qsort(all, nall, sizeof(*all), cmp_double);
	secs = end - start;
	rate = secs > 0 ? (double)ok / secs : 0;
	p50 = percentile(all, nall, 50) * 1000;
	p99 = percentile(all, nall, 99) * 1000;
	if (cpu0 >= 0 && cpu1 >= cpu0 && ok > 0)
		cpu_ms = (double)(cpu1 - cpu0) * 1000.0 /
		    (double)sysconf(_SC_CLK_TCK) / (double)ok;
	if (cpu0 >= 0 && cpu1 >= cpu0 && busy0 >= 0 && busy1 >= busy0) {
		double hz = (double)sysconf(_SC_CLK_TCK);
		double span = (now() - start) * hz *
		    (double)sysconf(_SC_NPROCESSORS_ONLN);
		double other = (double)(busy1 - busy0) - (double)(cpu1 - cpu0) -
		    (self_cpu() - self0) * hz;

		other_pct = span > 0 ? 100.0 * (other > 0 ? other : 0) / span :
		    0;
	}
	if (!quiet) {
		printf("socket %s, %d connection%s, %ld KiB messages, "
		    "%s per connection\n", ld.sock, ld.conns,
		    ld.conns == 1 ? "" : "s", kib,
		    ld.perconn > 0 ? "limited" : "unlimited messages");
		printf("  %ld messages in %.2f s (%ld milter connections), "
		    "%ld errors\n", ok, secs, connects, errors);
		printf("  %.1f messages/s, latency p50 %.3f ms, p99 %.3f ms\n",
		    rate, p50, p99);
		if (cpu_ms >= 0)
			printf("  milter CPU %.3f ms per message (pid %ld, "
			    "%lld ticks)\n", cpu_ms, pid, cpu1 - cpu0);
		printf("  client CPU %.3f ms per message\n", self_ms);
		if (other_pct >= 0)
			printf("  other work on the machine: %.1f%% of its CPU "
			    "time\n", other_pct);
	}
	printf("RESULT label=%s conns=%d permsg=%ld msgs=%ld errors=%ld "
	    "secs=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f cpu_ms=%.3f "
	    "client_cpu_ms=%.3f other_pct=%.1f sigs=%d\n", ld.label,
	    ld.conns, ld.perconn, ok, errors, secs, rate, p50, p99, cpu_ms,
	    self_ms, other_pct, ld.sigs);
	free(all);
	free(w);
	buf_free(&ld.body);
	free((char *)ld.headers[0].value);
	pthread_mutex_destroy(&ld.lock);
	return errors > 0 ? 1 : 0;
}
