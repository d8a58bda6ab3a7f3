/* Policy rules: validation of rule documents and the pure evaluator. Rules are walked in
 * order of priority (higher first; at equal priority deny rules before allow rules, then the
 * implicit grant last); the first rule that matches decides. Require rules are not walked:
 * they gate an allowing decision afterwards (provenance_rule.c). */
#include "policy.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../common/util.h"
#include "provenance.h"
#include "signum/common/buf.h"
#include "signum/common/names.h"
#include "signum/common/rfc3339.h"

static const struct {
    const char *code;
    int http;
} outcomes[POLICY_OUTCOME_COUNT] = {
    [POLICY_ALLOWED] = {"allowed", 200},
    [POLICY_APPROVAL_REQUIRED] = {"approval_required", 202},
    /* Deny by default keeps the code signers saw before policies existed. */
    [POLICY_DENIED_DEFAULT] = {"key_not_granted", 403},
    [POLICY_DENIED_RULE] = {"policy_denied_rule", 403},
    [POLICY_QUOTA_EXCEEDED] = {"quota_exceeded", 429},
    [POLICY_OUTSIDE_TIME_WINDOW] = {"outside_time_window", 403},
    [POLICY_MACHINE_NOT_ALLOWED] = {"machine_not_allowed", 403},
    [POLICY_NETWORK_NOT_ALLOWED] = {"network_not_allowed", 403},
    [POLICY_APPLICATION_NOT_ALLOWED] = {"application_not_allowed", 403},
    [POLICY_HASH_NOT_ALLOWED] = {"hash_not_allowed", 403},
    [POLICY_MECHANISM_NOT_ALLOWED] = {"mechanism_not_allowed", 403},
    [POLICY_PROVENANCE_DENIED] = {"provenance_denied", 403},
    [POLICY_ERROR] = {"database_error", 500},
};

const char *policy_outcome_code(policy_outcome o)
{
    return (unsigned)o < POLICY_OUTCOME_COUNT ? outcomes[o].code : "internal_error";
}

int policy_outcome_http(policy_outcome o)
{
    return (unsigned)o < POLICY_OUTCOME_COUNT ? outcomes[o].http : 500;
}

static const char *grant_rule_name(policy_grant g)
{
    return g == POLICY_GRANT_PROJECT ? "project" : "grant";
}

const char *policy_decision_rule(const policy_decision *d)
{
    if (d->by_grant)
        return grant_rule_name(d->by_grant);
    return d->rule ? d->rule->name : NULL;
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef enum { LIST_NAME, LIST_NAME_OR_ANY, LIST_TEXT, LIST_HASH, LIST_MECH, LIST_DAY } list_kind;

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int list_item_ok(list_kind kind, const char *s)
{
    switch (kind) {
    case LIST_NAME: return srv_valid_name(s, POLICY_NAME_MAX);
    case LIST_NAME_OR_ANY: return strcmp(s, "*") == 0 || srv_valid_name(s, POLICY_NAME_MAX);
    case LIST_TEXT: return *s && strlen(s) <= 1024;
    case LIST_HASH: return sgc_hash_parse(s) >= 0;
    case LIST_MECH: return sgc_mech_parse(s) >= 0;
    case LIST_DAY:
        for (size_t i = 0; i < 7; i++)
            if (strcmp(s, day_names[i]) == 0)
                return 1;
        return 0;
    }
    return 0;
}

static const char *list_kind_hint(list_kind kind)
{
    switch (kind) {
    case LIST_NAME: return "names of 1-64 characters of [A-Za-z0-9._-]";
    case LIST_NAME_OR_ANY: return "names of 1-64 characters of [A-Za-z0-9._-], or \"*\"";
    case LIST_TEXT: return "non-empty strings of at most 1024 characters";
    case LIST_HASH: return "sha256, sha384 or sha512";
    case LIST_MECH: return "rsa-pkcs1, rsa-pss or ecdsa";
    case LIST_DAY: return "mon, tue, wed, thu, fri, sat or sun";
    }
    return "";
}

/* Reads an optional array of strings; *present says whether the member was there. */
static srv_status get_list(const cJSON *obj, const char *path, const char *name, list_kind kind,
                           policy_list *out, int *present, srv_error *err)
{
    const cJSON *arr = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    size_t i = 0;
    memset(out, 0, sizeof(*out));
    if (present)
        *present = 0;
    if (!arr)
        return SRV_OK;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > POLICY_LIST_MAX)
        return srv_fail(err, SRV_E_INVALID_FIELD, "%s.%s must be an array of at most %d %s", path,
                        name, POLICY_LIST_MAX, list_kind_hint(kind));
    out->items = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*out->items));
    if (!out->items)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    for (const cJSON *it = arr->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring || !list_item_ok(kind, it->valuestring)) {
            free(out->items);
            memset(out, 0, sizeof(*out));
            return srv_fail(err, SRV_E_INVALID_FIELD, "%s.%s[%zu] must be one of: %s", path, name,
                            i, list_kind_hint(kind));
        }
        out->items[i++] = it->valuestring;
    }
    out->n = i;
    if (present)
        *present = 1;
    return SRV_OK;
}

