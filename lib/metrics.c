/* SPDX-License-Identifier: ISC */
/*
 * metrics.c - autoturn's metric families and their values (see
 * metrics.h). Owns the family table below (each name written once; its
 * rows follow enum metric) and the shared mapping of 64-bit cells that
 * holds the values: a counter or a gauge takes one cell per label value;
 * a histogram takes, per label value, one cell per bucket plus one for
 * the sum. Gauges and sums hold the bits of a double.
 *
 * SECURITY: the mapping holds numbers only, never a pointer or a length
 * the parent trusts: a child that scribbles on it (it is shared with the
 * flusher's network-facing ODMR sessions) can only make the numbers lie.
 * Nothing from the network becomes a label value: values come from the
 * fixed lists below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util.h"
#include "expfmt.h"
#include "metrics.h"
#include "paths.h"

_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free (they live in a shared mapping)");

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct family {
    const char *name;
    enum kind kind;
    unsigned daemons;                /* enum metrics_daemon bits */
    const char *label;               /* NULL: one series without labels */
    const char *const *values;       /* the label's values, NULL-terminated */
    const double *bounds;            /* histograms: bucket upper bounds, ascending */
    size_t nbounds;
    const char *help;
};

#define ALL (METRICS_MILTER | METRICS_POLICYD | METRICS_FLUSHER)
#define MIL METRICS_MILTER
#define POL METRICS_POLICYD
#define FLU METRICS_FLUSHER

static const char *const results[] = {"held", "passed", "tempfailed", NULL};
static const char *const decisions[] = {"ok", "dunno", "defer", "reject", NULL};
static const char *const outcomes[] = {"sent", "deferred", "bounced", "expired", NULL};
static const char *const reasons[] = {"connect", "etrn", "hello", "atrn", "manual", "other",
                                      NULL};
#define REASON_OTHER 5u

/* seconds: a commit is a few fsyncs; a policy decision is microseconds
 * (an ETRN also writes to the flusher's socket); a flush is a whole SMTP
 * session, bounded by flush_timeout */
static const double hold_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1, 2.5, 5, 10};
static const double policy_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01, 0.025, 0.05, 0.1, 0.5};
static const double flush_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                                      1800, 3600};

#define BOUNDS_MAX 16                 /* buckets of one histogram */
_Static_assert(ARRAY_LEN(hold_bounds) <= BOUNDS_MAX && ARRAY_LEN(policy_bounds) <= BOUNDS_MAX &&
               ARRAY_LEN(flush_bounds) <= BOUNDS_MAX, "BOUNDS_MAX too small");

/* rows by designated index: a row can be neither misplaced nor missing
 * without test_metrics noticing (a missing row has no name) */
#define PLAIN(id, name, kind, who, help) [id] = { name, kind, who, NULL, NULL, NULL, 0, help }
#define LABELLED(id, name, kind, who, label, values, help) \
    [id] = { name, kind, who, label, values, NULL, 0, help }
#define HIST(id, name, who, label, values, bounds, help) \
    [id] = { name, HISTOGRAM, who, label, values, bounds, ARRAY_LEN(bounds), help }

