/* Storage of the identity lifecycle: disabling, enabling and deleting users and service
 * accounts, listing and revoking their API keys and enrolled keys, and tying each access
 * token to the credential it was minted from, so that revoking the credential revokes the
 * tokens in the same transaction. Writes run on the writer thread. */
#ifndef SRV_IDENTITY_DB_H
#define SRV_IDENTITY_DB_H

#include "db.h"

/* A user or service account as the admin API shows it. */
typedef struct {
    srv_user user;
    int64_t created_at;
    int64_t deleted_at; /* 0 if not deleted */
} srv_identity;

typedef void (*srv_identity_cb)(const srv_identity *id, void *ctx);
/* Every identity of a kind, in name order; deleted ones only with include_deleted. */
srv_status srv_db_identities_list(srv_db *db, srv_user_kind kind, int include_deleted,
                                  srv_identity_cb cb, void *ctx, srv_error *err);
/* SRV_E_USER_NOT_FOUND if there is no identity of that name (deleted ones are found). */
srv_status srv_db_identity_get(srv_db *db, const char *name, srv_identity *out, srv_error *err);
srv_status srv_db_identity_set_disabled(srv_db *db, int64_t user_id, int disabled, srv_error *err);
/* Marks the identity deleted (and disabled) at `now`; its name stays taken, so that the audit
 * history it left can never be confused with a new identity's. */
srv_status srv_db_identity_mark_deleted(srv_db *db, int64_t user_id, int64_t now, srv_error *err);
/* Drops every grant of the identity; *count receives how many. */
srv_status srv_db_identity_drop_grants(srv_db *db, int64_t user_id, int64_t *count, srv_error *err);

/* API keys of a user. */
typedef struct {
    int64_t id;
    char prefix[32];
    int64_t created_at, last_used_at, revoked_at; /* 0 if never */
    int revoked;
} srv_apikey_info;
typedef void (*srv_apikey_cb)(const srv_apikey_info *k, void *ctx);
srv_status srv_db_apikeys_list(srv_db *db, int64_t user_id, srv_apikey_cb cb, void *ctx,
                               srv_error *err);
/* The unrevoked key with that prefix of that user: its id, else SRV_E_NOT_FOUND. */
srv_status srv_db_apikey_active_id(srv_db *db, int64_t user_id, const char *prefix, int64_t *id,
                                   srv_error *err);
/* Revokes one key (prefix) or, with prefix NULL, every unrevoked key of the user, and every
 * unexpired access token minted from them; *keys and *tokens receive the counts. */
srv_status srv_db_apikeys_revoke(srv_db *db, int64_t user_id, const char *prefix, int64_t now,
                                 int64_t *keys, int64_t *tokens, srv_error *err);
srv_status srv_db_apikey_touch(srv_db *db, int64_t id, int64_t now, srv_error *err);

/* Enrolled key pairs of a service account. */
typedef struct {
    char kid[64];
    int64_t created_at, revoked_at, last_used_at; /* 0 if never */
} srv_sakey_info;
typedef void (*srv_sakey_cb)(const srv_sakey_info *k, void *ctx);
srv_status srv_db_sakeys_list(srv_db *db, int64_t user_id, srv_sakey_cb cb, void *ctx,
                              srv_error *err);
/* Revokes one enrolled key (kid) or, with kid NULL, all of them, and the unexpired tokens
 * minted with them. SRV_E_NOT_FOUND if kid names no unrevoked key of the account. */
srv_status srv_db_sakeys_revoke(srv_db *db, int64_t user_id, const char *kid, int64_t now,
                                int64_t *keys, int64_t *tokens, srv_error *err);
/* Whether kid is an unrevoked key of the account (SRV_E_BAD_CREDENTIALS if not), and notes
 * its use at `now`. */
srv_status srv_db_sakey_use(srv_db *db, int64_t user_id, const char *kid, int64_t now,
                            srv_error *err);

/* Records what a token was minted from: an API key (api_key_id) or an enrolled key (kid). */
srv_status srv_db_token_set_source(srv_db *db, const uint8_t hash[32], int64_t api_key_id,
                                   const char *kid, srv_error *err);

#endif
