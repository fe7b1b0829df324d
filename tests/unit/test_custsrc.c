/* SPDX-License-Identifier: ISC */
/*
 * test_custsrc.c - the customer-source parser: a full example, defaults,
 * and every block-level error message, exactly, with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "custsrc.h"
#include "util.h"

#define SECRET_OK "{CRAM-MD5}0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct result {
    char errors[8192];
    size_t nerr, nwarn;
    struct customer *cust[8];
    size_t ncust;
};

static int
on_customer(void *ctx, struct customer *c)
{
    struct result *r = ctx;

    if (r->ncust < ARRAY_LEN(r->cust))
        r->cust[r->ncust++] = c;
    else
        customer_free(c);
    return 0;
}

static void
on_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    struct result *r = ctx;
    size_t len = strlen(r->errors);

    assert_string_equal(file, "test");
    (void)snprintf(r->errors + len, sizeof(r->errors) - len, "%s%u: %s", len ? "\n" : "",
                   line, msg);
    r->nerr++;
    r->nwarn += strncmp(msg, CUSTSRC_WARNING, strlen(CUSTSRC_WARNING)) == 0;
}

static int
parse(const char *src, size_t len, struct result *r)
{
    memset(r, 0, sizeof(*r));
    return custsrc_parse_buf("test", src, len, on_customer, on_error, r);
}

static void
result_free(struct result *r)
{
    size_t i;

    for (i = 0; i < r->ncust; i++)
        customer_free(r->cust[i]);
}

static void
test_full_example(void **state)
{
    char path[1024], *buf;
    struct result r;
    struct customer *c;
    FILE *fp;
    long len;

    (void)state;
    assert_int_equal(str_printf(path, sizeof(path), "%s/customers/full",
                                getenv("AUTOTURN_TEST_DATA")), 0);
    assert_non_null(fp = fopen(path, "r"));
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    len = ftell(fp);
    rewind(fp);
    assert_non_null(buf = malloc((size_t)len));
    assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    assert_int_equal(parse(buf, (size_t)len, &r), 0);
    free(buf);
    assert_string_equal(r.errors, "");
    assert_int_equal(r.ncust, 3);
    c = r.cust[0];
    assert_string_equal(c->name, "acme");
    assert_int_equal(c->line, 2);
    assert_int_equal(c->ndomains, 2);
    assert_string_equal(c->domains[0], "virt.dom");
    assert_string_equal(c->domains[1], ".virt.dom");
    assert_int_equal(c->naddrs, 3);
    assert_int_equal(c->delivery, DELIVERY_CONNECTING_IP);
    assert_int_equal(c->port, 25);
    assert_int_equal(c->tls, TLS_MAY);
    assert_int_equal(c->triggers, TRIGGER_CONNECT | TRIGGER_ETRN | TRIGGER_ATRN);
    assert_true(c->relay);
    assert_true(c->has_secret);
    assert_int_equal(c->max_messages, 10000);
    assert_int_equal(c->max_bytes, 1ull << 30);
    assert_int_equal(c->max_age, 5 * 86400);
    c = r.cust[1];
    assert_string_equal(c->name, "beta");
    assert_int_equal(c->delivery, DELIVERY_HOST);
    assert_string_equal(c->delivery_host, "2001:db8::25");
    assert_int_equal(c->port, 2525);
    assert_int_equal(c->tls, TLS_ENCRYPT);
    assert_int_equal(c->triggers, 0);
    c = r.cust[2];
    assert_int_equal(c->delivery, DELIVERY_MX);
    assert_string_equal(c->delivery_host, "gamma.example");
    assert_string_equal(c->domains[0], "gamma.example");
    result_free(&r);
}

static void
test_defaults(void **state)
{
    static const char src[] = "customer x\ndomain X.Example.\n";
    struct result r;
    struct customer *c;

    (void)state;
    assert_int_equal(parse(src, sizeof(src) - 1, &r), 0);
    assert_int_equal(r.ncust, 1);
    c = r.cust[0];
    assert_string_equal(c->domains[0], "x.example");
    assert_int_equal(c->delivery, DELIVERY_CONNECTING_IP);
    assert_int_equal(c->port, 25);
    assert_int_equal(c->tls, TLS_MAY);
    assert_int_equal(c->triggers, TRIGGER_CONNECT | TRIGGER_ETRN);
    assert_false(c->relay);
    assert_false(c->has_secret);
    assert_int_equal(c->max_messages, 0);
    assert_int_equal(c->max_bytes, 0);
    assert_int_equal(c->max_age, 0);
    result_free(&r);
}

static void
test_empty(void **state)
{
    static const char comments[] = "# nothing\n\n   # indented\n\t\n";
    struct result r;

    (void)state;
    assert_int_equal(parse("", 0, &r), 0);
    assert_int_equal(r.ncust, 0);
    assert_int_equal(parse(comments, sizeof(comments) - 1, &r), 0);
    assert_int_equal(r.ncust, 0);
}

static const struct {
    const char *label, *src, *want;
    size_t ncust;
} rows[] = {
    {"unknown key", "customer a\ndomain a.example\nfoo bar\n", "3: unknown key 'foo'", 0},
    {"upper-case key", "customer a\nDomain a.example\n",
     "2: unknown key 'Domain'\n1: customer 'a' has neither domain nor address", 0},
    {"key outside a block", "domain virt.dom\ncustomer a\ndomain a.example\n",
     "1: 'domain' outside a customer block", 1},
    {"customer without name", "customer\ndomain a.example\n",
     "1: 'customer' needs one value: the customer name", 0},
    {"customer with two names", "customer a b\ndomain a.example\n",
     "1: 'customer' needs one value: the customer name", 0},
    {"name with /", "customer ../x\ndomain a.example\n",
     "1: bad customer name '../x': contains '/'", 0},
    {"name a/b", "customer a/b\ndomain a.example\n",
     "1: bad customer name 'a/b': contains '/'", 0},
    {"name starting with -", "customer -a\ndomain a.example\n",
     "1: bad customer name '-a': starts with '-'", 0},
    {"name ..", "customer ..\ndomain a.example\n", "1: bad customer name '..': starts with '.'", 0},
    {"duplicate key", "customer a\ndomain a.example\ntls may\ntls none\n",
     "4: duplicate key 'tls'", 0},
    {"domain without value", "customer a\ndomain\naddress 1.2.3.4\n",
     "2: 'domain' needs at least one value", 0},
    {"address without value", "customer a\naddress\ndomain a.example\n",
     "2: 'address' needs at least one value", 0},
    {"bad domain", "customer a\ndomain a..example\n",
     "2: bad domain 'a..example': empty label\n1: customer 'a' has neither domain nor address", 0},
    {"bad subdomain rule", "customer a\ndomain . a.example\n", "2: bad domain '.': empty", 0},
    {"same domain twice", "customer a\ndomain a.example .a.example\ndomain A.example\n",
     "3: domain 'a.example' listed twice in customer 'a'", 0},
    {"prefix out of range", "customer a\naddress 1.2.3.4/33\ndomain a.example\n",
     "2: bad address '1.2.3.4/33': prefix length out of range", 0},
    {"bad address", "customer a\naddress ::g\ndomain a.example\n",
     "2: bad address '::g': not an IPv4 or IPv6 address", 0},
    {"host bits", "customer a\naddress 10.0.0.1/8\ndomain a.example\n",
     "2: bad address '10.0.0.1/8': host bits set after the prefix length", 0},
    {"bad prefix", "customer a\naddress 10.0.0.0/x\ndomain a.example\n",
     "2: bad address '10.0.0.0/x': prefix length is not a decimal number", 0},
    {"same network twice", "customer a\naddress 10.0.0.0/8 ::ffff:10.0.0.0/104\n",
     "2: network 10.0.0.0/8 listed twice in customer 'a'", 0},
    {"neither domain nor address", "customer a\ntls none\n",
     "1: customer 'a' has neither domain nor address", 0},
    {"atrn without secret", "customer a\ndomain a.example\ntrigger atrn\n",
     "1: customer 'a' has trigger atrn but no secret", 0},
    {"atrn with secret", "customer a\ndomain a.example\ntrigger atrn\nsecret " SECRET_OK "\n", "", 1},
    {"delivery host without host", "customer a\ndomain a.example\ndelivery host\n",
     "3: 'delivery host' needs HOST[:PORT]", 0},
    {"delivery unknown", "customer a\ndomain a.example\ndelivery pigeon\n",
     "3: 'delivery' needs one of: connecting-ip, host HOST[:PORT], mx [DOMAIN]", 0},
    {"delivery empty", "customer a\ndomain a.example\ndelivery\n",
     "3: 'delivery' needs one of: connecting-ip, host HOST[:PORT], mx [DOMAIN]", 0},
    {"delivery connecting-ip extra", "customer a\ndomain a.example\ndelivery connecting-ip x\n",
     "3: 'delivery' needs one of: connecting-ip, host HOST[:PORT], mx [DOMAIN]", 0},
    {"delivery host bad name", "customer a\ndomain a.example\ndelivery host a..b\n",
     "3: bad delivery host 'a..b': empty label", 0},
    {"delivery host bare v6", "customer a\ndomain a.example\ndelivery host 2001:db8::1\n",
     "3: bad delivery host '2001:db8::1': an IPv6 address must be written in brackets, as [ADDRESS]", 0},
    {"delivery host bad v6", "customer a\ndomain a.example\ndelivery host [1.2.3.4]\n",
     "3: bad delivery host '[1.2.3.4]': not an IPv6 address inside [ ]", 0},
    {"delivery host no ]", "customer a\ndomain a.example\ndelivery host [::1\n",
     "3: bad delivery host '[::1': missing ']'", 0},
    {"delivery host junk after ]", "customer a\ndomain a.example\ndelivery host [::1]x\n",
     "3: bad delivery host '[::1]x': unexpected text after ']'", 0},
    {"delivery host bad port", "customer a\ndomain a.example\ndelivery host h.example:0\n",
     "3: bad port '0': out of range (1 to 65535)", 0},
    {"delivery host ok", "customer a\ndomain a.example\ndelivery host 192.0.2.1:2525\n", "", 1},
    {"port conflict", "customer a\ndomain a.example\nport 26\ndelivery host h.example:2525\n",
     "3: 'port' conflicts with the port given in 'delivery host'", 0},
    {"delivery mx bad", "customer a\ndomain a.example\ndelivery mx -x.example\n",
     "3: bad delivery domain '-x.example': label starts or ends with '-'", 0},
    {"delivery mx bare", "customer a\ndomain a.example\ndelivery mx\n", "", 1},
    {"port missing", "customer a\ndomain a.example\nport\n",
     "3: 'port' needs one value: a number from 1 to 65535", 0},
    {"port two", "customer a\ndomain a.example\nport 25 26\n",
     "3: 'port' needs one value: a number from 1 to 65535", 0},
    {"port zero", "customer a\ndomain a.example\nport 0\n",
     "3: bad port '0': out of range (1 to 65535)", 0},
    {"port too big", "customer a\ndomain a.example\nport 65536\n",
     "3: bad port '65536': out of range (1 to 65535)", 0},
    {"port not a number", "customer a\ndomain a.example\nport smtp\n",
     "3: bad port 'smtp': not a number", 0},
    {"tls unknown", "customer a\ndomain a.example\ntls always\n",
     "3: 'tls' needs one value: none, may or encrypt", 0},
    {"tls two", "customer a\ndomain a.example\ntls may none\n",
     "3: 'tls' needs one value: none, may or encrypt", 0},
    {"trigger empty", "customer a\ndomain a.example\ntrigger\n",
     "3: 'trigger' needs at least one value: connect, etrn, atrn or none", 0},
    {"trigger unknown", "customer a\ndomain a.example\ntrigger connect fly\n",
     "3: bad trigger 'fly': use connect, etrn, atrn or none", 0},
    {"trigger none plus", "customer a\ndomain a.example\ntrigger etrn none\n",
     "3: 'trigger none' cannot be combined with other triggers", 0},
    {"relay bad", "customer a\ndomain a.example\nrelay maybe\n",
     "3: 'relay' needs one value: yes or no", 0},
    {"secret missing", "customer a\ndomain a.example\nsecret\n",
     "3: 'secret' needs one value: {CRAM-MD5} and 64 hex digits (from autoturnctl secret)", 0},
    {"secret plain", "customer a\ndomain a.example\nsecret hunter2\n",
     "3: bad secret: does not start with {CRAM-MD5}", 0},
    {"secret short", "customer a\ndomain a.example\nsecret {CRAM-MD5}abc\n",
     "3: bad secret: expected 64 hex digits after {CRAM-MD5}", 0},
    {"max-messages missing", "customer a\ndomain a.example\nmax-messages\n",
     "3: 'max-messages' needs one value: a number (0 = unlimited)", 0},
    {"max-messages bad", "customer a\ndomain a.example\nmax-messages 10k\n",
     "3: bad max-messages '10k': not a number", 0},
    {"max-bytes missing", "customer a\ndomain a.example\nmax-bytes\n",
     "3: 'max-bytes' needs one value: a size such as 500M (0 = unlimited)", 0},
    {"max-bytes bad", "customer a\ndomain a.example\nmax-bytes -1\n",
     "3: bad max-bytes '-1': sign not allowed", 0},
    {"max-age missing", "customer a\ndomain a.example\nmax-age 1 2\n",
     "3: 'max-age' needs one value: a duration such as 5d (0 = the flusher's default)", 0},
    {"max-age bad", "customer a\ndomain a.example\nmax-age soon\n",
     "3: bad max-age 'soon': not a number", 0},
    {"errors in two blocks, good one between",
     "customer a\ndomain a.example\nfoo\ncustomer b\ndomain b.example\ncustomer c\ntls x\n",
     "3: unknown key 'foo'\n7: 'tls' needs one value: none, may or encrypt\n"
     "6: customer 'c' has neither domain nor address", 1},
    {"relay for the whole IPv4 Internet",
     "customer a\ndomain a.example\naddress 192.0.2.1 0.0.0.0/0\nrelay yes\n",
     "3: relay yes with network 0.0.0.0/0: customer 'a' would let the whole Internet relay", 0},
    {"relay for the whole IPv6 Internet", "customer a\naddress ::/0\nrelay yes\ndomain a.example\n",
     "2: relay yes with network ::/0: customer 'a' would let the whole Internet relay", 0},
    {"relay wider than /8: a warning", "customer a\ndomain a.example\naddress 10.0.0.0/7\nrelay yes\n",
     "3: warning: relay yes with network 10.0.0.0/7, wider than /8: every address in it may "
     "relay through us as customer 'a'", 1},
    {"relay wider than /32 (v6): a warning",
     "customer a\ndomain a.example\naddress 2000::/3 2001:db8::/32\nrelay yes\n",
     "3: warning: relay yes with network 2000::/3, wider than /32: every address in it may "
     "relay through us as customer 'a'", 1},
    {"/8 with relay, and 0.0.0.0/0 without: fine",
     "customer a\ndomain a.example\naddress 10.0.0.0/8\nrelay yes\n"
     "customer b\ndomain b.example\naddress 0.0.0.0/0\n", "", 2},
    {"public suffix: a top-level domain", "customer a\ndomain .com a.example\n",
     "2: domain '.com' is a public suffix: customer 'a' would hold mail for every domain "
     "under it", 0},
    {"public suffix: co.uk", "customer a\ndomain a.example\ndomain co.uk\n",
     "3: domain 'co.uk' is a public suffix: customer 'a' would hold mail for every domain "
     "under it", 0},
    {"under a public suffix: fine", "customer a\ndomain .acme.co.uk\n", "", 1},
    {"comments", "# head\ncustomer a # trailing\n  domain a.example\t# tab before\n#\n", "", 1},
    {"crlf", "customer a\r\ndomain a.example\r\n", "", 1},
};

static void
test_errors(void **state)
{
    struct result r;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        int n;

        printf("%s\n", rows[i].label);
        n = parse(rows[i].src, strlen(rows[i].src), &r);
        assert_string_equal(r.errors, rows[i].want);
        assert_int_equal(n, (int)(r.nerr - r.nwarn));
        assert_int_equal(r.ncust, rows[i].ncust);
        result_free(&r);
    }
}

static void
test_comment_glued(void **state)
{
    static const char src[] = "customer a\ndomain a.example#x\n";
    struct result r;

    (void)state;
    /* '#' glued to a word is part of it, so the domain is bad */
    assert_int_equal(parse(src, sizeof(src) - 1, &r), 2);
    assert_string_equal(r.errors, "2: bad domain 'a.example#x': invalid character\n"
                                  "1: customer 'a' has neither domain nor address");
}

