/* SPDX-License-Identifier: ISC */
/*
 * evloop.h - the one event loop of the autoturn daemons: descriptors with
 * a callback and a context (epoll, level-triggered), one-shot and periodic
 * timers on a binary min-heap (milliseconds, CLOCK_MONOTONIC), and a
 * bounded output queue that tells its owner when a peer reads too slowly.
 * Single-threaded: every call comes from the loop's own thread.
 */
#ifndef AUTOTURN_EVLOOP_H
#define AUTOTURN_EVLOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVL_READ   1u               /* readable (also: hang-up, error) */
#define EVL_WRITE  2u               /* writable */

struct evloop;
struct evl_timer;

/* A descriptor's callback: events is EVL_READ and/or EVL_WRITE. */
typedef void evl_io_fn(void *ctx, int fd, unsigned events);
typedef void evl_timer_fn(void *ctx);

/* evl_new - an empty loop; NULL (errno) on failure. */
struct evloop *evl_new(void);

/* evl_free - the loop and its timers (the descriptors are the owners'). */
void evl_free(struct evloop *l);

/* evl_add - watch fd for events (EVL_READ, EVL_WRITE, both, or 0 for
 * none yet); 0, or -1 (errno; EEXIST when fd is already watched). */
int evl_add(struct evloop *l, int fd, unsigned events, evl_io_fn *fn, void *ctx);

/* evl_set - change what fd is watched for; 0 / -1 (errno). */
int evl_set(struct evloop *l, int fd, unsigned events);

/* evl_del - stop watching fd (before closing it). Safe inside any
 * callback: an event for fd still pending in this round is dropped. */
void evl_del(struct evloop *l, int fd);

/* evl_timer_add - call fn(ctx) delay_ms from now, then every period_ms
 * (0: once; a one-shot timer is freed after it fired, and its handle
 * must not be used again). NULL when out of memory. */
struct evl_timer *evl_timer_add(struct evloop *l, int64_t delay_ms, int64_t period_ms,
                                evl_timer_fn *fn, void *ctx);

/* evl_timer_cancel - remove and free a pending timer (NULL is fine);
 * allowed inside any callback, its own included. */
void evl_timer_cancel(struct evloop *l, struct evl_timer *t);

/* evl_now - CLOCK_MONOTONIC milliseconds as of this round (cheap). */
int64_t evl_now(const struct evloop *l);

/* evl_run_once - wait for events (at most max_wait_ms, -1: until an
 * event or timer), run their callbacks, then the timers that are due.
 * 0, or -1 (errno) when epoll fails (EINTR is not a failure). */
int evl_run_once(struct evloop *l, int max_wait_ms);

/* evl_run - evl_run_once until *stop is set (a signal handler sets it
 * and writes to a self-pipe watched by the loop). 0, or -1 (errno). */
int evl_run(struct evloop *l, volatile sig_atomic_t *stop);

/* --- output queue --- */

/* What a connection has to send and could not yet: at most max bytes
 * pending; beyond that the peer does not read and its owner drops it. */
struct evl_outq {
    char *buf;
    size_t off, len, cap, max;
};

void evl_outq_init(struct evl_outq *q, size_t max);
void evl_outq_free(struct evl_outq *q);

/* evl_outq_put - queue len bytes; -1 when more than max bytes would be
 * pending (back-pressure) or out of memory, 0 otherwise. */
int evl_outq_put(struct evl_outq *q, const void *p, size_t len);

/* evl_outq_flush - write what is pending to fd (non-blocking, no
 * SIGPIPE): 1 all out, 0 some left (watch for EVL_WRITE), -1 error. */
int evl_outq_flush(struct evl_outq *q, int fd);

size_t evl_outq_pending(const struct evl_outq *q);

#endif
