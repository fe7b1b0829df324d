/* SPDX-License-Identifier: ISC */
/*
 * fuzz_custsrc.c - libFuzzer target for the customer-source parser: any
 * bytes must give customers or errors, never a crash, hang or leak; every
 * customer it accepts must survive the table encoding unchanged.
 */
#include <stdlib.h>

#include "custsrc.h"
#include "customer.h"
#include "util.h"

static void
check_roundtrip(const struct customer *c)
{
    struct customer *back = NULL;
    struct errbuf err;
    char *buf = NULL, *again = NULL;
    size_t len, len2;

    if (customer_encode(c, &buf, &len) < 0)
        abort();
    if (customer_decode(buf, len, &back, &err) < 0)
        abort();
    if (customer_encode(back, &again, &len2) < 0 || len != len2 || memcmp(buf, again, len) != 0)
        abort();
    customer_free(back);
    x_free(buf);
    x_free(again);
}

static int
on_customer(void *ctx, struct customer *c)
{
    (void)ctx;
    check_roundtrip(c);
    customer_free(c);
    return 0;
}

static void
on_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    (void)ctx;
    (void)file;
    (void)line;
    if (msg == NULL || msg[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)custsrc_parse_buf("fuzz", (const char *)data, size, on_customer, on_error, NULL);
    return 0;
}
