/* SPDX-License-Identifier: ISC */
/*
 * json.c - the JSON writer of autoturnctl (see json.h). Owns no state
 * beyond the struct json of the caller.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "json.h"
#include "util.h"

void
json_init(struct json *j, FILE *fp)
{
    j->fp = fp;
    j->depth = 0;
    j->first[0] = true;
}

/* utf8_len - length of the valid UTF-8 sequence at s (at most n bytes
 * available), 0 if the bytes there are not one (RFC 3629 table). */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned lo = 0x80, hi = 0xbf;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static void
put_string(FILE *fp, const char *v)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v), len;

    fputc('"', fp);
    while (n > 0) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', fp);
            fputc(*s, fp);
        } else if (*s < 0x20 || *s == 0x7f) {
            fprintf(fp, "\\u%04x", *s);
        } else if ((len = utf8_len(s, n)) == 0) {
            fputs("\\ufffd", fp);
        } else {
            fwrite(s, 1, len, fp);
            s += len;
            n -= len;
            continue;
        }
        s++;
        n--;
    }
    fputc('"', fp);
}

/* member - the comma and the key before a value */
static void
member(struct json *j, const char *key)
{
    if (!j->first[j->depth])
        fputc(',', j->fp);
    j->first[j->depth] = false;
    if (key != NULL) {
        put_string(j->fp, key);
        fputc(':', j->fp);
    }
}

static void
open_one(struct json *j, const char *key, char c)
{
    member(j, key);
    fputc(c, j->fp);
    if (j->depth < JSON_DEPTH_MAX)
        j->depth++;
    j->first[j->depth] = true;
}

void
json_object(struct json *j, const char *key)
{
    open_one(j, key, '{');
}

void
json_array(struct json *j, const char *key)
{
    open_one(j, key, '[');
}

void
json_end(struct json *j, char close)
{
    fputc(close, j->fp);
    if (j->depth > 0)
        j->depth--;
}

void
json_string(struct json *j, const char *key, const char *v)
{
    member(j, key);
    if (v == NULL)
        fputs("null", j->fp);
    else
        put_string(j->fp, v);
}

void
json_uint(struct json *j, const char *key, uint64_t v)
{
    member(j, key);
    fprintf(j->fp, "%" PRIu64, v);
}

void
json_int(struct json *j, const char *key, int64_t v)
{
    member(j, key);
    fprintf(j->fp, "%" PRId64, v);
}

void
json_bool(struct json *j, const char *key, bool v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->fp);
}

void
json_finish(struct json *j)
{
    fputc('\n', j->fp);
}

int
json_buf_open(struct json_buf *b)
{
    FILE *fp = tmpfile();    /* unlinked at once; a table of a million customers fits */

    if (fp == NULL)
        return -1;
    json_init(&b->j, fp);
    return 0;
}

/* copy_out - the whole of fp to stdout */
static int
copy_out(FILE *fp)
{
    char buf[65536];
    size_t n;

    if (fflush(fp) != 0 || fseek(fp, 0, SEEK_SET) != 0)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        if (fwrite(buf, 1, n, stdout) != n)
            return -1;
    return ferror(fp) ? -1 : 0;
}

int
json_buf_close(struct json_buf *b, bool print)
{
    int rc = 0;

    json_finish(&b->j);
    if (ferror(b->j.fp) || (print && copy_out(b->j.fp) < 0))
        rc = -1;
    if (fclose(b->j.fp) != 0)
        rc = -1;
    return rc;
}
