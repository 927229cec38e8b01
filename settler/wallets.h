/*  wallets — a user's Solana wallet and its two token accounts, for the settler.

    Users register a wallet with the gateway (Postgres table users (username, wallet, …)); the
    settler reads it there, read-only, and derives the associated token accounts of the energy
    and payment mints (solpda.h). With settler.wallets = "keys_file" the users of the keys file
    are used instead (the local demo and the benchmark run without Postgres).

    Found wallets are cached for settler.wallet_ttl_ms, then looked up again: a user may change
    wallet (proving the new one to the gateway, with their password), and what is paid out — a
    withdrawal, a settlement out of escrow — must go to the wallet the user has now. A
    withdrawal looks it up afresh (wallets_get_fresh): a user who moves away from a wallet they
    no longer trust and withdraws at once is paid at the new one; a deposit likewise draws on
    the wallet the user has now. While Postgres cannot
    answer, an entry past its time is still used (it was the user's, proven). A wallet that
    changed gets a new entry; the old one stays allocated until the cache is destroyed, so a
    pointer handed out earlier (a batch being packed borrows its keys) never changes under
    its holder. A user with no wallet is not cached, so an administrator's retry after the user
    registered one finds it. Postgres is connected lazily and reconnected on the next lookup
    after a failure; the caller backs off when the source is unavailable.
*/
#ifndef MCE_WALLETS_H
#define MCE_WALLETS_H

#include "config.h"
#include "keys.h"
#include "soltx.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char user[KEYS_NAME_MAX + 1];
    sol_key_t wallet;
    sol_key_t energy;  //  associated token account of the energy mint
    sol_key_t payment; //  ... of the payment mint
} wallet_t;

typedef struct _wallets_t wallets_t;

//  keys must outlive the cache. NULL when out of memory.
wallets_t *wallets_new (const mce_config_t *cfg, const keys_t *keys);
void wallets_destroy (wallets_t **self_p);

//  1 with *out (borrowed, valid for the cache's life, never changed) when the user has a
//  wallet; 0 when the user has none (why says so); -1 when the source cannot answer now and
//  nothing is cached for the user (why says why).
int wallets_get (wallets_t *self, const char *user, const wallet_t **out, char *why, size_t whylen);
//  The same, asked of the source now whatever the cache holds (-1 while it cannot answer,
//  cached or not): for a deposit, which draws on the wallet the user has at this moment, and
//  a withdrawal, which pays it, even when they changed it a second ago (one lookup each; they
//  are rare).
int wallets_get_fresh (wallets_t *self, const char *user, const wallet_t **out, char *why,
                       size_t whylen);

#endif
