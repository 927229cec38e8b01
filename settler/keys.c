/*  keys — see keys.h.  */
#include "keys.h"
#include "solpda.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_str (const json_t *root, const char *object, const char *field)
{
    const json_t *v = json_object_get (json_object_get (root, object), field);
    return json_is_string (v) ? json_string_value (v) : NULL;
}

static int s_key (const json_t *root, const char *object, const char *field, sol_key_t *key,
                  char *err, size_t errlen)
{
    const char *text = s_str (root, object, field);
    if (!text || sol_key_parse (key, text)) {
        snprintf (err, errlen, "%s.%s: missing or not a base58 public key", object, field);
        return -1;
    }
    return 0;
}

static int s_mint (const json_t *root, const char *object, int decimals, sol_key_t *key, char *err,
                   size_t errlen)
{
    if (s_key (root, object, "address", key, err, errlen))
        return -1;
    const json_t *d = json_object_get (json_object_get (root, object), "decimals");
    if (!json_is_integer (d) || json_integer_value (d) != decimals) {
        snprintf (err, errlen, "%s.decimals: must be %d (amounts on the bus are in those units)",
                  object, decimals);
        return -1;
    }
    return 0;
}

//  The 32-byte seed: secretSeedHex, or the first half of a keypair file.
static int s_seed (const json_t *root, const char *dir, uint8_t seed[32], char *err, size_t errlen)
{
    const char *hex = s_str (root, "platform", "secretSeedHex");
    size_t bin_len;
    if (hex) {
        if (strlen (hex) != 64 || sodium_hex2bin (seed, 32, hex, 64, NULL, &bin_len, NULL) != 0 ||
            bin_len != 32) {
            snprintf (err, errlen, "platform.secretSeedHex: expected 64 hex digits");
            return -1;
        }
        return 0;
    }
    const char *file = s_str (root, "platform", "keypairFile");
    if (!file) {
        snprintf (err, errlen, "platform: neither secretSeedHex nor keypairFile");
        return -1;
    }
    char path[4096];
    int n = file[0] == '/' ? snprintf (path, sizeof path, "%s", file)
                           : snprintf (path, sizeof path, "%s/%s", dir, file);
    if (n < 0 || (size_t) n >= sizeof path) {
        snprintf (err, errlen, "platform.keypairFile: path too long");
        return -1;
    }
    json_error_t jerr;
    json_t *kp = json_load_file (path, 0, &jerr);
    int rc = -1;
    if (!json_is_array (kp) || json_array_size (kp) != 64) {
        snprintf (err, errlen, "%.200s: not a keypair file (a JSON array of 64 bytes)", path);
        goto done;
    }
    for (size_t i = 0; i < 32; i++) {
        const json_t *b = json_array_get (kp, i);
        if (!json_is_integer (b) || json_integer_value (b) < 0 || json_integer_value (b) > 255) {
            snprintf (err, errlen, "%.200s: byte %zu is not 0..255", path, i);
            goto done;
        }
        seed[i] = (uint8_t) json_integer_value (b);
    }
    rc = 0;
done:
    json_decref (kp);
    return rc;
}

//  The platform's associated token accounts; a setup file that names them must agree.
static int s_vaults (const json_t *root, keys_t *keys, char *err, size_t errlen)
{
    if (sol_ata (&keys->platform, &keys->energy_mint, &keys->vault_energy) ||
        sol_ata (&keys->platform, &keys->payment_mint, &keys->vault_payment)) {
        snprintf (err, errlen, "vaults: no associated token account for the platform key");
        return -1;
    }
    static const char *names[2] = {"energy", "payment"};
    const sol_key_t *derived[2] = {&keys->vault_energy, &keys->vault_payment};
    for (int i = 0; i < 2; i++) {
        const char *claimed = s_str (root, "vaults", names[i]);
        if (claimed && strcmp (claimed, derived[i]->text) != 0) {
            snprintf (err, errlen,
                      "vaults.%s: %s is not the platform's associated token account (%s)", names[i],
                      claimed, derived[i]->text);
            return -1;
        }
    }
    return 0;
}

static int s_users (const json_t *root, keys_t *keys, char *err, size_t errlen)
{
    const json_t *users = json_object_get (root, "users");
    if (!users)
        return 0;
    if (!json_is_array (users)) {
        snprintf (err, errlen, "users: expected a list");
        return -1;
    }
    size_t n = json_array_size (users);
    keys->users = calloc (n ? n : 1, sizeof *keys->users);
    if (!keys->users) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *u = json_array_get (users, i);
        const json_t *name = json_object_get (u, "name"), *wallet = json_object_get (u, "wallet");
        keys_user_t *k = &keys->users[keys->user_count];
        if (!json_is_string (name) || json_string_length (name) > KEYS_NAME_MAX ||
            !json_is_string (wallet) || sol_key_parse (&k->wallet, json_string_value (wallet))) {
            snprintf (err, errlen, "users[%zu]: expected {name, wallet (base58)}", i);
            return -1;
        }
        snprintf (k->name, sizeof k->name, "%s", json_string_value (name));
        keys->user_count++;
    }
    return 0;
}

int keys_load (keys_t *keys, const char *path, char *err, size_t errlen)
{
    memset (keys, 0, sizeof *keys);
    json_error_t jerr;
    json_t *root = json_load_file (path, 0, &jerr);
    if (!json_is_object (root)) {
        snprintf (err, errlen, "%s: %s", path, root ? "not a JSON object" : jerr.text);
        json_decref (root);
        return -1;
    }
    char dir[4096];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf (dir, sizeof dir, ".");
    char why[256] = "";
    uint8_t seed[32];
    int rc = -1;
    if (s_seed (root, dir, seed, why, sizeof why))
        goto done;
    uint8_t pub[32];
    crypto_sign_seed_keypair (pub, keys->secret, seed);
    sodium_memzero (seed, sizeof seed);
    sol_key_set (&keys->platform, pub);
    const char *claimed = s_str (root, "platform", "pubkey");
    if (claimed && strcmp (claimed, keys->platform.text) != 0) {
        snprintf (why, sizeof why, "platform.pubkey: %s is not the key of the seed (%s)", claimed,
                  keys->platform.text);
        goto done;
    }
    if (s_key (root, "treasury", "paymentAccount", &keys->treasury, why, sizeof why) ||
        s_mint (root, "energyMint", KEYS_ENERGY_DECIMALS, &keys->energy_mint, why, sizeof why) ||
        s_mint (root, "paymentMint", KEYS_PAYMENT_DECIMALS, &keys->payment_mint, why, sizeof why))
        goto done;
    const char *token = s_str (root, "programs", "token");
    const char *memo = s_str (root, "programs", "memo");
    if (sol_key_parse (&keys->token_program, token ? token : SOL_TOKEN_PROGRAM) ||
        sol_key_parse (&keys->memo_program, memo ? memo : SOL_MEMO_PROGRAM)) {
        snprintf (why, sizeof why, "programs: token or memo is not a base58 public key");
        goto done;
    }
    if (s_vaults (root, keys, why, sizeof why) || s_users (root, keys, why, sizeof why))
        goto done;
    rc = 0;
done:
    json_decref (root);
    if (rc) {
        snprintf (err, errlen, "%s: %s", path, why);
        keys_clear (keys);
    }
    return rc;
}

void keys_clear (keys_t *keys)
{
    sodium_memzero (keys->secret, sizeof keys->secret);
    free (keys->users);
    keys->users = NULL;
    keys->user_count = 0;
}
