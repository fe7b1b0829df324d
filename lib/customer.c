/* SPDX-License-Identifier: ISC */
/*
 * customer.c - the customer record: defaults, name and domain rules, and
 * the record's encoding inside the compiled table. Owns no state.
 *
 * Encoding: text lines "key=value\n", every value a validated token (no
 * blank except between trigger words, no '=' or newline in a name):
 *   name= delivery= host= port= tls= trigger= relay= secret=
 *   max-messages= max-bytes= max-age=     (each exactly once)
 *   domain= address=                      (repeated, in source order)
 * host= and secret= may be empty.
 *
 * SECURITY: customer_decode reads records from the table file; it is
 * strict (unknown or repeated field, bad value, missing field: error) and
 * bounded (CUSTOMER_RECORD_MAX, CUSTOMER_DOMAINS_MAX, CUSTOMER_ADDRS_MAX).
 */
#include <errno.h>
#include <stdlib.h>

#include "customer.h"
#include "units.h"
#include "util.h"

#define FIELD_TEXT_MAX 512   /* one decoded value; longest is a domain */

/* --- names and domains --- */

static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '+' || c == '-';
}

bool
customer_name_valid(const char *name, const char **error_r)
{
    const char *why = NULL;
    size_t i, len = strlen(name);

    if (len == 0)
        why = "empty";
    else if (len > CUSTOMER_NAME_MAX)
        why = "longer than 64 bytes";
    for (i = 0; why == NULL && i < len; i++) {
        if (name[i] == '/')
            why = "contains '/'";
        else if (!name_char(name[i]))
            why = "contains a character other than A-Z a-z 0-9 . _ + -";
    }
    if (why == NULL && name[0] == '.')
        why = "starts with '.'";
    if (why == NULL && name[0] == '-')
        why = "starts with '-'";
    if (why != NULL && error_r != NULL)
        *error_r = why;
    return why == NULL;
}

static bool
label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '-' || c == '_' || c >= 0x80;
}

/* check_labels - every label 1..63 valid bytes, no '-' at either end. */
static const char *
check_labels(const char *d, size_t len)
{
    size_t start = 0, i;

    for (i = 0; i <= len; i++) {
        if (i < len && d[i] != '.') {
            if (!label_char((unsigned char)d[i]))
                return "invalid character";
            continue;
        }
        if (i == start)
            return "empty label";
        if (i - start > 63)
            return "label longer than 63 bytes";
        if (d[start] == '-' || d[i - 1] == '-')
            return "label starts or ends with '-'";
        start = i + 1;
    }
    return NULL;
}

int
domain_normalise(const char *in, char *out, size_t size, const char **error_r)
{
    size_t len = strlen(in);
    const char *why = NULL;

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0)
        why = "empty";
    else if (len > DOMAIN_MAX)
        why = "longer than 253 bytes";
    else
        why = check_labels(in, len);
    if (why == NULL && len >= size)
        why = "longer than 253 bytes";
    if (why != NULL) {
        if (error_r != NULL)
            *error_r = why;
        return -1;
    }
    memcpy(out, in, len);
    out[len] = '\0';
    str_lower(out);
    return 0;
}

/* --- the record in memory --- */

struct customer *
customer_new(void)
{
    struct customer *c = x_calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->delivery = DELIVERY_CONNECTING_IP;
    c->port = 25;
    c->tls = TLS_MAY;
    c->triggers = TRIGGER_CONNECT | TRIGGER_ETRN;
    return c;
}

void
customer_free(struct customer *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->ndomains; i++)
        x_free(c->domains[i]);
    x_free(c->domains);
    x_free(c->addrs);
    x_free(c);
}

/* grow - make room for one more element when n is a power of two. */
static int
grow(void **arr, size_t n, size_t elem)
{
    void *p;

    if (n != 0 && (n & (n - 1)) != 0)
        return 0;
    if ((p = x_reallocarray(*arr, n == 0 ? 1 : 2 * n, elem)) == NULL)
        return -1;
    *arr = p;
    return 0;
}

