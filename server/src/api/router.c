/* Routing: the route table, who may call each route (authentication in authn.c), body checks,
 * and the dispatch to the handlers; replies and the one error path are in reply.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../audit/denials.h"
#include "../auth/credentials.h"
#include "../common/b64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../store/usage_db.h"
#include "api.h"
#include "internal.h"

/* AUTH_KEY_ADMIN, AUTH_PROJECT_ADMIN: a global admin, or the admin of the project of the key
 * (or of the project) named first in the path. */
typedef enum { AUTH_NONE, AUTH_USER, AUTH_ADMIN, AUTH_KEY_ADMIN, AUTH_PROJECT_ADMIN } auth_level;

/* /metrics: the API's counters, then the HTTPS front end's (connections, caps, deadlines). */
static void metrics_with_http(api_call *c)
{
    char *http = NULL, *joined = NULL;
    api_metrics(c);
    if (c->ex->status != 200 || !c->ex->response || !(http = srv_http_metrics()))
        goto out;
    if (asprintf(&joined, "%s%s", c->ex->response, http) < 0)
        goto out;
    free(c->ex->response);
    c->ex->response = joined;
    c->ex->response_len = strlen(joined);
out:
    free(http);
}

typedef struct {
    srv_http_method method;
    const char *pattern; /* '*' matches one path segment that must be a valid name */
    auth_level auth;
    size_t body_cap;    /* 0: the route takes no body */
    const char *action; /* audit action */
    void (*fn)(api_call *c);
} route;

