/* SPDX-License-Identifier: ISC */
/*
 * session.c - the libmilter callbacks: per-connection state (smfi_setpriv),
 * the held-recipient decision at RCPT, streaming the message into the
 * spool writers of hold.c, and the end-of-message verdict.
 *
 * Replies chosen here (the MTA passes them to the SMTP client):
 *   RCPT, table lookup error       451 4.3.0  (never "not held")
 *   RCPT, customer over quota      452 4.2.2
 *   RCPT, too many held recipients 452 4.5.3
 *   RCPT, address not storable     553 5.1.3 / sender 550 5.1.7
 *   header/body/EOM, spool failure 451 4.3.0  (nothing stored)
 *
 * The stored message is the MTA's message in SMTP wire form with CRLF line
 * ends: every header is rebuilt as name ":" value CRLF. We negotiate
 * SMFIP_HDR_LEADSPC so the value arrives with its leading blanks; the MTA
 * passes the line breaks of a folded header inside the value as LF
 * (Postfix) or CRLF, and every bare LF is written as CRLF. The end of the
 * headers is a CRLF, and body chunks are written verbatim (MTAs send the
 * body with CRLF line ends).
 *
 * SECURITY: everything here comes from the SMTP client through the MTA.
 * Addresses and parameters are bounded and checked (rcptaddr.c,
 * envelope.h) before they reach a spool file; the message bytes are
 * stored as they are and never interpreted.
 */
#include <errno.h>
#include <libmilter/mfapi.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "util.h"

struct session {
    bool leadspc;                            /* SMFIP_HDR_LEADSPC negotiated */
    unsigned long noreply;                   /* SMFIP_NR_* negotiated: stages without a reply */
    char client_addr[ENVELOPE_CLIENT_ADDR_MAX + 1]; /* for the Received: line; "" unknown */
    char client_name[ENVELOPE_HOST_MAX + 1];
    char helo[ENVELOPE_HOST_MAX + 1];
    char queue_id[ENVELOPE_QUEUEID_MAX + 1]; /* MTA queue id, "" if unknown */
    char sender[ENVELOPE_ADDR_MAX + 1];
    char mail_params[ENVELOPE_PARAMS_MAX + 1];
    const char *sender_error;                /* why the sender cannot be stored */
    size_t naccepted;                        /* recipients we let through */
    struct hold *hold;                       /* NULL until a recipient is held */
    bool failed;                             /* a spool write failed: tempfail */
};

static const char *const mail_keep[] = {"BODY", "SMTPUTF8", "ENVID", "RET", NULL};
static const char *const rcpt_keep[] = {"NOTIFY", "ORCPT", NULL};

/* session_get - the connection's state, created on first use. */
static struct session *
session_get(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s != NULL)
        return s;
    if ((s = x_calloc(1, sizeof(*s))) == NULL) {
        log_warnx("out of memory for a new connection");
        return NULL;
    }
    if (smfi_setpriv(ctx, s) != MI_SUCCESS) {
        x_free(s);
        return NULL;
    }
    return s;
}

/* message_reset - forget the current message (aborting its spool files). */
static void
message_reset(struct session *s)
{
    hold_free(s->hold);
    s->hold = NULL;
    s->failed = false;
    s->naccepted = 0;
    s->sender[0] = s->mail_params[0] = '\0';
    s->sender_error = NULL;
    s->queue_id[0] = '\0';
}

/* note_queue_id - remember the MTA's queue id once it is known. */
static void
note_queue_id(SMFICTX *ctx, struct session *s)
{
    const char *id = smfi_getsymval(ctx, "i");
    size_t i;

    if (id == NULL || id[0] == '\0' || strlen(id) > ENVELOPE_QUEUEID_MAX)
        return;
    for (i = 0; id[i] != '\0'; i++)
        if (!(id[i] >= '0' && id[i] <= '9') && !(id[i] >= 'A' && id[i] <= 'Z') &&
            !(id[i] >= 'a' && id[i] <= 'z') && id[i] != '.' && id[i] != '_' && id[i] != '-')
            return;
    (void)str_copy(s->queue_id, sizeof(s->queue_id), id);
}

