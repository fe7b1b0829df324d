/* SPDX-License-Identifier: ISC */
/*
 * odmr_deliver.h - the delivery process of one ODMR turnaround (see
 * odmr.h): forked by the broker for a session that authenticated as a
 * customer and said ATRN. Runs as the flusher's user with the spool.
 */
#ifndef AUTOTURN_ODMR_DELIVER_H
#define AUTOTURN_ODMR_DELIVER_H

#include "config.h"
#include "odmr_parse.h"           /* ODMR_DOMAINS_MAX */
#include "spool.h"


struct odmr_delivery_args {
    const struct config *cfg;
    struct spool *spool;
    const char *customer;           /* as the broker authenticated it */
    const char *domains;            /* "d1,d2,..." as asked; "" = all */
    int fd;                         /* the data channel to the session */
    int status_fd;                  /* its EOF tells the broker this process ended */
    const char *peer;               /* "[addr]:port" for logs */
};

/* odmr_delivery - the whole life of the process; never returns. Checks
 * the domains against the customer table, takes the customer's spool
 * lock, writes one line "ATRN code=NNN text=..." to fd (250: the
 * turnaround; 450 a domain is not the customer's, 451 busy or an error,
 * 453 nothing held), and after 250 runs the flush engine over fd
 * (deliver_reversed: fd is the customer's SMTP server, relayed by the
 * session). */
void odmr_delivery(const struct odmr_delivery_args *a) __attribute__((noreturn));

#endif
