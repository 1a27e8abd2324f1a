/*
 * engine - the two ways outpost-milter speaks the milter protocol, behind
 * one interface (like struct sign_engine in dkim/sign_impl.h).
 *
 * native (default, milter.engine = "native", engine.c): our own.  One
 * thread serves one MTA connection at a time and, once it ends, accepts
 * the next itself (a pool of idle workers waiting in accept(): Postfix
 * opens a connection per SMTP session); it reads the socket in large buffered reads and parses
 * every packet that arrived, and answers with one write per reply
 * (header insertions and the final reply of end-of-message together), so
 * a message costs a handful of system calls and never waits on Nagle's
 * algorithm.
 *
 * libmilter (milter.engine = "libmilter", lm.c): the reference.  It costs
 * a poll and two reads per packet and writes each modification alone.
 *
 * Use, from main():
 *	e = conf->milter.engine == CONF_MILTER_LIBMILTER ?
 *	    &engine_libmilter : &engine_native;
 *	e->listen(conf, err, errlen);	as root, before dropping privileges
 *	... signal thread: SIGTERM/SIGINT call e->stop() ...
 *	rc = e->run(conf);
 *
 * listen() opens the socket; 0 or -1 with err.  run() serves until stop()
 * and returns 0 only when no connection thread runs any more: after -1
 * the caller must leave the handlers' state (generations, SPF pool) to
 * the exit.  At a stop, messages in flight have 10 s to finish; the
 * native engine then closes the connections left and waits for their
 * threads.  stop() may be called from any thread, before or during run().
 *
 * Signals are the same under both: only main.c's signal thread takes
 * SIGHUP, SIGUSR1, SIGTERM and SIGINT (libmilter's own signal thread is
 * kept from them, see lm.c).
 */
#ifndef OUTPOST_ENGINE_H
#define OUTPOST_ENGINE_H

#include <signal.h>
#include <stddef.h>

#include "conf/conf.h"

/* The signals main.c's signal thread takes, under both engines: SIGHUP
 * and SIGUSR1 reload, SIGTERM and SIGINT stop. */
#define MILTER_SIGNALS	SIGHUP, SIGUSR1, SIGTERM, SIGINT

struct milter_engine {
	const char *name;		/* as milter.engine names it */
	int (*listen)(const struct conf *, char *err, size_t errlen);
	int (*run)(const struct conf *);
	void (*stop)(void);
};

extern const struct milter_engine engine_native;	/* engine.c */
extern const struct milter_engine engine_libmilter;	/* lm.c */

/* engine_serve_fd - speak the protocol on a connected socket until the
 * MTA quits or errs (tests, fuzzing); the socket stays open */
void engine_serve_fd(int fd, unsigned int timeout);

#endif
