/* Admin API for identities that are not people, and for sessions: service accounts and their
 * enrollment tokens; machines (create, enrollment tokens, list, revoke); revoking the access
 * tokens of a user or service account. Every change is audited in its transaction. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "../auth/credentials.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "internal.h"

/* ---- enrollment tokens ---------------------------------------------------------------------- */

typedef struct {
    const api_call *c;
    const char *name;
    int create;  /* create the service account or machine first */
    int machine; /* a machine, else a service account */
    char token[SRV_TOKEN_TEXT_MAX + 1];
    uint8_t hash[32];
    int64_t expires_at;
} enroll_token_job;

static srv_status find_principal(srv_db *db, enroll_token_job *j, srv_enroll_token *tok,
                                 srv_error *err)
{
    srv_machine m;
    srv_user u;
    srv_status st;

    if (j->machine && j->create) {
        st = srv_db_machine_insert(db, j->name, &tok->machine_id, err);
        if (st == SRV_E_EXISTS)
            return srv_fail(err, SRV_E_EXISTS, "a machine named \"%s\" already exists", j->name);
        return st;
    }
    if (j->machine) {
        st = srv_db_machine_get(db, j->name, &m, err);
        if (st == SRV_E_NOT_FOUND)
            return srv_fail(err, SRV_E_NOT_FOUND, "no machine named \"%s\"", j->name);
        if (st == SRV_OK && m.revoked)
            return srv_fail(err, SRV_E_FORBIDDEN,
                            "machine \"%s\" is revoked; enroll the host under a new name", j->name);
        tok->machine_id = m.id;
        return st;
    }
    if (j->create) {
        st = srv_db_service_account_insert(db, j->name, &tok->user_id, err);
        if (st == SRV_E_EXISTS)
            return srv_fail(err, SRV_E_EXISTS,
                            "a user or service account named \"%s\" already exists", j->name);
        return st;
    }
    st = srv_db_user_get(db, j->name, &u, err);
    if (st == SRV_E_USER_NOT_FOUND || (st == SRV_OK && u.kind != SRV_KIND_SERVICE))
        return srv_fail(err, SRV_E_USER_NOT_FOUND, "no service account named \"%s\"", j->name);
    tok->user_id = u.id;
    return st;
}

static srv_status run_enroll_token(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    enroll_token_job *j = ctx;
    srv_enroll_token tok;
    cJSON *detail;
    const char *action;
    srv_status st;

    memset(&tok, 0, sizeof(tok));
    if ((st = find_principal(db, j, &tok, err)) != SRV_OK)
        return st;
    tok.expires_at = j->expires_at;
    if ((st = srv_db_enroll_token_insert(db, j->hash, &tok, err)) != SRV_OK)
        return st;
    if (j->machine)
        action = j->create ? "machine.create" : "machine.enrollment_token";
    else
        action = j->create ? "service_account.create" : "service_account.enrollment_token";
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, j->machine ? "target_machine" : "service_account", j->name);
    cJSON_AddNumberToObject(detail, "enrollment_token_expires_at", (double)j->expires_at);
    st = api_audit(j->c, db, audit, action, detail, err);
    cJSON_Delete(detail);
    return st;
}

