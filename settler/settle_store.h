/*  settle_store — the settler's state, and the one function that changes it: applying a
    record of the settler journal (stream s). The server applies each record as it journals
    it; recovery applies the journal from its start. So the state after a restart is exactly
    the state the records describe, and nothing the journal does not hold survives a crash.

    Records, all on stream s (docs/architecture.md, The settler; proto/messages.def):

      settlement pending, first for its id   the intent: a trade to settle, with its buyer,
                                             seller, quantity, value, fee and matcher seq (mseq)
      settlement processing                  a signed transaction is about to be sent: its
                                             signature, blockhash and lastValidBlockHeight;
                                             one record per settlement in it, in instruction order
      settlement pending (again)             that transaction can never land (rejected before
                                             it was ever possibly sent, landed with an error,
                                             or expired with no status): it waits to be re-signed
      settlement confirmed                   it landed and is confirmed
      settlement failed                      it will not be retried unless an admin asks
      epoch_state cleared                    the matcher cleared the epoch with N trades
      epoch_state settled                    every trade of that epoch is confirmed

      transfer pending, first for its id     a deposit (id assigned here, with the user, asset,
                                             amount and wallet) or a withdrawal (id and mseq
                                             from the matcher's requested event)
      transfer processing / pending again    as for a settlement; a transfer's record also
                                             names the wallet its transaction pays or debits
      transfer confirmed                     on chain; the matcher is owed a command: a
                                             deposit_credit, or a withdrawal_close (paid)
      transfer failed                        a deposit: final, nothing credited; a withdrawal:
                                             the matcher is owed a withdrawal_close (refund)
      transfer credited | closed | refunded  the matcher acknowledged that command (final)

    What stays in memory: settlements not yet confirmed (pending in FIFO order, processing in
    their transaction, failed), the transactions in flight, the epochs not yet settled with
    their counts, and the transfers not final (pending, processing, and "owed": confirmed, or
    a failed withdrawal, until the matcher acknowledges). Confirmed settlements and final
    transfers are forgotten (the bus and Postgres have them).

    A transaction holds settlements or transfers, never both. Deposit ids and withdrawal ids
    are two separate spaces (the settler assigns the first, the matcher the second).

    The resume point on the matcher bus is the highest matcher seq of the records that copy a
    matcher event: a trade's intent, an epoch's clear, a withdrawal's intent. A deposit's
    credited record names the matcher seq of the credit too, but that event is the matcher's
    answer to the settler, not one the settler consumed: it must not move the resume point,
    or the events before it that the settler has not read yet would be skipped.

    One thread owns a store.
*/
#ifndef MCE_SETTLE_STORE_H
#define MCE_SETTLE_STORE_H

#include "proto.h"
#include "rpc_decode.h"
#include "soltx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SETTLE_TX_ITEMS_MAX 64 //  settlements in one transaction, at most

typedef struct _settle_tx_t settle_tx_t;
typedef struct _settlement_t settlement_t;
typedef struct _transfer_t transfer_t;

struct _settlement_t {
    uint64_t id;
    uint64_t trade_id;
    uint64_t mseq; //  the trade's matcher seq
    uint64_t seq;  //  this settlement's latest record on stream s
    char market[PROTO_STR32_MAX + 1];
    int64_t epoch;
    char buyer[PROTO_STR64_MAX + 1];
    char seller[PROTO_STR64_MAX + 1];
    int64_t qty;   //  Wh
    int64_t price; //  µ/kWh
    int64_t value; //  µ, buyer → seller before the fee
    int64_t fee;   //  µ, buyer → treasury
    bool escrow;   //  paid out of the vaults: the trade says so, not today's config
    uint8_t grid;  //  proto_side_t the grid took (0: none): that side uses the grid's wallet
    proto_settle_state_t state;
    uint32_t attempts; //  transactions signed for it (the current retry budget)
    char error[PROTO_STR128_MAX + 1];
    int64_t created;           //  wall ns of the intent record
    int64_t ts;                //  wall ns of the latest record
    int64_t retry_at;          //  pending: not before this (monotonic ns), set by the server
    settle_tx_t *tx;           //  processing: the transaction it is in
    settlement_t *prev, *next; //  in the pending or the failed list
};

//  A deposit or a withdrawal: one TransferChecked between a user's token account of the asset
//  and the platform's vault of it.
struct _transfer_t {
    proto_transfer_kind_t kind;
    uint64_t id;   //  deposit id (the settler's) or withdrawal id (the matcher's)
    uint64_t mseq; //  withdrawal: matcher seq of its requested event
    uint64_t seq;  //  this transfer's latest record on stream s
    char user[PROTO_STR64_MAX + 1];
    proto_asset_t asset;
    int64_t amount;                   //  Wh or µ
    char wallet[PROTO_STR64_MAX + 1]; //  the user's wallet ("" until a withdrawal's first send)
    proto_transfer_state_t state;
    uint32_t attempts; //  transactions signed for it
    char error[PROTO_STR128_MAX + 1];
    char signature[SOL_SIG_TEXT]; //  the transaction that confirmed it
    int64_t created;              //  wall ns of the intent record
    int64_t ts;                   //  wall ns of the latest record
    //  kept by the server, not by records
    int64_t retry_at;        //  pending: not before this (monotonic ns)
    int64_t notify_at;       //  owed: when the matcher's command goes out (again), monotonic ns
    uint32_t notices;        //  owed: commands sent for it by this process
    uint32_t refusals;       //  owed: of which the matcher rejected
    sol_key_t account;       //  the user's token account of the asset (text "" until derived)
    settle_tx_t *tx;         //  processing: the transaction it is in
    transfer_t *prev, *next; //  in the pending or the owed list
};

