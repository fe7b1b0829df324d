/* SPDX-License-Identifier: ISC */
/*
 * schedule.h - (not sched.h: that would shadow <sched.h>) the flusher's schedule: which customers are being flushed
 * (at most one flush per customer, at most max_flushes at once), which
 * must run again when their flush ends (a request arrived meanwhile:
 * "rescan"), which wait for a free slot, and which failed recently (no
 * new attempt before retry_interval, except a manual flush).
 *
 * In-memory only; the spool lock (spool_lock) keeps other processes out.
 */
#ifndef AUTOTURN_SCHED_H
#define AUTOTURN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "customer.h"

#define SCHED_TO_MAX     64      /* the trigger address as given in to= */
#define SCHED_REASON_MAX 32

/* What the requester asked for; kept for a rescan or a queued start. */
struct sched_req {
    char to[SCHED_TO_MAX];       /* "" = none */
    char reason[SCHED_REASON_MAX];
    bool manual;                 /* autoturnctl flush: ignores retry_interval */
};

struct sched_entry {
    char customer[CUSTOMER_NAME_MAX + 1];
    pid_t pid;                   /* running child, 0 if idle */
    int status_fd;               /* read end of its status pipe, -1 if idle */
    time_t started;
    struct sched_req req;        /* of the running flush */
    bool rescan;                 /* run once more when this flush ends */
    bool queued;                 /* waits for a free slot */
    struct sched_req next;       /* request for the rescan / queued start */
    time_t last_fail;            /* end of the last failed attempt, 0 = none */
};

enum sched_verdict {
    SCHED_START,        /* start a flush now */
    SCHED_RESCAN,       /* one is running; it will run again once */
    SCHED_RUNNING,      /* one is running and the caller wants to wait: busy */
    SCHED_QUEUED,       /* the global cap is reached; starts when a slot frees */
    SCHED_FULL,         /* the global cap is reached and the caller wants to wait */
    SCHED_RETRY_LATER,  /* failed less than retry_interval ago (not manual) */
};

struct sched;

struct sched *sched_new(size_t max_flushes, time_t retry_interval);   /* NULL on ENOMEM */
void sched_free(struct sched *s);
void sched_set_limits(struct sched *s, size_t max_flushes, time_t retry_interval);

/* sched_request - decide what a FLUSH for customer does. wait: the
 * requester waits for the outcome (no rescan/queue for it). *e_r is the
 * entry (for SCHED_START: call sched_started or sched_cancel next).
 * -1 on ENOMEM. */
int sched_request(struct sched *s, const char *customer, const struct sched_req *req, bool wait,
                  time_t now, enum sched_verdict *v_r, struct sched_entry **e_r);

/* sched_started - the child runs; sched_cancel - it could not be started. */
void sched_started(struct sched *s, struct sched_entry *e, const struct sched_req *req,
                   pid_t pid, int status_fd, time_t now);
void sched_cancel(struct sched *s, struct sched_entry *e);

/* sched_finished - the child of e is gone; failed: connection failure,
 * nothing delivered while something was deferred, or killed. Returns
 * true (and the request in *next_r) when e must run again now. */
bool sched_finished(struct sched *s, struct sched_entry *e, bool failed, time_t now,
                    struct sched_req *next_r);

/* sched_next_queued - an entry waiting for a slot, if a slot is free. */
struct sched_entry *sched_next_queued(struct sched *s, struct sched_req *req_r);

struct sched_entry *sched_find(struct sched *s, const char *customer);
struct sched_entry *sched_by_fd(struct sched *s, int status_fd);
size_t sched_running(const struct sched *s);
size_t sched_max(const struct sched *s);

/* sched_foreach_running - fn for each running flush; stops when fn != 0. */
typedef int sched_fn(void *ctx, const struct sched_entry *e);
int sched_foreach_running(struct sched *s, sched_fn *fn, void *ctx);

/* sched_prune - forget idle entries whose failure is older than retry_interval. */
void sched_prune(struct sched *s, time_t now);

#endif
