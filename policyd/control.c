/* SPDX-License-Identifier: ISC */
/*
 * control.c - the control socket server of autoturn-policyd: one request
 * line per connection (GRANT, REVOKE, GRANTS, CHECK, PING), the reply,
 * close.
 * Owns the control connections (at most CONTROL_CONN_MAX, each closed
 * after CONTROL_TIMEOUT seconds) and their reply buffers.
 *
 * SECURITY: the socket's mode decides who may connect, and then the
 * kernel's word on the peer (SO_PEERCRED) decides who may talk: root, the
 * users the autoturn daemons run as, and control_users; anyone else gets
 * one "forbidden" line and is disconnected (logged). Grants made here are
 * recorded with source "control:<user>". Lines are bounded by ctl_linebuf
 * (CTL_LINE_MAX) and decoded by ctl_parse; addresses, durations, user and
 * customer names are validated before use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "ctlproto.h"
#include "log.h"
#include "peer.h"
#include "units.h"
#include "util.h"

#define CONTROL_READ_MAX 4096

struct control_conn {
    struct ev ev;
    struct control_conn *prev, *next;
    int64_t since;
    char user[PEER_NAME_MAX];          /* the peer, as the kernel says */
    struct ctl_linebuf lb;
    bool replied;
    char *out;
    size_t outlen, outoff, outcap;
};

/* --- connections --- */

static void
conn_close(struct policyd *pd, struct control_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        pd->control_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    close(c->ev.fd);                   /* also leaves the epoll set */
    x_free(c->out);
    x_free(c);
    pd->control_count--;
}

static int
conn_add(struct policyd *pd, int fd, const char *user)
{
    struct control_conn *c = x_calloc(1, sizeof(*c)), **pp;
    struct epoll_event ee;

    if (c == NULL)
        return -1;
    c->ev.kind = EV_CONTROL;
    c->ev.fd = fd;
    (void)str_copy(c->user, sizeof(c->user), user);     /* PEER_NAME_MAX: fits */
    c->since = pd->now;
    ctl_linebuf_init(&c->lb);
    ee.events = EPOLLIN;
    ee.data.ptr = c;
    if (epoll_ctl(pd->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        x_free(c);
        return -1;
    }
    for (pp = &pd->control_head; *pp != NULL; pp = &(*pp)->next)
        c->prev = *pp;
    *pp = c;
    pd->control_count++;
    return 0;
}

/* peer_allowed - may the peer of fd use the control socket? Its name in
 * user; a refused peer gets one line (without blocking) and is logged. */
static bool
peer_allowed(struct policyd *pd, int fd, char *user, size_t size)
{
    uid_t uid;
    pid_t pid;

    if (peer_cred(fd, &uid, &pid) < 0) {
        log_warn("control: SO_PEERCRED");
        return false;
    }
    (void)peer_user_name(uid, user, size);
    if (peer_users_has(&pd->control_users, uid))
        return true;
    log_warnx("control: connection from %s (pid %ld) refused: not root, an autoturn daemon's "
              "user or in control_users", user, (long)pid);
    ctl_refuse(fd, "forbidden", "not root, an autoturn daemon's user or in "
               "policyd.control_users");
    return false;
}

void
control_accept(struct policyd *pd, int lfd)
{
    char user[PEER_NAME_MAX];
    int fd, i;

    for (i = 0; i < 16; i++) {
        if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("control: accept");
            return;
        }
        if (pd->control_count >= CONTROL_CONN_MAX) {
            log_warnx("control: more than %d connections; closing a new one", CONTROL_CONN_MAX);
            close(fd);
        } else if (!peer_allowed(pd, fd, user, sizeof(user))) {
            close(fd);
        } else if (conn_add(pd, fd, user) < 0) {
            log_warn("control: cannot register a connection");
            close(fd);
        }
    }
}

void
control_expire(struct policyd *pd)
{
    while (pd->control_head != NULL && pd->now - pd->control_head->since >= CONTROL_TIMEOUT) {
        log_warnx("control: connection timed out");
        conn_close(pd, pd->control_head);
    }
}

void
control_close_all(struct policyd *pd)
{
    while (pd->control_head != NULL)
        conn_close(pd, pd->control_head);
}

/* --- replies --- */

static int
out_append(struct control_conn *c, const struct ctl_msg *m)
{
    char line[CTL_LINE_MAX];
    size_t cap;
    char *p;
    int len;

    if ((len = ctl_format(m, line, sizeof(line))) < 0)
        return -1;
    if (c->outlen + (size_t)len > c->outcap) {
        cap = c->outcap ? c->outcap * 2 : 4096;
        while (cap < c->outlen + (size_t)len)
            cap *= 2;
        if ((p = x_reallocarray(c->out, cap, 1)) == NULL)
            return -1;
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, line, (size_t)len);
    c->outlen += (size_t)len;
    return 0;
}

