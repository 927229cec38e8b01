/*  test_auth — passwords, input rules, tokens, wallet signatures and keypair files, and API
    keys, the way the gateway (and mcectl) use them.

    The token tests are attacks as much as checks: tokens with "alg":"none", with another
    HMAC made with our own key, with a payload edited after signing, and with claims of the
    wrong type are built here by hand (base64url and HMAC from libsodium, HS384/HS512 from
    libjwt) exactly as an attacker would send them, and each must be refused with its
    reason. Password hashing runs at AUTH_COST_TEST so the suite stays fast; one test pays
    for the default cost to show what production stores.
*/
#include <criterion/criterion.h>

#include <jwt.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "proto.h"

//  A string literal and its length, so rows may hold embedded NULs.
#define TEXT(literal) literal, sizeof (literal) - 1

static const uint8_t s_secret[] = "0123456789abcdef0123456789abcdef-test-key";
#define SECRET s_secret, sizeof s_secret - 1
#define NOW    1700000000

static void s_setup (void)
{
    cr_assert_eq (auth_init (), 0);
}

TestSuite (auth, .init = s_setup);

//  ---------------------------------------------------------------------------------------
//  Helpers that build tokens the way an attacker would

//  Appends the base64url (no padding) of len bytes of data to out.
static void s_append_b64 (char *out, size_t size, const void *data, size_t len)
{
    size_t used = strlen (out);
    cr_assert_lt (used + sodium_base64_ENCODED_LEN (len, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  size);
    sodium_bin2base64 (out + used, size - used, data, len,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

//  header.payload, each JSON text base64url-encoded, into out.
static void s_signing_input (const char *header, const char *payload, char *out, size_t size)
{
    out[0] = '\0';
    s_append_b64 (out, size, header, strlen (header));
    strcat (out, ".");
    s_append_b64 (out, size, payload, strlen (payload));
}

//  A complete HS256 token over these exact JSON texts, signed with key: what a holder of the
//  key could make, to reach the checks that come after the signature.
static void s_hs256_token (const char *header, const char *payload, const uint8_t *key,
                           size_t key_len, char *out, size_t size)
{
    s_signing_input (header, payload, out, size);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, key, key_len);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) out, strlen (out));
    crypto_auth_hmacsha256_final (&state, mac);
    strcat (out, ".");
    s_append_b64 (out, size, mac, sizeof mac);
}

static void s_expect_refused (const char *token, size_t len, const char *expected_reason)
{
    auth_claims_t claims = {.sub = "untouched", .role = 77, .iat = 1, .exp = 2};
    const char *reason = NULL;
    int rc = auth_jwt_verify (SECRET, token, len, NOW, &claims, &reason);
    cr_expect_eq (rc, -1, "accepted \"%.80s\"", token);
    cr_expect_str_eq (reason ? reason : "(null)", expected_reason,
                      "\"%.60s\": \"%s\", expected \"%s\"", token, reason ? reason : "(null)",
                      expected_reason);
    cr_expect_str_eq (claims.sub, "untouched", "a refused token must not write the claims");
    cr_expect_eq (claims.role, 77);
}

static const char *const s_header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *const s_good_payload =
    "{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600}";

//  ---------------------------------------------------------------------------------------
//  Passwords

Test (auth, cost_parse)
{
    auth_cost_t cost = AUTH_COST_MODERATE;
    cr_assert_eq (auth_cost_parse ("interactive", &cost), 0);
    cr_assert_eq (cost, AUTH_COST_INTERACTIVE);
    cr_assert_eq (auth_cost_parse ("moderate", &cost), 0);
    cr_assert_eq (cost, AUTH_COST_MODERATE);
    cr_assert_eq (auth_cost_parse ("test", &cost), 0);
    cr_assert_eq (cost, AUTH_COST_TEST);
    cr_assert_eq (auth_cost_parse ("Interactive", &cost), -1);
    cr_assert_eq (auth_cost_parse ("", &cost), -1);
    cr_assert_eq (auth_cost_parse (NULL, &cost), -1);
    cr_assert_eq (cost, AUTH_COST_TEST, "a refused name leaves the value alone");
    cr_assert_eq (AUTH_COST_INTERACTIVE, 0, "the zero value is the default");
}

Test (auth, password_hash_and_verify)
{
    char hash[AUTH_HASH_MAX];
    cr_assert_eq (auth_password_hash ("correct horse", AUTH_COST_TEST, hash), 0);
    cr_assert (strncmp (hash, "$argon2id$", 10) == 0, "%s", hash);
    cr_assert (auth_password_verify (hash, "correct horse"));
    cr_assert_not (auth_password_verify (hash, "correct horsf"));
    cr_assert_not (auth_password_verify (hash, "correct hors"));
    cr_assert_not (auth_password_verify (hash, ""));

    //  a fresh salt each time: the same password never gives the same string
    char again[AUTH_HASH_MAX];
    cr_assert_eq (auth_password_hash ("correct horse", AUTH_COST_TEST, again), 0);
    cr_assert_str_neq (hash, again);
    cr_assert (auth_password_verify (again, "correct horse"));

    //  non-ASCII passwords are bytes like any other
    cr_assert_eq (auth_password_hash ("pässwörd-ñ-密码", AUTH_COST_TEST, hash), 0);
    cr_assert (auth_password_verify (hash, "pässwörd-ñ-密码"));
    cr_assert_not (auth_password_verify (hash, "passwörd-ñ-密码"));
}

