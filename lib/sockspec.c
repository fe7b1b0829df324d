/* SPDX-License-Identifier: ISC */
/*
 * sockspec.c - socket specifications ("unix:/run/autoturn/x.sock:0660",
 * "inet:127.0.0.1:10031", "inet:[::1]:366") parsed, printed, bound and
 * connected. Owns no state; the sockets it returns belong to the caller.
 *
 * UNIX MODE: the text after the LAST ':' of a unix: spec is the MODE when
 * it consists of digits only (possibly none); it must then be octal and at
 * most 0777. A path whose last ':' is followed by digits only must be
 * written with an explicit MODE ("unix:/x/a:1:0600").
 *
 * SECURITY: specs come from the configuration file (trusted, but checked
 * strictly). sockspec_listen() removes an existing file at a UNIX path only
 * when it is a socket that nobody listens on (lstat, no symlink followed);
 * anything else there is an error.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "sockspec.h"

#define SOCKSPEC_DEFAULT_MODE 0600
#define SOCKSPEC_PORT_MAX     65535

static const char err_type[] = "unknown socket type (use unix: or inet:)";
static const char err_relative[] = "UNIX socket path must be absolute";
static const char err_path_long[] = "UNIX socket path too long";
static const char err_mode[] = "bad socket mode (octal, e.g. 0660)";
static const char err_no_port[] = "missing port";
static const char err_port[] = "bad port (1-65535)";
static const char err_unterminated[] = "unterminated [IPv6] address";
static const char err_v6[] = "bad IPv6 address";
static const char err_v6_brackets[] = "IPv6 address must be in [brackets]";
static const char err_host_long[] = "host name too long";
static const char err_host[] = "bad host name";

/* all_digits - s[0..len) is ASCII digits only (true for len 0) */
static bool
all_digits(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* parse_mode - octal MODE text of len bytes; NULL or an error */
static const char *
parse_mode(const char *s, size_t len, mode_t *mode_r)
{
    unsigned val = 0;
    size_t i;

    if (len == 0 || len > 4)
        return err_mode;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '7')
            return err_mode;
        val = val * 8 + (unsigned)(s[i] - '0');
    }
    if (val > 0777)
        return err_mode;
    *mode_r = (mode_t)val;
    return NULL;
}

/* parse_unix - "/abs/path[:MODE]" */
static const char *
parse_unix(const char *s, struct sockspec *spec)
{
    const char *colon = strrchr(s, ':');
    size_t plen = strlen(s);
    const char *err;

    spec->kind = SOCKSPEC_UNIX;
    spec->mode = SOCKSPEC_DEFAULT_MODE;
    if (colon != NULL && all_digits(colon + 1, strlen(colon + 1))) {
        if ((err = parse_mode(colon + 1, strlen(colon + 1), &spec->mode)) != NULL)
            return err;
        spec->mode_set = true;
        plen = (size_t)(colon - s);
    }
    if (plen == 0 || s[0] != '/')
        return err_relative;
    if (plen >= sizeof(spec->path))
        return err_path_long;
    memcpy(spec->path, s, plen);
    spec->path[plen] = '\0';
    return NULL;
}

/* parse_port - "1".."65535" */
static const char *
parse_port(const char *s, unsigned *port_r)
{
    unsigned long val = 0;
    size_t len = strlen(s);

    if (len == 0)
        return err_no_port;
    if (len > 5 || !all_digits(s, len))
        return err_port;
    for (; *s; s++)
        val = val * 10 + (unsigned long)(*s - '0');
    if (val < 1 || val > SOCKSPEC_PORT_MAX)
        return err_port;
    *port_r = (unsigned)val;
    return NULL;
}

/* check_host - a name or IPv4 address: letters, digits, '-', '.', '_' */
static const char *
check_host(const char *h, size_t len)
{
    size_t i;

    if (len == 1 && h[0] == '*')
        return NULL;
    for (i = 0; i < len; i++) {
        char c = h[i];

        if (c == ':')
            return err_v6_brackets;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return err_host;
    }
    return NULL;
}

