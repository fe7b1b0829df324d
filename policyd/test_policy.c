/* SPDX-License-Identifier: ISC */
/*
 * test_policy.c - unit tests of the policy protocol parser (policy.c):
 * requests split across reads, several in one read, attribute order,
 * unknown and duplicate attributes, kept values that do not fit, and
 * every protocol violation with its exact error text; and that the fast
 * path for whole lines agrees with the byte-by-byte path everywhere:
 * stop bytes at every offset around the scan blocks, line and attribute
 * limits met exactly in one read, every kept field at its size, and
 * seeded random requests fed whole and split. The same file is built
 * three times, once per scan (SSE2 or words or bytes, see policy.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"
#include "util.h"

#define REQ(attrs) "request=smtpd_access_policy\n" attrs "\n"

/* feed - all of data in chunks of step bytes; returns the number of
 * complete requests, or -1 (err) on a violation; calls fn per request. */
static int
feed(struct policy_parser *p, const char *data, size_t len, size_t step,
     void (*fn)(const struct policy_request *, int), struct errbuf *err)
{
    size_t off = 0, n, used;
    int rc, count = 0;

    while (off < len) {
        n = len - off < step ? len - off : step;
        rc = policy_parse(p, data + off, n, &used, err);
        if (rc < 0)
            return -1;
        assert_true(used <= n);
        if (rc == 0)
            assert_int_equal(used, n);
        if (rc == 1 && fn != NULL)
            fn(&p->req, count);
        count += rc;
        off += used;
    }
    return count;
}

static void
check_full(const struct policy_request *r, int i)
{
    (void)i;
    assert_string_equal(r->request, "smtpd_access_policy");
    assert_string_equal(r->protocol_state, "RCPT");
    assert_string_equal(r->client_address, "192.0.2.10");
    assert_string_equal(r->sasl_username, "joe@virt.dom");
    assert_string_equal(r->recipient, "a=b@example.org");
    assert_string_equal(r->etrn_domain, "");
    assert_int_equal(r->nattrs, 7);
}

static const char full_a[] = REQ("protocol_state=RCPT\nprotocol_name=ESMTP\n"
                                 "client_address=192.0.2.10\nsasl_username=joe@virt.dom\n"
                                 "recipient=a=b@example.org\nunknown_future_attr=x y z\n");
static const char full_b[] = "unknown_future_attr=\nrecipient=a=b@example.org\n"
                             "sasl_username=joe@virt.dom\nclient_address=192.0.2.10\n"
                             "protocol_name=ESMTP\nprotocol_state=RCPT\n"
                             "request=smtpd_access_policy\n\n";

static void
test_split_reads(void **state)
{
    struct policy_parser p;
    struct errbuf err;
    size_t step;

    (void)state;
    for (step = 1; step <= sizeof(full_a); step++) {
        policy_parser_init(&p, 4096, 100);
        assert_int_equal(feed(&p, full_a, sizeof(full_a) - 1, step, check_full, &err), 1);
        assert_false(policy_in_request(&p));
    }
}

static void
test_order_and_unknown(void **state)
{
    struct policy_parser p;
    struct errbuf err;

    (void)state;
    policy_parser_init(&p, 4096, 100);
    assert_int_equal(feed(&p, full_b, sizeof(full_b) - 1, 4096, check_full, &err), 1);
}

static void
check_nth(const struct policy_request *r, int i)
{
    char want[32];

    assert_int_equal(str_printf(want, sizeof(want), "127.0.0.%d", i + 1), 0);
    assert_string_equal(r->client_address, want);
    /* attributes never leak from one request into the next */
    if (i == 1)
        assert_string_equal(r->sasl_username, "u");
    else
        assert_string_equal(r->sasl_username, "");
}

static void
test_many_in_one_read(void **state)
{
    static const char many[] = REQ("client_address=127.0.0.1\n")
                               REQ("client_address=127.0.0.2\nsasl_username=u\n")
                               REQ("client_address=127.0.0.3\n");
    struct policy_parser p;
    struct errbuf err;
    size_t step;

    (void)state;
    for (step = 1; step <= sizeof(many); step += 7) {
        policy_parser_init(&p, 4096, 100);
        assert_int_equal(feed(&p, many, sizeof(many) - 1, step, check_nth, &err), 3);
    }
    policy_parser_init(&p, 4096, 100);
    assert_int_equal(feed(&p, many, sizeof(many) - 1, sizeof(many), check_nth, &err), 3);
}

