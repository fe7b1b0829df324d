/* SPDX-License-Identifier: ISC */
/*
 * main.c - autoturn-flusher: start-up (config, control socket, privilege
 * drop), the epoll event loop serving the control protocol (FLUSH,
 * STATUS, PING), the Hello port (hello.c) and the ODMR listener (odmr.c,
 * one forked session per connection), starting one forked child per flush (deliver.c) as the
 * schedule (sched.c) allows, and reaping those children. Owns the control
 * connections and, per child, the read end of its status pipe: the pipe's
 * EOF says the child is gone (no SIGCHLD handler), its one RESULT line
 * says how the flush went.
 *
 * SECURITY: the control socket's mode and group decide who may connect;
 * then the peer's uid (SO_PEERCRED) must be root, an autoturn daemon's
 * user or in control_users, or the peer gets one "forbidden" line and is
 * disconnected (logged). A request is one bounded line (ctl_linebuf,
 * ctl_parse), connections are capped (CONN_MAX) and time out, pending
 * output is bounded (CONN_OUT_MAX), and no client can block the loop
 * (non-blocking sockets). The customer named must exist and the target
 * must be authorised (deliver_authorise) before anything starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctlproto.h"
#include "custdb.h"
#include "daemon.h"
#include "deliver.h"
#include "hello.h"
#include "log.h"
#include "metrics_http.h"
#include "odmr.h"
#include "peer.h"
#include "schedule.h"
#include "spool.h"
#include "sweep.h"
#include "util.h"

#define PROG            DELIVER_PROG
#define LISTEN_BACKLOG  128
#define EPOLL_EVENTS    64
#define CONN_MAX        256        /* control connections at once */
#define CONN_TIMEOUT    10         /* seconds to send the request and take the reply */
#define CONN_OUT_MAX    (1u << 20) /* reply bytes a client may leave unread */
#define READ_MAX        4096
#define RESULT_MAX      256        /* a child's RESULT line */

enum ev_kind {
    EV_LISTEN,
    EV_SIGNAL,
    EV_CONN,
    EV_CHILD,
    EV_SWEEP,                    /* the expiry sweep's status pipe (sweep.c) */
    EV_HELLO,                    /* a Hello port listener (hello.c) */
    EV_ODMR,                     /* the ODMR listener's epoll descriptor (odmr.c) */
};

struct ev {
    enum ev_kind kind;
    int fd;
};

struct conn {
    struct ev ev;
    struct conn *prev, *next;
    time_t deadline;
    bool answered;               /* final line queued: close once it is out */
    struct ctl_linebuf lb;
    char *out;
    size_t outlen, outoff;
};

struct child {
    struct ev ev;
    struct sched_entry *e;
    char buf[RESULT_MAX];
    size_t len;
    struct timespec t0;          /* start, for the flush duration metric */
};

static struct {
    struct config cfg;
    const char *config_path;
    struct spool *spool;
    struct custdb *db;
    struct sched *sched;
    int epfd;
    struct ev listener, sig;
    struct hello *hello;         /* NULL when the Hello port is off */
    struct ev hello_ev[CONFIG_LISTEN_MAX];
    struct odmr *odmr;           /* NULL when ODMR is off */
    struct ev odmr_ev;
    struct conn *conns;
    size_t nconns;
    struct peer_users control_users; /* root, the daemons' users, control_users */
    time_t now, started;
    struct ev sweep;             /* the expiry sweep's status pipe (sweep.c) */
    pid_t sweep_pid;             /* 0: no sweep running */
    time_t next_sweep;
    int exit_code;               /* 1 when stopping because a part failed */
    struct metrics_http *metrics; /* NULL: metrics off */
} fl;

/* --- control connections --- */

/* ev_close - out of the epoll set first, then close: a forked child may
 * still hold the descriptor, and epoll watches the open file, not the
 * number, so a plain close() would leave events for a freed struct */

