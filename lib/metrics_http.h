/* SPDX-License-Identifier: ISC */
/*
 * metrics_http.h - a daemon's Prometheus endpoint: GET /metrics over HTTP
 * on the address of its metrics { listen } setting, served by
 * libmicrohttpd in a thread of its own, so that a slow or hostile scraper
 * never delays the mail path (which only does atomic updates, metrics.h).
 *
 * Start-up order, like every listener: metrics_http_open() binds as root
 * (before the privilege drop; it also makes the metrics mapping, before
 * any fork or thread), metrics_http_start() starts the thread after the
 * daemon has detached and dropped its privileges.
 */
#ifndef AUTOTURN_METRICS_HTTP_H
#define AUTOTURN_METRICS_HTTP_H

#include "metrics.h"
#include "sockspec.h"
#include "util.h"

#define METRICS_HTTP_CONNECTIONS  8     /* scrapers served at once */
#define METRICS_HTTP_PER_ADDRESS  4     /* ... from one address */
#define METRICS_HTTP_TIMEOUT      10    /* seconds an idle connection is kept */

struct metrics_http;

/* metrics_http_open - when spec is an inet: address (metrics on):
 * metrics_init(daemon) and a listening socket on spec; *h_r set. When
 * spec is unset (not inet:), *h_r = NULL and metrics stay off. 0, or -1
 * with err ("metrics: inet:127.0.0.1:9741: bind: Address already in use"). */
int metrics_http_open(const struct sockspec *spec, enum metrics_daemon daemon,
                      struct metrics_http **h_r, struct errbuf *err);

/* metrics_http_start - start serving (NULL h: nothing to do) and log
 * "metrics: listening on ADDRESS". The thread blocks every signal, so
 * the daemon's signal handling is unchanged. 0, or -1 with err. */
int metrics_http_start(struct metrics_http *h, struct errbuf *err);

/* metrics_http_stop - stop the thread, close the socket, free h (NULL ok). */
void metrics_http_stop(struct metrics_http *h);

#endif
