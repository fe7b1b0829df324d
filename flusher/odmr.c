/* SPDX-License-Identifier: ISC */
/*
 * odmr.c - the ODMR listener of autoturn-flusher (see odmr.h). Owns the
 * listening sockets, the server TLS context (certificate and key read
 * before the privilege drop), one internal epoll descriptor, the table of
 * running sessions (pid, status pipe, peer address) and a direct-mapped
 * table of failed AUTH attempts per address (keyed by a seeded hash; a
 * collision can merge two addresses' counts, which only makes the limit
 * stricter for both).
 *
 * SECURITY: anyone who can reach the port may connect. Before a session
 * process is forked the connection is checked against max_sessions,
 * max_sessions_per_address and the address's failed AUTH attempts
 * (address_failures within address_block); a refused connection gets one
 * 421 line written without blocking and is closed. Refusals are logged
 * with the address, at most once per ODMR_WARN_INTERVAL (the rest are
 * counted in the next warning), so a flood cannot flood the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "log.h"
#include "metrics.h"
#include "odmr.h"
#include "odmr_session.h"
#include "sockspec.h"

#define ODMR_BACKLOG    128
#define ODMR_STATUS_MAX 64          /* a session's status line */
#define TAG_LISTENER    (1ull << 63)

struct session_slot {
    pid_t pid;                      /* 0: free */
    int status_fd;
    struct ipaddr addr;
    char buf[ODMR_STATUS_MAX];
    size_t len;
};

struct fail_slot {
    struct ipaddr addr;
    time_t since;                   /* start of the counting window, 0 = unused */
    unsigned long count;
};

struct odmr {
    const struct config *cfg;
    const struct config_odmr *oc;
    struct spool *spool;
    SSL_CTX *tls;                   /* NULL: no STARTTLS */
    int epfd;
    int fd[CONFIG_LISTEN_MAX];
    size_t nfd;
    struct session_slot *sess;      /* max_sessions slots */
    size_t nslots, nsess;
    uint64_t seed;
    struct fail_slot *fails;        /* ODMR_FAIL_SLOTS */
    time_t warn_next;
    unsigned long suppressed;
};

/* --- set-up --- */

static int
tls_context(struct odmr *o, struct errbuf *err)
{
    const char *what = o->oc->tls_cert;
    unsigned long e;

    if (o->oc->tls_cert[0] == '\0')
        return 0;
    if ((o->tls = SSL_CTX_new(TLS_server_method())) == NULL
        || SSL_CTX_set_min_proto_version(o->tls, TLS1_2_VERSION) != 1)
        goto fail;
    SSL_CTX_set_mode(o->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(o->tls, o->oc->tls_cert) != 1)
        goto fail;
    what = o->oc->tls_key;
    if (SSL_CTX_use_PrivateKey_file(o->tls, o->oc->tls_key, SSL_FILETYPE_PEM) != 1)
        goto fail;
    if (SSL_CTX_check_private_key(o->tls) != 1)
        goto fail;
    return 0;
fail:
    e = ERR_get_error();
    errbuf_set(err, "odmr: %s: %s", what,
               e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e)
                                                             : "TLS set-up failed");
    ERR_clear_error();
    return -1;
}

