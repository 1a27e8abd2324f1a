/*
 * cmd_stats - outpostctl stats [--json] [-c config] [milter|policyd]:
 * the figures a running daemon serves at milter.metrics or
 * policyd.metrics (util/metrics.h), fetched over HTTP from the address
 * the configuration names and printed as a table (the series that are
 * not 0, histogram buckets left out) or as JSON (every sample).
 *
 * The fetch is one plain HTTP/1.0 GET on a blocking socket with a
 * deadline (STATS_TIMEOUT_S for connect, send and each read) and a
 * bound on the answer (STATS_BODY_MAX).  Exit: 0; EX_CONFIG when the
 * configuration is bad or the daemon's metrics are off; EX_UNAVAILABLE
 * when the daemon cannot be reached or answers something else;
 * EX_USAGE.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "tools/outpostctl.h"
#include "util/metrics.h"

#define STATS_TIMEOUT_S	5
#define STATS_BODY_MAX	(8u << 20)
#define STATS_LINE_MAX	4096

/* One sample of the exposition, pointing into the fetched text. */
struct sample {
	const char *name;
	size_t namelen;
	const char *labels;		/* inside the braces, or "" */
	size_t labelslen;
	const char *value;
	size_t valuelen;
};

/* connect_to - a connected TCP socket to host:port with timeouts; -1
 * with err */
static int
connect_to(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = { STATS_TIMEOUT_S, 0 };
	int fd = -1, rc, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) < 0) {
			e = errno;
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "%s", strerror(e));
	return fd;
}

/* http_get - GET /metrics from host:port into out (the whole answer,
 * head and body); 0 or -1 with err */
