/* SPDX-License-Identifier: ISC */
/*
 * odmr.c - the ODMR broker inside autoturn-flusher's parent, and the
 * start of the front process (see odmr.h for the three processes). Owns
 * the channel to the front, one channel per session with what the broker
 * knows of it (address, the customer it authenticated as, the CRAM-MD5
 * challenge it was given, its failures) and the delivery processes (pid
 * and status pipe). The failure counts per address and per account are
 * odmr_limits.c's.
 *
 * One module of about 800 lines: the broker's requests (challenge, AUTH,
 * ATRN) share its session table and limits too closely to be split, and
 * starting the front (listeners, TLS key, fork, READY) is where the broker
 * gets its channel.
 *
 * SECURITY: everything on a session channel comes from a process that
 * parsed an untrusted client's bytes before authentication and may be
 * compromised. Each request is one bounded message (odmr_chan.c); names
 * and digests are validated; a session is a customer only after this
 * module checked its credentials against the stored secret (the CRAM-MD5
 * challenge is made here and used once; an unknown name costs the same
 * work as a wrong secret and gets the same answer); and ATRN is served
 * for that customer only, by a delivery process that checks the domains
 * again. Failed AUTHs are slowed and capped: a session may not try again
 * before auth_delay x its failures and is closed after max_auth_failures;
 * an address is refused by the front after address_failures within
 * address_block; an account, after account_failures, takes attempts from
 * addresses that never authenticated for it only every account_delay,
 * doubling per failure up to account_delay_max (an address that
 * authenticated for it before is not slowed: a guesser cannot lock the
 * customer out of its usual place). Every refusal is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "custdb.h"
#include "customer.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "odmr.h"
#include "odmr_chan.h"
#include "odmr_deliver.h"
#include "odmr_front.h"
#include "odmr_limits.h"
#include "secret.h"
#include "sockspec.h"

#define ODMR_BACKLOG       128
#define TAG_FRONT          (1ull << 62)
#define TAG_DELIVERY       (1ull << 61)
#define TAG_INDEX          (~(TAG_FRONT | TAG_DELIVERY))
#define MSGS_PER_EVENT     16       /* messages taken from one channel per wake-up */

struct bsess {                      /* a session, as the broker knows it */
    int fd;                         /* its channel; -1: free slot */
    struct ipaddr addr;
    char peer[ODMR_PEER_MAX];
    char customer[CUSTOMER_NAME_MAX + 1];   /* "" until authenticated here */
    char challenge[ODMR_CHALLENGE_MAX];     /* "" when none is outstanding */
    unsigned failures;
    time_t next_auth;               /* no AUTH before (auth_delay) */
};

struct delivery {
    pid_t pid;                      /* 0: free */
    int status_fd;                  /* EOF: it ended */
};

struct odmr {
    const struct config *cfg;
    const struct config_odmr *oc;
    struct spool *spool;
    struct custdb *db;
    SSL_CTX *tls;                   /* until the front has it */
    int lfd[CONFIG_LISTEN_MAX];
    size_t nlfd;
    int epfd;
    pid_t front;
    int front_fd;
    struct bsess *sess;
    size_t nslots, nsess;
    struct delivery *dl;            /* nslots slots */
    struct odmr_limits *limits;
};

/* --- set-up, before the privilege drop --- */

static int
tls_context(struct odmr *o, struct errbuf *err)
{
    const char *what = o->oc->tls_cert;
    unsigned long e;

    if (o->oc->tls_cert[0] == '\0')
        return 0;
    if ((o->tls = SSL_CTX_new(TLS_server_method())) == NULL
        || SSL_CTX_set_min_proto_version(o->tls, TLS1_2_VERSION) != 1)
        goto fail;
    SSL_CTX_set_mode(o->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(o->tls, o->oc->tls_cert) != 1)
        goto fail;
    what = o->oc->tls_key;
    if (SSL_CTX_use_PrivateKey_file(o->tls, o->oc->tls_key, SSL_FILETYPE_PEM) != 1)
        goto fail;
    if (SSL_CTX_check_private_key(o->tls) != 1)
        goto fail;
    return 0;
fail:
    e = ERR_get_error();
    errbuf_set(err, "odmr: %s: %s", what,
               e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e)
                                                             : "TLS set-up failed");
    ERR_clear_error();
    return -1;
}

