/*  routes_market — public market data, answered from the gateway's read model (kept from the
    matcher bus), so a read never reaches the matcher or a database; and a user's own trade
    history.

    Every query takes ?market= (default: the first configured market). Unknown markets are a
    400 that names the field; numbers are bounded. Answers that depend on the read model's
    seq alone (depth, depth chart, trades, clearing price, epochs) are kept rendered until
    the next bus event (respcache), so many readers of one book cost one rendering. A user's
    trade history comes from Postgres (the persister's trades table, all of it) on the worker,
    or from the read model's recent trades when Postgres cannot answer ("source" says which).
*/
#include "apijson.h"
#include "clock.h"
#include "decimal.h"
#include "gateway_server.h"
#include "readmodel.h"
#include "respcache.h"

#include <string.h>

//  The market of the query, or NULL after answering 400.
static const char *s_market (gateway_request_t *req)
{
    const mce_config_t *cfg = gateway_server_config (req->server);
    const char *market = gateway_query (req, "market");
    if (!market)
        return cfg->markets[0].id;
    if (!config_market (cfg, market)) {
        gateway_fail (req, MHD_HTTP_BAD_REQUEST, "unknown_market", "market",
                      "there is no market \"%s\"", market);
        return NULL;
    }
    return market;
}

//  A cached rendering of key, if the read model has not moved since. true when answered.
static bool s_cached (gateway_request_t *req, const char *key, enum MHD_Result *rc)
{
    size_t len;
    const char *text = respcache_get (gateway_server_cache (req->server), key,
                                      readmodel_seq (gateway_server_readmodel (req->server)), &len);
    if (text)
        *rc = gateway_respond_text (req, MHD_HTTP_OK, text, len);
    return text != NULL;
}

//  Renders body, keeps it under key, answers it.
static enum MHD_Result s_answer_cached (gateway_request_t *req, const char *key, json_t *body)
{
    if (!body)
        return gateway_fail (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
                             "the read model has no answer");
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    if (!text)
        return MHD_NO;
    size_t len = strlen (text);
    enum MHD_Result rc = gateway_respond_text (req, MHD_HTTP_OK, text, len);
    respcache_put (gateway_server_cache (req->server), key,
                   readmodel_seq (gateway_server_readmodel (req->server)), text, len);
    return rc;
}

static enum MHD_Result s_answer (gateway_request_t *req, json_t *body)
{
    if (!body)
        return gateway_fail (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
                             "the read model has no answer");
    return gateway_respond (req, MHD_HTTP_OK, body);
}

//  GET /api/market/depth?market&epoch&levels
enum MHD_Result routes_market_depth (gateway_request_t *req)
{
    long long epoch, levels;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "epoch", -1, 0, INT64_MAX, &epoch) ||
        gateway_query_int (req, "levels", 50, 1, 1000, &levels))
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "depth/%s/%lld/%lld", market, epoch, levels);
    if (s_cached (req, key, &rc))
        return rc;
    return s_answer_cached (
        req, key,
        readmodel_depth (gateway_server_readmodel (req->server), market, epoch, (int) levels));
}

//  GET /api/market/depth-chart?market&epoch&levels
enum MHD_Result routes_market_depth_chart (gateway_request_t *req)
{
    long long epoch, levels;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "epoch", -1, 0, INT64_MAX, &epoch) ||
        gateway_query_int (req, "levels", 100, 1, 1000, &levels))
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "chart/%s/%lld/%lld", market, epoch, levels);
    if (s_cached (req, key, &rc))
        return rc;
    return s_answer_cached (req, key,
                            readmodel_depth_chart (gateway_server_readmodel (req->server), market,
                                                   epoch, (int) levels));
}

//  GET /api/market/stats?market (not cached: the 24 h window moves with the clock)
enum MHD_Result routes_market_stats (gateway_request_t *req)
{
    const char *market = s_market (req);
    if (!market)
        return MHD_YES;
    return s_answer (
        req, readmodel_stats (gateway_server_readmodel (req->server), market, clock_wall_ns ()));
}

