/* SPDX-License-Identifier: ISC */
/*
 * fuzz_ctlproto.c - libFuzzer target for the control-protocol parser and
 * line framing: any bytes must give requests or errors; an accepted
 * request must format back to a line that parses to the same request.
 */
#include <stdlib.h>

#include "ctlproto.h"
#include "util.h"

static void
check_same(const struct ctl_msg *a, const struct ctl_msg *b)
{
    size_t i;

    if (strcmp(a->verb, b->verb) != 0 || a->nargs != b->nargs)
        abort();
    for (i = 0; i < a->nargs; i++)
        if (strcmp(a->args[i].key, b->args[i].key) != 0 ||
            strcmp(a->args[i].value, b->args[i].value) != 0)
            abort();
}

static void
check_line(const char *line, size_t len)
{
    struct ctl_msg m, back;
    struct errbuf err;
    char buf[CTL_LINE_MAX];
    int n;

    if (ctl_parse(line, len, &m, &err) < 0)
        return;
    n = ctl_format(&m, buf, sizeof(buf));
    if (n < 0)
        return;    /* decoded values may need more room once escaped again */
    if (ctl_parse(buf, (size_t)n, &back, &err) < 0)
        abort();
    check_same(&m, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_linebuf lb;
    const char *line;
    size_t off = 0, used, linelen;
    int rc;

    ctl_linebuf_init(&lb);
    while (off < size) {
        rc = ctl_linebuf_next(&lb, (const char *)data + off, size - off, &used, &line, &linelen);
        if (used > size - off)
            abort();
        off += used;
        if (rc < 0)
            break;
        if (rc == 1)
            check_line(line, linelen);
        else if (used == 0)
            abort();      /* no progress and no line: would spin forever */
    }
    return 0;
}
