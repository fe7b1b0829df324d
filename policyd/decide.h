/* SPDX-License-Identifier: ISC */
/*
 * decide.h - what autoturn-policyd answers to one policy request, and the
 * side effects that go with it: recording a grant on SMTP AUTH, the
 * AutoTURN flush notice, and flush requests on ETRN.
 */
#ifndef AUTOTURN_POLICYD_DECIDE_H
#define AUTOTURN_POLICYD_DECIDE_H

#include <stdint.h>

#include "config.h"
#include "custdb.h"
#include "grants.h"
#include "policy.h"

#define DECIDE_NOTIFY_SLOTS 65536u     /* AutoTURN dedup cache (power of two) */

/* Reply texts (the client sees them after Postfix's own prefix). */
#define DECIDE_ETRN_DENIED   "450 4.7.1 ETRN for %s not allowed from this address"
#define DECIDE_ETRN_DISABLED "450 4.7.1 ETRN is not enabled for %s"
#define DECIDE_TEMPFAIL      "451 4.3.0 try again later"

struct decide_notify;

struct decide {
    const struct config *cfg;
    struct custdb *db;
    struct grants *grants;
    struct decide_notify *notify;      /* DECIDE_NOTIFY_SLOTS entries */
    uint64_t seed;
};

/* decide_init - 0, or -1 when out of memory. */
int decide_init(struct decide *d, const struct config *cfg, struct custdb *db,
                struct grants *g);
void decide_free(struct decide *d);

/* decide_request - the action for req into action (e.g. "OK", "DUNNO",
 * "450 4.7.1 ..."). trusted: the request came from a peer the kernel or
 * the admin vouches for; only then does sasl_username create a grant or
 * authorise ETRN. Never fails: a table or journal error gives the safe
 * answer (DUNNO for relay, DECIDE_TEMPFAIL for ETRN) and is logged. */
void decide_request(struct decide *d, const struct policy_request *req, bool trusted,
                    int64_t now, char *action, size_t size);

/* decide_flush - send "FLUSH customer= [to=] reason= source=policyd" to
 * the flusher without waiting; 0 sent, -1 not sent (logged). */
int decide_flush(struct decide *d, const char *customer, const char *to, const char *reason);

#endif
