/* SPDX-License-Identifier: ISC */
/*
 * test_dsn.c - delivery status notifications: the structure of failed
 * and delayed DSNs (MIME parts, the delivery-status fields exactly, the
 * original headers or the whole message for RET=FULL, ENVID and ORCPT
 * decoded, hostile diagnostics sanitized and folded, CRLF everywhere),
 * the recipient (never bounce a bounce), and injection: a sendmail
 * command (a recording script, /bin/false, a missing program) and SMTP to
 * a scripted relay on a UNIX socket (dialogue, dot-stuffing, refusals).
 * The real-Postfix checks are in tests/integration/t_dsn.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"
#include "config.h"
#include "dsn.h"
#include "envelope.h"
#include "sockspec.h"
#include "spool.h"

#define CUST "acme"
#define HOST "mx.example.net"
#define ARRIVAL_TEXT "Fri, 21 Nov 2025 04:40:00 +0000"   /* 1763700000 in UTC */
#define HDRS "From: Alice <alice@example.org>\r\nTo: bob@virt.dom\r\nSubject: hello\r\n"
#define BODY "Body line one.\r\n.leading dot\r\nSECRET-BODY-TEXT\r\n"

struct fixture {
    char root[64];
    struct spool *sp;
    struct spool_msg *m;
    char *out;             /* last rendered DSN */
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(str_copy(f->root, sizeof(f->root), "/tmp/test_dsn.XXXXXX"), 0);
    assert_non_null(mkdtemp(f->root));
    assert_non_null(f->sp = spool_new(f->root));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    spool_msg_close(f->m);
    spool_free(f->sp);
    free(f->out);
    assert_int_equal(nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

/* put_msg - store a message for CUST and open it as f->m. */
static void
put_msg(struct fixture *f, const char *sender, const char *mail_params, const char *body,
        size_t len)
{
    struct spool_writer *w;
    struct envelope e;
    struct errbuf err;
    char id[SPOOL_ID_MAX];

    envelope_init(&e);
    assert_int_equal(str_copy(e.customer, sizeof(e.customer), CUST), 0);
    e.arrival = 1763700000;
    assert_int_equal(str_copy(e.queue_id, sizeof(e.queue_id), "4XyZ12abc"), 0);
    assert_int_equal(envelope_set_sender(&e, sender, mail_params, &err), 0);
    assert_int_equal(envelope_add_rcpt(&e, "a@cust.example", "", &err), 0);
    assert_int_equal(spool_writer_open(f->sp, &e, &w, &err), 0);
    assert_int_equal(spool_writer_write(w, body, len, &err), 0);
    assert_int_equal(spool_writer_commit(w, id, &err), 0);
    envelope_clear(&e);
    assert_int_equal(spool_msg_open(f->sp, CUST, id, &f->m, &err), 0);
}

/* tmpfd - an unlinked temp file. */
static int
tmpfd(void)
{
    char path[] = "/tmp/test_dsn_out.XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    return fd;
}

static char *
slurp_fd(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *p;

    assert_true(size >= 0);
    assert_non_null(p = calloc(1, (size_t)size + 1));
    assert_int_equal(pread(fd, p, (size_t)size, 0), size);
    return p;
}

/* render - dsn_write into f->out; checks CRLF line ends throughout. */
static const char *
render(struct fixture *f, const struct dsn *d, const char *to)
{
    struct errbuf err = { "" };
    int fd = tmpfd();
    size_t i;

    assert_int_equal(dsn_write(fd, d, f->m, to, 1763786400, &err), 0);
    free(f->out);
    f->out = slurp_fd(fd);
    close(fd);
    for (i = 0; f->out[i] != '\0'; i++) {
        if (f->out[i] == '\n')
            assert_true(i > 0 && f->out[i - 1] == '\r');
        if (f->out[i] == '\r')
            assert_int_equal(f->out[i + 1], '\n');
    }
    return f->out;
}

/* header - the value of the top-level header NAME (unfolded, first
 * occurrence) into buf; 0 if absent. */
static int
header(const char *msg, const char *name, char *buf, size_t size)
{
    const char *end = strstr(msg, "\r\n\r\n"), *p = msg, *e;
    size_t n = strlen(name), o = 0;

    while (p < end) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            for (p += n + 1; *p == ' '; p++)
                ;
            for (;;) {
                e = strstr(p, "\r\n");
                while (p < e && o + 1 < size)
                    buf[o++] = *p++;
                p = e + 2;
                if (*p != ' ' && *p != '\t')
                    break;
            }
            buf[o] = '\0';
            return 1;
        }
        p = strstr(p, "\r\n") + 2;
    }
    return 0;
}

