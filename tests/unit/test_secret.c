/* SPDX-License-Identifier: ISC */
/*
 * test_secret.c - stored CRAM-MD5 contexts: HMAC-MD5 against OpenSSL's
 * HMAC() on the RFC 2202 vectors, the RFC 2195 example, parse errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "secret.h"
#include "util.h"

struct vec {
    const char *label;
    const char *key;
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *want;   /* hex HMAC-MD5 from the RFC */
};

static char key_aa80[80], data_dd50[50], key_0b16[16], key_aa16[16];

static const struct vec *
vectors(size_t *n)
{
    static struct vec v[7];

    memset(key_aa80, 0xaa, sizeof(key_aa80));
    memset(key_aa16, 0xaa, sizeof(key_aa16));
    memset(data_dd50, 0xdd, sizeof(data_dd50));
    memset(key_0b16, 0x0b, sizeof(key_0b16));
    v[0] = (struct vec){"rfc2202 1", key_0b16, 16, "Hi There", 8,
                        "9294727a3638bb1c13f48ef8158bfc9d"};
    v[1] = (struct vec){"rfc2202 2", "Jefe", 4, "what do ya want for nothing?", 28,
                        "750c783e6ab0b503eaa86e310a5db738"};
    v[2] = (struct vec){"rfc2202 3", key_aa16, 16, data_dd50, 50,
                        "56be34521d144c88dbb8c733f0e8b3f6"};
    v[3] = (struct vec){"rfc2202 6 (80-byte key)", key_aa80, 80,
                        "Test Using Larger Than Block-Size Key - Hash Key First", 54,
                        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"};
    v[4] = (struct vec){"rfc2202 7", key_aa80, 80,
                        "Test Using Larger Than Block-Size Key and Larger Than One "
                        "Block-Size Data", 73, "6f630fad67cda0ee1fb1f562db3aa53e"};
    v[5] = (struct vec){"empty key", "", 0, "abc", 3, NULL};
    v[6] = (struct vec){"64-byte key", key_aa80, 64, "", 0, NULL};
    *n = ARRAY_LEN(v);
    return v;
}

static void
hex(const unsigned char *d, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        (void)snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
test_hmac_vectors(void **state)
{
    size_t n, i;
    const struct vec *v = vectors(&n);

    (void)state;
    for (i = 0; i < n; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char want[33], got[33];
        struct secret s;

        HMAC(EVP_md5(), v[i].key, (int)v[i].keylen, (const unsigned char *)v[i].data,
             v[i].datalen, md, &mdlen);
        assert_int_equal(mdlen, 16);
        hex(md, 16, want);
        if (v[i].want != NULL)
            assert_string_equal(want, v[i].want);
        secret_make(v[i].key, v[i].keylen, &s);
        secret_cram_response(&s, v[i].data, v[i].datalen, got);
        printf("%s: %s\n", v[i].label, got);
        assert_string_equal(got, want);
        assert_true(secret_cram_verify(&s, v[i].data, v[i].datalen, want));
        assert_true(secret_plain_verify(&s, v[i].key, v[i].keylen));
    }
}

static void
test_rfc2195(void **state)
{
    static const char challenge[] = "<1896.697170952@postoffice.reston.mci.net>";
    struct secret s, back;
    char text[SECRET_TEXT_LEN + 1], resp[33];
    const char *why = NULL;

    (void)state;
    /* RFC 2195's example uses the shared secret "tanstaaftanstaaf" */
    secret_make("tanstaaftanstaaf", 16, &s);
    secret_cram_response(&s, challenge, strlen(challenge), resp);
    assert_string_equal(resp, "b913a602c7eda7a495b4e6e7334d3890");
    assert_true(secret_plain_verify(&s, "tanstaaftanstaaf", 16));
    assert_true(secret_cram_verify(&s, challenge, strlen(challenge),
                                   "b913a602c7eda7a495b4e6e7334d3890"));
    assert_true(secret_cram_verify(&s, challenge, strlen(challenge),
                                   "B913A602C7EDA7A495B4E6E7334D3890"));
    assert_false(secret_cram_verify(&s, challenge, strlen(challenge),
                                    "b913a602c7eda7a495b4e6e7334d3891"));
    assert_false(secret_cram_verify(&s, challenge, strlen(challenge),
                                    "b913a602c7eda7a495b4e6e7334d389"));
    assert_false(secret_cram_verify(&s, challenge, strlen(challenge),
                                    "b913a602c7eda7a495b4e6e7334d38900"));
    assert_false(secret_cram_verify(&s, "x", 1, "b913a602c7eda7a495b4e6e7334d3890"));
    /* "tanstaafl" on the same challenge, as Python's hmac module computes it */
    secret_make("tanstaafl", 9, &s);
    secret_cram_response(&s, challenge, strlen(challenge), resp);
    assert_string_equal(resp, "84ec099ec2b1e79cad1d3bc135300ac9");
    assert_true(secret_plain_verify(&s, "tanstaafl", 9));
    assert_false(secret_plain_verify(&s, "tanstaafm", 9));
    assert_false(secret_plain_verify(&s, "tanstaaf", 8));

    assert_int_equal(secret_format(&s, text, sizeof(text)), 0);
    assert_int_equal(strlen(text), SECRET_TEXT_LEN);
    assert_int_equal(secret_format(&s, text, SECRET_TEXT_LEN), -1);
    assert_int_equal(secret_format(&s, text, sizeof(text)), 0);
    assert_int_equal(secret_parse(text, &back, &why), 0);
    assert_memory_equal(&s, &back, sizeof(s));
    /* the Dovecot form, as computed by tests/cli/cram_context.py */
    assert_string_equal(text, "{CRAM-MD5}4834a402d71b988f933e0444e8aeba58"
                              "bc50a137b6c9892bd5f46d384a406f8a");
}

static void
test_parse_errors(void **state)
{
    static const struct {
        const char *label, *in, *want;
    } rows[] = {
        {"empty", "", "does not start with {CRAM-MD5}"},
        {"other scheme", "{PLAIN}secret", "does not start with {CRAM-MD5}"},
        {"lower-case scheme", "{cram-md5}0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "does not start with {CRAM-MD5}"},
        {"short", "{CRAM-MD5}0123", "expected 64 hex digits after {CRAM-MD5}"},
        {"long", "{CRAM-MD5}0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
         "expected 64 hex digits after {CRAM-MD5}"},
        {"upper hex", "{CRAM-MD5}0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         "not a lower-case hex digit after {CRAM-MD5}"},
        {"not hex", "{CRAM-MD5}0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef",
         "not a lower-case hex digit after {CRAM-MD5}"},
    };
    struct secret s;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        const char *why = NULL;

        printf("%s\n", rows[i].label);
        assert_int_equal(secret_parse(rows[i].in, &s, &why), -1);
        assert_string_equal(why, rows[i].want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_rfc2195),
        cmocka_unit_test(test_parse_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
