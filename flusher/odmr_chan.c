/* SPDX-License-Identifier: ISC */
/*
 * odmr_chan.c - messages and descriptors between the ODMR processes (see
 * odmr_chan.h). Owns no state.
 *
 * SECURITY: the unprivileged side of a channel (the front and its
 * session processes) may be compromised: every datagram is bounded
 * (CTL_LINE_MAX, truncation is an error), decoded by ctl_parse, at most
 * one descriptor is taken, and any other ancillary data is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "odmr_chan.h"

int
odmr_chan_pair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

int
odmr_chan_send(int fd, const struct ctl_msg *m, int passfd, struct errbuf *err)
{
    char line[CTL_LINE_MAX];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov;
    struct msghdr mh;
    ssize_t n;
    int len;

    if ((len = ctl_format(m, line, sizeof(line))) < 0) {
        errbuf_set(err, "message too long");
        return -1;
    }
    memset(&mh, 0, sizeof(mh));
    iov.iov_base = line;
    iov.iov_len = (size_t)len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (passfd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        u.h.cmsg_level = SOL_SOCKET;
        u.h.cmsg_type = SCM_RIGHTS;
        u.h.cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(&u.h), &passfd, sizeof(int));
    }
    do
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        errbuf_set_errno(err, "send %s", m->verb);
        return -1;
    }
    return 0;
}

/* take_fd - the one descriptor in mh's ancillary data, or -1; anything
 * else there (more descriptors, credentials) is closed and refused */
static int
take_fd(struct msghdr *mh, int *fd_r)
{
    struct cmsghdr *c;
    int rc = 0, fd;
    size_t i, n;

    *fd_r = -1;
    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            rc = -1;
            continue;
        }
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd_r < 0 && i == 0)
                *fd_r = fd;
            else {
                (void)close(fd);
                rc = -1;
            }
        }
    }
    if ((mh->msg_flags & MSG_CTRUNC) != 0)
        rc = -1;
    return rc;
}

int
odmr_chan_recv(int fd, struct ctl_msg *m, int *passfd_r, struct errbuf *err)
{
    char line[CTL_LINE_MAX + 1];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {line, sizeof(line)};
    struct msghdr mh;
    ssize_t n;
    int passfd;

    if (passfd_r != NULL)
        *passfd_r = -1;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        errbuf_set_errno(err, "receive");
        return -1;
    }
    if (take_fd(&mh, &passfd) < 0 || (mh.msg_flags & MSG_TRUNC) != 0 || n > CTL_LINE_MAX) {
        if (passfd >= 0)
            (void)close(passfd);
        errno = EPROTO;
        errbuf_set(err, "malformed message (truncated, or unexpected ancillary data)");
        return -1;
    }
    if (n == 0 && passfd < 0)
        return 0;
    if (ctl_parse(line, (size_t)n, m, err) < 0) {
        if (passfd >= 0)
            (void)close(passfd);
        errno = EPROTO;
        return -1;
    }
    if (passfd_r != NULL)
        *passfd_r = passfd;
    else if (passfd >= 0)
        (void)close(passfd);
    return 1;
}

int
odmr_chan_call(int fd, const struct ctl_msg *req, struct ctl_msg *reply, int *passfd_r,
               int timeout_ms, struct errbuf *err)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc;

    if (odmr_chan_send(fd, req, -1, err) < 0)
        return -1;
    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
        if (rc == 0)
            errbuf_set(err, "no answer within %d ms", timeout_ms);
        else
            errbuf_set_errno(err, "poll");
        return -1;
    }
    return odmr_chan_recv(fd, reply, passfd_r, err);
}
