/* SQLite queries of the policy engine; see policy_db.h. */
#include "policy_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

enum {
    S_POLICY_GET,
    S_POLICY_INSERT,
    S_POLICY_UPDATE,
    S_POLICY_DELETE,
    S_POLICY_HISTORY,
    S_POLICY_LAST_VERSION,
    S_POLICIES_LIST,
    S_GROUP_INSERT,
    S_GROUP_UPDATE,
    S_GROUP_UPSERT,
    S_GROUP_DELETE,
    S_GROUPS_LIST,
    S_USAGE_ADD,
    S_USAGE_KEY,
    S_USAGE_USER,
    S_USAGE_BOTH,
    S_USAGE_PURGE,
    S_APPROVAL_INSERT,
    S_APPROVAL_GET,
    S_APPROVAL_STATUS,
    S_APPROVALS_PENDING,
    S_VOTE_INSERT,
    S_VOTES_LIST,
    S_POLICY_VERSIONS,
    S_APPROVALS_OF_USER,
    S_COUNT
};
_Static_assert(S_COUNT <= SRV_DB_SLOT_IDENTITY, "policy queries overlap identity_db.c's slots");

static const char *const sql[S_COUNT] = {
    [S_POLICY_GET] = "SELECT document, version FROM policies WHERE name = ?1",
    [S_POLICY_INSERT] = "INSERT INTO policies(name, version, document, updated_at)"
                        " VALUES(?1, ?2, ?3, ?4)",
    [S_POLICY_UPDATE] = "UPDATE policies SET version = ?2, document = ?3, updated_at = ?4"
                        " WHERE name = ?1",
    [S_POLICY_DELETE] = "DELETE FROM policies WHERE name = ?1",
    [S_POLICY_HISTORY] = "INSERT INTO policy_versions(name, version, document, changed_at)"
                         " VALUES(?1, ?2, ?3, ?4)",
    [S_POLICY_LAST_VERSION] = "SELECT max(version) FROM policy_versions WHERE name = ?1",
    [S_POLICIES_LIST] = "SELECT name, version, document, updated_at FROM policies ORDER BY name",
    [S_POLICY_VERSIONS] = "SELECT version, document, changed_at FROM policy_versions"
                          " WHERE name = ?1 ORDER BY version DESC LIMIT ?2",
    [S_GROUP_INSERT] = "INSERT INTO policy_groups(kind, name, members, updated_at)"
                       " VALUES(?1, ?2, ?3, ?4)",
    [S_GROUP_UPDATE] = "UPDATE policy_groups SET members = ?3, updated_at = ?4"
                       " WHERE kind = ?1 AND name = ?2",
    [S_GROUP_UPSERT] = "INSERT INTO policy_groups(kind, name, members, updated_at)"
                       " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(kind, name) DO UPDATE SET"
                       " members = excluded.members, updated_at = excluded.updated_at",
    [S_GROUP_DELETE] = "DELETE FROM policy_groups WHERE kind = ?1 AND name = ?2",
    [S_GROUPS_LIST] = "SELECT name, members, updated_at FROM policy_groups WHERE kind = ?1"
                      " ORDER BY name",
    [S_USAGE_ADD] = "INSERT INTO sign_usage(time, user_id, key_id, count) VALUES(?1, ?2, ?3, ?4)",
    [S_USAGE_KEY] = "SELECT coalesce(sum(count), 0) FROM sign_usage WHERE key_id = ?2"
                    " AND time > ?3",
    [S_USAGE_USER] = "SELECT coalesce(sum(count), 0) FROM sign_usage WHERE user_id = ?1"
                     " AND time > ?3",
    [S_USAGE_BOTH] = "SELECT coalesce(sum(count), 0) FROM sign_usage WHERE key_id = ?2"
                     " AND user_id = ?1 AND time > ?3",
    [S_USAGE_PURGE] = "DELETE FROM sign_usage WHERE time < ?1",
    [S_APPROVAL_INSERT] = "INSERT INTO approval_requests(id, user_id, key_id, rule, request,"
                          " required, approvers, status, created_at, expires_at, machine)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10)",
    [S_APPROVAL_GET] = "SELECT id, user_id, key_id, rule, request, required, approvers, status,"
                       " created_at, expires_at, decided_at, response, machine"
                       " FROM approval_requests WHERE id = ?1",
    [S_APPROVALS_OF_USER] = "SELECT id, user_id, key_id, rule, request, required, approvers,"
                            " status, created_at, expires_at, decided_at, response, machine"
                            " FROM approval_requests WHERE user_id = ?1"
                            " ORDER BY created_at DESC, id LIMIT ?2",
    [S_APPROVAL_STATUS] = "UPDATE approval_requests SET status = ?2, response = ?3,"
                          " decided_at = ?4 WHERE id = ?1",
    [S_APPROVALS_PENDING] = "SELECT id, user_id, key_id, rule, request, required, approvers,"
                            " status, created_at, expires_at, decided_at, response, machine"
                            " FROM approval_requests WHERE status = 'pending' AND expires_at > ?1"
                            " ORDER BY created_at, id",
    [S_VOTE_INSERT] = "INSERT INTO approval_votes(request_id, approver, decision, time, reason)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_VOTES_LIST] = "SELECT approver, decision, time FROM approval_votes WHERE request_id = ?1"
                     " ORDER BY time, approver",
};

