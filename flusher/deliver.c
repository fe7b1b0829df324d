/* SPDX-License-Identifier: ISC */
/*
 * deliver.c - one flush, in a forked child of autoturn-flusher (see
 * deliver.h). Owns nothing beyond the child's lifetime: the customer's
 * spool lock, one SMTP connection at a time, and the waiting client's
 * socket. A crash or kill -9 here loses nothing: a message is deleted
 * only after the remote 250 (or after its DSN was accepted), so at worst
 * it is delivered again.
 *
 * SECURITY: the targets come from the customer table and from to=,
 * which is honoured only inside the customer's registered networks or
 * when autoturn-policyd holds a live grant of it for this customer that
 * a trusted source made (SMTP AUTH from a trusted policy peer, or the
 * control socket: peer_grant_source_trusted); any other grant relays
 * but never draws held mail.
 * SMTP replies are parsed by smtpc (bounded); DNS answers are parsed
 * with the resolver library's bounds-checked ns_* functions.
 */
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "ctlproto.h"
#include "deliver.h"
#include "dsn.h"
#include "log.h"
#include "logline.h"
#include "metrics.h"
#include "mxparse.h"
#include "peer.h"
#include "smtpc.h"
#include "sockspec.h"
#include "trace.h"
#include "util.h"

#define CLIENT_SEND_TIMEOUT 10       /* seconds a waiting client may stall a write */
#define MX_MAX              10       /* MX records used */
#define DNS_ANSWER_MAX      8192
#define PROGRESS_REPLY_MAX  200      /* reply text in a PROGRESS line */
#define RELAY_MAX           (DOMAIN_MAX + IPADDR_TEXT_MAX + 16)

struct target {
    struct sockaddr_storage sa;
    socklen_t len;
    char relay[RELAY_MAX];           /* "host[ip]:port" */
};

struct targets {
    struct target v[DELIVER_TARGETS_MAX];
    size_t n;
};

enum fate {
    FATE_SENT,
    FATE_DEFERRED,
    FATE_BOUNCED,
    FATE_SKIPPED,                    /* not asked for (ATRN domain list): kept, not reported */
};

struct rcpt_outcome {
    enum fate fate;
    char text[SMTPC_REPLY_TEXT_MAX];
    const char *status;              /* our own decision's RFC 3463 code, or NULL: the
                                        server's reply (text) says it */
};

/* What became of one message, for the flush loop. */
enum msg_result {
    MSG_DONE,                        /* tried: its recipients have their outcomes */
    MSG_RETRY,                       /* not tried: the server ended the session or refused
                                        MAIL with 4xx after earlier deliveries (f->stop) */
};

struct flush {
    const struct deliver_req *r;
    const char *name;                /* customer */
    struct smtpc *c;
    const char *relay;
    const struct targets *targets;   /* to reconnect to; NULL: no reconnecting (ODMR) */
    unsigned reconnects;             /* made in this flush */
    unsigned long session_sent;      /* messages delivered over the current connection */
    unsigned long delivered, deferred, bounced;
    bool stop;                       /* the connection is gone: keep the rest */
    char error[ERRBUF_SIZE];         /* why the flush stopped, "" if it did not */
    int client_fd;
    const char *const *only;         /* recipient domains asked for; NULL = all */
    size_t nonly;
};

/* --- authorisation and targets --- */

#define GRANT_CHECK_TIMEOUT_MS 2000  /* asking autoturn-policyd about a grant */

static const char *grant_socket;     /* its control socket; NULL or "" = not asked */

/* to_addr - "ip", "ip:port" (v4) or "[v6]:port" -> address; the port is
 * ignored: delivery always uses the customer's port */

static int
to_addr(const char *to, struct ipaddr *a, struct errbuf *err)
{
    char buf[SOCKSPEC_PATH_MAX];
    const char *e, *colon = strchr(to, ':');
    char *end;

    if (str_copy(buf, sizeof(buf), to) < 0) {
        errbuf_set(err, "bad to= address: too long");
        return -1;
    }
    if (buf[0] == '[' && (end = strchr(buf, ']')) != NULL) {
        *end = '\0';
        memmove(buf, buf + 1, strlen(buf + 1) + 1);
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        buf[colon - to] = '\0';
    }
    if (ipaddr_parse(buf, a, &e) < 0) {
        errbuf_set(err, "bad to= address '%s': %s", to, e);
        return -1;
    }
    return 0;
}

static bool
registered(const struct customer *c, const struct ipaddr *a)
{
    size_t i;

    for (i = 0; i < c->naddrs; i++)
        if (ipnet_contains(&c->addrs[i], a))
            return true;
    return false;
}

static bool
has_host_addr(const struct customer *c)
{
    size_t i;

    for (i = 0; i < c->naddrs; i++)
        if (c->addrs[i].prefix == ipaddr_bits(&c->addrs[i].addr))
            return true;
    return false;
}

void
deliver_set_grant_socket(const char *path)
{
    grant_socket = path;
}

/* granted - does autoturn-policyd hold a live grant of ip for c, made by
 * a trusted source (CHECK on its control socket)? 1 yes; 0 no, err says
 * why (also when it cannot be asked: no answer is no grant) */

