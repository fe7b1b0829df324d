/* SPDX-License-Identifier: ISC */
/*
 * custsrc.h - parser for the human-edited customer source (format in
 * autoturn-customers(5)). Checks everything that can be checked within
 * one customer block; cross-customer checks (a domain claimed twice, a
 * name used twice) belong to the compiler (custdb_compile).
 *
 * SECURITY: the source is admin-edited but may be generated from other
 * systems; every line is bounded (CUSTSRC_LINE_MAX) and NUL bytes are
 * errors.
 */
#ifndef AUTOTURN_CUSTSRC_H
#define AUTOTURN_CUSTSRC_H

#include <stddef.h>

#include "customer.h"

#define CUSTSRC_LINE_MAX 4096

/* Called once per complete, valid customer; takes ownership of c.
 * Return 0 to go on, -1 to stop parsing. */
typedef int custsrc_customer_fn(void *ctx, struct customer *c);

/* Called once per error; msg has no file/line prefix. A message that
 * starts with CUSTSRC_WARNING is a warning: it is not counted as an error
 * and its block is still handed on (e.g. relay for a very wide network). */
typedef void custsrc_error_fn(void *ctx, const char *file, unsigned line, const char *msg);

#define CUSTSRC_WARNING "warning: "

/* custsrc_parse_file - returns the number of errors found (0 = clean);
 * -1 if the file cannot be opened/read (reported through errfn with line 0).
 * A customer block with errors is reported and not passed to custfn. */
int custsrc_parse_file(const char *path, custsrc_customer_fn *custfn,
                       custsrc_error_fn *errfn, void *ctx);

/* custsrc_parse_buf - the same on a memory buffer; name is used in errors. */
int custsrc_parse_buf(const char *name, const char *buf, size_t len,
                      custsrc_customer_fn *custfn, custsrc_error_fn *errfn, void *ctx);

#endif
