/* SPDX-License-Identifier: ISC */
/*
 * odmr.h - the ODMR listener of autoturn-flusher (RFC 2645, port 366):
 * accepts connections, refuses them early when limits are reached (too
 * many sessions, too many from one address, an address with too many
 * failed AUTH attempts), and starts one forked session (odmr_session.c)
 * per accepted connection. The parent's event loop watches one epoll
 * descriptor of this module (odmr_poll_fd) and calls odmr_event.
 */
#ifndef AUTOTURN_ODMR_H
#define AUTOTURN_ODMR_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "spool.h"
#include "util.h"

#define ODMR_ACCEPT_BATCH   64      /* accepts per readiness event */
#define ODMR_FAIL_SLOTS     4096u   /* per-address failure table (power of two) */
#define ODMR_WARN_INTERVAL  10      /* seconds between warnings about refused connections */

struct odmr;

/* odmr_open - when cfg->flusher.odmr.enable: bind the listeners and load
 * the TLS certificate and key (before the privilege drop). cfg must stay
 * valid. 0 with *o_r (NULL when disabled), or -1 with err. */
int odmr_open(const struct config *cfg, struct odmr **o_r, struct errbuf *err);

/* odmr_start - after the drop: the spool the sessions use. */
void odmr_start(struct odmr *o, struct spool *spool);

/* odmr_poll_fd - readable when odmr_event has work; -1 for NULL. */
int odmr_poll_fd(const struct odmr *o);

/* odmr_event - accept pending connections, read the sessions' status
 * lines, reap ended sessions. Never blocks on a client. */
void odmr_event(struct odmr *o, time_t now);

/* odmr_sessions - sessions running now. */
size_t odmr_sessions(const struct odmr *o);

/* odmr_close - stop the sessions (SIGTERM, wait: what they did not
 * deliver stays held), close the listeners, free o (NULL is fine). */
void odmr_close(struct odmr *o);

#endif
