/* SPDX-License-Identifier: ISC */
/*
 * sweep.c - the expiry sweep (see sweep.h), in a forked child of
 * autoturn-flusher. Owns the delay-warning markers
 * <spool>/<customer>/warned/<id> and, while it works on a customer, that
 * customer's spool lock (taken without waiting: a customer whose flush
 * runs is skipped this round). A message leaves the spool only after its
 * DSN was accepted by the local MTA (or when no recipient wants one), so a
 * crash here at worst sends a DSN twice. It also removes what an
 * interrupted write left in a customer's tmp/ (maildir convention: a file
 * unchanged for tmp_max_age, default 36 hours, has no writer any more).
 *
 * SECURITY: spool files are parsed by the spool and envelope modules
 * (bounded); marker names come from spool ids (spool_list) or from the
 * warned/ directory, where only names that are no current id are removed;
 * in tmp/ only regular files are removed (lstat: no link is followed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "custdb.h"
#include "deliver.h"
#include "dsn.h"
#include "log.h"
#include "logline.h"
#include "metrics.h"
#include "sweep.h"
#include "units.h"
#include "util.h"

#define SWEEP_TEXT_MAX 256           /* DSN reason, diagnostic, log reason */
#define NOTIFY_MAX     (ENVELOPE_PARAMS_MAX + 1)

struct sweep {
    const struct config *cfg;
    struct spool *spool;
    struct custdb *db;
    unsigned long customers, bounced, warned, skipped, tmp_removed;
    uint64_t held, held_bytes;       /* what is left after the sweep: the held metrics */
    time_t oldest;                   /* 0: nothing held */
};

struct cust {
    struct sweep *s;
    const char *name;
    uint64_t max_age;                /* the customer's, or the default */
    char dir[PATH_MAX];              /* <spool>/<customer> */
    time_t now;
};

/* the DSN recipients chosen from one envelope */
struct dsn_set {
    struct dsn_rcpt *r;
    char (*orcpt)[NOTIFY_MAX];
    bool *chosen;                    /* per envelope recipient */
    size_t n;
};

/* --- NOTIFY= (RFC 3461) --- */

static void
dsn_set_free(struct dsn_set *ds)
{
    x_free(ds->r);
    x_free(ds->orcpt);
    x_free(ds->chosen);
}

/* dsn_set_build - the recipients whose NOTIFY asks for kind; 0 or -1 (ENOMEM) */

static int
dsn_set_build(struct dsn_set *ds, const struct envelope *env, const char *kind,
              const char *status, const char *diag)
{
    size_t i;

    memset(ds, 0, sizeof(*ds));
    ds->r = x_calloc(env->nrcpt, sizeof(*ds->r));
    ds->orcpt = x_calloc(env->nrcpt, sizeof(*ds->orcpt));
    ds->chosen = x_calloc(env->nrcpt, sizeof(*ds->chosen));
    if (ds->r == NULL || ds->orcpt == NULL || ds->chosen == NULL)
        return -1;
    for (i = 0; i < env->nrcpt; i++) {
        if (!(ds->chosen[i] = dsn_notify_wants(env->rcpt[i].params, kind)))
            continue;
        ds->r[ds->n] = (struct dsn_rcpt){env->rcpt[i].addr, NULL, status, diag, NULL};
        if (envelope_param(env->rcpt[i].params, "ORCPT", ds->orcpt[ds->n], NOTIFY_MAX) == 1)
            ds->r[ds->n].orcpt = ds->orcpt[ds->n];
        ds->n++;
    }
    return 0;
}

/* --- warned/ markers --- */

static int
marker_path(const struct cust *c, const char *id, char *buf, size_t size)
{
    return str_printf(buf, size, "%s/%s/%s", c->dir, SWEEP_WARNED_DIR, id);
}

/* marker_exists - 1 warned, 0 not, -1 cannot tell (logged) */