static int
listen_one(struct odmr *o, const struct sockspec *spec, struct errbuf *err)
{
    char text[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 16];
    const char *step = "listen";
    int fd;

    sockspec_format(spec, text, sizeof(text));
    if ((fd = sockspec_listen(spec, ODMR_BACKLOG, &step)) < 0) {
        errbuf_set_errno(err, "odmr: %s: %s", text, step);
        return -1;
    }
    o->lfd[o->nlfd++] = fd;
    if (fd_set_nonblock(fd) < 0) {
        errbuf_set_errno(err, "odmr: %s: set-up", text);
        return -1;
    }
    log_info("odmr: listening on %s%s", text, o->tls != NULL ? " (STARTTLS available)" : "");
    return 0;
}

static int
tables(struct odmr *o)
{
    size_t i;

    o->nslots = (size_t)o->oc->max_sessions;
    if ((o->sess = x_calloc(o->nslots, sizeof(*o->sess))) == NULL
        || (o->dl = x_calloc(o->nslots, sizeof(*o->dl))) == NULL
        || (o->limits = odmr_limits_new(o->oc)) == NULL)
        return -1;
    for (i = 0; i < o->nslots; i++)
        o->sess[i].fd = o->dl[i].status_fd = -1;
    return 0;
}

int
odmr_open(const struct config *cfg, struct odmr **o_r, struct errbuf *err)
{
    struct odmr *o;
    size_t i;

    *o_r = NULL;
    if (!cfg->flusher.odmr.enable)
        return 0;
    if ((o = x_calloc(1, sizeof(*o))) == NULL) {
        errbuf_set(err, "odmr: out of memory");
        return -1;
    }
    o->cfg = cfg;
    o->oc = &cfg->flusher.odmr;
    o->epfd = o->front_fd = -1;
    if (tables(o) < 0) {
        errbuf_set(err, "odmr: out of memory");
        odmr_close(o);
        return -1;
    }
    if (tls_context(o, err) < 0) {
        odmr_close(o);
        return -1;
    }
    for (i = 0; i < o->oc->listen.count && i < CONFIG_LISTEN_MAX; i++)
        if (listen_one(o, &o->oc->listen.spec[i], err) < 0) {
            odmr_close(o);
            return -1;
        }
    *o_r = o;
    return 0;
}

/* front_ready - the front's first message: READY, or why it could not start */
static int
front_ready(struct odmr *o, struct errbuf *err)
{
    struct pollfd p = {.fd = o->front_fd, .events = POLLIN};
    struct ctl_msg m;
    const char *text;
    int rc;

    do
        rc = poll(&p, 1, ODMR_FRONT_TIMEOUT);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        errbuf_set(err, "odmr: the front process did not start within %d ms", ODMR_FRONT_TIMEOUT);
        return -1;
    }
    if ((rc = odmr_chan_recv(o->front_fd, &m, NULL, err)) <= 0) {
        if (rc == 0)
            errbuf_set(err, "odmr: the front process exited at start");
        return -1;
    }
    if (strcmp(m.verb, "READY") == 0)
        return 0;
    text = ctl_msg_get(&m, "text");
    errbuf_set(err, "odmr: front process: %s", text != NULL ? text : "could not start");
    return -1;
}

