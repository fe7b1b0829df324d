/* SPDX-License-Identifier: ISC */
/*
 * policy.c - the Postfix policy delegation protocol: an incremental parser
 * that takes bytes as they arrive (a request may be split across reads,
 * several may come in one read) and keeps only the attributes that the
 * decisions need, plus the reply encoder. No I/O, no global state.
 *
 * SECURITY: requests come from Postfix over a socket, but anyone who can
 * connect can send anything. Every line is bounded (max_line), so is the
 * number of attributes per request (max_attributes) and every kept value
 * (its field size); NUL and other control characters (tab is allowed), a line without '=',
 * an empty name, an empty request and a request type other than
 * smtpd_access_policy are violations: the caller disconnects without a reply.
 */
#include <stddef.h>

#include "policy.h"
#include "util.h"

#define POLICY_REQUEST_TYPE "smtpd_access_policy"

struct policy_field {
    const char *name;
    size_t namelen;
    size_t offset;
    size_t size;
};

#define FIELD(n) {#n, sizeof(#n) - 1, offsetof(struct policy_request, n), \
                  sizeof(((struct policy_request *)0)->n)}

static const struct policy_field fields[] = {
    FIELD(request),
    FIELD(protocol_state),
    FIELD(client_address),
    FIELD(sasl_username),
    FIELD(recipient),
    FIELD(etrn_domain),
    FIELD(policy_context),
};

/* policy_parser_init - empty parser */

void
policy_parser_init(struct policy_parser *p, size_t max_line, size_t max_attrs)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line ? max_line : 1;
    p->max_attrs = max_attrs ? max_attrs : 1;
}

/* policy_in_request - anything received since the last complete request? */

bool
policy_in_request(const struct policy_parser *p)
{
    return !p->done && (p->linelen > 0 || p->req.nattrs > 0);
}

/* start_value - the name is complete: find the field it fills, if any */

static int
start_value(struct policy_parser *p, struct errbuf *err)
{
    size_t i;

    if (p->namelen == 0) {
        errbuf_set(err, "empty attribute name");
        return -1;
    }
    if (++p->req.nattrs > p->max_attrs) {
        errbuf_set(err, "more than %zu attributes in one request", p->max_attrs);
        return -1;
    }
    p->in_value = true;
    p->field = NULL;
    p->fieldlen = 0;
    p->field_long = false;
    if (p->namelen > POLICY_NAME_MAX)
        return 0;
    p->name[p->namelen] = '\0';
    for (i = 0; i < ARRAY_LEN(fields); i++) {
        if (fields[i].namelen == p->namelen && fields[i].name[0] == p->name[0]
            && memcmp(fields[i].name, p->name, p->namelen) == 0) {
            p->field = (char *)&p->req + fields[i].offset;
            p->fieldsize = fields[i].size;
            p->field[0] = '\0';
            break;
        }
    }
    return 0;
}

/* end_line - a LF: finish an attribute, or the request on an empty line */

static int
end_line(struct policy_parser *p, struct errbuf *err)
{
    if (p->linelen == 0) {
        if (p->req.nattrs == 0) {
            errbuf_set(err, "empty request");
            return -1;
        }
        if (strcmp(p->req.request, POLICY_REQUEST_TYPE) != 0) {
            errbuf_set(err, "unsupported request type '%s'", p->req.request);
            return -1;
        }
        p->done = true;
        return 1;
    }
    if (!p->in_value) {
        errbuf_set(err, "attribute line without '='");
        return -1;
    }
    if (p->field != NULL) {
        if (p->field_long) {
            p->field[0] = '\0';
            p->req.overlong++;
        } else {
            p->field[p->fieldlen] = '\0';
        }
    }
    p->in_value = false;
    p->namelen = 0;
    p->linelen = 0;
    p->field = NULL;
    return 0;
}

/* take_byte - one byte of a line (not LF) */

