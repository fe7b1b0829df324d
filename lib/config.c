/* SPDX-License-Identifier: ISC */
/*
 * config.c - autoturn.conf: one libconfuse schema for every program, built
 * from the key table below (section, key, kind, where it goes in struct
 * config, limits), so that each key is named exactly once. Owns no state
 * between calls; config_load() is serialised by a mutex because
 * libconfuse's lexer keeps global state.
 *
 * How a file is read: the whole file (at most CONFIG_FILE_MAX bytes) is
 * read, comments are blanked out here (newlines kept), and the text goes
 * to cfg_parse_buf(). Blanking comments ourselves works around two
 * libconfuse 3.3 lexer bugs: every comment line adds two to the line
 * counter, and a comment inside a { list } is a syntax error.
 *
 * Errors: every value is checked by our own callbacks, which report
 * "FILE:LINE: message" and let the parse go on, so one run shows every bad
 * value. libconfuse itself stops at the first syntax error, unknown key or
 * bad boolean; that error is reported in the same format.
 *
 * SECURITY: the file is trusted (root-owned) but checked strictly: size
 * capped, NUL bytes refused, every value range-checked before it is used.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include <confuse.h>

#include "util.h"
#include "config.h"
#include "paths.h"
#include "units.h"

#define CONFIG_FILE_MAX   (1024 * 1024)  /* bytes in autoturn.conf */
#define CONFIG_MSG_MAX    1024           /* one error message */
#define CONFIG_ECHO_MAX   80             /* bytes of a bad value quoted back */
#define SECTION_KEYS_MAX  40             /* keys + subsections in one section */
#define DAY               86400

enum key_kind {
    K_DURATION,         /* uint64_t seconds */
    K_DURATION_MS,      /* written as a duration, kept in milliseconds */
    K_SIZE,             /* uint64_t bytes */
    K_COUNT,            /* uint64_t, no unit */
    K_BOOL,             /* bool */
    K_NAME,             /* user or group name; "" allowed */
    K_PATH,             /* absolute path; "" allowed when KF_EMPTY */
    K_HOST,             /* host name; "" allowed */
    K_TEXT,             /* printable text without blanks */
    K_SOCK,             /* struct sockspec; "" allowed when KF_EMPTY */
    K_SOCK_LIST,        /* struct config_listen */
    K_NAME_LIST,        /* struct config_names */
    K_DEST,             /* enum log_dest */
    K_FACILITY,         /* int LOG_* */
    K_LEVEL,            /* enum log_level */
    K_BOUNCE,           /* char[16]: sendmail | smtp */
};

#define KF_EMPTY 1u     /* "" is a valid value */

struct key {
    const char *section;
    const char *name;
    enum key_kind kind;
    size_t offset;      /* in struct config */
    size_t size;        /* of the field */
    uint64_t min, max;  /* numbers */
    unsigned flags;
};

struct section {
    const char *name;
    const char *parent; /* the enclosing section's path; NULL: top level */
    const char *path;   /* the key table's name for it; NULL: the name. A
                         * name used in several sections ("metrics") gets
                         * "parent.name" */
};

#define F_OFF(m) offsetof(struct config, m)
#define F_SZ(m)  sizeof(((struct config *)0)->m)
#define NUM(sec, name, kind, m, lo, hi) { sec, name, kind, F_OFF(m), F_SZ(m), lo, hi, 0 }
#define STR(sec, name, kind, m, fl)     { sec, name, kind, F_OFF(m), F_SZ(m), 0, 0, fl }

static const struct section sections[] = {
    { "log", NULL, NULL }, { "spool", NULL, NULL }, { "customers", NULL, NULL },
    { "milter", NULL, NULL }, { "policyd", NULL, NULL }, { "flusher", NULL, NULL },
    { "hello", "flusher", NULL }, { "odmr", "flusher", NULL },
    { "metrics", "milter", "milter.metrics" }, { "metrics", "policyd", "policyd.metrics" },
    { "metrics", "flusher", "flusher.metrics" },
};

