/* SPDX-License-Identifier: ISC */
/*
 * test_milter.c - unit tests of the milter's MTA-independent parts:
 * recipient address parsing (rcptaddr.c) and the all-or-none diversion
 * of one message into several customers' spools (hold.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "milter.h"
#include "util.h"

static const struct {
    const char *arg;
    int found;
    const char *domain;
} domain_cases[] = {
    {"<a@virt.dom>", 1, "virt.dom"},
    {"a@Virt.Dom", 1, "Virt.Dom"},
    {"<>", 0, ""},
    {"<postmaster>", 0, ""},
    {"<a@>", 0, ""},
    {"<\"a@b\"@virt.dom>", 1, "virt.dom"},
    {"<\"john doe\"@virt.dom>", 1, "virt.dom"},
    {"<\"x\\\"@y\"@virt.dom>", 1, "virt.dom"},
    {"<@relay.example,@r2.example:u@virt.dom>", 1, "virt.dom"},
    {"<u@[192.0.2.1]>", 1, "[192.0.2.1]"},
    {"<\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example>", 1, "\xc3\xa9" "cole.example"},
};

static void
test_rcptaddr_domain(void **state)
{
    char dom[DOMAIN_MAX + 1];
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(domain_cases); i++) {
        int rc = rcptaddr_domain(domain_cases[i].arg, dom, sizeof(dom));

        print_message("case %zu: %s\n", i, domain_cases[i].arg);
        assert_int_equal(rc, domain_cases[i].found);
        assert_string_equal(dom, domain_cases[i].domain);
    }
}

static void
test_rcptaddr_domain_too_long(void **state)
{
    char arg[400], dom[DOMAIN_MAX + 1];

    (void)state;
    memset(arg, 'a', sizeof(arg) - 1);
    arg[sizeof(arg) - 1] = '\0';
    arg[10] = '@';                    /* a 388-byte domain can never be held */
    assert_int_equal(rcptaddr_domain(arg, dom, sizeof(dom)), 0);
}

static void
test_rcptaddr_mailbox(void **state)
{
    char addr[ENVELOPE_ADDR_MAX + 1], big[1200];
    const char *why = NULL;

    (void)state;
    assert_int_equal(rcptaddr_mailbox("<@r.example:u@virt.dom>", addr, sizeof(addr), &why), 0);
    assert_string_equal(addr, "u@virt.dom");
    assert_int_equal(rcptaddr_mailbox("<>", addr, sizeof(addr), &why), 0);
    assert_string_equal(addr, "");
    assert_int_equal(rcptaddr_mailbox("<a\tb@virt.dom>", addr, sizeof(addr), &why), -1);
    assert_string_equal(why, "control character in address");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[1] = '@';
    assert_int_equal(rcptaddr_mailbox(big, addr, sizeof(addr), &why), -1);
    assert_string_equal(why, "address too long");
}

