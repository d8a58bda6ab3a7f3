/* Storage of the time-stamping authority (tsa/tsa.h): its keys with their certificates, and
 * one row per token issued, whose row id is the token's serial number. */
#ifndef SRV_TSA_DB_H
#define SRV_TSA_DB_H

#include "db.h"

typedef struct {
    int64_t id;
    uint8_t ckaid[SRV_CKAID_LEN];
    srv_key_type type;
    uint8_t *spki; /* owned; srv_tsa_key_row_clear frees both */
    size_t spki_len;
    uint8_t *cert_der; /* the TSA certificate */
    size_t cert_der_len;
} srv_tsa_key_row;
void srv_tsa_key_row_clear(srv_tsa_key_row *row);

/* Sets row->id. */
srv_status srv_db_tsa_key_insert(srv_db *db, srv_tsa_key_row *row, srv_error *err);
/* The newest TSA key; SRV_E_NOT_FOUND if there is none. */
srv_status srv_db_tsa_key_latest(srv_db *db, srv_tsa_key_row *out, srv_error *err);

/* One token about to be issued. */
typedef struct {
    int64_t key_id;
    int64_t gen_time_ms;
    const char *hash_alg; /* "sha256", ... */
    const uint8_t *imprint;
    size_t imprint_len;
    const char *purpose; /* "request" or "checkpoint" */
    const char *actor;
} srv_tsa_token_row;

/* Stores the token's row; *serial receives its serial number (never handed out twice, not
 * even after rows are deleted: SQLite AUTOINCREMENT, a PostgreSQL identity). */
srv_status srv_db_tsa_token_insert(srv_db *db, const srv_tsa_token_row *row, int64_t *serial,
                                   srv_error *err);
/* The latest genTime of any token issued (0 if none), for the clock check. */
srv_status srv_db_tsa_last_time(srv_db *db, int64_t *gen_time_ms, srv_error *err);

#endif
