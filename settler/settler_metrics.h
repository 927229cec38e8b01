/*  settler_metrics — the settler's Prometheus text on settler.metrics_port (common/
    metrics_http). The settler's thread updates the atomics; the metrics thread only reads them.

      mce_settler_settlements{state}              gauge: pending, processing, failed
      mce_settler_settlements_total{event}        counter: created, confirmed, failed
      mce_settler_transactions_total{event}       counter: signed, sent (resends included),
                                                  confirmed
      mce_settler_transactions_in_flight          gauge
      mce_settler_trades_per_transaction          gauge: settlements confirmed / transactions
      mce_settler_retries_total{reason}           counter: expired, rejected, failed_on_chain,
                                                  batch (a batch-mate failed), vault_short
      mce_settler_rpc_errors_total{kind}          counter: connect, timeout, io, http429,
                                                  http5xx, http, malformed, unhealthy
      mce_settler_ledger_up                       gauge: 1 when the last ledger call worked
      mce_settler_backoff_seconds                 gauge: the ledger backoff in force (0 if none)
      mce_settler_postgres_up                     gauge: wallet lookups work
      mce_settler_epochs_settled_total            counter
      mce_settler_matcher_seq, _lag_events        matcher bus: last consumed, behind the head
      mce_settler_lag_seconds                     age of the oldest settlement not confirmed
      mce_settler_journal_seq                     last seq committed on stream s
      mce_settler_transfers{kind,state}           gauge: deposits and withdrawals pending,
                                                  processing, confirmed (the matcher not yet
                                                  told), failed (a withdrawal not yet refunded)
      mce_settler_transfers_total{kind,event}     counter: created, confirmed, failed, credited
                                                  (deposits), closed and refunded (withdrawals)
      mce_settler_matcher_commands_total{event}   counter: deposit_credit and withdrawal_close
                                                  sent (again too), acked, duplicate, rejected
      mce_settler_vault_balance{asset}            gauge: base units in each vault (Wh, µ), as
                                                  the ledger said last (every few seconds)
*/
#ifndef MCE_SETTLER_METRICS_H
#define MCE_SETTLER_METRICS_H

#include "config.h"
#include "rpc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SETTLER_RETRY_EXPIRED = 0,
    SETTLER_RETRY_REJECTED,
    SETTLER_RETRY_FAILED_ON_CHAIN,
    SETTLER_RETRY_BATCH,
    SETTLER_RETRY_VAULT, //  out of escrow, a vault was short: the settlement waits
    SETTLER_RETRY_GRID,  //  the grid's wallet was short: the settlement waits for the operator
    SETTLER_RETRY_COUNT
} settler_retry_t;

#define SETTLER_RPC_UNHEALTHY RPC_FAIL_COUNT //  JSON-RPC -32005 and kin, after the HTTP kinds

//  mce_settler_transfers{state}: the states a transfer is kept in
typedef enum {
    SETTLER_TSTATE_PENDING = 0,
    SETTLER_TSTATE_PROCESSING,
    SETTLER_TSTATE_CONFIRMED,
    SETTLER_TSTATE_FAILED,
    SETTLER_TSTATE_COUNT
} settler_tstate_t;

//  mce_settler_transfers_total{event}
typedef enum {
    SETTLER_TEVENT_CREATED = 0,
    SETTLER_TEVENT_CONFIRMED,
    SETTLER_TEVENT_FAILED,
    SETTLER_TEVENT_CREDITED,
    SETTLER_TEVENT_CLOSED,
    SETTLER_TEVENT_REFUNDED,
    SETTLER_TEVENT_COUNT
} settler_tevent_t;

//  mce_settler_matcher_commands_total{event}
typedef enum {
    SETTLER_COMMAND_SENT = 0,
    SETTLER_COMMAND_ACKED,
    SETTLER_COMMAND_DUPLICATE,
    SETTLER_COMMAND_REJECTED,
    SETTLER_COMMAND_COUNT
} settler_command_t;

#define SETTLER_KINDS 2 //  deposit (0), withdrawal (1)

typedef struct {
    _Atomic uint64_t pending, processing, failed;
    _Atomic uint64_t created, confirmed, failed_total;
    _Atomic uint64_t signed_txs, sent, confirmed_txs, in_flight;
    _Atomic uint64_t retries[SETTLER_RETRY_COUNT];
    _Atomic uint64_t rpc_errors[RPC_FAIL_COUNT + 1];
    _Atomic uint64_t ledger_up, backoff_ms, postgres_up;
    _Atomic uint64_t epochs_settled;
    _Atomic uint64_t matcher_seq, matcher_behind, lag_ms, journal_seq;
    _Atomic uint64_t transfers[SETTLER_KINDS][SETTLER_TSTATE_COUNT];
    _Atomic uint64_t transfer_events[SETTLER_KINDS][SETTLER_TEVENT_COUNT];
    _Atomic uint64_t commands[SETTLER_COMMAND_COUNT];
    _Atomic int64_t vault[2];  //  energy, payment; -1 until known
    _Atomic int64_t vaults_at; //  when vault[] was read (Unix ns); 0 = never
    //  The grid's wallet of each market with a grid (config order): energy, payment; -1 until
    //  known. cfg names the markets and the thresholds under which a balance is low.
    _Atomic int64_t grid[CONFIG_MARKETS_MAX][2];
    const mce_config_t *cfg;
} settler_metrics_t;

//  metrics_render_fn for metrics_http_new, arg = settler_metrics_t.
void settler_metrics_render (void *arg, FILE *f);

#endif
