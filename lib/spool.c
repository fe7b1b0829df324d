/* SPDX-License-Identifier: ISC */
/*
 * spool.c - the per-customer maildir spool: <root>/<customer>/{tmp,new,cur,bad}
 * and <root>/<customer>/.lock. Owns the file-name scheme, the durable write
 * path (tmp/, fsync, link into new/, fsync new/, unlink tmp/), listing in
 * arrival order, the streaming reader, delete, envelope rewrite and the
 * per-customer flush lock. The only process-wide state is the sequence
 * counter that makes names unique between threads.
 *
 * SECURITY: customer names are validated (customer_name_valid) before they
 * become paths; every directory and file is opened relative to a directory
 * descriptor with O_NOFOLLOW, so a symbolic link planted in the spool is
 * refused. Spool ids from callers must be plain file names. File contents
 * are parsed by envelope.c with bounded lines; a file whose envelope does
 * not parse is moved to bad/ and reported once (the one place this
 * library logs: it is where that decision is taken).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "customer.h"
#include "envelope.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define SPOOL_PATH_MAX   PATH_MAX
#define SPOOL_HOST_MAX   64          /* bytes of the (escaped) host part of a name */
#define SPOOL_WBUF_SIZE  65536       /* writer buffer */
#define SPOOL_RBUF_SIZE  65536       /* reader buffer for the envelope, copy buffer */
#define SPOOL_DIR_MODE   0700
#define SPOOL_FILE_MODE  0600
#define SPOOL_LOCK_NAME  ".lock"

struct spool {
    char root[SPOOL_PATH_MAX];
    char host[SPOOL_HOST_MAX + 1];
};

struct spool_writer {
    struct spool *sp;
    char cdir[SPOOL_PATH_MAX];       /* <root>/<customer>, for messages */
    char name[SPOOL_ID_MAX];         /* file name in tmp/ */
    int cfd;                         /* customer directory */
    int tmpfd;                       /* tmp/ */
    int fd;                          /* the file */
    bool failed;                     /* a write failed: commit must refuse */
    size_t len;
    char buf[SPOOL_WBUF_SIZE];
};

struct spool_msg {
    struct envelope env;
    int fd;
    uint64_t hdr_len;
    uint64_t body_size;
    char path[SPOOL_PATH_MAX];
};

static atomic_ulong spool_seq;

/* --- names and paths --- */

/* host_escape - the maildir rule: '/' -> "\057", ':' -> "\072". */
static void
host_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;

    for (; *in != '\0'; in++) {
        const char *rep = *in == '/' ? "\\057" : *in == ':' ? "\\072" : NULL;
        size_t n = rep ? 4 : 1;

        if (o + n >= size)
            break;
        if (rep)
            memcpy(out + o, rep, n);
        else
            out[o] = *in;
        o += n;
    }
    out[o] = '\0';
}

