/*  soltx — see soltx.h.  */
#include "soltx.h"
#include "base58.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int sol_key_parse (sol_key_t *key, const char *text)
{
    uint8_t bytes[BASE58_TEXT_MAX];
    size_t len = strlen (text);
    if (len >= SOL_KEY_TEXT || base58_decode (text, len, bytes, sizeof bytes) != SOL_KEY_BYTES)
        return -1;
    memcpy (key->bytes, bytes, SOL_KEY_BYTES);
    memcpy (key->text, text, len + 1);
    return 0;
}

void sol_key_set (sol_key_t *key, const uint8_t bytes[SOL_KEY_BYTES])
{
    memcpy (key->bytes, bytes, SOL_KEY_BYTES);
    int rc = base58_encode (bytes, SOL_KEY_BYTES, key->text, sizeof key->text);
    assert (rc > 0);
}

bool sol_key_equal (const sol_key_t *a, const sol_key_t *b)
{
    return memcmp (a->bytes, b->bytes, SOL_KEY_BYTES) == 0;
}

//  --------------------------------------------------------------------------------------------
//  compact-u16

size_t sol_cu16_encode (uint16_t value, uint8_t out[3])
{
    size_t n = 0;
    unsigned v = value;
    for (;;) {
        uint8_t b = (uint8_t) (v & 0x7f);
        v >>= 7;
        if (!v) {
            out[n++] = b;
            return n;
        }
        out[n++] = b | 0x80;
    }
}

size_t sol_cu16_size (size_t value)
{
    return value < 0x80 ? 1 : value < 0x4000 ? 2 : 3;
}

int sol_cu16_decode (const uint8_t *in, size_t len, uint16_t *value)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i >= len)
            return -1;
        uint8_t b = in[i];
        //  the third byte carries the top two bits only; a zero continuation is not shortest
        if (i == 2 && b > 0x03)
            return -1;
        if (i > 0 && b == 0)
            return -1;
        v |= (uint32_t) (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *value = (uint16_t) v;
            return (int) i + 1;
        }
    }
    return -1;
}

//  --------------------------------------------------------------------------------------------
//  kit's address order: ICU root collation of the base58 text, lower case first

//  Primary weight: digits, then letters regardless of case (base58 has nothing else).
static int s_primary (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 1 + (c - '0');
    if (c >= 'a' && c <= 'z')
        return 16 + (c - 'a');
    if (c >= 'A' && c <= 'Z')
        return 16 + (c - 'A');
    return 64 + c; //  not in base58: some fixed order after the letters
}

