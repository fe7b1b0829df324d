/* SPDX-License-Identifier: ISC */
/*
 * test_ctlproto.c - the control protocol: encoder/parser round trips, every
 * named parse error with its exact text, line framing across chunk
 * boundaries, and the two clients against a tiny in-test server thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "util.h"

/* --- messages and encoding --- */

static void
test_msg_build(void **state)
{
    struct ctl_msg m;

    (void)state;
    assert_int_equal(ctl_msg_init(&m, "FLUSH"), 0);
    assert_int_equal(ctl_msg_add(&m, "customer", "acme"), 0);
    assert_int_equal(ctl_msg_addf(&m, "wait", "%d", 1), 0);
    assert_string_equal(ctl_msg_get(&m, "wait"), "1");
    assert_null(ctl_msg_get(&m, "to"));
    assert_int_equal(ctl_msg_add(&m, "customer", "again"), -1);     /* duplicate */
    assert_int_equal(ctl_msg_add(&m, "Bad", "x"), -1);
    assert_int_equal(ctl_msg_add(&m, "", "x"), -1);
    assert_int_equal(ctl_msg_add(&m, "a234567890123456789012345678901", "x"), 0);
    assert_int_equal(ctl_msg_add(&m, "a2345678901234567890123456789012", "x"), -1);
    assert_int_equal(ctl_msg_init(&m, "flush"), -1);
    assert_int_equal(ctl_msg_init(&m, ""), -1);
    assert_int_equal(ctl_msg_init(&m, "ABCDEFGHIJKLMNOP"), -1);
    assert_int_equal(ctl_msg_init(&m, "ABCDEFGHIJKLMNO"), 0);
    assert_false(ctl_is_final(&m));
    assert_int_equal(ctl_reply_ok(&m), 0);
    assert_true(ctl_is_final(&m));
    assert_int_equal(ctl_reply_err(&m, "busy", "flush running"), 0);
    assert_true(ctl_is_final(&m));
    assert_string_equal(ctl_msg_get(&m, "text"), "flush running");
}

static void
test_msg_limits(void **state)
{
    char value[CTL_VALUE_MAX + 2], key[8];
    struct ctl_msg m;
    size_t i;

    (void)state;
    memset(value, 'v', sizeof(value) - 1);
    value[CTL_VALUE_MAX] = '\0';
    assert_int_equal(ctl_msg_init(&m, "X"), 0);
    assert_int_equal(ctl_msg_add(&m, "k", value), 0);
    value[CTL_VALUE_MAX] = 'v';
    value[CTL_VALUE_MAX + 1] = '\0';
    assert_int_equal(ctl_msg_add(&m, "l", value), -1);
    assert_int_equal(ctl_msg_addf(&m, "l", "%s", value), -1);
    for (i = 1; i < CTL_ARGS_MAX; i++) {
        assert_int_equal(str_printf(key, sizeof(key), "k%zu", i), 0);
        assert_int_equal(ctl_msg_add(&m, key, "1"), 0);
    }
    assert_int_equal(ctl_msg_add(&m, "full", "1"), -1);
}

static void
test_format_exact(void **state)
{
    struct ctl_msg m;
    char buf[CTL_LINE_MAX];
    const char *want = "GRANT ip=2001:db8::1 user=j%20doe%25x text=%C3%A9t%C3%A9=%0A%7F ttl=3h\n";

    (void)state;
    assert_int_equal(ctl_msg_init(&m, "GRANT"), 0);
    assert_int_equal(ctl_msg_add(&m, "ip", "2001:db8::1"), 0);
    assert_int_equal(ctl_msg_add(&m, "user", "j doe%x"), 0);
    assert_int_equal(ctl_msg_add(&m, "text", "\xc3\xa9t\xc3\xa9=\n\x7f"), 0);
    assert_int_equal(ctl_msg_add(&m, "ttl", "3h"), 0);
    assert_int_equal(ctl_format(&m, buf, sizeof(buf)), (int)strlen(want));
    assert_string_equal(buf, want);
    assert_int_equal(ctl_format(&m, buf, strlen(want) - 1), -1);
    assert_int_equal(ctl_format(&m, buf, strlen(want)), (int)strlen(want));
}

