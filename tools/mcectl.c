/*  mcectl — the operator's command line: orders, trades and the book through the gateway's
    HTTP API, the administrator's controls, the health of every process, the live market data
    the broadcaster publishes, users (admins are made here and only here, never by
    self-service registration), tokens for testing, and the load generator.

        mcectl [OPTIONS] order place --side buy|sell --qty KWH --price P [--market M] ...
        mcectl [OPTIONS] order cancel|show ID · order amend ID [--qty KWH] [--price P]
        mcectl [OPTIONS] orders [--status S] [--market M] · trades [--market M | --mine]
        mcectl [OPTIONS] book [--market M] · health · tail [TOPIC ...] [--count N]
        mcectl [OPTIONS] admin pause|resume|trigger|clear|snapshot MARKET
        mcectl [OPTIONS] admin settlements [--state S] · admin retry ID · admin analytics
        mcectl [OPTIONS] register NAME --keypair FILE   (password on standard input)
        mcectl [OPTIONS] login NAME                     (password on standard input)
        mcectl [OPTIONS] wallet --keypair FILE           (password on standard input)
        mcectl [OPTIONS] balances · deposit|withdraw --asset energy|payment --amount X
        mcectl [OPTIONS] deposits · withdrawals · reconcile
        mcectl [OPTIONS] user add NAME --wallet KEY [--admin]   (password on standard input)
        mcectl [OPTIONS] token NAME [--role user|admin] [--ttl SECONDS]
        mcectl [OPTIONS] keys init|list [--dir D] · keys add NAME [--role monitor|process]
        mcectl [OPTIONS] load ARGS...   (mce-loadgen, from the same folder)

    OPTIONS, anywhere on the line: -c FILE, --url URL, --token T, --as NAME [--admin], --json.

    It reads the same configuration as the processes (the gateway's address, its jwt_secret
    to sign tokens with --as, postgres.url for `user add` and `reconcile`, the metrics ports for
    `health`, broadcaster.xpub for `tail`, settler.rpc_url and keys_file for `reconcile`).
    Everything that talks HTTP is in mcectl_client.c and the commands in mcectl_wallet.c,
    mcectl_account.c, mcectl_trade.c and mcectl_admin.c; see mcectl.h. The help
    text below is the manual: `mcectl --help`, `mcectl COMMAND --help`.
*/
#include "mcectl.h"
#include "auth.h"
#include "config.h"
#include "curve.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"

#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

MIGRATE_DECLARE (gateway);

typedef int (s_command_fn) (mcectl_client_t *client, int argc, char **argv);

static s_command_fn s_user_add, s_token, s_tail;

typedef struct {
    const char *name; //  one or two words: "orders", "order place"
    s_command_fn *fn;
    const char *section; //  starts a group in the overall help
    const char *usage;   //  after "mcectl "
    const char *help;    //  what it does, and an example of its output
} s_command_t;

