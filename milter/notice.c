/* SPDX-License-Identifier: ISC */
/*
 * notice.c - the AutoTURN connect notice: a client whose address is
 * registered to a customer with the "connect" trigger makes the milter
 * send "FLUSH customer=NAME to=IP reason=connect source=milter" to the
 * flusher's control socket, fire and forget (ctl_notify never waits for
 * the peer), so a down or slow flusher never delays the SMTP session.
 *
 * Owns the rate limit of its own warnings (one per MILTER_LOG_INTERVAL
 * per kind), so that a down flusher or a broken table does not flood the
 * log at every connection.
 */
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "ctlproto.h"
#include "log.h"
#include "milter.h"
#include "util.h"

static pthread_mutex_t notice_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t notice_last[NOTICE_SLOT_COUNT];
static unsigned long notice_suppressed[NOTICE_SLOT_COUNT];

void
notice_warn(enum notice_slot slot, const char *fmt, ...)
{
    char text[ERRBUF_SIZE * 2];
    unsigned long skipped = 0;
    time_t now = time(NULL);
    bool emit = false;
    va_list ap;

    pthread_mutex_lock(&notice_lock);
    if (notice_last[slot] == 0 || now - notice_last[slot] >= MILTER_LOG_INTERVAL) {
        emit = true;
        skipped = notice_suppressed[slot];
        notice_suppressed[slot] = 0;
        notice_last[slot] = now;
    } else {
        notice_suppressed[slot]++;
    }
    pthread_mutex_unlock(&notice_lock);
    if (!emit)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);   /* truncation is fine for a log line */
    va_end(ap);
    if (skipped > 0)
        log_warnx("%s (%lu similar warnings suppressed)", text, skipped);
    else
        log_warnx("%s", text);
}

/* send_flush - the FLUSH notice for customer c and client a. */
static void
send_flush(const struct customer *c, const struct ipaddr *a)
{
    char ip[IPADDR_TEXT_MAX];
    struct ctl_msg m;
    struct errbuf err;

    (void)ipaddr_format(a, ip, sizeof(ip));
    if (ctl_msg_init(&m, "FLUSH") < 0 || ctl_msg_add(&m, "customer", c->name) < 0 ||
        ctl_msg_add(&m, "to", ip) < 0 || ctl_msg_add(&m, "reason", "connect") < 0 ||
        ctl_msg_add(&m, "source", "milter") < 0) {
        notice_warn(NOTICE_SLOT_SEND, "customer=%s, client=%s: cannot build flush notice",
                    c->name, ip);
        return;
    }
    if (ctl_notify(milter.notify_path, &m, &err) < 0) {
        notice_warn(NOTICE_SLOT_SEND, "customer=%s, client=%s: flush notice not sent: %s",
                    c->name, ip, err.msg);
        return;
    }
    log_info("customer=%s, client=%s: connect: flush requested", c->name, ip);
}

void
notice_connect(const struct ipaddr *a)
{
    struct customer *c = NULL;
    char ip[IPADDR_TEXT_MAX];
    struct errbuf err;
    int rc;

    if (milter.notify_path[0] == '\0')
        return;
    rc = custdb_lookup_addr(milter.db, a, &c, NULL, &err);
    if (rc < 0) {
        notice_warn(NOTICE_SLOT_LOOKUP, "client=%s: customer table lookup failed: %s",
                    ipaddr_format(a, ip, sizeof(ip)), err.msg);
        return;
    }
    if (rc == 1 && (c->triggers & TRIGGER_CONNECT) != 0)
        send_flush(c, a);
    customer_free(c);
}
