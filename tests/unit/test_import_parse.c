/* SPDX-License-Identifier: ISC */
/*
 * test_import_parse.c - the line formats "autoturnctl import" reads
 * (ctl/import_parse.c): virtualdomains, passwords, routes, tcprules and
 * open-smtp lines, tcprules addresses as networks, and the head of a
 * qmail-local maildir message; every accepted form and every error text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "addr.h"
#include "import_parse.h"
#include "util.h"

/* --- virtualdomains --- */

struct two_case {
    const char *label, *line;
    int rc;
    const char *a, *b;       /* fields, or the error */
};

static const struct two_case vdomain_cases[] = {
    {"AutoTURN line", "virt.dom:autoturn-1.2.3.4", 1, "virt.dom", "autoturn-1.2.3.4"},
    {"subdomains", ".virt.dom:autoturn-1.2.3.4", 1, ".virt.dom", "autoturn-1.2.3.4"},
    {"trailing blanks", "virt.dom:joe \t ", 1, "virt.dom", "joe"},
    {"catch-all", ":alias-catch", 1, "", "alias-catch"},
    {"comment", "# virt.dom:x", 0, NULL, NULL},
    {"empty", "", 0, NULL, NULL},
    {"blank only", "  \t", 0, NULL, NULL},
    {"no colon", "virt.dom autoturn-1.2.3.4", -1, "not DOMAIN:PREFIX (no ':')", NULL},
    {"nothing after colon", "virt.dom:", -1, "not DOMAIN:PREFIX (nothing after ':')", NULL},
    {"blank inside", "virt.dom: autoturn", -1, "not DOMAIN:PREFIX (blank inside)", NULL},
};

static void
test_vdomain(void **state)
{
    char line[256], *d, *p;
    const char *why;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(vdomain_cases); i++) {
        const struct two_case *c = &vdomain_cases[i];
        int rc;

        (void)str_copy(line, sizeof(line), c->line);
        rc = imp_parse_vdomain(line, &d, &p, &why);
        print_message("%s\n", c->label);
        assert_int_equal(rc, c->rc);
        if (rc == 1) {
            assert_string_equal(d, c->a);
            assert_string_equal(p, c->b);
        } else if (rc < 0)
            assert_string_equal(why, c->a);
    }
}

/* --- passwords --- */

struct pw_case {
    const char *label, *line;
    int rc;
    const char *f[4];        /* fields, or f[0] = the error */
};

static const struct pw_case pw_cases[] = {
    {"the documented line", "incoming.dom.ain:USER:SecretPassword:/Path/To/Maildir", 1,
     {"incoming.dom.ain", "USER", "SecretPassword", "/Path/To/Maildir"}},
    {"colon in the password", "a.dom:u:pa:ss:/m", 1, {"a.dom", "u", "pa:ss", "/m"}},
    {"comment", "#a:b:c:d", 0, {NULL}},
    {"three fields", "a.dom:u:/m", -1, {"missing field: expected DOMAIN:USER:PASSWORD:MAILDIR"}},
    {"two fields", "a.dom:u", -1, {"missing field: expected DOMAIN:USER:PASSWORD:MAILDIR"}},
    {"one field", "a.dom", -1, {"missing field: expected DOMAIN:USER:PASSWORD:MAILDIR"}},
    {"empty domain", ":u:p:/m", -1, {"empty DOMAIN field"}},
    {"empty user", "a.dom::p:/m", -1, {"empty USER field"}},
    {"empty password", "a.dom:u::/m", -1, {"empty PASSWORD field"}},
    {"empty maildir", "a.dom:u:p:", -1, {"empty MAILDIR field"}},
};

static void
test_password(void **state)
{
    char line[256], *f[4];
    const char *why;
    size_t i, k;

    (void)state;
    for (i = 0; i < ARRAY_LEN(pw_cases); i++) {
        const struct pw_case *c = &pw_cases[i];
        int rc;

        (void)str_copy(line, sizeof(line), c->line);
        rc = imp_parse_password(line, &f[0], &f[1], &f[2], &f[3], &why);
        print_message("%s\n", c->label);
        assert_int_equal(rc, c->rc);
        for (k = 0; rc == 1 && k < 4; k++)
            assert_string_equal(f[k], c->f[k]);
        if (rc < 0)
            assert_string_equal(why, c->f[0]);
    }
}

