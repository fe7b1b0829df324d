/* SPDX-License-Identifier: ISC */
/*
 * fuzz_import.c - libFuzzer target for the line formats of "autoturnctl
 * import" (ctl/import_parse.c): the input is one line of each file
 * (virtualdomains, passwords, routes, tcp.smtp, open-smtp, and a
 * tcprules address) and the head of a maildir message; any bytes must
 * give an entry or an error text, never a crash, and every field returned
 * must lie inside the line.
 */
#include <stdlib.h>

#include "import_parse.h"
#include "util.h"

static char line[IMP_LINE_MAX + 1];
static size_t linelen;

/* inside - p points into the line (or is NULL). */
static void
inside(const char *p)
{
    if (p != NULL && (p < line || p > line + linelen))
        abort();
}

static void
reset(const uint8_t *data, size_t size)
{
    linelen = size < IMP_LINE_MAX ? size : IMP_LINE_MAX;
    memcpy(line, data, linelen);
    line[linelen] = '\0';
}

static void
lines(const uint8_t *data, size_t size)
{
    struct ipnet nets[IMP_NETS_MAX];
    struct imp_tcprule r;
    char *a, *b, *c, *d;
    const char *why;
    size_t n;

    reset(data, size);
    if (imp_parse_vdomain(line, &a, &b, &why) == 1)
        inside(a), inside(b);
    reset(data, size);
    if (imp_parse_password(line, &a, &b, &c, &d, &why) == 1)
        inside(a), inside(b), inside(c), inside(d);
    reset(data, size);
    if (imp_parse_route(line, &a, &b, &c, &why) == 1)
        inside(a), inside(b), inside(c);
    reset(data, size);
    if (imp_parse_tcprule(line, &r, &why) == 1) {
        inside(r.addr);
        inside(r.relay_value);
        if (imp_tcprule_nets(r.addr, nets, IMP_NETS_MAX, &n, &why) == 0 && n > IMP_NETS_MAX)
            abort();
    }
    reset(data, size);
    if (imp_parse_open_smtp(line, &r, &a, &why) == 1)
        inside(r.addr), inside(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sender[1001], rcpt[1001];
    struct errbuf err;
    size_t skip;
    bool crlf;

    lines(data, size);
    if (imp_parse_head((const char *)data, size, "autoturn-1.2.3.4-", sender, rcpt, sizeof(sender),
                       &skip, &crlf, &err) == 0 && (skip > size || strlen(rcpt) == 0))
        abort();
    return 0;
}
