/* SPDX-License-Identifier: ISC */
/*
 * custdb_compile.h - build the customer table from its source: parse,
 * check across customers, write the tinycdb file atomically (temp file,
 * fsync, rename, fsync dir). The reader is custdb.h.
 */
#ifndef AUTOTURN_CUSTDB_COMPILE_H
#define AUTOTURN_CUSTDB_COMPILE_H

#include <stddef.h>

struct custdb_compile_stats {
    size_t customers;
    size_t domains;
    size_t networks;
};

/* errfn receives "SRC:LINE: message" (or "SRC: message") per error, and
 * "SRC:LINE: warning: message" per warning (not an error: the table is
 * still written). */
typedef void custdb_error_fn(void *ctx, const char *msg);

/* custdb_compile - parse src, check across customers (domain claimed by two
 * customers, duplicate names, the same network registered twice), and
 * write dst atomically. 0 on success; -1 if there was any error (dst is
 * then untouched and every error was passed to errfn). */
int custdb_compile(const char *src, const char *dst, custdb_error_fn *errfn, void *ctx,
                   struct custdb_compile_stats *stats);

#endif
