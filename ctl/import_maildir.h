/* SPDX-License-Identifier: ISC */
/*
 * import_maildir.h - held mail in the maildirs of the qmail recipes
 * (qmail-autoturn, qsmtpd): find every message in new/ and cur/, read its
 * envelope from the two lines qmail-local wrote on top, work out what it
 * becomes in our spool, and copy it there.
 *
 * What a message becomes: sender from Return-Path ("<>" stays the null
 * sender), recipient from Delivered-To without the prefix, arrival from
 * the maildir name (its leading seconds) or else the file's mtime, the
 * body from the third line on with every LF written as CR LF (what
 * serialsmtp sent; a file whose first line already ends in CR LF is
 * copied unchanged), and X-Autoturn-Queue-Id set to the message's import
 * tag: "import." and 32 hex digits of SHA-256 over the customer, the
 * maildir's unique name (without ":2,flags") and the file size. The tag
 * is the key of the import journal, and finds a copy in the spool after
 * a crash.
 */
#ifndef AUTOTURN_CTL_IMPORT_MAILDIR_H
#define AUTOTURN_CTL_IMPORT_MAILDIR_H

#include "import.h"
#include "spool.h"

/* imp_maildir_scan - add every message of md (new/ and cur/) to p as
 * mail of customer ci; each bad file is reported (FILE: why) and left
 * out. A missing maildir holds nothing (a note). 0, or -1 if a directory
 * cannot be read (reported). */
int imp_maildir_scan(struct imp_plan *p, size_t ci, const struct imp_maildir *md);

/* imp_msg_envelope - the envelope of m's copy (for customer) into e
 * (from envelope_init); 0 or -1 with err. */
int imp_msg_envelope(const struct imp_msg *m, const char *customer, struct envelope *e,
                     struct errbuf *err);

/* imp_msg_open - open m's source read-only (no symlinks) and check that
 * it is still the file that was scanned; the fd, or -1 with err. */
int imp_msg_open(const struct imp_msg *m, struct errbuf *err);

/* imp_msg_copy - m's body from fd (opened by imp_msg_open) into w. */
int imp_msg_copy(int fd, const struct imp_msg *m, struct spool_writer *w, struct errbuf *err);

#endif
