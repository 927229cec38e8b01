/*  test_config — one table of keys: defaults, the file, the environment; every error names
    the key.
*/
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_path[64];

static const char *s_write (const char *text)
{
    snprintf (s_path, sizeof s_path, "/tmp/mce-test-config-XXXXXX");
    int fd = mkstemp (s_path);
    cr_assert_geq (fd, 0);
    cr_assert_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    return s_path;
}

static void s_expect_error (const char *text, const char *needle)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX] = "";
    const char *path = s_write (text);
    cr_assert_eq (config_load (&cfg, path, err, sizeof err), -1, "accepted: %s", text);
    cr_assert_not_null (strstr (err, needle), "error \"%s\" does not name \"%s\"", err, needle);
    unlink (path);
}

Test (config, defaults_describe_one_machine)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    cr_assert_eq (config_load (&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (cfg.matcher.commands, "tcp://127.0.0.1:5555");
    cr_assert_str_eq (cfg.matcher.bus.pub, "tcp://127.0.0.1:5556");
    cr_assert_eq (cfg.gateway.http_port, 8080);
    cr_assert_eq (cfg.market_count, 1);
    cr_assert_str_eq (cfg.markets[0].id, "campus-1");
    cr_assert_eq (cfg.markets[0].epoch_seconds, 900);
}

Test (config, file_values_and_markets)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    const char *path =
        s_write ("matcher = { fsync = \"never\"; batch_max = 64; };\n"
                 "markets = ( { id = \"campus-1\"; tick = \"0.001\"; },\n"
                 "            { id = \"dorm-2\"; epoch_seconds = 2; mode = \"auction\"; "
                 "max_qty = \"100.5\"; } );\n");
    cr_assert_eq (config_load (&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq (cfg.matcher.fsync, 2);
    cr_assert_eq (cfg.matcher.batch_max, 64);
    cr_assert_eq (cfg.market_count, 2);
    cr_assert_eq (config_market (&cfg, "campus-1")->tick, 1000, "0.001 per kWh = 1000 µ");
    cr_assert_eq (config_market (&cfg, "dorm-2")->max_qty, 100500, "100.5 kWh = 100500 Wh");
    cr_assert_eq (config_market (&cfg, "dorm-2")->mode, CONFIG_MODE_AUCTION);
    cr_assert_null (config_market (&cfg, "nowhere"));
    unlink (path);
}

Test (config, errors_name_the_key)
{
    s_expect_error ("matcher = { fsink = \"batch\"; };", "matcher.fsink");
    s_expect_error ("matcher = { fsync = \"sometimes\"; };", "matcher.fsync");
    s_expect_error ("matcher = { batch_max = 0; };", "matcher.batch_max");
    s_expect_error ("matcher = { batch_max = \"ten\"; };", "matcher.batch_max");
    s_expect_error ("gateway = { http_port = 70000; };", "gateway.http_port");
    s_expect_error ("colour = \"blue\";", "colour");
    s_expect_error ("markets = ( { id = \"a\"; tick = \"0.0000001\"; } );", "markets[0].tick");
    s_expect_error ("markets = ( { id = \"a\"; wat = 1; } );", "markets[0].wat");
    s_expect_error ("markets = ( { tick = \"0.01\"; } );", "markets[0].id");
    s_expect_error ("markets = ( { id = \"a\"; }, { id = \"a\"; } );", "defined twice");
    s_expect_error ("matcher = { batch_max = 5 ", ":1:");
    s_expect_error ("markets = ( { id = \"a\"; stp = \"never\"; } );", "markets[0].stp");
    s_expect_error (
        "markets = ( { id = \"a\"; max_qty = \"1000000000\"; max_price = \"1000000\"; } );",
        "too large");
}

Test (config, a_misspelt_variable_names_the_closest_key)
{
    static const struct {
        const char *name, *needle; //  needle NULL: accepted
    } cases[] = {
        {"MCE_MATCHR_FSYNC", "did you mean MCE_MATCHER_FSYNC (matcher.fsync)"},
        {"MCE_GATEWAY_HTTP_PROT", "did you mean MCE_GATEWAY_HTTP_PORT"},
        {"MCE_SETTLER_RETRIES", "did you mean MCE_SETTLER_"}, //  a section's, however far
        {"MCE_LOG_LEVLE", "MCE_LOG_LEVEL"},
        {"MCE_KEEP_TEST_DIR", NULL},           //  not like any key: not ours to judge
        {"MCE_SETTLER_CRASH_AFTER_ACK", NULL}, //  meant so (the settler's crash tests)
        {"MCE_GATEWAY_PORTS", NULL},           //  compose's, on the host
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mce_config_t cfg;
        char err[CONFIG_ERR_MAX] = "";
        setenv (cases[i].name, "1", 1);
        int rc = config_load (&cfg, NULL, err, sizeof err);
        unsetenv (cases[i].name);
        if (!cases[i].needle) {
            cr_expect_eq (rc, 0, "%s: %s", cases[i].name, err);
            continue;
        }
        cr_expect_eq (rc, -1, "%s accepted", cases[i].name);
        cr_expect_not_null (strstr (err, cases[i].needle), "%s: \"%s\"", cases[i].name, err);
        cr_expect_not_null (strstr (err, cases[i].name), "%s: \"%s\"", cases[i].name, err);
    }
}

Test (config, environment_overrides_the_file)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    const char *path = s_write ("gateway = { http_port = 8090; };");
    setenv ("MCE_GATEWAY_HTTP_PORT", "9999", 1);
    cr_assert_eq (config_load (&cfg, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq (cfg.gateway.http_port, 9999);
    setenv ("MCE_MATCHER_FSYNC", "nope", 1);
    cr_assert_eq (config_load (&cfg, path, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "MCE_MATCHER_FSYNC"), "%s", err);
    unsetenv ("MCE_MATCHER_FSYNC");
    unsetenv ("MCE_GATEWAY_HTTP_PORT");
    unlink (path);
}
