/* SPDX-License-Identifier: ISC */
/*
 * custdb_compile.c - the customer table compiler: parses the source
 * (custsrc), checks across customers (a domain claimed twice, a name used
 * twice, the same network registered twice), and writes the tinycdb file
 * atomically (temp file beside the destination, fsync, rename, fsync of
 * the directory). A source with any error never replaces the table.
 * Owns the temp file until it is renamed or removed. Key layout:
 * custdb_keys.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cdb.h>

#include "custdb_compile.h"
#include "custdb_keys.h"
#include "custsrc.h"
#include "util.h"

#define CUSTDB_MSG_MAX   (CUSTSRC_LINE_MAX + 512)
#define SET_MIN_SLOTS    1024
#define ARENA_MAX        UINT32_MAX


/* The compiler's claim set: open addressing over keys kept in an arena
 * as [len][bytes][NUL]; each slot says which customer claimed the key. */
struct slot {
    uint32_t hash, owner, off;   /* off 0 = empty */
};

struct claims {
    struct slot *slots;
    size_t nslots, used;
    char *arena;
    size_t alen, acap;
};

struct owner {
    uint32_t name_off;           /* the "N"+name key in the arena */
    uint32_t line;
};

struct compiler {
    const char *src, *dst;
    custdb_error_fn *errfn;
    void *ctx;
    unsigned errors;
    bool fatal;
    struct claims set;
    struct owner *owners;
    size_t nowners;
    struct cdb_make cdbm;
    int fd;
    char tmp[PATH_MAX];
    uint64_t v4bits;             /* bit p: a /p network exists */
    uint8_t v6bits[17];
    struct custdb_compile_stats st;
};


static const uint8_t *
arena_key(const struct claims *s, uint32_t off, size_t *len)
{
    *len = (uint8_t)s->arena[off];
    return (const uint8_t *)s->arena + off + 1;
}

static int
arena_add(struct claims *s, const void *key, size_t len, uint32_t *off)
{
    size_t need = s->alen + len + 2;
    char *p;

    if (need > ARENA_MAX) {
        errno = ENOMEM;
        return -1;
    }
    if (need > s->acap) {
        size_t cap = s->acap ? s->acap * 2 : 65536;

        while (cap < need)
            cap *= 2;
        if ((p = realloc(s->arena, cap)) == NULL)
            return -1;
        s->arena = p;
        s->acap = cap;
    }
    if (s->alen == 0)
        s->alen = 1;     /* offset 0 means an empty slot */
    *off = (uint32_t)s->alen;
    s->arena[s->alen] = (char)len;
    memcpy(s->arena + s->alen + 1, key, len);
    s->arena[s->alen + 1 + len] = '\0';
    s->alen += len + 2;
    return 0;
}

static int
claims_grow(struct claims *s)
{
    size_t n = s->nslots ? s->nslots * 2 : SET_MIN_SLOTS, i, j;
    struct slot *t = x_calloc(n, sizeof(*t));

    if (t == NULL)
        return -1;
    for (i = 0; i < s->nslots; i++) {
        if (s->slots[i].off == 0)
            continue;
        for (j = s->slots[i].hash & (n - 1); t[j].off != 0; j = (j + 1) & (n - 1))
            continue;
        t[j] = s->slots[i];
    }
    x_free(s->slots);
    s->slots = t;
    s->nslots = n;
    return 0;
}

/* claims_put - 1: key is new and now owned by owner; 0: already owned
 * (*prev set); -1: ENOMEM. *off is where the key is kept. */
static int
claims_put(struct claims *s, const void *key, size_t len, uint32_t owner, uint32_t *prev,
           uint32_t *off)
{
    uint32_t h = custdb_hash_bytes(key, len);
    const uint8_t *k;
    size_t i, klen;

    if ((s->used + 1) * 10 > s->nslots * 7 && claims_grow(s) < 0)
        return -1;
    for (i = h & (s->nslots - 1); s->slots[i].off != 0; i = (i + 1) & (s->nslots - 1)) {
        if (s->slots[i].hash != h)
            continue;
        k = arena_key(s, s->slots[i].off, &klen);
        if (klen == len && memcmp(k, key, len) == 0) {
            *prev = s->slots[i].owner;
            *off = s->slots[i].off;
            return 0;
        }
    }
    if (arena_add(s, key, len, &s->slots[i].off) < 0)
        return -1;
    s->slots[i].hash = h;
    s->slots[i].owner = owner;
    *off = s->slots[i].off;
    s->used++;
    return 1;
}

