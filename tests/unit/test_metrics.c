/* SPDX-License-Identifier: ISC */
/*
 * test_metrics.c - autoturn's metric families: nothing happens before
 * metrics_init; each daemon exposes its own families and the shared ones;
 * every family is named, once, by Prometheus's conventions (checked on
 * the exposition itself: counters end in _total, histograms in
 * _seconds); counts made in a forked child and in many threads at once
 * all arrive; histogram buckets take a value equal to their bound; flush
 * reasons map to their fixed labels (anything else: "other"); the held
 * and table gauges.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "metrics.h"

#define THREADS    4
#define PER_THREAD 100000

/* exposition - the whole text (freed by the caller) */
static char *
exposition(void)
{
    size_t len = 0;
    char *text = metrics_expose(&len);

    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* has_line - text contains exactly this line */
static bool
has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
        p += n;
    }
    return false;
}

static void
line_is(const char *line)
{
    char *text = exposition();

    if (!has_line(text, line))
        fail_msg("no line \"%s\" in:\n%s", line, text);
    x_free(text);
}

/* --- before metrics_init (these run first) --- */

static void
test_off(void **state)
{
    struct timespec t;
    size_t len;

    (void)state;
    assert_false(metrics_on());
    metrics_inc(METRIC_DELIVERIES, METRICS_SENT);              /* no-ops, no crash */
    metrics_observe(METRIC_FLUSH_DURATION, 0, 1.0);
    metrics_set(METRIC_HELD_MESSAGES, 0, 3);
    metrics_table_loaded(1, 2, 0.1);
    metrics_clock(&t);
    assert_true(t.tv_sec == 0 && t.tv_nsec == 0);
    assert_true(metrics_elapsed(&t) == 0);
    errno = 0;
    assert_null(metrics_expose(&len));
    assert_int_equal(errno, ENOENT);
}

/* in_child - run fn in a forked child (a process of its own, for a
 * metrics_init of another daemon); the child's exit status is the result */
