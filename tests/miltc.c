/*
 * miltc - send one message to a milter as Postfix would, print the verdict
 * and the message as it would leave the MTA.
 *
 *	miltc -s SOCKET [-m [stage:]name=value ...] [-c client_addr]
 *	    [-n client_name] [-H helo] [-a auth_authen] [-d daemon_name]
 *	    [-i queueid] [-f mailfrom] [-r rcpt ...] [-o FILE] [-t seconds]
 *	    [-p client_port] [-q] [-v] [-T] [--leadspc | --no-leadspc]
 *	    [--abort] MESSAGEFILE
 *
 * -T adds "elapsed: N ms" after the result: the time from connecting to
 * the milter to its verdict (the client's own start is not counted).
 * -p sets the client port of the CONNECT event (default 4711; Postfix's
 * cleanup(8) sends 0 for mail from sendmail(1)).  --abort ends the
 * transaction after the recipients (ABORT, as Postfix does on RSET or
 * QUIT): the result is then "result: aborted".
 *
 * The message file is RFC 5322 text with LF or CRLF line ends.  Headers
 * are sent as Postfix sends them: name, and the value after the colon
 * with folded lines joined by "\n" (no CR), one leading space removed
 * unless the milter negotiated SMFIP_HDR_LEADSPC.  A line that is not a
 * header ends the header section (as in Postfix) and starts the body.
 * The body goes out in CRLF form.
 *
 * Output: the message (original headers as read, with the milter's
 * inserted, added, changed and deleted headers applied, a replaced body if
 * any; CRLF line ends) goes to -o FILE, or to stdout.  The verdict goes to
 * stdout when -o is given, to stderr otherwise:
 *	result: accept | continue | discard | reject 550 5.7.1 text |
 *	    tempfail 451 4.7.1 text | shutdown | connfail
 * preceded by "rcpt: <addr> reject ..." for refused recipients and
 * "quarantine: reason" when asked; -v adds the negotiation and each
 * modification.  The message is written only for accept/continue.
 *
 * Exit: 0 accept/continue, 1 reject, 2 tempfail (also shutdown, connfail),
 * 3 protocol, connection or usage error (message on stderr), 4 discard.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/milterproto.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/xmalloc.h"

#define MILTC_MAX_FILE	(256 * 1024 * 1024)
#define MILTC_MAX_RCPTS	1000
#define MILTC_MAX_MACROS 100

enum { EXIT_ACCEPT = 0, EXIT_REJECT = 1, EXIT_TEMPFAIL = 2, EXIT_ERROR = 3,
	EXIT_DISCARD = 4 };

/* One header of the output message. */
struct hdr {
	char *name;		/* as read, without spaces before the colon */
	char *value;		/* sent to the milter: after ':', "\n" joins */
	char *raw;		/* output text, CRLF line ends, last CRLF too */
};

struct msg {
	struct hdr *h;
	size_t nh, ah;		/* used, allocated */
	struct buf body;	/* CRLF */
};

static const char *const stage_names[MP_NSTAGES] = {
	"connect", "helo", "mail", "rcpt", "data", "eom", "eoh",
};

/* usage - print the synopsis and exit with EXIT_ERROR */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: miltc -s SOCKET [-m [stage:]name=value ...] "
	    "[-c client_addr] [-n client_name]\n"
	    "\t[-H helo] [-a auth_authen] [-d daemon_name] [-i queueid] "
	    "[-f mailfrom]\n"
	    "\t[-r rcpt ...] [-o FILE] [-t seconds] [-p port] [-q] [-v] [-T] "
	    "[--leadspc|--no-leadspc] [--abort] MESSAGEFILE\n");
	exit(EXIT_ERROR);
}

