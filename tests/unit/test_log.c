/* SPDX-License-Identifier: ISC */
/*
 * test_log.c - the log line format on stderr: program name and pid,
 * severity prefixes, strerror for log_warn/log_error, the threshold,
 * control characters, the length cap, the fatal exit, and the name tables.
 */
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "log.h"

#define CAPTURE_MAX 8192

static char capture_path[64];
static int saved_stderr = -1;

/* capture_start - stderr to a fresh temp file */
static void
capture_start(void)
{
    int fd;

    (void)str_copy(capture_path, sizeof(capture_path), "/tmp/test_log.XXXXXX");
    fd = mkstemp(capture_path);
    assert_true(fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* capture_end - restore stderr; the captured text into buf */
static void
capture_end(char *buf, size_t size)
{
    ssize_t n;
    int fd;

    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    fd = open(capture_path, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, size - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    unlink(capture_path);
}

/* expect_lines - buf equals the lines, each "prog[pid]: " + text + "\n" */
static void
expect_lines(const char *buf, const char *prog, const char *const *texts, size_t n)
{
    char want[CAPTURE_MAX] = "", line[2200];
    size_t i;

    for (i = 0; i < n; i++) {
        assert_int_equal(str_printf(line, sizeof(line), "%s[%ld]: %s\n", prog,
                                    (long)getpid(), texts[i]), 0);
        assert_true(strlen(want) + strlen(line) < sizeof(want));
        memcpy(want + strlen(want), line, strlen(line) + 1);
    }
    assert_string_equal(buf, want);
}

static void
test_default_before_init(void **state)
{
    static const char *const want[] = { "hello 1" };
    char buf[CAPTURE_MAX];

    (void)state;
    capture_start();
    log_info("hello %d", 1);
    capture_end(buf, sizeof(buf));
    expect_lines(buf, "autoturn", want, 1);
}

static void
test_prefixes(void **state)
{
    static const char *const want[] = {
        "plain info",
        "warning: w1: No such file or directory",
        "warning: w2",
        "error: e1: Permission denied",
        "error: e2",
    };
    char buf[CAPTURE_MAX];

    (void)state;
    log_init("autoturn-test", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO);
    capture_start();
    log_debug("dropped below the threshold");
    log_info("plain info");
    errno = ENOENT;
    log_warn("w1");
    assert_int_equal(errno, ENOENT);          /* errno kept */
    log_warnx("w2");
    errno = EACCES;
    log_error("e1");
    log_errorx("e2");
    capture_end(buf, sizeof(buf));
    expect_lines(buf, "autoturn-test", want, ARRAY_LEN(want));
}

static void
test_threshold(void **state)
{
    static const char *const want_error[] = { "error: only this" };
    static const char *const want_debug[] = { "dbg", "inf" };
    char buf[CAPTURE_MAX];

    (void)state;
    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_ERROR);
    capture_start();
    log_info("no");
    log_warnx("no");
    log_errorx("only this");
    capture_end(buf, sizeof(buf));
    expect_lines(buf, "t", want_error, 1);

    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_DEBUG);
    capture_start();
    log_debug("dbg");
    log_info("inf");
    capture_end(buf, sizeof(buf));
    expect_lines(buf, "t", want_debug, 2);
}

static void
test_sanitize(void **state)
{
    static const char *const want[] = { "a?b?c?d" };
    char buf[CAPTURE_MAX];

    (void)state;
    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO);
    capture_start();
    log_info("a\nb\rc%cd", 0x7f);
    capture_end(buf, sizeof(buf));
    expect_lines(buf, "t", want, 1);
}

static void
test_long_line(void **state)
{
    char big[5000], buf[CAPTURE_MAX];
    size_t len;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO);
    capture_start();
    errno = ENOENT;
    log_warn("%s", big);
    log_info("next");
    capture_end(buf, sizeof(buf));
    len = strcspn(buf, "\n");
    assert_true(len < 2048);                   /* one bounded line */
    assert_true(len > 1900);                   /* ... filled up */
    assert_memory_equal(buf + len - 3, "...", 3);
    assert_non_null(strstr(buf, "]: warning: xxx"));
    assert_non_null(strstr(buf + len + 1, "]: next\n"));
}

static void
test_fatal(void **state)
{
    char buf[CAPTURE_MAX], want[128];
    int status;
    pid_t pid;

    (void)state;
    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_ERROR);
    capture_start();
    fflush(stdout);                 /* the child must not repeat cmocka's output */
    if ((pid = fork()) == 0) {
        errno = EPERM;
        log_fatal("cannot %s", "go on");
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if ((pid = fork()) == 0)
        log_fatalx("stop");
    assert_int_equal(waitpid(pid, &status, 0), pid);
    capture_end(buf, sizeof(buf));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(str_printf(want, sizeof(want), "]: fatal: cannot go on: %s\n",
                                strerror(EPERM)), 0);
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "]: fatal: stop\n"));
}

static void
test_names(void **state)
{
    static const struct {
        const char *name;
        int want;
    } fac[] = {
        { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
        { "local0", LOG_LOCAL0 }, { "local7", LOG_LOCAL7 }, { "kern", -1 },
        { "MAIL", -1 }, { "", -1 }, { "local8", -1 },
    };
    static const struct {
        const char *name;
        int want;
    } lev[] = {
        { "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },
        { "warning", LOG_LEVEL_WARNING }, { "error", LOG_LEVEL_ERROR },
        { "warn", -1 }, { "", -1 }, { "Info", -1 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(fac); i++)
        assert_int_equal(log_facility_parse(fac[i].name), fac[i].want);
    for (i = 0; i < ARRAY_LEN(lev); i++)
        assert_int_equal(log_level_parse(lev[i].name), lev[i].want);
}

static void
test_syslog(void **state)
{
    char buf[CAPTURE_MAX];

    (void)state;
    /* syslog destination: nothing goes to stderr (the socket may be absent) */
    log_init("t", LOG_DEST_SYSLOG, LOG_LOCAL7, LOG_LEVEL_DEBUG);
    capture_start();
    log_debug("to syslog");
    capture_end(buf, sizeof(buf));
    assert_string_equal(buf, "");
    log_init("t", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_before_init),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_fatal),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_syslog),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
