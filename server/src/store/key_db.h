/* Storage of a key's lifecycle state: whether it may sign now (disabled or suspended, with
 * why; its certificate expired or revoked), and the signatures made with it since a time. */
#ifndef SRV_KEY_DB_H
#define SRV_KEY_DB_H

#include "db.h"

#define SRV_REASON_MAX 512

typedef struct {
    int disabled;
    char reason[SRV_REASON_MAX + 1]; /* why it was disabled or suspended ("" if not said) */
    int has_cert;
    int64_t cert_not_after, cert_revoked_at; /* 0: not revoked */
    long long signatures_total, usage_limit; /* usage_limit -1: none */
} srv_key_state;

srv_status srv_db_key_state(srv_db *db, int64_t key_id, srv_key_state *out, srv_error *err);
/* Disables (reason given) or enables (reason NULL) a key at `now`. */
srv_status srv_db_key_set_state(srv_db *db, int64_t key_id, int disabled, const char *reason,
                                int64_t now, srv_error *err);
/* Marks the key's current certificate revoked at `now` (a new certificate starts unrevoked). */
srv_status srv_db_cert_mark_revoked(srv_db *db, int64_t key_id, int64_t now, srv_error *err);

/* One signing record of the audit log. */
typedef struct {
    int64_t seq;
    const char *time, *actor, *record; /* valid during the callback */
} srv_signature_row;
typedef void (*srv_signature_cb)(const srv_signature_row *row, void *ctx);
/* The signatures handed out with key_name at or after since (RFC 3339 UTC text, as the audit
 * log writes it), oldest first, at most limit of them; *more is set if there were more. */
srv_status srv_db_signatures_since(srv_db *db, const char *key_name, const char *since, long limit,
                                   srv_signature_cb cb, void *ctx, int *more, srv_error *err);

/* Rotation: the key's current HSM key (and certificate) becomes an earlier version, the key
 * name now means the new one (ckaid, spki), with no certificate yet. SRV_E_EXISTS if the key
 * is no longer old_ckaid (rotated meanwhile). */
srv_status srv_db_key_rotate(srv_db *db, int64_t key_id, const uint8_t *old_ckaid,
                             const uint8_t *ckaid, const uint8_t *spki, size_t spki_len,
                             int64_t now, srv_error *err);

/* An earlier version of a key. */
typedef struct {
    int64_t version;
    uint8_t ckaid[SRV_CKAID_LEN];
    const uint8_t *cert_der; /* valid during the callback; NULL if none */
    size_t cert_der_len;
    int64_t cert_not_after, created_at, rotated_at, retired_at; /* 0: not retired */
} srv_key_version;
typedef void (*srv_key_version_cb)(const srv_key_version *v, void *ctx);
/* The earlier versions of a key (version 0: all), oldest first. */
srv_status srv_db_key_versions(srv_db *db, int64_t key_id, int64_t version, srv_key_version_cb cb,
                               void *ctx, srv_error *err);
/* Marks an earlier version retired; SRV_E_NOT_FOUND if there is none or it is already. */
srv_status srv_db_key_version_retire(srv_db *db, int64_t key_id, int64_t version, int64_t now,
                                     srv_error *err);

#endif