static int
marker_exists(const struct cust *c, const char *id)
{
    char path[PATH_MAX];
    struct stat st;

    if (marker_path(c, id, path, sizeof(path)) < 0) {
        log_warnx("customer=%s, id=%s: warned marker path too long", c->name, id);
        return -1;
    }
    if (lstat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    log_warn("customer=%s, id=%s: lstat %s", c->name, id, path);
    return -1;
}

/* marker_create - warned/<id>, durable (the directory is fsync'ed) */

static int
marker_create(const struct cust *c, const char *id, struct errbuf *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int fd;

    if (path_join(dir, sizeof(dir), c->dir, SWEEP_WARNED_DIR) < 0 ||
        marker_path(c, id, path, sizeof(path)) < 0) {
        errbuf_set(err, "marker path too long");
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        errbuf_set_errno(err, "mkdir %s", dir);
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        errbuf_set_errno(err, "create %s", path);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    if (fsync_dir(dir) < 0) {
        errbuf_set_errno(err, "fsync %s", dir);
        return -1;
    }
    return 0;
}

static void
marker_remove(const struct cust *c, const char *id)
{
    char path[PATH_MAX];

    if (marker_path(c, id, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
        log_warn("customer=%s, id=%s: unlink %s", c->name, id, path);
}

static bool
listed(const char *id, const struct spool_entry *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return true;
    return false;
}

/* markers_clean - remove the markers of messages that are gone
 * (delivered or bounced by a flush) */

static void
markers_clean(const struct cust *c, const struct spool_entry *v, size_t n)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;

    if (path_join(dir, sizeof(dir), c->dir, SWEEP_WARNED_DIR) < 0)
        return;
    if ((d = opendir(dir)) == NULL) {
        if (errno != ENOENT)
            log_warn("customer=%s: opendir %s", c->name, dir);
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && !listed(de->d_name, v, n))
            marker_remove(c, de->d_name);
    closedir(d);
}

/* --- tmp/ leftovers --- */

/* tmp_stale - a regular file whose data and inode are older than the age */

static bool
tmp_stale(const struct cust *c, const struct stat *st, uint64_t *age_r)
{
    time_t newest = st->st_mtime > st->st_ctime ? st->st_mtime : st->st_ctime;

    if (!S_ISREG(st->st_mode) || c->now < newest)
        return false;
    *age_r = (uint64_t)(c->now - newest);
    return *age_r >= c->s->cfg->flusher.tmp_max_age;
}

/* tmp_clean - remove the files an interrupted write left in tmp/ (a
 * milter killed mid-message, a flush process killed while rewriting an
 * envelope). No lock is needed: a writer changes its file all the time,
 * and a file unchanged for tmp_max_age has none. */

static void
tmp_clean(struct cust *c)
{
    char dir[PATH_MAX], age[32];
    struct dirent *de;
    struct stat st;
    uint64_t a;
    DIR *d;

    if (path_join(dir, sizeof(dir), c->dir, "tmp") < 0)
        return;
    if ((d = opendir(dir)) == NULL) {
        if (errno != ENOENT)
            log_warn("customer=%s: opendir %s", c->name, dir);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                log_warn("customer=%s: stat %s/%s", c->name, dir, de->d_name);
            continue;
        }
        if (!tmp_stale(c, &st, &a))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
            if (errno != ENOENT)
                log_warn("customer=%s: unlink %s/%s", c->name, dir, de->d_name);
            continue;
        }
        units_format_duration(a, age, sizeof(age));
        log_info("customer=%s: removed tmp/%s (%lld bytes, unchanged for %s): left by an "
                 "interrupted write", c->name, de->d_name, (long long)st.st_size, age);
        c->s->tmp_removed++;
    }
    closedir(d);
}

/* --- one message --- */

static void
log_rcpt(const struct cust *c, const char *id, const struct envelope *env, const char *addr,
         const char *dsn, const char *status, const char *text)
{
    logline_rcpt(id, env, addr, c->name, "none", c->now, dsn, status, text);
}

/* open_msg - 0, or -1 (malformed: moved to bad/ and logged by the spool) */

static int
open_msg(const struct cust *c, const char *id, struct spool_msg **m_r)
{
    struct errbuf err;
    int rc;

    if ((rc = spool_msg_open(c->s->spool, c->name, id, m_r, &err)) == SPOOL_MALFORMED)
        return -1;
    if (rc < 0) {
        log_warnx("customer=%s, id=%s: cannot open: %s; skipped by the sweep", c->name, id,
                  err.msg);
        return -1;
    }
    return 0;
}

/* expire_log - one line per recipient of a bounced message */

static void
expire_log(const struct cust *c, const struct spool_entry *e, const struct envelope *env,
           const struct dsn_set *ds, const char *age)
{
    char text[SWEEP_TEXT_MAX], val[NOTIFY_MAX];
    size_t i;

    for (i = 0; i < env->nrcpt; i++) {
        if (ds->chosen[i] || envelope_param(env->rcpt[i].params, "NOTIFY", val, sizeof(val)) != 1 ||
            str_printf(text, sizeof(text), "held too long: %s; no DSN: NOTIFY=%s", age, val) < 0)
            (void)str_printf(text, sizeof(text), "held too long: %s", age);
        log_rcpt(c, e->id, env, env->rcpt[i].addr, "4.4.7", "bounced", text);
        metrics_inc(METRIC_DELIVERIES, METRICS_EXPIRED);
    }
}

/* expire - bounce a message older than max_age: DSN first, then delete;
 * true when it left the spool */

static bool
expire(struct cust *c, const struct spool_entry *e)
{
    const struct config_flusher *cf = &c->s->cfg->flusher;
    char age[32], diag[SWEEP_TEXT_MAX], reason[SWEEP_TEXT_MAX];
    struct dsn_set ds = {0};
    struct spool_msg *m = NULL;
    const struct envelope *env;
    struct errbuf err;
    bool gone = false;

    if (open_msg(c, e->id, &m) < 0)
        return false;
    env = spool_msg_envelope(m);
    units_format_duration(c->max_age, age, sizeof(age));
    (void)str_printf(diag, sizeof(diag), "X-Autoturn; held for %s; the customer did not "
                     "collect it", age);
    (void)str_printf(reason, sizeof(reason), "held too long: the customer %s did not collect "
                     "it within %s", c->name, age);
    if (dsn_set_build(&ds, env, "FAILURE", "4.4.7", diag) < 0) {
        log_warnx("customer=%s, id=%s: out of memory for an expiry DSN; message kept", c->name,
                  e->id);
        goto out;
    }
    if (ds.n > 0) {
        struct dsn d = {DSN_FAILED, cf->myhostname, c->name, reason, ds.n, ds.r};

        if (dsn_send(cf, &d, m, dsn_recipient(env, cf->postmaster), &err) < 0) {
            log_warnx("customer=%s, id=%s: expiry DSN not sent: %s; message kept", c->name,
                      e->id, err.msg);
            goto out;
        }
    }
    expire_log(c, e, env, &ds, age);
    c->s->bounced++;
    if (spool_delete(c->s->spool, c->name, e->id, &err) < 0) {
        log_warnx("customer=%s, id=%s: cannot remove it after its expiry DSN: %s (the DSN may "
                  "be sent again)", c->name, e->id, err.msg);
    } else {
        marker_remove(c, e->id);
        gone = true;
    }
out:
    dsn_set_free(&ds);
    spool_msg_close(m);
    return gone;
}

/* warn - one delay warning per message older than delay_warning */

static void
warn(struct cust *c, const struct spool_entry *e)
{
    const struct config_flusher *cf = &c->s->cfg->flusher;
    char dw[32], age[32], diag[SWEEP_TEXT_MAX], reason[SWEEP_TEXT_MAX];
    struct dsn_set ds = {0};
    struct spool_msg *m = NULL;
    const struct envelope *env;
    struct errbuf err;
    size_t i;

    if (marker_exists(c, e->id) != 0 || open_msg(c, e->id, &m) < 0)
        return;
    env = spool_msg_envelope(m);
    units_format_duration(cf->delay_warning, dw, sizeof(dw));
    units_format_duration(c->max_age, age, sizeof(age));
    (void)str_printf(diag, sizeof(diag), "X-Autoturn; held for more than %s; the customer has "
                     "not collected it yet", dw);
    (void)str_printf(reason, sizeof(reason), "the customer %s has not collected it yet; it will "
                     "be returned if it is still held after %s", c->name, age);
    if (dsn_set_build(&ds, env, "DELAY", "4.4.7", diag) < 0) {
        log_warnx("customer=%s, id=%s: out of memory for a delay warning", c->name, e->id);
        goto out;
    }
    if (ds.n > 0) {
        struct dsn d = {DSN_DELAYED, cf->myhostname, c->name, reason, ds.n, ds.r};

        if (dsn_send(cf, &d, m, dsn_recipient(env, cf->postmaster), &err) < 0) {
            log_warnx("customer=%s, id=%s: delay warning not sent: %s; next sweep tries again",
                      c->name, e->id, err.msg);
            goto out;
        }
    }
    if (marker_create(c, e->id, &err) < 0)
        log_warnx("customer=%s, id=%s: cannot remember the delay warning: %s (it may be sent "
                  "again)", c->name, e->id, err.msg);
    (void)str_printf(diag, sizeof(diag), "held for more than %s; delay warning sent", dw);
    for (i = 0; i < env->nrcpt; i++)
        if (ds.chosen[i])
            log_rcpt(c, e->id, env, env->rcpt[i].addr, "4.4.7", "delayed", diag);
    c->s->warned++;
out:
    dsn_set_free(&ds);
    spool_msg_close(m);
}

/* --- one customer --- */

/* tally - count v[0..n) into what the sweep leaves held */

static void
tally(struct sweep *s, const struct spool_entry *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        s->held++;
        s->held_bytes += v[i].size;
        if (s->oldest == 0 || v[i].arrival < s->oldest)
            s->oldest = v[i].arrival;
    }
}

