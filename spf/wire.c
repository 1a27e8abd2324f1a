/*
 * wire - see wire.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spf/wire.h"

/* wire_err - fill err, return -1 */
static int
wire_err(char *err, size_t errlen, const char *what)
{
	if (errlen > 0)
		snprintf(err, errlen, "%s", what);
	return -1;
}

/* field_ok - s is NUL-terminated within size bytes, no control bytes */
static int
field_ok(const char *s, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < size; i++) {
		if (p[i] == '\0')
			return 1;
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	}
	return 0;
}

/* field_put - copy s into a field of size bytes; -1 if too long or bad */
static int
field_put(char *dst, size_t size, const char *s)
{
	size_t len;

	if (s == NULL || (len = strnlen(s, size)) >= size ||
	    !field_ok(s, size))
		return -1;
	memcpy(dst, s, len + 1);
	return 0;
}

int
spf_wire_req_encode(struct spf_wire_req *r, uint32_t seq, enum spf_kind kind,
    const struct spf_query *q, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->magic = SPF_WIRE_MAGIC;
	r->type = SPF_WIRE_REQ;
	r->seq = seq;
	if (kind != SPF_KIND_MAILFROM && kind != SPF_KIND_HELO)
		return wire_err(err, errlen, "unknown check kind");
	r->kind = (uint32_t)kind;
	if (q == NULL)
		return wire_err(err, errlen, "no query");
	if (q->ip == NULL || q->ip[0] == '\0' ||
	    field_put(r->ip, sizeof(r->ip), q->ip) < 0)
		return wire_err(err, errlen, "client address missing, too "
		    "long or not printable");
	if (field_put(r->helo, sizeof(r->helo), q->helo) < 0)
		return wire_err(err, errlen, "HELO name missing, too long or "
		    "not printable");
	if (field_put(r->sender, sizeof(r->sender), q->sender) < 0)
		return wire_err(err, errlen, "sender missing, too long or not "
		    "printable");
	return 0;
}

int
spf_wire_req_decode(const void *buf, size_t len, struct spf_wire_req *out,
    enum spf_kind *kind, struct spf_query *q, char *err, size_t errlen)
{
	if (len != sizeof(*out))
		return wire_err(err, errlen, "request of the wrong size");
	memcpy(out, buf, sizeof(*out));
	if (out->magic != SPF_WIRE_MAGIC || out->type != SPF_WIRE_REQ)
		return wire_err(err, errlen, "not a request");
	if (out->kind != SPF_KIND_MAILFROM && out->kind != SPF_KIND_HELO)
		return wire_err(err, errlen, "request of an unknown kind");
	if (!field_ok(out->ip, sizeof(out->ip)) || out->ip[0] == '\0' ||
	    !field_ok(out->helo, sizeof(out->helo)) ||
	    !field_ok(out->sender, sizeof(out->sender)))
		return wire_err(err, errlen, "request with a bad field");
	*kind = (enum spf_kind)out->kind;
	q->ip = out->ip;
	q->helo = out->helo;
	q->sender = out->sender;
	return 0;
}

/* result_ok - r is an enum spf_result */
static int
result_ok(uint32_t r)
{
	return r <= SPF_RES_PERMERROR;
}

int
spf_wire_ans_encode(struct spf_wire_ans *w, uint32_t seq, uint32_t flags,
    const struct spf_answer *a, char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->magic = SPF_WIRE_MAGIC;
	w->type = SPF_WIRE_ANS;
	w->seq = seq;
	w->flags = flags;
	if (!result_ok((uint32_t)a->result) ||
	    (a->identity != SPF_ID_MAILFROM && a->identity != SPF_ID_HELO))
		return wire_err(err, errlen, "answer out of range");
	w->result = (uint32_t)a->result;
	w->identity = (uint32_t)a->identity;
	if (field_put(w->domain, sizeof(w->domain), a->domain) < 0 ||
	    field_put(w->text, sizeof(w->text), a->text) < 0)
		return wire_err(err, errlen, "answer with a bad string");
	return 0;
}

