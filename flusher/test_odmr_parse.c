/* SPDX-License-Identifier: ISC */
/*
 * test_odmr_parse.c - the ODMR input parsers (odmr_parse.c) as tables:
 * strict base64, AUTH PLAIN fields, the CRAM-MD5 response, and the ATRN
 * domain list with the exact reply for each bad one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "odmr_parse.h"
#include "util.h"

static const struct {
    const char *in;
    ssize_t n;                    /* decoded length, -1 refused */
    const char *out;
} b64_cases[] = {
    {"", 0, ""},
    {"QQ==", 1, "A"},
    {"QUI=", 2, "AB"},
    {"QUJD", 3, "ABC"},
    {"AGFjbWUAc2VjcmV0", 12, "\0acme\0secret"},
    {"QQ=", -1, ""},              /* not a multiple of 4 */
    {"Q===", -1, ""},             /* three pads */
    {"QQ==QUJD", -1, ""},         /* padding in the middle */
    {"QU=D", -1, ""},
    {"QU*D", -1, ""},             /* not base64 */
};

static void
test_b64(void **state)
{
    unsigned char out[64];
    char enc[64];
    size_t i;
    ssize_t n;

    (void)state;
    for (i = 0; i < ARRAY_LEN(b64_cases); i++) {
        print_message("case %zu: \"%s\"\n", i, b64_cases[i].in);
        n = odmr_b64_decode(b64_cases[i].in, strlen(b64_cases[i].in), out, sizeof(out));
        assert_int_equal(n, b64_cases[i].n);
        if (n > 0) {
            assert_memory_equal(out, b64_cases[i].out, (size_t)n);
            assert_int_equal(odmr_b64_encode(out, (size_t)n, enc, sizeof(enc)), 0);
            assert_string_equal(enc, b64_cases[i].in);
        }
    }
    assert_int_equal(odmr_b64_decode("QUJDQUJD", 8, out, 5), -1);     /* no room */
    assert_int_equal(odmr_b64_encode("ABCD", 4, enc, 8), -1);          /* needs 9 */
}

static void
test_plain(void **state)
{
    const char *authz, *user, *pass;
    size_t passlen;

    (void)state;
    assert_int_equal(odmr_plain_fields((const unsigned char *)"\0acme\0pw", 8, &authz, &user,
                                       &pass, &passlen), 0);
    assert_string_equal(authz, "");
    assert_string_equal(user, "acme");
    assert_int_equal(passlen, 2);
    assert_memory_equal(pass, "pw", 2);
    assert_int_equal(odmr_plain_fields((const unsigned char *)"acme\0pw", 7, &authz, &user,
                                       &pass, &passlen), -1);         /* one NUL */
    assert_int_equal(odmr_plain_fields((const unsigned char *)"\0a\0p\0w", 6, &authz, &user,
                                       &pass, &passlen), -1);         /* three */
}

static void
test_cram(void **state)
{
    static const char ok[] = "acme 0123456789abcdef0123456789abcdef";
    char user[CUSTOMER_NAME_MAX + 2], long_resp[CUSTOMER_NAME_MAX + 40];
    const char *digest;

    (void)state;
    assert_int_equal(odmr_cram_fields((const unsigned char *)ok, strlen(ok), user,
                                      sizeof(user) - 1, &digest), 0);
    assert_string_equal(user, "acme");
    assert_string_equal(digest, "0123456789abcdef0123456789abcdef");
    assert_int_equal(odmr_cram_fields((const unsigned char *)"acme 0123", 9, user,
                                      sizeof(user) - 1, &digest), -1);  /* short digest */
    assert_int_equal(odmr_cram_fields((const unsigned char *)"acme", 4, user, sizeof(user) - 1,
                                      &digest), -1);                    /* no blank */
    assert_int_equal(odmr_cram_fields((const unsigned char *)"a\0cme 0123456789abcdef0123456789"
                                      "abcdef", 37, user, sizeof(user) - 1, &digest), -1);
    memset(long_resp, 'a', CUSTOMER_NAME_MAX + 1);
    (void)str_copy(long_resp + CUSTOMER_NAME_MAX + 1, 34, " 0123456789abcdef0123456789abcdef");
    assert_int_equal(odmr_cram_fields((const unsigned char *)long_resp, strlen(long_resp), user,
                                      sizeof(user) - 1, &digest), -1);  /* name too long */
}

static const struct {
    const char *in;
    const char *reply;            /* NULL: accepted */
    size_t n;
    const char *first;
} domain_cases[] = {
    {"virt.dom", NULL, 1, "virt.dom"},
    {"Virt.DOM.,sub.virt.dom", NULL, 2, "virt.dom"},
    {"virt.dom,", "501 5.5.4 Syntax: ATRN [domain[,domain...]]", 0, NULL},
    {"a..b", "501 5.5.4 Syntax: ATRN [domain[,domain...]]", 0, NULL},
    {"virt dom", "501 5.5.4 Syntax: ATRN [domain[,domain...]]", 0, NULL},
};

static void
test_domains(void **state)
{
    static struct odmr_domains d;
    char arg[ODMR_LINE_MAX + 1];
    const char *reply;
    size_t i, len;

    (void)state;
    for (i = 0; i < ARRAY_LEN(domain_cases); i++) {
        print_message("case %zu: %s\n", i, domain_cases[i].in);
        reply = NULL;
        (void)str_copy(arg, sizeof(arg), domain_cases[i].in);
        if (domain_cases[i].reply == NULL) {
            assert_int_equal(odmr_parse_domains(arg, &d, &reply), 0);
            assert_int_equal(d.n, domain_cases[i].n);
            assert_string_equal(d.v[0], domain_cases[i].first);
        } else {
            assert_int_equal(odmr_parse_domains(arg, &d, &reply), -1);
            assert_string_equal(reply, domain_cases[i].reply);
        }
    }
    for (len = 0, i = 0; i <= ODMR_DOMAINS_MAX; i++)
        len += (size_t)snprintf(arg + len, sizeof(arg) - len, "%sd%zu.example", i ? "," : "", i);
    assert_int_equal(odmr_parse_domains(arg, &d, &reply), -1);
    assert_string_equal(reply, "501 5.5.4 Too many domains");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_cram),
        cmocka_unit_test(test_domains),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