static const s_command_t s_commands[] = {
    {"register", mcectl_register, "Users (a keypair file proves the wallet)",
     "register NAME --keypair FILE",
     "Signs NAME up through the gateway as the dashboard does, proving the wallet of FILE, a\n"
     "keypair in the Solana CLI's format (`solana-keygen new -o FILE`: a JSON array of 64\n"
     "numbers, the secret seed then the public key): it asks POST /api/auth/challenge for the\n"
     "message to sign, signs it with the key and registers (POST /api/auth/register) with\n"
     "the password read from standard input (one line). The key never leaves this machine.\n"
     "A wallet belongs to one user.\n\n"
     "  $ echo 'a long password' | mcectl register alice --keypair ~/.config/solana/id.json\n"
     "  registered alice with wallet 4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T\n"},
    {"login", mcectl_login, NULL, "login NAME",
     "Signs NAME in (POST /api/auth/login) with the password read from standard input (one\n"
     "line) and prints the token, for --token T or $MCE_TOKEN (valid for gateway.jwt_ttl_s,\n"
     "an hour by default); with --json the gateway's whole answer.\n\n"
     "  $ export MCE_TOKEN=$(echo 'a long password' | mcectl login alice)\n"
     "  $ mcectl balances\n"},
    {"wallet", mcectl_wallet, NULL, "wallet --keypair FILE",
     "Changes your wallet (the token's user: --as NAME, --token T) to FILE's, proven the same\n"
     "way (POST /api/auth/challenge, then POST /api/auth/wallet), with your password read from\n"
     "standard input (one line): withdrawals are paid to this wallet, so a token alone cannot\n"
     "change it. A running settler pays the new wallet within settler.wallet_ttl_ms (a minute\n"
     "by default).\n\n"
     "  $ echo 'a long password' | mcectl --as alice wallet --keypair new-wallet.json\n"
     "  changed the wallet of alice with wallet 9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin\n"},
    {"balances", mcectl_balances, "Your money (a user's token: --as NAME, --token T)", "balances",
     "Your balances (GET /api/account/balances): per asset, what is available to order or\n"
     "withdraw and what your open orders hold. Energy in kWh, payment in currency units.\n\n"
     "  $ mcectl --as alice balances\n"
     "  ASSET    AVAILABLE  RESERVED  TOTAL\n"
     "  energy           0         0      0\n"
     "  payment        0.5       0.4    0.9\n"},
    {"deposit", mcectl_deposit, NULL, "deposit --asset energy|payment --amount X [--wait]",
     "Moves X of your tokens from your wallet into the platform's vault (POST\n"
     "/api/account/deposits): the settler sends the transfer as your token account's approved\n"
     "delegate and, once the chain confirms it, your available balance is credited. X is kWh\n"
     "for energy (3 decimals at most), currency units for payment (6). `deposits` follows it;\n"
     "--wait follows it here until it is credited (exit 0) or failed (exit 1, with the chain's\n"
     "reason), two minutes at most.\n\n"
     "  $ mcectl --as alice deposit --asset payment --amount 25\n"
     "  deposit 7: pending\n"
     "  $ mcectl --as alice deposit --asset payment --amount 25 --wait\n"
     "  deposit 8: credited\n"},
    {"withdraw", mcectl_withdraw, NULL, "withdraw --asset energy|payment --amount X [--wait]",
     "Pays X from your available balance back to your wallet (POST /api/account/withdrawals):\n"
     "debited at once (what open orders hold cannot be withdrawn), paid by the settler, and\n"
     "credited back if the chain refuses it for good. --wait follows it until it is paid (exit\n"
     "0) or refunded (exit 1).\n\n"
     "  $ mcectl --as alice withdraw --asset payment --amount 0.5\n"
     "  withdrawal 3: requested\n"},
    {"deposits", mcectl_deposits, NULL, "deposits [--limit N] [--offset N]",
     "Your deposits, newest first, with their state: pending, processing, confirmed (on chain,\n"
     "being credited), credited, or failed with the chain's reason.\n"},
    {"withdrawals", mcectl_withdrawals, NULL, "withdrawals [--limit N] [--offset N]",
     "Your withdrawals, newest first: requested, pending, processing, confirmed, paid, or\n"
     "failed and refunded with the chain's reason.\n"},
    {"order place", mcectl_order_place, "Orders (a user's token: --as NAME, --token T)",
     "order place --side buy|sell --qty KWH --price P [--market M] [--epoch E]\n"
     "            [--type limit|market] [--tif gtc|ioc|fok] [--post-only] [--client-id ID]\n"
     "            [--expires TIME] [--delivery TIME] [--source S]",
     "Places an order (POST /api/trading/orders). KWH and P are decimals as the API takes them\n"
     "(\"12.5\", \"0.15\"): at most 3 and 6 decimal places, never rounded. --market defaults to\n"
     "the configuration's first market, --epoch to the current one (E is an epoch number);\n"
     "--type market takes no --price. --client-id makes a resubmission safe (the same id gets\n"
     "the first answer). TIME is RFC 3339 (2026-11-21T21:45:00Z). Prints the order's state:\n\n"
     "  $ mcectl --as alice order place --side sell --qty 10 --price 0.15\n"
     "  order 7: open, epoch 1994788, filled 0 kWh, remaining 10 kWh\n"},
    {"order amend", mcectl_order_amend, NULL, "order amend ID [--qty KWH] [--price P]",
     "Changes an open order (PATCH /api/trading/orders/ID): --qty is the new remaining\n"
     "quantity. A lower quantity at the same price keeps the order's place; more, or a new\n"
     "price, puts it at the back, and a new price may trade at once.\n\n"
     "  $ mcectl --as alice order amend 7 --qty 5\n"
     "  order 7: open, epoch 1994788, filled 0 kWh, remaining 5 kWh\n"},
    {"order cancel", mcectl_order_cancel, NULL, "order cancel ID",
     "Cancels an open order (DELETE /api/trading/orders/ID).\n\n"
     "  $ mcectl --as alice order cancel 7\n"
     "  order 7: cancelled, epoch 1994788, filled 0 kWh, remaining 0 kWh\n"},
    {"order show", mcectl_order_show, NULL, "order show ID",
     "Shows one of your orders as the gateway knows it (GET /api/trading/orders/ID).\n\n"
     "  $ mcectl --as alice order show 7\n"
     "  order 7: open\n"
     "    client_order_id   -\n"
     "    market            campus-1\n"
     "    ...\n"},
    {"orders", mcectl_orders, NULL,
     "orders [--status open|partially_filled|filled|cancelled|expired] [--market M]\n"
     "       [--epoch E] [--limit N] [--offset N]",
     "Lists your orders, newest first (GET /api/trading/orders); --status open includes the\n"
     "partially filled ones.\n\n"
     "  $ mcectl --as alice orders --status open\n"
     "  ID  MARKET    EPOCH    SIDE  TYPE   TIF  KWH  PRICE  FILLED  LEFT  STATUS  CREATED (UTC)\n"
     "   7  campus-1  1994788  Sell  Limit  GTC   10   0.15       0    10  open    2026-11-21 "
     "21:45:00\n"},
    {"trades", mcectl_trades, "Market data (public)",
     "trades [--market M] [--limit N]\n"
     "trades --mine [--limit N] [--offset N]",
     "The market's latest trades, newest first (GET /api/market/trades); with --mine, your own\n"
     "in every market (GET /api/market/trades/my-history: a token is needed), each with your\n"
     "order, its settlement's state (pending, processing, confirmed, failed) and transaction.\n\n"
     "  $ mcectl trades\n"
     "  campus-1: the latest trades, newest first\n"
     "  TRADE  EPOCH    PRICE  KWH  VALUE  AGGRESSOR  TIME (UTC)\n"
     "      3  1994788   0.15    4    0.6  Buy        2026-11-21 21:46:02\n"},
    {"book", mcectl_book, NULL, "book [--market M] [--epoch E] [--levels N]",
     "The order book's price levels (GET /api/market/depth), asks above bids.\n\n"
     "  $ mcectl book\n"
     "  campus-1 epoch 1994788 (bus seq 42)\n"
     "  SIDE  PRICE  KWH  ORDERS\n"
     "  ask    0.16    5       1\n"
     "  bid    0.15   12       2\n"},
    {"admin", mcectl_admin, "Administration (an admin token: --as NAME --admin)",
     "admin ACTION MARKET\n"
     "admin settlements [--state failed|pending|processing] [--after ID] [--limit N]\n"
     "admin retry ID\n"
     "admin analytics [--market M] [--timeframe 1h|24h|7d|30d]\n"
     "admin health",
     "ACTION MARKET sends a market control to the matcher (POST /api/admin/market/control);\n"
     "it is journaled with your name. The actions are the matcher's (see the list below).\n"
     "settlements lists those not confirmed (default: failed); retry sends a failed one again;\n"
     "analytics sums the epochs cleared in the window; health is the gateway's own view.\n\n"
     "  $ mcectl --as root --admin admin pause campus-1\n"
     "  campus-1: pause_trading done (seq 43)\n"
     "  $ mcectl --as root --admin admin settlements\n"
     "  ID  TRADE  MARKET    EPOCH    STATE   TRIES  KWH  PRICE  VALUE  ERROR\n"
     "   5      9  campus-1  1994788  failed      3    4   0.15    0.6  insufficient funds\n"},
    {"health", mcectl_health, "Operations (the configuration's endpoints)",
     "health [--hosts NAME=HOST,...]",
     "Asks every process: the gateway's /api/health, then the metrics endpoint of the\n"
     "matcher, settler, persister and broadcaster at <section>.metrics_port (0 is \"off\":\n"
     "cannot be asked), on the host of its endpoint in the config (matcher.bus, settler.bus,\n"
     "broadcaster.xpub) unless that is a wildcard, else metrics_address; --hosts names others\n"
     "(persister=10.0.0.7). One line each; exit status 1 when one is down, the gateway is\n"
     "degraded or settlements have failed (the settler is then \"degraded\").\n"
     "--json: {\"ok\", \"processes\": [{name, state, url, health|metrics|error}]}.\n\n"
     "  $ mcectl health\n"
     "  gateway      up        matcher up, bus 42 of 42, postgres up, redis off\n"
     "  matcher      up        seq 42, resting 3, trades 1\n"
     "  settler      down      http://127.0.0.1:9102/metrics: Failed to connect to 127.0.0.1\n"
     "                         port 9102 after 0 ms: Couldn't connect to server\n"
     "  persister    up        seq 42, lag 0, postgres up 1\n"
     "  broadcaster  off       metrics_port = 0: cannot be asked\n"},
    {"reconcile", mcectl_reconcile, NULL,
     "reconcile [--vault-energy ADDRESS] [--vault-payment ADDRESS]",
     "Holds the escrow against the chain: for each mint, the vault's balance on chain (asked\n"
     "of settler.rpc_url) must equal what the books (postgres.url) say it holds: every user's\n"
     "available + reserved, the value of escrow trades not yet confirmed, withdrawals debited\n"
     "and not yet paid, and deposits confirmed on chain but not yet credited. The vaults are\n"
     "those settler.keys_file names unless given. The books follow the buses, so run it with\n"
     "nothing in flight (the last column): exit status 1 on any difference.\n\n"
     "  $ mcectl reconcile\n"
     "  ASSET    VAULT (CHAIN)  BALANCES  UNSETTLED  WITHDRAWING  UNCREDITED  DIFFERENCE  IN "
     "FLIGHT\n"
     "  energy          5000      5000          0            0           0           0          0\n"
     "  payment        812.5       800       12.5            0           0           0          0\n"
     "  the vaults and the books agree\n"},
    {"tail", s_tail, NULL, "tail [TOPIC ...] [--count N] [--key NAME]",
     "Prints the broadcaster's market data as it happens, one line per message: the topic,\n"
     "then the JSON (broadcaster/PROTOCOL.md). Topics are <channel>.<market> prefixes:\n"
     "depth.campus-1, trades., ticker, ...; none = everything. Each starts with the channel's\n"
     "snapshot. It reads broadcaster.xpub as the monitor key NAME (default \"monitor\", in\n"
     "security.keys_dir); --count N stops after N messages; Ctrl-C stops.\n\n"
     "  $ mcectl tail trades.campus-1 --count 1\n"
     "  trades.campus-1 {\"type\":\"snapshot\",\"channel\":\"trades\",...}\n"},
    {"keys init", mcectl_keys_init, NULL, "keys init [--dir D]",
     "Makes the CurveZMQ key pairs every link between processes needs (security.keys_dir, or\n"
     "D): one per process and one \"monitor\" key for tools that watch. Existing keys are kept,\n"
     "so it is safe to run again. Each process reads its own D/NAME.secret; servers admit the\n"
     "clients whose keys are in D/public.\n\n"
     "  $ mcectl -c mce.cfg keys init\n"
     "  made matcher (process)\n  ...\n  made monitor (monitor)\n"},
    {"keys add", mcectl_keys_add, NULL, "keys add NAME [--role monitor|process] [--dir D]",
     "Makes a key pair for one more client: a monitor (the default) may follow the buses,\n"
     "ask for replays and subscribe to broadcaster.xpub, never send a command; a process key\n"
     "may also command. Servers admit it at once, without a restart. Give the tool\n"
     "D/NAME.secret and its configuration's security.keys_dir (with public/ beside it).\n\n"
     "  $ mcectl keys add grafana\n"
     "  made grafana (monitor)\n"
     "  $ mcectl tail --key grafana trades.\n"},
    {"keys list", mcectl_keys_list, NULL, "keys list [--dir D]",
     "The keys servers admit: name, role and public key. Delete D/public/NAME.key to stop\n"
     "admitting one (connections already open stay until they close).\n"},
    {"user add", s_user_add, NULL, "user add NAME --wallet KEY [--admin]",
     "Creates a user in the gateway's database (postgres.url, with the gateway's migrations);\n"
     "the password is read from standard input (one line), never from the command line.\n"
     "--admin makes an administrator: the only way to get one. The operator vouches for the\n"
     "wallet (no signature is asked; it must be no other user's).\n\n"
     "  $ echo 'a long password' | mcectl -c mce.cfg user add root --wallet <key> --admin\n"
     "  created administrator root\n"},
    {"token", s_token, NULL, "token NAME [--role user|admin] [--ttl SECONDS]",
     "Prints a token for NAME signed with gateway.jwt_secret (for tests and scripts; default\n"
     "role user, or admin with --admin; ttl 3600 s). The gateway takes it only when NAME is a\n"
     "registered user.\n\n"
     "  $ mcectl -c mce.cfg token alice\n"
     "  eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...\n"},
    {"load", NULL, NULL, "load ARGS...",
     "Runs the load generator, mce-loadgen from mcectl's own folder, with ARGS as they are\n"
     "(and -c FILE, --json when given before `load`): mcectl load --help for its options.\n\n"
     "  $ mcectl load --target gateway-http --orders 10000 --connections 8\n"},
};

