/* SPDX-License-Identifier: ISC */
/*
 * custdb_keys.h - the key layout of the compiled customer table, shared by
 * the compiler (custdb_compile.c) and the reader (custdb.c); nothing else
 * should build table keys.
 *
 * Key layout (every value written by custdb_compile.c only):
 *   "\0autoturn"            "v1 customers=N v4=L v6=L" (L: prefix lengths
 *                           present, longest first, comma-separated)
 *   "N" name                customer record (customer_encode)
 *   "D" domain              name                (exact domain)
 *   "S" domain              name                (".domain": subdomains only)
 *   "4" H prefix addr[4]    name "\0" network   (address masked to prefix;
 *   "6" H prefix addr[16]   name "\0" network    H: 4 hash bytes, see custdb_key_net)
 * A domain lookup probes "D" then "S" for each parent (one probe per
 * label); an address lookup probes once per prefix length present.
 */
#ifndef AUTOTURN_CUSTDB_KEYS_H
#define AUTOTURN_CUSTDB_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "customer.h"

#define CUSTDB_META_KEY      "\0autoturn"
#define CUSTDB_META_KEY_LEN  9
#define CUSTDB_META_VERSION  "v1"
#define CUSTDB_META_TEXT_MAX 1024
#define CUSTDB_NET_KEY_MIX   4                     /* hash bytes in front of a network key */
#define CUSTDB_KEY_MAX       (1 + DOMAIN_MAX + 2)  /* >= 1 + CUSTDB_NET_KEY_MIX + 1 + 16 */

/* custdb_hash_bytes - a well-mixed 32-bit hash (FNV-1a + finaliser). */
uint32_t custdb_hash_bytes(const void *p, size_t n);

/* custdb_key_net - the key of a network (address masked to prefix) into
 * key (>= CUSTDB_KEY_MAX bytes); returns its length. */
size_t custdb_key_net(uint8_t *key, const struct ipaddr *a, unsigned prefix);

/* custdb_key_text - kind byte then text; returns the length. */
size_t custdb_key_text(uint8_t *key, char kind, const char *text);

#endif
