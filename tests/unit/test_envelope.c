/* SPDX-License-Identifier: ISC */
/*
 * test_envelope.c - the spool envelope: setters, format, strict parser,
 * round trips and every named error with its exact text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "envelope.h"
#include "util.h"

#define HDR "X-Autoturn-Version: 1\nX-Autoturn-Customer: acme\nX-Autoturn-Arrival: 1763700000\n"
#define MIN HDR "X-Autoturn-Sender: <s@example.org>\nX-Autoturn-Rcpt: <r@virt.dom>\n"

/* parse_text - envelope_parse on a NUL-terminated text; returns rc. */
static int
parse_text(const char *text, struct envelope *e, size_t *hdr, struct errbuf *err)
{
    envelope_init(e);
    err->msg[0] = '\0';
    return envelope_parse(e, text, strlen(text), hdr, err);
}

static void
test_parse_min(void **state)
{
    const char *text = MIN "X-Autoturn-End:\nSubject: x\r\n\r\nbody\r\n";
    struct envelope e;
    struct errbuf err;
    size_t hdr;

    (void)state;
    assert_int_equal(parse_text(text, &e, &hdr, &err), 0);
    assert_int_equal(hdr, strlen(MIN "X-Autoturn-End:\n"));
    assert_string_equal(e.customer, "acme");
    assert_int_equal(e.arrival, 1763700000);
    assert_string_equal(e.queue_id, "");
    assert_string_equal(e.sender, "s@example.org");
    assert_string_equal(e.mail_params, "");
    assert_int_equal(e.nrcpt, 1);
    assert_string_equal(e.rcpt[0].addr, "r@virt.dom");
    assert_string_equal(e.rcpt[0].params, "");
    envelope_clear(&e);
    assert_null(e.sender);
    assert_int_equal(e.nrcpt, 0);
}

static void
test_parse_lenient_bits(void **state)
{
    /* CRLF endings, tabs and extra blanks between tokens, blanks after
     * the address and after "End:" are tolerated and normalised. */
    const char *text = "X-Autoturn-Version: 1\r\nX-Autoturn-Customer:\tacme \r\n"
                       "X-Autoturn-Arrival: 5\r\nX-Autoturn-Queue-Id: 4XyZ.1_a-b\r\n"
                       "X-Autoturn-Sender:  BODY=8BITMIME \t SMTPUTF8  <a b> \r\n"
                       "X-Autoturn-Rcpt: <x@y>\t\r\nX-Autoturn-End:  \r\n";
    struct envelope e;
    struct errbuf err;
    size_t hdr;

    (void)state;
    assert_int_equal(parse_text(text, &e, &hdr, &err), 0);
    assert_int_equal(hdr, strlen(text));
    assert_string_equal(e.customer, "acme");
    assert_string_equal(e.queue_id, "4XyZ.1_a-b");
    assert_string_equal(e.mail_params, "BODY=8BITMIME SMTPUTF8");
    assert_string_equal(e.sender, "a b");
    assert_string_equal(e.rcpt[0].addr, "x@y");
    envelope_clear(&e);
}

static void
test_parse_addr_rules(void **state)
{
    /* '<' inside quotes and '>' inside quotes survive; the address ends at
     * the last '>' of the line. */
    const char *text = HDR "X-Autoturn-Sender: <\"a>b <c\"@example.org>\n"
                       "X-Autoturn-Rcpt: ORCPT=rfc822;x@y <<odd>>\n"
                       "X-Autoturn-End:\n";
    struct envelope e;
    struct errbuf err;
    size_t hdr;

    (void)state;
    assert_int_equal(parse_text(text, &e, &hdr, &err), 0);
    assert_string_equal(e.sender, "\"a>b <c\"@example.org");
    assert_string_equal(e.rcpt[0].addr, "<odd>");
    assert_string_equal(e.rcpt[0].params, "ORCPT=rfc822;x@y");
    envelope_clear(&e);
}

