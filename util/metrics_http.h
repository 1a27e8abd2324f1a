/*
 * metrics_http - serve metrics_render() at GET /metrics over HTTP
 * (libevent's evhttp), from a thread of its own with its own event
 * base, so that a scrape never waits on, nor delays, the mail path.
 *
 *	struct metrics_http *h = metrics_http_listen("inet:127.0.0.1:9471",
 *	    err, sizeof(err));		(before daemon(): errors on stderr)
 *	metrics_http_start(h, err, sizeof(err));   (after the fork)
 *
 * Other paths get 404, other methods 405.  The handle lives to the
 * process's exit (the thread is never stopped).
 */
#ifndef OUTPOST_METRICS_HTTP_H
#define OUTPOST_METRICS_HTTP_H

#include <stddef.h>

struct metrics_http;

/* metrics_http_listen - bind and listen on spec (metrics_spec_parse);
 * the handle, or NULL with err */
struct metrics_http *metrics_http_listen(const char *spec, char *err,
    size_t errlen);
/* metrics_http_start - start serving in a new thread; 0 or -1 with err */
int metrics_http_start(struct metrics_http *, char *err, size_t errlen);

#endif
