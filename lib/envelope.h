/* SPDX-License-Identifier: ISC */
/*
 * envelope.h - the SMTP envelope kept at the top of every spool file:
 * sender, this customer's recipients, and the ESMTP parameters that must
 * survive (BODY=, SMTPUTF8, DSN ENVID/RET/NOTIFY/ORCPT). Format in
 * docs/spool-format.md:
 *
 *   X-Autoturn-Version: 1
 *   X-Autoturn-Customer: acme
 *   X-Autoturn-Arrival: 1763700000
 *   X-Autoturn-Queue-Id: 4XyZ12abc          (optional)
 *   X-Autoturn-Client-Addr: 192.0.2.1       (optional: the SMTP client
 *   X-Autoturn-Client-Name: mail.example.org (optional:  the message came
 *   X-Autoturn-Helo: mail.example.org       (optional:   from, for Received:)
 *   X-Autoturn-Sender: [PARAM ...] <addr>
 *   X-Autoturn-Rcpt: [PARAM ...] <addr>     (one per recipient, >= 1)
 *   X-Autoturn-End:
 *   <the message exactly as received>
 *
 * SECURITY: spool files are written by the milter but read back by the
 * flusher; every line is bounded (ENVELOPE_LINE_MAX), the recipient count
 * is bounded (ENVELOPE_RCPT_MAX), and anything unexpected is an error.
 */
#ifndef AUTOTURN_ENVELOPE_H
#define AUTOTURN_ENVELOPE_H

#include <stddef.h>
#include <time.h>

#include "customer.h"
#include "util.h"

#define ENVELOPE_LINE_MAX   2048      /* bytes per envelope line incl. LF */
#define ENVELOPE_ADDR_MAX   1000      /* bytes of one address, without <> */
#define ENVELOPE_PARAMS_MAX 1000      /* bytes of one parameter list */
#define ENVELOPE_RCPT_MAX   10000
#define ENVELOPE_QUEUEID_MAX 63
#define ENVELOPE_CLIENT_ADDR_MAX 45   /* INET6_ADDRSTRLEN - 1 */
#define ENVELOPE_HOST_MAX   255       /* client name, HELO argument */

struct envelope_rcpt {
    char *addr;      /* without <>; never empty */
    char *params;    /* "NOTIFY=SUCCESS ORCPT=rfc822;a@b" or "" */
};

struct envelope {
    char customer[CUSTOMER_NAME_MAX + 1];
    char queue_id[ENVELOPE_QUEUEID_MAX + 1];    /* "" if unknown */
    char client_addr[ENVELOPE_CLIENT_ADDR_MAX + 1]; /* "192.0.2.1", "2001:db8::1"; "" unknown */
    char client_name[ENVELOPE_HOST_MAX + 1];    /* verified name or "unknown"; "" unknown */
    char helo[ENVELOPE_HOST_MAX + 1];           /* HELO/EHLO argument; "" unknown */
    time_t arrival;
    char *sender;          /* without <>; "" is the null sender */
    char *mail_params;     /* "BODY=8BITMIME SMTPUTF8 ENVID=x RET=HDRS" or "" */
    size_t nrcpt;
    size_t rcpt_alloc;
    struct envelope_rcpt *rcpt;
    /* parser state (envelope_parse_line) */
    unsigned lines_seen;
    unsigned fields_seen;
};

void envelope_init(struct envelope *e);
void envelope_clear(struct envelope *e);   /* frees contents, back to init state */

/* Setters validate: no CR, LF or NUL, lengths within the caps, params as
 * space-separated KEYWORD[=VALUE] (keyword [A-Za-z0-9-], value printable
 * ASCII 0x21-0x7e except '='). 0 or -1 with err. */
int envelope_set_sender(struct envelope *e, const char *addr, const char *params,
                        struct errbuf *err);
int envelope_add_rcpt(struct envelope *e, const char *addr, const char *params,
                      struct errbuf *err);

/* envelope_set_client - where the message came from (each may be NULL or
 * "" = unknown). addr must be an IPv4 or IPv6 address; name 1..255 of
 * [A-Za-z0-9._-]; helo is made safe instead of refused: bytes outside
 * 0x21-0x7e and ( ) \ become '?', and it is cut at 255 bytes. A bad addr
 * or name is dropped (left unknown), never an error: the message matters
 * more than its trace. */
void envelope_set_client(struct envelope *e, const char *addr, const char *name,
                         const char *helo);

/* envelope_format - the header block (lines end in LF, last line
 * "X-Autoturn-End:"), malloc'd. Needs customer, arrival, >= 1 recipient. */
int envelope_format(const struct envelope *e, char **buf_r, size_t *len_r, struct errbuf *err);

/* envelope_parse_line - feed one line (with or without its LF/CRLF;
 * len <= ENVELOPE_LINE_MAX). Returns 0 = need more lines, 1 = "X-Autoturn-End"
 * seen and the envelope is complete and valid, -1 = malformed (err names
 * the line number and problem). Start from envelope_init(). */
int envelope_parse_line(struct envelope *e, const char *line, size_t len, struct errbuf *err);

/* envelope_parse - parse the envelope at the start of buf; on success
 * *hdr_len_r is its length in bytes (the message starts there). -1 if
 * malformed or incomplete within len. */
int envelope_parse(struct envelope *e, const char *buf, size_t len, size_t *hdr_len_r,
                   struct errbuf *err);

/* envelope_param - find KEYWORD (case-insensitive) in a params string;
 * returns 1 and copies its value ("" for a bare keyword) into val, 0 if
 * absent, -1 if val is too small. */
int envelope_param(const char *params, const char *keyword, char *val, size_t size);

#endif
