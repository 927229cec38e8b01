/*  mcectl_wallet — proving a wallet with a keypair file: signing up, and changing wallet; and
    signing in with the password, for a token.

    A wallet is proven by its signature (gateway/wallet_proof.h): mcectl asks the gateway for a
    challenge (POST /api/auth/challenge), signs its message with the key of a keypair file in
    the Solana CLI's format (what `solana-keygen new -o FILE` writes: a JSON array of 64
    numbers, the 32-byte secret seed then the 32-byte public key), and sends the signature
    with the registration (POST /api/auth/register) or the change (POST /api/auth/wallet).
    The key never leaves this machine; the gateway sees the public key and the signature.
*/
#include "mcectl.h"
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEYPAIR_FILE_MAX 4096 //  a keypair file is about 250 bytes

int mcectl_password_stdin (char *out, size_t size)
{
    if (!fgets (out, (int) size, stdin)) {
        fprintf (stderr, "mcectl: give the password on standard input\n");
        return MCECTL_EXIT_USAGE;
    }
    out[strcspn (out, "\r\n")] = '\0';
    const char *why = auth_check_password (out, strlen (out));
    if (why) {
        auth_wipe (out, size);
        fprintf (stderr, "mcectl: password %s\n", why);
        return MCECTL_EXIT_USAGE;
    }
    return MCECTL_EXIT_OK;
}

//  The seed and wallet of a keypair file. 0, or MCECTL_EXIT_USAGE after saying why not.
static int s_keypair (const char *path, uint8_t seed[AUTH_SEED_BYTES], char wallet[AUTH_WALLET_MAX])
{
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "mcectl: --keypair %s: %s\n", path, strerror (errno));
        return MCECTL_EXIT_USAGE;
    }
    char text[S_KEYPAIR_FILE_MAX + 1];
    size_t len = fread (text, 1, sizeof text, f);
    fclose (f);
    const char *why = "longer than a keypair file";
    int rc = len <= S_KEYPAIR_FILE_MAX && auth_keypair_parse (text, len, seed, wallet, &why) == 0
                 ? MCECTL_EXIT_OK
                 : MCECTL_EXIT_USAGE;
    auth_wipe (text, sizeof text);
    if (rc)
        fprintf (stderr, "mcectl: --keypair %s: %s\n", path, why);
    return rc;
}

//  NULL when message is a challenge for wallet and user as the gateway issues them (printable
//  text naming the wallet on its second line, the user and the nonce), else what is wrong. The
//  key signs nothing else: a gateway that is not ours (a wrong --url) could otherwise have it
//  sign a transaction, which is bytes, or another claim.
static const char *s_check_message (const char *message, const char *wallet, const char *user,
                                    const char *nonce)
{
    for (const char *c = message; *c; c++)
        if ((*c < 0x20 || *c > 0x7e) && *c != '\n')
            return "it is not plain text";
    const char *line2 = strchr (message, '\n');
    char want[160];
    if (!line2 || !strstr (message, " wants you to register a Solana wallet for mce:\n") ||
        strstr (message, " wants you to register") > line2)
        return "its first line is not a registration";
    snprintf (want, sizeof want, "\n%s\n", wallet);
    if (strncmp (line2, want, strlen (want)) != 0)
        return "its second line is not this keypair's wallet";
    snprintf (want, sizeof want, "\nUsername: %s\n", user);
    if (!strstr (message, want))
        return "it names another user";
    snprintf (want, sizeof want, "\nNonce: %s\n", nonce ? nonce : "");
    if (!nonce || !strstr (message, want))
        return "its nonce is not the one the gateway gave";
    return NULL;
}

//  Asks a challenge for wallet and user, and signs its message into signature. 0, or the
//  exit status after reporting.
static int s_sign_challenge (mcectl_client_t *client, const uint8_t *seed, const char *wallet,
                             const char *user, char signature[AUTH_SIGNATURE_TEXT_MAX])
{
    json_t *ask = json_pack ("{s:s,s:s}", "wallet", wallet, "username", user), *challenge;
    int rc = mcectl_client_call (client, "POST", "/api/auth/challenge", ask, false, &challenge);
    json_decref (ask);
    if (rc)
        return rc;
    const char *message = json_string_value (json_object_get (challenge, "message"));
    const char *wrong =
        message ? s_check_message (message, wallet, user,
                                   json_string_value (json_object_get (challenge, "nonce")))
                : "there is none";
    if (wrong) {
        fprintf (stderr, "mcectl: not signing the gateway's challenge: %s\n", wrong);
        json_decref (challenge);
        return MCECTL_EXIT_FAILED;
    }
    auth_wallet_sign (seed, message, strlen (message), signature, AUTH_SIGNATURE_TEXT_MAX);
    json_decref (challenge);
    return MCECTL_EXIT_OK;
}

