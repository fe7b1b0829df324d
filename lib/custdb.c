/* SPDX-License-Identifier: ISC */
/*
 * custdb.c - the thread-safe reader of the compiled customer table
 * (tinycdb): lookups by name, domain and address, and the switch to a new
 * table file without a restart. Owns, in each reader, the open snapshot
 * of the table. Key layout: custdb_keys.h; the writer: custdb_compile.c.
 *
 * SECURITY: the table is written by autoturnctl, but every value read back
 * is bounds-checked (cdb_get) and decoded strictly: a damaged table gives
 * a lookup error, never "not found" or a wrong customer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cdb.h>

#include "custdb.h"
#include "custdb_keys.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define CHECK_DEFAULT_MS 1000


/* A snapshot: one open table file, shared by lookups until replaced. */
struct snap {
    unsigned refs;
    int fd;
    struct cdb cdb;
    struct stat st;
    long count;
    unsigned nv4, nv6;
    uint8_t v4[33], v6[129];     /* prefix lengths present, longest first */
};

struct custdb {
    char *path;
    pthread_mutex_t lock;
    unsigned interval_ms;
    bool checked;
    struct timespec last;
    struct snap *cur;
    char last_err[ERRBUF_SIZE];
    bool refused;               /* refused_st is a file we refused (logged once) */
    struct stat refused_st;
    bool metrics;               /* custdb_report_metrics */
};

static void
snap_unref(struct snap *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    cdb_free(&s->cdb);
    close(s->fd);
    x_free(s);
}

/* parse_prefixes - "32,24" (strictly descending, each <= max) or "". */
static int
parse_prefixes(const char *s, unsigned max, uint8_t *out, unsigned *n)
{
    unsigned long v, last = max + 1ul;
    char *end;

    *n = 0;
    while (*s != '\0') {
        if (*s < '0' || *s > '9')
            return -1;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || v >= last || (*end != ',' && *end != '\0'))
            return -1;
        out[(*n)++] = (uint8_t)v;
        last = v;
        s = *end == ',' ? end + 1 : end;
        if (*end == ',' && *s == '\0')
            return -1;
    }
    return 0;
}

/* parse_meta - the meta record into s; -1 with the reason. */
static int
parse_meta(struct snap *s, const char *text, const char **why)
{
    char buf[CUSTDB_META_TEXT_MAX], *v4, *v6, *end;
    unsigned long n;

    *why = "bad meta record";
    if (str_copy(buf, sizeof(buf), text) < 0 || strncmp(buf, CUSTDB_META_VERSION " ", 3) != 0) {
        *why = NULL;
        return -1;
    }
    if (strncmp(buf + 3, "customers=", 10) != 0 || buf[13] < '0' || buf[13] > '9')
        return -1;
    errno = 0;
    n = strtoul(buf + 13, &end, 10);
    if (errno != 0 || n > LONG_MAX || strncmp(end, " v4=", 4) != 0)
        return -1;
    v4 = end + 4;
    if ((v6 = strstr(v4, " v6=")) == NULL)
        return -1;
    *v6 = '\0';
    v6 += 4;
    if (parse_prefixes(v4, 32, s->v4, &s->nv4) < 0 || parse_prefixes(v6, 128, s->v6, &s->nv6) < 0)
        return -1;
    s->count = (long)n;
    return 0;
}

/* check_meta - the file is a table of ours, of this version. */
static int
check_meta(struct snap *s, const char *path, char *msg, size_t size)
{
    char text[CUSTDB_META_TEXT_MAX];
    struct cdb c = s->cdb;
    const void *data;
    const char *why = NULL;
    int r = cdb_find(&c, CUSTDB_META_KEY, CUSTDB_META_KEY_LEN);

    if (r < 0) {
        (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path,
                       errno == EPROTO ? "bad cdb structure" : strerror(errno));
        return -1;
    }
    data = r == 0 ? NULL : cdb_getdata(&c);
    if (r == 1 && (data == NULL || cdb_datalen(&c) >= sizeof(text))) {
        (void)snprintf(msg, size, "customer table %s: corrupt (bad meta record)", path);
        return -1;
    }
    if (r == 1) {
        memcpy(text, data, cdb_datalen(&c));
        text[cdb_datalen(&c)] = '\0';
    }
    if (r == 0 || memchr(text, '\0', cdb_datalen(&c)) != NULL || parse_meta(s, text, &why) < 0) {
        if (r == 0 || why == NULL)
            (void)snprintf(msg, size, "customer table %s: not an autoturn customer table", path);
        else
            (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path, why);
        return -1;
    }
    return 0;
}

