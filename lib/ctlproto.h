/* SPDX-License-Identifier: ISC */
/*
 * ctlproto.h - the control protocol: how the milter, the policy service
 * and autoturnctl ask a daemon (the flusher; the policy service for
 * grants) to act. Full description in docs/control-protocol.md.
 *
 * A request is one line: VERB [key=value ...] LF. The reply is one or
 * more lines of the same shape; the last one has the verb OK or ERR
 * (ERR carries code= and text=). Lines before it are data lines (e.g.
 * "GRANT ip=... user=...", "PROGRESS ..."). Values are printable ASCII
 * 0x21-0x7e with '%' and anything else written as %XX.
 *
 * SECURITY: requests come from local peers over a UNIX socket whose mode
 * limits who may connect, and the servers check each peer's uid
 * (SO_PEERCRED, lib/peer.c) before reading a request; still, every line is bounded (CTL_LINE_MAX),
 * the argument count is bounded, and verbs/keys/values are validated.
 */
#ifndef AUTOTURN_CTLPROTO_H
#define AUTOTURN_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CTL_LINE_MAX   1024    /* bytes per line including LF */
#define CTL_ARGS_MAX   16
#define CTL_VERB_MAX   15
#define CTL_KEY_MAX    31
#define CTL_VALUE_MAX  511     /* decoded bytes */

struct ctl_arg {
    char key[CTL_KEY_MAX + 1];          /* [a-z0-9_-]+ */
    char value[CTL_VALUE_MAX + 1];      /* decoded; may hold any byte but NUL */
};

struct ctl_msg {
    char verb[CTL_VERB_MAX + 1];        /* [A-Z]+ */
    size_t nargs;
    struct ctl_arg args[CTL_ARGS_MAX];
};

/* ctl_msg_init - verb must be [A-Z]{1,15}; 0 or -1. */
int ctl_msg_init(struct ctl_msg *m, const char *verb);
/* ctl_msg_add - append key=value (copied); -1 if bad key, too long or full. */
int ctl_msg_add(struct ctl_msg *m, const char *key, const char *value);
int ctl_msg_addf(struct ctl_msg *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ctl_msg_get - value of the first arg named key, or NULL. */
const char *ctl_msg_get(const struct ctl_msg *m, const char *key);

/* ctl_format - encode m as one line ending in LF into buf; returns the
 * length, or -1 if it would exceed CTL_LINE_MAX or size. */
int ctl_format(const struct ctl_msg *m, char *buf, size_t size);

/* ctl_parse - decode one line (len bytes, with or without the final LF;
 * no other control characters). 0, or -1 with err naming the problem
 * ("line too long", "bad verb", "bad argument 3", "bad %-escape",
 * "too many arguments", "duplicate key"). */
int ctl_parse(const char *line, size_t len, struct ctl_msg *m, struct errbuf *err);

/* ctl_reply_ok / ctl_reply_err - build the final reply lines. */
int ctl_reply_ok(struct ctl_msg *m);
int ctl_reply_err(struct ctl_msg *m, const char *code, const char *text);
bool ctl_is_final(const struct ctl_msg *m);    /* verb is OK or ERR */

/* --- client side --- */

/* Called for every data line of a reply (not for the final OK/ERR). */
typedef void ctl_data_fn(void *ctx, const struct ctl_msg *line);

/* ctl_request - connect to the UNIX socket at path, send req, read reply
 * lines until OK/ERR (final_r). timeout_ms bounds the whole exchange
 * (0 = wait forever, e.g. "flush --wait"). 0 if a final line arrived
 * (check its verb), -1 on connect/IO/protocol trouble (err). */
int ctl_request(const char *path, const struct ctl_msg *req, ctl_data_fn *datafn, void *ctx,
                struct ctl_msg *final_r, int timeout_ms, struct errbuf *err);

/* ctl_notify - fire and forget: non-blocking connect, send req, close;
 * never waits for the peer. For the milter/policy service: a down
 * flusher must never delay an SMTP session. 0 sent, -1 not sent (err). */
int ctl_notify(const char *path, const struct ctl_msg *req, struct errbuf *err);

/* --- server side --- */

/* Line framing for a server reading from a stream: append bytes, take
 * complete lines out. Bounded: a line longer than CTL_LINE_MAX is an error. */
struct ctl_linebuf {
    char buf[CTL_LINE_MAX];
    size_t len;
};
void ctl_linebuf_init(struct ctl_linebuf *lb);
/* ctl_linebuf_next - take bytes from data[0..len) into lb (*used_r says
 * how many were consumed). Returns 1 with *line_r, *linelen_r (valid until
 * the next call) when a whole line is ready, 0 when more data is needed,
 * -1 when the line exceeds CTL_LINE_MAX. */
int ctl_linebuf_next(struct ctl_linebuf *lb, const char *data, size_t len, size_t *used_r,
                     const char **line_r, size_t *linelen_r);

/* ctl_refuse - one ERR line to a peer the server will not serve, sent
 * without blocking (a full socket just loses it); the caller closes. */
void ctl_refuse(int fd, const char *code, const char *text);

#endif
