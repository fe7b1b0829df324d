/* SPDX-License-Identifier: ISC */
/*
 * expfmt.h - the Prometheus text exposition format, version 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats): HELP and TYPE
 * lines, samples with labels, histograms (cumulative buckets, _sum,
 * _count), the escaping of help texts and label values, and numbers
 * (shortest text that reads back as the same double; +Inf, -Inf, NaN).
 *
 * Writes into a growing buffer owned by the caller's struct expfmt. Knows
 * nothing of where the values come from (metrics.c) or how they are
 * served (metrics_http.c). Errors stick: after a failed allocation or
 * past EXPFMT_MAX every call does nothing and expfmt_done returns NULL.
 */
#ifndef AUTOTURN_EXPFMT_H
#define AUTOTURN_EXPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPFMT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define EXPFMT_MAX          (4u << 20)   /* bytes in one exposition */
#define EXPFMT_NUMBER_MAX   32           /* a formatted double, with its NUL */
#define EXPFMT_LABELS_MAX   4            /* labels on one sample, "le" included */

struct expfmt {
    char *buf;
    size_t len, size;
    bool failed;
    int error;                           /* errno of the failure */
};

struct expfmt_label {
    const char *name;                    /* [a-zA-Z_][a-zA-Z0-9_]*, not checked */
    const char *value;                   /* any UTF-8: escaped here */
};

void expfmt_init(struct expfmt *x);

/* expfmt_family - "# HELP name help" and "# TYPE name type" (counter,
 * gauge, histogram); help is escaped. */
void expfmt_family(struct expfmt *x, const char *name, const char *type, const char *help);

/* expfmt_sample - "name{labels} value"; nlabels may be 0. */
void expfmt_sample(struct expfmt *x, const char *name, const struct expfmt_label *labels,
                   size_t nlabels, double value);

/* expfmt_sample_uint - the same with an exact integer (counters). */
void expfmt_sample_uint(struct expfmt *x, const char *name, const struct expfmt_label *labels,
                        size_t nlabels, uint64_t value);

/* expfmt_histogram - one histogram series: name_bucket{labels,le="B"}
 * for each upper bound (cumulative counts), le="+Inf", name_sum and
 * name_count. counts[i] is the number of observations in bucket i alone:
 * counts[0..nbounds) for (bounds[i-1], bounds[i]], counts[nbounds] above
 * the last bound; bounds ascending. nlabels < EXPFMT_LABELS_MAX. */
void expfmt_histogram(struct expfmt *x, const char *name, const struct expfmt_label *labels,
                      size_t nlabels, const double *bounds, size_t nbounds,
                      const uint64_t *counts, double sum);

/* expfmt_done - the text (NUL-terminated, *len_r bytes without the NUL),
 * handed over to the caller (free with x_free); NULL when something
 * failed (errno ENOMEM, EFBIG past EXPFMT_MAX, EINVAL for too many
 * labels), the buffer then freed. */
char *expfmt_done(struct expfmt *x, size_t *len_r);

/* expfmt_number - v as the format writes it: "+Inf", "-Inf", "NaN", or
 * the shortest %g text that reads back as v. Returns buf. */
const char *expfmt_number(double v, char buf[EXPFMT_NUMBER_MAX]);

#endif
