/*
 * conf_quota - the quota sections: store, limits, overrides, exempt.
 * (Being written; until then the sections load with their defaults.)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf_impl.h"
#include "util/xmalloc.h"

void
conf_quota_defaults(struct conf *c)
{
	c->store.backend = CONF_STORE_LMDB;
	c->store.path = xstrdup("/var/lib/outpost/quota.lmdb");
	c->store.map_size = 1024ULL * 1024 * 1024;
	c->store.timeout_ms = 1000;
	c->store.on_error = CONF_ON_ERROR_TEMPFAIL;
	c->store.reserve_ttl = 600;
}

int
load_quota(struct loader *ld, config_t *cf, struct conf *c)
{
	(void)ld;
	(void)cf;
	(void)c;
	return 0;
}

void
conf_quota_free(struct conf *c)
{
	free(c->store.path);
	free(c->store.url);
}
