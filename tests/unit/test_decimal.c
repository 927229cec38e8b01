/*  test_decimal — decimal text <-> scaled int64, the way the gateway uses it.

    Each table row is an input exactly as a client might send it, with either the integer it
    must become or the reason it must be refused. The kWh table runs at scale 3 (Wh), the
    price table at scale 6 (micro-units per kWh).
*/
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "decimal.h"

//  A string literal and its length, so rows may hold embedded NULs.
#define TEXT(literal) literal, sizeof (literal) - 1

typedef struct {
    const char *text;
    size_t len;
    decimal_status_t status;
    int64_t value; //  meaningful when status is DECIMAL_OK
} parse_case_t;

static const parse_case_t s_kwh_cases[] = {
    //  accepted
    {TEXT ("0"), DECIMAL_OK, 0},
    {TEXT ("0.0"), DECIMAL_OK, 0},
    {TEXT ("0.000"), DECIMAL_OK, 0},
    {TEXT ("1"), DECIMAL_OK, 1000},
    {TEXT ("0.001"), DECIMAL_OK, 1},
    {TEXT ("0.1"), DECIMAL_OK, 100},
    {TEXT ("100.5"), DECIMAL_OK, 100500},
    {TEXT ("12.345"), DECIMAL_OK, 12345},
    {TEXT ("12.3450000"), DECIMAL_OK, 12345}, //  zeros beyond the scale lose nothing
    {TEXT ("1000000"), DECIMAL_OK, 1000000000},
    {TEXT ("9223372036854775.807"), DECIMAL_OK, INT64_MAX}, //  the most Wh an int64 holds
    //  refused: too precise, too large
    {TEXT ("0.0001"), DECIMAL_PRECISION, 0},
    {TEXT ("1.0005"), DECIMAL_PRECISION, 0},
    {TEXT ("0.00000000000000000000000001"), DECIMAL_PRECISION, 0},
    {TEXT ("9223372036854775.808"), DECIMAL_OVERFLOW, 0}, //  one Wh too many
    {TEXT ("9223372036854776"), DECIMAL_OVERFLOW, 0},
    {TEXT ("12345678901234567890"), DECIMAL_OVERFLOW, 0},
    {TEXT ("99999999999999999999.5"), DECIMAL_OVERFLOW, 0},
    //  refused: not our grammar
    {TEXT (""), DECIMAL_EMPTY, 0},
    {TEXT (" 1"), DECIMAL_SPACE, 0},
    {TEXT ("1 "), DECIMAL_SPACE, 0},
    {TEXT ("1\n"), DECIMAL_SPACE, 0},
    {TEXT ("1 000"), DECIMAL_SPACE, 0},
    {TEXT ("+1"), DECIMAL_SIGN, 0},
    {TEXT ("-1"), DECIMAL_NEGATIVE, 0},
    {TEXT ("-0"), DECIMAL_NEGATIVE, 0},
    {TEXT ("-0.5"), DECIMAL_NEGATIVE, 0},
    {TEXT ("-"), DECIMAL_SYNTAX, 0},
    {TEXT ("1."), DECIMAL_SYNTAX, 0},
    {TEXT (".5"), DECIMAL_SYNTAX, 0},
    {TEXT ("1.2.3"), DECIMAL_SYNTAX, 0},
    {TEXT ("1,5"), DECIMAL_SYNTAX, 0},
    {TEXT ("0x10"), DECIMAL_SYNTAX, 0},
    {TEXT ("ten"), DECIMAL_SYNTAX, 0},
    {TEXT ("1\0.5"), DECIMAL_SYNTAX, 0}, //  embedded NUL: len counts bytes
    {TEXT ("1\0"), DECIMAL_SYNTAX, 0},
    {TEXT ("1e"), DECIMAL_SYNTAX, 0},
    {TEXT ("01"), DECIMAL_LEADING_ZERO, 0},
    {TEXT ("00.5"), DECIMAL_LEADING_ZERO, 0},
    {TEXT ("1e3"), DECIMAL_EXPONENT, 0},
    {TEXT ("1E3"), DECIMAL_EXPONENT, 0},
    {TEXT ("1.5e-3"), DECIMAL_EXPONENT, 0},
    {TEXT ("NaN"), DECIMAL_NOT_FINITE, 0},
    {TEXT ("nan"), DECIMAL_NOT_FINITE, 0},
    {TEXT ("inf"), DECIMAL_NOT_FINITE, 0},
    {TEXT ("Infinity"), DECIMAL_NOT_FINITE, 0},
    {TEXT ("-inf"), DECIMAL_NOT_FINITE, 0},
};