static int
reply_err(struct control_conn *c, const char *code, const char *text)
{
    struct ctl_msg m;

    ctl_reply_err(&m, code, text);
    return out_append(c, &m);
}

/* --- verbs --- */

static int
parse_ip(struct control_conn *c, const struct ctl_msg *req, struct ipaddr *a)
{
    const char *ip = ctl_msg_get(req, "ip"), *e;
    char text[CTL_VALUE_MAX + 64];

    if (ip == NULL) {
        reply_err(c, "bad-request", "missing ip=");
        return -1;
    }
    if (ipaddr_parse(ip, a, &e) < 0) {
        str_printf(text, sizeof(text), "bad ip address '%s': %s", ip, e);
        reply_err(c, "bad-request", text);
        return -1;
    }
    return 0;
}

static int
grant_args(struct policyd *pd, struct control_conn *c, const struct ctl_msg *req,
           uint64_t *ttl_r)
{
    const char *ttl = ctl_msg_get(req, "ttl"), *cust = ctl_msg_get(req, "customer");
    const char *user = ctl_msg_get(req, "user"), *e;
    struct errbuf err;
    int rc;

    *ttl_r = pd->cfg.policyd.grant_ttl;
    if (ttl != NULL && (units_parse_duration(ttl, ttl_r, &e) < 0 || *ttl_r == 0 ||
                        *ttl_r > 365u * 86400u))
        return reply_err(c, "bad-request", "bad ttl: use a duration from 1s to 365d"), -1;
    if (user != NULL && strlen(user) > GRANT_USER_MAX)
        return reply_err(c, "bad-request", "user too long"), -1;
    if (cust == NULL || cust[0] == '\0')
        return 0;
    if (!customer_name_valid(cust, &e))
        return reply_err(c, "bad-request", "bad customer name"), -1;
    if ((rc = custdb_lookup_name(pd->db, cust, NULL, &err)) < 0) {
        log_warnx("control: GRANT customer=%s: lookup failed: %s", cust, err.msg);
        return reply_err(c, "internal", "customer table unavailable"), -1;
    }
    if (rc == 0)
        return reply_err(c, "unknown-customer", cust), -1;
    return 0;
}

static int
do_grant(struct policyd *pd, struct control_conn *c, const struct ctl_msg *req)
{
    const char *user = ctl_msg_get(req, "user"), *cust = ctl_msg_get(req, "customer");
    char ip[IPADDR_TEXT_MAX], source[GRANT_SOURCE_MAX];
    struct ipaddr a;
    struct errbuf err;
    struct ctl_msg m;
    uint64_t ttl;
    int64_t expires;

    if (parse_ip(c, req, &a) < 0 || grant_args(pd, c, req, &ttl) < 0)
        return 0;
    expires = pd->now + (int64_t)ttl;
    ipaddr_format(&a, ip, sizeof(ip));
    (void)str_printf(source, sizeof(source), "%s%s", GRANT_SOURCE_CONTROL, c->user);  /* fits */
    if (grants_set(pd->grants, &a, user, cust, source, expires, pd->now, &err) < 0) {
        log_warnx("control: GRANT ip=%s: %s", ip, err.msg);
        return reply_err(c, "internal", err.msg);
    }
    log_info("grant: ip=%s, user=%s, customer=%s, source=%s, ttl=%" PRIu64 "s", ip,
             user && user[0] ? user : "(none)", cust && cust[0] ? cust : "(none)", source, ttl);
    ctl_reply_ok(&m);
    if (ctl_msg_add(&m, "ip", ip) < 0 || ctl_msg_addf(&m, "expires", "%" PRId64, expires) < 0)
        return -1;
    return out_append(c, &m);
}

static int
do_revoke(struct policyd *pd, struct control_conn *c, const struct ctl_msg *req)
{
    char ip[IPADDR_TEXT_MAX];
    struct ipaddr a;
    struct errbuf err;
    struct ctl_msg m;
    int rc;

    if (parse_ip(c, req, &a) < 0)
        return 0;
    ipaddr_format(&a, ip, sizeof(ip));
    if ((rc = grants_revoke(pd->grants, &a, &err)) < 0) {
        log_warnx("control: REVOKE ip=%s: %s", ip, err.msg);
        return reply_err(c, "internal", err.msg);
    }
    if (rc == 1)
        log_info("revoke: ip=%s, source=%s%s", ip, GRANT_SOURCE_CONTROL, c->user);
    ctl_reply_ok(&m);
    if (ctl_msg_addf(&m, "removed", "%d", rc) < 0)
        return -1;
    return out_append(c, &m);
}

