/* Shared by the API's handler files: the per-request context and reply helpers. */
#ifndef SRV_API_INTERNAL_H
#define SRV_API_INTERNAL_H

#include <cjson/cJSON.h>

#include "app.h"
#include "../common/json.h"
#include "../auth/credentials.h"
#include "../http/http.h"
#include "../policy/decision.h"
#include "../policy/policy.h"
#include "../store/policy_db.h"

/* API caps on request bodies (the transport cap in the config is higher). */
#define API_BODY_CAP       (64 * 1024)
#define API_CHAIN_BODY_CAP (256 * 1024)
#define API_SIGN_BODY_CAP  (768 * 1024) /* room for a provenance envelope: see api_sign_handle */
#define API_MAX_BATCH      64
/* A signing job: its digests, and a body cap to carry them (the transport's max_body, 1 MiB
 * by default, still applies: 20000 SHA-256 digests fit in it, SHA-512 need 2 MiB). */
#define API_JOB_MAX_DIGESTS 20000
#define API_JOB_BODY_CAP    (4 * 1024 * 1024)

/* Where the built-in CA's CRL is served, under the server's public URL. */
#define SRV_CRL_PATH "/api/v1/crl"

typedef struct {
    srv_worker *w;
    srv_http_exchange *ex;
    const char *action;    /* the route's audit action, e.g. "sign" */
    const char *params[2]; /* path parameters */
    int authenticated;
    /* SHA-256 of the access token the request came with, kept to look at it again where
     * commits are serialised (api_caller_current). */
    uint8_t token_hash[32];
    srv_user user;
    char actor[96]; /* "user:alice", "service:ci-release" or "anonymous" */
    cJSON *body;    /* parsed JSON body when the route takes one */
    /* The enrolled machine whose verified client certificate the request came with (mTLS);
     * machine_id 0 if none. A fact every audit record of the request carries. */
    int64_t machine_id;
    char machine[SRV_NAME_MAX + 1];
    /* The key a sign request named, once found: a refusal then counts as its denial. */
    int64_t usage_key_id;
    /* The project of the key the request is about (a sign request's, or the key of an
     * administrative call), once known: every audit record of the request names it. */
    char project[SRV_NAME_MAX + 1];
    /* Allowed in as the admin of that project, not as a global admin. */
    int project_admin;
} api_call;

/* Sends a JSON reply; takes ownership of `doc`. */
void api_reply(api_call *c, int status, cJSON *doc);
/* Sends a JSON error and appends a denial record to the audit log before it leaves. */
void api_reply_error(api_call *c, const srv_error *err);
/* Same, for errors before a handler ran; detail may add fields to the denial record. */
void api_deny(api_call *c, const srv_error *err, cJSON *detail);

/* Authenticates the bearer token (or console session cookie) on the request into c->user
 * (authn.c). */
srv_status api_authenticate(api_call *c, srv_error *err);
/* Maps a verified client certificate to its enrolled machine (c->machine_id); any other
 * certificate is refused. */
srv_status api_identify_machine(api_call *c, srv_error *err);
/* The "reason" an administrative change must give (1-API_REASON_MAX characters, not empty),
 * for its audit record (reply.c). */
#define API_REASON_MAX 512
srv_status api_get_reason(const cJSON *body, const char **reason, srv_error *err);
/* A body that is {"reason": "..."} and nothing else: the calls that only take a reason. */
srv_status api_reason_only(const cJSON *body, const char **reason, srv_error *err);
/* Wipes every string of a JSON tree before it is freed (reply.c). */
void api_json_wipe(cJSON *item);

/* Adds the request's method, path, peer address and machine to a detail object. */
void api_add_request_detail(api_call *c, cJSON *detail);
/* Adds "machine" (the verified mTLS identity) and "project" (of the key the request is about)
 * to a detail object, when the request has them. */
void api_add_machine(const api_call *c, cJSON *detail);
/* Sets c->actor from c->user: "user:NAME" or "service:NAME". */
void api_set_actor(api_call *c);
/* Appends an audit record by the caller (inside a writer job); adds the machine to detail. */
srv_status api_audit(const api_call *c, srv_db *db, srv_audit_head *audit, const char *action,
                     cJSON *detail, srv_error *err);
/* Replies 200 with `doc` and a strong ETag over its text, or an empty 304 when the request's
 * If-None-Match holds that tag. Takes ownership of `doc`. */
