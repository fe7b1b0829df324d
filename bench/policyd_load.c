/* SPDX-License-Identifier: ISC */
/*
 * policyd_load.c - load generator for Postfix policy servers. Owns two
 * things that must agree: the data set (gen: a customer source with N
 * customers and a grant snapshot with M live grants, addresses derived
 * from the index) and the requests sent against it (run: one epoll loop
 * holding C persistent connections, each with one RCPT request in flight,
 * Postfix-like attributes, client_address drawn 40% from registered
 * customer addresses, 30% from granted ones, 30% unknown; recipient 50% in
 * a held domain). Per-request latency is taken from the first byte sent to
 * the end of the reply ("\n\n").
 *
 *   policyd_load gen CUSTOMERS GRANTS DIR
 *       writes DIR/customers (autoturnctl compile source) and DIR/grants
 *       (grant_file snapshot, expiring one day from now)
 *   policyd_load run [-c CONNS] [-d SECONDS] [-n REQUESTS] [-w WARMUP]
 *                    [-C CUSTOMERS] [-G GRANTS] inet:HOST:PORT | unix:PATH
 *       prints one line: conns requests seconds req_per_s p50_ms p99_ms,
 *       (-n: stop after that many measured requests, the same sequence
 *       every time: for counting instructions per request),
 *       and the reply actions seen on stderr; exits 1 when the server
 *       closes a connection (it is erroring, not answering).
 *
 * Address scheme: customer i has 10.(i>>16).(i>>8&255).(i&255) and domain
 * c<i>.example; grant j is 172.(16+(j>>16)).(j>>8&255).(j&255) for user
 * u<j>@c<j>.example; unknown clients are in 198.18.0.0/15.
 *
 * SECURITY: a benchmark tool, run by hand against servers we started; the
 * replies are bounded (REPLY_MAX) and only scanned for the terminator.
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void die(const char *what) __attribute__((noreturn));
static void diex(const char *what) __attribute__((noreturn));

#define CONNS_MAX     1024
#define POOL_SIZE     8192          /* distinct requests, picked at random */
#define REQUEST_MAX   2048
#define REPLY_MAX     1024
#define ACTIONS_MAX   16            /* distinct action words counted */
#define ACTION_MAX    40

struct conn {
    int fd;
    const char *req;                /* request in flight */
    size_t reqlen, sent;
    char reply[REPLY_MAX];
    size_t got;
    uint64_t start_ns;
};

struct action_count {
    char word[ACTION_MAX];
    unsigned long n;
};

struct load {
    char *pool[POOL_SIZE];
    size_t poollen[POOL_SIZE];
    struct conn conns[CONNS_MAX];
    size_t nconns;
    uint64_t *lat;                  /* ns, one per measured request */
    size_t nlat, latsize;
    uint64_t rng;
    bool measuring;
    struct action_count actions[ACTIONS_MAX];
};

