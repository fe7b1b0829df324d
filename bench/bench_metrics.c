/* SPDX-License-Identifier: ISC */
/*
 * bench_metrics.c - what counting costs (bench/metrics.sh): nanoseconds
 * per metrics_inc, per metrics_observe, per metrics_clock + metrics_elapsed
 * (what a timed event adds), per metrics_inc from 4 threads on one counter
 * (the milter's callback threads), and per exposition (a scrape), each with
 * metrics on; and metrics_inc with metrics off. One line each:
 * "NAME NS_PER_OP". Wall-clock figures: run it on a quiet machine.
 *
 * usage: bench_metrics [ITERATIONS]   (default 10000000)
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"
#include "metrics.h"

#define THREADS 4

static long iterations = 10000000;

static double
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void
report(const char *name, double t0, long n)
{
    printf("%s %.1f\n", name, (now() - t0) / (double)n);
}

static void *
inc_many(void *arg)
{
    long i;

    (void)arg;
    for (i = 0; i < iterations; i++)
        metrics_inc(METRIC_MILTER_MESSAGES, METRICS_PASSED);
    return NULL;
}

static int
threads(void)
{
    pthread_t t[THREADS];
    double t0 = now();
    int i;

    for (i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, inc_many, NULL) != 0)
            return -1;
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    report("inc_4_threads_same_counter", t0, iterations * THREADS);
    return 0;
}

int
main(int argc, char **argv)
{
    struct timespec ts;
    struct errbuf err;
    double t0, sink = 0;
    size_t len = 0;
    long i, scrapes;
    char *text;

    if (argc > 1 && (iterations = atol(argv[1])) <= 0) {
        fprintf(stderr, "usage: bench_metrics [ITERATIONS]\n");
        return 64;
    }
    t0 = now();
    for (i = 0; i < iterations; i++)
        metrics_inc(METRIC_DELIVERIES, METRICS_SENT);
    report("inc_off", t0, iterations);
    if (metrics_init(METRICS_FLUSHER, &err) < 0) {
        fprintf(stderr, "bench_metrics: %s\n", err.msg);
        return 1;
    }
    t0 = now();
    for (i = 0; i < iterations; i++)
        metrics_inc(METRIC_DELIVERIES, METRICS_SENT);
    report("inc", t0, iterations);
    t0 = now();
    for (i = 0; i < iterations; i++)
        metrics_observe(METRIC_FLUSH_DURATION, 1, (double)(i & 1023) / 100.0);
    report("observe", t0, iterations);
    t0 = now();
    for (i = 0; i < iterations; i++) {
        metrics_clock(&ts);
        sink += metrics_elapsed(&ts);
    }
    report("clock_and_elapsed", t0, iterations);
    if (threads() < 0)
        return 1;
    scrapes = iterations / 10000 > 0 ? iterations / 10000 : 1;
    t0 = now();
    for (i = 0; i < scrapes; i++) {
        if ((text = metrics_expose(&len)) == NULL)
            return 1;
        x_free(text);
    }
    report("expose", t0, scrapes);
    printf("expose_bytes %zu\n", len);
    return sink < 0;
}
