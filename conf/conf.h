/*
 * conf - the one configuration file (libconfig syntax), loaded and
 * validated into one immutable struct conf.
 *
 * conf_load() returns a new struct conf owned by the caller, or NULL with
 * "FILE:LINE: reason" in err.  Everything is checked here (names, ranges,
 * references between sections) so that a daemon holding a struct conf
 * never meets a bad setting.  conf_free() accepts NULL and returns NULL.
 *
 * Files named by the config (keys, OpenDKIM tables) are only recorded
 * here; the modules that use them (dkim/) read and check them.
 *
 * Each section is a named struct, a member of struct conf.  The sections
 * a library takes have headers of their own (conf_quota.h, conf_dkim.h,
 * conf_spf.h, and conf_common.h under them), so that quota/, dkim/ and
 * spf/ never include this file (tests/check_includes.sh).
 */
#ifndef OUTPOST_CONF_H
#define OUTPOST_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_common.h"
#include "conf/conf_dkim.h"
#include "conf/conf_quota.h"
#include "conf/conf_spf.h"
#include "util/cidr.h"

#define CONF_DEFAULT_PATH SYSCONFDIR "/outpost/outpost.conf"

/* milter.engine: who speaks the milter protocol (milter/engine.h) */
enum conf_milter_engine {
	CONF_MILTER_NATIVE,	/* our own engine */
	CONF_MILTER_LIBMILTER,	/* libmilter, the reference */
};

/* What the milter does with quotas (milter.quotas). */
enum conf_mquota {
	CONF_MQUOTA_ALL,	/* recipients at RCPT, messages and bytes at EOM */
	CONF_MQUOTA_NON_SMTPD,	/* only mail that never met outpost-policyd */
	CONF_MQUOTA_OFF,
};

/* What a deliverability check does (deliverability.*). */
enum conf_dcheck {
	CONF_DCHECK_OFF,
	CONF_DCHECK_WARN,	/* a log line and X-Outpost-Deliverability */
	CONF_DCHECK_REJECT,	/* 550 5.7.x naming the fix */
};

/* milter.* */
struct conf_milter {
	char *socket;
	unsigned int socket_mode;	/* unix socket permissions */
	char *socket_group;		/* unix socket group, or NULL */
	enum conf_on_error on_error;
	unsigned int timeout;		/* seconds, MTA I/O */
	unsigned int backlog;
	char *user;			/* drop to, or NULL */
	char *pid_file;			/* or NULL */
	enum conf_milter_engine engine;
	enum conf_mquota quotas;	/* default all */
	char *metrics;			/* "inet:HOST:PORT", or NULL */
};

/* deliverability.*: checks at submission (milter/milter_deliver.c) */
struct conf_deliverability {
	enum conf_dcheck dmarc;		/* alignment; warn */
	enum conf_dcheck bulk;		/* bulk-sender rules; warn */
	unsigned int dns_timeout_ms;	/* per message; 5 s */
	uint64_t bulk_recipients;	/* bulk above; 0 off */
	char *bulk_limit;		/* the limit read, or NULL */
};

/* policyd.*: outpost-policyd (conf_policyd.c) */
struct conf_policyd {
	char **listen;			/* "unix:PATH", "inet:HOST:PORT" */
	size_t nlisten;
	unsigned int socket_mode;	/* unix sockets */
	char *socket_owner;		/* user, or NULL */
	char *socket_group;		/* group, or NULL */
	struct cidr *networks;		/* TCP clients allowed */
	size_t nnetworks;
	unsigned int idle_timeout;	/* seconds */
	unsigned int max_connections;
	unsigned int backlog;
	unsigned int line_max;		/* request limits, bytes */
	unsigned int attributes_max;
	unsigned int request_max;
	char *user;			/* drop to, or NULL */
	char *pid_file;			/* or NULL */
	char *metrics;			/* "inet:HOST:PORT", or NULL */
};

/*
 * The whole configuration, one member per section.  A library takes only
 * its section(s): dkim/ struct conf_dkim and conf_trusted (conf_dkim.h),
 * spf/ struct conf_spf and conf_log (conf_spf.h, conf_common.h), quota/
 * struct conf_quota (conf_quota.h).  The programs hold the struct conf.
 */
struct conf {
	char *path;
	struct conf_milter milter;
	struct conf_trusted trusted;
	struct conf_dkim dkim;
	struct conf_log log;
	struct conf_quota quota;	/* store, limits, overrides, exempt */
	struct conf_spf spf;
	struct conf_deliverability deliverability;
	struct conf_policyd policyd;
};

struct conf *conf_load(const char *path, char *err, size_t errlen);
/* conf_load_string - the same from text; name stands for the file */
struct conf *conf_load_string(const char *name, const char *text, char *err,
    size_t errlen);
struct conf *conf_free(struct conf *);

/*
 * conf_check_host - what the configuration needs of this host (see
 * conf_host.c): the users it names exist (milter.user, spf.user when SPF
 * is on, policyd.user) and milter.user can read every dkim.keys file.
 * what: CONF_HOST_MILTER and/or CONF_HOST_POLICYD.  0, or -1 with err.
 */
#define CONF_HOST_MILTER	0x1u
#define CONF_HOST_POLICYD	0x2u
int conf_check_host(const struct conf *, unsigned int what, char *err,
    size_t errlen);

/* conf_dcheck_name - "off", "warn" or "reject" */
const char *conf_dcheck_name(enum conf_dcheck);

/*
 * conf_setting_names - call fn with the dotted name of every setting, in
 * the order of the table (conf_table.c): "milter.socket", ..., and of
 * the fields of list entries: "dkim.keys.name", "limits.period".  For
 * the documentation test.
 */
void conf_setting_names(void (*fn)(const char *name, void *arg), void *arg);

#endif
