/* M-of-N approval of sign requests: approvers list pending requests and approve or reject
 * them; the requester polls and gets the signature once the quorum is met (it is made at
 * that poll). Requesters never approve their own request; nobody decides twice; every step
 * is audited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../store/project_db.h"
#include "internal.h"

/* Whether user may decide on a: named, in a named group, or (when the rule said so) an
 * approver of the key's project. The requester is refused by the callers. */
static int eligible(srv_db *db, const srv_approval *a, const srv_user *user)
{
    cJSON *who = cJSON_Parse(a->approvers);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(who, "approvers");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(who, "groups");
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(who, "project");
    int ok = 0;
    for (const cJSON *n = names ? names->child : NULL; n && !ok; n = n->next)
        ok = cJSON_IsString(n) && strcmp(n->valuestring, user->name) == 0;
    for (const cJSON *g = groups ? groups->child : NULL; g && !ok; g = g->next)
        ok = cJSON_IsString(g) && srv_policy_user_in_group(db, g->valuestring, user->name);
    if (!ok && cJSON_IsString(project)) {
        srv_project p;
        if (srv_db_project_get(db, project->valuestring, &p, NULL) == SRV_OK)
            ok = srv_db_project_has_role(db, p.id, SRV_PROJECT_APPROVER, user->id, user->name) == 1;
    }
    cJSON_Delete(who);
    return ok;
}

typedef struct {
    cJSON *votes;
    long long approvals, rejections;
    int voted; /* by the name in `me` */
    const char *me;
} vote_tally;

static void tally_vote(const char *approver, const char *decision, int64_t time, void *ctx)
{
    vote_tally *t = ctx;
    cJSON *v;
    if (strcmp(decision, "approve") == 0)
        t->approvals++;
    else
        t->rejections++;
    if (t->me && strcmp(approver, t->me) == 0)
        t->voted = 1;
    if (t->votes) {
        v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "approver", approver);
        cJSON_AddStringToObject(v, "decision", decision);
        cJSON_AddNumberToObject(v, "time", (double)time);
        cJSON_AddItemToArray(t->votes, v);
    }
}

/* The public view of a request (for approvers and for its requester). */
static cJSON *approval_json(srv_db *db, const srv_approval *a, int64_t now, vote_tally *t)
{
    cJSON *doc = cJSON_CreateObject(), *req = cJSON_Parse(a->request);
    srv_user requester;
    const char *status = a->status;
    if (strcmp(status, "pending") == 0 && a->expires_at <= now)
        status = "expired";
    cJSON_AddStringToObject(doc, "approval_id", a->id);
    cJSON_AddStringToObject(doc, "status", status);
    if (srv_db_user_get_by_id(db, a->user_id, &requester, NULL) == SRV_OK)
        cJSON_AddStringToObject(doc, "requester", requester.name);
    cJSON_AddStringToObject(doc, "rule", a->rule);
    cJSON_AddNumberToObject(doc, "required", (double)a->required);
    cJSON_AddNumberToObject(doc, "created_at", (double)a->created_at);
    cJSON_AddNumberToObject(doc, "expires_at", (double)a->expires_at);
    cJSON_AddItemToObject(doc, "approvers", cJSON_Parse(a->approvers));
    if (a->machine[0])
        cJSON_AddStringToObject(doc, "machine", a->machine);
    else
        cJSON_AddNullToObject(doc, "machine");
    /* What would be signed: key, mechanism, hash, digests and the client's context. */
    if (req) {
        static const char *const shown[] = {"key",     "mechanism", "hash",       "digest",
                                            "digests", "context",   "request_id", NULL};
        cJSON *r = cJSON_AddObjectToObject(doc, "request");
        for (const char *const *f = shown; *f; f++) {
            cJSON *item = cJSON_GetObjectItemCaseSensitive(req, *f);
            if (item)
                cJSON_AddItemToObject(r, *f, cJSON_Duplicate(item, 1));
        }
    }
    cJSON_Delete(req);
    t->votes = cJSON_AddArrayToObject(doc, "votes");
    srv_db_votes_list(db, a->id, tally_vote, t, NULL);
    cJSON_AddNumberToObject(doc, "approvals", (double)t->approvals);
    return doc;
}

typedef struct {
    api_call *c;
    cJSON *arr;
    int64_t now;
} list_ctx;

