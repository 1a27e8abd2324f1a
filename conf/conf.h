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
 */
#ifndef OUTPOST_CONF_H
#define OUTPOST_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "util/cidr.h"

#define CONF_DEFAULT_PATH SYSCONFDIR "/outpost/outpost.conf"

enum conf_on_error {
	CONF_ON_ERROR_TEMPFAIL,
	CONF_ON_ERROR_ACCEPT,
	CONF_ON_ERROR_REJECT,
};

enum conf_alg {
	CONF_ALG_ANY = -1,	/* dkim_key_load: detect from the file */
	CONF_ALG_RSA_SHA256,
	CONF_ALG_ED25519_SHA256,
};

enum conf_canon {
	CONF_CANON_SIMPLE,
	CONF_CANON_RELAXED,
};

enum conf_engine {
	CONF_ENGINE_NATIVE,	/* preparsed keys, our own signer */
	CONF_ENGINE_OPENDKIM,	/* libopendkim dkim_sign() per message */
};

/* milter.engine: who speaks the milter protocol (milter/engine.h) */
enum conf_milter_engine {
	CONF_MILTER_NATIVE,	/* our own engine */
	CONF_MILTER_LIBMILTER,	/* libmilter, the reference */
};

/* A dkim.keys entry. */
struct conf_key {
	char *name;
	char *domain;		/* "%" means: the From domain */
	char *selector;
	char *file;
	enum conf_alg alg;
	int line;
};

/* A dkim.signing entry: From address pattern -> key names. */
struct conf_rule {
	char *match;
	char **keys;
	size_t nkeys;
	int line;
};

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

/* What the milter does with quotas (milter.quotas). */
enum conf_mquota {
	CONF_MQUOTA_ALL,	/* recipients at RCPT, messages and bytes at EOM */
	CONF_MQUOTA_NON_SMTPD,	/* only mail that never met outpost-policyd */
	CONF_MQUOTA_OFF,
};

/* What an SPF result leads to (spf.inbound.*, spf.outbound.action). */
enum conf_spf_action {
	CONF_SPF_ACCEPT,	/* header only */
	CONF_SPF_WARN,		/* header and a log line (outbound) */
	CONF_SPF_REJECT,	/* 550 5.7.23 (outbound: 550 5.7.23 + advice) */
	CONF_SPF_TEMPFAIL,	/* 451 4.7.24 */
};

/* What a deliverability check does (deliverability.*). */
enum conf_dcheck {
	CONF_DCHECK_OFF,
	CONF_DCHECK_WARN,	/* a log line and X-Outpost-Deliverability */
	CONF_DCHECK_REJECT,	/* 550 5.7.x naming the fix */
};

enum conf_store {
	CONF_STORE_LMDB,
	CONF_STORE_REDIS,
	CONF_STORE_MEMORY,		/* tests only */
};

struct conf {
	char *path;

	struct {
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
	} milter;

	struct {
		struct cidr *networks;
		size_t nnetworks;
		int authenticated;		/* sign for SMTP AUTH clients */
		char **daemon_names;		/* {daemon_name} values */
		size_t ndaemon_names;
	} trusted;

	struct {
		struct conf_key *keys;
		size_t nkeys;
		struct conf_rule *rules;
		size_t nrules;
		char *key_table;		/* OpenDKIM KeyTable, or NULL */
		char *signing_table;		/* "file:" / "refile:" path */
		enum conf_canon canon_header;
		enum conf_canon canon_body;
		char **headers;			/* header names to sign */
		size_t nheaders;
		char **oversign;		/* also signed once more */
		size_t noversign;
		enum conf_on_error on_malformed;/* accept or reject */
		enum conf_on_error on_oversized;/* accept or reject */
		enum conf_engine engine;
		int multiple_signatures;	/* all SigningTable matches */
	} dkim;

	struct {
		int verbose;
		char *facility;
	} log;

	struct {
		enum conf_store backend;
		char *path;			/* LMDB file */
		uint64_t map_size;		/* LMDB map size, bytes */
		char *url;			/* redis://host:port/db */
		unsigned int timeout_ms;	/* Redis per operation */
		enum conf_on_error on_error;	/* tempfail or accept */
		unsigned int reserve_ttl;	/* s before a reservation lapses */
		int sync_always;		/* LMDB: fdatasync every commit */
		unsigned int sync_interval;	/* LMDB periodic: flush every s */
	} store;

	struct conf_limit *limits;
	size_t nlimits;
	struct conf_override *overrides;
	size_t noverrides;

	struct {
		struct cidr *networks;
		size_t nnetworks;
		char **logins;
		size_t nlogins;
	} exempt;

	/* SPF (conf_spf.c).  Checks run in worker processes. */
	struct {
		unsigned int workers;		/* pool size, default 2 */
		unsigned int max_workers;	/* grown to when busy; 16 */
		char *user;			/* workers run as; "nobody" */
		char *worker;			/* outpost-spf-worker path */
		unsigned int timeout_ms;	/* deadline per check, 20 s */
		uint64_t memory;		/* RLIMIT_AS per worker, bytes */
		unsigned int max_dns_lookups;	/* RFC 7208 4.6.4: 10 */
		unsigned int max_void_lookups;	/* RFC 7208 4.6.4: 2 */
		struct {
			int enabled;		/* default off */
			char *receiver;		/* authserv-id; NULL: {j} */
			int allow_loopback;	/* loopback: pass unchecked */
			enum conf_spf_action fail;	/* reject */
			enum conf_spf_action softfail;	/* accept */
			enum conf_spf_action temperror;	/* tempfail */
			enum conf_spf_action permerror;	/* accept */
			unsigned int max_per_client;	/* in flight; 4 */
			unsigned int max_per_domain;	/* in flight; 8 */
		} inbound;
		struct {
			int enabled;		/* default off */
			char **addresses;	/* our public sending IPs */
			size_t naddresses;
			enum conf_spf_action action;	/* warn or reject */
			char *publish;		/* advice: "include:..." */
			unsigned int cache_ttl;	/* s, per domain; 600 */
		} outbound;
	} spf;

	/* Deliverability at submission (milter/milter_deliver.c). */
	struct {
		enum conf_dcheck dmarc;		/* alignment; warn */
		enum conf_dcheck bulk;		/* bulk-sender rules; warn */
		unsigned int dns_timeout_ms;	/* per message; 5 s */
		uint64_t bulk_recipients;	/* bulk above; 0 off */
		char *bulk_limit;		/* the limit read, or NULL */
	} deliverability;

	/* outpost-policyd (conf_policyd.c) */
	struct {
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
	} policyd;
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

const char *conf_alg_name(enum conf_alg);
const char *conf_on_error_name(enum conf_on_error);
/* conf_qaction_name - "defer", "reject", "hold" or "warn" */
const char *conf_qaction_name(enum conf_qaction);
/* conf_spf_action_name - "accept", "warn", "reject" or "tempfail" */
const char *conf_spf_action_name(enum conf_spf_action);
/* conf_dcheck_name - "off", "warn" or "reject" */
const char *conf_dcheck_name(enum conf_dcheck);

/*
 * conf_setting_names - call fn with the dotted name of every setting, in
 * the order of the table (conf_table.c): "milter.socket", ..., and of
 * the fields of list entries: "dkim.keys.name", "limits.period".  For
 * the documentation test.
 */
void conf_setting_names(void (*fn)(const char *name, void *arg), void *arg);

/* The RFC 6376 §5.4.1 recommended header set, NULL-terminated. */
extern const char *const conf_default_headers[];

#endif
