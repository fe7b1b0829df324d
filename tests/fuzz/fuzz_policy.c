/* SPDX-License-Identifier: ISC */
/*
 * fuzz_policy.c - libFuzzer target for the policy delegation parser
 * (policyd/policy.c), as autoturn-policyd feeds it: bytes as they arrive.
 *
 * Invariants checked:
 *   - the same bytes fed whole and fed in arbitrary splits (sizes drawn
 *     from the input, so a crash reproduces) give the same requests, the
 *     same violation at the same byte, and the same bytes consumed;
 *   - every kept value fits its field, has no control byte but tab;
 *   - a request that parses re-serialises ("name=value" lines of the kept
 *     attributes, an empty line) to bytes that parse to the same kept
 *     attributes;
 *   - policy_in_request is false right after a complete request.
 */
#include <stdlib.h>

#include "fuzz_util.h"
#include "policy.h"
#include "util.h"

#define MAX_LINE  4096            /* autoturn.conf defaults */
#define MAX_ATTRS 100
#define MAX_REQS  64              /* requests compared per input */

struct outcome {
    struct policy_request req[MAX_REQS];
    size_t nreq;                  /* complete requests (only the first MAX_REQS kept) */
    int last;                     /* 0 more needed, -1 violation */
    size_t consumed;              /* bytes taken, up to and including the bad byte */
    char err[ERRBUF_SIZE];
};

static struct outcome whole, split;

static void
check_value(const char *v, size_t size)
{
    size_t i, n = strnlen(v, size);

    FUZZ_CHECK(n < size);
    for (i = 0; i < n; i++)
        FUZZ_CHECK(((unsigned char)v[i] >= 0x20 || v[i] == '\t') && v[i] != 0x7f);
}

static void
check_request(const struct policy_request *r)
{
    check_value(r->request, sizeof(r->request));
    check_value(r->protocol_state, sizeof(r->protocol_state));
    check_value(r->client_address, sizeof(r->client_address));
    check_value(r->sasl_username, sizeof(r->sasl_username));
    check_value(r->recipient, sizeof(r->recipient));
    check_value(r->etrn_domain, sizeof(r->etrn_domain));
    check_value(r->policy_context, sizeof(r->policy_context));
    FUZZ_CHECK(strcmp(r->request, "smtpd_access_policy") == 0);
    FUZZ_CHECK(r->nattrs >= 1 && r->nattrs <= MAX_ATTRS);
    FUZZ_CHECK(r->overlong <= r->nattrs);
}

static bool
same_kept(const struct policy_request *a, const struct policy_request *b)
{
    return strcmp(a->request, b->request) == 0
           && strcmp(a->protocol_state, b->protocol_state) == 0
           && strcmp(a->client_address, b->client_address) == 0
           && strcmp(a->sasl_username, b->sasl_username) == 0
           && strcmp(a->recipient, b->recipient) == 0
           && strcmp(a->etrn_domain, b->etrn_domain) == 0
           && strcmp(a->policy_context, b->policy_context) == 0;
}

/* reserialise - the kept attributes as a request; parse it again */
static void
reserialise(const struct policy_request *r)
{
    static const struct { const char *name; size_t off; } kept[] = {
        {"request", offsetof(struct policy_request, request)},
        {"protocol_state", offsetof(struct policy_request, protocol_state)},
        {"client_address", offsetof(struct policy_request, client_address)},
        {"sasl_username", offsetof(struct policy_request, sasl_username)},
        {"recipient", offsetof(struct policy_request, recipient)},
        {"etrn_domain", offsetof(struct policy_request, etrn_domain)},
        {"policy_context", offsetof(struct policy_request, policy_context)},
    };
    char buf[8192];
    struct policy_parser p;
    struct errbuf err;
    size_t i, len = 0, used;
    int n;

    for (i = 0; i < ARRAY_LEN(kept); i++) {
        const char *v = (const char *)r + kept[i].off;

        if (v[0] == '\0')
            continue;
        n = snprintf(buf + len, sizeof(buf) - len, "%s=%s\n", kept[i].name, v);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf) - len);
        len += (size_t)n;
    }
    FUZZ_CHECK(len + 1 < sizeof(buf));
    buf[len++] = '\n';
    policy_parser_init(&p, MAX_LINE, MAX_ATTRS);
    FUZZ_CHECK(policy_parse(&p, buf, len, &used, &err) == 1);
    FUZZ_CHECK(used == len);
    FUZZ_CHECK(same_kept(&p.req, r));
    FUZZ_CHECK(p.req.overlong == 0);
}

/* run - feed data in chunks (step 0: all at once), record the outcome */
static void
run(const uint8_t *data, size_t size, struct fuzz_rng *rng, struct outcome *o)
{
    struct policy_parser p;
    struct errbuf err;
    size_t off = 0, end, used;
    int rc;

    memset(o, 0, sizeof(*o));
    policy_parser_init(&p, MAX_LINE, MAX_ATTRS);
    while (off < size) {
        end = rng == NULL ? size : off + fuzz_chunk(rng, size - off);
        while (off < end) {
            rc = policy_parse(&p, (const char *)data + off, end - off, &used, &err);
            FUZZ_CHECK(used <= end - off);
            off += used;
            if (rc < 0) {
                o->last = -1;
                o->consumed = off;
                (void)str_copy(o->err, sizeof(o->err), err.msg);
                return;
            }
            if (rc == 0) {
                FUZZ_CHECK(off == end);
                continue;
            }
            FUZZ_CHECK(used > 0);
            FUZZ_CHECK(!policy_in_request(&p));
            check_request(&p.req);
            if (o->nreq < MAX_REQS)
                o->req[o->nreq] = p.req;
            o->nreq++;
        }
    }
    o->consumed = off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct fuzz_rng rng;
    size_t i;

    if (!init) {
        fuzz_quiet();
        init = true;
    }
    fuzz_rng_seed(&rng, data, size);
    run(data, size, NULL, &whole);
    run(data, size, &rng, &split);
    FUZZ_CHECK(whole.nreq == split.nreq);
    FUZZ_CHECK(whole.last == split.last);
    FUZZ_CHECK(whole.consumed == split.consumed);
    FUZZ_CHECK(strcmp(whole.err, split.err) == 0);
    for (i = 0; i < whole.nreq && i < MAX_REQS; i++) {
        FUZZ_CHECK(same_kept(&whole.req[i], &split.req[i]));
        FUZZ_CHECK(whole.req[i].nattrs == split.req[i].nattrs);
        FUZZ_CHECK(whole.req[i].overlong == split.req[i].overlong);
        reserialise(&whole.req[i]);
    }
    return 0;
}
