/* SPDX-License-Identifier: ISC */
/*
 * test_evloop.c - the event loop: callbacks with their context, a
 * descriptor removed by an earlier callback of the same round is not
 * called, write interest on and off, timers in order, periodic timers,
 * cancel (also from a callback, its own included), the output queue's
 * bound and partial writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "evloop.h"
#include "util.h"

struct rec {
    struct evloop *l;
    int calls[8];
    unsigned last_events;
    int order[16];
    size_t norder;
    int del_fd;                     /* fd to remove from inside a callback */
    int pair[2];                    /* test_io: the first called removes the other */
    struct evl_timer *victim;       /* timer to cancel from inside a callback */
};

static void
on_io(void *ctx, int fd, unsigned events)
{
    struct rec *r = ctx;
    char buf[64];

    r->calls[fd % 8]++;
    r->last_events = events;
    if (events & EVL_READ)
        (void)!read(fd, buf, sizeof(buf));
    if (r->del_fd >= 0) {
        evl_del(r->l, r->del_fd);
        r->del_fd = -1;
    }
    if (r->pair[0] >= 0) {
        evl_del(r->l, fd == r->pair[0] ? r->pair[1] : r->pair[0]);
        r->pair[0] = r->pair[1] = -1;
    }
}

static void
test_io(void **state)
{
    struct rec r = {.del_fd = -1, .pair = {-1, -1}};
    int a[2], b[2];

    (void)state;
    assert_non_null(r.l = evl_new());
    assert_int_equal(pipe2(a, O_NONBLOCK), 0);
    assert_int_equal(pipe2(b, O_NONBLOCK), 0);
    assert_int_equal(evl_add(r.l, a[0], EVL_READ, on_io, &r), 0);
    assert_int_equal(evl_add(r.l, b[0], EVL_READ, on_io, &r), 0);
    assert_int_equal(evl_add(r.l, a[0], EVL_READ, on_io, &r), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(evl_run_once(r.l, 1000), 0);
    assert_int_equal(r.calls[a[0] % 8], 1);
    assert_int_equal(r.calls[b[0] % 8], 0);
    assert_int_equal(r.last_events, EVL_READ);
    /* both readable; the first callback removes the other: it is not called */
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    memset(r.calls, 0, sizeof(r.calls));
    r.pair[0] = a[0];
    r.pair[1] = b[0];
    assert_int_equal(evl_run_once(r.l, 1000), 0);
    assert_int_equal(r.calls[a[0] % 8] + r.calls[b[0] % 8], 1);
    /* nothing to do: a 0 ms wait returns */
    assert_int_equal(evl_run_once(r.l, 0), 0);
    assert_int_equal(evl_set(r.l, r.calls[a[0] % 8] ? b[0] : a[0], EVL_READ), -1); /* removed */
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    evl_free(r.l);
}

static void
test_write_interest(void **state)
{
    struct rec r = {.del_fd = -1, .pair = {-1, -1}};
    int sv[2];

    (void)state;
    assert_non_null(r.l = evl_new());
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(evl_add(r.l, sv[0], 0, on_io, &r), 0);
    assert_int_equal(evl_run_once(r.l, 0), 0);
    assert_int_equal(r.calls[sv[0] % 8], 0);               /* no interest: no call */
    assert_int_equal(evl_set(r.l, sv[0], EVL_WRITE), 0);
    assert_int_equal(evl_run_once(r.l, 1000), 0);
    assert_int_equal(r.calls[sv[0] % 8], 1);
    assert_int_equal(r.last_events, EVL_WRITE);
    close(sv[1]);                                           /* hang-up: reported as read */
    assert_int_equal(evl_run_once(r.l, 1000), 0);
    assert_true(r.last_events & EVL_READ);
    close(sv[0]);
    evl_free(r.l);
}

struct tctx {
    struct rec *r;
    int id;
};

static void
on_timer(void *ctx)
{
    struct rec *r = ((struct tctx *)ctx)->r;
    int id = ((struct tctx *)ctx)->id;

    if (r->norder < ARRAY_LEN(r->order))
        r->order[r->norder++] = id;
    if (r->victim != NULL) {
        evl_timer_cancel(r->l, r->victim);
        r->victim = NULL;
    }
}

static void
test_timers(void **state)
{
    struct rec r = {.del_fd = -1, .pair = {-1, -1}};
    struct tctx c1 = {&r, 1}, c2 = {&r, 2}, c3 = {&r, 3}, c4 = {&r, 4};
    struct evl_timer *t3, *p;
    int64_t t0;
    int i;

    (void)state;
    assert_non_null(r.l = evl_new());
    t0 = evl_now(r.l);
    assert_non_null(evl_timer_add(r.l, 30, 0, on_timer, &c2));
    assert_non_null(evl_timer_add(r.l, 10, 0, on_timer, &c1));
    assert_non_null(t3 = evl_timer_add(r.l, 20, 0, on_timer, &c3));
    evl_timer_cancel(r.l, t3);
    while (r.norder < 2)
        assert_int_equal(evl_run_once(r.l, -1), 0);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 2);
    assert_true(evl_now(r.l) - t0 >= 30);
    /* periodic: three calls, then cancelled; a one-shot cancelling it */
    r.norder = 0;
    assert_non_null(p = evl_timer_add(r.l, 5, 5, on_timer, &c4));
    for (i = 0; i < 100 && r.norder < 3; i++)
        assert_int_equal(evl_run_once(r.l, -1), 0);
    assert_int_equal(r.norder, 3);
    r.victim = p;
    assert_non_null(evl_timer_add(r.l, 0, 0, on_timer, &c1));
    assert_int_equal(evl_run_once(r.l, 100), 0);
    assert_null(r.victim);                 /* cancelled from the one-shot's callback */
    r.norder = 0;
    assert_int_equal(evl_run_once(r.l, 50), 0);
    assert_int_equal(r.norder, 0);         /* the periodic one is gone */
    /* a one-shot cancelling itself from its own callback */
    assert_non_null(r.victim = evl_timer_add(r.l, 0, 0, on_timer, &c1));
    assert_int_equal(evl_run_once(r.l, 100), 0);
    assert_int_equal(r.norder, 1);
    evl_free(r.l);
}

