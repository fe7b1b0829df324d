/* SPDX-License-Identifier: ISC */
/*
 * metrics.h - the metrics every autoturn daemon keeps for Prometheus:
 * counters, gauges and histograms, each family named once in the table
 * of metrics.c (docs/METRICS.md lists them), with label values from
 * fixed lists so that the number of series never depends on the number
 * of customers, addresses or messages.
 *
 * Design: one endpoint per daemon (metrics { listen } in its section of
 * autoturn.conf, served by metrics_http.h), not one gathering endpoint:
 * each daemon is its own Prometheus target, so "daemon down" is
 * Prometheus's own up == 0, and no daemon depends on another to be seen.
 *
 * The values live in one anonymous shared mapping made by metrics_init()
 * at start-up, before any fork or thread. The flusher's forked children
 * (flushes, the expiry sweep, ODMR sessions) inherit it and count into
 * it directly, so their counts reach the parent's endpoint with no
 * message passing, and what a child counted before it was killed is
 * kept. The milter's libmilter threads and the HTTP thread share it the
 * same way. Every update is one lock-free atomic operation (relaxed
 * order): the mail path never waits for a lock, and the HTTP thread only
 * reads. A histogram's count is the sum of its buckets, so the two always
 * agree; its sum may lag one observation behind in a scrape.
 *
 * Before metrics_init() (metrics off, or autoturnctl) every update is a
 * no-op costing one test of a pointer, and metrics_clock() reads no clock.
 */
#ifndef AUTOTURN_METRICS_H
#define AUTOTURN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

/* which daemon this process is: the families it exposes */
enum metrics_daemon {
    METRICS_MILTER = 1u,
    METRICS_POLICYD = 2u,
    METRICS_FLUSHER = 4u,
};

/* The families with stored values (the table in metrics.c has one row
 * each, in this order). */
enum metric {
    /* every daemon: the customer table its reader uses */
    METRIC_TABLE_LAST_LOAD_SUCCESS,   /* gauge 1/0 */
    METRIC_TABLE_LOADS,               /* counter */
    METRIC_TABLE_LOAD_FAILURES,       /* counter */
    METRIC_TABLE_LOAD_TIMESTAMP,      /* gauge, seconds since the epoch */
    METRIC_TABLE_LOAD_DURATION,       /* gauge, seconds */
    METRIC_TABLE_GENERATION,          /* gauge: the table file's mtime */
    METRIC_TABLE_CUSTOMERS,           /* gauge */
    /* autoturn-milter */
    METRIC_MILTER_MESSAGES,           /* counter by enum metrics_result */
    METRIC_MILTER_HOLD_DURATION,      /* histogram */
    /* autoturn-policyd */
    METRIC_POLICYD_REQUESTS,          /* counter by enum metrics_decision */
    METRIC_POLICYD_REQUEST_DURATION,  /* histogram */
    METRIC_POLICYD_GRANTS,            /* gauge */
    METRIC_POLICYD_CONNECTIONS,       /* gauge */
    /* autoturn-flusher */
    METRIC_DELIVERIES,                /* counter by enum metrics_outcome */
    METRIC_FLUSHES,                   /* counter by reason (metrics_reason) */
    METRIC_FLUSH_FAILURES,            /* counter by reason */
    METRIC_FLUSH_DURATION,            /* histogram by reason */
    METRIC_FLUSHES_RUNNING,           /* gauge */
    METRIC_HELD_MESSAGES,             /* gauge (expiry sweep) */
    METRIC_HELD_BYTES,                /* gauge (expiry sweep) */
    METRIC_HELD_OLDEST,               /* gauge, seconds since the epoch */
    METRIC_HELD_SCAN,                 /* gauge, seconds since the epoch */
    METRIC_ODMR_SESSIONS_TOTAL,       /* counter */
    METRIC_ODMR_SESSIONS,             /* gauge */
    METRIC_ODMR_REFUSED,              /* counter */
    METRIC_ODMR_AUTH_FAILURES,        /* counter */
    METRIC_COUNT
};

/* label values (the order of the lists in metrics.c) */
enum metrics_result { METRICS_HELD, METRICS_PASSED, METRICS_TEMPFAILED };
enum metrics_decision { METRICS_OK, METRICS_DUNNO, METRICS_DEFER, METRICS_REJECT };
enum metrics_outcome { METRICS_SENT, METRICS_DEFERRED, METRICS_BOUNCED, METRICS_EXPIRED };

/* metrics_init - make the shared mapping for daemon (once, at start-up,
 * before any fork or thread). 0, or -1 with err. */
int metrics_init(enum metrics_daemon daemon, struct errbuf *err);

/* metrics_on - metrics_init succeeded in this process (or its parent). */
bool metrics_on(void);

/* Updates; label is the index of the label value (0 for families
 * without a label); a bad index is ignored. */
void metrics_inc(enum metric m, unsigned label);
void metrics_add(enum metric m, unsigned label, uint64_t n);
void metrics_set(enum metric m, unsigned label, double v);            /* gauges */
void metrics_gauge_add(enum metric m, unsigned label, double delta);  /* gauges */
void metrics_observe(enum metric m, unsigned label, double v);        /* histograms */

/* metrics_clock - *t = now (CLOCK_MONOTONIC), or zero when metrics are
 * off; metrics_elapsed - seconds from t to now (0 for a zero t). */
void metrics_clock(struct timespec *t);
double metrics_elapsed(const struct timespec *t);

/* metrics_reason - the label index of a flush reason: connect, etrn,
 * hello, atrn, manual, or other for anything else. */
unsigned metrics_reason(const char *reason);

/* metrics_flush_done - a flush ended: counted by reason, a failure
 * counted, its duration observed. */
void metrics_flush_done(const char *reason, bool failed, double seconds);

/* metrics_table_loaded - a reader switched to a table file (mtime,
 * customers in it, seconds opening and checking it took);
 * metrics_table_refused - a new table file was refused (counted once per
 * file by the caller), metrics_table_state - whether the file the reader
 * last looked at is the one in use. */
void metrics_table_loaded(time_t mtime, long customers, double seconds);
void metrics_table_refused(void);
void metrics_table_state(bool ok);

/* metrics_held - the totals of a complete spool scan: messages, bytes,
 * and the arrival time of the oldest message (the scan's own time when
 * nothing was held). */
void metrics_held(uint64_t messages, uint64_t bytes, time_t oldest);

/* metrics_expose - this daemon's families in the text exposition format
 * (expfmt.h), malloc'd (free with x_free); NULL with errno. Thread-safe. */
char *metrics_expose(size_t *len_r);

/* metrics_name - the family's name; metrics_label - the text of a label
 * value (NULL: no such family or value). For tests and logs. */
const char *metrics_name(enum metric m);
const char *metrics_label(enum metric m, unsigned label);

#endif