void api_reply_cacheable(api_call *c, cJSON *doc);

/* Handlers. */
void api_token(api_call *c);
void api_keys_list(api_call *c);
void api_sign(api_call *c);
void api_admin_users_list(api_call *c);
void api_admin_users_create(api_call *c);
void api_admin_apikey_create(api_call *c);
void api_admin_user_get(api_call *c);
void api_admin_user_disable(api_call *c);
void api_admin_user_enable(api_call *c);
void api_admin_user_delete(api_call *c);
void api_admin_apikeys_list(api_call *c);
void api_admin_apikey_revoke(api_call *c);
void api_admin_apikeys_revoke_all(api_call *c);
void api_admin_sa_list(api_call *c);
void api_admin_sa_get(api_call *c);
void api_admin_sa_disable(api_call *c);
void api_admin_sa_enable(api_call *c);
void api_admin_sa_delete(api_call *c);
void api_admin_sakeys_list(api_call *c);
void api_admin_sakey_revoke(api_call *c);
void api_admin_keys_list(api_call *c);
void api_admin_keys_create(api_call *c);
void api_admin_key_get(api_call *c);
void api_admin_cert_issue(api_call *c);
void api_admin_cert_import(api_call *c);
void api_admin_csr(api_call *c);
void api_admin_grant(api_call *c);
void api_admin_disable(api_call *c);
void api_admin_audit(api_call *c);
void api_admin_revoke_tokens(api_call *c);
void api_admin_service_account_create(api_call *c);
void api_admin_service_account_token(api_call *c);
void api_admin_machines_list(api_call *c);
void api_admin_machine_create(api_call *c);
void api_admin_machine_token(api_call *c);
void api_admin_machine_revoke(api_call *c);
void api_admin_machine_enable(api_call *c);
void api_enroll_service_account(api_call *c);
void api_enroll_machine(api_call *c);
void api_healthz(api_call *c);
void api_healthz_live(api_call *c);
void api_metrics(api_call *c);
void api_ca(api_call *c);
void api_crl(api_call *c);
void api_tsa(api_call *c);
void api_tsa_info(api_call *c);
void api_admin_cert_revoke(api_call *c);
void api_admin_key_suspend(api_call *c);
void api_admin_key_enable(api_call *c);
void api_admin_key_rotate(api_call *c);
void api_admin_key_versions(api_call *c);
void api_admin_key_retire(api_call *c);
void api_admin_usage(api_call *c);
void api_admin_key_usage_limit(api_call *c);

void api_admin_policies_list(api_call *c);
void api_admin_policy_create(api_call *c);
void api_admin_policy_get(api_call *c);
void api_admin_policy_update(api_call *c);
void api_admin_policy_delete(api_call *c);
void api_admin_policy_set_export(api_call *c);
void api_admin_policy_set_import(api_call *c);
void api_admin_policy_explain(api_call *c);
void api_admin_groups_list(api_call *c);
void api_admin_group_put(api_call *c);
void api_admin_group_delete(api_call *c);
void api_admin_key_groups_list(api_call *c);
void api_admin_key_group_put(api_call *c);
void api_admin_key_group_delete(api_call *c);
void api_approvals_list(api_call *c);
void api_approval_approve(api_call *c);
void api_approval_reject(api_call *c);
void api_sign_request_poll(api_call *c);
void api_sign_job_create(api_call *c);
void api_sign_job_get(api_call *c);
void api_projects_list(api_call *c);
void api_admin_policy_versions(api_call *c);
void api_sign_requests_mine(api_call *c);
void api_usage_mine(api_call *c);
void api_admin_usage_hourly(api_call *c);
void api_admin_audit_status(api_call *c);
void api_admin_alerts(api_call *c);
void api_project_create(api_call *c);
void api_project_get(api_call *c);
void api_project_delete(api_call *c);
void api_project_member_add(api_call *c);
void api_project_member_remove(api_call *c);
void api_key_project_set(api_call *c);
void api_admin_grants_list(api_call *c);
void api_admin_grant_remove(api_call *c);

/* Checks a presented API key (token.c): its owner into c->user, its prefix into prefix (and
 * into deny, when given, for the denial record). SRV_E_BAD_CREDENTIALS when it is not good. */
srv_status api_check_api_key(api_call *c, const char *key, char prefix[SRV_APIKEY_PREFIX_LEN + 1],
                             cJSON *deny, srv_error *err);
