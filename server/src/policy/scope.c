/* Whom and what a policy rule covers: its subjects (users, service accounts, groups) and its
 * keys (names, key groups, projects). Apart from policy.c because both the evaluator there and
 * the provenance gate (provenance_rule.c) ask it. */
#include <string.h>

#include "policy.h"

int policy_list_has(const policy_list *l, const char *s, int wildcard)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], s) == 0 || (wildcard && strcmp(l->items[i], "*") == 0))
            return 1;
    return 0;
}

static int any_in_list(const policy_list *l, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (policy_list_has(l, names[i], 0))
            return 1;
    return 0;
}

static int subject_matches(const policy_rule *r, const policy_request *q)
{
    if (q->subject_is_service ? policy_list_has(&r->service_accounts, q->subject, 1)
                              : policy_list_has(&r->users, q->subject, 1))
        return 1;
    /* "*" among users also covers service accounts: any authenticated subject. */
    if (q->subject_is_service && policy_list_has(&r->users, "*", 0))
        return 1;
    return any_in_list(&r->groups, q->groups, q->ngroups);
}

static int key_matches(const policy_rule *r, const policy_request *q)
{
    return policy_list_has(&r->keys, q->key, 1) ||
           any_in_list(&r->key_groups, q->key_groups, q->nkey_groups) ||
           (q->project && *q->project && policy_list_has(&r->projects, q->project, 0));
}

int policy_rule_in_scope(const policy_rule *r, const policy_request *q)
{
    return subject_matches(r, q) && key_matches(r, q);
}
