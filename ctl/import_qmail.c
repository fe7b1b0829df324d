/* SPDX-License-Identifier: ISC */
/*
 * import_qmail.c - the qmail + serialmail AutoTURN recipe (serialmail's
 * AUTOTURN file): control/virtualdomains maps a domain to a prefix
 * "autoturn-1.2.3.4", qmail-local delivers its mail through
 * ~autoturn/.qmail-1:2:3:4-default into the maildir autoturn/1.2.3.4/, and
 * maildirsmtp sends it back when 1.2.3.4 connects. Each address becomes a
 * customer (its domains, "address 1.2.3.4", delivery connecting-ip,
 * trigger connect) and its maildir's mail is imported with the prefix
 * "autoturn-1.2.3.4-" taken off Delivered-To. Also shared with the qsmtpd
 * recipe: reading virtualdomains.
 *
 * SECURITY: the control files and maildirs belong to the old system and
 * are parsed with bounded lines (import_parse.c); names from them become
 * customer names only after customer_name_valid, domains only after
 * domain_normalise, addresses only after ipaddr_parse.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "util.h"

#define QMAIL_HOME    "/var/qmail"
#define AUTOTURN_USER "autoturn"

struct qmail {
    const char *user;             /* users/assign name of the prefix */
    size_t ulen;
    char **rcpthosts;
    size_t nrcpthosts;
    bool have_rcpthosts;
};

/* --- virtualdomains (also for qsmtpd) --- */

struct vd_ctx {
    imp_vdomain_fn *fn;
    void *ctx;
};

static void
vd_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    struct vd_ctx *v = ctx;
    char *domain, *prefix;
    const char *why;

    (void)p;
    (void)file;
    (void)lineno;
    if (imp_parse_vdomain(line, &domain, &prefix, &why) == 1)
        v->fn(v->ctx, domain, prefix);
}

int
imp_qmail_vdomains(struct imp_plan *p, const char *path, imp_vdomain_fn *fn, void *ctx)
{
    struct vd_ctx v = { fn, ctx };

    if (access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    return imp_read_lines(p, path, vd_line, &v);
}

/* --- rcpthosts --- */

static void
rcpthosts_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    struct qmail *q = ctx;
    char **v, *s = str_trim(line);

    (void)p;
    (void)file;
    (void)lineno;
    if (*s == '\0' || *s == '#')
        return;
    str_lower(s);
    if ((v = x_reallocarray(q->rcpthosts, q->nrcpthosts + 1, sizeof(*v))) == NULL)
        return;
    q->rcpthosts = v;
    if ((v[q->nrcpthosts] = x_strdup(s)) != NULL)
        q->nrcpthosts++;
}

/* in_rcpthosts - rule ("a.dom" or ".a.dom") accepted by qmail-smtpd: the
 * domain itself, or a ".parent" entry. */
static bool
in_rcpthosts(const struct qmail *q, const char *rule)
{
    const char *d;
    size_t i;

    for (i = 0; i < q->nrcpthosts; i++) {
        if (strcmp(q->rcpthosts[i], rule) == 0)
            return true;
        for (d = rule; (d = strchr(d + 1, '.')) != NULL;)
            if (strcmp(q->rcpthosts[i], d) == 0)
                return true;
    }
    return false;
}

/* --- the AutoTURN lines --- */

/* domain_rule - DOMAIN of virtualdomains as a rule of ours. */
static int
domain_rule(const char *domain, char *rule, size_t size, const char **why_r)
{
    bool sub = domain[0] == '.';

    if (domain[0] == '\0') {
        *why_r = "a catch-all (empty domain) cannot be held: autoturn holds named domains";
        return -1;
    }
    if (strchr(domain, '@') != NULL) {
        *why_r = "a single address (USER@DOMAIN): autoturn holds whole domains";
        return -1;
    }
    rule[0] = '.';
    if (domain_normalise(domain + sub, rule + 1, size - 1, why_r) < 0)
        return -1;
    if (!sub)
        memmove(rule, rule + 1, strlen(rule + 1) + 1);
    return 0;
}

static void
vdomain_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    struct qmail *q = ctx;
    char *domain, *prefix, rule[DOMAIN_MAX + 2];
    struct imp_customer *c;
    const char *why, *ip;
    struct ipaddr a;
    int rc;

    if ((rc = imp_parse_vdomain(line, &domain, &prefix, &why)) <= 0) {
        if (rc < 0)
            imp_error(p, file, lineno, "%s", why);
        return;
    }
    if (strncmp(prefix, q->user, q->ulen) != 0 || prefix[q->ulen] != '-') {
        imp_note(p, file, lineno, "not imported: '%s:%s' is not an AutoTURN prefix (%s-ADDRESS)",
                 domain, prefix, q->user);
        return;
    }
    ip = prefix + q->ulen + 1;
    if (ipaddr_parse(ip, &a, &why) < 0 || a.family != AF_INET) {
        imp_error(p, file, lineno, "prefix '%s': '%s' is not an IPv4 address", prefix, ip);
        return;
    }
    if (domain_rule(domain, rule, sizeof(rule), &why) < 0) {
        imp_error(p, file, lineno, "domain '%s': %s", domain, why);
        return;
    }
    if ((c = imp_customer_get(p, ip, file, lineno)) == NULL || imp_add_domain(c, rule) < 0) {
        imp_error(p, file, lineno, "out of memory");
        return;
    }
    (void)str_copy(c->address, sizeof(c->address), ip);
    c->trigger = "connect";
    if (q->have_rcpthosts && !in_rcpthosts(q, rule))
        imp_note(p, file, lineno, "warning: '%s' is not in control/rcpthosts (qmail-smtpd "
                 "refused its mail unless morercpthosts has it); it is imported anyway", rule);
}