struct bad_case {
    const char *label;
    const char *text;
    const char *want;
};

static const struct bad_case bad_cases[] = {
    { "empty", "", "envelope not terminated" },
    { "no version", "X-Autoturn-Customer: acme\n", "line 1: missing X-Autoturn-Version" },
    { "plain mail", "Received: from x\n", "line 1: missing X-Autoturn-Version" },
    { "blank first line", "\n", "line 1: missing X-Autoturn-Version" },
    { "version 2", "X-Autoturn-Version: 2\n", "line 1: unsupported version '2'" },
    { "version twice", "X-Autoturn-Version: 1\nX-Autoturn-Version: 1\n",
      "line 2: duplicate X-Autoturn-Version" },
    { "unknown field", HDR "X-Autoturn-Foo: 1\n", "line 4: unknown field 'X-Autoturn-Foo'" },
    { "lower-case field", HDR "x-autoturn-sender: <a>\n",
      "line 4: unknown field 'x-autoturn-sender'" },
    { "no colon", HDR "X-Autoturn-End\n", "line 4: missing ':'" },
    { "empty line", HDR "\n", "line 4: empty line" },
    { "not terminated", MIN, "envelope not terminated" },
    { "end without LF", MIN "X-Autoturn-End:", "envelope not terminated" },
    { "text after end", MIN "X-Autoturn-End: x\n", "line 6: text after X-Autoturn-End:" },
    { "dup customer", HDR "X-Autoturn-Customer: acme\n", "line 4: duplicate X-Autoturn-Customer" },
    { "dup arrival", HDR "X-Autoturn-Arrival: 1\n", "line 4: duplicate X-Autoturn-Arrival" },
    { "dup sender", MIN "X-Autoturn-Sender: <>\n", "line 6: duplicate X-Autoturn-Sender" },
    { "dup queue id", HDR "X-Autoturn-Queue-Id: a\nX-Autoturn-Queue-Id: a\n",
      "line 5: duplicate X-Autoturn-Queue-Id" },
    { "bad customer", "X-Autoturn-Version: 1\nX-Autoturn-Customer: ../x\n",
      "line 2: bad customer name '../x': contains '/'" },
    { "empty customer", "X-Autoturn-Version: 1\nX-Autoturn-Customer:\n",
      "line 2: bad customer name '': empty" },
    { "bad arrival", "X-Autoturn-Version: 1\nX-Autoturn-Arrival: 12x\n",
      "line 2: bad arrival time '12x'" },
    { "zero arrival", "X-Autoturn-Version: 1\nX-Autoturn-Arrival: 0\n",
      "line 2: bad arrival time '0'" },
    { "negative arrival", "X-Autoturn-Version: 1\nX-Autoturn-Arrival: -5\n",
      "line 2: bad arrival time '-5'" },
    { "huge arrival", "X-Autoturn-Version: 1\nX-Autoturn-Arrival: 1234567890123456789\n",
      "line 2: bad arrival time '1234567890123456789'" },
    { "bad queue id", "X-Autoturn-Version: 1\nX-Autoturn-Queue-Id: a/b\n",
      "line 2: bad queue id 'a/b'" },
    { "long queue id", "X-Autoturn-Version: 1\nX-Autoturn-Queue-Id: "
      "0123456789012345678901234567890123456789012345678901234567890123\n",
      "line 2: bad queue id '0123456789012345678901234567890123456789012345678901234567890123'" },
    { "bad client addr", "X-Autoturn-Version: 1\nX-Autoturn-Client-Addr: 192.0.2.300\n",
      "line 2: bad client address '192.0.2.300'" },
    { "client addr name", "X-Autoturn-Version: 1\nX-Autoturn-Client-Addr: localhost\n",
      "line 2: bad client address 'localhost'" },
    { "bad client name", "X-Autoturn-Version: 1\nX-Autoturn-Client-Name: a b\n",
      "line 2: bad client name 'a b'" },
    { "empty client name", "X-Autoturn-Version: 1\nX-Autoturn-Client-Name:\n",
      "line 2: bad client name ''" },
    { "helo with (", "X-Autoturn-Version: 1\nX-Autoturn-Helo: a(b\n",
      "line 2: bad HELO name 'a(b'" },
    { "helo with space", "X-Autoturn-Version: 1\nX-Autoturn-Helo: a b\n",
      "line 2: bad HELO name 'a b'" },
    { "duplicate helo", "X-Autoturn-Version: 1\nX-Autoturn-Helo: a\nX-Autoturn-Helo: a\n",
      "line 3: duplicate X-Autoturn-Helo" },
    { "rcpt without <>", HDR "X-Autoturn-Rcpt: r@virt.dom\n",
      "line 4: bad recipient: missing <address>" },
    { "rcpt empty", HDR "X-Autoturn-Rcpt:\n", "line 4: bad recipient: missing <address>" },
    { "rcpt only params", HDR "X-Autoturn-Rcpt: NOTIFY=NEVER\n",
      "line 4: bad recipient: missing <address>" },
    { "rcpt null", HDR "X-Autoturn-Rcpt: <>\n", "line 4: bad recipient: empty address" },
    { "rcpt unclosed", HDR "X-Autoturn-Rcpt: <a@b\n",
      "line 4: bad recipient: missing '>' at end of address" },
    { "rcpt text after >", HDR "X-Autoturn-Rcpt: <a@b> x\n",
      "line 4: bad recipient: missing '>' at end of address" },
    { "rcpt bad param", HDR "X-Autoturn-Rcpt: NOTIFY==x <a@b>\n",
      "line 4: bad recipient: bad parameter" },
    { "rcpt tab in addr", HDR "X-Autoturn-Rcpt: <a\tb>\n",
      "line 4: bad recipient: control character in address" },
    { "sender bad", HDR "X-Autoturn-Sender: s@x\n", "line 4: bad sender: missing <address>" },
    { "sender none", HDR "X-Autoturn-Sender:\n", "line 4: bad sender: missing <address>" },
    { "no recipients", HDR "X-Autoturn-Sender: <>\nX-Autoturn-End:\n", "line 5: no recipients" },
    { "no sender", HDR "X-Autoturn-Rcpt: <a>\nX-Autoturn-End:\n",
      "line 5: missing X-Autoturn-Sender" },
    { "no customer", "X-Autoturn-Version: 1\nX-Autoturn-End:\n",
      "line 2: missing X-Autoturn-Customer" },
    { "no arrival", "X-Autoturn-Version: 1\nX-Autoturn-Customer: a\nX-Autoturn-End:\n",
      "line 3: missing X-Autoturn-Arrival" },
    { "control char", HDR "X-Autoturn-Rcpt: <a\033b>\n", "line 4: control character" },
    { "CR inside", HDR "X-Autoturn-Rcpt: <a\rb>\n", "line 4: control character" },
    { "DEL", HDR "X-Autoturn-Rcpt: <a\177b>\n", "line 4: control character" },
};

