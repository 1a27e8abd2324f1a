/*
 * inflight - see inflight.h.  One array of counters, client addresses
 * and domains side by side (kind tells them apart); an entry leaves when
 * its count drops to 0, so the array holds at most two entries per check
 * in flight.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf/inflight.h"
#include "spf/spf.h"
#include "util/xmalloc.h"

enum key_kind {
	KEY_CLIENT,
	KEY_DOMAIN,
};

struct counter {
	enum key_kind kind;
	char key[SPF_NAME_MAX];
	unsigned int n;
};

struct spf_inflight {
	pthread_mutex_t lock;
	unsigned int limit[2];		/* by key_kind; 0: none */
	struct counter *v;		/* owned; nv used, cap allocated */
	size_t nv;
	size_t cap;
};

struct spf_inflight *
spf_inflight_new(unsigned int per_client, unsigned int per_domain)
{
	struct spf_inflight *t;

	t = xcalloc(1, sizeof(*t));
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->limit[KEY_CLIENT] = per_client;
	t->limit[KEY_DOMAIN] = per_domain;
	return t;
}

struct spf_inflight *
spf_inflight_free(struct spf_inflight *t)
{
	if (t == NULL)
		return NULL;
	pthread_mutex_destroy(&t->lock);
	free(t->v);
	free(t);
	return NULL;
}

/* find - the counter of key, or NULL (lock held) */
static struct counter *
find(struct spf_inflight *t, enum key_kind kind, const char *key)
{
	size_t i;

	for (i = 0; i < t->nv; i++)
		if (t->v[i].kind == kind &&
		    strncasecmp(t->v[i].key, key, SPF_NAME_MAX - 1) == 0)
			return &t->v[i];
	return NULL;
}

/* count - checks in flight for key (lock held) */
static unsigned int
count(struct spf_inflight *t, enum key_kind kind, const char *key)
{
	struct counter *c;

	if (key == NULL || key[0] == '\0')
		return 0;
	return (c = find(t, kind, key)) != NULL ? c->n : 0;
}

/* add - one more for key (lock held) */
static void
add(struct spf_inflight *t, enum key_kind kind, const char *key)
{
	struct counter *c;

	if (key == NULL || key[0] == '\0')
		return;
	if ((c = find(t, kind, key)) == NULL) {
		if (t->nv == t->cap) {
			t->cap = t->cap == 0 ? 16 : t->cap * 2;
			t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
		}
		c = &t->v[t->nv++];
		c->kind = kind;
		c->n = 0;
		(void)snprintf(c->key, sizeof(c->key), "%s", key);
	}
	c->n++;
}

/* drop - one less for key; the entry leaves at 0 (lock held) */
static void
drop(struct spf_inflight *t, enum key_kind kind, const char *key)
{
	struct counter *c;

	if (key == NULL || key[0] == '\0' ||
	    (c = find(t, kind, key)) == NULL)
		return;
	if (--c->n == 0)
		*c = t->v[--t->nv];
}

int
spf_inflight_enter(struct spf_inflight *t, const char *client,
    const char *domain, char *why, size_t whylen)
{
	unsigned int nc, nd;
	int rc = 0;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	nc = count(t, KEY_CLIENT, client);
	nd = count(t, KEY_DOMAIN, domain);
	if (t->limit[KEY_CLIENT] > 0 && nc >= t->limit[KEY_CLIENT]) {
		snprintf(why, whylen, "%u SPF checks for client %s in "
		    "flight already", nc, client);
		rc = -1;
	} else if (t->limit[KEY_DOMAIN] > 0 && nd >= t->limit[KEY_DOMAIN]) {
		snprintf(why, whylen, "%u SPF checks of domain %s in "
		    "flight already", nd, domain);
		rc = -1;
	} else {
		add(t, KEY_CLIENT, client);
		add(t, KEY_DOMAIN, domain);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void
spf_inflight_leave(struct spf_inflight *t, const char *client,
    const char *domain)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	drop(t, KEY_CLIENT, client);
	drop(t, KEY_DOMAIN, domain);
	pthread_mutex_unlock(&t->lock);
}

void
spf_inflight_client_key(const char *ip, char *buf, size_t len)
{
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (ip == NULL || inet_pton(AF_INET6, ip, &a6) != 1) {
		(void)snprintf(buf, len, "%s", ip != NULL ? ip : "");
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		if (inet_ntop(AF_INET, &a6.s6_addr[12], text,
		    sizeof(text)) == NULL)
			text[0] = '\0';
		(void)snprintf(buf, len, "%s", text);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) == NULL)
		text[0] = '\0';
	(void)snprintf(buf, len, "%s/64", text);
}

unsigned int
spf_inflight_count(struct spf_inflight *t, const char *client,
    const char *domain)
{
	unsigned int n;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	n = client != NULL ? count(t, KEY_CLIENT, client) :
	    count(t, KEY_DOMAIN, domain);
	pthread_mutex_unlock(&t->lock);
	return n;
}
