/*  config — the one configuration of the whole system, read with libconfig.

    One file configures all five processes (a section each, plus `markets` and globals), and
    one table in config.c lists every key with its type, default and bounds. Every executable
    loads and checks the whole file with that table, so `--check-config` of any of them finds
    any unknown key or bad value and names it. Environment variables override keys for
    containers: MCE_<PATH> with dots as underscores, upper case (MCE_MATCHER_FSYNC=never).
*/
#ifndef MCE_CONFIG_H
#define MCE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_STR_MAX     256
#define CONFIG_PATH_MAX    4096
#define CONFIG_MARKETS_MAX 64
#define CONFIG_ERR_MAX     512

typedef enum {
    CONFIG_MODE_CONTINUOUS = 0,
    CONFIG_MODE_AUCTION,
    CONFIG_MODE_PAY_AS_BID
} config_mode_t;
typedef enum { CONFIG_PRICE_MAKER = 0, CONFIG_PRICE_ASK, CONFIG_PRICE_MID } config_price_rule_t;
typedef enum {
    CONFIG_STP_CANCEL_RESTING = 0,
    CONFIG_STP_CANCEL_NEWEST,
    CONFIG_STP_CANCEL_BOTH
} config_stp_t;
typedef enum { CONFIG_MARGINAL_TIME = 0, CONFIG_MARGINAL_PRO_RATA } config_marginal_t;
typedef enum { CONFIG_WALLETS_POSTGRES = 0, CONFIG_WALLETS_KEYS_FILE } config_wallets_t;

typedef struct {
    char id[33];
    int64_t tick;          //  price tick, µ/kWh
    int64_t lot;           //  quantity step, Wh
    int64_t min_qty;       //  Wh
    int64_t max_qty;       //  Wh
    int64_t min_price;     //  µ/kWh
    int64_t max_price;     //  µ/kWh
    int64_t epoch_seconds; //  delivery epoch length
    int64_t future_epochs; //  how many epochs ahead accept orders
    int64_t fee_ppm;
    int mode;       //  config_mode_t
    int price_rule; //  config_price_rule_t
    int stp;        //  config_stp_t
    int marginal;   //  config_marginal_t
    bool escrow;    //  orders reserve balances; trades settle out of the vaults (DESIGN §9)
    //  The grid as backstop: the utility sells any quantity at grid_import_price and buys any
    //  at grid_feed_in_price (µ/kWh; 0: it does not), as grid_user, a user of its own.
    int64_t grid_import_price;
    int64_t grid_feed_in_price;
    char grid_user[65];
    //  Auction modes: at most this often (ms of the matcher's clock), after the depth changed,
    //  the indicative clearing of each open book is published; 0: never.
    int64_t indicative_ms;
} config_market_t;

typedef struct {
    char pub[CONFIG_STR_MAX];
    char replay[CONFIG_STR_MAX];
} config_bus_t;