static srv_status get_object(const cJSON *doc, const char *name, int required, const cJSON **out,
                             const char *const *fields, srv_error *err)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, name);
    srv_error inner;
    *out = NULL;
    if (!obj) {
        if (required)
            return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" is required", name);
        return SRV_OK;
    }
    if (!cJSON_IsObject(obj))
        return srv_fail(err, SRV_E_INVALID_FIELD, "field \"%s\" must be an object", name);
    if (srv_json_check_fields(obj, fields, &inner) != SRV_OK)
        return srv_fail(err, inner.status, "%s: %s", name, inner.message);
    *out = obj;
    return SRV_OK;
}

/* "HH:MM" (00:00-24:00) to minutes. */
static int parse_hhmm(const char *s, int *out)
{
    int h, m;
    if (strlen(s) != 5 || s[2] != ':' || sscanf(s, "%2d:%2d", &h, &m) != 2 ||
        strspn(s, "0123456789:") != 5 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m))
        return 0;
    *out = h * 60 + m;
    return 1;
}

/* RFC 3339 in UTC: "2025-01-31T12:00:00Z" (signum/common/rfc3339.h). */
static int parse_utc(const char *s, int64_t *out)
{
    return sgc_rfc3339_parse(s, SGC_RFC3339_UTC_ONLY, out) == SGC_OK;
}

