/*  test_soltx — the settler's hand-written Solana against the Solana JS library.

    tests/vectors/soltx.json was written by tools/ledger/make_vectors.js with @solana/kit and
    @solana-program/token (run it again to check: the output is byte-for-byte the same). From
    it: compact-u16 and base58 encodings, which 32-byte strings are ed25519 points, associated
    token accounts, kit's order of addresses, and whole signed transactions — settlements
    wallet to wallet and out of escrow, deposits into the vaults and withdrawals from them —
    which must come out of settle_batch byte for byte, signature included. Then the packing
    limit: a batch takes settlements until the next would pass 1232 bytes, and the size it
    predicts is the size it builds.
*/
#include "base58.h"
#include "keys.h"
#include "settle_batch.h"
#include "solpda.h"
#include "soltx.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *s_vectors (void)
{
    static json_t *v;
    if (!v) {
        json_error_t err;
        v = json_load_file (MCE_SOURCE_DIR "/tests/vectors/soltx.json", 0, &err);
        cr_assert_not_null (v, "tests/vectors/soltx.json: %s", err.text);
    }
    return v;
}

static size_t s_hex (const char *hex, uint8_t *out, size_t size)
{
    size_t len;
    cr_assert_eq (sodium_hex2bin (out, size, hex, strlen (hex), NULL, &len, NULL), 0);
    return len;
}

static const char *s_str (const json_t *o, const char *key)
{
    const json_t *v = json_object_get (o, key);
    cr_assert (json_is_string (v), "no string %s", key);
    return json_string_value (v);
}

static void s_key (sol_key_t *k, const char *text)
{
    cr_assert_eq (sol_key_parse (k, text), 0, "%s is not a key", text);
}

Test (soltx, compact_u16_matches_kit)
{
    cr_assert_eq (sodium_init () < 0, 0);
    json_t *cases = json_object_get (s_vectors (), "compactU16");
    cr_assert_gt (json_array_size (cases), 8);
    size_t i;
    json_t *c;
    json_array_foreach (cases, i, c)
    {
        uint16_t value = (uint16_t) json_integer_value (json_object_get (c, "value"));
        uint8_t want[3], got[3];
        size_t n = s_hex (s_str (c, "hex"), want, sizeof want);
        cr_assert_eq (sol_cu16_encode (value, got), n, "size of %u", value);
        cr_assert_eq (memcmp (got, want, n), 0, "bytes of %u", value);
        cr_assert_eq (sol_cu16_size (value), n);
        uint16_t back;
        cr_assert_eq (sol_cu16_decode (got, n, &back), (int) n);
        cr_assert_eq (back, value);
    }
}

Test (soltx, compact_u16_decoding_refuses_what_solana_refuses)
{
    uint16_t v;
    //  one, two and three bytes
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0x7f}, 1, &v), 1);
    cr_assert_eq (v, 0x7f);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0x80, 0x01}, 2, &v), 2);
    cr_assert_eq (v, 0x80);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0xff, 0x7f}, 2, &v), 2);
    cr_assert_eq (v, 0x3fff);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0x80, 0x80, 0x01}, 3, &v), 3);
    cr_assert_eq (v, 0x4000);
    //  truncated, not the shortest form, too large, too long
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0x80}, 1, &v), -1);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0x80, 0x00}, 2, &v), -1);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0xff, 0xff, 0x04}, 3, &v), -1);
    cr_assert_eq (sol_cu16_decode ((const uint8_t[]){0xff, 0xff, 0x83, 0x01}, 4, &v), -1);
    //  every value round-trips
    for (unsigned x = 0; x <= 0xffff; x++) {
        uint8_t b[3];
        size_t n = sol_cu16_encode ((uint16_t) x, b);
        cr_assert_eq (sol_cu16_decode (b, n, &v), (int) n);
        cr_assert_eq (v, x);
    }
}

