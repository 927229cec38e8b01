/*  mcectl_trade — a user's orders and the market's trades and book, through the gateway.

    Each command is one request: the options become the API's fields as they are
    (gateway/order_parse.c says what they mean), amounts and prices stay the user's decimal
    strings, checked here with decimal.h only so that a typo is a usage error before anything
    is sent. Every business rule (ticks, lots, bands, paused markets, ownership) is the
    gateway's and the matcher's to apply: their refusal is printed as they word it.
*/
#include "mcectl.h"
#include "decimal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_PATH_MAX 1024

//  The answer to a write (place, cancel, amend): the order's state after it.
static void s_print_ack (json_t *ack)
{
    char id[64], status[32], epoch[32], filled[32], left[32];
    printf ("order %s: %s, epoch %s, filled %s kWh, remaining %s kWh\n",
            mcectl_cell (ack, "order_id", id, sizeof id),
            mcectl_cell (ack, "status", status, sizeof status),
            mcectl_cell (ack, "epoch", epoch, sizeof epoch),
            mcectl_cell (ack, "filled_amount", filled, sizeof filled),
            mcectl_cell (ack, "remaining_amount", left, sizeof left));
}

//  Sends one order write and prints its answer.
static int s_write (mcectl_client_t *client, const char *method, const char *path, json_t *body)
{
    json_t *reply;
    int rc = mcectl_client_call (client, method, path, body, true, &reply);
    json_decref (body);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (reply);
    else
        s_print_ack (reply);
    json_decref (reply);
    return MCECTL_EXIT_OK;
}

//  One of a few words, case-insensitive, as the API spells it; NULL after a usage message.
static const char *s_choice (const char *option, const char *text, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcasecmp (text, names[i]) == 0)
            return names[i];
    fprintf (stderr, "mcectl: %s \"%s\": must be one of", option, text);
    for (int i = 0; names[i]; i++)
        fprintf (stderr, "%s %s", i ? "," : "", names[i]);
    fprintf (stderr, "\n");
    return NULL;
}

//  /api/trading/orders/ID, after checking that ID is one.
static bool s_order_path (const char *id, char *path, size_t size)
{
    if (!mcectl_check_digits ("order id", id))
        return false;
    snprintf (path, size, "/api/trading/orders/%s", id);
    return true;
}

//  The order id that is command's only word, and its path. false after saying what is wrong.
static bool s_order_word (const char *command, int argc, char **argv, const char **id, char *path,
                          size_t size)
{
    const mcectl_option_t options[] = {{NULL, NULL, NULL}};
    if (mcectl_parse (command, argc, argv, options, id, 1) != 1) {
        fprintf (stderr, "mcectl %s: give the order's id\n", command);
        return false;
    }
    return s_order_path (*id, path, size);
}

