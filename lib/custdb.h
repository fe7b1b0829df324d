/* SPDX-License-Identifier: ISC */
/*
 * custdb.h - the reader of the compiled customer table (a tinycdb file
 * written by custdb_compile.h): lookups by name, by domain, by address;
 * it notices a new table file and switches to it without a restart.
 * Lookups cost O(1) in the number of customers: a domain costs at most
 * one probe per label; an address at most one probe per distinct prefix
 * length present in the table.
 *
 * The reader is thread-safe (the milter calls it from many threads).
 *
 * SECURITY: the table file is trusted to come from autoturnctl compile,
 * but every record read from it is bounds-checked and decoded strictly:
 * a truncated or corrupt file is a lookup error (-1), never "not found".
 */
#ifndef AUTOTURN_CUSTDB_H
#define AUTOTURN_CUSTDB_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "customer.h"
#include "util.h"

struct custdb;

/* How a lookup matched, for logs and "autoturnctl lookup". */
struct custdb_match {
    char rule[DOMAIN_MAX + 3];   /* "virt.dom", ".virt.dom", "10.0.0.0/8", or the name */
};

/* custdb_new - a reader for the table at path; does not open it yet (a
 * missing table is an error at lookup time, not at start). NULL on ENOMEM. */
struct custdb *custdb_new(const char *path);
void custdb_free(struct custdb *db);

/* custdb_set_check_interval - how often lookups stat() the file for a new
 * table (default 1000 ms; 0 = on every lookup, for tests). */
void custdb_set_check_interval(struct custdb *db, unsigned ms);

/* custdb_report_metrics - this reader is the daemon's own: its table
 * loads, refusals and state go to the customer table metrics (metrics.h).
 * Other readers (the flusher's children) keep quiet. */
void custdb_report_metrics(struct custdb *db);

/* custdb_refresh - check now; switch to a new file if inode/mtime/size
 * changed. 0 = a usable table is loaded (new or old); -1 = none usable
 * (err says why). A new file that fails validation keeps the old table;
 * the reader logs that once per refused file (log_warnx), and logs a
 * switch to a new table (log_info): it is the place that decides. */
int custdb_refresh(struct custdb *db, struct errbuf *err);

/* Lookups: 1 found (*c_r set, free with customer_free), 0 not found,
 * -1 error (err says why: no table, corrupt table, ENOMEM). c_r and m may
 * be NULL when only existence matters. */
int custdb_lookup_name(struct custdb *db, const char *name, struct customer **c_r,
                       struct errbuf *err);
/* domain: case-insensitive, one trailing dot ignored; exact entry first,
 * then the nearest ".parent" entry. An invalid domain is "not found". */
int custdb_lookup_domain(struct custdb *db, const char *domain, struct customer **c_r,
                         struct custdb_match *m, struct errbuf *err);
/* address: longest-prefix match over all registered networks. */
int custdb_lookup_addr(struct custdb *db, const struct ipaddr *a, struct customer **c_r,
                       struct custdb_match *m, struct errbuf *err);

/* custdb_foreach - every customer in table order; fn returns 0 to go on,
 * non-zero to stop (that value is returned). -1 on a read error. */
typedef int custdb_foreach_fn(void *ctx, const struct customer *c);
int custdb_foreach(struct custdb *db, custdb_foreach_fn *fn, void *ctx, struct errbuf *err);

/* custdb_count - number of customers in the loaded table; -1 on error. */
long custdb_count(struct custdb *db, struct errbuf *err);

#endif
