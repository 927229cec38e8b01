/*  settle_batch — packs what the settler pays into one legacy transaction while it fits in
    1232 bytes: settlements of trades, or deposits, or withdrawals (one kind per transaction).

    Per settlement, in this order (each only when its amount is not zero; the energy always is):

                     wallet to wallet (escrow off)   out of escrow (escrow on)
        energy       seller's energy → buyer's       energy vault → buyer's     qty (Wh)
        payment      buyer's payment → seller's      payment vault → seller's   value − fee (µ)
        fee          buyer's payment → treasury      payment vault → treasury   fee (µ)

    each a TransferChecked.

    The buyer pays value, the seller receives value − fee, the treasury the fee, either way.
    Per deposit one TransferChecked user's token account → the vault of its asset; per
    withdrawal one the other way. One Memo ends every transaction and names what it pays:
    "mce:t=<trade id>,…", "mce:d=<deposit id>,…" or "mce:w=<withdrawal id>,…", so that every
    landed transaction says what it settled. The platform key pays the fee and signs every
    transfer: as the owner of the vaults, and as the delegate the users' accounts approved.

    Whether an item fits is worked out without building anything: the keys it adds that the
    transaction does not hold yet, its instructions, and the memo growing by its id give the
    exact size the signed transaction would have. Users who trade often share keys (and every
    transfer out of escrow shares the vaults), so their items pack more densely: the caller
    offers each item to several batches in turn (first fit).
*/
#ifndef MCE_SETTLE_BATCH_H
#define MCE_SETTLE_BATCH_H

#include "keys.h"
#include "settle_store.h"
#include "soltx.h"
#include "wallets.h"

#include <stdbool.h>
#include <stddef.h>

#define SETTLE_MEMO_PREFIX     "mce:t="
#define SETTLE_MEMO_DEPOSIT    "mce:d="
#define SETTLE_MEMO_WITHDRAWAL "mce:w="

typedef enum {
    SETTLE_BATCH_TRADES = 0,
    SETTLE_BATCH_DEPOSITS,
    SETTLE_BATCH_WITHDRAWALS
} settle_batch_kind_t;

typedef struct {
    const keys_t *keys;
    settle_batch_kind_t kind;
    sol_msg_t msg;
    settlement_t *items[SETTLE_TX_ITEMS_MAX];   //  SETTLE_BATCH_TRADES
    transfer_t *transfers[SETTLE_TX_ITEMS_MAX]; //  the other kinds
    size_t count;
    size_t max_items;
    size_t ix_bytes; //  encoded transfer instructions so far
    char memo[SOL_TX_MAX];
    size_t memo_len;
} settle_batch_t;

//  An empty batch of one kind, of at most max_items (≤ SETTLE_TX_ITEMS_MAX).
void settle_batch_init (settle_batch_t *b, const keys_t *keys, settle_batch_kind_t kind,
                        size_t max_items);
//  Adds s (a trades batch), to be paid with these wallets, out of the vaults when escrow.
//  true if it was added.
bool settle_batch_add (settle_batch_t *b, settlement_t *s, const wallet_t *buyer,
                       const wallet_t *seller, bool escrow);
//  Adds t (a deposits or withdrawals batch, t of that kind), account being the user's token
//  account of t's asset. true if it was added.
bool settle_batch_add_transfer (settle_batch_t *b, transfer_t *t, const sol_key_t *account);
//  Bytes of the signed transaction the batch makes now.
size_t settle_batch_size (const settle_batch_t *b);
//  Writes the signed transaction for blockhash into tx (SOL_TX_MAX bytes) and its signature
//  (base58). Returns the length, or -1 (an empty batch).
int settle_batch_seal (settle_batch_t *b, const uint8_t blockhash[SOL_HASH_BYTES],
                       uint8_t tx[SOL_TX_MAX], char signature[SOL_SIG_TEXT]);

#endif