/* The web console's handlers (console/): GET /console, /console/ (index.html) and
 * /console/{file}; its login, TOTP confirmation, logout and session; POST
 * /api/v1/admin/users/{name}/totp/reset. */
void api_console_asset(api_call *c);
void api_console_login(api_call *c);
void api_console_totp_confirm(api_call *c);
void api_console_logout(api_call *c);
void api_console_session(api_call *c);
void api_admin_user_totp_reset(api_call *c);
/* The session token in the request's cookie, if any (token must hold SRV_TOKEN_TEXT_MAX + 1). */
int api_console_cookie_token(const api_call *c, char *token);
/* After the token (hash) was found good as an access token: that it is a console session,
 * not idle for too long, and for a call other than GET that the request carries its CSRF
 * token. Records the session's use. */
/* Whether the caller authenticated earlier in this request still may act: its token is
 * still known and unrevoked, its user still enabled and its machine (mTLS) still enrolled.
 * Called where commits are serialised, so that once a disable or revocation has committed
 * nothing it forbids is handed out by a request that was already past authentication. */
srv_status api_caller_current(api_call *c, srv_db *db, srv_error *err);
/* The part of api_caller_current that outlives the token: the user still enabled, the
 * machine (machine_id, 0 for none) still enrolled; a signing job's chunks commit under it. */
srv_status api_principal_current(srv_db *db, int64_t user_id, int64_t machine_id, srv_error *err);
srv_status api_console_authenticate(api_call *c, const uint8_t hash[32], const char *token,
                                    srv_error *err);
/* Inside the transaction that stores a new access token (hash, already inserted): its user is
 * still enabled and the credential it is minted from (an API key by prefix, or an enrolled
 * key by kid) still good; the token remembers it, so revoking it revokes the token (token.c).
 * SRV_E_BAD_CREDENTIALS otherwise. */
srv_status api_token_source_check(srv_db *db, int64_t user_id, const char *api_key_prefix,
                                  const char *kid, const uint8_t token_hash[32], srv_error *err);
/* Checks c->user's one-time code (console/session.c): totp_required without one, locked
 * after repeated failures (too_many_attempts), a code used once only (totp_replayed). A
 * failure is counted and audited. */
srv_status api_totp_check(api_call *c, const char *code, srv_error *err);

/* Whether the caller may act on the key (by_key) or project named: a global admin always
 * (the handler then answers for an unknown name), else the admin of that project
 * (c->project_admin set). Sets c->project when the project is known. */
srv_status api_project_scope(api_call *c, int by_key, const char *name, srv_error *err);
/* A global admin, or (project non-NULL) the admin of that project. */
srv_status api_require_admin_or_project(api_call *c, const char *project, srv_error *err);

/* Signs a request that its approvers approved (sign.c); replies to c. */
void api_sign_approved(api_call *c, const srv_approval *a);

/* Query parameters (query.c). A parameter given twice is refused. */
#define API_QUERY_VALUE_MAX 160
/* Plain decimal digits: dflt when absent, values over clamp_max lowered to it; anything else
 * (sign, junk, empty, out of [min, max]) is invalid_field naming it. */
srv_status api_query_int(const char *query, const char *name, long long dflt, long long min,
                         long long max, long long clamp_max, long long *out, srv_error *err);
/* Percent-decoded ('+' a space) into out (API_QUERY_VALUE_MAX + 1 bytes): 1 to
 * API_QUERY_VALUE_MAX bytes of UTF-8 without control characters; *value NULL when absent. */
srv_status api_query_text(const char *query, const char *name, char *out, const char **value,
                          srv_error *err);

/* A code-signing certificate from the built-in CA for the public key spki, naming this
 * server's CRL as its distribution point (admin.c); the caller frees *out (X509_free). */
struct x509_st;
srv_status api_issue_codesigning(api_call *c, const uint8_t *spki, size_t spki_len, const char *cn,
                                 const char *org, long long days, struct x509_st **out,
                                 srv_error *err);

/* Describes a key (with certificate and chain when present) as JSON. */
cJSON *api_key_json(api_call *c, const srv_key *key, int with_cert);

/* key_adopt.c: fills key's ckaid and spki from the key pair with CKA_ID hsm_id (hex) already in
 * the token; global admins only, never the server's CA or audit keys. */
srv_status api_adopt_hsm_key(api_call *c, srv_key *key, const char *hsm_id, srv_error *err);

#endif
