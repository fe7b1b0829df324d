/* SPDX-License-Identifier: ISC */
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
 * changing the message: a message that needs SMTPUTF8 (a UTF-8 envelope
 * address, or SMTPUTF8 asked for and UTF-8 in the header section) at a
 * peer without it -> SMTPC_NEEDS_SMTPUTF8; BODY=8BITMIME with 8-bit bytes
 * and no 8BITMIME at the peer -> SMTPC_NEEDS_8BITMIME (RFC 6152 section
 * 3: without conversion this is a permanent failure). The caller bounces
 * both. SMTPUTF8 asked for by a message that is ASCII in its envelope and
 * header goes without the parameter (nothing to downgrade), as Postfix
 * does.
 *
 * Content goes with BDAT (RFC 3030) when the peer offers CHUNKING and the
 * options allow it: one "BDAT <size> LAST" carrying the trace header and
 * the stored bytes unchanged (no dot-stuffing). With PIPELINING, a
 * message of at most SMTPC_BDAT_EARLY_MAX bytes is sent right behind its
 * MAIL and RCPT commands (one round trip per message); a larger one waits
 * for their replies, so that a refused envelope costs no body. Otherwise
 * DATA, dot-stuffed.
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

#include "netio.h"
#include "smtpc.h"
#include "util.h"

#define SMTPC_CMD_MAX      2600          /* one MAIL/RCPT command line */
#define SMTPC_PIPELINE_MAX 100           /* commands per pipelined group (RFC 2920 3.1) */
#define SMTPC_QUIT_TIMEOUT 5             /* seconds for QUIT at close */
#define SMTPC_SNI_MAX      253
#define SMTPC_BDAT_EARLY_MAX (64u * 1024) /* BDAT pipelined with the envelope up to this */
#define SMTPC_HEADER_SCAN_MAX (1u << 20) /* header bytes looked at for UTF-8 */

struct smtpc {
    struct netio io;                   /* socket, TLS session, buffers */
    SSL_CTX *ctx;                      /* ours, or adopted with the session */
    struct smtpc_opts opts;
    struct smtpc_ext ext;
    bool closed421;                    /* the server said 421 */
};

/* --- I/O (netio.c) --- */

/* read_line - next reply line; an over-long line is a malformed reply. */
static int
read_line(struct smtpc *c, int64_t deadline, char **line_r, size_t *len_r, struct errbuf *err)
{
    int rc = netio_read_line(&c->io, deadline, SMTPC_LINE_MAX, line_r, len_r, err);

    if (rc == NETIO_TOO_LONG) {
        c->io.broken = true;
        errbuf_set(err, "malformed reply from %s: line longer than %d bytes", c->io.peer,
                   SMTPC_LINE_MAX);
        return -1;
    }
    return rc;
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
        c->io.broken = true;
        errbuf_set(err, "malformed reply from %s: no reply code in \"%s\"", c->io.peer,
                   quote_line(line, len, q, sizeof(q)));
        return -1;
    }
    if (memchr(line, '\0', len) != NULL) {
        c->io.broken = true;
        errbuf_set(err, "malformed reply from %s: NUL byte in reply", c->io.peer);
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
    else if (str_ieq(kw, "CHUNKING"))
        x->chunking = true;
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
    int64_t deadline = netio_deadline(timeout);
    char *line;
    size_t len, nlines;
    int code;
    bool more = true;

    r->code = 0;
    r->text[0] = '\0';
    if (c->io.broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->io.peer);
        return -1;
    }
    for (nlines = 0; more; nlines++) {
        if (nlines == SMTPC_REPLY_LINES_MAX) {
            c->io.broken = true;
            errbuf_set(err, "malformed reply from %s: more than %d lines", c->io.peer,
                       SMTPC_REPLY_LINES_MAX);
            return -1;
        }
        if (read_line(c, deadline, &line, &len, err) < 0
            || parse_code(c, line, len, &code, &more, err) < 0)
            return -1;
        if (nlines > 0 && code != r->code) {
            c->io.broken = true;
            errbuf_set(err, "malformed reply from %s: code %d after %d", c->io.peer, code, r->code);
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
    if (c->io.broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->io.peer);
        return -1;
    }
    if (netio_put(&c->io, line, strlen(line), timeout, err) < 0 || netio_put(&c->io, "\r\n", 2, timeout, err) < 0
        || netio_flush(&c->io, timeout, err) < 0)
        return -1;
    return read_reply(c, timeout, r, x, err);
}

