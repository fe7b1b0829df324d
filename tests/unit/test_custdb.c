/* SPDX-License-Identifier: ISC */
/*
 * test_custdb.c - the compiled table: compile, every kind of lookup,
 * cross-customer errors (exact text), atomic replacement, reload, and
 * damaged tables (always an error, never "not found").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cdb.h>

#include "custdb.h"
#include "custdb_compile.h"
#include "util.h"

#define SECRET_OK "{CRAM-MD5}0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[64];
static char src[128], dst[128];
static char errors[8192];

static void
on_error(void *ctx, const char *msg)
{
    size_t len = strlen(errors);

    (void)ctx;
    (void)snprintf(errors + len, sizeof(errors) - len, "%s%s", len ? "\n" : "", msg);
}

static void
write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static int
compile(const char *text, struct custdb_compile_stats *st)
{
    write_file(src, text, strlen(text));
    errors[0] = '\0';
    return custdb_compile(src, dst, on_error, NULL, st);
}

static int
setup(void **state)
{
    (void)state;
    assert_int_equal(str_copy(dir, sizeof(dir), "/tmp/test_custdb.XXXXXX"), 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(str_printf(src, sizeof(src), "%s/customers", dir), 0);
    assert_int_equal(str_printf(dst, sizeof(dst), "%s/customers.cdb", dir), 0);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    (void)state;
    assert_int_equal(str_printf(cmd, sizeof(cmd), "rm -rf '%s'", dir), 0);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const char table1[] =
    "customer acme\n"
    "  domain virt.dom .virt.dom\n"
    "  address 192.0.2.10 198.51.100.0/24 2001:db8:1::/48\n"
    "  trigger connect etrn atrn\n"
    "  secret " SECRET_OK "\n"
    "customer wide\n"
    "  domain .example.com\n"
    "  address 198.51.0.0/16 10.0.0.0/8 2001:db8::/32\n"
    "customer narrow\n"
    "  domain .b.example.com a.example.com\n"
    "  address 198.51.100.128/25\n"
    "customer beta\n"
    "  domain beta.example\n"
    "  delivery host [2001:db8::25]:2525\n";

struct probe {
    const char *query, *name, *rule;   /* name NULL: not found */
};

static void
check_domains(struct custdb *db, const struct probe *rows, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct custdb_match m = {{0}};
        struct customer *c = NULL;
        struct errbuf err;
        int r = custdb_lookup_domain(db, rows[i].query, &c, &m, &err);

        printf("domain %s\n", rows[i].query);
        assert_int_equal(r, rows[i].name != NULL);
        if (r == 1) {
            assert_string_equal(c->name, rows[i].name);
            assert_string_equal(m.rule, rows[i].rule);
        }
        customer_free(c);
    }
}

static void
check_addrs(struct custdb *db, const struct probe *rows, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct custdb_match m = {{0}};
        struct customer *c = NULL;
        struct errbuf err;
        const char *why;
        struct ipaddr a;
        int r;

        printf("address %s\n", rows[i].query);
        assert_int_equal(ipaddr_parse(rows[i].query, &a, &why), 0);
        r = custdb_lookup_addr(db, &a, &c, &m, &err);
        assert_int_equal(r, rows[i].name != NULL);
        if (r == 1) {
            assert_string_equal(c->name, rows[i].name);
            assert_string_equal(m.rule, rows[i].rule);
        }
        customer_free(c);
    }
}

