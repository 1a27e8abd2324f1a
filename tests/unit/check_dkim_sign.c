/*
 * check_dkim_sign - dkim/sign: the native engine gives the same header
 * values as libopendkim, byte for byte, for every message in tests/data,
 * RSA-2048 and ed25519, relaxed/relaxed, simple/simple, relaxed/simple;
 * several requests, chunked and large bodies, concurrent threads; and
 * python3-dkim (tests/verify/dkimverify.py) verifies what we sign,
 * including with the RFC 8463 example keys against their records.
 *
 * Test keys are copied to a temporary directory with mode 0600 before
 * loading (git does not keep modes; dkim_key_load refuses 0644).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/key.h"
#include "dkim/sign.h"
#include "util/buf.h"

#define NOW		1700000000
#define PYTHON		"/usr/bin/python3"
#define MAX_FIELDS	256

const char *__asan_default_options(void);

/*
 * __asan_default_options - AddressSanitizer builds only: unwind malloc
 * stacks fully, through libcrypto (built without frame pointers), so
 * that the libopendkim leak suppressed in dkim/sign_opendkim.c is
 * recognized by its stack rather than hiding every libcrypto leak.
 */
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0:malloc_context_size=20";
}

/* ---------------------------------------------------------------- */
/* helpers: files, keys, messages */

/* srcdir - the source tree: $top_srcdir (make check) or TOP_SRCDIR */
static const char *
srcdir(void)
{
	const char *d = getenv("top_srcdir");

	return d != NULL && *d != '\0' ? d : TOP_SRCDIR;
}

/* src_path - a file of the source tree (static result, test-local) */
static const char *
src_path(const char *rel)
{
	static char path[4096];

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/%s", srcdir(), rel),
	    (int)sizeof(path));
	return path;
}

static char *
slurp(const char *path, size_t *lenp)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	ck_assert_int_eq(n, 0);
	close(fd);
	*lenp = b.len;
	buf_reserve(&b, 0);
	return buf_steal(&b);
}

static void
spit(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* key_load_copy - load a key of the source tree from a 0600 copy */
static struct dkim_key *
key_load_copy(const char *rel, enum conf_alg alg)
{
	char dir[] = "/tmp/check_sign.XXXXXX", path[256], err[512];
	struct dkim_key *k;
	size_t len;
	char *data;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	data = slurp(src_path(rel), &len);
	snprintf(path, sizeof(path), "%s/key", dir);
	spit(path, data, len);
	free(data);
	k = dkim_key_load(path, alg, err, sizeof(err));
	ck_assert_msg(k != NULL, "load %s: %s", rel, err);
	unlink(path);
	rmdir(dir);
	return k;
}

struct field {
	char name[128];
	const char *value;
	size_t vlen;
};

/* A message split as an MTA hands it to a milter. */
struct msg {
	char *raw;
	size_t len;
	struct field f[MAX_FIELDS];
	size_t nf;
	const unsigned char *body;
	size_t blen;
};

/*
 * msg_parse - fields (value = everything after the colon, folds kept,
 * the last line end dropped) and body (after the empty line)
 */
static void
msg_parse(struct msg *m)
{
	char *p = m->raw, *end = m->raw + m->len, *colon, *q, *nl;
	struct field *f;

	m->nf = 0;
	m->body = NULL;
	m->blen = 0;
	while (p < end) {
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\n' ? 1 : 2;
			m->body = (const unsigned char *)p;
			m->blen = (size_t)(end - p);
			return;
		}
		colon = memchr(p, ':', (size_t)(end - p));
		ck_assert_ptr_nonnull(colon);
		ck_assert_int_lt(m->nf, MAX_FIELDS);
		f = &m->f[m->nf++];
		ck_assert_int_lt(colon - p, (int)sizeof(f->name));
		memcpy(f->name, p, (size_t)(colon - p));
		f->name[colon - p] = '\0';
		f->value = colon + 1;
		for (q = colon + 1; ; q = nl + 1) {
			nl = memchr(q, '\n', (size_t)(end - q));
			if (nl == NULL) {
				q = end;
				break;
			}
			if (nl + 1 < end && (nl[1] == ' ' || nl[1] == '\t'))
				continue;
			q = nl + 1;
			break;
		}
		f->vlen = (size_t)(q - f->value);
		while (f->vlen > 0 && (f->value[f->vlen - 1] == '\n' ||
		    f->value[f->vlen - 1] == '\r'))
			f->vlen--;
		p = q;
	}
}

static void
msg_load(struct msg *m, const char *rel)
{
	m->raw = slurp(src_path(rel), &m->len);
	msg_parse(m);
}

static void
msg_free(struct msg *m)
{
	free(m->raw);
	m->raw = NULL;
}

static const char *const oversign[] = { "From", NULL };

static void
opts_init(struct dkim_sign_opts *o, enum conf_engine engine,
    enum conf_canon h, enum conf_canon b)
{
	size_t n;

	for (n = 0; conf_default_headers[n] != NULL; n++)
		;
	memset(o, 0, sizeof(*o));
	o->engine = engine;
	o->canon_header = h;
	o->canon_body = b;
	o->headers = conf_default_headers;
	o->nheaders = n;
	o->oversign = oversign;
	o->noversign = 1;
	o->now = NOW;
	o->id = "TESTQID";
}