static void
cerr(struct compiler *cp, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cerr - one error ("SRC:LINE: message"); a message that starts with
 * CUSTSRC_WARNING is passed on the same way but not counted */
static void
cerr(struct compiler *cp, unsigned line, const char *fmt, ...)
{
    char msg[CUSTDB_MSG_MAX], full[CUSTDB_MSG_MAX + PATH_MAX + 16];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);   /* a long message may be cut */
    va_end(ap);
    if (line > 0)
        (void)snprintf(full, sizeof(full), "%s:%u: %s", cp->src, line, msg);
    else
        (void)snprintf(full, sizeof(full), "%s: %s", cp->src, msg);
    if (strncmp(msg, CUSTSRC_WARNING, sizeof(CUSTSRC_WARNING) - 1) != 0)
        cp->errors++;
    if (cp->errfn != NULL)
        cp->errfn(cp->ctx, full);
}

static const char *
owner_name(const struct compiler *cp, uint32_t owner)
{
    size_t len;

    return (const char *)arena_key(&cp->set, cp->owners[owner].name_off, &len) + 1;
}

/* add_owner - register the customer's name; a second definition is an error. */
static int
add_owner(struct compiler *cp, const struct customer *c)
{
    uint8_t key[CUSTDB_KEY_MAX];
    size_t len = custdb_key_text(key, 'N', c->name);
    uint32_t prev = 0, off = 0, me = (uint32_t)cp->nowners;
    struct owner *o;
    int r;

    if (me >= SET_MIN_SLOTS && (me & (me - 1)) == 0) {
        if ((o = x_reallocarray(cp->owners, 2 * (size_t)me, sizeof(*o))) == NULL)
            return -1;
        cp->owners = o;
    }
    if ((r = claims_put(&cp->set, key, len, me, &prev, &off)) < 0)
        return -1;
    if (r == 0)
        cerr(cp, c->line, "customer '%s' already defined at line %u", c->name,
             cp->owners[prev].line);
    cp->owners[me].name_off = off;
    cp->owners[me].line = c->line;
    cp->nowners++;
    return 0;
}

/* claim - take key for the current customer; report a clash. 0, or -1 on ENOMEM. */
static int
claim(struct compiler *cp, const uint8_t *key, size_t len, const struct customer *c,
      const char *what)
{
    uint32_t prev = 0, off, me = (uint32_t)(cp->nowners - 1);
    int r = claims_put(&cp->set, key, len, me, &prev, &off);

    if (r < 0)
        return -1;
    if (r == 1)
        return 0;
    if (key[0] == 'D' || key[0] == 'S')
        cerr(cp, c->line, "domain '%s' already claimed by customer '%s' (line %u)", what,
             owner_name(cp, prev), cp->owners[prev].line);
    else
        cerr(cp, c->line, "network %s already registered by customer '%s' (line %u)", what,
             owner_name(cp, prev), cp->owners[prev].line);
    return 0;
}

static int
domain_key(uint8_t *key, const char *rule)
{
    if (rule[0] == '.')
        return (int)custdb_key_text(key, 'S', rule + 1);
    return (int)custdb_key_text(key, 'D', rule);
}

/* claim_all - every name, domain and network of c; 0, or -1 on ENOMEM. */
static int
claim_all(struct compiler *cp, const struct customer *c)
{
    char text[IPNET_TEXT_MAX];
    uint8_t key[CUSTDB_KEY_MAX];
    size_t i, len;

    if (add_owner(cp, c) < 0)
        return -1;
    for (i = 0; i < c->ndomains; i++) {
        len = (size_t)domain_key(key, c->domains[i]);
        if (claim(cp, key, len, c, c->domains[i]) < 0)
            return -1;
    }
    for (i = 0; i < c->naddrs; i++) {
        len = custdb_key_net(key, &c->addrs[i].addr, c->addrs[i].prefix);
        if (claim(cp, key, len, c, ipnet_format(&c->addrs[i], text, sizeof(text))) < 0)
            return -1;
    }
    return 0;
}