typedef enum { SETTLE_TX_SETTLEMENTS = 0, SETTLE_TX_TRANSFERS } settle_tx_kind_t;

struct _settle_tx_t {
    char signature[SOL_SIG_TEXT];
    uint8_t blockhash[SOL_HASH_BYTES];
    uint64_t last_valid;
    settle_tx_kind_t kind;                      //  what it holds, from its first record
    settlement_t *items[SETTLE_TX_ITEMS_MAX];   //  instruction order; NULL once resolved
    transfer_t *transfers[SETTLE_TX_ITEMS_MAX]; //  ... or these (one instruction each)
    size_t count;                               //  items (or transfers) recorded
    size_t live;                                //  ... still processing in it
    //  kept by the server, not by records
    uint8_t bytes[SOL_TX_MAX]; //  the signed transaction, when known (len > 0)
    size_t len;
    bool recovered;  //  rebuilt from the journal at start
    bool maybe_sent; //  it may have reached a node: only the chain can say it will not land
    bool acked;      //  a node answered its signature
    bool landed;     //  the chain knows it (not yet confirmed)
    bool rejected;   //  a node refused it: no more sending; resolved by status and expiry
    sol_err_t error; //  why it was refused
    int64_t first_sent, last_sent; //  monotonic ns, 0 = never answered
    settle_tx_t *prev, *next;      //  in flight
};

typedef struct {
    char market[PROTO_STR32_MAX + 1];
    int64_t epoch;
    uint64_t trades;    //  settlements created for it
    uint64_t confirmed; //  ... of which confirmed
    bool cleared;
    uint64_t expected; //  trades the matcher counted when it cleared the epoch
    int64_t start, end, volume, clearing_price;
    uint64_t mseq; //  the matcher seq of its cleared event
} settle_epoch_t;

typedef struct _settle_store_t settle_store_t;

settle_store_t *settle_store_new (void);
void settle_store_destroy (settle_store_t **self_p);

//  Applies one record (a settlement or an epoch_state of stream s). 0, or -1 when it does not
//  fit the state (a settlement unknown, or an intent without its trade): logged, ignored.
int settle_store_apply (settle_store_t *self, const proto_msg_t *record);

settlement_t *settle_store_find (settle_store_t *self, uint64_t id);
settle_tx_t *settle_store_tx (settle_store_t *self, const char *signature);
//  Heads of the lists (follow ->next): pending in FIFO order, failed, transactions in flight.
settlement_t *settle_store_pending (settle_store_t *self);
settlement_t *settle_store_failed (settle_store_t *self);
settle_tx_t *settle_store_in_flight (settle_store_t *self);
size_t settle_store_count (settle_store_t *self, proto_settle_state_t state);
size_t settle_store_tx_count (settle_store_t *self);
//  The id the next settlement gets; the highest matcher seq recorded (where to resume).
uint64_t settle_store_next_id (settle_store_t *self);
uint64_t settle_store_mseq (settle_store_t *self);
//  An epoch that is cleared and whose trades are all confirmed, NULL if none.
settle_epoch_t *settle_store_epoch_due (settle_store_t *self);
settle_epoch_t *settle_store_epoch (settle_store_t *self, const char *market, int64_t epoch);
size_t settle_store_epoch_count (settle_store_t *self);

//  Transfers: by kind and id; heads of the lists (follow ->next): pending in FIFO order, and
//  owed (confirmed, or a failed withdrawal: waiting for the matcher's acknowledgement).
transfer_t *settle_store_transfer (settle_store_t *self, proto_transfer_kind_t kind, uint64_t id);
transfer_t *settle_store_transfers_pending (settle_store_t *self);
transfer_t *settle_store_owed (settle_store_t *self);
//  Transfers of a kind in a state (pending, processing, confirmed, failed: those kept).
size_t settle_store_transfer_count (settle_store_t *self, proto_transfer_kind_t kind,
                                    proto_transfer_state_t state);
//  Deposits of user not yet final (pending, processing, or confirmed and not yet credited).
size_t settle_store_open_deposits (settle_store_t *self, const char *user);
//  The id the next deposit gets.
uint64_t settle_store_next_deposit_id (settle_store_t *self);

//  The instructions a settlement takes in a transaction: energy, then payment (value − fee)
//  and fee when not zero.
size_t settle_instructions (const settlement_t *s);

#endif
