/* SPDX-License-Identifier: ISC */
/*
 * cmd_msg.c - the commands on single held messages, like Postfix's
 * postcat -q and postsuper -d/-h/-H: "show" prints a message's envelope
 * and headers (and, with --body, the rest); "delete", "hold" and
 * "release" act on messages named by spool id ("ID" or "CUSTOMER/ID") or
 * on every message of one customer (--customer C). delete needs --yes.
 * What delete, hold and release do is logged where the daemons log.
 *
 * SECURITY: ids and customer names come from the command line and are
 * checked by the spool (plain file names, valid customer names) before
 * they become paths. Message text is shown with control characters
 * replaced, so a message cannot drive the administrator's terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "customer.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define SHOW_BUF 65536

/* a message named on the command line */
struct target {
    char customer[CUSTOMER_NAME_MAX + 1];
    char id[SPOOL_ID_MAX];
};

/* exit_for - the exit code for a spool error */
static int
exit_for(int err)
{
    return err == ENOENT ? EXIT_NOTFOUND : err == EINVAL ? EXIT_USAGE : EXIT_IOERR;
}

/* resolve - "CUSTOMER/ID", or "ID" looked for in every customer's spool.
 * EXIT_OK, or an exit code after saying why. */
static int
resolve(struct spool *sp, const char *cmd, const char *arg, struct target *t)
{
    const char *slash = strchr(arg, '/'), *why;
    struct errbuf err;
    int rc;

    if (slash != NULL) {
        if (str_printf(t->customer, sizeof(t->customer), "%.*s", (int)(slash - arg), arg) < 0 ||
            !customer_name_valid(t->customer, &why))
            return cli_usage_error("%s: bad customer name in '%s'", cmd, arg);
        if (str_copy(t->id, sizeof(t->id), slash + 1) < 0 || t->id[0] == '\0' ||
            strchr(t->id, '/') != NULL)
            return cli_usage_error("%s: bad spool id in '%s'", cmd, arg);
        return EXIT_OK;
    }
    if (str_copy(t->id, sizeof(t->id), arg) < 0)
        return cli_usage_error("%s: bad spool id '%s'", cmd, arg);
    rc = spool_find(sp, arg, t->customer, sizeof(t->customer), &err);
    if (rc == 1)
        return EXIT_OK;
    if (rc == 0) {
        cli_errx("%s: no such message: %s", cmd, arg);
        return EXIT_NOTFOUND;
    }
    cli_errx("%s: %s", cmd, err.msg);
    return exit_for(errno);
}

/* open_spool - the configured spool; NULL after saying why (*rc_r) */
static struct spool *
open_spool(struct cli_ctx *ctx, int *rc_r)
{
    const struct config *cfg = cli_config(ctx);
    struct spool *sp;

    if (cfg == NULL) {
        *rc_r = EXIT_CONFIG;
        return NULL;
    }
    if ((sp = spool_new(cfg->spool_dir)) == NULL) {
        cli_errx("out of memory");
        *rc_r = EXIT_SOFTWARE;
    }
    return sp;
}

/* --- show --- */

/* display - message bytes as text: CR LF and lone LF end a line, other
 * control characters but TAB show as '?'. Stops after the header block
 * unless the body is wanted. */
struct display {
    const char *name;            /* customer/id, for the section lines */
    bool body;                   /* --body */
    bool line_start, pending_cr, in_body;
};

/* display_byte - false once the caller should stop */
static bool
display_byte(struct display *d, unsigned char c)
{
    if (d->pending_cr) {
        d->pending_cr = false;
        if (c != '\n') {
            putchar('?');
            d->line_start = false;
        }
    }
    if (c == '\r') {
        d->pending_cr = true;
        return true;
    }
    if (c == '\n' && d->line_start && !d->in_body) {
        d->in_body = true;
        if (!d->body)
            return false;
        printf("*** BODY %s ***\n", d->name);
        return true;
    }
    putchar(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f) ? c : '?');
    d->line_start = c == '\n';
    return true;
}

static int
show_contents(struct spool_msg *m, struct display *d)
{
    char *buf = malloc(SHOW_BUF);
    struct errbuf err;
    ssize_t n, i;
    bool more = true;

    if (buf == NULL) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    printf("*** HEADERS %s ***\n", d->name);
    while (more && (n = spool_msg_read(m, buf, SHOW_BUF, &err)) > 0)
        for (i = 0; i < n && more; i++)
            more = display_byte(d, (unsigned char)buf[i]);
    x_free(buf);
    if (more && n < 0) {
        cli_errx("show: %s", err.msg);
        return EXIT_IOERR;
    }
    if (d->pending_cr)
        putchar('?');
    if (!d->line_start && !(d->in_body && !d->body))
        putchar('\n');
    printf("*** END %s ***\n", d->name);
    return EXIT_OK;
}

