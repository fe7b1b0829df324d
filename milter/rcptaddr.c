/* SPDX-License-Identifier: ISC */
/*
 * rcptaddr.c - SMTP paths and ESMTP arguments as the MTA hands them to the
 * milter: the mailbox for the envelope, its domain for the customer
 * lookup, and the parameters that must survive in the spool.
 *
 * SECURITY: the text comes from the SMTP client through the MTA. It is
 * only scanned (never written in place), every copy is bounded by the
 * caller's buffer, and control characters never reach the spool.
 */
#include <strings.h>

#include "milter.h"
#include "util.h"

/* path_bounds - the mailbox inside arg: without <> and source route. */
static void
path_bounds(const char *arg, const char **start_r, size_t *len_r)
{
    const char *p = arg, *colon;
    size_t len = strlen(arg);

    if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
        p++;
        len -= 2;
    }
    if (len > 0 && p[0] == '@' && (colon = memchr(p, ':', len)) != NULL) {
        len -= (size_t)(colon + 1 - p);       /* RFC 5321 4.1.2 source route */
        p = colon + 1;
    }
    *start_r = p;
    *len_r = len;
}

/* last_at - offset of the last '@' outside a quoted string, or -1. */
static long
last_at(const char *p, size_t len)
{
    bool quoted = false;
    long at = -1;
    size_t i;

    for (i = 0; i < len; i++) {
        if (quoted && p[i] == '\\' && i + 1 < len)
            i++;
        else if (p[i] == '"')
            quoted = !quoted;
        else if (!quoted && p[i] == '@')
            at = (long)i;
    }
    return at;
}

int
rcptaddr_domain(const char *arg, char *domain_r, size_t size)
{
    const char *p;
    size_t len, dlen;
    long at;

    domain_r[0] = '\0';
    path_bounds(arg, &p, &len);
    if ((at = last_at(p, len)) < 0)
        return 0;
    dlen = len - (size_t)at - 1;
    if (dlen == 0 || dlen >= size)
        return 0;
    memcpy(domain_r, p + at + 1, dlen);
    domain_r[dlen] = '\0';
    return 1;
}

int
rcptaddr_mailbox(const char *arg, char *addr_r, size_t size, const char **error_r)
{
    const char *p;
    size_t len, i;

    addr_r[0] = '\0';
    path_bounds(arg, &p, &len);
    if (len >= size || len > ENVELOPE_ADDR_MAX) {
        *error_r = "address too long";
        return -1;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
            *error_r = "control character in address";
            return -1;
        }
    }
    memcpy(addr_r, p, len);
    addr_r[len] = '\0';
    return 0;
}

/* param_kept - is the keyword of "KEY[=VALUE]" in keep? */
static bool
param_kept(const char *param, const char *const *keep)
{
    size_t klen = strcspn(param, "=");
    size_t i;

    for (i = 0; keep[i] != NULL; i++)
        if (strlen(keep[i]) == klen && strncasecmp(param, keep[i], klen) == 0)
            return true;
    return false;
}

int
rcptaddr_params(char **argv, const char *const *keep, char *buf, size_t size)
{
    size_t used = 0, n;
    int i;

    buf[0] = '\0';
    if (argv[0] == NULL)
        return 0;
    for (i = 1; argv[i] != NULL; i++) {
        if (!param_kept(argv[i], keep))
            continue;
        n = strlen(argv[i]);
        if (used + (used > 0) + n + 1 > size)
            return -1;
        if (used > 0)
            buf[used++] = ' ';
        memcpy(buf + used, argv[i], n + 1);
        used += n;
    }
    return 0;
}
