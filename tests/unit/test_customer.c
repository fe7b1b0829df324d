/* SPDX-License-Identifier: ISC */
/*
 * test_customer.c - names, domains, the record encoding: round trip and
 * strict decoding of damaged records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "customer.h"
#include "util.h"

static void
test_names(void **state)
{
    static const struct {
        const char *in, *why;   /* why NULL: valid */
    } rows[] = {
        {"acme", NULL}, {"a.b_c+d-e", NULL}, {"A9", NULL}, {"x-", NULL},
        {"", "empty"},
        {"0123456789012345678901234567890123456789012345678901234567890123", NULL},
        {"01234567890123456789012345678901234567890123456789012345678901234",
         "longer than 64 bytes"},
        {"../x", "contains '/'"},
        {"a/b", "contains '/'"},
        {"a b", "contains a character other than A-Z a-z 0-9 . _ + -"},
        {"caf\xc3\xa9", "contains a character other than A-Z a-z 0-9 . _ + -"},
        {".", "starts with '.'"},
        {"..", "starts with '.'"},
        {".hidden", "starts with '.'"},
        {"-rf", "starts with '-'"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        const char *why = NULL;

        printf("'%s'\n", rows[i].in);
        assert_int_equal(customer_name_valid(rows[i].in, &why), rows[i].why == NULL);
        if (rows[i].why != NULL)
            assert_string_equal(why, rows[i].why);
    }
}

static void
test_domains(void **state)
{
    static const struct {
        const char *in, *out, *why;
    } rows[] = {
        {"Virt.DOM", "virt.dom", NULL},
        {"virt.dom.", "virt.dom", NULL},
        {"localhost", "localhost", NULL},
        {"a_b.example", "a_b.example", NULL},
        {"b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", NULL},
        {"", NULL, "empty"},
        {".", NULL, "empty"},
        {"a..b", NULL, "empty label"},
        {".a", NULL, "empty label"},
        {"a.b..", NULL, "empty label"},
        {"-a.example", NULL, "label starts or ends with '-'"},
        {"a-.example", NULL, "label starts or ends with '-'"},
        {"a b", NULL, "invalid character"},
        {"a/b", NULL, "invalid character"},
        {"a@b", NULL, "invalid character"},
        {"0123456789012345678901234567890123456789012345678901234567890123.x", NULL,
         "label longer than 63 bytes"},
    };
    char out[DOMAIN_MAX + 1], big[300];
    const char *why;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        why = NULL;
        printf("'%s'\n", rows[i].in);
        if (rows[i].out != NULL) {
            assert_int_equal(domain_normalise(rows[i].in, out, sizeof(out), &why), 0);
            assert_string_equal(out, rows[i].out);
        } else {
            assert_int_equal(domain_normalise(rows[i].in, out, sizeof(out), &why), -1);
            assert_string_equal(why, rows[i].why);
        }
    }
    for (i = 0; i < 254; i++)
        big[i] = (i % 2) ? '.' : 'a';
    big[253] = '\0';   /* 253 bytes: "a.a. ... a" */
    assert_int_equal(domain_normalise(big, out, sizeof(out), &why), 0);
    big[253] = '.';
    big[254] = '\0';   /* trailing dot: still 253 */
    assert_int_equal(domain_normalise(big, out, sizeof(out), &why), 0);
    big[253] = 'b';
    big[254] = '\0';
    assert_int_equal(domain_normalise(big, out, sizeof(out), &why), -1);
    assert_string_equal(why, "longer than 253 bytes");
}

static struct customer *
sample(void)
{
    struct customer *c = customer_new();
    const char *why;
    struct ipnet n;

    assert_non_null(c);
    assert_int_equal(str_copy(c->name, sizeof(c->name), "acme"), 0);
    c->delivery = DELIVERY_HOST;
    assert_int_equal(str_copy(c->delivery_host, sizeof(c->delivery_host), "2001:db8::25"), 0);
    c->port = 2525;
    c->tls = TLS_ENCRYPT;
    c->triggers = TRIGGER_CONNECT | TRIGGER_ATRN;
    c->relay = true;
    c->has_secret = true;
    secret_make("pw", 2, &c->secret);
    c->max_messages = 10000;
    c->max_bytes = 1ull << 30;
    c->max_age = 5 * 86400;
    assert_int_equal(customer_add_domain(c, "virt.dom"), 0);
    assert_int_equal(customer_add_domain(c, ".virt.dom"), 0);
    assert_int_equal(ipnet_parse("198.51.100.0/24", &n, &why), 0);
    assert_int_equal(customer_add_addr(c, &n), 0);
    assert_int_equal(ipnet_parse("2001:db8:1::/48", &n, &why), 0);
    assert_int_equal(customer_add_addr(c, &n), 0);
    return c;
}

