/*  mcectl — the operator's command line. For now: users (admins are made here and only here,
    never by self-service registration), tokens for testing, and the live market data the
    broadcaster publishes for monitors. Orders and health come with the run-for-real issue.

        mcectl [-c FILE] user add NAME --wallet KEY [--admin]   (password on standard input)
        mcectl [-c FILE] token NAME [--role user|admin] [--ttl SECONDS]
        mcectl [-c FILE] tail [TOPIC ...] [--count N]

    It talks to Postgres directly (postgres.url) with the gateway's own migrations, and signs
    tokens with gateway.jwt_secret, so it needs the same configuration as the gateway.
*/
#include "auth.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "proto.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MIGRATE_DECLARE (gateway);

static int s_usage (FILE *out, int status)
{
    fprintf (out,
             "Usage: mcectl [-c FILE] user add NAME --wallet KEY [--admin]\n"
             "       mcectl [-c FILE] token NAME [--role user|admin] [--ttl SECONDS]\n"
             "       mcectl [-c FILE] tail [TOPIC ...] [--count N]\n\n"
             "user add   creates a user in the gateway's database (postgres.url); the password\n"
             "           is read from standard input (one line), never from the command line.\n"
             "           --admin makes an administrator: the only way to get one.\n"
             "token      prints a token for NAME signed with gateway.jwt_secret (for tests and\n"
             "           scripts; default role user, ttl 3600 s). The user need not exist.\n"
             "tail       prints the broadcaster's market data as it happens, one line per\n"
             "           message: the topic, then the JSON (broadcaster/PROTOCOL.md). Topics are\n"
             "           <channel>.<market> prefixes: depth.campus-1, trades., ticker, ...;\n"
             "           none = everything. Each starts with the channel's snapshot. It reads\n"
             "           broadcaster.xpub; --count N stops after N messages; Ctrl-C stops.\n\n"
             "Without -c the built-in defaults are used; MCE_<KEY> environment variables\n"
             "override, as for every mce executable (MCE_POSTGRES_URL, MCE_GATEWAY_JWT_SECRET).\n");
    return status;
}

static int s_user_add (const mce_config_t *cfg, int argc, char **argv)
{
    const char *name = NULL, *wallet = NULL;
    bool admin = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv[i], "--wallet") == 0 && i + 1 < argc)
            wallet = argv[++i];
        else if (strcmp (argv[i], "--admin") == 0)
            admin = true;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return s_usage (stderr, 2);
    }
    if (!name || !wallet)
        return s_usage (stderr, 2);
    const char *why;
    if ((why = auth_check_username (name, strlen (name)))) {
        fprintf (stderr, "mcectl: username %s\n", why);
        return 2;
    }
    if ((why = auth_check_wallet (wallet, strlen (wallet)))) {
        fprintf (stderr, "mcectl: wallet %s\n", why);
        return 2;
    }
    char password[AUTH_PASSWORD_MAX + 2];
    if (!fgets (password, sizeof password, stdin)) {
        fprintf (stderr, "mcectl: give the password on standard input\n");
        return 2;
    }
    password[strcspn (password, "\r\n")] = '\0';
    if ((why = auth_check_password (password, strlen (password)))) {
        fprintf (stderr, "mcectl: password %s\n", why);
        return 2;
    }
    char hash[AUTH_HASH_MAX], err[512];
    if (auth_password_hash (password, (auth_cost_t) cfg->gateway.password_cost, hash)) {
        fprintf (stderr, "mcectl: out of memory hashing the password\n");
        return 1;
    }
    auth_wipe (password, sizeof password);
    pg_t *pg = pg_connect (cfg->postgres.url, 10000, err, sizeof err);
    if (!pg) {
        fprintf (stderr, "mcectl: cannot reach Postgres: %s\n", err);
        return 1;
    }
    int rc = 1;
    if (migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err,
                       sizeof err)) {
        fprintf (stderr, "mcectl: %s\n", err);
        goto done;
    }
    const char *params[] = {name, hash, wallet, admin ? "admin" : "user"};
    pg_result_t *r = pg_exec (pg,
                              "INSERT INTO users (username, password_hash, wallet, role) "
                              "VALUES ($1, $2, $3, $4)",
                              4, params);
    if (!r && strcmp (pg_sqlstate (pg), PG_UNIQUE_VIOLATION) == 0)
        fprintf (stderr, "mcectl: user %s exists already\n", name);
    else if (!r)
        fprintf (stderr, "mcectl: %s\n", pg_error (pg));
    else {
        printf ("created %s %s\n", admin ? "administrator" : "user", name);
        rc = 0;
    }
    pg_result_free (&r);
