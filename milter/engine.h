/*
 * engine - the two ways outpost-milter speaks the milter protocol.
 *
 * engine_*: our own (default, milter.engine = "native").  One thread
 * per MTA connection; each reads the socket in large buffered reads and
 * parses every packet that arrived, and answers with one write per reply
 * (header insertions and the final reply of end-of-message together), so
 * a message costs a handful of system calls and never waits on Nagle's
 * algorithm.  libmilter (lm_*) costs a poll and two reads per packet.
 *
 * lm_*: libmilter (milter.engine = "libmilter"), the reference.
 *
 * *_listen() opens the socket (before privileges are dropped); *_main()
 * serves until stopped: engine_stop() (from the signal thread), or
 * libmilter's own SIGTERM/SIGINT/SIGHUP handling.  Both return 0 or -1,
 * and return 0 only when no connection thread runs any more: after -1
 * the caller must leave the handlers' state (generations, SPF pool) to
 * the exit.  At a stop, messages in flight have 10 s to finish; our
 * engine then closes the connections left and waits for their threads.
 */
#ifndef OUTPOST_ENGINE_H
#define OUTPOST_ENGINE_H

#include <stddef.h>

#include "conf/conf.h"

int engine_listen(const struct conf *, char *err, size_t errlen);
int engine_main(const struct conf *);
void engine_stop(void);

/* engine_serve_fd - speak the protocol on a connected socket until the
 * MTA quits or errs (tests, fuzzing); the socket stays open */
void engine_serve_fd(int fd, unsigned int timeout);

int lm_listen(const struct conf *, char *err, size_t errlen);
int lm_main(void);

#endif