static srv_stmt *st_get(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, q, sql[q], err);
}

static char *dup_col(srv_stmt *s, int col)
{
    const unsigned char *t = srv_col_text(s, col);
    return t ? strdup((const char *)t) : NULL;
}

/* ---- rules -------------------------------------------------------------------------------- */

static srv_status history(srv_db *db, const char *name, int64_t version, const char *doc,
                          srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICY_HISTORY, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, version);
    if (doc)
        srv_bind_text(s, 3, doc, -1);
    srv_bind_int64(s, 4, srv_now());
    return srv_db_step_done(db, s, err, "policy history");
}

/* Versions keep counting across a delete and re-create, so a version names one text. */
static srv_status last_version(srv_db *db, const char *name, int64_t *out, srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICY_LAST_VERSION, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    rc = srv_step(s);
    *out = rc == SRV_DB_ROW ? srv_col_int64(s, 0) : 0;
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, "policy version");
}

srv_status srv_db_policy_put(srv_db *db, const char *name, const char *doc, srv_put_mode mode,
                             int64_t *version, srv_error *err)
{
    char *old = NULL;
    int64_t cur = 0, last = 0;
    srv_status st = srv_db_policy_get(db, name, &old, &cur, err);
    srv_stmt *s;
    int exists = st == SRV_OK;

    free(old);
    if (st != SRV_OK && st != SRV_E_NOT_FOUND)
        return st;
    if (exists && mode == SRV_PUT_CREATE)
        return srv_fail(err, SRV_E_EXISTS, "a policy named \"%s\" exists", name);
    if (!exists && mode == SRV_PUT_UPDATE)
        return srv_fail(err, SRV_E_NOT_FOUND, "no policy named \"%s\"", name);
    if ((st = last_version(db, name, &last, err)) != SRV_OK)
        return st;
    s = st_get(db, exists ? S_POLICY_UPDATE : S_POLICY_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, last + 1);
    srv_bind_text(s, 3, doc, -1);
    srv_bind_int64(s, 4, srv_now());
    if ((st = srv_db_step_done(db, s, err, "policy")) != SRV_OK ||
        (st = history(db, name, last + 1, doc, err)) != SRV_OK)
        return st;
    if (version)
        *version = last + 1;
    return SRV_OK;
}

