/*  fuzz_keypair — auth_keypair_parse on arbitrary bytes, as a keypair file given to mcectl
    (--keypair FILE) might hold: never crashes, refuses with a reason, and a keypair it
    accepts is a real one: the wallet it names is its seed's, and a signature by the seed
    verifies against that wallet (and against no other message).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    if (auth_init ())
        abort ();
    return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    uint8_t seed[AUTH_SEED_BYTES];
    char wallet[AUTH_WALLET_MAX], again[AUTH_WALLET_MAX], sig[AUTH_SIGNATURE_TEXT_MAX];
    const char *why = NULL;
    if (auth_keypair_parse ((const char *) data, size, seed, wallet, &why) != 0) {
        if (!why)
            abort ();
        return 0;
    }
    if (auth_wallet_of_seed (seed, again, sizeof again) || strcmp (again, wallet) != 0 ||
        auth_check_wallet (wallet, strlen (wallet)))
        abort ();
    if (auth_wallet_sign (seed, data, size, sig, sizeof sig) ||
        !auth_wallet_verify (wallet, sig, strlen (sig), data, size) ||
        auth_wallet_verify (wallet, sig, strlen (sig), "another message", 15))
        abort ();
    return 0;
}
