/* SPDX-License-Identifier: ISC */
/*
 * hello.c - the Hello port of autoturn-flusher (see hello.h). Owns the
 * Hello listeners, a fixed direct-mapped table of the last trigger per
 * address (keyed by a seeded hash: a collision can cause one extra
 * trigger, never a lost one), the per-second lookup budget and the
 * warning limiter.
 *
 * SECURITY: anyone who can reach the port may connect. A connection is
 * closed before anything else happens; nothing is read or written, so
 * there is no input to parse. The only fact used is the peer's address
 * (from accept), looked up in the customer table: a trigger goes only to
 * the customer that registered it, at most once per address per
 * rate_interval, and at most HELLO_LOOKUPS_PER_SEC connections per second
 * are looked at, so a flood costs accept+close, never a fork per
 * connection (the schedule also keeps one flush per customer).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "hello.h"
#include "log.h"
#include "sockspec.h"
#include "util.h"

#define HELLO_BACKLOG 128

struct hello_slot {
    struct ipaddr addr;
    time_t last;                    /* last trigger, 0 = never */
};

struct hello {
    const struct config_hello *cfg;
    int fd[CONFIG_LISTEN_MAX];
    size_t nfd;
    uint64_t seed;
    struct hello_slot *slots;       /* HELLO_RATE_SLOTS */
    time_t second;                  /* the second lookups counts */
    unsigned lookups;
    time_t warn_next;               /* no warning before this */
    unsigned long suppressed;       /* ignored connections not warned about */
};

/* --- listeners --- */

static int
listen_one(struct hello *h, const struct sockspec *spec, struct errbuf *err)
{
    char text[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 16];
    const char *step = "listen";
    int fd;

    if ((fd = sockspec_listen(spec, HELLO_BACKLOG, &step)) < 0) {
        errbuf_set_errno(err, "hello: %s: %s", sockspec_format(spec, text, sizeof(text)), step);
        return -1;
    }
    h->fd[h->nfd++] = fd;
    if (fd_set_nonblock(fd) < 0) {
        errbuf_set_errno(err, "hello: %s: non-blocking", sockspec_format(spec, text, sizeof(text)));
        return -1;
    }
    log_info("hello: listening on %s", sockspec_format(spec, text, sizeof(text)));
    return 0;
}

int
hello_open(const struct config_hello *cfg, struct hello **h_r, struct errbuf *err)
{
    struct hello *h;
    size_t i;

    *h_r = NULL;
    if (!cfg->enable)
        return 0;
    if ((h = x_calloc(1, sizeof(*h))) == NULL ||
        (h->slots = x_calloc(HELLO_RATE_SLOTS, sizeof(*h->slots))) == NULL) {
        errbuf_set(err, "hello: out of memory");
        x_free(h);
        return -1;
    }
    h->cfg = cfg;
    if (getrandom(&h->seed, sizeof(h->seed), GRND_NONBLOCK) != (ssize_t)sizeof(h->seed))
        h->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (i = 0; i < cfg->listen.count && i < CONFIG_LISTEN_MAX; i++) {
        if (listen_one(h, &cfg->listen.spec[i], err) < 0) {
            hello_close(h);
            return -1;
        }
    }
    *h_r = h;
    return 0;
}

int
hello_fd(const struct hello *h, size_t i)
{
    return h != NULL && i < h->nfd ? h->fd[i] : -1;
}

void
hello_close(struct hello *h)
{
    size_t i;

    if (h == NULL)
        return;
    for (i = 0; i < h->nfd; i++)
        close(h->fd[i]);
    x_free(h->slots);
    x_free(h);
}

/* --- limits --- */

static struct hello_slot *
rate_slot(struct hello *h, const struct ipaddr *a)
{
    return &h->slots[ipaddr_hash(a, h->seed) & (HELLO_RATE_SLOTS - 1)];
}

