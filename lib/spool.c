/* SPDX-License-Identifier: ISC */
/*
 * spool.c - the per-customer maildir spool: <root>/<customer>/{tmp,new,cur,bad},
 * <root>/<customer>/.lock and <root>/<customer>/.usage. Owns the file-name
 * scheme (sizes in the names, ",S=<size>"), the durable write path (tmp/,
 * fsync, link into new/, fsync new/ shared by concurrent writers, unlink
 * tmp/), the usage record that keeps each customer's count, bytes and
 * oldest arrival in O(1) (lib/usage.c is its text form), listing in
 * arrival order, the streaming reader, delete, envelope rewrite and the
 * per-customer flush lock.
 *
 * Process-wide state: the sequence counter that makes names unique
 * between threads, and in each struct spool a small cache of open
 * customer directories (struct cust: descriptors of the customer
 * directory, tmp/, new/ and cur/, the usage record, and the group commit
 * of new/'s fsync), so that a message costs no directory opens. A cached
 * directory that was removed or replaced is noticed (a failed create or
 * link, or at most a second later by comparing the path's inode) and
 * opened again; a forked child never uses its parent's cache.
 *
 * The usage record is changed only under its lock (flock on .usage, plus
 * a mutex for this process's threads, since flock is per open file), in
 * the same critical section as the link or unlink it accounts for, with
 * "state dirty" written first: a process that dies in between leaves the
 * record dirty, and the next user counts the spool again. A record from
 * another boot is counted again too (its last writes may have been lost
 * with the page cache). Counting never moves or deletes a message.
 *
 * SECURITY: customer names are validated (customer_name_valid) before they
 * become paths; every directory and file is opened relative to a directory
 * descriptor with O_NOFOLLOW, so a symbolic link planted in the spool is
 * refused. Spool ids from callers must be plain file names. File contents
 * are parsed by envelope.c with bounded lines, the usage record by
 * usage.c (fixed size, checksum), sizes in names by name_parse (at most
 * 19 digits); a file whose envelope does not parse is moved to bad/ and
 * reported once (the one place this library logs: it is where that
 * decision is taken).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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
#include "usage.h"
#include "util.h"

#define SPOOL_PATH_MAX   PATH_MAX
#define SPOOL_HOST_MAX   64          /* bytes of the (escaped) host part of a name */
#define SPOOL_SIZE_ROOM  23          /* ",S=" and 20 digits */
#define SPOOL_FLAGS_ROOM 10          /* ":2,<flags>" a mail tool may add in cur/ */
#define SPOOL_WBUF_SIZE  65536       /* writer buffer */
#define SPOOL_RBUF_SIZE  65536       /* reader buffer for the envelope, copy buffer */
#define SPOOL_DIR_MODE   0700
#define SPOOL_FILE_MODE  0600
#define SPOOL_LOCK_NAME  ".lock"
#define SPOOL_CACHE_MAX  64          /* customer directories kept open per struct spool */
#define SPOOL_RECHECK_NS 1000000000LL  /* a cached directory's path is re-checked after 1 s */
#define SPOOL_RECOUNT_SECS 3600      /* a usage record older than this is counted again */

/* one customer's spool, open: cached in struct spool or private to a call */
struct cust {
    struct cust *next;
    char name[CUSTOMER_NAME_MAX + 1];
    char cdir[SPOOL_PATH_MAX];       /* <root>/<customer> */
    int cfd, tmpfd, newfd, curfd;    /* -1: missing (opened without create) */
    atomic_int holdfd;               /* hold/, opened on first use (cust_holdfd) */
    dev_t dev;                       /* of the customer directory */
    ino_t ino;
    unsigned refs;                   /* under spool.cache_mu */
    bool cached;
    atomic_bool stale;               /* not to be handed out again */
    _Atomic long long checked_ns;    /* when the path was last compared */
    /* the usage record: ufd, under ulock (and flock for other processes) */
    pthread_mutex_t ulock;
    int ufd;
    /* group commit of fsync(new/): every link takes a ticket; one fsync
     * covers every ticket taken before it started */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t ticket, synced;
    bool syncing, sync_broken;
    int sync_errno;
};

struct spool {
    char root[SPOOL_PATH_MAX];
    char host[SPOOL_HOST_MAX + 1];
    pthread_mutex_t cache_mu;
    struct cust *cache;              /* most recently used first */
    size_t ncache;
    unsigned fork_gen;               /* fork generation the cache belongs to */
};

struct spool_writer {
    struct spool *sp;
    struct cust *c;                  /* referenced */
    char name[SPOOL_ID_MAX];         /* file name in tmp/ */
    int fd;                          /* the file */
    bool failed;                     /* a write failed: commit must refuse */
    uint64_t total;                  /* bytes written, envelope included */
    time_t sec;                      /* creation time, from the name */
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
static atomic_uint fork_gen;         /* bumped in every forked child */
static atomic_long my_pid;           /* 0: not known (reset in a child) */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
after_fork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
    atomic_store(&my_pid, 0);
}

static void
register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, after_fork_child);
}

static long
self_pid(void)
{
    long pid = atomic_load(&my_pid);

    if (pid == 0) {
        pid = (long)getpid();
        atomic_store(&my_pid, pid);
    }
    return pid;
}

static long long
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- names and paths --- */

/* host_escape - the maildir rule: '/' -> "\057", ':' -> "\072"; and ','
 * -> "\054", which would end the host where ",S=" begins. */
