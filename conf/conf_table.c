/*
 * conf_table - every setting of outpost.conf, one row each: name, type,
 * bounds, default, field (see conf_impl.h for the columns and
 * outpost.conf(5) for what each setting means).
 *
 * Rows are read in order, so a row that depends on another comes after
 * it (dkim.signing after dkim.keys, overrides after limits), and a
 * CONF_T_CHECK row after the settings of the group it checks.  A group
 * exists as soon as one row names it; a name no row has is an error.
 */
#include "config.h"

#include <stddef.h>

#include "conf/conf_impl.h"
#include "util/parse.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/lib/outpost"
#endif

#define F(field)	offsetof(struct conf, field)
/* Q: the fields of struct conf_quota (store, limits, overrides, exempt) */
#define Q(field)	offsetof(struct conf, quota.field)
#define BIT(i)		(1u << (i))

/* Row heads: name, type, field offset and, for numbers, bounds. */
#define STRING(n, o)	.name = (n), .type = CONF_T_STRING, .off = (o)
#define BOOL(n, o)	.name = (n), .type = CONF_T_BOOL, .off = (o)
#define UINT(n, o, lo, hi) .name = (n), .type = CONF_T_UINT, .off = (o), \
			.min = (lo), .max = (hi)
#define U64(n, o, lo, hi) .name = (n), .type = CONF_T_U64, .off = (o), \
			.min = (lo), .max = (hi)
#define MODE(n, o)	.name = (n), .type = CONF_T_MODE, .off = (o)
#define ENUM(n, o, v)	.name = (n), .type = CONF_T_ENUM, .off = (o), \
			.names = (v)
#define STRINGS(n, o, c) .name = (n), .type = CONF_T_STRINGS, .off = (o), \
			.noff = (c)
#define CIDRS(n, o, c)	.name = (n), .type = CONF_T_CIDRS, .off = (o), \
			.noff = (c)
#define CUSTOM(n)	.name = (n), .type = CONF_T_CUSTOM
#define CHECK(n, fn)	.name = (n), .type = CONF_T_CHECK, .load = (fn)
#define END		.name = NULL

/* The names of enum conf_on_error, conf_spf_action, conf_qaction. */
const char *const conf_on_error_names[] = { "tempfail", "accept",
	"reject", NULL };
const char *const conf_spf_action_names[] = { "accept", "warn", "reject",
	"tempfail", NULL };
const char *const conf_qaction_names[] = { "defer", "reject", "hold",
	"warn", NULL };
const char *const conf_dcheck_names[] = { "off", "warn", "reject", NULL };

static const char *const milter_engines[] = { "native", "libmilter",
	NULL };
static const char *const milter_quotas[] = { "all", "non_smtpd", "off",
	NULL };
static const char *const dkim_engines[] = { "native", "libopendkim",
	NULL };
static const char *const store_backends[] = { "lmdb", "redis", "memory",
	NULL };
static const char *const store_on_errors[] = { "tempfail", "accept",
	NULL };
static const char *const store_syncs[] = { "periodic", "always", NULL };
static const char *const key_algs[] = { "rsa-sha256", "ed25519-sha256",
	NULL };

static const char *const loopback[] = { "127.0.0.0/8", "::1/128", NULL };
static const char *const oversign[] = { "From", NULL };
static const char *const policyd_listen[] = {
	"unix:/run/outpost/policy.sock", NULL };

/* SPF actions: inbound results never warn; outbound warns or rejects. */
#define SPF_INBOUND	.deny = BIT(CONF_SPF_WARN)
#define SPF_OUTBOUND	.deny = BIT(CONF_SPF_ACCEPT) | BIT(CONF_SPF_TEMPFAIL)

/* A dkim.keys entry (struct conf_key). */
const struct conf_param conf_key_params[] = {
	{ STRING("name", offsetof(struct conf_key, name)) },
	{ STRING("domain", offsetof(struct conf_key, domain)) },
	{ STRING("selector", offsetof(struct conf_key, selector)) },
	{ STRING("file", offsetof(struct conf_key, file)) },
	{ ENUM("algorithm", offsetof(struct conf_key, alg), key_algs),
	  .def = CONF_ALG_RSA_SHA256 },
	{ END }
};

