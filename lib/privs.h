/* SPDX-License-Identifier: ISC */
/*
 * privs.h - dropping root the OpenSMTPD way: look the user and group up,
 * setgroups + setresgid + setresuid, check all three, and refuse to go on
 * as root.
 */
#ifndef AUTOTURN_PRIVS_H
#define AUTOTURN_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

/* privs_lookup - user (and group; "" = the user's primary group) to ids. */
int privs_lookup(const char *user, const char *group, uid_t *uid_r, gid_t *gid_r,
                 struct errbuf *err);

/* privs_drop - become user:group for good. Refuses uid 0 / gid 0 as a
 * target. When not running as root: succeeds only if already that user. */
int privs_drop(const char *user, const char *group, struct errbuf *err);

#endif
