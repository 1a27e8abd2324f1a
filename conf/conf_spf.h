/*
 * conf_spf - the spf section of the configuration (spf.*), as spf/
 * takes it.  Filled and owned by conf_load() (conf.h); read-only after.
 */
#ifndef OUTPOST_CONF_SPF_H
#define OUTPOST_CONF_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_common.h"

/* What an SPF result leads to (spf.inbound.*, spf.outbound.action). */
enum conf_spf_action {
	CONF_SPF_ACCEPT,	/* header only */
	CONF_SPF_WARN,		/* header and a log line (outbound) */
	CONF_SPF_REJECT,	/* 550 5.7.23 (outbound: 550 5.7.23 + advice) */
	CONF_SPF_TEMPFAIL,	/* 451 4.7.24 */
};

/* spf.*: checks run in worker processes (conf_spf.c checks them). */
struct conf_spf {
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
};

/* conf_spf_action_name - "accept", "warn", "reject" or "tempfail" */
const char *conf_spf_action_name(enum conf_spf_action);

#endif