/*
 * sign - sign m, the body in chunks of the given size (0: in one go);
 * returns 0 and fills values[0..nreq), or -1 with err
 */
static int
sign(const struct msg *m, const struct dkim_sign_opts *o,
    const struct dkim_sign_req *reqs, size_t nreq, size_t chunk,
    struct buf *values, char *err, size_t errlen)
{
	struct dkim_signer *s;
	size_t i, n;
	int rc = 0;

	s = dkim_signer_new(o, reqs, nreq, err, errlen);
	ck_assert_msg(s != NULL, "dkim_signer_new: %s", err);
	for (i = 0; i < m->nf; i++)
		if (dkim_signer_header(s, m->f[i].name, m->f[i].value,
		    m->f[i].vlen) == -1)
			rc = -1;
	if (dkim_signer_eoh(s) == -1)
		rc = -1;
	if (chunk == 0)
		chunk = m->blen > 0 ? m->blen : 1;
	for (i = 0; i < m->blen; i += n) {
		n = m->blen - i < chunk ? m->blen - i : chunk;
		if (dkim_signer_body(s, m->body + i, n) == -1)
			rc = -1;
	}
	if (dkim_signer_finish(s, values, err, errlen) == -1)
		rc = -1;
	dkim_signer_free(s);
	return rc;
}

static void
values_free(struct buf *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_free(&v[i]);
}

/* The test keys, loaded once per process (tests run forked). */
static struct dkim_key *rsa_key, *ed_key;

static void
keys_setup(void)
{
	if (rsa_key == NULL)
		rsa_key = key_load_copy("tests/data/keys/rsa2048.private",
		    CONF_ALG_RSA_SHA256);
	if (ed_key == NULL)
		ed_key = key_load_copy("tests/data/keys/ed25519.private",
		    CONF_ALG_ED25519_SHA256);
}

static void
req_init(struct dkim_sign_req *r, int ed)
{
	r->key = ed ? ed_key : rsa_key;
	r->domain = "example.com";
	r->selector = ed ? "ed" : "rsa";
}

/* ---------------------------------------------------------------- */
/* python3-dkim */

/* zone_add - a zone line for SEL._domainkey.DOMAIN, strings <= 255 */
static void
zone_add(struct buf *z, const char *sel, const char *domain,
    const char *k, const char *p)
{
	struct buf rec = BUF_INIT;
	size_t off, n;

	buf_appendf(&rec, "v=DKIM1; k=%s; p=%s", k, p);
	buf_appendf(z, "%s._domainkey.%s. IN TXT (", sel, domain);
	for (off = 0; off < rec.len; off += n) {
		n = rec.len - off > 255 ? 255 : rec.len - off;
		buf_appends(z, " \"");
		buf_append(z, rec.data + off, n);
		buf_appendc(z, '"');
	}
	buf_appends(z, " )\n");
	buf_free(&rec);
}

/*
 * verify - run dkimverify.py on MSG with ZONE; returns its exit status,
 * its output in out
 */
static int
verify(const char *msgpath, const char *zonepath, struct buf *out)
{
	char outpath[] = "/tmp/check_sign_out.XXXXXX", *data;
	char script[4096], zone[4096];
	size_t len;
	pid_t pid;
	int fd, status;

	/* zonepath may be src_path()'s buffer: copy it first */
	snprintf(zone, sizeof(zone), "%s", zonepath);
	snprintf(script, sizeof(script), "%s",
	    src_path("tests/verify/dkimverify.py"));
	fd = mkstemp(outpath);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(access(PYTHON, X_OK) == 0, "%s is needed (python3-dkim)",
	    PYTHON);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execl(PYTHON, PYTHON, script, msgpath, zone, (char *)NULL);
		_exit(127);
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	data = slurp(outpath, &len);
	buf_append(out, data, len);
	free(data);
	unlink(outpath);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* crlf - the message as on the wire: bare LF made CRLF */
static void
crlf(struct buf *out, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_appendc(out, '\r');
		buf_appendc(out, p[i]);
	}
}

/* ---------------------------------------------------------------- */
/* the table: messages x keys x canonicalizations */

static const char *const messages[] = {
	"tests/data/multipart.eml",
	"tests/data/8bit.eml",
	"tests/data/rfc2047-subject.eml",
	"tests/data/long-folded.eml",
	"tests/data/lf-only.eml",
	"tests/data/empty-body.eml",
	"tests/data/two-from.eml",
	"tests/data/whitespace.eml",
	"tests/data/semicolon-name.eml",
	"tests/data/list-unsubscribe.eml",
	"tests/data/rfc8463/A3-unsigned-message.eml",
};
#define NMESSAGES (sizeof(messages) / sizeof(messages[0]))

static const struct {
	const char *name;
	enum conf_canon h, b;
} canons[] = {
	{ "relaxed/relaxed", CONF_CANON_RELAXED, CONF_CANON_RELAXED },
	{ "simple/simple", CONF_CANON_SIMPLE, CONF_CANON_SIMPLE },
	{ "relaxed/simple", CONF_CANON_RELAXED, CONF_CANON_SIMPLE },
};
#define NCANONS (sizeof(canons) / sizeof(canons[0]))