static void
test_parse_bad(void **state)
{
    struct envelope e;
    struct errbuf err;
    size_t i, hdr;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad_cases); i++) {
        print_message("case: %s\n", bad_cases[i].label);
        assert_int_equal(parse_text(bad_cases[i].text, &e, &hdr, &err), -1);
        assert_string_equal(err.msg, bad_cases[i].want);
        envelope_clear(&e);
    }
}

static void
test_parse_nul(void **state)
{
    static const char text[] = "X-Autoturn-Version: 1\nX-Autoturn-Cust\0omer: a\n";
    struct envelope e;
    struct errbuf err;
    size_t hdr;

    (void)state;
    envelope_init(&e);
    assert_int_equal(envelope_parse(&e, text, sizeof(text) - 1, &hdr, &err), -1);
    assert_string_equal(err.msg, "line 2: NUL byte");
    envelope_clear(&e);
}

/* long_line - HDR then a Rcpt line whose total length with LF is n. */
static char *
long_line(size_t n, bool lf)
{
    const char *pre = HDR "X-Autoturn-Rcpt: <";
    size_t plen = strlen(pre), total = plen + n;
    char *buf = malloc(total + 1);
    size_t fill = n - strlen("X-Autoturn-Rcpt: <") - 2;

    assert_non_null(buf);
    memcpy(buf, pre, plen);
    memset(buf + plen, 'a', fill);
    buf[plen + fill] = '>';
    buf[plen + fill + 1] = lf ? '\n' : 'x';
    buf[total] = '\0';
    return buf;
}

