/* SPDX-License-Identifier: ISC */
/*
 * test_smtpc.c - the flusher's SMTP client against real peers: smtp-sink
 * (byte-exact delivery of many messages over one connection, 450/452 at
 * RCPT, 5xx after the final dot, 421, a drop after the dot, no
 * PIPELINING, HELO fallback, missing 8BITMIME/SMTPUTF8/STARTTLS) and a
 * private Postfix with a self-signed certificate (STARTTLS may/encrypt,
 * verification, SIZE). Malformed replies come from a forked fake server
 * that writes canned bytes: a FAKE that injects faults no real peer
 * produces (no code, garbage code, mismatched codes, endless
 * continuation, a 1 MB line, silence).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "smtpc.h"
#include "spool.h"
#include "util.h"

#define CUST "acme"
#define BIG_SIZE (5u << 20)

static pid_t started[32];       /* peers we started: killed at teardown */
static size_t nstarted;
static char root[64];          /* temp dir: spool/, sink dumps, postfix */
static struct spool *sp;

/* --- helpers --- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static unsigned
free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static struct sockaddr_in
loopback(unsigned port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void
wait_port(unsigned port)
{
    struct sockaddr_in a = loopback(port);
    int i, fd, rc;

    for (i = 0; i < 200; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return;
        usleep(25000);
    }
    fail_msg("port %u never opened", port);
}

/* sink_start - smtp-sink on 127.0.0.1:port dumping into dir, plus args. */
static pid_t
sink_start(unsigned *port_r, const char *dir, const char *const *extra)
{
    const char *argv[24] = { "smtp-sink", "-u", "nobody", "-d" };
    char tmpl[256], addr[32];
    size_t n = 4;
    pid_t pid;

    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(str_printf(tmpl, sizeof(tmpl), "%s/%%H%%M%%S.", dir), 0);
    *port_r = free_port();
    assert_int_equal(str_printf(addr, sizeof(addr), "127.0.0.1:%u", *port_r), 0);
    argv[n++] = tmpl;
    for (; extra != NULL && *extra != NULL; extra++)
        argv[n++] = *extra;
    argv[n++] = addr;
    argv[n++] = "16";
    argv[n] = NULL;
    assert_true((pid = fork()) >= 0);
    if (pid == 0) {
        execv("/usr/sbin/smtp-sink", (char *const *)argv);
        _exit(127);
    }
    started[nstarted++] = pid;
    wait_port(*port_r);
    return pid;
}

