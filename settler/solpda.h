/*  solpda — program-derived addresses, for the associated token accounts the settler moves
    tokens between (a user registers a wallet; its token accounts are derived from it).

        PDA = sha256 (seed ‖ … ‖ bump ‖ program id ‖ "ProgramDerivedAddress"), the first bump
              from 255 down whose hash is NOT a point of edwards25519
        ATA = PDA of seeds [owner, token program, mint] under the associated token program

    "A point" means what Solana's check (curve25519-dalek's decompress) accepts: the 255 low
    bits as y (not reduced first), and (y² − 1) / (d·y² + 1) a square mod 2^255 − 19. That is
    weaker than libsodium's crypto_core_ed25519_is_valid_point, which also demands the
    prime-order subgroup and would call 7 in 8 curve points "off the curve" — so the test is
    done here with a small field arithmetic of its own (radix 2^51, one exponentiation: the
    Legendre symbol of u·v).
*/
#ifndef MCE_SOLPDA_H
#define MCE_SOLPDA_H

#include "soltx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOL_PDA_SEEDS_MAX 16
#define SOL_PDA_SEED_MAX  32

//  Whether 32 bytes decompress to a point of edwards25519 (as Solana decides it).
bool sol_on_curve (const uint8_t point[SOL_KEY_BYTES]);

//  The program address of seeds under program and its bump. 0, or -1 when there are too many
//  seeds, one is longer than SOL_PDA_SEED_MAX, or no bump works (never in practice).
int sol_pda_find (const uint8_t *const *seeds, const size_t *lengths, size_t count,
                  const sol_key_t *program, sol_key_t *address, uint8_t *bump);

//  The associated token account of owner for mint (token program: SOL_TOKEN_PROGRAM).
int sol_ata (const sol_key_t *owner, const sol_key_t *mint, sol_key_t *address);

#endif