#define S_COMMAND_COUNT (sizeof s_commands / sizeof s_commands[0])

//  The command named by the first words, or NULL. *words says how many it took.
static const s_command_t *s_find (int argc, char **argv, int *words)
{
    for (size_t i = 0; i < S_COMMAND_COUNT; i++) {
        const char *name = s_commands[i].name;
        size_t first = strcspn (name, " ");
        if (argc < 1 || strlen (argv[0]) != first || strncmp (argv[0], name, first) != 0)
            continue;
        if (!name[first]) {
            *words = 1;
            return &s_commands[i];
        }
        if (argc >= 2 && strcmp (argv[1], name + first + 1) == 0) {
            *words = 2;
            return &s_commands[i];
        }
    }
    return NULL;
}

static void s_print_usage (FILE *out, const s_command_t *c)
{
    //  a line starting with a space continues the one before
    for (const char *line = c->usage; *line;) {
        size_t n = strcspn (line, "\n");
        fprintf (out, "%s%.*s\n", line[0] == ' ' ? "         " : "  mcectl ", (int) n, line);
        line += n + (line[n] == '\n');
    }
}

static int s_usage (FILE *out, int status)
{
    fprintf (out, "Usage: mcectl [OPTIONS] COMMAND [ARGS]\n");
    for (size_t i = 0; i < S_COMMAND_COUNT; i++) {
        if (s_commands[i].section)
            fprintf (out, "\n%s:\n", s_commands[i].section);
        s_print_usage (out, &s_commands[i]);
    }
    fprintf (out, "  (ACTION: ");
    mcectl_admin_actions_help (out, false);
    fprintf (
        out,
        ")\n\n"
        "Options, anywhere on the line:\n"
        "  -c, --config FILE  the system's configuration (default: the built-in one); MCE_<KEY>\n"
        "                     environment variables override it, as for every mce executable\n"
        "  --url URL          the gateway (default $MCE_URL, else http://<gateway.http_address>:\n"
        "                     <gateway.http_port>)\n"
        "  --token T          the bearer token to send (default $MCE_TOKEN)\n"
        "  --as NAME          sign a token for NAME (a registered user) with\n"
        "                     gateway.jwt_secret instead (tests, scripts); --admin gives it\n"
        "                     the admin role\n"
        "  --json             print the gateway's JSON answer, one line, instead of a table\n"
        "                     (an error's JSON too, on standard output)\n"
        "  -h, --help         this; with a command, its help: mcectl order place --help\n\n"
        "A local run: while tools/run.sh runs, mcectl run from its checkout (or the one it was\n"
        "built in) with the run's configuration (-c as given to run.sh, or none) uses the run's\n"
        "own Postgres, Redis and ledger and its token key (.run/jwt_secret), from the file\n"
        "run.sh keeps for it, .run/local.env (trusted only if it is yours, writable by no one\n"
        "else, and its run.sh still runs there); variables you set yourself come first.\n\n"
        "Amounts are decimal strings, sent as typed. Exit status: 0 done; 1 refused by the\n"
        "gateway (its code and message on stderr), or `health` found a process down; 2 bad\n"
        "usage or configuration; 3 no answer from the gateway (from Postgres, for user add).\n");
    return status;
}

