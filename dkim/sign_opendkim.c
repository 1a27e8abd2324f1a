/*
 * dkim/sign_opendkim - the reference engine: one libopendkim dkim_sign()
 * handle per request.  See sign_impl.h for the engine interface.
 *
 * One DKIM_LIB per process, made on first use (pthread_once).  Its
 * options are global to the library, but three of ours are per message:
 * the names to sign (DKIM_OPTS_SIGNHDRS), the names to oversign
 * (DKIM_OPTS_OVERSIGNHDRS) and the time (DKIM_OPTS_FIXEDTIME).
 * libopendkim reads them in dkim_eoh() (header selection, t=) and in
 * dkim_eom()/dkim_getsighdr_d() (h= and its oversigned names); the other
 * calls do not look at them.  So those calls run under a read-write
 * lock: a message whose options are the ones in force takes it shared,
 * and many run at once; one whose options differ takes it exclusive,
 * sets its options, and makes its call before anyone can change them
 * again.  In a daemon the header lists come from the configuration and
 * only the time moves, once a second.
 *
 * Costs that are libopendkim's own: dkim_sign() re-parses the PEM key of
 * every request, and 2.11 leaks the parsed key of every ed25519
 * signature (dkim_free() releases key data only for RSA).  Both are why
 * the native engine is the default; the leak is suppressed for
 * LeakSanitizer below so that ASan test runs stay meaningful.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

#include "dkim/sign_impl.h"
#include "util/xmalloc.h"

struct odk {
	const struct sign_msg *msg;
	DKIM **dkim;		/* one per request */
	char *signkey;		/* msg->sign joined, to compare options */
	char *overkey;
	struct buf *out;	/* finish: values to append to */
};

static pthread_once_t odk_once = PTHREAD_ONCE_INIT;
static pthread_rwlock_t odk_lock = PTHREAD_RWLOCK_INITIALIZER;
static DKIM_LIB *odk_lib;
/* the options in force (written under the exclusive lock) */
static char *odk_cur_sign;
static char *odk_cur_over;
static uint64_t odk_cur_now;

const char *__lsan_default_suppressions(void);

/*
 * __lsan_default_suppressions - LeakSanitizer reads this at start: the
 * ed25519 key libopendkim 2.11 never frees (see the top of this file).
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:dkim_privkey_load\nleak:libopendkim.so\n";
}

/* odk_init - the library handle, once per process */
static void
odk_init(void)
{
	unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;

	if ((odk_lib = dkim_init(NULL, NULL)) == NULL)
		return;
	if (dkim_options(odk_lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK) {
		dkim_close(odk_lib);
		odk_lib = NULL;
	}
}

/* odk_join - names joined by ':' (a key to compare option sets) */
static char *
odk_join(const char *const *v, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_appendc(&b, ':');
		buf_appends(&b, v[i]);
	}
	return buf_steal(&b);
}

/* odk_same - two option keys, both set and equal */
static int
odk_same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* odk_current - are this message's options the ones in force? */
static int
odk_current(const struct odk *o)
{
	return odk_same(odk_cur_sign, o->signkey) &&
	    odk_same(odk_cur_over, o->overkey) && odk_cur_now == o->msg->now;
}

/* odk_apply - make this message's options current (exclusive lock held) */
static int
odk_apply(const struct odk *o, char *err, size_t errlen)
{
	const struct sign_msg *m = o->msg;
	uint64_t now = m->now;

	if (!odk_same(odk_cur_sign, o->signkey)) {
		free(odk_cur_sign);
		odk_cur_sign = NULL;
		if (dkim_options(odk_lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
		    (void *)m->sign, sizeof(char **)) != DKIM_STAT_OK) {
			(void)snprintf(err, errlen, "libopendkim refuses the "
			    "list of header fields to sign (too long?)");
			return -1;
		}
		odk_cur_sign = xstrdup(o->signkey);
	}
	if (!odk_same(odk_cur_over, o->overkey)) {
		free(odk_cur_over);
		odk_cur_over = NULL;
		if (dkim_options(odk_lib, DKIM_OP_SETOPT,
		    DKIM_OPTS_OVERSIGNHDRS, m->noversign > 0 ?
		    (void *)m->oversign : NULL, sizeof(char **)) !=
		    DKIM_STAT_OK) {
			(void)snprintf(err, errlen, "libopendkim refuses the "
			    "list of header fields to oversign");
			return -1;
		}
		odk_cur_over = xstrdup(o->overkey);
	}
	if (odk_cur_now != now) {
		if (dkim_options(odk_lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME,
		    &now, sizeof(now)) != DKIM_STAT_OK) {
			(void)snprintf(err, errlen, "libopendkim refuses the "
			    "time");
			return -1;
		}
		odk_cur_now = now;
	}
	return 0;
}

/*
 * odk_locked - run fn with this message's options in force: shared when
 * they already are, exclusive (setting them) when they are not.
 */
static int
odk_locked(struct odk *o, int (*fn)(struct odk *, char *, size_t),
    char *err, size_t errlen)
{
	int rc;

	if (pthread_rwlock_rdlock(&odk_lock) != 0) {
		(void)snprintf(err, errlen, "libopendkim lock failed");
		return -1;
	}
	if (odk_current(o)) {
		rc = fn(o, err, errlen);
		(void)pthread_rwlock_unlock(&odk_lock);
		return rc;
	}
	(void)pthread_rwlock_unlock(&odk_lock);

	if (pthread_rwlock_wrlock(&odk_lock) != 0) {
		(void)snprintf(err, errlen, "libopendkim lock failed");
		return -1;
	}
	rc = odk_apply(o, err, errlen);
	if (rc == 0)
		rc = fn(o, err, errlen);
	(void)pthread_rwlock_unlock(&odk_lock);
	return rc;
}

