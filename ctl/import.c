/* SPDX-License-Identifier: ISC */
/*
 * import.c - "autoturnctl import RECIPE [--apply]": moves a site from one
 * of the recipes autoturn replaces (qmail + serialmail AutoTURN,
 * qsmtpd/smtpcall, ZMailer smtp-etrn, vpopmail roaming users) without
 * losing held mail. Owns the command line, the plan (what the recipe
 * found), the checks on it (existing customers, conflicts, quotas, the
 * journal, a trial compile), the dry-run report, and the order of
 * --apply: held mail into the spool (imported before its customer is in
 * the table, so nothing can flush a half-recorded batch), then the source
 * and the table, then the recipe's last step (fetchmailrc files, grants).
 * Any error found before --apply starts refuses the whole import.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "import.h"
#include "import_journal.h"
#include "import_maildir.h"
#include "import_source.h"
#include "import_spool.h"
#include "units.h"
#include "util.h"

#define JOURNAL_NAME ".import-journal"

enum { R_QMAIL = 1, R_QSMTPD = 2, R_ZMAILER = 4, R_VPOPMAIL = 8, R_MAIL = 3, R_CUST = 7 };

static const struct imp_recipe recipes[] = {
    {"qmail-autoturn", true, true, import_qmail_scan, NULL, NULL},
    {"qsmtpd", true, true, import_qsmtpd_scan, import_qsmtpd_report, import_qsmtpd_apply},
    {"zmailer-routes", true, false, import_zmailer_scan, import_zmailer_report, NULL},
    {"vpopmail-roaming", false, false, import_vpopmail_scan, import_vpopmail_report,
     import_vpopmail_apply},
};

/* value options: name, field, recipes that take it */
static const struct {
    const char *name;
    size_t off;
    unsigned recipes;
} value_opts[] = {
    {"--journal", offsetof(struct imp_opts, journal), R_MAIL},
    {"--port", offsetof(struct imp_opts, port), R_CUST},
    {"--tls", offsetof(struct imp_opts, tls), R_CUST},
    {"--max-bytes", offsetof(struct imp_opts, max_bytes), R_CUST},
    {"--max-messages", offsetof(struct imp_opts, max_messages), R_CUST},
    {"--max-age", offsetof(struct imp_opts, max_age), R_CUST},
    {"--qmail", offsetof(struct imp_opts, qmail_dir), R_QMAIL | R_QSMTPD},
    {"--autoturn-dir", offsetof(struct imp_opts, autoturn_dir), R_QMAIL},
    {"--user", offsetof(struct imp_opts, user), R_QMAIL},
    {"--passwords", offsetof(struct imp_opts, passwords), R_QSMTPD},
    {"--rc-dir", offsetof(struct imp_opts, rc_dir), R_QSMTPD},
    {"--odmr-host", offsetof(struct imp_opts, odmr_host), R_QSMTPD},
    {"--odmr-port", offsetof(struct imp_opts, odmr_port), R_QSMTPD},
    {"--smtphost", offsetof(struct imp_opts, smtphost), R_QSMTPD},
    {"--routes", offsetof(struct imp_opts, routes), R_ZMAILER},
    {"--vpopmail-etc", offsetof(struct imp_opts, vpopmail_etc), R_VPOPMAIL},
    {"--relay-clear-minutes", offsetof(struct imp_opts, clear_minutes), R_VPOPMAIL},
};

