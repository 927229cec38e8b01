/*  auth — passwords, bearer tokens and API keys: the gateway (HTTP and the native port) and
    the broadcaster (its private orders channel) decide who is talking with it.

    All of it in one place, so libsodium and libjwt appear nowhere else (one module
    per external library):

    - Passwords are stored as argon2id strings (libsodium), which carry their own salt and
      cost, so raising the cost later needs no migration: old hashes still verify.
    - Tokens are JWT HS256 with exactly four claims: sub (username), role ("user" or
      "admin"), iat and exp (Unix seconds). Verification trusts nothing from the token
      before the signature is checked with our key and the header names HS256: "none", the
      other HMACs and the public-key algorithms are all refused, since accepting them is
      the classic way to forge a token.
    - API keys for the native port are 32 random bytes, shown once to the user as
      "mce_" + base64url; the database keeps only their SHA-256, so a leaked table holds
      no usable key. A hash without salt is fine here: the key has 256 bits of entropy.
    - Wallets are Solana ed25519 keys. A wallet proves it is the user's by signing a message
      the gateway issued (gateway/wallet_proof.c); the signature is checked here, and tools
      and tests sign here, from a keypair file in the Solana CLI's format (a JSON array of
      64 bytes: the 32-byte seed, then the 32-byte public key).
    - The input rules for usernames, passwords, wallets and signatures live here too, so
      registration and login apply the same ones. Each returns NULL when the input is fine,
      else a short static reason to show the user after the field name.

    Hashing and verifying passwords is deliberately slow (tens of ms, 64 MiB at the default
    cost): call them from the gateway's worker thread, never from its event loop.
*/
#ifndef MCE_AUTH_H
#define MCE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  An argon2id hash string with its NUL (libsodium's crypto_pwhash_STRBYTES).
#define AUTH_HASH_MAX 128
//  Usernames: [a-z0-9_.-], starting with a letter or digit.
#define AUTH_USERNAME_MIN 3
#define AUTH_USERNAME_MAX 32
//  Passwords, in bytes of UTF-8. The upper bound keeps hashing input small and fixed.
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 128
//  Longest token auth_jwt_verify looks at; ours are about 200 bytes.
#define AUTH_JWT_MAX 4096
//  HS256 keys shorter than the hash output (256 bits) weaken it; RFC 7518 §3.2 forbids them.
#define AUTH_JWT_SECRET_MIN 32
//  "mce_" + 43 characters of base64url (32 bytes, no padding) + NUL.
#define AUTH_API_KEY_PREFIX "mce_"
#define AUTH_API_KEY_MAX    48
//  A CURVE key registered as an API key is stored as the hash of this prefix and its public
//  key in Z85 (40 characters): "curve:" + Z85 + NUL fits AUTH_API_KEY_MAX, and no secret key
//  ("mce_...") can hash the same.
#define AUTH_CURVE_KEY_PREFIX "curve:"
#define AUTH_CURVE_KEY_Z85    40
//  Hex SHA-256 of an API key + NUL.
#define AUTH_API_KEY_HASH_MAX 65
//  A wallet (base58 of a 32-byte ed25519 public key) with its NUL: 32 to 44 characters.
#define AUTH_WALLET_MAX 45
//  A wallet's ed25519 seed, and its signature of a message (base58: at most 88 + NUL).
#define AUTH_SEED_BYTES         32
#define AUTH_SIGNATURE_BYTES    64
#define AUTH_SIGNATURE_TEXT_MAX 90

//  How much time and memory one password hash costs. Stored in each hash, so changing
//  it affects new hashes only.
typedef enum {
    AUTH_COST_INTERACTIVE = 0, //  libsodium's interactive limits (64 MiB, 2 passes): default
    AUTH_COST_MODERATE,        //  256 MiB, 3 passes: for a gateway with memory to spare
    AUTH_COST_TEST,            //  the minimum argon2id allows: tests only, never production
} auth_cost_t;