static void
test_format_too_long(void **state)
{
    char value[CTL_VALUE_MAX + 1], buf[CTL_LINE_MAX * 2];
    struct ctl_msg m;

    (void)state;
    memset(value, ' ', CTL_VALUE_MAX);
    value[CTL_VALUE_MAX] = '\0';
    assert_int_equal(ctl_msg_init(&m, "X"), 0);
    assert_int_equal(ctl_msg_add(&m, "k", value), 0);    /* 1533 bytes escaped */
    assert_int_equal(ctl_format(&m, buf, sizeof(buf)), -1);
}

static void
assert_same(const struct ctl_msg *a, const struct ctl_msg *b)
{
    size_t i;

    assert_string_equal(a->verb, b->verb);
    assert_int_equal(a->nargs, b->nargs);
    for (i = 0; i < a->nargs; i++) {
        assert_string_equal(a->args[i].key, b->args[i].key);
        assert_string_equal(a->args[i].value, b->args[i].value);
    }
}

static void
test_round_trip(void **state)
{
    static const char *const values[] = {
        "", "plain", "with space", "100%", "%41", "a=b=c", "\xc3\xa9\xe2\x82\xac",
        "\x01\x1f\x7f\xff", "tab\there", "<\"john doe\"@example.com>", "trailing ",
        " leading",
    };
    char buf[CTL_LINE_MAX], key[8];
    struct ctl_msg m, back;
    struct errbuf err;
    size_t i;
    int n;

    (void)state;
    assert_int_equal(ctl_msg_init(&m, "PROGRESS"), 0);
    for (i = 0; i < ARRAY_LEN(values); i++) {
        assert_int_equal(str_printf(key, sizeof(key), "k%zu", i), 0);
        assert_int_equal(ctl_msg_add(&m, key, values[i]), 0);
    }
    n = ctl_format(&m, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(ctl_parse(buf, (size_t)n, &back, &err), 0);
    assert_same(&m, &back);
    assert_int_equal(ctl_parse(buf, (size_t)n - 1, &back, &err), 0);    /* without LF */
    assert_same(&m, &back);
}

static void
test_parse_ok(void **state)
{
    const char *line = "FLUSH customer=acme to=192.0.2.10 reason=etrn%20by%2fclient "
                       "wait=1 empty= x-y_z=%c3%A9\n";
    struct ctl_msg m;
    struct errbuf err;

    (void)state;
    assert_int_equal(ctl_parse(line, strlen(line), &m, &err), 0);
    assert_string_equal(m.verb, "FLUSH");
    assert_int_equal(m.nargs, 6);
    assert_string_equal(ctl_msg_get(&m, "reason"), "etrn by/client");
    assert_string_equal(ctl_msg_get(&m, "empty"), "");
    assert_string_equal(ctl_msg_get(&m, "x-y_z"), "\xc3\xa9");
    assert_int_equal(ctl_parse("PING", 4, &m, &err), 0);
    assert_string_equal(m.verb, "PING");
    assert_int_equal(m.nargs, 0);
}

struct bad_case {
    const char *label;
    const char *line;
    const char *want;
};

static const struct bad_case bad_cases[] = {
    { "empty", "", "empty line" },
    { "just LF", "\n", "empty line" },
    { "lower verb", "flush customer=a", "bad verb" },
    { "leading space", " PING", "bad verb" },
    { "verb digit", "PING2", "bad verb" },
    { "verb too long", "ABCDEFGHIJKLMNOP", "bad verb" },
    { "verb 8bit", "P\xc3\x89NG", "bad verb" },
    { "missing =", "FLUSH customer=a wait", "bad argument 2: missing '='" },
    { "bad key", "FLUSH customer=a Wait=1", "bad argument 2: bad key" },
    { "empty key", "FLUSH =1", "bad argument 1: bad key" },
    { "key too long", "FLUSH a2345678901234567890123456789012=1", "bad argument 1: bad key" },
    { "double space", "FLUSH a=1  b=2", "bad argument 2: empty argument" },
    { "trailing space", "PING ", "bad argument 1: empty argument" },
    { "bad escape", "FLUSH a=1 b=%zz", "bad argument 2: bad %-escape" },
    { "short escape", "FLUSH a=%4", "bad argument 1: bad %-escape" },
    { "lone percent", "FLUSH a=%", "bad argument 1: bad %-escape" },
    { "escaped NUL", "FLUSH a=x%00y", "bad argument 1: bad %-escape" },
    { "raw 8bit value", "FLUSH a=\xc3\xa9", "bad argument 1: bad character in value" },
    { "duplicate", "FLUSH customer=a customer=b", "duplicate key 'customer'" },
    { "tab", "FLUSH\tcustomer=a", "control character in line" },
    { "CR", "PING\r\n", "control character in line" },
    { "DEL", "PING a=\x7f", "control character in line" },
    { "too many", "X a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1 p=1 q=1",
      "too many arguments" },
};

static void
test_parse_bad(void **state)
{
    struct ctl_msg m;
    struct errbuf err;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
        print_message("case: %s\n", bad_cases[i].label);
        err.msg[0] = '\0';
        assert_int_equal(ctl_parse(bad_cases[i].line, strlen(bad_cases[i].line), &m, &err), -1);
        assert_string_equal(err.msg, bad_cases[i].want);
    }
}

