/*
 * milterproto - see milterproto.h.
 *
 * Wire format: every packet is a 4-byte big-endian length (command byte
 * plus data), the command byte, then the data.  Strings are
 * NUL-terminated, integers 32-bit big-endian, the CONNECT port 16-bit.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "tests/milterproto.h"
#include "util/xmalloc.h"

#define MP_FLUSH_AT	(64 * 1024)	/* write pending output past this */
#define MP_READ_CHUNK	(64 * 1024)

/* Postfix 3.7 defaults (postconf -d milter_*_macros), by SMFIM_* stage. */
static const char *const mp_default_lists[MP_NSTAGES] = {
	"j {daemon_name} {daemon_addr} v _",			/* connect */
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
							/* helo */
	("i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} "
	    "{mail_mailer}"),					/* mail */
	"i {rcpt_addr} {rcpt_host} {rcpt_mailer}",		/* rcpt */
	"i",							/* data */
	"i",							/* eom */
	"i",							/* eoh */
};

struct mp_macro {
	char *name;
	char *value;
};

struct mp_conn {
	int fd;
	int tcp;
	int timeout_ms;
	size_t max_packet;
	size_t max_body;

	uint32_t offer_actions;	/* what we offered */
	uint32_t offer_protocol;
	uint32_t version;	/* what the milter answered */
	uint32_t actions;
	uint32_t protocol;

	char *symlist[MP_NSTAGES];	/* the milter's lists, or NULL */
	char *maclist[MP_NSTAGES];	/* the MTA's lists */
	struct mp_macro *macros;
	size_t nmacros;

	struct buf out;		/* commands not yet written */
	struct buf in;		/* bytes read, from inoff on unused */
	size_t inoff;
	struct buf chunk;	/* body bytes not yet sent */
	int skip_event;		/* SMFIC_* to skip after SMFIR_SKIP, or 0 */
	int broken;		/* after an I/O or protocol error */
};

/* seterr - format an error message into err */
static int LOG_PRINTF(3, 4)
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);	/* truncation is harmless */
	va_end(ap);
	return -1;
}

/* conn_fail - mark the connection unusable and report why */
static int LOG_PRINTF(4, 5)
conn_fail(struct mp_conn *c, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	c->broken = 1;
	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* cmd_name - printable name of a command or reply code */
static const char *
cmd_name(int cmd)
{
	switch (cmd) {
	case SMFIC_ABORT: return "ABORT";
	case SMFIC_BODY: return "BODY";
	case SMFIC_CONNECT: return "CONNECT";
	case SMFIC_MACRO: return "MACRO";
	case SMFIC_BODYEOB: return "EOM";
	case SMFIC_HELO: return "HELO";
	case SMFIC_HEADER: return "HEADER";
	case SMFIC_MAIL: return "MAIL";
	case SMFIC_EOH: return "EOH";
	case SMFIC_OPTNEG: return "OPTNEG";
	case SMFIC_QUIT: return "QUIT";
	case SMFIC_RCPT: return "RCPT";
	case SMFIC_DATA: return "DATA";
	default: return "?";
	}
}

/*
 * Output: packets are built in c->out.  pkt_begin() reserves the length,
 * pkt_end() fills it in.
 */

/* put_u32 - append a 32-bit big-endian integer */
static void
put_u32(struct buf *b, uint32_t v)
{
	unsigned char p[4];

	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	buf_append(b, p, 4);
}

/* put_str - append a NUL-terminated string */
static void
put_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s) + 1);
}

/* pkt_begin - start a packet; returns its offset for pkt_end() */
static size_t
pkt_begin(struct mp_conn *c, int cmd)
{
	size_t off = c->out.len;

	put_u32(&c->out, 0);
	buf_appendc(&c->out, (char)cmd);
	return off;
}

/* pkt_end - write the length of the packet that starts at off */
static void
pkt_end(struct mp_conn *c, size_t off)
{
	size_t n = c->out.len - off - 4;
	unsigned char *p = (unsigned char *)c->out.data + off;

	ASSERT(n >= 1 && n <= UINT32_MAX);
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
}

/* wait_fd - poll one descriptor for events; 0 ready, -1 error/timeout */
static int
wait_fd(struct mp_conn *c, short events, const char *what, char *err,
    size_t errlen)
{
	struct pollfd pfd;
	int n;

	pfd.fd = c->fd;
	pfd.events = events;
	pfd.revents = 0;
	for (;;) {
		n = poll(&pfd, 1, c->timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return conn_fail(c, err, errlen,
			    "timeout (%d ms) %s milter", c->timeout_ms, what);
		if (errno != EINTR)
			return conn_fail(c, err, errlen, "poll: %s",
			    strerror(errno));
	}
}

/* flush - write all pending output */
static int
flush(struct mp_conn *c, char *err, size_t errlen)
{
	size_t done = 0;
	ssize_t n;

	if (c->broken)
		return seterr(err, errlen, "milter connection already failed");
	while (done < c->out.len) {
		n = send(c->fd, c->out.data + done, c->out.len - done,
		    MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c, POLLOUT, "writing to", err, errlen) < 0)
				return -1;
			continue;
		}
		return conn_fail(c, err, errlen, "write to milter: %s",
		    n < 0 ? strerror(errno) : "no progress");
	}
	buf_truncate(&c->out, 0);
	return 0;
}

