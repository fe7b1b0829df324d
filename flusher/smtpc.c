/*
 * smtpc.c - the flusher's SMTP client: one connection to a customer's
 * server (plain or STARTTLS), its reply parser, and the transactions that
 * carry held messages over it. It owns the socket, the OpenSSL objects and
 * two bounded buffers (replies in, commands and body out); nothing else.
 *
 * Every read and write waits with poll() up to the timeout of the step it
 * belongs to (a deadline per reply, per write block), so a peer that
 * trickles bytes cannot stretch a step. Errors are handed up in the
 * errbuf; nothing is logged here. The socket is written with MSG_NOSIGNAL,
 * but OpenSSL writes with write(2): the caller must ignore SIGPIPE.
 *
 * Extensions a message needs and the peer lacks are never "fixed" by
 * changing the message: SMTPUTF8 missing -> SMTPC_NEEDS_SMTPUTF8 (keep;
 * the server may gain it), BODY=8BITMIME with 8-bit bytes and no 8BITMIME
 * at the peer -> SMTPC_NEEDS_8BITMIME (RFC 6152 section 3: without
 * conversion this is a permanent failure, so the caller bounces).
 *
 * TLS policy "may": STARTTLS when offered; if the server refuses the
 * command (non-220) the session goes on in plain text (still in sync), but
 * a failed handshake ends the connection with -1: we never fall back to
 * plain text inside the same connection after a handshake was attempted.
 * The caller may retry later with policy "none" if it wishes.
 *
 * SECURITY: every reply comes from an untrusted network peer: lines are
 * capped (SMTPC_LINE_MAX), a reply has at most SMTPC_REPLY_LINES_MAX
 * lines, codes must be 3 digits 2xx..5xx and agree across lines, and the
 * kept text is truncated and stripped of control bytes. Bytes received
 * before the TLS handshake are refused (STARTTLS command injection).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "smtpc.h"
#include "util.h"

#define SMTPC_HOST_MAX     300           /* host string kept for messages */
#define SMTPC_CMD_MAX      2600          /* one MAIL/RCPT command line */
#define SMTPC_WBUF         65536         /* write buffer: command groups and body blocks */
#define SMTPC_RBUF         (2 * SMTPC_LINE_MAX + 4)
#define SMTPC_PIPELINE_MAX 100           /* commands per pipelined group (RFC 2920 3.1) */
#define SMTPC_QUIT_TIMEOUT 5             /* seconds for QUIT at close */
#define SMTPC_SNI_MAX      253

struct smtpc {
    int fd;
    bool broken;                       /* an I/O error happened: no more traffic */
    SSL_CTX *ctx;
    SSL *ssl;
    struct smtpc_opts opts;
    char host[SMTPC_HOST_MAX];
    struct smtpc_ext ext;
    size_t rpos, rlen;
    char rbuf[SMTPC_RBUF];
    size_t wlen;
    char wbuf[SMTPC_WBUF];
};

/* --- time --- */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
deadline_after(unsigned seconds)
{
    return now_ms() + (int64_t)seconds * 1000;
}

/* wait_fd - poll fd for events until deadline: 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    int64_t left;
    int n;

    for (;;) {
        left = deadline - now_ms();
        if (left <= 0)
            return 0;
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* --- raw I/O (plain or TLS) --- */

/* io_want - after an I/O attempt that could not proceed: which poll event
 * to wait for (0: a real error or EOF). */
static short
io_want(struct smtpc *c, int n, bool writing)
{
    if (c->ssl != NULL) {
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            return POLLIN;
        case SSL_ERROR_WANT_WRITE:
            return POLLOUT;
        default:
            return 0;
        }
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return writing ? POLLOUT : POLLIN;
    return 0;
}

/* io_fail - describe a failed read or write (n is its return value). */
static void
io_fail(struct smtpc *c, int n, bool writing, struct errbuf *err)
{
    unsigned long e;

    c->broken = true;
    if (c->ssl != NULL && (e = ERR_get_error()) != 0) {
        errbuf_set(err, "TLS %s %s: %s", writing ? "write to" : "read from", c->host,
                   ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
        ERR_clear_error();
    } else if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE || errno == 0)))
        errbuf_set(err, "connection closed by %s", c->host);
    else
        errbuf_set_errno(err, "%s %s", writing ? "write to" : "read from", c->host);
}