/* parse_v6 - "[addr]:PORT"; *rest_r points at ":PORT" */
static const char *
parse_v6(const char *s, struct sockspec *spec, const char **rest_r)
{
    const char *end = strchr(s, ']');
    struct in6_addr a;
    size_t len;

    if (end == NULL)
        return err_unterminated;
    len = (size_t)(end - s - 1);
    if (len >= sizeof(spec->host) || len >= INET6_ADDRSTRLEN)
        return err_v6;
    memcpy(spec->host, s + 1, len);
    spec->host[len] = '\0';
    if (inet_pton(AF_INET6, spec->host, &a) != 1)
        return err_v6;
    spec->ipv6_literal = true;
    *rest_r = end + 1;
    return NULL;
}

/* parse_inet - "HOST:PORT" or "[V6]:PORT" */
static const char *
parse_inet(const char *s, struct sockspec *spec)
{
    const char *rest, *colon, *err;
    size_t len;

    spec->kind = SOCKSPEC_INET;
    if (*s == '[') {
        if ((err = parse_v6(s, spec, &rest)) != NULL)
            return err;
        if (*rest != ':')
            return err_no_port;
        return parse_port(rest + 1, &spec->port);
    }
    if ((colon = strrchr(s, ':')) == NULL)
        return err_no_port;
    len = (size_t)(colon - s);
    if (len >= sizeof(spec->host))
        return err_host_long;
    if ((err = check_host(s, len)) != NULL)
        return err;
    memcpy(spec->host, s, len);
    spec->host[len] = '\0';
    return parse_port(colon + 1, &spec->port);
}

int
sockspec_parse(const char *text, struct sockspec *spec, const char **error_r)
{
    const char *err;

    memset(spec, 0, sizeof(*spec));
    if (strncmp(text, "unix:", 5) == 0)
        err = parse_unix(text + 5, spec);
    else if (strncmp(text, "inet:", 5) == 0)
        err = parse_inet(text + 5, spec);
    else
        err = err_type;
    if (err != NULL) {
        if (error_r != NULL)
            *error_r = err;
        return -1;
    }
    return 0;
}

const char *
sockspec_format(const struct sockspec *spec, char *buf, size_t size)
{
    const char *host = spec->host[0] != '\0' ? spec->host : "*";
    int rc;

    if (spec->kind == SOCKSPEC_UNIX && spec->mode_set)
        rc = str_printf(buf, size, "unix:%s:%04o", spec->path, (unsigned)spec->mode);
    else if (spec->kind == SOCKSPEC_UNIX)
        rc = str_printf(buf, size, "unix:%s", spec->path);
    else if (spec->ipv6_literal)
        rc = str_printf(buf, size, "inet:[%s]:%u", spec->host, spec->port);
    else
        rc = str_printf(buf, size, "inet:%s:%u", host, spec->port);
    (void)rc;               /* a truncated text is still a safe prefix */
    return buf;
}

/* fail - remember the step, keep errno, close fd; always -1 */
static int
fail(int fd, const char *step, const char **error_r)
{
    int saved = errno;

    if (fd >= 0)
        close(fd);
    if (error_r != NULL)
        *error_r = step;
    errno = saved;
    return -1;
}

/* unix_addr - fill sun from the spec */
static socklen_t
unix_addr(const struct sockspec *spec, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    (void)str_copy(sun->sun_path, sizeof(sun->sun_path), spec->path);  /* parse checked the length */
    return (socklen_t)sizeof(*sun);
}

/* unix_in_use - 1 if someone accepts connections on path, else 0 */
static int
unix_in_use(const struct sockspec *spec)
{
    struct sockaddr_un sun;
    socklen_t len = unix_addr(spec, &sun);
    int fd, rc;

    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    rc = connect(fd, (struct sockaddr *)&sun, len);
    close(fd);
    return rc == 0;
}

