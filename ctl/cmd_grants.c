/*
 * cmd_grants.c - placeholder until the policy service lands: grant,
 * revoke and grants report that the command is not available yet.
 */
#include "commands.h"

static int
not_yet(struct cli_ctx *ctx)
{
    cli_errx("%s: autoturn-policyd is not part of this build", ctx->argv[0]);
    return EXIT_UNAVAILABLE;
}

int cmd_grant(struct cli_ctx *ctx) { return not_yet(ctx); }
int cmd_revoke(struct cli_ctx *ctx) { return not_yet(ctx); }
int cmd_grants(struct cli_ctx *ctx) { return not_yet(ctx); }