static void
test_values(void **state)
{
    static const char dup[] = REQ("client_address=1.1.1.1\nclient_address=2.2.2.2\n"
                                  "recipient=\xc3\xa9t\xc3\xa9@exemple.fr\n");
    char big[1024];
    struct policy_parser p;
    struct errbuf err;
    size_t used;

    (void)state;
    policy_parser_init(&p, 4096, 100);
    assert_int_equal(policy_parse(&p, dup, sizeof(dup) - 1, &used, &err), 1);
    assert_string_equal(p.req.client_address, "2.2.2.2");
    assert_string_equal(p.req.recipient, "\xc3\xa9t\xc3\xa9@exemple.fr");
    assert_int_equal(p.req.overlong, 0);

    /* a kept value longer than its field is dropped, not truncated */
    memset(big, 'a', sizeof(big));
    assert_int_equal(str_printf(big, sizeof(big), "request=smtpd_access_policy\n"
                                "client_address=%0100d\nsasl_username=ok\n\n", 7), 0);
    policy_parser_init(&p, 4096, 100);
    assert_int_equal(policy_parse(&p, big, strlen(big), &used, &err), 1);
    assert_string_equal(p.req.client_address, "");
    assert_string_equal(p.req.sasl_username, "ok");
    assert_int_equal(p.req.overlong, 1);
}

/* a kept value exactly filling its field is kept; one byte more drops it;
 * a tab in a value is kept; the same whichever way the bytes arrive */
static char boundary_want[POLICY_ADDR_MAX + 1];
static unsigned boundary_overlong;

static void
check_boundary(const struct policy_request *r, int i)
{
    (void)i;
    assert_string_equal(r->client_address, boundary_want);
    assert_int_equal(r->overlong, boundary_overlong);
    assert_string_equal(r->sasl_username, "x\ty");
}

static void
test_value_boundary(void **state)
{
    char value[POLICY_ADDR_MAX + 2], req[512];
    struct policy_parser p;
    struct errbuf err;
    size_t len, step;

    (void)state;
    for (len = POLICY_ADDR_MAX - 2; len <= POLICY_ADDR_MAX + 1; len++) {
        memset(value, '1', len);
        value[len] = '\0';
        if (len >= 3)
            value[len - 3] = '\t';      /* a tab goes through take_byte, in mid-run */
        assert_int_equal(str_printf(req, sizeof(req), "request=smtpd_access_policy\n"
                                    "client_address=%s\nsasl_username=x\ty\n\n", value), 0);
        if (len < POLICY_ADDR_MAX) {    /* fits with its NUL */
            assert_int_equal(str_copy(boundary_want, sizeof(boundary_want), value), 0);
            boundary_overlong = 0;
        } else {
            boundary_want[0] = '\0';
            boundary_overlong = 1;
        }
        for (step = 1; step <= strlen(req); step++) {
            policy_parser_init(&p, 4096, 100);
            assert_int_equal(feed(&p, req, strlen(req), step, check_boundary, &err), 1);
        }
    }
}

static void
test_in_request(void **state)
{
    struct policy_parser p;
    struct errbuf err;
    size_t used;

    (void)state;
    policy_parser_init(&p, 4096, 100);
    assert_false(policy_in_request(&p));
    assert_int_equal(policy_parse(&p, "request=smtpd", 13, &used, &err), 0);
    assert_true(policy_in_request(&p));
    assert_int_equal(policy_parse(&p, "_access_policy\n\nx", 17, &used, &err), 1);
    assert_int_equal(used, 16);
    assert_false(policy_in_request(&p));
}

struct bad_case {
    const char *label;
    const char *input;
    size_t len;                  /* 0 = strlen */
    size_t max_line, max_attrs;
    const char *want;            /* exact error text, or NULL = accepted */
};

#define LONG50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   /* 46 x */

