/* SPDX-License-Identifier: ISC */
/*
 * test_grants.c - unit tests of the grant store (grants.c): set, get,
 * renew (and when a renewal is journaled), expire at the exact second,
 * revoke, the expiry heap against a shadow array with many grants,
 * over-long user/customer, snapshot + journal replay across a restart,
 * a torn last journal line, corrupt snapshot lines (exact log text), and
 * I/O failures (journal or snapshot directory unusable). Time is passed
 * in; nothing sleeps. Files live in a mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grants.h"
#include "log.h"
#include "util.h"

#define T0      1700000000          /* "now" of the tests */
#define TTL     10800
#define LOG_MAX 8192

struct fixture {
    char dir[64];
    char path[128];                 /* dir/grants */
    char journal[160];              /* dir/grants.journal */
    char logpath[128];              /* captured stderr */
    char log[LOG_MAX];
};

static struct ipaddr
ip(const char *s)
{
    struct ipaddr a;
    const char *e;

    assert_int_equal(ipaddr_parse(s, &a, &e), 0);
    return a;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(str_copy(f->dir, sizeof(f->dir), "/tmp/test_grants.XXXXXX"), 0);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(str_printf(f->path, sizeof(f->path), "%s/grants", f->dir), 0);
    assert_int_equal(str_printf(f->journal, sizeof(f->journal), "%s.journal", f->path), 0);
    assert_int_equal(str_printf(f->logpath, sizeof(f->logpath), "%s/log", f->dir), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    assert_int_equal(str_printf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir), 0);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* read_file - whole file into buf; returns its length (-1: missing) */
static long
read_file(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    buf[0] = '\0';
    if (fp == NULL)
        return -1;
    n = fread(buf, 1, size - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return (long)n;
}

static long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) < 0 ? -1 : (long)st.st_size;
}

