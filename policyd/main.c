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
 * sockets are non-blocking; one read per wake-up).
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
#include "policy.h"
#include "policyd.h"
#include "util.h"

#define PROG             "autoturn-policyd"
#define LISTEN_BACKLOG   1024
#define EPOLL_EVENTS     256
#define READ_MAX         16384   /* bytes read per wake-up */
#define POLICY_OUT_MAX   65536   /* reply bytes a client may leave unread */
#define ACCEPT_BURST     64

struct pconn {
    struct ev ev;
    struct pconn *prev, *next;   /* by last activity, oldest first */
    int64_t last;
    char *out;
    size_t outlen, outoff;
    struct policy_parser parser;
};

static struct {
    struct pconn *head, *tail;
    size_t count;
    int reserve_fd;              /* spare fd to shed connections on EMFILE */
    int64_t last_full_log;
} conns = {NULL, NULL, 0, -1, 0};

static struct ev listeners[CONFIG_LISTEN_MAX];
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

static void
pconn_add(struct policyd *pd, int fd)
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
policy_accept(struct policyd *pd, int lfd)
{
    int fd, i;

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
            pconn_add(pd, fd);
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
    char action[POLICY_REPLY_MAX - 16], reply[POLICY_REPLY_MAX];
    struct timespec t0;
    ssize_t n;
    int len;

    metrics_clock(&t0);
    decide_request(&pd->decide, &c->parser.req, pd->now, action, sizeof(action));
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
    /* the control socket is for autoturnctl (root) and the flusher (our
     * user), never for the MTA: always the daemon's own group */
    lfds[p->listen.count] = open_listener(&p->control, p, "");
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

static void
start_loop(struct policyd *pd, const int *lfds)
{
    size_t i, n = pd->cfg.policyd.listen.count;

    if (daemon_signals_init() < 0)
        log_fatal("signals");
    if ((pd->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        log_fatal("epoll_create1");
    for (i = 0; i < n; i++)
        if (add_ev(pd, &listeners[i], lfds[i], EV_LISTEN_POLICY) < 0)
            log_fatal("epoll_ctl");
    if (add_ev(pd, &control_listener, lfds[n], EV_LISTEN_CONTROL) < 0 ||
        add_ev(pd, &signal_ev, daemon_signal_fd(), EV_SIGNAL) < 0)
        log_fatal("epoll_ctl");
}

/* --- reload and the loop --- */

static void
log_config_error(void *ctx, const char *msg)
{
    (void)ctx;
    log_errorx("%s", msg);
}

/* reload - re-read the file; take the settings that need no new socket,
 * identity or file, or keep everything if the file has errors. */

static void
reload(struct policyd *pd, const char *path)
{
    struct config *nc = x_calloc(1, sizeof(*nc));

    if (nc == NULL || config_load(path, nc, log_config_error, NULL) < 0) {
        log_errorx("%s: reload refused; keeping the running configuration", path);
        x_free(nc);
        return;
    }
    pd->cfg.policyd.max_connections = nc->policyd.max_connections;
    pd->cfg.policyd.idle_timeout = nc->policyd.idle_timeout;
    pd->cfg.policyd.max_line = nc->policyd.max_line;
    pd->cfg.policyd.max_attributes = nc->policyd.max_attributes;
    pd->cfg.policyd.grant_ttl = nc->policyd.grant_ttl;
    pd->cfg.policyd.notify_interval = nc->policyd.notify_interval;
    pd->cfg.flusher.control = nc->flusher.control;
    pd->cfg.log_level = nc->log_level;
    config_apply_logging(&pd->cfg, PROG);
    log_info("%s: reloaded (sockets, user, grant_file and customer table path need a restart)",
             path);
    x_free(nc);
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
        policy_accept(pd, ev->fd);
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
            reload(pd, config_path);
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
    start_loop(&pd, lfds);
    if (metrics_http_start(metrics, &err) < 0)
        log_fatalx("%s", err.msg);
    log_info("started: %zu policy listener(s), max_connections=%llu",
             pd.cfg.policyd.listen.count, (unsigned long long)pd.cfg.policyd.max_connections);
    run(&pd, o.config_path);
    log_info("stopping");
    metrics_http_stop(metrics);
    shutdown_state(&pd);
    return 0;
}
