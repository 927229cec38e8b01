/*  test_money — trade value and fee in micro-units, rounded half-even.

    Rows are (input, input) -> expected micro-units, or -1 where the call must refuse.
    Rounding rows are named by the exact quotient they round, e.g. "2.5 -> 2".
*/
#include <criterion/criterion.h>

#include <stdint.h>

#include "money.h"

typedef struct {
    const char *name;
    int64_t a;
    int64_t b;
    int rc;
    int64_t result;
} money_case_t;

static const money_case_t s_value_cases[] = {
    //  test_engine.c's worked example: 50 kWh @ 0.18, 50 @ 0.19, 25 @ 0.19
    {"50 kWh @ 0.18", 50000, 180000, 0, 9000000},
    {"50 kWh @ 0.19", 50000, 190000, 0, 9500000},
    {"25 kWh @ 0.19", 25000, 190000, 0, 4750000},
    {"100.5 kWh @ 0.15", 100500, 150000, 0, 15075000},
    {"exact", 2000, 3, 0, 6},
    {"0.001 -> 0", 1, 1, 0, 0},
    {"0.499 -> 0", 1, 499, 0, 0},
    {"0.5 -> 0 (even)", 1, 500, 0, 0},
    {"0.501 -> 1", 1, 501, 0, 1},
    {"1.5 -> 2 (even)", 1, 1500, 0, 2},
    {"2.499 -> 2", 1, 2499, 0, 2},
    {"2.5 -> 2 (even)", 1, 2500, 0, 2},
    {"2.501 -> 3", 1, 2501, 0, 3},
    {"3.5 -> 4 (even)", 1, 3500, 0, 4},
    {"zero energy", 0, 180000, 0, 0},
    {"zero price", 50000, 0, 0, 0},
    {"max Wh at 0.000001", INT64_MAX, 1, 0, 9223372036854776}, //  ...775.807 rounds up
    {"max Wh at 0.001 fits exactly", INT64_MAX, 1000, 0, INT64_MAX},
    //  (2^64 - 1) * 500 = 1000 * INT64_MAX + 500: the quotient INT64_MAX is odd, so the tie
    //  rounds up past INT64_MAX and must be refused rather than wrap
    {"tie rounding past INT64_MAX", 32767500, 281479271743489, -1, 0},
    {"one micro-unit too many", INT64_MAX, 1001, -1, 0},
    {"max times max", INT64_MAX, INT64_MAX, -1, 0},
    {"negative energy", -1, 180000, -1, 0},
    {"negative price", 50000, -1, -1, 0},
    {"INT64_MIN", INT64_MIN, INT64_MIN, -1, 0},
};

static const money_case_t s_fee_cases[] = {
    {"no fee", 9000000, 0, 0, 0},
    {"whole value", 9000000, 1000000, 0, 9000000},
    {"0.25% of 9 units", 9000000, 2500, 0, 22500},
    {"0.5 -> 0 (even)", 1, 500000, 0, 0},
    {"1.5 -> 2 (even)", 3, 500000, 0, 2},
    {"2.5 -> 2 (even)", 5, 500000, 0, 2},
    {"3.5 -> 4 (even)", 7, 500000, 0, 4},
    {"0.499999 -> 0", 1, 499999, 0, 0},
    {"0.500001 -> 1", 1, 500001, 0, 1},
    {"zero value", 0, 1000, 0, 0},
    {"max value, whole", INT64_MAX, 1000000, 0, INT64_MAX},
    {"max value, 999999 ppm", INT64_MAX, 999999, 0, 9223362813482738952}, //  ...952.224193
    {"negative value", -1, 1000, -1, 0},
    {"negative fee", 1000, -1, -1, 0},
    {"fee above 100%", 1000, 1000001, -1, 0},
};

Test (money, value_table)
{
    for (size_t i = 0; i < sizeof s_value_cases / sizeof s_value_cases[0]; i++) {
        const money_case_t *c = &s_value_cases[i];
        int64_t value = -42;
        int rc = money_value (c->a, c->b, &value);
        cr_expect_eq (rc, c->rc, "%s: rc %d", c->name, rc);
        cr_expect_eq (value, c->rc == 0 ? c->result : -42, "%s: %lld", c->name, (long long) value);
    }
}

Test (money, fee_table)
{
    for (size_t i = 0; i < sizeof s_fee_cases / sizeof s_fee_cases[0]; i++) {
        const money_case_t *c = &s_fee_cases[i];
        int64_t fee = -42;
        int rc = money_fee (c->a, c->b, &fee);
        cr_expect_eq (rc, c->rc, "%s: rc %d", c->name, rc);
        cr_expect_eq (fee, c->rc == 0 ? c->result : -42, "%s: %lld", c->name, (long long) fee);
    }
}

Test (money, div_half_even)
{
    struct {
        __int128 numerator;
        int64_t denominator;
        int64_t quotient;
    } cases[] = {
        {0, 1, 0},
        {6, 3, 2},  //  exact
        {9, 4, 2},  //  2.25
        {10, 4, 2}, //  2.5 to even, down
        {11, 4, 3}, //  2.75
        {14, 4, 4}, //  3.5 to even, up
        {3, 2, 2},  //  1.5 to even, up
        {1, 3, 0},
        {2, 3, 1},
        {(__int128) INT64_MAX * 1000, 1000, INT64_MAX},
        {(__int128) INT64_MAX * 2 - 1, 2, INT64_MAX - 1}, //  INT64_MAX - 0.5, even below
        {(__int128) INT64_MAX * INT64_MAX, INT64_MAX, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq (money_div_half_even (cases[i].numerator, cases[i].denominator),
                      cases[i].quotient, "row %zu", i);
}

Test (money, value_then_fee)
{
    //  How the settler uses the pair: the seller receives value - fee, the fee goes to the
    //  treasury, and the two add back up to what the buyer pays.
    int64_t value, fee;
    cr_assert_eq (money_value (50000, 180000, &value), 0);
    cr_assert_eq (money_fee (value, 2500, &fee), 0);
    cr_expect_eq (value, 9000000);
    cr_expect_eq (fee, 22500);
    cr_expect_eq (value - fee, 8977500);
}
