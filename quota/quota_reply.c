/*
 * quota_reply - the text of a refusal (quota_reply()): the limit's
 * reply template, or the default one, with ${key}, ${used}, ${limit},
 * ${count}, ${period}, ${retry} and ${name} filled in from the verdict.
 *
 * Pure: writes into the caller's buffer, cut at its end, printable ASCII
 * only (a key from a message cannot put control characters in an SMTP
 * reply); allocates nothing and cannot fail.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "quota/quota.h"
#include "util/parse.h"

static const char *const count_names[] = { "messages", "recipients",
	"bytes" };

struct out {
	char *buf;
	size_t len, pos;
};

/* out_puts - append s, printable ASCII only, cut at the end of buf */
static void
out_puts(struct out *o, const char *s)
{
	for (; *s && o->pos + 1 < o->len; s++)
		o->buf[o->pos++] = (unsigned char)*s >= 0x20 &&
		    (unsigned char)*s < 0x7f ? *s : '?';
	o->buf[o->pos] = '\0';
}

/* fmt_retry - a wait, rounded up: 30s, 12m, 2h, 1h30m, 1d, 1d6h */
static void
fmt_retry(uint64_t s, char *out, size_t outlen)
{
	unsigned long long big, small;

	if (s < 60) {
		snprintf(out, outlen, "%llus", (unsigned long long)s);
		return;
	}
	if (s < 3600) {
		big = (s + 59) / 60;
		if (big < 60) {
			snprintf(out, outlen, "%llum", big);
			return;
		}
		s = 3600;
	}
	if (s < 86400) {
		big = s / 3600;
		small = (s % 3600 + 59) / 60;
		if (small == 60) {
			big++;
			small = 0;
		}
		if (big < 24) {
			if (small == 0)
				snprintf(out, outlen, "%lluh", big);
			else
				snprintf(out, outlen, "%lluh%llum", big, small);
			return;
		}
		s = 86400;
	}
	big = s / 86400;
	small = (s % 86400 + 3599) / 3600;
	if (small == 24) {
		big++;
		small = 0;
	}
	if (small == 0)
		snprintf(out, outlen, "%llud", big);
	else
		snprintf(out, outlen, "%llud%lluh", big, small);
}

/* quota_reply - see quota.h */
void
quota_reply(const struct quota_verdict *v, char *buf, size_t len)
{
	static const char *const def = "Quota exceeded for ${key}: "
	    "${used}/${limit} ${count} per ${period}, retry in ${retry}";
	static const char *const def_noretry = "Quota exceeded for ${key}: "
	    "${used}/${limit} ${count} per ${period}";
	const struct conf_limit *l = v->limit;
	struct out o = { buf, len, 0 };
	const char *t, *p, *end;
	char f[64];

	if (len == 0)
		return;
	buf[0] = '\0';
	if (v->result == QUOTA_ERROR || l == NULL) {
		out_puts(&o, v->result == QUOTA_ERROR ?
		    "Quota service temporarily unavailable" :
		    "Quota exceeded");
		return;
	}
	t = l->reply != NULL ? l->reply : v->retry_after ? def : def_noretry;
	for (p = t; *p; p = end) {
		if (p[0] != '$' || p[1] != '{' ||
		    (end = strchr(p, '}')) == NULL) {
			snprintf(f, sizeof(f), "%c", *p);
			out_puts(&o, f);
			end = p + 1;
			continue;
		}
		f[0] = '\0';
		if (strncmp(p, "${key}", 6) == 0)
			out_puts(&o, v->key);
		else if (strncmp(p, "${used}", 7) == 0)
			snprintf(f, sizeof(f), "%llu",
			    (unsigned long long)v->used);
		else if (strncmp(p, "${limit}", 8) == 0)
			snprintf(f, sizeof(f), "%llu",
			    (unsigned long long)v->limit_value);
		else if (strncmp(p, "${count}", 8) == 0)
			snprintf(f, sizeof(f), "%s", count_names[l->count]);
		else if (strncmp(p, "${period}", 9) == 0) {
			if (l->kind == CONF_QKIND_CALENDAR)
				snprintf(f, sizeof(f), "%s",
				    l->month ? "month" : "day");
			else
				(void)fmt_duration(l->period, f, sizeof(f));
		} else if (strncmp(p, "${retry}", 8) == 0)
			fmt_retry(v->retry_after, f, sizeof(f));
		else if (strncmp(p, "${name}", 7) == 0)
			snprintf(f, sizeof(f), "%s", l->name);
		else
			snprintf(f, sizeof(f), "%.*s", (int)(end - p + 1), p);
		out_puts(&o, f);
		end++;
	}
}