/* unfold - a copy of s with every CRLF + blank turned into the blank. */
static char *
unfold(const char *s)
{
    char *u = strdup(s), *o = u;

    assert_non_null(u);
    for (; *s != '\0'; s++) {
        if (s[0] == '\r' && s[1] == '\n' && s[2] == ' ')
            s += 2;
        *o++ = *s;
    }
    *o = '\0';
    return u;
}

struct part {
    char hdrs[512];
    char *body;            /* malloc'd */
};

/* parts - split the multipart body at its boundary; returns the count. */
static size_t
parts(const char *msg, struct part *v, size_t max)
{
    char ct[512], delim[128];
    const char *b, *p, *next, *sep;
    size_t n = 0;

    assert_int_equal(header(msg, "Content-Type", ct, sizeof(ct)), 1);
    assert_non_null(b = strstr(ct, "boundary=\""));
    b += 10;
    assert_int_equal(str_printf(delim, sizeof(delim), "\r\n--%.*s", (int)strcspn(b, "\""), b), 0);
    p = strstr(msg, delim);
    assert_non_null(p);
    for (;;) {
        p += strlen(delim);
        if (strcmp(p, "--\r\n") == 0)
            return n;
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
        assert_non_null(next = strstr(p, delim));
        assert_true(n < max);
        assert_non_null(sep = strstr(p, "\r\n\r\n"));
        assert_true(sep < next);
        assert_int_equal(str_printf(v[n].hdrs, sizeof(v[n].hdrs), "%.*s\r\n", (int)(sep - p), p), 0);
        assert_non_null(v[n].body = strndup(sep + 4, (size_t)(next - sep - 4)));
        n++;
        p = next;
    }
}

static void
parts_free(struct part *v, size_t n)
{
    while (n-- > 0)
        free(v[n].body);
}

static const struct dsn_rcpt two_rcpt[] = {
    { "a@cust.example", "rfc822;A+2BB@cust.example", "5.1.1", "smtp; 550 5.1.1 no such user",
      "mail.cust.example" },
    { "b@cust.example", NULL, "5.4.7", NULL, NULL },
};

static struct dsn
failed_dsn(const struct dsn_rcpt *r, size_t n)
{
    struct dsn d = { DSN_FAILED, HOST, CUST, "the customer's server refused it", n, r };
    return d;
}

