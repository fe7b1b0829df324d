/* SPDX-License-Identifier: ISC */
/*
 * test_usage.c - the usage record's text form: fixed size and offsets,
 * round trip, every refusal with its reason, the checksum (a torn or
 * edited record is refused), the state word outside the checksum, and
 * the boot rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "usage.h"
#include "util.h"

static void
sample(struct usage *u)
{
    memset(u, 0, sizeof(*u));
    u->counted = 1763700000;
    u->messages = 100000;
    u->bytes = 409600000;
    u->oldest = 1763000000;
    (void)str_copy(u->boot, sizeof(u->boot), "6c0e5b0a-1f64-4d52-9d2a-3bb0d3c4f0aa");
}

static void
test_format_shape(void **state)
{
    char buf[USAGE_SIZE + 1];
    struct usage u;

    (void)state;
    sample(&u);
    usage_format(&u, buf);
    buf[USAGE_SIZE] = '\0';
    assert_int_equal(strlen(buf), USAGE_SIZE);
    assert_memory_equal(buf, "autoturn-usage 1\nstate    clean\nboot     6c0e5b0a-", 50);
    assert_memory_equal(buf + USAGE_STATE_OFFSET, "clean", USAGE_STATE_LEN);
    assert_non_null(strstr(buf, "\nmessages               100000\n"));
    assert_non_null(strstr(buf, "\noldest             1763000000\n"));
    assert_int_equal(buf[USAGE_SIZE - 1], '\n');
    u.dirty = true;
    u.oldest = USAGE_OLDEST_UNKNOWN;
    usage_format(&u, buf);
    assert_memory_equal(buf + USAGE_STATE_OFFSET, "dirty", USAGE_STATE_LEN);
    assert_non_null(strstr(buf, "\noldest                     -1\n"));
}

static void
test_round_trip(void **state)
{
    char buf[USAGE_SIZE + 10];
    struct usage u, v;
    const char *why = NULL;

    (void)state;
    sample(&u);
    u.dirty = true;
    usage_format(&u, buf);
    assert_int_equal(usage_parse(buf, USAGE_SIZE, &v, &why), 0);
    assert_true(v.dirty);
    assert_int_equal(v.counted, u.counted);
    assert_int_equal(v.messages, u.messages);
    assert_int_equal(v.bytes, u.bytes);
    assert_int_equal(v.oldest, u.oldest);
    assert_string_equal(v.boot, u.boot);
    /* extremes */
    u.messages = UINT64_MAX;
    u.bytes = 0;
    u.oldest = USAGE_OLDEST_UNKNOWN;
    u.counted = INT64_MAX;
    usage_format(&u, buf);
    memset(buf + USAGE_SIZE, 'x', 10);      /* bytes after a record are not read */
    assert_int_equal(usage_parse(buf, sizeof(buf), &v, &why), 0);
    assert_int_equal(v.messages, UINT64_MAX);
    assert_int_equal(v.oldest, USAGE_OLDEST_UNKNOWN);
    assert_int_equal(v.counted, INT64_MAX);
}

/* the state word changes alone: the checksum does not cover it */
static void
test_state_outside_checksum(void **state)
{
    char buf[USAGE_SIZE];
    struct usage u, v;
    const char *why = NULL;

    (void)state;
    sample(&u);
    usage_format(&u, buf);
    memcpy(buf + USAGE_STATE_OFFSET, "dirty", USAGE_STATE_LEN);
    assert_int_equal(usage_parse(buf, sizeof(buf), &v, &why), 0);
    assert_true(v.dirty);
    memcpy(buf + USAGE_STATE_OFFSET, "dlean", USAGE_STATE_LEN);    /* torn */
    assert_int_equal(usage_parse(buf, sizeof(buf), &v, &why), -1);
    assert_string_equal(why, "bad state");
}

/* set - replace the text at the first occurrence of what */
static void
set(char *buf, const char *what, const char *with)
{
    char tmp[USAGE_SIZE + 1], *p;

    memcpy(tmp, buf, USAGE_SIZE);
    tmp[USAGE_SIZE] = '\0';
    assert_non_null(p = strstr(tmp, what));
    memcpy(buf + (p - tmp), with, strlen(with));
}

static void
test_refused(void **state)
{
    static const struct {
        const char *label, *what, *with, *why;
    } rows[] = {
        {"header", "autoturn-usage 1", "autoturn-usage 2", "bad header"},
        {"name", "\nbytes    ", "\nBytes    ", "bad header"},
        {"line end", "clean\n", "clean ", "bad header"},
        {"state", "clean", "CLEAN", "bad state"},
        {"boot", "6c0e5b0a", "6C0E5B0A", "bad boot id"},
        {"counted", "counted            1763700000", "counted            17637x0000",
         "bad counted"},
        {"counted sign", "counted            1763700000", "counted           -1763700000",
         "bad counted"},
        {"messages empty", "messages               100000", "messages                     ",
         "bad messages"},
        {"messages inner blank", "messages               100000",
         "messages               100 00", "bad messages"},
        {"bytes overflow", "bytes               409600000", "bytes    99999999999999999999",
         "bad bytes"},
        {"oldest -2", "oldest             1763000000", "oldest                     -2",
         "bad oldest"},
        {"oldest overflow", "oldest             1763000000", "oldest    9223372036854775808",
         "bad oldest"},
        {"edited number", "messages               100000", "messages               100001",
         "checksum mismatch"},
        {"edited boot", "6c0e5b0a", "6c0e5b0b", "checksum mismatch"},
    };
    char buf[USAGE_SIZE];
    struct usage u, v;
    const char *why;
    size_t i;

    (void)state;
    sample(&u);
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        usage_format(&u, buf);
        set(buf, rows[i].what, rows[i].with);
        why = NULL;
        if (usage_parse(buf, sizeof(buf), &v, &why) != -1)
            fail_msg("%s: accepted", rows[i].label);
        if (why == NULL || strcmp(why, rows[i].why) != 0)
            fail_msg("%s: '%s', want '%s'", rows[i].label, why ? why : "(null)", rows[i].why);
    }
    usage_format(&u, buf);
    assert_int_equal(usage_parse(buf, USAGE_SIZE - 1, &v, &why), -1);
    assert_string_equal(why, "short record");
    assert_int_equal(usage_parse("", 0, &v, &why), -1);
    assert_string_equal(why, "short record");
}

static void
test_boot(void **state)
{
    const char *mine = usage_boot_id();

    (void)state;
    assert_int_equal(strlen(mine), USAGE_BOOT_LEN);
    assert_true(usage_same_boot(mine));
    if (strcmp(mine, USAGE_BOOT_UNKNOWN) == 0) {
        /* no boot id: nothing can be told apart, every record is trusted */
        assert_true(usage_same_boot("11111111-2222-3333-4444-555555555555"));
        return;
    }
    assert_false(usage_same_boot("11111111-2222-3333-4444-555555555555"));
    assert_false(usage_same_boot(USAGE_BOOT_UNKNOWN));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_shape),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_state_outside_checksum),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_boot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