static int
http_get(const char *host, const char *port, struct buf *out, char *err,
    size_t errlen)
{
	char req[256], chunk[16384];
	ssize_t n;
	int fd, len;

	if ((fd = connect_to(host, port, err, errlen)) < 0)
		return -1;
	len = snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\n"
	    "Host: %s\r\nAccept: text/plain\r\n\r\n", host);
	if (len < 0 || (size_t)len >= sizeof(req) ||
	    send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		snprintf(err, errlen, "cannot send the request");
		close(fd);
		return -1;
	}
	while ((n = recv(fd, chunk, sizeof(chunk), 0)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || out->len + (size_t)n > STATS_BODY_MAX) {
			snprintf(err, errlen, n < 0 ? "no answer in %d s" :
			    "answer longer than the %u bytes allowed",
			    n < 0 ? STATS_TIMEOUT_S : STATS_BODY_MAX);
			close(fd);
			return -1;
		}
		buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

/* http_body - the body of a 200 answer in b; NULL with err */
static const char *
http_body(struct buf *b, char *err, size_t errlen)
{
	const char *text = buf_cstr(b), *end, *body;
	int status;

	if (sscanf(text, "HTTP/1.%*d %d", &status) != 1) {
		snprintf(err, errlen, "not an HTTP answer");
		return NULL;
	}
	if (status != 200) {
		end = strpbrk(text, "\r\n");
		snprintf(err, errlen, "answered \"%.*s\"", end ? (int)(end -
		    text) : 40, text);
		return NULL;
	}
	if ((body = strstr(text, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "an HTTP answer without a body");
		return NULL;
	}
	return body + 4;
}

/* parse_sample - one sample line of len bytes into s; 0, or -1 for a
 * line of another form */
static int
parse_sample(const char *line, size_t len, struct sample *s)
{
	const char *p = line, *end = line + len;
	int q = 0;

	while (p < end && *p != '{' && *p != ' ')
		p++;
	s->name = line;
	s->namelen = (size_t)(p - line);
	s->labels = "";
	s->labelslen = 0;
	if (p < end && *p == '{') {
		s->labels = ++p;
		for (; p < end && (q || *p != '}'); p++)
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				q = !q;
		if (p >= end)
			return -1;
		s->labelslen = (size_t)(p - s->labels);
		p++;
	}
	while (p < end && *p == ' ')
		p++;
	s->value = p;
	while (p < end && *p != ' ')
		p++;
	s->valuelen = (size_t)(p - s->value);
	return s->namelen > 0 && s->valuelen > 0 ? 0 : -1;
}

/* each_sample - call fn for every sample line of text, in order */
static void
each_sample(const char *text, void (*fn)(const struct sample *, void *),
    void *arg)
{
	const char *line = text, *nl;
	struct sample s;
	size_t len;

	for (; *line != '\0'; line = nl ? nl + 1 : line + len) {
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		if (len == 0 || line[0] == '#' || len > STATS_LINE_MAX)
			continue;
		if (parse_sample(line, len, &s) == 0)
			fn(&s, arg);
	}
}

/* ends_with - do the n bytes at s end in suffix? */
static int
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

struct table {
	int zero;			/* series at 0, not shown */
	int width;			/* of the widest name shown */
	int print;			/* 0: measure only */
};

/* table_row - a table line for s, unless a bucket or 0: measured, or
 * printed with the names padded to the widest */
static void
table_row(const struct sample *s, void *arg)
{
	struct table *t = arg;
	char name[STATS_LINE_MAX];
	int n;

	if (ends_with(s->name, s->namelen, "_bucket"))
		return;
	if (strtod(s->value, NULL) == 0) {
		t->zero += t->print;
		return;
	}
	n = snprintf(name, sizeof(name), "%.*s%s%.*s%s", (int)s->namelen,
	    s->name, s->labelslen ? "{" : "", (int)s->labelslen, s->labels,
	    s->labelslen ? "}" : "");
	if (n < 0)
		return;
	if (!t->print) {
		t->width = n > t->width ? n : t->width;
		return;
	}
	printf("  %-*s  %.*s\n", t->width, name, (int)s->valuelen, s->value);
}

/* json_labels - the labels text {a="x",b="y"} as a JSON object */
static void
json_labels(struct buf *b, const char *p, size_t len)
{
	const char *end = p + len, *eq;
	struct buf v = BUF_INIT;
	const char *sep = "";

	buf_appendc(b, '{');
	while (p < end && (eq = memchr(p, '=', (size_t)(end - p))) != NULL &&
	    eq + 1 < end && eq[1] == '"') {
		buf_truncate(&v, 0);
		buf_append(&v, p, (size_t)(eq - p));
		buf_appends(b, sep);
		json_str(b, buf_cstr(&v));
		buf_appendc(b, ':');
		buf_truncate(&v, 0);
		for (p = eq + 2; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			buf_appendc(&v, *p == 'n' && p[-1] == '\\' ? '\n' :
			    *p);
		}
		json_str(b, buf_cstr(&v));
		p += p < end ? 1 : 0;
		p += p < end && *p == ',' ? 1 : 0;
		sep = ",";
	}
	buf_appendc(b, '}');
	buf_free(&v);
}

/* json_sample - one sample as a JSON object, after a comma if needed */
static void
json_sample(const struct sample *s, void *arg)
{
	struct buf *b = arg, v = BUF_INIT;
	double d;
	char *end;

	if (b->data[b->len - 1] != '[')
		buf_appendc(b, ',');
	buf_append(&v, s->name, s->namelen);
	buf_appends(b, "\n    {\"name\":");
	json_str(b, buf_cstr(&v));
	buf_appends(b, ",\"labels\":");
	json_labels(b, s->labels, s->labelslen);
	buf_truncate(&v, 0);
	buf_append(&v, s->value, s->valuelen);
	d = strtod(buf_cstr(&v), &end);
	buf_appends(b, ",\"value\":");
	if (*end == '\0' && isfinite(d))
		buf_appends(b, buf_cstr(&v));
	else
		json_str(b, buf_cstr(&v));
	buf_appendc(b, '}');
	buf_free(&v);
}

/* The daemons, their settings and program names. */
static const struct daemon {
	const char *name;
	const char *prog;
	size_t off;			/* of the metrics setting */
} daemons[] = {
	{ "milter", "outpost-milter", offsetof(struct conf, milter.metrics) },
	{ "policyd", "outpost-policyd",
	    offsetof(struct conf, policyd.metrics) },
};

#define NDAEMONS (sizeof(daemons) / sizeof(daemons[0]))

/* fetch - the exposition text of daemon d into b (body: its start);
 * 0, or an exit code with the message on stderr */
static int
fetch(const struct conf *c, const struct daemon *d, struct buf *b,
    const char **body)
{
	const char *spec = *(char *const *)(const void *)((const char *)c +
	    d->off);
	char host[64], port[8], err[512];

	if (spec == NULL) {
		fprintf(stderr, "%s: %s.metrics is not set in %s: %s serves "
		    "no metrics\n", progname, d->name, c->path, d->prog);
		return EX_CONFIG;
	}
	if (metrics_spec_parse(spec, host, sizeof(host), port, sizeof(port),
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s.metrics: %s\n", progname, d->name, err);
		return EX_CONFIG;
	}
	if (http_get(host, port, b, err, sizeof(err)) < 0 ||
	    (*body = http_body(b, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s metrics at %s: %s (is %s running?)\n",
		    progname, d->prog, spec, err, d->prog);
		return EX_UNAVAILABLE;
	}
	return 0;
}

/* show - fetch and print daemon d, as a table or into the JSON json;
 * 0 or an exit code */
static int
show(const struct conf *c, const struct daemon *d, struct buf *json)
{
	struct buf b = BUF_INIT;
	struct table t = { 0, 0, 0 };
	const char *body;
	int rc;

	if ((rc = fetch(c, d, &b, &body)) != 0) {
		buf_free(&b);
		return rc;
	}
	if (json != NULL) {
		buf_appendf(json, "%s\n  \"%s\": {\"address\":", json->len > 1 ?
		    "," : "", d->name);
		json_str(json, *(char *const *)(const void *)((const char *)c +
		    d->off));
		buf_appends(json, ",\"samples\":[");
		each_sample(body, json_sample, json);
		buf_appends(json, "]}");
	} else {
		printf("%s at %s\n", d->prog, *(char *const *)(const void *)
		    ((const char *)c + d->off));
		each_sample(body, table_row, &t);
		t.print = 1;
		each_sample(body, table_row, &t);
		if (t.zero > 0)
			printf("  (%d more series at 0)\n", t.zero);
	}
	buf_free(&b);
	return 0;
}

/* cmd_stats - outpostctl stats: each daemon named, or each whose
 * metrics are on (both off: say so) */
int
cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cfile = CONF_DEFAULT_PATH;
	struct buf json = BUF_INIT;
	struct conf *c;
	char err[1024];
	int ch, asjson = 0, rc = 0, r, any = 0;
	size_t i;

	while ((ch = getopt_long(argc, argv, "c:j", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'j':
			asjson = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind > 1 || (optind < argc &&
	    strcmp(argv[optind], "milter") != 0 &&
	    strcmp(argv[optind], "policyd") != 0))
		usage();
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EX_CONFIG;
	}
	if (optind == argc && c->milter.metrics == NULL &&
	    c->policyd.metrics == NULL) {
		fprintf(stderr, "%s: metrics are off in %s: set "
		    "milter.metrics or policyd.metrics (outpost.conf(5))\n",
		    progname, cfile);
		conf_free(c);
		return EX_CONFIG;
	}
	buf_appendc(&json, '{');
	for (i = 0; i < NDAEMONS; i++) {
		if (optind < argc ? strcmp(argv[optind], daemons[i].name) != 0 :
		    *(char **)(void *)((char *)c + daemons[i].off) == NULL)
			continue;
		if (!asjson && any++)
			printf("\n");
		if ((r = show(c, &daemons[i], asjson ? &json : NULL)) != 0)
			rc = r;
	}
	if (asjson && rc == 0)
		printf("%s\n}\n", buf_cstr(&json));
	buf_free(&json);
	conf_free(c);
	return rc;
}
