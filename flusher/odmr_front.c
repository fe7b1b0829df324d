/* SPDX-License-Identifier: ISC */
/*
 * odmr_front.c - the ODMR front process (see odmr.h, odmr_front.h). Owns
 * the listening sockets, the server TLS context, its own epoll
 * descriptor, the table of session processes (pid, status pipe, address,
 * whether it has authenticated, when it started) and a direct-mapped
 * table of addresses the broker told it to refuse (keyed by a seeded
 * hash: a collision refuses an innocent address early, for the rest of
 * the guilty one's block, never lets a blocked one in).
 *
 * SECURITY: runs as odmr.user, never root and never the spool's owner,
 * with no new privileges and, where the kernel has Landlock, no access to
 * any file and no TCP bind or connect (confine): it and its sessions
 * cannot read the spool, the customer table or the grants, whatever a
 * client makes them do. It holds the TLS key (in memory). A connection is
 * checked against the refused addresses, max_sessions and
 * max_sessions_per_address before a session process is forked; when
 * max_preauth_sessions sessions have not authenticated, the oldest of
 * them is closed to make room (so idle strangers cannot lock a customer
 * out; each of them has preauth_timeout at most anyway). Refusals are
 * logged with the address, at most once per ODMR_WARN_INTERVAL (the rest
 * are counted in the next warning), so a flood cannot flood the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "daemon.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "netio.h"
#include "odmr.h"
#include "odmr_chan.h"
#include "odmr_front.h"
#include "odmr_session.h"
#include "privs.h"
#include "units.h"

#define TAG_LISTENER    (1ull << 63)
#define TAG_CHAN        (1ull << 62)
#define TAG_SIGNAL      (1ull << 61)
#define TAG_INDEX       (~(TAG_LISTENER | TAG_CHAN | TAG_SIGNAL))
#define STATUS_MAX      32          /* a session's status line */
#define ACCEPT_BATCH    64

struct fsess {
    pid_t pid;                      /* 0: free */
    int status_fd;
    struct ipaddr addr;
    bool authed;                    /* said AUTHOK */
    bool evicted;                   /* told to go; no longer counted */
    int64_t started;                /* CLOCK_MONOTONIC ms: the oldest is evicted first */
    char buf[STATUS_MAX];
    size_t len;
};

struct blocked {
    struct ipaddr addr;
    time_t until;                   /* 0: unused */
};

struct front {
    const struct config *cfg;
    const struct config_odmr *oc;
    SSL_CTX *tls;
    int chan, epfd;
    const int *lfd;
    size_t nlfd;
    struct fsess *sess;             /* 2 x max_sessions: evicted ones wait to be reaped */
    size_t nslots, live, preauth;
    uint64_t seed;
    struct blocked *blocks;         /* ODMR_FAIL_SLOTS */
    time_t warn_next;
    unsigned long suppressed;
};

/* --- start: identity, confinement --- */

/* fail - tell the broker why the front cannot run, and go */
static void __attribute__((noreturn))
fail(struct front *f, const char *what, const char *why)
{
    struct ctl_msg m;
    char text[ERRBUF_SIZE + 64];

    (void)str_printf(text, sizeof(text), "%s: %s", what, why);
    if (ctl_reply_err(&m, "start", text) == 0)
        (void)odmr_chan_send(f->chan, &m, -1, NULL);
    _exit(1);
}

/* Landlock (linux/landlock.h of newer kernels than the build host's may
 * name more rights; these are the values of the kernel's ABI). */
#define LL_FS_ABI1   ((1ull << 13) - 1)     /* execute .. make_sym */
#define LL_FS_REFER  (1ull << 13)           /* ABI 2 */
#define LL_FS_TRUNC  (1ull << 14)           /* ABI 3 */
#define LL_FS_IOCTL  (1ull << 15)           /* ABI 5 */
#define LL_NET_TCP   3ull                   /* ABI 4: bind_tcp, connect_tcp */

struct ll_ruleset {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
};

