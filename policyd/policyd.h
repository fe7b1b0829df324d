/* SPDX-License-Identifier: ISC */
/*
 * policyd.h - what the modules of autoturn-policyd share: the daemon's
 * state and the tagged objects registered with epoll.
 */
#ifndef AUTOTURN_POLICYD_POLICYD_H
#define AUTOTURN_POLICYD_POLICYD_H

#include <stdint.h>

#include "config.h"
#include "custdb.h"
#include "decide.h"
#include "grants.h"
#include "peer.h"

enum ev_kind {
    EV_SIGNAL,
    EV_LISTEN_POLICY,
    EV_LISTEN_CONTROL,
    EV_POLICY,
    EV_CONTROL,
};

/* First member of everything registered with epoll (data.ptr). */
struct ev {
    enum ev_kind kind;
    int fd;
};

struct control_conn;

struct policyd {
    struct config cfg;
    struct custdb *db;
    struct grants *grants;
    struct decide decide;
    int epfd;
    int64_t now;
    struct control_conn *control_head;   /* oldest first */
    size_t control_count;
    struct peer_users trusted_users;     /* root + trusted_users: unix: policy peers */
    struct peer_users control_users;     /* root, the daemons' users, control_users */
};

#endif
