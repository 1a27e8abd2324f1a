/*
 * conf_dkim - the dkim and trusted sections of the configuration
 * (dkim.*, trusted.*), as dkim/ takes them.  Filled and owned by
 * conf_load() (conf.h); read-only after.
 */
#ifndef OUTPOST_CONF_DKIM_H
#define OUTPOST_CONF_DKIM_H

#include <stddef.h>

#include "conf/conf_common.h"
#include "util/cidr.h"

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

/* trusted.*: whose mail is signed. */
struct conf_trusted {
	struct cidr *networks;
	size_t nnetworks;
	int authenticated;		/* sign for SMTP AUTH clients */
	char **daemon_names;		/* {daemon_name} values */
	size_t ndaemon_names;
};

/* dkim.* */
struct conf_dkim {
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
};

const char *conf_alg_name(enum conf_alg);

/* The RFC 6376 §5.4.1 recommended header set, NULL-terminated. */
extern const char *const conf_default_headers[];

#endif
