/* SPDX-License-Identifier: ISC */
/*
 * metrics_http.c - the Prometheus endpoint of a daemon (see
 * metrics_http.h), on libmicrohttpd: its own polling thread, our
 * listening socket (bound before the privilege drop), GET and HEAD of
 * /metrics (the exposition) and / (a pointer to it); anything else gets
 * 404 or 405. Owns the listening socket and the libmicrohttpd daemon.
 *
 * The thread never logs: in the flusher a fork() can happen at any
 * moment, and a child must not inherit a syslog lock held by this
 * thread. It reads the metrics (atomic loads) and allocates its reply;
 * it shares no lock with the mail path.
 *
 * SECURITY: anyone who can reach the address may read the counters
 * (no customer names, addresses or message data are in them; bind it to
 * loopback or a management network). libmicrohttpd parses the requests;
 * connections are capped (METRICS_HTTP_CONNECTIONS, per address
 * METRICS_HTTP_PER_ADDRESS) and time out (METRICS_HTTP_TIMEOUT), request
 * headers are bounded by its per-connection memory limit, and request
 * bodies are never read.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <microhttpd.h>

#include "util.h"
#include "expfmt.h"
#include "log.h"
#include "metrics_http.h"

#define METRICS_HTTP_BACKLOG 16

struct metrics_http {
    int fd;
    struct MHD_Daemon *mhd;
    char address[SOCKSPEC_HOST_MAX + 16];
};

static const char index_page[] =
    "autoturn metrics for Prometheus: GET /metrics\n";

/* reply_static - a short text/plain reply from static storage */
static enum MHD_Result
reply_static(struct MHD_Connection *c, unsigned status, const char *text, const char *allow)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow != NULL)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* reply_metrics - the exposition, formatted for this request */
static enum MHD_Result
reply_metrics(struct MHD_Connection *c)
{
    struct MHD_Response *r;
    enum MHD_Result rc;
    size_t len = 0;
    char *text;

    if ((text = metrics_expose(&len)) == NULL)
        return reply_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot format the metrics\n",
                            NULL);
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        x_free(text);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, EXPFMT_CONTENT_TYPE);
    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* on_request - libmicrohttpd's access handler, called in its thread */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)state;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                            "GET, HEAD");
    if (*upload_size != 0)
        return reply_static(c, MHD_HTTP_BAD_REQUEST, "a request body is not expected\n", NULL);
    if (strcmp(url, "/metrics") == 0)
        return reply_metrics(c);
    if (strcmp(url, "/") == 0)
        return reply_static(c, MHD_HTTP_OK, index_page, NULL);
    return reply_static(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
}

int
metrics_http_open(const struct sockspec *spec, enum metrics_daemon daemon,
                  struct metrics_http **h_r, struct errbuf *err)
{
    struct metrics_http *h;
    const char *step = "listen";

    *h_r = NULL;
    if (spec->kind != SOCKSPEC_INET)
        return 0;
    if ((h = x_calloc(1, sizeof(*h))) == NULL) {
        errbuf_set_errno(err, "metrics");
        return -1;
    }
    sockspec_format(spec, h->address, sizeof(h->address));
    if (metrics_init(daemon, err) < 0) {
        x_free(h);
        return -1;
    }
    if ((h->fd = sockspec_listen(spec, METRICS_HTTP_BACKLOG, &step)) < 0 ||
        fd_set_nonblock(h->fd) < 0) {
        errbuf_set_errno(err, "metrics: %s: %s", h->address, h->fd < 0 ? step : "non-blocking");
        if (h->fd >= 0)
            close(h->fd);
        x_free(h);
        return -1;
    }
    *h_r = h;
    return 0;
}

int
metrics_http_start(struct metrics_http *h, struct errbuf *err)
{
    sigset_t all, old;

    if (h == NULL)
        return 0;
    sigfillset(&all);
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);   /* the new thread inherits the mask */
    h->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, on_request, NULL,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)METRICS_HTTP_PER_ADDRESS,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT,
                              MHD_OPTION_END);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (h->mhd == NULL) {
        errbuf_set(err, "metrics: %s: libmicrohttpd did not start", h->address);
        return -1;
    }
    log_info("metrics: listening on %s (GET /metrics)", h->address);
    return 0;
}

void
metrics_http_stop(struct metrics_http *h)
{
    if (h == NULL)
        return;
    if (h->mhd != NULL)
        MHD_stop_daemon(h->mhd);   /* closes the listening socket too */
    else
        close(h->fd);
    x_free(h);
}
