/*  settlertest — see settlertest.h.  */
#include "settlertest.h"
#include "clock.h"
#include "grow.h"
#include "migrate.h"
#include "money.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MIGRATE_DECLARE (gateway);

//  The gateway's tables, as the gateway makes them (so that a gateway started later finds its
//  schema current and its users there).
static void s_users_table (settlertest_t *t)
{
    char err[512];
    cr_assert_eq (migrate_apply (t->db, "gateway", gateway_migrations, gateway_migration_count, err,
                                 sizeof err),
                  0, "the gateway's users table: %s", err);
}

void settlertest_init (settlertest_t *t, const char *extra_config, const char *const *ledger_args)
{
    memset (t, 0, sizeof *t);
    t->settler = -1;
    t->rid = 1;
    t->seen = calloc (SETTLERTEST_TRADES_MAX + 1, sizeof *t->seen);
    t->deposits = calloc (SETTLERTEST_TRANSFERS_MAX + 1, sizeof *t->deposits);
    t->withdrawals = calloc (SETTLERTEST_TRANSFERS_MAX + 1, sizeof *t->withdrawals);
    cr_assert_eq (pgtest_start (&t->pg, NULL), 0);
    char err[256];
    t->db = pg_connect (t->pg.conninfo, 5000, err, sizeof err);
    cr_assert_not_null (t->db, "%s", err);
    s_users_table (t);
    char config[2048];
    snprintf (config, sizeof config, "%s\npostgres = { url = \"%s\"; };\n",
              extra_config ? extra_config : "", t->pg.conninfo);
    harness_init (&t->h, config);
    cr_assert_eq (ledgertest_start (&t->ledger, t->h.dir, ledger_args), 0);
    size_t i;
    json_t *u;
    json_array_foreach (json_object_get (t->ledger.setup, "users"), i, u)
    {
        settlertest_register (t, json_string_value (json_object_get (u, "name")),
                              json_string_value (json_object_get (u, "wallet")));
    }
    //  the settler's own keys: the ledger, its keys, two free ports the harness picked and
    //  these tests do not otherwise use (no broadcaster runs)
    t->metrics_port = t->h.port_ws;
    snprintf (t->admin, sizeof t->admin, "tcp://127.0.0.1:%d", t->h.port_xpub);
    char port[16];
    snprintf (port, sizeof port, "%d", t->metrics_port);
    setenv ("MCE_SETTLER_RPC_URL", t->ledger.url, 1);
    setenv ("MCE_SETTLER_KEYS_FILE", t->ledger.setup_path, 1);
    setenv ("MCE_SETTLER_COMMANDS", t->admin, 1);
    setenv ("MCE_SETTLER_METRICS_PORT", port, 1);
    t->matcher = harness_start (&t->h, "mce-matcher");
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", t->h.port_commands);
    t->orders = harness_dealer (&t->h, "matcher", endpoint);
    zsock_set_rcvtimeo (t->orders, HARNESS_DEADLINE_MS);
}

void settlertest_follow (settlertest_t *t)
{
    bus_sub_destroy (&t->bus);
    memset (t->seen, 0, (SETTLERTEST_TRADES_MAX + 1) * sizeof *t->seen);
    memset (t->deposits, 0, (SETTLERTEST_TRANSFERS_MAX + 1) * sizeof *t->deposits);
    memset (t->withdrawals, 0, (SETTLERTEST_TRANSFERS_MAX + 1) * sizeof *t->withdrawals);
    t->epochs_settled = 0;
    t->bus = harness_bus_sub (&t->h, "s", 500);
    cr_assert_not_null (t->bus);
}

void settlertest_fini (settlertest_t *t)
{
    bus_sub_destroy (&t->bus);
    zsock_destroy (&t->orders);
    harness_cleanup (&t->h);
    ledgertest_stop (&t->ledger);
    pg_destroy (&t->db);
    pgtest_stop (&t->pg);
    free (t->seen);
    free (t->deposits);
    free (t->withdrawals);
    t->seen = NULL;
    t->deposits = t->withdrawals = NULL;
}

