/* SPDX-License-Identifier: ISC */
/*
 * dsn.c - delivery status notifications (RFC 3464, RFC 3461, RFC 3834)
 * for held mail, and their injection through the local MTA with the null
 * envelope sender, by a sendmail-compatible command or SMTP to a relay.
 *
 * A DSN is built in memory as three parts (human text, delivery-status,
 * the original), each bounded (DSN_PART_MAX; the original by
 * DSN_HEADERS_MAX or DSN_FULL_MAX), so that a MIME boundary can be
 * chosen that occurs in none of them; then it is written out with CRLF
 * line ends. dsn_send writes it to an unlinked temp file and feeds that
 * to the MTA.
 *
 * NOTIFY= is the caller's business: pass only the recipients whose
 * NOTIFY allows this report (FAILURE for failed, DELAY for delayed; never
 * a NOTIFY=NEVER recipient). If none is left, do not call dsn_write.
 *
 * Non-ASCII original headers are returned as text/rfc822-headers with
 * Content-Transfer-Encoding: 8bit (not message/global-headers, RFC 6533).
 *
 * SECURITY: the original message, the envelope parameters (ENVID, ORCPT)
 * and the remote server's diagnostic text are untrusted: control
 * characters (CR, LF, NUL, ...) are replaced so that nothing can inject a
 * header or a MIME part, long lines are folded, and every piece is
 * bounded. Replies of the bounce relay are bounded (DSN_SMTP_LINE_MAX,
 * DSN_SMTP_LINES_MAX). The sendmail command is run with execv, no shell.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "dsn.h"
#include "envelope.h"
#include "sockspec.h"
#include "spool.h"
#include "trace.h"

#define DSN_HEADERS_MAX    (64u * 1024)        /* original header block returned */
#define DSN_PART_MAX       (16u * 1024 * 1024) /* one generated part */
#define DSN_DIAG_MAX       2000                /* bytes of one diagnostic kept */
#define DSN_FIELD_MAX      1001                /* ENVID, ORCPT, short fields */
#define DSN_FOLD_WIDTH     78                  /* fold header-like lines here */
#define DSN_LINE_HARD_MAX  998                 /* RFC 5322 2.1.1 */
#define DSN_BOUNDARY_TRIES 10
#define DSN_ARGV_MAX       32                  /* words of sendmail_command */
#define DSN_SENDMAIL_TIMEOUT 120               /* seconds for the command (a local
                                                  submission takes well under one) */
#define DSN_SMTP_LINE_MAX  1024                /* bytes of one relay reply line */
#define DSN_SMTP_LINES_MAX 100                 /* lines of one relay reply */
#define DSN_SMTP_TIMEOUT_DEFAULT 300           /* seconds, when the config says 0 */
#define DSN_IO_BLOCK       (64u * 1024)

/* --- a bounded growing buffer --- */

struct dbuf {
    char *p;
    size_t len, cap, max;
    bool failed;             /* out of memory or over max */
};