static const struct key keys[] = {
    STR("log", "destination", K_DEST, log_dest, 0),
    STR("log", "facility", K_FACILITY, log_facility, 0),
    STR("log", "level", K_LEVEL, log_level, 0),
    STR("spool", "directory", K_PATH, spool_dir, 0),
    STR("customers", "source", K_PATH, customers_source, 0),
    STR("customers", "table", K_PATH, customers_table, 0),
    NUM("customers", "check_interval", K_DURATION_MS, customers_check_interval, 0, 3600),
    STR("milter", "listen", K_SOCK_LIST, milter.listen, 0),
    STR("milter", "user", K_NAME, milter.user, 0),
    STR("milter", "group", K_NAME, milter.group, 0),
    STR("milter", "socket_group", K_NAME, milter.socket_group, 0),
    NUM("milter", "timeout", K_DURATION, milter.timeout, 1, DAY),
    NUM("milter", "max_recipients", K_COUNT, milter.max_recipients, 1, 100000),
    STR("policyd", "listen", K_SOCK_LIST, policyd.listen, 0),
    STR("policyd", "trusted_listen", K_SOCK_LIST, policyd.trusted_listen, 0),
    STR("policyd", "trusted_users", K_NAME_LIST, policyd.trusted_users, 0),
    STR("policyd", "control_users", K_NAME_LIST, policyd.control_users, 0),
    STR("policyd", "control", K_SOCK, policyd.control, 0),
    STR("policyd", "user", K_NAME, policyd.user, 0),
    STR("policyd", "group", K_NAME, policyd.group, 0),
    STR("policyd", "socket_group", K_NAME, policyd.socket_group, 0),
    NUM("policyd", "max_connections", K_COUNT, policyd.max_connections, 1, 1000000),
    NUM("policyd", "idle_timeout", K_DURATION, policyd.idle_timeout, 1, DAY),
    NUM("policyd", "max_line", K_SIZE, policyd.max_line, 512, 1024 * 1024),
    NUM("policyd", "max_attributes", K_COUNT, policyd.max_attributes, 1, 10000),
    NUM("policyd", "grant_ttl", K_DURATION, policyd.grant_ttl, 1, 3650ULL * DAY),
    STR("policyd", "grant_file", K_PATH, policyd.grant_file, 0),
    NUM("policyd", "notify_interval", K_DURATION, policyd.notify_interval, 0, DAY),
    STR("policyd", "log_decisions", K_BOOL, policyd.log_decisions, 0),
    STR("flusher", "control", K_SOCK, flusher.control, 0),
    STR("flusher", "control_users", K_NAME_LIST, flusher.control_users, 0),
    STR("flusher", "user", K_NAME, flusher.user, 0),
    STR("flusher", "group", K_NAME, flusher.group, 0),
    STR("flusher", "socket_group", K_NAME, flusher.socket_group, 0),
    NUM("flusher", "max_flushes", K_COUNT, flusher.max_flushes, 1, 10000),
    NUM("flusher", "retry_interval", K_DURATION, flusher.retry_interval, 0, 3650ULL * DAY),
    NUM("flusher", "connect_timeout", K_DURATION, flusher.connect_timeout, 1, DAY),
    NUM("flusher", "greeting_timeout", K_DURATION, flusher.greeting_timeout, 1, DAY),
    NUM("flusher", "command_timeout", K_DURATION, flusher.command_timeout, 1, DAY),
    NUM("flusher", "data_timeout", K_DURATION, flusher.data_timeout, 1, DAY),
    NUM("flusher", "flush_timeout", K_DURATION, flusher.flush_timeout, 1, 7 * DAY),
    NUM("flusher", "max_age", K_DURATION, flusher.max_age, 1, 3650ULL * DAY),
    NUM("flusher", "delay_warning", K_DURATION, flusher.delay_warning, 0, 3650ULL * DAY),
    NUM("flusher", "sweep_interval", K_DURATION, flusher.sweep_interval, 1, DAY),
    NUM("flusher", "tmp_max_age", K_DURATION, flusher.tmp_max_age, 1, 3650ULL * DAY),
    STR("flusher", "myhostname", K_HOST, flusher.myhostname, 0),
    STR("flusher", "bounce_method", K_BOUNCE, flusher.bounce_method, 0),
    STR("flusher", "sendmail_command", K_PATH, flusher.sendmail_command, KF_EMPTY),
    STR("flusher", "bounce_relay", K_SOCK, flusher.bounce_relay, KF_EMPTY),
    STR("flusher", "postmaster", K_TEXT, flusher.postmaster, 0),
    NUM("flusher", "max_reconnects", K_COUNT, flusher.max_reconnects, 0, 1000),
    STR("flusher", "chunking", K_BOOL, flusher.chunking, 0),
    STR("hello", "enable", K_BOOL, flusher.hello.enable, 0),
    STR("hello", "listen", K_SOCK_LIST, flusher.hello.listen, 0),
    NUM("hello", "rate_interval", K_DURATION, flusher.hello.rate_interval, 0, DAY),
    STR("odmr", "enable", K_BOOL, flusher.odmr.enable, 0),
    STR("odmr", "listen", K_SOCK_LIST, flusher.odmr.listen, 0),
    STR("odmr", "tls_cert", K_PATH, flusher.odmr.tls_cert, KF_EMPTY),
    STR("odmr", "tls_key", K_PATH, flusher.odmr.tls_key, KF_EMPTY),
    NUM("odmr", "auth_delay", K_DURATION, flusher.odmr.auth_delay, 0, 60),
    NUM("odmr", "max_auth_failures", K_COUNT, flusher.odmr.max_auth_failures, 1, 100),
    NUM("odmr", "timeout", K_DURATION, flusher.odmr.timeout, 1, DAY),
    NUM("odmr", "turnaround_timeout", K_DURATION, flusher.odmr.turnaround_timeout, 1, DAY),
    NUM("odmr", "max_sessions", K_COUNT, flusher.odmr.max_sessions, 1, 10000),
    NUM("odmr", "max_sessions_per_address", K_COUNT, flusher.odmr.max_sessions_per_address, 1,
        10000),
    NUM("odmr", "address_failures", K_COUNT, flusher.odmr.address_failures, 1, 100000),
    NUM("odmr", "address_block", K_DURATION, flusher.odmr.address_block, 0, 30 * DAY),
    STR("odmr", "user", K_NAME, flusher.odmr.user, 0),
    NUM("odmr", "preauth_timeout", K_DURATION, flusher.odmr.preauth_timeout, 1, DAY),
    NUM("odmr", "max_preauth_sessions", K_COUNT, flusher.odmr.max_preauth_sessions, 1, 10000),
    NUM("odmr", "account_failures", K_COUNT, flusher.odmr.account_failures, 1, 100000),
    NUM("odmr", "account_delay", K_DURATION, flusher.odmr.account_delay, 1, DAY),
    NUM("odmr", "account_delay_max", K_DURATION, flusher.odmr.account_delay_max, 1, DAY),
    STR("milter.metrics", "listen", K_SOCK, milter.metrics.listen, KF_EMPTY),
    STR("policyd.metrics", "listen", K_SOCK, policyd.metrics.listen, KF_EMPTY),
    STR("flusher.metrics", "listen", K_SOCK, flusher.metrics.listen, KF_EMPTY),
};

