/* SPDX-License-Identifier: ISC */
/*
 * test_sockspec.c - socket specs: parsing (every error text), formatting,
 * and real listen/connect on UNIX sockets (mode, stale socket, refusing a
 * non-socket) and on loopback TCP (127.0.0.1 and, when present, ::1).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "addr.h"
#include "sockspec.h"

struct parse_case {
    const char *label;
    const char *input;
    const char *error;      /* NULL: must parse, and format back to want */
    const char *want;
};

static const struct parse_case parse_cases[] = {
    { "unix", "unix:/run/a.sock", NULL, "unix:/run/a.sock" },
    { "unix mode", "unix:/run/a.sock:0660", NULL, "unix:/run/a.sock:0660" },
    { "unix short mode", "unix:/run/a.sock:660", NULL, "unix:/run/a.sock:0660" },
    { "unix colon in path", "unix:/run/a:b.sock", NULL, "unix:/run/a:b.sock" },
    { "unix digits path", "unix:/run/a:1:0600", NULL, "unix:/run/a:1:0600" },
    { "inet v4", "inet:127.0.0.1:10031", NULL, "inet:127.0.0.1:10031" },
    { "inet name", "inet:localhost:25", NULL, "inet:localhost:25" },
    { "inet any", "inet:*:1789", NULL, "inet:*:1789" },
    { "inet empty host", "inet::366", NULL, "inet:*:366" },
    { "inet v6", "inet:[::1]:10031", NULL, "inet:[::1]:10031" },
    { "inet v6 any", "inet:[::]:366", NULL, "inet:[::]:366" },
    { "port max", "inet:*:65535", NULL, "inet:*:65535" },
    { "empty", "", "unknown socket type (use unix: or inet:)", NULL },
    { "tcp prefix", "tcp:1.2.3.4:25", "unknown socket type (use unix: or inet:)", NULL },
    { "upper case", "UNIX:/a", "unknown socket type (use unix: or inet:)", NULL },
    { "relative", "unix:run/a.sock", "UNIX socket path must be absolute", NULL },
    { "no path", "unix:", "UNIX socket path must be absolute", NULL },
    { "mode only", "unix::0660", "UNIX socket path must be absolute", NULL },
    { "too long",
      "unix:/0123456789012345678901234567890123456789012345678901234567890123456789"
      "01234567890123456789012345678901234567890",
      "UNIX socket path too long", NULL },
    { "mode 8", "unix:/a:0680", "bad socket mode (octal, e.g. 0660)", NULL },
    { "mode too big", "unix:/a:1777", "bad socket mode (octal, e.g. 0660)", NULL },
    { "mode too long", "unix:/a:00660", "bad socket mode (octal, e.g. 0660)", NULL },
    { "mode empty", "unix:/a:", "bad socket mode (octal, e.g. 0660)", NULL },
    { "no port", "inet:localhost", "missing port", NULL },
    { "empty port", "inet:localhost:", "missing port", NULL },
    { "v6 no port", "inet:[::1]", "missing port", NULL },
    { "v6 junk after", "inet:[::1]x25", "missing port", NULL },
    { "port zero", "inet:*:0", "bad port (1-65535)", NULL },
    { "port big", "inet:*:65536", "bad port (1-65535)", NULL },
    { "port letters", "inet:*:smtp", "bad port (1-65535)", NULL },
    { "port sign", "inet:*:+25", "bad port (1-65535)", NULL },
    { "unterminated", "inet:[::1:25", "unterminated [IPv6] address", NULL },
    { "bad v6", "inet:[1.2.3.4]:25", "bad IPv6 address", NULL },
    { "bad v6 text", "inet:[::g]:25", "bad IPv6 address", NULL },
    { "bare v6", "inet:::1:25", "IPv6 address must be in [brackets]", NULL },
    { "bad host", "inet:a b:25", "bad host name", NULL },
    { "host star", "inet:a*:25", "bad host name", NULL },
};

static void
test_parse(void **state)
{
    struct sockspec spec;
    char buf[256];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        const char *err = NULL;
        int rc = sockspec_parse(c->input, &spec, &err);

        print_message("case: %s\n", c->label);
        if (c->error != NULL) {
            assert_int_equal(rc, -1);
            assert_string_equal(err, c->error);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(sockspec_format(&spec, buf, sizeof(buf)), c->want);
    }
}

