/*
 * parse - see parse.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

/* parse_number_unit - digits then at most one unit letter from units */
static int
parse_number_unit(const char *s, const char *units, const uint64_t *mult,
    uint64_t *out, char *err, size_t errlen)
{
	unsigned long long v;
	const char *u;
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s)) {
		snprintf(err, errlen, "\"%s\" is not a number", s ? s : "");
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE) {
		snprintf(err, errlen, "\"%s\" is too large", s);
		return -1;
	}
	if (*end == '\0') {
		*out = v;
		return 0;
	}
	if (end[1] != '\0' || units == NULL ||
	    (u = strchr(units, tolower((unsigned char)*end))) == NULL) {
		snprintf(err, errlen, "\"%s\": unknown unit", s);
		return -1;
	}
	if (v > UINT64_MAX / mult[u - units]) {
		snprintf(err, errlen, "\"%s\" is too large", s);
		return -1;
	}
	*out = v * mult[u - units];
	return 0;
}

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen)
{
	uint64_t v;

	if (parse_number_unit(s, NULL, NULL, &v, err, errlen) < 0)
		return -1;
	if (v < min || v > max) {
		snprintf(err, errlen, "%s is out of range %llu..%llu", s,
		    (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int
parse_duration(const char *s, uint64_t *seconds, char *err, size_t errlen)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 604800 };

	return parse_number_unit(s, "smhdw", mult, seconds, err, errlen);
}

int
parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
	static const uint64_t mult[] = { 1024, 1024 * 1024,
		1024 * 1024 * 1024 };

	return parse_number_unit(s, "kmg", mult, bytes, err, errlen);
}

/* fmt_duration - seconds in the largest unit that is exact (parse.h) */
int
fmt_duration(uint64_t s, char *out, size_t outlen)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' } };
	size_t i;
	int n;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (s != 0 && s % units[i].secs == 0)
			break;
	if (i < sizeof(units) / sizeof(units[0]))
		n = snprintf(out, outlen, "%llu%c",
		    (unsigned long long)(s / units[i].secs), units[i].unit);
	else
		n = snprintf(out, outlen, "%llus", (unsigned long long)s);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