static srv_status parse_scope(const cJSON *doc, policy_rule *r, srv_error *err)
{
    static const char *const subj_fields[] = {"users", "groups", "service_accounts", NULL};
    static const char *const key_fields[] = {"names", "groups", "projects", NULL};
    static const char *const where_fields[] = {"machines", "ip_ranges", "applications", NULL};
    const cJSON *subj, *keys, *where;
    policy_list ips;
    srv_status st;

    if ((st = get_object(doc, "subjects", 1, &subj, subj_fields, err)) != SRV_OK ||
        (st = get_list(subj, "subjects", "users", LIST_NAME_OR_ANY, &r->users, NULL, err)) !=
            SRV_OK ||
        (st = get_list(subj, "subjects", "groups", LIST_NAME, &r->groups, NULL, err)) != SRV_OK ||
        (st = get_list(subj, "subjects", "service_accounts", LIST_NAME_OR_ANY, &r->service_accounts,
                       NULL, err)) != SRV_OK)
        return st;
    if (r->users.n + r->groups.n + r->service_accounts.n == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "subjects must name at least one user, group or service account "
                        "(\"*\" for any)");
    if ((st = get_object(doc, "keys", 1, &keys, key_fields, err)) != SRV_OK ||
        (st = get_list(keys, "keys", "names", LIST_NAME_OR_ANY, &r->keys, NULL, err)) != SRV_OK ||
        (st = get_list(keys, "keys", "groups", LIST_NAME, &r->key_groups, NULL, err)) != SRV_OK ||
        (st = get_list(keys, "keys", "projects", LIST_NAME, &r->projects, NULL, err)) != SRV_OK)
        return st;
    if (r->keys.n + r->key_groups.n + r->projects.n == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "keys must name at least one key, key group or project (\"*\" for any "
                        "key)");

    if ((st = get_object(doc, "where", 0, &where, where_fields, err)) != SRV_OK ||
        (st = get_list(where, "where", "machines", LIST_NAME, &r->machines, &r->has_machines,
                       err)) != SRV_OK ||
        (st = get_list(where, "where", "applications", LIST_TEXT, &r->applications, &r->has_apps,
                       err)) != SRV_OK ||
        (st = get_list(where, "where", "ip_ranges", LIST_TEXT, &ips, &r->has_ips, err)) != SRV_OK) {
        return st;
    }
    if (ips.n) {
        r->ips = calloc(ips.n, sizeof(*r->ips));
        if (!r->ips) {
            free(ips.items);
            return srv_fail(err, SRV_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < ips.n; i++) {
            if (!policy_cidr_parse(ips.items[i], &r->ips[i])) {
                st = srv_fail(err, SRV_E_INVALID_FIELD,
                              "where.ip_ranges[%zu] must be an address or CIDR range such as "
                              "10.0.0.0/8 or 2001:db8::/32",
                              i);
                free(ips.items);
                return st;
            }
        }
        r->nips = ips.n;
    }
    free(ips.items);
    return SRV_OK;
}

static srv_status parse_when(const cJSON *doc, policy_rule *r, srv_error *err)
{
    static const char *const when_fields[] = {"time_zone", "windows", "not_before", "not_after",
                                              NULL};
    static const char *const win_fields[] = {"days", "start", "end", NULL};
    const cJSON *when, *wins;
    const char *tz = NULL, *nb = NULL, *na = NULL;
    srv_status st;

    if ((st = get_object(doc, "when", 0, &when, when_fields, err)) != SRV_OK || !when)
        return st;
    if ((st = srv_json_get_string(when, "time_zone", 0, POLICY_TZ_MAX, &tz, err)) != SRV_OK ||
        (st = srv_json_get_string(when, "not_before", 0, 32, &nb, err)) != SRV_OK ||
        (st = srv_json_get_string(when, "not_after", 0, 32, &na, err)) != SRV_OK)
        return st;
    if (tz && !policy_tz_valid(tz))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "when.time_zone \"%s\" is not a zone of the tz database (e.g. "
                        "Europe/Berlin, America/New_York, UTC)",
                        tz);
    snprintf(r->time_zone, sizeof(r->time_zone), "%s", tz ? tz : "UTC");
    if (nb && !parse_utc(nb, &r->not_before))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "when.not_before must be a UTC time such as 2025-01-31T00:00:00Z");
    if (na && !parse_utc(na, &r->not_after))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "when.not_after must be a UTC time such as 2025-12-31T23:59:59Z");
    if (nb && na && r->not_after <= r->not_before)
        return srv_fail(err, SRV_E_INVALID_FIELD, "when.not_after must be after not_before");

    wins = cJSON_GetObjectItemCaseSensitive(when, "windows");
    if (!wins)
        return SRV_OK;
    if (!cJSON_IsArray(wins) || cJSON_GetArraySize(wins) < 1 ||
        cJSON_GetArraySize(wins) > POLICY_WINDOWS_MAX)
        return srv_fail(err, SRV_E_INVALID_FIELD, "when.windows must be an array of 1-%d windows",
                        POLICY_WINDOWS_MAX);
    for (const cJSON *w = wins->child; w; w = w->next) {
        policy_window *pw = &r->windows[r->nwindows];
        const char *start = NULL, *end = NULL;
        policy_list days;
        srv_error inner;
        if (!cJSON_IsObject(w) || srv_json_check_fields(w, win_fields, &inner) != SRV_OK ||
            srv_json_get_string(w, "start", 1, 5, &start, &inner) != SRV_OK ||
            srv_json_get_string(w, "end", 1, 5, &end, &inner) != SRV_OK ||
            get_list(w, "when.windows", "days", LIST_DAY, &days, NULL, &inner) != SRV_OK) {
            if (cJSON_IsObject(w) && inner.status == SRV_E_UNKNOWN_FIELD)
                return srv_fail(err, SRV_E_UNKNOWN_FIELD, "when.windows[%zu]: %s", r->nwindows,
                                inner.message);
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "when.windows[%zu] must be {\"days\": [\"mon\", ...], \"start\": "
                            "\"HH:MM\", \"end\": \"HH:MM\"}",
                            r->nwindows);
        }
        if (!parse_hhmm(start, &pw->start) || !parse_hhmm(end, &pw->end) || pw->start == 1440 ||
            pw->start == pw->end) {
            free(days.items);
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "when.windows[%zu]: start and end are HH:MM (end may be 24:00) and "
                            "differ; end before start wraps past midnight",
                            r->nwindows);
        }
        pw->days = days.n ? 0 : 0x7f; /* no days: every day */
        for (size_t i = 0; i < days.n; i++)
            for (unsigned d = 0; d < 7; d++)
                if (strcmp(days.items[i], day_names[d]) == 0)
                    pw->days |= 1u << d;
        free(days.items);
        r->nwindows++;
    }
    return SRV_OK;
}

