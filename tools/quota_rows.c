/*
 * quota_rows - the counters that outpostctl quota show, list and set
 * print (outpostctl.h): collected from quota_list (qrows_add; with
 * --top n only the n most used, kept in a heap), sorted, and printed
 * as an aligned table or as a JSON array on stdout.
 *
 * The rows own their keys and borrow their limits from the conf given
 * to quota_list; qrows_free releases them.  Keys are printed escaped
 * (text_key: control bytes as \xHH; json_str: valid JSON whatever the
 * bytes), so a key cannot play tricks on a terminal or a JSON reader.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/algo.h"
#include "tools/outpostctl.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* Columns of the table: LIMIT KEY USED LIMIT PERIOD RETRY-AFTER. */
#define NCOLS 6

static const char *const qcount_names[] = { "messages", "recipients",
	"bytes" };
static const char *const qkind_names[] = { "window", "calendar", "rate" };

/*
 * qrow_before - 1 if a is listed before b: more used first, then by
 * limit name and key
 */
static int
qrow_before(const struct qrow *a, const struct qrow *b)
{
	int c;

	if (a->used != b->used)
		return a->used > b->used;
	if ((c = strcmp(a->limit->name, b->limit->name)) != 0)
		return c < 0;
	return strcmp(a->key, b->key) < 0;
}

/* qrow_cmp - qsort order of qrow_before */
static int
qrow_cmp(const void *a, const void *b)
{
	if (qrow_before(a, b))
		return -1;
	return qrow_before(b, a) ? 1 : 0;
}

/* heap_down - restore the heap (last-listed row at the root) from i */
static void
heap_down(struct qrow *v, size_t n, size_t i)
{
	struct qrow t;
	size_t c;

	for (; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && qrow_before(&v[c], &v[c + 1]))
			c++;
		if (!qrow_before(&v[i], &v[c]))
			break;
		t = v[i];
		v[i] = v[c];
		v[c] = t;
	}
}

/* heap_up - restore the heap after adding v[i] */
static void
heap_up(struct qrow *v, size_t i)
{
	struct qrow t;
	size_t p;

	for (; i > 0 && qrow_before(&v[p = (i - 1) / 2], &v[i]); i = p) {
		t = v[i];
		v[i] = v[p];
		v[p] = t;
	}
}

/*
 * qrows_add - quota_list callback: keep the row (show: if its key is the
 * one asked; --top n: if it is among the n first, in a heap whose root
 * is the last of them)
 */
int
qrows_add(const struct quota_entry *e, void *arg)
{
	struct qrows *r = arg;
	struct qrow row;
	size_t li;

	if (r->match != NULL) {
		li = (size_t)(e->limit - r->conf->quota.limits);
		if (li >= r->conf->quota.nlimits || r->match[li] == NULL ||
		    strcmp(r->match[li], e->key) != 0)
			return 0;
	}
	row.limit = e->limit;
	row.key = NULL;
	row.used = e->used;
	row.limit_value = e->limit_value;
	row.retry_after = e->retry_after;
	if (r->top > 0 && r->n == r->top) {
		row.key = (char *)(uintptr_t)e->key;
		if (!qrow_before(&row, &r->v[0]))
			return 0;
		free(r->v[0].key);
		row.key = xstrdup(e->key);
		r->v[0] = row;
		heap_down(r->v, r->n, 0);
		return 0;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	row.key = xstrdup(e->key);
	r->v[r->n++] = row;
	if (r->top > 0)
		heap_up(r->v, r->n - 1);
	return 0;
}

/* qrows_free - free the rows; r can be filled again */
void
qrows_free(struct qrows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].key);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* qrows_sort - the listing order: most used first, then by limit name
 * and key (qrow_before) */
void
qrows_sort(struct qrows *r)
{
	if (r->n > 1)
		qsort(r->v, r->n, sizeof(*r->v), qrow_cmp);
}

/* fmt_secs - a duration the way the config writes it: 1h, 90s, 1d2h */
static void
fmt_secs(uint64_t s, char *out, size_t outlen)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t i, len = 0, parts = 0;
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (s == 0) {
		(void)snprintf(out, outlen, "0s");
		return;
	}
	/* the two largest units, rounded up in the second */
	for (i = 0; i < 4 && s > 0 && parts < 2; i++) {
		uint64_t q = s / units[i].secs;

		if (q == 0)
			continue;
		if (parts == 1 && s % units[i].secs != 0)
			q++;
		n = snprintf(out + len, outlen - len, "%llu%c",
		    (unsigned long long)q, units[i].unit);
		if (n < 0 || (size_t)n >= outlen - len)
			return;
		len += (size_t)n;
		s = parts == 1 ? 0 : s - q * units[i].secs;
		parts++;
	}
}


/* fmt_period - a limit's period: "1h" (window, rate), "day", "month" */
static void
fmt_period(const struct conf_limit *l, char *out, size_t outlen)
{
	if (l->kind == CONF_QKIND_CALENDAR) {
		(void)snprintf(out, outlen, "%s", l->month ? "month" : "day");
		return;
	}
	/* exact units only: 90m stays 90m */
	(void)fmt_duration(l->period, out, outlen);
}