int
spf_wire_ans_decode(const void *buf, size_t len, uint32_t seq,
    struct spf_answer *a, uint32_t *flags, char *err, size_t errlen)
{
	struct spf_wire_ans w;

	if (len != sizeof(w))
		return wire_err(err, errlen, "answer of the wrong size");
	memcpy(&w, buf, sizeof(w));
	if (w.magic != SPF_WIRE_MAGIC || w.type != SPF_WIRE_ANS)
		return wire_err(err, errlen, "not an answer");
	if (w.seq != seq)
		return wire_err(err, errlen, "answer to another request");
	if (!result_ok(w.result) ||
	    (w.identity != SPF_ID_MAILFROM && w.identity != SPF_ID_HELO) ||
	    (w.flags & ~(uint32_t)SPF_WIRE_RETIRE) != 0)
		return wire_err(err, errlen, "answer out of range");
	if (!field_ok(w.domain, sizeof(w.domain)) ||
	    !field_ok(w.text, sizeof(w.text)))
		return wire_err(err, errlen, "answer with a bad string");
	memset(a, 0, sizeof(*a));
	a->result = (enum spf_result)w.result;
	a->identity = (enum spf_identity)w.identity;
	/* both arrays are the same size as in struct spf_answer */
	memcpy(a->domain, w.domain, sizeof(a->domain));
	memcpy(a->text, w.text, sizeof(a->text));
	*flags = w.flags;
	return 0;
}

void
spf_wire_hello_encode(struct spf_wire_hello *h, uint32_t status,
    uint32_t flags, long pid, unsigned long uid, unsigned long gid,
    const char *text)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	h->magic = SPF_WIRE_MAGIC;
	h->type = SPF_WIRE_HELLO;
	h->status = status;
	h->flags = flags;
	h->pid = (int32_t)pid;
	h->uid = (uint32_t)uid;
	h->gid = (uint32_t)gid;
	snprintf(h->text, sizeof(h->text), "%s", text != NULL ? text : "");
	for (i = 0; h->text[i] != '\0'; i++)
		if ((unsigned char)h->text[i] < 0x20 || h->text[i] == 0x7f)
			h->text[i] = '?';
}

int
spf_wire_hello_decode(const void *buf, size_t len, struct spf_wire_hello *out,
    char *err, size_t errlen)
{
	if (len != sizeof(*out))
		return wire_err(err, errlen, "hello of the wrong size");
	memcpy(out, buf, sizeof(*out));
	if (out->magic != SPF_WIRE_MAGIC || out->type != SPF_WIRE_HELLO)
		return wire_err(err, errlen, "not a hello");
	if ((out->flags & ~(uint32_t)SPF_WIRE_NOT_ROOT) != 0 ||
	    !field_ok(out->text, sizeof(out->text)))
		return wire_err(err, errlen, "hello with a bad field");
	if (out->status == 0 && out->pid <= 0)
		return wire_err(err, errlen, "hello without a pid");
	return 0;
}

void
spf_wire_ctl_encode(struct spf_wire_ctl *c, long kill_pid)
{
	memset(c, 0, sizeof(*c));
	c->magic = SPF_WIRE_MAGIC;
	c->type = SPF_WIRE_CTL;
	c->kill_pid = (int32_t)kill_pid;
}

int
spf_wire_ctl_decode(const void *buf, size_t len, struct spf_wire_ctl *out,
    char *err, size_t errlen)
{
	if (len != sizeof(*out))
		return wire_err(err, errlen, "control record of the wrong size");
	memcpy(out, buf, sizeof(*out));
	if (out->magic != SPF_WIRE_MAGIC || out->type != SPF_WIRE_CTL ||
	    out->kill_pid < 0)
		return wire_err(err, errlen, "not a control record");
	return 0;
}
