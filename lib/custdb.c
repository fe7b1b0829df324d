/*
 * custdb.c - the compiled customer table (tinycdb): the compiler, which
 * checks across customers and replaces the table atomically, and the
 * thread-safe reader, which switches to a new table file by itself.
 * Owns the table file (written only through a temp file + rename) and,
 * in each reader, the open snapshot of it.
 *
 * Key layout (every value written by this file only):
 *   "\0autoturn"            "v1 customers=N v4=L v6=L" (L: prefix lengths
 *                           present, longest first, comma-separated)
 *   "N" name                customer record (customer_encode)
 *   "D" domain              name                (exact domain)
 *   "S" domain              name                (".domain": subdomains only)
 *   "4" H prefix addr[4]    name "\0" network   (address masked to prefix;
 *   "6" H prefix addr[16]   name "\0" network    H: 4 hash bytes, see key_net)
 * A domain lookup probes "D" then "S" for each parent (one probe per
 * label); an address lookup probes once per prefix length present.
 *
 * SECURITY: the table is written by autoturnctl, but every value read back
 * is bounds-checked (cdb_get) and decoded strictly: a damaged table gives
 * a lookup error, never "not found" or a wrong customer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cdb.h>

#include "custdb.h"
#include "custsrc.h"
#include "log.h"
#include "util.h"

#define META_KEY         "\0autoturn"
#define META_KEY_LEN     9
#define META_VERSION     "v1"
#define META_TEXT_MAX    1024
#define KEY_MAX          (1 + DOMAIN_MAX + 2)   /* >= 1 + NET_KEY_MIX + 1 + 16 */
#define CUSTDB_MSG_MAX   (CUSTSRC_LINE_MAX + 512)
#define CHECK_DEFAULT_MS 1000
#define SET_MIN_SLOTS    1024
#define ARENA_MAX        UINT32_MAX
#define NET_KEY_MIX      4        /* hash bytes in front of a network key */

/* --- keys --- */

static uint32_t hash_bytes(const void *p, size_t n);

/* key_net - kind, NET_KEY_MIX bytes of a strong hash, prefix, masked
 * address. cdb's hash (djb) spreads short binary keys that differ only in
 * their last bytes very badly (16,896 distinct values for 1M consecutive
 * IPv4 /32 keys), so well-mixed bytes go first. */
static size_t
key_net(uint8_t *key, const struct ipaddr *a, unsigned prefix)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    uint8_t *body = key + 1 + NET_KEY_MIX;
    struct ipaddr m = *a;
    uint32_t h;

    ipaddr_mask(&m, prefix);
    key[0] = a->family == AF_INET ? '4' : '6';
    body[0] = (uint8_t)prefix;
    memcpy(body + 1, m.bytes, n);
    h = hash_bytes(key, 1) ^ hash_bytes(body, n + 1);
    memcpy(key + 1, &h, NET_KEY_MIX);
    return 1 + NET_KEY_MIX + 1 + n;
}

static size_t
key_text(uint8_t *key, char kind, const char *text)
{
    size_t n = strlen(text);

    key[0] = (uint8_t)kind;
    memcpy(key + 1, text, n);
    return n + 1;
}

/* ===================== compiler ===================== */

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

static uint32_t
hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

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
    uint32_t h = hash_bytes(key, len);
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
    uint8_t key[KEY_MAX];
    size_t len = key_text(key, 'N', c->name);
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
    return (int)(rule[0] == '.' ? key_text(key, 'S', rule + 1) : key_text(key, 'D', rule));
}

