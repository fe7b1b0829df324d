/* SPDX-License-Identifier: ISC */
/*
 * test_units.c - durations and sizes: every accepted form, every error
 * text, overflow edges, and formatting back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"
#include "units.h"

struct num_case {
    const char *label;
    const char *input;
    uint64_t want;
    const char *error;      /* NULL: must succeed */
};

static const struct num_case duration_cases[] = {
    { "bare seconds", "90", 90, NULL },
    { "zero", "0", 0, NULL },
    { "seconds", "90s", 90, NULL },
    { "minutes", "30m", 1800, NULL },
    { "hours", "2h", 7200, NULL },
    { "days", "5d", 432000, NULL },
    { "weeks", "1w", 604800, NULL },
    { "joined parts", "1h30m", 5400, NULL },
    { "many parts", "1w1d1h1m1s", 694861, NULL },
    { "leading zeros", "007s", 7, NULL },
    { "max", "18446744073709551615", UINT64_MAX, NULL },
    { "max seconds", "18446744073709551615s", UINT64_MAX, NULL },
    { "empty", "", 0, "empty value" },
    { "letters", "abc", 0, "not a number" },
    { "unit only", "s", 0, "not a number" },
    { "minus", "-5s", 0, "sign not allowed" },
    { "plus", "+5s", 0, "sign not allowed" },
    { "leading blank", " 5s", 0, "blank not allowed" },
    { "trailing blank", "5s ", 0, "blank not allowed" },
    { "inner blank", "5 s", 0, "blank not allowed" },
    { "unknown unit", "5x", 0, "unknown unit (use s, m, h, d or w)" },
    { "upper case unit", "5S", 0, "unknown unit (use s, m, h, d or w)" },
    { "fraction", "1.5h", 0, "unknown unit (use s, m, h, d or w)" },
    { "missing unit", "1h30", 0, "missing unit after number (use s, m, h, d or w)" },
    { "digits overflow", "18446744073709551616", 0, "value too large" },
    { "unit overflow", "30500568904944w", 0, "value too large" },
    { "sum overflow", "18446744073709551615s1s", 0, "value too large" },
};

static const struct num_case size_cases[] = {
    { "bytes", "123", 123, NULL },
    { "kilo", "1k", 1024, NULL },
    { "kilo upper", "1K", 1024, NULL },
    { "mega", "10M", 10485760, NULL },
    { "giga", "2g", 2147483648ULL, NULL },
    { "tera", "1T", 1099511627776ULL, NULL },
    { "empty", "", 0, "empty value" },
    { "letters", "M", 0, "not a number" },
    { "minus", "-1", 0, "sign not allowed" },
    { "blank", "1 M", 0, "blank not allowed" },
    { "unknown unit", "10X", 0, "unknown unit (use k, m, g or t)" },
    { "two letters", "10MB", 0, "unknown unit (use k, m, g or t)" },
    { "overflow", "16777216T", 0, "value too large" },
};

static void
run_cases(const struct num_case *tab, size_t n,
          int (*parse)(const char *, uint64_t *, const char **))
{
    size_t i;

    for (i = 0; i < n; i++) {
        const char *err = NULL;
        uint64_t val = 12345;
        int rc = parse(tab[i].input, &val, &err);

        print_message("case: %s\n", tab[i].label);
        if (tab[i].error == NULL) {
            assert_int_equal(rc, 0);
            assert_true(val == tab[i].want);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(err);
            assert_string_equal(err, tab[i].error);
        }
    }
}

static void
test_durations(void **state)
{
    (void)state;
    run_cases(duration_cases, ARRAY_LEN(duration_cases), units_parse_duration);
}

static void
test_sizes(void **state)
{
    (void)state;
    run_cases(size_cases, ARRAY_LEN(size_cases), units_parse_size);
}

static void
test_uint(void **state)
{
    const char *err = NULL;
    uint64_t v = 0;

    (void)state;
    assert_int_equal(units_parse_uint("42", 100, &v, &err), 0);
    assert_true(v == 42);
    assert_int_equal(units_parse_uint("100", 100, &v, &err), 0);
    assert_int_equal(units_parse_uint("101", 100, &v, &err), -1);
    assert_string_equal(err, "value too large");
    assert_int_equal(units_parse_uint("", 100, &v, &err), -1);
    assert_string_equal(err, "empty value");
    assert_int_equal(units_parse_uint("4k", 100000, &v, &err), -1);
    assert_string_equal(err, "not a number");
    assert_int_equal(units_parse_uint("-4", 100, &v, &err), -1);
    assert_string_equal(err, "sign not allowed");
    assert_int_equal(units_parse_uint("4 ", 100, &v, &err), -1);
    assert_string_equal(err, "blank not allowed");
    /* a NULL error_r is allowed */
    assert_int_equal(units_parse_uint("x", 100, &v, NULL), -1);
    assert_int_equal(units_parse_duration("x", &v, NULL), -1);
    assert_int_equal(units_parse_size("x", &v, NULL), -1);
}

static void
test_format(void **state)
{
    static const struct {
        uint64_t secs;
        const char *want;
    } dur[] = {
        { 0, "0s" }, { 59, "59s" }, { 60, "1m" }, { 5400, "1h30m" }, { 432000, "5d" },
        { 604800, "1w" }, { 694861, "1w1d1h1m1s" }, { 10800, "3h" },
    };
    static const struct {
        uint64_t bytes;
        const char *want;
    } sz[] = {
        { 0, "0" }, { 123, "123" }, { 1024, "1K" }, { 1536, "1536" }, { 1572864, "1536K" },
        { 10485760, "10M" }, { 1099511627776ULL, "1T" },
    };
    char buf[64];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(dur); i++)
        assert_string_equal(units_format_duration(dur[i].secs, buf, sizeof(buf)), dur[i].want);
    for (i = 0; i < ARRAY_LEN(sz); i++)
        assert_string_equal(units_format_size(sz[i].bytes, buf, sizeof(buf)), sz[i].want);
    /* a small buffer holds a prefix, always terminated */
    assert_string_equal(units_format_duration(694861, buf, 5), "1w1d");
    assert_string_equal(units_format_size(10485760, buf, 3), "10");
}

static void
test_round_trip(void **state)
{
    static const uint64_t secs[] = { 0, 1, 61, 3599, 86399, 1234567, UINT64_MAX };
    char buf[64];
    uint64_t back;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(secs); i++) {
        units_format_duration(secs[i], buf, sizeof(buf));
        assert_int_equal(units_parse_duration(buf, &back, NULL), 0);
        assert_true(back == secs[i]);
        units_format_size(secs[i], buf, sizeof(buf));
        assert_int_equal(units_parse_size(buf, &back, NULL), 0);
        assert_true(back == secs[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