static const char usage_text[] =
    "usage: autoturnctl [-c FILE] import RECIPE [OPTIONS] [--apply]\n"
    "\n"
    "Reads the files of RECIPE and prints what it would do: the customer\n"
    "source fragment, the held mail (messages, bytes) and every line it\n"
    "cannot map (FILE:LINE: why). Nothing changes without --apply.\n"
    "\n"
    "recipes:\n"
    "  qmail-autoturn    qmail + serialmail AutoTURN\n"
    "      --qmail DIR          qmail's home (/var/qmail): control/virtualdomains, rcpthosts\n"
    "      --autoturn-dir DIR   the maildirs named by IP address (QMAIL/autoturn)\n"
    "      --user NAME          the users/assign name of the prefix (autoturn)\n"
    "      --hello              the customers also used a Hello port\n"
    "  qsmtpd            qsmtpd/smtpcall \"call me back\"\n"
    "      --passwords FILE     DOMAIN:USER:PASSWORD:MAILDIR lines (QMAIL/control/passwords)\n"
    "      --qmail DIR          for control/virtualdomains (Delivered-To prefixes)\n"
    "      --rc-dir DIR         where fetchmailrc.USER files are written (.)\n"
    "      --odmr-host HOST     ODMR server in those files (myhostname)\n"
    "      --odmr-port PORT     (the ODMR listener's port, or 366)\n"
    "      --smtphost HOST[/PORT]  the customer's own server (localhost/25)\n"
    "  zmailer-routes    ZMailer smtp-etrn routes\n"
    "      --routes FILE        (/etc/zmailer/db/routes)\n"
    "  vpopmail-roaming  vpopmail roaming users: open-smtp logins become grants,\n"
    "                    tcp.smtp RELAYCLIENT rules are listed for you to place\n"
    "      --vpopmail-etc DIR   (~vpopmail/etc)\n"
    "      --relay-clear-minutes N  lifetime of a login (180)\n"
    "\n"
    "options:\n"
    "  --apply              do it: import the held mail, append to the customer source\n"
    "                       and compile it, write fetchmailrc files, make the grants\n"
    "  --copy               leave each source message in place (default: removed once\n"
    "                       its copy in the spool is durable)\n"
    "  --journal FILE       record of imported messages (SPOOL/.import-journal)\n"
    "  --port N, --tls MODE, --max-bytes SIZE, --max-messages N, --max-age D\n"
    "                       added to every new customer\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 errors in the input (nothing done), 66 input\n"
    "missing, 69 autoturn-policyd not answering, 73 cannot create, 74 I/O error.\n"
    "See autoturnctl(8) and MIGRATION.md.\n";

/* --- reporting --- */