static void
test_long_and_nul(void **state)
{
    char *src = malloc(3 * CUSTSRC_LINE_MAX);
    static const char nul[] = "customer a\ndomain a.ex\0ample\ndomain b.example\n";
    struct result r;
    size_t len = 0;

    (void)state;
    assert_non_null(src);
    len += (size_t)snprintf(src, 64, "customer a\ndomain ");
    memset(src + len, 'a', CUSTSRC_LINE_MAX);
    len += CUSTSRC_LINE_MAX - strlen("domain ");
    src[len++] = '\n';   /* exactly CUSTSRC_LINE_MAX bytes: a bad domain, not too long */
    len += (size_t)snprintf(src + len, 64, "domain ");
    memset(src + len, 'b', CUSTSRC_LINE_MAX);
    len += CUSTSRC_LINE_MAX - strlen("domain ") + 1;
    src[len++] = '\n';
    len += (size_t)snprintf(src + len, 64, "customer b\ndomain b.example");
    assert_int_equal(parse(src, len, &r), 3);
    assert_non_null(strstr(r.errors, "2: bad domain 'aaaa"));
    assert_non_null(strstr(r.errors, "': longer than 253 bytes\n3: line too long (max 4096 bytes)\n"
                                     "1: customer 'a' has neither domain nor address"));
    assert_int_equal(r.ncust, 1);
    result_free(&r);
    free(src);

    assert_int_equal(parse(nul, sizeof(nul) - 1, &r), 1);
    assert_string_equal(r.errors, "2: NUL byte in line");
    assert_int_equal(r.ncust, 0);
    /* a last line without newline that is too long */
    src = malloc(CUSTSRC_LINE_MAX + 2);
    assert_non_null(src);
    memset(src, '#', CUSTSRC_LINE_MAX + 1);
    assert_int_equal(parse(src, CUSTSRC_LINE_MAX + 1, &r), 1);
    assert_string_equal(r.errors, "1: line too long (max 4096 bytes)");
    free(src);
}

static int
stop_first(void *ctx, struct customer *c)
{
    (void)ctx;
    customer_free(c);
    return -1;
}

static void
test_file(void **state)
{
    char path[1024];
    struct result r;

    (void)state;
    assert_int_equal(str_printf(path, sizeof(path), "%s/customers/full",
                                getenv("AUTOTURN_TEST_DATA")), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(custsrc_parse_file(path, stop_first, NULL, &r), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(custsrc_parse_file(path, on_customer, NULL, &r), 0);
    assert_int_equal(r.ncust, 3);
    result_free(&r);
}

static void
file_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    char *out = ctx;

    (void)snprintf(out, 512, "%s:%u: %s", file, line, msg);
}

static void
test_file_errors(void **state)
{
    char msg[512] = "";

    (void)state;
    assert_int_equal(custsrc_parse_file("/nonexistent/customers", NULL, file_error, msg), -1);
    assert_string_equal(msg, "/nonexistent/customers:0: cannot open: No such file or directory");
    assert_int_equal(custsrc_parse_file("/", NULL, file_error, msg), -1);
    assert_string_equal(msg, "/:0: read error: Is a directory");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_comment_glued),
        cmocka_unit_test(test_long_and_nul),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
