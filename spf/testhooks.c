/*
 * spf/testhooks.c - the SPF worker's test hooks (tests only: see
 * spf/testhooks.h for the zone file and why the installed worker has
 * none of this).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "spf/spf.h"
#include "spf/testhooks.h"
#include "spf/wire.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#ifndef OUTPOST_TEST_HOOKS
#error spf/testhooks.c is for the test worker only (-DOUTPOST_TEST_HOOKS)
#endif

#define ZONE_MAX_LINES		100000
#define ZONE_LINE_MAX		4096

enum hook {
	HOOK_NONE,
	HOOK_SLEEP,
	HOOK_CRASH,
	HOOK_EXIT,
	HOOK_GARBAGE,
	HOOK_SHORT,
	HOOK_OPEN,
	HOOK_ALLOC,
	HOOK_RETIRE,
};

struct zrec {
	char *name;
	char *type;
	char *data;		/* NULL: timeout or nxdomain */
	int timeout;
	enum hook hook;
	unsigned long ms;	/* HOOK_SLEEP; MiB for HOOK_ALLOC */
};

struct spf_hooks {
	struct zrec *zone;
	size_t nzone;
	size_t cap;
};

/* zone_hook - parse "sleep MS" etc. into r; -1 if unknown */
static int
zone_hook(char *data, struct zrec *r)
{
	char *arg;
	uint64_t ms;

	arg = data + strcspn(data, " \t");
	if (*arg != '\0')
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	if (strcmp(data, "sleep") == 0) {
		if (parse_u64(arg, 0, 3600000, &ms, NULL, 0) < 0)
			return -1;
		r->hook = HOOK_SLEEP;
		r->ms = (unsigned long)ms;
	} else if (strcmp(data, "crash") == 0)
		r->hook = HOOK_CRASH;
	else if (strcmp(data, "exit") == 0)
		r->hook = HOOK_EXIT;
	else if (strcmp(data, "garbage") == 0)
		r->hook = HOOK_GARBAGE;
	else if (strcmp(data, "short") == 0)
		r->hook = HOOK_SHORT;
	else if (strcmp(data, "retire") == 0)
		r->hook = HOOK_RETIRE;
	else if (strcmp(data, "alloc") == 0) {
		if (parse_u64(arg, 1, 1 << 20, &ms, NULL, 0) < 0)
			return -1;
		r->hook = HOOK_ALLOC;
		r->ms = (unsigned long)ms;
	}
	else if (strcmp(data, "open") == 0 && *arg != '\0') {
		r->hook = HOOK_OPEN;
		r->data = xstrdup(arg);
	} else
		return -1;
	return 0;
}

/* zone_line - one line of the zone file into h; 0, or -1 with err */
static int
zone_line(struct spf_hooks *h, char *line, const char *path, size_t lineno,
    char *err, size_t errlen)
{
	char *p, *name, *type, *data;
	struct zrec r;

	line[strcspn(line, "\r\n")] = '\0';
	p = line + strspn(line, " \t");
	if (*p == '\0' || *p == '#')
		return 0;
	name = strsep(&p, " \t");
	if (p != NULL)
		p += strspn(p, " \t");
	type = p != NULL ? strsep(&p, " \t") : NULL;
	data = p != NULL ? p + strspn(p, " \t") : NULL;
	if (type == NULL || *type == '\0' || data == NULL || *data == '\0') {
		snprintf(err, errlen, "zone %s:%zu: want NAME TYPE DATA", path,
		    lineno);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	if (strcasecmp(type, "TEST") == 0) {
		if (zone_hook(data, &r) < 0) {
			snprintf(err, errlen, "zone %s:%zu: unknown TEST "
			    "record", path, lineno);
			return -1;
		}
	} else if (strcmp(data, "@timeout") == 0)
		r.timeout = 1;
	else if (strcmp(data, "@nxdomain") != 0)
		r.data = xstrdup(data);
	r.name = xstrdup(name);
	r.type = xstrdup(type);
	if (h->nzone == h->cap) {
		h->cap = h->cap == 0 ? 64 : h->cap * 2;
		h->zone = xreallocarray(h->zone, h->cap, sizeof(*h->zone));
	}
	h->zone[h->nzone++] = r;
	return 0;
}

/* zone_load - read the zone file path into h; 0 or -1 */
static int
zone_load(struct spf_hooks *h, const char *path, char *err, size_t errlen)
{
	char line[ZONE_LINE_MAX];
	size_t lineno = 0, len;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "zone %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (++lineno > ZONE_MAX_LINES ||
		    ((len = strlen(line)) == sizeof(line) - 1 &&
		    line[len - 1] != '\n')) {
			snprintf(err, errlen, "zone %s:%zu: too many lines or "
			    "too long", path, lineno);
			goto fail;
		}
		if (zone_line(h, line, path, lineno, err, errlen) < 0)
			goto fail;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "zone %s: read error", path);
		goto fail;
	}
	fclose(fp);
	return 0;
