/* The policy decision for one request: loads the rules and the groups of the subject and the
 * key from the store, asks the engine (policy.c), counts quotas on the connection it is
 * given; and the key listing, every key some grant or allow rule could let a caller use. */
#include "decision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "signum/common/buf.h"
#include "../store/project_db.h"
#include "provenance.h"

/* ---- loading and deciding ----------------------------------------------------------------- */

static void add_rule_doc(const char *name, int64_t version, const char *doc, int64_t updated_at,
                         void *ctx)
{
    void **args = ctx;
    policy_set *set = args[0];
    srv_error *err = args[1];
    cJSON *json;
    policy_rule rule;
    (void)version;
    (void)updated_at;
    if (err->status != SRV_OK)
        return;
    json = cJSON_Parse(doc);
    if (!json) {
        srv_fail(err, SRV_E_DATABASE, "stored policy \"%s\" is not JSON", name);
        return;
    }
    if (policy_rule_parse(json, &rule, err) == SRV_OK)
        policy_set_add(set, &rule, err);
    policy_rule_clear(&rule);
    cJSON_Delete(json);
}

static srv_status load_rules(srv_db *db, policy_set *set, srv_error *err)
{
    srv_error inner = {SRV_OK, ""};
    void *args[2] = {set, &inner};
    srv_status st = srv_db_policies_list(db, add_rule_doc, args, err);
    if (st != SRV_OK)
        return st;
    if (inner.status != SRV_OK) {
        *err = inner;
        return inner.status;
    }
    policy_set_sort(set);
    return SRV_OK;
}

typedef struct {
    const char *member;
    char **names;
    size_t n, cap;
    int failed;
} group_scan;

/* Caps on what one decision or listing holds (far above any real deployment): a store that
 * passes them is refused rather than let grow without bound. */
#define GROUPS_MAX   65536 /* groups of one member, or key groups in all */
#define KEYS_MAX     1000000
#define PROJECTS_MAX 65536

static void scan_group(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    group_scan *g = ctx;
    cJSON *arr = cJSON_Parse(members);
    (void)updated_at;
    for (const cJSON *m = arr ? arr->child : NULL; m; m = m->next) {
        if (cJSON_IsString(m) && strcmp(m->valuestring, g->member) == 0) {
            if (sgc_array_grow((void **)&g->names, &g->cap, g->n + 1, sizeof(*g->names),
                               GROUPS_MAX) != SGC_OK ||
                !(g->names[g->n] = strdup(name))) {
                g->failed = 1;
                break;
            }
            g->n++;
            break;
        }
    }
    cJSON_Delete(arr);
}

