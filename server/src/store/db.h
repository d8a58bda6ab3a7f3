/* Storage: one SQLite connection per thread (WAL), versioned migrations, and the typed
 * queries the server needs. Writes happen only on the writer thread (audit/writer.h). */
#ifndef SRV_DB_H
#define SRV_DB_H

#include <stddef.h>
#include <stdint.h>

#include "../common/key_types.h"
#include "../common/status.h"

#define SRV_NAME_MAX       64
#define SRV_CKAID_LEN      16
#define SRV_REQUEST_ID_MAX 128

typedef struct srv_db srv_db;

typedef enum { SRV_ROLE_ADMIN, SRV_ROLE_SIGNER } srv_role;

/* Users and service accounts share one namespace; a service account is always a signer. */
typedef enum { SRV_KIND_USER, SRV_KIND_SERVICE } srv_user_kind;

typedef struct {
    int64_t id;
    char name[SRV_NAME_MAX + 1];
    srv_role role;
    srv_user_kind kind;
    int disabled;
} srv_user;

/* An enrolled (or still enrolling) machine and its current client certificate. */
typedef struct {
    int64_t id;
    char name[SRV_NAME_MAX + 1];
    int revoked;
    int enrolled; /* has a certificate; the cert_* fields are set */
    uint8_t cert_sha256[32];
    char cert_serial[72];
    int64_t cert_not_after;
    int64_t enrolled_at;
    int64_t created_at;
} srv_machine;

/* A one-time enrollment token: for a service account (user_id) or a machine (machine_id). */
typedef struct {
    int64_t user_id;    /* 0 if for a machine */
    int64_t machine_id; /* 0 if for a service account */
    int64_t expires_at;
    int64_t used_at; /* 0 while unused */
} srv_enroll_token;

typedef struct {
    int64_t id;
    char name[SRV_NAME_MAX + 1];
    uint8_t ckaid[SRV_CKAID_LEN];
    srv_key_type type;
    uint8_t *spki; /* owned; srv_key_clear frees it */
    size_t spki_len;
    int disabled;
    int is_ca;
    int64_t created_at;
    int64_t project_id;             /* 0: in no project */
    char project[SRV_NAME_MAX + 1]; /* its name, "" if none */
} srv_key;

/* A stored certificate: the leaf DER and the rest of its chain as PEM (may be empty). */
typedef struct {
    uint8_t *der;
    size_t der_len;
    char *chain_pem;
    int64_t not_after;
} srv_cert_record;

typedef struct {
    int64_t user_id;
    uint8_t fingerprint[32];
    char *response;
    int64_t created_at;
} srv_sign_request;

/* SRV_DB_SCHEMA_VERSION is the version migrations bring a database to. */
#define SRV_DB_SCHEMA_VERSION 16

/* Opens a connection to `database`: a SQLite file's path, or a PostgreSQL connection URL
 * (postgresql://user@host/db?...). The writer runs migrations; on SQLite it also uses
 * synchronous=FULL. */
srv_status srv_db_open(const char *database, int writer, srv_db **out, srv_error *err);
/* Whether other server nodes may write the same database (PostgreSQL): then what a node
 * remembers of it (the audit chain's head) is read again inside each write transaction. */
int srv_db_shared(const srv_db *db);
void srv_db_close(srv_db *db);
int srv_db_schema_version(srv_db *db);

srv_status srv_db_exec(srv_db *db, const char *sql, srv_error *err);

/* Transaction control on the hot paths, from statements prepared once per connection (no SQL
 * parse per request, unlike srv_db_exec). */
typedef enum {
    SRV_TX_BEGIN,
    SRV_TX_BEGIN_IMMEDIATE,
    SRV_TX_COMMIT,
    SRV_TX_ROLLBACK,
    SRV_TX_SAVEPOINT_JOB,
    SRV_TX_RELEASE_JOB,
    SRV_TX_ROLLBACK_TO_JOB,
    SRV_TX_SAVEPOINT_CHECKPOINT,
    SRV_TX_RELEASE_CHECKPOINT,
    SRV_TX_ROLLBACK_TO_CHECKPOINT,
    SRV_TX_COUNT
} srv_tx_op;
srv_status srv_db_tx(srv_db *db, srv_tx_op op, srv_error *err);
/* Whether a transaction is open on db (SQLite is not in autocommit mode). After some errors
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, an interrupt) SQLite rolls the whole transaction
 * back by itself; this is how the caller finds out. */
int srv_db_in_transaction(srv_db *db);

/* One read transaction around a request's lookups on a read connection: one snapshot, one
 * round of locks and one page-cache check instead of one per statement. Begin ends any
 * transaction still open first; end is idempotent and never leaves one open. */
void srv_db_read_begin(srv_db *db);
void srv_db_read_end(srv_db *db);
srv_status srv_db_ping(srv_db *db, srv_error *err);

void srv_key_clear(srv_key *key);
void srv_cert_record_clear(srv_cert_record *cert);
void srv_sign_request_clear(srv_sign_request *req);