static const struct family families[METRIC_COUNT] = {
    PLAIN(METRIC_TABLE_LAST_LOAD_SUCCESS, "autoturn_customer_table_last_load_success", GAUGE,
          ALL, "1 if the customer table file was usable when last checked, 0 if it is missing "
          "or was refused (the daemon then keeps the table it had, if any)"),
    PLAIN(METRIC_TABLE_LOADS, "autoturn_customer_table_loads_total", COUNTER, ALL,
          "Customer table files loaded (at start and on every switch to a new table)"),
    PLAIN(METRIC_TABLE_LOAD_FAILURES, "autoturn_customer_table_load_failures_total", COUNTER,
          ALL, "Customer table files refused (corrupt, not a table), once per file"),
    PLAIN(METRIC_TABLE_LOAD_TIMESTAMP, "autoturn_customer_table_load_timestamp_seconds", GAUGE,
          ALL, "When the customer table in use was loaded (seconds since the epoch)"),
    PLAIN(METRIC_TABLE_LOAD_DURATION, "autoturn_customer_table_load_duration_seconds", GAUGE,
          ALL, "How long opening and checking the customer table in use took"),
    PLAIN(METRIC_TABLE_GENERATION, "autoturn_customer_table_generation", GAUGE, ALL,
          "Generation of the customer table in use: its file's modification time (seconds "
          "since the epoch), new with every autoturnctl compile"),
    PLAIN(METRIC_TABLE_CUSTOMERS, "autoturn_customer_table_customers", GAUGE, ALL,
          "Customers in the customer table in use"),
    LABELLED(METRIC_MILTER_MESSAGES, "autoturn_milter_messages_total", COUNTER, MIL, "result",
             results, "Messages by the milter's verdict: held (stored for at least one "
             "customer), passed (nothing held), tempfailed (storage failed: 4xx)"),
    HIST(METRIC_MILTER_HOLD_DURATION, "autoturn_milter_hold_duration_seconds", MIL, NULL, NULL,
         hold_bounds, "Time the milter takes at the end of a held message to make every copy "
         "durable and remove the held recipients (the delay it adds to the SMTP reply)"),
    LABELLED(METRIC_POLICYD_REQUESTS, "autoturn_policyd_requests_total", COUNTER, POL,
             "decision", decisions, "Policy requests by the action returned: ok (OK), dunno "
             "(DUNNO), defer (4xx), reject (5xx)"),
    HIST(METRIC_POLICYD_REQUEST_DURATION, "autoturn_policyd_request_duration_seconds", POL,
         NULL, NULL, policy_bounds, "Time from a complete policy request to its reply"),
    PLAIN(METRIC_POLICYD_GRANTS, "autoturn_policyd_grants", GAUGE, POL,
          "Live relay grants (updated every second)"),
    PLAIN(METRIC_POLICYD_CONNECTIONS, "autoturn_policyd_connections", GAUGE, POL,
          "Open policy connections (updated every second)"),
    LABELLED(METRIC_DELIVERIES, "autoturn_deliveries_total", COUNTER, FLU, "outcome", outcomes,
             "Recipients of held messages by outcome, one per status= log line: sent, "
             "deferred, bounced (by the customer's server), expired (held longer than max_age)"),
    LABELLED(METRIC_FLUSHES, "autoturn_flushes_total", COUNTER, FLU, "reason", reasons,
             "Flushes ended, by what asked for them"),
    LABELLED(METRIC_FLUSH_FAILURES, "autoturn_flush_failures_total", COUNTER, FLU, "reason",
             reasons, "Flushes that failed (no connection, nothing delivered while mail was "
             "deferred, or the flush process was killed), by what asked for them"),
    HIST(METRIC_FLUSH_DURATION, "autoturn_flush_duration_seconds", FLU, "reason", reasons,
         flush_bounds, "Duration of flushes, by what asked for them"),
    PLAIN(METRIC_FLUSHES_RUNNING, "autoturn_flushes_running", GAUGE, FLU,
          "Flush processes running now (not counting ODMR sessions)"),
    PLAIN(METRIC_HELD_MESSAGES, "autoturn_held_messages", GAUGE, FLU,
          "Messages held for all customers, at the last complete spool scan (expiry sweep)"),
    PLAIN(METRIC_HELD_BYTES, "autoturn_held_bytes", GAUGE, FLU,
          "Bytes held for all customers, at the last complete spool scan (expiry sweep)"),
    PLAIN(METRIC_HELD_OLDEST, "autoturn_held_oldest_timestamp_seconds", GAUGE, FLU,
          "Arrival time of the oldest held message at the last complete spool scan, or the "
          "scan's own time when nothing was held (age: time() minus this)"),
    PLAIN(METRIC_HELD_SCAN, "autoturn_held_scan_timestamp_seconds", GAUGE, FLU,
          "When the last complete spool scan (expiry sweep) ended, 0 before the first"),
    PLAIN(METRIC_ODMR_SESSIONS_TOTAL, "autoturn_odmr_sessions_total", COUNTER, FLU,
          "ODMR connections accepted (one session process each)"),
    PLAIN(METRIC_ODMR_SESSIONS, "autoturn_odmr_sessions", GAUGE, FLU,
          "ODMR sessions running now"),
    PLAIN(METRIC_ODMR_REFUSED, "autoturn_odmr_connections_refused_total", COUNTER, FLU,
          "ODMR connections refused with 421 (session limits, too many failed AUTH attempts)"),
    PLAIN(METRIC_ODMR_AUTH_FAILURES, "autoturn_odmr_auth_failures_total", COUNTER, FLU,
          "Failed ODMR AUTH attempts"),
};

static _Atomic uint64_t *cells;       /* NULL: metrics are off */
static size_t offset[METRIC_COUNT];   /* first cell of each family */
static unsigned values[METRIC_COUNT]; /* label values (series) of each family */
static unsigned exposed;              /* enum metrics_daemon bits of this process */
static double start_time;             /* seconds since the epoch */

/* --- the table --- */

static size_t
nvalues(const struct family *f)
{
    size_t n = 0;

    if (f->values == NULL)
        return 1;
    while (f->values[n] != NULL)
        n++;
    return n;
}