/* text_key - append a key for the terminal: control bytes as \xHH */
void
text_key(const char *key, struct buf *b)
{
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			buf_appendf(b, "\\x%02x", *p);
		else
			buf_appendc(b, (char)*p);
	}
}

/* utf8_len - length of the valid UTF-8 sequence at p, 0 if invalid */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* json_str - append s as a JSON string; invalid UTF-8 bytes become
 * U+FFFD */
void
json_str(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	buf_appendc(b, '"');
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			buf_appendc(b, '\\');
			buf_appendc(b, (char)*p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_appendf(b, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			buf_appends(b, "\\ufffd");
			p++;
		} else {
			buf_append(b, p, n);
			p += n;
		}
	}
	buf_appendc(b, '"');
}

/* json_row - one counter as a JSON object */
static void
json_row(struct buf *b, const struct qrow *r)
{
	char period[32];

	fmt_period(r->limit, period, sizeof(period));
	buf_appends(b, "{\"limit\": ");
	json_str(b, r->limit->name);
	buf_appends(b, ", \"key\": ");
	json_str(b, r->key);
	buf_appendf(b, ", \"used\": %llu, \"max\": ",
	    (unsigned long long)r->used);
	if (r->limit_value == QUOTA_UNLIMITED)
		buf_appends(b, "null, \"unlimited\": true");
	else
		buf_appendf(b, "%llu, \"unlimited\": false",
		    (unsigned long long)r->limit_value);
	buf_appendf(b, ", \"count\": \"%s\", \"kind\": \"%s\", \"period\": ",
	    qcount_names[r->limit->count], qkind_names[r->limit->kind]);
	json_str(b, period);
	buf_appendf(b, ", \"retry_after\": %llu}",
	    (unsigned long long)r->retry_after);
}

/* print_json - the rows as one JSON array */
static void
print_json(const struct qrows *r)
{
	struct buf out = BUF_INIT;
	size_t i;

	buf_appendc(&out, '[');
	for (i = 0; i < r->n; i++) {
		buf_appends(&out, i ? ",\n " : "");
		json_row(&out, &r->v[i]);
	}
	buf_appends(&out, "]\n");
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
}

/* row_cells - the NCOLS cells of one row, as text */
static void
row_cells(const struct qrow *q, struct buf *c)
{
	char num[3][32], period[32];

	(void)snprintf(num[0], sizeof(num[0]), "%llu",
	    (unsigned long long)q->used);
	if (q->limit_value == QUOTA_UNLIMITED)
		(void)snprintf(num[1], sizeof(num[1]), "unlimited");
	else
		(void)snprintf(num[1], sizeof(num[1]), "%llu",
		    (unsigned long long)q->limit_value);
	if (q->retry_after == 0)
		(void)snprintf(num[2], sizeof(num[2]), "-");
	else
		fmt_secs(q->retry_after, num[2], sizeof(num[2]));
	fmt_period(q->limit, period, sizeof(period));
	buf_appends(&c[0], q->limit->name);
	text_key(q->key, &c[1]);
	buf_appends(&c[2], num[0]);
	buf_appends(&c[3], num[1]);
	buf_appends(&c[4], period);
	buf_appends(&c[5], num[2]);
}

/* print_line - one line of cells in columns of widths w */
static void
print_line(struct buf *cells, const size_t *w)
{
	size_t j, len;

	for (j = 0; j < NCOLS; j++) {
		const char *t = buf_cstr(&cells[j]);

		len = cells[j].len;
		/* numbers right-aligned, text left */
		if (j == 2 || j == 3)
			printf("%*s%s", (int)(w[j] - len), "", t);
		else if (j == NCOLS - 1)
			printf("%s", t);
		else
			printf("%s%*s", t, (int)(w[j] - len), "");
		if (j < NCOLS - 1)
			fputs("  ", stdout);
	}
	fputc('\n', stdout);
}

/* print_table - the rows under a header line, in aligned columns */
static void
print_table(const struct qrows *r)
{
	static const char *const head[NCOLS] = { "LIMIT", "KEY", "USED",
		"LIMIT", "PERIOD", "RETRY-AFTER" };
	struct buf *cells;
	size_t w[NCOLS], i, j;

	/* NCOLS cells per row, the header first */
	cells = xcalloc((r->n + 1) * NCOLS, sizeof(*cells));
	for (j = 0; j < NCOLS; j++) {
		buf_appends(&cells[j], head[j]);
		w[j] = strlen(head[j]);
	}
	for (i = 0; i < r->n; i++) {
		row_cells(&r->v[i], &cells[(i + 1) * NCOLS]);
		for (j = 0; j < NCOLS; j++)
			if (cells[(i + 1) * NCOLS + j].len > w[j])
				w[j] = cells[(i + 1) * NCOLS + j].len;
	}
	for (i = 0; i <= r->n; i++)
		print_line(&cells[i * NCOLS], w);
	for (i = 0; i < (r->n + 1) * NCOLS; i++)
		buf_free(&cells[i]);
	free(cells);
}

/* qrows_print - the rows as a table (or the line none) or as JSON */
void
qrows_print(const struct qrows *r, int json, const char *none)
{
	if (json) {
		print_json(r);
		return;
	}
	if (r->n == 0) {
		printf("%s\n", none);
		return;
	}
	print_table(r);
}
