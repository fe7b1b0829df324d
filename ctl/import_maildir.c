/* SPDX-License-Identifier: ISC */
/*
 * import_maildir.c - held mail in the qmail recipes' maildirs (see
 * import_maildir.h): listing new/ and cur/, reading each message's head
 * and size, the import tag, and the streaming copy into a spool writer.
 * Owns no state beyond the plan it fills.
 *
 * SECURITY: the maildirs belong to the old system. Files are opened with
 * O_NOFOLLOW and must be regular files; the head is read into a bounded
 * buffer and parsed by import_parse.c; the body is copied in fixed-size
 * chunks, so memory does not grow with a message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "envelope.h"
#include "import_maildir.h"
#include "util.h"

#define HEAD_READ   (2 * IMP_HEAD_MAX)   /* bytes read for the two qmail-local lines */
#define COPY_CHUNK  65536
#define TAG_HEX     32                   /* hex digits of SHA-256 in a tag */

/* --- per message --- */

/* unique_len - the maildir unique name: up to ":2,flags". */
static size_t
unique_len(const char *name)
{
    const char *colon = strchr(name, ':');

    return colon ? (size_t)(colon - name) : strlen(name);
}

/* make_tag - "import." + 32 hex of SHA-256(customer, unique name, size). */
static int
make_tag(const char *customer, const char *name, uint64_t size, char tag[IMP_TAG_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char in[CUSTOMER_NAME_MAX + NAME_MAX + 64], md[EVP_MAX_MD_SIZE];
    size_t n = 0, ulen = unique_len(name), clen = strlen(customer);
    unsigned mdlen = 0, i;
    int len;

    memcpy(in, "autoturn-import", 16);
    n = 16;
    memcpy(in + n, customer, clen + 1);
    n += clen + 1;
    memcpy(in + n, name, ulen);
    n += ulen;
    in[n++] = '\0';
    if ((len = snprintf((char *)in + n, sizeof(in) - n, "%llu", (unsigned long long)size)) < 0)
        return -1;
    n += (size_t)len;
    if (EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen * 2 < TAG_HEX)
        return -1;
    memcpy(tag, "import.", 7);
    for (i = 0; i < TAG_HEX / 2; i++) {
        tag[7 + 2 * i] = hex[md[i] >> 4];
        tag[8 + 2 * i] = hex[md[i] & 15];
    }
    tag[7 + TAG_HEX] = '\0';
    return 0;
}

/* arrival - the seconds a maildir name starts with, else the mtime. */
static time_t
arrival(const char *name, const struct stat *st, time_t now)
{
    unsigned long long t = 0;
    const char *p;

    for (p = name; *p >= '0' && *p <= '9' && p - name < 12; p++)
        t = t * 10 + (unsigned long long)(*p - '0');
    if (p > name && *p == '.' && t > 0 && t <= (unsigned long long)now + 86400)
        return (time_t)t;
    return st->st_mtime > 0 ? st->st_mtime : now;
}

/* count_lf - LF bytes from the current offset of fd to its end. */
static int
count_lf(int fd, uint64_t *n_r, struct errbuf *err, const char *path)
{
    char *buf = malloc(COPY_CHUNK), *p, *end;
    uint64_t n = 0;
    ssize_t r;

    if (buf == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    while ((r = read(fd, buf, COPY_CHUNK)) > 0 || (r < 0 && errno == EINTR))
        for (p = buf, end = buf + (r > 0 ? r : 0); (p = memchr(p, '\n', (size_t)(end - p))); p++)
            n++;
    x_free(buf);
    if (r < 0) {
        errbuf_set_errno(err, "read %s", path);
        return -1;
    }
    *n_r = n;
    return 0;
}

/* read_head - up to HEAD_READ bytes from the start of fd. */
static ssize_t
read_head(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t r;

    while (len < size) {
        if ((r = read(fd, buf + len, size - len)) < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -1 : (ssize_t)len;
        len += (size_t)r;
    }
    return (ssize_t)len;
}

int
imp_msg_envelope(const struct imp_msg *m, const char *customer, struct envelope *e,
                 struct errbuf *err)
{
    if (str_copy(e->customer, sizeof(e->customer), customer) < 0 ||
        str_copy(e->queue_id, sizeof(e->queue_id), m->tag) < 0) {
        errbuf_set(err, "customer name or tag too long");
        return -1;
    }
    e->arrival = m->arrival;
    if (envelope_set_sender(e, m->sender, "", err) < 0 || envelope_add_rcpt(e, m->rcpt, "", err) < 0)
        return -1;
    return 0;
}

/* envelope_len - the size of the envelope block m gets in our spool. */
static int
envelope_len(const struct imp_msg *m, const char *customer, uint64_t *len_r, struct errbuf *err)
{
    struct envelope e;
    char *hdr = NULL;
    size_t len = 0;
    int rc = -1;

    envelope_init(&e);
    if (imp_msg_envelope(m, customer, &e, err) == 0 && envelope_format(&e, &hdr, &len, err) == 0) {
        *len_r = len;
        rc = 0;
    }
    x_free(hdr);
    envelope_clear(&e);
    return rc;
}

/* examine - head, sizes and envelope of the open file fd into m. */
static int
examine(int fd, const struct stat *st, const char *customer, const char *prefix,
        struct imp_msg *m, struct errbuf *err)
{
    char head[HEAD_READ], sender[ENVELOPE_ADDR_MAX + 1], rcpt[ENVELOPE_ADDR_MAX + 1];
    uint64_t lfs = 0, env = 0;
    size_t skip;
    ssize_t n;

    if ((n = read_head(fd, head, sizeof(head))) < 0) {
        errbuf_set_errno(err, "read");
        return -1;
    }
    if (imp_parse_head(head, (size_t)n, prefix, sender, rcpt, sizeof(sender), &skip, &m->crlf,
                       err) < 0)
        return -1;
    m->skip = skip;
    m->src_size = (uint64_t)st->st_size;
    if ((m->sender = x_strdup(sender)) == NULL || (m->rcpt = x_strdup(rcpt)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    if (!m->crlf && (lseek(fd, (off_t)skip, SEEK_SET) < 0 || count_lf(fd, &lfs, err, m->path) < 0))
        return -1;
    if (envelope_len(m, customer, &env, err) < 0)
        return -1;
    m->size = env + m->src_size - m->skip + lfs;
    return 0;
}

/* add_msg - room for one more message in the plan. */
static struct imp_msg *
add_msg(struct imp_plan *p)
{
    struct imp_msg *v;

    if (p->nmsgs % 64 == 0) {
        if ((v = x_reallocarray(p->msgs, p->nmsgs + 64, sizeof(*v))) == NULL)
            return NULL;
        p->msgs = v;
    }
    v = &p->msgs[p->nmsgs];
    memset(v, 0, sizeof(*v));
    return v;
}

static void
msg_clear(struct imp_msg *m)
{
    x_free(m->path);
    x_free(m->sender);
    x_free(m->rcpt);
    memset(m, 0, sizeof(*m));
}

/* one_file - examine dir/name; added to the plan, or reported. */
static void
one_file(struct imp_plan *p, size_t ci, const struct imp_maildir *md, int dfd, const char *dir,
         const char *name)
{
    struct imp_customer *c = &p->cust[ci];
    struct imp_msg *m;
    struct errbuf err = {""};
    struct stat st;
    int fd;

    if ((m = add_msg(p)) == NULL || (m->path = malloc(PATH_MAX)) == NULL ||
        str_printf(m->path, PATH_MAX, "%s/%s", dir, name) < 0) {
        imp_error(p, dir, 0, "%s: out of memory or path too long", name);
        if (m != NULL)
            msg_clear(m);
        return;
    }
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0)
        errbuf_set_errno(&err, "open");
    else if (!S_ISREG(st.st_mode))
        errbuf_set(&err, "not a regular file");
    else if (strchr(name, '\n') != NULL)
        errbuf_set(&err, "line feed in the file name");
    else if ((m->arrival = arrival(name, &st, p->now)), examine(fd, &st, c->name, md->prefix, m, &err) == 0 &&
             make_tag(c->name, name, m->src_size, m->tag) < 0)
        errbuf_set(&err, "cannot compute the import tag");
    if (fd >= 0)
        close(fd);
    if (err.msg[0] != '\0') {
        imp_error(p, m->path, 0, "%s", err.msg);
        msg_clear(m);
        return;
    }
    m->cust = ci;
    p->nmsgs++;
}

/* scan_sub - every message file in md/sub. */
static int
scan_sub(struct imp_plan *p, size_t ci, const struct imp_maildir *md, const char *sub)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (str_printf(dir, sizeof(dir), "%s/%s", md->path, sub) < 0) {
        imp_error(p, md->path, 0, "path too long");
        return -1;
    }
    if ((d = opendir(dir)) == NULL) {
        if (errno == ENOENT)
            return 0;                      /* new/ or cur/ not made yet: nothing there */
        imp_error(p, dir, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (sub[0] == 't')
            p->tmp_files++;
        else
            one_file(p, ci, md, dirfd(d), dir, de->d_name);
        errno = 0;
    }
    if (errno != 0) {
        imp_error(p, dir, 0, "cannot read: %s", strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

int
imp_maildir_scan(struct imp_plan *p, size_t ci, const struct imp_maildir *md)
{
    unsigned tmp_before = p->tmp_files;
    struct stat st;

    if (stat(md->path, &st) < 0 && errno == ENOENT) {
        imp_note(p, md->file, md->line, "warning: maildir %s does not exist: no held mail for %s",
                 md->path, p->cust[ci].name);
        return 0;
    }
    if (scan_sub(p, ci, md, "new") < 0 || scan_sub(p, ci, md, "cur") < 0 ||
        scan_sub(p, ci, md, "tmp") < 0)
        return -1;
    if (p->tmp_files > tmp_before)
        imp_note(p, md->path, 0, "warning: tmp/ holds %u files: a delivery is under way (stop "
                 "qmail-send first); they are not imported", p->tmp_files - tmp_before);
    return 0;
}

/* --- copying --- */

int
imp_msg_open(const struct imp_msg *m, struct errbuf *err)
{
    struct stat st;
    int fd = open(m->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        errbuf_set_errno(err, "open %s", m->path);
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != m->src_size) {
        errbuf_set(err, "%s changed since it was read (is the old system still running?)",
                   m->path);
        close(fd);
        return -1;
    }
    return fd;
}

/* put_crlf - buf[0..n) into w with every LF written as CR LF. */
static int
put_crlf(struct spool_writer *w, const char *buf, size_t n, struct errbuf *err)
{
    const char *p = buf, *end = buf + n, *lf;

    while (p < end) {
        if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
            return spool_writer_write(w, p, (size_t)(end - p), err);
        if (spool_writer_write(w, p, (size_t)(lf - p), err) < 0 ||
            spool_writer_write(w, "\r\n", 2, err) < 0)
            return -1;
        p = lf + 1;
    }
    return 0;
}

int
imp_msg_copy(int fd, const struct imp_msg *m, struct spool_writer *w, struct errbuf *err)
{
    char *buf = malloc(COPY_CHUNK);
    ssize_t n;
    int rc = -1;

    if (buf == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    if (lseek(fd, (off_t)m->skip, SEEK_SET) < 0) {
        errbuf_set_errno(err, "seek %s", m->path);
        goto out;
    }
    while ((n = read(fd, buf, COPY_CHUNK)) > 0 || (n < 0 && errno == EINTR)) {
        if (n < 0)
            continue;
        if ((m->crlf ? spool_writer_write(w, buf, (size_t)n, err)
                     : put_crlf(w, buf, (size_t)n, err)) < 0)
            goto out;
    }
    if (n < 0)
        errbuf_set_errno(err, "read %s", m->path);
    else
        rc = 0;
out:
    x_free(buf);
    return rc;
}
