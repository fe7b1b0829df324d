/* SPDX-License-Identifier: ISC */
/*
 * logline.h - the one line the flusher logs per recipient of a held
 * message it delivered, deferred, bounced, expired or warned about, in
 * Postfix's shape so that one grep follows a message from the MTA's log
 * through the milter's hold line to the delivery:
 *
 *   ID: to=<RCPT>, orig_queue_id=QID, customer=C, relay=R, delay=N,
 *       dsn=X.Y.Z, status=S (TEXT)
 *
 * ID is the spool id (the milter's hold line starts with it too), QID the
 * MTA's queue id recorded at hold time (the field is left out when the
 * message has none: imported mail), delay whole seconds since the hold,
 * dsn the RFC 3463 code: ours when we decided, else the one in the
 * server's reply, else the reply's class (2.0.0, 4.0.0, 5.0.0).
 */
#ifndef AUTOTURN_LOGLINE_H
#define AUTOTURN_LOGLINE_H

#include <stddef.h>
#include <time.h>

#include "envelope.h"

#define LOGLINE_DSN_MAX 16                /* "5.7.1" or longer d.ddd.ddd, and NUL */

/* logline_dsn - the RFC 3463 code for the line: own (our decision) when
 * not NULL, else the enhanced code after a reply's 3 digits in text, else
 * the reply's class, else fallback ("2.0.0", "4.0.0", "5.0.0"). */
void logline_dsn(const char *own, const char *text, const char *fallback, char *buf,
                 size_t size);

/* logline_rcpt - log the line for recipient rcpt of the message id with
 * envelope env, held since env->arrival, at now. */
void logline_rcpt(const char *id, const struct envelope *env, const char *rcpt,
                  const char *customer, const char *relay, time_t now, const char *dsn,
                  const char *status, const char *text);

#endif
