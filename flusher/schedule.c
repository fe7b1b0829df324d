/* SPDX-License-Identifier: ISC */
/*
 * schedule.c - the flusher's schedule (see sched.h). Owns the table of
 * customers with a running, queued or recently failed flush: entries
 * are created on demand and pruned when idle, so the table holds only
 * active customers (a linear scan; the active set is small, bounded by
 * max_flushes plus customers that failed within retry_interval).
 */
#include <stdlib.h>

#include "schedule.h"
#include "util.h"

struct sched {
    struct sched_entry **v;
    size_t n, alloc;
    size_t running;
    size_t max_flushes;
    time_t retry_interval;
};

struct sched *
sched_new(size_t max_flushes, time_t retry_interval)
{
    struct sched *s = x_calloc(1, sizeof(*s));

    if (s != NULL)
        sched_set_limits(s, max_flushes, retry_interval);
    return s;
}

void
sched_free(struct sched *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++)
        x_free(s->v[i]);
    x_free(s->v);
    x_free(s);
}

void
sched_set_limits(struct sched *s, size_t max_flushes, time_t retry_interval)
{
    s->max_flushes = max_flushes > 0 ? max_flushes : 1;
    s->retry_interval = retry_interval;
}

struct sched_entry *
sched_find(struct sched *s, const char *customer)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->v[i]->customer, customer) == 0)
            return s->v[i];
    return NULL;
}

struct sched_entry *
sched_by_fd(struct sched *s, int status_fd)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (s->v[i]->pid != 0 && s->v[i]->status_fd == status_fd)
            return s->v[i];
    return NULL;
}

/* entry_get - find or add the entry for customer; NULL on ENOMEM */

static struct sched_entry *
entry_get(struct sched *s, const char *customer)
{
    struct sched_entry *e = sched_find(s, customer), **v;

    if (e != NULL)
        return e;
    if (s->n == s->alloc) {
        v = x_reallocarray(s->v, s->alloc ? s->alloc * 2 : 16, sizeof(*v));
        if (v == NULL)
            return NULL;
        s->v = v;
        s->alloc = s->alloc ? s->alloc * 2 : 16;
    }
    if ((e = x_calloc(1, sizeof(*e))) == NULL)
        return NULL;
    if (str_copy(e->customer, sizeof(e->customer), customer) < 0) {
        x_free(e);
        return NULL;
    }
    e->status_fd = -1;
    s->v[s->n++] = e;
    return e;
}

static enum sched_verdict
decide(struct sched *s, struct sched_entry *e, const struct sched_req *req, bool wait, time_t now)
{
    if (e->pid != 0) {
        if (wait)
            return SCHED_RUNNING;
        e->rescan = true;
        e->next = *req;
        return SCHED_RESCAN;
    }
    if (!req->manual && e->last_fail != 0 && now - e->last_fail < s->retry_interval)
        return SCHED_RETRY_LATER;
    if (s->running >= s->max_flushes) {
        if (wait)
            return SCHED_FULL;
        e->queued = true;
        e->next = *req;
        return SCHED_QUEUED;
    }
    return SCHED_START;
}

int
sched_request(struct sched *s, const char *customer, const struct sched_req *req, bool wait,
              time_t now, enum sched_verdict *v_r, struct sched_entry **e_r)
{
    struct sched_entry *e = entry_get(s, customer);

    if (e == NULL)
        return -1;
    *v_r = decide(s, e, req, wait, now);
    *e_r = e;
    return 0;
}

void
sched_started(struct sched *s, struct sched_entry *e, const struct sched_req *req, pid_t pid,
              int status_fd, time_t now)
{
    e->pid = pid;
    e->status_fd = status_fd;
    e->started = now;
    e->req = *req;
    e->queued = false;
    s->running++;
}

void
sched_cancel(struct sched *s, struct sched_entry *e)
{
    (void)s;
    e->queued = false;
}

bool
sched_finished(struct sched *s, struct sched_entry *e, bool failed, time_t now,
               struct sched_req *next_r)
{
    bool again;

    e->pid = 0;
    e->status_fd = -1;
    s->running--;
    e->last_fail = failed ? now : 0;
    /* after a failure only a manual request runs again at once */
    again = e->rescan && (!failed || e->next.manual);
    if (e->rescan && !again && !e->queued)
        e->rescan = false;
    if (again) {
        *next_r = e->next;
        e->rescan = false;
    }
    return again;
}

struct sched_entry *
sched_next_queued(struct sched *s, struct sched_req *req_r)
{
    size_t i;

    if (s->running >= s->max_flushes)
        return NULL;
    for (i = 0; i < s->n; i++) {
        if (s->v[i]->queued && s->v[i]->pid == 0) {
            s->v[i]->queued = false;
            *req_r = s->v[i]->next;
            return s->v[i];
        }
    }
    return NULL;
}

size_t
sched_running(const struct sched *s)
{
    return s->running;
}

size_t
sched_max(const struct sched *s)
{
    return s->max_flushes;
}

int
sched_foreach_running(struct sched *s, sched_fn *fn, void *ctx)
{
    size_t i;
    int rc;

    for (i = 0; i < s->n; i++)
        if (s->v[i]->pid != 0 && (rc = fn(ctx, s->v[i])) != 0)
            return rc;
    return 0;
}

void
sched_prune(struct sched *s, time_t now)
{
    struct sched_entry *e;
    size_t i = 0;

    while (i < s->n) {
        e = s->v[i];
        if (e->pid == 0 && !e->queued && !e->rescan &&
            (e->last_fail == 0 || now - e->last_fail >= s->retry_interval)) {
            x_free(e);
            s->v[i] = s->v[--s->n];
        } else {
            i++;
        }
    }
}
