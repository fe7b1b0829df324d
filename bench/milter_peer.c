/* SPDX-License-Identifier: ISC */
/*
 * milter_peer.c - the two peers of bench/milter.sh: the least a milter can
 * cost Postfix, built on the same libmilter as autoturn-milter.
 *
 *   bench_milter_peer minimal SOCKET
 *       CONTINUE at connect, MAIL and RCPT, ACCEPT at DATA: the least any
 *       recipient-aware milter does (headers and body are never sent).
 *   bench_milter_peer store SOCKET MAILDIR
 *       the same, but the message is stored in MAILDIR with the
 *       durability autoturn promises (create in tmp/, write, fsync, close,
 *       link into new/, fsync new/, unlink tmp/) and then DISCARDed. The
 *       maildir's directories are opened once at start-up; nothing is
 *       logged; one 64 KiB buffer per connection.
 *
 * Both ask the MTA for the same protocol economies autoturn-milter asks
 * for (no unknown commands, no reply to connect, HELO, MAIL, headers,
 * end of headers and body chunks), so that a comparison measures the work
 * done per message, not the protocol. SOCKET is a libmilter connection
 * string ("unix:/path"); a unix socket is made mode 0666.
 *
 * SECURITY: benchmark only, NOT a product: it trusts its MTA, keeps no
 * envelope and runs as whoever starts it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libmilter/mfapi.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PEER_BUF 65536

struct peer_msg {
    int fd;                      /* the file in tmp/, -1 when none */
    bool failed;
    char name[96];
    size_t len;
    char buf[PEER_BUF];
};

static int tmp_fd = -1, new_fd = -1;
static atomic_ulong seq;

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
             unsigned long *pf3)
{
    (void)ctx;
    (void)f0;
    (void)f2;
    (void)f3;
    *pf0 = 0;
    *pf1 = f1 & (SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
                 SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY);
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    (void)ctx;
    (void)host;
    (void)sa;
    return SMFIS_NOREPLY;
}

/* HELO is taken without a reply, as autoturn-milter takes it (for the
 * Received: line it writes) */
