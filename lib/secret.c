/* SPDX-License-Identifier: ISC */
/*
 * secret.c - customer secrets stored as HMAC-MD5 precomputed contexts
 * (Dovecot's CRAM-MD5 scheme): derive them from a password, print and
 * parse the stored form, verify CRAM-MD5 responses and plain passwords.
 * Owns no state.
 *
 * SECURITY: the stored form is password-equivalent for CRAM-MD5; it is
 * never echoed in error messages. Comparisons are constant-time.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/md5.h>

#include "secret.h"
#include "util.h"

#define HMAC_BLOCK 64

static const char err_scheme[] = "does not start with {CRAM-MD5}";
static const char err_length[] = "expected 64 hex digits after {CRAM-MD5}";
static const char err_hex[] = "not a lower-case hex digit after {CRAM-MD5}";

/* pad_state - the four MD5 words after compressing (key XOR pad). */
static void
pad_state(const unsigned char key[HMAC_BLOCK], unsigned char pad, uint32_t words[4])
{
    unsigned char block[HMAC_BLOCK];
    MD5_CTX ctx;
    size_t i;

    for (i = 0; i < HMAC_BLOCK; i++)
        block[i] = key[i] ^ pad;
    MD5_Init(&ctx);
    MD5_Update(&ctx, block, sizeof(block));
    words[0] = ctx.A;
    words[1] = ctx.B;
    words[2] = ctx.C;
    words[3] = ctx.D;
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(&ctx, sizeof(ctx));
}

void
secret_make(const void *password, size_t len, struct secret *s)
{
    unsigned char key[HMAC_BLOCK] = {0};

    if (len > HMAC_BLOCK)
        MD5(password, len, key);
    else if (len > 0)
        memcpy(key, password, len);
    pad_state(key, 0x5c, s->outer);
    pad_state(key, 0x36, s->inner);
    OPENSSL_cleanse(key, sizeof(key));
}

/* put_words - four words as 32 lower-case hex digits, little-endian bytes. */
static void
put_words(const uint32_t w[4], char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, b;

    for (i = 0; i < 4; i++)
        for (b = 0; b < 4; b++) {
            unsigned byte = (w[i] >> (8 * b)) & 0xff;

            *out++ = hex[byte >> 4];
            *out++ = hex[byte & 0xf];
        }
}

int
secret_format(const struct secret *s, char *buf, size_t size)
{
    size_t n = sizeof(SECRET_SCHEME) - 1;

    if (size < SECRET_TEXT_LEN + 1)
        return -1;
    memcpy(buf, SECRET_SCHEME, n);
    put_words(s->outer, buf + n);
    put_words(s->inner, buf + n + 32);
    buf[SECRET_TEXT_LEN] = '\0';
    return 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* get_words - 32 hex digits back into four words; -1 on a bad digit. */
static int
get_words(const char *in, uint32_t w[4])
{
    size_t i, b;

    for (i = 0; i < 4; i++) {
        w[i] = 0;
        for (b = 0; b < 4; b++) {
            int hi = hexval(*in++), lo = hexval(*in++);

            if (hi < 0 || lo < 0)
                return -1;
            w[i] |= (uint32_t)(hi << 4 | lo) << (8 * b);
        }
    }
    return 0;
}

int
secret_parse(const char *text, struct secret *s, const char **error_r)
{
    size_t n = sizeof(SECRET_SCHEME) - 1;

    if (strncmp(text, SECRET_SCHEME, n) != 0) {
        *error_r = err_scheme;
        return -1;
    }
    if (strlen(text) != SECRET_TEXT_LEN) {
        *error_r = err_length;
        return -1;
    }
    if (get_words(text + n, s->outer) < 0 || get_words(text + n + 32, s->inner) < 0) {
        *error_r = err_hex;
        return -1;
    }
    return 0;
}

/* restore - an MD5 context as it was after one 64-byte block. */
static void
restore(MD5_CTX *ctx, const uint32_t w[4])
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->A = w[0];
    ctx->B = w[1];
    ctx->C = w[2];
    ctx->D = w[3];
    ctx->Nl = HMAC_BLOCK * 8;
    ctx->Nh = 0;
    ctx->num = 0;
}

/* hmac - HMAC-MD5 of msg from the stored contexts. */
static void
hmac(const struct secret *s, const void *msg, size_t len, unsigned char digest[16])
{
    unsigned char inner[16];
    MD5_CTX ctx;

    restore(&ctx, s->inner);
    MD5_Update(&ctx, msg, len);
    MD5_Final(inner, &ctx);
    restore(&ctx, s->outer);
    MD5_Update(&ctx, inner, sizeof(inner));
    MD5_Final(digest, &ctx);
    OPENSSL_cleanse(&ctx, sizeof(ctx));
}

void
secret_cram_response(const struct secret *s, const void *challenge, size_t len, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[16];
    size_t i;

    hmac(s, challenge, len, digest);
    for (i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[32] = '\0';
}

bool
secret_cram_verify(const struct secret *s, const void *challenge, size_t len,
                   const char *response)
{
    char want[33], got[33];
    size_t i;

    for (i = 0; i < 32; i++) {
        char c = response[i];

        if (c == '\0')
            return false;
        got[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    if (response[32] != '\0')
        return false;
    got[32] = '\0';
    secret_cram_response(s, challenge, len, want);
    return CRYPTO_memcmp(want, got, 32) == 0;
}

bool
secret_plain_verify(const struct secret *s, const void *password, size_t len)
{
    struct secret t;
    bool ok;

    secret_make(password, len, &t);
    ok = CRYPTO_memcmp(&t, s, sizeof(t)) == 0;
    OPENSSL_cleanse(&t, sizeof(t));
    return ok;
}