/* engines_agree - native and libopendkim values, one case of the table */
START_TEST(native_equals_libopendkim_byte_for_byte)
{
	size_t mi = (size_t)_i / (2 * NCANONS);
	int ed = (_i / (int)NCANONS) % 2;
	size_t ci = (size_t)_i % NCANONS;
	struct buf vn = BUF_INIT, vo = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	struct msg m;

	keys_setup();
	req_init(&r, ed);
	msg_load(&m, messages[mi]);
	opts_init(&o, CONF_ENGINE_NATIVE, canons[ci].h, canons[ci].b);
	ck_assert_msg(sign(&m, &o, &r, 1, 0, &vn, err, sizeof(err)) == 0,
	    "%s native: %s", messages[mi], err);
	o.engine = CONF_ENGINE_OPENDKIM;
	ck_assert_msg(sign(&m, &o, &r, 1, 0, &vo, err, sizeof(err)) == 0,
	    "%s libopendkim: %s", messages[mi], err);
	ck_assert_msg(vn.len == vo.len && memcmp(vn.data, vo.data,
	    vn.len) == 0, "%s %s %s:\ngot  (native) %s\nwant (libopendkim) "
	    "%s", messages[mi], ed ? "ed25519" : "rsa", canons[ci].name,
	    vn.data, vo.data);
	ck_assert_msg(strstr(vn.data, "t=1700000000;") != NULL,
	    "got %s, want t=1700000000", vn.data);
	buf_free(&vn);
	buf_free(&vo);
	msg_free(&m);
}
END_TEST

/* python3-dkim verifies all six signatures of each message */
START_TEST(python_dkim_verifies_every_message)
{
	char dir[] = "/tmp/check_sign.XXXXXX", mpath[256], zpath[256];
	struct buf file = BUF_INIT, zone = BUF_INIT, out = BUF_INIT;
	struct buf v[2];
	struct dkim_sign_opts o;
	struct dkim_sign_req r[2];
	char err[512], *p;
	struct msg m;
	size_t ci;
	int rc;

	keys_setup();
	req_init(&r[0], 0);
	req_init(&r[1], 1);
	msg_load(&m, messages[_i]);
	for (ci = 0; ci < NCANONS; ci++) {
		memset(v, 0, sizeof(v));
		opts_init(&o, _i % 2 ? CONF_ENGINE_OPENDKIM :
		    CONF_ENGINE_NATIVE, canons[ci].h, canons[ci].b);
		ck_assert_msg(sign(&m, &o, r, 2, 0, v, err, sizeof(err)) == 0,
		    "%s: %s", messages[_i], err);
		buf_appendf(&file, "DKIM-Signature: %s\r\n", v[0].data);
		buf_appendf(&file, "DKIM-Signature: %s\r\n", v[1].data);
		values_free(v, 2);
	}
	crlf(&file, m.raw, m.len);
	p = dkim_key_public_b64(rsa_key);
	zone_add(&zone, "rsa", "example.com", "rsa", p);
	free(p);
	p = dkim_key_public_b64(ed_key);
	zone_add(&zone, "ed", "example.com", "ed25519", p);
	free(p);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(mpath, sizeof(mpath), "%s/msg", dir);
	snprintf(zpath, sizeof(zpath), "%s/zone", dir);
	spit(mpath, file.data, file.len);
	spit(zpath, zone.data, zone.len);
	rc = verify(mpath, zpath, &out);
	buf_reserve(&out, 0);
	ck_assert_msg(rc == 0, "%s: dkimverify.py exit %d, want 0:\n%s",
	    messages[_i], rc, out.data);
	unlink(mpath);
	unlink(zpath);
	rmdir(dir);
	buf_free(&file);
	buf_free(&zone);
	buf_free(&out);
	msg_free(&m);
}
END_TEST

/*
 * The RFC 8463 A.1 keys sign the A.3 message; python3-dkim verifies the
 * signatures against the A.2 records (loop: engine x canonicalization).
 */
START_TEST(rfc8463_keys_verify_against_published_records)
{
	char dir[] = "/tmp/check_sign.XXXXXX", mpath[256];
	struct buf file = BUF_INIT, out = BUF_INIT, v[2];
	struct dkim_key *rsa, *ed;
	struct dkim_sign_opts o;
	struct dkim_sign_req r[2];
	size_t ci = (size_t)_i % NCANONS;
	char err[512];
	struct msg m;
	int rc;

	rsa = key_load_copy("tests/data/rfc8463/A1-rsa-private.pem",
	    CONF_ALG_RSA_SHA256);
	ed = key_load_copy("tests/data/rfc8463/A1-ed25519-private-seed.b64",
	    CONF_ALG_ED25519_SHA256);
	r[0].key = ed;
	r[0].domain = "football.example.com";
	r[0].selector = "brisbane";
	r[1].key = rsa;
	r[1].domain = "football.example.com";
	r[1].selector = "test";
	msg_load(&m, "tests/data/rfc8463/A3-unsigned-message.eml");
	opts_init(&o, _i / (int)NCANONS ? CONF_ENGINE_OPENDKIM :
	    CONF_ENGINE_NATIVE, canons[ci].h, canons[ci].b);
	memset(v, 0, sizeof(v));
	ck_assert_msg(sign(&m, &o, r, 2, 0, v, err, sizeof(err)) == 0,
	    "sign: %s", err);
	buf_appendf(&file, "DKIM-Signature: %s\r\nDKIM-Signature: %s\r\n",
	    v[0].data, v[1].data);
	buf_append(&file, m.raw, m.len);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(mpath, sizeof(mpath), "%s/msg", dir);
	spit(mpath, file.data, file.len);
	rc = verify(mpath, src_path("tests/data/rfc8463/A2-dns-records.zone"),
	    &out);
	buf_reserve(&out, 0);
	ck_assert_msg(rc == 0, "%s: dkimverify.py exit %d, want 0:\n%s",
	    canons[ci].name, rc, out.data);
	ck_assert_msg(strstr(out.data, "s=brisbane a=ed25519-sha256 ok") &&
	    strstr(out.data, "s=test a=rsa-sha256 ok"), "got %s, want both "
	    "ok", out.data);
	unlink(mpath);
	rmdir(dir);
	values_free(v, 2);
	buf_free(&file);
	buf_free(&out);
	msg_free(&m);
	dkim_key_free(rsa);
	dkim_key_free(ed);
}
END_TEST

