/* Projects: a project groups signing keys and the identities that hold a role in it. Its
 * signers may sign with its keys (an implicit allow rule at priority 0, like a grant), its
 * approvers may decide approval requests on its keys when the rule says so, and its admins
 * manage its keys and its signers and approvers without being global admins. Global admins
 * create and delete projects, name project admins and move keys between projects. Every change
 * is audited with who made it and why. */
#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "../store/project_db.h"
#include "internal.h"

/* ---- who may act on a project or a project's key ------------------------------------------ */

srv_status api_project_scope(api_call *c, int by_key, const char *name, srv_error *err)
{
    int64_t project_id = 0;
    int is_admin = c->user.role == SRV_ROLE_ADMIN, role;

    if (by_key) {
        srv_key key;
        if (srv_db_key_get(c->w->db, name, &key, NULL) == SRV_OK) {
            snprintf(c->project, sizeof(c->project), "%s", key.project);
            project_id = key.project_id;
            srv_key_clear(&key);
        }
    } else {
        srv_project p;
        if (srv_db_project_get(c->w->db, name, &p, NULL) == SRV_OK) {
            snprintf(c->project, sizeof(c->project), "%s", p.name);
            project_id = p.id;
        }
    }
    /* A global admin goes on (an unknown name is then the handler's answer); anyone else
     * learns nothing about names outside their own projects. */
    if (is_admin)
        return SRV_OK;
    role = project_id ? srv_db_project_has_role(c->w->db, project_id, SRV_PROJECT_ADMIN, c->user.id,
                                                c->user.name)
                      : 0;
    if (role < 0)
        return srv_fail(err, SRV_E_DATABASE, "cannot read project roles");
    if (!role)
        return srv_fail(err, SRV_E_FORBIDDEN,
                        by_key
                            ? "this call needs the admin role, or the admin role in the key's "
                              "project"
                            : "this call needs the admin role, or the admin role in the project");
    c->project_admin = 1;
    return SRV_OK;
}

srv_status api_require_admin_or_project(api_call *c, const char *project, srv_error *err)
{
    if (c->user.role == SRV_ROLE_ADMIN)
        return SRV_OK;
    if (!project)
        return srv_fail(err, SRV_E_FORBIDDEN,
                        "this call needs the admin role (a project admin names the project)");
    return api_project_scope(c, 0, project, err);
}

/* ---- reading ------------------------------------------------------------------------------- */

static cJSON *project_json(const srv_project *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "description", p->description);
    cJSON_AddNumberToObject(o, "created_at", (double)p->created_at);
    cJSON_AddNumberToObject(o, "keys", (double)p->keys);
    return o;
}

static void add_project(const srv_project *p, void *ctx)
{
    cJSON_AddItemToArray(ctx, project_json(p));
}

/* GET /api/v1/admin/projects: every project for a global admin, else those where the caller
 * holds a role (directly or through a group). */
