/*
 * tzif - see tzif.h.
 *
 * A TZif file (RFC 8536) is a header, a data block of 32-bit times, and
 * (version 2 and later) a second header, a data block of 64-bit times
 * and a footer: a POSIX TZ string for the times after the last
 * transition.  Version 2+ files are read from their 64-bit part only.
 * Before the first transition, time type 0 is in force (RFC 8536 3.2).
 * Dates use the proleptic Gregorian calendar in days since 1970-01-01
 * (Howard Hinnant's civil algorithms), all in int64_t; times are clamped
 * to TIME_LIM so that no computation overflows.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/tzif.h"
#include "util/xmalloc.h"

#define HDR		44		/* bytes of a TZif header */
#define OFF_MAX		(25 * 3600)	/* |UTC offset| accepted */
#define RULE_HOURS	167		/* |hours| of a rule's time */
#define FOOTER_MAX	256		/* bytes of a footer's TZ string */
#define TIME_LIM	((int64_t)1 << 40)	/* seconds: ~35,000 years */
#define DAY		86400

enum rule_kind { R_JULIAN, R_ZERO, R_MONTH };	/* Jn, n, Mm.w.d */

struct rule {
	enum rule_kind kind;
	int mon, week, wday;		/* R_MONTH */
	int yday;			/* R_JULIAN 1..365, R_ZERO 0..365 */
	int32_t time;			/* seconds after local midnight */
};

struct tzif {
	size_t ntimes;
	int64_t *times;			/* ascending transition times */
	unsigned char *types;		/* the type each one brings */
	size_t ntypes;
	int32_t off[TZIF_MAX_TYPES];	/* each type's UTC offset */
	int footer;			/* the rule below after times */
	int has_dst;
	int32_t std_off, dst_off;
	struct rule start, end;		/* of DST, when has_dst */
};

struct hdr {
	int version;			/* 0, '2', '3', '4'... */
	uint32_t isut, isstd, leap, time, type, chr;
};