Test (auth, password_verify_refuses_foreign_hashes)
{
    char hash[AUTH_HASH_MAX];
    cr_assert_eq (auth_password_hash ("correct horse", AUTH_COST_TEST, hash), 0);
    cr_assert_not (auth_password_verify (NULL, "correct horse"));
    cr_assert_not (auth_password_verify (hash, NULL));
    cr_assert_not (auth_password_verify ("", "correct horse"));
    cr_assert_not (auth_password_verify ("$argon2id$", "correct horse"));
    cr_assert_not (auth_password_verify ("correct horse", "correct horse"));

    //  an argon2i hash of the right password is still not one of ours
    char argon2i[AUTH_HASH_MAX];
    cr_assert_eq (
        crypto_pwhash_str_alg (argon2i, "correct horse", 13, crypto_pwhash_argon2i_OPSLIMIT_MIN,
                               crypto_pwhash_argon2i_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2I13),
        0);
    cr_assert_not (auth_password_verify (argon2i, "correct horse"));

    //  a valid hash with junk after it: too long to be ours
    char *long_hash = malloc (4 * AUTH_HASH_MAX);
    memset (long_hash, 'a', 4 * AUTH_HASH_MAX);
    memcpy (long_hash, hash, strlen (hash));
    long_hash[4 * AUTH_HASH_MAX - 1] = '\0';
    cr_assert_not (auth_password_verify (long_hash, "correct horse"));
    free (long_hash);

    //  a password longer than any we accept at registration is not even tried
    char long_password[AUTH_PASSWORD_MAX + 2];
    memset (long_password, 'p', sizeof long_password - 1);
    long_password[sizeof long_password - 1] = '\0';
    cr_assert_not (auth_password_verify (hash, long_password));
}

Test (auth, password_default_cost)
{
    //  What production stores: libsodium's interactive limits, 64 MiB and 2 passes.
    char hash[AUTH_HASH_MAX];
    cr_assert_eq (auth_password_hash ("correct horse", AUTH_COST_INTERACTIVE, hash), 0);
    cr_assert (strncmp (hash, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0, "%s", hash);
    cr_assert (auth_password_verify (hash, "correct horse"));
}

//  ---------------------------------------------------------------------------------------
//  Input rules

typedef struct {
    const char *text;
    size_t len;
    bool ok;
} rule_case_t;

static void s_check_rule (const char *(*rule) (const char *, size_t), const char *name,
                          const rule_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *reason = rule (cases[i].text, cases[i].len);
        if (cases[i].ok)
            cr_expect_null (reason, "%s row %zu \"%.*s\": refused: %s", name, i, (int) cases[i].len,
                            cases[i].text, reason);
        else
            cr_expect_not_null (reason, "%s row %zu \"%.*s\": accepted", name, i,
                                (int) cases[i].len, cases[i].text);
    }
}

Test (auth, username_rules)
{
    static const rule_case_t cases[] = {
        {TEXT ("alice"), true},
        {TEXT ("bob"), true}, //  3: shortest
        {TEXT ("a.b-c_d"), true},
        {TEXT ("0xdeadbeef"), true},
        {TEXT ("9lives"), true},
        {TEXT ("abcdefghijklmnopqrstuvwxyz012345"), true},   //  32: longest
        {TEXT ("abcdefghijklmnopqrstuvwxyz0123456"), false}, //  33
        {TEXT ("ab"), false},
        {TEXT (""), false},
        {TEXT ("Alice"), false}, //  lower case only
        {TEXT ("_alice"), false},
        {TEXT (".alice"), false},
        {TEXT ("-alice"), false},
        {TEXT ("al ice"), false},
        {TEXT ("alice!"), false},
        {TEXT ("alice@example.com"), false},
        {TEXT ("al\0ce"), false},
        {TEXT ("alicé"), false},
        {TEXT ("al/ce"), false},
    };
    s_check_rule (auth_check_username, "username", cases, sizeof cases / sizeof cases[0]);
    cr_expect_not_null (auth_check_username (NULL, 0));
    cr_expect_str_eq (auth_check_username (TEXT ("_alice")), "must start with a letter or digit");
}