int sol_address_compare (const char *a, const char *b)
{
    //  primary level over the whole texts: a strict prefix comes first
    for (size_t i = 0;; i++) {
        unsigned char ca = (unsigned char) a[i], cb = (unsigned char) b[i];
        if (!ca || !cb) {
            if (ca != cb)
                return ca ? 1 : -1;
            break;
        }
        int pa = s_primary (ca), pb = s_primary (cb);
        if (pa != pb)
            return pa < pb ? -1 : 1;
    }
    //  tertiary level: the first difference in case decides, lower case first
    for (size_t i = 0; a[i]; i++)
        if (a[i] != b[i])
            return a[i] >= 'a' && a[i] <= 'z' ? -1 : 1;
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Messages

void sol_msg_init (sol_msg_t *msg, const sol_key_t *fee_payer)
{
    msg->nkeys = 0;
    msg->nix = 0;
    msg->data_len = 0;
    int rc = sol_msg_key (msg, fee_payer, true, true);
    assert (rc == 0);
}

int sol_msg_find (const sol_msg_t *msg, const sol_key_t *key)
{
    for (size_t i = 0; i < msg->nkeys; i++)
        if (msg->keys[i] == key || sol_key_equal (msg->keys[i], key))
            return (int) i;
    return -1;
}

int sol_msg_key (sol_msg_t *msg, const sol_key_t *key, bool signer, bool writable)
{
    int i = sol_msg_find (msg, key);
    if (i < 0) {
        if (msg->nkeys >= SOL_MSG_KEYS_MAX)
            return -1;
        i = (int) msg->nkeys++;
        msg->keys[i] = key;
        msg->signer[i] = false;
        msg->writable[i] = false;
    }
    msg->signer[i] |= signer;
    msg->writable[i] |= writable;
    return i;
}

int sol_msg_add (sol_msg_t *msg, const sol_key_t *program, const sol_meta_t *accounts, size_t n,
                 const void *data, size_t len)
{
    if (n > SOL_IX_ACCOUNTS_MAX || msg->nix >= SOL_MSG_IX_MAX ||
        msg->data_len + len > sizeof msg->data)
        return -1;
    //  room for every new key first, so that a refusal leaves the message as it was
    size_t fresh = sol_msg_find (msg, program) < 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = sol_msg_find (msg, accounts[i].key) >= 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = sol_key_equal (accounts[j].key, accounts[i].key);
        fresh += !seen && !sol_key_equal (accounts[i].key, program);
    }
    if (msg->nkeys + fresh > SOL_MSG_KEYS_MAX)
        return -1;
    size_t k = msg->nix++;
    msg->ix[k].naccounts = (uint8_t) n;
    for (size_t i = 0; i < n; i++)
        msg->ix[k].accounts[i] =
            (uint8_t) sol_msg_key (msg, accounts[i].key, accounts[i].signer, accounts[i].writable);
    msg->ix[k].program = (uint8_t) sol_msg_key (msg, program, false, false);
    msg->ix[k].data_off = (uint16_t) msg->data_len;
    msg->ix[k].data_len = (uint16_t) len;
    if (len)
        memcpy (msg->data + msg->data_len, data, len);
    msg->data_len += len;
    return 0;
}

size_t sol_ix_size (size_t n, size_t len)
{
    return 1 + sol_cu16_size (n) + n + sol_cu16_size (len) + len;
}

size_t sol_tx_size (size_t nkeys, size_t nix, size_t ix_bytes)
{
    return sol_cu16_size (1) + SOL_SIG_BYTES + 3 + sol_cu16_size (nkeys) + nkeys * SOL_KEY_BYTES +
           SOL_HASH_BYTES + sol_cu16_size (nix) + ix_bytes;
}

size_t sol_msg_tx_size (const sol_msg_t *msg)
{
    size_t ix_bytes = 0, signers = 0;
    for (size_t i = 0; i < msg->nix; i++)
        ix_bytes += sol_ix_size (msg->ix[i].naccounts, msg->ix[i].data_len);
    for (size_t i = 0; i < msg->nkeys; i++)
        signers += msg->signer[i];
    return sol_tx_size (msg->nkeys, msg->nix, ix_bytes) +
           (signers - 1) * SOL_SIG_BYTES; //  sol_tx_size counts one signature
}

static int s_rank (const sol_msg_t *msg, size_t i)
{
    return msg->signer[i] ? (msg->writable[i] ? 0 : 1) : (msg->writable[i] ? 2 : 3);
}

//  The fee payer first, then by role group, then by kit's address order.
static void s_order (const sol_msg_t *msg, uint8_t *order)
{
    for (size_t i = 0; i < msg->nkeys; i++)
        order[i] = (uint8_t) i;
    //  insertion sort: at most a few dozen keys
    for (size_t i = 2; i < msg->nkeys; i++) {
        uint8_t k = order[i];
        size_t j = i;
        while (j > 1) {
            uint8_t p = order[j - 1];
            int d = s_rank (msg, p) - s_rank (msg, k);
            if (d == 0)
                d = sol_address_compare (msg->keys[p]->text, msg->keys[k]->text);
            if (d <= 0)
                break;
            order[j] = p;
            j--;
        }
        order[j] = k;
    }
}