Test (soltx, base58_matches_kit)
{
    json_t *cases = json_object_get (s_vectors (), "base58");
    size_t i;
    json_t *c;
    json_array_foreach (cases, i, c)
    {
        uint8_t bytes[128], back[128];
        size_t n = s_hex (s_str (c, "hex"), bytes, sizeof bytes);
        char text[BASE58_ENCODE_SIZE (128)];
        cr_assert_eq (base58_encode (bytes, n, text, sizeof text),
                      (int) strlen (s_str (c, "text")));
        cr_assert_str_eq (text, s_str (c, "text"));
        cr_assert_eq (base58_decode (text, strlen (text), back, sizeof back), (int) n);
        cr_assert_eq (memcmp (back, bytes, n), 0);
    }
}

Test (soltx, on_curve_as_solana_decides)
{
    json_t *cases = json_object_get (s_vectors (), "offCurve");
    size_t i, on = 0, off = 0;
    json_t *c;
    json_array_foreach (cases, i, c)
    {
        uint8_t p[32];
        cr_assert_eq (s_hex (s_str (c, "hex"), p, sizeof p), 32);
        bool want_off = json_is_true (json_object_get (c, "offCurve"));
        cr_assert_eq (sol_on_curve (p), !want_off, "case %zu (%s)", i, s_str (c, "hex"));
        on += !want_off;
        off += want_off;
    }
    cr_assert (on > 8 && off > 8, "both kinds are tested (%zu on, %zu off)", on, off);
    //  libsodium would disagree: most curve points are outside its prime-order subgroup
    size_t disagree = 0;
    json_array_foreach (cases, i, c)
    {
        uint8_t p[32];
        s_hex (s_str (c, "hex"), p, sizeof p);
        disagree += sol_on_curve (p) && !crypto_core_ed25519_is_valid_point (p);
    }
    cr_assert_gt (disagree, 0, "the vectors include points libsodium calls invalid");
}

Test (soltx, associated_token_accounts_match_kit)
{
    json_t *cases = json_object_get (s_vectors (), "ata");
    size_t i;
    json_t *c;
    json_array_foreach (cases, i, c)
    {
        sol_key_t owner, mint, want, got, program, token;
        s_key (&owner, s_str (c, "owner"));
        s_key (&mint, s_str (c, "mint"));
        s_key (&want, s_str (c, "address"));
        cr_assert_eq (sol_ata (&owner, &mint, &got), 0);
        cr_assert_str_eq (got.text, want.text, "owner %s", owner.text);
        //  and the bump, through the general search
        s_key (&program, SOL_ATA_PROGRAM);
        s_key (&token, SOL_TOKEN_PROGRAM);
        const uint8_t *seeds[3] = {owner.bytes, token.bytes, mint.bytes};
        size_t lengths[3] = {32, 32, 32};
        uint8_t bump;
        cr_assert_eq (sol_pda_find (seeds, lengths, 3, &program, &got, &bump), 0);
        cr_assert_eq (bump, json_integer_value (json_object_get (c, "bump")));
    }
}

Test (soltx, addresses_order_as_kit_orders_them)
{
    json_t *order = json_object_get (s_vectors (), "addressOrder");
    size_t n = json_array_size (order);
    cr_assert_gt (n, 40);
    for (size_t i = 0; i + 1 < n; i++) {
        const char *a = json_string_value (json_array_get (order, i));
        const char *b = json_string_value (json_array_get (order, i + 1));
        cr_assert_lt (sol_address_compare (a, b), 0, "\"%s\" before \"%s\"", a, b);
        cr_assert_gt (sol_address_compare (b, a), 0, "\"%s\" after \"%s\"", b, a);
        cr_assert_eq (sol_address_compare (a, a), 0);
    }
}

//  The vectors' platform, mints, treasury and users as the settler holds them.
typedef struct {
    keys_t keys;
    wallet_t users[16];
    size_t user_count;
} s_world_t;

