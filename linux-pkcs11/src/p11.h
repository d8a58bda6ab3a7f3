/* libsignumpkcs11 internals: global state, locking, typed handles, the token built from the
 * agent's key listing, sessions and their operations. Only the C_* entry points are exported;
 * everything here is hidden (-fvisibility=hidden and a version script). */
#ifndef SIGNUM_P11_H
#define SIGNUM_P11_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pkcs11-3.0.h"
#include "signum/client.h"
#include "signum/crypto.h"

#define P11_EXPORT __attribute__((visibility("default")))

#define P11_SLOT_ID      0
#define P11_MAX_PIN      256
#define P11_MAX_SESSIONS 4096

/* ---- logging (SIGNUM_DEBUG=p11 or all; SIGNUM_P11_LOG=FILE, else stderr) ------------------- */

void p11_log_init(void);
int p11_log_enabled(void);
void p11_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- errors.c: the one map from the client library's status to CK_RV ----------------------- */

typedef enum {
    P11_CTX_GENERAL, /* listing, status: anything without a more specific meaning */
    P11_CTX_LOGIN,   /* C_Login: a refused credential is a wrong PIN */
    P11_CTX_SIGN,    /* C_Sign*: bad input is a data length problem */
} p11_context;

CK_RV p11_map_status(sg_status st, p11_context ctx);
const char *p11_rv_name(CK_RV rv);

/* ---- locking: every C_Initialize combination (state.c) ------------------------------------- */

void p11_lock(void);
void p11_unlock(void);
/* Sets the lock up for C_Initialize's arguments (CKR_ARGUMENTS_BAD, CKR_CANT_LOCK) and tears
 * it down in C_Finalize; p11_lock_is_app: the application's mutex functions are used. */
CK_RV p11_lock_setup(const CK_C_INITIALIZE_ARGS *a);
void p11_lock_teardown(void);
int p11_lock_is_app(void);

/* ---- typed handles (handles.c) ------------------------------------------------------------- */

typedef enum { P11_H_FREE = 0, P11_H_SESSION, P11_H_OBJECT } p11_handle_kind;

typedef struct {
    p11_handle_kind kind;
    uint16_t gen;
    void *ptr;
} p11_handle_entry;

typedef struct {
    p11_handle_entry *entries;
    size_t count, cap;
} p11_handle_table;

CK_RV p11_handle_add(p11_handle_table *t, p11_handle_kind kind, void *ptr, CK_ULONG *out);
void *p11_handle_get(const p11_handle_table *t, CK_ULONG handle, p11_handle_kind kind);
void p11_handle_remove(p11_handle_table *t, CK_ULONG handle);
void p11_handle_table_free(p11_handle_table *t);

/* ---- the token: keys and objects from one listing (token.c) -------------------------------- */

typedef struct {
    const sg_key *k;
    sg_pubkey_info pub;
    CK_KEY_TYPE type;
    CK_ULONG bits;
    size_t sig_len; /* bytes of one signature (modulus, or r||s) */
    sg_cert_info cert;
    int has_cert;
} p11_key;

typedef struct {
    CK_OBJECT_HANDLE handle;
    CK_OBJECT_CLASS cls;
    size_t key;         /* the key this object belongs to (CA certificates: the first user) */
    int is_ca;          /* a chain certificate */
    const uint8_t *der; /* certificates */
    size_t der_len;
    sg_cert_info cert;
    uint8_t id[64];
    size_t id_len;
    char label[128];
} p11_object;

typedef struct {
    int reachable;    /* the agent answered */
    int loaded;       /* the key listing is here (once per process and C_Initialize) */
    int has_session;  /* the agent holds credentials: no PIN needed */
    int login_needed; /* the agent said it has none: wait for C_Login */
    char identity[129];
    char server[513];
    sg_key_list *list;
    p11_key *keys;
    size_t nkeys;
    p11_object *objects;
    size_t nobjects;
} p11_token;

/* Makes sure the token knows whether the agent is there and, if it can, has the listing.
 * Called with the lock held; talks to the agent only until the listing is in. */
