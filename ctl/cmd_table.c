/* SPDX-License-Identifier: ISC */
/*
 * cmd_table.c - the customer-table commands of autoturnctl: compile the
 * source, list or show customers, look a domain or address up (like
 * "postmap -q", saying which rule matched), and make a stored secret.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "commands.h"
#include "custdb.h"
#include "custdb_compile.h"
#include "custsrc.h"
#include "json.h"
#include "secret.h"
#include "units.h"
#include "util.h"

#define PASSWORD_MAX 1024

static void
print_compile_error(void *ctx, const char *msg)
{
    unsigned *count = ctx;

    if (strstr(msg, ": " CUSTSRC_WARNING) == NULL)
        (*count)++;
    fprintf(stderr, "%s\n", msg);
}

/* dir_writable - can we create the temp file beside dst? */
static bool
dir_writable(const char *dst)
{
    char copy[PATH_MAX];

    if (str_copy(copy, sizeof(copy), dst) < 0)
        return false;
    return access(dirname(copy), W_OK | X_OK) == 0;
}

int
cmd_compile(struct cli_ctx *ctx)
{
    struct custdb_compile_stats st = {0};
    const struct config *cfg;
    const char *src, *dst;
    unsigned errors = 0;
    int first = cli_positional(ctx, 0, 2);
    FILE *fp;

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    src = first < ctx->argc ? ctx->argv[first] : NULL;
    dst = first + 1 < ctx->argc ? ctx->argv[first + 1] : NULL;
    if (src == NULL || dst == NULL) {
        if ((cfg = cli_config(ctx)) == NULL)
            return EXIT_CONFIG;
        src = src ? src : cfg->customers_source;
        dst = dst ? dst : cfg->customers_table;
    }
    if ((fp = fopen(src, "r")) == NULL) {
        cli_errx("%s: cannot open: %s", src, strerror(errno));
        return EXIT_NOINPUT;
    }
    fclose(fp);
    if (!dir_writable(dst)) {
        cli_errx("%s: cannot create: %s", dst, strerror(errno));
        return EXIT_CANTCREAT;
    }
    if (custdb_compile(src, dst, print_compile_error, &errors, &st) < 0) {
        cli_errx("%s: %u error%s; %s not changed", src, errors, errors == 1 ? "" : "s", dst);
        return EXIT_DATAERR;
    }
    printf("%s -> %s: %zu customers, %zu domains, %zu networks\n", src, dst, st.customers,
           st.domains, st.networks);
    return EXIT_OK;
}

/* open_table - a reader on the configured table, checked once. */
static struct custdb *
open_table(struct cli_ctx *ctx, int *rc_r)
{
    const struct config *cfg = cli_config(ctx);
    struct errbuf err;
    struct custdb *db;

    if (cfg == NULL) {
        *rc_r = EXIT_CONFIG;
        return NULL;
    }
    if ((db = custdb_new(cfg->customers_table)) == NULL) {
        cli_errx("out of memory");
        *rc_r = EXIT_SOFTWARE;
        return NULL;
    }
    if (custdb_refresh(db, &err) < 0) {
        cli_errx("%s", err.msg);
        custdb_free(db);
        *rc_r = EXIT_TEMPFAIL;
        return NULL;
    }
    return db;
}

/* customer_json - one customer as a JSON object (the secret: set or not) */
static void
customer_json(struct json *j, const struct customer *c)
{
    static const struct {
        unsigned bit;
        const char *name;
    } trig[] = {{TRIGGER_CONNECT, "connect"}, {TRIGGER_ETRN, "etrn"}, {TRIGGER_ATRN, "atrn"}};
    char buf[IPNET_TEXT_MAX];
    size_t i;

    json_object(j, NULL);
    json_string(j, "name", c->name);
    json_array(j, "domains");
    for (i = 0; i < c->ndomains; i++)
        json_string(j, NULL, c->domains[i]);
    json_end(j, ']');
    json_array(j, "addresses");
    for (i = 0; i < c->naddrs; i++)
        json_string(j, NULL, ipnet_format(&c->addrs[i], buf, sizeof(buf)));
    json_end(j, ']');
    json_string(j, "delivery", delivery_mode_name(c->delivery));
    json_string(j, "delivery_host", c->delivery_host[0] ? c->delivery_host : NULL);
    json_uint(j, "port", c->port);
    json_string(j, "tls", tls_policy_name(c->tls));
    json_array(j, "triggers");
    for (i = 0; i < ARRAY_LEN(trig); i++)
        if (c->triggers & trig[i].bit)
            json_string(j, NULL, trig[i].name);
    json_end(j, ']');
    json_bool(j, "relay", c->relay);
    json_bool(j, "secret", c->has_secret);
    json_uint(j, "max_messages", c->max_messages);
    json_uint(j, "max_bytes", c->max_bytes);
    json_uint(j, "max_age", c->max_age);
    json_end(j, '}');
}