static void
stop(pid_t pid)
{
    size_t i;
    int st;

    for (i = 0; i < nstarted; i++)
        if (started[i] == pid)
            started[i] = started[--nstarted];
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static struct smtpc_opts
opts_default(void)
{
    struct smtpc_opts o = { .connect_timeout = 5, .greeting_timeout = 5, .command_timeout = 5,
                            .data_timeout = 10, .helo_name = "flusher.test", .tls = TLS_NONE };
    return o;
}

static struct smtpc *
open_ok(unsigned port, const struct smtpc_opts *o)
{
    struct sockaddr_in a = loopback(port);
    struct smtpc *c = NULL;
    struct smtpc_reply r;
    struct errbuf err = { "" };
    char host[64];

    assert_int_equal(str_printf(host, sizeof(host), "127.0.0.1:%u", port), 0);
    if (smtpc_open((struct sockaddr *)&a, sizeof(a), host, o, &c, &r, &err) != 0)
        fail_msg("smtpc_open: %s", err.msg);
    return c;
}

/* open_fail - smtpc_open must fail with exactly want (%u = port). */
static void
open_fail(unsigned port, const char *hostname, const struct smtpc_opts *o, const char *want_fmt)
{
    struct sockaddr_in a = loopback(port);
    struct smtpc *c = NULL;
    struct smtpc_reply r;
    struct errbuf err = { "" };
    char host[128], want[ERRBUF_SIZE];

    if (hostname[0] == '\0')
        assert_int_equal(str_printf(host, sizeof(host), "127.0.0.1:%u", port), 0);
    else
        assert_int_equal(str_printf(host, sizeof(host), "%s[127.0.0.1]:%u", hostname, port), 0);
    assert_int_equal(smtpc_open((struct sockaddr *)&a, sizeof(a), host, o, &c, &r, &err), -1);
    assert_null(c);
    assert_int_equal(str_printf(want, sizeof(want), want_fmt, host), 0);
    assert_string_equal(err.msg, want);
}

/* put_msg - store a message with the given sender params and recipients. */
static void
put_msg(const char *mparams, const char *const *rcpts, const char *body, size_t len,
        char id[SPOOL_ID_MAX])
{
    struct envelope e;
    struct spool_writer *w;
    struct errbuf err;

    envelope_init(&e);
    assert_int_equal(str_copy(e.customer, sizeof(e.customer), CUST), 0);
    e.arrival = 1763700000;
    assert_int_equal(envelope_set_sender(&e, "s@example.org", mparams, &err), 0);
    for (; *rcpts != NULL; rcpts++)
        assert_int_equal(envelope_add_rcpt(&e, *rcpts, "NOTIFY=FAILURE", &err), 0);
    if (spool_writer_open(sp, &e, &w, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(spool_writer_write(w, body, len, &err), 0);
    assert_int_equal(spool_writer_commit(w, id, &err), 0);
    envelope_clear(&e);
}

static const char *const one_rcpt[] = { "r@example.net", NULL };

/* send_one - store body, send it over c; returns smtpc_send's value. */
static int
send_one(struct smtpc *c, const char *mparams, const char *const *rcpts, const char *body,
         struct smtpc_result *res, struct errbuf *err)
{
    char id[SPOOL_ID_MAX];
    struct spool_msg *m;
    int rc;

    put_msg(mparams, rcpts, body, strlen(body), id);
    assert_int_equal(spool_msg_open(sp, CUST, id, &m, err), 0);
    rc = smtpc_send(c, m, res, err);
    spool_msg_close(m);
    return rc;
}

static char *
read_file(const char *path, size_t *len_r)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    rewind(fp);
    assert_non_null(buf = malloc((size_t)n + 1));
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len_r = (size_t)n;
    return buf;
}

static int
global_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(str_copy(root, sizeof(root), "/tmp/test_smtpc.XXXXXX"), 0);
    assert_non_null(mkdtemp(root));
    assert_int_equal(chmod(root, 0755), 0);
    assert_non_null(sp = spool_new(root));
    return 0;
}

static int
global_teardown(void **state)
{
    (void)state;
    while (nstarted > 0)
        stop(started[nstarted - 1]);
    spool_free(sp);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* --- byte-exact delivery --- */

struct body {
    const char *label;
    char *data;
    size_t len;
    const char *params;
};

/* make_bodies - the bodies that must arrive unchanged. */
static size_t
make_bodies(struct body *b)
{
    static const char dots[] = "X-Test: dots\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading\r\n"
                               "middle.\r\n. \r\n";
    static const char eight[] = "X-Test: 8bit\r\nSubject: caf\xc3\xa9\r\n\r\n\xe9t\xe9 \xff\r\n";
    static const char nocrlf[] = "X-Test: nocrlf\r\n\r\nlast line without CRLF";
    size_t i;

    b[0] = (struct body){ "dots", strdup(dots), sizeof(dots) - 1, "" };
    b[1] = (struct body){ "8bit", strdup(eight), sizeof(eight) - 1, "BODY=8BITMIME" };
    b[2].label = "long line";
    b[2].data = malloc(10100);
    memcpy(b[2].data, "X-Test: long\r\n\r\n", 16);
    memset(b[2].data + 16, 'L', 10000);
    memcpy(b[2].data + 10016, "\r\n", 2);
    b[2].len = 10018;
    b[2].params = "";
    b[3].label = "5 MB";
    b[3].data = malloc(BIG_SIZE);
    memcpy(b[3].data, "X-Test: big\r\n\r\n", 15);
    for (i = 15; i + 80 <= BIG_SIZE; i += 80) {
        memset(b[3].data + i, (int)('a' + (i / 80) % 26), 78);
        if ((i / 80) % 7 == 0)
            b[3].data[i] = '.';
        memcpy(b[3].data + i + 78, "\r\n", 2);
    }
    b[3].len = i;
    b[3].params = "";
    b[4] = (struct body){ "no final CRLF", strdup(nocrlf), sizeof(nocrlf) - 1, "" };
    return 5;
}

/* expected_dump - what smtp-sink writes for body: CRLF -> LF (a final
 * CRLF added by us when missing), then one empty line. */
static char *
expected_dump(const struct body *b, size_t *len_r)
{
    char *out = malloc(b->len + 4);
    size_t i, n = 0;

    for (i = 0; i < b->len; i++) {
        if (b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n')
            continue;
        out[n++] = b->data[i];
    }
    if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
        out[n++] = '\n';
    out[n++] = '\n';
    *len_r = n;
    return out;
}

/* dump_body - the message part of a dump: after the 3-line Received: header. */
static const char *
dump_body(const char *dump)
{
    const char *p = strstr(dump, "\nReceived: ");

    assert_non_null(p);
    p = strchr(p + 1, '\n');
    p = strchr(p + 1, '\n');
    p = strchr(p + 1, '\n');
    assert_non_null(p);
    return p + 1;
}

static void
check_dumps(const char *dir, const struct body *b, size_t nb)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512], tag[64], *dump, *want;
    size_t n = 0, len, wlen, i;
    const char *body;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        assert_int_equal(path_join(path, sizeof(path), dir, de->d_name), 0);
        dump = read_file(path, &len);
        body = dump_body(dump);
        for (i = 0; i < nb; i++) {
            assert_int_equal(str_printf(tag, sizeof(tag), "X-Test: %.20s\n", b[i].data + 8), 0);
            *strchr(tag, '\r') = '\n';
            *(strchr(tag, '\n') + 1) = '\0';
            if (strncmp(body, tag, strlen(tag)) == 0)
                break;
        }
        if (i == nb)
            fail_msg("unexpected dump %s", path);
        want = expected_dump(&b[i], &wlen);
        assert_int_equal(len - (size_t)(body - dump), wlen);
        if (memcmp(body, want, wlen) != 0)
            fail_msg("%s: bytes differ", b[i].label);
        free(want);
        free(dump);
        n++;
    }
    closedir(d);
    assert_int_equal(n, nb);
}

