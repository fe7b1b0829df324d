/* SPDX-License-Identifier: ISC */
/*
 * cmd_flush.c - autoturnctl flush and status: ask autoturn-flusher over
 * its control socket (flusher control = in autoturn.conf) to deliver a
 * customer's held mail now (optionally waiting and showing each
 * recipient's outcome), the customer holding a domain (--domain), or
 * every customer with mail to deliver (--all, one request each, found in
 * the spool like "queue" does), and what it is doing.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "ctlproto.h"
#include "custdb.h"
#include "json.h"
#include "spool.h"
#include "util.h"

#define FLUSH_TIMEOUT_MS 10000   /* without --wait, and for status */

struct flush_opts {
    const char *customer;
    const char *to;
    const char *domain;          /* --domain D */
    bool all;                    /* --all */
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
        } else if (strcmp(a, "--all") == 0) {
            o->all = true;
        } else if (strcmp(a, "--to") == 0 || strcmp(a, "-c") == 0 ||
                   strcmp(a, "--domain") == 0) {
            if (++i >= ctx->argc)
                return cli_usage_error("flush: %s needs a value", a), -1;
            if (a[1] == 'c')
                ctx->config_path = ctx->argv[i];
            else if (a[2] == 'd')
                o->domain = ctx->argv[i];
            else
                o->to = ctx->argv[i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] flush CUSTOMER|--domain D [--to ADDR] "
                   "[--wait]\n"
                   "       autoturnctl [-c FILE] flush --all\n");
            return -2;
        } else if (a[0] == '-') {
            return cli_usage_error("flush: bad option '%s'", a), -1;
        } else if (o->customer != NULL) {
            return cli_usage_error("flush: unexpected argument '%s'", a), -1;
        } else {
            o->customer = a;
        }
    }
    if ((o->customer != NULL) + (o->domain != NULL) + o->all != 1)
        return cli_usage_error("flush: expected one of CUSTOMER, --domain D or --all"), -1;
    if (o->all && (o->to != NULL || o->wait))
        return cli_usage_error("flush: --all takes neither --to nor --wait"), -1;
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

/* domain_customer - the customer holding o->domain, into name; exit code */
static int
domain_customer(struct cli_ctx *ctx, struct flush_opts *o, char *name, size_t size)
{
    const struct config *cfg = cli_config(ctx);
    struct customer *c = NULL;
    struct errbuf err;
    struct custdb *db;
    int rc;

    if (cfg == NULL)
        return EXIT_CONFIG;
    if ((db = custdb_new(cfg->customers_table)) == NULL) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    if ((rc = custdb_lookup_domain(db, o->domain, &c, NULL, &err)) == 1) {
        (void)str_copy(name, size, c->name);    /* CUSTOMER_NAME_MAX fits */
        o->customer = name;
    } else if (rc == 0) {
        cli_errx("flush: no customer holds domain %s", o->domain);
    } else {
        cli_errx("flush: %s", err.msg);
    }
    customer_free(c);
    custdb_free(db);
    return rc == 1 ? EXIT_OK : rc == 0 ? EXIT_NOTFOUND : EXIT_TEMPFAIL;
}

static int flush_one(struct cli_ctx *ctx, const struct flush_opts *o);

/* flush_all - a FLUSH (no wait) for every customer with mail to deliver
 * (on hold does not count); the worst exit code */
static int
flush_all(struct cli_ctx *ctx, struct flush_opts *o)
{
    const struct config *cfg = cli_config(ctx);
    char **names = NULL;
    struct spool_stats st;
    struct errbuf err;
    struct spool *sp;
    size_t n = 0, i, asked = 0;
    int rc = EXIT_OK, one;

    if (cfg == NULL)
        return EXIT_CONFIG;
    if ((sp = spool_new(cfg->spool_dir)) == NULL) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    if (spool_customers(sp, &names, &n, &err) < 0 && errno != ENOENT) {
        cli_errx("flush: %s", err.msg);
        rc = EXIT_IOERR;
    }
    for (i = 0; i < n; i++) {
        if (spool_stats(sp, names[i], &st, &err) < 0) {
            cli_errx("flush: %s", err.msg);
            rc = EXIT_IOERR;
            continue;
        }
        if (st.messages == st.on_hold)
            continue;
        o->customer = names[i];
        if ((one = flush_one(ctx, o)) == EXIT_OK)
            asked++;
        else if (rc == EXIT_OK)
            rc = one;
        if (one == EXIT_UNAVAILABLE || one == EXIT_CONFIG)
            break;              /* the flusher will not answer the next one either */
    }
    printf("-- %zu flush%s queued\n", asked, asked == 1 ? "" : "es");
    spool_names_free(names, n);
    spool_free(sp);
    return rc;
}