static int
print_customer_json(void *ctx, const struct customer *c)
{
    customer_json(ctx, c);
    return 0;
}

static int
print_customer_row(void *ctx, const struct customer *c)
{
    char trig[64];

    (void)ctx;
    printf("%-20s %7zu %9zu  %-13s %-18s %s\n", c->name, c->ndomains, c->naddrs,
           delivery_mode_name(c->delivery), triggers_format(c->triggers, trig, sizeof(trig)),
           c->relay ? "yes" : "no");
    return 0;
}

/* print_customer - one customer in source syntax (secret not shown). */
static void
print_customer(const struct customer *c)
{
    char buf[IPNET_TEXT_MAX], trig[64], num[32];
    size_t i;

    printf("customer %s\n", c->name);
    for (i = 0; i < c->ndomains; i++)
        printf("    domain       %s\n", c->domains[i]);
    for (i = 0; i < c->naddrs; i++)
        printf("    address      %s\n", ipnet_format(&c->addrs[i], buf, sizeof(buf)));
    if (c->delivery == DELIVERY_CONNECTING_IP)
        printf("    delivery     connecting-ip\n");
    else if (strchr(c->delivery_host, ':') != NULL)   /* IPv6 literal */
        printf("    delivery     %s [%s]\n", delivery_mode_name(c->delivery), c->delivery_host);
    else
        printf("    delivery     %s %s\n", delivery_mode_name(c->delivery), c->delivery_host);
    printf("    port         %u\n", c->port);
    printf("    tls          %s\n", tls_policy_name(c->tls));
    printf("    trigger      %s\n", triggers_format(c->triggers, trig, sizeof(trig)));
    printf("    relay        %s\n", c->relay ? "yes" : "no");
    printf("    secret       %s\n", c->has_secret ? "(set)" : "(none)");
    printf("    max-messages %llu\n", (unsigned long long)c->max_messages);
    printf("    max-bytes    %s\n", units_format_size(c->max_bytes, num, sizeof(num)));
    printf("    max-age      %s\n", units_format_duration(c->max_age, num, sizeof(num)));
}

/* customers_json - the table (name NULL), or one customer, as JSON */
static int
customers_json(struct custdb *db, const char *name)
{
    struct customer *c = NULL;
    struct json_buf jb;
    struct errbuf err;
    int rc;

    if (json_buf_open(&jb) < 0) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    if (name != NULL) {
        if ((rc = custdb_lookup_name(db, name, &c, &err)) == 1)
            customer_json(&jb.j, c);
        customer_free(c);
    } else {
        json_object(&jb.j, NULL);
        json_array(&jb.j, "customers");
        rc = custdb_foreach(db, print_customer_json, &jb.j, &err) < 0 ? -1 : 1;
        json_end(&jb.j, ']');
        json_end(&jb.j, '}');
    }
    if (rc == 0)
        cli_errx("%s: no such customer", name);
    else if (rc < 0)
        cli_errx("%s", err.msg);
    if (json_buf_close(&jb, rc == 1) < 0)
        return EXIT_SOFTWARE;
    return rc == 1 ? EXIT_OK : rc == 0 ? EXIT_NOTFOUND : EXIT_TEMPFAIL;
}

int
cmd_customers(struct cli_ctx *ctx)
{
    struct customer *c = NULL;
    struct errbuf err;
    struct custdb *db;
    int first = cli_positional(ctx, 0, 1), rc;

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    if ((db = open_table(ctx, &rc)) == NULL)
        return rc;
    if (ctx->json) {
        rc = customers_json(db, first < ctx->argc ? ctx->argv[first] : NULL);
    } else if (first < ctx->argc) {
        rc = custdb_lookup_name(db, ctx->argv[first], &c, &err);
        if (rc == 1)
            print_customer(c);
        else if (rc == 0)
            cli_errx("%s: no such customer", ctx->argv[first]);
        else
            cli_errx("%s", err.msg);
        rc = rc == 1 ? EXIT_OK : rc == 0 ? EXIT_NOTFOUND : EXIT_TEMPFAIL;
    } else {
        printf("%-20s %7s %9s  %-13s %-18s %s\n", "NAME", "DOMAINS", "ADDRESSES", "DELIVERY",
               "TRIGGERS", "RELAY");
        rc = custdb_foreach(db, print_customer_row, NULL, &err) < 0 ? EXIT_TEMPFAIL : EXIT_OK;
        if (rc != EXIT_OK)
            cli_errx("%s", err.msg);
    }
    customer_free(c);
    custdb_free(db);
    return rc;
}