/* rsa + ed25519 in one signer give the values each gives alone */
START_TEST(two_requests_equal_two_single_signers)
{
	struct buf both[2], one = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r[2];
	char err[512];
	struct msg m;
	int i;

	keys_setup();
	req_init(&r[0], 0);
	req_init(&r[1], 1);
	msg_load(&m, "tests/data/multipart.eml");
	opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    CONF_CANON_RELAXED, CONF_CANON_SIMPLE);
	memset(both, 0, sizeof(both));
	ck_assert_msg(sign(&m, &o, r, 2, 0, both, err, sizeof(err)) == 0,
	    "%s", err);
	for (i = 0; i < 2; i++) {
		buf_truncate(&one, 0);
		ck_assert_msg(sign(&m, &o, &r[i], 1, 0, &one, err,
		    sizeof(err)) == 0, "%s", err);
		ck_assert_msg(one.len == both[i].len && memcmp(one.data,
		    both[i].data, one.len) == 0, "request %d:\ngot  %s\nwant "
		    "%s", i, both[i].data, one.data);
	}
	values_free(both, 2);
	buf_free(&one);
	msg_free(&m);
}
END_TEST

static const size_t chunk_sizes[] = { 1, 2, 3, 5, 7, 13, 64, 1000, 8191 };
#define NCHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

/* any chunking of the body gives the value of the body in one piece */
START_TEST(chunked_body_gives_same_value)
{
	static const char *const files[] = { "tests/data/lf-only.eml",
	    "tests/data/whitespace.eml", "tests/data/multipart.eml",
	    "tests/data/8bit.eml" };
	size_t chunk = chunk_sizes[(size_t)_i % NCHUNKS], fi, ci;
	enum conf_engine eng = _i / (int)NCHUNKS ? CONF_ENGINE_OPENDKIM :
	    CONF_ENGINE_NATIVE;
	struct buf whole = BUF_INIT, part = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	struct msg m;

	keys_setup();
	req_init(&r, 1);
	for (fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
		msg_load(&m, files[fi]);
		for (ci = 0; ci < NCANONS; ci++) {
			opts_init(&o, eng, canons[ci].h, canons[ci].b);
			buf_truncate(&whole, 0);
			buf_truncate(&part, 0);
			ck_assert(sign(&m, &o, &r, 1, 0, &whole, err,
			    sizeof(err)) == 0);
			ck_assert_msg(sign(&m, &o, &r, 1, chunk, &part, err,
			    sizeof(err)) == 0, "%s", err);
			ck_assert_msg(strcmp(whole.data, part.data) == 0,
			    "%s %s chunks of %zu:\ngot  %s\nwant %s",
			    files[fi], canons[ci].name, chunk, part.data,
			    whole.data);
		}
		msg_free(&m);
	}
	buf_free(&whole);
	buf_free(&part);
}
END_TEST

/* bare LF input signs exactly like the same message with CRLF */
START_TEST(lf_only_signs_like_crlf)
{
	struct buf wire = BUF_INIT, v1 = BUF_INIT, v2 = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	struct msg lf, cr;
	char err[512];
	size_t ci;

	keys_setup();
	req_init(&r, 0);
	msg_load(&lf, "tests/data/lf-only.eml");
	crlf(&wire, lf.raw, lf.len);
	cr.raw = buf_steal(&wire);
	cr.len = strlen(cr.raw);
	msg_parse(&cr);
	for (ci = 0; ci < NCANONS; ci++) {
		opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
		    canons[ci].h, canons[ci].b);
		buf_truncate(&v1, 0);
		buf_truncate(&v2, 0);
		ck_assert(sign(&lf, &o, &r, 1, 0, &v1, err, sizeof(err)) == 0);
		ck_assert(sign(&cr, &o, &r, 1, 0, &v2, err, sizeof(err)) == 0);
		ck_assert_msg(strcmp(v1.data, v2.data) == 0, "%s:\ngot  %s\n"
		    "want %s", canons[ci].name, v1.data, v2.data);
	}
	buf_free(&v1);
	buf_free(&v2);
	msg_free(&lf);
	msg_free(&cr);
}
END_TEST