/* The load in progress (libconfuse callbacks take no context pointer). */
struct load {
    struct config *cfg;
    config_error_fn *errfn;
    void *ctx;
    const char *file;
    int errors;
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static struct load *current;

/* report - one error: "FILE:LINE: message" (line 0: "FILE: message") */
static void __attribute__((format(printf, 3, 4)))
report(struct load *ld, int line, const char *fmt, ...)
{
    char text[CONFIG_MSG_MAX], msg[CONFIG_MSG_MAX + PATH_MAX + 16];
    va_list ap;
    char *p;

    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);   /* a cut message is still useful */
    va_end(ap);
    for (p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
    if (line > 0)
        (void)snprintf(msg, sizeof(msg), "%s:%d: %s", ld->file, line, text);
    else
        (void)snprintf(msg, sizeof(msg), "%s: %s", ld->file, text);
    ld->errors++;
    if (ld->errfn != NULL)
        ld->errfn(ld->ctx, msg);
    else
        log_errorx("%s", msg);
}

/* on_libconfuse_error - libconfuse's own messages, in our format */
static void
on_libconfuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
    char text[CONFIG_MSG_MAX];

    (void)vsnprintf(text, sizeof(text), fmt, ap);   /* a cut message is still useful */
    if (current != NULL)
        report(current, cfg != NULL ? cfg->line : 0, "%s", text);
}

/* key_find - the key table row of option opt in section cfg. The
 * option's comment holds its section's path (make_opt), which libconfuse
 * copies into every section it creates: cfg_name() alone cannot tell
 * milter { metrics { } } from policyd { metrics { } }. */
static const struct key *
key_find(cfg_t *cfg, const cfg_opt_t *opt)
{
    const char *sec = opt->comment != NULL ? opt->comment : cfg_name(cfg);
    size_t i;

    for (i = 0; i < ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].name, opt->name) == 0 && sec != NULL &&
            strcmp(keys[i].section, sec) == 0)
            return &keys[i];
    return NULL;
}

/* field - where row k goes in cfg */
static void *
field(struct config *cfg, const struct key *k)
{
    return (char *)cfg + k->offset;
}

/* number_kind_name - "duration", "size", "number" */
static const char *
number_kind_name(enum key_kind kind)
{
    if (kind == K_SIZE)
        return "size";
    return kind == K_COUNT ? "number" : "duration";
}

/* format_number - a bound, printed as the user would write it */
static const char *
format_number(enum key_kind kind, uint64_t v, char *buf, size_t size)
{
    if (kind == K_SIZE)
        return units_format_size(v, buf, size);
    if (kind == K_COUNT) {
        (void)str_printf(buf, size, "%llu", (unsigned long long)v);  /* fits */
        return buf;
    }
    return units_format_duration(v, buf, size);
}

/* parse_number - text to a number of row k's kind */
static int
parse_number(const struct key *k, const char *text, uint64_t *val_r, const char **err_r)
{
    if (k->kind == K_SIZE)
        return units_parse_size(text, val_r, err_r);
    if (k->kind == K_COUNT)
        return units_parse_uint(text, UINT64_MAX, val_r, err_r);
    return units_parse_duration(text, val_r, err_r);
}

/* store_number - check and store a number value */
static void
store_number(struct load *ld, const struct key *k, const char *text, int line)
{
    char lo[32], hi[32];
    const char *err;
    uint64_t val;

    if (parse_number(k, text, &val, &err) < 0) {
        report(ld, line, "bad %s '%.*s' for '%s': %s", number_kind_name(k->kind),
               CONFIG_ECHO_MAX, text, k->name, err);
        return;
    }
    if (val < k->min || val > k->max) {
        report(ld, line, "%s '%.*s' for '%s' out of range (%s to %s)",
               number_kind_name(k->kind), CONFIG_ECHO_MAX, text, k->name,
               format_number(k->kind, k->min, lo, sizeof(lo)),
               format_number(k->kind, k->max, hi, sizeof(hi)));
        return;
    }
    if (k->kind == K_DURATION_MS)
        val *= 1000;
    *(uint64_t *)field(ld->cfg, k) = val;
}

/* on_number - libconfuse parse callback for every number key */
static int
on_number(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    const struct key *k = key_find(cfg, opt);

    *(long *)result = 0;            /* the value lives in struct config */
    if (k != NULL && current != NULL)
        store_number(current, k, value, cfg->line);
    return 0;
}