static void
test_roundtrip(void **state)
{
    struct customer *c = sample(), *back = NULL;
    char *buf = NULL, *again = NULL;
    size_t len, len2;
    struct errbuf err;

    (void)state;
    assert_int_equal(customer_encode(c, &buf, &len), 0);
    assert_int_equal(customer_decode(buf, len, &back, &err), 0);
    assert_string_equal(back->name, "acme");
    assert_int_equal(back->delivery, DELIVERY_HOST);
    assert_string_equal(back->delivery_host, "2001:db8::25");
    assert_int_equal(back->port, 2525);
    assert_int_equal(back->tls, TLS_ENCRYPT);
    assert_int_equal(back->triggers, TRIGGER_CONNECT | TRIGGER_ATRN);
    assert_true(back->relay);
    assert_true(back->has_secret);
    assert_memory_equal(&back->secret, &c->secret, sizeof(c->secret));
    assert_int_equal(back->max_messages, 10000);
    assert_int_equal(back->max_bytes, 1ull << 30);
    assert_int_equal(back->max_age, 5 * 86400);
    assert_int_equal(back->ndomains, 2);
    assert_string_equal(back->domains[1], ".virt.dom");
    assert_int_equal(back->naddrs, 2);
    assert_memory_equal(&back->addrs[1], &c->addrs[1], sizeof(struct ipnet));
    assert_int_equal(customer_encode(back, &again, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, again, len);
    customer_free(back);
    customer_free(c);
    x_free(buf);
    x_free(again);
}

static void
test_enums(void **state)
{
    char buf[64];

    (void)state;
    assert_string_equal(delivery_mode_name(DELIVERY_MX), "mx");
    assert_string_equal(delivery_mode_name(DELIVERY_CONNECTING_IP), "connecting-ip");
    assert_string_equal(tls_policy_name(TLS_NONE), "none");
    assert_string_equal(triggers_format(0, buf, sizeof(buf)), "none");
    assert_string_equal(triggers_format(TRIGGER_CONNECT | TRIGGER_ETRN | TRIGGER_ATRN, buf,
                                        sizeof(buf)), "connect etrn atrn");
    assert_string_equal(triggers_format(TRIGGER_ETRN, buf, sizeof(buf)), "etrn");
}

/* corrupt - replace the first occurrence of from by to in a good record. */
static void
check_corrupt(const char *label, const char *from, const char *to, const char *want)
{
    struct customer *c = sample(), *back = (struct customer *)1;
    char *buf = NULL, *bad, *at;
    size_t len, blen;
    struct errbuf err;

    printf("%s\n", label);
    assert_int_equal(customer_encode(c, &buf, &len), 0);
    at = strstr(buf, from);
    assert_non_null(at);
    blen = len - strlen(from) + strlen(to);
    bad = malloc(blen + 1);
    assert_non_null(bad);
    memcpy(bad, buf, (size_t)(at - buf));
    memcpy(bad + (at - buf), to, strlen(to));
    memcpy(bad + (at - buf) + strlen(to), at + strlen(from), len - (size_t)(at - buf) - strlen(from));
    assert_int_equal(customer_decode(bad, blen, &back, &err), -1);
    assert_null(back);
    assert_string_equal(err.msg, want);
    free(bad);
    free(buf);
    customer_free(c);
}

static void
test_corrupt(void **state)
{
    (void)state;
    check_corrupt("unknown field", "relay=yes\n", "relay=yes\ncolour=red\n",
                  "unknown field 'colour'");
    check_corrupt("repeated field", "tls=encrypt\n", "tls=encrypt\ntls=may\n",
                  "field 'tls' repeated");
    check_corrupt("missing name", "name=acme\n", "", "missing field 'name'");
    check_corrupt("bad name", "name=acme\n", "name=../x\n", "bad value for field 'name'");
    check_corrupt("bad port", "port=2525\n", "port=0\n", "bad value for field 'port'");
    check_corrupt("port too big", "port=2525\n", "port=65536\n", "bad value for field 'port'");
    check_corrupt("bad tls", "tls=encrypt\n", "tls=maybe\n", "bad value for field 'tls'");
    check_corrupt("bad trigger", "trigger=connect atrn\n", "trigger=connect fly\n",
                  "bad value for field 'trigger'");
    check_corrupt("bad relay", "relay=yes\n", "relay=1\n", "bad value for field 'relay'");
    check_corrupt("bad secret", "secret={CRAM-MD5}", "secret={CRAM-MD5}x",
                  "bad value for field 'secret'");
    check_corrupt("bad domain", "domain=virt.dom\n", "domain=Virt.dom\n",
                  "bad value for field 'domain'");
    check_corrupt("bad address", "address=198.51.100.0/24\n", "address=198.51.100.1/24\n",
                  "bad value for field 'address'");
    check_corrupt("bad number", "max-messages=10000\n", "max-messages=-1\n",
                  "bad value for field 'max-messages'");
    check_corrupt("no '='", "relay=yes\n", "relay\n", "malformed field");
    check_corrupt("control byte", "relay=yes\n", "relay=y\001s\n",
                  "bad value for field 'relay'");
    check_corrupt("no final newline", "address=2001:db8:1::/48\n", "address=2001:db8:1::/48",
                  "record does not end with a newline");
    check_corrupt("host for connecting-ip", "delivery=host\n", "delivery=connecting-ip\n",
                  "host does not fit delivery connecting-ip");
    check_corrupt("line break inside a value", "secret={CRAM-MD5}", "secret=\nx={CRAM-MD5}",
                  "unknown field 'x'");
    check_corrupt("long field", "tls=encrypt\n", "tlstlstlstlstlstls=encrypt\n",
                  "field too long");
}

static void
test_corrupt_whole(void **state)
{
    static const char no_secret[] =
        "name=a\ndelivery=connecting-ip\nhost=\nport=25\ntls=may\ntrigger=atrn\nrelay=no\n"
        "secret=\nmax-messages=0\nmax-bytes=0\nmax-age=0\ndomain=a.example\n";
    static const char nothing[] =
        "name=a\ndelivery=connecting-ip\nhost=\nport=25\ntls=may\ntrigger=etrn\nrelay=no\n"
        "secret=\nmax-messages=0\nmax-bytes=0\nmax-age=0\n";
    static const char nul[] = "name=a\0b\n";
    struct customer *c = NULL;
    struct errbuf err;

    (void)state;
    assert_int_equal(customer_decode(no_secret, sizeof(no_secret) - 1, &c, &err), -1);
    assert_string_equal(err.msg, "trigger atrn without a secret");
    assert_int_equal(customer_decode(nothing, sizeof(nothing) - 1, &c, &err), -1);
    assert_string_equal(err.msg, "neither domain nor address");
    assert_int_equal(customer_decode(nul, sizeof(nul) - 1, &c, &err), -1);
    assert_string_equal(err.msg, "malformed field");
    assert_int_equal(customer_decode("", 0, &c, &err), -1);
    assert_string_equal(err.msg, "missing field 'name'");
    assert_null(c);
}

/* Every record size across the encoder's buffer boundaries (256, 512):
 * found by fuzz_custsrc, an exact fit once lost the last newline. */
static void
test_roundtrip_every_length(void **state)
{
    char label[64];
    size_t n;

    (void)state;
    for (n = 1; n <= 63; n++) {
        struct customer *c = customer_new(), *back = NULL;
        struct errbuf err;
        char *buf = NULL, *again = NULL;
        size_t len, len2, k;

        assert_non_null(c);
        assert_int_equal(str_copy(c->name, sizeof(c->name), "acme"), 0);
        memset(label, 'a', n);
        label[n] = '\0';
        for (k = 0; k < 6; k++) {
            label[0] = (char)('a' + k);
            assert_int_equal(customer_add_domain(c, label), 0);
        }
        assert_int_equal(customer_encode(c, &buf, &len), 0);
        assert_null(memchr(buf, '\0', len));
        assert_int_equal(buf[len - 1], '\n');
        assert_int_equal(customer_decode(buf, len, &back, &err), 0);
        assert_int_equal(customer_encode(back, &again, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, again, len);
        customer_free(c);
        customer_free(back);
        x_free(buf);
        x_free(again);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_corrupt_whole),
        cmocka_unit_test(test_roundtrip_every_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