/* load_logged - grants_load with stderr captured into f->log */
static int
load_logged(struct fixture *f, struct grants *g, int64_t now, struct errbuf *err)
{
    int saved = dup(STDERR_FILENO), fd, rc;

    fd = open(f->logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    log_init("test_grants", LOG_DEST_STDERR, 0, LOG_LEVEL_INFO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    rc = grants_load(g, now, err);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(fd);
    close(saved);
    read_file(f->logpath, f->log, sizeof(f->log));
    return rc;
}

static void
assert_grant(struct grants *g, const char *addr, int64_t now, const char *user,
             const char *customer, int64_t expires)
{
    struct ipaddr a = ip(addr);
    struct grant_info gi;

    assert_int_equal(grants_get(g, &a, now, &gi), 1);
    assert_string_equal(gi.user, user);
    assert_string_equal(gi.customer, customer);
    assert_int_equal(gi.expires, expires);
    assert_true(ipaddr_equal(&gi.addr, &a));
}

static void
test_set_get(void **state)
{
    struct grants *g = grants_new("", TTL);
    struct ipaddr a = ip("192.0.2.1"), b = ip("2001:db8::1"), c = ip("192.0.2.2");
    struct grant_info gi;
    struct errbuf err;

    (void)state;
    assert_non_null(g);
    assert_int_equal(grants_set(g, &a, "joe@virt.dom", "acme", "smtp-auth", T0 + 100, T0, &err), 0);
    assert_int_equal(grants_set(g, &b, NULL, NULL, "smtp-auth", T0 + 50, T0, &err), 0);
    assert_int_equal(grants_count(g), 2);
    assert_grant(g, "192.0.2.1", T0, "joe@virt.dom", "acme", T0 + 100);
    assert_grant(g, "2001:db8::1", T0, "", "", T0 + 50);
    assert_int_equal(grants_get(g, &c, T0, &gi), 0);
    assert_int_equal(grants_get(g, &a, T0 + 99, NULL), 1);
    /* live until the second before expires; gone (and removed) at it */
    assert_int_equal(grants_get(g, &b, T0 + 50, &gi), 0);
    assert_int_equal(grants_count(g), 1);
    grants_free(g);
}

static void
test_renew(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct ipaddr a = ip("192.0.2.1");
    struct errbuf err;
    long size;

    assert_non_null(g);
    assert_int_equal(grants_load(g, T0, &err), 0);
    assert_int_equal(grants_set(g, &a, "joe", "acme", "smtp-auth", T0 + TTL, T0, &err), 0);
    size = file_size(f->journal);
    assert_true(size > 0);
    /* a renewal by less than half the ttl costs no journal write */
    assert_int_equal(grants_set(g, &a, "joe", "acme", "smtp-auth", T0 + TTL + TTL / 2 - 1, T0 + 10, &err), 0);
    assert_int_equal(file_size(f->journal), size);
    assert_grant(g, "192.0.2.1", T0 + 10, "joe", "acme", T0 + TTL + TTL / 2 - 1);
    /* half the ttl beyond what is on disk: journaled */
    assert_int_equal(grants_set(g, &a, "joe", "acme", "smtp-auth", T0 + TTL + TTL / 2, T0 + 20, &err), 0);
    assert_true(file_size(f->journal) > size);
    size = file_size(f->journal);
    /* another user for the same address: replaced and journaled */
    assert_int_equal(grants_set(g, &a, "ann", "beta", "smtp-auth", T0 + TTL + TTL / 2, T0 + 30, &err), 0);
    assert_true(file_size(f->journal) > size);
    size = file_size(f->journal);
    assert_grant(g, "192.0.2.1", T0 + 30, "ann", "beta", T0 + TTL + TTL / 2);
    /* a shorter expiry than the one on disk is journaled too */
    assert_int_equal(grants_set(g, &a, "ann", "beta", "smtp-auth", T0 + 100, T0 + 40, &err), 0);
    assert_true(file_size(f->journal) > size);
    assert_int_equal(grants_count(g), 1);
    /* setting over an expired grant makes a new one */
    assert_int_equal(grants_set(g, &a, "joe", "", "smtp-auth", T0 + 500, T0 + 100, &err), 0);
    assert_grant(g, "192.0.2.1", T0 + 100, "joe", "", T0 + 500);
    assert_int_equal(grants_count(g), 1);
    grants_free(g);
}

static void
test_expire_revoke(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct ipaddr a = ip("192.0.2.1"), b = ip("192.0.2.2"), c = ip("192.0.2.3");
    struct errbuf err;
    char text[4096];

    assert_non_null(g);
    assert_int_equal(grants_set(g, &a, "a", "", "smtp-auth", T0 + 10, T0, &err), 0);
    assert_int_equal(grants_set(g, &b, "b", "", "smtp-auth", T0 + 20, T0, &err), 0);
    assert_int_equal(grants_set(g, &c, "c", "", "smtp-auth", T0 + 30, T0, &err), 0);
    assert_int_equal(grants_expire(g, T0 + 9), 0);
    assert_int_equal(grants_expire(g, T0 + 10), 1);
    assert_int_equal(grants_count(g), 2);
    assert_int_equal(grants_get(g, &a, T0, NULL), 0);
    assert_int_equal(grants_revoke(g, &c, &err), 1);
    assert_int_equal(grants_revoke(g, &c, &err), 0);
    assert_int_equal(grants_get(g, &c, T0, NULL), 0);
    assert_int_equal(grants_count(g), 1);
    assert_true(read_file(f->journal, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "REVOKE ip=192.0.2.3\n"));
    assert_int_equal(grants_expire(g, T0 + 1000), 1);
    assert_int_equal(grants_count(g), 0);
    grants_free(g);
}

/* --- the heap against a shadow array --- */

#define MANY 20000

struct shadow {
    int64_t expires[MANY];          /* 0 = absent */
};

static struct ipaddr
nth(unsigned i)
{
    struct ipaddr a;

    memset(&a, 0, sizeof(a));
    a.family = AF_INET;
    a.bytes[0] = 10;
    a.bytes[1] = (uint8_t)(i >> 16);
    a.bytes[2] = (uint8_t)(i >> 8);
    a.bytes[3] = (uint8_t)i;
    return a;
}

static size_t
shadow_live(const struct shadow *s, int64_t now)
{
    size_t i, n = 0;

    for (i = 0; i < MANY; i++)
        n += s->expires[i] > now;
    return n;
}

static int
count_fn(void *ctx, const struct grant_info *info)
{
    (void)info;
    (*(size_t *)ctx)++;
    return 0;
}

static void
test_heap_many(void **state)
{
    struct grants *g = grants_new("", TTL);
    static struct shadow s;
    struct ipaddr a;
    struct errbuf err;
    uint64_t rng = 12345;
    size_t seen, live, prev = MANY - (MANY - 3 + 10) / 11, i;
    int64_t now;

    (void)state;
    assert_non_null(g);
    memset(&s, 0, sizeof(s));
    for (i = 0; i < MANY; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        s.expires[i] = T0 + 1 + (int64_t)(rng >> 33) % 100000;
        a = nth((unsigned)i);
        assert_int_equal(grants_set(g, &a, "u", "c", "smtp-auth", s.expires[i], T0, &err), 0);
    }
    assert_int_equal(grants_count(g), MANY);
    /* move some up, some down, revoke some: heap_up, heap_down, removal
     * from the middle */
    for (i = 0; i < MANY; i += 7) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        s.expires[i] = T0 + 1 + (int64_t)(rng >> 33) % 100000;
        a = nth((unsigned)i);
        assert_int_equal(grants_set(g, &a, "u", "c", "smtp-auth", s.expires[i], T0, &err), 0);
    }
    for (i = 3; i < MANY; i += 11) {
        a = nth((unsigned)i);
        assert_int_equal(grants_revoke(g, &a, &err), s.expires[i] != 0);
        s.expires[i] = 0;
    }
    for (now = T0; now <= T0 + 100000 + 997; now += 997) {
        live = shadow_live(&s, now);
        assert_int_equal(grants_expire(g, now), prev - live);
        assert_int_equal(grants_count(g), live);
        prev = live;
        seen = 0;
        assert_int_equal(grants_foreach(g, now, count_fn, &seen), 0);
        assert_int_equal(seen, live);
    }
    assert_int_equal(grants_count(g), 0);
    grants_free(g);
}

static void
test_too_long(void **state)
{
    struct grants *g = grants_new("", TTL);
    struct ipaddr a = ip("192.0.2.1");
    char user[GRANT_USER_MAX + 2], cust[CUSTOMER_NAME_MAX + 2];
    struct errbuf err;

    (void)state;
    assert_non_null(g);
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    memset(cust, 'c', sizeof(cust) - 1);
    cust[sizeof(cust) - 1] = '\0';
    assert_int_equal(grants_set(g, &a, user, "", "smtp-auth", T0 + 10, T0, &err), -1);
    assert_string_equal(err.msg, "cannot record a grant: user, customer or source too long, "
                                 "or out of memory");
    assert_int_equal(grants_set(g, &a, "", cust, "smtp-auth", T0 + 10, T0, &err), -1);
    assert_string_equal(err.msg, "cannot record a grant: user, customer or source too long, "
                                 "or out of memory");
    assert_int_equal(grants_count(g), 0);
    user[GRANT_USER_MAX] = '\0';
    cust[CUSTOMER_NAME_MAX] = '\0';
    assert_int_equal(grants_set(g, &a, user, cust, "smtp-auth", T0 + 10, T0, &err), 0);
    assert_grant(g, "192.0.2.1", T0, user, cust, T0 + 10);
    grants_free(g);
}

/* --- persistence --- */

static void
test_restart(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct ipaddr a = ip("192.0.2.1"), b = ip("2001:db8::2"), c = ip("192.0.2.3"),
                  d = ip("192.0.2.4");
    struct errbuf err;
    char text[4096];

    assert_non_null(g);
    assert_int_equal(grants_load(g, T0, &err), 0);        /* no files: empty */
    assert_int_equal(grants_count(g), 0);
    assert_int_equal(grants_set(g, &a, "joe@virt.dom", "acme", "smtp-auth", T0 + 1000, T0, &err), 0);
    assert_int_equal(grants_set(g, &b, "ann", "beta corp", "smtp-auth", T0 + 2000, T0, &err), 0);
    assert_int_equal(grants_set(g, &c, "", "", "smtp-auth", T0 + 3000, T0, &err), 0);
    assert_int_equal(grants_set(g, &d, "short", "", "smtp-auth", T0 + 100, T0, &err), 0);
    assert_false(grants_snapshot_due(g, T0 + GRANTS_SNAPSHOT_INTERVAL - 1));
    assert_true(grants_snapshot_due(g, T0 + GRANTS_SNAPSHOT_INTERVAL));
    assert_int_equal(grants_snapshot(g, T0 + 1, &err), 0);  /* a, b, c, d on disk */
    assert_int_equal(file_size(f->journal), 0);
    assert_false(grants_snapshot_due(g, T0 + 10 * GRANTS_SNAPSHOT_INTERVAL));
    /* after the snapshot: one revoke and one new grant, journal only */
    assert_int_equal(grants_revoke(g, &c, &err), 1);
    assert_int_equal(grants_set(g, &c, "new", "", "control:root", T0 + 4000, T0 + 2, &err), 0);
    assert_int_equal(grants_revoke(g, &a, &err), 1);
    assert_true(read_file(f->journal, text, sizeof(text)) > 0);
    assert_string_equal(text, "REVOKE ip=192.0.2.3\n"
                              "GRANT ip=192.0.2.3 user=new customer= source=control:root "
                              "expires=1700004000\n"
                              "REVOKE ip=192.0.2.1\n");
    grants_free(g);                                          /* "crash" */

    /* restart at T0 + 200: d has expired meanwhile */
    assert_non_null(g = grants_new(f->path, TTL));
    assert_int_equal(load_logged(f, g, T0 + 200, &err), 0);
    assert_string_equal(f->log, "");
    assert_int_equal(grants_count(g), 2);
    assert_int_equal(grants_get(g, &a, T0 + 200, NULL), 0);
    assert_int_equal(grants_get(g, &d, T0 + 200, NULL), 0);
    assert_grant(g, "2001:db8::2", T0 + 200, "ann", "beta corp", T0 + 2000);
    assert_grant(g, "192.0.2.3", T0 + 200, "new", "", T0 + 4000);
    /* the load wrote a fresh snapshot and emptied the journal */
    assert_int_equal(file_size(f->journal), 0);
    assert_true(read_file(f->path, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "GRANT ip=2001:db8::2 user=ann customer=beta%20corp "
                                 "source=smtp-auth expires=1700002000\n"));
    assert_null(strstr(text, "192.0.2.1"));
    grants_free(g);

    /* and once more: the same set from the snapshot alone */
    assert_non_null(g = grants_new(f->path, TTL));
    assert_int_equal(load_logged(f, g, T0 + 300, &err), 0);
    assert_int_equal(grants_count(g), 2);
    assert_grant(g, "192.0.2.3", T0 + 300, "new", "", T0 + 4000);
    grants_free(g);
}

/* test_source - the source is kept, persisted, journaled when it changes;
 * a line from before sources were recorded loads as "unknown"; only
 * smtp-auth and control:<user> are trusted */
static void
test_source(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct ipaddr a = ip("192.0.2.1"), b = ip("192.0.2.2");
    struct grant_info gi;
    struct errbuf err;
    char text[4096], longsrc[GRANT_SOURCE_MAX + 1];

    assert_non_null(g);
    write_file(f->path, "GRANT ip=192.0.2.1 user=joe customer=acme expires=1700001000\n");
    assert_int_equal(load_logged(f, g, T0, &err), 0);
    assert_int_equal(grants_get(g, &a, T0, &gi), 1);
    assert_string_equal(gi.source, "unknown");
    assert_false(peer_grant_source_trusted(gi.source));
    /* the same user and customer from a trusted source: a change, journaled */
    assert_int_equal(grants_set(g, &a, "joe", "acme", "smtp-auth", T0 + 1000, T0, &err), 0);
    assert_int_equal(grants_get(g, &a, T0, &gi), 1);
    assert_string_equal(gi.source, "smtp-auth");
    assert_true(read_file(f->journal, text, sizeof(text)) > 0);
    assert_string_equal(text, "GRANT ip=192.0.2.1 user=joe customer=acme source=smtp-auth "
                              "expires=1700001000\n");
    assert_int_equal(grants_set(g, &b, "", "acme", "control:vmail", T0 + 10, T0, &err), 0);
    assert_int_equal(grants_get(g, &b, T0, &gi), 1);
    assert_string_equal(gi.source, "control:vmail");
    memset(longsrc, 'x', sizeof(longsrc) - 1);
    longsrc[sizeof(longsrc) - 1] = '\0';
    assert_int_equal(grants_set(g, &b, "", "acme", longsrc, T0 + 10, T0, &err), -1);
    grants_free(g);
    assert_true(peer_grant_source_trusted("smtp-auth"));
    assert_true(peer_grant_source_trusted("control:root"));
    assert_false(peer_grant_source_trusted("control:"));
    assert_false(peer_grant_source_trusted("smtp-auth2"));
    assert_false(peer_grant_source_trusted(""));
}

static void
test_torn_journal(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct errbuf err;
    char want[512];

    assert_non_null(g);
    write_file(f->path, "GRANT ip=192.0.2.1 user=a customer= expires=1700001000\n");
    write_file(f->journal, "GRANT ip=192.0.2.2 user=b customer= expires=1700001000\n"
                           "REVOKE ip=192.0.2.1\n"
                           "GRANT ip=192.0.2.3 user=c cust");
    assert_int_equal(load_logged(f, g, T0, &err), 0);
    assert_int_equal(grants_count(g), 1);
    assert_grant(g, "192.0.2.2", T0, "b", "", T0 + 1000);
    assert_int_equal(grants_get(g, &(struct ipaddr){ .family = AF_INET,
                                .bytes = { 192, 0, 2, 1 } }, T0, NULL), 0);
    assert_int_equal(grants_get(g, &(struct ipaddr){ .family = AF_INET,
                                .bytes = { 192, 0, 2, 3 } }, T0, NULL), 0);
    assert_int_equal(str_printf(want, sizeof(want),
                                "%s:3: incomplete or overlong line ignored\n", f->journal), 0);
    assert_non_null(strstr(f->log, want));
    assert_int_equal(file_size(f->journal), 0);
    grants_free(g);
}

static const struct {
    const char *label, *line, *want;
} corrupt[] = {
    { "bad ip", "GRANT ip=192.0.2.300 user=a expires=1700001000\n", "bad or missing ip" },
    { "no ip", "GRANT user=a expires=1700001000\n", "bad or missing ip" },
    { "bad expires", "GRANT ip=192.0.2.9 user=a expires=soon\n", "bad or missing expires" },
    { "no expires", "GRANT ip=192.0.2.9 user=a\n", "bad or missing expires" },
    { "unknown verb", "HOLD ip=192.0.2.9 expires=1700001000\n", "unknown verb HOLD" },
    { "bad escape", "GRANT ip=192.0.2.9 user=a%zz expires=1700001000\n", "bad argument 2: bad %-escape" },
    { "bad verb", "grant ip=192.0.2.9 expires=1700001000\n", "bad verb" },
    { "duplicate key", "GRANT ip=192.0.2.9 ip=192.0.2.8 expires=1700001000\n", "duplicate key 'ip'" },
    { "too long user", "GRANT ip=192.0.2.9 user=" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx expires=1700001000\n",
      "cannot record a grant: user, customer or source too long, or out of memory" },
};

static void
test_corrupt_snapshot(void **state)
{
    struct fixture *f = *state;
    struct grants *g;
    struct errbuf err;
    char text[2048], want[512];
    size_t i;

    for (i = 0; i < ARRAY_LEN(corrupt); i++) {
        assert_int_equal(str_printf(text, sizeof(text), "%s%s%s",
                                    "GRANT ip=192.0.2.1 user=a customer= expires=1700001000\n",
                                    corrupt[i].line,
                                    "GRANT ip=192.0.2.2 user=b customer= expires=1700001000\n"),
                         0);
        write_file(f->path, text);
        assert_non_null(g = grants_new(f->path, TTL));
        assert_int_equal(load_logged(f, g, T0, &err), 0);
        assert_int_equal(str_printf(want, sizeof(want), "%s:2: %s; line ignored\n", f->path,
                                    corrupt[i].want), 0);
        if (strstr(f->log, want) == NULL)
            fail_msg("%s: want \"%s\" in log \"%s\"", corrupt[i].label, want, f->log);
        assert_int_equal(grants_count(g), 2);
        assert_int_equal(grants_get(g, &(struct ipaddr){ .family = AF_INET,
                                    .bytes = { 192, 0, 2, 9 } }, T0, NULL), 0);
        grants_free(g);
    }
}

/* --- I/O failures --- */

static void
test_journal_unwritable(void **state)
{
    struct fixture *f = *state;
    struct grants *g = grants_new(f->path, TTL);
    struct ipaddr a = ip("192.0.2.1");
    struct errbuf err;
    char want[256];

    assert_non_null(g);
    assert_int_equal(mkdir(f->journal, 0700), 0);      /* a directory where the journal goes */
    assert_int_equal(grants_set(g, &a, "joe", "", "smtp-auth", T0 + 100, T0, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "open %s: Is a directory", f->journal), 0);
    assert_string_equal(err.msg, want);
    assert_grant(g, "192.0.2.1", T0, "joe", "", T0 + 100);   /* still valid in memory */
    assert_int_equal(grants_revoke(g, &a, &err), -1);
    assert_string_equal(err.msg, want);
    assert_int_equal(grants_get(g, &a, T0, NULL), 0);        /* removed anyway */
    assert_int_equal(rmdir(f->journal), 0);
    grants_free(g);
}

static void
test_snapshot_fails(void **state)
{
    struct fixture *f = *state;
    struct grants *g;
    struct ipaddr a = ip("192.0.2.1");
    struct errbuf err;
    char path[192], want[320];

    /* the snapshot's directory does not exist */
    assert_int_equal(str_printf(path, sizeof(path), "%s/nodir/grants", f->dir), 0);
    assert_non_null(g = grants_new(path, TTL));
    assert_int_equal(grants_snapshot(g, T0, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "create %s.tmp: No such file or directory",
                                path), 0);
    assert_string_equal(err.msg, want);
    grants_free(g);

    /* the snapshot is a directory: reading it fails, nothing is loaded */
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_non_null(g = grants_new(f->path, TTL));
    assert_int_equal(load_logged(f, g, T0, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "read %s: Is a directory", f->path), 0);
    assert_string_equal(err.msg, want);
    /* and renaming the new snapshot over it fails; the journal is kept */
    assert_int_equal(grants_set(g, &a, "joe", "", "smtp-auth", T0 + 100, T0, &err), 0);
    assert_int_equal(grants_snapshot(g, T0, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "rename %s.tmp to %s: Is a directory",
                                f->path, f->path), 0);
    assert_string_equal(err.msg, want);
    assert_true(file_size(f->journal) > 0);
    assert_true(grants_snapshot_due(g, T0 + GRANTS_SNAPSHOT_INTERVAL));
    assert_int_equal(rmdir(f->path), 0);
    grants_free(g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test_setup_teardown(test_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_revoke, setup, teardown),
        cmocka_unit_test(test_heap_many),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_fails, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
