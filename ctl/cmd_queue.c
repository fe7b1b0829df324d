/* SPDX-License-Identifier: ISC */
/*
 * cmd_queue.c - "autoturnctl queue [CUSTOMER] [--json]": what is held,
 * like mailq. Without a customer: one line per customer spool (messages,
 * bytes, age of the oldest message, how many are on hold). With one: one
 * entry per message (id, size, age, sender, recipients), oldest first, a
 * message on hold marked with '!' after its id as mailq does.
 *
 * Read-only: it lists and peeks (spool_msg_peek), so it never creates,
 * moves or changes a spool file, even a malformed one.
 */
#include <errno.h>
#include <time.h>

#include "commands.h"
#include "customer.h"
#include "json.h"
#include "spool.h"
#include "units.h"
#include "util.h"

struct totals {
    uint64_t messages, bytes, on_hold;
    size_t customers;
};

static const char *
age_text(time_t now, time_t then, char *buf, size_t size)
{
    if (then == 0)
        return "-";
    return units_format_duration(now > then ? (uint64_t)(now - then) : 0, buf, size);
}

/* on_hold_text - ", N on hold" when N > 0, else "" */
static const char *
on_hold_text(uint64_t n, char *buf, size_t size)
{
    buf[0] = '\0';
    if (n > 0)
        (void)str_printf(buf, size, ", %llu on hold", (unsigned long long)n);
    return buf;
}

static void
summary_row(struct json *j, const char *name, const struct spool_stats *st, time_t now)
{
    char age[32], bytes[32];

    if (j != NULL) {
        json_object(j, NULL);
        json_string(j, "customer", name);
        json_uint(j, "messages", st->messages);
        json_uint(j, "bytes", st->bytes);
        json_int(j, "oldest", (int64_t)st->oldest);
        json_uint(j, "on_hold", st->on_hold);
        json_end(j, '}');
        return;
    }
    printf("%-24s %9llu %10s %10s %8llu\n", name, (unsigned long long)st->messages,
           units_format_size(st->bytes, bytes, sizeof(bytes)),
           age_text(now, st->oldest, age, sizeof(age)), (unsigned long long)st->on_hold);
}

static void
summary_end(struct json *j, const struct totals *t)
{
    char hold[48];

    if (j != NULL) {
        json_end(j, ']');
        json_uint(j, "messages", t->messages);
        json_uint(j, "bytes", t->bytes);
        json_uint(j, "on_hold", t->on_hold);
        json_end(j, '}');
        return;
    }
    printf("-- %llu message%s, %llu bytes held for %zu customer%s%s\n",
           (unsigned long long)t->messages, t->messages == 1 ? "" : "s",
           (unsigned long long)t->bytes, t->customers, t->customers == 1 ? "" : "s",
           on_hold_text(t->on_hold, hold, sizeof(hold)));
}

static int
queue_summary(struct spool *sp, struct json *j)
{
    struct totals t = {0};
    char **names = NULL;
    struct spool_stats st;
    struct errbuf err;
    size_t n = 0, i;
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
    if (j != NULL) {
        json_object(j, NULL);
        json_array(j, "customers");
    } else {
        printf("%-24s %9s %10s %10s %8s\n", "CUSTOMER", "MESSAGES", "BYTES", "OLDEST",
               "ON-HOLD");
    }
    for (i = 0; i < n; i++) {
        if (spool_stats(sp, names[i], &st, &err) < 0) {
            cli_errx("%s", err.msg);
            rc = EXIT_IOERR;
            continue;
        }
        if (st.messages == 0)
            continue;
        summary_row(j, names[i], &st, now);
        t.messages += st.messages;
        t.bytes += st.bytes;
        t.on_hold += st.on_hold;
        t.customers++;
    }
    summary_end(j, &t);
    spool_names_free(names, n);
    return rc;
}