int
cmd_flush(struct cli_ctx *ctx)
{
    char name[CUSTOMER_NAME_MAX + 1];
    struct flush_opts o;
    int rc;

    if ((rc = parse_flush_args(ctx, &o)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if (o.all)
        return flush_all(ctx, &o);
    if (o.domain != NULL && (rc = domain_customer(ctx, &o, name, sizeof(name))) != EXIT_OK)
        return rc;
    return flush_one(ctx, &o);
}

/* flush_one - one FLUSH for o->customer, its outcome printed */
static int
flush_one(struct cli_ctx *ctx, const struct flush_opts *o)
{
    struct ctl_msg req, fin;
    struct tally t = {0};
    const char *queued;
    int rc;

    if (ctl_msg_init(&req, "FLUSH") < 0 || ctl_msg_add(&req, "customer", o->customer) < 0 ||
        (o->to && ctl_msg_add(&req, "to", o->to) < 0) ||
        ctl_msg_add(&req, "reason", "manual") < 0 ||
        (o->wait && ctl_msg_add(&req, "wait", "1") < 0))
        return cli_usage_error("flush: argument too long");
    rc = ask(ctx, &req, o->wait ? print_progress : NULL, &t, &fin,
             o->wait ? 0 : FLUSH_TIMEOUT_MS);
    if (rc != EXIT_OK)
        return rc;
    if (o->wait)
        return summary(o, &fin);
    queued = ctl_msg_get(&fin, "queued");
    if (queued != NULL && strcmp(queued, "0") == 0)
        printf("flush of %s not started now (the last attempt failed recently)\n", o->customer);
    else
        printf("flush of %s queued\n", o->customer);
    return EXIT_OK;
}

static void
print_flushing(void *ctx, const struct ctl_msg *m)
{
    const char *to = ctl_msg_get(m, "to");
    struct json *j = ctx;
    char when[32];

    if (strcmp(m->verb, "FLUSHING") != 0)
        return;
    if (j != NULL) {
        json_object(j, NULL);
        json_string(j, "customer", ctl_msg_get(m, "customer"));
        json_string(j, "to", to && *to ? to : NULL);
        json_uint(j, "since", num(m, "since"));
        json_end(j, '}');
        return;
    }
    cli_format_time(ctl_msg_get(m, "since"), when, sizeof(when));
    printf("flushing %s to %s since %s\n", ctl_msg_get(m, "customer") ?: "?",
           to && *to ? to : "(its host)", when);
}

/* status_json - the final line of STATUS as JSON (the flushes are in) */
static void
status_json(struct json *j, const struct ctl_msg *fin, const char *customer)
{
    if (customer != NULL) {
        json_string(j, "customer", customer);
        json_uint(j, "messages", num(fin, "messages"));
        json_uint(j, "bytes", num(fin, "bytes"));
        json_uint(j, "oldest", num(fin, "oldest"));
        json_uint(j, "on_hold", num(fin, "on_hold"));
        json_bool(j, "flushing", num(fin, "flushing") != 0);
    } else {
        json_end(j, ']');
        json_uint(j, "running", num(fin, "running"));
        json_uint(j, "max", num(fin, "max"));
        json_uint(j, "uptime", num(fin, "uptime"));
        json_uint(j, "odmr_sessions", num(fin, "odmr_sessions"));
    }
    json_end(j, '}');
}

static int
status_as_json(struct cli_ctx *ctx, const struct ctl_msg *req, const char *customer)
{
    struct ctl_msg fin;
    struct json_buf jb;
    int rc;

    if (json_buf_open(&jb) < 0) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    json_object(&jb.j, NULL);
    if (customer == NULL)
        json_array(&jb.j, "flushes");
    rc = ask(ctx, req, print_flushing, &jb.j, &fin, FLUSH_TIMEOUT_MS);
    if (rc == EXIT_OK)
        status_json(&jb.j, &fin, customer);
    return json_buf_close(&jb, rc == EXIT_OK) < 0 ? EXIT_SOFTWARE : rc;
}

int
cmd_status(struct cli_ctx *ctx)
{
    struct ctl_msg req, fin;
    char when[32], hold[48] = "";
    int first, rc;

    if ((first = cli_positional(ctx, 0, 1)) < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    ctl_msg_init(&req, "STATUS");
    if (first < ctx->argc && ctl_msg_add(&req, "customer", ctx->argv[first]) < 0)
        return cli_usage_error("status: argument too long");
    if (ctx->json)
        return status_as_json(ctx, &req, first < ctx->argc ? ctx->argv[first] : NULL);
    if ((rc = ask(ctx, &req, print_flushing, NULL, &fin, FLUSH_TIMEOUT_MS)) != EXIT_OK)
        return rc;
    if (first < ctx->argc) {
        cli_format_time(ctl_msg_get(&fin, "oldest"), when, sizeof(when));
        if (num(&fin, "on_hold") > 0)
            (void)str_printf(hold, sizeof(hold), ", %lu on hold", num(&fin, "on_hold"));
        printf("%s: %lu message%s, %lu bytes, oldest %s, %s%s\n", ctx->argv[first],
               num(&fin, "messages"), num(&fin, "messages") == 1 ? "" : "s", num(&fin, "bytes"), when,
               num(&fin, "flushing") ? "flushing now" : "not flushing", hold);
    } else {
        printf("autoturn-flusher: %lu of at most %lu flushes running, up %lus\n",
               num(&fin, "running"), num(&fin, "max"), num(&fin, "uptime"));
        if (num(&fin, "odmr_sessions") > 0)
            printf("autoturn-flusher: %lu ODMR sessions connected\n", num(&fin, "odmr_sessions"));
    }
    return EXIT_OK;
}