/* rate_recent - a triggered less than rate_interval ago */
static bool
rate_recent(struct hello *h, const struct ipaddr *a, time_t now)
{
    const struct hello_slot *s = rate_slot(h, a);

    return s->last != 0 && ipaddr_equal(&s->addr, a) &&
           now < s->last + (time_t)h->cfg->rate_interval;
}

static void
rate_mark(struct hello *h, const struct ipaddr *a, time_t now)
{
    struct hello_slot *s = rate_slot(h, a);

    s->addr = *a;
    s->last = now;
}

/* budget_left - one more lookup allowed in this second? */
static bool
budget_left(struct hello *h, time_t now)
{
    if (now != h->second) {
        h->second = now;
        h->lookups = 0;
    }
    return ++h->lookups <= HELLO_LOOKUPS_PER_SEC;
}

/* ignored - warn about an ignored connection, at most once per
 * HELLO_WARN_INTERVAL; the rest are counted and mentioned next time */
static void
ignored(struct hello *h, time_t now, const char *ip, const char *why)
{
    if (now < h->warn_next) {
        h->suppressed++;
        return;
    }
    if (h->suppressed > 0)
        log_warnx("hello from %s: %s; closed (and %lu more ignored since the previous "
                  "warning)", ip, why, h->suppressed);
    else
        log_warnx("hello from %s: %s; closed", ip, why);
    h->suppressed = 0;
    h->warn_next = now + HELLO_WARN_INTERVAL;
}

/* --- connections --- */

/* verdict - what to do about a connection from a: NULL to trigger *c_r,
 * or why it is ignored (in why when formatted) */

static const char *
verdict(struct hello *h, const struct ipaddr *a, struct custdb *db, time_t now,
        struct customer **c_r, char *why, size_t size)
{
    struct errbuf err;
    int rc;

    if (!budget_left(h, now)) {
        (void)str_printf(why, size, "more than %d connections this second",
                         HELLO_LOOKUPS_PER_SEC);
        return why;
    }
    if (rate_recent(h, a, now))
        return "already triggered within rate_interval";
    if ((rc = custdb_lookup_addr(db, a, c_r, NULL, &err)) < 0) {
        (void)str_printf(why, size, "customer table: %s", err.msg);
        return why;
    }
    if (rc == 0)
        return "not a registered address";
    if (!((*c_r)->triggers & TRIGGER_CONNECT)) {
        (void)str_printf(why, size, "registered to %s, whose triggers do not include connect",
                         (*c_r)->name);
        return why;
    }
    return NULL;
}

static void
peer(struct hello *h, const struct ipaddr *a, struct custdb *db, time_t now, hello_flush_fn *fn,
     void *ctx)
{
    char ip[IPADDR_TEXT_MAX], buf[ERRBUF_SIZE + 64];
    struct customer *c = NULL;
    const char *why;

    ipaddr_format(a, ip, sizeof(ip));
    if ((why = verdict(h, a, db, now, &c, buf, sizeof(buf))) != NULL) {
        ignored(h, now, ip, why);
    } else {
        rate_mark(h, a, now);
        log_info("customer=%s: hello from %s: flush requested", c->name, ip);
        fn(ctx, c, ip);
    }
    customer_free(c);
}

void
hello_accept(struct hello *h, int lfd, struct custdb *db, time_t now, hello_flush_fn *fn,
             void *ctx)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct ipaddr a;
    int i, fd;

    for (i = 0; i < HELLO_ACCEPT_BATCH; i++) {
        len = sizeof(ss);
        fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && now >= h->warn_next) {
                log_warn("hello: accept");      /* EMFILE and the like: rate-limited */
                h->warn_next = now + HELLO_WARN_INTERVAL;
            }
            return;
        }
        close(fd);                  /* the whole protocol: never read, never write */
        if (ipaddr_from_sockaddr((struct sockaddr *)&ss, &a) == 0)
            peer(h, &a, db, now, fn, ctx);
    }
}
