/* SPDX-License-Identifier: ISC */
/*
 * cmd_customer.c - "autoturnctl customer add NAME [--KEY VALUE]..." and
 * "autoturnctl customer remove NAME [--force]": add a customer block to
 * the customer source, or take one out, and compile, in one command.
 *
 * All or nothing: the new source is written beside the old one and
 * compiled into a new table beside the old one; only when the compile is
 * clean are both renamed over the old files (source first: a crash in
 * between leaves a source that "autoturnctl compile" turns into the
 * table, the state after any hand edit). On any error both stay as they
 * were. Concurrent edits are serialised by a lock on the source's
 * directory.
 *
 * SECURITY: run by the administrator. Values given on the command line
 * become source lines: a value with a control character (a line break
 * would smuggle in another key) or a '#' (a comment would cut it) is
 * refused here; everything else is checked by the compiler, exactly as
 * for a hand-edited source.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "custdb_compile.h"
#include "customer.h"
#include "log.h"
#include "spool.h"
#include "util.h"

/* the keys "customer add" takes, as --KEY VALUE; the source keys of
 * autoturn-customers(5) */
static const char *const source_keys[] = {
    "domain", "address", "delivery", "port", "tls", "trigger", "relay",
    "secret", "max-messages", "max-bytes", "max-age",
};

/* an edit in progress: the files it involves */
struct edit {
    const char *source, *table;
    char tmp_source[PATH_MAX], tmp_table[PATH_MAX];
    int lockfd;
    FILE *out;                   /* the new source, being written */
    struct stat old;             /* of the old source (mode, owner) */
    bool old_exists;
};

/* --- the lock and the new files --- */

/* dir_of - the directory part of path */
static int
dir_of(const char *path, char *buf, size_t size)
{
    char copy[PATH_MAX];

    if (str_copy(copy, sizeof(copy), path) < 0)
        return -1;
    return str_copy(buf, size, dirname(copy));
}

