/*
 * cidr - IPv4/IPv6 networks in prefix notation and address matching.
 *
 * IPv4 addresses are kept as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one
 * network list matches clients of either family; "127.0.0.0/8" matches
 * both 127.0.0.1 and ::ffff:127.0.0.1.
 */
#ifndef OUTPOST_CIDR_H
#define OUTPOST_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

struct cidr {
	uint8_t addr[16];
	unsigned int prefix;	/* 0..128, counted on the mapped form */
};

int cidr_parse(const char *, struct cidr *, char *err, size_t errlen);
int cidr_addr_parse(const char *, uint8_t addr[16]);
int cidr_addr_from_sockaddr(const struct sockaddr *, uint8_t addr[16]);
int cidr_match(const struct cidr *, const uint8_t addr[16]);
int cidr_list_match(const struct cidr *, size_t n, const uint8_t addr[16]);

#endif