static void
test_lookups(void **state)
{
    static const struct probe domains[] = {
        {"virt.dom", "acme", "virt.dom"},
        {"VIRT.Dom.", "acme", "virt.dom"},
        {"mail.virt.dom", "acme", ".virt.dom"},
        {"a.b.c.virt.dom", "acme", ".virt.dom"},
        {"example.com", NULL, NULL},
        {"x.example.com", "wide", ".example.com"},
        {"a.example.com", "narrow", "a.example.com"},
        {"b.example.com", "wide", ".example.com"},
        {"x.b.example.com", "narrow", ".b.example.com"},
        {"y.x.b.example.com", "narrow", ".b.example.com"},
        {"beta.example", "beta", "beta.example"},
        {"x.beta.example", NULL, NULL},
        {"other.dom", NULL, NULL},
        {"dom", NULL, NULL},
        {"bad..domain", NULL, NULL},
        {"", NULL, NULL},
    };
    static const struct probe addrs[] = {
        {"192.0.2.10", "acme", "192.0.2.10"},
        {"::ffff:192.0.2.10", "acme", "192.0.2.10"},
        {"192.0.2.11", NULL, NULL},
        {"198.51.100.1", "acme", "198.51.100.0/24"},
        {"198.51.100.200", "narrow", "198.51.100.128/25"},
        {"198.51.7.7", "wide", "198.51.0.0/16"},
        {"10.200.1.1", "wide", "10.0.0.0/8"},
        {"11.0.0.1", NULL, NULL},
        {"2001:db8:1::5", "acme", "2001:db8:1::/48"},
        {"2001:db8:2::5", "wide", "2001:db8::/32"},
        {"2001:db9::1", NULL, NULL},
        {"::1", NULL, NULL},
    };
    struct custdb_compile_stats st = {0};
    struct customer *c = NULL;
    struct custdb *db;
    struct errbuf err;

    (void)state;
    assert_int_equal(compile(table1, &st), 0);
    assert_string_equal(errors, "");
    assert_int_equal(st.customers, 4);
    assert_int_equal(st.domains, 6);
    assert_int_equal(st.networks, 7);
    assert_non_null(db = custdb_new(dst));
    assert_int_equal(custdb_refresh(db, &err), 0);
    check_domains(db, domains, ARRAY_LEN(domains));
    check_addrs(db, addrs, ARRAY_LEN(addrs));
    assert_int_equal(custdb_lookup_name(db, "beta", &c, &err), 1);
    assert_int_equal(c->delivery, DELIVERY_HOST);
    assert_string_equal(c->delivery_host, "2001:db8::25");
    assert_int_equal(c->port, 2525);
    customer_free(c);
    c = NULL;
    assert_int_equal(custdb_lookup_name(db, "acme", NULL, &err), 1);
    assert_int_equal(custdb_lookup_name(db, "nobody", &c, &err), 0);
    assert_int_equal(custdb_lookup_name(db, "../x", &c, &err), 0);
    assert_null(c);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", NULL, NULL, &err), 1);
    assert_int_equal(custdb_count(db, &err), 4);
    custdb_free(db);
}

static int
collect(void *ctx, const struct customer *c)
{
    char *out = ctx;
    size_t len = strlen(out);

    (void)snprintf(out + len, 256 - len, "%s%s", len ? " " : "", c->name);
    return strcmp(c->name, "stop") == 0 ? 7 : 0;
}

static void
test_foreach(void **state)
{
    char names[256] = "";
    struct custdb *db;
    struct errbuf err;

    (void)state;
    assert_int_equal(compile(table1, NULL), 0);
    assert_non_null(db = custdb_new(dst));
    assert_int_equal(custdb_foreach(db, collect, names, &err), 0);
    assert_string_equal(names, "acme wide narrow beta");
    assert_int_equal(compile("customer a\ndomain a.ex\ncustomer stop\ndomain s.ex\n"
                             "customer z\ndomain z.ex\n", NULL), 0);
    custdb_set_check_interval(db, 0);
    names[0] = '\0';
    assert_int_equal(custdb_foreach(db, collect, names, &err), 7);
    assert_string_equal(names, "a stop");
    custdb_free(db);
}

static void
test_empty_source(void **state)
{
    struct custdb_compile_stats st = {1, 1, 1};
    struct custdb *db;
    struct errbuf err;
    char names[256] = "";

    (void)state;
    assert_int_equal(compile("# no customers yet\n", &st), 0);
    assert_int_equal(st.customers, 0);
    assert_non_null(db = custdb_new(dst));
    assert_int_equal(custdb_count(db, &err), 0);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", NULL, NULL, &err), 0);
    assert_int_equal(custdb_foreach(db, collect, names, &err), 0);
    assert_string_equal(names, "");
    custdb_free(db);
}

