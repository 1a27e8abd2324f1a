/*
 * dns - DNS lookups with a deadline and a per-name cache over c-ares.
 *
 * See dns.h for the contract.  One lookup: the cache under the lock;
 * else a channel of its own (ares_dup of the template, under the lock),
 * the queries sent at once (A and AAAA together), c-ares driven with
 * poll() until every answer is in or the deadline passes (then the
 * queries are cancelled: DNS_TEMPERROR), the answers parsed with
 * libresolv's ns_parserr (which gives each record's TTL, which c-ares's
 * own parsers do not for TXT, MX and PTR), and cached.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include <ares.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dns.h"
#include "deliver/dns_impl.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/xmalloc.h"

#define DNS_NAME_MAX	253

struct dns {
	pthread_mutex_t lock;
	ares_channel tmpl;		/* options and servers; never queried */
	struct dns_cache *cache;	/* NULL: no cache */
	int timeout_ms;
};

/* One query of a lookup and its outcome. */
struct dns_q {
	int type;			/* ns_t_* */
	int done;
	enum dns_rc rc;
	unsigned ttl;			/* seconds, for the cache */
	struct buf out;			/* the lines */
	char err[160];
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status = ARES_SUCCESS;

/* ares_lib_init - ares_library_init, once per process */
static void
ares_lib_init(void)
{
	ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* dns_rc_name - the result as a word */
const char *
dns_rc_name(enum dns_rc rc)
{
	switch (rc) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPERROR:
		break;
	}
	return "temperror";
}

/* dns_new - the template channel from resolv.conf, and the cache */
struct dns *
dns_new(int timeout_ms, size_t cache_entries, char *err, size_t errlen)
{
	struct ares_options o;
	struct dns *d;
	int rc;

	if (timeout_ms <= 0) {
		snprintf(err, errlen, "dns: timeout must be positive");
		return NULL;
	}
	pthread_once(&ares_once, ares_lib_init);
	if (ares_init_status != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares: %s",
		    ares_strerror(ares_init_status));
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	/* Per try; the deadline of each call is ours (dns_wait). */
	o.timeout = timeout_ms / 3 > 50 ? timeout_ms / 3 : 50;
	o.tries = 3;
	o.flags = ARES_FLAG_EDNS;
	o.ednspsz = 1232;
	d = xcalloc(1, sizeof(*d));
	rc = ares_init_options(&d->tmpl, &o, ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->timeout_ms = timeout_ms;
	if (cache_entries > 0)
		d->cache = dns_cache_new(cache_entries);
	return d;
}

/* dns_free - the template channel, the cache, d */
void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->tmpl);
	dns_cache_free(d->cache);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* dns_set_servers - replace the template's servers */
int
dns_set_servers(struct dns *d, const char *csv, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = ares_set_servers_ports_csv(d->tmpl, csv);
	pthread_mutex_unlock(&d->lock);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: servers \"%s\": %s", csv,
		    ares_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- answers --------------------------------------------------------- */

/* put_txt - one TXT record's strings, joined, as a line */
static void
put_txt(struct buf *b, const unsigned char *rd, size_t len)
{
	size_t i = 0, j;

	while (i < len) {
		size_t n = rd[i++];

		for (j = 0; j < n && i < len; j++, i++) {
			unsigned char c = rd[i];

			buf_appendc(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
		}
	}
	buf_appendc(b, '\n');
}

/* put_name - a compressed name at rd as text (no final dot; the root
 * is "."); -1 if it is malformed */
static int
put_name(struct buf *b, const ns_msg *m, const unsigned char *rd)
{
	char name[NS_MAXDNAME];
	size_t n;

	if (ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), rd, name,
	    sizeof(name)) < 0)
		return -1;
	n = strlen(name);
	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
	if (name[0] == '\0')
		buf_appends(b, ".");
	else
		buf_appends(b, name);
	return 0;
}

/* put_rr - one answer record of the queried type as a line */
static int
put_rr(struct buf *b, const ns_msg *m, const ns_rr *rr)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t len = ns_rr_rdlen(*rr);
	char addr[INET6_ADDRSTRLEN];