/* valid_name - user/group name: letters, digits, . _ -, not starting with - */
static bool
valid_name(const char *s)
{
    if (*s == '-')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* valid_text - printable ASCII without blanks */
static bool
valid_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* check_string - NULL if text is acceptable for row k, else the reason */
static const char *
check_string(const struct key *k, const char *text)
{
    if (text[0] == '\0')
        return (k->flags & KF_EMPTY) || k->kind == K_NAME || k->kind == K_HOST
                   ? NULL : "must not be empty";
    switch (k->kind) {
    case K_NAME:
        return valid_name(text) ? NULL : "not a valid user or group name";
    case K_PATH:
        return text[0] == '/' ? NULL : "must be an absolute path";
    case K_HOST:
        return valid_name(text) && text[0] != '.' ? NULL : "not a valid host name";
    default:
        return valid_text(text) ? NULL : "must be printable text without blanks";
    }
}

/* store_string - check and store a name, path, host or text */
static void
store_string(struct load *ld, const struct key *k, const char *text, int line)
{
    const char *err = check_string(k, text);

    if (err == NULL && strlen(text) >= k->size)
        err = "too long";
    if (err != NULL) {
        report(ld, line, "bad value '%.*s' for '%s': %s", CONFIG_ECHO_MAX, text, k->name, err);
        return;
    }
    (void)str_copy(field(ld->cfg, k), k->size, text);   /* length checked above */
}

/* store_sock - check and store a socket spec ("" = unset when allowed) */
static void
store_sock(struct load *ld, const struct key *k, const char *text, int line,
           struct sockspec *spec)
{
    const char *err;
    struct sockspec tmp;

    if (text[0] == '\0' && (k->flags & KF_EMPTY)) {
        memset(spec, 0, sizeof(*spec));
        return;
    }
    if (sockspec_parse(text, &tmp, &err) < 0) {
        report(ld, line, "bad socket '%.*s' for '%s': %s", CONFIG_ECHO_MAX, text, k->name, err);
        return;
    }
    *spec = tmp;
}

/* store_listen - element n (0-based) of a listen list */
static void
store_listen(struct load *ld, const struct key *k, const char *text, int line, unsigned n)
{
    struct config_listen *l = field(ld->cfg, k);

    if (n == CONFIG_LISTEN_MAX)
        report(ld, line, "too many addresses for '%s' (at most %d)", k->name, CONFIG_LISTEN_MAX);
    if (n >= CONFIG_LISTEN_MAX)
        return;
    store_sock(ld, k, text, line, &l->spec[n]);
    l->count = n + 1;
}

/* store_name_item - element n (0-based) of a user name list */
static void
store_name_item(struct load *ld, const struct key *k, const char *text, int line, unsigned n)
{
    struct config_names *l = field(ld->cfg, k);

    if (n == CONFIG_NAMES_MAX)
        report(ld, line, "too many names for '%s' (at most %d)", k->name, CONFIG_NAMES_MAX);
    if (n >= CONFIG_NAMES_MAX)
        return;
    if (text[0] == '\0' || !valid_name(text) || strlen(text) >= sizeof(l->name[n])) {
        report(ld, line, "bad value '%.*s' for '%s': not a valid user name", CONFIG_ECHO_MAX,
               text, k->name);
        return;
    }
    (void)str_copy(l->name[n], sizeof(l->name[n]), text);     /* length checked above */
    l->count = n + 1;
}

/* store_enum - destination, facility, level, bounce_method */
static void
store_enum(struct load *ld, const struct key *k, const char *text, int line)
{
    void *f = field(ld->cfg, k);
    int v = -1;

    if (k->kind == K_DEST) {
        v = strcmp(text, "syslog") == 0 ? LOG_DEST_SYSLOG
          : strcmp(text, "stderr") == 0 ? LOG_DEST_STDERR : -1;
        if (v >= 0)
            *(enum log_dest *)f = (enum log_dest)v;
        else
            report(ld, line, "bad value '%.*s' for '%s': use syslog or stderr",
                   CONFIG_ECHO_MAX, text, k->name);
    } else if (k->kind == K_FACILITY) {
        if ((v = log_facility_parse(text)) >= 0)
            *(int *)f = v;
        else
            report(ld, line, "bad value '%.*s' for '%s': use mail, daemon, user or local0 to local7",
                   CONFIG_ECHO_MAX, text, k->name);
    } else if (k->kind == K_LEVEL) {
        if ((v = log_level_parse(text)) >= 0)
            *(enum log_level *)f = (enum log_level)v;
        else
            report(ld, line, "bad value '%.*s' for '%s': use debug, info, warning or error",
                   CONFIG_ECHO_MAX, text, k->name);
    } else if (strcmp(text, "sendmail") == 0 || strcmp(text, "smtp") == 0) {
        (void)str_copy(f, k->size, text);               /* fits */
    } else {
        report(ld, line, "bad value '%.*s' for '%s': use sendmail or smtp",
               CONFIG_ECHO_MAX, text, k->name);
    }
}

/* on_bool - libconfuse validate callback of the boolean keys */
static int
on_bool(cfg_t *cfg, cfg_opt_t *opt)
{
    const struct key *k = key_find(cfg, opt);

    if (k != NULL && current != NULL && cfg_opt_size(opt) > 0)
        *(bool *)field(current->cfg, k) = cfg_opt_getnbool(opt, 0) != cfg_false;
    return 0;
}

/* on_string - libconfuse parse callback of every other key; called once
 * per value (list elements too, after the element was added) */
static int
on_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    const struct key *k = key_find(cfg, opt);
    unsigned n = cfg_opt_size(opt);

    *(void **)result = NULL;        /* the value lives in struct config */
    if (k == NULL || current == NULL)
        return 0;
    if (k->kind == K_SOCK_LIST)
        store_listen(current, k, value, cfg->line, n > 0 ? n - 1 : 0);
    else if (k->kind == K_NAME_LIST)
        store_name_item(current, k, value, cfg->line, n > 0 ? n - 1 : 0);
    else if (k->kind == K_SOCK)
        store_sock(current, k, value, cfg->line, field(current->cfg, k));
    else if (k->kind >= K_DEST)
        store_enum(current, k, value, cfg->line);
    else
        store_string(current, k, value, cfg->line);
    return 0;
}

/* make_opt - the libconfuse option for row k (no defaults: struct config has them) */
static cfg_opt_t
make_opt(const struct key *k)
{
    cfg_opt_t o;

    switch (k->kind) {
    case K_DURATION:
    case K_DURATION_MS:
    case K_SIZE:
    case K_COUNT:
        o = (cfg_opt_t)CFG_INT_CB(k->name, 0, CFGF_NODEFAULT, on_number);
        break;
    case K_BOOL:
        o = (cfg_opt_t)CFG_BOOL(k->name, cfg_false, CFGF_NODEFAULT);
        o.validcb = on_bool;
        break;
    case K_SOCK_LIST:
    case K_NAME_LIST:
        o = (cfg_opt_t)CFG_PTR_LIST_CB(k->name, 0, CFGF_NODEFAULT, on_string, NULL);
        break;
    default:
        o = (cfg_opt_t)CFG_PTR_CB(k->name, 0, CFGF_NODEFAULT, on_string, NULL);
        break;
    }
    o.comment = (char *)k->section;     /* for key_find; libconfuse only copies it */
    return o;
}

