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
 *
 * Two paths, one behaviour. The fast path (whole_line) takes, at the
 * start of a line, a complete "name=value" line that needs no decision
 * byte by byte: it finds the '=' and the LF 16 or 8 bytes at a time
 * (line_stop, scan_block: control characters, DEL and '=' flagged a block
 * at a time), checks the line length and the attribute count, and
 * stores a kept value with one copy. Anything else (a line split across
 * reads, a tab or another control character, the empty line that ends a
 * request, a limit reached) goes byte by byte through the incremental
 * path (fast_run, take_byte, end_line), which makes every decision and
 * reports every error at the byte where it happens, exactly as if the
 * fast path did not exist. tests/fuzz/fuzz_policy_split.c and
 * test_policy.c check that both paths agree.
 */
#include <stddef.h>
#include <stdint.h>

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

enum { F_REQUEST, F_PROTOCOL_STATE, F_CLIENT_ADDRESS, F_SASL_USERNAME, F_RECIPIENT,
       F_ETRN_DOMAIN, F_POLICY_CONTEXT };
static const struct policy_field fields[] = {
    [F_REQUEST] = FIELD(request),
    [F_PROTOCOL_STATE] = FIELD(protocol_state),
    [F_CLIENT_ADDRESS] = FIELD(client_address),
    [F_SASL_USERNAME] = FIELD(sasl_username),
    [F_RECIPIENT] = FIELD(recipient),
    [F_ETRN_DOMAIN] = FIELD(etrn_domain),
    [F_POLICY_CONTEXT] = FIELD(policy_context),
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

/* field_of - the kept field named name[0..len), or NULL: by length first
 * (memcmp of a constant length compiles to a few compares) */

static inline const struct policy_field *
field_of(const char *name, size_t len)
{
    switch (len) {
    case 7:
        return memcmp(name, "request", 7) == 0 ? &fields[F_REQUEST] : NULL;
    case 9:
        return memcmp(name, "recipient", 9) == 0 ? &fields[F_RECIPIENT] : NULL;
    case 11:
        return memcmp(name, "etrn_domain", 11) == 0 ? &fields[F_ETRN_DOMAIN] : NULL;
    case 13:
        return memcmp(name, "sasl_username", 13) == 0 ? &fields[F_SASL_USERNAME] : NULL;
    case 14:
        if (memcmp(name, "protocol_state", 14) == 0)
            return &fields[F_PROTOCOL_STATE];
        if (memcmp(name, "client_address", 14) == 0)
            return &fields[F_CLIENT_ADDRESS];
        if (memcmp(name, "policy_context", 14) == 0)
            return &fields[F_POLICY_CONTEXT];
        return NULL;
    default:
        return NULL;
    }
}

/* start_value - the name is complete: find the field it fills, if any */

static int
start_value(struct policy_parser *p, struct errbuf *err)
{
    const struct policy_field *f;

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
    if ((f = field_of(p->name, p->namelen)) != NULL) {
        p->field = (char *)&p->req + f->offset;
        p->fieldsize = f->size;
        p->field[0] = '\0';
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
 * '='). */
enum { STOP_VALUE = 1, STOP_NAME = 2 };

/* The scan: BLOCK bytes at a time, scan_block setting bit (i << SHIFT) of
 * *ctl when p[i] is a control character or DEL and of *eq when it is '='.
 * Three ways, one result (each has the unit tests: test_policy,
 * test_policy_words, test_policy_bytes):
 *  - SSE2 (every x86-64): 16 bytes, three compares and two movemasks;
 *  - words (other little-endian machines): 8 bytes in a uint64_t with the
 *    "has a byte below n" and "has a zero byte" tricks; they flag the top
 *    bit of each matching byte, and a false flag can only sit above a true
 *    one (a borrow out of it), so the lowest flag is exact;
 *  - bytes (the rest): one byte, one compare or two.
 * A block that would run past the data is read from a copy filled up with
 * 'A', which is neither. */
#if defined(POLICY_SCAN_BYTES)
#define SCAN_BYTES 1
#elif defined(__SSE2__) && !defined(POLICY_SCAN_WORDS)
#define SCAN_SSE2 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SCAN_WORDS 1
#else
#define SCAN_BYTES 1
#endif

#if defined(SCAN_SSE2)
#include <emmintrin.h>
#define BLOCK 16
#define SHIFT 0

static inline void
scan_block(const char *p, size_t avail, uint64_t *ctl, uint64_t *eq)
{
    char tmp[BLOCK];
    __m128i v, low;

    if (avail >= BLOCK) {
        v = _mm_loadu_si128((const __m128i *)(const void *)p);
    } else {
        memset(tmp, 'A', sizeof(tmp));
        memcpy(tmp, p, avail);
        v = _mm_loadu_si128((const __m128i *)(const void *)tmp);
    }
    /* unsigned v < 0x20: min(v, 0x1f) == v */
    low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    *ctl = (uint32_t)_mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
    *eq = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('=')));
}
#elif defined(SCAN_WORDS)
#define BLOCK 8
#define SHIFT 3
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t
has_byte(uint64_t x, unsigned char b)
{
    uint64_t y = x ^ (ONES * b);

    return (y - ONES) & ~y & HIGHS;
}