static int
listen_one(struct odmr *o, const struct sockspec *spec, struct errbuf *err)
{
    char text[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 16];
    struct epoll_event ee = {.events = EPOLLIN};
    const char *step = "listen";
    int fd;

    sockspec_format(spec, text, sizeof(text));
    if ((fd = sockspec_listen(spec, ODMR_BACKLOG, &step)) < 0) {
        errbuf_set_errno(err, "odmr: %s: %s", text, step);
        return -1;
    }
    o->fd[o->nfd++] = fd;
    ee.data.u64 = TAG_LISTENER | (o->nfd - 1);
    if (fd_set_nonblock(fd) < 0 || epoll_ctl(o->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        errbuf_set_errno(err, "odmr: %s: set-up", text);
        return -1;
    }
    log_info("odmr: listening on %s%s", text, o->tls != NULL ? " (STARTTLS available)" : "");
    return 0;
}

int
odmr_open(const struct config *cfg, struct odmr **o_r, struct errbuf *err)
{
    struct odmr *o;
    size_t i;

    *o_r = NULL;
    if (!cfg->flusher.odmr.enable)
        return 0;
    if ((o = x_calloc(1, sizeof(*o))) == NULL) {
        errbuf_set(err, "odmr: out of memory");
        return -1;
    }
    o->cfg = cfg;
    o->oc = &cfg->flusher.odmr;
    o->epfd = -1;
    o->nslots = (size_t)o->oc->max_sessions;
    if (getrandom(&o->seed, sizeof(o->seed), GRND_NONBLOCK) != (ssize_t)sizeof(o->seed))
        o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if ((o->sess = x_calloc(o->nslots, sizeof(*o->sess))) == NULL
        || (o->fails = x_calloc(ODMR_FAIL_SLOTS, sizeof(*o->fails))) == NULL) {
        errbuf_set(err, "odmr: out of memory");
        odmr_close(o);
        return -1;
    }
    if ((o->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        errbuf_set_errno(err, "odmr: epoll_create1");
        odmr_close(o);
        return -1;
    }
    if (tls_context(o, err) < 0) {
        odmr_close(o);
        return -1;
    }
    for (i = 0; i < o->oc->listen.count && i < CONFIG_LISTEN_MAX; i++)
        if (listen_one(o, &o->oc->listen.spec[i], err) < 0) {
            odmr_close(o);
            return -1;
        }
    *o_r = o;
    return 0;
}

void
odmr_start(struct odmr *o, struct spool *spool)
{
    if (o != NULL)
        o->spool = spool;
}

int
odmr_poll_fd(const struct odmr *o)
{
    return o != NULL ? o->epfd : -1;
}

size_t
odmr_sessions(const struct odmr *o)
{
    return o != NULL ? o->nsess : 0;
}

/* --- per-address failures --- */

static struct fail_slot *
fail_slot(struct odmr *o, const struct ipaddr *a)
{
    return &o->fails[ipaddr_hash(a, o->seed) & (ODMR_FAIL_SLOTS - 1)];
}

/* fail_count - failures of a in the current window (an expired window
 * is forgotten) */
static unsigned long
fail_count(struct odmr *o, const struct ipaddr *a, time_t now)
{
    struct fail_slot *f = fail_slot(o, a);

    if (f->since == 0 || now >= f->since + (time_t)o->oc->address_block)
        return 0;
    return f->count;
}

static void
fail_add(struct odmr *o, const struct ipaddr *a, time_t now)
{
    struct fail_slot *f = fail_slot(o, a);
    char ip[IPADDR_TEXT_MAX];

    if (f->since == 0 || now >= f->since + (time_t)o->oc->address_block) {
        f->since = now;
        f->count = 0;
    }
    f->addr = *a;
    if (++f->count == o->oc->address_failures)
        log_warnx("odmr: client=[%s]: %lu failed AUTH attempts; this address is refused for "
                  "%llus", ipaddr_format(a, ip, sizeof(ip)), f->count,
                  (unsigned long long)o->oc->address_block);
}

/* --- connections --- */

/* refuse - one 421 line, without blocking, and close; logged (limited) */
static void
refuse(struct odmr *o, int fd, const char *peer, const char *line, const char *why, time_t now)
{
    (void)send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)close(fd);
    metrics_inc(METRIC_ODMR_REFUSED, 0);
    if (now < o->warn_next) {
        o->suppressed++;
        return;
    }
    if (o->suppressed > 0)
        log_warnx("odmr: client=%s: refused: %s (and %lu more refused since the previous "
                  "warning)", peer, why, o->suppressed);
    else
        log_warnx("odmr: client=%s: refused: %s", peer, why);
    o->suppressed = 0;
    o->warn_next = now + ODMR_WARN_INTERVAL;
}

static size_t
sessions_from(const struct odmr *o, const struct ipaddr *a)
{
    size_t i, n = 0;

    for (i = 0; i < o->nslots; i++)
        n += o->sess[i].pid != 0 && ipaddr_equal(&o->sess[i].addr, a);
    return n;
}

static struct session_slot *
free_slot(struct odmr *o)
{
    size_t i;

    for (i = 0; i < o->nslots; i++)
        if (o->sess[i].pid == 0)
            return &o->sess[i];
    return NULL;
}

/* start - fork the session for fd into slot s */
static void
start(struct odmr *o, struct session_slot *s, int fd, const struct ipaddr *a, const char *peer)
{
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = (uint64_t)(s - o->sess)};
    struct odmr_session_args args;
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        log_warn("odmr: client=%s: pipe", peer);
        (void)close(fd);
        return;
    }
    if ((pid = fork()) < 0) {
        log_warn("odmr: client=%s: fork", peer);
        (void)close(p[0]);
        (void)close(p[1]);
        (void)close(fd);
        return;
    }
    if (pid == 0) {
        memset(&args, 0, sizeof(args));
        args.cfg = o->cfg;
        args.spool = o->spool;
        args.tls = o->tls;
        args.fd = fd;
        args.status_fd = p[1];
        (void)str_copy(args.peer, sizeof(args.peer), peer);
        odmr_session(&args);
    }
    (void)close(p[1]);
    (void)close(fd);
    if (fd_set_nonblock(p[0]) < 0 || epoll_ctl(o->epfd, EPOLL_CTL_ADD, p[0], &ee) < 0) {
        log_warn("odmr: client=%s: status pipe of session %d", peer, (int)pid);
        (void)close(p[0]);
        p[0] = -1;                          /* reaped by odmr_close at the latest */
    }
    s->pid = pid;
    s->status_fd = p[0];
    s->addr = *a;
    s->len = 0;
    o->nsess++;
    metrics_inc(METRIC_ODMR_SESSIONS_TOTAL, 0);
    metrics_set(METRIC_ODMR_SESSIONS, 0, (double)o->nsess);
    log_info("odmr: client=%s: connected (session %d)", peer, (int)pid);
}

