/* SPDX-License-Identifier: ISC */
/*
 * odmr_limits.h - who may try to authenticate to the ODMR service now
 * (see odmr.h): failed AUTH attempts counted per client address and per
 * account, in the broker. The settings (config_odmr) are read at each
 * call, so a reload takes effect at once.
 */
#ifndef AUTOTURN_ODMR_LIMITS_H
#define AUTOTURN_ODMR_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "config.h"

struct odmr_limits;

/* odmr_limits_new - NULL when out of memory. oc must stay valid. */
struct odmr_limits *odmr_limits_new(const struct config_odmr *oc);
void odmr_limits_free(struct odmr_limits *l);

/* odmr_limits_blocked - has a reached address_failures within the
 * current address_block window? */
bool odmr_limits_blocked(struct odmr_limits *l, const struct ipaddr *a, time_t now);

/* odmr_limits_account_wait - 0 when an attempt for account (any
 * syntactically valid name: unknown names are throttled like real ones,
 * so that the answers reveal nothing) from a may be checked now, else the
 * seconds it must wait. An address that authenticated for the account
 * before never waits. */
time_t odmr_limits_account_wait(struct odmr_limits *l, const char *account,
                                const struct ipaddr *a, time_t now);

/* odmr_limits_failed - count a failed attempt from a for account (NULL:
 * not a valid name). Returns 1 when the address has just reached
 * address_failures (*until_r: the end of its block), else 0; *wait_r gets
 * the account's new wait when it has just become or stays throttled
 * (0: not throttled). */
int odmr_limits_failed(struct odmr_limits *l, const char *account, const struct ipaddr *a,
                       time_t now, time_t *until_r, time_t *wait_r);

/* odmr_limits_good - a successful AUTH for account from a: a remembers it. */
void odmr_limits_good(struct odmr_limits *l, const char *account, const struct ipaddr *a,
                      time_t now);

/* odmr_limits_account_failures - the account's failures in its window. */
unsigned long odmr_limits_account_failures(struct odmr_limits *l, const char *account,
                                           time_t now);

#endif
