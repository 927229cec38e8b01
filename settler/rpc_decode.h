/*  rpc_decode — reads a Solana JSON-RPC answer into plain C values: the only place the settler
    interprets what a node (or anything pretending to be one) sent back, so it is strict and
    bounded, and fuzzed (tests/fuzz/fuzz_rpc_decode.c).

    A request is a batch of calls with ids 0 … n−1, each of a known kind. The answer is an
    array of responses in any order (or one object when n is 1); each one is a result of the
    shape its kind expects or a JSON-RPC error. An answer that is not that — not JSON, an id
    missing or repeated, a result of the wrong shape — is refused as a whole: the caller treats
    it like a transport failure. A lone error object with no id (a node refusing the whole
    batch, or a rate limiter's body) is refused too, with its message as the reason.

    Transaction errors (the "err" of a signature status, the data.err of a -32002 preflight
    failure) become a sol_err_t: the kinds the settler reacts to, the failing instruction and
    its error, and the chain's own JSON text for people.
*/
#ifndef MCE_RPC_DECODE_H
#define MCE_RPC_DECODE_H

#include "soltx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_BODY_MAX     (16u << 20) //  larger answers are refused
#define RPC_STATUSES_MAX 256         //  signatures per getSignatureStatuses (the node's limit)
#define SOL_ERR_TEXT     128

typedef enum {
    RPC_BLOCKHASH = 1, //  getLatestBlockhash
    RPC_HEIGHT,        //  getBlockHeight
    RPC_SEND,          //  sendTransaction
    RPC_STATUSES,      //  getSignatureStatuses
    RPC_TOKEN_BALANCE, //  getTokenAccountBalance
} rpc_kind_t;

typedef enum {
    SOL_ERR_NONE = 0,
    SOL_ERR_BLOCKHASH_NOT_FOUND, //  the blockhash expired (or is unknown to this node)
    SOL_ERR_ALREADY_PROCESSED,   //  these bytes landed before
    SOL_ERR_INSTRUCTION,         //  {"InstructionError":[ix, error]}
    SOL_ERR_OTHER,               //  anything else: see text
} sol_err_kind_t;

typedef struct {
    sol_err_kind_t kind;
    int ix;         //  SOL_ERR_INSTRUCTION: the failing instruction, else -1
    int64_t custom; //  {"Custom":n} program error, else -1
    char name[48];  //  the instruction error when it is a plain name ("InvalidAccountData")
    char text[SOL_ERR_TEXT]; //  the chain's error as compact JSON, cut to fit
} sol_err_t;

typedef enum {
    SOL_LEVEL_PROCESSED = 1,
    SOL_LEVEL_CONFIRMED,
    SOL_LEVEL_FINALIZED,
} sol_level_t;

typedef struct {
    bool known;        //  false: null, the chain does not know the signature
    sol_level_t level; //  how far it is confirmed (known only)
    sol_err_t err;     //  kind SOL_ERR_NONE when it succeeded
} rpc_sig_status_t;

typedef struct {
    rpc_kind_t kind;
    int64_t code;      //  0 for a result, else the JSON-RPC error code
    char message[160]; //  the error's message
    sol_err_t err;     //  the error's data.err (preflight failures), kind NONE if absent
    //  results, by kind
    uint8_t blockhash[SOL_HASH_BYTES];
    uint64_t last_valid;          //  RPC_BLOCKHASH: lastValidBlockHeight
    uint64_t height;              //  RPC_HEIGHT
    uint64_t amount;              //  RPC_TOKEN_BALANCE: base units
    char signature[SOL_SIG_TEXT]; //  RPC_SEND
    rpc_sig_status_t *statuses;   //  RPC_STATUSES: the caller's array of `count` entries
    size_t count;                 //  ... as many as signatures were asked about
} rpc_answer_t;

//  Decodes len bytes of body as the answer to n calls; answers[i].kind (and, for statuses,
//  .statuses and .count) say what call i was. Fills every answer and returns 0, or returns −1
//  with the reason in err.
int rpc_decode (const char *body, size_t len, rpc_answer_t *answers, size_t n, char *err,
                size_t errlen);

//  Reads a transaction error given as JSON text ("BlockhashNotFound", {"InstructionError":…}).
//  0, or −1 when it is not JSON.
int sol_err_parse (const char *json, size_t len, sol_err_t *out);

#endif
