/* SPDX-License-Identifier: ISC */
/*
 * envelope.c - the SMTP envelope at the top of every spool file: the
 * setters that validate what the milter stores, the writer of the header
 * block and its strict line-by-line parser. Owns no global state.
 *
 * SECURITY: the parser reads files that another process wrote. Every line
 * is bounded (ENVELOPE_LINE_MAX), so are addresses, parameter lists and the
 * recipient count; control characters, NUL bytes, unknown or repeated
 * fields are errors that name the line. Nothing is trusted until
 * "X-Autoturn-End:" has been seen and the envelope checked as a whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "envelope.h"
#include "util.h"

#define FIELD_PREFIX "X-Autoturn-"
#define VERSION_TEXT "1"
#define ARRIVAL_DIGITS_MAX 18          /* keeps any accepted value within time_t */

enum field {
    F_VERSION,
    F_CUSTOMER,
    F_ARRIVAL,
    F_QUEUE_ID,
    F_CLIENT_ADDR,
    F_CLIENT_NAME,
    F_HELO,
    F_SENDER,
    F_RCPT,
    F_END,
};

static const char *const field_names[] = {
    [F_VERSION] = "Version",
    [F_CUSTOMER] = "Customer",
    [F_ARRIVAL] = "Arrival",
    [F_QUEUE_ID] = "Queue-Id",
    [F_CLIENT_ADDR] = "Client-Addr",
    [F_CLIENT_NAME] = "Client-Name",
    [F_HELO] = "Helo",
    [F_SENDER] = "Sender",
    [F_RCPT] = "Rcpt",
    [F_END] = "End",
};

/* A parsed "<params> <addr>" value: pointers into the caller's line. */
struct addr_value {
    char params[ENVELOPE_PARAMS_MAX + 1];
    const char *addr;
    size_t addr_len;
};

void
envelope_init(struct envelope *e)
{
    memset(e, 0, sizeof(*e));
}

void
envelope_clear(struct envelope *e)
{
    size_t i;

    for (i = 0; i < e->nrcpt; i++) {
        x_free(e->rcpt[i].addr);
        x_free(e->rcpt[i].params);
    }
    x_free(e->rcpt);
    x_free(e->sender);
    x_free(e->mail_params);
    envelope_init(e);
}

/* is_blank - the separators allowed between envelope tokens. */
static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* addr_check - the rules an address obeys; NULL if fine, else the reason. */
static const char *
addr_check(const char *addr, size_t len, bool empty_ok)
{
    size_t i;

    if (len == 0 && !empty_ok)
        return "empty address";
    if (len > ENVELOPE_ADDR_MAX)
        return "address too long";
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];

        if (c < 0x20 || c == 0x7f)
            return "control character in address";
    }
    return NULL;
}