/* snap_open - open and validate the table file; NULL with msg set. */
static struct snap *
snap_open(const char *path, char *msg, size_t size)
{
    struct snap *s = x_calloc(1, sizeof(*s));

    if (s == NULL) {
        (void)snprintf(msg, size, "customer table %s: %s", path, strerror(errno));
        return NULL;
    }
    s->refs = 1;
    if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(s->fd, &s->st) < 0) {
        (void)snprintf(msg, size, "customer table %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(s->st.st_mode)) {
        (void)snprintf(msg, size, "customer table %s: not a regular file", path);
        goto fail;
    }
    if (cdb_init(&s->cdb, s->fd) < 0) {
        (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path,
                       errno == EPROTO ? "not a cdb file, or truncated" : strerror(errno));
        goto fail;
    }
    if (check_meta(s, path, msg, size) < 0) {
        cdb_free(&s->cdb);
        goto fail;
    }
    return s;
fail:
    if (s->fd >= 0)
        close(s->fd);
    x_free(s);
    return NULL;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
        && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* refresh_locked - switch to a new file if there is a good one. */
static void
refresh_locked(struct custdb *db)
{
    char msg[ERRBUF_SIZE];
    struct snap *s;
    struct stat st;

    clock_gettime(CLOCK_MONOTONIC, &db->last);
    db->checked = true;
    if (stat(db->path, &st) < 0) {
        (void)snprintf(db->last_err, sizeof(db->last_err), "customer table %s: %s", db->path,
                       strerror(errno));
        if (db->metrics)
            metrics_table_state(false);
        return;
    }
    if (db->cur != NULL && same_file(&st, &db->cur->st)) {
        if (db->metrics)
            metrics_table_state(true);
        return;
    }
    if ((s = snap_open(db->path, msg, sizeof(msg))) == NULL) {
        memcpy(db->last_err, msg, sizeof(msg));
        /* The reader decides to keep the old table: say so once per file. */
        if (!db->refused || !same_file(&st, &db->refused_st)) {
            log_warnx("%s; %s", msg, db->cur ? "keeping the previous table" : "no table loaded");
            if (db->metrics)
                metrics_table_refused();
        }
        if (db->metrics)
            metrics_table_state(false);
        db->refused = true;
        db->refused_st = st;
        return;
    }
    if (db->metrics)
        metrics_table_loaded(s->st.st_mtim.tv_sec, s->count, metrics_elapsed(&db->last));
    if (db->cur != NULL)
        log_info("customer table %s: switched to the new table", db->path);
    snap_unref(db->cur);
    db->cur = s;
    db->last_err[0] = '\0';
}

static bool
check_due(const struct custdb *db)
{
    struct timespec now;
    long long ms;

    if (!db->checked || db->interval_ms == 0)
        return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (now.tv_sec - db->last.tv_sec) * 1000LL + (now.tv_nsec - db->last.tv_nsec) / 1000000;
    return ms >= (long long)db->interval_ms;
}

/* acquire - the current snapshot (refreshed if due), referenced; NULL + err. */
static struct snap *
acquire(struct custdb *db, bool force, struct errbuf *err)
{
    struct snap *s;

    pthread_mutex_lock(&db->lock);
    if (force || check_due(db))
        refresh_locked(db);
    if ((s = db->cur) != NULL)
        s->refs++;
    else
        errbuf_set(err, "%s", db->last_err);
    pthread_mutex_unlock(&db->lock);
    return s;
}

static void
release(struct custdb *db, struct snap *s)
{
    pthread_mutex_lock(&db->lock);
    snap_unref(s);
    pthread_mutex_unlock(&db->lock);
}

struct custdb *
custdb_new(const char *path)
{
    struct custdb *db = x_calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    if ((db->path = x_strdup(path)) == NULL || pthread_mutex_init(&db->lock, NULL) != 0) {
        x_free(db->path);
        x_free(db);
        return NULL;
    }
    db->interval_ms = CHECK_DEFAULT_MS;
    (void)str_printf(db->last_err, sizeof(db->last_err), "customer table %s: not loaded", path);
    return db;
}

void
custdb_free(struct custdb *db)
{
    if (db == NULL)
        return;
    snap_unref(db->cur);
    pthread_mutex_destroy(&db->lock);
    x_free(db->path);
    x_free(db);
}

void
custdb_report_metrics(struct custdb *db)
{
    pthread_mutex_lock(&db->lock);
    db->metrics = true;
    pthread_mutex_unlock(&db->lock);
}

void
custdb_set_check_interval(struct custdb *db, unsigned ms)
{
    pthread_mutex_lock(&db->lock);
    db->interval_ms = ms;
    pthread_mutex_unlock(&db->lock);
}

int
custdb_refresh(struct custdb *db, struct errbuf *err)
{
    struct snap *s = acquire(db, true, err);

    if (s == NULL)
        return -1;
    release(db, s);
    return 0;
}

/* --- lookups on one snapshot --- */

/* cdb_error - tinycdb says EPROTO for a damaged structure. */
static const char *
cdb_error(int e)
{
    return e == EPROTO ? "bad cdb structure" : strerror(e);
}

static int
corrupt(struct custdb *db, struct errbuf *err, const char *why)
{
    errbuf_set(err, "customer table %s: corrupt (%s)", db->path, why);
    return -1;
}

/* probe - 1 with the value, 0, or -1 (corrupt). */
static int
probe(struct custdb *db, struct snap *s, const void *key, size_t klen, const char **val,
      size_t *vlen, struct errbuf *err)
{
    struct cdb c = s->cdb;
    int r = cdb_find(&c, key, (unsigned)klen);

    if (r < 0)
        return corrupt(db, err, cdb_error(errno));
    if (r == 0)
        return 0;
    if ((*val = cdb_getdata(&c)) == NULL)
        return corrupt(db, err, "record out of bounds");
    *vlen = cdb_datalen(&c);
    return 1;
}

/* record_is_named - the encoded record starts with "name=NAME\n"
 * (customer_encode writes the name first). */
static bool
record_is_named(const char *val, size_t vlen, const char *name)
{
    size_t n = strlen(name);

    return vlen > n + 5 && memcmp(val, "name=", 5) == 0 && memcmp(val + 5, name, n) == 0 &&
           val[5 + n] == '\n';
}

static int
by_name(struct custdb *db, struct snap *s, const char *name, struct customer **c_r,
        struct errbuf *err)
{
    uint8_t key[CUSTDB_KEY_MAX];
    struct customer *c;
    struct errbuf why;
    const char *val;
    size_t vlen;
    int r;

    if (!customer_name_valid(name, NULL))
        return 0;
    if ((r = probe(db, s, key, custdb_key_text(key, 'N', name), &val, &vlen, err)) <= 0)
        return r;
    if (c_r == NULL)        /* existence only: the record must at least carry the name */
        return record_is_named(val, vlen, name) ? 1
                                                : corrupt(db, err, "record under the wrong name");
    if (customer_decode(val, vlen, &c, &why) < 0) {
        errbuf_set(err, "customer table %s: corrupt (customer '%s': %s)", db->path, name,
                   why.msg);
        return -1;
    }
    if (strcmp(c->name, name) != 0) {
        customer_free(c);
        return corrupt(db, err, "record under the wrong name");
    }
    *c_r = c;
    return 1;
}

/* resolve - a name found under a domain or network key, to its record. */
static int
resolve(struct custdb *db, struct snap *s, const char *val, size_t vlen, struct customer **c_r,
        struct errbuf *err)
{
    char name[CUSTOMER_NAME_MAX + 1];
    int r;

    if (vlen == 0 || vlen > CUSTOMER_NAME_MAX)
        return corrupt(db, err, "bad customer name in an index record");
    memcpy(name, val, vlen);
    name[vlen] = '\0';
    if (!customer_name_valid(name, NULL))
        return corrupt(db, err, "bad customer name in an index record");
    if ((r = by_name(db, s, name, c_r, err)) == 0)
        return corrupt(db, err, "index record for a missing customer");
    return r;
}

static int
set_rule(struct custdb_match *m, const char *dot, const char *rule)
{
    if (m != NULL)
        (void)str_printf(m->rule, sizeof(m->rule), "%s%s", dot, rule);
    return 0;
}

static int
by_domain(struct custdb *db, struct snap *s, const char *d, struct customer **c_r,
          struct custdb_match *m, struct errbuf *err)
{
    uint8_t key[CUSTDB_KEY_MAX];
    const char *val, *p;
    size_t vlen;
    int r;

    if ((r = probe(db, s, key, custdb_key_text(key, 'D', d), &val, &vlen, err)) != 0) {
        if (r > 0 && (r = resolve(db, s, val, vlen, c_r, err)) > 0)
            set_rule(m, "", d);
        return r;
    }
    for (p = strchr(d, '.'); p != NULL; p = strchr(p + 1, '.')) {
        if ((r = probe(db, s, key, custdb_key_text(key, 'S', p + 1), &val, &vlen, err)) == 0)
            continue;
        if (r > 0 && (r = resolve(db, s, val, vlen, c_r, err)) > 0)
            set_rule(m, ".", p + 1);
        return r;
    }
    return 0;
}

static int
by_addr(struct custdb *db, struct snap *s, const struct ipaddr *a, struct customer **c_r,
        struct custdb_match *m, struct errbuf *err)
{
    bool v4 = a->family == AF_INET;
    const uint8_t *list = v4 ? s->v4 : s->v6;
    unsigned i, n = v4 ? s->nv4 : s->nv6;
    uint8_t key[CUSTDB_KEY_MAX];
    const char *val, *nul;
    size_t vlen;
    int r;

    for (i = 0; i < n; i++) {
        if ((r = probe(db, s, key, custdb_key_net(key, a, list[i]), &val, &vlen, err)) == 0)
            continue;
        if (r < 0)
            return r;
        if ((nul = memchr(val, '\0', vlen)) == NULL || vlen - (size_t)(nul - val) - 1 == 0
            || vlen - (size_t)(nul - val) - 1 >= IPNET_TEXT_MAX)
            return corrupt(db, err, "bad network record");
        if ((r = resolve(db, s, val, (size_t)(nul - val), c_r, err)) > 0 && m != NULL) {
            memcpy(m->rule, nul + 1, vlen - (size_t)(nul - val) - 1);
            m->rule[vlen - (size_t)(nul - val) - 1] = '\0';
        }
        return r;
    }
    return 0;
}

/* --- public lookups --- */

int
custdb_lookup_name(struct custdb *db, const char *name, struct customer **c_r,
                   struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    int r;

    if (s == NULL)
        return -1;
    r = by_name(db, s, name, c_r, err);
    release(db, s);
    return r;
}

int
custdb_lookup_domain(struct custdb *db, const char *domain, struct customer **c_r,
                     struct custdb_match *m, struct errbuf *err)
{
    char d[DOMAIN_MAX + 1];
    struct snap *s = acquire(db, false, err);
    const char *why;
    int r = 0;

    if (s == NULL)
        return -1;
    if (domain_normalise(domain, d, sizeof(d), &why) == 0)
        r = by_domain(db, s, d, c_r, m, err);
    release(db, s);
    return r;
}

int
custdb_lookup_addr(struct custdb *db, const struct ipaddr *a, struct customer **c_r,
                   struct custdb_match *m, struct errbuf *err)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct snap *s = acquire(db, false, err);
    struct ipaddr v = *a;
    int r;

    if (s == NULL)
        return -1;
    if (v.family == AF_INET6 && memcmp(v.bytes, mapped, sizeof(mapped)) == 0) {
        v.family = AF_INET;
        memmove(v.bytes, v.bytes + 12, 4);
        memset(v.bytes + 4, 0, 12);
    }
    r = v.family == AF_INET || v.family == AF_INET6 ? by_addr(db, s, &v, c_r, m, err) : 0;
    release(db, s);
    return r;
}

