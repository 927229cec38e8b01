/*  routes_account — a user's balances, deposits and withdrawals (docs/clearing.md, Accounts
    and escrow).

    Balances come from this gateway's read model, kept from the matcher's balance events, so a
    read costs no round trip and shows what the matcher decided.

    A withdrawal is a matcher command: the matcher debits `available` (never what open orders
    hold) or refuses with insufficient_balance, and the settler then pays the vault's tokens to
    the user's wallet. The answer waits until the read model has the debit, like an order's.

    A deposit goes to the settler, which records it (its journal) before answering with the
    deposit id, then moves the tokens from the user's token account into the vault as the
    approved delegate and, once the chain confirms, has the matcher credit them. The answer is
    202: the deposit is pending, and GET /api/account/deposits follows it.

    The lists of deposits and withdrawals come from Postgres (the persister's tables, fed by
    both buses), read on the worker like the trade history.
*/
#include "apijson.h"
#include "clock.h"
#include "gateway_server.h"
#include "log.h"
#include "order_parse.h"
#include "readmodel.h"
#include "pg.h"
#include "settler_link.h"

#include <assert.h>
#include <string.h>

//  GET /api/account/balances
enum MHD_Result routes_account_balances (gateway_request_t *req)
{
    json_t *body = readmodel_user_balances (gateway_server_readmodel (req->server), req->who.user);
    json_object_set_new (body, "user", json_string (req->who.user));
    return gateway_respond (req, MHD_HTTP_OK, body);
}

static enum MHD_Result s_parse_failed (gateway_request_t *req, const order_error_t *err)
{
    return gateway_respond (
        req, err->status,
        gateway_error (err->code, err->field[0] ? err->field : NULL, "%s", err->message));
}

//  The matcher answered a withdrawal.
static void s_withdrawn (void *arg, const proto_msg_t *reply)
{
    gateway_request_t *req = arg;
    if (!reply) {
        gateway_resume (req, MHD_HTTP_GATEWAY_TIMEOUT,
                        gateway_error ("matcher_unavailable", NULL,
                                       "the matcher did not answer in time; the withdrawal may "
                                       "still take effect: check GET /api/account/balances"));
        return;
    }
    if (reply->kind == PROTO_reject) {
        gateway_resume_after (req, reply->reject.last_seq,
                              gateway_reject_status (reply->reject.reason),
                              gateway_error (proto_reject_reason_name (reply->reject.reason), NULL,
                                             "%s", reply->reject.message));
        return;
    }
    json_t *body = json_object ();
    json_object_set_new (body, "withdrawal_id", apijson_id (reply->ack.ref));
    json_object_set_new (body, "status", json_string ("requested"));
    json_object_set_new (body, "seq", json_integer ((json_int_t) reply->ack.seq));
    gateway_resume_after (req, reply->ack.last_seq ? reply->ack.last_seq : reply->ack.seq,
                          MHD_HTTP_CREATED, body);
}

//  POST /api/account/withdrawals {"asset", "amount"}
enum MHD_Result routes_account_withdraw (gateway_request_t *req)
{
    proto_msg_t cmd;
    order_error_t err;
    if (order_parse_transfer (req->body, req->body_len, &cmd, &err))
        return s_parse_failed (req, &err);
    proto_withdraw_t *w = &cmd.withdraw;
    snprintf (w->user, sizeof w->user, "%s", req->who.user);
    w->role = req->who.role;
    w->ts = clock_wall_ns ();
    if (matcher_link_send (gateway_server_link (req->server), &cmd, s_withdrawn, req))
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", NULL,
                             "too many commands in flight; retry shortly");
    gateway_suspend (req);
    return MHD_YES;
}

