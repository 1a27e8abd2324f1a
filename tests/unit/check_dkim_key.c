/*
 * check_dkim_key - dkim/key (loading and refusing key files), dkim/keygen
 * (key files and zone lines, checking a key against a record) and the
 * outpostctl commands built on them.
 *
 * Keys from tests/data/keys are copied into a temporary directory and
 * given the mode each case wants (git keeps no modes).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/key.h"
#include "dkim/keygen.h"
#include "util/buf.h"

static char tmpdir[64];

static const char *
srcdir(void)
{
	const char *d = getenv("top_srcdir");

	return d != NULL && *d != '\0' ? d : TOP_SRCDIR;
}

static char *
slurp(const char *path, size_t *lenp)
{
	struct buf b = BUF_INIT;
	char chunk[8192];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	if (lenp != NULL)
		*lenp = b.len;
	buf_reserve(&b, 0);
	return buf_steal(&b);
}

static void
spit(const char *path, const void *p, size_t len, mode_t mode)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* rm_rf_tmp - empty and remove the test's temporary directory */
static void
rm_rf_tmp(void)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	if (tmpdir[0] == '\0' || (d = opendir(tmpdir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		if (rmdir(path) == -1)
			unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_key.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	rm_rf_tmp();
}

/* copy_key - tests/data/REL into the temporary directory, with mode */
static const char *
copy_key(const char *rel, mode_t mode)
{
	static char dst[256];
	char src[4096], *data;
	const char *base;
	size_t len;

	snprintf(src, sizeof(src), "%s/%s", srcdir(), rel);
	base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, base);
	data = slurp(src, &len);
	spit(dst, data, len, mode);
	free(data);
	return dst;
}

/* ---------------------------------------------------------------- */
/* dkim_key_load: refusals */

enum bad_kind { BAD_FILE, BAD_TEXT, BAD_MISSING, BAD_DIR, BAD_FIFO };

static const struct {
	enum bad_kind kind;
	const char *src;	/* BAD_FILE: tests/data file; BAD_TEXT: data */
	mode_t mode;
	enum conf_alg alg;
	const char *reason;	/* in err, after "FILE: " */
} bad_keys[] = {
	{ BAD_FILE, "tests/data/keys/rsa2048.private", 0644,
	    CONF_ALG_RSA_SHA256, "group or world accessible (mode 0644)" },
	{ BAD_FILE, "tests/data/keys/rsa2048.private", 0640,
	    CONF_ALG_ANY, "group or world accessible (mode 0640)" },
	{ BAD_FILE, "tests/data/keys/ed25519.private", 0604,
	    CONF_ALG_ANY, "group or world accessible (mode 0604)" },
	{ BAD_TEXT, "this is not a key\n", 0600, CONF_ALG_ANY,
	    "cannot parse" },
	{ BAD_TEXT, "", 0600, CONF_ALG_ANY, "cannot parse" },
	{ BAD_TEXT, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE "
	    "KEY-----\n", 0600, CONF_ALG_ANY, "cannot parse" },
	{ BAD_TEXT, "c2hvcnQ=\n", 0600, CONF_ALG_ED25519_SHA256,
	    "cannot parse" },
	{ BAD_FILE, "tests/data/keys/rsa512.private", 0600, CONF_ALG_ANY,
	    "RSA key too small: 512 bits" },
	{ BAD_FILE, "tests/data/keys/rsa768.private", 0600,
	    CONF_ALG_RSA_SHA256, "RSA key too small: 768 bits" },
	{ BAD_FILE, "tests/data/keys/rsa2048.private", 0600,
	    CONF_ALG_ED25519_SHA256, "wrong algorithm: file holds an RSA "
	    "key, declared ed25519-sha256" },
	{ BAD_FILE, "tests/data/keys/ed25519.private", 0600,
	    CONF_ALG_RSA_SHA256, "wrong algorithm: file holds an ed25519 "
	    "key, declared rsa-sha256" },
	{ BAD_FILE, "tests/data/rfc8463/A1-ed25519-private-seed.b64", 0600,
	    CONF_ALG_RSA_SHA256, "wrong algorithm" },
	{ BAD_MISSING, NULL, 0, CONF_ALG_ANY,
	    "cannot read: No such file or directory" },
	{ BAD_DIR, NULL, 0, CONF_ALG_ANY, "not a regular file" },
	{ BAD_FIFO, NULL, 0600, CONF_ALG_ANY, "not a regular file" },
};

START_TEST(bad_key_is_refused_with_file_named)
{
	char path[256], err[512] = "", want[512];
	struct dkim_key *k;

	switch (bad_keys[_i].kind) {
	case BAD_FILE:
		snprintf(path, sizeof(path), "%s",
		    copy_key(bad_keys[_i].src, bad_keys[_i].mode));
		break;
	case BAD_TEXT:
		snprintf(path, sizeof(path), "%s/bad.private", tmpdir);
		spit(path, bad_keys[_i].src, strlen(bad_keys[_i].src),
		    bad_keys[_i].mode);
		break;
	case BAD_MISSING:
		snprintf(path, sizeof(path), "%s/missing.private", tmpdir);
		break;
	case BAD_DIR:
		snprintf(path, sizeof(path), "%s/dir.private", tmpdir);
		ck_assert_int_eq(mkdir(path, 0700), 0);
		break;
	case BAD_FIFO:
		snprintf(path, sizeof(path), "%s/fifo.private", tmpdir);
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		break;
	}
	k = dkim_key_load(path, bad_keys[_i].alg, err, sizeof(err));
	ck_assert_msg(k == NULL, "case %d: got a key, want refusal", _i);
	snprintf(want, sizeof(want), "%s: %s", path, bad_keys[_i].reason);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "case %d: got \"%s\", want \"%s...\"", _i, err, want);
}
END_TEST