int settlertest_settler (settlertest_t *t)
{
    t->settler = harness_start (&t->h, "mce-settler");
    t->settler_runs++;
    cr_assert (harness_wait_log_count (&t->h, t->settler, "settler: ready", t->settler_runs,
                                       HARNESS_DEADLINE_MS),
               "settler run %d did not start", t->settler_runs);
    return t->settler;
}

void settlertest_kill (settlertest_t *t)
{
    if (t->settler >= 0)
        harness_stop (&t->h, t->settler, SIGKILL);
    t->settler = -1;
}

void settlertest_register (settlertest_t *t, const char *user, const char *wallet)
{
    const char *params[2] = {user, wallet};
    pg_result_t *r = pg_exec (t->db,
                              "INSERT INTO users (username, password_hash, wallet) "
                              "VALUES ($1, 'not-a-login', $2) ON CONFLICT (username) "
                              "DO UPDATE SET wallet = EXCLUDED.wallet",
                              2, params);
    cr_assert_not_null (r, "%s", pg_error (t->db));
    pg_result_free (&r);
}

static void s_send (settlertest_t *t, const proto_msg_t *m)
{
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (m, &buf), 0);
    zmq_send (zsock_resolve (t->orders), buf.data, buf.len, 0);
    proto_buf_free (&buf);
}

//  The matcher's next answer.
static proto_msg_t s_answer (settlertest_t *t)
{
    zframe_t *f = zframe_recv (t->orders);
    cr_assert_not_null (f, "the matcher did not answer");
    proto_msg_t m;
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &m, NULL, 0), 0);
    zframe_destroy (&f);
    return m;
}

static void s_reply (settlertest_t *t)
{
    proto_msg_t m = s_answer (t);
    cr_assert_eq (m.kind, PROTO_ack, "the matcher refused an order: %s",
                  m.kind == PROTO_reject ? m.reject.message : "?");
}

void settlertest_trade (settlertest_t *t, const char *seller, const char *buyer, int64_t qty,
                        int64_t price, int64_t epoch)
{
    for (int side = 0; side < 2; side++) {
        proto_msg_t m = {.kind = PROTO_new_order};
        proto_new_order_t *o = &m.new_order;
        o->rid = t->rid++;
        snprintf (o->user, sizeof o->user, "%s", side ? buyer : seller);
        snprintf (o->market, sizeof o->market, "campus-1");
        o->side = side ? PROTO_SIDE_BUY : PROTO_SIDE_SELL;
        o->type = PROTO_ORDER_TYPE_LIMIT;
        o->tif = PROTO_TIF_GTC;
        o->qty = qty;
        o->price = price;
        o->epoch = epoch;
        o->ts = clock_wall_ns ();
        s_send (t, &m);
    }
    s_reply (t);
    s_reply (t);
}

static void s_send_order (settlertest_t *t, const char *user, proto_side_t side, int64_t qty,
                          int64_t price)
{
    proto_msg_t m = {.kind = PROTO_new_order};
    proto_new_order_t *o = &m.new_order;
    o->rid = t->rid++;
    snprintf (o->user, sizeof o->user, "%s", user);
    snprintf (o->market, sizeof o->market, "campus-1");
    o->side = side;
    o->type = PROTO_ORDER_TYPE_LIMIT;
    o->tif = PROTO_TIF_GTC;
    o->qty = qty;
    o->price = price;
    o->ts = clock_wall_ns ();
    s_send (t, &m);
}

static bool s_accepted (settlertest_t *t)
{
    proto_msg_t m = s_answer (t);
    if (m.kind == PROTO_ack)
        return true;
    fprintf (stderr, "settlertest: order refused: %s %s\n",
             m.kind == PROTO_reject ? proto_reject_reason_name (m.reject.reason) : "?",
             m.kind == PROTO_reject ? m.reject.message : "");
    return false;
}

bool settlertest_try_trade (settlertest_t *t, const char *seller, const char *buyer, int64_t qty,
                            int64_t price)
{
    s_send_order (t, seller, PROTO_SIDE_SELL, qty, price);
    s_send_order (t, buyer, PROTO_SIDE_BUY, qty, price);
    bool sold = s_accepted (t);
    return s_accepted (t) && sold;
}

