/* Admin API of the policy engine: rules (create, list, get, update, delete), the whole set
 * (export, import), user and key groups, and explain. Every change is audited in the
 * transaction that makes it. The decision itself is policy/decision.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "internal.h"
#include "signum/common/names.h"

/* ---- rules -------------------------------------------------------------------------------- */

typedef struct {
    const api_call *c;
    const char *name;
    const char *doc; /* canonical text; NULL to delete */
    srv_put_mode mode;
    int64_t version;
    /* import: the whole set */
    cJSON *import_rules, *import_users, *import_keys;
} policy_job;

static char *canonical(const cJSON *doc)
{
    cJSON *copy = cJSON_Duplicate(doc, 1);
    char *text;
    if (!copy)
        return NULL;
    srv_audit_canonicalize(copy);
    text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return text;
}

static srv_status run_policy_change(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    policy_job *j = ctx;
    cJSON *detail = cJSON_CreateObject();
    srv_status st;
    const char *action =
        j->doc ? (j->mode == SRV_PUT_CREATE ? "policy.create" : "policy.update") : "policy.delete";
    if (j->doc)
        st = srv_db_policy_put(db, j->name, j->doc, j->mode, &j->version, err);
    else
        st = srv_db_policy_delete(db, j->name, err);
    cJSON_AddStringToObject(detail, "policy", j->name);
    if (j->doc) {
        cJSON_AddNumberToObject(detail, "version", (double)j->version);
        cJSON_AddItemToObject(detail, "document", cJSON_Parse(j->doc));
    }
    if (st == SRV_OK)
        st = api_audit(j->c, db, audit, action, detail, err);
    cJSON_Delete(detail);
    return st;
}

/* Validates a rule body into its canonical text; the name must match the path's, if any. */
static srv_status validate_rule(const cJSON *body, const char *path_name, char **text,
                                srv_error *err)
{
    policy_rule rule;
    srv_status st = policy_rule_parse(body, &rule, err);
    if (st != SRV_OK)
        return st;
    if (path_name && strcmp(rule.name, path_name) != 0) {
        policy_rule_clear(&rule);
        return srv_fail(err, SRV_E_INVALID_FIELD, "name \"%s\" differs from the path's \"%s\"",
                        rule.name, path_name);
    }
    *text = canonical(rule.doc);
    policy_rule_clear(&rule);
    return *text ? SRV_OK : srv_fail(err, SRV_E_NOMEM, "out of memory");
}

static cJSON *policy_entry(const char *doc, int64_t version, int64_t updated_at)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToObject(e, "policy", cJSON_Parse(doc));
    cJSON_AddNumberToObject(e, "version", (double)version);
    if (updated_at)
        cJSON_AddNumberToObject(e, "updated_at", (double)updated_at);
    return e;
}

static void list_entry(const char *name, int64_t version, const char *doc, int64_t updated_at,
                       void *ctx)
{
    (void)name;
    cJSON_AddItemToArray(ctx, policy_entry(doc, version, updated_at));
}

