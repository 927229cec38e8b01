/*  mcectl_keys — the CurveZMQ keys of the processes and of monitoring tools (`keys init`,
    `keys add`, `keys list`), in the folder security.keys_dir names (curve.h has the layout).
    The keys are made here, on the operator's machine, and never travel over the network.
*/
#include "curve.h"
#include "mcectl.h"

#include <czmq.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

//  The folder: --dir, else the configuration's security.keys_dir.
static const char *s_dir (mcectl_client_t *client, const char *dir)
{
    return dir ? dir : mcectl_client_config (client)->security.keys_dir;
}

static int s_make (const char *dir, const char *name, const char *role)
{
    char err[256];
    int rc = curve_keys_make (dir, name, role, err, sizeof err);
    if (rc < 0) {
        fprintf (stderr, "mcectl: %s\n", err);
        return MCECTL_EXIT_FAILED;
    }
    printf ("%s %s (%s)\n", rc ? "made" : "kept", name, role);
    return MCECTL_EXIT_OK;
}

int mcectl_keys_init (mcectl_client_t *client, int argc, char **argv)
{
    const char *dir = NULL;
    const mcectl_option_t options[] = {{"--dir", &dir, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("keys init", argc, argv, options, NULL, 0) != 0)
        return MCECTL_EXIT_USAGE;
    dir = s_dir (client, dir);
    for (int i = 0; curve_processes[i]; i++)
        if (s_make (dir, curve_processes[i], CURVE_ROLE_PROCESS))
            return MCECTL_EXIT_FAILED;
    if (s_make (dir, CURVE_MONITOR, CURVE_ROLE_MONITOR))
        return MCECTL_EXIT_FAILED;
    printf ("keys in %s\n", dir);
    return MCECTL_EXIT_OK;
}

int mcectl_keys_add (mcectl_client_t *client, int argc, char **argv)
{
    const char *dir = NULL, *role = CURVE_ROLE_MONITOR, *name = NULL;
    const mcectl_option_t options[] = {
        {"--dir", &dir, NULL}, {"--role", &role, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("keys add", argc, argv, options, &name, 1) != 1) {
        fprintf (stderr, "mcectl: keys add NAME [--role monitor|process] [--dir D]\n");
        return MCECTL_EXIT_USAGE;
    }
    return s_make (s_dir (client, dir), name, role);
}

int mcectl_keys_list (mcectl_client_t *client, int argc, char **argv)
{
    const char *dir = NULL;
    const mcectl_option_t options[] = {{"--dir", &dir, NULL}, {NULL, NULL, NULL}};
    if (mcectl_parse ("keys list", argc, argv, options, NULL, 0) != 0)
        return MCECTL_EXIT_USAGE;
    char path[CONFIG_PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/public", s_dir (client, dir));
    DIR *d = opendir (path);
    if (!d) {
        fprintf (stderr, "mcectl: no keys in %s (mcectl keys init)\n", path);
        return MCECTL_EXIT_FAILED;
    }
    printf ("%-24s %-8s %s\n", "NAME", "ROLE", "PUBLIC KEY");
    struct dirent *e;
    while ((e = readdir (d))) {
        char file[CONFIG_PATH_MAX + 300];
        snprintf (file, sizeof file, "%s/%s", path, e->d_name);
        zcert_t *cert = e->d_name[0] != '.' ? zcert_load (file) : NULL;
        if (!cert)
            continue;
        const char *name = zcert_meta (cert, "name"), *role = zcert_meta (cert, "role");
        printf ("%-24s %-8s %s\n", name ? name : e->d_name, role ? role : "?",
                zcert_public_txt (cert));
        zcert_destroy (&cert);
    }
    closedir (d);
    return MCECTL_EXIT_OK;
}
