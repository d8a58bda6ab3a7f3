/* Storage of the policy engine: rule documents (versioned), user and key groups, signature
 * counts for quotas, approval requests and their votes. Writes run on the writer thread. */
#ifndef SRV_POLICY_DB_H
#define SRV_POLICY_DB_H

#include "db.h"

#define SRV_APPROVAL_ID_LEN 32 /* hex characters */

/* Rule documents (canonical JSON text). */
typedef enum { SRV_PUT_CREATE, SRV_PUT_UPDATE, SRV_PUT_UPSERT } srv_put_mode;
/* CREATE: SRV_E_EXISTS if the name is taken; UPDATE: SRV_E_NOT_FOUND if not. Each change
 * bumps the rule's version and keeps the old text in policy_versions. */
srv_status srv_db_policy_put(srv_db *db, const char *name, const char *doc, srv_put_mode mode,
                             int64_t *version, srv_error *err);
/* *doc is malloc'd. SRV_E_NOT_FOUND if there is no such rule. */
srv_status srv_db_policy_get(srv_db *db, const char *name, char **doc, int64_t *version,
                             srv_error *err);
srv_status srv_db_policy_delete(srv_db *db, const char *name, srv_error *err);
typedef void (*srv_policy_cb)(const char *name, int64_t version, const char *doc,
                              int64_t updated_at, void *ctx);
srv_status srv_db_policies_list(srv_db *db, srv_policy_cb cb, void *ctx, srv_error *err);
/* The kept versions of a rule, newest first, at most limit; doc is NULL for a deletion. */
srv_status srv_db_policy_versions(srv_db *db, const char *name, long limit, srv_policy_cb cb,
                                  void *ctx, srv_error *err);

/* Groups: kind "user" (users and service accounts) or "key"; members is a JSON array text. */
srv_status srv_db_group_put(srv_db *db, const char *kind, const char *name, const char *members,
                            srv_put_mode mode, srv_error *err);
srv_status srv_db_group_delete(srv_db *db, const char *kind, const char *name, srv_error *err);
typedef void (*srv_group_cb)(const char *name, const char *members, int64_t updated_at, void *ctx);
srv_status srv_db_groups_list(srv_db *db, const char *kind, srv_group_cb cb, void *ctx,
                              srv_error *err);

/* Signatures made, for quotas: written with the sign record, so a failed signature never
 * counts. user_id or key_id 0 in a count means any. */
srv_status srv_db_usage_add(srv_db *db, int64_t user_id, int64_t key_id, int64_t time,
                            long long count, srv_error *err);
srv_status srv_db_usage_count(srv_db *db, int64_t user_id, int64_t key_id, int64_t since,
                              long long *out, srv_error *err);
/* Drops counts older than before (no quota window is longer). */
srv_status srv_db_usage_purge(srv_db *db, int64_t before, srv_error *err);

typedef struct {
    char id[SRV_APPROVAL_ID_LEN + 1];
    int64_t user_id, key_id;
    char rule[SRV_NAME_MAX + 1];
    char *request; /* the sign request body (JSON text) */
    long long required;
    char *approvers; /* {"approvers": [...], "groups": [...]} */
    char status[16]; /* pending, approved, rejected, signed */
    int64_t created_at, expires_at, decided_at;
    char *response;                 /* the answer once signed */
    char machine[SRV_NAME_MAX + 1]; /* the verified mTLS machine of the request, "" if none */
} srv_approval;

void srv_approval_clear(srv_approval *a);
srv_status srv_db_approval_insert(srv_db *db, const srv_approval *a, srv_error *err);
/* SRV_E_NOT_FOUND if unknown. */
srv_status srv_db_approval_get(srv_db *db, const char *id, srv_approval *out, srv_error *err);
srv_status srv_db_approval_set_status(srv_db *db, const char *id, const char *status,
                                      const char *response, int64_t now, srv_error *err);
typedef void (*srv_approval_cb)(const srv_approval *a, void *ctx);
/* The approval requests a user made, newest first, at most limit. */
srv_status srv_db_approvals_of_user(srv_db *db, int64_t user_id, long limit, srv_approval_cb cb,
                                    void *ctx, srv_error *err);
/* Pending, unexpired requests, oldest first. */
srv_status srv_db_approvals_pending(srv_db *db, int64_t now, srv_approval_cb cb, void *ctx,
                                    srv_error *err);
/* SRV_E_EXISTS if the approver already decided on this request. reason: NULL or why (kept
 * with a rejection). */
srv_status srv_db_vote_insert(srv_db *db, const char *id, const char *approver,
                              const char *decision, const char *reason, int64_t now,
                              srv_error *err);
typedef void (*srv_vote_cb)(const char *approver, const char *decision, int64_t time, void *ctx);
srv_status srv_db_votes_list(srv_db *db, const char *id, srv_vote_cb cb, void *ctx, srv_error *err);

#endif