/* floordiv - a / b rounded down (b > 0) */
static int64_t
floordiv(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

int64_t
tzif_days(int64_t y, int m, int64_t d)
{
	int64_t era, yoe, doy, doe, mm = m - 1;

	y += floordiv(mm, 12);
	m = (int)(mm - floordiv(mm, 12) * 12) + 1;
	y -= m <= 2;
	era = floordiv(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468 + d - 1;
}

void
tzif_civil(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468, era, doe, yoe, doy, mp;

	era = floordiv(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* is_leap - 1 if y is a Gregorian leap year */
static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* rule_day - the day (since 1970-01-01) rule r names in year y */
static int64_t
rule_day(const struct rule *r, int64_t y)
{
	int64_t first, d, wd;

	switch (r->kind) {
	case R_JULIAN:			/* 1..365, February 29 not counted */
		return tzif_days(y, 1, 1) + r->yday - 1 +
		    (is_leap(y) && r->yday >= 60);
	case R_ZERO:
		return tzif_days(y, 1, 1) + r->yday;
	case R_MONTH:
	default:
		first = tzif_days(y, r->mon, 1);
		/* its weekday: 1970-01-01 was a Thursday (4) */
		wd = first + 4 - floordiv(first + 4, 7) * 7;
		d = first + (r->wday - wd + 7) % 7 + 7 * (r->week - 1);
		while (d >= tzif_days(y, r->mon + 1, 1))
			d -= 7;		/* week 5: the last one */
		return d;
	}
}

/*
 * rule_offset - the offset at t by the footer's rule, and the next time
 * it may change: the DST starts and ends of the years around t, in order
 */
static int32_t
rule_offset(const struct tzif *z, int64_t t, int64_t *next)
{
	struct {
		int64_t at;
		int32_t off;
	} ev[8], tmp;
	int64_t y, yy;
	int m, d, n = 0, i, j;
	int32_t off;

	if (!z->has_dst) {
		*next = INT64_MAX;
		return z->std_off;
	}
	tzif_civil(floordiv(t + z->std_off, DAY), &y, &m, &d);
	for (yy = y - 2; yy <= y + 1; yy++) {
		ev[n].at = rule_day(&z->end, yy) * DAY + z->end.time -
		    z->dst_off;
		ev[n++].off = z->std_off;
		ev[n].at = rule_day(&z->start, yy) * DAY + z->start.time -
		    z->std_off;
		ev[n++].off = z->dst_off;
	}
	for (i = 1; i < n; i++)		/* stable: ties keep their order */
		for (j = i; j > 0 && ev[j - 1].at > ev[j].at; j--) {
			tmp = ev[j];
			ev[j] = ev[j - 1];
			ev[j - 1] = tmp;
		}
	off = ev[0].off == z->std_off ? z->dst_off : z->std_off;
	*next = INT64_MAX;
	for (i = 0; i < n; i++) {
		if (ev[i].at > t) {
			*next = ev[i].at;
			break;
		}
		off = ev[i].off;
	}
	return off;
}

int32_t
tzif_offset(const struct tzif *z, int64_t t, int64_t *next)
{
	size_t lo, hi, mid;
	int64_t nx;

	if (next == NULL)
		next = &nx;
	if (t > TIME_LIM)
		t = TIME_LIM;
	else if (t < -TIME_LIM)
		t = -TIME_LIM;
	if (z->ntimes == 0 || t >= z->times[z->ntimes - 1]) {
		if (z->footer)
			return rule_offset(z, t, next);
		*next = INT64_MAX;
		return z->ntimes == 0 ? z->off[0] :
		    z->off[z->types[z->ntimes - 1]];
	}
	if (t < z->times[0]) {
		*next = z->times[0];
		return z->off[0];
	}
	lo = 0;				/* times[lo] <= t < times[hi] */
	hi = z->ntimes - 1;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (z->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*next = z->times[hi];
	return z->off[z->types[lo]];
}

int64_t
tzif_day_start(const struct tzif *z, int64_t day)
{
	int64_t t0, t, next, cand;
	int32_t off = 0;
	int i;

	if (day > TIME_LIM / DAY)
		day = TIME_LIM / DAY;
	else if (day < -TIME_LIM / DAY)
		day = -TIME_LIM / DAY;
	t0 = day * DAY;
	t = t0 - OFF_MAX - 3600;
	/* Each stretch [t, next) of one offset: its first local t0 or
	 * later.  A bounded walk: a zone changing more often than that
	 * around one midnight gets midnight at its last offset. */
	for (i = 0; i < 64; i++) {
		off = tzif_offset(z, t, &next);
		cand = t0 - off > t ? t0 - off : t;
		if (cand < next)
			return cand;
		t = next;
	}
	return t0 - off;
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

/* posix_name - skip a zone abbreviation: 3+ letters, or <...> */
static int
posix_name(const char **sp)
{
	const char *s = *sp;
	size_t n = 0;

	if (*s == '<') {
		for (s++; *s != '>'; s++, n++)
			if (*s == '\0' || !((*s >= 'a' && *s <= 'z') ||
			    (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
				return -1;
		s++;
	} else {
		for (; (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
		    s++)
			n++;
	}
	if (n < 3)
		return -1;
	*sp = s;
	return 0;
}

/* posix_num - an unsigned decimal of 1 to 3 digits, at most max */
static int
posix_num(const char **sp, int max, int *out)
{
	const char *s = *sp;
	int v = 0, n;

	for (n = 0; n < 3 && *s >= '0' && *s <= '9'; n++, s++)
		v = v * 10 + (*s - '0');
	if (n == 0 || v > max)
		return -1;
	*sp = s;
	*out = v;
	return 0;
}

/* posix_hms - [+-]hh[:mm[:ss]], hours at most maxh, in seconds */
static int
posix_hms(const char **sp, int maxh, int32_t *out)
{
	const char *s = *sp;
	int sign = 1, h, m = 0, sec = 0;

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (posix_num(&s, maxh, &h) == -1)
		return -1;
	if (*s == ':' && (s++, posix_num(&s, 59, &m) == -1))
		return -1;
	if (*s == ':' && (s++, posix_num(&s, 59, &sec) == -1))
		return -1;
	*sp = s;
	*out = sign * (h * 3600 + m * 60 + sec);
	return 0;
}

/* posix_rule - Jn, n or Mm.w.d, then an optional /time (default 2:00) */
static int
posix_rule(const char **sp, struct rule *r)
{
	const char *s = *sp;

	memset(r, 0, sizeof(*r));
	if (*s == 'J') {
		s++;
		r->kind = R_JULIAN;
		if (posix_num(&s, 365, &r->yday) == -1 || r->yday < 1)
			return -1;
	} else if (*s == 'M') {
		s++;
		r->kind = R_MONTH;
		if (posix_num(&s, 12, &r->mon) == -1 || r->mon < 1 ||
		    *s++ != '.' || posix_num(&s, 5, &r->week) == -1 ||
		    r->week < 1 || *s++ != '.' ||
		    posix_num(&s, 6, &r->wday) == -1)
			return -1;
	} else {
		r->kind = R_ZERO;
		if (posix_num(&s, 365, &r->yday) == -1)
			return -1;
	}
	r->time = 7200;
	if (*s == '/' && (s++, posix_hms(&s, RULE_HOURS, &r->time) == -1))
		return -1;
	*sp = s;
	return 0;
}

/* posix_parse - fill z's rule from TZ string s; 0 or -1 */
static int
posix_parse(struct tzif *z, const char *s)
{
	int32_t v;

	if (posix_name(&s) == -1 || posix_hms(&s, 24, &v) == -1)
		return -1;
	z->std_off = -v;
	z->footer = 1;
	if (*s == '\0')
		return 0;
	if (posix_name(&s) == -1)
		return -1;
	z->has_dst = 1;
	z->dst_off = z->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (posix_hms(&s, 24, &v) == -1)
			return -1;
		z->dst_off = -v;
	}
	if (*s == '\0') {		/* POSIX's default: US rules */
		s = ",M3.2.0,M11.1.0";
	}
	if (*s++ != ',' || posix_rule(&s, &z->start) == -1 ||
	    *s++ != ',' || posix_rule(&s, &z->end) == -1 || *s != '\0')
		return -1;
	return 0;
}

struct tzif *
tzif_posix(const char *s, char *err, size_t errlen)
{
	struct tzif *z = xcalloc(1, sizeof(*z));

	if (strlen(s) > FOOTER_MAX || posix_parse(z, s) == -1) {
		(void)snprintf(err, errlen, "bad POSIX TZ string \"%.64s\"", s);
		return tzif_free(z);
	}
	z->ntypes = 1;
	z->off[0] = z->std_off;
	return z;
}

/* ---- TZif files ---------------------------------------------------------- */

/* be32 - 4 bytes big-endian */
static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* hdr_read - the header at p[0..len); 0, or -1 with err */
static int
hdr_read(const unsigned char *p, size_t len, struct hdr *h, char *err,
    size_t errlen)
{
	if (len < HDR || memcmp(p, "TZif", 4) != 0) {
		(void)snprintf(err, errlen, "not a TZif file");
		return -1;
	}
	h->version = p[4];
	h->isut = be32(p + 20);
	h->isstd = be32(p + 24);
	h->leap = be32(p + 28);
	h->time = be32(p + 32);
	h->type = be32(p + 36);
	h->chr = be32(p + 40);
	if (h->type < 1 || h->type > TZIF_MAX_TYPES ||
	    h->time > TZIF_MAX_TIMES || h->chr > TZIF_MAX ||
	    (h->isut != 0 && h->isut != h->type) ||
	    (h->isstd != 0 && h->isstd != h->type)) {
		(void)snprintf(err, errlen, "TZif header out of bounds");
		return -1;
	}
	if (h->leap != 0) {
		(void)snprintf(err, errlen, "TZif with leap seconds");
		return -1;
	}
	return 0;
}

/* block_len - bytes of the data block h describes, times of tsize */
static size_t
block_len(const struct hdr *h, size_t tsize)
{
	return h->time * (tsize + 1) + h->type * 6 + h->chr +
	    h->leap * (tsize + 4) + h->isstd + h->isut;
}

/* data_read - z's transitions and types from block p (times of tsize) */
static int
data_read(struct tzif *z, const struct hdr *h, const unsigned char *p,
    size_t tsize, char *err, size_t errlen)
{
	const unsigned char *idx = p + h->time * tsize, *tt = idx + h->time;
	size_t i;
	uint64_t u;

	z->ntimes = h->time;
	z->ntypes = h->type;
	z->times = xcalloc(z->ntimes + 1, sizeof(*z->times));
	z->types = xcalloc(z->ntimes + 1, 1);
	for (i = 0; i < z->ntimes; i++) {
		u = be32(p + i * tsize);
		if (tsize == 8)
			u = u << 32 | be32(p + i * 8 + 4);
		z->times[i] = tsize == 8 ? (int64_t)u : (int32_t)(uint32_t)u;
		z->types[i] = idx[i];
		if (idx[i] >= z->ntypes || z->times[i] < -TIME_LIM ||
		    z->times[i] > TIME_LIM ||
		    (i > 0 && z->times[i] <= z->times[i - 1])) {
			(void)snprintf(err, errlen, "TZif transition %zu is "
			    "out of order or names no type", i);
			return -1;
		}
	}
	for (i = 0; i < z->ntypes; i++) {
		z->off[i] = (int32_t)be32(tt + i * 6);
		if (z->off[i] < -OFF_MAX || z->off[i] > OFF_MAX || tt[i * 6 +
		    4] > 1 || tt[i * 6 + 5] >= h->chr) {
			(void)snprintf(err, errlen, "TZif time type %zu is "
			    "out of bounds", i);
			return -1;
		}
	}
	return 0;
}

/* footer_read - the footer "\nTZ\n" at p[0..len) into z */
static int
footer_read(struct tzif *z, const unsigned char *p, size_t len, char *err,
    size_t errlen)
{
	char s[FOOTER_MAX + 1];
	const unsigned char *nl;

	if (len < 2 || p[0] != '\n' || (nl = memchr(p + 1, '\n',
	    len - 1)) == NULL || (size_t)(nl - p - 1) > FOOTER_MAX) {
		(void)snprintf(err, errlen, "TZif footer missing or too long");
		return -1;
	}
	memcpy(s, p + 1, (size_t)(nl - p - 1));
	s[nl - p - 1] = '\0';
	if (s[0] == '\0')
		return 0;		/* no rule: the last type goes on */
	if (memchr(s, '\0', (size_t)(nl - p - 1)) != NULL ||
	    posix_parse(z, s) == -1 || z->std_off < -OFF_MAX ||
	    z->std_off > OFF_MAX || z->dst_off < -OFF_MAX ||
	    z->dst_off > OFF_MAX) {
		(void)snprintf(err, errlen, "TZif footer is not a POSIX TZ "
		    "string");
		return -1;
	}
	return 0;
}

struct tzif *
tzif_parse(const unsigned char *p, size_t len, char *err, size_t errlen)
{
	struct tzif *z = xcalloc(1, sizeof(*z));
	struct hdr h;
	size_t off, blen, tsize = 4;

	if (len > TZIF_MAX) {
		(void)snprintf(err, errlen, "TZif file over %d bytes",
		    TZIF_MAX);
		return tzif_free(z);
	}
	if (hdr_read(p, len, &h, err, errlen) == -1)
		return tzif_free(z);
	off = HDR;
	blen = block_len(&h, 4);
	if (h.version >= '2') {		/* the 64-bit part */
		if (len - off < blen || hdr_read(p + off + blen,
		    len - off - blen, &h, err, errlen) == -1)
			goto short_file;
		off += blen + HDR;
		tsize = 8;
		blen = block_len(&h, 8);
	}
	if (len - off < blen)
		goto short_file;
	if (data_read(z, &h, p + off, tsize, err, errlen) == -1 ||
	    (tsize == 8 && footer_read(z, p + off + blen, len - off - blen,
	    err, errlen) == -1))
		return tzif_free(z);
	return z;
short_file:
	if (len - off < blen)
		(void)snprintf(err, errlen, "TZif file cut short");
	return tzif_free(z);
}

struct tzif *
tzif_load(const char *path, char *err, size_t errlen)
{
	unsigned char *buf;
	struct tzif *z;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(TZIF_MAX + 1);
	while (len <= TZIF_MAX && (n = read(fd, buf + len,
	    TZIF_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			(void)snprintf(err, errlen, "%s: %s", path,
			    strerror(errno));
			(void)close(fd);
			free(buf);
			return NULL;
		}
		len += (size_t)n;
	}
	(void)close(fd);
	z = tzif_parse(buf, len, err, errlen);
	free(buf);
	return z;
}

struct tzif *
tzif_free(struct tzif *z)
{
	if (z != NULL) {
		free(z->times);
		free(z->types);
		free(z);
	}
	return NULL;
}
