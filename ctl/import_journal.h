/* SPDX-License-Identifier: ISC */
/*
 * import_journal.h - the record of what "autoturnctl import" has put into
 * the spool, so that no run imports a message twice: one line per
 * message, "TAG CUSTOMER SPOOL-ID SOURCE", appended and fdatasync'ed right
 * after the spool copy is durable and before the source is removed. The
 * file (default <spool>/.import-journal, mode 0600) is locked for the
 * whole of an --apply, so two imports never run at once.
 */
#ifndef AUTOTURN_CTL_IMPORT_JOURNAL_H
#define AUTOTURN_CTL_IMPORT_JOURNAL_H

#include <stdbool.h>

#include "util.h"

struct imp_journal;

/* imp_journal_open - read the journal at path (absent = empty). With
 * write: create it if needed, lock it (an import already running is an
 * error) and keep it open for imp_journal_add. 0 or -1 with err. */
int imp_journal_open(const char *path, bool write, struct imp_journal **j_r, struct errbuf *err);

/* imp_journal_has - was the message with this tag imported before? */
bool imp_journal_has(const struct imp_journal *j, const char *tag);

/* imp_journal_add - append and fdatasync one record. */
int imp_journal_add(struct imp_journal *j, const char *tag, const char *customer, const char *id,
                    const char *source, struct errbuf *err);

size_t imp_journal_count(const struct imp_journal *j);
void imp_journal_close(struct imp_journal *j);     /* NULL is fine */

#endif
