/*  migrate — see migrate.h.

    Why it is shaped this way:
    - One transaction per migration, holding both the migration's SQL and its row in
      schema_migrations: PostgreSQL's DDL is transactional, so a failing migration leaves
      neither a half-built table nor a row claiming it was applied.
    - The advisory lock is transaction-scoped (pg_advisory_xact_lock), so it can never
      outlive a crashed process's transaction, and it is keyed on the component so the
      gateway and the persister do not wait for each other. Whoever gets the lock second
      re-reads schema_migrations under it and skips what the first one applied.
    - Creating schema_migrations itself takes a lock of its own: two concurrent
      CREATE TABLE IF NOT EXISTS can otherwise both miss the table and one fails.
*/
#include "migrate.h"
#include "log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_LOCK_CLASS "7169893" //  first key of every migrate lock: 0x6d6365, "mce"
#define S_TABLE_LOCK "schema_migrations"

static const char *s_create_table = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                    " component text NOT NULL,"
                                    " version int NOT NULL,"
                                    " name text NOT NULL,"
                                    " applied_at timestamptz NOT NULL DEFAULT now(),"
                                    " PRIMARY KEY (component, version))";

static void s_fail (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void s_fail (char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

//  Opens a transaction holding the advisory lock named by key.
static int s_begin_locked (pg_t *pg, const char *key)
{
    if (pg_begin (pg) != 0)
        return -1;
    const char *params[] = {S_LOCK_CLASS, key};
    pg_result_t *r =
        pg_exec (pg, "SELECT pg_advisory_xact_lock ($1::int, hashtext ($2))", 2, params);
    if (!r) {
        pg_rollback (pg);
        return -1;
    }
    pg_result_free (&r);
    return 0;
}

static int s_ensure_table (pg_t *pg)
{
    if (s_begin_locked (pg, S_TABLE_LOCK) != 0)
        return -1;
    if (pg_run (pg, s_create_table) != 0) {
        pg_rollback (pg);
        return -1;
    }
    return pg_commit (pg);
}

//  Newest recorded version of component (0 if none) and whether version is recorded.
static int s_state (pg_t *pg, const char *component, int version, int *newest, bool *has)
{
    char v[16];
    snprintf (v, sizeof v, "%d", version);
    const char *params[] = {component, v};
    pg_result_t *r = pg_exec (pg,
                              "SELECT coalesce (max (version), 0), coalesce (bool_or (version = "
                              "$2::int), false) FROM schema_migrations WHERE component = $1",
                              2, params);
    if (!r)
        return -1;
    *newest = (int) pg_int (r, 0, 0);
    *has = pg_value (r, 0, 1) && strcmp (pg_value (r, 0, 1), "t") == 0;
    pg_result_free (&r);
    return 0;
}

static void s_refusal (char *err, size_t errlen, const char *component, int newest, int known)
{
    s_fail (err, errlen,
            "database schema of %s is at version %d, this binary knows up to %d: refusing to "
            "start; upgrade the binary",
            component, newest, known);
}

//  Applies one migration unless another process already has. 1 applied, 0 skipped, -1 error.
static int s_apply_one (pg_t *pg, const char *component, const migrate_file_t *file, int known,
                        char *err, size_t errlen)
{
    if (s_begin_locked (pg, component) != 0) {
        s_fail (err, errlen, "migrate %s: %s", component, pg_error (pg));
        return -1;
    }
    int newest;
    bool has;
    if (s_state (pg, component, file->version, &newest, &has) != 0) {
        pg_rollback (pg);
        s_fail (err, errlen, "migrate %s: %s", component, pg_error (pg));
        return -1;
    }
    if (newest > known) { //  a newer binary migrated while we waited for the lock
        pg_rollback (pg);
        s_refusal (err, errlen, component, newest, known);
        return -1;
    }
    if (has) {
        pg_rollback (pg);
        return 0;
    }
    char v[16];
    snprintf (v, sizeof v, "%d", file->version);
    const char *params[] = {component, v, file->name};
    pg_result_t *r = NULL;
    if (pg_run (pg, file->sql) != 0 ||
        !(r = pg_exec (pg,
                       "INSERT INTO schema_migrations (component, version, name) "
                       "VALUES ($1, $2::int, $3)",
                       3, params)) ||
        pg_commit (pg) != 0) {
        pg_result_free (&r);
        pg_rollback (pg);
        s_fail (err, errlen, "migration %04d_%s of %s failed and was rolled back: %s",
                file->version, file->name, component, pg_error (pg));
        return -1;
    }
    pg_result_free (&r);
    log_info ("migrate", "%s: applied migration %04d_%s", component, file->version, file->name);
    return 1;
}

static int s_check_files (const char *component, const migrate_file_t *files, int count, char *err,
                          size_t errlen)
{
    for (int i = 0; i < count; i++) {
        if (files[i].version <= 0 || !files[i].name || !files[i].sql) {
            s_fail (err, errlen, "migration #%d of %s has no version, name or SQL", i, component);
            return -1;
        }
        if (i > 0 && files[i].version <= files[i - 1].version) {
            s_fail (err, errlen, "migrations of %s are out of order: version %d after %d",
                    component, files[i].version, files[i - 1].version);
            return -1;
        }
    }
    return 0;
}

static int s_apply (pg_t *pg, const char *component, const migrate_file_t *files, int count,
                    char *err, size_t errlen)
{
    int known = count > 0 ? files[count - 1].version : 0;
    if (s_ensure_table (pg) != 0) {
        s_fail (err, errlen, "migrate %s: cannot create schema_migrations: %s", component,
                pg_error (pg));
        return -1;
    }
    int newest;
    bool has;
    if (s_state (pg, component, 0, &newest, &has) != 0) {
        s_fail (err, errlen, "migrate %s: %s", component, pg_error (pg));
        return -1;
    }
    if (newest > known) {
        s_refusal (err, errlen, component, newest, known);
        return -1;
    }
    int applied = 0;
    for (int i = 0; i < count; i++) {
        int rc = s_apply_one (pg, component, &files[i], known, err, errlen);
        if (rc < 0)
            return -1;
        applied += rc;
    }
    if (applied > 0)
        log_info ("migrate", "%s: schema at version %d (%d migration%s applied)", component, known,
                  applied, applied == 1 ? "" : "s");
    else
        log_info ("migrate", "%s: schema is current at version %d", component, known);
    return 0;
}

int migrate_apply (pg_t *pg, const char *component, const migrate_file_t *files, int count,
                   char *err, size_t errlen)
{
    assert (pg);
    assert (component && *component);
    assert (count >= 0 && (count == 0 || files));
    assert (err && errlen > 0);
    err[0] = '\0';
    if (s_check_files (component, files, count, err, errlen) != 0)
        return -1;
    int saved = pg_timeout (pg);
    pg_set_timeout (pg, MIGRATE_TIMEOUT_MS);
    int rc = s_apply (pg, component, files, count, err, errlen);
    pg_set_timeout (pg, saved);
    return rc;
}

int migrate_version (pg_t *pg, const char *component)
{
    assert (pg);
    assert (component);
    pg_result_t *r = pg_exec (pg, "SELECT to_regclass ('schema_migrations') IS NOT NULL", 0, NULL);
    if (!r)
        return -1;
    bool exists = pg_value (r, 0, 0) && strcmp (pg_value (r, 0, 0), "t") == 0;
    pg_result_free (&r);
    if (!exists)
        return 0;
    const char *params[] = {component};
    r = pg_exec (pg,
                 "SELECT coalesce (max (version), 0) FROM schema_migrations WHERE component = $1",
                 1, params);
    if (!r)
        return -1;
    int version = (int) pg_int (r, 0, 0);
    pg_result_free (&r);
    return version;
}