//  The claims of one of our tokens.
typedef struct {
    char sub[64]; //  username
    int role;     //  PROTO_ROLE_USER or PROTO_ROLE_ADMIN (proto/proto.h)
    int64_t iat;  //  issued at, Unix seconds
    int64_t exp;  //  expires at, Unix seconds: the token is valid while now < exp
} auth_claims_t;

//  Initialises libsodium. Call once at start, before any other auth_ function and before
//  threads start; calling again is harmless. Returns 0, or -1 when libsodium cannot start
//  (no usable source of randomness).
int auth_init (void);

//  "interactive", "moderate" or "test" -> *out. Returns 0, or -1 for anything else (NULL
//  included), leaving *out untouched.
int auth_cost_parse (const char *name, auth_cost_t *out);

//  Hashes a NUL-terminated password with argon2id at the given cost, with a fresh random
//  salt, into out ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"). Returns 0, or -1 when the
//  memory for the hash cannot be had. Check the password with auth_check_password first.
int auth_password_hash (const char *password, auth_cost_t cost, char out[AUTH_HASH_MAX]);

//  A hash at `cost` of a random password nobody knows (made on the first call for each cost,
//  then kept): a login for an unknown username is checked against it, so that it costs what
//  a wrong password costs for a user who exists, whatever password_cost is configured. NULL
//  when the hash could not be made (no memory).
const char *auth_password_decoy (auth_cost_t cost);

//  True when password matches hash (a string from auth_password_hash, e.g. read back from
//  the database). False for a wrong password, and for a hash that is not one of ours,
//  empty, NULL or longer than AUTH_HASH_MAX - 1.
bool auth_password_verify (const char *hash, const char *password);

//  Input rules. text need not be NUL-terminated; len counts bytes, so an embedded NUL is
//  seen and refused. Each returns NULL when the input is acceptable, else a borrowed static
//  reason such as "must be 3 to 32 characters".
//  Username: AUTH_USERNAME_MIN..AUTH_USERNAME_MAX of [a-z0-9_.-], first a letter or digit.
const char *auth_check_username (const char *text, size_t len);
//  Password: AUTH_PASSWORD_MIN..AUTH_PASSWORD_MAX bytes of valid UTF-8 without NUL.
const char *auth_check_password (const char *text, size_t len);
//  Wallet: a Solana public key, base58 that decodes to exactly 32 bytes.
const char *auth_check_wallet (const char *text, size_t len);
//  Signature: base58 that decodes to exactly 64 bytes (an ed25519 signature).
const char *auth_check_signature (const char *text, size_t len);

//  True when signature (base58, sig_len characters) is the ed25519 signature by wallet
//  (base58 public key, NUL-terminated) of the len bytes of message, as a Solana wallet's
//  signMessage makes it. False for a wrong signature and for any malformed input.
bool auth_wallet_verify (const char *wallet, const char *signature, size_t sig_len,
                         const void *message, size_t len);
//  Signs len bytes of message with the wallet whose ed25519 seed is seed: the signature as
//  base58 into out (AUTH_SIGNATURE_TEXT_MAX always suffices). 0, or -1 when out is too small.
int auth_wallet_sign (const uint8_t seed[AUTH_SEED_BYTES], const void *message, size_t len,
                      char *out, size_t size);
//  The wallet (base58 public key) of an ed25519 seed, into out (AUTH_WALLET_MAX suffices).
//  0, or -1 when out is too small.
int auth_wallet_of_seed (const uint8_t seed[AUTH_SEED_BYTES], char *out, size_t size);
//  An ed25519 seed written as 64 hex digits (the local ledger's setup file has them). 0, or
//  -1 for anything else.
int auth_seed_parse_hex (const char *hex, uint8_t seed[AUTH_SEED_BYTES]);
//  Reads a keypair file's text (len bytes, need not be NUL-terminated) in the Solana CLI's
//  format: a JSON array of exactly 64 integers 0..255, the seed then the public key, which
//  must be the seed's. 0 with the seed in seed and the wallet in wallet, or -1 with *reason
//  (a borrowed static string) saying what is wrong; seed then holds nothing.
int auth_keypair_parse (const char *text, size_t len, uint8_t seed[AUTH_SEED_BYTES],
                        char wallet[AUTH_WALLET_MAX], const char **reason);