	switch (ns_rr_type(*rr)) {
	case ns_t_txt:
		put_txt(b, rd, len);
		return 0;
	case ns_t_a:
	case ns_t_aaaa:
		if (len != (ns_rr_type(*rr) == ns_t_a ? 4u : 16u) ||
		    inet_ntop(ns_rr_type(*rr) == ns_t_a ? AF_INET : AF_INET6,
		    rd, addr, sizeof(addr)) == NULL)
			return -1;
		buf_appendf(b, "%s\n", addr);
		return 0;
	case ns_t_mx:
		if (len < 3)
			return -1;
		buf_appendf(b, "%u ", (unsigned)ns_get16(rd));
		rd += 2;
		break;
	case ns_t_ptr:
		break;
	default:
		return 0;
	}
	if (put_name(b, m, rd) == -1)
		return -1;
	buf_appendc(b, '\n');
	return 0;
}

/* parse_answer - the records of q->type in the answer section, and the
 * smallest TTL; -1 if the message is malformed */
static int
parse_answer(struct dns_q *q, const unsigned char *abuf, int alen)
{
	ns_msg m;
	ns_rr rr;
	int i, n = 0;
	unsigned ttl = DNS_TTL_MAX;

	if (ns_initparse(abuf, alen, &m) == -1)
		return -1;
	for (i = 0; i < ns_msg_count(m, ns_s_an); i++) {
		if (ns_parserr(&m, ns_s_an, i, &rr) == -1)
			return -1;
		if (ns_rr_class(rr) != ns_c_in || (int)ns_rr_type(rr) != q->type)
			continue;
		if (put_rr(&q->out, &m, &rr) == -1)
			return -1;
		if (ns_rr_ttl(rr) < ttl)
			ttl = ns_rr_ttl(rr);
		n++;
	}
	q->ttl = ttl;
	return n;
}

/* on_answer - c-ares callback: the outcome of one query */
static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_q *q = arg;
	int n;

	q->done = 1;
	q->ttl = DNS_TTL_TEMP;
	switch (status) {
	case ARES_SUCCESS:
		n = parse_answer(q, abuf, alen);
		if (n > 0) {
			q->rc = DNS_OK;
			return;
		}
		buf_truncate(&q->out, 0);
		if (n == 0) {
			/* CNAMEs only, or records of other types. */
			q->rc = DNS_NODATA;
			q->ttl = DNS_TTL_NEG;
			snprintf(q->err, sizeof(q->err), "no record");
			return;
		}
		q->rc = DNS_TEMPERROR;
		snprintf(q->err, sizeof(q->err), "malformed answer");
		return;
	case ARES_ENOTFOUND:
		q->rc = DNS_NXDOMAIN;
		q->ttl = DNS_TTL_NEG;
		break;
	case ARES_ENODATA:
		q->rc = DNS_NODATA;
		q->ttl = DNS_TTL_NEG;
		break;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		q->rc = DNS_TEMPERROR;
		snprintf(q->err, sizeof(q->err), "timeout");
		return;
	default:
		q->rc = DNS_TEMPERROR;
		break;
	}
	snprintf(q->err, sizeof(q->err), "%s", ares_strerror(status));
}

/* ---- one lookup -------------------------------------------------------- */

/* dns_wait - drive ch until no query is pending or deadline_ms passes
 * (then cancel what is left: their callbacks say "timeout") */