/* claim_all - every name, domain and network of c; 0, or -1 on ENOMEM. */
static int
claim_all(struct compiler *cp, const struct customer *c)
{
    char text[IPNET_TEXT_MAX];
    uint8_t key[KEY_MAX];
    size_t i, len;

    if (add_owner(cp, c) < 0)
        return -1;
    for (i = 0; i < c->ndomains; i++) {
        len = (size_t)domain_key(key, c->domains[i]);
        if (claim(cp, key, len, c, c->domains[i]) < 0)
            return -1;
    }
    for (i = 0; i < c->naddrs; i++) {
        len = key_net(key, &c->addrs[i].addr, c->addrs[i].prefix);
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
    uint8_t key[KEY_MAX];

    memcpy(val, c->name, nlen);
    for (i = 0; i < c->naddrs; i++) {
        const struct ipnet *n = &c->addrs[i];

        ipnet_format(n, val + nlen, sizeof(val) - nlen);
        klen = key_net(key, &n->addr, n->prefix);
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
    uint8_t key[KEY_MAX];
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
    if (put(cp, key, key_text(key, 'N', c->name), rec, len) < 0)
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
    char meta[META_TEXT_MAX], v4[200], v6[600];
    uint8_t b4[5];
    unsigned i;

    for (i = 0; i < 5; i++)
        b4[i] = (uint8_t)(cp->v4bits >> (8 * i));
    prefix_list(v4, sizeof(v4), b4, 32);
    prefix_list(v6, sizeof(v6), cp->v6bits, 128);
    if (str_printf(meta, sizeof(meta), "%s customers=%zu v4=%s v6=%s", META_VERSION,
                   cp->st.customers, v4, v6) < 0)
        return -1;
    return put(cp, META_KEY, META_KEY_LEN, meta, strlen(meta));
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

/* ===================== reader ===================== */

/* A snapshot: one open table file, shared by lookups until replaced. */
struct snap {
    unsigned refs;
    int fd;
    struct cdb cdb;
    struct stat st;
    long count;
    unsigned nv4, nv6;
    uint8_t v4[33], v6[129];     /* prefix lengths present, longest first */
};

struct custdb {
    char *path;
    pthread_mutex_t lock;
    unsigned interval_ms;
    bool checked;
    struct timespec last;
    struct snap *cur;
    char last_err[ERRBUF_SIZE];
    bool refused;               /* refused_st is a file we refused (logged once) */
    struct stat refused_st;
};

static void
snap_unref(struct snap *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    cdb_free(&s->cdb);
    close(s->fd);
    x_free(s);
}

/* parse_prefixes - "32,24" (strictly descending, each <= max) or "". */
static int
parse_prefixes(const char *s, unsigned max, uint8_t *out, unsigned *n)
{
    unsigned long v, last = max + 1ul;
    char *end;

    *n = 0;
    while (*s != '\0') {
        if (*s < '0' || *s > '9')
            return -1;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || v >= last || (*end != ',' && *end != '\0'))
            return -1;
        out[(*n)++] = (uint8_t)v;
        last = v;
        s = *end == ',' ? end + 1 : end;
        if (*end == ',' && *s == '\0')
            return -1;
    }
    return 0;
}

/* parse_meta - the meta record into s; -1 with the reason. */
static int
parse_meta(struct snap *s, const char *text, const char **why)
{
    char buf[META_TEXT_MAX], *v4, *v6, *end;
    unsigned long n;

    *why = "bad meta record";
    if (str_copy(buf, sizeof(buf), text) < 0 || strncmp(buf, META_VERSION " ", 3) != 0) {
        *why = NULL;
        return -1;
    }
    if (strncmp(buf + 3, "customers=", 10) != 0 || buf[13] < '0' || buf[13] > '9')
        return -1;
    errno = 0;
    n = strtoul(buf + 13, &end, 10);
    if (errno != 0 || n > LONG_MAX || strncmp(end, " v4=", 4) != 0)
        return -1;
    v4 = end + 4;
    if ((v6 = strstr(v4, " v6=")) == NULL)
        return -1;
    *v6 = '\0';
    v6 += 4;
    if (parse_prefixes(v4, 32, s->v4, &s->nv4) < 0 || parse_prefixes(v6, 128, s->v6, &s->nv6) < 0)
        return -1;
    s->count = (long)n;
    return 0;
}

/* check_meta - the file is a table of ours, of this version. */
static int
check_meta(struct snap *s, const char *path, char *msg, size_t size)
{
    char text[META_TEXT_MAX];
    struct cdb c = s->cdb;
    const void *data;
    const char *why = NULL;
    int r = cdb_find(&c, META_KEY, META_KEY_LEN);

    if (r < 0) {
        (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path,
                       errno == EPROTO ? "bad cdb structure" : strerror(errno));
        return -1;
    }
    data = r == 0 ? NULL : cdb_getdata(&c);
    if (r == 1 && (data == NULL || cdb_datalen(&c) >= sizeof(text))) {
        (void)snprintf(msg, size, "customer table %s: corrupt (bad meta record)", path);
        return -1;
    }
    if (r == 1) {
        memcpy(text, data, cdb_datalen(&c));
        text[cdb_datalen(&c)] = '\0';
    }
    if (r == 0 || memchr(text, '\0', cdb_datalen(&c)) != NULL || parse_meta(s, text, &why) < 0) {
        if (r == 0 || why == NULL)
            (void)snprintf(msg, size, "customer table %s: not an autoturn customer table", path);
        else
            (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path, why);
        return -1;
    }
    return 0;
}

/* snap_open - open and validate the table file; NULL with msg set. */
static struct snap *
snap_open(const char *path, char *msg, size_t size)
{
    struct snap *s = x_calloc(1, sizeof(*s));

    if (s == NULL) {
        (void)snprintf(msg, size, "customer table %s: %s", path, strerror(errno));
        return NULL;
    }
    s->refs = 1;
    if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(s->fd, &s->st) < 0) {
        (void)snprintf(msg, size, "customer table %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(s->st.st_mode)) {
        (void)snprintf(msg, size, "customer table %s: not a regular file", path);
        goto fail;
    }
    if (cdb_init(&s->cdb, s->fd) < 0) {
        (void)snprintf(msg, size, "customer table %s: corrupt (%s)", path,
                       errno == EPROTO ? "not a cdb file, or truncated" : strerror(errno));
        goto fail;
    }
    if (check_meta(s, path, msg, size) < 0) {
        cdb_free(&s->cdb);
        goto fail;
    }
    return s;
fail:
    if (s->fd >= 0)
        close(s->fd);
    x_free(s);
    return NULL;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
        && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* refresh_locked - switch to a new file if there is a good one. */
static void
refresh_locked(struct custdb *db)
{
    char msg[ERRBUF_SIZE];
    struct snap *s;
    struct stat st;

    clock_gettime(CLOCK_MONOTONIC, &db->last);
    db->checked = true;
    if (stat(db->path, &st) < 0) {
        (void)snprintf(db->last_err, sizeof(db->last_err), "customer table %s: %s", db->path,
                       strerror(errno));
        return;
    }
    if (db->cur != NULL && same_file(&st, &db->cur->st))
        return;
    if ((s = snap_open(db->path, msg, sizeof(msg))) == NULL) {
        memcpy(db->last_err, msg, sizeof(msg));
        /* The reader decides to keep the old table: say so once per file. */
        if (!db->refused || !same_file(&st, &db->refused_st))
            log_warnx("%s; %s", msg, db->cur ? "keeping the previous table" : "no table loaded");
        db->refused = true;
        db->refused_st = st;
        return;
    }
    if (db->cur != NULL)
        log_info("customer table %s: switched to the new table", db->path);
    snap_unref(db->cur);
    db->cur = s;
    db->last_err[0] = '\0';
}

static bool
check_due(const struct custdb *db)
{
    struct timespec now;
    long long ms;

    if (!db->checked || db->interval_ms == 0)
        return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (now.tv_sec - db->last.tv_sec) * 1000LL + (now.tv_nsec - db->last.tv_nsec) / 1000000;
    return ms >= (long long)db->interval_ms;
}

/* acquire - the current snapshot (refreshed if due), referenced; NULL + err. */
static struct snap *
acquire(struct custdb *db, bool force, struct errbuf *err)
{
    struct snap *s;

    pthread_mutex_lock(&db->lock);
    if (force || check_due(db))
        refresh_locked(db);
    if ((s = db->cur) != NULL)
        s->refs++;
    else
        errbuf_set(err, "%s", db->last_err);
    pthread_mutex_unlock(&db->lock);
    return s;
}

static void
release(struct custdb *db, struct snap *s)
{
    pthread_mutex_lock(&db->lock);
    snap_unref(s);
    pthread_mutex_unlock(&db->lock);
}

struct custdb *
custdb_new(const char *path)
{
    struct custdb *db = x_calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    if ((db->path = x_strdup(path)) == NULL || pthread_mutex_init(&db->lock, NULL) != 0) {
        x_free(db->path);
        x_free(db);
        return NULL;
    }
    db->interval_ms = CHECK_DEFAULT_MS;
    (void)str_printf(db->last_err, sizeof(db->last_err), "customer table %s: not loaded", path);
    return db;
}

void
custdb_free(struct custdb *db)
{
    if (db == NULL)
        return;
    snap_unref(db->cur);
    pthread_mutex_destroy(&db->lock);
    x_free(db->path);
    x_free(db);
}

void
custdb_set_check_interval(struct custdb *db, unsigned ms)
{
    pthread_mutex_lock(&db->lock);
    db->interval_ms = ms;
    pthread_mutex_unlock(&db->lock);
}

int
custdb_refresh(struct custdb *db, struct errbuf *err)
{
    struct snap *s = acquire(db, true, err);

    if (s == NULL)
        return -1;
    release(db, s);
    return 0;
}

/* --- lookups on one snapshot --- */

/* cdb_error - tinycdb says EPROTO for a damaged structure. */
static const char *
cdb_error(int e)
{
    return e == EPROTO ? "bad cdb structure" : strerror(e);
}

static int
corrupt(struct custdb *db, struct errbuf *err, const char *why)
{
    errbuf_set(err, "customer table %s: corrupt (%s)", db->path, why);
    return -1;
}

/* probe - 1 with the value, 0, or -1 (corrupt). */
static int
probe(struct custdb *db, struct snap *s, const void *key, size_t klen, const char **val,
      size_t *vlen, struct errbuf *err)
{
    struct cdb c = s->cdb;
    int r = cdb_find(&c, key, (unsigned)klen);

    if (r < 0)
        return corrupt(db, err, cdb_error(errno));
    if (r == 0)
        return 0;
    if ((*val = cdb_getdata(&c)) == NULL)
        return corrupt(db, err, "record out of bounds");
    *vlen = cdb_datalen(&c);
    return 1;
}

/* record_is_named - the encoded record starts with "name=NAME\n"
 * (customer_encode writes the name first). */
static bool
record_is_named(const char *val, size_t vlen, const char *name)
{
    size_t n = strlen(name);

    return vlen > n + 5 && memcmp(val, "name=", 5) == 0 && memcmp(val + 5, name, n) == 0 &&
           val[5 + n] == '\n';
}

static int
by_name(struct custdb *db, struct snap *s, const char *name, struct customer **c_r,
        struct errbuf *err)
{
    uint8_t key[KEY_MAX];
    struct customer *c;
    struct errbuf why;
    const char *val;
    size_t vlen;
    int r;

    if (!customer_name_valid(name, NULL))
        return 0;
    if ((r = probe(db, s, key, key_text(key, 'N', name), &val, &vlen, err)) <= 0)
        return r;
    if (c_r == NULL)        /* existence only: the record must at least carry the name */
        return record_is_named(val, vlen, name) ? 1
                                                : corrupt(db, err, "record under the wrong name");
    if (customer_decode(val, vlen, &c, &why) < 0) {
        errbuf_set(err, "customer table %s: corrupt (customer '%s': %s)", db->path, name,
                   why.msg);
        return -1;
    }
    if (strcmp(c->name, name) != 0) {
        customer_free(c);
        return corrupt(db, err, "record under the wrong name");
    }
    *c_r = c;
    return 1;
}

/* resolve - a name found under a domain or network key, to its record. */
static int
resolve(struct custdb *db, struct snap *s, const char *val, size_t vlen, struct customer **c_r,
        struct errbuf *err)
{
    char name[CUSTOMER_NAME_MAX + 1];
    int r;

    if (vlen == 0 || vlen > CUSTOMER_NAME_MAX)
        return corrupt(db, err, "bad customer name in an index record");
    memcpy(name, val, vlen);
    name[vlen] = '\0';
    if (!customer_name_valid(name, NULL))
        return corrupt(db, err, "bad customer name in an index record");
    if ((r = by_name(db, s, name, c_r, err)) == 0)
        return corrupt(db, err, "index record for a missing customer");
    return r;
}

static int
set_rule(struct custdb_match *m, const char *dot, const char *rule)
{
    if (m != NULL)
        (void)str_printf(m->rule, sizeof(m->rule), "%s%s", dot, rule);
    return 0;
}

static int
by_domain(struct custdb *db, struct snap *s, const char *d, struct customer **c_r,
          struct custdb_match *m, struct errbuf *err)
{
    uint8_t key[KEY_MAX];
    const char *val, *p;
    size_t vlen;
    int r;

    if ((r = probe(db, s, key, key_text(key, 'D', d), &val, &vlen, err)) != 0) {
        if (r > 0 && (r = resolve(db, s, val, vlen, c_r, err)) > 0)
            set_rule(m, "", d);
        return r;
    }
    for (p = strchr(d, '.'); p != NULL; p = strchr(p + 1, '.')) {
        if ((r = probe(db, s, key, key_text(key, 'S', p + 1), &val, &vlen, err)) == 0)
            continue;
        if (r > 0 && (r = resolve(db, s, val, vlen, c_r, err)) > 0)
            set_rule(m, ".", p + 1);
        return r;
    }
    return 0;
}

static int
by_addr(struct custdb *db, struct snap *s, const struct ipaddr *a, struct customer **c_r,
        struct custdb_match *m, struct errbuf *err)
{
    bool v4 = a->family == AF_INET;
    const uint8_t *list = v4 ? s->v4 : s->v6;
    unsigned i, n = v4 ? s->nv4 : s->nv6;
    uint8_t key[KEY_MAX];
    const char *val, *nul;
    size_t vlen;
    int r;

    for (i = 0; i < n; i++) {
        if ((r = probe(db, s, key, key_net(key, a, list[i]), &val, &vlen, err)) == 0)
            continue;
        if (r < 0)
            return r;
        if ((nul = memchr(val, '\0', vlen)) == NULL || vlen - (size_t)(nul - val) - 1 == 0
            || vlen - (size_t)(nul - val) - 1 >= IPNET_TEXT_MAX)
            return corrupt(db, err, "bad network record");
        if ((r = resolve(db, s, val, (size_t)(nul - val), c_r, err)) > 0 && m != NULL) {
            memcpy(m->rule, nul + 1, vlen - (size_t)(nul - val) - 1);
            m->rule[vlen - (size_t)(nul - val) - 1] = '\0';
        }
        return r;
    }
    return 0;
}

/* --- public lookups --- */

int
custdb_lookup_name(struct custdb *db, const char *name, struct customer **c_r,
                   struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    int r;

    if (s == NULL)
        return -1;
    r = by_name(db, s, name, c_r, err);
    release(db, s);
    return r;
}

int
custdb_lookup_domain(struct custdb *db, const char *domain, struct customer **c_r,
                     struct custdb_match *m, struct errbuf *err)
{
    char d[DOMAIN_MAX + 1];
    struct snap *s = acquire(db, false, err);
    const char *why;
    int r = 0;

    if (s == NULL)
        return -1;
    if (domain_normalise(domain, d, sizeof(d), &why) == 0)
        r = by_domain(db, s, d, c_r, m, err);
    release(db, s);
    return r;
}

int
custdb_lookup_addr(struct custdb *db, const struct ipaddr *a, struct customer **c_r,
                   struct custdb_match *m, struct errbuf *err)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct snap *s = acquire(db, false, err);
    struct ipaddr v = *a;
    int r;

    if (s == NULL)
        return -1;
    if (v.family == AF_INET6 && memcmp(v.bytes, mapped, sizeof(mapped)) == 0) {
        v.family = AF_INET;
        memmove(v.bytes, v.bytes + 12, 4);
        memset(v.bytes + 4, 0, 12);
    }
    r = v.family == AF_INET || v.family == AF_INET6 ? by_addr(db, s, &v, c_r, m, err) : 0;
    release(db, s);
    return r;
}

static int
each(struct custdb *db, struct snap *s, custdb_foreach_fn *fn, void *ctx, struct errbuf *err)
{
    struct cdb c = s->cdb;
    struct customer *cust;
    struct errbuf why;
    const char *key, *val;
    unsigned pos;
    int r;

    cdb_seqinit(&pos, &c);
    while ((r = cdb_seqnext(&pos, &c)) > 0) {
        if ((key = cdb_getkey(&c)) == NULL || (val = cdb_getdata(&c)) == NULL)
            return corrupt(db, err, "record out of bounds");
        if (cdb_keylen(&c) < 2 || key[0] != 'N')
            continue;
        if (customer_decode(val, cdb_datalen(&c), &cust, &why) < 0) {
            errbuf_set(err, "customer table %s: corrupt (%s)", db->path, why.msg);
            return -1;
        }
        r = fn(ctx, cust);
        customer_free(cust);
        if (r != 0)
            return r;
    }
    return r < 0 ? corrupt(db, err, cdb_error(errno)) : 0;
}

int
custdb_foreach(struct custdb *db, custdb_foreach_fn *fn, void *ctx, struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    int r;

    if (s == NULL)
        return -1;
    r = each(db, s, fn, ctx, err);
    release(db, s);
    return r;
}

long
custdb_count(struct custdb *db, struct errbuf *err)
{
    struct snap *s = acquire(db, false, err);
    long n;

    if (s == NULL)
        return -1;
    n = s->count;
    release(db, s);
    return n;
}