/* landlock - deny every file access and TCP bind/connect from now on;
 * 1 done, 0 the kernel has no Landlock, 2 a seccomp filter forbids it
 * (EPERM: a unit without landlock_* in SystemCallFilter), -1 error */
static int
landlock(void)
{
    struct ll_ruleset ra = {0};
    long abi, rfd;
    size_t size;

    abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : errno == EPERM ? 2 : -1;
    ra.handled_access_fs = LL_FS_ABI1 | (abi >= 2 ? LL_FS_REFER : 0) |
                           (abi >= 3 ? LL_FS_TRUNC : 0) | (abi >= 5 ? LL_FS_IOCTL : 0);
    ra.handled_access_net = abi >= 4 ? LL_NET_TCP : 0;
    size = abi >= 4 ? sizeof(ra) : sizeof(ra.handled_access_fs);
    if ((rfd = syscall(SYS_landlock_create_ruleset, &ra, size, 0)) < 0)
        return -1;
    if (syscall(SYS_landlock_restrict_self, (int)rfd, 0) < 0) {
        (void)close((int)rfd);
        return -1;
    }
    (void)close((int)rfd);
    return 1;
}

static void
confine(struct front *f)
{
    struct errbuf err;
    int rc;

    if (privs_drop(f->oc->user, "", &err) < 0)
        fail(f, "cannot drop privileges", err.msg);
    tzset();                                   /* before /etc/localtime is out of reach */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
        fail(f, "prctl", strerror(errno));
    if ((rc = landlock()) < 0)
        fail(f, "Landlock", strerror(errno));
    if (rc == 1)
        log_info("odmr: front process %d runs as %s, confined by Landlock (no file access, no "
                 "TCP bind or connect)", (int)getpid(), f->oc->user);
    else
        log_warnx("odmr: front process %d runs as %s, without Landlock (%s): confined by its "
                  "user only", (int)getpid(), f->oc->user,
                  rc == 0 ? "the kernel has none" : "forbidden by a seccomp filter");
}

/* --- refused addresses (from the broker) --- */

static struct blocked *
block_slot(struct front *f, const struct ipaddr *a)
{
    return &f->blocks[ipaddr_hash(a, f->seed) & (ODMR_FAIL_SLOTS - 1)];
}

static bool
blocked(struct front *f, const struct ipaddr *a, time_t now)
{
    return now < block_slot(f, a)->until;
}

/* chan_event - BLOCK messages; -1 when the broker is gone */
static int
chan_event(struct front *f)
{
    const char *ip, *until, *e;
    struct blocked *b;
    struct errbuf err;
    struct ctl_msg m;
    struct ipaddr a;
    uint64_t u;
    int rc;

    for (;;) {
        if ((rc = odmr_chan_recv(f->chan, &m, NULL, &err)) == 0)
            return -1;
        if (rc < 0)
            return errno == EAGAIN ? 0 : -1;
        ip = ctl_msg_get(&m, "ip");
        until = ctl_msg_get(&m, "until");
        if (strcmp(m.verb, "BLOCK") != 0 || ip == NULL || until == NULL
            || ipaddr_parse(ip, &a, &e) < 0 || units_parse_uint(until, INT64_MAX, &u, &e) < 0)
            continue;
        b = block_slot(f, &a);
        if ((time_t)u > b->until) {
            b->addr = a;
            b->until = (time_t)u;
        }
    }
}

/* --- sessions --- */

/* refuse - one 421 line, without blocking, and close; logged (limited) */
static void
refuse(struct front *f, int fd, const char *peer, const char *line, const char *why, time_t now)
{
    (void)send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)close(fd);
    metrics_inc(METRIC_ODMR_REFUSED, 0);   /* the shared mapping: see odmr_front_run */
    if (now < f->warn_next) {
        f->suppressed++;
        return;
    }
    if (f->suppressed > 0)
        log_warnx("odmr: client=%s: refused: %s (and %lu more refused since the previous "
                  "warning)", peer, why, f->suppressed);
    else
        log_warnx("odmr: client=%s: refused: %s", peer, why);
    f->suppressed = 0;
    f->warn_next = now + ODMR_WARN_INTERVAL;
}

