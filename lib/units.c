/* SPDX-License-Identifier: ISC */
/*
 * units.c - durations ("90s", "1h30m", "5d") and sizes ("10M") as written
 * in autoturn.conf, the customer source and on the autoturnctl command
 * line, parsed and printed one way. Owns no state.
 *
 * SECURITY: the text comes from files and command lines; every digit is
 * checked for overflow before it is added, and nothing but ASCII digits and
 * the unit letters is accepted (no signs, no blanks, no locale).
 */
#include <stdint.h>

#include "util.h"
#include "units.h"

#define DURATION_UNITS_HINT "unknown unit (use s, m, h, d or w)"
#define SIZE_UNITS_HINT     "unknown unit (use k, m, g or t)"

static const char err_empty[] = "empty value";
static const char err_nan[] = "not a number";
static const char err_sign[] = "sign not allowed";
static const char err_blank[] = "blank not allowed";
static const char err_large[] = "value too large";
static const char err_missing_unit[] = "missing unit after number (use s, m, h, d or w)";

struct unit {
    char letter;
    uint64_t factor;
};

static const struct unit duration_units[] = {
    { 'w', 7 * 86400 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
};

static const struct unit size_units[] = {
    { 'T', (uint64_t)1 << 40 }, { 'G', (uint64_t)1 << 30 },
    { 'M', (uint64_t)1 << 20 }, { 'K', (uint64_t)1 << 10 },
};

/* is_digit - ASCII digit, whatever the locale */
static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* first_char_error - the error for a value that does not start with a digit */
static const char *
first_char_error(const char *s)
{
    if (*s == '\0')
        return err_empty;
    if (*s == '+' || *s == '-')
        return err_sign;
    if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        return err_blank;
    return err_nan;
}

/* scan_number - read the digits at *sp into *val_r, advance *sp */
static const char *
scan_number(const char **sp, uint64_t *val_r)
{
    const char *s = *sp;
    uint64_t val = 0;

    if (!is_digit(*s))
        return first_char_error(s);
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');

        if (val > (UINT64_MAX - d) / 10)
            return err_large;
        val = val * 10 + d;
    }
    *sp = s;
    *val_r = val;
    return NULL;
}

/* mul_add - *acc += a * b without overflow; NULL or err_large */
static const char *
mul_add(uint64_t *acc, uint64_t a, uint64_t b)
{
    if (b != 0 && a > UINT64_MAX / b)
        return err_large;
    if (*acc > UINT64_MAX - a * b)
        return err_large;
    *acc += a * b;
    return NULL;
}

/* find_unit - the factor of letter c (case-folded when fold), or 0 */
static uint64_t
find_unit(const struct unit *tab, size_t n, char c, int fold)
{
    size_t i;

    if (fold && c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    for (i = 0; i < n; i++)
        if (tab[i].letter == c)
            return tab[i].factor;
    return 0;
}

/* unit_error - what is wrong with the character after a number */
static const char *
unit_error(char c, const char *hint)
{
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
        return err_blank;
    if (c == '+' || c == '-')
        return err_sign;
    return hint;
}

/* parse_duration - the work of units_parse_duration; NULL or an error */
static const char *
parse_duration(const char *s, uint64_t *secs_r)
{
    uint64_t total = 0, val, factor;
    const char *err;
    int parts = 0;

    do {
        if ((err = scan_number(&s, &val)) != NULL)
            return err;
        if (*s == '\0') {
            if (parts > 0)
                return err_missing_unit;
            factor = 1;
        } else {
            factor = find_unit(duration_units, ARRAY_LEN(duration_units), *s, 0);
            if (factor == 0)
                return unit_error(*s, DURATION_UNITS_HINT);
            s++;
        }
        if ((err = mul_add(&total, val, factor)) != NULL)
            return err;
        parts++;
    } while (*s != '\0');
    *secs_r = total;
    return NULL;
}

int
units_parse_duration(const char *s, uint64_t *secs_r, const char **error_r)
{
    const char *err = parse_duration(s, secs_r);

    if (err != NULL) {
        if (error_r != NULL)
            *error_r = err;
        return -1;
    }
    return 0;
}

/* parse_size - the work of units_parse_size; NULL or an error */
static const char *
parse_size(const char *s, uint64_t *bytes_r)
{
    uint64_t val, factor = 1, total = 0;
    const char *err;

    if ((err = scan_number(&s, &val)) != NULL)
        return err;
    if (*s != '\0') {
        factor = find_unit(size_units, ARRAY_LEN(size_units), *s, 1);
        if (factor == 0)
            return unit_error(*s, SIZE_UNITS_HINT);
        if (s[1] != '\0')
            return unit_error(s[1], SIZE_UNITS_HINT);
    }
    if ((err = mul_add(&total, val, factor)) != NULL)
        return err;
    *bytes_r = total;
    return NULL;
}

int
units_parse_size(const char *s, uint64_t *bytes_r, const char **error_r)
{
    const char *err = parse_size(s, bytes_r);

    if (err != NULL) {
        if (error_r != NULL)
            *error_r = err;
        return -1;
    }
    return 0;
}

int
units_parse_uint(const char *s, uint64_t max, uint64_t *val_r, const char **error_r)
{
    const char *err;
    uint64_t val;

    if ((err = scan_number(&s, &val)) == NULL) {
        if (*s != '\0')
            err = unit_error(*s, err_nan);
        else if (val > max)
            err = err_large;
    }
    if (err != NULL) {
        if (error_r != NULL)
            *error_r = err;
        return -1;
    }
    *val_r = val;
    return 0;
}

/* append - add "<n><unit>" to buf at *len; truncation leaves a prefix */
static void
append(char *buf, size_t size, size_t *len, uint64_t n, char unit)
{
    if (*len >= size)
        return;
    if (str_printf(buf + *len, size - *len, "%llu%c", (unsigned long long)n, unit) < 0) {
        *len = size;
        return;
    }
    *len += strlen(buf + *len);
}

const char *
units_format_duration(uint64_t secs, char *buf, size_t size)
{
    size_t i, len = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (secs == 0) {
        append(buf, size, &len, 0, 's');
        return buf;
    }
    for (i = 0; i < ARRAY_LEN(duration_units); i++) {
        uint64_t f = duration_units[i].factor;

        if (secs >= f) {
            append(buf, size, &len, secs / f, duration_units[i].letter);
            secs %= f;
        }
    }
    return buf;
}

const char *
units_format_size(uint64_t bytes, char *buf, size_t size)
{
    size_t i;

    if (size == 0)
        return buf;
    for (i = 0; i < ARRAY_LEN(size_units); i++) {
        uint64_t f = size_units[i].factor;

        if (bytes != 0 && bytes % f == 0) {
            (void)str_printf(buf, size, "%llu%c", (unsigned long long)(bytes / f),
                             size_units[i].letter);   /* a prefix is the best we can do */
            return buf;
        }
    }
    (void)str_printf(buf, size, "%llu", (unsigned long long)bytes);
    return buf;
}
