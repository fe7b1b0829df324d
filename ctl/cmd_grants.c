/* SPDX-License-Identifier: ISC */
/*
 * cmd_grants.c - autoturnctl grant, revoke and grants: ask autoturn-policyd
 * over its control socket (policyd control = in autoturn.conf) to let an
 * address relay for a while, to end that, and to list live grants.
 * Used by hand and by a Dovecot post-login script (conf/dovecot-post-login.sh).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "addr.h"
#include "commands.h"
#include "ctlproto.h"
#include "json.h"
#include "units.h"
#include "util.h"

#define GRANTS_TIMEOUT_MS 10000

struct grant_opts {
    const char *ip;
    const char *user;
    const char *ttl;
    const char *customer;
};

/* ask - send req to the policy service; EXIT_OK with *final_r, or exit code */

static int
ask(struct cli_ctx *ctx, const struct ctl_msg *req, ctl_data_fn *datafn, void *dctx,
    struct ctl_msg *final_r)
{
    const struct config *cfg = cli_config(ctx);
    struct errbuf err;

    if (cfg == NULL)
        return EXIT_CONFIG;
    if (cfg->policyd.control.kind != SOCKSPEC_UNIX) {
        cli_errx("policyd control socket is not a unix: socket");
        return EXIT_CONFIG;
    }
    if (ctl_request(cfg->policyd.control.path, req, datafn, dctx, final_r, GRANTS_TIMEOUT_MS,
                    &err) < 0) {
        cli_errx("autoturn-policyd does not answer: %s", err.msg);
        return EXIT_UNAVAILABLE;
    }
    if (strcmp(final_r->verb, "ERR") == 0) {
        const char *code = ctl_msg_get(final_r, "code"), *text = ctl_msg_get(final_r, "text");

        cli_errx("%s: %s (%s)", ctx->argv[0], text ? text : "error", code ? code : "?");
        if (code != NULL && strcmp(code, "bad-request") == 0)
            return EXIT_USAGE;
        if (code != NULL && strcmp(code, "unknown-customer") == 0)
            return EXIT_NOTFOUND;
        if (code != NULL && strcmp(code, "forbidden") == 0)
            return EXIT_NOPERM;
        return EXIT_SOFTWARE;
    }
    return EXIT_OK;
}

/* parse_grant_args - IP [--user U] [--ttl D] [--customer NAME], options
 * before or after IP; -c FILE and -h as everywhere */

static int
parse_grant_args(struct cli_ctx *ctx, struct grant_opts *o)
{
    const char **slot;
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--user") == 0)
            slot = &o->user;
        else if (strcmp(a, "--ttl") == 0)
            slot = &o->ttl;
        else if (strcmp(a, "--customer") == 0)
            slot = &o->customer;
        else if (strcmp(a, "-c") == 0)
            slot = &ctx->config_path;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] grant IP [--user U] [--ttl D] "
                   "[--customer NAME]\n");
            return -2;
        } else if (a[0] == '-')
            return cli_usage_error("grant: bad option '%s'", a), -1;
        else if (o->ip != NULL)
            return cli_usage_error("grant: unexpected argument '%s'", a), -1;
        else {
            o->ip = a;
            continue;
        }
        if (++i >= ctx->argc)
            return cli_usage_error("grant: %s needs a value", a), -1;
        *slot = ctx->argv[i];
    }
    if (o->ip == NULL)
        return cli_usage_error("grant: expected IP [--user U] [--ttl D]"), -1;
    return 0;
}

static int
check_grant_args(const struct grant_opts *o)
{
    struct ipaddr a;
    uint64_t secs;
    const char *e;

    if (ipaddr_parse(o->ip, &a, &e) < 0)
        return cli_usage_error("grant: bad IP address '%s': %s", o->ip, e), -1;
    if (o->ttl != NULL && units_parse_duration(o->ttl, &secs, &e) < 0)
        return cli_usage_error("grant: bad --ttl '%s': %s", o->ttl, e), -1;
    if (o->ttl != NULL && secs == 0)
        return cli_usage_error("grant: bad --ttl '%s': must be at least 1s", o->ttl), -1;
    return 0;
}