static void
test_sink_byte_exact(void **state)
{
    struct body b[8];
    size_t nb = make_bodies(b), i;
    char dir[128], id[SPOOL_ID_MAX];
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct spool_msg *m;
    struct smtpc *c;
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "exact"), 0);
    pid = sink_start(&port, dir, NULL);
    c = open_ok(port, &o);
    assert_true(smtpc_extensions(c)->esmtp);
    assert_true(smtpc_extensions(c)->pipelining);
    assert_true(smtpc_extensions(c)->eightbitmime);
    assert_true(smtpc_extensions(c)->dsn);
    assert_false(smtpc_extensions(c)->starttls);
    assert_false(smtpc_extensions(c)->tls_active);
    for (i = 0; i < nb; i++) {
        put_msg(b[i].params, one_rcpt, b[i].data, b[i].len, id);
        assert_int_equal(spool_msg_open(sp, CUST, id, &m, &err), 0);
        if (smtpc_send(c, m, &res, &err) != 0)
            fail_msg("%s: %s", b[i].label, err.msg);
        assert_int_equal(res.status, SMTPC_SENT);
        assert_int_equal(res.mail.code, 250);
        assert_int_equal(res.nrcpt, 1);
        assert_int_equal(res.rcpt[0].code, 250);
        assert_int_equal(res.data.code, 250);
        assert_string_equal(res.data.text, "250 2.0.0 Ok");
        smtpc_result_clear(&res);
        spool_msg_close(m);
    }
    smtpc_close(c);
    stop(pid);
    check_dumps(dir, b, nb);
    for (i = 0; i < nb; i++)
        free(b[i].data);
}

