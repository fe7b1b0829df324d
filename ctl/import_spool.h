/* SPDX-License-Identifier: ISC */
/*
 * import_spool.h - carrying a plan's held mail into our spool, through the
 * spool API (lib/spool.h), exactly once: per customer under its flush
 * lock; per message: the copy is committed (durable), then recorded in the
 * journal (fdatasync), then the source is removed (unless --copy) and its
 * directory synced. A copy that a crash left unrecorded is found again by
 * its tag (X-Autoturn-Queue-Id) and recorded instead of copied twice.
 *
 * Run as root with a spool owned by another user (the daemons' user), the
 * spool is written with that user's effective ids, so the daemons can
 * read and delete what was imported; the sources are read and removed as
 * root.
 */
#ifndef AUTOTURN_CTL_IMPORT_SPOOL_H
#define AUTOTURN_CTL_IMPORT_SPOOL_H

#include "import.h"
#include "import_journal.h"

struct imp_spool_result {
    uint64_t imported, bytes;   /* copied now */
    uint64_t already;           /* in the journal from an earlier run */
    uint64_t recovered;         /* copied by a run that was cut short; now recorded */
    uint64_t removed;           /* source files removed */
};

/* imp_spool_held - each customer's held_msgs/held_bytes from the spool
 * (read only; a spool that does not exist yet holds nothing). */
int imp_spool_held(struct imp_plan *p, struct errbuf *err);

/* imp_spool_import - import every message of p that is not done. Stops at
 * the first error (err names it); what was imported so far is recorded. */
int imp_spool_import(struct imp_plan *p, struct imp_journal *j, struct imp_spool_result *r,
                     struct errbuf *err);

#endif
