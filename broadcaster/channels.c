/*  channels — see channels.h.  */
#include "channels.h"
#include "apijson.h"
#include "auth.h"
#include "clock.h"
#include "decimal.h"
#include "grow.h"
#include "log.h"

#include <assert.h>
#include <czmq.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

typedef enum {
    C_DEPTH,
    C_TRADES,
    C_TICKER,
    C_EPOCHS,
    C_INDICATIVE,
    C_SETTLEMENTS,
    C_ORDERS,
    C_ACCOUNT,
    C_MY_SETTLEMENTS,
    C_KINDS
} s_kind_t;

static const char *const s_kind_names[C_KINDS] = {"depth",  "trades",     "ticker",
                                                  "epochs", "indicative", "settlements",
                                                  "orders", "account",    "my_settlements"};

//  A user's own channels: orders, account (balances) and my_settlements go to a valid token of
//  that user only, never to monitors. Public channels name no user.
static bool s_private (int kind)
{
    return kind == C_ORDERS || kind == C_ACCOUNT || kind == C_MY_SETTLEMENTS;
}

//  Channels that follow the settler's stream s rather than the matcher's m.
static bool s_on_stream_s (int kind)
{
    return kind == C_SETTLEMENTS || kind == C_MY_SETTLEMENTS;
}

#define S_KEY_MAX           160
#define S_MARKET_MAX        (PROTO_STR32_MAX + 1)
#define S_USER_MAX          (PROTO_STR64_MAX + 1)
#define S_TRADES_SNAPSHOT   50                      //  trades in a trades snapshot
#define S_EPOCHS_SNAPSHOT   20                      //  recent epochs in an epochs snapshot
#define S_ORDERS_SNAPSHOT   100                     //  a user's orders in an orders snapshot
#define S_SETTLEMENTS_KEPT  100                     //  per market, for the settlements snapshot
#define S_SNAPSHOT_CACHE_NS (250 * MCE_NS_PER_MSEC) //  a rendered snapshot is reused this long

typedef struct {
    int side; //  0 bids, 1 asks
    int64_t price, qty;
    uint32_t count;
} s_change_t;

struct _channel_t {
    char key[S_KEY_MAX]; //  "depth/campus-1/1234", "trades/campus-1", "orders/alice"
    s_kind_t kind;
    char market[S_MARKET_MAX]; //  empty for orders
    int64_t epoch;             //  depth only
    char user[S_USER_MAX];     //  orders only
    uint64_t last_seq;         //  seq of the last update (0: none since it was created)
    ws_sub_t *subs;
    size_t sub_count;
    //  Changes since the last update, sent together at the next flush.
    bool pending;
    uint64_t pending_seq; //  the seq of the last event among them
    s_change_t *levels;   //  depth: the levels changed (the latest word on each)
    size_t level_count, level_cap;
    json_t *rows;  //  trades: the new trades, oldest first
    uint64_t *ids; //  orders, epochs, settlements: which ones changed
    size_t id_count, id_cap;
    ws_msg_t *snap; //  the last snapshot rendered, reused while current
    uint64_t snap_seq;
    int64_t snap_ns;
};

//  The latest state of one settlement, merged from its records.
typedef struct {
    uint64_t settlement_id, trade_id, seq;
    char market[S_MARKET_MAX];
    int64_t epoch, ts, value, fee, qty, price;
    uint32_t attempts;
    proto_settle_state_t state;
    char signature[PROTO_STR96_MAX + 1];
    char error[PROTO_STR128_MAX + 1];
    char buyer[S_USER_MAX], seller[S_USER_MAX];
} s_settlement_t;

typedef struct {
    s_settlement_t ring[S_SETTLEMENTS_KEPT]; //  newest at next - 1
    size_t count, next;
} s_settlements_t;

struct _channels_t {
    const mce_config_t *cfg;
    readmodel_t *model;
    channels_publish_fn *publish;
    void *arg;
    zhashx_t *channels;           //  key -> channel_t (owned)
    s_settlements_t *settlements; //  per market of cfg
    uint64_t s_seq;               //  the last settler event seen
    int monitors;
    size_t subscriptions;
    uint64_t updates;
    channel_t **pending; //  channels with changes not yet sent
    size_t pending_count, pending_cap;
};

static void s_channel_free (void **item)
{
    channel_t *ch = *item;
    if (ch) {
        assert (!ch->subs);
        ws_msg_unref (&ch->snap);
        free (ch->levels);
        json_decref (ch->rows);
        free (ch->ids);
        free (ch);
    }
    *item = NULL;
}

channels_t *channels_new (const mce_config_t *cfg, readmodel_t *model, channels_publish_fn *publish,
                          void *arg)
{
    assert (cfg && model && publish);
    channels_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->model = model;
    self->publish = publish;
    self->arg = arg;
    self->channels = zhashx_new ();
    self->settlements =
        calloc (cfg->market_count ? (size_t) cfg->market_count : 1, sizeof *self->settlements);
    if (!self->channels || !self->settlements) {
        channels_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->channels, s_channel_free);
    return self;
}

void channels_destroy (channels_t **self_p)
{
    assert (self_p);
    channels_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->channels);
    free (self->settlements);
    free (self->pending);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Rendering

