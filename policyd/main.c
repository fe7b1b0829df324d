/* SPDX-License-Identifier: ISC */
/*
 * main.c - autoturn-policyd: start-up (config, listeners, privilege drop,
 * grants), the epoll event loop, and the policy connections: accept,
 * read, parse (policy.c), decide (decide.c), reply, idle timeout.
 * Owns the policy connections, kept in a list ordered by last activity so
 * that idle ones are found in O(1) from the loop's once-a-second tick.
 *
 * SECURITY: anyone who can reach a policy socket can send anything: input
 * is parsed by policy.c under max_line/max_attributes; a violation or any
 * internal trouble closes the connection without a half reply. Pending
 * output is bounded (POLICY_OUT_MAX), connections are capped
 * (max_connections), and one slow client never blocks another (all
 * sockets are non-blocking; one read per wake-up). Reaching a socket
 * proves nothing: a connection is trusted (its sasl_username may create
 * a grant or tie ETRN/AutoTURN to a customer) only if the kernel says its
 * peer is root or one of trusted_users (SO_PEERCRED on a unix: listener),
 * or if it came in on an inet: listener the admin listed in
 * trusted_listen. From any other peer sasl_username is ignored (logged
 * once per connection); such a peer still gets the decisions that need
 * no trust.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "daemon.h"
#include "log.h"
#include "metrics_http.h"
#include "peer.h"
#include "policy.h"
#include "policyd.h"
#include "util.h"

#define PROG             "autoturn-policyd"
#define LISTEN_BACKLOG   1024
#define EPOLL_EVENTS     256
#define READ_MAX         16384   /* bytes read per wake-up */
#define POLICY_OUT_MAX   65536   /* reply bytes a client may leave unread */
#define ACCEPT_BURST     64

enum trust {
    TRUST_NONE,                  /* an inet: listener in listen: nobody vouches */
    TRUST_LISTED,                /* an inet: listener in trusted_listen */
    TRUST_PEERCRED,              /* a unix: listener: the peer's uid decides */
};

struct listener {
    struct ev ev;
    enum trust trust;
};

#define PEER_TEXT_MAX (PEER_NAME_MAX + 48)

struct pconn {
    struct ev ev;
    struct pconn *prev, *next;   /* by last activity, oldest first */
    int64_t last;
    char *out;
    size_t outlen, outoff;
    bool trusted;                /* its sasl_username counts (see SECURITY) */
    bool warned;                 /* the "sasl_username ignored" line is out */
    struct policy_parser parser;
};

static struct {
    struct pconn *head, *tail;
    size_t count;
    int reserve_fd;              /* spare fd to shed connections on EMFILE */
    int64_t last_full_log;
} conns = {NULL, NULL, 0, -1, 0};

static struct listener listeners[CONFIG_LISTEN_MAX];
static struct ev control_listener;
static struct ev signal_ev;
static struct metrics_http *metrics;

/* --- connection list --- */

static void
list_unlink(struct pconn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns.head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        conns.tail = c->prev;
    c->prev = c->next = NULL;
}

static void
list_append(struct pconn *c)
{
    c->prev = conns.tail;
    c->next = NULL;
    if (conns.tail != NULL)
        conns.tail->next = c;
    else
        conns.head = c;
    conns.tail = c;
}

static void
touch(struct policyd *pd, struct pconn *c)
{
    c->last = pd->now;
    if (conns.tail != c) {
        list_unlink(c);
        list_append(c);
    }
}

static void
pconn_close(struct pconn *c)
{
    list_unlink(c);
    close(c->ev.fd);
    x_free(c->out);
    x_free(c);
    conns.count--;
}

/* --- accepting --- */

