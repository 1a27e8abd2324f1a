/*
 * dkim/keygen - see keygen.h.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/nameser.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim/b64.h"
#include "dkim/keygen.h"
#include "util/xmalloc.h"

#define KEYGEN_DNS_MAX	65535
#define KEYGEN_PATH_MAX	4096

/* keygen_name_ok - a DNS name: labels of letters, digits, - and _ */
int
keygen_name_ok(const char *s)
{
	size_t label = 0, total = 0;

	if (s == NULL || *s == '\0' || *s == '.')
		return 0;
	for (; *s != '\0'; s++, total++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && total <= 253;
}

/* keygen_generate - a new key of the given kind */
static EVP_PKEY *
keygen_generate(enum conf_alg alg, unsigned int bits)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	ctx = EVP_PKEY_CTX_new_id(alg == CONF_ALG_ED25519_SHA256 ?
	    EVP_PKEY_ED25519 : EVP_PKEY_RSA, NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_keygen_init(ctx) != 1 ||
	    (alg == CONF_ALG_RSA_SHA256 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1) ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* keygen_path - DIR/SELECTOR.SUFFIX, checked for truncation */
static int
keygen_path(char *out, size_t outlen, const struct keygen_opts *o,
    const char *suffix)
{
	int n;

	n = snprintf(out, outlen, "%s/%s.%s", o->dir, o->selector, suffix);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/*
 * keygen_create - a new file, never following a link or reusing a name
 * that exists (force: remove the old one first)
 */
static int
keygen_create(const char *path, mode_t mode, int force, char *err,
    size_t errlen)
{
	int fd;

	if (force && unlink(path) == -1 && errno != ENOENT) {
		(void)snprintf(err, errlen, "%s: cannot remove: %s", path,
		    strerror(errno));
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1) {
		if (errno == EEXIST)
			(void)snprintf(err, errlen, "%s: exists (use -f to "
			    "replace it)", path);
		else
			(void)snprintf(err, errlen, "%s: cannot create: %s",
			    path, strerror(errno));
		return -1;
	}
	/* the mode must not depend on the umask being sane */
	if (fchmod(fd, mode) == -1) {
		(void)snprintf(err, errlen, "%s: chmod: %s", path,
		    strerror(errno));
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	return fd;
}

/* keygen_put - write all of p, fsync and close fd */
static int
keygen_put(int fd, const char *path, const void *p, size_t len, char *err,
    size_t errlen)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, c, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)snprintf(err, errlen, "%s: write: %s", path,
			    strerror(errno));
			(void)close(fd);
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * keygen_prepare - check the options, choose the RSA bits and make the
 * two paths (KEYGEN_PATH_MAX bytes each) in a directory that exists
 */
static int
keygen_prepare(const struct keygen_opts *o, unsigned int *bits, char *priv,
    char *txt, char *err, size_t errlen)
{
	struct stat st;

	*bits = o->bits;
	if (!keygen_name_ok(o->selector) || !keygen_name_ok(o->domain)) {
		(void)snprintf(err, errlen, "bad selector or domain \"%s\" / "
		    "\"%s\"", o->selector ? o->selector : "",
		    o->domain ? o->domain : "");
		return -1;
	}
	if (o->alg == CONF_ALG_RSA_SHA256) {
		if (*bits == 0)
			*bits = KEYGEN_RSA_BITS;
		if (*bits < KEYGEN_RSA_MIN_BITS ||
		    *bits > KEYGEN_RSA_MAX_BITS) {
			(void)snprintf(err, errlen, "RSA bits must be %d to %d",
			    KEYGEN_RSA_MIN_BITS, KEYGEN_RSA_MAX_BITS);
			return -1;
		}
	} else if (o->alg != CONF_ALG_ED25519_SHA256) {
		(void)snprintf(err, errlen, "algorithm must be rsa or ed25519");
		return -1;
	}
	if (keygen_path(priv, KEYGEN_PATH_MAX, o, "private") == -1 ||
	    keygen_path(txt, KEYGEN_PATH_MAX, o, "txt") == -1) {
		(void)snprintf(err, errlen, "%s: path too long", o->dir);
		return -1;
	}
	/* A missing directory is made, private to its owner (0700). */
	if (stat(o->dir, &st) == -1 && errno == ENOENT &&
	    mkdir(o->dir, 0700) == -1) {
		(void)snprintf(err, errlen, "%s: %s", o->dir, strerror(errno));
		return -1;
	}
	if (stat(o->dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		(void)snprintf(err, errlen, "%s: not a directory", o->dir);
		return -1;
	}
	/* refuse before spending time on a key we could not write */
	if (!o->force && (lstat(priv, &st) == 0 || lstat(txt, &st) == 0)) {
		(void)snprintf(err, errlen, "%s: exists (use -f to replace "
		    "it)", lstat(priv, &st) == 0 ? priv : txt);
		return -1;
	}
	return 0;
}

/* keygen_write - generate a key, write SELECTOR.private and .txt */
int
keygen_write(const struct keygen_opts *o, char *err, size_t errlen)
{
	char priv[KEYGEN_PATH_MAX], txt[KEYGEN_PATH_MAX];
	char *pem = NULL, *rec = NULL, *zone = NULL;
	struct dkim_key *key = NULL;
	unsigned int bits;
	EVP_PKEY *pkey = NULL;
	size_t pemlen = 0;
	int fd, rc = -1, wrote_priv = 0;

	if (keygen_prepare(o, &bits, priv, txt, err, errlen) == -1)
		return -1;

	if ((pkey = keygen_generate(o->alg, bits)) == NULL ||
	    (pem = dkim_key_pem_new(pkey, &pemlen)) == NULL) {
		ERR_clear_error();
		(void)snprintf(err, errlen, "key generation failed");
		goto fail;
	}
	if ((fd = keygen_create(priv, 0600, o->force, err, errlen)) == -1)
		goto fail;
	wrote_priv = 1;
	if (keygen_put(fd, priv, pem, pemlen, err, errlen) == -1)
		goto fail;

	/* the record comes from the file as the signer will read it */
	if ((key = dkim_key_load(priv, o->alg, err, errlen)) == NULL ||
	    (rec = keygen_record(key)) == NULL ||
	    (zone = keygen_zone(o->selector, o->domain, rec)) == NULL) {
		if (key != NULL)
			(void)snprintf(err, errlen, "%s: cannot make the "
			    "record", priv);
		goto fail;
	}
	if ((fd = keygen_create(txt, 0644, o->force, err, errlen)) == -1)
		goto fail;
	if (keygen_put(fd, txt, zone, strlen(zone), err, errlen) == -1) {
		(void)unlink(txt);
		goto fail;
	}
	rc = 0;
fail:
	if (rc == -1 && wrote_priv)
		(void)unlink(priv);
	if (pem != NULL) {
		OPENSSL_cleanse(pem, pemlen);
		free(pem);
	}
	EVP_PKEY_free(pkey);
	dkim_key_free(key);
	free(rec);
	free(zone);
	return rc;
}

/* keygen_record - "v=DKIM1; k=...; p=..." for a key */
char *
keygen_record(const struct dkim_key *key)
{
	struct buf b = BUF_INIT;
	char *p;

	if ((p = dkim_key_public_b64(key)) == NULL)
		return NULL;
	buf_appendf(&b, "v=DKIM1; k=%s; p=%s",
	    key->alg == CONF_ALG_ED25519_SHA256 ? "ed25519" : "rsa", p);
	free(p);
	return buf_steal(&b);
}

/* keygen_zone - the record as a zone line, strings of <= 255 */
char *
keygen_zone(const char *selector, const char *domain, const char *record)
{
	struct buf b = BUF_INIT;
	size_t len, off, n;

	len = strlen(record);
	buf_appendf(&b, "%s._domainkey.%s. IN TXT (", selector, domain);
	for (off = 0; off < len || off == 0; off += n) {
		n = len - off;
		if (n > KEYGEN_STRING_MAX)
			n = KEYGEN_STRING_MAX;
		buf_appends(&b, off == 0 ? " \"" : "\n\t\"");
		buf_append(&b, record + off, n);
		buf_appendc(&b, '"');
		if (n == 0)
			break;
	}
	buf_appends(&b, " )\n");
	return buf_steal(&b);
}

/* keygen_owner_eq - zone owner names equal, trailing dot optional */
static int
keygen_owner_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	return alen == blen && strncasecmp(a, b, alen) == 0;
}

/*
 * keygen_bare_text - a record without quotes: from its first tag=, maybe
 * after "NAME [TTL] [IN] [TXT]", trimmed
 */
static int
keygen_bare_text(const char *text, struct buf *rec, char *err,
    size_t errlen)
{
	const char *p, *start, *end;

	for (start = text; ; ) {
		while (*start == ' ' || *start == '\t' ||
		    *start == '\r' || *start == '\n')
			start++;
		for (p = start; *p != '\0' && *p != '=' && *p != ' ' &&
		    *p != '\t' && *p != '\n'; p++)
			;
		if (*p == '=' || *p == '\0')
			break;
		start = p;
	}
	for (end = start + strlen(start); end > start &&
	    (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	    end[-1] == '\n'); end--)
		;
	if (end == start) {
		(void)snprintf(err, errlen, "empty record");
		return -1;
	}
	buf_append(rec, start, (size_t)(end - start));
	return 0;
}

/*
 * keygen_quoted - append the quoted string at *pp (its opening quote)
 * to cur, \ escapes undone; *pp left on the closing quote; -1 if none
 */
static int
keygen_quoted(const char **pp, struct buf *cur)
{
	const char *p = *pp;

	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		buf_appendc(cur, *p);
	}
	*pp = p;
	return *p == '\0' ? -1 : 0;
}

/*
 * keygen_fallback - no record named owner: the only record if it has no
 * name or no name was asked; else -1 and why
 */
static int
keygen_fallback(struct buf *rec, const struct buf *only, size_t nrec,
    const char *owner, int only_named, char *err, size_t errlen)
{
	if (nrec == 1 && (owner == NULL || !only_named)) {
		buf_append(rec, only->data, only->len);
		return 0;
	}
	if (nrec == 0)
		(void)snprintf(err, errlen, "no record found");
	else
		(void)snprintf(err, errlen, "no record for %s",
		    owner != NULL ? owner : "one name: "
		    "several in the file");
	return -1;
}

/*
 * keygen_record_text - the TXT text of a zone file (quoted strings of a
 * record joined; ';' comments, parentheses and line breaks inside them
 * skipped), or of a bare text, maybe after "NAME [TTL] [IN] [TXT]".
 */
int
keygen_record_text(const char *text, const char *owner, struct buf *rec,
    char *err, size_t errlen)
{
	struct buf cur = BUF_INIT, only = BUF_INIT;
	const char *p, *name = NULL;
	size_t namelen = 0, nrec = 0;
	int depth = 0, found = 0, only_named = 0, has;

	if (strchr(text, '"') == NULL)
		return keygen_bare_text(text, rec, err, errlen);

	for (p = text, has = 0; ; p++) {
		if (*p == '\0' || (*p == '\n' && depth == 0)) {
			/* end of a record */
			if (has) {
				nrec++;
				if (nrec == 1) {
					buf_append(&only, cur.data, cur.len);
					only_named = name != NULL;
				}
				if (owner != NULL && name != NULL &&
				    keygen_owner_eq(name, namelen, owner)) {
					buf_append(rec, cur.data, cur.len);
					found = 1;
					break;
				}
			}
			if (*p == '\0')
				break;
			buf_truncate(&cur, 0);
			name = NULL;
			has = 0;
			continue;
		}
		if (*p == ';') {
			while (p[1] != '\0' && p[1] != '\n')
				p++;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			if (depth > 0)
				depth--;
		} else if (*p == '"') {
			if (keygen_quoted(&p, &cur) == -1) {
				(void)snprintf(err, errlen, "unbalanced quotes "
				    "in record");
				goto fail;
			}
			has = 1;
		} else if (*p != ' ' && *p != '\t' && *p != '\r' &&
		    *p != '\n' && name == NULL && !has && depth == 0 &&
		    (p == text || p[-1] == '\n')) {
			/* the owner: a word at the start of a line */
			for (name = p; p[1] != '\0' && p[1] != ' ' &&
			    p[1] != '\r' && p[1] != '\t' && p[1] != '\n'; p++)
				;
			namelen = (size_t)(p + 1 - name);
		}
	}
	/* a single record without a name, or any name if none asked */
	if (!found && keygen_fallback(rec, &only, nrec, owner, only_named,
	    err, errlen) == -1)
		goto fail;
	buf_free(&cur);
	buf_free(&only);
	return 0;
fail:
	buf_free(&cur);
	buf_free(&only);
	return -1;
}

/* keygen_b64_decode - base64 with whitespace removed into a new buffer
 * (*out, the caller's); -1 if not base64 */
static int
keygen_b64_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	size_t cap = len / 4 * 3 + 3;

	*out = xmalloc(cap);
	if (b64_decode(in, len, *out, cap, outlen) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* keygen_tags - v=, k= and p= of a tag=value list (new strings) */
static int
keygen_tags(const char *rec, char **v, char **k, char **p, char *why,
    size_t whylen)
{
	const char *s = rec, *name, *val, *e;
	size_t nlen;
	char **slot;
	int first = 1;

	*v = *k = *p = NULL;
	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		name = s;
		while (*s != '\0' && *s != '=' && *s != ';')
			s++;
		if (*s != '=') {
			(void)snprintf(why, whylen, "syntax: tag without "
			    "value near \"%.20s\"", name);
			return -1;
		}
		for (e = s; e > name && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		nlen = (size_t)(e - name);
		val = ++s;
		while (*s != '\0' && *s != ';')
			s++;
		for (e = s; e > val && (e[-1] == ' ' || e[-1] == '\t' ||
		    e[-1] == '\r' || e[-1] == '\n'); e--)
			;
		while (val < e && (*val == ' ' || *val == '\t'))
			val++;
		slot = NULL;
		if (nlen == 1 && name[0] == 'v')
			slot = v;
		else if (nlen == 1 && name[0] == 'k')
			slot = k;
		else if (nlen == 1 && name[0] == 'p')
			slot = p;
		if (slot == v && !first) {
			(void)snprintf(why, whylen, "syntax: v= must come "
			    "first");
			return -1;
		}
		if (slot != NULL) {
			if (*slot != NULL) {
				(void)snprintf(why, whylen, "syntax: tag "
				    "%.*s= given twice", (int)nlen, name);
				return -1;
			}
			*slot = xstrndup(val, (size_t)(e - val));
		}
		first = 0;
		if (*s == ';')
			s++;
	}
	return 0;
}

/* keygen_check - does the record publish this key? what differs */
enum keygen_result
keygen_check(const struct dkim_key *key, const char *rec, char *why,
    size_t whylen)
{
	unsigned char *rp = NULL, *kp = NULL;
	size_t rplen = 0, kplen = 0;
	enum keygen_result r;
	const char *want;
	char *v, *k, *p, *mine = NULL;

	if (keygen_tags(rec, &v, &k, &p, why, whylen) == -1) {
		r = KEYGEN_SYNTAX;
		goto done;
	}
	if (v != NULL && strcmp(v, "DKIM1") != 0) {
		(void)snprintf(why, whylen, "syntax: v=%s, want DKIM1", v);
		r = KEYGEN_SYNTAX;
		goto done;
	}
	if (p == NULL) {
		(void)snprintf(why, whylen, "syntax: no p= tag");
		r = KEYGEN_SYNTAX;
		goto done;
	}
	want = key->alg == CONF_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
	if (strcasecmp(k != NULL ? k : "rsa", want) != 0) {
		(void)snprintf(why, whylen, "algorithm: record has k=%s%s, "
		    "the key is %s", k != NULL ? k : "rsa",
		    k != NULL ? "" : " (the default)", want);
		r = KEYGEN_ALGORITHM;
		goto done;
	}
	if (*p == '\0') {
		(void)snprintf(why, whylen, "revoked: the record has an "
		    "empty p=");
		r = KEYGEN_REVOKED;
		goto done;
	}
	if (keygen_b64_decode(p, strlen(p), &rp, &rplen) == -1) {
		(void)snprintf(why, whylen, "syntax: p= is not base64");
		r = KEYGEN_SYNTAX;
		goto done;
	}
	if ((mine = dkim_key_public_b64(key)) == NULL ||
	    keygen_b64_decode(mine, strlen(mine), &kp, &kplen) == -1) {
		(void)snprintf(why, whylen, "cannot encode the key");
		r = KEYGEN_SYNTAX;
		goto done;
	}
	if (rplen != kplen || memcmp(rp, kp, kplen) != 0) {
		(void)snprintf(why, whylen, "public key: p= in the record is "
		    "not this key's public key");
		r = KEYGEN_PUBKEY;
		goto done;
	}
	(void)snprintf(why, whylen, "record matches the key");
	r = KEYGEN_MATCH;
done:
	free(v);
	free(k);
	free(p);
	free(mine);
	free(rp);
	free(kp);
	return r;
}

/* keygen_lookup - SELECTOR._domainkey.DOMAIN TXT from DNS */
int
keygen_lookup(const char *selector, const char *domain, struct buf *rec,
    char *err, size_t errlen)
{
	unsigned char *answer;
	const unsigned char *rd;
	char name[NS_MAXDNAME];
	size_t i, len, found = 0;
	ns_msg msg;
	ns_rr rr;
	int n, rrn, count;

	if (!keygen_name_ok(selector) || !keygen_name_ok(domain)) {
		(void)snprintf(err, errlen, "bad selector or domain");
		return -1;
	}
	n = snprintf(name, sizeof(name), "%s._domainkey.%s", selector,
	    domain);
	if (n < 0 || (size_t)n >= sizeof(name)) {
		(void)snprintf(err, errlen, "name too long");
		return -1;
	}
	answer = xmalloc(KEYGEN_DNS_MAX);
	n = res_query(name, ns_c_in, ns_t_txt, answer, KEYGEN_DNS_MAX);
	if (n < 0) {
		(void)snprintf(err, errlen, "%s TXT: %s", name,
		    h_errno == HOST_NOT_FOUND ? "no such name (NXDOMAIN)" :
		    h_errno == NO_DATA ? "no TXT record" :
		    h_errno == TRY_AGAIN ? "temporary DNS failure" :
		    "DNS lookup failed");
		free(answer);
		return -1;
	}
	if (ns_initparse(answer, n, &msg) == -1) {
		(void)snprintf(err, errlen, "%s TXT: malformed reply", name);
		free(answer);
		return -1;
	}
	count = ns_msg_count(msg, ns_s_an);
	for (rrn = 0; rrn < count; rrn++) {
		if (ns_parserr(&msg, ns_s_an, rrn, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		if (found++ > 0) {
			(void)snprintf(err, errlen, "%s: more than one TXT "
			    "record", name);
			free(answer);
			return -1;
		}
		/* rdata: character-strings, each a length byte and data */
		rd = ns_rr_rdata(rr);
		len = ns_rr_rdlen(rr);
		for (i = 0; i < len; i += 1 + (size_t)rd[i]) {
			if (i + 1 + (size_t)rd[i] > len) {
				(void)snprintf(err, errlen, "%s TXT: "
				    "malformed record", name);
				free(answer);
				return -1;
			}
			buf_append(rec, rd + i + 1, rd[i]);
		}
	}
	free(answer);
	if (found == 0) {
		(void)snprintf(err, errlen, "%s: no TXT record", name);
		return -1;
	}
	return 0;
}