/* threshold - the youngest age at which the sweep has work to do */

static uint64_t
threshold(const struct cust *c)
{
    uint64_t dw = c->s->cfg->flusher.delay_warning;

    return dw > 0 && dw < c->max_age ? dw : c->max_age;
}

static bool
due(const struct cust *c, const struct spool_entry *e, uint64_t age)
{
    return c->now >= e->arrival && (uint64_t)(c->now - e->arrival) >= age;
}

/* work - under the lock: the list again, oldest first, up to the first
 * message with nothing to do */

static void
work(struct cust *c)
{
    struct spool_entry *v = NULL;
    struct errbuf err;
    size_t i, n = 0;

    if (spool_list(c->s->spool, c->name, &v, &n, &err) < 0) {
        log_warnx("customer=%s: sweep: cannot list the spool: %s", c->name, err.msg);
        return;
    }
    for (i = 0; i < n && due(c, &v[i], threshold(c)); i++) {
        c->now = time(NULL);
        if (!due(c, &v[i], c->max_age))
            warn(c, &v[i]);
        else if (expire(c, &v[i]))
            continue;                    /* gone: not held any more */
        tally(c->s, &v[i], 1);
    }
    tally(c->s, v + i, n - i);
    x_free(v);
}

/* max_age - the customer's own, else the default; -1 on a lookup error */

