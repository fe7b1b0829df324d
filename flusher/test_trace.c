/* SPDX-License-Identifier: ISC */
/*
 * test_trace.c - our Received: line (trace.c): every shape of the "from"
 * clause, "for" with one recipient only, the queue id, an IPv6 client,
 * a recipient too long for the line, a buffer too small; and the date.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "trace.h"
#include "util.h"

static void
env_init(struct envelope *e, const char *addr, const char *name, const char *helo,
         const char *qid)
{
    envelope_init(e);
    e->arrival = 1796640000;                        /* Mon, 07 Dec 2026 10:40:00 UTC */
    envelope_set_client(e, addr, name, helo);
    (void)str_copy(e->queue_id, sizeof(e->queue_id), qid);
}

static void
test_received_shapes(void **state)
{
    static const struct {
        const char *label, *addr, *name, *helo, *qid, *rcpt, *want;
    } cases[] = {
        { "full", "192.0.2.7", "mail.example.org", "helo.example.org", "4XyZ", "a@virt.dom",
          "Received: from helo.example.org (mail.example.org [192.0.2.7])\r\n"
          "\tby mx.test (autoturn) id 4XyZ\r\n\tfor <a@virt.dom>; DATE\r\n" },
        { "unknown name", "192.0.2.7", "unknown", "h", "", NULL,
          "Received: from h (unknown [192.0.2.7])\r\n\tby mx.test (autoturn); DATE\r\n" },
        { "no helo", "192.0.2.7", "mail.example.org", "", "Q1", NULL,
          "Received: from mail.example.org ([192.0.2.7])\r\n\tby mx.test (autoturn) id Q1; DATE\r\n" },
        { "no helo, no name", "192.0.2.7", "unknown", "", "", "b@x",
          "Received: from [192.0.2.7]\r\n\tby mx.test (autoturn)\r\n\tfor <b@x>; DATE\r\n" },
        { "IPv6", "2001:db8::7", "", "[IPv6:2001:db8::7]", "", NULL,
          "Received: from [IPv6:2001:db8::7] ([IPv6:2001:db8::7])\r\n"
          "\tby mx.test (autoturn); DATE\r\n" },
        { "old spool file", "", "", "", "Q2", "c@x",
          "Received: by mx.test (autoturn) id Q2\r\n\tfor <c@x>; DATE\r\n" },
    };
    char buf[TRACE_RECEIVED_MAX], date[TRACE_DATE_MAX], want[TRACE_RECEIVED_MAX], *p;
    struct envelope e;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        print_message("case: %s\n", cases[i].label);
        env_init(&e, cases[i].addr, cases[i].name, cases[i].helo, cases[i].qid);
        trace_date(date, sizeof(date), e.arrival);
        assert_int_equal(str_copy(want, sizeof(want), cases[i].want), 0);
        p = strstr(want, "DATE");
        assert_non_null(p);
        memmove(p + strlen(date), p + 4, strlen(p + 4) + 1);
        memcpy(p, date, strlen(date));
        assert_int_equal(trace_received(&e, "mx.test", cases[i].rcpt, buf, sizeof(buf)), 0);
        assert_string_equal(buf, want);
        envelope_clear(&e);
    }
}

static void
test_received_limits(void **state)
{
    char rcpt[TRACE_FOR_MAX + 2], buf[TRACE_RECEIVED_MAX], small[40];
    struct envelope e;

    (void)state;
    env_init(&e, "192.0.2.7", "", "h", "");
    memset(rcpt, 'r', sizeof(rcpt) - 1);
    rcpt[sizeof(rcpt) - 1] = '\0';
    assert_int_equal(trace_received(&e, "mx.test", rcpt, buf, sizeof(buf)), 0);
    assert_null(strstr(buf, "for <"));                    /* too long: left out */
    assert_int_equal(trace_received(&e, "mx.test", NULL, small, sizeof(small)), -1);
    assert_int_equal(trace_received(&e, "", NULL, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "by localhost (autoturn)"));
    envelope_clear(&e);
}

static void
test_date(void **state)
{
    char buf[TRACE_DATE_MAX];

    (void)state;
    setenv("TZ", "UTC0", 1);
    tzset();
    trace_date(buf, sizeof(buf), 1796640000);
    assert_string_equal(buf, "Mon, 07 Dec 2026 10:40:00 +0000");
    setenv("TZ", "IST-5:30", 1);                     /* a half-hour offset (POSIX rule) */
    tzset();
    trace_date(buf, sizeof(buf), 1796640000);
    assert_string_equal(buf, "Mon, 07 Dec 2026 16:10:00 +0530");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_received_shapes),
        cmocka_unit_test(test_received_limits),
        cmocka_unit_test(test_date),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