/* fill - make at least need unread bytes available in c->in */
static int
fill(struct mp_conn *c, size_t need, char *err, size_t errlen)
{
	ssize_t n;

	while (c->in.len - c->inoff < need) {
		if (c->inoff > 0) {
			memmove(c->in.data, c->in.data + c->inoff,
			    c->in.len - c->inoff);
			c->in.len -= c->inoff;
			c->inoff = 0;
		}
		buf_reserve(&c->in, need > MP_READ_CHUNK ? need :
		    MP_READ_CHUNK);
		if (wait_fd(c, POLLIN, "reading from", err, errlen) < 0)
			return -1;
		n = recv(c->fd, c->in.data + c->in.len,
		    c->in.cap - c->in.len - 1, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			continue;
		if (n == 0)
			return conn_fail(c, err, errlen,
			    "milter closed the connection");
		return conn_fail(c, err, errlen, "read from milter: %s",
		    strerror(errno));
	}
	return 0;
}

/* read_packet - read one packet; data stays valid until the next read */
static int
read_packet(struct mp_conn *c, int *cmd, const unsigned char **data,
    size_t *len, char *err, size_t errlen)
{
	const unsigned char *p;
	uint32_t n;

	if (fill(c, 4, err, errlen) < 0)
		return -1;
	p = (const unsigned char *)c->in.data + c->inoff;
	n = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
	if (n < 1)
		return conn_fail(c, err, errlen, "milter sent an empty packet");
	if (n - 1 > c->max_packet)
		return conn_fail(c, err, errlen,
		    "milter packet of %u bytes exceeds the %zu byte limit",
		    n, c->max_packet);
	if (fill(c, 4 + (size_t)n, err, errlen) < 0)
		return -1;
	p = (const unsigned char *)c->in.data + c->inoff;
	*cmd = p[4];
	*data = p + 5;
	*len = n - 1;
	c->inoff += 4 + (size_t)n;
	return 0;
}

/* get_u32 - take a 32-bit integer from packet data */
static int
get_u32(const unsigned char **p, size_t *len, uint32_t *v)
{
	if (*len < 4)
		return -1;
	*v = ((uint32_t)(*p)[0] << 24) | ((uint32_t)(*p)[1] << 16) |
	    ((uint32_t)(*p)[2] << 8) | (*p)[3];
	*p += 4;
	*len -= 4;
	return 0;
}

/* get_str - take a NUL-terminated string from packet data */
static int
get_str(const unsigned char **p, size_t *len, const char **s)
{
	const unsigned char *nul = memchr(*p, '\0', *len);

	if (nul == NULL)
		return -1;
	*s = (const char *)*p;
	*len -= (size_t)(nul - *p) + 1;
	*p = nul + 1;
	return 0;
}

/*
 * Macros.
 */

/* macro_eq - compare macro names, "{i}" and "i" being the same */
static int
macro_eq(const char *a, const char *b)
{
	size_t la, lb;

	if (*a == '{')
		a++;
	if (*b == '{')
		b++;
	la = strcspn(a, "}");
	lb = strcspn(b, "}");
	return la == lb && strncmp(a, b, la) == 0;
}

/* macro_find - the value of a macro, or NULL */
static const char *
macro_find(const struct mp_conn *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nmacros; i++)
		if (macro_eq(c->macros[i].name, name))
			return c->macros[i].value;
	return NULL;
}

/* mp_macro_set - define (value) or undefine (NULL) a macro */
void
mp_macro_set(struct mp_conn *c, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < c->nmacros; i++) {
		if (!macro_eq(c->macros[i].name, name))
			continue;
		free(c->macros[i].value);
		if (value != NULL) {
			c->macros[i].value = xstrdup(value);
			return;
		}
		free(c->macros[i].name);
		c->macros[i] = c->macros[--c->nmacros];
		return;
	}
	if (value == NULL)
		return;
	c->macros = xreallocarray(c->macros, c->nmacros + 1,
	    sizeof(*c->macros));
	c->macros[c->nmacros].name = xstrdup(name);
	c->macros[c->nmacros].value = xstrdup(value);
	c->nmacros++;
}

/* mp_macro_list - set the MTA's macro list of a stage (space separated) */
void
mp_macro_list(struct mp_conn *c, enum mp_stage stage, const char *names)
{
	ASSERT((int)stage >= 0 && (int)stage < MP_NSTAGES);
	free(c->maclist[stage]);
	c->maclist[stage] = xstrdup(names != NULL ? names : "");
}

/* mp_macro_list_get - the MTA's macro list of a stage (borrowed) */
const char *
mp_macro_list_get(const struct mp_conn *c, enum mp_stage stage)
{
	ASSERT((int)stage >= 0 && (int)stage < MP_NSTAGES);
	return c->maclist[stage];
}

/* put_macros - queue the SMFIC_MACRO packet of an event */
static void
put_macros(struct mp_conn *c, int cmd, enum mp_stage stage)
{
	const char *list, *p, *value;
	char name[256];
	size_t off, n;

	list = c->symlist[stage] != NULL ? c->symlist[stage] :
	    c->maclist[stage];
	off = pkt_begin(c, SMFIC_MACRO);
	buf_appendc(&c->out, (char)cmd);
	for (p = list; *p != '\0'; p += n) {
		p += strspn(p, " ,\t\r\n");
		n = strcspn(p, " ,\t\r\n");
		if (n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, p, n);
		name[n] = '\0';
		if ((value = macro_find(c, name)) == NULL)
			continue;
		put_str(&c->out, name);
		put_str(&c->out, value);
	}
	pkt_end(c, off);
}

/*
 * Replies.
 */

