/*
 * milter - outpost-milter's libmilter callbacks and its configuration
 * generations.
 *
 * A generation (struct milter_gen) is a loaded struct conf plus the DKIM
 * table built from it (keys parsed).  Each SMTP connection holds a
 * reference to the generation that was current when it connected, so a
 * reload (milter_reload) swaps in a new generation without disturbing
 * connections in flight; the old one is freed when its last connection
 * closes.  Everything here is thread-safe.
 */
#ifndef OUTPOST_MILTER_H
#define OUTPOST_MILTER_H

#include <stddef.h>

#include <libmilter/mfapi.h>

#include "conf/conf.h"
#include "dkim/table.h"

struct milter_gen {
	struct conf *conf;
	struct dkim_table *table;
	unsigned int refs;		/* guarded by the generation lock */
};

/* milter_gen_load - a new generation from path, or NULL with err */
struct milter_gen *milter_gen_load(const char *path, char *err,
    size_t errlen);

/* milter_install - make gen current (takes ownership) */
void milter_install(struct milter_gen *);

/* milter_reload - load path; swap it in, or keep the current one and
 * log why.  Returns 0 or -1. */
int milter_reload(const char *path);

/* milter_shutdown - drop the current generation (at exit) */
void milter_shutdown(void);

extern struct smfiDesc milter_desc;

#endif
