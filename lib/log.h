/* SPDX-License-Identifier: ISC */
/*
 * log.h - the one logging module: syslog (facility mail by default) or
 * stderr, Postfix-like lines.
 *
 * Line shape:  autoturn-<prog>[pid]: <customer-or-queue-id>: key=value, ...
 * The program name and pid come from log_init(); callers write the rest.
 * Severity prefixes follow Postfix: warnings start "warning: ", errors
 * "error: ", fatal "fatal: ". log_warn() and log_error() append ": <strerror(errno)>"
 * (like %m); log_warnx() and log_errorx() do not.
 */
#ifndef AUTOTURN_LOG_H
#define AUTOTURN_LOG_H

#include <stdbool.h>

enum log_dest {
    LOG_DEST_SYSLOG,
    LOG_DEST_STDERR,
};

enum log_level {           /* lowest first; messages below the threshold are dropped */
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
};

/* log_init - set program name ("autoturn-milter"), destination, syslog
 * facility (LOG_MAIL, LOG_LOCAL0 ... as in <syslog.h>) and threshold.
 * May be called again (e.g. after the config is read). Before the first
 * call, messages go to stderr with the name "autoturn". */
void log_init(const char *prog, enum log_dest dest, int facility, enum log_level level);

/* log_facility_parse - "mail", "daemon", "user", "local0".."local7" ->
 * LOG_* value; -1 if unknown. */
int log_facility_parse(const char *name);

/* log_level_parse - "debug", "info", "warning", "error" -> level; -1 if unknown. */
int log_level_parse(const char *name);

/* log_facility_name, log_level_name - the other way round; "?" if unknown. */
const char *log_facility_name(int facility);
const char *log_level_name(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_fatal / log_fatalx - log and exit(1). Start-up only: never call these
 * on a request path (a milter callback, a policy request, a flush). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
