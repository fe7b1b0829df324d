/* SPDX-License-Identifier: ISC */
/*
 * cmd_config.c - "autoturnctl check-config": load the configuration the
 * way a daemon would and print every "FILE:LINE: message".
 */
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