static void
test_parse_line_bounds(void **state)
{
    struct envelope e;
    struct errbuf err;
    size_t hdr;
    char *text;

    (void)state;
    /* a line of ENVELOPE_LINE_MAX bytes with LF is fine as a line; here its
     * address is over ENVELOPE_ADDR_MAX, which is the error seen. */
    text = long_line(ENVELOPE_LINE_MAX, true);
    assert_int_equal(parse_text(text, &e, &hdr, &err), -1);
    assert_string_equal(err.msg, "line 4: bad recipient: address too long");
    envelope_clear(&e);
    free(text);
    text = long_line(ENVELOPE_LINE_MAX + 1, true);
    assert_int_equal(parse_text(text, &e, &hdr, &err), -1);
    assert_string_equal(err.msg, "line 4: line too long");
    envelope_clear(&e);
    free(text);
    text = long_line(ENVELOPE_LINE_MAX + 100, false);    /* no LF at all */
    assert_int_equal(parse_text(text, &e, &hdr, &err), -1);
    assert_string_equal(err.msg, "line 4: line too long");
    envelope_clear(&e);
    free(text);
    /* envelope_parse_line directly, too long without LF */
    envelope_init(&e);
    text = calloc(1, ENVELOPE_LINE_MAX + 1);
    assert_non_null(text);
    memset(text, 'X', ENVELOPE_LINE_MAX);
    assert_int_equal(envelope_parse_line(&e, text, ENVELOPE_LINE_MAX, &err), -1);
    assert_string_equal(err.msg, "line 1: line too long");
    free(text);
    envelope_clear(&e);
}

static void
test_parse_line_after_end(void **state)
{
    const char *text = MIN "X-Autoturn-End:\n";
    struct envelope e;
    struct errbuf err;
    size_t hdr;

    (void)state;
    assert_int_equal(parse_text(text, &e, &hdr, &err), 0);
    assert_int_equal(envelope_parse_line(&e, "x\n", 2, &err), -1);
    assert_string_equal(err.msg, "line 7: envelope already complete");
    envelope_clear(&e);
}

static void
test_parse_line_by_line(void **state)
{
    static const char *const lines[] = {
        "X-Autoturn-Version: 1\n", "X-Autoturn-Customer: acme\r\n", "X-Autoturn-Arrival: 9",
        "X-Autoturn-Sender: <>\n", "X-Autoturn-Rcpt: <a@b>\n",
    };
    struct envelope e;
    struct errbuf err;
    size_t i;

    (void)state;
    envelope_init(&e);
    for (i = 0; i < ARRAY_LEN(lines); i++)
        assert_int_equal(envelope_parse_line(&e, lines[i], strlen(lines[i]), &err), 0);
    assert_int_equal(envelope_parse_line(&e, "X-Autoturn-End:", 15, &err), 1);
    assert_int_equal(e.arrival, 9);
    assert_string_equal(e.sender, "");
    envelope_clear(&e);
}

