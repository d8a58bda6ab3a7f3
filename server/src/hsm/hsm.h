/* The HSM, reached through PKCS#11: SoftHSMv2 by default, any PKCS#11 module by config.
 * PKCS#11 is itself the plug-in interface, so there is one implementation: hsm_module.c (the
 * module and its errors), hsm_pool.c (sessions, outage recovery), hsm_cache.c (key handles),
 * hsm_keys.c, hsm_sign.c, hsm_types.c.
 *
 * Errors: SRV_E_KEY_NOT_FOUND only when the token, with a logged-in session, confirms that no
 * such key exists; SRV_E_HSM_UNAVAILABLE (503) when the HSM or the way to it failed (device,
 * session, token-not-present, general errors, a lost connection): the layer then recovers on
 * its own (new sessions, then C_Finalize + C_Initialize + login with exponential back-off,
 * 100 ms to 5 s) and answers SRV_E_HSM_UNAVAILABLE at once until it has; SRV_E_HSM (502) for
 * any other refusal by the HSM. */
#ifndef SRV_HSM_H
#define SRV_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "../common/key_types.h"
#include "../common/status.h"

typedef struct srv_hsm srv_hsm;

typedef struct {
    const char *module_path;
    const char *token_label;
    const char *pin;
    unsigned pool_size; /* logged-in sessions kept open */
} srv_hsm_config;

/* Initialises a fresh token in the first uninitialised slot (SoftHSMv2 style) and sets the
 * user PIN. Used by `signum-server init`; real HSMs are initialised by their own tools. */
srv_status srv_hsm_init_token(const char *module_path, const char *label, const char *so_pin,
                              const char *user_pin, srv_error *err);

srv_status srv_hsm_open(const srv_hsm_config *cfg, srv_hsm **out, srv_error *err);
void srv_hsm_close(srv_hsm *hsm);

/* Generates a token key pair with CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE and sign-only
 * usage; returns the public key as DER SubjectPublicKeyInfo (caller frees). */
srv_status srv_hsm_generate_key(srv_hsm *hsm, srv_key_type type, const uint8_t *id, size_t id_len,
                                const char *label, uint8_t **spki, size_t *spki_len,
                                srv_error *err);

/* Adopts a key pair already in the token (made by another node, or by the HSM vendor's tools)
 * by its CKA_ID: the private key must be CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN, of this
 * type and not labelled as one of reserved_labels (NULL-terminated; else SRV_E_INVALID_FIELD);
 * SRV_E_KEY_NOT_FOUND if the token confirms there is no such pair. Returns the public key as
 * DER SubjectPublicKeyInfo (caller frees). */
srv_status srv_hsm_adopt_key(srv_hsm *hsm, srv_key_type type, const uint8_t *id, size_t id_len,
                             const char *const *reserved_labels, uint8_t **spki, size_t *spki_len,
                             srv_error *err);

/* Destroys the key pair with this CKA_ID (used to undo a key whose registration failed). */
srv_status srv_hsm_destroy_key(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_error *err);

/* HMAC secrets (hsm_secret.c): imported once (the caller wipes its copy), then sensitive and
 * non-extractable; the HSM computes HMAC-SHA-1 over them (TOTP, RFC 6238). */
srv_status srv_hsm_secret_import(srv_hsm *hsm, const uint8_t *id, size_t id_len, const char *label,
                                 const uint8_t *value, size_t len, srv_error *err);
/* SRV_E_NOT_FOUND if there is no secret with that id. */
srv_status srv_hsm_hmac_sha1(srv_hsm *hsm, const uint8_t *id, size_t id_len, const uint8_t *data,
                             size_t len, uint8_t out[20], srv_error *err);
srv_status srv_hsm_secret_destroy(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_error *err);

/* Signs `data` with the private key whose CKA_ID is id:
 *  - SRV_MECH_RSA_PKCS1: data is a complete DigestInfo (CKM_RSA_PKCS);
 *  - SRV_MECH_RSA_PSS: data is the digest of `hash`, salt_len bytes of salt (CKM_RSA_PKCS_PSS);
 *  - SRV_MECH_ECDSA: data is the digest; the signature is raw r||s (CKM_ECDSA).
 * *sig_len holds the buffer size on entry and the signature length on return. */
srv_status srv_hsm_sign(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_mech mech,
                        srv_hash hash, unsigned salt_len, const uint8_t *data, size_t data_len,
                        uint8_t *sig, size_t *sig_len, srv_error *err);

/* A small private token data object (CKO_DATA, at most 4 KiB) named by its CKA_LABEL:
 * srv_hsm_data_put creates or replaces it; srv_hsm_data_get answers SRV_E_NOT_FOUND when
 * absent and returns a malloc'd copy of the value. The audit log keeps its checkpoint
 * high-water mark here, out of reach of anyone who can only edit the database. */
srv_status srv_hsm_data_put(srv_hsm *hsm, const char *label, const uint8_t *value, size_t len,
                            srv_error *err);
srv_status srv_hsm_data_get(srv_hsm *hsm, const char *label, uint8_t **value, size_t *len,
                            srv_error *err);

/* Reports whether the token answers (SRV_OK, SRV_E_HSM_UNAVAILABLE while down and
 * recovering, SRV_E_HSM); detail receives a short human description. */
srv_status srv_hsm_health(srv_hsm *hsm, char *detail, size_t detail_len);

/* 0 while the HSM is marked down (recovery in progress), 1 otherwise; no HSM call. */
int srv_hsm_available(srv_hsm *hsm);

/* Test hook: closes every session behind the pool's back, as a lost HSM connection would.
 * The next operation must recover transparently. */
void srv_hsm_drop_sessions(srv_hsm *hsm);

/* Test hook: finalises the module behind the pool's back, as a restarted HSM daemon or a lost
 * connection leaves it (CKR_CRYPTOKI_NOT_INITIALIZED on every call). The layer must answer
 * SRV_E_HSM_UNAVAILABLE, never SRV_E_KEY_NOT_FOUND, and re-initialise on its own. */
void srv_hsm_drop_module(srv_hsm *hsm);

/* Counters for /metrics and tests: sessions reopened, module re-initialisations. */
unsigned long srv_hsm_reopen_count(srv_hsm *hsm);
unsigned long srv_hsm_reinit_count(srv_hsm *hsm);

#endif
