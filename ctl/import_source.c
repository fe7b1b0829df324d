/* SPDX-License-Identifier: ISC */
/*
 * import_source.c - the customer source and table for "autoturnctl
 * import" (see import_source.h). Owns the copy of the source read at the
 * start (so a change made meanwhile is noticed, not overwritten), the
 * fragment text, the temporary directory of the trial compile and the
 * atomic replacement of the source.
 *
 * SECURITY: the source is parsed by lib/custsrc.c and compiled by
 * lib/custdb_compile.c, as by "autoturnctl compile"; the replacement is
 * created O_EXCL beside it and renamed over it only once it is durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "custdb_compile.h"
#include "custsrc.h"
#include "import_source.h"
#include "units.h"
#include "util.h"

#define FRAG_NAME      "import fragment"
#define DOMAINS_PER_LINE 8

struct sbuf {
    char *b;
    size_t len, cap;
    bool failed;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *s, const char *fmt, ...)
{
    va_list ap;
    char *nb;
    int n;

    if (s->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(s->b ? s->b + s->len : NULL, s->b ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->failed = true;
            return;
        }
        if (s->b != NULL && (size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        if ((nb = realloc(s->b, s->cap + (size_t)n + 4096)) == NULL) {
            s->failed = true;
            return;
        }
        s->b = nb;
        s->cap += (size_t)n + 4096;
    }
}

/* --- reading the source --- */

struct load_ctx {
    struct imp_plan *p;
};

static int
keep_customer(void *ctx, struct customer *c)
{
    struct imp_plan *p = ((struct load_ctx *)ctx)->p;
    struct customer **v;

    if (p->nexisting % 64 == 0) {
        if ((v = x_reallocarray(p->existing, p->nexisting + 64, sizeof(*v))) == NULL) {
            customer_free(c);
            return -1;
        }
        p->existing = v;
    }
    p->existing[p->nexisting++] = c;
    return 0;
}

static void
source_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    imp_error(((struct load_ctx *)ctx)->p, file, line, "%s", msg);
}

