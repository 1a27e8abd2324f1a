/*
 * metrics - the counters, gauges and histograms of one process, and their
 * Prometheus text exposition (format 0.0.4).
 *
 * A metric is a struct metric the module that counts defines statically
 * (name, help, type, at most two labels); the daemon's main registers
 * the ones it serves with metrics_register() before it starts a thread,
 * which gives each its cells.  Updating an unregistered metric does
 * nothing, so a library module counts whoever links it.
 *
 *	static const char *const reasons[] = { "no-from", "not-trusted",
 *	    NULL };
 *	struct metric skipped = METRIC_DEF("outpost_messages_skipped_total",
 *	    "Messages not signed, by reason.", METRIC_COUNTER, "reason",
 *	    reasons, NULL, NULL);
 *	metrics_register(&skipped);
 *	metric_inc(&skipped, "no-from", NULL);
 *
 * Updates take no lock (C11 atomics, relaxed): any thread may count.
 * Label values come from small fixed sets: a fixed label names its
 * values, and a value not in the list is counted as "other"; a dynamic
 * label (values NULL: e.g. a limit name from the configuration) keeps
 * the first METRIC_DYN_MAX values it sees and counts the rest as
 * "other".  Never give a sender, a login or a domain as a label value.
 *
 * Histograms have fixed buckets in seconds (metrics_bucket_le) and keep
 * their sum in microseconds.
 */
#ifndef OUTPOST_METRICS_H
#define OUTPOST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define METRIC_LABELS	2
#define METRIC_DYN_MAX	32	/* values of a dynamic label */
#define METRIC_BUCKETS	14	/* histogram bounds, +Inf besides */
#define METRICS_MAX	64	/* metrics one process registers */

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric_label {
	const char *name;		/* "reason"; NULL: no label */
	const char *const *values;	/* NULL-terminated; NULL: dynamic */
};

struct metric {
	const char *name;		/* "outpost_messages_signed_total" */
	const char *help;
	enum metric_type type;
	struct metric_label labels[METRIC_LABELS];
	/* set by metrics_register: */
	size_t nval[METRIC_LABELS];	/* values of each label, "other" too */
	_Atomic(const char *) *dyn[METRIC_LABELS]; /* dynamic values seen */
	_Atomic uint64_t *cells;	/* NULL: not registered */
};

/* METRIC_DEF - a struct metric's initializer: name, help, type and the
 * two labels' names and values (NULL, NULL: not used) */
#define METRIC_DEF(n, h, t, l0, v0, l1, v1) { .name = (n), .help = (h), \
	.type = (t), .labels = { { (l0), (v0) }, { (l1), (v1) } } }

/* metrics_bucket_le - the upper bounds of the histogram buckets */
extern const char *const metrics_bucket_le[METRIC_BUCKETS];

/* metrics_register - give m its cells and list it for metrics_render;
 * again for a registered m does nothing.  Call before threads count. */
void metrics_register(struct metric *m);
/* metrics_register_list - each metric of a NULL-terminated list */
void metrics_register_list(struct metric *const *list);

/* metric_inc, metric_add - count (a gauge: n may be negative) in the
 * series of the label values v0, v1 (NULL for a label not used) */
void metric_inc(struct metric *m, const char *v0, const char *v1);
void metric_add(struct metric *m, const char *v0, const char *v1,
    int64_t n);
/* metric_observe - a histogram observation of us microseconds */
void metric_observe(struct metric *m, const char *v0, const char *v1,
    uint64_t us);
/* metrics_now_us - the monotonic clock in microseconds, and
 * metric_since - the observation of the time since t0 from it:
 *	uint64_t t0 = metrics_now_us(); ...; metric_since(&m, "admit",
 *	    NULL, t0); */
uint64_t metrics_now_us(void);
void metric_since(struct metric *m, const char *v0, const char *v1,
    uint64_t t0);
/* metric_value - a counter's or gauge's value (tests); 0 if none */
int64_t metric_value(const struct metric *m, const char *v0,
    const char *v1);

/*
 * metrics_render - every registered metric in the text exposition
 * format, appended to out; -1 with err when it would pass max bytes
 * (out then holds a truncated text the caller must not send).
 */
int metrics_render(struct buf *out, size_t max, char *err, size_t errlen);

/*
 * metrics_spec_parse - the host and port of a listener "inet:HOST:PORT"
 * or "inet:[V6]:PORT" (port 1..65535).  HOST must be a loopback address
 * (127.0.0.0/8, ::1) or "localhost": the figures are for this host's
 * operator.  0, or -1 with err.
 */
int metrics_spec_parse(const char *spec, char *host, size_t hostlen,
    char *port, size_t portlen, char *err, size_t errlen);

#endif
