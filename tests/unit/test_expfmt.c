/* SPDX-License-Identifier: ISC */
/*
 * test_expfmt.c - the Prometheus text exposition format: number spelling
 * (as Go's client libraries write them), escaping of help texts and label
 * values, counters, histograms (cumulative buckets, le="+Inf", _sum,
 * _count, with and without labels), the size cap and an empty text.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "util.h"
#include "expfmt.h"

struct number_case {
    double v;
    const char *want;
};

static void
test_numbers(void **state)
{
    const struct number_case cases[] = {
        { 0, "0" }, { 1, "1" }, { 10, "10" }, { 3600, "3600" }, { 123456, "123456" },
        { 0.25, "0.25" }, { 0.1, "0.1" }, { 0.0001, "0.0001" }, { 1e-05, "1e-05" },
        { 5e-05, "5e-05" }, { 1e6, "1e+06" }, { 1234567, "1.234567e+06" },
        { 1796661456, "1.796661456e+09" }, { 1796661456.25, "1.79666145625e+09" },
        { -2.5, "-2.5" }, { 0.1 + 0.2, "0.30000000000000004" },
        { DBL_MAX, "1.7976931348623157e+308" }, { 5e-324, "5e-324" },
        { INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
    };
    char buf[EXPFMT_NUMBER_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        expfmt_number(cases[i].v, buf);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("case %zu: got %s, want %s", i, buf, cases[i].want);
        if (isfinite(cases[i].v))
            assert_true(strtod(buf, NULL) == cases[i].v);   /* reads back exactly */
    }
}

/* text - finish x and compare with want */
static void
text_is(struct expfmt *x, const char *want)
{
    size_t len = 0;
    char *got = expfmt_done(x, &len);

    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    x_free(got);
}

static void
test_escaping(void **state)
{
    const struct expfmt_label l[] = {
        { "path", "C:\\dir\\\"x\"\nnext" }, { "plain", "ok" },
    };
    struct expfmt x;

    (void)state;
    expfmt_init(&x);
    expfmt_family(&x, "m", "gauge", "a back\\slash, a \"quote\"\nand a new line");
    expfmt_sample(&x, "m", l, 2, 1.5);
    text_is(&x,
            "# HELP m a back\\\\slash, a \"quote\"\\nand a new line\n"
            "# TYPE m gauge\n"
            "m{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\",plain=\"ok\"} 1.5\n");
}

static void
test_counters(void **state)
{
    const struct expfmt_label l = { "outcome", "sent" };
    struct expfmt x;

    (void)state;
    expfmt_init(&x);
    expfmt_family(&x, "c_total", "counter", "Things.");
    expfmt_sample_uint(&x, "c_total", &l, 1, UINT64_MAX);
    expfmt_sample_uint(&x, "c_total", NULL, 0, 0);
    text_is(&x,
            "# HELP c_total Things.\n"
            "# TYPE c_total counter\n"
            "c_total{outcome=\"sent\"} 18446744073709551615\n"
            "c_total 0\n");
}

static void
test_histogram(void **state)
{
    const double bounds[] = { 0.1, 1, 10 };
    const uint64_t counts[] = { 2, 3, 0, 1 };   /* per bucket; the last is above 10 */
    const struct expfmt_label l = { "reason", "etrn" };
    struct expfmt x;

    (void)state;
    expfmt_init(&x);
    expfmt_family(&x, "d_seconds", "histogram", "Durations.");
    expfmt_histogram(&x, "d_seconds", &l, 1, bounds, 3, counts, 42.75);
    expfmt_histogram(&x, "d_seconds", NULL, 0, bounds, 3, counts, 0);
    text_is(&x,
            "# HELP d_seconds Durations.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{reason=\"etrn\",le=\"0.1\"} 2\n"
            "d_seconds_bucket{reason=\"etrn\",le=\"1\"} 5\n"
            "d_seconds_bucket{reason=\"etrn\",le=\"10\"} 5\n"
            "d_seconds_bucket{reason=\"etrn\",le=\"+Inf\"} 6\n"
            "d_seconds_sum{reason=\"etrn\"} 42.75\n"
            "d_seconds_count{reason=\"etrn\"} 6\n"
            "d_seconds_bucket{le=\"0.1\"} 2\n"
            "d_seconds_bucket{le=\"1\"} 5\n"
            "d_seconds_bucket{le=\"10\"} 5\n"
            "d_seconds_bucket{le=\"+Inf\"} 6\n"
            "d_seconds_sum 0\n"
            "d_seconds_count 6\n");
}

static void
test_histogram_too_many_labels(void **state)
{
    const struct expfmt_label l[EXPFMT_LABELS_MAX] = {
        { "a", "1" }, { "b", "2" }, { "c", "3" }, { "d", "4" },
    };
    const double bounds[] = { 1 };
    const uint64_t counts[] = { 0, 0 };
    struct expfmt x;
    size_t len;

    (void)state;
    expfmt_init(&x);
    expfmt_histogram(&x, "h", l, EXPFMT_LABELS_MAX, bounds, 1, counts, 0);
    errno = 0;
    assert_null(expfmt_done(&x, &len));
    assert_int_equal(errno, EINVAL);
}

static void
test_cap(void **state)
{
    char help[1024];
    struct expfmt x;
    size_t i, len;

    (void)state;
    memset(help, 'h', sizeof(help) - 1);
    help[sizeof(help) - 1] = '\0';
    expfmt_init(&x);
    for (i = 0; i < EXPFMT_MAX / (sizeof(help) - 1) + 1; i++)
        expfmt_family(&x, "m", "gauge", help);
    assert_true(x.failed);
    assert_true(x.len <= EXPFMT_MAX);
    errno = 0;
    assert_null(expfmt_done(&x, &len));
    assert_int_equal(errno, EFBIG);
    assert_null(x.buf);                           /* freed, and x reusable */
    expfmt_family(&x, "m", "gauge", "after");
    text_is(&x, "# HELP m after\n# TYPE m gauge\n");
}

static void
test_empty(void **state)
{
    struct expfmt x;

    (void)state;
    expfmt_init(&x);
    text_is(&x, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_too_many_labels),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
