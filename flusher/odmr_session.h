/* SPDX-License-Identifier: ISC */
/*
 * odmr_session.h - one ODMR (RFC 2645) session, in a process forked by
 * the front (see odmr.h): greeting, EHLO, STARTTLS, AUTH CRAM-MD5 /
 * PLAIN (checked by the broker), ATRN, and after the broker's delivery
 * process answers 250, the relay of the bytes between the client and
 * that process until the delivery is over.
 */
#ifndef AUTOTURN_ODMR_SESSION_H
#define AUTOTURN_ODMR_SESSION_H

#include <openssl/ssl.h>

#include "config.h"
#include "odmr_chan.h"

#define ODMR_BROKER_TIMEOUT 30000  /* ms the broker may take to answer */

/* What the front hands to a session. */
struct odmr_session_args {
    const struct config *cfg;
    SSL_CTX *tls;                   /* server context; NULL = no STARTTLS */
    int fd;                         /* the client's connection */
    int broker_fd;                  /* channel to the broker */
    int status_fd;                  /* to the front: "AUTHOK" once authenticated */
    char peer[ODMR_PEER_MAX];       /* "[addr]:port" for logs */
};

/* odmr_session - the process's whole life; never returns. */
void odmr_session(const struct odmr_session_args *a) __attribute__((noreturn));

#endif