//  {"type", "channel", key fields, "seq", ["prev"], "data"} as one shared message; data is
//  stolen. NULL when memory runs out.
static ws_msg_t *s_message (const channel_t *ch, const char *type, uint64_t seq, bool with_prev,
                            uint64_t prev, json_t *data)
{
    json_t *root = json_object ();
    json_object_set_new (root, "type", json_string (type));
    json_object_set_new (root, "channel", json_string (s_kind_names[ch->kind]));
    if (s_private (ch->kind))
        json_object_set_new (root, "user", json_string (ch->user));
    else
        json_object_set_new (root, "market", json_string (ch->market));
    if (ch->kind == C_DEPTH)
        json_object_set_new (root, "epoch", json_integer (ch->epoch));
    json_object_set_new (root, "seq", json_integer ((json_int_t) seq));
    if (with_prev)
        json_object_set_new (root, "prev", json_integer ((json_int_t) prev));
    json_object_set_new (root, "data", data ? data : json_object ());
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    if (!text)
        return NULL;
    ws_msg_t *msg = ws_msg_new (text, strlen (text));
    free (text);
    return msg;
}

//  A control message for one session: {"type": type, ...fields}, fields stolen.
static void s_control (ws_session_t *session, json_t *root, int64_t now_ns)
{
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    ws_msg_t *msg = text ? ws_msg_new (text, strlen (text)) : NULL;
    free (text);
    if (msg)
        ws_session_push (session, msg, NULL, now_ns);
    ws_msg_unref (&msg);
}

