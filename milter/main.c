/* SPDX-License-Identifier: ISC */
/*
 * main.c - autoturn-milter start-up: options, configuration, the listening
 * socket (created by libmilter as root, given its mode and group), the
 * shared objects every callback thread uses (customer table reader,
 * spool), privilege drop, then libmilter's main loop.
 *
 * Signals are libmilter's: it blocks them in every thread and waits for
 * SIGHUP, SIGTERM and SIGINT in its own thread; SIGTERM and SIGINT stop
 * the milter after the current sessions. SIGHUP reloads instead
 * (signals.c): the customer table is looked at at once (the reader also
 * switches to a newly compiled table by itself), and of autoturn.conf the
 * settings that need no new socket or identity are taken (log level,
 * max_recipients); the others need a restart. systemd hears of readiness
 * and reloads (sd_notify).
 */
#include <errno.h>
#include <libmilter/mfapi.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics_http.h"
#include "milter.h"
#include "util.h"

#define EXIT_CONFIG 78    /* sysexits EX_CONFIG, as daemon_start */

struct milter_state milter;
static struct config milter_cfg;
static const char *milter_config_path;
static struct metrics_http *metrics;

/* check_config - what the milter needs beyond what config_load checks. */
static void
check_config(const struct config *cfg)
{
    if (cfg->milter.listen.count != 1) {
        log_errorx("%s: milter listen: exactly one socket is supported (libmilter), %zu given",
                   cfg->file, cfg->milter.listen.count);
        exit(EXIT_CONFIG);
    }
    if (cfg->milter.max_recipients == 0 || cfg->milter.timeout == 0 ||
        cfg->milter.timeout > INT_MAX) {
        log_errorx("%s: milter: max_recipients and timeout must be positive", cfg->file);
        exit(EXIT_CONFIG);
    }
}

/* setup_state - the table reader, the spool and the notice target. */
static void
setup_state(const struct config *cfg)
{
    struct errbuf err;

    milter.cfg = cfg;
    milter.max_recipients = cfg->milter.max_recipients;
    if ((milter.db = custdb_new(cfg->customers_table)) == NULL ||
        (milter.spool = spool_new(cfg->spool_dir)) == NULL)
        log_fatalx("out of memory");
    custdb_report_metrics(milter.db);
    custdb_set_check_interval(milter.db, cfg->customers_check_interval > UINT_MAX
                              ? UINT_MAX : (unsigned)cfg->customers_check_interval);
    if (custdb_refresh(milter.db, &err) < 0)
        log_warnx("customer table: %s (every held domain gets 451 4.3.0 until it is usable)",
                  err.msg);
    if (cfg->flusher.control.kind == SOCKSPEC_UNIX)
        (void)str_copy(milter.notify_path, sizeof(milter.notify_path),
                       cfg->flusher.control.path);
    else
        log_warnx("flusher control is not a unix: socket; AutoTURN connect notices are off");
}

/* open_socket - register the filter and let libmilter bind, as root. */
static void
open_socket(const struct config *cfg, char *conn, size_t size)
{
    const struct sockspec *spec = &cfg->milter.listen.spec[0];
    struct errbuf err;

    if (listen_conn_string(spec, conn, size) < 0)
        log_fatalx("milter listen: socket specification too long");
    if (smfi_register(*session_desc()) != MI_SUCCESS)
        log_fatalx("smfi_register failed");
    if (smfi_setconn(conn) != MI_SUCCESS || smfi_settimeout((int)cfg->milter.timeout) !=
        MI_SUCCESS)
        log_fatalx("smfi_setconn %s failed", conn);
    if (smfi_opensocket(true) != MI_SUCCESS)
        log_fatalx("cannot listen on %s (in use, or a bad address or directory?)", conn);
    if (listen_setup(spec, &err) < 0 ||
        daemon_socket_group(spec, cfg->milter.socket_group, cfg->milter.user,
                            cfg->milter.group, &err) < 0)
        log_fatalx("%s: %s", conn, err.msg);
}

/* reload - on SIGHUP (signals.c), in libmilter's signal thread: the
 * settings that need no new socket or identity, all or nothing, and the
 * customer table now */
static void
reload(void)
{
    struct config *nc;
    struct errbuf err;

    daemon_reloading();
    if ((nc = daemon_reload_config(milter_config_path)) != NULL) {
        milter.max_recipients = nc->milter.max_recipients;
        milter_cfg.log_level = nc->log_level;
        config_apply_logging(&milter_cfg, MILTER_PROG);
        log_info("%s: reloaded (listen, user, timeout, spool and table paths need a restart)",
                 milter_config_path);
    }
    x_free(nc);
    if (custdb_refresh(milter.db, &err) < 0)
        log_warnx("customer table: %s", err.msg);
    daemon_ready("filtering");
}

/* check_spool - after the drop: the spool must be ours to write. */
static void
check_spool(const struct config *cfg)
{
    if (access(cfg->spool_dir, W_OK | X_OK) < 0)
        log_fatal("spool directory %s (user %s)", cfg->spool_dir, cfg->milter.user);
}

int
main(int argc, char **argv)
{
    char conn[MILTER_CONN_MAX];
    struct daemon_opts o;
    struct errbuf err;
    int rc;

    daemon_parse_args(argc, argv, MILTER_PROG,
                      "Milter that holds mail for customers who are not always online.", &o);
    daemon_start(&o, MILTER_PROG, &milter_cfg);
    milter_config_path = o.config_path;
    check_config(&milter_cfg);
    if (metrics_http_open(&milter_cfg.milter.metrics.listen, METRICS_MILTER, &metrics, &err) < 0)
        log_fatalx("%s", err.msg);
    setup_state(&milter_cfg);
    open_socket(&milter_cfg, conn, sizeof(conn));
    daemon_detach(&o);
    daemon_drop_privileges(MILTER_PROG, milter_cfg.milter.user, milter_cfg.milter.group);
    if (geteuid() == 0 || getuid() == 0)
        log_fatalx("refusing to run as root");
    check_spool(&milter_cfg);
    if (metrics_http_start(metrics, &err) < 0)
        log_fatalx("%s", err.msg);
    log_info("starting: listening on %s, spool %s, table %s", conn, milter_cfg.spool_dir,
             milter_cfg.customers_table);
    signals_on_reload(reload);
    daemon_ready("filtering");    /* libmilter listens already (smfi_opensocket) */
    rc = smfi_main();
    daemon_stopping();
    log_info("stopping");
    metrics_http_stop(metrics);
    custdb_free(milter.db);
    spool_free(milter.spool);
    return rc == MI_SUCCESS ? 0 : 1;
}