bool settlertest_order (settlertest_t *t, const char *user, proto_side_t side, int64_t qty,
                        int64_t price)
{
    s_send_order (t, user, side, qty, price);
    return s_accepted (t);
}

proto_settler_status_t settlertest_deposit (settlertest_t *t, const char *owner,
                                            proto_asset_t asset, int64_t amount, uint64_t *id,
                                            char *message, size_t size)
{
    proto_settler_command_t c = {
        .rid = t->rid++, .action = PROTO_SETTLER_ACTION_DEPOSIT, .asset = asset, .amount = amount};
    snprintf (c.owner, sizeof c.owner, "%s", owner);
    snprintf (c.user, sizeof c.user, "%s", owner);
    proto_msg_t views[2];
    proto_settler_reply_t reply;
    int n = settlertest_admin (t, &c, views, 2, &reply);
    cr_assert_geq (n, 0, "the settler answered the deposit");
    cr_assert_eq (reply.rid, c.rid);
    *id = reply.id;
    if (message)
        snprintf (message, size, "%s", reply.message);
    if (reply.status == PROTO_SETTLER_STATUS_OK) {
        //  the intent came first, journaled: the transfer record as the bus carries it
        cr_assert_eq (n, 1);
        cr_assert_eq (views[0].kind, PROTO_transfer);
        cr_assert_eq (views[0].transfer.id, reply.id);
        cr_assert_eq (views[0].transfer.kind, PROTO_TRANSFER_KIND_DEPOSIT);
        cr_assert_eq (views[0].transfer.state, PROTO_TRANSFER_STATE_PENDING);
        cr_assert_gt (views[0].transfer.seq, 0);
        cr_assert_str_eq (views[0].transfer.user, owner);
        cr_assert_eq (views[0].transfer.amount, amount);
        cr_assert_neq (views[0].transfer.wallet[0], '\0');
    }
    else
        cr_assert_eq (n, 0);
    return reply.status;
}

uint64_t settlertest_withdraw (settlertest_t *t, const char *user, proto_asset_t asset,
                               int64_t amount, proto_reject_reason_t *reason)
{
    proto_msg_t m = {.kind = PROTO_withdraw};
    proto_withdraw_t *w = &m.withdraw;
    w->rid = t->rid++;
    snprintf (w->user, sizeof w->user, "%s", user);
    w->asset = asset;
    w->amount = amount;
    w->ts = clock_wall_ns ();
    s_send (t, &m);
    proto_msg_t a = s_answer (t);
    if (a.kind == PROTO_reject) {
        if (reason)
            *reason = a.reject.reason;
        return 0;
    }
    cr_assert_eq (a.kind, PROTO_ack);
    cr_assert_eq (a.ack.rid, w->rid);
    cr_assert_gt (a.ack.ref, 0, "the ack names the withdrawal");
    return a.ack.ref;
}

void settlertest_control (settlertest_t *t, proto_control_action_t action)
{
    proto_msg_t m = {.kind = PROTO_market_control};
    proto_market_control_t *c = &m.market_control;
    c->rid = t->rid++;
    snprintf (c->user, sizeof c->user, "admin");
    c->role = PROTO_ROLE_ADMIN;
    snprintf (c->market, sizeof c->market, "campus-1");
    c->action = action;
    c->ts = clock_wall_ns ();
    s_send (t, &m);
    s_reply (t);
}

typedef struct {
    int64_t fee_ppm;
    ledgertest_trade_t *trades;
    size_t count, cap;
} s_trades_t;

static void s_journal_trade (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) seq;
    (void) ev;
    (void) len;
    s_trades_t *all = arg;
    if (msg->kind != PROTO_trade)
        return;
    cr_assert (grow_to ((void **) &all->trades, &all->cap, all->count + 1, sizeof *all->trades));
    ledgertest_trade_t *x = &all->trades[all->count++];
    x->trade_id = msg->trade.trade_id;
    snprintf (x->buyer, sizeof x->buyer, "%s", msg->trade.buyer);
    snprintf (x->seller, sizeof x->seller, "%s", msg->trade.seller);
    x->qty = msg->trade.qty;
    x->value = msg->trade.value;
    cr_assert_eq (money_fee (x->value, all->fee_ppm, &x->fee), 0);
}

