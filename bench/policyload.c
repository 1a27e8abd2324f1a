/*
 * policyload - load client for Postfix policy servers (SMTPD_POLICY_README):
 * N connections, each sending requests back to back as Postfix does (four
 * RCPT requests then END-OF-MESSAGE per instance, one request in flight
 * per connection), for T seconds or C requests in all; prints requests/s
 * and latency percentiles.  Like Postfix's policy client (timed_read()
 * in src/util/timed_read.c), it waits for each reply with poll() and a
 * timeout (READ_TIMEOUT_MS; a server that does not answer in time is an
 * error) before reading it, rather than sleeping in a blocking read():
 * a reader asleep in read() on a unix socket is also woken, for nothing,
 * each time the server consumes the request it just wrote (the kernel
 * signals write space on the same wait queue), which doubled the
 * wake-ups per request and charged them to the server.
 *
 * usage: policyload -s unix:PATH|inet:HOST:PORT [-c conns] [-t seconds]
 *	  [-n count] [-k senders] [-e] [-E]
 *   -c  connections, one thread each (default 1)
 *   -E  event-driven: one thread drives every connection with epoll
 *       (still one request in flight per connection), so that the client
 *       takes less of the machine's CPU from the server it measures; by
 *       default each connection has a thread that blocks on it, as each
 *       Postfix smtpd process does
 *   -t  seconds to run (default 5); -n  stop after this many requests
 *   -k  distinct senders (quota keys) per connection (default 100)
 *   -e  RCPT only (no END-OF-MESSAGE), for servers that only use RCPT
 * Output, one line: "conns=N requests=R seconds=S rps=X p50_us=A p99_us=B
 * max_us=M errors=E".  Exit 1 when a reply was missing or malformed.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <sys/epoll.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define READ_TIMEOUT_MS 10000

struct worker {
	pthread_t tid;
	int id;
	uint64_t *lat;		/* ns per request */
	size_t nlat, cap;
	uint64_t errors;
};

static const char *target;
static int nconns = 1, seconds = 5, rcpt_only, nkeys = 100, evmode;
static uint64_t max_count;
static volatile int stop;
static uint64_t total;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* dial - connect to target */
static int
dial(void)
{
	int fd, one = 1;

	if (strncmp(target, "unix:", 5) == 0) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", target + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	if (strncmp(target, "inet:", 5) == 0) {
		char host[256], *port;
		struct addrinfo hints, *ai;

		snprintf(host, sizeof(host), "%s", target + 5);
		if ((port = strrchr(host, ':')) == NULL)
			return -1;
		*port++ = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, port, &hints, &ai) != 0)
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (fd >= 0)
				close(fd);
			freeaddrinfo(ai);
			return -1;
		}
		freeaddrinfo(ai);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return fd;
	}
	return -1;
}

