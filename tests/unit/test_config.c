/* SPDX-License-Identifier: ISC */
/*
 * test_config.c - autoturn.conf: defaults, a file that sets every key,
 * the shipped example (as is and with every default uncommented), and one
 * file per kind of mistake with the exact "FILE:LINE: message" texts.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "config.h"
#include "paths.h"

#define MAX_ERRORS 16

struct errors {
    size_t n;
    char msg[MAX_ERRORS][600];
};

static void
collect(void *ctx, const char *msg)
{
    struct errors *e = ctx;

    if (e->n < MAX_ERRORS)
        (void)str_copy(e->msg[e->n++], sizeof(e->msg[0]), msg);
}

/* data_path - tests/data/config/NAME */
static void
data_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("AUTOTURN_TEST_DATA");

    assert_non_null(dir);
    assert_int_equal(str_printf(buf, size, "%s/config/%s", dir, name), 0);
}

/* load - load a data file; the errors into *e */
static int
load(const char *name, struct config *cfg, struct errors *e)
{
    char path[PATH_MAX];

    data_path(path, sizeof(path), name);
    memset(e, 0, sizeof(*e));
    return config_load(path, cfg, collect, e);
}

static void
test_defaults(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    char buf[256];

    (void)state;
    config_defaults(cfg);
    assert_int_equal(cfg->log_dest, LOG_DEST_SYSLOG);
    assert_int_equal(cfg->log_facility, LOG_MAIL);
    assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
    assert_string_equal(cfg->spool_dir, AUTOTURN_SPOOL_DIR);
    assert_string_equal(cfg->customers_table, AUTOTURN_STATE_DIR "/customers.cdb");
    assert_int_equal(str_printf(buf, sizeof(buf), "%s", AUTOTURN_CONFIG_FILE), 0);
    *strrchr(buf, '/') = '\0';
    assert_int_equal(strncmp(cfg->customers_source, buf, strlen(buf)), 0);
    assert_string_equal(cfg->customers_source + strlen(buf), "/customers");
    assert_int_equal(cfg->customers_check_interval, 1000);
    assert_int_equal(cfg->milter.listen.count, 1);
    assert_string_equal(sockspec_format(&cfg->milter.listen.spec[0], buf, sizeof(buf)),
                        "unix:" AUTOTURN_RUN_DIR "/milter.sock:0660");
    assert_string_equal(cfg->milter.user, "autoturn");
    assert_string_equal(cfg->milter.group, "");
    assert_int_equal(cfg->milter.timeout, 300);
    assert_int_equal(cfg->milter.max_recipients, 1000);
    assert_string_equal(sockspec_format(&cfg->policyd.listen.spec[0], buf, sizeof(buf)),
                        "unix:" AUTOTURN_POSTFIX_PRIVATE_DIR "/autoturn-policy:0660");
    assert_string_equal(cfg->policyd.socket_group, "postfix");
    assert_int_equal(cfg->policyd.trusted_listen.count, 0);
    assert_int_equal(cfg->policyd.trusted_users.count, 1);
    assert_string_equal(cfg->policyd.trusted_users.name[0], "postfix");
    assert_int_equal(cfg->policyd.control_users.count, 0);
    assert_int_equal(cfg->flusher.control_users.count, 0);
    assert_string_equal(sockspec_format(&cfg->policyd.control, buf, sizeof(buf)),
                        "unix:" AUTOTURN_RUN_DIR "/policyd-control.sock:0660");
    assert_int_equal(cfg->policyd.max_connections, 10000);
    assert_int_equal(cfg->policyd.idle_timeout, 300);
    assert_int_equal(cfg->policyd.max_line, 4096);
    assert_int_equal(cfg->policyd.max_attributes, 100);
    assert_int_equal(cfg->policyd.grant_ttl, 180 * 60);
    assert_string_equal(cfg->policyd.grant_file, AUTOTURN_STATE_DIR "/grants");
    assert_int_equal(cfg->policyd.notify_interval, 60);
    assert_string_equal(sockspec_format(&cfg->flusher.control, buf, sizeof(buf)),
                        "unix:" AUTOTURN_RUN_DIR "/flusher.sock:0660");
    assert_int_equal(cfg->flusher.max_flushes, 20);
    assert_int_equal(cfg->flusher.retry_interval, 300);
    assert_int_equal(cfg->flusher.connect_timeout, 30);
    assert_int_equal(cfg->flusher.greeting_timeout, 300);
    assert_int_equal(cfg->flusher.command_timeout, 300);
    assert_int_equal(cfg->flusher.data_timeout, 600);
    assert_int_equal(cfg->flusher.flush_timeout, 3600);
    assert_int_equal(cfg->flusher.max_age, 5 * 86400);
    assert_int_equal(cfg->flusher.delay_warning, 0);
    assert_int_equal(cfg->flusher.sweep_interval, 600);
    assert_int_equal(cfg->flusher.tmp_max_age, 36 * 3600);
    assert_string_equal(cfg->flusher.myhostname, "");
    assert_string_equal(cfg->flusher.bounce_method, "sendmail");
    assert_string_equal(cfg->flusher.sendmail_command, "/usr/sbin/sendmail");
    assert_string_equal(sockspec_format(&cfg->flusher.bounce_relay, buf, sizeof(buf)),
                        "inet:127.0.0.1:25");
    assert_string_equal(cfg->flusher.postmaster, "postmaster");
    assert_int_equal(cfg->flusher.max_reconnects, 5);
    assert_true(cfg->flusher.chunking);
    assert_false(cfg->flusher.hello.enable);
    assert_string_equal(sockspec_format(&cfg->flusher.hello.listen.spec[0], buf, sizeof(buf)),
                        "inet:*:1789");
    assert_int_equal(cfg->flusher.hello.rate_interval, 60);
    assert_false(cfg->flusher.odmr.enable);
    assert_string_equal(sockspec_format(&cfg->flusher.odmr.listen.spec[0], buf, sizeof(buf)),
                        "inet:*:366");
    assert_string_equal(cfg->flusher.odmr.tls_cert, "");
    assert_int_equal(cfg->flusher.odmr.auth_delay, 2);
    assert_int_equal(cfg->flusher.odmr.max_auth_failures, 3);
    assert_int_equal(cfg->flusher.odmr.timeout, 300);
    assert_int_equal(cfg->flusher.odmr.turnaround_timeout, 600);
    assert_int_equal(cfg->flusher.odmr.max_sessions, 50);
    assert_int_equal(cfg->flusher.odmr.max_sessions_per_address, 5);
    assert_int_equal(cfg->flusher.odmr.address_failures, 10);
    assert_int_equal(cfg->flusher.odmr.address_block, 900);
    assert_string_equal(cfg->flusher.odmr.user, "autoturn-odmr");
    assert_int_equal(cfg->flusher.odmr.preauth_timeout, 30);
    assert_int_equal(cfg->flusher.odmr.max_preauth_sessions, 40);
    assert_int_equal(cfg->flusher.odmr.account_failures, 5);
    assert_int_equal(cfg->flusher.odmr.account_delay, 1);
    assert_int_equal(cfg->flusher.odmr.account_delay_max, 60);
    assert_int_equal(cfg->milter.metrics.listen.kind, SOCKSPEC_UNIX);   /* unset: metrics off */
    assert_string_equal(cfg->milter.metrics.listen.path, "");
    assert_int_equal(cfg->policyd.metrics.listen.kind, SOCKSPEC_UNIX);
    assert_string_equal(cfg->policyd.metrics.listen.path, "");
    assert_int_equal(cfg->flusher.metrics.listen.kind, SOCKSPEC_UNIX);
    assert_string_equal(cfg->flusher.metrics.listen.path, "");
    x_free(cfg);
}

