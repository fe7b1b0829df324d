/* SPDX-License-Identifier: ISC */
/*
 * customer.h - the customer record: what autoturn knows about one
 * customer, how names and domains are validated, and the record's
 * encoding inside the compiled table (custdb).
 */
#ifndef AUTOTURN_CUSTOMER_H
#define AUTOTURN_CUSTOMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "secret.h"
#include "util.h"

#define CUSTOMER_NAME_MAX   64     /* bytes, without NUL */
#define DOMAIN_MAX          253    /* bytes, without NUL or leading '.' */
#define CUSTOMER_DOMAINS_MAX 100000 /* per customer */
#define CUSTOMER_ADDRS_MAX   10000  /* per customer */
#define CUSTOMER_RECORD_MAX  (16u << 20) /* encoded record, bytes */

enum delivery_mode {
    DELIVERY_CONNECTING_IP,  /* to the address that triggered (if authorised) */
    DELIVERY_HOST,           /* to delivery_host[:port] */
    DELIVERY_MX,             /* to the MX hosts of delivery_host (a domain) */
};

enum tls_policy {
    TLS_NONE,
    TLS_MAY,
    TLS_ENCRYPT,
};

#define TRIGGER_CONNECT 0x1u     /* AutoTURN: a connect from a registered address */
#define TRIGGER_ETRN    0x2u
#define TRIGGER_ATRN    0x4u     /* ODMR; needs a secret */

struct customer {
    char name[CUSTOMER_NAME_MAX + 1];
    enum delivery_mode delivery;
    char delivery_host[DOMAIN_MAX + 3]; /* HOST: name or IPv6 literal without []; MX: domain */
    unsigned port;                    /* 1..65535, default 25 */
    enum tls_policy tls;              /* default TLS_MAY */
    unsigned triggers;                /* TRIGGER_* bits */
    bool relay;                       /* registered addresses may relay */
    bool has_secret;
    struct secret secret;
    uint64_t max_messages;            /* 0 = unlimited */
    uint64_t max_bytes;               /* 0 = unlimited */
    uint64_t max_age;                 /* seconds; 0 = the flusher's default */
    size_t ndomains;
    char **domains;                   /* lower-case; ".example.com" = all subdomains */
    size_t naddrs;
    struct ipnet *addrs;
    unsigned line;                    /* line in the source (0 if from a table) */
};

/* customer_name_valid - 1..64 bytes of [A-Za-z0-9._+-] (so a name can
 * never escape the spool directory), not "." or "..", not starting with
 * '.' or '-'. */
bool customer_name_valid(const char *name, const char **error_r);

/* domain_normalise - validate a domain (labels 1..63 of [A-Za-z0-9-_],
 * or UTF-8 bytes >= 0x80 for SMTPUTF8 names; total <= DOMAIN_MAX; no
 * leading/trailing '-' per label), lower-case ASCII into out (size >=
 * DOMAIN_MAX + 1) and strip one trailing dot. Returns 0 or -1. */
int domain_normalise(const char *in, char *out, size_t size, const char **error_r);

struct customer *customer_new(void);        /* defaults filled; NULL on ENOMEM */
void customer_free(struct customer *c);     /* NULL is fine */

int customer_add_domain(struct customer *c, const char *domain);  /* copies; 0/-1 ENOMEM */
int customer_add_addr(struct customer *c, const struct ipnet *net);

/* customer_encode - the record as stored in the table (malloc'd). */
int customer_encode(const struct customer *c, char **buf_r, size_t *len_r);

/* customer_decode - strict: any unknown field, bad value or missing name
 * is an error (a corrupt table is a lookup error, never "not found"). */
int customer_decode(const void *buf, size_t len, struct customer **c_r, struct errbuf *err);

const char *delivery_mode_name(enum delivery_mode m);  /* "connecting-ip", "host", "mx" */
const char *tls_policy_name(enum tls_policy p);        /* "none", "may", "encrypt" */
/* triggers_format - "connect etrn atrn" subset, or "none". */
const char *triggers_format(unsigned triggers, char *buf, size_t size);

#endif
