/* SPDX-License-Identifier: ISC */
/*
 * hold.c - the diversion of one message: its held recipients grouped by
 * customer, one spool writer per customer fed as the message streams in,
 * and the all-or-none commit at end of message (a copy already committed
 * is deleted again when a later one fails, so the MTA's tempfail leaves
 * no held copy behind and the sender's retry cannot duplicate it).
 *
 * Owns the writers' temporary files until they are committed or aborted.
 * Memory is bounded by the number of held recipients (capped by
 * milter.max_recipients at RCPT), never by the message size.
 */
#include <errno.h>
#include <time.h>

#include "log.h"
#include "milter.h"
#include "util.h"

struct hold_cust {
    char name[CUSTOMER_NAME_MAX + 1];
    struct envelope env;         /* this customer's recipients */
    char **raw;                  /* recipients as the MTA gave them */
    size_t nraw;
    size_t raw_alloc;
    struct spool_writer *w;      /* open between hold_open and commit */
    bool committed;
    char id[SPOOL_ID_MAX];
};

struct hold {
    struct hold_cust *v;
    size_t n;
    size_t alloc;
    size_t nrcpt;                /* held recipients, duplicates included */
    bool open;
    uint64_t size;               /* message bytes written */
};

struct hold *
hold_new(void)
{
    return x_calloc(1, sizeof(struct hold));
}

/* cust_clear - abort the writer and free one customer's part. */
static void
cust_clear(struct hold_cust *c)
{
    size_t i;

    spool_writer_abort(c->w);
    c->w = NULL;
    envelope_clear(&c->env);
    for (i = 0; i < c->nraw; i++)
        x_free(c->raw[i]);
    x_free(c->raw);
    c->raw = NULL;
    c->nraw = c->raw_alloc = 0;
}

void
hold_free(struct hold *h)
{
    size_t i;

    if (h == NULL)
        return;
    for (i = 0; i < h->n; i++)
        cust_clear(&h->v[i]);
    x_free(h->v);
    x_free(h);
}

size_t
hold_count(const struct hold *h)
{
    return h->nrcpt;
}

size_t
hold_ncustomers(const struct hold *h)
{
    return h->n;
}

bool
hold_is_open(const struct hold *h)
{
    return h->open;
}

/* find - the customer's slot, or NULL. */
static struct hold_cust *
find(const struct hold *h, const char *customer)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        if (strcmp(h->v[i].name, customer) == 0)
            return &h->v[i];
    return NULL;
}

bool
hold_has_customer(const struct hold *h, const char *customer)
{
    return find(h, customer) != NULL;
}

/* find_or_add - the customer's slot, created if new. */
static struct hold_cust *
find_or_add(struct hold *h, const char *customer, struct errbuf *err)
{
    struct hold_cust *c = find(h, customer), *v;

    if (c != NULL)
        return c;
    if (h->n == h->alloc) {
        v = x_reallocarray(h->v, h->alloc ? h->alloc * 2 : 4, sizeof(*v));
        if (v == NULL) {
            errbuf_set(err, "out of memory");
            return NULL;
        }
        h->v = v;
        h->alloc = h->alloc ? h->alloc * 2 : 4;
    }
    c = &h->v[h->n];
    memset(c, 0, sizeof(*c));
    envelope_init(&c->env);
    if (str_copy(c->name, sizeof(c->name), customer) < 0) {
        errbuf_set(err, "customer name too long");
        return NULL;
    }
    h->n++;
    return c;
}

/* raw_add - remember the MTA's form of a recipient once. */
static int
raw_add(struct hold_cust *c, const char *raw, struct errbuf *err)
{
    char **v;
    size_t i;

    for (i = 0; i < c->nraw; i++)
        if (strcmp(c->raw[i], raw) == 0)
            return 0;
    if (c->nraw == c->raw_alloc) {
        v = x_reallocarray(c->raw, c->raw_alloc ? c->raw_alloc * 2 : 4, sizeof(*v));
        if (v == NULL)
            goto nomem;
        c->raw = v;
        c->raw_alloc = c->raw_alloc ? c->raw_alloc * 2 : 4;
    }
    if ((c->raw[c->nraw] = x_strdup(raw)) == NULL)
        goto nomem;
    c->nraw++;
    return 0;
nomem:
    errbuf_set(err, "out of memory");
    return -1;
}

/* env_has - is addr already among the customer's recipients? */
static bool
env_has(const struct envelope *e, const char *addr)
{
    size_t i;

    for (i = 0; i < e->nrcpt; i++)
        if (strcmp(e->rcpt[i].addr, addr) == 0)
            return true;
    return false;
}

