/*  test_crc32c — CRC-32C on published vectors, for the hardware and the software path.

    The vectors are the "123456789" check value from the CRC catalogue and RFC 3720 B.4.
    The dispatching crc32c uses SSE4.2 when present; crc32c_sw is always the table path.
*/
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

typedef uint32_t (*crc_fn_t) (uint32_t crc, const void *data, size_t len);

static const struct {
    const char *name;
    crc_fn_t fn;
} s_paths[] = {{"crc32c", crc32c}, {"crc32c_sw", crc32c_sw}};

#define S_PATH_COUNT (sizeof s_paths / sizeof s_paths[0])

Test (crc32c, check_value)
{
    for (size_t p = 0; p < S_PATH_COUNT; p++)
        cr_expect_eq (s_paths[p].fn (0, "123456789", 9), 0xE3069283, "%s", s_paths[p].name);
}

Test (crc32c, rfc3720_vectors)
{
    uint8_t zeros[32], ones[32], up[32], down[32];
    memset (zeros, 0x00, sizeof zeros);
    memset (ones, 0xFF, sizeof ones);
    for (int i = 0; i < 32; i++) {
        up[i] = (uint8_t) i;
        down[i] = (uint8_t) (31 - i);
    }
    for (size_t p = 0; p < S_PATH_COUNT; p++) {
        crc_fn_t crc = s_paths[p].fn;
        const char *name = s_paths[p].name;
        cr_expect_eq (crc (0, zeros, 32), 0x8A9136AA, "%s: 32 x 0x00", name);
        cr_expect_eq (crc (0, ones, 32), 0x62A8AB43, "%s: 32 x 0xFF", name);
        cr_expect_eq (crc (0, up, 32), 0x46DD794E, "%s: 0x00..0x1F", name);
        cr_expect_eq (crc (0, down, 32), 0x113FDB5C, "%s: 0x1F..0x00", name);
    }
}

Test (crc32c, empty_input_leaves_crc)
{
    for (size_t p = 0; p < S_PATH_COUNT; p++) {
        cr_expect_eq (s_paths[p].fn (0, NULL, 0), 0);
        cr_expect_eq (s_paths[p].fn (0xE3069283, "", 0), 0xE3069283);
    }
}

Test (crc32c, chaining)
{
    //  The journal checksums a header and a payload with two calls; every split must agree
    //  with one pass over the whole record.
    const char *text = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
    size_t len = strlen (text);
    for (size_t p = 0; p < S_PATH_COUNT; p++) {
        uint32_t whole = s_paths[p].fn (0, text, len);
        for (size_t split = 0; split <= len; split++) {
            uint32_t first = s_paths[p].fn (0, text, split);
            cr_expect_eq (s_paths[p].fn (first, text + split, len - split), whole,
                          "%s: split at %zu", s_paths[p].name, split);
        }
    }
}

Test (crc32c, unaligned_starts)
{
    //  The same bytes at every offset from an 8-byte boundary give the same CRC.
    _Alignas(8) uint8_t buf[64 + 8];
    for (size_t offset = 0; offset < 8; offset++) {
        memset (buf, 0xAA, sizeof buf);
        memcpy (buf + offset, "123456789", 9);
        for (size_t p = 0; p < S_PATH_COUNT; p++)
            cr_expect_eq (s_paths[p].fn (0, buf + offset, 9), 0xE3069283, "%s: offset %zu",
                          s_paths[p].name, offset);
    }
}

Test (crc32c, hardware_matches_software)
{
    if (!crc32c_hw_available ())
        cr_log_warn ("no SSE4.2 on this CPU: crc32c is the software path, compared with itself");
    //  A fixed-seed generator keeps failures reproducible.
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    uint8_t *buf = malloc (1000 + 8);
    cr_assert_not_null (buf);
    for (size_t len = 0; len <= 1000; len++) {
        size_t offset = len % 8;
        for (size_t i = 0; i < len; i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[offset + i] = (uint8_t) (state >> 56);
        }
        uint32_t seed = (uint32_t) (state >> 16);
        cr_expect_eq (crc32c (0, buf + offset, len), crc32c_sw (0, buf + offset, len), "len %zu",
                      len);
        cr_expect_eq (crc32c (seed, buf + offset, len), crc32c_sw (seed, buf + offset, len),
                      "len %zu, seeded", len);
    }
    free (buf);
}