/* go_on - carry on after a stage: no reply where the MTA expects none */
static sfsistat
go_on(const struct session *s, unsigned long stage)
{
    return (s->noreply & stage) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static const char *
qid(const struct session *s)
{
    return s->queue_id[0] ? s->queue_id : "NOQUEUE";
}

/* reply - set the SMTP reply and return the status for it. */
static sfsistat
reply(SMFICTX *ctx, const char *code, const char *xcode, const char *text, sfsistat rc)
{
    (void)smfi_setreply(ctx, (char *)code, (char *)xcode, (char *)text);
    return rc;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
             unsigned long *pf3)
{
    struct session *s;

    (void)f2;
    (void)f3;
    if ((f0 & SMFIF_DELRCPT) == 0) {
        log_errorx("the MTA does not allow removing recipients (SMFIF_DELRCPT); "
                   "refusing the connection");
        return SMFIS_REJECT;
    }
    if ((s = session_get(ctx)) == NULL)
        return SMFIS_REJECT;
    *pf0 = SMFIF_DELRCPT;
    /* connect, HELO and MAIL never refuse anything (HELO is seen only for
     * the Received: line), and a spool failure while the message streams
     * in is answered at its end: spare the MTA the round trips of those
     * stages (one per header line) */
    *pf1 = f1 & (SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_HELO |
                 SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY);
    *pf2 = *pf3 = 0;
    s->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    s->noreply = *pf1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_HDR |
                         SMFIP_NR_EOH | SMFIP_NR_BODY);
    return SMFIS_CONTINUE;
}

/* cb_connect - the AutoTURN notice, and the client for the Received:
 * line (an MTA gives "[addr]" or nothing for a client without a
 * verified name: written as "unknown", as Postfix does). */
static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
    struct session *s = session_get(ctx);
    struct ipaddr a;

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    s->client_addr[0] = s->helo[0] = '\0';
    if (hostaddr != NULL && ipaddr_from_sockaddr(hostaddr, &a) == 0) {
        (void)ipaddr_format(&a, s->client_addr, sizeof(s->client_addr));
        notice_connect(&a);
    }
    (void)str_copy(s->client_name, sizeof(s->client_name),
                   hostname != NULL && hostname[0] != '\0' && hostname[0] != '[' ? hostname
                                                                              : "unknown");
    return go_on(s, SMFIP_NR_CONN);
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
    struct session *s = session_get(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    (void)str_copy(s->helo, sizeof(s->helo), helo != NULL ? helo : "");   /* cut: fine */
    return go_on(s, SMFIP_NR_HELO);
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
    struct session *s = session_get(ctx);
    const char *why = NULL;

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    message_reset(s);
    note_queue_id(ctx, s);
    if (rcptaddr_mailbox(argv[0], s->sender, sizeof(s->sender), &why) < 0)
        s->sender_error = why;
    else if (rcptaddr_params(argv, mail_keep, s->mail_params, sizeof(s->mail_params)) < 0)
        s->sender_error = "parameters too long";
    return go_on(s, SMFIP_NR_MAIL);
}

/* check_quota - 1 over quota, 0 fine, -1 error. Only the first recipient
 * of a customer in a message is checked: the message takes one copy. The
 * figures come from the spool's usage record (O(1): one read). */
static int
check_quota(const struct customer *c, struct session *s, struct errbuf *err)
{
    struct spool_stats st;

    if ((c->max_messages == 0 && c->max_bytes == 0) ||
        (s->hold != NULL && hold_has_customer(s->hold, c->name)))
        return 0;
    if (spool_usage(milter.spool, c->name, &st, err) < 0)
        return -1;
    return (c->max_messages != 0 && st.messages >= c->max_messages) ||
           (c->max_bytes != 0 && st.bytes >= c->max_bytes);
}

/* reply_why - a reply whose text ends in an error message (a '%' in it
 * would be taken as a format character by the MTA: written as '?'). */