static const route routes[] = {
    {SRV_HTTP_GET, "/healthz", AUTH_NONE, 0, "health", api_healthz},
    /* The load balancer's probes; http.c answers /healthz/live itself, and /healthz/ready
     * too once the node drains (cmd_serve.c). */
    {SRV_HTTP_GET, "/healthz/ready", AUTH_NONE, 0, "health", api_healthz},
    {SRV_HTTP_GET, "/healthz/live", AUTH_NONE, 0, "health", api_healthz_live},
    {SRV_HTTP_GET, "/metrics", AUTH_NONE, 0, "metrics", metrics_with_http},
    {SRV_HTTP_GET, "/api/v1/ca", AUTH_NONE, 0, "ca.get", api_ca},
    {SRV_HTTP_GET, SRV_CRL_PATH, AUTH_NONE, 0, "ca.crl", api_crl},
    /* RFC 3161: a DER body, checked by the handler (tsa = token authenticates there). */
    {SRV_HTTP_POST, "/tsa", AUTH_NONE, 0, "tsa.timestamp", api_tsa},
    {SRV_HTTP_GET, "/api/v1/tsa", AUTH_NONE, 0, "tsa.get", api_tsa_info},
    {SRV_HTTP_POST, "/api/v1/auth/token", AUTH_NONE, API_BODY_CAP, "auth.token", api_token},
    {SRV_HTTP_POST, "/api/v1/enroll/service-account", AUTH_NONE, API_BODY_CAP,
     "service_account.enroll", api_enroll_service_account},
    {SRV_HTTP_POST, "/api/v1/enroll/machine", AUTH_NONE, API_BODY_CAP, "machine.enroll",
     api_enroll_machine},
    {SRV_HTTP_GET, "/api/v1/keys", AUTH_USER, 0, "keys.list", api_keys_list},
    {SRV_HTTP_POST, "/api/v1/sign", AUTH_USER, API_SIGN_BODY_CAP, "sign", api_sign},
    {SRV_HTTP_POST, "/api/v1/sign/jobs", AUTH_USER, API_JOB_BODY_CAP, "sign.job.submit",
     api_sign_job_create},
    {SRV_HTTP_GET, "/api/v1/sign/jobs/*", AUTH_USER, 0, "sign.job.get", api_sign_job_get},
    {SRV_HTTP_GET, "/api/v1/admin/users", AUTH_ADMIN, 0, "user.list", api_admin_users_list},
    {SRV_HTTP_POST, "/api/v1/admin/users", AUTH_ADMIN, API_BODY_CAP, "user.create",
     api_admin_users_create},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/api-keys", AUTH_ADMIN, 0, "apikey.create",
     api_admin_apikey_create},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/revoke-tokens", AUTH_ADMIN, API_BODY_CAP,
     "user.revoke_tokens", api_admin_revoke_tokens},
    {SRV_HTTP_GET, "/api/v1/admin/users/*", AUTH_ADMIN, 0, "user.get", api_admin_user_get},
    {SRV_HTTP_DELETE, "/api/v1/admin/users/*", AUTH_ADMIN, API_BODY_CAP, "user.delete",
     api_admin_user_delete},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/disable", AUTH_ADMIN, API_BODY_CAP, "user.disable",
     api_admin_user_disable},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/enable", AUTH_ADMIN, API_BODY_CAP, "user.enable",
     api_admin_user_enable},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/totp/reset", AUTH_ADMIN, API_BODY_CAP, "user.totp_reset",
     api_admin_user_totp_reset},
    {SRV_HTTP_GET, "/api/v1/admin/users/*/api-keys", AUTH_ADMIN, 0, "apikey.list",
     api_admin_apikeys_list},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/api-keys/revoke-all", AUTH_ADMIN, API_BODY_CAP,
     "apikey.revoke_all", api_admin_apikeys_revoke_all},
    {SRV_HTTP_POST, "/api/v1/admin/users/*/api-keys/*/revoke", AUTH_ADMIN, API_BODY_CAP,
     "apikey.revoke", api_admin_apikey_revoke},
    {SRV_HTTP_GET, "/api/v1/admin/service-accounts", AUTH_ADMIN, 0, "service_account.list",
     api_admin_sa_list},
    {SRV_HTTP_GET, "/api/v1/admin/service-accounts/*", AUTH_ADMIN, 0, "service_account.get",
     api_admin_sa_get},
    {SRV_HTTP_DELETE, "/api/v1/admin/service-accounts/*", AUTH_ADMIN, API_BODY_CAP,
     "service_account.delete", api_admin_sa_delete},
    {SRV_HTTP_POST, "/api/v1/admin/service-accounts/*/disable", AUTH_ADMIN, API_BODY_CAP,
     "service_account.disable", api_admin_sa_disable},
    {SRV_HTTP_POST, "/api/v1/admin/service-accounts/*/enable", AUTH_ADMIN, API_BODY_CAP,
     "service_account.enable", api_admin_sa_enable},
    {SRV_HTTP_GET, "/api/v1/admin/service-accounts/*/keys", AUTH_ADMIN, 0, "service_account.keys",
     api_admin_sakeys_list},
    {SRV_HTTP_POST, "/api/v1/admin/service-accounts/*/keys/*/revoke", AUTH_ADMIN, API_BODY_CAP,
     "service_account.key_revoke", api_admin_sakey_revoke},
    {SRV_HTTP_POST, "/api/v1/admin/service-accounts", AUTH_ADMIN, API_BODY_CAP,
     "service_account.create", api_admin_service_account_create},
    {SRV_HTTP_POST, "/api/v1/admin/service-accounts/*/enrollment-tokens", AUTH_ADMIN, 0,
     "service_account.enrollment_token", api_admin_service_account_token},
    {SRV_HTTP_GET, "/api/v1/admin/machines", AUTH_ADMIN, 0, "machine.list",
     api_admin_machines_list},
    {SRV_HTTP_POST, "/api/v1/admin/machines", AUTH_ADMIN, API_BODY_CAP, "machine.create",
     api_admin_machine_create},
    {SRV_HTTP_POST, "/api/v1/admin/machines/*/enrollment-tokens", AUTH_ADMIN, 0,
     "machine.enrollment_token", api_admin_machine_token},
    {SRV_HTTP_POST, "/api/v1/admin/machines/*/revoke", AUTH_ADMIN, API_BODY_CAP, "machine.revoke",
     api_admin_machine_revoke},
    {SRV_HTTP_POST, "/api/v1/admin/machines/*/enable", AUTH_ADMIN, API_BODY_CAP, "machine.enable",
     api_admin_machine_enable},
    {SRV_HTTP_GET, "/api/v1/admin/keys", AUTH_ADMIN, 0, "key.list", api_admin_keys_list},
    /* Global admins, or project admins creating in their project (the handler checks). */
    {SRV_HTTP_POST, "/api/v1/admin/keys", AUTH_USER, API_BODY_CAP, "key.create",
     api_admin_keys_create},
    {SRV_HTTP_GET, "/api/v1/admin/keys/*", AUTH_KEY_ADMIN, 0, "key.get", api_admin_key_get},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/certificate", AUTH_KEY_ADMIN, API_BODY_CAP,
     "certificate.issue", api_admin_cert_issue},
    {SRV_HTTP_PUT, "/api/v1/admin/keys/*/certificate", AUTH_KEY_ADMIN, API_CHAIN_BODY_CAP,
     "certificate.import", api_admin_cert_import},
    {SRV_HTTP_PUT, "/api/v1/admin/keys/*/usage-limit", AUTH_KEY_ADMIN, API_BODY_CAP,
     "key.usage_limit", api_admin_key_usage_limit},
    {SRV_HTTP_GET, "/api/v1/admin/usage", AUTH_USER, 0, "usage.read", api_admin_usage},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/rotate", AUTH_KEY_ADMIN, API_BODY_CAP, "key.rotate",
     api_admin_key_rotate},
    {SRV_HTTP_GET, "/api/v1/admin/keys/*/versions", AUTH_KEY_ADMIN, 0, "key.versions",
     api_admin_key_versions},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/versions/*/retire", AUTH_KEY_ADMIN, API_BODY_CAP,
     "key.retire", api_admin_key_retire},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/suspend", AUTH_KEY_ADMIN, API_BODY_CAP, "key.suspend",
     api_admin_key_suspend},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/enable", AUTH_KEY_ADMIN, API_BODY_CAP, "key.enable",
     api_admin_key_enable},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/certificate/revoke", AUTH_KEY_ADMIN, API_BODY_CAP,
     "certificate.revoke", api_admin_cert_revoke},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/csr", AUTH_KEY_ADMIN, API_BODY_CAP, "csr.create",
     api_admin_csr},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/grants", AUTH_ADMIN, API_BODY_CAP, "key.grant",
     api_admin_grant},
    {SRV_HTTP_POST, "/api/v1/admin/keys/*/disable", AUTH_KEY_ADMIN, API_BODY_CAP, "key.disable",
     api_admin_disable},
    {SRV_HTTP_GET, "/api/v1/admin/keys/*/grants", AUTH_ADMIN, 0, "key.grants",
     api_admin_grants_list},
    {SRV_HTTP_DELETE, "/api/v1/admin/keys/*/grants/*", AUTH_ADMIN, API_BODY_CAP, "key.ungrant",
     api_admin_grant_remove},
    {SRV_HTTP_PUT, "/api/v1/admin/keys/*/project", AUTH_ADMIN, API_BODY_CAP, "key.project",
     api_key_project_set},
    /* Projects (projects.c). */
    {SRV_HTTP_GET, "/api/v1/admin/projects", AUTH_USER, 0, "project.list", api_projects_list},
    {SRV_HTTP_POST, "/api/v1/admin/projects", AUTH_ADMIN, API_BODY_CAP, "project.create",
     api_project_create},
    {SRV_HTTP_GET, "/api/v1/admin/projects/*", AUTH_PROJECT_ADMIN, 0, "project.get",
     api_project_get},
    {SRV_HTTP_DELETE, "/api/v1/admin/projects/*", AUTH_ADMIN, API_BODY_CAP, "project.delete",
     api_project_delete},
    {SRV_HTTP_POST, "/api/v1/admin/projects/*/members", AUTH_PROJECT_ADMIN, API_BODY_CAP,
     "project.member_add", api_project_member_add},
    {SRV_HTTP_POST, "/api/v1/admin/projects/*/members/remove", AUTH_PROJECT_ADMIN, API_BODY_CAP,
     "project.member_remove", api_project_member_remove},
    /* Audit and usage: global admins, or project admins filtering on their project. */
    {SRV_HTTP_GET, "/api/v1/admin/audit", AUTH_USER, 0, "audit.read", api_admin_audit},
    {SRV_HTTP_GET, "/api/v1/admin/audit/status", AUTH_ADMIN, 0, "audit.status",
     api_admin_audit_status},
    {SRV_HTTP_GET, "/api/v1/admin/alerts", AUTH_ADMIN, 0, "alert.list", api_admin_alerts},
    /* Policy engine and approvals (policies.c, approvals.c). */
    {SRV_HTTP_GET, "/api/v1/admin/policies", AUTH_ADMIN, 0, "policy.list", api_admin_policies_list},
    {SRV_HTTP_POST, "/api/v1/admin/policies", AUTH_ADMIN, API_BODY_CAP, "policy.create",
     api_admin_policy_create},
    {SRV_HTTP_POST, "/api/v1/admin/policies/explain", AUTH_ADMIN, API_BODY_CAP, "policy.explain",
     api_admin_policy_explain},
    {SRV_HTTP_GET, "/api/v1/admin/policies/*", AUTH_ADMIN, 0, "policy.get", api_admin_policy_get},
    {SRV_HTTP_GET, "/api/v1/admin/policies/*/versions", AUTH_ADMIN, 0, "policy.versions",
     api_admin_policy_versions},
    {SRV_HTTP_PUT, "/api/v1/admin/policies/*", AUTH_ADMIN, API_BODY_CAP, "policy.update",
     api_admin_policy_update},
    {SRV_HTTP_DELETE, "/api/v1/admin/policies/*", AUTH_ADMIN, 0, "policy.delete",
     api_admin_policy_delete},
    {SRV_HTTP_GET, "/api/v1/admin/policy-set", AUTH_ADMIN, 0, "policy.export",
     api_admin_policy_set_export},
    {SRV_HTTP_PUT, "/api/v1/admin/policy-set", AUTH_ADMIN, API_CHAIN_BODY_CAP, "policy.import",
     api_admin_policy_set_import},
    {SRV_HTTP_GET, "/api/v1/admin/groups", AUTH_ADMIN, 0, "group.list", api_admin_groups_list},
    {SRV_HTTP_PUT, "/api/v1/admin/groups/*", AUTH_ADMIN, API_BODY_CAP, "group.put",
     api_admin_group_put},
    {SRV_HTTP_DELETE, "/api/v1/admin/groups/*", AUTH_ADMIN, 0, "group.delete",
     api_admin_group_delete},
    {SRV_HTTP_GET, "/api/v1/admin/key-groups", AUTH_ADMIN, 0, "key_group.list",
     api_admin_key_groups_list},
    {SRV_HTTP_PUT, "/api/v1/admin/key-groups/*", AUTH_ADMIN, API_BODY_CAP, "key_group.put",
     api_admin_key_group_put},
    {SRV_HTTP_DELETE, "/api/v1/admin/key-groups/*", AUTH_ADMIN, 0, "key_group.delete",
     api_admin_key_group_delete},
    {SRV_HTTP_GET, "/api/v1/approvals", AUTH_USER, 0, "approval.list", api_approvals_list},
    {SRV_HTTP_POST, "/api/v1/approvals/*/approve", AUTH_USER, 0, "approval.approve",
     api_approval_approve},
    {SRV_HTTP_POST, "/api/v1/approvals/*/reject", AUTH_USER, API_BODY_CAP, "approval.reject",
     api_approval_reject},
    {SRV_HTTP_GET, "/api/v1/sign/requests/*", AUTH_USER, 0, "sign.poll", api_sign_request_poll},
    {SRV_HTTP_GET, "/api/v1/sign/requests", AUTH_USER, 0, "sign.requests", api_sign_requests_mine},
    {SRV_HTTP_GET, "/api/v1/usage", AUTH_USER, 0, "usage.mine", api_usage_mine},
    {SRV_HTTP_GET, "/api/v1/admin/usage/hourly", AUTH_ADMIN, 0, "usage.hourly",
     api_admin_usage_hourly},
    /* The web console (console/): its files, and its sessions in a cookie. */
    {SRV_HTTP_GET, "/console", AUTH_NONE, 0, "console.file", api_console_asset},
    {SRV_HTTP_GET, "/console/", AUTH_NONE, 0, "console.file", api_console_asset},
    {SRV_HTTP_GET, "/console/*", AUTH_NONE, 0, "console.file", api_console_asset},
    {SRV_HTTP_POST, "/console/api/login", AUTH_NONE, API_BODY_CAP, "console.login",
     api_console_login},
    {SRV_HTTP_POST, "/console/api/totp/confirm", AUTH_NONE, API_BODY_CAP, "console.totp_confirm",
     api_console_totp_confirm},
    {SRV_HTTP_POST, "/console/api/logout", AUTH_USER, 0, "console.logout", api_console_logout},
    {SRV_HTTP_GET, "/console/api/session", AUTH_USER, 0, "console.session", api_console_session},
};

