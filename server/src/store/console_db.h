/* Storage of the console's state: which access tokens are console sessions (the hash of their
 * CSRF token, when they were last used) and each user's TOTP secret (its HSM id, whether its
 * enrollment was confirmed, the last time step used, failed attempts). */
#ifndef SRV_CONSOLE_DB_H
#define SRV_CONSOLE_DB_H

#include "db.h"

typedef struct {
    uint8_t ckaid[SRV_CKAID_LEN];
    int has_enrollment;          /* still pending: confirmed_at is 0 */
    uint8_t enrollment_hash[32]; /* SHA-256 of the pending enrollment's id */
    int64_t created_at, confirmed_at, locked_until;
    int64_t last_step, failures;
} srv_totp_row;

/* SRV_E_NOT_FOUND if the user has no TOTP secret. */
srv_status srv_db_totp_get(srv_db *db, int64_t user_id, srv_totp_row *out, srv_error *err);
/* A new, pending secret for the user (replacing a pending one). */
srv_status srv_db_totp_put_pending(srv_db *db, int64_t user_id, const uint8_t *ckaid,
                                   const uint8_t enrollment_hash[32], int64_t now, srv_error *err);
/* The pending secret becomes the user's, with step used. */
srv_status srv_db_totp_confirm(srv_db *db, int64_t user_id, int64_t step, int64_t now,
                               srv_error *err);
/* A code of step was accepted: it and every earlier one are spent; failures reset. */
srv_status srv_db_totp_used(srv_db *db, int64_t user_id, int64_t step, srv_error *err);
/* A wrong code: counts it; at max failures the user is locked until now + lock_secs (and the
 * count starts again). *locked receives whether this failure locked it. */
srv_status srv_db_totp_failed(srv_db *db, int64_t user_id, int64_t now, int max, int lock_secs,
                              int *locked, srv_error *err);
/* Forgets the user's secret (an admin resets it; the HSM object goes separately). */
srv_status srv_db_totp_delete(srv_db *db, int64_t user_id, srv_error *err);

/* Marks an access token as a console session with the hash of its CSRF token. */
srv_status srv_db_token_console_set(srv_db *db, const uint8_t hash[32], const uint8_t csrf_hash[32],
                                    int64_t now, srv_error *err);
/* *console: whether the token is a console session; then its CSRF hash and last use. */
srv_status srv_db_token_console_get(srv_db *db, const uint8_t hash[32], int *console,
                                    uint8_t csrf_hash[32], int64_t *last_seen, srv_error *err);
srv_status srv_db_token_touch(srv_db *db, const uint8_t hash[32], int64_t now, srv_error *err);
/* Revokes one token (a console logout). */
srv_status srv_db_token_revoke_one(srv_db *db, const uint8_t hash[32], srv_error *err);

#endif