Test (auth, password_rules)
{
    static const rule_case_t cases[] = {
        {TEXT ("12345678"), true}, //  8: shortest
        {TEXT ("correct horse battery staple"), true},
        {TEXT ("pässwörd"), true},
        {TEXT ("密码密码密码"), true},              //  18 bytes of 3-byte characters
        {TEXT ("emoji \xf0\x9f\x94\x91!"), true},   //  U+1F511, 4 bytes
        {TEXT ("\xf4\x8f\xbf\xbf-max-code"), true}, //  U+10FFFF
        {TEXT ("1234567"), false},
        {TEXT (""), false},
        {TEXT ("secret12\0anything"), false}, //  NUL would cut the password short
        {TEXT ("password\xff"), false},
        {TEXT ("password\x80"), false},                 //  continuation byte without a lead
        {TEXT ("password\xc3"), false},                 //  truncated 2-byte sequence
        {TEXT ("passw\xe2\x82ord"), false},             //  truncated 3-byte sequence
        {TEXT ("password\xc0\xaf"), false},             //  overlong '/'
        {TEXT ("password\xe0\x80\xaf"), false},         //  overlong '/', 3 bytes
        {TEXT ("password\xed\xa0\x80"), false},         //  U+D800, a surrogate
        {TEXT ("password\xf4\x90\x80\x80"), false},     //  U+110000
        {TEXT ("password\xf8\x88\x80\x80\x80"), false}, //  5-byte form
    };
    s_check_rule (auth_check_password, "password", cases, sizeof cases / sizeof cases[0]);

    char longest[AUTH_PASSWORD_MAX + 1];
    memset (longest, 'x', sizeof longest);
    cr_expect_null (auth_check_password (longest, AUTH_PASSWORD_MAX));
    cr_expect_not_null (auth_check_password (longest, AUTH_PASSWORD_MAX + 1));
    cr_expect_not_null (auth_check_password (NULL, 0));
    cr_expect_str_eq (auth_check_password (TEXT ("secret12\0anything")), "must not contain NUL");
}

Test (auth, wallet_rules)
{
    static const rule_case_t cases[] = {
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm68"), true},
        {TEXT ("JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG"), true}, //  all 0xff
        {TEXT ("11111111111111111111111111111111"), true},             //  system program
        {TEXT ("So11111111111111111111111111111111111111112"), true},  //  wrapped SOL mint
        {TEXT ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"), true},  //  SPL token program
        //  31 and 33 bytes
        {TEXT ("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofL"), false},
        {TEXT ("2K3n5t4wSaF5mj27Tw9vStXWLWyRjjiH5Cp3CFLpKVCr1c"), false},
        {TEXT ("1111111111111111111111111111111"), false},
        {TEXT ("111111111111111111111111111111111"), false},
        //  characters outside the alphabet
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm60"), false},
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm6O"), false},
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm6I"), false},
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm6l"), false},
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm6+"), false},
        {TEXT (" GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm68"), false},
        {TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm68\0"), false},
        //  a hex key is not base58 of 32 bytes
        {TEXT ("e72a24d6c93079e15ca8a2ef3730f004e6eff8eb563a2db95855651033ce88b1"), false},
        {TEXT (""), false},
    };
    s_check_rule (auth_check_wallet, "wallet", cases, sizeof cases / sizeof cases[0]);
    cr_expect_not_null (auth_check_wallet (NULL, 0));

    char huge[10000];
    memset (huge, 'z', sizeof huge);
    cr_expect_not_null (auth_check_wallet (huge, sizeof huge));
    cr_expect_str_eq (auth_check_wallet (TEXT ("GZNT8MtEBDdrE4f6Y14uin4p8ewyCZR2r866bjkGnm60")),
                      "must be base58 (no 0, O, I or l)");
    cr_expect_str_eq (auth_check_wallet (TEXT ("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofL")),
                      "must be a 32-byte Solana public key");
}

//  ---------------------------------------------------------------------------------------
//  Tokens

static auth_claims_t s_alice (void)
{
    auth_claims_t claims = {.role = PROTO_ROLE_USER, .iat = NOW - 10, .exp = NOW + 3600};
    strcpy (claims.sub, "alice");
    return claims;
}

Test (auth, jwt_round_trip)
{
    auth_claims_t minted = s_alice ();
    char token[AUTH_JWT_MAX];
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);
    cr_assert_lt (strlen (token), 300);

    auth_claims_t claims = {0};
    const char *reason = "not set";
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, &reason), 0, "%s",
                  reason);
    cr_assert_null (reason);
    cr_assert_str_eq (claims.sub, "alice");
    cr_assert_eq (claims.role, PROTO_ROLE_USER);
    cr_assert_eq (claims.iat, NOW - 10);
    cr_assert_eq (claims.exp, NOW + 3600);

    //  an admin token carries its role
    minted.role = PROTO_ROLE_ADMIN;
    strcpy (minted.sub, "root.admin");
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, NULL), 0);
    cr_assert_eq (claims.role, PROTO_ROLE_ADMIN);
    cr_assert_str_eq (claims.sub, "root.admin");

    //  only token_len bytes are read: the token may sit inside a longer header value
    char framed[AUTH_JWT_MAX + 16];
    size_t len = strlen (token);
    memcpy (framed, token, len);
    strcpy (framed + len, ", junk");
    cr_assert_eq (auth_jwt_verify (SECRET, framed, len, NOW, &claims, NULL), 0);
    s_expect_refused (framed, strlen (framed), "malformed token");
}

