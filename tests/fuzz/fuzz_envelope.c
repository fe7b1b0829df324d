/* SPDX-License-Identifier: ISC */
/*
 * fuzz_envelope.c - libFuzzer target for the spool envelope reader: any
 * bytes at the top of a spool file must give an envelope or an error;
 * an accepted envelope must format back to text that parses the same.
 */
#include <stdlib.h>

#include "envelope.h"
#include "util.h"

static void
check_same(const struct envelope *a, const struct envelope *b)
{
    size_t i;

    if (strcmp(a->customer, b->customer) != 0 || strcmp(a->queue_id, b->queue_id) != 0 ||
        a->arrival != b->arrival || strcmp(a->sender, b->sender) != 0 ||
        strcmp(a->mail_params, b->mail_params) != 0 || a->nrcpt != b->nrcpt)
        abort();
    for (i = 0; i < a->nrcpt; i++)
        if (strcmp(a->rcpt[i].addr, b->rcpt[i].addr) != 0 ||
            strcmp(a->rcpt[i].params, b->rcpt[i].params) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope e, again;
    struct errbuf err;
    size_t hdr = 0, hdr2 = 0, len = 0;
    char *text = NULL;

    envelope_init(&e);
    envelope_init(&again);
    if (envelope_parse(&e, (const char *)data, size, &hdr, &err) == 0) {
        if (hdr > size)
            abort();
        if (envelope_format(&e, &text, &len, &err) < 0)
            abort();
        if (envelope_parse(&again, text, len, &hdr2, &err) < 0 || hdr2 != len)
            abort();
        check_same(&e, &again);
    }
    x_free(text);
    envelope_clear(&e);
    envelope_clear(&again);
    return 0;
}