static srv_status parse_conditions(const cJSON *doc, policy_rule *r, srv_error *err)
{
    static const char *const cond_fields[] = {"hashes", "mechanisms", "quotas", "approval", NULL};
    static const char *const quota_fields[] = {"limit", "window_seconds", "per", NULL};
    static const char *const appr_fields[] = {"required",    "approvers",         "groups",
                                              "ttl_seconds", "project_approvers", NULL};
    const cJSON *cond, *quotas, *appr;
    srv_status st;

    if ((st = get_object(doc, "conditions", 0, &cond, cond_fields, err)) != SRV_OK || !cond)
        return st;
    if ((st = get_list(cond, "conditions", "hashes", LIST_HASH, &r->hashes, &r->has_hashes, err)) !=
            SRV_OK ||
        (st = get_list(cond, "conditions", "mechanisms", LIST_MECH, &r->mechanisms,
                       &r->has_mechanisms, err)) != SRV_OK)
        return st;

    quotas = cJSON_GetObjectItemCaseSensitive(cond, "quotas");
    if (quotas) {
        if (!cJSON_IsArray(quotas) || cJSON_GetArraySize(quotas) > POLICY_QUOTAS_MAX)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "conditions.quotas must be an array of at most %d quotas",
                            POLICY_QUOTAS_MAX);
        for (const cJSON *q = quotas->child; q; q = q->next) {
            policy_quota *pq = &r->quotas[r->nquotas];
            const char *per = NULL;
            srv_error inner;
            if (!cJSON_IsObject(q) || srv_json_check_fields(q, quota_fields, &inner) != SRV_OK ||
                srv_json_get_int(q, "limit", 1, 0, 1000000000LL, &pq->limit, &inner) != SRV_OK ||
                srv_json_get_int(q, "window_seconds", 1, 1, POLICY_QUOTA_WINDOW_MAX, &pq->window,
                                 &inner) != SRV_OK ||
                srv_json_get_string(q, "per", 1, 16, &per, &inner) != SRV_OK)
                return srv_fail(err, SRV_E_INVALID_FIELD,
                                "conditions.quotas[%zu] must be {\"limit\": N (0-1e9), "
                                "\"window_seconds\": 1-%lld, \"per\": \"key\"|\"subject\"|"
                                "\"subject_key\"}",
                                r->nquotas, POLICY_QUOTA_WINDOW_MAX);
            if (strcmp(per, "key") == 0)
                pq->scope = POLICY_QUOTA_KEY;
            else if (strcmp(per, "subject") == 0)
                pq->scope = POLICY_QUOTA_SUBJECT;
            else if (strcmp(per, "subject_key") == 0)
                pq->scope = POLICY_QUOTA_SUBJECT_KEY;
            else
                return srv_fail(err, SRV_E_INVALID_FIELD,
                                "conditions.quotas[%zu].per must be key, subject or subject_key",
                                r->nquotas);
            r->nquotas++;
        }
    }

    if ((st = get_object(cond, "approval", 0, &appr, appr_fields, err)) != SRV_OK || !appr)
        return st;
    r->approval_ttl = 3600;
    if ((st = srv_json_get_int(appr, "required", 1, 1, POLICY_APPROVERS_MAX, &r->approvals_required,
                               err)) != SRV_OK ||
        (st = srv_json_get_int(appr, "ttl_seconds", 0, 1, POLICY_APPROVAL_TTL_MAX, &r->approval_ttl,
                               err)) != SRV_OK ||
        (st = get_list(appr, "conditions.approval", "approvers", LIST_NAME, &r->approvers, NULL,
                       err)) != SRV_OK ||
        (st = get_list(appr, "conditions.approval", "groups", LIST_NAME, &r->approver_groups, NULL,
                       err)) != SRV_OK ||
        (st = srv_json_get_bool(appr, "project_approvers", 0, &r->project_approvers, err)) !=
            SRV_OK)
        return st;
    if (r->approvers.n + r->approver_groups.n == 0 && !r->project_approvers)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "conditions.approval must name approvers or approver groups, or set "
                        "project_approvers");
    if (!r->approver_groups.n && !r->project_approvers &&
        (size_t)r->approvals_required > r->approvers.n)
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "conditions.approval.required (%lld) exceeds the %zu named approvers",
                        r->approvals_required, r->approvers.n);
    return SRV_OK;
}