static int
put(struct compiler *cp, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (cp->fatal)
        return -1;
    if (cdb_make_add(&cp->cdbm, key, (unsigned)klen, val, (unsigned)vlen) < 0) {
        cerr(cp, 0, "cannot write %s: %s", cp->tmp, strerror(errno));
        cp->fatal = true;
        return -1;
    }
    return 0;
}

/* write_nets - the "4"/"6" records of c. */
static int
write_nets(struct compiler *cp, const struct customer *c)
{
    char val[CUSTOMER_NAME_MAX + 1 + IPNET_TEXT_MAX];
    size_t i, nlen = strlen(c->name) + 1, klen;
    uint8_t key[CUSTDB_KEY_MAX];

    memcpy(val, c->name, nlen);
    for (i = 0; i < c->naddrs; i++) {
        const struct ipnet *n = &c->addrs[i];

        ipnet_format(n, val + nlen, sizeof(val) - nlen);
        klen = custdb_key_net(key, &n->addr, n->prefix);
        if (put(cp, key, klen, val, nlen + strlen(val + nlen)) < 0)
            return -1;
        if (n->addr.family == AF_INET)
            cp->v4bits |= 1ull << n->prefix;
        else
            cp->v6bits[n->prefix / 8] |= (uint8_t)(1u << (n->prefix % 8));
    }
    cp->st.networks += c->naddrs;
    return 0;
}

static int
write_customer(struct compiler *cp, const struct customer *c)
{
    uint8_t key[CUSTDB_KEY_MAX];
    size_t i, len, nlen = strlen(c->name);
    char *rec = NULL;
    int rc = -1;

    if (customer_encode(c, &rec, &len) < 0) {
        if (errno == E2BIG)
            cerr(cp, c->line, "customer '%s': record too large (max %u bytes)", c->name,
                 CUSTOMER_RECORD_MAX);
        else
            cerr(cp, c->line, "out of memory");
        return errno == E2BIG ? 0 : -1;
    }
    if (put(cp, key, custdb_key_text(key, 'N', c->name), rec, len) < 0)
        goto out;
    for (i = 0; i < c->ndomains; i++)
        if (put(cp, key, (size_t)domain_key(key, c->domains[i]), c->name, nlen) < 0)
            goto out;
    if (write_nets(cp, c) < 0)
        goto out;
    cp->st.customers++;
    cp->st.domains += c->ndomains;
    rc = 0;
out:
    x_free(rec);
    return rc;
}

/* on_customer - custsrc callback: check across customers, then write. */
static int
on_customer(void *ctx, struct customer *c)
{
    struct compiler *cp = ctx;
    unsigned before = cp->errors;
    int rc = 0;

    if (claim_all(cp, c) < 0) {
        cerr(cp, c->line, "out of memory");
        cp->fatal = true;
        rc = -1;
    } else if (cp->errors == 0 && before == 0 && write_customer(cp, c) < 0) {
        cp->fatal = true;
        rc = -1;
    }
    customer_free(c);
    return rc;
}

static void
on_src_error(void *ctx, const char *file, unsigned line, const char *msg)
{
    struct compiler *cp = ctx;

    (void)file;
    cerr(cp, line, "%s", msg);
}

/* prefix_list - "32,24" from a bitmap, longest first. */
static void
prefix_list(char *buf, size_t size, const uint8_t *bits, unsigned max)
{
    size_t used = 0;
    unsigned p;

    buf[0] = '\0';
    for (p = max + 1; p-- > 0;) {
        if ((bits[p / 8] & (1u << (p % 8))) == 0)
            continue;
        if (str_printf(buf + used, size - used, "%s%u", used ? "," : "", p) < 0)
            return;
        used += strlen(buf + used);
    }
}