/* mp_reply_free - release what a reply holds; leaves it reusable */
void
mp_reply_free(struct mp_reply *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->text);
	free(r->quarantine);
	for (i = 0; i < r->nmods; i++) {
		free(r->mods[i].name);
		free(r->mods[i].value);
	}
	free(r->mods);
	buf_free(&r->body);
	for (i = 0; i < r->nrcpts; i++)
		free(r->rcpts[i].text);
	free(r->rcpts);
	memset(r, 0, sizeof(*r));
	r->verdict = MP_NOREPLY;
}

/* mp_verdict_final - does this verdict end the message (or more)? */
int
mp_verdict_final(enum mp_verdict v)
{
	return v != MP_NOREPLY && v != MP_CONTINUE && v != MP_SKIP;
}

/* mp_verdict_name - lower-case name of a verdict */
const char *
mp_verdict_name(enum mp_verdict v)
{
	switch (v) {
	case MP_NOREPLY: return "noreply";
	case MP_CONTINUE: return "continue";
	case MP_ACCEPT: return "accept";
	case MP_REJECT: return "reject";
	case MP_TEMPFAIL: return "tempfail";
	case MP_DISCARD: return "discard";
	case MP_REPLYCODE: return "replycode";
	case MP_SKIP: return "skip";
	case MP_SHUTDOWN: return "shutdown";
	case MP_CONNFAIL: return "connfail";
	}
	return "?";
}

/* add_mod - record one modification request */
static int
add_mod(struct mp_conn *c, struct mp_reply *r, enum mp_mod_type type,
    uint32_t index, const char *name, const char *value, char *err,
    size_t errlen)
{
	struct mp_mod *m;

	if (r->nmods >= MP_MAX_MODS)
		return conn_fail(c, err, errlen,
		    "milter sent more than %d modifications", MP_MAX_MODS);
	r->mods = xreallocarray(r->mods, r->nmods + 1, sizeof(*r->mods));
	m = &r->mods[r->nmods++];
	m->type = type;
	m->index = index;
	m->name = xstrdup(name);
	m->value = value != NULL ? xstrdup(value) : NULL;
	return 0;
}

/* need_action - check that a modification was negotiated */
static int
need_action(struct mp_conn *c, int cmd, uint32_t flag, const char *fname,
    char *err, size_t errlen)
{
	if ((c->actions & flag) == 0)
		return conn_fail(c, err, errlen,
		    "milter sent reply '%c' without negotiating %s", cmd,
		    fname);
	return 0;
}

/* parse_mod - decode one modification packet at end of message */
static int
parse_mod(struct mp_conn *c, struct mp_reply *r, int cmd,
    const unsigned char *p, size_t len, char *err, size_t errlen)
{
	const char *a = NULL, *b = NULL;
	uint32_t index = 0;
	int bad = 0;

	switch (cmd) {
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (need_action(c, cmd, cmd == SMFIR_INSHEADER ?
		    SMFIF_ADDHDRS : SMFIF_CHGHDRS, cmd == SMFIR_INSHEADER ?
		    "SMFIF_ADDHDRS" : "SMFIF_CHGHDRS", err, errlen) < 0)
			return -1;
		bad = get_u32(&p, &len, &index) < 0 ||
		    get_str(&p, &len, &a) < 0 || get_str(&p, &len, &b) < 0;
		break;
	case SMFIR_ADDHEADER:
		if (need_action(c, cmd, SMFIF_ADDHDRS, "SMFIF_ADDHDRS", err,
		    errlen) < 0)
			return -1;
		bad = get_str(&p, &len, &a) < 0 || get_str(&p, &len, &b) < 0;
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
		if (need_action(c, cmd, cmd == SMFIR_ADDRCPT ? SMFIF_ADDRCPT :
		    SMFIF_DELRCPT, cmd == SMFIR_ADDRCPT ? "SMFIF_ADDRCPT" :
		    "SMFIF_DELRCPT", err, errlen) < 0)
			return -1;
		bad = get_str(&p, &len, &a) < 0;
		break;
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		if (need_action(c, cmd, cmd == SMFIR_CHGFROM ? SMFIF_CHGFROM :
		    SMFIF_ADDRCPT_PAR, cmd == SMFIR_CHGFROM ? "SMFIF_CHGFROM" :
		    "SMFIF_ADDRCPT_PAR", err, errlen) < 0)
			return -1;
		bad = get_str(&p, &len, &a) < 0 ||
		    (len > 0 && get_str(&p, &len, &b) < 0);
		break;
	default:
		return conn_fail(c, err, errlen, "unexpected reply '%c'", cmd);
	}
	if (bad || len != 0)
		return conn_fail(c, err, errlen,
		    "malformed modification packet '%c'", cmd);
	switch (cmd) {
	case SMFIR_INSHEADER:
		return add_mod(c, r, MP_MOD_INSHEADER, index, a, b, err,
		    errlen);
	case SMFIR_CHGHEADER:
		if (*a == '\0')
			return conn_fail(c, err, errlen,
			    "SMFIR_CHGHEADER with an empty header name");
		return add_mod(c, r, MP_MOD_CHGHEADER, index, a, b, err,
		    errlen);
	case SMFIR_ADDHEADER:
		return add_mod(c, r, MP_MOD_ADDHEADER, 0, a, b, err, errlen);
	case SMFIR_ADDRCPT:
		return add_mod(c, r, MP_MOD_ADDRCPT, 0, a, NULL, err, errlen);
	case SMFIR_DELRCPT:
		return add_mod(c, r, MP_MOD_DELRCPT, 0, a, NULL, err, errlen);
	case SMFIR_ADDRCPT_PAR:
		return add_mod(c, r, MP_MOD_ADDRCPT_PAR, 0, a, b, err, errlen);
	default:
		return add_mod(c, r, MP_MOD_CHGFROM, 0, a, b, err, errlen);
	}
}

