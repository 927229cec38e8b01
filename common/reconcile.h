/*  reconcile — what the platform owes from each vault, by its own tables: the escrow's one
    side of a reconciliation (docs/clearing.md, Accounts and escrow). The other side is the
    vault's balance on chain; the two agree exactly with nothing in flight.

    For one asset, owed = every user's available + reserved (balances)
                        + trades of escrow markets not yet confirmed on chain
                        + withdrawals debited and not yet paid
                        + deposits confirmed on chain that the matcher has not credited yet.

    Read from the persister's tables. `mcectl reconcile` (which asks the chain itself) and the
    gateway's GET /api/admin/reconciliation (which asks the settler for its last reading of
    the vaults) both use it, so the two cannot disagree about what is owed.
*/
#ifndef MCE_RECONCILE_H
#define MCE_RECONCILE_H

#include "config.h"
#include "pg.h"

#include <stdint.h>

typedef struct {
    int64_t balances;    //  users' available + reserved
    int64_t trades;      //  owed to trades of escrow markets not confirmed on chain
    int64_t withdrawals; //  owed to withdrawals debited and not paid
    int64_t deposits;    //  on chain, not yet credited
    int64_t in_flight;   //  how many deposits, withdrawals and trades are still moving
} reconcile_owed_t;

//  The configuration's escrow markets as a Postgres text[] literal ({"campus-1","b"}).
void reconcile_markets (const mce_config_t *cfg, char *out, size_t size);

//  What the tables owe from the vault of asset ("energy" or "payment"); markets from
//  reconcile_markets. 0, or -1 when a query failed (pg_error says why).
int reconcile_owed (pg_t *pg, const char *markets, const char *asset, reconcile_owed_t *out);

//  The sum of those parts.
int64_t reconcile_total (const reconcile_owed_t *owed);

#endif