size_t settlertest_journal_trades (harness_t *h, int64_t fee_ppm, ledgertest_trade_t **out)
{
    s_trades_t all = {.fee_ppm = fee_ppm};
    cr_assert_geq (harness_journal_events (h, s_journal_trade, &all), 0);
    *out = all.trades;
    return all.count;
}

settlertest_tseen_t *settlertest_tseen (settlertest_t *t, proto_transfer_kind_t kind, uint64_t id)
{
    cr_assert_leq (id, SETTLERTEST_TRANSFERS_MAX);
    return kind == PROTO_TRANSFER_KIND_DEPOSIT ? &t->deposits[id] : &t->withdrawals[id];
}

static void s_take_transfer (settlertest_t *t, const proto_transfer_t *r)
{
    settlertest_tseen_t *x = settlertest_tseen (t, r->kind, r->id);
    x->state = (uint8_t) r->state;
    switch (r->state) {
        case PROTO_TRANSFER_STATE_PENDING:
            if (r->user[0]) { //  the intent
                snprintf (x->user, sizeof x->user, "%s", r->user);
                x->asset = (uint8_t) r->asset;
                x->amount = r->amount;
            }
            x->pending++;
            break;
        case PROTO_TRANSFER_STATE_CONFIRMED:
            x->confirmed++;
            break;
        case PROTO_TRANSFER_STATE_FAILED:
            x->failed++;
            snprintf (x->error, sizeof x->error, "%s", r->error);
            break;
        case PROTO_TRANSFER_STATE_CREDITED:
            x->credited++;
            x->mseq = r->mseq;
            break;
        case PROTO_TRANSFER_STATE_CLOSED:
            x->closed++;
            break;
        case PROTO_TRANSFER_STATE_REFUNDED:
            x->refunded++;
            break;
        default:
            break;
    }
}

static void s_take (settlertest_t *t, const bus_event_t *ev)
{
    if (ev->msg.kind == PROTO_transfer) {
        s_take_transfer (t, &ev->msg.transfer);
        return;
    }
    if (ev->msg.kind == PROTO_settlement) {
        const proto_settlement_t *s = &ev->msg.settlement;
        cr_assert_leq (s->trade_id, SETTLERTEST_TRADES_MAX);
        settlertest_seen_t *x = &t->seen[s->trade_id];
        x->state = (uint8_t) s->state;
        x->settlement_id = s->settlement_id;
        if (s->state == PROTO_SETTLE_STATE_CONFIRMED)
            x->confirmed++;
        if (s->state == PROTO_SETTLE_STATE_FAILED) {
            x->failed++;
            snprintf (x->error, sizeof x->error, "%s", s->error);
        }
    }
    else if (ev->msg.kind == PROTO_epoch_state &&
             ev->msg.epoch_state.state == PROTO_EPOCH_PHASE_SETTLED) {
        t->epochs_settled++;
        t->last_settled_epoch = ev->msg.epoch_state.epoch;
        t->last_settled_mseq = ev->msg.epoch_state.mseq;
    }
}

void settlertest_drain (settlertest_t *t)
{
    bus_event_t ev;
    while (bus_sub_recv (t->bus, &ev, 0) == 1)
        s_take (t, &ev);
}

bool settlertest_next (settlertest_t *t, int timeout_ms)
{
    bus_event_t ev;
    if (bus_sub_recv (t->bus, &ev, timeout_ms) != 1)
        return false;
    s_take (t, &ev);
    return true;
}

static bool s_final (settlertest_t *t, uint64_t last, bool allow_failed)
{
    for (uint64_t id = 1; id <= last; id++) {
        uint8_t st = t->seen[id].state;
        if (st != PROTO_SETTLE_STATE_CONFIRMED &&
            !(allow_failed && st == PROTO_SETTLE_STATE_FAILED))
            return false;
    }
    return true;
}

