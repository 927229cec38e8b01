/*  mcectl_admin — an administrator's controls through the gateway, and `health`.

    The control actions are the matcher's own (proto_control_action_name), so an action added
    to proto/messages.def is a command here without a change; each may be given by its wire
    name (pause_trading) or its first word (pause).

    `health` asks every process that can be asked: the gateway's /api/health, and each
    process's Prometheus endpoint on its configured metrics_port. The host is the one in the
    process's own endpoint in the config (matcher.bus, settler.bus, broadcaster.xpub: where
    the others reach it, `matcher` in compose), else metrics_address (0.0.0.0 meaning this
    machine); the persister has no endpoint, so it is metrics_address or --hosts. A process
    with metrics_port = 0 cannot be asked and is shown "off", not down. A settler with failed
    settlements is "degraded": they need a person (RUNBOOK.md).
    The figures are the metrics' text as the process wrote it, never converted through a
    double.
*/
#include "mcectl.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

#define S_PATH_MAX 1024

//  "up" or "down" for a boolean member ("?" when it is not one).
static const char *s_updown (json_t *object, const char *key)
{
    json_t *v = json_object_get (object, key);
    return !json_is_boolean (v) ? "?" : json_is_true (v) ? "up" : "down";
}

void mcectl_admin_actions_help (FILE *out, bool detailed)
{
    for (int i = 1; proto_control_action_name (i); i++) {
        const char *name = proto_control_action_name (i);
        int word = (int) strcspn (name, "_");
        if (detailed)
            fprintf (out, "  %-10.*s %s\n", word, name, name);
        else
            fprintf (out, "%s%.*s", i > 1 ? ", " : "", word, name);
    }
}

//  The wire name of the action the user named, or NULL.
static const char *s_action (const char *text)
{
    for (int i = 1; proto_control_action_name (i); i++) {
        const char *name = proto_control_action_name (i);
        size_t word = strcspn (name, "_");
        if (strcmp (text, name) == 0 || (strlen (text) == word && strncmp (text, name, word) == 0))
            return name;
    }
    return NULL;
}

static int s_control (mcectl_client_t *client, const char *what, const char *action, int argc,
                      char **argv)
{
    const char *market = NULL, *word = NULL;
    const mcectl_option_t options[] = {{"--market", &market, NULL}, {NULL, NULL, NULL}};
    int n = mcectl_parse ("admin", argc, argv, options, &word, 1);
    if (n < 0)
        return MCECTL_EXIT_USAGE;
    if (n == 1 && market) {
        fprintf (stderr, "mcectl admin %s: give the market once\n", what);
        return MCECTL_EXIT_USAGE;
    }
    market = n == 1 ? word : market;
    if (!market) {
        //  no default here: pausing the wrong market is worse than typing its name
        fprintf (stderr, "mcectl admin %s: name the market (mcectl admin %s MARKET)\n", what, what);
        return MCECTL_EXIT_USAGE;
    }
    json_t *body = json_pack ("{s:s,s:s}", "market", market, "action", action), *reply;
    if (!body) {
        fprintf (stderr, "mcectl admin %s: the market's name is not UTF-8 text\n", what);
        return MCECTL_EXIT_USAGE;
    }
    int rc = mcectl_client_call (client, "POST", "/api/admin/market/control", body, true, &reply);
    json_decref (body);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (reply);
    else {
        //  the seq of the command on the bus; a snapshot is not one (0)
        char status[32], seq[32];
        json_int_t at = json_integer_value (json_object_get (reply, "seq"));
        snprintf (seq, sizeof seq, " (seq %lld)", (long long) at);
        printf ("%s: %s %s%s\n", market, action,
                mcectl_cell (reply, "status", status, sizeof status), at ? seq : "");
    }
    json_decref (reply);
    return MCECTL_EXIT_OK;
}

static const mcectl_column_t s_settlement_columns[] = {
    {"ID", "settlement_id", true},  {"TRADE", "trade_id", true}, {"MARKET", "market", false},
    {"EPOCH", "epoch", true},       {"STATE", "state", false},   {"TRIES", "attempts", true},
    {"KWH", "energy_amount", true}, {"PRICE", "price", true},    {"VALUE", "value", true},
    {"ERROR", "error", false},      {NULL, NULL, false}};