/* --- routes --- */

static const struct pw_case route_cases[] = {
    {"subdomains to a host", ".client.dom\tsmtp-etrn!mail.client.dom", 1,
     {".client.dom", "smtp-etrn", "mail.client.dom"}},
    {"the MX form", "client.dom  smtp-etrn!client.dom", 1, {"client.dom", "smtp-etrn", "client.dom"}},
    {"an address", "x.dom smtp-etrn![192.0.2.1]", 1, {"x.dom", "smtp-etrn", "[192.0.2.1]"}},
    {"trailing comment", "x.dom smtp![h] # old", 1, {"x.dom", "smtp", "[h]"}},
    {"two hops kept for the caller", "x.dom uucp!a!b", 1, {"x.dom", "uucp", "a!b"}},
    {"comment", "# x.dom smtp!h", 0, {NULL}},
    {"indented comment", "   # x", 0, {NULL}},
    {"no value", "x.dom", -1, {"missing CHANNEL!HOST after the domain"}},
    {"no bang", "x.dom smtp-etrn", -1, {"expected CHANNEL!HOST after the domain"}},
    {"empty channel", "x.dom !h", -1, {"empty channel before '!'"}},
    {"empty host", "x.dom smtp-etrn!", -1, {"empty host after '!'"}},
    {"extra words", "x.dom smtp!h more", -1, {"unexpected text after CHANNEL!HOST"}},
};

static void
test_route(void **state)
{
    char line[256], *f[3];
    const char *why;
    size_t i, k;

    (void)state;
    for (i = 0; i < ARRAY_LEN(route_cases); i++) {
        const struct pw_case *c = &route_cases[i];
        int rc;

        (void)str_copy(line, sizeof(line), c->line);
        rc = imp_parse_route(line, &f[0], &f[1], &f[2], &why);
        print_message("%s\n", c->label);
        assert_int_equal(rc, c->rc);
        for (k = 0; rc == 1 && k < 3; k++)
            assert_string_equal(f[k], c->f[k]);
        if (rc < 0)
            assert_string_equal(why, c->f[0]);
    }
}

/* --- tcprules and open-smtp --- */

struct rule_case {
    const char *label, *line;
    int rc;
    const char *addr;        /* or the error */
    bool allow, relay;
    const char *value;
    const char *time;        /* open-smtp only */
};

static const struct rule_case rule_cases[] = {
    {"relay prefix", "127.:allow,RELAYCLIENT=\"\"", 1, "127.", true, true, "", NULL},
    {"value", "1.2.3.4:allow,RELAYCLIENT=\"@fix\",X=/y/", 1, "1.2.3.4", true, true, "@fix", NULL},
    {"other quote", "1.2.3.4:allow,RELAYCLIENT='',RBLSMTPD=\"\"", 1, "1.2.3.4", true, true, "", NULL},
    {"deny", "10.:deny", 1, "10.", false, false, NULL, NULL},
    {"default allow", ":allow", 1, "", true, false, NULL, NULL},
    {"IPv6 keeps its colons", "::1:allow,RELAYCLIENT=\"\"", 1, "::1", true, true, "", NULL},
    {"trailing blanks", "1.2.3.:allow  ", 1, "1.2.3.", true, false, NULL, NULL},
    {"comment", "# x", 0, NULL, false, false, NULL, NULL},
    {"no instruction", "1.2.3.4", -1, "not a tcprules line (no ':allow' or ':deny')", 0, 0, 0, 0},
    {"bad instruction", "1.2.3.4:permit", -1, "not a tcprules line (no ':allow' or ':deny')", 0, 0,
     0, 0},
    {"text after allow", "1.2.3.4:allowx", -1,
     "bad variable setting after allow/deny (expected ,NAME=\"VALUE\")", 0, 0, 0, 0},
    {"unterminated value", "1.2.3.4:allow,A=\"x", -1,
     "bad variable setting after allow/deny (expected ,NAME=\"VALUE\")", 0, 0, 0, 0},
    {"no equals", "1.2.3.4:allow,A", -1,
     "bad variable setting after allow/deny (expected ,NAME=\"VALUE\")", 0, 0, 0, 0},
};