srv_status policy_rule_parse(const cJSON *doc, policy_rule *r, srv_error *err)
{
    static const char *const fields[] = {"name",    "description", "effect",     "priority",
                                         "enabled", "subjects",    "keys",       "where",
                                         "when",    "conditions",  "provenance", NULL};
    const char *name = NULL, *effect = NULL, *desc = NULL;
    srv_status st;

    memset(r, 0, sizeof(*r));
    r->priority = 100;
    r->enabled = 1;
    snprintf(r->time_zone, sizeof(r->time_zone), "UTC");
    if (!cJSON_IsObject(doc))
        return srv_fail(err, SRV_E_INVALID_FIELD, "a policy must be a JSON object");
    r->doc = cJSON_Duplicate(doc, 1);
    if (!r->doc)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    doc = r->doc; /* every list points into our own copy */
    if ((st = srv_json_check_fields(doc, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(doc, "name", 1, POLICY_NAME_MAX, &name, err)) != SRV_OK ||
        (st = srv_json_get_string(doc, "description", 0, 1024, &desc, err)) != SRV_OK ||
        (st = srv_json_get_string(doc, "effect", 1, 8, &effect, err)) != SRV_OK ||
        (st = srv_json_get_int(doc, "priority", 0, -POLICY_PRIORITY_MAX, POLICY_PRIORITY_MAX,
                               &r->priority, err)) != SRV_OK ||
        (st = srv_json_get_bool(doc, "enabled", 0, &r->enabled, err)) != SRV_OK)
        goto fail;
    if (!srv_valid_name(name, POLICY_NAME_MAX)) {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "name must be 1-64 characters of [A-Za-z0-9._-]");
        goto fail;
    }
    snprintf(r->name, sizeof(r->name), "%s", name);
    if (strcmp(effect, "allow") == 0) {
        r->effect = POLICY_ALLOW;
    } else if (strcmp(effect, "deny") == 0) {
        r->effect = POLICY_DENY;
    } else if (strcmp(effect, "require") == 0) {
        r->effect = POLICY_REQUIRE;
    } else {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "effect must be allow, deny or require");
        goto fail;
    }
    if ((st = parse_scope(doc, r, err)) != SRV_OK || (st = parse_when(doc, r, err)) != SRV_OK ||
        (st = parse_conditions(doc, r, err)) != SRV_OK ||
        (st = policy_prov_rule_parse(doc, r, err)) != SRV_OK)
        goto fail;
    if (r->effect == POLICY_DENY && (r->nquotas || r->approvals_required)) {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "quotas and approval apply to allow rules only");
        goto fail;
    }
    return SRV_OK;