static void
ev_close(struct ev *ev)
{
    if (ev->fd < 0)
        return;
    (void)epoll_ctl(fl.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
    (void)close(ev->fd);
    ev->fd = -1;
}

static void
conn_close(struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        fl.conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ev_close(&c->ev);
    x_free(c->out);
    x_free(c);
    fl.nconns--;
}

static int
conn_events(struct conn *c, uint32_t events)
{
    struct epoll_event ee = {.events = events, .data.ptr = c};

    return epoll_ctl(fl.epfd, EPOLL_CTL_MOD, c->ev.fd, &ee);
}

/* conn_flush - write what is pending; 0 = all out, 1 = more, -1 = gone */

static int
conn_flush(struct conn *c)
{
    ssize_t n;

    while (c->outoff < c->outlen) {
        n = send(c->ev.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return conn_events(c, EPOLLOUT) < 0 ? -1 : 1;
        if (n < 0)
            return -1;
        c->outoff += (size_t)n;
    }
    return 0;
}

static int
conn_queue(struct conn *c, const struct ctl_msg *m)
{
    char line[CTL_LINE_MAX];
    char *p;
    int len;

    if ((len = ctl_format(m, line, sizeof(line))) < 0) {
        log_warnx("control: reply line does not fit");
        return -1;
    }
    if (c->outlen + (size_t)len > CONN_OUT_MAX)
        return -1;
    if ((p = x_reallocarray(c->out, c->outlen + (size_t)len, 1)) == NULL)
        return -1;
    c->out = p;
    memcpy(c->out + c->outlen, line, (size_t)len);
    c->outlen += (size_t)len;
    return 0;
}

/* conn_finish - queue the final line, send, close when it is out */

static void
conn_finish(struct conn *c, struct ctl_msg *final)
{
    c->answered = true;
    if (conn_queue(c, final) < 0 || conn_flush(c) != 1)
        conn_close(c);
}

static void
conn_err(struct conn *c, const char *code, const char *text)
{
    struct ctl_msg m;

    ctl_reply_err(&m, code, text);
    conn_finish(c, &m);
}

/* --- starting and ending flushes --- */

static void
child_add(struct sched_entry *e, const struct sched_req *req, pid_t pid, int fd)
{
    struct child *ch = x_calloc(1, sizeof(*ch));
    struct epoll_event ee;

    if (ch != NULL) {
        ch->ev.kind = EV_CHILD;
        ch->ev.fd = fd;
        ch->e = e;
        metrics_clock(&ch->t0);
        ee.events = EPOLLIN;
        ee.data.ptr = ch;
        if (epoll_ctl(fl.epfd, EPOLL_CTL_ADD, fd, &ee) == 0) {
            sched_started(fl.sched, e, req, pid, fd, fl.now);
            metrics_set(METRIC_FLUSHES_RUNNING, 0, (double)sched_running(fl.sched));
            return;
        }
        log_warn("epoll_ctl add");
        x_free(ch);
    }
    /* cannot watch it: wait for it here rather than lose track */
    log_warnx("customer=%s: cannot watch flush process %d; waiting for it", e->customer,
              (int)pid);
    close(fd);
    (void)waitpid(pid, NULL, 0);
}

/* start_flush - fork the child for e; the client (wait=1) goes with it.
 * 0, or -1 (logged; the caller answers the client) */

static int
start_flush(struct sched_entry *e, const struct customer *cust, const struct sched_req *req,
            int client_fd)
{
    struct deliver_req dr = {&fl.cfg, fl.spool, cust, req->to, req->reason, client_fd, -1};
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        log_warn("customer=%s: pipe", e->customer);
        return -1;
    }
    if ((pid = fork()) < 0) {
        log_warn("customer=%s: fork", e->customer);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dr.status_fd = p[1];
        deliver_child(&dr);
    }
    close(p[1]);
    if (fd_set_nonblock(p[0]) < 0)
        log_warn("customer=%s: status pipe non-blocking", e->customer);
    log_info("customer=%s: flush started (pid %d, reason=%s%s%s)", e->customer, (int)pid,
             req->reason, req->to[0] ? ", to=" : "", req->to);
    child_add(e, req, pid, p[0]);
    return 0;
}

/* start_again - a rescan or queued start: no client waits */

static void
start_again(struct sched_entry *e, const struct sched_req *req)
{
    struct customer *c = NULL;
    struct errbuf err;
    int rc;

    if ((rc = custdb_lookup_name(fl.db, e->customer, &c, &err)) != 1) {
        log_warnx("customer=%s: not started again: %s", e->customer,
                  rc == 0 ? "no longer in the customer table" : err.msg);
        return;
    }
    if (start_flush(e, c, req, -1) < 0)
        sched_cancel(fl.sched, e);
    customer_free(c);
}

static void
start_queued(void)
{
    struct sched_entry *e;
    struct sched_req req;

    while ((e = sched_next_queued(fl.sched, &req)) != NULL)
        start_again(e, &req);
}

/* child_status - how the child ended: true if the attempt failed */

static bool
child_status(struct child *ch, pid_t pid)
{
    struct deliver_result r;
    int st = 0;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st)) {
        log_warnx("customer=%s: flush process %d killed by signal %d; undelivered mail stays "
                  "held", ch->e->customer, (int)pid, WTERMSIG(st));
        return true;
    }
    if (ch->len == 0 || deliver_result_parse(ch->buf, ch->len, &r) < 0) {
        log_warnx("customer=%s: flush process %d ended without a result (exit %d)",
                  ch->e->customer, (int)pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return true;
    }
    return r.failed && !r.busy;
}

