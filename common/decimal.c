/*  decimal — see decimal.h.

    Parsing validates the whole text against the grammar first and only then computes the
    value, so the reason reported does not depend on where the scan happened to stop and
    arithmetic never sees malformed input. The value is built one digit at a time with the
    overflow test before each multiply-add: no step can exceed INT64_MAX, so there is no
    undefined behaviour on hostile input however long it is.

    decimal_from_double turns the double back into the decimal text a JSON writer would
    most likely have sent (the shortest form that round-trips) and feeds that text to the
    same exact parser, so a JSON number and the equivalent string always agree.
*/
#include "decimal.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A double has at most 17 significant decimal digits; %.17g always round-trips.
#define S_DOUBLE_DIGITS 17
//  Beyond these decimal exponents a value cannot be an int64 at any scale: 10^40 overflows
//  even at scale 0, and a non-zero digit 40 places after the point exceeds any scale <= 18.
#define S_EXPAND_LIMIT 40

_Static_assert(DECIMAL_KWH_SCALE == 3 && DECIMAL_PRICE_SCALE == 6,
               "decimal_status_text names the scales: update its DECIMAL_PRECISION text");

static const uint64_t s_pow10[DECIMAL_MAX_SCALE + 1] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
};

static bool s_is_digit (char c)
{
    return c >= '0' && c <= '9';
}