static const struct bad_case bad_cases[] = {
    {"line at the limit", REQ("x=" LONG50 "ab\n"), 0, 50, 100, NULL},
    {"line over the limit", REQ("x=" LONG50 "abc\n"), 0, 50, 100,
     "attribute line longer than 50 bytes"},
    {"name over the limit", "request" LONG50 "xxxxxxxxxxxxxxxxx", 0, 50, 100,
     "attribute line longer than 50 bytes"},
    {"attributes at the limit", REQ("a=1\nb=2\n"), 0, 4096, 3, NULL},
    {"too many attributes", REQ("a=1\nb=2\nc=3\n"), 0, 4096, 3,
     "more than 3 attributes in one request"},
    {"line without =", "request=smtpd_access_policy\ngarbage\n\n", 0, 4096, 100,
     "attribute line without '='"},
    {"empty name", "=value\n", 0, 4096, 100, "empty attribute name"},
    {"NUL byte", "request\0=x\n", 11, 4096, 100, "control character 0x00 in request"},
    {"CR LF line end", "request=smtpd_access_policy\r\n\r\n", 0, 4096, 100,
     "control character 0x0d in request"},
    {"tab in a value", REQ("recipient=a\tb\n"), 0, 4096, 100, NULL},
    {"DEL", "recipient=a\x7f\n", 0, 4096, 100, "control character 0x7f in request"},
    {"binary garbage", "\x01\x02\x03\xff\xfe", 5, 4096, 100,
     "control character 0x01 in request"},
    {"empty request", "\n", 0, 4096, 100, "empty request"},
    {"other request type", "request=junk\n\n", 0, 4096, 100,
     "unsupported request type 'junk'"},
    {"missing request type", "client_address=1.2.3.4\n\n", 0, 4096, 100,
     "unsupported request type ''"},
};

static void
test_bad_input(void **state)
{
    struct policy_parser p;
    struct errbuf err;
    size_t i, len, step;
    int rc;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *t = &bad_cases[i];

        len = t->len ? t->len : strlen(t->input);
        for (step = 1; step <= len; step = step < len && step * 2 + 1 > len ? len
                                                                  : step * 2 + 1) {
            policy_parser_init(&p, t->max_line, t->max_attrs);
            memset(err.msg, 0, sizeof(err.msg));
            rc = feed(&p, t->input, len, step, NULL, &err);
            if ((t->want == NULL) != (rc == 1) || (t->want && strcmp(err.msg, t->want)))
                print_message("%s (step %zu): rc=%d %s\n", t->label, step, rc, err.msg);
            if (t->want == NULL) {
                assert_int_equal(rc, 1);
            } else {
                assert_int_equal(rc, -1);
                assert_string_equal(err.msg, t->want);
            }
        }
    }
}

/* --- the fast path agrees with the byte-by-byte path --- */

#define OUT_REQS 8

struct outcome {
    int rc;                      /* 1 all requests, -1 violation, 0 incomplete */
    size_t nreq;
    struct policy_request req[OUT_REQS];
    char err[ERRBUF_SIZE];
    size_t consumed;             /* bytes used up to the violation */
};

/* run - feed data in chunks of step bytes; the outcome */
static void
run(const char *data, size_t len, size_t step, size_t max_line, size_t max_attrs,
    struct outcome *o)
{
    struct policy_parser p;
    struct errbuf err;
    size_t off = 0, n, used;
    int rc = 0;

    memset(o, 0, sizeof(*o));
    policy_parser_init(&p, max_line, max_attrs);
    while (off < len) {
        n = len - off < step ? len - off : step;
        rc = policy_parse(&p, data + off, n, &used, &err);
        off += used;
        if (rc < 0) {
            (void)str_copy(o->err, sizeof(o->err), err.msg);
            break;
        }
        if (rc == 1 && o->nreq < OUT_REQS)
            o->req[o->nreq++] = p.req;
    }
    o->rc = rc;
    o->consumed = off;
}

static void
same_request(const struct policy_request *a, const struct policy_request *b, const char *what)
{
    if (strcmp(a->request, b->request) != 0 || strcmp(a->protocol_state, b->protocol_state) ||
        strcmp(a->client_address, b->client_address) ||
        strcmp(a->sasl_username, b->sasl_username) || strcmp(a->recipient, b->recipient) ||
        strcmp(a->etrn_domain, b->etrn_domain) || strcmp(a->policy_context, b->policy_context)
        || a->nattrs != b->nattrs || a->overlong != b->overlong)
        fail_msg("%s: requests differ (nattrs %zu/%zu, overlong %u/%u, client '%s'/'%s', "
                 "recipient '%s'/'%s')", what, a->nattrs, b->nattrs, a->overlong, b->overlong,
                 a->client_address, b->client_address, a->recipient, b->recipient);
}

/* agree - whole, byte by byte and a few splits around the block sizes
 * give the same outcome; returns the whole one's rc */