/* --- session setup --- */

static int
tcp_connect(struct smtpc *c, const struct sockaddr *addr, socklen_t addrlen, struct errbuf *err)
{
    int soerr = 0, w, one = 1;
    socklen_t sl = sizeof(soerr);

    c->io.fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->io.fd < 0) {
        errbuf_set_errno(err, "socket for %s", c->io.peer);
        return -1;
    }
    (void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->io.fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        errbuf_set_errno(err, "connect to %s", c->io.peer);
        return -1;
    }
    if ((w = netio_wait(c->io.fd, POLLOUT, netio_deadline(c->opts.connect_timeout))) <= 0) {
        if (w == 0)
            errbuf_set(err, "timeout connecting to %s", c->io.peer);
        else
            errbuf_set_errno(err, "connect to %s", c->io.peer);
        return -1;
    }
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
        if (soerr != 0)
            errno = soerr;
        errbuf_set_errno(err, "connect to %s", c->io.peer);
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
        errbuf_set(err, "EHLO refused by %s: %s", c->io.peer, r->text);
        return -1;
    }
    if (str_printf(cmd, sizeof(cmd), "HELO %s", c->opts.helo_name) < 0
        || command(c, cmd, c->opts.command_timeout, r, NULL, err) < 0)
        return -1;
    if (r->code != 250) {
        errbuf_set(err, "HELO refused by %s: %s", c->io.peer, r->text);
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

/* tls_start - a client context per the options, then the handshake
 * within the command timeout. */
static int
tls_start(struct smtpc *c, struct errbuf *err)
{
    char name[SMTPC_SNI_MAX + 1];
    const char *sni = sni_name(c->io.peer, name, sizeof(name));

    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL
        || SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
        errbuf_set(err, "TLS setup for %s failed", c->io.peer);
        ERR_clear_error();
        return -1;
    }
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (c->opts.tls_ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(c->ctx, c->opts.tls_ca_file, NULL) != 1) {
            errbuf_set(err, "cannot load TLS CA file %s", c->opts.tls_ca_file);
            ERR_clear_error();
            return -1;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (netio_tls_start(&c->io, c->ctx, false, sni, c->opts.tls_ca_file != NULL,
                        netio_deadline(c->opts.command_timeout), err) < 0)
        return -1;
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
        errbuf_set(err, "TLS required but not offered by %s", c->io.peer);
        return -1;
    }
    if (command(c, "STARTTLS", c->opts.command_timeout, r, NULL, err) < 0)
        return -1;
    if (r->code != 220) {
        if (c->opts.tls == TLS_MAY)
            return 0;                         /* refused: still in sync, go on in plain text */
        errbuf_set(err, "STARTTLS refused by %s: %s", c->io.peer, r->text);
        return -1;
    }
    if (netio_pending(&c->io) != 0) {
        c->io.broken = true;
        errbuf_set(err, "%s sent data after the STARTTLS reply", c->io.peer);
        return -1;
    }
    if (tls_start(c, err) < 0) {
        c->io.broken = true;
        return -1;
    }
    return helo(c, r, err);
}

static void
smtpc_free(struct smtpc *c)
{
    if (c == NULL)
        return;
    netio_close(&c->io);
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    x_free(c);
}

/* smtpc_new - an unconnected client with opts; NULL with err. */
static struct smtpc *
smtpc_new(int fd, const char *host, const struct smtpc_opts *opts, struct errbuf *err)
{
    struct smtpc *c;

    if ((c = x_calloc(1, sizeof(*c))) == NULL) {
        errbuf_set_errno(err, "smtpc");
        return NULL;
    }
    netio_init(&c->io, fd, host);
    c->opts = *opts;
    if (c->opts.helo_name == NULL)
        c->opts.helo_name = "localhost";
    return c;
}

