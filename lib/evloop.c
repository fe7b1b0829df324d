/* SPDX-License-Identifier: ISC */
/*
 * evloop.c - the event loop of the autoturn daemons (see evloop.h). Owns
 * the epoll descriptor, a table of watched descriptors indexed by fd (its
 * callback, context, events and a generation number that makes events of
 * a descriptor removed earlier in the same round harmless), the timer
 * heap, and the cached clock.
 *
 * Why not libevent: the policy service's cost is counted in instructions
 * per request (bench/policyd_ir.sh), and what the daemons need is small:
 * fd callbacks, timers and a bounded output buffer. libevent's bufferevents
 * copy every reply through evbuffers and its dispatch adds work per event,
 * for features (signals, DNS, HTTP, thread locking) the daemons do not use.
 * This loop is about 300 lines; hiredis's async API needs only the five
 * add/del read/write and cleanup hooks, which fit it as well as libevent.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "util.h"

#define EVL_BATCH 256               /* events taken from epoll per round */

struct watch {
    evl_io_fn *fn;                  /* NULL: not watched */
    void *ctx;
    unsigned events;
    uint32_t gen;
};

struct evl_timer {
    int64_t when, period;
    evl_timer_fn *fn;
    void *ctx;
    size_t idx;                     /* in the heap */
};

struct evloop {
    int epfd;
    int64_t now;
    struct watch *w;                /* indexed by fd */
    size_t nw;
    uint32_t gen;
    struct evl_timer **heap;
    size_t nheap, capheap;
};

static int64_t
clock_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct evloop *
evl_new(void)
{
    struct evloop *l = x_calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        x_free(l);
        return NULL;
    }
    l->now = clock_ms();
    return l;
}

void
evl_free(struct evloop *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->nheap; i++)
        x_free(l->heap[i]);
    x_free(l->heap);
    x_free(l->w);
    (void)close(l->epfd);
    x_free(l);
}

int64_t
evl_now(const struct evloop *l)
{
    return l->now;
}

/* --- descriptors --- */

static uint32_t
ep_events(unsigned events)
{
    return ((events & EVL_READ) ? EPOLLIN : 0u) | ((events & EVL_WRITE) ? EPOLLOUT : 0u);
}

static int
grow_watch(struct evloop *l, int fd)
{
    size_t n = l->nw ? l->nw : 64;
    struct watch *w;

    while (n <= (size_t)fd)
        n *= 2;
    if (n == l->nw)
        return 0;
    if ((w = x_reallocarray(l->w, n, sizeof(*w))) == NULL)
        return -1;
    memset(w + l->nw, 0, (n - l->nw) * sizeof(*w));
    l->w = w;
    l->nw = n;
    return 0;
}

static int
ep_ctl(struct evloop *l, int op, int fd)
{
    struct epoll_event ee;

    memset(&ee, 0, sizeof(ee));
    ee.events = ep_events(l->w[fd].events);
    ee.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)l->w[fd].gen << 32);
    return epoll_ctl(l->epfd, op, fd, &ee);
}