static void
test_tcprule(void **state)
{
    struct imp_tcprule r;
    const char *why;
    char line[256];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rule_cases); i++) {
        const struct rule_case *c = &rule_cases[i];
        int rc;

        (void)str_copy(line, sizeof(line), c->line);
        rc = imp_parse_tcprule(line, &r, &why);
        print_message("%s\n", c->label);
        assert_int_equal(rc, c->rc);
        if (rc < 0)
            assert_string_equal(why, c->addr);
        if (rc != 1)
            continue;
        assert_string_equal(r.addr, c->addr);
        assert_int_equal(r.allow, c->allow);
        assert_int_equal(r.relayclient, c->relay);
        if (c->relay)
            assert_string_equal(r.relay_value, c->value);
    }
}

static const struct rule_case open_cases[] = {
    {"as vpopmail writes it", "192.0.2.7:allow,RELAYCLIENT=\"\",RBLSMTPD=\"\"\t1700000000", 1,
     "192.0.2.7", true, true, "", "1700000000"},
    {"bad time kept for the caller", "192.0.2.7:allow,RELAYCLIENT=\"\"\tnow", 1, "192.0.2.7", true,
     true, "", "now"},
    {"no tab", "192.0.2.7:allow,RELAYCLIENT=\"\" 1700000000", -1,
     "missing the TAB and the time of the login", 0, 0, 0, 0},
    {"no rule", "\t1700000000", -1, "missing the rule before the TAB", 0, 0, 0, 0},
    {"bad rule", "192.0.2.7\t1700000000", -1, "not a tcprules line (no ':allow' or ':deny')", 0,
     0, 0, 0},
};

static void
test_open_smtp(void **state)
{
    struct imp_tcprule r;
    const char *why;
    char line[256], *t;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(open_cases); i++) {
        const struct rule_case *c = &open_cases[i];
        int rc;

        (void)str_copy(line, sizeof(line), c->line);
        rc = imp_parse_open_smtp(line, &r, &t, &why);
        print_message("%s\n", c->label);
        assert_int_equal(rc, c->rc);
        if (rc < 0) {
            assert_string_equal(why, c->addr);
            continue;
        }
        assert_string_equal(r.addr, c->addr);
        assert_true(r.relayclient);
        assert_string_equal(t, c->time);
    }
}

/* --- tcprules addresses --- */

struct nets_case {
    const char *label, *addr;
    const char *want;        /* networks joined by ' ', or NULL */
    const char *error;
};

static const struct nets_case nets_cases[] = {
    {"exact", "1.2.3.4", "1.2.3.4", NULL},
    {"/24", "192.168.1.", "192.168.1.0/24", NULL},
    {"/16", "10.1.", "10.1.0.0/16", NULL},
    {"/8", "127.", "127.0.0.0/8", NULL},
    {"range of hosts", "10.0.0.4-10", "10.0.0.4/30 10.0.0.8/31 10.0.0.10", NULL},
    {"range of /24s", "1.2.3-5.", "1.2.3.0/24 1.2.4.0/23", NULL},
    {"range capped at 255", "1.2.3.254-300", "1.2.3.254/31", NULL},
    {"whole last byte", "1.2.3.0-255", "1.2.3.0/24", NULL},
    {"range of /8s", "10-12.", "10.0.0.0/7 12.0.0.0/8", NULL},
    {"IPv6", "2001:db8::1", "2001:db8::1", NULL},
    {"mapped IPv6", "::ffff:192.0.2.1", "192.0.2.1", NULL},
    {"default", "", NULL, "the default rule (every address)"},
    {"host name", "=mail.example", NULL, "a host name rule (=HOST)"},
    {"domain suffix", "=.example", NULL, "a host name rule (=HOST)"},
    {"user", "joe@1.2.3.4", NULL, "a TCPREMOTEINFO rule (USER@ADDRESS)"},
    {"three parts", "1.2.3", NULL, "an incomplete address never matches (a prefix ends in '.')"},
    {"four-part prefix", "1.2.3.4.", NULL, "a four-part prefix never matches (drop the last '.')"},
    {"range not last", "1.2-3.4.5", NULL,
     "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9"},
    {"backwards range", "1.2.3.9-4", NULL, "empty range (the end is below the start)"},
    {"leading zero", "01.2.3.4", NULL,
     "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9"},
    {"over 255", "1.2.3.256", NULL,
     "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9"},
    {"five parts", "1.2.3.4.5", NULL,
     "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9"},
    {"letters", "a.b.", NULL, "not an address, a prefix such as 10.1. or a range such as 10.1.2.3-9"},
    {"bad IPv6", "2001:db8::g", NULL, "not an IPv4 or IPv6 address"},
};

