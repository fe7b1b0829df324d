/* SPDX-License-Identifier: ISC */
/*
 * import_qsmtpd.c - the qsmtpd/smtpcall "call me back" recipe: each line
 * "incoming.dom.ain:USER:SecretPassword:/Path/To/Maildir" of
 * control/passwords becomes customer USER with that domain and "trigger
 * atrn" (ODMR, the standard form of an authenticated call back), the
 * password becomes our stored CRAM-MD5 secret (lib/secret.c: it is never
 * written in plain text to the customer source), the maildir's mail is
 * imported (Delivered-To loses the prefix qmail gave it: the
 * virtualdomains value of the domain and '-', when there is one), and a
 * fetchmailrc for ODMR is written per customer, mode 0600, for the
 * customer's host (it replaces smtpcall there; it holds the password,
 * as fetchmail needs it).
 *
 * SECURITY: passwords are kept in memory only for the fetchmailrc and
 * wiped when the plan is freed; they never appear in messages or in the
 * dry run. The files are created O_EXCL|O_NOFOLLOW and never replace a
 * different file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "secret.h"
#include "sockspec.h"
#include "util.h"

#define QMAIL_HOME   "/var/qmail"
#define ODMR_PORT    366
#define RC_MAX       8192
#define RC_PREFIX    "fetchmailrc."

struct vdomain {
    char *domain, *prefix;
};

struct qsmtpd {
    struct vdomain *vd;
    size_t nvd;
};

/* --- virtualdomains: the Delivered-To prefix of each domain --- */

static void
keep_vdomain(void *ctx, const char *domain, const char *prefix)
{
    struct qsmtpd *q = ctx;
    struct vdomain *v;

    if ((v = x_reallocarray(q->vd, q->nvd + 1, sizeof(*v))) == NULL)
        return;
    q->vd = v;
    v += q->nvd;
    v->domain = x_strdup(domain);
    v->prefix = x_strdup(prefix);
    if (v->domain == NULL || v->prefix == NULL) {
        x_free(v->domain);
        x_free(v->prefix);
        return;
    }
    q->nvd++;
}

/* prefix_of - the Delivered-To prefix of domain ("" without a line). */
static int
prefix_of(const struct qsmtpd *q, const char *domain, char *buf, size_t size)
{
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < q->nvd; i++)
        if (str_ieq(q->vd[i].domain, domain))
            return str_printf(buf, size, "%s-", q->vd[i].prefix);
    return 0;
}

/* --- control/passwords --- */

static bool
has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int
set_password(struct imp_plan *p, struct imp_customer *c, const char *password, const char *file,
             unsigned lineno)
{
    struct secret s;

    if (c->password != NULL) {
        if (strcmp(c->password, password) != 0)
            imp_error(p, file, lineno, "user %s has another password at line %u: one customer "
                      "has one secret", c->name, c->line);
        return 0;
    }
    if (has_control(password)) {
        imp_error(p, file, lineno, "the password has a control character: fetchmail cannot use it");
        return -1;
    }
    if ((c->password = x_strdup(password)) == NULL)
        return -1;
    secret_make(password, strlen(password), &s);
    (void)secret_format(&s, c->secret, sizeof(c->secret));
    explicit_bzero(&s, sizeof(s));
    return 0;
}

struct line_ctx {
    struct qsmtpd *q;
};

static void
password_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    struct qsmtpd *q = ((struct line_ctx *)ctx)->q;
    char *domain, *user, *password, *maildir, norm[DOMAIN_MAX + 1], prefix[DOMAIN_MAX + 2];
    struct imp_customer *c;
    const char *why;
    int rc = imp_parse_password(line, &domain, &user, &password, &maildir, &why);

    if (rc <= 0) {
        if (rc < 0)
            imp_error(p, file, lineno, "%s", why);
        explicit_bzero(line, strlen(line));
        return;
    }
    if (domain_normalise(domain, norm, sizeof(norm), &why) < 0)
        imp_error(p, file, lineno, "bad domain '%s': %s", domain, why);
    else if (!customer_name_valid(user, &why))
        imp_error(p, file, lineno, "bad user '%s' (it becomes the customer name): %s", user, why);
    else if (maildir[0] != '/')
        imp_error(p, file, lineno, "maildir '%s' is not an absolute path", maildir);
    else if (prefix_of(q, norm, prefix, sizeof(prefix)) < 0)
        imp_error(p, file, lineno, "the virtualdomains prefix of %s is too long", norm);
    else if ((c = imp_customer_get(p, user, file, lineno)) == NULL || imp_add_domain(c, norm) < 0 ||
             imp_add_maildir(c, maildir, prefix, file, lineno) < 0 ||
             set_password(p, c, password, file, lineno) < 0)
        imp_error(p, file, lineno, "out of memory");
    else {
        c->trigger = "atrn";
        c->delivery[0] = '\0';      /* ODMR: over the customer's own connection */
    }
    explicit_bzero(line, strlen(line));
}