//  The settler answered a deposit.
static void s_deposited (void *arg, const proto_settler_reply_t *reply,
                         const proto_settlement_t *settlements, size_t count)
{
    (void) settlements;
    (void) count;
    gateway_request_t *req = arg;
    if (!reply) {
        gateway_resume (req, MHD_HTTP_GATEWAY_TIMEOUT,
                        gateway_error ("settler_unavailable", NULL,
                                       "the settler did not answer in time; the deposit may "
                                       "still have been recorded: check GET "
                                       "/api/account/deposits"));
        return;
    }
    switch (reply->status) {
        case PROTO_SETTLER_STATUS_OK: {
            json_t *body = json_object ();
            json_object_set_new (body, "deposit_id", apijson_id (reply->id));
            json_object_set_new (body, "status", json_string ("pending"));
            gateway_resume (req, MHD_HTTP_ACCEPTED, body);
            return;
        }
        case PROTO_SETTLER_STATUS_NO_WALLET:
            gateway_resume (req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                            gateway_error ("no_wallet", NULL, "%s",
                                           reply->message[0] ? reply->message
                                                             : "no wallet is registered for you"));
            return;
        case PROTO_SETTLER_STATUS_MALFORMED:
            gateway_resume (req, MHD_HTTP_BAD_REQUEST,
                            gateway_error ("bad_request", NULL, "%s", reply->message));
            return;
        case PROTO_SETTLER_STATUS_TOO_MANY:
            gateway_resume (req, MHD_HTTP_TOO_MANY_REQUESTS,
                            gateway_error ("too_many_deposits", NULL, "%s", reply->message));
            return;
        default:
            gateway_resume (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                            gateway_error ("settler_unavailable", NULL, "%s",
                                           reply->message[0] ? reply->message
                                                             : "deposits are not possible right "
                                                               "now; retry shortly"));
            return;
    }
}

//  POST /api/account/deposits {"asset", "amount"}
enum MHD_Result routes_account_deposit (gateway_request_t *req)
{
    proto_msg_t parsed;
    order_error_t err;
    if (order_parse_transfer (req->body, req->body_len, &parsed, &err))
        return s_parse_failed (req, &err);
    proto_msg_t cmd = {.kind = PROTO_settler_command};
    proto_settler_command_t *c = &cmd.settler_command;
    c->action = PROTO_SETTLER_ACTION_DEPOSIT;
    c->asset = parsed.withdraw.asset;
    c->amount = parsed.withdraw.amount;
    snprintf (c->owner, sizeof c->owner, "%s", req->who.user);
    snprintf (c->user, sizeof c->user, "%s", req->who.user);
    if (settler_link_send (gateway_server_settler (req->server), &cmd, s_deposited, req))
        return gateway_fail (req, MHD_HTTP_SERVICE_UNAVAILABLE, "settler_unavailable", NULL,
                             "the settler is not reachable, or too many requests wait for it; "
                             "retry shortly");
    gateway_suspend (req);
    return MHD_YES;
}

//  GET /api/account/deposits and /withdrawals?limit&offset: the caller's, newest first.
typedef struct {
    gateway_job_t job; //  first: the worker hands back this pointer
    gateway_request_t *req;
    bool deposits;
    char user[PROTO_STR64_MAX + 1];
    long long limit, offset;
    json_t *body; //  built on the worker; NULL = the database did not answer
} s_list_t;

static json_t *s_text_or_null (pg_result_t *rows, int r, int c)
{
    const char *v = pg_value (rows, r, c);
    return v ? json_string (v) : json_null ();
}

//  What a deposit or a withdrawal row answers with, after its id.
#define S_TRANSFER_COLUMNS                                                                         \
    "asset, amount, state, signature, attempts, error, " GATEWAY_SQL_TIME (                        \
        "created_at") ", " GATEWAY_SQL_TIME ("updated_at")