static void
host_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;

    for (; *in != '\0'; in++) {
        const char *rep = *in == '/' ? "\\057" : *in == ':' ? "\\072" : *in == ',' ? "\\054"
                        : NULL;
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

    (void)pthread_once(&atfork_once, register_atfork);
    if ((sp = x_calloc(1, sizeof(*sp))) == NULL)
        return NULL;
    if (str_copy(sp->root, sizeof(sp->root), root) < 0) {
        x_free(sp);
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (pthread_mutex_init(&sp->cache_mu, NULL) != 0) {
        x_free(sp);
        errno = ENOMEM;
        return NULL;
    }
    sp->fork_gen = atomic_load(&fork_gen);
    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        (void)str_copy(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    host_escape(host, sp->host, sizeof(sp->host));
    return sp;
}

static void cust_free(struct cust *c);

void
spool_free(struct spool *sp)
{
    struct cust *c, *next;

    if (sp == NULL)
        return;
    for (c = sp->cache; c != NULL; c = next) {
        next = c->next;
        cust_free(c);
    }
    pthread_mutex_destroy(&sp->cache_mu);
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

/* make_name - "<sec>.M<usec>P<pid>Q<seq>.<host>", the host cut so that the
 * name keeps room for ",S=<size>" and a mail tool's flags. */
static int
make_name(const struct spool *sp, char *buf, size_t size, time_t *sec_r)
{
    struct timespec ts;
    unsigned long seq = atomic_fetch_add(&spool_seq, 1);
    size_t len, room = size - SPOOL_SIZE_ROOM - SPOOL_FLAGS_ROOM;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return -1;
    *sec_r = ts.tv_sec;
    if (str_printf(buf, size, "%lld.M%06ldP%ldQ%lu.", (long long)ts.tv_sec,
                   ts.tv_nsec / 1000, self_pid(), seq) < 0 || (len = strlen(buf)) >= room) {
        errno = ENAMETOOLONG;
        return -1;
    }
    (void)str_copy(buf + len, room - len, sp->host);
    return 0;
}

/* --- name parsing --- */

struct name_key {
    bool parsed;                     /* has the shape of make_name */
    bool sized;                      /* carries ",S=<size>" */
    unsigned long long sec, usec, seq, size;
};

/* parse_num - decimal digits at *p (at most 19); advances. */
static bool
parse_num(const char **p, unsigned long long *v)
{
    const char *s = *p;

    *v = 0;
    while (**p >= '0' && **p <= '9' && *p - s < 19)
        *v = *v * 10 + (unsigned long long)(*(*p)++ - '0');
    return *p > s && !(**p >= '0' && **p <= '9');
}

/* name_size - ",S=<digits>" before any ':' (Maildir++), ended by ',', ':'
 * or the end of the name. */
static bool
name_size(const char *name, unsigned long long *size)
{
    const char *p = name, *q;

    while ((p = strchr(p, ',')) != NULL) {
        q = p + 1;
        if (memchr(name, ':', (size_t)(p - name)) != NULL)
            return false;
        if (q[0] == 'S' && q[1] == '=') {
            q += 2;
            if (parse_num(&q, size) && (*q == '\0' || *q == ',' || *q == ':'))
                return true;
        }
        p++;
    }
    return false;
}

/* name_parse - the (sec, usec, seq) of "<sec>.M<usec>P<pid>Q<seq>.<host>"
 * and the size of ",S=<size>". */
static struct name_key
name_parse(const char *name)
{
    struct name_key k = { false, false, 0, 0, 0, 0 };
    unsigned long long pid;
    const char *p = name;

    if (parse_num(&p, &k.sec) && *p++ == '.' && *p++ == 'M' && parse_num(&p, &k.usec) &&
        *p++ == 'P' && parse_num(&p, &pid) && *p++ == 'Q' && parse_num(&p, &k.seq) &&
        *p == '.')
        k.parsed = true;
    k.sized = name_size(name, &k.size);
    return k;
}

int
spool_id_size(const char *id, uint64_t *size_r)
{
    unsigned long long v;

    if (!name_size(id, &v))
        return 0;
    *size_r = v;
    return 1;
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
    int cfd;

    if (cdir_path(sp, customer, cdir, SPOOL_PATH_MAX, err) < 0)
        return -1;
    cfd = create ? open_dir_create(AT_FDCWD, cdir) : open_dir(AT_FDCWD, cdir);
    if (cfd < 0) {
        open_failed(err, AT_FDCWD, cdir, "%s", cdir);
        return -1;
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

/* --- open customer directories (struct cust) and their cache --- */

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void
cust_free(struct cust *c)
{
    if (c == NULL)
        return;
    close_fd(&c->cfd);
    close_fd(&c->tmpfd);
    close_fd(&c->newfd);
    close_fd(&c->curfd);
    if (atomic_load(&c->holdfd) >= 0)
        close(atomic_load(&c->holdfd));
    close_fd(&c->ufd);
    pthread_mutex_destroy(&c->ulock);
    pthread_mutex_destroy(&c->sync_mu);
    pthread_cond_destroy(&c->sync_cv);
    x_free(c);
}

/* cust_subdirs - tmp/, new/, cur/ (and bad/ when creating); without
 * create a missing one stays -1. */
static int
cust_subdirs(struct cust *c, bool create, struct errbuf *err)
{
    static const char *const names[] = { "tmp", "new", "cur", "bad" };
    int *fds[] = { &c->tmpfd, &c->newfd, &c->curfd, NULL };
    size_t i;
    int fd;

    for (i = 0; i < ARRAY_LEN(names); i++) {
        if (!create && fds[i] == NULL)
            break;
        fd = create ? open_dir_create(c->cfd, names[i]) : open_dir(c->cfd, names[i]);
        if (fd < 0 && (create || errno != ENOENT)) {
            open_failed(err, c->cfd, names[i], "%s/%s", c->cdir, names[i]);
            return -1;
        }
        if (fds[i] != NULL)
            *fds[i] = fd;
        else
            close(fd);
    }
    return 0;
}

/* cust_open - a new struct cust; with create, every directory is made. */
static struct cust *
cust_open(const struct spool *sp, const char *customer, bool create, struct errbuf *err)
{
    struct cust *c = x_calloc(1, sizeof(*c));
    struct stat st;

    if (c == NULL) {
        errbuf_set(err, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    c->cfd = c->tmpfd = c->newfd = c->curfd = c->ufd = -1;
    atomic_init(&c->holdfd, -1);
    if (pthread_mutex_init(&c->ulock, NULL) != 0 || pthread_mutex_init(&c->sync_mu, NULL) != 0
        || pthread_cond_init(&c->sync_cv, NULL) != 0) {
        x_free(c);                   /* nothing to destroy on Linux/glibc */
        errbuf_set(err, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    (void)str_copy(c->name, sizeof(c->name), customer);
    if ((c->cfd = open_customer(sp, customer, create, c->cdir, err)) < 0 ||
        cust_subdirs(c, create, err) < 0 || fstat(c->cfd, &st) < 0) {
        int saved = errno;

        cust_free(c);
        errno = saved;
        return NULL;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    atomic_store(&c->checked_ns, mono_ns());
    return c;
}

static bool
cust_complete(const struct cust *c)
{
    return c->tmpfd >= 0 && c->newfd >= 0 && c->curfd >= 0;
}

/* cust_holdfd - c's hold/, opened on first use (it is made by autoturnctl
 * hold, maybe after c was opened) and kept; -1 with errno (ENOENT: there
 * is none yet). Not to be closed by the caller. */
static int
cust_holdfd(struct cust *c)
{
    int fd = atomic_load(&c->holdfd), mine, expected = -1;

    if (fd >= 0)
        return fd;
    if ((mine = open_dir(c->cfd, SPOOL_HOLD_DIR)) < 0)
        return -1;
    if (atomic_compare_exchange_strong(&c->holdfd, &expected, mine))
        return mine;
    close(mine);                     /* another thread was first */
    return expected;
}

/* cust_path_moved - is the cached directory no longer the one at its
 * path (removed, renamed, replaced)? Checked at most once a second. */
static bool
cust_path_moved(struct cust *c)
{
    long long now = mono_ns();
    struct stat st;

    if (now - atomic_load(&c->checked_ns) < SPOOL_RECHECK_NS)
        return false;
    atomic_store(&c->checked_ns, now);
    return fstatat(AT_FDCWD, c->cdir, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != c->dev ||
           st.st_ino != c->ino;
}

/* cache_drop_locked - forget every unreferenced entry (all of them after
 * a fork: the parent's open files are shared with it) */
static void
cache_drop_locked(struct spool *sp)
{
    struct cust **pp = &sp->cache, *c;

    while ((c = *pp) != NULL) {
        if (c->refs == 0) {
            *pp = c->next;
            sp->ncache--;
            cust_free(c);
        } else {
            atomic_store(&c->stale, true);
            c->cached = false;
            *pp = c->next;
            sp->ncache--;
        }
    }
    sp->fork_gen = atomic_load(&fork_gen);
}

/* cache_find_locked - a fresh cached entry (moved to the front), or NULL;
 * a stale one met on the way is unlinked (freed once unreferenced) */
static struct cust *
cache_find_locked(struct spool *sp, const char *customer)
{
    struct cust **pp, *c;

    for (pp = &sp->cache; (c = *pp) != NULL; pp = &c->next) {
        if (strcmp(c->name, customer) != 0)
            continue;
        *pp = c->next;
        sp->ncache--;
        if (atomic_load(&c->stale) || cust_path_moved(c)) {
            c->cached = false;
            if (c->refs == 0)
                cust_free(c);
            return NULL;
        }
        c->next = sp->cache;
        sp->cache = c;
        sp->ncache++;
        return c;
    }
    return NULL;
}

/* cache_add_locked - keep c (complete) at the front; evict the least
 * recently used unreferenced entry beyond SPOOL_CACHE_MAX */
static void
cache_add_locked(struct spool *sp, struct cust *c)
{
    struct cust **pp, **victim = NULL, *v;

    c->cached = true;
    c->next = sp->cache;
    sp->cache = c;
    sp->ncache++;
    if (sp->ncache <= SPOOL_CACHE_MAX)
        return;
    for (pp = &sp->cache; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->refs == 0)
            victim = pp;
    if (victim == NULL)
        return;
    v = *victim;
    *victim = v->next;
    sp->ncache--;
    cust_free(v);
}

/* cust_get - the customer's open directories, referenced (cust_put).
 * With create, every directory exists afterwards. NULL with err (errno
 * ENOENT when the customer has no directory and create is false). */
static struct cust *
cust_get(struct spool *sp, const char *customer, bool create, struct errbuf *err)
{
    char cdir[SPOOL_PATH_MAX];
    struct cust *c;

    if (cdir_path(sp, customer, cdir, sizeof(cdir), err) < 0)
        return NULL;
    pthread_mutex_lock(&sp->cache_mu);
    if (sp->fork_gen != atomic_load(&fork_gen))
        cache_drop_locked(sp);
    if ((c = cache_find_locked(sp, customer)) != NULL) {
        c->refs++;
        pthread_mutex_unlock(&sp->cache_mu);
        return c;
    }
    pthread_mutex_unlock(&sp->cache_mu);
    if ((c = cust_open(sp, customer, create, err)) == NULL)
        return NULL;
    pthread_mutex_lock(&sp->cache_mu);
    c->refs = 1;
    if (cust_complete(c) && cache_find_locked(sp, customer) == NULL)
        cache_add_locked(sp, c);    /* else another thread was first: c stays private */
    pthread_mutex_unlock(&sp->cache_mu);
    return c;
}

static void
cust_put(struct spool *sp, struct cust *c)
{
    bool free_it;

    if (c == NULL)
        return;
    pthread_mutex_lock(&sp->cache_mu);
    free_it = --c->refs == 0 && !c->cached;
    pthread_mutex_unlock(&sp->cache_mu);
    if (free_it)
        cust_free(c);
}

/* cust_gone - after an ENOENT: was one of c's directories removed? Then
 * c is marked stale (the caller may try once more with a fresh one). */
static bool
cust_gone(struct cust *c)
{
    const int fds[] = { c->cfd, c->tmpfd, c->newfd, c->curfd, atomic_load(&c->holdfd) };
    struct stat st;
    size_t i;

    for (i = 0; i < ARRAY_LEN(fds); i++) {
        if (fds[i] >= 0 && fstat(fds[i], &st) == 0 && st.st_nlink == 0) {
            atomic_store(&c->stale, true);
            return true;
        }
    }
    return false;
}

/* cust_retry - drop a stale c and get a fresh one (create as given) */
static struct cust *
cust_retry(struct spool *sp, struct cust *c, bool create, struct errbuf *err)
{
    char name[CUSTOMER_NAME_MAX + 1];

    (void)str_copy(name, sizeof(name), c->name);
    pthread_mutex_lock(&sp->cache_mu);
    if (c->cached) {
        struct cust **pp;

        for (pp = &sp->cache; *pp != NULL; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                sp->ncache--;
                break;
            }
        c->cached = false;
    }
    pthread_mutex_unlock(&sp->cache_mu);
    cust_put(sp, c);
    return cust_get(sp, name, create, err);
}

/* --- scanning new/ and cur/ (listing and counting) --- */

/* entry_info - size and arrival of one file of dirfd as the spool counts
 * them: the size from ",S=" in the name, else the file's size; the
 * arrival from the name, else the modification time. 1 a message, 0 not
 * one (a dot name, not a regular file, gone meanwhile), -1 error. */
static int
entry_info(int dirfd, const char *name, unsigned char d_type, uint64_t *size_r,
           time_t *arrival_r)
{
    struct name_key k;
    struct stat st;

    if (name[0] == '.' || strlen(name) >= SPOOL_ID_MAX)
        return 0;
    if (d_type != DT_REG && d_type != DT_UNKNOWN)
        return 0;
    k = name_parse(name);
    if (d_type == DT_UNKNOWN || !k.parsed || !k.sized) {
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return errno == ENOENT ? 0 : -1;     /* gone meanwhile: not an error */
        if (!S_ISREG(st.st_mode))
            return 0;
        if (!k.sized)
            k.size = (unsigned long long)st.st_size;
        if (!k.parsed)
            k.sec = (unsigned long long)st.st_mtime;
    }
    *size_r = k.size;
    *arrival_r = (time_t)k.sec;
    return 1;
}

typedef int scan_fn(void *ctx, const char *name, uint64_t size, time_t arrival,
                    const char *sub);

/* scan_sub - every message of <cdir>/<sub> to fn; a missing sub is empty. */
static int
scan_sub(int cfd, const char *cdir, const char *sub, scan_fn *fn, void *ctx,
         struct errbuf *err)
{
    struct dirent *de;
    uint64_t size;
    time_t arrival;
    DIR *d;
    int fd = open_dir(cfd, sub), rc = 0, r;

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
        if ((r = entry_info(fd, de->d_name, de->d_type, &size, &arrival)) < 0 ||
            (r > 0 && fn(ctx, de->d_name, size, arrival, sub) < 0)) {
            errbuf_set_errno(err, "%s/%s/%s", cdir, sub, de->d_name);
            rc = -1;
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        errbuf_set_errno(err, "read %s/%s", cdir, sub);
        rc = -1;
    }
    closedir(d);
    return rc;
}

/* scan - new/ and cur/, with_hold also hold/ (opened by name: made by
 * another process, autoturnctl hold, after c was opened) */
static int
scan(struct cust *c, bool with_hold, scan_fn *fn, void *ctx, struct errbuf *err)
{
    if (scan_sub(c->cfd, c->cdir, "new", fn, ctx, err) < 0 ||
        scan_sub(c->cfd, c->cdir, "cur", fn, ctx, err) < 0 ||
        (with_hold && scan_sub(c->cfd, c->cdir, SPOOL_HOLD_DIR, fn, ctx, err) < 0))
        return -1;
    return 0;
}

/* --- the usage record --- */

/* add_one - a message joins the account */
static void
usage_add(struct usage *u, uint64_t size, time_t arrival)
{
    if (u->messages == 0)
        u->oldest = (int64_t)arrival;
    else if (u->oldest != USAGE_OLDEST_UNKNOWN && (int64_t)arrival < u->oldest)
        u->oldest = (int64_t)arrival;
    u->messages++;
    u->bytes += size;
}

/* usage_sub - a message leaves it; the oldest is unknown when it may
 * have been the oldest */
static void
usage_sub(struct usage *u, uint64_t size, time_t arrival)
{
    if (u->messages > 0)
        u->messages--;
    u->bytes = u->bytes > size ? u->bytes - size : 0;
    if (u->messages == 0) {
        u->bytes = 0;
        u->oldest = 0;
    } else if (u->oldest != USAGE_OLDEST_UNKNOWN && (int64_t)arrival <= u->oldest)
        u->oldest = USAGE_OLDEST_UNKNOWN;
}

static int
count_one(void *ctx, const char *name, uint64_t size, time_t arrival, const char *sub)
{
    (void)name;
    (void)sub;
    usage_add(ctx, size, arrival);
    return 0;
}

/* usage_count - count the spool into u (exact: called under the lock).
 * Messages on hold count: they count for the customer's limits. */
static int
usage_count(struct cust *c, struct usage *u, struct errbuf *err)
{
    memset(u, 0, sizeof(*u));
    if (scan(c, true, count_one, u, err) < 0)
        return -1;
    (void)str_copy(u->boot, sizeof(u->boot), usage_boot_id());
    u->counted = (int64_t)time(NULL);
    return 0;
}

/* usage_open - c->ufd on first use (ulock held): created 0600 if missing
 * (by root: given to the owner of the customer directory); a record this
 * process cannot write is replaced. */
static int
usage_open(struct cust *c, struct errbuf *err)
{
    struct stat st;
    int fd, tries;

    if (c->ufd >= 0)
        return 0;
    for (tries = 0; tries < 2; tries++) {
        fd = openat(c->cfd, USAGE_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno == EACCES && tries == 0 && unlinkat(c->cfd, USAGE_FILE, 0) == 0)
            continue;
        if (errno != ENOENT)
            break;
        fd = openat(c->cfd, USAGE_FILE, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    SPOOL_FILE_MODE);
        if (fd >= 0 && geteuid() == 0 && fstat(c->cfd, &st) == 0 && st.st_uid != 0 &&
            fchown(fd, st.st_uid, st.st_gid) < 0) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        open_failed(err, c->cfd, USAGE_FILE, "%s/%s", c->cdir, USAGE_FILE);
        return -1;
    }
    c->ufd = fd;
    return 0;
}

/* usage_read - the record as it is: 1 trusted (clean, written in this
 * boot, counted less than SPOOL_RECOUNT_SECS ago), 0 it must be counted
 * again, -1 read error */
static int
usage_read(struct cust *c, struct usage *u, struct errbuf *err)
{
    char buf[USAGE_SIZE + 1];
    const char *why;
    int64_t now;
    ssize_t n;

    do
        n = pread(c->ufd, buf, sizeof(buf), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        errbuf_set_errno(err, "read %s/%s", c->cdir, USAGE_FILE);
        return -1;
    }
    if (n != USAGE_SIZE || usage_parse(buf, (size_t)n, u, &why) < 0)
        return 0;
    now = (int64_t)time(NULL);
    return !u->dirty && usage_same_boot(u->boot) && u->counted <= now + 60 &&
           now - u->counted < SPOOL_RECOUNT_SECS;
}

static int
usage_write(struct cust *c, const struct usage *u, struct errbuf *err)
{
    char buf[USAGE_SIZE];
    ssize_t n;

    usage_format(u, buf);
    do
        n = pwrite(c->ufd, buf, sizeof(buf), 0);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(buf))
        return 0;
    if (n >= 0)
        errno = EIO;
    errbuf_set_errno(err, "write %s/%s", c->cdir, USAGE_FILE);
    return -1;
}

/* usage_lock / usage_unlock - this process's threads, then the others.
 * A record removed meanwhile (by hand, to have it counted again) is
 * opened afresh, so that every process keeps to the same file. */
static int
usage_lock(struct cust *c, struct errbuf *err)
{
    struct stat st;
    int rc, tries;

    pthread_mutex_lock(&c->ulock);
    for (tries = 0; tries < 3; tries++) {
        if (usage_open(c, err) < 0)
            goto fail;
        do
            rc = flock(c->ufd, LOCK_EX);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            errbuf_set_errno(err, "lock %s/%s", c->cdir, USAGE_FILE);
            goto fail;
        }
        if (fstat(c->ufd, &st) < 0) {
            errbuf_set_errno(err, "stat %s/%s", c->cdir, USAGE_FILE);
            (void)flock(c->ufd, LOCK_UN);
            goto fail;
        }
        if (st.st_nlink > 0)
            return 0;
        close_fd(&c->ufd);           /* also unlocks */
    }
    errbuf_set(err, "lock %s/%s: the file keeps being removed", c->cdir, USAGE_FILE);
fail:
    pthread_mutex_unlock(&c->ulock);
    return -1;
}

static void
usage_unlock(struct cust *c)
{
    (void)flock(c->ufd, LOCK_UN);
    pthread_mutex_unlock(&c->ulock);
}

/* usage_begin - lock, read (counting again if the record is not to be
 * trusted) and mark the record dirty before a change to new/ or cur/.
 * 0 locked; -1 not locked (err): the change must not be made. */
static int
usage_begin(struct cust *c, struct usage *u, struct errbuf *err)
{
    int rc;

    if (usage_lock(c, err) < 0)
        return -1;
    if ((rc = usage_read(c, u, err)) == 0)
        rc = usage_count(c, u, err) < 0 ? -1 : 1;
    u->dirty = true;
    if (rc < 0 || usage_write(c, u, err) < 0) {
        usage_unlock(c);
        return -1;
    }
    return 0;
}

/* usage_end - write the record clean and unlock. A failed write leaves
 * it dirty, to be counted again by the next user: never an error for the
 * change it accounts for. */
static void
usage_end(struct cust *c, struct usage *u)
{
    u->dirty = false;
    (void)str_copy(u->boot, sizeof(u->boot), usage_boot_id());
    (void)usage_write(c, u, NULL);
    usage_unlock(c);
}

/* usage_get - the record, counted again (and rewritten) when it is not to
 * be trusted, or when want_oldest and the oldest is not known. Usually
 * one pread, without the lock. */
static int
usage_get(struct cust *c, bool want_oldest, struct usage *u, struct errbuf *err)
{
    int rc;

    pthread_mutex_lock(&c->ulock);
    rc = usage_open(c, err);
    pthread_mutex_unlock(&c->ulock);
    if (rc < 0)
        return -1;
    if ((rc = usage_read(c, u, err)) < 0)
        return -1;
    if (rc == 1 && (!want_oldest || u->oldest != USAGE_OLDEST_UNKNOWN))
        return 0;
    if (usage_lock(c, err) < 0)
        return -1;
    if ((rc = usage_read(c, u, err)) >= 0 &&
        (rc == 0 || (want_oldest && u->oldest == USAGE_OLDEST_UNKNOWN))) {
        if ((rc = usage_count(c, u, err)) == 0)
            rc = usage_write(c, u, err);
    }
    usage_unlock(c);
    return rc < 0 ? -1 : 0;
}

/* --- the group commit of new/ --- */

/* new_sync - make every link into c's new/ made before this call durable:
 * one fsync serves every writer that linked before it started, so that
 * concurrent writers of one customer share their directory syncs. */
static int
new_sync(struct cust *c, struct errbuf *err)
{
    uint64_t mine, upto;
    int rc = 0, e = 0;

    pthread_mutex_lock(&c->sync_mu);
    mine = ++c->ticket;
    while (c->synced < mine) {
        if (c->sync_broken) {
            e = c->sync_errno;
            rc = -1;
            break;
        }
        if (c->syncing) {
            pthread_cond_wait(&c->sync_cv, &c->sync_mu);
            continue;
        }
        c->syncing = true;
        upto = c->ticket;
        pthread_mutex_unlock(&c->sync_mu);
        rc = fsync(c->newfd);
        e = errno;
        pthread_mutex_lock(&c->sync_mu);
        c->syncing = false;
        if (rc == 0)
            c->synced = upto;
        else {
            c->sync_broken = true;   /* no later fsync may vouch for these links */
            c->sync_errno = e;
            atomic_store(&c->stale, true);
        }
        pthread_cond_broadcast(&c->sync_cv);
    }
    pthread_mutex_unlock(&c->sync_mu);
    if (rc < 0) {
        errno = e;
        errbuf_set_errno(err, "fsync %s/new", c->cdir);
    }
    return rc;
}

/* --- writing --- */

/* writer_create - the temp file in c's tmp/ */
static int
writer_create(struct spool_writer *w, struct errbuf *err)
{
    if (make_name(w->sp, w->name, sizeof(w->name), &w->sec) < 0) {
        errbuf_set_errno(err, "spool file name");
        w->name[0] = '\0';
        return -1;
    }
    w->fd = openat(w->c->tmpfd, w->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   SPOOL_FILE_MODE);
    if (w->fd < 0) {
        errbuf_set_errno(err, "create %s/tmp/%s", w->c->cdir, w->name);
        w->name[0] = '\0';    /* not ours: never unlink it */
        return -1;
    }
    return 0;
}

/* writer_new - allocate, get the customer's directories, create the
 * temp file (once more with fresh directories if the cached ones were
 * removed meanwhile). */
static int
writer_new(struct spool *sp, const char *customer, struct spool_writer **w_r, struct errbuf *err)
{
    struct spool_writer *w;

    if ((w = malloc(sizeof(*w))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    memset(w, 0, offsetof(struct spool_writer, buf));
    w->sp = sp;
    w->fd = -1;
    *w_r = w;
    if ((w->c = cust_get(sp, customer, true, err)) == NULL)
        return -1;
    if (writer_create(w, err) == 0)
        return 0;
    if (errno != ENOENT || !cust_gone(w->c) ||
        (w->c = cust_retry(sp, w->c, true, err)) == NULL)
        return -1;
    return writer_create(w, err);
}

/* writer_flush - write out the buffer. */
static int
writer_flush(struct spool_writer *w, struct errbuf *err)
{
    if (w->len > 0 && fd_write_all(w->fd, w->buf, w->len) < 0) {
        w->failed = true;
        errbuf_set_errno(err, "write %s/tmp/%s", w->c->cdir, w->name);
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
        errbuf_set(err, "write %s/tmp/%s: an earlier write failed", w->c->cdir, w->name);
        return -1;
    }
    w->total += len;
    while (len > 0) {
        if (w->len == 0 && len >= sizeof(w->buf)) {
            if (fd_write_all(w->fd, p, len) == 0)
                return 0;
            w->failed = true;
            errbuf_set_errno(err, "write %s/tmp/%s", w->c->cdir, w->name);
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
        errbuf_set(err, "write %s/tmp/%s: an earlier write failed", w->c->cdir, w->name);
        return -1;
    }
    if (writer_flush(w, err) < 0)
        return -1;
    if (fsync(fd) < 0) {
        errbuf_set_errno(err, "fsync %s/tmp/%s", w->c->cdir, w->name);
        return -1;
    }
    w->fd = -1;
    if (close(fd) < 0) {
        errbuf_set_errno(err, "close %s/tmp/%s", w->c->cdir, w->name);
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
    if (w->c != NULL && w->name[0] != '\0')
        (void)unlinkat(w->c->tmpfd, w->name, 0);
    cust_put(w->sp, w->c);
    x_free(w);
    errno = saved;
}

/* link_counted - link w's tmp/<name> into c's new/<id> and count it, in
 * one critical section of c's usage record. */
static int
link_counted(struct cust *c, struct spool_writer *w, const char *id, struct errbuf *err)
{
    struct usage u;
    int rc;

    if (usage_begin(c, &u, err) < 0)
        return -1;
    if ((rc = linkat(w->c->tmpfd, w->name, c->newfd, id, 0)) == 0)
        usage_add(&u, w->total, w->sec);
    else
        errbuf_set_errno(err, "link %s/tmp/%s into new/", w->c->cdir, w->name);
    usage_end(c, &u);
    return rc;
}

/* unlink_counted - remove <sub>/<id> (subfd) and count it out */
static int
unlink_counted(struct cust *c, int subfd, const char *sub, const char *id, uint64_t size,
               time_t arrival, struct errbuf *err)
{
    struct usage u;
    int rc;

    if (usage_begin(c, &u, err) < 0)
        return -1;
    if ((rc = unlinkat(subfd, id, 0)) == 0)
        usage_sub(&u, size, arrival);
    else
        errbuf_set_errno(err, "unlink %s/%s/%s", c->cdir, sub, id);
    usage_end(c, &u);
    return rc;
}

/* writer_link - link the finished file into new/ as id, counted, and make
 * that durable. A new/ that was removed meanwhile is opened afresh (and
 * an error opening it reported). */
static int
writer_link(struct spool_writer *w, const char *id, struct errbuf *err)
{
    struct cust *c = w->c, *fresh = NULL;
    struct errbuf e2;
    int rc;

    rc = link_counted(c, w, id, err);
    if (rc < 0 && errno == ENOENT && cust_gone(c)) {
        if ((fresh = cust_get(w->sp, c->name, true, err)) == NULL)
            return -1;
        c = fresh;
        rc = link_counted(c, w, id, err);
    }
    if (rc == 0 && new_sync(c, err) < 0) {
        /* not durable: leave nothing */
        (void)unlink_counted(c, c->newfd, "new", id, w->total, w->sec, &e2);
        rc = -1;
    }
    cust_put(w->sp, fresh);
    return rc;
}

int
spool_writer_commit(struct spool_writer *w, char id_r[SPOOL_ID_MAX], struct errbuf *err)
{
    char id[SPOOL_ID_MAX];
    int rc = -1;

    id_r[0] = '\0';
    if (writer_finish(w, err) < 0)
        goto out;
    if (str_printf(id, sizeof(id), "%s,S=%llu", w->name, (unsigned long long)w->total) < 0) {
        errbuf_set(err, "spool file name %s,S=%llu: too long", w->name,
                   (unsigned long long)w->total);
        goto out;
    }
    if (writer_link(w, id, err) < 0)
        goto out;
    (void)str_copy(id_r, SPOOL_ID_MAX, id);
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

/* --- listing and accounting --- */

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

/* vec_add - scan_fn: one message into the vector. */
static int
vec_add(void *ctx, const char *name, uint64_t size, time_t arrival, const char *sub)
{
    struct entry_vec *ev = ctx;
    struct spool_entry *e;

    if (ev->n == ev->alloc) {
        size_t n = ev->alloc ? ev->alloc * 2 : 64;

        if ((e = x_reallocarray(ev->v, n, sizeof(*e))) == NULL)
            return -1;
        ev->v = e;
        ev->alloc = n;
    }
    e = &ev->v[ev->n++];
    (void)str_copy(e->id, sizeof(e->id), name);
    e->size = size;
    e->arrival = arrival;
    e->in_cur = strcmp(sub, "cur") == 0;
    e->on_hold = strcmp(sub, SPOOL_HOLD_DIR) == 0;
    return 0;
}

/* list_customer - new/ and cur/, with_hold also hold/, oldest first. */
static int
list_customer(struct spool *sp, const char *customer, bool with_hold, struct spool_entry **v_r,
              size_t *n_r, struct errbuf *err)
{
    struct entry_vec ev = { NULL, 0, 0 };
    struct cust *c;
    int rc = -1;

    *v_r = NULL;
    *n_r = 0;
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return errno == ENOENT ? 0 : -1;
    if (scan(c, with_hold, vec_add, &ev, err) < 0)
        goto out;
    if (ev.n > 1)
        qsort(ev.v, ev.n, sizeof(*ev.v), entry_cmp);
    *v_r = ev.v;
    *n_r = ev.n;
    ev.v = NULL;
    rc = 0;
out:
    x_free(ev.v);
    cust_put(sp, c);
    return rc;
}

/* count_hold - scan_fn: one more message on hold */
static int
count_hold(void *ctx, const char *name, uint64_t size, time_t arrival, const char *sub)
{
    (void)name;
    (void)size;
    (void)arrival;
    (void)sub;
    ++*(uint64_t *)ctx;
    return 0;
}

/* stats_of - the usage record (want_oldest: with the oldest known, and
 * how many messages are on hold) */
static int
stats_of(struct spool *sp, const char *customer, bool want_oldest, struct spool_stats *st,
         struct errbuf *err)
{
    struct usage u;
    struct cust *c;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return errno == ENOENT ? 0 : -1;
    if ((rc = usage_get(c, want_oldest, &u, err)) == 0) {
        st->messages = u.messages;
        st->bytes = u.bytes;
        st->oldest = u.oldest > 0 ? (time_t)u.oldest : 0;
        /* how many of them are on hold: hold/ is listed (it is small, and
         * usually missing) */
        if (want_oldest)
            rc = scan_sub(c->cfd, c->cdir, SPOOL_HOLD_DIR, count_hold, &st->on_hold, err);
    }
    cust_put(sp, c);
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
    return stats_of(sp, customer, true, st, err);
}

int
spool_usage(struct spool *sp, const char *customer, struct spool_stats *st, struct errbuf *err)
{
    return stats_of(sp, customer, false, st, err);
}

int
spool_reconcile(struct spool *sp, const char *customer, struct spool_stats *st,
                struct errbuf *err)
{
    struct usage u;
    struct cust *c;
    int rc = -1;

    memset(st, 0, sizeof(*st));
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return errno == ENOENT ? 0 : -1;
    if (usage_lock(c, err) == 0) {
        if ((rc = usage_count(c, &u, err)) == 0)
            rc = usage_write(c, &u, err);
        usage_unlock(c);
    }
    if (rc == 0) {
        st->messages = u.messages;
        st->bytes = u.bytes;
        st->oldest = (time_t)u.oldest;
    }
    cust_put(sp, c);
    return rc;
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

/* open_msg_file - find id in new/ then cur/ (with_hold: then hold/) of c;
 * *sub_r names the directory, *subfd_r is c's descriptor of it (not to be
 * closed). */
static int
open_msg_file(struct cust *c, const char *id, int flags, bool with_hold, int *subfd_r,
              const char **sub_r, struct errbuf *err)
{
    static const char *const subs[] = { "new", "cur", SPOOL_HOLD_DIR };
    const int dfds[] = { c->newfd, c->curfd, with_hold ? cust_holdfd(c) : -1 };
    size_t i;
    int fd;

    if (with_hold && dfds[2] < 0 && errno != ENOENT) {
        open_failed(err, c->cfd, SPOOL_HOLD_DIR, "%s/%s", c->cdir, SPOOL_HOLD_DIR);
        return -1;
    }
    for (i = 0; i < ARRAY_LEN(subs); i++) {
        if (dfds[i] < 0)
            continue;
        if ((fd = openat(dfds[i], id, flags | O_NOFOLLOW | O_CLOEXEC)) >= 0 ||
            errno != ENOENT) {
            if (fd < 0)
                open_failed(err, dfds[i], id, "%s/%s/%s", c->cdir, subs[i], id);
            *subfd_r = dfds[i];
            *sub_r = subs[i];
            return fd;
        }
    }
    errbuf_set(err, "%s: no such spool file %s in new/%s", c->cdir, id,
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

/* account_of - what the usage record counts for <subfd>/<id> */
static void
account_of(int subfd, const char *id, uint64_t *size_r, time_t *arrival_r)
{
    *size_r = 0;
    *arrival_r = 0;
    (void)entry_info(subfd, id, DT_UNKNOWN, size_r, arrival_r);
}

/* move_bad - set a malformed file aside in bad/ (counted out) and log it
 * once. */
static int
move_bad(struct cust *c, int subfd, const char *sub, const char *id, const char *reason,
         struct errbuf *err)
{
    int badfd = open_dir_create(c->cfd, "bad"), rc = -1;
    uint64_t size;
    time_t arrival;
    struct usage u;

    if (badfd < 0) {
        errbuf_set_errno(err, "malformed spool file %s/%s/%s (%s); open %s/bad", c->cdir, sub,
                         id, reason, c->cdir);
        return -1;
    }
    account_of(subfd, id, &size, &arrival);
    if (usage_begin(c, &u, err) < 0)
        goto out;
    if (renameat(subfd, id, badfd, id) < 0) {
        errbuf_set_errno(err, "malformed spool file %s/%s/%s (%s); rename into %s/bad",
                         c->cdir, sub, id, reason, c->cdir);
        usage_end(c, &u);
        goto out;
    }
    usage_sub(&u, size, arrival);
    usage_end(c, &u);
    if (fsync(badfd) < 0 || fsync(subfd) < 0)
        log_warn("%s: id=%s: fsync after moving to %s/bad", c->name, id, c->cdir);
    log_warnx("%s: id=%s: malformed spool file moved to %s/bad: %s", c->name, id, c->cdir,
              reason);
    errbuf_set(err, "malformed spool file %s/%s/%s moved to bad/: %s", c->cdir, sub, id, reason);
    rc = SPOOL_MALFORMED;
out:
    close(badfd);
    return rc;
}

/* msg_load - open the file and parse its envelope into m. peek: look in
 * hold/ too, and leave a malformed file where it is. */
static int
msg_load(struct spool_msg *m, struct cust *c, const char *customer, const char *id, bool peek,
         struct errbuf *err)
{
    const char *sub = NULL;
    struct errbuf why;
    struct stat st;
    int subfd = -1, rc = -1;

    if ((m->fd = open_msg_file(c, id, O_RDONLY, peek, &subfd, &sub, err)) < 0)
        return -1;
    (void)str_printf(m->path, sizeof(m->path), "%s/%s/%s", c->cdir, sub, id);
    if (fstat(m->fd, &st) < 0) {
        errbuf_set_errno(err, "stat %s", m->path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, "%s: not a regular file", m->path);
        return -1;
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
        rc = move_bad(c, subfd, sub, id, why.msg, err);
    else if (rc < 0)
        errbuf_set(err, "%s", why.msg);
    else if (lseek(m->fd, (off_t)m->hdr_len, SEEK_SET) < 0) {
        errbuf_set_errno(err, "seek %s", m->path);
        rc = -1;
    }
    m->body_size = (uint64_t)st.st_size - m->hdr_len;
    return rc;
}

/* retry_stale - after a failure with c: a cached directory that turns
 * out to be removed is replaced once (*c_r updated); true to try again. */
static bool
retry_stale(struct spool *sp, struct cust **c_r, struct errbuf *err)
{
    if (errno != ENOENT || !cust_gone(*c_r))
        return false;
    *c_r = cust_retry(sp, *c_r, false, err);
    return *c_r != NULL;
}

/* msg_open - spool_msg_open and spool_msg_peek */
static int
msg_open(struct spool *sp, const char *customer, const char *id, bool peek,
         struct spool_msg **m_r, struct errbuf *err)
{
    struct spool_msg *m;
    struct cust *c;
    int rc = -1;

    *m_r = NULL;
    if (check_id(id, err) < 0)
        return -1;
    if ((m = x_calloc(1, sizeof(*m))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    m->fd = -1;
    envelope_init(&m->env);
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        goto out;
    if ((rc = msg_load(m, c, customer, id, peek, err)) == -1 && m->fd < 0 &&
        retry_stale(sp, &c, err))
        rc = msg_load(m, c, customer, id, peek, err);
    if (rc == 0) {
        *m_r = m;
        m = NULL;
    }
out:
    cust_put(sp, c);
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

/* find_msg - which of c's new/, cur/ and hold/ holds id (no open) */
static int
find_msg(struct cust *c, const char *id, int *subfd_r, const char **sub_r, struct errbuf *err)
{
    int fd = open_msg_file(c, id, O_PATH, true, subfd_r, sub_r, err);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* remove_msg - unlink a message from new/ or cur/, counted out; with
 * sync, fsync that directory too. */
static int
remove_msg(struct spool *sp, const char *customer, const char *id, bool sync,
           struct errbuf *err)
{
    const char *sub = NULL;
    struct cust *c;
    uint64_t size;
    time_t arrival;
    int subfd = -1, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return -1;
    if (find_msg(c, id, &subfd, &sub, err) < 0 &&
        (!retry_stale(sp, &c, err) || find_msg(c, id, &subfd, &sub, err) < 0))
        goto out;
    account_of(subfd, id, &size, &arrival);
    if (unlink_counted(c, subfd, sub, id, size, arrival, err) < 0)
        goto out;
    rc = sync ? sync_dir(subfd, c->cdir, sub, err) : 0;
out:
    cust_put(sp, c);
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
    struct usage u;
    struct cust *c;
    int rc = 0;

    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return -1;
    if (c->newfd >= 0)
        rc = sync_dir(c->newfd, c->cdir, "new", err);
    if (rc == 0 && c->curfd >= 0)
        rc = sync_dir(c->curfd, c->cdir, "cur", err);
    /* hold/ only when this process has used it (a message put on hold
     * while a flush had it open, then delivered and deleted from there) */
    if (rc == 0 && atomic_load(&c->holdfd) >= 0)
        rc = sync_dir(atomic_load(&c->holdfd), c->cdir, SPOOL_HOLD_DIR, err);
    /* after a batch of deletions: the oldest arrival known again */
    if (rc == 0)
        rc = usage_get(c, true, &u, err);
    cust_put(sp, c);
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

/* writer_replace - finish w and rename it over <cdir>/<sub>/<id>. The id
 * keeps its ",S=" (the size the message was held with); a name without
 * one is counted by its file size, so the record follows the new size. */
static int
writer_replace(struct spool_writer *w, const char *sub, const char *id, struct errbuf *err)
{
    int dfd = strcmp(sub, "cur") == 0 ? w->c->curfd : w->c->newfd, rc = -1;
    uint64_t old_size;
    time_t arrival;
    struct usage u;
    bool counted;

    if (writer_finish(w, err) < 0)
        goto out;
    account_of(dfd, id, &old_size, &arrival);
    if (usage_begin(w->c, &u, err) < 0)
        goto out;
    if (renameat(w->c->tmpfd, w->name, dfd, id) < 0) {
        errbuf_set_errno(err, "rename %s/tmp/%s to %s/%s", w->c->cdir, w->name, sub, id);
        usage_end(w->c, &u);
        goto out;
    }
    w->name[0] = '\0';    /* renamed: nothing left to unlink */
    counted = name_parse(id).sized;
    if (!counted) {
        usage_sub(&u, old_size, arrival);
        usage_add(&u, w->total, arrival);
    }
    usage_end(w->c, &u);
    rc = sync_dir(dfd, w->c->cdir, sub, err);
out:
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
    struct cust *c;
    int fd, rc;

    *fd_r = -1;
    if ((c = cust_get(sp, customer, true, err)) == NULL)
        return -1;
    fd = openat(c->cfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                SPOOL_FILE_MODE);
    if (fd < 0)
        open_failed(err, c->cfd, SPOOL_LOCK_NAME, "%s/%s", c->cdir, SPOOL_LOCK_NAME);
    if (fd < 0) {
        cust_put(sp, c);
        return -1;
    }
    do
        rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        cust_put(sp, c);
        *fd_r = fd;
        return 1;
    }
    if (errno != EWOULDBLOCK)
        errbuf_set_errno(err, "lock %s/%s", c->cdir, SPOOL_LOCK_NAME);
    rc = errno == EWOULDBLOCK ? 0 : -1;
    cust_put(sp, c);
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

/* move_between - rename id from c's <from> (fromfd) to <to> (never over
 * an existing file; <to> is created when missing), then fsync both
 * directories. The rename is made under the usage record's lock, so that
 * a count of the spool never sees the message in both directories or in
 * neither; the record itself does not change (a message on hold counts
 * for the customer's limits like any other). */
static int
move_between(struct cust *c, int fromfd, const char *from, const char *to, const char *id,
             struct errbuf *err)
{
    int tofd = open_dir_create(c->cfd, to), rc = -1;

    if (tofd < 0) {
        open_failed(err, c->cfd, to, "%s/%s", c->cdir, to);
        return -1;
    }
    if (usage_lock(c, err) < 0)
        goto out;
    if ((rc = renameat2(fromfd, id, tofd, id, RENAME_NOREPLACE)) < 0)
        errbuf_set_errno(err, "rename %s/%s/%s into %s/", c->cdir, from, id, to);
    usage_unlock(c);
    if (rc == 0 &&
        (sync_dir(tofd, c->cdir, to, err) < 0 || sync_dir(fromfd, c->cdir, from, err) < 0))
        rc = -1;
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
    const char *sub = NULL;
    struct cust *c;
    int subfd = -1, fd, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return -1;
    if ((fd = open_msg_file(c, id, O_PATH, false, &subfd, &sub, err)) < 0) {
        if (errno == ENOENT && file_in(c->cfd, SPOOL_HOLD_DIR, id)) {
            errbuf_set(err, "%s: %s is already on hold", c->cdir, id);
            errno = EALREADY;
        }
        goto out;
    }
    close(fd);
    rc = move_between(c, subfd, sub, SPOOL_HOLD_DIR, id, err);
out:
    cust_put(sp, c);
    return rc;
}

int
spool_release(struct spool *sp, const char *customer, const char *id, struct errbuf *err)
{
    struct cust *c;
    int holdfd, rc = -1;

    if (check_id(id, err) < 0)
        return -1;
    if ((c = cust_get(sp, customer, false, err)) == NULL)
        return -1;
    if (!file_in(c->cfd, SPOOL_HOLD_DIR, id)) {
        if (file_in(c->cfd, "new", id) || file_in(c->cfd, "cur", id)) {
            errbuf_set(err, "%s: %s is not on hold", c->cdir, id);
            errno = EALREADY;
        } else {
            errbuf_set(err, "%s: no such spool file %s in hold/", c->cdir, id);
            errno = ENOENT;
        }
        goto out;
    }
    if ((holdfd = cust_holdfd(c)) < 0) {
        open_failed(err, c->cfd, SPOOL_HOLD_DIR, "%s/%s", c->cdir, SPOOL_HOLD_DIR);
        goto out;
    }
    /* a name with maildir flags came from cur/ */
    rc = move_between(c, holdfd, SPOOL_HOLD_DIR, strstr(id, ":2,") ? "cur" : "new", id, err);
out:
    cust_put(sp, c);
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
