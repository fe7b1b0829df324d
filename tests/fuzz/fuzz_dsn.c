/* SPDX-License-Identifier: ISC */
/*
 * fuzz_dsn.c - libFuzzer target for the inputs of the DSN writer
 * (flusher/dsn.c): the envelope parameters of a held message (RET=,
 * ENVID= xtext, NOTIFY=, ORCPT= xtext), the status and diagnostic text a
 * customer's server sent, and the message itself (the header scan that
 * finds the header block to return). The message is stored through the
 * real spool API and the DSN written with dsn_write, as a bounce does.
 *
 * Input: lines (LF) sender, MAIL parameters, recipient, RCPT parameters,
 * status, diagnostic, remote MTA, flags; then the message. Flags: 'd'
 * makes a delay notice, 'x' repeats the message 40 times (past the 64 KiB
 * header cap and the 1 MiB RET=FULL cap's neighbourhood). Parameters
 * the envelope refuses are dropped (the milter never stores them).
 *
 * Invariants checked on the DSN: CRLF line ends only; the generated
 * header and the first two MIME parts have no line over 998 bytes, no
 * control byte and no 8-bit byte outside the recipient address lines;
 * the boundary of the Content-Type appears exactly at the three part
 * starts and the close; every Status: field is class.subject.detail.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "envelope.h"
#include "fuzz_util.h"
#include "spool.h"
#include "util.h"

#define CUST "acme"
#define FIELD_MAX 4096

static struct spool *sp;
static int out_fd = -1;

static void
setup(void)
{
    fuzz_quiet();
    FUZZ_CHECK((sp = spool_new(fuzz_scratch_dir("fuzz-dsn"))) != NULL);
    FUZZ_CHECK((out_fd = memfd_create("dsn", MFD_CLOEXEC)) >= 0);
}

/* store - the message through the spool; 0 and id, or -1 */
static int
store(const char *sender, const char *mparams, const char *rcpt, const char *rparams,
      const uint8_t *body, size_t len, int times, char id[SPOOL_ID_MAX])
{
    struct spool_writer *w = NULL;
    struct envelope e;
    struct errbuf err;
    int rc = -1, i;

    envelope_init(&e);
    (void)str_copy(e.customer, sizeof(e.customer), CUST);
    e.arrival = 1763700000;
    if (envelope_set_sender(&e, sender, mparams, &err) < 0
        && envelope_set_sender(&e, "s@example.org", "", &err) < 0)
        goto out;
    if (envelope_add_rcpt(&e, rcpt, rparams, &err) < 0
        && envelope_add_rcpt(&e, "a@virt.dom", "", &err) < 0)
        goto out;
    FUZZ_CHECK(spool_writer_open(sp, &e, &w, &err) == 0);
    for (i = 0; i < times; i++)
        FUZZ_CHECK(spool_writer_write(w, body, len, &err) == 0);
    FUZZ_CHECK(spool_writer_commit(w, id, &err) == 0);
    rc = 0;
out:
    envelope_clear(&e);
    return rc;
}

/* boundary_of - the boundary="..." of the top Content-Type */
static void
boundary_of(const char *p, size_t len, char *b, size_t size)
{
    const char *s = memmem(p, len, "boundary=\"", 10), *e;

    FUZZ_CHECK(s != NULL);
    s += 10;
    e = memchr(s, '"', len - (size_t)(s - p));
    FUZZ_CHECK(e != NULL && (size_t)(e - s) < size && e > s);
    memcpy(b, s, (size_t)(e - s));
    b[e - s] = '\0';
}

static bool
starts(const char *line, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(line, prefix, n) == 0;
}

/* check_line - one line (without CRLF) of the generated part */
static void
check_generated(const char *line, size_t len)
{
    size_t i;
    bool addr = starts(line, len, "Final-Recipient:") || starts(line, len, "To:")
                || starts(line, len, "<") || (len > 0 && line[0] == ' ');

    FUZZ_CHECK(len <= 998);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];

        FUZZ_CHECK(c >= 0x20 || c == '\t');
        FUZZ_CHECK(c != 0x7f);
        FUZZ_CHECK(c < 0x80 || addr);
    }
    if (starts(line, len, "Status: ")) {
        const char *s = line + 8;
        size_t dots = 0;

        FUZZ_CHECK(*s == '2' || *s == '4' || *s == '5');
        for (i = 8; i < len; i++)
            dots += line[i] == '.';
        FUZZ_CHECK(dots == 2);
    }
}

