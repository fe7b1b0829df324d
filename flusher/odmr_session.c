/* SPDX-License-Identifier: ISC */
/*
 * odmr_session.c - one ODMR session (RFC 2645) in a forked child of
 * autoturn-flusher (see odmr_session.h). Owns the client connection (via
 * netio), its TLS session, the authentication state, the customer's spool
 * lock once ATRN is accepted, and the hand-over of the connection to the
 * delivery engine (deliver.c): this file speaks the ODMR commands, the
 * engine speaks SMTP after the turnaround.
 *
 * States: greeted -> EHLO -> [STARTTLS -> EHLO] -> AUTH -> ATRN. Before
 * ATRN only EHLO, AUTH, STARTTLS, NOOP, RSET and QUIT exist; anything
 * else is 502 (RFC 2645 5.1). ATRN replies: 530 without AUTH, 450 if a
 * domain is not the customer's (nothing is sent), 451 if a delivery for
 * the customer is running, 453 if nothing is held for the domains, 250
 * and the turnaround otherwise.
 *
 * SECURITY: the client is an untrusted network peer until AUTH succeeds,
 * and only ever acts for the customer it authenticated as. Lines are
 * bounded (ODMR_LINE_MAX; longer ones get 500 and are discarded), every
 * read has the configured timeout, the whole session is bounded by
 * flush_timeout (alarm), the number of commands and of errors before ATRN
 * is capped, and failed AUTH attempts are delayed (auth_delay x their
 * number), limited per connection (max_auth_failures) and reported to the
 * parent, which limits them per address across connections. Passwords
 * never reach the logs. AUTH PLAIN is refused without TLS (538).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "custdb.h"
#include "customer.h"
#include "deliver.h"
#include "log.h"
#include "netio.h"
#include "odmr_parse.h"
#include "odmr_session.h"
#include "secret.h"
#include "util.h"

#define ODMR_COMMANDS_MAX   100    /* commands before ATRN */
#define ODMR_ERRORS_MAX     10     /* refused or malformed commands before ATRN */
#define ODMR_REPLY_TIMEOUT  60     /* seconds to write one reply */
#define ODMR_CHALLENGE_MAX  (64 + CONFIG_TEXT_MAX)

struct session {
    const struct odmr_session_args *a;
    const struct config_odmr *cfg;
    struct netio io;
    struct custdb *db;
    bool ehlo;                      /* EHLO seen (again after STARTTLS) */
    bool tls;                       /* TLS is on */
    struct customer *cust;          /* authenticated as; NULL before */
    unsigned auth_failures;
    unsigned commands, errors;
    bool done;                      /* close the connection */
    char verb[16];                  /* the command being answered, for logs */
    char who[ODMR_PEER_MAX + CUSTOMER_NAME_MAX + 32];  /* "[addr]:port" or + ", customer=x" */
};

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
    if (s->cust != NULL)
        (void)str_printf(s->who, sizeof(s->who), "client=%s, customer=%s", s->a->peer,
                         s->cust->name);
    else
        (void)str_printf(s->who, sizeof(s->who), "client=%s", s->a->peer);
}

/* --- input --- */

/* read_line - the next line; NULL when the session is over (EOF,
 * timeout: logged) or on a too-long line (500 sent, *again set) */
