/*  keys — what the settler signs with and pays into, from settler.keys_file.

    The file is the local ledger's setup description (tools/ledger/README.md), which is also a
    fine format for a real deployment; the settler reads from it:

        platform.secretSeedHex      the platform key's 32-byte ed25519 seed, as hex, or
        platform.keypairFile        a Solana CLI keypair file (JSON array of 64 bytes)
        platform.pubkey             optional: checked against the key the seed gives
        treasury.paymentAccount     the payment-token account fees go to
        energyMint {address, decimals = 3}, paymentMint {address, decimals = 6}
        vaults {energy, payment}    optional: checked against the vaults the platform key gives
        programs.token, programs.memo   optional (default: the SPL Token and Memo programs)
        users [{name, wallet}]      the wallets, when settler.wallets = "keys_file"

    The vaults (the escrow, docs/clearing.md) are the platform key's associated token accounts of
    the two mints, so they are derived here, not configured: a setup file that names others is
    refused rather than believed. The platform key pays every fee, signs every transfer out of
    a vault as its owner and every transfer out of a user's account as the delegate that
    account approved. Decimals other than 3 (Wh) and 6 (micro-units) are refused: amounts on
    the bus are in those units and go on chain unchanged. The secret is wiped by keys_clear.
*/
#ifndef MCE_KEYS_H
#define MCE_KEYS_H

#include "soltx.h"

#include <stddef.h>
#include <stdint.h>

#define KEYS_ENERGY_DECIMALS  3
#define KEYS_PAYMENT_DECIMALS 6
#define KEYS_NAME_MAX         64

typedef struct {
    char name[KEYS_NAME_MAX + 1];
    sol_key_t wallet;
} keys_user_t;

typedef struct {
    sol_key_t platform;
    uint8_t secret[SOL_SECRET_BYTES];
    sol_key_t treasury; //  the fees' payment-token account
    sol_key_t energy_mint;
    sol_key_t payment_mint;
    sol_key_t vault_energy;  //  the platform's energy-token account: the energy escrow
    sol_key_t vault_payment; //  ... and its payment-token account
    sol_key_t token_program;
    sol_key_t memo_program;
    keys_user_t *users; //  owned
    size_t user_count;
} keys_t;

//  Reads path into keys. 0, or -1 with the reason in err (keys is then cleared).
int keys_load (keys_t *keys, const char *path, char *err, size_t errlen);
//  Wipes the secret and frees the users. Idempotent.
void keys_clear (keys_t *keys);

#endif