static void
io_timeout(struct smtpc *c, const char *what, struct errbuf *err)
{
    c->broken = true;
    errbuf_set(err, "timeout %s %s", what, c->host);
}

/* io_read - up to len bytes into buf before deadline; >0 count, -1 error. */
static ssize_t
io_read(struct smtpc *c, void *buf, size_t len, int64_t deadline, struct errbuf *err)
{
    ssize_t n;
    short ev;
    int w;

    for (;;) {
        errno = 0;
        if (c->ssl != NULL)
            n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        else
            n = recv(c->fd, buf, len, 0);
        if (n > 0)
            return n;
        if ((ev = io_want(c, (int)n, false)) == 0) {
            io_fail(c, (int)n, false, err);
            return -1;
        }
        if ((w = wait_fd(c->fd, ev, deadline)) <= 0) {
            if (w == 0)
                io_timeout(c, "reading from", err);
            else
                io_fail(c, -1, false, err);
            return -1;
        }
    }
}

/* io_write_all - write len bytes before deadline; 0 / -1. */
static int
io_write_all(struct smtpc *c, const char *buf, size_t len, int64_t deadline, struct errbuf *err)
{
    ssize_t n;
    short ev;
    int w;

    while (len > 0) {
        errno = 0;
        if (c->ssl != NULL)
            n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        else
            n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if ((ev = io_want(c, (int)n, true)) == 0) {
            io_fail(c, (int)n, true, err);
            return -1;
        }
        if ((w = wait_fd(c->fd, ev, deadline)) <= 0) {
            if (w == 0)
                io_timeout(c, "writing to", err);
            else
                io_fail(c, -1, true, err);
            return -1;
        }
    }
    return 0;
}

/* --- output buffer --- */

static int
wbuf_flush(struct smtpc *c, unsigned timeout, struct errbuf *err)
{
    int rc;

    if (c->wlen == 0)
        return 0;
    rc = io_write_all(c, c->wbuf, c->wlen, deadline_after(timeout), err);
    c->wlen = 0;
    return rc;
}

/* wbuf_put - append, flushing full blocks with the given timeout. */
static int
wbuf_put(struct smtpc *c, const char *p, size_t len, unsigned timeout, struct errbuf *err)
{
    size_t k;

    while (len > 0) {
        if (c->wlen == sizeof(c->wbuf) && wbuf_flush(c, timeout, err) < 0)
            return -1;
        k = sizeof(c->wbuf) - c->wlen;
        if (k > len)
            k = len;
        memcpy(c->wbuf + c->wlen, p, k);
        c->wlen += k;
        p += k;
        len -= k;
    }
    return 0;
}

/* --- replies --- */

/* read_line - next reply line (CRLF or LF stripped) from the read buffer.
 * *line_r points into rbuf, valid until the next call. */
static int
read_line(struct smtpc *c, int64_t deadline, char **line_r, size_t *len_r, struct errbuf *err)
{
    char *lf;
    ssize_t n;

    for (;;) {
        lf = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
        if (lf != NULL)
            break;
        if (c->rlen - c->rpos > SMTPC_LINE_MAX + 1) {
            c->broken = true;
            errbuf_set(err, "malformed reply from %s: line longer than %d bytes", c->host,
                       SMTPC_LINE_MAX);
            return -1;
        }
        if (c->rpos > 0) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        if ((n = io_read(c, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, deadline, err)) < 0)
            return -1;
        c->rlen += (size_t)n;
    }
    *line_r = c->rbuf + c->rpos;
    *len_r = (size_t)(lf - *line_r);
    c->rpos += *len_r + 1;
    if (*len_r > 0 && (*line_r)[*len_r - 1] == '\r')
        (*len_r)--;
    if (*len_r > SMTPC_LINE_MAX) {
        c->broken = true;
        errbuf_set(err, "malformed reply from %s: line longer than %d bytes", c->host,
                   SMTPC_LINE_MAX);
        return -1;
    }
    return 0;
}

/* text_append - append len bytes to the reply text, control bytes as '?',
 * silently truncated. */
