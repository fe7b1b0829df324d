/* SPDX-License-Identifier: ISC */
/*
 * cmd_config.c - "autoturnctl check-config": load the configuration the
 * way a daemon would and print every "FILE:LINE: message"; "autoturnctl
 * config [-n] [NAME...]": every effective setting (with -n only those that
 * differ from the built-in defaults), like postconf and postconf -n.
 */
#include <getopt.h>

#include "commands.h"
#include "paths.h"
#include "util.h"

int
cmd_check_config(struct cli_ctx *ctx)
{
    int first = cli_positional(ctx, 0, 0);

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    /* check-config never falls back to defaults: a missing file is an error. */
    if (ctx->config_path == NULL)
        ctx->config_path = AUTOTURN_CONFIG_FILE;
    if (cli_config(ctx) == NULL)
        return EXIT_CONFIG;
    printf("%s: ok\n", ctx->config_path);
    return EXIT_OK;
}

/* --- config: the effective settings, like postconf --- */

struct config_opts {
    bool non_default;            /* -n */
    char **names;                /* the settings asked for; none = all */
    int nnames;
    bool *seen;                  /* per name: printed (or at least known) */
};

static void
print_setting(void *ctx, const char *name, const char *value, bool is_default)
{
    struct config_opts *o = ctx;
    int i;
    bool wanted = o->nnames == 0;

    for (i = 0; i < o->nnames; i++)
        if (strcmp(o->names[i], name) == 0) {
            o->seen[i] = true;
            wanted = true;
        }
    if (wanted && !(o->non_default && is_default))
        printf("%s =%s%s\n", name, value[0] ? " " : "", value);
}

static int
parse_config_args(struct cli_ctx *ctx, struct config_opts *o)
{
    int c;

    opterr = 0;
    while ((c = getopt(ctx->argc, ctx->argv, "c:hn")) != -1) {
        switch (c) {
        case 'c':
            ctx->config_path = optarg;
            break;
        case 'n':
            o->non_default = true;
            break;
        case 'h':
            printf("usage: autoturnctl [-c FILE] config [-n] [NAME...]\n");
            return -2;
        default:
            return cli_usage_error("config: bad option '-%c'", optopt), -1;
        }
    }
    o->names = ctx->argv + optind;
    o->nnames = ctx->argc - optind;
    return 0;
}

int
cmd_config(struct cli_ctx *ctx)
{
    struct config_opts o = {0};
    const struct config *cfg;
    int rc, i;

    if ((rc = parse_config_args(ctx, &o)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if ((cfg = cli_config(ctx)) == NULL)
        return EXIT_CONFIG;
    if ((o.seen = x_calloc((size_t)o.nnames + 1, sizeof(*o.seen))) == NULL ||
        config_foreach(cfg, print_setting, &o) < 0) {
        x_free(o.seen);
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    rc = EXIT_OK;
    for (i = 0; i < o.nnames; i++)
        if (!o.seen[i]) {
            cli_errx("config: unknown setting '%s'", o.names[i]);
            rc = EXIT_NOTFOUND;
        }
    x_free(o.seen);
    return rc;
}
