/* SPDX-License-Identifier: ISC */
/*
 * odmr_session.c - one ODMR session (RFC 2645) in a process forked by the
 * front (see odmr_session.h). Owns the client connection (via netio), its
 * TLS session, the session's state (EHLO seen, TLS on, the customer the
 * broker authenticated it as) and, after ATRN, the relay between the
 * client and the delivery process: this file speaks the ODMR commands,
 * the delivery process speaks SMTP after the turnaround.
 *
 * States: greeted -> EHLO -> [STARTTLS -> EHLO] -> AUTH -> ATRN. Before
 * ATRN only EHLO, AUTH, STARTTLS, NOOP, RSET and QUIT exist; anything
 * else is 502 (RFC 2645 5.1). ATRN replies come from the delivery
 * process: 450 if a domain is not the customer's (nothing is sent), 451
 * if a delivery for the customer is running, 453 if nothing is held, 250
 * and the turnaround otherwise; 530 without AUTH.
 *
 * SECURITY: the client is an untrusted network peer, and this process
 * parses its bytes: it runs as odmr.user, confined by the front (no file
 * access where the kernel has Landlock), and holds no secret and no spool
 * access. It never decides who the client is: the broker makes the
 * CRAM-MD5 challenge, checks the response or the PLAIN password, and
 * counts and delays failures (auth_delay x failures, max_auth_failures
 * per connection, per address, per account). Lines are bounded
 * (ODMR_LINE_MAX; longer ones get 500 and are discarded), every read has
 * the configured timeout, the time from the greeting to a successful AUTH
 * is bounded by preauth_timeout, the whole session by flush_timeout
 * (alarm), and the number of commands and of errors before ATRN is
 * capped. Passwords never reach the logs. AUTH PLAIN is refused without
 * TLS (538).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "customer.h"
#include "deliver.h"
#include "log.h"
#include "netio.h"
#include "odmr_parse.h"
#include "odmr_deliver.h"
#include "odmr_session.h"
#include "units.h"
#include "util.h"

#define ODMR_COMMANDS_MAX   100    /* commands before ATRN */
#define ODMR_ERRORS_MAX     10     /* refused or malformed commands before ATRN */
#define ODMR_REPLY_TIMEOUT  60     /* seconds to write one reply */
#define RELAY_BUF           16384

struct session {
    const struct odmr_session_args *a;
    const struct config_odmr *cfg;
    struct netio io;
    bool ehlo;                      /* EHLO seen (again after STARTTLS) */
    bool tls;                       /* TLS is on */
    char customer[CUSTOMER_NAME_MAX + 1];   /* as the broker authenticated it; "" before */
    bool tls_required;              /* the customer has "tls encrypt" (the broker says) */
    int64_t preauth_deadline;       /* ms: AUTH must have succeeded by then */
    unsigned commands, errors;
    bool done;                      /* close the connection */
    char verb[16];                  /* the command being answered, for logs */
    char who[ODMR_PEER_MAX + CUSTOMER_NAME_MAX + 32];  /* "client=[addr]:port[, customer=x]" */
};

/* --- signals: the front closes a session with SIGUSR1 (to make room
 * before AUTH) or SIGTERM (stopping); a plain-text session says why --- */

static volatile sig_atomic_t plain_fd = -1;      /* -1: TLS on, or relaying: say nothing */

static void
on_signal(int sig)
{
    static const char room[] = "421 4.7.0 Too many unauthenticated connections, try again later\r\n";
    static const char down[] = "421 4.3.2 Service shutting down\r\n";

    if (plain_fd >= 0) {
        if (sig == SIGUSR1)
            (void)!write(plain_fd, room, sizeof(room) - 1);
        else
            (void)!write(plain_fd, down, sizeof(down) - 1);
    }
    _exit(0);
}