/* same_as_defaults - a loaded config equals the defaults (file name aside) */
static void
same_as_defaults(struct config *cfg)
{
    struct config *def = x_calloc(1, sizeof(*def));

    config_defaults(def);
    (void)str_copy(def->file, sizeof(def->file), cfg->file);
    assert_memory_equal(def, cfg, sizeof(*cfg));
    x_free(def);
}

static void
test_empty(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    struct errors e;

    (void)state;
    assert_int_equal(load("empty.conf", cfg, &e), 0);
    assert_int_equal(e.n, 0);
    assert_non_null(strstr(cfg->file, "/config/empty.conf"));
    same_as_defaults(cfg);
    x_free(cfg);
}

static void
check_full_flusher(const struct config_flusher *f)
{
    char buf[256];

    assert_string_equal(sockspec_format(&f->control, buf, sizeof(buf)),
                        "unix:/tmp/at/flusher.sock:0600");
    assert_string_equal(f->user, "atflush");
    assert_string_equal(f->group, "mail");
    assert_string_equal(f->socket_group, "mail");
    assert_int_equal(f->max_flushes, 7);
    assert_int_equal(f->retry_interval, 900);
    assert_int_equal(f->connect_timeout, 20);
    assert_int_equal(f->greeting_timeout, 240);
    assert_int_equal(f->command_timeout, 180);
    assert_int_equal(f->data_timeout, 660);
    assert_int_equal(f->flush_timeout, 7200);
    assert_int_equal(f->max_age, 7 * 86400);
    assert_int_equal(f->delay_warning, 4 * 3600);
    assert_int_equal(f->sweep_interval, 1800);
    assert_int_equal(f->tmp_max_age, 2 * 86400);
    assert_string_equal(f->myhostname, "mx.example.net");
    assert_string_equal(f->bounce_method, "smtp");
    assert_string_equal(f->sendmail_command, "/usr/lib/sendmail");
    assert_string_equal(sockspec_format(&f->bounce_relay, buf, sizeof(buf)), "inet:192.0.2.1:2525");
    assert_string_equal(f->postmaster, "hostmaster@example.net");
    assert_int_equal(f->max_reconnects, 2);
    assert_false(f->chunking);
    assert_true(f->hello.enable);
    assert_int_equal(f->hello.listen.count, 2);
    assert_string_equal(sockspec_format(&f->hello.listen.spec[1], buf, sizeof(buf)), "inet:[::]:1789");
    assert_int_equal(f->hello.rate_interval, 30);
    assert_true(f->odmr.enable);
    assert_int_equal(f->odmr.listen.count, 1);
    assert_string_equal(sockspec_format(&f->odmr.listen.spec[0], buf, sizeof(buf)), "inet:0.0.0.0:366");
    assert_string_equal(f->odmr.tls_cert, "/etc/ssl/at.crt");
    assert_string_equal(f->odmr.tls_key, "/etc/ssl/at.key");
    assert_int_equal(f->odmr.auth_delay, 3);
    assert_int_equal(f->odmr.max_auth_failures, 5);
    assert_int_equal(f->odmr.timeout, 420);
    assert_string_equal(sockspec_format(&f->metrics.listen, buf, sizeof(buf)), "inet:*:9743");
}