static int
edit_lock(struct edit *e)
{
    char dir[PATH_MAX];

    if (dir_of(e->source, dir, sizeof(dir)) < 0 ||
        (e->lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        cli_errx("customer: %s: cannot open its directory: %s", e->source, strerror(errno));
        return EXIT_CANTCREAT;
    }
    while (flock(e->lockfd, LOCK_EX) < 0)
        if (errno != EINTR) {
            cli_errx("customer: lock %s: %s", dir, strerror(errno));
            return EXIT_CANTCREAT;
        }
    return EXIT_OK;
}

/* edit_begin - lock, look at the old source, create the new one */
static int
edit_begin(struct edit *e)
{
    int fd, rc;

    if ((rc = edit_lock(e)) != EXIT_OK)
        return rc;
    if (stat(e->source, &e->old) == 0)
        e->old_exists = true;
    else if (errno != ENOENT) {
        cli_errx("customer: %s: %s", e->source, strerror(errno));
        return EXIT_NOINPUT;
    }
    if (str_printf(e->tmp_source, sizeof(e->tmp_source), "%s.new.%ld", e->source,
                   (long)getpid()) < 0 ||
        str_printf(e->tmp_table, sizeof(e->tmp_table), "%s.new.%ld", e->table,
                   (long)getpid()) < 0) {
        cli_errx("customer: path too long");
        return EXIT_CANTCREAT;
    }
    fd = open(e->tmp_source, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              e->old_exists ? e->old.st_mode & 07777 : 0640);
    if (fd < 0 || (e->old_exists && geteuid() == 0 &&
                   fchown(fd, e->old.st_uid, e->old.st_gid) < 0) ||
        (e->out = fdopen(fd, "w")) == NULL) {
        cli_errx("customer: create %s: %s", e->tmp_source, strerror(errno));
        if (fd >= 0) {
            close(fd);
            (void)unlink(e->tmp_source);
        }
        e->tmp_source[0] = '\0';
        return EXIT_CANTCREAT;
    }
    return EXIT_OK;
}

/* edit_end - whatever is left over goes; the lock is released */
static void
edit_end(struct edit *e)
{
    if (e->out != NULL)
        fclose(e->out);
    if (e->tmp_source[0] != '\0')
        (void)unlink(e->tmp_source);
    if (e->tmp_table[0] != '\0')
        (void)unlink(e->tmp_table);
    if (e->lockfd >= 0)
        close(e->lockfd);
}

/* sync_parent - fsync the directory of path */
static int
sync_parent(const char *path)
{
    char dir[PATH_MAX];
    int fd, rc;

    if (dir_of(path, dir, sizeof(dir)) < 0 ||
        (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* --- compile and commit --- */

struct compile_errors {
    const struct edit *e;
    unsigned count;
};

/* print_error - the compiler names the new source: say the real one */
static void
print_error(void *ctx, const char *msg)
{
    struct compile_errors *ce = ctx;
    size_t n = strlen(ce->e->tmp_source);

    ce->count++;
    if (strncmp(msg, ce->e->tmp_source, n) == 0)
        fprintf(stderr, "%s%s\n", ce->e->source, msg + n);
    else
        fprintf(stderr, "%s\n", msg);
}

/* edit_commit - close and sync the new source, compile it into the new
 * table, then rename both into place. */
static int
edit_commit(struct edit *e, const char *what, const char *name)
{
    struct custdb_compile_stats st = {0};
    struct compile_errors ce = {e, 0};
    FILE *out = e->out;
    bool bad;

    e->out = NULL;
    bad = fflush(out) != 0 || ferror(out) || fsync(fileno(out)) < 0;
    if (fclose(out) != 0 || bad) {
        cli_errx("customer: write %s: %s", e->tmp_source, strerror(errno));
        return EXIT_CANTCREAT;
    }
    if (custdb_compile(e->tmp_source, e->tmp_table, print_error, &ce, &st) < 0) {
        cli_errx("customer %s %s: %u error%s; %s and %s not changed", what, name, ce.count,
                 ce.count == 1 ? "" : "s", e->source, e->table);
        return EXIT_DATAERR;
    }
    if (rename(e->tmp_source, e->source) < 0 || sync_parent(e->source) < 0) {
        cli_errx("customer: rename %s to %s: %s", e->tmp_source, e->source, strerror(errno));
        return EXIT_CANTCREAT;
    }
    e->tmp_source[0] = '\0';
    if (rename(e->tmp_table, e->table) < 0 || sync_parent(e->table) < 0) {
        cli_errx("customer: rename %s to %s: %s (run autoturnctl compile)", e->tmp_table,
                 e->table, strerror(errno));
        return EXIT_CANTCREAT;
    }
    e->tmp_table[0] = '\0';
    log_info("customer %s: %s %s by the administrator (autoturnctl customer %s, uid %u)", name,
             strcmp(what, "add") == 0 ? "added to" : "removed from", e->source, what,
             (unsigned)getuid());
    printf("customer %s %s; %s: %zu customers, %zu domains, %zu networks\n", name,
           strcmp(what, "add") == 0 ? "added" : "removed", e->table, st.customers,
           st.domains, st.networks);
    return EXIT_OK;
}

/* copy_old - the old source into the new, ending with a newline */
static int
copy_old(struct edit *e)
{
    char buf[65536];
    size_t n;
    int last = '\n';
    FILE *in;

    if (!e->old_exists)
        return EXIT_OK;
    if ((in = fopen(e->source, "r")) == NULL) {
        cli_errx("customer: %s: cannot open: %s", e->source, strerror(errno));
        return EXIT_NOINPUT;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        fwrite(buf, 1, n, e->out);
        last = (unsigned char)buf[n - 1];
    }
    if (ferror(in)) {
        cli_errx("customer: read %s: %s", e->source, strerror(errno));
        fclose(in);
        return EXIT_IOERR;
    }
    fclose(in);
    if (last != '\n')
        fputc('\n', e->out);
    return EXIT_OK;
}

/* --- add --- */

static bool
known_key(const char *key)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(source_keys); i++)
        if (strcmp(source_keys[i], key) == 0)
            return true;
    return false;
}

/* value_ok - a value that stays one source line with nothing cut off */
static bool
value_ok(const char *v)
{
    if (*v == '\0')
        return false;
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f || *v == '#')
            return false;
    return true;
}

/* check_add_args - NAME, then --KEY VALUE pairs (argv[2..]) */
static int
check_add_args(struct cli_ctx *ctx, int first)
{
    const char *why;
    int i;

    if (first >= ctx->argc)
        return cli_usage_error("customer add: expected NAME [--KEY VALUE]...");
    if (!customer_name_valid(ctx->argv[first], &why))
        return cli_usage_error("customer add: bad customer name '%s': %s", ctx->argv[first],
                               why);
    for (i = first + 1; i < ctx->argc; i += 2) {
        const char *k = ctx->argv[i];

        if (strncmp(k, "--", 2) != 0 || !known_key(k + 2))
            return cli_usage_error("customer add: unknown key '%s' (use --domain, --address, "
                                   "--delivery, --port, --tls, --trigger, --relay, --secret, "
                                   "--max-messages, --max-bytes, --max-age)", k);
        if (i + 1 >= ctx->argc)
            return cli_usage_error("customer add: %s needs a value", k);
        if (!value_ok(ctx->argv[i + 1]))
            return cli_usage_error("customer add: bad value for %s: empty, or with a control "
                                   "character or '#'", k);
    }
    return EXIT_OK;
}

static int
customer_add(struct cli_ctx *ctx, struct edit *e, int first)
{
    int rc, i;

    if ((rc = check_add_args(ctx, first)) != EXIT_OK)
        return rc;
    if ((rc = edit_begin(e)) != EXIT_OK || (rc = copy_old(e)) != EXIT_OK)
        return rc;
    fprintf(e->out, "\ncustomer %s\n", ctx->argv[first]);
    for (i = first + 1; i < ctx->argc; i += 2)
        fprintf(e->out, "    %-12s %s\n", ctx->argv[i] + 2, ctx->argv[i + 1]);
    return edit_commit(e, "add", ctx->argv[first]);
}

/* --- remove --- */

/* first_tokens - the first two words of a source line (comments and
 * blanks as autoturn-customers(5) says); empty strings when absent */
static void
first_tokens(const char *line, char *w1, char *w2, size_t size)
{
    char *out[2] = {w1, w2};
    size_t i, n;

    w1[0] = w2[0] = '\0';
    for (i = 0; i < 2; i++) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == '\0' || *line == '\n' || *line == '\r')
            return;
        for (n = 0; line[n] && !strchr(" \t\r\n", line[n]); n++)
            ;
        (void)str_printf(out[i], size, "%.*s", (int)n, line);
        line += n;
    }
}