static void issue_enroll_token(api_call *c, const char *name, int create, int machine)
{
    enroll_token_job job;
    cJSON *doc, *who;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.name = name;
    job.create = create;
    job.machine = machine;
    job.expires_at = srv_now() + c->w->app->cfg.enrollment_token_ttl;
    if (srv_enroll_token_new(job.token, job.hash, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_enroll_token, &job, &err) != SRV_OK) {
        OPENSSL_cleanse(job.token, sizeof(job.token));
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    who = cJSON_AddObjectToObject(doc, machine ? "machine" : "service_account");
    cJSON_AddStringToObject(who, "name", name);
    if (!machine) {
        cJSON_AddStringToObject(who, "kind", srv_user_kind_name(SRV_KIND_SERVICE));
        cJSON_AddStringToObject(who, "role", srv_role_name(SRV_ROLE_SIGNER));
    }
    cJSON_AddStringToObject(doc, "enrollment_token", job.token);
    cJSON_AddNumberToObject(doc, "expires_at", (double)job.expires_at);
    cJSON_AddStringToObject(doc, "note",
                            "the enrollment token is shown only once and works once; pass it to "
                            "the enrolling agent now");
    OPENSSL_cleanse(job.token, sizeof(job.token));
    api_reply(c, 201, doc);
}

/* Reads {"name"} for a create call; replies with the error and returns NULL if it is bad. */
static const char *body_name(api_call *c)
{
    static const char *const fields[] = {"name", NULL};
    const char *name = NULL;
    srv_error err;

    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "name", 1, SRV_NAME_MAX, &name, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return NULL;
    }
    if (!srv_valid_name(name, SRV_NAME_MAX)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "name must be 1-64 characters of [A-Za-z0-9._-]");
        api_reply_error(c, &err);
        return NULL;
    }
    return name;
}

void api_admin_service_account_create(api_call *c)
{
    const char *name = body_name(c);
    if (name)
        issue_enroll_token(c, name, 1, 0);
}

void api_admin_service_account_token(api_call *c)
{
    issue_enroll_token(c, c->params[0], 0, 0);
}

void api_admin_machine_create(api_call *c)
{
    const char *name = body_name(c);
    if (name)
        issue_enroll_token(c, name, 1, 1);
}

void api_admin_machine_token(api_call *c)
{
    issue_enroll_token(c, c->params[0], 0, 1);
}

/* ---- machines ------------------------------------------------------------------------------- */

/* ?state=: active (not revoked), enrolled or pending (active, with or without a certificate),
 * revoked; absent: all. */
typedef enum {
    MACHINES_ALL,
    MACHINES_ACTIVE,
    MACHINES_ENROLLED,
    MACHINES_PENDING,
    MACHINES_REVOKED
} machine_state;

typedef struct {
    cJSON *arr;
    machine_state state;
} machine_list;

static int machine_in_state(const srv_machine *m, machine_state state)
{
    switch (state) {
    case MACHINES_ALL: return 1;
    case MACHINES_ACTIVE: return !m->revoked;
    case MACHINES_ENROLLED: return !m->revoked && m->enrolled;
    case MACHINES_PENDING: return !m->revoked && !m->enrolled;
    case MACHINES_REVOKED: return m->revoked;
    }
    return 0;
}

static void add_machine(const srv_machine *m, void *ctx)
{
    machine_list *list = ctx;
    cJSON *item;

    if (!machine_in_state(m, list->state))
        return;
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", m->name);
    cJSON_AddBoolToObject(item, "enrolled", m->enrolled);
    if (m->enrolled) {
        char hex[2 * SRV_SHA256_LEN + 1];
        srv_hex_encode(m->cert_sha256, SRV_SHA256_LEN, hex);
        cJSON_AddStringToObject(item, "certificate_sha256", hex);
        cJSON_AddStringToObject(item, "certificate_serial", m->cert_serial);
        cJSON_AddNumberToObject(item, "certificate_not_after", (double)m->cert_not_after);
        cJSON_AddNumberToObject(item, "enrolled_at", (double)m->enrolled_at);
    }
    cJSON_AddBoolToObject(item, "revoked", m->revoked);
    cJSON_AddNumberToObject(item, "created_at", (double)m->created_at);
    cJSON_AddItemToArray(list->arr, item);
}

static srv_status parse_machine_state(const char *query, machine_state *out, srv_error *err)
{
    static const char *const names[] = {"", "active", "enrolled", "pending", "revoked", NULL};
    char buf[API_QUERY_VALUE_MAX + 1];
    const char *v;
    srv_status st = api_query_text(query, "state", buf, &v, err);

    *out = MACHINES_ALL;
    if (st != SRV_OK || !v)
        return st;
    for (int i = 1; names[i]; i++) {
        if (!strcmp(v, names[i])) {
            *out = (machine_state)i;
            return SRV_OK;
        }
    }
    return srv_fail(err, SRV_E_INVALID_FIELD,
                    "query parameter state must be active, enrolled, pending or revoked");
}

