/* SPDX-License-Identifier: ISC */
/*
 * units.h - parse and print durations ("90s", "30m", "5d") and sizes
 * ("10M") the same way everywhere: config, customer source, autoturnctl.
 *
 * Durations: a non-negative integer followed by one unit, s m h d w
 * (seconds, minutes, hours, days, weeks); a bare integer means seconds.
 * Several parts may be joined: "1h30m". Sizes: an integer followed by
 * an optional k K m M g G t T (powers of 1024); a bare integer means bytes.
 * Overflow, empty strings, signs, blanks and unknown units are errors.
 */
#ifndef AUTOTURN_UNITS_H
#define AUTOTURN_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* units_parse_duration - 0 and *secs_r, or -1 with *error_r a static text. */
int units_parse_duration(const char *s, uint64_t *secs_r, const char **error_r);

/* units_parse_size - 0 and *bytes_r, or -1 with *error_r a static text. */
int units_parse_size(const char *s, uint64_t *bytes_r, const char **error_r);

/* units_parse_uint - plain decimal unsigned integer (no unit), <= max. */
int units_parse_uint(const char *s, uint64_t max, uint64_t *val_r, const char **error_r);

/* units_format_duration - "5d", "1h30m", "0s"; returns buf. */
const char *units_format_duration(uint64_t secs, char *buf, size_t size);

/* units_format_size - exact when possible ("10M", "1536K", "123"); returns buf. */
const char *units_format_size(uint64_t bytes, char *buf, size_t size);

#endif
