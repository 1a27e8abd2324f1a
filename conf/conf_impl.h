/*
 * conf_impl - what the parts of conf/ share (private to conf/).
 *
 * Every setting is a row of one table (conf_table.c), in the manner of
 * Postfix's mail_params.c: its dotted name, type, bounds, default and
 * the offset of its field in struct conf.  The walker (conf_param.c)
 * drives everything from the table: defaults, reading, unknown-name
 * errors, freeing, and the list of names the man-page test checks.
 * Settings of a shape no type describes (lists of keys, rules, limits,
 * overrides; canonicalization) are CONF_T_CUSTOM rows whose loader lives
 * beside its section (conf.c, conf_quota.c); a CONF_T_CHECK row checks a
 * group as a whole once its settings are read.
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

enum conf_type {
	CONF_T_STRING,		/* char *, non-empty */
	CONF_T_BOOL,		/* int */
	CONF_T_UINT,		/* unsigned int: min..max, times scale */
	CONF_T_U64,		/* uint64_t: min..max */
	CONF_T_MODE,		/* unsigned int from "0660" */
	CONF_T_ENUM,		/* int (or an enum): index into names */
	CONF_T_STRINGS,		/* char ** at off, size_t count at noff */
	CONF_T_CIDRS,		/* struct cidr * at off, size_t at noff */
	CONF_T_CUSTOM,		/* read by load (NULL: by the list's loader) */
	CONF_T_CHECK,		/* name is a group; load checks it whole */
};

struct conf_param;

/*
 * A row's hook: for CONF_T_CUSTOM it reads the member, for CONF_T_CHECK
 * it checks group g, for the other types it checks the value just read
 * (member present).  base is the struct the offsets are into.
 */
typedef int conf_hook(struct loader *, const config_setting_t *g,
    const struct conf_param *, void *base);

struct conf_param {
	const char *name;		/* "milter.socket"; NULL ends a table */
	enum conf_type type;
	size_t off;			/* offsetof(base struct, field) */
	uint64_t min, max;		/* CONF_T_UINT, CONF_T_U64 */
	uint64_t def;			/* BOOL, UINT, U64, MODE, ENUM */
	const char *def_str;		/* STRING: default, or NULL */
	const char *const *def_list;	/* STRINGS, CIDRS: NULL-terminated */
	int (*parse)(const char *, uint64_t *, char *, size_t);
					/* UINT, U64: string form, or NULL */
	unsigned int scale;		/* UINT: stored as value * scale */
	const char *const *names;	/* ENUM: values, NULL-terminated */
	unsigned int deny;		/* ENUM: bit i set: names[i] refused */
	const char *deny_why;		/* ENUM: "must be ..." or NULL */
	size_t noff;			/* STRINGS, CIDRS: count's offset */
	conf_hook *load;		/* see conf_hook */
	void (*init)(void *base);	/* CUSTOM: set the default */
	void (*release)(void *base);	/* CUSTOM: free what load made */
	const struct conf_param *elems;	/* CUSTOM list: its entries' rows */
};

/* The settings (conf_table.c), and the fields of list entries. */
extern const struct conf_param conf_params[];
extern const struct conf_param conf_key_params[];
extern const struct conf_param conf_rule_params[];
extern const struct conf_param conf_limit_params[];
extern const struct conf_param conf_override_params[];
extern const char *const conf_on_error_names[];
extern const char *const conf_spf_action_names[];
extern const char *const conf_qaction_names[];
extern const char *const conf_dcheck_names[];

/* The walker (conf_param.c). */
void params_defaults(const struct conf_param *, void *base);
int params_load(struct loader *, const config_setting_t *root,
    const char *prefix, const struct conf_param *, void *base);
void params_free(const struct conf_param *, void *base);

int fail(struct loader *, const config_setting_t *, const char *, ...)
    LOG_PRINTF(3, 4);
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
config_setting_t *get_entries(struct loader *, const config_setting_t *,
    const char *name, const char *what, int *n);
void free_strings(char **, size_t);

/* Hooks of the rows, beside their sections. */
conf_hook log_facility_check, milter_socket_check, dkim_keys_load, dkim_rules_load,
    dkim_tables_check, dkim_canon_load, dkim_field_names_check;
void dkim_canon_init(void *);
void dkim_keys_release(void *), dkim_rules_release(void *);

conf_hook store_url_check, store_check, limits_load, overrides_load;
void limits_release(void *), overrides_release(void *);
int parse_ms(const char *, uint64_t *, char *, size_t);

conf_hook policyd_listen_check, policyd_check;
conf_hook metrics_listen_check;

conf_hook spf_worker_check, spf_addresses_check, spf_outbound_check,
    spf_check;

conf_hook deliverability_check;

#endif
