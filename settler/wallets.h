/*  wallets — a user's Solana wallet and its two token accounts, for the settler.

    Users register a wallet with the gateway (Postgres table users (username, wallet, …)); the
    settler reads it there, read-only, and derives the associated token accounts of the energy
    and payment mints (solpda.h). With settler.wallets = "keys_file" the users of the keys file
    are used instead (the local demo and the benchmark run without Postgres).

    Found wallets are cached for the life of the process: a wallet, once registered, does not
    change. A user with no wallet is not cached, so an administrator's retry after the user
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

//  1 with *out (borrowed, valid for the cache's life) when the user has a wallet; 0 when the
//  user has none (why says so); -1 when the source cannot answer now (why says why).
int wallets_get (wallets_t *self, const char *user, const wallet_t **out, char *why, size_t whylen);
//  Wallets cached so far.
size_t wallets_size (wallets_t *self);

#endif