int mcectl_order_place (mcectl_client_t *client, int argc, char **argv)
{
    const char *side = NULL, *qty = NULL, *price = NULL, *market = NULL, *epoch = NULL;
    const char *type = NULL, *tif = NULL, *client_id = NULL, *expires = NULL, *delivery = NULL;
    const char *source = NULL;
    bool post_only = false;
    const mcectl_option_t options[] = {{"--side", &side, NULL},
                                       {"--qty", &qty, NULL},
                                       {"--price", &price, NULL},
                                       {"--market", &market, NULL},
                                       {"--epoch", &epoch, NULL},
                                       {"--type", &type, NULL},
                                       {"--tif", &tif, NULL},
                                       {"--post-only", NULL, &post_only},
                                       {"--client-id", &client_id, NULL},
                                       {"--expires", &expires, NULL},
                                       {"--delivery", &delivery, NULL},
                                       {"--source", &source, NULL},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse ("order place", argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    static const char *const sides[] = {"Buy", "Sell", NULL};
    static const char *const types[] = {"Limit", "Market", NULL};
    static const char *const tifs[] = {"GTC", "IOC", "FOK", NULL};
    if (!side || !qty) {
        fprintf (stderr, "mcectl order place: --side buy|sell and --qty KWH are required "
                         "(mcectl order place --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    if (!(side = s_choice ("--side", side, sides)) ||
        (type && !(type = s_choice ("--type", type, types))) ||
        (tif && !(tif = s_choice ("--tif", tif, tifs))) ||
        !mcectl_check_decimal ("--qty", qty, DECIMAL_KWH_SCALE) ||
        (price && !mcectl_check_decimal ("--price", price, DECIMAL_PRICE_SCALE)) ||
        (epoch && !mcectl_check_digits ("--epoch", epoch)))
        return MCECTL_EXIT_USAGE;
    if (!price && !(type && strcmp (type, "Market") == 0)) {
        fprintf (stderr, "mcectl order place: a limit order needs --price P (or --type market)\n");
        return MCECTL_EXIT_USAGE;
    }
    json_t *body = json_object ();
    json_object_set_new (body, "side", json_string (side));
    if (type)
        json_object_set_new (body, "order_type", json_string (type));
    if (tif)
        json_object_set_new (body, "time_in_force", json_string (tif));
    json_object_set_new (body, "energy_amount", json_string (qty));
    if (price)
        json_object_set_new (body, "price", json_string (price));
    if (epoch)
        json_object_set_new (body, "epoch", json_integer (strtoll (epoch, NULL, 10)));
    if (post_only)
        json_object_set_new (body, "post_only", json_true ());
    //  Text the gateway checks (length, characters, RFC 3339): passed as given, if it can be
    //  JSON at all (jansson refuses what is not UTF-8)
    const char *texts[][3] = {
        {"market", "--market", market ? market : mcectl_client_config (client)->markets[0].id},
        {"client_order_id", "--client-id", client_id},
        {"expires_at", "--expires", expires},
        {"delivery_time", "--delivery", delivery},
        {"energy_source", "--source", source}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i][2] && json_object_set_new (body, texts[i][0], json_string (texts[i][2]))) {
            fprintf (stderr, "mcectl order place: %s is not UTF-8 text\n", texts[i][1]);
            json_decref (body);
            return MCECTL_EXIT_USAGE;
        }
    return s_write (client, "POST", "/api/trading/orders", body);
}

int mcectl_order_cancel (mcectl_client_t *client, int argc, char **argv)
{
    const char *id = NULL;
    char path[S_PATH_MAX];
    if (!s_order_word ("order cancel", argc, argv, &id, path, sizeof path))
        return MCECTL_EXIT_USAGE;
    return s_write (client, "DELETE", path, NULL);
}

int mcectl_order_amend (mcectl_client_t *client, int argc, char **argv)
{
    const char *id = NULL, *qty = NULL, *price = NULL;
    const mcectl_option_t options[] = {
        {"--qty", &qty, NULL}, {"--price", &price, NULL}, {NULL, NULL, NULL}};
    char path[S_PATH_MAX];
    if (mcectl_parse ("order amend", argc, argv, options, &id, 1) != 1 || (!qty && !price)) {
        fprintf (stderr, "mcectl order amend: give the order's id and --qty KWH, --price P or "
                         "both\n");
        return MCECTL_EXIT_USAGE;
    }
    if (!s_order_path (id, path, sizeof path) ||
        (qty && !mcectl_check_decimal ("--qty", qty, DECIMAL_KWH_SCALE)) ||
        (price && !mcectl_check_decimal ("--price", price, DECIMAL_PRICE_SCALE)))
        return MCECTL_EXIT_USAGE;
    json_t *body = json_object ();
    if (qty)
        json_object_set_new (body, "energy_amount", json_string (qty));
    if (price)
        json_object_set_new (body, "price", json_string (price));
    return s_write (client, "PATCH", path, body);
}

int mcectl_order_show (mcectl_client_t *client, int argc, char **argv)
{
    const char *id = NULL;
    char path[S_PATH_MAX];
    if (!s_order_word ("order show", argc, argv, &id, path, sizeof path))
        return MCECTL_EXIT_USAGE;
    json_t *order;
    int rc = mcectl_client_call (client, "GET", path, NULL, true, &order);
    return rc ? rc : mcectl_print_record (client, order, "order", id, "order_id", "status");
}

//  "shown N of TOTAL" under a list that is a page of a longer one.
static void s_print_page (json_t *answer, const char *what)
{
    json_int_t total = json_integer_value (json_object_get (answer, "total"));
    json_int_t offset = json_integer_value (json_object_get (answer, "offset"));
    size_t shown = json_array_size (json_object_get (answer, what));
    if (shown && (json_int_t) shown < total)
        printf ("%s %lld to %lld of %lld (--offset, --limit for more)\n", what,
                (long long) offset + 1, (long long) offset + (long long) shown, (long long) total);
}

int mcectl_orders (mcectl_client_t *client, int argc, char **argv)
{
    const char *status = NULL, *market = NULL, *epoch = NULL, *limit = NULL, *offset = NULL;
    const mcectl_option_t options[] = {{"--status", &status, NULL}, {"--market", &market, NULL},
                                       {"--epoch", &epoch, NULL},   {"--limit", &limit, NULL},
                                       {"--offset", &offset, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("orders", argc, argv, options, NULL, 0) < 0 ||
        (epoch && !mcectl_check_digits ("--epoch", epoch)) ||
        (limit && !mcectl_check_digits ("--limit", limit)) ||
        (offset && !mcectl_check_digits ("--offset", offset)))
        return MCECTL_EXIT_USAGE;
    char path[S_PATH_MAX] = "/api/trading/orders";
    if (mcectl_query (path, sizeof path, "orders",
                      (const char *[]){"status", status, "market", market, "epoch", epoch, "limit",
                                       limit, "offset", offset, NULL}))
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", path, NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        static const mcectl_column_t columns[] = {{"ID", "order_id", true},
                                                  {"MARKET", "market", false},
                                                  {"EPOCH", "epoch", true},
                                                  {"DELIVERY (UTC)", "delivery_start", false},
                                                  {"SIDE", "side", false},
                                                  {"TYPE", "order_type", false},
                                                  {"TIF", "time_in_force", false},
                                                  {"KWH", "energy_amount", true},
                                                  {"PRICE", "price", true},
                                                  {"FILLED", "filled_amount", true},
                                                  {"LEFT", "remaining_amount", true},
                                                  {"STATUS", "status", false},
                                                  {"WHY", "end_reason", false},
                                                  {"CREATED (UTC)", "created_at", false},
                                                  {NULL, NULL, false}};
        mcectl_table (stdout, json_object_get (answer, "orders"), columns);
        s_print_page (answer, "orders");
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

int mcectl_trades (mcectl_client_t *client, int argc, char **argv)
{
    const char *market = NULL, *limit = NULL, *offset = NULL;
    bool mine = false;
    const mcectl_option_t options[] = {{"--market", &market, NULL},
                                       {"--mine", NULL, &mine},
                                       {"--limit", &limit, NULL},
                                       {"--offset", &offset, NULL},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse ("trades", argc, argv, options, NULL, 0) < 0 ||
        (limit && !mcectl_check_digits ("--limit", limit)) ||
        (offset && !mcectl_check_digits ("--offset", offset)))
        return MCECTL_EXIT_USAGE;
    if (mine && market) {
        fprintf (stderr, "mcectl trades: --mine covers every market (the history has no market "
                         "filter); leave out --market\n");
        return MCECTL_EXIT_USAGE;
    }
    if (!mine && offset) {
        fprintf (stderr, "mcectl trades: --offset pages through --mine only\n");
        return MCECTL_EXIT_USAGE;
    }
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "%s",
              mine ? "/api/market/trades/my-history" : "/api/market/trades");
    if (mcectl_query (path, sizeof path, "trades",
                      (const char *[]){"market", market, "limit", limit, "offset", offset, NULL}))
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", path, NULL, mine, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else if (mine) {
        //  with what paid it: the order, the settlement's state and its transaction
        static const mcectl_column_t columns[] = {{"TRADE", "trade_id", true},
                                                  {"ORDER", "order_id", true},
                                                  {"MARKET", "market", false},
                                                  {"EPOCH", "epoch", true},
                                                  {"DELIVERY (UTC)", "delivery_start", false},
                                                  {"SIDE", "side", false},
                                                  {"PRICE", "price", true},
                                                  {"KWH", "energy_amount", true},
                                                  {"VALUE", "value", true},
                                                  {"TIME (UTC)", "time", false},
                                                  {"SETTLEMENT", "settlement_status", false},
                                                  {"SIGNATURE", "signature", false},
                                                  {NULL, NULL, false}};
        mcectl_table (stdout, json_object_get (answer, "trades"), columns);
        s_print_page (answer, "trades");
    }
    else {
        static const mcectl_column_t columns[] = {{"TRADE", "trade_id", true},
                                                  {"EPOCH", "epoch", true},
                                                  {"DELIVERY (UTC)", "delivery_start", false},
                                                  {"PRICE", "price", true},
                                                  {"KWH", "energy_amount", true},
                                                  {"VALUE", "value", true},
                                                  {"AGGRESSOR", "aggressor", false},
                                                  {"TIME (UTC)", "time", false},
                                                  {NULL, NULL, false}};
        char name[64];
        printf ("%s: the latest trades, newest first\n",
                mcectl_cell (answer, "market", name, sizeof name));
        mcectl_table (stdout, json_object_get (answer, "trades"), columns);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

int mcectl_book (mcectl_client_t *client, int argc, char **argv)
{
    const char *market = NULL, *epoch = NULL, *levels = NULL;
    const mcectl_option_t options[] = {{"--market", &market, NULL},
                                       {"--epoch", &epoch, NULL},
                                       {"--levels", &levels, NULL},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse ("book", argc, argv, options, NULL, 0) < 0 ||
        (epoch && !mcectl_check_digits ("--epoch", epoch)) ||
        (levels && !mcectl_check_digits ("--levels", levels)))
        return MCECTL_EXIT_USAGE;
    char path[S_PATH_MAX] = "/api/market/depth";
    if (mcectl_query (path, sizeof path, "book",
                      (const char *[]){"market", market, "epoch", epoch, "levels", levels, NULL}))
        return MCECTL_EXIT_USAGE;
    json_t *depth;
    int rc = mcectl_client_call (client, "GET", path, NULL, false, &depth);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json) {
        mcectl_print_json (depth);
        json_decref (depth);
        return MCECTL_EXIT_OK;
    }
    //  One ladder: asks from the highest down to the best, then bids from the best down, so
    //  the spread is in the middle.
    json_t *ladder = json_array ();
    json_t *asks = json_object_get (depth, "asks"), *bids = json_object_get (depth, "bids");
    for (size_t i = json_array_size (asks); i > 0; i--) {
        json_t *row = json_deep_copy (json_array_get (asks, i - 1));
        json_object_set_new (row, "side", json_string ("ask"));
        json_array_append_new (ladder, row);
    }
    for (size_t i = 0; i < json_array_size (bids); i++) {
        json_t *row = json_deep_copy (json_array_get (bids, i));
        json_object_set_new (row, "side", json_string ("bid"));
        json_array_append_new (ladder, row);
    }
    char name[64], number[32], seq[32];
    printf ("%s epoch %s (bus seq %s)\n", mcectl_cell (depth, "market", name, sizeof name),
            mcectl_cell (depth, "epoch", number, sizeof number),
            mcectl_cell (depth, "seq", seq, sizeof seq));
    static const mcectl_column_t columns[] = {{"SIDE", "side", false},
                                              {"PRICE", "price", true},
                                              {"KWH", "energy_amount", true},
                                              {"ORDERS", "orders", true},
                                              {NULL, NULL, false}};
    mcectl_table (stdout, ladder, columns);
    json_decref (ladder);
    json_decref (depth);
    return MCECTL_EXIT_OK;
}
