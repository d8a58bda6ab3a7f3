/* Shared by the files of the HSM layer only: the module, the session pool and its recovery
 * state, the key handle cache. hsm.h is the interface the rest of the server sees. */
#ifndef SRV_HSM_INTERNAL_H
#define SRV_HSM_INTERNAL_H

#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdint.h>

#include "hsm.h"

#define KEY_CACHE_BUCKETS 256
#define MAX_ID_LEN        64

/* Recovery back-off: first retry after HSM_BACKOFF_MIN_US, doubling up to HSM_BACKOFF_MAX_US. */
#define HSM_BACKOFF_MIN_US 100000u
#define HSM_BACKOFF_MAX_US 5000000u

typedef struct {
    void *dl;
    CK_FUNCTION_LIST_PTR fn;
} p11_module;

typedef struct key_entry {
    struct key_entry *next;
    uint8_t id[MAX_ID_LEN];
    size_t id_len;
    CK_OBJECT_HANDLE handle;
} key_entry;

/* A pooled session and the pool generation it was opened in. When the HSM loses sessions
 * the generation moves on: handles of an older generation are dropped, never closed, because
 * the module may already have handed the same number to a new session. */
typedef struct {
    CK_SESSION_HANDLE h;
    unsigned gen;
} pooled;

struct srv_hsm {
    p11_module m;
    CK_SLOT_ID slot;
    char *pin;
    char label[33];
    /* Every operation holds this shared for all of its PKCS#11 calls; re-initialising the
     * module (C_Finalize + C_Initialize) holds it exclusively, so no caller is ever inside the
     * module while it is torn down. Writer-preferring: a stream of requests cannot starve the
     * recovery. Never taken twice by one thread. */
    pthread_rwlock_t module_lock;
    /* The pool, the key cache and the availability state below. */
    pthread_mutex_t lock;
    pthread_cond_t available;
    pooled *free_sessions;
    unsigned free_count, pool_size, gen;
    key_entry *keys[KEY_CACHE_BUCKETS];
    unsigned long reopens, reinits;
    /* Down: the HSM failed in a way a fresh session did not cure. Operations then fail fast
     * with SRV_E_HSM_UNAVAILABLE and the recovery thread re-initialises the module with
     * exponential back-off until the token answers again. */
    int down;
    CK_RV down_rv;
    char down_what[48];
    uint64_t down_since_us, backoff_us, next_try_us;
    unsigned long failed_attempts;
    pthread_t recovery;
    pthread_cond_t recovery_wake; /* with lock */
    int recovery_running, stopping;
};

/* ---- hsm_module.c ---- */
const char *hsm_ckr_name(CK_RV rv);
/* The HSM (or the way to it) failed, as opposed to a bad request or a missing object. */
int hsm_rv_unavailable(CK_RV rv);
/* A session this error makes useless; replacing it may cure the error. */
int hsm_rv_session_lost(CK_RV rv);
/* err from a failed call: SRV_E_HSM_UNAVAILABLE for the errors above, else SRV_E_HSM. */
srv_status hsm_fail(srv_error *err, const char *what, CK_RV rv);
srv_status hsm_module_load(const char *path, p11_module *m, srv_error *err);
CK_RV hsm_module_initialize(p11_module *m);
void hsm_module_unload(p11_module *m);
srv_status hsm_find_slot(p11_module *m, const char *label, CK_SLOT_ID *slot, srv_error *err);

/* ---- hsm_pool.c ---- */
/* Starts an operation: the module held shared and a logged-in session of the current
 * generation. Fails fast with SRV_E_HSM_UNAVAILABLE while the HSM is down. */
srv_status hsm_op_begin(srv_hsm *hsm, pooled *s, srv_error *err);
void hsm_op_end(srv_hsm *hsm, pooled *s);
/* After `what` failed with rv on s: when a new session may cure it (and attempts remain),
 * replaces s and returns SRV_OK so the caller retries; else sets err and returns the status
 * to answer, marking the HSM down when the HSM itself failed. */
srv_status hsm_op_retry(srv_hsm *hsm, pooled *s, const char *what, CK_RV rv, int last_attempt,
                        srv_error *err);
/* Records that the HSM failed; wakes the recovery thread. Returns SRV_E_HSM_UNAVAILABLE. */
srv_status hsm_mark_down(srv_hsm *hsm, const char *what, CK_RV rv, srv_error *err);

/* ---- hsm_cache.c ---- */
int hsm_cache_get(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE *out);
void hsm_cache_put(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE handle);
void hsm_cache_forget(srv_hsm *hsm, const uint8_t *id, size_t len);
/* Drops every cached handle: after a re-init they name nothing (or something else). Lock held. */
void hsm_cache_clear_locked(srv_hsm *hsm);

/* ---- hsm_keys.c ---- */
/* Finds one object of this class and CKA_ID. CKR_KEY_HANDLE_INVALID only when the object is
 * truly absent: an empty search is confirmed against the session's login state and the
 * token, since private objects vanish from a session that silently lost its login. */
CK_RV hsm_find_object(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const uint8_t *id,
                      size_t id_len, CK_OBJECT_HANDLE *out);
/* CKR_OK when an empty search on s means "no such object"; else why it does not. */
CK_RV hsm_confirm_absent(srv_hsm *hsm, CK_SESSION_HANDLE s);
srv_status hsm_read_attr(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE_TYPE type, uint8_t **val, CK_ULONG *len, srv_error *err);

/* ---- hsm_types.c ---- */
CK_MECHANISM_TYPE hsm_hash_mech(srv_hash hash);
CK_RSA_PKCS_MGF_TYPE hsm_hash_mgf(srv_hash hash);

#endif
