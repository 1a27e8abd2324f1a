/*
 * conf_impl - what the section loaders of conf/ share (private to conf/).
 *
 * Each get_* reads one optional member of group g into *out, leaving
 * *out as it was when the member is absent; on a bad value it fills the
 * loader's err with "FILE:LINE: reason" and returns -1.  Strings are new
 * copies owned by the struct conf being built.
 */
#ifndef OUTPOST_CONF_IMPL_H
#define OUTPOST_CONF_IMPL_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "util/log.h"

struct loader {
	const char *path;
	char *err;
	size_t errlen;
};

int fail(struct loader *, const config_setting_t *, const char *, ...)
    LOG_PRINTF(3, 4);
int check_names(struct loader *, const config_setting_t *, const char *where,
    const char *const *known);
int get_string(struct loader *, const config_setting_t *, const char *name,
    char **out);
int get_bool(struct loader *, const config_setting_t *, const char *name,
    int *out);
int get_uint(struct loader *, const config_setting_t *, const char *name,
    unsigned int min, unsigned int max, int duration, unsigned int *out);
int get_u64(struct loader *, const config_setting_t *, const char *name,
    uint64_t min, uint64_t max, int (*parse)(const char *, uint64_t *,
    char *, size_t), uint64_t *out);
int get_mode(struct loader *, const config_setting_t *, const char *name,
    unsigned int *out);
int get_enum(struct loader *, const config_setting_t *, const char *name,
    const char *const *names, int *out);
int get_strings(struct loader *, const config_setting_t *, const char *name,
    char ***out, size_t *nout);
void free_strings(char **, size_t);

/* Quota sections (conf_quota.c): store, limits, overrides, exempt. */
int load_quota(struct loader *, config_t *, struct conf *);
void conf_quota_defaults(struct conf *);
void conf_quota_free(struct conf *);

/* The policyd section (conf_policyd.c); sets its defaults first. */
int load_policyd(struct loader *, config_t *, struct conf *);
void conf_policyd_free(struct conf *);

/* The spf section (conf_spf.c); sets its defaults first. */
int load_spf(struct loader *, config_t *, struct conf *);
void conf_spf_free(struct conf *);

#endif