int
cmd_grant(struct cli_ctx *ctx)
{
    struct grant_opts o;
    struct ctl_msg req, fin;
    const char *exp;
    char when[32];
    int rc;

    if ((rc = parse_grant_args(ctx, &o)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if (check_grant_args(&o) < 0)
        return EXIT_USAGE;
    if (ctl_msg_init(&req, "GRANT") < 0 || ctl_msg_add(&req, "ip", o.ip) < 0 ||
        (o.user && ctl_msg_add(&req, "user", o.user) < 0) ||
        (o.ttl && ctl_msg_add(&req, "ttl", o.ttl) < 0) ||
        (o.customer && ctl_msg_add(&req, "customer", o.customer) < 0)) {
        cli_errx("grant: argument too long");
        return EXIT_USAGE;
    }
    if ((rc = ask(ctx, &req, NULL, NULL, &fin)) != EXIT_OK)
        return rc;
    exp = ctl_msg_get(&fin, "expires");
    cli_format_time(exp, when, sizeof(when));
    printf("granted %s until %s\n", o.ip, when);
    return EXIT_OK;
}

int
cmd_revoke(struct cli_ctx *ctx)
{
    struct ctl_msg req, fin;
    struct ipaddr a;
    const char *e, *removed;
    int first, rc;

    if ((first = cli_positional(ctx, 1, 1)) < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    if (ipaddr_parse(ctx->argv[first], &a, &e) < 0)
        return cli_usage_error("revoke: bad IP address '%s': %s", ctx->argv[first], e);
    if (ctl_msg_init(&req, "REVOKE") < 0 || ctl_msg_add(&req, "ip", ctx->argv[first]) < 0)
        return cli_usage_error("revoke: argument too long");
    if ((rc = ask(ctx, &req, NULL, NULL, &fin)) != EXIT_OK)
        return rc;
    removed = ctl_msg_get(&fin, "removed");
    if (removed != NULL && strcmp(removed, "0") == 0) {
        cli_errx("revoke: no grant for %s", ctx->argv[first]);
        return EXIT_NOTFOUND;
    }
    printf("revoked %s\n", ctx->argv[first]);
    return EXIT_OK;
}

struct grants_out {
    bool header;                 /* the header (text) or the first grant (JSON) is out */
    struct json *j;              /* --json, else NULL */
};

/* text_or_null - a value the daemon sent, NULL when missing or empty */
static const char *
text_or_null(const struct ctl_msg *m, const char *key)
{
    const char *v = ctl_msg_get(m, key);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void
grant_json(struct json *j, const struct ctl_msg *m)
{
    const char *exp = ctl_msg_get(m, "expires");

    json_object(j, NULL);
    json_string(j, "address", text_or_null(m, "ip"));
    json_string(j, "user", text_or_null(m, "user"));
    json_string(j, "customer", text_or_null(m, "customer"));
    json_string(j, "source", text_or_null(m, "source"));
    json_int(j, "expires", exp != NULL ? strtoll(exp, NULL, 10) : 0);
    json_end(j, '}');
}

static void
print_grant(void *ctx, const struct ctl_msg *m)
{
    const char *v[5] = {ctl_msg_get(m, "ip"), ctl_msg_get(m, "user"),
                        ctl_msg_get(m, "customer"), ctl_msg_get(m, "expires"),
                        ctl_msg_get(m, "source")};
    struct grants_out *o = ctx;
    char when[32];
    size_t i;

    if (o->j != NULL) {
        grant_json(o->j, m);
        o->header = true;
        return;
    }
    if (!o->header)
        printf("%-39s %-24s %-16s %-20s %s\n", "ADDRESS", "USER", "CUSTOMER", "SOURCE",
               "EXPIRES");
    o->header = true;
    for (i = 0; i < ARRAY_LEN(v); i++)
        if (v[i] == NULL || v[i][0] == '\0')
            v[i] = "-";
    cli_format_time(strcmp(v[3], "-") != 0 ? v[3] : NULL, when, sizeof(when));
    printf("%-39s %-24s %-16s %-20s %s\n", v[0], v[1], v[2], v[4], when);
}

int
cmd_grants(struct cli_ctx *ctx)
{
    struct ctl_msg req, fin;
    struct grants_out o = {false, NULL};
    struct json_buf jb;
    int first, rc;

    if ((first = cli_positional(ctx, 0, 0)) < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    ctl_msg_init(&req, "GRANTS");
    if (ctx->json) {
        if (json_buf_open(&jb) < 0)
            return cli_errx("out of memory"), EXIT_SOFTWARE;
        o.j = &jb.j;
        json_object(o.j, NULL);
        json_array(o.j, "grants");
    }
    rc = ask(ctx, &req, print_grant, &o, &fin);
    if (ctx->json) {
        json_end(o.j, ']');
        json_end(o.j, '}');
        return json_buf_close(&jb, rc == EXIT_OK) < 0 ? EXIT_SOFTWARE : rc;
    }
    if (rc == EXIT_OK && !o.header)
        printf("no live grants\n");
    return rc;
}

/* cli_policyd_ask - one request to autoturn-policyd's control socket (for
 * autoturnctl import); errors printed, exit code returned. */
int
cli_policyd_ask(struct cli_ctx *ctx, const struct ctl_msg *req, struct ctl_msg *final_r)
{
    return ask(ctx, req, NULL, NULL, final_r);
}