static size_t
sessions_from(const struct front *f, const struct ipaddr *a)
{
    size_t i, n = 0;

    for (i = 0; i < f->nslots; i++)
        n += f->sess[i].pid != 0 && !f->sess[i].evicted && ipaddr_equal(&f->sess[i].addr, a);
    return n;
}

static struct fsess *
free_slot(struct front *f)
{
    size_t i;

    for (i = 0; i < f->nslots; i++)
        if (f->sess[i].pid == 0)
            return &f->sess[i];
    return NULL;
}

/* evict - close the oldest session that has not authenticated (SIGTERM:
 * it says 421 and goes) to make room for a new connection */
static void
evict(struct front *f)
{
    struct fsess *old = NULL;
    char ip[IPADDR_TEXT_MAX];
    size_t i;

    for (i = 0; i < f->nslots; i++) {
        struct fsess *s = &f->sess[i];

        if (s->pid != 0 && !s->authed && !s->evicted && (old == NULL || s->started < old->started))
            old = s;
    }
    if (old == NULL)
        return;
    if (kill(old->pid, SIGUSR1) < 0)          /* SIGUSR1: "421 ... unauthenticated" */
        log_warn("odmr: kill %d", (int)old->pid);
    old->evicted = true;
    f->live--;
    f->preauth--;
    log_info("odmr: client=[%s]: session %d closed before AUTH to make room "
             "(max_preauth_sessions %llu reached)", ipaddr_format(&old->addr, ip, sizeof(ip)),
             (int)old->pid, (unsigned long long)f->oc->max_preauth_sessions);
}

/* session_child - in the new process: the session's life */
static void __attribute__((noreturn))
session_child(struct front *f, int fd, int bfd, int sfd, const char *peer)
{
    struct odmr_session_args a;

    memset(&a, 0, sizeof(a));
    a.cfg = f->cfg;
    a.tls = f->tls;
    a.fd = fd;
    a.broker_fd = bfd;
    a.status_fd = sfd;
    (void)str_copy(a.peer, sizeof(a.peer), peer);
    odmr_session(&a);
}

/* announce - the broker learns of the session (its end of the channel) */
static int
announce(struct front *f, int bfd, const struct ipaddr *a, const char *peer)
{
    char ip[IPADDR_TEXT_MAX];
    struct errbuf err;
    struct ctl_msg m;

    if (ctl_msg_init(&m, "SESSION") < 0 || ctl_msg_add(&m, "ip", ipaddr_format(a, ip, sizeof(ip))) < 0
        || ctl_msg_add(&m, "peer", peer) < 0 || odmr_chan_send(f->chan, &m, bfd, &err) < 0) {
        log_warnx("odmr: client=%s: cannot hand the session to the broker", peer);
        return -1;
    }
    return 0;
}

/* start - fork the session for fd into slot s */
static void
start(struct front *f, struct fsess *s, int fd, const struct ipaddr *a, const char *peer)
{
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = (uint64_t)(s - f->sess)};
    int bc[2], st[2] = {-1, -1};
    pid_t pid;

    if (odmr_chan_pair(bc) < 0 || pipe2(st, O_CLOEXEC) < 0 || announce(f, bc[0], a, peer) < 0) {
        log_warn("odmr: client=%s: session set-up", peer);
        goto out;
    }
    if ((pid = fork()) < 0) {
        log_warn("odmr: client=%s: fork", peer);
        goto out;
    }
    if (pid == 0)
        session_child(f, fd, bc[1], st[1], peer);
    if (fd_set_nonblock(st[0]) < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, st[0], &ee) < 0) {
        log_warn("odmr: client=%s: status pipe of session %d", peer, (int)pid);
        (void)close(st[0]);
        st[0] = -1;
    }
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->status_fd = st[0];
    s->addr = *a;
    s->started = netio_now_ms();
    st[0] = -1;
    f->live++;
    f->preauth++;
    log_info("odmr: client=%s: connected (session %d)", peer, (int)pid);
