/*  base58 — see base58.h.

    Both directions treat the buffer they write as a little-endian big number and fold in
    one input symbol at a time (multiply by the input base, add the symbol, carry into a new
    most significant digit when needed), then reverse it in place. Working in the caller's
    buffer means no allocation and no intermediate size to get wrong: running out of room at
    any step is simply -1. Leading zero bytes and leading '1's are counted apart from the
    number because the base change alone would lose them.

    Decoding checks every character before doing any arithmetic, so what is refused does not
    depend on where the work stopped, and the length limit is checked before anything else.
*/
#include "base58.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

static const char s_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

//  The value of each ASCII character in s_alphabet, -1 when it is not in it.
// clang-format off
static const int8_t s_digit_of[128] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8, -1, -1, -1, -1, -1, -1,
    -1,  9, 10, 11, 12, 13, 14, 15, 16, -1, 17, 18, 19, 20, 21, -1,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, -1, -1, -1, -1, -1,
    -1, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, -1, 44, 45, 46,
    47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, -1, -1, -1, -1, -1,
};
// clang-format on

static int s_digit (char c)
{
    unsigned char uc = (unsigned char) c;
    return uc < sizeof s_digit_of ? s_digit_of[uc] : -1;
}

static void s_reverse (uint8_t *bytes, size_t count)
{
    for (size_t i = 0; i < count / 2; i++) {
        uint8_t tmp = bytes[i];
        bytes[i] = bytes[count - 1 - i];
        bytes[count - 1 - i] = tmp;
    }
}

int base58_encode (const uint8_t *data, size_t len, char *out, size_t size)
{
    assert (data || len == 0);
    assert (out || size == 0);
    //  The count is returned as an int; no key or signature comes anywhere near this.
    if (size > (size_t) INT_MAX)
        size = (size_t) INT_MAX;
    if (size == 0)
        return -1;

    size_t zeros = 0;
    while (zeros < len && data[zeros] == 0)
        zeros++;
    if (zeros >= size) //  no room for the '1's and the NUL
        return -1;

    //  Base-58 digits (values 0..57) of the rest, least significant first, right after
    //  where the '1's will go. One byte of room is kept for the NUL.
    uint8_t *digits = (uint8_t *) out + zeros;
    size_t room = size - 1 - zeros;
    size_t count = 0;
    for (size_t i = zeros; i < len; i++) {
        //  digit * 256 + carry stays below 57 * 256 + 255: no overflow, carry stays < 256.
        unsigned carry = data[i];
        for (size_t j = 0; j < count; j++) {
            carry += (unsigned) digits[j] << 8;
            digits[j] = (uint8_t) (carry % 58);
            carry /= 58;
        }
        while (carry > 0) {
            if (count == room)
                return -1;
            digits[count++] = (uint8_t) (carry % 58);
            carry /= 58;
        }
    }
    s_reverse (digits, count);
    for (size_t j = 0; j < count; j++)
        out[zeros + j] = s_alphabet[digits[j]];
    memset (out, '1', zeros);
    out[zeros + count] = '\0';
    return (int) (zeros + count);
}

int base58_decode (const char *text, size_t text_len, uint8_t *out, size_t size)
{
    assert (text || text_len == 0);
    assert (out || size == 0);
    if (text_len > BASE58_TEXT_MAX)
        return -1;
    for (size_t i = 0; i < text_len; i++)
        if (s_digit (text[i]) < 0)
            return -1;

    size_t zeros = 0;
    while (zeros < text_len && text[zeros] == '1')
        zeros++;
    if (zeros > size)
        return -1;

    //  Bytes of the rest, least significant first, right after the leading zeros.
    size_t room = size - zeros;
    size_t count = 0;
    for (size_t i = zeros; i < text_len; i++) {
        //  byte * 58 + carry stays below 255 * 58 + 255: carry stays < 256 after the shift.
        unsigned carry = (unsigned) s_digit (text[i]);
        for (size_t j = 0; j < count; j++) {
            carry += (unsigned) out[zeros + j] * 58;
            out[zeros + j] = (uint8_t) (carry & 0xff);
            carry >>= 8;
        }
        while (carry > 0) {
            if (count == room)
                return -1;
            out[zeros + count++] = (uint8_t) (carry & 0xff);
            carry >>= 8;
        }
    }
    if (count > 0)
        s_reverse (out + zeros, count);
    if (zeros > 0)
        memset (out, 0, zeros);
    return (int) (zeros + count);
}
