/* SPDX-License-Identifier: ISC */
/*
 * ctlproto.c - the control protocol spoken between autoturnctl, the milter,
 * the policy service and the flusher: one line per message, "VERB
 * key=value ...", values %XX-escaped. Owns the line parser and encoder,
 * the line framing for servers and the two client calls (a request that
 * waits for its reply under a deadline, and a fire-and-forget notice).
 * No global state.
 *
 * SECURITY: lines come from local peers over a UNIX socket. Every line is
 * bounded (CTL_LINE_MAX), so are the argument count, verbs, keys and
 * decoded values; control characters, raw 8-bit bytes, bad escapes,
 * duplicate keys and a NUL produced by an escape are all errors. The
 * client bounds the whole exchange with a deadline and treats a reply it
 * cannot parse as an error, never as success.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "util.h"

#define CTL_READ_CHUNK 4096

static const char hexdigits[] = "0123456789ABCDEF";

/* --- messages --- */

static bool
verb_valid(const char *v, size_t len)
{
    size_t i;

    if (len == 0 || len > CTL_VERB_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (v[i] < 'A' || v[i] > 'Z')
            return false;
    return true;
}

static bool
key_valid(const char *k, size_t len)
{
    size_t i;

    if (len == 0 || len > CTL_KEY_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_' ||
              k[i] == '-'))
            return false;
    return true;
}

/* msg_clear - an empty message. Only the verb and the count: every
 * reader stops at nargs and every writer terminates what it stores, so
 * the 8 KiB of arguments are not zeroed (that memset was the largest
 * single cost of a policy request that sends a FLUSH, per callgrind). */
static void
msg_clear(struct ctl_msg *m)
{
    m->verb[0] = '\0';
    m->nargs = 0;
}

int
ctl_msg_init(struct ctl_msg *m, const char *verb)
{
    size_t len = strlen(verb);

    msg_clear(m);
    if (!verb_valid(verb, len))
        return -1;
    memcpy(m->verb, verb, len + 1);
    return 0;
}

const char *
ctl_msg_get(const struct ctl_msg *m, const char *key)
{
    size_t i;

    for (i = 0; i < m->nargs; i++)
        if (strcmp(m->args[i].key, key) == 0)
            return m->args[i].value;
    return NULL;
}

int
ctl_msg_add(struct ctl_msg *m, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value);

    if (m->nargs >= CTL_ARGS_MAX || !key_valid(key, klen) || vlen > CTL_VALUE_MAX ||
        ctl_msg_get(m, key) != NULL)
        return -1;
    memcpy(m->args[m->nargs].key, key, klen + 1);
    memcpy(m->args[m->nargs].value, value, vlen + 1);
    m->nargs++;
    return 0;
}

int
ctl_msg_addf(struct ctl_msg *m, const char *key, const char *fmt, ...)
{
    char value[CTL_VALUE_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value))
        return -1;
    return ctl_msg_add(m, key, value);
}

int
ctl_reply_ok(struct ctl_msg *m)
{
    return ctl_msg_init(m, "OK");
}

int
ctl_reply_err(struct ctl_msg *m, const char *code, const char *text)
{
    if (ctl_msg_init(m, "ERR") < 0 || ctl_msg_add(m, "code", code) < 0 ||
        ctl_msg_add(m, "text", text) < 0)
        return -1;
    return 0;
}

bool
ctl_is_final(const struct ctl_msg *m)
{
    return strcmp(m->verb, "OK") == 0 || strcmp(m->verb, "ERR") == 0;
}

/* --- encoding --- */

/* needs_escape - '%', space, controls and bytes >= 0x7f travel as %XX. */
static bool
needs_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '%';
}

/* put - append len bytes at *off if they fit within max. */
static bool
put(char *buf, size_t max, size_t *off, const char *s, size_t len)
{
    if (len > max - *off)
        return false;
    memcpy(buf + *off, s, len);
    *off += len;
    return true;
}

static bool
put_value(char *buf, size_t max, size_t *off, const char *v)
{
    char esc[3] = { '%', 0, 0 };

    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;

        esc[1] = hexdigits[c >> 4];
        esc[2] = hexdigits[c & 0xf];
        if (!(needs_escape(c) ? put(buf, max, off, esc, 3) : put(buf, max, off, v, 1)))
            return false;
    }
    return true;
}

int
ctl_format(const struct ctl_msg *m, char *buf, size_t size)
{
    size_t max = size < CTL_LINE_MAX ? size : CTL_LINE_MAX, off = 0, i;

    if (!put(buf, max, &off, m->verb, strlen(m->verb)))
        return -1;
    for (i = 0; i < m->nargs; i++)
        if (!put(buf, max, &off, " ", 1) ||
            !put(buf, max, &off, m->args[i].key, strlen(m->args[i].key)) ||
            !put(buf, max, &off, "=", 1) || !put_value(buf, max, &off, m->args[i].value))
            return -1;
    if (!put(buf, max, &off, "\n", 1))
        return -1;
    if (off < size)
        buf[off] = '\0';
    return (int)off;
}

