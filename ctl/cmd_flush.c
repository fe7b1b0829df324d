/* SPDX-License-Identifier: ISC */
/*
 * cmd_flush.c - autoturnctl flush and status: ask autoturn-flusher over
 * its control socket (flusher control = in autoturn.conf) to deliver a
 * customer's held mail now (optionally waiting and showing each
 * recipient's outcome), and what it is doing.
 */
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "ctlproto.h"
#include "util.h"

#define FLUSH_TIMEOUT_MS 10000   /* without --wait, and for status */

struct flush_opts {
    const char *customer;
    const char *to;
    bool wait;
};

struct tally {
    unsigned long lines;
};

/* ask - one request to the flusher; EXIT_OK with *final_r (OK), or an exit code */

static int
ask(struct cli_ctx *ctx, const struct ctl_msg *req, ctl_data_fn *datafn, void *dctx,
    struct ctl_msg *final_r, int timeout_ms)
{
    const struct config *cfg = cli_config(ctx);
    const char *code, *text;
    struct errbuf err;

    if (cfg == NULL)
        return EXIT_CONFIG;
    if (cfg->flusher.control.kind != SOCKSPEC_UNIX) {
        cli_errx("flusher control socket is not a unix: socket");
        return EXIT_CONFIG;
    }
    if (ctl_request(cfg->flusher.control.path, req, datafn, dctx, final_r, timeout_ms,
                    &err) < 0) {
        cli_errx("autoturn-flusher does not answer: %s", err.msg);
        return EXIT_UNAVAILABLE;
    }
    if (strcmp(final_r->verb, "ERR") != 0)
        return EXIT_OK;
    code = ctl_msg_get(final_r, "code");
    text = ctl_msg_get(final_r, "text");
    cli_errx("%s: %s (%s)", ctx->argv[0], text ? text : "error", code ? code : "?");
    if (code == NULL)
        return EXIT_SOFTWARE;
    if (strcmp(code, "bad-request") == 0)
        return EXIT_USAGE;
    if (strcmp(code, "unknown-customer") == 0)
        return EXIT_NOTFOUND;
    if (strcmp(code, "not-authorised") == 0 || strcmp(code, "forbidden") == 0)
        return EXIT_NOPERM;
    if (strcmp(code, "busy") == 0)
        return EXIT_TEMPFAIL;
    return EXIT_SOFTWARE;
}

static int
parse_flush_args(struct cli_ctx *ctx, struct flush_opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--wait") == 0) {
            o->wait = true;
        } else if (strcmp(a, "--to") == 0 || strcmp(a, "-c") == 0) {
            if (++i >= ctx->argc)
                return cli_usage_error("flush: %s needs a value", a), -1;
            if (a[1] == 'c')
                ctx->config_path = ctx->argv[i];
            else
                o->to = ctx->argv[i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] flush CUSTOMER [--to ADDR] [--wait]\n");
            return -2;
        } else if (a[0] == '-') {
            return cli_usage_error("flush: bad option '%s'", a), -1;
        } else if (o->customer != NULL) {
            return cli_usage_error("flush: unexpected argument '%s'", a), -1;
        } else {
            o->customer = a;
        }
    }
    if (o->customer == NULL)
        return cli_usage_error("flush: expected CUSTOMER [--to ADDR] [--wait]"), -1;
    return 0;
}

static void
print_progress(void *ctx, const struct ctl_msg *m)
{
    const char *id = ctl_msg_get(m, "id"), *rcpt = ctl_msg_get(m, "rcpt");
    const char *status = ctl_msg_get(m, "status"), *reply = ctl_msg_get(m, "reply");

    if (strcmp(m->verb, "PROGRESS") != 0)
        return;
    ((struct tally *)ctx)->lines++;
    printf("%s <%s>: %s (%s)\n", id ? id : "?", rcpt ? rcpt : "?", status ? status : "?",
           reply ? reply : "");
    fflush(stdout);
}