//  mcectl [words] --help: the command's help, or every command starting with the words.
static int s_help (int argc, char **argv)
{
    int words = 0;
    const s_command_t *c = s_find (argc, argv, &words);
    int shown = 0;
    for (size_t i = 0; !c && argc > 0 && i < S_COMMAND_COUNT; i++)
        if (strncmp (s_commands[i].name, argv[0], strlen (argv[0])) == 0 &&
            s_commands[i].name[strlen (argv[0])] == ' ') {
            printf ("%sUsage:\n", shown++ ? "\n" : "");
            s_print_usage (stdout, &s_commands[i]);
            printf ("\n%s", s_commands[i].help);
        }
    if (shown)
        return MCECTL_EXIT_OK;
    if (!c)
        return s_usage (stdout, MCECTL_EXIT_OK);
    printf ("Usage:\n");
    s_print_usage (stdout, c);
    printf ("\n%s", c->help);
    if (c->fn == mcectl_admin) {
        printf ("\nACTION, either word (the matcher's own, listed from proto/messages.def):\n");
        mcectl_admin_actions_help (stdout, true);
    }
    printf ("\nOptions -c FILE, --url URL, --token T, --as NAME [--admin] and --json go "
            "anywhere (mcectl --help).\n");
    return MCECTL_EXIT_OK;
}

