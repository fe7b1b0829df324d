/* SPDX-License-Identifier: ISC */
/*
 * import_spool.c - held mail from the plan into our spool (see
 * import_spool.h). Owns the switch to the spool owner's effective ids,
 * the per-customer flush lock while importing, the set of import tags
 * already in a customer's spool, and the removal of source files.
 *
 * SECURITY: runs as root on the administrator's command. The spool is
 * only touched through lib/spool.c (O_NOFOLLOW, names made there) and
 * with the spool owner's effective ids; sources are opened O_NOFOLLOW
 * and checked against what was scanned.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"
#include "import_maildir.h"
#include "import_spool.h"
#include "spool.h"
#include "util.h"

#define SYNC_DIRS_MAX 16          /* source directories synced per customer */

struct tagged {
    char tag[IMP_TAG_MAX];
    char id[SPOOL_ID_MAX];
};

struct run {
    struct imp_plan *p;
    struct imp_journal *j;
    struct imp_spool_result *r;
    struct spool *sp;
    bool as_owner;                /* switch effective ids around spool work */
    uid_t uid;
    gid_t gid;
    gid_t *groups;                /* root's supplementary groups, restored after */
    int ngroups;
    struct tagged *tags;          /* import tags in the current customer's spool */
    size_t ntags;
    char *dirs[SYNC_DIRS_MAX];    /* source directories to sync */
    size_t ndirs;
};

/* --- effective ids --- */

static int
owner_of(struct run *x, struct errbuf *err)
{
    struct stat st;

    if (stat(spool_root(x->sp), &st) < 0) {
        errbuf_set_errno(err, "spool directory %s", spool_root(x->sp));
        return -1;
    }
    x->as_owner = geteuid() == 0 && st.st_uid != 0;
    x->uid = st.st_uid;
    x->gid = st.st_gid;
    if (!x->as_owner)
        return 0;
    if ((x->ngroups = getgroups(0, NULL)) < 0 ||
        (x->groups = x_reallocarray(NULL, (size_t)x->ngroups + 1, sizeof(gid_t))) == NULL ||
        (x->ngroups = getgroups(x->ngroups, x->groups)) < 0) {
        errbuf_set_errno(err, "getgroups");
        return -1;
    }
    return 0;
}

/* become_owner - the spool owner's effective ids and only its group
 * (setgroups first, as a process that changes its ids should). */
static int
become_owner(const struct run *x, struct errbuf *err)
{
    if (!x->as_owner)
        return 0;
    if (setgroups(1, &x->gid) < 0 || setegid(x->gid) < 0 || seteuid(x->uid) < 0) {
        errbuf_set_errno(err, "cannot become uid %ld gid %ld (the spool's owner)", (long)x->uid,
                         (long)x->gid);
        return -1;
    }
    return 0;
}

/* become_root - back to root with its own groups. */
static int
become_root(const struct run *x, struct errbuf *err)
{
    if (!x->as_owner)
        return 0;
    if (seteuid(0) < 0 || setegid(0) < 0 || setgroups((size_t)x->ngroups, x->groups) < 0) {
        errbuf_set_errno(err, "cannot return to root");
        return -1;
    }
    return 0;
}

/* --- what the spool holds --- */

int
imp_spool_held(struct imp_plan *p, struct errbuf *err)
{
    struct spool_stats st;
    struct spool *sp;
    size_t i;
    int rc = 0;

    if ((sp = spool_new(p->cfg->spool_dir)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    for (i = 0; i < p->ncust && rc == 0; i++) {
        if ((rc = spool_stats(sp, p->cust[i].name, &st, err)) < 0 && errno == ENOENT) {
            memset(&st, 0, sizeof(st));
            rc = 0;
        }
        p->cust[i].held_msgs = st.messages;
        p->cust[i].held_bytes = st.bytes;
    }
    spool_free(sp);
    return rc;
}

static int
tagged_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tagged *)a)->tag, ((const struct tagged *)b)->tag);
}

/* add_tag - remember the import tag of one spool message. */
static int
add_tag(struct run *x, const char *tag, const char *id)
{
    struct tagged *v;

    if (x->ntags % 64 == 0) {
        if ((v = x_reallocarray(x->tags, x->ntags + 64, sizeof(*v))) == NULL)
            return -1;
        x->tags = v;
    }
    (void)str_copy(x->tags[x->ntags].tag, IMP_TAG_MAX, tag);
    (void)str_copy(x->tags[x->ntags].id, SPOOL_ID_MAX, id);
    x->ntags++;
    return 0;
}

/* scan_tags - the import tags in customer's spool (as the spool owner). */
static int
scan_tags(struct run *x, const char *customer, struct errbuf *err)
{
    struct spool_entry *v = NULL;
    struct spool_msg *m;
    size_t n = 0, i;
    int rc = 0, orc;

    x->ntags = 0;
    if (spool_list(x->sp, customer, &v, &n, err) < 0)
        return -1;
    for (i = 0; i < n && rc == 0; i++) {
        if ((orc = spool_msg_open(x->sp, customer, v[i].id, &m, err)) == SPOOL_MALFORMED)
            continue;                           /* moved to bad/ and logged */
        if (orc < 0)
            rc = -1;
        else {
            const char *qid = spool_msg_envelope(m)->queue_id;

            if (strncmp(qid, "import.", 7) == 0 && add_tag(x, qid, v[i].id) < 0) {
                errbuf_set(err, "out of memory");
                rc = -1;
            }
            spool_msg_close(m);
        }
    }
    x_free(v);
    if (x->ntags > 1)
        qsort(x->tags, x->ntags, sizeof(*x->tags), tagged_cmp);
    return rc;
}