/* --- faults of a real peer (smtp-sink options) --- */

struct fault_case {
    const char *label;
    const char *args[6];
    enum smtpc_status want_status;
    int want_mail, want_rcpt, want_data;
    const char *want_text;       /* of the failing reply */
};

static const struct fault_case fault_cases[] = {
    { "450 at RCPT", { "-r", "rcpt" }, SMTPC_REJECTED, 250, 450, 0,
      "450 4.3.0 Error: command failed" },
    { "custom 452", { "-b", "452 4.2.2 full", "-r", "rcpt" }, SMTPC_REJECTED, 250, 452, 0,
      "452 4.2.2 full" },
    { "5xx after the dot", { "-f", "." }, SMTPC_REJECTED, 250, 250, 500,
      "500 5.3.0 Error: command failed" },
    { "4xx at DATA", { "-r", "data" }, SMTPC_REJECTED, 250, 250, 450,
      "450 4.3.0 Error: command failed" },
    { "no PIPELINING", { "-p" }, SMTPC_SENT, 250, 250, 250, "250 2.0.0 Ok" },
    { "HELO fallback", { "-e" }, SMTPC_SENT, 250, 250, 250, "250 2.0.0 Ok" },
};

static const char *
failing_text(const struct smtpc_result *res)
{
    if (res->data.code != 0)
        return res->data.text;
    if (res->rcpt[0].code != 250 && res->rcpt[0].code != 0)
        return res->rcpt[0].text;
    return res->mail.text;
}

static void
test_sink_faults(void **state)
{
    const struct fault_case *t;
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char dir[128], label[64];
    unsigned port;
    pid_t pid;
    size_t k;

    (void)state;
    for (k = 0; k < ARRAY_LEN(fault_cases); k++) {
        t = &fault_cases[k];
        assert_int_equal(str_printf(label, sizeof(label), "fault%zu", k), 0);
        assert_int_equal(path_join(dir, sizeof(dir), root, label), 0);
        pid = sink_start(&port, dir, t->args);
        c = open_ok(port, &o);
        if (send_one(c, "BODY=7BIT", one_rcpt, "Subject: f\r\n\r\nbody\r\n", &res, &err) != 0)
            fail_msg("%s: %s", t->label, err.msg);
        if (res.status != t->want_status || res.mail.code != t->want_mail
            || res.rcpt[0].code != t->want_rcpt || res.data.code != t->want_data)
            fail_msg("%s: status %d mail %d rcpt %d data %d", t->label, res.status,
                     res.mail.code, res.rcpt[0].code, res.data.code);
        assert_string_equal(failing_text(&res), t->want_text);
        if (strcmp(t->label, "HELO fallback") == 0)
            assert_false(smtpc_extensions(c)->esmtp);
        if (strcmp(t->label, "no PIPELINING") == 0)
            assert_false(smtpc_extensions(c)->pipelining);
        smtpc_result_clear(&res);
        if (t->want_status == SMTPC_REJECTED)
            assert_int_equal(smtpc_rset(c, &err), 0);
        smtpc_close(c);
        stop(pid);
    }
}

static void
test_sink_partial_rcpt(void **state)
{
    static const char *const rcpts[] = { "a@example.net", "b@example.net", NULL };
    const char *args[] = { "-f", "rcpt", NULL };   /* every RCPT 5xx, lock-step */
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char dir[128];
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "allrcpt"), 0);
    pid = sink_start(&port, dir, args);
    c = open_ok(port, &o);
    assert_int_equal(send_one(c, "", rcpts, "Subject: x\r\n\r\nx\r\n", &res, &err), 0);
    assert_int_equal(res.status, SMTPC_REJECTED);
    assert_int_equal(res.nrcpt, 2);
    assert_int_equal(res.rcpt[0].code, 500);
    assert_int_equal(res.rcpt[1].code, 500);
    assert_int_equal(res.data.code, 0);     /* no DATA without a recipient */
    smtpc_result_clear(&res);
    assert_int_equal(smtpc_rset(c, &err), 0);
    smtpc_close(c);
    stop(pid);
}

