/* POST /tsa (RFC 3161 over HTTP, RFC 3161 section 3.4) and GET /api/v1/tsa. The work is in
 * tsa/; here: who may ask, the audit record of every token and refusal, and the reply. Every
 * answer to a query, refusals included, is a TimeStampResp: TSA clients understand nothing
 * else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../audit/denials.h"
#include "../common/addr_rate.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../tsa/tsa.h"
#include "internal.h"

static void reply_der(api_call *c, uint8_t *der, size_t len)
{
    c->ex->status = 200;
    c->ex->response = (char *)der;
    c->ex->response_len = len;
    c->ex->response_type = SRV_TSA_REPLY_TYPE;
}

static void reply_status(api_call *c, int status, int fail_bit, const char *text)
{
    uint8_t *der = NULL;
    size_t len = 0;
    srv_error err;
    if (srv_tsa_response(status, fail_bit, text, NULL, 0, &der, &len, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    reply_der(c, der, len);
}

/* A refused query: audited as a denial (unauthenticated ones through the aggregator, so a
 * flood cannot grow the log without bound), answered with status rejection. */
static void refuse(api_call *c, int fail_bit, const char *why, int server_side)
{
    srv_app *app = c->w->app;
    cJSON *detail = cJSON_CreateObject();
    srv_audit_event ev;
    char code[48];
    srv_error aerr;
    int record = 1;

    srv_db_read_end(c->w->db);
    snprintf(code, sizeof(code), "tsa_%s", srv_tsa_fail_name(fail_bit));
    if (detail) {
        cJSON_AddStringToObject(detail, "code", code);
        cJSON_AddStringToObject(detail, "message", why);
        api_add_request_detail(c, detail);
        srv_audit_truncate_strings(detail, SRV_AUDIT_ANON_FIELD_MAX);
    }
    memset(&ev, 0, sizeof(ev));
    ev.actor = c->actor;
    ev.action = "tsa.timestamp";
    ev.outcome = server_side ? "error" : "denied";
    ev.detail = detail;
    if (!c->authenticated && !server_side)
        record = srv_denials_admit(app->denial_log, c->ex->peer, code, ev.action, c->ex->path);
    if (record && srv_writer_audit(app->writer, &ev, NULL, &aerr) != SRV_OK)
        srv_log(SRV_LOG_ERROR, "audit", "cannot record a TSA refusal: %s", aerr.message);
    cJSON_Delete(detail);
    atomic_fetch_add(&app->denials, 1);
    reply_status(c, SRV_TSA_REJECTION, fail_bit, why);
}

typedef struct {
    api_call *c;
    const srv_tsa *tsa;
    const srv_tsa_request *req;
    int64_t serial, gen_time_ms;
    int clock_bad;
} issue_job;

/* The token's serial, the clock check and its audit record, in one transaction: no token
 * leaves without its record, and none is dated before one already issued. */