void *srv_api_worker_init(void *app)
{
    srv_app *a = app;
    srv_worker *w = calloc(1, sizeof(*w));
    srv_error err;
    if (!w)
        return NULL;
    w->app = a;
    if (srv_db_open(a->cfg.database, 0, &w->db, &err) != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "db", "worker cannot open the database: %s", err.message);
        free(w);
        return NULL;
    }
    return w;
}

void srv_api_worker_fini(void *worker)
{
    srv_worker *w = worker;
    srv_db_close(w->db);
    free(w);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* Matches path against pattern; stores '*' segments in params (bounded). */
static int match(const char *pattern, const char *path, char params[2][SRV_NAME_MAX + 2])
{
    unsigned np = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (np >= 2)
                return 0;
            /* Keep one byte past the limit so an over-long name is caught as invalid. */
            snprintf(params[np], SRV_NAME_MAX + 2, "%.*s",
                     (int)(n > SRV_NAME_MAX + 1 ? SRV_NAME_MAX + 1 : n), path);
            if (n == 0)
                return 0;
            np++;
            pattern++;
            path += n;
        } else if (*pattern == *path) {
            pattern++;
            path++;
        } else {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

static int is_json(const char *content_type)
{
    size_t n = strlen("application/json");
    if (!content_type || strncasecmp(content_type, "application/json", n) != 0)
        return 0;
    return content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ';
}

void srv_api_handle(void *worker, srv_http_exchange *ex)
{
    char params[2][SRV_NAME_MAX + 2];
    const route *r = NULL;
    int path_known = 0;
    api_call c;
    srv_error err;
    srv_status st;
    size_t i;

    memset(&c, 0, sizeof(c));
    memset(params, 0, sizeof(params));
    c.w = worker;
    c.ex = ex;
    snprintf(c.actor, sizeof(c.actor), "anonymous");
    atomic_fetch_add(&c.w->app->requests, 1);

    if (!srv_utf8_valid(ex->path, strlen(ex->path))) {
        /* Keep the raw bytes out of the audit log, which must stay valid UTF-8 JSON. */
        ex->path[0] = '\0';
        srv_fail(&err, SRV_E_NOT_FOUND, "the request path is not valid UTF-8");
        api_deny(&c, &err, NULL);
        return;
    }
    /* The request's lookups (machine, token, route, and for signing the key and policy) read
     * one snapshot; it ends before the handler runs, or for signing before the HSM. */
    srv_db_read_begin(c.w->db);
    if (api_identify_machine(&c, &err) != SRV_OK) {
        cJSON *detail = cJSON_CreateObject();
        char hex[2 * SRV_SHA256_LEN + 1];
        srv_hex_encode(ex->peer_cert_sha256, SRV_SHA256_LEN, hex);
        if (detail)
            cJSON_AddStringToObject(detail, "client_certificate_sha256", hex);
        api_deny(&c, &err, detail);
        return;
    }
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char p[2][SRV_NAME_MAX + 2];
        memset(p, 0, sizeof(p));
        if (!match(routes[i].pattern, ex->path, p))
            continue;
        path_known = 1;
        if (routes[i].method == ex->method) {
            r = &routes[i];
            memcpy(params, p, sizeof(p));
            break;
        }
    }
    if (!r) {
        srv_fail(&err, path_known ? SRV_E_METHOD : SRV_E_NOT_FOUND,
                 path_known ? "method not allowed on this resource" : "no such resource");
        api_deny(&c, &err, NULL);
        return;
    }
    c.action = r->action;
    c.params[0] = params[0];
    c.params[1] = params[1];
    for (i = 0; i < 2; i++) {
        if (params[i][0] && !srv_valid_name(params[i], SRV_NAME_MAX)) {
            srv_fail(&err, SRV_E_INVALID_FIELD,
                     "names in the path must be 1-64 characters of [A-Za-z0-9._-]");
            api_deny(&c, &err, NULL);
            return;
        }
    }

    if (r->auth != AUTH_NONE) {
        uint64_t t0 = srv_phase_now();
        st = api_authenticate(&c, &err);
        ex->phase_ns[SRV_PHASE_AUTH] += srv_phase_now() - t0;
        if (st != SRV_OK) {
            api_deny(&c, &err, NULL);
            return;
        }
        if (r->auth == AUTH_ADMIN && c.user.role != SRV_ROLE_ADMIN) {
            srv_fail(&err, SRV_E_FORBIDDEN, "this call needs the admin role");
            api_deny(&c, &err, NULL);
            return;
        }
        if ((r->auth == AUTH_KEY_ADMIN || r->auth == AUTH_PROJECT_ADMIN) &&
            api_project_scope(&c, r->auth == AUTH_KEY_ADMIN, params[0], &err) != SRV_OK) {
            api_deny(&c, &err, NULL);
            return;
        }
    }

    if (r->body_cap && r->fn == api_approval_reject && ex->body_len == 0) {
        /* No body at all: the reject handler answers reason_required itself. */
    } else if (r->body_cap) {
        if (!is_json(ex->content_type)) {
            srv_fail(&err, SRV_E_CONTENT_TYPE, "Content-Type must be application/json");
            api_deny(&c, &err, NULL);
            return;
        }
        uint64_t t0 = srv_phase_now();
        st = srv_json_parse_object(ex->body, ex->body_len, r->body_cap, &c.body, &err);
        ex->phase_ns[SRV_PHASE_PARSE] += srv_phase_now() - t0;
        if (st != SRV_OK) {
            api_deny(&c, &err, NULL);
            return;
        }
    } else if (ex->body_len > 0 && ex->method != SRV_HTTP_GET && r->fn != api_tsa) {
        /* A body where none is expected is refused rather than ignored. */
        if (!(ex->body_len == 2 && memcmp(ex->body, "{}", 2) == 0)) {
            srv_fail(&err, SRV_E_INVALID_FIELD, "this call takes no request body");
            api_deny(&c, &err, NULL);
            return;
        }
    }

    if (r->fn != api_sign && r->fn != api_sign_job_create)
        srv_db_read_end(c.w->db);
    r->fn(&c);
    srv_db_read_end(c.w->db);
    api_json_wipe(c.body);
    cJSON_Delete(c.body);
}
