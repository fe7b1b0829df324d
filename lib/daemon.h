/* SPDX-License-Identifier: ISC */
/*
 * daemon.h - what every autoturn daemon does at start-up, the same way:
 * command line (-c FILE, -f, -h, -V), loading the configuration (refusing
 * to start on any error), detaching unless -f, giving UNIX sockets their
 * group, dropping privileges, and turning signals into flags plus a
 * self-pipe byte (handlers do nothing else).
 */
#ifndef AUTOTURN_DAEMON_H
#define AUTOTURN_DAEMON_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "sockspec.h"
#include "util.h"

struct daemon_opts {
    const char *config_path;    /* -c FILE (default AUTOTURN_CONFIG_FILE) */
    bool foreground;            /* -f: stay in the foreground (systemd, tests) */
};

/* daemon_parse_args - parse argv; prints help/version and exits 0 for
 * -h/-V, prints usage and exits 64 for a bad command line. */
void daemon_parse_args(int argc, char **argv, const char *prog, const char *summary,
                       struct daemon_opts *o);

/* daemon_start - log_init(prog) on stderr, load the config (every error
 * logged as "FILE:LINE: message"; exit 78 on any), then log_init with the
 * config's log settings. Start-up only: exits on failure. */
void daemon_start(const struct daemon_opts *o, const char *prog, struct config *cfg);

/* daemon_reload_config - for SIGHUP: load path into a new config (free
 * with x_free); NULL after logging every error and "PATH: reload refused;
 * keeping the running configuration". */
struct config *daemon_reload_config(const char *path);

/* daemon_detach - unless foreground: fork, setsid, chdir /, stdio to
 * /dev/null. Exits on failure (start-up only). */
void daemon_detach(const struct daemon_opts *o);

/* daemon_socket_group - chgrp a UNIX listener's path to group, or, when
 * group is "", to the group the daemon will run as (run_user/run_group,
 * as in privs_lookup; only when started as root), so that the other
 * autoturn daemons, running as the same user, can connect. No-op for
 * inet specs. 0 or -1 with err. */
int daemon_socket_group(const struct sockspec *spec, const char *group, const char *run_user,
                        const char *run_group, struct errbuf *err);

/* daemon_drop_privileges - privs_drop(user, group); exits 1 if it fails
 * or if user is root. */
void daemon_drop_privileges(const char *prog, const char *user, const char *group);

/* Telling systemd (sd_notify; nothing happens when the daemon was not
 * started by systemd with Type=notify): daemon_ready once the daemon
 * listens and has dropped its privileges; daemon_reloading before a
 * reload and daemon_ready again after it (with a status line either way);
 * daemon_stopping when it goes. */
void daemon_ready(const char *status);
void daemon_reloading(void);
void daemon_stopping(void);

/* Signals: SIGTERM/SIGINT set daemon_stop, SIGHUP sets daemon_reload,
 * SIGPIPE is ignored. Each caught signal writes one byte to a self-pipe
 * whose read end daemon_signal_fd() returns (non-blocking, close-on-exec),
 * so poll/epoll loops wake up. */
extern volatile sig_atomic_t daemon_stop;
extern volatile sig_atomic_t daemon_reload;
int daemon_signals_init(void);     /* 0 / -1 */
int daemon_signal_fd(void);
void daemon_signal_drain(void);    /* read all pending bytes */

#endif
