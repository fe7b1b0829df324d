/* SPDX-License-Identifier: ISC */
/*
 * import_vpopmail.c - the vpopmail "roaming users" recipe (POP before
 * SMTP): after a POP login vchkpw adds "ADDRESS:allow,RELAYCLIENT=\"\",
 * RBLSMTPD=\"\"<TAB>TIME" to ~vpopmail/etc/open-smtp and rebuilds
 * tcp.smtp.cdb from tcp.smtp plus those lines; clearopensmtp drops a
 * line relay-clear-minutes after its login. Each live line becomes a grant
 * in autoturn-policyd (through its control socket, as "autoturnctl grant"
 * makes them) for what is left of its lifetime; expired lines are listed.
 * tcp.smtp rules with RELAYCLIENT are permanent relay networks: they are
 * listed with where each belongs (Postfix mynetworks, or "relay yes" on
 * the customer whose registered network it is), for the administrator to
 * place; nothing is changed for them.
 *
 * SECURITY: lines parsed by import_parse.c; addresses must pass
 * ipaddr_parse and times units_parse_uint before a grant is asked for.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <unistd.h>

#include "ctlproto.h"
#include "import.h"
#include "units.h"
#include "util.h"

#define VPOPMAIL_ETC   "/home/vpopmail/etc"
#define CLEAR_MINUTES  180
#define CLOCK_SKEW     300          /* seconds a login time may lie ahead of ours */

struct vpop {
    uint64_t lifetime;              /* seconds */
};

/* --- open-smtp --- */

static int
add_grant(struct imp_plan *p, const struct ipaddr *a, time_t login, time_t expires,
          const char *file, unsigned lineno)
{
    struct imp_grant *g;
    char ip[IPADDR_TEXT_MAX];
    size_t i;

    (void)ipaddr_format(a, ip, sizeof(ip));
    for (i = 0; i < p->ngrants; i++)
        if (strcmp(p->grants[i].ip, ip) == 0) {
            if (expires > p->grants[i].expires) {
                p->grants[i].login = login;
                p->grants[i].expires = expires;
            }
            return 0;
        }
    if ((g = x_reallocarray(p->grants, p->ngrants + 1, sizeof(*g))) == NULL)
        return -1;
    p->grants = g;
    g += p->ngrants++;
    (void)str_copy(g->ip, sizeof(g->ip), ip);
    g->login = login;
    g->expires = expires;
    g->file = file;
    g->line = lineno;
    return 0;
}

static void
open_smtp_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    const struct vpop *v = ctx;
    struct imp_tcprule r;
    struct ipaddr a;
    char *when, at[32];
    const char *why;
    uint64_t t = 0;
    int rc;

    if ((rc = imp_parse_open_smtp(line, &r, &when, &why)) <= 0) {
        if (rc < 0)
            imp_error(p, file, lineno, "%s", why);
        return;
    }
    if (ipaddr_parse(r.addr, &a, &why) < 0) {
        imp_error(p, file, lineno, "bad address '%s': %s", r.addr, why);
        return;
    }
    if (units_parse_uint(when, INT64_MAX, &t, &why) < 0 || (why = "not a unix time", t == 0)) {
        imp_error(p, file, lineno, "bad time '%s': %s", when, why);
        return;
    }
    if ((time_t)t > p->now + CLOCK_SKEW) {
        imp_error(p, file, lineno, "bad time '%s': in the future", when);
        return;
    }
    if (!r.allow || !r.relayclient) {
        imp_note(p, file, lineno, "not imported: the rule does not set RELAYCLIENT");
        return;
    }
    if ((time_t)(t + v->lifetime) <= p->now) {
        cli_format_time(when, at, sizeof(at));
        imp_note(p, file, lineno, "not imported: the login of %s at %s has expired", r.addr, at);
        return;
    }
    if (add_grant(p, &a, (time_t)t, (time_t)(t + v->lifetime), file, lineno) < 0)
        imp_error(p, file, lineno, "out of memory");
}

/* --- tcp.smtp --- */

/* place - where a permanent relay network belongs. */
static void
place(const struct imp_plan *p, struct imp_net *n)
{
    const struct customer *c = imp_existing_net(p, &n->net, NULL);

    n->customer[0] = '\0';
    if (c != NULL)
        (void)str_copy(n->customer, sizeof(n->customer), c->name);
}

static void
tcp_smtp_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    struct ipnet nets[IMP_NETS_MAX];
    struct imp_tcprule r;
    struct imp_net *v;
    const char *why;
    size_t n, i;
    int rc;

    (void)ctx;
    if ((rc = imp_parse_tcprule(line, &r, &why)) <= 0) {
        if (rc < 0)
            imp_error(p, file, lineno, "%s", why);
        return;
    }
    if (!r.allow || !r.relayclient) {
        imp_note(p, file, lineno, "not imported: no RELAYCLIENT (a connection rule: it stays "
                 "with your MTA's access controls)");
        return;
    }
    if (r.relay_value[0] != '\0') {
        imp_note(p, file, lineno, "not imported: RELAYCLIENT=\"%s\" (qmail appends it to every "
                 "recipient): place it by hand", r.relay_value);
        return;
    }
    if (imp_tcprule_nets(r.addr, nets, ARRAY_LEN(nets), &n, &why) < 0) {
        imp_note(p, file, lineno, "not imported: '%s' is %s: autoturn relays by address or "
                 "network only", r.addr, why);
        return;
    }
    if ((v = x_reallocarray(p->nets, p->nnets + n, sizeof(*v))) == NULL) {
        imp_error(p, file, lineno, "out of memory");
        return;
    }
    p->nets = v;
    for (i = 0; i < n; i++) {
        v = &p->nets[p->nnets++];
        v->net = nets[i];
        v->file = file;
        v->line = lineno;
        place(p, v);
    }
}

