/* SPDX-License-Identifier: ISC */
/*
 * odmr_limits.c - failed ODMR AUTH attempts per address and per account
 * (see odmr_limits.h). Owns two direct-mapped tables keyed by a seeded
 * hash (the seed comes from getrandom, so nobody outside can aim at a
 * slot): addresses that collide share one count, which only makes the
 * limit stricter for both; accounts likewise share a slot while either
 * has failures or known addresses, and a quiet slot is taken over.
 *
 * An account is throttled after account_failures failures within
 * address_block of each other: an attempt from an address that never
 * authenticated for it is then taken only account_delay after the last
 * failure, the wait doubling with each further failure up to
 * account_delay_max. A success does not clear the failures (a guesser
 * gets no fresh tries from the customer's logins); it records the
 * address (the last ODMR_GOOD_MAX, for ODMR_GOOD_TTL), which is never
 * made to wait.
 */
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "odmr.h"
#include "odmr_limits.h"
#include "util.h"

struct fail_slot {
    struct ipaddr addr;
    time_t since;                   /* start of the counting window, 0 = unused */
    unsigned long count;
};

struct account {
    uint64_t key;                   /* hash of the name; 0 = unused */
    unsigned long failures;         /* within address_block of each other */
    time_t last_failure, next_ok;
    struct ipaddr good[ODMR_GOOD_MAX];   /* authenticated for it */
    time_t good_at[ODMR_GOOD_MAX];
};

struct odmr_limits {
    const struct config_odmr *oc;
    uint64_t seed;
    struct fail_slot *fails;        /* ODMR_FAIL_SLOTS */
    struct account *accounts;       /* ODMR_ACCOUNT_SLOTS */
};

struct odmr_limits *
odmr_limits_new(const struct config_odmr *oc)
{
    struct odmr_limits *l = x_calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->oc = oc;
    if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != (ssize_t)sizeof(l->seed))
        l->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if ((l->fails = x_calloc(ODMR_FAIL_SLOTS, sizeof(*l->fails))) == NULL
        || (l->accounts = x_calloc(ODMR_ACCOUNT_SLOTS, sizeof(*l->accounts))) == NULL) {
        odmr_limits_free(l);
        return NULL;
    }
    return l;
}

void
odmr_limits_free(struct odmr_limits *l)
{
    if (l == NULL)
        return;
    x_free(l->fails);
    x_free(l->accounts);
    x_free(l);
}

/* --- addresses --- */

static struct fail_slot *
fail_slot(struct odmr_limits *l, const struct ipaddr *a)
{
    return &l->fails[ipaddr_hash(a, l->seed) & (ODMR_FAIL_SLOTS - 1)];
}

static bool
window_over(const struct odmr_limits *l, time_t since, time_t now)
{
    return now >= since + (time_t)l->oc->address_block;
}

bool
odmr_limits_blocked(struct odmr_limits *l, const struct ipaddr *a, time_t now)
{
    struct fail_slot *f = fail_slot(l, a);

    return f->since != 0 && !window_over(l, f->since, now) && f->count >= l->oc->address_failures;
}

/* address_failed - 1 when a has just reached address_failures */
static int
address_failed(struct odmr_limits *l, const struct ipaddr *a, time_t now, time_t *until_r)
{
    struct fail_slot *f = fail_slot(l, a);

    if (f->since == 0 || window_over(l, f->since, now)) {
        f->since = now;
        f->count = 0;
    }
    f->addr = *a;
    *until_r = f->since + (time_t)l->oc->address_block;
    return ++f->count == l->oc->address_failures;
}

/* --- accounts --- */

static uint64_t
account_key(const struct odmr_limits *l, const char *name)
{
    uint64_t h = l->seed ^ 0xcbf29ce484222325ull;
    const char *p;

    for (p = name; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h | 1;                   /* never 0: 0 marks an unused slot */
}

static bool
account_quiet(const struct odmr_limits *l, const struct account *ac, time_t now)
{
    size_t i;

    if (ac->failures > 0 && !window_over(l, ac->last_failure, now))
        return false;
    for (i = 0; i < ODMR_GOOD_MAX; i++)
        if (ac->good_at[i] != 0 && now < ac->good_at[i] + ODMR_GOOD_TTL)
            return false;
    return true;
}

/* account - the slot of name (a quiet slot of another name is taken over;
 * a busy one is shared) */
static struct account *
account(struct odmr_limits *l, const char *name, time_t now)
{
    uint64_t key = account_key(l, name);
    struct account *ac = &l->accounts[(key ^ (key >> 32)) & (ODMR_ACCOUNT_SLOTS - 1)];

    if (ac->key != key && account_quiet(l, ac, now)) {
        memset(ac, 0, sizeof(*ac));
        ac->key = key;
    }
    if (ac->failures > 0 && window_over(l, ac->last_failure, now))
        ac->failures = 0;
    return ac;
}

static bool
account_knows(const struct account *ac, const struct ipaddr *a, time_t now)
{
    size_t i;

    for (i = 0; i < ODMR_GOOD_MAX; i++)
        if (ac->good_at[i] != 0 && now < ac->good_at[i] + ODMR_GOOD_TTL
            && ipaddr_equal(&ac->good[i], a))
            return true;
    return false;
}

/* wait_after - the wait after the k-th failure (k >= account_failures) */
static uint64_t
wait_after(const struct config_odmr *oc, unsigned long k)
{
    unsigned long steps = k - oc->account_failures;
    uint64_t w = oc->account_delay;

    while (steps-- > 0 && w < oc->account_delay_max)
        w = w > UINT64_MAX / 2 ? UINT64_MAX : w * 2;
    return w < oc->account_delay_max ? w : oc->account_delay_max;
}

time_t
odmr_limits_account_wait(struct odmr_limits *l, const char *name, const struct ipaddr *a,
                         time_t now)
{
    struct account *ac = account(l, name, now);

    if (ac->failures < l->oc->account_failures || now >= ac->next_ok || account_knows(ac, a, now))
        return 0;
    return ac->next_ok - now;
}

int
odmr_limits_failed(struct odmr_limits *l, const char *name, const struct ipaddr *a, time_t now,
                   time_t *until_r, time_t *wait_r)
{
    struct account *ac;

    *wait_r = 0;
    if (name != NULL) {
        ac = account(l, name, now);
        ac->failures++;
        ac->last_failure = now;
        if (ac->failures >= l->oc->account_failures) {
            ac->next_ok = now + (time_t)wait_after(l->oc, ac->failures);
            *wait_r = ac->next_ok - now;
        }
    }
    return address_failed(l, a, now, until_r);
}

void
odmr_limits_good(struct odmr_limits *l, const char *name, const struct ipaddr *a, time_t now)
{
    struct account *ac = account(l, name, now);
    size_t i, oldest = 0;

    for (i = 0; i < ODMR_GOOD_MAX; i++) {
        if (ac->good_at[i] != 0 && ipaddr_equal(&ac->good[i], a)) {
            ac->good_at[i] = now;
            return;
        }
        if (ac->good_at[i] < ac->good_at[oldest])
            oldest = i;
    }
    ac->good[oldest] = *a;
    ac->good_at[oldest] = now;
}

unsigned long
odmr_limits_account_failures(struct odmr_limits *l, const char *name, time_t now)
{
    return account(l, name, now)->failures;
}