/* read_all - the whole of fd into s->data. */
static int
read_all(int fd, struct imp_source *s)
{
    size_t cap = (size_t)s->st.st_size + 1;
    ssize_t n;

    if ((s->data = malloc(cap)) == NULL)
        return -1;
    for (;;) {
        if (s->len == cap) {
            char *nd = realloc(s->data, cap * 2);

            if (nd == NULL)
                return -1;
            s->data = nd;
            cap *= 2;
        }
        if ((n = read(fd, s->data + s->len, cap - s->len)) < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
        s->len += (size_t)n;
    }
}

int
imp_source_load(struct imp_plan *p, struct imp_source *s)
{
    struct load_ctx lc = { p };
    size_t i;
    int fd;

    memset(s, 0, sizeof(*s));
    s->path = p->cfg->customers_source;
    (void)str_copy(s->real, sizeof(s->real), s->path);
    if ((fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return 0;
        imp_error(p, s->path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    s->exists = true;
    if (realpath(s->path, s->real) == NULL)
        (void)str_copy(s->real, sizeof(s->real), s->path);
    if (fstat(fd, &s->st) < 0 || read_all(fd, s) < 0) {
        imp_error(p, s->path, 0, "read error: %s", strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    for (i = 0; i < s->len; i++)
        s->lines += s->data[i] == '\n';
    if (s->len > 0 && s->data[s->len - 1] != '\n')
        s->lines++;
    (void)custsrc_parse_buf(s->path, s->data, s->len, keep_customer, source_error, &lc);
    return 0;
}

void
imp_source_free(struct imp_source *s)
{
    x_free(s->data);
    memset(s, 0, sizeof(*s));
}

/* --- the fragment --- */

static void
block_domains(struct sbuf *b, const struct imp_customer *c)
{
    size_t i;

    for (i = 0; i < c->ndomains; i++) {
        if (i % DOMAINS_PER_LINE == 0)
            sb_printf(b, "%s    domain       ", i ? "\n" : "");
        sb_printf(b, "%s%s", i % DOMAINS_PER_LINE ? " " : "", c->domains[i]);
    }
    if (c->ndomains > 0)
        sb_printf(b, "\n");
}

/* block_options - what the command line adds to every new customer. */
static void
block_options(struct sbuf *b, const struct imp_opts *o)
{
    if (o->port)
        sb_printf(b, "    port         %s\n", o->port);
    if (o->tls)
        sb_printf(b, "    tls          %s\n", o->tls);
    if (o->max_messages)
        sb_printf(b, "    max-messages %s\n", o->max_messages);
    if (o->max_bytes)
        sb_printf(b, "    max-bytes    %s\n", o->max_bytes);
    if (o->max_age)
        sb_printf(b, "    max-age      %s\n", o->max_age);
}

static void
block(struct sbuf *b, const struct imp_plan *p, const struct imp_customer *c)
{
    sb_printf(b, "customer %s\n", c->name);
    sb_printf(b, "    # from %s:%u\n", c->file, c->line);
    block_domains(b, c);
    if (c->address[0] != '\0')
        sb_printf(b, "    address      %s\n", c->address);
    if (c->delivery[0] != '\0')
        sb_printf(b, "    delivery     %s\n", c->delivery);
    sb_printf(b, "    trigger      %s\n", c->trigger ? c->trigger : "none");   /* none: after an error */
    if (c->secret[0] != '\0')
        sb_printf(b, "    secret       %s\n", c->secret);
    block_options(b, p->o);
}

int
imp_source_fragment(const struct imp_plan *p, char **buf_r, size_t *len_r)
{
    struct sbuf b = { NULL, 0, 0, false };
    char when[32];
    struct tm tm;
    size_t i, n = 0;

    *buf_r = NULL;
    *len_r = 0;
    for (i = 0; i < p->ncust; i++)
        n += p->cust[i].existing_line == 0;
    if (n == 0)
        return 0;
    if (localtime_r(&p->now, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
        (void)str_copy(when, sizeof(when), "?");
    sb_printf(&b, "\n# imported by autoturnctl import %s on %s\n", p->o->recipe, when);
    for (i = 0; i < p->ncust; i++)
        if (p->cust[i].existing_line == 0)
            block(&b, p, &p->cust[i]);
    if (b.failed) {
        x_free(b.b);
        return -1;
    }
    *buf_r = b.b;
    *len_r = b.len;
    return 0;
}

/* --- checking --- */

struct check_ctx {
    struct imp_plan *p;
    const struct imp_source *s;
    const char *tmpsrc;
};

static void
fragment_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    (void)file;
    imp_error(((struct check_ctx *)ctx)->p, FRAG_NAME, line, "%s", msg);
}

static int
drop_customer(void *ctx, struct customer *c)
{
    (void)ctx;
    customer_free(c);
    return 0;
}

/* compile_error - "TMP:LINE: msg" back to the source or the fragment. */
static void
compile_error(void *ctx, const char *msg)
{
    struct check_ctx *x = ctx;
    size_t tl = strlen(x->tmpsrc);
    unsigned long line;
    char *end;

    if (strncmp(msg, x->tmpsrc, tl) != 0 || msg[tl] != ':') {
        imp_error(x->p, FRAG_NAME, 0, "%s", msg);
        return;
    }
    line = strtoul(msg + tl + 1, &end, 10);
    if (end == msg + tl + 1 || *end != ':')
        imp_error(x->p, x->s->path, 0, "%s", msg + tl + 2);
    else if (line <= x->s->lines)
        imp_error(x->p, x->s->path, (unsigned)line, "%s", end + 2);
    else
        imp_error(x->p, FRAG_NAME, (unsigned)(line - x->s->lines), "%s", end + 2);
}

/* write_file - data then frag into a new file at path (mode 0600); the
 * blank line that starts the fragment is left out of an empty source. */
static int
write_file(const char *path, const struct imp_source *s, const char *frag, size_t flen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), rc = 0;
    size_t lead = s->len == 0 && flen > 0 && frag[0] == '\n';    /* no blank first line */

    if (fd < 0)
        return -1;
    if ((s->len > 0 && fd_write_all(fd, s->data, s->len) < 0) ||
        (s->len > 0 && s->data[s->len - 1] != '\n' && fd_write_all(fd, "\n", 1) < 0) ||
        (flen > 0 && fd_write_all(fd, frag + lead, flen - lead) < 0) || fsync(fd) < 0)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

int
imp_source_check(struct imp_plan *p, const struct imp_source *s, const char *frag, size_t flen)
{
    char dir[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    struct check_ctx x = { p, s, src };
    unsigned before = p->errors;

    if (flen > 0)
        (void)custsrc_parse_buf(FRAG_NAME, frag, flen, drop_customer, fragment_error, &x);
    if (p->errors != before)
        return 0;
    if (str_printf(dir, sizeof(dir), "%s/autoturnctl-import.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
        mkdtemp(dir) == NULL) {
        imp_error(p, FRAG_NAME, 0, "cannot create a temporary directory: %s", strerror(errno));
        return -1;
    }
    (void)str_printf(src, sizeof(src), "%s/customers", dir);
    (void)str_printf(dst, sizeof(dst), "%s/customers.cdb", dir);
    if (write_file(src, s, frag, flen) < 0)
        imp_error(p, FRAG_NAME, 0, "cannot write %s: %s", src, strerror(errno));
    else
        (void)custdb_compile(src, dst, compile_error, &x, NULL);
    (void)unlink(src);
    (void)unlink(dst);
    (void)rmdir(dir);
    return 0;
}

/* --- writing --- */

static void
print_error(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

/* unchanged - the source is still what was read. */
static bool
unchanged(const struct imp_source *s)
{
    struct stat st;

    if (stat(s->real, &st) < 0)
        return !s->exists && errno == ENOENT;
    return s->exists && st.st_size == s->st.st_size && st.st_mtim.tv_sec == s->st.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == s->st.st_mtim.tv_nsec && st.st_ino == s->st.st_ino;
}

/* replace - source + fragment into place (the file a symbolic link
 * points to, not the link). */
static int
replace(const struct imp_source *s, const char *frag, size_t flen, struct errbuf *err)
{
    char tmp[PATH_MAX], copy[PATH_MAX];
    mode_t mode = s->exists ? s->st.st_mode & 07777 : 0640;

    if (str_printf(tmp, sizeof(tmp), "%s.import-%ld", s->real, (long)getpid()) < 0 ||
        str_copy(copy, sizeof(copy), s->real) < 0) {
        errbuf_set(err, "%s: path too long", s->real);
        return -1;
    }
    if (write_file(tmp, s, frag, flen) < 0 || chmod(tmp, mode) < 0 ||
        (s->exists && geteuid() == 0 && chown(tmp, s->st.st_uid, s->st.st_gid) < 0)) {
        errbuf_set_errno(err, "cannot write %s", tmp);
        (void)unlink(tmp);
        return -1;
    }
    if (rename(tmp, s->real) < 0) {
        errbuf_set_errno(err, "cannot rename %s to %s", tmp, s->real);
        (void)unlink(tmp);
        return -1;
    }
    if (fsync_dir(dirname(copy)) < 0) {
        errbuf_set_errno(err, "cannot sync the directory of %s", s->real);
        return -1;
    }
    return 0;
}

int
imp_source_write(struct imp_plan *p, const struct imp_source *s, const char *frag, size_t flen,
                 struct custdb_compile_stats *st, struct errbuf *err)
{
    memset(st, 0, sizeof(*st));
    if (!unchanged(s)) {
        errbuf_set(err, "%s changed while the import ran: not replaced (run the import again)",
                   s->path);
        return -1;
    }
    if (flen > 0 && replace(s, frag, flen, err) < 0)
        return -1;
    if (!s->exists && flen == 0)
        return 0;
    if (custdb_compile(s->path, p->cfg->customers_table, print_error, NULL, st) < 0) {
        errbuf_set(err, "%s: does not compile; %s not changed", s->path, p->cfg->customers_table);
        return -1;
    }
    return 0;
}