static void
accept_one(struct odmr *o, int fd, const struct sockaddr_storage *ss, time_t now)
{
    char ip[IPADDR_TEXT_MAX], peer[ODMR_PEER_MAX];
    struct session_slot *s;
    struct ipaddr a;
    unsigned port;

    if (ipaddr_from_sockaddr((const struct sockaddr *)ss, &a) < 0) {
        (void)close(fd);
        return;
    }
    port = ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    (void)str_printf(peer, sizeof(peer), "[%s]:%u", ipaddr_format(&a, ip, sizeof(ip)), port);
    if (fail_count(o, &a, now) >= o->oc->address_failures)
        refuse(o, fd, peer, "421 4.7.0 Too many failed authentications from your address, "
               "try again later\r\n", "too many failed AUTH attempts from this address", now);
    else if ((s = free_slot(o)) == NULL)
        refuse(o, fd, peer, "421 4.3.2 Too many connections, try again later\r\n",
               "max_sessions reached", now);
    else if (sessions_from(o, &a) >= o->oc->max_sessions_per_address)
        refuse(o, fd, peer, "421 4.7.0 Too many connections from your address, try again "
               "later\r\n", "max_sessions_per_address reached", now);
    else
        start(o, s, fd, &a, peer);
}

static void
accept_all(struct odmr *o, int lfd, time_t now)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int i, fd;

    for (i = 0; i < ODMR_ACCEPT_BATCH; i++) {
        len = sizeof(ss);
        if ((fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC)) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("odmr: accept");
            return;
        }
        accept_one(o, fd, &ss, now);
    }
}

/* --- sessions --- */

static void
reap(struct odmr *o, struct session_slot *s)
{
    int st;

    if (s->status_fd >= 0) {
        (void)epoll_ctl(o->epfd, EPOLL_CTL_DEL, s->status_fd, NULL);
        (void)close(s->status_fd);
    }
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st))
        log_warnx("odmr: session %d ended by signal %d", (int)s->pid, WTERMSIG(st));
    s->pid = 0;
    s->status_fd = -1;
    o->nsess--;
    metrics_set(METRIC_ODMR_SESSIONS, 0, (double)o->nsess);
}

/* status - read a session's status lines ("AUTHFAIL"); EOF = it ended */
static void
status(struct odmr *o, struct session_slot *s, time_t now)
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
            reap(o, s);
            return;
        }
        s->len += (size_t)n;
        while ((lf = memchr(s->buf, '\n', s->len)) != NULL) {
            *lf = '\0';
            if (strcmp(s->buf, "AUTHFAIL") == 0) {
                fail_add(o, &s->addr, now);
                metrics_inc(METRIC_ODMR_AUTH_FAILURES, 0);
            }
            s->len -= (size_t)(lf + 1 - s->buf);
            memmove(s->buf, lf + 1, s->len);
        }
        if (s->len == sizeof(s->buf))
            s->len = 0;                      /* not ours to understand: drop it */
    }
}

void
odmr_event(struct odmr *o, time_t now)
{
    struct epoll_event evs[16];
    int i, n;
    uint64_t tag;

    if (o == NULL)
        return;
    if ((n = epoll_wait(o->epfd, evs, (int)ARRAY_LEN(evs), 0)) < 0) {
        if (errno != EINTR)
            log_warn("odmr: epoll_wait");
        return;
    }
    for (i = 0; i < n; i++) {
        tag = evs[i].data.u64;
        if (tag & TAG_LISTENER)
            accept_all(o, o->fd[tag & ~TAG_LISTENER], now);
        else if (tag < o->nslots && o->sess[tag].pid != 0)
            status(o, &o->sess[tag], now);
    }
}

void
odmr_close(struct odmr *o)
{
    size_t i;

    if (o == NULL)
        return;
    for (i = 0; i < o->nslots && o->sess != NULL; i++)
        if (o->sess[i].pid != 0 && kill(o->sess[i].pid, SIGTERM) < 0)
            log_warn("odmr: kill %d", (int)o->sess[i].pid);
    for (i = 0; i < o->nslots && o->sess != NULL; i++)
        if (o->sess[i].pid != 0)
            reap(o, &o->sess[i]);
    for (i = 0; i < o->nfd; i++)
        (void)close(o->fd[i]);
    if (o->epfd >= 0)
        (void)close(o->epfd);
    if (o->tls != NULL)
        SSL_CTX_free(o->tls);
    x_free(o->sess);
    x_free(o->fails);
    x_free(o);
}