/* schema - the option arrays of every section; [0] is the top level */
struct schema {
    cfg_opt_t opts[ARRAY_LEN(sections) + 1][SECTION_KEYS_MAX];
};

static const char *
section_path(const struct section *sec)
{
    return sec->path != NULL ? sec->path : sec->name;
}

/* build_section - fill s->opts[slot] with the keys and subsections of the
 * section whose path is path (NULL: the top level) */
static void
build_section(struct schema *s, size_t slot, const char *path)
{
    cfg_opt_t *o = s->opts[slot];
    size_t i, n = 0;

    for (i = 0; i < ARRAY_LEN(keys) && path != NULL; i++)
        if (strcmp(keys[i].section, path) == 0)
            o[n++] = make_opt(&keys[i]);
    for (i = 0; i < ARRAY_LEN(sections); i++) {
        const char *parent = sections[i].parent;

        if ((parent == NULL) != (path == NULL) || (parent != NULL && strcmp(parent, path) != 0))
            continue;
        build_section(s, i + 1, section_path(&sections[i]));
        o[n++] = (cfg_opt_t)CFG_SEC(sections[i].name, s->opts[i + 1], CFGF_NONE);
    }
    o[n] = (cfg_opt_t)CFG_END();
}

/* default_sock - parse a compiled-in socket spec (cannot fail for our texts) */
static void
default_sock(struct sockspec *spec, const char *text)
{
    const char *err;

    if (sockspec_parse(text, spec, &err) < 0)
        memset(spec, 0, sizeof(*spec));
}

/* default_listen - a one-element listen list */
static void
default_listen(struct config_listen *l, const char *text)
{
    l->count = 1;
    default_sock(&l->spec[0], text);
}

/* default_customers_source - "customers" beside the compiled-in config file */
static void
default_customers_source(char *dst, size_t size)
{
    const char *slash = strrchr(AUTOTURN_CONFIG_FILE, '/');
    int len = slash != NULL ? (int)(slash - AUTOTURN_CONFIG_FILE) : 1;

    if (str_printf(dst, size, "%.*s/customers", len, slash != NULL ? AUTOTURN_CONFIG_FILE : ".") < 0)
        dst[0] = '\0';
}

/* defaults_flusher - the flusher's defaults */
static void
defaults_flusher(struct config_flusher *f)
{
    default_sock(&f->control, "unix:" AUTOTURN_RUN_DIR "/flusher.sock:0660");
    (void)str_copy(f->user, sizeof(f->user), "autoturn");
    f->max_flushes = 20;
    f->retry_interval = 5 * 60;
    f->connect_timeout = 30;
    f->greeting_timeout = 5 * 60;
    f->command_timeout = 5 * 60;
    f->data_timeout = 10 * 60;
    f->flush_timeout = 3600;
    f->max_age = 5 * DAY;
    f->delay_warning = 0;
    f->sweep_interval = 10 * 60;
    f->tmp_max_age = 36 * 3600;
    (void)str_copy(f->bounce_method, sizeof(f->bounce_method), "sendmail");
    (void)str_copy(f->sendmail_command, sizeof(f->sendmail_command), "/usr/sbin/sendmail");
    default_sock(&f->bounce_relay, "inet:127.0.0.1:25");
    (void)str_copy(f->postmaster, sizeof(f->postmaster), "postmaster");
    f->max_reconnects = 5;
    f->chunking = true;
    default_listen(&f->hello.listen, "inet:*:1789");
    f->hello.rate_interval = 60;
    default_listen(&f->odmr.listen, "inet:*:366");
    f->odmr.auth_delay = 2;
    f->odmr.max_auth_failures = 3;
    f->odmr.timeout = 5 * 60;
    f->odmr.turnaround_timeout = 10 * 60;
    f->odmr.max_sessions = 50;
    f->odmr.max_sessions_per_address = 5;
    f->odmr.address_failures = 10;
    f->odmr.address_block = 15 * 60;
    (void)str_copy(f->odmr.user, sizeof(f->odmr.user), "autoturn-odmr");
    f->odmr.preauth_timeout = 30;
    f->odmr.max_preauth_sessions = 40;
    f->odmr.account_failures = 5;
    f->odmr.account_delay = 1;
    f->odmr.account_delay_max = 60;
}