/* --- the recipe --- */

static void
etc_dir(const struct imp_plan *p, char *buf, size_t size)
{
    const struct passwd *pw;

    if (p->o->vpopmail_etc)
        (void)str_copy(buf, size, p->o->vpopmail_etc);
    else if ((pw = getpwnam("vpopmail")) != NULL && pw->pw_dir[0] == '/')
        (void)str_printf(buf, size, "%s/etc", pw->pw_dir);
    else
        (void)str_copy(buf, size, VPOPMAIL_ETC);
}

int
import_vpopmail_scan(struct imp_plan *p)
{
    char etc[PATH_MAX], open_smtp[PATH_MAX], tcp_smtp[PATH_MAX];
    struct vpop v = { CLEAR_MINUTES * 60 };
    bool have_open, have_tcp;
    uint64_t min;

    if (p->o->clear_minutes && units_parse_uint(p->o->clear_minutes, 525600, &min, NULL) == 0)
        v.lifetime = min * 60;
    etc_dir(p, etc, sizeof(etc));
    if (str_printf(open_smtp, sizeof(open_smtp), "%s/open-smtp", etc) < 0 ||
        str_printf(tcp_smtp, sizeof(tcp_smtp), "%s/tcp.smtp", etc) < 0) {
        imp_error(p, etc, 0, "path too long");
        return -1;
    }
    have_open = access(open_smtp, F_OK) == 0;
    have_tcp = access(tcp_smtp, F_OK) == 0;
    if (!have_open && !have_tcp) {
        imp_error(p, imp_file(p, etc), 0, "neither open-smtp nor tcp.smtp is there");
        return -1;
    }
    if (!have_open)
        imp_note(p, imp_file(p, open_smtp), 0, "warning: absent: no roaming user to grant");
    else if (imp_read_lines(p, open_smtp, open_smtp_line, &v) < 0)
        return -1;
    if (!have_tcp)
        imp_note(p, imp_file(p, tcp_smtp), 0, "warning: absent: no permanent relay network");
    else if (imp_read_lines(p, tcp_smtp, tcp_smtp_line, NULL) < 0)
        return -1;
    return 0;
}

static void
print_grant(const struct imp_plan *p, const struct imp_grant *g, const char *indent)
{
    char login[32], until[32], num[32], left[32];

    (void)str_printf(num, sizeof(num), "%lld", (long long)g->login);
    cli_format_time(num, login, sizeof(login));
    (void)str_printf(num, sizeof(num), "%lld", (long long)g->expires);
    cli_format_time(num, until, sizeof(until));
    printf("%s%-39s login %s, relays until %s (%s left)\n", indent, g->ip, login, until,
           units_format_duration((uint64_t)(g->expires - p->now), left, sizeof(left)));
}

static void
report_nets(const struct imp_plan *p)
{
    char net[IPNET_TEXT_MAX], where[CUSTOMER_NAME_MAX + 64];
    bool any = false;
    size_t i;

    if (p->nnets == 0)
        return;
    printf("# permanent relay networks (tcp.smtp rules with RELAYCLIENT), for you to place:\n");
    for (i = 0; i < p->nnets; i++) {
        const struct imp_net *n = &p->nets[i];

        if (n->customer[0] != '\0')
            (void)str_printf(where, sizeof(where), "\"relay yes\" on customer %s", n->customer);
        printf("#   %-20s %s:%u  %s\n", ipnet_format(&n->net, net, sizeof(net)), n->file, n->line,
               n->customer[0] ? where : "Postfix mynetworks");
    }
    printf("# \"relay yes\" where the network is a customer's registered address: its relay\n"
           "# stays tied to that customer; mynetworks for the rest (your own networks).\n");
    printf("# main.cf: mynetworks =");
    for (i = 0; i < p->nnets; i++)
        if (p->nets[i].customer[0] == '\0') {
            printf("%s %s", any ? "," : "", ipnet_format(&p->nets[i].net, net, sizeof(net)));
            any = true;
        }
    printf("%s\n", any ? "" : " (none)");
}

void
import_vpopmail_report(const struct imp_plan *p)
{
    size_t i;

    printf("# grants for autoturn-policyd (live logins in open-smtp, each for what is left\n"
           "# of its lifetime):\n");
    for (i = 0; i < p->ngrants; i++)
        print_grant(p, &p->grants[i], "#   ");
    if (p->ngrants == 0)
        printf("#   none\n");
    report_nets(p);
}

int
import_vpopmail_apply(struct imp_plan *p, struct cli_ctx *ctx)
{
    struct ctl_msg req, fin;
    time_t now = time(NULL);
    size_t i, n = 0;
    int rc;

    for (i = 0; i < p->ngrants; i++) {
        const struct imp_grant *g = &p->grants[i];

        if (g->expires <= now)
            continue;
        if (ctl_msg_init(&req, "GRANT") < 0 || ctl_msg_add(&req, "ip", g->ip) < 0 ||
            ctl_msg_addf(&req, "ttl", "%llds", (long long)(g->expires - now)) < 0) {
            cli_errx("import: %s: cannot build the request", g->ip);
            return EXIT_SOFTWARE;
        }
        if ((rc = cli_policyd_ask(ctx, &req, &fin)) != EXIT_OK) {
            cli_errx("import: %zu of %zu grants made; run the command again", n, p->ngrants);
            return rc;
        }
        print_grant(p, g, "granted ");
        n++;
    }
    printf("%zu grants made\n", n);
    report_nets(p);
    return EXIT_OK;
}