static void
test_nets(void **state)
{
    struct ipnet v[IMP_NETS_MAX];
    char got[512], buf[IPNET_TEXT_MAX];
    const char *why;
    size_t i, k, n, len;

    (void)state;
    for (i = 0; i < ARRAY_LEN(nets_cases); i++) {
        const struct nets_case *c = &nets_cases[i];
        int rc = imp_tcprule_nets(c->addr, v, ARRAY_LEN(v), &n, &why);

        print_message("%s\n", c->label);
        if (c->error != NULL) {
            assert_int_equal(rc, -1);
            assert_string_equal(why, c->error);
            continue;
        }
        assert_int_equal(rc, 0);
        for (got[0] = '\0', len = 0, k = 0; k < n; k++) {
            (void)str_printf(got + len, sizeof(got) - len, "%s%s", k ? " " : "",
                             ipnet_format(&v[k], buf, sizeof(buf)));
            len = strlen(got);
        }
        assert_string_equal(got, c->want);
    }
}

static void
test_nets_too_many(void **state)
{
    struct ipnet v[2];
    const char *why;
    size_t n;

    (void)state;
    assert_int_equal(imp_tcprule_nets("1.2.3.1-7", v, ARRAY_LEN(v), &n, &why), -1);
    assert_string_equal(why, "too many networks");
}

/* --- the head of a maildir message --- */

struct head_case {
    const char *label, *text, *prefix;
    const char *sender, *rcpt;   /* or rcpt = NULL and sender = the error */
    size_t skip;
    bool crlf;
};

static const struct head_case head_cases[] = {
    {"qmail-local's lines", "Return-Path: <s@example.org>\nDelivered-To: autoturn-1.2.3.4-a@virt.dom\nX: y\n",
     "autoturn-1.2.3.4-", "s@example.org", "a@virt.dom", 71, false},
    {"a bounce", "Return-Path: <>\nDelivered-To: autoturn-1.2.3.4-a@virt.dom\n\nbody",
     "autoturn-1.2.3.4-", "", "a@virt.dom", 58, false},
    {"no prefix", "Return-Path: <s@x>\nDelivered-To: a@b\n", "", "s@x", "a@b", 37, false},
    {"CR LF", "Return-Path: <s@x>\r\nDelivered-To: p-a@b\r\n", "p-", "s@x", "a@b", 41, true},
    {"no Return-Path", "Delivered-To: p-a@b\nReturn-Path: <s@x>\n", "p-",
     "first line is not 'Return-Path: <SENDER>' (qmail-local writes it)", NULL, 0, false},
    {"Return-Path without <>", "Return-Path: s@x\nDelivered-To: p-a@b\n", "p-",
     "first line is not 'Return-Path: <SENDER>' (qmail-local writes it)", NULL, 0, false},
    {"empty file", "", "p-", "first line is not 'Return-Path: <SENDER>' (qmail-local writes it)",
     NULL, 0, false},
    {"no Delivered-To", "Return-Path: <s@x>\nSubject: hi\n", "p-",
     "second line is not 'Delivered-To: RECIPIENT' (qmail-local writes it)", NULL, 0, false},
    {"only one line", "Return-Path: <s@x>\n", "p-",
     "second line is not 'Delivered-To: RECIPIENT' (qmail-local writes it)", NULL, 0, false},
    {"unterminated second line", "Return-Path: <s@x>\nDelivered-To: p-a@b", "p-",
     "second line is not 'Delivered-To: RECIPIENT' (qmail-local writes it)", NULL, 0, false},
    {"other prefix", "Return-Path: <s@x>\nDelivered-To: autoturn-5.6.7.8-a@b\n",
     "autoturn-1.2.3.4-", "Delivered-To 'autoturn-5.6.7.8-a@b' lacks the prefix 'autoturn-1.2.3.4-'",
     NULL, 0, false},
    {"nothing after the prefix", "Return-Path: <s@x>\nDelivered-To: p-\n", "p-",
     "Delivered-To 'p-' has no recipient after the prefix", NULL, 0, false},
    {"control byte in Delivered-To", "Return-Path: <s@x>\nDelivered-To: p-a\x01@b\n", "p-",
     "control character in the Delivered-To line", NULL, 0, false},
    {"control byte in Return-Path", "Return-Path: <s\x7f@x>\nDelivered-To: p-a@b\n", "p-",
     "control character in the Return-Path line", NULL, 0, false},
    {"8-bit bytes quoted", "Return-Path: <s@x>\nDelivered-To: q\xe9-a\n", "p-",
     "Delivered-To 'q?-a' lacks the prefix 'p-'", NULL, 0, false},
};