static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
    (void)ctx;
    (void)helo;
    return SMFIS_NOREPLY;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
    (void)ctx;
    (void)argv;
    return SMFIS_NOREPLY;
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
    (void)ctx;
    (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat
cb_data_accept(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_ACCEPT;
}

/* --- the storing peer --- */

static void
msg_drop(SMFICTX *ctx)
{
    struct peer_msg *m = smfi_getpriv(ctx);

    if (m == NULL)
        return;
    if (m->fd >= 0) {
        close(m->fd);
        (void)unlinkat(tmp_fd, m->name, 0);
    }
    free(m);
    (void)smfi_setpriv(ctx, NULL);
}

/* msg_get - the message being stored, its file created on first use */
static struct peer_msg *
msg_get(SMFICTX *ctx)
{
    struct peer_msg *m = smfi_getpriv(ctx);
    struct timespec ts;

    if (m != NULL)
        return m;
    if ((m = malloc(sizeof(*m))) == NULL)
        return NULL;
    m->len = 0;
    m->failed = false;
    clock_gettime(CLOCK_REALTIME, &ts);
    (void)snprintf(m->name, sizeof(m->name), "%lld.M%06ldP%ldQ%lu.bench", (long long)ts.tv_sec,
                   ts.tv_nsec / 1000, (long)getpid(), atomic_fetch_add(&seq, 1));
    m->fd = openat(tmp_fd, m->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (m->fd < 0)
        m->failed = true;
    (void)smfi_setpriv(ctx, m);
    return m;
}

static void
msg_put(struct peer_msg *m, const void *p, size_t n)
{
    if (m->failed)
        return;
    if (m->len + n > sizeof(m->buf)) {
        if (fd_write_all(m->fd, m->buf, m->len) < 0 || fd_write_all(m->fd, p, n) < 0)
            m->failed = true;
        m->len = 0;
        return;
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
    struct peer_msg *m = msg_get(ctx);

    if (m != NULL) {
        msg_put(m, name, strlen(name));
        msg_put(m, ": ", 2);
        msg_put(m, value, strlen(value));
        msg_put(m, "\r\n", 2);
    }
    return SMFIS_NOREPLY;
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
    struct peer_msg *m = msg_get(ctx);

    if (m != NULL)
        msg_put(m, "\r\n", 2);
    return SMFIS_NOREPLY;
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
    struct peer_msg *m = msg_get(ctx);

    if (m != NULL)
        msg_put(m, p, n);
    return SMFIS_NOREPLY;
}

static sfsistat
cb_eom_store(SMFICTX *ctx)
{
    struct peer_msg *m = msg_get(ctx);
    int ok;

    ok = m != NULL && !m->failed && fd_write_all(m->fd, m->buf, m->len) == 0 &&
         fsync(m->fd) == 0 && close(m->fd) == 0;
    if (m != NULL)
        m->fd = ok ? -1 : m->fd;
    ok = ok && linkat(tmp_fd, m->name, new_fd, m->name, 0) == 0;
    ok = ok && fsync(new_fd) == 0;
    if (m != NULL && m->fd < 0)
        (void)unlinkat(tmp_fd, m->name, 0);
    msg_drop(ctx);
    return ok ? SMFIS_DISCARD : SMFIS_TEMPFAIL;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
    msg_drop(ctx);
    return SMFIS_CONTINUE;
}

static struct smfiDesc minimal = {
    .xxfi_name = "bench-minimal",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = cb_connect,
    .xxfi_helo = cb_helo,
    .xxfi_envfrom = cb_envfrom,
    .xxfi_envrcpt = cb_envrcpt,
    .xxfi_data = cb_data_accept,
    .xxfi_negotiate = cb_negotiate,
};

static struct smfiDesc storing = {
    .xxfi_name = "bench-store",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = cb_connect,
    .xxfi_helo = cb_helo,
    .xxfi_envfrom = cb_envfrom,
    .xxfi_envrcpt = cb_envrcpt,
    .xxfi_header = cb_header,
    .xxfi_eoh = cb_eoh,
    .xxfi_body = cb_body,
    .xxfi_eom = cb_eom_store,
    .xxfi_abort = cb_abort,
    .xxfi_close = cb_abort,
    .xxfi_negotiate = cb_negotiate,
};

static int
open_maildir(const char *dir)
{
    char path[4096];
    static const char *const sub[] = {"tmp", "new", "cur"};
    size_t i;

    (void)mkdir(dir, 0700);
    for (i = 0; i < 3; i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
        (void)mkdir(path, 0700);
    }
    (void)snprintf(path, sizeof(path), "%s/tmp", dir);
    tmp_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    (void)snprintf(path, sizeof(path), "%s/new", dir);
    new_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return tmp_fd >= 0 && new_fd >= 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    struct smfiDesc *desc;

    if (argc == 3 && strcmp(argv[1], "minimal") == 0)
        desc = &minimal;
    else if (argc == 4 && strcmp(argv[1], "store") == 0)
        desc = &storing;
    else {
        fprintf(stderr, "usage: bench_milter_peer minimal SOCKET\n"
                        "       bench_milter_peer store SOCKET MAILDIR\n");
        return 2;
    }
    if (desc == &storing && open_maildir(argv[3]) < 0) {
        fprintf(stderr, "bench_milter_peer: %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    if (smfi_register(*desc) != MI_SUCCESS || smfi_setconn(argv[2]) != MI_SUCCESS ||
        smfi_opensocket(true) != MI_SUCCESS) {
        fprintf(stderr, "bench_milter_peer: cannot listen on %s\n", argv[2]);
        return 1;
    }
    if (strncmp(argv[2], "unix:", 5) == 0)
        (void)chmod(argv[2] + 5, 0666);
    fprintf(stderr, "bench_milter_peer: %s listening on %s\n", argv[1], argv[2]);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
