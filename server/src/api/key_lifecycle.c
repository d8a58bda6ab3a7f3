/* A key's lifecycle from the admin API: suspend (the compromise playbook: one call stops every
 * use of the key at once, with a reason, and answers with what the key signed since a given
 * time, from the audit log) and enable. Both are audited in the transaction that makes them;
 * the signing service checks the key's state again where commits are serialised, so no
 * signature made with the key leaves after the suspension has committed. */
#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "../store/key_db.h"
#include "internal.h"

#define SIGNATURES_MAX 10000 /* listed in one answer; more sets "truncated" */

typedef struct {
    const api_call *c;
    int suspend;
    const char *reason;
    int64_t since; /* suspend: list signatures from this time on */
    char since_text[40];
    cJSON *signatures;
    int truncated;
    long count;
} key_state_job;

static void add_signature(const srv_signature_row *row, void *ctx)
{
    key_state_job *j = ctx;
    cJSON *rec = cJSON_Parse(row->record), *o = cJSON_CreateObject();
    const cJSON *detail = rec ? cJSON_GetObjectItemCaseSensitive(rec, "detail") : NULL;
    static const char *const copied[] = {"request_id", "digests", "hash",  "mechanism",
                                         "peer",       "machine", "client"};

    cJSON_AddNumberToObject(o, "audit_id", (double)row->seq);
    cJSON_AddStringToObject(o, "time", row->time ? row->time : "");
    cJSON_AddStringToObject(o, "actor", row->actor ? row->actor : "");
    for (size_t i = 0; detail && i < sizeof(copied) / sizeof(copied[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(detail, copied[i]);
        if (v)
            cJSON_AddItemToObject(o, copied[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddItemToArray(j->signatures, o);
    j->count++;
    cJSON_Delete(rec);
}

static srv_status run_key_state(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    key_state_job *j = ctx;
    srv_key key;
    cJSON *detail;
    srv_status st;

    memset(&key, 0, sizeof(key));
    if ((st = srv_db_key_get(db, j->c->params[0], &key, err)) != SRV_OK)
        return st;
    if (key.is_ca) {
        srv_key_clear(&key);
        return srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
    }
    st = srv_db_key_set_state(db, key.id, j->suspend, j->reason, srv_now(), err);
    if (st == SRV_OK && j->suspend)
        st = srv_db_signatures_since(db, key.name, j->since_text, SIGNATURES_MAX, add_signature, j,
                                     &j->truncated, err);
    if (st == SRV_OK) {
        detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "key", key.name);
        cJSON_AddStringToObject(detail, "reason", j->reason);
        if (j->suspend) {
            cJSON_AddNumberToObject(detail, "since", (double)j->since);
            cJSON_AddNumberToObject(detail, "signatures_since", (double)j->count);
        }
        st = api_audit(j->c, db, audit, j->suspend ? "key.suspend" : "key.enable", detail, err);
        cJSON_Delete(detail);
    }
    srv_key_clear(&key);
    return st;
}

static void change_state(api_call *c, int suspend)
{
    static const char *const suspend_fields[] = {"reason", "since", NULL};
    static const char *const enable_fields[] = {"reason", NULL};
    key_state_job job;
    long long since = 0;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.suspend = suspend;
    if (srv_json_check_fields(c->body, suspend ? suspend_fields : enable_fields, &err) != SRV_OK ||
        api_get_reason(c->body, &job.reason, &err) != SRV_OK ||
        (suspend && srv_json_get_int(c->body, "since", 0, 0, srv_now(), &since, &err) != SRV_OK))
        goto fail;
    job.since = since;
    srv_format_time_ms(since * 1000, job.since_text, sizeof(job.since_text));
    job.signatures = cJSON_CreateArray();
    if (!job.signatures) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    if (srv_writer_run(c->w->app->writer, run_key_state, &job, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", c->params[0]);
    cJSON_AddBoolToObject(doc, "disabled", suspend);
    cJSON_AddStringToObject(doc, "reason", job.reason);
    if (suspend) {
        cJSON_AddNumberToObject(doc, "since", (double)job.since);
        cJSON_AddBoolToObject(doc, "truncated", job.truncated);
        cJSON_AddItemToObject(doc, "signatures_since", job.signatures);
        job.signatures = NULL;
    }
    cJSON_Delete(job.signatures);
    api_reply(c, 200, doc);
    return;
fail:
    cJSON_Delete(job.signatures);
    api_reply_error(c, &err);
}

/* POST /api/v1/admin/keys/{name}/suspend {"reason": "...", "since": UNIX} */
void api_admin_key_suspend(api_call *c)
{
    change_state(c, 1);
}

/* POST /api/v1/admin/keys/{name}/enable {"reason": "..."} */
void api_admin_key_enable(api_call *c)
{
    change_state(c, 0);
}