/* odk_error - "what: libopendkim's reason" */
static int
odk_error(DKIM *d, const char *what, DKIM_STAT st, char *err, size_t errlen)
{
	const char *why = d != NULL ? dkim_geterror(d) : NULL;

	if (why == NULL || *why == '\0')
		why = dkim_getresultstr(st);
	(void)snprintf(err, errlen, "libopendkim %s: %s", what,
	    why != NULL ? why : "failed");
	return -1;
}

static void odk_free(void *);

/* odk_start - one dkim_sign() handle per request */
static void *
odk_start(const struct sign_msg *msg, char *err, size_t errlen)
{
	const struct dkim_sign_req *r;
	struct odk *o;
	DKIM_STAT st;
	size_t i;

	(void)pthread_once(&odk_once, odk_init);
	if (odk_lib == NULL) {
		(void)snprintf(err, errlen, "libopendkim: dkim_init failed");
		return NULL;
	}
	o = xcalloc(1, sizeof(*o));
	o->msg = msg;
	o->signkey = odk_join(msg->sign, msg->nsign);
	o->overkey = odk_join(msg->oversign, msg->noversign);
	o->dkim = xcalloc(msg->nreq, sizeof(*o->dkim));
	for (i = 0; i < msg->nreq; i++) {
		r = &msg->reqs[i];
		st = DKIM_STAT_OK;
		o->dkim[i] = dkim_sign(odk_lib, (const unsigned char *)msg->id,
		    NULL, (dkim_sigkey_t)r->key->blob,
		    (const unsigned char *)r->selector,
		    (const unsigned char *)r->domain,
		    msg->canon_header == CONF_CANON_RELAXED ?
		    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
		    msg->canon_body == CONF_CANON_RELAXED ?
		    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
		    r->key->alg == CONF_ALG_ED25519_SHA256 ?
		    DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256,
		    -1, &st);
		if (o->dkim[i] == NULL) {
			(void)odk_error(NULL, "dkim_sign", st, err, errlen);
			odk_free(o);
			return NULL;
		}
	}
	return o;
}

/* odk_header - the field to every handle */
static int
odk_header(void *v, const char *text, size_t len, size_t namelen,
    char *err, size_t errlen)
{
	struct odk *o = v;
	DKIM_STAT st;
	size_t i;

	(void)namelen;
	for (i = 0; i < o->msg->nreq; i++) {
		st = dkim_header(o->dkim[i], (unsigned char *)text, len);
		if (st != DKIM_STAT_OK)
			return odk_error(o->dkim[i], "dkim_header", st, err,
			    errlen);
	}
	return 0;
}

/* odk_do_eoh - dkim_eoh() on every handle (options lock held) */
static int
odk_do_eoh(struct odk *o, char *err, size_t errlen)
{
	DKIM_STAT st;
	size_t i;

	for (i = 0; i < o->msg->nreq; i++) {
		st = dkim_eoh(o->dkim[i]);
		if (st != DKIM_STAT_OK)
			return odk_error(o->dkim[i], "dkim_eoh", st, err,
			    errlen);
	}
	return 0;
}

/* odk_eoh - dkim_eoh() with this message's options in force */
static int
odk_eoh(void *v, char *err, size_t errlen)
{
	return odk_locked(v, odk_do_eoh, err, errlen);
}

/* odk_body - the body chunk to every handle */
static int
odk_body(void *v, const unsigned char *p, size_t len, char *err,
    size_t errlen)
{
	struct odk *o = v;
	DKIM_STAT st;
	size_t i;

	for (i = 0; i < o->msg->nreq; i++) {
		st = dkim_body(o->dkim[i], (unsigned char *)p, len);
		if (st != DKIM_STAT_OK)
			return odk_error(o->dkim[i], "dkim_body", st, err,
			    errlen);
	}
	return 0;
}

/* odk_do_finish - dkim_eom() and the header values (options lock held) */
static int
odk_do_finish(struct odk *o, char *err, size_t errlen)
{
	unsigned char *hdr;
	size_t i, len;
	DKIM_STAT st;

	for (i = 0; i < o->msg->nreq; i++) {
		st = dkim_eom(o->dkim[i], NULL);
		if (st != DKIM_STAT_OK)
			return odk_error(o->dkim[i], "dkim_eom", st, err,
			    errlen);
		st = dkim_getsighdr_d(o->dkim[i], SIGN_INITIAL, &hdr, &len);
		if (st != DKIM_STAT_OK)
			return odk_error(o->dkim[i], "dkim_getsighdr_d", st,
			    err, errlen);
		buf_append(&o->out[i], hdr, len);
	}
	return 0;
}

/* odk_finish - dkim_eom() and the values, options in force */
static int
odk_finish(void *v, struct buf *values, char *err, size_t errlen)
{
	struct odk *o = v;
	int rc;

	o->out = values;
	rc = odk_locked(o, odk_do_finish, err, errlen);
	o->out = NULL;
	return rc;
}

/* odk_free - release every handle */
static void
odk_free(void *v)
{
	struct odk *o = v;
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; o->dkim != NULL && i < o->msg->nreq; i++)
		if (o->dkim[i] != NULL)
			(void)dkim_free(o->dkim[i]);
	free(o->dkim);
	free(o->signkey);
	free(o->overkey);
	free(o);
}

const struct sign_engine sign_engine_opendkim = {
	"libopendkim",
	odk_start,
	odk_header,
	odk_eoh,
	odk_body,
	odk_finish,
	odk_free,
};