/* check_replycode - validate "4xx 4.y.z text" as Postfix does */
static int
check_replycode(const char *s)
{
	if ((s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || (s[3] != ' ' && s[3] != '-'))
		return -1;
	if (s[4] != s[0])
		return -1;	/* Postfix wants the enhanced code, same class */
	return 0;
}

/* read_reply - read replies to event until its decision */
static int
read_reply(struct mp_conn *c, int event, struct mp_reply *r, char *err,
    size_t errlen)
{
	const unsigned char *p;
	const char *s;
	size_t len;
	int cmd;

	if (flush(c, err, errlen) < 0)
		return -1;
	for (;;) {
		if (read_packet(c, &cmd, &p, &len, err, errlen) < 0)
			return -1;
		switch (cmd) {
		case SMFIR_PROGRESS:
			if (len != 0)
				break;
			r->progress++;
			continue;
		case SMFIR_CONTINUE:
		case SMFIR_ACCEPT:
		case SMFIR_REJECT:
		case SMFIR_TEMPFAIL:
		case SMFIR_DISCARD:
		case SMFIR_SKIP:
		case SMFIR_SHUTDOWN:
		case SMFIR_CONN_FAIL:
			if (len != 0)
				break;
			r->verdict = cmd == SMFIR_CONTINUE ? MP_CONTINUE :
			    cmd == SMFIR_ACCEPT ? MP_ACCEPT :
			    cmd == SMFIR_REJECT ? MP_REJECT :
			    cmd == SMFIR_TEMPFAIL ? MP_TEMPFAIL :
			    cmd == SMFIR_DISCARD ? MP_DISCARD :
			    cmd == SMFIR_SKIP ? MP_SKIP :
			    cmd == SMFIR_SHUTDOWN ? MP_SHUTDOWN : MP_CONNFAIL;
			if (cmd == SMFIR_SKIP && event != SMFIC_BODYEOB)
				c->skip_event = event;
			r->stage = (char)event;
			return 0;
		case SMFIR_REPLYCODE:
			if (get_str(&p, &len, &s) < 0 || len != 0 ||
			    check_replycode(s) < 0)
				return conn_fail(c, err, errlen,
				    "malformed SMFIR_REPLYCODE after %s",
				    cmd_name(event));
			r->text = xstrdup(s);
			r->verdict = MP_REPLYCODE;
			r->stage = (char)event;
			return 0;
		case SMFIR_QUARANTINE:
			if (need_action(c, cmd, SMFIF_QUARANTINE,
			    "SMFIF_QUARANTINE", err, errlen) < 0)
				return -1;
			if (get_str(&p, &len, &s) < 0 || len != 0)
				return conn_fail(c, err, errlen,
				    "malformed SMFIR_QUARANTINE");
			free(r->quarantine);
			r->quarantine = xstrdup(s);
			continue;
		case SMFIR_REPLBODY:
			if (event != SMFIC_BODYEOB)
				return conn_fail(c, err, errlen,
				    "SMFIR_REPLBODY after %s", cmd_name(event));
			if (need_action(c, cmd, SMFIF_CHGBODY, "SMFIF_CHGBODY",
			    err, errlen) < 0)
				return -1;
			if (r->body.len + len > c->max_body)
				return conn_fail(c, err, errlen,
				    "replaced body exceeds %zu bytes",
				    c->max_body);
			buf_append(&r->body, p, len);
			r->body_replaced = 1;
			continue;
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
		case SMFIR_ADDHEADER:
		case SMFIR_ADDRCPT:
		case SMFIR_DELRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_CHGFROM:
			if (event != SMFIC_BODYEOB)
				return conn_fail(c, err, errlen,
				    "modification '%c' after %s (only "
				    "allowed at end of message)", cmd,
				    cmd_name(event));
			if (parse_mod(c, r, cmd, p, len, err, errlen) < 0)
				return -1;
			continue;
		default:
			return conn_fail(c, err, errlen,
			    "unknown reply 0x%02x after %s", cmd,
			    cmd_name(event));
		}
		return conn_fail(c, err, errlen,
		    "reply '%c' after %s carries %zu unexpected bytes", cmd,
		    cmd_name(event), len);
	}
}

/*
 * Events.  ev_begin() sends the macros and says whether the event itself
 * is sent; ev_end() waits for the reply when one is due.
 */

/* ev_begin - start an event: 1 send it, 0 skip it, -1 error */
static int
ev_begin(struct mp_conn *c, int cmd, int stage, uint32_t noflag,
    struct mp_reply *r, char *err, size_t errlen)
{
	mp_reply_free(r);
	r->stage = (char)cmd;
	if (c->broken)
		return seterr(err, errlen, "milter connection already failed");
	if (c->skip_event != 0) {
		if (c->skip_event == cmd)
			return 0;
		c->skip_event = 0;
	}
	if (stage >= 0)
		put_macros(c, cmd, (enum mp_stage)stage);
	if ((c->protocol & noflag) != 0)
		return 0;
	return 1;
}

/* ev_end - flush and read the reply unless the milter sends none */
static int
ev_end(struct mp_conn *c, int cmd, uint32_t nrflag, struct mp_reply *r,
    char *err, size_t errlen)
{
	if (nrflag != 0 && (c->protocol & nrflag) != 0) {
		if (c->out.len >= MP_FLUSH_AT)
			return flush(c, err, errlen);
		return 0;
	}
	return read_reply(c, cmd, r, err, errlen);
}

/* addr_family - SMFIA_* family of an address string */
static int
addr_family(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (addr == NULL)
		return SMFIA_UNKNOWN;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return SMFIA_INET;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return SMFIA_INET6;
	return SMFIA_UNIX;
}

/* mp_connect_event - SMFIC_CONNECT: hostname, family, port, address */
int
mp_connect_event(struct mp_conn *c, const char *hostname, const char *addr,
    unsigned port, struct mp_reply *r, char *err, size_t errlen)
{
	size_t off;
	int fam, rc;

	if ((rc = ev_begin(c, SMFIC_CONNECT, MP_STAGE_CONNECT,
	    SMFIP_NOCONNECT, r, err, errlen)) <= 0)
		return rc;
	fam = addr_family(addr);
	off = pkt_begin(c, SMFIC_CONNECT);
	put_str(&c->out, hostname != NULL ? hostname : "unknown");
	buf_appendc(&c->out, (char)fam);
	if (fam != SMFIA_UNKNOWN) {
		unsigned char pp[2];

		if (fam == SMFIA_UNIX)
			port = 0;
		pp[0] = (unsigned char)((port >> 8) & 0xff);
		pp[1] = (unsigned char)(port & 0xff);
		buf_append(&c->out, pp, 2);
		put_str(&c->out, addr);
	}
	pkt_end(c, off);
	return ev_end(c, SMFIC_CONNECT, SMFIP_NR_CONN, r, err, errlen);
}

/* mp_helo - SMFIC_HELO */
int
mp_helo(struct mp_conn *c, const char *name, struct mp_reply *r, char *err,
    size_t errlen)
{
	size_t off;
	int rc;

	if ((rc = ev_begin(c, SMFIC_HELO, MP_STAGE_HELO, SMFIP_NOHELO, r,
	    err, errlen)) <= 0)
		return rc;
	off = pkt_begin(c, SMFIC_HELO);
	put_str(&c->out, name);
	pkt_end(c, off);
	return ev_end(c, SMFIC_HELO, SMFIP_NR_HELO, r, err, errlen);
}

/* envelope - SMFIC_MAIL or SMFIC_RCPT with optional ESMTP arguments */
static int
envelope(struct mp_conn *c, int cmd, const char *addr,
    const char *const *args, struct mp_reply *r, char *err, size_t errlen)
{
	size_t off;
	int rc;

	rc = ev_begin(c, cmd, cmd == SMFIC_MAIL ? MP_STAGE_MAIL :
	    MP_STAGE_RCPT, cmd == SMFIC_MAIL ? SMFIP_NOMAIL : SMFIP_NORCPT, r,
	    err, errlen);
	if (rc <= 0)
		return rc;
	off = pkt_begin(c, cmd);
	put_str(&c->out, addr);
	for (; args != NULL && *args != NULL; args++)
		put_str(&c->out, *args);
	pkt_end(c, off);
	return ev_end(c, cmd, cmd == SMFIC_MAIL ? SMFIP_NR_MAIL :
	    SMFIP_NR_RCPT, r, err, errlen);
}

/* mp_mail - SMFIC_MAIL; sender like "<a@b>" */
int
mp_mail(struct mp_conn *c, const char *sender, const char *const *args,
    struct mp_reply *r, char *err, size_t errlen)
{
	c->skip_event = 0;
	buf_truncate(&c->chunk, 0);
	return envelope(c, SMFIC_MAIL, sender, args, r, err, errlen);
}

/* mp_rcpt - SMFIC_RCPT; recipient like "<a@b>" */
int
mp_rcpt(struct mp_conn *c, const char *rcpt, const char *const *args,
    struct mp_reply *r, char *err, size_t errlen)
{
	return envelope(c, SMFIC_RCPT, rcpt, args, r, err, errlen);
}

/* simple_event - an event without arguments */
static int
simple_event(struct mp_conn *c, int cmd, int stage, uint32_t noflag,
    uint32_t nrflag, struct mp_reply *r, char *err, size_t errlen)
{
	int rc;

	if ((rc = ev_begin(c, cmd, stage, noflag, r, err, errlen)) <= 0)
		return rc;
	pkt_end(c, pkt_begin(c, cmd));
	return ev_end(c, cmd, nrflag, r, err, errlen);
}

/* mp_data - SMFIC_DATA */
int
mp_data(struct mp_conn *c, struct mp_reply *r, char *err, size_t errlen)
{
	return simple_event(c, SMFIC_DATA, MP_STAGE_DATA, SMFIP_NODATA,
	    SMFIP_NR_DATA, r, err, errlen);
}

/* mp_header - SMFIC_HEADER; value as after the colon (see header) */
int
mp_header(struct mp_conn *c, const char *name, const char *value,
    struct mp_reply *r, char *err, size_t errlen)
{
	size_t off;
	int rc;

	/* Postfix calls no header callback at all under SMFIP_NOHDRS. */
	if ((c->protocol & SMFIP_NOHDRS) != 0) {
		mp_reply_free(r);
		r->stage = SMFIC_HEADER;
		return c->broken ? seterr(err, errlen,
		    "milter connection already failed") : 0;
	}
	if ((rc = ev_begin(c, SMFIC_HEADER, MP_STAGE_EOH, 0, r, err,
	    errlen)) <= 0)
		return rc;
	if ((c->protocol & SMFIP_HDR_LEADSPC) == 0 && *value == ' ')
		value++;
	off = pkt_begin(c, SMFIC_HEADER);
	put_str(&c->out, name);
	put_str(&c->out, value);
	pkt_end(c, off);
	return ev_end(c, SMFIC_HEADER, SMFIP_NR_HDR, r, err, errlen);
}

/* mp_eoh - SMFIC_EOH */
int
mp_eoh(struct mp_conn *c, struct mp_reply *r, char *err, size_t errlen)
{
	if ((c->protocol & SMFIP_NOEOH) != 0) {
		mp_reply_free(r);
		r->stage = SMFIC_EOH;
		return c->broken ? seterr(err, errlen,
		    "milter connection already failed") : 0;
	}
	return simple_event(c, SMFIC_EOH, MP_STAGE_EOH, 0, SMFIP_NR_EOH, r,
	    err, errlen);
}

/* send_chunk - send the pending body chunk as one SMFIC_BODY */
static int
send_chunk(struct mp_conn *c, struct mp_reply *r, char *err, size_t errlen)
{
	size_t off;
	int rc;

	rc = ev_begin(c, SMFIC_BODY, MP_STAGE_EOM, 0, r, err, errlen);
	if (rc <= 0) {
		buf_truncate(&c->chunk, 0);
		return rc;
	}
	off = pkt_begin(c, SMFIC_BODY);
	buf_append(&c->out, c->chunk.data, c->chunk.len);
	pkt_end(c, off);
	buf_truncate(&c->chunk, 0);
	return ev_end(c, SMFIC_BODY, SMFIP_NR_BODY, r, err, errlen);
}

/* mp_body - queue body bytes; full chunks of 65535 bytes are sent */
int
mp_body(struct mp_conn *c, const void *data, size_t len, struct mp_reply *r,
    char *err, size_t errlen)
{
	const char *p = data;
	size_t n;

	mp_reply_free(r);
	r->stage = SMFIC_BODY;
	if (c->broken)
		return seterr(err, errlen, "milter connection already failed");
	if ((c->protocol & SMFIP_NOBODY) != 0 || c->skip_event == SMFIC_BODY)
		return 0;
	while (len > 0) {
		n = MILTER_CHUNK_SIZE - c->chunk.len;
		if (n > len)
			n = len;
		buf_append(&c->chunk, p, n);
		p += n;
		len -= n;
		if (c->chunk.len < MILTER_CHUNK_SIZE)
			break;
		if (send_chunk(c, r, err, errlen) < 0)
			return -1;
		if (mp_verdict_final(r->verdict) || r->verdict == MP_SKIP)
			break;
	}
	return 0;
}

/* mp_eom - send the last body chunk and SMFIC_BODYEOB, read the result */
int
mp_eom(struct mp_conn *c, struct mp_reply *r, char *err, size_t errlen)
{
	int rc;

	if (c->chunk.len > 0 && (c->protocol & SMFIP_NOBODY) == 0 &&
	    c->skip_event != SMFIC_BODY) {
		if (send_chunk(c, r, err, errlen) < 0)
			return -1;
		if (mp_verdict_final(r->verdict))
			return 0;
	}
	buf_truncate(&c->chunk, 0);
	c->skip_event = 0;
	if ((rc = ev_begin(c, SMFIC_BODYEOB, MP_STAGE_EOM, 0, r, err,
	    errlen)) < 0)
		return -1;
	pkt_end(c, pkt_begin(c, SMFIC_BODYEOB));
	return read_reply(c, SMFIC_BODYEOB, r, err, errlen);
}

/* mp_abort - SMFIC_ABORT (no reply); written with the next command */
int
mp_abort(struct mp_conn *c, char *err, size_t errlen)
{
	if (c->broken)
		return seterr(err, errlen, "milter connection already failed");
	buf_truncate(&c->chunk, 0);
	c->skip_event = 0;
	pkt_end(c, pkt_begin(c, SMFIC_ABORT));
	if (c->out.len >= MP_FLUSH_AT)
		return flush(c, err, errlen);
	return 0;
}

/* set_addr_macro - define a macro as an address without its <> */
static void
set_addr_macro(struct mp_conn *c, const char *name, const char *addr)
{
	size_t n = strlen(addr);
	char *v;

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		v = xstrndup(addr + 1, n - 2);
		mp_macro_set(c, name, v);
		free(v);
	} else
		mp_macro_set(c, name, addr);
}

