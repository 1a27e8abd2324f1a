/*
 * milter_metrics - what outpost-milter counts (util/metrics.h), and the
 * list main() registers and serves at milter.metrics.  The handlers
 * count with one call where they log the same event.
 */
#include "config.h"

#include <stddef.h>

#include "milter/milter_impl.h"
#include "quota/quota.h"
#include "spf/pool.h"
#include "util/metrics.h"

/* the reasons a message goes unsigned (dkim/decide.c, dkim/from.c,
 * milter.c's header bounds); anything else counts as "other" */
static const char *const skip_reasons[] = { "not-trusted", "no-from",
	"several-from-fields", "no-signing-rule", "from-without-address",
	"from-with-several-addresses", "from-without-domain",
	"from-too-long", "header-section-too-large", NULL };
static const char *const algorithms[] = { "rsa-sha256", "ed25519-sha256",
	NULL };
static const char *const spf_identities[] = { "helo", "mailfrom",
	"outbound", NULL };
static const char *const spf_results[] = { "none", "neutral", "pass",
	"fail", "softfail", "temperror", "permerror", NULL };

struct metric milter_metric_signed = METRIC_DEF(
	"outpost_messages_signed_total", "Messages signed.", METRIC_COUNTER,
	NULL, NULL, NULL, NULL);
struct metric milter_metric_skipped = METRIC_DEF(
	"outpost_messages_skipped_total", "Messages not signed, by reason.",
	METRIC_COUNTER, "reason", skip_reasons, NULL, NULL);
struct metric milter_metric_signatures = METRIC_DEF(
	"outpost_signatures_total", "DKIM signatures made, by algorithm.",
	METRIC_COUNTER, "algorithm", algorithms, NULL, NULL);
struct metric milter_metric_spf = METRIC_DEF("outpost_spf_results_total",
	"SPF results, by identity (outbound: the preflight of our own "
	"mail) and result.", METRIC_COUNTER, "identity", spf_identities,
	"result", spf_results);
static const char *const deliver_checks[] = { "dmarc", "bulk", NULL };
static const char *const deliver_results[] = { "pass", "fail", "noted",
	"none", "temperror", NULL };
struct metric milter_metric_deliver = METRIC_DEF(
	"outpost_deliverability_checks_total", "Deliverability checks at "
	"submission, by check and result (fail: the configured action "
	"applied).", METRIC_COUNTER, "check", deliver_checks, "result",
	deliver_results);
struct metric milter_metric_conns = METRIC_DEF(
	"outpost_milter_connections", "MTA connections open.", METRIC_GAUGE,
	NULL, NULL, NULL, NULL);
struct metric milter_metric_eom = METRIC_DEF(
	"outpost_milter_eom_seconds", "Time to decide at the end of a "
	"message (checks, signature, quota commit).", METRIC_HISTOGRAM,
	NULL, NULL, NULL, NULL);

static struct metric *const own[] = { &milter_metric_signed,
	&milter_metric_skipped, &milter_metric_signatures, &milter_metric_spf,
	&milter_metric_conns, &milter_metric_eom, &milter_metric_deliver,
	NULL };

void
milter_metrics_register(void)
{
	metrics_register_list(own);
	metrics_register_list(quota_metrics);
	metrics_register_list(spf_pool_metrics);
}
