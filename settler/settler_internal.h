/*  settler_internal — the settler's state, shared by its two files: settler_server.c (the
    data path: matcher events, the chain, the matcher's commands) and settler_admin.c (the
    admin port). Nothing outside settler/ includes it. One thread owns all of it.
*/
#ifndef MCE_SETTLER_INTERNAL_H
#define MCE_SETTLER_INTERNAL_H

#include "bus_pub.h"
#include "bus_sub.h"
#include "keys.h"
#include "metrics_http.h"
#include "rpc.h"
#include "settle_batch.h"
#include "settle_store.h"
#include "settler_metrics.h"
#include "settler_server.h"
#include "transfer_link.h"
#include "wallets.h"

#include <czmq.h>

struct _settler_server_t {
    const mce_config_t *cfg;
    keys_t keys;
    bool have_keys;
    wallets_t *wallets;
    rpc_t *rpc;
    settle_store_t *store;
    bus_pub_t *bus;
    bus_sub_t *sub;
    zsock_t *admin;
    transfer_link_t *link; //  to the matcher's command port
    curve_t *curve;        //  our key; the authenticator behind our bus and admin port
    metrics_http_t *http;
    settler_metrics_t m;
    settle_batch_t *batches; //  SETTLER_ROUND_TXS, reused by every send round
    rpc_answer_t answers[RPC_CALLS_MAX];
    proto_buf_t buf;
    //  ledger calls: on hold after a failure
    int ledger_failures;
    int64_t ledger_retry_at; //  monotonic ns
    //  wallet lookups: likewise
    int pg_failures;
    int64_t pg_retry_at;
    bool recovering; //  in-flight transactions from the journal not yet resolved
    int64_t next_status;
    int64_t next_lag;
    int64_t next_notify; //  no owed transfer is due before this (0: look now)
    int64_t next_vaults;
    //  test hooks
    long crash_before_send, crash_after_send, crash_after_ack;
    long send_commits, send_requests, acks;
};

//  Journals a record of stream s (its seq and ts are set here) and applies it to the store. 0,
//  or -1 when the journal failed (fatal).
int settler_record (settler_server_t *self, proto_msg_t *msg);
//  Commits what was recorded (fdatasync as settler.fsync says), then it is published. 0 or -1.
int settler_commit (settler_server_t *self);
//  A settlement record with the fields every record carries.
void settler_settlement_msg (const settlement_t *s, proto_settle_state_t state, proto_msg_t *msg);
//  Records s pending again (with a retry budget of attempts), not before retry_at.
int settler_repend (settler_server_t *self, settlement_t *s, uint32_t attempts, const char *why,
                    int64_t retry_at);
//  A user's wallet (wallets_get, or with fresh wallets_get_fresh), with the backoff that keeps
//  a lost Postgres from being asked on every turn: -1 at once while it is on hold. 1, 0 (no
//  wallet) or -1, why saying why.
int settler_wallet (settler_server_t *self, const char *user, bool fresh, const wallet_t **out,
                    char *why, size_t whylen);

//  settler_admin.c: serves every command waiting on settler.commands. 0, or -1 on a fatal error
//  (the journal).
int settler_admin_serve (settler_server_t *self);

#endif