static void
test_parse_nul_and_sizes(void **state)
{
    char line[CTL_LINE_MAX + 2];
    struct ctl_msg m;
    struct errbuf err;

    (void)state;
    assert_int_equal(ctl_parse("PING\0x", 6, &m, &err), -1);
    assert_string_equal(err.msg, "control character in line");
    /* 16 arguments is the cap and is fine */
    {
        const char *sixteen = "X a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1 p=1";

        assert_int_equal(ctl_parse(sixteen, strlen(sixteen), &m, &err), 0);
    }
    assert_int_equal(m.nargs, CTL_ARGS_MAX);
    /* a value of CTL_VALUE_MAX bytes is fine, one more is not */
    memcpy(line, "X v=", 4);
    memset(line + 4, 'v', CTL_VALUE_MAX);
    assert_int_equal(ctl_parse(line, 4 + CTL_VALUE_MAX, &m, &err), 0);
    line[4 + CTL_VALUE_MAX] = 'v';
    assert_int_equal(ctl_parse(line, 5 + CTL_VALUE_MAX, &m, &err), -1);
    assert_string_equal(err.msg, "bad argument 1: value too long");
    /* CTL_LINE_MAX bytes with the LF is fine as a line; one more is too long */
    memset(line + 4, 'v', CTL_LINE_MAX - 4);
    line[CTL_LINE_MAX - 1] = '\n';
    assert_int_equal(ctl_parse(line, CTL_LINE_MAX, &m, &err), -1);
    assert_string_equal(err.msg, "bad argument 1: value too long");
    line[CTL_LINE_MAX - 1] = 'v';
    line[CTL_LINE_MAX] = '\n';
    assert_int_equal(ctl_parse(line, CTL_LINE_MAX + 1, &m, &err), -1);
    assert_string_equal(err.msg, "line too long");
    assert_int_equal(ctl_parse(line, CTL_LINE_MAX, &m, &err), -1);    /* no LF */
    assert_string_equal(err.msg, "line too long");
}

/* --- line framing --- */

/* feed_all - run text through a linebuf in chunks of size step; collect
 * the lines joined by '|'. Returns the last rc seen. */
