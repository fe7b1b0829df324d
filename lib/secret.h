/* SPDX-License-Identifier: ISC */
/*
 * secret.h - customer secrets for authenticated triggers (ODMR AUTH).
 *
 * Stored form (like Dovecot's CRAM-MD5 scheme): "{CRAM-MD5}" followed by 64
 * lower-case hex digits: the four 32-bit MD5 chaining words (little-endian)
 * of the HMAC-MD5 outer context, then those of the inner context, i.e. the
 * state after hashing (key XOR opad) and (key XOR ipad). This verifies
 * CRAM-MD5 responses and AUTH PLAIN passwords without storing the password.
 * (It is password-equivalent for CRAM-MD5, as in Dovecot: keep the table
 * file private.)
 */
#ifndef AUTOTURN_SECRET_H
#define AUTOTURN_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_SCHEME     "{CRAM-MD5}"
#define SECRET_TEXT_LEN   (sizeof(SECRET_SCHEME) - 1 + 64)

struct secret {
    uint32_t outer[4];
    uint32_t inner[4];
};

/* secret_make - derive the stored contexts from a password (any bytes). */
void secret_make(const void *password, size_t len, struct secret *s);

/* secret_format - "{CRAM-MD5}<64 hex>" into buf (>= SECRET_TEXT_LEN + 1). */
int secret_format(const struct secret *s, char *buf, size_t size);

/* secret_parse - the stored form back; 0 or -1 with *error_r static text. */
int secret_parse(const char *text, struct secret *s, const char **error_r);

/* secret_cram_response - hex HMAC-MD5(challenge) as a CRAM-MD5 client
 * would send it (32 hex digits + NUL into out[33]). */
void secret_cram_response(const struct secret *s, const void *challenge, size_t len,
                          char out[33]);

/* secret_cram_verify - true if response (32 hex digits, any case) is the
 * HMAC-MD5 of challenge under s. Constant-time compare. */
bool secret_cram_verify(const struct secret *s, const void *challenge, size_t len,
                        const char *response);

/* secret_plain_verify - true if password derives the same contexts. */
bool secret_plain_verify(const struct secret *s, const void *password, size_t len);

#endif