int
customer_add_domain(struct customer *c, const char *domain)
{
    char *copy;

    if (grow((void **)&c->domains, c->ndomains, sizeof(*c->domains)) < 0)
        return -1;
    if ((copy = x_strdup(domain)) == NULL)
        return -1;
    c->domains[c->ndomains++] = copy;
    return 0;
}

int
customer_add_addr(struct customer *c, const struct ipnet *net)
{
    if (grow((void **)&c->addrs, c->naddrs, sizeof(*c->addrs)) < 0)
        return -1;
    c->addrs[c->naddrs++] = *net;
    return 0;
}

/* --- names of enumerations --- */

static const char *const delivery_names[] = {"connecting-ip", "host", "mx"};
static const char *const tls_names[] = {"none", "may", "encrypt"};
static const struct {
    const char *name;
    unsigned bit;
} trigger_names[] = {{"connect", TRIGGER_CONNECT}, {"etrn", TRIGGER_ETRN}, {"atrn", TRIGGER_ATRN}};

const char *
delivery_mode_name(enum delivery_mode m)
{
    return (unsigned)m < ARRAY_LEN(delivery_names) ? delivery_names[m] : "?";
}

const char *
tls_policy_name(enum tls_policy p)
{
    return (unsigned)p < ARRAY_LEN(tls_names) ? tls_names[p] : "?";
}

const char *
triggers_format(unsigned triggers, char *buf, size_t size)
{
    size_t i, used = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    for (i = 0; i < ARRAY_LEN(trigger_names); i++) {
        if ((triggers & trigger_names[i].bit) == 0)
            continue;
        if (str_printf(buf + used, size - used, "%s%s", used ? " " : "",
                       trigger_names[i].name) < 0)
            break;
        used += strlen(buf + used);
    }
    if (buf[0] == '\0' && str_copy(buf, size, "none") < 0)
        buf[0] = '\0';
    return buf;
}

/* --- encoding --- */

struct outbuf {
    char *data;
    size_t len, cap;
    int failed;
};

static void
out_add(struct outbuf *o, const char *key, const char *val)
{
    size_t klen = strlen(key), vlen = strlen(val);
    size_t need = klen + vlen + 2;      /* "key=val\n"; no NUL is kept */
    char *p;

    if (o->failed)
        return;
    if (o->len + need > CUSTOMER_RECORD_MAX) {
        o->failed = E2BIG;
        return;
    }
    if (o->len + need > o->cap) {
        size_t cap = o->cap ? o->cap : 256;

        while (cap < o->len + need)
            cap *= 2;
        if ((p = realloc(o->data, cap)) == NULL) {
            o->failed = ENOMEM;
            return;
        }
        o->data = p;
        o->cap = cap;
    }
    p = o->data + o->len;
    memcpy(p, key, klen);
    p[klen] = '=';
    memcpy(p + klen + 1, val, vlen);
    p[klen + 1 + vlen] = '\n';
    o->len += need;
}

static void
out_u64(struct outbuf *o, const char *key, uint64_t v)
{
    char num[24];

    (void)str_printf(num, sizeof(num), "%llu", (unsigned long long)v);
    out_add(o, key, num);
}

int
customer_encode(const struct customer *c, char **buf_r, size_t *len_r)
{
    struct outbuf o = {0};
    char text[SECRET_TEXT_LEN + IPNET_TEXT_MAX + 1];
    size_t i;

    out_add(&o, "name", c->name);          /* first: custdb checks existence by it */
    out_add(&o, "delivery", delivery_mode_name(c->delivery));
    out_add(&o, "host", c->delivery_host);
    out_u64(&o, "port", c->port);
    out_add(&o, "tls", tls_policy_name(c->tls));
    out_add(&o, "trigger", triggers_format(c->triggers, text, sizeof(text)));
    out_add(&o, "relay", c->relay ? "yes" : "no");
    if (!c->has_secret)
        text[0] = '\0';
    else if (secret_format(&c->secret, text, sizeof(text)) < 0)
        o.failed = EINVAL;
    out_add(&o, "secret", text);
    out_u64(&o, "max-messages", c->max_messages);
    out_u64(&o, "max-bytes", c->max_bytes);
    out_u64(&o, "max-age", c->max_age);
    for (i = 0; i < c->ndomains; i++)
        out_add(&o, "domain", c->domains[i]);
    for (i = 0; i < c->naddrs; i++)
        out_add(&o, "address", ipnet_format(&c->addrs[i], text, sizeof(text)));
    if (o.failed) {
        x_free(o.data);
        errno = o.failed;
        return -1;
    }
    *buf_r = o.data;
    *len_r = o.len;
    return 0;
}