/* die - report an error on stderr and exit with EXIT_ERROR */
static void __attribute__((noreturn)) LOG_PRINTF(1, 2)
die(const char *fmt, ...)
{
	va_list ap;

	fputs("miltc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_ERROR);
}

/* read_file - read a whole file into b, bounded */
static void
read_file(const char *path, struct buf *b)
{
	char tmp[65536];
	FILE *fp;
	size_t n;

	if (strcmp(path, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(path, "rb")) == NULL)
		die("%s: %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0) {
		if (b->len + n > MILTC_MAX_FILE)
			die("%s: larger than %d bytes", path, MILTC_MAX_FILE);
		buf_append(b, tmp, n);
	}
	if (ferror(fp))
		die("%s: %s", path, strerror(errno));
	if (fp != stdin)
		fclose(fp);
}

/* header_name_len - length of the name if line starts a header, else 0 */
static size_t
header_name_len(const char *line, size_t len, size_t *colon)
{
	size_t i = 0, n;

	while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':')
		i++;
	n = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (n == 0 || i >= len || line[i] != ':')
		return 0;
	*colon = i;
	return n;
}

/* next_line - split off the next line (without LF or CRLF) */
static int
next_line(const char **p, const char *end, const char **line, size_t *len)
{
	const char *nl;

	if (*p >= end)
		return 0;
	*line = *p;
	if ((nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL) {
		*len = (size_t)(end - *p);
		*p = end;
	} else {
		*len = (size_t)(nl - *p);
		*p = nl + 1;
	}
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return 1;
}

/* hdr_grow - room for one more header in m->h (doubling: a message of a
 * million fields is read in linear time) */
static void
hdr_grow(struct msg *m)
{
	if (m->nh < m->ah)
		return;
	m->ah = m->ah > 0 ? 2 * m->ah : 16;
	m->h = xreallocarray(m->h, m->ah, sizeof(*m->h));
}

/* parse_message - split a message file into headers and a CRLF body */
static void
parse_message(const struct buf *in, struct msg *m)
{
	const char *p = in->data, *end = in->data + in->len, *line;
	struct buf value = BUF_INIT, raw = BUF_INIT;
	size_t len, colon, n;
	int in_header = 0, body = 0;

	while (next_line(&p, end, &line, &len)) {
		if (!body && in_header && len > 0 &&
		    (line[0] == ' ' || line[0] == '\t')) {
			buf_appendc(&value, '\n');
			buf_append(&value, line, len);
			buf_append(&raw, line, len);
			buf_append(&raw, "\r\n", 2);
			continue;
		}
		if (in_header) {
			m->h[m->nh - 1].value = buf_steal(&value);
			m->h[m->nh - 1].raw = buf_steal(&raw);
			in_header = 0;
		}
		if (!body && len == 0) {
			body = 1;	/* the empty line is not body */
			continue;
		}
		if (!body && (n = header_name_len(line, len, &colon)) > 0) {
			hdr_grow(m);
			m->h[m->nh].name = xstrndup(line, n);
			buf_append(&value, line + colon + 1, len - colon - 1);
			buf_append(&raw, line, len);
			buf_append(&raw, "\r\n", 2);
			m->nh++;
			in_header = 1;
			continue;
		}
		body = 1;
		buf_append(&m->body, line, len);
		buf_append(&m->body, "\r\n", 2);
	}
	if (in_header) {
		m->h[m->nh - 1].value = buf_steal(&value);
		m->h[m->nh - 1].raw = buf_steal(&raw);
	}
	buf_free(&value);
	buf_free(&raw);
}

/* crlf_append - append text with every "\n" (or "\r\n") made CRLF */
static void
crlf_append(struct buf *b, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			continue;
		if (s[i] == '\n')
			buf_append(b, "\r\n", 2);
		else
			buf_appendc(b, s[i]);
	}
}

/* make_raw - output text of a header the milter supplied */
static char *
make_raw(const char *name, const char *value, int leadspc)
{
	struct buf b = BUF_INIT;

	buf_appends(&b, name);
	buf_appendc(&b, ':');
	if (!leadspc)
		buf_appendc(&b, ' ');
	crlf_append(&b, value, strlen(value));
	buf_append(&b, "\r\n", 2);
	return buf_steal(&b);
}