static int s_settlements (mcectl_client_t *client, int argc, char **argv)
{
    const char *state = NULL, *status = NULL, *after = NULL, *limit = NULL;
    const mcectl_option_t options[] = {{"--state", &state, NULL},
                                       {"--status", &status, NULL},
                                       {"--after", &after, NULL},
                                       {"--limit", &limit, NULL},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse ("admin settlements", argc, argv, options, NULL, 0) < 0 ||
        (after && !mcectl_check_digits ("--after", after)) ||
        (limit && !mcectl_check_digits ("--limit", limit)))
        return MCECTL_EXIT_USAGE;
    char path[S_PATH_MAX] = "/api/admin/settlements";
    if (mcectl_query (path, sizeof path, "admin settlements",
                      (const char *[]){"state", state ? state : status, "after", after, "limit",
                                       limit, NULL}))
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", path, NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        mcectl_table (stdout, json_object_get (answer, "settlements"), s_settlement_columns);
        const char *next = json_string_value (json_object_get (answer, "next_after"));
        if (json_is_true (json_object_get (answer, "more")) && next)
            printf ("more: mcectl admin settlements --after %s\n", next);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

static int s_retry (mcectl_client_t *client, int argc, char **argv)
{
    const mcectl_option_t options[] = {{NULL, NULL, NULL}};
    const char *id = NULL;
    if (mcectl_parse ("admin retry", argc, argv, options, &id, 1) != 1) {
        fprintf (stderr, "mcectl admin retry: give the settlement's id\n");
        return MCECTL_EXIT_USAGE;
    }
    if (!mcectl_check_digits ("settlement id", id))
        return MCECTL_EXIT_USAGE;
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "/api/admin/settlements/%s/retry", id);
    json_t *reply;
    int rc = mcectl_client_call (client, "POST", path, NULL, true, &reply);
    return rc ? rc
              : mcectl_print_record (client, reply, "settlement", id, "settlement_id", "state");
}

