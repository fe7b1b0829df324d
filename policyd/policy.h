/* SPDX-License-Identifier: ISC */
/*
 * policy.h - the Postfix policy delegation protocol (SMTPD_POLICY_README):
 * an incremental, bounded parser of "name=value" lines ending in an empty
 * line, and the reply "action=..." followed by an empty line.
 */
#ifndef AUTOTURN_POLICYD_POLICY_H
#define AUTOTURN_POLICYD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define POLICY_NAME_MAX     64     /* a longer name is an unknown attribute */
#define POLICY_WORD_MAX     32     /* request, protocol_state */
#define POLICY_ADDR_MAX     64     /* client_address */
#define POLICY_USER_MAX     256    /* sasl_username */
#define POLICY_RCPT_MAX     512    /* recipient */
#define POLICY_DOMAIN_MAX   256    /* etrn_domain */
#define POLICY_CONTEXT_MAX  64     /* policy_context */
#define POLICY_REPLY_MAX    512    /* one whole reply */

/* The attributes the decisions use; all others are counted and ignored.
 * A kept value longer than its field is dropped (left empty) and noted in
 * overlong. Duplicates: the last one wins. */
struct policy_request {
    char request[POLICY_WORD_MAX];
    char protocol_state[POLICY_WORD_MAX];
    char client_address[POLICY_ADDR_MAX];
    char sasl_username[POLICY_USER_MAX];
    char recipient[POLICY_RCPT_MAX];
    char etrn_domain[POLICY_DOMAIN_MAX];
    char policy_context[POLICY_CONTEXT_MAX];
    size_t nattrs;                 /* attribute lines in this request */
    unsigned overlong;             /* count of kept values dropped as too long */
};

struct policy_parser {
    size_t max_line;               /* bytes per line, without the LF */
    size_t max_attrs;
    bool in_value;                 /* after the '=' of the current line */
    bool done;                     /* req holds a complete request */
    size_t linelen;
    char name[POLICY_NAME_MAX + 1];
    size_t namelen;
    char *field;                   /* where the current value goes, or NULL */
    size_t fieldsize;
    size_t fieldlen;
    bool field_long;
    struct policy_request req;
};

/* policy_parser_init - an empty parser with the given limits (>= 1). */
void policy_parser_init(struct policy_parser *p, size_t max_line, size_t max_attrs);

/* policy_parse - consume bytes from data[0..len); *used_r says how many.
 * Returns 1 when a whole request is ready in p->req (valid until the next
 * call; the bytes after it are not consumed), 0 when all bytes were taken
 * and more are needed, -1 on a protocol violation (err says which; the
 * connection must be closed without a reply). */
int policy_parse(struct policy_parser *p, const char *data, size_t len, size_t *used_r,
                 struct errbuf *err);

/* policy_in_request - true when part of a request has been received. */
bool policy_in_request(const struct policy_parser *p);

/* policy_format_reply - "action=ACTION\n\n" into buf; length or -1. */
int policy_format_reply(const char *action, char *buf, size_t size);

#endif
