/* SPDX-License-Identifier: ISC */
/*
 * mxparse.h - the MX records in a DNS answer (res_query's bytes), taken
 * apart with the resolver library's bounds-checked ns_* functions. No
 * lookup, no sorting: deliver.c asks the resolver and orders the hosts.
 */
#ifndef AUTOTURN_MXPARSE_H
#define AUTOTURN_MXPARSE_H

#include <arpa/nameser.h>
#include <stddef.h>

struct mx {
    unsigned pref;
    char host[NS_MAXDNAME];        /* "." for the null MX (RFC 7505) */
};

/* mxparse_answer - up to max MX records of the answer section of
 * ans[0..len), in answer order; records of another type, with short data
 * or a name that does not decompress are skipped. The count, or -1 when
 * the message itself is malformed. */
int mxparse_answer(const unsigned char *ans, int len, struct mx *mx, size_t max);

#endif
