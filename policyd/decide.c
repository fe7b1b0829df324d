/* SPDX-License-Identifier: ISC */
/*
 * decide.c - the decisions of autoturn-policyd, one policy request at a
 * time: relay (OK for a relay-enabled customer's network or a live grant,
 * never for a held domain, DUNNO otherwise), grants on SMTP AUTH, the
 * AutoTURN notice (one flush request per address per notify_interval) and
 * ETRN (flush toward an authorised client; toward the customer's own host
 * or MX otherwise; never toward an unauthorised asker). Owns the AutoTURN
 * dedup cache: a fixed direct-mapped table keyed by a seeded address hash
 * (a collision can cause one extra notice, never a lost one).
 *
 * SECURITY: every attribute comes from the network through policy.c
 * (bounded, no control characters). sasl_username is believed only from
 * a trusted peer (main.c decides, see autoturn-policyd(8) SECURITY):
 * from anyone else it creates no grant and ties nothing to a customer. client_address is parsed strictly;
 * only names found in the customer table are echoed in replies. A table
 * lookup error is never "not found": relay gets DUNNO, ETRN a 4xx.
 */
#include <inttypes.h>
#include <unistd.h>

#include "ctlproto.h"
#include "decide.h"
#include "log.h"
#include "util.h"

#define ADDR_NOT_LOOKED_UP 2           /* ctx.addr_rc before addr_customer */

struct decide_notify {
    struct ipaddr addr;
    int64_t last;
};

/* what one request is about, looked up once */
struct ctx {
    const struct policy_request *req;
    bool trusted;                      /* sasl_username counts (a trusted peer) */
    int64_t now;
    bool have_addr;
    struct ipaddr addr;
    char ip[IPADDR_TEXT_MAX];          /* "" until ctx_ip */
    int addr_rc;                       /* 1/0/-1 or ADDR_NOT_LOOKED_UP (addr_customer) */
    struct customer *addr_cust;
    bool granted;
    char grant_customer[CUSTOMER_NAME_MAX + 1];
    const char *reason;                /* why: for the decision's log line */
};

int
decide_init(struct decide *d, const struct config *cfg, struct custdb *db, struct grants *g)
{
    d->cfg = cfg;
    d->db = db;
    d->grants = g;
    d->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    d->notify = x_calloc(DECIDE_NOTIFY_SLOTS, sizeof(*d->notify));
    return d->notify == NULL ? -1 : 0;
}

void
decide_free(struct decide *d)
{
    x_free(d->notify);
    d->notify = NULL;
}

/* decide_flush - fire-and-forget FLUSH to the flusher */

int
decide_flush(struct decide *d, const char *customer, const char *to, const char *reason)
{
    const struct sockspec *spec = &d->cfg->flusher.control;
    struct ctl_msg m;
    struct errbuf err;

    if (spec->kind != SOCKSPEC_UNIX) {
        log_warnx("%s: flush request not sent: flusher control socket is not unix:", customer);
        return -1;
    }
    if (ctl_msg_init(&m, "FLUSH") < 0 || ctl_msg_add(&m, "customer", customer) < 0 ||
        (to != NULL && ctl_msg_add(&m, "to", to) < 0) ||
        ctl_msg_add(&m, "reason", reason) < 0 || ctl_msg_add(&m, "source", "policyd") < 0) {
        log_warnx("%s: flush request not sent: cannot encode it", customer);
        return -1;
    }
    if (ctl_notify(spec->path, &m, &err) < 0) {
        log_warnx("%s: flush request not sent: %s", customer, err.msg);
        return -1;
    }
    log_info("%s: flush requested, to=%s, reason=%s", customer, to ? to : "(customer host)",
             reason);
    return 0;
}

/* --- lookups --- */

/* login_customer - the customer a SASL login belongs to: the customer
 * named like the login, else the one holding the login's domain part. */

