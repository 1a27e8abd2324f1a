/*
 * metrics_http - see metrics_http.h.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/listen.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/metrics_http.h"
#include "util/xmalloc.h"

#define RENDER_MAX	(4u << 20)	/* bytes of one exposition */

struct metrics_http {
	int fd;
	char spec[128];
	struct event_base *base;
	struct evhttp *http;
};

/* serve - GET /metrics: the exposition; any other path 404 */
static void
serve(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *body;
	struct buf b = BUF_INIT;
	char err[128];

	(void)arg;
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if (metrics_render(&b, RENDER_MAX, err, sizeof(err)) < 0 ||
	    (body = evbuffer_new()) == NULL) {
		log_warnx("metrics: %s", err);
		buf_free(&b);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(body, b.data, b.len);
	buf_free(&b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

struct metrics_http *
metrics_http_listen(const char *spec, char *err, size_t errlen)
{
	struct metrics_http *h;
	char host[64], port[8], why[256];

	if (metrics_spec_parse(spec, host, sizeof(host), port, sizeof(port),
	    why, sizeof(why)) < 0) {
		snprintf(err, errlen, "metrics: %s", why);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	snprintf(h->spec, sizeof(h->spec), "%s", spec);
	if ((h->fd = listen_inet(host, port, AF_UNSPEC, 64, why,
	    sizeof(why))) < 0) {
		snprintf(err, errlen, "metrics %s: %s", spec, why);
		free(h);
		return NULL;
	}
	return h;
}

/* run - the thread: the event loop of the listener, to the exit */
static void *
run(void *arg)
{
	struct metrics_http *h = arg;

	event_base_dispatch(h->base);
	log_warnx("metrics: %s: the listener stopped", h->spec);
	return NULL;
}

int
metrics_http_start(struct metrics_http *h, char *err, size_t errlen)
{
	sigset_t all, old;
	pthread_t tid;
	int rc;

	if (evutil_make_socket_nonblocking(h->fd) < 0 ||
	    (h->base = event_base_new()) == NULL ||
	    (h->http = evhttp_new(h->base)) == NULL ||
	    evhttp_accept_socket_with_handle(h->http, h->fd) == NULL) {
		snprintf(err, errlen, "metrics %s: cannot set up the HTTP "
		    "listener", h->spec);
		return -1;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 1024);
	evhttp_set_gencb(h->http, serve, NULL);
	/* no signal for this thread: the daemon's own take them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&tid, NULL, run, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "metrics %s: cannot start its thread",
		    h->spec);
		return -1;
	}
	pthread_detach(tid);
	log_info("metrics on %s", h->spec);
	return 0;
}
