/* SPDX-License-Identifier: ISC */
/*
 * privs.c - dropping root for good, the OpenSMTPD way: look the user and
 * group up, setgroups + setresgid + setresuid, then check that the real,
 * effective and saved ids all changed, and never accept root as the target.
 * Owns no state.
 *
 * SECURITY: a daemon that fails here must not go on (the caller exits).
 */
#include <sys/types.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"
#include "privs.h"

#define PRIVS_BUF_START 4096            /* first getpwnam_r/getgrnam_r buffer */
#define PRIVS_BUF_MAX   (1024 * 1024)   /* give up on entries larger than this */

/* lookup_user - uid and primary gid of user; 0 or -1 with err */
static int
lookup_user(const char *user, uid_t *uid_r, gid_t *gid_r, struct errbuf *err)
{
    struct passwd pw, *res = NULL;
    size_t size = PRIVS_BUF_START;
    char *buf = NULL, *nbuf;
    int rc, ret = -1;

    for (;;) {
        if ((nbuf = x_reallocarray(buf, size, 1)) == NULL) {
            errbuf_set_errno(err, "user '%s'", user);
            goto out;
        }
        buf = nbuf;
        rc = getpwnam_r(user, &pw, buf, size, &res);
        if (rc != ERANGE || size >= PRIVS_BUF_MAX)
            break;
        size *= 2;
    }
    if (rc != 0) {
        errno = rc;
        errbuf_set_errno(err, "cannot look up user '%s'", user);
    } else if (res == NULL) {
        errbuf_set(err, "unknown user '%s'", user);
    } else {
        *uid_r = pw.pw_uid;
        *gid_r = pw.pw_gid;
        ret = 0;
    }
out:
    x_free(buf);
    return ret;
}

/* lookup_group - gid of group; 0 or -1 with err */
static int
lookup_group(const char *group, gid_t *gid_r, struct errbuf *err)
{
    struct group gr, *res = NULL;
    size_t size = PRIVS_BUF_START;
    char *buf = NULL, *nbuf;
    int rc, ret = -1;

    for (;;) {
        if ((nbuf = x_reallocarray(buf, size, 1)) == NULL) {
            errbuf_set_errno(err, "group '%s'", group);
            goto out;
        }
        buf = nbuf;
        rc = getgrnam_r(group, &gr, buf, size, &res);
        if (rc != ERANGE || size >= PRIVS_BUF_MAX)
            break;
        size *= 2;
    }
    if (rc != 0) {
        errno = rc;
        errbuf_set_errno(err, "cannot look up group '%s'", group);
    } else if (res == NULL) {
        errbuf_set(err, "unknown group '%s'", group);
    } else {
        *gid_r = gr.gr_gid;
        ret = 0;
    }
out:
    x_free(buf);
    return ret;
}

int
privs_lookup(const char *user, const char *group, uid_t *uid_r, gid_t *gid_r,
             struct errbuf *err)
{
    uid_t uid;
    gid_t gid;

    if (user == NULL || user[0] == '\0') {
        errbuf_set(err, "no user name given");
        return -1;
    }
    if (lookup_user(user, &uid, &gid, err) < 0)
        return -1;
    if (group != NULL && group[0] != '\0' && lookup_group(group, &gid, err) < 0)
        return -1;
    *uid_r = uid;
    *gid_r = gid;
    return 0;
}

/* ids_are - real, effective and saved uid/gid all equal uid/gid */
static bool
ids_are(uid_t uid, gid_t gid)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        return false;
    return ru == uid && eu == uid && su == uid && rg == gid && eg == gid && sg == gid;
}

/* refuse_root - the target must not be root in any way */
static int
refuse_root(const char *user, const char *group, uid_t uid, gid_t gid, struct errbuf *err)
{
    if (uid == 0) {
        errbuf_set(err, "refusing to run as root (user '%s')", user);
        return -1;
    }
    if (gid == 0 && group != NULL && group[0] != '\0') {
        errbuf_set(err, "refusing to run with group id 0 (group '%s')", group);
        return -1;
    }
    if (gid == 0) {
        errbuf_set(err, "refusing to run with group id 0 (primary group of user '%s')", user);
        return -1;
    }
    return 0;
}

int
privs_drop(const char *user, const char *group, struct errbuf *err)
{
    uid_t uid;
    gid_t gid;

    if (privs_lookup(user, group, &uid, &gid, err) < 0)
        return -1;
    if (refuse_root(user, group, uid, gid, err) < 0)
        return -1;
    if (geteuid() != 0) {
        if (ids_are(uid, gid))
            return 0;
        errbuf_set(err, "cannot become user '%s': not running as root", user);
        return -1;
    }
    if (setgroups(1, &gid) < 0) {
        errbuf_set_errno(err, "setgroups");
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        errbuf_set_errno(err, "setresgid");
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        errbuf_set_errno(err, "setresuid");
        return -1;
    }
    if (!ids_are(uid, gid)) {
        errbuf_set(err, "privileges not fully dropped (user '%s')", user);
        return -1;
    }
    return 0;
}