static void
test_sink_421(void **state)
{
    const char *args[] = { "-Q", "mail", NULL };
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char dir[128], want[128];
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "421"), 0);
    pid = sink_start(&port, dir, args);
    c = open_ok(port, &o);
    assert_int_equal(send_one(c, "", one_rcpt, "Subject: x\r\n\r\nx\r\n", &res, &err), -1);
    assert_int_equal(res.mail.code, 421);
    assert_int_equal(str_printf(want, sizeof(want), "127.0.0.1:%u closed the session: %s", port,
                                res.mail.text), 0);
    assert_string_equal(err.msg, want);
    assert_int_equal(strncmp(res.mail.text, "421 ", 4), 0);
    smtpc_result_clear(&res);
    smtpc_close(c);
    stop(pid);
}

static void
test_sink_drop_after_dot(void **state)
{
    const char *args[] = { "-q", ".", NULL };
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char dir[128], want[128];
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "drop"), 0);
    pid = sink_start(&port, dir, args);
    c = open_ok(port, &o);
    assert_int_equal(send_one(c, "", one_rcpt, "Subject: x\r\n\r\nx\r\n", &res, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want), "connection closed by 127.0.0.1:%u", port), 0);
    assert_string_equal(err.msg, want);
    smtpc_result_clear(&res);
    /* the connection stays unusable */
    assert_int_equal(smtpc_rset(c, &err), -1);
    assert_int_equal(str_printf(want, sizeof(want),
                                "connection to 127.0.0.1:%u unusable after an earlier error", port), 0);
    assert_string_equal(err.msg, want);
    smtpc_close(c);
    stop(pid);
}

/* missing extensions: nothing is sent, the message is not changed */
static void
test_sink_missing_extensions(void **state)
{
    static const char *const utf8_rcpt[] = { "j\xc3\xb6rg@example.net", NULL };
    const char *args[] = { "-8", NULL };
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char dir[128];
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "no8bit"), 0);
    pid = sink_start(&port, dir, args);
    c = open_ok(port, &o);
    assert_false(smtpc_extensions(c)->eightbitmime);
    assert_false(smtpc_extensions(c)->smtputf8);
    assert_int_equal(send_one(c, "BODY=8BITMIME", one_rcpt, "S: x\r\n\r\n\xe9t\xe9\r\n", &res,
                              &err), 0);
    assert_int_equal(res.status, SMTPC_NEEDS_8BITMIME);
    assert_int_equal(res.mail.code, 0);
    smtpc_result_clear(&res);
    /* SMTPUTF8 asked for, UTF-8 in the header: needed */
    assert_int_equal(send_one(c, "SMTPUTF8", one_rcpt, "S: \xc3\xa9t\xc3\xa9\r\n\r\nx\r\n",
                              &res, &err), 0);
    assert_int_equal(res.status, SMTPC_NEEDS_SMTPUTF8);
    assert_int_equal(res.mail.code, 0);
    smtpc_result_clear(&res);
    /* SMTPUTF8 asked for, ASCII envelope and header: sent without it */
    assert_int_equal(send_one(c, "SMTPUTF8", one_rcpt, "S: x\r\n\r\nx\r\n", &res, &err), 0);
    assert_int_equal(res.status, SMTPC_SENT);
    smtpc_result_clear(&res);
    assert_int_equal(send_one(c, "", utf8_rcpt, "S: x\r\n\r\nx\r\n", &res, &err), 0);
    assert_int_equal(res.status, SMTPC_NEEDS_SMTPUTF8);
    smtpc_result_clear(&res);
    /* declared 8BITMIME but 7-bit content: sent (without BODY=) */
    assert_int_equal(send_one(c, "BODY=8BITMIME", one_rcpt, "S: x\r\n\r\nplain\r\n", &res,
                              &err), 0);
    assert_int_equal(res.status, SMTPC_SENT);
    smtpc_result_clear(&res);
    smtpc_close(c);
    stop(pid);
}