const char *srv_role_name(srv_role role);
int srv_role_parse(const char *name, srv_role *out);
const char *srv_user_kind_name(srv_user_kind kind);

/* Users and credentials. */
srv_status srv_db_user_insert(srv_db *db, const char *name, srv_role role, int64_t *id,
                              srv_error *err);
srv_status srv_db_user_get(srv_db *db, const char *name, srv_user *out, srv_error *err);
srv_status srv_db_user_get_by_id(srv_db *db, int64_t id, srv_user *out, srv_error *err);
typedef void (*srv_user_cb)(const srv_user *user, int64_t created_at, void *ctx);
srv_status srv_db_users_list(srv_db *db, srv_user_cb cb, void *ctx, srv_error *err);
/* A service account: kind service, role signer. */
srv_status srv_db_service_account_insert(srv_db *db, const char *name, int64_t *id, srv_error *err);

srv_status srv_db_apikey_insert(srv_db *db, int64_t user_id, const char *prefix,
                                const uint8_t hash[32], srv_error *err);
/* Finds an unrevoked API key by its public prefix. */
srv_status srv_db_apikey_find(srv_db *db, const char *prefix, int64_t *user_id, uint8_t hash[32],
                              srv_error *err);

srv_status srv_db_token_insert(srv_db *db, const uint8_t hash[32], int64_t user_id,
                               int64_t expires_at, srv_error *err);
/* Finds an unrevoked access token (SRV_E_TOKEN_INVALID if unknown or revoked). */
srv_status srv_db_token_find(srv_db *db, const uint8_t hash[32], int64_t *user_id,
                             int64_t *expires_at, srv_error *err);
/* Binds a token to the machine whose client certificate it was issued over. */
srv_status srv_db_token_bind(srv_db *db, const uint8_t hash[32], int64_t machine_id,
                             srv_error *err);
/* The machine a token is bound to, 0 if none. */
srv_status srv_db_token_machine(srv_db *db, const uint8_t hash[32], int64_t *machine_id,
                                srv_error *err);
/* Revokes the unexpired tokens of a user (machine_id 0) or bound to a machine (user_id 0);
 * *count receives how many. */
srv_status srv_db_tokens_revoke(srv_db *db, int64_t user_id, int64_t machine_id, int64_t *count,
                                srv_error *err);

/* Enrollment tokens (stored as the SHA-256 of their text). */
srv_status srv_db_enroll_token_insert(srv_db *db, const uint8_t hash[32],
                                      const srv_enroll_token *tok, srv_error *err);
/* SRV_E_NOT_FOUND if unknown. */
srv_status srv_db_enroll_token_get(srv_db *db, const uint8_t hash[32], srv_enroll_token *out,
                                   srv_error *err);
/* Marks an unused, unexpired token used at `now`; SRV_E_BAD_CREDENTIALS if it no longer is. */
srv_status srv_db_enroll_token_use(srv_db *db, const uint8_t hash[32], int64_t now, srv_error *err);

/* Service-account public keys, named by kid (hex). SRV_E_EXISTS if the kid is enrolled. */
srv_status srv_db_sa_key_insert(srv_db *db, const char *kid, int64_t user_id, const uint8_t *spki,
                                size_t spki_len, srv_error *err);
/* SRV_E_NOT_FOUND if the account has no such key; *spki is malloc'd. */
srv_status srv_db_sa_key_get(srv_db *db, int64_t user_id, const char *kid, uint8_t **spki,
                             size_t *spki_len, srv_error *err);
/* Remembers an assertion's jti until expires_at, after dropping every expired one;
 * SRV_E_EXISTS if the account used that jti before and it has not expired. */
srv_status srv_db_jti_use(srv_db *db, int64_t user_id, const char *jti, int64_t expires_at,
                          int64_t now, srv_error *err);

/* Machines. */
srv_status srv_db_machine_insert(srv_db *db, const char *name, int64_t *id, srv_error *err);
/* SRV_E_NOT_FOUND if unknown. */
srv_status srv_db_machine_get(srv_db *db, const char *name, srv_machine *out, srv_error *err);
srv_status srv_db_machine_get_by_id(srv_db *db, int64_t id, srv_machine *out, srv_error *err);
/* The machine whose current certificate has this SHA-256; SRV_E_NOT_FOUND if none. */
srv_status srv_db_machine_by_cert(srv_db *db, const uint8_t sha256[32], srv_machine *out,
                                  srv_error *err);
/* Records a newly issued certificate; it replaces the machine's previous one. */
srv_status srv_db_machine_set_cert(srv_db *db, int64_t id, const uint8_t sha256[32],
                                   const char *serial, int64_t not_after, srv_error *err);
/* Revokes (revoked 1) or enables again (0) a machine. */
srv_status srv_db_machine_set_revoked(srv_db *db, int64_t id, int revoked, srv_error *err);
typedef void (*srv_machine_cb)(const srv_machine *machine, void *ctx);
srv_status srv_db_machines_list(srv_db *db, srv_machine_cb cb, void *ctx, srv_error *err);

