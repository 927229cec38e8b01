/*  test_rpc_decode — what a Solana node answers, read into C values: every shape the settler
    asks for, errors the way nodes send them (and the way the local ledger does), and answers
    that must be refused as a whole because they are not an answer to what was asked.
*/
#include "rpc_decode.h"

#include <criterion/criterion.h>
#include <string.h>

#define SIG1                                                                                       \
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
#define SIG2                                                                                       \
    "4pWm4xfCJdJ6p4bsAbbXhQpnvqCvmDdRPPk9GG3iJCmuj95H6cQYhN8cUHZSuYmzcrQCVbUeJf1t7ZCd4rVtt9Vk"
#define HASH "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"

static int s_decode (const char *body, rpc_answer_t *a, size_t n, char *err)
{
    return rpc_decode (body, strlen (body), a, n, err, 200);
}

Test (rpc_decode, a_batch_of_every_kind_in_any_order)
{
    rpc_sig_status_t st[4];
    rpc_answer_t a[5] = {{.kind = RPC_BLOCKHASH},
                         {.kind = RPC_HEIGHT},
                         {.kind = RPC_SEND},
                         {.kind = RPC_SEND},
                         {.kind = RPC_STATUSES, .statuses = st, .count = 4}};
    const char *body =
        "[{\"jsonrpc\":\"2.0\",\"result\":{\"context\":{\"slot\":1001},\"value\":[null,"
        "{\"slot\":5,\"confirmations\":0,\"err\":null,\"status\":{\"Ok\":null},"
        "\"confirmationStatus\":\"confirmed\"},"
        "{\"slot\":6,\"confirmations\":null,\"err\":null,\"confirmationStatus\":\"processed\"},"
        "{\"slot\":7,\"confirmations\":null,\"err\":{\"InstructionError\":[4,{\"Custom\":1}]},"
        "\"confirmationStatus\":\"finalized\"}]},\"id\":4},"
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32002,\"message\":\"Transaction simulation "
        "failed: Error processing Instruction 1: custom program error: 0x1\",\"data\":{\"err\":"
        "{\"InstructionError\":[1,{\"Custom\":1}]},\"logs\":[]}},\"id\":3},"
        "{\"jsonrpc\":\"2.0\",\"result\":\"" SIG1 "\",\"id\":2},"
        "{\"jsonrpc\":\"2.0\",\"result\":1234,\"id\":1},"
        "{\"jsonrpc\":\"2.0\",\"result\":{\"context\":{\"slot\":9},\"value\":{\"blockhash\":\"" HASH
        "\",\"lastValidBlockHeight\":150}},\"id\":0}]";
    char err[200];
    cr_assert_eq (s_decode (body, a, 5, err), 0, "%s", err);
    cr_assert_eq (a[0].code, 0);
    cr_assert_eq (a[0].last_valid, 150);
    cr_assert_eq (a[1].height, 1234);
    cr_assert_str_eq (a[2].signature, SIG1);
    cr_assert_eq (a[3].code, -32002);
    cr_assert_eq (a[3].err.kind, SOL_ERR_INSTRUCTION);
    cr_assert_eq (a[3].err.ix, 1);
    cr_assert_eq (a[3].err.custom, 1);
    cr_assert_str_eq (a[3].err.text, "{\"InstructionError\":[1,{\"Custom\":1}]}");
    cr_assert_not (st[0].known);
    cr_assert (st[1].known);
    cr_assert_eq (st[1].level, SOL_LEVEL_CONFIRMED);
    cr_assert_eq (st[1].err.kind, SOL_ERR_NONE);
    cr_assert_eq (st[2].level, SOL_LEVEL_PROCESSED);
    cr_assert_eq (st[3].level, SOL_LEVEL_FINALIZED);
    cr_assert_eq (st[3].err.kind, SOL_ERR_INSTRUCTION);
    cr_assert_eq (st[3].err.ix, 4);
}