static void s_world (s_world_t *w)
{
    json_t *v = s_vectors ();
    memset (w, 0, sizeof *w);
    uint8_t seed[32], pub[32];
    cr_assert_eq (s_hex (s_str (json_object_get (v, "platform"), "seedHex"), seed, sizeof seed),
                  32);
    crypto_sign_seed_keypair (pub, w->keys.secret, seed);
    sol_key_set (&w->keys.platform, pub);
    cr_assert_str_eq (w->keys.platform.text, s_str (json_object_get (v, "platform"), "pubkey"));
    s_key (&w->keys.energy_mint, s_str (json_object_get (v, "energyMint"), "address"));
    s_key (&w->keys.payment_mint, s_str (json_object_get (v, "paymentMint"), "address"));
    s_key (&w->keys.treasury, s_str (json_object_get (v, "treasury"), "paymentAccount"));
    s_key (&w->keys.token_program, SOL_TOKEN_PROGRAM);
    s_key (&w->keys.memo_program, SOL_MEMO_PROGRAM);
    //  the vaults are the platform's associated token accounts, as keys.c derives them
    cr_assert_eq (sol_ata (&w->keys.platform, &w->keys.energy_mint, &w->keys.vault_energy), 0);
    cr_assert_eq (sol_ata (&w->keys.platform, &w->keys.payment_mint, &w->keys.vault_payment), 0);
    cr_assert_str_eq (w->keys.vault_energy.text, s_str (json_object_get (v, "vaults"), "energy"));
    cr_assert_str_eq (w->keys.vault_payment.text, s_str (json_object_get (v, "vaults"), "payment"));
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (v, "users"), i, u)
    {
        cr_assert_lt (i, 16);
        wallet_t *x = &w->users[w->user_count++];
        s_key (&x->wallet, s_str (u, "wallet"));
        s_key (&x->energy, s_str (u, "energy"));
        s_key (&x->payment, s_str (u, "payment"));
        //  the accounts are the wallet's associated token accounts
        sol_key_t ata;
        cr_assert_eq (sol_ata (&x->wallet, &w->keys.energy_mint, &ata), 0);
        cr_assert (sol_key_equal (&ata, &x->energy));
        cr_assert_eq (sol_ata (&x->wallet, &w->keys.payment_mint, &ata), 0);
        cr_assert (sol_key_equal (&ata, &x->payment));
    }
}

//  A sealed batch against kit's transaction of case c: size predicted, bytes, signature.
static void s_same_as_kit (settle_batch_t *b, const json_t *c)
{
    size_t size = (size_t) json_integer_value (json_object_get (c, "size"));
    cr_assert_eq (settle_batch_size (b), size, "%s: predicted size", s_str (c, "name"));
    uint8_t blockhash[64], tx[SOL_TX_MAX], want[2 * SOL_TX_MAX];
    cr_assert_eq (base58_decode (s_str (c, "blockhash"), strlen (s_str (c, "blockhash")), blockhash,
                                 sizeof blockhash),
                  32);
    char sig[SOL_SIG_TEXT];
    int len = settle_batch_seal (b, blockhash, tx, sig);
    size_t want_len;
    const char *b64 = s_str (c, "base64");
    cr_assert_eq (sodium_base642bin (want, sizeof want, b64, strlen (b64), NULL, &want_len, NULL,
                                     sodium_base64_VARIANT_ORIGINAL),
                  0);
    cr_assert_eq ((size_t) len, want_len, "%s: %d bytes, kit made %zu", s_str (c, "name"), len,
                  want_len);
    for (size_t i = 0; i < want_len; i++)
        cr_assert_eq (tx[i], want[i], "%s: byte %zu differs", s_str (c, "name"), i);
    cr_assert_str_eq (sig, s_str (c, "signature"));
}

//  Settlements from a case's list, trade ids from its memo, into b (escrow or not).
static void s_fill (s_world_t *w, settle_batch_t *b, const json_t *c, settlement_t *s, bool escrow)
{
    const char *ids = s_str (c, "memo") + strlen (SETTLE_MEMO_PREFIX);
    size_t k;
    json_t *x;
    json_array_foreach (json_object_get (c, "settlements"), k, x)
    {
        s[k].trade_id = strtoull (ids, (char **) &ids, 10);
        ids += *ids == ',';
        s[k].qty = json_integer_value (json_object_get (x, "energy"));
        s[k].fee = json_integer_value (json_object_get (x, "fee"));
        s[k].value = json_integer_value (json_object_get (x, "payment")) + s[k].fee;
        const wallet_t *seller = &w->users[json_integer_value (json_object_get (x, "seller"))];
        const wallet_t *buyer = &w->users[json_integer_value (json_object_get (x, "buyer"))];
        cr_assert (settle_batch_add (b, &s[k], buyer, seller, escrow), "%s: settlement %zu fits",
                   s_str (c, "name"), k);
    }
}

