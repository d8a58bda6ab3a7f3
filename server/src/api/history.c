/* What administrators look back on: a policy rule's kept versions (for a diff), and the state
 * of the audit log (chain and signed checkpoints verified, the last checkpoint, what follows it
 * unsigned). The audit walk costs one pass over the log, so its answer is kept for a while. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../audit/checkpoint.h"
#include "../common/util.h"
#include "internal.h"

#define POLICY_VERSIONS_MAX 100
#define AUDIT_STATUS_TTL    30 /* seconds an audit status answer is reused */

static void add_version(const char *name, int64_t version, const char *doc, int64_t changed_at,
                        void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    (void)name;
    cJSON_AddNumberToObject(o, "version", (double)version);
    cJSON_AddNumberToObject(o, "changed_at", (double)changed_at);
    cJSON_AddBoolToObject(o, "deleted", doc == NULL);
    if (doc)
        cJSON_AddItemToObject(o, "policy", cJSON_Parse(doc));
    else
        cJSON_AddNullToObject(o, "policy");
    cJSON_AddItemToArray(ctx, o);
}

/* GET /api/v1/admin/policies/{name}/versions: newest first, at most 100. */
void api_admin_policy_versions(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "versions");
    srv_error err;
    cJSON_AddStringToObject(doc, "name", c->params[0]);
    if (srv_db_policy_versions(c->w->db, c->params[0], POLICY_VERSIONS_MAX, add_version, arr,
                               &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    if (cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(doc);
        srv_fail(&err, SRV_E_NOT_FOUND, "no policy named \"%s\" was ever stored", c->params[0]);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char *status_text; /* the last answer, reused for AUDIT_STATUS_TTL seconds */
static int64_t status_at;

static cJSON *status_json(const srv_verify_report *r, int64_t now)
{
    cJSON *doc = cJSON_CreateObject(), *cp;
    cJSON_AddBoolToObject(doc, "intact", r->chain.first_bad == 0);
    cJSON_AddNumberToObject(doc, "records", (double)r->last_record);
    if (r->chain.first_bad) {
        cJSON_AddNumberToObject(doc, "first_bad", (double)r->chain.first_bad);
        cJSON_AddStringToObject(doc, "reason", r->chain.reason);
    }
    cp = cJSON_AddObjectToObject(doc, "checkpoints");
    cJSON_AddNumberToObject(cp, "verified", (double)r->checkpoints);
    cJSON_AddNumberToObject(cp, "last_seq", (double)r->last_checkpoint);
    cJSON_AddStringToObject(cp, "key_sha256", r->key_fingerprint);
    cJSON_AddNumberToObject(cp, "unchecked_records", (double)r->unchecked);
    cJSON_AddBoolToObject(cp, "hsm_mark_checked", r->mark_checked);
    cJSON_AddNumberToObject(cp, "hsm_mark_seq", (double)r->mark_seq);
    cJSON_AddNumberToObject(cp, "timestamped", (double)r->timestamped);
    cJSON_AddNumberToObject(cp, "untimestamped", (double)r->untimestamped);
    cJSON_AddNumberToObject(doc, "checked_at", (double)now);
    return doc;
}

/* GET /api/v1/admin/audit/status */
void api_admin_audit_status(api_call *c)
{
    srv_verify_options opts = {NULL, 0, c->w->app->hsm, c->w->app->ca.cert};
    srv_verify_report report;
    int64_t now = srv_now();
    char *text = NULL;
    srv_error err;

    pthread_mutex_lock(&status_lock);
    if (status_text && now - status_at < AUDIT_STATUS_TTL) {
        text = strdup(status_text);
    } else {
        memset(&report, 0, sizeof(report));
        if (srv_audit_verify_full(c->w->db, &opts, &report, &err) != SRV_OK) {
            pthread_mutex_unlock(&status_lock);
            api_reply_error(c, &err);
            return;
        }
        cJSON *doc = status_json(&report, now);
        text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        free(status_text);
        status_text = text ? strdup(text) : NULL;
        status_at = now;
    }
    pthread_mutex_unlock(&status_lock);
    if (!text) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        api_reply_error(c, &err);
        return;
    }
    c->ex->status = 200;
    c->ex->response = text;
    c->ex->response_len = strlen(text);
}