bool settlertest_wait_final (settlertest_t *t, uint64_t last, bool allow_failed, int timeout_ms)
{
    int64_t deadline = clock_mono_ns () + (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    while (!s_final (t, last, allow_failed)) {
        int64_t left = (deadline - clock_mono_ns ()) / MCE_NS_PER_MSEC;
        if (left <= 0)
            return false;
        bus_event_t ev;
        //  one event (waiting), then whatever else is there
        if (bus_sub_recv (t->bus, &ev, (int) (left < 200 ? left : 200)) == 1) {
            s_take (t, &ev);
            settlertest_drain (t);
        }
    }
    return true;
}

static bool s_tfinal (settlertest_t *t, proto_transfer_kind_t kind, const uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t st = settlertest_tseen (t, kind, ids[i])->state;
        bool final = kind == PROTO_TRANSFER_KIND_DEPOSIT
                         ? st == PROTO_TRANSFER_STATE_CREDITED || st == PROTO_TRANSFER_STATE_FAILED
                         : st == PROTO_TRANSFER_STATE_CLOSED || st == PROTO_TRANSFER_STATE_REFUNDED;
        if (!final)
            return false;
    }
    return true;
}

bool settlertest_wait_transfers (settlertest_t *t, proto_transfer_kind_t kind, const uint64_t *ids,
                                 size_t n, int timeout_ms)
{
    int64_t deadline = clock_mono_ns () + (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    while (!s_tfinal (t, kind, ids, n)) {
        int64_t left = (deadline - clock_mono_ns ()) / MCE_NS_PER_MSEC;
        if (left <= 0)
            return false;
        bus_event_t ev;
        if (bus_sub_recv (t->bus, &ev, (int) (left < 200 ? left : 200)) == 1) {
            s_take (t, &ev);
            settlertest_drain (t);
        }
    }
    return true;
}

static void s_matcher_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) seq;
    (void) ev;
    (void) len;
    settlertest_matcher_t *m = arg;
    if (msg->kind == PROTO_balance) {
        size_t u = 0;
        while (u < m->user_count && strcmp (m->users[u].user, msg->balance.user) != 0)
            u++;
        if (u == m->user_count && u < sizeof m->users / sizeof m->users[0])
            snprintf (m->users[m->user_count++].user, sizeof m->users[0].user, "%s",
                      msg->balance.user);
        if (u < m->user_count)
            m->users[u].held[msg->balance.asset == PROTO_ASSET_PAYMENT] =
                msg->balance.available + msg->balance.reserved;
    }
    if (msg->kind == PROTO_balance && msg->balance.ref <= SETTLERTEST_TRANSFERS_MAX) {
        if (msg->balance.cause == PROTO_BALANCE_CAUSE_DEPOSIT)
            m->credits[msg->balance.ref]++;
        if (msg->balance.cause == PROTO_BALANCE_CAUSE_REFUND)
            m->refunds[msg->balance.ref]++;
    }
    else if (msg->kind == PROTO_withdrawal &&
             msg->withdrawal.withdrawal_id <= SETTLERTEST_TRANSFERS_MAX) {
        uint64_t id = msg->withdrawal.withdrawal_id;
        if (msg->withdrawal.state == PROTO_WITHDRAWAL_PHASE_REQUESTED)
            m->requested[id]++;
        else if (msg->withdrawal.state == PROTO_WITHDRAWAL_PHASE_PAID)
            m->paid[id]++;
        else if (msg->withdrawal.state == PROTO_WITHDRAWAL_PHASE_REFUNDED)
            m->refunded[id]++;
    }
    else if (msg->kind == PROTO_deposit_credit)
        m->deposit_commands++;
    else if (msg->kind == PROTO_withdrawal_close)
        m->close_commands++;
}

