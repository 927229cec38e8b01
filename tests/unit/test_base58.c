/*  test_base58 — base58 text <-> bytes, the form Solana keys and signatures travel in.

    The vectors are Bitcoin Core's base58_encode_decode.json plus the Solana cases we care
    about (the all-zero system program id, a 32-byte key). Every vector is checked in both
    directions; then the refusals (characters outside the alphabet, buffers too small, text
    too long), and last a seeded random round trip in both directions, which shows the text
    <-> bytes mapping is one-to-one.
*/
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base58.h"

typedef struct {
    const char *hex;  //  the bytes, as hex
    const char *text; //  their base58
} vector_t;

static const vector_t s_vectors[] = {
    {"", ""},
    {"00", "1"},
    {"0000", "11"},
    {"61", "2g"},
    {"626262", "a3gV"},
    {"636363", "aPEr"},
    {"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"}, //  "Hello World!"
    {"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
    {"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
    {"516b6fcd0f", "ABnLTmg"},
    {"bf4f89001e670274dd", "3SEo3LWLoPntC"},
    {"572e4794", "3EFU7m"},
    {"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
    {"10c8511e", "Rt5zm"},
    {"00000000000000000000", "1111111111"},
    //  every character of the alphabet, in order
    {"000111d38e5fc9071ffcd20b4a763cc9ae4f252bb4e48fd66a835e252ada93ff480d6dd43dc62a641155a5",
     "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"},
    //  Solana: the system program id is 32 zero bytes
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "11111111111111111111111111111111"},
    //  a 32-byte key (SHA-256 of "mce") and the largest one, which takes all 44 characters
    {"e72a24d6c93079e15ca8a2ef3730f004e6eff8eb563a2db95855651033ce88b1",
     "GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm68"},
    {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG"},
};

static size_t s_from_hex (const char *hex, uint8_t *out)
{
    size_t len = strlen (hex) / 2;
    for (size_t i = 0; i < len; i++) {
        unsigned byte;
        cr_assert_eq (sscanf (hex + 2 * i, "%2x", &byte), 1);
        out[i] = (uint8_t) byte;
    }
    return len;
}

Test (base58, vectors_encode)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        uint8_t data[64];
        size_t len = s_from_hex (s_vectors[i].hex, data);
        char text[BASE58_ENCODE_SIZE (64)];
        int written = base58_encode (data, len, text, sizeof text);
        cr_expect_eq (written, (int) strlen (s_vectors[i].text), "row %zu: length %d", i, written);
        cr_expect_str_eq (text, s_vectors[i].text, "row %zu", i);
    }
}

Test (base58, vectors_decode)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        uint8_t expected[64];
        size_t len = s_from_hex (s_vectors[i].hex, expected);
        const char *text = s_vectors[i].text;
        uint8_t data[64];
        int decoded = base58_decode (text, strlen (text), data, sizeof data);
        cr_expect_eq (decoded, (int) len, "row %zu \"%s\": %d bytes", i, text, decoded);
        if (decoded == (int) len)
            cr_expect_arr_eq (data, expected, len, "row %zu \"%s\"", i, text);
    }
}

Test (base58, exact_buffers_suffice)
{
    //  "Hello World!" is 17 characters: 18 bytes with the NUL is exactly enough, 17 is not.
    const uint8_t hello[] = "Hello World!";
    char text[18];
    cr_assert_eq (base58_encode (hello, 12, text, 18), 17);
    cr_assert_str_eq (text, "2NEpo7TZRRrLZSi2U");
    cr_assert_eq (base58_encode (hello, 12, text, 17), -1);
    cr_assert_eq (base58_encode (hello, 12, text, 1), -1);
    cr_assert_eq (base58_encode (hello, 12, text, 0), -1);

    //  leading zeros need their '1's and the NUL
    const uint8_t zeros[3] = {0, 0, 0};
    cr_assert_eq (base58_encode (zeros, 3, text, 4), 3);
    cr_assert_str_eq (text, "111");
    cr_assert_eq (base58_encode (zeros, 3, text, 3), -1);
    cr_assert_eq (base58_encode (zeros, 0, text, 1), 0, "empty input needs only the NUL");
    cr_assert_str_eq (text, "");

    uint8_t data[12];
    cr_assert_eq (base58_decode ("2NEpo7TZRRrLZSi2U", 17, data, 12), 12);
    cr_assert_arr_eq (data, hello, 12);
    cr_assert_eq (base58_decode ("2NEpo7TZRRrLZSi2U", 17, data, 11), -1);
    cr_assert_eq (base58_decode ("111", 3, data, 3), 3);
    cr_assert_eq (base58_decode ("111", 3, data, 2), -1, "leading '1's count against the size");
    cr_assert_eq (base58_decode ("1112", 4, data, 3), -1);
    cr_assert_eq (base58_decode ("", 0, NULL, 0), 0);
}

