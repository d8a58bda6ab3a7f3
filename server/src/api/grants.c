/* Direct grants: one identity may sign with one key (an implicit allow rule at priority 0,
 * beside the signer role of a project). Global admins add, list and remove them; nobody grants
 * themselves, and admins are never granted (they cannot sign). Each change is audited. */
#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "../store/project_db.h"
#include "internal.h"

typedef struct {
    const api_call *c;
    const char *user_name;
    const char *reason; /* removals only */
    int remove;
} grant_job;

static srv_status run_grant(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    grant_job *j = ctx;
    srv_key key;
    srv_user user;
    cJSON *detail;
    srv_status st = srv_db_key_get(db, j->c->params[0], &key, err);

    if (st != SRV_OK)
        return st;
    if (key.is_ca) {
        srv_key_clear(&key);
        return srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
    }
    st = srv_db_user_get(db, j->user_name, &user, err);
    if (st == SRV_OK && j->remove) {
        st = srv_db_grant_delete(db, key.id, user.id, err);
        if (st == SRV_E_NOT_FOUND)
            srv_fail(err, SRV_E_NOT_FOUND, "\"%s\" holds no grant on key \"%s\"", user.name,
                     key.name);
    } else if (st == SRV_OK) {
        /* Separation of duties: signing rights go to signer identities, and never to the
         * administrator who hands them out. */
        if (user.id == j->c->user.id)
            st = srv_fail(err, SRV_E_FORBIDDEN, "nobody grants signing rights to themselves");
        else if (user.role == SRV_ROLE_ADMIN)
            st = srv_fail(err, SRV_E_FORBIDDEN,
                          "\"%s\" is an admin, and admins cannot sign: grant a signer identity",
                          user.name);
        if (st == SRV_OK)
            st = srv_db_grant_insert(db, key.id, user.id, err);
        if (st == SRV_E_EXISTS)
            srv_fail(err, SRV_E_EXISTS, "user \"%s\" is already granted key \"%s\"", j->user_name,
                     key.name);
    }
    if (st == SRV_OK) {
        detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "key", key.name);
        cJSON_AddStringToObject(detail, "user", j->user_name);
        if (j->reason)
            cJSON_AddStringToObject(detail, "reason", j->reason);
        if (key.project[0])
            cJSON_AddStringToObject(detail, "project", key.project);
        st = api_audit(j->c, db, audit, j->remove ? "key.ungrant" : "key.grant", detail, err);
        cJSON_Delete(detail);
    }
    srv_key_clear(&key);
    return st;
}

static void grant_reply(api_call *c, const grant_job *j, int status)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", c->params[0]);
    cJSON_AddStringToObject(doc, "user", j->user_name);
    cJSON_AddBoolToObject(doc, "granted", !j->remove);
    if (j->reason)
        cJSON_AddStringToObject(doc, "reason", j->reason);
    api_reply(c, status, doc);
}

/* POST /api/v1/admin/keys/{name}/grants {"user"} */
void api_admin_grant(api_call *c)
{
    static const char *const fields[] = {"user", NULL};
    grant_job job = {c, NULL, NULL, 0};
    srv_error err;

    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "user", 1, SRV_NAME_MAX, &job.user_name, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_grant, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    grant_reply(c, &job, 201);
}

/* DELETE /api/v1/admin/keys/{name}/grants/{user} {"reason"}: the very next sign request of
 * that identity with the key is decided without it. */
void api_admin_grant_remove(api_call *c)
{
    grant_job job = {c, c->params[1], NULL, 1};
    srv_error err;

    if (api_reason_only(c->body, &job.reason, &err) != SRV_OK)
        goto fail;
    if (srv_writer_run(c->w->app->writer, run_grant, &job, &err) != SRV_OK)
        goto fail;
    grant_reply(c, &job, 200);
    return;
fail:
    api_reply_error(c, &err);
}

static void add_grant(const char *user, const char *kind, int64_t created_at, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", user ? user : "");
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddNumberToObject(o, "created_at", (double)created_at);
    cJSON_AddItemToArray(ctx, o);
}

/* GET /api/v1/admin/keys/{name}/grants */
void api_admin_grants_list(api_call *c)
{
    cJSON *doc = NULL;
    srv_key key;
    srv_error err;

    if (srv_db_key_get(c->w->db, c->params[0], &key, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", key.name);
    if (key.project[0])
        cJSON_AddStringToObject(doc, "project", key.project);
    else
        cJSON_AddNullToObject(doc, "project");
    if (srv_db_grants_list(c->w->db, key.id, add_grant, cJSON_AddArrayToObject(doc, "grants"),
                           &err) != SRV_OK) {
        cJSON_Delete(doc);
        srv_key_clear(&key);
        api_reply_error(c, &err);
        return;
    }
    srv_key_clear(&key);
    api_reply(c, 200, doc);
}