fail:
    policy_rule_clear(r);
    return st;
}

void policy_rule_clear(policy_rule *r)
{
    policy_list *lists[] = {&r->users,      &r->groups,       &r->service_accounts,
                            &r->keys,       &r->key_groups,   &r->projects,
                            &r->machines,   &r->applications, &r->hashes,
                            &r->mechanisms, &r->approvers,    &r->approver_groups};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        free(lists[i]->items);
    free(r->ips);
    policy_prov_rule_free(r->prov);
    cJSON_Delete(r->doc);
    memset(r, 0, sizeof(*r));
}

srv_status policy_set_add(policy_set *set, policy_rule *rule, srv_error *err)
{
    int rc = sgc_array_grow((void **)&set->rules, &set->cap, set->n + 1, sizeof(*set->rules),
                            POLICY_RULES_MAX);
    if (rc == SGC_E_TOO_LARGE)
        return srv_fail(err, SRV_E_INVALID_FIELD, "more than %d policy rules", POLICY_RULES_MAX);
    if (rc != SGC_OK)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    set->rules[set->n++] = *rule;
    memset(rule, 0, sizeof(*rule));
    return SRV_OK;
}

/* Evaluation order: priority descending; at equal priority deny first; then by name. */
static int rule_order(const void *a, const void *b)
{
    const policy_rule *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->effect != y->effect)
        return x->effect == POLICY_DENY ? -1 : 1;
    return strcmp(x->name, y->name);
}

void policy_set_sort(policy_set *set)
{
    if (set->n > 1)
        qsort(set->rules, set->n, sizeof(*set->rules), rule_order);
}