static void
test_parse_fields(void **state)
{
    struct sockspec spec;
    const char *err;

    (void)state;
    assert_int_equal(sockspec_parse("unix:/run/x.sock", &spec, &err), 0);
    assert_int_equal(spec.kind, SOCKSPEC_UNIX);
    assert_string_equal(spec.path, "/run/x.sock");
    assert_int_equal(spec.mode, 0600);
    assert_false(spec.mode_set);
    assert_int_equal(sockspec_parse("unix:/run/x.sock:0640", &spec, &err), 0);
    assert_int_equal(spec.mode, 0640);
    assert_true(spec.mode_set);
    assert_int_equal(sockspec_parse("inet:[::1]:366", &spec, &err), 0);
    assert_int_equal(spec.kind, SOCKSPEC_INET);
    assert_string_equal(spec.host, "::1");
    assert_int_equal(spec.port, 366);
    assert_true(spec.ipv6_literal);
    assert_int_equal(sockspec_parse("inet:*:25", &spec, &err), 0);
    assert_string_equal(spec.host, "*");
    assert_false(spec.ipv6_literal);
    /* the longest path that fits */
    char text[SOCKSPEC_PATH_MAX + 8] = "unix:/";
    memset(text + 6, 'a', SOCKSPEC_PATH_MAX - 2);
    text[6 + SOCKSPEC_PATH_MAX - 2] = '\0';
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    assert_int_equal(strlen(spec.path), SOCKSPEC_PATH_MAX - 1);
    (void)strncat(text, "a", 2);
    assert_int_equal(sockspec_parse(text, &spec, &err), -1);
    assert_string_equal(err, "UNIX socket path too long");
}

/* free_port - a port nobody listens on right now (bind port 0, close) */
static unsigned
free_port(int family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = socket(family, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    else
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&ss,
                          family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    close(fd);
    return ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                    : ((struct sockaddr_in *)&ss)->sin_port);
}

/* round_trip - listen on spec, connect, accept, pass a byte */
static void
round_trip(const struct sockspec *spec)
{
    const char *err = NULL;
    int lfd, cfd, afd, flags;
    char c = 0;

    lfd = sockspec_listen(spec, 5, &err);
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    cfd = sockspec_connect(spec, 2000, &err);
    assert_true(cfd >= 0);
    flags = fcntl(cfd, F_GETFL);
    assert_false(flags & O_NONBLOCK);
    assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    afd = accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    assert_int_equal(write(cfd, "x", 1), 1);
    assert_int_equal(read(afd, &c, 1), 1);
    assert_int_equal(c, 'x');
    close(afd);
    close(cfd);
    close(lfd);
}

static char tmpdir[64];