static void
test_failed_two_rcpts(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 2);
    struct part p[4];
    char v[512];
    const char *out;

    put_msg(f, "alice@example.org", "ENVID=env+2Bid+3D1 RET=HDRS", HDRS "\r\n" BODY,
            strlen(HDRS "\r\n" BODY));
    out = render(f, &d, "alice@example.org");
    assert_int_equal(header(out, "From", v, sizeof(v)), 1);
    assert_string_equal(v, "Mail Delivery System <MAILER-DAEMON@" HOST ">");
    assert_int_equal(header(out, "To", v, sizeof(v)), 1);
    assert_string_equal(v, "alice@example.org");
    assert_int_equal(header(out, "Subject", v, sizeof(v)), 1);
    assert_string_equal(v, "Undelivered Mail Returned to Sender");
    assert_int_equal(header(out, "Date", v, sizeof(v)), 1);
    assert_string_equal(v, "Sat, 22 Nov 2025 04:40:00 +0000");
    assert_int_equal(header(out, "Auto-Submitted", v, sizeof(v)), 1);
    assert_string_equal(v, "auto-replied");
    assert_int_equal(header(out, "MIME-Version", v, sizeof(v)), 1);
    assert_string_equal(v, "1.0");
    assert_int_equal(header(out, "Message-ID", v, sizeof(v)), 1);
    assert_true(v[0] == '<' && strstr(v, "@" HOST ">") != NULL);
    assert_int_equal(header(out, "Content-Type", v, sizeof(v)), 1);
    assert_true(strncmp(v, "multipart/report; report-type=delivery-status;\tboundary=\"", 57) == 0);
    assert_int_equal(header(out, "Content-Transfer-Encoding", v, sizeof(v)), 0);

    assert_int_equal(parts(out, p, 4), 3);
    assert_string_equal(p[0].hdrs, "Content-Description: Notification\r\n"
                        "Content-Type: text/plain; charset=us-ascii\r\n");
    assert_non_null(strstr(p[0].body, "Customer: acme\r\n"));
    assert_non_null(strstr(p[0].body, "Reason: the customer's server refused it\r\n"));
    assert_non_null(strstr(p[0].body, "<a@cust.example>: smtp; 550 5.1.1 no such user\r\n"));
    assert_non_null(strstr(p[0].body, "<b@cust.example>: 5.4.7\r\n"));
    assert_string_equal(p[1].hdrs, "Content-Description: Delivery report\r\n"
                        "Content-Type: message/delivery-status\r\n");
    assert_string_equal(p[1].body,
                        "Reporting-MTA: dns; " HOST "\r\n"
                        "Original-Envelope-Id: env+id=1\r\n"
                        "X-Autoturn-Queue-ID: 4XyZ12abc\r\n"
                        "Arrival-Date: " ARRIVAL_TEXT "\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; a@cust.example\r\n"
                        "Original-Recipient: rfc822;A+B@cust.example\r\n"
                        "Action: failed\r\n"
                        "Status: 5.1.1\r\n"
                        "Remote-MTA: dns; mail.cust.example\r\n"
                        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; b@cust.example\r\n"
                        "Action: failed\r\n"
                        "Status: 5.4.7\r\n");
    assert_string_equal(p[2].hdrs, "Content-Description: Undelivered Message Headers\r\n"
                        "Content-Type: text/rfc822-headers\r\n");
    assert_string_equal(p[2].body, HDRS);
    assert_null(strstr(out, "SECRET-BODY-TEXT"));
    parts_free(p, 3);
}

static void
test_delayed(void **state)
{
    struct fixture *f = *state;
    static const struct dsn_rcpt r[] = { { "a@cust.example", NULL, "4.4.7", NULL, NULL } };
    struct dsn d = { DSN_DELAYED, HOST, CUST, "the customer has not connected for 4 hours", 1, r };
    struct part p[4];
    char v[128], *u;
    const char *out;

    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    out = render(f, &d, "alice@example.org");
    assert_int_equal(header(out, "Subject", v, sizeof(v)), 1);
    assert_string_equal(v, "Delayed Mail (still being retried)");
    assert_int_equal(parts(out, p, 4), 3);
    assert_non_null(u = unfold(p[0].body));
    assert_non_null(strstr(u, "has not been delivered yet"));
    assert_non_null(strstr(u, "delivery will be tried again."));
    free(u);
    assert_string_equal(p[1].body, "Reporting-MTA: dns; " HOST "\r\n"
                        "X-Autoturn-Queue-ID: 4XyZ12abc\r\n"
                        "Arrival-Date: " ARRIVAL_TEXT "\r\n"
                        "\r\n"
                        "Final-Recipient: rfc822; a@cust.example\r\n"
                        "Action: delayed\r\n"
                        "Status: 4.4.7\r\n");
    parts_free(p, 3);
}

