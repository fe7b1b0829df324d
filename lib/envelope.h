/* SPDX-License-Identifier: ISC */
/*
 * envelope.h - the SMTP envelope kept at the top of every spool file:
 * sender, this customer's recipients, and the ESMTP parameters that must
 * survive (BODY=, SMTPUTF8, DSN ENVID/RET/NOTIFY/ORCPT). Format in
 * doc/spool-format.md:
 *
 *   X-Autoturn-Version: 1
 *   X-Autoturn-Customer: acme
 *   X-Autoturn-Arrival: 1763700000
 *   X-Autoturn-Queue-Id: 4XyZ12abc          (optional)
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

struct envelope_rcpt {
    char *addr;      /* without <>; never empty */
    char *params;    /* "NOTIFY=SUCCESS ORCPT=rfc822;a@b" or "" */
};

struct envelope {
    char customer[CUSTOMER_NAME_MAX + 1];
    char queue_id[ENVELOPE_QUEUEID_MAX + 1];    /* "" if unknown */
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
