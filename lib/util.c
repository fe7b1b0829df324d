/* SPDX-License-Identifier: ISC */
/*
 * util.c - bounded string copies, checked formatting, allocation wrappers
 * and the few fd helpers (write everything, fsync a directory) that every
 * module needs. Owns no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

int
str_copy(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);

    if (size == 0)
        return -1;
    if (len >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

int
str_printf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return 0;
}

void
str_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static int
ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

bool
str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return false;
    return *a == *b;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *
str_trim(char *s)
{
    size_t len;

    while (is_blank(*s))
        s++;
    len = strlen(s);
    while (len > 0 && is_blank(s[len - 1]))
        s[--len] = '\0';
    return s;
}

void *
x_calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

void *
x_reallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    size_t total = n * size;

    return realloc(p, total != 0 ? total : 1);
}

char *
x_strdup(const char *s)
{
    return strdup(s);
}

char *
x_strndup(const char *s, size_t n)
{
    return strndup(s, n);
}

void
x_free(void *p)
{
    free(p);
}

int
fd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
fd_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int
fd_set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc, saved;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int
path_join(char *dst, size_t size, const char *a, const char *b)
{
    if (str_printf(dst, size, "%s/%s", a, b) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

void
errbuf_set(struct errbuf *e, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);  /* truncation is acceptable for a message */
    va_end(ap);
}

void
errbuf_set_errno(struct errbuf *e, const char *fmt, ...)
{
    int saved = errno;
    size_t len;
    va_list ap;

    if (e == NULL)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    len = strlen(e->msg);
    (void)snprintf(e->msg + len, sizeof(e->msg) - len, ": %s", strerror(saved));
    errno = saved;
}

void
fd_close_except(const int *keep, size_t n)
{
    unsigned v[16], lo = 3, t;
    size_t i, j, k = 0;

    for (i = 0; i < n && k < ARRAY_LEN(v); i++)
        if (keep[i] >= 3)
            v[k++] = (unsigned)keep[i];
    for (i = 1; i < k; i++)             /* insertion sort: k is tiny */
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (i = 0; i < k; i++) {
        if (v[i] > lo)
            (void)close_range(lo, v[i] - 1, 0);
        lo = v[i] + 1;
    }
    (void)close_range(lo, ~0U, 0);
}
