/* SPDX-License-Identifier: ISC */
/*
 * control.h - the control socket of autoturn-policyd (docs/control-
 * protocol.md): GRANT, REVOKE, GRANTS and PING from autoturnctl; CHECK
 * from autoturn-flusher.
 */
#ifndef AUTOTURN_POLICYD_CONTROL_H
#define AUTOTURN_POLICYD_CONTROL_H

#include <stdint.h>

#include "policyd.h"

#define CONTROL_CONN_MAX   64        /* control connections at once */
#define CONTROL_TIMEOUT    10        /* seconds for one whole exchange */

/* control_accept - accept pending connections on the listener lfd. */
void control_accept(struct policyd *pd, int lfd);

/* control_event - epoll reported events for a control connection. */
void control_event(struct policyd *pd, struct ev *ev, uint32_t events);

/* control_expire - close connections older than CONTROL_TIMEOUT. */
void control_expire(struct policyd *pd);

/* control_close_all - at shutdown. */
void control_close_all(struct policyd *pd);

#endif