//  GETs path (admin) and prints the answer's members, or the JSON.
static int s_show (mcectl_client_t *client, const char *path, const char *title)
{
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", path, NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        printf ("%s\n", title);
        mcectl_print_members (stdout, answer, NULL);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

static int s_analytics (mcectl_client_t *client, int argc, char **argv)
{
    const char *market = NULL, *timeframe = NULL;
    const mcectl_option_t options[] = {
        {"--market", &market, NULL}, {"--timeframe", &timeframe, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("admin analytics", argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    char path[S_PATH_MAX] = "/api/admin/market/analytics";
    if (mcectl_query (path, sizeof path, "admin analytics",
                      (const char *[]){"market", market, "timeframe", timeframe, NULL}))
        return MCECTL_EXIT_USAGE;
    return s_show (client, path, "epochs cleared in the window:");
}

static int s_admin_health (mcectl_client_t *client, int argc, char **argv)
{
    const mcectl_option_t options[] = {{NULL, NULL, NULL}};
    if (mcectl_parse ("admin health", argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", "/api/admin/market/health", NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        json_t *matcher = json_object_get (answer, "matcher");
        char endpoint[128], in_flight[32], timeouts[32], seq[32], jobs[32];
        printf ("matcher   %s, %s commands in flight, %s timed out\n",
                mcectl_cell (matcher, "endpoint", endpoint, sizeof endpoint),
                mcectl_cell (matcher, "in_flight", in_flight, sizeof in_flight),
                mcectl_cell (matcher, "timeouts", timeouts, sizeof timeouts));
        printf ("bus       seq %s\n",
                mcectl_cell (json_object_get (answer, "bus"), "seq", seq, sizeof seq));
        json_t *db = json_object_get (answer, "database");
        printf ("database  %s, %s jobs waiting\n", s_updown (db, "up"),
                mcectl_cell (db, "jobs", jobs, sizeof jobs));
        static const mcectl_column_t columns[] = {{"MARKET", "market", false},
                                                  {"STATUS", "market_status", false},
                                                  {"EPOCH", "epoch", true},
                                                  {"STATE", "state", false},
                                                  {"ENDS (UTC)", "end", false},
                                                  {"LAST CLEARED", "last_cleared_epoch", true},
                                                  {"AT", "last_clearing_price", true},
                                                  {NULL, NULL, false}};
        mcectl_table (stdout, json_object_get (answer, "markets"), columns);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

int mcectl_admin (mcectl_client_t *client, int argc, char **argv)
{
    if (argc < 1) {
        fprintf (stderr, "mcectl admin: what? (mcectl admin --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    const char *what = argv[0];
    if (strcmp (what, "settlements") == 0)
        return s_settlements (client, argc - 1, argv + 1);
    if (strcmp (what, "retry") == 0)
        return s_retry (client, argc - 1, argv + 1);
    if (strcmp (what, "analytics") == 0)
        return s_analytics (client, argc - 1, argv + 1);
    if (strcmp (what, "health") == 0)
        return s_admin_health (client, argc - 1, argv + 1);
    const char *action = s_action (what);
    if (action)
        return s_control (client, what, action, argc - 1, argv + 1);
    fprintf (stderr, "mcectl admin: unknown \"%s\"; actions are ", what);
    mcectl_admin_actions_help (stderr, false);
    fprintf (stderr, "; or settlements, retry, analytics, health (mcectl admin --help)\n");
    return MCECTL_EXIT_USAGE;
}

//  ---------------------------------------------------------------------------------------
//  health

//  The value of one series (name with its labels, as written) in Prometheus text, as JSON:
//  an integer when it is one, else the text. NULL when the series is absent.
static json_t *s_metric (const char *text, const char *series)
{
    size_t n = strlen (series);
    for (const char *line = text; line && *line;
         line = strchr (line, '\n'), line = line ? line + 1 : NULL) {
        if (line[0] == '#' || strncmp (line, series, n) != 0 || line[n] != ' ')
            continue;
        const char *value = line + n + 1;
        size_t len = strcspn (value, " \r\n");
        char buf[64];
        snprintf (buf, sizeof buf, "%.*s", (int) (len < sizeof buf ? len : sizeof buf - 1), value);
        char *end;
        long long v = strtoll (buf, &end, 10);
        return buf[0] && !*end ? json_integer (v) : json_string (buf);
    }
    return NULL;
}

typedef struct {
    const char *name;
    int64_t port;
    const char *endpoint;      //  one it binds, "tcp://host:port", for its host; may be NULL
    const char *figures[5][2]; //  {label, series}
    const char *degraded;      //  a series that must be 0, or the process is degraded
} s_process_t;

//  The host p's metrics are asked on: --hosts NAME=HOST, else its endpoint's host unless that
//  is a wildcard, else metrics_address (0.0.0.0: this machine).
static void s_metrics_host (mcectl_client_t *client, const s_process_t *p, const char *hosts,
                            char *host, size_t size)
{
    size_t n = strlen (p->name);
    for (const char *h = hosts; h && *h; h = strchr (h, ','), h = h ? h + 1 : NULL)
        if (strncmp (h, p->name, n) == 0 && h[n] == '=') {
            snprintf (host, size, "%.*s", (int) strcspn (h + n + 1, ","), h + n + 1);
            return;
        }
    const char *e = p->endpoint && strncmp (p->endpoint, "tcp://", 6) == 0 ? p->endpoint + 6 : "";
    const char *colon = strrchr (e, ':');
    size_t len = colon ? (size_t) (colon - e) : 0;
    if (len && !(len == 1 && e[0] == '*') && strncmp (e, "0.0.0.0:", 8) != 0) {
        snprintf (host, size, "%.*s", (int) len, e);
        return;
    }
    const char *address = mcectl_client_config (client)->metrics_address;
    snprintf (host, size, "%s", strcmp (address, "0.0.0.0") == 0 ? "127.0.0.1" : address);
}

//  One process's metrics endpoint: its entry for --json, its line for people. true if up.
static bool s_probe (mcectl_client_t *client, const s_process_t *p, const char *hosts, json_t *list)
{
    json_t *entry = json_pack ("{s:s}", "name", p->name);
    json_array_append_new (list, entry);
    if (p->port == 0) {
        json_object_set_new (entry, "state", json_string ("off"));
        if (!mcectl_client_options (client)->json)
            printf ("%-12s %-9s metrics_port = 0: cannot be asked\n", p->name, "off");
        return true;
    }
    char host[256], url[320], err[256];
    s_metrics_host (client, p, hosts, host, sizeof host);
    snprintf (url, sizeof url, "http://%s:%lld/metrics", host, (long long) p->port);
    json_object_set_new (entry, "url", json_string (url));
    long status = 0;
    char *text = NULL;
    if (mcectl_client_get (client, url, MCECTL_HEALTH_TIMEOUT_MS, &status, &text, err,
                           sizeof err) == 0 &&
        status != 200)
        snprintf (err, sizeof err, "HTTP %ld", status);
    bool up = text && status == 200;
    json_object_set_new (entry, "state", json_string (up ? "up" : "down"));
    if (!up) {
        json_object_set_new (entry, "error", json_string (err));
        if (!mcectl_client_options (client)->json)
            printf ("%-12s %-9s %s: %s\n", p->name, "down", url, err);
        free (text);
        return false;
    }
    json_t *metrics = json_object ();
    json_object_set_new (entry, "metrics", metrics);
    char line[512] = "";
    for (int i = 0; i < 5 && p->figures[i][0]; i++) {
        json_t *value = s_metric (text, p->figures[i][1]);
        char cell[64];
        json_t *holder = json_pack ("{s:O?}", "v", value);
        size_t used = strlen (line);
        snprintf (line + used, sizeof line - used, "%s%s %s", used ? ", " : "", p->figures[i][0],
                  mcectl_cell (holder, "v", cell, sizeof cell));
        json_decref (holder);
        if (value)
            json_object_set_new (metrics, p->figures[i][1], value);
    }
    json_t *bad = p->degraded ? s_metric (text, p->degraded) : NULL;
    bool degraded = bad && !(json_is_integer (bad) && json_integer_value (bad) == 0);
    json_decref (bad);
    if (degraded)
        json_object_set_new (entry, "state", json_string ("degraded"));
    if (!mcectl_client_options (client)->json)
        printf ("%-12s %-9s %s\n", p->name, degraded ? "degraded" : "up", line);
    free (text);
    return !degraded;
}

//  The gateway's /api/health. true when it answered and says "ok".
static bool s_probe_gateway (mcectl_client_t *client, json_t *list)
{
    char url[512], err[256];
    snprintf (url, sizeof url, "%s/api/health", mcectl_client_url (client));
    long status = 0;
    char *text = NULL;
    json_t *health = NULL;
    if (mcectl_client_get (client, url, MCECTL_HEALTH_TIMEOUT_MS, &status, &text, err,
                           sizeof err) == 0) {
        health = status == 200 ? json_loads (text, 0, NULL) : NULL;
        if (!health)
            snprintf (err, sizeof err, "HTTP %ld, %s", status,
                      status == 200 ? "not JSON" : "not the health answer");
    }
    free (text);
    const char *says = json_string_value (json_object_get (health, "status"));
    const char *state = !health ? "down" : says && strcmp (says, "ok") == 0 ? "up" : "degraded";
    json_t *entry = json_pack ("{s:s,s:s,s:s}", "name", "gateway", "state", state, "url", url);
    json_array_append_new (list, entry);
    if (!health) {
        json_object_set_new (entry, "error", json_string (err));
        if (!mcectl_client_options (client)->json)
            printf ("%-12s %-9s %s: %s\n", "gateway", state, url, err);
        return false;
    }
    if (!mcectl_client_options (client)->json) {
        json_t *bus = json_object_get (health, "bus"), *redis = json_object_get (health, "redis");
        char seq[32], head[32];
        bool redis_on = json_is_true (json_object_get (redis, "configured"));
        printf ("%-12s %-9s matcher %s, bus %s of %s, postgres %s, redis %s\n", "gateway", state,
                s_updown (json_object_get (health, "matcher"), "up"),
                mcectl_cell (bus, "seq", seq, sizeof seq),
                mcectl_cell (bus, "head", head, sizeof head),
                s_updown (json_object_get (health, "postgres"), "up"),
                redis_on ? s_updown (redis, "up") : "off");
    }
    json_object_set_new (entry, "health", health);
    return strcmp (state, "up") == 0;
}

int mcectl_health (mcectl_client_t *client, int argc, char **argv)
{
    const char *hosts = NULL;
    const mcectl_option_t options[] = {{"--hosts", &hosts, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("health", argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    const mce_config_t *cfg = mcectl_client_config (client);
    const s_process_t processes[] = {
        {"matcher",
         cfg->matcher.metrics_port,
         cfg->matcher.bus.pub,
         {{"seq", "mce_matcher_last_seq"},
          {"resting", "mce_matcher_resting_orders"},
          {"trades", "mce_matcher_trades_total"}},
         NULL},
        {"settler",
         cfg->settler.metrics_port,
         cfg->settler.bus.pub,
         {{"pending", "mce_settler_settlements{state=\"pending\"}"},
          {"failed", "mce_settler_settlements{state=\"failed\"}"},
          {"ledger up", "mce_settler_ledger_up"},
          {"lag", "mce_settler_lag_events"}},
         "mce_settler_settlements{state=\"failed\"}"},
        {"persister",
         cfg->persister.metrics_port,
         NULL,
         {{"seq", "mce_persister_applied_seq"},
          {"lag", "mce_persister_lag_events"},
          {"postgres up", "mce_persister_postgres_up"}},
         NULL},
        {"broadcaster",
         cfg->broadcaster.metrics_port,
         cfg->broadcaster.xpub,
         {{"seq", "mce_broadcaster_bus_seq{stream=\"m\"}"},
          {"sessions", "mce_broadcaster_sessions"}},
         NULL},
    };
    json_t *list = json_array ();
    bool ok = s_probe_gateway (client, list);
    for (size_t i = 0; i < sizeof processes / sizeof processes[0]; i++)
        ok = s_probe (client, &processes[i], hosts, list) && ok;
    if (mcectl_client_options (client)->json) {
        json_t *root = json_pack ("{s:b,s:o}", "ok", ok, "processes", list);
        mcectl_print_json (root);
        json_decref (root);
    }
    else
        json_decref (list);
    return ok ? MCECTL_EXIT_OK : MCECTL_EXIT_FAILED;
}
