/* SPDX-License-Identifier: ISC */
/*
 * sweep.h - the expiry sweep of autoturn-flusher: a forked child, started
 * by the daemon every sweep_interval, that bounces held mail older than
 * the customer's max_age (even if the customer never shows up) and sends
 * one delay warning per message older than delay_warning. As it goes it
 * adds up what stays held, for the held metrics (metrics_held).
 *
 * A delay warning is remembered by an empty marker file
 * <spool>/<customer>/warned/<id>; the sweep removes the marker when it
 * bounces the message, and removes markers whose message is gone.
 */
#ifndef AUTOTURN_SWEEP_H
#define AUTOTURN_SWEEP_H

#include <sys/types.h>

#include "config.h"
#include "spool.h"
#include "util.h"

#define SWEEP_WARNED_DIR "warned"   /* inside the customer's spool directory */

/* sweep_start - fork the sweep child. Returns its pid and, in *fd_r, the
 * non-blocking read end of its status pipe (EOF: the child is gone; feed
 * readable events to sweep_event), or -1 with err. */
pid_t sweep_start(const struct config *cfg, struct spool *sp, int *fd_r, struct errbuf *err);

/* sweep_event - the status pipe is readable: 0 while the child runs; 1
 * when it ended (child reaped, an abnormal end logged; the caller takes fd
 * out of its epoll set and closes it). */
int sweep_event(int fd, pid_t pid);

/* sweep_stop - SIGTERM to a running sweep child and wait for it (daemon
 * shutdown); closes fd. Whatever it did not finish stays held. */
void sweep_stop(int fd, pid_t pid);

#endif