/* --- maildirs --- */

static bool
has_mail(const char *dir)
{
    static const char *const subs[] = { "new", "cur" };
    char path[PATH_MAX];
    struct dirent *de;
    bool found = false;
    size_t i;
    DIR *d;

    for (i = 0; i < ARRAY_LEN(subs) && !found; i++) {
        if (str_printf(path, sizeof(path), "%s/%s", dir, subs[i]) < 0 ||
            (d = opendir(path)) == NULL)
            continue;
        while (!found && (de = readdir(d)) != NULL)
            found = de->d_name[0] != '.';
        closedir(d);
    }
    return found;
}

/* stranded - maildirs named by an address that no virtualdomains line
 * maps: their mail would stay behind. */
static void
stranded(struct imp_plan *p, const struct qmail *q, const char *autodir)
{
    char path[PATH_MAX];
    struct ipaddr a;
    struct dirent *de;
    const char *why;
    DIR *d;

    if ((d = opendir(autodir)) == NULL) {
        imp_note(p, imp_file(p, autodir), 0, "warning: cannot open: %s: no held mail imported",
                 strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || ipaddr_parse(de->d_name, &a, &why) < 0 ||
            imp_customer_find(p, de->d_name) != NULL ||
            str_printf(path, sizeof(path), "%s/%s", autodir, de->d_name) < 0)
            continue;
        if (has_mail(path))
            imp_error(p, imp_file(p, path), 0, "holds mail, but no virtualdomains line maps a "
                      "domain to %s-%s: its mail would stay behind", q->user, de->d_name);
    }
    closedir(d);
}

static int
add_maildirs(struct imp_plan *p, const struct qmail *q, const char *autodir)
{
    char path[PATH_MAX], prefix[CUSTOMER_NAME_MAX + 64];
    size_t i;

    for (i = 0; i < p->ncust; i++) {
        struct imp_customer *c = &p->cust[i];

        if (str_printf(path, sizeof(path), "%s/%s", autodir, c->name) < 0 ||
            str_printf(prefix, sizeof(prefix), "%s-%s-", q->user, c->name) < 0 ||
            imp_add_maildir(c, path, prefix, c->file, c->line) < 0) {
            imp_error(p, autodir, 0, "out of memory or path too long");
            return -1;
        }
    }
    return 0;
}

static void
check_hello(struct imp_plan *p)
{
    const char *conf = p->cfg->file[0] ? p->cfg->file : "autoturn.conf";

    if (p->o->hello && !p->cfg->flusher.hello.enable)
        imp_note(p, conf, 0, "warning: --hello: the Hello port is off here; set flusher { hello "
                 "{ enable = true } } (port 1789) so that the customers' connect-and-close still "
                 "triggers delivery");
}

int
import_qmail_scan(struct imp_plan *p)
{
    const char *home = p->o->qmail_dir ? p->o->qmail_dir : QMAIL_HOME;
    char vd[PATH_MAX], rh[PATH_MAX], autodir[PATH_MAX];
    struct qmail q = { p->o->user ? p->o->user : AUTOTURN_USER, 0, NULL, 0, false };
    size_t i;
    int rc = -1;

    q.ulen = strlen(q.user);
    if (str_printf(vd, sizeof(vd), "%s/control/virtualdomains", home) < 0 ||
        str_printf(rh, sizeof(rh), "%s/control/rcpthosts", home) < 0 ||
        str_printf(autodir, sizeof(autodir), "%s/autoturn", home) < 0) {
        imp_error(p, home, 0, "path too long");
        return -1;
    }
    if (p->o->autoturn_dir)
        (void)str_copy(autodir, sizeof(autodir), p->o->autoturn_dir);
    if (access(rh, F_OK) == 0) {
        q.have_rcpthosts = true;
        (void)imp_read_lines(p, rh, rcpthosts_line, &q);
    } else
        imp_note(p, imp_file(p, rh), 0, "warning: cannot open: %s: domains not checked",
                 strerror(errno));
    if (imp_read_lines(p, vd, vdomain_line, &q) < 0)
        goto out;
    if (p->ncust == 0)
        imp_note(p, imp_file(p, vd), 0, "warning: no line maps a domain to %s-ADDRESS", q.user);
    stranded(p, &q, autodir);
    check_hello(p);
    rc = add_maildirs(p, &q, autodir);
out:
    for (i = 0; i < q.nrcpthosts; i++)
        x_free(q.rcpthosts[i]);
    x_free(q.rcpthosts);
    return rc;
}