Test (rpc_decode, transaction_errors)
{
    sol_err_t e;
    cr_assert_eq (sol_err_parse ("\"BlockhashNotFound\"", 19, &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_BLOCKHASH_NOT_FOUND);
    cr_assert_eq (sol_err_parse ("\"AlreadyProcessed\"", 18, &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_ALREADY_PROCESSED);
    const char *j = "\"InsufficientFundsForFee\"";
    cr_assert_eq (sol_err_parse (j, strlen (j), &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_OTHER);
    cr_assert_str_eq (e.text, j);
    j = "{\"InstructionError\":[0,\"InvalidAccountData\"]}";
    cr_assert_eq (sol_err_parse (j, strlen (j), &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_INSTRUCTION);
    cr_assert_eq (e.ix, 0);
    cr_assert_eq (e.custom, -1);
    cr_assert_str_eq (e.name, "InvalidAccountData");
    j = "{\"InstructionError\":[2,{\"BorshIoError\":\"x\"}]}";
    cr_assert_eq (sol_err_parse (j, strlen (j), &e), 0);
    cr_assert_str_eq (e.name, "BorshIoError");
    j = "{\"InsufficientFundsForRent\":{\"account_index\":3}}";
    cr_assert_eq (sol_err_parse (j, strlen (j), &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_OTHER);
    cr_assert_eq (e.ix, -1);
    //  an instruction index outside any transaction is not believed
    j = "{\"InstructionError\":[300,\"GenericError\"]}";
    cr_assert_eq (sol_err_parse (j, strlen (j), &e), 0);
    cr_assert_eq (e.kind, SOL_ERR_OTHER);
    cr_assert_eq (sol_err_parse ("{", 1, &e), -1);
}

Test (rpc_decode, one_call_answered_by_one_object)
{
    rpc_answer_t a = {.kind = RPC_HEIGHT};
    char err[200];
    cr_assert_eq (s_decode ("{\"jsonrpc\":\"2.0\",\"result\":77,\"id\":0}", &a, 1, err), 0);
    cr_assert_eq (a.height, 77);
    cr_assert_eq (s_decode ("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32005,\"message\":\"Node "
                            "is unhealthy\"},\"id\":0}",
                            &a, 1, err),
                  0);
    cr_assert_eq (a.code, -32005);
    cr_assert_str_eq (a.message, "Node is unhealthy");
}

Test (rpc_decode, refuses_what_is_not_an_answer)
{
    rpc_sig_status_t st[2];
    rpc_answer_t a[2] = {{.kind = RPC_HEIGHT}, {.kind = RPC_STATUSES, .statuses = st, .count = 2}};
    char err[200];
    static const char *bad[] = {
        "",
        "not json",
        "[]",
        "[1,2]",
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":429,\"message\":\"Too many "
        "requests\"},\"id\":null}",
        "[{\"result\":1,\"id\":0}]", //  a call unanswered
        "[{\"result\":1,\"id\":0},{\"result\":1,\"id\":0}]",
        "[{\"result\":1,\"id\":0},{\"result\":{\"value\":[null,null]},\"id\":7}]",
        "[{\"result\":\"1\",\"id\":0},{\"result\":{\"value\":[null,null]},\"id\":1}]",
        "[{\"result\":-1,\"id\":0},{\"result\":{\"value\":[null,null]},\"id\":1}]",
        "[{\"result\":1,\"id\":0},{\"result\":{\"value\":[null]},\"id\":1}]",
        "[{\"result\":1,\"id\":0},{\"result\":{\"value\":[null,7]},\"id\":1}]",
        "[{\"result\":1,\"id\":0},{\"result\":{\"value\":[null,{\"confirmationStatus\":\"x\"}]},"
        "\"id\":1}]",
        "[{\"result\":1,\"id\":0},{\"error\":{\"message\":\"no code\"},\"id\":1}]",
        "[{\"id\":0},{\"result\":{\"value\":[null,null]},\"id\":1}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (s_decode (bad[i], a, 2, err), -1, "case %zu accepted: %s", i, bad[i]);
    cr_assert_eq (s_decode (bad[4], a, 2, err), -1);
    cr_assert_not_null (strstr (err, "Too many requests"), "%s", err);
}

Test (rpc_decode, refuses_bad_signatures_and_blockhashes)
{
    rpc_answer_t a = {.kind = RPC_SEND};
    char err[200];
    cr_assert_eq (s_decode ("{\"result\":\"" SIG2 "\",\"id\":0}", &a, 1, err), 0);
    cr_assert_eq (s_decode ("{\"result\":\"0OIl\",\"id\":0}", &a, 1, err), -1);
    cr_assert_eq (s_decode ("{\"result\":\"" HASH "\",\"id\":0}", &a, 1, err), -1, "32 bytes");
    a.kind = RPC_BLOCKHASH;
    cr_assert_eq (s_decode ("{\"result\":{\"value\":{\"blockhash\":\"" SIG2
                            "\",\"lastValidBlockHeight\":1}},\"id\":0}",
                            &a, 1, err),
                  -1, "64 bytes");
    cr_assert_eq (
        s_decode ("{\"result\":{\"value\":{\"blockhash\":\"" HASH "\"}},\"id\":0}", &a, 1, err),
        -1);
}

Test (rpc_decode, token_balances_as_decimal_strings)
{
    rpc_answer_t a[3] = {
        {.kind = RPC_TOKEN_BALANCE}, {.kind = RPC_TOKEN_BALANCE}, {.kind = RPC_TOKEN_BALANCE}};
    const char *body =
        "[{\"jsonrpc\":\"2.0\",\"result\":{\"context\":{\"slot\":9},\"value\":{\"amount\":"
        "\"18446744073709551615\",\"decimals\":6,\"uiAmount\":1.8e13,\"uiAmountString\":\"x\"}},"
        "\"id\":0},"
        "{\"jsonrpc\":\"2.0\",\"result\":{\"context\":{\"slot\":9},\"value\":{\"amount\":\"0\","
        "\"decimals\":3}},\"id\":1},"
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32602,\"message\":\"Invalid param: could not "
        "find account\"},\"id\":2}]";
    char err[200];
    cr_assert_eq (s_decode (body, a, 3, err), 0, "%s", err);
    cr_assert_eq (a[0].amount, UINT64_MAX);
    cr_assert_eq (a[1].amount, 0);
    cr_assert_eq (a[2].code, -32602, "a vault that does not exist is an error, not a failure");
    //  not a decimal string, or past u64
    const char *bad[] = {
        "{\"jsonrpc\":\"2.0\",\"result\":{\"value\":{\"amount\":12}},\"id\":0}",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"value\":{\"amount\":\"-1\"}},\"id\":0}",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"value\":{\"amount\":\"\"}},\"id\":0}",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"value\":{\"amount\":\"18446744073709551616\"}},\"id\":"
        "0}",
        "{\"jsonrpc\":\"2.0\",\"result\":{\"value\":null},\"id\":0}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq (s_decode (bad[i], a, 1, err), -1, "%s", bad[i]);
        cr_assert_not_null (strstr (err, "getTokenAccountBalance"), "%s", err);
    }
}
