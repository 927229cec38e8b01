/*  settler_metrics — the settler's Prometheus text on settler.metrics_port (common/
    metrics_http). The settler's thread updates the atomics; the metrics thread only reads them.

      mce_settler_settlements{state}              gauge: pending, processing, failed
      mce_settler_settlements_total{event}        counter: created, confirmed, failed
      mce_settler_transactions_total{event}       counter: signed, sent (resends included),
                                                  confirmed
      mce_settler_transactions_in_flight          gauge
      mce_settler_trades_per_transaction          gauge: settlements confirmed / transactions
      mce_settler_retries_total{reason}           counter: expired, rejected, failed_on_chain,
                                                  batch (a batch-mate failed)
      mce_settler_rpc_errors_total{kind}          counter: connect, timeout, io, http429,
                                                  http5xx, http, malformed, unhealthy
      mce_settler_ledger_up                       gauge: 1 when the last ledger call worked
      mce_settler_backoff_seconds                 gauge: the ledger backoff in force (0 if none)
      mce_settler_postgres_up                     gauge: wallet lookups work
      mce_settler_epochs_settled_total            counter
      mce_settler_matcher_seq, _lag_events        matcher bus: last consumed, behind the head
      mce_settler_lag_seconds                     age of the oldest settlement not confirmed
      mce_settler_journal_seq                     last seq committed on stream s
*/
#ifndef MCE_SETTLER_METRICS_H
#define MCE_SETTLER_METRICS_H

#include "rpc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SETTLER_RETRY_EXPIRED = 0,
    SETTLER_RETRY_REJECTED,
    SETTLER_RETRY_FAILED_ON_CHAIN,
    SETTLER_RETRY_BATCH,
    SETTLER_RETRY_COUNT
} settler_retry_t;

#define SETTLER_RPC_UNHEALTHY RPC_FAIL_COUNT //  JSON-RPC -32005 and kin, after the HTTP kinds

typedef struct {
    _Atomic uint64_t pending, processing, failed;
    _Atomic uint64_t created, confirmed, failed_total;
    _Atomic uint64_t signed_txs, sent, confirmed_txs, in_flight;
    _Atomic uint64_t retries[SETTLER_RETRY_COUNT];
    _Atomic uint64_t rpc_errors[RPC_FAIL_COUNT + 1];
    _Atomic uint64_t ledger_up, backoff_ms, postgres_up;
    _Atomic uint64_t epochs_settled;
    _Atomic uint64_t matcher_seq, matcher_behind, lag_ms, journal_seq;
} settler_metrics_t;

//  metrics_render_fn for metrics_http_new, arg = settler_metrics_t.
void settler_metrics_render (void *arg, FILE *f);

#endif
