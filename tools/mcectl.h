/*  mcectl — what the operator's command line's files share (tools/mcectl.c is the entry).

    mcectl.c         the command line: global options, help, dispatch; user add, token,
                     tail, load (the things that need no gateway)
    mcectl_client.c  the gateway client: the one place libcurl appears; tokens, errors, and
                     the table printer every command uses
    mcectl_wallet.c  signing up and changing wallet with a keypair file (/api/auth), and the
                     password read from standard input
    mcectl_account.c balances, deposits and withdrawals (/api/account), and `reconcile`
    mcectl_trade.c   orders, trades and the book (/api/trading, /api/market)
    mcectl_admin.c   admin controls, settlements, analytics (/api/admin) and `health`

    Every command is `int fn (mcectl_client_t *client, int argc, char **argv)` with the words
    after its name, and returns the process's exit status.
*/
#ifndef MCE_MCECTL_H
#define MCE_MCECTL_H

#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

//  Exit statuses, the same for every command (scripts depend on them).
#define MCECTL_EXIT_OK          0 //  done
#define MCECTL_EXIT_FAILED      1 //  refused by the gateway (4xx/5xx), or `health`: something down
#define MCECTL_EXIT_USAGE       2 //  bad command line, or configuration
#define MCECTL_EXIT_UNREACHABLE 3 //  no answer: the gateway (or Postgres, for `user add`)

//  How long one exchange with the gateway may take, and a metrics endpoint (`health`).
#define MCECTL_HTTP_TIMEOUT_MS    30000
#define MCECTL_CONNECT_TIMEOUT_MS 5000
#define MCECTL_HEALTH_TIMEOUT_MS  3000
//  Lifetime of a token minted with --as (and the `token` command's default).
#define MCECTL_TOKEN_TTL_S     3600
#define MCECTL_TOKEN_TTL_MAX_S 31622400 //  the gateway's own limit (gateway.jwt_ttl_s)

//  The global options, anywhere on the line.
typedef struct {
    const char *config_path; //  -c FILE; NULL = built-in defaults
    const char *url;         //  --url or MCE_URL; NULL = gateway.http_address/http_port
    const char *token;       //  --token or MCE_TOKEN
    const char *as;          //  --as NAME: mint a token with gateway.jwt_secret
    bool admin;              //  --admin: that token's role (and `user add`'s)
    bool json;               //  --json: the gateway's JSON on standard output
} mcectl_options_t;

//  ---------------------------------------------------------------------------------------
//  mcectl_client.c

typedef struct _mcectl_client_t mcectl_client_t;

//  A client of the gateway at the options' URL. Borrows cfg and opts for its lifetime.
//  Contacts nothing until a call. NULL when libcurl cannot start (reported).
mcectl_client_t *mcectl_client_new (const mce_config_t *cfg, const mcectl_options_t *opts);
void mcectl_client_destroy (mcectl_client_t **self_p);
const mce_config_t *mcectl_client_config (mcectl_client_t *self);
const mcectl_options_t *mcectl_client_options (mcectl_client_t *self);
//  The gateway's base URL ("http://127.0.0.1:8080", no trailing slash). Borrowed.
const char *mcectl_client_url (mcectl_client_t *self);
//  The caller's token (--token, MCE_TOKEN or minted for --as), or NULL after saying on stderr
//  how to give one. Borrowed.
const char *mcectl_client_token (mcectl_client_t *self);

//  method path (with its query) at the gateway, body (borrowed, may be NULL) as JSON. With
//  auth, sends the caller's token (--token, MCE_TOKEN or minted for --as). 0 with the answer
//  in *reply (the caller's) for a 2xx; otherwise the error is on stderr (and the gateway's
//  error JSON on stdout with --json) and the exit status is returned.
int mcectl_client_call (mcectl_client_t *self, const char *method, const char *path, json_t *body,
                        bool auth, json_t **reply);

//  GET url, whatever it is (a metrics endpoint). 0 with the status and the body (the
//  caller's) when something answered, else -1 with the reason in err.
//  POSTs body (JSON text) to url, whatever it is (the ledger's JSON-RPC), as mcectl_client_get.
int mcectl_client_post (mcectl_client_t *self, const char *url, const char *body, long timeout_ms,
                        long *status, char **answer, char *err, size_t err_size);
int mcectl_client_get (mcectl_client_t *self, const char *url, long timeout_ms, long *status,
                       char **body, char *err, size_t err_size);

//  Appends ?name=value&... to path for each pair of pairs (name, value, ..., NULL) whose value
//  is not NULL, the values URL-escaped. 0, or -1 after saying on stderr that command's query
//  is too long.
int mcectl_query (char *path, size_t size, const char *command, const char *const *pairs);

