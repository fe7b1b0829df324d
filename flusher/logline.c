/* SPDX-License-Identifier: ISC */
/*
 * logline.c - the flusher's per-recipient log line (see logline.h).
 * Trusts nothing in text (a remote server's reply): it is logged as is
 * after the log module's own cleaning, and only digits and dots are taken
 * from it for dsn=.
 */
#include <ctype.h>
#include <string.h>

#include "log.h"
#include "logline.h"
#include "util.h"

/* enhanced - length of an RFC 3463 code "c.sss.ddd" at p (class 2, 4
 * or 5, 1-3 digits each after it), 0 if there is none */
static size_t
enhanced(const char *p)
{
    size_t i = 1, part, digits;

    if (p[0] != '2' && p[0] != '4' && p[0] != '5')
        return 0;
    for (part = 0; part < 2; part++) {
        if (p[i++] != '.')
            return 0;
        for (digits = 0; isdigit((unsigned char)p[i]) && digits < 3; digits++)
            i++;
        if (digits == 0 || isdigit((unsigned char)p[i]))
            return 0;
    }
    return p[i] == '\0' || p[i] == ' ' ? i : 0;
}

void
logline_dsn(const char *own, const char *text, const char *fallback, char *buf, size_t size)
{
    size_t n;

    if (own != NULL) {
        (void)str_copy(buf, size, own);
        return;
    }
    if (text != NULL && isdigit((unsigned char)text[0]) && isdigit((unsigned char)text[1])
        && isdigit((unsigned char)text[2]) && (text[3] == ' ' || text[3] == '-')) {
        if ((n = enhanced(text + 4)) > 0 && n < size && text[4] == text[0]) {
            memcpy(buf, text + 4, n);
            buf[n] = '\0';
            return;
        }
        if (text[0] == '2' || text[0] == '4' || text[0] == '5') {
            (void)str_printf(buf, size, "%c.0.0", text[0]);
            return;
        }
    }
    (void)str_copy(buf, size, fallback);
}

void
logline_rcpt(const char *id, const struct envelope *env, const char *rcpt, const char *customer,
             const char *relay, time_t now, const char *dsn, const char *status, const char *text)
{
    long delay = (long)(now - env->arrival);

    log_info("%s: to=<%s>%s%s, customer=%s, relay=%s, delay=%ld, dsn=%s, status=%s (%s)", id, rcpt,
             env->queue_id[0] != '\0' ? ", orig_queue_id=" : "", env->queue_id, customer, relay,
             delay < 0 ? 0 : delay, dsn, status, text);
}