static void
test_outq(void **state)
{
    struct evl_outq q;
    char big[4096], rd[65536];
    size_t i, got = 0;
    int sv[2], rc;
    ssize_t n;

    (void)state;
    memset(big, 'x', sizeof(big));
    evl_outq_init(&q, 8192);
    assert_int_equal(evl_outq_put(&q, big, 4096), 0);
    assert_int_equal(evl_outq_put(&q, big, 4096), 0);
    assert_int_equal(evl_outq_put(&q, big, 1), -1);        /* over the bound */
    assert_int_equal(evl_outq_pending(&q), 8192);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    i = 1024;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &i, sizeof(int));
    /* fill the socket until the queue cannot drain, then read and drain */
    for (i = 0; i < 200 && (rc = evl_outq_flush(&q, sv[0])) == 1; i++)
        assert_int_equal(evl_outq_put(&q, big, 4096), 0);
    assert_int_equal(rc, 0);
    assert_true(evl_outq_pending(&q) > 0);
    while ((rc = evl_outq_flush(&q, sv[0])) == 0)
        while ((n = read(sv[1], rd, sizeof(rd))) > 0)
            got += (size_t)n;
    assert_int_equal(rc, 1);
    assert_int_equal(evl_outq_pending(&q), 0);
    close(sv[1]);
    assert_int_equal(evl_outq_put(&q, "y", 1), 0);
    assert_int_equal(evl_outq_flush(&q, sv[0]), -1);       /* the peer is gone */
    close(sv[0]);
    evl_outq_free(&q);
    assert_true(got > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_write_interest),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_outq),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