/* insert_hdr - insert a header at position pos (clamped) */
static void
insert_hdr(struct msg *m, size_t pos, const char *name, const char *value,
    int leadspc)
{
	if (pos > m->nh)
		pos = m->nh;
	hdr_grow(m);
	memmove(&m->h[pos + 1], &m->h[pos], (m->nh - pos) * sizeof(*m->h));
	m->h[pos].name = xstrdup(name);
	m->h[pos].value = xstrdup(value);
	m->h[pos].raw = make_raw(name, value, leadspc);
	m->nh++;
}

/*
 * change_hdr - SMFIR_CHGHEADER: replace the index-th (from 1) header of
 * that name, delete it when value is empty, append when there is none.
 */
static void
change_hdr(struct msg *m, uint32_t index, const char *name, const char *value,
    int leadspc)
{
	size_t i, seen = 0;

	if (index == 0)
		index = 1;
	for (i = 0; i < m->nh; i++) {
		if (strcasecmp(m->h[i].name, name) != 0 || ++seen < index)
			continue;
		free(m->h[i].value);
		free(m->h[i].raw);
		if (*value == '\0') {
			free(m->h[i].name);
			memmove(&m->h[i], &m->h[i + 1],
			    (m->nh - i - 1) * sizeof(*m->h));
			m->nh--;
			return;
		}
		m->h[i].value = xstrdup(value);
		m->h[i].raw = make_raw(m->h[i].name, value, leadspc);
		return;
	}
	if (*value != '\0')
		insert_hdr(m, m->nh, name, value, leadspc);
}

/* apply_mods - apply header modifications and a replaced body */
static void
apply_mods(struct msg *m, const struct mp_reply *r, int leadspc)
{
	const struct mp_mod *mod;
	size_t i;

	for (i = 0; i < r->nmods; i++) {
		mod = &r->mods[i];
		switch (mod->type) {
		case MP_MOD_INSHEADER:
			insert_hdr(m, mod->index, mod->name, mod->value,
			    leadspc);
			break;
		case MP_MOD_ADDHEADER:
			insert_hdr(m, m->nh, mod->name, mod->value, leadspc);
			break;
		case MP_MOD_CHGHEADER:
			change_hdr(m, mod->index, mod->name, mod->value,
			    leadspc);
			break;
		default:
			break;	/* envelope changes: reported only */
		}
	}
	if (r->body_replaced) {
		const char *p = r->body.data, *end = p + r->body.len, *line;
		size_t len;

		buf_truncate(&m->body, 0);
		while (next_line(&p, end, &line, &len)) {
			buf_append(&m->body, line, len);
			buf_append(&m->body, "\r\n", 2);
		}
	}
}

/* write_message - write the headers, an empty line and the body */
static void
write_message(const struct msg *m, const char *path)
{
	FILE *fp = stdout;
	size_t i;

	if (path != NULL && (fp = fopen(path, "wb")) == NULL)
		die("%s: %s", path, strerror(errno));
	for (i = 0; i < m->nh; i++)
		fputs(m->h[i].raw, fp);
	fputs("\r\n", fp);
	fwrite(m->body.data != NULL ? m->body.data : "", 1, m->body.len, fp);
	if (fflush(fp) != 0 || ferror(fp))
		die("%s: write error", path != NULL ? path : "stdout");
	if (fp != stdout)
		fclose(fp);
}

/* mod_name - printable name of a modification */
static const char *
mod_name(enum mp_mod_type t)
{
	switch (t) {
	case MP_MOD_INSHEADER: return "insheader";
	case MP_MOD_ADDHEADER: return "addheader";
	case MP_MOD_CHGHEADER: return "chgheader";
	case MP_MOD_ADDRCPT: return "addrcpt";
	case MP_MOD_ADDRCPT_PAR: return "addrcpt_par";
	case MP_MOD_DELRCPT: return "delrcpt";
	case MP_MOD_CHGFROM: return "chgfrom";
	}
	return "?";
}