static void
test_rcptaddr_params(void **state)
{
    static const char *const keep[] = {"NOTIFY", "ORCPT", NULL};
    char *argv[] = {"<a@b>", "NOTIFY=SUCCESS,FAILURE", "XFOO=1", "orcpt=rfc822;a@b", NULL};
    char buf[64], tiny[8];

    (void)state;
    assert_int_equal(rcptaddr_params(argv, keep, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "NOTIFY=SUCCESS,FAILURE orcpt=rfc822;a@b");
    assert_int_equal(rcptaddr_params(argv, keep, tiny, sizeof(tiny)), -1);
}

/* --- hold: all or none across customers --- */

struct fixture {
    char root[64];
    struct spool *sp;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    str_copy(f->root, sizeof(f->root), "/tmp/test_milter.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    f->sp = spool_new(f->root);
    assert_non_null(f->sp);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    spool_free(f->sp);
    assert_int_equal(str_printf(cmd, sizeof(cmd), "rm -rf '%s'", f->root), 0);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static size_t
count_files(const char *root, const char *customer, const char *sub)
{
    char cmd[256], out[32] = "";
    FILE *p;

    assert_int_equal(str_printf(cmd, sizeof(cmd), "find '%s/%s/%s' -type f 2>/dev/null | wc -l",
                                root, customer, sub), 0);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    return (size_t)strtoul(out, NULL, 10);
}

static struct hold *
two_customers(struct fixture *f)
{
    static const char msg[] = "Subject: t\r\n\r\nbody\r\n";
    struct errbuf err;
    struct hold *h = hold_new();

    assert_non_null(h);
    assert_int_equal(hold_add(h, "acme", "a@virt.dom", "", "<a@virt.dom>", &err), 0);
    assert_int_equal(hold_add(h, "beta", "b@beta.example", "NOTIFY=NEVER", "<b@beta.example>",
                              &err), 0);
    assert_int_equal(hold_add(h, "acme", "c@virt.dom", "", "<c@virt.dom>", &err), 0);
    assert_int_equal(hold_count(h), 3);
    assert_int_equal(hold_ncustomers(h), 2);
    assert_int_equal(hold_open(h, f->sp, "s@example.org", "BODY=8BITMIME", "4QID",
                               &(struct hold_client){"192.0.2.7", "mail.example.org",
                                                     "helo (x)\x01"}, &err), 0);
    assert_int_equal(hold_write(h, msg, sizeof(msg) - 1, &err), 0);
    return h;
}

static void
test_hold_commit_all(void **state)
{
    struct fixture *f = *state;
    struct hold_info info;
    struct errbuf err;
    struct hold *h = two_customers(f);

    assert_int_equal(hold_commit(h, f->sp, &err), 0);
    hold_info(h, 0, &info);
    assert_string_equal(info.customer, "acme");
    assert_int_equal(info.nrcpt, 2);
    hold_info(h, 1, &info);
    assert_string_equal(info.customer, "beta");
    assert_int_equal(info.nrcpt, 1);
    assert_int_equal(count_files(f->root, "acme", "new"), 1);
    assert_int_equal(count_files(f->root, "beta", "new"), 1);
    assert_int_equal(count_files(f->root, "acme", "tmp"), 0);
    /* the client is in the envelope, the HELO argument made safe */
    {
        struct spool_msg *m;
        const struct envelope *e;

        hold_info(h, 0, &info);
        assert_int_equal(spool_msg_open(f->sp, "acme", info.id, &m, &err), 0);
        e = spool_msg_envelope(m);
        assert_string_equal(e->client_addr, "192.0.2.7");
        assert_string_equal(e->client_name, "mail.example.org");
        assert_string_equal(e->helo, "helo??x??");
        spool_msg_close(m);
    }
    hold_free(h);
}

static void
test_hold_commit_none_when_second_fails(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct errbuf err;
    struct hold *h = two_customers(f);

    /* beta's new/ is replaced by a file: its link fails after acme committed */
    assert_int_equal(str_printf(path, sizeof(path), "%s/beta/new", f->root), 0);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
    assert_int_equal(hold_commit(h, f->sp, &err), -1);
    assert_non_null(strstr(err.msg, "customer=beta: "));
    assert_int_equal(count_files(f->root, "acme", "new"), 0);   /* rolled back */
    assert_int_equal(count_files(f->root, "acme", "tmp"), 0);
    assert_int_equal(count_files(f->root, "beta", "tmp"), 0);
    hold_free(h);
}

static void
test_hold_free_aborts_writers(void **state)
{
    struct fixture *f = *state;
    struct hold *h = two_customers(f);

    assert_int_equal(count_files(f->root, "acme", "tmp"), 1);
    hold_free(h);                                   /* the MTA aborted */
    assert_int_equal(count_files(f->root, "acme", "tmp"), 0);
    assert_int_equal(count_files(f->root, "beta", "tmp"), 0);
    assert_int_equal(count_files(f->root, "acme", "new"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcptaddr_domain),
        cmocka_unit_test(test_rcptaddr_domain_too_long),
        cmocka_unit_test(test_rcptaddr_mailbox),
        cmocka_unit_test(test_rcptaddr_params),
        cmocka_unit_test_setup_teardown(test_hold_commit_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_commit_none_when_second_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_free_aborts_writers, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