static int
agree(const char *data, size_t len, size_t max_line, size_t max_attrs, const char *what)
{
    static const size_t steps[] = {1, 2, 7, 8, 9, 15, 16, 17, 33};
    struct outcome whole, split;
    size_t i, k;

    run(data, len, len ? len : 1, max_line, max_attrs, &whole);
    for (i = 0; i < ARRAY_LEN(steps); i++) {
        run(data, len, steps[i], max_line, max_attrs, &split);
        if (whole.rc != split.rc || whole.nreq != split.nreq ||
            strcmp(whole.err, split.err) != 0 || whole.consumed != split.consumed)
            fail_msg("%s, step %zu: whole rc %d '%s' at %zu (%zu requests), split rc %d '%s' "
                     "at %zu (%zu requests)", what, steps[i], whole.rc, whole.err,
                     whole.consumed, whole.nreq, split.rc, split.err, split.consumed,
                     split.nreq);
        for (k = 0; k < whole.nreq; k++)
            same_request(&whole.req[k], &split.req[k], what);
    }
    return whole.rc;
}

/* a byte of each kind at every offset of a name and of a value, across
 * the 8- and 16-byte blocks of the scan */
static void
test_fast_path_offsets(void **state)
{
    static const unsigned char kinds[] = {
        0x01, 0x1f, '\t', 0x7f, '=', 0x20, 0x7e, 0x80, 0x9f, 0xff, '\r', 0x00
    };
    char req[256], what[64], name[64], value[64];
    size_t k, off, len;
    int rc;

    (void)state;
    for (k = 0; k < ARRAY_LEN(kinds); k++) {
        for (off = 0; off < 40; off++) {
            /* in a value (of client_address, kept) */
            memset(value, 'v', off + 3);
            value[off] = (char)kinds[k];
            value[off + 3] = '\0';
            len = 0;
            assert_int_equal(str_printf(req, sizeof(req), "request=smtpd_access_policy\n"
                                        "client_address="), 0);
            len = strlen(req);
            memcpy(req + len, value, off + 3);
            len += off + 3;
            memcpy(req + len, "\nrecipient=r@x\n\n", 16);
            len += 16;
            (void)str_printf(what, sizeof(what), "byte 0x%02x at %zu of a value", kinds[k], off);
            rc = agree(req, len, 4096, 100, what);
            assert_int_equal(rc, kinds[k] < 0x20 && kinds[k] != '\t' ? -1
                             : kinds[k] == 0x7f ? -1 : 1);
            /* in a name (off bytes before it, the name is unknown unless
             * the byte is '=', which ends it) */
            memset(name, 'n', off + 3);
            name[off] = (char)kinds[k];
            memcpy(req, "request=smtpd_access_policy\n", 28);
            len = 28;
            memcpy(req + len, name, off + 3);
            len += off + 3;
            memcpy(req + len, "=x\n\n", 4);
            len += 4;
            (void)str_printf(what, sizeof(what), "byte 0x%02x at %zu of a name", kinds[k], off);
            rc = agree(req, len, 4096, 100, what);
            assert_int_equal(rc, (kinds[k] < 0x20 && kinds[k] != '\t') || kinds[k] == 0x7f ? -1
                             : kinds[k] == '=' && off == 0 ? -1 : 1);
        }
    }
}

/* the line length limit and the attribute count met exactly in one read,
 * with lines ending on both sides of the scan blocks */
static void
test_fast_path_limits(void **state)
{
    char req[512], what[64];
    size_t max, over, len, i;
    int rc;

    (void)state;
    for (max = 3; max <= 70; max++) {
        for (over = 0; over <= 1; over++) {
            /* "x=" and max - 2 + over value bytes: max + over bytes */
            memcpy(req, "request=smtpd_access_policy\n", 28);
            len = 28;
            memcpy(req + len, "x=", 2);
            memset(req + len + 2, 'v', max - 2 + over);
            len += max + over;
            memcpy(req + len, "\n\n", 2);
            len += 2;
            (void)str_printf(what, sizeof(what), "line of %zu, limit %zu", max + over, max);
            rc = agree(req, len, max < 27 ? 27 : max, 100, what);
            if (max >= 27)
                assert_int_equal(rc, over ? -1 : 1);
        }
    }
    for (max = 1; max <= 20; max++) {
        for (over = 0; over <= 1; over++) {
            memcpy(req, "request=smtpd_access_policy\n", 28);
            len = 28;
            for (i = 1; i < max + over; i++) {
                memcpy(req + len, "ab=1\n", 5);
                len += 5;
            }
            req[len++] = '\n';
            (void)str_printf(what, sizeof(what), "%zu attributes, limit %zu", max + over, max);
            assert_int_equal(agree(req, len, 4096, max, what), over ? -1 : 1);
        }
    }
}

