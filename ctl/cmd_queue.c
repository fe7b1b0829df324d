/* SPDX-License-Identifier: ISC */
/*
 * cmd_queue.c - "autoturnctl queue [CUSTOMER]": what is held, like mailq.
 * Without a customer: one line per customer spool (messages, bytes, age of
 * the oldest message). With one: one entry per message (id, size, age,
 * sender, recipients), oldest first. Reads the spool only.
 */
#include <errno.h>
#include <time.h>

#include "commands.h"
#include "customer.h"
#include "spool.h"
#include "units.h"
#include "util.h"

static const char *
age_text(time_t now, time_t then, char *buf, size_t size)
{
    if (then == 0)
        return "-";
    return units_format_duration(now > then ? (uint64_t)(now - then) : 0, buf, size);
}

static int
queue_summary(struct spool *sp)
{
    uint64_t total_msgs = 0, total_bytes = 0;
    char **names = NULL, age[32], bytes[32];
    struct spool_stats st;
    struct errbuf err;
    size_t n = 0, i, shown = 0;
    time_t now = time(NULL);
    int rc = EXIT_OK;

    if (spool_customers(sp, &names, &n, &err) < 0) {
        if (errno != ENOENT) {
            cli_errx("%s", err.msg);
            return EXIT_IOERR;
        }
        /* A fresh install before the first held message: nothing is held. */
        cli_errx("warning: spool directory %s does not exist yet", spool_root(sp));
        n = 0;
    }
    printf("%-24s %9s %10s %10s\n", "CUSTOMER", "MESSAGES", "BYTES", "OLDEST");
    for (i = 0; i < n; i++) {
        if (spool_stats(sp, names[i], &st, &err) < 0) {
            cli_errx("%s", err.msg);
            rc = EXIT_IOERR;
            continue;
        }
        if (st.messages == 0)
            continue;
        printf("%-24s %9llu %10s %10s\n", names[i], (unsigned long long)st.messages,
               units_format_size(st.bytes, bytes, sizeof(bytes)),
               age_text(now, st.oldest, age, sizeof(age)));
        total_msgs += st.messages;
        total_bytes += st.bytes;
        shown++;
    }
    printf("-- %llu message%s, %llu bytes held for %zu customer%s\n",
           (unsigned long long)total_msgs, total_msgs == 1 ? "" : "s",
           (unsigned long long)total_bytes, shown, shown == 1 ? "" : "s");
    spool_names_free(names, n);
    return rc;
}

static void
print_message(struct spool *sp, const char *customer, const struct spool_entry *e, time_t now)
{
    const struct envelope *env;
    struct spool_msg *m = NULL;
    struct errbuf err;
    char age[32];
    size_t i;
    int rc;

    printf("%-44s %10llu %8s  ", e->id, (unsigned long long)e->size,
           age_text(now, e->arrival, age, sizeof(age)));
    rc = spool_msg_open(sp, customer, e->id, &m, &err);
    if (rc == SPOOL_MALFORMED) {
        printf("(malformed: moved to bad/)\n");
        return;
    }
    if (rc < 0) {
        printf("(unreadable: %s)\n", err.msg);
        return;
    }
    env = spool_msg_envelope(m);
    printf("<%s>\n", env->sender);
    for (i = 0; i < env->nrcpt; i++)
        printf("%66s<%s>\n", "", env->rcpt[i].addr);
    spool_msg_close(m);
}

static int
queue_customer(struct spool *sp, const char *customer)
{
    struct spool_entry *v = NULL;
    uint64_t bytes = 0;
    struct errbuf err;
    const char *why;
    time_t now = time(NULL);
    size_t n = 0, i;

    if (!customer_name_valid(customer, &why))
        return cli_usage_error("queue: bad customer name '%s': %s", customer, why);
    if (spool_list(sp, customer, &v, &n, &err) < 0) {
        cli_errx("%s", err.msg);
        return EXIT_IOERR;
    }
    printf("%-44s %10s %8s  %s\n", "ID", "SIZE", "AGE", "SENDER / RECIPIENTS");
    for (i = 0; i < n; i++) {
        print_message(sp, customer, &v[i], now);
        bytes += v[i].size;
    }
    printf("-- %s: %zu message%s, %llu bytes\n", customer, n, n == 1 ? "" : "s",
           (unsigned long long)bytes);
    x_free(v);
    return EXIT_OK;
}

int
cmd_queue(struct cli_ctx *ctx)
{
    const struct config *cfg;
    struct spool *sp;
    int first = cli_positional(ctx, 0, 1), rc;

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    if ((cfg = cli_config(ctx)) == NULL)
        return EXIT_CONFIG;
    if ((sp = spool_new(cfg->spool_dir)) == NULL) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    if (first < ctx->argc)
        rc = queue_customer(sp, ctx->argv[first]);
    else
        rc = queue_summary(sp);
    spool_free(sp);
    return rc;
}