int
odmr_spawn(struct odmr *o, struct errbuf *err)
{
    struct odmr_front_args a;
    int ch[2];
    size_t i;

    if (o == NULL)
        return 0;
    if (odmr_chan_pair(ch) < 0) {
        errbuf_set_errno(err, "odmr: socketpair");
        return -1;
    }
    if ((o->front = fork()) < 0) {
        errbuf_set_errno(err, "odmr: fork");
        (void)close(ch[0]);
        (void)close(ch[1]);
        return -1;
    }
    if (o->front == 0) {
        (void)close(ch[0]);
        memset(&a, 0, sizeof(a));
        a.cfg = o->cfg;
        a.chan = ch[1];
        a.lfd = o->lfd;
        a.nlfd = o->nlfd;
        a.tls = o->tls;
        odmr_front_run(&a);
    }
    (void)close(ch[1]);
    o->front_fd = ch[0];
    for (i = 0; i < o->nlfd; i++)          /* the front has them; the key too */
        (void)close(o->lfd[i]);
    o->nlfd = 0;
    if (o->tls != NULL)
        SSL_CTX_free(o->tls);
    o->tls = NULL;
    return front_ready(o, err);
}

void
odmr_start(struct odmr *o, struct spool *spool, struct custdb *db)
{
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = TAG_FRONT};

    if (o == NULL)
        return;
    o->spool = spool;
    o->db = db;
    if ((o->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || fd_set_nonblock(o->front_fd) < 0
        || epoll_ctl(o->epfd, EPOLL_CTL_ADD, o->front_fd, &ee) < 0)
        log_fatal("odmr: broker set-up");
}

int
odmr_poll_fd(const struct odmr *o)
{
    return o != NULL ? o->epfd : -1;
}

size_t
odmr_sessions(const struct odmr *o)
{
    return o != NULL ? o->nsess : 0;
}

/* block - tell the front to refuse a until then */
static void
block(struct odmr *o, const struct ipaddr *a, time_t until)
{
    char ip[IPADDR_TEXT_MAX];
    struct errbuf err;
    struct ctl_msg m;

    if (ctl_msg_init(&m, "BLOCK") < 0 || ctl_msg_add(&m, "ip", ipaddr_format(a, ip, sizeof(ip))) < 0
        || ctl_msg_addf(&m, "until", "%lld", (long long)until) < 0
        || odmr_chan_send(o->front_fd, &m, -1, &err) < 0)
        log_warnx("odmr: client=[%s]: cannot tell the front to refuse it", ip);
}

/* --- session requests --- */

static void sess_close(struct odmr *o, struct bsess *s);

/* reply - one message to the session; a session that does not take it
 * (its channel full or gone) is dropped */
static void
reply(struct odmr *o, struct bsess *s, const struct ctl_msg *m, int passfd)
{
    struct errbuf err;

    if (odmr_chan_send(s->fd, m, passfd, &err) < 0) {
        log_warnx("odmr: client=%s: session channel: %s; dropping it", s->peer, err.msg);
        sess_close(o, s);
    }
}

static void
reply_err(struct odmr *o, struct bsess *s, const char *code, const char *text, uint64_t delay)
{
    struct ctl_msg m;

    ctl_reply_err(&m, code, text);
    if (delay > 0)
        (void)ctl_msg_addf(&m, "delay", "%llu", (unsigned long long)delay);
    reply(o, s, &m, -1);
}

