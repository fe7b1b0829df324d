/* SPDX-License-Identifier: ISC */
/*
 * log.c - the one logging module: Postfix-like lines to syslog or stderr.
 * Owns the program name, destination, facility and threshold (set by
 * log_init, guarded by one mutex so that threads may log while another
 * re-initialises).
 *
 * SECURITY: messages may carry text from the network (names, addresses);
 * control characters are replaced by '?' so that one call is one line, and
 * every line is cut at LOG_LINE_MAX bytes. Each stderr line is written with
 * a single write(2), so lines of concurrent threads never interleave.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"
#include "log.h"

#define LOG_LINE_MAX 2048          /* one log line, newline included */
#define LOG_PROG_MAX 64            /* program name */
#define LOG_TRUNC_MARK "..."       /* ends a line that did not fit */

enum log_sev {
    SEV_DEBUG,
    SEV_INFO,
    SEV_WARNING,
    SEV_ERROR,
    SEV_FATAL,
};

struct log_state {
    char prog[LOG_PROG_MAX];
    enum log_dest dest;
    int facility;
    enum log_level level;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_state log_state = { "autoturn", LOG_DEST_STDERR, LOG_MAIL, LOG_LEVEL_INFO };
static char log_ident[LOG_PROG_MAX];   /* openlog() keeps the pointer */
/* log_state.level, readable without the lock: a message below the
 * threshold (a debug line on every policy request) costs one load */
static atomic_int log_threshold = LOG_LEVEL_INFO;

static const struct {
    const char *name;
    int value;
} facilities[] = {
    { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
    { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const char *const level_names[] = { "debug", "info", "warning", "error" };

void
log_init(const char *prog, enum log_dest dest, int facility, enum log_level level)
{
    pthread_mutex_lock(&log_lock);
    if (log_state.dest == LOG_DEST_SYSLOG)
        closelog();
    (void)str_copy(log_state.prog, sizeof(log_state.prog), prog);  /* a prefix will do */
    log_state.dest = dest;
    log_state.facility = facility;
    log_state.level = level;
    atomic_store(&log_threshold, (int)level);
    if (dest == LOG_DEST_SYSLOG) {
        (void)str_copy(log_ident, sizeof(log_ident), prog);
        openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
    }
    pthread_mutex_unlock(&log_lock);
}

int
log_facility_parse(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(facilities); i++)
        if (strcmp(facilities[i].name, name) == 0)
            return facilities[i].value;
    return -1;
}

int
log_level_parse(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(level_names); i++)
        if (strcmp(level_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *
log_facility_name(int facility)
{
    size_t i;

    for (i = 0; i < ARRAY_LEN(facilities); i++)
        if (facilities[i].value == facility)
            return facilities[i].name;
    return "?";
}

const char *
log_level_name(enum log_level level)
{
    return (size_t)level < ARRAY_LEN(level_names) ? level_names[level] : "?";
}

/* sev_prefix - Postfix severity prefix */
static const char *
sev_prefix(enum log_sev sev)
{
    switch (sev) {
    case SEV_WARNING:
        return "warning: ";
    case SEV_ERROR:
        return "error: ";
    case SEV_FATAL:
        return "fatal: ";
    default:
        return "";
    }
}

/* sev_priority - syslog priority of a severity */
static int
sev_priority(enum log_sev sev)
{
    static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT };

    return prio[sev];
}

/* sanitize - replace control characters so that a message stays one line */
static void
sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

/* format_text - "<prefix><message>[: <strerror>]" into buf, cut safely;
 * errnum < 0: no strerror */
static void
format_text(char *buf, size_t size, enum log_sev sev, int errnum,
            const char *fmt, va_list ap)
{
    size_t len, plen = strlen(sev_prefix(sev));
    char ebuf[128];
    int n;

    (void)str_copy(buf, size, sev_prefix(sev));
    n = vsnprintf(buf + plen, size - plen, fmt, ap);
    if (n >= 0 && (size_t)n < size - plen && errnum >= 0) {
        len = strlen(buf);
        n = snprintf(buf + len, size - len, ": %s", strerror_r(errnum, ebuf, sizeof(ebuf)));
        n = (n >= 0 && (size_t)n < size - len) ? 0 : -1;
    } else if (n >= 0 && (size_t)n < size - plen) {
        n = 0;
    } else {
        n = -1;
    }
    if (n < 0)          /* it did not fit: say so at the end */
        memcpy(buf + size - sizeof(LOG_TRUNC_MARK), LOG_TRUNC_MARK, sizeof(LOG_TRUNC_MARK));
    sanitize(buf);
}

/* emit_stderr - "prog[pid]: text\n" in one write */
static void
emit_stderr(const char *prog, const char *text)
{
    char line[LOG_LINE_MAX];
    int n;

    n = snprintf(line, sizeof(line), "%s[%ld]: %s\n", prog, (long)getpid(), text);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {      /* cannot happen: sizes add up */
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    (void)fd_write_all(STDERR_FILENO, line, (size_t)n);  /* nowhere to report a failure */
}

/* vlog - the one path every log function takes */
static void
vlog(enum log_sev sev, int errnum, const char *fmt, va_list ap)
{
    char text[LOG_LINE_MAX - LOG_PROG_MAX - 32];
    struct log_state st;

    if (sev != SEV_FATAL && (int)sev < atomic_load_explicit(&log_threshold, memory_order_relaxed))
        return;
    pthread_mutex_lock(&log_lock);
    st = log_state;
    pthread_mutex_unlock(&log_lock);
    if (sev != SEV_FATAL && (int)sev < (int)st.level)
        return;
    format_text(text, sizeof(text), sev, errnum, fmt, ap);
    if (st.dest == LOG_DEST_SYSLOG)
        syslog(sev_priority(sev), "%s", text);
    else
        emit_stderr(st.prog, text);
    /* Like Postfix: a fatal error also reaches the admin's terminal. */
    if (sev == SEV_FATAL && st.dest == LOG_DEST_SYSLOG && isatty(STDERR_FILENO))
        emit_stderr(st.prog, text);
}

#define LOG_FN(name, sev, with_errno)                 \
    void                                              \
    name(const char *fmt, ...)                        \
    {                                                 \
        int saved = errno;                            \
        va_list ap;                                   \
                                                      \
        va_start(ap, fmt);                            \
        vlog(sev, (with_errno) ? saved : -1, fmt, ap); \
        va_end(ap);                                   \
        errno = saved;                                \
    }

LOG_FN(log_debug, SEV_DEBUG, 0)
LOG_FN(log_info, SEV_INFO, 0)
LOG_FN(log_warn, SEV_WARNING, 1)
LOG_FN(log_warnx, SEV_WARNING, 0)
LOG_FN(log_error, SEV_ERROR, 1)
LOG_FN(log_errorx, SEV_ERROR, 0)

void
log_fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    vlog(SEV_FATAL, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

void
log_fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(SEV_FATAL, -1, fmt, ap);
    va_end(ap);
    exit(1);
}
