/* SPDX-License-Identifier: ISC */
/*
 * odmr.h - the ODMR service of autoturn-flusher (RFC 2645, port 366),
 * split the way OpenSMTPD keeps its network side away from its queue:
 *
 *   front    (odmr_front.c) a process of its own, forked at start while
 *            the daemon is still root, running as odmr.user (never the
 *            spool's owner), confined by Landlock where the kernel has it;
 *            owns the listeners and the TLS key, accepts, applies the
 *            connection limits, and forks one session process per
 *            connection;
 *   session  (odmr_session.c) a child of the front, same user: speaks
 *            EHLO, STARTTLS, AUTH, ATRN with the untrusted client, asks
 *            the broker to check credentials, and after ATRN relays the
 *            bytes between the client and the delivery process;
 *   broker   (this module) inside the flusher's parent, as the flusher's
 *            user: checks credentials against the customer table (the
 *            session never sees a secret), counts failures per address
 *            and per account, and on ATRN forks a delivery process that
 *            locks the customer's spool and runs the flush engine
 *            (deliver_reversed) over a socketpair to the session.
 *
 * The parent's event loop watches one epoll descriptor of this module
 * (odmr_poll_fd) and calls odmr_event.
 */
#ifndef AUTOTURN_ODMR_H
#define AUTOTURN_ODMR_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "custdb.h"
#include "spool.h"
#include "util.h"

#define ODMR_FAIL_SLOTS     4096u   /* per-address failure table (power of two) */
#define ODMR_ACCOUNT_SLOTS  4096u   /* per-account failure table (power of two) */
#define ODMR_GOOD_MAX       4       /* addresses remembered per account after a good AUTH */
#define ODMR_GOOD_TTL       (30 * 86400)  /* how long such an address stays known */
#define ODMR_WARN_INTERVAL  10      /* seconds between warnings about refused connections */
#define ODMR_FRONT_TIMEOUT  10000   /* ms the front may take to start */

struct odmr;

/* odmr_open - when cfg->flusher.odmr.enable: bind the listeners and load
 * the TLS certificate and key (as root). cfg must stay valid. 0 with *o_r
 * (NULL when disabled), or -1 with err. */
int odmr_open(const struct config *cfg, struct odmr **o_r, struct errbuf *err);

/* odmr_spawn - start the front process, which takes the listeners and the
 * key (the broker keeps neither) and drops to odmr.user; waits until it
 * says it runs. As root, after detaching, before the daemon's own drop.
 * 0 (also for NULL), or -1 with err. */
int odmr_spawn(struct odmr *o, struct errbuf *err);

/* odmr_start - after the drop: the spool the deliveries use and the
 * customer table the credentials are checked against (both kept). */
void odmr_start(struct odmr *o, struct spool *spool, struct custdb *db);

/* odmr_poll_fd - readable when odmr_event has work; -1 for NULL. */
int odmr_poll_fd(const struct odmr *o);

/* odmr_event - new sessions from the front, requests from the sessions,
 * ended deliveries. Never blocks on a client. Returns -1 when the front
 * process is gone (ODMR is down: the daemon should stop), else 0. */
int odmr_event(struct odmr *o, time_t now);

/* odmr_sessions - sessions known to the broker now. */
size_t odmr_sessions(const struct odmr *o);

/* odmr_close - stop the front (its sessions end with it) and the
 * deliveries (SIGTERM, wait: what they did not deliver stays held), free
 * o (NULL is fine). */
void odmr_close(struct odmr *o);

#endif