/* big_body - n bytes of varied lines: LF and CRLF ends, WSP, blanks */
static void
big_body(struct buf *b, size_t n)
{
	static const char *const lines[] = {
		"Lorem ipsum dolor sit amet,   consectetur\tadipiscing\n",
		"\r\n", "  leading and trailing   \r\n", "\n",
		"x", "yz\r\n", "\t\t\n", "a longer line with a few words in "
		"it and some more words to make it longer than most\r\n",
	};
	size_t i = 0;

	while (b->len < n)
		buf_appends(b, lines[i++ % (sizeof(lines) / sizeof(lines[0]))]);
}

/* a 4 MiB body, fed in 64 KiB chunks: the engines agree */
START_TEST(large_body_engines_agree)
{
	struct buf body = BUF_INIT, vn = BUF_INIT, vo = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	struct msg m;

	keys_setup();
	req_init(&r, _i % 2);
	msg_load(&m, "tests/data/empty-body.eml");
	big_body(&body, 4 * 1024 * 1024);
	m.body = (const unsigned char *)body.data;
	m.blen = body.len;
	opts_init(&o, CONF_ENGINE_NATIVE, canons[_i / 2].h, canons[_i / 2].b);
	ck_assert(sign(&m, &o, &r, 1, 65536, &vn, err, sizeof(err)) == 0);
	o.engine = CONF_ENGINE_OPENDKIM;
	ck_assert(sign(&m, &o, &r, 1, 65536, &vo, err, sizeof(err)) == 0);
	ck_assert_msg(strcmp(vn.data, vo.data) == 0, "%s:\ngot  %s\nwant %s",
	    canons[_i / 2].name, vn.data, vo.data);
	buf_free(&body);
	buf_free(&vn);
	buf_free(&vo);
	msg_free(&m);
}
END_TEST

/* 128 MiB streamed through the native signer: memory stays flat */
START_TEST(native_body_memory_is_bounded)
{
	struct dkim_signer *s;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	struct buf chunk = BUF_INIT, v = BUF_INIT;
	struct rusage before, after;
	char err[512];
	struct msg m;
	size_t i;

	keys_setup();
	req_init(&r, 0);
	msg_load(&m, "tests/data/multipart.eml");
	big_body(&chunk, 1024 * 1024);
	opts_init(&o, CONF_ENGINE_NATIVE, canons[_i].h, canons[_i].b);
	getrusage(RUSAGE_SELF, &before);
	s = dkim_signer_new(&o, &r, 1, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	for (i = 0; i < m.nf; i++)
		ck_assert_int_eq(dkim_signer_header(s, m.f[i].name,
		    m.f[i].value, m.f[i].vlen), 0);
	ck_assert_int_eq(dkim_signer_eoh(s), 0);
	for (i = 0; i < 128; i++)
		ck_assert_int_eq(dkim_signer_body(s,
		    (const unsigned char *)chunk.data, chunk.len), 0);
	ck_assert_int_eq(dkim_signer_finish(s, &v, err, sizeof(err)), 0);
	dkim_signer_free(s);
	getrusage(RUSAGE_SELF, &after);
	ck_assert_msg(after.ru_maxrss - before.ru_maxrss < 8 * 1024,
	    "max RSS grew by %ld KiB for a 128 MiB body, want < 8192",
	    after.ru_maxrss - before.ru_maxrss);
	buf_free(&chunk);
	buf_free(&v);
	msg_free(&m);
}
END_TEST

/* h= lists the fields in message order, then the oversigned From */
START_TEST(h_lists_fields_in_order_then_oversigned)
{
	struct buf v = BUF_INIT, flat = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	const char *want = "h=From:To:Subject:From:Date:Message-ID:Subject:"
	    "From;";
	char err[512];
	struct msg m;
	size_t i;

	keys_setup();
	req_init(&r, 0);
	msg_load(&m, "tests/data/two-from.eml");
	opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    CONF_CANON_RELAXED, CONF_CANON_RELAXED);
	ck_assert(sign(&m, &o, &r, 1, 0, &v, err, sizeof(err)) == 0);
	for (i = 0; i < v.len; i++)
		if (strchr("\r\n\t ", v.data[i]) == NULL)
			buf_appendc(&flat, v.data[i]);
	ck_assert_msg(strstr(flat.data, want) != NULL, "got %s, want %s",
	    flat.data, want);
	buf_free(&v);
	buf_free(&flat);
	msg_free(&m);
}
END_TEST

/*
 * List-Unsubscribe and List-Unsubscribe-Post are signed even when the
 * configured names (dkim.headers) leave them out, and only once when
 * they name them; by both engines, the same.  Loop: the engines.
 */