done:
    pg_destroy (&pg);
    return rc;
}

static int s_token (const mce_config_t *cfg, int argc, char **argv)
{
    const char *name = NULL, *role = "user";
    long ttl = 3600;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp (argv[i], "--ttl") == 0 && i + 1 < argc)
            ttl = atol (argv[++i]);
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return s_usage (stderr, 2);
    }
    if (!name || ttl <= 0 || (strcmp (role, "user") && strcmp (role, "admin")))
        return s_usage (stderr, 2);
    size_t len = strlen (cfg->gateway.jwt_secret);
    if (len < AUTH_JWT_SECRET_MIN) {
        fprintf (stderr,
                 "mcectl: gateway.jwt_secret must be set (%d bytes or more), the gateway's own\n",
                 AUTH_JWT_SECRET_MIN);
        return 2;
    }
    int64_t now = clock_wall_ns () / MCE_NS_PER_SEC;
    auth_claims_t claims = {.role =
                                strcmp (role, "admin") == 0 ? PROTO_ROLE_ADMIN : PROTO_ROLE_USER,
                            .iat = now,
                            .exp = now + ttl};
    snprintf (claims.sub, sizeof claims.sub, "%s", name);
    char token[AUTH_JWT_MAX];
    if (auth_jwt_mint ((const uint8_t *) cfg->gateway.jwt_secret, len, &claims, token,
                       sizeof token)) {
        fprintf (stderr, "mcectl: cannot sign a token for \"%s\" (a valid username?)\n", name);
        return 2;
    }
    printf ("%s\n", token);
    return 0;
}

static int s_tail (const mce_config_t *cfg, int argc, char **argv)
{
    long count = -1;
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (!sub || zsock_connect (sub, "%s", cfg->broadcaster.xpub) < 0) {
        fprintf (stderr, "mcectl: cannot connect to the broadcaster at %s\n",
                 cfg->broadcaster.xpub);
        zsock_destroy (&sub);
        return 1;
    }
    int topics = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp (argv[i], "--count") == 0 && i + 1 < argc)
            count = atol (argv[++i]);
        else if (argv[i][0] != '-') {
            zsock_set_subscribe (sub, argv[i]);
            topics++;
        }
        else {
            zsock_destroy (&sub);
            return s_usage (stderr, 2);
        }
    }
    if (topics == 0)
        zsock_set_subscribe (sub, "");
    zsock_set_rcvtimeo (sub, 1000); //  to notice Ctrl-C
    long seen = 0;
    while (!zsys_interrupted && (count < 0 || seen < count)) {
        char *topic = NULL, *body = NULL;
        if (zstr_recvx (sub, &topic, &body, NULL) == 2) {
            printf ("%s %s\n", topic, body);
            fflush (stdout);
            seen++;
        }
        zstr_free (&topic);
        zstr_free (&body);
    }
    zsock_destroy (&sub);
    return 0;
}

int main (int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;
    if (i + 1 < argc && (strcmp (argv[i], "-c") == 0 || strcmp (argv[i], "--config") == 0)) {
        config_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc || strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        return s_usage (i >= argc ? stderr : stdout, i >= argc ? 2 : 0);
    log_init ("mcectl");
    log_set_level (MCE_LOG_WARN); //  a command line tool: only what went wrong on stderr
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    if (config_load (&cfg, config_path, err, sizeof err)) {
        fprintf (stderr, "mcectl: configuration error: %s\n", err);
        return 2;
    }
    if (auth_init ()) {
        fprintf (stderr, "mcectl: libsodium cannot start\n");
        return 1;
    }
    if (strcmp (argv[i], "user") == 0 && i + 1 < argc && strcmp (argv[i + 1], "add") == 0)
        return s_user_add (&cfg, argc - i - 2, argv + i + 2);
    if (strcmp (argv[i], "token") == 0)
        return s_token (&cfg, argc - i - 1, argv + i + 1);
    if (strcmp (argv[i], "tail") == 0)
        return s_tail (&cfg, argc - i - 1, argv + i + 1);
    fprintf (stderr, "mcectl: unknown command \"%s\"\n", argv[i]);
    return s_usage (stderr, 2);
}