static int
login_customer(struct decide *d, const char *login, char *name, size_t size)
{
    struct customer *c = NULL;
    struct errbuf err;
    const char *at, *e;
    int rc = 0;

    if (customer_name_valid(login, &e))
        rc = custdb_lookup_name(d->db, login, NULL, &err);
    if (rc == 1)
        return str_copy(name, size, login) < 0 ? 0 : 1;
    if (rc == 0 && (at = strrchr(login, '@')) != NULL && at[1] != '\0')
        rc = custdb_lookup_domain(d->db, at + 1, &c, NULL, &err);
    if (rc < 0) {
        log_warnx("sasl_username=%s: customer lookup failed: %s", login, err.msg);
        return -1;
    }
    if (rc == 1 && str_copy(name, size, c->name) < 0)
        rc = 0;
    customer_free(c);
    return rc;
}

/* ctx_ip - the client address as text (for logs and FLUSH), formatted
 * on first use: inet_ntop costs more than most decisions. Only with
 * have_addr. */
static const char *
ctx_ip(struct ctx *x)
{
    if (x->ip[0] == '\0')
        ipaddr_format(&x->addr, x->ip, sizeof(x->ip));
    return x->ip;
}

/* record_login - a request with sasl_username creates or renews a grant */

static void
record_login(struct decide *d, struct ctx *x)
{
    const char *user = x->req->sasl_username;
    char cust[CUSTOMER_NAME_MAX + 1] = "";
    struct grant_info gi;
    struct errbuf err;
    int had;

    had = grants_get(d->grants, &x->addr, x->now, &gi) == 1 && strcmp(gi.user, user) == 0 &&
          peer_grant_source_trusted(gi.source);
    if (had && x->now + (int64_t)d->cfg->policyd.grant_ttl <= gi.expires)
        return;
    if (had)
        str_copy(cust, sizeof(cust), gi.customer);
    else if (login_customer(d, user, cust, sizeof(cust)) < 0)
        cust[0] = '\0';
    if (grants_set(d->grants, &x->addr, user, cust, GRANT_SOURCE_SMTP_AUTH,
                   x->now + (int64_t)d->cfg->policyd.grant_ttl, x->now, &err) < 0)
        log_warnx("grant ip=%s user=%s: %s", ctx_ip(x), user, err.msg);
    if (!had)
        log_info("grant: ip=%s, user=%s, customer=%s, source=smtp-auth, ttl=%" PRIu64 "s",
                 ctx_ip(x), user, cust[0] ? cust : "(none)", d->cfg->policyd.grant_ttl);
}

static void
ctx_init(struct decide *d, struct ctx *x, const struct policy_request *req, bool trusted,
         int64_t now)
{
    struct grant_info gi;
    const char *e;

    memset(x, 0, sizeof(*x));
    x->req = req;
    x->trusted = trusted;
    x->now = now;
    x->addr_rc = ADDR_NOT_LOOKED_UP;
    x->have_addr = ipaddr_parse(req->client_address, &x->addr, &e) == 0;
    if (!x->have_addr)
        return;
    if (trusted && req->sasl_username[0] != '\0')
        record_login(d, x);
    if (grants_get(d->grants, &x->addr, now, &gi) == 1) {
        x->granted = true;
        str_copy(x->grant_customer, sizeof(x->grant_customer), gi.customer);
    }
}

/* addr_customer - the customer registered for the client address: 1 (in
 * x->addr_cust), 0 none, -1 lookup error (logged). Looked up on first use
 * only: most requests are decided before it matters (a recent notice, a
 * held recipient domain, a grant), and then the table probe and the
 * record's decoding are saved. */
static int
addr_customer(struct decide *d, struct ctx *x)
{
    struct errbuf err;

    if (x->addr_rc == ADDR_NOT_LOOKED_UP) {
        x->addr_rc = custdb_lookup_addr(d->db, &x->addr, &x->addr_cust, NULL, &err);
        if (x->addr_rc < 0)
            log_warnx("client_address=%s: customer lookup failed: %s", ctx_ip(x), err.msg);
    }
    return x->addr_rc;
}

/* --- AutoTURN --- */

static struct decide_notify *
notify_slot(struct decide *d, const struct ipaddr *a)
{
    uint64_t h = d->seed ^ 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < sizeof(a->bytes); i++)
        h = (h ^ a->bytes[i]) * 0x100000001b3ull;
    return &d->notify[(h ^ (h >> 32)) & (DECIDE_NOTIFY_SLOTS - 1)];
}