static void
test_ret_full(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    struct part p[4];

    put_msg(f, "alice@example.org", "RET=FULL", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    assert_int_equal(parts(render(f, &d, "alice@example.org"), p, 4), 3);
    assert_string_equal(p[2].hdrs, "Content-Description: Undelivered Message\r\n"
                        "Content-Type: message/rfc822\r\n");
    assert_string_equal(p[2].body, HDRS "\r\n" BODY);
    parts_free(p, 3);
}

/* A RET=FULL message over DSN_FULL_MAX comes back as headers only. */
static void
test_ret_full_too_big(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    size_t len = strlen(HDRS "\r\n") + DSN_FULL_MAX;
    char *msg = malloc(len);
    struct part p[4];

    assert_non_null(msg);
    memcpy(msg, HDRS "\r\n", strlen(HDRS "\r\n"));
    memset(msg + strlen(HDRS "\r\n"), 'x', DSN_FULL_MAX);
    put_msg(f, "alice@example.org", "RET=FULL", msg, len);
    free(msg);
    assert_int_equal(parts(render(f, &d, "alice@example.org"), p, 4), 3);
    assert_string_equal(p[2].hdrs, "Content-Description: Undelivered Message Headers\r\n"
                        "Content-Type: text/rfc822-headers\r\n");
    assert_string_equal(p[2].body, HDRS);
    parts_free(p, 3);
}

/* LF-only and bare-CR originals come back with CRLF; 8-bit headers are
 * labelled 8bit; a message with no empty line is all headers. */
static void
test_original_line_ends(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    static const char msg[] = "Subject: caf\xc3\xa9\nX-A: 1\rX-B: 2\n";
    struct part p[4];
    char v[64];

    put_msg(f, "alice@example.org", "", msg, strlen(msg));
    assert_int_equal(parts(render(f, &d, "alice@example.org"), p, 4), 3);
    assert_string_equal(p[2].hdrs, "Content-Description: Undelivered Message Headers\r\n"
                        "Content-Type: text/rfc822-headers\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n");
    assert_string_equal(p[2].body, "Subject: caf\xc3\xa9\r\nX-A: 1\r\nX-B: 2\r\n");
    assert_int_equal(header(f->out, "Content-Transfer-Encoding", v, sizeof(v)), 1);
    assert_string_equal(v, "8bit");
    parts_free(p, 3);
}

/* The header block is cut at a line end within 64 KiB. */
static void
test_original_headers_bounded(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    size_t line = 100, n = 1000, i, len = line * n;
    char *msg = malloc(len + 16);
    struct part p[4];

    assert_non_null(msg);
    for (i = 0; i < n; i++) {
        memset(msg + i * line, 'h', line - 2);
        memcpy(msg + i * line, "X-Pad: ", 7);
        memcpy(msg + i * line + line - 2, "\r\n", 2);
    }
    memcpy(msg + len, "\r\nbody\r\n", 8);
    put_msg(f, "alice@example.org", "", msg, len + 8);
    free(msg);
    assert_int_equal(parts(render(f, &d, "alice@example.org"), p, 4), 3);
    assert_int_equal(strlen(p[2].body), (64 * 1024 / line) * line);
    assert_memory_equal(p[2].body + strlen(p[2].body) - 2, "\r\n", 2);
    parts_free(p, 3);
}

/* Remote text cannot inject lines; long text is folded; bad fields fall
 * back or are left out. */
static void
test_hostile_fields(void **state)
{
    struct fixture *f = *state;
    char diag[400], *u, *o;
    const char *e;
    struct dsn_rcpt r[] = { { "a@cust.example", "rfc822;bad+zz", "5.1.1; rm",
                              "smtp; 550 bad\r\nInjected: yes\x01\x7f\xff", "mx\r\nX: y" },
                            { "b@cust.example", "rfc822;a+0Db", "5.3.0", diag, NULL } };
    struct dsn d = failed_dsn(r, 2);
    struct part p[4];
    const char *s;
    size_t i;

    for (i = 0; i + 1 < sizeof(diag); i++)
        diag[i] = i % 10 == 9 ? ' ' : 'a' + (char)(i % 10);
    diag[sizeof(diag) - 1] = '\0';
    memcpy(diag, "550 ", 4);
    put_msg(f, "alice@example.org", "ENVID=x+0Ay", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    assert_int_equal(parts(render(f, &d, "alice@example.org"), p, 4), 3);
    assert_null(strstr(p[1].body, "Original-Envelope-Id"));
    assert_null(strstr(p[1].body, "Original-Recipient"));
    assert_non_null(strstr(p[1].body, "Status: 5.0.0\r\n"));
    assert_non_null(strstr(p[1].body, "Remote-MTA: dns; mx  X: y\r\n"));
    assert_non_null(strstr(p[1].body, "Diagnostic-Code: smtp; 550 bad  Injected: yes???\r\n"));
    assert_null(strstr(f->out, "\nInjected"));
    assert_null(strstr(f->out, "\nX: y"));
    /* the long one: folded at blanks into lines of at most 78 bytes,
     * and unfolding gives it back */
    assert_non_null(s = strstr(p[1].body, "Diagnostic-Code: smtp; 550 efghi"));
    assert_non_null(u = calloc(1, strlen(s) + 1));
    for (o = u;; s = e + 2) {
        assert_non_null(e = strstr(s, "\r\n"));
        assert_true(e - s <= 78);
        memcpy(o, s, (size_t)(e - s));
        o += e - s;
        if (e[2] != ' ')
            break;
    }
    assert_true(strchr(u, '\r') == NULL && o - u > 400);
    assert_string_equal(u + strlen("Diagnostic-Code: smtp; "), diag);
    free(u);
    parts_free(p, 3);
}

/* A 1000-byte address with a 2000-byte diagnostic and no blanks: still
 * a DSN, every line within RFC 5322's 998. */
static void
test_long_fields(void **state)
{
    struct fixture *f = *state;
    char addr[1001], diag[2001];
    struct dsn_rcpt r[] = { { addr, NULL, "5.1.1", diag, NULL } };
    struct dsn d = failed_dsn(r, 1);
    const char *s, *e;
    char *u;

    memset(addr, 'a', sizeof(addr) - 1);
    memcpy(addr + sizeof(addr) - 13, "@example.org", 13);
    memset(diag, 'd', sizeof(diag) - 1);
    memcpy(diag, "smtp; ", 6);
    diag[sizeof(diag) - 1] = '\0';
    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    render(f, &d, "alice@example.org");
    for (s = f->out; (e = strstr(s, "\r\n")) != NULL; s = e + 2)
        assert_true(e - s <= 998);
    /* a hard break is folding whitespace inside the address: unavoidable */
    assert_non_null(u = unfold(f->out));
    addr[900] = '\0';
    assert_non_null(strstr(u, addr));
    assert_non_null(strstr(u, "aaaa@example.org"));
    free(u);
}

static void
test_recipient(void **state)
{
    static const struct {
        const char *label, *sender, *want;
    } rows[] = {
        { "sender", "alice@example.org", "alice@example.org" },
        { "null sender goes to postmaster", "", "postmaster@example.net" },
    };
    struct envelope e;
    struct errbuf err;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        envelope_init(&e);
        assert_int_equal(envelope_set_sender(&e, rows[i].sender, "", &err), 0);
        print_message("%s\n", rows[i].label);
        assert_string_equal(dsn_recipient(&e, "postmaster@example.net"), rows[i].want);
        envelope_clear(&e);
    }
}

/* A bounce of a bounce: the DSN goes to postmaster, and says so in To:. */
static void
test_null_sender_to_postmaster(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    char v[128];

    put_msg(f, "", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    render(f, &d, dsn_recipient(spool_msg_envelope(f->m), "postmaster"));
    assert_int_equal(header(f->out, "To", v, sizeof(v)), 1);
    assert_string_equal(v, "postmaster");
}

/* --- dsn_send: sendmail --- */

static void
cfg_init(struct config_flusher *c, const char *method, const char *cmd)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(str_copy(c->myhostname, sizeof(c->myhostname), HOST), 0);
    assert_int_equal(str_copy(c->bounce_method, sizeof(c->bounce_method), method), 0);
    assert_int_equal(str_copy(c->sendmail_command, sizeof(c->sendmail_command), cmd), 0);
    c->connect_timeout = 5;
    c->command_timeout = 5;
    c->data_timeout = 5;
}

/* script - a fake sendmail in the fixture dir that records its argv and
 * stdin and exits with code. */
static void
script(struct fixture *f, int code, char *path, size_t size)
{
    char text[1024];
    int fd;

    assert_int_equal(str_printf(path, size, "%s/sendmail", f->root), 0);
    assert_int_equal(str_printf(text, sizeof(text), "#!/bin/sh\nprintf '[%%s]\\n' \"$@\" >%s/args\n"
                                "cat >%s/stdin\nexit %d\n", f->root, f->root, code), 0);
    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755)) >= 0);
    assert_int_equal(fd_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(close(fd), 0);
}