static void
message_json(struct json *j, const struct spool_entry *e, const struct envelope *env,
             const char *error)
{
    size_t i;

    json_object(j, NULL);
    json_string(j, "id", e->id);
    json_uint(j, "size", e->size);
    json_int(j, "arrival", (int64_t)e->arrival);
    json_bool(j, "on_hold", e->on_hold);
    json_string(j, "error", error);
    if (env != NULL) {
        json_string(j, "queue_id", env->queue_id[0] ? env->queue_id : NULL);
        json_string(j, "sender", env->sender);
        json_array(j, "recipients");
        for (i = 0; i < env->nrcpt; i++)
            json_string(j, NULL, env->rcpt[i].addr);
        json_end(j, ']');
    }
    json_end(j, '}');
}

static void
message_text(const struct spool_entry *e, const struct envelope *env, const char *error,
             time_t now)
{
    char age[32], id[SPOOL_ID_MAX + 1];
    size_t i;

    (void)str_printf(id, sizeof(id), "%s%s", e->id, e->on_hold ? "!" : "");
    printf("%-44s %10llu %8s  ", id, (unsigned long long)e->size,
           age_text(now, e->arrival, age, sizeof(age)));
    if (env == NULL) {
        printf("(%s)\n", error);
        return;
    }
    printf("<%s>\n", env->sender);
    for (i = 0; i < env->nrcpt; i++)
        printf("%66s<%s>\n", "", env->rcpt[i].addr);
}

static void
print_message(struct spool *sp, const char *customer, const struct spool_entry *e,
              struct json *j, time_t now)
{
    struct spool_msg *m = NULL;
    const struct envelope *env = NULL;
    struct errbuf err;

    if (spool_msg_peek(sp, customer, e->id, &m, &err) == 0)
        env = spool_msg_envelope(m);
    if (j != NULL)
        message_json(j, e, env, env ? NULL : err.msg);
    else
        message_text(e, env, err.msg, now);
    spool_msg_close(m);
}

static int
queue_customer(struct spool *sp, const char *customer, struct json *j)
{
    struct spool_entry *v = NULL;
    uint64_t bytes = 0, on_hold = 0;
    struct errbuf err;
    const char *why;
    char hold[48];
    time_t now = time(NULL);
    size_t n = 0, i;

    if (!customer_name_valid(customer, &why))
        return cli_usage_error("queue: bad customer name '%s': %s", customer, why);
    if (spool_list_all(sp, customer, &v, &n, &err) < 0) {
        cli_errx("%s", err.msg);
        return EXIT_IOERR;
    }
    if (j != NULL) {
        json_object(j, NULL);
        json_string(j, "customer", customer);
        json_array(j, "messages");
    } else {
        printf("%-44s %10s %8s  %s\n", "ID", "SIZE", "AGE", "SENDER / RECIPIENTS");
    }
    for (i = 0; i < n; i++) {
        print_message(sp, customer, &v[i], j, now);
        bytes += v[i].size;
        on_hold += v[i].on_hold;
    }
    if (j != NULL) {
        json_end(j, ']');
        json_uint(j, "count", n);
        json_uint(j, "bytes", bytes);
        json_uint(j, "on_hold", on_hold);
        json_end(j, '}');
    } else {
        printf("-- %s: %zu message%s, %llu bytes%s\n", customer, n, n == 1 ? "" : "s",
               (unsigned long long)bytes, on_hold_text(on_hold, hold, sizeof(hold)));
    }
    x_free(v);
    return EXIT_OK;
}

int
cmd_queue(struct cli_ctx *ctx)
{
    const struct config *cfg;
    struct spool *sp;
    struct json_buf jb;
    struct json *j = NULL;
    int first = cli_positional(ctx, 0, 1), rc;

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    if ((cfg = cli_config(ctx)) == NULL)
        return EXIT_CONFIG;
    if ((sp = spool_new(cfg->spool_dir)) == NULL || (ctx->json && json_buf_open(&jb) < 0)) {
        spool_free(sp);
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    if (ctx->json)
        j = &jb.j;
    if (first < ctx->argc)
        rc = queue_customer(sp, ctx->argv[first], j);
    else
        rc = queue_summary(sp, j);
    if (j != NULL && json_buf_close(&jb, rc == EXIT_OK) < 0)
        rc = EXIT_SOFTWARE;
    spool_free(sp);
    return rc;
}
