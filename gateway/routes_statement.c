/*  routes_statement — a user's statement for their accounting: GET /api/account/statement.

    What a user needs to book a period: every trade (side, quantity, price, value, the fee and
    what it netted, how its settlement stands), every deposit and every withdrawal, with
    totals, in JSON or CSV. Postgres holds the whole history (the persister writes it from
    the buses), so the statement is read there, on the worker like my-history; the read model
    keeps only recent trades and could not answer for a month.

    Bounds: a window of at most a year and at most S_ROWS_MAX rows of each kind (the answer
    then says truncated, and a shorter window gets the rest), so a statement costs the
    database and the gateway a known amount whoever asks.

    CSV is written here by hand: every field is a number, an id, a fixed word (side, asset,
    state), a market id (lower-case letters, digits, - and _), an RFC 3339 time or a base58
    signature, so none needs quoting; one table, a row per item, its kind in the first column.
*/
#include "apijson.h"
#include "clock.h"
#include "decimal.h"
#include "gateway_server.h"
#include "money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ROWS_MAX    10000           //  of each kind in one statement
#define S_WINDOW_MAX  (366LL * 86400) //  seconds: a statement covers at most this
#define S_WINDOW_DAYS 30              //  without from: the last 30 days
#define S_CSV_HEADER                                                                               \
    "kind,id,time,market,epoch,delivery_start,side,energy_kwh,price,value,fee,net,asset,amount,"   \
    "status,signature\n"

typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    const mce_config_t *cfg;
    char user[65];
    char from[32], to[32]; //  RFC 3339
    bool csv;
    json_t *body; //  built on the worker; NULL: the database did not answer
} s_statement_t;

//  One trade row of the statement, from the query's row r. Adds to the totals.
static json_t *s_trade (s_statement_t *job, pg_result_t *rows, int r, int64_t totals[5])
{
    bool buy = strcmp (pg_value (rows, r, 3), "t") == 0;
    int64_t price = pg_int (rows, r, 4), qty = pg_int (rows, r, 5), value = pg_int (rows, r, 6);
    const char *market = pg_value (rows, r, 1);
    const config_market_t *m = config_market (job->cfg, market);
    //  the settler's fee, as it decides it: fee_ppm of the value, paid out of the seller's part
    int64_t fee = 0;
    if (!buy && m)
        money_fee (value, m->fee_ppm, &fee);
    int64_t net = buy ? -value : value - fee;
    totals[buy ? 0 : 1] += qty;
    totals[buy ? 2 : 3] += buy ? value : value - fee;
    totals[4] += fee;
    int64_t epoch = pg_int (rows, r, 2), len = m ? m->epoch_seconds * MCE_NS_PER_SEC : 0;
    const char *state = pg_value (rows, r, 9), *signature = pg_value (rows, r, 10);
    return json_pack (
        "{s:s,s:s,s:s,s:I,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s}", "trade_id",
        pg_value (rows, r, 0), "order_id", pg_value (rows, r, 8), "market", market, "epoch",
        (json_int_t) epoch, "delivery_start", m ? apijson_time (epoch * len) : json_null (), "side",
        buy ? "Buy" : "Sell", "price", apijson_price (price), "energy_amount", apijson_kwh (qty),
        "value", apijson_money (value), "fee", apijson_money (fee), "net", apijson_money (net),
        "settlement_status", state ? json_string (state) : json_null (), "signature",
        signature ? json_string (signature) : json_null (), "time", pg_value (rows, r, 7));
}

//  A deposit's or a withdrawal's row: {id_key, asset, amount, status, signature, time}.
static json_t *s_transfer (pg_result_t *rows, int r, const char *id_key)
{
    bool energy = strcmp (pg_value (rows, r, 1), "energy") == 0;
    const char *signature = pg_value (rows, r, 4);
    return json_pack (
        "{s:s,s:s,s:o,s:s,s:o,s:s}", id_key, pg_value (rows, r, 0), "asset", pg_value (rows, r, 1),
        "amount", energy ? apijson_kwh (pg_int (rows, r, 2)) : apijson_money (pg_int (rows, r, 2)),
        "status", pg_value (rows, r, 3), "signature",
        signature ? json_string (signature) : json_null (), "time", pg_value (rows, r, 5));
}

