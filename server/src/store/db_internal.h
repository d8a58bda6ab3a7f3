/* For store files that keep their own family of queries beside db.c (policy_db.c): a cached
 * prepared statement per slot on each connection, and db.c's error and step helpers. */
#ifndef SRV_DB_INTERNAL_H
#define SRV_DB_INTERNAL_H

#include <sqlite3.h>

#include "db.h"

/* Each family of queries owns a range of slots: policy_db.c from 0, identity_db.c from
 * SRV_DB_SLOT_IDENTITY, ca_db.c from SRV_DB_SLOT_CA, key_db.c from
 * SRV_DB_SLOT_KEY, audit_query_db.c from SRV_DB_SLOT_AUDIT_QUERY,
 * usage_db.c from SRV_DB_SLOT_USAGE. */
#define SRV_DB_SLOT_IDENTITY    40
#define SRV_DB_SLOT_CA          64
#define SRV_DB_SLOT_KEY         72
#define SRV_DB_SLOT_AUDIT_QUERY 80
#define SRV_DB_SLOT_USAGE       84
#define SRV_DB_EXT_SLOTS        96

/* The statement for slot (prepared from sql on first use), reset and with bindings cleared. */
sqlite3_stmt *srv_db_stmt_ext(srv_db *db, int slot, const char *sql, srv_error *err);
/* Runs a statement that returns no rows; a constraint violation is SRV_E_EXISTS. */
srv_status srv_db_step_done(srv_db *db, sqlite3_stmt *s, srv_error *err, const char *what);
srv_status srv_db_fail(srv_db *db, srv_error *err, const char *what);
/* Rows changed by the last statement. */
int srv_db_changes(srv_db *db);

#endif
