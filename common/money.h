/*  money — the value and fee of a trade in integer micro-units (docs/architecture.md, Units).

    value = wh * price / 1000 and fee = value * fee_ppm / 10^6, each rounded half-even to
    one micro-unit. The products are formed in 128 bits, so no input that fits an int64 can
    overflow on the way; only a final result beyond int64 is refused. Half-even keeps the
    rounding unbiased when many fills of one epoch are summed.
*/
#ifndef MCE_MONEY_H
#define MCE_MONEY_H

#include <stdint.h>

#define MONEY_WH_PER_KWH 1000    /* prices are per kWh, quantities in Wh */
#define MONEY_PPM        1000000 /* fees are in parts per million of the value */

//  value (micro-units) = wh * price (micro-units per kWh) / 1000, half-even.
//  Returns 0, or -1 when an input is negative or the result does not fit an int64
//  (*value is then untouched).
int money_value (int64_t wh, int64_t price, int64_t *value);

//  fee (micro-units) = value * fee_ppm / 10^6, half-even.
//  Returns 0, or -1 when an input is negative or fee_ppm exceeds 10^6 (*fee is then
//  untouched). The fee never exceeds the value, so it cannot overflow.
int money_fee (int64_t value, int64_t fee_ppm, int64_t *fee);

//  numerator / denominator rounded half-even. Exposed for tests and for callers that form
//  their own 128-bit products. Preconditions, asserted as programmer errors: numerator >= 0,
//  denominator > 0, and the rounded quotient fits an int64 (check the range first).
int64_t money_div_half_even (__int128 numerator, int64_t denominator);

#endif