static int
feed_all(const char *text, size_t len, size_t step, char *out, size_t size)
{
    struct ctl_linebuf lb;
    const char *line;
    size_t off = 0, used, linelen, n, olen = 0, chunk_off;
    int rc = 0;

    out[0] = '\0';
    ctl_linebuf_init(&lb);
    while (off < len) {
        n = len - off < step ? len - off : step;
        for (chunk_off = 0; chunk_off < n;) {
            rc = ctl_linebuf_next(&lb, text + off + chunk_off, n - chunk_off, &used, &line,
                                  &linelen);
            assert_true(used <= n - chunk_off);
            chunk_off += used;
            if (rc < 0)
                return rc;
            if (rc == 1) {
                assert_true(olen + linelen + 2 < size);
                memcpy(out + olen, line, linelen);
                olen += linelen;
                out[olen++] = '|';
                out[olen] = '\0';
            } else
                assert_true(used > 0);
        }
        off += n;
    }
    return rc;
}

static void
test_linebuf_chunks(void **state)
{
    const char *text = "PING\nGRANT ip=1 user=a\n\nOK count=2\npartial";
    char out[256];
    size_t step;

    (void)state;
    for (step = 1; step <= strlen(text); step++) {
        print_message("step %zu\n", step);
        assert_int_equal(feed_all(text, strlen(text), step, out, sizeof(out)), 0);
        assert_string_equal(out, "PING|GRANT ip=1 user=a||OK count=2|");
    }
}

static void
test_linebuf_bounds(void **state)
{
    char text[CTL_LINE_MAX * 2 + 8], out[CTL_LINE_MAX * 3];
    size_t step;

    (void)state;
    /* exactly CTL_LINE_MAX bytes with the LF: one line */
    memset(text, 'a', CTL_LINE_MAX - 1);
    text[CTL_LINE_MAX - 1] = '\n';
    for (step = 1; step <= CTL_LINE_MAX; step += 97) {
        assert_int_equal(feed_all(text, CTL_LINE_MAX, step, out, sizeof(out)), 1);
        assert_int_equal(strlen(out), CTL_LINE_MAX);    /* 1023 + '|' */
    }
    /* one more byte: too long, whatever the chunking */
    memset(text, 'a', CTL_LINE_MAX);
    text[CTL_LINE_MAX] = '\n';
    for (step = 1; step <= CTL_LINE_MAX + 1; step += 101)
        assert_int_equal(feed_all(text, CTL_LINE_MAX + 1, step, out, sizeof(out)), -1);
    /* a good line first, then an overlong one */
    memcpy(text, "PING\n", 5);
    memset(text + 5, 'b', CTL_LINE_MAX + 3);
    assert_int_equal(feed_all(text, CTL_LINE_MAX + 8, 7, out, sizeof(out)), -1);
    assert_string_equal(out, "PING|");
}

/* --- client against an in-test server --- */

enum server_mode {
    SRV_DATA_OK,       /* two data lines then OK, in odd chunks */
    SRV_ERR,
    SRV_CLOSE,         /* read the request, close without a reply */
    SRV_SILENT,        /* read the request, never answer */
    SRV_GARBAGE,       /* a reply line that does not parse */
    SRV_PARTIAL,       /* half a final line, then close */
    SRV_NOTIFY,        /* just record the request */
};

struct server {
    char dir[64];
    char path[128];
    int lfd;
    enum server_mode mode;
    pthread_t thread;
    char got[CTL_LINE_MAX + 1];
    int release[2];    /* SRV_SILENT waits on this pipe */
};

static void
srv_send(int fd, const char *s)
{
    (void)fd_write_all(fd, s, strlen(s));    /* no cmocka asserts off the main thread */
}

static void
srv_read_request(struct server *s, int fd)
{
    size_t len = 0;
    ssize_t n;

    while (len < sizeof(s->got) - 1 && (n = read(fd, s->got + len, sizeof(s->got) - 1 - len)) > 0) {
        len += (size_t)n;
        if (memchr(s->got, '\n', len) != NULL)
            break;
    }
    s->got[len] = '\0';
}

