/* SQLite queries of projects and their members; see project_db.h. */
#include "project_db.h"

#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

/* The groups of user ?N: the stored user groups whose member list names it. */
#define GROUPS_OF(n)                                                                               \
    "SELECT g.name FROM policy_groups g, json_each(g.members) j WHERE g.kind = 'user'"             \
    " AND j.value = ?" #n

/* A membership row that covers user ?3 (its id) / ?4 (its name, for its groups). */
#define COVERS_USER " (m.user_id = ?3 OR m.user_group IN (" GROUPS_OF(4) "))"

enum {
    S_INSERT,
    S_GET,
    S_LIST,
    S_LIST_MEMBER,
    S_KEYS_IN,
    S_DELETE_MEMBERS,
    S_DELETE,
    S_MEMBER_ADD,
    S_MEMBER_REMOVE,
    S_MEMBERS,
    S_DROP_USER,
    S_HAS_ROLE,
    S_WITH_ROLE,
    S_KEY_SET,
    S_GRANTS,
    S_GRANT_DELETE,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_PROJECT + S_COUNT <= SRV_DB_SLOT_CONSOLE,
               "project overlaps console_db.c");

#define PROJECT_COLUMNS                                                                            \
    "p.id, p.name, p.description, p.created_at,"                                                   \
    " (SELECT count(*) FROM keys k WHERE k.project_id = p.id)"

static const char *const sql[S_COUNT] = {
    [S_INSERT] = "INSERT INTO projects(name, description, created_at) VALUES(?1, ?2, ?3)",
    [S_GET] = "SELECT " PROJECT_COLUMNS " FROM projects p WHERE p.name = ?1",
    [S_LIST] = "SELECT " PROJECT_COLUMNS " FROM projects p ORDER BY p.name",
    [S_LIST_MEMBER] = "SELECT " PROJECT_COLUMNS " FROM projects p WHERE EXISTS(SELECT 1 FROM"
                      " project_members m WHERE m.project_id = p.id AND" COVERS_USER ")"
                      " ORDER BY p.name",
    [S_KEYS_IN] = "SELECT count(*) FROM keys WHERE project_id = ?1",
    [S_DELETE_MEMBERS] = "DELETE FROM project_members WHERE project_id = ?1",
    [S_DELETE] = "DELETE FROM projects WHERE id = ?1",
    [S_MEMBER_ADD] = "INSERT INTO project_members(project_id, role, user_id, user_group,"
                     " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_MEMBER_REMOVE] = "DELETE FROM project_members WHERE project_id = ?1 AND role = ?2"
                        " AND user_id IS ?3 AND user_group IS ?4",
    [S_MEMBERS] = "SELECT m.role, m.user_id, coalesce(u.name, m.user_group), u.kind,"
                  " m.created_at FROM project_members m LEFT JOIN users u ON u.id = m.user_id"
                  " WHERE m.project_id = ?1 ORDER BY m.role, m.user_group IS NOT NULL, u.kind,"
                  " coalesce(u.name, m.user_group)",
    [S_DROP_USER] = "DELETE FROM project_members WHERE user_id = ?1",
    [S_HAS_ROLE] = "SELECT 1 FROM project_members m WHERE m.project_id = ?1 AND m.role = ?2"
                   " AND" COVERS_USER " LIMIT 1",
    [S_WITH_ROLE] = "SELECT DISTINCT m.project_id FROM project_members m WHERE m.role = ?2"
                    " AND" COVERS_USER,
    [S_KEY_SET] = "UPDATE keys SET project_id = ?2 WHERE id = ?1",
    [S_GRANTS] = "SELECT u.name, u.kind, g.created_at FROM grants g JOIN users u ON u.id ="
                 " g.user_id WHERE g.key_id = ?1 ORDER BY u.name",
    [S_GRANT_DELETE] = "DELETE FROM grants WHERE key_id = ?1 AND user_id = ?2",
};

static const char *const role_names[] = {
    [SRV_PROJECT_ADMIN] = "admin",
    [SRV_PROJECT_SIGNER] = "signer",
    [SRV_PROJECT_APPROVER] = "approver",
};

