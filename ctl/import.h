/* SPDX-License-Identifier: ISC */
/*
 * import.h - "autoturnctl import RECIPE": what the recipes share. A
 * recipe reads the old system's files into a plan (customers to add,
 * maildirs to take held mail from, grants, relay networks) and reports
 * every line it cannot map; import.c checks the plan against the customer
 * source, the quotas and the journal, prints it (dry run) or carries it
 * out (--apply). The recipes live in import_<recipe>.c; their entry points
 * are declared at the end.
 */
#ifndef AUTOTURN_CTL_IMPORT_H
#define AUTOTURN_CTL_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "commands.h"
#include "customer.h"
#include "import_parse.h"
#include "secret.h"

#define IMP_TAG_MAX      48        /* "import." + 32 hex digits + NUL, with room */
#define IMP_DELIVERY_MAX (DOMAIN_MAX + 16)

/* The command line. Strings are NULL when not given. */
struct imp_opts {
    const char *recipe;
    bool apply;
    bool copy;                  /* keep the source messages */
    bool hello;                 /* qmail-autoturn: they used a Hello port */
    const char *journal;
    const char *port, *tls, *max_bytes, *max_messages, *max_age;   /* for new customers */
    const char *qmail_dir, *autoturn_dir, *user;                     /* qmail-autoturn, qsmtpd */
    const char *passwords, *rc_dir, *odmr_host, *odmr_port, *smtphost;  /* qsmtpd */
    const char *routes;                                              /* zmailer-routes */
    const char *vpopmail_etc, *clear_minutes;                        /* vpopmail-roaming */
};

/* A maildir whose held mail goes to a customer. */
struct imp_maildir {
    char *path;
    char *prefix;               /* taken off Delivered-To ("" = none) */
    const char *file;           /* the line that named it */
    unsigned line;
};

/* A customer the import adds (or finds already in the source). */
struct imp_customer {
    char name[CUSTOMER_NAME_MAX + 1];
    char **domains;             /* rules as written in the source: "a.dom", ".a.dom" */
    size_t ndomains;
    char address[IPNET_TEXT_MAX];        /* "" = none */
    char delivery[IMP_DELIVERY_MAX];     /* "connecting-ip", "host H", "mx D" */
    const char *trigger;                 /* "connect", "etrn", "atrn" */
    char secret[SECRET_TEXT_LEN + 1];    /* "" = none */
    char *password;             /* qsmtpd: for the fetchmailrc only; wiped on free */
    struct imp_maildir *maildirs;
    size_t nmaildirs;
    const char *file;           /* first line that made it */
    unsigned line;
    unsigned existing_line;     /* > 0: already in the source there (not appended) */
    uint64_t max_bytes, max_messages;    /* effective quota, 0 = none */
    uint64_t max_age;                    /* effective, 0 = the flusher's default */
    uint64_t held_msgs, held_bytes;      /* already in our spool */
    uint64_t new_msgs, new_bytes, done_msgs;
};

/* One held message to import. */
struct imp_msg {
    char *path;                 /* the source file */
    size_t cust;                /* index into plan.cust */
    char *sender, *rcpt;
    uint64_t src_size;          /* the source file's size */
    uint64_t skip;              /* bytes of the two qmail-local lines */
    bool crlf;                  /* the file already has CR LF line ends */
    uint64_t size;              /* bytes of our spool file */
    time_t arrival;
    char tag[IMP_TAG_MAX];      /* X-Autoturn-Queue-Id of the copy; journal key */
    bool done;                  /* imported by an earlier run */
};

/* A live vpopmail login that becomes a grant. */
struct imp_grant {
    char ip[IPADDR_TEXT_MAX];
    time_t login, expires;
    const char *file;
    unsigned line;
};

/* A permanent relay network (tcp.smtp) for the administrator to place. */
struct imp_net {
    struct ipnet net;
    const char *file;
    unsigned line;
    char customer[CUSTOMER_NAME_MAX + 1];   /* "" = mynetworks */
};