static const parse_case_t s_price_cases[] = {
    {TEXT ("0.15"), DECIMAL_OK, 150000},
    {TEXT ("0.18"), DECIMAL_OK, 180000},
    {TEXT ("0"), DECIMAL_OK, 0},
    {TEXT ("1"), DECIMAL_OK, 1000000},
    {TEXT ("0.000001"), DECIMAL_OK, 1}, //  one micro-unit
    {TEXT ("0.1500000"), DECIMAL_OK, 150000},
    {TEXT ("9223372036854.775807"), DECIMAL_OK, INT64_MAX},
    {TEXT ("0.0000001"), DECIMAL_PRECISION, 0},
    {TEXT ("0.15000001"), DECIMAL_PRECISION, 0},
    {TEXT ("9223372036854.775808"), DECIMAL_OVERFLOW, 0},
    {TEXT ("9223372036855"), DECIMAL_OVERFLOW, 0},
    {TEXT ("12345678901234567890"), DECIMAL_OVERFLOW, 0},
    {TEXT ("-0.15"), DECIMAL_NEGATIVE, 0},
    {TEXT ("+0.15"), DECIMAL_SIGN, 0},
    {TEXT ("0.15e0"), DECIMAL_EXPONENT, 0},
    {TEXT (".15"), DECIMAL_SYNTAX, 0},
    {TEXT ("0,15"), DECIMAL_SYNTAX, 0},
    {TEXT ("€0.15"), DECIMAL_SYNTAX, 0},
    {TEXT ("00.15"), DECIMAL_LEADING_ZERO, 0},
    {TEXT ("INF"), DECIMAL_NOT_FINITE, 0},
    {TEXT ("\t0.15"), DECIMAL_SPACE, 0},
};

static void s_check_table (const parse_case_t *cases, size_t count, int scale)
{
    for (size_t i = 0; i < count; i++) {
        const parse_case_t *c = &cases[i];
        int64_t value = -42;
        decimal_status_t status = decimal_parse (c->text, c->len, scale, &value);
        cr_expect_eq (status, c->status, "row %zu \"%.*s\": status %d (%s), expected %d (%s)", i,
                      (int) c->len, c->text, status, decimal_status_text (status), c->status,
                      decimal_status_text (c->status));
        if (c->status == DECIMAL_OK)
            cr_expect_eq (value, c->value, "row %zu \"%.*s\": %lld, expected %lld", i, (int) c->len,
                          c->text, (long long) value, (long long) c->value);
        else
            cr_expect_eq (value, -42, "row %zu: a refused parse must not write the value", i);
    }
}

Test (decimal, kwh_table)
{
    s_check_table (s_kwh_cases, sizeof s_kwh_cases / sizeof s_kwh_cases[0], DECIMAL_KWH_SCALE);
}

Test (decimal, price_table)
{
    s_check_table (s_price_cases, sizeof s_price_cases / sizeof s_price_cases[0],
                   DECIMAL_PRICE_SCALE);
}

Test (decimal, text_need_not_be_terminated)
{
    //  The gateway hands over slices of a request body; only len bytes may be read.
    const char body[] = "100.5,0.15";
    int64_t wh, price;
    cr_assert_eq (decimal_parse (body, 5, DECIMAL_KWH_SCALE, &wh), DECIMAL_OK);
    cr_expect_eq (wh, 100500);
    cr_assert_eq (decimal_parse (body + 6, 4, DECIMAL_PRICE_SCALE, &price), DECIMAL_OK);
    cr_expect_eq (price, 150000);
}

