/* Queries of the time-stamping authority's keys and tokens; see tsa_db.h. */
#include "tsa_db.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

enum { S_KEY_INSERT, S_KEY_LATEST, S_TOKEN_INSERT, S_LAST_TIME, S_COUNT };
_Static_assert(SRV_DB_SLOT_TSA + S_COUNT <= SRV_DB_SLOT_ALERT, "tsa queries overflow the slots");

static const char *const sql[S_COUNT] = {
    [S_KEY_INSERT] = "INSERT INTO tsa_keys(ckaid, type, spki, cert_der, created_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5) RETURNING id",
    [S_KEY_LATEST] = "SELECT id, ckaid, type, spki, cert_der FROM tsa_keys"
                     " ORDER BY id DESC LIMIT 1",
    [S_TOKEN_INSERT] = "INSERT INTO tsa_tokens(key_id, gen_time_ms, hash_alg, imprint, purpose,"
                       " actor) VALUES(?1, ?2, ?3, ?4, ?5, ?6) RETURNING serial",
    [S_LAST_TIME] = "SELECT MAX(gen_time_ms) FROM tsa_tokens",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_TSA + q, sql[q], err);
}

void srv_tsa_key_row_clear(srv_tsa_key_row *row)
{
    free(row->spki);
    free(row->cert_der);
    memset(row, 0, sizeof(*row));
}

/* One INSERT ... RETURNING: *id receives the returned column. */
static srv_status insert_returning(srv_db *db, srv_stmt *s, int64_t *id, srv_error *err,
                                   const char *what)
{
    int rc = srv_step(s);
    srv_status st = SRV_OK;

    if (rc == SRV_DB_ROW) {
        *id = srv_col_int64(s, 0);
        if (srv_step(s) != SRV_DB_DONE)
            st = srv_db_fail(db, err, what);
    } else if (rc == SRV_DB_CONSTRAINT) {
        st = srv_fail(err, SRV_E_EXISTS, "%s exists already", what);
    } else {
        st = srv_db_fail(db, err, what);
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_tsa_key_insert(srv_db *db, srv_tsa_key_row *row, srv_error *err)
{
    srv_stmt *s = stmt(db, S_KEY_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, row->ckaid, SRV_CKAID_LEN);
    srv_bind_text(s, 2, srv_key_type_name(row->type), -1);
    srv_bind_blob(s, 3, row->spki, (int)row->spki_len);
    srv_bind_blob(s, 4, row->cert_der, (int)row->cert_der_len);
    srv_bind_int64(s, 5, srv_now());
    return insert_returning(db, s, &row->id, err, "TSA key");
}

static uint8_t *copy_blob(srv_stmt *s, int col, size_t *len)
{
    int n = srv_col_bytes(s, col);
    uint8_t *out = n > 0 ? malloc((size_t)n) : NULL;
    if (out) {
        memcpy(out, srv_col_blob(s, col), (size_t)n);
        *len = (size_t)n;
    }
    return out;
}

srv_status srv_db_tsa_key_latest(srv_db *db, srv_tsa_key_row *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_KEY_LATEST, err);
    srv_status st = SRV_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        out->id = srv_col_int64(s, 0);
        if (srv_col_bytes(s, 1) != SRV_CKAID_LEN ||
            !srv_key_type_parse((const char *)srv_col_text(s, 2), &out->type)) {
            st = srv_fail(err, SRV_E_DATABASE, "TSA key row %lld is malformed", (long long)out->id);
        } else {
            memcpy(out->ckaid, srv_col_blob(s, 1), SRV_CKAID_LEN);
            out->spki = copy_blob(s, 3, &out->spki_len);
            out->cert_der = copy_blob(s, 4, &out->cert_der_len);
            if (!out->spki || !out->cert_der)
                st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        }
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no TSA key");
    } else {
        st = srv_db_fail(db, err, "TSA key lookup");
    }
    srv_reset(s);
    if (st != SRV_OK)
        srv_tsa_key_row_clear(out);
    return st;
}

srv_status srv_db_tsa_token_insert(srv_db *db, const srv_tsa_token_row *row, int64_t *serial,
                                   srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOKEN_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, row->key_id);
    srv_bind_int64(s, 2, row->gen_time_ms);
    srv_bind_text(s, 3, row->hash_alg, -1);
    srv_bind_blob(s, 4, row->imprint, (int)row->imprint_len);
    srv_bind_text(s, 5, row->purpose, -1);
    srv_bind_text(s, 6, row->actor, -1);
    return insert_returning(db, s, serial, err, "TSA token");
}

srv_status srv_db_tsa_last_time(srv_db *db, int64_t *gen_time_ms, srv_error *err)
{
    srv_stmt *s = stmt(db, S_LAST_TIME, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    *gen_time_ms = 0;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        *gen_time_ms = srv_col_int64(s, 0);
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, "TSA clock check");
}