static int
lookup_one(struct custdb *db, const char *kind, const char *value, struct customer **c_r,
           struct custdb_match *m, struct errbuf *err)
{
    const char *why;
    struct ipaddr a;

    if (strcmp(kind, "domain") == 0)
        return custdb_lookup_domain(db, value, c_r, m, err);
    if (ipaddr_parse(value, &a, &why) < 0) {
        errbuf_set(err, "bad address '%s': %s", value, why);
        return -2;
    }
    return custdb_lookup_addr(db, &a, c_r, m, err);
}

int
cmd_lookup(struct cli_ctx *ctx)
{
    struct custdb_match m = {{0}};
    struct customer *c = NULL;
    const char *kind, *value;
    struct errbuf err;
    struct custdb *db;
    int first = cli_positional(ctx, 2, 2), rc;

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    kind = ctx->argv[first];
    value = ctx->argv[first + 1];
    if (strcmp(kind, "domain") != 0 && strcmp(kind, "address") != 0)
        return cli_usage_error("lookup: '%s': expected domain or address", kind);
    if ((db = open_table(ctx, &rc)) == NULL)
        return rc;
    rc = lookup_one(db, kind, value, &c, &m, &err);
    if (rc == 1)
        printf("%s: customer %s (rule %s)\n", value, c->name, m.rule);
    else if (rc == 0)
        printf("%s: no customer\n", value);
    else
        cli_errx("%s", err.msg);
    customer_free(c);
    custdb_free(db);
    return rc == 1 ? EXIT_OK : rc == 0 ? EXIT_NOTFOUND : rc == -2 ? EXIT_USAGE : EXIT_TEMPFAIL;
}

/* read_line - one line from fp without its line end; -1 on EOF/too long. */
static int
read_line(FILE *fp, char *buf, size_t size)
{
    size_t len;

    if (fgets(buf, (int)size, fp) == NULL)
        return -1;
    len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    else if (!feof(fp))
        return -1;               /* longer than the buffer */
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    return 0;
}

/* prompt_password - read without echo from the terminal. */
static int
prompt_password(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    int rc;

    fputs(prompt, stderr);
    if (tcgetattr(STDIN_FILENO, &old) < 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        return -1;
    rc = read_line(stdin, buf, size);
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return rc;
}

static int
read_password(char *buf, size_t size)
{
    char again[PASSWORD_MAX + 2];

    if (!isatty(STDIN_FILENO)) {
        if (read_line(stdin, buf, size) < 0) {
            cli_errx("secret: expected one line (at most %d bytes) on standard input",
                     PASSWORD_MAX);
            return -1;
        }
        return 0;
    }
    if (prompt_password("Password: ", buf, size) < 0 ||
        prompt_password("Again: ", again, sizeof(again)) < 0) {
        cli_errx("secret: cannot read the password");
        return -1;
    }
    if (strcmp(buf, again) != 0) {
        explicit_bzero(again, sizeof(again));
        cli_errx("secret: the passwords differ");
        return -1;
    }
    explicit_bzero(again, sizeof(again));
    return 0;
}

int
cmd_secret(struct cli_ctx *ctx)
{
    char pw[PASSWORD_MAX + 2], text[SECRET_TEXT_LEN + 1];
    struct secret s;
    int first = cli_positional(ctx, 0, 0);

    if (first < 0)
        return first == -2 ? EXIT_OK : EXIT_USAGE;
    if (read_password(pw, sizeof(pw)) < 0)
        return EXIT_DATAERR;
    if (pw[0] == '\0') {
        cli_errx("secret: empty password");
        return EXIT_DATAERR;
    }
    secret_make(pw, strlen(pw), &s);
    explicit_bzero(pw, sizeof(pw));
    if (secret_format(&s, text, sizeof(text)) < 0) {
        cli_errx("secret: internal error");
        return EXIT_SOFTWARE;
    }
    printf("%s\n", text);
    return EXIT_OK;
}
