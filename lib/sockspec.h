/* SPDX-License-Identifier: ISC */
/*
 * sockspec.h - socket specifications as written in autoturn.conf, and the
 * code that binds or connects them.
 *
 * Grammar:
 *   unix:/abs/path[:MODE]      MODE octal, e.g. 0660 (default 0600 for
 *                              listeners; ignored when connecting)
 *   inet:HOST:PORT             HOST: IPv4 address, host name, "*" (any)
 *   inet:[IPV6]:PORT           e.g. inet:[::1]:10031, inet:[::]:366
 * PORT is 1..65535. Paths must be absolute and shorter than sun_path.
 *
 * Listening on "*" means every address, IPv4 and IPv6: one dual-stack
 * socket (IPv4 only on a kernel without IPv6). "inet:0.0.0.0:PORT" is
 * IPv4 only, "inet:[::]:PORT" IPv6 only. Connecting to "*" goes to
 * 127.0.0.1.
 */
#ifndef AUTOTURN_SOCKSPEC_H
#define AUTOTURN_SOCKSPEC_H

#include <stdbool.h>
#include <sys/types.h>

#define SOCKSPEC_PATH_MAX 108   /* sizeof(sun_path) */
#define SOCKSPEC_HOST_MAX 256

enum sockspec_kind {
    SOCKSPEC_UNIX,
    SOCKSPEC_INET,
};

struct sockspec {
    enum sockspec_kind kind;
    char path[SOCKSPEC_PATH_MAX];   /* UNIX */
    mode_t mode;                    /* UNIX listener mode */
    bool mode_set;                  /* MODE was given */
    char host[SOCKSPEC_HOST_MAX];   /* INET: "" or "*" means any; no brackets */
    unsigned port;                  /* INET */
    bool ipv6_literal;              /* INET: host was written in [brackets] */
};

/* sockspec_parse - 0, or -1 with *error_r a static text naming the problem. */
int sockspec_parse(const char *text, struct sockspec *spec, const char **error_r);

/* sockspec_format - back to text; returns buf. */
const char *sockspec_format(const struct sockspec *spec, char *buf, size_t size);

/* sockspec_listen - create, bind and listen (SOCK_STREAM, close-on-exec,
 * SO_REUSEADDR, IPV6_V6ONLY for v6 but off for "*", TCP_NODELAY for
 * inet). For UNIX a stale
 * socket file at the path is removed first (anything else there is an
 * error), and the socket is chmod'ed to mode. Returns the fd, or -1 with
 * errno set; *error_r then names the step ("bind", "getaddrinfo", ...). */
int sockspec_listen(const struct sockspec *spec, int backlog, const char **error_r);

/* sockspec_connect - blocking connect with a timeout in milliseconds
 * (0 = none); the returned fd is blocking, close-on-exec. -1 + errno. */
int sockspec_connect(const struct sockspec *spec, int timeout_ms, const char **error_r);

#endif
