/*  fuzz_rpc_decode — the settler's reading of JSON-RPC answers on arbitrary bytes: every
    answer is decoded or refused with a reason, never a crash, a leak or a value out of range.

    Input: one byte (calls n = 1 + low 2 bits), n bytes (each call's kind = 1 + (low 3 bits
    mod 5); for getSignatureStatuses, signatures asked = 1 + bits 4..5), then the answer's body.
*/
#include "rpc_decode.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = 1 + (data[0] & 3);
    if (size < 1 + n)
        return 0;
    rpc_answer_t answers[4];
    rpc_sig_status_t statuses[4][4];
    memset (answers, 0, sizeof answers);
    for (size_t i = 0; i < n; i++) {
        answers[i].kind = (rpc_kind_t) (1 + (data[1 + i] & 7) % 5);
        answers[i].statuses = statuses[i];
        answers[i].count = 1 + ((data[1 + i] >> 4) & 3);
    }
    const char *body = (const char *) data + 1 + n;
    size_t len = size - 1 - n;
    char err[200] = "";
    if (rpc_decode (body, len, answers, n, err, sizeof err) == 0) {
        for (size_t i = 0; i < n; i++) {
            const rpc_answer_t *a = &answers[i];
            if (a->code == 0 && a->kind == RPC_SEND && strlen (a->signature) < 64)
                abort (); //  base58 of 64 bytes takes at least 64 characters
            if (a->err.kind == SOL_ERR_INSTRUCTION && (a->err.ix < 0 || a->err.ix > 255))
                abort ();
            if (a->code == 0 && a->kind == RPC_STATUSES)
                for (size_t k = 0; k < a->count; k++)
                    if (a->statuses[k].known && (a->statuses[k].level < SOL_LEVEL_PROCESSED ||
                                                 a->statuses[k].level > SOL_LEVEL_FINALIZED))
                        abort ();
        }
    }
    else if (err[0] == '\0')
        abort (); //  a refusal always says why
    sol_err_t e;
    sol_err_parse (body, len, &e);
    return 0;
}
