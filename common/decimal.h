/*  decimal — exact conversion between decimal text and scaled int64 (docs/architecture.md, Units).

    The API speaks kWh and prices as decimal strings; inside, energy is integer Wh (scale 3)
    and prices are integer micro-units per kWh (scale 6). Text with more precision than the
    scale is rejected, never rounded, so what a user typed is exactly what trades. Every
    rejection has its own status so the gateway can tell the user what to fix.

    The grammar is deliberately narrow: 0|[1-9][0-9]* optionally followed by '.' and one or
    more digits. No sign, no whitespace, no exponent: there is exactly one way to write a
    number modulo trailing fractional zeros, which keeps signatures and logs unambiguous.
*/
#ifndef MCE_DECIMAL_H
#define MCE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define DECIMAL_KWH_SCALE   3  /* kWh text -> Wh */
#define DECIMAL_PRICE_SCALE 6  /* price text -> micro-units per kWh */
#define DECIMAL_MAX_SCALE   18 /* 10^18 is the largest power of ten in an int64 */
//  Enough for any int64 at any scale: sign, 19 digits, '.', a leading "0" and the NUL.
#define DECIMAL_FORMAT_MAX 24

typedef enum {
    DECIMAL_OK = 0,
    DECIMAL_EMPTY,        //  ""
    DECIMAL_SPACE,        //  whitespace anywhere: " 1", "1 ", "1 000"
    DECIMAL_SIGN,         //  "+1"
    DECIMAL_NEGATIVE,     //  "-1", "-0"
    DECIMAL_SYNTAX,       //  "1.", ".5", "1.2.3", "1,5", "0x10", "-", embedded NUL
    DECIMAL_LEADING_ZERO, //  "01", "00.5"
    DECIMAL_EXPONENT,     //  "1e3", "1E-3"
    DECIMAL_NOT_FINITE,   //  "NaN", "inf", "Infinity" (any case)
    DECIMAL_PRECISION,    //  non-zero digits beyond the scale: "0.0001" as kWh
    DECIMAL_OVERFLOW,     //  above INT64_MAX once scaled
} decimal_status_t;

//  Parses len bytes of text (need not be NUL-terminated) as a non-negative decimal with at
//  most `scale` significant fractional digits; digits beyond the scale are accepted only when
//  they are all zero. On DECIMAL_OK stores text * 10^scale in *value; otherwise leaves *value
//  untouched. Zero is a valid number here: refusing zero quantities is the caller's business.
decimal_status_t decimal_parse (const char *text, size_t len, int scale, int64_t *value);

//  A short English reason for an API user, to follow the field name: "price: must not be
//  negative". Returns a borrowed static string.
const char *decimal_status_text (decimal_status_t status);

//  Writes the shortest exact text of value / 10^scale: (100500, 3) -> "100.5",
//  (150000, 6) -> "0.15", (1000, 3) -> "1", (-1500, 3) -> "-1.5". NUL-terminates.
//  Returns the length (without NUL), or -1 when size is too small (DECIMAL_FORMAT_MAX
//  always suffices).
int decimal_format (int64_t value, int scale, char *buf, size_t size);

//  For JSON numbers, which jansson hands over as a double: accepted when the number's
//  shortest round-tripping decimal form fits the scale exactly (0.1 as kWh -> 100 Wh), then
//  converted through the same exact path as decimal_parse. NaN and infinities give
//  DECIMAL_NOT_FINITE; negative numbers, -0.0 included, give DECIMAL_NEGATIVE. This is the
//  only place a double enters the system, and only as input. Assumes the "C" numeric locale.
decimal_status_t decimal_from_double (double number, int scale, int64_t *value);

#endif