/* notify_recent - a notice for a went out less than notify_interval ago */
static bool
notify_recent(struct decide *d, const struct ipaddr *a, int64_t now)
{
    const struct decide_notify *slot = notify_slot(d, a);

    return slot->last != 0 && ipaddr_equal(&slot->addr, a) &&
           now < slot->last + (int64_t)d->cfg->policyd.notify_interval;
}

static void
notify_mark(struct decide *d, const struct ipaddr *a, int64_t now)
{
    struct decide_notify *slot = notify_slot(d, a);

    slot->addr = *a;
    slot->last = now;
}

/* autoturn_notice - a customer allowed to trigger on connect showed up */

static void
autoturn_notice(struct decide *d, struct ctx *x)
{
    struct customer *c = NULL;
    struct errbuf err;
    const char *name = NULL;
    int rc;

    if (notify_recent(d, &x->addr, x->now))
        return;                        /* checked first: most requests stop here */
    if ((rc = addr_customer(d, x)) == 1 && (x->addr_cust->triggers & TRIGGER_CONNECT))
        name = x->addr_cust->name;
    else if (rc == 0 && x->granted && x->grant_customer[0] != '\0') {
        rc = custdb_lookup_name(d->db, x->grant_customer, &c, &err);
        if (rc < 0)
            log_warnx("%s: customer lookup failed: %s", x->grant_customer, err.msg);
        if (rc == 1 && (c->triggers & TRIGGER_CONNECT))
            name = c->name;
    }
    if (name != NULL) {
        notify_mark(d, &x->addr, x->now);
        decide_flush(d, name, ctx_ip(x), "connect");
    }
    customer_free(c);
}

/* --- relay --- */

static const char *
relay_decide(struct decide *d, struct ctx *x)
{
    const char *rcpt = x->req->recipient, *at;
    struct errbuf err;
    int rc;

    x->reason = strcmp(x->req->policy_context, "notice") == 0 ? "notice"
              : !x->have_addr ? "no client address" : "not RCPT";
    if (!x->have_addr || strcmp(x->req->protocol_state, "RCPT") != 0 ||
        strcmp(x->req->policy_context, "notice") == 0)
        return "DUNNO";
    if ((at = strrchr(rcpt, '@')) != NULL && at[1] != '\0') {
        rc = custdb_lookup_domain(d->db, at + 1, NULL, NULL, &err);
        if (rc < 0)
            log_warnx("recipient=%s: customer lookup failed: %s", rcpt, err.msg);
        x->reason = rc < 0 ? "customer lookup failed" : "held domain";
        if (rc != 0)
            return "DUNNO";          /* held domain or lookup error: Postfix decides */
    }
    x->reason = "grant";
    if (x->granted)
        return "OK";
    x->reason = "registered network";
    if (addr_customer(d, x) == 1 && x->addr_cust->relay)
        return "OK";
    x->reason = "no grant";
    return "DUNNO";
}

/* --- ETRN --- */

/* etrn_customer - the customer an ETRN argument names: a held domain, or
 * a customer name (ETRN #name: Postfix strips the '#'); *by_name_r says
 * which. 1, 0, -1 as the lookups. */
static int
etrn_customer(struct decide *d, const char *dom, struct customer **c_r, bool *by_name_r)
{
    struct errbuf err;
    const char *e;
    int rc;

    *by_name_r = false;
    rc = custdb_lookup_domain(d->db, dom, c_r, NULL, &err);
    if (rc == 0 && customer_name_valid(dom, &e) &&
        (rc = custdb_lookup_name(d->db, dom, c_r, &err)) == 1)
        *by_name_r = true;
    if (rc < 0)
        log_warnx("ETRN %s: customer lookup failed: %s", dom, err.msg);
    return rc;
}

/* etrn_authorised - registered address, SASL login of that customer
 * (from a trusted peer), or a grant tied to it */