static void
check_dsn(const char *p, size_t len)
{
    char b[128], delim[140];
    size_t i, start = 0, parts = 0;
    bool closed = false;

    boundary_of(p, len, b, sizeof(b));
    FUZZ_CHECK(str_printf(delim, sizeof(delim), "--%s", b) == 0);
    for (i = 0; i < len; i++) {
        if (p[i] == '\r') {
            FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n');
            i++;
        } else if (p[i] != '\n') {
            continue;
        } else {
            FUZZ_CHECK(i > 0 && p[i - 1] == '\r');    /* no bare LF */
        }
        {
            const char *line = p + start;
            size_t n = i - 1 - start;               /* without CRLF */

            if (starts(line, n, delim)) {
                size_t rest = n - strlen(delim);

                FUZZ_CHECK(!closed);
                if (rest == 2 && memcmp(line + n - 2, "--", 2) == 0)
                    closed = true;
                else
                    FUZZ_CHECK(rest == 0);
                parts++;
            } else {
                FUZZ_CHECK(!closed);
                if (parts < 3)
                    check_generated(line, n);
            }
        }
        start = i + 1;
    }
    FUZZ_CHECK(start == len);       /* ends in CRLF */
    FUZZ_CHECK(closed && parts == 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static char sender[FIELD_MAX], mparams[FIELD_MAX], rcpt[FIELD_MAX], rparams[FIELD_MAX],
        status[FIELD_MAX], diag[FIELD_MAX], mta[FIELD_MAX], flags[64];
    char id[SPOOL_ID_MAX], orcpt[ENVELOPE_PARAMS_MAX + 1], *out;
    const struct envelope *env;
    struct spool_msg *m = NULL;
    struct errbuf err;
    struct stat st;
    size_t off = 0;

    if (!init) {
        setup();
        init = true;
    }
    fuzz_field(data, size, &off, '\n', sender, sizeof(sender));
    fuzz_field(data, size, &off, '\n', mparams, sizeof(mparams));
    fuzz_field(data, size, &off, '\n', rcpt, sizeof(rcpt));
    fuzz_field(data, size, &off, '\n', rparams, sizeof(rparams));
    fuzz_field(data, size, &off, '\n', status, sizeof(status));
    fuzz_field(data, size, &off, '\n', diag, sizeof(diag));
    fuzz_field(data, size, &off, '\n', mta, sizeof(mta));
    fuzz_field(data, size, &off, '\n', flags, sizeof(flags));
    if (store(sender, mparams, rcpt, rparams, data + off, size - off,
              strchr(flags, 'x') != NULL ? 40 : 1, id) < 0)
        return 0;
    FUZZ_CHECK(spool_msg_open(sp, CUST, id, &m, &err) == 0);
    env = spool_msg_envelope(m);
    {
        struct dsn_rcpt r = {env->rcpt[0].addr, NULL, status, diag, mta};
        struct dsn d = {strchr(flags, 'd') != NULL ? DSN_DELAYED : DSN_FAILED,
                        "mx.autoturn.test", CUST, "held too long", 1, &r};

        if (envelope_param(env->rcpt[0].params, "ORCPT", orcpt, sizeof(orcpt)) == 1)
            r.orcpt = orcpt;
        FUZZ_CHECK(dsn_recipient(env, "postmaster") != NULL);
        FUZZ_CHECK(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0);
        FUZZ_CHECK(dsn_write(out_fd, &d, m, dsn_recipient(env, "postmaster"), 1763700000,
                             &err) == 0);
    }
    FUZZ_CHECK(fstat(out_fd, &st) == 0 && st.st_size > 0);
    out = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, out_fd, 0);
    FUZZ_CHECK(out != MAP_FAILED);
    check_dsn(out, (size_t)st.st_size);
    munmap(out, (size_t)st.st_size);
    spool_msg_close(m);
    FUZZ_CHECK(spool_delete(sp, CUST, id, &err) == 0);
    return 0;
}
