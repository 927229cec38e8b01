/*  routes_web — the web dashboard (docs/api.md, The dashboard), and where its page
    finds live data.

    The dashboard is three static files, gateway/web/{index.html,app.js,style.css}, compiled
    into the binary by CMake (mce_embed_text), so the gateway needs no files and no network at
    run time and a deployed page always matches its gateway. They are answered straight from
    the embedded text (no copy), with the API's security headers but a Content-Security-Policy
    of their own: the page may load its own script and style (never inline ones), call this
    origin, and open a WebSocket to the broadcaster, and nothing else.

    GET /api/dashboard/config tells the page the broadcaster's URL (gateway.broadcaster_url)
    and the configured markets, which no other route lists.
*/
#include "decimal.h"
#include "gateway_server.h"

#include <string.h>

//  gateway/web/*, embedded by CMake (gateway/CMakeLists.txt)
extern const char gateway_web_index_html[];
extern const char gateway_web_app_js[];
extern const char gateway_web_style_css[];

typedef struct {
    const char *path;
    const char *content_type;
    const char *text;
} s_asset_t;

static const s_asset_t s_assets[] = {
    {"/", "text/html; charset=utf-8", gateway_web_index_html},
    {"/web/app.js", "text/javascript; charset=utf-8", gateway_web_app_js},
    {"/web/style.css", "text/css; charset=utf-8", gateway_web_style_css},
};

#define S_ASSET_COUNT (sizeof s_assets / sizeof s_assets[0])

//  The broadcaster's URL when it can go into a CSP header as one source expression: ws:// or
//  wss://, printable, and nothing that would end the expression or the directive. Otherwise
//  "" (the page then polls over HTTP): a bad config value must not rewrite the policy.
static const char *s_broadcaster_url (const mce_config_t *cfg)
{
    const char *url = cfg->gateway.broadcaster_url;
    if (strncmp (url, "ws://", 5) != 0 && strncmp (url, "wss://", 6) != 0)
        return "";
    for (const char *p = url; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr (";,'\"", *p))
            return "";
    return url;
}

//  GET /, /web/app.js, /web/style.css
enum MHD_Result routes_web_asset (gateway_request_t *req)
{
    const s_asset_t *asset = NULL;
    for (size_t i = 0; i < S_ASSET_COUNT && !asset; i++)
        if (strcmp (req->url, s_assets[i].path) == 0)
            asset = &s_assets[i];
    if (!asset) //  the route table sent a path this table does not know: a programmer error
        return gateway_fail (req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no asset %s", req->url);
    const char *ws = s_broadcaster_url (gateway_server_config (req->server));
    char csp[CONFIG_STR_MAX + 256];
    snprintf (csp, sizeof csp,
              "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'%s%s; frame-ancestors 'none'; base-uri 'none'; "
              "form-action 'none'",
              *ws ? " " : "", ws);
    //  The embedded text lives as long as the process: libmicrohttpd sends it from there.
    struct MHD_Response *r = MHD_create_response_from_buffer (
        strlen (asset->text), (void *) asset->text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header (r, "Content-Type", asset->content_type);
    //  Revalidate every time: a gateway upgraded under an open tab serves its own page.
    MHD_add_response_header (r, "Cache-Control", "no-cache");
    MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (r, "X-Frame-Options", "DENY");
    MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (r, "Content-Security-Policy", csp);
    req->answered = MHD_HTTP_OK;
    enum MHD_Result rc = MHD_queue_response (req->connection, MHD_HTTP_OK, r);
    MHD_destroy_response (r);
    return rc;
}

static const char *s_mode_name (int mode)
{
    switch (mode) {
        case CONFIG_MODE_AUCTION:
            return "auction";
        case CONFIG_MODE_PAY_AS_BID:
            return "pay_as_bid";
        default:
            return "continuous";
    }
}

//  The grid's tariff as a price string, or null when it does not offer it.
static json_t *s_tariff (int64_t price)
{
    char text[DECIMAL_FORMAT_MAX];
    decimal_format (price, DECIMAL_PRICE_SCALE, text, sizeof text);
    return price > 0 ? json_string (text) : json_null ();
}

//  GET /api/dashboard/config: {broadcaster_url, markets: [{id, mode, epoch_seconds,
//  future_epochs, tick, lot, min_qty, max_qty, escrow, grid_import_price, grid_feed_in_price,
//  grid_user}]}, decimals as strings like everywhere else; escrow says whether an order must
//  be covered by a deposited balance; the grid's tariffs are null where it offers none.
enum MHD_Result routes_web_config (gateway_request_t *req)
{
    const mce_config_t *cfg = gateway_server_config (req->server);
    json_t *markets = json_array ();
    for (int i = 0; markets && i < cfg->market_count; i++) {
        const config_market_t *m = &cfg->markets[i];
        char tick[DECIMAL_FORMAT_MAX], lot[DECIMAL_FORMAT_MAX], min_qty[DECIMAL_FORMAT_MAX],
            max_qty[DECIMAL_FORMAT_MAX];
        decimal_format (m->tick, DECIMAL_PRICE_SCALE, tick, sizeof tick);
        decimal_format (m->lot, DECIMAL_KWH_SCALE, lot, sizeof lot);
        decimal_format (m->min_qty, DECIMAL_KWH_SCALE, min_qty, sizeof min_qty);
        decimal_format (m->max_qty, DECIMAL_KWH_SCALE, max_qty, sizeof max_qty);
        bool grid = m->grid_import_price > 0 || m->grid_feed_in_price > 0;
        json_array_append_new (
            markets,
            json_pack ("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "id", m->id, "mode",
                       s_mode_name (m->mode), "epoch_seconds", (json_int_t) m->epoch_seconds,
                       "future_epochs", (json_int_t) m->future_epochs, "tick", tick, "lot", lot,
                       "min_qty", min_qty, "max_qty", max_qty, "escrow", m->escrow,
                       "grid_import_price", s_tariff (m->grid_import_price), "grid_feed_in_price",
                       s_tariff (m->grid_feed_in_price), "grid_user",
                       grid ? json_string (m->grid_user) : json_null ()));
    }
    json_t *body = markets ? json_pack ("{s:s,s:s,s:o}", "broadcaster_url", s_broadcaster_url (cfg),
                                        "currency", cfg->gateway.currency, "markets", markets)
                           : NULL;
    if (!body)
        return gateway_fail (req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
                             "cannot render the dashboard's config");
    return gateway_respond (req, MHD_HTTP_OK, body);
}
