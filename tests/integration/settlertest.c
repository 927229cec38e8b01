/*  settlertest — see settlertest.h.  */
#include "settlertest.h"
#include "clock.h"
#include "grow.h"
#include "money.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_users_table (settlertest_t *t)
{
    FILE *f = fopen (MCE_SOURCE_DIR "/gateway/migrations/0001_users.sql", "r");
    cr_assert_not_null (f, "the gateway's users table");
    static char sql[65536];
    size_t n = fread (sql, 1, sizeof sql - 1, f);
    fclose (f);
    sql[n] = '\0';
    cr_assert_eq (pg_run (t->db, sql), 0, "%s", pg_error (t->db));
}

void settlertest_init (settlertest_t *t, const char *extra_config, const char *const *ledger_args)
{
    memset (t, 0, sizeof *t);
    t->settler = -1;
    t->rid = 1;
    t->seen = calloc (SETTLERTEST_TRADES_MAX + 1, sizeof *t->seen);
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
    t->orders = zsock_new_dealer (endpoint);
    zsock_set_rcvtimeo (t->orders, HARNESS_DEADLINE_MS);
}

void settlertest_follow (settlertest_t *t)
{
    char pub[64], replay[64];
    snprintf (pub, sizeof pub, "tcp://127.0.0.1:%d", t->h.port_settler_bus);
    snprintf (replay, sizeof replay, "tcp://127.0.0.1:%d", t->h.port_settler_replay);
    t->bus = bus_sub_new (&(bus_sub_opts_t){.name = "test",
                                            .stream = "s",
                                            .pub_endpoint = pub,
                                            .replay_endpoint = replay,
                                            .rcvhwm = BUS_SUB_HWM,
                                            .replay_timeout_ms = 500});
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
    t->seen = NULL;
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

static void s_reply (settlertest_t *t)
{
    zframe_t *f = zframe_recv (t->orders);
    cr_assert_not_null (f, "the matcher did not answer");
    proto_msg_t m;
    cr_assert_eq (proto_decode (zframe_data (f), zframe_size (f), &m, NULL, 0), 0);
    cr_assert_eq (m.kind, PROTO_ack, "the matcher refused an order: %s",
                  m.kind == PROTO_reject ? m.reject.message : "?");
    zframe_destroy (&f);
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

static void s_take (settlertest_t *t, const bus_event_t *ev)
{
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
    zsock_t *d = zsock_new_dealer (t->admin);
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
            cr_assert_eq (x.kind, PROTO_settlement);
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