out:
    (void)close(fd);
    if (bc[0] >= 0) {
        (void)close(bc[0]);
        (void)close(bc[1]);
    }
    if (st[0] >= 0)
        (void)close(st[0]);
    if (st[1] >= 0)
        (void)close(st[1]);
}

static void
accept_one(struct front *f, int fd, const struct sockaddr_storage *ss, time_t now)
{
    char ip[IPADDR_TEXT_MAX], peer[ODMR_PEER_MAX];
    struct fsess *s;
    struct ipaddr a;
    unsigned port;

    if (ipaddr_from_sockaddr((const struct sockaddr *)ss, &a) < 0) {
        (void)close(fd);
        return;
    }
    port = ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    (void)str_printf(peer, sizeof(peer), "[%s]:%u", ipaddr_format(&a, ip, sizeof(ip)), port);
    if (blocked(f, &a, now)) {
        refuse(f, fd, peer, "421 4.7.0 Too many failed authentications from your address, "
               "try again later\r\n", "too many failed AUTH attempts from this address", now);
        return;
    }
    if (sessions_from(f, &a) >= f->oc->max_sessions_per_address) {
        refuse(f, fd, peer, "421 4.7.0 Too many connections from your address, try again "
               "later\r\n", "max_sessions_per_address reached", now);
        return;
    }
    if (f->preauth >= f->oc->max_preauth_sessions)
        evict(f);
    if (f->live >= f->oc->max_sessions || (s = free_slot(f)) == NULL)
        refuse(f, fd, peer, "421 4.3.2 Too many connections, try again later\r\n",
               "max_sessions reached", now);
    else
        start(f, s, fd, &a, peer);
}

static void
accept_all(struct front *f, int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int i, fd;

    (void)chan_event(f);               /* a BLOCK sent before this connect counts */
    for (i = 0; i < ACCEPT_BATCH; i++) {
        len = sizeof(ss);
        if ((fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC)) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("odmr: accept");
            return;
        }
        accept_one(f, fd, &ss, time(NULL));
    }
}

static void
reap(struct front *f, struct fsess *s)
{
    int st = 0;

    if (s->status_fd >= 0) {
        (void)epoll_ctl(f->epfd, EPOLL_CTL_DEL, s->status_fd, NULL);
        (void)close(s->status_fd);
    }
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st) && !(s->evicted && WTERMSIG(st) == SIGTERM))
        log_warnx("odmr: session %d ended by signal %d", (int)s->pid, WTERMSIG(st));
    if (!s->evicted) {
        f->live--;
        if (!s->authed)
            f->preauth--;
    }
    s->pid = 0;
    s->status_fd = -1;
}

/* status - a session's lines ("AUTHOK"); EOF = it ended */
static void
status(struct front *f, struct fsess *s)
{
    ssize_t n;
    char *lf;

    for (;;) {
        n = read(s->status_fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            reap(f, s);
            return;
        }
        s->len += (size_t)n;
        while ((lf = memchr(s->buf, '\n', s->len)) != NULL) {
            *lf = '\0';
            if (strcmp(s->buf, "AUTHOK") == 0 && !s->authed) {
                s->authed = true;
                if (!s->evicted)
                    f->preauth--;
            }
            s->len -= (size_t)(lf + 1 - s->buf);
            memmove(s->buf, lf + 1, s->len);
        }
        if (s->len == sizeof(s->buf))
            s->len = 0;                      /* not ours to understand: drop it */
    }
}

/* --- the loop --- */