struct remover {
    const char *name;
    bool inside, found;
    char *pending;               /* blank and comment lines at the end of the block */
    size_t pending_len;
};

/* remove_line - copy line unless it belongs to the named block. Blank
 * and comment lines at the end of the block are kept when another block
 * follows: they most likely describe it. */
static int
remove_line(struct remover *r, FILE *out, const char *line, size_t len)
{
    char w1[CUSTOMER_NAME_MAX + 16], w2[CUSTOMER_NAME_MAX + 16];
    char *p;

    first_tokens(line, w1, w2, sizeof(w1));
    if (strcmp(w1, "customer") == 0) {
        if (r->pending_len > 0)
            fwrite(r->pending, 1, r->pending_len, out);
        r->pending_len = 0;
        r->inside = strcmp(w2, r->name) == 0;
        r->found |= r->inside;
    }
    if (!r->inside) {
        fwrite(line, 1, len, out);
        return 0;
    }
    if (strcmp(w1, "customer") == 0)
        return 0;
    if (w1[0] != '\0') {          /* a key of the block: it and what came before go */
        r->pending_len = 0;
        return 0;
    }
    if ((p = realloc(r->pending, r->pending_len + len)) == NULL)
        return -1;
    r->pending = p;
    memcpy(r->pending + r->pending_len, line, len);
    r->pending_len += len;
    return 0;
}

