/* SPDX-License-Identifier: ISC */
/*
 * smtpc.h - the flusher's SMTP client: one connection to a customer's
 * server, many messages over it, oldest first. RFC 5321 timeouts, EHLO
 * with HELO fallback, PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN
 * parameters, CHUNKING (BDAT, RFC 3030) or DATA, STARTTLS (OpenSSL) per
 * the customer's TLS policy. The bytes that arrive are the bytes that were
 * stored, after the caller's trace header (our Received: line): the body
 * is sent with dot-stuffing (DATA) or as it is (BDAT), nothing else is
 * changed.
 *
 * A function that returns -1 means the connection is unusable (timeout,
 * connection lost, malformed or over-long reply, TLS failure): the caller
 * keeps every message not yet confirmed and stops this flush.
 */
#ifndef AUTOTURN_SMTPC_H
#define AUTOTURN_SMTPC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "customer.h"
#include "envelope.h"
#include "spool.h"
#include "util.h"

#define SMTPC_REPLY_TEXT_MAX 512       /* kept text of a reply (first line + more, truncated) */
#define SMTPC_LINE_MAX       4096      /* a reply line longer than this is malformed */
#define SMTPC_REPLY_LINES_MAX 100      /* more continuation lines: malformed */

struct smtpc_opts {
    unsigned connect_timeout;          /* seconds */
    unsigned greeting_timeout;         /* RFC 5321 4.5.3.2.1: 5 min */
    unsigned command_timeout;          /* EHLO, MAIL, RCPT, RSET, QUIT: 5 min */
    unsigned data_timeout;             /* DATA reply, each block, final dot */
    const char *helo_name;             /* our name in EHLO/HELO */
    enum tls_policy tls;               /* none / may / encrypt */
    const char *tls_ca_file;           /* NULL: no certificate verification (may/encrypt only
                                          require encryption, as Postfix's "encrypt") */
    bool chunking;                     /* BDAT when the server offers CHUNKING */
};

struct smtpc_reply {
    int code;                          /* 200..599; 0 if none was read */
    char text[SMTPC_REPLY_TEXT_MAX];   /* "250 2.1.0 Ok" (lines joined with ' / ') */
};

struct smtpc_ext {                     /* what the server announced after EHLO */
    bool esmtp;                        /* false: HELO fallback was used */
    bool pipelining, eightbitmime, smtputf8, dsn, starttls, size, chunking;
    uint64_t size_max;                 /* 0 = no limit announced */
    bool tls_active;
};

/* Per-message outcome. The caller decides what to delete, keep, bounce. */
enum smtpc_status {
    SMTPC_SENT,          /* DATA accepted: rcpt[i].code says who was accepted */
    SMTPC_REJECTED,      /* MAIL, every RCPT or DATA refused: see the replies */
    SMTPC_TOO_BIG,       /* larger than the server's SIZE: not sent (bounce) */
    SMTPC_NEEDS_SMTPUTF8,/* message needs SMTPUTF8 (RFC 6531: a UTF-8 envelope address,
                            or SMTPUTF8 asked and UTF-8 in the header), server lacks
                            it: not sent (bounce, 5.6.7, as Postfix does) */
    SMTPC_NEEDS_8BITMIME,/* BODY=8BITMIME with 8-bit bytes, server lacks 8BITMIME: not
                            sent (RFC 6152 3: permanent without conversion: bounce) */
};

struct smtpc_result {
    enum smtpc_status status;
    struct smtpc_reply mail;
    size_t nrcpt;                      /* = envelope recipients */
    struct smtpc_reply *rcpt;          /* malloc'd, one per envelope recipient */
    struct smtpc_reply data;           /* DATA command reply, or the final-dot (last BDAT) reply */
    bool bdat;                         /* the content went with BDAT */
};

struct smtpc;

/* smtpc_open - connect to addr, read the greeting, EHLO (HELO if EHLO is
 * refused), STARTTLS when the policy asks and the server offers it (then
 * EHLO again). TLS_ENCRYPT without STARTTLS, a greeting other than 220,
 * or any timeout: -1 with err (and *reply_r holds the server's last
 * reply, if any). host is for logs ("mail.example[192.0.2.1]:25"). */
int smtpc_open(const struct sockaddr *addr, socklen_t addrlen, const char *host,
               const struct smtpc_opts *opts, struct smtpc **c_r, struct smtpc_reply *reply_r,
               struct errbuf *err);

/* smtpc_adopt - the same session on a connection that already exists (an
 * ODMR turnaround, RFC 2645): fd is connected; ssl (with its ctx) is the
 * TLS session already running on it, or NULL for plain text. Reads the
 * greeting, EHLO/HELO, and STARTTLS per policy only if TLS is not on yet.
 * smtpc owns fd, ssl and ctx from here on, on failure too. */
int smtpc_adopt(int fd, SSL_CTX *ctx, SSL *ssl, const char *peer, const struct smtpc_opts *opts,
                struct smtpc **c_r, struct smtpc_reply *reply_r, struct errbuf *err);

const struct smtpc_ext *smtpc_extensions(const struct smtpc *c);

/* smtpc_send - one transaction for the open spool message m (envelope and
 * body): MAIL FROM (+BODY=, SMTPUTF8, SIZE=, ENVID=, RET= as supported),
 * RCPT TO per recipient (+NOTIFY=, ORCPT= if DSN), pipelined when
 * offered, DATA, the body dot-stuffed, the final dot. 0 with res filled
 * (free with smtpc_result_clear); -1 if the connection failed (a message
 * whose final-dot reply was never read is NOT known to be delivered). */
int smtpc_send(struct smtpc *c, struct spool_msg *m, struct smtpc_result *res,
               struct errbuf *err);
void smtpc_result_clear(struct smtpc_result *res);

/* smtpc_send_some - the same for the recipients i with want[i] only (at
 * least one; NULL = all); the others' rcpt[i].code stays 0 (not tried).
 * trace (NULL or "") is sent before the message: whole header lines
 * ending in CRLF (our Received: line); SIZE= counts it. */
int smtpc_send_some(struct smtpc *c, struct spool_msg *m, const bool *want, const char *trace,
                    struct smtpc_result *res, struct errbuf *err);

/* smtpc_peer_closed - after a -1: was it the server ending the session
 * (a 421 reply, or the connection closed or reset by the peer), as
 * opposed to a timeout, a malformed reply or a TLS failure? */
bool smtpc_peer_closed(const struct smtpc *c);

/* smtpc_rset - after a refused transaction, before the next one. */
int smtpc_rset(struct smtpc *c, struct errbuf *err);

/* smtpc_close - QUIT (best effort, short timeout) and free; NULL is fine. */
void smtpc_close(struct smtpc *c);

#endif
