/* SPDX-License-Identifier: ISC */
/*
 * import_zmailer.c - the ZMailer smtp-etrn recipe (ZMailer's
 * doc/guides/smtp-etrn): db/routes lines ".client.dom
 * smtp-etrn!mail.client.dom" hold mail in the scheduler's smtp-etrn
 * channel until the client says ETRN. Each target becomes a customer
 * named after it, with "trigger etrn": a key ".client.dom" (the domain
 * and its subdomains, in ZMailer) gives "domain client.dom .client.dom",
 * a key "client.dom" gives "domain client.dom"; the target gives
 * "delivery host mail.client.dom" ("[192.0.2.1]": that address), or
 * "delivery mx client.dom" when it is the domain itself (ZMailer: "use
 * the MX"). Routes through other channels are not ours and are listed
 * as not imported. ZMailer's queue is not imported: MIGRATION.md tells
 * how to drain it with ETRN before the switch.
 *
 * SECURITY: lines parsed by import_parse.c; keys and targets must be
 * valid domains (domain_normalise) or bracketed addresses (ipaddr_parse)
 * before they become rules, hosts or customer names.
 */
#include "import.h"
#include "util.h"

#define ROUTES_FILE   "/etc/zmailer/db/routes"
#define ETRN_CHANNEL  "smtp-etrn"

/* target - the customer name and delivery of a route's host. */
static int
target(const char *host, const char *domain, char *name, char *delivery, const char **why_r)
{
    char norm[DOMAIN_MAX + 1], *p;
    struct ipaddr a;
    size_t len = strlen(host);

    if (host[0] == '[') {
        if (len < 3 || host[len - 1] != ']' || len - 2 >= IPADDR_TEXT_MAX) {
            *why_r = "a bracketed host must be an address, as [192.0.2.1]";
            return -1;
        }
        memcpy(norm, host + 1, len - 2);
        norm[len - 2] = '\0';
        if (ipaddr_parse(norm, &a, why_r) < 0)
            return -1;
        (void)ipaddr_format(&a, norm, sizeof(norm));
        (void)str_printf(delivery, IMP_DELIVERY_MAX, a.family == AF_INET ? "host %s" : "host [%s]",
                         norm);
        for (p = norm; (p = strchr(p, ':')) != NULL;)
            *p = '-';
    } else {
        if (domain_normalise(host, norm, sizeof(norm), why_r) < 0)
            return -1;
        (void)str_printf(delivery, IMP_DELIVERY_MAX, "%s %s",
                         strcmp(norm, domain) == 0 ? "mx" : "host", norm);
    }
    if (!customer_name_valid(norm, why_r))
        return -1;
    return str_copy(name, CUSTOMER_NAME_MAX + 1, norm);
}

static void
route_line(struct imp_plan *p, void *ctx, const char *file, unsigned lineno, char *line)
{
    char *key, *channel, *hosts, norm[DOMAIN_MAX + 2], name[CUSTOMER_NAME_MAX + 1];
    char delivery[IMP_DELIVERY_MAX];
    struct imp_customer *c;
    bool sub;
    const char *why;
    int rc;

    (void)ctx;
    if ((rc = imp_parse_route(line, &key, &channel, &hosts, &why)) <= 0) {
        if (rc < 0)
            imp_error(p, file, lineno, "%s", why);
        return;
    }
    if (strcmp(channel, ETRN_CHANNEL) != 0) {
        imp_note(p, file, lineno, "not imported: channel '%s' (only %s routes hold mail for ETRN)",
                 channel, ETRN_CHANNEL);
        return;
    }
    sub = key[0] == '.';
    if (domain_normalise(key + sub, norm + 1, sizeof(norm) - 1, &why) < 0) {
        imp_error(p, file, lineno, "bad domain '%s': %s", key, why);
        return;
    }
    if (strchr(hosts, '!') != NULL) {
        imp_error(p, file, lineno, "more than one hop ('%s'): autoturn delivers to one host", hosts);
        return;
    }
    if (target(hosts, norm + 1, name, delivery, &why) < 0) {
        imp_error(p, file, lineno, "bad target '%s': %s", hosts, why);
        return;
    }
    if ((c = imp_customer_get(p, name, file, lineno)) == NULL) {
        imp_error(p, file, lineno, "out of memory");
        return;
    }
    if (c->trigger != NULL && strcmp(c->delivery, delivery) != 0) {
        imp_error(p, file, lineno, "target '%s' is also used as '%s' (line %u)", hosts, c->delivery,
                  c->line);
        return;
    }
    (void)str_copy(c->delivery, sizeof(c->delivery), delivery);
    c->trigger = "etrn";
    norm[0] = '.';
    if (imp_add_domain(c, norm + 1) < 0 || (sub && imp_add_domain(c, norm) < 0))
        imp_error(p, file, lineno, "out of memory");
}

int
import_zmailer_scan(struct imp_plan *p)
{
    const char *routes = p->o->routes ? p->o->routes : ROUTES_FILE;

    if (imp_read_lines(p, routes, route_line, NULL) < 0)
        return -1;
    if (p->ncust == 0)
        imp_note(p, imp_file(p, routes), 0, "warning: no %s route", ETRN_CHANNEL);
    return 0;
}

void
import_zmailer_report(const struct imp_plan *p)
{
    (void)p;
    printf("# ZMailer's queue is not imported: before the switch, have every customer say\n"
           "# ETRN (or run the smtp-etrn channel by hand) until it is empty (MIGRATION.md).\n");
}
