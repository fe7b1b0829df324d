/* SPDX-License-Identifier: ISC */
/*
 * daemon.c - the start-up sequence shared by autoturn-milter,
 * autoturn-policyd and autoturn-flusher: options, configuration, detach,
 * socket group, privilege drop, and the self-pipe that turns signals into
 * events. Owns the two signal flags and the self-pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "paths.h"
#include "privs.h"
#include "util.h"

volatile sig_atomic_t daemon_stop;
volatile sig_atomic_t daemon_reload;
static int sig_pipe[2] = {-1, -1};

static void
usage(FILE *fp, const char *prog, const char *summary)
{
    fprintf(fp, "usage: %s [-f] [-c FILE]\n"
                "%s\n\n"
                "  -c FILE   configuration file (default %s)\n"
                "  -f        stay in the foreground (for systemd and tests)\n"
                "  -h        this text\n"
                "  -V        version\n", prog, summary, AUTOTURN_CONFIG_FILE);
}

void
daemon_parse_args(int argc, char **argv, const char *prog, const char *summary,
                  struct daemon_opts *o)
{
    int c;

    o->config_path = AUTOTURN_CONFIG_FILE;
    o->foreground = false;
    while ((c = getopt(argc, argv, "c:fhV")) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 'f':
            o->foreground = true;
            break;
        case 'h':
            usage(stdout, prog, summary);
            exit(0);
        case 'V':
            printf("%s %s\n", prog, AUTOTURN_VERSION);
            exit(0);
        default:
            usage(stderr, prog, summary);
            exit(64);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr, prog, summary);
        exit(64);
    }
}

static void
log_config_error(void *ctx, const char *msg)
{
    (void)ctx;
    log_errorx("%s", msg);
}

void
daemon_start(const struct daemon_opts *o, const char *prog, struct config *cfg)
{
    log_init(prog, LOG_DEST_STDERR, 0, LOG_LEVEL_INFO);
    if (config_load(o->config_path, cfg, log_config_error, NULL) < 0) {
        log_errorx("%s: configuration errors; not starting", o->config_path);
        exit(78);
    }
    config_apply_logging(cfg, prog);
}

struct config *
daemon_reload_config(const char *path)
{
    struct config *nc = x_calloc(1, sizeof(*nc));

    if (nc == NULL || config_load(path, nc, log_config_error, NULL) < 0) {
        log_errorx("%s: reload refused; keeping the running configuration", path);
        x_free(nc);
        return NULL;
    }
    return nc;
}

static void
redirect_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        log_fatal("open /dev/null");
    if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
        dup2(fd, STDERR_FILENO) < 0)
        log_fatal("dup2 /dev/null");
    if (fd > STDERR_FILENO)
        close(fd);
}

void
daemon_detach(const struct daemon_opts *o)
{
    pid_t pid;

    if (o->foreground)
        return;
    if ((pid = fork()) < 0)
        log_fatal("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        log_fatal("setsid");
    if (chdir("/") < 0)
        log_fatal("chdir /");
    redirect_stdio();
}

int
daemon_socket_group(const struct sockspec *spec, const char *group, const char *run_user,
                    const char *run_group, struct errbuf *err)
{
    struct group gr, *res = NULL;
    char buf[4096];
    uid_t uid;
    gid_t gid;
    int rc;

    if (spec->kind != SOCKSPEC_UNIX)
        return 0;
    if (group[0] == '\0') {
        /* the daemon's own group: its peers (same user) and root may connect */
        if (geteuid() != 0)
            return 0;
        if (privs_lookup(run_user, run_group, &uid, &gid, err) < 0)
            return -1;
    } else {
        rc = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
        if (rc != 0 || res == NULL) {
            errbuf_set(err, "socket group '%s': %s", group, rc ? strerror(rc) : "no such group");
            return -1;
        }
        gid = gr.gr_gid;
    }
    if (chown(spec->path, (uid_t)-1, gid) < 0) {
        errbuf_set_errno(err, "chown %s to group %s", spec->path,
                         group[0] != '\0' ? group : "of the run user");
        return -1;
    }
    return 0;
}

void
daemon_drop_privileges(const char *prog, const char *user, const char *group)
{
    struct errbuf err;

    if (privs_drop(user, group, &err) < 0)
        log_fatalx("%s: cannot drop privileges: %s", prog, err.msg);
}

/* notify - one sd_notify message; a failure is logged once (the daemon
 * runs on: systemd then gives up on it by its own timeout) */
static void
notify(const char *state)
{
    static bool warned;
    int rc = sd_notify(0, state);

    if (rc < 0 && !warned) {
        errno = -rc;
        log_warn("sd_notify");
        warned = true;
    }
}

void
daemon_ready(const char *status)
{
    char msg[256];

    (void)str_printf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);  /* a cut status will do */
    notify(msg);
}

void
daemon_reloading(void)
{
    struct timespec ts;
    char msg[128];

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    (void)str_printf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
                     (unsigned long long)ts.tv_sec * 1000000ULL +
                         (unsigned long long)ts.tv_nsec / 1000ULL);
    notify(msg);
}

void
daemon_stopping(void)
{
    notify("STOPPING=1\nSTATUS=stopping");
}

static void
on_signal(int sig)
{
    int saved = errno;
    char byte = (char)sig;

    if (sig == SIGHUP)
        daemon_reload = 1;
    else
        daemon_stop = 1;
    if (sig_pipe[1] >= 0)
        (void)!write(sig_pipe[1], &byte, 1);   /* full pipe: a wake-up is pending anyway */
    errno = saved;
}

int
daemon_signals_init(void)
{
    struct sigaction sa;

    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

int
daemon_signal_fd(void)
{
    return sig_pipe[0];
}

void
daemon_signal_drain(void)
{
    char buf[64];

    while (sig_pipe[0] >= 0 && read(sig_pipe[0], buf, sizeof(buf)) > 0)
        ;
}