//  Signs a token for name with gateway.jwt_secret, as the gateway's own. 0, or -1 with the
//  reason on stderr.
int mcectl_token_mint (const mce_config_t *cfg, const char *name, bool admin, long ttl_s, char *out,
                       size_t size);

//  ---------------------------------------------------------------------------------------
//  Command lines and output (mcectl_client.c)

//  One option of a command: --name VALUE (value set) or --name (flag set).
typedef struct {
    const char *name;
    const char **value;
    bool *flag;
} mcectl_option_t;

//  Parses argv against options (NULL-name terminated); positional words go to words[] (at
//  most max). Returns how many, or -1 after saying what is wrong on stderr (command names
//  the command for the message).
int mcectl_parse (const char *command, int argc, char **argv, const mcectl_option_t *options,
                  const char **words, int max);
//  true when text is a decimal number of at most `scale` places (decimal.h), else says why
//  on stderr, naming the option.
bool mcectl_check_decimal (const char *option, const char *text, int scale);
//  true when text is digits only (an id, an epoch, a count), else says so on stderr.
bool mcectl_check_digits (const char *option, const char *text);

//  A column of a table: its header, the member of each row it shows, right-aligned or not.
typedef struct {
    const char *header;
    const char *key;
    bool right;
} mcectl_column_t;

//  Prints rows (a JSON array of objects) as a table under headers, columns sized to fit;
//  "(none)" when empty. A string shows as itself (an RFC 3339 time as "YYYY-MM-DD HH:MM:SS"),
//  an integer in decimal, null or absent as "-", a boolean as yes/no.
void mcectl_table (FILE *out, json_t *rows, const mcectl_column_t *columns);
//  The text of member key of object, as mcectl_table shows it, into buf. Returns buf.
const char *mcectl_cell (json_t *object, const char *key, char *buf, size_t size);
//  Prints value as one line of compact JSON on standard output (--json).
void mcectl_print_json (json_t *value);
//  Prints each member of object on a line of its own, "  name  value", values as in a table;
//  members named in skip (NULL-terminated, may be NULL) are left out.
void mcectl_print_members (FILE *out, json_t *object, const char *const *skip);
//  Prints one record the gateway answered (an order, a settlement): its JSON with --json,
//  else "<what> <id>: <its state_key>" and its other members but id_key. Takes record.
//  Returns MCECTL_EXIT_OK.
int mcectl_print_record (mcectl_client_t *client, json_t *record, const char *what, const char *id,
                         const char *id_key, const char *state_key);

//  ---------------------------------------------------------------------------------------
//  Commands

//  mcectl_wallet.c
int mcectl_register (mcectl_client_t *client, int argc, char **argv);
int mcectl_wallet (mcectl_client_t *client, int argc, char **argv);
int mcectl_login (mcectl_client_t *client, int argc, char **argv);
//  Reads a password (one line) from standard input into out (AUTH_PASSWORD_MAX + 2 bytes)
//  and checks it. 0, or MCECTL_EXIT_USAGE after saying what is wrong.
int mcectl_password_stdin (char *out, size_t size);

//  mcectl_account.c
int mcectl_balances (mcectl_client_t *client, int argc, char **argv);
int mcectl_deposit (mcectl_client_t *client, int argc, char **argv);
int mcectl_withdraw (mcectl_client_t *client, int argc, char **argv);
int mcectl_deposits (mcectl_client_t *client, int argc, char **argv);
int mcectl_withdrawals (mcectl_client_t *client, int argc, char **argv);
int mcectl_reconcile (mcectl_client_t *client, int argc, char **argv);

//  mcectl_trade.c
int mcectl_order_place (mcectl_client_t *client, int argc, char **argv);
int mcectl_order_cancel (mcectl_client_t *client, int argc, char **argv);
int mcectl_order_amend (mcectl_client_t *client, int argc, char **argv);
int mcectl_order_show (mcectl_client_t *client, int argc, char **argv);
int mcectl_orders (mcectl_client_t *client, int argc, char **argv);
int mcectl_trades (mcectl_client_t *client, int argc, char **argv);
int mcectl_book (mcectl_client_t *client, int argc, char **argv);

//  mcectl_admin.c
int mcectl_admin (mcectl_client_t *client, int argc, char **argv);
int mcectl_health (mcectl_client_t *client, int argc, char **argv);

//  mcectl_keys.c
int mcectl_keys_init (mcectl_client_t *client, int argc, char **argv);
int mcectl_keys_add (mcectl_client_t *client, int argc, char **argv);
int mcectl_keys_list (mcectl_client_t *client, int argc, char **argv);
//  The control actions the matcher knows, for help: "pause, resume, ..." or, detailed, a
//  line each with the API's name ("  pause      pause_trading").
void mcectl_admin_actions_help (FILE *out, bool detailed);

#endif