static int
take_byte(struct policy_parser *p, unsigned char c, struct errbuf *err)
{
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
        errbuf_set(err, "control character 0x%02x in request", c);
        return -1;
    }
    if (++p->linelen > p->max_line) {
        errbuf_set(err, "attribute line longer than %zu bytes", p->max_line);
        return -1;
    }
    if (!p->in_value) {
        if (c == '=')
            return start_value(p, err);
        if (p->namelen < POLICY_NAME_MAX + 1)
            p->name[p->namelen] = (char)c;
        p->namelen++;
        return 0;
    }
    if (p->field == NULL || p->field_long)
        return 0;
    if (p->fieldlen + 1 >= p->fieldsize)
        p->field_long = true;
    else
        p->field[p->fieldlen++] = (char)c;
    return 0;
}

/* Which bytes end a run in fast_run: STOP_VALUE in a value (LF, tab and
 * the other control characters, DEL), STOP_NAME in a name (the same and
 * '='). A table, because the runs are most of the bytes of a request. */
enum { STOP_VALUE = 1, STOP_NAME = 2, STOP_CTL = STOP_VALUE | STOP_NAME };
#define ROW(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char stop[256] = {
    ROW(STOP_CTL), ROW(STOP_CTL),                               /* 0x00-0x1f */
    ROW(0),                                                     /* 0x20-0x2f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, STOP_NAME, 0, 0,     /* 0x30-0x3f: '=' */
    ROW(0), ROW(0), ROW(0),                                     /* 0x40-0x6f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, STOP_CTL,      /* 0x70-0x7f: DEL */
    ROW(0), ROW(0), ROW(0), ROW(0), ROW(0), ROW(0), ROW(0), ROW(0),   /* 0x80-0xff */
};
#undef ROW

/* run_length - how many bytes at the start of data[0..len) have no bit of
 * mask in the table */
static inline size_t
run_length(const char *data, size_t len, unsigned char mask)
{
    size_t n = 0;

    while (n < len && !(stop[(unsigned char)data[n]] & mask))
        n++;
    return n;
}

/* fast_run - the bytes at the start of data that take_byte would merely
 * store or skip, taken in one tight loop, with take_byte's effect: a name
 * up to '=', a value nobody keeps, or a kept value (stored while it fits
 * its field, then marked too long). Stops before LF, tab or another
 * control character, '=' in a name, and the byte that would exceed
 * max_line, so that take_byte sees (and reports) every byte that needs a
 * decision. Returns how many bytes were taken. */

static size_t
fast_run(struct policy_parser *p, const char *data, size_t len)
{
    size_t n, k, room = p->linelen < p->max_line ? p->max_line - p->linelen : 0;

    if (len > room)
        len = room;
    if (!p->in_value) {
        n = run_length(data, len, STOP_NAME);
        if (p->namelen < POLICY_NAME_MAX + 1)
            memcpy(p->name + p->namelen, data,
                   n < POLICY_NAME_MAX + 1 - p->namelen ? n : POLICY_NAME_MAX + 1 - p->namelen);
        p->namelen += n;
    } else {
        n = run_length(data, len, STOP_VALUE);
        if (p->field != NULL && !p->field_long) {
            /* room left: take_byte stores while fieldlen + 1 < fieldsize */
            k = p->fieldsize - 1 - p->fieldlen;
            if (n > k)
                p->field_long = true;
            else
                k = n;
            memcpy(p->field + p->fieldlen, data, k);
            p->fieldlen += k;
        }
    }
    p->linelen += n;
    return n;
}

/* policy_parse - feed bytes; see policy.h */

int
policy_parse(struct policy_parser *p, const char *data, size_t len, size_t *used_r,
             struct errbuf *err)
{
    size_t i;
    int rc;

    if (p->done) {
        memset(&p->req, 0, sizeof(p->req));
        p->done = false;
    }
    for (i = 0; i < len; i++) {
        if ((i += fast_run(p, data + i, len - i)) == len)
            break;
        if (data[i] == '\n') {
            if ((rc = end_line(p, err)) != 0) {
                *used_r = i + 1;
                return rc;
            }
        } else if (take_byte(p, (unsigned char)data[i], err) < 0) {
            *used_r = i + 1;
            return -1;
        }
    }
    *used_r = len;
    return 0;
}

/* policy_format_reply - the whole reply for one request */

int
policy_format_reply(const char *action, char *buf, size_t size)
{
    if (str_printf(buf, size, "action=%s\n\n", action) < 0)
        return -1;
    return (int)strlen(buf);
}