static const struct {
    const char *label, *src, *want;   /* want: errors with "SRC" for the source path */
} bad_sources[] = {
    {"domain claimed twice",
     "customer acme\n  domain virt.dom\ncustomer b\n  address 1.2.3.4\ncustomer c\n  domain virt.dom\n",
     "SRC:5: domain 'virt.dom' already claimed by customer 'acme' (line 1)"},
    {"subdomain rule claimed twice",
     "customer acme\n  domain .virt.dom\ncustomer c\n  domain .VIRT.dom\n",
     "SRC:3: domain '.virt.dom' already claimed by customer 'acme' (line 1)"},
    {"customer defined twice",
     "\n\ncustomer acme\n  domain a.dom\ncustomer acme\n  domain b.dom\n",
     "SRC:5: customer 'acme' already defined at line 3"},
    {"network registered twice",
     "customer x\n domain x.dom\n\ncustomer acme\n  address 10.0.0.0/8\ncustomer c\n  address 10.0.0.0/8\n",
     "SRC:6: network 10.0.0.0/8 already registered by customer 'acme' (line 4)"},
    {"v4-mapped network registered twice",
     "customer acme\n  address 192.0.2.1\ncustomer c\n  address ::ffff:192.0.2.1\n",
     "SRC:3: network 192.0.2.1 already registered by customer 'acme' (line 1)"},
    {"block errors come with file and line",
     "customer acme\n  domain a.dom\n  tls sometimes\nfoo\n",
     "SRC:3: 'tls' needs one value: none, may or encrypt\nSRC:4: unknown key 'foo'"},
    {"every error, in order",
     "customer a\n domain a.dom\ncustomer a\n domain a.dom\ncustomer ../x\n domain x.dom\n",
     "SRC:3: customer 'a' already defined at line 1\n"
     "SRC:3: domain 'a.dom' already claimed by customer 'a' (line 1)\n"
     "SRC:5: bad customer name '../x': contains '/'"},
};

static void
read_all(const char *path, char *buf, size_t size, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, size);
    assert_true(n >= 0 && (size_t)n < size);
    *len = (size_t)n;
    close(fd);
}

static void
assert_only_files(size_t want)
{
    char cmd[160], out[32] = "";
    FILE *fp;

    assert_int_equal(str_printf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir), 0);
    assert_non_null(fp = popen(cmd, "r"));
    assert_non_null(fgets(out, sizeof(out), fp));
    pclose(fp);
    assert_int_equal(atoi(out), (int)want);
}

static void
test_bad_sources(void **state)
{
    static char before[1 << 16], after[1 << 16];
    size_t blen, alen, i;

    (void)state;
    assert_int_equal(compile(table1, NULL), 0);
    read_all(dst, before, sizeof(before), &blen);
    for (i = 0; i < ARRAY_LEN(bad_sources); i++) {
        char want[1024], *p;
        size_t j = 0;

        printf("%s\n", bad_sources[i].label);
        for (p = (char *)bad_sources[i].want; *p; p++) {
            if (strncmp(p, "SRC", 3) == 0) {
                j += (size_t)snprintf(want + j, sizeof(want) - j, "%s", src);
                p += 2;
            } else {
                want[j++] = *p;
            }
        }
        want[j] = '\0';
        assert_int_equal(compile(bad_sources[i].src, NULL), -1);
        assert_string_equal(errors, want);
        read_all(dst, after, sizeof(after), &alen);
        assert_int_equal(alen, blen);
        assert_memory_equal(before, after, blen);
        assert_only_files(2);   /* source and table, no temp file left */
    }
}

