/* SPDX-License-Identifier: ISC */
/*
 * commands.h - the autoturnctl sub-commands and what they share: exit
 * codes (sysexits(3), as Sendmail and Postfix tools use them) and the
 * loaded configuration.
 */
#ifndef AUTOTURN_CTL_COMMANDS_H
#define AUTOTURN_CTL_COMMANDS_H

#include <stdbool.h>

#include "config.h"

/* Exit codes, documented in autoturnctl(8). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_NOTFOUND = 1,       /* lookup/show: no such customer or match */
    EXIT_USAGE = 64,         /* EX_USAGE: bad command line */
    EXIT_DATAERR = 65,       /* EX_DATAERR: errors in a customer source */
    EXIT_NOINPUT = 66,       /* EX_NOINPUT: an input file cannot be read */
    EXIT_UNAVAILABLE = 69,   /* EX_UNAVAILABLE: a daemon does not answer */
    EXIT_SOFTWARE = 70,      /* EX_SOFTWARE: internal error */
    EXIT_CANTCREAT = 73,     /* EX_CANTCREAT: cannot write the output */
    EXIT_IOERR = 74,         /* EX_IOERR: I/O error on spool or table */
    EXIT_TEMPFAIL = 75,      /* EX_TEMPFAIL: table missing or corrupt */
    EXIT_NOPERM = 77,        /* EX_NOPERM: refused (a target, or this user at a socket) */
    EXIT_CONFIG = 78,        /* EX_CONFIG: the configuration is invalid */
};

/* What every command gets: the command line after the command name, and
 * the configuration (loaded on first use by cli_config()). */
struct cli_ctx {
    const char *config_path;     /* -c FILE, or NULL for the default */
    int argc;
    char **argv;                 /* argv[0] is the command name */
    bool json;                   /* --json (listing commands only) */
};

/* cli_config - load the configuration once. An explicit -c file must
 * exist; the default file may be absent (built-in defaults are used).
 * On error prints every "FILE:LINE: message" and returns NULL. */
const struct config *cli_config(struct cli_ctx *ctx);

/* cli_positional - parse the options every sub-command takes (-c FILE,
 * -h, and --json for the listing commands) from ctx->argv, before or
 * after the arguments; on success returns the index of the first
 * positional argument and checks there are between min and max of them;
 * otherwise prints the problem and returns -1 (help: -2, exit 0). */
int cli_positional(struct cli_ctx *ctx, int min, int max);

/* cli_apply_logging - log where the daemons log (autoturn.conf log { }),
 * as "autoturnctl", for the commands that change the spool: what they did
 * is logged as a daemon's action would be. */
void cli_apply_logging(const struct config *cfg);

/* cli_format_time - a unix time (decimal text) as local "YYYY-MM-DD
 * HH:MM:SS"; "-" for NULL or 0. */
void cli_format_time(const char *unix_time, char *buf, size_t size);

/* cli_usage_error - print "autoturnctl: MSG" and the usage hint; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_errx - print "autoturnctl: MSG" to stderr. */
void cli_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_check_config(struct cli_ctx *ctx);   /* cmd_config.c */
int cmd_compile(struct cli_ctx *ctx);        /* cmd_table.c */
int cmd_customers(struct cli_ctx *ctx);
int cmd_lookup(struct cli_ctx *ctx);
int cmd_secret(struct cli_ctx *ctx);
int cmd_queue(struct cli_ctx *ctx);          /* cmd_queue.c */
int cmd_grant(struct cli_ctx *ctx);          /* cmd_grants.c: talk to autoturn-policyd */
int cmd_revoke(struct cli_ctx *ctx);
int cmd_grants(struct cli_ctx *ctx);
int cmd_flush(struct cli_ctx *ctx);          /* cmd_flush.c: talk to autoturn-flusher */
int cmd_status(struct cli_ctx *ctx);
int cmd_show(struct cli_ctx *ctx);           /* cmd_msg.c: one message, by spool id */
int cmd_delete(struct cli_ctx *ctx);
int cmd_hold(struct cli_ctx *ctx);
int cmd_release(struct cli_ctx *ctx);
int cmd_config(struct cli_ctx *ctx);         /* cmd_config.c */
int cmd_customer(struct cli_ctx *ctx);       /* cmd_customer.c: add/remove in the source */
int cmd_import(struct cli_ctx *ctx);          /* import.c: move from an old recipe */

struct ctl_msg;
/* cli_policyd_ask - send req to autoturn-policyd's control socket
 * (cmd_grants.c); prints any error; returns an exit code. */
int cli_policyd_ask(struct cli_ctx *ctx, const struct ctl_msg *req, struct ctl_msg *final_r);

#endif