settlertest_matcher_t *settlertest_matcher (settlertest_t *t)
{
    settlertest_matcher_t *m = calloc (1, sizeof *m);
    cr_assert_not_null (m);
    cr_assert_geq (harness_journal_events (&t->h, s_matcher_event, m), 0, "the matcher's journal");
    for (size_t u = 0; u < m->user_count; u++)
        for (int a = 0; a < 2; a++)
            m->held[a] += m->users[u].held[a];
    return m;
}

typedef struct {
    const char *user;
    proto_asset_t asset;
    int64_t available, reserved;
} s_balance_t;

static void s_balance_event (uint64_t seq, const proto_msg_t *msg, const uint8_t *ev, size_t len,
                             void *arg)
{
    (void) seq;
    (void) ev;
    (void) len;
    s_balance_t *b = arg;
    if (msg->kind == PROTO_balance && msg->balance.asset == b->asset &&
        strcmp (msg->balance.user, b->user) == 0) {
        b->available = msg->balance.available;
        b->reserved = msg->balance.reserved;
    }
}

void settlertest_balance (settlertest_t *t, const char *user, proto_asset_t asset,
                          int64_t *available, int64_t *reserved)
{
    s_balance_t b = {.user = user, .asset = asset};
    cr_assert_geq (harness_journal_events (&t->h, s_balance_event, &b), 0);
    *available = b.available;
    *reserved = b.reserved;
}

bool settlertest_wait_epoch_settled (settlertest_t *t, int64_t epoch, int timeout_ms)
{
    int64_t deadline = clock_mono_ns () + (int64_t) timeout_ms * MCE_NS_PER_MSEC;
    while (!(t->epochs_settled && t->last_settled_epoch == epoch)) {
        int64_t left = (deadline - clock_mono_ns ()) / MCE_NS_PER_MSEC;
        if (left <= 0)
            return false;
        bus_event_t ev;
        if (bus_sub_recv (t->bus, &ev, (int) left) == 1)
            s_take (t, &ev);
    }
    return true;
}

int settlertest_admin (settlertest_t *t, const proto_settler_command_t *cmd, proto_msg_t *views,
                       size_t max, proto_settler_reply_t *reply)
{
    zsock_t *d = harness_dealer (&t->h, "settler", t->admin);
    zsock_set_rcvtimeo (d, HARNESS_DEADLINE_MS);
    proto_msg_t m = {.kind = PROTO_settler_command};
    m.settler_command = *cmd;
    proto_buf_t buf;
    proto_buf_init (&buf);
    cr_assert_eq (proto_encode (&m, &buf), 0);
    zmq_send (zsock_resolve (d), buf.data, buf.len, 0);
    proto_buf_free (&buf);
    zmsg_t *msg = zmsg_recv (d);
    zsock_destroy (&d);
    if (!msg)
        return -1;
    int n = 0;
    size_t frames = zmsg_size (msg);
    for (size_t i = 0; i < frames; i++) {
        zframe_t *f = zmsg_pop (msg);
        proto_msg_t x;
        cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &x, NULL, 0), 0);
        if (i + 1 == frames) {
            cr_assert_eq (x.kind, PROTO_settler_reply);
            *reply = x.settler_reply;
        }
        else {
            cr_assert (x.kind == PROTO_settlement || x.kind == PROTO_transfer);
            if ((size_t) n < max)
                views[n] = x;
            n++;
        }
        zframe_destroy (&f);
    }
    zmsg_destroy (&msg);
    return n;
}

double settlertest_metric (settlertest_t *t, const char *name)
{
    char *body = NULL;
    long status = harness_http_port (t->metrics_port, "GET", "/metrics", NULL, &body);
    double v = -1;
    size_t len = strlen (name);
    for (const char *p = body; status == 200 && p && *p;) {
        if (strncmp (p, name, len) == 0 && p[len] == ' ') {
            v = strtod (p + len + 1, NULL);
            break;
        }
        p = strchr (p, '\n');
        p = p ? p + 1 : NULL;
    }
    free (body);
    return v;
}

int64_t settlertest_epoch_now (int64_t epoch_seconds)
{
    return clock_wall_ns () / MCE_NS_PER_SEC / epoch_seconds;
}