//  The C-locale isspace set, spelled out so a process locale cannot change what we accept.
static bool s_is_space (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool s_equals_nocase (const char *text, size_t len, const char *word)
{
    if (len != strlen (word))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = (char) (c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

//  *value = *value * 10 + digit, or false when that would exceed INT64_MAX.
static bool s_push_digit (int64_t *value, int digit)
{
    if (*value > (INT64_MAX - digit) / 10)
        return false;
    *value = *value * 10 + digit;
    return true;
}

//  Everything after an optional sign: digits, optional fraction, nothing else.
static decimal_status_t s_parse_unsigned (const char *text, size_t len, int scale, int64_t *value)
{
    if (len == 0)
        return DECIMAL_EMPTY;
    //  What JavaScript, Python and printf write for non-finite numbers; named separately so
    //  a client that serialised a NaN by accident is told so.
    if (s_equals_nocase (text, len, "nan") || s_equals_nocase (text, len, "inf") ||
        s_equals_nocase (text, len, "infinity"))
        return DECIMAL_NOT_FINITE;

    size_t i = 0;
    while (i < len && s_is_digit (text[i]))
        i++;
    size_t int_len = i;
    if (int_len == 0)
        return DECIMAL_SYNTAX;

    size_t frac_start = i;
    size_t frac_len = 0;
    if (i < len && text[i] == '.') {
        frac_start = ++i;
        while (i < len && s_is_digit (text[i]))
            i++;
        frac_len = i - frac_start;
        if (frac_len == 0)
            return DECIMAL_SYNTAX;
    }
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        //  Only a well-formed exponent earns the more specific reason.
        size_t j = i + 1;
        if (j < len && (text[j] == '+' || text[j] == '-'))
            j++;
        size_t exp_start = j;
        while (j < len && s_is_digit (text[j]))
            j++;
        return (j > exp_start && j == len) ? DECIMAL_EXPONENT : DECIMAL_SYNTAX;
    }
    if (i != len)
        return DECIMAL_SYNTAX;
    if (int_len > 1 && text[0] == '0')
        return DECIMAL_LEADING_ZERO;

    for (size_t k = (size_t) scale; k < frac_len; k++)
        if (text[frac_start + k] != '0')
            return DECIMAL_PRECISION;

    int64_t result = 0;
    for (size_t k = 0; k < int_len; k++)
        if (!s_push_digit (&result, text[k] - '0'))
            return DECIMAL_OVERFLOW;
    for (size_t k = 0; k < (size_t) scale; k++) {
        int digit = k < frac_len ? text[frac_start + k] - '0' : 0;
        if (!s_push_digit (&result, digit))
            return DECIMAL_OVERFLOW;
    }
    *value = result;
    return DECIMAL_OK;
}

decimal_status_t decimal_parse (const char *text, size_t len, int scale, int64_t *value)
{
    assert (scale >= 0 && scale <= DECIMAL_MAX_SCALE);
    assert (value);
    assert (text || len == 0);
    if (len == 0)
        return DECIMAL_EMPTY;
    for (size_t i = 0; i < len; i++)
        if (s_is_space (text[i]))
            return DECIMAL_SPACE;

    if (text[0] != '+' && text[0] != '-')
        return s_parse_unsigned (text, len, scale, value);

    //  A sign is only the reason when what follows is otherwise a number: "-1" is negative,
    //  "-inf" is not finite, "-" and "--1" are just malformed.
    int64_t ignored;
    decimal_status_t rest = s_parse_unsigned (text + 1, len - 1, scale, &ignored);
    if (rest == DECIMAL_OK || rest == DECIMAL_PRECISION || rest == DECIMAL_OVERFLOW)
        return text[0] == '-' ? DECIMAL_NEGATIVE : DECIMAL_SIGN;
    if (rest == DECIMAL_EMPTY)
        return DECIMAL_SYNTAX;
    return rest;
}

const char *decimal_status_text (decimal_status_t status)
{
    switch (status) {
        case DECIMAL_OK:
            return "ok";
        case DECIMAL_EMPTY:
            return "empty number";
        case DECIMAL_SPACE:
            return "whitespace in number";
        case DECIMAL_SIGN:
            return "leading '+' not allowed";
        case DECIMAL_NEGATIVE:
            return "must not be negative";
        case DECIMAL_SYNTAX:
            return "not a decimal number (expected digits, optionally '.' and more digits, "
                   "e.g. \"100.5\")";
        case DECIMAL_LEADING_ZERO:
            return "leading zero not allowed";
        case DECIMAL_EXPONENT:
            return "exponent notation not allowed";
        case DECIMAL_NOT_FINITE:
            return "not a finite number";
        case DECIMAL_PRECISION:
            //  Only two scales exist; naming both lets the caller's field name pick the limit.
            return "too many decimal places (at most 3 for kWh, 6 for prices)";
        case DECIMAL_OVERFLOW:
            return "number too large";
    }
    return "unknown decimal status";
}

int decimal_format (int64_t value, int scale, char *buf, size_t size)
{
    assert (scale >= 0 && scale <= DECIMAL_MAX_SCALE);
    assert (buf || size == 0);
    //  Unsigned negation is defined for INT64_MIN too.
    uint64_t magnitude = value < 0 ? 0 - (uint64_t) value : (uint64_t) value;
    uint64_t whole = magnitude / s_pow10[scale];
    uint64_t fraction = magnitude % s_pow10[scale];

    char text[DECIMAL_FORMAT_MAX];
    size_t n = 0;
    if (value < 0)
        text[n++] = '-';
    char digits[20];
    size_t count = 0;
    do {
        digits[count++] = (char) ('0' + whole % 10);
        whole /= 10;
    } while (whole);
    while (count)
        text[n++] = digits[--count];

    if (fraction) {
        text[n++] = '.';
        for (int k = scale - 1; k >= 0; k--)
            text[n++] = (char) ('0' + fraction / s_pow10[k] % 10);
        while (text[n - 1] == '0')
            n--;
    }
    assert (n < sizeof text);
    if (size < n + 1)
        return -1;
    memcpy (buf, text, n);
    buf[n] = '\0';
    return (int) n;
}

//  Rewrites %g output such as "1.5e-07" or "1e+20" as plain decimal text. Text without an
//  exponent is already plain. Returns DECIMAL_OK, or the status the parser would give for
//  numbers whose plain form is too long to be worth writing out.
static decimal_status_t s_expand_exponent (const char *text, char *out, size_t size)
{
    const char *e = strchr (text, 'e');
    if (!e) {
        assert (strlen (text) < size);
        strcpy (out, text);
        return DECIMAL_OK;
    }
    char digits[S_DOUBLE_DIGITS + 1];
    size_t ndigits = 0;
    long point = -1; //  digits before the '.' of the mantissa
    for (const char *p = text; p < e; p++) {
        if (*p == '.')
            point = (long) ndigits;
        else {
            assert (ndigits < S_DOUBLE_DIGITS);
            digits[ndigits++] = *p;
        }
    }
    if (point < 0)
        point = (long) ndigits;
    long exponent = strtol (e + 1, NULL, 10);
    //  %g's mantissa starts with a non-zero digit, so the shifted point bounds the magnitude.
    long shifted = point + exponent;
    if (shifted > S_EXPAND_LIMIT)
        return DECIMAL_OVERFLOW;
    if (shifted < -S_EXPAND_LIMIT)
        return DECIMAL_PRECISION;

    size_t n = 0;
    assert (size > 2 * S_EXPAND_LIMIT + S_DOUBLE_DIGITS + 3);
    if (shifted <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (long k = 0; k < -shifted; k++)
            out[n++] = '0';
        memcpy (out + n, digits, ndigits);
        n += ndigits;
    }
    else if ((size_t) shifted >= ndigits) {
        memcpy (out + n, digits, ndigits);
        n += ndigits;
        for (long k = (long) ndigits; k < shifted; k++)
            out[n++] = '0';
    }
    else {
        memcpy (out + n, digits, (size_t) shifted);
        n += (size_t) shifted;
        out[n++] = '.';
        memcpy (out + n, digits + shifted, ndigits - (size_t) shifted);
        n += ndigits - (size_t) shifted;
    }
    out[n] = '\0';
    return DECIMAL_OK;
}

decimal_status_t decimal_from_double (double number, int scale, int64_t *value)
{
    assert (scale >= 0 && scale <= DECIMAL_MAX_SCALE);
    assert (value);
    if (isnan (number) || isinf (number))
        return DECIMAL_NOT_FINITE;
    if (signbit (number))
        return DECIMAL_NEGATIVE;

    //  The shortest text that reads back as the same double is what the sender meant:
    //  0.1 arrives as 0.1000000000000000055..., and must trade as 100 Wh, not be rejected.
    char text[32];
    for (int digits = 1; digits <= S_DOUBLE_DIGITS; digits++) {
        snprintf (text, sizeof text, "%.*g", digits, number);
        if (strtod (text, NULL) == number)
            break;
    }
    char plain[2 * S_EXPAND_LIMIT + S_DOUBLE_DIGITS + 8];
    decimal_status_t status = s_expand_exponent (text, plain, sizeof plain);
    if (status != DECIMAL_OK)
        return status;
    return decimal_parse (plain, strlen (plain), scale, value);
}
