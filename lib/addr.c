/* SPDX-License-Identifier: ISC */
/*
 * addr.c - IPv4/IPv6 addresses and CIDR networks as plain values: parse,
 * print, mask, compare. Owns no state. An IPv4-mapped IPv6 address is
 * turned into IPv4 on the way in, so every later comparison is simple.
 *
 * SECURITY: parses text from the customer source, the policy protocol and
 * the command line; input length is capped (IPNET_TEXT_MAX) before any
 * copy, and the prefix must be a plain decimal.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "util.h"

static const char err_bad_addr[] = "not an IPv4 or IPv6 address";
static const char err_prefix_nan[] = "prefix length is not a decimal number";
static const char err_prefix_range[] = "prefix length out of range";
static const char err_host_bits[] = "host bits set after the prefix length";

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

unsigned
ipaddr_bits(const struct ipaddr *a)
{
    return a->family == AF_INET ? 32 : 128;
}

/* unmap - ::ffff:a.b.c.d becomes the IPv4 address a.b.c.d. */
static void
unmap(struct ipaddr *a)
{
    if (a->family != AF_INET6 || memcmp(a->bytes, v4mapped, sizeof(v4mapped)) != 0)
        return;
    a->family = AF_INET;
    memmove(a->bytes, a->bytes + 12, 4);
    memset(a->bytes + 4, 0, 12);
}

/* parse_raw - one address as written, without unmapping. */
static int
parse_raw(const char *s, struct ipaddr *a, const char **error_r)
{
    memset(a, 0, sizeof(*a));
    if (strlen(s) >= IPADDR_TEXT_MAX) {
        *error_r = err_bad_addr;
        return -1;
    }
    if (inet_pton(AF_INET, s, a->bytes) == 1) {
        a->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, a->bytes) == 1) {
        a->family = AF_INET6;
        return 0;
    }
    *error_r = err_bad_addr;
    return -1;
}

int
ipaddr_parse(const char *s, struct ipaddr *a, const char **error_r)
{
    if (parse_raw(s, a, error_r) < 0)
        return -1;
    unmap(a);
    return 0;
}

/* parse_prefix - 1 to 3 decimal digits, at most max. */
static int
parse_prefix(const char *s, unsigned max, unsigned *prefix, const char **error_r)
{
    unsigned v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 3) {
            *error_r = (s[i] >= '0' && s[i] <= '9') ? err_prefix_range : err_prefix_nan;
            return -1;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (i == 0) {
        *error_r = err_prefix_nan;
        return -1;
    }
    if (v > max) {
        *error_r = err_prefix_range;
        return -1;
    }
    *prefix = v;
    return 0;
}

int
ipnet_parse(const char *s, struct ipnet *n, const char **error_r)
{
    char text[IPNET_TEXT_MAX + 1];
    struct ipaddr masked;
    char *slash;

    if (str_copy(text, sizeof(text), s) < 0) {
        *error_r = err_bad_addr;
        return -1;
    }
    if ((slash = strchr(text, '/')) != NULL)
        *slash = '\0';
    if (parse_raw(text, &n->addr, error_r) < 0)
        return -1;
    n->prefix = ipaddr_bits(&n->addr);
    if (slash != NULL && parse_prefix(slash + 1, n->prefix, &n->prefix, error_r) < 0)
        return -1;
    masked = n->addr;
    ipaddr_mask(&masked, n->prefix);
    if (!ipaddr_equal(&masked, &n->addr)) {
        *error_r = err_host_bits;
        return -1;
    }
    if (n->addr.family == AF_INET6 && n->prefix >= 96
        && memcmp(n->addr.bytes, v4mapped, sizeof(v4mapped)) == 0) {
        unmap(&n->addr);
        n->prefix -= 96;
    }
    return 0;
}

int
ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

        a->family = AF_INET;
        memcpy(a->bytes, &sin->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

        a->family = AF_INET6;
        memcpy(a->bytes, &sin6->sin6_addr, 16);
        unmap(a);
        return 0;
    }
    return -1;
}

void
ipaddr_mask(struct ipaddr *a, unsigned prefix)
{
    unsigned bits = ipaddr_bits(a), i;

    if (prefix >= bits)
        return;
    if (prefix % 8 != 0)
        a->bytes[prefix / 8] &= (uint8_t)(0xff00u >> (prefix % 8));
    for (i = (prefix + 7) / 8; i < 16; i++)
        a->bytes[i] = 0;
}

uint64_t
ipaddr_hash(const struct ipaddr *a, uint64_t seed)
{
    uint64_t x = seed ^ 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < sizeof(a->bytes); i++)
        x = (x ^ a->bytes[i]) * 0x100000001b3ull;
    x ^= (uint64_t)a->family;
    return x ^ (x >> 32);
}

bool
ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, 16) == 0;
}

bool
ipnet_contains(const struct ipnet *n, const struct ipaddr *a)
{
    struct ipaddr masked = *a;

    if (a->family != n->addr.family)
        return false;
    ipaddr_mask(&masked, n->prefix);
    return ipaddr_equal(&masked, &n->addr);
}

const char *
ipaddr_format(const struct ipaddr *a, char *buf, size_t size)
{
    if (inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->bytes, buf,
                  (socklen_t)size) == NULL && size > 0)
        buf[0] = '\0';
    return buf;
}

const char *
ipnet_format(const struct ipnet *n, char *buf, size_t size)
{
    char addr[IPADDR_TEXT_MAX];

    ipaddr_format(&n->addr, addr, sizeof(addr));
    if (n->prefix == ipaddr_bits(&n->addr)) {
        if (str_copy(buf, size, addr) < 0 && size > 0)
            buf[0] = '\0';
    } else if (str_printf(buf, size, "%s/%u", addr, n->prefix) < 0 && size > 0) {
        buf[0] = '\0';
    }
    return buf;
}