static char *
slurp(struct fixture *f, const char *name)
{
    char path[128];
    char *p;
    int fd;

    assert_int_equal(str_printf(path, sizeof(path), "%s/%s", f->root, name), 0);
    assert_true((fd = open(path, O_RDONLY)) >= 0);
    p = slurp_fd(fd);
    close(fd);
    return p;
}

static void
test_send_sendmail(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 2);
    struct config_flusher c;
    struct errbuf err = { "" };
    char path[128], cmd[256], *args, *in;
    struct part p[4];

    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    script(f, 0, path, sizeof(path));
    assert_int_equal(str_printf(cmd, sizeof(cmd), "%s  -C /etc/x", path), 0);
    cfg_init(&c, "sendmail", cmd);
    assert_int_equal(dsn_send(&c, &d, f->m, "alice@example.org", &err), 0);
    args = slurp(f, "args");
    assert_string_equal(args, "[-C]\n[/etc/x]\n[-f]\n[<>]\n[-oi]\n[--]\n[alice@example.org]\n");
    in = slurp(f, "stdin");
    assert_int_equal(parts(in, p, 4), 3);
    assert_string_equal(p[2].body, HDRS);
    parts_free(p, 3);
    free(args);
    free(in);
}

static void
test_send_sendmail_errors(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    struct config_flusher c;
    struct errbuf err = { "" };
    char path[128];
    static const struct {
        const char *label, *method, *cmd, *want;
    } rows[] = {
        { "false", "sendmail", "/bin/false", "sendmail exited with status 1" },
        { "missing", "sendmail", "/nonexistent/sendmail -t",
          "cannot execute /nonexistent/sendmail: No such file or directory" },
        { "empty", "sendmail", "  ", "sendmail_command is empty" },
        { "too many words", "sendmail", "a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5",
          "sendmail_command has too many words" },
        { "method", "pigeon", "/bin/true", "unknown bounce_method \"pigeon\"" },
    };
    size_t i;

    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        print_message("%s\n", rows[i].label);
        cfg_init(&c, rows[i].method, rows[i].cmd);
        assert_int_equal(dsn_send(&c, &d, f->m, "alice@example.org", &err), -1);
        assert_string_equal(err.msg, rows[i].want);
    }
    script(f, 75, path, sizeof(path));
    cfg_init(&c, "sendmail", path);
    assert_int_equal(dsn_send(&c, &d, f->m, "alice@example.org", &err), -1);
    assert_string_equal(err.msg, "sendmail exited with status 75");
    cfg_init(&c, "sendmail", "/bin/sh -c kill${IFS}-9${IFS}$$");
    assert_int_equal(dsn_send(&c, &d, f->m, "alice@example.org", &err), -1);
    assert_string_equal(err.msg, "sendmail killed by signal 9");
}

