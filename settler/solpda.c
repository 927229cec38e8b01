/*  solpda — see solpda.h. The field is GF(2^255 − 19) in five 51-bit limbs (the layout of
    curve25519-donna-c64); only what the on-curve test needs is here: multiply, square,
    add, subtract, one exponentiation and the canonical bytes.
*/
#include "solpda.h"

#include <sodium.h>
#include <string.h>

typedef struct {
    uint64_t v[5];
} s_fe_t;

#define S_MASK51 ((1ULL << 51) - 1)

static void s_fe_from_bytes (s_fe_t *f, const uint8_t b[32])
{
    uint64_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int j = 7; j >= 0; j--)
            w[i] = (w[i] << 8) | b[8 * i + j];
    }
    //  the top bit (the sign of x) is not part of y
    f->v[0] = w[0] & S_MASK51;
    f->v[1] = ((w[0] >> 51) | (w[1] << 13)) & S_MASK51;
    f->v[2] = ((w[1] >> 38) | (w[2] << 26)) & S_MASK51;
    f->v[3] = ((w[2] >> 25) | (w[3] << 39)) & S_MASK51;
    f->v[4] = (w[3] >> 12) & S_MASK51;
}

//  Carries so that every limb is below 2^52 (not yet canonical).
static void s_fe_carry (s_fe_t *f)
{
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            f->v[i + 1] += f->v[i] >> 51;
            f->v[i] &= S_MASK51;
        }
        f->v[0] += 19 * (f->v[4] >> 51);
        f->v[4] &= S_MASK51;
    }
}

static void s_fe_mul (s_fe_t *r, const s_fe_t *a, const s_fe_t *b)
{
    unsigned __int128 t[5];
    const uint64_t *x = a->v, *y = b->v;
    uint64_t y19[5];
    for (int i = 0; i < 5; i++)
        y19[i] = 19 * y[i];
    t[0] = (unsigned __int128) x[0] * y[0] + (unsigned __int128) x[1] * y19[4] +
           (unsigned __int128) x[2] * y19[3] + (unsigned __int128) x[3] * y19[2] +
           (unsigned __int128) x[4] * y19[1];
    t[1] = (unsigned __int128) x[0] * y[1] + (unsigned __int128) x[1] * y[0] +
           (unsigned __int128) x[2] * y19[4] + (unsigned __int128) x[3] * y19[3] +
           (unsigned __int128) x[4] * y19[2];
    t[2] = (unsigned __int128) x[0] * y[2] + (unsigned __int128) x[1] * y[1] +
           (unsigned __int128) x[2] * y[0] + (unsigned __int128) x[3] * y19[4] +
           (unsigned __int128) x[4] * y19[3];
    t[3] = (unsigned __int128) x[0] * y[3] + (unsigned __int128) x[1] * y[2] +
           (unsigned __int128) x[2] * y[1] + (unsigned __int128) x[3] * y[0] +
           (unsigned __int128) x[4] * y19[4];
    t[4] = (unsigned __int128) x[0] * y[4] + (unsigned __int128) x[1] * y[3] +
           (unsigned __int128) x[2] * y[2] + (unsigned __int128) x[3] * y[1] +
           (unsigned __int128) x[4] * y[0];
    for (int i = 0; i < 4; i++) {
        t[i + 1] += (uint64_t) (t[i] >> 51);
        t[i] &= S_MASK51;
    }
    uint64_t c = (uint64_t) (t[4] >> 51);
    t[4] &= S_MASK51;
    for (int i = 0; i < 5; i++)
        r->v[i] = (uint64_t) t[i];
    r->v[0] += 19 * c;
    s_fe_carry (r);
}

//  a − b + 2p, so that no limb goes negative (limbs are below 2^52).
static void s_fe_sub (s_fe_t *r, const s_fe_t *a, const s_fe_t *b)
{
    static const uint64_t two_p[5] = {0xfffffffffffdaULL, 0xffffffffffffeULL, 0xffffffffffffeULL,
                                      0xffffffffffffeULL, 0xffffffffffffeULL};
    s_fe_t bb = *b;
    s_fe_carry (&bb);
    for (int i = 0; i < 5; i++)
        r->v[i] = a->v[i] + two_p[i] * 2 - bb.v[i];
    s_fe_carry (r);
}

static void s_fe_add (s_fe_t *r, const s_fe_t *a, const s_fe_t *b)
{
    for (int i = 0; i < 5; i++)
        r->v[i] = a->v[i] + b->v[i];
    s_fe_carry (r);
}