static int
list_one(void *ctx, const struct grant_info *gi)
{
    struct control_conn *c = ctx;
    char ip[IPADDR_TEXT_MAX];
    struct ctl_msg m;

    if (ctl_msg_init(&m, "GRANT") < 0 ||
        ctl_msg_add(&m, "ip", ipaddr_format(&gi->addr, ip, sizeof(ip))) < 0 ||
        ctl_msg_add(&m, "user", gi->user) < 0 || ctl_msg_add(&m, "customer", gi->customer) < 0 ||
        ctl_msg_add(&m, "source", gi->source) < 0 ||
        ctl_msg_addf(&m, "expires", "%" PRId64, gi->expires) < 0)
        return -1;
    return out_append(c, &m);
}

static int
do_grants(struct policyd *pd, struct control_conn *c)
{
    struct ctl_msg m;

    grants_expire(pd->grants, pd->now);
    if (grants_foreach(pd->grants, pd->now, list_one, c) != 0)
        return -1;
    ctl_reply_ok(&m);
    if (ctl_msg_addf(&m, "count", "%zu", grants_count(pd->grants)) < 0)
        return -1;
    return out_append(c, &m);
}

/* do_check - the live grant of one address (for the flusher's
 * authorisation of a trigger address) */

static int
do_check(struct policyd *pd, struct control_conn *c, const struct ctl_msg *req)
{
    char ip[IPADDR_TEXT_MAX], text[IPADDR_TEXT_MAX + 32];
    struct grant_info gi;
    struct ipaddr a;
    struct ctl_msg m;

    if (parse_ip(c, req, &a) < 0)
        return 0;
    ipaddr_format(&a, ip, sizeof(ip));
    if (grants_get(pd->grants, &a, pd->now, &gi) != 1) {
        (void)str_printf(text, sizeof(text), "no live grant for %s", ip);
        return reply_err(c, "not-found", text);
    }
    ctl_reply_ok(&m);
    if (ctl_msg_add(&m, "user", gi.user) < 0 || ctl_msg_add(&m, "customer", gi.customer) < 0 ||
        ctl_msg_add(&m, "source", gi.source) < 0 ||
        ctl_msg_addf(&m, "expires", "%" PRId64, gi.expires) < 0)
        return -1;
    return out_append(c, &m);
}

static int
dispatch(struct policyd *pd, struct control_conn *c, const struct ctl_msg *req)
{
    struct ctl_msg m;

    if (strcmp(req->verb, "GRANT") == 0)
        return do_grant(pd, c, req);
    if (strcmp(req->verb, "REVOKE") == 0)
        return do_revoke(pd, c, req);
    if (strcmp(req->verb, "GRANTS") == 0)
        return do_grants(pd, c);
    if (strcmp(req->verb, "CHECK") == 0)
        return do_check(pd, c, req);
    if (strcmp(req->verb, "PING") == 0) {
        ctl_reply_ok(&m);
        return out_append(c, &m);
    }
    return reply_err(c, "unknown-verb", req->verb);
}

/* handle_line - one request line: parse, act, queue the reply */

static void
handle_line(struct policyd *pd, struct control_conn *c, const char *line, size_t len)
{
    struct ctl_msg req;
    struct errbuf err;

    c->replied = true;
    if (ctl_parse(line, len, &req, &err) < 0) {
        reply_err(c, "bad-request", err.msg);
        return;
    }
    if (dispatch(pd, c, &req) < 0) {
        c->outlen = 0;
        reply_err(c, "internal", "out of memory");
    }
}

/* --- I/O --- */

static void
want_output(struct policyd *pd, struct control_conn *c)
{
    struct epoll_event ee;

    ee.events = EPOLLOUT;
    ee.data.ptr = c;
    if (epoll_ctl(pd->epfd, EPOLL_CTL_MOD, c->ev.fd, &ee) < 0) {
        log_warn("control: epoll_ctl");
        conn_close(pd, c);
    }
}

static void
on_input(struct policyd *pd, struct control_conn *c)
{
    char buf[CONTROL_READ_MAX];
    const char *line;
    size_t used, linelen;
    ssize_t n;
    int rc;

    if ((n = read(c->ev.fd, buf, sizeof(buf))) < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(pd, c);
        return;
    }
    rc = ctl_linebuf_next(&c->lb, buf, (size_t)n, &used, &line, &linelen);
    if (rc == 0)
        return;
    if (rc < 0) {
        c->replied = true;
        reply_err(c, "bad-request", "line too long");
    } else {
        handle_line(pd, c, line, linelen);
    }
    want_output(pd, c);
}

static void
on_output(struct policyd *pd, struct control_conn *c)
{
    ssize_t n;

    while (c->outoff < c->outlen) {
        n = send(c->ev.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
        c->outoff += (size_t)n;
        c->since = pd->now;            /* a long GRANTS listing keeps going */
    }
    conn_close(pd, c);
}

void
control_event(struct policyd *pd, struct ev *ev, uint32_t events)
{
    struct control_conn *c = (struct control_conn *)ev;

    if (c->replied)
        on_output(pd, c);
    else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_input(pd, c);
}