static void
dns_wait(ares_channel ch, int64_t deadline_ms)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval max, tv, *tvp;
	int64_t left;
	int bits, i, n, r;

	for (;;) {
		bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		left = deadline_ms - clock_mono_ms();
		if (bits == 0 || left <= 0)
			break;
		for (i = n = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* c-ares's ARES_GETSOCK_WRITABLE shifts an int by
			 * up to 31: the same test on unsigned. */
			unsigned rd = ((unsigned)bits >> i) & 1u;
			unsigned wr = ((unsigned)bits >>
			    (i + ARES_GETSOCK_MAXNUM)) & 1u;

			if (!rd && !wr)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((rd ? POLLIN : 0) |
			    (wr ? POLLOUT : 0));
			pfd[n++].revents = 0;
		}
		max.tv_sec = (time_t)(left / 1000);
		max.tv_usec = (suseconds_t)(left % 1000) * 1000;
		tvp = ares_timeout(ch, &max, &tv);
		r = poll(pfd, (nfds_t)n, (int)(tvp->tv_sec * 1000 +
		    (tvp->tv_usec + 999) / 1000));
		if (r <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < n; i++)
			ares_process_fd(ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & POLLOUT ? pfd[i].fd :
			    ARES_SOCKET_BAD);
	}
	ares_cancel(ch);
}

/* dns_send - query the DNS for the queries not yet done, cache them */
static void
dns_send(struct dns *d, const char *name, struct dns_q *q, size_t nq)
{
	int64_t deadline = clock_mono_ms() + d->timeout_ms;
	ares_channel ch;
	size_t i;
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = ares_dup(&ch, d->tmpl);
	pthread_mutex_unlock(&d->lock);
	if (rc != ARES_SUCCESS) {
		for (i = 0; i < nq; i++)
			if (!q[i].done) {
				q[i].done = 1;
				q[i].rc = DNS_TEMPERROR;
				snprintf(q[i].err, sizeof(q[i].err),
				    "c-ares: %s", ares_strerror(rc));
			}
		return;
	}
	for (i = 0; i < nq; i++)
		if (!q[i].done)
			ares_query(ch, name, ns_c_in, q[i].type, on_answer,
			    &q[i]);
	dns_wait(ch, deadline);
	ares_destroy(ch);
	for (i = 0; i < nq; i++)
		if (!q[i].done) {	/* c-ares always calls back: never */
			q[i].done = 1;
			q[i].rc = DNS_TEMPERROR;
			snprintf(q[i].err, sizeof(q[i].err), "no answer");
		}
	if (d->cache == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < nq; i++)
		if (q[i].ttl > 0)
			dns_cache_put(d->cache, name, q[i].type,
			    clock_mono_ms(), q[i].ttl, q[i].rc,
			    q[i].out.len > 0 ? q[i].out.data : "");
	pthread_mutex_unlock(&d->lock);
}

/* dns_cached - fill the queries the cache answers (marked done, ttl 0
 * so they are not stored again) */
static void
dns_cached(struct dns *d, const char *name, struct dns_q *q, size_t nq)
{
	const char *data;
	enum dns_rc rc;
	size_t i;

	if (d->cache == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < nq; i++)
		if (dns_cache_get(d->cache, name, q[i].type, clock_mono_ms(),
		    &rc, &data)) {
			q[i].done = 1;
			q[i].rc = rc;
			buf_appends(&q[i].out, data);
			if (rc != DNS_OK)
				snprintf(q[i].err, sizeof(q[i].err), "%s",
				    rc == DNS_TEMPERROR ? "temporary error "
				    "(cached)" : "no record (cached)");
		}
	pthread_mutex_unlock(&d->lock);
}

/* name_ok - a name that can be queried: 1..253 bytes, labels 1..63 */
static int
name_ok(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (++label > 63 || (unsigned char)name[i] <= ' ')
			return 0;
	}
	return 1;
}

/* combine - the result of a lookup of nq types: OK if any is, else the
 * worst (TEMPERROR over NODATA over NXDOMAIN) */
static enum dns_rc
combine(const struct dns_q *q, size_t nq, const char **why)
{
	enum dns_rc rc = DNS_NXDOMAIN;
	size_t i;

	*why = q[0].err;
	for (i = 0; i < nq; i++) {
		if (q[i].rc == DNS_OK)
			return DNS_OK;
		if (q[i].rc == DNS_TEMPERROR ||
		    (q[i].rc == DNS_NODATA && rc == DNS_NXDOMAIN)) {
			rc = q[i].rc;
			*why = q[i].err;
		}
	}
	return rc;
}