static void
shed_connection(int lfd)
{
    int fd;

    if (conns.reserve_fd >= 0) {
        close(conns.reserve_fd);
        if ((fd = accept(lfd, NULL, NULL)) >= 0)
            close(fd);
        conns.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

static void
refuse(struct policyd *pd, int fd)
{
    close(fd);
    if (pd->now != conns.last_full_log) {
        log_warnx("max_connections (%llu) reached; closing new connections",
                  (unsigned long long)pd->cfg.policyd.max_connections);
        conns.last_full_log = pd->now;
    }
}

/* peer_trusted - does the kernel (or the admin, for a trusted_listen
 * socket) vouch for the peer of fd, accepted on l? */
static bool
peer_trusted(struct policyd *pd, const struct listener *l, int fd)
{
    uid_t uid;

    if (l->trust != TRUST_PEERCRED)
        return l->trust == TRUST_LISTED;
    if (peer_cred(fd, &uid, NULL) < 0) {
        log_warn("SO_PEERCRED on a policy connection");
        return false;
    }
    return peer_users_has(&pd->trusted_users, uid);
}

static void
pconn_add(struct policyd *pd, int fd, bool trusted)
{
    struct pconn *c = x_calloc(1, sizeof(*c));
    struct epoll_event ee;

    if (c == NULL) {
        log_warnx("out of memory for a new connection; closing it");
        close(fd);
        return;
    }
    c->ev.kind = EV_POLICY;
    c->ev.fd = fd;
    c->trusted = trusted;
    policy_parser_init(&c->parser, pd->cfg.policyd.max_line, pd->cfg.policyd.max_attributes);
    ee.events = EPOLLIN;
    ee.data.ptr = c;
    if (epoll_ctl(pd->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        log_warn("epoll_ctl add");
        close(fd);
        x_free(c);
        return;
    }
    c->last = pd->now;
    list_append(c);
    conns.count++;
}

static void
policy_accept(struct policyd *pd, const struct listener *l)
{
    int fd, i, lfd = l->ev.fd;

    for (i = 0; i < ACCEPT_BURST; i++) {
        if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                log_warn("accept");
                shed_connection(lfd);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_warn("accept");
            }
            return;
        }
        if (conns.count >= pd->cfg.policyd.max_connections)
            refuse(pd, fd);
        else
            pconn_add(pd, fd, peer_trusted(pd, l, fd));
    }
}

/* --- replying --- */

static int
set_events(struct policyd *pd, struct pconn *c, uint32_t events)
{
    struct epoll_event ee;

    ee.events = events;
    ee.data.ptr = c;
    if (epoll_ctl(pd->epfd, EPOLL_CTL_MOD, c->ev.fd, &ee) < 0) {
        log_warn("epoll_ctl mod");
        return -1;
    }
    return 0;
}

/* flush_out - write what is pending; 0 ok (maybe still pending), -1 close */

static int
flush_out(struct policyd *pd, struct pconn *c)
{
    ssize_t n;

    while (c->outoff < c->outlen) {
        n = send(c->ev.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n < 0)
            return -1;
        c->outoff += (size_t)n;
    }
    c->outlen = c->outoff = 0;
    return set_events(pd, c, EPOLLIN);
}

static int
queue_reply(struct policyd *pd, struct pconn *c, const char *reply, size_t len)
{
    bool was_empty = c->outlen == 0;
    char *p;

    if (c->outlen - c->outoff + len > POLICY_OUT_MAX) {
        log_warnx("client does not read its replies (%zu bytes pending); disconnecting",
                  c->outlen - c->outoff);
        return -1;
    }
    if (c->outoff > 0) {
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
    }
    if ((p = x_reallocarray(c->out, c->outlen + len, 1)) == NULL) {
        log_warnx("out of memory for a reply; disconnecting");
        return -1;
    }
    c->out = p;
    memcpy(c->out + c->outlen, reply, len);
    c->outlen += len;
    if (flush_out(pd, c) < 0)
        return -1;
    if (was_empty && c->outlen > 0)
        return set_events(pd, c, EPOLLIN | EPOLLOUT);
    return 0;
}

/* peer_text - who is at the other end of c, for a log line */
static const char *
peer_text(const struct pconn *c, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char name[PEER_NAME_MAX], ip[IPADDR_TEXT_MAX];
    struct ipaddr a;
    uid_t uid;
    pid_t pid;

    if (getpeername(c->ev.fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX &&
        ipaddr_from_sockaddr((struct sockaddr *)&ss, &a) == 0)
        (void)str_printf(buf, size, "peer=[%s]", ipaddr_format(&a, ip, sizeof(ip)));
    else if (peer_cred(c->ev.fd, &uid, &pid) == 0)
        (void)str_printf(buf, size, "peer=%s (pid %ld)", peer_user_name(uid, name, sizeof(name)),
                         (long)pid);
    else
        (void)str_copy(buf, size, "peer=unknown");
    return buf;
}

/* count_decision - the request's metrics: its decision, by the action's
 * kind, and the time since t0 */
static void
count_decision(const char *action, const struct timespec *t0)
{
    enum metrics_decision d = METRICS_REJECT;

    if (!metrics_on())
        return;
    if (str_ieq(action, "OK"))
        d = METRICS_OK;
    else if (str_ieq(action, "DUNNO"))
        d = METRICS_DUNNO;
    else if (action[0] == '4' || strncasecmp(action, "DEFER", 5) == 0)
        d = METRICS_DEFER;
    metrics_inc(METRIC_POLICYD_REQUESTS, d);
    metrics_observe(METRIC_POLICYD_REQUEST_DURATION, 0, metrics_elapsed(t0));
}

static int
answer(struct policyd *pd, struct pconn *c)
{
    char action[POLICY_REPLY_MAX - 16], reply[POLICY_REPLY_MAX], peer[PEER_TEXT_MAX];
    struct timespec t0;
    ssize_t n;
    int len;

    metrics_clock(&t0);
    if (!c->trusted && c->parser.req.sasl_username[0] != '\0' && !c->warned) {
        log_warnx("sasl_username=%s ignored from an untrusted peer (%s): no grant, no "
                  "customer tie; trust comes from trusted_users or trusted_listen",
                  c->parser.req.sasl_username, peer_text(c, peer, sizeof(peer)));
        c->warned = true;
    }
    decide_request(&pd->decide, &c->parser.req, c->trusted, pd->now, action, sizeof(action));
    count_decision(action, &t0);
    if ((len = policy_format_reply(action, reply, sizeof(reply))) < 0) {
        log_warnx("reply does not fit; disconnecting");
        return -1;
    }
    if (c->outlen == 0) {          /* the usual case: straight out */
        n = send(c->ev.fd, reply, (size_t)len, MSG_NOSIGNAL);
        if (n == len)
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n < 0)
            n = 0;
        return queue_reply(pd, c, reply + n, (size_t)(len - n));
    }
    return queue_reply(pd, c, reply, (size_t)len);
}

/* --- reading --- */

static int
consume(struct policyd *pd, struct pconn *c, const char *buf, size_t len)
{
    struct errbuf err;
    size_t used;
    int rc;

    while (len > 0) {
        rc = policy_parse(&c->parser, buf, len, &used, &err);
        if (rc < 0) {
            log_warnx("policy protocol violation: %s; disconnecting", err.msg);
            return -1;
        }
        if (rc == 1 && answer(pd, c) < 0)
            return -1;
        buf += used;
        len -= used;
    }
    return 0;
}

static void
policy_input(struct policyd *pd, struct pconn *c)
{
    static char buf[READ_MAX];
    ssize_t n;

    n = read(c->ev.fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0 && errno != ECONNRESET)
        log_warn("read");
    if (n == 0 && policy_in_request(&c->parser))
        log_warnx("connection closed in the middle of a request");
    if (n <= 0 || consume(pd, c, buf, (size_t)n) < 0) {
        pconn_close(c);
        return;
    }
    touch(pd, c);
}

static void
policy_event(struct policyd *pd, struct pconn *c, uint32_t events)
{
    if ((events & EPOLLOUT) && flush_out(pd, c) < 0) {
        pconn_close(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        policy_input(pd, c);
}

static void
expire_idle(struct policyd *pd)
{
    int64_t limit = (int64_t)pd->cfg.policyd.idle_timeout;

    while (conns.head != NULL && pd->now - conns.head->last >= limit) {
        log_debug("idle connection closed after %llds", (long long)limit);
        pconn_close(conns.head);
    }
}

/* --- start-up --- */

static int
add_ev(struct policyd *pd, struct ev *ev, int fd, enum ev_kind kind)
{
    struct epoll_event ee;

    ev->kind = kind;
    ev->fd = fd;
    ee.events = EPOLLIN;
    ee.data.ptr = ev;
    return epoll_ctl(pd->epfd, EPOLL_CTL_ADD, fd, &ee);
}

static int
open_listener(const struct sockspec *spec, const struct config_policyd *p, const char *group)
{
    char text[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 16];
    struct errbuf err;
    const char *step = "listen";
    int fd;

    sockspec_format(spec, text, sizeof(text));
    if ((fd = sockspec_listen(spec, LISTEN_BACKLOG, &step)) < 0)
        log_fatal("%s: %s", text, step);
    if (fd_set_nonblock(fd) < 0)
        log_fatal("%s: non-blocking", text);
    if (daemon_socket_group(spec, group, p->user, p->group, &err) < 0)
        log_fatalx("%s", err.msg);
    return fd;
}

static void
raise_fd_limit(uint64_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        log_warnx("cannot raise the open file limit to %llu (have %llu): max_connections "
                  "may not be reachable", (unsigned long long)want,
                  (unsigned long long)rl.rlim_cur);
    }
}

static void
open_sockets(struct policyd *pd, int *lfds)
{
    const struct config_policyd *p = &pd->cfg.policyd;
    struct errbuf err;
    size_t i;

    if (p->control.kind != SOCKSPEC_UNIX)
        log_fatalx("policyd control = must be a unix: socket");
    if (metrics_http_open(&p->metrics.listen, METRICS_POLICYD, &metrics, &err) < 0)
        log_fatalx("%s", err.msg);
    for (i = 0; i < p->listen.count; i++)
        lfds[i] = open_listener(&p->listen.spec[i], p, p->socket_group);
    for (i = 0; i < p->trusted_listen.count; i++)
        lfds[p->listen.count + i] = open_listener(&p->trusted_listen.spec[i], p, "");
    /* the control socket is for autoturnctl (root) and the flusher (our
     * user), never for the MTA: always the daemon's own group */
    lfds[p->listen.count + p->trusted_listen.count] = open_listener(&p->control, p, "");
    raise_fd_limit(p->max_connections + CONTROL_CONN_MAX + 64);
}

static void
start_state(struct policyd *pd)
{
    struct errbuf err;

    pd->now = time(NULL);
    pd->grants = grants_new(pd->cfg.policyd.grant_file, pd->cfg.policyd.grant_ttl);
    if (pd->grants == NULL)
        log_fatalx("out of memory");
    if (grants_load(pd->grants, pd->now, &err) < 0)
        log_fatalx("grants: %s", err.msg);
    log_info("grants: %zu live grants loaded from %s", grants_count(pd->grants),
             pd->cfg.policyd.grant_file);
    if ((pd->db = custdb_new(pd->cfg.customers_table)) == NULL)
        log_fatalx("out of memory");
    custdb_report_metrics(pd->db);
    custdb_set_check_interval(pd->db, (unsigned)pd->cfg.customers_check_interval);
    if (custdb_refresh(pd->db, &err) < 0)
        log_warnx("customer table: %s (relay: DUNNO, ETRN: 4xx until it is usable)", err.msg);
    if (decide_init(&pd->decide, &pd->cfg, pd->db, pd->grants) < 0)
        log_fatalx("out of memory");
    if ((conns.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        log_fatal("open /dev/null");
}

/* listener_trust - how peers of listener i (listen, then trusted_listen)
 * are judged; warns about trusted inet: listeners */
static enum trust
listener_trust(const struct config_policyd *p, size_t i)
{
    char text[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 16];
    const struct sockspec *spec;

    if (i < p->listen.count)
        return p->listen.spec[i].kind == SOCKSPEC_UNIX ? TRUST_PEERCRED : TRUST_NONE;
    spec = &p->trusted_listen.spec[i - p->listen.count];
    sockspec_format(spec, text, sizeof(text));
    log_warnx("trusted_listen %s: every peer that reaches it, local users of this host "
              "included, may create grants and tie them to customers: use it only where no "
              "untrusted host or user can connect", text);
    return TRUST_LISTED;
}

/* trusted_users_load - root and trusted_users; unknown names are logged */
static void
trusted_users_load(struct policyd *pd, const struct config *cfg)
{
    struct errbuf err;

    peer_users_root(&pd->trusted_users);
    if (peer_users_add_names(&pd->trusted_users, &cfg->policyd.trusted_users, &err) < 0)
        log_warnx("trusted_users: %s (ignored)", err.msg);
    if (peer_users_control(&pd->control_users, cfg, &cfg->policyd.control_users, &err) < 0)
        log_warnx("control_users: %s (ignored)", err.msg);
}

static void
start_loop(struct policyd *pd, const int *lfds)
{
    size_t i, n = pd->cfg.policyd.listen.count + pd->cfg.policyd.trusted_listen.count;

    if (daemon_signals_init() < 0)
        log_fatal("signals");
    if ((pd->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        log_fatal("epoll_create1");
    for (i = 0; i < n; i++) {
        listeners[i].trust = listener_trust(&pd->cfg.policyd, i);
        if (add_ev(pd, &listeners[i].ev, lfds[i], EV_LISTEN_POLICY) < 0)
            log_fatal("epoll_ctl");
    }
    if (add_ev(pd, &control_listener, lfds[n], EV_LISTEN_CONTROL) < 0 ||
        add_ev(pd, &signal_ev, daemon_signal_fd(), EV_SIGNAL) < 0)
        log_fatal("epoll_ctl");
}

/* --- reload and the loop --- */

/* reload - re-read the file; take the settings that need no new socket,
 * identity or file, or keep everything if the file has errors. */

static void
reload(struct policyd *pd, const char *path)
{
    struct config *nc = daemon_reload_config(path);

    if (nc == NULL)
        return;
    pd->cfg.policyd.max_connections = nc->policyd.max_connections;
    pd->cfg.policyd.idle_timeout = nc->policyd.idle_timeout;
    pd->cfg.policyd.max_line = nc->policyd.max_line;
    pd->cfg.policyd.max_attributes = nc->policyd.max_attributes;
    pd->cfg.policyd.grant_ttl = nc->policyd.grant_ttl;
    pd->cfg.policyd.notify_interval = nc->policyd.notify_interval;
    pd->cfg.policyd.log_decisions = nc->policyd.log_decisions;
    pd->cfg.flusher.control = nc->flusher.control;
    pd->cfg.policyd.trusted_users = nc->policyd.trusted_users;
    pd->cfg.policyd.control_users = nc->policyd.control_users;
    trusted_users_load(pd, &pd->cfg);
    pd->cfg.log_level = nc->log_level;
    config_apply_logging(&pd->cfg, PROG);
    log_info("%s: reloaded (sockets, user, grant_file and customer table path need a restart)",
             path);
    x_free(nc);
}

/* reload_table - SIGHUP also means: look at the customer table now (the
 * reader logs a switch to a new table itself) */
static void
reload_table(struct policyd *pd)
{
    struct errbuf err;

    if (custdb_refresh(pd->db, &err) < 0)
        log_warnx("customer table: %s", err.msg);
}

static void
tick(struct policyd *pd)
{
    struct errbuf err;

    grants_expire(pd->grants, pd->now);
    expire_idle(pd);
    control_expire(pd);
    metrics_set(METRIC_POLICYD_GRANTS, 0, (double)grants_count(pd->grants));
    metrics_set(METRIC_POLICYD_CONNECTIONS, 0, (double)conns.count);
    if (grants_snapshot_due(pd->grants, pd->now) &&
        grants_snapshot(pd->grants, pd->now, &err) < 0)
        log_warnx("grants: snapshot failed: %s", err.msg);
}

static void
dispatch(struct policyd *pd, struct ev *ev, uint32_t events)
{
    switch (ev->kind) {
    case EV_SIGNAL:
        daemon_signal_drain();
        break;
    case EV_LISTEN_POLICY:
        policy_accept(pd, (const struct listener *)ev);
        break;
    case EV_LISTEN_CONTROL:
        control_accept(pd, ev->fd);
        break;
    case EV_POLICY:
        policy_event(pd, (struct pconn *)ev, events);
        break;
    case EV_CONTROL:
        control_event(pd, ev, events);
        break;
    }
}

static void
run(struct policyd *pd, const char *config_path)
{
    struct epoll_event evs[EPOLL_EVENTS];
    int64_t last_tick = 0;
    int i, n;

    while (!daemon_stop) {
        n = epoll_wait(pd->epfd, evs, EPOLL_EVENTS, 1000);
        if (n < 0 && errno != EINTR)
            log_fatal("epoll_wait");
        pd->now = time(NULL);
        for (i = 0; i < n; i++)
            dispatch(pd, evs[i].data.ptr, evs[i].events);
        if (daemon_reload) {
            daemon_reload = 0;
            daemon_reloading();
            reload(pd, config_path);
            reload_table(pd);
            daemon_ready("serving policy requests");
        }
        if (pd->now != last_tick) {
            tick(pd);
            last_tick = pd->now;
        }
    }
}

static void
shutdown_state(struct policyd *pd)
{
    struct errbuf err;

    while (conns.head != NULL)
        pconn_close(conns.head);
    control_close_all(pd);
    if (grants_snapshot(pd->grants, time(NULL), &err) < 0)
        log_warnx("grants: final snapshot failed: %s (the journal keeps them)", err.msg);
    decide_free(&pd->decide);
    grants_free(pd->grants);
    custdb_free(pd->db);
    close(pd->epfd);
}

int
main(int argc, char **argv)
{
    static struct policyd pd;
    struct daemon_opts o;
    struct errbuf err;
    int lfds[CONFIG_LISTEN_MAX + 1];

    daemon_parse_args(argc, argv, PROG,
                      "Postfix policy service: relay grants, AutoTURN and ETRN.", &o);
    daemon_start(&o, PROG, &pd.cfg);
    open_sockets(&pd, lfds);
    daemon_detach(&o);
    daemon_drop_privileges(PROG, pd.cfg.policyd.user, pd.cfg.policyd.group);
    start_state(&pd);
    trusted_users_load(&pd, &pd.cfg);
    start_loop(&pd, lfds);
    if (metrics_http_start(metrics, &err) < 0)
        log_fatalx("%s", err.msg);
    log_info("started: %zu policy listener(s), max_connections=%llu",
             pd.cfg.policyd.listen.count + pd.cfg.policyd.trusted_listen.count,
             (unsigned long long)pd.cfg.policyd.max_connections);
    daemon_ready("serving policy requests");
    run(&pd, o.config_path);
    daemon_stopping();
    log_info("stopping");
    metrics_http_stop(metrics);
    shutdown_state(&pd);
    return 0;
}