const char *srv_project_role_name(srv_project_role role)
{
    return (unsigned)role < sizeof(role_names) / sizeof(role_names[0]) ? role_names[role] : "?";
}

int srv_project_role_parse(const char *name, srv_project_role *out)
{
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (name && strcmp(name, role_names[i]) == 0) {
            *out = (srv_project_role)i;
            return 1;
        }
    }
    return 0;
}

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_PROJECT + q, sql[q], err);
}

static void bind_user(srv_stmt *s, int64_t user_id, const char *user_name)
{
    srv_bind_int64(s, 3, user_id);
    srv_bind_text(s, 4, user_name, -1);
}

static void bind_member(srv_stmt *s, int64_t user_id, const char *group)
{
    if (user_id > 0)
        srv_bind_int64(s, 3, user_id);
    else
        srv_bind_null(s, 3);
    if (group)
        srv_bind_text(s, 4, group, -1);
    else
        srv_bind_null(s, 4);
}

srv_status srv_db_project_insert(srv_db *db, const char *name, const char *description, int64_t *id,
                                 srv_error *err)
{
    srv_stmt *s = stmt(db, S_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_text(s, 2, description ? description : "", -1);
    srv_bind_int64(s, 3, srv_now());
    st = srv_db_step_done(db, s, err, "project");
    if (st == SRV_E_EXISTS)
        return srv_fail(err, SRV_E_EXISTS, "a project named \"%s\" exists", name);
    if (st == SRV_OK && id)
        *id = srv_db_last_rowid(db);
    return st;
}

static void project_from_row(srv_stmt *s, srv_project *p)
{
    memset(p, 0, sizeof(*p));
    p->id = srv_col_int64(s, 0);
    srv_db_copy_text(p->name, sizeof(p->name), srv_col_text(s, 1));
    srv_db_copy_text(p->description, sizeof(p->description), srv_col_text(s, 2));
    p->created_at = srv_col_int64(s, 3);
    p->keys = srv_col_int64(s, 4);
}

srv_status srv_db_project_get(srv_db *db, const char *name, srv_project *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_GET, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        project_from_row(s, out);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_PROJECT_NOT_FOUND, "no project named \"%s\"", name);
    else
        st = srv_db_fail(db, err, "project lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_projects_list(srv_db *db, int64_t member_id, const char *member_name,
                                srv_project_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, member_id > 0 ? S_LIST_MEMBER : S_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    if (member_id > 0)
        bind_user(s, member_id, member_name);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_project p;
        project_from_row(s, &p);
        cb(&p, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "projects list");
}

srv_status srv_db_project_delete(srv_db *db, int64_t id, srv_error *err)
{
    srv_stmt *s = stmt(db, S_KEYS_IN, err);
    long long keys = -1;
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    if (srv_step(s) == SRV_DB_ROW)
        keys = srv_col_int64(s, 0);
    srv_reset(s);
    if (keys < 0)
        return srv_db_fail(db, err, "project keys");
    if (keys > 0)
        return srv_fail(err, SRV_E_PROJECT_NOT_EMPTY,
                        "the project still holds %lld key(s): move them out (or retire them) "
                        "first",
                        keys);
    if (!(s = stmt(db, S_DELETE_MEMBERS, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    if ((st = srv_db_step_done(db, s, err, "project members")) != SRV_OK)
        return st;
    if (!(s = stmt(db, S_DELETE, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    return srv_db_step_done(db, s, err, "project");
}

srv_status srv_db_project_member_add(srv_db *db, int64_t project_id, srv_project_role role,
                                     int64_t user_id, const char *group, srv_error *err)
{
    srv_stmt *s = stmt(db, S_MEMBER_ADD, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, project_id);
    srv_bind_text(s, 2, srv_project_role_name(role), -1);
    bind_member(s, user_id, group);
    srv_bind_int64(s, 5, srv_now());
    return srv_db_step_done(db, s, err, "project member");
}

srv_status srv_db_project_member_remove(srv_db *db, int64_t project_id, srv_project_role role,
                                        int64_t user_id, const char *group, srv_error *err)
{
    srv_stmt *s = stmt(db, S_MEMBER_REMOVE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, project_id);
    srv_bind_text(s, 2, srv_project_role_name(role), -1);
    bind_member(s, user_id, group);
    if ((st = srv_db_step_done(db, s, err, "project member")) != SRV_OK)
        return st;
    if (srv_db_changes(db) == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no such member holds the %s role in the project",
                        srv_project_role_name(role));
    return SRV_OK;
}

srv_status srv_db_project_members_list(srv_db *db, int64_t project_id, srv_project_member_cb cb,
                                       void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_MEMBERS, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, project_id);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_project_member m;
        memset(&m, 0, sizeof(m));
        if (!srv_project_role_parse((const char *)srv_col_text(s, 0), &m.role))
            continue;
        m.user_id = srv_col_int64(s, 1);
        srv_db_copy_text(m.name, sizeof(m.name), srv_col_text(s, 2));
        if (!m.user_id)
            m.kind = "group";
        else if (srv_db_kind_parse(srv_col_text(s, 3)) == SRV_KIND_SERVICE)
            m.kind = "service_account";
        else
            m.kind = "user";
        m.created_at = srv_col_int64(s, 4);
        cb(&m, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "project members");
}

srv_status srv_db_project_roles_drop_user(srv_db *db, int64_t user_id, int64_t *count,
                                          srv_error *err)
{
    srv_stmt *s = stmt(db, S_DROP_USER, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    st = srv_db_step_done(db, s, err, "project roles");
    if (st == SRV_OK && count)
        *count = srv_db_changes(db);
    return st;
}

int srv_db_project_has_role(srv_db *db, int64_t project_id, srv_project_role role, int64_t user_id,
                            const char *user_name)
{
    srv_stmt *s = stmt(db, S_HAS_ROLE, NULL);
    int rc;
    if (!s)
        return -1;
    srv_bind_int64(s, 1, project_id);
    srv_bind_text(s, 2, srv_project_role_name(role), -1);
    bind_user(s, user_id, user_name);
    rc = srv_step(s);
    srv_reset(s);
    return rc == SRV_DB_ROW ? 1 : rc == SRV_DB_DONE ? 0 : -1;
}

srv_status srv_db_projects_with_role(srv_db *db, srv_project_role role, int64_t user_id,
                                     const char *user_name, srv_project_id_cb cb, void *ctx,
                                     srv_error *err)
{
    srv_stmt *s = stmt(db, S_WITH_ROLE, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 2, srv_project_role_name(role), -1);
    bind_user(s, user_id, user_name);
    while ((rc = srv_step(s)) == SRV_DB_ROW)
        cb(srv_col_int64(s, 0), ctx);
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "project roles");
}

srv_status srv_db_key_set_project(srv_db *db, int64_t key_id, int64_t project_id, srv_error *err)
{
    srv_stmt *s = stmt(db, S_KEY_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    if (project_id > 0)
        srv_bind_int64(s, 2, project_id);
    else
        srv_bind_null(s, 2);
    return srv_db_step_done(db, s, err, "key project");
}

srv_status srv_db_grants_list(srv_db *db, int64_t key_id, srv_grant_cb cb, void *ctx,
                              srv_error *err)
{
    srv_stmt *s = stmt(db, S_GRANTS, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        const char *kind =
            srv_db_kind_parse(srv_col_text(s, 1)) == SRV_KIND_SERVICE ? "service_account" : "user";
        cb((const char *)srv_col_text(s, 0), kind, srv_col_int64(s, 2), ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "grants list");
}

srv_status srv_db_grant_delete(srv_db *db, int64_t key_id, int64_t user_id, srv_error *err)
{
    srv_stmt *s = stmt(db, S_GRANT_DELETE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, user_id);
    if ((st = srv_db_step_done(db, s, err, "grant")) != SRV_OK)
        return st;
    if (srv_db_changes(db) == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "there is no such grant");
    return SRV_OK;
}
