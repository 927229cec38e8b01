/*  wallets — see wallets.h.  */
#include "wallets.h"
#include "clock.h"
#include "log.h"
#include "pg.h"
#include "solpda.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_PG_CONNECT_MS 3000
#define S_PG_QUERY_MS   5000

typedef struct {
    wallet_t wallet; //  first: handed out as a wallet_t
    int64_t fetched; //  monotonic ns of the lookup that found it
} s_entry_t;

struct _wallets_t {
    const mce_config_t *cfg;
    const keys_t *keys;
    zhashx_t *cache;   //  user -> its current s_entry_t (borrowed from entries)
    zlistx_t *entries; //  every entry ever made (owned): one per user and wallet it had
    pg_t *pg;
};

static void s_free (void **item)
{
    free (*item);
    *item = NULL;
}

wallets_t *wallets_new (const mce_config_t *cfg, const keys_t *keys)
{
    wallets_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->keys = keys;
    self->cache = zhashx_new ();
    self->entries = zlistx_new ();
    if (!self->cache || !self->entries) {
        wallets_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->entries, s_free);
    return self;
}

void wallets_destroy (wallets_t **self_p)
{
    wallets_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->cache);
    zlistx_destroy (&self->entries);
    pg_destroy (&self->pg);
    free (self);
    *self_p = NULL;
}

//  The registered wallet's text: 1, 0 (none), -1 (Postgres unavailable).
static int s_lookup (wallets_t *self, const char *user, char *wallet, size_t size, char *why,
                     size_t whylen)
{
    if (self->cfg->settler.wallets == CONFIG_WALLETS_KEYS_FILE) {
        for (size_t i = 0; i < self->keys->user_count; i++)
            if (strcmp (self->keys->users[i].name, user) == 0) {
                snprintf (wallet, size, "%s", self->keys->users[i].wallet.text);
                return 1;
            }
        snprintf (why, whylen, "user %s has no wallet in the keys file", user);
        return 0;
    }
    if (self->pg && !pg_ok (self->pg))
        pg_destroy (&self->pg);
    if (!self->pg) {
        char err[PG_ERROR_MAX];
        self->pg = pg_connect (self->cfg->postgres.url, S_PG_CONNECT_MS, err, sizeof err);
        if (!self->pg) {
            snprintf (why, whylen, "Postgres: %s", err);
            return -1;
        }
        pg_set_timeout (self->pg, S_PG_QUERY_MS);
    }
    const char *params[1] = {user};
    pg_result_t *r = pg_exec (self->pg, "SELECT wallet FROM users WHERE username = $1", 1, params);
    if (!r) {
        snprintf (why, whylen, "Postgres: %s", pg_error (self->pg));
        return -1;
    }
    int found = 0;
    const char *w = pg_rows (r) == 1 ? pg_value (r, 0, 0) : NULL;
    if (w && w[0]) {
        snprintf (wallet, size, "%s", w);
        found = 1;
    }
    else
        snprintf (why, whylen, "user %s has no registered wallet", user);
    pg_result_free (&r);
    return found;
}

//  A cached entry younger than max_age_ns answers; else the source is asked, and while it
//  cannot answer an older entry does. max_age_ns -1: the source's answer only.
static int s_get (wallets_t *self, const char *user, int64_t max_age_ns, const wallet_t **out,
                  char *why, size_t whylen)
{
    s_entry_t *e = zhashx_lookup (self->cache, user);
    int64_t now = clock_mono_ns ();
    if (e && now - e->fetched <= max_age_ns) {
        *out = &e->wallet;
        return 1;
    }
    char text[256];
    int rc = s_lookup (self, user, text, sizeof text, why, whylen);
    if (rc < 0 && e && max_age_ns >= 0) {
        *out = &e->wallet; //  stale, but the user's: better than waiting for Postgres
        return 1;
    }
    if (rc == 0 && e) {
        zhashx_delete (self->cache, user); //  no wallet any more (the entry stays allocated)
        return 0;
    }
    if (rc != 1)
        return rc;
    if (e && strcmp (e->wallet.wallet.text, text) == 0) {
        e->fetched = now;
        *out = &e->wallet;
        return 1;
    }
    s_entry_t *fresh = calloc (1, sizeof *fresh);
    if (!fresh) {
        snprintf (why, whylen, "out of memory");
        return -1;
    }
    wallet_t *w = &fresh->wallet;
    fresh->fetched = now;
    snprintf (w->user, sizeof w->user, "%s", user);
    if (sol_key_parse (&w->wallet, text)) {
        snprintf (why, whylen, "user %s: wallet \"%.60s\" is not a base58 public key", user, text);
        free (fresh);
        return 0;
    }
    if (sol_ata (&w->wallet, &self->keys->energy_mint, &w->energy) ||
        sol_ata (&w->wallet, &self->keys->payment_mint, &w->payment)) {
        snprintf (why, whylen, "user %s: no token account address for wallet %s", user,
                  w->wallet.text);
        free (fresh);
        return 0;
    }
    if (e) //  a new wallet: the old entry stays allocated for whoever still points at it
        log_info ("settler", "wallet of %s changed: %s, was %s", user, w->wallet.text,
                  e->wallet.wallet.text);
    if (!zlistx_add_end (self->entries, fresh)) {
        free (fresh);
        snprintf (why, whylen, "out of memory");
        return -1;
    }
    zhashx_update (self->cache, user, fresh);
    log_debug ("settler", "wallet of %s: %s (energy %s, payment %s)", user, w->wallet.text,
               w->energy.text, w->payment.text);
    *out = w;
    return 1;
}

int wallets_get (wallets_t *self, const char *user, const wallet_t **out, char *why, size_t whylen)
{
    return s_get (self, user, self->cfg->settler.wallet_ttl_ms * MCE_NS_PER_MSEC, out, why, whylen);
}

int wallets_get_fresh (wallets_t *self, const char *user, const wallet_t **out, char *why,
                       size_t whylen)
{
    return s_get (self, user, -1, out, why, whylen);
}