static sfsistat
reply_why(SMFICTX *ctx, const char *code, const char *xcode, const char *what,
          const char *why, sfsistat rc)
{
    char text[ERRBUF_SIZE + 64];
    size_t i;

    (void)str_printf(text, sizeof(text), "%s: %s", what, why);
    for (i = 0; text[i] != '\0'; i++)
        if (text[i] == '%')
            text[i] = '?';
    return reply(ctx, code, xcode, text, rc);
}

/* storable - can the sender and this recipient go into an envelope? */
static sfsistat
storable(SMFICTX *ctx, struct session *s, const char *addr, const char *params)
{
    struct envelope e;
    struct errbuf err;
    sfsistat rc = SMFIS_CONTINUE;

    if (s->sender_error != NULL)
        return reply_why(ctx, "550", "5.1.7", "Sender cannot be stored for a held recipient",
                         s->sender_error, SMFIS_REJECT);
    envelope_init(&e);
    if (envelope_set_sender(&e, s->sender, s->mail_params, &err) < 0)
        rc = reply_why(ctx, "550", "5.1.7", "Sender cannot be stored for a held recipient",
                       err.msg, SMFIS_REJECT);
    else if (envelope_add_rcpt(&e, addr, params, &err) < 0)
        rc = reply_why(ctx, "553", "5.1.3", "Recipient cannot be held", err.msg, SMFIS_REJECT);
    envelope_clear(&e);
    return rc;
}

/* hold_rcpt - the recipient belongs to customer c: hold it, or say why not. */
static sfsistat
hold_rcpt(SMFICTX *ctx, struct session *s, const struct customer *c, char **argv)
{
    char addr[ENVELOPE_ADDR_MAX + 1], params[ENVELOPE_PARAMS_MAX + 1];
    const char *why = NULL;
    struct errbuf err;
    sfsistat rc;
    int q;

    if (s->hold != NULL && hold_count(s->hold) >= milter.max_recipients)
        return reply(ctx, "452", "4.5.3", "Too many held recipients in this message",
                     SMFIS_TEMPFAIL);
    if ((q = check_quota(c, s, &err)) < 0) {
        log_warnx("%s: customer=%s: quota check failed: %s", qid(s), c->name, err.msg);
        return reply(ctx, "451", "4.3.0", "Temporary failure checking held mail, try again later",
                     SMFIS_TEMPFAIL);
    }
    if (q > 0) {
        log_info("%s: customer=%s, to=%s: over quota", qid(s), c->name, argv[0]);
        return reply(ctx, "452", "4.2.2", "Mailbox full: too much mail held for this domain",
                     SMFIS_TEMPFAIL);
    }
    if (rcptaddr_mailbox(argv[0], addr, sizeof(addr), &why) < 0)
        return reply_why(ctx, "553", "5.1.3", "Recipient cannot be held", why, SMFIS_REJECT);
    if (rcptaddr_params(argv, rcpt_keep, params, sizeof(params)) < 0)
        return reply(ctx, "553", "5.5.4", "Recipient parameters too long", SMFIS_REJECT);
    if ((rc = storable(ctx, s, addr, params)) != SMFIS_CONTINUE)
        return rc;
    if ((s->hold == NULL && (s->hold = hold_new()) == NULL) ||
        hold_add(s->hold, c->name, addr, params, argv[0], &err) < 0) {
        log_warnx("%s: customer=%s: cannot hold recipient: %s", qid(s), c->name,
                  s->hold ? err.msg : "out of memory");
        return reply(ctx, "451", "4.3.0", "Temporary failure holding mail, try again later",
                     SMFIS_TEMPFAIL);
    }
    s->naccepted++;
    return SMFIS_CONTINUE;
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
    struct session *s = session_get(ctx);
    char domain[DOMAIN_MAX + 2];
    struct customer *c = NULL;
    struct errbuf err;
    sfsistat rc;
    int found;

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    note_queue_id(ctx, s);
    if (rcptaddr_domain(argv[0], domain, sizeof(domain)) == 0) {
        s->naccepted++;
        return SMFIS_CONTINUE;
    }
    found = custdb_lookup_domain(milter.db, domain, &c, NULL, &err);
    if (found < 0) {
        notice_warn(NOTICE_SLOT_LOOKUP, "%s: customer table lookup for %s failed: %s", qid(s),
                    domain, err.msg);
        return reply(ctx, "451", "4.3.0", "Temporary lookup failure, try again later",
                     SMFIS_TEMPFAIL);
    }
    if (found == 0) {
        s->naccepted++;
        return SMFIS_CONTINUE;
    }
    rc = hold_rcpt(ctx, s, c, argv);
    customer_free(c);
    return rc;
}