static size_t
cells_per_value(const struct family *f)
{
    return f->kind == HISTOGRAM ? f->nbounds + 2 : 1;   /* buckets, +Inf, sum */
}

const char *
metrics_name(enum metric m)
{
    return (unsigned)m < METRIC_COUNT ? families[m].name : NULL;
}

const char *
metrics_label(enum metric m, unsigned label)
{
    if ((unsigned)m >= METRIC_COUNT || families[m].values == NULL ||
        label >= nvalues(&families[m]))
        return NULL;
    return families[m].values[label];
}

/* --- doubles in 64-bit cells --- */

static uint64_t
bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double
value(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

static void
add_double(_Atomic uint64_t *c, double delta)
{
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(c, &old, bits(value(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* --- set-up --- */

static double
realtime(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
metrics_init(enum metrics_daemon daemon, struct errbuf *err)
{
    size_t i, n = 0;
    void *p;

    if (cells != NULL)
        return 0;
    for (i = 0; i < METRIC_COUNT; i++) {
        offset[i] = n;
        values[i] = (unsigned)nvalues(&families[i]);
        n += values[i] * cells_per_value(&families[i]);
    }
    p = mmap(NULL, n * sizeof(*cells), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
             0);
    if (p == MAP_FAILED) {
        errbuf_set_errno(err, "metrics: mmap of %zu bytes", n * sizeof(*cells));
        return -1;
    }
    cells = p;
    exposed = daemon;
    start_time = realtime();
    metrics_set(METRIC_HELD_OLDEST, 0, (double)(time_t)start_time);   /* no age before a scan */
    return 0;
}

bool
metrics_on(void)
{
    return cells != NULL;
}

/* cell - the first cell of series (m, label), or NULL (off, bad label) */
static _Atomic uint64_t *
cell(enum metric m, unsigned label)
{
    if (cells == NULL || (unsigned)m >= METRIC_COUNT || label >= values[m])
        return NULL;
    return &cells[offset[m] + label * cells_per_value(&families[m])];
}

/* --- updates --- */

void
metrics_add(enum metric m, unsigned label, uint64_t n)
{
    _Atomic uint64_t *c = cell(m, label);

    if (c != NULL && families[m].kind == COUNTER)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void
metrics_inc(enum metric m, unsigned label)
{
    metrics_add(m, label, 1);
}

void
metrics_set(enum metric m, unsigned label, double v)
{
    _Atomic uint64_t *c = cell(m, label);

    if (c != NULL && families[m].kind == GAUGE)
        atomic_store_explicit(c, bits(v), memory_order_relaxed);
}

void
metrics_gauge_add(enum metric m, unsigned label, double delta)
{
    _Atomic uint64_t *c = cell(m, label);

    if (c != NULL && families[m].kind == GAUGE)
        add_double(c, delta);
}

/* bucket - the first bucket whose upper bound is >= v (Prometheus's le) */
static size_t
bucket(const struct family *f, double v)
{
    size_t lo = 0, hi = f->nbounds;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (f->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;                 /* nbounds: above every bound (+Inf) */
}

void
metrics_observe(enum metric m, unsigned label, double v)
{
    _Atomic uint64_t *c = cell(m, label);
    const struct family *f = &families[m];

    if (c == NULL || f->kind != HISTOGRAM)
        return;
    atomic_fetch_add_explicit(&c[bucket(f, v)], 1, memory_order_relaxed);
    add_double(&c[f->nbounds + 1], v);
}

void
metrics_clock(struct timespec *t)
{
    if (cells == NULL) {
        t->tv_sec = 0;
        t->tv_nsec = 0;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, t);
}

double
metrics_elapsed(const struct timespec *t)
{
    struct timespec now;
    double s;

    if (t->tv_sec == 0 && t->tv_nsec == 0)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s = (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
    return s > 0 ? s : 0;
}

/* --- events that touch several families --- */

unsigned
metrics_reason(const char *reason)
{
    unsigned i;

    for (i = 0; reason != NULL && i < REASON_OTHER; i++)
        if (strcmp(reason, reasons[i]) == 0)
            return i;
    return REASON_OTHER;
}

void
metrics_flush_done(const char *reason, bool failed, double seconds)
{
    unsigned r = metrics_reason(reason);

    metrics_inc(METRIC_FLUSHES, r);
    if (failed)
        metrics_inc(METRIC_FLUSH_FAILURES, r);
    metrics_observe(METRIC_FLUSH_DURATION, r, seconds);
}

void
metrics_table_loaded(time_t mtime, long customers, double seconds)
{
    metrics_inc(METRIC_TABLE_LOADS, 0);
    metrics_set(METRIC_TABLE_LOAD_TIMESTAMP, 0, realtime());
    metrics_set(METRIC_TABLE_LOAD_DURATION, 0, seconds);
    metrics_set(METRIC_TABLE_GENERATION, 0, (double)mtime);
    metrics_set(METRIC_TABLE_CUSTOMERS, 0, (double)customers);
    metrics_set(METRIC_TABLE_LAST_LOAD_SUCCESS, 0, 1);
}

void
metrics_table_refused(void)
{
    metrics_inc(METRIC_TABLE_LOAD_FAILURES, 0);
}

void
metrics_table_state(bool ok)
{
    metrics_set(METRIC_TABLE_LAST_LOAD_SUCCESS, 0, ok ? 1 : 0);
}

void
metrics_held(uint64_t messages, uint64_t bytes, time_t oldest)
{
    time_t now = time(NULL);

    metrics_set(METRIC_HELD_MESSAGES, 0, (double)messages);
    metrics_set(METRIC_HELD_BYTES, 0, (double)bytes);
    metrics_set(METRIC_HELD_OLDEST, 0, (double)(messages > 0 ? oldest : now));
    metrics_set(METRIC_HELD_SCAN, 0, (double)now);
}

/* --- exposition --- */

static const char *
kind_name(enum kind k)
{
    return k == COUNTER ? "counter" : k == GAUGE ? "gauge" : "histogram";
}

static void
expose_series(struct expfmt *x, const struct family *f, const _Atomic uint64_t *c,
              const struct expfmt_label *l, size_t nl)
{
    uint64_t counts[BOUNDS_MAX + 1];
    size_t i;

    if (f->kind == COUNTER) {
        expfmt_sample_uint(x, f->name, l, nl, atomic_load_explicit(c, memory_order_relaxed));
    } else if (f->kind == GAUGE) {
        expfmt_sample(x, f->name, l, nl, value(atomic_load_explicit(c, memory_order_relaxed)));
    } else {
        for (i = 0; i <= f->nbounds; i++)
            counts[i] = atomic_load_explicit(&c[i], memory_order_relaxed);
        expfmt_histogram(x, f->name, l, nl, f->bounds, f->nbounds, counts,
                         value(atomic_load_explicit(&c[f->nbounds + 1], memory_order_relaxed)));
    }
}

static void
expose_family(struct expfmt *x, enum metric m)
{
    const struct family *f = &families[m];
    struct expfmt_label l;
    size_t i, n = nvalues(f);

    expfmt_family(x, f->name, kind_name(f->kind), f->help);
    for (i = 0; i < n; i++) {
        l.name = f->label;
        l.value = f->values != NULL ? f->values[i] : "";
        expose_series(x, f, &cells[offset[m] + i * cells_per_value(f)], &l,
                      f->label != NULL ? 1 : 0);
    }
}

/* resident_bytes - from /proc/self/statm (readable after the privilege
 * drop, unlike /proc/self/fd); -1 if it cannot be read */
static double
resident_bytes(void)
{
    char buf[128];
    unsigned long size, resident;
    ssize_t n;
    int fd;

    if ((fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return -1;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* expose_process - the standard process_* families and build info */
static void
expose_process(struct expfmt *x)
{
    static const struct expfmt_label version = {"version", AUTOTURN_VERSION};
    struct rusage ru;
    double rss = resident_bytes();

    expfmt_family(x, "autoturn_build_info", "gauge", "autoturn version; always 1");
    expfmt_sample(x, "autoturn_build_info", &version, 1, 1);
    expfmt_family(x, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.");
    expfmt_sample(x, "process_start_time_seconds", NULL, 0, start_time);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        expfmt_family(x, "process_cpu_seconds_total", "counter",
                      "Total user and system CPU time spent in seconds.");
        expfmt_sample(x, "process_cpu_seconds_total", NULL, 0,
                      (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    if (rss >= 0) {
        expfmt_family(x, "process_resident_memory_bytes", "gauge",
                      "Resident memory size in bytes.");
        expfmt_sample(x, "process_resident_memory_bytes", NULL, 0, rss);
    }
}

char *
metrics_expose(size_t *len_r)
{
    struct expfmt x;
    size_t i;

    if (cells == NULL) {
        errno = ENOENT;
        return NULL;
    }
    expfmt_init(&x);
    expose_process(&x);
    for (i = 0; i < METRIC_COUNT; i++)
        if (families[i].daemons & exposed)
            expose_family(&x, (enum metric)i);
    return expfmt_done(&x, len_r);
}
