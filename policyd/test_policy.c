/* SPDX-License-Identifier: ISC */
/*
 * test_policy.c - unit tests of the policy protocol parser (policy.c):
 * requests split across reads, several in one read, attribute order,
 * unknown and duplicate attributes, kept values that do not fit, and
 * every protocol violation with its exact error text.
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
        for (step = 1; step <= len; step = step * 2 + 1) {
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