/* rcpt_ends_message - does a RCPT verdict end the whole transaction? */
static int
rcpt_ends_message(enum mp_verdict v)
{
	return v == MP_ACCEPT || v == MP_DISCARD || v == MP_SHUTDOWN ||
	    v == MP_CONNFAIL;
}

/*
 * mp_send_message - one transaction as Postfix runs it: MAIL, RCPT each,
 * DATA, HEADER each, EOH, BODY, EOM, then ABORT (Postfix resets the
 * milters after every transaction).  It stops at the first verdict that
 * ends the message; a RCPT reject drops that recipient only, and the
 * message goes on while one is left.  reply->rcpts has one result per
 * recipient; the rest of reply is from the event that decided.
 * {mail_addr} and {rcpt_addr} are set from the envelope on the way.
 */
int
mp_send_message(struct mp_conn *c, const struct mp_message *m,
    struct mp_reply *r, char *err, size_t errlen)
{
	struct mp_rcpt_result *rr;
	struct mp_reply step = MP_REPLY_INIT;
	size_t i, ok = 0;

	mp_reply_free(r);
	rr = xcalloc(m->nrcpts > 0 ? m->nrcpts : 1, sizeof(*rr));
	set_addr_macro(c, "{mail_addr}", m->sender);
	if (mp_mail(c, m->sender, m->mail_args, &step, err, errlen) < 0)
		goto fail;
	if (mp_verdict_final(step.verdict))
		goto done;
	for (i = 0; i < m->nrcpts; i++) {
		set_addr_macro(c, "{rcpt_addr}", m->rcpts[i]);
		if (mp_rcpt(c, m->rcpts[i], NULL, &step, err, errlen) < 0)
			goto fail;
		rr[i].verdict = step.verdict;
		if (step.text != NULL)
			rr[i].text = xstrdup(step.text);
		if (rcpt_ends_message(step.verdict))
			goto done;
		if (!mp_verdict_final(step.verdict))
			ok++;
	}
	if (ok == 0 && m->nrcpts > 0)
		goto done;	/* every recipient refused: no DATA */
	if (mp_data(c, &step, err, errlen) < 0)
		goto fail;
	if (mp_verdict_final(step.verdict))
		goto done;
	for (i = 0; i < m->nheaders; i++) {
		if (mp_header(c, m->headers[i].name, m->headers[i].value,
		    &step, err, errlen) < 0)
			goto fail;
		if (mp_verdict_final(step.verdict))
			goto done;
	}
	if (mp_eoh(c, &step, err, errlen) < 0)
		goto fail;
	if (mp_verdict_final(step.verdict))
		goto done;
	if (mp_body(c, m->body, m->bodylen, &step, err, errlen) < 0)
		goto fail;
	if (mp_verdict_final(step.verdict))
		goto done;
	if (mp_eom(c, &step, err, errlen) < 0)
		goto fail;
done:
	if (mp_abort(c, err, errlen) < 0)
		goto fail;
	*r = step;
	r->rcpts = rr;
	r->nrcpts = m->nrcpts;
	return 0;
fail:
	mp_reply_free(&step);
	for (i = 0; i < m->nrcpts; i++)
		free(rr[i].text);
	free(rr);
	return -1;
}

