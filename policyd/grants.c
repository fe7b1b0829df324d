/* SPDX-License-Identifier: ISC */
/*
 * grants.c - roaming relay grants. Owns the in-memory set (a chained hash
 * table keyed by address, and a binary min-heap on expiry so that expired
 * grants go away from the event loop, without cron) and the two files
 * that make grants survive a restart:
 *
 *   GRANT_FILE          snapshot: one "GRANT ip= user= customer= source=
 *                       expires=" line (control-protocol encoding) per live grant,
 *                       written to GRANT_FILE.tmp, fsync'ed, renamed over,
 *                       directory fsync'ed;
 *   GRANT_FILE.journal  append-only "GRANT ..." / "REVOKE ip=..." lines
 *                       since that snapshot; emptied after each snapshot.
 *
 * A renewal that only moves the expiry is not journaled until it extends
 * the expiry on disk by half the default TTL, so a busy SMTP AUTH user
 * costs at most one short append per half TTL; after a restart such a
 * grant may end up to half a TTL early (the next login renews it).
 * Journal lines are written with write(2) but not fsync'ed one by one: a
 * daemon crash loses nothing, a power loss may lose the last seconds.
 *
 * SECURITY: the files are written by this daemon only (mode 0600), but
 * they are parsed strictly (ctl_parse, ipaddr_parse, bounded lines): a bad
 * line is logged and skipped, a torn last journal line is ignored. A line
 * without source= (written before sources were recorded) loads with
 * source "unknown": it relays, but ties no address to a customer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlproto.h"
#include "grants.h"
#include "log.h"
#include "units.h"
#include "util.h"

#define GRANTS_MIN_BUCKETS 1024u

struct grant {
    struct grant *next;            /* hash chain */
    int64_t expires;
    int64_t disk_expires;          /* expiry as last written to disk */
    uint32_t heap_idx;
    uint32_t hash;
    struct ipaddr addr;
    uint8_t userlen, custlen;
    char strs[];                   /* user NUL customer NUL source NUL */
};

struct grants {
    char path[PATH_MAX];
    char journal_path[PATH_MAX];
    int journal_fd;
    size_t journal_lines;
    int64_t last_snapshot;
    uint64_t ttl;
    uint64_t seed;
    struct grant **buckets;
    size_t nbuckets;               /* power of two */
    size_t count;
    struct grant **heap;
    size_t heapsize;
};

/* --- hashing --- */