/* unix_remove_stale - remove a dead socket at the path; anything else: -1 */
static int
unix_remove_stale(const struct sockspec *spec, const char **error_r)
{
    struct stat st;

    if (lstat(spec->path, &st) < 0)
        return errno == ENOENT ? 0 : fail(-1, "lstat", error_r);
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return fail(-1, "existing file is not a socket", error_r);
    }
    if (unix_in_use(spec)) {
        errno = EADDRINUSE;
        return fail(-1, "another process listens on the socket", error_r);
    }
    if (unlink(spec->path) < 0 && errno != ENOENT)
        return fail(-1, "unlink", error_r);
    return 0;
}

/* listen_unix - the UNIX half of sockspec_listen */
static int
listen_unix(const struct sockspec *spec, int backlog, const char **error_r)
{
    struct sockaddr_un sun;
    socklen_t len = unix_addr(spec, &sun);
    mode_t old_mask;
    int fd, rc;

    if (unix_remove_stale(spec, error_r) < 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail(-1, "socket", error_r);
    old_mask = umask(0177);         /* no window with a wider mode (start-up only) */
    rc = bind(fd, (struct sockaddr *)&sun, len);
    (void)umask(old_mask);
    if (rc < 0)
        return fail(fd, "bind", error_r);
    if (chmod(spec->path, spec->mode) < 0)
        return fail(fd, "chmod", error_r);
    if (listen(fd, backlog) < 0)
        return fail(fd, "listen", error_r);
    return fd;
}

/* gai_fail - map a getaddrinfo error to errno and fail */
static int
gai_fail(int rc, const char **error_r)
{
    if (rc == EAI_SYSTEM)
        return fail(-1, "getaddrinfo", error_r);
    errno = (rc == EAI_AGAIN) ? EAGAIN : (rc == EAI_MEMORY) ? ENOMEM : EADDRNOTAVAIL;
    return fail(-1, "getaddrinfo", error_r);
}

/* resolve - getaddrinfo for the spec; passive for listeners */
static int
resolve(const struct sockspec *spec, bool passive, struct addrinfo **res_r, const char **error_r)
{
    bool any = spec->host[0] == '\0' || strcmp(spec->host, "*") == 0;
    struct addrinfo hints;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    hints.ai_family = spec->ipv6_literal ? AF_INET6 : any ? AF_INET : AF_UNSPEC;
    if (spec->ipv6_literal)
        hints.ai_flags |= AI_NUMERICHOST;
    (void)str_printf(port, sizeof(port), "%u", spec->port);  /* <= 5 digits */
    rc = getaddrinfo(any ? NULL : spec->host, port, &hints, res_r);
    return rc == 0 ? 0 : gai_fail(rc, error_r);
}

/* inet_options - SO_REUSEADDR, IPV6_V6ONLY (on, or off for a dual-stack
 * socket), TCP_NODELAY; NULL or the step */
static const char *
inet_options(int fd, int family, bool dual)
{
    int on = 1, v6only = !dual;

    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        return "setsockopt SO_REUSEADDR";
    if (family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
        return "setsockopt IPV6_V6ONLY";
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0)
        return "setsockopt TCP_NODELAY";
    return NULL;
}

/* listen_addr - socket, options, bind, listen for one address */
static int
listen_addr(const struct sockaddr *sa, socklen_t len, bool dual, int backlog,
            const char **error_r)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const char *step;

    if (fd < 0)
        return fail(-1, "socket", error_r);
    if ((step = inet_options(fd, sa->sa_family, dual)) != NULL)
        return fail(fd, step, error_r);
    if (bind(fd, sa, len) < 0)
        return fail(fd, "bind", error_r);
    if (listen(fd, backlog) < 0)
        return fail(fd, "listen", error_r);
    return fd;
}

/* listen_one - listen_addr for one getaddrinfo result */
static int
listen_one(const struct addrinfo *ai, int backlog, const char **error_r)
{
    return listen_addr(ai->ai_addr, ai->ai_addrlen, false, backlog, error_r);
}

