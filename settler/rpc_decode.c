/*  rpc_decode — see rpc_decode.h. jansson parses; every value is checked for its type before
    use, integers for their range, and nothing past RPC_BODY_MAX is parsed at all.
*/
#include "rpc_decode.h"
#include "base58.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void s_set (char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf (err, errlen, fmt, what);
}

//  An unsigned integer as JSON may carry it (jansson keeps json_int_t = long long).
static int s_u64 (const json_t *j, uint64_t *out)
{
    if (!json_is_integer (j) || json_integer_value (j) < 0)
        return -1;
    *out = (uint64_t) json_integer_value (j);
    return 0;
}

static void s_err_from_json (const json_t *j, sol_err_t *out)
{
    memset (out, 0, sizeof *out);
    out->ix = -1;
    out->custom = -1;
    if (!j || json_is_null (j))
        return;
    char *text = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf (out->text, sizeof out->text, "%s", text ? text : "?");
    free (text);
    out->kind = SOL_ERR_OTHER;
    if (json_is_string (j)) {
        const char *s = json_string_value (j);
        if (strcmp (s, "BlockhashNotFound") == 0)
            out->kind = SOL_ERR_BLOCKHASH_NOT_FOUND;
        else if (strcmp (s, "AlreadyProcessed") == 0)
            out->kind = SOL_ERR_ALREADY_PROCESSED;
        return;
    }
    const json_t *ie = json_object_get (j, "InstructionError");
    if (json_is_array (ie) && json_array_size (ie) == 2 &&
        json_is_integer (json_array_get (ie, 0))) {
        json_int_t ix = json_integer_value (json_array_get (ie, 0));
        if (ix < 0 || ix > 255)
            return;
        out->kind = SOL_ERR_INSTRUCTION;
        out->ix = (int) ix;
        const json_t *what = json_array_get (ie, 1);
        if (json_is_string (what))
            snprintf (out->name, sizeof out->name, "%s", json_string_value (what));
        else if (json_is_object (what)) {
            const json_t *custom = json_object_get (what, "Custom");
            uint64_t code;
            if (custom && s_u64 (custom, &code) == 0 && code <= UINT32_MAX)
                out->custom = (int64_t) code;
            else {
                const char *key = json_object_iter_key (json_object_iter ((json_t *) what));
                snprintf (out->name, sizeof out->name, "%s", key ? key : "?");
            }
        }
    }
}

int sol_err_parse (const char *json, size_t len, sol_err_t *out)
{
    json_t *j = json_loadb (json, len, JSON_DECODE_ANY, NULL);
    if (!j)
        return -1;
    s_err_from_json (j, out);
    json_decref (j);
    return 0;
}

static int s_blockhash (const json_t *result, rpc_answer_t *a)
{
    const json_t *value = json_object_get (result, "value");
    const json_t *hash = json_object_get (value, "blockhash");
    if (!json_is_string (hash) ||
        s_u64 (json_object_get (value, "lastValidBlockHeight"), &a->last_valid))
        return -1;
    uint8_t bytes[BASE58_TEXT_MAX];
    const char *text = json_string_value (hash);
    size_t len = json_string_length (hash);
    if (base58_decode (text, len, bytes, sizeof bytes) != SOL_HASH_BYTES)
        return -1;
    memcpy (a->blockhash, bytes, SOL_HASH_BYTES);
    return 0;
}

static int s_signature (const json_t *result, rpc_answer_t *a)
{
    if (!json_is_string (result))
        return -1;
    const char *text = json_string_value (result);
    size_t len = json_string_length (result);
    uint8_t bytes[BASE58_TEXT_MAX];
    if (len >= sizeof a->signature ||
        base58_decode (text, len, bytes, sizeof bytes) != SOL_SIG_BYTES)
        return -1;
    memcpy (a->signature, text, len + 1);
    return 0;
}

static int s_statuses (const json_t *result, rpc_answer_t *a)
{
    const json_t *value = json_object_get (result, "value");
    if (!json_is_array (value) || json_array_size (value) != a->count)
        return -1;
    for (size_t i = 0; i < a->count; i++) {
        const json_t *st = json_array_get (value, i);
        rpc_sig_status_t *out = &a->statuses[i];
        memset (out, 0, sizeof *out);
        out->err.ix = -1;
        out->err.custom = -1;
        if (json_is_null (st))
            continue;
        if (!json_is_object (st))
            return -1;
        out->known = true;
        const json_t *level = json_object_get (st, "confirmationStatus");
        const char *l = json_is_string (level) ? json_string_value (level) : "";
        if (strcmp (l, "finalized") == 0)
            out->level = SOL_LEVEL_FINALIZED;
        else if (strcmp (l, "confirmed") == 0)
            out->level = SOL_LEVEL_CONFIRMED;
        else if (strcmp (l, "processed") == 0 || json_is_null (level) || !level)
            out->level = SOL_LEVEL_PROCESSED; //  old nodes leave it out: not yet confirmed
        else
            return -1;
        s_err_from_json (json_object_get (st, "err"), &out->err);
    }
    return 0;
}