/* param_check - one KEYWORD[=VALUE] token of len bytes. */
static bool
param_check(const char *p, size_t len)
{
    size_t i = 0;

    while (i < len && ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
                       (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
        i++;
    if (i == 0)
        return false;
    if (i == len)
        return true;
    if (p[i++] != '=' || i == len)
        return false;
    for (; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '=')
            return false;
    return true;
}

/* params_check - canonical list: tokens separated by single spaces. */
static const char *
params_check(const char *params)
{
    const char *p = params, *sp;
    size_t len;

    if (strlen(params) > ENVELOPE_PARAMS_MAX)
        return "parameters too long";
    while (*p != '\0') {
        sp = strchr(p, ' ');
        len = sp ? (size_t)(sp - p) : strlen(p);
        if (!param_check(p, len))
            return "bad parameter";
        p += len;
        if (*p == ' ' && *++p == '\0')
            return "bad parameter";
    }
    return NULL;
}

/* set_addr - validate and copy one address + params into fresh strings. */
static int
set_addr(const char *what, const char *addr, const char *params, bool empty_ok,
         char **addr_r, char **params_r, struct errbuf *err)
{
    const char *why;

    if (params == NULL)
        params = "";
    if ((why = addr_check(addr, strlen(addr), empty_ok)) != NULL ||
        (why = params_check(params)) != NULL) {
        errbuf_set(err, "bad %s: %s", what, why);
        return -1;
    }
    *addr_r = x_strdup(addr);
    *params_r = x_strdup(params);
    if (*addr_r == NULL || *params_r == NULL) {
        x_free(*addr_r);
        x_free(*params_r);
        errbuf_set(err, "out of memory");
        return -1;
    }
    return 0;
}

int
envelope_set_sender(struct envelope *e, const char *addr, const char *params,
                    struct errbuf *err)
{
    char *a, *p;

    if (set_addr("sender", addr, params, true, &a, &p, err) < 0)
        return -1;
    x_free(e->sender);
    x_free(e->mail_params);
    e->sender = a;
    e->mail_params = p;
    return 0;
}

/* rcpt_grow - room for one more recipient. */
static int
rcpt_grow(struct envelope *e, struct errbuf *err)
{
    struct envelope_rcpt *v;
    size_t n;

    if (e->nrcpt >= ENVELOPE_RCPT_MAX) {
        errbuf_set(err, "too many recipients (max %d)", ENVELOPE_RCPT_MAX);
        return -1;
    }
    if (e->nrcpt < e->rcpt_alloc)
        return 0;
    n = e->rcpt_alloc ? e->rcpt_alloc * 2 : 4;
    if (n > ENVELOPE_RCPT_MAX)
        n = ENVELOPE_RCPT_MAX;
    if ((v = x_reallocarray(e->rcpt, n, sizeof(*v))) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    e->rcpt = v;
    e->rcpt_alloc = n;
    return 0;
}

int
envelope_add_rcpt(struct envelope *e, const char *addr, const char *params,
                  struct errbuf *err)
{
    struct envelope_rcpt *r;

    if (rcpt_grow(e, err) < 0)
        return -1;
    r = &e->rcpt[e->nrcpt];
    if (set_addr("recipient", addr, params, false, &r->addr, &r->params, err) < 0)
        return -1;
    e->nrcpt++;
    return 0;
}

/* --- writing --- */

/* name_valid - 1 to max bytes of [A-Za-z0-9._-]: a queue id, or a host
 * name as an MTA reports it */
static bool
name_valid(const char *v, size_t len, size_t max)
{
    size_t i;

    if (len == 0 || len > max)
        return false;
    for (i = 0; i < len; i++)
        if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '_' || v[i] == '-'))
            return false;
    return true;
}

static bool
queue_id_valid(const char *v, size_t len)
{
    return name_valid(v, len, ENVELOPE_QUEUEID_MAX);
}

/* client_addr_valid - an IPv4 or IPv6 address in text form. */
static bool
client_addr_valid(const char *v, size_t len)
{
    char buf[ENVELOPE_CLIENT_ADDR_MAX + 1];
    unsigned char bin[16];

    if (len == 0 || len > ENVELOPE_CLIENT_ADDR_MAX)
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1;
}

/* client_name_valid - a host name as an MTA reports it. */
static bool
client_name_valid(const char *v, size_t len)
{
    return name_valid(v, len, ENVELOPE_HOST_MAX);
}

/* helo_char_ok - a byte a stored HELO argument may hold. */
static bool
helo_char_ok(char ch)
{
    return ch >= 0x21 && ch <= 0x7e && ch != '(' && ch != ')' && ch != '\\';
}

static bool
helo_valid(const char *v, size_t len)
{
    size_t i;

    if (len == 0 || len > ENVELOPE_HOST_MAX)
        return false;
    for (i = 0; i < len; i++)
        if (!helo_char_ok(v[i]))
            return false;
    return true;
}

void
envelope_set_client(struct envelope *e, const char *addr, const char *name, const char *helo)
{
    size_t i;

    e->client_addr[0] = e->client_name[0] = e->helo[0] = '\0';
    if (addr != NULL && client_addr_valid(addr, strlen(addr)))
        (void)str_copy(e->client_addr, sizeof(e->client_addr), addr);
    if (name != NULL && client_name_valid(name, strlen(name)))
        (void)str_copy(e->client_name, sizeof(e->client_name), name);
    for (i = 0; helo != NULL && helo[i] != '\0' && i < ENVELOPE_HOST_MAX; i++)
        e->helo[i] = helo_char_ok(helo[i]) ? helo[i] : '?';
    e->helo[i] = '\0';
}

/* format_check - what envelope_format needs before it writes anything. */
static int
format_check(const struct envelope *e, struct errbuf *err)
{
    const char *why;
    if (!customer_name_valid(e->customer, &why)) {
        errbuf_set(err, "bad customer name '%s': %s", e->customer, why);
        return -1;
    }
    if (e->arrival <= 0) {
        errbuf_set(err, "envelope has no arrival time");
        return -1;
    }
    if (e->queue_id[0] != '\0' && !queue_id_valid(e->queue_id, strlen(e->queue_id))) {
        errbuf_set(err, "bad queue id '%s'", e->queue_id);
        return -1;
    }
    if ((e->client_addr[0] != '\0' && !client_addr_valid(e->client_addr, strlen(e->client_addr)))
        || (e->client_name[0] != '\0' && !client_name_valid(e->client_name, strlen(e->client_name)))
        || (e->helo[0] != '\0' && !helo_valid(e->helo, strlen(e->helo)))) {
        errbuf_set(err, "bad client fields");
        return -1;
    }
    if (e->sender == NULL || e->mail_params == NULL) {
        errbuf_set(err, "envelope has no sender");
        return -1;
    }
    if (e->nrcpt == 0) {
        errbuf_set(err, "envelope has no recipients");
        return -1;
    }
    return 0;
}

/* out_addr - append one Sender/Rcpt line; the caller sized the buffer. */
static int
out_addr(char *buf, size_t size, size_t *off, const char *field, const char *params,
         const char *addr)
{
    if (str_printf(buf + *off, size - *off, FIELD_PREFIX "%s: %s%s<%s>\n", field, params,
                   *params ? " " : "", addr) < 0)
        return -1;
    *off += strlen(buf + *off);
    return 0;
}

/* out_opt - append "X-Autoturn-<name>: value" when value is set. */
static int
out_opt(char *buf, size_t size, size_t *off, const char *name, const char *value)
{
    if (value[0] == '\0')
        return 0;
    if (str_printf(buf + *off, size - *off, FIELD_PREFIX "%s: %s\n", name, value) < 0)
        return -1;
    *off += strlen(buf + *off);
    return 0;
}

static int
out_fixed(const struct envelope *e, char *buf, size_t size, size_t *off)
{
    if (str_printf(buf, size, FIELD_PREFIX "Version: " VERSION_TEXT "\n"
                   FIELD_PREFIX "Customer: %s\n" FIELD_PREFIX "Arrival: %lld\n",
                   e->customer, (long long)e->arrival) < 0)
        return -1;
    *off = strlen(buf);
    if (out_opt(buf, size, off, "Queue-Id", e->queue_id) < 0
        || out_opt(buf, size, off, "Client-Addr", e->client_addr) < 0
        || out_opt(buf, size, off, "Client-Name", e->client_name) < 0
        || out_opt(buf, size, off, "Helo", e->helo) < 0)
        return -1;
    return 0;
}

/* format_size - an upper bound of the formatted length, NUL included. */
static size_t
format_size(const struct envelope *e)
{
    size_t size = 384 + ENVELOPE_QUEUEID_MAX + CUSTOMER_NAME_MAX + ENVELOPE_CLIENT_ADDR_MAX
                  + 2 * ENVELOPE_HOST_MAX, i;

    size += strlen(e->sender) + strlen(e->mail_params) + 32;
    for (i = 0; i < e->nrcpt; i++)
        size += strlen(e->rcpt[i].addr) + strlen(e->rcpt[i].params) + 32;
    return size;
}

int
envelope_format(const struct envelope *e, char **buf_r, size_t *len_r, struct errbuf *err)
{
    size_t size, off = 0, i;
    char *buf;
    int rc = -1;

    *buf_r = NULL;
    *len_r = 0;
    if (format_check(e, err) < 0)
        return -1;
    size = format_size(e);
    if ((buf = malloc(size)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    if (out_fixed(e, buf, size, &off) < 0 ||
        out_addr(buf, size, &off, "Sender", e->mail_params, e->sender) < 0)
        goto out;
    for (i = 0; i < e->nrcpt; i++)
        if (out_addr(buf, size, &off, "Rcpt", e->rcpt[i].params, e->rcpt[i].addr) < 0)
            goto out;
    if (str_printf(buf + off, size - off, FIELD_PREFIX "End:\n") < 0)
        goto out;
    *len_r = off + strlen(buf + off);
    *buf_r = buf;
    buf = NULL;
    rc = 0;
out:
    if (rc < 0)
        errbuf_set(err, "envelope does not fit");    /* cannot happen with valid fields */
    x_free(buf);
    return rc;
}

/* --- parsing --- */

/* line_check - NUL and control characters of one line (no CR LF). */
static const char *
line_check(const char *line, size_t len)
{
    size_t i;

    if (memchr(line, '\0', len) != NULL)
        return "NUL byte";
    for (i = 0; i < len; i++)
        if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
            return "control character";
    return NULL;
}

/* field_lookup - the field named by line[0..len), or -1. */
static int
field_lookup(const char *name, size_t len)
{
    size_t plen = strlen(FIELD_PREFIX);
    size_t i;

    if (len <= plen || memcmp(name, FIELD_PREFIX, plen) != 0)
        return -1;
    for (i = 0; i < ARRAY_LEN(field_names); i++)
        if (strlen(field_names[i]) == len - plen &&
            memcmp(name + plen, field_names[i], len - plen) == 0)
            return (int)i;
    return -1;
}

/* parse_params - the blank-separated PARAM tokens before the address,
 * re-joined with single spaces into av->params; *p is left at '<'. */
static const char *
parse_params(const char **p, const char *end, struct addr_value *av)
{
    size_t off = 0, len;
    const char *tok;

    av->params[0] = '\0';
    for (;;) {
        while (*p < end && is_blank(**p))
            (*p)++;
        if (*p == end)
            return "missing <address>";
        if (**p == '<')
            return NULL;
        for (tok = *p; *p < end && !is_blank(**p); (*p)++)
            ;
        len = (size_t)(*p - tok);
        if (!param_check(tok, len))
            return "bad parameter";
        if (off + len + (off ? 1 : 0) > ENVELOPE_PARAMS_MAX)
            return "parameters too long";
        if (off)
            av->params[off++] = ' ';
        memcpy(av->params + off, tok, len);
        av->params[off += len] = '\0';
    }
}

/* parse_addr_value - "[PARAM ...] <addr>": addr runs from the '<' that
 * begins a token to the last '>' of the line, the last non-blank byte. */
static const char *
parse_addr_value(const char *v, size_t len, bool empty_ok, struct addr_value *av)
{
    const char *p = v, *end = v + len, *why;
    size_t i;

    for (i = 0; i < len && !(v[i] == '<' && (i == 0 || is_blank(v[i - 1]))); i++)
        ;
    if (i == len)
        return "missing <address>";
    if ((why = parse_params(&p, end, av)) != NULL)
        return why;
    while (end > p && is_blank(end[-1]))
        end--;
    if (end - p < 2 || end[-1] != '>')
        return "missing '>' at end of address";
    av->addr = p + 1;
    av->addr_len = (size_t)(end - p - 2);
    return addr_check(av->addr, av->addr_len, empty_ok);
}

/* parse_arrival - decimal seconds since the epoch, > 0. */
static int
parse_arrival(const char *v, size_t len, time_t *t_r)
{
    long long t = 0;
    size_t i;

    if (len == 0 || len > ARRIVAL_DIGITS_MAX)
        return -1;
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        t = t * 10 + (v[i] - '0');
    }
    if (t <= 0)
        return -1;
    *t_r = (time_t)t;
    return 0;
}

/* store_addr - parse a Sender/Rcpt value and add it to e. */
static int
store_addr(struct envelope *e, enum field f, const char *v, size_t len, struct errbuf *err)
{
    const char *what = f == F_SENDER ? "sender" : "recipient", *why;
    struct addr_value av;
    char *addr;
    int rc;

    if ((why = parse_addr_value(v, len, f == F_SENDER, &av)) != NULL) {
        errbuf_set(err, "line %u: bad %s: %s", e->lines_seen, what, why);
        return -1;
    }
    if (f == F_RCPT && e->nrcpt >= ENVELOPE_RCPT_MAX) {
        errbuf_set(err, "line %u: too many recipients (max %d)", e->lines_seen,
                   ENVELOPE_RCPT_MAX);
        return -1;
    }
    if ((addr = x_strndup(av.addr, av.addr_len)) == NULL) {
        errbuf_set(err, "out of memory");
        return -1;
    }
    if (f == F_SENDER)
        rc = envelope_set_sender(e, addr, av.params, err);
    else
        rc = envelope_add_rcpt(e, addr, av.params, err);
    x_free(addr);
    return rc;    /* validated above: only ENOMEM is left */
}

/* check_end - the envelope as a whole, when X-Autoturn-End: is seen. */
static int
check_end(struct envelope *e, const char *v, size_t len, struct errbuf *err)
{
    static const enum field need[] = { F_CUSTOMER, F_ARRIVAL, F_SENDER };
    size_t i;

    while (len > 0 && is_blank(v[len - 1]))
        len--;
    if (len > 0) {
        errbuf_set(err, "line %u: text after " FIELD_PREFIX "End:", e->lines_seen);
        return -1;
    }
    for (i = 0; i < ARRAY_LEN(need); i++)
        if (!(e->fields_seen & (1u << need[i]))) {
            errbuf_set(err, "line %u: missing " FIELD_PREFIX "%s", e->lines_seen,
                       field_names[need[i]]);
            return -1;
        }
    if (e->nrcpt == 0) {
        errbuf_set(err, "line %u: no recipients", e->lines_seen);
        return -1;
    }
    return 1;
}

/* store_text - one of the optional client fields, checked by valid(). */
static int
store_text(struct envelope *e, const char *what, bool (*valid)(const char *, size_t),
           char *dst, size_t size, const char *v, size_t len, struct errbuf *err)
{
    if (!valid(v, len) || len >= size) {
        errbuf_set(err, "line %u: bad %s '%.*s'", e->lines_seen, what, len > 64 ? 64 : (int)len, v);
        return -1;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

/* store_simple - Customer, Arrival, Queue-Id, Client-Addr, Client-Name, Helo. */
static int
store_simple(struct envelope *e, enum field f, const char *v, size_t len, struct errbuf *err)
{
    char tmp[CUSTOMER_NAME_MAX + 1];
    const char *why = "too long";

    while (len > 0 && is_blank(v[len - 1]))
        len--;
    if (f == F_CLIENT_ADDR)
        return store_text(e, "client address", client_addr_valid, e->client_addr,
                          sizeof(e->client_addr), v, len, err);
    if (f == F_CLIENT_NAME)
        return store_text(e, "client name", client_name_valid, e->client_name,
                          sizeof(e->client_name), v, len, err);
    if (f == F_HELO)
        return store_text(e, "HELO name", helo_valid, e->helo, sizeof(e->helo), v, len, err);
    if (f == F_ARRIVAL) {
        if (parse_arrival(v, len, &e->arrival) == 0)
            return 0;
        errbuf_set(err, "line %u: bad arrival time '%.*s'", e->lines_seen, (int)len, v);
    } else if (f == F_QUEUE_ID) {
        if (queue_id_valid(v, len)) {
            memcpy(e->queue_id, v, len);
            e->queue_id[len] = '\0';
            return 0;
        }
        errbuf_set(err, "line %u: bad queue id '%.*s'", e->lines_seen, (int)len, v);
    } else {
        if (len < sizeof(tmp)) {
            memcpy(tmp, v, len);
            tmp[len] = '\0';
            if (customer_name_valid(tmp, &why))
                return str_copy(e->customer, sizeof(e->customer), tmp);
        }
        errbuf_set(err, "line %u: bad customer name '%.*s': %s", e->lines_seen, (int)len, v,
                   why);
    }
    return -1;
}

/* parse_field - one "X-Autoturn-Name: value" line (already checked). */
static int
parse_field(struct envelope *e, const char *line, size_t len, struct errbuf *err)
{
    const char *colon = memchr(line, ':', len), *v;
    size_t vlen;
    int f = colon ? field_lookup(line, (size_t)(colon - line)) : -1;

    if (e->lines_seen == 1 && f != F_VERSION) {
        errbuf_set(err, "line 1: missing " FIELD_PREFIX "Version");
        return -1;
    }
    if (len == 0) {
        errbuf_set(err, "line %u: empty line", e->lines_seen);
        return -1;
    }
    if (colon == NULL) {
        errbuf_set(err, "line %u: missing ':'", e->lines_seen);
        return -1;
    }
    if (f < 0) {
        errbuf_set(err, "line %u: unknown field '%.*s'", e->lines_seen,
                   (int)(colon - line), line);
        return -1;
    }
    if (f != F_RCPT && (e->fields_seen & (1u << f))) {
        errbuf_set(err, "line %u: duplicate " FIELD_PREFIX "%s", e->lines_seen, field_names[f]);
        return -1;
    }
    e->fields_seen |= 1u << f;
    for (v = colon + 1; v < line + len && is_blank(*v); v++)
        ;
    vlen = (size_t)(line + len - v);
    switch (f) {
    case F_VERSION:
        while (vlen > 0 && is_blank(v[vlen - 1]))
            vlen--;
        if (vlen == strlen(VERSION_TEXT) && memcmp(v, VERSION_TEXT, vlen) == 0)
            return 0;
        errbuf_set(err, "line %u: unsupported version '%.*s'", e->lines_seen, (int)vlen, v);
        return -1;
    case F_SENDER:
    case F_RCPT:
        return store_addr(e, (enum field)f, v, vlen, err);
    case F_END:
        return check_end(e, v, vlen, err);
    default:
        return store_simple(e, (enum field)f, v, vlen, err);
    }
}

int
envelope_parse_line(struct envelope *e, const char *line, size_t len, struct errbuf *err)
{
    const char *why;

    e->lines_seen++;
    if (e->fields_seen & (1u << F_END)) {
        errbuf_set(err, "line %u: envelope already complete", e->lines_seen);
        return -1;
    }
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > ENVELOPE_LINE_MAX - 1)
        why = "line too long";
    else {
        if (len > 0 && line[len - 1] == '\r')
            len--;
        why = line_check(line, len);
    }
    if (why != NULL) {
        errbuf_set(err, "line %u: %s", e->lines_seen, why);
        return -1;
    }
    return parse_field(e, line, len, err);
}

int
envelope_parse(struct envelope *e, const char *buf, size_t len, size_t *hdr_len_r,
               struct errbuf *err)
{
    size_t off = 0, max, linelen;
    const char *lf;
    int rc;

    *hdr_len_r = 0;
    while (off < len) {
        max = len - off < ENVELOPE_LINE_MAX ? len - off : ENVELOPE_LINE_MAX;
        if ((lf = memchr(buf + off, '\n', max)) == NULL) {
            if (max < ENVELOPE_LINE_MAX)
                break;
            linelen = ENVELOPE_LINE_MAX;    /* no LF: reported as too long */
        } else
            linelen = (size_t)(lf - (buf + off)) + 1;
        if ((rc = envelope_parse_line(e, buf + off, linelen, err)) != 0) {
            if (rc == 1)
                *hdr_len_r = off + linelen;
            return rc < 0 ? -1 : 0;
        }
        off += linelen;
    }
    errbuf_set(err, "envelope not terminated");
    return -1;
}

int
envelope_param(const char *params, const char *keyword, char *val, size_t size)
{
    size_t klen = strlen(keyword), len;
    const char *p = params, *end, *eq;

    while (*p != '\0') {
        while (*p == ' ')
            p++;
        end = p + strcspn(p, " ");
        eq = memchr(p, '=', (size_t)(end - p));
        len = (size_t)((eq ? eq : end) - p);
        if (len == klen && len > 0 && strncasecmp(p, keyword, klen) == 0) {
            eq = eq ? eq + 1 : end;
            if ((size_t)(end - eq) >= size)
                return -1;
            memcpy(val, eq, (size_t)(end - eq));
            val[end - eq] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}