typedef struct {
    char log_level[16];
    char data_dir[CONFIG_PATH_MAX];
    char metrics_address[64]; //  IPv4 address the /metrics endpoints listen on
    struct {
        char commands[CONFIG_STR_MAX];
        config_bus_t bus;
        char journal_dir[CONFIG_PATH_MAX]; //  empty = <data_dir>/matcher
        int fsync;                         //  journal_fsync_t
        int64_t batch_max;
        int64_t segment_mb;
        int64_t retain_segments;
        int64_t snapshot_every; //  events between snapshots, 0 = only on command
        int64_t snapshot_keep;
        int64_t metrics_port;
    } matcher;
    struct {
        char http_address[64];
        int64_t http_port;
        char native[CONFIG_STR_MAX];       //  order port, PLAIN (a token or an API key); "" = none
        char native_curve[CONFIG_STR_MAX]; //  order port, CURVE (a registered key pair); "" = none
        int64_t request_timeout_ms;
        int64_t max_body_bytes;
        int64_t max_in_flight;
        int64_t max_connections;             //  HTTP connections open at once
        int64_t max_connections_per_address; //  of them from one client address
        int64_t request_deadline_ms;     //  to send a whole request, from connect or last answer
        char jwt_secret[CONFIG_STR_MAX]; //  HS256 key; empty = random per start (logged)
        int64_t jwt_ttl_s;
        int password_cost; //  auth_cost_t: interactive|moderate|test
        //  Password hashing (sign-up, login, wallet change) has threads and a queue of its own,
        //  so a flood of logins never delays health, market data or history.
        int64_t password_workers;
        int64_t password_queue;    //  jobs waiting for them, past which 503 busy
        int64_t api_keys_per_user; //  unexpired API keys one user may hold
        int64_t api_key_check_ms;  //  how often native sessions' API keys are checked
        //  Logins tried per username and per client address, before any password is hashed.
        int64_t logins_per_minute;
        int64_t logins_per_minute_address;
        int64_t rate_per_s; //  token bucket per user (and per client address)
        int64_t rate_burst;
        char cors_origins[CONFIG_STR_MAX]; //  comma-separated, "*", or empty = no CORS
        char domain[CONFIG_STR_MAX]; //  named in wallet challenges; empty = the request's Host
        int64_t access_log;          //  1 = one line per request
        char broadcaster_url[CONFIG_STR_MAX]; //  where the dashboard's browser finds live data
        char currency[CONFIG_STR_MAX];        //  the payment token's label on the dashboard
    } gateway;
    struct {
        bool curve;                     //  CurveZMQ on every link between processes
        char keys_dir[CONFIG_PATH_MAX]; //  key pairs and accepted public keys (see curve.h)
    } security;
    struct {
        char url[CONFIG_STR_MAX]; //  libpq conninfo or postgresql:// URL
    } postgres;
    struct {
        char url[CONFIG_STR_MAX]; //  redis://host:port[/db]
    } redis;
    struct {
        config_bus_t bus;
        char journal_dir[CONFIG_PATH_MAX]; //  empty = <data_dir>/settler
        int64_t metrics_port;
        int fsync;                          //  journal_fsync_t of the settler journal
        char commands[CONFIG_STR_MAX];      //  ROUTER for admin commands; empty = none
        char rpc_url[CONFIG_STR_MAX];       //  Solana JSON-RPC endpoint
        int64_t rpc_timeout_ms;             //  bound on one HTTP exchange with it
        char keys_file[CONFIG_PATH_MAX];    //  platform key, mints, treasury (ledger setup JSON)
        int wallets;                        //  config_wallets_t: where user wallets come from
        int64_t retry_attempts;             //  signed transactions per settlement before failed
        int64_t confirmation_timeout_ms;    //  how long one transaction is rebroadcast
        int64_t backoff_ms;                 //  first delay after a failure; doubles (with jitter)
        int64_t backoff_cap_ms;             //  ... up to this
        int64_t max_trades_per_tx;          //  settlements packed into one transaction at most
        int64_t max_in_flight;              //  transactions sent and not yet resolved, at most
        int64_t max_transfers_per_tx;       //  deposits or withdrawals in one transaction at most
        int64_t command_resend_ms;          //  a matcher command not acknowledged goes again after
        int64_t wallet_ttl_ms;              //  a user's wallet is looked up again after this
        int64_t max_open_deposits_per_user; //  deposits of one user not yet final, at most
        int64_t grid_low_energy;            //  Wh: a grid wallet below this is "low" (metrics)
        int64_t grid_low_payment;           //  µ: likewise for its money
    } settler;
    struct {
        int64_t metrics_port;
    } persister;
    struct {
        char ws_address[64];
        int64_t ws_port;
        char xpub[CONFIG_STR_MAX];
        int64_t metrics_port;
        char origins[CONFIG_STR_MAX];     //  allowed Origin headers, comma-separated; empty = any
        int64_t queue_bytes;              //  a connection's outgoing queue, at most
        int64_t slow_grace_ms;            //  how long a client may stay behind before it is closed
        int64_t max_subscriptions;        //  per connection
        int64_t max_sessions_per_address; //  WebSocket clients open from one address
        int64_t queue_bytes_per_address;  //  answers queued for one address's clients, at most
        int64_t flush_ms;                 //  changes are sent together at most this often
        int64_t queue_ms;                 //  a client whose oldest queued update is older is behind
    } broadcaster;
    config_market_t markets[CONFIG_MARKETS_MAX];
    int market_count;
} mce_config_t;

//  Fills cfg with the defaults, then the file (when path is not NULL), then the environment.
//  Returns 0, or -1 with a message naming the key (or the file line) in err; an MCE_ variable
//  that is not a key but starts like a section's keys or is within two edits of one is such
//  an error too, naming the closest key.
int config_load (mce_config_t *cfg, const char *path, char *err, size_t errlen);
//  As config_load, with the file's contents given as text (tests, fuzzing).
int config_load_text (mce_config_t *cfg, const char *text, char *err, size_t errlen);
//  Logs every key with its effective value (secrets masked), one line each, at level
//  (log.h's MCE_LOG_*).
void config_log (const mce_config_t *cfg, const char *module, int level);
//  The market with that id, or NULL.
const config_market_t *config_market (const mce_config_t *cfg, const char *id);
//  journal folder of a service: its own setting, or <data_dir>/<name>. Returns buf.
const char *config_journal_dir (const mce_config_t *cfg, const char *service, char *buf,
                                size_t size);

#endif
