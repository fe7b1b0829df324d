/* SPDX-License-Identifier: ISC */
/*
 * test_mxparse.c - the MX answer parser (mxparse.c) on DNS messages built
 * here byte by byte: two MX records (one name compressed), a null MX,
 * records of other types and with short data skipped, a compression
 * loop, a truncated message, a header alone, and the record cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mxparse.h"
#include "util.h"

struct msg {
    unsigned char b[1024];
    size_t len;
};

static void
put(struct msg *m, const void *p, size_t n)
{
    assert_true(m->len + n <= sizeof(m->b));
    memcpy(m->b + m->len, p, n);
    m->len += n;
}

static void
put16(struct msg *m, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    put(m, b, 2);
}

/* start - header (ancount answers) and the question virt.dom IN MX */
static void
start(struct msg *m, unsigned ancount)
{
    static const unsigned char q[] = "\4virt\3dom";     /* at offset 12 */

    m->len = 0;
    put16(m, 0x1234);
    put16(m, 0x8180);
    put16(m, 1);
    put16(m, ancount);
    put16(m, 0);
    put16(m, 0);
    put(m, q, sizeof(q));                              /* with the root's 0 */
    put16(m, 15);
    put16(m, 1);
}

/* rr - an answer for the question's name (pointer to offset 12) */
static void
rr(struct msg *m, unsigned type, const void *rdata, size_t rdlen)
{
    put16(m, 0xc00c);
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 300);
    put16(m, (unsigned)rdlen);
    put(m, rdata, rdlen);
}

static void
test_two_records(void **state)
{
    static const unsigned char mx1[] = "\0\12\3mx1\4virt\3dom";    /* 10 mx1.virt.dom */
    static const unsigned char mx2[] = {0, 20, 3, 'm', 'x', '2', 0xc0, 12};
    struct mx mx[10];
    struct msg m;

    (void)state;
    start(&m, 2);
    rr(&m, 15, mx1, sizeof(mx1));
    rr(&m, 15, mx2, sizeof(mx2));
    assert_int_equal(mxparse_answer(m.b, (int)m.len, mx, 10), 2);
    assert_int_equal(mx[0].pref, 10);
    assert_string_equal(mx[0].host, "mx1.virt.dom");
    assert_int_equal(mx[1].pref, 20);
    assert_string_equal(mx[1].host, "mx2.virt.dom");
}

static void
test_null_mx(void **state)
{
    static const unsigned char null[] = {0, 0, 0};
    struct mx mx[10];
    struct msg m;

    (void)state;
    start(&m, 1);
    rr(&m, 15, null, sizeof(null));
    assert_int_equal(mxparse_answer(m.b, (int)m.len, mx, 10), 1);
    assert_int_equal(mx[0].pref, 0);
    assert_string_equal(mx[0].host, ".");
}

static void
test_skipped(void **state)
{
    static const unsigned char cname[] = "\5alias\7example";
    static const unsigned char shortmx[] = {0, 1};
    static const unsigned char loop[] = {0, 5, 0xc0, 81};         /* offset 81: itself */
    static const unsigned char ok[] = "\0\5\4mail\4virt\3dom";
    struct mx mx[10];
    struct msg m;

    (void)state;
    start(&m, 4);
    rr(&m, 5, cname, sizeof(cname));
    rr(&m, 15, shortmx, sizeof(shortmx));
    rr(&m, 15, loop, sizeof(loop));
    rr(&m, 15, ok, sizeof(ok));
    assert_int_equal(mxparse_answer(m.b, (int)m.len, mx, 10), 1);
    assert_int_equal(mx[0].pref, 5);
    assert_string_equal(mx[0].host, "mail.virt.dom");
}

static void
test_malformed(void **state)
{
    static const unsigned char mx1[] = "\0\12\3mx1\4virt\3dom";
    struct mx mx[10];
    struct msg m;

    (void)state;
    start(&m, 1);
    assert_int_equal(mxparse_answer(m.b, 11, mx, 10), -1);         /* header cut */
    assert_int_equal(mxparse_answer(m.b, -1, mx, 10), -1);
    rr(&m, 15, mx1, sizeof(mx1));
    assert_int_equal(mxparse_answer(m.b, (int)m.len - 4, mx, 10), -1);   /* record cut */
    start(&m, 3);                                                  /* says 3, has 0 */
    assert_int_equal(mxparse_answer(m.b, (int)m.len, mx, 10), -1);
}

static void
test_cap(void **state)
{
    static const unsigned char mx1[] = "\0\12\3mx1\4virt\3dom";
    struct mx mx[3];
    struct msg m;
    int i;

    (void)state;
    start(&m, 5);
    for (i = 0; i < 5; i++)
        rr(&m, 15, mx1, sizeof(mx1));
    assert_int_equal(mxparse_answer(m.b, (int)m.len, mx, 3), 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_records),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