static void
child_event(struct child *ch)
{
    struct sched_entry *e = ch->e;
    struct sched_req next;
    ssize_t n;
    bool failed;

    n = read(ch->ev.fd, ch->buf + ch->len, sizeof(ch->buf) - 1 - ch->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0 && ch->len + (size_t)n < sizeof(ch->buf) - 1) {
        ch->len += (size_t)n;
        return;
    }
    ev_close(&ch->ev);            /* EOF (the child is gone), error, or too long */
    failed = child_status(ch, e->pid);
    metrics_flush_done(e->req.reason, failed, metrics_elapsed(&ch->t0));
    if (sched_finished(fl.sched, e, failed, fl.now, &next))
        start_again(e, &next);
    x_free(ch);
    start_queued();
    metrics_set(METRIC_FLUSHES_RUNNING, 0, (double)sched_running(fl.sched));
}

/* --- requests --- */

struct flush_args {
    const char *customer;
    struct sched_req req;
    bool wait;
};

static int
flush_args(struct conn *c, const struct ctl_msg *m, struct flush_args *a)
{
    const char *to = ctl_msg_get(m, "to"), *reason = ctl_msg_get(m, "reason"), *wait, *e;

    memset(a, 0, sizeof(*a));
    a->customer = ctl_msg_get(m, "customer");
    if (a->customer == NULL || a->customer[0] == '\0')
        return conn_err(c, "bad-request", "missing customer="), -1;
    if (!customer_name_valid(a->customer, &e))
        return conn_err(c, "bad-request", e), -1;
    if (str_copy(a->req.to, sizeof(a->req.to), to ? to : "") < 0)
        return conn_err(c, "bad-request", "to= too long"), -1;
    (void)str_copy(a->req.reason, sizeof(a->req.reason), reason && *reason ? reason : "unknown");
    a->req.manual = strcmp(a->req.reason, "manual") == 0;
    wait = ctl_msg_get(m, "wait");
    a->wait = wait != NULL && strcmp(wait, "1") == 0;
    return 0;
}

/* flush_authorised - deliver_authorise, the refusal logged; 1, 0, -1 as it */

static int
flush_authorised(const struct customer *cust, const struct sched_req *req, struct errbuf *err)
{
    int rc;

    if ((rc = deliver_authorise(cust, req->to, err)) != 1)
        log_warnx("customer=%s: flush refused: %s (reason=%s)", cust->name, err->msg,
                  req->reason);
    return rc;
}

/* flush_check - the customer exists and the target is allowed;
 * 0 with *c_r, or -1 after answering */

static int
flush_check(struct conn *c, const struct flush_args *a, struct customer **c_r)
{
    struct errbuf err;
    char text[CTL_VALUE_MAX + 1];
    int rc;

    if ((rc = custdb_lookup_name(fl.db, a->customer, c_r, &err)) < 0) {
        log_warnx("customer=%s: customer table: %s", a->customer, err.msg);
        return conn_err(c, "internal", err.msg), -1;
    }
    if (rc == 0) {
        (void)str_printf(text, sizeof(text), "no such customer: %s", a->customer);
        return conn_err(c, "unknown-customer", text), -1;
    }
    if ((rc = flush_authorised(*c_r, &a->req, &err)) != 1) {
        conn_err(c, rc < 0 ? "bad-request" : "not-authorised", err.msg);
        customer_free(*c_r);
        return -1;
    }
    return 0;
}