Test (auth, jwt_wire_format)
{
    //  The claims travel exactly as documented: a hand-made token with them verifies.
    char token[1024];
    s_hs256_token (s_header, s_good_payload, SECRET, token, sizeof token);
    auth_claims_t claims = {0};
    const char *reason = NULL;
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, &reason), 0, "%s",
                  reason);
    cr_assert_str_eq (claims.sub, "alice");
    cr_assert_eq (claims.role, PROTO_ROLE_USER);
    cr_assert_eq (claims.iat, 1699990000);
    cr_assert_eq (claims.exp, 1700003600);

    //  and what we mint carries alg HS256 and the four claims
    jwt_t *jwt = NULL;
    auth_claims_t minted = s_alice ();
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);
    cr_assert_eq (jwt_decode (&jwt, token, SECRET), 0);
    cr_assert_eq (jwt_get_alg (jwt), JWT_ALG_HS256);
    cr_assert_str_eq (jwt_get_grant (jwt, "sub"), "alice");
    cr_assert_str_eq (jwt_get_grant (jwt, "role"), "user");
    cr_assert_eq (jwt_get_grant_int (jwt, "iat"), NOW - 10);
    cr_assert_eq (jwt_get_grant_int (jwt, "exp"), NOW + 3600);
    jwt_free (jwt);
}

Test (auth, jwt_wrong_secret)
{
    static const uint8_t other[] = "another-secret-of-at-least-32-bytes!!";
    auth_claims_t minted = s_alice ();
    char token[AUTH_JWT_MAX];
    cr_assert_eq (auth_jwt_mint (other, sizeof other - 1, &minted, token, sizeof token), 0);
    s_expect_refused (token, strlen (token), "bad signature");
}

Test (auth, jwt_expiry)
{
    auth_claims_t minted = s_alice ();
    minted.exp = NOW;
    char token[AUTH_JWT_MAX];
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);
    auth_claims_t claims;
    const char *reason = NULL;
    //  valid up to the second before exp, expired from exp on
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW - 1, &claims, &reason), 0);
    s_expect_refused (token, strlen (token), "expired");
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW + 86400, &claims, &reason),
                  -1);
    cr_assert_str_eq (reason, "expired");
}

Test (auth, jwt_refuses_alg_none)
{
    //  The classic forgery: no signature, and a header telling the verifier not to check it.
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"\"}",
        "{\"alg\":null}",
        "{\"alg\":256}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char token[1024];
        s_signing_input (headers[i], s_good_payload, token, sizeof token);
        strcat (token, ".");
        s_expect_refused (token, strlen (token), "alg must be HS256");
        //  with a signature of some sort attached, too
        char signed_token[1024];
        s_hs256_token (headers[i], s_good_payload, SECRET, signed_token, sizeof signed_token);
        s_expect_refused (signed_token, strlen (signed_token), "alg must be HS256");
    }
}

//  A token libjwt makes with another algorithm and our own secret.
static void s_libjwt_token (jwt_alg_t alg, char *out, size_t size)
{
    jwt_t *jwt = NULL;
    cr_assert_eq (jwt_new (&jwt), 0);
    cr_assert_eq (jwt_add_grant (jwt, "sub", "alice"), 0);
    cr_assert_eq (jwt_add_grant (jwt, "role", "admin"), 0);
    cr_assert_eq (jwt_add_grant_int (jwt, "iat", NOW - 10), 0);
    cr_assert_eq (jwt_add_grant_int (jwt, "exp", NOW + 3600), 0);
    cr_assert_eq (jwt_set_alg (jwt, alg, s_secret, (int) sizeof s_secret - 1), 0);
    char *token = jwt_encode_str (jwt);
    cr_assert_not_null (token);
    cr_assert_lt (strlen (token), size);
    strcpy (out, token);
    free (token);
    jwt_free (jwt);
}

Test (auth, jwt_refuses_other_hmacs)
{
    char token[AUTH_JWT_MAX];
    s_libjwt_token (JWT_ALG_HS512, token, sizeof token);
    //  libjwt alone would take this: the header names HS512 and the key is right
    jwt_t *jwt = NULL;
    cr_assert_eq (jwt_decode (&jwt, token, SECRET), 0, "libjwt 1.10 takes alg from the header");
    jwt_free (jwt);
    s_expect_refused (token, strlen (token), "alg must be HS256");

    s_libjwt_token (JWT_ALG_HS384, token, sizeof token);
    s_expect_refused (token, strlen (token), "alg must be HS256");

    //  control: the same grants as HS256 pass
    s_libjwt_token (JWT_ALG_HS256, token, sizeof token);
    auth_claims_t claims;
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, NULL), 0);
    cr_assert_eq (claims.role, PROTO_ROLE_ADMIN);
}

Test (auth, jwt_refuses_tampered_payload)
{
    auth_claims_t minted = s_alice ();
    char token[AUTH_JWT_MAX];
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);

    //  Keep the header and the signature, swap in a payload that promotes alice to admin.
    char *first_dot = strchr (token, '.');
    char *last_dot = strrchr (token, '.');
    char forged[AUTH_JWT_MAX] = {0};
    memcpy (forged, token, (size_t) (first_dot - token) + 1);
    const char *payload = "{\"sub\":\"alice\",\"role\":\"admin\",\"iat\":1699999990,"
                          "\"exp\":1700003600}";
    s_append_b64 (forged, sizeof forged, payload, strlen (payload));
    strcat (forged, last_dot);
    s_expect_refused (forged, strlen (forged), "bad signature");

    //  one flipped character anywhere in the signature
    size_t len = strlen (token);
    char flipped[AUTH_JWT_MAX];
    for (size_t i = (size_t) (last_dot - token) + 1; i < len; i++) {
        strcpy (flipped, token);
        flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
        s_expect_refused (flipped, len, "bad signature");
    }
    //  the signature cut short, or gone
    s_expect_refused (token, len - 1, "bad signature");
    s_expect_refused (token, (size_t) (last_dot - token) + 1, "bad signature");
}

