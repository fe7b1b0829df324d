/* SPDX-License-Identifier: ISC */
/*
 * test_addr.c - addresses and networks: parse (good and every named bad
 * input), v4-mapped normalisation, mask, contains, format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "util.h"

static void
test_net_parse_good(void **state)
{
    static const struct {
        const char *in, *want;
        int family;
        unsigned prefix;
    } rows[] = {
        {"1.2.3.4", "1.2.3.4", AF_INET, 32},
        {"10.0.0.0/8", "10.0.0.0/8", AF_INET, 8},
        {"0.0.0.0/0", "0.0.0.0/0", AF_INET, 0},
        {"198.51.100.0/24", "198.51.100.0/24", AF_INET, 24},
        {"2001:db8::/32", "2001:db8::/32", AF_INET6, 32},
        {"::1", "::1", AF_INET6, 128},
        {"2001:DB8:1::/48", "2001:db8:1::/48", AF_INET6, 48},
        {"::ffff:192.0.2.1", "192.0.2.1", AF_INET, 32},
        {"::ffff:192.0.2.0/120", "192.0.2.0/24", AF_INET, 24},
        {"1.2.3.4/032", "1.2.3.4", AF_INET, 32},
    };
    char buf[IPNET_TEXT_MAX];
    struct ipnet n;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        const char *why = NULL;

        printf("%s\n", rows[i].in);
        assert_int_equal(ipnet_parse(rows[i].in, &n, &why), 0);
        assert_int_equal(n.addr.family, rows[i].family);
        assert_int_equal(n.prefix, rows[i].prefix);
        assert_string_equal(ipnet_format(&n, buf, sizeof(buf)), rows[i].want);
    }
}

static void
test_net_parse_bad(void **state)
{
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"1.2.3.4/33", "prefix length out of range"},
        {"::/129", "prefix length out of range"},
        {"1.2.3.0/0024", "prefix length out of range"},
        {"::g", "not an IPv4 or IPv6 address"},
        {"", "not an IPv4 or IPv6 address"},
        {"1.2.3", "not an IPv4 or IPv6 address"},
        {"1.2.3.4.5", "not an IPv4 or IPv6 address"},
        {"example.com", "not an IPv4 or IPv6 address"},
        {"/8", "not an IPv4 or IPv6 address"},
        {"1.2.3.4/", "prefix length is not a decimal number"},
        {"1.2.3.4/+8", "prefix length is not a decimal number"},
        {"1.2.3.4/-1", "prefix length is not a decimal number"},
        {"1.2.3.4/8x", "prefix length is not a decimal number"},
        {"10.0.0.1/8", "host bits set after the prefix length"},
        {"2001:db8::1/32", "host bits set after the prefix length"},
        {"::ffff:1.2.3.0/90", "host bits set after the prefix length"},
        {"1111:2222:3333:4444:5555:6666:7777:8888:9999/64", "not an IPv4 or IPv6 address"},
    };
    struct ipnet n;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        const char *why = NULL;

        printf("%s\n", rows[i].in);
        assert_int_equal(ipnet_parse(rows[i].in, &n, &why), -1);
        assert_string_equal(why, rows[i].want);
    }
}

static void
test_addr(void **state)
{
    struct sockaddr_in6 sin6 = {0};
    struct sockaddr_in sin = {0};
    struct sockaddr sa = {0};
    struct ipaddr a, b;
    struct ipnet n;
    const char *why = NULL;
    char buf[IPADDR_TEXT_MAX];

    (void)state;
    assert_int_equal(ipaddr_parse("10.1.2.3/8", &a, &why), -1);
    assert_string_equal(why, "not an IPv4 or IPv6 address");
    assert_int_equal(ipaddr_parse("::ffff:10.1.2.3", &a, &why), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(ipaddr_bits(&a), 32);
    assert_string_equal(ipaddr_format(&a, buf, sizeof(buf)), "10.1.2.3");
    assert_int_equal(ipaddr_parse("10.1.2.3", &b, &why), 0);
    assert_true(ipaddr_equal(&a, &b));
    assert_int_equal(ipnet_parse("10.0.0.0/8", &n, &why), 0);
    assert_true(ipnet_contains(&n, &a));
    assert_int_equal(ipaddr_parse("11.1.2.3", &b, &why), 0);
    assert_false(ipnet_contains(&n, &b));
    assert_int_equal(ipaddr_parse("::a01:203", &b, &why), 0);
    assert_false(ipnet_contains(&n, &b));

    a.family = AF_INET;
    memset(a.bytes, 0xff, 4);
    ipaddr_mask(&a, 20);
    assert_string_equal(ipaddr_format(&a, buf, sizeof(buf)), "255.255.240.0");
    assert_int_equal(ipaddr_parse("2001:db8:ffff:ffff::1", &a, &why), 0);
    ipaddr_mask(&a, 36);
    assert_string_equal(ipaddr_format(&a, buf, sizeof(buf)), "2001:db8:f000::");

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0xc0000201);
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
    assert_string_equal(ipaddr_format(&a, buf, sizeof(buf)), "192.0.2.1");
    sin6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr), 1);
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&sin6, &b), 0);
    assert_true(ipaddr_equal(&a, &b));
    sa.sa_family = AF_UNIX;
    assert_int_equal(ipaddr_from_sockaddr(&sa, &a), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_parse_good),
        cmocka_unit_test(test_net_parse_bad),
        cmocka_unit_test(test_addr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
