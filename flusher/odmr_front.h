/* SPDX-License-Identifier: ISC */
/*
 * odmr_front.h - the ODMR front process (see odmr.h): started by the
 * broker while the daemon is root; becomes odmr.user, confines itself,
 * accepts connections and runs one session process per connection.
 *
 * Messages to the broker: READY (started), FAIL text= (could not start),
 * SESSION ip= peer= with the broker's end of the new session's channel.
 * From the broker: BLOCK ip= until= (refuse that address until then).
 */
#ifndef AUTOTURN_ODMR_FRONT_H
#define AUTOTURN_ODMR_FRONT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct odmr_front_args {
    const struct config *cfg;
    int chan;                       /* to the broker (SOCK_SEQPACKET) */
    const int *lfd;                 /* the listening sockets */
    size_t nlfd;
    SSL_CTX *tls;                   /* NULL: no STARTTLS */
};

/* odmr_front_run - the front's whole life; never returns. */
void odmr_front_run(const struct odmr_front_args *a) __attribute__((noreturn));

#endif
