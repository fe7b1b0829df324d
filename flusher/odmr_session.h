/* SPDX-License-Identifier: ISC */
/*
 * odmr_session.h - one ODMR (RFC 2645) session, in a forked child of
 * autoturn-flusher: greeting, EHLO, STARTTLS, AUTH CRAM-MD5 / PLAIN
 * against the customer's stored secret, ATRN, and on "250 OK now
 * reversing the connection" the delivery of the held mail over the same
 * connection by the flusher's own engine (deliver_reversed).
 */
#ifndef AUTOTURN_ODMR_SESSION_H
#define AUTOTURN_ODMR_SESSION_H

#include <openssl/ssl.h>

#include "addr.h"
#include "config.h"
#include "spool.h"

#define ODMR_PEER_MAX (IPADDR_TEXT_MAX + 16)

/* What the parent (odmr.c) hands to a session. */
struct odmr_session_args {
    const struct config *cfg;
    struct spool *spool;
    SSL_CTX *tls;                   /* server context; NULL = no STARTTLS */
    int fd;                         /* the client's connection */
    int status_fd;                  /* to the parent: one "AUTHFAIL" line per failed AUTH */
    char peer[ODMR_PEER_MAX];       /* "[addr]:port" for logs */
};

/* odmr_session - the child's whole life; never returns. */
void odmr_session(const struct odmr_session_args *a) __attribute__((noreturn));

#endif