void policy_set_clear(policy_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        policy_rule_clear(&set->rules[i]);
    free(set->rules);
    set->rules = NULL;
    set->n = 0;
    set->cap = 0;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static int window_contains(const policy_window *w, int wday, int minute)
{
    int prev = (wday + 6) % 7;
    if (w->start < w->end)
        return (w->days & (1u << wday)) && minute >= w->start && minute < w->end;
    /* Wraps past midnight: the day names the day the window opens. */
    return ((w->days & (1u << wday)) && minute >= w->start) ||
           ((w->days & (1u << prev)) && minute < w->end);
}

/* Checks every dimension but subject and key; returns POLICY_ALLOWED when the rule matches,
 * else the reason it does not, with a message. */
static policy_outcome rule_mismatch(const policy_rule *r, const policy_request *q, char *msg,
                                    size_t msg_len)
{
    if (r->not_before && q->time < r->not_before) {
        snprintf(msg, msg_len, "rule \"%s\" is not valid yet", r->name);
        return POLICY_OUTSIDE_TIME_WINDOW;
    }
    if (r->not_after && q->time > r->not_after) {
        snprintf(msg, msg_len, "rule \"%s\" has expired", r->name);
        return POLICY_OUTSIDE_TIME_WINDOW;
    }
    if (r->nwindows) {
        struct tm tm;
        int inside = 0;
        if (!policy_localtime(r->time_zone, q->time, &tm)) {
            snprintf(msg, msg_len, "rule \"%s\": cannot read time zone %s", r->name, r->time_zone);
            return POLICY_OUTSIDE_TIME_WINDOW;
        }
        for (size_t i = 0; i < r->nwindows && !inside; i++)
            inside = window_contains(&r->windows[i], tm.tm_wday, tm.tm_hour * 60 + tm.tm_min);
        if (!inside) {
            snprintf(msg, msg_len, "rule \"%s\" allows other times only (now %s %02d:%02d %s)",
                     r->name, day_names[tm.tm_wday], tm.tm_hour, tm.tm_min, r->time_zone);
            return POLICY_OUTSIDE_TIME_WINDOW;
        }
    }
    if (r->has_machines &&
        !(q->machine && *q->machine && policy_list_has(&r->machines, q->machine, 0))) {
        snprintf(msg, msg_len, "rule \"%s\" allows other machines only (request: %s)", r->name,
                 q->machine && *q->machine ? q->machine : "no mTLS machine identity");
        return POLICY_MACHINE_NOT_ALLOWED;
    }
    if (r->has_ips) {
        int inside = 0;
        for (size_t i = 0; i < r->nips && !inside; i++)
            inside = policy_cidr_contains(&r->ips[i], q->ip);
        if (!inside) {
            snprintf(msg, msg_len, "rule \"%s\" allows other networks only (peer %s)", r->name,
                     q->ip ? q->ip : "unknown");
            return POLICY_NETWORK_NOT_ALLOWED;
        }
    }
    if (r->has_apps) {
        int inside = 0;
        for (size_t i = 0; i < r->applications.n && q->application && !inside; i++)
            inside = fnmatch(r->applications.items[i], q->application, 0) == 0;
        if (!inside) {
            snprintf(msg, msg_len,
                     "rule \"%s\" allows other applications only (as reported by "
                     "the agent)",
                     r->name);
            return POLICY_APPLICATION_NOT_ALLOWED;
        }
    }
    if (r->has_hashes && !policy_list_has(&r->hashes, q->hash, 0)) {
        snprintf(msg, msg_len, "rule \"%s\" allows other digest algorithms only", r->name);
        return POLICY_HASH_NOT_ALLOWED;
    }
    if (r->has_mechanisms && !policy_list_has(&r->mechanisms, q->mechanism, 0)) {
        snprintf(msg, msg_len, "rule \"%s\" allows other mechanisms only", r->name);
        return POLICY_MECHANISM_NOT_ALLOWED;
    }
    return POLICY_ALLOWED;
}

static const char *scope_name(policy_quota_scope s)
{
    return s == POLICY_QUOTA_KEY ? "key" : s == POLICY_QUOTA_SUBJECT ? "subject" : "subject_key";
}

void policy_evaluate_allow(const policy_rule *r, const policy_request *q, policy_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->rule = r;
    for (size_t i = 0; i < r->nquotas; i++) {
        const policy_quota *qu = &r->quotas[i];
        long long used = q->count ? q->count(q->count_ctx, qu->scope, q->time - qu->window) : 0;
        if (used < 0) {
            d->outcome = POLICY_ERROR;
            snprintf(d->message, sizeof(d->message), "cannot count signatures for rule \"%s\"",
                     r->name);
            return;
        }
        if (used + q->signatures > qu->limit) {
            d->outcome = POLICY_QUOTA_EXCEEDED;
            snprintf(d->message, sizeof(d->message),
                     "rule \"%s\": quota of %lld signatures per %lld s per %s is used up (%lld "
                     "used, %lld requested)",
                     r->name, qu->limit, qu->window, scope_name(qu->scope), used, q->signatures);
            return;
        }
    }
    if (r->approvals_required) {
        d->outcome = POLICY_APPROVAL_REQUIRED;
        snprintf(d->message, sizeof(d->message), "rule \"%s\" requires %lld approval(s)", r->name,
                 r->approvals_required);
        return;
    }
    d->outcome = POLICY_ALLOWED;
    snprintf(d->message, sizeof(d->message), "allowed by rule \"%s\"", r->name);
}

void policy_evaluate(const policy_set *set, const policy_request *q, policy_decision *d)
{
    const policy_rule *near = NULL;
    policy_outcome near_reason = POLICY_DENIED_DEFAULT;
    char near_msg[256] = "";
    policy_grant grant_pending = q->granted;

    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < set->n; i++) {
        const policy_rule *r = &set->rules[i];
        char msg[256];
        policy_outcome why;

        /* The grant is an allow rule at priority 0, after every explicit rule of priority 0. */
        if (grant_pending && r->priority < 0)
            break;
        if (!r->enabled || r->effect == POLICY_REQUIRE || !policy_rule_in_scope(r, q))
            continue;
        why = rule_mismatch(r, q, msg, sizeof(msg));
        if (why != POLICY_ALLOWED) {
            if (r->effect == POLICY_ALLOW && !near) {
                near = r;
                near_reason = why;
                snprintf(near_msg, sizeof(near_msg), "%s", msg);
            }
            continue;
        }
        if (r->effect == POLICY_DENY) {
            d->outcome = POLICY_DENIED_RULE;
            d->rule = r;
            snprintf(d->message, sizeof(d->message), "denied by rule \"%s\"", r->name);
            return;
        }
        policy_evaluate_allow(r, q, d);
        return;
    }
    if (grant_pending) {
        d->outcome = POLICY_ALLOWED;
        d->by_grant = grant_pending;
        if (grant_pending == POLICY_GRANT_PROJECT)
            snprintf(d->message, sizeof(d->message), "allowed by the signer role in project \"%s\"",
                     q->project);
        else
            snprintf(d->message, sizeof(d->message), "allowed by a grant on key \"%s\"", q->key);
        return;
    }
    /* Nothing allowed it. Name the closest allow rule's reason when there was one. */
    d->outcome = near_reason;
    d->rule = near;
    if (near)
        snprintf(d->message, sizeof(d->message), "%s", near_msg);
    else
        snprintf(d->message, sizeof(d->message),
                 "%s:%s may not sign with key \"%s\": no grant, project role or policy rule "
                 "allows it",
                 q->subject_is_service ? "service" : "user", q->subject, q->key);
}