/* session - greeting, EHLO/HELO, STARTTLS per policy (unless TLS is on). */
static int
session(struct smtpc *c, struct smtpc_reply *r, struct errbuf *err)
{
    if (read_reply(c, c->opts.greeting_timeout, r, NULL, err) < 0)
        return -1;
    if (r->code != 220) {
        errbuf_set(err, "unexpected greeting from %s: %s", c->io.peer, r->text);
        return -1;
    }
    if (helo(c, r, err) < 0)
        return -1;
    return c->ext.tls_active ? 0 : starttls(c, r, err);
}

static void
reply_reset(struct smtpc_reply *r)
{
    r->code = 0;
    r->text[0] = '\0';
}

int
smtpc_open(const struct sockaddr *addr, socklen_t addrlen, const char *host,
           const struct smtpc_opts *opts, struct smtpc **c_r, struct smtpc_reply *reply_r,
           struct errbuf *err)
{
    struct smtpc_reply scratch, *r = reply_r != NULL ? reply_r : &scratch;
    struct smtpc *c;

    *c_r = NULL;
    reply_reset(r);
    if ((c = smtpc_new(-1, host, opts, err)) == NULL)
        return -1;
    /* Postfix's smtpd answers a pipelined MAIL/RCPT/BDAT group in two
     * writes with Nagle on: the second waits for our ACK of the first,
     * which the kernel would delay ~40 ms (bench/chunking.sh: 20 -> 226
     * msg/s); DATA gains too */
    netio_set_quickack(&c->io);
    if (tcp_connect(c, addr, addrlen, err) < 0 || session(c, r, err) < 0) {
        smtpc_free(c);
        return -1;
    }
    *c_r = c;
    return 0;
}

int
smtpc_adopt(int fd, SSL_CTX *ctx, SSL *ssl, const char *peer, const struct smtpc_opts *opts,
            struct smtpc **c_r, struct smtpc_reply *reply_r, struct errbuf *err)
{
    struct smtpc_reply scratch, *r = reply_r != NULL ? reply_r : &scratch;
    struct smtpc *c;