static int
etrn_authorised(struct decide *d, struct ctx *x, const struct customer *c)
{
    char cust[CUSTOMER_NAME_MAX + 1];
    int rc, addr_rc;

    if (!x->have_addr)
        return 0;
    if ((addr_rc = addr_customer(d, x)) == 1 && strcmp(x->addr_cust->name, c->name) == 0)
        return 1;
    if (x->granted && strcmp(x->grant_customer, c->name) == 0)
        return 1;
    if (x->trusted && x->req->sasl_username[0] != '\0') {
        rc = login_customer(d, x->req->sasl_username, cust, sizeof(cust));
        if (rc != 0)
            return rc < 0 ? -1 : strcmp(cust, c->name) == 0;
    }
    return addr_rc < 0 ? -1 : 0;
}

/* etrn_refused - log a refusal; the reply. A stranger asking by customer
 * name receives DUNNO, exactly as a name that exists nowhere does (Postfix
 * then answers 459), so that ETRN #name cannot probe for customers. */
static void
etrn_refused(struct ctx *x, const struct customer *c, bool by_name, const char *why,
             const char *reply_fmt, char *action, size_t size)
{
    const char *dom = x->req->etrn_domain;

    x->reason = why;
    log_info("%s: ETRN %s from %s refused: %s%s", c->name, dom,
             x->have_addr ? ctx_ip(x) : "(unknown)", why,
             by_name ? " (answered as for an unknown name)" : "");
    if (by_name)
        str_copy(action, size, "DUNNO");
    else
        str_printf(action, size, reply_fmt, dom);
}

static void
etrn_decide(struct decide *d, struct ctx *x, char *action, size_t size)
{
    const char *dom = x->req->etrn_domain;
    struct customer *c = NULL;
    bool by_name;
    int rc;

    str_copy(action, size, "DUNNO");
    x->reason = "not a held domain or customer";
    if (dom[0] == '\0' || (rc = etrn_customer(d, dom, &c, &by_name)) == 0)
        return;
    x->reason = "lookup failed";
    if (rc < 0 || (rc = etrn_authorised(d, x, c)) < 0) {
        str_copy(action, size, DECIDE_TEMPFAIL);
    } else if (!(c->triggers & TRIGGER_ETRN)) {
        etrn_refused(x, c, by_name && rc == 0, "trigger etrn not enabled", DECIDE_ETRN_DISABLED,
                     action, size);
    } else if (rc == 1) {
        x->reason = "flush to the asker";
        if (decide_flush(d, c->name, ctx_ip(x), "etrn") < 0)
            str_copy(action, size, DECIDE_TEMPFAIL);
    } else if (c->delivery == DELIVERY_HOST || c->delivery == DELIVERY_MX) {
        x->reason = "flush to the customer's host";
        if (decide_flush(d, c->name, NULL, "etrn") < 0)
            str_copy(action, size, DECIDE_TEMPFAIL);
    } else {
        etrn_refused(x, c, by_name, "not authorised", DECIDE_ETRN_DENIED, action, size);
    }
    customer_free(c);
}

/* log_decision - one line per request at info, postgrey's shape:
 * action=, reason=, then the request's fields that are set */
static void
log_decision(const struct ctx *x, const char *action)
{
    const struct policy_request *r = x->req;
    bool user = x->trusted && r->sasl_username[0] != '\0';

    log_info("action=%s, reason=%s, client_address=%s, protocol_state=%s%s%s%s%s%s%s", action,
             x->reason ? x->reason : "-", r->client_address[0] ? r->client_address : "(none)",
             r->protocol_state,
             user ? ", sasl_username=" : "", user ? r->sasl_username : "",
             r->recipient[0] ? ", recipient=" : "", r->recipient,
             r->etrn_domain[0] ? ", etrn_domain=" : "", r->etrn_domain);
}

/* decide_request - see decide.h */

void
decide_request(struct decide *d, const struct policy_request *req, bool trusted, int64_t now,
               char *action, size_t size)
{
    struct ctx x;

    ctx_init(d, &x, req, trusted, now);
    if (str_ieq(req->protocol_state, "ETRN")) {
        etrn_decide(d, &x, action, size);
    } else {
        if (x.have_addr)
            autoturn_notice(d, &x);
        str_copy(action, size, relay_decide(d, &x));
    }
    if (d->cfg->policyd.log_decisions)
        log_decision(&x, action);
    customer_free(x.addr_cust);
}
