/*  curve — see curve.h. czmq does the work: zcert holds and stores the keys, zauth answers
    ZeroMQ's authentication requests from the certificates in keys_dir/public. What is ours is
    the layout of the folder, the role carried as certificate metadata, and the refusal of a
    monitor's command.
*/
#include "curve.h"
#include "log.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_PUBLIC_DIR "public"
#define S_ZAP_DOMAIN "mce"

const char *const curve_processes[] = {"matcher",   "gateway",     "settler",
                                       "persister", "broadcaster", NULL};

struct _curve_t {
    bool on;
    char name[CURVE_NAME_MAX];
    char keys_dir[CONFIG_PATH_MAX];
    zcert_t *cert;  //  our key pair
    zactor_t *auth; //  zauth, when this process serves
};

static void s_path (char *buf, size_t size, const char *dir, const char *sub, const char *name,
                    const char *ext)
{
    snprintf (buf, size, "%s/%s%s%s%s", dir, sub, sub[0] ? "/" : "", name, ext);
}

curve_t *curve_new (const mce_config_t *cfg, const char *name, bool serves)
{
    curve_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->on = cfg->security.curve;
    snprintf (self->name, sizeof self->name, "%s", name);
    snprintf (self->keys_dir, sizeof self->keys_dir, "%s", cfg->security.keys_dir);
    if (!self->on) {
        log_warn ("security",
                  "%s: CURVE is off (security.curve = false): links between "
                  "processes are neither authenticated nor encrypted; for "
                  "benchmarks only",
                  name);
        return self;
    }
    char path[CONFIG_PATH_MAX + 64];
    s_path (path, sizeof path, self->keys_dir, "", name, ".secret");
    self->cert = zcert_load (path);
    if (!self->cert || !zcert_secret_txt (self->cert) ||
        strlen (zcert_secret_txt (self->cert)) != 40) {
        log_error ("security",
                   "%s: no key pair in %s; make the keys with `mcectl keys init "
                   "--dir %s`",
                   name, path, self->keys_dir);
        curve_destroy (&self);
        return NULL;
    }
    if (serves) {
        //  One authenticator per process (ZeroMQ routes every server socket's handshakes to
        //  the one ZAP endpoint), started before any socket binds.
        s_path (path, sizeof path, self->keys_dir, "", S_PUBLIC_DIR, "");
        self->auth = zactor_new (zauth, NULL);
        if (!self->auth || zstr_sendx (self->auth, "CURVE", path, NULL) ||
            zsock_wait (self->auth) != 0) {
            log_error ("security", "%s: cannot start the authenticator", name);
            curve_destroy (&self);
            return NULL;
        }
        log_info ("security", "%s: CURVE on; clients admitted from %s", name, path);
    }
    return self;
}

void curve_destroy (curve_t **self_p)
{
    curve_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->auth);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

bool curve_on (const curve_t *self)
{
    return self && self->on;
}

const char *curve_public_key (const curve_t *self)
{
    return curve_on (self) ? zcert_public_txt (self->cert) : "";
}

int curve_server (const curve_t *self, void *sock)
{
    if (!curve_on (self))
        return 0;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, S_ZAP_DOMAIN);
    return 0;
}

int curve_client (const curve_t *self, void *sock, const char *server)
{
    if (!curve_on (self))
        return 0;
    char path[CONFIG_PATH_MAX + 64];
    s_path (path, sizeof path, self->keys_dir, S_PUBLIC_DIR, server, ".key");
    zcert_t *peer = zcert_load (path);
    if (!peer) {
        log_error ("security", "%s: no public key of %s in %s", self->name, server, path);
        return -1;
    }
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (peer));
    zcert_destroy (&peer);
    return 0;
}

bool curve_from_process (const curve_t *self, zmq_msg_t *msg)
{
    if (!curve_on (self))
        return true;
    const char *role = zmq_msg_gets (msg, "role");
    return role && strcmp (role, CURVE_ROLE_PROCESS) == 0;
}

//  ---------------------------------------------------------------------------------------
//  Making keys

static int s_mkdir (const char *dir, char *err, size_t errlen)
{
    if (mkdir (dir, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf (err, errlen, "cannot make %s: %s", dir, strerror (errno));
    return -1;
}

int curve_keys_make (const char *keys_dir, const char *name, const char *role, char *err,
                     size_t errlen)
{
    if (!name[0] || strlen (name) >= CURVE_NAME_MAX ||
        strspn (name, "abcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") != strlen (name)) {
        snprintf (err, errlen, "a key name is 1 to %d of a-z, 0-9, - and _", CURVE_NAME_MAX - 1);
        return -1;
    }
    if (strcmp (role, CURVE_ROLE_PROCESS) != 0 && strcmp (role, CURVE_ROLE_MONITOR) != 0) {
        snprintf (err, errlen, "a role is %s or %s", CURVE_ROLE_PROCESS, CURVE_ROLE_MONITOR);
        return -1;
    }
    char pub_dir[CONFIG_PATH_MAX + 16], secret[CONFIG_PATH_MAX + 64], pub[CONFIG_PATH_MAX + 64];
    s_path (pub_dir, sizeof pub_dir, keys_dir, "", S_PUBLIC_DIR, "");
    s_path (secret, sizeof secret, keys_dir, "", name, ".secret");
    s_path (pub, sizeof pub, keys_dir, S_PUBLIC_DIR, name, ".key");
    if (s_mkdir (keys_dir, err, errlen) || s_mkdir (pub_dir, err, errlen))
        return -1;
    if (access (secret, F_OK) == 0)
        return 0;
    zcert_t *cert = zcert_new ();
    if (!cert) {
        snprintf (err, errlen, "cannot make a key pair");
        return -1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "role", "%s", role);
    //  The public file first: a secret without it would be a key no server accepts, and
    //  `keys init` would not make it again.
    mode_t mask = umask (077);
    int rc = zcert_save_public (cert, pub) || zcert_save_secret (cert, secret) ? -1 : 1;
    umask (mask);
    if (rc < 0)
        snprintf (err, errlen, "cannot write %s: %s", secret, strerror (errno));
    zcert_destroy (&cert);
    return rc;
}