Test (soltx, settlements_out_of_escrow_match_kit_byte_for_byte)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    json_t *txs = json_object_get (s_vectors (), "escrowTransactions");
    cr_assert_eq (json_array_size (txs), 2);
    size_t t;
    json_t *c;
    json_array_foreach (txs, t, c)
    {
        const char *memo = s_str (c, "memo");
        cr_assert_eq (strncmp (memo, SETTLE_MEMO_PREFIX, strlen (SETTLE_MEMO_PREFIX)), 0);
        settlement_t s[16];
        memset (s, 0, sizeof s);
        settle_batch_t b;
        settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
        s_fill (&w, &b, c, s, true);
        s_same_as_kit (&b, c);
    }
}

//  Out of escrow, the grid's side of a trade pays from the grid's own wallet (it never paid
//  into a vault) and the other side from its vault, as before.
Test (soltx, the_grid_side_pays_from_its_wallet)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    const wallet_t *buyer = &w.users[0], *grid = &w.users[1];
    for (int side = PROTO_SIDE_BUY; side <= PROTO_SIDE_SELL; side++) {
        settlement_t s = {.trade_id = 7, .qty = 1000, .value = 300000, .fee = 3000};
        s.escrow = true;
        s.grid = (uint8_t) side;
        bool grid_sells = side == PROTO_SIDE_SELL;
        const wallet_t *b = grid_sells ? buyer : grid, *sl = grid_sells ? grid : buyer;
        settle_batch_t batch;
        settle_batch_init (&batch, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
        cr_assert (settle_batch_add (&batch, &s, b, sl, true));
        //  the grid sells: energy from its wallet, payment from the vault; buys: the reverse
        cr_assert_eq (sol_msg_find (&batch.msg, &sl->energy) >= 0, grid_sells);
        cr_assert_eq (sol_msg_find (&batch.msg, &w.keys.vault_energy) >= 0, !grid_sells);
        cr_assert_eq (sol_msg_find (&batch.msg, &b->payment) >= 0, !grid_sells);
        cr_assert_eq (sol_msg_find (&batch.msg, &w.keys.vault_payment) >= 0, grid_sells);
    }
}

Test (soltx, deposits_and_withdrawals_match_kit_byte_for_byte)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    json_t *txs = json_object_get (s_vectors (), "transferTransactions");
    cr_assert_eq (json_array_size (txs), 4);
    size_t t;
    json_t *c;
    json_array_foreach (txs, t, c)
    {
        bool deposit = strcmp (s_str (c, "kind"), "deposit") == 0;
        const char *prefix = deposit ? SETTLE_MEMO_DEPOSIT : SETTLE_MEMO_WITHDRAWAL;
        const char *ids = s_str (c, "memo");
        cr_assert_eq (strncmp (ids, prefix, strlen (prefix)), 0);
        ids += strlen (prefix);
        transfer_t x[8];
        memset (x, 0, sizeof x);
        settle_batch_t b;
        settle_batch_init (&b, &w.keys, deposit ? SETTLE_BATCH_DEPOSITS : SETTLE_BATCH_WITHDRAWALS,
                           SETTLE_TX_ITEMS_MAX);
        size_t k;
        json_t *y;
        json_array_foreach (json_object_get (c, "transfers"), k, y)
        {
            x[k].kind = deposit ? PROTO_TRANSFER_KIND_DEPOSIT : PROTO_TRANSFER_KIND_WITHDRAWAL;
            x[k].id = strtoull (ids, (char **) &ids, 10);
            ids += *ids == ',';
            bool energy = strcmp (s_str (y, "asset"), "energy") == 0;
            x[k].asset = energy ? PROTO_ASSET_ENERGY : PROTO_ASSET_PAYMENT;
            x[k].amount = json_integer_value (json_object_get (y, "amount"));
            const wallet_t *u = &w.users[json_integer_value (json_object_get (y, "user"))];
            //  a batch of the other kind does not take it
            settle_batch_t other;
            settle_batch_init (&other, &w.keys,
                               deposit ? SETTLE_BATCH_WITHDRAWALS : SETTLE_BATCH_DEPOSITS, 4);
            cr_assert_not (settle_batch_add_transfer (&other, &x[k], &u->energy));
            cr_assert (settle_batch_add_transfer (&b, &x[k], energy ? &u->energy : &u->payment),
                       "%s: transfer %zu fits", s_str (c, "name"), k);
        }
        s_same_as_kit (&b, c);
    }
}