//  r = a^e, e given as 32 little-endian bytes.
static void s_fe_pow (s_fe_t *r, const s_fe_t *a, const uint8_t e[32])
{
    s_fe_t acc = {{1, 0, 0, 0, 0}};
    for (int bit = 255; bit >= 0; bit--) {
        s_fe_mul (&acc, &acc, &acc);
        if ((e[bit / 8] >> (bit % 8)) & 1)
            s_fe_mul (&acc, &acc, a);
    }
    *r = acc;
}

//  Canonical value as 32 little-endian bytes.
static void s_fe_to_bytes (uint8_t out[32], const s_fe_t *f)
{
    s_fe_t t = *f;
    s_fe_carry (&t);
    s_fe_carry (&t); //  now every limb is below 2^51 and t < 2^255 + 19 < 2p
    //  t < 2^255 + small: subtract p when t >= p
    uint64_t q = (t.v[0] + 19) >> 51;
    for (int i = 1; i < 5; i++)
        q = (t.v[i] + q) >> 51;
    t.v[0] += 19 * q;
    for (int i = 0; i < 4; i++) {
        t.v[i + 1] += t.v[i] >> 51;
        t.v[i] &= S_MASK51;
    }
    t.v[4] &= S_MASK51;
    uint64_t w[4] = {t.v[0] | (t.v[1] << 51), (t.v[1] >> 13) | (t.v[2] << 38),
                     (t.v[2] >> 26) | (t.v[3] << 25), (t.v[3] >> 39) | (t.v[4] << 12)};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            out[8 * i + j] = (uint8_t) (w[i] >> (8 * j));
}

bool sol_on_curve (const uint8_t point[SOL_KEY_BYTES])
{
    //  d = −121665 / 121666, little-endian
    static const uint8_t d_bytes[32] = {0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75,
                                        0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00,
                                        0x98, 0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c,
                                        0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52};
    //  (p − 1) / 2 = 2^254 − 10
    static const uint8_t half[32] = {0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f};
    static const s_fe_t one = {{1, 0, 0, 0, 0}};
    s_fe_t y, d, yy, u, v, uv, chi;
    s_fe_from_bytes (&y, point);
    s_fe_from_bytes (&d, d_bytes);
    s_fe_mul (&yy, &y, &y);
    s_fe_sub (&u, &yy, &one); //  y² − 1
    s_fe_mul (&v, &yy, &d);
    s_fe_add (&v, &v, &one); //  d·y² + 1, never zero (d is not a square)
    s_fe_mul (&uv, &u, &v);
    //  u/v is a square iff u·v is (Legendre's symbol is multiplicative): χ = (u·v)^((p−1)/2)
    s_fe_pow (&chi, &uv, half);
    uint8_t c[32];
    s_fe_to_bytes (c, &chi);
    //  χ = p − 1 means "not a square": every other answer (1, or 0 when y² = 1) is a point
    static const uint8_t minus_one[32] = {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    return memcmp (c, minus_one, 32) != 0;
}

int sol_pda_find (const uint8_t *const *seeds, const size_t *lengths, size_t count,
                  const sol_key_t *program, sol_key_t *address, uint8_t *bump)
{
    if (count >= SOL_PDA_SEEDS_MAX) //  the bump is a seed too
        return -1;
    for (size_t i = 0; i < count; i++)
        if (lengths[i] > SOL_PDA_SEED_MAX)
            return -1;
    for (int b = 255; b >= 0; b--) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init (&st);
        for (size_t i = 0; i < count; i++)
            crypto_hash_sha256_update (&st, seeds[i], lengths[i]);
        uint8_t bb = (uint8_t) b;
        crypto_hash_sha256_update (&st, &bb, 1);
        crypto_hash_sha256_update (&st, program->bytes, SOL_KEY_BYTES);
        crypto_hash_sha256_update (&st, (const uint8_t *) "ProgramDerivedAddress", 21);
        uint8_t h[32];
        crypto_hash_sha256_final (&st, h);
        if (!sol_on_curve (h)) {
            sol_key_set (address, h);
            *bump = bb;
            return 0;
        }
    }
    return -1;
}

int sol_ata (const sol_key_t *owner, const sol_key_t *mint, sol_key_t *address)
{
    sol_key_t token, ata;
    if (sol_key_parse (&token, SOL_TOKEN_PROGRAM) || sol_key_parse (&ata, SOL_ATA_PROGRAM))
        return -1;
    const uint8_t *seeds[3] = {owner->bytes, token.bytes, mint->bytes};
    size_t lengths[3] = {SOL_KEY_BYTES, SOL_KEY_BYTES, SOL_KEY_BYTES};
    uint8_t bump;
    return sol_pda_find (seeds, lengths, 3, &ata, address, &bump);
}