//  Signs claims as an HS256 token into out (NUL-terminated). The claims must be what
//  auth_jwt_verify accepts (a valid username, a known role, 0 <= iat <= exp) and the secret
//  at least AUTH_JWT_SECRET_MIN bytes. Returns 0, or -1 when they are not, when out is too
//  small (AUTH_JWT_MAX always suffices) or libjwt fails.
int auth_jwt_mint (const uint8_t *secret, size_t secret_len, const auth_claims_t *claims, char *out,
                   size_t size);

//  How far ahead of our clock a token's iat may be: the drift between two hosts' NTP clocks.
#define AUTH_CLOCK_SKEW_S 60

//  Checks token_len bytes of token (need not be NUL-terminated) against secret at time
//  now_s (Unix seconds; 0 checks neither expiry nor issue time, for leaving a subscription
//  with a token that has expired since). Returns 0 and fills *claims when the token is ours
//  and current.
//  Otherwise returns -1, leaves *claims untouched and sets *reason (when reason is not NULL)
//  to one of these borrowed static strings:
//      "malformed token"      not three base64url parts, longer than AUTH_JWT_MAX, a header
//                             that is not a JSON object, a signed payload that is not one
//      "alg must be HS256"    header names another algorithm, "none" included
//      "bad signature"        not signed with secret (or a payload that is not JSON)
//      "missing claim sub"    no string "sub";  "bad claim sub": not a valid username
//      "bad role"             "role" missing or neither "user" nor "admin"
//      "missing claim iat"    no integer "iat"; "missing claim exp": no integer "exp"
//      "bad claim iat"        iat negative or after exp
//      "expired"              exp <= now_s
//      "issued in the future" iat > now_s + AUTH_CLOCK_SKEW_S
//      "server secret too short"   secret_len < AUTH_JWT_SECRET_MIN (a configuration error)
int auth_jwt_verify (const uint8_t *secret, size_t secret_len, const char *token, size_t token_len,
                     int64_t now_s, auth_claims_t *claims, const char **reason);

//  The sub claim of token (token_len bytes), read WITHOUT checking the signature or the
//  expiry: for a client that holds a token and needs the name it was issued for (mcectl asks
//  a wallet challenge for that name). Never decide anything with it on a server. 0 with the
//  username in sub, or -1 when the token is not three parts with a JSON payload naming a
//  valid username.
int auth_jwt_subject (const char *token, size_t token_len, char sub[AUTH_USERNAME_MAX + 1]);

//  Makes a new API key: "mce_" + 43 base64url characters of 32 random bytes. Show it to the
//  user once; store only auth_api_key_hash of it.
void auth_api_key_new (char key[AUTH_API_KEY_MAX]);

//  Hex SHA-256 (lower case, 64 characters + NUL) of a NUL-terminated API key: the form the
//  database stores and looks keys up by.
void auth_api_key_hash (const char *key, char hex[AUTH_API_KEY_HASH_MAX]);

//  len random bytes from the system's source (a per-run token key, say).
void auth_random (void *buf, size_t len);
//  Overwrites a secret in memory (a password once hashed) in a way the compiler keeps.
void auth_wipe (void *buf, size_t len);

//  Input rule for an API key presented by a client, in the style of the others: NULL when
//  it has the shape auth_api_key_new makes, else a static reason. Lets the native port turn
//  garbage away before hashing it and asking the database.
const char *auth_check_api_key (const char *text, size_t len);

#endif