static const struct tagged *
find_tag(const struct run *x, const char *tag)
{
    struct tagged key;

    if (x->ntags == 0)
        return NULL;
    (void)str_copy(key.tag, sizeof(key.tag), tag);
    return bsearch(&key, x->tags, x->ntags, sizeof(*x->tags), tagged_cmp);
}

/* --- sources --- */

static int
sync_dirs(struct run *x, struct errbuf *err)
{
    int rc = 0;

    while (x->ndirs > 0) {
        x->ndirs--;
        if (rc == 0 && fsync_dir(x->dirs[x->ndirs]) < 0) {
            errbuf_set_errno(err, "fsync %s", x->dirs[x->ndirs]);
            rc = -1;
        }
        x_free(x->dirs[x->ndirs]);
    }
    return rc;
}

/* remember_dir - the directory of path, to be synced after removals. */
static int
remember_dir(struct run *x, const char *path, struct errbuf *err)
{
    char copy[PATH_MAX], *dir;
    size_t i;

    (void)str_copy(copy, sizeof(copy), path);
    dir = dirname(copy);
    for (i = 0; i < x->ndirs; i++)
        if (strcmp(x->dirs[i], dir) == 0)
            return 0;
    if (x->ndirs == SYNC_DIRS_MAX && sync_dirs(x, err) < 0)
        return -1;
    if ((x->dirs[x->ndirs] = x_strdup(dir)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    x->ndirs++;
    return 0;
}

/* remove_source - unlink m's source (unless --copy); gone already is fine. */
static int
remove_source(struct run *x, const struct imp_msg *m, struct errbuf *err)
{
    if (x->p->o->copy)
        return 0;
    if (unlink(m->path) < 0) {
        if (errno == ENOENT)
            return 0;
        errbuf_set_errno(err, "remove %s", m->path);
        return -1;
    }
    x->r->removed++;
    return remember_dir(x, m->path, err);
}

/* --- one message --- */

/* copy_one - m into the spool (as the spool owner); id_r gets its id. */
static int
copy_one(struct run *x, const struct imp_msg *m, const char *customer, char id_r[SPOOL_ID_MAX],
         struct errbuf *err)
{
    struct spool_writer *w = NULL;
    struct envelope e;
    int fd, rc = -1;

    envelope_init(&e);
    if ((fd = imp_msg_open(m, err)) < 0)
        return -1;
    if (imp_msg_envelope(m, customer, &e, err) < 0 || become_owner(x, err) < 0)
        goto out;
    if (spool_writer_open(x->sp, &e, &w, err) == 0 && imp_msg_copy(fd, m, w, err) == 0) {
        rc = spool_writer_commit(w, id_r, err);
        w = NULL;
    }
    spool_writer_abort(w);
    if (become_root(x, err) < 0)
        rc = -1;
out:
    envelope_clear(&e);
    close(fd);
    return rc;
}

static int
import_one(struct run *x, const struct imp_msg *m, const char *customer, struct errbuf *err)
{
    const struct tagged *t;
    char id[SPOOL_ID_MAX];

    if (m->done) {
        x->r->already++;
        return remove_source(x, m, err);
    }
    if ((t = find_tag(x, m->tag)) != NULL) {
        if (imp_journal_add(x->j, m->tag, customer, t->id, m->path, err) < 0)
            return -1;
        x->r->recovered++;
        return remove_source(x, m, err);
    }
    if (copy_one(x, m, customer, id, err) < 0 ||
        imp_journal_add(x->j, m->tag, customer, id, m->path, err) < 0)
        return -1;
    x->r->imported++;
    x->r->bytes += m->size;
    return remove_source(x, m, err);
}

/* --- one customer --- */

/* lock - the customer's flush lock (as the spool owner), waiting for a
 * running flush; then the tags already in its spool. */
static int
lock(struct run *x, const char *customer, int *fd_r, struct errbuf *err)
{
    int rc;

    if (become_owner(x, err) < 0)
        return -1;
    if ((rc = spool_lock(x->sp, customer, false, fd_r, err)) == 0) {
        fprintf(stderr, "autoturnctl: %s: waiting for the running flush to finish\n", customer);
        rc = spool_lock(x->sp, customer, true, fd_r, err);
    }
    if (rc == 1 && scan_tags(x, customer, err) < 0)
        rc = -1;
    if (become_root(x, err) < 0)
        rc = -1;
    return rc == 1 ? 0 : -1;
}

static int
import_customer(struct run *x, size_t ci, size_t first, size_t end, struct errbuf *err)
{
    const char *name = x->p->cust[ci].name;
    int fd = -1, rc = 0;
    size_t i;

    if (lock(x, name, &fd, err) < 0) {
        spool_unlock(fd);
        return -1;
    }
    for (i = first; i < end && rc == 0; i++)
        rc = import_one(x, &x->p->msgs[i], name, err);
    if (sync_dirs(x, rc == 0 ? err : NULL) < 0)
        rc = -1;
    spool_unlock(fd);
    return rc;
}

int
imp_spool_import(struct imp_plan *p, struct imp_journal *j, struct imp_spool_result *r,
                 struct errbuf *err)
{
    struct run x = { p, j, r, NULL, false, 0, 0, NULL, 0, NULL, 0, {NULL}, 0 };
    size_t i, first;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    if ((x.sp = spool_new(p->cfg->spool_dir)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    if (owner_of(&x, err) < 0)
        rc = -1;
    /* the plan's messages are sorted by customer: one run per customer */
    for (first = 0; rc == 0 && first < p->nmsgs; first = i) {
        for (i = first; i < p->nmsgs && p->msgs[i].cust == p->msgs[first].cust; i++)
            ;
        rc = import_customer(&x, p->msgs[first].cust, first, i, err);
    }
    x_free(x.tags);
    x_free(x.groups);
    spool_free(x.sp);
    return rc;
}