static void *
server_main(void *arg)
{
    struct server *s = arg;
    char c;
    int fd = accept(s->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    srv_read_request(s, fd);
    switch (s->mode) {
    case SRV_DATA_OK:
        srv_send(fd, "PROGRESS id=1 rcpt=a%40b status=sent rep");
        srv_send(fd, "ly=250%20ok\nPROGRESS id=2 rcpt=c status=deferred reply=451\nOK deliv");
        srv_send(fd, "ered=1 deferred=1 bounced=0\n");
        break;
    case SRV_ERR:
        srv_send(fd, "ERR code=unknown-customer text=no%20such%20customer\n");
        break;
    case SRV_GARBAGE:
        srv_send(fd, "PROGRESS rcpt=x\nok whatever\n");
        break;
    case SRV_PARTIAL:
        srv_send(fd, "OK deliv");
        break;
    case SRV_SILENT:
        (void)read(s->release[0], &c, 1);
        break;
    default:
        break;
    }
    close(fd);
    return NULL;
}

static void
server_start(struct server *s, enum server_mode mode)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    assert_int_equal(str_copy(s->dir, sizeof(s->dir), "/tmp/test_ctlproto.XXXXXX"), 0);
    assert_non_null(mkdtemp(s->dir));
    assert_int_equal(path_join(s->path, sizeof(s->path), s->dir, "ctl.sock"), 0);
    assert_int_equal(str_copy(sa.sun_path, sizeof(sa.sun_path), s->path), 0);
    assert_int_equal(pipe(s->release), 0);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s)
{
    assert_int_equal(write(s->release[1], "x", 1), 1);
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    close(s->lfd);
    close(s->release[0]);
    close(s->release[1]);
    assert_int_equal(unlink(s->path), 0);
    assert_int_equal(rmdir(s->dir), 0);
}

struct collected {
    int n;
    char rcpts[64];
};

static void
collect(void *ctx, const struct ctl_msg *line)
{
    struct collected *c = ctx;
    const char *r = ctl_msg_get(line, "rcpt");

    assert_string_equal(line->verb, "PROGRESS");
    c->n++;
    assert_non_null(r);
    assert_true(strlen(c->rcpts) + strlen(r) + 2 < sizeof(c->rcpts));
    memcpy(c->rcpts + strlen(c->rcpts), r, strlen(r) + 1);
    memcpy(c->rcpts + strlen(c->rcpts), ",", 2);
}

static void
flush_req(struct ctl_msg *m)
{
    assert_int_equal(ctl_msg_init(m, "FLUSH"), 0);
    assert_int_equal(ctl_msg_add(m, "customer", "acme"), 0);
    assert_int_equal(ctl_msg_add(m, "reason", "by hand"), 0);
}

static void
test_request_data_ok(void **state)
{
    struct collected c = { 0, "" };
    struct server s;
    struct ctl_msg req, final;
    struct errbuf err;

    (void)state;
    server_start(&s, SRV_DATA_OK);
    flush_req(&req);
    assert_int_equal(ctl_request(s.path, &req, collect, &c, &final, 5000, &err), 0);
    assert_string_equal(final.verb, "OK");
    assert_string_equal(ctl_msg_get(&final, "delivered"), "1");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.rcpts, "a@b,c,");
    server_stop(&s);
    assert_string_equal(s.got, "FLUSH customer=acme reason=by%20hand\n");
}

static void
test_request_err(void **state)
{
    struct server s;
    struct ctl_msg req, final;
    struct errbuf err;

    (void)state;
    server_start(&s, SRV_ERR);
    flush_req(&req);
    assert_int_equal(ctl_request(s.path, &req, NULL, NULL, &final, 0, &err), 0);
    assert_string_equal(final.verb, "ERR");
    assert_string_equal(ctl_msg_get(&final, "code"), "unknown-customer");
    assert_string_equal(ctl_msg_get(&final, "text"), "no such customer");
    server_stop(&s);
}

