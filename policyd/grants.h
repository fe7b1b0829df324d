/* SPDX-License-Identifier: ISC */
/*
 * grants.h - roaming relay grants: client address -> {user, customer,
 * source, expiry}, kept in memory (a hash table plus an expiry heap) and persisted
 * in the configured grant_file (a snapshot) and grant_file.journal (an
 * append-only log of creations and revocations since the snapshot).
 */
#ifndef AUTOTURN_POLICYD_GRANTS_H
#define AUTOTURN_POLICYD_GRANTS_H

#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "customer.h"
#include "peer.h"
#include "util.h"

#define GRANT_USER_MAX       255          /* bytes, without NUL */
#define GRANTS_MAX           4000000u     /* refuse new grants beyond this */
#define GRANTS_JOURNAL_MAX   200000u      /* journal lines before a snapshot */
#define GRANTS_SNAPSHOT_INTERVAL 600      /* seconds; snapshot a non-empty journal */

struct grants;

struct grant_info {
    struct ipaddr addr;
    const char *user;                     /* "" when none */
    const char *customer;                 /* "" when none */
    const char *source;                   /* GRANT_SOURCE_* (peer.h) */
    int64_t expires;                      /* unix time */
};

/* grants_new - an empty set persisted at path ("" = not persisted);
 * ttl is the configured default, used to pace journaling of renewals. */
struct grants *grants_new(const char *path, uint64_t ttl);
void grants_free(struct grants *g);

/* grants_load - read the snapshot and replay the journal (grants already
 * expired at now are dropped), then write a fresh snapshot and empty the
 * journal. A missing snapshot/journal is an empty set. 0 or -1 (err). */
int grants_load(struct grants *g, int64_t now, struct errbuf *err);

/* grants_set - create or renew the grant of a (user/customer may be NULL
 * or ""; source is one of GRANT_SOURCE_*, at most GRANT_SOURCE_MAX - 1
 * bytes). A new grant, or one whose user, customer or source changed, is
 * journaled; a renewal is journaled only when it extends the expiry last
 * written to disk by at least half the default ttl. 0, or -1 (err: out of
 * memory, too many grants; the in-memory grant is still valid when only
 * the journal write failed, which is logged by the caller). */
int grants_set(struct grants *g, const struct ipaddr *a, const char *user,
               const char *customer, const char *source, int64_t expires, int64_t now,
               struct errbuf *err);

/* grants_get - 1 and *info_r (strings valid until the next change) for a
 * live grant, 0 when none (an expired one is removed on the way). */
int grants_get(struct grants *g, const struct ipaddr *a, int64_t now, struct grant_info *info_r);

/* grants_revoke - 1 removed, 0 there was none, -1 journal write failed
 * (err; the grant is removed from memory anyway). */
int grants_revoke(struct grants *g, const struct ipaddr *a, struct errbuf *err);

/* grants_expire - drop every grant expired at now; returns how many. */
size_t grants_expire(struct grants *g, int64_t now);

/* grants_foreach - every live grant (any order); fn returns 0 to go on. */
typedef int grants_fn(void *ctx, const struct grant_info *info);
int grants_foreach(struct grants *g, int64_t now, grants_fn *fn, void *ctx);

size_t grants_count(const struct grants *g);

/* grants_snapshot_due - true when the journal holds GRANTS_JOURNAL_MAX
 * lines, or any line and the last snapshot is GRANTS_SNAPSHOT_INTERVAL old. */
bool grants_snapshot_due(const struct grants *g, int64_t now);

/* grants_snapshot - write all live grants to a temp file, fsync, rename
 * over the snapshot, fsync the directory, then empty the journal.
 * 0 or -1 (err; the old snapshot and the journal are then intact). */
int grants_snapshot(struct grants *g, int64_t now, struct errbuf *err);

#endif