static int
setup_dir(void **state)
{
    (void)state;
    (void)str_copy(tmpdir, sizeof(tmpdir), "/tmp/test_sockspec.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
    char path[128];

    (void)state;
    (void)path_join(path, sizeof(path), tmpdir, "s.sock");
    (void)unlink(path);
    (void)path_join(path, sizeof(path), tmpdir, "file");
    (void)unlink(path);
    return rmdir(tmpdir);
}

static void
test_unix(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[160];
    struct stat st;
    int lfd, lfd2;

    (void)state;
    assert_int_equal(str_printf(text, sizeof(text), "unix:%s/s.sock:0640", tmpdir), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    round_trip(&spec);
    /* the socket left behind is stale: listen again removes it */
    assert_int_equal(lstat(spec.path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    lfd = sockspec_listen(&spec, 5, &err);
    assert_true(lfd >= 0);
    assert_int_equal(stat(spec.path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    /* a live socket is not taken over */
    lfd2 = sockspec_listen(&spec, 5, &err);
    assert_int_equal(lfd2, -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_string_equal(err, "another process listens on the socket");
    close(lfd);
}

static void
test_unix_default_mode(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[160];
    struct stat st;
    int lfd;

    (void)state;
    assert_int_equal(str_printf(text, sizeof(text), "unix:%s/s.sock", tmpdir), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    lfd = sockspec_listen(&spec, 5, &err);
    assert_true(lfd >= 0);
    assert_int_equal(stat(spec.path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    close(lfd);
}

static void
test_unix_refuses_file(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[160];
    struct stat st;
    int fd;

    (void)state;
    assert_int_equal(str_printf(text, sizeof(text), "unix:%s/file", tmpdir), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    fd = open(spec.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sockspec_listen(&spec, 5, &err), -1);
    assert_int_equal(errno, EEXIST);
    assert_string_equal(err, "existing file is not a socket");
    assert_int_equal(lstat(spec.path, &st), 0);       /* still there */
    assert_true(S_ISREG(st.st_mode));
}

static void
test_unix_errors(void **state)
{
    struct sockspec spec;
    const char *err = NULL;

    (void)state;
    assert_int_equal(sockspec_parse("unix:/nonexistent-dir/x/s.sock", &spec, &err), 0);
    assert_int_equal(sockspec_listen(&spec, 5, &err), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(err, "bind");
    assert_int_equal(sockspec_connect(&spec, 1000, &err), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(err, "connect");
    assert_int_equal(sockspec_connect(&spec, 0, &err), -1);
    assert_string_equal(err, "connect");
}

static void
test_inet4(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[64];
    int lfd, on = 0;
    socklen_t len = sizeof(on);

    (void)state;
    assert_int_equal(str_printf(text, sizeof(text), "inet:127.0.0.1:%u", free_port(AF_INET)), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    round_trip(&spec);
    lfd = sockspec_listen(&spec, 5, &err);
    assert_true(lfd >= 0);
    assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    assert_true(on);
    close(lfd);
    /* nobody listens now: refused, with and without a timeout */
    assert_int_equal(sockspec_connect(&spec, 1000, &err), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_string_equal(err, "connect");
    assert_int_equal(sockspec_connect(&spec, 0, &err), -1);
    assert_int_equal(errno, ECONNREFUSED);
}

static void
test_inet6(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[64];
    int fd, lfd, on = 0;
    socklen_t len = sizeof(on);

    (void)state;
    if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) < 0) {
        skip();                 /* no IPv6 in this kernel */
        return;
    }
    close(fd);
    assert_int_equal(str_printf(text, sizeof(text), "inet:[::1]:%u", free_port(AF_INET6)), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    round_trip(&spec);
    lfd = sockspec_listen(&spec, 5, &err);
    assert_true(lfd >= 0);
    assert_int_equal(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len), 0);
    assert_true(on);
    close(lfd);
}

static void
test_inet_any(void **state)
{
    struct sockspec spec, conn;
    const char *err = NULL;
    char text[64];
    int lfd, cfd;

    (void)state;
    unsigned port = free_port(AF_INET);
    assert_int_equal(str_printf(text, sizeof(text), "inet:*:%u", port), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    lfd = sockspec_listen(&spec, 5, &err);
    assert_true(lfd >= 0);
    assert_int_equal(str_printf(text, sizeof(text), "inet:127.0.0.1:%u", port), 0);
    assert_int_equal(sockspec_parse(text, &conn, &err), 0);
    cfd = sockspec_connect(&conn, 1000, &err);
    assert_true(cfd >= 0);
    close(cfd);
    /* a second listener on the same port fails at bind */
    assert_int_equal(sockspec_listen(&spec, 5, &err), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_string_equal(err, "bind");
    close(lfd);
}

/* peer_of - connect to text, accept on lfd, the peer's address as text
 * (addr.c's normalised form); "refused" when the connect fails */
static void
peer_of(int lfd, const char *text, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct sockspec conn;
    struct ipaddr a;
    const char *err = NULL;
    int cfd, afd;

    assert_int_equal(sockspec_parse(text, &conn, &err), 0);
    if ((cfd = sockspec_connect(&conn, 1000, &err)) < 0) {
        (void)str_copy(buf, size, "refused");
        return;
    }
    afd = accept(lfd, (struct sockaddr *)&ss, &len);
    assert_true(afd >= 0);
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&ss, &a), 0);
    ipaddr_format(&a, buf, size);
    close(afd);
    close(cfd);
}

/* "*" is dual-stack: IPv4 and IPv6 clients on one socket, IPv4 peers
 * seen as IPv4; "0.0.0.0" is IPv4 only, "[::]" IPv6 only */
static void
test_inet_any_dual_stack(void **state)
{
    struct sockspec spec;
    const char *err = NULL;
    char text[64], peer[IPADDR_TEXT_MAX];
    int fd, lfd, on = 1;
    socklen_t len = sizeof(on);
    unsigned port;

    (void)state;
    if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) < 0) {
        skip();                 /* no IPv6 in this kernel: "*" is IPv4 (test_inet_any) */
        return;
    }
    close(fd);
    port = free_port(AF_INET6);
    assert_int_equal(str_printf(text, sizeof(text), "inet:*:%u", port), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    assert_true((lfd = sockspec_listen(&spec, 5, &err)) >= 0);
    assert_int_equal(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len), 0);
    assert_false(on);
    assert_int_equal(str_printf(text, sizeof(text), "inet:[::1]:%u", port), 0);
    peer_of(lfd, text, peer, sizeof(peer));
    assert_string_equal(peer, "::1");
    assert_int_equal(str_printf(text, sizeof(text), "inet:127.0.0.1:%u", port), 0);
    peer_of(lfd, text, peer, sizeof(peer));
    assert_string_equal(peer, "127.0.0.1");
    close(lfd);

    assert_int_equal(str_printf(text, sizeof(text), "inet:0.0.0.0:%u", port), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    assert_true((lfd = sockspec_listen(&spec, 5, &err)) >= 0);
    assert_int_equal(str_printf(text, sizeof(text), "inet:[::1]:%u", port), 0);
    peer_of(lfd, text, peer, sizeof(peer));
    assert_string_equal(peer, "refused");
    close(lfd);

    assert_int_equal(str_printf(text, sizeof(text), "inet:[::]:%u", port), 0);
    assert_int_equal(sockspec_parse(text, &spec, &err), 0);
    assert_true((lfd = sockspec_listen(&spec, 5, &err)) >= 0);
    assert_int_equal(str_printf(text, sizeof(text), "inet:127.0.0.1:%u", port), 0);
    peer_of(lfd, text, peer, sizeof(peer));
    assert_string_equal(peer, "refused");
    close(lfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test_setup_teardown(test_unix, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_default_mode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_refuses_file, setup_dir, teardown_dir),
        cmocka_unit_test(test_unix_errors),
        cmocka_unit_test(test_inet4),
        cmocka_unit_test(test_inet6),
        cmocka_unit_test(test_inet_any),
        cmocka_unit_test(test_inet_any_dual_stack),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