static srv_status groups_of(srv_db *db, const char *kind, const char *member, char ***names,
                            size_t *n, srv_error *err)
{
    group_scan g = {member, NULL, 0, 0, 0};
    srv_status st = srv_db_groups_list(db, kind, scan_group, &g, err);
    *names = g.names;
    *n = g.n;
    if (st == SRV_OK && g.failed)
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    return st;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int srv_policy_user_in_group(srv_db *db, const char *group, const char *user)
{
    char **names = NULL;
    size_t n = 0;
    int found = 0;
    if (groups_of(db, "user", user, &names, &n, NULL) == SRV_OK)
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(names[i], group) == 0;
    free_names(names, n);
    return found;
}

static long long count_usage(void *ctx, policy_quota_scope scope, int64_t since)
{
    srv_policy_eval *ev = ctx;
    long long n = 0;
    int64_t user = scope == POLICY_QUOTA_KEY ? 0 : ev->user_id;
    int64_t key = scope == POLICY_QUOTA_SUBJECT ? 0 : ev->key_id;
    if (srv_db_usage_count(ev->db, user, key, since, &n, NULL) != SRV_OK)
        return -1;
    return n;
}

srv_status srv_policy_decide(srv_db *db, const srv_user *user, const srv_key *key,
                             const policy_request *req, srv_policy_eval *ev, srv_error *err)
{
    srv_status st;
    memset(ev, 0, sizeof(*ev));
    ev->db = db;
    ev->user_id = user->id;
    ev->key_id = key->id;
    if ((st = load_rules(db, &ev->set, err)) != SRV_OK ||
        (st = groups_of(db, "user", user->name, &ev->groups, &ev->ngroups, err)) != SRV_OK ||
        (st = groups_of(db, "key", key->name, &ev->key_groups, &ev->nkey_groups, err)) != SRV_OK)
        return st;
    ev->req = *req;
    ev->req.subject = user->name;
    ev->req.subject_is_service = user->kind == SRV_KIND_SERVICE;
    ev->req.groups = (const char *const *)ev->groups;
    ev->req.ngroups = ev->ngroups;
    ev->req.key = key->name;
    ev->req.key_groups = (const char *const *)ev->key_groups;
    ev->req.nkey_groups = ev->nkey_groups;
    ev->req.project = key->project;
    if (srv_db_grant_exists(db, key->id, user->id)) {
        ev->req.granted = POLICY_GRANT_DIRECT;
    } else if (key->project_id) {
        int signer =
            srv_db_project_has_role(db, key->project_id, SRV_PROJECT_SIGNER, user->id, user->name);
        if (signer < 0)
            return srv_fail(err, SRV_E_DATABASE, "cannot read the key's project roles");
        if (signer)
            ev->req.granted = POLICY_GRANT_PROJECT;
    }
    ev->req.count = count_usage;
    ev->req.count_ctx = ev;
    policy_evaluate(&ev->set, &ev->req, &ev->decision);
    /* Require rules gate whatever allowed it (policy/provenance.h). */
    if (ev->decision.outcome == POLICY_ALLOWED || ev->decision.outcome == POLICY_APPROVAL_REQUIRED)
        policy_prov_gate(&ev->set, &ev->req, &ev->decision, &ev->gates);
    return SRV_OK;
}

/* ---- the key listing ----------------------------------------------------------------------- */

typedef struct {
    char *name;
    cJSON *members; /* a JSON array of key names */
} key_group;

typedef struct {
    policy_set set;
    char **groups; /* the caller's user groups */
    size_t ngroups;
    key_group *kgroups; /* every key group */
    size_t nkgroups, kgroups_cap;
    const char **kg;  /* scratch: one key's groups (room for all of them) */
    int64_t *granted; /* ids of the keys granted to the caller */
    size_t ngranted, granted_cap;
    int64_t *projects; /* ids of the projects where the caller is a signer */
    size_t nprojects, projects_cap;
    int failed;
    const srv_user *user;
    srv_key_cb cb;
    void *ctx;
} key_listing;

static void listing_add_group(const char *name, const char *members, int64_t updated_at, void *ctx)
{
    key_listing *l = ctx;
    key_group *g;
    (void)updated_at;
    if (l->failed)
        return;
    if (sgc_array_grow((void **)&l->kgroups, &l->kgroups_cap, l->nkgroups + 1, sizeof(*l->kgroups),
                       GROUPS_MAX) != SGC_OK) {
        l->failed = 1;
        return;
    }
    g = &l->kgroups[l->nkgroups];
    g->name = strdup(name);
    g->members = cJSON_Parse(members);
    if (!g->name) {
        cJSON_Delete(g->members);
        l->failed = 1;
        return;
    }
    l->nkgroups++;
}

static void listing_add_grant(const srv_key *key, void *ctx)
{
    key_listing *l = ctx;
    if (l->failed)
        return;
    if (sgc_array_grow((void **)&l->granted, &l->granted_cap, l->ngranted + 1, sizeof(*l->granted),
                       KEYS_MAX) != SGC_OK) {
        l->failed = 1;
        return;
    }
    l->granted[l->ngranted++] = key->id;
}

static void listing_add_project(int64_t project_id, void *ctx)
{
    key_listing *l = ctx;
    if (l->failed)
        return;
    if (sgc_array_grow((void **)&l->projects, &l->projects_cap, l->nprojects + 1,
                       sizeof(*l->projects), PROJECTS_MAX) != SGC_OK) {
        l->failed = 1;
        return;
    }
    l->projects[l->nprojects++] = project_id;
}

static void listing_visit(const srv_key *key, void *ctx)
{
    key_listing *l = ctx;
    policy_request q;
    size_t nkg = 0;
    if (l->failed || key->is_ca || key->disabled)
        return;
    for (size_t i = 0; i < l->nkgroups; i++) {
        const cJSON *m;
        cJSON_ArrayForEach(m, l->kgroups[i].members)
        {
            if (cJSON_IsString(m) && strcmp(m->valuestring, key->name) == 0) {
                l->kg[nkg++] = l->kgroups[i].name;
                break;
            }
        }
    }
    memset(&q, 0, sizeof(q));
    q.subject = l->user->name;
    q.subject_is_service = l->user->kind == SRV_KIND_SERVICE;
    q.groups = (const char *const *)l->groups;
    q.ngroups = l->ngroups;
    q.key = key->name;
    q.key_groups = l->kg;
    q.nkey_groups = nkg;
    q.key_disabled = key->disabled;
    q.project = key->project;
    for (size_t i = 0; i < l->ngranted && !q.granted; i++)
        if (l->granted[i] == key->id)
            q.granted = POLICY_GRANT_DIRECT;
    for (size_t i = 0; i < l->nprojects && !q.granted && key->project_id; i++)
        if (l->projects[i] == key->project_id)
            q.granted = POLICY_GRANT_PROJECT;
    if (policy_may_ever_allow(&l->set, &q, NULL))
        l->cb(key, l->ctx);
}

srv_status srv_policy_listed_keys(srv_db *db, const srv_user *user, srv_key_cb cb, void *ctx,
                                  srv_error *err)
{
    key_listing l;
    srv_status st;
    memset(&l, 0, sizeof(l));
    l.user = user;
    l.cb = cb;
    l.ctx = ctx;
    /* One load of rules and groups per listing; then a pure decision per key. */
    if ((st = load_rules(db, &l.set, err)) != SRV_OK ||
        (st = groups_of(db, "user", user->name, &l.groups, &l.ngroups, err)) != SRV_OK ||
        (st = srv_db_groups_list(db, "key", listing_add_group, &l, err)) != SRV_OK ||
        (st = srv_db_keys_list(db, user->id, listing_add_grant, &l, err)) != SRV_OK ||
        (st = srv_db_projects_with_role(db, SRV_PROJECT_SIGNER, user->id, user->name,
                                        listing_add_project, &l, err)) != SRV_OK)
        goto done;
    if (l.failed || !(l.kg = malloc((l.nkgroups ? l.nkgroups : 1) * sizeof(*l.kg)))) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto done;
    }
    if ((st = srv_db_keys_list(db, -1, listing_visit, &l, err)) == SRV_OK && l.failed)
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
done:
    policy_set_clear(&l.set);
    free_names(l.groups, l.ngroups);
    for (size_t i = 0; i < l.nkgroups; i++) {
        free(l.kgroups[i].name);
        cJSON_Delete(l.kgroups[i].members);
    }
    free(l.kgroups);
    free(l.kg);
    free(l.granted);
    free(l.projects);
    return st;
}