/* ---------------------------------------------------------------- */
/* dkim_key_load: good keys */

static const struct {
	const char *src;
	enum conf_alg declared, want;
	unsigned int bits;
	const char *pub;	/* expected p=, from the RFC, or NULL */
} good_keys[] = {
	{ "tests/data/keys/rsa2048.private", CONF_ALG_RSA_SHA256,
	    CONF_ALG_RSA_SHA256, 2048, NULL },
	{ "tests/data/keys/rsa2048.private", CONF_ALG_ANY,
	    CONF_ALG_RSA_SHA256, 2048, NULL },
	{ "tests/data/keys/rsa1024-traditional.private", CONF_ALG_ANY,
	    CONF_ALG_RSA_SHA256, 1024, NULL },
	{ "tests/data/keys/ed25519.private", CONF_ALG_ED25519_SHA256,
	    CONF_ALG_ED25519_SHA256, 256, NULL },
	{ "tests/data/keys/ed25519.private", CONF_ALG_ANY,
	    CONF_ALG_ED25519_SHA256, 256, NULL },
	/* RFC 8463 A.1 and the A.2 records' p= */
	{ "tests/data/rfc8463/A1-ed25519-private-seed.b64", CONF_ALG_ANY,
	    CONF_ALG_ED25519_SHA256, 256,
	    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
	{ "tests/data/rfc8463/A1-rsa-private.pem", CONF_ALG_RSA_SHA256,
	    CONF_ALG_RSA_SHA256, 1024,
	    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6"
	    "Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/"
	    "e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G"
	    "+2kryOTIKT+l/K4w3QIDAQAB" },
};

START_TEST(good_key_loads_with_algorithm_bits_and_blob)
{
	const char *path = copy_key(good_keys[_i].src, 0600);
	struct dkim_key *k;
	char err[512], *pub;

	k = dkim_key_load(path, good_keys[_i].declared, err, sizeof(err));
	ck_assert_msg(k != NULL, "%s: %s", good_keys[_i].src, err);
	ck_assert_int_eq(k->alg, good_keys[_i].want);
	ck_assert_uint_eq(k->bits, good_keys[_i].bits);
	ck_assert_str_eq(k->file, path);
	ck_assert_ptr_nonnull(k->pkey);
	/* what libopendkim's dkim_sign() reads: PEM PKCS#8, NUL-ended */
	ck_assert_ptr_nonnull(k->blob);
	ck_assert_uint_eq(strlen((char *)k->blob), k->bloblen);
	ck_assert_msg(strncmp((char *)k->blob, "-----BEGIN PRIVATE KEY-----",
	    27) == 0, "blob starts \"%.30s\"", k->blob);
	pub = dkim_key_public_b64(k);
	ck_assert_ptr_nonnull(pub);
	if (good_keys[_i].pub != NULL)
		ck_assert_msg(strcmp(pub, good_keys[_i].pub) == 0,
		    "got p=%s, want p=%s", pub, good_keys[_i].pub);
	free(pub);
	ck_assert_ptr_null(dkim_key_free(k));
}
END_TEST

START_TEST(key_free_accepts_null)
{
	ck_assert_ptr_null(dkim_key_free(NULL));
	ck_assert_ptr_null(dkim_key_public_b64(NULL));
}
END_TEST

/* ---------------------------------------------------------------- */
/* keygen */

/* zone_strings - the quoted strings of a zone line, joined */
static void
zone_strings(const char *zone, struct buf *joined, size_t *maxlen)
{
	const char *p, *q;

	*maxlen = 0;
	for (p = zone; (p = strchr(p, '"')) != NULL; p = q + 1) {
		q = strchr(p + 1, '"');
		ck_assert_ptr_nonnull(q);
		if ((size_t)(q - p - 1) > *maxlen)
			*maxlen = (size_t)(q - p - 1);
		buf_append(joined, p + 1, (size_t)(q - p - 1));
	}
	buf_reserve(joined, 0);
}

static const struct {
	enum conf_alg alg;
	unsigned int bits;	/* asked; 0 = default */
	unsigned int want_bits;
	const char *k;
} gen_cases[] = {
	{ CONF_ALG_RSA_SHA256, 0, 2048, "rsa" },
	{ CONF_ALG_RSA_SHA256, 1024, 1024, "rsa" },
	{ CONF_ALG_RSA_SHA256, 3072, 3072, "rsa" },
	{ CONF_ALG_ED25519_SHA256, 0, 256, "ed25519" },
};

START_TEST(keygen_writes_private_0600_and_zone_line)
{
	struct keygen_opts o = { 0 };
	struct buf joined = BUF_INIT;
	char priv[256], txt[256], err[512], want[256], *zone, *pub;
	struct dkim_key *k;
	struct stat st;
	size_t maxlen;

	o.dir = tmpdir;
	o.domain = "example.com";
	o.selector = "s2026";
	o.alg = gen_cases[_i].alg;
	o.bits = gen_cases[_i].bits;
	ck_assert_msg(keygen_write(&o, err, sizeof(err)) == 0, "%s", err);
	snprintf(priv, sizeof(priv), "%s/s2026.private", tmpdir);
	snprintf(txt, sizeof(txt), "%s/s2026.txt", tmpdir);

	ck_assert_int_eq(stat(priv, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0600, "got mode %04o, want 0600",
	    (unsigned int)(st.st_mode & 07777));
	k = dkim_key_load(priv, gen_cases[_i].alg, err, sizeof(err));
	ck_assert_msg(k != NULL, "%s", err);
	ck_assert_uint_eq(k->bits, gen_cases[_i].want_bits);
	zone = slurp(priv, NULL);
	ck_assert_msg(strncmp(zone, "-----BEGIN PRIVATE KEY-----", 27) == 0,
	    "got \"%.30s\", want PKCS#8 PEM", zone);
	free(zone);

	zone = slurp(txt, NULL);
	ck_assert_msg(strncmp(zone, "s2026._domainkey.example.com. IN TXT ( \"",
	    39) == 0, "got \"%s\"", zone);
	ck_assert_msg(strlen(zone) > 3 && strcmp(zone + strlen(zone) - 3,
	    " )\n") == 0, "got \"%s\", want it to end \" )\\n\"", zone);
	zone_strings(zone, &joined, &maxlen);
	ck_assert_msg(maxlen <= 255, "got a string of %zu bytes, want <= 255",
	    maxlen);
	pub = dkim_key_public_b64(k);
	snprintf(want, sizeof(want), "v=DKIM1; k=%s; p=", gen_cases[_i].k);
	ck_assert_msg(strncmp(joined.data, want, strlen(want)) == 0,
	    "got \"%s\", want \"%s...\"", joined.data, want);
	ck_assert_msg(strcmp(joined.data + strlen(want), pub) == 0,
	    "got p=%s, want p=%s", joined.data + strlen(want), pub);
	free(pub);
	free(zone);
	buf_free(&joined);
	dkim_key_free(k);
}
END_TEST

START_TEST(keygen_never_overwrites_unless_forced)
{
	struct keygen_opts o = { 0 };
	char priv[256], err[512], *before, *after;

	o.dir = tmpdir;
	o.domain = "example.com";
	o.selector = "e1";
	o.alg = CONF_ALG_ED25519_SHA256;
	ck_assert_msg(keygen_write(&o, err, sizeof(err)) == 0, "%s", err);
	snprintf(priv, sizeof(priv), "%s/e1.private", tmpdir);
	before = slurp(priv, NULL);
	ck_assert_int_eq(keygen_write(&o, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "exists") != NULL, "got \"%s\"", err);
	after = slurp(priv, NULL);
	ck_assert_str_eq(before, after);
	free(after);
	o.force = 1;
	ck_assert_msg(keygen_write(&o, err, sizeof(err)) == 0, "%s", err);
	after = slurp(priv, NULL);
	ck_assert_msg(strcmp(before, after) != 0, "forced keygen kept the key");
	free(before);
	free(after);
}
END_TEST

static const struct {
	const char *selector, *domain;
	enum conf_alg alg;
	unsigned int bits;
} gen_bad[] = {
	{ "../x", "example.com", CONF_ALG_RSA_SHA256, 0 },
	{ "a/b", "example.com", CONF_ALG_RSA_SHA256, 0 },
	{ "", "example.com", CONF_ALG_RSA_SHA256, 0 },
	{ "s1", "example..com", CONF_ALG_RSA_SHA256, 0 },
	{ "s1", "example.com", CONF_ALG_RSA_SHA256, 512 },
	{ "s1", "example.com", CONF_ALG_RSA_SHA256, 16384 },
};

START_TEST(keygen_refuses_bad_names_and_sizes)
{
	struct keygen_opts o = { 0 };
	char err[512] = "";
	DIR *d;
	struct dirent *e;
	int n = 0;

	o.dir = tmpdir;
	o.selector = gen_bad[_i].selector;
	o.domain = gen_bad[_i].domain;
	o.alg = gen_bad[_i].alg;
	o.bits = gen_bad[_i].bits;
	ck_assert_int_eq(keygen_write(&o, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no reason given");
	d = opendir(tmpdir);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	ck_assert_msg(n == 0, "got %d files written, want 0", n);
}
END_TEST

/* ---------------------------------------------------------------- */
/* keytest */

static struct dkim_key *
load_copy(const char *rel)
{
	char err[512];
	struct dkim_key *k;

	k = dkim_key_load(copy_key(rel, 0600), CONF_ALG_ANY, err,
	    sizeof(err));
	ck_assert_msg(k != NULL, "%s", err);
	return k;
}

#define RFC_RSA_P							\
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3"	\
	"idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/" \
	"BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3" \
	"G+2kryOTIKT+l/K4w3QIDAQAB"
#define RFC_ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static const struct {
	const char *key;
	const char *record;
	enum keygen_result want;
	const char *why;
} keytests[] = {
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; k=rsa; p=" RFC_RSA_P, KEYGEN_MATCH, "matches" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "p=" RFC_RSA_P, KEYGEN_MATCH, "matches" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1;k=rsa;  h=sha256; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBi "
	    "QKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Q"
	    "vx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hst"
	    "T5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB ;",
	    KEYGEN_MATCH, "matches" },
	{ "tests/data/rfc8463/A1-ed25519-private-seed.b64",
	    "v=DKIM1; k=ed25519; p=" RFC_ED_P, KEYGEN_MATCH, "matches" },
	{ "tests/data/keys/rsa2048.private",
	    "v=DKIM1; k=rsa; p=" RFC_RSA_P, KEYGEN_PUBKEY, "public key" },
	{ "tests/data/keys/ed25519.private",
	    "v=DKIM1; k=ed25519; p=" RFC_ED_P, KEYGEN_PUBKEY, "public key" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; k=ed25519; p=" RFC_ED_P, KEYGEN_ALGORITHM, "algorithm" },
	{ "tests/data/rfc8463/A1-ed25519-private-seed.b64",
	    "v=DKIM1; p=" RFC_RSA_P, KEYGEN_ALGORITHM, "algorithm" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; k=rsa; p=", KEYGEN_REVOKED, "revoked" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM2; k=rsa; p=" RFC_RSA_P, KEYGEN_SYNTAX, "syntax" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "k=rsa; v=DKIM1; p=" RFC_RSA_P, KEYGEN_SYNTAX, "syntax" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; k=rsa", KEYGEN_SYNTAX, "syntax" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; k=rsa; p=!!!not-base64!!!", KEYGEN_SYNTAX, "syntax" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "garbage", KEYGEN_SYNTAX, "syntax" },
	{ "tests/data/rfc8463/A1-rsa-private.pem",
	    "v=DKIM1; p=a; p=b", KEYGEN_SYNTAX, "syntax" },
};

START_TEST(keytest_names_what_differs)
{
	struct dkim_key *k = load_copy(keytests[_i].key);
	enum keygen_result r;
	char why[512] = "";

	r = keygen_check(k, keytests[_i].record, why, sizeof(why));
	ck_assert_msg(r == keytests[_i].want, "case %d: got %d (%s), want %d",
	    _i, r, why, keytests[_i].want);
	ck_assert_msg(strstr(why, keytests[_i].why) != NULL,
	    "case %d: got \"%s\", want it to say \"%s\"", _i, why,
	    keytests[_i].why);
	dkim_key_free(k);
}
END_TEST

static const struct {
	const char *text;
	const char *owner;
	const char *want;
} record_texts[] = {
	/* the RFC's zone form, over several lines */
	{ "; comment\nsel._domainkey.example.com. IN TXT (\n \"v=DKIM1; "
	    "k=rsa; p=AB\"\n \"CD\")\n", NULL, "v=DKIM1; k=rsa; p=ABCD" },
	/* keygen's form */
	{ "s._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; p=XY\" "
	    ")\n", "s._domainkey.example.com", "v=DKIM1; k=ed25519; p=XY" },
	/* several records: the one asked for */
	{ "a._domainkey.example.com. IN TXT ( \"v=DKIM1; p=AA==\" )\n"
	    "b._domainkey.example.com. IN TXT (\n \"v=DKIM1; \"\n"
	    " \"p=BB==\" )\n", "b._domainkey.example.com.",
	    "v=DKIM1; p=BB==" },
	/* just the quoted text */
	{ "\"v=DKIM1; p=QQ==\"\n", "x._domainkey.example.com",
	    "v=DKIM1; p=QQ==" },
	/* just the text */
	{ "  v=DKIM1; k=rsa; p=QQ==\n", NULL, "v=DKIM1; k=rsa; p=QQ==" },
	/* NAME<TAB>TEXT, as in the RFC's .tsv */
	{ "s._domainkey.example.com\tv=DKIM1; p=QQ==\n", NULL,
	    "v=DKIM1; p=QQ==" },
	{ "s._domainkey.example.com. 3600 IN TXT v=DKIM1; p=QQ==\n", NULL,
	    "v=DKIM1; p=QQ==" },
};

START_TEST(record_text_from_zone_line_or_bare_text)
{
	struct buf rec = BUF_INIT;
	char err[256];

	ck_assert_msg(keygen_record_text(record_texts[_i].text,
	    record_texts[_i].owner, &rec, err, sizeof(err)) == 0, "%s", err);
	buf_reserve(&rec, 0);
	ck_assert_msg(strcmp(rec.data, record_texts[_i].want) == 0,
	    "got \"%s\", want \"%s\"", rec.data, record_texts[_i].want);
	buf_free(&rec);
}
END_TEST

/* a key checked against the record keygen wrote for it: match */
START_TEST(keygen_record_matches_its_key)
{
	struct keygen_opts o = { 0 };
	struct buf rec = BUF_INIT;
	char path[256], err[512], why[256], *zone;
	struct dkim_key *k;

	o.dir = tmpdir;
	o.domain = "example.org";
	o.selector = "k1";
	o.alg = _i ? CONF_ALG_ED25519_SHA256 : CONF_ALG_RSA_SHA256;
	ck_assert_msg(keygen_write(&o, err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/k1.txt", tmpdir);
	zone = slurp(path, NULL);
	ck_assert(keygen_record_text(zone, "k1._domainkey.example.org", &rec,
	    err, sizeof(err)) == 0);
	buf_reserve(&rec, 0);
	snprintf(path, sizeof(path), "%s/k1.private", tmpdir);
	k = dkim_key_load(path, CONF_ALG_ANY, err, sizeof(err));
	ck_assert_msg(k != NULL, "%s", err);
	ck_assert_msg(keygen_check(k, rec.data, why, sizeof(why)) ==
	    KEYGEN_MATCH, "got \"%s\"", why);
	dkim_key_free(k);
	free(zone);
	buf_free(&rec);
}
END_TEST

/* ---------------------------------------------------------------- */
/* outpostctl (the binary of this build) */

/* ctl - run outpostctl with args; exit status, output in out */
static int
ctl(struct buf *out, const char *const *args)
{
	const char *bin = getenv("OUTPOSTCTL");
	char outpath[256], *data, *argv[16];
	size_t i, len;
	pid_t pid;
	int fd, status;

	if (bin == NULL)
		bin = "tools/outpostctl";
	ck_assert_msg(access(bin, X_OK) == 0, "%s: not built", bin);
	argv[0] = (char *)"outpostctl";
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	snprintf(outpath, sizeof(outpath), "%s/out", tmpdir);
	fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, argv);
		_exit(127);
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	data = slurp(outpath, &len);
	buf_append(out, data, len);
	buf_reserve(out, 0);
	free(data);
	unlink(outpath);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* write_conf - a config with the test keys (rsa, ed) in tmpdir */
static void
write_conf(const char *path, const char *rsa, const char *ed)
{
	struct buf c = BUF_INIT;

	buf_appendf(&c, "dkim = {\n keys = (\n"
	    "  { name = \"r\"; domain = \"example.com\"; selector = \"r\"; "
	    "algorithm = \"rsa-sha256\"; file = \"%s\"; },\n"
	    "  { name = \"e\"; domain = \"example.com\"; selector = \"e\"; "
	    "algorithm = \"ed25519-sha256\"; file = \"%s\"; }\n );\n"
	    " signing = (\n"
	    "  { match = \"*@example.com\"; keys = [ \"r\", \"e\" ]; },\n"
	    "  { match = \"example.org\"; keys = [ \"e\" ]; }\n );\n};\n",
	    rsa, ed);
	spit(path, c.data, c.len, 0644);
	buf_free(&c);
}

START_TEST(outpostctl_check_config_counts_keys_and_rules)
{
	char rsa[256], ed[256], conf[256], want[512];
	const char *args[] = { "check-config", "-c", conf, NULL };
	struct buf out = BUF_INIT;
	int rc;

	snprintf(rsa, sizeof(rsa), "%s",
	    copy_key("tests/data/keys/rsa2048.private", 0600));
	snprintf(ed, sizeof(ed), "%s",
	    copy_key("tests/data/keys/ed25519.private", 0600));
	snprintf(conf, sizeof(conf), "%s/outpost.conf", tmpdir);
	write_conf(conf, rsa, ed);
	rc = ctl(&out, args);
	snprintf(want, sizeof(want), "%s: OK, 2 keys, 2 rules\n", conf);
	ck_assert_msg(rc == 0 && strcmp(out.data, want) == 0,
	    "got %d \"%s\", want 0 \"%s\"", rc, out.data, want);
	buf_free(&out);

	/* a key made readable by others: refused, EX_CONFIG, file named */
	ck_assert_int_eq(chmod(ed, 0644), 0);
	rc = ctl(&out, args);
	ck_assert_msg(rc == 78 && strstr(out.data, ed) != NULL,
	    "got %d \"%s\", want 78 naming %s", rc, out.data, ed);
	buf_free(&out);
}
END_TEST

START_TEST(outpostctl_keygen_then_keytest_offline)
{
	char priv[256], txt[256];
	const char *gen[] = { "keygen", "-d", "example.net", "-s", "sel", "-a",
	    "ed25519", "-o", tmpdir, NULL };
	const char *test[] = { "keytest", "-k", priv, "-d", "example.net",
	    "-s", "sel", "-r", txt, NULL };
	const char *other[] = { "keytest", "-k", priv, "-d", "example.net",
	    "-s", "sel", "-r", NULL, NULL };
	struct buf out = BUF_INIT;
	char rfc[256];
	int rc;

	snprintf(priv, sizeof(priv), "%s/sel.private", tmpdir);
	snprintf(txt, sizeof(txt), "%s/sel.txt", tmpdir);
	rc = ctl(&out, gen);
	ck_assert_msg(rc == 0, "keygen: %d %s", rc, out.data);
	buf_free(&out);
	rc = ctl(&out, gen);
	ck_assert_msg(rc == 73, "second keygen: got %d, want 73", rc);
	buf_free(&out);
	rc = ctl(&out, test);
	ck_assert_msg(rc == 0 && strstr(out.data, "OK") != NULL,
	    "keytest: got %d \"%s\", want 0 OK", rc, out.data);
	buf_free(&out);
	snprintf(rfc, sizeof(rfc), "%s/tests/data/rfc8463/A2-dns-records.zone",
	    srcdir());
	other[8] = rfc;		/* a zone holding other keys */
	rc = ctl(&out, other);
	ck_assert_msg(rc == 1 && strstr(out.data, "FAIL") != NULL,
	    "keytest against another record: got %d \"%s\", want 1 FAIL", rc,
	    out.data);
	buf_free(&out);
}
END_TEST

static const char *const usage_cases[][8] = {
	{ NULL },
	{ "frobnicate", NULL },
	{ "keygen", "-s", "s1", NULL },
	{ "keygen", "-d", "example.com", "-s", "s1", "-a", "dsa", NULL },
	{ "keygen", "-d", "example.com", "-s", "s1", "-b", "100", NULL },
	{ "keygen", "-d", "example.com", "-s", "s1", "-a", "ed25519", NULL },
	{ "keytest", "-k", "x", NULL },
	{ "check-config", "extra", NULL },
};

START_TEST(outpostctl_usage_errors_exit_64)
{
	struct buf out = BUF_INIT;
	const char *args[12];
	int i, rc;

	for (i = 0; i < 8 && usage_cases[_i][i] != NULL; i++)
		args[i] = usage_cases[_i][i];
	/* case 5 is ed25519 with -b: add it */
	if (_i == 5) {
		args[i++] = "-b";
		args[i++] = "2048";
	}
	args[i] = NULL;
	rc = ctl(&out, args);
	ck_assert_msg(rc == 64, "case %d: got %d, want 64 (%s)", _i, rc,
	    out.data);
	buf_free(&out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dkim_key");
	TCase *tc;
	SRunner *sr;
	int nf;

#define ADD(name, loops) do {						\
	tc = tcase_create(#name);					\
	tcase_add_checked_fixture(tc, setup, teardown);			\
	tcase_set_timeout(tc, 60);					\
	tcase_add_loop_test(tc, name, 0, (int)(loops));			\
	suite_add_tcase(s, tc);						\
} while (0)
#define N(a) (sizeof(a) / sizeof((a)[0]))

	ADD(bad_key_is_refused_with_file_named, N(bad_keys));
	ADD(good_key_loads_with_algorithm_bits_and_blob, N(good_keys));
	ADD(key_free_accepts_null, 1);
	ADD(keygen_writes_private_0600_and_zone_line, N(gen_cases));
	ADD(keygen_never_overwrites_unless_forced, 1);
	ADD(keygen_refuses_bad_names_and_sizes, N(gen_bad));
	ADD(keytest_names_what_differs, N(keytests));
	ADD(record_text_from_zone_line_or_bare_text, N(record_texts));
	ADD(keygen_record_matches_its_key, 2);
	ADD(outpostctl_check_config_counts_keys_and_rules, 1);
	ADD(outpostctl_keygen_then_keytest_offline, 1);
	ADD(outpostctl_usage_errors_exit_64, N(usage_cases));

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
