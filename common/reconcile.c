/*  reconcile — what the tables owe from each vault. See reconcile.h. */
#include "reconcile.h"

#include <stdio.h>
#include <string.h>

void reconcile_markets (const mce_config_t *cfg, char *out, size_t size)
{
    //  each id quoted, so that one such as null stays a string (ids are [a-z0-9_-]: nothing
    //  to escape)
    size_t n = (size_t) snprintf (out, size, "{");
    for (int i = 0; i < cfg->market_count && n < size; i++)
        if (cfg->markets[i].escrow)
            n += (size_t) snprintf (out + n, size - n, "%s\"%s\"", n > 1 ? "," : "",
                                    cfg->markets[i].id);
    if (n < size)
        snprintf (out + n, size - n, "}");
}

//  One number from sql; false when the query failed.
static bool s_sum (pg_t *pg, const char *sql, const char *param, int64_t *out)
{
    const char *params[] = {param};
    pg_result_t *r = pg_exec (pg, sql, 1, params);
    if (!r)
        return false;
    *out = pg_int (r, 0, 0);
    pg_result_free (&r);
    return true;
}

int reconcile_owed (pg_t *pg, const char *markets, const char *asset, reconcile_owed_t *out)
{
    bool energy = strcmp (asset, "energy") == 0;
    int64_t moving_transfers = 0, moving_trades = 0;
    //  the grid's side of a trade pays from, or into, the grid's own wallet, not a vault: the
    //  energy of what it sold and the money of what it bought are owed by no vault
    bool ok =
        s_sum (pg, "SELECT coalesce (sum (available + reserved), 0) FROM balances WHERE asset = $1",
               asset, &out->balances) &&
        s_sum (pg,
               energy ? "SELECT coalesce (sum (t.qty), 0) FROM trades t LEFT JOIN settlements s ON "
                        "s.trade_id = t.trade_id WHERE t.market = ANY ($1::text[]) AND s.state IS "
                        "DISTINCT FROM 'confirmed' AND t.grid IS DISTINCT FROM 'sell'"
                      : "SELECT coalesce (sum (t.value), 0) FROM trades t LEFT JOIN settlements s "
                        "ON s.trade_id = t.trade_id WHERE t.market = ANY ($1::text[]) AND s.state "
                        "IS DISTINCT FROM 'confirmed' AND t.grid IS DISTINCT FROM 'buy'",
               markets, &out->trades) &&
        s_sum (pg,
               "SELECT coalesce (sum (amount), 0) FROM withdrawals WHERE asset = $1 AND state IN "
               "('requested', 'pending', 'processing', 'failed')",
               asset, &out->withdrawals) &&
        s_sum (pg,
               "SELECT coalesce (sum (amount), 0) FROM deposits WHERE asset = $1 AND state = "
               "'confirmed'",
               asset, &out->deposits) &&
        s_sum (pg,
               "SELECT (SELECT count (*) FROM deposits WHERE asset = $1 AND state IN ('pending', "
               "'processing', 'confirmed')) + (SELECT count (*) FROM withdrawals WHERE asset = $1 "
               "AND state NOT IN ('paid', 'refunded'))",
               asset, &moving_transfers) &&
        s_sum (pg,
               "SELECT count (*) FROM trades t LEFT JOIN settlements s ON s.trade_id = "
               "t.trade_id WHERE t.market = ANY ($1::text[]) AND s.state IS DISTINCT FROM "
               "'confirmed'",
               markets, &moving_trades);
    out->in_flight = moving_transfers + moving_trades;
    return ok ? 0 : -1;
}

int64_t reconcile_total (const reconcile_owed_t *owed)
{
    return owed->balances + owed->trades + owed->withdrawals + owed->deposits;
}
