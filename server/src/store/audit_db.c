/* The audit log in SQLite: rows, the HSM audit keys, signed checkpoints and the exporters' cursors
 * (db.h); the hash chain itself is audit/audit.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

/* ---- audit rows --------------------------------------------------------------------------- */

srv_status srv_db_audit_head(srv_db *db, int64_t *seq, char hash_hex[65], srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_HEAD, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        *seq = srv_col_int64(s, 0);
        srv_db_copy_text(hash_hex, 65, srv_col_text(s, 1));
    } else if (rc == SRV_DB_DONE) {
        *seq = 0;
        memset(hash_hex, '0', 64);
        hash_hex[64] = '\0';
    } else {
        st = srv_db_fail(db, err, "audit head");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_audit_insert(srv_db *db, const srv_audit_row *row, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, row->seq);
    srv_bind_text(s, 2, row->time, -1);
    srv_bind_text(s, 3, row->actor, -1);
    srv_bind_text(s, 4, row->action, -1);
    srv_bind_text(s, 5, row->outcome, -1);
    srv_bind_text(s, 6, row->record, -1);
    srv_bind_text(s, 7, row->hash, -1);
    return srv_db_step_done(db, s, err, "audit record");
}

srv_status srv_db_audit_iterate(srv_db *db, int64_t after_seq, srv_audit_cb cb, void *ctx,
                                srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_ITER, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, after_seq);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_audit_row row;
        memset(&row, 0, sizeof(row));
        row.seq = srv_col_int64(s, 0);
        srv_db_copy_text(row.time, sizeof(row.time), srv_col_text(s, 1));
        srv_db_copy_text(row.actor, sizeof(row.actor), srv_col_text(s, 2));
        srv_db_copy_text(row.action, sizeof(row.action), srv_col_text(s, 3));
        srv_db_copy_text(row.outcome, sizeof(row.outcome), srv_col_text(s, 4));
        row.record = (const char *)srv_col_text(s, 5);
        row.hash = (const char *)srv_col_text(s, 6);
        if (!row.record)
            row.record = "";
        if (!row.hash)
            row.hash = "";
        if (cb(&row, ctx)) {
            rc = SRV_DB_DONE;
            break;
        }
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "audit read");
}

/* ---- audit keys, checkpoints, export cursors ----------------------------------------------- */

srv_status srv_db_audit_key_insert(srv_db *db, srv_audit_key_row *key, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_KEY_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, key->ckaid, SRV_CKAID_LEN);
    srv_bind_text(s, 2, srv_key_type_name(key->type), -1);
    srv_bind_blob(s, 3, key->spki, (int)key->spki_len);
    srv_bind_int64(s, 4, srv_now());
    st = srv_db_step_done(db, s, err, "audit key");
    if (st == SRV_OK)
        key->id = srv_db_last_rowid(db);
    return st;
}

static srv_status audit_key_from_row(srv_stmt *s, srv_audit_key_row *out, srv_error *err)
{
    int n = srv_col_bytes(s, 3);
    memset(out, 0, sizeof(*out));
    out->id = srv_col_int64(s, 0);
    if (srv_col_bytes(s, 1) != SRV_CKAID_LEN || n <= 0 ||
        !srv_key_type_parse((const char *)srv_col_text(s, 2), &out->type))
        return srv_fail(err, SRV_E_DATABASE, "audit key row %lld is malformed", (long long)out->id);
    memcpy(out->ckaid, srv_col_blob(s, 1), SRV_CKAID_LEN);
    if (!(out->spki = malloc((size_t)n)))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    memcpy(out->spki, srv_col_blob(s, 3), (size_t)n);
    out->spki_len = (size_t)n;
    return SRV_OK;
}

void srv_audit_key_row_clear(srv_audit_key_row *key)
{
    free(key->spki);
    memset(key, 0, sizeof(*key));
}

srv_status srv_db_audit_key_latest(srv_db *db, srv_audit_key_row *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_KEY_LATEST, err);
    srv_status st;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        st = audit_key_from_row(s, out, err);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no audit key");
    else
        st = srv_db_fail(db, err, "audit key lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_audit_keys_list(srv_db *db, srv_audit_key_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_AUDIT_KEYS_ALL, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_audit_key_row k;
        st = audit_key_from_row(s, &k, err);
        if (st == SRV_OK)
            cb(&k, ctx);
        srv_audit_key_row_clear(&k);
        if (st != SRV_OK)
            break;
    }
    if (st == SRV_OK && rc != SRV_DB_DONE)
        st = srv_db_fail(db, err, "audit keys list");
    srv_reset(s);
    return st;
}

srv_status srv_db_checkpoint_insert(srv_db *db, const srv_checkpoint_row *cp, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_CHECKPOINT_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, cp->seq);
    srv_bind_int64(s, 2, cp->key_id);
    srv_bind_text(s, 3, cp->payload, -1);
    srv_bind_blob(s, 4, cp->signature, (int)cp->signature_len);
    if (cp->tsa_token)
        srv_bind_blob(s, 5, cp->tsa_token, (int)cp->tsa_token_len);
    else
        srv_bind_null(s, 5);
    return srv_db_step_done(db, s, err, "audit checkpoint");
}

static void checkpoint_from_row(srv_stmt *s, srv_checkpoint_row *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = srv_col_int64(s, 0);
    out->key_id = srv_col_int64(s, 1);
    out->payload = (const char *)srv_col_text(s, 2);
    out->signature = srv_col_blob(s, 3);
    out->signature_len = (size_t)srv_col_bytes(s, 3);
    out->tsa_token_len = (size_t)srv_col_bytes(s, 4);
    out->tsa_token = out->tsa_token_len ? srv_col_blob(s, 4) : NULL;
    if (!out->payload)
        out->payload = "";
}

srv_status srv_db_checkpoints_iterate(srv_db *db, int last_only, srv_checkpoint_cb cb, void *ctx,
                                      srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, last_only ? Q_CHECKPOINT_LAST : Q_CHECKPOINTS_ALL, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_checkpoint_row cp;
        checkpoint_from_row(s, &cp);
        if (cb(&cp, ctx)) {
            rc = SRV_DB_DONE;
            break;
        }
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "audit checkpoints read");
}

srv_status srv_db_cursor_get(srv_db *db, const char *sink, int64_t *seq, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_CURSOR_GET, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, sink, -1);
    rc = srv_step(s);
    *seq = rc == SRV_DB_ROW ? srv_col_int64(s, 0) : 0;
    srv_reset(s);
    return rc == SRV_DB_ROW || rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "export cursor");
}

srv_status srv_db_cursor_set(srv_db *db, const char *sink, int64_t seq, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_CURSOR_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, sink, -1);
    srv_bind_int64(s, 2, seq);
    srv_bind_int64(s, 3, srv_now());
    return srv_db_step_done(db, s, err, "export cursor");
}