static void
text_append(struct smtpc_reply *r, const char *p, size_t len)
{
    size_t have = strlen(r->text);

    for (; len > 0 && have + 1 < sizeof(r->text); p++, len--) {
        unsigned char ch = (unsigned char)*p;

        r->text[have++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    r->text[have] = '\0';
}

/* quote_line - a short printable excerpt of a bad line for the error text. */
static const char *
quote_line(const char *line, size_t len, char *buf, size_t size)
{
    size_t i;

    for (i = 0; i < len && i + 1 < size; i++) {
        unsigned char ch = (unsigned char)line[i];

        buf[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    buf[i] = '\0';
    return buf;
}

/* parse_code - the 3-digit code and the continuation flag of one line. */
static int
parse_code(struct smtpc *c, const char *line, size_t len, int *code_r, bool *more_r,
           struct errbuf *err)
{
    char q[41];

    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9'
        || line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        c->broken = true;
        errbuf_set(err, "malformed reply from %s: no reply code in \"%s\"", c->host,
                   quote_line(line, len, q, sizeof(q)));
        return -1;
    }
    if (memchr(line, '\0', len) != NULL) {
        c->broken = true;
        errbuf_set(err, "malformed reply from %s: NUL byte in reply", c->host);
        return -1;
    }
    *code_r = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    *more_r = len > 3 && line[3] == '-';
    return 0;
}

/* ext_parse_line - one EHLO keyword line (text after "250-"). */
static void
ext_parse_line(struct smtpc_ext *x, const char *p, size_t len)
{
    char kw[32], *end;
    size_t k = 0;
    unsigned long long v;

    while (k < len && p[k] != ' ' && k + 1 < sizeof(kw)) {
        kw[k] = p[k];
        k++;
    }
    kw[k] = '\0';
    if (k < len && p[k] != ' ')
        return;
    if (str_ieq(kw, "PIPELINING"))
        x->pipelining = true;
    else if (str_ieq(kw, "8BITMIME"))
        x->eightbitmime = true;
    else if (str_ieq(kw, "SMTPUTF8"))
        x->smtputf8 = true;
    else if (str_ieq(kw, "DSN"))
        x->dsn = true;
    else if (str_ieq(kw, "STARTTLS"))
        x->starttls = true;
    else if (str_ieq(kw, "SIZE")) {
        char num[24];

        x->size = true;
        x->size_max = 0;
        if (k + 1 < len && len - k - 1 < sizeof(num)) {
            memcpy(num, p + k + 1, len - k - 1);
            num[len - k - 1] = '\0';
            errno = 0;
            v = strtoull(num, &end, 10);
            if (errno == 0 && *end == '\0' && num[0] >= '0' && num[0] <= '9')
                x->size_max = v;
        }
    }
}

/* read_reply - one complete reply before timeout; with x, the lines after
 * the first are parsed as EHLO keywords (when the code is 250). */
static int
read_reply(struct smtpc *c, unsigned timeout, struct smtpc_reply *r, struct smtpc_ext *x,
           struct errbuf *err)
{
    int64_t deadline = deadline_after(timeout);
    char *line;
    size_t len, nlines;
    int code;
    bool more = true;

    r->code = 0;
    r->text[0] = '\0';
    if (c->broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->host);
        return -1;
    }
    for (nlines = 0; more; nlines++) {
        if (nlines == SMTPC_REPLY_LINES_MAX) {
            c->broken = true;
            errbuf_set(err, "malformed reply from %s: more than %d lines", c->host,
                       SMTPC_REPLY_LINES_MAX);
            return -1;
        }
        if (read_line(c, deadline, &line, &len, err) < 0
            || parse_code(c, line, len, &code, &more, err) < 0)
            return -1;
        if (nlines > 0 && code != r->code) {
            c->broken = true;
            errbuf_set(err, "malformed reply from %s: code %d after %d", c->host, code, r->code);
            return -1;
        }
        r->code = code;
        if (len < 4)
            line[len++] = ' ';                /* "250" alone: no text (the LF slot is free) */
        if (nlines > 0) {
            text_append(r, " / ", 3);
            text_append(r, line + 4, len - 4);
            if (x != NULL && code == 250)
                ext_parse_line(x, line + 4, len - 4);
        } else {
            text_append(r, line, 3);
            if (len > 3) {
                text_append(r, " ", 1);
                text_append(r, line + 4, len - 4);
            }
        }
    }
    return 0;
}

/* command - send one line (without CRLF) and read its reply. */
static int
command(struct smtpc *c, const char *line, unsigned timeout, struct smtpc_reply *r,
        struct smtpc_ext *x, struct errbuf *err)
{
    if (c->broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->host);
        return -1;
    }
    if (wbuf_put(c, line, strlen(line), timeout, err) < 0 || wbuf_put(c, "\r\n", 2, timeout, err) < 0
        || wbuf_flush(c, timeout, err) < 0)
        return -1;
    return read_reply(c, timeout, r, x, err);
}

/* --- session setup --- */

static int
tcp_connect(struct smtpc *c, const struct sockaddr *addr, socklen_t addrlen, struct errbuf *err)
{
    int soerr = 0, w, one = 1;
    socklen_t sl = sizeof(soerr);

    c->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        errbuf_set_errno(err, "socket for %s", c->host);
        return -1;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        errbuf_set_errno(err, "connect to %s", c->host);
        return -1;
    }
    if ((w = wait_fd(c->fd, POLLOUT, deadline_after(c->opts.connect_timeout))) <= 0) {
        if (w == 0)
            errbuf_set(err, "timeout connecting to %s", c->host);
        else
            errbuf_set_errno(err, "connect to %s", c->host);
        return -1;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
        if (soerr != 0)
            errno = soerr;
        errbuf_set_errno(err, "connect to %s", c->host);
        return -1;
    }
    return 0;
}

