/* The policy decision for one request, from the rules and groups in the store (decision.c),
 * and the key listing that follows from them. */
#ifndef SRV_POLICY_DECISION_H
#define SRV_POLICY_DECISION_H

#include "../store/db.h"
#include "../store/policy_db.h"
#include "policy.h"

/* A policy decision and everything it points into. */
typedef struct {
    policy_set set;
    char **groups, **key_groups; /* the subject's and the key's groups */
    size_t ngroups, nkey_groups;
    srv_db *db; /* counts quotas on this connection */
    int64_t user_id, key_id;
    policy_request req;
    policy_decision decision;
    cJSON *gates; /* the require rules met, and how (policy_prov_gate()); NULL: none */
} srv_policy_eval;

/* Loads rules and groups from db and decides for user/key. The strings in req must outlive
 * ev. SRV_OK means a decision was made (look at ev->decision). */
srv_status srv_policy_decide(srv_db *db, const srv_user *user, const srv_key *key,
                             const policy_request *req, srv_policy_eval *ev, srv_error *err);
/* Re-checks the deciding rule's quotas on db (the writer's, inside the sign transaction). */
srv_status srv_policy_recheck_quota(srv_policy_eval *ev, srv_db *db, srv_error *err);
void srv_policy_eval_clear(srv_policy_eval *ev);
/* The srv_status a denying decision is answered with. */
srv_status srv_policy_status(policy_outcome outcome);
/* The key listing of GET /api/v1/keys: calls cb, in name order, for every enabled non-CA key
 * that some grant or allow rule could let user sign with (policy_may_ever_allow()). Rules and
 * groups are loaded once. */
srv_status srv_policy_listed_keys(srv_db *db, const srv_user *user, srv_key_cb cb, void *ctx,
                                  srv_error *err);
/* Whether user is in the user group named group (stored groups). */
int srv_policy_user_in_group(srv_db *db, const char *group, const char *user);

#endif
