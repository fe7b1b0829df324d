/* SPDX-License-Identifier: ISC */
/*
 * fuzz_util.h - small helpers shared by the libFuzzer targets: quiet
 * logging, a private scratch directory, a reproducible split of the input
 * into chunks, and splitting an input into fields. Header-only, for the
 * fuzz targets only.
 */
#ifndef AUTOTURN_FUZZ_UTIL_H
#define AUTOTURN_FUZZ_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* fuzz_quiet - only errors reach stderr (the modules log bad input as
 * warnings, which is what the fuzzer feeds them all the time). */
static inline void
fuzz_quiet(void)
{
    log_init("fuzz", LOG_DEST_STDERR, 0, LOG_LEVEL_ERROR);
}

static char fuzz_dir[256];

static inline int
fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static inline void
fuzz_rm_scratch(void)
{
    if (fuzz_dir[0] != '\0')
        (void)nftw(fuzz_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_scratch_dir - a private directory (on /dev/shm when there is one,
 * so that file-based targets cost no disk I/O), removed at a normal exit
 * (libFuzzer's end of -max_total_time or -runs); the path is static. One
 * per process. */
static inline const char *
fuzz_scratch_dir(const char *name)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    if (snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/autoturn-%s.XXXXXX", base, name)
        >= (int)sizeof(fuzz_dir) || mkdtemp(fuzz_dir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_rm_scratch);
    return fuzz_dir;
}

/* struct fuzz_rng - xorshift64, seeded from the input, so that a crash
 * reproduces from its input file alone. */
struct fuzz_rng {
    uint64_t s;
};

static inline void
fuzz_rng_seed(struct fuzz_rng *r, const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603u;       /* FNV-1a */
    size_t i;

    for (i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211u;
    r->s = h | 1;
}

static inline uint64_t
fuzz_rng_next(struct fuzz_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* fuzz_chunk - the size of the next chunk of input (1..max), biased to
 * small ones, which cut lines and attribute names in the middle. */
static inline size_t
fuzz_chunk(struct fuzz_rng *r, size_t max)
{
    uint64_t v = fuzz_rng_next(r);
    size_t n = (v & 3) == 0 ? (size_t)(v >> 8) % 4096 + 1 : (size_t)(v >> 8) % 8 + 1;

    return n < max ? n : max;
}

/* fuzz_field - the next field of data[*off..size) up to sep (not
 * included), as a NUL-terminated copy in buf (truncated to size - 1);
 * *off moves past the separator. Returns the field's length. */
static inline size_t
fuzz_field(const uint8_t *data, size_t size, size_t *off, char sep, char *buf, size_t bufsize)
{
    size_t start = *off, end = start, n;

    while (end < size && data[end] != (uint8_t)sep)
        end++;
    n = end - start < bufsize - 1 ? end - start : bufsize - 1;
    memcpy(buf, data + start, n);
    buf[n] = '\0';
    *off = end < size ? end + 1 : size;
    return n;
}

#endif