static void
signals(int fd)
{
    static const int dfl[] = {SIGCHLD, SIGINT, SIGALRM, SIGUSR2};
    struct sigaction sa;
    sigset_t none;
    size_t i;

    for (i = 0; i < ARRAY_LEN(dfl); i++)
        signal(dfl[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGUSR1, &sa, NULL);
    plain_fd = fd;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* --- replies --- */

static void
reply(struct session *s, const char *text)
{
    struct errbuf err;

    if (netio_put(&s->io, text, strlen(text), ODMR_REPLY_TIMEOUT, &err) < 0
        || netio_put(&s->io, "\r\n", 2, ODMR_REPLY_TIMEOUT, &err) < 0
        || netio_flush(&s->io, ODMR_REPLY_TIMEOUT, &err) < 0) {
        log_info("odmr: %s: %s", s->who, err.msg);
        s->done = true;
    }
}

/* refuse - a refused or malformed command: log, reply, count, maybe give up */
static void
refuse(struct session *s, const char *text)
{
    log_info("odmr: %s: %s refused: %s", s->who, s->verb[0] != '\0' ? s->verb : "line", text);
    reply(s, text);
    if (++s->errors >= ODMR_ERRORS_MAX && !s->done) {
        log_warnx("odmr: %s: too many errors; disconnecting", s->who);
        reply(s, "421 4.7.0 Too many errors, closing connection");
        s->done = true;
    }
}

static void
set_who(struct session *s)
{
    if (s->customer[0] != '\0')
        (void)str_printf(s->who, sizeof(s->who), "client=%s, customer=%s", s->a->peer,
                         s->customer);
    else
        (void)str_printf(s->who, sizeof(s->who), "client=%s", s->a->peer);
}

/* --- input --- */

/* deadline - the next read's: the command timeout, or sooner the end of
 * preauth_timeout before AUTH */
static int64_t
deadline(const struct session *s)
{
    int64_t d = netio_deadline((unsigned)s->cfg->timeout);

    return s->customer[0] == '\0' && s->preauth_deadline < d ? s->preauth_deadline : d;
}

static void
timed_out(struct session *s, const char *what)
{
    s->io.broken = false;          /* still writable: say why we go */
    if (s->customer[0] == '\0' && netio_now_ms() >= s->preauth_deadline) {
        log_warnx("odmr: %s: no successful AUTH within preauth_timeout (%llus); disconnecting",
                  s->who, (unsigned long long)s->cfg->preauth_timeout);
        reply(s, "421 4.7.0 Authentication timeout, closing connection");
    } else {
        log_warnx("odmr: %s: %s", s->who, what);
        reply(s, "421 4.4.2 Timeout, closing connection");
    }
}

/* read_line - the next line; NULL when the session is over (EOF,
 * timeout: logged) or on a too-long line (500 sent, *again set) */
static char *
read_line(struct session *s, size_t *len_r, bool *again)
{
    struct errbuf err;
    char *line;
    int rc;

    *again = false;
    rc = netio_read_line(&s->io, deadline(s), ODMR_LINE_MAX, &line, len_r, &err);
    s->verb[0] = '\0';
    if (rc == NETIO_TOO_LONG) {
        log_warnx("odmr: %s: line longer than %d bytes", s->who, ODMR_LINE_MAX);
        refuse(s, "500 5.5.2 Line too long");
        *again = !s->done;
        return NULL;
    }
    if (rc < 0) {
        if (strncmp(err.msg, "timeout", 7) == 0)
            timed_out(s, err.msg);
        else
            log_info("odmr: %s: %s", s->who, err.msg);
        s->done = true;
        return NULL;
    }
    line[*len_r] = '\0';
    if (strlen(line) != *len_r) {
        refuse(s, "500 5.5.2 NUL byte in command");
        *again = !s->done;
        return NULL;
    }
    return line;
}

/* --- the broker --- */

/* broker - one request, its answer (passfd_r as odmr_chan_recv); -1 when
 * the broker does not answer (logged) */
static int
broker(struct session *s, const struct ctl_msg *req, struct ctl_msg *ans, int *passfd_r)
{
    struct errbuf err;
    int rc;

    if ((rc = odmr_chan_call(s->a->broker_fd, req, ans, passfd_r, ODMR_BROKER_TIMEOUT,
                             &err)) <= 0) {
        log_warnx("odmr: %s: the broker does not answer: %s", s->who,
                  rc == 0 ? "channel closed" : err.msg);
        return -1;
    }
    return 0;
}

/* --- AUTH --- */

static void
authenticated(struct session *s, const char *user, const char *mech, const char *tls)
{
    static const char line[] = "AUTHOK\n";

    (void)str_copy(s->customer, sizeof(s->customer), user);   /* the broker checked it */
    s->tls_required = tls != NULL && strcmp(tls, "encrypt") == 0;
    set_who(s);
    if (fd_write_all(s->a->status_fd, line, sizeof(line) - 1) < 0)
        log_warn("odmr: %s: status pipe", s->who);
    log_info("odmr: %s: authenticated (%s%s)", s->who, mech, s->tls ? ", TLS" : "");
    reply(s, "235 2.7.0 Authentication successful");
}

/* verdict - the broker's answer to AUTH, told to the client */
static void
verdict(struct session *s, const struct ctl_msg *ans, const char *user, const char *mech)
{
    const char *code = ctl_msg_get(ans, "code"), *delay = ctl_msg_get(ans, "delay"), *e;
    uint64_t d = 0;

    if (strcmp(ans->verb, "OK") == 0) {
        authenticated(s, user, mech, ctl_msg_get(ans, "tls"));
        return;
    }
    if (delay != NULL && units_parse_uint(delay, 3600, &d, &e) == 0 && d > 0)
        sleep((unsigned)d);
    if (code != NULL && strcmp(code, "failed") == 0) {
        refuse(s, "535 5.7.8 Authentication credentials invalid");
    } else if (code != NULL && strcmp(code, "closed") == 0) {
        reply(s, "421 4.7.0 Too many authentication failures, closing connection");
        s->done = true;
    } else if (code != NULL && strcmp(code, "blocked") == 0) {
        reply(s, "421 4.7.0 Too many failed authentications from your address, try again later");
        s->done = true;
    } else {
        refuse(s, "454 4.7.0 Temporary authentication failure, try again later");
    }
}

/* auth_ask - the credentials to the broker (mech, user, then key/value
 * pairs), and its verdict */
static void
auth_ask(struct session *s, const char *mech, const char *user, const char *k1, const char *v1,
         const char *k2, const char *v2)
{
    struct ctl_msg req, ans;

    if (ctl_msg_init(&req, "AUTH") < 0 || ctl_msg_add(&req, "mech", mech) < 0
        || ctl_msg_add(&req, "user", user) < 0 || (k1 != NULL && ctl_msg_add(&req, k1, v1) < 0)
        || (k2 != NULL && ctl_msg_add(&req, k2, v2) < 0)) {
        OPENSSL_cleanse(&req, sizeof(req));
        refuse(s, "501 5.5.2 Cannot decode response");
        return;
    }
    if (broker(s, &req, &ans, NULL) < 0)
        refuse(s, "454 4.7.0 Temporary authentication failure, try again later");
    else
        verdict(s, &ans, user, mech);
    OPENSSL_cleanse(&req, sizeof(req));
}

/* read_response - the client's line after a 334; NULL if aborted ("*",
 * 501 sent) or the session ended */
static char *
read_response(struct session *s, size_t *len_r)
{
    bool again;
    char *line = read_line(s, len_r, &again);

    if (line != NULL && strcmp(line, "*") == 0) {
        refuse(s, "501 5.7.0 Authentication aborted");
        return NULL;
    }
    return line;
}

/* cram_fields - "user SP 32-hex-digest" from the decoded response; the
 * user may be "" (malformed: the broker still counts the failure) */
static void
cram_fields(const unsigned char *dec, ssize_t n, char *user, size_t usize, const char **digest)
{
    if (n <= 0 || odmr_cram_fields(dec, (size_t)n, user, usize, digest) < 0) {
        user[0] = '\0';
        *digest = "";
    }
}

static void
auth_cram(struct session *s)
{
    char enc[2 * ODMR_CHALLENGE_MAX], line334[2 * ODMR_CHALLENGE_MAX + 8];
    unsigned char dec[ODMR_AUTH_DECODED + 1];
    char user[CUSTOMER_NAME_MAX + 2];
    struct ctl_msg req, ans;
    const char *challenge, *digest;
    ssize_t n;
    size_t len;
    char *resp;

    if (ctl_msg_init(&req, "CHALLENGE") < 0 || broker(s, &req, &ans, NULL) < 0
        || strcmp(ans.verb, "OK") != 0 || (challenge = ctl_msg_get(&ans, "challenge")) == NULL
        || odmr_b64_encode(challenge, strlen(challenge), enc, sizeof(enc)) < 0
        || str_printf(line334, sizeof(line334), "334 %s", enc) < 0) {
        refuse(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    reply(s, line334);
    if (s->done || (resp = read_response(s, &len)) == NULL)
        return;
    n = odmr_b64_decode(resp, len, dec, sizeof(dec) - 1);
    if (n >= 0)
        dec[n] = '\0';
    cram_fields(dec, n, user, sizeof(user), &digest);
    auth_ask(s, "CRAM-MD5", user, "digest", digest, NULL, NULL);
}

static void
auth_plain(struct session *s, const char *initial)
{
    unsigned char dec[ODMR_AUTH_DECODED + 1];
    const char *authz = "", *authc = "", *pass = "";
    size_t len, passlen;
    ssize_t n;
    char *resp;

    if (!s->tls) {
        refuse(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (initial != NULL && strcmp(initial, "=") == 0)
        initial = "";
    if ((resp = (char *)initial) == NULL) {
        reply(s, "334 ");
        if (s->done || (resp = read_response(s, &len)) == NULL)
            return;
    }
    len = strlen(resp);
    n = odmr_b64_decode(resp, len, dec, sizeof(dec) - 1);
    if (n > 0) {
        dec[n] = '\0';
        if (odmr_plain_fields(dec, (size_t)n, &authz, &authc, &pass, &passlen) < 0)
            authz = authc = pass = "";
    }
    auth_ask(s, "PLAIN", authc, "authz", authz, "pass", pass);
    OPENSSL_cleanse(dec, sizeof(dec));
}

static void
cmd_auth(struct session *s, char *arg)
{
    char *mech = arg, *initial;

    if (!s->ehlo) {
        refuse(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (s->customer[0] != '\0') {
        refuse(s, "503 5.5.1 Already authenticated");
        return;
    }
    if (mech == NULL || *mech == '\0') {
        refuse(s, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    if ((initial = strchr(mech, ' ')) != NULL)
        *initial++ = '\0';
    if (str_ieq(mech, "CRAM-MD5") && initial == NULL)
        auth_cram(s);
    else if (str_ieq(mech, "PLAIN"))
        auth_plain(s, initial);
    else if (str_ieq(mech, "CRAM-MD5"))
        refuse(s, "501 5.5.4 CRAM-MD5 takes no initial response");
    else
        refuse(s, "504 5.5.4 Unrecognized authentication type");
}

/* --- EHLO, STARTTLS --- */

static void
cmd_ehlo(struct session *s, const char *arg)
{
    char line[CONFIG_TEXT_MAX + ODMR_PEER_MAX + 32];

    if (arg == NULL || *arg == '\0') {
        refuse(s, "501 5.5.4 Syntax: EHLO hostname");
        return;
    }
    (void)str_printf(line, sizeof(line), "250-%s Hello %s", s->a->cfg->flusher.myhostname,
                     s->a->peer);
    reply(s, line);
    reply(s, s->tls ? "250-AUTH CRAM-MD5 PLAIN" : "250-AUTH CRAM-MD5");
    if (s->a->tls != NULL && !s->tls)
        reply(s, "250-STARTTLS");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250 ATRN");
    s->ehlo = true;
}

static void
cmd_starttls(struct session *s, const char *arg)
{
    struct errbuf err;

    if (s->a->tls == NULL) {
        refuse(s, "502 5.5.1 STARTTLS not available");
        return;
    }
    if (s->tls || s->customer[0] != '\0') {
        refuse(s, "503 5.5.1 TLS already active or too late for STARTTLS");
        return;
    }
    if (arg != NULL) {
        refuse(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (netio_pending(&s->io) != 0) {
        log_warnx("odmr: %s: command sent after STARTTLS (pipelined); disconnecting", s->who);
        reply(s, "554 5.5.1 Commands after STARTTLS before the handshake are not allowed");
        s->done = true;
        return;
    }
    reply(s, "220 2.0.0 Ready to start TLS");
    if (s->done)
        return;
    plain_fd = -1;                           /* no plain-text 421 from here on */
    if (netio_tls_start(&s->io, s->a->tls, true, NULL, false, deadline(s), &err) < 0) {
        log_warnx("odmr: %s: %s", s->who, err.msg);
        s->done = true;
        return;
    }
    s->tls = true;
    s->ehlo = false;                         /* RFC 3207 4.2: forget what came before */
    log_info("odmr: %s: TLS established (%s, %s)", s->who, SSL_get_version(s->io.ssl),
             SSL_get_cipher_name(s->io.ssl));
}

/* --- ATRN --- */

/* domain_list - "d1,d2,..." normalised (odmr_parse_domains) into the
 * comma-separated list for the delivery process; NULL, or the reply */
static const char *
domain_list(char *arg, char *list, size_t size)
{
    struct odmr_domains d;
    const char *reply;
    size_t i, k, used = 0;

    list[0] = '\0';
    if (odmr_parse_domains(arg, &d, &reply) < 0)
        return reply;
    for (i = 0; i < d.n; i++) {
        k = strlen(d.v[i]);
        if (used + k + 2 > size)
            return "501 5.5.4 Domain list too long";
        if (used > 0)
            list[used++] = ',';
        memcpy(list + used, d.v[i], k + 1);
        used += k;
    }
    return NULL;
}

/* atrn_answer - the delivery process's one line "ATRN code= text=" (any
 * bytes after it, which there should not be, into *rest); 0, or -1 */
static int
atrn_answer(struct session *s, int dfd, char *code, size_t csize, char *text, size_t tsize)
{
    char buf[CTL_LINE_MAX];
    struct ctl_msg m;
    struct errbuf err;
    const char *c, *t;
    size_t len = 0;
    ssize_t n;

    while (len < sizeof(buf) && memchr(buf, '\n', len) == NULL) {
        if (netio_wait(dfd, POLLIN, netio_deadline((unsigned)s->cfg->timeout)) <= 0)
            return -1;
        if ((n = read(dfd, buf + len, 1)) <= 0)    /* byte by byte: nothing beyond the line */
            return -1;
        len += (size_t)n;
    }
    if (len == 0 || buf[len - 1] != '\n' || ctl_parse(buf, len, &m, &err) < 0
        || strcmp(m.verb, "ATRN") != 0 || (c = ctl_msg_get(&m, "code")) == NULL
        || (t = ctl_msg_get(&m, "text")) == NULL || str_copy(code, csize, c) < 0
        || str_copy(text, tsize, t) < 0)
        return -1;
    return 0;
}

/* relay_client - what the client sent, to the delivery process; -1 when done */
static int
relay_client(struct session *s, int dfd, char *buf)
{
    struct errbuf err;
    ssize_t n;

    if ((n = netio_read(&s->io, buf, RELAY_BUF, netio_deadline((unsigned)s->cfg->timeout),
                        &err)) < 0) {
        log_info("odmr: %s: %s", s->who, err.msg);
        return -1;
    }
    return fd_write_all(dfd, buf, (size_t)n);
}

/* relay_delivery - what the delivery process sent, to the client; -1 when done */
static int
relay_delivery(struct session *s, int dfd, char *buf)
{
    struct errbuf err;
    ssize_t n;

    if ((n = read(dfd, buf, RELAY_BUF)) < 0 && errno == EINTR)
        return 0;
    if (n <= 0)
        return -1;                           /* the delivery is over */
    if (netio_put(&s->io, buf, (size_t)n, ODMR_REPLY_TIMEOUT, &err) < 0
        || netio_flush(&s->io, ODMR_REPLY_TIMEOUT, &err) < 0) {
        log_info("odmr: %s: %s", s->who, err.msg);
        return -1;
    }
    return 0;
}

/* relay - after the turnaround: bytes both ways until either side is
 * done (the delivery process QUITs and closes; bounded by its timeouts
 * and by flush_timeout) */
static void
relay(struct session *s, int dfd)
{
    struct pollfd p[2];
    char *buf = x_calloc(1, RELAY_BUF);
    int rc = 0;

    if (buf == NULL) {
        log_warnx("odmr: %s: out of memory", s->who);
        return;
    }
    netio_set_quickack(&s->io);          /* the client is fetchmail: see netio.h */
    while (rc == 0) {
        p[0] = (struct pollfd){.fd = s->io.fd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = dfd, .events = POLLIN};
        if (s->io.ssl == NULL || SSL_pending(s->io.ssl) == 0) {
            if (poll(p, 2, -1) < 0) {
                rc = errno == EINTR ? 0 : -1;
                continue;
            }
        } else {
            p[0].revents = POLLIN;
        }
        if (p[1].revents != 0)
            rc = relay_delivery(s, dfd, buf);
        if (rc == 0 && p[0].revents != 0)
            rc = relay_client(s, dfd, buf);
    }
    x_free(buf);
}

static void
cmd_atrn(struct session *s, char *arg)
{
    char list[CTL_VALUE_MAX + 1], code[8], text[CTL_VALUE_MAX + 1], line[CTL_VALUE_MAX + 16];
    struct ctl_msg req, ans;
    const char *bad;
    int dfd = -1;

    if (!s->ehlo) {
        refuse(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (s->customer[0] == '\0') {
        log_warnx("odmr: %s: ATRN without AUTH", s->who);
        refuse(s, "530 5.7.0 Authentication required");
        return;
    }
    if (s->tls_required && !s->tls) {
        /* "tls encrypt" for ODMR: the turned-around session never starts
         * TLS itself (deliver.c), so this one must already be encrypted */
        refuse(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (netio_pending(&s->io) != 0) {
        refuse(s, "503 5.5.1 ATRN must be the last command sent");
        return;
    }
    list[0] = '\0';
    if (arg != NULL && *arg != '\0' && (bad = domain_list(arg, list, sizeof(list))) != NULL) {
        log_warnx("odmr: %s: ATRN refused: bad domain list", s->who);
        refuse(s, bad);
        return;
    }
    if (ctl_msg_init(&req, "ATRN") < 0 || ctl_msg_add(&req, "domains", list) < 0
        || broker(s, &req, &ans, &dfd) < 0 || strcmp(ans.verb, "OK") != 0 || dfd < 0
        || atrn_answer(s, dfd, code, sizeof(code), text, sizeof(text)) < 0) {
        log_warnx("odmr: %s: ATRN: no answer from the delivery process", s->who);
        reply(s, "451 4.3.0 Unable to process ATRN request now");
        if (dfd >= 0)
            (void)close(dfd);
        return;
    }
    (void)str_printf(line, sizeof(line), "%s %s", code, text);
    if (strcmp(code, "250") != 0) {
        (void)close(dfd);
        reply(s, line);
        return;
    }
    plain_fd = -1;                           /* the SMTP stream is the customer's now */
    reply(s, line);
    if (!s->done)
        relay(s, dfd);
    (void)close(dfd);
    s->done = true;
}

/* --- the command loop --- */

static void
command(struct session *s, char *line)
{
    char *arg = strchr(line, ' ');

    if (arg != NULL)
        *arg++ = '\0';
    (void)str_copy(s->verb, sizeof(s->verb), line);     /* truncation is fine for a log */
    str_lower(s->verb);
    for (char *p = s->verb; *p != '\0'; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            *p = '?';
    if (++s->commands > ODMR_COMMANDS_MAX) {
        log_warnx("odmr: %s: more than %d commands; disconnecting", s->who, ODMR_COMMANDS_MAX);
        reply(s, "421 4.7.0 Too many commands, closing connection");
        s->done = true;
    } else if (str_ieq(line, "EHLO"))
        cmd_ehlo(s, arg);
    else if (str_ieq(line, "AUTH"))
        cmd_auth(s, arg);
    else if (str_ieq(line, "STARTTLS"))
        cmd_starttls(s, arg);
    else if (str_ieq(line, "ATRN"))
        cmd_atrn(s, arg);
    else if (str_ieq(line, "NOOP"))
        reply(s, "250 2.0.0 OK");
    else if (str_ieq(line, "RSET"))
        reply(s, "250 2.0.0 OK");
    else if (str_ieq(line, "QUIT")) {
        reply(s, "221 2.0.0 Bye");
        s->done = true;
    } else if (line[0] == '\0')
        refuse(s, "500 5.5.2 Error: bad syntax");
    else
        refuse(s, "502 5.5.1 Command not implemented");
}

static void
greet(struct session *s)
{
    char greeting[CONFIG_TEXT_MAX + 64];

    (void)str_printf(greeting, sizeof(greeting), "220 %s ESMTP autoturn ODMR service ready",
                     s->a->cfg->flusher.myhostname);
    reply(s, greeting);
}

void
odmr_session(const struct odmr_session_args *a)
{
    const int keep[] = {a->fd, a->broker_fd, a->status_fd};
    struct session s;
    size_t len;
    bool again;
    char *line;

    signals(a->fd);
    fd_close_except(keep, ARRAY_LEN(keep));
    config_apply_logging(a->cfg, DELIVER_PROG);    /* the syslog socket was closed */
    memset(&s, 0, sizeof(s));
    s.a = a;
    s.cfg = &a->cfg->flusher.odmr;
    s.preauth_deadline = netio_deadline((unsigned)s.cfg->preauth_timeout);
    netio_init(&s.io, a->fd, a->peer);
    set_who(&s);
    if (fd_set_nonblock(a->fd) < 0) {
        log_warn("odmr: %s: session set-up", s.who);
        _exit(1);
    }
    if (a->cfg->flusher.flush_timeout > 0)
        alarm((unsigned)a->cfg->flusher.flush_timeout);   /* default action: the process dies */
    greet(&s);
    while (!s.done) {
        if ((line = read_line(&s, &len, &again)) != NULL)
            command(&s, line);
        else if (!again)
            break;
    }
    plain_fd = -1;
    if (s.io.fd >= 0)
        netio_close(&s.io);
    _exit(0);
}