static void
in_child(int (*fn)(void))
{
    int st = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int
milter_families(void)
{
    struct errbuf err;
    size_t len;
    char *text;
    int rc = 0;

    if (metrics_init(METRICS_MILTER, &err) < 0 || (text = metrics_expose(&len)) == NULL)
        return 10;
    if (strstr(text, "\nautoturn_milter_messages_total{result=\"held\"} 0\n") == NULL ||
        strstr(text, "\nautoturn_customer_table_loads_total 0\n") == NULL ||
        strstr(text, "\nautoturn_build_info{version=\"") == NULL)
        rc = 1;
    if (strstr(text, "autoturn_deliveries_total") != NULL ||
        strstr(text, "autoturn_policyd_") != NULL || strstr(text, "autoturn_held_") != NULL)
        rc = 2;
    x_free(text);
    return rc;
}

static void
test_milter_families(void **state)
{
    (void)state;
    in_child(milter_families);
}

static int
policyd_families(void)
{
    struct errbuf err;
    size_t len;
    char *text;
    int rc = 0;

    if (metrics_init(METRICS_POLICYD, &err) < 0 || (text = metrics_expose(&len)) == NULL)
        return 10;
    if (strstr(text, "\nautoturn_policyd_requests_total{decision=\"dunno\"} 0\n") == NULL ||
        strstr(text, "\nautoturn_policyd_request_duration_seconds_count 0\n") == NULL ||
        strstr(text, "\nautoturn_customer_table_last_load_success 0\n") == NULL)
        rc = 1;
    if (strstr(text, "autoturn_milter_") != NULL || strstr(text, "autoturn_flush") != NULL)
        rc = 2;
    x_free(text);
    return rc;
}

static void
test_policyd_families(void **state)
{
    (void)state;
    in_child(policyd_families);
}

/* --- the flusher's families, in this process from here on --- */

static void
test_init(void **state)
{
    struct errbuf err;

    (void)state;
    assert_int_equal(metrics_init(METRICS_FLUSHER, &err), 0);
    assert_true(metrics_on());
    assert_int_equal(metrics_init(METRICS_FLUSHER, &err), 0);   /* once is enough */
}

/* valid_name - [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool
valid_name(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return n > 0;
}

/* check_type_line - "# TYPE name kind": the conventions for name */
static void
check_type_line(const char *line, size_t len)
{
    const char *name = line + 7, *sp = memchr(name, ' ', len - 7);
    size_t n = sp != NULL ? (size_t)(sp - name) : 0;
    const char *kind = sp != NULL ? sp + 1 : "";
    size_t klen = len - 7 - n - 1;

    if (!valid_name(name, n))
        fail_msg("bad metric name in: %.*s", (int)len, line);
    if (strncmp(name, "autoturn_", 9) != 0 && strncmp(name, "process_", 8) != 0)
        fail_msg("not autoturn_ or process_: %.*s", (int)len, line);
    if (klen == 7 && strncmp(kind, "counter", 7) == 0 &&
        (n < 6 || strncmp(name + n - 6, "_total", 6) != 0))
        fail_msg("a counter without _total: %.*s", (int)len, line);
    if (klen != 7 && n >= 6 && strncmp(name + n - 6, "_total", 6) == 0)
        fail_msg("_total on what is not a counter: %.*s", (int)len, line);
    if (klen == 9 && strncmp(kind, "histogram", 9) == 0 &&
        (n < 8 || strncmp(name + n - 8, "_seconds", 8) != 0))
        fail_msg("a histogram not in seconds: %.*s", (int)len, line);
}

static void
test_conventions(void **state)
{
    char *text = exposition(), *p, *nl;
    size_t types = 0, i, j;

    (void)state;
    for (p = text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
        if (strncmp(p, "# TYPE ", 7) == 0) {
            check_type_line(p, (size_t)(nl - p));
            types++;
        }
    assert_true(types >= 20);
    for (i = 0; i < METRIC_COUNT; i++) {       /* every row is there, once */
        assert_non_null(metrics_name((enum metric)i));
        for (j = 0; j < i; j++)
            assert_string_not_equal(metrics_name((enum metric)i), metrics_name((enum metric)j));
    }
    assert_null(metrics_name(METRIC_COUNT));
    x_free(text);
}

static void
test_counters(void **state)
{
    (void)state;
    metrics_inc(METRIC_DELIVERIES, METRICS_SENT);
    metrics_inc(METRIC_DELIVERIES, METRICS_SENT);
    metrics_add(METRIC_DELIVERIES, METRICS_EXPIRED, 5);
    metrics_inc(METRIC_DELIVERIES, 99);                         /* no such label: ignored */
    metrics_set(METRIC_DELIVERIES, METRICS_SENT, 100);          /* not a gauge: ignored */
    line_is("autoturn_deliveries_total{outcome=\"sent\"} 2");
    line_is("autoturn_deliveries_total{outcome=\"deferred\"} 0");
    line_is("autoturn_deliveries_total{outcome=\"expired\"} 5");
    assert_string_equal(metrics_label(METRIC_DELIVERIES, METRICS_BOUNCED), "bounced");
    assert_null(metrics_label(METRIC_DELIVERIES, 4));
    assert_null(metrics_label(METRIC_HELD_BYTES, 0));
}

static int
count_in_child(void)
{
    metrics_add(METRIC_ODMR_AUTH_FAILURES, 0, 7);
    metrics_flush_done("atrn", false, 2);
    return 0;
}

static void
test_fork(void **state)
{
    (void)state;
    in_child(count_in_child);
    line_is("autoturn_odmr_auth_failures_total 7");
    line_is("autoturn_flushes_total{reason=\"atrn\"} 1");
    line_is("autoturn_flush_duration_seconds_bucket{reason=\"atrn\",le=\"2.5\"} 1");
}

static void *
count_many(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < PER_THREAD; i++) {
        metrics_inc(METRIC_ODMR_SESSIONS_TOTAL, 0);
        metrics_observe(METRIC_FLUSH_DURATION, metrics_reason("hello"), 0.5);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[THREADS];
    char line[128];
    size_t i;

    (void)state;
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_many, NULL), 0);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    (void)snprintf(line, sizeof(line), "autoturn_odmr_sessions_total %d", THREADS * PER_THREAD);
    line_is(line);
    (void)snprintf(line, sizeof(line),
                   "autoturn_flush_duration_seconds_count{reason=\"hello\"} %d",
                   THREADS * PER_THREAD);
    line_is(line);
    (void)snprintf(line, sizeof(line), "autoturn_flush_duration_seconds_sum{reason=\"hello\"} %d",
                   THREADS * PER_THREAD / 2);
    line_is(line);
}

