/*  rpc — the settler's Solana JSON-RPC client over HTTP: the one place libcurl lives.

    Calls go out as one JSON-RPC batch per HTTP request (rpc_begin, rpc_add_*, rpc_run), on one
    keep-alive connection, each exchange bounded by a timeout. The answer is decoded by
    rpc_decode into the caller's rpc_answer_t array, one per call in the order added.

    A request that gets no usable answer fails as a whole, with a kind the caller backs off on
    and counts: the connection refused, a timeout, HTTP 429 (with its Retry-After), HTTP 5xx,
    another HTTP status, or an answer that does not decode. `maybe_processed` says whether the
    node may have acted on the request anyway (a timeout, a dropped connection, a 5xx, a reply
    cut short): for sendTransaction that means the transaction may be on its way to landing,
    so it must be resolved with the chain before anything about it is decided. A refused
    connection, a 429 and 4xx answers mean it was not processed.

    Sent requests: getLatestBlockhash [{"commitment":"confirmed"}]; getBlockHeight
    [{"commitment":"finalized"}] (the conservative height for "can it still land?");
    sendTransaction [base64, {"encoding":"base64","skipPreflight":false,
    "preflightCommitment":"confirmed","maxRetries":0}]; getSignatureStatuses [[sig…],
    {"searchTransactionHistory":true}]; getTokenAccountBalance [account,
    {"commitment":"confirmed"}] (the vaults, for the metrics).
*/
#ifndef MCE_RPC_H
#define MCE_RPC_H

#include "rpc_decode.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_CALLS_MAX 64 //  calls in one batch

typedef enum {
    RPC_FAIL_NONE = 0,
    RPC_FAIL_CONNECT,   //  no connection (refused, unreachable)
    RPC_FAIL_TIMEOUT,   //  no complete answer within the timeout
    RPC_FAIL_IO,        //  the connection broke mid-exchange
    RPC_FAIL_HTTP429,   //  rate limited
    RPC_FAIL_HTTP5XX,   //  the server failed
    RPC_FAIL_HTTP,      //  another HTTP status
    RPC_FAIL_MALFORMED, //  an answer that does not decode
    RPC_FAIL_COUNT
} rpc_fail_t;

typedef struct {
    rpc_fail_t kind;
    bool maybe_processed;
    long http_status;   //  0 when there was no HTTP answer
    int retry_after_ms; //  from Retry-After, 0 when absent
    char text[256];
} rpc_failure_t;

typedef struct _rpc_t rpc_t;

//  A client of url; every exchange is bounded by timeout_ms. NULL on error.
rpc_t *rpc_new (const char *url, int timeout_ms);
void rpc_destroy (rpc_t **self_p);

//  Starts a new batch (forgets the calls added since the last rpc_run).
void rpc_begin (rpc_t *self);
//  Adds a call; 0, or -1 when the batch is full (RPC_CALLS_MAX) or out of memory.
int rpc_add_blockhash (rpc_t *self);
int rpc_add_height (rpc_t *self);
int rpc_add_send (rpc_t *self, const uint8_t *tx, size_t len);
//  account: base58 (a sol_key_t's text).
int rpc_add_token_balance (rpc_t *self, const char *account);
//  statuses: the caller's array of n entries, filled by rpc_run (n <= RPC_STATUSES_MAX).
int rpc_add_statuses (rpc_t *self, const char *const *signatures, size_t n,
                      rpc_sig_status_t *statuses);
//  Calls added since rpc_begin.
size_t rpc_calls (rpc_t *self);
//  Sends the batch and decodes the answer into answers[0 .. rpc_calls − 1]. 0, or −1 with
//  *failure filled.
int rpc_run (rpc_t *self, rpc_answer_t *answers, rpc_failure_t *failure);

//  A short name for a failure kind ("timeout", "http429", ...), for metrics and logs.
const char *rpc_fail_name (rpc_fail_t kind);

#endif