//  {"context":…, "value":{"amount":"123", "decimals":…}}: the amount is a decimal string (a
//  u64 does not fit a JSON number everywhere).
static int s_token_balance (const json_t *result, rpc_answer_t *a)
{
    const json_t *amount = json_object_get (json_object_get (result, "value"), "amount");
    if (!json_is_string (amount))
        return -1;
    const char *text = json_string_value (amount);
    size_t len = json_string_length (amount);
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9' || v > (UINT64_MAX - (uint64_t) (text[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t) (text[i] - '0');
    }
    a->amount = v;
    return 0;
}

static int s_one (const json_t *resp, rpc_answer_t *a)
{
    const json_t *error = json_object_get (resp, "error");
    if (error) {
        const json_t *code = json_object_get (error, "code");
        const json_t *msg = json_object_get (error, "message");
        if (!json_is_integer (code))
            return -1;
        a->code = json_integer_value (code);
        if (a->code == 0)
            a->code = -1; //  0 means "a result" here
        snprintf (a->message, sizeof a->message, "%s",
                  json_is_string (msg) ? json_string_value (msg) : "");
        const json_t *data = json_object_get (error, "data");
        s_err_from_json (json_is_object (data) ? json_object_get (data, "err") : NULL, &a->err);
        return 0;
    }
    const json_t *result = json_object_get (resp, "result");
    if (!result)
        return -1;
    switch (a->kind) {
        case RPC_BLOCKHASH:
            return s_blockhash (result, a);
        case RPC_HEIGHT:
            return s_u64 (result, &a->height);
        case RPC_SEND:
            return s_signature (result, a);
        case RPC_STATUSES:
            return s_statuses (result, a);
        case RPC_TOKEN_BALANCE:
            return s_token_balance (result, a);
    }
    return -1;
}

int rpc_decode (const char *body, size_t len, rpc_answer_t *answers, size_t n, char *err,
                size_t errlen)
{
    if (len > RPC_BODY_MAX) {
        s_set (err, errlen, "%s", "answer too large");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb (body, len, 0, &jerr);
    if (!root) {
        s_set (err, errlen, "not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    bool seen[256] = {false};
    if (n == 0 || n > sizeof seen) {
        s_set (err, errlen, "%s", "bad call count");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        answers[i].code = 0;
        answers[i].message[0] = '\0';
        memset (&answers[i].err, 0, sizeof answers[i].err);
        answers[i].err.ix = -1;
        answers[i].err.custom = -1;
    }
    size_t count = json_is_array (root) ? json_array_size (root) : 1;
    for (size_t k = 0; k < count; k++) {
        const json_t *resp = json_is_array (root) ? json_array_get (root, k) : root;
        if (!json_is_object (resp)) {
            s_set (err, errlen, "%s", "a response is not an object");
            goto done;
        }
        const json_t *id = json_object_get (resp, "id");
        if (!json_is_integer (id)) {
            const json_t *e = json_object_get (resp, "error");
            const json_t *m = json_object_get (e, "message");
            s_set (err, errlen, "error for the whole request: %s",
                   json_is_string (m) ? json_string_value (m) : "(no message)");
            goto done;
        }
        json_int_t i = json_integer_value (id);
        if (i < 0 || (size_t) i >= n || seen[i]) {
            s_set (err, errlen, "%s", "unknown or repeated id");
            goto done;
        }
        seen[i] = true;
        if (s_one (resp, &answers[i])) {
            s_set (err, errlen, "unexpected answer to %s",
                   answers[i].kind == RPC_BLOCKHASH  ? "getLatestBlockhash"
                   : answers[i].kind == RPC_HEIGHT   ? "getBlockHeight"
                   : answers[i].kind == RPC_SEND     ? "sendTransaction"
                   : answers[i].kind == RPC_STATUSES ? "getSignatureStatuses"
                                                     : "getTokenAccountBalance");
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!seen[i]) {
            s_set (err, errlen, "%s", "a call was not answered");
            goto done;
        }
    rc = 0;
done:
    json_decref (root);
    return rc;
}