static void
show_envelope(struct spool_msg *m, const char *name)
{
    const struct envelope *env = spool_msg_envelope(m);
    const char *path = spool_msg_path(m), *slash;
    char num[32], when[32];
    size_t i;

    slash = strrchr(path, '/');
    printf("*** ENVELOPE %s ***\n", name);
    printf("file: %s\n", path);
    printf("state: %s\n", slash != NULL && slash - path >= 5 &&
                          strncmp(slash - 5, "/" SPOOL_HOLD_DIR, 5) == 0 ? "on hold" : "queued");
    printf("message_size: %llu\n", (unsigned long long)spool_msg_body_size(m));
    printf("customer: %s\n", env->customer);
    (void)str_printf(num, sizeof(num), "%lld", (long long)env->arrival);
    cli_format_time(num, when, sizeof(when));
    printf("arrival: %s (%s)\n", when, num);
    printf("queue_id: %s\n", env->queue_id[0] ? env->queue_id : "-");
    printf("sender: <%s>%s%s\n", env->sender, env->mail_params[0] ? " " : "", env->mail_params);
    for (i = 0; i < env->nrcpt; i++)
        printf("recipient: <%s>%s%s\n", env->rcpt[i].addr, env->rcpt[i].params[0] ? " " : "",
               env->rcpt[i].params);
}

static int
parse_show_args(struct cli_ctx *ctx, bool *body_r, const char **arg_r)
{
    int i;

    *arg_r = NULL;
    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        if (strcmp(a, "--body") == 0) {
            *body_r = true;
        } else if (strcmp(a, "-c") == 0) {
            if (++i >= ctx->argc)
                return cli_usage_error("show: -c needs a value"), -1;
            ctx->config_path = ctx->argv[i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] show [--body] [CUSTOMER/]ID\n");
            return -2;
        } else if (a[0] == '-') {
            return cli_usage_error("show: bad option '%s'", a), -1;
        } else if (*arg_r != NULL) {
            return cli_usage_error("show: unexpected argument '%s'", a), -1;
        } else {
            *arg_r = a;
        }
    }
    if (*arg_r == NULL)
        return cli_usage_error("show: expected [--body] [CUSTOMER/]ID"), -1;
    return 0;
}

int
cmd_show(struct cli_ctx *ctx)
{
    struct display d = {NULL, false, true, false, false};
    char name[CUSTOMER_NAME_MAX + SPOOL_ID_MAX + 2];
    struct spool_msg *m = NULL;
    struct target t;
    struct errbuf err;
    struct spool *sp;
    const char *arg;
    int rc;

    if ((rc = parse_show_args(ctx, &d.body, &arg)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if ((sp = open_spool(ctx, &rc)) == NULL)
        return rc;
    if ((rc = resolve(sp, "show", arg, &t)) != EXIT_OK)
        goto out;
    if ((rc = spool_msg_peek(sp, t.customer, t.id, &m, &err)) != 0) {
        cli_errx("show: %s", err.msg);
        rc = rc == SPOOL_MALFORMED ? EXIT_DATAERR : exit_for(errno);
        goto out;
    }
    (void)str_printf(name, sizeof(name), "%s/%s", t.customer, t.id);
    d.name = name;
    show_envelope(m, name);
    rc = show_contents(m, &d);
out:
    spool_msg_close(m);
    spool_free(sp);
    return rc;
}

/* --- delete, hold, release --- */

struct action {
    const char *cmd;             /* "delete" */
    int (*act)(struct spool *, const char *, const char *, struct errbuf *);
    bool all_on_hold;            /* --customer: the messages on hold (release) */
    bool all_queued;             /* --customer: the messages not on hold (hold) */
    const char *done;            /* printed and logged: "deleted" */
    bool confirm;                /* needs --yes */
};

static const struct action actions[] = {
    {"delete", spool_delete, true, true, "deleted", true},
    {"hold", spool_hold, false, true, "put on hold", false},
    {"release", spool_release, true, false, "released from hold", false},
};

struct bulk_opts {
    const char *customer;        /* --customer C */
    bool yes;                    /* --yes */
    const char **ids;            /* the ids on the command line */
    int nids;
};

static int
parse_bulk_args(struct cli_ctx *ctx, const struct action *a, struct bulk_opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    if ((o->ids = x_calloc((size_t)ctx->argc, sizeof(*o->ids))) == NULL)
        return cli_errx("out of memory"), -1;
    for (i = 1; i < ctx->argc; i++) {
        const char *s = ctx->argv[i];

        if (strcmp(s, "--yes") == 0 && a->confirm) {
            o->yes = true;
        } else if (strcmp(s, "--customer") == 0 || strcmp(s, "-c") == 0) {
            if (++i >= ctx->argc)
                return cli_usage_error("%s: %s needs a value", a->cmd, s), -1;
            if (s[1] == 'c')
                ctx->config_path = ctx->argv[i];
            else
                o->customer = ctx->argv[i];
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] %s [CUSTOMER/]ID...|--customer C%s\n", a->cmd,
                   a->confirm ? " --yes" : "");
            return -2;
        } else if (s[0] == '-') {
            return cli_usage_error("%s: bad option '%s'", a->cmd, s), -1;
        } else {
            o->ids[o->nids++] = s;
        }
    }
    if ((o->nids > 0) == (o->customer != NULL))
        return cli_usage_error("%s: expected ID... or --customer C", a->cmd), -1;
    return 0;
}