/* every kept field: a value that just fits, and one byte more */
static void
test_fast_path_fields(void **state)
{
    static const struct {
        const char *name;
        size_t size;
        size_t offset;
    } kept[] = {
        {"request", POLICY_WORD_MAX, offsetof(struct policy_request, request)},
        {"protocol_state", POLICY_WORD_MAX, offsetof(struct policy_request, protocol_state)},
        {"client_address", POLICY_ADDR_MAX, offsetof(struct policy_request, client_address)},
        {"sasl_username", POLICY_USER_MAX, offsetof(struct policy_request, sasl_username)},
        {"recipient", POLICY_RCPT_MAX, offsetof(struct policy_request, recipient)},
        {"etrn_domain", POLICY_DOMAIN_MAX, offsetof(struct policy_request, etrn_domain)},
        {"policy_context", POLICY_CONTEXT_MAX, offsetof(struct policy_request, policy_context)},
    };
    char req[2048], what[64];
    struct outcome o;
    size_t i, vlen, len;

    (void)state;
    for (i = 1; i < ARRAY_LEN(kept); i++) {
        for (vlen = kept[i].size - 1; vlen <= kept[i].size; vlen++) {
            memcpy(req, "request=smtpd_access_policy\n", 28);
            len = 28;
            memcpy(req + len, kept[i].name, strlen(kept[i].name));
            len += strlen(kept[i].name);
            req[len++] = '=';
            memset(req + len, 'k', vlen);
            len += vlen;
            memcpy(req + len, "\n\n", 2);
            len += 2;
            (void)str_printf(what, sizeof(what), "%s of %zu bytes", kept[i].name, vlen);
            assert_int_equal(agree(req, len, 4096, 100, what), 1);
            run(req, len, len, 4096, 100, &o);
            assert_int_equal(strlen((const char *)&o.req[0] + kept[i].offset),
                             vlen < kept[i].size ? vlen : 0);
            assert_int_equal(o.req[0].overlong, vlen < kept[i].size ? 0 : 1);
        }
    }
}

/* xorshift, seeded: the same "random" requests every run */
static uint64_t
next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
test_fast_path_random(void **state)
{
    static const char *const names[] = {
        "request", "protocol_state", "client_address", "sasl_username", "recipient",
        "etrn_domain", "policy_context", "client_name", "x", "reverse_client_name",
        "ccert_pubkey_fingerprint"
    };
    static const char alphabet[] = "abc019.@- =\t\x80\xff";
    static const size_t limits[][2] = {{4096, 100}, {40, 100}, {4096, 6}, {17, 4}};
    char req[4096], what[64];
    uint64_t x = 0x5eed5eed12345678ull;
    size_t round, len, nlines, i, vlen, lim;

    (void)state;
    for (round = 0; round < 3000; round++) {
        len = 0;
        nlines = 1 + next(&x) % 12;
        for (i = 0; i < nlines && len < sizeof(req) - 700; i++) {
            const char *nm = i == 0 ? "request" : names[next(&x) % ARRAY_LEN(names)];

            memcpy(req + len, nm, strlen(nm));
            len += strlen(nm);
            if (next(&x) % 40 != 0)
                req[len++] = '=';
            if (i == 0) {
                memcpy(req + len, "smtpd_access_policy", 19);
                len += 19;
            } else {
                vlen = next(&x) % 4 == 0 ? next(&x) % 600 : next(&x) % 24;
                while (vlen-- > 0)
                    req[len++] = next(&x) % 300 == 0 ? "\x01\x7f"[next(&x) % 2]
                                                     : alphabet[next(&x) % (sizeof(alphabet) - 1)];
            }
            req[len++] = '\n';
            if (next(&x) % 8 == 0)
                req[len++] = '\n';       /* ends a request; another may follow */
        }
        req[len++] = '\n';
        lim = next(&x) % ARRAY_LEN(limits);
        (void)str_printf(what, sizeof(what), "random request %zu", round);
        (void)agree(req, len, limits[lim][0], limits[lim][1], what);
    }
}

static void
test_reply(void **state)
{
    char buf[64];

    (void)state;
    assert_int_equal(policy_format_reply("DUNNO", buf, sizeof(buf)), 14);
    assert_string_equal(buf, "action=DUNNO\n\n");
    assert_int_equal(policy_format_reply("450 4.7.1 ETRN for virt.dom not allowed", buf, 20),
                     -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_value_boundary),
        cmocka_unit_test(test_order_and_unknown),
        cmocka_unit_test(test_many_in_one_read),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_in_request),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_reply),
        cmocka_unit_test(test_fast_path_offsets),
        cmocka_unit_test(test_fast_path_limits),
        cmocka_unit_test(test_fast_path_fields),
        cmocka_unit_test(test_fast_path_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
