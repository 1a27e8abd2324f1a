/*
 * quota_key - the key a limit counts a message under (quota_key(): the
 * SASL user name, the sender, its domain, the client's address or
 * network, or "*"), and the same form for a key a person wrote in the
 * configuration or to outpostctl (quota_norm_key()).
 *
 * Pure functions: they write into the caller's buffer, cut to its size,
 * and allocate nothing.  quota_key() fails (-1) when the message has no
 * such key (no SASL login, no sender domain...); the others cannot fail.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "quota/quota.h"
#include "quota/quota_impl.h"
#include "util/cidr.h"
#include "util/str.h"

/*
 * quota_copy_trunc - s into out (outlen > 0), cut to outlen-1 bytes,
 * lower-cased if lower
 */
void
quota_copy_trunc(const char *s, char *out, size_t outlen, int lower)
{
	size_t i;

	if (!lower) {
		str_copy(out, s, outlen);
		return;
	}
	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
}

/* fmt_addr - addr (IPv4 mapped or IPv6) as text, optionally "/prefix" */
static void
fmt_addr(const uint8_t addr[16], int prefix, char *out, size_t outlen)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	char a[INET6_ADDRSTRLEN];
	int v4 = memcmp(addr, mapped, 12) == 0;

	if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr + 12 : addr, a,
	    sizeof(a)) == NULL)
		a[0] = '\0';
	if (prefix < 0)
		snprintf(out, outlen, "%s", a);
	else
		snprintf(out, outlen, "%s/%d", a, prefix);
}

/* net_key - the client_network key of addr under limit l */
static void
net_key(const struct conf_limit *l, const uint8_t addr[16], char *out,
    size_t outlen)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	int v4 = memcmp(addr, mapped, 12) == 0;
	unsigned int bits = v4 ? 96 + l->prefix4 : l->prefix6, i;
	uint8_t m[16];

	memcpy(m, addr, 16);
	for (i = 0; i < 128; i++)
		if (i >= bits)
			m[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
	fmt_addr(m, (int)(v4 ? l->prefix4 : l->prefix6), out, outlen);
}

/* quota_key - see quota.h */
int
quota_key(const struct conf_limit *l, const struct quota_who *who, char *key,
    size_t keylen)
{
	const char *at;

	if (keylen == 0)
		return -1;
	switch (l->key) {
	case CONF_QKEY_SASL_USERNAME:
		if (who->sasl_username == NULL || *who->sasl_username == '\0')
			return -1;
		quota_copy_trunc(who->sasl_username, key, keylen, 0);
		return 0;
	case CONF_QKEY_SENDER:
		if (who->sender == NULL)
			return -1;
		quota_copy_trunc(*who->sender ? who->sender : "<>", key,
		    keylen, 1);
		return 0;
	case CONF_QKEY_SENDER_DOMAIN:
		if (who->sender == NULL ||
		    (at = strrchr(who->sender, '@')) == NULL || at[1] == '\0')
			return -1;
		quota_copy_trunc(at + 1, key, keylen, 1);
		return 0;
	case CONF_QKEY_CLIENT_ADDRESS:
		if (who->client_addr == NULL)
			return -1;
		fmt_addr(who->client_addr, -1, key, keylen);
		return 0;
	case CONF_QKEY_CLIENT_NETWORK:
		if (who->client_addr == NULL)
			return -1;
		net_key(l, who->client_addr, key, keylen);
		return 0;
	case CONF_QKEY_GLOBAL:
		quota_copy_trunc("*", key, keylen, 0);
		return 0;
	}
	return -1;
}

/*
 * quota_norm_key - a key value written by a person (config, outpostctl) in the
 * form quota_key() gives it: senders lower-cased, addresses and networks
 * in their canonical text.
 */
void
quota_norm_key(const struct conf_limit *l, const char *in, char *out,
    size_t outlen)
{
	struct cidr net;
	uint8_t addr[16];

	switch (l->key) {
	case CONF_QKEY_SENDER:
	case CONF_QKEY_SENDER_DOMAIN:
		quota_copy_trunc(in, out, outlen, 1);
		return;
	case CONF_QKEY_CLIENT_ADDRESS:
		if (cidr_addr_parse(in, addr) == 0) {
			fmt_addr(addr, -1, out, outlen);
			return;
		}
		break;
	case CONF_QKEY_CLIENT_NETWORK:
		if (cidr_addr_parse(in, addr) == 0) {
			net_key(l, addr, out, outlen);
			return;
		}
		if (cidr_parse(in, &net, NULL, 0) == 0) {
			net_key(l, net.addr, out, outlen);
			return;
		}
		break;
	default:
		break;
	}
	quota_copy_trunc(in, out, outlen, 0);
}
