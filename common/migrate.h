/*  migrate — brings a component's tables to the schema its binary was built with.

    Each component (gateway, persister, ...) keeps its migrations as numbered SQL files,
    <component>/migrations/NNNN_title.sql, embedded into the binary at build time by
    common/embed.cmake. Several components share one database and one bookkeeping table:

        schema_migrations (component text, version int, name text, applied_at timestamptz,
                           primary key (component, version))

    migrate_apply runs every version the table does not hold yet, in order, each in its own
    transaction together with its row in schema_migrations, so a migration is applied whole
    or not at all. A transaction-scoped advisory lock keyed on the component serialises
    processes that start at the same time; the second one finds the row and skips. A
    database already past the binary's newest version is refused: an old binary must not
    write into a schema it does not know.

    A migration file must not contain BEGIN/COMMIT (it runs inside migrate's transaction)
    nor statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
*/
#ifndef MCE_MIGRATE_H
#define MCE_MIGRATE_H

#include "pg.h"

#include <stddef.h>

#define MIGRATE_TIMEOUT_MS 600000 //  statement bound while migrating: index builds are slow

typedef struct {
    int version;      //  the NNNN of the file name, > 0
    const char *name; //  the title after NNNN_, without .sql
    const char *sql;
} migrate_file_t;

//  Declares the tables common/embed.cmake generates for a component, e.g. after
//      mce_embed_sql (TARGET mce_gateway_core COMPONENT gateway DIR .../migrations)
//  write `MIGRATE_DECLARE (gateway);` and call
//      migrate_apply (pg, "gateway", gateway_migrations, gateway_migration_count, err, size)
#define MIGRATE_DECLARE(component)                                                                 \
    extern const migrate_file_t component##_migrations[];                                          \
    extern const int component##_migration_count

//  Applies the migrations of component that the database lacks. files are sorted by
//  version, strictly increasing. Returns 0 when the schema is current (nothing applied, or
//  every missing version applied and logged), or -1 with the reason in err: a migration
//  failed (it was rolled back; the ones before it stay), the database is newer than the
//  binary, or the database could not be reached.
int migrate_apply (pg_t *pg, const char *component, const migrate_file_t *files, int count,
                   char *err, size_t errlen);

//  The newest version of component recorded in the database: 0 if none, -1 on error (the
//  reason in pg_error).
int migrate_version (pg_t *pg, const char *component);

#endif