static unsigned long
num(const struct ctl_msg *m, const char *key)
{
    const char *v = ctl_msg_get(m, key);

    return v ? strtoul(v, NULL, 10) : 0;
}

static int
summary(const struct flush_opts *o, const struct ctl_msg *fin)
{
    const char *error = ctl_msg_get(fin, "error");
    unsigned long deferred = num(fin, "deferred");

    printf("delivered %lu, deferred %lu, bounced %lu\n", num(fin, "delivered"), deferred,
           num(fin, "bounced"));
    if (error != NULL && error[0] != '\0')
        cli_errx("flush %s: %s", o->customer, error);
    return deferred > 0 ? EXIT_TEMPFAIL : EXIT_OK;
}

int
cmd_flush(struct cli_ctx *ctx)
{
    struct flush_opts o;
    struct ctl_msg req, fin;
    struct tally t = {0};
    const char *queued;
    int rc;

    if ((rc = parse_flush_args(ctx, &o)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if (ctl_msg_init(&req, "FLUSH") < 0 || ctl_msg_add(&req, "customer", o.customer) < 0 ||
        (o.to && ctl_msg_add(&req, "to", o.to) < 0) ||
        ctl_msg_add(&req, "reason", "manual") < 0 ||
        (o.wait && ctl_msg_add(&req, "wait", "1") < 0))
        return cli_usage_error("flush: argument too long");
    rc = ask(ctx, &req, o.wait ? print_progress : NULL, &t, &fin,
             o.wait ? 0 : FLUSH_TIMEOUT_MS);
    if (rc != EXIT_OK)
        return rc;
    if (o.wait)
        return summary(&o, &fin);
    queued = ctl_msg_get(&fin, "queued");
    if (queued != NULL && strcmp(queued, "0") == 0)
        printf("flush of %s not started now (the last attempt failed recently)\n", o.customer);
    else
        printf("flush of %s queued\n", o.customer);
    return EXIT_OK;
}

static void
print_flushing(void *ctx, const struct ctl_msg *m)
{
    const char *to = ctl_msg_get(m, "to");
    char when[32];

    (void)ctx;
    if (strcmp(m->verb, "FLUSHING") != 0)
        return;
    cli_format_time(ctl_msg_get(m, "since"), when, sizeof(when));
    printf("flushing %s to %s since %s\n", ctl_msg_get(m, "customer") ?: "?",
           to && *to ? to : "(its host)", when);
}

int
cmd_status(struct cli_ctx *ctx)
{
    struct ctl_msg req, fin;
    char when[32];
    int first, rc;

    if ((first = cli_positional(ctx, 0, 1)) < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    ctl_msg_init(&req, "STATUS");
    if (first < ctx->argc && ctl_msg_add(&req, "customer", ctx->argv[first]) < 0)
        return cli_usage_error("status: argument too long");
    if ((rc = ask(ctx, &req, print_flushing, NULL, &fin, FLUSH_TIMEOUT_MS)) != EXIT_OK)
        return rc;
    if (first < ctx->argc) {
        cli_format_time(ctl_msg_get(&fin, "oldest"), when, sizeof(when));
        printf("%s: %lu message%s, %lu bytes, oldest %s, %s\n", ctx->argv[first],
               num(&fin, "messages"), num(&fin, "messages") == 1 ? "" : "s", num(&fin, "bytes"), when,
               num(&fin, "flushing") ? "flushing now" : "not flushing");
    } else {
        printf("autoturn-flusher: %lu of at most %lu flushes running, up %lus\n",
               num(&fin, "running"), num(&fin, "max"), num(&fin, "uptime"));
        if (num(&fin, "odmr_sessions") > 0)
            printf("autoturn-flusher: %lu ODMR sessions connected\n", num(&fin, "odmr_sessions"));
    }
    return EXIT_OK;
}