/* --- the fetchmailrc --- */

static const char *
odmr_host(const struct imp_plan *p, char *buf, size_t size)
{
    if (p->o->odmr_host)
        return p->o->odmr_host;
    if (p->cfg->flusher.myhostname[0] != '\0')
        return p->cfg->flusher.myhostname;
    if (gethostname(buf, size) < 0 || buf[0] == '\0')
        return "localhost";
    buf[size - 1] = '\0';
    return buf;
}

static unsigned
odmr_port(const struct imp_plan *p)
{
    const struct config_odmr *od = &p->cfg->flusher.odmr;
    size_t i;

    if (p->o->odmr_port)
        return (unsigned)strtoul(p->o->odmr_port, NULL, 10);
    for (i = 0; i < od->listen.count; i++)
        if (od->listen.spec[i].kind == SOCKSPEC_INET)
            return od->listen.spec[i].port;
    return ODMR_PORT;
}

/* quoted - s as the inside of a fetchmailrc "string": fetchmail's lexer
 * ends a string at the first '"' whatever precedes it, and reads C
 * escapes inside, so '"' is written \x22 and '\' is written \\. */
static int
quoted(const char *s, char *out, size_t size)
{
    size_t o = 0;

    for (; *s != '\0'; s++) {
        if (o + 5 >= size)
            return -1;
        if (*s == '"') {
            memcpy(out + o, "\\x22", 4);
            o += 4;
            continue;
        }
        if (*s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = '\0';
    return 0;
}

/* rc_text - the fetchmailrc of c into buf. */
static int
rc_text(const struct imp_plan *p, const struct imp_customer *c, char *buf, size_t size)
{
    char host[256], domains[RC_MAX / 2] = "", pw[1024];
    const char *smtphost = p->o->smtphost ? p->o->smtphost : "localhost/25";
    size_t i, len = 0;
    int rc;

    for (i = 0; i < c->ndomains; i++) {
        if (str_printf(domains + len, sizeof(domains) - len, "%s%s", i ? "," : "", c->domains[i]) < 0)
            return -1;
        len += strlen(domains + len);
    }
    if (quoted(c->password, pw, sizeof(pw)) < 0)
        return -1;
    rc = str_printf(buf, size,
                    "# fetchmailrc for %s: fetch the mail autoturn holds for %s with ODMR\n"
                    "# (RFC 2645). Made by autoturnctl import qsmtpd from %s:%u; it replaces\n"
                    "# smtpcall. Install it as ~/.fetchmailrc (mode 0600: it holds the\n"
                    "# password) and run fetchmail from cron or as a daemon (fetchmail -d 900).\n"
                    "set syslog\n\n"
                    "poll %s\n"
                    "    protocol ODMR\n"
                    "    service %u\n"
                    "    user \"%s\"\n"
                    "    password \"%s\"\n"
                    "    fetchdomains %s\n"
                    "    smtphost %s\n",
                    c->name, domains, c->file, c->line, odmr_host(p, host, sizeof(host)),
                    odmr_port(p), c->name, pw, domains, smtphost);
    explicit_bzero(pw, sizeof(pw));
    return rc;
}

static int
rc_path(const struct imp_plan *p, const struct imp_customer *c, char *buf, size_t size)
{
    return str_printf(buf, size, "%s/%s%s", p->o->rc_dir ? p->o->rc_dir : ".", RC_PREFIX, c->name);
}

/* rc_same - 1 if path holds exactly text, 0 if it differs, -1 if absent. */
static int
rc_same(const char *path, const char *text)
{
    char buf[RC_MAX];
    size_t len = strlen(text);
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

    if (fd < 0)
        return errno == ENOENT ? -1 : 0;
    n = read(fd, buf, sizeof(buf));
    rc = n >= 0 && (size_t)n == len && memcmp(buf, text, len) == 0;
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* rc_write - text into a new file at path, atomically (temp + link). */
static int
rc_write(const char *path, const char *text, struct errbuf *err)
{
    char tmp[PATH_MAX];
    int fd, rc = -1;

    if (str_printf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) < 0) {
        errbuf_set(err, "%s: path too long", path);
        return -1;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        errbuf_set_errno(err, "cannot create %s", tmp);
        return -1;
    }
    if (fd_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        errbuf_set_errno(err, "cannot write %s", tmp);
        close(fd);
        goto out;
    }
    if (close(fd) < 0) {
        errbuf_set_errno(err, "cannot write %s", tmp);
        goto out;
    }
    if (link(tmp, path) < 0) {
        errbuf_set_errno(err, "cannot create %s", path);
        goto out;
    }
    rc = 0;
out:
    (void)unlink(tmp);
    return rc;
}

/* check_rc - a file in the way of a customer's fetchmailrc is an error. */
static void
check_rc(struct imp_plan *p, const struct imp_customer *c)
{
    char path[PATH_MAX], text[RC_MAX];

    if (c->password == NULL)
        return;
    if (rc_path(p, c, path, sizeof(path)) < 0 || rc_text(p, c, text, sizeof(text)) < 0)
        imp_error(p, c->file, c->line, "the fetchmailrc of %s would be too long", c->name);
    else if (rc_same(path, text) == 0)
        imp_error(p, path, 0, "exists and differs: not replaced (remove it, or give --rc-dir)");
    explicit_bzero(text, sizeof(text));
}

int
import_qsmtpd_scan(struct imp_plan *p)
{
    const char *home = p->o->qmail_dir ? p->o->qmail_dir : QMAIL_HOME;
    char pw[PATH_MAX], vd[PATH_MAX];
    struct qsmtpd q = { NULL, 0 };
    struct line_ctx lc = { &q };
    size_t i;
    int rc;

    if (str_printf(vd, sizeof(vd), "%s/control/virtualdomains", home) < 0 ||
        str_printf(pw, sizeof(pw), "%s/control/passwords", home) < 0) {
        imp_error(p, home, 0, "path too long");
        return -1;
    }
    if (p->o->passwords)
        (void)str_copy(pw, sizeof(pw), p->o->passwords);
    (void)imp_qmail_vdomains(p, vd, keep_vdomain, &q);
    rc = imp_read_lines(p, pw, password_line, &lc);
    for (i = 0; i < p->ncust; i++)
        check_rc(p, &p->cust[i]);
    if (p->ncust > 0 && !p->cfg->flusher.odmr.enable)
        imp_note(p, p->cfg->file[0] ? p->cfg->file : "autoturn.conf", 0, "warning: ODMR is off "
                 "here; set flusher { odmr { enable = true } } (port 366) for the customers' "
                 "fetchmail");
    for (i = 0; i < q.nvd; i++) {
        x_free(q.vd[i].domain);
        x_free(q.vd[i].prefix);
    }
    x_free(q.vd);
    return rc;
}

void
import_qsmtpd_report(const struct imp_plan *p)
{
    char path[PATH_MAX], host[256];
    size_t i;

    if (p->ncust == 0)
        return;
    printf("# fetchmailrc files for the customers' hosts (ODMR at %s port %u, mode 0600):\n",
           odmr_host(p, host, sizeof(host)), odmr_port(p));
    for (i = 0; i < p->ncust; i++)
        if (p->cust[i].password != NULL && rc_path(p, &p->cust[i], path, sizeof(path)) == 0)
            printf("#   %s\n", path);
}

int
import_qsmtpd_apply(struct imp_plan *p, struct cli_ctx *ctx)
{
    char path[PATH_MAX], text[RC_MAX];
    struct errbuf err;
    int rc = EXIT_OK;
    size_t i;

    (void)ctx;
    for (i = 0; i < p->ncust && rc == EXIT_OK; i++) {
        const struct imp_customer *c = &p->cust[i];

        if (c->password == NULL || rc_path(p, c, path, sizeof(path)) < 0 ||
            rc_text(p, c, text, sizeof(text)) < 0)
            continue;
        if (rc_same(path, text) == 1)
            printf("%s: unchanged\n", path);
        else if (rc_write(path, text, &err) < 0) {
            cli_errx("import: %s", err.msg);
            rc = EXIT_CANTCREAT;
        } else
            printf("%s: written (mode 0600): give it to %s as ~/.fetchmailrc\n", path, c->name);
        explicit_bzero(text, sizeof(text));
    }
    return rc;
}
