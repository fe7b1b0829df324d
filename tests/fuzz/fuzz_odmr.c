/* SPDX-License-Identifier: ISC */
/*
 * fuzz_odmr.c - libFuzzer target for what an ODMR client sends before and
 * during AUTH (flusher/odmr_parse.c, and the line reader of
 * flusher/netio.c with the session's cap): the input is the client's
 * bytes; they go through a socketpair into netio_read_line as the session
 * reads them, and every line is taken apart as the session would:
 * command verb and argument, AUTH PLAIN initial response, base64, the
 * PLAIN and CRAM-MD5 fields, the ATRN domain list.
 *
 * Invariants checked: lines respect ODMR_LINE_MAX; base64 never decodes
 * more than 3/4 of its length and decoded bytes encode and decode back to
 * themselves; PLAIN fields lie inside the decoded bytes and hold no NUL;
 * a CRAM-MD5 user fits CUSTOMER_NAME_MAX and "user digest" is the whole
 * response; ATRN domains are at most ODMR_DOMAINS_MAX, each already
 * normalised (normalising again changes nothing).
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "customer.h"
#include "fuzz_util.h"
#include "netio.h"
#include "odmr_parse.h"
#include "util.h"

static void
check_b64(const char *s, size_t len)
{
    static unsigned char dec[ODMR_AUTH_DECODED + 1], again[ODMR_AUTH_DECODED + 1];
    static char enc[2 * ODMR_AUTH_DECODED + 8];
    const char *authz, *user, *pass, *digest;
    char cuser[CUSTOMER_NAME_MAX + 2];
    size_t passlen;
    ssize_t n, m;

    n = odmr_b64_decode(s, len, dec, sizeof(dec) - 1);
    if (n <= 0)
        return;
    FUZZ_CHECK((size_t)n <= len / 4 * 3 && (size_t)n < sizeof(dec));
    FUZZ_CHECK(odmr_b64_encode(dec, (size_t)n, enc, sizeof(enc)) == 0);
    FUZZ_CHECK(strlen(enc) <= len);
    m = odmr_b64_decode(enc, strlen(enc), again, sizeof(again) - 1);
    FUZZ_CHECK(m == n && memcmp(dec, again, (size_t)n) == 0);
    dec[n] = '\0';
    if (odmr_plain_fields(dec, (size_t)n, &authz, &user, &pass, &passlen) == 0) {
        FUZZ_CHECK(authz == (const char *)dec);
        FUZZ_CHECK(user > authz && pass > user && pass + passlen == (const char *)dec + n);
        FUZZ_CHECK(strlen(authz) + 1 + strlen(user) + 1 + passlen == (size_t)n);
        FUZZ_CHECK(memchr(pass, '\0', passlen) == NULL);
    }
    if (odmr_cram_fields(dec, (size_t)n, cuser, sizeof(cuser) - 1, &digest) == 0) {
        FUZZ_CHECK(strlen(cuser) <= CUSTOMER_NAME_MAX);
        FUZZ_CHECK(strlen(digest) == ODMR_CRAM_DIGEST);
        FUZZ_CHECK(strlen(cuser) + 1 + ODMR_CRAM_DIGEST == (size_t)n);
        FUZZ_CHECK(memcmp(dec, cuser, strlen(cuser)) == 0 && dec[strlen(cuser)] == ' ');
    }
}

static void
check_domains(const char *arg)
{
    static struct odmr_domains d;
    static char copy[ODMR_LINE_MAX + 1];
    char norm[DOMAIN_MAX + 1];
    const char *reply = NULL, *e;
    size_t i;

    (void)str_copy(copy, sizeof(copy), arg);
    if (odmr_parse_domains(copy, &d, &reply) < 0) {
        FUZZ_CHECK(reply != NULL && strncmp(reply, "501 ", 4) == 0);
        return;
    }
    FUZZ_CHECK(d.n >= 1 && d.n <= ODMR_DOMAINS_MAX);
    for (i = 0; i < d.n; i++) {
        FUZZ_CHECK(d.v[i] >= d.buf && d.v[i] + strlen(d.v[i]) < d.buf + sizeof(d.buf));
        FUZZ_CHECK(domain_normalise(d.v[i], norm, sizeof(norm), &e) == 0);
        FUZZ_CHECK(strcmp(norm, d.v[i]) == 0);
    }
}

/* command - one line as odmr_session.c's command() and cmd_auth() split it */
static void
command(char *line, size_t len)
{
    char *arg = strchr(line, ' '), *initial;

    check_b64(line, len);                  /* a line after "334" is a bare response */
    if (arg != NULL)
        *arg++ = '\0';
    if (arg == NULL)
        return;
    if (str_ieq(line, "ATRN") && *arg != '\0') {
        check_domains(arg);
    } else if (str_ieq(line, "AUTH") && (initial = strchr(arg, ' ')) != NULL) {
        *initial++ = '\0';
        if (strcmp(initial, "=") == 0)
            initial = (char *)"";
        check_b64(initial, strlen(initial));
    } else {
        check_domains(arg);                /* any argument: the list parser must cope */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static struct netio io;
    struct errbuf err;
    char *line;
    size_t len;
    int sv[2], rc;

    if (!init) {
        fuzz_quiet();
        init = true;
    }
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0 && fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    if (size > 0)
        FUZZ_CHECK(write(sv[1], data, size) > 0);
    close(sv[1]);
    netio_init(&io, sv[0], "[192.0.2.1]:366");
    for (;;) {
        rc = netio_read_line(&io, netio_deadline(1), ODMR_LINE_MAX, &line, &len, &err);
        if (rc == NETIO_TOO_LONG)
            continue;                      /* the session answers 500 and reads on */
        if (rc < 0)
            break;
        FUZZ_CHECK(len <= ODMR_LINE_MAX);
        line[len] = '\0';                  /* as read_line() does: there is room */
        if (strlen(line) != len)
            continue;                      /* NUL in the line: 500 */
        command(line, len);
    }
    netio_close(&io);
    return 0;
}
