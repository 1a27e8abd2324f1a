/*
 * conf_quota - the quota part of the configuration as quota/ takes it:
 * the store, limits, overrides and exempt sections (store.*, limits,
 * overrides, exempt.*), gathered in struct conf_quota, the member
 * "quota" of struct conf.  In the file they stay top-level sections.
 * Filled and owned by conf_load() (conf.h); read-only after.
 */
#ifndef OUTPOST_CONF_QUOTA_H
#define OUTPOST_CONF_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_common.h"
#include "util/cidr.h"

/* Quotas: what a limit keys on, counts, and how. */
enum conf_qkey {
	CONF_QKEY_SASL_USERNAME,
	CONF_QKEY_SENDER,
	CONF_QKEY_SENDER_DOMAIN,
	CONF_QKEY_CLIENT_ADDRESS,
	CONF_QKEY_CLIENT_NETWORK,
	CONF_QKEY_GLOBAL,
};

enum conf_qcount {
	CONF_QCOUNT_MESSAGES,
	CONF_QCOUNT_RECIPIENTS,
	CONF_QCOUNT_BYTES,
};

enum conf_qkind {
	CONF_QKIND_WINDOW,	/* at most limit in any trailing period */
	CONF_QKIND_CALENDAR,	/* at most limit per local day or month */
	CONF_QKIND_RATE,	/* GCRA: limit per period, burst */
};

enum conf_qaction {
	CONF_QACTION_DEFER,	/* 450 4.7.1 */
	CONF_QACTION_REJECT,	/* 550 5.7.1 */
	CONF_QACTION_HOLD,	/* accept into the hold queue */
	CONF_QACTION_WARN,	/* log only, admit */
};

#define CONF_QBUCKETS_MAX 60

/* A limits entry. */
struct conf_limit {
	char *name;
	enum conf_qkey key;
	unsigned int prefix4;		/* client_network: IPv4 prefix */
	unsigned int prefix6;		/* client_network: IPv6 prefix */
	enum conf_qcount count;
	enum conf_qkind kind;
	uint64_t limit;
	uint64_t period;		/* seconds (window, rate) */
	int month;			/* calendar: 0 day, 1 month */
	char *timezone;			/* calendar: IANA name, "UTC" */
	uint64_t burst;			/* rate: extra units allowed at once */
	unsigned int buckets;		/* window: sub-buckets, 1..60 */
	enum conf_qaction action;
	char *reply;			/* reply template, or NULL */
	int line;
};

/* An overrides entry: one key value gets its own limit. */
struct conf_override {
	size_t limit;			/* index into limits */
	char *key;			/* key value, e.g. a login */
	uint64_t value;
	int unlimited;
	int line;
};

/* store.backend */
enum conf_backend {
	CONF_STORE_LMDB,
	CONF_STORE_REDIS,
	CONF_STORE_MEMORY,		/* tests only */
};

/* store.* */
struct conf_store {
	enum conf_backend backend;
	char *path;			/* LMDB file */
	uint64_t map_size;		/* LMDB map size, bytes */
	char *url;			/* redis://host:port/db */
	unsigned int timeout_ms;	/* Redis per operation */
	enum conf_on_error on_error;	/* tempfail or accept */
	unsigned int reserve_ttl;	/* s before a reservation lapses */
	int sync_always;		/* LMDB: fdatasync every commit */
	unsigned int sync_interval;	/* LMDB periodic: flush every s */
};

/* exempt.*: who no limit applies to. */
struct conf_exempt {
	struct cidr *networks;
	size_t nnetworks;
	char **logins;
	size_t nlogins;
};

struct conf_quota {
	struct conf_store store;
	struct conf_limit *limits;
	size_t nlimits;
	struct conf_override *overrides;
	size_t noverrides;
	struct conf_exempt exempt;
};

/* conf_qaction_name - "defer", "reject", "hold" or "warn" */
const char *conf_qaction_name(enum conf_qaction);

#endif
