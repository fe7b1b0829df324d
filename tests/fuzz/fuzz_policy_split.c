/* SPDX-License-Identifier: ISC */
/*
 * fuzz_policy_split.c - libFuzzer target for the policy protocol parser
 * (policyd/policy.c) and its fast path: any bytes, fed whole and fed one
 * byte at a time, must give the same requests, the same error at the same
 * byte, or both need more input. The first two input bytes choose the
 * line and attribute limits.
 */
#include <stdlib.h>

#include "policy.h"
#include "util.h"

#define REQS 4

struct outcome {
    int rc;
    size_t nreq, consumed;
    struct policy_request req[REQS];
    char err[ERRBUF_SIZE];
};

static void
run(const char *data, size_t len, size_t step, size_t max_line, size_t max_attrs,
    struct outcome *o)
{
    struct policy_parser p;
    struct errbuf err;
    size_t off = 0, n, used;
    int rc = 0;

    memset(o, 0, sizeof(*o));
    policy_parser_init(&p, max_line, max_attrs);
    while (off < len) {
        n = len - off < step ? len - off : step;
        rc = policy_parse(&p, data + off, n, &used, &err);
        if (used > n)
            abort();
        off += used;
        if (rc < 0) {
            (void)str_copy(o->err, sizeof(o->err), err.msg);
            break;
        }
        if (rc == 1 && o->nreq < REQS)
            o->req[o->nreq++] = p.req;
    }
    o->rc = rc;
    o->consumed = off;
}

static void
same(const struct policy_request *a, const struct policy_request *b)
{
    if (strcmp(a->request, b->request) != 0 || strcmp(a->protocol_state, b->protocol_state) ||
        strcmp(a->client_address, b->client_address) ||
        strcmp(a->sasl_username, b->sasl_username) || strcmp(a->recipient, b->recipient) ||
        strcmp(a->etrn_domain, b->etrn_domain) || strcmp(a->policy_context, b->policy_context)
        || a->nattrs != b->nattrs || a->overlong != b->overlong)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole, bytes;
    size_t max_line, max_attrs, i;

    if (size < 2)
        return 0;
    max_line = 1 + data[0] * 8;           /* 1 .. 2041 */
    max_attrs = 1 + data[1] % 64;
    data += 2;
    size -= 2;
    run((const char *)data, size, size ? size : 1, max_line, max_attrs, &whole);
    run((const char *)data, size, 1, max_line, max_attrs, &bytes);
    if (whole.rc != bytes.rc || whole.nreq != bytes.nreq || whole.consumed != bytes.consumed ||
        strcmp(whole.err, bytes.err) != 0)
        abort();
    for (i = 0; i < whole.nreq; i++)
        same(&whole.req[i], &bytes.req[i]);
    return 0;
}
