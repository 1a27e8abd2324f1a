/*
 * cidr - see cidr.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/cidr.h"
#include "util/parse.h"

static void
map_v4(const void *v4, uint8_t addr[16])
{
	memset(addr, 0, 10);
	addr[10] = addr[11] = 0xff;
	memcpy(addr + 12, v4, 4);
}

/* cidr_addr_parse - literal IPv4 or IPv6 address; 0 or -1 */
int
cidr_addr_parse(const char *s, uint8_t addr[16])
{
	struct in_addr v4;
	char tmp[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);

	/* Postfix and Sendmail write IPv6 clients as "IPv6:..." or "[...]". */
	if (strncasecmp(s, "IPv6:", 5) == 0)
		s += 5, n -= 5;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return -1;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		s = tmp;
	}
	if (inet_pton(AF_INET, s, &v4) == 1) {
		map_v4(&v4, addr);
		return 0;
	}
	return inet_pton(AF_INET6, s, addr) == 1 ? 0 : -1;
}

int
cidr_addr_from_sockaddr(const struct sockaddr *sa, uint8_t addr[16])
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		map_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    addr);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(addr,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
		return 0;
	}
	return -1;
}

int
cidr_parse(const char *s, struct cidr *c, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t prefix, max;
	int v4;

	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "\"%s\" is not a network", s);
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	v4 = strchr(host, ':') == NULL;
	if (cidr_addr_parse(host, c->addr) < 0) {
		snprintf(err, errlen, "\"%s\" is not an IP address", host);
		return -1;
	}
	max = v4 ? 32 : 128;
	prefix = max;
	if (slash && parse_u64(slash + 1, 0, max, &prefix, err, errlen) < 0)
		return -1;
	c->prefix = (unsigned int)prefix + (v4 ? 96 : 0);
	return 0;
}

int
cidr_match(const struct cidr *c, const uint8_t addr[16])
{
	unsigned int full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

int
cidr_list_match(const struct cidr *list, size_t n, const uint8_t addr[16])
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidr_match(&list[i], addr))
			return 1;
	return 0;
}
