/* SPDX-License-Identifier: ISC */
/*
 * custdb_keys.c - how the compiled customer table names its records (the
 * layout is in custdb_keys.h). Owns no state.
 */
#include <string.h>
#include <sys/socket.h>

#include "custdb_keys.h"
#include "util.h"

uint32_t
custdb_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* custdb_key_net - kind, CUSTDB_NET_KEY_MIX bytes of a strong hash, prefix, masked
 * address. cdb's hash (djb) spreads short binary keys that differ only in
 * their last bytes very badly (16,896 distinct values for 1M consecutive
 * IPv4 /32 keys), so well-mixed bytes go first. */
size_t
custdb_key_net(uint8_t *key, const struct ipaddr *a, unsigned prefix)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    uint8_t *body = key + 1 + CUSTDB_NET_KEY_MIX;
    struct ipaddr m = *a;
    uint32_t h;

    ipaddr_mask(&m, prefix);
    key[0] = a->family == AF_INET ? '4' : '6';
    body[0] = (uint8_t)prefix;
    memcpy(body + 1, m.bytes, n);
    h = custdb_hash_bytes(key, 1) ^ custdb_hash_bytes(body, n + 1);
    memcpy(key + 1, &h, CUSTDB_NET_KEY_MIX);
    return 1 + CUSTDB_NET_KEY_MIX + 1 + n;
}

size_t
custdb_key_text(uint8_t *key, char kind, const char *text)
{
    size_t n = strlen(text);

    key[0] = (uint8_t)kind;
    memcpy(key + 1, text, n);
    return n + 1;
}