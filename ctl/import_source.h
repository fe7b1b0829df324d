/* SPDX-License-Identifier: ISC */
/*
 * import_source.h - the customer source side of "autoturnctl import":
 * read the source as it is (which customers, domains and networks exist),
 * build the fragment of new customer blocks, check that source + fragment
 * compiles (into a private temporary table), and on --apply replace the
 * source atomically with source + fragment and compile the real table.
 */
#ifndef AUTOTURN_CTL_IMPORT_SOURCE_H
#define AUTOTURN_CTL_IMPORT_SOURCE_H

#include <limits.h>
#include <sys/stat.h>

#include "custdb_compile.h"
#include "import.h"

struct imp_source {
    const char *path;
    char real[PATH_MAX];        /* the file replaced: path with symbolic links resolved */
    bool exists;
    char *data;                 /* the whole file */
    size_t len;
    unsigned lines;
    struct stat st;
};

/* imp_source_load - read and parse cfg's customer source into
 * p->existing (an absent file is an empty source); its errors are
 * reported as errors of the import. -1 if it cannot be read. */
int imp_source_load(struct imp_plan *p, struct imp_source *s);

/* imp_source_fragment - the blocks of the customers that are not in the
 * source yet, with a comment naming the import (malloc'd; *len_r 0 = none). */
int imp_source_fragment(const struct imp_plan *p, char **buf_r, size_t *len_r);

/* imp_source_check - parse the fragment, and compile source + fragment
 * into a temporary table; every problem is an error of the import
 * ("SOURCE:LINE: ..." or "import fragment:LINE: ..."). */
int imp_source_check(struct imp_plan *p, const struct imp_source *s, const char *frag,
                     size_t flen);

/* imp_source_write - replace the source by source + fragment (temporary
 * file beside it, same owner and mode, fsync, rename, fsync of the
 * directory), then compile cfg's table; compile errors go to stderr. */
int imp_source_write(struct imp_plan *p, const struct imp_source *s, const char *frag,
                     size_t flen, struct custdb_compile_stats *st, struct errbuf *err);

void imp_source_free(struct imp_source *s);

#endif
