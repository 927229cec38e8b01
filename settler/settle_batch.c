/*  settle_batch — see settle_batch.h.  */
#include "settle_batch.h"
#include "base58.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_TRANSFER_BYTES 17 //  sol_ix_size (4, SOL_TRANSFER_CHECKED_LEN)

static const char *s_prefix (settle_batch_kind_t kind)
{
    return kind == SETTLE_BATCH_DEPOSITS      ? SETTLE_MEMO_DEPOSIT
           : kind == SETTLE_BATCH_WITHDRAWALS ? SETTLE_MEMO_WITHDRAWAL
                                              : SETTLE_MEMO_PREFIX;
}

void settle_batch_init (settle_batch_t *b, const keys_t *keys, settle_batch_kind_t kind,
                        size_t max_items)
{
    b->keys = keys;
    b->kind = kind;
    b->count = 0;
    b->max_items = max_items < SETTLE_TX_ITEMS_MAX ? max_items : SETTLE_TX_ITEMS_MAX;
    b->ix_bytes = 0;
    b->memo_len = (size_t) snprintf (b->memo, sizeof b->memo, "%s", s_prefix (kind));
    sol_msg_init (&b->msg, &keys->platform);
    //  every transaction calls both programs: their keys are there from the start
    sol_msg_key (&b->msg, &keys->token_program, false, false);
    sol_msg_key (&b->msg, &keys->memo_program, false, false);
}

//  The accounts of one transfer: source, destination, mint (the caller counts the new ones).
typedef struct {
    const sol_key_t *source, *destination, *mint;
    uint64_t amount;
    uint8_t decimals;
} s_transfer_t;

//  A settlement's transfers (1 to 3), in instruction order.
static size_t s_settlement (const settle_batch_t *b, const settlement_t *s, const wallet_t *buyer,
                            const wallet_t *seller, bool escrow, s_transfer_t *out)
{
    const keys_t *k = b->keys;
    //  the grid's side pays from its own wallet: it never paid into a vault
    const sol_key_t *energy_from =
        escrow && s->grid != PROTO_SIDE_SELL ? &k->vault_energy : &seller->energy;
    const sol_key_t *payment_from =
        escrow && s->grid != PROTO_SIDE_BUY ? &k->vault_payment : &buyer->payment;
    size_t n = 0;
    out[n++] = (s_transfer_t){energy_from, &buyer->energy, &k->energy_mint, (uint64_t) s->qty,
                              KEYS_ENERGY_DECIMALS};
    if (s->value - s->fee > 0)
        out[n++] = (s_transfer_t){payment_from, &seller->payment, &k->payment_mint,
                                  (uint64_t) (s->value - s->fee), KEYS_PAYMENT_DECIMALS};
    if (s->fee > 0)
        out[n++] = (s_transfer_t){payment_from, &k->treasury, &k->payment_mint, (uint64_t) s->fee,
                                  KEYS_PAYMENT_DECIMALS};
    return n;
}

static size_t s_size (size_t nkeys, size_t nix, size_t ix_bytes, size_t memo_len)
{
    return sol_tx_size (nkeys, nix + 1, ix_bytes + sol_ix_size (0, memo_len));
}

size_t settle_batch_size (const settle_batch_t *b)
{
    return s_size (b->msg.nkeys, b->msg.nix, b->ix_bytes, b->memo_len);
}

//  Appends transfers (with the memo id) when they fit. true if they were added.
static bool s_add (settle_batch_t *b, const s_transfer_t *t, size_t nix, uint64_t id)
{
    if (b->count >= b->max_items)
        return false;
    const sol_key_t *keys[9];
    size_t n = 0;
    for (size_t i = 0; i < nix; i++) {
        keys[n++] = t[i].source;
        keys[n++] = t[i].destination;
        keys[n++] = t[i].mint;
    }
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = sol_msg_find (&b->msg, keys[i]) >= 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = sol_key_equal (keys[i], keys[j]);
        fresh += !seen;
    }
    char text[24];
    int idlen = snprintf (text, sizeof text, "%s%" PRIu64, b->count ? "," : "", id);
    size_t memo_len = b->memo_len + (size_t) idlen;
    if (b->msg.nkeys + fresh > SOL_MSG_KEYS_MAX || b->msg.nix + nix + 1 > SOL_MSG_IX_MAX ||
        s_size (b->msg.nkeys + fresh, b->msg.nix + nix, b->ix_bytes + nix * S_TRANSFER_BYTES,
                memo_len) > SOL_TX_MAX)
        return false;
    const keys_t *k = b->keys;
    for (size_t i = 0; i < nix; i++) {
        int rc =
            sol_msg_transfer_checked (&b->msg, &k->token_program, t[i].source, t[i].mint,
                                      t[i].destination, &k->platform, t[i].amount, t[i].decimals);
        assert (rc == 0); //  the capacities were checked above
        (void) rc;
    }
    memcpy (b->memo + b->memo_len, text, (size_t) idlen + 1);
    b->memo_len = memo_len;
    b->ix_bytes += nix * S_TRANSFER_BYTES;
    b->count++;
    return true;
}

bool settle_batch_add (settle_batch_t *b, settlement_t *s, const wallet_t *buyer,
                       const wallet_t *seller, bool escrow)
{
    if (b->kind != SETTLE_BATCH_TRADES || s->qty <= 0 || s->fee < 0 || s->value < s->fee)
        return false;
    s_transfer_t t[3];
    size_t nix = s_settlement (b, s, buyer, seller, escrow, t);
    assert (nix == settle_instructions (s));
    if (!s_add (b, t, nix, s->trade_id))
        return false;
    b->items[b->count - 1] = s;
    return true;
}

bool settle_batch_add_transfer (settle_batch_t *b, transfer_t *t, const sol_key_t *account)
{
    bool deposit = t->kind == PROTO_TRANSFER_KIND_DEPOSIT;
    if (b->kind != (deposit ? SETTLE_BATCH_DEPOSITS : SETTLE_BATCH_WITHDRAWALS) || t->amount <= 0 ||
        (t->asset != PROTO_ASSET_ENERGY && t->asset != PROTO_ASSET_PAYMENT))
        return false;
    const keys_t *k = b->keys;
    bool energy = t->asset == PROTO_ASSET_ENERGY;
    const sol_key_t *vault = energy ? &k->vault_energy : &k->vault_payment;
    s_transfer_t x = {deposit ? account : vault, deposit ? vault : account,
                      energy ? &k->energy_mint : &k->payment_mint, (uint64_t) t->amount,
                      energy ? KEYS_ENERGY_DECIMALS : KEYS_PAYMENT_DECIMALS};
    if (!s_add (b, &x, 1, t->id))
        return false;
    b->transfers[b->count - 1] = t;
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
    (void) expected;
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
