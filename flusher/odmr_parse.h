/* SPDX-License-Identifier: ISC */
/*
 * odmr_parse.h - the pure parsing of an ODMR session's input (RFC 2645,
 * RFC 4954): base64 in AUTH exchanges, the AUTH PLAIN and CRAM-MD5
 * responses, and the ATRN domain list. No I/O and no state, so that the
 * session (odmr_session.c) stays a dialogue and these can be fuzzed
 * (tests/fuzz/fuzz_odmr.c).
 */
#ifndef AUTOTURN_ODMR_PARSE_H
#define AUTOTURN_ODMR_PARSE_H

#include <stddef.h>
#include <sys/types.h>

#include "customer.h"

#define ODMR_LINE_MAX       2048   /* a command or AUTH response line, without CRLF */
#define ODMR_DOMAINS_MAX    64     /* domains in one ATRN */
#define ODMR_AUTH_DECODED   1024   /* bytes of a decoded AUTH response */
#define ODMR_CRAM_DIGEST    32     /* hex digits of a CRAM-MD5 digest */

/* odmr_b64_encode - base64 of in[0..len) into out (NUL-terminated);
 * 0, or -1 when out is too small. */
int odmr_b64_encode(const void *in, size_t len, char *out, size_t size);

/* odmr_b64_decode - strict: length a multiple of 4, padding only at the
 * end; returns the decoded length (padding excluded), or -1 on bad input
 * or when out (size bytes) is too small. */
ssize_t odmr_b64_decode(const char *in, size_t len, unsigned char *out, size_t size);

/* odmr_plain_fields - a decoded AUTH PLAIN response d[0..n): authzid NUL
 * authcid NUL password (RFC 4616); the pointers point into d (authz and
 * user NUL-terminated there, pass is *passlen bytes). 0, or -1 when
 * there are not exactly two NULs. */
int odmr_plain_fields(const unsigned char *d, size_t n, const char **authz, const char **user,
                      const char **pass, size_t *passlen);

/* odmr_cram_fields - a decoded CRAM-MD5 response d[0..n) "user digest"
 * (RFC 2195): user (at most usersize - 1 bytes) copied into user, *digest
 * points at the ODMR_CRAM_DIGEST characters in d. d must have a NUL at
 * d[n]. 0, or -1 when malformed. */
int odmr_cram_fields(const unsigned char *d, size_t n, char *user, size_t usersize,
                     const char **digest);

/* The domains of one ATRN, normalised (lower case, no trailing dot). */
struct odmr_domains {
    char *v[ODMR_DOMAINS_MAX];
    size_t n;
    char buf[ODMR_LINE_MAX + 1];
};

/* odmr_parse_domains - "d1,d2,..." (arg is changed); 0, or -1 with the
 * SMTP reply for the client in *reply_r. */
int odmr_parse_domains(char *arg, struct odmr_domains *d, const char **reply_r);

#endif