/* helo - EHLO, or HELO when EHLO is refused with 5xx; fills c->ext. */
static int
helo(struct smtpc *c, struct smtpc_reply *r, struct errbuf *err)
{
    char cmd[SMTPC_CMD_MAX];
    bool tls = c->ext.tls_active;

    memset(&c->ext, 0, sizeof(c->ext));
    c->ext.tls_active = tls;
    if (str_printf(cmd, sizeof(cmd), "EHLO %s", c->opts.helo_name) < 0) {
        errbuf_set(err, "helo name too long");
        return -1;
    }
    if (command(c, cmd, c->opts.command_timeout, r, &c->ext, err) < 0)
        return -1;
    if (r->code == 250) {
        c->ext.esmtp = true;
        return 0;
    }
    memset(&c->ext, 0, sizeof(c->ext));
    c->ext.tls_active = tls;
    if (r->code / 100 != 5) {
        errbuf_set(err, "EHLO refused by %s: %s", c->host, r->text);
        return -1;
    }
    if (str_printf(cmd, sizeof(cmd), "HELO %s", c->opts.helo_name) < 0
        || command(c, cmd, c->opts.command_timeout, r, NULL, err) < 0)
        return -1;
    if (r->code != 250) {
        errbuf_set(err, "HELO refused by %s: %s", c->host, r->text);
        return -1;
    }
    return 0;
}

/* sni_name - the host name part of "name[addr]:port" (or "name:port"),
 * or NULL if it is empty or an address literal. */