static void
vreport(const char *file, unsigned line, const char *fmt, va_list ap)
{
    if (line > 0)
        fprintf(stderr, "%s:%u: ", file, line);
    else
        fprintf(stderr, "%s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
imp_error(struct imp_plan *p, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(file, line, fmt, ap);
    va_end(ap);
    p->errors++;
}

void
imp_note(struct imp_plan *p, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(file, line, fmt, ap);
    va_end(ap);
    p->notes++;
}

const char *
imp_file(struct imp_plan *p, const char *name)
{
    char **v;

    if (p->nfiles % 16 == 0) {
        if ((v = x_reallocarray(p->files, p->nfiles + 16, sizeof(*v))) == NULL)
            return name;
        p->files = v;
    }
    if ((p->files[p->nfiles] = x_strdup(name)) == NULL)
        return name;
    return p->files[p->nfiles++];
}

/* read_line - one line of fp into buf; 1 line, 0 end, -1 too long/NUL
 * (the rest of the line is skipped), -2 read error. */
static int
read_line(FILE *fp, char *buf, size_t size)
{
    size_t len = 0;
    bool bad = false;
    int ch;

    while ((ch = getc(fp)) != EOF && ch != '\n') {
        if (ch == '\0' || len + 1 >= size)
            bad = true;
        else
            buf[len++] = (char)ch;
    }
    buf[len] = '\0';
    if (ferror(fp))
        return -2;
    if (ch == EOF && len == 0 && !bad)
        return 0;
    return bad ? -1 : 1;
}

int
imp_read_lines(struct imp_plan *p, const char *path, imp_line_fn *fn, void *ctx)
{
    char buf[IMP_LINE_MAX + 1];
    const char *file = imp_file(p, path);
    unsigned lineno = 0;
    FILE *fp;
    int rc;

    if ((fp = fopen(path, "re")) == NULL) {
        imp_error(p, file, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    while ((rc = read_line(fp, buf, sizeof(buf))) != 0 && rc != -2) {
        lineno++;
        if (rc < 0)
            imp_error(p, file, lineno, "line too long (max %d bytes) or NUL byte", IMP_LINE_MAX);
        else
            fn(p, ctx, file, lineno, buf);
    }
    if (rc == -2)
        imp_error(p, file, 0, "read error: %s", strerror(errno));
    fclose(fp);
    return rc == -2 ? -1 : 0;
}

/* --- the plan --- */

struct imp_customer *
imp_customer_find(struct imp_plan *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->ncust; i++)
        if (strcmp(p->cust[i].name, name) == 0)
            return &p->cust[i];
    return NULL;
}

struct imp_customer *
imp_customer_get(struct imp_plan *p, const char *name, const char *file, unsigned line)
{
    struct imp_customer *c = imp_customer_find(p, name), *v;

    if (c != NULL)
        return c;
    if (p->ncust % 16 == 0) {
        if ((v = x_reallocarray(p->cust, p->ncust + 16, sizeof(*v))) == NULL)
            return NULL;
        p->cust = v;
    }
    c = &p->cust[p->ncust++];
    memset(c, 0, sizeof(*c));
    (void)str_copy(c->name, sizeof(c->name), name);
    (void)str_copy(c->delivery, sizeof(c->delivery), "connecting-ip");
    c->file = file;
    c->line = line;
    return c;
}

int
imp_add_domain(struct imp_customer *c, const char *rule)
{
    char **v;
    size_t i;

    for (i = 0; i < c->ndomains; i++)
        if (strcmp(c->domains[i], rule) == 0)
            return 0;
    if ((v = x_reallocarray(c->domains, c->ndomains + 1, sizeof(*v))) == NULL)
        return -1;
    c->domains = v;
    if ((v[c->ndomains] = x_strdup(rule)) == NULL)
        return -1;
    c->ndomains++;
    return 0;
}

int
imp_add_maildir(struct imp_customer *c, const char *path, const char *prefix, const char *file,
                unsigned line)
{
    struct imp_maildir *v;
    size_t i;

    for (i = 0; i < c->nmaildirs; i++)
        if (strcmp(c->maildirs[i].path, path) == 0)
            return 0;
    if ((v = x_reallocarray(c->maildirs, c->nmaildirs + 1, sizeof(*v))) == NULL)
        return -1;
    c->maildirs = v;
    v += c->nmaildirs;
    v->file = file;
    v->line = line;
    if ((v->path = x_strdup(path)) == NULL || (v->prefix = x_strdup(prefix)) == NULL) {
        x_free(v->path);
        return -1;
    }
    c->nmaildirs++;
    return 0;
}

const struct customer *
imp_existing_domain(const struct imp_plan *p, const char *rule, const char *name)
{
    size_t i, k;

    for (i = 0; i < p->nexisting; i++)
        for (k = 0; k < p->existing[i]->ndomains; k++)
            if (strcmp(p->existing[i]->domains[k], rule) == 0 &&
                strcmp(p->existing[i]->name, name) != 0)
                return p->existing[i];
    return NULL;
}

const struct customer *
imp_existing_net(const struct imp_plan *p, const struct ipnet *n, const char *name)
{
    size_t i, k;

    for (i = 0; i < p->nexisting; i++)
        for (k = 0; k < p->existing[i]->naddrs; k++) {
            const struct ipnet *e = &p->existing[i]->addrs[k];

            if (e->prefix <= n->prefix && ipnet_contains(e, &n->addr) &&
                (name == NULL || strcmp(p->existing[i]->name, name) != 0))
                return p->existing[i];
        }
    return NULL;
}

static void
plan_free(struct imp_plan *p)
{
    size_t i, k;

    for (i = 0; i < p->ncust; i++) {
        struct imp_customer *c = &p->cust[i];

        for (k = 0; k < c->ndomains; k++)
            x_free(c->domains[k]);
        for (k = 0; k < c->nmaildirs; k++) {
            x_free(c->maildirs[k].path);
            x_free(c->maildirs[k].prefix);
        }
        if (c->password != NULL)
            explicit_bzero(c->password, strlen(c->password));
        x_free(c->password);
        x_free(c->domains);
        x_free(c->maildirs);
    }
    for (i = 0; i < p->nmsgs; i++) {
        x_free(p->msgs[i].path);
        x_free(p->msgs[i].sender);
        x_free(p->msgs[i].rcpt);
    }
    for (i = 0; i < p->nexisting; i++)
        customer_free(p->existing[i]);
    for (i = 0; i < p->nfiles; i++)
        x_free(p->files[i]);
    x_free(p->cust);
    x_free(p->msgs);
    x_free(p->grants);
    x_free(p->nets);
    x_free(p->existing);
    x_free(p->files);
}

/* --- the command line --- */

static const struct imp_recipe *
find_recipe(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(recipes); i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

static unsigned
recipe_bit(const struct imp_recipe *r)
{
    return 1u << (unsigned)(r - recipes);
}

/* parse_args - returns 0, -1 (usage error printed) or -2 (help printed) */
static int
parse_args(struct cli_ctx *ctx, struct imp_opts *o, const struct imp_recipe **r_r)
{
    const char **slot;
    size_t k;
    int i;

    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];

        for (k = 0; k < ARRAY_LEN(value_opts) && strcmp(a, value_opts[k].name) != 0; k++)
            ;
        if (k < ARRAY_LEN(value_opts)) {
            slot = (const char **)(void *)((char *)o + value_opts[k].off);
            if (++i >= ctx->argc)
                return cli_usage_error("import: %s needs a value", a), -1;
            *slot = ctx->argv[i];
            continue;
        }
        if (strcmp(a, "--apply") == 0)
            o->apply = true;
        else if (strcmp(a, "--copy") == 0)
            o->copy = true;
        else if (strcmp(a, "--hello") == 0)
            o->hello = true;
        else if (strcmp(a, "-c") == 0 && i + 1 < ctx->argc)
            ctx->config_path = ctx->argv[++i];
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return fputs(usage_text, stdout), -2;
        else if (a[0] == '-')
            return cli_usage_error("import: bad option '%s'", a), -1;
        else if (o->recipe != NULL)
            return cli_usage_error("import: unexpected argument '%s'", a), -1;
        else
            o->recipe = a;
    }
    if (o->recipe == NULL)
        return cli_usage_error("import: expected a recipe: qmail-autoturn, qsmtpd, "
                               "zmailer-routes or vpopmail-roaming"), -1;
    if ((*r_r = find_recipe(o->recipe)) == NULL)
        return cli_usage_error("import: unknown recipe '%s'", o->recipe), -1;
    for (k = 0; k < ARRAY_LEN(value_opts); k++)
        if (*(const char *const *)(const void *)((const char *)o + value_opts[k].off) != NULL &&
            !(value_opts[k].recipes & recipe_bit(*r_r)))
            return cli_usage_error("import: %s is not an option of %s", value_opts[k].name,
                                   o->recipe), -1;
    if ((o->copy || o->hello) && !(recipe_bit(*r_r) & (o->hello ? R_QMAIL : R_MAIL)))
        return cli_usage_error("import: %s is not an option of %s", o->hello ? "--hello" : "--copy",
                               o->recipe), -1;
    return 0;
}

/* host_ok - a host name, address or HOST/PORT as fetchmail reads it
 * unquoted: nothing that could end the word or start another. */
static bool
host_ok(const char *s)
{
    return s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789.-_:/[]") == strlen(s);
}

/* check_values - the values that go into every new customer or file. */
static int
check_values(const struct imp_opts *o)
{
    uint64_t v;
    const char *e;

    if (o->port && (units_parse_uint(o->port, 65535, &v, &e) < 0 || v == 0))
        return cli_usage_error("import: bad --port '%s': a number from 1 to 65535", o->port);
    if (o->tls && strcmp(o->tls, "none") && strcmp(o->tls, "may") && strcmp(o->tls, "encrypt"))
        return cli_usage_error("import: bad --tls '%s': none, may or encrypt", o->tls);
    if (o->max_bytes && units_parse_size(o->max_bytes, &v, &e) < 0)
        return cli_usage_error("import: bad --max-bytes '%s': %s", o->max_bytes, e);
    if (o->max_messages && units_parse_uint(o->max_messages, UINT64_MAX, &v, &e) < 0)
        return cli_usage_error("import: bad --max-messages '%s': %s", o->max_messages, e);
    if (o->max_age && units_parse_duration(o->max_age, &v, &e) < 0)
        return cli_usage_error("import: bad --max-age '%s': %s", o->max_age, e);
    if (o->clear_minutes && (units_parse_uint(o->clear_minutes, 525600, &v, &e) < 0 || v == 0))
        return cli_usage_error("import: bad --relay-clear-minutes '%s': a number of minutes "
                               "from 1 to 525600", o->clear_minutes);
    if (o->odmr_port && (units_parse_uint(o->odmr_port, 65535, &v, &e) < 0 || v == 0))
        return cli_usage_error("import: bad --odmr-port '%s': a number from 1 to 65535",
                               o->odmr_port);
    if (o->odmr_host && !host_ok(o->odmr_host))
        return cli_usage_error("import: bad --odmr-host '%s': a host name or address", o->odmr_host);
    if (o->smtphost && !host_ok(o->smtphost))
        return cli_usage_error("import: bad --smtphost '%s': HOST or HOST/PORT", o->smtphost);
    return 0;
}

/* --- checks on the plan --- */

/* check_existing - customers already in the source, and the quota each
 * one will have. */
static void
check_existing(struct imp_plan *p)
{
    uint64_t mb = 0, mm = 0, ma = 0;
    size_t i, k, n;

    if (p->o->max_age)
        (void)units_parse_duration(p->o->max_age, &ma, NULL);
    if (p->o->max_bytes)
        (void)units_parse_size(p->o->max_bytes, &mb, NULL);
    if (p->o->max_messages)
        (void)units_parse_uint(p->o->max_messages, UINT64_MAX, &mm, NULL);
    for (i = 0; i < p->ncust; i++) {
        struct imp_customer *c = &p->cust[i];

        c->max_bytes = mb;
        c->max_messages = mm;
        c->max_age = ma;
        for (k = 0; k < p->nexisting && strcmp(p->existing[k]->name, c->name) != 0; k++)
            ;
        if (k == p->nexisting)
            continue;
        c->existing_line = p->existing[k]->line ? p->existing[k]->line : 1;
        c->max_bytes = p->existing[k]->max_bytes;
        c->max_messages = p->existing[k]->max_messages;
        c->max_age = p->existing[k]->max_age;
        imp_note(p, c->file, c->line, "customer %s is already in %s (line %u): not appended",
                 c->name, p->cfg->customers_source, c->existing_line);
        for (n = 0; n < c->ndomains; n++) {
            size_t d;

            for (d = 0; d < p->existing[k]->ndomains &&
                        strcmp(p->existing[k]->domains[d], c->domains[n]) != 0; d++)
                ;
            if (d == p->existing[k]->ndomains)
                imp_note(p, c->file, c->line, "warning: customer %s in %s lacks domain '%s': "
                         "add it there by hand", c->name, p->cfg->customers_source, c->domains[n]);
        }
    }
}

/* check_conflicts - a domain or address of a new customer that another
 * customer (in the source, or earlier in the plan) already has. */
static void
check_conflicts(struct imp_plan *p)
{
    const struct customer *e;
    struct ipnet n;
    const char *why;
    size_t i, j, k, d;

    for (i = 0; i < p->ncust; i++) {
        struct imp_customer *c = &p->cust[i];

        if (c->existing_line > 0)
            continue;
        for (k = 0; k < c->ndomains; k++) {
            if ((e = imp_existing_domain(p, c->domains[k], c->name)) != NULL)
                imp_error(p, c->file, c->line, "domain '%s' already belongs to customer '%s' "
                          "(%s line %u)", c->domains[k], e->name, p->cfg->customers_source, e->line);
            for (j = 0; j < i; j++)
                for (d = 0; d < p->cust[j].ndomains; d++)
                    if (strcmp(p->cust[j].domains[d], c->domains[k]) == 0)
                        imp_error(p, c->file, c->line, "domain '%s' also goes to customer '%s' "
                                  "(%s:%u)", c->domains[k], p->cust[j].name, p->cust[j].file,
                                  p->cust[j].line);
        }
        if (c->address[0] != '\0' && ipnet_parse(c->address, &n, &why) == 0 &&
            (e = imp_existing_net(p, &n, c->name)) != NULL)
            imp_error(p, c->file, c->line, "address %s is already registered by customer '%s' "
                      "(%s line %u)", c->address, e->name, p->cfg->customers_source, e->line);
    }
}

static int
msg_cmp(const void *a, const void *b)
{
    const struct imp_msg *x = a, *y = b;

    if (x->cust != y->cust)
        return x->cust < y->cust ? -1 : 1;
    if (x->arrival != y->arrival)
        return x->arrival < y->arrival ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* check_mail - the journal, counts and quotas, message by message. */
static void
check_mail(struct imp_plan *p, const struct imp_journal *j)
{
    size_t i;

    if (p->nmsgs > 1)
        qsort(p->msgs, p->nmsgs, sizeof(*p->msgs), msg_cmp);
    for (i = 0; i < p->nmsgs; i++) {
        struct imp_msg *m = &p->msgs[i];
        struct imp_customer *c = &p->cust[m->cust];

        if ((m->done = imp_journal_has(j, m->tag))) {
            c->done_msgs++;
            continue;
        }
        if (c->max_bytes != 0 && m->size > c->max_bytes)
            imp_error(p, m->path, 0, "%llu bytes is more than customer %s's max-bytes (%llu)",
                      (unsigned long long)m->size, c->name, (unsigned long long)c->max_bytes);
        else if (c->max_bytes != 0 && c->held_bytes + c->new_bytes + m->size > c->max_bytes)
            imp_error(p, m->path, 0, "would bring customer %s to %llu bytes, over its max-bytes "
                      "(%llu)", c->name, (unsigned long long)(c->held_bytes + c->new_bytes + m->size),
                      (unsigned long long)c->max_bytes);
        else if (c->max_messages != 0 && c->held_msgs + c->new_msgs + 1 > c->max_messages)
            imp_error(p, m->path, 0, "would bring customer %s to %llu messages, over its "
                      "max-messages (%llu)", c->name,
                      (unsigned long long)(c->held_msgs + c->new_msgs + 1),
                      (unsigned long long)c->max_messages);
        c->new_msgs++;
        c->new_bytes += m->size;
    }
}

/* check_age - mail the flusher's sweep would return at once (the plan's
 * messages are sorted by customer: one pass). */
static void
check_age(struct imp_plan *p)
{
    uint64_t max_age = 0, n = 0;
    char num[32];
    size_t k;

    for (k = 0; k < p->nmsgs; k++) {
        const struct imp_msg *m = &p->msgs[k];
        const struct imp_customer *c = &p->cust[m->cust];

        if (k == 0 || m->cust != p->msgs[k - 1].cust) {
            max_age = c->max_age ? c->max_age : p->cfg->flusher.max_age;
            n = 0;
        }
        n += !m->done && max_age > 0 && p->now - m->arrival > (time_t)max_age;
        if (n > 0 && (k + 1 == p->nmsgs || p->msgs[k + 1].cust != m->cust))
            imp_note(p, c->file, c->line, "warning: %llu messages of %s are older than its "
                     "max-age %s: the flusher's next sweep returns them to their senders "
                     "(--max-age keeps them longer)", (unsigned long long)n, c->name,
                     units_format_duration(max_age, num, sizeof(num)));
    }
}

/* --- the report --- */

static void
report_mail(const struct imp_plan *p)
{
    uint64_t msgs = 0, bytes = 0, done = 0;
    size_t i, ncust = 0;

    printf("# held mail to import (the Return-Path and Delivered-To lines that\n"
           "# qmail-local added become the envelope and are removed from each message):\n");
    for (i = 0; i < p->ncust; i++) {
        const struct imp_customer *c = &p->cust[i];

        if (c->new_msgs + c->done_msgs == 0)
            continue;
        ncust++;
        printf("#   %-20s %6llu messages %12llu bytes", c->name, (unsigned long long)c->new_msgs,
               (unsigned long long)c->new_bytes);
        if (c->done_msgs > 0)
            printf("  (%llu imported before)", (unsigned long long)c->done_msgs);
        printf("\n");
        msgs += c->new_msgs;
        bytes += c->new_bytes;
        done += c->done_msgs;
    }
    printf("# total: %llu messages, %llu bytes for %zu customers", (unsigned long long)msgs,
           (unsigned long long)bytes, ncust);
    if (done > 0)
        printf("; %llu imported before", (unsigned long long)done);
    printf("\n");
}

static void
report(const struct imp_plan *p, const struct imp_recipe *r, const char *frag, size_t flen)
{
    printf("# autoturnctl import %s: dry run, nothing changed (--apply does it)\n", r->name);
    if (r->customers) {
        if (flen > 0)
            printf("# to be appended to %s:%.*s", p->cfg->customers_source, (int)flen, frag);
        else
            printf("# no customer to add to %s\n", p->cfg->customers_source);
    }
    if (r->mail)
        report_mail(p);
    if (r->report != NULL)
        r->report(p);
}

/* --- --apply --- */

/* open_journal - the journal (for writing and locked: write); exit code
 * on failure. */
static int
open_journal(struct imp_plan *p, bool write, struct imp_journal **j_r)
{
    char path[PATH_MAX];
    struct errbuf err;

    if (p->o->journal != NULL)
        (void)str_copy(path, sizeof(path), p->o->journal);
    else if (path_join(path, sizeof(path), p->cfg->spool_dir, JOURNAL_NAME) < 0) {
        cli_errx("import: %s/%s: path too long", p->cfg->spool_dir, JOURNAL_NAME);
        return EXIT_USAGE;
    }
    if (imp_journal_open(path, write, j_r, &err) < 0) {
        cli_errx("import: %s", err.msg);
        return EXIT_CANTCREAT;
    }
    return EXIT_OK;
}

/* apply_mail - the journal again, now locked (an import that ran since
 * the plan was made is seen), then the mail. */
static int
apply_mail(struct imp_plan *p)
{
    struct imp_spool_result res;
    struct imp_journal *j = NULL;
    struct errbuf err;
    size_t i;
    int rc;

    if ((rc = open_journal(p, true, &j)) != EXIT_OK)
        return rc;
    for (i = 0; i < p->nmsgs; i++)
        p->msgs[i].done = imp_journal_has(j, p->msgs[i].tag);
    rc = imp_spool_import(p, j, &res, &err);
    imp_journal_close(j);

    if (rc < 0)
        cli_errx("import: %s", err.msg);
    printf("imported %llu messages (%llu bytes) into %s", (unsigned long long)res.imported,
           (unsigned long long)res.bytes, p->cfg->spool_dir);
    if (res.already > 0)
        printf("; %llu imported before", (unsigned long long)res.already);
    if (res.recovered > 0)
        printf("; %llu found in the spool from a run that was cut short",
               (unsigned long long)res.recovered);
    printf("\n");
    if (p->o->copy)
        printf("kept the source messages (--copy)\n");
    else
        printf("removed %llu source messages\n", (unsigned long long)res.removed);
    if (rc < 0)
        printf("stopped by the error above: run the same command again to finish\n");
    return rc < 0 ? EXIT_IOERR : EXIT_OK;
}

static int
apply_source(struct imp_plan *p, const struct imp_source *s, const char *frag, size_t flen)
{
    struct custdb_compile_stats st;
    struct errbuf err;
    size_t i, n = 0;

    for (i = 0; i < p->ncust; i++)
        n += p->cust[i].existing_line == 0;
    if (imp_source_write(p, s, frag, flen, &st, &err) < 0) {
        cli_errx("import: %s", err.msg);
        return EXIT_DATAERR;
    }
    if (flen > 0)
        printf("%s: %zu customers appended\n", s->path, n);
    if (s->exists || flen > 0)
        printf("%s -> %s: %zu customers, %zu domains, %zu networks\n", s->path,
               p->cfg->customers_table, st.customers, st.domains, st.networks);
    return EXIT_OK;
}

static int
apply(struct imp_plan *p, const struct imp_recipe *r, struct cli_ctx *ctx,
      const struct imp_source *s, const char *frag, size_t flen)
{
    int rc = EXIT_OK;

    if (r->mail && (rc = apply_mail(p)) != EXIT_OK)
        return rc;
    if (r->customers && (rc = apply_source(p, s, frag, flen)) != EXIT_OK)
        return rc;
    if (r->apply != NULL)
        rc = r->apply(p, ctx);
    return rc;
}

/* plan - scan, then every check; exit code (EXIT_OK: go on). */
static int
plan(struct imp_plan *p, const struct imp_recipe *r, struct imp_source *s,
     struct imp_journal **j, char **frag, size_t *flen)
{
    struct errbuf err;
    size_t i, k;
    int rc;

    if (imp_source_load(p, s) < 0)
        return EXIT_NOINPUT;
    if (r->scan(p) < 0)
        return EXIT_NOINPUT;
    for (i = 0; i < p->ncust; i++)
        for (k = 0; k < p->cust[i].nmaildirs; k++)
            (void)imp_maildir_scan(p, i, &p->cust[i].maildirs[k]);
    check_existing(p);
    check_conflicts(p);
    if (imp_spool_held(p, &err) < 0) {
        cli_errx("import: %s", err.msg);
        return EXIT_IOERR;
    }
    if (r->mail && (rc = open_journal(p, false, j)) != EXIT_OK)
        return rc;
    check_mail(p, *j);
    check_age(p);
    if (imp_source_fragment(p, frag, flen) < 0) {
        cli_errx("import: out of memory");
        return EXIT_SOFTWARE;
    }
    if (p->errors == 0 && r->customers)
        (void)imp_source_check(p, s, *frag, *flen);
    return EXIT_OK;
}

int
cmd_import(struct cli_ctx *ctx)
{
    struct imp_opts o = {0};
    struct imp_plan p = {0};
    struct imp_source s = {0};
    struct imp_journal *j = NULL;
    const struct imp_recipe *r = NULL;
    char *frag = NULL;
    size_t flen = 0;
    int rc;

    if ((rc = parse_args(ctx, &o, &r)) < 0)
        return rc == -2 ? EXIT_OK : EXIT_USAGE;
    if (check_values(&o) != 0)
        return EXIT_USAGE;
    if ((p.cfg = cli_config(ctx)) == NULL)
        return EXIT_CONFIG;
    p.o = &o;
    p.now = time(NULL);
    if ((rc = plan(&p, r, &s, &j, &frag, &flen)) != EXIT_OK)
        goto out;
    if (!o.apply)
        report(&p, r, frag, flen);
    if (p.errors > 0) {
        cli_errx("import %s: %u error%s; %s", r->name, p.errors, p.errors == 1 ? "" : "s",
                 o.apply ? "nothing imported" : "--apply would refuse");
        rc = EXIT_DATAERR;
    } else if (o.apply)
        rc = apply(&p, r, ctx, &s, frag, flen);
out:
    x_free(frag);
    imp_journal_close(j);
    imp_source_free(&s);
    plan_free(&p);
    return rc;
}
