/*  base58 — the Bitcoin/Solana base58 alphabet, without a checksum.

    Solana writes public keys, signatures and blockhashes this way, and users paste their
    wallet address into our API in this form. The alphabet leaves out 0, O, I and l so an
    address read aloud or copied by hand cannot be mistaken; each leading zero byte is one
    leading '1'. That rule makes the text <-> bytes mapping one-to-one, so there is exactly one
    way to write a key and comparing texts is the same as comparing keys.

    Conversion is schoolbook base change, quadratic in the length: fine for keys (32 bytes)
    and signatures (64 bytes), which is all we use it for. Decoding refuses text longer than
    BASE58_TEXT_MAX so hostile input cannot make it slow. No allocation: both directions work
    in the caller's buffer.
*/
#ifndef MCE_BASE58_H
#define MCE_BASE58_H

#include <stddef.h>
#include <stdint.h>

//  Longest text base58_decode accepts: a 64-byte signature is at most 88 characters.
#define BASE58_TEXT_MAX 128
//  Buffer size that always holds the encoding of n bytes plus the NUL: each byte needs
//  log(256)/log(58) = 1.366 characters at most, and a leading zero byte needs exactly one.
#define BASE58_ENCODE_SIZE(n) (138 * (n) / 100 + 2)
//  A Solana public key (ed25519) is 32 bytes, 32 to 44 characters of base58.
#define BASE58_KEY_BYTES 32

//  Writes the base58 text of len bytes of data to out and NUL-terminates it ("" for len 0).
//  Returns the number of characters (without the NUL), or -1 when size is too small, in
//  which case out holds nothing meaningful. BASE58_ENCODE_SIZE (len) always suffices.
int base58_encode (const uint8_t *data, size_t len, char *out, size_t size);

//  Decodes text_len characters (need not be NUL-terminated) into out. Returns the number of
//  bytes written (0 for ""), or -1 when a character is outside the alphabet (including NUL,
//  whitespace, 0 O I l + /), when text_len > BASE58_TEXT_MAX, or when the bytes do not fit in
//  size. text_len bytes of out always suffice. On -1 out holds nothing meaningful.
int base58_decode (const char *text, size_t text_len, uint8_t *out, size_t size);

#endif
