/*
 * reply - the text of outpost-policyd's answers and log lines, from a
 * request and a quota verdict: pure functions, no state.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "policy/reply.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/parse.h"

/* preq_who - who sends, from the request; addr holds the client address */
void
preq_who(const struct proto *p, struct quota_who *who, uint8_t addr[16])
{
	const char *v;

	memset(who, 0, sizeof(*who));
	v = proto_get(p, PA_SASL_USERNAME);
	who->sasl_username = v != NULL && *v != '\0' ? v : NULL;
	who->sender = proto_get(p, PA_SENDER);
	v = proto_get(p, PA_CLIENT_ADDRESS);
	if (v != NULL && cidr_addr_parse(v, addr) == 0)
		who->client_addr = addr;
}

/* preq_num - a numeric attribute, 0 when absent or not a number */
uint64_t
preq_num(const struct proto *p, enum proto_attr a)
{
	const char *v = proto_get(p, a);
	uint64_t n;

	if (v == NULL || *v == '\0' ||
	    parse_u64(v, 0, UINT64_MAX / 2, &n, NULL, 0) < 0)
		return 0;
	return n;
}

/* preq_log_id - what log lines start with: queue id, else instance */
const char *
preq_log_id(const struct proto *p)
{
	const char *v = proto_get(p, PA_QUEUE_ID);

	if (v == NULL || *v == '\0')
		v = proto_get(p, PA_INSTANCE);
	return v != NULL && *v != '\0' ? v : "NOQUEUE";
}

/* clean_text - copy text for a reply line: printable ASCII only */
static void
clean_text(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	if (outlen > 0)
		out[i] = '\0';
}

/* reply_on_error - what a store error answers under store.on_error */
const char *
reply_on_error(enum conf_on_error on_error)
{
	return on_error == CONF_ON_ERROR_ACCEPT ? "DUNNO" :
	    "DEFER_IF_PERMIT Service temporarily unavailable";
}

/* reply_set - reply (len >= 3 bytes): "action=ACTION" and the empty line */
void
reply_set(char *reply, size_t len, const char *action)
{
	int n = snprintf(reply, len, "action=%s\n\n", action);

	/* a cut reply still ends with its empty line */
	if (n < 0 || (size_t)n >= len) {
		ASSERT(len >= 3);
		reply[len - 3] = '\n';
		reply[len - 2] = '\n';
		reply[len - 1] = '\0';
	}
}

/* reply_refused - the action of a refusing limit */
int
reply_refused(const struct quota_verdict *v, char *reply, size_t len)
{
	char text[400], clean[400], action[500];

	quota_reply(v, text, sizeof(text));
	clean_text(text, clean, sizeof(clean));
	switch (v->action) {
	case CONF_QACTION_REJECT:
		snprintf(action, sizeof(action), "550 5.7.1 %s", clean);
		break;
	case CONF_QACTION_HOLD:
		snprintf(action, sizeof(action), "HOLD %s", clean);
		break;
	case CONF_QACTION_WARN:
		snprintf(action, sizeof(action), "DUNNO");
		break;
	case CONF_QACTION_DEFER:
	default:
		snprintf(action, sizeof(action), "450 4.7.1 %s", clean);
		break;
	}
	reply_set(reply, len, action);
	return 0;
}

/* reply_log_verdict - log a refusal or a warning of the request id */
void
reply_log_verdict(const char *id, const char *stage,
    const struct quota_verdict *v)
{
	if (v->result == QUOTA_REFUSE && v->limit != NULL)
		log_info("%s: policy=%s stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu retry=%llu", id,
		    conf_qaction_name(v->action), stage, v->limit->name, v->key,
		    (unsigned long long)v->used,
		    (unsigned long long)v->limit_value,
		    (unsigned long long)v->retry_after);
	else if (v->nwarned > 0 && v->limit != NULL)
		log_info("%s: policy=warn stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu", id, stage, v->limit->name,
		    v->key, (unsigned long long)v->used,
		    (unsigned long long)v->limit_value);
}