static void
test_full(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    struct errors e;
    char buf[256];

    (void)state;
    assert_int_equal(load("full.conf", cfg, &e), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(cfg->log_dest, LOG_DEST_STDERR);
    assert_int_equal(cfg->log_facility, LOG_LOCAL3);
    assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(cfg->spool_dir, "/srv/autoturn/spool");
    assert_string_equal(cfg->customers_source, "/srv/autoturn/customers");
    assert_string_equal(cfg->customers_table, "/srv/autoturn/customers.cdb");
    assert_int_equal(cfg->customers_check_interval, 5000);
    assert_int_equal(cfg->milter.listen.count, 2);
    assert_string_equal(sockspec_format(&cfg->milter.listen.spec[0], buf, sizeof(buf)),
                        "unix:/tmp/at/milter.sock:0666");
    assert_string_equal(sockspec_format(&cfg->milter.listen.spec[1], buf, sizeof(buf)),
                        "inet:127.0.0.1:8891");
    assert_string_equal(cfg->milter.user, "atmilter");
    assert_string_equal(cfg->milter.group, "atgroup");
    assert_string_equal(cfg->milter.socket_group, "postfix");
    assert_int_equal(cfg->milter.timeout, 120);
    assert_int_equal(cfg->milter.max_recipients, 500);
    assert_int_equal(cfg->policyd.listen.count, 1);
    assert_string_equal(sockspec_format(&cfg->policyd.listen.spec[0], buf, sizeof(buf)),
                        "inet:[::1]:10031");
    assert_string_equal(sockspec_format(&cfg->policyd.control, buf, sizeof(buf)),
                        "unix:/tmp/at/pctl.sock");
    assert_string_equal(cfg->policyd.user, "atpol");
    assert_string_equal(cfg->policyd.group, "");
    assert_string_equal(cfg->policyd.socket_group, "postfix");
    assert_int_equal(cfg->policyd.max_connections, 50);
    assert_int_equal(cfg->policyd.idle_timeout, 90);
    assert_int_equal(cfg->policyd.max_line, 8192);
    assert_int_equal(cfg->policyd.max_attributes, 64);
    assert_int_equal(cfg->policyd.grant_ttl, 5400);
    assert_string_equal(cfg->policyd.grant_file, "/srv/autoturn/grants");
    assert_int_equal(cfg->policyd.notify_interval, 120);
    assert_string_equal(sockspec_format(&cfg->milter.metrics.listen, buf, sizeof(buf)),
                        "inet:127.0.0.1:9741");
    assert_string_equal(sockspec_format(&cfg->policyd.metrics.listen, buf, sizeof(buf)),
                        "inet:[::1]:9742");
    check_full_flusher(&cfg->flusher);
    x_free(cfg);
}

/* example_path - conf/autoturn.conf of the source tree */
static void
example_path(char *buf, size_t size)
{
    data_path(buf, size, "../../../conf/autoturn.conf");
}

static void
test_example(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    char path[PATH_MAX];
    struct errors e = { 0 };

    (void)state;
    example_path(path, sizeof(path));
    assert_int_equal(config_load(path, cfg, collect, &e), 0);
    assert_int_equal(e.n, 0);
    same_as_defaults(cfg);
    x_free(cfg);
}

/* uncomment - copy src to dst turning "    # key = value" into "    key = value" */
static int
uncomment(const char *src, const char *dst)
{
    char line[512];
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    int keys = 0;

    assert_non_null(in);
    assert_non_null(out);
    while (fgets(line, sizeof(line), in) != NULL) {
        char *p = line + strspn(line, " ");
        size_t key = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz_");

        if (p[0] == '#' && p[1] == ' ' && key > 0 && strncmp(p + 2 + key, " = ", 3) == 0) {
            memmove(p, p + 2, strlen(p + 2) + 1);
            keys++;
        }
        assert_true(fputs(line, out) >= 0);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    return keys;
}

static void
test_example_uncommented(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    struct config *def = x_calloc(1, sizeof(*def));
    char src[PATH_MAX], dst[64] = "/tmp/test_config.XXXXXX";
    struct errors e = { 0 };
    int fd;

    (void)state;
    example_path(src, sizeof(src));
    assert_true((fd = mkstemp(dst)) >= 0);
    close(fd);
    assert_int_equal(uncomment(src, dst), 76);        /* every key of the schema */
    assert_int_equal(config_load(dst, cfg, collect, &e), 0);
    assert_int_equal(e.n, 0);
    unlink(dst);
    /* the example shows the packaged paths; everything else is the default */
    assert_string_equal(cfg->spool_dir, "/var/spool/autoturn");
    assert_string_equal(cfg->customers_source, "/etc/autoturn/customers");
    assert_string_equal(cfg->customers_table, "/var/lib/autoturn/customers.cdb");
    assert_string_equal(cfg->policyd.grant_file, "/var/lib/autoturn/grants");
    config_defaults(def);
    (void)str_copy(def->file, sizeof(def->file), cfg->file);
    (void)str_copy(def->spool_dir, sizeof(def->spool_dir), cfg->spool_dir);
    (void)str_copy(def->customers_source, sizeof(def->customers_source), cfg->customers_source);
    (void)str_copy(def->customers_table, sizeof(def->customers_table), cfg->customers_table);
    (void)str_copy(def->policyd.grant_file, sizeof(def->policyd.grant_file),
                   cfg->policyd.grant_file);
    assert_memory_equal(def, cfg, sizeof(*cfg));
    x_free(def);
    x_free(cfg);
}

struct bad_case {
    const char *file;
    const char *want[10];    /* every message, in order, after "PATH" */
};

static const struct bad_case bad_cases[] = {
    { "bad_syntax.conf", { ":4: unexpected token '='" } },
    { "bad_brace.conf", { ":5: no such option 'policyd'" } },
    { "bad_unknown.conf", { ":6: no such option 'bogus'" } },
    { "bad_unknown_section.conf", { ":2: no such option 'smtpd'" } },
    { "bad_type.conf", {
        ":3: bad number 'many' for 'max_recipients': not a number",
        ":4: bad duration 'yes' for 'timeout': not a number" } },
    { "bad_bool.conf", { ":4: invalid boolean value for option 'enable'" } },
    { "bad_socket.conf", {
        ":3: bad socket 'inet:localhost' for 'listen': missing port",
        ":6: bad socket 'tcp:127.0.0.1:10031' for 'control': unknown socket type (use unix: or inet:)",
        ":10: bad socket 'inet:[::1:366' for 'listen': unterminated [IPv6] address" } },
    { "bad_duration.conf", {
        ":7: bad duration '5x' for 'grant_ttl': unknown unit (use s, m, h, d or w)",
        ":8: bad duration '-1s' for 'notify_interval': sign not allowed" } },
    { "bad_size.conf", { ":3: bad size '10X' for 'max_line': unknown unit (use k, m, g or t)" } },
    { "bad_range.conf", {
        ":3: size '100' for 'max_line' out of range (512 to 1M)",
        ":4: number '0' for 'max_connections' out of range (1 to 1000000)",
        ":7: duration '2d' for 'connect_timeout' out of range (1s to 1d)",
        ":9: number '1000' for 'max_auth_failures' out of range (1 to 100)" } },
    { "bad_values.conf", {
        ":3: bad value 'file' for 'destination': use syslog or stderr",
        ":4: bad value 'kern' for 'facility': use mail, daemon, user or local0 to local7",
        ":5: bad value 'verbose' for 'level': use debug, info, warning or error",
        ":8: bad value 'var/spool/autoturn' for 'directory': must be an absolute path",
        ":11: bad value 'auto turn' for 'user': not a valid user or group name",
        ":12: bad value '0123456789012345678901234567890123456789012345678901234567890123' "
        "for 'socket_group': too long",
        ":15: bad value 'pigeon' for 'bounce_method': use sendmail or smtp",
        ":16: bad value 'post master' for 'postmaster': must be printable text without blanks",
        ":17: bad value '-bad.example' for 'myhostname': not a valid host name" } },
    { "bad_listen_count.conf", { ":4: too many addresses for 'listen' (at most 8)" } },
    { "bad_comment.conf", { ":4: unterminated /* comment" } },
    { "bad_unclosed.conf", { ":1: section not closed: missing '}'" } },
    { "comments.conf", {
        ":12: bad value 'x#y' for 'user': not a valid user or group name",
        ":13: bad value 'g//h' for 'group': not a valid user or group name",
        ":15: bad duration '5x' for 'grant_ttl': unknown unit (use s, m, h, d or w)" } },
    { "bad_metrics.conf", {
        ":3: no such option 'port'" } },
    { "bad_metrics_socket.conf", {
        ":6: bad socket 'inet:127.0.0.1' for 'listen': missing port" } },
    { "bad_metrics_cross.conf", {
        ": milter.metrics: listen must be an inet: address (Prometheus scrapes over TCP)",
        ": policyd.metrics and flusher.metrics: listen on the same address "
        "inet:127.0.0.1:9741" } },
    { "bad_cross.conf", {
        ": milter: listen needs at least one address",
        ": flusher.hello: listen needs at least one address",
        ": flusher.odmr: tls_cert and tls_key must be set together",
        ": flusher: bounce_method smtp needs bounce_relay",
        ": flusher: delay_warning must be shorter than max_age" } },
    { "bad_trust.conf", {
        ": policyd: trusted_listen takes inet: sockets only (/run/autoturn/p.sock): unix: peers "
        "are trusted by their uid (trusted_users); list the socket in listen",
        ": flusher.odmr: max_preauth_sessions (20) must not exceed max_sessions (10)",
        ": flusher.odmr: user must be set and differ from flusher.user (pre-AUTH sessions must "
        "not be able to read the spool)" } },
    { "bad_trust_names.conf", {
        ":3: bad value 'bad user' for 'trusted_users': not a valid user name",
        ":4: bad value '-x' for 'control_users': not a valid user name",
        ":7: too many names for 'control_users' (at most 16)" } },
};

static void
test_bad_files(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    char path[PATH_MAX], want[PATH_MAX + 256];
    struct errors e;
    size_t i, j, n;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];

        print_message("case: %s\n", c->file);
        data_path(path, sizeof(path), c->file);
        assert_int_equal(load(c->file, cfg, &e), -1);
        for (n = 0; n < ARRAY_LEN(c->want) && c->want[n] != NULL; n++)
            continue;
        for (j = 0; j < e.n; j++)
            print_message("  got: %s\n", e.msg[j]);
        assert_int_equal(e.n, n);
        for (j = 0; j < n; j++) {
            assert_int_equal(str_printf(want, sizeof(want), "%s%s", path, c->want[j]), 0);
            assert_string_equal(e.msg[j], want);
        }
    }
    x_free(cfg);
}

