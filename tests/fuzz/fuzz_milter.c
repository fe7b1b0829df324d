/* SPDX-License-Identifier: ISC */
/*
 * fuzz_milter.c - libFuzzer target for what autoturn-milter does with the
 * SMTP arguments the MTA passes on (milter/rcptaddr.c, then the customer
 * lookup and the envelope): MAIL FROM and RCPT TO argument vectors, as
 * cb_envfrom / cb_envrcpt / hold_rcpt see them.
 *
 * Input: NUL-separated strings; the first group (up to an empty string)
 * is the MAIL FROM argv, the second the RCPT TO argv.
 *
 * Invariants checked: a mailbox has no control byte and fits
 * ENVELOPE_ADDR_MAX; a domain, when found, ends the mailbox after an '@';
 * the kept parameters are exactly the kept keywords of argv[1..] in
 * order, joined by one space; a domain lookup in a real compiled table
 * never errs; a sender and recipient the envelope accepts format and
 * parse back to the same envelope.
 */
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "custdb.h"
#include "custdb_compile.h"
#include "envelope.h"
#include "fuzz_util.h"
#include "milter.h"
#include "util.h"

#define ARGS_MAX 32

/* the lists of milter/session.c */
static const char *const mail_keep[] = {"BODY", "SMTPUTF8", "ENVID", "RET", NULL};
static const char *const rcpt_keep[] = {"NOTIFY", "ORCPT", NULL};

static struct custdb *db;

static void
compile_err(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "fuzz_milter: %s\n", msg);
}

static void
setup(void)
{
    static const char src[] =
        "customer acme\n  domain virt.dom .virt.dom\n  address 192.0.2.10\n"
        "customer beta\n  domain beta.example xn--bcher-kva.example\n  delivery mx\n";
    const char *dir = fuzz_scratch_dir("fuzz-milter");
    char spath[512], dpath[512];
    FILE *fp;

    fuzz_quiet();
    FUZZ_CHECK(str_printf(spath, sizeof(spath), "%s/customers", dir) == 0);
    FUZZ_CHECK(str_printf(dpath, sizeof(dpath), "%s/customers.cdb", dir) == 0);
    FUZZ_CHECK((fp = fopen(spath, "w")) != NULL);
    FUZZ_CHECK(fwrite(src, 1, sizeof(src) - 1, fp) == sizeof(src) - 1 && fclose(fp) == 0);
    FUZZ_CHECK(custdb_compile(spath, dpath, compile_err, NULL, NULL) == 0);
    FUZZ_CHECK((db = custdb_new(dpath)) != NULL);
}

/* next_argv - the strings of data up to an empty one (or the end) */
static size_t
next_argv(const uint8_t *data, size_t size, size_t *off, char **argv, char *store,
          size_t storesize)
{
    size_t n = 0, used = 0, len;

    while (*off < size && n < ARGS_MAX) {
        len = strnlen((const char *)data + *off, size - *off);
        if (len == 0) {
            (*off)++;
            break;
        }
        if (used + len + 1 > storesize)
            break;
        memcpy(store + used, data + *off, len);
        store[used + len] = '\0';
        argv[n++] = store + used;
        used += len + 1;
        *off += len + 1 > size - *off ? size - *off : len + 1;
    }
    if (n == 0)
        argv[n++] = (char *)"<>";
    argv[n] = NULL;
    return n;
}

static bool
kept(const char *p, const char *const *keep)
{
    size_t k = strcspn(p, "=");

    for (; *keep != NULL; keep++)
        if (strlen(*keep) == k && strncasecmp(p, *keep, k) == 0)
            return true;
    return false;
}

/* check_params - rcptaddr_params against a plain re-implementation */
static int
check_params(char **argv, const char *const *keep, char *buf, size_t size)
{
    static char want[65536 + 2 * ARGS_MAX];
    size_t used = 0, i;
    int rc = rcptaddr_params(argv, keep, buf, size);

    want[0] = '\0';
    for (i = 1; argv[i] != NULL; i++) {
        if (!kept(argv[i], keep))
            continue;
        used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s", used ? " " : "",
                                 argv[i]);
    }
    if (rc == 0) {
        FUZZ_CHECK(strcmp(buf, want) == 0);
        FUZZ_CHECK(strlen(buf) < size);
    } else {
        FUZZ_CHECK(used + 1 > size);
    }
    return rc;
}