static void s_run (gateway_job_t *base, pg_t *pg)
{
    s_statement_t *job = (s_statement_t *) base;
    if (!pg)
        return;
    char limit[16];
    snprintf (limit, sizeof limit, "%d", S_ROWS_MAX + 1);
    const char *params[] = {job->user, job->from, job->to, limit};
    pg_result_t *trades =
        pg_exec (pg,
                 "SELECT t.trade_id, t.market, t.epoch, t.buyer = $1, t.price, t.qty, "
                 "t.value, " GATEWAY_SQL_TIME (
                     "t.at") ", CASE WHEN t.buyer = $1 THEN t.buy_order_id ELSE "
                             "t.sell_order_id END, s.state, s.signature FROM trades t "
                             "LEFT JOIN settlements s ON s.trade_id = t.trade_id "
                             "WHERE (t.buyer = $1 OR t.seller = $1) AND t.at >= "
                             "$2::timestamptz AND t.at < $3::timestamptz ORDER BY t.seq "
                             "LIMIT $4::bigint",
                 4, params);
    pg_result_t *deposits =
        trades ? pg_exec (pg,
                          "SELECT deposit_id, asset, amount, state, signature, " GATEWAY_SQL_TIME (
                              "created_at") " FROM deposits WHERE username = $1 AND created_at "
                                            ">= $2::timestamptz AND created_at < $3::timestamptz "
                                            "ORDER BY deposit_id LIMIT $4::bigint",
                          4, params)
               : NULL;
    pg_result_t *withdrawals =
        deposits
            ? pg_exec (pg,
                       "SELECT withdrawal_id, asset, amount, state, signature, " GATEWAY_SQL_TIME (
                           "created_at") " FROM withdrawals WHERE username = $1 AND created_at "
                                         ">= $2::timestamptz AND created_at < $3::timestamptz "
                                         "ORDER BY withdrawal_id LIMIT $4::bigint",
                       4, params)
            : NULL;
    if (withdrawals) {
        json_t *t = json_array (), *d = json_array (), *w = json_array ();
        int64_t totals[5] = {0}; //  bought, sold (Wh); paid, received, fees (µ)
        bool truncated = pg_rows (trades) > S_ROWS_MAX || pg_rows (deposits) > S_ROWS_MAX ||
                         pg_rows (withdrawals) > S_ROWS_MAX;
        for (int r = 0; r < pg_rows (trades) && r < S_ROWS_MAX; r++)
            json_array_append_new (t, s_trade (job, trades, r, totals));
        for (int r = 0; r < pg_rows (deposits) && r < S_ROWS_MAX; r++)
            json_array_append_new (d, s_transfer (deposits, r, "deposit_id"));
        for (int r = 0; r < pg_rows (withdrawals) && r < S_ROWS_MAX; r++)
            json_array_append_new (w, s_transfer (withdrawals, r, "withdrawal_id"));
        job->body = json_pack ("{s:s,s:s,s:s,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o,s:o},s:b}", "user",
                               job->user, "from", job->from, "to", job->to, "trades", t, "deposits",
                               d, "withdrawals", w, "totals", "bought", apijson_kwh (totals[0]),
                               "sold", apijson_kwh (totals[1]), "paid", apijson_money (totals[2]),
                               "received", apijson_money (totals[3]), "fees",
                               apijson_money (totals[4]), "truncated", truncated);
    }
    pg_result_free (&trades);
    pg_result_free (&deposits);
    pg_result_free (&withdrawals);
}

static const char *s_str (json_t *o, const char *key)
{
    const char *v = json_string_value (json_object_get (o, key));
    return v ? v : "";
}

