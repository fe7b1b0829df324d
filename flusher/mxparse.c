/* SPDX-License-Identifier: ISC */
/*
 * mxparse.c - MX records out of a DNS answer (see mxparse.h).
 *
 * SECURITY: the answer comes from the network through the local
 * resolver. Every read goes through ns_initparse / ns_parserr /
 * ns_name_uncompress, which check offsets against the message; the
 * record data length is checked before the preference is read; host
 * names are bounded by NS_MAXDNAME.
 */
#include <resolv.h>

#include "mxparse.h"

int
mxparse_answer(const unsigned char *ans, int len, struct mx *mx, size_t max)
{
    const unsigned char *rd;
    ns_msg msg;
    ns_rr rr;
    int i;
    size_t n = 0;

    if (len < 0 || ns_initparse(ans, len, &msg) < 0)
        return -1;
    for (i = 0; i < ns_msg_count(msg, ns_s_an) && n < max; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 || ns_rr_type(rr) != ns_t_mx ||
            ns_rr_rdlen(rr) < 3)
            continue;
        rd = ns_rr_rdata(rr);
        mx[n].pref = ns_get16(rd);
        if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd + 2, mx[n].host,
                               sizeof(mx[n].host)) < 0)
            continue;
        n++;
    }
    return (int)n;
}