void
config_defaults(struct config *cfg)
{
    struct config_policyd *p = &cfg->policyd;

    memset(cfg, 0, sizeof(*cfg));
    (void)str_copy(cfg->file, sizeof(cfg->file), AUTOTURN_CONFIG_FILE);
    cfg->log_dest = LOG_DEST_SYSLOG;
    cfg->log_facility = LOG_MAIL;
    cfg->log_level = LOG_LEVEL_INFO;
    (void)str_copy(cfg->spool_dir, sizeof(cfg->spool_dir), AUTOTURN_SPOOL_DIR);
    default_customers_source(cfg->customers_source, sizeof(cfg->customers_source));
    (void)str_copy(cfg->customers_table, sizeof(cfg->customers_table),
                   AUTOTURN_STATE_DIR "/customers.cdb");
    cfg->customers_check_interval = 1000;
    default_listen(&cfg->milter.listen, "unix:" AUTOTURN_RUN_DIR "/milter.sock:0660");
    (void)str_copy(cfg->milter.user, sizeof(cfg->milter.user), "autoturn");
    cfg->milter.timeout = 5 * 60;
    cfg->milter.max_recipients = 1000;
    default_listen(&p->listen, "unix:" AUTOTURN_POSTFIX_PRIVATE_DIR "/autoturn-policy:0660");
    (void)str_copy(p->socket_group, sizeof(p->socket_group), "postfix");
    p->trusted_users.count = 1;
    (void)str_copy(p->trusted_users.name[0], sizeof(p->trusted_users.name[0]), "postfix");
    default_sock(&p->control, "unix:" AUTOTURN_RUN_DIR "/policyd-control.sock:0660");
    (void)str_copy(p->user, sizeof(p->user), "autoturn");
    p->max_connections = 10000;
    p->idle_timeout = 300;
    p->max_line = 4096;
    p->max_attributes = 100;
    p->grant_ttl = 180 * 60;
    (void)str_copy(p->grant_file, sizeof(p->grant_file), AUTOTURN_STATE_DIR "/grants");
    p->notify_interval = 60;
    p->log_decisions = true;
    defaults_flusher(&cfg->flusher);
}