Test (auth, jwt_refuses_garbage)
{
    static const char *const garbage[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        ".eyJhbGciOiJIUzI1NiJ9.sig",
        "eyJhbGciOiJIUzI1NiJ9..sig",
        "not a token",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig=",        //  padding is not base64url-no-padding
        "eyJhbGciOiJIUzI1NiJ9.e3+.sig",         //  standard base64, not URL-safe
        "a.b.c",                                //  header is not base64 of anything
        "e30.e30.",                             //  header {} names no alg
        "bnVsbA.e30.",                          //  header null
        "W10.e30.",                             //  header []
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig", //  payload not JSON
        "\xff\xfe.\x01.\x02",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        auth_claims_t claims;
        const char *reason = NULL;
        cr_expect_eq (
            auth_jwt_verify (SECRET, garbage[i], strlen (garbage[i]), NOW, &claims, &reason), -1,
            "row %zu", i);
        cr_expect_not_null (reason, "row %zu", i);
    }
    s_expect_refused ("a.b.c", 5, "malformed token");
    s_expect_refused ("", 0, "malformed token");
    s_expect_refused (NULL, 0, "malformed token");
    s_expect_refused ("e30.e30.", 8, "alg must be HS256");

    //  an embedded NUL is not a character of a token
    char token[AUTH_JWT_MAX];
    auth_claims_t minted = s_alice ();
    cr_assert_eq (auth_jwt_mint (SECRET, &minted, token, sizeof token), 0);
    size_t len = strlen (token);
    token[len / 2] = '\0';
    s_expect_refused (token, len, "malformed token");

    //  huge tokens are turned away by length before any decoding
    char *huge = malloc (10000 + 1);
    memset (huge, 'A', 10000);
    huge[10000] = '\0';
    huge[3000] = '.';
    huge[6000] = '.';
    s_expect_refused (huge, 10000, "malformed token");
    s_expect_refused (huge, AUTH_JWT_MAX + 1, "malformed token");
    free (huge);
}

Test (auth, jwt_header_tricks)
{
    char token[1024];
    //  duplicate alg: must not read HS256 here and "none" elsewhere
    s_hs256_token ("{\"alg\":\"HS256\",\"alg\":\"none\"}", s_good_payload, SECRET, token,
                   sizeof token);
    s_expect_refused (token, strlen (token), "malformed token");
    //  an alg with an embedded NUL (jansson refuses \u0000 in strings outright)
    s_hs256_token ("{\"alg\":\"HS256\\u0000x\"}", s_good_payload, SECRET, token, sizeof token);
    s_expect_refused (token, strlen (token), "malformed token");
    //  lower case is another name
    s_hs256_token ("{\"alg\":\"hs256\"}", s_good_payload, SECRET, token, sizeof token);
    s_expect_refused (token, strlen (token), "alg must be HS256");
    //  a typ other than JWT
    s_hs256_token ("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", s_good_payload, SECRET, token,
                   sizeof token);
    s_expect_refused (token, strlen (token), "malformed token");
    //  without typ, properly signed: accepted
    s_hs256_token ("{\"alg\":\"HS256\"}", s_good_payload, SECRET, token, sizeof token);
    auth_claims_t claims;
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, NULL), 0);
}

//  An unknown username is checked against the decoy: it must cost what the configured cost
//  costs (a decoy at another cost would tell by its timing whether a user exists) and match
//  no password.
Test (auth, the_password_decoy_has_the_configured_cost)
{
    const char *test = auth_password_decoy (AUTH_COST_TEST);
    const char *interactive = auth_password_decoy (AUTH_COST_INTERACTIVE);
    cr_assert_not_null (test);
    cr_assert_not_null (interactive);
    char real[AUTH_HASH_MAX];
    cr_assert_eq (auth_password_hash ("correct horse battery", AUTH_COST_TEST, real), 0);
    //  the same parameters as a real hash of that cost: "$argon2id$v=19$m=...,t=...,p=1$"
    cr_assert_eq (strncmp (test, real, (size_t) (strrchr (real, '$') - real - 22)), 0,
                  "%s against %s", test, real);
    cr_assert_not_null (strstr (interactive, "$m=65536,t=2,p=1$"), "%s", interactive);
    cr_assert (!auth_password_verify (test, ""));
    cr_assert (!auth_password_verify (test, "correct horse battery"));
    cr_assert_eq (auth_password_decoy (AUTH_COST_TEST), test, "made once, then kept");
    cr_assert_null (auth_password_decoy ((auth_cost_t) 7));
}

//  A token from a host whose clock runs a little ahead of ours is still good.
Test (auth, jwt_allows_a_little_clock_skew)
{
    char token[1024];
    s_hs256_token (s_header,
                   "{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1700000060,\"exp\":1700007200}",
                   SECRET, token, sizeof token);
    auth_claims_t claims;
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), NOW, &claims, NULL), 0);
    cr_assert_eq (claims.iat, NOW + AUTH_CLOCK_SKEW_S);
    //  at time 0 (leaving a subscription) neither expiry nor issue time is checked
    s_hs256_token (s_header,
                   "{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1700003600,\"exp\":1700007200}",
                   SECRET, token, sizeof token);
    cr_assert_eq (auth_jwt_verify (SECRET, token, strlen (token), 0, &claims, NULL), 0);
}