static void
expect_request_error(enum server_mode mode, int timeout_ms, const char *suffix)
{
    struct collected c = { 0, "" };
    struct server s;
    struct ctl_msg req, final;
    struct errbuf err;
    char want[256];

    server_start(&s, mode);
    flush_req(&req);
    assert_int_equal(ctl_request(s.path, &req, collect, &c, &final, timeout_ms, &err), -1);
    if (suffix[0] == ':')
        assert_int_equal(str_printf(want, sizeof(want), "%s%s", s.path, suffix), 0);
    else
        assert_int_equal(str_copy(want, sizeof(want), suffix), 0);
    assert_string_equal(err.msg, want);
    server_stop(&s);
}

static void
test_request_failures(void **state)
{
    (void)state;
    expect_request_error(SRV_CLOSE, 5000, ": connection closed before reply");
    expect_request_error(SRV_PARTIAL, 5000, ": connection closed before reply");
    expect_request_error(SRV_GARBAGE, 5000, "bad reply line: bad verb");
}

static long long
ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_request_timeout(void **state)
{
    long long t0 = ms_now(), took;

    (void)state;
    expect_request_error(SRV_SILENT, 300, ": no reply within 300 ms");
    took = ms_now() - t0;
    assert_true(took >= 290);
    assert_true(took < 3000);
}

static void
test_request_no_server(void **state)
{
    struct ctl_msg req, final;
    struct errbuf err;
    char path[200];

    (void)state;
    flush_req(&req);
    assert_int_equal(ctl_request("/nonexistent/autoturn.sock", &req, NULL, NULL, &final, 1000,
                                 &err), -1);
    assert_string_equal(err.msg, "connect to /nonexistent/autoturn.sock: No such file or directory");
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(ctl_notify(path, &req, &err), -1);
    assert_true(strncmp(err.msg, "socket path too long: /ppp", 26) == 0);
}

static void
test_notify(void **state)
{
    struct server s;
    struct ctl_msg req;
    struct errbuf err;
    long long t0;

    (void)state;
    flush_req(&req);
    t0 = ms_now();
    assert_int_equal(ctl_notify("/nonexistent/flusher.sock", &req, &err), -1);
    assert_string_equal(err.msg, "connect to /nonexistent/flusher.sock: No such file or directory");
    assert_true(ms_now() - t0 < 500);
    server_start(&s, SRV_NOTIFY);
    assert_int_equal(ctl_notify(s.path, &req, &err), 0);
    server_stop(&s);
    assert_string_equal(s.got, "FLUSH customer=acme reason=by%20hand\n");
}

static void
test_notify_refused(void **state)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[64], path[128], want[256];
    struct ctl_msg req;
    struct errbuf err;
    int fd;

    (void)state;
    /* a socket file nobody listens on (the daemon died) */
    assert_int_equal(str_copy(dir, sizeof(dir), "/tmp/test_ctlproto.XXXXXX"), 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(path_join(path, sizeof(path), dir, "dead.sock"), 0);
    assert_int_equal(str_copy(sa.sun_path, sizeof(sa.sun_path), path), 0);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    flush_req(&req);
    assert_int_equal(ctl_notify(path, &req, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "connect to %s: Connection refused", path), 0);
    assert_string_equal(err.msg, want);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_build),
        cmocka_unit_test(test_msg_limits),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_format_too_long),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_nul_and_sizes),
        cmocka_unit_test(test_linebuf_chunks),
        cmocka_unit_test(test_linebuf_bounds),
        cmocka_unit_test(test_request_data_ok),
        cmocka_unit_test(test_request_err),
        cmocka_unit_test(test_request_failures),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_request_no_server),
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_notify_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
