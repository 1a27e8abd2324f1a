/*
 * redis_url - the Redis store's URL (store.url), parsed.
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   HOST may be [IPv6];
 *                                                USER and PASSWORD may
 *                                                be %-encoded
 *   unix:/PATH or unix:///PATH[?db=N][&password=P]
 *
 * PORT defaults to 6379 and DB to 0.  rediss:// (TLS) is refused.
 */
#ifndef OUTPOST_QUOTA_REDIS_URL_H
#define OUTPOST_QUOTA_REDIS_URL_H

#include <stddef.h>

struct redis_url {
	int unix_sock;		/* 1: path, 0: host and port */
	char host[256];
	int port;
	char path[256];
	char *user;		/* owned, NULL if none */
	char *password;		/* owned, NULL if none */
	unsigned int db;
	char label[300];	/* "host:port" or the path, for errors */
};

/*
 * redis_url_parse - url into *u (cleared first); 0, or -1 with err.
 * Free with redis_url_clear() in either case.
 */
int redis_url_parse(struct redis_url *u, const char *url, char *err,
    size_t errlen);

/* redis_url_clear - free u's user and password (u may be NULL) */
void redis_url_clear(struct redis_url *u);

#endif