Test (auth, jwt_refuses_bad_claims)
{
    //  All properly signed with our key: only the claim checks stand in the way.
    static const struct {
        const char *payload;
        const char *reason;
    } cases[] = {
        {"{\"sub\":\"alice\",\"role\":\"superuser\",\"iat\":1699990000,\"exp\":1700003600}",
         "bad role"},
        {"{\"sub\":\"alice\",\"role\":\"Admin\",\"iat\":1699990000,\"exp\":1700003600}",
         "bad role"},
        {"{\"sub\":\"alice\",\"role\":2,\"iat\":1699990000,\"exp\":1700003600}", "bad role"},
        {"{\"sub\":\"alice\",\"iat\":1699990000,\"exp\":1700003600}", "bad role"},
        {"{\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600}", "missing claim sub"},
        {"{\"sub\":42,\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600}",
         "missing claim sub"},
        {"{\"sub\":\"Alice!\",\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600}",
         "bad claim sub"},
        {"{\"sub\":\"\",\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600}", "bad claim sub"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"exp\":1700003600}", "missing claim iat"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":\"1699990000\",\"exp\":1700003600}",
         "missing claim iat"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000}", "missing claim exp"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000,\"exp\":\"1700003600\"}",
         "missing claim exp"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000,\"exp\":1700003600.5}",
         "missing claim exp"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000,\"exp\":null}",
         "missing claim exp"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":-1,\"exp\":1700003600}", "bad claim iat"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1700003601,\"exp\":1700003600}",
         "bad claim iat"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1699990000,\"exp\":1699999999}", "expired"},
        //  NOW is 1700000000: an hour ahead, and just past the allowed skew
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1700003600,\"exp\":1700007200}",
         "issued in the future"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":1700000061,\"exp\":1700007200}",
         "issued in the future"},
        {"{\"sub\":\"alice\",\"role\":\"user\",\"iat\":0,\"exp\":-9223372036854775808}",
         "bad claim iat"},
        {"[]", "malformed token"}, //  libjwt 1.10 takes an array for a payload
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char token[1024];
        s_hs256_token (s_header, cases[i].payload, SECRET, token, sizeof token);
        s_expect_refused (token, strlen (token), cases[i].reason);
    }
}

Test (auth, jwt_mint_refuses_what_verify_would)
{
    char token[AUTH_JWT_MAX];
    auth_claims_t claims = s_alice ();
    claims.role = 0;
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);
    claims.role = 3;
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);
    claims = s_alice ();
    strcpy (claims.sub, "Alice");
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);
    claims = s_alice ();
    claims.sub[0] = '\0';
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);
    claims = s_alice ();
    memset (claims.sub, 'a', sizeof claims.sub); //  not NUL-terminated
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);
    claims = s_alice ();
    claims.iat = claims.exp + 1;
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), -1);

    //  the secret must be long enough, and the buffer large enough
    claims = s_alice ();
    cr_assert_eq (auth_jwt_mint (s_secret, AUTH_JWT_SECRET_MIN - 1, &claims, token, sizeof token),
                  -1);
    cr_assert_eq (auth_jwt_mint (NULL, 0, &claims, token, sizeof token), -1);
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, 20), -1);
    cr_assert_eq (auth_jwt_mint (s_secret, AUTH_JWT_SECRET_MIN, &claims, token, sizeof token), 0);
    size_t len = strlen (token);
    cr_assert_eq (auth_jwt_mint (s_secret, AUTH_JWT_SECRET_MIN, &claims, token, len), -1);
    cr_assert_eq (auth_jwt_mint (s_secret, AUTH_JWT_SECRET_MIN, &claims, token, len + 1), 0);

    //  a short secret is refused when verifying too, with a reason an operator will recognise
    const char *reason = NULL;
    cr_assert_eq (
        auth_jwt_verify (s_secret, AUTH_JWT_SECRET_MIN - 1, token, len, NOW, &claims, &reason), -1);
    cr_assert_str_eq (reason, "server secret too short");
}

//  ---------------------------------------------------------------------------------------
//  Wallet signatures

//  RFC 8032 §7.1, test 2: a secret seed, its public key, the message 0x72 and the signature.
#define S_RFC_SEED   "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define S_RFC_WALLET "586Z7H2vpX9qNhN2T4e9Utugie3ogjbxzGaMtM3E6HR5"
#define S_RFC_SIGNATURE                                                                            \
    "3w2b4gJH2VXfrwycUgMiE3TZJTztazKppFVojCQ9NDMDHq8PVTHxQdQovxMFxqeqeQf1xaADvhkj2nMuB1kzouA7"