static void add_pending(const srv_approval *a, void *ctx)
{
    list_ctx *l = ctx;
    vote_tally t = {NULL, 0, 0, 0, l->c->user.name};
    cJSON *doc;
    if (a->user_id == l->c->user.id || !eligible(l->c->w->db, a, &l->c->user))
        return;
    doc = approval_json(l->c->w->db, a, l->now, &t);
    cJSON_AddBoolToObject(doc, "decided_by_me", t.voted);
    cJSON_AddItemToArray(l->arr, doc);
}

void api_approvals_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    list_ctx l = {c, cJSON_AddArrayToObject(doc, "approvals"), srv_now()};
    srv_error err;
    if (srv_db_approvals_pending(c->w->db, l.now, add_pending, &l, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

typedef struct {
    api_call *c;
    const char *id;
    const char *decision; /* approve, reject */
    const char *reason;   /* why, for a rejection (required there) */
    long long approvals, required;
    const char *status; /* the request's state after this vote */
} vote_job;

/* Checks and records one vote inside the writer's transaction, so two concurrent votes of the
 * same approver, or a vote racing the expiry, are decided on the committed state. */
static srv_status run_vote(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    vote_job *j = ctx;
    srv_approval a;
    vote_tally t = {NULL, 0, 0, 0, j->c->user.name};
    int64_t now = srv_now();
    cJSON *detail;
    srv_status st = srv_db_approval_get(db, j->id, &a, err);

    if (st != SRV_OK)
        return st;
    if (a.user_id == j->c->user.id) {
        st = srv_fail(err, SRV_E_SELF_APPROVAL, "nobody may approve or reject their own request");
        goto out;
    }
    if (!eligible(db, &a, &j->c->user)) {
        st = srv_fail(err, SRV_E_NOT_APPROVER, "%s is not an approver of request %s", j->c->actor,
                      a.id);
        goto out;
    }
    if (strcmp(a.status, "pending") != 0) {
        st = srv_fail(err, SRV_E_APPROVAL_CLOSED, "request %s is already %s", a.id, a.status);
        goto out;
    }
    if (a.expires_at <= now) {
        st = srv_fail(err, SRV_E_APPROVAL_EXPIRED, "request %s expired", a.id);
        goto out;
    }
    if ((st = srv_db_votes_list(db, a.id, tally_vote, &t, err)) != SRV_OK)
        goto out;
    if (t.voted) {
        st = srv_fail(err, SRV_E_ALREADY_DECIDED, "%s already decided on request %s", j->c->actor,
                      a.id);
        goto out;
    }
    if ((st = srv_db_vote_insert(db, a.id, j->c->user.name, j->decision, j->reason, now, err)) !=
        SRV_OK)
        goto out;
    j->approvals = t.approvals + (strcmp(j->decision, "approve") == 0);
    j->required = a.required;
    /* One rejection closes the request; the quorum approves it. */
    j->status = strcmp(j->decision, "reject") == 0 ? "rejected"
                : j->approvals >= a.required       ? "approved"
                                                   : "pending";
    if (strcmp(j->status, "pending") != 0 &&
        (st = srv_db_approval_set_status(db, a.id, j->status, NULL, now, err)) != SRV_OK)
        goto out;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "approval_id", a.id);
    cJSON_AddStringToObject(detail, "rule", a.rule);
    cJSON_AddNumberToObject(detail, "approvals", (double)j->approvals);
    cJSON_AddNumberToObject(detail, "required", (double)a.required);
    cJSON_AddStringToObject(detail, "status", j->status);
    if (j->reason)
        cJSON_AddStringToObject(detail, "reason", j->reason);
    {
        srv_user requester;
        if (srv_db_user_get_by_id(db, a.user_id, &requester, NULL) == SRV_OK)
            cJSON_AddStringToObject(detail, "requester", requester.name);
    }
    st = api_audit(j->c, db, audit,
                   strcmp(j->decision, "approve") == 0 ? "approval.approve" : "approval.reject",
                   detail, err);
    cJSON_Delete(detail);
out:
    srv_approval_clear(&a);
    return st;
}

#define REASON_MAX 1024

static void vote(api_call *c, const char *decision)
{
    vote_job job = {c, c->params[0], decision, NULL, 0, 0, NULL};
    static const char *const fields[] = {"reason", NULL};
    cJSON *doc;
    srv_error err;
    if (strlen(c->params[0]) != SRV_APPROVAL_ID_LEN) {
        srv_fail(&err, SRV_E_NOT_FOUND, "no approval request \"%s\"", c->params[0]);
        api_reply_error(c, &err);
        return;
    }
    if (strcmp(decision, "reject") == 0) {
        /* A rejection says why: the requester and the audit log are told. */
        if (!c->body) {
            srv_fail(&err, SRV_E_REASON_REQUIRED,
                     "a rejection needs a JSON body {\"reason\": \"...\"} (1-%d characters)",
                     REASON_MAX);
            api_reply_error(c, &err);
            return;
        }
        if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
            srv_json_get_string(c->body, "reason", 0, REASON_MAX, &job.reason, &err) != SRV_OK) {
            api_reply_error(c, &err);
            return;
        }
        if (!job.reason || strspn(job.reason, " \t\r\n") == strlen(job.reason)) {
            srv_fail(&err, SRV_E_REASON_REQUIRED,
                     "a rejection needs a non-blank reason (1-%d characters)", REASON_MAX);
            api_reply_error(c, &err);
            return;
        }
    }
    if (srv_writer_run(c->w->app->writer, run_vote, &job, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "approval_id", job.id);
    cJSON_AddStringToObject(doc, "decision", decision);
    cJSON_AddStringToObject(doc, "status", job.status);
    cJSON_AddNumberToObject(doc, "approvals", (double)job.approvals);
    cJSON_AddNumberToObject(doc, "required", (double)job.required);
    if (job.reason)
        cJSON_AddStringToObject(doc, "reason", job.reason);
    api_reply(c, 200, doc);
}

void api_approval_approve(api_call *c)
{
    vote(c, "approve");
}

void api_approval_reject(api_call *c)
{
    vote(c, "reject");
}

void api_sign_request_poll(api_call *c)
{
    srv_approval a;
    srv_error err;
    int64_t now = srv_now();
    vote_tally t = {NULL, 0, 0, 0, NULL};

    memset(&a, 0, sizeof(a));
    /* Only the requester sees its request; to anyone else it does not exist. */
    if (srv_db_approval_get(c->w->db, c->params[0], &a, &err) != SRV_OK ||
        a.user_id != c->user.id) {
        srv_approval_clear(&a);
        srv_fail(&err, SRV_E_NOT_FOUND, "no sign request \"%s\" of yours", c->params[0]);
        api_reply_error(c, &err);
        return;
    }
    if (strcmp(a.status, "signed") == 0 && a.response) {
        /* Collected before: the same answer again. */
        c->ex->status = 200;
        c->ex->response = a.response;
        c->ex->response_len = strlen(a.response);
        a.response = NULL;
    } else if (strcmp(a.status, "approved") == 0) {
        api_sign_approved(c, &a);
    } else if (strcmp(a.status, "rejected") == 0) {
        srv_fail(&err, SRV_E_APPROVAL_REJECTED, "request %s was rejected by an approver", a.id);
        api_reply_error(c, &err);
    } else if (a.expires_at <= now) {
        srv_fail(&err, SRV_E_APPROVAL_EXPIRED, "request %s expired before its approvals", a.id);
        api_reply_error(c, &err);
    } else {
        api_reply(c, 202, approval_json(c->w->db, &a, now, &t));
    }
    srv_approval_clear(&a);
}

typedef struct {
    api_call *c;
    cJSON *arr;
    int64_t now;
} mine_ctx;

static void add_mine(const srv_approval *a, void *ctx)
{
    mine_ctx *m = ctx;
    vote_tally t = {NULL, 0, 0, 0, NULL};
    cJSON_AddItemToArray(m->arr, approval_json(m->c->w->db, a, m->now, &t));
}

/* GET /api/v1/sign/requests: the caller's own approval requests, newest first. */
void api_sign_requests_mine(api_call *c)
{
    cJSON *doc = cJSON_CreateObject();
    mine_ctx m = {c, cJSON_AddArrayToObject(doc, "requests"), srv_now()};
    srv_error err;
    if (srv_db_approvals_of_user(c->w->db, c->user.id, 100, add_mine, &m, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}
