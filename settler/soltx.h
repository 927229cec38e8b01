/*  soltx — Solana's legacy transaction, written by hand: keys, compact-u16, the
    message, its signature, and the SPL-token and memo instructions the settler needs.

        tx      = compact-u16 nsig | nsig × 64-byte ed25519 signature | message
        message = u8 nsig | u8 readonly signed | u8 readonly unsigned
                | compact-u16 nkeys | nkeys × 32-byte key | 32-byte recent blockhash
                | compact-u16 nix | per instruction: u8 program index | compact-u16 n
                  | n × u8 account index | compact-u16 len | data

    Keys are ordered as @solana/kit orders them, so that our bytes are the bytes the Solana JS
    library produces for the same instructions (tests/unit/test_soltx.c compares them with
    tests/vectors/soltx.json, written by tools/ledger/make_vectors.js): the fee payer first,
    then writable signers, readonly signers, writable and readonly non-signers; inside each
    group by kit's address comparator, an ICU collation of the base58 texts ("en", lower case
    first: digits before letters, letters without regard to case, then lower before upper at
    the first difference). A key named by several instructions takes the strongest role.

    A message is built in a sol_msg_t, a fixed-size value with no allocation: keys are borrowed
    (sol_key_t pointers must outlive it), instruction data is copied. Signing uses libsodium;
    signatures are deterministic, so the same message always gives the same transaction id.
*/
#ifndef MCE_SOLTX_H
#define MCE_SOLTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOL_KEY_BYTES       32
#define SOL_SIG_BYTES       64
#define SOL_HASH_BYTES      32
#define SOL_SECRET_BYTES    64   //  libsodium's ed25519 secret key: seed ‖ public key
#define SOL_KEY_TEXT        45   //  base58 of 32 bytes (≤ 44) and the NUL
#define SOL_SIG_TEXT        89   //  base58 of 64 bytes (≤ 88) and the NUL
#define SOL_TX_MAX          1232 //  bytes of a whole transaction (IPv6 MTU − headers)
#define SOL_MSG_KEYS_MAX    64   //  more cannot fit in SOL_TX_MAX anyway
#define SOL_MSG_IX_MAX      96
#define SOL_IX_ACCOUNTS_MAX 8

//  Programs the settler calls (base58).
#define SOL_SYSTEM_PROGRAM "11111111111111111111111111111111"
#define SOL_TOKEN_PROGRAM  "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
#define SOL_ATA_PROGRAM    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
#define SOL_MEMO_PROGRAM   "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"

//  A public key with its base58 text (the text orders keys in a message).
typedef struct {
    uint8_t bytes[SOL_KEY_BYTES];
    char text[SOL_KEY_TEXT];
} sol_key_t;

//  0, or -1 when text is not base58 of exactly 32 bytes.
int sol_key_parse (sol_key_t *key, const char *text);
void sol_key_set (sol_key_t *key, const uint8_t bytes[SOL_KEY_BYTES]);
bool sol_key_equal (const sol_key_t *a, const sol_key_t *b);

//  compact-u16: 7 bits per byte, low bits first, high bit = more follows. Writes 1 to 3
//  bytes and returns how many.
size_t sol_cu16_encode (uint16_t value, uint8_t out[3]);
//  Bytes the encoding of value takes (value < 65536).
size_t sol_cu16_size (size_t value);
//  Reads one from len bytes: returns the bytes used, or -1 when truncated, longer than 3
//  bytes, above 65535 or not the shortest form (as Solana's decoder refuses them).
int sol_cu16_decode (const uint8_t *in, size_t len, uint16_t *value);

//  @solana/kit's address comparator (see above): < 0, 0 or > 0 like strcmp. Any ASCII text.
int sol_address_compare (const char *a, const char *b);

typedef struct {
    const sol_key_t *key;
    bool signer;
    bool writable;
} sol_meta_t;

typedef struct {
    const sol_key_t *keys[SOL_MSG_KEYS_MAX]; //  in order of first mention; fee payer first
    bool signer[SOL_MSG_KEYS_MAX];
    bool writable[SOL_MSG_KEYS_MAX];
    size_t nkeys;
    struct {
        uint8_t program; //  indexes into keys (order of first mention)
        uint8_t naccounts;
        uint8_t accounts[SOL_IX_ACCOUNTS_MAX];
        uint16_t data_off;
        uint16_t data_len;
    } ix[SOL_MSG_IX_MAX];
    size_t nix;
    uint8_t data[SOL_TX_MAX];
    size_t data_len;
} sol_msg_t;

//  Starts a message paid (and signed) by fee_payer.
void sol_msg_init (sol_msg_t *msg, const sol_key_t *fee_payer);
//  Index of key in the message (order of first mention), -1 when absent.
int sol_msg_find (const sol_msg_t *msg, const sol_key_t *key);
//  Adds a key with a role (merged with the role it has); the program keys of instructions are
//  added by sol_msg_add. Returns its index, or -1 when the message is full.
int sol_msg_key (sol_msg_t *msg, const sol_key_t *key, bool signer, bool writable);
//  Appends an instruction. 0, or -1 when a capacity is exceeded (the message is unchanged).
int sol_msg_add (sol_msg_t *msg, const sol_key_t *program, const sol_meta_t *accounts, size_t n,
                 const void *data, size_t len);
//  Bytes of the signed transaction this message would make.
size_t sol_msg_tx_size (const sol_msg_t *msg);
//  Bytes of one instruction with n accounts and len bytes of data, inside a message.
size_t sol_ix_size (size_t n, size_t len);
//  Bytes of a signed one-signer transaction with nkeys keys, nix instructions whose encodings
//  take ix_bytes together.
size_t sol_tx_size (size_t nkeys, size_t nix, size_t ix_bytes);

//  Writes the message with blockhash into out. Returns its length, or -1 when it does not
//  fit in size or the signed transaction would exceed SOL_TX_MAX.
int sol_msg_compile (const sol_msg_t *msg, const uint8_t blockhash[SOL_HASH_BYTES], uint8_t *out,
                     size_t size);
//  The signed transaction of a message with one signer: compact-u16 1 | signature | message.
//  secret is libsodium's 64-byte secret key. Returns the length, or -1 when size is too small.
int sol_tx_sign (const uint8_t *message, size_t len, const uint8_t secret[SOL_SECRET_BYTES],
                 uint8_t *tx, size_t size, uint8_t signature[SOL_SIG_BYTES]);

//  SPL Token TransferChecked data: u8 12 | u64 LE amount | u8 decimals (10 bytes).
#define SOL_TRANSFER_CHECKED_LEN 10
void sol_transfer_checked_data (uint8_t out[SOL_TRANSFER_CHECKED_LEN], uint64_t amount,
                                uint8_t decimals);
//  Appends TransferChecked: [source w, mint r, destination w, authority signer]. 0 or -1.
int sol_msg_transfer_checked (sol_msg_t *msg, const sol_key_t *token_program,
                              const sol_key_t *source, const sol_key_t *mint,
                              const sol_key_t *destination, const sol_key_t *authority,
                              uint64_t amount, uint8_t decimals);

#endif
