/* SPDX-License-Identifier: ISC */
/*
 * odmr_chan.h - the channels between the ODMR processes of
 * autoturn-flusher (see odmr.h for who runs where): AF_UNIX SOCK_SEQPACKET
 * socketpairs carrying one control-protocol message (ctlproto.h) per
 * datagram, optionally with one descriptor (SCM_RIGHTS).
 */
#ifndef AUTOTURN_ODMR_CHAN_H
#define AUTOTURN_ODMR_CHAN_H

#include "addr.h"
#include "config.h"
#include "ctlproto.h"
#include "util.h"

#define ODMR_PEER_MAX      (IPADDR_TEXT_MAX + 16)   /* "[addr]:port" */
#define ODMR_CHALLENGE_MAX (64 + CONFIG_TEXT_MAX)   /* "<nonce.time@myhostname>" */

/* odmr_chan_pair - a SOCK_SEQPACKET socketpair, close-on-exec; 0 / -1 (errno). */
int odmr_chan_pair(int fds[2]);

/* odmr_chan_send - m (and passfd when >= 0; it stays open here) in one
 * datagram, blocking. 0, or -1 with err. */
int odmr_chan_send(int fd, const struct ctl_msg *m, int passfd, struct errbuf *err);

/* odmr_chan_recv - one datagram into m; a passed descriptor (close-on-
 * exec) into *passfd_r (-1 when none; NULL: any passed one is closed).
 * 1 message, 0 the peer closed, -1 error (err; errno EAGAIN on a
 * non-blocking socket with nothing to read). A datagram that is not one
 * well-formed message is an error. */
int odmr_chan_recv(int fd, struct ctl_msg *m, int *passfd_r, struct errbuf *err);

/* odmr_chan_call - send req, then wait at most timeout_ms for the reply
 * (passfd_r as odmr_chan_recv). 1, 0 (closed) or -1 (err, also timeout). */
int odmr_chan_call(int fd, const struct ctl_msg *req, struct ctl_msg *reply, int *passfd_r,
                   int timeout_ms, struct errbuf *err);

#endif