static sfsistat
cb_data(SMFICTX *ctx)
{
    struct session *s = session_get(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    note_queue_id(ctx, s);
    if (s->hold == NULL)
        metrics_inc(METRIC_MILTER_MESSAGES, METRICS_PASSED);
    return s->hold == NULL ? SMFIS_ACCEPT : SMFIS_CONTINUE;   /* nothing held: done */
}

/* write_fail - a spool write failed: log once, tempfail the message (at
 * once, or at its end when this stage has no reply). */
static sfsistat
write_fail(SMFICTX *ctx, struct session *s, unsigned long stage, const struct errbuf *err)
{
    if (!s->failed) {
        log_warnx("%s: cannot store held mail: %s", qid(s), err->msg);
        metrics_inc(METRIC_MILTER_MESSAGES, METRICS_TEMPFAILED);
    }
    s->failed = true;
    hold_free(s->hold);          /* unlinks the temp files now */
    s->hold = NULL;
    if ((s->noreply & stage) != 0)
        return SMFIS_NOREPLY;
    return reply(ctx, "451", "4.3.0", "Temporary failure storing held mail, try again later",
                 SMFIS_TEMPFAIL);
}

/* skip - a stage of a message with nothing (more) to store */
static sfsistat
skip(const struct session *s, unsigned long stage)
{
    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->failed && (s->noreply & stage) == 0)
        return SMFIS_TEMPFAIL;
    return go_on(s, stage);
}

/* ensure_open - the spool files exist once the message starts. */
static int
ensure_open(SMFICTX *ctx, struct session *s, struct errbuf *err)
{
    if (hold_is_open(s->hold))
        return 0;
    note_queue_id(ctx, s);
    return hold_open(s->hold, milter.spool, s->sender, s->mail_params, s->queue_id,
                     &(struct hold_client){s->client_addr, s->client_name, s->helo}, err);
}

/* write_value - a header value with every bare LF written as CRLF. */
static int
write_value(struct hold *h, const char *v, struct errbuf *err)
{
    const char *lf;
    size_t n;

    while ((lf = strchr(v, '\n')) != NULL) {
        n = (size_t)(lf - v);
        if (n > 0 && v[n - 1] == '\r')
            n--;
        if (hold_write(h, v, n, err) < 0 || hold_write(h, "\r\n", 2, err) < 0)
            return -1;
        v = lf + 1;
    }
    return hold_write(h, v, strlen(v), err);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
    struct session *s = session_get(ctx);
    struct errbuf err;

    if (s == NULL || s->hold == NULL)
        return skip(s, SMFIP_NR_HDR);
    if (strchr(value, '\n') != NULL)
        log_debug("%s: header %s is folded with %s", qid(s), name,
                  strstr(value, "\r\n") != NULL ? "CRLF" : "LF");
    if (ensure_open(ctx, s, &err) < 0 || hold_write(s->hold, name, strlen(name), &err) < 0 ||
        hold_write(s->hold, s->leadspc ? ":" : ": ", s->leadspc ? 1 : 2, &err) < 0 ||
        write_value(s->hold, value, &err) < 0 || hold_write(s->hold, "\r\n", 2, &err) < 0)
        return write_fail(ctx, s, SMFIP_NR_HDR, &err);
    return go_on(s, SMFIP_NR_HDR);
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
    struct session *s = session_get(ctx);
    struct errbuf err;

    if (s == NULL || s->hold == NULL)
        return skip(s, SMFIP_NR_EOH);
    if (ensure_open(ctx, s, &err) < 0 || hold_write(s->hold, "\r\n", 2, &err) < 0)
        return write_fail(ctx, s, SMFIP_NR_EOH, &err);
    return go_on(s, SMFIP_NR_EOH);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
    struct session *s = session_get(ctx);
    struct errbuf err;

    if (s == NULL || s->hold == NULL)
        return skip(s, SMFIP_NR_BODY);
    if (ensure_open(ctx, s, &err) < 0 || hold_write(s->hold, buf, len, &err) < 0)
        return write_fail(ctx, s, SMFIP_NR_BODY, &err);
    return go_on(s, SMFIP_NR_BODY);
}

