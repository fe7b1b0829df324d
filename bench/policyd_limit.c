/* SPDX-License-Identifier: ISC */
/*
 * policyd_limit.c - the upper bound for bench/policyd.sh: a minimal
 * single-threaded epoll server that answers "action=DUNNO" to every
 * policy request (anything ending in an empty line), without parsing,
 * deciding or logging. It is what the kernel, loopback and one event loop
 * allow; it is NOT a product and NOT a policy server: never point Postfix
 * at it.
 *
 *   policyd_limit HOST:PORT
 *
 * SECURITY: benchmark only; binds where told (use loopback). Input is
 * only scanned for "\n\n"; a connection whose pending request exceeds
 * BUF_MAX is closed.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static void die(const char *what) __attribute__((noreturn));

#define BUF_MAX      16384      /* bytes of one pending request */
#define EVENTS_MAX   256

static const char reply[] = "action=DUNNO\n\n";

struct conn {
    int fd;
    size_t len;
    char buf[BUF_MAX];
};

static void
die(const char *what)
{
    fprintf(stderr, "policyd_limit: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int
listen_on(const char *spec)
{
    char host[256], *port;
    struct addrinfo hints, *res = NULL;
    int fd, on = 1;

    if (str_copy(host, sizeof(host), spec) < 0 || (port = strrchr(host, ':')) == NULL) {
        fprintf(stderr, "usage: policyd_limit HOST:PORT\n");
        exit(2);
    }
    *port++ = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        fprintf(stderr, "policyd_limit: cannot resolve %s\n", spec);
        exit(1);
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        die("setsockopt");
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0)
        die(spec);
    freeaddrinfo(res);
    return fd;
}

static void
close_conn(struct conn *c)
{
    close(c->fd);
    x_free(c);
}

static void
accept_all(int ep, int lfd)
{
    struct epoll_event ev;
    struct conn *c;
    int fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if ((c = x_calloc(1, sizeof(*c))) == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            close_conn(c);
    }
    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        die("accept");
}

/* serve - read what is there, answer every complete request; -1 to close */

static int
serve(struct conn *c)
{
    size_t off;
    char *p;
    ssize_t n;

    for (;;) {
        if ((n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len)) < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 && errno == EINTR ? 0 : -1;
        c->len += (size_t)n;
        for (off = 0; (p = memmem(c->buf + off, c->len - off, "\n\n", 2)) != NULL;
             off = (size_t)(p - c->buf) + 2)
            if (fd_write_all(c->fd, reply, sizeof(reply) - 1) < 0)
                return -1;
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
        if (c->len == sizeof(c->buf))
            return -1;
    }
}

int
main(int argc, char **argv)
{
    struct epoll_event ev, evs[EVENTS_MAX];
    int ep, lfd, n, i;

    if (argc != 2) {
        fprintf(stderr, "usage: policyd_limit HOST:PORT\n");
        return 2;
    }
    lfd = listen_on(argv[1]);
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    for (;;) {
        if ((n = epoll_wait(ep, evs, EVENTS_MAX, -1)) < 0 && errno != EINTR)
            die("epoll_wait");
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                accept_all(ep, lfd);
            else if (serve(evs[i].data.ptr) < 0)
                close_conn(evs[i].data.ptr);
        }
    }
}
