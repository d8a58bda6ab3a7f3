/* Admin API for taking access back: users and service accounts (show, disable, enable,
 * delete), a user's API keys (list, revoke one, revoke all) and a service account's enrolled
 * keys (list, revoke). Each change takes a reason, revokes the access tokens it makes
 * worthless in the same transaction, and is audited there with who did it and why. */
#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "../store/identity_db.h"
#include "../store/project_db.h"
#include "internal.h"

typedef enum {
    OP_DISABLE,
    OP_ENABLE,
    OP_DELETE,
    OP_REVOKE_APIKEY, /* cred: a prefix, or NULL for all */
    OP_REVOKE_SAKEY,  /* cred: a kid */
} identity_op;

typedef struct {
    const api_call *c;
    srv_user_kind kind;
    identity_op op;
    const char *name, *cred, *reason;
    srv_identity id; /* the target, as the transaction found it */
    int64_t api_keys, sa_keys, tokens, grants, project_roles;
} identity_job;

static const char *kind_word(srv_user_kind kind)
{
    return kind == SRV_KIND_SERVICE ? "service account" : "user";
}

static cJSON *identity_json(const srv_identity *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", id->user.name);
    cJSON_AddStringToObject(o, "kind", srv_user_kind_name(id->user.kind));
    cJSON_AddStringToObject(o, "role", srv_role_name(id->user.role));
    cJSON_AddBoolToObject(o, "disabled", id->user.disabled);
    cJSON_AddBoolToObject(o, "deleted", id->deleted_at != 0);
    cJSON_AddNumberToObject(o, "created_at", (double)id->created_at);
    if (id->deleted_at)
        cJSON_AddNumberToObject(o, "deleted_at", (double)id->deleted_at);
    return o;
}

/* The identity named in the path, of the route's kind (deleted ones too). */
static srv_status find_identity(srv_db *db, srv_user_kind kind, const char *name, srv_identity *out,
                                srv_error *err)
{
    srv_status st = srv_db_identity_get(db, name, out, err);
    if (st == SRV_OK && out->user.kind != kind)
        st = SRV_E_USER_NOT_FOUND;
    if (st == SRV_E_USER_NOT_FOUND)
        return srv_fail(err, SRV_E_USER_NOT_FOUND, "no %s named \"%s\"", kind_word(kind), name);
    return st;
}

/* Nobody locks themselves out: an admin is disabled or deleted by another admin. */
static srv_status check_lockout(const identity_job *j, srv_error *err)
{
    if ((j->op == OP_DISABLE || j->op == OP_DELETE) && j->id.user.id == j->c->user.id)
        return srv_fail(err, SRV_E_FORBIDDEN, "you cannot %s your own account",
                        j->op == OP_DISABLE ? "disable" : "delete");
    return SRV_OK;
}

static srv_status apply(srv_db *db, identity_job *j, srv_error *err)
{
    int64_t uid = j->id.user.id, now = srv_now(), n = 0, m = 0;
    srv_status st = SRV_OK;

    switch (j->op) {
    case OP_DISABLE:
        if ((st = srv_db_identity_set_disabled(db, uid, 1, err)) == SRV_OK)
            st = srv_db_tokens_revoke(db, uid, 0, &j->tokens, err);
        break;
    case OP_ENABLE: st = srv_db_identity_set_disabled(db, uid, 0, err); break;
    case OP_DELETE:
        if ((st = srv_db_identity_mark_deleted(db, uid, now, err)) == SRV_OK &&
            (st = srv_db_apikeys_revoke(db, uid, NULL, now, &j->api_keys, &n, err)) == SRV_OK &&
            (st = srv_db_sakeys_revoke(db, uid, NULL, now, &j->sa_keys, &m, err)) == SRV_OK &&
            (st = srv_db_tokens_revoke(db, uid, 0, &j->tokens, err)) == SRV_OK &&
            (st = srv_db_identity_drop_grants(db, uid, &j->grants, err)) == SRV_OK)
            st = srv_db_project_roles_drop_user(db, uid, &j->project_roles, err);
        j->tokens += n + m; /* those minted from the keys were revoked with them */
        break;
    case OP_REVOKE_APIKEY:
        st = srv_db_apikeys_revoke(db, uid, j->cred, now, &j->api_keys, &j->tokens, err);
        break;
    case OP_REVOKE_SAKEY:
        st = srv_db_sakeys_revoke(db, uid, j->cred, now, &j->sa_keys, &j->tokens, err);
        break;
    }
    return st;
}

static srv_status run_identity_job(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    identity_job *j = ctx;
    cJSON *detail;
    srv_status st;

    if ((st = find_identity(db, j->kind, j->name, &j->id, err)) != SRV_OK)
        return st;
    if (j->id.deleted_at)
        return srv_fail(err, SRV_E_USER_NOT_FOUND, "%s \"%s\" was deleted", kind_word(j->kind),
                        j->name);
    if ((st = check_lockout(j, err)) != SRV_OK || (st = apply(db, j, err)) != SRV_OK)
        return st;
    if ((st = find_identity(db, j->kind, j->name, &j->id, err)) != SRV_OK)
        return st;

    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, j->kind == SRV_KIND_SERVICE ? "service_account" : "user",
                            j->name);
    if (j->cred)
        cJSON_AddStringToObject(detail, j->op == OP_REVOKE_SAKEY ? "kid" : "api_key_prefix",
                                j->cred);
    cJSON_AddStringToObject(detail, "reason", j->reason);
    cJSON_AddNumberToObject(detail, "revoked_api_keys", (double)j->api_keys);
    cJSON_AddNumberToObject(detail, "revoked_enrolled_keys", (double)j->sa_keys);
    cJSON_AddNumberToObject(detail, "revoked_tokens", (double)j->tokens);
    cJSON_AddNumberToObject(detail, "removed_grants", (double)j->grants);
    cJSON_AddNumberToObject(detail, "removed_project_roles", (double)j->project_roles);
    st = api_audit(j->c, db, audit, j->c->action, detail, err);
    cJSON_Delete(detail);
    return st;
}

