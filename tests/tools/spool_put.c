/* SPDX-License-Identifier: ISC */
/*
 * spool_put.c - test and demo tool: store the message on standard input in
 * a customer's spool through the real spool API (the same durable path
 * the milter uses), and print its id.
 *
 * usage: spool_put [-a CLIENT_ADDR] [-n CLIENT_NAME] [-h HELO] [-q QUEUE_ID]
 *                  SPOOLDIR CUSTOMER SENDER RCPT [RCPT ...] < message
 * SENDER/RCPT are written without <>; "" is the null sender. A parameter
 * list may follow an address after a '|': "a@b|NOTIFY=SUCCESS". The
 * options fill the envelope's client fields and queue id, as the milter
 * would.
 */
#include <getopt.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "spool.h"
#include "util.h"

static int
split_params(const char *arg, char *addr, size_t size, const char **params_r)
{
    const char *bar = strchr(arg, '|');
    size_t len = bar ? (size_t)(bar - arg) : strlen(arg);

    if (len >= size)
        return -1;
    memcpy(addr, arg, len);
    addr[len] = '\0';
    *params_r = bar ? bar + 1 : "";
    return 0;
}

static int
build_envelope(struct envelope *e, int argc, char **argv, struct errbuf *err)
{
    char addr[ENVELOPE_ADDR_MAX + 1];
    const char *params;
    int i;

    if (str_copy(e->customer, sizeof(e->customer), argv[2]) < 0)
        return -1;
    e->arrival = time(NULL);
    if (split_params(argv[3], addr, sizeof(addr), &params) < 0 ||
        envelope_set_sender(e, addr, params, err) < 0)
        return -1;
    for (i = 4; i < argc; i++)
        if (split_params(argv[i], addr, sizeof(addr), &params) < 0 ||
            envelope_add_rcpt(e, addr, params, err) < 0)
            return -1;
    return 0;
}

static int
copy_stdin(struct spool_writer *w, struct errbuf *err)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
        if (spool_writer_write(w, buf, (size_t)n, err) < 0)
            return -1;
    if (n < 0) {
        errbuf_set_errno(err, "read stdin");
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct spool_writer *w = NULL;
    struct errbuf err = {"invalid argument"};
    char id[SPOOL_ID_MAX];
    struct envelope e;
    struct spool *sp;

    const char *caddr = NULL, *cname = NULL, *helo = NULL, *qid = "";
    int ch;

    while ((ch = getopt(argc, argv, "+a:n:h:q:")) != -1) {
        switch (ch) {
        case 'a': caddr = optarg; break;
        case 'n': cname = optarg; break;
        case 'h': helo = optarg; break;
        case 'q': qid = optarg; break;
        default: argc = 0; break;
        }
    }
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 5) {
        fprintf(stderr, "usage: spool_put [-a ADDR] [-n NAME] [-h HELO] [-q QUEUEID] SPOOLDIR "
                "CUSTOMER SENDER RCPT... < message\n");
        return 64;
    }
    envelope_init(&e);
    envelope_set_client(&e, caddr, cname, helo);
    (void)str_copy(e.queue_id, sizeof(e.queue_id), qid);
    if ((sp = spool_new(argv[1])) == NULL || build_envelope(&e, argc, argv, &err) < 0 ||
        spool_writer_open(sp, &e, &w, &err) < 0)
        goto fail;
    if (copy_stdin(w, &err) < 0) {
        spool_writer_abort(w);
        goto fail;
    }
    if (spool_writer_commit(w, id, &err) < 0)
        goto fail;
    printf("%s\n", id);
    envelope_clear(&e);
    spool_free(sp);
    return 0;
fail:
    fprintf(stderr, "spool_put: %s\n", err.msg);
    envelope_clear(&e);
    spool_free(sp);
    return 75;
}
