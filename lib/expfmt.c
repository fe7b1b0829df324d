/* SPDX-License-Identifier: ISC */
/*
 * expfmt.c - the Prometheus text exposition format (see expfmt.h). Owns
 * only the caller's buffer while it is being written.
 *
 * Written here rather than taken from a library: Debian 12 packages no C
 * client library for Prometheus (libprom is not in Debian), and the
 * format is a few lines of text whose only subtleties (escaping,
 * cumulative buckets, number spelling) are tested in test_expfmt.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "util.h"
#include "expfmt.h"

#define GROW_MIN 4096

void
expfmt_init(struct expfmt *x)
{
    memset(x, 0, sizeof(*x));
}

/* fail - remember the first failure; always false */
static bool
fail(struct expfmt *x, int error)
{
    if (!x->failed)
        x->error = error;
    x->failed = true;
    return false;
}

/* reserve - room for n more bytes and a NUL; false once anything failed */
static bool
reserve(struct expfmt *x, size_t n)
{
    size_t want, size;
    char *p;

    if (x->failed)
        return false;
    if (n > EXPFMT_MAX || x->len + n + 1 > EXPFMT_MAX)
        return fail(x, EFBIG);
    want = x->len + n + 1;
    if (want <= x->size)
        return true;
    for (size = x->size > 0 ? x->size : GROW_MIN; size < want; size *= 2)
        ;
    if (size > EXPFMT_MAX)
        size = EXPFMT_MAX;
    if ((p = x_reallocarray(x->buf, size, 1)) == NULL)
        return fail(x, ENOMEM);
    x->buf = p;
    x->size = size;
    return true;
}

static void
put(struct expfmt *x, const char *s, size_t n)
{
    if (!reserve(x, n))
        return;
    memcpy(x->buf + x->len, s, n);
    x->len += n;
    x->buf[x->len] = '\0';
}

static void
put_str(struct expfmt *x, const char *s)
{
    put(x, s, strlen(s));
}

/* put_escaped - s with backslash and newline escaped, and the double
 * quote too when quote (label values); help texts keep their quotes */
static void
put_escaped(struct expfmt *x, const char *s, bool quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                        : (*s == '"' && quote) ? "\\\"" : NULL;

        if (esc == NULL)
            continue;
        put(x, run, (size_t)(s - run));
        put_str(x, esc);
        run = s + 1;
    }
    put(x, run, (size_t)(s - run));
}

void
expfmt_family(struct expfmt *x, const char *name, const char *type, const char *help)
{
    put_str(x, "# HELP ");
    put_str(x, name);
    put_str(x, " ");
    put_escaped(x, help, false);
    put_str(x, "\n# TYPE ");
    put_str(x, name);
    put_str(x, " ");
    put_str(x, type);
    put_str(x, "\n");
}

/* put_series - name{l1="v1",...} (no braces without labels) and a blank */
static void
put_series(struct expfmt *x, const char *name, const char *suffix,
           const struct expfmt_label *labels, size_t nlabels)
{
    size_t i;

    put_str(x, name);
    put_str(x, suffix);
    for (i = 0; i < nlabels; i++) {
        put_str(x, i == 0 ? "{" : ",");
        put_str(x, labels[i].name);
        put_str(x, "=\"");
        put_escaped(x, labels[i].value, true);
        put_str(x, "\"");
    }
    put_str(x, nlabels > 0 ? "} " : " ");
}

/* expfmt_number - the fewest significant digits that read back as v,
 * spelt like Go's strconv.FormatFloat(v, 'g', -1, 64), which the
 * Prometheus client libraries use: the exponent form for exponents
 * below -4 or from 6 up ("1e-05", "1.796661456e+09"), plain digits
 * otherwise ("10", "3600", "0.25"). A histogram's le="..." is a label,
 * so its spelling should not differ from other exporters'. */
const char *
expfmt_number(double v, char buf[EXPFMT_NUMBER_MAX])
{
    int digits, exp;
    char *e;

    if (isnan(v))
        return memcpy(buf, "NaN", 4);
    if (isinf(v))
        return memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
    for (digits = 1; digits < 17; digits++) {
        (void)snprintf(buf, EXPFMT_NUMBER_MAX, "%.*e", digits - 1, v);   /* fits: <= 24 */
        if (strtod(buf, NULL) == v)
            break;
    }
    (void)snprintf(buf, EXPFMT_NUMBER_MAX, "%.*e", digits - 1, v);
    e = strchr(buf, 'e');
    exp = e != NULL ? atoi(e + 1) : 0;
    if (exp < -4 || exp >= 6)
        return buf;
    (void)snprintf(buf, EXPFMT_NUMBER_MAX, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0,
                   v);
    return buf;
}

void
expfmt_sample(struct expfmt *x, const char *name, const struct expfmt_label *labels,
              size_t nlabels, double value)
{
    char num[EXPFMT_NUMBER_MAX];

    put_series(x, name, "", labels, nlabels);
    put_str(x, expfmt_number(value, num));
    put_str(x, "\n");
}

/* sample_uint - a series with a suffix (_bucket, _count) and an integer */
static void
sample_uint(struct expfmt *x, const char *name, const char *suffix,
            const struct expfmt_label *labels, size_t nlabels, uint64_t value)
{
    char num[EXPFMT_NUMBER_MAX];

    put_series(x, name, suffix, labels, nlabels);
    (void)snprintf(num, sizeof(num), "%" PRIu64 "\n", value);   /* fits: at most 21 */
    put_str(x, num);
}

void
expfmt_sample_uint(struct expfmt *x, const char *name, const struct expfmt_label *labels,
                   size_t nlabels, uint64_t value)
{
    sample_uint(x, name, "", labels, nlabels, value);
}

void
expfmt_histogram(struct expfmt *x, const char *name, const struct expfmt_label *labels,
                 size_t nlabels, const double *bounds, size_t nbounds, const uint64_t *counts,
                 double sum)
{
    struct expfmt_label l[EXPFMT_LABELS_MAX];
    char num[EXPFMT_NUMBER_MAX], num2[EXPFMT_NUMBER_MAX];
    uint64_t cum = 0;
    size_t i;

    if (nlabels >= EXPFMT_LABELS_MAX) {
        (void)fail(x, EINVAL);
        return;
    }
    if (nlabels > 0)
        memcpy(l, labels, nlabels * sizeof(*l));
    l[nlabels].name = "le";
    for (i = 0; i <= nbounds; i++) {
        cum += counts[i];
        l[nlabels].value = i < nbounds ? expfmt_number(bounds[i], num) : "+Inf";
        sample_uint(x, name, "_bucket", l, nlabels + 1, cum);
    }
    put_series(x, name, "_sum", labels, nlabels);
    put_str(x, expfmt_number(sum, num2));
    put_str(x, "\n");
    sample_uint(x, name, "_count", labels, nlabels, cum);
}

char *
expfmt_done(struct expfmt *x, size_t *len_r)
{
    char *text;

    if (reserve(x, 0))            /* an empty exposition still gets its NUL */
        x->buf[x->len] = '\0';
    if (x->failed) {
        int error = x->error;

        x_free(x->buf);
        expfmt_init(x);
        errno = error;
        return NULL;
    }
    text = x->buf;
    *len_r = x->len;
    expfmt_init(x);
    return text;
}
