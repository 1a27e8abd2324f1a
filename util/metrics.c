/*
 * metrics - see metrics.h.
 *
 * A metric's cells: one per series for counters and gauges, and for a
 * histogram METRIC_BUCKETS + 1 bucket counts (not cumulative; the last
 * is +Inf) and the sum in microseconds.  Series are laid out by label
 * value index, i0 * nval[1] + i1; the last index of each label is
 * "other".  The registry and the dynamic values are written under one
 * mutex (registration, a new value: rare) and read without it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "util/metrics.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define HIST_CELLS	(METRIC_BUCKETS + 2)

const char *const metrics_bucket_le[METRIC_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10"
};
/* the same bounds in microseconds */
static const uint64_t bucket_us[METRIC_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 5000000, 10000000
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *registry[METRICS_MAX];
static _Atomic size_t nregistry;

/* cells_per_series - how many cells one series of m takes */
static size_t
cells_per_series(const struct metric *m)
{
	return m->type == METRIC_HISTOGRAM ? HIST_CELLS : 1;
}

/* nvalues - how many values label l has, "other" included */
static size_t
nvalues(const struct metric_label *l)
{
	size_t n = 0;

	if (l->name == NULL)
		return 1;
	if (l->values == NULL)
		return METRIC_DYN_MAX + 1;
	while (l->values[n] != NULL)
		n++;
	return n + 1;
}

void
metrics_register(struct metric *m)
{
	size_t i, n;

	pthread_mutex_lock(&mu);
	if (m->cells != NULL) {
		pthread_mutex_unlock(&mu);
		return;
	}
	if (atomic_load(&nregistry) >= METRICS_MAX)
		fatalx(EX_SOFTWARE, "metrics: more than %d metrics", METRICS_MAX);
	for (i = 0, n = 1; i < METRIC_LABELS; i++) {
		m->nval[i] = nvalues(&m->labels[i]);
		n *= m->nval[i];
		if (m->labels[i].name != NULL && m->labels[i].values == NULL)
			m->dyn[i] = xcalloc(METRIC_DYN_MAX,
			    sizeof(*m->dyn[i]));
	}
	m->cells = xcalloc(n * cells_per_series(m), sizeof(*m->cells));
	registry[atomic_load(&nregistry)] = m;
	atomic_fetch_add(&nregistry, 1);
	pthread_mutex_unlock(&mu);
}

void
metrics_register_list(struct metric *const *list)
{
	for (; *list != NULL; list++)
		metrics_register(*list);
}

/* dyn_index - the index of v among the dynamic values of label i,
 * adding it when there is room (add), else "other" (or -1: !add) */
static long
dyn_index(struct metric *m, size_t i, const char *v, int add)
{
	const char *s;
	size_t k;

	for (k = 0; k < METRIC_DYN_MAX; k++) {
		if ((s = atomic_load(&m->dyn[i][k])) == NULL) {
			if (!add)
				return -1;
			pthread_mutex_lock(&mu);
			if ((s = atomic_load(&m->dyn[i][k])) == NULL) {
				s = xstrdup(v);	/* kept to the exit */
				atomic_store(&m->dyn[i][k], s);
			}
			pthread_mutex_unlock(&mu);
		}
		if (strcmp(s, v) == 0)
			return (long)k;
	}
	return add ? METRIC_DYN_MAX : -1;
}

/* value_index - the index of value v of label i (NULL: the first) */
static long
value_index(struct metric *m, size_t i, const char *v, int add)
{
	const struct metric_label *l = &m->labels[i];
	size_t k;

	if (l->name == NULL || v == NULL)
		return 0;
	if (l->values == NULL)
		return dyn_index(m, i, v, add);
	for (k = 0; l->values[k] != NULL; k++)
		if (strcmp(l->values[k], v) == 0)
			return (long)k;
	return add ? (long)k : -1;
}

/* series - the first cell of the series (v0, v1), or NULL */
static _Atomic uint64_t *
series(struct metric *m, const char *v0, const char *v1, int add)
{
	long i0, i1;

	if (m->cells == NULL)
		return NULL;
	if ((i0 = value_index(m, 0, v0, add)) < 0 ||
	    (i1 = value_index(m, 1, v1, add)) < 0)
		return NULL;
	return m->cells + ((size_t)i0 * m->nval[1] + (size_t)i1) *
	    cells_per_series(m);
}

void
metric_add(struct metric *m, const char *v0, const char *v1, int64_t n)
{
	_Atomic uint64_t *c = series(m, v0, v1, 1);

	if (c != NULL)
		atomic_fetch_add_explicit(c, (uint64_t)n,
		    memory_order_relaxed);
}

void
metric_inc(struct metric *m, const char *v0, const char *v1)
{
	metric_add(m, v0, v1, 1);
}

void
metric_observe(struct metric *m, const char *v0, const char *v1,
    uint64_t us)
{
	_Atomic uint64_t *c = series(m, v0, v1, 1);
	size_t b;

	if (c == NULL || m->type != METRIC_HISTOGRAM)
		return;
	for (b = 0; b < METRIC_BUCKETS && us > bucket_us[b]; b++)
		;
	atomic_fetch_add_explicit(&c[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c[METRIC_BUCKETS + 1], us,
	    memory_order_relaxed);
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
metric_since(struct metric *m, const char *v0, const char *v1, uint64_t t0)
{
	uint64_t now = metrics_now_us();

	metric_observe(m, v0, v1, now > t0 ? now - t0 : 0);
}

int64_t
metric_value(const struct metric *m, const char *v0, const char *v1)
{
	_Atomic uint64_t *c = series((struct metric *)m, v0, v1, 0);

	return c == NULL ? 0 : (int64_t)atomic_load(c);
}

/* label_value - the value of label i at index k (NULL: not to show) */
static const char *
label_value(const struct metric *m, size_t i, size_t k)
{
	const struct metric_label *l = &m->labels[i];

	if (l->name == NULL)
		return "";
	if (k + 1 == m->nval[i])
		return "other";
	if (l->values == NULL)
		return atomic_load(&m->dyn[i][k]);
	return l->values[k];
}

/* append_labels - {l0="v0",l1="v1"[,le="b"]}, values escaped; nothing
 * when there are none */
static void
append_labels(struct buf *out, const struct metric *m, const char **v,
    const char *le)
{
	const char *sep = "{", *p;
	size_t i;

	for (i = 0; i < METRIC_LABELS; i++) {
		if (m->labels[i].name == NULL)
			continue;
		buf_appendf(out, "%s%s=\"", sep, m->labels[i].name);
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '\\' || *p == '"')
				buf_appendc(out, '\\');
			if (*p == '\n')
				buf_appends(out, "\\n");
			else
				buf_appendc(out, *p);
		}
		buf_appendc(out, '"');
		sep = ",";
	}
	if (le != NULL) {
		buf_appendf(out, "%sle=\"%s\"", sep, le);
		sep = ",";
	}
	if (sep[0] == ',')
		buf_appendc(out, '}');
}

/* render_histogram - the _bucket, _sum and _count lines of a series */
static void
render_histogram(struct buf *out, const struct metric *m, const char **v,
    _Atomic uint64_t *c)
{
	uint64_t cum = 0, sum;
	size_t b;

	for (b = 0; b <= METRIC_BUCKETS; b++) {
		cum += atomic_load_explicit(&c[b], memory_order_relaxed);
		buf_appendf(out, "%s_bucket", m->name);
		append_labels(out, m, v, b < METRIC_BUCKETS ?
		    metrics_bucket_le[b] : "+Inf");
		buf_appendf(out, " %llu\n", (unsigned long long)cum);
	}
	sum = atomic_load_explicit(&c[METRIC_BUCKETS + 1],
	    memory_order_relaxed);
	buf_appendf(out, "%s_sum", m->name);
	append_labels(out, m, v, NULL);
	buf_appendf(out, " %llu.%06llu\n", (unsigned long long)(sum / 1000000),
	    (unsigned long long)(sum % 1000000));
	buf_appendf(out, "%s_count", m->name);
	append_labels(out, m, v, NULL);
	buf_appendf(out, " %llu\n", (unsigned long long)cum);
}

/* series_empty - every cell of the series is 0 */
static int
series_empty(const struct metric *m, _Atomic uint64_t *c)
{
	size_t i;

	for (i = 0; i < cells_per_series(m); i++)
		if (atomic_load_explicit(&c[i], memory_order_relaxed) != 0)
			return 0;
	return 1;
}

/* render_series - one series: shown unless an unseen dynamic value or
 * an "other" nothing was counted in */
static void
render_series(struct buf *out, const struct metric *m, size_t i0,
    size_t i1)
{
	_Atomic uint64_t *c = m->cells + (i0 * m->nval[1] + i1) *
	    cells_per_series(m);
	const char *v[METRIC_LABELS];

	v[0] = label_value(m, 0, i0);
	v[1] = label_value(m, 1, i1);
	if (v[0] == NULL || v[1] == NULL)
		return;
	if ((m->labels[0].name != NULL && i0 + 1 == m->nval[0]) ||
	    (m->labels[1].name != NULL && i1 + 1 == m->nval[1]))
		if (series_empty(m, c))
			return;
	if (m->type == METRIC_HISTOGRAM) {
		render_histogram(out, m, v, c);
		return;
	}
	buf_appends(out, m->name);
	append_labels(out, m, v, NULL);
	if (m->type == METRIC_GAUGE)
		buf_appendf(out, " %lld\n", (long long)(int64_t)atomic_load(c));
	else
		buf_appendf(out, " %llu\n", (unsigned long long)atomic_load(c));
}

int
metrics_render(struct buf *out, size_t max, char *err, size_t errlen)
{
	static const char *const types[] = { "counter", "gauge",
		"histogram" };
	size_t n = atomic_load(&nregistry), i, i0, i1;
	const struct metric *m;

	for (i = 0; i < n; i++) {
		m = registry[i];
		buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name,
		    m->help, m->name, types[m->type]);
		for (i0 = 0; i0 < m->nval[0]; i0++)
			for (i1 = 0; i1 < m->nval[1]; i1++)
				render_series(out, m, i0, i1);
		if (out->len > max) {
			snprintf(err, errlen, "metrics: more than %zu bytes",
			    max);
			return -1;
		}
	}
	return 0;
}

/* loopback - is host a loopback address or "localhost"? */
static int
loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&a6);
}

int
metrics_spec_parse(const char *spec, char *host, size_t hostlen,
    char *port, size_t portlen, char *err, size_t errlen)
{
	const char *h, *p, *end;
	uint64_t n;

	if (strncmp(spec, "inet:", 5) != 0)
		goto bad;
	h = spec + 5;
	if (*h == '[') {
		h++;
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			goto bad;
		p = end + 2;
	} else {
		if ((end = strrchr(h, ':')) == NULL || end == h)
			goto bad;
		p = end + 1;
	}
	if (parse_u64(p, 1, 65535, &n, NULL, 0) < 0 ||
	    (size_t)(end - h) >= hostlen || strlen(p) >= portlen)
		goto bad;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	memcpy(port, p, strlen(p) + 1);
	if (!loopback(host)) {
		snprintf(err, errlen, "\"%s\" is not a loopback address "
		    "(127.0.0.0/8, ::1 or localhost)", host);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not inet:HOST:PORT or "
	    "inet:[V6]:PORT", spec);
	return -1;
}
