/* SPDX-License-Identifier: ISC */
/*
 * bench_custdb.c - how the customer table scales: generates a source with
 * N customers (one domain and one /32 each, a /24 for every 10th), times
 * custdb_compile (wall clock, peak RSS of this process), then times
 * random lookups by domain and by address (90% hits, 10% misses) on one
 * thread. Prints one line: N compile_s peak_rss_kb domain_per_s addr_per_s.
 *
 * Usage: bench_custdb [-l LOOKUPS] N WORKDIR
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "custdb.h"
#include "custdb_compile.h"
#include "util.h"

#define DEFAULT_LOOKUPS 2000000ul

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
addr_of(unsigned long i, char *buf, size_t size)
{
    (void)str_printf(buf, size, "10.%lu.%lu.%lu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static void
net_of(unsigned long i, char *buf, size_t size)
{
    unsigned long base = 0x64000000ul + ((i / 10) << 8);

    (void)str_printf(buf, size, "%lu.%lu.%lu.0/24", base >> 24, (base >> 16) & 255,
                     (base >> 8) & 255);
}

static int
generate(const char *path, unsigned long n)
{
    char addr[64], net[64];
    FILE *fp = fopen(path, "w");
    unsigned long i;

    if (fp == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        addr_of(i, addr, sizeof(addr));
        fprintf(fp, "customer c%lu\n  domain c%lu.example\n  address %s", i, i, addr);
        if (i % 10 == 0) {
            net_of(i, net, sizeof(net));
            fprintf(fp, " %s", net);
        }
        fputc('\n', fp);
    }
    return fclose(fp);
}

static void
on_error(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "bench_custdb: %s\n", msg);
}

/* pick - a customer index, or one past the end (a miss) one time in ten. */
static unsigned long
pick(unsigned long n, unsigned long *miss)
{
    unsigned long r = (unsigned long)random();

    if (r % 10 == 0) {
        (*miss)++;
        return n + r % 1000;
    }
    return (r / 10) % n;
}

static double
bench_domains(struct custdb *db, unsigned long n, unsigned long lookups)
{
    char (*q)[32] = malloc(lookups * sizeof(*q));
    unsigned long i, miss = 0, found = 0;
    struct errbuf err;
    double t;

    if (q == NULL)
        return -1;
    for (i = 0; i < lookups; i++)
        (void)str_printf(q[i], sizeof(q[i]), "x.c%lu.example", pick(n, &miss));
    for (i = 0; i < lookups; i++)   /* "x." prefix: exercise the parent walk too */
        if (i % 2 == 0)
            memmove(q[i], q[i] + 2, strlen(q[i] + 2) + 1);
    t = now();
    for (i = 0; i < lookups; i++) {
        int r = custdb_lookup_domain(db, q[i], NULL, NULL, &err);

        if (r < 0) {
            fprintf(stderr, "bench_custdb: %s\n", err.msg);
            exit(1);
        }
        found += (unsigned long)r;
    }
    t = now() - t;
    free(q);
    /* only exact domains are registered: "x.cN" never matches */
    if (found == 0 || found > lookups - miss)
        fprintf(stderr, "bench_custdb: unexpected hit count %lu\n", found);
    return (double)lookups / t;
}

static double
bench_addrs(struct custdb *db, unsigned long n, unsigned long lookups)
{
    struct ipaddr *q = malloc(lookups * sizeof(*q));
    unsigned long i, miss = 0, found = 0;
    char text[64];
    struct errbuf err;
    const char *why;
    double t;

    if (q == NULL)
        return -1;
    for (i = 0; i < lookups; i++) {
        unsigned long k = pick(n, &miss);

        if (i % 3 == 0) {   /* inside a /24 of a 10th customer */
            net_of(k - k % 10, text, sizeof(text));
            *strrchr(text, '/') = '\0';
            text[strlen(text) - 1] = '7';
        } else {
            addr_of(k, text, sizeof(text));
        }
        if (ipaddr_parse(text, &q[i], &why) < 0)
            return -1;
    }
    t = now();
    for (i = 0; i < lookups; i++) {
        int r = custdb_lookup_addr(db, &q[i], NULL, NULL, &err);

        if (r < 0) {
            fprintf(stderr, "bench_custdb: %s\n", err.msg);
            exit(1);
        }
        found += (unsigned long)r;
    }
    t = now() - t;
    free(q);
    if (found == 0)
        fprintf(stderr, "bench_custdb: no address matched\n");
    return (double)lookups / t;
}

int
main(int argc, char **argv)
{
    unsigned long n, lookups = DEFAULT_LOOKUPS;
    struct custdb_compile_stats st;
    char src[4096], dst[4096];
    struct rusage ru;
    struct custdb *db;
    double t, dom, adr;
    int opt;

    while ((opt = getopt(argc, argv, "l:")) != -1) {
        if (opt != 'l')
            goto usage;
        lookups = strtoul(optarg, NULL, 10);
    }
    if (argc - optind != 2 || (n = strtoul(argv[optind], NULL, 10)) == 0 || lookups == 0)
        goto usage;
    if (path_join(src, sizeof(src), argv[optind + 1], "customers") < 0
        || path_join(dst, sizeof(dst), argv[optind + 1], "customers.cdb") < 0
        || generate(src, n) < 0) {
        fprintf(stderr, "bench_custdb: %s: %s\n", argv[optind + 1], strerror(errno));
        return 1;
    }
    t = now();
    if (custdb_compile(src, dst, on_error, NULL, &st) < 0)
        return 1;
    t = now() - t;
    getrusage(RUSAGE_SELF, &ru);
    srandom(1);
    if ((db = custdb_new(dst)) == NULL)
        return 1;
    dom = bench_domains(db, n, lookups);
    adr = bench_addrs(db, n, lookups);
    custdb_free(db);
    printf("%lu %.2f %ld %.0f %.0f\n", n, t, ru.ru_maxrss, dom, adr);
    return 0;
usage:
    fprintf(stderr, "usage: bench_custdb [-l LOOKUPS] N WORKDIR\n");
    return 2;
}
