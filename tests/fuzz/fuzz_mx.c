/* SPDX-License-Identifier: ISC */
/*
 * fuzz_mx.c - libFuzzer target for the MX answer parser of the flusher
 * (flusher/mxparse.c): the input is the bytes res_query would return for
 * "delivery mx" customers (a whole DNS message, compression pointers and
 * all).
 *
 * Invariants checked: never more records than asked for; every host is a
 * NUL-terminated name shorter than NS_MAXDNAME that the resolver library
 * converts to wire form and back to the same text; the preference is a
 * 16-bit value.
 */
#include <resolv.h>

#include "fuzz_util.h"
#include "mxparse.h"

#define MX_MAX 10                        /* MX_MAX in deliver.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mx mx[MX_MAX];
    unsigned char wire[NS_MAXCDNAME];
    char back[NS_MAXDNAME];
    int n, i;

    if (size > 65535)
        return 0;
    memset(mx, 0xa5, sizeof(mx));     /* a host the parser did not write shows */
    n = mxparse_answer(data, (int)size, mx, MX_MAX);
    FUZZ_CHECK(n >= -1 && n <= MX_MAX);
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(mx[i].pref <= 0xffff);
        FUZZ_CHECK(memchr(mx[i].host, '\0', sizeof(mx[i].host)) != NULL);
        FUZZ_CHECK(ns_name_pton(mx[i].host, wire, sizeof(wire)) >= 0);
        FUZZ_CHECK(ns_name_ntop(wire, back, sizeof(back)) >= 0);
        FUZZ_CHECK(strcmp(back, mx[i].host) == 0);
    }
    return 0;
}