//  GET /api/market/clearing-price?market&epoch (no epoch: the latest cleared one)
enum MHD_Result routes_market_clearing_price (gateway_request_t *req)
{
    long long epoch;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "epoch", -1, 0, INT64_MAX, &epoch))
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "clearing/%s/%lld", market, epoch);
    if (s_cached (req, key, &rc))
        return rc;
    json_t *body = readmodel_clearing_price (gateway_server_readmodel (req->server), market, epoch);
    if (!body && epoch >= 0)
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "unknown_epoch", "epoch",
                             "market %s has no epoch %lld in its recent history", market, epoch);
    return s_answer_cached (req, key, body);
}

//  GET /api/market/indicative?market&epoch (no epoch: the current one): what an auction
//  market's open book would clear at now, as the matcher last published it.
enum MHD_Result routes_market_indicative (gateway_request_t *req)
{
    long long epoch;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "epoch", -1, 0, INT64_MAX, &epoch))
        return MHD_YES;
    const config_market_t *cfg = config_market (gateway_server_config (req->server), market);
    if (cfg->mode == CONFIG_MODE_CONTINUOUS)
        return gateway_fail (req, MHD_HTTP_CONFLICT, "not_auction", "market",
                             "market %s trades continuously: it has no auction to indicate",
                             market);
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "indicative/%s/%lld", market, epoch);
    if (s_cached (req, key, &rc))
        return rc;
    json_t *body = readmodel_indicative (gateway_server_readmodel (req->server), market, epoch);
    if (!body)
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "unknown_epoch", "epoch",
                             "market %s has no open epoch %lld", market, epoch);
    return s_answer_cached (req, key, body);
}

//  GET /api/market/trades?market&limit
enum MHD_Result routes_market_trades (gateway_request_t *req)
{
    long long limit;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "limit", 50, 1, 1000, &limit))
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "trades/%s/%lld", market, limit);
    if (s_cached (req, key, &rc))
        return rc;
    return s_answer_cached (
        req, key, readmodel_trades (gateway_server_readmodel (req->server), market, (int) limit));
}

//  GET /api/market/epoch/status?market (not cached: seconds_remaining moves with the clock)
enum MHD_Result routes_market_epoch_status (gateway_request_t *req)
{
    const char *market = s_market (req);
    if (!market)
        return MHD_YES;
    return s_answer (req, readmodel_epoch_status (gateway_server_readmodel (req->server), market,
                                                  clock_wall_ns ()));
}

//  GET /api/market/epochs?market&limit&offset
enum MHD_Result routes_market_epochs (gateway_request_t *req)
{
    long long limit, offset;
    const char *market = s_market (req);
    if (!market || gateway_query_int (req, "limit", 50, 1, 1000, &limit) ||
        gateway_query_int (req, "offset", 0, 0, 100000000, &offset))
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "epochs/%s/%lld/%lld", market, limit, offset);
    if (s_cached (req, key, &rc))
        return rc;
    return s_answer_cached (req, key,
                            readmodel_epochs (gateway_server_readmodel (req->server), market,
                                              (int) limit, (int) offset));
}

//  GET /api/market/trades/my-history?limit&offset: from Postgres (the persister's trades
//  table, the whole history), or from the read model's recent trades when the database is
//  unreachable or the persister has not made its tables yet.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    char user[65];
    long long limit, offset;
    const mce_config_t *cfg; //  the markets' epoch lengths: each trade's delivery period
    json_t *body;            //  built on the worker; NULL = fall back to the read model
} s_history_t;