/* Keys, certificates, grants. */
srv_status srv_db_key_insert(srv_db *db, srv_key *key, srv_error *err);
srv_status srv_db_key_get(srv_db *db, const char *name, srv_key *out, srv_error *err);
srv_status srv_db_key_disable(srv_db *db, int64_t key_id, srv_error *err);
/* Lists keys: all (user_id < 0, CA keys excluded) or those granted to user_id and enabled. */
typedef void (*srv_key_cb)(const srv_key *key, void *ctx);
srv_status srv_db_keys_list(srv_db *db, int64_t user_id, srv_key_cb cb, void *ctx, srv_error *err);

srv_status srv_db_cert_set(srv_db *db, int64_t key_id, const uint8_t *der, size_t der_len,
                           const char *chain_pem, int64_t not_after, srv_error *err);
/* SRV_E_NOT_FOUND when the key has no certificate yet. */
srv_status srv_db_cert_get(srv_db *db, int64_t key_id, srv_cert_record *out, srv_error *err);

srv_status srv_db_grant_insert(srv_db *db, int64_t key_id, int64_t user_id, srv_error *err);
int srv_db_grant_exists(srv_db *db, int64_t key_id, int64_t user_id);

/* Idempotent sign requests: SRV_E_NOT_FOUND when the id was never used. */
srv_status srv_db_signreq_get(srv_db *db, int64_t user_id, const char *request_id,
                              srv_sign_request *out, srv_error *err);
/* Stores the response of a finished request (same transaction as its audit record). */
srv_status srv_db_signreq_insert(srv_db *db, int64_t user_id, const char *request_id,
                                 const uint8_t fingerprint[32], const char *response,
                                 srv_error *err);

/* Audit rows. The chain logic lives in audit.c. */
typedef struct {
    int64_t seq;
    char time[32];
    char actor[160];
    char action[64];
    char outcome[32];
    const char *record; /* valid during the callback */
    const char *hash;
} srv_audit_row;
srv_status srv_db_audit_head(srv_db *db, int64_t *seq, char hash_hex[65], srv_error *err);
srv_status srv_db_audit_insert(srv_db *db, const srv_audit_row *row, srv_error *err);
/* Calls cb for rows in seq order from after_seq on; cb returns non-zero to stop. */
typedef int (*srv_audit_cb)(const srv_audit_row *row, void *ctx);
srv_status srv_db_audit_iterate(srv_db *db, int64_t after_seq, srv_audit_cb cb, void *ctx,
                                srv_error *err);

/* The HSM audit keys that sign checkpoints (newest last; the private halves stay in the HSM). */
typedef struct {
    int64_t id;
    uint8_t ckaid[SRV_CKAID_LEN];
    srv_key_type type;
    uint8_t *spki; /* owned; srv_audit_key_row_clear frees it */
    size_t spki_len;
} srv_audit_key_row;
void srv_audit_key_row_clear(srv_audit_key_row *key);
srv_status srv_db_audit_key_insert(srv_db *db, srv_audit_key_row *key, srv_error *err);
/* SRV_E_NOT_FOUND if there is none. */
srv_status srv_db_audit_key_latest(srv_db *db, srv_audit_key_row *out, srv_error *err);
typedef void (*srv_audit_key_cb)(const srv_audit_key_row *key, void *ctx);
srv_status srv_db_audit_keys_list(srv_db *db, srv_audit_key_cb cb, void *ctx, srv_error *err);

/* A signed checkpoint over the audit chain up to record seq (pointers valid in the callback). */
typedef struct {
    int64_t seq;
    int64_t key_id;
    const char *payload;
    const uint8_t *signature;
    size_t signature_len;
    /* The RFC 3161 token over the signature (tsa/tsa.h), NULL when the checkpoint has none. */
    const uint8_t *tsa_token;
    size_t tsa_token_len;
} srv_checkpoint_row;
srv_status srv_db_checkpoint_insert(srv_db *db, const srv_checkpoint_row *cp, srv_error *err);
/* Every checkpoint in seq order, or only the last one; cb returns non-zero to stop. */
typedef int (*srv_checkpoint_cb)(const srv_checkpoint_row *cp, void *ctx);
srv_status srv_db_checkpoints_iterate(srv_db *db, int last_only, srv_checkpoint_cb cb, void *ctx,
                                      srv_error *err);

/* Exporters' cursors: the last audit seq a sink acknowledged (0 if never). */
srv_status srv_db_cursor_get(srv_db *db, const char *sink, int64_t *seq, srv_error *err);
srv_status srv_db_cursor_set(srv_db *db, const char *sink, int64_t seq, srv_error *err);

/* Small key/value settings (server instance data). */
srv_status srv_db_meta_set(srv_db *db, const char *key, const char *value, srv_error *err);
srv_status srv_db_meta_get(srv_db *db, const char *key, char *value, size_t value_len,
                           srv_error *err);

#endif