/* --- dsn_send: SMTP to a scripted relay --- */

struct relay {
    int lfd;
    const char *greeting, *ehlo, *mail, *rcpt, *data, *dot;
    char log[4096];                /* commands received, one per line */
    char *body;                    /* data received, dot-unstuffed */
    size_t body_len;
};

static int
get_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    char c;

    while (n + 1 < size) {
        if (read(fd, &c, 1) != 1)
            return -1;
        buf[n++] = c;
        if (c == '\n')
            break;
    }
    buf[n] = '\0';
    return (int)n;
}

static int
say(int fd, const char *reply)
{
    return reply == NULL ? -1 : fd_write_all(fd, reply, strlen(reply));
}

static void
note(struct relay *r, const char *line)
{
    size_t n = strlen(r->log);

    (void)str_copy(r->log + n, sizeof(r->log) - n, line);
}

static int
relay_data(struct relay *r, int fd)
{
    char line[2048];
    size_t n;

    while (get_line(fd, line, sizeof(line)) > 0 && strcmp(line, ".\r\n") != 0) {
        n = strlen(line);
        r->body = realloc(r->body, r->body_len + n + 1);
        memcpy(r->body + r->body_len, line[0] == '.' ? line + 1 : line, n - (line[0] == '.'));
        r->body_len += n - (line[0] == '.');
        r->body[r->body_len] = '\0';
    }
    note(r, ".\r\n");
    return say(fd, r->dot);
}