static void s_error (ws_session_t *session, int64_t now_ns, const char *code, const char *field,
                     const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

static void s_error (ws_session_t *session, int64_t now_ns, const char *code, const char *field,
                     const char *fmt, ...)
{
    char message[256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    json_t *root = json_object ();
    json_object_set_new (root, "type", json_string ("error"));
    json_object_set_new (root, "code", json_string (code));
    json_object_set_new (root, "message", json_string (message));
    json_object_set_new (root, "field", apijson_text_or_null (field));
    s_control (session, root, now_ns);
}

//  Moves key out of a read-model answer into data (both borrowed/stolen as json does).
static void s_take (json_t *data, json_t *answer, const char *key)
{
    json_t *value = answer ? json_object_get (answer, key) : NULL;
    json_object_set (data, key, value ? value : json_array ());
}

static s_settlements_t *s_settlements_of (channels_t *self, const char *market)
{
    for (int i = 0; i < self->cfg->market_count; i++)
        if (strcmp (self->cfg->markets[i].id, market) == 0)
            return &self->settlements[i];
    return NULL;
}

static const s_settlement_t *s_settlement_find (const s_settlements_t *kept, uint64_t id)
{
    for (size_t i = 0; kept && i < kept->count; i++)
        if (kept->ring[i].settlement_id == id)
            return &kept->ring[i];
    return NULL;
}

//  A settlement as a channel shows it. The public channel names no party; a user's own
//  (`user` not NULL) says which side of the trade the user was on.
static json_t *s_settlement_json (const s_settlement_t *s, const char *user)
{
    json_t *row = json_object ();
    json_object_set_new (row, "settlement_id", apijson_id (s->settlement_id));
    if (user)
        json_object_set_new (row, "side",
                             json_string (strcmp (s->buyer, user) == 0 ? "buy" : "sell"));
    json_object_set_new (row, "market", json_string (s->market));
    json_object_set_new (row, "trade_id", apijson_id (s->trade_id));
    json_object_set_new (row, "epoch", json_integer (s->epoch));
    json_object_set_new (row, "state", apijson_text_or_null (proto_settle_state_name (s->state)));
    json_object_set_new (row, "signature", apijson_text_or_null (s->signature));
    json_object_set_new (row, "attempts", json_integer (s->attempts));
    json_object_set_new (row, "energy_amount", s->qty ? apijson_kwh (s->qty) : json_null ());
    json_object_set_new (row, "price", s->price ? apijson_price (s->price) : json_null ());
    json_object_set_new (row, "value", s->value ? apijson_money (s->value) : json_null ());
    json_object_set_new (row, "fee", apijson_money (s->fee));
    json_object_set_new (row, "error", apijson_text_or_null (s->error));
    json_object_set_new (row, "time", apijson_time (s->ts));
    return row;
}

static int s_newest_first (const void *a, const void *b)
{
    const s_settlement_t *x = *(const s_settlement_t *const *) a;
    const s_settlement_t *y = *(const s_settlement_t *const *) b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

//  The user's settlements among those kept (the last S_SETTLEMENTS_KEPT of each market),
//  newest first: a snapshot for the user's own channel. Older ones are in GET
//  /api/trades/my-history.
static json_t *s_my_settlements (channels_t *self, const char *user)
{
    size_t cap = (size_t) self->cfg->market_count * S_SETTLEMENTS_KEPT, n = 0;
    const s_settlement_t **mine = calloc (cap ? cap : 1, sizeof *mine);
    json_t *list = json_array ();
    if (!mine)
        return list;
    for (int m = 0; m < self->cfg->market_count; m++) {
        const s_settlements_t *kept = &self->settlements[m];
        for (size_t i = 0; i < kept->count; i++)
            if (strcmp (kept->ring[i].buyer, user) == 0 || strcmp (kept->ring[i].seller, user) == 0)
                mine[n++] = &kept->ring[i];
    }
    qsort (mine, n, sizeof *mine, s_newest_first);
    for (size_t i = 0; i < n; i++)
        json_array_append_new (list, s_settlement_json (mine[i], user));
    free (mine);
    return list;
}

//  The snapshot's data and the seq it is at.
static json_t *s_snapshot_data (channels_t *self, const channel_t *ch, int64_t now_ns,
                                uint64_t *seq)
{
    *seq = s_on_stream_s (ch->kind) ? self->s_seq : readmodel_seq (self->model);
    json_t *data = json_object ();
    switch (ch->kind) {
        case C_DEPTH: {
            json_t *book = readmodel_book (self->model, ch->market, ch->epoch);
            s_take (data, book, "bids");
            s_take (data, book, "asks");
            json_decref (book);
            break;
        }
        case C_TRADES: {
            json_t *trades = readmodel_trades (self->model, ch->market, S_TRADES_SNAPSHOT);
            s_take (data, trades, "trades");
            json_decref (trades);
            break;
        }
        case C_TICKER:
            json_decref (data);
            data = readmodel_stats (self->model, ch->market, clock_wall_ns ());
            break;
        case C_EPOCHS: {
            json_t *current = readmodel_epoch_status (self->model, ch->market, clock_wall_ns ());
            json_t *recent = readmodel_epochs (self->model, ch->market, S_EPOCHS_SNAPSHOT, 0);
            json_object_set_new (data, "current", current ? current : json_null ());
            json_object_set (data, "recent",
                             recent && json_object_get (recent, "epochs")
                                 ? json_object_get (recent, "epochs")
                                 : json_array ());
            json_decref (recent);
            break;
        }
        case C_INDICATIVE: {
            json_t *list = readmodel_indicatives (self->model, ch->market);
            json_object_set_new (data, "indicatives", list ? list : json_array ());
            break;
        }
        case C_SETTLEMENTS: {
            json_t *list = json_array ();
            const s_settlements_t *kept = s_settlements_of (self, ch->market);
            for (size_t i = 0; kept && i < kept->count; i++)
                json_array_append_new (
                    list,
                    s_settlement_json (
                        &kept->ring[(kept->next + S_SETTLEMENTS_KEPT - 1 - i) % S_SETTLEMENTS_KEPT],
                        NULL));
            json_object_set_new (data, "settlements", list);
            break;
        }
        case C_MY_SETTLEMENTS:
            json_object_set_new (data, "settlements", s_my_settlements (self, ch->user));
            break;
        case C_ORDERS: {
            readmodel_order_filter_t filter = {
                .market = NULL, .epoch = -1, .status = NULL, .limit = S_ORDERS_SNAPSHOT};
            json_t *orders = readmodel_user_orders (self->model, ch->user, &filter);
            s_take (data, orders, "orders");
            json_decref (orders);
            break;
        }
        case C_ACCOUNT: {
            json_t *balances = readmodel_user_balances (self->model, ch->user);
            s_take (data, balances, "balances");
            json_decref (balances);
            break;
        }
        default:
            break;
    }
    (void) now_ns;
    return data;
}

//  The channel's snapshot message, rendered or reused. A new reference, or NULL.
static ws_msg_t *s_snapshot (channels_t *self, channel_t *ch, int64_t now_ns)
{
    uint64_t seq = s_on_stream_s (ch->kind) ? self->s_seq : readmodel_seq (self->model);
    if (ch->snap && ch->snap_seq == seq && now_ns - ch->snap_ns < S_SNAPSHOT_CACHE_NS)
        return ws_msg_ref (ch->snap);
    json_t *data = s_snapshot_data (self, ch, now_ns, &seq);
    ws_msg_t *msg = s_message (ch, "snapshot", seq, false, 0, data);
    if (!msg)
        return NULL;
    ws_msg_unref (&ch->snap);
    ch->snap = ws_msg_ref (msg);
    ch->snap_seq = seq;
    ch->snap_ns = now_ns;
    return msg;
}

//  ---------------------------------------------------------------------------------------
//  The registry

static void s_key (char *key, s_kind_t kind, const char *market, int64_t epoch, const char *user)
{
    if (s_private (kind))
        snprintf (key, S_KEY_MAX, "%s/%s", s_kind_names[kind], user);
    else if (kind == C_DEPTH)
        snprintf (key, S_KEY_MAX, "depth/%s/%lld", market, (long long) epoch);
    else
        snprintf (key, S_KEY_MAX, "%s/%s", s_kind_names[kind], market);
}

static channel_t *s_find (channels_t *self, s_kind_t kind, const char *market, int64_t epoch,
                          const char *user)
{
    char key[S_KEY_MAX];
    s_key (key, kind, market, epoch, user);
    return zhashx_lookup (self->channels, key);
}

static channel_t *s_get (channels_t *self, s_kind_t kind, const char *market, int64_t epoch,
                         const char *user)
{
    channel_t *ch = s_find (self, kind, market, epoch, user);
    if (ch)
        return ch;
    ch = calloc (1, sizeof *ch);
    if (!ch)
        return NULL;
    s_key (ch->key, kind, market, epoch, user);
    ch->kind = kind;
    snprintf (ch->market, sizeof ch->market, "%s", market ? market : "");
    ch->epoch = epoch;
    snprintf (ch->user, sizeof ch->user, "%s", user ? user : "");
    if (zhashx_insert (self->channels, ch->key, ch)) {
        free (ch);
        return NULL;
    }
    return ch;
}

//  The channel an event concerns, when anyone follows it (a monitor follows every public one).
static channel_t *s_wanted (channels_t *self, s_kind_t kind, const char *market, int64_t epoch,
                            const char *user)
{
    if (self->monitors > 0 && !s_private (kind))
        return s_get (self, kind, market, epoch, user);
    return s_find (self, kind, market, epoch, user);
}

//  A channel with no subscriber left goes, unless monitors keep public ones.
static void s_maybe_forget (channels_t *self, channel_t *ch)
{
    if (ch->sub_count == 0 && !ch->pending && (self->monitors == 0 || s_private (ch->kind)))
        zhashx_delete (self->channels, ch->key);
}

static void s_unlink (channels_t *self, ws_sub_t *sub)
{
    channel_t *ch = sub->channel;
    if (sub->ch_prev)
        sub->ch_prev->ch_next = sub->ch_next;
    else
        ch->subs = sub->ch_next;
    if (sub->ch_next)
        sub->ch_next->ch_prev = sub->ch_prev;
    ch->sub_count--;
    self->subscriptions--;
    ws_session_purge (sub->session, sub);
}

void channels_drop_session (channels_t *self, ws_session_t *session)
{
    while (session->subs) {
        ws_sub_t *sub = session->subs;
        session->subs = sub->next;
        channel_t *ch = sub->channel;
        s_unlink (self, sub);
        free (sub);
        s_maybe_forget (self, ch);
    }
    session->sub_count = 0;
}

bool channels_catch_up (channels_t *self, ws_session_t *session, int64_t now_ns)
{
    for (ws_sub_t *sub = session->subs; sub; sub = sub->next) {
        if (!sub->stale)
            continue;
        ws_msg_t *snap = s_snapshot (self, sub->channel, now_ns);
        if (!snap)
            return false;
        sub->stale = false;
        sub->snap_seq = sub->channel->snap_seq;
        ws_session_push (session, snap, NULL, now_ns);
        ws_msg_unref (&snap);
    }
    session->behind_since = 0;
    return true;
}

//  ---------------------------------------------------------------------------------------
//  Client requests

static bool s_market_known (channels_t *self, const char *market)
{
    for (int i = 0; i < self->cfg->market_count; i++)
        if (strcmp (self->cfg->markets[i].id, market) == 0)
            return true;
    return false;
}

static void s_subscribed (channels_t *self, ws_session_t *session, channel_t *ch, int64_t expires_s,
                          int64_t now_ns)
{
    ws_sub_t *sub = NULL;
    for (ws_sub_t *s = session->subs; s && !sub; s = s->next)
        if (s->channel == ch)
            sub = s;
    if (!sub) {
        if (session->sub_count >= (int) self->cfg->broadcaster.max_subscriptions) {
            s_error (session, now_ns, "too_many_subscriptions", "channel",
                     "at most %lld subscriptions per connection",
                     (long long) self->cfg->broadcaster.max_subscriptions);
            s_maybe_forget (self, ch);
            return;
        }
        sub = calloc (1, sizeof *sub);
        if (!sub)
            return;
        sub->channel = ch;
        sub->session = session;
        sub->ch_next = ch->subs;
        if (ch->subs)
            ch->subs->ch_prev = sub;
        ch->subs = sub;
        ch->sub_count++;
        sub->next = session->subs;
        session->subs = sub;
        session->sub_count++;
        self->subscriptions++;
    }
    else //  subscribing again: the updates still queued are superseded by the snapshot
        ws_session_purge (session, sub);
    sub->stale = false;
    sub->expires_s = expires_s;
    if (s_private (ch->kind)) {
        json_t *ack = json_object ();
        json_object_set_new (ack, "type", json_string ("subscribed"));
        json_object_set_new (ack, "channel", json_string (s_kind_names[ch->kind]));
        json_object_set_new (ack, "user", json_string (ch->user));
        s_control (session, ack, now_ns);
    }
    ws_msg_t *snap = s_snapshot (self, ch, now_ns);
    if (snap) {
        sub->snap_seq = ch->snap_seq;
        ws_session_push (session, snap, NULL, now_ns);
    }
    ws_msg_unref (&snap);
}

//  Takes sub off its session and its channel (the channel may then go: the caller decides).
static void s_remove (channels_t *self, ws_session_t *session, ws_sub_t *sub)
{
    ws_sub_t **link = &session->subs;
    while (*link && *link != sub)
        link = &(*link)->next;
    if (*link)
        *link = sub->next;
    session->sub_count--;
    s_unlink (self, sub);
    free (sub);
}

static void s_unsubscribed (channels_t *self, ws_session_t *session, channel_t *ch, int64_t now_ns)
{
    ws_sub_t **link = &session->subs;
    while (*link && (*link)->channel != ch)
        link = &(*link)->next;
    if (!*link) {
        s_error (session, now_ns, "bad_request", "channel", "not subscribed to %s", ch->key);
        return;
    }
    s_remove (self, session, *link);
    json_t *ack = json_object ();
    json_object_set_new (ack, "type", json_string ("unsubscribed"));
    json_object_set_new (ack, "channel", json_string (s_kind_names[ch->kind]));
    if (s_private (ch->kind))
        json_object_set_new (ack, "user", json_string (ch->user));
    else
        json_object_set_new (ack, "market", json_string (ch->market));
    if (ch->kind == C_DEPTH)
        json_object_set_new (ack, "epoch", json_integer (ch->epoch));
    s_control (session, ack, now_ns);
    s_maybe_forget (self, ch);
}

void channels_request (channels_t *self, ws_session_t *session, const char *text, size_t len,
                       int64_t now_ns)
{
    json_error_t jerr;
    json_t *req = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object (req)) {
        s_error (session, now_ns, "bad_json", NULL, "expected a JSON object: %s",
                 req ? "not an object" : jerr.text);
        json_decref (req);
        return;
    }
    static const char *const allowed[] = {"op", "channel", "market", "epoch", "token", NULL};
    const char *key;
    json_t *value;
    json_object_foreach (req, key, value)
    {
        bool known = false;
        for (int i = 0; allowed[i] && !known; i++)
            known = strcmp (allowed[i], key) == 0;
        if (!known) {
            s_error (session, now_ns, "bad_request", key, "unknown field \"%.64s\"", key);
            json_decref (req);
            return;
        }
    }
    const char *op = json_string_value (json_object_get (req, "op"));
    const char *name = json_string_value (json_object_get (req, "channel"));
    const char *market = json_string_value (json_object_get (req, "market"));
    json_t *epoch_json = json_object_get (req, "epoch");
    const char *token = json_string_value (json_object_get (req, "token"));
    int kind = -1;
    for (int k = 0; name && k < C_KINDS; k++)
        if (strcmp (s_kind_names[k], name) == 0)
            kind = k;
    bool subscribe = op && strcmp (op, "subscribe") == 0;
    if (!op || (!subscribe && strcmp (op, "unsubscribe") != 0))
        s_error (session, now_ns, "bad_request", "op",
                 "op must be \"subscribe\" or \"unsubscribe\"");
    else if (kind < 0)
        s_error (session, now_ns, "bad_request", "channel",
                 "channel must be depth, trades, ticker, epochs, indicative, settlements, orders, "
                 "account or my_settlements");
    else if (!s_private (kind) && !market)
        s_error (session, now_ns, "bad_request", "market", "market is required");
    else if (!s_private (kind) && !s_market_known (self, market))
        s_error (session, now_ns, "unknown_market", "market", "no market \"%.64s\"", market);
    else if (epoch_json && (kind != C_DEPTH || !json_is_integer (epoch_json) ||
                            json_integer_value (epoch_json) < 0))
        s_error (session, now_ns, "bad_request", "epoch",
                 "epoch is a non-negative integer, for the depth channel only");
    else if (s_private (kind) && !token)
        s_error (session, now_ns, "bad_token", "token", "the %s channel needs a token", name);
    else {
        int64_t epoch = 0, expires_s = 0;
        char user[S_USER_MAX] = "";
        bool ok = true;
        if (kind == C_DEPTH) {
            //  No epoch: the current one, as GET /api/market/depth resolves it.
            epoch = epoch_json ? (int64_t) json_integer_value (epoch_json) : -1;
            if (epoch < 0) {
                json_t *book = readmodel_depth (self->model, market, -1, 1);
                epoch = book ? (int64_t) json_integer_value (json_object_get (book, "epoch")) : 0;
                json_decref (book);
            }
        }
        if (s_private (kind)) {
            const char *secret = self->cfg->gateway.jwt_secret;
            auth_claims_t claims;
            const char *reason = "the token is refused";
            if (!*secret) {
                s_error (session, now_ns, "bad_token", "token",
                         "this broadcaster has no gateway.jwt_secret to check tokens with");
                ok = false;
            }
            //  Leaving needs the token's signature, not its freshness: an expired token may
            //  still unsubscribe (its updates stopped when it expired).
            else if (auth_jwt_verify (
                         (const uint8_t *) secret, strlen (secret), token, strlen (token),
                         subscribe ? clock_wall_ns () / MCE_NS_PER_SEC : 0, &claims, &reason)) {
                s_error (session, now_ns, "bad_token", "token", "%s", reason);
                ok = false;
            }
            else {
                snprintf (user, sizeof user, "%s", claims.sub);
                expires_s = claims.exp;
            }
        }
        if (ok) {
            channel_t *ch = subscribe ? s_get (self, (s_kind_t) kind, market, epoch, user)
                                      : s_find (self, (s_kind_t) kind, market, epoch, user);
            if (subscribe && ch)
                s_subscribed (self, session, ch, expires_s, now_ns);
            else if (!subscribe && ch)
                s_unsubscribed (self, session, ch, now_ns);
            else if (!subscribe)
                s_error (session, now_ns, "bad_request", "channel", "not subscribed to %s/%s", name,
                         s_private (kind) ? user : market);
        }
    }
    json_decref (req);
}

//  ---------------------------------------------------------------------------------------
//  Events

//  Sends an update on ch (data stolen) at seq to every subscriber and, for public channels,
//  to the monitors.
static void s_update (channels_t *self, channel_t *ch, uint64_t seq, json_t *data, int64_t now_ns)
{
    ws_msg_t *msg = s_message (ch, "update", seq, true, ch->last_seq, data);
    ch->last_seq = seq;
    if (!msg)
        return;
    int64_t wall_s = s_private (ch->kind) ? clock_wall_ns () / MCE_NS_PER_SEC : 0;
    for (ws_sub_t *sub = ch->subs, *next; sub; sub = next) {
        next = sub->ch_next;
        if (sub->expires_s && wall_s >= sub->expires_s) {
            //  A user's orders go to whoever holds a valid token only: this one ran out.
            ws_session_t *session = sub->session;
            s_remove (self, session, sub);
            s_error (session, now_ns, "bad_token", "token",
                     "the token expired: the %s channel ends; subscribe with a new one",
                     s_kind_names[ch->kind]);
            continue;
        }
        //  Changes its snapshot already holds (it was taken after they were applied, before
        //  this flush) are not sent again.
        if (seq > sub->snap_seq)
            ws_session_push (sub->session, msg, sub, now_ns);
    }
    if (!s_private (ch->kind) && self->monitors > 0) {
        char topic[S_KEY_MAX];
        snprintf (topic, sizeof topic, "%s.%s", s_kind_names[ch->kind], ch->market);
        self->publish (self->arg, topic, msg);
    }
    self->updates++;
    ws_msg_unref (&msg);
}

//  Notes that ch has a change from the event at seq, to go out with the next flush.
static bool s_pend (channels_t *self, channel_t *ch, uint64_t seq)
{
    if (!ch->pending) {
        if (!grow_to ((void **) &self->pending, &self->pending_cap, self->pending_count + 1,
                      sizeof *self->pending))
            return false;
        self->pending[self->pending_count++] = ch;
        ch->pending = true;
    }
    ch->pending_seq = seq;
    return true;
}

static void s_pend_id (channels_t *self, channel_t *ch, uint64_t seq, uint64_t id)
{
    if (!s_pend (self, ch, seq))
        return;
    for (size_t i = 0; i < ch->id_count; i++)
        if (ch->ids[i] == id)
            return;
    if (grow_to ((void **) &ch->ids, &ch->id_cap, ch->id_count + 1, sizeof *ch->ids))
        ch->ids[ch->id_count++] = id;
}

static void s_pend_level (channels_t *self, channel_t *ch, uint64_t seq,
                          const proto_book_level_t *l)
{
    if (!s_pend (self, ch, seq))
        return;
    int side = l->side == PROTO_SIDE_BUY ? 0 : 1;
    s_change_t *change = NULL;
    for (size_t i = 0; i < ch->level_count && !change; i++)
        if (ch->levels[i].side == side && ch->levels[i].price == l->price)
            change = &ch->levels[i];
    if (!change) {
        if (!grow_to ((void **) &ch->levels, &ch->level_cap, ch->level_count + 1,
                      sizeof *ch->levels))
            return;
        change = &ch->levels[ch->level_count++];
        change->side = side;
        change->price = l->price;
    }
    change->qty = l->qty;
    change->count = l->count;
}

static void s_pend_order (channels_t *self, const char *user, uint64_t order_id, uint64_t seq)
{
    channel_t *ch = s_find (self, C_ORDERS, NULL, 0, user);
    if (ch)
        s_pend_id (self, ch, seq, order_id);
}

static void s_pend_ticker (channels_t *self, const char *market, uint64_t seq)
{
    channel_t *ch = s_wanted (self, C_TICKER, market, 0, NULL);
    if (ch)
        s_pend (self, ch, seq);
}

void channels_apply_m (channels_t *self, const proto_msg_t *event, int64_t now_ns)
{
    assert (self);
    (void) now_ns;
    uint64_t seq = proto_msg_seq (event);
    switch (event->kind) {
        case PROTO_book_level: {
            const proto_book_level_t *l = &event->book_level;
            channel_t *ch = s_wanted (self, C_DEPTH, l->market, l->epoch, NULL);
            if (ch)
                s_pend_level (self, ch, seq, l);
            s_pend_ticker (self, l->market, seq);
            break;
        }
        case PROTO_trade: {
            const proto_trade_t *t = &event->trade;
            channel_t *ch = s_wanted (self, C_TRADES, t->market, 0, NULL);
            if (ch && s_pend (self, ch, seq)) {
                //  The trade as the read model shows it, now that it has it.
                json_t *trades = readmodel_trades (self->model, t->market, 1);
                json_t *row =
                    trades ? json_array_get (json_object_get (trades, "trades"), 0) : NULL;
                if (row) {
                    if (!ch->rows)
                        ch->rows = json_array ();
                    json_array_append (ch->rows, row);
                }
                json_decref (trades);
            }
            s_pend_ticker (self, t->market, seq);
            s_pend_order (self, t->buyer, t->buy_order_id, seq);
            s_pend_order (self, t->seller, t->sell_order_id, seq);
            break;
        }
        case PROTO_order_accepted:
            s_pend_order (self, event->order_accepted.user, event->order_accepted.order_id, seq);
            break;
        case PROTO_order_cancelled:
            s_pend_order (self, event->order_cancelled.user, event->order_cancelled.order_id, seq);
            break;
        case PROTO_order_expired:
            s_pend_order (self, event->order_expired.user, event->order_expired.order_id, seq);
            break;
        case PROTO_order_amended:
            s_pend_order (self, event->order_amended.user, event->order_amended.order_id, seq);
            break;
        case PROTO_epoch_state: {
            const proto_epoch_state_t *e = &event->epoch_state;
            channel_t *ch = s_wanted (self, C_EPOCHS, e->market, 0, NULL);
            if (ch)
                s_pend_id (self, ch, seq, (uint64_t) e->epoch);
            s_pend_ticker (self, e->market, seq);
            break;
        }
        case PROTO_auction: { //  the epoch's last_auction changed
            const proto_auction_t *a = &event->auction;
            channel_t *ch = s_wanted (self, C_EPOCHS, a->market, 0, NULL);
            if (ch)
                s_pend_id (self, ch, seq, (uint64_t) a->epoch);
            break;
        }
        case PROTO_indicative: {
            const proto_indicative_t *x = &event->indicative;
            channel_t *ch = s_wanted (self, C_INDICATIVE, x->market, 0, NULL);
            if (ch)
                s_pend_id (self, ch, seq, (uint64_t) x->epoch);
            break;
        }
        case PROTO_market_state:
            s_pend_ticker (self, event->market_state.market, seq);
            break;
        case PROTO_balance: {
            channel_t *ch = s_find (self, C_ACCOUNT, NULL, 0, event->balance.user);
            if (ch)
                s_pend (self, ch, seq);
            break;
        }
        default:
            break;
    }
}

void channels_apply_s (channels_t *self, const proto_msg_t *event, int64_t now_ns)
{
    assert (self);
    (void) now_ns;
    if (event->kind != PROTO_settlement)
        return;
    const proto_settlement_t *e = &event->settlement;
    self->s_seq = e->seq;
    s_settlements_t *kept = s_settlements_of (self, e->market);
    if (!kept)
        return;
    s_settlement_t *s = (s_settlement_t *) s_settlement_find (kept, e->settlement_id);
    if (!s) {
        //  A settlement not kept (new, or evicted): it takes the oldest place.
        s = &kept->ring[kept->next];
        memset (s, 0, sizeof *s);
        kept->next = (kept->next + 1) % S_SETTLEMENTS_KEPT;
        if (kept->count < S_SETTLEMENTS_KEPT)
            kept->count++;
        s->settlement_id = e->settlement_id;
        snprintf (s->market, sizeof s->market, "%s", e->market);
    }
    s->trade_id = e->trade_id;
    s->seq = e->seq;
    s->epoch = e->epoch;
    s->ts = e->ts;
    s->state = e->state;
    s->attempts = e->attempts;
    //  Fields a record carries only when it knows them: keep what earlier records said.
    if (e->value)
        s->value = e->value;
    if (e->fee)
        s->fee = e->fee;
    if (e->qty)
        s->qty = e->qty;
    if (e->price)
        s->price = e->price;
    if (e->signature[0])
        snprintf (s->signature, sizeof s->signature, "%s", e->signature);
    snprintf (s->error, sizeof s->error, "%s", e->error);
    if (e->buyer[0])
        snprintf (s->buyer, sizeof s->buyer, "%s", e->buyer);
    if (e->seller[0])
        snprintf (s->seller, sizeof s->seller, "%s", e->seller);
    channel_t *ch = s_wanted (self, C_SETTLEMENTS, e->market, 0, NULL);
    if (ch)
        s_pend_id (self, ch, e->seq, e->settlement_id);
    //  and each party's own channel (a self-trade would be one user twice: once is enough)
    ch = s->buyer[0] ? s_find (self, C_MY_SETTLEMENTS, NULL, 0, s->buyer) : NULL;
    if (ch)
        s_pend_id (self, ch, e->seq, e->settlement_id);
    ch = s->seller[0] && strcmp (s->seller, s->buyer) != 0
             ? s_find (self, C_MY_SETTLEMENTS, NULL, 0, s->seller)
             : NULL;
    if (ch)
        s_pend_id (self, ch, e->seq, e->settlement_id);
}

static int s_change_order (const void *a, const void *b)
{
    const s_change_t *x = a, *y = b;
    if (x->side != y->side)
        return x->side - y->side;
    //  best first: bids by price descending, asks ascending
    if (x->price == y->price)
        return 0;
    return (x->price < y->price) == (x->side == 0) ? 1 : -1;
}

//  The update's data: what changed, in the snapshot's shape.
static json_t *s_changes (channels_t *self, channel_t *ch, int64_t now_ns)
{
    json_t *data = json_object ();
    switch (ch->kind) {
        case C_DEPTH: {
            qsort (ch->levels, ch->level_count, sizeof *ch->levels, s_change_order);
            json_t *sides[2] = {json_array (), json_array ()};
            for (size_t i = 0; i < ch->level_count; i++) {
                const s_change_t *c = &ch->levels[i];
                json_t *row = json_object ();
                json_object_set_new (row, "price", apijson_price (c->price));
                json_object_set_new (row, "energy_amount", apijson_kwh (c->qty));
                json_object_set_new (row, "orders", json_integer (c->count));
                json_array_append_new (sides[c->side], row);
            }
            json_object_set_new (data, "bids", sides[0]);
            json_object_set_new (data, "asks", sides[1]);
            ch->level_count = 0;
            break;
        }
        case C_TRADES: {
            json_t *list = json_array ();
            for (size_t i = ch->rows ? json_array_size (ch->rows) : 0; i > 0; i--)
                json_array_append (list, json_array_get (ch->rows, i - 1));
            json_object_set_new (data, "trades", list);
            json_decref (ch->rows);
            ch->rows = NULL;
            break;
        }
        case C_TICKER:
            json_decref (data);
            data = readmodel_stats (self->model, ch->market, clock_wall_ns ());
            break;
        case C_EPOCHS: {
            json_t *list = json_array ();
            for (size_t i = 0; i < ch->id_count; i++) {
                json_t *row = readmodel_epoch (self->model, ch->market, (int64_t) ch->ids[i]);
                if (row)
                    json_array_append_new (list, row);
            }
            json_object_set_new (data, "epochs", list);
            break;
        }
        case C_INDICATIVE: {
            json_t *list = json_array ();
            for (size_t i = 0; i < ch->id_count; i++) {
                json_t *row = readmodel_indicative (self->model, ch->market, (int64_t) ch->ids[i]);
                if (row)
                    json_array_append_new (list, row);
            }
            json_object_set_new (data, "indicatives", list);
            break;
        }
        case C_SETTLEMENTS: {
            json_t *list = json_array ();
            const s_settlements_t *kept = s_settlements_of (self, ch->market);
            for (size_t i = 0; i < ch->id_count; i++) {
                const s_settlement_t *s = s_settlement_find (kept, ch->ids[i]);
                if (s)
                    json_array_append_new (list, s_settlement_json (s, NULL));
            }
            json_object_set_new (data, "settlements", list);
            break;
        }
        case C_MY_SETTLEMENTS: {
            json_t *list = json_array ();
            for (size_t i = 0; i < ch->id_count; i++)
                for (int m = 0; m < self->cfg->market_count; m++) {
                    const s_settlement_t *s = s_settlement_find (&self->settlements[m], ch->ids[i]);
                    if (s)
                        json_array_append_new (list, s_settlement_json (s, ch->user));
                }
            json_object_set_new (data, "settlements", list);
            break;
        }
        case C_ORDERS: {
            json_t *list = json_array ();
            for (size_t i = 0; i < ch->id_count; i++) {
                json_t *order = readmodel_order (self->model, ch->ids[i], NULL);
                if (order)
                    json_array_append_new (list, order);
            }
            json_object_set_new (data, "orders", list);
            break;
        }
        case C_ACCOUNT: {
            //  Balances are small: an update carries them whole, as the snapshot does.
            json_t *balances = readmodel_user_balances (self->model, ch->user);
            s_take (data, balances, "balances");
            json_decref (balances);
            break;
        }
        default:
            break;
    }
    ch->id_count = 0;
    (void) now_ns;
    return data;
}

bool channels_pending (channels_t *self)
{
    return self->pending_count > 0;
}

void channels_flush (channels_t *self, int64_t now_ns)
{
    assert (self);
    for (size_t i = 0; i < self->pending_count; i++) {
        channel_t *ch = self->pending[i];
        ch->pending = false;
        json_t *data = s_changes (self, ch, now_ns);
        if (data && (ch->sub_count > 0 || (self->monitors > 0 && !s_private (ch->kind))))
            s_update (self, ch, ch->pending_seq, data, now_ns);
        else {
            json_decref (data);
            ch->last_seq = ch->pending_seq;
        }
        s_maybe_forget (self, ch);
    }
    self->pending_count = 0;
}

//  ---------------------------------------------------------------------------------------
//  Monitors

void channels_set_monitors (channels_t *self, int count)
{
    assert (self);
    self->monitors = count;
    if (count > 0)
        return;
    //  The last monitor left: channels kept only for monitors go.
    zlistx_t *idle = zlistx_new ();
    for (channel_t *ch = zhashx_first (self->channels); ch; ch = zhashx_next (self->channels))
        if (ch->sub_count == 0 && !ch->pending)
            zlistx_add_end (idle, ch->key);
    for (const char *key = zlistx_first (idle); key; key = zlistx_next (idle))
        zhashx_delete (self->channels, key);
    zlistx_destroy (&idle);
}

void channels_monitor_subscribed (channels_t *self, const char *topic, int64_t now_ns)
{
    assert (self);
    //  Every public channel of every market whose "<channel>.<market>" the topic prefixes.
    for (int k = 0; k < C_KINDS; k++) {
        if (s_private (k))
            continue;
        for (int i = 0; i < self->cfg->market_count; i++) {
            const char *market = self->cfg->markets[i].id;
            char name[S_KEY_MAX];
            snprintf (name, sizeof name, "%s.%s", s_kind_names[k], market);
            if (strncmp (name, topic, strlen (topic)) != 0)
                continue;
            int64_t epoch = 0;
            if (k == C_DEPTH) {
                json_t *book = readmodel_depth (self->model, market, -1, 1);
                epoch = book ? (int64_t) json_integer_value (json_object_get (book, "epoch")) : 0;
                json_decref (book);
            }
            channel_t *ch = s_get (self, (s_kind_t) k, market, epoch, NULL);
            ws_msg_t *snap = ch ? s_snapshot (self, ch, now_ns) : NULL;
            if (snap)
                self->publish (self->arg, name, snap);
            ws_msg_unref (&snap);
        }
    }
}

size_t channels_count (channels_t *self)
{
    return zhashx_size (self->channels);
}

size_t channels_subscriptions (channels_t *self)
{
    return self->subscriptions;
}

uint64_t channels_updates (channels_t *self)
{
    return self->updates;
}