/* --- parsing --- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* decode_value - %XX-decode v[0..len) into out; NULL or the reason. */
static const char *
decode_value(const char *v, size_t len, char *out)
{
    size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < len; i++) {
        if (o == CTL_VALUE_MAX)
            return "value too long";
        if (v[i] != '%') {
            if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
                return "bad character in value";
            out[o++] = v[i];
            continue;
        }
        if (len - i < 3 || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0 ||
            (hi == 0 && lo == 0))
            return "bad %-escape";
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return NULL;
}

/* parse_arg - one "key=value" token as argument number n. */
static int
parse_arg(const char *tok, size_t len, struct ctl_msg *m, struct errbuf *err)
{
    const char *eq = memchr(tok, '=', len), *why;
    size_t n = m->nargs + 1;
    struct ctl_arg *a = &m->args[m->nargs];

    if (len == 0)
        why = "empty argument";
    else if (eq == NULL)
        why = "missing '='";
    else if (!key_valid(tok, (size_t)(eq - tok)))
        why = "bad key";
    else
        why = decode_value(eq + 1, len - (size_t)(eq + 1 - tok), a->value);
    if (why != NULL) {
        errbuf_set(err, "bad argument %zu: %s", n, why);
        return -1;
    }
    memcpy(a->key, tok, (size_t)(eq - tok));
    a->key[eq - tok] = '\0';
    if (ctl_msg_get(m, a->key) != NULL) {
        errbuf_set(err, "duplicate key '%s'", a->key);
        return -1;
    }
    m->nargs++;
    return 0;
}

