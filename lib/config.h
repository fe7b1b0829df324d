/* SPDX-License-Identifier: ISC */
/*
 * config.h - autoturn.conf (libconfuse): the settings of every program in
 * one file, documented in autoturn.conf(5). Loading is all or nothing: any
 * unknown key, wrong type, bad socket spec, duration or size is an error
 * reported as "FILE:LINE: message", and the program must not start.
 *
 * Durations accept units (see units.h): 90s, 30m, 5d. Sizes: 10M.
 */
#ifndef AUTOTURN_CONFIG_H
#define AUTOTURN_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "sockspec.h"

#define CONFIG_LISTEN_MAX 8
#define CONFIG_NAME_MAX   64      /* user/group names */
#define CONFIG_TEXT_MAX   256     /* host names, commands, addresses */

struct config_listen {
    size_t count;
    struct sockspec spec[CONFIG_LISTEN_MAX];
};

#define CONFIG_NAMES_MAX 16       /* names in one user list */

struct config_names {             /* a list of user names */
    size_t count;
    char name[CONFIG_NAMES_MAX][CONFIG_NAME_MAX];
};

/* metrics { listen = "inet:HOST:PORT" } in a daemon's section: its
 * Prometheus endpoint (metrics_http.h); unset (kind != SOCKSPEC_INET) =
 * no metrics, the default */
struct config_metrics {
    struct sockspec listen;
};

struct config_milter {
    struct config_listen listen;      /* default unix:/run/autoturn/milter.sock:0660 */
    char user[CONFIG_NAME_MAX];       /* default "autoturn" */
    char group[CONFIG_NAME_MAX];      /* default "" = user's primary group */
    char socket_group[CONFIG_NAME_MAX]; /* group of UNIX sockets, e.g. "postfix"; "" = keep */
    uint64_t timeout;                 /* libmilter timeout, seconds; default 5m */
    uint64_t max_recipients;          /* held recipients per message; default 1000 */
    struct config_metrics metrics;
};

struct config_policyd {
    struct config_listen listen;      /* default unix:/var/spool/postfix/private/autoturn-policy:0660 */
    struct config_listen trusted_listen; /* inet: listeners whose peers are trusted; default none */
    struct config_names trusted_users;/* unix: peers trusted by uid (and root); default postfix */
    struct config_names control_users;/* control socket users beyond root and the daemons */
    struct sockspec control;          /* grants from autoturnctl; default unix:/run/autoturn/policyd-control.sock:0660 */
    char user[CONFIG_NAME_MAX];
    char group[CONFIG_NAME_MAX];
    char socket_group[CONFIG_NAME_MAX];
    uint64_t max_connections;         /* default 10000 */
    uint64_t idle_timeout;            /* seconds; default 300 */
    uint64_t max_line;                /* bytes per attribute line; default 4096 */
    uint64_t max_attributes;          /* per request; default 100 */
    uint64_t grant_ttl;               /* seconds; default 180m */
    char grant_file[PATH_MAX];        /* default /var/lib/autoturn/grants */
    uint64_t notify_interval;         /* AutoTURN dedup per address; default 60s */
    bool log_decisions;               /* one info line per request; default true */
    struct config_metrics metrics;
};

struct config_hello {
    bool enable;                      /* default false */
    struct config_listen listen;      /* default inet:*:1789 */
    uint64_t rate_interval;           /* min seconds between triggers per address; default 60s */
};

struct config_odmr {
    bool enable;                      /* default false */
    struct config_listen listen;      /* default inet:*:366 */
    char tls_cert[PATH_MAX];          /* "" = no STARTTLS */
    char tls_key[PATH_MAX];
    uint64_t auth_delay;              /* delay after a failed AUTH; default 2s */
    uint64_t max_auth_failures;       /* per connection; default 3 */
    uint64_t timeout;                 /* per command; default 5m */
    uint64_t turnaround_timeout;      /* customer's greeting after ATRN; default 10m (RFC 2645) */
    uint64_t max_sessions;            /* at once; default 50 */
    uint64_t max_sessions_per_address;/* at once from one address; default 5 */
    uint64_t address_failures;        /* failed AUTHs from one address before it is refused; 10 */
    uint64_t address_block;           /* ...within and for this long; default 15m */
    char user[CONFIG_NAME_MAX];       /* pre-AUTH sessions run as; default autoturn-odmr */
    uint64_t preauth_timeout;         /* greeting to successful AUTH; default 30s */
    uint64_t max_preauth_sessions;    /* unauthenticated at once; default 40 */
    uint64_t account_failures;        /* failed AUTHs for one account before throttling; 5 */
    uint64_t account_delay;           /* first spacing of a throttled account's tries; 1s */
    uint64_t account_delay_max;       /* longest spacing, doubling from account_delay; 60s */
};

