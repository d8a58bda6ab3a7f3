/* What the store's files share: db.c's queries (kept in one table there, each prepared once
 * per connection) for the entity families in principal_db.c, keys_db.c and audit_db.c; the
 * statement slots of the families that keep their own SQL (policy_db.c, identity_db.c, ...);
 * and db.c's error and step helpers. */
#ifndef SRV_DB_INTERNAL_H
#define SRV_DB_INTERNAL_H

#include "db.h"
#include "sql.h"

/* Each family of queries owns a range of slots: policy_db.c from 0, identity_db.c from
 * SRV_DB_SLOT_IDENTITY, ca_db.c from SRV_DB_SLOT_CA, key_db.c from
 * SRV_DB_SLOT_KEY, audit_query_db.c from SRV_DB_SLOT_AUDIT_QUERY,
 * usage_db.c from SRV_DB_SLOT_USAGE, project_db.c from SRV_DB_SLOT_PROJECT, console_db.c
 * from SRV_DB_SLOT_CONSOLE. */
#define SRV_DB_SLOT_IDENTITY    40
#define SRV_DB_SLOT_CA          64
#define SRV_DB_SLOT_KEY         72
#define SRV_DB_SLOT_AUDIT_QUERY 84
#define SRV_DB_SLOT_USAGE       88
#define SRV_DB_SLOT_PROJECT     100
#define SRV_DB_SLOT_CONSOLE     120
#define SRV_DB_SLOT_TX          140 /* conn.c: transaction control */
#define SRV_DB_SLOT_JOB         150 /* job_db.c */
#define SRV_DB_SLOT_TSA         170 /* tsa_db.c */
#define SRV_DB_SLOT_ALERT       180 /* alert_db.c */
#define SRV_DB_EXT_SLOTS        194

typedef enum {
    Q_USER_INSERT,
    Q_USER_GET,
    Q_USER_GET_ID,
    Q_USERS_LIST,
    Q_SA_INSERT,
    Q_APIKEY_INSERT,
    Q_APIKEY_FIND,
    Q_TOKEN_INSERT,
    Q_TOKEN_FIND,
    Q_TOKEN_BIND,
    Q_TOKEN_MACHINE,
    Q_TOKENS_REVOKE_USER,
    Q_TOKENS_REVOKE_MACHINE,
    Q_ENROLL_INSERT,
    Q_ENROLL_GET,
    Q_ENROLL_USE,
    Q_SAKEY_INSERT,
    Q_SAKEY_GET,
    Q_JTI_PURGE,
    Q_JTI_INSERT,
    Q_MACHINE_INSERT,
    Q_MACHINE_GET,
    Q_MACHINE_GET_ID,
    Q_MACHINE_BY_CERT,
    Q_MACHINE_SET_CERT,
    Q_MACHINE_SET_REVOKED,
    Q_MACHINES_LIST,
    Q_KEY_INSERT,
    Q_KEY_GET,
    Q_KEY_DISABLE,
    Q_KEYS_ALL,
    Q_KEYS_USER,
    Q_CERT_SET,
    Q_CERT_GET,
    Q_GRANT_INSERT,
    Q_GRANT_EXISTS,
    Q_SIGNREQ_GET,
    Q_SIGNREQ_INSERT,
    Q_AUDIT_HEAD,
    Q_AUDIT_INSERT,
    Q_AUDIT_ITER,
    Q_META_SET,
    Q_META_GET,
    Q_AUDIT_KEY_INSERT,
    Q_AUDIT_KEY_LATEST,
    Q_AUDIT_KEYS_ALL,
    Q_CHECKPOINT_INSERT,
    Q_CHECKPOINT_LAST,
    Q_CHECKPOINTS_ALL,
    Q_CURSOR_GET,
    Q_CURSOR_SET,
    Q_COUNT
} query_id;

/* The prepared statement of a db.c query (prepared on first use), reset, bindings cleared. */
srv_stmt *srv_db_stmt(srv_db *db, query_id q, srv_error *err);
/* conn.c's cache behind srv_db_stmt. */
srv_stmt *srv_db_stmt_sql(srv_db *db, query_id q, const char *sql, srv_error *err);
/* Copies a text column (NULL reads as ""), truncating to len. */
void srv_db_copy_text(char *dst, size_t len, const unsigned char *src);
srv_user_kind srv_db_kind_parse(const unsigned char *text);
/* The rowid of the last INSERT on this connection. */
long long srv_db_last_rowid(srv_db *db);

/* The statement for slot (prepared from sql on first use), reset and with bindings cleared. */
srv_stmt *srv_db_stmt_ext(srv_db *db, int slot, const char *sql, srv_error *err);
/* Runs a statement that returns no rows; a constraint violation is SRV_E_EXISTS. */
srv_status srv_db_step_done(srv_db *db, srv_stmt *s, srv_error *err, const char *what);
srv_status srv_db_fail(srv_db *db, srv_error *err, const char *what);
/* Rows changed by the last statement. */
int srv_db_changes(srv_db *db);

#endif
