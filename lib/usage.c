/* SPDX-License-Identifier: ISC */
/*
 * usage.c - the text form of the per-customer usage record (see usage.h)
 * and this boot's identity. No file I/O on the record: lib/spool.c reads
 * and writes it under its lock.
 *
 * SECURITY: the record is read from the spool, which only the daemons'
 * user can write; the parser still trusts nothing: fixed size, every
 * field at its fixed offset, numbers of at most 20 digits checked for
 * overflow, and a checksum, so that a torn or edited record is refused
 * (the spool then counts again) rather than believed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "usage.h"
#include "util.h"

#define HEADER      "autoturn-usage 1\n"
#define NUM_WIDTH   20
#define BOOT_PATH   "/proc/sys/kernel/random/boot_id"

/* the lines after the header, each "name " then a fixed-width value */
struct line {
    const char *name;
    size_t width;
};
static const struct line lines[] = {
    {"state    ", USAGE_STATE_LEN},
    {"boot     ", USAGE_BOOT_LEN},
    {"counted  ", NUM_WIDTH},
    {"messages ", NUM_WIDTH},
    {"bytes    ", NUM_WIDTH},
    {"oldest   ", NUM_WIDTH},
    {"check    ", 8},
};
enum { L_STATE, L_BOOT, L_COUNTED, L_MESSAGES, L_BYTES, L_OLDEST, L_CHECK };

static char boot_id[USAGE_BOOT_LEN + 1] = USAGE_BOOT_UNKNOWN;
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

/* offset_of - where line i's value starts */
static size_t
offset_of(size_t i)
{
    size_t off = sizeof(HEADER) - 1, k;

    for (k = 0; k < i; k++)
        off += strlen(lines[k].name) + lines[k].width + 1;
    return off + strlen(lines[i].name);
}

/* checksum - FNV-1a over the record before the check line, the state
 * word left out (it changes alone, with a 5-byte write) */
static uint32_t
checksum(const char *buf)
{
    size_t end = offset_of(L_CHECK) - strlen(lines[L_CHECK].name), i;
    uint32_t h = 2166136261u;

    for (i = 0; i < end; i++) {
        if (i >= USAGE_STATE_OFFSET && i < USAGE_STATE_OFFSET + USAGE_STATE_LEN)
            continue;
        h = (h ^ (unsigned char)buf[i]) * 16777619u;
    }
    return h;
}

void
usage_format(const struct usage *u, char buf[USAGE_SIZE])
{
    char tmp[USAGE_SIZE + 1];

    (void)snprintf(tmp, sizeof(tmp),
                   HEADER "state    %s\nboot     %-36.36s\ncounted  %20lld\nmessages %20llu\n"
                   "bytes    %20llu\noldest   %20lld\ncheck    00000000\n",
                   u->dirty ? "dirty" : "clean", u->boot, (long long)u->counted,
                   (unsigned long long)u->messages,
                   (unsigned long long)u->bytes, (long long)u->oldest);
    memcpy(buf, tmp, USAGE_SIZE);
    (void)snprintf(tmp, sizeof(tmp), "%08x", checksum(buf));
    memcpy(buf + offset_of(L_CHECK), tmp, 8);
}

/* parse_num - a right-aligned decimal in NUM_WIDTH columns, exactly as
 * usage_format writes it (no leading zero, no "-0"); with neg, "-1" is
 * allowed too */
static int
parse_num(const char *p, bool neg, uint64_t *v_r, bool *minus_r)
{
    size_t i = 0;
    uint64_t v = 0;

    *minus_r = false;
    while (i < NUM_WIDTH && p[i] == ' ')
        i++;
    if (neg && i < NUM_WIDTH && p[i] == '-') {
        *minus_r = true;
        i++;
    }
    if (i == NUM_WIDTH || (p[i] == '0' && (*minus_r || i + 1 < NUM_WIDTH)))
        return -1;
    for (; i < NUM_WIDTH; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *v_r = v;
    return 0;
}

/* shape_ok - the header, every name and every LF where it belongs */
static bool
shape_ok(const char *buf)
{
    size_t i, off;

    if (memcmp(buf, HEADER, sizeof(HEADER) - 1) != 0)
        return false;
    for (i = 0; i < ARRAY_LEN(lines); i++) {
        off = offset_of(i);
        if (memcmp(buf + off - strlen(lines[i].name), lines[i].name, strlen(lines[i].name)) != 0
            || buf[off + lines[i].width] != '\n')
            return false;
    }
    return true;
}

static bool
boot_ok(const char *p)
{
    size_t i;

    for (i = 0; i < USAGE_BOOT_LEN; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || p[i] == '-'))
            return false;
    return true;
}

/* parse_numbers - counted, messages, bytes, oldest */
static int
parse_numbers(const char *buf, struct usage *u, const char **why_r)
{
    uint64_t v;
    bool minus;

    if (parse_num(buf + offset_of(L_COUNTED), false, &v, &minus) < 0 || v > INT64_MAX) {
        *why_r = "bad counted";
        return -1;
    }
    u->counted = (int64_t)v;
    if (parse_num(buf + offset_of(L_MESSAGES), false, &u->messages, &minus) < 0) {
        *why_r = "bad messages";
        return -1;
    }
    if (parse_num(buf + offset_of(L_BYTES), false, &u->bytes, &minus) < 0) {
        *why_r = "bad bytes";
        return -1;
    }
    if (parse_num(buf + offset_of(L_OLDEST), true, &v, &minus) < 0 || (minus && v != 1) ||
        v > INT64_MAX) {
        *why_r = "bad oldest";
        return -1;
    }
    u->oldest = minus ? USAGE_OLDEST_UNKNOWN : (int64_t)v;
    return 0;
}

int
usage_parse(const char *buf, size_t len, struct usage *u, const char **why_r)
{
    const char *state = buf + USAGE_STATE_OFFSET, *check;
    char want[9];

    memset(u, 0, sizeof(*u));
    if (len < USAGE_SIZE) {
        *why_r = "short record";
        return -1;
    }
    if (!shape_ok(buf)) {
        *why_r = "bad header";
        return -1;
    }
    if (memcmp(state, "clean", 5) != 0 && memcmp(state, "dirty", 5) != 0) {
        *why_r = "bad state";
        return -1;
    }
    u->dirty = state[0] == 'd';
    if (!boot_ok(buf + offset_of(L_BOOT))) {
        *why_r = "bad boot id";
        return -1;
    }
    memcpy(u->boot, buf + offset_of(L_BOOT), USAGE_BOOT_LEN);
    u->boot[USAGE_BOOT_LEN] = '\0';
    if (parse_numbers(buf, u, why_r) < 0)
        return -1;
    check = buf + offset_of(L_CHECK);
    (void)snprintf(want, sizeof(want), "%08x", checksum(buf));
    if (memcmp(check, want, 8) != 0) {
        *why_r = "checksum mismatch";
        return -1;
    }
    return 0;
}

/* read_boot_id - once per process */
static void
read_boot_id(void)
{
    char buf[64];
    ssize_t n;
    int fd = open(BOOT_PATH, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n >= USAGE_BOOT_LEN && boot_ok(buf))
        memcpy(boot_id, buf, USAGE_BOOT_LEN);
}

const char *
usage_boot_id(void)
{
    (void)pthread_once(&boot_once, read_boot_id);
    return boot_id;
}

bool
usage_same_boot(const char *boot)
{
    const char *mine = usage_boot_id();

    /* without a boot id of our own we cannot tell: trust the record */
    return strcmp(mine, USAGE_BOOT_UNKNOWN) == 0 || strcmp(mine, boot) == 0;
}
