/* SPDX-License-Identifier: ISC */
/*
 * import_journal.c - the import journal (see import_journal.h). Owns the
 * journal file, its lock and the sorted set of tags read from it.
 *
 * SECURITY: the journal is written by root (or the spool owner) only; it
 * is still read with bounded lines, opened with O_NOFOLLOW, and a line
 * that is not a record is an error (a torn last line, left by a crash in
 * the middle of a write, is ignored).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "import_journal.h"
#include "util.h"

#define JOURNAL_LINE_MAX 8192
#define JOURNAL_HEADER   "# autoturn import journal: TAG CUSTOMER SPOOL-ID SOURCE\n"

struct imp_journal {
    int fd;                  /* -1 when opened read-only */
    char path[PATH_MAX];
    char **tags;             /* sorted after loading */
    size_t ntags, nsorted;
};

static int
tag_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
add_tag(struct imp_journal *j, const char *tag, size_t len)
{
    char **v;

    if (j->ntags % 256 == 0) {
        if ((v = x_reallocarray(j->tags, j->ntags + 256, sizeof(*v))) == NULL)
            return -1;
        j->tags = v;
    }
    if ((j->tags[j->ntags] = x_strndup(tag, len)) == NULL)
        return -1;
    j->ntags++;
    return 0;
}

/* record - take the tag of one line; -1 if it is not a record. */
static int
record(struct imp_journal *j, const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);

    if (sp == NULL || sp == line || sp - line >= IMP_TAG_MAX || strncmp(line, "import.", 7) != 0)
        return -1;
    return add_tag(j, line, (size_t)(sp - line));
}

/* load - every record of the open file fp; *torn_r: the last line has
 * no LF (a write cut short by a crash). */
static int
load(struct imp_journal *j, FILE *fp, bool *torn_r, struct errbuf *err)
{
    char line[JOURNAL_LINE_MAX];
    unsigned lineno = 0;
    size_t len;

    *torn_r = false;
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            if (feof(fp)) {
                *torn_r = true;          /* never completed: ignored */
                break;
            }
            errbuf_set(err, "%s:%u: line too long or NUL byte", j->path, lineno);
            return -1;
        }
        if (line[0] == '#' || len == 1)
            continue;
        if (record(j, line, len - 1) < 0) {
            errbuf_set(err, "%s:%u: not a journal record", j->path, lineno);
            return -1;
        }
    }
    if (ferror(fp)) {
        errbuf_set_errno(err, "read %s", j->path);
        return -1;
    }
    return 0;
}

static int
open_file(struct imp_journal *j, bool write, int *fd_r, struct errbuf *err)
{
    int flags = (write ? O_RDWR | O_CREAT | O_APPEND : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(j->path, flags, 0600);

    *fd_r = fd;
    if (fd < 0 && !(errno == ENOENT && !write)) {
        errbuf_set_errno(err, "open %s", j->path);
        return -1;
    }
    if (fd >= 0 && write && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            errbuf_set(err, "%s is locked: another autoturnctl import is running", j->path);
        else
            errbuf_set_errno(err, "lock %s", j->path);
        return -1;
    }
    return 0;
}

int
imp_journal_open(const char *path, bool write, struct imp_journal **j_r, struct errbuf *err)
{
    struct imp_journal *j;
    FILE *fp = NULL;
    bool torn = false;
    int fd = -1, rc = -1;

    *j_r = NULL;
    if ((j = x_calloc(1, sizeof(*j))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    j->fd = -1;
    if (str_copy(j->path, sizeof(j->path), path) < 0) {
        errbuf_set(err, "%s: path too long", path);
        goto out;
    }
    if (open_file(j, write, &fd, err) < 0)
        goto out;
    if (fd >= 0) {
        int rfd = dup(fd);

        if (rfd < 0 || lseek(rfd, 0, SEEK_SET) < 0 || (fp = fdopen(rfd, "r")) == NULL) {
            errbuf_set_errno(err, "read %s", path);
            if (rfd >= 0)
                close(rfd);
            goto out;
        }
        if (load(j, fp, &torn, err) < 0)
            goto out;
    }
    if (write && torn && fd_write_all(fd, "\n", 1) < 0) {
        errbuf_set_errno(err, "write %s", path);
        goto out;
    }
    if (j->ntags > 1)
        qsort(j->tags, j->ntags, sizeof(*j->tags), tag_cmp);
    j->nsorted = j->ntags;
    if (write) {
        j->fd = fd;
        fd = -1;
    }
    *j_r = j;
    j = NULL;
    rc = 0;
out:
    if (fp != NULL)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    imp_journal_close(j);
    return rc;
}

bool
imp_journal_has(const struct imp_journal *j, const char *tag)
{
    return j != NULL && j->nsorted > 0 &&
           bsearch(&tag, j->tags, j->nsorted, sizeof(*j->tags), tag_cmp) != NULL;
}

size_t
imp_journal_count(const struct imp_journal *j)
{
    return j ? j->ntags : 0;
}

int
imp_journal_add(struct imp_journal *j, const char *tag, const char *customer, const char *id,
                const char *source, struct errbuf *err)
{
    char line[JOURNAL_LINE_MAX];
    struct stat st;
    int len;

    if (j->fd < 0) {
        errbuf_set(err, "%s: not open for writing", j->path);
        return -1;
    }
    if (fstat(j->fd, &st) == 0 && st.st_size == 0 &&
        fd_write_all(j->fd, JOURNAL_HEADER, sizeof(JOURNAL_HEADER) - 1) < 0) {
        errbuf_set_errno(err, "write %s", j->path);
        return -1;
    }
    len = snprintf(line, sizeof(line), "%s %s %s %s\n", tag, customer, id, source);
    if (len < 0 || (size_t)len >= sizeof(line)) {
        errbuf_set(err, "journal record too long for %s", source);
        return -1;
    }
    if (fd_write_all(j->fd, line, (size_t)len) < 0 || fdatasync(j->fd) < 0) {
        errbuf_set_errno(err, "write %s", j->path);
        return -1;
    }
    return 0;
}

void
imp_journal_close(struct imp_journal *j)
{
    size_t i;

    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    for (i = 0; i < j->ntags; i++)
        x_free(j->tags[i]);
    x_free(j->tags);
    x_free(j);
}