static void s_history_run (gateway_job_t *base, pg_t *pg)
{
    s_history_t *job = (s_history_t *) base;
    if (!pg)
        return;
    char limit[24], offset[24];
    snprintf (limit, sizeof limit, "%lld", job->limit);
    snprintf (offset, sizeof offset, "%lld", job->offset);
    const char *params[] = {job->user, limit, offset};
    pg_result_t *total =
        pg_exec (pg, "SELECT count(*) FROM trades WHERE buyer = $1 OR seller = $1", 1, params);
    //  With each trade: the user's own order in it, and how its settlement stands (no row yet:
    //  the settler has not recorded it; the persister fills settlements from the settler bus).
    pg_result_t *rows =
        total ? pg_exec (pg,
                         "SELECT t.trade_id, t.market, t.epoch, t.buyer = $1, t.price, t.qty, "
                         "t.value, " GATEWAY_SQL_TIME (
                             "t.at") ", "
                                     "CASE WHEN t.buyer = $1 THEN t.buy_order_id ELSE "
                                     "t.sell_order_id END, "
                                     "s.state, s.signature FROM trades t "
                                     "LEFT JOIN settlements s ON s.trade_id = t.trade_id "
                                     "WHERE t.buyer = $1 OR t.seller = $1 ORDER BY t.seq DESC "
                                     "LIMIT $2::bigint OFFSET $3::bigint",
                         3, params)
              : NULL;
    if (rows) {
        json_t *list = json_array ();
        for (int r = 0; r < pg_rows (rows); r++) {
            char price[DECIMAL_FORMAT_MAX], qty[DECIMAL_FORMAT_MAX], value[DECIMAL_FORMAT_MAX];
            decimal_format (pg_int (rows, r, 4), DECIMAL_PRICE_SCALE, price, sizeof price);
            decimal_format (pg_int (rows, r, 5), DECIMAL_KWH_SCALE, qty, sizeof qty);
            decimal_format (pg_int (rows, r, 6), DECIMAL_PRICE_SCALE, value, sizeof value);
            json_t *row = json_pack (
                "{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "trade_id", pg_value (rows, r, 0),
                "order_id", pg_value (rows, r, 8), "market", pg_value (rows, r, 1), "epoch",
                (json_int_t) pg_int (rows, r, 2), "side",
                strcmp (pg_value (rows, r, 3), "t") == 0 ? "Buy" : "Sell", "price", price,
                "energy_amount", qty, "value", value, "time", pg_value (rows, r, 7));
            const char *state = pg_value (rows, r, 9), *signature = pg_value (rows, r, 10);
            const config_market_t *m = config_market (job->cfg, pg_value (rows, r, 1));
            int64_t len = m ? m->epoch_seconds * MCE_NS_PER_SEC : 0, epoch = pg_int (rows, r, 2);
            json_object_set_new (row, "delivery_start",
                                 m ? apijson_time (epoch * len) : json_null ());
            json_object_set_new (row, "delivery_end",
                                 m ? apijson_time (epoch * len + len) : json_null ());
            json_object_set_new (row, "settlement_status",
                                 state ? json_string (state) : json_null ());
            json_object_set_new (row, "signature",
                                 signature ? json_string (signature) : json_null ());
            json_array_append_new (list, row);
        }
        job->body = json_pack ("{s:o,s:I,s:I,s:I,s:s}", "trades", list, "limit",
                               (json_int_t) job->limit, "offset", (json_int_t) job->offset, "total",
                               (json_int_t) pg_int (total, 0, 0), "source", "postgres");
    }
    pg_result_free (&total);
    pg_result_free (&rows);
}

static void s_history_done (gateway_job_t *base)
{
    s_history_t *job = (s_history_t *) base;
    json_t *body = job->body;
    if (!body) {
        body = readmodel_user_trades (gateway_server_readmodel (job->req->server), job->user,
                                      (int) job->limit, (int) job->offset);
        json_object_set_new (body, "source", json_string ("recent"));
    }
    gateway_resume (job->req, MHD_HTTP_OK, body);
    free (job);
}

enum MHD_Result routes_market_my_trades (gateway_request_t *req)
{
    long long limit, offset;
    if (gateway_query_int (req, "limit", 50, 1, 1000, &limit) ||
        gateway_query_int (req, "offset", 0, 0, 100000000, &offset))
        return MHD_YES;
    s_history_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->job.run = s_history_run;
    job->job.done = s_history_done;
    job->req = req;
    snprintf (job->user, sizeof job->user, "%s", req->who.user);
    job->limit = limit;
    job->offset = offset;
    job->cfg = gateway_server_config (req->server);
    return gateway_submit (req, &job->job);
}
