/* SPDX-License-Identifier: ISC */
/*
 * addr.h - IPv4/IPv6 addresses and networks (CIDR) as values: parse,
 * print, mask, compare. An IPv4-mapped IPv6 address (::ffff:1.2.3.4) is
 * normalised to IPv4 everywhere, so a v4 client seen on a v6 socket
 * matches v4 entries.
 */
#ifndef AUTOTURN_ADDR_H
#define AUTOTURN_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define IPADDR_TEXT_MAX 46   /* INET6_ADDRSTRLEN */
#define IPNET_TEXT_MAX  50   /* address + "/128" */

struct ipaddr {
    int family;              /* AF_INET or AF_INET6 */
    uint8_t bytes[16];       /* network order; IPv4 uses bytes[0..3], rest 0 */
};

struct ipnet {
    struct ipaddr addr;      /* host bits are zero */
    unsigned prefix;         /* 0..32 or 0..128 */
};

/* ipaddr_bits - 32 or 128. */
unsigned ipaddr_bits(const struct ipaddr *a);

/* ipaddr_parse - one address, no prefix; 0 or -1 with *error_r static text. */
int ipaddr_parse(const char *s, struct ipaddr *a, const char **error_r);

/* ipnet_parse - "1.2.3.4" (a /32), "10.0.0.0/8", "2001:db8::/32", "::1".
 * Errors: bad address, prefix out of range ("1.2.3.4/33"), a prefix that
 * is not a plain decimal, host bits set ("10.0.0.1/8"). */
int ipnet_parse(const char *s, struct ipnet *n, const char **error_r);

/* ipaddr_from_sockaddr - from AF_INET/AF_INET6 sockaddr; -1 otherwise. */
int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *a);

/* ipaddr_mask - clear all bits after the first prefix bits. */
void ipaddr_mask(struct ipaddr *a, unsigned prefix);

bool ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b);

/* ipaddr_hash - FNV-1a of the address, mixed with seed (a per-process
 * random value, so that nobody can aim collisions at a table slot). */
uint64_t ipaddr_hash(const struct ipaddr *a, uint64_t seed);
bool ipnet_contains(const struct ipnet *n, const struct ipaddr *a);

/* format: returns buf ("1.2.3.4", "2001:db8::1", "10.0.0.0/8"; a host
 * network prints without "/32" or "/128"). */
const char *ipaddr_format(const struct ipaddr *a, char *buf, size_t size);
const char *ipnet_format(const struct ipnet *n, char *buf, size_t size);

#endif
