/*
 * dkim/sign - see sign.h; the engines are in sign_native.c and
 * sign_opendkim.c, their interface in sign_impl.h.
 *
 * This file is what both engines share: argument checks, line-end
 * normalization, the header names to sign, the time, and the b= fix for
 * libopendkim's ed25519 folding.  Doing these once, here, is what lets
 * the two engines produce byte-identical values.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dkim/sign.h"
#include "dkim/sign_impl.h"
#include "util/xmalloc.h"

#define SIGN_MAX_REQS	16
#define SIGN_MAX_FIELDS	10000		/* fields in one header */
#define SIGN_MAX_BYTES	(1024 * 1024)	/* header bytes a message */
#define SIGN_CHUNK	8192		/* body bytes per engine call */

/*
 * Signed whenever present, whatever opts->headers says: RFC 8058 3.1
 * wants both one-click unsubscribe fields covered by a valid DKIM
 * signature, or receivers ignore them.
 */
static const char *const sign_always[] = { "List-Unsubscribe",
	"List-Unsubscribe-Post" };
#define SIGN_NALWAYS (sizeof(sign_always) / sizeof(sign_always[0]))

struct dkim_signer {
	const struct sign_engine *eng;
	void *state;
	struct sign_msg msg;
	const char **sign;		/* headers + oversign, NULL-ended */
	const char **oversign;		/* NULL-terminated copy */
	struct dkim_sign_req *reqs;
	char *id;
	struct buf text;		/* scratch: one header field */
	unsigned char *chunk;		/* scratch: normalized body */
	size_t nheaders;
	size_t header_bytes;
	int have_from;
	int eoh;			/* dkim_signer_eoh() was called */
	int cr;				/* body: a chunk ended in CR */
	int last;			/* body: last byte passed on, or -1 */
	int failed;
	char err[256];
};

/*
 * sign_fail - remember the first error (fmt has one %s for arg, or none
 * when arg is NULL); later calls report it
 */
static int
sign_fail(struct dkim_signer *s, const char *fmt, const char *arg)
{
	if (!s->failed) {
		if (arg == NULL)
			(void)snprintf(s->err, sizeof(s->err), "%s", fmt);
		else
			(void)snprintf(s->err, sizeof(s->err), fmt, arg);
	}
	s->failed = 1;
	return -1;
}

/* sign_name_ok - d= and s= values: printable, no ';' or spaces */
static int
sign_name_ok(const char *p)
{
	if (p == NULL || *p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == ';')
			return 0;
	return 1;
}

/*
 * sign_field_len - the length of a header field name, without the spaces
 * RFC 5322's obsolete syntax allows before the colon; 0 if it is not a
 * name.  libopendkim refuses a tab before the colon.  *semi is set when
 * the name holds a ';': RFC 5322 allows it, but the h= tag cannot carry
 * it (libopendkim refuses it), so such a field is left out.
 */
static size_t
sign_field_len(const char *name, int *semi)
{
	const char *p;
	size_t len;

	*semi = 0;
	if (name == NULL)
		return 0;
	for (p = name; *p > 0x20 && *p < 0x7f && *p != ':'; p++)
		if (*p == ';')
			*semi = 1;
	len = (size_t)(p - name);
	while (*p == ' ')
		p++;
	return *p == '\0' ? len : 0;
}

/* sign_listed - is name among the n names of list (any case)? */
static int
sign_listed(const char *const *list, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(list[i], name) == 0)
			return 1;
	return 0;
}

