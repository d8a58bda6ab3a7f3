/* Migrations: the SQL that brings a database of each engine to SRV_DB_SCHEMA_VERSION. */
#ifndef SRV_STORE_SCHEMA_H
#define SRV_STORE_SCHEMA_H

#include <stddef.h>

/* A PostgreSQL step: the SQL that brings the schema to version `to`. */
typedef struct {
    int to;
    const char *sql;
} srv_schema_step;

/* The SQLite step from version `from` to from + 1, NULL past the last. */
const char *srv_schema_sqlite_step(int from);
/* The PostgreSQL steps, in order. */
const srv_schema_step *srv_schema_pg_steps(size_t *count);

#endif