static void
watch(struct front *f)
{
    struct epoll_event ee = {.events = EPOLLIN};
    size_t i;

    if ((f->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || daemon_signals_init() < 0
        || fd_set_nonblock(f->chan) < 0)
        fail(f, "set-up", strerror(errno));
    for (i = 0; i < f->nlfd; i++) {
        ee.data.u64 = TAG_LISTENER | i;
        if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd[i], &ee) < 0)
            fail(f, "epoll_ctl", strerror(errno));
    }
    ee.data.u64 = TAG_CHAN;
    if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->chan, &ee) < 0)
        fail(f, "epoll_ctl", strerror(errno));
    ee.data.u64 = TAG_SIGNAL;
    if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, daemon_signal_fd(), &ee) < 0)
        fail(f, "epoll_ctl", strerror(errno));
}

static void
loop(struct front *f)
{
    struct epoll_event evs[32];
    uint64_t tag, idx;
    int i, n;

    while (!daemon_stop) {
        if ((n = epoll_wait(f->epfd, evs, (int)ARRAY_LEN(evs), 1000)) < 0) {
            if (errno == EINTR)
                continue;
            log_warn("odmr: front: epoll_wait");
            return;
        }
        for (i = 0; i < n; i++) {
            tag = evs[i].data.u64;
            idx = tag & TAG_INDEX;
            if (tag & TAG_SIGNAL)
                daemon_signal_drain();
            else if (tag & TAG_CHAN) {
                if (chan_event(f) < 0)
                    return;                    /* the broker is gone: so are we */
            } else if (tag & TAG_LISTENER) {
                if (idx < f->nlfd)
                    accept_all(f, f->lfd[idx]);
            } else if (idx < f->nslots && f->sess[idx].pid != 0) {
                status(f, &f->sess[idx]);
            }
        }
    }
}

/* stop - the sessions go with the front (what they did not deliver stays held) */
static void
stop(struct front *f)
{
    size_t i;

    for (i = 0; i < f->nslots; i++)
        if (f->sess[i].pid != 0)
            (void)kill(f->sess[i].pid, SIGTERM);
    for (i = 0; i < f->nslots; i++)
        if (f->sess[i].pid != 0)
            reap(f, &f->sess[i]);
}

/* keep_own - close every descriptor inherited from the daemon but the
 * front's own (the control socket, the Hello and metrics listeners are
 * not its business); the metrics mapping stays: the front counts refused
 * connections into it */
static void
keep_own(struct front *f)
{
    int keep[CONFIG_LISTEN_MAX + 1];
    size_t i, n = 0;

    keep[n++] = f->chan;
    for (i = 0; i < f->nlfd && i < CONFIG_LISTEN_MAX; i++)
        keep[n++] = f->lfd[i];
    fd_close_except(keep, n);
    config_apply_logging(f->cfg, DELIVER_PROG);   /* the syslog socket was closed */
}

void
odmr_front_run(const struct odmr_front_args *a)
{
    static const char ready[] = "READY";
    struct front f;
    struct ctl_msg m;

    memset(&f, 0, sizeof(f));
    f.cfg = a->cfg;
    f.oc = &a->cfg->flusher.odmr;
    f.tls = a->tls;
    f.chan = a->chan;
    f.lfd = a->lfd;
    f.nlfd = a->nlfd;
    f.nslots = 2 * (size_t)f.oc->max_sessions;
    keep_own(&f);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() == 1)
        fail(&f, "set-up", "no parent");
    if (getrandom(&f.seed, sizeof(f.seed), GRND_NONBLOCK) != (ssize_t)sizeof(f.seed))
        f.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if ((f.sess = x_calloc(f.nslots, sizeof(*f.sess))) == NULL
        || (f.blocks = x_calloc(ODMR_FAIL_SLOTS, sizeof(*f.blocks))) == NULL)
        fail(&f, "set-up", "out of memory");
    confine(&f);
    watch(&f);
    if (ctl_msg_init(&m, ready) < 0 || odmr_chan_send(f.chan, &m, -1, NULL) < 0)
        _exit(1);
    loop(&f);
    stop(&f);
    _exit(0);
}