static void
req_challenge(struct odmr *o, struct bsess *s)
{
    uint64_t nonce = 0;
    struct ctl_msg m;

    if (s->customer[0] != '\0') {
        reply_err(o, s, "bad-state", "already authenticated", 0);
        return;
    }
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce ^= (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (str_printf(s->challenge, sizeof(s->challenge), "<%llu.%lld@%s>",
                   (unsigned long long)nonce, (long long)time(NULL),
                   o->cfg->flusher.myhostname) < 0) {
        s->challenge[0] = '\0';
        reply_err(o, s, "tempfail", "no challenge", 0);
        return;
    }
    ctl_reply_ok(&m);
    if (ctl_msg_add(&m, "challenge", s->challenge) < 0) {
        reply_err(o, s, "tempfail", "no challenge", 0);
        return;
    }
    reply(o, s, &m, -1);
}

/* lookup_user - the customer user may authenticate as (a secret and the
 * atrn trigger); NULL with why; *tempfail when the table is unusable */
static struct customer *
lookup_user(struct odmr *o, struct bsess *s, const char *user, const char **why, bool *tempfail)
{
    struct customer *c = NULL;
    struct errbuf err;
    const char *e;
    int rc;

    *tempfail = false;
    if (!customer_name_valid(user, &e)) {
        *why = "not a customer name";
        return NULL;
    }
    if ((rc = custdb_lookup_name(o->db, user, &c, &err)) < 0) {
        log_warnx("odmr: client=%s: customer table: %s", s->peer, err.msg);
        *why = "customer table unusable";
        *tempfail = true;
        return NULL;
    }
    if (rc == 0)
        *why = "no such customer";
    else if (!c->has_secret)
        *why = "the customer has no secret";
    else if (!(c->triggers & TRIGGER_ATRN))
        *why = "the customer's triggers do not include atrn";
    else
        return c;
    customer_free(c);
    return NULL;
}

/* check_secret - the credentials in m against c's secret (NULL: unknown
 * name, checked against a dummy so that both cost the same) */
static bool
check_secret(struct bsess *s, const struct customer *c, const struct ctl_msg *m, bool cram,
             const char **why)
{
    static const struct secret none;
    const struct secret *sec = c != NULL ? &c->secret : &none;
    const char *digest = ctl_msg_get(m, "digest"), *pass = ctl_msg_get(m, "pass");
    const char *authz = ctl_msg_get(m, "authz"), *user = ctl_msg_get(m, "user");
    bool ok;

    if (cram) {
        if (s->challenge[0] == '\0' || digest == NULL || strlen(digest) != 32) {
            *why = s->challenge[0] == '\0' ? "no challenge was given" : "malformed response";
            return false;
        }
        ok = secret_cram_verify(sec, s->challenge, strlen(s->challenge), digest);
        s->challenge[0] = '\0';                     /* one response per challenge */
        *why = "wrong secret";
    } else {
        if (pass == NULL || (authz != NULL && authz[0] != '\0' && strcmp(authz, user) != 0)) {
            *why = pass == NULL ? "malformed response" : "authorization identity differs";
            return false;
        }
        ok = secret_plain_verify(sec, pass, strlen(pass));
        *why = "wrong password";
    }
    return ok && c != NULL;
}

static void
auth_ok(struct odmr *o, struct bsess *s, const char *user, const struct customer *c, time_t now)
{
    struct ctl_msg m;

    (void)str_copy(s->customer, sizeof(s->customer), user);   /* a customer's name: fits */
    s->failures = 0;
    odmr_limits_good(o->limits, user, &s->addr, now);
    ctl_reply_ok(&m);
    (void)ctl_msg_add(&m, "customer", s->customer);
    /* tls encrypt: ATRN only inside TLS (the turned connection never starts TLS) */
    (void)ctl_msg_add(&m, "tls", c->tls == TLS_ENCRYPT ? "encrypt" : c->tls == TLS_MAY ? "may"
                                                                                    : "none");
    reply(o, s, &m, -1);
}

static void
auth_failed(struct odmr *o, struct bsess *s, const char *user, const char *mech,
            const char *why, time_t now)
{
    char ip[IPADDR_TEXT_MAX];
    time_t until, wait;
    uint64_t delay;

    s->failures++;
    metrics_inc(METRIC_ODMR_AUTH_FAILURES, 0);
    log_warnx("odmr: client=%s, customer=%s: AUTH %s failed: %s (%u of %llu)", s->peer,
              user != NULL ? user : "?", mech, why, s->failures,
              (unsigned long long)o->oc->max_auth_failures);
    delay = o->oc->auth_delay * s->failures;
    s->next_auth = now + (time_t)delay;
    if (odmr_limits_failed(o->limits, user, &s->addr, now, &until, &wait) == 1) {
        log_warnx("odmr: client=[%s]: %llu failed AUTH attempts; this address is refused for "
                  "%llus", ipaddr_format(&s->addr, ip, sizeof(ip)),
                  (unsigned long long)o->oc->address_failures,
                  (unsigned long long)o->oc->address_block);
        block(o, &s->addr, until);
    }
    if (wait > 0)
        log_warnx("odmr: customer=%s: %lu failed AUTH attempts; the next attempt from an address "
                  "that never authenticated for it is taken in %llds", user,
                  odmr_limits_account_failures(o->limits, user, now), (long long)wait);
    if (s->failures >= o->oc->max_auth_failures)
        reply_err(o, s, "closed", "too many authentication failures", delay);
    else
        reply_err(o, s, "failed", "authentication credentials invalid", delay);
}

/* auth_refused - an attempt not even checked; the reason is logged */
static bool
auth_refused(struct odmr *o, struct bsess *s, const char *user, time_t now)
{
    const char *who = user != NULL ? user : "?";
    time_t wait;

    if (odmr_limits_blocked(o->limits, &s->addr, now)) {
        log_warnx("odmr: client=%s, customer=%s: AUTH refused: too many failed AUTH attempts "
                  "from this address", s->peer, who);
        reply_err(o, s, "blocked", "too many failed authentications from this address", 0);
        return true;
    }
    if (now < s->next_auth) {
        log_warnx("odmr: client=%s, customer=%s: AUTH refused: sooner than auth_delay after a "
                  "failure", s->peer, who);
        reply_err(o, s, "throttled", "too soon after a failure", 0);
        return true;
    }
    if (user != NULL && (wait = odmr_limits_account_wait(o->limits, user, &s->addr, now)) > 0) {
        log_warnx("odmr: client=%s, customer=%s: AUTH refused: the account is throttled after "
                  "%lu failures (next attempt in %llds)", s->peer, user,
                  odmr_limits_account_failures(o->limits, user, now), (long long)wait);
        reply_err(o, s, "throttled", "account throttled", 0);
        return true;
    }
    return false;
}

static void
req_auth(struct odmr *o, struct bsess *s, const struct ctl_msg *m, time_t now)
{
    const char *mech = ctl_msg_get(m, "mech"), *user = ctl_msg_get(m, "user"), *why, *e;
    const char *name;
    struct customer *c = NULL;
    bool cram, tempfail = false, ok = false;

    if (s->customer[0] != '\0' || mech == NULL || user == NULL
        || (strcmp(mech, "CRAM-MD5") != 0 && strcmp(mech, "PLAIN") != 0)) {
        reply_err(o, s, "bad-request", "bad AUTH request", 0);
        return;
    }
    cram = strcmp(mech, "CRAM-MD5") == 0;
    name = customer_name_valid(user, &e) ? user : NULL;    /* only a valid name is logged */
    if (auth_refused(o, s, name, now))
        return;
    c = lookup_user(o, s, user, &why, &tempfail);
    if (tempfail) {
        reply_err(o, s, "tempfail", "customer table unusable", 0);
        return;
    }
    if (c != NULL)
        ok = check_secret(s, c, m, cram, &why);
    else
        (void)check_secret(s, NULL, m, cram, &e);   /* the same work as a known name */
    if (c != NULL && ok)
        auth_ok(o, s, name, c, now);
    else
        auth_failed(o, s, name, mech, why, now);
    customer_free(c);
}

/* --- ATRN: a delivery process per turnaround --- */

static struct delivery *
free_delivery(struct odmr *o)
{
    size_t i;

    for (i = 0; i < o->nslots; i++)
        if (o->dl[i].pid == 0)
            return &o->dl[i];
    return NULL;
}

static void
req_atrn(struct odmr *o, struct bsess *s, const struct ctl_msg *m)
{
    const char *domains = ctl_msg_get(m, "domains");
    struct epoll_event ee = {.events = EPOLLIN};
    struct odmr_delivery_args a;
    struct delivery *d;
    struct ctl_msg ok;
    int data[2], st[2];
    pid_t pid;

    if (s->customer[0] == '\0') {
        reply_err(o, s, "bad-state", "not authenticated", 0);
        return;
    }
    if ((d = free_delivery(o)) == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data) < 0) {
        reply_err(o, s, "tempfail", "no delivery slot", 0);
        return;
    }
    st[0] = st[1] = -1;
    if (pipe2(st, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        log_warn("odmr: client=%s, customer=%s: cannot start a delivery", s->peer, s->customer);
        (void)close(data[0]);
        (void)close(data[1]);
        if (st[0] >= 0) {
            (void)close(st[0]);
            (void)close(st[1]);
        }
        reply_err(o, s, "tempfail", "cannot start a delivery", 0);
        return;
    }
    if (pid == 0) {
        memset(&a, 0, sizeof(a));
        a.cfg = o->cfg;
        a.spool = o->spool;
        a.customer = s->customer;
        a.domains = domains != NULL ? domains : "";
        a.fd = data[1];
        a.status_fd = st[1];
        a.peer = s->peer;
        odmr_delivery(&a);
    }
    (void)close(data[1]);
    (void)close(st[1]);
    d->pid = pid;
    d->status_fd = st[0];
    ee.data.u64 = TAG_DELIVERY | (uint64_t)(d - o->dl);
    if (fd_set_nonblock(st[0]) < 0 || epoll_ctl(o->epfd, EPOLL_CTL_ADD, st[0], &ee) < 0)
        log_warn("odmr: status pipe of delivery %d", (int)pid);
    ctl_reply_ok(&ok);
    reply(o, s, &ok, data[0]);
    (void)close(data[0]);
}

static void
request(struct odmr *o, struct bsess *s, const struct ctl_msg *m, time_t now)
{
    if (strcmp(m->verb, "CHALLENGE") == 0)
        req_challenge(o, s);
    else if (strcmp(m->verb, "AUTH") == 0)
        req_auth(o, s, m, now);
    else if (strcmp(m->verb, "ATRN") == 0)
        req_atrn(o, s, m);
    else
        reply_err(o, s, "unknown-verb", m->verb, 0);
}

/* --- sessions --- */

static void
sess_close(struct odmr *o, struct bsess *s)
{
    if (s->fd < 0)
        return;
    (void)epoll_ctl(o->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    (void)close(s->fd);
    OPENSSL_cleanse(s, sizeof(*s));
    s->fd = -1;
    o->nsess--;
    metrics_set(METRIC_ODMR_SESSIONS, 0, (double)o->nsess);
}

static void
sess_event(struct odmr *o, struct bsess *s, time_t now)
{
    struct ctl_msg m;
    struct errbuf err;
    int i, rc;

    for (i = 0; i < MSGS_PER_EVENT && s->fd >= 0; i++) {
        if ((rc = odmr_chan_recv(s->fd, &m, NULL, &err)) == 1) {
            request(o, s, &m, now);
            continue;
        }
        if (rc < 0 && errno == EAGAIN)
            return;
        if (rc < 0)
            log_warnx("odmr: client=%s: session channel: %s; dropping it", s->peer, err.msg);
        sess_close(o, s);
    }
}

/* sess_add - a new session from the front (its channel in fd) */
static void
sess_add(struct odmr *o, const struct ctl_msg *m, int fd)
{
    const char *ip = ctl_msg_get(m, "ip"), *peer = ctl_msg_get(m, "peer"), *e;
    struct epoll_event ee = {.events = EPOLLIN};
    struct bsess *s = NULL;
    struct ipaddr a;
    size_t i;

    for (i = 0; i < o->nslots && s == NULL; i++)
        if (o->sess[i].fd < 0)
            s = &o->sess[i];
    if (s == NULL || ip == NULL || peer == NULL || ipaddr_parse(ip, &a, &e) < 0
        || strlen(peer) >= sizeof(s->peer)) {
        log_warnx("odmr: a new session was dropped (%s)", s == NULL ? "no free slot"
                                                                    : "malformed message");
        (void)close(fd);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->addr = a;
    (void)str_copy(s->peer, sizeof(s->peer), peer);
    ee.data.u64 = (uint64_t)(s - o->sess);
    if (fd_set_nonblock(fd) < 0 || epoll_ctl(o->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        log_warn("odmr: client=%s: session channel", s->peer);
        (void)close(fd);
        s->fd = -1;
        return;
    }
    o->nsess++;
    metrics_inc(METRIC_ODMR_SESSIONS_TOTAL, 0);
    metrics_set(METRIC_ODMR_SESSIONS, 0, (double)o->nsess);
}

/* front_event - messages from the front; -1 when it is gone */
static int
front_event(struct odmr *o)
{
    struct ctl_msg m;
    struct errbuf err;
    int i, rc, fd;

    for (i = 0; i < MSGS_PER_EVENT; i++) {
        if ((rc = odmr_chan_recv(o->front_fd, &m, &fd, &err)) == 1) {
            if (strcmp(m.verb, "SESSION") == 0 && fd >= 0)
                sess_add(o, &m, fd);
            else if (fd >= 0)
                (void)close(fd);
            continue;
        }
        if (rc < 0 && errno == EAGAIN)
            return 0;
        if (rc < 0 && errno == EPROTO) {
            log_warnx("odmr: front channel: %s (ignored)", err.msg);
            continue;
        }
        log_errorx("odmr: the front process is gone (%s): ODMR is down",
                   rc == 0 ? "it closed its channel" : err.msg);
        return -1;
    }
    return 0;
}

/* --- deliveries --- */

static void
reap(pid_t pid, const char *what)
{
    int st = 0;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st))
        log_warnx("odmr: %s %d ended by signal %d", what, (int)pid, WTERMSIG(st));
}

static void
delivery_event(struct odmr *o, struct delivery *d)
{
    char buf[64];
    ssize_t n;

    while ((n = read(d->status_fd, buf, sizeof(buf))) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    (void)epoll_ctl(o->epfd, EPOLL_CTL_DEL, d->status_fd, NULL);
    (void)close(d->status_fd);
    reap(d->pid, "delivery");
    d->pid = 0;
    d->status_fd = -1;
}

int
odmr_event(struct odmr *o, time_t now)
{
    struct epoll_event evs[16];
    uint64_t tag, idx;
    int i, n;

    if (o == NULL)
        return 0;
    if ((n = epoll_wait(o->epfd, evs, (int)ARRAY_LEN(evs), 0)) < 0) {
        if (errno != EINTR)
            log_warn("odmr: epoll_wait");
        return 0;
    }
    for (i = 0; i < n; i++) {
        tag = evs[i].data.u64;
        idx = tag & TAG_INDEX;
        if (tag & TAG_FRONT) {
            if (front_event(o) < 0)
                return -1;
        } else if (tag & TAG_DELIVERY) {
            if (idx < o->nslots && o->dl[idx].pid != 0)
                delivery_event(o, &o->dl[idx]);
        } else if (idx < o->nslots && o->sess[idx].fd >= 0) {
            sess_event(o, &o->sess[idx], now);
        }
    }
    return 0;
}

void
odmr_close(struct odmr *o)
{
    size_t i;

    if (o == NULL)
        return;
    if (o->front > 0) {              /* another user: it goes when its channel closes */
        if (o->front_fd >= 0)
            (void)close(o->front_fd);
        reap(o->front, "front process");
    }
    for (i = 0; i < o->nslots && o->dl != NULL; i++)
        if (o->dl[i].pid != 0 && kill(o->dl[i].pid, SIGTERM) < 0)
            log_warn("odmr: kill %d", (int)o->dl[i].pid);
    for (i = 0; i < o->nslots && o->dl != NULL; i++)
        if (o->dl[i].pid != 0) {
            (void)close(o->dl[i].status_fd);
            reap(o->dl[i].pid, "delivery");
        }
    for (i = 0; i < o->nslots && o->sess != NULL; i++)
        if (o->sess[i].fd >= 0)
            (void)close(o->sess[i].fd);
    for (i = 0; i < o->nlfd; i++)
        (void)close(o->lfd[i]);
    if (o->epfd >= 0)
        (void)close(o->epfd);
    if (o->tls != NULL)
        SSL_CTX_free(o->tls);
    x_free(o->sess);
    x_free(o->dl);
    odmr_limits_free(o->limits);
    x_free(o);
}