START_TEST(list_unsubscribe_fields_always_signed)
{
	static const char *const few[] = { "From", "Subject" };
	static const char *const with[] = { "From", "list-unsubscribe",
	    "Subject" };
	const char *want = "h=From:Subject:List-Unsubscribe:"
	    "List-Unsubscribe-Post:From;";
	struct buf v = BUF_INIT, flat = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	struct msg m;
	size_t i, k;

	keys_setup();
	req_init(&r, 0);
	msg_load(&m, "tests/data/list-unsubscribe.eml");
	opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    CONF_CANON_RELAXED, CONF_CANON_RELAXED);
	for (k = 0; k < 2; k++) {
		o.headers = k ? with : few;
		o.nheaders = k ? 3 : 2;
		buf_truncate(&v, 0);
		buf_truncate(&flat, 0);
		ck_assert(sign(&m, &o, &r, 1, 0, &v, err, sizeof(err)) == 0);
		for (i = 0; i < v.len; i++)
			if (strchr("\r\n\t ", v.data[i]) == NULL)
				buf_appendc(&flat, v.data[i]);
		ck_assert_msg(strstr(flat.data, want) != NULL, "got %s, want "
		    "%s", flat.data, want);
	}
	buf_free(&v);
	buf_free(&flat);
	msg_free(&m);
}
END_TEST

/* a message without From is not signed, by either engine */
START_TEST(no_from_is_refused_by_both_engines)
{
	struct buf v = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512] = "";
	struct msg m;

	keys_setup();
	req_init(&r, 0);
	msg_load(&m, "tests/data/no-from.eml");
	opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    CONF_CANON_RELAXED, CONF_CANON_RELAXED);
	ck_assert_int_eq(sign(&m, &o, &r, 1, 0, &v, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "From") != NULL, "got \"%s\", want a "
	    "reason naming From", err);
	ck_assert_uint_eq(v.len, 0);
	msg_free(&m);
}
END_TEST

static const char *const bad_names[] = { "", "Sub ject", "Sub:ject",
    "Sub\tject", "Subject\t", "Sübject" };

/* a field name that is not one fails the signer, with the name */
START_TEST(bad_field_name_fails_signer)
{
	struct dkim_signer *s;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	struct buf v = BUF_INIT;
	char err[512] = "";

	keys_setup();
	req_init(&r, 0);
	opts_init(&o, CONF_ENGINE_NATIVE, CONF_CANON_RELAXED,
	    CONF_CANON_RELAXED);
	s = dkim_signer_new(&o, &r, 1, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(dkim_signer_header(s, "From", " a@example.com", 14),
	    0);
	ck_assert_int_eq(dkim_signer_header(s, bad_names[_i], " x", 2), -1);
	ck_assert_int_eq(dkim_signer_finish(s, &v, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "header field name") != NULL, "got \"%s\"",
	    err);
	dkim_signer_free(s);
}
END_TEST

/* drop_semicolon_fields - take out the fields whose name holds a ';' */
static void
drop_semicolon_fields(struct msg *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->nf; i++)
		if (strchr(m->f[i].name, ';') == NULL)
			m->f[n++] = m->f[i];
	m->nf = n;
}

/*
 * A ';' in a field name (RFC 5322 allows it; h= cannot carry it): both
 * engines sign the message as if the field were not there, instead of
 * failing (on_error: 451 to every retry).  Loop: the engines.
 */
START_TEST(semicolon_in_name_is_left_out)
{
	static const char *const names[] = { "X-Odd;Name", "From;", ";",
	    "Subject;x" };
	static const char *const want = "h=From:To:Subject:Date:Message-ID:"
	    "From;";
	struct buf with = BUF_INIT, without = BUF_INIT, flat = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512] = "";
	struct msg m;
	size_t i, k;

	keys_setup();
	req_init(&r, 1);
	msg_load(&m, "tests/data/semicolon-name.eml");
	opts_init(&o, _i ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    CONF_CANON_SIMPLE, CONF_CANON_RELAXED);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		msg_parse(&m);
		ck_assert_ptr_nonnull(strchr(m.f[2].name, ';'));
		snprintf(m.f[2].name, sizeof(m.f[2].name), "%s", names[i]);
		buf_truncate(&with, 0);
		ck_assert_msg(sign(&m, &o, &r, 1, 0, &with, err,
		    sizeof(err)) == 0, "%s: got \"%s\", want signed",
		    names[i], err);
		drop_semicolon_fields(&m);
		ck_assert_uint_eq(m.nf, 5);
		buf_truncate(&without, 0);
		ck_assert(sign(&m, &o, &r, 1, 0, &without, err,
		    sizeof(err)) == 0);
		ck_assert_msg(strcmp(with.data, without.data) == 0, "%s:\n"
		    "got  %s\nwant %s", names[i], with.data, without.data);
		buf_truncate(&flat, 0);
		for (k = 0; k < with.len; k++)
			if (strchr("\r\n\t ", with.data[k]) == NULL)
				buf_appendc(&flat, with.data[k]);
		ck_assert_msg(strstr(flat.data, want) != NULL, "%s: got %s, "
		    "want %s", names[i], flat.data, want);
	}
	buf_free(&with);
	buf_free(&without);
	buf_free(&flat);
	msg_free(&m);
}
END_TEST