/* dkim_signer_new - check the requests, start the engine */
struct dkim_signer *
dkim_signer_new(const struct dkim_sign_opts *opts,
    const struct dkim_sign_req *reqs, size_t nreq, char *err, size_t errlen)
{
	struct dkim_signer *s;
	size_t i, n;

	if (opts == NULL || reqs == NULL || nreq == 0 ||
	    nreq > SIGN_MAX_REQS) {
		(void)snprintf(err, errlen, "between 1 and %d signatures per "
		    "message", SIGN_MAX_REQS);
		return NULL;
	}
	if ((opts->canon_header != CONF_CANON_SIMPLE &&
	    opts->canon_header != CONF_CANON_RELAXED) ||
	    (opts->canon_body != CONF_CANON_SIMPLE &&
	    opts->canon_body != CONF_CANON_RELAXED)) {
		(void)snprintf(err, errlen, "bad canonicalization");
		return NULL;
	}
	for (i = 0; i < nreq; i++) {
		if (reqs[i].key == NULL || reqs[i].key->pkey == NULL ||
		    reqs[i].key->blob == NULL) {
			(void)snprintf(err, errlen, "signature %zu has no key",
			    i);
			return NULL;
		}
		if (!sign_name_ok(reqs[i].domain) ||
		    !sign_name_ok(reqs[i].selector)) {
			(void)snprintf(err, errlen, "bad d= or s= \"%s\" / "
			    "\"%s\"", reqs[i].domain ? reqs[i].domain : "",
			    reqs[i].selector ? reqs[i].selector : "");
			return NULL;
		}
	}

	s = xcalloc(1, sizeof(*s));
	s->eng = opts->engine == CONF_ENGINE_OPENDKIM ?
	    &sign_engine_opendkim : &sign_engine_native;
	s->reqs = xreallocarray(NULL, nreq, sizeof(*s->reqs));
	memcpy(s->reqs, reqs, nreq * sizeof(*s->reqs));
	s->id = xstrdup(opts->id != NULL ? opts->id : "");

	/* signed names: the headers, those always signed, then the
	 * oversigned ones */
	s->sign = xcalloc(opts->nheaders + SIGN_NALWAYS + opts->noversign +
	    1, sizeof(*s->sign));
	for (i = 0, n = 0; i < opts->nheaders; i++)
		if (opts->headers[i] != NULL && opts->headers[i][0] != '\0')
			s->sign[n++] = opts->headers[i];
	for (i = 0; i < SIGN_NALWAYS; i++)
		if (!sign_listed(s->sign, n, sign_always[i]))
			s->sign[n++] = sign_always[i];
	for (i = 0; i < opts->noversign; i++)
		if (opts->oversign[i] != NULL && opts->oversign[i][0] != '\0')
			s->sign[n++] = opts->oversign[i];
	s->msg.nsign = n;
	s->oversign = xcalloc(opts->noversign + 1, sizeof(*s->oversign));
	for (i = 0, n = 0; i < opts->noversign; i++)
		if (opts->oversign[i] != NULL && opts->oversign[i][0] != '\0')
			s->oversign[n++] = opts->oversign[i];
	s->msg.noversign = n;

	s->msg.canon_header = opts->canon_header;
	s->msg.canon_body = opts->canon_body;
	s->msg.sign = s->sign;
	s->msg.oversign = s->oversign;
	s->msg.now = opts->now > 0 ? (uint64_t)opts->now :
	    (uint64_t)time(NULL);
	s->msg.id = s->id;
	s->msg.reqs = s->reqs;
	s->msg.nreq = nreq;
	s->chunk = xmalloc(SIGN_CHUNK);
	s->last = -1;

	if ((s->state = s->eng->start(&s->msg, err, errlen)) == NULL)
		return dkim_signer_free(s);
	return s;
}

/*
 * sign_value_crlf - append a header value to b with bare CR and LF made
 * CRLF; stops at a NUL, drops CR/LF at the end.
 */
static void
sign_value_crlf(struct buf *b, const char *v, size_t vlen)
{
	size_t i, end;

	for (end = 0; end < vlen && v[end] != '\0'; end++)
		;
	while (end > 0 && (v[end - 1] == '\r' || v[end - 1] == '\n'))
		end--;
	for (i = 0; i < end; i++) {
		if (v[i] == '\r') {
			buf_append(b, "\r\n", 2);
			if (i + 1 < end && v[i + 1] == '\n')
				i++;
		} else if (v[i] == '\n') {
			buf_append(b, "\r\n", 2);
		} else {
			buf_appendc(b, v[i]);
		}
	}
}

/*
 * dkim_signer_header - one header field, as the MTA gives it.  A field
 * whose name holds a ';' is passed over: no name to sign has one (conf/
 * refuses them), so h= would never list it, and a verifier hashes only
 * what h= lists.
 */