/* ask - send one request, read its reply up to the empty line */
static int
ask(int fd, const char *req, size_t len)
{
	char buf[1024];
	size_t got = 0;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, req, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		req += n;
		len -= (size_t)n;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		if ((n = poll(&pfd, 1, READ_TIMEOUT_MS)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;	/* error, or no reply in time */
		if ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (got >= 2 && buf[got - 1] == '\n' && buf[got - 2] == '\n')
			break;
		if (got >= sizeof(buf) - 1)
			return -1;
	}
	return strncmp(buf, "action=", 7) == 0 ? 0 : -1;
}

/* mkreq - request number i of connection id into req; its length */
static int
mkreq(char *req, size_t len, int id, uint64_t i)
{
	int step = rcpt_only ? 0 : (int)(i % 5);
	uint64_t inst = i / 5;

	return snprintf(req, len,
	    "request=smtpd_access_policy\nprotocol_state=%s\n"
	    "protocol_name=ESMTP\nclient_address=127.0.0.1\n"
	    "client_name=localhost\nhelo_name=bench.example\n"
	    "queue_id=\nsender=user%d-%llu@example.com\n"
	    "recipient=rcpt%d@example.net\nrecipient_count=%d\n"
	    "instance=%d.%llu.1\nsasl_method=\nsasl_username=\n"
	    "size=%d\n\n", step == 4 ? "END-OF-MESSAGE" : "RCPT",
	    id, (unsigned long long)(inst % (uint64_t)nkeys), step,
	    step == 4 ? 4 : 0, id, (unsigned long long)inst,
	    step == 4 ? 2048 : 0);
}

/* keep - record one latency */
static void
keep(struct worker *w, uint64_t ns)
{
	if (w->nlat == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 65536;
		w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
		if (w->lat == NULL)
			abort();
	}
	w->lat[w->nlat++] = ns;
}

/* counted - count one request against -n; 1 when it was the last */
static int
counted(void)
{
	int last = 0;

	if (max_count) {
		pthread_mutex_lock(&total_lock);
		if (++total >= max_count)
			stop = 1;
		last = stop;
		pthread_mutex_unlock(&total_lock);
	}
	return last;
}

struct evconn {
	int fd;
	int id;
	uint64_t i;		/* requests sent */
	uint64_t t0;		/* when the one in flight was sent */
	char buf[1024];
	size_t got;
	int busy;		/* a request is in flight */
};

/* evsend - send connection c's next request; -1 on error */
static int
evsend(struct evconn *c)
{
	char req[1024];
	size_t off = 0;
	ssize_t n;
	int len;

	len = mkreq(req, sizeof(req), c->id, c->i++);
	c->got = 0;
	c->t0 = now_ns();
	while (off < (size_t)len) {
		if ((n = write(c->fd, req + off, (size_t)len - off)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;	/* one small request: no EAGAIN */
		}
		off += (size_t)n;
	}
	c->busy = 1;
	return 0;
}

/* evread - read from c; 1 when its reply is whole, 0 more, -1 error */
static int
evread(struct evconn *c)
{
	ssize_t r;

	r = read(c->fd, c->buf + c->got, sizeof(c->buf) - 1 - c->got);
	if (r <= 0 || !c->busy)
		return -1;
	c->got += (size_t)r;
	c->buf[c->got] = '\0';
	if (c->got >= 2 && c->buf[c->got - 1] == '\n' &&
	    c->buf[c->got - 2] == '\n')
		return strncmp(c->buf, "action=", 7) == 0 ? 1 : -1;
	return c->got >= sizeof(c->buf) - 1 ? -1 : 0;
}

/*
 * evwork - the event-driven client (-E): every connection on one epoll;
 * a reply read whole sends that connection's next request
 */
static void *
evwork(void *arg)
{
	struct worker *w = arg;
	struct evconn *cs, *c;
	struct epoll_event ev, evs[64];
	uint64_t last = now_ns();
	int ep = -1, i, n, rc, inflight = 0;

	if ((cs = calloc((size_t)nconns, sizeof(*cs))) == NULL ||
	    (ep = epoll_create1(0)) < 0) {
		w->errors++;
		goto out;
	}
	for (i = 0; i < nconns; i++)
		cs[i].fd = -1;
	for (i = 0; i < nconns; i++) {
		cs[i].id = i;
		if ((cs[i].fd = dial()) < 0) {
			w->errors++;
			goto out;
		}
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0 ||
		    evsend(&cs[i]) < 0) {
			w->errors++;
			goto out;
		}
		inflight++;
	}
	while (inflight > 0) {
		if ((n = epoll_wait(ep, evs, 64, 100)) < 0) {
			if (errno == EINTR)
				continue;
			w->errors++;
			break;
		}
		if (n == 0 && now_ns() - last >
		    (uint64_t)READ_TIMEOUT_MS * 1000000ULL) {
			w->errors++;	/* no reply in time */
			break;
		}
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			last = now_ns();
			if ((rc = evread(c)) < 0) {
				w->errors++;
				goto out;
			}
			if (rc == 0)
				continue;
			keep(w, last - c->t0);
			c->busy = 0;
			inflight--;
			if (counted() || stop)
				continue;
			if (evsend(c) < 0) {
				w->errors++;
				goto out;
			}
			inflight++;
		}
	}
out:
	if (cs != NULL)
		for (i = 0; i < nconns; i++)
			if (cs[i].fd >= 0)
				close(cs[i].fd);
	if (ep >= 0)
		close(ep);
	free(cs);
	return NULL;
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	char req[1024];
	uint64_t i, t0, t1;
	int fd, len;

	if ((fd = dial()) < 0) {
		w->errors++;
		return NULL;
	}
	for (i = 0; !stop; i++) {
		len = mkreq(req, sizeof(req), w->id, i);
		t0 = now_ns();
		if (ask(fd, req, (size_t)len) < 0) {
			w->errors++;
			break;
		}
		t1 = now_ns();
		keep(w, t1 - t0);
		(void)counted();
	}
	close(fd);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr, "usage: policyload -s unix:PATH|inet:HOST:PORT "
	    "[-c conns] [-t seconds] [-n count] [-k senders] [-e] [-E]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct worker w[MAX_CONNS];
	uint64_t *all, n = 0, errors = 0, t0, t1;
	double secs;
	int ch, i, nthreads;

	while ((ch = getopt(argc, argv, "c:Eek:n:s:t:")) != -1) {
		switch (ch) {
		case 'E':
			evmode = 1;
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 'e':
			rcpt_only = 1;
			break;
		case 'k':
			nkeys = atoi(optarg);
			break;
		case 'n':
			max_count = strtoull(optarg, NULL, 10);
			break;
		case 's':
			target = optarg;
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (target == NULL || nconns < 1 || nconns > MAX_CONNS ||
	    seconds < 1 || seconds > 3600 || nkeys < 1)
		usage();
	t0 = now_ns();
	nthreads = evmode ? 1 : nconns;
	for (i = 0; i < nthreads; i++) {
		w[i].id = i;
		if (pthread_create(&w[i].tid, NULL, evmode ? evwork : work,
		    &w[i]) != 0) {
			fprintf(stderr, "policyload: pthread_create failed\n");
			return 2;
		}
	}
	while (!stop && now_ns() - t0 < (uint64_t)seconds * 1000000000ULL)
		usleep(10000);
	stop = 1;
	for (i = 0; i < nthreads; i++)
		pthread_join(w[i].tid, NULL);
	t1 = now_ns();
	for (i = 0; i < nthreads; i++) {
		n += w[i].nlat;
		errors += w[i].errors;
	}
	all = calloc(n ? n : 1, sizeof(*all));
	n = 0;
	for (i = 0; i < nthreads; i++) {
		memcpy(all + n, w[i].lat, w[i].nlat * sizeof(*all));
		n += w[i].nlat;
		free(w[i].lat);
	}
	qsort(all, n, sizeof(*all), cmp_u64);
	secs = (double)(t1 - t0) / 1e9;
	printf("conns=%d requests=%llu seconds=%.2f rps=%.0f p50_us=%.0f "
	    "p99_us=%.0f max_us=%.0f errors=%llu\n", nconns,
	    (unsigned long long)n, secs, n / secs,
	    n ? all[n / 2] / 1e3 : 0.0, n ? all[n * 99 / 100] / 1e3 : 0.0,
	    n ? all[n - 1] / 1e3 : 0.0, (unsigned long long)errors);
	free(all);
	return errors ? 1 : 0;
}