static int
each(struct custdb *db, struct snap *s, custdb_foreach_fn *fn, void *ctx, struct errbuf *err)
{
    struct cdb c = s->cdb;
    struct customer *cust;
    struct errbuf why;
    const char *key, *val;
    unsigned pos;
    int r;

    cdb_seqinit(&pos, &c);
    while ((r = cdb_seqnext(&pos, &c)) > 0) {
        if ((key = cdb_getkey(&c)) == NULL || (val = cdb_getdata(&c)) == NULL)
            return corrupt(db, err, "record out of bounds");
        if (cdb_keylen(&c) < 2 || key[0] != 'N')
            continue;
        if (customer_decode(val, cdb_datalen(&c), &cust, &why) < 0) {
            errbuf_set(err, "customer table %s: corrupt (%s)", db->path, why.msg);
            return -1;
        }
        r = fn(ctx, cust);
        customer_free(cust);
        if (r != 0)
            return r;
    }
    return r < 0 ? corrupt(db, err, cdb_error(errno)) : 0;
}

int
custdb_foreach(struct custdb *db, custdb_foreach_fn *fn, void *ctx, struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    int r;

    if (s == NULL)
        return -1;
    r = each(db, s, fn, ctx, err);
    release(db, s);
    return r;
}

long
custdb_count(struct custdb *db, struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    long n;

    if (s == NULL)
        return -1;
    n = s->count;
    release(db, s);
    return n;
}