/* build - the envelope used by the round trips. */
static void
build(struct envelope *e)
{
    struct errbuf err;

    envelope_init(e);
    assert_int_equal(str_copy(e->customer, sizeof(e->customer), "acme"), 0);
    assert_int_equal(str_copy(e->queue_id, sizeof(e->queue_id), "4XyZ12abc"), 0);
    e->arrival = 1763700000;
    assert_int_equal(envelope_set_sender(e, "", "BODY=8BITMIME SMTPUTF8 ENVID=abc RET=HDRS",
                                         &err), 0);
    assert_int_equal(envelope_add_rcpt(e, "\"john doe\"@example.com", NULL, &err), 0);
    assert_int_equal(envelope_add_rcpt(e, "j\xc3\xbcrgen@b\xc3\xbc" "cher.example", "",
                                       &err), 0);
    assert_int_equal(envelope_add_rcpt(e, "a+b@example.com",
                                       "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com",
                                       &err), 0);
    assert_int_equal(envelope_add_rcpt(e, "\"x>y\"@example.com", "", &err), 0);
}

static void
assert_same(const struct envelope *a, const struct envelope *b)
{
    size_t i;

    assert_string_equal(a->customer, b->customer);
    assert_string_equal(a->queue_id, b->queue_id);
    assert_int_equal(a->arrival, b->arrival);
    assert_string_equal(a->sender, b->sender);
    assert_string_equal(a->mail_params, b->mail_params);
    assert_int_equal(a->nrcpt, b->nrcpt);
    for (i = 0; i < a->nrcpt; i++) {
        assert_string_equal(a->rcpt[i].addr, b->rcpt[i].addr);
        assert_string_equal(a->rcpt[i].params, b->rcpt[i].params);
    }
}

static void
test_format_exact(void **state)
{
    const char *want =
        "X-Autoturn-Version: 1\n"
        "X-Autoturn-Customer: acme\n"
        "X-Autoturn-Arrival: 1763700000\n"
        "X-Autoturn-Queue-Id: 4XyZ12abc\n"
        "X-Autoturn-Sender: BODY=8BITMIME SMTPUTF8 ENVID=abc RET=HDRS <>\n"
        "X-Autoturn-Rcpt: <\"john doe\"@example.com>\n"
        "X-Autoturn-Rcpt: <j\xc3\xbcrgen@b\xc3\xbc" "cher.example>\n"
        "X-Autoturn-Rcpt: NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com <a+b@example.com>\n"
        "X-Autoturn-Rcpt: <\"x>y\"@example.com>\n"
        "X-Autoturn-End:\n";
    struct envelope e, back;
    struct errbuf err;
    size_t len, hdr;
    char *text;

    (void)state;
    build(&e);
    assert_int_equal(envelope_format(&e, &text, &len, &err), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text, want, len);
    envelope_init(&back);
    assert_int_equal(envelope_parse(&back, text, len, &hdr, &err), 0);
    assert_int_equal(hdr, len);
    assert_same(&e, &back);
    free(text);
    envelope_clear(&e);
    envelope_clear(&back);
}

static void
test_format_without_queue_id(void **state)
{
    struct envelope e;
    struct errbuf err;
    size_t len;
    char *text;

    (void)state;
    build(&e);
    e.queue_id[0] = '\0';
    assert_int_equal(envelope_format(&e, &text, &len, &err), 0);
    assert_null(strstr(text, "Queue-Id"));
    free(text);
    envelope_clear(&e);
}

static void
test_format_needs(void **state)
{
    static const struct {
        const char *label;
        int what;
        const char *want;
    } cases[] = {
        { "no customer", 0, "bad customer name '': empty" },
        { "no arrival", 1, "envelope has no arrival time" },
        { "no sender", 2, "envelope has no sender" },
        { "no rcpt", 3, "envelope has no recipients" },
        { "bad queue id", 4, "bad queue id 'a b'" },
    };
    struct envelope e;
    struct errbuf err;
    size_t i, len;
    char *text = (char *)"x";

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        print_message("case: %s\n", cases[i].label);
        envelope_init(&e);
        (void)str_copy(e.customer, sizeof(e.customer), cases[i].what == 0 ? "" : "acme");
        e.arrival = cases[i].what == 1 ? 0 : 1;
        if (cases[i].what != 2)
            assert_int_equal(envelope_set_sender(&e, "s@x", NULL, &err), 0);
        if (cases[i].what != 3)
            assert_int_equal(envelope_add_rcpt(&e, "r@x", NULL, &err), 0);
        if (cases[i].what == 4)
            (void)str_copy(e.queue_id, sizeof(e.queue_id), "a b");
        assert_int_equal(envelope_format(&e, &text, &len, &err), -1);
        assert_null(text);
        assert_string_equal(err.msg, cases[i].want);
        envelope_clear(&e);
    }
}