/* act_one - the action on one message, printed and logged; exit code */
static int
act_one(struct spool *sp, const struct action *a, const struct bulk_opts *o,
        const struct target *t)
{
    struct errbuf err;

    if (!o->yes && a->confirm) {
        printf("would %s %s/%s\n", a->cmd, t->customer, t->id);
        return EXIT_OK;
    }
    if (a->act(sp, t->customer, t->id, &err) < 0) {
        if (errno == EALREADY) {   /* hold of a held message: nothing to do */
            cli_errx("%s: %s", a->cmd, err.msg);
            return EXIT_OK;
        }
        cli_errx("%s: %s", a->cmd, err.msg);
        return exit_for(errno);
    }
    log_info("%s: id=%s: %s by the administrator (autoturnctl %s, uid %u)", t->customer, t->id,
             a->done, a->cmd, (unsigned)getuid());
    printf("%s/%s: %s\n", t->customer, t->id, a->done);
    return EXIT_OK;
}

/* worse - the exit code to keep: any failure beats success */
static int
worse(int a, int b)
{
    return a != EXIT_OK ? a : b;
}

static int
act_ids(struct spool *sp, const struct action *a, const struct bulk_opts *o, size_t *count_r)
{
    struct target t;
    int i, rc = EXIT_OK, one;

    for (i = 0; i < o->nids; i++) {
        if ((one = resolve(sp, a->cmd, o->ids[i], &t)) == EXIT_OK) {
            one = act_one(sp, a, o, &t);
            *count_r += one == EXIT_OK;
        }
        rc = worse(rc, one);
    }
    return rc;
}

static int
act_customer(struct spool *sp, const struct action *a, const struct bulk_opts *o,
             size_t *count_r)
{
    struct spool_entry *v = NULL;
    struct errbuf err;
    struct target t;
    const char *why;
    size_t n = 0, i;
    int rc = EXIT_OK;

    if (!customer_name_valid(o->customer, &why))
        return cli_usage_error("%s: bad customer name '%s': %s", a->cmd, o->customer, why);
    if (spool_list_all(sp, o->customer, &v, &n, &err) < 0) {
        cli_errx("%s: %s", a->cmd, err.msg);
        return EXIT_IOERR;
    }
    (void)str_copy(t.customer, sizeof(t.customer), o->customer);   /* checked above */
    for (i = 0; i < n; i++) {
        if (!(v[i].on_hold ? a->all_on_hold : a->all_queued))
            continue;
        (void)str_copy(t.id, sizeof(t.id), v[i].id);                /* from the spool */
        if (act_one(sp, a, o, &t) == EXIT_OK)
            (*count_r)++;
        else
            rc = EXIT_IOERR;
    }
    x_free(v);
    return rc;
}

static int
bulk(struct cli_ctx *ctx, const struct action *a)
{
    const struct config *cfg;
    struct bulk_opts o;
    struct spool *sp;
    size_t count = 0;
    int rc;

    if ((rc = parse_bulk_args(ctx, a, &o)) < 0) {
        x_free(o.ids);
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    }
    if ((sp = open_spool(ctx, &rc)) == NULL) {
        x_free(o.ids);
        return rc;
    }
    cfg = cli_config(ctx);
    cli_apply_logging(cfg);
    rc = o.customer ? act_customer(sp, a, &o, &count) : act_ids(sp, a, &o, &count);
    if (o.customer != NULL)
        printf("-- %s: %zu message%s %s%s\n", o.customer, count, count == 1 ? "" : "s",
               a->confirm && !o.yes ? "to be " : "", a->done);
    if (a->confirm && !o.yes && count > 0) {
        cli_errx("%s: nothing done: confirm with --yes", a->cmd);
        rc = worse(rc, EXIT_USAGE);
    }
    spool_free(sp);
    x_free(o.ids);
    return rc;
}

int
cmd_delete(struct cli_ctx *ctx)
{
    return bulk(ctx, &actions[0]);
}

int
cmd_hold(struct cli_ctx *ctx)
{
    return bulk(ctx, &actions[1]);
}

int
cmd_release(struct cli_ctx *ctx)
{
    return bulk(ctx, &actions[2]);
}