//  What registering and changing wallet both send: the wallet of the keypair file, its
//  signature of the gateway's challenge for (wallet, user), and the password from stdin (the
//  caller wipes it). The key is wiped here. 0, or the exit status after saying why not.
static int s_prove (mcectl_client_t *client, const char *keypair, const char *user,
                    char wallet[AUTH_WALLET_MAX], char signature[AUTH_SIGNATURE_TEXT_MAX],
                    char password[AUTH_PASSWORD_MAX + 2])
{
    uint8_t seed[AUTH_SEED_BYTES];
    int rc = s_keypair (keypair, seed, wallet);
    if (rc)
        return rc;
    if ((rc = mcectl_password_stdin (password, AUTH_PASSWORD_MAX + 2)) == 0)
        rc = s_sign_challenge (client, seed, wallet, user, signature);
    auth_wipe (seed, sizeof seed);
    if (rc)
        auth_wipe (password, AUTH_PASSWORD_MAX + 2);
    return rc;
}

//  Prints the answer: its JSON with --json, else line (with the user and wallet).
static void s_print (mcectl_client_t *client, json_t *reply, const char *what)
{
    if (mcectl_client_options (client)->json)
        mcectl_print_json (reply);
    else
        printf ("%s %s with wallet %s\n", what,
                json_string_value (json_object_get (reply, "username")),
                json_string_value (json_object_get (reply, "wallet")));
}

int mcectl_register (mcectl_client_t *client, int argc, char **argv)
{
    const char *name = NULL, *keypair = NULL;
    const mcectl_option_t options[] = {{"--keypair", &keypair, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("register", argc, argv, options, &name, 1) != 1 || !keypair) {
        fprintf (stderr,
                 "mcectl register: give NAME and --keypair FILE (mcectl register --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    const char *why = auth_check_username (name, strlen (name));
    if (why) {
        fprintf (stderr, "mcectl: username %s\n", why);
        return MCECTL_EXIT_USAGE;
    }
    char wallet[AUTH_WALLET_MAX], signature[AUTH_SIGNATURE_TEXT_MAX],
        password[AUTH_PASSWORD_MAX + 2];
    int rc = s_prove (client, keypair, name, wallet, signature, password);
    if (rc)
        return rc;
    json_t *body = json_pack ("{s:s,s:s,s:s,s:s}", "username", name, "password", password, "wallet",
                              wallet, "signature", signature),
           *reply;
    auth_wipe (password, sizeof password);
    rc = mcectl_client_call (client, "POST", "/api/auth/register", body, false, &reply);
    json_decref (body);
    if (rc)
        return rc;
    s_print (client, reply, "registered");
    json_decref (reply);
    return MCECTL_EXIT_OK;
}

int mcectl_login (mcectl_client_t *client, int argc, char **argv)
{
    const char *name = NULL;
    const mcectl_option_t options[] = {{NULL, NULL, NULL}};
    if (mcectl_parse ("login", argc, argv, options, &name, 1) != 1) {
        fprintf (stderr, "mcectl login: give NAME (mcectl login --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    char password[AUTH_PASSWORD_MAX + 2];
    int rc = mcectl_password_stdin (password, sizeof password);
    if (rc)
        return rc;
    json_t *body = json_pack ("{s:s,s:s}", "username", name, "password", password), *reply;
    auth_wipe (password, sizeof password);
    rc = mcectl_client_call (client, "POST", "/api/auth/login", body, false, &reply);
    json_decref (body);
    if (rc)
        return rc;
    if (mcectl_client_options (client)->json)
        mcectl_print_json (reply);
    else
        printf ("%s\n", json_string_value (json_object_get (reply, "token")));
    json_decref (reply);
    return MCECTL_EXIT_OK;
}

int mcectl_wallet (mcectl_client_t *client, int argc, char **argv)
{
    const char *keypair = NULL;
    const mcectl_option_t options[] = {{"--keypair", &keypair, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("wallet", argc, argv, options, NULL, 0) != 0 || !keypair) {
        fprintf (stderr, "mcectl wallet: give --keypair FILE (mcectl wallet --help)\n");
        return MCECTL_EXIT_USAGE;
    }
    //  The challenge names the user: the one the token is for.
    const char *token = mcectl_client_token (client);
    char user[AUTH_USERNAME_MAX + 1];
    if (!token)
        return MCECTL_EXIT_USAGE;
    if (auth_jwt_subject (token, strlen (token), user)) {
        fprintf (stderr, "mcectl: the token names no user\n");
        return MCECTL_EXIT_USAGE;
    }
    //  the user's password too: a token alone does not move where the money is paid
    char wallet[AUTH_WALLET_MAX], signature[AUTH_SIGNATURE_TEXT_MAX],
        password[AUTH_PASSWORD_MAX + 2];
    int rc = s_prove (client, keypair, user, wallet, signature, password);
    if (rc)
        return rc;
    json_t *body = json_pack ("{s:s,s:s,s:s}", "wallet", wallet, "signature", signature, "password",
                              password),
           *reply;
    auth_wipe (password, sizeof password);
    rc = mcectl_client_call (client, "POST", "/api/auth/wallet", body, true, &reply);
    json_decref (body);
    if (rc)
        return rc;
    s_print (client, reply, "changed the wallet of");
    json_decref (reply);
    return MCECTL_EXIT_OK;
}