static void
test_sink_tls_policy(void **state)
{
    struct smtpc_opts o = opts_default();
    struct smtpc *c;
    char dir[128];
    unsigned port;
    pid_t pid;

    (void)state;
    assert_int_equal(path_join(dir, sizeof(dir), root, "notls"), 0);
    pid = sink_start(&port, dir, NULL);
    o.tls = TLS_ENCRYPT;
    open_fail(port, "", &o, "TLS required but not offered by %s");
    o.tls = TLS_MAY;
    c = open_ok(port, &o);
    assert_false(smtpc_extensions(c)->tls_active);
    smtpc_close(c);
    stop(pid);
}

/* --- a FAKE server for faults no real peer produces --- */

/* fake_start - accept one connection, write bytes (NULL: hang up at
 * once), then read until the client goes. */
static pid_t
fake_start(unsigned *port_r, const char *bytes, size_t len)
{
    struct sockaddr_in a;
    int lfd, fd, one = 1;
    char buf[512];
    pid_t pid;

    *port_r = free_port();
    a = loopback(*port_r);
    assert_true((lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_true((pid = fork()) >= 0);
    if (pid == 0) {
        if ((fd = accept(lfd, NULL, NULL)) < 0)
            _exit(1);
        if (bytes == NULL)
            _exit(0);
        (void)fd_write_all(fd, bytes, len);
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        _exit(0);
    }
    close(lfd);
    started[nstarted++] = pid;
    return pid;
}

static void
test_fake_malformed(void **state)
{
    static const struct {
        const char *label, *bytes, *want;
    } cases[] = {
        { "no code", "hello there\r\n", "malformed reply from %s: no reply code in \"hello there\"" },
        { "99x garbage", "99x garbage\r\n", "malformed reply from %s: no reply code in \"99x garbage\"" },
        { "code out of range", "620 nope\r\n", "malformed reply from %s: no reply code in \"620 nope\"" },
        { "mismatched codes", "220-a\r\n250 b\r\n", "malformed reply from %s: code 250 after 220" },
        { "control bytes", "22\x01 x\r\n", "malformed reply from %s: no reply code in \"22? x\"" },
        { "not ready", "554 5.3.2 go away\r\n", "unexpected greeting from %s: 554 5.3.2 go away" },
        { "bare codes", "220-a\r\n220\r\n5\r\n", "malformed reply from %s: no reply code in \"5\"" },
        { "EHLO 421", "220 hi\r\n421 4.3.2 bye\r\n", "EHLO refused by %s: 421 4.3.2 bye" },
        { "silence", "", "timeout reading from %s" },
        { "closed", NULL, "connection closed by %s" },
    };
    struct smtpc_opts o = opts_default();
    unsigned port;
    size_t k;
    pid_t pid;

    (void)state;
    o.greeting_timeout = 1;
    for (k = 0; k < ARRAY_LEN(cases); k++) {
        const char *b = cases[k].bytes;

        pid = fake_start(&port, b, b != NULL ? strlen(b) : 0);
        open_fail(port, "", &o, cases[k].want);
        stop(pid);
    }
}

static void
test_fake_huge(void **state)
{
    size_t n = 1u << 20, i;
    char *b = malloc(n + 16);
    struct smtpc_opts o = opts_default();
    unsigned port;
    pid_t pid;

    (void)state;
    /* a 1 MB line */
    memcpy(b, "220 ", 4);
    memset(b + 4, 'x', n);
    memcpy(b + 4 + n, "\r\n", 2);
    pid = fake_start(&port, b, n + 6);
    open_fail(port, "", &o, "malformed reply from %s: line longer than 4096 bytes");
    stop(pid);
    /* endless continuation lines */
    for (i = 0; i + 7 <= n; i += 7)
        memcpy(b + i, "220-x\r\n", 7);
    pid = fake_start(&port, b, i);
    open_fail(port, "", &o, "malformed reply from %s: more than 100 lines");
    stop(pid);
    free(b);
}

/* --- a private Postfix with TLS and SIZE as the customer's server --- */

static unsigned pf_port;
static char pf_dir[128], pf_cert[160];

static int
pf_setup(void **state)
{
    char cmd[4096];

    (void)state;
    if (path_join(pf_dir, sizeof(pf_dir), root, "pf") < 0
        || str_printf(pf_cert, sizeof(pf_cert), "%s/cert.pem", pf_dir) < 0)
        return -1;
    pf_port = free_port();
    if (str_printf(cmd, sizeof(cmd),
                   "set -e; . %s/tests/integration/lib/postfix.sh; d=%s; "
                   "pf_new $d %u; "
                   "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
                   "-addext subjectAltName=DNS:localhost -days 2 "
                   "-keyout $d/key.pem -out $d/cert.pem 2>/dev/null; "
                   "pf_set $d smtpd_tls_cert_file=$d/cert.pem smtpd_tls_key_file=$d/key.pem "
                   "smtpd_tls_security_level=may message_size_limit=200000 "
                   "default_transport=discard relay_transport=discard; "
                   "pf_start $d >/dev/null 2>&1",
                   getenv("SRCDIR") != NULL ? getenv("SRCDIR") : "..", pf_dir, pf_port) < 0)
        return -1;
    if (system(cmd) != 0)
        return -1;
    wait_port(pf_port);
    return 0;
}

static int
pf_teardown(void **state)
{
    char cmd[512];

    (void)state;
    if (str_printf(cmd, sizeof(cmd), "postfix -c %s/conf stop >/dev/null 2>&1; sleep 0.5",
                   pf_dir) == 0)
        (void)system(cmd);
    return 0;
}

static void
pf_starttls(void)
{
    enum tls_policy pol[] = { TLS_MAY, TLS_ENCRYPT };
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    size_t k;

        for (k = 0; k < ARRAY_LEN(pol); k++) {
        o.tls = pol[k];
        c = open_ok(pf_port, &o);
        assert_true(smtpc_extensions(c)->tls_active);
        assert_false(smtpc_extensions(c)->starttls);   /* re-read after TLS */
        assert_true(smtpc_extensions(c)->esmtp);
        if (send_one(c, "", one_rcpt, "Subject: tls\r\n\r\nover TLS\r\n", &res, &err) != 0)
            fail_msg("%s", err.msg);
        assert_int_equal(res.status, SMTPC_SENT);
        assert_int_equal(res.data.code, 250);
        smtpc_result_clear(&res);
        smtpc_close(c);
    }
    /* TLS_NONE: no STARTTLS although offered */
    o.tls = TLS_NONE;
    c = open_ok(pf_port, &o);
    assert_false(smtpc_extensions(c)->tls_active);
    assert_true(smtpc_extensions(c)->starttls);
    smtpc_close(c);
}

static void
pf_verify(void)
{
    struct smtpc_opts o = opts_default();
    struct sockaddr_in a = loopback(pf_port);
    struct smtpc_reply r;
    struct errbuf err;
    struct smtpc *c = NULL;
    char host[64];

        o.tls = TLS_ENCRYPT;
    o.tls_ca_file = pf_cert;
    assert_int_equal(str_printf(host, sizeof(host), "localhost[127.0.0.1]:%u", pf_port), 0);
    if (smtpc_open((struct sockaddr *)&a, sizeof(a), host, &o, &c, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(smtpc_extensions(c)->tls_active);
    smtpc_close(c);
    open_fail(pf_port, "wrong.example", &o,
              "TLS handshake with %s failed: hostname mismatch");
    o.tls_ca_file = "/nonexistent/ca.pem";
    open_fail(pf_port, "localhost", &o, "cannot load TLS CA file /nonexistent/ca.pem");
}

static void
pf_size(void)
{
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char *big = malloc(300001);

        c = open_ok(pf_port, &o);
    assert_true(smtpc_extensions(c)->size);
    assert_int_equal(smtpc_extensions(c)->size_max, 200000);
    memset(big, 'b', 300000);
    memcpy(big, "Subject: big\r\n\r\n", 16);
    big[299998] = '\r';
    big[299999] = '\n';
    big[300000] = '\0';
    assert_int_equal(send_one(c, "", one_rcpt, big, &res, &err), 0);
    assert_int_equal(res.status, SMTPC_TOO_BIG);
    assert_int_equal(res.mail.code, 0);                /* nothing was sent */
    smtpc_result_clear(&res);
    assert_int_equal(send_one(c, "", one_rcpt, "Subject: small\r\n\r\nsmall\r\n", &res, &err), 0);
    assert_int_equal(res.status, SMTPC_SENT);
    smtpc_result_clear(&res);
    smtpc_close(c);
    free(big);
}

/* BDAT: with its envelope (small), after the envelope replies (larger
 * than SMTPC_BDAT_EARLY_MAX), a body without a final CRLF (counted with
 * the CRLF added), a trace header; and DATA when chunking is off */
static void
pf_chunking(void)
{
    static const char *const sizes[] = { "small", "large", "nocrlf" };
    struct smtpc_opts o = opts_default();
    struct smtpc_result res;
    struct errbuf err;
    struct smtpc *c;
    char *body = malloc(150001);
    size_t k;

    assert_non_null(body);
    o.chunking = true;
    c = open_ok(pf_port, &o);
    assert_true(smtpc_extensions(c)->chunking);
    for (k = 0; k < ARRAY_LEN(sizes); k++) {
        if (k == 1) {
            memset(body, 'l', 150000);
            memcpy(body, "Subject: large\r\n\r\n", 18);
            memcpy(body + 149998, "\r\n", 2);
            body[150000] = '\0';
        } else
            (void)str_printf(body, 150001, "Subject: %s\r\n\r\n.dot\r\nend%s", sizes[k],
                             k == 2 ? "" : "\r\n");
        if (send_one(c, "", one_rcpt, body, &res, &err) != 0)
            fail_msg("%s: %s", sizes[k], err.msg);
        assert_int_equal(res.status, SMTPC_SENT);
        assert_true(res.bdat);
        assert_int_equal(res.data.code, 250);
        smtpc_result_clear(&res);
    }
    smtpc_close(c);
    o.chunking = false;
    c = open_ok(pf_port, &o);
    assert_int_equal(send_one(c, "", one_rcpt, "Subject: data\r\n\r\nx\r\n", &res, &err), 0);
    assert_int_equal(res.status, SMTPC_SENT);
    assert_false(res.bdat);
    smtpc_result_clear(&res);
    smtpc_close(c);
    free(body);
}

/* one private Postfix for the STARTTLS, verification, SIZE and CHUNKING cases */
static void
test_postfix(void **state)
{
    (void)state;
    pf_starttls();
    pf_verify();
    pf_size();
    pf_chunking();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_byte_exact),
        cmocka_unit_test(test_sink_faults),
        cmocka_unit_test(test_sink_partial_rcpt),
        cmocka_unit_test(test_sink_421),
        cmocka_unit_test(test_sink_drop_after_dot),
        cmocka_unit_test(test_sink_missing_extensions),
        cmocka_unit_test(test_sink_tls_policy),
        cmocka_unit_test(test_fake_malformed),
        cmocka_unit_test(test_fake_huge),
        cmocka_unit_test_setup_teardown(test_postfix, pf_setup, pf_teardown),
    };

    return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