//  The statement as one CSV table (see the top of the file for why nothing is quoted).
static char *s_csv (json_t *body, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream (&text, len);
    if (!f)
        return NULL;
    fputs (S_CSV_HEADER, f);
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (body, "trades"), i, row)
    {
        fprintf (f, "trade,%s,%s,%s,%lld,%s,%s,%s,%s,%s,%s,%s,,,%s,%s\n", s_str (row, "trade_id"),
                 s_str (row, "time"), s_str (row, "market"),
                 (long long) json_integer_value (json_object_get (row, "epoch")),
                 s_str (row, "delivery_start"), s_str (row, "side"), s_str (row, "energy_amount"),
                 s_str (row, "price"), s_str (row, "value"), s_str (row, "fee"), s_str (row, "net"),
                 s_str (row, "settlement_status"), s_str (row, "signature"));
    }
    const char *kinds[2] = {"deposits", "withdrawals"}, *ids[2] = {"deposit_id", "withdrawal_id"};
    for (int k = 0; k < 2; k++)
        json_array_foreach (json_object_get (body, kinds[k]), i, row)
        {
            fprintf (f, "%s,%s,%s,,,,,,,,,,%s,%s,%s,%s\n", k ? "withdrawal" : "deposit",
                     s_str (row, ids[k]), s_str (row, "time"), s_str (row, "asset"),
                     s_str (row, "amount"), s_str (row, "status"), s_str (row, "signature"));
        }
    if (fclose (f)) {
        free (text);
        return NULL;
    }
    return text;
}

static void s_done (gateway_job_t *base)
{
    s_statement_t *job = (s_statement_t *) base;
    gateway_request_t *req = job->req;
    if (!job->body)
        gateway_resume (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                        gateway_error ("database_unavailable", NULL,
                                       "the history is in Postgres, which does not answer now; "
                                       "retry shortly"));
    else if (job->csv) {
        size_t len = 0;
        char *text = s_csv (job->body, &len);
        json_decref (job->body);
        if (text)
            gateway_resume_blob (req, MHD_HTTP_OK, "text/csv; charset=utf-8", text, len);
        else
            gateway_resume (req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            gateway_error ("internal", NULL, "cannot write the CSV"));
    }
    else
        gateway_resume (req, MHD_HTTP_OK, job->body);
    free (job);
}

//  A time of the query (RFC 3339), or fallback when absent. false (answered 400) when bad.
static bool s_time (gateway_request_t *req, const char *key, int64_t fallback, int64_t *ns)
{
    const char *text = gateway_query (req, key);
    *ns = fallback;
    if (text && clock_parse_rfc3339 (text, strlen (text), ns)) {
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", key,
                      "%s must be an RFC 3339 time such as 2026-11-01T00:00:00Z", key);
        return false;
    }
    return true;
}

//  GET /api/account/statement?from&to&format=json|csv
enum MHD_Result routes_statement (gateway_request_t *req)
{
    int64_t to, from, now = clock_wall_ns ();
    if (!s_time (req, "to", now, &to) ||
        !s_time (req, "from", to - S_WINDOW_DAYS * 86400LL * MCE_NS_PER_SEC, &from))
        return MHD_YES;
    if (from >= to || to - from > S_WINDOW_MAX * MCE_NS_PER_SEC)
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", "from",
                             "from must be before to, and the window at most 366 days");
    const char *format = gateway_query (req, "format");
    if (format && strcmp (format, "json") && strcmp (format, "csv"))
        return gateway_fail (req, MHD_HTTP_BAD_REQUEST, "bad_query", "format",
                             "format must be json or csv");
    s_statement_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->job.run = s_run;
    job->job.done = s_done;
    job->req = req;
    job->cfg = gateway_server_config (req->server);
    job->csv = format && strcmp (format, "csv") == 0;
    snprintf (job->user, sizeof job->user, "%s", req->who.user);
    clock_format_rfc3339 (from, job->from, sizeof job->from);
    clock_format_rfc3339 (to, job->to, sizeof job->to);
    return gateway_submit (req, &job->job);
}