static void
flush_start_now(struct conn *c, struct sched_entry *e, const struct customer *cust,
                const struct flush_args *a)
{
    struct ctl_msg m;
    int fd = c->ev.fd;

    if (start_flush(e, cust, &a->req, a->wait ? fd : -1) < 0) {
        sched_cancel(fl.sched, e);
        conn_err(c, "internal", "cannot start a flush process");
        return;
    }
    if (a->wait) {                /* the child answers; the parent lets go */
        conn_close(c);
        return;
    }
    ctl_reply_ok(&m);
    ctl_msg_add(&m, "queued", "1");
    conn_finish(c, &m);
}

/* verdict_log - a request that starts nothing now and waits for no one */

static void
verdict_log(enum sched_verdict v, const char *customer, const char *reason)
{
    if (v == SCHED_RETRY_LATER)
        log_info("customer=%s: flush (reason=%s) not started: the last attempt failed less "
                 "than retry_interval ago", customer, reason);
    else if (v == SCHED_RESCAN)
        log_info("customer=%s: flush running; it will run again (reason=%s)", customer,
                 reason);
    else
        log_info("customer=%s: flush queued: max_flushes reached (reason=%s)", customer,
                 reason);
}

static void
flush_verdict(struct conn *c, enum sched_verdict v, const struct flush_args *a)
{
    char text[CTL_VALUE_MAX + 1];
    struct ctl_msg m;

    if (v == SCHED_RUNNING || v == SCHED_FULL || (v == SCHED_RETRY_LATER && a->wait)) {
        if (v == SCHED_RUNNING)
            (void)str_printf(text, sizeof(text), "a flush for %s is already running",
                             a->customer);
        else if (v == SCHED_FULL)
            (void)str_printf(text, sizeof(text), "max_flushes (%zu) flushes are running",
                             sched_max(fl.sched));
        else
            (void)str_printf(text, sizeof(text), "the last attempt for %s failed; next "
                             "attempt after retry_interval", a->customer);
        conn_err(c, "busy", text);
        return;
    }
    verdict_log(v, a->customer, a->req.reason);
    ctl_reply_ok(&m);
    ctl_msg_add(&m, "queued", v == SCHED_RETRY_LATER ? "0" : "1");
    conn_finish(c, &m);
}

static void
req_flush(struct conn *c, const struct ctl_msg *m)
{
    struct flush_args a;
    struct customer *cust = NULL;
    struct sched_entry *e;
    enum sched_verdict v;

    if (flush_args(c, m, &a) < 0 || flush_check(c, &a, &cust) < 0)
        return;
    if (sched_request(fl.sched, cust->name, &a.req, a.wait, fl.now, &v, &e) < 0)
        conn_err(c, "internal", "out of memory");
    else if (v == SCHED_START)
        flush_start_now(c, e, cust, &a);
    else
        flush_verdict(c, v, &a);
    customer_free(cust);
}

/* flush_internal - a request from inside the flusher (the Hello port):
 * the checks and the schedule of a FLUSH without wait, outcomes logged */

static void
flush_internal(void *ctx, const struct customer *cust, const char *to)
{
    struct sched_req req;
    struct sched_entry *e;
    enum sched_verdict v;
    struct errbuf err;

    (void)ctx;
    memset(&req, 0, sizeof(req));
    (void)str_copy(req.reason, sizeof(req.reason), "hello");
    if (str_copy(req.to, sizeof(req.to), to) < 0 || flush_authorised(cust, &req, &err) != 1)
        return;
    if (sched_request(fl.sched, cust->name, &req, false, fl.now, &v, &e) < 0)
        log_warnx("customer=%s: flush (reason=hello) not started: out of memory", cust->name);
    else if (v != SCHED_START)
        verdict_log(v, cust->name, req.reason);
    else if (start_flush(e, cust, &req, -1) < 0)
        sched_cancel(fl.sched, e);
}

static int
status_line(void *ctx, const struct sched_entry *e)
{
    struct ctl_msg m;

    ctl_msg_init(&m, "FLUSHING");
    ctl_msg_add(&m, "customer", e->customer);
    ctl_msg_add(&m, "to", e->req.to);
    ctl_msg_addf(&m, "since", "%lld", (long long)e->started);
    return conn_queue(ctx, &m) < 0 ? -1 : 0;
}

