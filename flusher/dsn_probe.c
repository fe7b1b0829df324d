/* SPDX-License-Identifier: ISC */
/*
 * dsn_probe.c - test driver for dsn_send (tests/integration/t_dsn.sh):
 * stores one message in a private temp spool, builds a failed DSN for it
 * and injects it by the method given. Prints "ok" or the error text;
 * exits 0 or 1 (2 for usage and set-up errors). Not installed.
 *
 *   dsn_probe -m sendmail -c "SENDMAIL COMMAND" [-s SENDER] [-p POSTMASTER]
 *   dsn_probe -m smtp -r SOCKSPEC [-s SENDER] [-p POSTMASTER]
 *
 * The DSN goes to SENDER (default alice@sink.test), or to POSTMASTER when
 * SENDER is "" (never bounce a bounce).
 */
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "config.h"
#include "dsn.h"
#include "envelope.h"
#include "sockspec.h"
#include "spool.h"

static const char body[] =
    "From: Alice <alice@sink.test>\r\nTo: bob@acme.test\r\nSubject: probe\r\n"
    "Message-ID: <probe@sink.test>\r\n\r\nhello\r\n.dot line\r\n";

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* store - the probe message in a fresh spool under root, opened in *m_r. */
static int
store(struct spool *sp, const char *sender, struct spool_msg **m_r, struct errbuf *err)
{
    struct spool_writer *w = NULL;
    struct envelope e;
    char id[SPOOL_ID_MAX];
    int rc = -1;

    envelope_init(&e);
    (void)str_copy(e.customer, sizeof(e.customer), "acme");
    e.arrival = time(NULL);
    if (envelope_set_sender(&e, sender, "ENVID=probe+2B1 RET=HDRS", err) < 0
        || envelope_add_rcpt(&e, "bob@acme.test", "ORCPT=rfc822;bob@acme.test", err) < 0
        || spool_writer_open(sp, &e, &w, err) < 0)
        goto out;
    if (spool_writer_write(w, body, sizeof(body) - 1, err) < 0) {
        spool_writer_abort(w);
        goto out;
    }
    if (spool_writer_commit(w, id, err) < 0 || spool_msg_open(sp, "acme", id, m_r, err) != 0)
        goto out;
    rc = 0;
out:
    envelope_clear(&e);
    return rc;
}

static int
probe(struct config_flusher *cfg, const char *sender, const char *postmaster)
{
    static const struct dsn_rcpt r = { "bob@acme.test", "rfc822;bob@acme.test", "5.1.1",
                                       "smtp; 550 5.1.1 <bob@acme.test>: no such user",
                                       "mx.acme.test" };
    struct dsn d = { DSN_FAILED, cfg->myhostname, "acme", "the customer's server refused it",
                     1, &r };
    char root[] = "/tmp/dsn_probe.XXXXXX";
    struct spool *sp = NULL;
    struct spool_msg *m = NULL;
    struct errbuf err = { "" };
    int rc = 2;

    if (mkdtemp(root) == NULL || (sp = spool_new(root)) == NULL) {
        perror("dsn_probe: set-up");
        return 2;
    }
    if (store(sp, sender, &m, &err) < 0) {
        fprintf(stderr, "dsn_probe: store: %s\n", err.msg);
        goto out;
    }
    rc = dsn_send(cfg, &d, m, dsn_recipient(spool_msg_envelope(m), postmaster), &err) < 0;
    printf("%s\n", rc ? err.msg : "ok");
out:
    spool_msg_close(m);
    spool_free(sp);
    (void)nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int
main(int argc, char **argv)
{
    struct config cfg;
    const char *sender = "alice@sink.test", *postmaster = "postmaster@sink.test", *e = NULL;
    int c;

    config_defaults(&cfg);
    (void)str_copy(cfg.flusher.myhostname, sizeof(cfg.flusher.myhostname), "flusher.autoturn.test");
    cfg.flusher.connect_timeout = cfg.flusher.command_timeout = cfg.flusher.data_timeout = 10;
    while ((c = getopt(argc, argv, "m:c:r:s:p:")) != -1) {
        if ((c == 'm' && str_copy(cfg.flusher.bounce_method, sizeof(cfg.flusher.bounce_method), optarg) < 0)
            || (c == 'c' && str_copy(cfg.flusher.sendmail_command,
                                     sizeof(cfg.flusher.sendmail_command), optarg) < 0)
            || (c == 'r' && sockspec_parse(optarg, &cfg.flusher.bounce_relay, &e) < 0)
            || c == '?') {
            fprintf(stderr, "usage: dsn_probe -m METHOD [-c CMD] [-r SPEC] [-s SENDER] [-p PM]\n");
            return 2;
        }
        if (c == 's')
            sender = optarg;
        if (c == 'p')
            postmaster = optarg;
    }
    return probe(&cfg.flusher, sender, postmaster);
}
