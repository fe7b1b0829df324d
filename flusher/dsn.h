/* SPDX-License-Identifier: ISC */
/*
 * dsn.h - delivery status notifications (RFC 3464) for held mail that
 * cannot be delivered (permanent failure or expiry) or is delayed, and
 * their injection through the local MTA.
 *
 * A DSN is multipart/report; report-type=delivery-status: a human part,
 * a message/delivery-status part (per-message and per-recipient fields:
 * Reporting-MTA, Arrival-Date, Final-Recipient, Original-Recipient from
 * ORCPT, Action, Status, Remote-MTA, Diagnostic-Code), and the original
 * headers (text/rfc822-headers; the full message when RET=FULL and it is
 * small enough). From: MAILER-DAEMON@<myhostname>, envelope sender <>.
 * Never bounce a bounce: when the original sender is <> the DSN goes to
 * the configured postmaster instead (a "relayed" notice is not sent for
 * the null sender at all: the caller's business).
 */
#ifndef AUTOTURN_DSN_H
#define AUTOTURN_DSN_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "envelope.h"
#include "spool.h"
#include "util.h"

#define DSN_FULL_MAX (1u << 20)   /* RET=FULL returns at most this many bytes of the message */

enum dsn_action {
    DSN_FAILED,
    DSN_DELAYED,
    DSN_RELAYED,                  /* RFC 3461 5.2.2: delivered to a server without DSN:
                                     no further notification will come (headers only) */
};

struct dsn_rcpt {
    const char *addr;             /* the envelope recipient */
    const char *orcpt;            /* ORCPT= value from the envelope params, or NULL */
    const char *status;           /* "5.1.1", "4.4.7" */
    const char *diagnostic;       /* "smtp; 550 5.1.1 no such user" or NULL */
    const char *remote_mta;       /* "mail.example.com" or NULL */
};

struct dsn {
    enum dsn_action action;
    const char *reporting_mta;    /* myhostname */
    const char *customer;         /* for the human part and logs */
    const char *reason;           /* human text: "the customer's server refused it", "held too long" */
    size_t nrcpt;
    const struct dsn_rcpt *rcpt;
};

/* dsn_notify_wants - does a recipient with these RCPT params want a DSN
 * of this kind ("SUCCESS", "FAILURE", "DELAY")? Without NOTIFY (or with
 * one that cannot be read): FAILURE and DELAY yes, SUCCESS no (RFC 3461
 * 4.1). */
bool dsn_notify_wants(const char *params, const char *kind);

/* dsn_recipient - who gets the DSN for this envelope: its sender, or
 * postmaster when the sender is <> (never bounce a bounce). */
const char *dsn_recipient(const struct envelope *env, const char *postmaster);

/* dsn_write - write the whole DSN message (headers + MIME parts, CRLF
 * line ends) to fd, reading the original from m (rewound first). */
int dsn_write(int fd, const struct dsn *d, struct spool_msg *m, const char *to, time_t now,
              struct errbuf *err);

/* dsn_send - build the DSN and inject it with null envelope sender,
 * by the configured method: "sendmail" (fork+exec sendmail_command
 * -f <> -oi -- TO, exit 0 required) or "smtp" (MAIL FROM:<> to
 * bounce_relay, 250 after the final dot required). 0 only when the MTA
 * has accepted it: only then may the caller delete the held copy. */
int dsn_send(const struct config_flusher *cfg, const struct dsn *d, struct spool_msg *m,
             const char *to, struct errbuf *err);

#endif