int
dkim_signer_header(struct dkim_signer *s, const char *name,
    const char *value, size_t vlen)
{
	size_t namelen;
	int semi;

	if (s->failed)
		return -1;
	if (s->eoh)
		return sign_fail(s, "header field after end of header", NULL);
	if ((namelen = sign_field_len(name, &semi)) == 0)
		return sign_fail(s, "bad header field name \"%.64s\"",
		    name != NULL ? name : "");
	if (value == NULL)
		vlen = 0;
	if (++s->nheaders > SIGN_MAX_FIELDS ||
	    (s->header_bytes += vlen) > SIGN_MAX_BYTES)
		return sign_fail(s, "too many or too large header fields",
		    NULL);
	if (semi)
		return 0;
	buf_truncate(&s->text, 0);
	buf_appends(&s->text, name);
	buf_appendc(&s->text, ':');
	if (vlen > 0)
		sign_value_crlf(&s->text, value, vlen);
	if (namelen == 4 && strncasecmp(name, "From", 4) == 0)
		s->have_from = 1;
	if (s->eng->header(s->state, s->text.data, s->text.len, namelen,
	    s->err, sizeof(s->err)) == -1) {
		s->failed = 1;
		return -1;
	}
	return 0;
}

/* dkim_signer_eoh - end of header: From must have been seen */
int
dkim_signer_eoh(struct dkim_signer *s)
{
	if (s->failed)
		return -1;
	if (s->eoh)
		return 0;
	s->eoh = 1;
	/* libopendkim refuses this at end of header: so do we, in both */
	if (!s->have_from)
		return sign_fail(s, "no From header field", NULL);
	if (s->eng->eoh(s->state, s->err, sizeof(s->err)) == -1) {
		s->failed = 1;
		return -1;
	}
	return 0;
}

/* sign_flush - hand the n normalized bytes in s->chunk to the engine */
static int
sign_flush(struct dkim_signer *s, size_t n)
{
	if (n == 0)
		return 0;
	s->last = s->chunk[n - 1];
	if (s->eng->body(s->state, s->chunk, n, s->err,
	    sizeof(s->err)) == -1) {
		s->failed = 1;
		return -1;
	}
	return 0;
}

/* sign_put - queue len normalized bytes for the engine */
static int
sign_put(struct dkim_signer *s, size_t *n, const unsigned char *p,
    size_t len)
{
	/* long runs go straight through, short ones are gathered */
	if (len >= SIGN_CHUNK / 4) {
		if (sign_flush(s, *n) == -1)
			return -1;
		*n = 0;
		s->last = p[len - 1];
		if (s->eng->body(s->state, p, len, s->err,
		    sizeof(s->err)) == -1) {
			s->failed = 1;
			return -1;
		}
		return 0;
	}
	if (*n + len > SIGN_CHUNK) {
		if (sign_flush(s, *n) == -1)
			return -1;
		*n = 0;
	}
	memcpy(s->chunk + *n, p, len);
	*n += len;
	return 0;
}

/*
 * dkim_signer_body - CRLF pairs and other bytes pass as they are; a bare
 * LF or CR becomes CRLF; a CR that ends the chunk waits for the next.
 */
int
dkim_signer_body(struct dkim_signer *s, const unsigned char *p, size_t len)
{
	size_t i = 0, j, n = 0;

	if (s->failed)
		return -1;
	if (!s->eoh && dkim_signer_eoh(s) == -1)
		return -1;
	while (i < len) {
		if (s->cr) {
			/* the CR before this byte ends a line either way */
			s->cr = 0;
			if (sign_put(s, &n, (const unsigned char *)"\r\n",
			    2) == -1)
				return -1;
			if (p[i] == '\n')
				i++;
			continue;
		}
		for (j = i; j < len; j++) {
			if (p[j] == '\n')
				break;
			if (p[j] == '\r') {
				if (j + 1 < len && p[j + 1] == '\n') {
					j++;
					continue;
				}
				break;
			}
		}
		if (j > i && sign_put(s, &n, p + i, j - i) == -1)
			return -1;
		if (j == len)
			break;
		if (p[j] == '\r' && j + 1 == len) {
			s->cr = 1;
		} else if (sign_put(s, &n, (const unsigned char *)"\r\n",
		    2) == -1) {
			return -1;
		}
		i = j + 1;
	}
	return sign_flush(s, n);
}

