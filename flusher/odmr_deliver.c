/* SPDX-License-Identifier: ISC */
/*
 * odmr_deliver.c - the delivery process of one ODMR turnaround (see
 * odmr_deliver.h). Owns, for its lifetime, the customer's spool lock and
 * the data channel to the session.
 *
 * SECURITY: the customer name comes from the broker, which checked the
 * credentials; the domain list comes from the untrusted client through
 * the session process and is parsed and checked again here (every domain
 * must be held for this customer, or nothing is sent). The bytes after
 * the turnaround are the customer's SMTP server's, read by smtpc under
 * its usual bounds and deadlines.
 */
#include <errno.h>
#include <unistd.h>

#include "ctlproto.h"
#include "custdb.h"
#include "customer.h"
#include "deliver.h"
#include "log.h"
#include "odmr_deliver.h"

struct domains {
    char *v[ODMR_DOMAINS_MAX];
    size_t n;
    char buf[CTL_VALUE_MAX + 1 + ODMR_DOMAINS_MAX];
};

/* answer - the one line the session turns into the client's ATRN reply */
static void
answer(int fd, const char *code, const char *text)
{
    char line[CTL_LINE_MAX];
    struct ctl_msg m;
    int len;

    if (ctl_msg_init(&m, "ATRN") < 0 || ctl_msg_add(&m, "code", code) < 0
        || ctl_msg_add(&m, "text", text) < 0 || (len = ctl_format(&m, line, sizeof(line))) < 0)
        return;
    (void)fd_write_all(fd, line, (size_t)len);
}

/* parse_domains - "d1,d2,..." normalised; -1 on a bad list */
static int
parse_domains(const char *list, struct domains *d)
{
    char copy[CTL_VALUE_MAX + 1], *p, *next;
    const char *e;
    size_t used = 0, k;

    d->n = 0;
    if (list[0] == '\0')
        return 0;
    if (str_copy(copy, sizeof(copy), list) < 0)
        return -1;
    for (p = copy; p != NULL; p = next) {
        if ((next = strchr(p, ',')) != NULL)
            *next++ = '\0';
        if (d->n == ODMR_DOMAINS_MAX || used >= sizeof(d->buf)
            || domain_normalise(p, d->buf + used, sizeof(d->buf) - used, &e) < 0)
            return -1;
        d->v[d->n++] = d->buf + used;
        k = strlen(d->buf + used) + 1;
        used += k;
    }
    return 0;
}

/* domains_owned - NULL if every domain is held for c, else the first that
 * is not (*error_r: it could not be looked up) */
static const char *
domains_owned(struct custdb *db, const struct customer *c, const struct domains *d,
              bool *error_r, struct errbuf *err)
{
    struct customer *o;
    size_t i;
    int rc;

    *error_r = false;
    for (i = 0; i < d->n; i++) {
        o = NULL;
        if ((rc = custdb_lookup_domain(db, d->v[i], &o, NULL, err)) < 0) {
            *error_r = true;
            return d->v[i];
        }
        rc = rc == 1 && strcmp(o->name, c->name) == 0;
        customer_free(o);
        if (!rc)
            return d->v[i];
    }
    return NULL;
}

/* checked - the customer, its domains and its lock; after any refusal
 * (answered and logged) NULL */
