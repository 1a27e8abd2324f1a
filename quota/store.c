/*
 * store - see store.h: record keys and the encoded form of a state.
 *
 * Encoded state, version 1 (all integers little-endian):
 *
 *	byte 0     version (1)
 *	byte 1     first: index of the first bucket stored
 *	byte 2     count: buckets stored, n[first .. first+count-1]
 *	bytes 3-10 t0, int64
 *	then count unsigned LEB128 varints (7 bits a byte, low first)
 *
 * Buckets outside [first, first+count) are 0, so an idle counter takes
 * 11 bytes and a window with a few busy buckets little more.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "quota/store.h"

#define STATE_VERSION 1
#define NSLOTS (CONF_QBUCKETS_MAX + 1)

int
quota_rkey(const char *limit_name, const char *key, char *out, size_t outlen)
{
	int n;

	if (limit_name == NULL || key == NULL ||
	    strchr(limit_name, QUOTA_RKEY_SEP) != NULL)
		return -1;
	n = snprintf(out, outlen, "%s%c%s", limit_name, QUOTA_RKEY_SEP, key);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* slots - how many n[] entries a limit's state may use */
static unsigned int
slots(const struct conf_limit *l)
{
	if (l == NULL)
		return NSLOTS;
	if (l->kind != CONF_QKIND_WINDOW)
		return 1;
	return l->buckets >= 1 && l->buckets <= CONF_QBUCKETS_MAX ?
	    l->buckets + 1 : NSLOTS;
}

size_t
quota_state_encode(const struct conf_limit *l, const struct quota_state *st,
    unsigned char *out, size_t outlen)
{
	unsigned int first, last, i, ns = slots(l);
	uint64_t t0 = (uint64_t)st->t0, v;
	size_t len = 0;

	for (first = 0; first < ns && st->n[first] == 0; first++)
		;
	for (last = ns; last > first && st->n[last - 1] == 0; last--)
		;
	if (first == ns)
		first = last = 0;
	if (outlen < 11)
		return 0;
	out[len++] = STATE_VERSION;
	out[len++] = (unsigned char)first;
	out[len++] = (unsigned char)(last - first);
	for (i = 0; i < 8; i++)
		out[len++] = (unsigned char)(t0 >> (8 * i));
	for (i = first; i < last; i++) {
		v = st->n[i];
		do {
			if (len >= outlen)
				return 0;
			out[len++] = (unsigned char)((v & 0x7f) |
			    (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v != 0);
	}
	return len;
}

int
quota_state_decode(const unsigned char *in, size_t len,
    struct quota_state *st)
{
	unsigned int first, count, i, shift;
	uint64_t t0 = 0, v;
	size_t pos = 11;

	memset(st, 0, sizeof(*st));
	if (in == NULL || len < 11 || in[0] != STATE_VERSION)
		return -1;
	first = in[1];
	count = in[2];
	if (first + count > NSLOTS)
		return -1;
	for (i = 0; i < 8; i++)
		t0 |= (uint64_t)in[3 + i] << (8 * i);
	for (i = 0; i < count; i++) {
		v = 0;
		for (shift = 0;; shift += 7) {
			if (pos >= len || shift > 63 ||
			    (shift == 63 && (in[pos] & 0x7e) != 0))
				goto bad;
			v |= (uint64_t)(in[pos] & 0x7f) << shift;
			if ((in[pos++] & 0x80) == 0)
				break;
		}
		st->n[first + i] = v;
	}
	if (pos != len)
		goto bad;
	st->t0 = (int64_t)t0;
	return 0;
bad:
	memset(st, 0, sizeof(*st));
	return -1;
}