static char *
read_line(struct session *s, size_t *len_r, bool *again)
{
    struct errbuf err;
    char *line;
    int rc;

    *again = false;
    rc = netio_read_line(&s->io, netio_deadline((unsigned)s->cfg->timeout), ODMR_LINE_MAX, &line,
                         len_r, &err);
    s->verb[0] = '\0';
    if (rc == NETIO_TOO_LONG) {
        log_warnx("odmr: %s: line longer than %d bytes", s->who, ODMR_LINE_MAX);
        refuse(s, "500 5.5.2 Line too long");
        *again = !s->done;
        return NULL;
    }
    if (rc < 0) {
        if (strncmp(err.msg, "timeout", 7) == 0) {
            log_warnx("odmr: %s: %s", s->who, err.msg);
            s->io.broken = false;          /* still writable: say why we go */
            reply(s, "421 4.4.2 Timeout, closing connection");
        } else {
            log_info("odmr: %s: %s", s->who, err.msg);
        }
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

/* --- AUTH --- */

/* auth_failed - delay, count (here and at the parent), maybe disconnect */
static void
auth_failed(struct session *s, const char *user, const char *mech, const char *why)
{
    static const char line[] = "AUTHFAIL\n";

    s->auth_failures++;
    log_warnx("odmr: client=%s, customer=%s: AUTH %s failed: %s (%u of %llu)", s->a->peer,
              user[0] != '\0' ? user : "?", mech, why, s->auth_failures,
              (unsigned long long)s->cfg->max_auth_failures);
    if (fd_write_all(s->a->status_fd, line, sizeof(line) - 1) < 0)
        log_warn("odmr: %s: status pipe", s->who);
    if (s->cfg->auth_delay > 0)
        sleep((unsigned)(s->cfg->auth_delay * s->auth_failures));
    if (s->auth_failures >= s->cfg->max_auth_failures) {
        reply(s, "421 4.7.0 Too many authentication failures, closing connection");
        s->done = true;
        return;
    }
    refuse(s, "535 5.7.8 Authentication credentials invalid");
}

/* lookup_user - the customer user may authenticate as, with a secret and
 * the atrn trigger; NULL with why */
static struct customer *
lookup_user(struct session *s, const char *user, const char **why)
{
    struct customer *c = NULL;
    struct errbuf err;
    const char *e;
    int rc;

    if (!customer_name_valid(user, &e)) {
        *why = "not a customer name";
        return NULL;
    }
    if ((rc = custdb_lookup_name(s->db, user, &c, &err)) < 0) {
        log_warnx("odmr: %s: customer table: %s", s->who, err.msg);
        *why = "customer table unusable";
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

static void
authenticated(struct session *s, struct customer *c, const char *mech)
{
    s->cust = c;
    set_who(s);
    log_info("odmr: %s: authenticated (%s%s)", s->who, mech, s->tls ? ", TLS" : "");
    reply(s, "235 2.7.0 Authentication successful");
}

static void
auth_cram(struct session *s)
{
    char challenge[ODMR_CHALLENGE_MAX], enc[2 * ODMR_CHALLENGE_MAX], line334[2 * ODMR_CHALLENGE_MAX + 8];
    unsigned char dec[ODMR_AUTH_DECODED + 1];
    char user[CUSTOMER_NAME_MAX + 2] = "";
    struct customer *c;
    const char *why = "malformed response", *digest;
    uint64_t nonce = 0;
    ssize_t n;
    size_t len;
    char *resp;

    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce ^= (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (str_printf(challenge, sizeof(challenge), "<%llu.%lld@%s>", (unsigned long long)nonce,
                   (long long)time(NULL), s->a->cfg->flusher.myhostname) < 0
        || odmr_b64_encode(challenge, strlen(challenge), enc, sizeof(enc)) < 0
        || str_printf(line334, sizeof(line334), "334 %s", enc) < 0) {
        refuse(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    reply(s, line334);
    if (s->done || (resp = read_response(s, &len)) == NULL)
        return;
    if ((n = odmr_b64_decode(resp, len, dec, sizeof(dec) - 1)) > 0) {
        dec[n] = '\0';
        /* sizeof(user) - 1: a name longer than CUSTOMER_NAME_MAX is malformed */
        if (odmr_cram_fields(dec, (size_t)n, user, sizeof(user) - 1, &digest) == 0) {
            if ((c = lookup_user(s, user, &why)) != NULL) {
                if (secret_cram_verify(&c->secret, challenge, strlen(challenge), digest)) {
                    authenticated(s, c, "CRAM-MD5");
                    return;
                }
                why = "wrong secret";
                customer_free(c);
            }
        }
    }
    auth_failed(s, user, "CRAM-MD5", why);
}

static void
auth_plain(struct session *s, const char *initial)
{
    unsigned char dec[ODMR_AUTH_DECODED + 1];
    char user[CUSTOMER_NAME_MAX + 2] = "";
    const char *authz, *authc, *pass, *why = "malformed response";
    struct customer *c;
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
    if (n > 0 && odmr_plain_fields(dec, (size_t)n, &authz, &authc, &pass, &passlen) == 0) {
        (void)str_copy(user, sizeof(user), authc);
        if (authz[0] != '\0' && strcmp(authz, authc) != 0)
            why = "authorization identity differs";
        else if ((c = lookup_user(s, authc, &why)) != NULL) {
            if (secret_plain_verify(&c->secret, pass, passlen)) {
                OPENSSL_cleanse(dec, sizeof(dec));
                authenticated(s, c, "PLAIN");
                return;
            }
            why = "wrong password";
            customer_free(c);
        }
    }
    OPENSSL_cleanse(dec, sizeof(dec));
    auth_failed(s, user, "PLAIN", why);
}

static void
cmd_auth(struct session *s, char *arg)
{
    char *mech = arg, *initial;

    if (!s->ehlo) {
        refuse(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (s->cust != NULL) {
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
    if (s->tls || s->cust != NULL) {
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
    if (netio_tls_start(&s->io, s->a->tls, true, NULL, false,
                        netio_deadline((unsigned)s->cfg->timeout), &err) < 0) {
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

/* domains_owned - every domain is held for s->cust; else the first that is not */
static const char *
domains_owned(struct session *s, const struct odmr_domains *d, bool *error_r)
{
    struct customer *c;
    struct errbuf err;
    size_t i;
    int rc;

    *error_r = false;
    for (i = 0; i < d->n; i++) {
        c = NULL;
        if ((rc = custdb_lookup_domain(s->db, d->v[i], &c, NULL, &err)) < 0) {
            log_warnx("odmr: %s: customer table: %s", s->who, err.msg);
            *error_r = true;
            return d->v[i];
        }
        rc = rc == 1 && strcmp(c->name, s->cust->name) == 0;
        customer_free(c);
        if (!rc)
            return d->v[i];
    }
    return NULL;
}

/* turnaround - 250, then the engine delivers over this connection */
static void
turnaround(struct session *s, const struct odmr_domains *d, const struct spool_entry *v, size_t n)
{
    struct deliver_req r;
    struct deliver_result res;
    SSL_CTX *ctx = s->tls ? s->a->tls : NULL;

    reply(s, "250 OK now reversing the connection");
    if (s->done)
        return;
    log_info("odmr: %s: ATRN accepted (%s); turning the connection around", s->who,
             d->n > 0 ? "listed domains" : "all domains");
    memset(&r, 0, sizeof(r));
    r.cfg = s->a->cfg;
    r.spool = s->a->spool;
    r.cust = s->cust;
    r.to = "";
    r.reason = "atrn";
    r.client_fd = -1;
    r.status_fd = -1;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);                 /* the engine frees its reference */
    deliver_reversed(&r, s->io.fd, ctx, s->io.ssl, s->a->peer,
                     (unsigned)s->a->cfg->flusher.odmr.turnaround_timeout,
                     d->n > 0 ? (const char *const *)d->v : NULL, d->n, v, n, &res);
    s->io.fd = -1;                           /* consumed */
    s->io.ssl = NULL;
    s->done = true;
}

static void
cmd_atrn(struct session *s, char *arg)
{
    struct odmr_domains *d = NULL;
    struct spool_entry *v = NULL;
    struct errbuf err;
    const char *bad, *why;
    size_t n = 0;
    bool tablerr;
    int lockfd = -1, rc;

    if (!s->ehlo) {
        refuse(s, "503 5.5.1 Send EHLO first");
        return;
    }
    if (s->cust == NULL) {
        log_warnx("odmr: %s: ATRN without AUTH", s->who);
        refuse(s, "530 5.7.0 Authentication required");
        return;
    }
    if (netio_pending(&s->io) != 0) {
        refuse(s, "503 5.5.1 ATRN must be the last command sent");
        return;
    }
    if ((d = x_calloc(1, sizeof(*d))) == NULL) {
        reply(s, "451 4.3.0 Unable to process ATRN request now");
        return;
    }
    if (arg != NULL && *arg != '\0' && odmr_parse_domains(arg, d, &why) < 0) {
        log_warnx("odmr: %s: ATRN refused: bad domain list", s->who);
        refuse(s, why);
        goto out;
    }
    if ((bad = domains_owned(s, d, &tablerr)) != NULL) {
        log_warnx("odmr: %s: ATRN refused: %s %s", s->who, bad,
                  tablerr ? "cannot be looked up" : "is not a domain of this customer");
        reply(s, tablerr ? "451 4.3.0 Unable to process ATRN request now"
                         : "450 4.7.1 Access denied to you");
        goto out;
    }
    if ((rc = spool_lock(s->a->spool, s->cust->name, false, &lockfd, &err)) <= 0) {
        if (rc == 0)
            log_info("odmr: %s: ATRN refused: a delivery for this customer is running", s->who);
        else
            log_warnx("odmr: %s: cannot lock the spool: %s", s->who, err.msg);
        reply(s, rc == 0 ? "451 4.4.0 A delivery for this customer is already running; try "
                           "again later" : "451 4.3.0 Unable to process ATRN request now");
        goto out;
    }
    if (spool_list(s->a->spool, s->cust->name, &v, &n, &err) < 0
        || (rc = deliver_any_for(&(struct deliver_req){.cfg = s->a->cfg, .spool = s->a->spool,
                                                       .cust = s->cust},
                                 d->n > 0 ? (const char *const *)d->v : NULL, d->n, v, n,
                                 &err)) < 0) {
        log_warnx("odmr: %s: cannot read the spool: %s", s->who, err.msg);
        reply(s, "451 4.3.0 Unable to process ATRN request now");
        goto out;
    }
    if (rc == 0) {
        log_info("odmr: %s: ATRN: nothing held", s->who);
        reply(s, "453 You have no mail");
        goto out;
    }
    turnaround(s, d, v, n);
out:
    spool_unlock(lockfd);
    x_free(v);
    x_free(d);
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

void
odmr_session(const struct odmr_session_args *a)
{
    struct session s;
    size_t len;
    bool again;
    char *line;

    deliver_child_setup(a->cfg, a->fd, a->status_fd);
    memset(&s, 0, sizeof(s));
    s.a = a;
    s.cfg = &a->cfg->flusher.odmr;
    netio_init(&s.io, a->fd, a->peer);
    set_who(&s);
    if (fd_set_nonblock(a->fd) < 0 || (s.db = custdb_new(a->cfg->customers_table)) == NULL) {
        log_warn("odmr: %s: session set-up", s.who);
        _exit(1);
    }
    if (a->cfg->flusher.flush_timeout > 0)
        alarm((unsigned)a->cfg->flusher.flush_timeout);   /* default action: the child dies */
    {
        char greeting[CONFIG_TEXT_MAX + 64];

        (void)str_printf(greeting, sizeof(greeting), "220 %s ESMTP autoturn ODMR service ready",
                         a->cfg->flusher.myhostname);
        reply(&s, greeting);
    }
    while (!s.done) {
        if ((line = read_line(&s, &len, &again)) != NULL)
            command(&s, line);
        else if (!again)
            break;
    }
    if (s.io.fd >= 0)
        netio_close(&s.io);
    customer_free(s.cust);
    custdb_free(s.db);
    _exit(0);
}
