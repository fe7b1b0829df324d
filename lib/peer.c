/* SPDX-License-Identifier: ISC */
/*
 * peer.c - peer credentials of UNIX sockets and sets of allowed users
 * (see peer.h). Owns no state.
 *
 * SECURITY: the uid comes from the kernel (SO_PEERCRED), recorded when
 * the peer called connect(); a peer cannot choose it. Names are resolved
 * with getpwnam when a set is built, not per connection.
 */
#include <errno.h>
#include <pwd.h>
#include <sys/socket.h>

#include "peer.h"

void
peer_users_root(struct peer_users *u)
{
    u->n = 1;
    u->uid[0] = 0;
}

static void
add_uid(struct peer_users *u, uid_t uid)
{
    if (!peer_users_has(u, uid) && u->n < PEER_USERS_MAX)
        u->uid[u->n++] = uid;
}

/* add_name - 0 added, -1 no such user */
static int
add_name(struct peer_users *u, const char *name)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(name)) == NULL)
        return -1;
    add_uid(u, pw->pw_uid);
    return 0;
}

/* missing - append name to the "no such user" list in err */
static void
missing(struct errbuf *err, bool *any, const char *name)
{
    char prev[ERRBUF_SIZE];

    if (err == NULL)
        return;
    if (!*any) {
        errbuf_set(err, "no such user: %s", name);
    } else {
        (void)str_copy(prev, sizeof(prev), err->msg);
        errbuf_set(err, "%s, %s", prev, name);
    }
    *any = true;
}

int
peer_users_add_names(struct peer_users *u, const struct config_names *names, struct errbuf *err)
{
    bool any = false;
    size_t i;

    for (i = 0; i < names->count; i++)
        if (add_name(u, names->name[i]) < 0)
            missing(err, &any, names->name[i]);
    return any ? -1 : 0;
}

int
peer_users_control(struct peer_users *u, const struct config *cfg,
                   const struct config_names *extra, struct errbuf *err)
{
    const char *daemons[] = {cfg->milter.user, cfg->policyd.user, cfg->flusher.user};
    bool any = false;
    size_t i;

    peer_users_root(u);
    for (i = 0; i < ARRAY_LEN(daemons); i++)
        if (daemons[i][0] != '\0' && add_name(u, daemons[i]) < 0
            && (i == 0 || strcmp(daemons[i], daemons[0]) != 0)
            && (i < 2 || strcmp(daemons[i], daemons[1]) != 0))
            missing(err, &any, daemons[i]);     /* each missing daemon user once */
    for (i = 0; extra != NULL && i < extra->count; i++)
        if (add_name(u, extra->name[i]) < 0)
            missing(err, &any, extra->name[i]);
    return any ? -1 : 0;
}

bool
peer_users_has(const struct peer_users *u, uid_t uid)
{
    size_t i;

    for (i = 0; i < u->n; i++)
        if (u->uid[i] == uid)
            return true;
    return false;
}

int
peer_cred(int fd, uid_t *uid_r, pid_t *pid_r)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return -1;
    if (len != sizeof(cr)) {
        errno = EPROTO;
        return -1;
    }
    *uid_r = cr.uid;
    if (pid_r != NULL)
        *pid_r = cr.pid;
    return 0;
}

const char *
peer_user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid(uid);

    if (pw == NULL || str_copy(buf, size, pw->pw_name) < 0)
        (void)str_printf(buf, size, "uid %lu", (unsigned long)uid);
    return buf;
}

bool
peer_grant_source_trusted(const char *source)
{
    return strcmp(source, GRANT_SOURCE_SMTP_AUTH) == 0 ||
           (strncmp(source, GRANT_SOURCE_CONTROL, sizeof(GRANT_SOURCE_CONTROL) - 1) == 0 &&
            source[sizeof(GRANT_SOURCE_CONTROL) - 1] != '\0');
}