static struct customer *
checked(const struct odmr_delivery_args *a, struct custdb *db, struct domains *d, int *lockfd)
{
    struct customer *c = NULL;
    struct errbuf err;
    const char *bad;
    bool tablerr;
    int rc;

    if ((rc = custdb_lookup_name(db, a->customer, &c, &err)) <= 0) {
        log_warnx("odmr: client=%s, customer=%s: ATRN refused: %s", a->peer, a->customer,
                  rc < 0 ? err.msg : "no longer in the customer table");
        answer(a->fd, "451", "4.3.0 Unable to process ATRN request now");
        return NULL;
    }
    if (parse_domains(a->domains, d) < 0) {
        log_warnx("odmr: client=%s, customer=%s: ATRN refused: bad domain list", a->peer, c->name);
        answer(a->fd, "501", "5.5.4 Syntax: ATRN [domain[,domain...]]");
    } else if ((bad = domains_owned(db, c, d, &tablerr, &err)) != NULL) {
        log_warnx("odmr: client=%s, customer=%s: ATRN refused: %s %s", a->peer, c->name, bad,
                  tablerr ? "cannot be looked up" : "is not a domain of this customer");
        answer(a->fd, tablerr ? "451" : "450", tablerr ? "4.3.0 Unable to process ATRN request now"
                                                       : "4.7.1 Access denied to you");
    } else if ((rc = spool_lock(a->spool, c->name, false, lockfd, &err)) <= 0) {
        if (rc == 0)
            log_info("odmr: client=%s, customer=%s: ATRN refused: a delivery for this customer "
                     "is running", a->peer, c->name);
        else
            log_warnx("odmr: client=%s, customer=%s: cannot lock the spool: %s", a->peer,
                      c->name, err.msg);
        answer(a->fd, "451", rc == 0 ? "4.4.0 A delivery for this customer is already running; "
                                       "try again later" : "4.3.0 Unable to process ATRN request now");
    } else {
        return c;
    }
    customer_free(c);
    return NULL;
}

/* turnaround - 250 if anything is held for the domains, then the engine */
static void
turnaround(const struct odmr_delivery_args *a, const struct customer *c, const struct domains *d)
{
    struct spool_entry *v = NULL;
    struct deliver_req r;
    struct deliver_result res;
    struct errbuf err;
    size_t n = 0;
    int rc;

    memset(&r, 0, sizeof(r));
    r.cfg = a->cfg;
    r.spool = a->spool;
    r.cust = c;
    r.to = "";
    r.reason = "atrn";
    r.client_fd = -1;
    r.status_fd = -1;
    if (spool_list(a->spool, c->name, &v, &n, &err) < 0
        || (rc = deliver_any_for(&r, d->n > 0 ? (const char *const *)d->v : NULL, d->n, v, n,
                                 &err)) < 0) {
        log_warnx("odmr: client=%s, customer=%s: cannot read the spool: %s", a->peer, c->name,
                  err.msg);
        answer(a->fd, "451", "4.3.0 Unable to process ATRN request now");
    } else if (rc == 0) {
        log_info("odmr: client=%s, customer=%s: ATRN: nothing held", a->peer, c->name);
        answer(a->fd, "453", "You have no mail");
    } else {
        answer(a->fd, "250", "OK now reversing the connection");
        log_info("odmr: client=%s, customer=%s: ATRN accepted (%s); turning the connection "
                 "around", a->peer, c->name, d->n > 0 ? "listed domains" : "all domains");
        deliver_reversed(&r, a->fd, NULL, NULL, a->peer,
                         (unsigned)a->cfg->flusher.odmr.turnaround_timeout,
                         d->n > 0 ? (const char *const *)d->v : NULL, d->n, v, n, &res);
    }
    x_free(v);
}

void
odmr_delivery(const struct odmr_delivery_args *a)
{
    struct custdb *db;
    struct customer *c;
    struct domains d;
    int lockfd = -1;

    deliver_child_setup(a->cfg, a->fd, a->status_fd);
    if (a->cfg->flusher.flush_timeout > 0)
        alarm((unsigned)a->cfg->flusher.flush_timeout);   /* default action: the process dies */
    if ((db = custdb_new(a->cfg->customers_table)) == NULL) {
        answer(a->fd, "451", "4.3.0 Unable to process ATRN request now");
        _exit(1);
    }
    if ((c = checked(a, db, &d, &lockfd)) != NULL) {
        turnaround(a, c, &d);                 /* consumes a->fd when it turns around */
        spool_unlock(lockfd);
        customer_free(c);
    }
    custdb_free(db);
    _exit(0);
}