/* dkim_signer_finish - end the body, append one value per request */
int
dkim_signer_finish(struct dkim_signer *s, struct buf *values, char *err,
    size_t errlen)
{
	struct buf *tmp;
	size_t i;
	int rc = -1;

	if (!s->failed && !s->eoh)
		(void)dkim_signer_eoh(s);
	/*
	 * A body ends in CRLF on the wire (the one before "." in SMTP), and
	 * libopendkim handles a last line without one in ways the RFC does
	 * not: end it here, for both engines.  A CR at the end counts as a
	 * line end, like any bare CR.
	 */
	if (!s->failed && (s->cr || (s->last != -1 && s->last != '\n'))) {
		s->cr = 0;
		s->chunk[0] = '\r';
		s->chunk[1] = '\n';
		(void)sign_flush(s, 2);
	}
	if (s->failed) {
		(void)snprintf(err, errlen, "%s", s->err);
		return -1;
	}
	tmp = xcalloc(s->msg.nreq, sizeof(*tmp));
	if (s->eng->finish(s->state, tmp, err, errlen) == -1) {
		s->failed = 1;
		(void)snprintf(s->err, sizeof(s->err), "%s", err);
		goto done;
	}
	for (i = 0; i < s->msg.nreq; i++) {
		if (s->reqs[i].key->alg == CONF_ALG_ED25519_SHA256 &&
		    s->msg.canon_header == CONF_CANON_SIMPLE)
			sign_fix_bplacement(&tmp[i]);
		buf_append(&values[i], tmp[i].data, tmp[i].len);
	}
	rc = 0;
done:
	for (i = 0; i < s->msg.nreq; i++)
		buf_free(&tmp[i]);
	free(tmp);
	return rc;
}

/* dkim_signer_free - release a signer (NULL is fine) */
struct dkim_signer *
dkim_signer_free(struct dkim_signer *s)
{
	if (s == NULL)
		return NULL;
	if (s->state != NULL)
		s->eng->free(s->state);
	buf_free(&s->text);
	free(s->chunk);
	free(s->sign);
	free(s->oversign);
	free(s->reqs);
	free(s->id);
	free(s);
	return NULL;
}

/* sign_fix_bplacement - put b= where it was hashed (sign_impl.h) */
void
sign_fix_bplacement(struct buf *v)
{
	struct buf out = BUF_INIT;
	const char *b = NULL, *p, *eol;
	size_t linelen;

	if (v->len == 0)
		return;
	/* the b= tag comes last, after a fold: find the last "\r\n\tb=" */
	for (p = v->data; p != NULL && (p = strstr(p, "\r\n\tb=")) != NULL;
	    p += 5)
		b = p;
	if (b == NULL)
		return;
	/* the length libopendkim counted for the line that ends before b= */
	eol = NULL;
	for (p = v->data; p < b; p++)
		if (p[0] == '\r' && p[1] == '\n')
			eol = p;
	if (eol == NULL)
		linelen = SIGN_INITIAL + (size_t)(b - v->data);
	else
		linelen = 8 + (size_t)(b - (eol + 3));	/* tab: 8 */
	/* on a new line when hashed too: nothing to move */
	if (linelen + 2 > SIGN_MARGIN)
		return;

	buf_append(&out, v->data, (size_t)(b - v->data));
	buf_append(&out, " b=", 3);
	linelen += 3;
	for (p = b + 5; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t' || *p == ' ')
			continue;
		if (linelen >= SIGN_MARGIN) {
			buf_append(&out, "\r\n\t ", 4);
			linelen = 9;
		}
		buf_appendc(&out, *p);
		linelen++;
	}
	buf_truncate(v, 0);
	buf_append(v, out.data, out.len);
	buf_free(&out);
}

/* dkim_thread_end - see sign.h */
void
dkim_thread_end(void)
{
	OPENSSL_thread_stop();
}
