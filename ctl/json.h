/* SPDX-License-Identifier: ISC */
/*
 * json.h - the JSON that "autoturnctl ... --json" prints: a small writer
 * (objects, arrays, strings, integers, booleans, null) with commas and
 * escaping done for the caller. Written here because the output is a
 * handful of flat records and Debian's JSON libraries (json-c, jansson)
 * would build a tree in memory only to print it once.
 *
 * Strings are bytes from the spool, the table or a daemon: '"', '\' and
 * control characters are escaped, and bytes that are not valid UTF-8
 * become U+FFFD, so the output is always valid JSON (RFC 8259).
 */
#ifndef AUTOTURN_CTL_JSON_H
#define AUTOTURN_CTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 8

struct json {
    FILE *fp;
    int depth;
    bool first[JSON_DEPTH_MAX + 1];   /* no member written yet at this depth */
};

/* In every call, key is the member name inside an object, NULL inside an
 * array or at the top. */
void json_init(struct json *j, FILE *fp);
void json_object(struct json *j, const char *key);      /* { */
void json_array(struct json *j, const char *key);       /* [ */
void json_end(struct json *j, char close);              /* } or ] */
void json_string(struct json *j, const char *key, const char *v);   /* NULL: null */
void json_uint(struct json *j, const char *key, uint64_t v);
void json_int(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_finish(struct json *j);                        /* the final newline */

/* A document built aside (in an unlinked temporary file: a listing may
 * be large), printed only when the command succeeds: a daemon or table
 * that fails half-way through a listing leaves no half JSON. */
struct json_buf {
    struct json j;
};
int json_buf_open(struct json_buf *b);                   /* 0, or -1 (ENOMEM) */
/* json_buf_close - with print, the document and a newline to stdout; frees. */
int json_buf_close(struct json_buf *b, bool print);      /* 0, or -1 */

#endif