static const char *
sni_name(const char *host, char *buf, size_t size)
{
    const char *end = strchr(host, '[');
    struct in_addr a4;
    size_t n, i;
    bool alpha = false;

    if (end == NULL && (end = strchr(host, ':')) != NULL && strchr(end + 1, ':') != NULL)
        return NULL;                          /* bare IPv6 literal */
    n = end != NULL ? (size_t)(end - host) : strlen(host);
    if (n == 0 || n >= size || n > SMTPC_SNI_MAX)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)host[i];

        if (!(ch == '.' || ch == '-' || (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')))
            return NULL;
        alpha |= (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
    }
    memcpy(buf, host, n);
    buf[n] = '\0';
    return (!alpha || inet_pton(AF_INET, buf, &a4) == 1) ? NULL : buf;
}

static int
tls_setup(struct smtpc *c, struct errbuf *err)
{
    char name[SMTPC_SNI_MAX + 1];
    const char *sni = sni_name(c->host, name, sizeof(name));

    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL
        || SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1)
        goto fail;
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (c->opts.tls_ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(c->ctx, c->opts.tls_ca_file, NULL) != 1) {
            errbuf_set(err, "cannot load TLS CA file %s", c->opts.tls_ca_file);
            ERR_clear_error();
            return -1;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        goto fail;
    if (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1)
        goto fail;
    if (sni != NULL && c->opts.tls_ca_file != NULL && SSL_set1_host(c->ssl, sni) != 1)
        goto fail;
    return 0;
fail:
    errbuf_set(err, "TLS setup for %s failed", c->host);
    ERR_clear_error();
    return -1;
}

/* tls_handshake - SSL_connect with the command timeout. */
static int
tls_handshake(struct smtpc *c, struct errbuf *err)
{
    int64_t deadline = deadline_after(c->opts.command_timeout);
    unsigned long e;
    long vr;
    int n, w;
    short ev;

    while ((n = SSL_connect(c->ssl)) != 1) {
        if ((ev = io_want(c, n, false)) == 0) {
            vr = SSL_get_verify_result(c->ssl);
            e = ERR_get_error();
            if (vr != X509_V_OK)
                errbuf_set(err, "TLS handshake with %s failed: %s", c->host,
                           X509_verify_cert_error_string(vr));
            else
                errbuf_set(err, "TLS handshake with %s failed: %s", c->host,
                           e != 0 && ERR_reason_error_string(e) != NULL
                               ? ERR_reason_error_string(e) : "connection closed");
            ERR_clear_error();
            return -1;
        }
        if ((w = wait_fd(c->fd, ev, deadline)) <= 0) {
            errbuf_set(err, "timeout in TLS handshake with %s", c->host);
            return -1;
        }
    }
    c->ext.tls_active = true;
    return 0;
}

/* starttls - per policy; 0 also when the session stays plain (may). */
static int
starttls(struct smtpc *c, struct smtpc_reply *r, struct errbuf *err)
{
    if (c->opts.tls == TLS_NONE)
        return 0;
    if (!c->ext.starttls) {
        if (c->opts.tls == TLS_MAY)
            return 0;
        errbuf_set(err, "TLS required but not offered by %s", c->host);
        return -1;
    }
    if (command(c, "STARTTLS", c->opts.command_timeout, r, NULL, err) < 0)
        return -1;
    if (r->code != 220) {
        if (c->opts.tls == TLS_MAY)
            return 0;                         /* refused: still in sync, go on in plain text */
        errbuf_set(err, "STARTTLS refused by %s: %s", c->host, r->text);
        return -1;
    }
    if (c->rpos != c->rlen) {
        c->broken = true;
        errbuf_set(err, "%s sent data after the STARTTLS reply", c->host);
        return -1;
    }
    if (tls_setup(c, err) < 0 || tls_handshake(c, err) < 0) {
        c->broken = true;
        return -1;
    }
    return helo(c, r, err);
}

static void
smtpc_free(struct smtpc *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        (void)close(c->fd);
    x_free(c);
}

int
smtpc_open(const struct sockaddr *addr, socklen_t addrlen, const char *host,
           const struct smtpc_opts *opts, struct smtpc **c_r, struct smtpc_reply *reply_r,
           struct errbuf *err)
{
    struct smtpc_reply scratch, *r = reply_r != NULL ? reply_r : &scratch;
    struct smtpc *c;

    *c_r = NULL;
    r->code = 0;
    r->text[0] = '\0';
    if ((c = x_calloc(1, sizeof(*c))) == NULL) {
        errbuf_set_errno(err, "smtpc_open");
        return -1;
    }
    c->fd = -1;
    c->opts = *opts;
    if (c->opts.helo_name == NULL)
        c->opts.helo_name = "localhost";
    (void)str_copy(c->host, sizeof(c->host), host != NULL ? host : "?");
    if (tcp_connect(c, addr, addrlen, err) < 0
        || read_reply(c, opts->greeting_timeout, r, NULL, err) < 0)
        goto fail;
    if (r->code != 220) {
        errbuf_set(err, "unexpected greeting from %s: %s", c->host, r->text);
        goto fail;
    }
    if (helo(c, r, err) < 0 || starttls(c, r, err) < 0)
        goto fail;
    *c_r = c;
    return 0;
fail:
    smtpc_free(c);
    return -1;
}

const struct smtpc_ext *
smtpc_extensions(const struct smtpc *c)
{
    return &c->ext;
}

/* --- transaction --- */

static bool
has_8bit(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static bool
needs_smtputf8(const struct envelope *env)
{
    char v[8];
    size_t i;

    if (envelope_param(env->mail_params, "SMTPUTF8", v, sizeof(v)) != 0 || has_8bit(env->sender))
        return true;
    for (i = 0; i < env->nrcpt; i++)
        if (has_8bit(env->rcpt[i].addr))
            return true;
    return false;
}

/* body_has_8bit - scan the message body; 1 yes, 0 no, -1 read error. */
static int
body_has_8bit(struct smtpc *c, struct spool_msg *m, struct errbuf *err)
{
    ssize_t n, i;
    int found = 0;

    while (found == 0 && (n = spool_msg_read(m, c->wbuf, sizeof(c->wbuf), err)) > 0)
        for (i = 0; i < n; i++)
            if ((unsigned char)c->wbuf[i] >= 0x80) {
                found = 1;
                break;
            }
    if (found == 0 && n < 0)
        return -1;
    return spool_msg_rewind(m, err) < 0 ? -1 : found;
}

/* add_param - append " KEY=VALUE" (or " KEY") to cmd if params has it. */
static int
add_param(char *cmd, size_t size, const char *params, const char *key)
{
    char v[ENVELOPE_PARAMS_MAX + 1];
    size_t len = strlen(cmd);

    switch (envelope_param(params, key, v, sizeof(v))) {
    case 0:
        return 0;
    case 1:
        return str_printf(cmd + len, size - len, v[0] != '\0' ? " %s=%s" : " %s", key, v);
    default:
        return -1;
    }
}

static int
mail_command(struct smtpc *c, const struct envelope *env, uint64_t size, bool utf8, char *cmd,
             size_t cmdsize, struct errbuf *err)
{
    size_t len;
    int rc;

    rc = str_printf(cmd, cmdsize, "MAIL FROM:<%s>", env->sender);
    if (rc == 0 && c->ext.eightbitmime)
        rc = add_param(cmd, cmdsize, env->mail_params, "BODY");
    if (rc == 0 && utf8) {
        len = strlen(cmd);
        rc = str_printf(cmd + len, cmdsize - len, " SMTPUTF8");
    }
    if (rc == 0 && c->ext.size) {
        len = strlen(cmd);
        rc = str_printf(cmd + len, cmdsize - len, " SIZE=%" PRIu64, size);
    }
    if (rc == 0 && c->ext.dsn)
        rc = add_param(cmd, cmdsize, env->mail_params, "ENVID");
    if (rc == 0 && c->ext.dsn)
        rc = add_param(cmd, cmdsize, env->mail_params, "RET");
    if (rc < 0)
        errbuf_set(err, "MAIL command too long");
    return rc;
}

static int
rcpt_command(struct smtpc *c, const struct envelope_rcpt *rc, char *cmd, size_t cmdsize,
             struct errbuf *err)
{
    int r = str_printf(cmd, cmdsize, "RCPT TO:<%s>", rc->addr);

    if (r == 0 && c->ext.dsn)
        r = add_param(cmd, cmdsize, rc->params, "NOTIFY");
    if (r == 0 && c->ext.dsn)
        r = add_param(cmd, cmdsize, rc->params, "ORCPT");
    if (r < 0)
        errbuf_set(err, "RCPT command too long");
    return r;
}

/* closing - a 421 reply: the server is ending the session (RFC 5321
 * 3.8); the rest of the pipelined replies will never come. */
static int
closing(struct smtpc *c, const struct smtpc_reply *r, struct errbuf *err)
{
    if (r->code != 421)
        return 0;
    c->broken = true;
    errbuf_set(err, "%s closed the session: %s", c->host, r->text);
    return -1;
}

/* put_cmd - queue one command line (flushing full blocks). */
static int
put_cmd(struct smtpc *c, const char *cmd, struct errbuf *err)
{
    if (wbuf_put(c, cmd, strlen(cmd), c->opts.command_timeout, err) < 0
        || wbuf_put(c, "\r\n", 2, c->opts.command_timeout, err) < 0)
        return -1;
    return 0;
}

/* envelope_cmds - MAIL, the RCPTs, DATA: pipelined in groups of
 * SMTPC_PIPELINE_MAX, or one by one. On return res holds the replies;
 * *accepted counts accepted recipients; DATA is sent only if the group
 * logic reaches it (pipelined: always, unless MAIL failed in an earlier
 * group; lock-step: only if a recipient was accepted). */
static int
envelope_cmds(struct smtpc *c, const struct envelope *env, const char *mailcmd,
              struct smtpc_result *res, size_t *accepted, bool *data_sent, struct errbuf *err)
{
    char cmd[SMTPC_CMD_MAX];
    size_t ncmd = env->nrcpt + 2, sent = 0, got = 0, batch;
    struct smtpc_reply *r;

    *accepted = 0;
    *data_sent = false;
    batch = c->ext.pipelining ? SMTPC_PIPELINE_MAX : 1;
    while (got < ncmd) {
        /* send the next group, then read its replies */
        for (; sent < ncmd && sent - got < batch; sent++) {
            if (sent == 0)
                str_copy(cmd, sizeof(cmd), mailcmd);
            else if (sent == ncmd - 1)
                str_copy(cmd, sizeof(cmd), "DATA");
            else if (rcpt_command(c, &env->rcpt[sent - 1], cmd, sizeof(cmd), err) < 0)
                return -1;
            if (sent == ncmd - 1) {
                if (!c->ext.pipelining && *accepted == 0)
                    break;
                *data_sent = true;
            }
            if (put_cmd(c, cmd, err) < 0)
                return -1;
        }
        if (wbuf_flush(c, c->opts.command_timeout, err) < 0)
            return -1;
        if (got == sent)
            break;                            /* lock-step and nothing accepted: no DATA */
        for (; got < sent; got++) {
            r = got == 0 ? &res->mail : got == ncmd - 1 ? &res->data : &res->rcpt[got - 1];
            if (read_reply(c, got == ncmd - 1 ? c->opts.data_timeout : c->opts.command_timeout,
                           r, NULL, err) < 0 || closing(c, r, err) < 0)
                return -1;
            if (got > 0 && got < ncmd - 1 && r->code / 100 == 2)
                (*accepted)++;
        }
        if (res->mail.code / 100 != 2 && !(*data_sent)) {
            return 0;                         /* MAIL refused: nothing more */
        }
    }
    return 0;
}

/* body_put - the message body, dot-stuffed after every LF (so that a bare
 * LF followed by "." cannot end the data early at a lenient server), and
 * CRLF appended when the last line lacks it. */
static int
body_put(struct smtpc *c, struct spool_msg *m, struct errbuf *err)
{
    char in[16384];
    bool bol = true;
    char last[2] = { '\r', '\n' };
    ssize_t n, i, start;
    unsigned t = c->opts.data_timeout;

    while ((n = spool_msg_read(m, in, sizeof(in), err)) > 0) {
        for (start = 0, i = 0; i < n; i++) {
            if (bol && in[i] == '.') {
                if (wbuf_put(c, in + start, (size_t)(i - start), t, err) < 0
                    || wbuf_put(c, ".", 1, t, err) < 0)
                    return -1;
                start = i;
            }
            bol = in[i] == '\n';
        }
        if (wbuf_put(c, in + start, (size_t)(n - start), t, err) < 0)
            return -1;
        last[0] = n >= 2 ? in[n - 2] : last[1];
        last[1] = in[n - 1];
    }
    if (n < 0) {
        c->broken = true;                     /* mid-DATA: the session cannot go on */
        return -1;
    }
    if ((last[0] != '\r' || last[1] != '\n') && wbuf_put(c, "\r\n", 2, t, err) < 0)
        return -1;
    if (wbuf_put(c, ".\r\n", 3, t, err) < 0)
        return -1;
    return wbuf_flush(c, t, err);
}

/* precheck - statuses decided before anything is sent; 1 = decided. */
static int
precheck(struct smtpc *c, struct spool_msg *m, const struct envelope *env, bool *utf8,
         struct smtpc_result *res, struct errbuf *err)
{
    char body[32];
    int rc;

    *utf8 = needs_smtputf8(env);
    if (*utf8 && !c->ext.smtputf8) {
        res->status = SMTPC_NEEDS_SMTPUTF8;
        return 1;
    }
    if (c->ext.size && c->ext.size_max > 0 && spool_msg_body_size(m) > c->ext.size_max) {
        res->status = SMTPC_TOO_BIG;
        return 1;
    }
    if (!c->ext.eightbitmime && envelope_param(env->mail_params, "BODY", body, sizeof(body)) == 1
        && str_ieq(body, "8BITMIME")) {
        if ((rc = body_has_8bit(c, m, err)) != 0) {
            if (rc == 1)
                res->status = SMTPC_NEEDS_8BITMIME;
            else
                c->broken = true;             /* -1 means: stop using this connection */
            return rc;
        }
    }
    return 0;
}

int
smtpc_send(struct smtpc *c, struct spool_msg *m, struct smtpc_result *res, struct errbuf *err)
{
    const struct envelope *env = spool_msg_envelope(m);
    char mailcmd[SMTPC_CMD_MAX];
    struct smtpc_reply dot;
    size_t accepted;
    bool utf8, data_sent;
    int rc;

    memset(res, 0, sizeof(*res));
    if (c->broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->host);
        return -1;
    }
    res->nrcpt = env->nrcpt;
    if ((res->rcpt = x_calloc(env->nrcpt > 0 ? env->nrcpt : 1, sizeof(*res->rcpt))) == NULL) {
        errbuf_set_errno(err, "smtpc_send");
        return -1;
    }
    if ((rc = precheck(c, m, env, &utf8, res, err)) != 0)
        return rc < 0 ? -1 : 0;
    if (mail_command(c, env, spool_msg_body_size(m), utf8, mailcmd, sizeof(mailcmd), err) < 0
        || envelope_cmds(c, env, mailcmd, res, &accepted, &data_sent, err) < 0)
        return -1;
    res->status = SMTPC_REJECTED;
    if (!data_sent || res->data.code != 354)
        return 0;                             /* MAIL, every RCPT, or DATA refused */
    if (accepted == 0 || res->mail.code / 100 != 2) {
        /* RFC 2920 3.1: DATA got 354 though nobody was accepted: end the
         * empty message and ignore the reply. */
        res->data.code = 0;
        res->data.text[0] = '\0';
        if (wbuf_put(c, ".\r\n", 3, c->opts.data_timeout, err) < 0
            || wbuf_flush(c, c->opts.data_timeout, err) < 0
            || read_reply(c, c->opts.data_timeout, &dot, NULL, err) < 0)
            return -1;
        return 0;
    }
    if (spool_msg_rewind(m, err) < 0) {
        c->broken = true;
        return -1;
    }
    if (body_put(c, m, err) < 0 || read_reply(c, c->opts.data_timeout, &res->data, NULL, err) < 0
        || closing(c, &res->data, err) < 0)
        return -1;
    if (res->data.code / 100 == 2)
        res->status = SMTPC_SENT;
    return 0;
}

void
smtpc_result_clear(struct smtpc_result *res)
{
    if (res == NULL)
        return;
    x_free(res->rcpt);
    memset(res, 0, sizeof(*res));
}

int
smtpc_rset(struct smtpc *c, struct errbuf *err)
{
    struct smtpc_reply r;

    if (command(c, "RSET", c->opts.command_timeout, &r, NULL, err) < 0)
        return -1;
    if (r.code / 100 != 2) {
        c->broken = true;
        errbuf_set(err, "RSET refused by %s: %s", c->host, r.text);
        return -1;
    }
    return 0;
}

void
smtpc_close(struct smtpc *c)
{
    struct smtpc_reply r;
    unsigned t;

    if (c == NULL)
        return;
    if (!c->broken) {
        t = c->opts.command_timeout < SMTPC_QUIT_TIMEOUT ? c->opts.command_timeout
                                                         : SMTPC_QUIT_TIMEOUT;
        (void)command(c, "QUIT", t, &r, NULL, NULL);
        if (c->ssl != NULL && !c->broken)
            (void)SSL_shutdown(c->ssl);
    }
    ERR_clear_error();
    smtpc_free(c);
}
