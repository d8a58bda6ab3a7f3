/* Storage of the built-in CA's revocations and of its current CRL. */
#ifndef SRV_CA_DB_H
#define SRV_CA_DB_H

#include "db.h"

#define SRV_SERIAL_HEX_MAX 64

typedef struct {
    char serial[SRV_SERIAL_HEX_MAX + 1]; /* uppercase hexadecimal */
    int64_t key_id, revoked_at, not_after;
    int reason; /* RFC 5280 CRLReason */
} srv_revocation;

/* SRV_E_EXISTS if that serial is revoked already. */
srv_status srv_db_revocation_insert(srv_db *db, const srv_revocation *r, srv_error *err);
/* SRV_E_NOT_FOUND if the serial is not revoked. */
srv_status srv_db_revocation_get(srv_db *db, const char *serial, srv_revocation *out,
                                 srv_error *err);
typedef void (*srv_revocation_cb)(const srv_revocation *r, void *ctx);
srv_status srv_db_revocations_list(srv_db *db, srv_revocation_cb cb, void *ctx, srv_error *err);

/* The current CRL (SRV_E_NOT_FOUND before the first); *der is malloc'd. */
srv_status srv_db_crl_get(srv_db *db, int64_t *number, uint8_t **der, size_t *der_len,
                          int64_t *next_update, srv_error *err);
srv_status srv_db_crl_put(srv_db *db, int64_t number, const uint8_t *der, size_t der_len,
                          int64_t this_update, int64_t next_update, srv_error *err);

#endif