Test (auth, wallet_signatures_are_ed25519_as_rfc_8032_says)
{
    uint8_t seed[AUTH_SEED_BYTES];
    cr_assert_eq (auth_seed_parse_hex (S_RFC_SEED, seed), 0);
    char wallet[AUTH_WALLET_MAX], sig[AUTH_SIGNATURE_TEXT_MAX];
    cr_assert_eq (auth_wallet_of_seed (seed, wallet, sizeof wallet), 0);
    cr_assert_str_eq (wallet, S_RFC_WALLET);
    cr_assert_eq (auth_wallet_sign (seed, "\x72", 1, sig, sizeof sig), 0);
    cr_assert_str_eq (sig, S_RFC_SIGNATURE, "ed25519 is deterministic");
    cr_assert (auth_wallet_verify (S_RFC_WALLET, TEXT (S_RFC_SIGNATURE), "\x72", 1));
    //  another message, another wallet, a signature changed in one place: all refused
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, TEXT (S_RFC_SIGNATURE), "\x73", 1));
    cr_assert_not (auth_wallet_verify ("FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z",
                                       TEXT (S_RFC_SIGNATURE), "\x72", 1));
    char changed[] = S_RFC_SIGNATURE;
    changed[10] = changed[10] == 'A' ? 'B' : 'A';
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, changed, strlen (changed), "\x72", 1));
    //  malformed input is refused, never crashes
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, TEXT ("not base58 0OIl"), "\x72", 1));
    cr_assert_not (auth_wallet_verify ("short", TEXT (S_RFC_SIGNATURE), "\x72", 1));
    cr_assert_not (auth_wallet_verify (NULL, TEXT (S_RFC_SIGNATURE), "\x72", 1));
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, NULL, 0, "\x72", 1));
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, TEXT (S_RFC_SIGNATURE), NULL, 1));
    char huge[10000];
    memset (huge, 'z', sizeof huge);
    cr_assert_not (auth_wallet_verify (S_RFC_WALLET, huge, sizeof huge, "\x72", 1));
    //  a message signed, as a browser wallet's signMessage does it, verifies
    const char *message = "127.0.0.1:8080 wants you to register a Solana wallet for mce:";
    cr_assert_eq (auth_wallet_sign (seed, message, strlen (message), sig, sizeof sig), 0);
    cr_assert (auth_wallet_verify (wallet, sig, strlen (sig), message, strlen (message)));
    cr_assert_eq (auth_wallet_sign (seed, message, strlen (message), sig, 40), -1, "too small");
    //  hex seeds: exactly 64 hex digits
    cr_assert_eq (auth_seed_parse_hex ("4ccd", seed), -1);
    cr_assert_eq (auth_seed_parse_hex (S_RFC_SEED "00", seed), -1);
    cr_assert_eq (auth_seed_parse_hex (NULL, seed), -1);
    char bad_hex[] = S_RFC_SEED;
    bad_hex[5] = 'g';
    cr_assert_eq (auth_seed_parse_hex (bad_hex, seed), -1);
}

Test (auth, signature_rules)
{
    static const rule_case_t cases[] = {
        {TEXT (S_RFC_SIGNATURE), true},
        //  64 zero bytes: 64 '1's
        {TEXT ("1111111111111111111111111111111111111111111111111111111111111111"), true},
        {TEXT ("111111111111111111111111111111111111111111111111111111111111111"), false}, //  63
        {TEXT (S_RFC_WALLET), false}, //  32 bytes: a key, not a signature
        {TEXT ("3w2b4gJH2VXfrwycUgMiE3TZJTztazKppFVojCQ9NDMDHq8PVTHxQdQovxMFxqeqeQf1xaADvhkj2nMuB1k"
               "zou0"),
         false},
        {TEXT (""), false},
    };
    s_check_rule (auth_check_signature, "signature", cases, sizeof cases / sizeof cases[0]);
    cr_expect_not_null (auth_check_signature (NULL, 0));
    char huge[10000];
    memset (huge, 'z', sizeof huge);
    cr_expect_not_null (auth_check_signature (huge, sizeof huge));
}