/* read_file - the whole file into a NUL-terminated buffer */
static char *
read_file(struct load *ld, const char *path, size_t *len_r)
{
    char *buf = NULL;
    struct stat st;
    size_t len = 0;
    ssize_t n = 0;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        report(ld, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        report(ld, 0, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        report(ld, 0, "not a regular file");
        goto out;
    }
    if ((buf = x_calloc(CONFIG_FILE_MAX + 2, 1)) == NULL) {
        report(ld, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    while (len <= CONFIG_FILE_MAX) {
        n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (n < 0) {
        report(ld, 0, "cannot read: %s", strerror(errno));
    } else if (len > CONFIG_FILE_MAX) {
        report(ld, 0, "file too large (more than %d bytes)", CONFIG_FILE_MAX);
    } else {
        *len_r = len;
        close(fd);
        return buf;
    }
    x_free(buf);
    buf = NULL;
out:
    close(fd);
    return buf;
}

/* token_delim - characters that end an unquoted word for libconfuse */
static bool
token_delim(char c)
{
    return c == '\0' || strchr(" \t\r\n#\"'={}()+,*", c) != NULL;
}

/* slash_comment - "//..." at a token start is a comment unless the run of
 * slashes continues into a word (libconfuse's lexer takes the longer match) */
static bool
slash_comment(const char *s)
{
    if (s[0] != '/' || s[1] != '/')
        return false;
    while (*s == '/')
        s++;
    return token_delim(*s);
}

/* skip_quoted - from the opening quote at s[i], return the index of the
 * closing quote (or len); blanks nothing; counts newlines into *line */
static size_t
skip_quoted(const char *s, size_t i, size_t len, int *line)
{
    char q = s[i];

    for (i++; i < len && s[i] != q; i++) {
        if (s[i] == '\\' && i + 1 < len)
            i++;
        if (s[i] == '\n')
            (*line)++;
    }
    return i;
}

/* blank_line - blank s[i..] up to the newline; returns its index (or len) */
static size_t
blank_line(char *s, size_t i, size_t len)
{
    for (; i < len && s[i] != '\n'; i++)
        s[i] = ' ';
    return i;
}

/* blank_block - blank a block comment from s[i], newlines kept; returns
 * the index after it, or 0 if it is not closed */
static size_t
blank_block(char *s, size_t i, size_t len, int *line)
{
    s[i] = s[i + 1] = ' ';
    for (i += 2; i < len; i++) {
        if (s[i] == '\n') {
            (*line)++;
            continue;
        }
        if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
            s[i] = s[i + 1] = ' ';
            return i + 2;
        }
        s[i] = ' ';
    }
    return 0;
}

/* Braces seen outside quotes and comments: libconfuse 3.3 silently
 * accepts a file that ends inside a section, so we check this ourselves. */
#define BRACE_DEPTH_MAX 16
struct braces {
    unsigned depth;
    int open_line[BRACE_DEPTH_MAX];
};

static void
track_brace(struct braces *b, char c, int line)
{
    if (c == '{') {
        if (b->depth < BRACE_DEPTH_MAX)
            b->open_line[b->depth] = line;
        b->depth++;
    } else if (c == '}' && b->depth > 0) {
        b->depth--;     /* an extra '}' is libconfuse's syntax error */
    }
}

static int
check_braces(struct load *ld, const struct braces *b)
{
    unsigned top;

    if (b->depth == 0)
        return 0;
    top = b->depth <= BRACE_DEPTH_MAX ? b->depth - 1 : BRACE_DEPTH_MAX - 1;
    report(ld, b->open_line[top], "section not closed: missing '}'");
    return -1;
}

/* strip_comments - blank out # // and block comments outside quotes,
 * keeping newlines so that libconfuse counts lines right */
static int
strip_comments(struct load *ld, char *s, size_t len, struct braces *braces)
{
    bool start = true;
    size_t i = 0;
    int line = 1, open_line;

    while (i < len) {
        char c = s[i];

        if (c == '\0') {
            report(ld, line, "NUL byte in file");
            return -1;
        }
        if (c == '#' || (start && slash_comment(s + i))) {
            i = blank_line(s, i, len);
            continue;
        }
        if (start && c == '/' && i + 1 < len && s[i + 1] == '*') {
            open_line = line;
            if ((i = blank_block(s, i, len, &line)) == 0) {
                report(ld, open_line, "unterminated /* comment");
                return -1;
            }
            continue;
        }
        if (c == '"' || c == '\'') {
            i = skip_quoted(s, i, len, &line);
            start = true;
        } else {
            if (c == '\n')
                line++;
            track_brace(braces, c, line);
            start = token_delim(c);
        }
        i++;
    }
    return 0;
}

/* list_counts - lists set to {} leave no validate call: take the sizes
 * (struct config_listen and struct config_names both start with count) */
static void
list_counts(struct load *ld, cfg_t *root)
{
    char path[128];
    size_t i;

    for (i = 0; i < ARRAY_LEN(keys); i++) {
        const struct key *k = &keys[i];
        const char *parent = strcmp(k->section, "hello") == 0 || strcmp(k->section, "odmr") == 0
                                 ? "flusher|" : "";
        cfg_opt_t *opt;

        if ((k->kind != K_SOCK_LIST && k->kind != K_NAME_LIST) ||
            str_printf(path, sizeof(path), "%s%s|%s", parent, k->section, k->name) < 0)
            continue;
        opt = cfg_getopt(root, path);
        if (opt != NULL && (opt->flags & CFGF_MODIFIED) && cfg_opt_size(opt) == 0)
            *(size_t *)field(ld->cfg, k) = 0;
    }
}

/* check_listen - an enabled service needs an address */
static void
check_listen(struct load *ld, const char *what, const struct config_listen *l, bool enabled)
{
    if (enabled && l->count == 0)
        report(ld, 0, "%s: listen needs at least one address", what);
}

/* check_trusted_listen - only inet: listeners can be trusted by listing;
 * a unix: socket is trusted by its peer's uid (trusted_users) */
static void
check_trusted_listen(struct load *ld, const struct config_listen *l)
{
    size_t i;

    for (i = 0; i < l->count; i++)
        if (l->spec[i].kind == SOCKSPEC_UNIX)
            report(ld, 0, "policyd: trusted_listen takes inet: sockets only (%s): unix: peers "
                   "are trusted by their uid (trusted_users); list the socket in listen",
                   l->spec[i].path);
    if (l->count + ld->cfg->policyd.listen.count > CONFIG_LISTEN_MAX)
        report(ld, 0, "policyd: listen and trusted_listen together take at most %d sockets",
               CONFIG_LISTEN_MAX);
}

/* check_metrics - metrics listeners: inet only, one address each */
static void
check_metrics(struct load *ld)
{
    const struct {
        const char *what;
        const struct sockspec *spec;
    } m[] = {
        { "milter.metrics", &ld->cfg->milter.metrics.listen },
        { "policyd.metrics", &ld->cfg->policyd.metrics.listen },
        { "flusher.metrics", &ld->cfg->flusher.metrics.listen },
    };
    char a[SOCKSPEC_HOST_MAX + 16], b[SOCKSPEC_HOST_MAX + 16];
    size_t i, j;

    for (i = 0; i < ARRAY_LEN(m); i++) {
        if (m[i].spec->kind == SOCKSPEC_UNIX && m[i].spec->path[0] != '\0')
            report(ld, 0, "%s: listen must be an inet: address (Prometheus scrapes over TCP)",
                   m[i].what);
        for (j = 0; j < i && m[i].spec->kind == SOCKSPEC_INET; j++)
            if (m[j].spec->kind == SOCKSPEC_INET &&
                strcmp(sockspec_format(m[i].spec, a, sizeof(a)),
                       sockspec_format(m[j].spec, b, sizeof(b))) == 0)
                report(ld, 0, "%s and %s: listen on the same address %s", m[j].what, m[i].what,
                       a);
    }
}

/* check_cross - rules that involve more than one key */
static void
check_cross(struct load *ld)
{
    const struct config_flusher *f = &ld->cfg->flusher;

    check_metrics(ld);

    check_listen(ld, "milter", &ld->cfg->milter.listen, true);
    if (ld->cfg->policyd.listen.count + ld->cfg->policyd.trusted_listen.count == 0)
        report(ld, 0, "policyd: listen needs at least one address");
    check_listen(ld, "flusher.hello", &f->hello.listen, f->hello.enable);
    check_listen(ld, "flusher.odmr", &f->odmr.listen, f->odmr.enable);
    check_trusted_listen(ld, &ld->cfg->policyd.trusted_listen);
    if (f->odmr.enable && f->odmr.max_preauth_sessions > f->odmr.max_sessions)
        report(ld, 0, "flusher.odmr: max_preauth_sessions (%llu) must not exceed max_sessions "
               "(%llu)", (unsigned long long)f->odmr.max_preauth_sessions,
               (unsigned long long)f->odmr.max_sessions);
    if (f->odmr.enable && (f->odmr.user[0] == '\0' || strcmp(f->odmr.user, f->user) == 0))
        report(ld, 0, "flusher.odmr: user must be set and differ from flusher.user (pre-AUTH "
               "sessions must not be able to read the spool)");
    if ((f->odmr.tls_cert[0] == '\0') != (f->odmr.tls_key[0] == '\0'))
        report(ld, 0, "flusher.odmr: tls_cert and tls_key must be set together");
    if (strcmp(f->bounce_method, "smtp") == 0 && f->bounce_relay.path[0] == '\0' &&
        f->bounce_relay.kind == SOCKSPEC_UNIX)
        report(ld, 0, "flusher: bounce_method smtp needs bounce_relay");
    if (strcmp(f->bounce_method, "sendmail") == 0 && f->sendmail_command[0] == '\0')
        report(ld, 0, "flusher: bounce_method sendmail needs sendmail_command");
    if (f->delay_warning != 0 && f->delay_warning >= f->max_age)
        report(ld, 0, "flusher: delay_warning must be shorter than max_age");
}

/* parse_text - run libconfuse over the comment-free text */
static void
parse_text(struct load *ld, const char *text)
{
    struct schema *s = x_calloc(1, sizeof(*s));
    cfg_t *root = NULL;
    int rc;

    if (s == NULL) {
        report(ld, 0, "cannot parse: %s", strerror(errno));
        return;
    }
    build_section(s, 0, NULL);
    if ((root = cfg_init(s->opts[0], CFGF_NONE)) == NULL) {
        report(ld, 0, "cannot parse: %s", strerror(errno));
        goto out;
    }
    (void)cfg_set_error_function(root, on_libconfuse_error);
    rc = cfg_parse_buf(root, text);
    if (rc == CFG_SUCCESS)
        list_counts(ld, root);
    else if (ld->errors == 0)
        report(ld, 0, "cannot parse");
out:
    if (root != NULL)
        cfg_free(root);
    x_free(s);
}

int
config_load(const char *path, struct config *cfg, config_error_fn *errfn, void *ctx)
{
    struct load ld = { cfg, errfn, ctx, path, 0 };
    struct braces braces = {0};
    size_t len = 0;
    char *text;

    config_defaults(cfg);
    if (str_copy(cfg->file, sizeof(cfg->file), path) < 0) {
        report(&ld, 0, "path too long");
        return -1;
    }
    if ((text = read_file(&ld, path, &len)) == NULL)
        return -1;
    pthread_mutex_lock(&load_lock);
    current = &ld;
    if (strip_comments(&ld, text, len, &braces) == 0)
        parse_text(&ld, text);
    if (ld.errors == 0)
        (void)check_braces(&ld, &braces);   /* only if libconfuse saw nothing */
    current = NULL;
    pthread_mutex_unlock(&load_lock);
    x_free(text);
    if (ld.errors == 0)
        check_cross(&ld);
    return ld.errors == 0 ? 0 : -1;
}

/* --- printing (autoturnctl config) --- */

#define CONFIG_VALUE_MAX (CONFIG_LISTEN_MAX * (SOCKSPEC_PATH_MAX + 16) + PATH_MAX)

/* format_listen - the addresses of a list, joined by ", " */
static void
format_listen(const struct config_listen *l, char *buf, size_t size)
{
    char one[SOCKSPEC_PATH_MAX + SOCKSPEC_HOST_MAX + 32];
    size_t i, len = 0;

    buf[0] = '\0';
    for (i = 0; i < l->count && len < size; i++) {
        sockspec_format(&l->spec[i], one, sizeof(one));
        (void)str_printf(buf + len, size - len, "%s%s", i ? ", " : "", one);
        len += strlen(buf + len);
    }
}

/* format_value - row k of cfg as text */
static void
format_value(const struct config *cfg, const struct key *k, char *buf, size_t size)
{
    const void *f = (const char *)cfg + k->offset;
    const struct sockspec *sock = f;

    buf[0] = '\0';
    switch (k->kind) {
    case K_DURATION:
    case K_SIZE:
    case K_COUNT:
        (void)format_number(k->kind, *(const uint64_t *)f, buf, size);
        break;
    case K_DURATION_MS:
        (void)units_format_duration(*(const uint64_t *)f / 1000, buf, size);
        break;
    case K_BOOL:
        (void)str_copy(buf, size, *(const bool *)f ? "true" : "false");
        break;
    case K_SOCK:
        if (sock->kind == SOCKSPEC_INET || sock->path[0] != '\0')
            sockspec_format(sock, buf, size);
        break;
    case K_SOCK_LIST:
        format_listen(f, buf, size);
        break;
    case K_DEST:
        (void)str_copy(buf, size, *(const enum log_dest *)f == LOG_DEST_SYSLOG ? "syslog"
                                                                             : "stderr");
        break;
    case K_FACILITY:
        (void)str_copy(buf, size, log_facility_name(*(const int *)f));
        break;
    case K_LEVEL:
        (void)str_copy(buf, size, log_level_name(*(const enum log_level *)f));
        break;
    default:                    /* names, paths, hosts, text, bounce method */
        (void)str_copy(buf, size, f);
        break;
    }
}

/* key_name - "section.key", with the parent section for subsections */
static void
key_name(const struct key *k, char *buf, size_t size)
{
    const char *parent = NULL;
    size_t i;

    for (i = 0; i < ARRAY_LEN(sections); i++)
        if (strcmp(sections[i].name, k->section) == 0)
            parent = sections[i].parent;
    (void)str_printf(buf, size, "%s%s%s.%s", parent ? parent : "", parent ? "." : "",
                     k->section, k->name);
}

int
config_foreach(const struct config *cfg, config_setting_fn *fn, void *ctx)
{
    char *val = malloc(CONFIG_VALUE_MAX), *def = malloc(CONFIG_VALUE_MAX), name[128];
    struct config *dc = x_calloc(1, sizeof(*dc));
    int rc = -1;
    size_t i;

    if (val != NULL && def != NULL && dc != NULL) {
        rc = 0;
        config_defaults(dc);
        for (i = 0; i < ARRAY_LEN(keys); i++) {
            key_name(&keys[i], name, sizeof(name));
            format_value(cfg, &keys[i], val, CONFIG_VALUE_MAX);
            format_value(dc, &keys[i], def, CONFIG_VALUE_MAX);
            fn(ctx, name, val, strcmp(val, def) == 0);
        }
    }
    x_free(val);
    x_free(def);
    x_free(dc);
    return rc;
}

void
config_apply_logging(const struct config *cfg, const char *prog)
{
    log_init(prog, cfg->log_dest, cfg->log_facility, cfg->log_level);
}