static srv_status run_issue(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    issue_job *j = ctx;
    cJSON *detail;
    char when[32], *nonce = NULL;
    srv_status st;

    st = srv_tsa_reserve(j->tsa, db, j->req, "request", j->c->actor, &j->serial, &j->gen_time_ms,
                         &j->clock_bad, err);
    if (st != SRV_OK)
        return st;
    if (!(detail = cJSON_CreateObject()))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    srv_format_time_ms(j->gen_time_ms, when, sizeof(when));
    if (j->req->nonce) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(j->req->nonce, NULL);
        nonce = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
    }
    cJSON_AddNumberToObject(detail, "serial", (double)j->serial);
    cJSON_AddStringToObject(detail, "gen_time", when);
    cJSON_AddStringToObject(detail, "hash", j->req->hash_name);
    cJSON_AddStringToObject(detail, "imprint", j->req->imprint_hex);
    cJSON_AddStringToObject(detail, "policy", j->tsa->policy_text);
    cJSON_AddBoolToObject(detail, "cert_req", j->req->cert_req);
    if (nonce)
        cJSON_AddStringToObject(detail, "nonce", nonce);
    cJSON_AddStringToObject(detail, "peer", j->c->ex->peer);
    OPENSSL_free(nonce);
    st = api_audit(j->c, db, audit, "tsa.timestamp", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* application/timestamp-query, parameters allowed. */
static int is_query_type(const char *content_type)
{
    size_t n = strlen(SRV_TSA_QUERY_TYPE);
    return content_type && strncasecmp(content_type, SRV_TSA_QUERY_TYPE, n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

void api_tsa(api_call *c)
{
    srv_app *app = c->w->app;
    srv_tsa_request req;
    issue_job job;
    uint8_t *token = NULL, *der = NULL;
    size_t token_len = 0, der_len = 0;
    char why[200];
    int fail_bit = 0;
    srv_error err;
    srv_status st;

    memset(&req, 0, sizeof(req));
    if (!app->tsa) {
        srv_fail(&err, SRV_E_NOT_FOUND, "the time-stamping authority is off (tsa in the config)");
        api_reply_error(c, &err);
        return;
    }
    if (app->cfg.tsa_mode == SRV_TSA_MODE_TOKEN) {
        if (api_authenticate(c, &err) != SRV_OK) {
            api_reply_error(c, &err);
            return;
        }
    }
    srv_db_read_end(c->w->db);
    /* Each token costs an HSM signature and a synced audit record: anyone who reaches an open
     * TSA gets them at a bounded rate (refusals beyond it are aggregated like other anonymous
     * denials). */
    if (!c->authenticated && !srv_addr_rate_take(app->tsa_rate, c->ex->peer)) {
        refuse(c, SRV_TSA_FAIL_SYSTEM_FAILURE,
               "too many requests from this address (tsa_rate_per_address, tsa_rate): retry later",
               0);
        return;
    }
    if (!is_query_type(c->ex->content_type)) {
        refuse(c, SRV_TSA_FAIL_BAD_DATA_FORMAT, "Content-Type must be " SRV_TSA_QUERY_TYPE, 0);
        return;
    }
    if (srv_tsa_parse_request(app->tsa, (const uint8_t *)c->ex->body, c->ex->body_len, &req,
                              &fail_bit, why, sizeof(why)) != 0) {
        refuse(c, fail_bit, why, 0);
        return;
    }
    memset(&job, 0, sizeof(job));
    job.c = c;
    job.tsa = app->tsa;
    job.req = &req;
    st = srv_writer_run(app->writer, run_issue, &job, &err);
    if (st != SRV_OK) {
        if (job.clock_bad) {
            srv_log(SRV_LOG_ERROR, "tsa", "%s", err.message);
            refuse(c, SRV_TSA_FAIL_TIME_NOT_AVAILABLE, err.message, 0);
        } else {
            srv_log(SRV_LOG_ERROR, "tsa", "cannot issue a token: %s", err.message);
            refuse(c, SRV_TSA_FAIL_SYSTEM_FAILURE, "the TSA cannot issue a token now", 1);
        }
        goto out;
    }
    st = srv_tsa_make_token(app->tsa, &req, job.serial, job.gen_time_ms, &token, &token_len, &err);
    if (st == SRV_OK)
        st = srv_tsa_response(SRV_TSA_GRANTED, -1, NULL, token, token_len, &der, &der_len, &err);
    if (st != SRV_OK) {
        /* The serial's record says a token was issued; this one says it never left. */
        char text[300];
        snprintf(text, sizeof(text), "token %lld was not issued: %s", (long long)job.serial,
                 err.message);
        srv_log(SRV_LOG_ERROR, "tsa", "%s", text);
        refuse(c, SRV_TSA_FAIL_SYSTEM_FAILURE, text, 1);
        goto out;
    }
    reply_der(c, der, der_len);
out:
    free(token);
    srv_tsa_request_clear(&req);
}

/* What a relying party or an operator needs: the policy, the certificate and its chain. */
void api_tsa_info(api_call *c)
{
    srv_app *app = c->w->app;
    cJSON *doc;
    char *pem = NULL;
    srv_error err;

    if (!app->tsa) {
        srv_fail(&err, SRV_E_NOT_FOUND, "the time-stamping authority is off (tsa in the config)");
        api_reply_error(c, &err);
        return;
    }
    if (srv_cert_to_pem(app->tsa->cert, &pem, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "url", "/tsa");
    cJSON_AddStringToObject(doc, "policy", app->tsa->policy_text);
    cJSON_AddNumberToObject(doc, "accuracy_ms", app->tsa->accuracy_ms);
    cJSON_AddStringToObject(doc, "key_type", srv_key_type_name(app->tsa->key.type));
    cJSON_AddStringToObject(doc, "access",
                            app->cfg.tsa_mode == SRV_TSA_MODE_TOKEN ? "token" : "open");
    cJSON_AddStringToObject(doc, "certificate_pem", pem);
    cJSON_AddStringToObject(doc, "certificate_sha256", app->tsa->cert_sha256);
    cJSON_AddStringToObject(doc, "ca_certificate_pem", app->ca_pem ? app->ca_pem : "");
    free(pem);
    api_reply(c, 200, doc);
}