/* the client fields: written when set, read back, optional (an old file
 * without them parses with them empty), made safe by the setter */
static void
test_client_fields(void **state)
{
    static const char want[] =
        "X-Autoturn-Version: 1\nX-Autoturn-Customer: acme\nX-Autoturn-Arrival: 5\n"
        "X-Autoturn-Client-Addr: 2001:db8::7\nX-Autoturn-Client-Name: mx.example.org\n"
        "X-Autoturn-Helo: [IPv6:2001:db8::7]\n"
        "X-Autoturn-Sender: <s@x>\nX-Autoturn-Rcpt: <r@x>\nX-Autoturn-End:\n";
    struct envelope e, back;
    struct errbuf err;
    char *text;
    size_t len, hdr;

    (void)state;
    envelope_init(&e);
    (void)str_copy(e.customer, sizeof(e.customer), "acme");
    e.arrival = 5;
    assert_int_equal(envelope_set_sender(&e, "s@x", NULL, &err), 0);
    assert_int_equal(envelope_add_rcpt(&e, "r@x", NULL, &err), 0);
    envelope_set_client(&e, "2001:db8::7", "mx.example.org", "[IPv6:2001:db8::7]");
    assert_int_equal(envelope_format(&e, &text, &len, &err), 0);
    assert_string_equal(text, want);
    assert_int_equal(parse_text(text, &back, &hdr, &err), 0);
    assert_string_equal(back.client_addr, "2001:db8::7");
    assert_string_equal(back.client_name, "mx.example.org");
    assert_string_equal(back.helo, "[IPv6:2001:db8::7]");
    envelope_clear(&back);
    x_free(text);
    /* unsafe input: a bad address and name are dropped, the HELO made safe and cut */
    envelope_set_client(&e, "not an address", "bad name", "a(b)\\c d\xe9");
    assert_string_equal(e.client_addr, "");
    assert_string_equal(e.client_name, "");
    assert_string_equal(e.helo, "a?b??c?d?");
    {
        char longhelo[400];

        memset(longhelo, 'h', sizeof(longhelo) - 1);
        longhelo[sizeof(longhelo) - 1] = '\0';
        envelope_set_client(&e, NULL, NULL, longhelo);
        assert_int_equal(strlen(e.helo), ENVELOPE_HOST_MAX);
    }
    envelope_clear(&e);
    /* an old file without the fields */
    assert_int_equal(parse_text("X-Autoturn-Version: 1\nX-Autoturn-Customer: acme\n"
                                "X-Autoturn-Arrival: 5\nX-Autoturn-Sender: <>\n"
                                "X-Autoturn-Rcpt: <r@x>\nX-Autoturn-End:\n", &back, &hdr, &err), 0);
    assert_string_equal(back.client_addr, "");
    assert_string_equal(back.helo, "");
    envelope_clear(&back);
}