static void
test_head(void **state)
{
    char sender[1001], rcpt[1001];
    struct errbuf err;
    size_t i, skip;
    bool crlf;
    static const char nul[] = "Return-Path: <s@x>\nDelivered-To: p-a\0@b\n";

    (void)state;
    assert_int_equal(imp_parse_head(nul, sizeof(nul) - 1, "p-", sender, rcpt, sizeof(sender), &skip,
                                    &crlf, &err), -1);
    assert_string_equal(err.msg, "control character in the Delivered-To line");
    for (i = 0; i < ARRAY_LEN(head_cases); i++) {
        const struct head_case *c = &head_cases[i];
        int rc = imp_parse_head(c->text, strlen(c->text), c->prefix, sender, rcpt, sizeof(sender),
                                &skip, &crlf, &err);

        print_message("%s\n", c->label);
        if (c->rcpt == NULL) {
            assert_int_equal(rc, -1);
            assert_string_equal(err.msg, c->sender);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(sender, c->sender);
        assert_string_equal(rcpt, c->rcpt);
        assert_int_equal(skip, c->skip);
        assert_int_equal(crlf, c->crlf);
    }
}

static void
test_head_bounds(void **state)
{
    char buf[IMP_HEAD_MAX * 2 + 64], sender[1001], rcpt[1001];
    struct errbuf err;
    size_t skip, n;
    bool crlf;

    (void)state;
    /* a Return-Path line longer than IMP_HEAD_MAX: no LF found in bounds */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "Return-Path: <", 14);
    buf[IMP_HEAD_MAX + 10] = '>';
    buf[IMP_HEAD_MAX + 11] = '\n';
    assert_int_equal(imp_parse_head(buf, sizeof(buf), "", sender, rcpt, sizeof(sender), &skip,
                                    &crlf, &err), -1);
    assert_string_equal(err.msg, "first line is not 'Return-Path: <SENDER>' (qmail-local writes it)");
    /* a sender longer than the caller's buffer */
    n = (size_t)snprintf(buf, sizeof(buf), "Return-Path: <%01100d>\nDelivered-To: a@b\n", 0);
    assert_int_equal(imp_parse_head(buf, n, "", sender, rcpt, sizeof(sender), &skip, &crlf, &err), -1);
    assert_string_equal(err.msg, "sender address longer than 1000 bytes");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vdomain),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_tcprule),
        cmocka_unit_test(test_open_smtp),
        cmocka_unit_test(test_nets),
        cmocka_unit_test(test_nets_too_many),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_head_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
