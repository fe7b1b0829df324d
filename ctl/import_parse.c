/* SPDX-License-Identifier: ISC */
/*
 * import_parse.c - the line formats of the recipes "autoturnctl import"
 * reads (see import_parse.h). Pure functions: no I/O, no state.
 *
 * The grammars follow the programs that read these files: qmail-send
 * (virtualdomains), tcprules from ucspi-tcp (tcp.smtp; open-smtp is what
 * vpopmail's update_rules() feeds it, minus the TAB and time), ZMailer's
 * router (routes) and serialmail's serialsmtp (the first two lines of a
 * maildir message).
 *
 * SECURITY: input from the old system's files; lines are NUL-terminated
 * and bounded by the caller (IMP_LINE_MAX), the message head by
 * IMP_HEAD_MAX per line; text quoted back in errors is cut and made
 * printable.
 */
#include <stdlib.h>

#include "addr.h"
#include "import_parse.h"
#include "util.h"

#define QUOTE_MAX 120            /* bytes of input quoted in an error */

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* trim_end - strip trailing blanks and a CR. */
static void
trim_end(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* skip_blanks - the first non-blank at or after s. */
static char *
skip_blanks(char *s)
{
    while (is_blank(*s))
        s++;
    return s;
}

/* fail - set *why_r and return -1. */
static int
fail(const char **why_r, const char *why)
{
    *why_r = why;
    return -1;
}

static bool
has_blank(const char *s)
{
    return strpbrk(s, " \t") != NULL;
}

int
imp_parse_vdomain(char *line, char **domain_r, char **prefix_r, const char **why_r)
{
    char *colon;

    trim_end(line);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    if ((colon = strchr(line, ':')) == NULL)
        return fail(why_r, "not DOMAIN:PREFIX (no ':')");
    *colon = '\0';
    if (colon[1] == '\0')
        return fail(why_r, "not DOMAIN:PREFIX (nothing after ':')");
    if (has_blank(line) || has_blank(colon + 1))
        return fail(why_r, "not DOMAIN:PREFIX (blank inside)");
    *domain_r = line;
    *prefix_r = colon + 1;
    return 1;
}

int
imp_parse_password(char *line, char **domain_r, char **user_r, char **password_r,
                   char **maildir_r, const char **why_r)
{
    char *c1, *c2, *c3;

    trim_end(line);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    if ((c1 = strchr(line, ':')) == NULL || (c2 = strchr(c1 + 1, ':')) == NULL ||
        (c3 = strrchr(line, ':')) == c2)
        return fail(why_r, "missing field: expected DOMAIN:USER:PASSWORD:MAILDIR");
    *c1 = *c2 = *c3 = '\0';
    if (line[0] == '\0')
        return fail(why_r, "empty DOMAIN field");
    if (c1[1] == '\0')
        return fail(why_r, "empty USER field");
    if (c2[1] == '\0')
        return fail(why_r, "empty PASSWORD field");
    if (c3[1] == '\0')
        return fail(why_r, "empty MAILDIR field");
    *domain_r = line;
    *user_r = c1 + 1;
    *password_r = c2 + 1;
    *maildir_r = c3 + 1;
    return 1;
}

/* next_word - NUL-terminate the word at *s, return it; *s moves past it. */
static char *
next_word(char **s)
{
    char *w = skip_blanks(*s), *e = w;

    while (*e != '\0' && !is_blank(*e))
        e++;
    *s = *e != '\0' ? e + 1 : e;
    *e = '\0';
    return w;
}

int
imp_parse_route(char *line, char **key_r, char **channel_r, char **hosts_r, const char **why_r)
{
    char *s, *key, *val, *bang, *rest;

    trim_end(line);
    s = skip_blanks(line);
    if (*s == '\0' || *s == '#')
        return 0;
    key = next_word(&s);
    val = next_word(&s);
    rest = skip_blanks(s);
    if (*val == '\0')
        return fail(why_r, "missing CHANNEL!HOST after the domain");
    if (*rest != '\0' && *rest != '#')
        return fail(why_r, "unexpected text after CHANNEL!HOST");
    if ((bang = strchr(val, '!')) == NULL)
        return fail(why_r, "expected CHANNEL!HOST after the domain");
    *bang = '\0';
    if (val[0] == '\0')
        return fail(why_r, "empty channel before '!'");
    if (bang[1] == '\0')
        return fail(why_r, "empty host after '!'");
    *key_r = key;
    *channel_r = val;
    *hosts_r = bang + 1;
    return 1;
}

/* find_instruction - the first ':' followed by "allow" or "deny" (tcprules). */
static char *
find_instruction(char *line)
{
    char *c;

    for (c = strchr(line, ':'); c != NULL; c = strchr(c + 1, ':'))
        if (strncmp(c + 1, "allow", 5) == 0 || strncmp(c + 1, "deny", 4) == 0)
            return c;
    return NULL;
}

/* parse_vars - ",NAME=qVALUEq" settings after the instruction. */
static int
parse_vars(char *s, struct imp_tcprule *r, const char **why_r)
{
    static const char bad[] = "bad variable setting after allow/deny (expected ,NAME=\"VALUE\")";
    char *eq, *end, q;

    while (*s != '\0') {
        if (*s != ',' || (eq = strchr(s, '=')) == NULL || eq[1] == '\0')
            return fail(why_r, bad);
        q = eq[1];
        if ((end = strchr(eq + 2, q)) == NULL)
            return fail(why_r, bad);
        *eq = *end = '\0';
        if (strcmp(s + 1, "RELAYCLIENT") == 0) {
            r->relayclient = true;
            r->relay_value = eq + 2;
        }
        s = end + 1;
    }
    return 0;
}

int
imp_parse_tcprule(char *line, struct imp_tcprule *r, const char **why_r)
{
    char *colon, *s;

    memset(r, 0, sizeof(*r));
    trim_end(line);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    if ((colon = find_instruction(line)) == NULL)
        return fail(why_r, "not a tcprules line (no ':allow' or ':deny')");
    *colon = '\0';
    r->addr = line;
    r->allow = colon[1] == 'a';
    s = colon + 1 + (r->allow ? 5 : 4);
    return parse_vars(s, r, why_r) < 0 ? -1 : 1;
}

int
imp_parse_open_smtp(char *line, struct imp_tcprule *r, char **time_r, const char **why_r)
{
    char *tab;
    int rc;

    trim_end(line);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    if ((tab = strchr(line, '\t')) == NULL)
        return fail(why_r, "missing the TAB and the time of the login");
    *tab = '\0';
    if ((rc = imp_parse_tcprule(line, r, why_r)) <= 0)
        return rc < 0 ? -1 : fail(why_r, "missing the rule before the TAB");
    *time_r = skip_blanks(tab + 1);
    return 1;
}

/* --- tcprules addresses --- */

/* octet - 1..3 digits without a leading zero; advances *s. */
static int
octet(const char **s, unsigned *v)
{
    const char *p = *s;

    *v = 0;
    while (*p >= '0' && *p <= '9' && p - *s < 4)
        *v = *v * 10 + (unsigned)(*p++ - '0');
    if (p == *s || p - *s > 3 || (**s == '0' && p - *s > 1))
        return -1;
    *s = p;
    return 0;
}

/* cover - networks for the values lo..hi of byte k of base (prefix bits
 * after that byte), as aligned power-of-two blocks. */
static int
cover(struct ipaddr *base, unsigned k, unsigned lo, unsigned hi, struct ipnet *v, size_t max,
      size_t *n)
{
    unsigned size, bits;

    while (lo <= hi) {
        for (size = 256, bits = 8; lo % size != 0 || lo + size - 1 > hi; size /= 2)
            bits--;
        if (*n >= max)
            return -1;
        base->bytes[k] = (uint8_t)lo;
        v[*n].addr = *base;
        v[*n].prefix = 8 * (k + 1) - bits;
        (*n)++;
        lo += size;
    }
    return 0;
}

/* ipv4_rule - "1.2.3.4", "1.2.", "1.2.3.4-10", "1.2.3-5." */
static int
ipv4_rule(const char *s, struct ipnet *v, size_t max, size_t *n_r, const char **why_r)
{
    static const char bad[] = "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9";
    struct ipaddr base = { AF_INET, {0} };
    unsigned k, lo, hi;

    for (k = 0;; k++) {
        if (k == 4 || octet(&s, &lo) < 0 || lo > 255)
            return fail(why_r, bad);
        hi = lo;
        if (*s == '-') {
            s++;
            if (octet(&s, &hi) < 0 || (*s != '\0' && (*s != '.' || s[1] != '\0')))
                return fail(why_r, bad);
            if (hi < lo)
                return fail(why_r, "empty range (the end is below the start)");
            if (hi > 255)
                hi = 255;                  /* as tcprules does */
        }
        if (*s == '\0' && k != 3)
            return fail(why_r, "an incomplete address never matches (a prefix ends in '.')");
        if (*s == '\0' || (*s == '.' && s[1] == '\0'))
            break;
        if (*s++ != '.' || hi != lo)
            return fail(why_r, bad);
        base.bytes[k] = (uint8_t)lo;
    }
    if (*s == '.' && k == 3)
        return fail(why_r, "a four-part prefix never matches (drop the last '.')");
    if (cover(&base, k, lo, hi, v, max, n_r) < 0)
        return fail(why_r, "too many networks");
    return 0;
}

int
imp_tcprule_nets(const char *addr, struct ipnet *v, size_t max, size_t *n_r, const char **why_r)
{
    struct ipaddr a;
    const char *e;

    *n_r = 0;
    if (addr[0] == '\0')
        return fail(why_r, "the default rule (every address)");
    if (strchr(addr, '=') != NULL)
        return fail(why_r, "a host name rule (=HOST)");
    if (strchr(addr, '@') != NULL)
        return fail(why_r, "a TCPREMOTEINFO rule (USER@ADDRESS)");
    if (strchr(addr, ':') == NULL)
        return ipv4_rule(addr, v, max, n_r, why_r);
    if (ipaddr_parse(addr, &a, &e) < 0)
        return fail(why_r, "not an IPv4 or IPv6 address");
    if (max == 0)
        return fail(why_r, "too many networks");
    v[0].addr = a;
    v[0].prefix = ipaddr_bits(&a);
    *n_r = 1;
    return 0;
}

/* --- the head of a qmail-local maildir message --- */

/* quote - s (n bytes) cut and made printable for an error text. */
static const char *
quote(const char *s, size_t n, char *buf, size_t size)
{
    size_t i;

    if (n > QUOTE_MAX)
        n = QUOTE_MAX;
    for (i = 0; i < n && i + 1 < size; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* head_line - the line at *p (bounded), without its LF/CRLF; advances *p. */
static int
head_line(const char **p, const char *end, const char **line_r, size_t *len_r, bool *crlf_r)
{
    size_t avail = (size_t)(end - *p);
    const char *lf = memchr(*p, '\n', avail < IMP_HEAD_MAX ? avail : IMP_HEAD_MAX);

    if (lf == NULL)
        return -1;
    *line_r = *p;
    *len_r = (size_t)(lf - *p);
    *crlf_r = *len_r > 0 && lf[-1] == '\r';
    if (*crlf_r)
        (*len_r)--;
    *p = lf + 1;
    return 0;
}

static bool
has_control(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static int
copy_addr(const char *s, size_t n, char *out, size_t size, const char *what, struct errbuf *err)
{
    if (n >= size) {
        errbuf_set(err, "%s address longer than %zu bytes", what, size - 1);
        return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int
imp_parse_head(const char *buf, size_t len, const char *prefix, char *sender, char *rcpt,
               size_t size, size_t *skip_r, bool *crlf_r, struct errbuf *err)
{
    static const char rp[] = "Return-Path: <", dt[] = "Delivered-To: ";
    const char *p = buf, *end = buf + len, *l;
    size_t n, plen = strlen(prefix);
    char q[QUOTE_MAX + 1];
    bool crlf2;

    if (head_line(&p, end, &l, &n, crlf_r) < 0 || n < sizeof(rp) || memcmp(l, rp, sizeof(rp) - 1) ||
        l[n - 1] != '>') {
        errbuf_set(err, "first line is not 'Return-Path: <SENDER>' (qmail-local writes it)");
        return -1;
    }
    if (has_control(l, n)) {
        errbuf_set(err, "control character in the Return-Path line");
        return -1;
    }
    if (copy_addr(l + sizeof(rp) - 1, n - sizeof(rp), sender, size, "sender", err) < 0)
        return -1;
    if (head_line(&p, end, &l, &n, &crlf2) < 0 || n < sizeof(dt) - 1 ||
        memcmp(l, dt, sizeof(dt) - 1) != 0) {
        errbuf_set(err, "second line is not 'Delivered-To: RECIPIENT' (qmail-local writes it)");
        return -1;
    }
    if (has_control(l, n)) {
        errbuf_set(err, "control character in the Delivered-To line");
        return -1;
    }
    l += sizeof(dt) - 1;
    n -= sizeof(dt) - 1;
    if (n < plen || memcmp(l, prefix, plen) != 0) {
        errbuf_set(err, "Delivered-To '%s' lacks the prefix '%s'", quote(l, n, q, sizeof(q)),
                   prefix);
        return -1;
    }
    if (n == plen) {
        errbuf_set(err, "Delivered-To '%s' has no recipient after the prefix", quote(l, n, q, sizeof(q)));
        return -1;
    }
    if (copy_addr(l + plen, n - plen, rcpt, size, "recipient", err) < 0)
        return -1;
    *skip_r = (size_t)(p - buf);
    return 0;
}
