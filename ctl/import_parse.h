/* SPDX-License-Identifier: ISC */
/*
 * import_parse.h - the line formats of the recipes "autoturnctl import"
 * reads, as pure functions on one line (no I/O): qmail's
 * control/virtualdomains, qsmtpd's control/passwords, ZMailer's
 * db/routes, tcpserver rules (tcp.smtp, as tcprules(1) reads them, and
 * vpopmail's open-smtp, which is the same rule plus a TAB and the login
 * time), and the two lines qmail-local writes at the top of every
 * maildir message (as serialmail's serialsmtp reads them).
 *
 * Line functions take a NUL-terminated line without its LF, change it in
 * place and return pointers into it: 1 = an entry, 0 = nothing to do (an
 * empty line or a comment), -1 = malformed (*why_r: static text).
 *
 * SECURITY: the files come from the old system and are not trusted to
 * be well formed; every function bounds what it reads and checks every
 * field it returns. Fuzzed by tests/fuzz/fuzz_import.c.
 */
#ifndef AUTOTURN_CTL_IMPORT_PARSE_H
#define AUTOTURN_CTL_IMPORT_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "util.h"

#define IMP_LINE_MAX   4096      /* bytes per line of a recipe's file, without LF */
#define IMP_HEAD_MAX   2048      /* bytes of each qmail-local line, with LF */
#define IMP_NETS_MAX   32        /* networks one tcprules address can stand for */

/* imp_parse_vdomain - "DOMAIN:PREFIX" (qmail-send: trailing blanks
 * allowed, '#' starts a comment line). DOMAIN may be empty (qmail's
 * catch-all), ".dom" (subdomains) or "user@dom" (one address); the
 * caller classifies it. */
int imp_parse_vdomain(char *line, char **domain_r, char **prefix_r, const char **why_r);

/* imp_parse_password - "DOMAIN:USER:PASSWORD:MAILDIR"; the password is
 * everything between the second and the last ':' (so it may hold ':'). */
int imp_parse_password(char *line, char **domain_r, char **user_r, char **password_r,
                       char **maildir_r, const char **why_r);

/* imp_parse_route - "KEY<blanks>CHANNEL!HOST[!HOST...]" (ZMailer
 * relation file: '#' comment lines); *hosts_r is the text after the
 * first '!'. */
int imp_parse_route(char *line, char **key_r, char **channel_r, char **hosts_r,
                    const char **why_r);

/* A tcpserver rule: ADDRESS:allow|deny[,VAR=qVALUEq ...] where q is any
 * character (tcprules takes the first ':' that is followed by "allow" or
 * "deny", so IPv6 addresses keep their colons). */
struct imp_tcprule {
    char *addr;               /* "" is the default rule */
    bool allow;
    bool relayclient;         /* RELAYCLIENT is set */
    const char *relay_value;  /* its value ("" normally) */
};

/* imp_parse_tcprule - one line of tcp.smtp. */
int imp_parse_tcprule(char *line, struct imp_tcprule *r, const char **why_r);

/* imp_parse_open_smtp - one line of vpopmail's open-smtp: a rule, a TAB
 * and the time of the login (*time_r: the text, not yet checked). */
int imp_parse_open_smtp(char *line, struct imp_tcprule *r, char **time_r, const char **why_r);

/* imp_tcprule_nets - the networks a rule's address covers for tcpserver:
 * "1.2.3.4" (exact), "1.2.3." "1.2." "1." (prefixes), "1.2.3.4-10" or
 * "1.2.3-5." (a range in the last part, as tcprules expands it), or an
 * IPv6 address. Host-name (=...), TCPREMOTEINFO (user@...) and default
 * rules have no networks: -1 with the reason. */
int imp_tcprule_nets(const char *addr, struct ipnet *v, size_t max, size_t *n_r,
                     const char **why_r);

/* imp_parse_head - the first two lines of a message that qmail-local
 * delivered into a maildir: "Return-Path: <SENDER>" and "Delivered-To:
 * PREFIXRECIPIENT" (LF or CR LF line ends). buf is the start of the file.
 * On success the sender ("" = null sender) and the recipient without
 * prefix are copied into sender/rcpt (size bytes each), *skip_r is the
 * length of the two lines and *crlf_r tells whether they end in CR LF.
 * Errors go to err (the file name is not part of the text). */
int imp_parse_head(const char *buf, size_t len, const char *prefix, char *sender, char *rcpt,
                   size_t size, size_t *skip_r, bool *crlf_r, struct errbuf *err);

#endif