/* check_line - framing rules for the whole line (without its LF). */
static const char *
check_line(const char *line, size_t len)
{
    size_t i;

    if (len > CTL_LINE_MAX - 1)
        return "line too long";
    if (len == 0)
        return "empty line";
    for (i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return "control character in line";
    return NULL;
}

int
ctl_parse(const char *line, size_t len, struct ctl_msg *m, struct errbuf *err)
{
    const char *p, *end, *sp, *why;

    msg_clear(m);
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if ((why = check_line(line, len)) != NULL) {
        errbuf_set(err, "%s", why);
        return -1;
    }
    end = line + len;
    sp = memchr(line, ' ', len);
    p = sp ? sp : end;
    if (!verb_valid(line, (size_t)(p - line))) {
        errbuf_set(err, "bad verb");
        return -1;
    }
    memcpy(m->verb, line, (size_t)(p - line));
    m->verb[p - line] = '\0';
    while (p < end) {
        p++;    /* the single space before each argument */
        if (m->nargs == CTL_ARGS_MAX) {
            errbuf_set(err, "too many arguments");
            return -1;
        }
        sp = memchr(p, ' ', (size_t)(end - p));
        if (parse_arg(p, (size_t)((sp ? sp : end) - p), m, err) < 0)
            return -1;
        p = sp ? sp : end;
    }
    return 0;
}

/* --- line framing --- */

void
ctl_linebuf_init(struct ctl_linebuf *lb)
{
    lb->len = 0;
}

int
ctl_linebuf_next(struct ctl_linebuf *lb, const char *data, size_t len, size_t *used_r,
                 const char **line_r, size_t *linelen_r)
{
    size_t room = sizeof(lb->buf) - lb->len, n = len < room ? len : room;
    const char *lf = memchr(data, '\n', n);

    *line_r = NULL;
    *linelen_r = 0;
    if (lf != NULL) {
        n = (size_t)(lf - data) + 1;
        memcpy(lb->buf + lb->len, data, n);
        *used_r = n;
        *line_r = lb->buf;
        *linelen_r = lb->len + n - 1;    /* without the LF */
        lb->len = 0;                      /* the text stays until the next call */
        return 1;
    }
    *used_r = n;
    if (lb->len + n == sizeof(lb->buf)) {
        lb->len = 0;
        return -1;
    }
    memcpy(lb->buf + lb->len, data, n);
    lb->len += n;
    return 0;
}

/* --- client side --- */

/* deadline helpers: a monotonic clock in ms; 0 = no deadline. */
static long long
now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
left_ms(long long deadline)
{
    long long left;

    if (deadline == 0)
        return -1;
    left = deadline - now_ms();
    return left > 0 ? (int)left : 0;
}

/* wait_fd - poll fd for events until the deadline; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int rc;

    do
        rc = poll(&pfd, 1, left_ms(deadline));
    while (rc < 0 && errno == EINTR);
    return rc;
}

/* ctl_connect - a non-blocking UNIX stream socket connected to path. */
static int
ctl_connect(const char *path, struct errbuf *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) < 0) {
        errbuf_set(err, "socket path too long: %s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        errbuf_set_errno(err, "socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        errbuf_set_errno(err, "connect to %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* send_all - the whole request, waiting for room until the deadline. */
static int
send_all(int fd, const char *path, const char *buf, size_t len, long long deadline,
         struct errbuf *err)
{
    ssize_t n;
    int rc;

    while (len > 0) {
        if ((rc = wait_fd(fd, POLLOUT, deadline)) <= 0) {
            if (rc == 0)
                errbuf_set(err, "%s: timed out sending the request", path);
            else
                errbuf_set_errno(err, "poll %s", path);
            return -1;
        }
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            errbuf_set_errno(err, "send to %s", path);
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* take_line - one reply line: 1 final (in final_r), 0 data (given to datafn), -1 bad. */
static int
take_line(const char *line, size_t len, ctl_data_fn *datafn, void *ctx,
          struct ctl_msg *final_r, struct errbuf *err)
{
    struct ctl_msg m;
    struct errbuf why;

    if (ctl_parse(line, len, &m, &why) < 0) {
        errbuf_set(err, "bad reply line: %s", why.msg);
        return -1;
    }
    if (ctl_is_final(&m)) {
        *final_r = m;
        return 1;
    }
    if (datafn != NULL)
        datafn(ctx, &m);
    return 0;
}

/* feed - run a chunk of reply bytes through the line framing. */
static int
feed(struct ctl_linebuf *lb, const char *data, size_t len, ctl_data_fn *datafn, void *ctx,
     struct ctl_msg *final_r, struct errbuf *err)
{
    const char *line;
    size_t used, linelen;
    int rc;

    while (len > 0) {
        rc = ctl_linebuf_next(lb, data, len, &used, &line, &linelen);
        data += used;
        len -= used;
        if (rc < 0) {
            errbuf_set(err, "bad reply line: line too long");
            return -1;
        }
        if (rc == 1 && (rc = take_line(line, linelen, datafn, ctx, final_r, err)) != 0)
            return rc;
    }
    return 0;
}

/* read_reply - lines until OK/ERR, EOF, an error or the deadline. */
static int
read_reply(int fd, const char *path, ctl_data_fn *datafn, void *ctx, struct ctl_msg *final_r,
           long long deadline, int timeout_ms, struct errbuf *err)
{
    struct ctl_linebuf lb;
    char chunk[CTL_READ_CHUNK];
    ssize_t n;
    int rc;

    ctl_linebuf_init(&lb);
    for (;;) {
        if ((rc = wait_fd(fd, POLLIN, deadline)) <= 0) {
            if (rc == 0)
                errbuf_set(err, "%s: no reply within %d ms", path, timeout_ms);
            else
                errbuf_set_errno(err, "poll %s", path);
            return -1;
        }
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            errbuf_set_errno(err, "read from %s", path);
            return -1;
        }
        if (n == 0) {
            errbuf_set(err, "%s: connection closed before reply", path);
            return -1;
        }
        if ((rc = feed(&lb, chunk, (size_t)n, datafn, ctx, final_r, err)) != 0)
            return rc < 0 ? -1 : 0;
    }
}

int
ctl_request(const char *path, const struct ctl_msg *req, ctl_data_fn *datafn, void *ctx,
            struct ctl_msg *final_r, int timeout_ms, struct errbuf *err)
{
    long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    char line[CTL_LINE_MAX];
    int fd, len, rc = -1;

    memset(final_r, 0, sizeof(*final_r));
    if ((len = ctl_format(req, line, sizeof(line))) < 0) {
        errbuf_set(err, "request too long");
        return -1;
    }
    struct errbuf rerr;
    int sent;

    if ((fd = ctl_connect(path, err)) < 0)
        return -1;
    /* a server that refuses a peer says why and closes at once: the send
     * may then fail (EPIPE), but the reply is there to read */
    sent = send_all(fd, path, line, (size_t)len, deadline, err);
    if (sent == 0 || errno == EPIPE || errno == ECONNRESET)
        rc = read_reply(fd, path, datafn, ctx, final_r, deadline, timeout_ms,
                        sent == 0 ? err : &rerr);
    close(fd);
    return rc;
}

int
ctl_notify(const char *path, const struct ctl_msg *req, struct errbuf *err)
{
    char line[CTL_LINE_MAX];
    ssize_t n;
    int fd, len, rc = -1;

    if ((len = ctl_format(req, line, sizeof(line))) < 0) {
        errbuf_set(err, "request too long");
        return -1;
    }
    if ((fd = ctl_connect(path, err)) < 0)
        return -1;
    n = send(fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        errbuf_set_errno(err, "send to %s", path);
    else if (n != len)
        errbuf_set(err, "send to %s: short write (%zd of %d bytes)", path, n, len);
    else
        rc = 0;
    close(fd);
    return rc;
}

void
ctl_refuse(int fd, const char *code, const char *text)
{
    char line[CTL_LINE_MAX];
    struct ctl_msg m;
    int len;

    if (ctl_reply_err(&m, code, text) < 0 || (len = ctl_format(&m, line, sizeof(line))) < 0)
        return;
    (void)send(fd, line, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
}