/* --- decoding --- */

enum field {
    F_NAME, F_DELIVERY, F_HOST, F_PORT, F_TLS, F_TRIGGER, F_RELAY, F_SECRET,
    F_MAXMSG, F_MAXBYTES, F_MAXAGE, F_DOMAIN, F_ADDRESS, F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "name", "delivery", "host", "port", "tls", "trigger", "relay", "secret",
    "max-messages", "max-bytes", "max-age", "domain", "address",
};

static int
lookup_word(const char *const *names, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n; i++)      /* the first byte first: most names differ there */
        if (names[i][0] == word[0] && strcmp(names[i], word) == 0)
            return (int)i;
    return -1;
}

/* parse_triggers - "connect etrn" or "none" into bits. */
static int
parse_triggers(const char *val, unsigned *bits)
{
    char copy[FIELD_TEXT_MAX], *word, *save = NULL;
    size_t i;

    *bits = 0;
    if (strcmp(val, "none") == 0)
        return 0;
    if (str_copy(copy, sizeof(copy), val) < 0)
        return -1;
    for (word = strtok_r(copy, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
        for (i = 0; i < ARRAY_LEN(trigger_names); i++)
            if (strcmp(word, trigger_names[i].name) == 0)
                break;
        if (i == ARRAY_LEN(trigger_names))
            return -1;
        *bits |= trigger_names[i].bit;
    }
    return *bits != 0 ? 0 : -1;
}

/* valid_host - a host name, or an IP address literal (IPv6 without []). */
static bool
valid_host(const char *val)
{
    char norm[DOMAIN_MAX + 1];
    struct ipaddr a;
    const char *why;

    if (ipaddr_parse(val, &a, &why) == 0)
        return true;
    return domain_normalise(val, norm, sizeof(norm), &why) == 0 && strcmp(norm, val) == 0;
}

/* valid_rule - a normalised domain, optionally with one leading '.'. */
static bool
valid_rule(const char *val)
{
    char norm[DOMAIN_MAX + 1];
    const char *why, *d = val[0] == '.' ? val + 1 : val;

    return domain_normalise(d, norm, sizeof(norm), &why) == 0 && strcmp(norm, d) == 0;
}

static int
decode_u64(const char *val, uint64_t max, uint64_t *v)
{
    const char *why;

    return units_parse_uint(val, max, v, &why);
}

static int
decode_scalar(struct customer *c, enum field f, const char *val)
{
    uint64_t v;
    int i;

    switch (f) {
    case F_NAME:
        return customer_name_valid(val, NULL) ? str_copy(c->name, sizeof(c->name), val) : -1;
    case F_DELIVERY:
        if ((i = lookup_word(delivery_names, ARRAY_LEN(delivery_names), val)) < 0)
            return -1;
        c->delivery = (enum delivery_mode)i;
        return 0;
    case F_HOST:
        if (val[0] != '\0' && !valid_host(val))
            return -1;
        return str_copy(c->delivery_host, sizeof(c->delivery_host), val);
    case F_PORT:
        if (decode_u64(val, 65535, &v) < 0 || v == 0)
            return -1;
        c->port = (unsigned)v;
        return 0;
    case F_TLS:
        if ((i = lookup_word(tls_names, ARRAY_LEN(tls_names), val)) < 0)
            return -1;
        c->tls = (enum tls_policy)i;
        return 0;
    case F_TRIGGER:
        return parse_triggers(val, &c->triggers);
    case F_RELAY:
        if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
            return -1;
        c->relay = val[0] == 'y';
        return 0;
    default:
        return -1;
    }
}

static int
decode_field(struct customer *c, enum field f, const char *val)
{
    const char *why;
    struct ipnet net;

    switch (f) {
    case F_SECRET:
        c->has_secret = val[0] != '\0';
        return c->has_secret ? secret_parse(val, &c->secret, &why) : 0;
    case F_MAXMSG:
        return decode_u64(val, UINT64_MAX, &c->max_messages);
    case F_MAXBYTES:
        return decode_u64(val, UINT64_MAX, &c->max_bytes);
    case F_MAXAGE:
        return decode_u64(val, UINT64_MAX, &c->max_age);
    case F_DOMAIN:
        if (c->ndomains >= CUSTOMER_DOMAINS_MAX || !valid_rule(val))
            return -1;
        return customer_add_domain(c, val);
    case F_ADDRESS:
        if (c->naddrs >= CUSTOMER_ADDRS_MAX || ipnet_parse(val, &net, &why) < 0)
            return -1;
        return customer_add_addr(c, &net);
    default:
        return decode_scalar(c, f, val);
    }
}

/* decode_line - one "key=value" line (no newline, may hold any byte). */
static int
decode_line(struct customer *c, const char *line, size_t len, unsigned *seen,
            struct errbuf *err)
{
    char key[16], val[FIELD_TEXT_MAX];
    const char *eq = memchr(line, '=', len);
    size_t klen, vlen;
    int f;

    if (eq == NULL || memchr(line, '\0', len) != NULL) {
        errbuf_set(err, "malformed field");
        return -1;
    }
    klen = (size_t)(eq - line);
    vlen = len - klen - 1;
    if (klen >= sizeof(key) || vlen >= sizeof(val)) {
        errbuf_set(err, "field too long");
        return -1;
    }
    memcpy(key, line, klen);
    key[klen] = '\0';
    memcpy(val, eq + 1, vlen);
    val[vlen] = '\0';
    if ((f = lookup_word(field_names, F_COUNT, key)) < 0) {
        errbuf_set(err, "unknown field '%s'", key);
        return -1;
    }
    if (f < F_DOMAIN && (*seen & (1u << f))) {
        errbuf_set(err, "field '%s' repeated", key);
        return -1;
    }
    *seen |= 1u << f;
    if (decode_field(c, (enum field)f, val) < 0) {
        errbuf_set(err, "bad value for field '%s'", key);
        return -1;
    }
    return 0;
}

/* check_whole - fields present and consistent with each other. */
static int
check_whole(const struct customer *c, unsigned seen, struct errbuf *err)
{
    unsigned need = (1u << F_DOMAIN) - 1;
    size_t i;

    for (i = 0; i < F_DOMAIN; i++)
        if ((seen & need & (1u << i)) == 0) {
            errbuf_set(err, "missing field '%s'", field_names[i]);
            return -1;
        }
    if ((c->delivery == DELIVERY_HOST && c->delivery_host[0] == '\0')
        || (c->delivery == DELIVERY_CONNECTING_IP && c->delivery_host[0] != '\0')) {
        errbuf_set(err, "host does not fit delivery %s", delivery_mode_name(c->delivery));
        return -1;
    }
    if ((c->triggers & TRIGGER_ATRN) && !c->has_secret) {
        errbuf_set(err, "trigger atrn without a secret");
        return -1;
    }
    if (c->ndomains == 0 && c->naddrs == 0) {
        errbuf_set(err, "neither domain nor address");
        return -1;
    }
    return 0;
}

int
customer_decode(const void *buf, size_t len, struct customer **c_r, struct errbuf *err)
{
    const char *p = buf, *end = p + len, *nl;
    struct customer *c;
    unsigned seen = 0;

    *c_r = NULL;
    if (len > CUSTOMER_RECORD_MAX) {
        errbuf_set(err, "record too large");
        return -1;
    }
    if ((c = customer_new()) == NULL) {
        errbuf_set_errno(err, "customer record");
        return -1;
    }
    for (; p < end; p = nl + 1) {
        if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
            errbuf_set(err, "record does not end with a newline");
            goto fail;
        }
        if (decode_line(c, p, (size_t)(nl - p), &seen, err) < 0)
            goto fail;
    }
    if (check_whole(c, seen, err) < 0)
        goto fail;
    *c_r = c;
    return 0;
fail:
    customer_free(c);
    return -1;
}