static int
write_meta(struct compiler *cp)
{
    char meta[CUSTDB_META_TEXT_MAX], v4[200], v6[600];
    uint8_t b4[5];
    unsigned i;

    for (i = 0; i < 5; i++)
        b4[i] = (uint8_t)(cp->v4bits >> (8 * i));
    prefix_list(v4, sizeof(v4), b4, 32);
    prefix_list(v6, sizeof(v6), cp->v6bits, 128);
    if (str_printf(meta, sizeof(meta), "%s customers=%zu v4=%s v6=%s", CUSTDB_META_VERSION,
                   cp->st.customers, v4, v6) < 0)
        return -1;
    return put(cp, CUSTDB_META_KEY, CUSTDB_META_KEY_LEN, meta, strlen(meta));
}

/* open_temp - create the temp file beside dst, exclusively. */
static int
open_temp(struct compiler *cp)
{
    static unsigned seq;
    unsigned try;

    for (try = 0; try < 100; try++) {
        if (str_printf(cp->tmp, sizeof(cp->tmp), "%s.tmp.%ld.%u", cp->dst, (long)getpid(),
                       __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED)) < 0) {
            errno = ENAMETOOLONG;
            break;
        }
        cp->fd = open(cp->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (cp->fd >= 0 || errno != EEXIST)
            break;
    }
    if (cp->fd < 0) {
        cerr(cp, 0, "cannot create a temporary file beside %s: %s", cp->dst, strerror(errno));
        cp->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

static const char *
dir_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return ".";
    if (slash == path)
        return "/";
    if ((size_t)(slash - path) >= size)
        return ".";
    memcpy(buf, path, (size_t)(slash - path));
    buf[slash - path] = '\0';
    return buf;
}

/* commit - finish the cdb, sync it, rename it over dst, sync the directory. */
static int
commit(struct compiler *cp)
{
    char dir[PATH_MAX];
    const char *what = "write";

    if (cdb_make_finish(&cp->cdbm) < 0)
        goto fail;
    what = "sync";
    if (fsync(cp->fd) < 0)
        goto fail;
    what = "close";
    if (close(cp->fd) < 0) {
        cp->fd = -1;
        goto fail;
    }
    cp->fd = -1;
    what = "rename";
    if (rename(cp->tmp, cp->dst) < 0)
        goto fail;
    cp->tmp[0] = '\0';
    if (fsync_dir(dir_of(cp->dst, dir, sizeof(dir))) < 0) {
        cerr(cp, 0, "cannot sync the directory of %s: %s", cp->dst, strerror(errno));
        return -1;
    }
    return 0;
fail:
    cerr(cp, 0, "cannot %s %s: %s", what, cp->tmp[0] ? cp->tmp : cp->dst, strerror(errno));
    return -1;
}

int
custdb_compile(const char *src, const char *dst, custdb_error_fn *errfn, void *ctx,
               struct custdb_compile_stats *stats)
{
    struct compiler *cp = x_calloc(1, sizeof(*cp));
    int rc = -1, parsed;

    if (cp == NULL) {
        if (errfn != NULL)
            errfn(ctx, "out of memory");
        return -1;
    }
    cp->src = src;
    cp->dst = dst;
    cp->errfn = errfn;
    cp->ctx = ctx;
    cp->fd = -1;
    if ((cp->owners = x_calloc(SET_MIN_SLOTS, sizeof(*cp->owners))) == NULL
        || claims_grow(&cp->set) < 0) {
        cerr(cp, 0, "out of memory");
        goto out;
    }
    if (open_temp(cp) < 0)
        goto out;
    if (cdb_make_start(&cp->cdbm, cp->fd) < 0) {
        cerr(cp, 0, "cannot write %s: %s", cp->tmp, strerror(errno));
        (void)cdb_make_finish(&cp->cdbm);
        goto out;
    }
    parsed = custsrc_parse_file(src, on_customer, on_src_error, cp);
    if (parsed != 0 || cp->errors > 0 || cp->fatal || write_meta(cp) < 0) {
        (void)cdb_make_finish(&cp->cdbm);   /* frees its memory; the file goes */
        goto out;
    }
    rc = commit(cp);
out:
    if (cp->fd >= 0)
        close(cp->fd);
    if (cp->tmp[0] != '\0')
        (void)unlink(cp->tmp);
    if (rc == 0 && stats != NULL)
        *stats = cp->st;
    x_free(cp->set.slots);
    x_free(cp->set.arena);
    x_free(cp->owners);
    x_free(cp);
    return rc;
}

