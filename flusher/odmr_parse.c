/* SPDX-License-Identifier: ISC */
/*
 * odmr_parse.c - the pure parsing of an ODMR session's input (see
 * odmr_parse.h). Base64 is OpenSSL's EVP block coder, made strict here.
 *
 * SECURITY: everything here comes from an unauthenticated network peer.
 * Lengths are checked before every copy; output buffers are the caller's
 * and their sizes are always passed; nothing is trusted to be
 * NUL-terminated except where the header says so.
 */
#include <stdint.h>

#include <openssl/evp.h>

#include "odmr_parse.h"
#include "util.h"

int
odmr_b64_encode(const void *in, size_t len, char *out, size_t size)
{
    if (len > INT32_MAX / 2 || 4 * ((len + 2) / 3) + 1 > size)
        return -1;
    (void)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return 0;
}

ssize_t
odmr_b64_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
    size_t pad = 0;
    int n;

    if (len == 0)
        return 0;
    if (len % 4 != 0 || len / 4 * 3 > size || len > INT32_MAX)
        return -1;
    if (in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    if (memchr(in, '=', len - pad) != NULL)
        return -1;
    if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) < 0)
        return -1;
    return (ssize_t)((size_t)n - pad);
}

int
odmr_plain_fields(const unsigned char *d, size_t n, const char **authz, const char **user,
                  const char **pass, size_t *passlen)
{
    const unsigned char *p1 = memchr(d, '\0', n), *p2;

    if (p1 == NULL || (p2 = memchr(p1 + 1, '\0', n - (size_t)(p1 + 1 - d))) == NULL)
        return -1;
    *authz = (const char *)d;
    *user = (const char *)p1 + 1;
    *pass = (const char *)p2 + 1;
    *passlen = n - (size_t)(p2 + 1 - d);
    return memchr(*pass, '\0', *passlen) == NULL ? 0 : -1;
}

int
odmr_cram_fields(const unsigned char *d, size_t n, char *user, size_t usersize,
                 const char **digest)
{
    const char *s = (const char *)d, *sp = strrchr(s, ' ');

    if (sp == NULL || strlen(s) != n || (size_t)(sp - s) >= usersize
        || strlen(sp + 1) != ODMR_CRAM_DIGEST)
        return -1;
    memcpy(user, s, (size_t)(sp - s));
    user[sp - s] = '\0';
    *digest = sp + 1;
    return 0;
}

int
odmr_parse_domains(char *arg, struct odmr_domains *d, const char **reply_r)
{
    char norm[DOMAIN_MAX + 1], *p, *next;
    const char *e;
    size_t used = 0, k;

    d->n = 0;
    for (p = arg; p != NULL; p = next) {
        if ((next = strchr(p, ',')) != NULL)
            *next++ = '\0';
        if (d->n == ODMR_DOMAINS_MAX) {
            *reply_r = "501 5.5.4 Too many domains";
            return -1;
        }
        if (domain_normalise(p, norm, sizeof(norm), &e) < 0) {
            *reply_r = "501 5.5.4 Syntax: ATRN [domain[,domain...]]";
            return -1;
        }
        k = strlen(norm) + 1;
        if (used + k > sizeof(d->buf)) {
            *reply_r = "501 5.5.4 Domain list too long";
            return -1;
        }
        memcpy(d->buf + used, norm, k);
        d->v[d->n++] = d->buf + used;
        used += k;
    }
    return 0;
}