//  ---------------------------------------------------------------------------------------
//  Commands that need no gateway

static int s_user_add (mcectl_client_t *client, int argc, char **argv)
{
    const mce_config_t *cfg = mcectl_client_config (client);
    bool admin = mcectl_client_options (client)->admin;
    const char *name = NULL, *wallet = NULL;
    const mcectl_option_t options[] = {{"--wallet", &wallet, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("user add", argc, argv, options, &name, 1) != 1 || !wallet) {
        fprintf (stderr, "mcectl user add: give NAME and --wallet KEY (mcectl user add --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    const char *why;
    if ((why = auth_check_username (name, strlen (name)))) {
        fprintf (stderr, "mcectl: username %s\n", why);
        return MCECTL_EXIT_USAGE;
    }
    if ((why = auth_check_wallet (wallet, strlen (wallet)))) {
        fprintf (stderr, "mcectl: wallet %s\n", why);
        return MCECTL_EXIT_USAGE;
    }
    char password[AUTH_PASSWORD_MAX + 2];
    int rc = mcectl_password_stdin (password, sizeof password);
    if (rc)
        return rc;
    char hash[AUTH_HASH_MAX], err[512];
    if (auth_password_hash (password, (auth_cost_t) cfg->gateway.password_cost, hash)) {
        fprintf (stderr, "mcectl: out of memory hashing the password\n");
        return MCECTL_EXIT_FAILED;
    }
    auth_wipe (password, sizeof password);
    pg_t *pg = pg_connect (cfg->postgres.url, 10000, err, sizeof err);
    if (!pg) {
        fprintf (stderr, "mcectl: cannot reach Postgres: %s\n", err);
        return MCECTL_EXIT_UNREACHABLE;
    }
    rc = MCECTL_EXIT_FAILED;
    if (migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err,
                       sizeof err)) {
        fprintf (stderr, "mcectl: %s\n", err);
        goto done;
    }
    const char *params[] = {name, hash, wallet, admin ? "admin" : "user"};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO users (username, password_hash, wallet, role) "
                              "VALUES ($1, $2, $3, $4)",
                              4, params);
    if (!r && strcmp (pg_sqlstate (pg), PG_UNIQUE_VIOLATION) == 0)
        fprintf (stderr, "mcectl: user %s exists already, or wallet %s is another user's\n", name,
                 wallet);
    else if (!r)
        fprintf (stderr, "mcectl: %s\n", pg_error (pg));
    else {
        printf ("created %s %s\n", admin ? "administrator" : "user", name);
        rc = MCECTL_EXIT_OK;
    }
    pg_result_free (&r);
done:
    pg_destroy (&pg);
    return rc;
}

static int s_token (mcectl_client_t *client, int argc, char **argv)
{
    const char *name = NULL, *role = NULL, *ttl_text = NULL;
    const mcectl_option_t options[] = {
        {"--role", &role, NULL}, {"--ttl", &ttl_text, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("token", argc, argv, options, &name, 1) != 1) {
        fprintf (stderr, "mcectl token: give the user's NAME (mcectl token --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    if (!role)
        role = mcectl_client_options (client)->admin ? "admin" : "user";
    if ((ttl_text && !mcectl_check_digits ("--ttl", ttl_text)) ||
        (strcmp (role, "user") && strcmp (role, "admin"))) {
        fprintf (stderr, "mcectl token: --role is user or admin, --ttl a number of seconds\n");
        return MCECTL_EXIT_USAGE;
    }
    long ttl = ttl_text ? strtol (ttl_text, NULL, 10) : MCECTL_TOKEN_TTL_S;
    if (ttl <= 0 || ttl > MCECTL_TOKEN_TTL_MAX_S) {
        fprintf (stderr, "mcectl token: --ttl must be 1 to %d seconds (a year)\n",
                 MCECTL_TOKEN_TTL_MAX_S);
        return MCECTL_EXIT_USAGE;
    }
    char token[AUTH_JWT_MAX];
    if (mcectl_token_mint (mcectl_client_config (client), name, strcmp (role, "admin") == 0, ttl,
                           token, sizeof token))
        return MCECTL_EXIT_USAGE;
    if (mcectl_client_options (client)->json) {
        json_t *j = json_pack ("{s:s,s:s,s:s,s:I}", "token", token, "user", name, "role", role,
                               "expires_in", (json_int_t) ttl);
        mcectl_print_json (j);
        json_decref (j);
    }
    else
        printf ("%s\n", token);
    auth_wipe (token, sizeof token);
    return MCECTL_EXIT_OK;
}

static int s_tail (mcectl_client_t *client, int argc, char **argv)
{
    const mce_config_t *cfg = mcectl_client_config (client);
    const char *count_text = NULL, *key = CURVE_MONITOR;
    const mcectl_option_t options[] = {
        {"--count", &count_text, NULL}, {"--key", &key, NULL}, {NULL, NULL, NULL}};
    const char **topics = calloc ((size_t) argc + 1, sizeof *topics);
    int n = topics ? mcectl_parse ("tail", argc, argv, options, topics, argc) : -1;
    if (n < 0 || (count_text && !mcectl_check_digits ("--count", count_text))) {
        free (topics);
        return MCECTL_EXIT_USAGE;
    }
    long count = count_text ? strtol (count_text, NULL, 10) : -1; //  18 digits at most
    curve_t *curve = curve_new (cfg, key, false);
    if (!curve) {
        free (topics);
        return MCECTL_EXIT_USAGE;
    }
    zsock_t *sub = zsock_new (ZMQ_SUB);
    int rc = sub ? curve_client (curve, sub, "broadcaster") : -1;
    curve_destroy (&curve);
    if (rc < 0 || zsock_connect (sub, "%s", cfg->broadcaster.xpub) < 0) {
        fprintf (stderr, "mcectl: cannot connect to the broadcaster at %s\n",
                 cfg->broadcaster.xpub);
        zsock_destroy (&sub);
        free (topics);
        return MCECTL_EXIT_UNREACHABLE;
    }
    for (int i = 0; i < n; i++)
        zsock_set_subscribe (sub, topics[i]);
    if (n == 0)
        zsock_set_subscribe (sub, "");
    free (topics);
    zsock_set_rcvtimeo (sub, 1000); //  to notice Ctrl-C
    long seen = 0;
    while (!zsys_interrupted && (count < 0 || seen < count)) {
        char *topic = NULL, *body = NULL;
        if (zstr_recvx (sub, &topic, &body, NULL) == 2) {
            printf ("%s %s\n", topic, body);
            fflush (stdout);
            seen++;
        }
        zstr_free (&topic);
        zstr_free (&body);
    }
    zsock_destroy (&sub);
    return MCECTL_EXIT_OK;
}

//  mcectl load ARGS: becomes mce-loadgen from the folder this executable is in.
static int s_load (const mcectl_options_t *opts, int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf (stderr, "mcectl: cannot find my own folder: %s\n", strerror (errno));
        return MCECTL_EXIT_FAILED;
    }
    self[n] = '\0';
    char *slash = strrchr (self, '/');
    *(slash ? slash : self) = '\0';
    snprintf (path, sizeof path, "%s/mce-loadgen", slash ? self : ".");
    char **args = calloc ((size_t) argc + 5, sizeof *args);
    if (!args)
        return MCECTL_EXIT_FAILED;
    int k = 0;
    args[k++] = path;
    if (opts->config_path) {
        args[k++] = (char *) "-c";
        args[k++] = (char *) opts->config_path;
    }
    if (opts->json)
        args[k++] = (char *) "--json";
    for (int i = 0; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    fflush (NULL);
    execv (path, args);
    fprintf (stderr, "mcectl: cannot run %s: %s\n", path, strerror (errno));
    free (args);
    return MCECTL_EXIT_FAILED;
}

//  ---------------------------------------------------------------------------------------

//  A global option with a value at argv[*i] (--name VALUE or --name=VALUE). 1 taken, 0 not
//  this option, -1 value missing.
static int s_global (int argc, char **argv, int *i, const char *name, const char *alias,
                     const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen (name);
    if (strncmp (arg, name, n) == 0 && arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (strcmp (arg, name) != 0 && !(alias && strcmp (arg, alias) == 0))
        return 0;
    if (*i + 1 >= argc) {
        fprintf (stderr, "mcectl: %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

//  The local run (tools/run.sh) writes .run/local.env in its checkout while it runs: the
//  MCE_ variables it gave the processes (its Postgres, Redis and ledger, the token key in
//  .run/jwt_secret), its pid and its configuration file. mcectl run from that checkout
//  (the working folder, or the checkout its own executable was built in) takes them, so the
//  commands run.sh prints work as printed in another shell. Only from a file that is the
//  user's own and writable by no one else, only while that run.sh lives in that checkout,
//  only for the same configuration as the run's, and never over a variable already set.
#define S_LOCAL_ENV ".run/local.env"

//  .run/local.env of checkout (a folder), opened only if it is this user's own and no one
//  else may write it: a folder someone else controls (a cloned repository that ships a
//  .run/local.env, say) must not point mcectl, and the password it sends, elsewhere.
static FILE *s_local_env_in (const char *checkout)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/" S_LOCAL_ENV, checkout);
    FILE *file = fopen (path, "r");
    struct stat st;
    if (file && (fstat (fileno (file), &st) || st.st_uid != geteuid () || (st.st_mode & 022))) {
        fclose (file);
        return NULL;
    }
    return file;
}

//  The local run's file: in the working folder's checkout, else in the checkout this mcectl
//  was built in (<checkout>/build/bin/mcectl). checkout gets that folder's real path.
static FILE *s_local_env_open (char *checkout)
{
    if (realpath (".", checkout)) {
        FILE *file = s_local_env_in (checkout);
        if (file)
            return file;
    }
    char exe[PATH_MAX], up[PATH_MAX + 8];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr (exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    snprintf (up, sizeof up, "%s/../..", exe);
    return realpath (up, checkout) ? s_local_env_in (checkout) : NULL;
}

//  pid is a tools/run.sh whose working folder is checkout: the run that wrote the file, not
//  whatever process now has its pid.
static bool s_is_the_run (long pid, const char *checkout)
{
    char path[64], cmdline[4096] = "", cwd[PATH_MAX];
    snprintf (path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen (path, "r");
    size_t n = f ? fread (cmdline, 1, sizeof cmdline - 1, f) : 0;
    if (f)
        fclose (f);
    for (size_t i = 0; i < n; i++)
        cmdline[i] = cmdline[i] ? cmdline[i] : ' ';
    cmdline[n] = '\0';
    snprintf (path, sizeof path, "/proc/%ld/cwd", pid);
    ssize_t len = readlink (path, cwd, sizeof cwd - 1);
    if (len <= 0)
        return false;
    cwd[len] = '\0';
    return strstr (cmdline, "tools/run.sh") && strcmp (cwd, checkout) == 0;
}

static void s_local_run (const char *config_path)
{
    char checkout[PATH_MAX];
    FILE *file = s_local_env_open (checkout);
    if (!file)
        return;
    char line[4096];
    char names[32][64], values[32][2048];
    int count = 0;
    long pid = 0;
    bool same_config = config_path == NULL;
    char config_real[PATH_MAX];
    if (config_path && !realpath (config_path, config_real))
        config_real[0] = '\0';
    while (fgets (line, sizeof line, file)) {
        line[strcspn (line, "\n")] = '\0';
        char *eq = strchr (line, '=');
        if (strncmp (line, "MCE_", 4) != 0 || !eq || eq - line >= 64)
            continue;
        *eq = '\0';
        if (strcmp (line, "MCE_RUN_PID") == 0)
            pid = strtol (eq + 1, NULL, 10);
        else if (strcmp (line, "MCE_RUN_CONFIG") == 0)
            same_config = config_path ? strcmp (eq + 1, config_real) == 0 : eq[1] == '\0';
        else if (count < 32 && strlen (eq + 1) < sizeof values[0]) {
            memcpy (names[count], line, (size_t) (eq - line) + 1);
            snprintf (values[count], sizeof values[count], "%s", eq + 1);
            count++;
        }
    }
    fclose (file);
    if (pid <= 0 || !s_is_the_run (pid, checkout) || !same_config)
        return;
    for (int i = 0; i < count; i++)
        setenv (names[i], values[i], 0);
}

int main (int argc, char **argv)
{
    mcectl_options_t opts = {0};
    const char *token = NULL;
    bool help = false;
    char **rest = calloc ((size_t) argc + 1, sizeof *rest);
    int n = 0, rc = MCECTL_EXIT_USAGE;
    if (!rest)
        return MCECTL_EXIT_FAILED;
    for (int i = 1; i < argc; i++) {
        int taken;
        if (n > 0 && strcmp (rest[0], "load") == 0)
            rest[n++] = argv[i]; //  everything after `load` is the load generator's
        else if ((taken = s_global (argc, argv, &i, "--config", "-c", &opts.config_path)) ||
                 (taken = s_global (argc, argv, &i, "--url", NULL, &opts.url)) ||
                 (taken = s_global (argc, argv, &i, "--token", NULL, &token)) ||
                 (taken = s_global (argc, argv, &i, "--as", NULL, &opts.as))) {
            if (taken < 0)
                goto done;
        }
        else if (strcmp (argv[i], "--admin") == 0)
            opts.admin = true;
        else if (strcmp (argv[i], "--json") == 0)
            opts.json = true;
        else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
            help = true;
        else
            rest[n++] = argv[i];
    }
    if (n > 0 && strcmp (rest[0], "help") == 0) {
        help = true;
        memmove (rest, rest + 1, (size_t) n-- * sizeof *rest);
    }
    if (help) {
        rc = s_help (n, rest);
        goto done;
    }
    if (n == 0) {
        rc = s_usage (stderr, MCECTL_EXIT_USAGE);
        goto done;
    }
    if (strcmp (rest[0], "load") == 0) {
        rc = s_load (&opts, n - 1, rest + 1);
        goto done;
    }
    //  --token beats --as, which beats the environment's token
    opts.token = token ? token : opts.as ? NULL : getenv ("MCE_TOKEN");
    opts.url = opts.url ? opts.url : getenv ("MCE_URL");
    int words = 0;
    const s_command_t *command = s_find (n, rest, &words);
    if (!command) {
        fprintf (stderr, "mcectl: unknown command \"%s%s%s\" (mcectl --help)\n", rest[0],
                 n > 1 ? " " : "", n > 1 ? rest[1] : "");
        goto done;
    }
    log_init ("mcectl");
    log_set_level (MCE_LOG_WARN); //  a command line tool: only what went wrong on stderr
    s_local_run (opts.config_path);
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load (&cfg, opts.config_path, err, sizeof err)) {
        fprintf (stderr, "mcectl: configuration error: %s\n", err);
        goto done;
    }
    if (auth_init ()) {
        fprintf (stderr, "mcectl: libsodium cannot start\n");
        rc = MCECTL_EXIT_FAILED;
        goto done;
    }
    mcectl_client_t *client = mcectl_client_new (&cfg, &opts);
    if (!client) {
        rc = MCECTL_EXIT_FAILED;
        goto done;
    }
    rc = command->fn (client, n - words, rest + words);
    mcectl_client_destroy (&client);
done:
    free (rest);
    return rc;
}