void api_admin_policies_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "policies");
    srv_error err;
    if (srv_db_policies_list(c->w->db, list_entry, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

static void put_rule(api_call *c, const char *path_name, srv_put_mode mode)
{
    policy_job job;
    char *text = NULL;
    srv_error err;
    memset(&job, 0, sizeof(job));
    if (validate_rule(c->body, path_name, &text, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    job.c = c;
    job.name = cJSON_GetObjectItemCaseSensitive(c->body, "name")->valuestring;
    job.doc = text;
    job.mode = mode;
    if (srv_writer_run(c->w->app->writer, run_policy_change, &job, &err) != SRV_OK) {
        free(text);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, mode == SRV_PUT_CREATE ? 201 : 200, policy_entry(text, job.version, 0));
    free(text);
}

void api_admin_policy_create(api_call *c)
{
    put_rule(c, NULL, SRV_PUT_CREATE);
}

void api_admin_policy_update(api_call *c)
{
    put_rule(c, c->params[0], SRV_PUT_UPDATE);
}

void api_admin_policy_get(api_call *c)
{
    char *doc = NULL;
    int64_t version = 0;
    srv_error err;
    if (srv_db_policy_get(c->w->db, c->params[0], &doc, &version, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, policy_entry(doc, version, 0));
    free(doc);
}

void api_admin_policy_delete(api_call *c)
{
    policy_job job;
    cJSON *doc;
    srv_error err;
    memset(&job, 0, sizeof(job));
    job.c = c;
    job.name = c->params[0];
    if (srv_writer_run(c->w->app->writer, run_policy_change, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "deleted", c->params[0]);
    api_reply(c, 200, doc);
}

/* ---- groups ------------------------------------------------------------------------------- */

typedef struct {
    const api_call *c;
    const char *kind;
    const char *name;
    char *members; /* JSON array text; NULL to delete */
} group_job;

static srv_status run_group_change(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    group_job *j = ctx;
    cJSON *detail = cJSON_CreateObject();
    srv_status st = j->members
                        ? srv_db_group_put(db, j->kind, j->name, j->members, SRV_PUT_UPSERT, err)
                        : srv_db_group_delete(db, j->kind, j->name, err);
    cJSON_AddStringToObject(detail, "group", j->name);
    cJSON_AddStringToObject(detail, "kind", j->kind);
    if (j->members)
        cJSON_AddItemToObject(detail, "members", cJSON_Parse(j->members));
    if (st == SRV_OK)
        st = api_audit(j->c, db, audit, j->members ? "group.put" : "group.delete", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* A members array: 0-1024 valid names, no duplicates. */
static srv_status check_members(const cJSON *arr, const char *what, srv_error *err)
{
    size_t i = 0;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > 1024)
        return srv_fail(err, SRV_E_INVALID_FIELD, "%s must be an array of at most 1024 names",
                        what);
    for (const cJSON *m = arr->child; m; m = m->next, i++) {
        if (!cJSON_IsString(m) || !srv_valid_name(m->valuestring, SRV_NAME_MAX))
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "%s[%zu] must be a name of 1-64 characters of [A-Za-z0-9._-]", what, i);
        for (const cJSON *o = m->next; o; o = o->next)
            if (cJSON_IsString(o) && strcmp(o->valuestring, m->valuestring) == 0)
                return srv_fail(err, SRV_E_INVALID_FIELD, "%s lists \"%s\" twice", what,
                                m->valuestring);
    }
    return SRV_OK;
}

static void group_put(api_call *c, const char *kind)
{
    static const char *const fields[] = {"members", NULL};
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(c->body, "members");
    group_job job = {c, kind, c->params[0], NULL};
    cJSON *doc;
    srv_error err;
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        check_members(members, "members", &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    job.members = cJSON_PrintUnformatted(members);
    if (!job.members || srv_writer_run(c->w->app->writer, run_group_change, &job, &err) != SRV_OK) {
        if (!job.members)
            srv_fail(&err, SRV_E_NOMEM, "out of memory");
        free(job.members);
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", c->params[0]);
    cJSON_AddItemToObject(doc, "members", cJSON_Parse(job.members));
    free(job.members);
    api_reply(c, 200, doc);
}

static void group_delete(api_call *c, const char *kind)
{
    group_job job = {c, kind, c->params[0], NULL};
    cJSON *doc;
    srv_error err;
    if (srv_writer_run(c->w->app->writer, run_group_change, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "deleted", c->params[0]);
    api_reply(c, 200, doc);
}

static void group_entry(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddItemToObject(e, "members", cJSON_Parse(members));
    cJSON_AddNumberToObject(e, "updated_at", (double)updated_at);
    cJSON_AddItemToArray(ctx, e);
}

static void groups_list(api_call *c, const char *kind)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "groups");
    srv_error err;
    if (srv_db_groups_list(c->w->db, kind, group_entry, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

void api_admin_groups_list(api_call *c)
{
    groups_list(c, "user");
}

void api_admin_group_put(api_call *c)
{
    group_put(c, "user");
}

void api_admin_group_delete(api_call *c)
{
    group_delete(c, "user");
}

void api_admin_key_groups_list(api_call *c)
{
    groups_list(c, "key");
}

void api_admin_key_group_put(api_call *c)
{
    group_put(c, "key");
}

void api_admin_key_group_delete(api_call *c)
{
    group_delete(c, "key");
}

/* ---- the whole set: export and import ----------------------------------------------------- */

#define POLICY_SET_FORMAT "signum-policy-set/1"

static void export_rule(const char *name, int64_t version, const char *doc, int64_t updated_at,
                        void *ctx)
{
    (void)name;
    (void)version;
    (void)updated_at;
    cJSON_AddItemToArray(ctx, cJSON_Parse(doc));
}

static void export_group(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    (void)updated_at;
    cJSON_AddItemToObject(ctx, name, cJSON_Parse(members));
}

void api_admin_policy_set_export(api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *rules, *groups;
    srv_error err;
    cJSON_AddStringToObject(doc, "format", POLICY_SET_FORMAT);
    rules = cJSON_AddArrayToObject(doc, "policies");
    groups = cJSON_AddObjectToObject(doc, "groups");
    if (srv_db_policies_list(c->w->db, export_rule, rules, &err) != SRV_OK ||
        srv_db_groups_list(c->w->db, "user", export_group, cJSON_AddObjectToObject(groups, "users"),
                           &err) != SRV_OK ||
        srv_db_groups_list(c->w->db, "key", export_group, cJSON_AddObjectToObject(groups, "keys"),
                           &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

static void collect_name(const char *name, int64_t a, const char *b, int64_t d, void *ctx)
{
    (void)a;
    (void)b;
    (void)d;
    cJSON_AddItemToArray(ctx, cJSON_CreateString(name));
}

static void collect_group(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    (void)members;
    (void)updated_at;
    cJSON_AddItemToArray(ctx, cJSON_CreateString(name));
}

static srv_status replace_groups(srv_db *db, const char *kind, const cJSON *groups, srv_error *err)
{
    cJSON *old = cJSON_CreateArray();
    srv_status st = srv_db_groups_list(db, kind, collect_group, old, err);
    for (const cJSON *n = old->child; st == SRV_OK && n; n = n->next)
        st = srv_db_group_delete(db, kind, n->valuestring, err);
    cJSON_Delete(old);
    for (const cJSON *g = groups ? groups->child : NULL; st == SRV_OK && g; g = g->next) {
        char *text = cJSON_PrintUnformatted(g);
        st = text ? srv_db_group_put(db, kind, g->string, text, SRV_PUT_CREATE, err)
                  : srv_fail(err, SRV_E_NOMEM, "out of memory");
        free(text);
    }
    return st;
}

/* Replaces every rule and group in one transaction: the import lands whole or not at all. */
static srv_status run_import(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    policy_job *j = ctx;
    cJSON *old = cJSON_CreateArray(), *detail;
    srv_status st = srv_db_policies_list(db, collect_name, old, err);
    size_t n = 0;

    for (const cJSON *o = old->child; st == SRV_OK && o; o = o->next)
        st = srv_db_policy_delete(db, o->valuestring, err);
    cJSON_Delete(old);
    for (const cJSON *r = j->import_rules->child; st == SRV_OK && r; r = r->next, n++)
        st = srv_db_policy_put(db, cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring,
                               r->valuestring, SRV_PUT_CREATE, NULL, err);
    if (st == SRV_OK)
        st = replace_groups(db, "user", j->import_users, err);
    if (st == SRV_OK)
        st = replace_groups(db, "key", j->import_keys, err);
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddNumberToObject(detail, "policies", (double)n);
    cJSON_AddNumberToObject(detail, "user_groups",
                            j->import_users ? cJSON_GetArraySize(j->import_users) : 0);
    cJSON_AddNumberToObject(detail, "key_groups",
                            j->import_keys ? cJSON_GetArraySize(j->import_keys) : 0);
    st = api_audit(j->c, db, audit, "policy.import", detail, err);
    cJSON_Delete(detail);
    return st;
}

static srv_status check_group_map(const cJSON *map, const char *what, srv_error *err)
{
    if (!map)
        return SRV_OK;
    if (!cJSON_IsObject(map))
        return srv_fail(err, SRV_E_INVALID_FIELD, "%s must be an object of name: [members]", what);
    for (const cJSON *g = map->child; g; g = g->next) {
        char path[160];
        if (!srv_valid_name(g->string, SRV_NAME_MAX))
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "%s: group names are 1-64 characters of "
                            "[A-Za-z0-9._-]",
                            what);
        for (const cJSON *o = g->next; o; o = o->next)
            if (strcmp(o->string, g->string) == 0)
                return srv_fail(err, SRV_E_INVALID_FIELD, "%s names \"%s\" twice", what, g->string);
        snprintf(path, sizeof(path), "%s.%s", what, g->string);
        if (check_members(g, path, err) != SRV_OK)
            return err->status;
    }
    return SRV_OK;
}

void api_admin_policy_set_import(api_call *c)
{
    static const char *const fields[] = {"format", "policies", "groups", NULL};
    static const char *const group_fields[] = {"users", "keys", NULL};
    const char *format = NULL;
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(c->body, "policies");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(c->body, "groups");
    cJSON *texts = cJSON_CreateArray(), *doc;
    policy_job job;
    srv_error err;
    size_t i = 0;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "format", 0, 64, &format, &err) != SRV_OK)
        goto fail;
    if (format && strcmp(format, POLICY_SET_FORMAT) != 0) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "format must be \"%s\"", POLICY_SET_FORMAT);
        goto fail;
    }
    if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) > 1024) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "policies must be an array of at most 1024 rules");
        goto fail;
    }
    if (groups) {
        if (!cJSON_IsObject(groups) ||
            srv_json_check_fields(groups, group_fields, &err) != SRV_OK) {
            if (cJSON_IsObject(groups))
                goto fail;
            srv_fail(&err, SRV_E_INVALID_FIELD,
                     "groups must be {\"users\": {...}, \"keys\": {...}}");
            goto fail;
        }
        job.import_users = cJSON_GetObjectItemCaseSensitive(groups, "users");
        job.import_keys = cJSON_GetObjectItemCaseSensitive(groups, "keys");
        if (check_group_map(job.import_users, "groups.users", &err) != SRV_OK ||
            check_group_map(job.import_keys, "groups.keys", &err) != SRV_OK)
            goto fail;
    }
    /* Validate every rule first; store their canonical texts (a string item named by rule). */
    for (const cJSON *r = rules->child; r; r = r->next, i++) {
        char *text = NULL;
        srv_error inner;
        cJSON *item;
        if (validate_rule(r, NULL, &text, &inner) != SRV_OK) {
            srv_fail(&err, inner.status, "policies[%zu]: %s", i, inner.message);
            goto fail;
        }
        for (const cJSON *t = texts->child; t; t = t->next) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring,
                       cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring) == 0) {
                free(text);
                srv_fail(&err, SRV_E_INVALID_FIELD, "policies[%zu]: the name \"%s\" is used twice",
                         i, cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring);
                goto fail;
            }
        }
        item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name",
                                cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring);
        item->valuestring = text; /* the canonical text rides along, freed by cJSON_Delete */
        cJSON_AddItemToArray(texts, item);
    }
    job.c = c;
    job.import_rules = texts;
    if (srv_writer_run(c->w->app->writer, run_import, &job, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "imported_policies", (double)i);
    cJSON_AddNumberToObject(doc, "imported_user_groups",
                            job.import_users ? cJSON_GetArraySize(job.import_users) : 0);
    cJSON_AddNumberToObject(doc, "imported_key_groups",
                            job.import_keys ? cJSON_GetArraySize(job.import_keys) : 0);
    cJSON_Delete(texts);
    api_reply(c, 200, doc);
    return;
fail:
    cJSON_Delete(texts);
    api_reply_error(c, &err);
}

/* ---- explain ------------------------------------------------------------------------------ */

static const char *decision_word(policy_outcome o)
{
    return o == POLICY_ALLOWED             ? "allow"
           : o == POLICY_APPROVAL_REQUIRED ? "approval_required"
                                           : "deny";
}

void api_admin_policy_explain(api_call *c)
{
    static const char *const fields[] = {"user",        "key",  "machine",   "ip",
                                         "application", "time", "mechanism", "hash",
                                         "signatures",  NULL};
    const char *user_name = NULL, *key_name = NULL, *machine = NULL, *ip = NULL, *app = NULL,
               *mech = NULL, *hash = NULL;
    long long when = srv_now(), n = 1;
    policy_request req;
    srv_policy_eval ev;
    srv_user user;
    srv_key key;
    srv_error err;
    cJSON *doc, *q;
    int have_key = 0;

    memset(&ev, 0, sizeof(ev));
    memset(&key, 0, sizeof(key));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "user", 1, SRV_NAME_MAX, &user_name, &err) != SRV_OK ||
        srv_json_get_string(c->body, "key", 1, SRV_NAME_MAX, &key_name, &err) != SRV_OK ||
        srv_json_get_string(c->body, "machine", 0, SRV_NAME_MAX, &machine, &err) != SRV_OK ||
        srv_json_get_string(c->body, "ip", 0, 63, &ip, &err) != SRV_OK ||
        srv_json_get_string(c->body, "application", 0, 1024, &app, &err) != SRV_OK ||
        srv_json_get_int(c->body, "time", 0, 0, 253402300799LL, &when, &err) != SRV_OK ||
        srv_json_get_string(c->body, "mechanism", 0, 16, &mech, &err) != SRV_OK ||
        srv_json_get_string(c->body, "hash", 0, 16, &hash, &err) != SRV_OK ||
        srv_json_get_int(c->body, "signatures", 0, 1, API_MAX_BATCH, &n, &err) != SRV_OK ||
        srv_db_user_get(c->w->db, user_name, &user, &err) != SRV_OK ||
        srv_db_key_get(c->w->db, key_name, &key, &err) != SRV_OK)
        goto fail;
    have_key = 1;
    if (mech && sgc_mech_parse(mech) < 0) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "mechanism must be rsa-pkcs1, rsa-pss or ecdsa");
        goto fail;
    }
    if (hash && sgc_hash_parse(hash) < 0) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "hash must be sha256, sha384 or sha512");
        goto fail;
    }
    memset(&req, 0, sizeof(req));
    req.machine = machine;
    req.ip = ip;
    req.application = app;
    req.time = when;
    req.mechanism = mech ? mech : srv_key_type_is_rsa(key.type) ? "rsa-pkcs1" : "ecdsa";
    req.hash = hash ? hash : "sha256";
    req.signatures = n;
    if (srv_policy_decide(c->w->db, &user, &key, &req, &ev, &err) != SRV_OK)
        goto fail;

    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "decision", decision_word(ev.decision.outcome));
    cJSON_AddStringToObject(doc, "code",
                            ev.decision.outcome == POLICY_ALLOWED ||
                                    ev.decision.outcome == POLICY_APPROVAL_REQUIRED
                                ? policy_outcome_code(ev.decision.outcome)
                                : srv_status_code(srv_policy_status(ev.decision.outcome)));
    if (policy_decision_rule(&ev.decision))
        cJSON_AddStringToObject(doc, "rule", policy_decision_rule(&ev.decision));
    else
        cJSON_AddNullToObject(doc, "rule");
    cJSON_AddStringToObject(doc, "message", ev.decision.message);
    if (key.disabled)
        cJSON_AddStringToObject(doc, "note", "the key is disabled: signing fails regardless");
    q = cJSON_AddObjectToObject(doc, "request");
    cJSON_AddStringToObject(q, "user", user.name);
    cJSON_AddStringToObject(q, "kind", srv_user_kind_name(user.kind));
    cJSON_AddStringToObject(q, "key", key.name);
    if (machine)
        cJSON_AddStringToObject(q, "machine", machine);
    if (ip)
        cJSON_AddStringToObject(q, "ip", ip);
    if (app)
        cJSON_AddStringToObject(q, "application", app);
    cJSON_AddNumberToObject(q, "time", (double)when);
    cJSON_AddStringToObject(q, "mechanism", req.mechanism);
    cJSON_AddStringToObject(q, "hash", req.hash);
    cJSON_AddNumberToObject(q, "signatures", (double)n);
    if (key.project[0])
        cJSON_AddStringToObject(q, "project", key.project);
    cJSON_AddBoolToObject(q, "granted", ev.req.granted == POLICY_GRANT_DIRECT);
    cJSON_AddBoolToObject(q, "project_signer", ev.req.granted == POLICY_GRANT_PROJECT);
    srv_policy_eval_clear(&ev);
    srv_key_clear(&key);
    api_reply(c, 200, doc);
    return;
fail:
    srv_policy_eval_clear(&ev);
    if (have_key)
        srv_key_clear(&key);
    api_reply_error(c, &err);
}
