/* SPDX-License-Identifier: ISC */
/*
 * fuzz_usage.c - libFuzzer target for the spool's metadata read from disk:
 * any bytes as a usage record (usage_parse) must give a record or an
 * error, and an accepted record must format back to the same bytes; any
 * text as a file name must give a size (spool_id_size) or none.
 */
#include <stdlib.h>

#include "spool.h"
#include "usage.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char again[USAGE_SIZE], *name;
    const char *why = NULL;
    struct usage u;
    uint64_t n;

    if (usage_parse((const char *)data, size, &u, &why) == 0) {
        usage_format(&u, again);
        if (memcmp(again, data, USAGE_SIZE) != 0)
            abort();
    } else if (why == NULL) {
        abort();
    }
    if ((name = x_strndup((const char *)data, size)) != NULL) {
        (void)spool_id_size(name, &n);
        x_free(name);
    }
    return 0;
}