srv_status srv_db_policy_get(srv_db *db, const char *name, char **doc, int64_t *version,
                             srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICY_GET, err);
    srv_status st = SRV_OK;
    int rc;
    *doc = NULL;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        if (!(*doc = dup_col(s, 0)))
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        if (version)
            *version = srv_col_int64(s, 1);
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no policy named \"%s\"", name);
    } else {
        st = srv_db_fail(db, err, "policy lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_policy_delete(srv_db *db, const char *name, srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICY_DELETE, err);
    int64_t last = 0;
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    if ((st = srv_db_step_done(db, s, err, "policy delete")) != SRV_OK)
        return st;
    if (srv_db_changes(db) == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no policy named \"%s\"", name);
    if ((st = last_version(db, name, &last, err)) != SRV_OK)
        return st;
    return history(db, name, last + 1, NULL, err); /* a NULL document marks the deletion */
}

srv_status srv_db_policies_list(srv_db *db, srv_policy_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICIES_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        const unsigned char *name = srv_col_text(s, 0), *doc = srv_col_text(s, 2);
        cb(name ? (const char *)name : "", srv_col_int64(s, 1), doc ? (const char *)doc : "{}",
           srv_col_int64(s, 3), ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "policies list");
}

/* ---- groups ------------------------------------------------------------------------------- */

srv_status srv_db_group_put(srv_db *db, const char *kind, const char *name, const char *members,
                            srv_put_mode mode, srv_error *err)
{
    int q = mode == SRV_PUT_CREATE   ? S_GROUP_INSERT
            : mode == SRV_PUT_UPDATE ? S_GROUP_UPDATE
                                     : S_GROUP_UPSERT;
    srv_stmt *s = st_get(db, q, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, kind, -1);
    srv_bind_text(s, 2, name, -1);
    srv_bind_text(s, 3, members, -1);
    srv_bind_int64(s, 4, srv_now());
    st = srv_db_step_done(db, s, err, "group");
    if (st == SRV_E_EXISTS)
        return srv_fail(err, SRV_E_EXISTS, "a %s group named \"%s\" exists", kind, name);
    if (st == SRV_OK && mode == SRV_PUT_UPDATE && srv_db_changes(db) == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no %s group named \"%s\"", kind, name);
    return st;
}

srv_status srv_db_group_delete(srv_db *db, const char *kind, const char *name, srv_error *err)
{
    srv_stmt *s = st_get(db, S_GROUP_DELETE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, kind, -1);
    srv_bind_text(s, 2, name, -1);
    st = srv_db_step_done(db, s, err, "group delete");
    if (st == SRV_OK && srv_db_changes(db) == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no %s group named \"%s\"", kind, name);
    return st;
}

srv_status srv_db_groups_list(srv_db *db, const char *kind, srv_group_cb cb, void *ctx,
                              srv_error *err)
{
    srv_stmt *s = st_get(db, S_GROUPS_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, kind, -1);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        const unsigned char *name = srv_col_text(s, 0), *m = srv_col_text(s, 1);
        cb(name ? (const char *)name : "", m ? (const char *)m : "[]", srv_col_int64(s, 2), ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "groups list");
}

/* ---- usage -------------------------------------------------------------------------------- */

srv_status srv_db_usage_add(srv_db *db, int64_t user_id, int64_t key_id, int64_t time,
                            long long count, srv_error *err)
{
    srv_stmt *s = st_get(db, S_USAGE_ADD, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, time);
    srv_bind_int64(s, 2, user_id);
    srv_bind_int64(s, 3, key_id);
    srv_bind_int64(s, 4, count);
    return srv_db_step_done(db, s, err, "usage");
}

srv_status srv_db_usage_count(srv_db *db, int64_t user_id, int64_t key_id, int64_t since,
                              long long *out, srv_error *err)
{
    int q = user_id && key_id ? S_USAGE_BOTH : user_id ? S_USAGE_USER : S_USAGE_KEY;
    srv_stmt *s = st_get(db, q, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_int64(s, 2, key_id);
    srv_bind_int64(s, 3, since);
    rc = srv_step(s);
    *out = rc == SRV_DB_ROW ? srv_col_int64(s, 0) : 0;
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, "usage count");
}

srv_status srv_db_usage_purge(srv_db *db, int64_t before, srv_error *err)
{
    srv_stmt *s = st_get(db, S_USAGE_PURGE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, before);
    return srv_db_step_done(db, s, err, "usage purge");
}

/* ---- approvals ---------------------------------------------------------------------------- */

void srv_approval_clear(srv_approval *a)
{
    free(a->request);
    free(a->approvers);
    free(a->response);
    memset(a, 0, sizeof(*a));
}

srv_status srv_db_approval_insert(srv_db *db, const srv_approval *a, srv_error *err)
{
    srv_stmt *s = st_get(db, S_APPROVAL_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, a->id, -1);
    srv_bind_int64(s, 2, a->user_id);
    srv_bind_int64(s, 3, a->key_id);
    srv_bind_text(s, 4, a->rule, -1);
    srv_bind_text(s, 5, a->request, -1);
    srv_bind_int64(s, 6, a->required);
    srv_bind_text(s, 7, a->approvers, -1);
    srv_bind_int64(s, 8, a->created_at);
    srv_bind_int64(s, 9, a->expires_at);
    if (a->machine[0])
        srv_bind_text(s, 10, a->machine, -1);
    else
        srv_bind_null(s, 10);
    return srv_db_step_done(db, s, err, "approval request");
}

static srv_status approval_row(srv_stmt *s, srv_approval *a, srv_error *err)
{
    const unsigned char *t;
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", (t = srv_col_text(s, 0)) ? (const char *)t : "");
    a->user_id = srv_col_int64(s, 1);
    a->key_id = srv_col_int64(s, 2);
    snprintf(a->rule, sizeof(a->rule), "%s", (t = srv_col_text(s, 3)) ? (const char *)t : "");
    a->request = dup_col(s, 4);
    a->required = srv_col_int64(s, 5);
    a->approvers = dup_col(s, 6);
    snprintf(a->status, sizeof(a->status), "%s", (t = srv_col_text(s, 7)) ? (const char *)t : "");
    a->created_at = srv_col_int64(s, 8);
    a->expires_at = srv_col_int64(s, 9);
    a->decided_at = srv_col_int64(s, 10);
    a->response = dup_col(s, 11);
    snprintf(a->machine, sizeof(a->machine), "%s",
             (t = srv_col_text(s, 12)) ? (const char *)t : "");
    if (!a->request || !a->approvers) {
        srv_approval_clear(a);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    return SRV_OK;
}

srv_status srv_db_approval_get(srv_db *db, const char *id, srv_approval *out, srv_error *err)
{
    srv_stmt *s = st_get(db, S_APPROVAL_GET, err);
    srv_status st;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        st = approval_row(s, out, err);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no approval request \"%s\"", id);
    else
        st = srv_db_fail(db, err, "approval lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_approval_set_status(srv_db *db, const char *id, const char *status,
                                      const char *response, int64_t now, srv_error *err)
{
    srv_stmt *s = st_get(db, S_APPROVAL_STATUS, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_text(s, 2, status, -1);
    if (response)
        srv_bind_text(s, 3, response, -1);
    srv_bind_int64(s, 4, now);
    return srv_db_step_done(db, s, err, "approval status");
}

/* Calls cb for every row of a bound approvals statement. */
static srv_status approvals_each(srv_db *db, srv_stmt *s, srv_approval_cb cb, void *ctx,
                                 srv_error *err)
{
    srv_status st = SRV_OK;
    int rc;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_approval a;
        if ((st = approval_row(s, &a, err)) != SRV_OK)
            break;
        cb(&a, ctx);
        srv_approval_clear(&a);
    }
    srv_reset(s);
    if (st != SRV_OK)
        return st;
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "approvals list");
}

srv_status srv_db_approvals_pending(srv_db *db, int64_t now, srv_approval_cb cb, void *ctx,
                                    srv_error *err)
{
    srv_stmt *s = st_get(db, S_APPROVALS_PENDING, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now);
    return approvals_each(db, s, cb, ctx, err);
}

srv_status srv_db_vote_insert(srv_db *db, const char *id, const char *approver,
                              const char *decision, const char *reason, int64_t now, srv_error *err)
{
    srv_stmt *s = st_get(db, S_VOTE_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_text(s, 2, approver, -1);
    srv_bind_text(s, 3, decision, -1);
    srv_bind_int64(s, 4, now);
    if (reason)
        srv_bind_text(s, 5, reason, -1);
    else
        srv_bind_null(s, 5);
    return srv_db_step_done(db, s, err, "approval vote");
}

srv_status srv_db_votes_list(srv_db *db, const char *id, srv_vote_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = st_get(db, S_VOTES_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        const unsigned char *who = srv_col_text(s, 0), *dec = srv_col_text(s, 1);
        cb(who ? (const char *)who : "", dec ? (const char *)dec : "", srv_col_int64(s, 2), ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "votes list");
}

srv_status srv_db_policy_versions(srv_db *db, const char *name, long limit, srv_policy_cb cb,
                                  void *ctx, srv_error *err)
{
    srv_stmt *s = st_get(db, S_POLICY_VERSIONS, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, limit);
    while ((rc = srv_step(s)) == SRV_DB_ROW)
        cb(name, srv_col_int64(s, 0), (const char *)srv_col_text(s, 1), srv_col_int64(s, 2), ctx);
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "policy versions");
}

srv_status srv_db_approvals_of_user(srv_db *db, int64_t user_id, long limit, srv_approval_cb cb,
                                    void *ctx, srv_error *err)
{
    srv_stmt *s = st_get(db, S_APPROVALS_OF_USER, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_int64(s, 2, limit);
    return approvals_each(db, s, cb, ctx, err);
}
