/* SPDX-License-Identifier: ISC */
/*
 * hello.h - the Hello port of autoturn-flusher (the AutoTURN recipe's
 * RFC-less "Hello" protocol: the customer connects and the server closes
 * at once). A connection from an address registered to a customer whose
 * triggers include connect asks for that customer's flush; any other
 * connection is just closed. Nothing is ever read or written.
 */
#ifndef AUTOTURN_HELLO_H
#define AUTOTURN_HELLO_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "custdb.h"
#include "customer.h"
#include "util.h"

#define HELLO_RATE_SLOTS     4096u  /* per-address rate table (power of two) */
#define HELLO_LOOKUPS_PER_SEC 200   /* connections looked up per second; the rest closed unseen */
#define HELLO_ACCEPT_BATCH   64     /* accepts per readiness event (the loop serves others too) */
#define HELLO_WARN_INTERVAL  10     /* seconds between warnings about ignored connections */

struct hello;

/* hello_flush_fn - ask for cust's flush toward to (the peer's address) */
typedef void hello_flush_fn(void *ctx, const struct customer *cust, const char *to);

/* hello_open - when cfg->enable, bind every cfg->listen address
 * (non-blocking; before the privilege drop). cfg is read again on every
 * connection (rate_interval may change on reload). 0 with *h_r (NULL
 * when disabled), or -1 with err ("hello: inet:*:1789: bind: ..."). */
int hello_open(const struct config_hello *cfg, struct hello **h_r, struct errbuf *err);

/* hello_fd - the i-th listening socket, -1 past the last. */
int hello_fd(const struct hello *h, size_t i);

/* hello_accept - take the pending connections of listener lfd: close
 * each at once; for a registered address, not seen within rate_interval,
 * log and call fn. Never blocks. */
void hello_accept(struct hello *h, int lfd, struct custdb *db, time_t now, hello_flush_fn *fn,
                  void *ctx);

/* hello_close - close the listeners and free h (NULL is fine). */
void hello_close(struct hello *h);

#endif