struct imp_plan {
    const struct imp_opts *o;
    const struct config *cfg;
    time_t now;
    char **files;               /* names kept for file/line references */
    size_t nfiles;
    struct imp_customer *cust;
    size_t ncust;
    struct imp_msg *msgs;
    size_t nmsgs;
    struct imp_grant *grants;
    size_t ngrants;
    struct imp_net *nets;
    size_t nnets;
    struct customer **existing; /* the customer source as it is */
    size_t nexisting;
    unsigned errors, notes;
    unsigned tmp_files;         /* maildir tmp/ files seen (deliveries under way) */
};

/* --- reporting: "FILE:LINE: text" (or "FILE: text") on stderr --- */
void imp_error(struct imp_plan *p, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* imp_note - the same for a line that is skipped on purpose or a
 * warning: it does not stop --apply. */
void imp_note(struct imp_plan *p, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* imp_file - a copy of name kept as long as the plan (for file/line refs). */
const char *imp_file(struct imp_plan *p, const char *name);

/* imp_read_lines - fn for every line of path (without LF); a line longer
 * than IMP_LINE_MAX or with a NUL byte is an error and skipped. -1 (and
 * an error) if the file cannot be read. */
typedef void imp_line_fn(struct imp_plan *p, void *ctx, const char *file, unsigned lineno,
                         char *line);
int imp_read_lines(struct imp_plan *p, const char *path, imp_line_fn *fn, void *ctx);

/* imp_customer_get - the planned customer NAME, added if new; NULL on ENOMEM. */
struct imp_customer *imp_customer_get(struct imp_plan *p, const char *name, const char *file,
                                      unsigned line);
struct imp_customer *imp_customer_find(struct imp_plan *p, const char *name);
/* imp_add_domain - add a rule ("a.dom" / ".a.dom") once; 0 or -1 ENOMEM. */
int imp_add_domain(struct imp_customer *c, const char *rule);
int imp_add_maildir(struct imp_customer *c, const char *path, const char *prefix,
                    const char *file, unsigned line);

/* imp_existing_domain - the existing customer (other than name) that has
 * this exact domain rule, or NULL; likewise for a network. */
const struct customer *imp_existing_domain(const struct imp_plan *p, const char *rule,
                                           const char *name);
const struct customer *imp_existing_net(const struct imp_plan *p, const struct ipnet *n,
                                        const char *name);

/* --- the recipes (import_<recipe>.c) --- */
struct imp_recipe {
    const char *name;
    bool customers;                              /* adds customers (and may hold mail) */
    bool mail;                                   /* has held mail to import */
    int (*scan)(struct imp_plan *p);             /* read the old files into p; -1 = cannot */
    void (*report)(const struct imp_plan *p);    /* its part of the dry run (or NULL) */
    int (*apply)(struct imp_plan *p, struct cli_ctx *ctx);   /* its last step (or NULL): exit code */
};

int import_qmail_scan(struct imp_plan *p);
int import_qsmtpd_scan(struct imp_plan *p);
void import_qsmtpd_report(const struct imp_plan *p);
int import_qsmtpd_apply(struct imp_plan *p, struct cli_ctx *ctx);
int import_zmailer_scan(struct imp_plan *p);
void import_zmailer_report(const struct imp_plan *p);
int import_vpopmail_scan(struct imp_plan *p);
void import_vpopmail_report(const struct imp_plan *p);
int import_vpopmail_apply(struct imp_plan *p, struct cli_ctx *ctx);

/* imp_qmail_vdomains - read QMAIL/control/virtualdomains for the
 * qsmtpd recipe: fn(ctx, domain, prefix) per valid line; 0 if absent. */
typedef void imp_vdomain_fn(void *ctx, const char *domain, const char *prefix);
int imp_qmail_vdomains(struct imp_plan *p, const char *path, imp_vdomain_fn *fn, void *ctx);

#endif
