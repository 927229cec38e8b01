/*  settle_batch — packs settlements into one legacy transaction while it fits in 1232 bytes.

    Per settlement, in this order (each only when its amount is not zero; the energy always is):
        TransferChecked energy   seller's energy account → buyer's energy account   qty (Wh)
        TransferChecked payment  buyer's payment account → seller's payment account value − fee
        TransferChecked fee      buyer's payment account → treasury                  fee
    and one Memo at the end, "mce:t=<trade id>,<trade id>,…", so that every landed
    transaction says which trades it settled. The platform key pays the fee and signs every
    transfer as the delegate the users approved.

    Whether a settlement fits is worked out without building anything: the keys it adds that
    the transaction does not hold yet, its instructions, and the memo growing by its trade id
    give the exact size the signed transaction would have. Users who trade often share keys, so
    their settlements pack more densely: the caller offers each settlement to several batches
    in turn (first fit).
*/
#ifndef MCE_SETTLE_BATCH_H
#define MCE_SETTLE_BATCH_H

#include "keys.h"
#include "settle_store.h"
#include "soltx.h"
#include "wallets.h"

#include <stdbool.h>
#include <stddef.h>

#define SETTLE_MEMO_PREFIX "mce:t="

typedef struct {
    const keys_t *keys;
    sol_msg_t msg;
    settlement_t *items[SETTLE_TX_ITEMS_MAX];
    size_t count;
    size_t max_items;
    size_t ix_bytes; //  encoded transfer instructions so far
    char memo[SOL_TX_MAX];
    size_t memo_len;
} settle_batch_t;

//  An empty batch of at most max_items settlements (≤ SETTLE_TX_ITEMS_MAX).
void settle_batch_init (settle_batch_t *b, const keys_t *keys, size_t max_items);
//  Adds s, to be paid with these wallets, when it fits. true if it was added.
bool settle_batch_add (settle_batch_t *b, settlement_t *s, const wallet_t *buyer,
                       const wallet_t *seller);
//  Bytes of the signed transaction the batch makes now.
size_t settle_batch_size (const settle_batch_t *b);
//  Writes the signed transaction for blockhash into tx (SOL_TX_MAX bytes) and its signature
//  (base58). Returns the length, or -1 (an empty batch).
int settle_batch_seal (settle_batch_t *b, const uint8_t blockhash[SOL_HASH_BYTES],
                       uint8_t tx[SOL_TX_MAX], char signature[SOL_SIG_TEXT]);

#endif
