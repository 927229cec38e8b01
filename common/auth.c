/*  auth — see auth.h.

    Token verification is layered so that libjwt only ever sees input we have already
    constrained: the length is bounded and the token must be three dot-separated runs of
    base64url before it is copied (libjwt wants a NUL-terminated string). The header is
    then decoded and read here, with our own JSON parse, and must name HS256: libjwt takes
    the algorithm from the header, so left alone it would verify an HS384 or HS512 token
    made with our key, and some versions skip the check entirely for "none". Only then does
    libjwt check the signature with our key, and we check jwt_get_alg once more. Claims are
    read only from a token whose signature held, and copied out before jwt_free.

    libjwt 1.10 (Debian 12) has no claim validation of its own (no jwt_valid), so exp and
    the types of the claims are checked here, with jansson on libjwt's parse of the verified
    payload (jwt_get_grants_json): its jwt_get_grant_int does not check the JSON type.

    Passwords and API keys are thin wrappers over libsodium; what they add is the policy
    (which algorithm, which costs, what a key looks like) and refusing inputs libsodium
    would accept but we never produce.
*/
#include "auth.h"

#include "base58.h"
#include "proto.h"

#include <assert.h>
#include <pthread.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Random bytes in an API key: as strong as the HS256 key, and short enough to paste.
#define S_API_KEY_BYTES      32
#define S_API_KEY_PREFIX_LEN (sizeof AUTH_API_KEY_PREFIX - 1)
#define S_API_KEY_TEXT_LEN                                                                         \
    (S_API_KEY_PREFIX_LEN +                                                                        \
     sodium_base64_ENCODED_LEN (S_API_KEY_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1)

_Static_assert(AUTH_HASH_MAX == crypto_pwhash_STRBYTES, "AUTH_HASH_MAX must match libsodium");
_Static_assert(AUTH_API_KEY_MAX == S_API_KEY_TEXT_LEN + 1, "AUTH_API_KEY_MAX: prefix + 43 + NUL");
_Static_assert(AUTH_API_KEY_HASH_MAX == crypto_hash_sha256_BYTES * 2 + 1, "hex SHA-256 + NUL");
_Static_assert(sizeof (long) >= sizeof (int64_t), "libjwt passes integer claims as long");
_Static_assert(AUTH_USERNAME_MAX < sizeof ((auth_claims_t *) 0)->sub, "sub holds a username");

//  The reasons auth_jwt_verify gives, listed in auth.h.
#define S_MALFORMED     "malformed token"
#define S_BAD_ALG       "alg must be HS256"
#define S_BAD_SIGNATURE "bad signature"
#define S_NO_SUB        "missing claim sub"
#define S_BAD_SUB       "bad claim sub"
#define S_BAD_ROLE      "bad role"
#define S_NO_IAT        "missing claim iat"
#define S_NO_EXP        "missing claim exp"
#define S_BAD_IAT       "bad claim iat"
#define S_EXPIRED       "expired"
#define S_FUTURE_IAT    "issued in the future"
#define S_SHORT_SECRET  "server secret too short"

int auth_init (void)
{
    //  0 the first time, 1 when already done: both are fine.
    return sodium_init () < 0 ? -1 : 0;
}

int auth_cost_parse (const char *name, auth_cost_t *out)
{
    assert (out);
    if (!name)
        return -1;
    if (strcmp (name, "interactive") == 0)
        *out = AUTH_COST_INTERACTIVE;
    else if (strcmp (name, "moderate") == 0)
        *out = AUTH_COST_MODERATE;
    else if (strcmp (name, "test") == 0)
        *out = AUTH_COST_TEST;
    else
        return -1;
    return 0;
}

int auth_password_hash (const char *password, auth_cost_t cost, char out[AUTH_HASH_MAX])
{
    assert (password);
    assert (out);
    unsigned long long opslimit;
    size_t memlimit;
    switch (cost) {
        case AUTH_COST_INTERACTIVE:
            opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
            memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
            break;
        case AUTH_COST_MODERATE:
            opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
            memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
            break;
        case AUTH_COST_TEST:
            opslimit = crypto_pwhash_OPSLIMIT_MIN;
            memlimit = crypto_pwhash_MEMLIMIT_MIN;
            break;
        default:
            assert (!"unknown auth_cost_t");
            return -1;
    }
    //  Name the algorithm rather than take libsodium's default, so a library upgrade that
    //  changes the default cannot change what we store.
    if (crypto_pwhash_str_alg (out, password, strlen (password), opslimit, memlimit,
                               crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -1;
    return 0;
}

const char *auth_password_decoy (auth_cost_t cost)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char decoys[AUTH_COST_TEST + 1][AUTH_HASH_MAX];
    if ((int) cost < 0 || cost > AUTH_COST_TEST)
        return NULL;
    pthread_mutex_lock (&lock);
    if (!decoys[cost][0]) {
        uint8_t random[16];
        char password[2 * sizeof random + 1];
        randombytes_buf (random, sizeof random);
        sodium_bin2hex (password, sizeof password, random, sizeof random);
        if (auth_password_hash (password, cost, decoys[cost]))
            decoys[cost][0] = '\0';
        sodium_memzero (password, sizeof password);
        sodium_memzero (random, sizeof random);
    }
    pthread_mutex_unlock (&lock);
    return decoys[cost][0] ? decoys[cost] : NULL;
}

bool auth_password_verify (const char *hash, const char *password)
{
    if (!hash || !password)
        return false;
    //  Only our own kind of hash: a stored argon2i hash or anything else is not a match.
    if (strncmp (hash, crypto_pwhash_argon2id_STRPREFIX,
                 sizeof crypto_pwhash_argon2id_STRPREFIX - 1) != 0)
        return false;
    //  libsodium reads the hash as a crypto_pwhash_STRBYTES array; a shorter string from
    //  the database is copied into one so nothing past its NUL is ever read.
    size_t hash_len = strnlen (hash, AUTH_HASH_MAX);
    if (hash_len >= AUTH_HASH_MAX)
        return false;
    //  Nothing longer can have been registered; refusing it early bounds the work.
    size_t password_len = strnlen (password, AUTH_PASSWORD_MAX + 1);
    if (password_len > AUTH_PASSWORD_MAX)
        return false;
    char padded[AUTH_HASH_MAX] = {0};
    memcpy (padded, hash, hash_len);
    return crypto_pwhash_str_verify (padded, password, password_len) == 0;
}

//  ---------------------------------------------------------------------------------------
//  Input rules

static bool s_is_lower_or_digit (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *auth_check_username (const char *text, size_t len)
{
    if (!text || len < AUTH_USERNAME_MIN || len > AUTH_USERNAME_MAX)
        return "must be 3 to 32 characters";
    for (size_t i = 0; i < len; i++)
        if (!s_is_lower_or_digit (text[i]) && text[i] != '_' && text[i] != '.' && text[i] != '-')
            return "may contain only a-z, 0-9, '_', '.' and '-'";
    if (!s_is_lower_or_digit (text[0]))
        return "must start with a letter or digit";
    return NULL;
}

//  Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
static bool s_utf8_valid (const uint8_t *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t lead = text[i];
        if (lead < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t code, min;
        if ((lead & 0xe0) == 0xc0) {
            more = 1, code = lead & 0x1f, min = 0x80;
        }
        else if ((lead & 0xf0) == 0xe0) {
            more = 2, code = lead & 0x0f, min = 0x800;
        }
        else if ((lead & 0xf8) == 0xf0) {
            more = 3, code = lead & 0x07, min = 0x10000;
        }
        else
            return false; //  a continuation byte or 0xf8..0xff where a character starts
        if (len - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((text[i + k] & 0xc0) != 0x80)
                return false;
            code = (code << 6) | (text[i + k] & 0x3f);
        }
        if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

const char *auth_check_password (const char *text, size_t len)
{
    if (!text || len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX)
        return "must be 8 to 128 bytes long";
    //  A NUL would silently end the password where it is hashed: "secret12\0anything"
    //  would then match "secret12".
    if (memchr (text, '\0', len))
        return "must not contain NUL";
    if (!s_utf8_valid ((const uint8_t *) text, len))
        return "must be valid UTF-8";
    return NULL;
}

const char *auth_check_wallet (const char *text, size_t len)
{
    //  A 32-byte key is at most 44 characters; BASE58_TEXT_MAX bytes of room hold whatever
    //  base58_decode accepts, so -1 below can only mean a character outside the alphabet.
    if (!text || len > BASE58_TEXT_MAX)
        return "must be a 32-byte Solana public key";
    uint8_t key[BASE58_TEXT_MAX];
    int key_len = base58_decode (text, len, key, sizeof key);
    if (key_len < 0)
        return "must be base58 (no 0, O, I or l)";
    if (key_len != BASE58_KEY_BYTES)
        return "must be a 32-byte Solana public key";
    return NULL;
}

const char *auth_check_signature (const char *text, size_t len)
{
    static const char *const wrong = "must be a 64-byte ed25519 signature in base58";
    if (!text || len > BASE58_TEXT_MAX)
        return wrong;
    uint8_t sig[BASE58_TEXT_MAX];
    int sig_len = base58_decode (text, len, sig, sizeof sig);
    if (sig_len < 0)
        return "must be base58 (no 0, O, I or l)";
    if (sig_len != AUTH_SIGNATURE_BYTES)
        return wrong;
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Wallet signatures

_Static_assert(AUTH_SEED_BYTES == crypto_sign_SEEDBYTES, "AUTH_SEED_BYTES: an ed25519 seed");
_Static_assert(AUTH_SIGNATURE_BYTES == crypto_sign_BYTES, "an ed25519 signature");
_Static_assert(BASE58_KEY_BYTES == crypto_sign_PUBLICKEYBYTES, "a wallet is an ed25519 key");
//  AUTH_WALLET_MAX and AUTH_SIGNATURE_TEXT_MAX: base58 of 32 bytes is at most 44 characters,
//  of 64 bytes at most 88 (each byte is log 256 / log 58 = 1.37 digits).

bool auth_wallet_verify (const char *wallet, const char *signature, size_t sig_len,
                         const void *message, size_t len)
{
    if (!wallet || !signature || (!message && len))
        return false;
    //  base58_decode needs at most as many bytes as it reads characters, and reads at most
    //  BASE58_TEXT_MAX: these buffers hold whatever it accepts.
    uint8_t key[BASE58_TEXT_MAX], sig[BASE58_TEXT_MAX];
    size_t wallet_len = strnlen (wallet, AUTH_WALLET_MAX);
    if (base58_decode (wallet, wallet_len, key, sizeof key) != BASE58_KEY_BYTES ||
        base58_decode (signature, sig_len, sig, sizeof sig) != AUTH_SIGNATURE_BYTES)
        return false;
    //  libsodium also refuses a non-canonical signature and a key of small order, which no
    //  real wallet has: neither can be forged into a match.
    return crypto_sign_verify_detached (sig, message, len, key) == 0;
}

int auth_wallet_sign (const uint8_t seed[AUTH_SEED_BYTES], const void *message, size_t len,
                      char *out, size_t size)
{
    assert (seed);
    assert (message || len == 0);
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    crypto_sign_seed_keypair (pk, sk, seed);
    crypto_sign_detached (sig, NULL, message, len, sk);
    sodium_memzero (sk, sizeof sk);
    return base58_encode (sig, sizeof sig, out, size) < 0 ? -1 : 0;
}

int auth_wallet_of_seed (const uint8_t seed[AUTH_SEED_BYTES], char *out, size_t size)
{
    assert (seed);
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair (pk, sk, seed);
    sodium_memzero (sk, sizeof sk);
    return base58_encode (pk, sizeof pk, out, size) < 0 ? -1 : 0;
}

int auth_seed_parse_hex (const char *hex, uint8_t seed[AUTH_SEED_BYTES])
{
    assert (seed);
    size_t bin_len = 0;
    if (!hex || strlen (hex) != AUTH_SEED_BYTES * 2 ||
        sodium_hex2bin (seed, AUTH_SEED_BYTES, hex, AUTH_SEED_BYTES * 2, NULL, &bin_len, NULL) !=
            0 ||
        bin_len != AUTH_SEED_BYTES) {
        sodium_memzero (seed, AUTH_SEED_BYTES);
        return -1;
    }
    return 0;
}

int auth_keypair_parse (const char *text, size_t len, uint8_t seed[AUTH_SEED_BYTES],
                        char wallet[AUTH_WALLET_MAX], const char **reason)
{
    assert (seed);
    assert (wallet);
    static const char *const shape = "not a keypair: a JSON array of 64 numbers 0 to 255";
    const char *problem = NULL;
    uint8_t bytes[AUTH_SEED_BYTES * 2];
    json_t *root = text ? json_loadb (text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_array (root) || json_array_size (root) != sizeof bytes)
        problem = shape;
    for (size_t i = 0; !problem && i < sizeof bytes; i++) {
        json_t *v = json_array_get (root, i);
        if (!json_is_integer (v) || json_integer_value (v) < 0 || json_integer_value (v) > 255)
            problem = shape;
        else
            bytes[i] = (uint8_t) json_integer_value (v);
    }
    json_decref (root);
    if (!problem) {
        memcpy (seed, bytes, AUTH_SEED_BYTES);
        uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
        crypto_sign_seed_keypair (pk, sk, seed);
        sodium_memzero (sk, sizeof sk);
        //  A file whose halves disagree was edited or corrupted: signing with its seed would
        //  prove a wallet other than the one it names.
        if (sodium_memcmp (pk, bytes + AUTH_SEED_BYTES, sizeof pk) != 0)
            problem = "its public key (the last 32 bytes) is not the seed's";
        else if (base58_encode (pk, sizeof pk, wallet, AUTH_WALLET_MAX) < 0)
            problem = shape; //  cannot happen: AUTH_WALLET_MAX holds any key
    }
    sodium_memzero (bytes, sizeof bytes);
    if (problem) {
        sodium_memzero (seed, AUTH_SEED_BYTES);
        if (reason)
            *reason = problem;
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Tokens

static bool s_is_base64url (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool s_secret_usable (const uint8_t *secret, size_t secret_len)
{
    return secret && secret_len >= AUTH_JWT_SECRET_MIN && secret_len <= (size_t) INT_MAX;
}

//  NULL when the claims are ones auth_jwt_verify would accept, else its reason.
static const char *s_claims_problem (const auth_claims_t *claims)
{
    size_t sub_len = strnlen (claims->sub, sizeof claims->sub);
    if (sub_len == 0)
        return S_NO_SUB;
    if (sub_len == sizeof claims->sub || auth_check_username (claims->sub, sub_len))
        return S_BAD_SUB;
    if (claims->role != PROTO_ROLE_USER && claims->role != PROTO_ROLE_ADMIN)
        return S_BAD_ROLE;
    if (claims->iat < 0 || claims->iat > claims->exp)
        return S_BAD_IAT;
    return NULL;
}

int auth_jwt_mint (const uint8_t *secret, size_t secret_len, const auth_claims_t *claims, char *out,
                   size_t size)
{
    assert (claims);
    assert (out || size == 0);
    if (!s_secret_usable (secret, secret_len) || s_claims_problem (claims))
        return -1;

    jwt_t *jwt = NULL;
    if (jwt_new (&jwt) != 0)
        return -1;
    char *token = NULL;
    if (jwt_add_grant (jwt, "sub", claims->sub) == 0 &&
        jwt_add_grant (jwt, "role", proto_role_name ((proto_role_t) claims->role)) == 0 &&
        jwt_add_grant_int (jwt, "iat", (long) claims->iat) == 0 &&
        jwt_add_grant_int (jwt, "exp", (long) claims->exp) == 0 &&
        jwt_set_alg (jwt, JWT_ALG_HS256, secret, (int) secret_len) == 0)
        token = jwt_encode_str (jwt); //  ours to free
    jwt_free (jwt);                   //  also scrubs its copy of the key
    if (!token)
        return -1;

    int rc = -1;
    size_t len = strlen (token);
    if (len < size) {
        memcpy (out, token, len + 1);
        rc = 0;
    }
    free (token);
    return rc;
}

//  NULL when the header (len bytes of base64url) is JSON naming HS256, else the reason.
static const char *s_header_problem (const char *header, size_t len)
{
    uint8_t json[AUTH_JWT_MAX];
    size_t json_len;
    if (sodium_base642bin (json, sizeof json, header, len, NULL, &json_len, NULL,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return S_MALFORMED;
    //  Duplicate keys are refused: {"alg":"HS256","alg":"none"} must not read one way here
    //  and another in libjwt.
    json_t *root = json_loadb ((const char *) json, json_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return S_MALFORMED;
    }
    const char *problem = NULL;
    json_t *alg = json_object_get (root, "alg");
    json_t *typ = json_object_get (root, "typ");
    //  Length too, so "HS256\u0000..." is not HS256.
    if (!json_is_string (alg) || json_string_length (alg) != 5 ||
        strcmp (json_string_value (alg), "HS256") != 0)
        problem = S_BAD_ALG;
    //  libjwt refuses any other typ; say so here rather than report a bad signature.
    else if (typ && (!json_is_string (typ) || strcasecmp (json_string_value (typ), "JWT") != 0))
        problem = S_MALFORMED;
    json_decref (root);
    return problem;
}

//  Everything after the signature held: the claims' presence, types and values. They are
//  read from libjwt's own parse of the verified payload, but through jansson: libjwt 1.10's
//  jwt_get_grant_int returns json_integer_value of whatever is there, so "exp":"soon" or
//  "exp":1.5 would read as 0 with no error.
static const char *s_read_claims (jwt_t *jwt, int64_t now_s, auth_claims_t *claims)
{
    char *text = jwt_get_grants_json (jwt, NULL); //  ours to free
    json_t *grants = text ? json_loads (text, 0, NULL) : NULL;
    free (text);
    if (!json_is_object (grants)) {
        json_decref (grants);
        return S_MALFORMED;
    }
    const char *problem = NULL;
    json_t *sub = json_object_get (grants, "sub");
    json_t *role = json_object_get (grants, "role");
    json_t *iat = json_object_get (grants, "iat");
    json_t *exp = json_object_get (grants, "exp");
    proto_role_t role_value = proto_role_from_name (json_string_value (role));
    if (!json_is_string (sub))
        problem = S_NO_SUB;
    else if (auth_check_username (json_string_value (sub), json_string_length (sub)))
        problem = S_BAD_SUB;
    else if (role_value != PROTO_ROLE_USER && role_value != PROTO_ROLE_ADMIN)
        problem = S_BAD_ROLE;
    else if (!json_is_integer (iat))
        problem = S_NO_IAT;
    else if (!json_is_integer (exp))
        problem = S_NO_EXP;
    else if (json_integer_value (iat) < 0 || json_integer_value (iat) > json_integer_value (exp))
        problem = S_BAD_IAT;
    else if (json_integer_value (exp) <= now_s)
        problem = S_EXPIRED;
    //  A token dated ahead of our clock by more than clocks drift apart was minted with a
    //  wrong clock or to outlive its stated life: refused either way.
    else if (now_s > 0 && json_integer_value (iat) > now_s + AUTH_CLOCK_SKEW_S)
        problem = S_FUTURE_IAT;
    else {
        //  auth_check_username bounded the length well inside claims->sub
        memcpy (claims->sub, json_string_value (sub), json_string_length (sub) + 1);
        claims->role = (int) role_value;
        claims->iat = (int64_t) json_integer_value (iat);
        claims->exp = (int64_t) json_integer_value (exp);
    }
    json_decref (grants);
    return problem;
}

int auth_jwt_verify (const uint8_t *secret, size_t secret_len, const char *token, size_t token_len,
                     int64_t now_s, auth_claims_t *claims, const char **reason)
{
    assert (claims);
    const char *unused;
    if (!reason)
        reason = &unused;
    if (!s_secret_usable (secret, secret_len)) {
        *reason = S_SHORT_SECRET;
        return -1;
    }
    *reason = S_MALFORMED;
    if (!token || token_len == 0 || token_len > AUTH_JWT_MAX)
        return -1;

    //  header.payload.signature, base64url only; header and payload not empty. An empty
    //  signature passes here and fails the signature check (it is what "none" tokens carry).
    size_t dots[2];
    size_t ndots = 0;
    for (size_t i = 0; i < token_len; i++) {
        if (token[i] == '.') {
            if (ndots == 2)
                return -1;
            dots[ndots++] = i;
        }
        else if (!s_is_base64url (token[i]))
            return -1;
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1)
        return -1;

    const char *problem = s_header_problem (token, dots[0]);
    if (problem) {
        *reason = problem;
        return -1;
    }

    char copy[AUTH_JWT_MAX + 1];
    memcpy (copy, token, token_len);
    copy[token_len] = '\0';
    jwt_t *jwt = NULL;
    //  Always with the key: without one libjwt checks no signature at all.
    int rc = jwt_decode (&jwt, copy, secret, (int) secret_len);
    sodium_memzero (copy, sizeof copy); //  a bearer credential: leave no copy behind
    if (rc != 0 || !jwt) {
        jwt_free (jwt);
        *reason = S_BAD_SIGNATURE;
        return -1;
    }
    if (jwt_get_alg (jwt) != JWT_ALG_HS256)
        problem = S_BAD_ALG;
    else
        problem = s_read_claims (jwt, now_s, claims);
    jwt_free (jwt);
    if (problem) {
        *reason = problem;
        return -1;
    }
    *reason = NULL;
    return 0;
}

int auth_jwt_subject (const char *token, size_t token_len, char sub[AUTH_USERNAME_MAX + 1])
{
    assert (sub);
    if (!token || token_len > AUTH_JWT_MAX)
        return -1;
    const char *first = memchr (token, '.', token_len);
    const char *payload = first ? first + 1 : NULL;
    const char *second =
        payload ? memchr (payload, '.', token_len - (size_t) (payload - token)) : NULL;
    if (!second)
        return -1;
    uint8_t json[AUTH_JWT_MAX];
    size_t json_len = 0;
    if (sodium_base642bin (json, sizeof json, payload, (size_t) (second - payload), NULL, &json_len,
                           NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    json_t *claims = json_loadb ((const char *) json, json_len, 0, NULL);
    json_t *name = json_object_get (claims, "sub");
    int rc = -1;
    if (json_is_string (name) &&
        !auth_check_username (json_string_value (name), json_string_length (name))) {
        memcpy (sub, json_string_value (name), json_string_length (name) + 1);
        rc = 0;
    }
    json_decref (claims);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  API keys

void auth_api_key_new (char key[AUTH_API_KEY_MAX])
{
    assert (key);
    uint8_t raw[S_API_KEY_BYTES];
    randombytes_buf (raw, sizeof raw);
    memcpy (key, AUTH_API_KEY_PREFIX, S_API_KEY_PREFIX_LEN);
    sodium_bin2base64 (key + S_API_KEY_PREFIX_LEN, AUTH_API_KEY_MAX - S_API_KEY_PREFIX_LEN, raw,
                       sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (raw, sizeof raw);
}

void auth_api_key_hash (const char *key, char hex[AUTH_API_KEY_HASH_MAX])
{
    assert (key);
    assert (hex);
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const uint8_t *) key, strlen (key));
    sodium_bin2hex (hex, AUTH_API_KEY_HASH_MAX, digest, sizeof digest);
}

const char *auth_check_api_key (const char *text, size_t len)
{
    static const char *const wrong = "not an API key (mce_ followed by 43 characters)";
    if (!text || len != S_API_KEY_TEXT_LEN ||
        memcmp (text, AUTH_API_KEY_PREFIX, S_API_KEY_PREFIX_LEN) != 0)
        return wrong;
    //  Decoding (rather than checking the characters) also refuses a last character whose
    //  unused low bits are set, so each key has exactly one spelling, the one we hashed.
    uint8_t raw[S_API_KEY_BYTES];
    size_t raw_len;
    if (sodium_base642bin (raw, sizeof raw, text + S_API_KEY_PREFIX_LEN, len - S_API_KEY_PREFIX_LEN,
                           NULL, &raw_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        raw_len != sizeof raw)
        return wrong;
    return NULL;
}

void auth_random (void *buf, size_t len)
{
    randombytes_buf (buf, len);
}

void auth_wipe (void *buf, size_t len)
{
    sodium_memzero (buf, len);
}