/*
 * Connection.
 */

/* open_unix - connect to a unix-domain socket */
static int
open_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (*path == '\0' || strlen(path) >= sizeof(sun.sun_path))
		return seterr(err, errlen, "bad unix socket path \"%s\"",
		    path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return seterr(err, errlen, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		seterr(err, errlen, "connect to unix:%s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* connect_timeout - non-blocking connect bounded by timeout_ms */
static int
connect_timeout(int fd, const struct sockaddr *sa, socklen_t salen,
    int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len;
	int n, soerr;

	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		n = poll(&pfd, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		return -1;
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/* open_inet - connect over TCP to host:port, family AF_INET/AF_INET6 */
static int
open_inet(const char *host, const char *port, int family, int timeout_ms,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, gai, one = 1, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0)
		return seterr(err, errlen, "%s port %s: %s", host, port,
		    gai_strerror(gai));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen,
		    timeout_ms) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return seterr(err, errlen, "connect to %s port %s: %s", host,
		    port, strerror(saved));
	/* Each command leaves in one write: never let Nagle hold one. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		seterr(err, errlen, "TCP_NODELAY: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * open_spec - connect to "unix:PATH", "local:PATH", "/PATH",
 * "inet:PORT@HOST", "inet6:PORT@HOST" (libmilter) or "inet:HOST:PORT",
 * "inet:[V6]:PORT" (Postfix).
 */
static int
open_spec(const char *spec, int timeout_ms, int *tcp, char *err,
    size_t errlen)
{
	char host[256], port[32];
	const char *rest, *at, *colon;
	int family;
	size_t n;

	*tcp = 0;
	if (spec[0] == '/')
		return open_unix(spec, err, errlen);
	if (strncmp(spec, "unix:", 5) == 0)
		return open_unix(spec + 5, err, errlen);
	if (strncmp(spec, "local:", 6) == 0)
		return open_unix(spec + 6, err, errlen);
	if (strncmp(spec, "inet:", 5) == 0) {
		rest = spec + 5;
		family = AF_INET;
	} else if (strncmp(spec, "inet6:", 6) == 0) {
		rest = spec + 6;
		family = AF_INET6;
	} else
		return seterr(err, errlen, "bad milter socket \"%s\" (want "
		    "unix:PATH, inet:PORT@HOST or inet6:PORT@HOST)", spec);
	if ((at = strchr(rest, '@')) != NULL) {
		n = (size_t)(at - rest);
		if (n == 0 || n >= sizeof(port) || at[1] == '\0' ||
		    strlen(at + 1) >= sizeof(host))
			return seterr(err, errlen, "bad milter socket \"%s\"",
			    spec);
		memcpy(port, rest, n);
		port[n] = '\0';
		memcpy(host, at + 1, strlen(at + 1) + 1);
	} else {
		if ((colon = strrchr(rest, ':')) == NULL || colon == rest ||
		    colon[1] == '\0' || strlen(colon + 1) >= sizeof(port))
			return seterr(err, errlen, "bad milter socket \"%s\"",
			    spec);
		n = (size_t)(colon - rest);
		if (rest[0] == '[' && n >= 2 && rest[n - 1] == ']') {
			rest++;
			n -= 2;
			family = AF_INET6;
		}
		if (n == 0 || n >= sizeof(host))
			return seterr(err, errlen, "bad milter socket \"%s\"",
			    spec);
		memcpy(host, rest, n);
		host[n] = '\0';
		memcpy(port, colon + 1, strlen(colon + 1) + 1);
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	*tcp = 1;
	return open_inet(host, port, family, timeout_ms, err, errlen);
}

/* negotiate - SMFIC_OPTNEG and the milter's answer */
static int
negotiate(struct mp_conn *c, uint32_t version, char *err, size_t errlen)
{
	const unsigned char *p;
	const char *names;
	uint32_t stage;
	size_t off, len;
	int cmd;

	off = pkt_begin(c, SMFIC_OPTNEG);
	put_u32(&c->out, version);
	put_u32(&c->out, c->offer_actions);
	put_u32(&c->out, c->offer_protocol);
	pkt_end(c, off);
	if (flush(c, err, errlen) < 0 ||
	    read_packet(c, &cmd, &p, &len, err, errlen) < 0)
		return -1;
	if (cmd != SMFIC_OPTNEG)
		return conn_fail(c, err, errlen,
		    "milter answered OPTNEG with '%c'", cmd);
	if (get_u32(&p, &len, &c->version) < 0 ||
	    get_u32(&p, &len, &c->actions) < 0 ||
	    get_u32(&p, &len, &c->protocol) < 0)
		return conn_fail(c, err, errlen, "short OPTNEG reply");
	if (c->version > version || c->version < 2)
		return conn_fail(c, err, errlen,
		    "milter protocol version %u, MTA offers %u", c->version,
		    version);
	if ((c->actions & ~c->offer_actions) != 0)
		return conn_fail(c, err, errlen,
		    "milter wants actions 0x%x, MTA offers 0x%x", c->actions,
		    c->offer_actions);
	if ((c->protocol & ~c->offer_protocol) != 0)
		return conn_fail(c, err, errlen,
		    "milter wants protocol flags 0x%x, MTA offers 0x%x",
		    c->protocol, c->offer_protocol);
	while (len > 0) {
		if (get_u32(&p, &len, &stage) < 0 ||
		    get_str(&p, &len, &names) < 0)
			return conn_fail(c, err, errlen,
			    "malformed macro list in OPTNEG reply");
		if (stage >= MP_NSTAGES)
			continue;	/* Postfix ignores unknown stages */
		free(c->symlist[stage]);
		c->symlist[stage] = xstrdup(names);
	}
	return 0;
}

/* mp_open - connect to a milter and negotiate */
struct mp_conn *
mp_open(const char *spec, const struct mp_options *opt, char *err,
    size_t errlen)
{
	struct mp_options defaults = MP_OPTIONS_INIT;
	struct mp_conn *c;
	int i, fl;

	if (opt == NULL)
		opt = &defaults;
	c = xcalloc(1, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms :
	    MP_DEFAULT_TIMEOUT_MS;
	c->max_packet = opt->max_packet > 0 ? opt->max_packet :
	    MP_DEFAULT_MAX_PACKET;
	c->max_body = opt->max_body > 0 ? opt->max_body : MP_DEFAULT_MAX_BODY;
	c->offer_actions = opt->actions != 0 ? opt->actions :
	    MP_POSTFIX_ACTIONS;
	c->offer_protocol = opt->protocol != 0 ? opt->protocol :
	    MP_POSTFIX_PROTOCOL;
	for (i = 0; i < MP_NSTAGES; i++)
		c->maclist[i] = xstrdup(mp_default_lists[i]);
	if ((c->fd = open_spec(spec, c->timeout_ms, &c->tcp, err,
	    errlen)) < 0)
		goto fail;
	if ((fl = fcntl(c->fd, F_GETFL)) < 0 ||
	    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		seterr(err, errlen, "fcntl: %s", strerror(errno));
		goto fail;
	}
	if (negotiate(c, opt->version != 0 ? opt->version :
	    SMFI_PROT_VERSION, err, errlen) < 0)
		goto fail;
	return c;
fail:
	c->broken = 1;
	return mp_close(c);
}

/* mp_close - send QUIT if the connection is sound, close, free */
struct mp_conn *
mp_close(struct mp_conn *c)
{
	size_t i;

	if (c == NULL)
		return NULL;
	if (c->fd >= 0 && !c->broken) {
		pkt_end(c, pkt_begin(c, SMFIC_QUIT));
		(void)flush(c, NULL, 0);
	}
	if (c->fd >= 0)
		close(c->fd);
	for (i = 0; i < MP_NSTAGES; i++) {
		free(c->symlist[i]);
		free(c->maclist[i]);
	}
	for (i = 0; i < c->nmacros; i++) {
		free(c->macros[i].name);
		free(c->macros[i].value);
	}
	free(c->macros);
	buf_free(&c->out);
	buf_free(&c->in);
	buf_free(&c->chunk);
	free(c);
	return NULL;
}

/* mp_version - protocol version the milter answered */
uint32_t
mp_version(const struct mp_conn *c)
{
	return c->version;
}

/* mp_actions - SMFIF_* actions the milter asked for */
uint32_t
mp_actions(const struct mp_conn *c)
{
	return c->actions;
}

/* mp_protocol - SMFIP_* protocol flags the milter asked for */
uint32_t
mp_protocol(const struct mp_conn *c)
{
	return c->protocol;
}

/* mp_symlist - the macro list the milter asked for at a stage, or NULL */
const char *
mp_symlist(const struct mp_conn *c, enum mp_stage stage)
{
	if ((int)stage < 0 || (int)stage >= MP_NSTAGES)
		return NULL;
	return c->symlist[stage];
}

/* mp_is_tcp - was the connection made over TCP? */
int
mp_is_tcp(const struct mp_conn *c)
{
	return c->tcp;
}