Test (soltx, settlement_transactions_match_kit_byte_for_byte)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    json_t *txs = json_object_get (s_vectors (), "transactions");
    cr_assert_eq (json_array_size (txs), 4);
    size_t t;
    json_t *c;
    json_array_foreach (txs, t, c)
    {
        //  trade ids from the memo, settlements from the case
        const char *memo = s_str (c, "memo");
        cr_assert_eq (strncmp (memo, SETTLE_MEMO_PREFIX, strlen (SETTLE_MEMO_PREFIX)), 0);
        settlement_t s[16];
        memset (s, 0, sizeof s);
        settle_batch_t b;
        settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
        s_fill (&w, &b, c, s, false);
        s_same_as_kit (&b, c);
    }
}

//  The same first transaction, built with soltx alone (the order instructions are added in is
//  the only order that matters; keys sort themselves).
Test (soltx, a_message_built_by_hand)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    json_t *c = json_array_get (json_object_get (s_vectors (), "transactions"), 0);
    sol_msg_t m;
    sol_msg_init (&m, &w.keys.platform);
    const wallet_t *seller = &w.users[0], *buyer = &w.users[1];
    cr_assert_eq (sol_msg_transfer_checked (&m, &w.keys.token_program, &seller->energy,
                                            &w.keys.energy_mint, &buyer->energy, &w.keys.platform,
                                            12345, 3),
                  0);
    cr_assert_eq (sol_msg_transfer_checked (&m, &w.keys.token_program, &buyer->payment,
                                            &w.keys.payment_mint, &seller->payment,
                                            &w.keys.platform, 1851000, 6),
                  0);
    cr_assert_eq (sol_msg_transfer_checked (&m, &w.keys.token_program, &buyer->payment,
                                            &w.keys.payment_mint, &w.keys.treasury,
                                            &w.keys.platform, 4628, 6),
                  0);
    cr_assert_eq (sol_msg_add (&m, &w.keys.memo_program, NULL, 0, "mce:t=7", 7), 0);
    cr_assert_eq (m.nkeys, 10, "platform, 4 user accounts, treasury, 2 mints, 2 programs");
    uint8_t blockhash[64], message[SOL_TX_MAX], tx[SOL_TX_MAX], sig[64];
    base58_decode (s_str (c, "blockhash"), strlen (s_str (c, "blockhash")), blockhash,
                   sizeof blockhash);
    int len = sol_msg_compile (&m, blockhash, message, sizeof message);
    cr_assert_gt (len, 0);
    int n = sol_tx_sign (message, (size_t) len, w.keys.secret, tx, sizeof tx, sig);
    cr_assert_eq ((size_t) n, sol_msg_tx_size (&m));
    char b64[2 * SOL_TX_MAX];
    sodium_bin2base64 (b64, sizeof b64, tx, (size_t) n, sodium_base64_VARIANT_ORIGINAL);
    cr_assert_str_eq (b64, s_str (c, "base64"));
    //  the header: one signer (the fee payer), no readonly signer, 4 readonly keys
    cr_assert_eq (message[0], 1);
    cr_assert_eq (message[1], 0);
    cr_assert_eq (message[2], 4);
    cr_assert_eq (
        crypto_sign_ed25519_verify_detached (sig, message, (size_t) len, w.keys.platform.bytes), 0);
}

