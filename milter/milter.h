/* SPDX-License-Identifier: ISC */
/*
 * milter.h - what the modules of autoturn-milter share: the process-wide
 * state set up once at start-up (read-only afterwards, so every libmilter
 * thread may use it without locks: custdb and spool are thread-safe), the
 * per-message diversion (hold.c), recipient address parsing (rcptaddr.c),
 * the AutoTURN connect notice (notice.c), the listener (listen.c) and the
 * libmilter callbacks (session.c).
 */
#ifndef AUTOTURN_MILTER_H
#define AUTOTURN_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "config.h"
#include "custdb.h"
#include "customer.h"
#include "envelope.h"
#include "sockspec.h"
#include "spool.h"
#include "util.h"

#define MILTER_PROG "autoturn-milter"
#define MILTER_NAME "autoturn"              /* name given to smfi_register */
#define MILTER_CONN_MAX 512                 /* libmilter connection string */
#define MILTER_LOG_INTERVAL 60              /* seconds between repeated warnings */

/* The process-wide state (main.c fills it before smfi_main). */
struct milter_state {
    const struct config *cfg;
    struct custdb *db;
    struct spool *spool;
    char notify_path[SOCKSPEC_PATH_MAX];    /* flusher control socket; "" = off */
    _Atomic uint64_t max_recipients;        /* milter.max_recipients; SIGHUP may change it */
};
extern struct milter_state milter;

/* --- signals.c (autoturn-milter only): SIGHUP reloads, never stops --- */
/* signals_on_reload - fn runs in libmilter's signal thread on each SIGHUP. */
void signals_on_reload(void (*fn)(void));

/* --- session.c: the libmilter callbacks --- */
struct smfiDesc;
/* session_desc - the filter description for smfi_register. */
struct smfiDesc *session_desc(void);

/* --- rcptaddr.c: SMTP paths as the MTA passes them --- */
/* rcptaddr_domain - the domain of an MTA argument such as "<a@b>", "a@b",
 * "<@r1,@r2:u@d>" or "<\"a@b\"@d>": the text after the last '@' outside a
 * quoted local part. 1 found (copied into domain_r), 0 none (no '@', empty
 * domain, or longer than size - 1: such an address is never held). */
int rcptaddr_domain(const char *arg, char *domain_r, size_t size);

/* rcptaddr_mailbox - the mailbox without <> and without a source route,
 * for the envelope. 0, or -1 with *error_r "address too long" or
 * "control character in address". */
int rcptaddr_mailbox(const char *arg, char *addr_r, size_t size, const char **error_r);

/* rcptaddr_params - join ESMTP arguments argv[1..] with single spaces
 * into buf, keeping only the keywords in keep (NULL-terminated list,
 * case-insensitive). Returns 0, or -1 when they do not fit. */
int rcptaddr_params(char **argv, const char *const *keep, char *buf, size_t size);

/* --- hold.c: one message's held recipients, per customer --- */
struct hold;

struct hold_info {                 /* one stored copy, for the log line */
    const char *customer;
    const char *id;
    size_t nrcpt;
    uint64_t size;
};

struct hold *hold_new(void);                    /* NULL on ENOMEM */
void hold_free(struct hold *h);                 /* aborts open writers; NULL ok */
size_t hold_count(const struct hold *h);        /* held recipients (all customers) */
bool hold_has_customer(const struct hold *h, const char *customer);

/* hold_add - remember a held recipient: addr/params for the envelope,
 * raw exactly as the MTA gave it (for smfi_delrcpt). 0 / -1 (err). */
int hold_add(struct hold *h, const char *customer, const char *addr, const char *params,
             const char *raw, struct errbuf *err);

/* Where the message came from, for the Received: line the flusher
 * writes at delivery ("" = unknown; see envelope_set_client). */
struct hold_client {
    const char *addr;
    const char *name;
    const char *helo;
};

/* hold_open - open one spool writer per customer with its envelope
 * (idempotent). 0 / -1 (err names the customer). */
int hold_open(struct hold *h, struct spool *sp, const char *sender, const char *mail_params,
              const char *queue_id, const struct hold_client *client, struct errbuf *err);
bool hold_is_open(const struct hold *h);

/* hold_write - append message bytes to every writer. 0 / -1. */
int hold_write(struct hold *h, const void *buf, size_t len, struct errbuf *err);

/* hold_commit - commit every writer; all or none: on failure the copies
 * already committed are deleted again and -1 returned (err names the
 * customer). On success the ids are available through hold_info. */
int hold_commit(struct hold *h, struct spool *sp, struct errbuf *err);

/* hold_rollback - delete committed copies (after a later failure). */
void hold_rollback(struct hold *h, struct spool *sp);

/* hold_info - the i-th stored copy (0 <= i < hold_ncustomers). */
size_t hold_ncustomers(const struct hold *h);
void hold_info(const struct hold *h, size_t i, struct hold_info *info);

/* hold_foreach_raw - call fn with every held recipient as the MTA gave it;
 * stops at the first non-zero return and returns it. */
typedef int hold_raw_fn(void *ctx, const char *raw);
int hold_foreach_raw(const struct hold *h, hold_raw_fn *fn, void *ctx);

/* --- notice.c: the AutoTURN connect notice --- */
/* notice_connect - if a is a registered address of a customer with the
 * connect trigger, send a FLUSH notice to the flusher. Never blocks,
 * never fails the session; problems are logged (rate-limited). */
void notice_connect(const struct ipaddr *a);

/* notice_warn - a warning logged at most once per MILTER_LOG_INTERVAL per
 * slot (the number of suppressed ones is reported with the next). */
enum notice_slot {
    NOTICE_SLOT_LOOKUP,
    NOTICE_SLOT_SEND,
    NOTICE_SLOT_COUNT,
};
void notice_warn(enum notice_slot slot, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- listen.c: our socket spec in libmilter's syntax --- */
/* listen_conn_string - "unix:/p", "inet:PORT@HOST", "inet6:PORT@ADDR";
 * "*" becomes "inet6:PORT", one socket for IPv6 and IPv4, or "inet:PORT"
 * on a kernel without IPv6 or with net.ipv6.bindv6only = 1. */
int listen_conn_string(const struct sockspec *spec, char *buf, size_t size);

/* listen_setup - after smfi_opensocket: for unix, chmod to the spec's
 * mode; for inet, set TCP_NODELAY on libmilter's listening socket (Linux
 * accepted sockets inherit it). 0 / -1 (err). */
int listen_setup(const struct sockspec *spec, struct errbuf *err);

#endif