/* expect_one - loading path fails with exactly "path" + tail */
static void
expect_one(const char *path, const char *tail)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    char want[PATH_MAX + 256];
    struct errors e = { 0 };

    assert_int_equal(config_load(path, cfg, collect, &e), -1);
    assert_int_equal(e.n, 1);
    assert_int_equal(str_printf(want, sizeof(want), "%s%s", path, tail), 0);
    assert_string_equal(e.msg[0], want);
    x_free(cfg);
}

static void
test_file_errors(void **state)
{
    char dir[PATH_MAX], path[64] = "/tmp/test_config.XXXXXX";
    int fd;

    (void)state;
    expect_one("/nonexistent/autoturn.conf", ": cannot open: No such file or directory");
    expect_one("/etc/passwd/autoturn.conf", ": cannot open: Not a directory");
    data_path(dir, sizeof(dir), "");
    expect_one(dir, ": not a regular file");
    /* a NUL byte on line 3 */
    assert_true((fd = mkstemp(path)) >= 0);
    assert_int_equal(fd_write_all(fd, "log {\n}\nmilter { \0 }\n", 21), 0);
    close(fd);
    expect_one(path, ":3: NUL byte in file");
    /* more than 1 MiB */
    assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
    assert_int_equal(ftruncate(fd, 1024 * 1024 + 1), 0);
    close(fd);
    expect_one(path, ": file too large (more than 1048576 bytes)");
    unlink(path);
}

