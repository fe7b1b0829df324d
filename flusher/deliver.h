/* SPDX-License-Identifier: ISC */
/*
 * deliver.h - one flush of one customer's spool, run in a forked child
 * of autoturn-flusher: who may receive it (authorisation, checked again
 * here), where it goes (the trigger address, the fixed host, or the MX
 * hosts), the SMTP transactions, and what happens to each message and
 * recipient afterwards (delete, keep, rewrite, bounce with a DSN).
 */
#ifndef AUTOTURN_DELIVER_H
#define AUTOTURN_DELIVER_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"
#include "customer.h"
#include "spool.h"
#include "util.h"

#define DELIVER_TARGETS_MAX 16     /* addresses tried per flush (MX hosts x addresses) */
#define DELIVER_PROG "autoturn-flusher"

struct deliver_req {
    const struct config *cfg;
    struct spool *spool;
    const struct customer *cust;
    const char *to;                /* trigger address from to=, "" if none */
    const char *reason;            /* for the log: connect, etrn, manual, ... */
    int client_fd;                 /* the waiting client (PROGRESS, final line), or -1 */
    int status_fd;                 /* write end of the status pipe to the parent */
};

/* deliver_authorise - may this customer's mail be delivered for a
 * request naming to (may be "")? 1 yes; 0 refused (err says why); -1 to
 * is not an address (err). delivery connecting-ip: to must lie in one
 * of the customer's registered networks; without to, the customer's
 * registered single addresses are used (none: refused). host / mx: to
 * is never used as the target, so any to is fine. A to outside the
 * registered networks is accepted when autoturn-policyd (the socket set
 * by deliver_set_grant_socket) answers CHECK with a live grant for this
 * customer; no answer within 2 s, or any other answer, is a refusal. */
int deliver_authorise(const struct customer *c, const char *to, struct errbuf *err);

/* deliver_set_grant_socket - policyd's control socket path (kept, not
 * copied); NULL or "" = grants are not consulted. */
void deliver_set_grant_socket(const char *path);

/* deliver_child - the child's whole life: signals back to default,
 * close inherited descriptors, lock, connect, deliver, report, exit.
 * Writes one "RESULT delivered=N deferred=N bounced=N failed=0|1
 * busy=0|1" line to status_fd just before exiting. */
void deliver_child(const struct deliver_req *r) __attribute__((noreturn));

/* deliver_child_setup - what every forked child of the daemon does
 * first (deliver_child, the expiry sweep): default signal dispositions
 * (dsn_send waits for its own sendmail child: SIGCHLD must not be caught
 * or ignored), SIGPIPE ignored, an empty signal mask, every inherited
 * descriptor >= 3 closed except keep1 (>= 0) and keep2 (-1: none),
 * logging opened again. */
void deliver_child_setup(const struct config *cfg, int keep1, int keep2);


struct deliver_result {
    unsigned long delivered, deferred, bounced;
    bool failed;                   /* no connection, or nothing delivered but deferred */
    bool busy;                     /* the spool lock was held by another process */
};
/* deliver_any_for - is any
 of the held messages v[0..n) for a recipient
 * in one of the domains only[0..nonly) (or below one)? only == NULL:
 * any message at all. 1 yes, 0 no, -1 error (err). Opens envelopes. */
int deliver_any_for(const struct deliver_req *r, const char *const *only, size_t nonly,
                    const struct spool_entry *v, size_t n, struct errbuf *err);

/* deliver_reversed - an ODMR turnaround (RFC 2645): the customer's side of
 * the connection fd (TLS session ssl/ctx, or NULL) is now the SMTP server.
 * Reads its greeting (waiting at least greeting_timeout seconds), then
 * delivers v[0..n) as any flush does (same client, same outcome rules,
 * bounces, logs), only to recipients in only[] (NULL: all), and QUITs.
 * The caller holds the customer's spool lock. fd, ssl and ctx are
 * consumed. res gets the counts. */
void deliver_reversed(const struct deliver_req *r, int fd, SSL_CTX *ctx, SSL *ssl,
                      const char *peer, unsigned greeting_timeout, const char *const *only,
                      size_t nonly, const struct spool_entry *v, size_t n,
                      struct deliver_result *res);

/* deliver_result_parse - read a RESULT line; 0 or -1. */
int deliver_result_parse(const char *line, size_t len, struct deliver_result *r);

#endif
