/* SPDX-License-Identifier: ISC */
/*
 * listen.c - the milter's listening socket: our socket specification
 * (sockspec.h) written in libmilter's connection syntax, and what must be
 * done to the socket libmilter created before we drop root.
 *
 * libmilter owns the listening socket and does not set TCP_NODELAY on the
 * connections it accepts. Without it, a modification (smfi_delrcpt) sent
 * just before the final reply waits for the peer's delayed ACK (~40 ms per
 * message, see MTA-NOTES "Nagle"). On Linux an accepted TCP socket
 * inherits TCP_NODELAY from its listener, so listen_setup finds
 * libmilter's listener among our descriptors (a listening stream socket
 * bound to the configured port) and sets the option there.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "milter.h"
#include "util.h"

#define LISTEN_FD_SCAN 1024      /* descriptors searched for libmilter's listener */

/* dual_stack - true if an IPv6 socket takes IPv4 too unless told
 * otherwise (the kernel has IPv6, net.ipv6.bindv6only = 0): libmilter's
 * inet6 listener on :: is then dual-stack (it never sets IPV6_V6ONLY). */
static bool
dual_stack(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), v6only = 1;
    socklen_t len = sizeof(v6only);

    if (fd < 0)
        return false;
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) < 0)
        v6only = 1;
    close(fd);
    return v6only == 0;
}

int
listen_conn_string(const struct sockspec *spec, char *buf, size_t size)
{
    bool any = spec->host[0] == '\0' || strcmp(spec->host, "*") == 0;

    if (spec->kind == SOCKSPEC_UNIX)
        return str_printf(buf, size, "unix:%s", spec->path);
    if (spec->ipv6_literal)
        return strcmp(spec->host, "::") == 0
            ? str_printf(buf, size, "inet6:%u", spec->port)
            : str_printf(buf, size, "inet6:%u@%s", spec->port, spec->host);
    if (any)    /* "*": IPv4 and IPv6 where the kernel allows one socket for both */
        return str_printf(buf, size, "%s:%u", dual_stack() ? "inet6" : "inet", spec->port);
    return str_printf(buf, size, "inet:%u@%s", spec->port, spec->host);
}

/* is_listener - fd is a listening TCP socket bound to port. */
static bool
is_listener(int fd, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int on = 0;
    socklen_t olen = sizeof(on);

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) < 0 || !on)
        return false;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port) == port;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == port;
    return false;
}

/* set_nodelay - on libmilter's inet listener. */
static int
set_nodelay(const struct sockspec *spec, struct errbuf *err)
{
    int fd, on = 1;

    for (fd = 0; fd < LISTEN_FD_SCAN; fd++) {
        if (!is_listener(fd, spec->port))
            continue;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0) {
            errbuf_set_errno(err, "setsockopt TCP_NODELAY on port %u", spec->port);
            return -1;
        }
        return 0;
    }
    errbuf_set(err, "cannot find the listening socket for port %u", spec->port);
    return -1;
}

int
listen_setup(const struct sockspec *spec, struct errbuf *err)
{
    mode_t mode;

    if (spec->kind == SOCKSPEC_INET)
        return set_nodelay(spec, err);
    mode = spec->mode_set ? spec->mode : 0600;
    if (chmod(spec->path, mode) < 0) {
        errbuf_set_errno(err, "chmod %s to %04o", spec->path, (unsigned)mode);
        return -1;
    }
    return 0;
}
