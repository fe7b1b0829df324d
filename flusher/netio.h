/* SPDX-License-Identifier: ISC */
/*
 * netio.h - bounded, deadline-driven line I/O over one TCP connection,
 * plain or TLS (OpenSSL), shared by the flusher's SMTP client (smtpc.c)
 * and the ODMR server (odmr_session.c). One read buffer (lines in), one
 * write buffer (commands and body blocks out). Every read and write waits
 * with poll() no longer than its deadline, so a peer that trickles bytes
 * cannot stretch a step. Errors go into the errbuf; nothing is logged.
 *
 * Writes on a plain socket use MSG_NOSIGNAL, but OpenSSL writes with
 * write(2): the process must ignore SIGPIPE.
 */
#ifndef AUTOTURN_NETIO_H
#define AUTOTURN_NETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "util.h"

#define NETIO_PEER_MAX 300            /* peer string kept for messages */
#define NETIO_LINE_MAX 4096           /* longest line netio_read_line can return */
#define NETIO_RBUF     (2 * NETIO_LINE_MAX + 4)
#define NETIO_WBUF     65536

#define NETIO_TOO_LONG (-2)           /* netio_read_line: the line exceeds max */

struct netio {
    int fd;                           /* -1: none */
    SSL *ssl;                         /* NULL: plain text */
    bool broken;                      /* an I/O error happened: no more traffic */
    bool closed;                      /* ...and it was the peer closing (EOF, reset) */
    bool skipping;                    /* discarding the rest of an over-long line */
    bool quickack;                    /* acknowledge every read at once (netio_set_quickack) */
    char peer[NETIO_PEER_MAX];        /* "host[addr]:port" for messages */
    size_t rpos, rlen;
    char rbuf[NETIO_RBUF];
    size_t wlen;
    char wbuf[NETIO_WBUF];
};

/* netio_init - fd (may be -1 until connected), peer for messages. */
void netio_init(struct netio *io, int fd, const char *peer);

/* netio_set_quickack - from now on, acknowledge what each read consumed
 * at once (TCP_QUICKACK after every read) instead of letting the kernel
 * delay the ACK. For a peer that relays our replies line by line without
 * TCP_NODELAY (fetchmail after an ODMR turnaround), or that answers a
 * pipelined group in several writes with Nagle on (Postfix's smtpd): its
 * second write waits for our ACK of the first, and a delayed ACK costs up
 * to 40 ms per exchange. */
void netio_set_quickack(struct netio *io);

/* netio_deadline - CLOCK_MONOTONIC milliseconds, seconds from now. */
int64_t netio_now_ms(void);
int64_t netio_deadline(unsigned seconds);

/* netio_wait - poll fd for events until deadline: 1 ready, 0 timeout, -1 error. */
int netio_wait(int fd, short events, int64_t deadline);

/* netio_read - up to len bytes before deadline (from the socket, not the
 * line buffer); >0 count, -1 error (connection closed, timeout). */
ssize_t netio_read(struct netio *io, void *buf, size_t len, int64_t deadline, struct errbuf *err);

/* netio_put - append to the write buffer, writing full blocks out, each
 * within timeout seconds; netio_flush - write what is buffered. 0 / -1. */
int netio_put(struct netio *io, const void *p, size_t len, unsigned timeout, struct errbuf *err);
int netio_flush(struct netio *io, unsigned timeout, struct errbuf *err);

/* netio_read_line - the next line (CRLF or LF stripped) before deadline;
 * *line_r points into the read buffer, valid until the next call, and has
 * a free byte after it. A line longer than max (<= NETIO_LINE_MAX) is
 * NETIO_TOO_LONG: the connection stays usable, and the rest of that line
 * is discarded by the next call. -1: I/O error or timeout (broken). */
int netio_read_line(struct netio *io, int64_t deadline, size_t max, char **line_r, size_t *len_r,
                    struct errbuf *err);

/* netio_pending - bytes received but not yet returned as lines. */
size_t netio_pending(const struct netio *io);

/* netio_tls_start - SSL_new on ctx for io's socket and the handshake as
 * client (sni: server name or NULL; verify_host: check the certificate
 * against it) or as server, before deadline. Refused (-1) when bytes are
 * already buffered (STARTTLS command injection). */
int netio_tls_start(struct netio *io, SSL_CTX *ctx, bool server, const char *sni,
                    bool verify_host, int64_t deadline, struct errbuf *err);

/* netio_close - TLS close_notify when clean (best effort), free the SSL
 * object, close the socket. The SSL_CTX belongs to the caller. */
void netio_close(struct netio *io);

#endif