static void
test_null_errfn_logs(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    char path[PATH_MAX], buf[1024] = "", want[PATH_MAX + 128];
    int saved = dup(STDERR_FILENO), fds[2];
    ssize_t n;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    log_init("test_config", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    data_path(path, sizeof(path), "bad_size.conf");
    assert_int_equal(config_load(path, cfg, NULL, NULL), -1);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    n = read(fds[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    close(fds[0]);
    assert_int_equal(str_printf(want, sizeof(want),
                                "]: error: %s:3: bad size '10X' for 'max_line': unknown unit "
                                "(use k, m, g or t)\n", path), 0);
    assert_non_null(strstr(buf, want));
    x_free(cfg);
}

static void
test_apply_logging(void **state)
{
    struct config *cfg = x_calloc(1, sizeof(*cfg));
    struct errors e;

    (void)state;
    assert_int_equal(load("full.conf", cfg, &e), 0);
    config_apply_logging(cfg, "autoturn-test");   /* stderr, level debug */
    log_debug("visible at level debug");
    config_defaults(cfg);
    cfg->log_dest = LOG_DEST_STDERR;
    config_apply_logging(cfg, "autoturn-test");
    x_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_example_uncommented),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_null_errfn_logs),
        cmocka_unit_test(test_apply_logging),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