static void
test_setters_reject(void **state)
{
    static const struct {
        const char *label, *addr, *params, *want;
        bool rcpt;
    } cases[] = {
        { "CR", "a\rb@x", "", "bad recipient: control character in address", true },
        { "LF", "a\nb@x", "", "bad recipient: control character in address", true },
        { "LF sender", "a\n@x", "", "bad sender: control character in address", false },
        { "tab", "a\tb@x", "", "bad recipient: control character in address", true },
        { "empty rcpt", "", "", "bad recipient: empty address", true },
        { "param space", "a@x", "BODY=8BITMIME ", "bad recipient: bad parameter", true },
        { "param double space", "a@x", "A  B", "bad recipient: bad parameter", true },
        { "param leading space", "a@x", " A", "bad recipient: bad parameter", true },
        { "param empty value", "a@x", "ENVID=", "bad sender: bad parameter", false },
        { "param equals in value", "a@x", "ENVID=a=b", "bad sender: bad parameter", false },
        { "param 8bit", "a@x", "ENVID=\xc3\xa9", "bad sender: bad parameter", false },
        { "param bad keyword", "a@x", "NO_TIFY=x", "bad recipient: bad parameter", true },
        { "param CR", "a@x", "NOTIFY=A\r", "bad recipient: bad parameter", true },
    };
    struct envelope e;
    struct errbuf err;
    size_t i;
    int rc;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        print_message("case: %s\n", cases[i].label);
        envelope_init(&e);
        if (cases[i].rcpt)
            rc = envelope_add_rcpt(&e, cases[i].addr, cases[i].params, &err);
        else
            rc = envelope_set_sender(&e, cases[i].addr, cases[i].params, &err);
        assert_int_equal(rc, -1);
        assert_string_equal(err.msg, cases[i].want);
        assert_int_equal(e.nrcpt, 0);
        assert_null(e.sender);
        envelope_clear(&e);
    }
}

static void
test_setters_lengths(void **state)
{
    char addr[ENVELOPE_ADDR_MAX + 2], params[ENVELOPE_PARAMS_MAX + 2];
    struct envelope e;
    struct errbuf err;

    (void)state;
    envelope_init(&e);
    memset(addr, 'a', sizeof(addr) - 1);
    addr[ENVELOPE_ADDR_MAX] = '\0';
    assert_int_equal(envelope_add_rcpt(&e, addr, NULL, &err), 0);
    addr[ENVELOPE_ADDR_MAX] = 'a';
    addr[ENVELOPE_ADDR_MAX + 1] = '\0';
    assert_int_equal(envelope_add_rcpt(&e, addr, NULL, &err), -1);
    assert_string_equal(err.msg, "bad recipient: address too long");
    memset(params, 'P', sizeof(params) - 1);
    params[ENVELOPE_PARAMS_MAX] = '\0';
    assert_int_equal(envelope_set_sender(&e, "s@x", params, &err), 0);
    params[ENVELOPE_PARAMS_MAX] = 'P';
    params[ENVELOPE_PARAMS_MAX + 1] = '\0';
    assert_int_equal(envelope_set_sender(&e, "s@x", params, &err), -1);
    assert_string_equal(err.msg, "bad sender: parameters too long");
    /* the longest fields still make lines the parser accepts */
    {
        struct envelope back;
        size_t len, hdr;
        char *text;

        (void)str_copy(e.customer, sizeof(e.customer), "acme");
        e.arrival = 1;
        addr[ENVELOPE_ADDR_MAX] = '\0';
        params[ENVELOPE_PARAMS_MAX] = '\0';
        assert_int_equal(envelope_add_rcpt(&e, addr, params, &err), 0);
        assert_int_equal(envelope_format(&e, &text, &len, &err), 0);
        envelope_init(&back);
        assert_int_equal(envelope_parse(&back, text, len, &hdr, &err), 0);
        assert_same(&e, &back);
        envelope_clear(&back);
        free(text);
    }
    envelope_clear(&e);
}

static void
test_sender_replaced(void **state)
{
    struct envelope e;
    struct errbuf err;

    (void)state;
    envelope_init(&e);
    assert_int_equal(envelope_set_sender(&e, "a@x", "BODY=7BIT", &err), 0);
    assert_int_equal(envelope_set_sender(&e, "b@x", NULL, &err), 0);
    assert_string_equal(e.sender, "b@x");
    assert_string_equal(e.mail_params, "");
    envelope_clear(&e);
}