Test (decimal, format)
{
    char buf[DECIMAL_FORMAT_MAX];
    struct {
        int64_t value;
        int scale;
        const char *text;
    } cases[] = {
        {100500, 3, "100.5"},
        {150000, 6, "0.15"},
        {1000, 3, "1"},
        {0, 3, "0"},
        {1, 3, "0.001"},
        {1, 6, "0.000001"},
        {5, 0, "5"},
        {-1500, 3, "-1.5"},
        {INT64_MAX, 3, "9223372036854775.807"},
        {INT64_MIN, 3, "-9223372036854775.808"},
        {INT64_MIN, 18, "-9.223372036854775808"},
        {INT64_MIN + 1, 0, "-9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = decimal_format (cases[i].value, cases[i].scale, buf, sizeof buf);
        cr_expect_eq (n, (int) strlen (cases[i].text), "row %zu", i);
        cr_expect_str_eq (buf, cases[i].text, "row %zu", i);
    }
}

Test (decimal, format_needs_room_for_the_nul)
{
    char buf[6];
    cr_expect_eq (decimal_format (100500, 3, buf, 5), -1); //  "100.5" is 5 bytes + NUL
    cr_expect_eq (decimal_format (100500, 3, buf, 6), 5);
    cr_expect_str_eq (buf, "100.5");
    cr_expect_eq (decimal_format (0, 3, NULL, 0), -1);
}

Test (decimal, round_trip_canonical)
{
    //  Canonical text (no trailing fractional zeros) survives parse then format unchanged.
    const char *kwh[] = {"0",     "1",      "0.001",   "0.1",
                         "100.5", "12.345", "1000000", "9223372036854775.807"};
    const char *price[] = {"0", "0.15", "0.000001", "1", "123.456789", "9223372036854.775807"};
    char buf[DECIMAL_FORMAT_MAX];
    int64_t value;
    for (size_t i = 0; i < sizeof kwh / sizeof kwh[0]; i++) {
        cr_assert_eq (decimal_parse (kwh[i], strlen (kwh[i]), DECIMAL_KWH_SCALE, &value),
                      DECIMAL_OK, "%s", kwh[i]);
        cr_assert_gt (decimal_format (value, DECIMAL_KWH_SCALE, buf, sizeof buf), 0);
        cr_expect_str_eq (buf, kwh[i]);
    }
    for (size_t i = 0; i < sizeof price / sizeof price[0]; i++) {
        cr_assert_eq (decimal_parse (price[i], strlen (price[i]), DECIMAL_PRICE_SCALE, &value),
                      DECIMAL_OK, "%s", price[i]);
        cr_assert_gt (decimal_format (value, DECIMAL_PRICE_SCALE, buf, sizeof buf), 0);
        cr_expect_str_eq (buf, price[i]);
    }
}

Test (decimal, from_double)
{
    struct {
        double number;
        int scale;
        decimal_status_t status;
        int64_t value;
    } cases[] = {
        //  0.1 is really 0.1000000000000000055...; its shortest form "0.1" is what was sent
        {0.1, DECIMAL_KWH_SCALE, DECIMAL_OK, 100},
        {100.5, DECIMAL_KWH_SCALE, DECIMAL_OK, 100500},
        {0.0, DECIMAL_KWH_SCALE, DECIMAL_OK, 0},
        {50, DECIMAL_KWH_SCALE, DECIMAL_OK, 50000},
        {1e15, DECIMAL_KWH_SCALE, DECIMAL_OK, 1000000000000000000}, //  printed "1e+15"
        {0.15, DECIMAL_PRICE_SCALE, DECIMAL_OK, 150000},
        {1.25e-3, DECIMAL_PRICE_SCALE, DECIMAL_OK, 1250}, //  printed "0.00125"
        {1e-6, DECIMAL_PRICE_SCALE, DECIMAL_OK, 1},       //  printed "1e-06"
        {0.0001, DECIMAL_KWH_SCALE, DECIMAL_PRECISION, 0},
        {0.1 + 0.2, DECIMAL_KWH_SCALE, DECIMAL_PRECISION, 0}, //  0.30000000000000004
        {1e-7, DECIMAL_PRICE_SCALE, DECIMAL_PRECISION, 0},
        {5e-324, DECIMAL_PRICE_SCALE, DECIMAL_PRECISION, 0}, //  smallest subnormal
        {1e16, DECIMAL_KWH_SCALE, DECIMAL_OVERFLOW, 0},
        {1e20, DECIMAL_KWH_SCALE, DECIMAL_OVERFLOW, 0},
        {1.7976931348623157e308, DECIMAL_PRICE_SCALE, DECIMAL_OVERFLOW, 0},
        {NAN, DECIMAL_KWH_SCALE, DECIMAL_NOT_FINITE, 0},
        {INFINITY, DECIMAL_KWH_SCALE, DECIMAL_NOT_FINITE, 0},
        {-INFINITY, DECIMAL_KWH_SCALE, DECIMAL_NOT_FINITE, 0},
        {-1.0, DECIMAL_KWH_SCALE, DECIMAL_NEGATIVE, 0},
        {-0.0, DECIMAL_KWH_SCALE, DECIMAL_NEGATIVE, 0}, //  like the text "-0"
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t value = -42;
        decimal_status_t status = decimal_from_double (cases[i].number, cases[i].scale, &value);
        cr_expect_eq (status, cases[i].status, "row %zu (%.17g): status %d (%s)", i,
                      cases[i].number, status, decimal_status_text (status));
        if (cases[i].status == DECIMAL_OK)
            cr_expect_eq (value, cases[i].value, "row %zu (%.17g): %lld", i, cases[i].number,
                          (long long) value);
    }
}

Test (decimal, status_text)
{
    //  Every reason reads differently, so an API user can tell what to fix.
    for (int a = DECIMAL_OK; a <= DECIMAL_OVERFLOW; a++)
        for (int b = a + 1; b <= DECIMAL_OVERFLOW; b++)
            cr_expect_str_neq (decimal_status_text (a), decimal_status_text (b), "%d %d", a, b);
    cr_expect_str_eq (decimal_status_text (DECIMAL_PRECISION),
                      "too many decimal places (at most 3 for kWh, 6 for prices)");
}