static void s_list_run (gateway_job_t *base, pg_t *pg)
{
    s_list_t *job = (s_list_t *) base;
    if (!pg)
        return;
    char limit[24], offset[24];
    snprintf (limit, sizeof limit, "%lld", job->limit);
    snprintf (offset, sizeof offset, "%lld", job->offset);
    const char *params[] = {job->user, limit, offset};
    static const char *const sql[2][2] = {
        {"SELECT count(*) FROM withdrawals WHERE username = $1",
         "SELECT withdrawal_id, " S_TRANSFER_COLUMNS " FROM withdrawals WHERE username = $1 "
         "ORDER BY withdrawal_id DESC LIMIT $2::bigint OFFSET $3::bigint"},
        {"SELECT count(*) FROM deposits WHERE username = $1",
         "SELECT deposit_id, " S_TRANSFER_COLUMNS " FROM deposits WHERE username = $1 "
         "ORDER BY deposit_id DESC LIMIT $2::bigint OFFSET $3::bigint"}};
    pg_result_t *total = pg_exec (pg, sql[job->deposits][0], 1, params);
    pg_result_t *rows = total ? pg_exec (pg, sql[job->deposits][1], 3, params) : NULL;
    if (rows) {
        json_t *list = json_array ();
        for (int r = 0; r < pg_rows (rows); r++) {
            bool energy = strcmp (pg_value (rows, r, 1), "energy") == 0;
            int64_t amount = pg_int (rows, r, 2);
            json_t *row = json_object ();
            json_object_set_new (row, job->deposits ? "deposit_id" : "withdrawal_id",
                                 json_string (pg_value (rows, r, 0)));
            json_object_set_new (row, "asset", json_string (pg_value (rows, r, 1)));
            json_object_set_new (row, "amount",
                                 energy ? apijson_kwh (amount) : apijson_money (amount));
            json_object_set_new (row, "status", json_string (pg_value (rows, r, 3)));
            json_object_set_new (row, "signature", s_text_or_null (rows, r, 4));
            json_object_set_new (row, "attempts", json_integer (pg_int (rows, r, 5)));
            json_object_set_new (row, "error", s_text_or_null (rows, r, 6));
            json_object_set_new (row, "created_at", s_text_or_null (rows, r, 7));
            json_object_set_new (row, "updated_at", s_text_or_null (rows, r, 8));
            json_array_append_new (list, row);
        }
        job->body = json_object ();
        json_object_set_new (job->body, job->deposits ? "deposits" : "withdrawals", list);
        json_object_set_new (job->body, "limit", json_integer (job->limit));
        json_object_set_new (job->body, "offset", json_integer (job->offset));
        json_object_set_new (job->body, "total", json_integer (pg_int (total, 0, 0)));
    }
    pg_result_free (&total);
    pg_result_free (&rows);
}

static void s_list_done (gateway_job_t *base)
{
    s_list_t *job = (s_list_t *) base;
    if (job->body)
        gateway_resume (job->req, MHD_HTTP_OK, job->body);
    else
        gateway_resume (job->req, MHD_HTTP_SERVICE_UNAVAILABLE,
                        gateway_error ("database_unavailable", NULL,
                                       "the history database is unreachable; retry shortly"));
    free (job);
}

static enum MHD_Result s_list (gateway_request_t *req, bool deposits)
{
    long long limit, offset;
    if (gateway_query_int (req, "limit", 50, 1, 1000, &limit) ||
        gateway_query_int (req, "offset", 0, 0, 100000000, &offset))
        return MHD_YES;
    s_list_t *job = calloc (1, sizeof *job);
    if (!job)
        return MHD_NO;
    job->job.run = s_list_run;
    job->job.done = s_list_done;
    job->req = req;
    job->deposits = deposits;
    snprintf (job->user, sizeof job->user, "%s", req->who.user);
    job->limit = limit;
    job->offset = offset;
    return gateway_submit (req, &job->job);
}

enum MHD_Result routes_account_deposits (gateway_request_t *req)
{
    return s_list (req, true);
}

enum MHD_Result routes_account_withdrawals (gateway_request_t *req)
{
    return s_list (req, false);
}