/* check_addr - mailbox and domain of one argument */
static int
check_addr(const char *arg, char *mbox, size_t size)
{
    char domain[DOMAIN_MAX + 2];
    struct customer *c = NULL;
    const char *why = NULL;
    struct errbuf err;
    size_t i, mlen, dlen;
    int rc = rcptaddr_mailbox(arg, mbox, size, &why);

    if (rc == 0) {
        mlen = strlen(mbox);
        FUZZ_CHECK(mlen <= ENVELOPE_ADDR_MAX);
        for (i = 0; i < mlen; i++)
            FUZZ_CHECK((unsigned char)mbox[i] >= 0x20 && mbox[i] != 0x7f);
    } else {
        FUZZ_CHECK(why != NULL);
    }
    if (rcptaddr_domain(arg, domain, sizeof(domain)) == 1) {
        dlen = strlen(domain);
        FUZZ_CHECK(dlen > 0 && dlen < sizeof(domain));
        if (rc == 0) {
            FUZZ_CHECK(mlen > dlen && mbox[mlen - dlen - 1] == '@');
            FUZZ_CHECK(strcmp(mbox + mlen - dlen, domain) == 0);
        }
        FUZZ_CHECK(custdb_lookup_domain(db, domain, &c, NULL, &err) >= 0);
        customer_free(c);
    } else {
        FUZZ_CHECK(domain[0] == '\0');
    }
    return rc;
}

static void
check_envelope(const char *sender, const char *mparams, const char *rcpt, const char *rparams)
{
    struct envelope e, again;
    struct errbuf err;
    char *text = NULL;
    size_t len = 0, hdr = 0;

    envelope_init(&e);
    envelope_init(&again);
    (void)str_copy(e.customer, sizeof(e.customer), "acme");
    e.arrival = 1763700000;
    if (envelope_set_sender(&e, sender, mparams, &err) == 0
        && envelope_add_rcpt(&e, rcpt, rparams, &err) == 0) {
        FUZZ_CHECK(envelope_format(&e, &text, &len, &err) == 0);
        FUZZ_CHECK(envelope_parse(&again, text, len, &hdr, &err) == 0 && hdr == len);
        FUZZ_CHECK(strcmp(again.sender, e.sender) == 0);
        FUZZ_CHECK(strcmp(again.mail_params, e.mail_params) == 0);
        FUZZ_CHECK(again.nrcpt == 1 && strcmp(again.rcpt[0].addr, e.rcpt[0].addr) == 0);
        FUZZ_CHECK(strcmp(again.rcpt[0].params, e.rcpt[0].params) == 0);
    }
    x_free(text);
    envelope_clear(&e);
    envelope_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static char mstore[65536], rstore[65536];
    char *margv[ARGS_MAX + 1], *rargv[ARGS_MAX + 1];
    char sender[ENVELOPE_ADDR_MAX + 1], rcpt[ENVELOPE_ADDR_MAX + 1];
    char mparams[ENVELOPE_PARAMS_MAX + 1], rparams[ENVELOPE_PARAMS_MAX + 1];
    size_t off = 0;
    int s_ok, r_ok;

    if (!init) {
        setup();
        init = true;
    }
    next_argv(data, size, &off, margv, mstore, sizeof(mstore));
    next_argv(data, size, &off, rargv, rstore, sizeof(rstore));
    s_ok = check_addr(margv[0], sender, sizeof(sender)) == 0
           && check_params(margv, mail_keep, mparams, sizeof(mparams)) == 0;
    r_ok = check_addr(rargv[0], rcpt, sizeof(rcpt)) == 0
           && check_params(rargv, rcpt_keep, rparams, sizeof(rparams)) == 0;
    if (s_ok && r_ok && rcpt[0] != '\0')
        check_envelope(sender, mparams, rcpt, rparams);
    return 0;
}