static int
granted(const struct customer *c, const char *ip, struct errbuf *err)
{
    struct ctl_msg req, fin;
    struct errbuf e = {.msg = "request too long"};
    const char *gc, *code, *text, *src;

    if (grant_socket == NULL || grant_socket[0] == '\0') {
        errbuf_set(err, "%s is not a registered address of %s", ip, c->name);
        return 0;
    }
    if (ctl_msg_init(&req, "CHECK") < 0 || ctl_msg_add(&req, "ip", ip) < 0 ||
        ctl_request(grant_socket, &req, NULL, NULL, &fin, GRANT_CHECK_TIMEOUT_MS, &e) < 0) {
        errbuf_set(err, "%s is not a registered address of %s, and its grants cannot be "
                   "checked (policy service: %s)", ip, c->name, e.msg);
        return 0;
    }
    code = ctl_msg_get(&fin, "code");
    text = ctl_msg_get(&fin, "text");
    gc = ctl_msg_get(&fin, "customer");
    src = ctl_msg_get(&fin, "source");
    if (strcmp(fin.verb, "OK") == 0 && gc != NULL && strcmp(gc, c->name) == 0 &&
        src != NULL && peer_grant_source_trusted(src))
        return 1;
    if (strcmp(fin.verb, "OK") == 0 && gc != NULL && strcmp(gc, c->name) == 0)
        errbuf_set(err, "%s is not a registered address of %s, and its grant comes from an "
                   "untrusted source (%s)", ip, c->name, src != NULL ? src : "none");
    else if (strcmp(fin.verb, "OK") == 0)
        errbuf_set(err, "%s is not a registered address of %s, and its grant is %s%s", ip,
                   c->name, gc && gc[0] ? "for " : "for no customer", gc ? gc : "");
    else if (code != NULL && strcmp(code, "not-found") == 0)
        errbuf_set(err, "%s is not a registered address of %s, nor granted to it", ip, c->name);
    else
        errbuf_set(err, "%s is not a registered address of %s, and its grants cannot be "
                   "checked (policy service: %s)", ip, c->name, text ? text : "bad reply");
    return 0;
}

int
deliver_authorise(const struct customer *c, const char *to, struct errbuf *err)
{
    struct ipaddr a;
    char text[IPADDR_TEXT_MAX];

    if (to[0] != '\0' && to_addr(to, &a, err) < 0)
        return -1;
    if (c->delivery != DELIVERY_CONNECTING_IP)
        return 1;
    if (to[0] == '\0') {
        if (has_host_addr(c))
            return 1;
        errbuf_set(err, "no target: %s delivers to the connecting address and has no "
                   "registered single address", c->name);
        return 0;
    }
    if (registered(c, &a))
        return 1;
    return granted(c, ipaddr_format(&a, text, sizeof(text)), err);
}

static void
target_add(struct targets *t, const struct sockaddr *sa, socklen_t len, const char *host,
           unsigned port)
{
    struct target *x;
    struct ipaddr a;
    char ip[IPADDR_TEXT_MAX];

    if (t->n >= DELIVER_TARGETS_MAX || len > sizeof(x->sa) || ipaddr_from_sockaddr(sa, &a) < 0)
        return;
    x = &t->v[t->n];
    memcpy(&x->sa, sa, len);
    x->len = len;
    ipaddr_format(&a, ip, sizeof(ip));
    if (str_printf(x->relay, sizeof(x->relay), "%s[%s]:%u", host[0] ? host : ip, ip, port) < 0)
        return;
    t->n++;
}

static void
target_ip(struct targets *t, const struct ipaddr *a, unsigned port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, a->bytes, 4);
        target_add(t, (struct sockaddr *)s4, sizeof(*s4), "", port);
    } else {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, a->bytes, 16);
        target_add(t, (struct sockaddr *)s6, sizeof(*s6), "", port);
    }
}

/* target_host - every address of host (getaddrinfo); 0, or -1 with err */

static int
target_host(struct targets *t, const char *host, unsigned port, struct errbuf *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    char serv[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    (void)str_printf(serv, sizeof(serv), "%u", port);
    if ((rc = getaddrinfo(host, serv, &hints, &res)) != 0) {
        errbuf_set(err, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next)
        target_add(t, ai->ai_addr, ai->ai_addrlen, host, port);
    freeaddrinfo(res);
    return 0;
}

static int
mx_cmp(const void *a, const void *b)
{
    const struct mx *x = a, *y = b;

    return (x->pref > y->pref) - (x->pref < y->pref);
}

/* mx_lookup - MX records of domain sorted by preference; count, 0 when
 * there are none (use the domain's own address), -1 with err */

static int
mx_lookup(const char *domain, struct mx *mx, size_t max, struct errbuf *err)
{
    unsigned char ans[DNS_ANSWER_MAX];
    int len, n;

    len = res_query(domain, ns_c_in, ns_t_mx, ans, sizeof(ans));
    if (len < 0) {
        if (h_errno == HOST_NOT_FOUND || h_errno == NO_DATA)
            return 0;
        errbuf_set(err, "MX lookup for %s failed: %s", domain, hstrerror(h_errno));
        return -1;
    }
    if ((n = mxparse_answer(ans, len, mx, max)) < 0) {
        errbuf_set(err, "MX lookup for %s: malformed answer", domain);
        return -1;
    }
    qsort(mx, (size_t)n, sizeof(*mx), mx_cmp);
    return n;
}

/* mx_shuffle - random order within each run of equal preference
 * (RFC 5321 5.1), the runs still sorted */
static void
mx_shuffle(struct mx *mx, int n)
{
    struct mx tmp;
    int i, j, k;

    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n && mx[j].pref == mx[i].pref; j++)
            ;
        for (k = j - 1; k > i; k--) {
            int r = i + (int)arc4random_uniform((uint32_t)(k - i + 1));

            tmp = mx[k];
            mx[k] = mx[r];
            mx[r] = tmp;
        }
    }
}