Test (auth, keypair_files_in_the_solana_cli_format)
{
    //  RFC 8032 test 1's seed and public key, as solana-keygen writes them
    const char *file =
        "[157,97,177,157,239,253,90,96,186,132,74,244,146,236,44,196,68,73,197,105,123,50,105,25,"
        "112,59,172,3,28,174,127,96,215,90,152,1,130,177,10,183,213,75,254,211,201,100,7,58,14,"
        "225,114,243,218,166,35,37,175,2,26,104,247,7,81,26]\n";
    uint8_t seed[AUTH_SEED_BYTES];
    char wallet[AUTH_WALLET_MAX];
    const char *why = NULL;
    cr_assert_eq (auth_keypair_parse (file, strlen (file), seed, wallet, &why), 0, "%s", why);
    cr_assert_str_eq (wallet, "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z");
    cr_assert_eq (seed[0], 157);
    cr_assert_eq (seed[31], 96);
    //  each way of not being one, with its reason
    char edited[1024];
    snprintf (edited, sizeof edited, "%s", file);
    memcpy (strstr (edited, "215,90"), "216,90", 6); //  the public key's first byte
    cr_assert_eq (auth_keypair_parse (edited, strlen (edited), seed, wallet, &why), -1);
    cr_assert_not_null (strstr (why, "not the seed's"), "%s", why);
    cr_assert_eq (seed[0], 0, "a refused file leaves no seed behind");
    static const char *const bad[] = {
        "",
        "{}",
        "[1,2,3]",
        "not json",
        "[157,97,177,157,239,253,90,96,186,132,74,244,146,236,44,196,68,73,197,105,123,50,105,25,"
        "112,59,172,3,28,174,127,96,215,90,152,1,130,177,10,183,213,75,254,211,201,100,7,58,14,"
        "225,114,243,218,166,35,37,175,2,26,104,247,7,81,256]",
        "[157,97,177,157,239,253,90,96,186,132,74,244,146,236,44,196,68,73,197,105,123,50,105,25,"
        "112,59,172,3,28,174,127,96,215,90,152,1,130,177,10,183,213,75,254,211,201,100,7,58,14,"
        "225,114,243,218,166,35,37,175,2,26,104,247,7,81,-1]",
        "[157,97,177,157,239,253,90,96,186,132,74,244,146,236,44,196,68,73,197,105,123,50,105,25,"
        "112,59,172,3,28,174,127,96,215,90,152,1,130,177,10,183,213,75,254,211,201,100,7,58,14,"
        "225,114,243,218,166,35,37,175,2,26,104,247,7,81,\"26\"]",
        "[157,97,177,157,239,253,90,96,186,132,74,244,146,236,44,196,68,73,197,105,123,50,105,25,"
        "112,59,172,3,28,174,127,96,215,90,152,1,130,177,10,183,213,75,254,211,201,100,7,58,14,"
        "225,114,243,218,166,35,37,175,2,26,104,247,7,81,26.0]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        cr_assert_eq (auth_keypair_parse (bad[i], strlen (bad[i]), seed, wallet, &why), -1, "%s",
                      bad[i]);
        cr_assert_not_null (why);
    }
    cr_assert_eq (auth_keypair_parse (NULL, 0, seed, wallet, &why), -1);
}

Test (auth, jwt_subject_reads_a_token_without_trusting_it)
{
    auth_claims_t claims = s_alice ();
    char token[AUTH_JWT_MAX], sub[AUTH_USERNAME_MAX + 1];
    cr_assert_eq (auth_jwt_mint (SECRET, &claims, token, sizeof token), 0);
    cr_assert_eq (auth_jwt_subject (token, strlen (token), sub), 0);
    cr_assert_str_eq (sub, "alice");
    cr_assert_eq (auth_jwt_subject ("a.b", 3, sub), -1);
    cr_assert_eq (auth_jwt_subject ("a.!!!.c", 7, sub), -1);
    cr_assert_eq (auth_jwt_subject (NULL, 0, sub), -1);
}

//  ---------------------------------------------------------------------------------------
//  API keys

Test (auth, api_keys)
{
    char key[AUTH_API_KEY_MAX];
    char other[AUTH_API_KEY_MAX];
    auth_api_key_new (key);
    auth_api_key_new (other);
    cr_assert_eq (strlen (key), 47);
    cr_assert (strncmp (key, "mce_", 4) == 0, "%s", key);
    for (size_t i = 4; i < 47; i++)
        cr_assert (
            strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", key[i]),
            "%s", key);
    cr_assert_str_neq (key, other);
    cr_assert_null (auth_check_api_key (key, strlen (key)));
    cr_assert_null (auth_check_api_key (other, strlen (other)));

    char hex[AUTH_API_KEY_HASH_MAX];
    char other_hex[AUTH_API_KEY_HASH_MAX];
    auth_api_key_hash (key, hex);
    auth_api_key_hash (other, other_hex);
    cr_assert_eq (strlen (hex), 64);
    cr_assert_str_neq (hex, other_hex);
    //  the same key always gives the same hash: that is how it is looked up
    char again[AUTH_API_KEY_HASH_MAX];
    auth_api_key_hash (key, again);
    cr_assert_str_eq (hex, again);
    //  and it is plain SHA-256 in lower-case hex
    auth_api_key_hash ("mce_test", hex);
    cr_assert_str_eq (hex, "fe572c10037d444674472f40ad621bca7df1f288f0d9b2862bb849836b2d4f7f");
}

Test (auth, api_key_rules)
{
    char key[AUTH_API_KEY_MAX];
    auth_api_key_new (key);
    size_t len = strlen (key);
    cr_expect_not_null (auth_check_api_key (key, len - 1));
    cr_expect_not_null (auth_check_api_key (NULL, 0));
    cr_expect_not_null (auth_check_api_key ("", 0));

    char bad[AUTH_API_KEY_MAX + 1];
    strcpy (bad, key);
    bad[0] = 'M';
    cr_expect_not_null (auth_check_api_key (bad, len), "prefix is case-sensitive");
    strcpy (bad, key);
    bad[10] = '+';
    cr_expect_not_null (auth_check_api_key (bad, len), "standard base64 is not base64url");
    strcpy (bad, key);
    bad[10] = '\0';
    cr_expect_not_null (auth_check_api_key (bad, len));
    strcpy (bad, key);
    strcat (bad, "A");
    cr_expect_not_null (auth_check_api_key (bad, len + 1));

    //  32 zero bytes encode as 42 'A's and a final 'A'; a final 'B' sets unused bits
    const char *zero = "mce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    cr_expect_null (auth_check_api_key (zero, strlen (zero)));
    const char *noncanonical = "mce_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB";
    cr_expect_not_null (auth_check_api_key (noncanonical, strlen (noncanonical)));
}
