/*  test_curve — a server made with curve_server talks to a client with a listed key, and to
    nobody else: not to an anonymous socket, not to a key missing from keys_dir/public, not to a
    client that trusts the wrong server key. A monitor's messages arrive marked as not from a
    process; a process's as from one. With CURVE off, sockets are left as they were.
*/
#include "config.h"
#include "curve.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_WAIT_MS 3000 //  how long a refused client is given to get an answer it must not get

static char s_dir[96];

static mce_config_t s_config (bool on)
{
    mce_config_t cfg;
    char err[CONFIG_ERR_MAX];
    cr_assert_eq (config_load_text (&cfg, "", err, sizeof err), 0, "%s", err);
    cfg.security.curve = on;
    snprintf (cfg.security.keys_dir, sizeof cfg.security.keys_dir, "%s", s_dir);
    return cfg;
}

static void s_setup (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/mce-curve-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    char keys[96], err[256];
    snprintf (keys, sizeof keys, "%.80s/keys", s_dir);
    snprintf (s_dir, sizeof s_dir, "%s", keys);
    cr_assert_eq (curve_keys_make (s_dir, "matcher", CURVE_ROLE_PROCESS, err, sizeof err), 1, "%s",
                  err);
    cr_assert_eq (curve_keys_make (s_dir, "gateway", CURVE_ROLE_PROCESS, err, sizeof err), 1);
    cr_assert_eq (curve_keys_make (s_dir, "watcher", CURVE_ROLE_MONITOR, err, sizeof err), 1);
}

static void s_teardown (void)
{
    char cmd[160];
    snprintf (cmd, sizeof cmd, "rm -rf %.*s", (int) (strlen (s_dir) - strlen ("/keys")), s_dir);
    cr_assert_eq (system (cmd), 0);
}

TestSuite (curve, .init = s_setup, .fini = s_teardown);

//  A ROUTER server and a DEALER client (client_name NULL: anonymous) on a fresh port; the
//  client says "hello". Returns the message as the server got it, NULL if nothing came.
static zmsg_t *s_exchange (curve_t *server, curve_t *client, const char *trusted)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    cr_assert_eq (curve_server (server, router), 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    cr_assert_gt (port, 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (client)
        cr_assert_eq (curve_client (client, dealer, trusted), 0);
    zsock_connect (dealer, "tcp://127.0.0.1:%d", port);
    zstr_send (dealer, "hello");
    zsock_set_rcvtimeo (router, S_WAIT_MS);
    zmsg_t *got = zmsg_recv (router);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    return got;
}

Test (curve, listed_client_is_admitted_with_its_role)
{
    mce_config_t cfg = s_config (true);
    curve_t *server = curve_new (&cfg, "matcher", true);
    curve_t *gateway = curve_new (&cfg, "gateway", false);
    curve_t *watcher = curve_new (&cfg, "watcher", false);
    cr_assert (server && gateway && watcher);

    zsock_t *router = zsock_new (ZMQ_ROUTER);
    curve_server (server, router);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_set_rcvtimeo (router, 10000);
    curve_t *clients[] = {gateway, watcher};
    bool expected[] = {true, false};
    for (int i = 0; i < 2; i++) {
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        cr_assert_eq (curve_client (clients[i], dealer, "matcher"), 0);
        zsock_connect (dealer, "tcp://127.0.0.1:%d", port);
        zstr_send (dealer, "hello");
        zmq_msg_t id, body;
        zmq_msg_init (&id);
        zmq_msg_init (&body);
        cr_assert_geq (zmq_msg_recv (&id, zsock_resolve (router), 0), 0, "client %d admitted", i);
        cr_assert_geq (zmq_msg_recv (&body, zsock_resolve (router), 0), 0);
        cr_assert_eq (curve_from_process (server, &body), expected[i], "client %d's role", i);
        zmq_msg_close (&id);
        zmq_msg_close (&body);
        zsock_destroy (&dealer);
    }
    zsock_destroy (&router);
    curve_destroy (&watcher);
    curve_destroy (&gateway);
    curve_destroy (&server);
}

Test (curve, strangers_get_nothing)
{
    mce_config_t cfg = s_config (true);
    curve_t *server = curve_new (&cfg, "matcher", true);
    cr_assert_not_null (server);
    //  anonymous: no CURVE at all
    cr_assert_null (s_exchange (server, NULL, NULL));

    //  a key pair made elsewhere, not in keys_dir/public
    char other[160], err[256];
    snprintf (other, sizeof other, "%s/elsewhere", s_dir);
    cr_assert_eq (curve_keys_make (other, "stranger", CURVE_ROLE_PROCESS, err, sizeof err), 1);
    char link[256], target[256];
    snprintf (link, sizeof link, "%s/stranger.secret", s_dir);
    snprintf (target, sizeof target, "%s/stranger.secret", other);
    cr_assert_eq (rename (target, link), 0);
    curve_t *stranger = curve_new (&cfg, "stranger", false);
    cr_assert_not_null (stranger);
    cr_assert_null (s_exchange (server, stranger, "matcher"));

    //  a listed client that trusts the wrong server key learns nothing either
    curve_t *gateway = curve_new (&cfg, "gateway", false);
    cr_assert_null (s_exchange (server, gateway, "gateway"));
    //  ... and with the right one, it gets through (the same server, the same run)
    zmsg_t *ok = s_exchange (server, gateway, "matcher");
    cr_assert_not_null (ok);
    zmsg_destroy (&ok);

    curve_destroy (&gateway);
    curve_destroy (&stranger);
    curve_destroy (&server);
}

Test (curve, a_key_added_later_is_admitted_without_restart)
{
    mce_config_t cfg = s_config (true);
    curve_t *server = curve_new (&cfg, "matcher", true);
    char err[256];
    cr_assert_eq (curve_keys_make (s_dir, "late", CURVE_ROLE_MONITOR, err, sizeof err), 1);
    curve_t *late = curve_new (&cfg, "late", false);
    zmsg_t *got = s_exchange (server, late, "matcher");
    cr_assert_not_null (got);
    zmsg_destroy (&got);
    curve_destroy (&late);
    curve_destroy (&server);
}

Test (curve, keys_are_private_and_made_once)
{
    char path[160], err[256];
    struct stat st;
    snprintf (path, sizeof path, "%s/matcher.secret", s_dir);
    cr_assert_eq (stat (path, &st), 0);
    cr_assert_eq (st.st_mode & 0777, 0600);
    cr_assert_eq (stat (s_dir, &st), 0);
    cr_assert_eq (st.st_mode & 0777, 0700);
    cr_assert_eq (curve_keys_make (s_dir, "matcher", CURVE_ROLE_PROCESS, err, sizeof err), 0);
    cr_assert_eq (curve_keys_make (s_dir, "../x", CURVE_ROLE_PROCESS, err, sizeof err), -1);
    cr_assert_eq (curve_keys_make (s_dir, "x", "admin", err, sizeof err), -1);
}

Test (curve, missing_key_is_an_error_and_off_changes_nothing)
{
    mce_config_t cfg = s_config (true);
    cr_assert_null (curve_new (&cfg, "nobody", false));
    cfg = s_config (false);
    curve_t *off = curve_new (&cfg, "nobody", true);
    cr_assert_not_null (off);
    cr_assert_not (curve_on (off));
    zmsg_t *got = s_exchange (off, off, "matcher");
    cr_assert_not_null (got, "plain sockets still talk");
    zmsg_destroy (&got);
    curve_destroy (&off);
}
