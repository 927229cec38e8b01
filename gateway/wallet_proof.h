/*  wallet_proof — a user proves that a wallet is theirs (docs/api.md), the way Sign-In With
    Solana does it.

    POST /api/auth/challenge issues a plain-text message (EIP-4361 style) naming the wallet,
    the username, a random single-use nonce and an expiry five minutes on; the wallet signs
    those exact bytes (a browser wallet's signMessage, mcectl from a keypair file); then
    POST /api/auth/register or /api/auth/wallet sends the signature, which must verify
    against the wallet's public key (ed25519, libsodium), and consumes the nonce in the same
    transaction that writes the user. The message is kept whole, so what is verified is
    byte for byte what was handed out, whatever this code's format becomes later.

    Challenges live in Postgres (gateway/migrations/0002), not in one gateway's memory: any
    gateway behind a load balancer can issue one and any other can consume it, and the
    consuming UPDATE ... WHERE used_at IS NULL AND expires_at > now () lets exactly one win.

    What an outsider can make us hold is bounded (anyone may ask for challenges):
    - a challenge is deleted once it has been expired for WALLET_PROOF_KEEP_S (the grace lets
      a late client hear "expired" or "used" rather than "no challenge"); each issue deletes
      those first;
    - a wallet and username pair keeps its newest WALLET_PROOF_PER_PAIR challenges: asking
      again replaces the oldest, so retrying never locks anyone out;
    - the table holds at most WALLET_PROOF_MAX rows in all: beyond that, issuing answers
      "too many challenges" until some expire. Concurrent issues on several gateways may
      overshoot by the number of worker threads; no more.
    With the gateway's per-address rate limit in front, a flood costs at most WALLET_PROOF_MAX
    rows and a pause of sign-ups for WALLET_PROOF_TTL_S + WALLET_PROOF_KEEP_S, never growth.

    Everything but wallet_proof_message and wallet_proof_domain queries Postgres: run it on
    the gateway's worker.
*/
#ifndef MCE_WALLET_PROOF_H
#define MCE_WALLET_PROOF_H

#include "auth.h"
#include "pg.h"

#include <stddef.h>
#include <stdint.h>

#define WALLET_PROOF_TTL_S       300   //  a challenge is good this long after it is issued
#define WALLET_PROOF_KEEP_S      300   //  and is deleted this long after it expired
#define WALLET_PROOF_PER_PAIR    3     //  challenges kept per wallet and username
#define WALLET_PROOF_MAX         10000 //  challenges kept in all
#define WALLET_PROOF_NONCE_MAX   32    //  base58 of 16 random bytes (22 characters) + NUL
#define WALLET_PROOF_DOMAIN_MAX  256
#define WALLET_PROOF_MESSAGE_MAX 640
#define WALLET_PROOF_TIME_MAX    24 //  "2026-11-21T21:40:00Z" + NUL

typedef enum {
    WALLET_PROOF_OK = 0,
    WALLET_PROOF_NO_CHALLENGE,  //  none for this wallet and username (or long expired)
    WALLET_PROOF_MISMATCH,      //  the nonce given was issued for another wallet or username
    WALLET_PROOF_BAD_SIGNATURE, //  not the wallet's signature of the challenge's message
    WALLET_PROOF_EXPIRED,       //  the signed challenge has expired
    WALLET_PROOF_USED,          //  the signed challenge was consumed already
    WALLET_PROOF_FULL,          //  WALLET_PROOF_MAX challenges are outstanding
    WALLET_PROOF_DATABASE,      //  Postgres failed (logged)
    WALLET_PROOF_OUTCOMES
} wallet_proof_outcome_t;

//  A challenge as POST /api/auth/challenge answers it.
typedef struct {
    char message[WALLET_PROOF_MESSAGE_MAX];
    char nonce[WALLET_PROOF_NONCE_MAX];
    char issued_at[WALLET_PROOF_TIME_MAX];
    char expires_at[WALLET_PROOF_TIME_MAX];
} wallet_proof_challenge_t;

//  How the API answers an outcome: HTTP status, error code, the field to blame (NULL when
//  none) and a sentence for people. All borrowed static strings.
typedef struct {
    unsigned status;
    const char *code;
    const char *field;
    const char *message;
} wallet_proof_answer_t;

const wallet_proof_answer_t *wallet_proof_answer (wallet_proof_outcome_t outcome);

//  The domain a message names, from the request's Host header (may be NULL): the host the
//  client reached, as a wallet compares it with the page asking for the signature; "mce"
//  when the header is missing or holds anything but a host name or address and a port.
void wallet_proof_domain (const char *host, char out[WALLET_PROOF_DOMAIN_MAX]);

//  The message for these parts (times in Unix seconds), into out. Its length, or -1 when out
//  is too small (WALLET_PROOF_MESSAGE_MAX always suffices for checked input). Pure: for the
//  issuer and for tests.
int wallet_proof_message (const char *domain, const char *wallet, const char *username,
                          const char *nonce, int64_t issued_s, int64_t expires_s, char *out,
                          size_t size);

//  Issues a challenge for wallet and username (both already checked with auth_check_*) at
//  now_us (wall clock, microseconds), after deleting what has outlived its grace and the
//  pair's oldest beyond WALLET_PROOF_PER_PAIR. OK with *out filled, FULL, or DATABASE.
wallet_proof_outcome_t wallet_proof_issue (pg_t *pg, const char *domain, const char *wallet,
                                           const char *username, int64_t now_us,
                                           wallet_proof_challenge_t *out);

//  Finds the challenge that signature (base58, checked with auth_check_signature) signs: the
//  one nonce names, or, when nonce is NULL, any of the pair's. Writes nothing. OK with its
//  nonce in nonce_out; NO_CHALLENGE, MISMATCH, BAD_SIGNATURE, EXPIRED, USED or DATABASE.
//  Costs an ed25519 verification per candidate (at most a handful): cheap next to argon2id,
//  so a caller checks this before hashing a password.
wallet_proof_outcome_t wallet_proof_check (pg_t *pg, const char *wallet, const char *username,
                                           const char *nonce, const char *signature,
                                           char nonce_out[WALLET_PROOF_NONCE_MAX]);

//  Consumes the challenge nonce names: call it inside the transaction that writes what the
//  proof is for, so a rollback gives the nonce back. OK when this call consumed it; USED or
//  EXPIRED when it was consumed or expired since wallet_proof_check (another gateway won);
//  DATABASE when a statement failed (the transaction is then aborted).
wallet_proof_outcome_t wallet_proof_consume (pg_t *pg, const char *nonce);

#endif