int sol_msg_compile (const sol_msg_t *msg, const uint8_t blockhash[SOL_HASH_BYTES], uint8_t *out,
                     size_t size)
{
    if (sol_msg_tx_size (msg) > SOL_TX_MAX)
        return -1;
    uint8_t order[SOL_MSG_KEYS_MAX], where[SOL_MSG_KEYS_MAX];
    s_order (msg, order);
    uint8_t nsig = 0, ro_signed = 0, ro_unsigned = 0;
    for (size_t i = 0; i < msg->nkeys; i++) {
        where[order[i]] = (uint8_t) i;
        nsig += msg->signer[i];
        ro_signed += msg->signer[i] && !msg->writable[i];
        ro_unsigned += !msg->signer[i] && !msg->writable[i];
    }
    size_t o = 0;
#define S_NEED(n)                                                                                  \
    do {                                                                                           \
        if (o + (n) > size)                                                                        \
            return -1;                                                                             \
    } while (0)
    S_NEED (3 + 3);
    out[o++] = nsig;
    out[o++] = ro_signed;
    out[o++] = ro_unsigned;
    o += sol_cu16_encode ((uint16_t) msg->nkeys, out + o);
    S_NEED (msg->nkeys * SOL_KEY_BYTES + SOL_HASH_BYTES + 3);
    for (size_t i = 0; i < msg->nkeys; i++, o += SOL_KEY_BYTES)
        memcpy (out + o, msg->keys[order[i]]->bytes, SOL_KEY_BYTES);
    memcpy (out + o, blockhash, SOL_HASH_BYTES);
    o += SOL_HASH_BYTES;
    o += sol_cu16_encode ((uint16_t) msg->nix, out + o);
    for (size_t k = 0; k < msg->nix; k++) {
        size_t n = msg->ix[k].naccounts, len = msg->ix[k].data_len;
        S_NEED (sol_ix_size (n, len));
        out[o++] = where[msg->ix[k].program];
        o += sol_cu16_encode ((uint16_t) n, out + o);
        for (size_t i = 0; i < n; i++)
            out[o++] = where[msg->ix[k].accounts[i]];
        o += sol_cu16_encode ((uint16_t) len, out + o);
        memcpy (out + o, msg->data + msg->ix[k].data_off, len);
        o += len;
    }
#undef S_NEED
    return (int) o;
}

int sol_tx_sign (const uint8_t *message, size_t len, const uint8_t secret[SOL_SECRET_BYTES],
                 uint8_t *tx, size_t size, uint8_t signature[SOL_SIG_BYTES])
{
    if (1 + SOL_SIG_BYTES + len > size)
        return -1;
    tx[0] = 1;
    crypto_sign_ed25519_detached (tx + 1, NULL, message, len, secret);
    memmove (tx + 1 + SOL_SIG_BYTES, message, len);
    memcpy (signature, tx + 1, SOL_SIG_BYTES);
    return (int) (1 + SOL_SIG_BYTES + len);
}

void sol_transfer_checked_data (uint8_t out[SOL_TRANSFER_CHECKED_LEN], uint64_t amount,
                                uint8_t decimals)
{
    out[0] = 12;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t) (amount >> (8 * i));
    out[9] = decimals;
}

int sol_msg_transfer_checked (sol_msg_t *msg, const sol_key_t *token_program,
                              const sol_key_t *source, const sol_key_t *mint,
                              const sol_key_t *destination, const sol_key_t *authority,
                              uint64_t amount, uint8_t decimals)
{
    uint8_t data[SOL_TRANSFER_CHECKED_LEN];
    sol_transfer_checked_data (data, amount, decimals);
    sol_meta_t accounts[4] = {{source, false, true},
                              {mint, false, false},
                              {destination, false, true},
                              {authority, true, false}};
    return sol_msg_add (msg, token_program, accounts, 4, data, sizeof data);
}
