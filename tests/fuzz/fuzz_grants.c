/* SPDX-License-Identifier: ISC */
/*
 * fuzz_grants.c - libFuzzer target for the grant files of
 * autoturn-policyd (policyd/grants.c): the snapshot and the journal, read
 * by grants_load at start-up, through the public functions only.
 *
 * Input: the snapshot's bytes, then (after a line "--journal--") the
 * journal's. Both are written to a private directory and loaded as the
 * daemon does (which also writes a fresh snapshot and empties the
 * journal).
 *
 * Invariants checked: every loaded grant is live at load time, its user
 * and customer fit their caps, grants_get finds it with the same facts,
 * and the count agrees; loading again from the snapshot that the first
 * load wrote gives exactly the same set (nothing lost or changed by the
 * snapshot round trip).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "grants.h"
#include "util.h"

#define NOW 1763700000
#define SEP "--journal--\n"
#define SET_MAX 4096

struct entry {
    struct ipaddr addr;
    char text[IPADDR_TEXT_MAX];
    char user[GRANT_USER_MAX + 1];
    char customer[CUSTOMER_NAME_MAX + 1];
    int64_t expires;
};

struct set {
    struct entry v[SET_MAX];
    size_t n;
};

static char path[512], jpath[512];
static struct set first, second;

static void
write_file(const char *p, const uint8_t *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(fd_write_all(fd, data, len) == 0);
    close(fd);
}

static int
collect(void *ctx, const struct grant_info *info)
{
    struct set *s = ctx;
    struct entry *e;

    FUZZ_CHECK(s->n < SET_MAX);
    e = &s->v[s->n++];
    FUZZ_CHECK(info->expires > NOW);
    FUZZ_CHECK(strlen(info->user) <= GRANT_USER_MAX);
    FUZZ_CHECK(strlen(info->customer) <= CUSTOMER_NAME_MAX);
    e->addr = info->addr;
    FUZZ_CHECK(ipaddr_format(&info->addr, e->text, sizeof(e->text)) != NULL);
    (void)str_copy(e->user, sizeof(e->user), info->user);
    (void)str_copy(e->customer, sizeof(e->customer), info->customer);
    e->expires = info->expires;
    return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->text, ((const struct entry *)b)->text);
}

/* load - a fresh set from the files; its grants sorted into s */
static void
load(struct set *s)
{
    struct grant_info info;
    struct grants *g;
    struct errbuf err;
    size_t i;

    FUZZ_CHECK((g = grants_new(path, 10800)) != NULL);
    FUZZ_CHECK(grants_load(g, NOW, &err) == 0);
    s->n = 0;
    FUZZ_CHECK(grants_foreach(g, NOW, collect, s) == 0);
    FUZZ_CHECK(s->n == grants_count(g));
    for (i = 0; i < s->n; i++) {
        FUZZ_CHECK(grants_get(g, &s->v[i].addr, NOW, &info) == 1);
        FUZZ_CHECK(strcmp(info.user, s->v[i].user) == 0);
        FUZZ_CHECK(strcmp(info.customer, s->v[i].customer) == 0);
        FUZZ_CHECK(info.expires == s->v[i].expires);
    }
    grants_free(g);
    qsort(s->v, s->n, sizeof(s->v[0]), cmp_entry);
    for (i = 1; i < s->n; i++)
        FUZZ_CHECK(strcmp(s->v[i - 1].text, s->v[i].text) != 0);   /* one per address */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    const uint8_t *sep;
    size_t snap, i;

    if (!init) {
        const char *dir = fuzz_scratch_dir("fuzz-grants");

        fuzz_quiet();
        FUZZ_CHECK(str_printf(path, sizeof(path), "%s/grants", dir) == 0);
        FUZZ_CHECK(str_printf(jpath, sizeof(jpath), "%s/grants.journal", dir) == 0);
        init = true;
    }
    sep = memmem(data, size, SEP, sizeof(SEP) - 1);
    snap = sep != NULL ? (size_t)(sep - data) : size;
    write_file(path, data, snap);
    if (sep != NULL)
        write_file(jpath, sep + sizeof(SEP) - 1, size - snap - (sizeof(SEP) - 1));
    else
        (void)unlink(jpath);
    load(&first);
    load(&second);             /* from the snapshot the first load wrote */
    FUZZ_CHECK(first.n == second.n);
    for (i = 0; i < first.n; i++) {
        FUZZ_CHECK(strcmp(first.v[i].text, second.v[i].text) == 0);
        FUZZ_CHECK(strcmp(first.v[i].user, second.v[i].user) == 0);
        FUZZ_CHECK(strcmp(first.v[i].customer, second.v[i].customer) == 0);
        FUZZ_CHECK(first.v[i].expires == second.v[i].expires);
    }
    return 0;
}