static void
test_flushes(void **state)
{
    (void)state;
    metrics_flush_done("etrn", true, 0.25);      /* on a bound: in that bucket (le) */
    metrics_flush_done("etrn", false, 7200);     /* above every bound */
    metrics_flush_done("cluster", true, 1);      /* not a known reason */
    metrics_flush_done(NULL, false, 1);
    line_is("autoturn_flushes_total{reason=\"etrn\"} 2");
    line_is("autoturn_flush_failures_total{reason=\"etrn\"} 1");
    line_is("autoturn_flush_duration_seconds_bucket{reason=\"etrn\",le=\"0.1\"} 0");
    line_is("autoturn_flush_duration_seconds_bucket{reason=\"etrn\",le=\"0.25\"} 1");
    line_is("autoturn_flush_duration_seconds_bucket{reason=\"etrn\",le=\"3600\"} 1");
    line_is("autoturn_flush_duration_seconds_bucket{reason=\"etrn\",le=\"+Inf\"} 2");
    line_is("autoturn_flush_duration_seconds_sum{reason=\"etrn\"} 7200.25");
    line_is("autoturn_flush_duration_seconds_count{reason=\"etrn\"} 2");
    line_is("autoturn_flushes_total{reason=\"other\"} 2");
    line_is("autoturn_flush_failures_total{reason=\"other\"} 1");
    assert_int_equal(metrics_reason("connect"), 0);
    assert_string_equal(metrics_label(METRIC_FLUSHES, metrics_reason("manual")), "manual");
    assert_string_equal(metrics_label(METRIC_FLUSHES, metrics_reason("MANUAL")), "other");
}

static void
test_gauges(void **state)
{
    const char *key = "\nautoturn_held_oldest_timestamp_seconds ";
    time_t before = time(NULL);
    char *text, *p;
    double v;

    (void)state;
    metrics_held(3, 1536, 1700000000);
    line_is("autoturn_held_messages 3");
    line_is("autoturn_held_bytes 1536");
    line_is("autoturn_held_oldest_timestamp_seconds 1.7e+09");
    metrics_held(0, 0, 0);                       /* nothing held: the scan's own time */
    line_is("autoturn_held_messages 0");
    text = exposition();
    assert_non_null(p = strstr(text, key));
    v = strtod(p + strlen(key), NULL);
    assert_true(v >= (double)before && v <= (double)time(NULL));
    x_free(text);
    metrics_gauge_add(METRIC_ODMR_SESSIONS, 0, 2);
    metrics_gauge_add(METRIC_ODMR_SESSIONS, 0, -1);
    line_is("autoturn_odmr_sessions 1");
    metrics_table_loaded(1700000123, 1000000, 0.5);
    line_is("autoturn_customer_table_generation 1.700000123e+09");
    line_is("autoturn_customer_table_customers 1e+06");
    line_is("autoturn_customer_table_load_duration_seconds 0.5");
    line_is("autoturn_customer_table_last_load_success 1");
    metrics_table_refused();
    metrics_table_state(false);
    line_is("autoturn_customer_table_load_failures_total 1");
    line_is("autoturn_customer_table_last_load_success 0");
    line_is("autoturn_customer_table_loads_total 1");
}

static void
test_clock(void **state)
{
    struct timespec t;

    (void)state;
    metrics_clock(&t);
    assert_false(t.tv_sec == 0 && t.tv_nsec == 0);
    usleep(1000);
    assert_true(metrics_elapsed(&t) >= 0.001);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {   /* in this order: the first three run before init */
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_milter_families),
        cmocka_unit_test(test_policyd_families),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_conventions),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_flushes),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