    *c_r = NULL;
    reply_reset(r);
    if ((c = smtpc_new(fd, peer, opts, err)) == NULL) {
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        (void)close(fd);
        return -1;
    }
    c->ctx = ctx;
    c->io.ssl = ssl;
    c->ext.tls_active = ssl != NULL;
    netio_set_quickack(&c->io);      /* the peer is a relay such as fetchmail (netio.h) */
    if (session(c, r, err) < 0) {
        smtpc_free(c);
        return -1;
    }
    *c_r = c;
    return 0;
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
asked_smtputf8(const struct envelope *env)
{
    char v[8];

    return envelope_param(env->mail_params, "SMTPUTF8", v, sizeof(v)) != 0;
}

/* utf8_envelope - a non-ASCII sender or recipient address */
static bool
utf8_envelope(const struct envelope *env)
{
    size_t i;

    if (has_8bit(env->sender))
        return true;
    for (i = 0; i < env->nrcpt; i++)
        if (has_8bit(env->rcpt[i].addr))
            return true;
    return false;
}

/* header_has_8bit - 8-bit bytes in the header section (up to the first
 * empty line, at most SMTPC_HEADER_SCAN_MAX bytes); 1 yes, 0 no, -1 read
 * error. Rewinds. */
static int
header_has_8bit(struct smtpc *c, struct spool_msg *m, struct errbuf *err)
{
    char prev[2] = { '\0', '\n' };     /* the file starts a line */
    size_t seen = 0;
    ssize_t n, i;
    int found = 0, done = 0;

    while (!found && !done && seen < SMTPC_HEADER_SCAN_MAX
           && (n = spool_msg_read(m, c->io.wbuf, sizeof(c->io.wbuf), err)) > 0) {
        for (i = 0; i < n && !found && !done; i++) {
            char ch = c->io.wbuf[i];

            found = (unsigned char)ch >= 0x80;
            /* an empty line: LF LF, or LF CR LF */
            done = ch == '\n' && (prev[1] == '\n' || (prev[1] == '\r' && prev[0] == '\n'));
            prev[0] = prev[1];
            prev[1] = ch;
        }
        seen += (size_t)n;
    }
    if (!found && !done && seen < SMTPC_HEADER_SCAN_MAX && n < 0)
        return -1;
    return spool_msg_rewind(m, err) < 0 ? -1 : found;
}

/* body_has_8bit - scan the message body; 1 yes, 0 no, -1 read error. */
static int
body_has_8bit(struct smtpc *c, struct spool_msg *m, struct errbuf *err)
{
    ssize_t n, i;
    int found = 0;

    while (found == 0 && (n = spool_msg_read(m, c->io.wbuf, sizeof(c->io.wbuf), err)) > 0)
        for (i = 0; i < n; i++)
            if ((unsigned char)c->io.wbuf[i] >= 0x80) {
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
    c->io.broken = true;
    c->closed421 = true;
    errbuf_set(err, "%s closed the session: %s", c->io.peer, r->text);
    return -1;
}

/* put_cmd - queue one command line (flushing full blocks). */
static int
put_cmd(struct smtpc *c, const char *cmd, struct errbuf *err)
{
    if (netio_put(&c->io, cmd, strlen(cmd), c->opts.command_timeout, err) < 0
        || netio_put(&c->io, "\r\n", 2, c->opts.command_timeout, err) < 0)
        return -1;
    return 0;
}

/* The content of one message as it goes out: the trace header, then the
 * stored bytes, then CRLF when the stored bytes do not end with one. */
struct content {
    struct spool_msg *m;
    const char *trace;                 /* "" or whole header lines */
    size_t trace_len;
    bool add_crlf;                     /* BDAT: the stored bytes lack a final CRLF */
    uint64_t size;                     /* BDAT: bytes in the chunk */
};

enum final {
    FINAL_DATA,                        /* DATA after the RCPTs */
    FINAL_BDAT,                        /* BDAT and the content after the RCPTs */
    FINAL_NONE,                        /* nothing: BDAT follows once the replies are in */
};

/* bdat_put - "BDAT <size> LAST" and the content as it is. */
static int
bdat_put(struct smtpc *c, const struct content *ct, struct errbuf *err)
{
    char in[16384], cmd[48];
    uint64_t sent = ct->trace_len;
    unsigned t = c->opts.data_timeout;
    ssize_t n;

    (void)str_printf(cmd, sizeof(cmd), "BDAT %" PRIu64 " LAST", ct->size);
    if (put_cmd(c, cmd, err) < 0 || netio_put(&c->io, ct->trace, ct->trace_len, t, err) < 0
        || spool_msg_rewind(ct->m, err) < 0)
        goto broken;
    while ((n = spool_msg_read(ct->m, in, sizeof(in), err)) > 0) {
        if (netio_put(&c->io, in, (size_t)n, t, err) < 0)
            goto broken;
        sent += (uint64_t)n;
    }
    if (n < 0)
        goto broken;
    if (ct->add_crlf) {
        if (netio_put(&c->io, "\r\n", 2, t, err) < 0)
            goto broken;
        sent += 2;
    }
    if (sent != ct->size) {
        errbuf_set(err, "spool file changed size while it was sent to %s", c->io.peer);
        goto broken;
    }
    return 0;
broken:
    c->io.broken = true;                       /* mid-chunk: the session cannot go on */
    return -1;
}

/* envelope_cmds - MAIL, the RCPTs, then the final command (DATA, BDAT
 * with the content, or none): pipelined in groups of SMTPC_PIPELINE_MAX,
 * or one by one; RCPT for the recipients whose indexes map[0..nmap)
 * lists. On return res holds the replies; *accepted counts accepted
 * recipients; *final_sent says whether the final command went out
 * (pipelined: always, unless MAIL failed in an earlier group; lock-step:
 * only if a recipient was accepted). */
static int
envelope_cmds(struct smtpc *c, const struct envelope *env, const size_t *map, size_t nmap,
              const char *mailcmd, enum final final, const struct content *ct,
              struct smtpc_result *res, size_t *accepted, bool *final_sent, struct errbuf *err)
{
    char cmd[SMTPC_CMD_MAX];
    size_t ncmd = nmap + (final == FINAL_NONE ? 1 : 2), sent = 0, got = 0, batch;
    size_t last = final == FINAL_NONE ? SIZE_MAX : ncmd - 1;
    struct smtpc_reply *r;

    *accepted = 0;
    *final_sent = false;
    batch = c->ext.pipelining ? SMTPC_PIPELINE_MAX : 1;
    while (got < ncmd) {
        /* send the next group, then read its replies */
        for (; sent < ncmd && sent - got < batch; sent++) {
            if (sent == last) {
                if (!c->ext.pipelining && *accepted == 0)
                    break;
                *final_sent = true;
                if (final == FINAL_BDAT) {
                    if (bdat_put(c, ct, err) < 0)
                        return -1;
                    continue;
                }
                str_copy(cmd, sizeof(cmd), "DATA");
            } else if (sent == 0)
                str_copy(cmd, sizeof(cmd), mailcmd);
            else if (rcpt_command(c, &env->rcpt[map[sent - 1]], cmd, sizeof(cmd), err) < 0)
                return -1;
            if (put_cmd(c, cmd, err) < 0)
                return -1;
        }
        if (netio_flush(&c->io, c->opts.command_timeout, err) < 0)
            return -1;
        if (got == sent)
            break;                            /* lock-step and nothing accepted: no DATA */
        for (; got < sent; got++) {
            r = got == 0 ? &res->mail : got == last ? &res->data : &res->rcpt[map[got - 1]];
            if (read_reply(c, got == last ? c->opts.data_timeout : c->opts.command_timeout,
                           r, NULL, err) < 0 || closing(c, r, err) < 0)
                return -1;
            if (got > 0 && got != last && r->code / 100 == 2)
                (*accepted)++;
        }
        if (res->mail.code / 100 != 2 && !(*final_sent)) {
            return 0;                         /* MAIL refused: nothing more */
        }
    }
    return 0;
}

/* body_put - the trace header, then the message body, dot-stuffed after
 * every LF (so that a bare LF followed by "." cannot end the data early
 * at a lenient server), and CRLF appended when the last line lacks it. */
static int
body_put(struct smtpc *c, const struct content *ct, struct errbuf *err)
{
    char in[16384];
    bool bol = true;
    char last[2] = { '\r', '\n' };
    ssize_t n, i, start;
    unsigned t = c->opts.data_timeout;

    if (netio_put(&c->io, ct->trace, ct->trace_len, t, err) < 0)
        return -1;
    while ((n = spool_msg_read(ct->m, in, sizeof(in), err)) > 0) {
        for (start = 0, i = 0; i < n; i++) {
            if (bol && in[i] == '.') {
                if (netio_put(&c->io, in + start, (size_t)(i - start), t, err) < 0
                    || netio_put(&c->io, ".", 1, t, err) < 0)
                    return -1;
                start = i;
            }
            bol = in[i] == '\n';
        }
        if (netio_put(&c->io, in + start, (size_t)(n - start), t, err) < 0)
            return -1;
        last[0] = n >= 2 ? in[n - 2] : last[1];
        last[1] = in[n - 1];
    }
    if (n < 0) {
        c->io.broken = true;                     /* mid-DATA: the session cannot go on */
        return -1;
    }
    if ((last[0] != '\r' || last[1] != '\n') && netio_put(&c->io, "\r\n", 2, t, err) < 0)
        return -1;
    if (netio_put(&c->io, ".\r\n", 3, t, err) < 0)
        return -1;
    return netio_flush(&c->io, t, err);
}

/* broken_if - a failed read of the spool before anything was sent: stop
 * using the connection (the caller keeps the message). */
static int
broken_if(struct smtpc *c, int rc)
{
    if (rc < 0)
        c->io.broken = true;
    return rc;
}

/* needs_utf8 - does this message need SMTPUTF8 (RFC 6531)? 1/0, -1 error.
 * *asked: the sender asked for it (the parameter goes out when it can). */
static int
needs_utf8(struct smtpc *c, struct spool_msg *m, const struct envelope *env, bool *asked,
           struct errbuf *err)
{
    *asked = asked_smtputf8(env);
    if (utf8_envelope(env))
        return 1;
    if (!*asked || c->ext.smtputf8)
        return 0;
    return broken_if(c, header_has_8bit(c, m, err));  /* only then is the header read */
}

/* precheck - statuses decided before anything is sent; 1 = decided. */
static int
precheck(struct smtpc *c, struct spool_msg *m, const struct envelope *env, size_t trace_len,
         bool *utf8, struct smtpc_result *res, struct errbuf *err)
{
    char body[32];
    bool asked;
    int rc;

    if ((rc = needs_utf8(c, m, env, &asked, err)) < 0)
        return -1;
    if (rc == 1 && !c->ext.smtputf8) {
        res->status = SMTPC_NEEDS_SMTPUTF8;
        return 1;
    }
    *utf8 = (rc == 1 || asked) && c->ext.smtputf8;
    if (c->ext.size && c->ext.size_max > 0
        && spool_msg_body_size(m) + trace_len > c->ext.size_max) {
        res->status = SMTPC_TOO_BIG;
        return 1;
    }
    if (!c->ext.eightbitmime && envelope_param(env->mail_params, "BODY", body, sizeof(body)) == 1
        && str_ieq(body, "8BITMIME")) {
        if ((rc = broken_if(c, body_has_8bit(c, m, err))) != 0) {
            if (rc == 1)
                res->status = SMTPC_NEEDS_8BITMIME;
            return rc;
        }
    }
    return 0;
}

/* content_init - what goes out after the envelope, and how. */
static int
content_init(struct smtpc *c, struct spool_msg *m, const char *trace, struct content *ct,
             enum final *final, struct errbuf *err)
{
    char last[2];
    size_t n;

    memset(ct, 0, sizeof(*ct));
    ct->m = m;
    ct->trace = trace != NULL ? trace : "";
    ct->trace_len = strlen(ct->trace);
    *final = FINAL_DATA;
    if (!c->opts.chunking || !c->ext.chunking)
        return 0;
    if (broken_if(c, spool_msg_tail(m, last, &n, err)) < 0)
        return -1;
    ct->add_crlf = n < 2 || last[0] != '\r' || last[1] != '\n';
    ct->size = ct->trace_len + spool_msg_body_size(m) + (ct->add_crlf ? 2 : 0);
    *final = c->ext.pipelining && ct->size <= SMTPC_BDAT_EARLY_MAX ? FINAL_BDAT : FINAL_NONE;
    return 0;
}

/* data_content - after DATA's 354: the content and the final dot. */
static int
data_content(struct smtpc *c, const struct content *ct, struct smtpc_result *res,
             size_t accepted, struct errbuf *err)
{
    struct smtpc_reply dot;

    if (accepted == 0 || res->mail.code / 100 != 2) {
        /* RFC 2920 3.1: DATA got 354 though nobody was accepted: end the
         * empty message and ignore the reply. */
        res->data.code = 0;
        res->data.text[0] = '\0';
        if (netio_put(&c->io, ".\r\n", 3, c->opts.data_timeout, err) < 0
            || netio_flush(&c->io, c->opts.data_timeout, err) < 0
            || read_reply(c, c->opts.data_timeout, &dot, NULL, err) < 0)
            return -1;
        return 0;
    }
    if (spool_msg_rewind(ct->m, err) < 0) {
        c->io.broken = true;
        return -1;
    }
    return body_put(c, ct, err) < 0 || read_reply(c, c->opts.data_timeout, &res->data, NULL, err) < 0
        || closing(c, &res->data, err) < 0 ? -1 : 0;
}

/* bdat_content - the BDAT chunk once the envelope replies are in. */
static int
bdat_content(struct smtpc *c, const struct content *ct, struct smtpc_result *res,
             struct errbuf *err)
{
    if (bdat_put(c, ct, err) < 0 || netio_flush(&c->io, c->opts.data_timeout, err) < 0
        || read_reply(c, c->opts.data_timeout, &res->data, NULL, err) < 0)
        return -1;
    return closing(c, &res->data, err);
}

/* transaction - everything after the prechecks, for the recipients of map */
static int
transaction(struct smtpc *c, struct spool_msg *m, const size_t *map, size_t nmap, bool utf8,
            const struct content *ct, enum final final, struct smtpc_result *res,
            struct errbuf *err)
{
    const struct envelope *env = spool_msg_envelope(m);
    char mailcmd[SMTPC_CMD_MAX];
    size_t accepted;
    bool final_sent;

    if (mail_command(c, env, spool_msg_body_size(m) + ct->trace_len, utf8, mailcmd,
                     sizeof(mailcmd), err) < 0
        || envelope_cmds(c, env, map, nmap, mailcmd, final, ct, res, &accepted, &final_sent,
                         err) < 0)
        return -1;
    res->status = SMTPC_REJECTED;
    res->bdat = final != FINAL_DATA;
    switch (final) {
    case FINAL_DATA:
        if (!final_sent || res->data.code != 354)
            return 0;                         /* MAIL, every RCPT, or DATA refused */
        if (data_content(c, ct, res, accepted, err) < 0)
            return -1;
        break;
    case FINAL_BDAT:
        if (accepted == 0 || res->mail.code / 100 != 2) {
            res->data.code = 0;               /* the chunk was refused as a matter of course */
            res->data.text[0] = '\0';
            return 0;
        }
        break;
    case FINAL_NONE:
        if (accepted == 0 || res->mail.code / 100 != 2)
            return 0;
        if (bdat_content(c, ct, res, err) < 0)
            return -1;
        break;
    }
    if (accepted > 0 && res->mail.code / 100 == 2 && res->data.code / 100 == 2)
        res->status = SMTPC_SENT;
    return 0;
}

int
smtpc_send_some(struct smtpc *c, struct spool_msg *m, const bool *want, const char *trace,
                struct smtpc_result *res, struct errbuf *err)
{
    const struct envelope *env = spool_msg_envelope(m);
    size_t *map, nmap = 0, i;
    struct content ct;
    enum final final;
    bool utf8 = false;
    int rc;

    memset(res, 0, sizeof(*res));
    if (c->io.broken) {
        errbuf_set(err, "connection to %s unusable after an earlier error", c->io.peer);
        return -1;
    }
    res->nrcpt = env->nrcpt;
    if ((res->rcpt = x_calloc(env->nrcpt > 0 ? env->nrcpt : 1, sizeof(*res->rcpt))) == NULL
        || (map = x_calloc(env->nrcpt > 0 ? env->nrcpt : 1, sizeof(*map))) == NULL) {
        errbuf_set_errno(err, "smtpc_send");
        return -1;
    }
    for (i = 0; i < env->nrcpt; i++)
        if (want == NULL || want[i])
            map[nmap++] = i;
    if ((rc = content_init(c, m, trace, &ct, &final, err)) == 0
        && (rc = precheck(c, m, env, ct.trace_len, &utf8, res, err)) == 0)
        rc = transaction(c, m, map, nmap, utf8, &ct, final, res, err);
    x_free(map);
    return rc < 0 ? -1 : 0;
}

int
smtpc_send(struct smtpc *c, struct spool_msg *m, struct smtpc_result *res, struct errbuf *err)
{
    return smtpc_send_some(c, m, NULL, NULL, res, err);
}

bool
smtpc_peer_closed(const struct smtpc *c)
{
    return c->closed421 || c->io.closed;
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
        c->io.broken = true;
        errbuf_set(err, "RSET refused by %s: %s", c->io.peer, r.text);
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
    if (!c->io.broken) {
        t = c->opts.command_timeout < SMTPC_QUIT_TIMEOUT ? c->opts.command_timeout
                                                         : SMTPC_QUIT_TIMEOUT;
        (void)command(c, "QUIT", t, &r, NULL, NULL);
    }
    smtpc_free(c);
}
