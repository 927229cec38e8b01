/*  routes_market — public market data, answered from the gateway's read model (kept from the
    matcher bus), so a read never reaches the matcher or a database; and a user's own trade
    history.

    Every query takes ?market= (default: the first configured market). Unknown markets are a
    400 that names the field; numbers are bounded. Answers that depend on the read model's
    seq alone (depth, depth chart, trades, clearing price, epochs) are kept rendered until
    the next bus event (respcache), so many readers of one book cost one rendering. The history is
   the read model's recent trades of the user until the persister's tables exist to page further
   back.
*/
#include "clock.h"
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

//  GET /api/market/clearing-price?market
enum MHD_Result routes_market_clearing_price (gateway_request_t *req)
{
    const char *market = s_market (req);
    if (!market)
        return MHD_YES;
    char key[128];
    enum MHD_Result rc;
    snprintf (key, sizeof key, "clearing/%s", market);
    if (s_cached (req, key, &rc))
        return rc;
    return s_answer_cached (
        req, key, readmodel_clearing_price (gateway_server_readmodel (req->server), market));
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

//  GET /api/market/trades/my-history?limit&offset
enum MHD_Result routes_market_my_trades (gateway_request_t *req)
{
    long long limit, offset;
    if (gateway_query_int (req, "limit", 50, 1, 1000, &limit) ||
        gateway_query_int (req, "offset", 0, 0, 100000000, &offset))
        return MHD_YES;
    return s_answer (req, readmodel_user_trades (gateway_server_readmodel (req->server),
                                                 req->who.user, (int) limit, (int) offset));
}