struct config_flusher {
    struct sockspec control;          /* default unix:/run/autoturn/flusher.sock:0660 */
    struct config_names control_users;/* control socket users beyond root and the daemons */
    char user[CONFIG_NAME_MAX];
    char group[CONFIG_NAME_MAX];
    char socket_group[CONFIG_NAME_MAX];
    uint64_t max_flushes;             /* global cap; default 20 */
    uint64_t retry_interval;          /* min interval after a failed attempt; default 5m */
    uint64_t connect_timeout;         /* default 30s */
    uint64_t greeting_timeout;        /* RFC 5321 4.5.3.2: 5m */
    uint64_t command_timeout;         /* MAIL/RCPT 5m */
    uint64_t data_timeout;            /* DATA init 2m, blocks 3m, final dot 10m: one knob, default 10m */
    uint64_t flush_timeout;           /* whole flush; default 1h */
    uint64_t max_age;                 /* held mail older than this is bounced; default 5d */
    uint64_t delay_warning;           /* 0 = off */
    uint64_t sweep_interval;          /* expiry sweep; default 10m */
    uint64_t tmp_max_age;             /* tmp/ files unchanged this long are removed; 36h */
    char myhostname[CONFIG_TEXT_MAX]; /* "" = gethostname() */
    char bounce_method[16];           /* "sendmail" (default) or "smtp" */
    char sendmail_command[CONFIG_TEXT_MAX]; /* default /usr/sbin/sendmail */
    struct sockspec bounce_relay;     /* for method smtp; default inet:127.0.0.1:25 */
    char postmaster[CONFIG_TEXT_MAX]; /* double-bounce recipient; default postmaster */
    uint64_t max_reconnects;          /* per flush, after a per-session limit; default 5 */
    bool chunking;                    /* BDAT when offered; default true */
    struct config_hello hello;
    struct config_odmr odmr;
    struct config_metrics metrics;
};

struct config {
    char file[PATH_MAX];              /* the file this came from */
    /* log { } */
    enum log_dest log_dest;           /* default syslog */
    int log_facility;                 /* default LOG_MAIL */
    enum log_level log_level;         /* default info */
    /* spool { } */
    char spool_dir[PATH_MAX];         /* default AUTOTURN_SPOOL_DIR */
    /* customers { } */
    char customers_source[PATH_MAX];  /* default /etc/autoturn/customers */
    char customers_table[PATH_MAX];   /* default AUTOTURN_STATE_DIR/customers.cdb */
    uint64_t customers_check_interval;/* ms between stat() for a new table; default 1000 */
    struct config_milter milter;
    struct config_policyd policyd;
    struct config_flusher flusher;
};

/* Called once per error with "FILE:LINE: message" (or "FILE: message"). */
typedef void config_error_fn(void *ctx, const char *msg);

/* config_defaults - fill every field with its default. */
void config_defaults(struct config *cfg);

/* config_load - defaults, then the file. 0 on success; -1 after reporting
 * every error found through errfn (NULL errfn: log_errorx). */
int config_load(const char *path, struct config *cfg, config_error_fn *errfn, void *ctx);

/* config_foreach - every setting of cfg, in the order of autoturn.conf(5):
 * its name ("log.level", "flusher.hello.listen"), its value as it would be
 * written (durations and sizes with units, lists joined by ", ") and
 * whether that is the built-in default. Order and names come from the key
 * table, so a new key shows up by itself. 0, or -1 on ENOMEM. */
typedef void config_setting_fn(void *ctx, const char *name, const char *value,
                               bool is_default);
int config_foreach(const struct config *cfg, config_setting_fn *fn, void *ctx);

/* config_apply_logging - log_init() with the config's log settings. */
void config_apply_logging(const struct config *cfg, const char *prog);

#endif