static void
status_customer(struct conn *c, const char *name)
{
    struct spool_stats st;
    struct sched_entry *e;
    struct errbuf err;
    struct ctl_msg m;
    char text[CTL_VALUE_MAX + 1];
    int rc;

    if ((rc = custdb_lookup_name(fl.db, name, NULL, &err)) <= 0) {
        (void)str_printf(text, sizeof(text), "no such customer: %s", name);
        conn_err(c, rc < 0 ? "internal" : "unknown-customer", rc < 0 ? err.msg : text);
        return;
    }
    if (spool_stats(fl.spool, name, &st, &err) < 0) {
        conn_err(c, "internal", err.msg);
        return;
    }
    e = sched_find(fl.sched, name);
    ctl_reply_ok(&m);
    ctl_msg_add(&m, "customer", name);
    ctl_msg_addf(&m, "messages", "%" PRIu64, st.messages);
    ctl_msg_addf(&m, "bytes", "%" PRIu64, st.bytes);
    ctl_msg_addf(&m, "oldest", "%lld", (long long)st.oldest);
    ctl_msg_add(&m, "flushing", e != NULL && e->pid != 0 ? "1" : "0");
    ctl_msg_addf(&m, "on_hold", "%" PRIu64, st.on_hold);
    conn_finish(c, &m);
}

static void
req_status(struct conn *c, const struct ctl_msg *m)
{
    const char *name = ctl_msg_get(m, "customer"), *e;
    struct ctl_msg ok;

    if (name != NULL) {
        if (!customer_name_valid(name, &e))
            conn_err(c, "bad-request", e);
        else
            status_customer(c, name);
        return;
    }
    if (sched_foreach_running(fl.sched, status_line, c) != 0) {
        conn_close(c);
        return;
    }
    ctl_reply_ok(&ok);
    ctl_msg_addf(&ok, "running", "%zu", sched_running(fl.sched));
    ctl_msg_addf(&ok, "max", "%zu", sched_max(fl.sched));
    ctl_msg_addf(&ok, "uptime", "%lld", (long long)(fl.now - fl.started));
    ctl_msg_addf(&ok, "odmr_sessions", "%zu", odmr_sessions(fl.odmr));
    conn_finish(c, &ok);
}

static void
request(struct conn *c, const char *line, size_t len)
{
    struct ctl_msg m, ok;
    struct errbuf err;

    if (ctl_parse(line, len, &m, &err) < 0) {
        conn_err(c, "bad-request", err.msg);
    } else if (strcmp(m.verb, "FLUSH") == 0) {
        req_flush(c, &m);
    } else if (strcmp(m.verb, "STATUS") == 0) {
        req_status(c, &m);
    } else if (strcmp(m.verb, "PING") == 0) {
        ctl_reply_ok(&ok);
        conn_finish(c, &ok);
    } else {
        conn_err(c, "unknown-verb", m.verb);
    }
}

static void
conn_input(struct conn *c)
{
    char buf[READ_MAX];
    const char *line;
    size_t used, len;
    ssize_t n;
    int rc;

    n = read(c->ev.fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || c->answered) {  /* gone, or more than one request */
        conn_close(c);
        return;
    }
    rc = ctl_linebuf_next(&c->lb, buf, (size_t)n, &used, &line, &len);
    if (rc < 0)
        conn_err(c, "bad-request", "line too long");
    else if (rc == 1)
        request(c, line, len);
}

static void
conn_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        if (conn_flush(c) != 1 && c->answered)
            conn_close(c);
        return;
    }
    conn_input(c);
}

/* conn_allowed - may the peer of fd use the control socket? A refused
 * peer gets one line (without blocking) and is logged. */
static bool
conn_allowed(int fd)
{
    char name[PEER_NAME_MAX];
    uid_t uid;
    pid_t pid;

    if (peer_cred(fd, &uid, &pid) < 0) {
        log_warn("control: SO_PEERCRED");
        return false;
    }
    if (peer_users_has(&fl.control_users, uid))
        return true;
    log_warnx("control: connection from %s (pid %ld) refused: not root, an autoturn daemon's "
              "user or in control_users", peer_user_name(uid, name, sizeof(name)), (long)pid);
    ctl_refuse(fd, "forbidden", "not root, an autoturn daemon's user or in "
               "flusher.control_users");
    return false;
}

/* control_users_load - who may use the control socket (unknown names logged) */
static void
control_users_load(void)
{
    struct errbuf err;

    if (peer_users_control(&fl.control_users, &fl.cfg, &fl.cfg.flusher.control_users, &err) < 0)
        log_warnx("control_users: %s (ignored)", err.msg);
}

