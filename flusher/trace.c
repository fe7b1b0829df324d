/* SPDX-License-Identifier: ISC */
/*
 * trace.c - our Received: line and RFC 5322 dates (see trace.h). Owns no
 * state. The envelope's client fields were checked when the spool file
 * was read (envelope.c: an address, a name of [A-Za-z0-9._-], a HELO
 * argument of printable ASCII without parentheses or backslash), so they
 * cannot break the header's structure; the recipient has no control
 * characters and is left out when it would make the line too long.
 */
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "util.h"

void
trace_date(char *buf, size_t size, time_t t)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    long off;

    if (localtime_r(&t, &tm) == NULL) {
        str_copy(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    off = tm.tm_gmtoff / 60;
    if (str_printf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
                   days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60) < 0)
        buf[0] = '\0';
}

/* from_clause - "from HELO (NAME [ADDR])\r\n\t" or "" when the client is
 * unknown (a spool file written before it was recorded). */
static int
from_clause(const struct envelope *env, char *buf, size_t size)
{
    char lit[ENVELOPE_CLIENT_ADDR_MAX + 8];
    bool v6 = strchr(env->client_addr, ':') != NULL;

    buf[0] = '\0';
    if (env->client_addr[0] == '\0')
        return 0;
    if (str_printf(lit, sizeof(lit), "[%s%s]", v6 ? "IPv6:" : "", env->client_addr) < 0)
        return -1;
    if (env->helo[0] != '\0')
        return str_printf(buf, size, "from %s (%s%s%s)\r\n\t", env->helo, env->client_name,
                          env->client_name[0] != '\0' ? " " : "", lit);
    if (env->client_name[0] != '\0' && strcmp(env->client_name, "unknown") != 0)
        return str_printf(buf, size, "from %s (%s)\r\n\t", env->client_name, lit);
    return str_printf(buf, size, "from %s\r\n\t", lit);
}

int
trace_received(const struct envelope *env, const char *by, const char *rcpt, char *buf,
               size_t size)
{
    char from[2 * ENVELOPE_HOST_MAX + ENVELOPE_CLIENT_ADDR_MAX + 32], id[ENVELOPE_QUEUEID_MAX + 8];
    char forc[TRACE_FOR_MAX + 16], date[TRACE_DATE_MAX];

    id[0] = forc[0] = '\0';
    if (from_clause(env, from, sizeof(from)) < 0)
        return -1;
    if (env->queue_id[0] != '\0')
        (void)str_printf(id, sizeof(id), " id %s", env->queue_id);
    if (rcpt != NULL && strlen(rcpt) <= TRACE_FOR_MAX)
        (void)str_printf(forc, sizeof(forc), "\r\n\tfor <%s>", rcpt);
    trace_date(date, sizeof(date), env->arrival);
    return str_printf(buf, size, "Received: %sby %s (autoturn)%s%s; %s\r\n", from,
                      by[0] != '\0' ? by : "localhost", id, forc, date);
}
