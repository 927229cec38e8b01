/*  mcectl_account — a user's balances, deposits and withdrawals (/api/account), and the
    operator's `reconcile`.

    `reconcile` holds the escrow against the chain (docs/clearing.md, Accounts and escrow): for
    each mint, the vault's balance on chain must equal what the platform owes from it (what
    that is: common/reconcile.h, shared with the gateway's reconciliation for the dashboard).

    It reads the persister's tables (postgres.url) and asks the ledger (settler.rpc_url) with
    getTokenAccountBalance; the vaults are those the settler's keys file names (its "vaults"
    object, as the local ledger writes it) unless --vault-energy / --vault-payment say. The
    tables follow the buses, so the two sides agree exactly only with nothing in flight: it
    says how much is, and exits 1 on any difference.
*/
#include "mcectl.h"
#include "decimal.h"
#include "pg.h"
#include "reconcile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_PATH_MAX 1024

//  --asset and --amount, checked: the amount in kWh for energy, currency units for payment;
//  --wait in *wait.
static int s_transfer_body (const char *command, int argc, char **argv, json_t **body, bool *wait)
{
    const char *asset = NULL, *amount = NULL;
    const mcectl_option_t options[] = {{"--asset", &asset, NULL},
                                       {"--amount", &amount, NULL},
                                       {"--wait", NULL, wait},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse (command, argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    if (!asset || !amount || (strcmp (asset, "energy") != 0 && strcmp (asset, "payment") != 0)) {
        fprintf (stderr, "mcectl %s: give --asset energy|payment and --amount (mcectl %s --help)\n",
                 command, command);
        return MCECTL_EXIT_USAGE;
    }
    bool energy = strcmp (asset, "energy") == 0;
    if (!mcectl_check_decimal ("--amount", amount,
                               energy ? DECIMAL_KWH_SCALE : DECIMAL_PRICE_SCALE))
        return MCECTL_EXIT_USAGE;
    *body = json_pack ("{s:s,s:s}", "asset", asset, "amount", amount);
    return MCECTL_EXIT_OK;
}

int mcectl_balances (mcectl_client_t *client, int argc, char **argv)
{
    if (mcectl_parse ("balances", argc, argv, (mcectl_option_t[]){{NULL, NULL, NULL}}, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", "/api/account/balances", NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        json_t *rows = json_array ();
        const char *asset;
        json_t *b;
        json_object_foreach (json_object_get (answer, "balances"), asset, b)
        {
            json_t *row = json_deep_copy (b);
            json_object_set_new (row, "asset", json_string (asset));
            json_array_append_new (rows, row);
        }
        static const mcectl_column_t columns[] = {{"ASSET", "asset", false},
                                                  {"AVAILABLE", "available", true},
                                                  {"RESERVED", "reserved", true},
                                                  {"TOTAL", "total", true},
                                                  {NULL, NULL, false}};
        mcectl_table (stdout, rows, columns);
        json_decref (rows);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

#define S_WAIT_MS      120000 //  --wait: how long a transfer may take to be final
#define S_WAIT_POLL_MS 200

//  --wait: reads the list at path until the transfer id (id_key) has one of the final
//  statuses, at most S_WAIT_MS; its row then replaces *answer. 0, or an exit status.
static int s_wait (mcectl_client_t *client, const char *path, const char *list_key,
                   const char *id_key, const char *const final[2], json_t **answer)
{
    const char *id = json_string_value (json_object_get (*answer, id_key));
    char query[S_PATH_MAX];
    snprintf (query, sizeof query, "%s?limit=50", path);
    for (int waited = 0; waited <= S_WAIT_MS; waited += S_WAIT_POLL_MS) {
        json_t *list;
        int rc = mcectl_client_call (client, "GET", query, NULL, true, &list);
        if (rc)
            return rc;
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get (list, list_key), i, row)
        {
            const char *status = json_string_value (json_object_get (row, "status"));
            if (id && status &&
                strcmp (json_string_value (json_object_get (row, id_key)), id) == 0 &&
                (strcmp (status, final[0]) == 0 || strcmp (status, final[1]) == 0)) {
                json_decref (*answer);
                *answer = json_incref (row);
                json_decref (list);
                return MCECTL_EXIT_OK;
            }
        }
        json_decref (list);
        struct timespec pause = {0, S_WAIT_POLL_MS * 1000000L};
        nanosleep (&pause, NULL);
    }
    fprintf (stderr, "mcectl: %s %s is not %s or %s after %d s\n", id_key, id ? id : "?", final[0],
             final[1], S_WAIT_MS / 1000);
    return MCECTL_EXIT_FAILED;
}

static int s_post (mcectl_client_t *client, const char *command, const char *path, const char *what,
                   const char *list_key, const char *id_key, const char *const final[2], int argc,
                   char **argv)
{
    json_t *body = NULL, *answer = NULL;
    bool wait = false;
    int rc = s_transfer_body (command, argc, argv, &body, &wait);
    if (rc)
        return rc;
    rc = mcectl_client_call (client, "POST", path, body, true, &answer);
    json_decref (body);
    if (!rc && wait)
        rc = s_wait (client, path, list_key, id_key, final, &answer);
    if (rc) {
        json_decref (answer);
        return rc;
    }
    const char *status = json_string_value (json_object_get (answer, "status"));
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        const char *error = json_string_value (json_object_get (answer, "error"));
        printf ("%s %s: %s%s%s\n", what, json_string_value (json_object_get (answer, id_key)),
                status, error ? ": " : "", error ? error : "");
    }
    //  waited for, and it ended the other way: the command did not do what was asked
    rc = wait && status && strcmp (status, final[0]) != 0 ? MCECTL_EXIT_FAILED : MCECTL_EXIT_OK;
    json_decref (answer);
    return rc;
}

int mcectl_deposit (mcectl_client_t *client, int argc, char **argv)
{
    return s_post (client, "deposit", "/api/account/deposits", "deposit", "deposits", "deposit_id",
                   (const char *const[]){"credited", "failed"}, argc, argv);
}

int mcectl_withdraw (mcectl_client_t *client, int argc, char **argv)
{
    return s_post (client, "withdraw", "/api/account/withdrawals", "withdrawal", "withdrawals",
                   "withdrawal_id", (const char *const[]){"paid", "refunded"}, argc, argv);
}

static int s_list (mcectl_client_t *client, const char *command, const char *path, const char *key,
                   const char *id_key, int argc, char **argv)
{
    const char *limit = NULL, *offset = NULL;
    const mcectl_option_t options[] = {
        {"--limit", &limit, NULL}, {"--offset", &offset, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse (command, argc, argv, options, NULL, 0) < 0 ||
        (limit && !mcectl_check_digits ("--limit", limit)) ||
        (offset && !mcectl_check_digits ("--offset", offset)))
        return MCECTL_EXIT_USAGE;
    char query[S_PATH_MAX];
    snprintf (query, sizeof query, "%s", path);
    if (mcectl_query (query, sizeof query, command,
                      (const char *[]){"limit", limit, "offset", offset, NULL}))
        return MCECTL_EXIT_USAGE;
    json_t *answer;
    int rc = mcectl_client_call (client, "GET", query, NULL, true, &answer);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (answer);
    else {
        const mcectl_column_t columns[] = {{"ID", id_key, true},
                                           {"ASSET", "asset", false},
                                           {"AMOUNT", "amount", true},
                                           {"STATUS", "status", false},
                                           {"CREATED", "created_at", false},
                                           {"SIGNATURE", "signature", false},
                                           {"ERROR", "error", false},
                                           {NULL, NULL, false}};
        mcectl_table (stdout, json_object_get (answer, key), columns);
    }
    json_decref (answer);
    return MCECTL_EXIT_OK;
}

int mcectl_deposits (mcectl_client_t *client, int argc, char **argv)
{
    return s_list (client, "deposits", "/api/account/deposits", "deposits", "deposit_id", argc,
                   argv);
}

int mcectl_withdrawals (mcectl_client_t *client, int argc, char **argv)
{
    return s_list (client, "withdrawals", "/api/account/withdrawals", "withdrawals",
                   "withdrawal_id", argc, argv);
}

//  ---------------------------------------------------------------------------------------
//  reconcile

typedef struct {
    const char *asset;
    const char *vault;
    int64_t chain;         //  the vault's balance on chain
    reconcile_owed_t owed; //  what the tables owe from it (reconcile.h)
} s_side_t;

//  The vault addresses the keys file names. 0, or -1 after saying why.
static int s_vaults (const mce_config_t *cfg, char *energy, char *payment, size_t size)
{
    if (!cfg->settler.keys_file[0]) {
        fprintf (stderr, "mcectl reconcile: no settler.keys_file in the configuration: give "
                         "--vault-energy and --vault-payment\n");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_load_file (cfg->settler.keys_file, 0, &jerr);
    json_t *vaults = json_object_get (root, "vaults");
    const char *e = json_string_value (json_object_get (vaults, "energy"));
    const char *p = json_string_value (json_object_get (vaults, "payment"));
    if (!e || !p || strlen (e) >= size || strlen (p) >= size) {
        fprintf (stderr,
                 "mcectl reconcile: %s names no vaults {energy, payment}%s%s: give "
                 "--vault-energy and --vault-payment\n",
                 cfg->settler.keys_file, root ? "" : ": ", root ? "" : jerr.text);
        json_decref (root);
        return -1;
    }
    snprintf (energy, size, "%s", e);
    snprintf (payment, size, "%s", p);
    json_decref (root);
    return 0;
}

//  The token balance of account on chain. 0, or -1 after saying why.
static int s_chain_balance (mcectl_client_t *client, const char *account, int64_t *amount)
{
    const mce_config_t *cfg = mcectl_client_config (client);
    json_t *request =
        json_pack ("{s:s,s:i,s:s,s:[s,{s:s}]}", "jsonrpc", "2.0", "id", 1, "method",
                   "getTokenAccountBalance", "params", account, "commitment", "confirmed");
    char *text = json_dumps (request, JSON_COMPACT), *body = NULL, err[256];
    json_decref (request);
    long status = 0;
    int rc = mcectl_client_post (client, cfg->settler.rpc_url, text, MCECTL_HTTP_TIMEOUT_MS,
                                 &status, &body, err, sizeof err);
    free (text);
    if (rc) {
        fprintf (stderr, "mcectl reconcile: the ledger at %s: %s\n", cfg->settler.rpc_url, err);
        return -1;
    }
    json_t *answer = json_loads (body ? body : "", 0, NULL);
    const char *value = json_string_value (
        json_object_get (json_object_get (json_object_get (answer, "result"), "value"), "amount"));
    rc = -1;
    if (status == 200 && value && decimal_parse (value, strlen (value), 0, amount) == DECIMAL_OK)
        rc = 0;
    else
        fprintf (stderr, "mcectl reconcile: getTokenAccountBalance %s: HTTP %ld %.200s\n", account,
                 status, body ? body : "");
    json_decref (answer);
    free (body);
    return rc;
}

static void s_amount_text (const s_side_t *side, int64_t v, char *out, size_t size)
{
    decimal_format (v,
                    strcmp (side->asset, "energy") == 0 ? DECIMAL_KWH_SCALE : DECIMAL_PRICE_SCALE,
                    out, size);
}

int mcectl_reconcile (mcectl_client_t *client, int argc, char **argv)
{
    const mce_config_t *cfg = mcectl_client_config (client);
    const char *vault_energy = NULL, *vault_payment = NULL;
    const mcectl_option_t options[] = {{"--vault-energy", &vault_energy, NULL},
                                       {"--vault-payment", &vault_payment, NULL},
                                       {NULL, NULL, NULL}};
    if (mcectl_parse ("reconcile", argc, argv, options, NULL, 0) < 0)
        return MCECTL_EXIT_USAGE;
    char energy[128], payment[128];
    if (!vault_energy || !vault_payment) {
        if (s_vaults (cfg, energy, payment, sizeof energy))
            return MCECTL_EXIT_USAGE;
        vault_energy = vault_energy ? vault_energy : energy;
        vault_payment = vault_payment ? vault_payment : payment;
    }
    char markets[CONFIG_MARKETS_MAX * 40];
    reconcile_markets (cfg, markets, sizeof markets);

    s_side_t sides[2] = {{.asset = "energy", .vault = vault_energy},
                         {.asset = "payment", .vault = vault_payment}};
    for (int i = 0; i < 2; i++)
        if (s_chain_balance (client, sides[i].vault, &sides[i].chain))
            return MCECTL_EXIT_UNREACHABLE;
    char err[512];
    pg_t *pg = pg_connect (cfg->postgres.url, 10000, err, sizeof err);
    if (!pg) {
        fprintf (stderr, "mcectl reconcile: cannot reach Postgres: %s\n", err);
        return MCECTL_EXIT_UNREACHABLE;
    }
    for (int i = 0; i < 2; i++)
        if (reconcile_owed (pg, markets, sides[i].asset, &sides[i].owed)) {
            fprintf (stderr, "mcectl reconcile: %s\n", pg_error (pg));
            pg_destroy (&pg);
            return MCECTL_EXIT_FAILED;
        }
    pg_destroy (&pg);

    int rc = MCECTL_EXIT_OK;
    json_t *rows = json_array ();
    for (int i = 0; i < 2; i++) {
        const s_side_t *s = &sides[i];
        int64_t difference = s->chain - reconcile_total (&s->owed);
        if (difference)
            rc = MCECTL_EXIT_FAILED;
        char text[6][DECIMAL_FORMAT_MAX];
        s_amount_text (s, s->chain, text[0], sizeof text[0]);
        s_amount_text (s, s->owed.balances, text[1], sizeof text[1]);
        s_amount_text (s, s->owed.trades, text[2], sizeof text[2]);
        s_amount_text (s, s->owed.withdrawals, text[3], sizeof text[3]);
        s_amount_text (s, s->owed.deposits, text[4], sizeof text[4]);
        s_amount_text (s, difference < 0 ? -difference : difference, text[5], sizeof text[5]);
        char signed_difference[DECIMAL_FORMAT_MAX + 1];
        snprintf (signed_difference, sizeof signed_difference, "%s%s", difference < 0 ? "-" : "",
                  text[5]);
        json_array_append_new (
            rows, json_pack ("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "asset", s->asset, "vault",
                             s->vault, "vault_balance", text[0], "balances", text[1],
                             "trades_unsettled", text[2], "withdrawals_unpaid", text[3],
                             "deposits_uncredited", text[4], "difference", signed_difference,
                             "in_flight", (json_int_t) s->owed.in_flight));
    }
    if (mcectl_client_options (client)->json)
        mcectl_print_json (rows);
    else {
        static const mcectl_column_t columns[] = {{"ASSET", "asset", false},
                                                  {"VAULT (CHAIN)", "vault_balance", true},
                                                  {"BALANCES", "balances", true},
                                                  {"UNSETTLED", "trades_unsettled", true},
                                                  {"WITHDRAWING", "withdrawals_unpaid", true},
                                                  {"UNCREDITED", "deposits_uncredited", true},
                                                  {"DIFFERENCE", "difference", true},
                                                  {"IN FLIGHT", "in_flight", true},
                                                  {NULL, NULL, false}};
        mcectl_table (stdout, rows, columns);
        printf (rc ? "the vaults and the books differ%s\n" : "the vaults and the books agree%s\n",
                sides[0].owed.in_flight + sides[1].owed.in_flight
                    ? " (with transfers in flight: run it again once they settle)"
                    : "");
    }
    json_decref (rows);
    return rc;
}