Test (base58, key_sizes)
{
    //  What auth_check_wallet relies on: a key decodes to exactly 32 bytes, and a 31- or
    //  33-byte value does not, whatever buffer it is given.
    uint8_t key[BASE58_KEY_BYTES];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t) (0xa0 + i);
    char text[BASE58_ENCODE_SIZE (BASE58_KEY_BYTES)];
    int len = base58_encode (key, sizeof key, text, sizeof text);
    cr_assert (len >= 32 && len <= 44, "a 32-byte key is 32..44 characters, got %d", len);

    uint8_t back[BASE58_KEY_BYTES];
    cr_assert_eq (base58_decode (text, (size_t) len, back, sizeof back), BASE58_KEY_BYTES);
    cr_assert_arr_eq (back, key, sizeof key);
    //  one byte short of room is a refusal, not a truncation
    cr_assert_eq (base58_decode (text, (size_t) len, back, sizeof back - 1), -1);

    uint8_t big[64];
    cr_assert_eq (base58_decode ("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofL", 43, big, 64), 31);
    cr_assert_eq (base58_decode ("2K3n5t4wSaF5mj27Tw9vStXWLWyRjjiH5Cp3CFLpKVCr1c", 46, big, 64),
                  33);
}

Test (base58, refuses_characters_outside_the_alphabet)
{
    static const char *const bad[] = {
        "0",
        "O",
        "I",
        "l",
        "+",
        "/",
        "=",
        " ",
        "-",
        "_",
        "2NEpo7TZRRrLZSi2U ",
        " 2NEpo",
        "2NEp0",
        "11O",
        "\xc3\xa9",
        "\x80",
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t data[64];
        cr_expect_eq (base58_decode (bad[i], strlen (bad[i]), data, sizeof data), -1, "\"%s\"",
                      bad[i]);
    }
    //  an embedded NUL is a character like any other: text_len counts bytes
    uint8_t data[8];
    cr_expect_eq (base58_decode ("2g\0"
                                 "2g",
                                 5, data, sizeof data),
                  -1);
    //  only text_len bytes are read: what follows does not matter
    cr_expect_eq (base58_decode ("2g!!", 2, data, sizeof data), 1);
    cr_expect_eq (data[0], 0x61);
}

Test (base58, refuses_long_text)
{
    char text[BASE58_TEXT_MAX + 2];
    memset (text, 'z', sizeof text);
    uint8_t data[BASE58_TEXT_MAX + 2];
    cr_assert_gt (base58_decode (text, BASE58_TEXT_MAX, data, sizeof data), 0);
    cr_assert_eq (base58_decode (text, BASE58_TEXT_MAX + 1, data, sizeof data), -1);
    memset (text, '1', sizeof text);
    cr_assert_eq (base58_decode (text, BASE58_TEXT_MAX, data, sizeof data), BASE58_TEXT_MAX);
    cr_assert_eq (base58_decode (text, BASE58_TEXT_MAX + 1, data, sizeof data), -1);
}

//  xorshift64*: a fixed seed, so a failure names the round and can be replayed.
static uint64_t s_next (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

Test (base58, random_round_trip)
{
    uint64_t state = 0x6d63652d62353821ULL;
    for (int round = 0; round < 20000; round++) {
        //  up to 93 bytes, the most BASE58_TEXT_MAX characters can hold; a run of leading zero
        //  bytes now and then, since those take the special path
        uint8_t data[93];
        size_t len = (size_t) (s_next (&state) % (sizeof data + 1));
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t) s_next (&state);
        size_t zeros = (size_t) (s_next (&state) % 4);
        for (size_t i = 0; i < zeros && i < len; i++)
            data[i] = 0;

        char text[BASE58_ENCODE_SIZE (sizeof data)];
        int text_len = base58_encode (data, len, text, sizeof text);
        cr_assert (text_len >= 0 && text_len <= BASE58_TEXT_MAX, "round %d: %d chars", round,
                   text_len);
        cr_assert_eq (strlen (text), (size_t) text_len);
        uint8_t back[sizeof data];
        int back_len = base58_decode (text, (size_t) text_len, back, sizeof back);
        cr_assert_eq (back_len, (int) len, "round %d: \"%s\"", round, text);
        cr_assert_arr_eq (back, data, len, "round %d: \"%s\"", round, text);
    }
}

Test (base58, random_text_round_trip)
{
    //  The other direction: any text in the alphabet decodes, and encodes back to itself.
    static const char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint64_t state = 0x746578742d726f75ULL;
    for (int round = 0; round < 20000; round++) {
        char text[BASE58_TEXT_MAX + 1];
        size_t len = (size_t) (s_next (&state) % (BASE58_TEXT_MAX + 1));
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[s_next (&state) % 58];
        text[len] = '\0';

        uint8_t data[BASE58_TEXT_MAX];
        int data_len = base58_decode (text, len, data, sizeof data);
        cr_assert_geq (data_len, 0, "round %d: \"%s\"", round, text);
        char again[BASE58_ENCODE_SIZE (BASE58_TEXT_MAX)];
        int again_len = base58_encode (data, (size_t) data_len, again, sizeof again);
        cr_assert_eq (again_len, (int) len, "round %d", round);
        cr_assert_str_eq (again, text, "round %d", round);
    }
}