/* A dkim.signing entry (struct conf_rule). */
const struct conf_param conf_rule_params[] = {
	{ STRING("match", offsetof(struct conf_rule, match)) },
	{ STRINGS("keys", offsetof(struct conf_rule, keys),
	  offsetof(struct conf_rule, nkeys)) },
	{ END }
};

/*
 * A limits entry: its fields depend on each other (kind decides what
 * period means and which of timezone, burst, buckets may be given), so
 * limits_load (conf_quota.c) reads them; the table names them.
 */
const struct conf_param conf_limit_params[] = {
	{ CUSTOM("name") }, { CUSTOM("key") }, { CUSTOM("prefix") },
	{ CUSTOM("prefix6") }, { CUSTOM("count") }, { CUSTOM("kind") },
	{ CUSTOM("limit") }, { CUSTOM("period") }, { CUSTOM("timezone") },
	{ CUSTOM("burst") }, { CUSTOM("buckets") }, { CUSTOM("action") },
	{ CUSTOM("reply") },
	{ END }
};

/* An overrides entry: read by overrides_load (conf_quota.c). */
const struct conf_param conf_override_params[] = {
	{ CUSTOM("limit") }, { CUSTOM("key") }, { CUSTOM("value") },
	{ END }
};

const struct conf_param conf_params[] = {
	{ STRING("milter.socket", F(milter.socket)),
	  .def_str = "unix:/run/outpost/milter.sock",
	  .load = milter_socket_check },
	{ ENUM("milter.on_error", F(milter.on_error), conf_on_error_names),
	  .def = CONF_ON_ERROR_TEMPFAIL, .deny = BIT(CONF_ON_ERROR_REJECT),
	  .deny_why = "must be tempfail or accept" },
	{ UINT("milter.timeout", F(milter.timeout), 1, 86400), .def = 300,
	  .parse = parse_duration },
	{ UINT("milter.backlog", F(milter.backlog), 1, 65535), .def = 128 },
	{ STRING("milter.user", F(milter.user)) },
	{ STRING("milter.pid_file", F(milter.pid_file)) },
	{ STRING("milter.socket_group", F(milter.socket_group)) },
	{ MODE("milter.socket_mode", F(milter.socket_mode)), .def = 0660 },
	{ ENUM("milter.engine", F(milter.engine), milter_engines) },
	{ ENUM("milter.quotas", F(milter.quotas), milter_quotas),
	  .def = CONF_MQUOTA_ALL },
	{ STRING("milter.metrics", F(milter.metrics)),
	  .load = metrics_listen_check },

	{ BOOL("trusted.authenticated", F(trusted.authenticated)),
	  .def = 1 },
	{ STRINGS("trusted.daemon_names", F(trusted.daemon_names),
	  F(trusted.ndaemon_names)) },
	{ CIDRS("trusted.networks", F(trusted.networks),
	  F(trusted.nnetworks)), .def_list = loopback },

	{ CUSTOM("dkim.keys"), .load = dkim_keys_load,
	  .release = dkim_keys_release, .elems = conf_key_params },
	{ CUSTOM("dkim.signing"), .load = dkim_rules_load,
	  .release = dkim_rules_release, .elems = conf_rule_params },
	{ STRING("dkim.key_table", F(dkim.key_table)) },
	{ STRING("dkim.signing_table", F(dkim.signing_table)) },
	{ CHECK("dkim", dkim_tables_check) },
	{ CUSTOM("dkim.canonicalization"), .load = dkim_canon_load,
	  .init = dkim_canon_init },
	{ STRINGS("dkim.headers", F(dkim.headers), F(dkim.nheaders)),
	  .def_list = conf_default_headers, .load = dkim_field_names_check },
	{ STRINGS("dkim.oversign", F(dkim.oversign), F(dkim.noversign)),
	  .def_list = oversign, .load = dkim_field_names_check },
	{ ENUM("dkim.on_malformed", F(dkim.on_malformed),
	  conf_on_error_names), .def = CONF_ON_ERROR_ACCEPT,
	  .deny = BIT(CONF_ON_ERROR_TEMPFAIL),
	  .deny_why = "must be accept or reject" },
	{ ENUM("dkim.on_oversized", F(dkim.on_oversized),
	  conf_on_error_names), .def = CONF_ON_ERROR_REJECT,
	  .deny = BIT(CONF_ON_ERROR_TEMPFAIL),
	  .deny_why = "must be accept or reject" },
	{ BOOL("dkim.multiple_signatures", F(dkim.multiple_signatures)) },
	{ ENUM("dkim.engine", F(dkim.engine), dkim_engines),
	  .def = CONF_ENGINE_NATIVE },

	{ BOOL("log.verbose", F(log.verbose)) },
	{ STRING("log.facility", F(log.facility)), .def_str = "mail",
	  .load = log_facility_check },

	{ ENUM("store.backend", Q(store.backend), store_backends),
	  .def = CONF_STORE_LMDB },
	{ STRING("store.path", Q(store.path)),
	  .def_str = "/var/lib/outpost/quota.lmdb" },
	{ U64("store.map_size", Q(store.map_size), 1024 * 1024, 1ULL << 40),
	  .def = 1024ULL * 1024 * 1024, .parse = parse_size },
	{ STRING("store.url", Q(store.url)), .load = store_url_check },
	{ UINT("store.timeout", Q(store.timeout_ms), 1, 600000), .def = 1000,
	  .parse = parse_ms },
	{ ENUM("store.on_error", Q(store.on_error), store_on_errors),
	  .def = CONF_ON_ERROR_TEMPFAIL },
	{ UINT("store.reserve_ttl", Q(store.reserve_ttl), 1, 7 * 86400),
	  .def = 600, .parse = parse_duration },
	{ ENUM("store.sync", Q(store.sync_always), store_syncs) },
	{ UINT("store.sync_interval", Q(store.sync_interval), 1, 3600),
	  .def = 1, .parse = parse_duration },
	{ CHECK("store", store_check) },

	{ CUSTOM("limits"), .load = limits_load, .release = limits_release,
	  .elems = conf_limit_params },
	{ CUSTOM("overrides"), .load = overrides_load,
	  .release = overrides_release, .elems = conf_override_params },

	{ STRINGS("exempt.logins", Q(exempt.logins), Q(exempt.nlogins)) },
	{ CIDRS("exempt.networks", Q(exempt.networks),
	  Q(exempt.nnetworks)) },

	{ STRING("policyd.socket_owner", F(policyd.socket_owner)) },
	{ STRING("policyd.socket_group", F(policyd.socket_group)) },
	{ UINT("policyd.idle_timeout", F(policyd.idle_timeout), 1, 86400),
	  .def = 300, .parse = parse_duration },
	{ UINT("policyd.max_connections", F(policyd.max_connections), 1,
	  1000000), .def = 10000 },
	{ UINT("policyd.backlog", F(policyd.backlog), 1, 65535),
	  .def = 1024 },
	{ UINT("policyd.line_max", F(policyd.line_max), 64, 65536),
	  .def = 2048 },
	{ UINT("policyd.attributes_max", F(policyd.attributes_max), 8,
	  10000), .def = 100 },
	{ UINT("policyd.request_max", F(policyd.request_max), 256, 1048576),
	  .def = 16384 },
	{ STRING("policyd.user", F(policyd.user)) },
	{ STRING("policyd.pid_file", F(policyd.pid_file)) },
	{ MODE("policyd.socket_mode", F(policyd.socket_mode)), .def = 0660 },
	{ STRINGS("policyd.listen", F(policyd.listen), F(policyd.nlisten)),
	  .def_list = policyd_listen, .load = policyd_listen_check },
	{ CIDRS("policyd.networks", F(policyd.networks),
	  F(policyd.nnetworks)), .def_list = loopback },
	{ STRING("policyd.metrics", F(policyd.metrics)),
	  .load = metrics_listen_check },
	{ CHECK("policyd", policyd_check) },

	{ UINT("spf.workers", F(spf.workers), 1, 64), .def = 2 },
	{ UINT("spf.max_workers", F(spf.max_workers), 1, 256), .def = 16 },
	{ STRING("spf.user", F(spf.user)), .def_str = "nobody" },
	{ STRING("spf.worker", F(spf.worker)),
	  .def_str = LIBEXECDIR "/outpost-spf-worker",
	  .load = spf_worker_check },
	{ UINT("spf.timeout", F(spf.timeout_ms), 1, 600), .def = 20000,
	  .parse = parse_duration, .scale = 1000 },
	{ U64("spf.memory", F(spf.memory), 16ULL << 20, 1ULL << 40),
	  .def = 256ULL << 20, .parse = parse_size },
	{ UINT("spf.max_dns_lookups", F(spf.max_dns_lookups), 1, 100),
	  .def = 10 },
	{ UINT("spf.max_void_lookups", F(spf.max_void_lookups), 0, 100),
	  .def = 2 },
	{ BOOL("spf.inbound.enabled", F(spf.inbound.enabled)) },
	{ STRING("spf.inbound.receiver", F(spf.inbound.receiver)) },
	{ BOOL("spf.inbound.allow_loopback", F(spf.inbound.allow_loopback)) },
	{ ENUM("spf.inbound.fail", F(spf.inbound.fail),
	  conf_spf_action_names), .def = CONF_SPF_REJECT, SPF_INBOUND },
	{ ENUM("spf.inbound.softfail", F(spf.inbound.softfail),
	  conf_spf_action_names), .def = CONF_SPF_ACCEPT, SPF_INBOUND },
	{ ENUM("spf.inbound.temperror", F(spf.inbound.temperror),
	  conf_spf_action_names), .def = CONF_SPF_TEMPFAIL, SPF_INBOUND },
	{ ENUM("spf.inbound.permerror", F(spf.inbound.permerror),
	  conf_spf_action_names), .def = CONF_SPF_ACCEPT, SPF_INBOUND },
	{ UINT("spf.inbound.max_per_client", F(spf.inbound.max_per_client),
	  0, 1024), .def = 4 },
	{ UINT("spf.inbound.max_per_domain", F(spf.inbound.max_per_domain),
	  0, 1024), .def = 8 },
	{ BOOL("spf.outbound.enabled", F(spf.outbound.enabled)) },
	{ STRINGS("spf.outbound.addresses", F(spf.outbound.addresses),
	  F(spf.outbound.naddresses)), .load = spf_addresses_check },
	{ ENUM("spf.outbound.action", F(spf.outbound.action),
	  conf_spf_action_names), .def = CONF_SPF_WARN, SPF_OUTBOUND },
	{ STRING("spf.outbound.publish", F(spf.outbound.publish)) },
	{ UINT("spf.outbound.cache_ttl", F(spf.outbound.cache_ttl), 0,
	  86400), .def = 600, .parse = parse_duration },
	{ CHECK("spf.outbound", spf_outbound_check) },
	{ CHECK("spf", spf_check) },

	{ ENUM("deliverability.dmarc", F(deliverability.dmarc),
	  conf_dcheck_names), .def = CONF_DCHECK_WARN },
	{ ENUM("deliverability.bulk", F(deliverability.bulk),
	  conf_dcheck_names), .def = CONF_DCHECK_WARN },
	{ UINT("deliverability.dns_timeout",
	  F(deliverability.dns_timeout_ms), 1, 60000), .def = 5000,
	  .parse = parse_ms },
	{ U64("deliverability.bulk_recipients",
	  F(deliverability.bulk_recipients), 0, UINT64_MAX) },
	{ STRING("deliverability.bulk_limit", F(deliverability.bulk_limit)) },
	{ CHECK("deliverability", deliverability_check) },
	{ END }
};
