/* SPDX-License-Identifier: ISC */
/*
 * autoturnctl.c - the administrator's command: global options (-c, --help,
 * --version), dispatch to the sub-commands, shared error printing and the
 * lazily loaded configuration. Each sub-command lives in a cmd_*.c file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "paths.h"
#include "util.h"

struct command {
    const char *name;
    int (*run)(struct cli_ctx *ctx);
    const char *args;
    const char *summary;
};

static const struct command commands[] = {
    {"check-config", cmd_check_config, "", "validate the configuration file"},
    {"compile", cmd_compile, "[SRC [DST]]", "compile the customer source into the table"},
    {"customers", cmd_customers, "[NAME] [--json]", "list customers, or show one"},
    {"lookup", cmd_lookup, "domain|address VALUE", "which customer holds VALUE, and why"},
    {"secret", cmd_secret, "", "make a stored secret from a password (stdin)"},
    {"queue", cmd_queue, "[CUSTOMER] [--json]", "show held mail (like mailq)"},
    {"grant", cmd_grant, "IP [--user U] [--customer C] [--ttl D]", "let IP relay for a while"},
    {"revoke", cmd_revoke, "IP", "end the grant of IP"},
    {"grants", cmd_grants, "[--json]", "list live grants"},
    {"flush", cmd_flush, "CUSTOMER|--all|--domain D [--to ADDR] [--wait]",
     "deliver held mail now"},
    {"status", cmd_status, "[CUSTOMER] [--json]", "what autoturn-flusher is doing"},
    {"show", cmd_show, "[--body] [CUSTOMER/]ID", "a held message's envelope and headers"},
    {"delete", cmd_delete, "ID...|--customer C --yes", "delete held mail (logged)"},
    {"hold", cmd_hold, "ID...|--customer C", "keep held mail from any flush"},
    {"release", cmd_release, "ID...|--customer C", "let held mail be flushed again"},
    {"config", cmd_config, "[-n] [NAME...]", "effective settings (-n: non-defaults)"},
    {"customer", cmd_customer, "add NAME [--KEY VALUE]...|remove NAME",
     "edit the customer source and compile it"},
    {"import", cmd_import, "RECIPE [--apply]", "move from qmail/serialmail, qsmtpd, ZMailer, vpopmail"},
};

/* the listing commands, which take --json */
static const char *const json_commands[] = {"queue", "grants", "status", "customers"};

static struct config loaded_config;
static bool config_loaded;

static void
print_usage(FILE *fp)
{
    size_t i;

    fprintf(fp, "usage: autoturnctl [-c FILE] COMMAND [ARGS]\n"
                "       autoturnctl --help | --version\n\n"
                "commands:\n");
    for (i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(fp, "  %-12s %-22s %s\n", commands[i].name, commands[i].args,
                commands[i].summary);
    fprintf(fp, "\n--json (queue, grants, status, customers): the same as one JSON object.\n");
    fprintf(fp, "\noptions:\n"
                "  -c FILE      configuration file (default %s)\n"
                "  -h, --help   this text\n"
                "  -V, --version\n\n"
                "Exit status: 0 ok, 1 not found, 64 usage, 65 bad data, 66 no input,\n"
                "69 daemon not answering, 73 cannot create, 74 I/O error,\n"
                "75 temporary failure (table unavailable, mail deferred), 77 not authorised,\n"
                "78 bad config.\n"
                "See autoturnctl(8).\n", AUTOTURN_CONFIG_FILE);
}

void
cli_errx(const char *fmt, ...)
{
    va_list ap;

    fputs("autoturnctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void
cli_format_time(const char *v, char *buf, size_t size)
{
    time_t t;
    struct tm tm;

    (void)str_copy(buf, size, "-");
    if (v == NULL || (t = (time_t)strtoll(v, NULL, 10)) == 0)
        return;
    if (localtime_r(&t, &tm) != NULL)
        strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

int
cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("autoturnctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'autoturnctl --help'.\n", stderr);
    return EXIT_USAGE;
}

static void
print_config_error(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

const struct config *
cli_config(struct cli_ctx *ctx)
{
    const char *path = ctx->config_path ? ctx->config_path : AUTOTURN_CONFIG_FILE;

    if (config_loaded)
        return &loaded_config;
    if (ctx->config_path == NULL && access(path, F_OK) < 0 && errno == ENOENT) {
        config_defaults(&loaded_config);
    } else if (config_load(path, &loaded_config, print_config_error, NULL) < 0) {
        return NULL;
    }
    config_loaded = true;
    return &loaded_config;
}

void
cli_apply_logging(const struct config *cfg)
{
    config_apply_logging(cfg, "autoturnctl");
}

static const struct command *find_command(const char *name);

static bool
takes_json(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(json_commands); i++)
        if (strcmp(json_commands[i], name) == 0)
            return true;
    return false;
}

int
cli_positional(struct cli_ctx *ctx, int min, int max)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct command *cmd = find_command(ctx->argv[0]);
    int c, n;

    opterr = 0;
    while ((c = getopt_long(ctx->argc, ctx->argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ctx->config_path = optarg;
            break;
        case 'h':
            printf("usage: autoturnctl [-c FILE] %s %s\n", cmd->name, cmd->args);
            return -2;
        case 'j':
            if (takes_json(cmd->name)) {
                ctx->json = true;
                break;
            }
            /* fall through */
        default:
            if (c == '?' && optopt != 0)
                cli_usage_error("%s: bad option '-%c'", cmd->name, optopt);
            else
                cli_usage_error("%s: bad option '%s'", cmd->name, ctx->argv[optind - 1]);
            return -1;
        }
    }
    n = ctx->argc - optind;
    if (n < min || n > max) {
        cli_usage_error("%s: expected %s%s", cmd->name, cmd->args[0] ? "" : "no arguments",
                        cmd->args);
        return -1;
    }
    return optind;
}

static const struct command *
find_command(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli_ctx ctx = {0};
    const struct command *cmd;
    int c;

    log_init("autoturnctl", LOG_DEST_STDERR, 0, LOG_LEVEL_INFO);
    while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ctx.config_path = optarg;
            break;
        case 'h':
            print_usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("autoturnctl %s\n", AUTOTURN_VERSION);
            return EXIT_OK;
        default:
            return cli_usage_error("bad option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("missing command");
    cmd = find_command(argv[optind]);
    if (cmd == NULL)
        return cli_usage_error("unknown command '%s'", argv[optind]);
    ctx.argc = argc - optind;
    ctx.argv = argv + optind;
    optind = 0;   /* sub-commands parse their own options from ctx.argv; 0 (not 1)
                     makes glibc's getopt start afresh, permutation state included */
    return cmd->run(&ctx);
}