static inline void
scan_block(const char *p, size_t avail, uint64_t *ctl, uint64_t *eq)
{
    uint64_t w = 0x4141414141414141ULL;     /* 'A' x 8 */

    memcpy(&w, p, avail < BLOCK ? avail : BLOCK);
    *ctl = ((w - ONES * 0x20) & ~w & HIGHS) | has_byte(w, 0x7f);
    *eq = has_byte(w, '=');
}
#else
#define BLOCK 1
#define SHIFT 0

static inline void
scan_block(const char *p, size_t avail, uint64_t *ctl, uint64_t *eq)
{
    unsigned char c = (unsigned char)p[0];

    (void)avail;
    *ctl = c < 0x20 || c == 0x7f;
    *eq = c == '=';
}
#endif

/* lowest - the index within its block of the lowest flagged byte of m */
static inline size_t
lowest(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> SHIFT;
}

/* first_stop - the index of the first byte of data[0..len) that ends a
 * run (mask STOP_VALUE: a control character or DEL; STOP_NAME: those and
 * '='), or len. */
static inline size_t
first_stop(const char *data, size_t len, unsigned char mask)
{
    uint64_t ctl, eq;
    size_t n;

    for (n = 0; n < len; n += BLOCK) {
        scan_block(data + n, len - n, &ctl, &eq);
        if (mask == STOP_NAME)
            ctl |= eq;
        if (ctl != 0) {
            n += lowest(ctl);
            return n < len ? n : len;
        }
    }
    return len;
}

/* line_stop - for the fast path, in one pass: the index of the first
 * control character or DEL of data[0..len) (len if none), and in *eq_r
 * the index of the first '=' before it (len if none). */
static inline size_t
line_stop(const char *data, size_t len, size_t *eq_r)
{
    uint64_t ctl, eq;
    size_t n, stop, at = len;

    for (n = 0; n < len; n += BLOCK) {
        scan_block(data + n, len - n, &ctl, &eq);
        if (at == len && eq != 0)
            at = n + lowest(eq);
        if (ctl != 0) {
            stop = n + lowest(ctl);
            stop = stop < len ? stop : len;
            *eq_r = at < stop ? at : len;
            return stop;
        }
    }
    *eq_r = at;
    return len;
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
        n = first_stop(data, len, STOP_NAME);
        if (p->namelen < POLICY_NAME_MAX + 1)
            memcpy(p->name + p->namelen, data,
                   n < POLICY_NAME_MAX + 1 - p->namelen ? n : POLICY_NAME_MAX + 1 - p->namelen);
        p->namelen += n;
    } else {
        n = first_stop(data, len, STOP_VALUE);
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

/* request_clear - every kept value empty, the counts zero (cheaper than
 * zeroing the whole struct for every request) */

static void
request_clear(struct policy_request *r)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(fields); i++)
        ((char *)r + fields[i].offset)[0] = '\0';
    r->nattrs = 0;
    r->overlong = 0;
}

/* whole_line - the fast path: at the start of a line, a complete
 * "name=value" line of data that the incremental path would take without
 * an error, a tab or a decision other than '=' and LF. Returns the bytes
 * taken (the LF included), or 0 to leave the line to the incremental
 * path. */

static size_t
whole_line(struct policy_parser *p, const char *data, size_t len)
{
    const struct policy_field *f;
    size_t k, end;
    char *field;

    end = line_stop(data, len, &k);
    if (end == len || data[end] != '\n' || k == 0 || k >= end)
        return 0;       /* split, a tab or a control character, no '=', empty name */
    if (end > p->max_line || p->req.nattrs >= p->max_attrs)
        return 0;                   /* the incremental path says which limit */
    p->req.nattrs++;
    if (k <= POLICY_NAME_MAX && (f = field_of(data, k)) != NULL) {
        field = (char *)&p->req + f->offset;
        if (end - k - 1 < f->size) {
            memcpy(field, data + k + 1, end - k - 1);
            field[end - k - 1] = '\0';
        } else {
            field[0] = '\0';
            p->req.overlong++;
        }
    }
    return end + 1;
}

/* policy_parse - feed bytes; see policy.h */

int
policy_parse(struct policy_parser *p, const char *data, size_t len, size_t *used_r,
             struct errbuf *err)
{
    size_t i, n;
    int rc;

    if (p->done) {
        request_clear(&p->req);
        p->done = false;
    }
    for (i = 0; i < len; i++) {
        if (p->linelen == 0 && (n = whole_line(p, data + i, len - i)) > 0) {
            i += n - 1;
            continue;
        }
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
    static const char head[] = "action=", tail[] = "\n\n";
    size_t len = strlen(action);

    if (size < sizeof(head) - 1 + len + sizeof(tail))     /* tail's size counts the NUL */
        return -1;
    memcpy(buf, head, sizeof(head) - 1);
    memcpy(buf + sizeof(head) - 1, action, len);
    memcpy(buf + sizeof(head) - 1 + len, tail, sizeof(tail));
    return (int)(sizeof(head) - 1 + len + sizeof(tail) - 1);
}