fail:
	fclose(fp);
	return -1;
}

int
spf_hooks_load(struct spf_hooks **hp, char *err, size_t errlen)
{
	const char *path = getenv("OUTPOST_SPF_ZONE");
	struct spf_hooks *h;

	*hp = NULL;
	if (path == NULL || path[0] == '\0')
		return 0;
	h = xcalloc(1, sizeof(*h));
	if (zone_load(h, path, err, errlen) < 0) {
		spf_hooks_free(h);
		return -1;
	}
	*hp = h;
	return 0;
}

struct spf_hooks *
spf_hooks_free(struct spf_hooks *h)
{
	size_t i;

	if (h == NULL)
		return NULL;
	for (i = 0; i < h->nzone; i++) {
		free(h->zone[i].name);
		free(h->zone[i].type);
		free(h->zone[i].data);
	}
	free(h->zone);
	free(h);
	return NULL;
}

int
spf_hooks_zone_add(const struct spf_hooks *h, struct spf_checker *c,
    char *err, size_t errlen)
{
	size_t i;

	for (i = 0; h != NULL && i < h->nzone; i++) {
		if (h->zone[i].hook != HOOK_NONE)
			continue;
		if (spf_checker_zone_add(c, h->zone[i].name, h->zone[i].type,
		    h->zone[i].data, h->zone[i].timeout, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* find_hook - the TEST record for domain, or NULL */
static const struct zrec *
find_hook(const struct spf_hooks *h, const char *domain)
{
	size_t i;

	for (i = 0; h != NULL && i < h->nzone; i++)
		if (h->zone[i].hook != HOOK_NONE &&
		    strcasecmp(h->zone[i].name, domain) == 0)
			return &h->zone[i];
	return NULL;
}

/* sleep_ms - sleep ms milliseconds, through signals */
static void
sleep_ms(unsigned long ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		continue;
}

static void *volatile alloc_sink;

/* probe - the "none" answer of an open or alloc hook, into a */
static void
probe(const struct zrec *r, enum spf_kind kind, const char *domain,
    struct spf_answer *a)
{
	char *p;
	int fd;

	memset(a, 0, sizeof(*a));
	a->result = SPF_RES_NONE;
	a->identity = kind == SPF_KIND_HELO ? SPF_ID_HELO : SPF_ID_MAILFROM;
	snprintf(a->domain, sizeof(a->domain), "%s", domain);
	if (r->hook == HOOK_OPEN) {
		if ((fd = open(r->data, O_RDONLY | O_CLOEXEC)) >= 0) {
			close(fd);
			snprintf(a->text, sizeof(a->text), "open: ok");
		} else
			snprintf(a->text, sizeof(a->text), "open: %s",
			    strerror(errno));
		return;
	}
	/* malloc, not xmalloc: failing is the point */
	if ((p = malloc((size_t)r->ms << 20)) != NULL) {
		memset(p, 1, (size_t)r->ms << 20);
		alloc_sink = p;	/* keeps the compiler from eliding */
		free(alloc_sink);
	}
	snprintf(a->text, sizeof(a->text), "alloc: %s", p != NULL ? "ok" :
	    "failed");
}

enum spf_hook_act
spf_hooks_run(const struct spf_hooks *h, int fd, uint32_t seq,
    enum spf_kind kind, const char *domain, struct spf_answer *a)
{
	const struct zrec *r;
	struct spf_wire_ans w;

	if ((r = find_hook(h, domain)) == NULL)
		return SPF_HOOK_CHECK;
	switch (r->hook) {
	case HOOK_SLEEP:
		sleep_ms(r->ms);
		return SPF_HOOK_CHECK;
	case HOOK_CRASH:
		abort();
	case HOOK_EXIT:
		_exit(0);
	case HOOK_GARBAGE:
		memset(&w, 0x5a, sizeof(w));
		(void)send(fd, &w, sizeof(w), MSG_NOSIGNAL);
		return SPF_HOOK_DONE;
	case HOOK_SHORT:
		memset(a, 0, sizeof(*a));
		a->result = SPF_RES_PASS;
		(void)spf_wire_ans_encode(&w, seq, 0, a, NULL, 0);
		(void)send(fd, &w, sizeof(w) / 2, MSG_NOSIGNAL);
		return SPF_HOOK_DONE;
	case HOOK_OPEN:
	case HOOK_ALLOC:
		probe(r, kind, domain, a);
		return SPF_HOOK_ANSWER;
	case HOOK_RETIRE:
		return SPF_HOOK_RETIRE;
	case HOOK_NONE:
		break;
	}
	return SPF_HOOK_CHECK;
}
