/*  money — see money.h.

    One rounding routine serves both formulas so value and fee can never round differently.
    It works on the 128-bit quotient and remainder, comparing twice the remainder with the
    divisor; both fit easily in __int128 since the divisor is an int64.
*/
#include "money.h"

#include <assert.h>

//  Half-even division without the int64 result check, for callers that do their own.
static __int128 s_div_half_even (__int128 numerator, int64_t denominator)
{
    assert (numerator >= 0);
    assert (denominator > 0);
    __int128 quotient = numerator / denominator;
    __int128 twice_remainder = 2 * (numerator % denominator);
    if (twice_remainder > denominator || (twice_remainder == denominator && (quotient & 1)))
        quotient++;
    return quotient;
}

int64_t money_div_half_even (__int128 numerator, int64_t denominator)
{
    __int128 quotient = s_div_half_even (numerator, denominator);
    assert (quotient <= INT64_MAX);
    return (int64_t) quotient;
}

int money_value (int64_t wh, int64_t price, int64_t *value)
{
    assert (value);
    if (wh < 0 || price < 0)
        return -1;
    //  The common case fits in 64 bits, where division by the constant 1000 is a multiply:
    //  this runs once per trade on the matcher's hot path.
    int64_t product;
    if (!__builtin_mul_overflow (wh, price, &product)) {
        int64_t q = product / MONEY_WH_PER_KWH, rem = product % MONEY_WH_PER_KWH;
        if (rem * 2 > MONEY_WH_PER_KWH || (rem * 2 == MONEY_WH_PER_KWH && (q & 1)))
            q++;
        *value = q;
        return 0;
    }
    //  At most (2^63 - 1)^2 < 2^126: the product always fits.
    __int128 quotient = s_div_half_even ((__int128) wh * price, MONEY_WH_PER_KWH);
    if (quotient > INT64_MAX)
        return -1;
    *value = (int64_t) quotient;
    return 0;
}

int money_fee (int64_t value, int64_t fee_ppm, int64_t *fee)
{
    assert (fee);
    if (value < 0 || fee_ppm < 0 || fee_ppm > MONEY_PPM)
        return -1;
    __int128 quotient = s_div_half_even ((__int128) value * fee_ppm, MONEY_PPM);
    //  Cannot trigger while fee_ppm <= 10^6; kept so a future change to the bound stays safe.
    if (quotient > INT64_MAX)
        return -1;
    *fee = (int64_t) quotient;
    return 0;
}
