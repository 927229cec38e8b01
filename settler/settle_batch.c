/*  settle_batch — see settle_batch.h.  */
#include "settle_batch.h"
#include "base58.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_TRANSFER_BYTES 17 //  sol_ix_size (4, SOL_TRANSFER_CHECKED_LEN)

void settle_batch_init (settle_batch_t *b, const keys_t *keys, size_t max_items)
{
    b->keys = keys;
    b->count = 0;
    b->max_items = max_items < SETTLE_TX_ITEMS_MAX ? max_items : SETTLE_TX_ITEMS_MAX;
    b->ix_bytes = 0;
    b->memo_len = (size_t) snprintf (b->memo, sizeof b->memo, "%s", SETTLE_MEMO_PREFIX);
    sol_msg_init (&b->msg, &keys->platform);
    //  every transaction calls both programs: their keys are there from the start
    sol_msg_key (&b->msg, &keys->token_program, false, false);
    sol_msg_key (&b->msg, &keys->memo_program, false, false);
}

//  The keys s needs, with duplicates (the caller counts the new ones).
static size_t s_keys (const settle_batch_t *b, const settlement_t *s, const wallet_t *buyer,
                      const wallet_t *seller, const sol_key_t **keys)
{
    size_t n = 0;
    keys[n++] = &seller->energy;
    keys[n++] = &buyer->energy;
    keys[n++] = &b->keys->energy_mint;
    if (s->value - s->fee > 0) {
        keys[n++] = &buyer->payment;
        keys[n++] = &seller->payment;
        keys[n++] = &b->keys->payment_mint;
    }
    if (s->fee > 0) {
        keys[n++] = &buyer->payment;
        keys[n++] = &b->keys->treasury;
        keys[n++] = &b->keys->payment_mint;
    }
    return n;
}

static size_t s_size (const settle_batch_t *b, size_t nkeys, size_t nix, size_t ix_bytes,
                      size_t memo_len)
{
    return sol_tx_size (nkeys, nix + 1, ix_bytes + sol_ix_size (0, memo_len));
}

size_t settle_batch_size (const settle_batch_t *b)
{
    return s_size (b, b->msg.nkeys, b->msg.nix, b->ix_bytes, b->memo_len);
}

bool settle_batch_add (settle_batch_t *b, settlement_t *s, const wallet_t *buyer,
                       const wallet_t *seller)
{
    if (b->count >= b->max_items || s->qty <= 0 || s->fee < 0 || s->value < s->fee)
        return false;
    const sol_key_t *keys[9];
    size_t n = s_keys (b, s, buyer, seller, keys), fresh = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = sol_msg_find (&b->msg, keys[i]) >= 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = sol_key_equal (keys[i], keys[j]);
        fresh += !seen;
    }
    char id[24];
    int idlen = snprintf (id, sizeof id, "%s%" PRIu64, b->count ? "," : "", s->trade_id);
    size_t nix = settle_instructions (s);
    size_t memo_len = b->memo_len + (size_t) idlen;
    if (b->msg.nkeys + fresh > SOL_MSG_KEYS_MAX || b->msg.nix + nix + 1 > SOL_MSG_IX_MAX ||
        s_size (b, b->msg.nkeys + fresh, b->msg.nix + nix, b->ix_bytes + nix * S_TRANSFER_BYTES,
                memo_len) > SOL_TX_MAX)
        return false;
    const keys_t *k = b->keys;
    int rc = sol_msg_transfer_checked (&b->msg, &k->token_program, &seller->energy, &k->energy_mint,
                                       &buyer->energy, &k->platform, (uint64_t) s->qty,
                                       KEYS_ENERGY_DECIMALS);
    if (rc == 0 && s->value - s->fee > 0)
        rc = sol_msg_transfer_checked (&b->msg, &k->token_program, &buyer->payment,
                                       &k->payment_mint, &seller->payment, &k->platform,
                                       (uint64_t) (s->value - s->fee), KEYS_PAYMENT_DECIMALS);
    if (rc == 0 && s->fee > 0)
        rc = sol_msg_transfer_checked (&b->msg, &k->token_program, &buyer->payment,
                                       &k->payment_mint, &k->treasury, &k->platform,
                                       (uint64_t) s->fee, KEYS_PAYMENT_DECIMALS);
    assert (rc == 0); //  the capacities were checked above
    memcpy (b->memo + b->memo_len, id, (size_t) idlen + 1);
    b->memo_len = memo_len;
    b->ix_bytes += nix * S_TRANSFER_BYTES;
    b->items[b->count++] = s;
    return true;
}

int settle_batch_seal (settle_batch_t *b, const uint8_t blockhash[SOL_HASH_BYTES],
                       uint8_t tx[SOL_TX_MAX], char signature[SOL_SIG_TEXT])
{
    if (b->count == 0)
        return -1;
    size_t expected = settle_batch_size (b);
    if (sol_msg_add (&b->msg, &b->keys->memo_program, NULL, 0, b->memo, b->memo_len))
        return -1;
    assert (sol_msg_tx_size (&b->msg) == expected);
    //  the message goes straight where the signed transaction carries it
    int len = sol_msg_compile (&b->msg, blockhash, tx + 1 + SOL_SIG_BYTES,
                               SOL_TX_MAX - 1 - SOL_SIG_BYTES);
    if (len < 0)
        return -1;
    uint8_t sig[SOL_SIG_BYTES];
    int n =
        sol_tx_sign (tx + 1 + SOL_SIG_BYTES, (size_t) len, b->keys->secret, tx, SOL_TX_MAX, sig);
    if (n < 0 || base58_encode (sig, sizeof sig, signature, SOL_SIG_TEXT) < 0)
        return -1;
    return n;
}