void api_admin_machines_list(api_call *c)
{
    machine_list list = {NULL, MACHINES_ALL};
    cJSON *doc;
    srv_error err;

    if (parse_machine_state(c->ex->query, &list.state, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    list.arr = cJSON_AddArrayToObject(doc, "machines");
    if (srv_db_machines_list(c->w->db, add_machine, &list, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

/* ---- revocation ----------------------------------------------------------------------------- */

typedef enum {
    OP_REVOKE_TOKENS, /* every access token of a user or service account */
    OP_MACHINE_REVOKE,
    OP_MACHINE_ENABLE,
} principal_op;

typedef struct {
    const api_call *c;
    const char *name, *reason;
    principal_op op;
    srv_user_kind kind;
    int64_t revoked_tokens;
} revoke_job;

static srv_status change_machine(srv_db *db, revoke_job *j, srv_error *err)
{
    srv_machine m;
    srv_status st = srv_db_machine_get(db, j->name, &m, err);

    if (st == SRV_E_NOT_FOUND)
        return srv_fail(err, SRV_E_NOT_FOUND, "no machine named \"%s\"", j->name);
    if (st != SRV_OK)
        return st;
    /* Revoked, its certificate stops working at once, and so do tokens bound to it; enabled,
     * the certificate works again (the revoked tokens stay revoked). */
    st = srv_db_machine_set_revoked(db, m.id, j->op == OP_MACHINE_REVOKE, err);
    if (st == SRV_OK && j->op == OP_MACHINE_REVOKE)
        st = srv_db_tokens_revoke(db, 0, m.id, &j->revoked_tokens, err);
    return st;
}

static srv_status run_revoke(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    revoke_job *j = ctx;
    cJSON *detail;
    srv_status st;

    if (j->op != OP_REVOKE_TOKENS) {
        st = change_machine(db, j, err);
    } else {
        srv_user u;
        st = srv_db_user_get(db, j->name, &u, err);
        if (st == SRV_E_USER_NOT_FOUND)
            return srv_fail(err, SRV_E_USER_NOT_FOUND, "no user or service account named \"%s\"",
                            j->name);
        j->kind = u.kind;
        if (st == SRV_OK)
            st = srv_db_tokens_revoke(db, u.id, 0, &j->revoked_tokens, err);
    }
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    if (j->op != OP_REVOKE_TOKENS) {
        cJSON_AddStringToObject(detail, "target_machine", j->name);
    } else {
        cJSON_AddStringToObject(detail, "user", j->name);
        cJSON_AddStringToObject(detail, "kind", srv_user_kind_name(j->kind));
    }
    cJSON_AddStringToObject(detail, "reason", j->reason);
    cJSON_AddNumberToObject(detail, "revoked_tokens", (double)j->revoked_tokens);
    st = api_audit(j->c, db, audit, j->c->action, detail, err);
    cJSON_Delete(detail);
    return st;
}

static void revoke(api_call *c, principal_op op)
{
    revoke_job job;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.name = c->params[0];
    job.op = op;
    if (api_reason_only(c->body, &job.reason, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_revoke, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    if (op != OP_REVOKE_TOKENS) {
        cJSON_AddStringToObject(doc, "machine", job.name);
        cJSON_AddBoolToObject(doc, "revoked", op == OP_MACHINE_REVOKE);
    } else {
        cJSON_AddStringToObject(doc, "user", job.name);
        cJSON_AddStringToObject(doc, "kind", srv_user_kind_name(job.kind));
    }
    cJSON_AddNumberToObject(doc, "revoked_tokens", (double)job.revoked_tokens);
    api_reply(c, 200, doc);
}

void api_admin_machine_revoke(api_call *c)
{
    revoke(c, OP_MACHINE_REVOKE);
}

void api_admin_machine_enable(api_call *c)
{
    revoke(c, OP_MACHINE_ENABLE);
}

void api_admin_revoke_tokens(api_call *c)
{
    revoke(c, OP_REVOKE_TOKENS);
}