static int
copy_without(struct edit *e, const char *name)
{
    struct remover r = {name, false, false, NULL, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = EXIT_OK;
    FILE *in;

    if (!e->old_exists || (in = fopen(e->source, "r")) == NULL) {
        cli_errx("customer: %s: cannot open: %s", e->source,
                 e->old_exists ? strerror(errno) : strerror(ENOENT));
        return EXIT_NOINPUT;
    }
    while (rc == EXIT_OK && (len = getline(&line, &cap, in)) > 0)
        if (remove_line(&r, e->out, line, (size_t)len) < 0) {
            cli_errx("out of memory");
            rc = EXIT_SOFTWARE;
        }
    if (rc == EXIT_OK && ferror(in)) {
        cli_errx("customer: read %s: %s", e->source, strerror(errno));
        rc = EXIT_IOERR;
    }
    if (rc == EXIT_OK && !r.found) {
        cli_errx("customer remove: no customer %s in %s", name, e->source);
        rc = EXIT_NOTFOUND;
    }
    free(line);
    free(r.pending);
    fclose(in);
    return rc;
}

/* held_check - refuse to forget a customer whose mail is still held */
static int
held_check(const struct config *cfg, const char *name, bool force)
{
    struct spool_stats st;
    struct errbuf err;
    struct spool *sp;
    int rc;

    if ((sp = spool_new(cfg->spool_dir)) == NULL) {
        cli_errx("out of memory");
        return EXIT_SOFTWARE;
    }
    rc = spool_stats(sp, name, &st, &err);
    spool_free(sp);
    if (rc < 0) {
        cli_errx("customer remove: %s", err.msg);
        return EXIT_IOERR;
    }
    if (st.messages == 0 || force)
        return EXIT_OK;
    cli_errx("customer remove: %llu message%s still held for %s: deliver or delete %s first "
             "(autoturnctl flush, autoturnctl delete --customer), or add --force",
             (unsigned long long)st.messages, st.messages == 1 ? "" : "s", name,
             st.messages == 1 ? "it" : "them");
    return EXIT_TEMPFAIL;
}

static int
customer_remove(struct cli_ctx *ctx, struct edit *e, int first, const struct config *cfg)
{
    const char *name = NULL, *why;
    bool force = false;
    int rc, i;

    for (i = first; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--force") == 0)
            force = true;
        else if (name == NULL && ctx->argv[i][0] != '-')
            name = ctx->argv[i];
        else
            return cli_usage_error("customer remove: unexpected argument '%s'", ctx->argv[i]);
    }
    if (name == NULL)
        return cli_usage_error("customer remove: expected NAME [--force]");
    if (!customer_name_valid(name, &why))
        return cli_usage_error("customer remove: bad customer name '%s': %s", name, why);
    if ((rc = held_check(cfg, name, force)) != EXIT_OK)
        return rc;
    if ((rc = edit_begin(e)) != EXIT_OK || (rc = copy_without(e, name)) != EXIT_OK)
        return rc;
    return edit_commit(e, "remove", name);
}

/* --- the command --- */

/* leading_options - -c FILE and -h before "add"/"remove"; index of the verb */
static int
leading_options(struct cli_ctx *ctx)
{
    int i = 1;

    while (i < ctx->argc && ctx->argv[i][0] == '-') {
        if (strcmp(ctx->argv[i], "-c") == 0 && i + 1 < ctx->argc) {
            ctx->config_path = ctx->argv[i + 1];
            i += 2;
        } else if (strcmp(ctx->argv[i], "-h") == 0 || strcmp(ctx->argv[i], "--help") == 0) {
            printf("usage: autoturnctl [-c FILE] customer add NAME [--KEY VALUE]...\n"
                   "       autoturnctl [-c FILE] customer remove NAME [--force]\n"
                   "KEY: a key of autoturn-customers(5): domain, address, delivery, port,\n"
                   "tls, trigger, relay, secret, max-messages, max-bytes, max-age\n");
            return -2;
        } else {
            return cli_usage_error("customer: bad option '%s'", ctx->argv[i]), -1;
        }
    }
    return i;
}

int
cmd_customer(struct cli_ctx *ctx)
{
    struct edit e = {0};
    const struct config *cfg;
    int verb = leading_options(ctx), rc;

    if (verb < 0)
        return verb == -2 ? EXIT_OK : EXIT_USAGE;
    if (verb >= ctx->argc || (strcmp(ctx->argv[verb], "add") != 0 &&
                              strcmp(ctx->argv[verb], "remove") != 0))
        return cli_usage_error("customer: expected add or remove");
    if ((cfg = cli_config(ctx)) == NULL)
        return EXIT_CONFIG;
    cli_apply_logging(cfg);
    e.source = cfg->customers_source;
    e.table = cfg->customers_table;
    e.lockfd = -1;
    if (strcmp(ctx->argv[verb], "add") == 0)
        rc = customer_add(ctx, &e, verb + 1);
    else
        rc = customer_remove(ctx, &e, verb + 1, cfg);
    edit_end(&e);
    return rc;
}