int
evl_add(struct evloop *l, int fd, unsigned events, evl_io_fn *fn, void *ctx)
{
    if (fd < 0 || fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (grow_watch(l, fd) < 0)
        return -1;
    if (l->w[fd].fn != NULL) {
        errno = EEXIST;
        return -1;
    }
    l->w[fd] = (struct watch){.fn = fn, .ctx = ctx, .events = events, .gen = ++l->gen};
    if (ep_ctl(l, EPOLL_CTL_ADD, fd) < 0) {
        l->w[fd].fn = NULL;
        return -1;
    }
    return 0;
}

int
evl_set(struct evloop *l, int fd, unsigned events)
{
    if (fd < 0 || (size_t)fd >= l->nw || l->w[fd].fn == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (l->w[fd].events == events)
        return 0;
    l->w[fd].events = events;
    return ep_ctl(l, EPOLL_CTL_MOD, fd);
}

void
evl_del(struct evloop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->nw || l->w[fd].fn == NULL)
        return;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->w[fd].fn = NULL;
    l->w[fd].gen = ++l->gen;        /* events of this round for fd are stale now */
}

/* --- timers --- */

static void
heap_set(struct evloop *l, size_t i, struct evl_timer *t)
{
    l->heap[i] = t;
    t->idx = i;
}

static void
heap_up(struct evloop *l, size_t i)
{
    struct evl_timer *t = l->heap[i];

    while (i > 0 && l->heap[(i - 1) / 2]->when > t->when) {
        heap_set(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(l, i, t);
}

static void
heap_down(struct evloop *l, size_t i)
{
    struct evl_timer *t = l->heap[i];
    size_t c;

    while ((c = 2 * i + 1) < l->nheap) {
        if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[c]->when)
            c++;
        if (l->heap[c]->when >= t->when)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void
heap_remove(struct evloop *l, struct evl_timer *t)
{
    size_t i = t->idx, last = --l->nheap;

    if (i != last) {
        heap_set(l, i, l->heap[last]);
        heap_down(l, i);
        heap_up(l, l->heap[i]->idx);
    }
}

struct evl_timer *
evl_timer_add(struct evloop *l, int64_t delay_ms, int64_t period_ms, evl_timer_fn *fn, void *ctx)
{
    struct evl_timer *t, **h;
    size_t cap;

    if (l->nheap == l->capheap) {
        cap = l->capheap ? 2 * l->capheap : 16;
        if ((h = x_reallocarray(l->heap, cap, sizeof(*h))) == NULL)
            return NULL;
        l->heap = h;
        l->capheap = cap;
    }
    if ((t = x_calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->when = l->now + (delay_ms > 0 ? delay_ms : 0);
    t->period = period_ms > 0 ? period_ms : 0;
    t->fn = fn;
    t->ctx = ctx;
    heap_set(l, l->nheap++, t);
    heap_up(l, t->idx);
    return t;
}

void
evl_timer_cancel(struct evloop *l, struct evl_timer *t)
{
    if (t == NULL || t->idx == SIZE_MAX)
        return;
    heap_remove(l, t);
    x_free(t);
}

/* run_timers - every timer due now, earliest first; a periodic one is
 * put back (one call per round even when late: no burst to catch up) */
static void
run_timers(struct evloop *l)
{
    struct evl_timer *t;
    size_t n = l->nheap;

    while (n-- > 0 && l->nheap > 0 && (t = l->heap[0])->when <= l->now) {
        if (t->period > 0) {
            t->when = t->when + t->period > l->now ? t->when + t->period : l->now + t->period;
            heap_down(l, 0);
            t->fn(t->ctx);             /* may cancel t: it is in the heap, so that is fine */
        } else {
            heap_remove(l, t);
            t->idx = SIZE_MAX;         /* firing: a cancel from its callback is a no-op */
            t->fn(t->ctx);
            x_free(t);
        }
    }
}

/* wait_ms - how long epoll may wait: until the first timer, at most max */
static int
wait_ms(const struct evloop *l, int max_wait_ms)
{
    int64_t until;

    if (l->nheap == 0)
        return max_wait_ms;
    until = l->heap[0]->when - l->now;
    if (until < 0)
        until = 0;
    if (max_wait_ms >= 0 && until > max_wait_ms)
        return max_wait_ms;
    return until > 86400000 ? 86400000 : (int)until;
}

int
evl_run_once(struct evloop *l, int max_wait_ms)
{
    struct epoll_event ev[EVL_BATCH];
    unsigned events;
    uint32_t gen;
    int i, n, fd;

    n = epoll_wait(l->epfd, ev, EVL_BATCH, wait_ms(l, max_wait_ms));
    l->now = clock_ms();
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (i = 0; i < n; i++) {
        fd = (int)(uint32_t)ev[i].data.u64;
        gen = (uint32_t)(ev[i].data.u64 >> 32);
        if ((size_t)fd >= l->nw || l->w[fd].fn == NULL || l->w[fd].gen != gen)
            continue;                  /* removed (or replaced) earlier in this round */
        events = (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP) ? EVL_READ : 0u) |
                 (ev[i].events & EPOLLOUT ? EVL_WRITE : 0u);
        if ((ev[i].events & (EPOLLHUP | EPOLLERR)) && (l->w[fd].events & EVL_WRITE))
            events |= EVL_WRITE;       /* a writer must learn of the error too */
        l->w[fd].fn(l->w[fd].ctx, fd, events & (l->w[fd].events | EVL_READ));
    }
    run_timers(l);
    return 0;
}

int
evl_run(struct evloop *l, volatile sig_atomic_t *stop)
{
    while (!*stop)
        if (evl_run_once(l, -1) < 0)
            return -1;
    return 0;
}

/* --- output queue --- */

void
evl_outq_init(struct evl_outq *q, size_t max)
{
    memset(q, 0, sizeof(*q));
    q->max = max;
}

void
evl_outq_free(struct evl_outq *q)
{
    x_free(q->buf);
    memset(q, 0, sizeof(*q));
}

size_t
evl_outq_pending(const struct evl_outq *q)
{
    return q->len - q->off;
}

int
evl_outq_put(struct evl_outq *q, const void *p, size_t len)
{
    size_t pending = q->len - q->off, cap;
    char *b;

    if (len > q->max || pending > q->max - len)
        return -1;
    if (q->off > 0 && q->len + len > q->cap) {   /* compact first */
        memmove(q->buf, q->buf + q->off, pending);
        q->len = pending;
        q->off = 0;
    }
    if (q->len + len > q->cap) {
        cap = q->cap ? q->cap : 512;
        while (cap < q->len + len)
            cap *= 2;
        if ((b = x_reallocarray(q->buf, cap, 1)) == NULL)
            return -1;
        q->buf = b;
        q->cap = cap;
    }
    memcpy(q->buf + q->len, p, len);
    q->len += len;
    return 0;
}

int
evl_outq_flush(struct evl_outq *q, int fd)
{
    ssize_t n;

    while (q->off < q->len) {
        n = send(fd, q->buf + q->off, q->len - q->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        q->off += (size_t)n;
    }
    q->off = q->len = 0;
    return 1;
}
