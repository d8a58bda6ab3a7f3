/* The audit log in SQLite: rows, the HSM audit keys, signed checkpoints and the exporters' cursors
 * (db.h); the hash chain itself is audit/audit.c's. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

/* ---- audit rows --------------------------------------------------------------------------- */

srv_status srv_db_audit_head(srv_db *db, int64_t *seq, char hash_hex[65], srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_HEAD, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        srv_db_copy_text(hash_hex, 65, sqlite3_column_text(s, 1));
    } else if (rc == SQLITE_DONE) {
        *seq = 0;
        memset(hash_hex, '0', 64);
        hash_hex[64] = '\0';
    } else {
        st = srv_db_fail(db, err, "audit head");
    }
    sqlite3_reset(s);
    return st;
}

srv_status srv_db_audit_insert(srv_db *db, const srv_audit_row *row, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_int64(s, 1, row->seq);
    sqlite3_bind_text(s, 2, row->time, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, row->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, row->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, row->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, row->record, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, row->hash, -1, SQLITE_STATIC);
    return srv_db_step_done(db, s, err, "audit record");
}

srv_status srv_db_audit_iterate(srv_db *db, int64_t after_seq, srv_audit_cb cb, void *ctx,
                                srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_ITER, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_int64(s, 1, after_seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        srv_audit_row row;
        memset(&row, 0, sizeof(row));
        row.seq = sqlite3_column_int64(s, 0);
        srv_db_copy_text(row.time, sizeof(row.time), sqlite3_column_text(s, 1));
        srv_db_copy_text(row.actor, sizeof(row.actor), sqlite3_column_text(s, 2));
        srv_db_copy_text(row.action, sizeof(row.action), sqlite3_column_text(s, 3));
        srv_db_copy_text(row.outcome, sizeof(row.outcome), sqlite3_column_text(s, 4));
        row.record = (const char *)sqlite3_column_text(s, 5);
        row.hash = (const char *)sqlite3_column_text(s, 6);
        if (!row.record)
            row.record = "";
        if (!row.hash)
            row.hash = "";
        if (cb(&row, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SRV_OK : srv_db_fail(db, err, "audit read");
}

/* ---- audit keys, checkpoints, export cursors ----------------------------------------------- */

srv_status srv_db_audit_key_insert(srv_db *db, srv_audit_key_row *key, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_KEY_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_blob(s, 1, key->ckaid, SRV_CKAID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, srv_key_type_name(key->type), -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, key->spki, (int)key->spki_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, srv_now());
    st = srv_db_step_done(db, s, err, "audit key");
    if (st == SRV_OK)
        key->id = srv_db_last_rowid(db);
    return st;
}

static srv_status audit_key_from_row(sqlite3_stmt *s, srv_audit_key_row *out, srv_error *err)
{
    int n = sqlite3_column_bytes(s, 3);
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(s, 0);
    if (sqlite3_column_bytes(s, 1) != SRV_CKAID_LEN || n <= 0 ||
        !srv_key_type_parse((const char *)sqlite3_column_text(s, 2), &out->type))
        return srv_fail(err, SRV_E_DATABASE, "audit key row %lld is malformed", (long long)out->id);
    memcpy(out->ckaid, sqlite3_column_blob(s, 1), SRV_CKAID_LEN);
    if (!(out->spki = malloc((size_t)n)))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    memcpy(out->spki, sqlite3_column_blob(s, 3), (size_t)n);
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
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_KEY_LATEST, err);
    srv_status st;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = audit_key_from_row(s, out, err);
    else if (rc == SQLITE_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no audit key");
    else
        st = srv_db_fail(db, err, "audit key lookup");
    sqlite3_reset(s);
    return st;
}

srv_status srv_db_audit_keys_list(srv_db *db, srv_audit_key_cb cb, void *ctx, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_AUDIT_KEYS_ALL, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        srv_audit_key_row k;
        st = audit_key_from_row(s, &k, err);
        if (st == SRV_OK)
            cb(&k, ctx);
        srv_audit_key_row_clear(&k);
        if (st != SRV_OK)
            break;
    }
    if (st == SRV_OK && rc != SQLITE_DONE)
        st = srv_db_fail(db, err, "audit keys list");
    sqlite3_reset(s);
    return st;
}

srv_status srv_db_checkpoint_insert(srv_db *db, const srv_checkpoint_row *cp, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_CHECKPOINT_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_int64(s, 1, cp->seq);
    sqlite3_bind_int64(s, 2, cp->key_id);
    sqlite3_bind_text(s, 3, cp->payload, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, cp->signature, (int)cp->signature_len, SQLITE_STATIC);
    return srv_db_step_done(db, s, err, "audit checkpoint");
}

static void checkpoint_from_row(sqlite3_stmt *s, srv_checkpoint_row *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = sqlite3_column_int64(s, 0);
    out->key_id = sqlite3_column_int64(s, 1);
    out->payload = (const char *)sqlite3_column_text(s, 2);
    out->signature = sqlite3_column_blob(s, 3);
    out->signature_len = (size_t)sqlite3_column_bytes(s, 3);
    if (!out->payload)
        out->payload = "";
}

srv_status srv_db_checkpoints_iterate(srv_db *db, int last_only, srv_checkpoint_cb cb, void *ctx,
                                      srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, last_only ? Q_CHECKPOINT_LAST : Q_CHECKPOINTS_ALL, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        srv_checkpoint_row cp;
        checkpoint_from_row(s, &cp);
        if (cb(&cp, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SRV_OK : srv_db_fail(db, err, "audit checkpoints read");
}

srv_status srv_db_cursor_get(srv_db *db, const char *sink, int64_t *seq, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_CURSOR_GET, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SRV_OK : srv_db_fail(db, err, "export cursor");
}

srv_status srv_db_cursor_set(srv_db *db, const char *sink, int64_t seq, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_CURSOR_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_text(s, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_int64(s, 3, srv_now());
    return srv_db_step_done(db, s, err, "export cursor");
}