/*
 * verdict_line - the SMTP outcome of a verdict as Postfix words it;
 * returns the exit code.
 */
static int
verdict_line(const struct mp_reply *r, struct buf *out)
{
	switch (r->verdict) {
	case MP_NOREPLY:
	case MP_CONTINUE:
	case MP_SKIP:
		buf_appends(out, "continue");
		return EXIT_ACCEPT;
	case MP_ACCEPT:
		buf_appends(out, "accept");
		return EXIT_ACCEPT;
	case MP_REJECT:
		buf_appends(out, "reject 550 5.7.1 Command rejected");
		return EXIT_REJECT;
	case MP_TEMPFAIL:
		buf_appends(out, "tempfail 451 4.7.1 Service unavailable - "
		    "try again later");
		return EXIT_TEMPFAIL;
	case MP_REPLYCODE:
		buf_appendf(out, "%s %s", r->text[0] == '5' ? "reject" :
		    "tempfail", r->text);
		return r->text[0] == '5' ? EXIT_REJECT : EXIT_TEMPFAIL;
	case MP_DISCARD:
		buf_appends(out, "discard");
		return EXIT_DISCARD;
	case MP_SHUTDOWN:
		buf_appends(out, "shutdown");
		return EXIT_TEMPFAIL;
	case MP_CONNFAIL:
		buf_appends(out, "connfail");
		return EXIT_TEMPFAIL;
	}
	return EXIT_ERROR;
}

/* stage_of - parse a macro stage name */
static int
stage_of(const char *s, size_t n)
{
	int i;

	for (i = 0; i < MP_NSTAGES; i++)
		if (strlen(stage_names[i]) == n &&
		    strncmp(stage_names[i], s, n) == 0)
			return i;
	return -1;
}