static void *
relay_main(void *arg)
{
    struct relay *r = arg;
    char line[2048];
    int fd = accept(r->lfd, NULL, NULL);

    if (fd < 0 || say(fd, r->greeting) < 0)
        goto out;
    while (get_line(fd, line, sizeof(line)) > 0) {
        note(r, line);
        if (strncmp(line, "EHLO", 4) == 0 || strncmp(line, "HELO", 4) == 0) {
            if (say(fd, r->ehlo) < 0)
                break;
        } else if (strncmp(line, "MAIL", 4) == 0) {
            if (say(fd, r->mail) < 0)
                break;
        } else if (strncmp(line, "RCPT", 4) == 0) {
            if (say(fd, r->rcpt) < 0)
                break;
        } else if (strcmp(line, "DATA\r\n") == 0) {
            if (say(fd, r->data) < 0)
                break;
            if (relay_data(r, fd) < 0)
                break;
        } else {
            (void)say(fd, "221 bye\r\n");
            break;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* run_relay - dsn_send with method smtp against relay r; returns its rc. */
static int
run_relay(struct fixture *f, struct relay *r, const struct dsn *d, struct errbuf *err,
          struct config_flusher *c)
{
    const char *e = NULL;
    char spec[128];
    pthread_t t;
    int rc;

    cfg_init(c, "smtp", "");
    assert_int_equal(str_printf(spec, sizeof(spec), "unix:%s/relay.sock", f->root), 0);
    assert_int_equal(sockspec_parse(spec, &c->bounce_relay, &e), 0);
    unlink(c->bounce_relay.path);
    assert_true((r->lfd = sockspec_listen(&c->bounce_relay, 4, &e)) >= 0);
    assert_int_equal(pthread_create(&t, NULL, relay_main, r), 0);
    rc = dsn_send(c, d, f->m, "alice@example.org", err);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(r->lfd);
    return rc;
}

static const struct relay good_relay = {
    -1, "220 relay ESMTP\r\n", "250-relay\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
    "250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 go\r\n", "250 2.0.0 Ok: queued as X\r\n",
    "", NULL, 0,
};

static void
test_send_smtp(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 2);
    struct relay r = good_relay;
    struct config_flusher c;
    struct errbuf err = { "" };
    struct part p[4];

    put_msg(f, "alice@example.org", "RET=FULL", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    assert_int_equal(run_relay(f, &r, &d, &err, &c), 0);
    assert_string_equal(r.log, "EHLO " HOST "\r\nMAIL FROM:<> BODY=8BITMIME\r\n"
                        "RCPT TO:<alice@example.org>\r\nDATA\r\n.\r\nQUIT\r\n");
    assert_non_null(r.body);
    assert_int_equal(parts(r.body, p, 4), 3);
    assert_string_equal(p[2].body, HDRS "\r\n" BODY);   /* ".leading dot" unstuffed intact */
    parts_free(p, 3);
    free(r.body);
}

static void
test_send_smtp_refusals(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    struct config_flusher c;
    struct errbuf err = { "" };
    char want[512];
    static const struct {
        const char *label;
        int field;                 /* 0 greeting .. 5 dot */
        const char *reply, *want;
    } rows[] = {
        { "greeting 554", 0, "554 5.3.2 go away\r\n", "greeting: 554 5.3.2 go away" },
        { "mail 451", 2, "451 4.3.0 try later\r\n", "MAIL FROM: 451 4.3.0 try later" },
        { "rcpt 550 with CR in text", 3, "550 5.1.1 no\x01such\r\n",
          "RCPT TO: 550 5.1.1 no?such" },
        { "data 554", 4, "554 no data\r\n", "DATA: 554 no data" },
        { "dot 552", 5, "552-5.3.4 too big\r\n552 really\r\n", "end of data: 552-5.3.4 too big" },
        { "dropped after dot", 5, NULL, "end of data: connection closed" },
        { "garbage", 2, "OK\r\n", "MAIL FROM: malformed reply: OK" },
    };
    size_t i;

    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        struct relay r = good_relay;
        const char **fld[] = { &r.greeting, &r.ehlo, &r.mail, &r.rcpt, &r.data, &r.dot };

        print_message("%s\n", rows[i].label);
        *fld[rows[i].field] = rows[i].reply;
        assert_int_equal(run_relay(f, &r, &d, &err, &c), -1);
        assert_int_equal(str_printf(want, sizeof(want), "bounce relay unix:%s/relay.sock: %s",
                                    f->root, rows[i].want), 0);
        assert_string_equal(err.msg, want);
        free(r.body);
    }
    {   /* a reply line longer than the client's cap */
        struct relay r = good_relay;
        char *big = malloc(4000);

        assert_non_null(big);
        memset(big, '5', 3998);
        memcpy(big + 3998, "\r\n", 2);
        big[3999] = '\0';
        big[3998] = '\n';
        r.mail = big;
        assert_int_equal(run_relay(f, &r, &d, &err, &c), -1);
        assert_int_equal(str_printf(want, sizeof(want), "bounce relay unix:%s/relay.sock: "
                                    "MAIL FROM: reply line too long", f->root), 0);
        assert_string_equal(err.msg, want);
        free(big);
    }
}

/* HELO fallback when EHLO is refused; no BODY= without 8BITMIME. */
static void
test_send_smtp_helo(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    struct relay r = good_relay;
    struct config_flusher c;
    struct errbuf err = { "" };

    r.ehlo = "502 no\r\n";
    put_msg(f, "", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    /* 502 for EHLO and HELO: both refused */
    assert_int_equal(run_relay(f, &r, &d, &err, &c), -1);
    assert_string_equal(strstr(err.msg, ": HELO"), ": HELO: 502 no");
    free(r.body);
}

static void
test_send_smtp_no_relay(void **state)
{
    struct fixture *f = *state;
    struct dsn d = failed_dsn(two_rcpt, 1);
    struct config_flusher c;
    struct errbuf err = { "" };
    const char *e = NULL;
    char spec[128], want[256];

    put_msg(f, "alice@example.org", "", HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY));
    cfg_init(&c, "smtp", "");
    assert_int_equal(str_printf(spec, sizeof(spec), "unix:%s/none.sock", f->root), 0);
    assert_int_equal(sockspec_parse(spec, &c.bounce_relay, &e), 0);
    assert_int_equal(dsn_send(&c, &d, f->m, "alice@example.org", &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "bounce relay %s: connect: "
                                "No such file or directory", spec), 0);
    assert_string_equal(err.msg, want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failed_two_rcpts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ret_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ret_full_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_original_line_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_original_headers_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_fields, setup, teardown),
        cmocka_unit_test(test_recipient),
        cmocka_unit_test_setup_teardown(test_null_sender_to_postmaster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_sendmail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_sendmail_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_smtp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_smtp_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_smtp_helo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_smtp_no_relay, setup, teardown),
    };

    setenv("TZ", "UTC", 1);
    tzset();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
