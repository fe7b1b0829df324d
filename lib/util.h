/* SPDX-License-Identifier: ISC */
/*
 * util.h - small bounded-string and memory helpers shared by every module.
 *
 * Every .c file of autoturn includes this header first (after system
 * headers): it poisons the unbounded string functions so that they cannot
 * be used by mistake.
 */
#ifndef AUTOTURN_UTIL_H
#define AUTOTURN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#ifndef AUTOTURN_NO_POISON
#pragma GCC poison strcpy strcat sprintf vsprintf gets stpcpy
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* str_copy - copy src into dst of size bytes; 0 on success, -1 if truncated
 * (dst is then NUL-terminated and holds a prefix). */
int str_copy(char *dst, size_t size, const char *src);

/* str_printf - snprintf that returns 0, or -1 on error or truncation. */
int str_printf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* str_lower - ASCII lower-case s in place. */
void str_lower(char *s);

/* str_ieq - ASCII case-insensitive equality. */
bool str_ieq(const char *a, const char *b);

/* str_trim - strip leading/trailing blanks (space, tab, CR, LF) in place;
 * returns the start of the trimmed text inside s. */
char *str_trim(char *s);

/* xmalloc family: return NULL on failure like malloc (never abort:
 * request paths must survive ENOMEM). x_free(NULL) is safe. */
void *x_calloc(size_t n, size_t size);
void *x_reallocarray(void *p, size_t n, size_t size);
char *x_strdup(const char *s);
char *x_strndup(const char *s, size_t n);
void x_free(void *p);

/* fd helpers: return 0 / -1 with errno. */
int fd_write_all(int fd, const void *buf, size_t len);
int fd_set_nonblock(int fd);
int fd_set_cloexec(int fd);
int fsync_dir(const char *dir);   /* open(dir, O_RDONLY|O_DIRECTORY) + fsync */
/* fd_close_except - close every descriptor >= 3 but keep[0..n) (entries
 * < 0 are ignored; at most 16 are kept): what a forked child does first. */
void fd_close_except(const int *keep, size_t n);

/* struct errbuf - a caller-owned error text, so that shared objects stay
 * thread-safe (the milter runs callbacks in threads). Functions that can
 * fail with a specific reason take a struct errbuf * (NULL allowed). */
#define ERRBUF_SIZE 512
struct errbuf {
    char msg[ERRBUF_SIZE];
};

/* errbuf_set - format the text (truncated safely); NULL e is a no-op. */
void errbuf_set(struct errbuf *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* errbuf_set_errno - like errbuf_set, then ": " strerror(errno); errno is kept. */
void errbuf_set_errno(struct errbuf *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* path_join - dst = a "/" b; 0, or -1 (errno ENAMETOOLONG) if it does not fit. */
int path_join(char *dst, size_t size, const char *a, const char *b);

#endif