Test (soltx, a_batch_stops_at_1232_bytes)
{
    cr_assert_eq (sodium_init () < 0, 0);
    s_world_t w;
    s_world (&w);
    //  distinct users for every settlement: four new accounts each, so few fit
    static wallet_t users[128];
    for (int i = 0; i < 128; i++) {
        uint8_t seed[32], pk[32], sk[64];
        memset (seed, 0, sizeof seed);
        seed[0] = (uint8_t) i;
        seed[1] = 0x5e;
        crypto_sign_seed_keypair (pk, sk, seed);
        sol_key_set (&users[i].wallet, pk);
        cr_assert_eq (sol_ata (&users[i].wallet, &w.keys.energy_mint, &users[i].energy), 0);
        cr_assert_eq (sol_ata (&users[i].wallet, &w.keys.payment_mint, &users[i].payment), 0);
    }
    settlement_t s[64];
    memset (s, 0, sizeof s);
    settle_batch_t b;
    settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
    size_t added = 0;
    for (size_t i = 0; i < 64; i++) {
        s[i] = (settlement_t){.trade_id = 1000000 + i, .qty = 1500, .value = 225000, .fee = 563};
        if (!settle_batch_add (&b, &s[i], &users[2 * i], &users[2 * i + 1], false))
            break;
        added++;
        cr_assert_leq (settle_batch_size (&b), SOL_TX_MAX);
    }
    cr_assert (added >= 3 && added < 64, "%zu distinct settlements fit", added);
    uint8_t blockhash[32] = {7}, tx[SOL_TX_MAX];
    char sig[SOL_SIG_TEXT];
    size_t predicted = settle_batch_size (&b);
    int len = settle_batch_seal (&b, blockhash, tx, sig);
    cr_assert_eq ((size_t) len, predicted);
    fprintf (stderr, "soltx: %zu settlements between distinct users: %d bytes\n", added, len);
    //  out of escrow the sources are the two vaults every settlement shares: two new accounts
    //  each instead of four, so more fit
    size_t wallet_to_wallet = added;
    settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
    added = 0;
    for (size_t i = 0; i < 64; i++) {
        s[i] = (settlement_t){.trade_id = 1000000 + i, .qty = 1500, .value = 225000, .fee = 563};
        if (!settle_batch_add (&b, &s[i], &users[2 * i], &users[2 * i + 1], true))
            break;
        added++;
    }
    predicted = settle_batch_size (&b);
    len = settle_batch_seal (&b, blockhash, tx, sig);
    cr_assert_eq ((size_t) len, predicted);
    cr_assert_gt (added, wallet_to_wallet, "escrow packs more (%zu)", added);
    fprintf (stderr, "soltx: %zu settlements out of escrow between distinct users: %d bytes\n",
             added, len);
    //  deposits of distinct users: one new account each
    static transfer_t deposits[64];
    settle_batch_init (&b, &w.keys, SETTLE_BATCH_DEPOSITS, SETTLE_TX_ITEMS_MAX);
    added = 0;
    for (size_t i = 0; i < 64; i++) {
        deposits[i] = (transfer_t){.kind = PROTO_TRANSFER_KIND_DEPOSIT,
                                   .id = 100 + i,
                                   .asset = PROTO_ASSET_PAYMENT,
                                   .amount = 1000000};
        if (!settle_batch_add_transfer (&b, &deposits[i], &users[i].payment))
            break;
        added++;
    }
    predicted = settle_batch_size (&b);
    len = settle_batch_seal (&b, blockhash, tx, sig);
    cr_assert_eq ((size_t) len, predicted);
    cr_assert_geq (added, 16, "deposits of distinct users (%zu)", added);
    fprintf (stderr, "soltx: %zu deposits of distinct users: %d bytes\n", added, len);
    //  the same two users every time: only the instructions and the memo grow
    settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, SETTLE_TX_ITEMS_MAX);
    added = 0;
    for (size_t i = 0; i < 64; i++) {
        s[i] = (settlement_t){.trade_id = 1 + i, .qty = 1500, .value = 225000, .fee = 563};
        if (!settle_batch_add (&b, &s[i], &users[0], &users[1], false))
            break;
        added++;
    }
    predicted = settle_batch_size (&b);
    len = settle_batch_seal (&b, blockhash, tx, sig);
    cr_assert_eq ((size_t) len, predicted);
    cr_assert_geq (added, 12, "shared accounts pack densely (%zu)", added);
    fprintf (stderr, "soltx: %zu settlements between two users: %d bytes\n", added, len);
    //  and the limit given by max_trades_per_tx
    settle_batch_init (&b, &w.keys, SETTLE_BATCH_TRADES, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert (settle_batch_add (&b, &s[i], &users[0], &users[1], false));
    cr_assert_not (settle_batch_add (&b, &s[4], &users[0], &users[1], false));
}