static int
max_age(struct cust *c)
{
    struct customer *cu = NULL;
    struct errbuf err;
    int rc;

    c->max_age = c->s->cfg->flusher.max_age;
    if ((rc = custdb_lookup_name(c->s->db, c->name, &cu, &err)) < 0) {
        log_warnx("customer=%s: sweep skipped: customer table: %s", c->name, err.msg);
        return -1;
    }
    if (rc == 1 && cu->max_age != 0)
        c->max_age = cu->max_age;
    customer_free(cu);
    return 0;
}

/* customer - a first look without the lock (a flush is not held up by a
 * sweep with nothing to do), then the work under the lock */

static void
customer(struct sweep *s, const char *name)
{
    struct cust c = {s, name, 0, "", time(NULL)};
    struct spool_entry *v = NULL;
    struct errbuf err;
    size_t n = 0;
    int fd = -1, rc = 0;

    if (spool_customer_dir(s->spool, name, c.dir, sizeof(c.dir)) < 0 || max_age(&c) < 0)
        return;
    s->customers++;
    if (spool_list(s->spool, name, &v, &n, &err) < 0) {
        log_warnx("customer=%s: sweep: cannot list the spool: %s", name, err.msg);
        return;
    }
    markers_clean(&c, v, n);
    tmp_clean(&c);
    if (n == 0 || !due(&c, &v[0], threshold(&c)))
        goto out;
    if ((rc = spool_lock(s->spool, name, false, &fd, &err)) == 0) {
        log_info("customer=%s: sweep skipped: a flush holds the spool lock", name);
        s->skipped++;
    } else if (rc < 0) {
        log_warnx("customer=%s: sweep: cannot lock the spool: %s", name, err.msg);
    } else {
        work(&c);                        /* tallies what it leaves */
        spool_unlock(fd);
    }
out:
    if (rc != 1)
        tally(s, v, n);
    x_free(v);
}