srv_status srv_policy_recheck_quota(srv_policy_eval *ev, srv_db *db, srv_error *err)
{
    const policy_rule *r = ev->decision.rule;
    srv_db *saved = ev->db;
    policy_decision d;
    if (ev->decision.by_grant || !r || !r->nquotas)
        return SRV_OK;
    ev->db = db;
    policy_evaluate_allow(r, &ev->req, &d);
    ev->db = saved;
    if (d.outcome == POLICY_QUOTA_EXCEEDED || d.outcome == POLICY_ERROR)
        return srv_fail(err, srv_policy_status(d.outcome), "%s", d.message);
    return SRV_OK;
}

void srv_policy_eval_clear(srv_policy_eval *ev)
{
    policy_set_clear(&ev->set);
    free_names(ev->groups, ev->ngroups);
    free_names(ev->key_groups, ev->nkey_groups);
    cJSON_Delete(ev->gates);
    memset(ev, 0, sizeof(*ev));
}

srv_status srv_policy_status(policy_outcome outcome)
{
    switch (outcome) {
    case POLICY_ALLOWED:
    case POLICY_APPROVAL_REQUIRED: return SRV_OK;
    case POLICY_DENIED_DEFAULT: return SRV_E_KEY_NOT_GRANTED;
    case POLICY_DENIED_RULE: return SRV_E_POLICY_DENIED_RULE;
    case POLICY_QUOTA_EXCEEDED: return SRV_E_QUOTA_EXCEEDED;
    case POLICY_OUTSIDE_TIME_WINDOW: return SRV_E_OUTSIDE_TIME_WINDOW;
    case POLICY_MACHINE_NOT_ALLOWED: return SRV_E_MACHINE_NOT_ALLOWED;
    case POLICY_NETWORK_NOT_ALLOWED: return SRV_E_NETWORK_NOT_ALLOWED;
    case POLICY_APPLICATION_NOT_ALLOWED: return SRV_E_APPLICATION_NOT_ALLOWED;
    case POLICY_HASH_NOT_ALLOWED: return SRV_E_HASH_NOT_ALLOWED;
    case POLICY_MECHANISM_NOT_ALLOWED: return SRV_E_MECHANISM_NOT_ALLOWED;
    case POLICY_PROVENANCE_DENIED: return SRV_E_PROVENANCE_DENIED;
    case POLICY_ERROR:
    case POLICY_OUTCOME_COUNT: break;
    }
    return SRV_E_DATABASE;
}