static void change(api_call *c, srv_user_kind kind, identity_op op, const char *cred)
{
    identity_job job;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.kind = kind;
    job.op = op;
    job.name = c->params[0];
    job.cred = cred;
    if (api_reason_only(c->body, &job.reason, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_identity_job, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, kind == SRV_KIND_SERVICE ? "service_account" : "user",
                          identity_json(&job.id));
    cJSON_AddNumberToObject(doc, "revoked_api_keys", (double)job.api_keys);
    cJSON_AddNumberToObject(doc, "revoked_enrolled_keys", (double)job.sa_keys);
    cJSON_AddNumberToObject(doc, "revoked_tokens", (double)job.tokens);
    cJSON_AddNumberToObject(doc, "removed_grants", (double)job.grants);
    cJSON_AddNumberToObject(doc, "removed_project_roles", (double)job.project_roles);
    api_reply(c, 200, doc);
}

void api_admin_user_disable(api_call *c)
{
    change(c, SRV_KIND_USER, OP_DISABLE, NULL);
}

void api_admin_user_enable(api_call *c)
{
    change(c, SRV_KIND_USER, OP_ENABLE, NULL);
}

void api_admin_user_delete(api_call *c)
{
    change(c, SRV_KIND_USER, OP_DELETE, NULL);
}

void api_admin_sa_disable(api_call *c)
{
    change(c, SRV_KIND_SERVICE, OP_DISABLE, NULL);
}

void api_admin_sa_enable(api_call *c)
{
    change(c, SRV_KIND_SERVICE, OP_ENABLE, NULL);
}

void api_admin_sa_delete(api_call *c)
{
    change(c, SRV_KIND_SERVICE, OP_DELETE, NULL);
}

void api_admin_apikey_revoke(api_call *c)
{
    change(c, SRV_KIND_USER, OP_REVOKE_APIKEY, c->params[1]);
}

void api_admin_apikeys_revoke_all(api_call *c)
{
    change(c, SRV_KIND_USER, OP_REVOKE_APIKEY, NULL);
}

void api_admin_sakey_revoke(api_call *c)
{
    change(c, SRV_KIND_SERVICE, OP_REVOKE_SAKEY, c->params[1]);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void add_apikey(const srv_apikey_info *k, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prefix", k->prefix);
    cJSON_AddNumberToObject(o, "created_at", (double)k->created_at);
    if (k->last_used_at)
        cJSON_AddNumberToObject(o, "last_used_at", (double)k->last_used_at);
    else
        cJSON_AddNullToObject(o, "last_used_at");
    cJSON_AddBoolToObject(o, "revoked", k->revoked);
    if (k->revoked_at)
        cJSON_AddNumberToObject(o, "revoked_at", (double)k->revoked_at);
    cJSON_AddItemToArray(ctx, o);
}

static void add_sakey(const srv_sakey_info *k, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kid", k->kid);
    cJSON_AddNumberToObject(o, "created_at", (double)k->created_at);
    if (k->last_used_at)
        cJSON_AddNumberToObject(o, "last_used_at", (double)k->last_used_at);
    else
        cJSON_AddNullToObject(o, "last_used_at");
    cJSON_AddBoolToObject(o, "revoked", k->revoked_at != 0);
    if (k->revoked_at)
        cJSON_AddNumberToObject(o, "revoked_at", (double)k->revoked_at);
    cJSON_AddItemToArray(ctx, o);
}

/* GET .../{name}: the identity with its credentials (API keys or enrolled keys). */
static void show(api_call *c, srv_user_kind kind, int credentials_only)
{
    cJSON *doc = cJSON_CreateObject(), *arr;
    srv_identity id;
    srv_error err;
    srv_status st = find_identity(c->w->db, kind, c->params[0], &id, &err);

    if (st == SRV_OK && !credentials_only)
        cJSON_AddItemToObject(doc, kind == SRV_KIND_SERVICE ? "service_account" : "user",
                              identity_json(&id));
    if (st == SRV_OK && kind == SRV_KIND_USER) {
        arr = cJSON_AddArrayToObject(doc, "api_keys");
        st = srv_db_apikeys_list(c->w->db, id.user.id, add_apikey, arr, &err);
    } else if (st == SRV_OK) {
        arr = cJSON_AddArrayToObject(doc, "keys");
        st = srv_db_sakeys_list(c->w->db, id.user.id, add_sakey, arr, &err);
    }
    if (st != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

void api_admin_user_get(api_call *c)
{
    show(c, SRV_KIND_USER, 0);
}

void api_admin_apikeys_list(api_call *c)
{
    show(c, SRV_KIND_USER, 1);
}

void api_admin_sa_get(api_call *c)
{
    show(c, SRV_KIND_SERVICE, 0);
}

void api_admin_sakeys_list(api_call *c)
{
    show(c, SRV_KIND_SERVICE, 1);
}

static void add_identity(const srv_identity *id, void *ctx)
{
    cJSON_AddItemToArray(ctx, identity_json(id));
}

/* GET /api/v1/admin/service-accounts: those not deleted (GET by name shows a deleted one). */
void api_admin_sa_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "service_accounts");
    srv_error err;
    if (srv_db_identities_list(c->w->db, SRV_KIND_SERVICE, 0, add_identity, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}