int
hold_add(struct hold *h, const char *customer, const char *addr, const char *params,
         const char *raw, struct errbuf *err)
{
    struct hold_cust *c;

    if (h->open) {
        errbuf_set(err, "recipient after the message started");
        return -1;
    }
    if ((c = find_or_add(h, customer, err)) == NULL)
        return -1;
    if (!env_has(&c->env, addr) && envelope_add_rcpt(&c->env, addr, params, err) < 0)
        return -1;
    if (raw_add(c, raw, err) < 0)
        return -1;
    h->nrcpt++;
    return 0;
}

/* cust_open - fill the envelope and open the writer for one customer. */
static int
cust_open(struct hold_cust *c, struct spool *sp, const char *sender, const char *mail_params,
          const char *queue_id, const struct hold_client *client, time_t now,
          struct errbuf *err)
{
    struct errbuf e2;

    (void)str_copy(c->env.customer, sizeof(c->env.customer), c->name);
    c->env.arrival = now;
    if (str_copy(c->env.queue_id, sizeof(c->env.queue_id), queue_id) < 0)
        c->env.queue_id[0] = '\0';
    if (client != NULL)
        envelope_set_client(&c->env, client->addr, client->name, client->helo);
    if (envelope_set_sender(&c->env, sender, mail_params, &e2) < 0 ||
        spool_writer_open(sp, &c->env, &c->w, &e2) < 0) {
        errbuf_set(err, "customer=%s: %s", c->name, e2.msg);
        return -1;
    }
    return 0;
}

int
hold_open(struct hold *h, struct spool *sp, const char *sender, const char *mail_params,
          const char *queue_id, const struct hold_client *client, struct errbuf *err)
{
    time_t now = time(NULL);
    size_t i;

    if (h->open)
        return 0;
    h->open = true;
    for (i = 0; i < h->n; i++) {
        if (cust_open(&h->v[i], sp, sender, mail_params, queue_id, client, now, err) < 0)
            return -1;
    }
    return 0;
}

int
hold_write(struct hold *h, const void *buf, size_t len, struct errbuf *err)
{
    struct errbuf e2;
    size_t i;

    for (i = 0; i < h->n; i++) {
        if (h->v[i].w == NULL) {
            errbuf_set(err, "customer=%s: spool file not open", h->v[i].name);
            return -1;
        }
        if (spool_writer_write(h->v[i].w, buf, len, &e2) < 0) {
            errbuf_set(err, "customer=%s: %s", h->v[i].name, e2.msg);
            return -1;
        }
    }
    h->size += len;
    return 0;
}

int
hold_commit(struct hold *h, struct spool *sp, struct errbuf *err)
{
    struct hold_cust *c;
    struct errbuf e2;
    size_t i;

    for (i = 0; i < h->n; i++) {
        c = &h->v[i];
        if (c->w == NULL) {
            errbuf_set(err, "customer=%s: spool file not open", c->name);
            goto fail;
        }
        if (spool_writer_commit(c->w, c->id, &e2) < 0) {
            c->w = NULL;                       /* commit freed it */
            errbuf_set(err, "customer=%s: %s", c->name, e2.msg);
            goto fail;
        }
        c->w = NULL;
        c->committed = true;
    }
    return 0;
fail:
    hold_rollback(h, sp);
    return -1;
}

void
hold_rollback(struct hold *h, struct spool *sp)
{
    struct hold_cust *c;
    struct errbuf e2;
    size_t i;

    for (i = 0; i < h->n; i++) {
        c = &h->v[i];
        spool_writer_abort(c->w);
        c->w = NULL;
        if (!c->committed)
            continue;
        c->committed = false;
        if (spool_delete(sp, c->name, c->id, &e2) < 0)
            log_errorx("%s: customer=%s, id=%s: cannot withdraw stored copy: %s; "
                       "it may be delivered twice", c->env.queue_id[0] ? c->env.queue_id
                       : "NOQUEUE", c->name, c->id, e2.msg);
    }
}

void
hold_info(const struct hold *h, size_t i, struct hold_info *info)
{
    info->customer = h->v[i].name;
    info->id = h->v[i].id;
    info->nrcpt = h->v[i].env.nrcpt;
    info->size = h->size;
}

int
hold_foreach_raw(const struct hold *h, hold_raw_fn *fn, void *ctx)
{
    size_t i, j;
    int rc;

    for (i = 0; i < h->n; i++)
        for (j = 0; j < h->v[i].nraw; j++)
            if ((rc = fn(ctx, h->v[i].raw[j])) != 0)
                return rc;
    return 0;
}