/* obsolete WSP before the colon: both engines sign it the same */
START_TEST(wsp_before_colon_engines_agree)
{
	static const char text[] = "From : a@example.com\r\n"
	    "Subject   : hello\r\nTo: b@example.com\r\n\r\nbody\r\n";
	struct buf vn = BUF_INIT, vo = BUF_INIT;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	struct msg m;

	keys_setup();
	req_init(&r, 0);
	m.raw = strdup(text);
	m.len = strlen(text);
	msg_parse(&m);
	opts_init(&o, CONF_ENGINE_NATIVE, canons[_i].h, canons[_i].b);
	ck_assert_msg(sign(&m, &o, &r, 1, 0, &vn, err, sizeof(err)) == 0,
	    "%s", err);
	o.engine = CONF_ENGINE_OPENDKIM;
	ck_assert_msg(sign(&m, &o, &r, 1, 0, &vo, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_msg(strcmp(vn.data, vo.data) == 0, "got  %s\nwant %s",
	    vn.data, vo.data);
	ck_assert_msg(strstr(vn.data, "h=From:Subject:To:From;") != NULL,
	    "got %s, want h=From:Subject:To:From", vn.data);
	buf_free(&vn);
	buf_free(&vo);
	msg_free(&m);
}
END_TEST

/* xorshift64 - a fixed pseudo-random sequence (reproducible runs) */
static unsigned int
xorshift64(unsigned long long *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (unsigned int)*st;
}

/*
 * Random headers and bodies of bytes that stress canonicalization: bare
 * CR and LF, CRLF, WSP runs, NUL, 8-bit, ':' ';' '='; random chunking,
 * canonicalization, key and oversigning.  The engines agree on all.
 */
START_TEST(random_messages_engines_agree)
{
	static const char alpha[] = " \t\r\n\r\nabcXYZ:;=\x80\xc3\xa9-\0 ";
	static const char *const names[] = { "From", "To", "Subject",
	    "subject", "FROM", "Date", "X-Foo", "Message-ID", "Cc",
	    "Reply-To" };
	static const char *const over[] = { "From", "Subject" };
	unsigned long long st = 0x9e3779b97f4a7c15ULL * (unsigned)(_i + 1);
	char hv[8][64], err[512];
	const char *hn[8];
	unsigned char body[512];
	struct dkim_signer *s;
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	struct buf v[2];
	size_t hl[8], bl, ch, j;
	int it, nh, i, e, rc[2];

	keys_setup();
	for (it = 0; it < 250; it++) {
		opts_init(&o, CONF_ENGINE_NATIVE, xorshift64(&st) % 2 ?
		    CONF_CANON_RELAXED : CONF_CANON_SIMPLE,
		    xorshift64(&st) % 2 ? CONF_CANON_RELAXED :
		    CONF_CANON_SIMPLE);
		o.oversign = over;
		o.noversign = xorshift64(&st) % 3;
		req_init(&r, (int)(xorshift64(&st) % 2));
		nh = 1 + (int)(xorshift64(&st) % 8);
		for (i = 0; i < nh; i++) {
			hn[i] = i == 0 ? "From" : names[xorshift64(&st) % 10];
			hl[i] = xorshift64(&st) % sizeof(hv[i]);
			for (j = 0; j < hl[i]; j++)
				hv[i][j] = alpha[xorshift64(&st) %
				    (sizeof(alpha) - 1)];
		}
		bl = xorshift64(&st) % sizeof(body);
		for (j = 0; j < bl; j++)
			body[j] = (unsigned char)alpha[xorshift64(&st) %
			    (sizeof(alpha) - 1)];
		ch = 1 + xorshift64(&st) % 50;
		memset(v, 0, sizeof(v));
		for (e = 0; e < 2; e++) {
			o.engine = e ? CONF_ENGINE_OPENDKIM :
			    CONF_ENGINE_NATIVE;
			s = dkim_signer_new(&o, &r, 1, err, sizeof(err));
			ck_assert_ptr_nonnull(s);
			for (i = 0; i < nh; i++)
				(void)dkim_signer_header(s, hn[i], hv[i],
				    hl[i]);
			(void)dkim_signer_eoh(s);
			for (j = 0; j < bl; j += ch)
				(void)dkim_signer_body(s, body + j,
				    j + ch > bl ? bl - j : ch);
			rc[e] = dkim_signer_finish(s, &v[e], err, sizeof(err));
			dkim_signer_free(s);
		}
		ck_assert_msg(rc[0] == rc[1], "seed %d message %d: got rc %d "
		    "native, %d libopendkim", _i, it, rc[0], rc[1]);
		if (rc[0] == 0)
			ck_assert_msg(strcmp(v[0].data, v[1].data) == 0,
			    "seed %d message %d:\ngot  %s\nwant %s", _i, it,
			    v[0].data, v[1].data);
		values_free(v, 2);
	}
}
END_TEST

/* ---------------------------------------------------------------- */
/* threads */

#define NTHREADS	8
#define PER_THREAD	16

struct job {
	int engine;
	struct msg *msgs;
	struct buf *want;	/* [NMESSAGES * 4] */
	int bad;
	char why[1024];
};

static const char *const short_headers[] = { "From", "Subject", NULL };

/* job_opts - case k of a thread: canon, header set and time vary */
static void
job_opts(struct dkim_sign_opts *o, int engine, int k)
{
	opts_init(o, engine ? CONF_ENGINE_OPENDKIM : CONF_ENGINE_NATIVE,
	    canons[k % 2].h, canons[k % 2].b);
	if (k / 2 % 2) {
		/* a second header set: libopendkim must switch options */
		o->headers = short_headers;
		o->nheaders = 2;
		o->now = NOW + 1;
	}
}

static void *
job_run(void *arg)
{
	struct job *j = arg;
	struct dkim_sign_opts o;
	struct dkim_sign_req r[2];
	struct buf v[2];
	char err[512];
	int n, k;
	size_t mi;

	req_init(&r[0], 0);
	req_init(&r[1], 1);
	for (n = 0; n < PER_THREAD && !j->bad; n++) {
		mi = (size_t)(n + j->engine) % NMESSAGES;
		k = n % 4;
		job_opts(&o, j->engine, k);
		memset(v, 0, sizeof(v));
		if (sign(&j->msgs[mi], &o, r, 2, 0, v, err, sizeof(err)) != 0) {
			snprintf(j->why, sizeof(j->why), "%s", err);
			j->bad = 1;
		} else if (strcmp(v[0].data, j->want[mi * 4 + k].data) != 0) {
			snprintf(j->why, sizeof(j->why), "%s case %d:\ngot  %s"
			    "\nwant %s", messages[mi], k, v[0].data,
			    j->want[mi * 4 + k].data);
			j->bad = 1;
		}
		values_free(v, 2);
	}
	return NULL;
}

/* threads share the keys and sign at once; values as when alone */
START_TEST(threads_signing_at_once_give_single_thread_values)
{
	struct msg msgs[NMESSAGES];
	struct buf want[NMESSAGES * 4];
	struct job jobs[NTHREADS];
	pthread_t tid[NTHREADS];
	struct dkim_sign_opts o;
	struct dkim_sign_req r;
	char err[512];
	size_t mi;
	int k, t;

	keys_setup();
	req_init(&r, 0);
	memset(want, 0, sizeof(want));
	for (mi = 0; mi < NMESSAGES; mi++) {
		msg_load(&msgs[mi], messages[mi]);
		for (k = 0; k < 4; k++) {
			job_opts(&o, _i, k);
			ck_assert(sign(&msgs[mi], &o, &r, 1, 0,
			    &want[mi * 4 + k], err, sizeof(err)) == 0);
		}
	}
	for (t = 0; t < NTHREADS; t++) {
		memset(&jobs[t], 0, sizeof(jobs[t]));
		jobs[t].engine = _i;
		jobs[t].msgs = msgs;
		jobs[t].want = want;
		ck_assert_int_eq(pthread_create(&tid[t], NULL, job_run,
		    &jobs[t]), 0);
	}
	for (t = 0; t < NTHREADS; t++)
		pthread_join(tid[t], NULL);
	for (t = 0; t < NTHREADS; t++)
		ck_assert_msg(!jobs[t].bad, "thread %d: %s", t, jobs[t].why);
	for (mi = 0; mi < NMESSAGES; mi++)
		msg_free(&msgs[mi]);
	values_free(want, NMESSAGES * 4);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dkim_sign");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("native_equals_libopendkim_byte_for_byte");
	tcase_add_loop_test(tc, native_equals_libopendkim_byte_for_byte, 0,
	    (int)(NMESSAGES * 2 * NCANONS));
	suite_add_tcase(s, tc);

	tc = tcase_create("python_dkim_verifies_every_message");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, python_dkim_verifies_every_message, 0,
	    (int)NMESSAGES);
	suite_add_tcase(s, tc);

	tc = tcase_create("rfc8463_keys_verify_against_published_records");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, rfc8463_keys_verify_against_published_records,
	    0, (int)(2 * NCANONS));
	suite_add_tcase(s, tc);

	tc = tcase_create("two_requests_equal_two_single_signers");
	tcase_add_loop_test(tc, two_requests_equal_two_single_signers, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunked_body_gives_same_value");
	tcase_add_loop_test(tc, chunked_body_gives_same_value, 0,
	    (int)(2 * NCHUNKS));
	suite_add_tcase(s, tc);

	tc = tcase_create("lf_only_signs_like_crlf");
	tcase_add_loop_test(tc, lf_only_signs_like_crlf, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("large_body_engines_agree");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, large_body_engines_agree, 0, (int)(2 *
	    NCANONS));
	suite_add_tcase(s, tc);

	tc = tcase_create("native_body_memory_is_bounded");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, native_body_memory_is_bounded, 0,
	    (int)NCANONS);
	suite_add_tcase(s, tc);

	tc = tcase_create("list_unsubscribe_fields_always_signed");
	tcase_add_loop_test(tc, list_unsubscribe_fields_always_signed, 0, 2);
	suite_add_tcase(s, tc);
	tc = tcase_create("h_lists_fields_in_order_then_oversigned");
	tcase_add_loop_test(tc, h_lists_fields_in_order_then_oversigned, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("no_from_is_refused_by_both_engines");
	tcase_add_loop_test(tc, no_from_is_refused_by_both_engines, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_field_name_fails_signer");
	tcase_add_loop_test(tc, bad_field_name_fails_signer, 0,
	    (int)(sizeof(bad_names) / sizeof(bad_names[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("semicolon_in_name_is_left_out");
	tcase_add_loop_test(tc, semicolon_in_name_is_left_out, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("wsp_before_colon_engines_agree");
	tcase_add_loop_test(tc, wsp_before_colon_engines_agree, 0,
	    (int)NCANONS);
	suite_add_tcase(s, tc);

	tc = tcase_create("random_messages_engines_agree");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, random_messages_engines_agree, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads_signing_at_once_give_single_thread_values");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc,
	    threads_signing_at_once_give_single_thread_values, 0, 2);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
