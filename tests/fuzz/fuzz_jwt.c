/*  fuzz_jwt — auth_jwt_verify on arbitrary bytes, as they would arrive in a bearer header.

    Each input is tried three ways, with the reasons libFuzzer alone would not get far (the
    signature and libjansson, which is not instrumented, stand in its way):

    1. As the token itself. Anything accepted must carry the HMAC-SHA256 of its first two
       parts under the fuzzer's key, recomputed here with libsodium (libFuzzer may learn one
       from the comparisons it watches, which is fine; accepting anything else is not).
    2. As the payload of a token properly signed with that key: what a holder of the key
       could send. Accepted claims must be ones auth_jwt_mint would also sign.
    3. As a recipe for claims (which are present, of which JSON type, with which values),
       built into a signed token with jansson. Here the verdict is checked against the
       rules written out again independently, and accepted claims must be the ones put in.

    Every refusal must come with a reason. Any violation aborts so libFuzzer records the
    input; ASan, UBSan and LSan catch the rest.
*/
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "proto.h"

static const uint8_t s_secret[] = "fuzz-secret-0123456789abcdef-0123456789";
#define SECRET s_secret, sizeof s_secret - 1
#define NOW    1700000000

//  base64url (no padding) of the HMAC-SHA256 of len bytes of text under s_secret.
static void s_mac (const char *text, size_t len, char out[44])
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, s_secret, sizeof s_secret - 1);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) text, len);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_bin2base64 (out, 44, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

//  header.base64url(payload).signature into out; false when it does not fit.
static bool s_sign (const uint8_t *payload, size_t len, char *out, size_t size)
{
    static const char header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; //  HS256, JWT
    size_t used = sizeof header - 1;
    size_t payload_chars =
        sodium_base64_ENCODED_LEN (len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    if (used + 1 + payload_chars + 1 + 44 > size)
        return false;
    memcpy (out, header, used);
    out[used++] = '.';
    sodium_bin2base64 (out + used, size - used, payload, len,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    used += payload_chars;
    char mac[44];
    s_mac (out, used, mac);
    out[used++] = '.';
    memcpy (out + used, mac, sizeof mac); //  with its NUL
    return true;
}

static bool s_signed_by_us (const char *token, size_t len)
{
    const char *dot = memrchr (token, '.', len);
    if (!dot)
        return false;
    char expected[44];
    s_mac (token, (size_t) (dot - token), expected);
    size_t sig_len = len - (size_t) (dot - token) - 1;
    return sig_len == strlen (expected) && memcmp (dot + 1, expected, sig_len) == 0;
}

static void s_check_mintable (const auth_claims_t *claims)
{
    char again[AUTH_JWT_MAX];
    if (claims->exp <= NOW || auth_jwt_mint (SECRET, claims, again, sizeof again) != 0) {
        fprintf (stderr,
                 "accepted claims we would not mint: sub \"%s\" role %d iat %lld exp %lld\n",
                 claims->sub, claims->role, (long long) claims->iat, (long long) claims->exp);
        abort ();
    }
}

//  1. The bytes as a token.
static void s_try_raw (const uint8_t *data, size_t size)
{
    auth_claims_t claims;
    const char *reason = NULL;
    if (auth_jwt_verify (SECRET, (const char *) data, size, NOW, &claims, &reason) == 0) {
        if (!s_signed_by_us ((const char *) data, size)) {
            fprintf (stderr, "accepted a token without our signature: %.*s\n", (int) size,
                     (const char *) data);
            abort ();
        }
        s_check_mintable (&claims);
    }
    else if (!reason)
        abort ();
}

//  2. The bytes as a signed payload.
static void s_try_payload (const uint8_t *data, size_t size)
{
    char token[AUTH_JWT_MAX + 1];
    if (!s_sign (data, size, token, sizeof token))
        return;
    auth_claims_t claims;
    const char *reason = NULL;
    if (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, &reason) == 0)
        s_check_mintable (&claims);
    else if (!reason)
        abort ();
}

//  3. The bytes as a recipe: one byte of kinds, two int64s, then "sub\0role".
enum { S_ABSENT = 0, S_STRING, S_INTEGER, S_OTHER };

static json_t *s_value (int kind, const char *text, size_t len, int64_t number)
{
    switch (kind) {
        case S_STRING:
            return json_stringn (text, len); //  NULL (so absent) when not UTF-8
        case S_INTEGER:
            return json_integer (number);
        case S_OTHER:
            return (number & 1) ? json_real ((double) number) : json_null ();
        default:
            return NULL;
    }
}

static void s_try_recipe (const uint8_t *data, size_t size)
{
    uint8_t head[17] = {0};
    memcpy (head, data, size < sizeof head ? size : sizeof head);
    int64_t iat, exp;
    memcpy (&iat, head + 1, sizeof iat);
    memcpy (&exp, head + 9, sizeof exp);
    const char *text = size > sizeof head ? (const char *) data + sizeof head : "";
    size_t text_len = size > sizeof head ? size - sizeof head : 0;
    const char *nul = memchr (text, '\0', text_len);
    size_t sub_len = nul ? (size_t) (nul - text) : text_len;
    const char *role_text = nul ? nul + 1 : "";
    size_t role_len = nul ? text_len - sub_len - 1 : 0;
    //  Role kinds: absent, "user", "admin", or the text from the input.
    int role_kind = (head[0] >> 2) & 3;
    if (role_kind == 1)
        role_text = "user", role_len = 4;
    else if (role_kind == 2)
        role_text = "admin", role_len = 5;

    json_t *payload = json_object ();
    json_t *sub_value = s_value (head[0] & 3, text, sub_len, iat);
    json_t *role_value = role_kind ? json_stringn (role_text, role_len) : NULL;
    json_t *iat_value = s_value ((head[0] >> 4) & 3, "1700000000", 10, iat);
    json_t *exp_value = s_value ((head[0] >> 6) & 3, "1700000000", 10, exp);
    //  the oracle: auth.h's rules, written out again
    bool sub_ok =
        json_is_string (sub_value) && !auth_check_username (json_string_value (sub_value), sub_len);
    bool role_ok =
        json_is_string (role_value) && ((role_len == 4 && memcmp (role_text, "user", 4) == 0) ||
                                        (role_len == 5 && memcmp (role_text, "admin", 5) == 0));
    bool times_ok = json_is_integer (iat_value) && json_is_integer (exp_value) && iat >= 0 &&
                    iat <= exp && exp > NOW && iat <= NOW + AUTH_CLOCK_SKEW_S;
    if (sub_value)
        json_object_set_new (payload, "sub", sub_value);
    if (role_value)
        json_object_set_new (payload, "role", role_value);
    if (iat_value)
        json_object_set_new (payload, "iat", iat_value);
    if (exp_value)
        json_object_set_new (payload, "exp", exp_value);
    char *json = json_dumps (payload, JSON_COMPACT);
    json_decref (payload);
    if (!json)
        abort ();

    char token[AUTH_JWT_MAX + 1];
    bool fits = s_sign ((const uint8_t *) json, strlen (json), token, sizeof token);
    if (fits && strlen (token) <= AUTH_JWT_MAX) {
        auth_claims_t claims;
        const char *reason = NULL;
        int rc = auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, &reason);
        bool expected = sub_ok && role_ok && times_ok;
        if ((rc == 0) != expected || (rc != 0 && !reason)) {
            fprintf (stderr, "payload %s: verify %d (%s), expected %s\n", json, rc,
                     reason ? reason : "no reason", expected ? "accepted" : "refused");
            abort ();
        }
        if (rc == 0 && (strlen (claims.sub) != sub_len || memcmp (claims.sub, text, sub_len) != 0 ||
                        claims.iat != iat || claims.exp != exp ||
                        claims.role != (role_len == 4 ? PROTO_ROLE_USER : PROTO_ROLE_ADMIN))) {
            fprintf (stderr, "payload %s: claims read back wrong\n", json);
            abort ();
        }
    }
    free (json);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (auth_init () != 0)
        abort ();
    s_try_raw (data, size);
    s_try_payload (data, size);
    s_try_recipe (data, size);
    return 0;
}