/* dns_lookup - the records of the types (1 or 2) at name, as lines */
static enum dns_rc
dns_lookup(struct dns *d, const char *name, const int *types, size_t nt,
    char *out, size_t outlen, char *err, size_t errlen)
{
	struct dns_q q[2];
	const char *why;
	enum dns_rc rc;
	struct buf all = BUF_INIT;
	size_t i;

	if (outlen > 0)
		out[0] = '\0';
	if (!name_ok(name)) {
		snprintf(err, errlen, "%.64s: not a domain name", name);
		return DNS_NXDOMAIN;
	}
	memset(q, 0, sizeof(q));
	for (i = 0; i < nt; i++)
		q[i].type = types[i];
	dns_cached(d, name, q, nt);
	for (i = 0; i < nt; i++)
		if (!q[i].done) {
			dns_send(d, name, q, nt);
			break;
		}
	rc = combine(q, nt, &why);
	for (i = 0; i < nt; i++) {
		if (rc == DNS_OK && q[i].out.len > 0)
			buf_append(&all, q[i].out.data, q[i].out.len);
		buf_free(&q[i].out);
	}
	if (rc != DNS_OK)
		snprintf(err, errlen, "%s: %s", name, why);
	else if (all.len >= outlen) {
		snprintf(err, errlen, "%s: answer too long", name);
		rc = DNS_TEMPERROR;
	} else
		memcpy(out, all.data, all.len + 1);
	buf_free(&all);
	return rc;
}

/* dns_txt - the TXT records of name */
enum dns_rc
dns_txt(struct dns *d, const char *name, char *out, size_t outlen,
    char *err, size_t errlen)
{
	static const int t[] = { ns_t_txt };

	return dns_lookup(d, name, t, 1, out, outlen, err, errlen);
}

/* dns_mx - the MX records of name */
enum dns_rc
dns_mx(struct dns *d, const char *name, char *out, size_t outlen,
    char *err, size_t errlen)
{
	static const int t[] = { ns_t_mx };

	return dns_lookup(d, name, t, 1, out, outlen, err, errlen);
}

/* dns_addrs - the A and AAAA records of name */
enum dns_rc
dns_addrs(struct dns *d, const char *name, char *out, size_t outlen,
    char *err, size_t errlen)
{
	static const int t[] = { ns_t_a, ns_t_aaaa };

	return dns_lookup(d, name, t, 2, out, outlen, err, errlen);
}

/* reverse_name - the in-addr.arpa or ip6.arpa name of addr; -1 if addr
 * is not an address */
static int
reverse_name(const char *addr, char *name, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	struct buf b = BUF_INIT;
	int i, rc = 0;

	if (inet_pton(AF_INET, addr, a) == 1)
		buf_appendf(&b, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
		    a[0]);
	else if (inet_pton(AF_INET6, addr, a) == 1) {
		for (i = 15; i >= 0; i--)
			buf_appendf(&b, "%c.%c.", hex[a[i] & 15], hex[a[i] >> 4]);
		buf_appends(&b, "ip6.arpa");
	} else
		rc = -1;
	if (rc == 0 && snprintf(name, len, "%s", buf_cstr(&b)) >= (int)len)
		rc = -1;
	buf_free(&b);
	return rc;
}

/* dns_ptr - the PTR records of an address */
enum dns_rc
dns_ptr(struct dns *d, const char *addr, char *out, size_t outlen,
    char *err, size_t errlen)
{
	static const int t[] = { ns_t_ptr };
	char name[80];

	if (reverse_name(addr, name, sizeof(name)) == -1) {
		if (outlen > 0)
			out[0] = '\0';
		snprintf(err, errlen, "%.64s: not an IP address", addr);
		return DNS_NXDOMAIN;
	}
	return dns_lookup(d, name, t, 1, out, outlen, err, errlen);
}