struct spool *
spool_new(const char *root)
{
    char host[256];
    struct spool *sp;

    if ((sp = x_calloc(1, sizeof(*sp))) == NULL)
        return NULL;
    if (str_copy(sp->root, sizeof(sp->root), root) < 0) {
        x_free(sp);
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        (void)str_copy(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    host_escape(host, sp->host, sizeof(sp->host));
    return sp;
}

void
spool_free(struct spool *sp)
{
    x_free(sp);
}

const char *
spool_root(const struct spool *sp)
{
    return sp->root;
}

int
spool_customer_dir(const struct spool *sp, const char *customer, char *buf, size_t size)
{
    const char *why;

    if (!customer_name_valid(customer, &why))
        return -1;
    return path_join(buf, size, sp->root, customer);
}

/* cdir_path - like spool_customer_dir, with the reason in err. */
static int
cdir_path(const struct spool *sp, const char *customer, char *buf, size_t size,
          struct errbuf *err)
{
    const char *why;

    if (!customer_name_valid(customer, &why)) {
        errbuf_set(err, "bad customer name '%s': %s", customer, why);
        errno = EINVAL;
        return -1;
    }
    if (path_join(buf, size, sp->root, customer) < 0) {
        errbuf_set_errno(err, "%s/%s", sp->root, customer);
        return -1;
    }
    return 0;
}

/* id_valid - a spool id is a plain file name. */
static bool
id_valid(const char *id)
{
    size_t len = strlen(id);

    return len > 0 && len < SPOOL_ID_MAX && id[0] != '.' && strchr(id, '/') == NULL;
}

static int
check_id(const char *id, struct errbuf *err)
{
    if (id_valid(id))
        return 0;
    errbuf_set(err, "bad spool id '%s'", id);
    errno = EINVAL;
    return -1;
}

/* make_name - "<sec>.M<usec>P<pid>Q<seq>.<host>". */
static int
make_name(const struct spool *sp, char *buf, size_t size)
{
    struct timespec ts;
    unsigned long seq = atomic_fetch_add(&spool_seq, 1);

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return -1;
    if (str_printf(buf, size, "%lld.M%06ldP%ldQ%lu.%s", (long long)ts.tv_sec,
                   ts.tv_nsec / 1000, (long)getpid(), seq, sp->host) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* --- directories --- */

/* open_dir - open dir (relative to at) refusing symbolic links. */
static int
open_dir(int at, const char *dir)
{
    return openat(at, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* open_failed - the error text for a failed open of name (relative to at),
 * shown as path: a symbolic link where none belongs is named as such. */
static void
open_failed(struct errbuf *err, int at, const char *name, const char *fmt, ...)
{
    char path[SPOOL_PATH_MAX];
    int saved = errno;
    struct stat st;
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(path, sizeof(path), fmt, ap);    /* only for the message */
    va_end(ap);
    if ((saved == ELOOP || saved == ENOTDIR) &&
        fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        errbuf_set(err, "open %s: is a symbolic link (refused)", path);
    else {
        errno = saved;
        errbuf_set_errno(err, "open %s", path);
    }
    errno = saved;
}

/* owner_like_parent - a directory root just made inside a customer's
 * directory (hold/ by autoturnctl hold, say) gets the owner of that
 * directory, so that the daemons, which run as the spool's owner, can
 * still use it. (at is AT_FDCWD only for the customer directory itself.) */
static int
owner_like_parent(int at, const char *dir)
{
    struct stat st;
    int saved;

    if (geteuid() != 0 || at == AT_FDCWD)
        return 0;
    if (fstat(at, &st) == 0 &&
        fchownat(at, dir, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    saved = errno;
    (void)unlinkat(at, dir, AT_REMOVEDIR);
    errno = saved;
    return -1;
}

/* open_dir_create - open_dir, creating it 0700 when missing. */
static int
open_dir_create(int at, const char *dir)
{
    int fd = open_dir(at, dir);

    if (fd >= 0 || errno != ENOENT)
        return fd;
    if (mkdirat(at, dir, SPOOL_DIR_MODE) < 0) {
        if (errno != EEXIST)
            return -1;
    } else if (owner_like_parent(at, dir) < 0) {
        return -1;
    }
    return open_dir(at, dir);
}

/* open_customer - the customer directory; with create, also its
 * subdirectories. -1 with err naming the path. */
static int
open_customer(const struct spool *sp, const char *customer, bool create, char *cdir,
              struct errbuf *err)
{
    static const char *const subdirs[] = { "tmp", "new", "cur", "bad" };
    size_t i;
    int cfd, fd;

    if (cdir_path(sp, customer, cdir, SPOOL_PATH_MAX, err) < 0)
        return -1;
    cfd = create ? open_dir_create(AT_FDCWD, cdir) : open_dir(AT_FDCWD, cdir);
    if (cfd < 0) {
        open_failed(err, AT_FDCWD, cdir, "%s", cdir);
        return -1;
    }
    for (i = 0; create && i < ARRAY_LEN(subdirs); i++) {
        if ((fd = open_dir_create(cfd, subdirs[i])) < 0) {
            open_failed(err, cfd, subdirs[i], "%s/%s", cdir, subdirs[i]);
            close(cfd);
            return -1;
        }
        close(fd);
    }
    return cfd;
}

/* sync_dir - fsync a directory descriptor, error text with its path. */
static int
sync_dir(int fd, const char *cdir, const char *sub, struct errbuf *err)
{
    if (fsync(fd) == 0)
        return 0;
    errbuf_set_errno(err, "fsync %s/%s", cdir, sub);
    return -1;
}

/* --- writing --- */

/* writer_new - allocate, create the directories and the temp file. */
static int
writer_new(struct spool *sp, const char *customer, struct spool_writer **w_r, struct errbuf *err)
{
    struct spool_writer *w;

    if ((w = x_calloc(1, sizeof(*w))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    w->sp = sp;
    w->tmpfd = w->fd = -1;
    *w_r = w;
    if ((w->cfd = open_customer(sp, customer, true, w->cdir, err)) < 0)
        return -1;
    if ((w->tmpfd = open_dir(w->cfd, "tmp")) < 0) {
        open_failed(err, w->cfd, "tmp", "%s/tmp", w->cdir);
        return -1;
    }
    if (make_name(sp, w->name, sizeof(w->name)) < 0) {
        errbuf_set_errno(err, "spool file name");
        w->name[0] = '\0';
        return -1;
    }
    w->fd = openat(w->tmpfd, w->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   SPOOL_FILE_MODE);
    if (w->fd < 0) {
        errbuf_set_errno(err, "create %s/tmp/%s", w->cdir, w->name);
        w->name[0] = '\0';    /* not ours: never unlink it */
        return -1;
    }
    return 0;
}

/* writer_flush - write out the buffer. */
static int
writer_flush(struct spool_writer *w, struct errbuf *err)
{
    if (w->len > 0 && fd_write_all(w->fd, w->buf, w->len) < 0) {
        w->failed = true;
        errbuf_set_errno(err, "write %s/tmp/%s", w->cdir, w->name);
        return -1;
    }
    w->len = 0;
    return 0;
}

int
spool_writer_open(struct spool *sp, const struct envelope *env, struct spool_writer **w_r,
                  struct errbuf *err)
{
    struct spool_writer *w = NULL;
    char *hdr = NULL;
    size_t len = 0;
    int rc = -1;

    *w_r = NULL;
    if (envelope_format(env, &hdr, &len, err) < 0)
        goto out;
    if (writer_new(sp, env->customer, &w, err) < 0 ||
        spool_writer_write(w, hdr, len, err) < 0)
        goto out;
    *w_r = w;
    w = NULL;
    rc = 0;
out:
    spool_writer_abort(w);
    x_free(hdr);
    return rc;
}

int
spool_writer_write(struct spool_writer *w, const void *buf, size_t len, struct errbuf *err)
{
    const char *p = buf;
    size_t n;

    if (w->failed) {
        errbuf_set(err, "write %s/tmp/%s: an earlier write failed", w->cdir, w->name);
        return -1;
    }
    while (len > 0) {
        if (w->len == 0 && len >= sizeof(w->buf)) {
            if (fd_write_all(w->fd, p, len) == 0)
                return 0;
            w->failed = true;
            errbuf_set_errno(err, "write %s/tmp/%s", w->cdir, w->name);
            return -1;
        }
        n = sizeof(w->buf) - w->len < len ? sizeof(w->buf) - w->len : len;
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        p += n;
        len -= n;
        if (w->len == sizeof(w->buf) && writer_flush(w, err) < 0)
            return -1;
    }
    return 0;
}

/* writer_finish - flush, fsync and close the temp file. */
static int
writer_finish(struct spool_writer *w, struct errbuf *err)
{
    int fd = w->fd;

    if (w->failed) {
        errbuf_set(err, "write %s/tmp/%s: an earlier write failed", w->cdir, w->name);
        return -1;
    }
    if (writer_flush(w, err) < 0)
        return -1;
    if (fsync(fd) < 0) {
        errbuf_set_errno(err, "fsync %s/tmp/%s", w->cdir, w->name);
        return -1;
    }
    w->fd = -1;
    if (close(fd) < 0) {
        errbuf_set_errno(err, "close %s/tmp/%s", w->cdir, w->name);
        return -1;
    }
    return 0;
}

/* writer_free - close what is open, unlink the temp name if still there. */
static void
writer_free(struct spool_writer *w)
{
    int saved = errno;

    if (w->fd >= 0)
        close(w->fd);
    if (w->tmpfd >= 0 && w->name[0] != '\0')
        (void)unlinkat(w->tmpfd, w->name, 0);
    if (w->tmpfd >= 0)
        close(w->tmpfd);
    if (w->cfd >= 0)
        close(w->cfd);
    x_free(w);
    errno = saved;
}

/* writer_link - link the finished file into new/ and make that durable. */
static int
writer_link(struct spool_writer *w, struct errbuf *err)
{
    int newfd = open_dir(w->cfd, "new"), rc = -1;

    if (newfd < 0) {
        open_failed(err, w->cfd, "new", "%s/new", w->cdir);
        return -1;
    }
    if (linkat(w->tmpfd, w->name, newfd, w->name, 0) < 0) {
        errbuf_set_errno(err, "link %s/tmp/%s into new/", w->cdir, w->name);
        goto out;
    }
    if (sync_dir(newfd, w->cdir, "new", err) < 0) {
        (void)unlinkat(newfd, w->name, 0);    /* not durable: leave nothing */
        goto out;
    }
    rc = 0;
out:
    close(newfd);
    return rc;
}

int
spool_writer_commit(struct spool_writer *w, char id_r[SPOOL_ID_MAX], struct errbuf *err)
{
    int rc = -1;

    id_r[0] = '\0';
    if (writer_finish(w, err) < 0 || writer_link(w, err) < 0)
        goto out;
    (void)str_copy(id_r, SPOOL_ID_MAX, w->name);
    rc = 0;
out:
    writer_free(w);    /* unlinks the tmp/ name in all cases */
    return rc;
}

void
spool_writer_abort(struct spool_writer *w)
{
    if (w != NULL)
        writer_free(w);
}

/* --- listing --- */

struct name_key {
    bool parsed;
    unsigned long long sec, usec, seq;
};

/* parse_num - decimal digits at *p; advances. */
static bool
parse_num(const char **p, unsigned long long *v)
{
    const char *s = *p;

    *v = 0;
    while (**p >= '0' && **p <= '9' && *p - s < 19)
        *v = *v * 10 + (unsigned long long)(*(*p)++ - '0');
    return *p > s && !(**p >= '0' && **p <= '9');
}

/* name_parse - the (sec, usec, seq) of "<sec>.M<usec>P<pid>Q<seq>.<host>". */
static struct name_key
name_parse(const char *name)
{
    struct name_key k = { false, 0, 0, 0 };
    unsigned long long pid;
    const char *p = name;

    if (parse_num(&p, &k.sec) && *p++ == '.' && *p++ == 'M' && parse_num(&p, &k.usec) &&
        *p++ == 'P' && parse_num(&p, &pid) && *p++ == 'Q' && parse_num(&p, &k.seq) &&
        *p == '.')
        k.parsed = true;
    return k;
}

static int
cmp_ull(unsigned long long a, unsigned long long b)
{
    return a < b ? -1 : a > b;
}

static int
entry_cmp(const void *a, const void *b)
{
    const struct spool_entry *x = a, *y = b;
    struct name_key kx = name_parse(x->id), ky = name_parse(y->id);
    int c;

    if (kx.parsed != ky.parsed)
        return kx.parsed ? -1 : 1;
    if (kx.parsed && ((c = cmp_ull(kx.sec, ky.sec)) != 0 || (c = cmp_ull(kx.usec, ky.usec)) != 0 ||
                      (c = cmp_ull(kx.seq, ky.seq)) != 0))
        return c;
    return strcmp(x->id, y->id);
}

struct entry_vec {
    struct spool_entry *v;
    size_t n, alloc;
};

/* vec_add - one regular file of dirfd (the subdirectory sub) into the vector. */
static int
vec_add(struct entry_vec *ev, int dirfd, const char *name, const char *sub)
{
    struct spool_entry *e;
    struct name_key k;
    struct stat st;

    if (name[0] == '.' || strlen(name) >= SPOOL_ID_MAX)
        return 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;     /* gone meanwhile: not an error */
    if (!S_ISREG(st.st_mode))
        return 0;
    if (ev->n == ev->alloc) {
        size_t n = ev->alloc ? ev->alloc * 2 : 64;

        if ((e = x_reallocarray(ev->v, n, sizeof(*e))) == NULL)
            return -1;
        ev->v = e;
        ev->alloc = n;
    }
    e = &ev->v[ev->n++];
    (void)str_copy(e->id, sizeof(e->id), name);
    e->size = (uint64_t)st.st_size;
    k = name_parse(name);
    e->arrival = k.parsed ? (time_t)k.sec : st.st_mtime;
    e->in_cur = strcmp(sub, "cur") == 0;
    e->on_hold = strcmp(sub, SPOOL_HOLD_DIR) == 0;
    return 0;
}

/* list_sub - all entries of <cdir>/<sub>; a missing sub is empty. */
static int
list_sub(int cfd, const char *cdir, const char *sub, struct entry_vec *ev, struct errbuf *err)
{
    struct dirent *de;
    DIR *d;
    int fd = open_dir(cfd, sub), rc = 0;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        open_failed(err, cfd, sub, "%s/%s", cdir, sub);
        return -1;
    }
    if ((d = fdopendir(fd)) == NULL) {
        errbuf_set_errno(err, "open %s/%s", cdir, sub);
        close(fd);
        return -1;
    }
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if ((rc = vec_add(ev, fd, de->d_name, sub)) < 0)
            errbuf_set_errno(err, "%s/%s/%s", cdir, sub, de->d_name);
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        errbuf_set_errno(err, "read %s/%s", cdir, sub);
        rc = -1;
    }
    closedir(d);
    return rc;
}

/* list_customer - new/ and cur/, with_hold also hold/, oldest first. */
static int
list_customer(struct spool *sp, const char *customer, bool with_hold, struct spool_entry **v_r,
              size_t *n_r, struct errbuf *err)
{
    struct entry_vec ev = { NULL, 0, 0 };
    char cdir[SPOOL_PATH_MAX];
    int cfd, rc = -1;

    *v_r = NULL;
    *n_r = 0;
    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return errno == ENOENT ? 0 : -1;
    if (list_sub(cfd, cdir, "new", &ev, err) < 0 || list_sub(cfd, cdir, "cur", &ev, err) < 0 ||
        (with_hold && list_sub(cfd, cdir, SPOOL_HOLD_DIR, &ev, err) < 0))
        goto out;
    if (ev.n > 1)
        qsort(ev.v, ev.n, sizeof(*ev.v), entry_cmp);
    *v_r = ev.v;
    *n_r = ev.n;
    ev.v = NULL;
    rc = 0;
out:
    x_free(ev.v);
    close(cfd);
    return rc;
}

int
spool_list(struct spool *sp, const char *customer, struct spool_entry **v_r, size_t *n_r,
           struct errbuf *err)
{
    return list_customer(sp, customer, false, v_r, n_r, err);
}

int
spool_list_all(struct spool *sp, const char *customer, struct spool_entry **v_r, size_t *n_r,
               struct errbuf *err)
{
    return list_customer(sp, customer, true, v_r, n_r, err);
}

int
spool_stats(struct spool *sp, const char *customer, struct spool_stats *st, struct errbuf *err)
{
    struct spool_entry *v;
    size_t n, i;

    memset(st, 0, sizeof(*st));
    if (spool_list_all(sp, customer, &v, &n, err) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        st->messages++;
        st->on_hold += v[i].on_hold;
        st->bytes += v[i].size;
        if (st->oldest == 0 || v[i].arrival < st->oldest)
            st->oldest = v[i].arrival;
    }
    x_free(v);
    return 0;
}

void
spool_names_free(char **names, size_t n)
{
    size_t i;

    for (i = 0; names != NULL && i < n; i++)
        x_free(names[i]);
    x_free(names);
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* names_add - append a copy of name if it is a customer directory. */
static int
names_add(int rootfd, const char *name, char ***v, size_t *n, size_t *alloc)
{
    const char *why;
    struct stat st;
    char **nv;

    if (!customer_name_valid(name, &why))
        return 0;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (*n == *alloc) {
        if ((nv = x_reallocarray(*v, *alloc ? *alloc * 2 : 16, sizeof(*nv))) == NULL)
            return -1;
        *v = nv;
        *alloc = *alloc ? *alloc * 2 : 16;
    }
    if (((*v)[*n] = x_strdup(name)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

int
spool_customers(struct spool *sp, char ***names_r, size_t *n_r, struct errbuf *err)
{
    char **v = NULL;
    size_t n = 0, alloc = 0;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    *names_r = NULL;
    *n_r = 0;
    if ((d = opendir(sp->root)) == NULL) {
        errbuf_set_errno(err, "open %s", sp->root);
        return -1;
    }
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if ((rc = names_add(dirfd(d), de->d_name, &v, &n, &alloc)) < 0)
            errbuf_set_errno(err, "%s/%s", sp->root, de->d_name);
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        errbuf_set_errno(err, "read %s", sp->root);
        rc = -1;
    }
    closedir(d);
    if (rc < 0) {
        spool_names_free(v, n);
        return -1;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), name_cmp);
    *names_r = v;
    *n_r = n;
    return 0;
}

/* --- reading --- */

/* open_msg_file - find id in new/ then cur/ (with_hold: then hold/);
 * *subfd_r is that directory. */
static int
open_msg_file(int cfd, const char *cdir, const char *id, int flags, bool with_hold,
              int *subfd_r, const char **sub_r, struct errbuf *err)
{
    static const char *const subs[] = { "new", "cur", SPOOL_HOLD_DIR };
    size_t i;
    int dfd, fd;

    for (i = 0; i < ARRAY_LEN(subs) - !with_hold; i++) {
        if ((dfd = open_dir(cfd, subs[i])) < 0) {
            if (errno == ENOENT)
                continue;
            open_failed(err, cfd, subs[i], "%s/%s", cdir, subs[i]);
            return -1;
        }
        if ((fd = openat(dfd, id, flags | O_NOFOLLOW | O_CLOEXEC)) >= 0 ||
            errno != ENOENT) {
            if (fd < 0)
                open_failed(err, dfd, id, "%s/%s/%s", cdir, subs[i], id);
            *subfd_r = dfd;
            *sub_r = subs[i];
            return fd;
        }
        close(dfd);
    }
    errbuf_set(err, "%s: no such spool file %s in new/%s", cdir, id,
               with_hold ? ", cur/ or hold/" : " or cur/");
    errno = ENOENT;
    return -1;
}

/* read_envelope - parse the envelope line by line from fd with a bounded
 * buffer. 0 ok (*hdr_r = its length), -1 I/O error, -2 malformed (err). */
static int
read_envelope(int fd, const char *path, struct envelope *env, uint64_t *hdr_r,
              struct errbuf *err)
{
    char *buf = malloc(SPOOL_RBUF_SIZE), *lf;
    size_t len = 0, linelen;
    uint64_t off = 0;
    ssize_t n;
    int rc = -1, prc;

    if (buf == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    for (;;) {
        if ((lf = memchr(buf, '\n', len < ENVELOPE_LINE_MAX ? len : ENVELOPE_LINE_MAX)) != NULL ||
            len >= ENVELOPE_LINE_MAX) {
            linelen = lf ? (size_t)(lf - buf) + 1 : ENVELOPE_LINE_MAX;
            prc = envelope_parse_line(env, buf, linelen, err);
            off += linelen;
            if (prc != 0) {
                rc = prc < 0 ? SPOOL_MALFORMED : 0;
                break;
            }
            memmove(buf, buf + linelen, len - linelen);
            len -= linelen;
            continue;
        }
        n = read(fd, buf + len, SPOOL_RBUF_SIZE - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errbuf_set_errno(err, "read %s", path);
            break;
        }
        if (n == 0) {
            errbuf_set(err, "envelope not terminated");
            rc = SPOOL_MALFORMED;
            break;
        }
        len += (size_t)n;
    }
    *hdr_r = off;
    x_free(buf);
    return rc;
}

/* move_bad - set a malformed file aside in bad/ and log it once. */
static int
move_bad(int cfd, int subfd, const char *cdir, const char *customer, const char *sub,
         const char *id, const char *reason, struct errbuf *err)
{
    int badfd = open_dir_create(cfd, "bad"), rc = -1;

    if (badfd < 0) {
        errbuf_set_errno(err, "malformed spool file %s/%s/%s (%s); open %s/bad", cdir, sub,
                         id, reason, cdir);
        return -1;
    }
    if (renameat(subfd, id, badfd, id) < 0) {
        errbuf_set_errno(err, "malformed spool file %s/%s/%s (%s); rename into %s/bad",
                         cdir, sub, id, reason, cdir);
        goto out;
    }
    if (fsync(badfd) < 0 || fsync(subfd) < 0)
        log_warn("%s: id=%s: fsync after moving to %s/bad", customer, id, cdir);
    log_warnx("%s: id=%s: malformed spool file moved to %s/bad: %s", customer, id, cdir,
              reason);
    errbuf_set(err, "malformed spool file %s/%s/%s moved to bad/: %s", cdir, sub, id, reason);
    rc = SPOOL_MALFORMED;
out:
    close(badfd);
    return rc;
}

/* msg_load - open the file and parse its envelope into m. peek: look in
 * hold/ too, and leave a malformed file where it is. */
static int
msg_load(struct spool_msg *m, int cfd, const char *cdir, const char *customer, const char *id,
         bool peek, struct errbuf *err)
{
    const char *sub = NULL;
    struct errbuf why;
    struct stat st;
    int subfd = -1, rc = -1;

    if ((m->fd = open_msg_file(cfd, cdir, id, O_RDONLY, peek, &subfd, &sub, err)) < 0)
        goto out;
    (void)str_printf(m->path, sizeof(m->path), "%s/%s/%s", cdir, sub, id);
    if (fstat(m->fd, &st) < 0) {
        errbuf_set_errno(err, "stat %s", m->path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, "%s: not a regular file", m->path);
        goto out;
    }
    rc = read_envelope(m->fd, m->path, &m->env, &m->hdr_len, &why);
    if (rc == 0 && strcmp(m->env.customer, customer) != 0) {
        errbuf_set(&why, "envelope customer '%s' does not match the spool directory",
                   m->env.customer);
        rc = SPOOL_MALFORMED;
    }
    if (rc == SPOOL_MALFORMED && peek)
        errbuf_set(err, "malformed spool file %s: %s", m->path, why.msg);
    else if (rc == SPOOL_MALFORMED)
        rc = move_bad(cfd, subfd, cdir, customer, sub, id, why.msg, err);
    else if (rc < 0)
        errbuf_set(err, "%s", why.msg);
    else if (lseek(m->fd, (off_t)m->hdr_len, SEEK_SET) < 0) {
        errbuf_set_errno(err, "seek %s", m->path);
        rc = -1;
    }
    m->body_size = (uint64_t)st.st_size - m->hdr_len;
out:
    if (subfd >= 0)
        close(subfd);
    return rc;
}

/* msg_open - spool_msg_open and spool_msg_peek */
static int
msg_open(struct spool *sp, const char *customer, const char *id, bool peek,
         struct spool_msg **m_r, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    struct spool_msg *m;
    int cfd = -1, rc = -1;

    *m_r = NULL;
    if (check_id(id, err) < 0)
        return -1;
    if ((m = x_calloc(1, sizeof(*m))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    m->fd = -1;
    envelope_init(&m->env);
    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        goto out;
    if ((rc = msg_load(m, cfd, cdir, customer, id, peek, err)) == 0) {
        *m_r = m;
        m = NULL;
    }
out:
    if (cfd >= 0)
        close(cfd);
    spool_msg_close(m);
    return rc;
}

int
spool_msg_open(struct spool *sp, const char *customer, const char *id, struct spool_msg **m_r,
               struct errbuf *err)
{
    return msg_open(sp, customer, id, false, m_r, err);
}

int
spool_msg_peek(struct spool *sp, const char *customer, const char *id, struct spool_msg **m_r,
               struct errbuf *err)
{
    return msg_open(sp, customer, id, true, m_r, err);
}

const char *
spool_msg_path(const struct spool_msg *m)
{
    return m->path;
}

const struct envelope *
spool_msg_envelope(const struct spool_msg *m)
{
    return &m->env;
}

uint64_t
spool_msg_body_size(const struct spool_msg *m)
{
    return m->body_size;
}

ssize_t
spool_msg_read(struct spool_msg *m, void *buf, size_t len, struct errbuf *err)
{
    ssize_t n;

    do
        n = read(m->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        errbuf_set_errno(err, "read %s", m->path);
    return n;
}

int
spool_msg_rewind(struct spool_msg *m, struct errbuf *err)
{
    if (lseek(m->fd, (off_t)m->hdr_len, SEEK_SET) < 0) {
        errbuf_set_errno(err, "seek %s", m->path);
        return -1;
    }
    return 0;
}

int
spool_msg_tail(struct spool_msg *m, char last[2], size_t *n_r, struct errbuf *err)
{
    size_t k = m->body_size < 2 ? (size_t)m->body_size : 2;
    ssize_t n;

    *n_r = 0;
    if (k == 0)
        return 0;
    do
        n = pread(m->fd, last, k, (off_t)(m->hdr_len + m->body_size - k));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)k) {
        if (n < 0)
            errbuf_set_errno(err, "read %s", m->path);
        else
            errbuf_set(err, "read %s: file shorter than its body size", m->path);
        return -1;
    }
    *n_r = k;
    return 0;
}

void
spool_msg_close(struct spool_msg *m)
{
    if (m == NULL)
        return;
    if (m->fd >= 0)
        close(m->fd);
    envelope_clear(&m->env);
    x_free(m);
}

/* --- changing --- */

/* remove_msg - unlink a message from new/ or cur/; with sync, fsync that
 * directory too. */
static int
remove_msg(struct spool *sp, const char *customer, const char *id, bool sync,
           struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    const char *sub = NULL;
    int cfd, subfd = -1, fd, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return -1;
    if ((fd = open_msg_file(cfd, cdir, id, O_RDONLY, true, &subfd, &sub, err)) < 0)
        goto out;
    close(fd);
    if (unlinkat(subfd, id, 0) < 0) {
        errbuf_set_errno(err, "unlink %s/%s/%s", cdir, sub, id);
        goto out;
    }
    rc = sync ? sync_dir(subfd, cdir, sub, err) : 0;
out:
    if (subfd >= 0)
        close(subfd);
    close(cfd);
    return rc;
}

int
spool_delete(struct spool *sp, const char *customer, const char *id, struct errbuf *err)
{
    return remove_msg(sp, customer, id, true, err);
}

int
spool_delete_delivered(struct spool *sp, const char *customer, const char *id,
                       struct errbuf *err)
{
    return remove_msg(sp, customer, id, false, err);
}

int
spool_sync(struct spool *sp, const char *customer, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    static const char *const subs[] = {"new", "cur"};
    int cfd, subfd, rc = 0;
    size_t i;

    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return -1;
    for (i = 0; i < ARRAY_LEN(subs) && rc == 0; i++) {
        if ((subfd = open_dir(cfd, subs[i])) < 0) {
            if (errno == ENOENT)
                continue;
            open_failed(err, cfd, subs[i], "%s/%s", cdir, subs[i]);
            rc = -1;
            break;
        }
        rc = sync_dir(subfd, cdir, subs[i], err);
        close(subfd);
    }
    close(cfd);
    return rc;
}

/* copy_body - the rest of m into w, with a bounded buffer. */
static int
copy_body(struct spool_msg *m, struct spool_writer *w, struct errbuf *err)
{
    char *buf = malloc(SPOOL_RBUF_SIZE);
    ssize_t n;
    int rc = -1;

    if (buf == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    while ((n = spool_msg_read(m, buf, SPOOL_RBUF_SIZE, err)) > 0)
        if (spool_writer_write(w, buf, (size_t)n, err) < 0)
            goto out;
    rc = n < 0 ? -1 : 0;
out:
    x_free(buf);
    return rc;
}

/* writer_replace - finish w and rename it over <cdir>/<sub>/<id>. */
static int
writer_replace(struct spool_writer *w, const char *sub, const char *id, struct errbuf *err)
{
    int dfd = -1, rc = -1;

    if (writer_finish(w, err) < 0)
        goto out;
    if ((dfd = open_dir(w->cfd, sub)) < 0) {
        open_failed(err, w->cfd, sub, "%s/%s", w->cdir, sub);
        goto out;
    }
    if (renameat(w->tmpfd, w->name, dfd, id) < 0) {
        errbuf_set_errno(err, "rename %s/tmp/%s to %s/%s", w->cdir, w->name, sub, id);
        goto out;
    }
    w->name[0] = '\0';    /* renamed: nothing left to unlink */
    rc = sync_dir(dfd, w->cdir, sub, err);
out:
    if (dfd >= 0)
        close(dfd);
    writer_free(w);
    return rc;
}

int
spool_rewrite_envelope(struct spool *sp, const char *customer, const char *id,
                       const struct envelope *env, struct errbuf *err)
{
    struct spool_writer *w = NULL;
    struct spool_msg *m = NULL;
    int rc;

    if (strcmp(env->customer, customer) != 0) {
        errbuf_set(err, "rewrite: envelope customer '%s' differs from '%s'", env->customer,
                   customer);
        return -1;
    }
    if ((rc = spool_msg_open(sp, customer, id, &m, err)) != 0)
        return rc;
    rc = -1;
    if (spool_writer_open(sp, env, &w, err) < 0)
        goto out;
    if (copy_body(m, w, err) < 0) {
        spool_writer_abort(w);
        goto out;
    }
    rc = writer_replace(w, strstr(m->path, "/cur/") ? "cur" : "new", id, err);
out:
    spool_msg_close(m);
    return rc;
}

/* --- locking --- */

int
spool_lock(struct spool *sp, const char *customer, bool wait, int *fd_r, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    int cfd, fd, rc;

    *fd_r = -1;
    if ((cfd = open_customer(sp, customer, true, cdir, err)) < 0)
        return -1;
    fd = openat(cfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                SPOOL_FILE_MODE);
    if (fd < 0)
        open_failed(err, cfd, SPOOL_LOCK_NAME, "%s/%s", cdir, SPOOL_LOCK_NAME);
    close(cfd);
    if (fd < 0)
        return -1;
    do
        rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        *fd_r = fd;
        return 1;
    }
    if (errno != EWOULDBLOCK)
        errbuf_set_errno(err, "lock %s/%s", cdir, SPOOL_LOCK_NAME);
    rc = errno == EWOULDBLOCK ? 0 : -1;
    close(fd);
    return rc;
}

void
spool_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* --- held by the administrator: hold/, release, find --- */

/* move_between - rename id from <cdir>/<from> to <cdir>/<to> (never over
 * an existing file; <to> is created when missing), then fsync both
 * directories. */
static int
move_between(int cfd, const char *cdir, int fromfd, const char *from, const char *to,
             const char *id, struct errbuf *err)
{
    int tofd = open_dir_create(cfd, to), rc = -1;

    if (tofd < 0) {
        open_failed(err, cfd, to, "%s/%s", cdir, to);
        return -1;
    }
    if (renameat2(fromfd, id, tofd, id, RENAME_NOREPLACE) < 0) {
        errbuf_set_errno(err, "rename %s/%s/%s into %s/", cdir, from, id, to);
        goto out;
    }
    if (sync_dir(tofd, cdir, to, err) < 0 || sync_dir(fromfd, cdir, from, err) < 0)
        goto out;
    rc = 0;
out:
    close(tofd);
    return rc;
}

/* file_in - true if <cfd>/<sub>/<id> is a regular file */
static bool
file_in(int cfd, const char *sub, const char *id)
{
    struct stat st;
    bool found;
    int dfd;

    if ((dfd = open_dir(cfd, sub)) < 0)
        return false;
    found = fstatat(dfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    close(dfd);
    return found;
}

int
spool_hold(struct spool *sp, const char *customer, const char *id, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    const char *sub = NULL;
    int cfd, subfd = -1, fd, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return -1;
    if ((fd = open_msg_file(cfd, cdir, id, O_RDONLY, false, &subfd, &sub, err)) < 0) {
        if (errno == ENOENT && file_in(cfd, SPOOL_HOLD_DIR, id)) {
            errbuf_set(err, "%s: %s is already on hold", cdir, id);
            errno = EALREADY;
        }
        goto out;
    }
    close(fd);
    rc = move_between(cfd, cdir, subfd, sub, SPOOL_HOLD_DIR, id, err);
out:
    if (subfd >= 0)
        close(subfd);
    close(cfd);
    return rc;
}

int
spool_release(struct spool *sp, const char *customer, const char *id, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    int cfd, holdfd = -1, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return -1;
    if (!file_in(cfd, SPOOL_HOLD_DIR, id)) {
        if (file_in(cfd, "new", id) || file_in(cfd, "cur", id)) {
            errbuf_set(err, "%s: %s is not on hold", cdir, id);
            errno = EALREADY;
        } else {
            errbuf_set(err, "%s: no such spool file %s in hold/", cdir, id);
            errno = ENOENT;
        }
        goto out;
    }
    if ((holdfd = open_dir(cfd, SPOOL_HOLD_DIR)) < 0) {
        open_failed(err, cfd, SPOOL_HOLD_DIR, "%s/%s", cdir, SPOOL_HOLD_DIR);
        goto out;
    }
    /* a name with maildir flags came from cur/ */
    rc = move_between(cfd, cdir, holdfd, SPOOL_HOLD_DIR, strstr(id, ":2,") ? "cur" : "new", id,
                      err);
out:
    if (holdfd >= 0)
        close(holdfd);
    close(cfd);
    return rc;
}

/* find_in - is id a message of customer (new/, cur/ or hold/)? */
static int
find_in(struct spool *sp, const char *customer, const char *id, struct errbuf *err)
{
    static const char *const subs[] = { "new", "cur", SPOOL_HOLD_DIR };
    char cdir[SPOOL_PATH_MAX];
    size_t i;
    int cfd;
    bool found = false;

    if ((cfd = open_customer(sp, customer, false, cdir, err)) < 0)
        return errno == ENOENT ? 0 : -1;
    for (i = 0; i < ARRAY_LEN(subs) && !found; i++)
        found = file_in(cfd, subs[i], id);
    close(cfd);
    return found;
}

int
spool_find(struct spool *sp, const char *id, char *customer_r, size_t size, struct errbuf *err)
{
    char **names = NULL;
    size_t n = 0, i;
    int rc = 0;

    if (check_id(id, err) < 0)
        return -1;
    if (spool_customers(sp, &names, &n, err) < 0)
        return errno == ENOENT ? 0 : -1;
    for (i = 0; i < n && rc == 0; i++) {
        if ((rc = find_in(sp, names[i], id, err)) == 1 &&
            str_copy(customer_r, size, names[i]) < 0) {
            errbuf_set(err, "customer name too long");
            rc = -1;
        }
    }
    spool_names_free(names, n);
    return rc;
}
