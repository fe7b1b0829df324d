/* SPDX-License-Identifier: ISC */
/*
 * fuzz_smtpc.c - libFuzzer target for the flusher's SMTP client
 * (flusher/smtpc.c) against a hostile server: the input is everything the
 * server says (greeting, EHLO keywords, multi-line replies, replies to
 * pipelined groups, STARTTLS, the final-dot reply), written into one end
 * of a socketpair and closed; the client runs a whole session on the
 * other end (smtpc_adopt, up to three transactions with RSET between
 * them, QUIT) exactly as a flush does. No change to smtpc.c is needed:
 * its reply parser is reached through its public functions.
 *
 * Input: byte 0 picks the TLS policy (bit 0: may, else none) and the held
 * message (bits 1-2: plain, 8-bit with BODY=8BITMIME, SMTPUTF8, DSN
 * parameters and three recipients); the rest is the server's bytes.
 *
 * Invariants checked: a reply code is 0 or 200..599 and its text is
 * bounded and free of control bytes; a session that opened had a 2xx to
 * EHLO/HELO (or, under "may", a refused STARTTLS after it); a message
 * counted as SENT had a 2xx MAIL, at least one 2xx RCPT and a 2xx final
 * reply; every recipient reply is 0 (not tried) or a valid code; after
 * a HELO fallback no extension is assumed; a SIZE limit only with SIZE.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include "envelope.h"
#include "fuzz_util.h"
#include "smtpc.h"
#include "spool.h"
#include "util.h"

#define CUST "acme"
#define NMSG 4
#define ROUNDS 3

static struct spool *sp;
static char ids[NMSG][SPOOL_ID_MAX];

static void
put_msg(int i, const char *sender, const char *mparams, const char *const *rcpt,
        const char *rparams, const char *body)
{
    struct spool_writer *w;
    struct envelope e;
    struct errbuf err;

    envelope_init(&e);
    (void)str_copy(e.customer, sizeof(e.customer), CUST);
    e.arrival = time(NULL);
    FUZZ_CHECK(envelope_set_sender(&e, sender, mparams, &err) == 0);
    for (; *rcpt != NULL; rcpt++)
        FUZZ_CHECK(envelope_add_rcpt(&e, *rcpt, rparams, &err) == 0);
    FUZZ_CHECK(spool_writer_open(sp, &e, &w, &err) == 0);
    FUZZ_CHECK(spool_writer_write(w, body, strlen(body), &err) == 0);
    FUZZ_CHECK(spool_writer_commit(w, ids[i], &err) == 0);
    envelope_clear(&e);
}

static void
setup(void)
{
    static const char *const one[] = {"a@virt.dom", NULL};
    static const char *const utf8[] = {"\xc3\xa9t\xc3\xa9@virt.dom", NULL};
    static const char *const three[] = {"a@virt.dom", "b@virt.dom", "c@sub.virt.dom", NULL};

    fuzz_quiet();
    signal(SIGPIPE, SIG_IGN);
    FUZZ_CHECK((sp = spool_new(fuzz_scratch_dir("fuzz-smtpc"))) != NULL);
    put_msg(0, "s@example.org", "", one, "", "Subject: plain\r\n\r\n.dot\r\nbody\r\n");
    put_msg(1, "s@example.org", "BODY=8BITMIME", one, "",
            "Subject: 8bit\r\n\r\n\xe9t\xe9\r\n");
    put_msg(2, "s@example.org", "SMTPUTF8", utf8, "", "Subject: utf8\r\n\r\nhi\r\n");
    put_msg(3, "", "ENVID=x+2By RET=HDRS", three, "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b",
            "Subject: dsn\r\n\r\nno final newline");
}

static void
check_reply(const struct smtpc_reply *r)
{
    size_t i, n = strnlen(r->text, sizeof(r->text));

    FUZZ_CHECK(r->code == 0 || (r->code >= 200 && r->code <= 599));
    FUZZ_CHECK(n < sizeof(r->text));
    for (i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)r->text[i] >= 0x20 && r->text[i] != 0x7f);
}

static void
check_result(const struct smtpc_result *res, const struct envelope *env)
{
    size_t i, ok = 0;

    FUZZ_CHECK(res->nrcpt == env->nrcpt);
    check_reply(&res->mail);
    check_reply(&res->data);
    for (i = 0; i < res->nrcpt; i++) {
        check_reply(&res->rcpt[i]);
        ok += res->rcpt[i].code / 100 == 2;
    }
    if (res->status == SMTPC_SENT) {
        FUZZ_CHECK(res->mail.code / 100 == 2);
        FUZZ_CHECK(ok > 0);
        FUZZ_CHECK(res->data.code / 100 == 2);
    }
}

/* session - the client's whole life on fd */
static void
session(int fd, enum tls_policy tls, int which)
{
    /* BDAT in every other session, when the server offers CHUNKING */
    struct smtpc_opts o = {1, 1, 1, 1, "flusher.autoturn.test", tls, NULL, which % 2 == 0};
    const struct smtpc_ext *x;
    struct smtpc_result res;
    struct smtpc_reply r;
    struct spool_msg *m;
    struct smtpc *c;
    struct errbuf err;
    int round, rc;

    rc = smtpc_adopt(fd, NULL, NULL, "mx.virt.dom[192.0.2.1]:25", &o, &c, &r, &err);
    check_reply(&r);
    if (rc < 0) {
        FUZZ_CHECK(c == NULL);
        return;
    }
    x = smtpc_extensions(c);
    /* the last reply: EHLO/HELO's, or a STARTTLS refusal that "may" accepts */
    FUZZ_CHECK(r.code / 100 == 2 || (tls == TLS_MAY && x->starttls && !x->tls_active));
    FUZZ_CHECK(x->size || x->size_max == 0);
    FUZZ_CHECK(x->esmtp || (!x->pipelining && !x->size && !x->dsn && !x->starttls));
    for (round = 0; round < ROUNDS; round++) {
        FUZZ_CHECK(spool_msg_open(sp, CUST, ids[(which + round) % NMSG], &m, &err) == 0);
        rc = smtpc_send(c, m, &res, &err);
        if (rc == 0)
            check_result(&res, spool_msg_envelope(m));
        smtpc_result_clear(&res);
        spool_msg_close(m);
        if (rc < 0 || smtpc_rset(c, &err) < 0)
            break;
    }
    smtpc_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    int sv[2];
    ssize_t n;

    if (!init) {
        setup();
        init = true;
    }
    if (size < 1)
        return 0;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    if (size > 1) {
        n = write(sv[1], data + 1, size - 1);     /* what fits in the socket buffer */
        FUZZ_CHECK(n > 0);
    }
    FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);      /* then EOF: no read ever waits */
    session(sv[0], (data[0] & 1) ? TLS_MAY : TLS_NONE, (data[0] >> 1) & 3);
    close(sv[1]);
    return 0;
}