/* local_addr - is sa one of this host's interface addresses? */
static bool
local_addr(const struct ifaddrs *ifs, const struct sockaddr *sa)
{
    struct ipaddr a, b;

    if (ipaddr_from_sockaddr(sa, &a) < 0)
        return false;
    for (; ifs != NULL; ifs = ifs->ifa_next)
        if (ifs->ifa_addr != NULL && ipaddr_from_sockaddr(ifs->ifa_addr, &b) == 0
            && a.family == b.family && memcmp(a.bytes, b.bytes, a.family == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

/* host_ieq - host names equal, case and a trailing dot aside */
static bool
host_ieq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    la -= la > 0 && a[la - 1] == '.';
    lb -= lb > 0 && b[lb - 1] == '.';
    return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

/* mx_is_me - is this MX host this host: our host name, or an address of
 * ours? (a name that does not resolve is not us) */
static bool
mx_is_me(const char *host, const char *myname, const struct ifaddrs *ifs)
{
    struct addrinfo hints, *res = NULL, *ai;
    bool me = false;

    if (host_ieq(host, myname))
        return true;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return false;
    for (ai = res; ai != NULL && !me; ai = ai->ai_next)
        me = local_addr(ifs, ai->ai_addr);
    freeaddrinfo(res);
    return me;
}

/* mx_loop_guard - RFC 5321 5.1: drop the MX hosts at or below our own
 * preference once we find ourselves in the list; the number kept, 0 when
 * mail would loop back to us (err says which host is us) */
static int
mx_loop_guard(const struct customer *c, const char *myhost, const char *domain, struct mx *mx,
              int n, struct errbuf *err)
{
    char myname[NS_MAXDNAME];
    struct ifaddrs *ifs = NULL;
    int i;

    if (str_copy(myname, sizeof(myname), myhost) < 0)
        myname[0] = '\0';
    if (myname[0] == '\0' && gethostname(myname, sizeof(myname)) < 0)
        myname[0] = '\0';
    if (getifaddrs(&ifs) < 0)
        ifs = NULL;                              /* then only the name can tell */
    for (i = 0; i < n && !mx_is_me(mx[i].host, myname, ifs); i++)
        ;
    if (i < n) {
        unsigned me = mx[i].pref;

        log_info("customer=%s: MX %s (preference %u) of %s is this host; MX hosts at or "
                 "below that preference are not used", c->name, mx[i].host, me, domain);
        while (i > 0 && mx[i - 1].pref == me)
            i--;
        if (i == 0)
            errbuf_set(err, "mail for %s loops back to myself (MX %s, preference %u, is "
                       "this host)", domain, mx[0].host, me);
    }
    if (ifs != NULL)
        freeifaddrs(ifs);
    return i;
}

static int
targets_mx(struct targets *t, const struct customer *c, const char *myhost, struct errbuf *err)
{
    static struct mx mx[MX_MAX];
    const char *domain = c->delivery_host;
    int i, n;

    if (domain[0] == '\0' && c->ndomains > 0)
        domain = c->domains[0][0] == '.' ? c->domains[0] + 1 : c->domains[0];
    if (domain[0] == '\0') {
        errbuf_set(err, "delivery mx: no domain");
        return -1;
    }
    if ((n = mx_lookup(domain, mx, MX_MAX, err)) < 0)
        return -1;
    if (n == 0)
        return target_host(t, domain, c->port, err);
    if (n == 1 && (mx[0].host[0] == '\0' || strcmp(mx[0].host, ".") == 0)) {
        errbuf_set(err, "%s has a null MX: it accepts no mail", domain);
        return -1;
    }
    mx_shuffle(mx, n);
    if ((n = mx_loop_guard(c, myhost, domain, mx, n, err)) == 0)
        return -1;
    for (i = 0; i < n; i++)
        if (target_host(t, mx[i].host, c->port, err) < 0)
            log_warnx("customer=%s: MX %s: %s", c->name, mx[i].host, err->msg);
    if (t->n == 0)
        errbuf_set(err, "no usable address for the MX hosts of %s", domain);
    return t->n == 0 ? -1 : 0;
}

static int
targets_get(struct targets *t, const struct customer *c, const char *to, const char *myhost,
            struct errbuf *err)
{
    struct ipaddr a;
    size_t i;

    t->n = 0;
    switch (c->delivery) {
    case DELIVERY_CONNECTING_IP:
        if (to[0] != '\0') {
            if (to_addr(to, &a, err) < 0)
                return -1;
            target_ip(t, &a, c->port);
            return 0;
        }
        for (i = 0; i < c->naddrs; i++)
            if (c->addrs[i].prefix == ipaddr_bits(&c->addrs[i].addr))
                target_ip(t, &c->addrs[i].addr, c->port);
        return 0;
    case DELIVERY_HOST:
        return target_host(t, c->delivery_host, c->port, err);
    case DELIVERY_MX:
        return targets_mx(t, c, myhost, err);
    }
    return -1;
}

/* --- talking to the waiting client --- */

static void
client_send(struct flush *f, const struct ctl_msg *m)
{
    char line[CTL_LINE_MAX];
    int len;

    if (f->client_fd < 0)
        return;
    if ((len = ctl_format(m, line, sizeof(line))) < 0) {
        log_warnx("customer=%s: reply line does not fit; not sent", f->name);
        return;
    }
    if (fd_write_all(f->client_fd, line, (size_t)len) < 0) {
        log_info("customer=%s: the waiting client went away; flushing on", f->name);
        close(f->client_fd);
        f->client_fd = -1;
    }
}

static void
client_progress(struct flush *f, const char *id, const char *rcpt, const char *status,
                const char *reply)
{
    char r[PROGRESS_REPLY_MAX + 1];
    struct ctl_msg m;

    (void)str_copy(r, sizeof(r), reply);   /* truncation is fine for a progress line */
    if (ctl_msg_init(&m, "PROGRESS") < 0 || ctl_msg_add(&m, "id", id) < 0 ||
        ctl_msg_add(&m, "rcpt", strlen(rcpt) < CTL_VALUE_MAX / 2 ? rcpt : "(too long)") < 0 ||
        ctl_msg_add(&m, "status", status) < 0 || ctl_msg_add(&m, "reply", r) < 0)
        return;
    client_send(f, &m);
}

static void
client_final_err(struct flush *f, const char *code, const char *text)
{
    struct ctl_msg m;

    ctl_reply_err(&m, code, text);
    client_send(f, &m);
}

/* --- outcomes --- */

static void
all_fates(struct rcpt_outcome *o, size_t n, enum fate fate, const char *text)
{
    size_t i;

    for (i = 0; i < n; i++) {
        o[i].fate = fate;
        (void)str_copy(o[i].text, sizeof(o[i].text), text);
    }
}

/* our_fates - every recipient bounced by a decision of ours (status) */
static void
our_fates(struct rcpt_outcome *o, size_t n, const char *status, const char *text)
{
    size_t i;

    all_fates(o, n, FATE_BOUNCED, text);
    for (i = 0; i < n; i++)
        o[i].status = status;
}

static enum fate
fate_of(int code)
{
    return code >= 500 ? FATE_BOUNCED : code >= 200 && code < 300 ? FATE_SENT : FATE_DEFERRED;
}

/* classify - per-recipient outcome of one smtpc_send that returned 0 */

static void
classify(const struct smtpc *c, const struct smtpc_result *res, uint64_t size,
         struct rcpt_outcome *o)
{
    char text[SMTPC_REPLY_TEXT_MAX];
    size_t i;

    switch (res->status) {
    case SMTPC_TOO_BIG:
        (void)str_printf(text, sizeof(text), "message too big for the customer's server: "
                         "%llu bytes, its SIZE limit is %llu; not sent",
                         (unsigned long long)size, (unsigned long long)smtpc_extensions(c)->size_max);
        our_fates(o, res->nrcpt, "5.3.4", text);
        return;
    case SMTPC_NEEDS_8BITMIME:
        our_fates(o, res->nrcpt, "5.6.3", "8-bit message (BODY=8BITMIME) and the customer's "
                  "server does not offer 8BITMIME; not converted, not sent");
        return;
    case SMTPC_NEEDS_SMTPUTF8:
        our_fates(o, res->nrcpt, "5.6.7", "message needs SMTPUTF8 (UTF-8 addresses or "
                  "header) and the customer's server does not offer SMTPUTF8; not sent");
        return;
    case SMTPC_SENT:
    case SMTPC_REJECTED:
        break;
    }
    if (res->mail.code < 200 || res->mail.code >= 300) {
        all_fates(o, res->nrcpt, fate_of(res->mail.code), res->mail.text);
        return;
    }
    for (i = 0; i < res->nrcpt; i++) {
        const struct smtpc_reply *r = &res->rcpt[i];

        o[i].fate = fate_of(r->code);
        if (o[i].fate == FATE_SENT) {
            o[i].fate = fate_of(res->data.code);
            r = &res->data;
        }
        (void)str_copy(o[i].text, sizeof(o[i].text), r->code ? r->text : "no reply");
    }
}

/* dsn_status - "5.1.1" from "550 5.1.1 text", else the default */

static void
dsn_status(const char *text, const char *dflt, char *buf, size_t size)
{
    unsigned a, b, c;
    int n = 0;

    if (sscanf(text, "%*d %u.%u.%u%n", &a, &b, &c, &n) == 3 && n > 0 && a >= 2 && a <= 5 &&
        b < 1000 && c < 1000 && str_printf(buf, size, "%u.%u.%u", a, b, c) == 0)
        return;
    (void)str_copy(buf, size, dflt);
}

/* struct notice - the recipients of one DSN being built */
struct notice {
    struct dsn d;
    struct dsn_rcpt *dr;
    char (*st)[16];
    char (*diag)[SMTPC_REPLY_TEXT_MAX + 16];
    char (*orcpt)[ENVELOPE_PARAMS_MAX + 1];
    char reason[SMTPC_REPLY_TEXT_MAX];
};

static void
notice_free(struct notice *n)
{
    x_free(n->dr);
    x_free(n->st);
    x_free(n->diag);
    x_free(n->orcpt);
}

/* notice_add - recipient i with its status and diagnostic */
static void
notice_add(struct notice *n, const struct flush *f, const struct envelope *env, size_t i,
           const struct rcpt_outcome *o)
{
    size_t k = n->d.nrcpt;

    if (o->status != NULL) {                     /* ours: the server never saw it */
        (void)str_copy(n->st[k], sizeof(n->st[0]), o->status);
        (void)str_printf(n->diag[k], sizeof(n->diag[0]), "X-Autoturn; %s", o->text);
        (void)str_copy(n->reason, sizeof(n->reason), o->text);
        n->d.reason = n->reason;
    } else {
        dsn_status(o->text, o->fate == FATE_SENT ? "2.0.0" : "5.0.0", n->st[k], sizeof(n->st[0]));
        (void)str_printf(n->diag[k], sizeof(n->diag[0]), "smtp; %s", o->text);
    }
    n->dr[k] = (struct dsn_rcpt){env->rcpt[i].addr, NULL, n->st[k], n->diag[k], f->relay};
    if (envelope_param(env->rcpt[i].params, "ORCPT", n->orcpt[k], sizeof(n->orcpt[0])) == 1)
        n->dr[k].orcpt = n->orcpt[k];
    n->d.nrcpt++;
}

/* notify - one DSN of action for the recipients whose fate is which and
 * whose NOTIFY asks for kind; 0 when the MTA took it (or none was due),
 * -1 (logged with what) */
static int
notify(struct flush *f, const char *id, struct spool_msg *m, const struct rcpt_outcome *o,
       enum fate which, enum dsn_action action, const char *kind, const char *what)
{
    const struct envelope *env = spool_msg_envelope(m);
    struct notice n;
    struct errbuf err;
    size_t i;
    int rc = -1;

    memset(&n, 0, sizeof(n));
    n.d = (struct dsn){action, f->r->cfg->flusher.myhostname, f->name,
                       action == DSN_RELAYED ? "delivered to a server without DSN support"
                                             : "the customer's server refused it", 0, NULL};

    n.dr = x_calloc(env->nrcpt, sizeof(*n.dr));
    n.st = x_calloc(env->nrcpt, sizeof(*n.st));
    n.diag = x_calloc(env->nrcpt, sizeof(*n.diag));
    n.orcpt = x_calloc(env->nrcpt, sizeof(*n.orcpt));
    n.d.rcpt = n.dr;
    if (n.dr == NULL || n.st == NULL || n.diag == NULL || n.orcpt == NULL) {
        log_warnx("customer=%s, id=%s: out of memory for a DSN; %s", f->name, id, what);
        goto out;
    }
    for (i = 0; i < env->nrcpt; i++)
        if (o[i].fate == which && dsn_notify_wants(env->rcpt[i].params, kind))
            notice_add(&n, f, env, i, &o[i]);
    rc = 0;
    if (n.d.nrcpt > 0 && (rc = dsn_send(&f->r->cfg->flusher, &n.d, m,
                                        dsn_recipient(env, f->r->cfg->flusher.postmaster),
                                        &err)) < 0)
        log_warnx("customer=%s, id=%s: DSN not sent: %s; %s", f->name, id, err.msg, what);
    else if (n.d.nrcpt > 0 && action == DSN_RELAYED)
        log_info("customer=%s, id=%s: relayed DSN sent for %zu recipient(s) (NOTIFY=SUCCESS, "
                 "server without DSN)", f->name, id, n.d.nrcpt);
out:
    notice_free(&n);
    return rc;
}

/* bounce - DSN for the recipients whose fate is FATE_BOUNCED and whose
 * NOTIFY asks for failures; 0 when the MTA took it (or none was due) */
static int
bounce(struct flush *f, const char *id, struct spool_msg *m, const struct rcpt_outcome *o)
{
    return notify(f, id, m, o, FATE_BOUNCED, DSN_FAILED, "FAILURE",
                  "keeping the refused recipients");
}

/* relayed - RFC 3461 5.2.2: recipients that asked NOTIFY=SUCCESS, now
 * delivered to a server that does not offer DSN (so NOTIFY was not passed
 * on), get a "relayed" DSN; none for the null sender. A failure is only
 * logged: the message is delivered, nothing is kept for it. */
static void
relayed(struct flush *f, const char *id, struct spool_msg *m, const struct rcpt_outcome *o)
{
    const struct envelope *env = spool_msg_envelope(m);

    if (smtpc_extensions(f->c)->dsn || env->sender[0] == '\0')
        return;
    (void)notify(f, id, m, o, FATE_SENT, DSN_RELAYED, "SUCCESS", "the message is delivered");
}

/* keep_only - the spool copy keeps exactly the recipients in keep[] */

static int
keep_only(struct flush *f, const char *id, const struct envelope *env, const bool *keep,
          struct errbuf *err)
{
    struct envelope ne;
    size_t i;
    int rc = -1;

    envelope_init(&ne);
    (void)str_copy(ne.customer, sizeof(ne.customer), env->customer);
    (void)str_copy(ne.queue_id, sizeof(ne.queue_id), env->queue_id);
    envelope_set_client(&ne, env->client_addr, env->client_name, env->helo);
    ne.arrival = env->arrival;
    if (envelope_set_sender(&ne, env->sender, env->mail_params, err) < 0)
        goto out;
    for (i = 0; i < env->nrcpt; i++)
        if (keep[i] && envelope_add_rcpt(&ne, env->rcpt[i].addr, env->rcpt[i].params, err) < 0)
            goto out;
    rc = spool_rewrite_envelope(f->r->spool, f->name, id, &ne, err);
out:
    envelope_clear(&ne);
    return rc;
}

static const char *
fate_name(enum fate fate)
{
    return fate == FATE_SENT ? "sent" : fate == FATE_BOUNCED ? "bounced"
         : fate == FATE_SKIPPED ? "skipped" : "deferred";
}

static void
report(struct flush *f, const char *id, const struct envelope *env, const struct rcpt_outcome *o)
{
    char dsn[LOGLINE_DSN_MAX];
    time_t now = time(NULL);
    size_t i;

    for (i = 0; i < env->nrcpt; i++) {
        if (o[i].fate == FATE_SKIPPED)
            continue;
        logline_dsn(o[i].status, o[i].text, o[i].fate == FATE_SENT ? "2.0.0"
                    : o[i].fate == FATE_BOUNCED ? "5.0.0" : "4.0.0", dsn, sizeof(dsn));
        logline_rcpt(id, env, env->rcpt[i].addr, f->name, f->relay, now, dsn,
                     fate_name(o[i].fate), o[i].text);
        client_progress(f, id, env->rcpt[i].addr, fate_name(o[i].fate), o[i].text);
        metrics_inc(METRIC_DELIVERIES, o[i].fate == FATE_SENT ? METRICS_SENT
                                       : o[i].fate == FATE_BOUNCED ? METRICS_BOUNCED
                                       : METRICS_DEFERRED);
        if (o[i].fate == FATE_SENT)
            f->delivered++;
        else if (o[i].fate == FATE_BOUNCED)
            f->bounced++;
        else
            f->deferred++;
    }
}

/* settle - after the outcome of one message: bounce, then delete or
 * rewrite the spool copy (only what was confirmed leaves it) */

static void
settle(struct flush *f, const char *id, struct spool_msg *m, struct rcpt_outcome *o)
{
    const struct envelope *env = spool_msg_envelope(m);
    bool *keep = x_calloc(env->nrcpt, sizeof(*keep));
    struct errbuf err;
    size_t i, nkeep = 0;

    if (keep == NULL) {
        log_warnx("customer=%s, id=%s: out of memory; message kept", f->name, id);
        return;
    }
    relayed(f, id, m, o);
    if (bounce(f, id, m, o) < 0)
        for (i = 0; i < env->nrcpt; i++)
            if (o[i].fate == FATE_BOUNCED) {
                o[i].fate = FATE_DEFERRED;
                (void)str_copy(o[i].text, sizeof(o[i].text), "refused, and the DSN failed");
            }
    for (i = 0; i < env->nrcpt; i++)
        if ((keep[i] = o[i].fate == FATE_DEFERRED || o[i].fate == FATE_SKIPPED))
            nkeep++;
    report(f, id, env, o);
    /* the directory is synced once per flush (run_messages): a lost
     * unlink after a crash means a duplicate, never a loss */
    if (nkeep == 0 && spool_delete_delivered(f->r->spool, f->name, id, &err) < 0)
        log_warnx("customer=%s, id=%s: cannot remove it after delivery: %s (it may be "
                  "delivered again)", f->name, id, err.msg);
    if (nkeep > 0 && nkeep < env->nrcpt && keep_only(f, id, env, keep, &err) < 0)
        log_warnx("customer=%s, id=%s: cannot rewrite its envelope: %s (done recipients may "
                  "get it again)", f->name, id, err.msg);
    x_free(keep);
}

/* domain_in - is the domain of addr d, or one below d? */
static bool
domain_in(const char *addr, const char *d)
{
    const char *at = strrchr(addr, '@');
    size_t la, ld = strlen(d);

    if (at == NULL)
        return false;
    at++;
    la = strlen(at);
    if (la == ld)
        return str_ieq(at, d);
    return la > ld && at[la - ld - 1] == '.' && str_ieq(at + la - ld, d);
}

/* wanted - which recipients this flush is for (f->only); their number */
static size_t
wanted(const struct flush *f, const struct envelope *env, bool *want)
{
    size_t i, k, n = 0;

    for (i = 0; i < env->nrcpt; i++) {
        want[i] = f->only == NULL;
        for (k = 0; k < f->nonly && !want[i]; k++)
            want[i] = domain_in(env->rcpt[i].addr, f->only[k]);
        n += want[i];
    }
    return n;
}

static void
skip_unwanted(struct rcpt_outcome *o, const bool *want, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!want[i])
            o[i].fate = FATE_SKIPPED;
}

/* trace - our Received: line for this copy ("for" when it goes to one
 * recipient); "" if it cannot be built (the message goes without it) */
static void
trace(const struct flush *f, const struct envelope *env, const bool *want, char *buf, size_t size)
{
    const char *rcpt = NULL;
    size_t i, n = 0;

    for (i = 0; i < env->nrcpt; i++)
        if (want[i] && n++ == 0)
            rcpt = env->rcpt[i].addr;
    if (trace_received(env, f->r->cfg->flusher.myhostname, n == 1 ? rcpt : NULL, buf, size) < 0)
        buf[0] = '\0';
}

/* session_limit - did the server end the session or refuse MAIL with
 * 4xx after this connection delivered something? Then the message was
 * not tried and a new connection may take it (reconnect). */
static bool
session_limit(const struct flush *f, int rc, const struct smtpc_result *res)
{
    if (f->session_sent == 0 || f->targets == NULL)
        return false;
    if (rc < 0)
        return smtpc_peer_closed(f->c);
    return res->mail.code >= 400 && res->mail.code < 500;
}

/* one_message - deliver one spool message over f->c */

static enum msg_result
one_message(struct flush *f, const char *id)
{
    struct spool_msg *m = NULL;
    struct smtpc_result res;
    struct rcpt_outcome *o = NULL;
    char received[TRACE_RECEIVED_MAX];
    bool *want = NULL;
    struct errbuf err;
    const struct envelope *env;
    enum msg_result mr = MSG_DONE;
    int rc;

    memset(&res, 0, sizeof(res));
    if ((rc = spool_msg_open(f->r->spool, f->name, id, &m, &err)) == SPOOL_MALFORMED)
        return MSG_DONE;                         /* moved to bad/ and logged */
    if (rc < 0) {
        log_warnx("customer=%s, id=%s: cannot open: %s; skipped", f->name, id, err.msg);
        return MSG_DONE;
    }
    env = spool_msg_envelope(m);
    if ((o = x_calloc(env->nrcpt, sizeof(*o))) == NULL
        || (want = x_calloc(env->nrcpt, sizeof(*want))) == NULL) {
        log_warnx("customer=%s, id=%s: out of memory; skipped", f->name, id);
        goto out;
    }
    if (wanted(f, env, want) == 0)
        goto out;                                /* nothing for the domains asked for */
    trace(f, env, want, received, sizeof(received));
    rc = smtpc_send_some(f->c, m, want, received, &res, &err);
    if (session_limit(f, rc, &res)) {
        (void)str_copy(f->error, sizeof(f->error), rc < 0 ? err.msg : res.mail.text);
        f->stop = true;
        mr = MSG_RETRY;
        goto out;
    }
    if (rc < 0) {
        all_fates(o, env->nrcpt, FATE_DEFERRED, err.msg);
        skip_unwanted(o, want, env->nrcpt);
        report(f, id, env, o);
        (void)str_copy(f->error, sizeof(f->error), err.msg);
        f->stop = true;
        goto out;
    }
    classify(f->c, &res, spool_msg_body_size(m) + strlen(received), o);
    skip_unwanted(o, want, env->nrcpt);
    settle(f, id, m, o);
    if (res.status == SMTPC_SENT)
        f->session_sent++;
    if ((res.mail.code >= 400 && res.mail.code < 500) ||
        (res.data.code >= 400 && res.data.code < 500)) {
        (void)str_printf(f->error, sizeof(f->error), "temporary failure: %s",
                         res.data.code ? res.data.text : res.mail.text);
        f->stop = true;
    }
    if (res.status != SMTPC_SENT && !f->stop && smtpc_rset(f->c, &err) < 0) {
        (void)str_copy(f->error, sizeof(f->error), err.msg);
        f->stop = true;
    }
out:
    smtpc_result_clear(&res);
    x_free(want);
    x_free(o);
    spool_msg_close(m);
    return mr;
}

/* --- the flush --- */

/* client_opts - the SMTP client settings for this customer */
static struct smtpc_opts
client_opts(const struct deliver_req *r)
{
    const struct config_flusher *cf = &r->cfg->flusher;
    struct smtpc_opts o = {(unsigned)cf->connect_timeout, (unsigned)cf->greeting_timeout,
                           (unsigned)cf->command_timeout, (unsigned)cf->data_timeout,
                           cf->myhostname, r->cust->tls, NULL, cf->chunking};

    return o;
}

static int
connect_any(struct flush *f, const struct targets *t)
{
    struct smtpc_opts o = client_opts(f->r);
    struct smtpc_reply reply;
    struct errbuf err;
    size_t i;

    for (i = 0; i < t->n; i++) {
        memset(&reply, 0, sizeof(reply));
        if (smtpc_open((const struct sockaddr *)&t->v[i].sa, t->v[i].len, t->v[i].relay, &o,
                       &f->c, &reply, &err) == 0) {
            f->relay = t->v[i].relay;
            return 0;
        }
        log_warnx("customer=%s: relay=%s: %s", f->name, t->v[i].relay, err.msg);
        (void)str_copy(f->error, sizeof(f->error), err.msg);
    }
    return -1;
}

/* reconnect - a new connection after the server ended a session that
 * had delivered something (its per-session limit); 0, or -1 (f->error
 * says why, f->stop stays set) */
static int
reconnect(struct flush *f)
{
    unsigned max = (unsigned)f->r->cfg->flusher.max_reconnects;

    if (f->reconnects >= max) {
        log_info("customer=%s: relay=%s: session ended (%s); max_reconnects (%u) reached",
                 f->name, f->relay, f->error, max);
        return -1;
    }
    f->reconnects++;
    log_info("customer=%s: relay=%s: session ended after %lu message(s) (%s); reconnecting "
             "(%u of %u)", f->name, f->relay, f->session_sent, f->error, f->reconnects, max);
    smtpc_close(f->c);
    f->c = NULL;
    if (connect_any(f, f->targets) < 0)
        return -1;
    f->session_sent = 0;
    f->stop = false;
    f->error[0] = '\0';
    return 0;
}

static void
run_messages(struct flush *f, const struct spool_entry *v, size_t n)
{
    struct errbuf err;
    size_t i = 0;

    while (i < n && !f->stop) {
        if (one_message(f, v[i].id) == MSG_RETRY) {
            if (reconnect(f) == 0)
                continue;                        /* the same message, new connection */
            break;                               /* not tried: counted below */
        }
        i++;
    }
    if (spool_sync(f->r->spool, f->name, &err) < 0)
        log_warnx("customer=%s: %s (delivered mail may be delivered again)", f->name, err.msg);
    if (f->stop && i < n) {
        log_info("customer=%s: flush stopped (%s); %zu message(s) not tried stay held",
                 f->name, f->error, n - i);
        f->deferred += n - i;
    }
}

/* flush - lock, list, connect, deliver; returns the RESULT flags */

static void
flush(struct flush *f, bool *failed_r, bool *busy_r)
{
    struct spool_entry *v = NULL;
    struct targets t;
    struct errbuf err;
    size_t n = 0;
    int lockfd = -1, rc;

    *failed_r = *busy_r = false;
    if ((rc = spool_lock(f->r->spool, f->name, false, &lockfd, &err)) <= 0) {
        *busy_r = rc == 0;
        if (rc == 0)
            log_info("customer=%s: a flush is already running in another process", f->name);
        else
            log_warnx("customer=%s: cannot lock the spool: %s", f->name, err.msg);
        client_final_err(f, rc == 0 ? "busy" : "internal",
                         rc == 0 ? "a flush for this customer is already running" : err.msg);
        return;
    }
    if (spool_list(f->r->spool, f->name, &v, &n, &err) < 0) {
        log_warnx("customer=%s: cannot list the spool: %s", f->name, err.msg);
        client_final_err(f, "internal", err.msg);
        goto out;
    }
    if (n == 0) {
        log_info("customer=%s: nothing held (reason=%s)", f->name, f->r->reason);
        goto done;
    }
    if (targets_get(&t, f->r->cust, f->r->to, f->r->cfg->flusher.myhostname, &err) < 0
        || t.n == 0) {
        if (t.n == 0 && err.msg[0] == '\0')
            errbuf_set(&err, "no target address");
        log_warnx("customer=%s: %s; %zu message(s) stay held", f->name, err.msg, n);
        (void)str_copy(f->error, sizeof(f->error), err.msg);
        f->deferred = n;
        *failed_r = true;
        goto done;
    }
    log_info("customer=%s: flush of %zu message(s) (reason=%s)", f->name, n, f->r->reason);
    f->targets = &t;
    if (connect_any(f, &t) < 0) {
        f->deferred = n;
        *failed_r = true;
        goto done;
    }
    run_messages(f, v, n);
    smtpc_close(f->c);
    f->c = NULL;
    *failed_r = f->delivered == 0 && f->deferred > 0;
done:
    {
        struct ctl_msg m;

        ctl_reply_ok(&m);
        ctl_msg_addf(&m, "delivered", "%lu", f->delivered);
        ctl_msg_addf(&m, "deferred", "%lu", f->deferred);
        ctl_msg_addf(&m, "bounced", "%lu", f->bounced);
        if (f->error[0] != '\0')
            (void)ctl_msg_add(&m, "error", f->error);
        client_send(f, &m);
    }
    log_info("customer=%s: flush done: delivered=%lu, deferred=%lu, bounced=%lu", f->name,
             f->delivered, f->deferred, f->bounced);
out:
    x_free(v);
    spool_unlock(lockfd);
}

/* --- a connection that already exists (ODMR) --- */

int
deliver_any_for(const struct deliver_req *r, const char *const *only, size_t nonly,
                const struct spool_entry *v, size_t n, struct errbuf *err)
{
    struct flush f;
    struct spool_msg *m;
    bool *want;
    size_t i, got = 0;
    int rc;

    if (only == NULL)
        return n > 0;
    memset(&f, 0, sizeof(f));
    f.only = only;
    f.nonly = nonly;
    for (i = 0; i < n && got == 0; i++) {
        if ((rc = spool_msg_open(r->spool, r->cust->name, v[i].id, &m, err)) == SPOOL_MALFORMED)
            continue;                            /* moved to bad/ and logged */
        if (rc < 0)
            return -1;
        if ((want = x_calloc(spool_msg_envelope(m)->nrcpt + 1, sizeof(*want))) == NULL) {
            spool_msg_close(m);
            errbuf_set_errno(err, "deliver_any_for");
            return -1;
        }
        got = wanted(&f, spool_msg_envelope(m), want);
        x_free(want);
        spool_msg_close(m);
    }
    return got > 0;
}

void
deliver_reversed(const struct deliver_req *r, int fd, SSL_CTX *ctx, SSL *ssl, const char *peer,
                 unsigned greeting_timeout, const char *const *only, size_t nonly,
                 const struct spool_entry *v, size_t n, struct deliver_result *res)
{
    struct smtpc_opts o = client_opts(r);
    struct smtpc_reply reply;
    struct timespec t0;
    struct errbuf err;
    struct flush f;

    metrics_clock(&t0);
    memset(&f, 0, sizeof(f));
    f.r = r;
    f.name = r->cust->name;
    f.relay = peer;
    f.client_fd = -1;
    f.only = only;
    f.nonly = nonly;
    if (greeting_timeout > o.greeting_timeout)
        o.greeting_timeout = greeting_timeout;
    /* Never STARTTLS on a turned-around connection: the customer's client
     * (fetchmail) relays it line by line and a handshake through it
     * stalls. The ODMR session itself may be TLS (the customer's "tls
     * encrypt" makes ATRN require it, odmr_session.c). */
    o.tls = TLS_NONE;
    log_info("customer=%s: flush of %zu message(s) (reason=%s)", f.name, n, r->reason);
    if (smtpc_adopt(fd, ctx, ssl, peer, &o, &f.c, &reply, &err) < 0) {
        log_warnx("customer=%s: relay=%s: %s", f.name, peer, err.msg);
        f.deferred = n;
    } else {
        run_messages(&f, v, n);
        smtpc_close(f.c);
    }
    log_info("customer=%s: flush done: delivered=%lu, deferred=%lu, bounced=%lu", f.name,
             f.delivered, f.deferred, f.bounced);
    res->delivered = f.delivered;
    res->deferred = f.deferred;
    res->bounced = f.bounced;
    res->failed = f.delivered == 0 && f.deferred > 0;
    res->busy = false;
    metrics_flush_done(r->reason, res->failed, metrics_elapsed(&t0));
}

/* --- the child --- */

/* deliver_child_setup - default signal dispositions first (dsn_send
 * waits for its own sendmail child: SIGCHLD must not be caught or
 * ignored), then drop every inherited descriptor but the two this child
 * uses */

void
deliver_child_setup(const struct config *cfg, int keep1, int keep2)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2};
    const int keep[2] = {keep1, keep2};
    sigset_t all;
    size_t i;

    for (i = 0; i < ARRAY_LEN(sigs); i++)
        signal(sigs[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);     /* write errors are handled where they happen */
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    fd_close_except(keep, 2);
    config_apply_logging(cfg, DELIVER_PROG);   /* the syslog socket was closed */
}

/* client_setup - blocking writes, each bounded by CLIENT_SEND_TIMEOUT */

static void
client_setup(int fd)
{
    struct timeval tv = {CLIENT_SEND_TIMEOUT, 0};
    int flags;

    if ((flags = fcntl(fd, F_GETFL)) >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void
write_result(int fd, const struct flush *f, bool failed, bool busy)
{
    char line[128];

    if (str_printf(line, sizeof(line), "RESULT delivered=%lu deferred=%lu bounced=%lu "
                   "failed=%d busy=%d\n", f->delivered, f->deferred, f->bounced, failed,
                   busy) == 0)
        (void)fd_write_all(fd, line, strlen(line));
}

void
deliver_child(const struct deliver_req *r)
{
    struct flush f;
    struct errbuf err;
    bool failed = false, busy = false;

    deliver_child_setup(r->cfg, r->status_fd, r->client_fd);
    memset(&f, 0, sizeof(f));
    f.r = r;
    f.name = r->cust->name;
    f.relay = "none";
    f.client_fd = r->client_fd;
    if (f.client_fd >= 0)
        client_setup(f.client_fd);
    if (r->cfg->flusher.flush_timeout > 0)
        alarm((unsigned)r->cfg->flusher.flush_timeout);   /* default action: the child dies */
    if (deliver_authorise(r->cust, r->to, &err) != 1) {    /* again: defence in depth */
        log_warnx("customer=%s: flush refused: %s (reason=%s)", f.name, err.msg, r->reason);
        client_final_err(&f, "not-authorised", err.msg);
    } else {
        flush(&f, &failed, &busy);
    }
    write_result(r->status_fd, &f, failed, busy);
    if (f.client_fd >= 0)
        close(f.client_fd);
    _exit(0);
}

int
deliver_result_parse(const char *line, size_t len, struct deliver_result *r)
{
    struct ctl_msg m;
    const char *keys[] = {"delivered", "deferred", "bounced", "failed", "busy"};
    unsigned long v[ARRAY_LEN(keys)];
    const char *s;
    char *end;
    size_t i;

    if (ctl_parse(line, len, &m, NULL) < 0 || strcmp(m.verb, "RESULT") != 0)
        return -1;
    for (i = 0; i < ARRAY_LEN(keys); i++) {
        if ((s = ctl_msg_get(&m, keys[i])) == NULL || s[0] < '0' || s[0] > '9')
            return -1;
        errno = 0;
        v[i] = strtoul(s, &end, 10);
        if (*end != '\0' || errno != 0)
            return -1;
    }
    r->delivered = v[0];
    r->deferred = v[1];
    r->bounced = v[2];
    r->failed = v[3] != 0;
    r->busy = v[4] != 0;
    return 0;
}