static void
die(const char *what)
{
    fprintf(stderr, "policyd_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
diex(const char *what)
{
    fprintf(stderr, "policyd_load: %s\n", what);
    exit(1);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        die("clock_gettime");
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
rnd(struct load *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static void
customer_addr(unsigned long i, char *buf, size_t size)
{
    if (str_printf(buf, size, "10.%lu.%lu.%lu", i >> 16, (i >> 8) & 255, i & 255) < 0)
        diex("address too long");
}

static void
grant_addr(unsigned long j, char *buf, size_t size)
{
    if (str_printf(buf, size, "172.%lu.%lu.%lu", 16 + (j >> 16), (j >> 8) & 255, j & 255) < 0)
        diex("address too long");
}

/* --- gen --- */

static void
gen_customers(const char *path, unsigned long n)
{
    char addr[64];
    FILE *fp = fopen(path, "w");
    unsigned long i;

    if (fp == NULL)
        die(path);
    for (i = 0; i < n; i++) {
        customer_addr(i, addr, sizeof(addr));
        fprintf(fp, "customer c%lu\n  domain c%lu.example\n  address %s\n  relay yes\n",
                i, i, addr);
    }
    if (fclose(fp) != 0)
        die(path);
}

static void
gen_grants(const char *path, unsigned long n, unsigned long ncust)
{
    char addr[64];
    FILE *fp = fopen(path, "w");
    long long expires = (long long)time(NULL) + 86400;
    unsigned long j;

    if (fp == NULL)
        die(path);
    for (j = 0; j < n; j++) {
        grant_addr(j, addr, sizeof(addr));
        fprintf(fp, "GRANT ip=%s user=u%lu@c%lu.example customer=c%lu expires=%lld\n",
                addr, j, j % ncust, j % ncust, expires);
    }
    if (fclose(fp) != 0)
        die(path);
}

static int
cmd_gen(int argc, char **argv)
{
    char path[4096];
    unsigned long ncust, ngrants;

    if (argc != 5)
        return 2;
    ncust = strtoul(argv[2], NULL, 10);
    ngrants = strtoul(argv[3], NULL, 10);
    if (ncust == 0 || ncust > 1048576 || ngrants > 1048576)
        diex("gen: 1 <= CUSTOMERS <= 1048576, GRANTS <= 1048576");
    if (path_join(path, sizeof(path), argv[4], "customers") < 0)
        diex("path too long");
    gen_customers(path, ncust);
    if (path_join(path, sizeof(path), argv[4], "grants") < 0)
        diex("path too long");
    gen_grants(path, ngrants, ncust);
    return 0;
}

/* --- requests --- */

static void
pick_client(struct load *l, unsigned long ncust, unsigned long ngrants, char *buf, size_t size)
{
    unsigned long r = (unsigned long)(rnd(l) % 10), x = (unsigned long)(rnd(l) >> 16);

    if (r < 4)
        customer_addr(x % ncust, buf, size);
    else if (r < 7 && ngrants > 0)
        grant_addr(x % ngrants, buf, size);
    else if (str_printf(buf, size, "198.%lu.%lu.%lu", 18 + ((x >> 16) & 1), (x >> 8) & 255,
                        x & 255) < 0)
        diex("address too long");
}

static void
make_request(struct load *l, size_t k, unsigned long ncust, unsigned long ngrants)
{
    char ip[64], rcpt[128], buf[REQUEST_MAX];
    unsigned long x = (unsigned long)(rnd(l) >> 20);
    int n;

    pick_client(l, ncust, ngrants, ip, sizeof(ip));
    if (rnd(l) & 1)
        n = str_printf(rcpt, sizeof(rcpt), "user%lu@c%lu.example", x % 100, x % ncust);
    else
        n = str_printf(rcpt, sizeof(rcpt), "someone%lu@example.net", x % 1000);
    if (n < 0)
        diex("recipient too long");
    n = str_printf(buf, sizeof(buf),
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        "helo_name=mx%lu.sender.example\nqueue_id=%08lX%02lX\n"
        "sender=newsletter%lu@sender.example\nrecipient=%s\nrecipient_count=0\n"
        "client_address=%s\nclient_name=host-%s.isp.example\n"
        "reverse_client_name=host-%s.isp.example\ninstance=%lx.%lx.%lx.0\n"
        "sasl_method=\nsasl_username=\nsasl_sender=\nsize=%lu\nccert_subject=\n"
        "ccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
        "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
        "encryption_keysize=256\netrn_domain=\nstress=\nserver_address=192.0.2.1\n"
        "server_port=25\npolicy_context=\ncompatibility_level=3.6\n"
        "mail_version=3.7.11\nclient_port=%lu\n\n",
        x % 50, x, k & 255, x % 997, rcpt, ip, ip, ip, x & 0xfff, k, x & 0xff,
        1000 + x % 200000, 1024 + x % 60000);
    if (n < 0)
        diex("request too long");
    if ((l->pool[k] = x_strdup(buf)) == NULL)
        die("malloc");
    l->poollen[k] = strlen(buf);
}

/* --- connections --- */

static int
connect_to(const char *spec)
{
    char host[256], *port;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_un sun;
    int fd = -1;

    if (strncmp(spec, "unix:", 5) == 0) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (str_copy(sun.sun_path, sizeof(sun.sun_path), spec + 5) < 0)
            diex("unix socket path too long");
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
            die(spec);
        return fd;
    }
    if (str_copy(host, sizeof(host), strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec) < 0 ||
        (port = strrchr(host, ':')) == NULL)
        diex("address: inet:HOST:PORT or unix:PATH");
    *port++ = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        diex("cannot resolve the server address");
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        die("socket");
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0)
        die(spec);
    freeaddrinfo(res);
    return fd;
}

static void
count_action(struct load *l, const char *reply)
{
    char word[ACTION_MAX] = "(no action=)";
    size_t i, n;

    if (strncmp(reply, "action=", 7) == 0) {
        n = strcspn(reply + 7, " \n");
        n = n < sizeof(word) - 1 ? n : sizeof(word) - 1;
        memcpy(word, reply + 7, n);
        word[n] = '\0';
    }
    for (i = 0; i < ACTIONS_MAX && l->actions[i].word[0] != '\0'; i++)
        if (strcmp(l->actions[i].word, word) == 0)
            break;
    if (i == ACTIONS_MAX)
        return;
    if (l->actions[i].word[0] == '\0' && str_copy(l->actions[i].word, ACTION_MAX, word) < 0)
        return;
    l->actions[i].n++;
}

static void
record(struct load *l, uint64_t ns)
{
    uint64_t *p;

    if (!l->measuring)
        return;
    if (l->nlat == l->latsize) {
        l->latsize = l->latsize ? l->latsize * 2 : 65536;
        if ((p = x_reallocarray(l->lat, l->latsize, sizeof(*p))) == NULL)
            die("malloc");
        l->lat = p;
    }
    l->lat[l->nlat++] = ns;
}

/* send_more - push the rest of the request; 0 done or would block, -1 error */

static int
send_more(struct conn *c)
{
    ssize_t n;

    while (c->sent < c->reqlen) {
        n = send(c->fd, c->req + c->sent, c->reqlen - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        c->sent += (size_t)n;
    }
    return 0;
}

static int
start_request(struct load *l, struct conn *c)
{
    size_t k = (size_t)(rnd(l) % POOL_SIZE);

    c->req = l->pool[k];
    c->reqlen = l->poollen[k];
    c->sent = 0;
    c->got = 0;
    c->start_ns = now_ns();
    /* a request is far smaller than a socket buffer with nothing in flight */
    return send_more(c) < 0 || c->sent != c->reqlen ? -1 : 0;
}

/* on_readable - read the reply; 1 complete, 0 more to come, -1 error */

static int
on_readable(struct load *l, struct conn *c)
{
    ssize_t n;

    for (;;) {
        n = recv(c->fd, c->reply + c->got, sizeof(c->reply) - 1 - c->got, 0);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (c->got += (size_t)n) >= sizeof(c->reply) - 1)
            return -1;
        c->reply[c->got] = '\0';
        if (c->got >= 2 && memcmp(c->reply + c->got - 2, "\n\n", 2) == 0)
            break;
    }
    record(l, now_ns() - c->start_ns);
    if (l->measuring)
        count_action(l, c->reply);
    return 1;
}

static void
open_conns(struct load *l, int ep, const char *spec)
{
    struct epoll_event ev;
    size_t i;

    for (i = 0; i < l->nconns; i++) {
        l->conns[i].fd = connect_to(spec);
        if (fd_set_nonblock(l->conns[i].fd) < 0)
            die("fcntl");
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = &l->conns[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, l->conns[i].fd, &ev) < 0)
            die("epoll_ctl");
        if (start_request(l, &l->conns[i]) < 0)
            die("send");
    }
}

/* drive - run the load; returns the measured seconds */
static double
drive(struct load *l, const char *spec, double warmup, double seconds, size_t max)
{
    struct epoll_event evs[CONNS_MAX];
    uint64_t t0 = now_ns(), t_measure = t0 + (uint64_t)(warmup * 1e9),
             t_end = t_measure + (uint64_t)(seconds * 1e9), t;
    int ep, n, i, rc;

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    open_conns(l, ep, spec);
    while ((t = now_ns()) < t_end && (max == 0 || l->nlat < max)) {
        l->measuring = t >= t_measure;
        if ((n = epoll_wait(ep, evs, CONNS_MAX, 100)) < 0 && errno != EINTR)
            die("epoll_wait");
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if ((rc = on_readable(l, c)) < 0)
                diex("connection closed or reply too long (is the server erroring?)");
            if (rc == 1 && (max == 0 || l->nlat < max) && start_request(l, c) < 0)
                die("send");
        }
    }
    close(ep);
    return t > t_measure ? (double)(t - t_measure) / 1e9 : 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double
pct_ms(const struct load *l, double p)
{
    size_t i;

    if (l->nlat == 0)
        return 0;
    i = (size_t)(p * (double)(l->nlat - 1) + 0.5);
    return (double)l->lat[i] / 1e6;
}

static int
cmd_run(int argc, char **argv)
{
    static struct load l;
    double seconds = 5, warmup = 0.5, took;
    unsigned long ncust = 1000000, ngrants = 100000;
    size_t max = 0;
    size_t k;
    int ch;

    l.nconns = 1;
    l.rng = 0x9e3779b97f4a7c15ull;
    while ((ch = getopt(argc, argv, "c:d:n:w:C:G:")) != -1) {
        switch (ch) {
        case 'c': l.nconns = strtoul(optarg, NULL, 10); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        case 'n': max = strtoul(optarg, NULL, 10); seconds = 86400; break;
        case 'w': warmup = strtod(optarg, NULL); break;
        case 'C': ncust = strtoul(optarg, NULL, 10); break;
        case 'G': ngrants = strtoul(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (optind + 1 != argc || l.nconns < 1 || l.nconns > CONNS_MAX || ncust < 1 || seconds <= 0)
        return 2;
    for (k = 0; k < POOL_SIZE; k++)
        make_request(&l, k, ncust, ngrants);
    took = drive(&l, argv[optind], warmup, seconds, max);
    if (max == 0 || took <= 0)
        took = seconds;
    qsort(l.lat, l.nlat, sizeof(*l.lat), cmp_u64);
    printf("%zu %zu %.2f %.0f %.3f %.3f\n", l.nconns, l.nlat, took,
           (double)l.nlat / took, pct_ms(&l, 0.50), pct_ms(&l, 0.99));
    for (k = 0; k < ACTIONS_MAX && l.actions[k].word[0] != '\0'; k++)
        fprintf(stderr, "policyd_load: action %s: %lu\n", l.actions[k].word, l.actions[k].n);
    return 0;
}

int
main(int argc, char **argv)
{
    int rc = 2;

    if (argc >= 2 && strcmp(argv[1], "gen") == 0)
        rc = cmd_gen(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc - 1, argv + 1);
    if (rc == 2)
        fprintf(stderr, "usage: policyd_load gen CUSTOMERS GRANTS DIR\n"
                        "       policyd_load run [-c CONNS] [-d SECONDS | -n REQUESTS] [-w WARMUP] "
                        "[-C CUSTOMERS] [-G GRANTS] inet:HOST:PORT|unix:PATH\n");
    return rc;
}
