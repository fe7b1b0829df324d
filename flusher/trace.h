/* SPDX-License-Identifier: ISC */
/*
 * trace.h - trace information the flusher adds to mail it delivers: our
 * Received: line (RFC 5321 4.4) on every delivered copy of a held
 * message, and the RFC 5322 date-time that it and the DSNs use.
 */
#ifndef AUTOTURN_TRACE_H
#define AUTOTURN_TRACE_H

#include <stddef.h>
#include <time.h>

#include "envelope.h"

#define TRACE_DATE_MAX     40          /* "Thu, 01 Jan 1970 00:00:00 +0000" + NUL */
#define TRACE_RECEIVED_MAX 2048        /* the whole Received: header, CRLFs included */
#define TRACE_FOR_MAX      900         /* a longer recipient gets no "for" clause */

/* trace_date - RFC 5322 3.3 date-time of t in local time, independent of
 * the locale. */
void trace_date(char *buf, size_t size, time_t t);

/* trace_received - our Received: header for one delivered copy of the
 * message whose envelope is env, folded, with CRLF line ends:
 *
 *   Received: from HELO (NAME [ADDR])
 *           by BY (autoturn) id QUEUEID
 *           for <RCPT>; DATE
 *
 * from the client recorded at hold time (a file without it: no "from"
 * clause; without HELO: "from NAME ([ADDR])" or "from [ADDR]"; an IPv6
 * address as [IPv6:...]), by = our host name, the MTA's queue id when it
 * was recorded, "for" when the copy goes to one recipient (rcpt, NULL
 * otherwise), and the hold's date (env->arrival). 0, or -1 if buf is too
 * small. */
int trace_received(const struct envelope *env, const char *by, const char *rcpt, char *buf,
                   size_t size);

#endif