static uint32_t
addr_hash(const struct grants *g, const struct ipaddr *a)
{
    uint64_t h = g->seed ^ 0xcbf29ce484222325ull;
    size_t i, n = a->family == AF_INET ? 4 : 16;

    h = (h ^ (uint64_t)a->family) * 0x100000001b3ull;
    for (i = 0; i < n; i++)
        h = (h ^ a->bytes[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static const char *
grant_customer(const struct grant *gr)
{
    return gr->strs + gr->userlen + 1;
}

static const char *
grant_source(const struct grant *gr)
{
    return gr->strs + gr->userlen + 1 + gr->custlen + 1;
}

/* --- heap on expiry --- */

static void
heap_place(struct grants *g, size_t i, struct grant *gr)
{
    g->heap[i] = gr;
    gr->heap_idx = (uint32_t)i;
}

static void
heap_up(struct grants *g, size_t i)
{
    struct grant *gr = g->heap[i];

    while (i > 0 && g->heap[(i - 1) / 2]->expires > gr->expires) {
        heap_place(g, i, g->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_place(g, i, gr);
}

static void
heap_down(struct grants *g, size_t i)
{
    struct grant *gr = g->heap[i];
    size_t c;

    while ((c = 2 * i + 1) < g->count) {
        if (c + 1 < g->count && g->heap[c + 1]->expires < g->heap[c]->expires)
            c++;
        if (g->heap[c]->expires >= gr->expires)
            break;
        heap_place(g, i, g->heap[c]);
        i = c;
    }
    heap_place(g, i, gr);
}

/* heap_remove - take gr out of the heap and the count */

static void
heap_remove(struct grants *g, struct grant *gr)
{
    size_t i = gr->heap_idx, last = --g->count;
    struct grant *moved;

    if (i != last) {
        moved = g->heap[last];
        heap_place(g, i, moved);
        heap_down(g, i);
        heap_up(g, moved->heap_idx);
    }
}

/* --- table --- */

static struct grant **
find_slot(struct grants *g, const struct ipaddr *a, uint32_t h)
{
    struct grant **pp = &g->buckets[h & (g->nbuckets - 1)];

    while (*pp != NULL && ((*pp)->hash != h || !ipaddr_equal(&(*pp)->addr, a)))
        pp = &(*pp)->next;
    return pp;
}

static int
grow(struct grants *g)
{
    size_t n = g->nbuckets * 2, i;
    struct grant **nb, **heap, *gr, *next;

    if ((heap = x_reallocarray(g->heap, n, sizeof(*heap))) == NULL)
        return -1;
    g->heap = heap;
    g->heapsize = n;
    if ((nb = x_calloc(n, sizeof(*nb))) == NULL)
        return -1;
    for (i = 0; i < g->nbuckets; i++) {
        for (gr = g->buckets[i]; gr != NULL; gr = next) {
            next = gr->next;
            gr->next = nb[gr->hash & (n - 1)];
            nb[gr->hash & (n - 1)] = gr;
        }
    }
    x_free(g->buckets);
    g->buckets = nb;
    g->nbuckets = n;
    return 0;
}

static void
unlink_grant(struct grants *g, struct grant **pp)
{
    struct grant *gr = *pp;

    *pp = gr->next;
    heap_remove(g, gr);
    x_free(gr);
}

struct grants *
grants_new(const char *path, uint64_t ttl)
{
    struct grants *g = x_calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    g->journal_fd = -1;
    g->ttl = ttl;
    g->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    g->nbuckets = GRANTS_MIN_BUCKETS;
    g->heapsize = GRANTS_MIN_BUCKETS;
    g->buckets = x_calloc(g->nbuckets, sizeof(*g->buckets));
    g->heap = x_calloc(g->heapsize, sizeof(*g->heap));
    if (g->buckets == NULL || g->heap == NULL || str_copy(g->path, sizeof(g->path), path) < 0 ||
        (path[0] != '\0' &&
         str_printf(g->journal_path, sizeof(g->journal_path), "%s.journal", path) < 0)) {
        grants_free(g);
        return NULL;
    }
    return g;
}

void
grants_free(struct grants *g)
{
    size_t i;
    struct grant *gr, *next;

    if (g == NULL)
        return;
    for (i = 0; g->buckets != NULL && i < g->nbuckets; i++)
        for (gr = g->buckets[i]; gr != NULL; gr = next) {
            next = gr->next;
            x_free(gr);
        }
    if (g->journal_fd >= 0)
        close(g->journal_fd);
    x_free(g->buckets);
    x_free(g->heap);
    x_free(g);
}

size_t
grants_count(const struct grants *g)
{
    return g->count;
}

/* --- journal --- */

static int
format_grant(const struct grant *gr, char *buf, size_t size)
{
    struct ctl_msg m;
    char ip[IPADDR_TEXT_MAX];

    if (ctl_msg_init(&m, "GRANT") < 0 ||
        ctl_msg_add(&m, "ip", ipaddr_format(&gr->addr, ip, sizeof(ip))) < 0 ||
        ctl_msg_add(&m, "user", gr->strs) < 0 ||
        ctl_msg_add(&m, "customer", grant_customer(gr)) < 0 ||
        ctl_msg_add(&m, "source", grant_source(gr)) < 0 ||
        ctl_msg_addf(&m, "expires", "%" PRId64, gr->expires) < 0)
        return -1;
    return ctl_format(&m, buf, size);
}

static int
journal_append(struct grants *g, const char *line, size_t len, struct errbuf *err)
{
    if (g->path[0] == '\0')
        return 0;
    if (g->journal_fd < 0 &&
        (g->journal_fd = open(g->journal_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
                              O_NOFOLLOW, 0600)) < 0) {
        errbuf_set_errno(err, "open %s", g->journal_path);
        return -1;
    }
    if (fd_write_all(g->journal_fd, line, len) < 0) {
        errbuf_set_errno(err, "write %s", g->journal_path);
        return -1;
    }
    g->journal_lines++;
    return 0;
}

static int
journal_grant(struct grants *g, struct grant *gr, struct errbuf *err)
{
    char line[CTL_LINE_MAX];
    int len;

    if ((len = format_grant(gr, line, sizeof(line))) < 0) {
        errbuf_set(err, "grant does not fit in a journal line");
        return -1;
    }
    if (journal_append(g, line, (size_t)len, err) < 0)
        return -1;
    gr->disk_expires = gr->expires;
    return 0;
}

/* --- operations --- */

static struct grant *
grant_alloc(const struct ipaddr *a, const char *user, const char *customer, const char *source)
{
    size_t ul = strlen(user), cl = strlen(customer), sl = strlen(source);
    struct grant *gr;

    if (ul > GRANT_USER_MAX || cl > CUSTOMER_NAME_MAX || sl >= GRANT_SOURCE_MAX)
        return NULL;
    if ((gr = x_calloc(1, sizeof(*gr) + ul + cl + sl + 3)) == NULL)
        return NULL;
    gr->addr = *a;
    gr->userlen = (uint8_t)ul;
    gr->custlen = (uint8_t)cl;
    memcpy(gr->strs, user, ul + 1);
    memcpy(gr->strs + ul + 1, customer, cl + 1);
    memcpy(gr->strs + ul + 1 + cl + 1, source, sl + 1);
    return gr;
}

/* replace - put a fresh record for the same address in place of *pp */

static struct grant *
replace(struct grants *g, struct grant **pp, const struct ipaddr *a, uint32_t h,
        const char *user, const char *customer, const char *source, struct errbuf *err)
{
    struct grant *gr;

    if ((gr = grant_alloc(a, user, customer, source)) == NULL) {
        errbuf_set(err, "cannot record a grant: user, customer or source too long, or out of "
                   "memory");
        return NULL;
    }
    gr->hash = h;
    if (*pp != NULL) {
        gr->next = (*pp)->next;
        gr->expires = (*pp)->expires;
        heap_place(g, (*pp)->heap_idx, gr);
        x_free(*pp);
    } else {
        gr->next = NULL;
        gr->expires = INT64_MIN;
        heap_place(g, g->count, gr);
        g->count++;
        heap_up(g, gr->heap_idx);
    }
    *pp = gr;
    return gr;
}

static void
set_expiry(struct grants *g, struct grant *gr, int64_t expires)
{
    int64_t old = gr->expires;

    gr->expires = expires;
    if (expires > old)
        heap_down(g, gr->heap_idx);
    else
        heap_up(g, gr->heap_idx);
}

int
grants_set(struct grants *g, const struct ipaddr *a, const char *user, const char *customer,
           const char *source, int64_t expires, int64_t now, struct errbuf *err)
{
    uint32_t h = addr_hash(g, a);
    struct grant **pp, *gr;
    bool changed;

    user = user ? user : "";
    customer = customer ? customer : "";
    pp = find_slot(g, a, h);
    if (*pp != NULL && (*pp)->expires <= now) {
        unlink_grant(g, pp);
        pp = find_slot(g, a, h);
    }
    if (*pp == NULL && g->count >= GRANTS_MAX) {
        errbuf_set(err, "too many grants (%u)", GRANTS_MAX);
        return -1;
    }
    if (*pp == NULL && g->count + 1 > g->nbuckets) {
        if (grow(g) < 0) {
            errbuf_set(err, "cannot record a grant: out of memory");
            return -1;
        }
        pp = find_slot(g, a, h);
    }
    gr = *pp;
    changed = gr == NULL || strcmp(gr->strs, user) != 0 ||
              strcmp(grant_customer(gr), customer) != 0 || strcmp(grant_source(gr), source) != 0;
    if (changed && (gr = replace(g, pp, a, h, user, customer, source, err)) == NULL)
        return -1;
    set_expiry(g, gr, expires);
    if (changed || expires < gr->disk_expires ||
        (uint64_t)(expires - gr->disk_expires) >= g->ttl / 2)
        return journal_grant(g, gr, err);
    return 0;
}

static void
fill_info(const struct grant *gr, struct grant_info *info)
{
    info->addr = gr->addr;
    info->user = gr->strs;
    info->customer = grant_customer(gr);
    info->source = grant_source(gr);
    info->expires = gr->expires;
}

int
grants_get(struct grants *g, const struct ipaddr *a, int64_t now, struct grant_info *info_r)
{
    struct grant **pp = find_slot(g, a, addr_hash(g, a));

    if (*pp == NULL)
        return 0;
    if ((*pp)->expires <= now) {
        unlink_grant(g, pp);
        return 0;
    }
    if (info_r != NULL)
        fill_info(*pp, info_r);
    return 1;
}

int
grants_revoke(struct grants *g, const struct ipaddr *a, struct errbuf *err)
{
    struct grant **pp = find_slot(g, a, addr_hash(g, a));
    struct ctl_msg m;
    char line[CTL_LINE_MAX], ip[IPADDR_TEXT_MAX];
    int len;

    if (*pp == NULL)
        return 0;
    unlink_grant(g, pp);
    if (ctl_msg_init(&m, "REVOKE") < 0 ||
        ctl_msg_add(&m, "ip", ipaddr_format(a, ip, sizeof(ip))) < 0 ||
        (len = ctl_format(&m, line, sizeof(line))) < 0) {
        errbuf_set(err, "cannot format a journal line");
        return -1;
    }
    return journal_append(g, line, (size_t)len, err) < 0 ? -1 : 1;
}

size_t
grants_expire(struct grants *g, int64_t now)
{
    size_t n = 0;

    while (g->count > 0 && g->heap[0]->expires <= now) {
        struct grant *gr = g->heap[0];

        unlink_grant(g, find_slot(g, &gr->addr, gr->hash));
        n++;
    }
    return n;
}

int
grants_foreach(struct grants *g, int64_t now, grants_fn *fn, void *ctx)
{
    struct grant_info info;
    size_t i;
    int rc;

    for (i = 0; i < g->count; i++) {
        if (g->heap[i]->expires <= now)
            continue;
        fill_info(g->heap[i], &info);
        if ((rc = fn(ctx, &info)) != 0)
            return rc;
    }
    return 0;
}

bool
grants_snapshot_due(const struct grants *g, int64_t now)
{
    if (g->path[0] == '\0' || g->journal_lines == 0)
        return false;
    return g->journal_lines >= GRANTS_JOURNAL_MAX ||
           now - g->last_snapshot >= GRANTS_SNAPSHOT_INTERVAL;
}

/* --- snapshot --- */

static int
write_all_grants(struct grants *g, FILE *fp, int64_t now)
{
    char line[CTL_LINE_MAX];
    size_t i;
    int len;

    for (i = 0; i < g->count; i++) {
        if (g->heap[i]->expires <= now)
            continue;
        if ((len = format_grant(g->heap[i], line, sizeof(line))) < 0)
            continue;
        if (fwrite(line, 1, (size_t)len, fp) != (size_t)len)
            return -1;
    }
    return 0;
}

static int
snapshot_dir(const char *path, char *dir, size_t size)
{
    char tmp[PATH_MAX];

    if (str_copy(tmp, sizeof(tmp), path) < 0)
        return -1;
    return str_copy(dir, size, dirname(tmp));
}

int
grants_snapshot(struct grants *g, int64_t now, struct errbuf *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    FILE *fp = NULL;
    int fd = -1, rc = -1;
    size_t i;

    if (g->path[0] == '\0')
        return 0;
    if (str_printf(tmp, sizeof(tmp), "%s.tmp", g->path) < 0 ||
        snapshot_dir(g->path, dir, sizeof(dir)) < 0) {
        errbuf_set(err, "%s: path too long", g->path);
        return -1;
    }
    for (i = 0; i < g->count; i++)
        g->heap[i]->disk_expires = g->heap[i]->expires;
    if (unlink(tmp) < 0 && errno != ENOENT) {
        errbuf_set_errno(err, "unlink %s", tmp);
        goto out;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
        (fp = fdopen(fd, "w")) == NULL) {
        errbuf_set_errno(err, "create %s", tmp);
        goto out;
    }
    fd = -1;
    if (write_all_grants(g, fp, now) < 0 || fflush(fp) != 0 || fsync(fileno(fp)) < 0) {
        errbuf_set_errno(err, "write %s", tmp);
        goto out;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        errbuf_set_errno(err, "close %s", tmp);
        goto out;
    }
    fp = NULL;
    if (rename(tmp, g->path) < 0) {
        errbuf_set_errno(err, "rename %s to %s", tmp, g->path);
        goto out;
    }
    if (fsync_dir(dir) < 0) {
        errbuf_set_errno(err, "fsync %s", dir);
        goto out;
    }
    if (g->journal_fd >= 0 && ftruncate(g->journal_fd, 0) < 0) {
        errbuf_set_errno(err, "truncate %s", g->journal_path);
        goto out;
    }
    if (g->journal_fd < 0 && truncate(g->journal_path, 0) < 0 && errno != ENOENT) {
        errbuf_set_errno(err, "truncate %s", g->journal_path);
        goto out;
    }
    g->journal_lines = 0;
    g->last_snapshot = now;
    rc = 0;
out:
    if (fp != NULL)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* --- loading --- */

static int
apply_grant_line(struct grants *g, const struct ctl_msg *m, int64_t now, struct errbuf *err)
{
    const char *ip = ctl_msg_get(m, "ip"), *exp = ctl_msg_get(m, "expires"), *e, *source;
    struct ipaddr a;
    uint64_t expires;

    if (ip == NULL || ipaddr_parse(ip, &a, &e) < 0) {
        errbuf_set(err, "bad or missing ip");
        return -1;
    }
    if (strcmp(m->verb, "REVOKE") == 0)
        return grants_revoke(g, &a, err) < 0 ? -1 : 0;
    if (strcmp(m->verb, "GRANT") != 0) {
        errbuf_set(err, "unknown verb %s", m->verb);
        return -1;
    }
    if (exp == NULL || units_parse_uint(exp, INT64_MAX, &expires, &e) < 0) {
        errbuf_set(err, "bad or missing expires");
        return -1;
    }
    if ((int64_t)expires <= now) {
        grants_revoke(g, &a, NULL);
        return 0;
    }
    source = ctl_msg_get(m, "source");
    return grants_set(g, &a, ctl_msg_get(m, "user"), ctl_msg_get(m, "customer"),
                      source != NULL && source[0] != '\0' ? source : GRANT_SOURCE_UNKNOWN,
                      (int64_t)expires, now, err);
}

static int
load_file(struct grants *g, const char *path, int64_t now, struct errbuf *err)
{
    char line[CTL_LINE_MAX + 2];
    struct ctl_msg m;
    struct errbuf lerr;
    unsigned lineno = 0;
    size_t len;
    FILE *fp;

    if ((fp = fopen(path, "re")) == NULL) {
        if (errno == ENOENT)
            return 0;
        errbuf_set_errno(err, "open %s", path);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            log_warnx("%s:%u: incomplete or overlong line ignored", path, lineno);
            if (len + 1 == sizeof(line))
                while (fgets(line, sizeof(line), fp) != NULL && strchr(line, '\n') == NULL)
                    ;
            continue;
        }
        if (ctl_parse(line, len, &m, &lerr) < 0 || apply_grant_line(g, &m, now, &lerr) < 0)
            log_warnx("%s:%u: %s; line ignored", path, lineno, lerr.msg);
    }
    if (ferror(fp)) {
        errbuf_set_errno(err, "read %s", path);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    return 0;
}

int
grants_load(struct grants *g, int64_t now, struct errbuf *err)
{
    char saved[PATH_MAX];

    if (g->path[0] == '\0')
        return 0;
    /* replaying must not append to the journal being read */
    if (str_copy(saved, sizeof(saved), g->path) < 0)
        return -1;
    g->path[0] = '\0';
    if (load_file(g, saved, now, err) < 0 || load_file(g, g->journal_path, now, err) < 0) {
        str_copy(g->path, sizeof(g->path), saved);
        return -1;
    }
    str_copy(g->path, sizeof(g->path), saved);
    return grants_snapshot(g, now, err);
}