static void
conn_accept(void)
{
    struct epoll_event ee;
    struct conn *c;
    int fd;

    while ((fd = accept4(fl.listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (!conn_allowed(fd)) {
            close(fd);
            continue;
        }
        if (fl.nconns >= CONN_MAX || (c = x_calloc(1, sizeof(*c))) == NULL) {
            log_warnx("control: too many connections (%zu); closing one", fl.nconns);
            close(fd);
            continue;
        }
        c->ev.kind = EV_CONN;
        c->ev.fd = fd;
        c->deadline = fl.now + CONN_TIMEOUT;
        ctl_linebuf_init(&c->lb);
        ee.events = EPOLLIN;
        ee.data.ptr = c;
        if (epoll_ctl(fl.epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
            log_warn("epoll_ctl add");
            close(fd);
            x_free(c);
            continue;
        }
        c->next = fl.conns;
        if (fl.conns != NULL)
            fl.conns->prev = c;
        fl.conns = c;
        fl.nconns++;
    }
    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        log_warn("control: accept");
}

static void
expire_conns(void)
{
    struct conn *c = fl.conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (fl.now >= c->deadline)
            conn_close(c);
    }
}

/* --- start-up, reload, the loop --- */

static int
add_ev(struct ev *ev, int fd, enum ev_kind kind)
{
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = ev};

    ev->kind = kind;
    ev->fd = fd;
    return epoll_ctl(fl.epfd, EPOLL_CTL_ADD, fd, &ee);
}

static int
open_control(void)
{
    const struct config_flusher *f = &fl.cfg.flusher;
    struct errbuf err;
    const char *step = "listen";
    int fd;

    if (f->control.kind != SOCKSPEC_UNIX)
        log_fatalx("flusher control = must be a unix: socket");
    if ((fd = sockspec_listen(&f->control, LISTEN_BACKLOG, &step)) < 0)
        log_fatal("%s: %s", f->control.path, step);
    if (fd_set_nonblock(fd) < 0)
        log_fatal("%s: non-blocking", f->control.path);
    if (daemon_socket_group(&f->control, f->socket_group, f->user, f->group, &err) < 0)
        log_fatalx("%s", err.msg);
    return fd;
}

/* open_hello - the Hello port's listeners, if enabled (before the drop) */

static void
open_hello(void)
{
    struct errbuf err;

    if (hello_open(&fl.cfg.flusher.hello, &fl.hello, &err) < 0)
        log_fatalx("%s", err.msg);
}

/* spawn_odmr - the ODMR front process (after detaching, before the drop) */
static void
spawn_odmr(void)
{
    struct errbuf err;

    if (odmr_spawn(fl.odmr, &err) < 0)
        log_fatalx("%s", err.msg);
}

/* open_metrics - the Prometheus endpoint's socket and the metrics
 * mapping, if metrics { listen } is set (before the drop and before any
 * fork: flush children count into the mapping) */

static void
open_metrics(void)
{
    struct errbuf err;

    if (metrics_http_open(&fl.cfg.flusher.metrics.listen, METRICS_FLUSHER, &fl.metrics, &err) < 0)
        log_fatalx("%s", err.msg);
}

static void
start_metrics(void)
{
    struct errbuf err;

    if (metrics_http_start(fl.metrics, &err) < 0)
        log_fatalx("%s", err.msg);
}

/* open_odmr - the ODMR listeners and TLS key, if enabled (before the drop) */

static void
open_odmr(void)
{
    struct errbuf err;

    if (odmr_open(&fl.cfg, &fl.odmr, &err) < 0)
        log_fatalx("%s", err.msg);
}

static void
watch_odmr(void)
{
    if (fl.odmr == NULL)
        return;
    odmr_start(fl.odmr, fl.spool, fl.db);
    if (add_ev(&fl.odmr_ev, odmr_poll_fd(fl.odmr), EV_ODMR) < 0)
        log_fatal("epoll_ctl");
}

/* watch_hello - the Hello listeners join the loop; grants are asked of
 * the policy service's control socket (deliver_authorise) */

static void
watch_hello(void)
{
    const struct sockspec *pc = &fl.cfg.policyd.control;
    size_t i;
    int fd;

    for (i = 0; (fd = hello_fd(fl.hello, i)) >= 0; i++)
        if (add_ev(&fl.hello_ev[i], fd, EV_HELLO) < 0)
            log_fatal("epoll_ctl");
    deliver_set_grant_socket(pc->kind == SOCKSPEC_UNIX ? pc->path : "");
}

static void
fill_hostname(struct config *cfg)
{
    char host[256];

    if (cfg->flusher.myhostname[0] != '\0')
        return;
    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        (void)str_copy(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    (void)str_copy(cfg->flusher.myhostname, sizeof(cfg->flusher.myhostname), host);
}

static void
start_state(int lfd)
{
    struct errbuf err;

    fl.now = fl.started = time(NULL);
    if ((fl.spool = spool_new(fl.cfg.spool_dir)) == NULL ||
        (fl.db = custdb_new(fl.cfg.customers_table)) == NULL ||
        (fl.sched = sched_new((size_t)fl.cfg.flusher.max_flushes,
                              (time_t)fl.cfg.flusher.retry_interval)) == NULL)
        log_fatalx("out of memory");
    custdb_set_check_interval(fl.db, (unsigned)fl.cfg.customers_check_interval);
    custdb_report_metrics(fl.db);
    if (custdb_refresh(fl.db, &err) < 0)
        log_warnx("customer table: %s (requests get ERR internal until it is usable)", err.msg);
    control_users_load();
    if (daemon_signals_init() < 0)
        log_fatal("signals");
    if ((fl.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        log_fatal("epoll_create1");
    if (add_ev(&fl.listener, lfd, EV_LISTEN) < 0 ||
        add_ev(&fl.sig, daemon_signal_fd(), EV_SIGNAL) < 0)
        log_fatal("epoll_ctl");
}

/* reload - settings that need no new socket or identity; all or nothing */

static void
reload(void)
{
    struct config *nc = daemon_reload_config(fl.config_path);
    struct config_flusher *o = &fl.cfg.flusher, *n;

    if (nc == NULL)
        return;
    n = &nc->flusher;
    o->max_flushes = n->max_flushes;
    o->retry_interval = n->retry_interval;
    o->connect_timeout = n->connect_timeout;
    o->greeting_timeout = n->greeting_timeout;
    o->command_timeout = n->command_timeout;
    o->data_timeout = n->data_timeout;
    o->flush_timeout = n->flush_timeout;
    memcpy(o->bounce_method, n->bounce_method, sizeof(o->bounce_method));
    memcpy(o->sendmail_command, n->sendmail_command, sizeof(o->sendmail_command));
    o->bounce_relay = n->bounce_relay;
    memcpy(o->postmaster, n->postmaster, sizeof(o->postmaster));
    o->hello.rate_interval = n->hello.rate_interval;
    o->odmr.auth_delay = n->odmr.auth_delay;
    o->odmr.max_auth_failures = n->odmr.max_auth_failures;
    o->odmr.turnaround_timeout = n->odmr.turnaround_timeout;
    o->odmr.address_failures = n->odmr.address_failures;
    o->odmr.address_block = n->odmr.address_block;
    o->odmr.account_failures = n->odmr.account_failures;
    o->odmr.account_delay = n->odmr.account_delay;
    o->odmr.account_delay_max = n->odmr.account_delay_max;
    o->max_age = n->max_age;
    o->delay_warning = n->delay_warning;
    o->sweep_interval = n->sweep_interval;
    o->tmp_max_age = n->tmp_max_age;
    o->control_users = n->control_users;
    control_users_load();
    fl.cfg.log_level = nc->log_level;
    config_apply_logging(&fl.cfg, PROG);
    sched_set_limits(fl.sched, (size_t)o->max_flushes, (time_t)o->retry_interval);
    log_info("%s: reloaded (control socket, listeners, TLS files, users, spool and table paths, "
             "and the ODMR front's limits and timeouts need a restart)",
             fl.config_path);
    x_free(nc);
    start_queued();
}

/* reload_table - SIGHUP also means: look at the customer table now (the
 * reader logs a switch to a new table itself) */
static void
reload_table(void)
{
    struct errbuf err;

    if (custdb_refresh(fl.db, &err) < 0)
        log_warnx("customer table: %s", err.msg);
}

static void
dispatch(struct ev *ev, uint32_t events)
{
    switch (ev->kind) {
    case EV_SIGNAL:
        daemon_signal_drain();
        break;
    case EV_LISTEN:
        conn_accept();
        break;
    case EV_CONN:
        conn_event((struct conn *)ev, events);
        break;
    case EV_CHILD:
        child_event((struct child *)ev);
        break;
    case EV_HELLO:
        hello_accept(fl.hello, ev->fd, fl.db, fl.now, flush_internal, NULL);
        break;
    case EV_ODMR:
        if (odmr_event(fl.odmr, fl.now) < 0) {
            log_errorx("stopping: without its front process ODMR cannot serve; a restart "
                       "brings it back");
            daemon_stop = 1;
            fl.exit_code = 1;
        }
        break;
    case EV_SWEEP:
        if (sweep_event(ev->fd, fl.sweep_pid) == 1) {
            ev_close(ev);
            fl.sweep_pid = 0;
        }
        break;
    }
}

/* sweep_tick - start the expiry sweep (sweep.c) every sweep_interval,
 * never two at once; the first right after start-up */

static void
sweep_tick(void)
{
    struct errbuf err;
    pid_t pid;
    int fd;

    if (fl.sweep_pid != 0 || fl.now < fl.next_sweep)
        return;
    fl.next_sweep = fl.now + (time_t)fl.cfg.flusher.sweep_interval;
    if ((pid = sweep_start(&fl.cfg, fl.spool, &fd, &err)) < 0) {
        log_warnx("sweep not started: %s", err.msg);
        return;
    }
    fl.sweep_pid = pid;
    if (add_ev(&fl.sweep, fd, EV_SWEEP) < 0) {
        log_warn("epoll_ctl add: sweep process %d; waiting for it", (int)pid);
        close(fd);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        fl.sweep_pid = 0;
    }
}

static void
run(void)
{
    struct epoll_event evs[EPOLL_EVENTS];
    time_t last_tick = 0;
    int i, n;

    while (!daemon_stop) {
        n = epoll_wait(fl.epfd, evs, EPOLL_EVENTS, 1000);
        if (n < 0 && errno != EINTR)
            log_fatal("epoll_wait");
        fl.now = time(NULL);
        for (i = 0; i < n; i++)
            dispatch(evs[i].data.ptr, evs[i].events);
        if (daemon_reload) {
            daemon_reload = 0;
            daemon_reloading();
            reload();
            reload_table();
            daemon_ready("accepting flush requests");
        }
        if (fl.now != last_tick) {
            expire_conns();
            sched_prune(fl.sched, fl.now);
            sweep_tick();
            last_tick = fl.now;
        }
    }
}

/* stop_children - SIGTERM to every running flush and wait: what they did
 * not finish stays held */

static int
stop_one(void *ctx, const struct sched_entry *e)
{
    (void)ctx;
    if (kill(e->pid, SIGTERM) < 0)
        log_warn("kill %d", (int)e->pid);
    return 0;
}

static int
wait_one(void *ctx, const struct sched_entry *e)
{
    (void)ctx;
    while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

static void
shutdown_state(void)
{
    sched_foreach_running(fl.sched, stop_one, NULL);
    sched_foreach_running(fl.sched, wait_one, NULL);
    if (fl.sweep_pid != 0)
        sweep_stop(fl.sweep.fd, fl.sweep_pid);
    while (fl.conns != NULL)
        conn_close(fl.conns);
    close(fl.listener.fd);
    hello_close(fl.hello);
    odmr_close(fl.odmr);
    metrics_http_stop(fl.metrics);
    (void)unlink(fl.cfg.flusher.control.path);
    sched_free(fl.sched);
    custdb_free(fl.db);
    spool_free(fl.spool);
    close(fl.epfd);
}

int
main(int argc, char **argv)
{
    struct daemon_opts o;
    int lfd;

    daemon_parse_args(argc, argv, PROG, "deliver held mail to customers on demand.", &o);
    daemon_start(&o, PROG, &fl.cfg);
    fl.config_path = fl.cfg.file;
    fill_hostname(&fl.cfg);
    lfd = open_control();
    open_hello();
    open_odmr();
    open_metrics();
    daemon_detach(&o);
    spawn_odmr();
    daemon_drop_privileges(PROG, fl.cfg.flusher.user, fl.cfg.flusher.group);
    start_state(lfd);
    watch_hello();
    watch_odmr();
    start_metrics();
    log_info("started: control %s, max_flushes=%llu, retry_interval=%llus",
             fl.cfg.flusher.control.path, (unsigned long long)fl.cfg.flusher.max_flushes,
             (unsigned long long)fl.cfg.flusher.retry_interval);
    daemon_ready("accepting flush requests");
    run();
    daemon_stopping();
    log_info("stopping");
    shutdown_state();
    return fl.exit_code;
}