void api_projects_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "projects");
    int64_t member = c->user.role == SRV_ROLE_ADMIN ? 0 : c->user.id;
    srv_error err;
    if (srv_db_projects_list(c->w->db, member, c->user.name, add_project, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

static void add_member(const srv_project_member *m, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", srv_project_role_name(m->role));
    cJSON_AddStringToObject(o, "kind", m->kind);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "since", (double)m->created_at);
    cJSON_AddItemToArray(ctx, o);
}

typedef struct {
    int64_t project_id;
    cJSON *arr;
} key_scan;

static void add_project_key(const srv_key *key, void *ctx)
{
    key_scan *k = ctx;
    cJSON *o;
    if (key->project_id != k->project_id)
        return;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", key->name);
    cJSON_AddStringToObject(o, "type", srv_key_type_name(key->type));
    cJSON_AddBoolToObject(o, "disabled", key->disabled);
    cJSON_AddItemToArray(k->arr, o);
}

/* GET /api/v1/admin/projects/{name}: the project, its keys and its members. */
void api_project_get(api_call *c)
{
    srv_project p;
    key_scan k;
    cJSON *doc = NULL;
    srv_error err;

    if (srv_db_project_get(c->w->db, c->params[0], &p, &err) != SRV_OK)
        goto fail;
    doc = project_json(&p);
    k.project_id = p.id;
    k.arr = cJSON_AddArrayToObject(doc, "key_list");
    if (srv_db_keys_list(c->w->db, -1, add_project_key, &k, &err) != SRV_OK ||
        srv_db_project_members_list(c->w->db, p.id, add_member,
                                    cJSON_AddArrayToObject(doc, "members"), &err) != SRV_OK)
        goto fail;
    api_reply(c, 200, doc);
    return;
fail:
    cJSON_Delete(doc);
    api_reply_error(c, &err);
}

/* ---- changes ------------------------------------------------------------------------------- */

typedef enum { OP_CREATE, OP_DELETE, OP_MEMBER_ADD, OP_MEMBER_REMOVE, OP_KEY_MOVE } project_op;

typedef struct {
    const api_call *c;
    project_op op;
    const char *name, *description, *reason;
    /* members */
    srv_project_role role;
    const char *member_kind; /* "user", "service_account" or "group" */
    const char *member;
    /* key moves: the key (path) into project `name`, or out of any (name NULL) */
    const char *key;
    char from[SRV_NAME_MAX + 1];
} project_job;

typedef struct {
    const char *name;
    const char *user;
    int found, contains_user;
} group_find;

static void find_group(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    group_find *g = ctx;
    cJSON *arr;
    (void)updated_at;
    if (strcmp(name, g->name) != 0)
        return;
    g->found = 1;
    arr = cJSON_Parse(members);
    for (const cJSON *m = arr ? arr->child : NULL; m; m = m->next)
        if (cJSON_IsString(m) && strcmp(m->valuestring, g->user) == 0)
            g->contains_user = 1;
    cJSON_Delete(arr);
}

/* The member a change names, checked against separation of duties: nobody gives themselves
 * a role (nor a group they are in), admins never get a signing role, and only a global admin
 * names project admins. *user_id is 0 for a group. */
static srv_status check_member(srv_db *db, project_job *j, int64_t *user_id, srv_error *err)
{
    const srv_user *me = &j->c->user;
    int adding = j->op == OP_MEMBER_ADD;
    srv_status st;

    *user_id = 0;
    if (j->role == SRV_PROJECT_ADMIN && me->role != SRV_ROLE_ADMIN)
        return srv_fail(err, SRV_E_FORBIDDEN,
                        "only a global admin names or removes project admins");
    if (!strcmp(j->member_kind, "group")) {
        group_find g = {j->member, me->name, 0, 0};
        if ((st = srv_db_groups_list(db, "user", find_group, &g, err)) != SRV_OK)
            return st;
        if (!g.found && adding)
            return srv_fail(err, SRV_E_NOT_FOUND, "no user group named \"%s\"", j->member);
        if (g.contains_user && adding)
            return srv_fail(err, SRV_E_FORBIDDEN,
                            "you are in group \"%s\": nobody gives themselves a project role",
                            j->member);
        return SRV_OK;
    } else {
        srv_user u;
        int service = !strcmp(j->member_kind, "service_account");
        if ((st = srv_db_user_get(db, j->member, &u, err)) != SRV_OK ||
            (u.kind == SRV_KIND_SERVICE) != service)
            return srv_fail(err, SRV_E_USER_NOT_FOUND, "no %s named \"%s\"",
                            service ? "service account" : "user", j->member);
        if (adding && u.id == me->id)
            return srv_fail(err, SRV_E_FORBIDDEN, "nobody gives themselves a project role");
        if (adding && u.disabled)
            return srv_fail(err, SRV_E_INVALID_FIELD, "%s \"%s\" is disabled",
                            service ? "service account" : "user", j->member);
        if (adding && u.role == SRV_ROLE_ADMIN && j->role != SRV_PROJECT_APPROVER)
            return srv_fail(err, SRV_E_FORBIDDEN,
                            "\"%s\" is an admin, and admins cannot sign or hold a project's "
                            "admin role: name a signer identity",
                            j->member);
        *user_id = u.id;
    }
    return SRV_OK;
}

static srv_status apply(srv_db *db, project_job *j, cJSON *detail, srv_error *err)
{
    srv_project p;
    srv_key key;
    int64_t uid;
    srv_status st;

    if (j->op == OP_CREATE)
        return srv_db_project_insert(db, j->name, j->description, NULL, err);
    if (j->op == OP_KEY_MOVE) {
        int64_t pid = 0;
        if (j->name) {
            if ((st = srv_db_project_get(db, j->name, &p, err)) != SRV_OK)
                return st;
            pid = p.id;
        }
        if ((st = srv_db_key_get(db, j->key, &key, err)) != SRV_OK)
            return st;
        snprintf(j->from, sizeof(j->from), "%s", key.project);
        if (key.is_ca)
            st = srv_fail(err, SRV_E_FORBIDDEN, "the CA key belongs to no project");
        else
            st = srv_db_key_set_project(db, key.id, pid, err);
        srv_key_clear(&key);
        cJSON_AddStringToObject(detail, "key", j->key);
        if (j->from[0])
            cJSON_AddStringToObject(detail, "from_project", j->from);
        return st;
    }
    if ((st = srv_db_project_get(db, j->name, &p, err)) != SRV_OK)
        return st;
    if (j->op == OP_DELETE)
        return srv_db_project_delete(db, p.id, err);
    if ((st = check_member(db, j, &uid, err)) != SRV_OK)
        return st;
    cJSON_AddStringToObject(detail, "role", srv_project_role_name(j->role));
    cJSON_AddStringToObject(detail, j->member_kind, j->member);
    if (j->op == OP_MEMBER_ADD) {
        st = srv_db_project_member_add(db, p.id, j->role, uid, uid ? NULL : j->member, err);
        if (st == SRV_E_EXISTS)
            return srv_fail(err, SRV_E_EXISTS, "%s \"%s\" already holds the %s role in \"%s\"",
                            j->member_kind, j->member, srv_project_role_name(j->role), j->name);
        return st;
    }
    return srv_db_project_member_remove(db, p.id, j->role, uid, uid ? NULL : j->member, err);
}

static const char *const op_actions[] = {
    [OP_CREATE] = "project.create",         [OP_DELETE] = "project.delete",
    [OP_MEMBER_ADD] = "project.member_add", [OP_MEMBER_REMOVE] = "project.member_remove",
    [OP_KEY_MOVE] = "key.project",
};

static srv_status run_project_job(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    project_job *j = ctx;
    cJSON *detail = cJSON_CreateObject();
    srv_status st;
    if (!detail)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    st = apply(db, j, detail, err);
    if (st == SRV_OK) {
        if (j->name)
            cJSON_AddStringToObject(detail, "project", j->name);
        else
            cJSON_AddNullToObject(detail, "project");
        if (j->reason)
            cJSON_AddStringToObject(detail, "reason", j->reason);
        if (j->c->project_admin)
            cJSON_AddStringToObject(detail, "as", "project_admin");
        st = api_audit(j->c, db, audit, op_actions[j->op], detail, err);
    }
    cJSON_Delete(detail);
    return st;
}

static void run_and_reply(api_call *c, project_job *j, int status)
{
    cJSON *doc;
    srv_error err;
    if (srv_writer_run(c->w->app->writer, run_project_job, j, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "project", j->name ? j->name : "");
    switch (j->op) {
    case OP_CREATE: cJSON_AddStringToObject(doc, "description", j->description); break;
    case OP_DELETE: cJSON_AddBoolToObject(doc, "deleted", 1); break;
    case OP_MEMBER_ADD:
    case OP_MEMBER_REMOVE:
        cJSON_AddStringToObject(doc, "role", srv_project_role_name(j->role));
        cJSON_AddStringToObject(doc, j->member_kind, j->member);
        cJSON_AddBoolToObject(doc, "member", j->op == OP_MEMBER_ADD);
        break;
    case OP_KEY_MOVE:
        cJSON_AddStringToObject(doc, "key", j->key);
        if (j->from[0])
            cJSON_AddStringToObject(doc, "from_project", j->from);
        else
            cJSON_AddNullToObject(doc, "from_project");
        break;
    }
    if (j->reason)
        cJSON_AddStringToObject(doc, "reason", j->reason);
    api_reply(c, status, doc);
}

/* POST /api/v1/admin/projects {"name", "description"} */
void api_project_create(api_call *c)
{
    static const char *const fields[] = {"name", "description", NULL};
    project_job j;
    srv_error err;
    memset(&j, 0, sizeof(j));
    j.c = c;
    j.op = OP_CREATE;
    j.description = "";
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "name", 1, SRV_NAME_MAX, &j.name, &err) != SRV_OK ||
        srv_json_get_string(c->body, "description", 0, SRV_PROJECT_DESCRIPTION_MAX, &j.description,
                            &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    if (!srv_valid_name(j.name, SRV_NAME_MAX)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "name must be 1-64 characters of [A-Za-z0-9._-]");
        api_reply_error(c, &err);
        return;
    }
    run_and_reply(c, &j, 201);
}

/* DELETE /api/v1/admin/projects/{name} {"reason"}: only an empty project. */
void api_project_delete(api_call *c)
{
    project_job j;
    srv_error err;
    memset(&j, 0, sizeof(j));
    j.c = c;
    j.op = OP_DELETE;
    j.name = c->params[0];
    if (api_reason_only(c->body, &j.reason, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    run_and_reply(c, &j, 200);
}

/* POST /api/v1/admin/projects/{name}/members[/remove]
 * {"role": "admin"|"signer"|"approver", "user"|"service_account"|"group": NAME, "reason"} */
static void member_change(api_call *c, project_op op)
{
    static const char *const fields[] = {"role",  "user",   "service_account",
                                         "group", "reason", NULL};
    static const char *const kinds[] = {"user", "service_account", "group"};
    const char *role = NULL;
    project_job j;
    srv_error err;
    int named = 0;

    memset(&j, 0, sizeof(j));
    j.c = c;
    j.op = op;
    j.name = c->params[0];
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "role", 1, 16, &role, &err) != SRV_OK ||
        api_get_reason(c->body, &j.reason, &err) != SRV_OK)
        goto fail;
    if (!srv_project_role_parse(role, &j.role)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "role must be admin, signer or approver");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const char *v = NULL;
        if (srv_json_get_string(c->body, kinds[i], 0, SRV_NAME_MAX, &v, &err) != SRV_OK)
            goto fail;
        if (v) {
            named++;
            j.member_kind = kinds[i];
            j.member = v;
        }
    }
    if (named != 1 || !srv_valid_name(j.member, SRV_NAME_MAX)) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "name exactly one member: \"user\", \"service_account\" or \"group\" (1-64 "
                 "characters of [A-Za-z0-9._-])");
        goto fail;
    }
    run_and_reply(c, &j, op == OP_MEMBER_ADD ? 201 : 200);
    return;
fail:
    api_reply_error(c, &err);
}

void api_project_member_add(api_call *c)
{
    member_change(c, OP_MEMBER_ADD);
}

void api_project_member_remove(api_call *c)
{
    member_change(c, OP_MEMBER_REMOVE);
}

/* PUT /api/v1/admin/keys/{name}/project {"project": NAME|null, "reason"} */
void api_key_project_set(api_call *c)
{
    static const char *const fields[] = {"project", "reason", NULL};
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c->body, "project");
    project_job j;
    srv_error err;

    memset(&j, 0, sizeof(j));
    j.c = c;
    j.op = OP_KEY_MOVE;
    j.key = c->params[0];
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        api_get_reason(c->body, &j.reason, &err) != SRV_OK)
        goto fail;
    if (!p || (!cJSON_IsNull(p) &&
               !(cJSON_IsString(p) && srv_valid_name(p->valuestring, SRV_NAME_MAX)))) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "project must name a project, or be null to take the key out of its project");
        goto fail;
    }
    j.name = cJSON_IsString(p) ? p->valuestring : NULL;
    run_and_reply(c, &j, 200);
    return;
fail:
    api_reply_error(c, &err);
}
