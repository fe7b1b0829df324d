/* SPDX-License-Identifier: ISC */
/*
 * spool.h - the per-customer maildir spool: <root>/<customer>/{tmp,new,cur}
 * plus <root>/<customer>/bad (malformed files moved aside),
 * <root>/<customer>/.lock (flush lock) and <root>/<customer>/.usage (the
 * usage record: messages, bytes and oldest arrival, kept up to date by
 * every function here that adds or removes a message).
 *
 * Writing is durable: a file is created in tmp/ (O_CREAT|O_EXCL|O_NOFOLLOW,
 * mode 0600), written, fsync'ed, linked into new/ under its id (the tmp/
 * name plus ",S=<size>") and counted, new/ is fsync'ed (one fsync serves
 * every writer of the customer that linked before it started), then the
 * tmp/ name is removed. Any failure unlinks the temp file (one cleanup
 * path). Reading streams with bounded memory. Listing is oldest first.
 * Directories are created mode 0700.
 *
 * File names: "<sec>.M<usec>P<pid>Q<seq>.<host>,S=<size>" (Maildir++
 * style); names without ",S=" (written before it existed, or by other
 * tools) are still read: their size is the file's. The name is the spool
 * id shown in logs and by "autoturnctl queue". Format: doc/spool-format.md.
 *
 * Code that adds or removes files in new/ or cur/ by other means than
 * these functions must call spool_reconcile() afterwards.
 *
 * Thread-safe: a struct spool holds its root, hostname and a cache of
 * open customer directories (with a lock); a forked child does not use
 * its parent's cache.
 */
#ifndef AUTOTURN_SPOOL_H
#define AUTOTURN_SPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "envelope.h"
#include "util.h"

#define SPOOL_ID_MAX 128
#define SPOOL_MALFORMED (-2)   /* return value: file was malformed and moved to bad/ */

struct spool;

struct spool *spool_new(const char *root);   /* NULL on ENOMEM */
void spool_free(struct spool *sp);
const char *spool_root(const struct spool *sp);

/* spool_customer_dir - "<root>/<customer>"; -1 if the name is invalid or too long. */
int spool_customer_dir(const struct spool *sp, const char *customer, char *buf, size_t size);

/* --- writing --- */
struct spool_writer;

/* spool_writer_open - create the temp file for env->customer (creating the
 * customer's directories if needed) and write the envelope. */
int spool_writer_open(struct spool *sp, const struct envelope *env,
                      struct spool_writer **w_r, struct errbuf *err);
int spool_writer_write(struct spool_writer *w, const void *buf, size_t len, struct errbuf *err);
/* spool_writer_commit - fsync, link into new/, fsync new/, unlink tmp.
 * Frees w in all cases; on failure nothing is left behind. id_r gets the id. */
int spool_writer_commit(struct spool_writer *w, char id_r[SPOOL_ID_MAX], struct errbuf *err);
/* spool_writer_abort - unlink the temp file and free w (NULL is fine). */
void spool_writer_abort(struct spool_writer *w);

/* --- listing and accounting --- */
struct spool_entry {
    char id[SPOOL_ID_MAX];
    uint64_t size;           /* bytes: ",S=" of the name, else the file's size */
    time_t arrival;          /* from the file name */
    bool in_cur;             /* found in cur/ (moved there by a mail tool) */
};

/* spool_list - new/ and cur/, oldest first; a customer with no directory
 * has 0 entries. *v_r is malloc'd (free with x_free). */
int spool_list(struct spool *sp, const char *customer, struct spool_entry **v_r,
               size_t *n_r, struct errbuf *err);

struct spool_stats {
    uint64_t messages;
    uint64_t bytes;
    time_t oldest;           /* 0 if empty (spool_usage: also when not known) */
};

/* spool_stats - messages, bytes and oldest arrival of new/ and cur/, from
 * the usage record: O(1), except that the spool is counted again when
 * the record cannot be trusted (missing, damaged, left dirty by a
 * process that died, written before the last boot, older than an hour)
 * or does not know the oldest arrival (after the oldest message left).
 * A customer with no directory has all zeros. */
int spool_stats(struct spool *sp, const char *customer, struct spool_stats *st,
                struct errbuf *err);

/* spool_usage - the same without the oldest arrival (a quota check):
 * never counts the spool only to learn it. */
int spool_usage(struct spool *sp, const char *customer, struct spool_stats *st,
                struct errbuf *err);

/* spool_reconcile - count new/ and cur/ now and rewrite the usage record
 * (under its lock; concurrent writers wait). Nothing is moved or deleted.
 * st gets the counted figures. */
int spool_reconcile(struct spool *sp, const char *customer, struct spool_stats *st,
                    struct errbuf *err);

/* spool_id_size - the size in an id's ",S=<size>": 1 found, 0 none. */
int spool_id_size(const char *id, uint64_t *size_r);

/* spool_customers - names of the customer directories present (sorted),
 * malloc'd array of malloc'd strings; free with spool_names_free. */
int spool_customers(struct spool *sp, char ***names_r, size_t *n_r, struct errbuf *err);
void spool_names_free(char **names, size_t n);

/* --- reading --- */
struct spool_msg;

/* spool_msg_open - open and parse the envelope. 0 ok; -1 error (file
 * kept); SPOOL_MALFORMED: the envelope was missing or garbled, the file
 * was moved to bad/ and a warning logged. */
int spool_msg_open(struct spool *sp, const char *customer, const char *id,
                   struct spool_msg **m_r, struct errbuf *err);
const struct envelope *spool_msg_envelope(const struct spool_msg *m);
uint64_t spool_msg_body_size(const struct spool_msg *m);
/* spool_msg_read - next body bytes; returns count, 0 at end, -1 on error. */
ssize_t spool_msg_read(struct spool_msg *m, void *buf, size_t len, struct errbuf *err);
/* spool_msg_rewind - back to the first body byte. */
int spool_msg_rewind(struct spool_msg *m, struct errbuf *err);
void spool_msg_close(struct spool_msg *m);   /* NULL is fine */

/* --- changing --- */
/* spool_delete - unlink (new/ or cur/) and fsync the directory. */
int spool_delete(struct spool *sp, const char *customer, const char *id, struct errbuf *err);

/* spool_delete_delivered - unlink without syncing the directory, for a
 * message the remote side has accepted: losing the unlink in a crash
 * means one duplicate delivery, never a loss. Call spool_sync() once at
 * the end of a batch. */
int spool_delete_delivered(struct spool *sp, const char *customer, const char *id,
                           struct errbuf *err);

/* spool_sync - fsync the customer's new/ and cur/ directories, and learn
 * the oldest arrival again if deletions made it unknown (counting the
 * spool once: the end of a batch is the place for it). */
int spool_sync(struct spool *sp, const char *customer, struct errbuf *err);

/* spool_rewrite_envelope - atomically replace the envelope of a message
 * (e.g. keep only the recipients that were deferred): write a new file in
 * tmp/ with the new envelope and the same body, fsync, rename over the
 * old name, fsync. The id stays the same. */
int spool_rewrite_envelope(struct spool *sp, const char *customer, const char *id,
                           const struct envelope *env, struct errbuf *err);

/* spool_lock - take the customer's flush lock (flock on .lock). Returns 1
 * and *fd_r when locked, 0 if held by someone else (wait = false), -1 error. */
int spool_lock(struct spool *sp, const char *customer, bool wait, int *fd_r, struct errbuf *err);
void spool_unlock(int fd);

#endif