/* listen_any - "*": one IPv6 socket with IPV6_V6ONLY off, so that it
 * takes IPv4 clients too (they show as ::ffff:a.b.c.d, which addr.c
 * turns back into IPv4); IPv4 alone on a kernel without IPv6 */
static int
listen_any(const struct sockspec *spec, int backlog, const char **error_r)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    int fd;

    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_any;
    s6.sin6_port = htons((uint16_t)spec->port);
    fd = listen_addr((struct sockaddr *)&s6, sizeof(s6), true, backlog, error_r);
    if (fd >= 0 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
        return fd;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_addr.s_addr = htonl(INADDR_ANY);
    s4.sin_port = htons((uint16_t)spec->port);
    return listen_addr((struct sockaddr *)&s4, sizeof(s4), false, backlog, error_r);
}

/* listen_inet - the INET half of sockspec_listen: "*" dual-stack, else
 * the first address that binds */
static int
listen_inet(const struct sockspec *spec, int backlog, const char **error_r)
{
    struct addrinfo *res, *ai;
    int fd = -1, saved = 0;

    if (!spec->ipv6_literal && (spec->host[0] == '\0' || strcmp(spec->host, "*") == 0))
        return listen_any(spec, backlog, error_r);
    if (resolve(spec, true, &res, error_r) < 0)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = listen_one(ai, backlog, error_r);
        saved = errno;
    }
    freeaddrinfo(res);
    errno = saved;
    return fd;
}

int
sockspec_listen(const struct sockspec *spec, int backlog, const char **error_r)
{
    if (spec->kind == SOCKSPEC_UNIX)
        return listen_unix(spec, backlog, error_r);
    return listen_inet(spec, backlog, error_r);
}

/* now_ms - monotonic milliseconds */
static long long
now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);   /* cannot fail for CLOCK_MONOTONIC */
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_connected - poll a non-blocking connect until done or timeout */
static int
wait_connected(int fd, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(int);
    int rc, soerr = 0;

    for (;;) {
        long long left = deadline - now_ms();

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            break;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -1;
    if (soerr != 0) {
        errno = soerr;
        return -1;
    }
    return 0;
}

/* connect_addr - connect fd to addr, with a timeout (0 = none) */
static int
connect_addr(int fd, const struct sockaddr *addr, socklen_t len, int timeout_ms)
{
    int flags;

    if (timeout_ms <= 0) {
        while (connect(fd, addr, len) < 0)
            if (errno != EINTR)
                return -1;
        return 0;
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    if (connect(fd, addr, len) < 0) {
        if (errno != EINPROGRESS && errno != EINTR)
            return -1;
        if (wait_connected(fd, timeout_ms) < 0)
            return -1;
    }
    return fcntl(fd, F_SETFL, flags);
}

/* connect_unix - the UNIX half of sockspec_connect */
static int
connect_unix(const struct sockspec *spec, int timeout_ms, const char **error_r)
{
    struct sockaddr_un sun;
    socklen_t len = unix_addr(spec, &sun);
    int fd;

    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail(-1, "socket", error_r);
    if (connect_addr(fd, (struct sockaddr *)&sun, len, timeout_ms) < 0)
        return fail(fd, "connect", error_r);
    return fd;
}

/* connect_inet - the INET half: first address that answers */
static int
connect_inet(const struct sockspec *spec, int timeout_ms, const char **error_r)
{
    struct addrinfo *res, *ai;
    int fd = -1, saved = 0;

    if (resolve(spec, false, &res, error_r) < 0)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            (void)fail(-1, "socket", error_r);
            continue;
        }
        if (connect_addr(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) < 0) {
            saved = errno;
            fd = fail(fd, "connect", error_r);
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = saved;
    return fd;
}

int
sockspec_connect(const struct sockspec *spec, int timeout_ms, const char **error_r)
{
    if (spec->kind == SOCKSPEC_UNIX)
        return connect_unix(spec, timeout_ms, error_r);
    return connect_inet(spec, timeout_ms, error_r);
}