static void
dbuf_init(struct dbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static void
dbuf_add(struct dbuf *b, const void *s, size_t n)
{
    size_t ncap;
    char *np;

    if (b->failed)
        return;
    if (n > b->max - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        if ((np = x_reallocarray(b->p, ncap, 1)) == NULL) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
dbuf_str(struct dbuf *b, const char *s)
{
    dbuf_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
dbuf_printf(struct dbuf *b, const char *fmt, ...)
{
    char tmp[DSN_LINE_HARD_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->failed = true;
        return;
    }
    dbuf_add(b, tmp, (size_t)n);
}

static bool
dbuf_contains(const struct dbuf *b, const char *s)
{
    return b->len > 0 && memmem(b->p, b->len, s, strlen(s)) != NULL;
}

static bool
dbuf_has_8bit(const struct dbuf *b)
{
    size_t i;

    for (i = 0; i < b->len; i++)
        if ((unsigned char)b->p[i] >= 0x80)
            return true;
    return false;
}

/* --- text helpers --- */

/* sanitize - copy s into dst (size bytes), CR/LF/TAB to blanks, other
 * control characters and (unless allow8) 8-bit bytes to '?'. NULL is "". */
static void
sanitize(char *dst, size_t size, const char *s, bool allow8)
{
    size_t i;
    unsigned char c;

    if (s == NULL)
        s = "";
    for (i = 0; i + 1 < size && s[i] != '\0'; i++) {
        c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !allow8))
            c = '?';
        dst[i] = (char)c;
    }
    if (size > 0)
        dst[i] = '\0';
}

/* xtext_decode - RFC 3461 4: "+HH" is the byte HH. 0, or -1 if the text
 * is malformed, too long, or decodes to a byte outside 0x20..0x7e. */
static int
xtext_decode(const char *s, char *dst, size_t size)
{
    size_t n = 0;
    unsigned v;
    char hex[3];

    while (*s != '\0') {
        if (*s == '+') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return -1;
            hex[0] = s[1], hex[1] = s[2], hex[2] = '\0';
            v = (unsigned)strtoul(hex, NULL, 16);
            s += 3;
        } else {
            v = (unsigned char)*s++;
        }
        if (v < 0x20 || v > 0x7e || n + 1 >= size)
            return -1;
        dst[n++] = (char)v;
    }
    dst[n] = '\0';
    return 0;
}

/* put_folded - "prefix" + text as one logical line: folded at blanks
 * before DSN_FOLD_WIDTH where possible, broken hard at DSN_LINE_HARD_MAX;
 * continuation lines start with a blank. text has no CR or LF. */
static void
put_folded(struct dbuf *b, const char *prefix, const char *text)
{
    size_t col = strlen(prefix), len = strlen(text), take, i;

    dbuf_str(b, prefix);
    while (len > 0) {
        take = len;
        if (col + len > DSN_FOLD_WIDTH) {
            take = 0;
            for (i = 1; i < len && col + i <= DSN_LINE_HARD_MAX; i++)
                if (text[i] == ' ' && (col + i <= DSN_FOLD_WIDTH || take == 0))
                    take = i;
            if (take == 0)
                take = len < DSN_LINE_HARD_MAX - col ? len : DSN_LINE_HARD_MAX - col;
        }
        dbuf_add(b, text, take);
        text += take;
        len -= take;
        if (len > 0) {
            dbuf_str(b, "\r\n");
            col = 0;
            if (*text != ' ') {
                dbuf_str(b, " ");
                col = 1;
            }
        }
    }
    dbuf_str(b, "\r\n");
}

/* random_hex - 2 * nbytes hex digits from getrandom; should that fail,
 * from the clock, the pid and a counter (unique enough for a boundary,
 * which is checked against the content anyway). */
static void
random_hex(char *buf, size_t nbytes)
{
    static unsigned counter;
    unsigned char r[32];
    struct timespec ts;
    uint64_t x;
    size_t i;

    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    if (getrandom(r, nbytes, GRND_NONBLOCK) != (ssize_t)nbytes) {
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid() << 40 ^ ++counter;
        for (i = 0; i < nbytes; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    for (i = 0; i < nbytes; i++) {
        buf[2 * i] = "0123456789ABCDEF"[r[i] >> 4];
        buf[2 * i + 1] = "0123456789ABCDEF"[r[i] & 15];
    }
    buf[2 * nbytes] = '\0';
}

/* --- the original message --- */

/* read_original - up to max bytes of the message into raw; *more_r tells
 * whether the message is longer. */
static int
read_original(struct spool_msg *m, struct dbuf *raw, size_t max, bool *more_r,
              struct errbuf *err)
{
    char blk[DSN_IO_BLOCK];
    ssize_t n;

    if (spool_msg_rewind(m, err) < 0)
        return -1;
    *more_r = false;
    for (;;) {
        n = spool_msg_read(m, blk, sizeof(blk), err);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if ((size_t)n > max - raw->len) {
            dbuf_add(raw, blk, max - raw->len);
            *more_r = true;
            return raw->failed ? (errbuf_set(err, "out of memory"), -1) : 0;
        }
        dbuf_add(raw, blk, (size_t)n);
        if (raw->failed) {
            errbuf_set(err, "out of memory");
            return -1;
        }
    }
}

/* header_block_len - bytes of the header block of raw (up to, not
 * including, the first empty line; complete lines only within
 * DSN_HEADERS_MAX). */
static size_t
header_block_len(const char *p, size_t len)
{
    size_t i, start = 0, last_line_end = 0;

    for (i = 0; i < len && i < DSN_HEADERS_MAX; i++) {
        if (p[i] != '\n')
            continue;
        if (i == start || (i == start + 1 && p[start] == '\r'))
            return start;
        start = last_line_end = i + 1;
    }
    if (i == len && len < DSN_HEADERS_MAX)
        return len;
    return last_line_end;
}

/* put_crlf - append p[0..len) with bare LF and bare CR turned into CRLF;
 * a final line without an end gets one. */
static void
put_crlf(struct dbuf *b, const char *p, size_t len)
{
    size_t i, run = 0;

    for (i = 0; i < len; i++) {
        if (p[i] != '\r' && p[i] != '\n')
            continue;
        dbuf_add(b, p + run, i - run);
        dbuf_str(b, "\r\n");
        if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
            i++;
        run = i + 1;
    }
    dbuf_add(b, p + run, len - run);
    if (len > 0 && p[len - 1] != '\n' && p[len - 1] != '\r')
        dbuf_str(b, "\r\n");
}

/* build_original - the third part: *full_r says whether the whole
 * message is returned (RET=FULL, a failure report, and small enough: RFC
 * 3461 4.3, RET is about failed DSNs) or only its headers. */
static int
build_original(struct spool_msg *m, bool failure, struct dbuf *part, bool *full_r,
               struct errbuf *err)
{
    const struct envelope *env = spool_msg_envelope(m);
    char ret[16];
    struct dbuf raw;
    bool more;
    int rc = -1;

    *full_r = envelope_param(env->mail_params, "RET", ret, sizeof(ret)) == 1
              && str_ieq(ret, "FULL") && spool_msg_body_size(m) <= DSN_FULL_MAX
              && failure;
    dbuf_init(&raw, DSN_FULL_MAX);
    if (read_original(m, &raw, *full_r ? DSN_FULL_MAX : DSN_HEADERS_MAX, &more, err) < 0)
        goto out;
    if (more)
        *full_r = false;
    put_crlf(part, raw.p ? raw.p : "",
             *full_r ? raw.len : header_block_len(raw.p ? raw.p : "", raw.len));
    rc = 0;
out:
    x_free(raw.p);
    return rc;
}

/* --- the generated parts --- */

/* status_or_default - d.d.d with class 2, 4 or 5, else a default for
 * the action. */
static const char *
status_or_default(const char *s, enum dsn_action action)
{
    size_t i, dots = 0, digits = 0;

    if (s != NULL && (s[0] == '2' || s[0] == '4' || s[0] == '5') && strlen(s) <= 11) {
        for (i = 0; s[i] != '\0'; i++) {
            if (s[i] == '.') {
                if (digits == 0)
                    break;
                dots++;
                digits = 0;
            } else if (isdigit((unsigned char)s[i]) && digits < 3) {
                digits++;
            } else {
                break;
            }
        }
        if (s[i] == '\0' && dots == 2 && digits > 0)
            return s;
    }
    return action == DSN_FAILED ? "5.0.0" : action == DSN_RELAYED ? "2.0.0" : "4.0.0";
}

static const char *
action_name(enum dsn_action action)
{
    return action == DSN_FAILED ? "failed" : action == DSN_RELAYED ? "relayed" : "delayed";
}

/* diag_text - the sanitized Diagnostic-Code value, with "smtp; " in front
 * when the text lacks a diagnostic-type. */
static void
diag_text(char *buf, size_t size, const char *diag)
{
    char clean[DSN_DIAG_MAX];
    size_t type = strspn(diag, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");

    sanitize(clean, sizeof(clean), diag, false);
    if (type > 0 && diag[type] == ';')
        str_copy(buf, size, clean);
    else if (str_printf(buf, size, "smtp; %s", clean) < 0)
        buf[size - 1] = '\0';
}

static void
build_rcpt_status(struct dbuf *b, const struct dsn *d, const struct dsn_rcpt *r)
{
    char text[DSN_DIAG_MAX + 8], dec[DSN_FIELD_MAX], pfx[64];
    const char *semi;

    sanitize(text, sizeof(text), r->addr, true);
    dbuf_str(b, "\r\n");
    put_folded(b, "Final-Recipient: rfc822; ", text);
    if (r->orcpt != NULL && (semi = strchr(r->orcpt, ';')) != NULL
        && (size_t)(semi - r->orcpt) < 32 && xtext_decode(semi + 1, dec, sizeof(dec)) == 0) {
        sanitize(text, sizeof(text), r->orcpt, false);
        text[semi - r->orcpt + 1] = '\0';
        if (str_printf(pfx, sizeof(pfx), "Original-Recipient: %s", text) == 0)
            put_folded(b, pfx, dec);
    }
    dbuf_printf(b, "Action: %s\r\n", action_name(d->action));
    dbuf_printf(b, "Status: %s\r\n", status_or_default(r->status, d->action));
    if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
        sanitize(text, sizeof(text), r->remote_mta, false);
        put_folded(b, "Remote-MTA: dns; ", text);
    }
    if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
        diag_text(text, sizeof(text), r->diagnostic);
        put_folded(b, "Diagnostic-Code: ", text);
    }
}

static void
build_status(struct dbuf *b, const struct dsn *d, const struct envelope *env)
{
    char val[DSN_FIELD_MAX], dec[DSN_FIELD_MAX], date[64], host[CONFIG_TEXT_MAX];
    size_t i;

    sanitize(host, sizeof(host), d->reporting_mta, false);
    dbuf_printf(b, "Reporting-MTA: dns; %s\r\n", host);
    if (envelope_param(env->mail_params, "ENVID", val, sizeof(val)) == 1
        && xtext_decode(val, dec, sizeof(dec)) == 0 && dec[0] != '\0')
        put_folded(b, "Original-Envelope-Id: ", dec);
    if (env->queue_id[0] != '\0') {
        sanitize(val, sizeof(val), env->queue_id, false);
        dbuf_printf(b, "X-Autoturn-Queue-ID: %s\r\n", val);
    }
    trace_date(date, sizeof(date), env->arrival);
    dbuf_printf(b, "Arrival-Date: %s\r\n", date);
    for (i = 0; i < d->nrcpt; i++)
        build_rcpt_status(b, d, &d->rcpt[i]);
}

static void
build_human(struct dbuf *b, const struct dsn *d)
{
    char host[CONFIG_TEXT_MAX], cust[CONFIG_TEXT_MAX], reason[DSN_DIAG_MAX];
    char addr[ENVELOPE_ADDR_MAX + 1], diag[DSN_DIAG_MAX + 8];
    char line[ENVELOPE_ADDR_MAX + DSN_DIAG_MAX + 16];
    size_t i;

    sanitize(host, sizeof(host), d->reporting_mta, false);
    sanitize(cust, sizeof(cust), d->customer != NULL ? d->customer : "", false);
    sanitize(reason, sizeof(reason), d->reason != NULL ? d->reason : "", false);
    dbuf_printf(b, "This is the mail system at host %s.\r\n\r\n", host);
    if (d->action == DSN_FAILED)
        put_folded(b, "", "Your message could not be delivered to one or more recipients. "
                          "It was held for a customer whose server connects from time to time, "
                          "and it cannot be delivered: see the report below.");
    else if (d->action == DSN_RELAYED)
        put_folded(b, "", "Your message was delivered to the server of the customer it was "
                          "held for, as you asked to be told. That server does not offer "
                          "delivery status notifications, so no further notification will "
                          "be sent.");
    else
        put_folded(b, "", "Your message has not been delivered yet to one or more recipients. "
                          "It is held for a customer whose server connects from time to time; "
                          "delivery will be tried again. You do not need to resend it.");
    dbuf_str(b, "\r\n");
    if (str_printf(line, sizeof(line), "Customer: %s", cust) == 0)
        put_folded(b, "", line);
    if (reason[0] != '\0')
        put_folded(b, "Reason: ", reason);
    dbuf_str(b, "\r\n");
    for (i = 0; i < d->nrcpt; i++) {
        sanitize(addr, sizeof(addr), d->rcpt[i].addr, true);
        if (d->rcpt[i].diagnostic != NULL && d->rcpt[i].diagnostic[0] != '\0')
            diag_text(diag, sizeof(diag), d->rcpt[i].diagnostic);
        else
            str_copy(diag, sizeof(diag), status_or_default(d->rcpt[i].status, d->action));
        if (str_printf(line, sizeof(line), "<%s>: %s", addr, diag) < 0)
            b->failed = true;
        put_folded(b, "", line);
    }
}

/* choose_boundary - one that occurs in no part. */
static int
choose_boundary(char *buf, size_t size, struct dbuf *parts, size_t nparts)
{
    char rnd[33];
    size_t i, t;

    for (t = 0; t < DSN_BOUNDARY_TRIES; t++) {
        random_hex(rnd, 12);
        if (str_printf(buf, size, "=_autoturn_%lld_%s", (long long)time(NULL), rnd) < 0)
            return -1;
        for (i = 0; i < nparts; i++)
            if (dbuf_contains(&parts[i], buf))
                break;
        if (i == nparts)
            return 0;
    }
    return -1;
}

static void
put_part(struct dbuf *out, const char *boundary, const char *hdrs, const struct dbuf *part)
{
    dbuf_printf(out, "\r\n--%s\r\n", boundary);
    dbuf_str(out, hdrs);
    if (dbuf_has_8bit(part))
        dbuf_str(out, "Content-Transfer-Encoding: 8bit\r\n");
    dbuf_str(out, "\r\n");
    dbuf_add(out, part->p ? part->p : "", part->len);
}

static void
put_headers(struct dbuf *out, const struct dsn *d, const char *to, time_t now,
            const char *boundary, bool eight)
{
    char date[64], host[CONFIG_TEXT_MAX], rcpt[ENVELOPE_ADDR_MAX + 1], rnd[33];

    sanitize(host, sizeof(host), d->reporting_mta, false);
    sanitize(rcpt, sizeof(rcpt), to, true);
    trace_date(date, sizeof(date), now);
    random_hex(rnd, 8);
    dbuf_printf(out, "Date: %s\r\n", date);
    dbuf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
    put_folded(out, "To: ", rcpt);
    dbuf_printf(out, "Subject: %s\r\n", d->action == DSN_FAILED
                ? "Undelivered Mail Returned to Sender" : d->action == DSN_RELAYED
                ? "Successful Mail Delivery Report" : "Delayed Mail (still being retried)");
    dbuf_printf(out, "Message-ID: <%lld.%ld.%s@%s>\r\n", (long long)now, (long)getpid(), rnd, host);
    dbuf_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    dbuf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                "\tboundary=\"%s\"\r\n", boundary);
    if (eight)
        dbuf_str(out, "Content-Transfer-Encoding: 8bit\r\n");
    dbuf_str(out, "\r\nThis is a MIME-encapsulated message.\r\n");
}

int
dsn_write(int fd, const struct dsn *d, struct spool_msg *m, const char *to, time_t now,
          struct errbuf *err)
{
    struct dbuf parts[3], out;
    char boundary[80];
    bool full = false, eight;
    size_t i;
    int rc = -1;

    for (i = 0; i < ARRAY_LEN(parts); i++)
        dbuf_init(&parts[i], DSN_PART_MAX);
    dbuf_init(&out, 3 * (size_t)DSN_PART_MAX + 65536);
    build_human(&parts[0], d);
    build_status(&parts[1], d, spool_msg_envelope(m));
    if (build_original(m, d->action == DSN_FAILED, &parts[2], &full, err) < 0)
        goto out;
    for (i = 0; i < ARRAY_LEN(parts); i++)
        if (parts[i].failed) {
            errbuf_set(err, "DSN too large or out of memory");
            goto out;
        }
    if (choose_boundary(boundary, sizeof(boundary), parts, ARRAY_LEN(parts)) < 0) {
        errbuf_set(err, "cannot choose a MIME boundary");
        goto out;
    }
    eight = dbuf_has_8bit(&parts[0]) || dbuf_has_8bit(&parts[1]) || dbuf_has_8bit(&parts[2]);
    put_headers(&out, d, to, now, boundary, eight);
    put_part(&out, boundary, "Content-Description: Notification\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n", &parts[0]);
    put_part(&out, boundary, "Content-Description: Delivery report\r\n"
             "Content-Type: message/delivery-status\r\n", &parts[1]);
    put_part(&out, boundary, full ? "Content-Description: Undelivered Message\r\n"
             "Content-Type: message/rfc822\r\n" : d->action == DSN_RELAYED
             ? "Content-Description: Message Headers\r\nContent-Type: text/rfc822-headers\r\n"
             : "Content-Description: Undelivered Message Headers\r\n"
             "Content-Type: text/rfc822-headers\r\n", &parts[2]);
    dbuf_printf(&out, "\r\n--%s--\r\n", boundary);
    if (out.failed) {
        errbuf_set(err, "DSN too large or out of memory");
        goto out;
    }
    if (fd_write_all(fd, out.p, out.len) < 0) {
        errbuf_set_errno(err, "write DSN");
        goto out;
    }
    rc = 0;
out:
    for (i = 0; i < ARRAY_LEN(parts); i++)
        x_free(parts[i].p);
    x_free(out.p);
    return rc;
}

bool
dsn_notify_wants(const char *params, const char *kind)
{
    char val[DSN_FIELD_MAX], *tok, *save = NULL;

    if (envelope_param(params, "NOTIFY", val, sizeof(val)) != 1)
        return !str_ieq(kind, "SUCCESS");
    for (tok = strtok_r(val, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        if (str_ieq(tok, kind))
            return true;
    return false;
}

const char *
dsn_recipient(const struct envelope *env, const char *postmaster)
{
    return env->sender != NULL && env->sender[0] != '\0' ? env->sender : postmaster;
}

/* --- injection: sendmail --- */

/* split_command - words of cmd (blank-separated) into argv, in place in
 * buf; returns the count or -1. */
static int
split_command(char *buf, char **argv, size_t max, struct errbuf *err)
{
    size_t n = 0;
    char *p = buf, *save = NULL;

    while ((p = strtok_r(p, " \t", &save)) != NULL) {
        if (n + 1 >= max) {
            errbuf_set(err, "sendmail_command has too many words");
            return -1;
        }
        argv[n++] = p;
        p = NULL;
    }
    argv[n] = NULL;
    if (n == 0) {
        errbuf_set(err, "sendmail_command is empty");
        return -1;
    }
    return (int)n;
}

/* child_exec - in the child: stdin from fd, exec, report errno on the
 * close-on-exec pipe if exec fails. */
static void __attribute__((noreturn))
child_exec(int fd, int errfd, char **argv)
{
    sigset_t none;
    int e;

    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)setpgid(0, 0);          /* its own group: a timeout kills postdrop & co. too */
    if (dup2(fd, STDIN_FILENO) >= 0) {
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
    }
    e = errno;
    (void)!write(errfd, &e, sizeof(e));
    _exit(127);
}

/* wait_child - waitpid with a deadline; when it passes, kills the
 * child's whole process group (Postfix's sendmail waits for postdrop). */
static int
wait_child(pid_t pid, int *status_r, struct errbuf *err)
{
    struct timespec ts = { 0, 1000000 };
    time_t deadline = time(NULL) + DSN_SENDMAIL_TIMEOUT;
    pid_t r;

    for (;;) {
        r = waitpid(pid, status_r, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR) {
            errbuf_set_errno(err, "waitpid");
            return -1;
        }
        if (time(NULL) > deadline) {
            (void)kill(-pid, SIGKILL);
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, status_r, 0);
            errbuf_set(err, "sendmail timed out after %d seconds", DSN_SENDMAIL_TIMEOUT);
            return -1;
        }
        nanosleep(&ts, NULL);
        if (ts.tv_nsec < 100000000)
            ts.tv_nsec *= 2;
    }
}

/* exec_status - the result of an exec'd and reaped child. */
static int
exec_status(const char *path, int errpipe, int status, struct errbuf *err)
{
    int e;
    ssize_t n;

    while ((n = read(errpipe, &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(e)) {
        errno = e;
        errbuf_set_errno(err, "cannot execute %s", path);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        errbuf_set(err, "sendmail exited with status %d", WEXITSTATUS(status));
    else
        errbuf_set(err, "sendmail killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

/* send_sendmail - Postfix's sendmail takes "-f <>" as the null sender
 * (so do Sendmail and Exim); "-oi" so that a lone dot is data. */
static int
send_sendmail(const struct config_flusher *cfg, int fd, const char *to, struct errbuf *err)
{
    char cmd[CONFIG_TEXT_MAX], nul[] = "<>", fopt[] = "-f", oi[] = "-oi", dd[] = "--";
    char *argv[DSN_ARGV_MAX];
    char *rcpt = NULL;
    int n, pfd[2] = { -1, -1 }, status = 0, rc = -1;
    pid_t pid;

    str_copy(cmd, sizeof(cmd), cfg->sendmail_command);
    if ((n = split_command(cmd, argv, DSN_ARGV_MAX - 5, err)) < 0)
        return -1;
    if ((rcpt = x_strdup(to)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    argv[n++] = fopt, argv[n++] = nul, argv[n++] = oi, argv[n++] = dd, argv[n++] = rcpt;
    argv[n] = NULL;
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        errbuf_set_errno(err, "pipe");
        goto out;
    }
    if ((pid = fork()) < 0) {
        errbuf_set_errno(err, "fork");
        goto out;
    }
    if (pid == 0)
        child_exec(fd, pfd[1], argv);
    close(pfd[1]);
    pfd[1] = -1;
    if (wait_child(pid, &status, err) < 0)
        goto out;
    rc = exec_status(argv[0], pfd[0], status, err);
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    x_free(rcpt);
    return rc;
}

/* --- injection: SMTP to the bounce relay --- */

struct relay {
    int fd;
    char name[SOCKSPEC_HOST_MAX + SOCKSPEC_PATH_MAX + 16];
    char buf[DSN_SMTP_LINE_MAX];
    size_t len;              /* bytes buffered */
    bool eightbit;           /* EHLO announced 8BITMIME */
    struct errbuf *err;
};

static void
relay_timeout(struct relay *r, uint64_t secs)
{
    struct timeval tv = { (time_t)(secs ? secs : DSN_SMTP_TIMEOUT_DEFAULT), 0 };

    (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* relay_line - one reply line (without CRLF) into line; -1 on error. */
static int
relay_line(struct relay *r, const char *stage, char *line, size_t size)
{
    char *nl;
    ssize_t n;
    size_t l;

    while ((nl = memchr(r->buf, '\n', r->len)) == NULL) {
        if (r->len == sizeof(r->buf)) {
            errbuf_set(r->err, "bounce relay %s: %s: reply line too long", r->name, stage);
            return -1;
        }
        n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            errbuf_set(r->err, "bounce relay %s: %s: timeout", r->name, stage);
            return -1;
        }
        if (n <= 0) {
            if (n < 0)
                errbuf_set_errno(r->err, "bounce relay %s: %s", r->name, stage);
            else
                errbuf_set(r->err, "bounce relay %s: %s: connection closed", r->name, stage);
            return -1;
        }
        r->len += (size_t)n;
    }
    l = (size_t)(nl - r->buf);
    memcpy(line, r->buf, l < size ? l : size - 1);
    line[l < size ? l : size - 1] = '\0';
    if (l > 0 && l < size && line[l - 1] == '\r')
        line[l - 1] = '\0';
    memmove(r->buf, nl + 1, r->len - l - 1);
    r->len -= l + 1;
    return 0;
}

/* relay_reply - a whole (multi-line) reply; returns its code, or -1.
 * text gets the first line, sanitized. */
static int
relay_reply(struct relay *r, const char *stage, char *text, size_t size)
{
    char line[DSN_SMTP_LINE_MAX + 1];
    int code = -1, i;

    for (i = 0; i < DSN_SMTP_LINES_MAX; i++) {
        if (relay_line(r, stage, line, sizeof(line)) < 0)
            return -1;
        if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1])
            || !isdigit((unsigned char)line[2]) || (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
            || (code >= 0 && atoi(line) != code)) {
            sanitize(text, size, line, false);
            errbuf_set(r->err, "bounce relay %s: %s: malformed reply: %.100s", r->name, stage, text);
            return -1;
        }
        if (i == 0)
            sanitize(text, size, line, false);
        if (strlen(line) > 4 && str_ieq(line + 4, "8BITMIME"))
            r->eightbit = true;
        code = atoi(line);
        if (line[3] != '-')
            return code;
    }
    errbuf_set(r->err, "bounce relay %s: %s: too many reply lines", r->name, stage);
    return -1;
}

static int
relay_send(struct relay *r, const char *stage, const void *p, size_t len)
{
    const char *s = p;
    ssize_t n;

    while (len > 0) {
        n = send(r->fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                errbuf_set(r->err, "bounce relay %s: %s: timeout", r->name, stage);
            else
                errbuf_set_errno(r->err, "bounce relay %s: %s", r->name, stage);
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* relay_cmd - send a command line (if any), read the reply, require
 * want (or want2). */
static int
relay_cmd(struct relay *r, const char *stage, const char *cmd, int want, int want2)
{
    char text[DSN_SMTP_LINE_MAX + 1];
    int code;

    if (cmd != NULL && relay_send(r, stage, cmd, strlen(cmd)) < 0)
        return -1;
    if ((code = relay_reply(r, stage, text, sizeof(text))) < 0)
        return -1;
    if (code != want && code != want2) {
        errbuf_set(r->err, "bounce relay %s: %s: %s", r->name, stage, text);
        return -1;
    }
    return code;
}

/* relay_body - the DSN from fd, dot-stuffed, then the final dot. The
 * DSN has CRLF line ends throughout (dsn_write makes it so). */
static int
relay_body(struct relay *r, int fd)
{
    char in[DSN_IO_BLOCK], out[2 * DSN_IO_BLOCK + 8];
    bool bol = true;
    size_t o, i;
    ssize_t n;

    if (lseek(fd, 0, SEEK_SET) < 0) {
        errbuf_set_errno(r->err, "lseek DSN");
        return -1;
    }
    for (;;) {
        while ((n = read(fd, in, sizeof(in))) < 0 && errno == EINTR)
            ;
        if (n < 0) {
            errbuf_set_errno(r->err, "read DSN");
            return -1;
        }
        if (n == 0)
            break;
        for (i = o = 0; i < (size_t)n; i++) {
            if (bol && in[i] == '.')
                out[o++] = '.';
            out[o++] = in[i];
            bol = in[i] == '\n';
        }
        if (relay_send(r, "DATA", out, o) < 0)
            return -1;
    }
    return relay_send(r, "DATA", bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
}

static void
helo_name(const struct config_flusher *cfg, char *buf, size_t size)
{
    if (cfg->myhostname[0] != '\0') {
        sanitize(buf, size, cfg->myhostname, false);
        return;
    }
    if (gethostname(buf, size) < 0 || buf[0] == '\0')
        str_copy(buf, size, "localhost");
    buf[size - 1] = '\0';
}

static int
relay_dialog(struct relay *r, const struct config_flusher *cfg, int fd, const char *to)
{
    char host[CONFIG_TEXT_MAX], cmd[ENVELOPE_ADDR_MAX + 64];

    helo_name(cfg, host, sizeof(host));
    if (relay_cmd(r, "greeting", NULL, 220, 220) < 0)
        return -1;
    if (str_printf(cmd, sizeof(cmd), "EHLO %s\r\n", host) < 0)
        return -1;
    if (relay_cmd(r, "EHLO", cmd, 250, 250) < 0) {
        (void)str_printf(cmd, sizeof(cmd), "HELO %s\r\n", host);
        if (relay_cmd(r, "HELO", cmd, 250, 250) < 0)
            return -1;
    }
    if (relay_cmd(r, "MAIL FROM", r->eightbit ? "MAIL FROM:<> BODY=8BITMIME\r\n"
                  : "MAIL FROM:<>\r\n", 250, 250) < 0)
        return -1;
    if (strpbrk(to, "\r\n") != NULL || str_printf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", to) < 0) {
        errbuf_set(r->err, "bad recipient address");
        return -1;
    }
    if (relay_cmd(r, "RCPT TO", cmd, 250, 251) < 0 || relay_cmd(r, "DATA", "DATA\r\n", 354, 354) < 0)
        return -1;
    relay_timeout(r, cfg->data_timeout);
    if (relay_body(r, fd) < 0 || relay_cmd(r, "end of data", NULL, 250, 250) < 0)
        return -1;
    relay_timeout(r, cfg->command_timeout);
    (void)relay_cmd(r, "QUIT", "QUIT\r\n", 221, 221);
    return 0;
}

static int
send_smtp(const struct config_flusher *cfg, int fd, const char *to, struct errbuf *err)
{
    struct relay r;
    const char *step = "connect";
    uint64_t ct = cfg->connect_timeout;
    int rc;

    memset(&r, 0, sizeof(r));
    r.err = err;
    sockspec_format(&cfg->bounce_relay, r.name, sizeof(r.name));
    r.fd = sockspec_connect(&cfg->bounce_relay, ct > 0 && ct < 86400 ? (int)ct * 1000 : 0, &step);
    if (r.fd < 0) {
        errbuf_set_errno(err, "bounce relay %s: %s", r.name, step ? step : "connect");
        return -1;
    }
    relay_timeout(&r, cfg->command_timeout);
    rc = relay_dialog(&r, cfg, fd, to);
    close(r.fd);
    return rc;
}

/* tmp_file - an unlinked temp file: nothing is left behind, ever. */
static int
tmp_file(struct errbuf *err)
{
    char path[] = "/tmp/autoturn-dsn.XXXXXX";
    int fd;

    if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
        errbuf_set_errno(err, "mkstemp %s", path);
        return -1;
    }
    if (unlink(path) < 0) {
        errbuf_set_errno(err, "unlink %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

int
dsn_send(const struct config_flusher *cfg, const struct dsn *d, struct spool_msg *m,
         const char *to, struct errbuf *err)
{
    int fd, rc = -1;
    bool smtp = strcmp(cfg->bounce_method, "smtp") == 0;

    if (!smtp && strcmp(cfg->bounce_method, "sendmail") != 0) {
        errbuf_set(err, "unknown bounce_method \"%s\"", cfg->bounce_method);
        return -1;
    }
    if ((fd = tmp_file(err)) < 0)
        return -1;
    if (dsn_write(fd, d, m, to, time(NULL), err) < 0)
        goto out;
    if (lseek(fd, 0, SEEK_SET) < 0) {
        errbuf_set_errno(err, "lseek DSN");
        goto out;
    }
    rc = smtp ? send_smtp(cfg, fd, to, err) : send_sendmail(cfg, fd, to, err);
out:
    close(fd);
    return rc;
}
