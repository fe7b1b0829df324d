/* SPDX-License-Identifier: ISC */
/*
 * test_privs.c - dropping privileges: in a forked child (the suite runs
 * as root in CI) become "nobody" and check every id; unknown user and
 * group, and root as the target, give their exact errors.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "privs.h"

static void
test_lookup(void **state)
{
    struct errbuf err = { "" };
    struct passwd *pw = getpwnam("nobody");
    uid_t uid;
    gid_t gid;

    (void)state;
    assert_non_null(pw);
    assert_int_equal(privs_lookup("nobody", "", &uid, &gid, &err), 0);
    assert_int_equal(uid, pw->pw_uid);
    assert_int_equal(gid, pw->pw_gid);
    assert_int_equal(privs_lookup("nobody", "root", &uid, &gid, &err), 0);
    assert_int_equal(gid, 0);
    assert_int_equal(privs_lookup("root", NULL, &uid, &gid, &err), 0);
    assert_int_equal(uid, 0);
}

static void
test_lookup_errors(void **state)
{
    struct errbuf err = { "" };
    uid_t uid;
    gid_t gid;

    (void)state;
    assert_int_equal(privs_lookup("no-such-user-xyz", "", &uid, &gid, &err), -1);
    assert_string_equal(err.msg, "unknown user 'no-such-user-xyz'");
    assert_int_equal(privs_lookup("nobody", "no-such-group-xyz", &uid, &gid, &err), -1);
    assert_string_equal(err.msg, "unknown group 'no-such-group-xyz'");
    assert_int_equal(privs_lookup("", "", &uid, &gid, &err), -1);
    assert_string_equal(err.msg, "no user name given");
    assert_int_equal(privs_lookup("x", "", &uid, &gid, NULL), -1);   /* NULL err is fine */
}

static void
test_refuse_root(void **state)
{
    struct errbuf err = { "" };

    (void)state;
    assert_int_equal(privs_drop("root", "", &err), -1);
    assert_string_equal(err.msg, "refusing to run as root (user 'root')");
    assert_int_equal(privs_drop("nobody", "root", &err), -1);
    assert_string_equal(err.msg, "refusing to run with group id 0 (group 'root')");
    assert_int_equal(privs_drop("no-such-user-xyz", "", &err), -1);
    assert_string_equal(err.msg, "unknown user 'no-such-user-xyz'");
    /* none of this changed who we are */
    assert_int_equal(getuid(), geteuid());
}

/* child_drop - in a child: drop to nobody, exit 0 only if every id is right */
static int
child_drop(void)
{
    struct errbuf err = { "" };
    struct passwd *pw = getpwnam("nobody");
    gid_t groups[4];
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (pw == NULL || privs_drop("nobody", "", &err) < 0)
        return 10;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        return 11;
    if (ru != pw->pw_uid || eu != pw->pw_uid || su != pw->pw_uid)
        return 12;
    if (rg != pw->pw_gid || eg != pw->pw_gid || sg != pw->pw_gid)
        return 13;
    if (getgroups(4, groups) != 1 || groups[0] != pw->pw_gid)
        return 14;
    if (setuid(0) == 0 || seteuid(0) == 0)      /* no way back */
        return 15;
    /* dropping again to the same user without root succeeds */
    if (privs_drop("nobody", "", &err) < 0)
        return 16;
    if (privs_drop("daemon", "", &err) == 0 ||
        strcmp(err.msg, "cannot become user 'daemon': not running as root") != 0)
        return 17;
    return 0;
}

static void
test_drop_in_child(void **state)
{
    int status;
    pid_t pid;

    (void)state;
    if (geteuid() != 0) {
        skip();                 /* needs root (CI runs as root) */
        return;
    }
    fflush(stdout);
    if ((pid = fork()) == 0)
        _exit(child_drop());
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_lookup_errors),
        cmocka_unit_test(test_refuse_root),
        cmocka_unit_test(test_drop_in_child),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