/* A rule whose only dimensions are subject and key: it matches every request of those. */
static int rule_unconditional(const policy_rule *r)
{
    return !r->not_before && !r->not_after && !r->nwindows && !r->has_machines && !r->has_ips &&
           !r->has_apps && !r->has_hashes && !r->has_mechanisms && !r->nquotas &&
           !r->approvals_required;
}

int policy_may_ever_allow(const policy_set *set, const policy_request *q, const char **rule)
{
    if (rule)
        *rule = NULL;
    if (q->key_disabled)
        return 0;
    for (size_t i = 0; i < set->n; i++) {
        const policy_rule *r = &set->rules[i];
        /* The grant: an allow rule at priority 0, after every explicit rule of priority 0. */
        if (q->granted && r->priority < 0)
            break;
        if (!r->enabled || r->effect == POLICY_REQUIRE || !policy_rule_in_scope(r, q))
            continue;
        if (r->effect == POLICY_ALLOW) {
            if (rule)
                *rule = r->name;
            return 1;
        }
        if (rule_unconditional(r)) {
            if (rule)
                *rule = r->name;
            return 0;
        }
        /* A conditional deny: some request falls outside it and reaches the rules below. */
    }
    if (q->granted) {
        if (rule)
            *rule = grant_rule_name(q->granted);
        return 1;
    }
    return 0;
}
