/* SPDX-License-Identifier: ISC */
/*
 * spool.h - the per-customer maildir spool: <root>/<customer>/{tmp,new,cur}
 * plus <root>/<customer>/bad (malformed files moved aside),
 * <root>/<customer>/hold (held by the administrator: counted, listed,
 * never delivered), <root>/<customer>/.lock (flush lock) and
 * <root>/<customer>/.usage (the usage record: messages, bytes and oldest
 * arrival of new/, cur/ and hold/, kept up to date by every function here
 * that adds or removes a message).
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
 * id shown in logs and by "autoturnctl queue". Format: docs/spool-format.md.
 *
 * Code that adds or removes files in new/, cur/ or hold/ by other means than
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
#define SPOOL_HOLD_DIR  "hold"  /* messages the administrator put on hold */

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
    bool on_hold;            /* found in hold/ (spool_list_all only) */
};

/* spool_list - new/ and cur/, oldest first; a customer with no directory
 * has 0 entries. *v_r is malloc'd (free with x_free). */
int spool_list(struct spool *sp, const char *customer, struct spool_entry **v_r,
               size_t *n_r, struct errbuf *err);

/* spool_list_all - spool_list plus the messages on hold (on_hold = true). */
int spool_list_all(struct spool *sp, const char *customer, struct spool_entry **v_r,
                   size_t *n_r, struct errbuf *err);

/* every message, those on hold included (they count for the customer's
 * limits); on_hold says how many of them are on hold. */
struct spool_stats {
    uint64_t messages;
    uint64_t bytes;
    time_t oldest;           /* 0 if empty (spool_usage: also when not known) */
    uint64_t on_hold;        /* of messages, in hold/ (spool_stats only) */
};

/* spool_stats - messages, bytes and oldest arrival of new/, cur/ and
 * hold/, from the usage record: O(1), except that the spool is counted
 * again when the record cannot be trusted (missing, damaged, left dirty by a
 * process that died, written before the last boot, older than an hour)
 * or does not know the oldest arrival (after the oldest message left).
 * on_hold is counted in hold/ (usually missing: one failed open).
 * A customer with no directory has all zeros. */
int spool_stats(struct spool *sp, const char *customer, struct spool_stats *st,
                struct errbuf *err);

/* spool_usage - the same without the oldest arrival and on_hold (a quota
 * check): never counts the spool only to learn them. */
int spool_usage(struct spool *sp, const char *customer, struct spool_stats *st,
                struct errbuf *err);

/* spool_reconcile - count new/, cur/ and hold/ now and rewrite the usage
 * record (under its lock; concurrent writers wait). Nothing is moved or deleted.
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
/* spool_msg_peek - spool_msg_open for someone who only looks (autoturnctl
 * queue, show): finds the message in hold/ too, and never moves a file:
 * SPOOL_MALFORMED then says why in err and the file stays where it is. */
int spool_msg_peek(struct spool *sp, const char *customer, const char *id,
                   struct spool_msg **m_r, struct errbuf *err);
const char *spool_msg_path(const struct spool_msg *m);   /* <root>/<customer>/<sub>/<id> */
const struct envelope *spool_msg_envelope(const struct spool_msg *m);
uint64_t spool_msg_body_size(const struct spool_msg *m);
/* spool_msg_read - next body bytes; returns count, 0 at end, -1 on error. */
ssize_t spool_msg_read(struct spool_msg *m, void *buf, size_t len, struct errbuf *err);
/* spool_msg_rewind - back to the first body byte. */
int spool_msg_rewind(struct spool_msg *m, struct errbuf *err);
void spool_msg_close(struct spool_msg *m);   /* NULL is fine */
/* spool_msg_tail - the last min(2, body size) body bytes into last, their
 * count in *n_r; the read position does not move. 0 / -1. */
int spool_msg_tail(struct spool_msg *m, char last[2], size_t *n_r, struct errbuf *err);

/* --- changing --- */
/* spool_delete - unlink (new/, cur/ or hold/) and fsync the directory. */
int spool_delete(struct spool *sp, const char *customer, const char *id, struct errbuf *err);

/* spool_delete_delivered - unlink without syncing the directory, for a
 * message the remote side has accepted: losing the unlink in a crash
 * means one duplicate delivery, never a loss. Call spool_sync() once at
 * the end of a batch. */
int spool_delete_delivered(struct spool *sp, const char *customer, const char *id,
                           struct errbuf *err);

/* spool_sync - fsync the customer's new/ and cur/ directories (and hold/
 * if this process deleted from it), and learn
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

/* --- the administrator's hold (autoturnctl hold/release) --- */
/* spool_hold - move a message from new/ or cur/ into hold/ (created when
 * missing, owned like the customer directory), fsync both directories.
 * The id stays the same. Already on hold: -1 with errno EALREADY. */
int spool_hold(struct spool *sp, const char *customer, const char *id, struct errbuf *err);

/* spool_release - move a message from hold/ back to new/ (to cur/ when
 * its name carries maildir flags), fsync both. Not on hold: -1, errno
 * EALREADY when it is in new/ or cur/, ENOENT when it is nowhere. */
int spool_release(struct spool *sp, const char *customer, const char *id, struct errbuf *err);

/* spool_find - which customer's spool holds message id (new/, cur/ or
 * hold/)? 1 (name in customer_r), 0 nowhere, -1 error. Looks at every
 * customer directory: for the administrator's commands, not for daemons. */
int spool_find(struct spool *sp, const char *id, char *customer_r, size_t size,
               struct errbuf *err);

#endif
