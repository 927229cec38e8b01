/*  settler_metrics — see settler_metrics.h.  */
#include "settler_metrics.h"

#define S_LOAD(x) ((unsigned long long) atomic_load (&(x)))

void settler_metrics_render (void *arg, FILE *f)
{
    settler_metrics_t *m = arg;
    fprintf (f,
             "# HELP mce_settler_settlements Settlements not yet confirmed, by state.\n"
             "# TYPE mce_settler_settlements gauge\n"
             "mce_settler_settlements{state=\"pending\"} %llu\n"
             "mce_settler_settlements{state=\"processing\"} %llu\n"
             "mce_settler_settlements{state=\"failed\"} %llu\n"
             "# HELP mce_settler_settlements_total Settlements created, confirmed, failed.\n"
             "# TYPE mce_settler_settlements_total counter\n"
             "mce_settler_settlements_total{event=\"created\"} %llu\n"
             "mce_settler_settlements_total{event=\"confirmed\"} %llu\n"
             "mce_settler_settlements_total{event=\"failed\"} %llu\n",
             S_LOAD (m->pending), S_LOAD (m->processing), S_LOAD (m->failed), S_LOAD (m->created),
             S_LOAD (m->confirmed), S_LOAD (m->failed_total));
    uint64_t ctx = atomic_load (&m->confirmed_txs);
    fprintf (f,
             "# HELP mce_settler_transactions_total Transactions signed, sent (resends too), "
             "confirmed.\n"
             "# TYPE mce_settler_transactions_total counter\n"
             "mce_settler_transactions_total{event=\"signed\"} %llu\n"
             "mce_settler_transactions_total{event=\"sent\"} %llu\n"
             "mce_settler_transactions_total{event=\"confirmed\"} %llu\n"
             "# HELP mce_settler_transactions_in_flight Transactions signed and not resolved.\n"
             "# TYPE mce_settler_transactions_in_flight gauge\n"
             "mce_settler_transactions_in_flight %llu\n"
             "# HELP mce_settler_trades_per_transaction Settlements per confirmed transaction.\n"
             "# TYPE mce_settler_trades_per_transaction gauge\n"
             "mce_settler_trades_per_transaction %.2f\n",
             S_LOAD (m->signed_txs), S_LOAD (m->sent), (unsigned long long) ctx,
             S_LOAD (m->in_flight),
             ctx ? (double) atomic_load (&m->confirmed) / (double) ctx : 0.0);
    static const char *reasons[SETTLER_RETRY_COUNT] = {"expired", "rejected",    "failed_on_chain",
                                                       "batch",   "vault_short", "grid_short"};
    fprintf (f, "# HELP mce_settler_retries_total Settlements sent back to pending, by why.\n"
                "# TYPE mce_settler_retries_total counter\n");
    for (int i = 0; i < SETTLER_RETRY_COUNT; i++)
        fprintf (f, "mce_settler_retries_total{reason=\"%s\"} %llu\n", reasons[i],
                 S_LOAD (m->retries[i]));
    fprintf (f, "# HELP mce_settler_rpc_errors_total Ledger calls that failed, by kind.\n"
                "# TYPE mce_settler_rpc_errors_total counter\n");
    for (int i = 1; i <= RPC_FAIL_COUNT; i++)
        fprintf (f, "mce_settler_rpc_errors_total{kind=\"%s\"} %llu\n",
                 i == SETTLER_RPC_UNHEALTHY ? "unhealthy" : rpc_fail_name ((rpc_fail_t) i),
                 S_LOAD (m->rpc_errors[i]));
    fprintf (f,
             "# HELP mce_settler_ledger_up Whether the last call to the ledger worked.\n"
             "# TYPE mce_settler_ledger_up gauge\nmce_settler_ledger_up %llu\n"
             "# HELP mce_settler_backoff_seconds Wait before the next ledger call after failures.\n"
             "# TYPE mce_settler_backoff_seconds gauge\nmce_settler_backoff_seconds %.3f\n"
             "# HELP mce_settler_postgres_up Whether wallet lookups work.\n"
             "# TYPE mce_settler_postgres_up gauge\nmce_settler_postgres_up %llu\n"
             "# HELP mce_settler_epochs_settled_total Epochs whose trades are all confirmed.\n"
             "# TYPE mce_settler_epochs_settled_total counter\nmce_settler_epochs_settled_total "
             "%llu\n"
             "# HELP mce_settler_matcher_seq Last matcher bus seq consumed.\n"
             "# TYPE mce_settler_matcher_seq gauge\nmce_settler_matcher_seq %llu\n"
             "# HELP mce_settler_lag_events Matcher events not consumed yet.\n"
             "# TYPE mce_settler_lag_events gauge\nmce_settler_lag_events %llu\n"
             "# HELP mce_settler_lag_seconds Age of the oldest settlement not confirmed.\n"
             "# TYPE mce_settler_lag_seconds gauge\nmce_settler_lag_seconds %.3f\n"
             "# HELP mce_settler_journal_seq Last seq committed on stream s.\n"
             "# TYPE mce_settler_journal_seq gauge\nmce_settler_journal_seq %llu\n",
             S_LOAD (m->ledger_up), (double) atomic_load (&m->backoff_ms) / 1000.0,
             S_LOAD (m->postgres_up), S_LOAD (m->epochs_settled), S_LOAD (m->matcher_seq),
             S_LOAD (m->matcher_behind), (double) atomic_load (&m->lag_ms) / 1000.0,
             S_LOAD (m->journal_seq));
    static const char *kinds[SETTLER_KINDS] = {"deposit", "withdrawal"};
    static const char *states[SETTLER_TSTATE_COUNT] = {"pending", "processing", "confirmed",
                                                       "failed"};
    static const char *events[SETTLER_TEVENT_COUNT] = {"created",  "confirmed", "failed",
                                                       "credited", "closed",    "refunded"};
    fprintf (f, "# HELP mce_settler_transfers Deposits and withdrawals not final, by state.\n"
                "# TYPE mce_settler_transfers gauge\n");
    for (int k = 0; k < SETTLER_KINDS; k++)
        for (int s = 0; s < SETTLER_TSTATE_COUNT; s++)
            if (k == 1 || s != SETTLER_TSTATE_FAILED) //  a failed deposit is final
                fprintf (f, "mce_settler_transfers{kind=\"%s\",state=\"%s\"} %llu\n", kinds[k],
                         states[s], S_LOAD (m->transfers[k][s]));
    fprintf (f, "# HELP mce_settler_transfers_total Deposits and withdrawals by what happened.\n"
                "# TYPE mce_settler_transfers_total counter\n");
    for (int k = 0; k < SETTLER_KINDS; k++)
        for (int e = 0; e < SETTLER_TEVENT_COUNT; e++)
            if (k == 0 ? e != SETTLER_TEVENT_CLOSED && e != SETTLER_TEVENT_REFUNDED
                       : e != SETTLER_TEVENT_CREDITED)
                fprintf (f, "mce_settler_transfers_total{kind=\"%s\",event=\"%s\"} %llu\n",
                         kinds[k], events[e], S_LOAD (m->transfer_events[k][e]));
    static const char *commands[SETTLER_COMMAND_COUNT] = {"sent", "acked", "duplicate", "rejected"};
    fprintf (f, "# HELP mce_settler_matcher_commands_total deposit_credit and withdrawal_close "
                "sent to the matcher, and its answers.\n"
                "# TYPE mce_settler_matcher_commands_total counter\n");
    for (int c = 0; c < SETTLER_COMMAND_COUNT; c++)
        fprintf (f, "mce_settler_matcher_commands_total{event=\"%s\"} %llu\n", commands[c],
                 S_LOAD (m->commands[c]));
    fprintf (f, "# HELP mce_settler_vault_balance Base units in each vault (Wh, µ), as last "
                "read from the ledger.\n"
                "# TYPE mce_settler_vault_balance gauge\n");
    static const char *assets[2] = {"energy", "payment"};
    for (int a = 0; a < 2; a++) {
        int64_t v = atomic_load (&m->vault[a]);
        if (v >= 0)
            fprintf (f, "mce_settler_vault_balance{asset=\"%s\"} %lld\n", assets[a], (long long) v);
    }
    if (!m->cfg)
        return;
    fprintf (f, "# HELP mce_settler_grid_balance Base units in the grid's wallet (Wh, µ) of each "
                "market with a grid, as last read from the ledger.\n"
                "# TYPE mce_settler_grid_balance gauge\n"
                "# HELP mce_settler_grid_low 1 while that balance is below settler.grid_low_energy "
                "or grid_low_payment: fund the grid's wallet before its settlements wait.\n"
                "# TYPE mce_settler_grid_low gauge\n");
    const int64_t low[2] = {m->cfg->settler.grid_low_energy, m->cfg->settler.grid_low_payment};
    for (int i = 0; i < m->cfg->market_count; i++)
        for (int a = 0; a < 2; a++) {
            int64_t v = atomic_load (&m->grid[i][a]);
            if (v < 0)
                continue;
            const char *id = m->cfg->markets[i].id;
            fprintf (f,
                     "mce_settler_grid_balance{market=\"%s\",asset=\"%s\"} %lld\n"
                     "mce_settler_grid_low{market=\"%s\",asset=\"%s\"} %d\n",
                     id, assets[a], (long long) v, id, assets[a], v < low[a]);
        }
}
