/* SPDX-License-Identifier: ISC */
/*
 * usage.h - the per-customer usage record <spool>/<customer>/.usage: how
 * many messages and bytes are held and the oldest arrival, so that quota
 * checks and status queries need not list the spool. This module is the
 * record's text form (fixed size, fixed offsets, so that it is rewritten
 * in place with one pwrite) and this boot's identity; lib/spool.c owns
 * the file, its lock and the rules for when it is trusted
 * (docs/spool-format.md, "The usage record").
 *
 * The record (USAGE_SIZE bytes; names padded to 9 columns, numbers
 * right-aligned in 20):
 *
 *   autoturn-usage 1
 *   state    clean                 ("dirty" while a change is under way)
 *   boot     <36-character boot id>
 *   counted  <unix time>           (when the spool was last counted)
 *   messages <n>
 *   bytes    <n>
 *   oldest   <unix time>           (0: nothing held; -1: not known)
 *   check    <8 hex digits>        (FNV-1a of the record without the
 *                                   state word and this line)
 */
#ifndef AUTOTURN_USAGE_H
#define AUTOTURN_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USAGE_FILE          ".usage"
#define USAGE_SIZE          216        /* bytes of a record */
#define USAGE_STATE_OFFSET  26         /* of the word "clean" / "dirty" */
#define USAGE_STATE_LEN     5
#define USAGE_BOOT_LEN      36
#define USAGE_OLDEST_UNKNOWN (-1)

struct usage {
    int64_t counted;                /* when the spool was last counted */
    uint64_t messages;
    uint64_t bytes;
    int64_t oldest;                 /* arrival of the oldest; 0 none; -1 unknown */
    bool dirty;                     /* a change was under way */
    char boot[USAGE_BOOT_LEN + 1];  /* the boot that wrote it */
};

/* usage_format - the record of u as USAGE_SIZE bytes (no NUL); u->boot
 * must be USAGE_BOOT_LEN characters (usage_boot_id()). */
void usage_format(const struct usage *u, char buf[USAGE_SIZE]);

/* usage_parse - 0, or -1 with *why_r saying what is wrong: "short
 * record", "bad header" (the first line, a field name or a line end out
 * of place), "bad state", "bad boot id", "bad counted", "bad messages",
 * "bad bytes", "bad oldest", "checksum mismatch". Exactly USAGE_SIZE
 * bytes form a record; len may be larger (the rest is ignored) or
 * smaller (then it is short). */
int usage_parse(const char *buf, size_t len, struct usage *u, const char **why_r);

/* usage_boot_id - this boot's id from /proc/sys/kernel/random/boot_id,
 * read once; USAGE_BOOT_UNKNOWN when it cannot be read. */
#define USAGE_BOOT_UNKNOWN "00000000-0000-0000-0000-000000000000"
const char *usage_boot_id(void);

/* usage_same_boot - may a record written by boot be trusted in this boot? */
bool usage_same_boot(const char *boot);

#endif
