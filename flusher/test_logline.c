/* SPDX-License-Identifier: ISC */
/*
 * test_logline.c - unit tests of the flusher's per-recipient log line
 * (logline.c): the dsn= code (ours, the server's enhanced code, the
 * reply's class, the fallback; malformed and mismatched codes) and the
 * whole line with and without the MTA's queue id, captured from stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "logline.h"
#include "util.h"

static const char *
dsn(const char *own, const char *text, const char *fallback)
{
    static char buf[LOGLINE_DSN_MAX];

    logline_dsn(own, text, fallback, buf, sizeof(buf));
    return buf;
}

static void
test_dsn(void **state)
{
    (void)state;
    assert_string_equal(dsn("5.3.4", "250 2.0.0 Ok", "2.0.0"), "5.3.4");      /* ours first */
    assert_string_equal(dsn(NULL, "250 2.0.0 Ok: queued as X", "2.0.0"), "2.0.0");
    assert_string_equal(dsn(NULL, "550 5.7.1 <a@b>: Relay access denied", "5.0.0"), "5.7.1");
    assert_string_equal(dsn(NULL, "452 4.5.3 Too many recipients", "4.0.0"), "4.5.3");
    assert_string_equal(dsn(NULL, "421-4.7.0 try later / 421 4.7.0 bye", "4.0.0"), "4.7.0");
    assert_string_equal(dsn(NULL, "550 5.123.456 x", "5.0.0"), "5.123.456");
    assert_string_equal(dsn(NULL, "250 Ok", "2.0.0"), "2.0.0");               /* no code */
    assert_string_equal(dsn(NULL, "554 Transaction failed", "4.0.0"), "5.0.0"); /* class */
    assert_string_equal(dsn(NULL, "450 2.0.0 mismatched", "4.0.0"), "4.0.0");
    assert_string_equal(dsn(NULL, "550 5.1234.1 x", "5.0.0"), "5.0.0");        /* 4 digits */
    assert_string_equal(dsn(NULL, "550 5.1.", "5.0.0"), "5.0.0");
    assert_string_equal(dsn(NULL, "550 5.1.1x", "5.0.0"), "5.0.0");
    assert_string_equal(dsn(NULL, "no reply", "4.0.0"), "4.0.0");
    assert_string_equal(dsn(NULL, "", "4.0.0"), "4.0.0");
    assert_string_equal(dsn(NULL, "25", "4.0.0"), "4.0.0");
    assert_string_equal(dsn(NULL, "350 x", "4.0.0"), "4.0.0");
}

/* line - logline_rcpt's output, stderr captured */
static void
line(const struct envelope *env, char *out, size_t size)
{
    char path[] = "/tmp/test_logline.XXXXXX";
    int saved = dup(STDERR_FILENO), fd = mkstemp(path);
    ssize_t n;

    assert_true(saved >= 0 && fd >= 0);
    log_init("test_logline", LOG_DEST_STDERR, 0, LOG_LEVEL_INFO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    logline_rcpt("1796664.M5P6Q7.mx", env, "a@virt.dom", "acme", "mx.virt.dom[192.0.2.1]:25",
                 env->arrival + 12, "2.0.0", "sent", "250 2.0.0 Ok");
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_true(lseek(fd, 0, SEEK_SET) == 0);
    n = read(fd, out, size - 1);
    assert_true(n > 0);
    out[n] = '\0';
    close(fd);
    unlink(path);
}

static void
test_line(void **state)
{
    struct envelope env;
    char out[1024];

    (void)state;
    memset(&env, 0, sizeof(env));
    env.arrival = 1700000000;
    (void)str_copy(env.queue_id, sizeof(env.queue_id), "4XyZ1k0Wq9z3");
    line(&env, out, sizeof(out));
    assert_non_null(strstr(out, ": 1796664.M5P6Q7.mx: to=<a@virt.dom>, orig_queue_id=4XyZ1k0Wq9z3, "
                                "customer=acme, relay=mx.virt.dom[192.0.2.1]:25, delay=12, "
                                "dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"));
    env.queue_id[0] = '\0';                /* imported: no MTA queue id */
    line(&env, out, sizeof(out));
    assert_non_null(strstr(out, ": 1796664.M5P6Q7.mx: to=<a@virt.dom>, customer=acme, "
                                "relay=mx.virt.dom[192.0.2.1]:25, delay=12, dsn=2.0.0, "
                                "status=sent (250 2.0.0 Ok)\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn),
        cmocka_unit_test(test_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