static void
test_io_errors(void **state)
{
    struct rlimit old, small;
    char want[512], big[200000], path[160];
    size_t len = 0, i;

    (void)state;
    /* source missing */
    errors[0] = '\0';
    assert_int_equal(str_printf(path, sizeof(path), "%s/missing", dir), 0);
    assert_int_equal(custdb_compile(path, dst, on_error, NULL, NULL), -1);
    assert_int_equal(str_printf(want, sizeof(want), "%s: cannot open: No such file or directory",
                                path), 0);
    assert_string_equal(errors, want);
    /* destination directory missing */
    assert_int_equal(str_printf(path, sizeof(path), "%s/nodir/t.cdb", dir), 0);
    write_file(src, "customer a\ndomain a.dom\n", 24);
    errors[0] = '\0';
    assert_int_equal(custdb_compile(src, path, on_error, NULL, NULL), -1);
    assert_int_equal(str_printf(want, sizeof(want), "%s: cannot create a temporary file beside "
                                "%s: No such file or directory", src, path), 0);
    assert_string_equal(errors, want);
    /* destination is a directory: rename fails, nothing left behind */
    assert_int_equal(str_printf(path, sizeof(path), "%s/isdir", dir), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    errors[0] = '\0';
    assert_int_equal(custdb_compile(src, path, on_error, NULL, NULL), -1);
    assert_non_null(strstr(errors, ": Is a directory"));
    assert_non_null(strstr(errors, ": cannot rename "));
    assert_int_equal(rmdir(path), 0);
    assert_only_files(1);
    /* file size limit: EFBIG while writing */
    for (i = 0; i < 2000; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "customer c%zu\ndomain d%zu.example\n",
                                i, i);
    write_file(src, big, len);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    errors[0] = '\0';
    assert_int_equal(custdb_compile(src, dst, on_error, NULL, NULL), -1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_non_null(strstr(errors, "File too large"));
    assert_only_files(1);
}

static void
test_reload(void **state)
{
    struct customer *c = NULL;
    struct custdb *db;
    struct errbuf err;
    char bad[128];

    (void)state;
    assert_int_equal(compile(table1, NULL), 0);
    assert_non_null(db = custdb_new(dst));
    custdb_set_check_interval(db, 0);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", &c, NULL, &err), 1);
    assert_string_equal(c->name, "acme");
    customer_free(c);
    c = NULL;
    assert_int_equal(compile("customer newco\ndomain virt.dom\n", NULL), 0);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", &c, NULL, &err), 1);
    assert_string_equal(c->name, "newco");
    customer_free(c);
    c = NULL;
    assert_int_equal(custdb_count(db, &err), 1);
    /* a bad new file keeps the old table, and is retried */
    assert_int_equal(str_printf(bad, sizeof(bad), "%s.bad", dst), 0);
    write_file(bad, "garbage", 7);
    assert_int_equal(rename(bad, dst), 0);
    assert_int_equal(custdb_refresh(db, &err), 0);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", &c, NULL, &err), 1);
    assert_string_equal(c->name, "newco");
    customer_free(c);
    c = NULL;
    assert_int_equal(compile(table1, NULL), 0);
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", &c, NULL, &err), 1);
    assert_string_equal(c->name, "acme");
    customer_free(c);
    /* with the default interval, a change is not seen at once */
    custdb_set_check_interval(db, 60000);
    assert_int_equal(compile("customer later\ndomain virt.dom\n", NULL), 0);
    assert_int_equal(custdb_count(db, &err), 4);
    assert_int_equal(custdb_refresh(db, &err), 0);
    assert_int_equal(custdb_count(db, &err), 1);
    custdb_free(db);
}

struct reader_arg {
    struct custdb *db;
    int *stop;
    int errors, found;
};

static void *
reader(void *p)
{
    struct reader_arg *ra = p;
    struct customer *c;
    struct errbuf err;

    while (!__atomic_load_n(ra->stop, __ATOMIC_RELAXED)) {
        c = NULL;
        switch (custdb_lookup_domain(ra->db, "virt.dom", &c, NULL, &err)) {
        case 1:
            if (strcmp(c->name, "acme") != 0 && strcmp(c->name, "newco") != 0)
                ra->errors++;
            ra->found++;
            break;
        default:
            ra->errors++;
        }
        customer_free(c);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct reader_arg ra[4];
    pthread_t tid[4];
    int stop = 0;
    struct custdb *db;
    size_t i;

    (void)state;
    assert_int_equal(compile(table1, NULL), 0);
    assert_non_null(db = custdb_new(dst));
    custdb_set_check_interval(db, 0);
    for (i = 0; i < 4; i++) {
        ra[i] = (struct reader_arg){db, &stop, 0, 0};
        assert_int_equal(pthread_create(&tid[i], NULL, reader, &ra[i]), 0);
    }
    for (i = 0; i < 20; i++)
        assert_int_equal(compile(i % 2 ? table1 : "customer newco\ndomain virt.dom\n", NULL), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(ra[i].errors, 0);
        assert_true(ra[i].found > 0);
    }
    custdb_free(db);
}

/* expect_broken - every entry point fails with want (PATH replaced). */
static void
expect_broken(const char *want_fmt)
{
    char want[512];
    struct custdb *db = custdb_new(dst);
    struct customer *c = NULL;
    struct errbuf err;
    struct ipaddr a;
    const char *why;

    assert_non_null(db);
    assert_int_equal(str_printf(want, sizeof(want), want_fmt, dst), 0);
    assert_int_equal(custdb_refresh(db, &err), -1);
    if (strcmp(want + strlen(want) - 3, "(*)") == 0)   /* any reason */
        want[strlen(want) - 2] = '\0';
    else
        assert_string_equal(err.msg, want);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_int_equal(custdb_lookup_domain(db, "virt.dom", &c, NULL, &err), -1);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_int_equal(ipaddr_parse("192.0.2.10", &a, &why), 0);
    assert_int_equal(custdb_lookup_addr(db, &a, &c, NULL, &err), -1);
    assert_int_equal(custdb_lookup_name(db, "acme", &c, &err), -1);
    assert_int_equal(custdb_count(db, &err), -1);
    assert_int_equal(custdb_foreach(db, collect, NULL, &err), -1);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_null(c);
    custdb_free(db);
}

/* make_cdb - a cdb file at dst with the given records (key, value pairs). */
static void
make_cdb(const char *const *kv, size_t n)
{
    struct cdb_make cm;
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t i;

    assert_true(fd >= 0);
    assert_int_equal(cdb_make_start(&cm, fd), 0);
    for (i = 0; i + 1 < n; i += 2) {
        size_t klen = kv[i][0] == '\0' ? 9 : strlen(kv[i]);   /* "\0autoturn" */

        assert_int_equal(cdb_make_add(&cm, kv[i], (unsigned)klen, kv[i + 1],
                                      (unsigned)strlen(kv[i + 1])), 0);
    }
    assert_int_equal(cdb_make_finish(&cm), 0);
    close(fd);
}

static void
test_broken_tables(void **state)
{
    static const char *const not_ours[] = {"x", "y"};
    static const char *const other_version[] = {"\0autoturn", "v2 customers=0 v4= v6="};
    static const char *const bad_meta[] = {"\0autoturn", "v1 customers=x v4= v6="};
    static const char *const bad_prefixes[] = {"\0autoturn", "v1 customers=1 v4=24,32 v6="};
    static char good[1 << 16], junk[4096];
    size_t len;

    (void)state;
    expect_broken("customer table %s: No such file or directory");
    write_file(dst, "", 0);
    expect_broken("customer table %s: corrupt (not a cdb file, or truncated)");
    memset(junk, 'x', sizeof(junk));
    write_file(dst, junk, sizeof(junk));
    expect_broken("customer table %s: corrupt (bad cdb structure)");
    assert_int_equal(compile(table1, NULL), 0);
    read_all(dst, good, sizeof(good), &len);
    write_file(dst, good, len / 2);
    expect_broken("customer table %s: corrupt (*)");
    write_file(dst, good, 2048);
    expect_broken("customer table %s: corrupt (*)");
    make_cdb(not_ours, ARRAY_LEN(not_ours));
    expect_broken("customer table %s: not an autoturn customer table");
    make_cdb(other_version, ARRAY_LEN(other_version));
    expect_broken("customer table %s: not an autoturn customer table");
    make_cdb(bad_meta, ARRAY_LEN(bad_meta));
    expect_broken("customer table %s: corrupt (bad meta record)");
    make_cdb(bad_prefixes, ARRAY_LEN(bad_prefixes));
    expect_broken("customer table %s: corrupt (bad meta record)");
}

/* expect_record_error - the table opens, but this lookup is an error. */
static void
expect_record_error(const char *const *kv, size_t n, const char *domain, const char *want_fmt)
{
    char want[512];
    struct custdb *db;
    struct customer *c = NULL;
    struct errbuf err;

    make_cdb(kv, n);
    assert_non_null(db = custdb_new(dst));
    assert_int_equal(custdb_refresh(db, &err), 0);
    assert_int_equal(str_printf(want, sizeof(want), want_fmt, dst), 0);
    assert_int_equal(custdb_lookup_domain(db, domain, &c, NULL, &err), -1);
    assert_null(c);
    assert_string_equal(err.msg, want);
    custdb_free(db);
}

static void
test_corrupt_records(void **state)
{
    static const char *const dangling[] = {
        "\0autoturn", "v1 customers=1 v4= v6=", "Dvirt.dom", "ghost"};
    static const char *const bad_name[] = {
        "\0autoturn", "v1 customers=1 v4= v6=", "Svirt.dom", "../x"};
    static const char *const bad_record[] = {
        "\0autoturn", "v1 customers=1 v4= v6=", "Dvirt.dom", "acme", "Nacme", "garbage"};
    static const char *const wrong_name[] = {
        "\0autoturn", "v1 customers=1 v4= v6=", "Dvirt.dom", "acme", "Nacme",
        ("name=beta\ndelivery=connecting-ip\nhost=\nport=25\ntls=may\ntrigger=etrn\nrelay=no\n"
         "secret=\nmax-messages=0\nmax-bytes=0\nmax-age=0\ndomain=virt.dom\n")};

    (void)state;
    expect_record_error(dangling, ARRAY_LEN(dangling), "virt.dom",
                        "customer table %s: corrupt (index record for a missing customer)");
    expect_record_error(bad_name, ARRAY_LEN(bad_name), "x.virt.dom",
                        "customer table %s: corrupt (bad customer name in an index record)");
    expect_record_error(bad_record, ARRAY_LEN(bad_record), "virt.dom",
                        "customer table %s: corrupt (customer 'acme': record does not end with a newline)");
    expect_record_error(wrong_name, ARRAY_LEN(wrong_name), "virt.dom",
                        "customer table %s: corrupt (record under the wrong name)");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