CK_RV p11_token_ensure(void);
/* Builds objects from a fresh listing (taken over) and the agent's status. */
CK_RV p11_token_load(sg_key_list *list, const sg_agent_status *status);
void p11_token_clear(void);
const p11_key *p11_key_of(const p11_object *o);

/* ---- objects and attributes (p11-object.c) ------------------------------------------------- */

/* Whether the application may see the object now (private objects need a login). */
int p11_object_visible(const p11_object *o);
p11_object *p11_object_get(CK_OBJECT_HANDLE h);

/* ---- sessions (p11-session.c) -------------------------------------------------------------- */

typedef enum { P11_OP_NONE = 0, P11_OP_ACTIVE, P11_OP_BUSY } p11_op_state;

typedef struct p11_mech p11_mech;

typedef struct {
    p11_op_state state;
    unsigned ticket; /* changes with every init, so a late finisher cannot end a newer one */
    const p11_mech *mech;
    size_t key;
    sg_hash hash;
    unsigned salt;
    int multipart; /* C_SignUpdate was called */
    sg_digest_ctx dctx;
    int dctx_live;
} p11_sign_op;

typedef struct {
    p11_op_state state;
    sg_hash hash;
    int multipart;
    sg_digest_ctx dctx;
} p11_digest_op;

typedef struct {
    CK_SESSION_HANDLE handle;
    CK_FLAGS flags;
    struct {
        int active;
        CK_OBJECT_HANDLE *hits;
        size_t count, pos;
    } find;
    p11_sign_op sign;
    p11_digest_op digest;
} p11_session;

/* The sessions and their operations' state (p11-session.c); the operations themselves are
 * p11-sign.c's and p11-digest.c's. */
p11_session *p11_session_get(CK_SESSION_HANDLE h);
CK_RV p11_session_lookup(CK_SESSION_HANDLE h, p11_session **out);
void p11_sessions_close_all(void);
void p11_sign_op_end(p11_sign_op *op);
void p11_digest_op_end(p11_digest_op *op);

/* ---- mechanisms (mechanism.c) -------------------------------------------------------------- */

typedef enum { P11_FAM_RSA_PKCS, P11_FAM_RSA_PSS, P11_FAM_ECDSA, P11_FAM_DIGEST } p11_family;

struct p11_mech {
    CK_MECHANISM_TYPE type;
    const char *name;
    p11_family family;
    int hashes;   /* hash-and-sign (or digest): the module hashes locally */
    sg_hash hash; /* for hashing mechanisms */
    CK_KEY_TYPE key_type;
    CK_FLAGS flags;
};

const p11_mech *p11_mech_find(CK_MECHANISM_TYPE type);
size_t p11_mech_count(void);
const p11_mech *p11_mech_at(size_t i);
CK_RV p11_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
/* Mechanisms a key of this type allows (for CKA_ALLOWED_MECHANISMS). */
size_t p11_mech_for_key(CK_KEY_TYPE kt, CK_MECHANISM_TYPE *out, size_t cap);
/* Checks a signing mechanism's parameters against the key; fills hash and salt. */
CK_RV p11_mech_check(const p11_mech *m, const CK_MECHANISM *mech, const p11_key *key, sg_hash *hash,
                     unsigned *salt);

/* ---- global state (state.c) --------------------------------------------------------------- */

typedef struct {
    int initialized;
    pid_t pid; /* the process that called C_Initialize: a forked child must initialize again */
    sg_client *client;
    p11_handle_table handles;
    p11_token token;
    int logged_in; /* the application's login state (C_Login/C_Logout) */
    size_t sessions;
} p11_global;

extern p11_global p11;

/* The entry check: initialized in this process (a forked child is not), then the lock. */
CK_RV p11_enter(void);
/* Unlocks and logs the result of one call. */
CK_RV p11_leave(CK_RV rv, const char *fn);
/* C_GetInfo as a library of this Cryptoki version (2.40 through C_GetFunctionList, 3.0
 * through the interfaces of p11-interface.c). */
CK_RV p11_get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor);

/* Pads a string with blanks into a fixed PKCS#11 text field. */
void p11_pad(CK_UTF8CHAR *dst, size_t len, const char *src);

#endif
