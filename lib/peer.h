/* SPDX-License-Identifier: ISC */
/*
 * peer.h - who is at the other end of a UNIX socket, as the kernel says
 * (SO_PEERCRED: fixed at connect time, not claimed by the peer), and sets
 * of users allowed to talk to a daemon. Reaching a socket proves nothing;
 * these are the facts the daemons base trust on.
 */
#ifndef AUTOTURN_PEER_H
#define AUTOTURN_PEER_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "util.h"

#define PEER_USERS_MAX   (CONFIG_NAMES_MAX + 8)
#define PEER_NAME_MAX    (CONFIG_NAME_MAX + 16)   /* "name" or "uid 12345" */

struct peer_users {
    size_t n;
    uid_t uid[PEER_USERS_MAX];
};

/* peer_users_root - a set holding root (uid 0) only. */
void peer_users_root(struct peer_users *u);

/* peer_users_add_names - add every name (getpwnam). 0, or -1 with err
 * naming the users that do not exist (the others are added anyway). */
int peer_users_add_names(struct peer_users *u, const struct config_names *names,
                         struct errbuf *err);

/* peer_users_control - who may use an autoturn control socket: root, the
 * users the three daemons run as, and extra. 0, or -1 with err as
 * peer_users_add_names (the set is still usable). */
int peer_users_control(struct peer_users *u, const struct config *cfg,
                       const struct config_names *extra, struct errbuf *err);

bool peer_users_has(const struct peer_users *u, uid_t uid);

/* peer_cred - the uid and pid of the process that connected fd (a UNIX
 * stream socket). 0, or -1 with errno. */
int peer_cred(int fd, uid_t *uid_r, pid_t *pid_r);

/* peer_user_name - the user's name, or "uid N" when it has none. */
const char *peer_user_name(uid_t uid, char *buf, size_t size);

/* Where a grant came from (recorded with it, persisted, shown by
 * autoturnctl grants). Only grants from a trusted source may tie an
 * address to a customer for delivery: SMTP AUTH seen on a trusted policy
 * connection, or the control socket (peer uid checked), named
 * "control:<user>". Anything else (e.g. "unknown", a grant from before
 * sources were recorded) still relays but sends no mail anywhere. */
#define GRANT_SOURCE_SMTP_AUTH  "smtp-auth"
#define GRANT_SOURCE_CONTROL    "control:"
#define GRANT_SOURCE_UNKNOWN    "unknown"
#define GRANT_SOURCE_MAX        (sizeof(GRANT_SOURCE_CONTROL) + PEER_NAME_MAX)

bool peer_grant_source_trusted(const char *source);

#endif
