/*  fuzz_base58 — base58_decode on arbitrary text (wallets come from users): never crashes,
    and whatever decodes encodes back to the same text.
*/
#include "base58.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    uint8_t bytes[BASE58_TEXT_MAX];
    int n = base58_decode ((const char *) data, size, bytes, sizeof bytes);
    if (n < 0)
        return 0;
    char text[BASE58_ENCODE_SIZE (BASE58_TEXT_MAX)];
    int len = base58_encode (bytes, (size_t) n, text, sizeof text);
    if (len < 0 || (size_t) len != size || memcmp (text, data, size) != 0)
        abort ();
    return 0;
}