/* --- the child and its parent --- */

static void __attribute__((noreturn))
sweep_child(const struct config *cfg, struct spool *sp, int status_fd)
{
    struct sweep s = {.cfg = cfg, .spool = sp};
    struct errbuf err;
    char **names = NULL;
    size_t i, n = 0;

    deliver_child_setup(cfg, status_fd, -1);
    if (cfg->flusher.flush_timeout > 0)
        alarm((unsigned)cfg->flusher.flush_timeout);   /* default action: the child dies */
    if ((s.db = custdb_new(cfg->customers_table)) == NULL) {
        log_warnx("sweep: out of memory");
        _exit(1);
    }
    if (spool_customers(sp, &names, &n, &err) < 0) {
        log_warnx("sweep: cannot list the customers in the spool: %s", err.msg);
        custdb_free(s.db);
        _exit(1);
    }
    for (i = 0; i < n; i++)
        customer(&s, names[i]);
    metrics_held(s.held, s.held_bytes, s.oldest);
    if (s.bounced + s.warned + s.skipped + s.tmp_removed > 0)
        log_info("sweep done: customers=%lu, bounced=%lu, warned=%lu, skipped=%lu, "
                 "tmp_removed=%lu", s.customers, s.bounced, s.warned, s.skipped, s.tmp_removed);
    spool_names_free(names, n);
    custdb_free(s.db);
    _exit(0);
}

pid_t
sweep_start(const struct config *cfg, struct spool *sp, int *fd_r, struct errbuf *err)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        errbuf_set_errno(err, "pipe");
        return -1;
    }
    if ((pid = fork()) < 0) {
        errbuf_set_errno(err, "fork");
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0)
        sweep_child(cfg, sp, p[1]);
    close(p[1]);
    (void)fd_set_nonblock(p[0]);   /* only read when epoll says so: blocking is harmless */
    *fd_r = p[0];
    return pid;
}

static int
reap(pid_t pid)
{
    int st = 0;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 0;
    return st;
}

int
sweep_event(int fd, pid_t pid)
{
    char buf[256];
    ssize_t n;
    int st;

    n = read(fd, buf, sizeof(buf));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return 0;
    st = reap(pid);                 /* the caller closes fd (after taking it out of epoll) */
    if (WIFSIGNALED(st))
        log_warnx("sweep process %d killed by signal %d; expired mail stays held until the "
                  "next sweep", (int)pid, WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        log_warnx("sweep process %d exited with status %d", (int)pid, WEXITSTATUS(st));
    return 1;
}

void
sweep_stop(int fd, pid_t pid)
{
    if (kill(pid, SIGTERM) < 0)
        log_warn("kill %d", (int)pid);
    close(fd);
    (void)reap(pid);
}
