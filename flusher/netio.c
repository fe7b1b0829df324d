/* SPDX-License-Identifier: ISC */
/*
 * netio.c - one connection's socket, its OpenSSL session and two bounded
 * buffers: deadline-driven reads, buffered writes, line splitting with a
 * length cap, and the TLS handshake (client or server side). Shared by
 * the SMTP client (smtpc.c) and the ODMR server (odmr_session.c); the
 * protocols on top decide what a line means.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "netio.h"

void
netio_init(struct netio *io, int fd, const char *peer)
{
    io->fd = fd;
    io->ssl = NULL;
    io->broken = false;
    io->closed = false;
    io->skipping = false;
    io->quickack = false;
    io->rpos = io->rlen = io->wlen = 0;
    (void)str_copy(io->peer, sizeof(io->peer), peer != NULL ? peer : "?");
}

void
netio_set_quickack(struct netio *io)
{
    io->quickack = true;
}

/* quickack - Linux resets TCP_QUICKACK as the connection turns
 * interactive, so it is set again after every read; setting it also
 * sends an ACK that is pending. Best effort: a failure costs only time. */
static void
quickack(const struct netio *io)
{
    static const int on = 1;

    if (io->quickack)
        (void)setsockopt(io->fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

/* --- time --- */

int64_t
netio_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
netio_deadline(unsigned seconds)
{
    return netio_now_ms() + (int64_t)seconds * 1000;
}

int
netio_wait(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    int64_t left;
    int n;

    for (;;) {
        left = deadline - netio_now_ms();
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
io_want(struct netio *io, int n, bool writing)
{
    if (io->ssl != NULL) {
        switch (SSL_get_error(io->ssl, n)) {
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
io_fail(struct netio *io, int n, bool writing, struct errbuf *err)
{
    unsigned long e;

    io->broken = true;
    if (io->ssl != NULL && (e = ERR_get_error()) != 0) {
        errbuf_set(err, "TLS %s %s: %s", writing ? "write to" : "read from", io->peer,
                   ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
        ERR_clear_error();
    } else if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE || errno == 0))) {
        io->closed = true;
        errbuf_set(err, "connection closed by %s", io->peer);
    } else
        errbuf_set_errno(err, "%s %s", writing ? "write to" : "read from", io->peer);
}

static void
io_timeout(struct netio *io, const char *what, struct errbuf *err)
{
    io->broken = true;
    errbuf_set(err, "timeout %s %s", what, io->peer);
}

ssize_t
netio_read(struct netio *io, void *buf, size_t len, int64_t deadline, struct errbuf *err)
{
    ssize_t n;
    short ev;
    int w;

    for (;;) {
        errno = 0;
        if (io->ssl != NULL)
            n = SSL_read(io->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        else
            n = recv(io->fd, buf, len, 0);
        if (n > 0) {
            quickack(io);
            return n;
        }
        if ((ev = io_want(io, (int)n, false)) == 0) {
            io_fail(io, (int)n, false, err);
            return -1;
        }
        if ((w = netio_wait(io->fd, ev, deadline)) <= 0) {
            if (w == 0)
                io_timeout(io, "reading from", err);
            else
                io_fail(io, -1, false, err);
            return -1;
        }
    }
}

/* write_all - write len bytes before deadline; 0 / -1. */
static int
write_all(struct netio *io, const char *buf, size_t len, int64_t deadline, struct errbuf *err)
{
    ssize_t n;
    short ev;
    int w;

    while (len > 0) {
        errno = 0;
        if (io->ssl != NULL)
            n = SSL_write(io->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        else
            n = send(io->fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if ((ev = io_want(io, (int)n, true)) == 0) {
            io_fail(io, (int)n, true, err);
            return -1;
        }
        if ((w = netio_wait(io->fd, ev, deadline)) <= 0) {
            if (w == 0)
                io_timeout(io, "writing to", err);
            else
                io_fail(io, -1, true, err);
            return -1;
        }
    }
    return 0;
}

/* --- output buffer --- */

int
netio_flush(struct netio *io, unsigned timeout, struct errbuf *err)
{
    int rc;

    if (io->wlen == 0)
        return 0;
    rc = write_all(io, io->wbuf, io->wlen, netio_deadline(timeout), err);
    io->wlen = 0;
    return rc;
}

int
netio_put(struct netio *io, const void *data, size_t len, unsigned timeout, struct errbuf *err)
{
    const char *p = data;
    size_t k;

    while (len > 0) {
        if (io->wlen == sizeof(io->wbuf) && netio_flush(io, timeout, err) < 0)
            return -1;
        k = sizeof(io->wbuf) - io->wlen;
        if (k > len)
            k = len;
        memcpy(io->wbuf + io->wlen, p, k);
        io->wlen += k;
        p += k;
        len -= k;
    }
    return 0;
}

/* --- lines --- */

/* fill - more bytes into the read buffer (compacting it first). */
static int
fill(struct netio *io, int64_t deadline, struct errbuf *err)
{
    ssize_t n;

    if (io->rpos > 0) {
        memmove(io->rbuf, io->rbuf + io->rpos, io->rlen - io->rpos);
        io->rlen -= io->rpos;
        io->rpos = 0;
    }
    if ((n = netio_read(io, io->rbuf + io->rlen, sizeof(io->rbuf) - io->rlen, deadline, err)) < 0)
        return -1;
    io->rlen += (size_t)n;
    return 0;
}

/* skip_rest - discard through the next LF (the tail of an over-long line). */
static int
skip_rest(struct netio *io, int64_t deadline, struct errbuf *err)
{
    char *lf;

    while (io->skipping) {
        if ((lf = memchr(io->rbuf + io->rpos, '\n', io->rlen - io->rpos)) != NULL) {
            io->rpos = (size_t)(lf - io->rbuf) + 1;
            io->skipping = false;
            break;
        }
        io->rpos = io->rlen = 0;
        if (fill(io, deadline, err) < 0)
            return -1;
    }
    return 0;
}

int
netio_read_line(struct netio *io, int64_t deadline, size_t max, char **line_r, size_t *len_r,
                struct errbuf *err)
{
    char *lf;

    if (max > NETIO_LINE_MAX)
        max = NETIO_LINE_MAX;
    if (skip_rest(io, deadline, err) < 0)
        return -1;
    for (;;) {
        lf = memchr(io->rbuf + io->rpos, '\n', io->rlen - io->rpos);
        if (lf != NULL)
            break;
        if (io->rlen - io->rpos > max + 1) {
            io->skipping = true;
            return NETIO_TOO_LONG;
        }
        if (fill(io, deadline, err) < 0)
            return -1;
    }
    *line_r = io->rbuf + io->rpos;
    *len_r = (size_t)(lf - *line_r);
    io->rpos += *len_r + 1;
    if (*len_r > 0 && (*line_r)[*len_r - 1] == '\r')
        (*len_r)--;
    if (*len_r > max)
        return NETIO_TOO_LONG;               /* the whole line is consumed already */
    return 0;
}

size_t
netio_pending(const struct netio *io)
{
    return io->rlen - io->rpos;
}

/* --- TLS --- */

int
netio_tls_start(struct netio *io, SSL_CTX *ctx, bool server, const char *sni, bool verify_host,
                int64_t deadline, struct errbuf *err)
{
    unsigned long e;
    long vr;
    int n, w;
    short ev;

    if (netio_pending(io) != 0) {
        io->broken = true;
        errbuf_set(err, "%s sent data before the TLS handshake", io->peer);
        return -1;
    }
    if ((io->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(io->ssl, io->fd) != 1
        || (sni != NULL && !server && SSL_set_tlsext_host_name(io->ssl, sni) != 1)
        || (sni != NULL && verify_host && SSL_set1_host(io->ssl, sni) != 1)) {
        io->broken = true;
        errbuf_set(err, "TLS setup for %s failed", io->peer);
        ERR_clear_error();
        return -1;
    }
    while ((n = server ? SSL_accept(io->ssl) : SSL_connect(io->ssl)) != 1) {
        if ((ev = io_want(io, n, false)) == 0) {
            io->broken = true;
            vr = SSL_get_verify_result(io->ssl);
            e = ERR_get_error();
            if (vr != X509_V_OK)
                errbuf_set(err, "TLS handshake with %s failed: %s", io->peer,
                           X509_verify_cert_error_string(vr));
            else
                errbuf_set(err, "TLS handshake with %s failed: %s", io->peer,
                           e != 0 && ERR_reason_error_string(e) != NULL
                               ? ERR_reason_error_string(e) : "connection closed");
            ERR_clear_error();
            return -1;
        }
        if ((w = netio_wait(io->fd, ev, deadline)) <= 0) {
            io->broken = true;
            errbuf_set(err, "timeout in TLS handshake with %s", io->peer);
            return -1;
        }
    }
    return 0;
}

void
netio_close(struct netio *io)
{
    if (io->ssl != NULL) {
        if (!io->broken)
            (void)SSL_shutdown(io->ssl);
        SSL_free(io->ssl);
        io->ssl = NULL;
    }
    ERR_clear_error();
    if (io->fd >= 0)
        (void)close(io->fd);
    io->fd = -1;
}