/* delrcpt_one - hold_foreach_raw callback. */
static int
delrcpt_one(void *ctx, const char *raw)
{
    return smfi_delrcpt(ctx, (char *)raw) == MI_SUCCESS ? 0 : -1;
}

/* log_held - one line per stored copy. */
static void
log_held(const struct session *s)
{
    struct hold_info info;
    size_t i;

    for (i = 0; i < hold_ncustomers(s->hold); i++) {
        hold_info(s->hold, i, &info);
        log_info("%s: orig_queue_id=%s, customer=%s, from=<%s>, nrcpt=%zu, size=%llu, "
                 "status=held", info.id, qid(s), info.customer, s->sender, info.nrcpt,
                 (unsigned long long)info.size);
    }
}

/* finish - commit the copies, remove the held recipients, decide. */
static sfsistat
finish(SMFICTX *ctx, struct session *s)
{
    struct timespec t0;
    struct errbuf err;

    metrics_clock(&t0);
    if (ensure_open(ctx, s, &err) < 0 || hold_commit(s->hold, milter.spool, &err) < 0)
        return write_fail(ctx, s, 0, &err);
    if (s->naccepted == hold_count(s->hold)) {
        /* every recipient held: the discard removes them all */
        log_held(s);
        metrics_observe(METRIC_MILTER_HOLD_DURATION, 0, metrics_elapsed(&t0));
        return SMFIS_DISCARD;
    }
    if (hold_foreach_raw(s->hold, delrcpt_one, ctx) != 0) {
        hold_rollback(s->hold, milter.spool);
        log_warnx("%s: smfi_delrcpt failed; held copies withdrawn", qid(s));
        metrics_inc(METRIC_MILTER_MESSAGES, METRICS_TEMPFAILED);
        return reply(ctx, "451", "4.3.0", "Temporary failure holding mail, try again later",
                     SMFIS_TEMPFAIL);
    }
    log_held(s);
    metrics_observe(METRIC_MILTER_HOLD_DURATION, 0, metrics_elapsed(&t0));
    return SMFIS_CONTINUE;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
    struct session *s = session_get(ctx);
    bool held;
    sfsistat rc;

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    note_queue_id(ctx, s);
    held = s->hold != NULL;
    if (!held)
        rc = s->failed ? reply(ctx, "451", "4.3.0", "Temporary failure storing held mail, "
                               "try again later", SMFIS_TEMPFAIL) : SMFIS_CONTINUE;
    else
        rc = finish(ctx, s);
    if (rc != SMFIS_TEMPFAIL)     /* a tempfail was counted where it was decided */
        metrics_inc(METRIC_MILTER_MESSAGES, held ? METRICS_HELD : METRICS_PASSED);
    message_reset(s);
    return rc;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s != NULL)
        message_reset(s);
    return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
    struct session *s = smfi_getpriv(ctx);

    if (s != NULL) {
        message_reset(s);
        x_free(s);
        (void)smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc session_filter = {
    .xxfi_name = MILTER_NAME,
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_DELRCPT,
    .xxfi_connect = cb_connect,
    .xxfi_helo = cb_helo,
    .xxfi_envfrom = cb_envfrom,
    .xxfi_envrcpt = cb_envrcpt,
    .xxfi_header = cb_header,
    .xxfi_eoh = cb_eoh,
    .xxfi_body = cb_body,
    .xxfi_eom = cb_eom,
    .xxfi_abort = cb_abort,
    .xxfi_close = cb_close,
    .xxfi_data = cb_data,
    .xxfi_negotiate = cb_negotiate,
};

struct smfiDesc *
session_desc(void)
{
    return &session_filter;
}