static void
test_rcpt_limit(void **state)
{
    struct envelope e, back;
    struct errbuf err;
    char addr[32], *text, *more;
    size_t i, len, hdr;
    const char *extra = "X-Autoturn-Rcpt: <extra@x>\nX-Autoturn-End:\n";

    (void)state;
    envelope_init(&e);
    (void)str_copy(e.customer, sizeof(e.customer), "acme");
    e.arrival = 1;
    assert_int_equal(envelope_set_sender(&e, "", NULL, &err), 0);
    for (i = 0; i < ENVELOPE_RCPT_MAX; i++) {
        assert_int_equal(str_printf(addr, sizeof(addr), "r%zu@x", i), 0);
        assert_int_equal(envelope_add_rcpt(&e, addr, NULL, &err), 0);
    }
    assert_int_equal(envelope_add_rcpt(&e, "one-too-many@x", NULL, &err), -1);
    assert_string_equal(err.msg, "too many recipients (max 10000)");
    assert_int_equal(e.nrcpt, ENVELOPE_RCPT_MAX);
    assert_int_equal(envelope_format(&e, &text, &len, &err), 0);
    envelope_init(&back);
    assert_int_equal(envelope_parse(&back, text, len, &hdr, &err), 0);
    assert_int_equal(back.nrcpt, ENVELOPE_RCPT_MAX);
    assert_string_equal(back.rcpt[9999].addr, "r9999@x");
    envelope_clear(&back);
    /* 10,001 recipients on disk: rejected on the line that breaks the cap */
    len -= strlen("X-Autoturn-End:\n");
    more = malloc(len + strlen(extra) + 1);
    assert_non_null(more);
    memcpy(more, text, len);
    memcpy(more + len, extra, strlen(extra) + 1);
    envelope_init(&back);
    assert_int_equal(envelope_parse(&back, more, strlen(more), &hdr, &err), -1);
    assert_string_equal(err.msg, "line 10005: too many recipients (max 10000)");
    envelope_clear(&back);
    free(more);
    free(text);
    envelope_clear(&e);
}

static void
test_param_lookup(void **state)
{
    const char *p = "BODY=8BITMIME SMTPUTF8 ENVID=abc RET=HDRS";
    char val[16];

    (void)state;
    assert_int_equal(envelope_param(p, "body", val, sizeof(val)), 1);
    assert_string_equal(val, "8BITMIME");
    assert_int_equal(envelope_param(p, "SMTPUTF8", val, sizeof(val)), 1);
    assert_string_equal(val, "");
    assert_int_equal(envelope_param(p, "RET", val, sizeof(val)), 1);
    assert_string_equal(val, "HDRS");
    assert_int_equal(envelope_param(p, "SMTPUTF", val, sizeof(val)), 0);
    assert_int_equal(envelope_param(p, "NOTIFY", val, sizeof(val)), 0);
    assert_int_equal(envelope_param("", "BODY", val, sizeof(val)), 0);
    assert_int_equal(envelope_param(p, "BODY", val, 8), -1);
    assert_int_equal(envelope_param(p, "BODY", val, 9), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_min),
        cmocka_unit_test(test_parse_lenient_bits),
        cmocka_unit_test(test_parse_addr_rules),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_nul),
        cmocka_unit_test(test_parse_line_bounds),
        cmocka_unit_test(test_parse_line_after_end),
        cmocka_unit_test(test_parse_line_by_line),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_format_without_queue_id),
        cmocka_unit_test(test_format_needs),
        cmocka_unit_test(test_client_fields),
        cmocka_unit_test(test_setters_reject),
        cmocka_unit_test(test_setters_lengths),
        cmocka_unit_test(test_sender_replaced),
        cmocka_unit_test(test_rcpt_limit),
        cmocka_unit_test(test_param_lookup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