/* name_listed - is a macro name on a space separated list? */
static int
name_listed(const char *list, const char *name)
{
	size_t n = strlen(name), k;
	const char *p;

	for (p = list; *p != '\0'; p += k) {
		p += strspn(p, " ");
		k = strcspn(p, " ");
		if (k == n && strncmp(p, name, n) == 0)
			return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "leadspc", no_argument, NULL, 'L' },
		{ "no-leadspc", no_argument, NULL, 'N' },
		{ "abort", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mp_options opt = MP_OPTIONS_INIT;
	struct mp_reply r = MP_REPLY_INIT;
	struct mp_message mm;
	struct mp_header *mh;
	struct mp_conn *c;
	struct msg m;
	struct buf file = BUF_INIT, line = BUF_INIT;
	struct buf lists[MP_NSTAGES];
	char *macros[MILTC_MAX_MACROS];
	const char *rcpts[MILTC_MAX_RCPTS];
	const char *sock = NULL, *client = "127.0.0.1", *client_name =
	    "localhost", *helo = "client.example", *auth = NULL, *daemon =
	    NULL, *queueid = "4XyzQ1MiltC", *from = "<sender@example.com>",
	    *outpath = NULL;
	char err[512], *eq, *name;
	size_t nrcpts = 0, nmacros = 0, i;
	int ch, verbose = 0, quiet = 0, leadspc = 1, stage, code, timeout = 30;
	int abort_rcpt = 0, port = 4711, timing = 0;
	int64_t t0;
	FILE *res;

	memset(&m, 0, sizeof(m));
	while ((ch = getopt_long(argc, argv, "s:m:c:n:H:a:d:i:f:r:o:t:p:qvTh",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'm':
			if (nmacros >= MILTC_MAX_MACROS)
				die("too many -m");
			if (strchr(optarg, '=') == NULL)
				die("-m wants [stage:]name=value: %s", optarg);
			macros[nmacros++] = optarg;
			break;
		case 'c': client = optarg; break;
		case 'n': client_name = optarg; break;
		case 'H': helo = optarg; break;
		case 'a': auth = optarg; break;
		case 'd': daemon = optarg; break;
		case 'i': queueid = optarg; break;
		case 'f': from = optarg; break;
		case 'r':
			if (nrcpts >= MILTC_MAX_RCPTS)
				die("too many -r");
			rcpts[nrcpts++] = optarg;
			break;
		case 'o': outpath = optarg; break;
		case 't':
			timeout = atoi(optarg);
			if (timeout < 1 || timeout > 3600)
				die("-t wants 1..3600 seconds");
			break;
		case 'p':
			port = atoi(optarg);
			if (port < 0 || port > 65535)
				die("-p wants 0..65535");
			break;
		case 'A': abort_rcpt = 1; break;
		case 'q': quiet = 1; break;
		case 'v': verbose = 1; break;
		case 'T': timing = 1; break;
		case 'L': leadspc = 1; break;
		case 'N': leadspc = 0; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (sock == NULL || argc != 1)
		usage();
	if (nrcpts == 0)
		rcpts[nrcpts++] = "<rcpt@example.net>";
	read_file(argv[0], &file);
	parse_message(&file, &m);
	res = outpath != NULL ? stdout : stderr;

	opt.timeout_ms = timeout * 1000;
	t0 = clock_mono_ms();
	if (!leadspc)
		opt.protocol = MP_POSTFIX_PROTOCOL & ~SMFIP_HDR_LEADSPC;
	if ((c = mp_open(sock, &opt, err, sizeof(err))) == NULL)
		die("%s: %s", sock, err);
	if (verbose) {
		fprintf(res, "negotiated: version=%u actions=0x%x "
		    "protocol=0x%x\n", mp_version(c), mp_actions(c),
		    mp_protocol(c));
		for (i = 0; i < MP_NSTAGES; i++)
			if (mp_symlist(c, (enum mp_stage)i) != NULL)
				fprintf(res, "symlist: %s %s\n", stage_names[i],
				    mp_symlist(c, (enum mp_stage)i));
	}

	/* What Postfix knows about this session. */
	mp_macro_set(c, "j", "mta.example");
	mp_macro_set(c, "{daemon_name}", daemon != NULL ? daemon :
	    "mta.example");
	mp_macro_set(c, "{daemon_addr}", "127.0.0.1");
	mp_macro_set(c, "v", "Postfix 3.7.11");
	buf_appendf(&line, "%s [%s]", client_name, client);
	mp_macro_set(c, "_", line.data);
	mp_macro_set(c, "{client_addr}", client);
	mp_macro_set(c, "{client_name}", client_name);
	mp_macro_set(c, "i", queueid);
	if (auth != NULL) {
		mp_macro_set(c, "{auth_type}", "PLAIN");
		mp_macro_set(c, "{auth_authen}", auth);
	}
	for (i = 0; i < MP_NSTAGES; i++) {
		lists[i] = (struct buf)BUF_INIT;
		buf_appends(&lists[i], mp_macro_list_get(c, (enum mp_stage)i));
	}
	for (i = 0; i < nmacros; i++) {
		const char *colon = strchr(macros[i], ':');

		eq = strchr(macros[i], '=');
		name = macros[i];
		stage = -1;
		if (colon != NULL && colon < eq && (stage = stage_of(macros[i],
		    (size_t)(colon - macros[i]))) >= 0)
			name = (char *)colon + 1;
		name = xstrndup(name, (size_t)(eq - name));
		if (*name == '\0' || strchr(name, ' ') != NULL)
			die("bad macro name in -m %s", macros[i]);
		mp_macro_set(c, name, eq + 1);
		if (stage < 0) {
			int listed = 0, k;

			for (k = 0; k < MP_NSTAGES; k++)
				listed |= name_listed(lists[k].data, name);
			if (!listed)
				stage = MP_STAGE_CONNECT;
		}
		if (stage >= 0 && !name_listed(lists[stage].data, name))
			buf_appendf(&lists[stage], " %s", name);
		free(name);
	}
	for (i = 0; i < MP_NSTAGES; i++) {
		mp_macro_list(c, (enum mp_stage)i, lists[i].data);
		buf_free(&lists[i]);
	}

	/* The session: CONNECT, HELO, then the message. */
	if (mp_connect_event(c, client_name, client, (unsigned)port, &r, err,
	    sizeof(err)) < 0)
		die("connect event: %s", err);
	if (!mp_verdict_final(r.verdict)) {
		if (mp_helo(c, helo, &r, err, sizeof(err)) < 0)
			die("helo event: %s", err);
	}
	if (!mp_verdict_final(r.verdict) && abort_rcpt) {
		/* MAIL, RCPT each, then ABORT (RSET or QUIT in SMTP) */
		if (mp_mail(c, from, NULL, &r, err, sizeof(err)) < 0)
			die("mail event: %s", err);
		for (i = 0; i < nrcpts && !mp_verdict_final(r.verdict); i++) {
			if (mp_rcpt(c, rcpts[i], NULL, &r, err,
			    sizeof(err)) < 0)
				die("rcpt event: %s", err);
			if (mp_verdict_final(r.verdict)) {
				buf_truncate(&line, 0);
				(void)verdict_line(&r, &line);
				fprintf(res, "rcpt: %s %s\n", rcpts[i],
				    line.data);
				r.verdict = MP_CONTINUE;
			}
		}
		if (mp_abort(c, err, sizeof(err)) < 0)
			die("abort: %s", err);
		fprintf(res, "result: aborted\n");
		code = EXIT_ACCEPT;
		goto out;
	}
	if (!mp_verdict_final(r.verdict)) {
		mh = xcalloc(m.nh > 0 ? m.nh : 1, sizeof(*mh));
		for (i = 0; i < m.nh; i++) {
			mh[i].name = m.h[i].name;
			mh[i].value = m.h[i].value;
		}
		memset(&mm, 0, sizeof(mm));
		mm.sender = from;
		mm.rcpts = rcpts;
		mm.nrcpts = nrcpts;
		mm.headers = mh;
		mm.nheaders = m.nh;
		mm.body = m.body.data != NULL ? m.body.data : "";
		mm.bodylen = m.body.len;
		if (mp_send_message(c, &mm, &r, err, sizeof(err)) < 0)
			die("message: %s", err);
		free(mh);
		for (i = 0; i < r.nrcpts; i++) {
			struct mp_reply one = MP_REPLY_INIT;

			if (!mp_verdict_final(r.rcpts[i].verdict))
				continue;
			one.verdict = r.rcpts[i].verdict;
			one.text = r.rcpts[i].text;
			buf_truncate(&line, 0);
			(void)verdict_line(&one, &line);
			fprintf(res, "rcpt: %s %s\n", rcpts[i], line.data);
		}
	}
	if (verbose)
		for (i = 0; i < r.nmods; i++)
			fprintf(res, "mod: %s %u %s: %s\n",
			    mod_name(r.mods[i].type), r.mods[i].index,
			    r.mods[i].name, r.mods[i].value != NULL ?
			    r.mods[i].value : "");
	if (r.quarantine != NULL)
		fprintf(res, "quarantine: %s\n", r.quarantine);
	buf_truncate(&line, 0);
	code = verdict_line(&r, &line);
	fprintf(res, "result: %s\n", line.data);
	if (timing)
		fprintf(res, "elapsed: %lld ms\n",
		    (long long)(clock_mono_ms() - t0));
	if (code == EXIT_ACCEPT && !quiet) {
		apply_mods(&m, &r, (mp_protocol(c) & SMFIP_HDR_LEADSPC) != 0);
		write_message(&m, outpath);
	}
out:
	c = mp_close(c);
	mp_reply_free(&r);
	for (i = 0; i < m.nh; i++) {
		free(m.h[i].name);
		free(m.h[i].value);
		free(m.h[i].raw);
	}
	free(m.h);
	buf_free(&m.body);
	buf_free(&file);
	buf_free(&line);
	fflush(res);
	return code;
}
