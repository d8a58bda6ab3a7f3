/* PKCS#11 HSM access: module loading, a pool of logged-in sessions that reopens lost ones,
 * a CKA_ID -> key handle cache, key generation and signing. */
#include "hsm.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

static const struct {
    const char *name;
    int rsa;
    unsigned bits;
    size_t sig_len;
} key_types[SRV_KEY_TYPE_COUNT] = {
    [SRV_KEY_RSA_2048] = {"rsa2048", 1, 2048, 256}, [SRV_KEY_RSA_3072] = {"rsa3072", 1, 3072, 384},
    [SRV_KEY_RSA_4096] = {"rsa4096", 1, 4096, 512}, [SRV_KEY_EC_P256] = {"ec-p256", 0, 256, 64},
    [SRV_KEY_EC_P384] = {"ec-p384", 0, 384, 96},
};

static const struct {
    const char *name;
    size_t len;
    CK_MECHANISM_TYPE ck_hash;
    CK_RSA_PKCS_MGF_TYPE ck_mgf;
} hashes[SRV_HASH_COUNT] = {
    [SRV_HASH_SHA256] = {"sha256", 32, CKM_SHA256, CKG_MGF1_SHA256},
    [SRV_HASH_SHA384] = {"sha384", 48, CKM_SHA384, CKG_MGF1_SHA384},
    [SRV_HASH_SHA512] = {"sha512", 64, CKM_SHA512, CKG_MGF1_SHA512},
};

static const char *mech_names[SRV_MECH_COUNT] = {
    [SRV_MECH_RSA_PKCS1] = "rsa-pkcs1",
    [SRV_MECH_RSA_PSS] = "rsa-pss",
    [SRV_MECH_ECDSA] = "ecdsa",
};

/* DER OIDs for CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

const char *srv_key_type_name(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].name : "unknown";
}

int srv_key_type_parse(const char *name, srv_key_type *out)
{
    for (int i = 0; i < SRV_KEY_TYPE_COUNT; i++)
        if (strcmp(name, key_types[i].name) == 0) {
            *out = (srv_key_type)i;
            return 1;
        }
    return 0;
}

int srv_key_type_is_rsa(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT && key_types[type].rsa;
}

size_t srv_key_type_sig_len(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].sig_len : 0;
}

const char *srv_hash_name(srv_hash hash)
{
    return (unsigned)hash < SRV_HASH_COUNT ? hashes[hash].name : "unknown";
}

int srv_hash_parse(const char *name, srv_hash *out)
{
    for (int i = 0; i < SRV_HASH_COUNT; i++)
        if (strcmp(name, hashes[i].name) == 0) {
            *out = (srv_hash)i;
            return 1;
        }
    return 0;
}

size_t srv_hash_len(srv_hash hash)
{
    return (unsigned)hash < SRV_HASH_COUNT ? hashes[hash].len : 0;
}

const char *srv_mech_name(srv_mech mech)
{
    return (unsigned)mech < SRV_MECH_COUNT ? mech_names[mech] : "unknown";
}

int srv_mech_parse(const char *name, srv_mech *out)
{
    for (int i = 0; i < SRV_MECH_COUNT; i++)
        if (strcmp(name, mech_names[i]) == 0) {
            *out = (srv_mech)i;
            return 1;
        }
    return 0;
}

/* ---- module and error handling ---------------------------------------------------------- */

static const char *ckr_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
    case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
    case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
    case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
    default: return "CKR_(other)";
    }
}

static srv_status hsm_fail(srv_error *err, const char *what, CK_RV rv)
{
    return srv_fail(err, SRV_E_HSM, "%s failed: %s (0x%lx)", what, ckr_name(rv), (unsigned long)rv);
}

/* A session that this error makes useless; the pool replaces it and retries once. */
static int session_lost(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_ERROR;
}

typedef struct {
    void *dl;
    CK_FUNCTION_LIST_PTR fn;
} p11_module;

static srv_status module_load(const char *path, p11_module *m, srv_error *err)
{
    CK_C_GetFunctionList get_list;
    CK_C_INITIALIZE_ARGS init_args;
    CK_RV rv;

    memset(m, 0, sizeof(*m));
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl)
        return srv_fail(err, SRV_E_CONFIG, "cannot load PKCS#11 module %s: %s", path, dlerror());
    get_list = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (!get_list || get_list(&m->fn) != CKR_OK || !m->fn) {
        dlclose(m->dl);
        m->dl = NULL;
        return srv_fail(err, SRV_E_CONFIG, "%s is not a PKCS#11 module", path);
    }
    memset(&init_args, 0, sizeof(init_args));
    init_args.flags = CKF_OS_LOCKING_OK;
    rv = m->fn->C_Initialize(&init_args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        dlclose(m->dl);
        m->dl = NULL;
        return hsm_fail(err, "C_Initialize", rv);
    }
    return SRV_OK;
}

static void module_unload(p11_module *m)
{
    if (m->fn)
        m->fn->C_Finalize(NULL);
    if (m->dl)
        dlclose(m->dl);
    memset(m, 0, sizeof(*m));
}

static void pad_label(const char *label, CK_UTF8CHAR out[32])
{
    size_t n = strlen(label);
    memset(out, ' ', 32);
    memcpy(out, label, n > 32 ? 32 : n);
}

/* Finds the slot holding an initialised token with this label. */
static srv_status find_slot(p11_module *m, const char *label, CK_SLOT_ID *slot, srv_error *err)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG count = 0, i;
    CK_UTF8CHAR want[32];
    CK_RV rv;
    srv_status st = SRV_OK;

    pad_label(label, want);
    rv = m->fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK)
        return hsm_fail(err, "C_GetSlotList", rv);
    slots = calloc(count ? count : 1, sizeof(*slots));
    if (!slots)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    rv = m->fn->C_GetSlotList(CK_TRUE, slots, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    for (i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (m->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if ((info.flags & CKF_TOKEN_INITIALIZED) && memcmp(info.label, want, 32) == 0) {
            *slot = slots[i];
            goto out;
        }
    }
    st = srv_fail(err, SRV_E_CONFIG, "no initialised token labelled \"%s\"", label);
out:
    free(slots);
    return st;
}

srv_status srv_hsm_init_token(const char *module_path, const char *label, const char *so_pin,
                              const char *user_pin, srv_error *err)
{
    p11_module m;
    CK_SLOT_ID *slots = NULL, slot = 0;
    CK_ULONG count = 0, i;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_UTF8CHAR plabel[32];
    CK_RV rv;
    int found = 0;
    srv_status st;

    if (strlen(label) > 32)
        return srv_fail(err, SRV_E_CONFIG, "token label longer than 32 bytes");
    st = module_load(module_path, &m, err);
    if (st != SRV_OK)
        return st;
    rv = m.fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    slots = calloc(count ? count : 1, sizeof(*slots));
    if (!slots) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    rv = m.fn->C_GetSlotList(CK_TRUE, slots, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    for (i = 0; i < count && !found; i++) {
        CK_TOKEN_INFO info;
        if (m.fn->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            !(info.flags & CKF_TOKEN_INITIALIZED)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) {
        st = srv_fail(err, SRV_E_HSM, "no slot with an uninitialised token");
        goto out;
    }
    pad_label(label, plabel);
    rv = m.fn->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), plabel);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_InitToken", rv);
        goto out;
    }
    /* SoftHSMv2 moves an initialised token to a new slot id: look it up again by label. */
    st = find_slot(&m, label, &slot, err);
    if (st != SRV_OK)
        goto out;
    rv = m.fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_OpenSession", rv);
        goto out;
    }
    rv = m.fn->C_Login(session, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_Login(SO)", rv);
        goto out;
    }
    rv = m.fn->C_InitPIN(session, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    m.fn->C_Logout(session);
    if (rv != CKR_OK)
        st = hsm_fail(err, "C_InitPIN", rv);
out:
    if (session != CK_INVALID_HANDLE)
        m.fn->C_CloseSession(session);
    free(slots);
    module_unload(&m);
    return st;
}

/* ---- the pool ----------------------------------------------------------------------------- */

#define KEY_CACHE_BUCKETS 256
#define MAX_ID_LEN        64

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
    pthread_mutex_t lock;
    pthread_cond_t available;
    pooled *free_sessions;
    unsigned free_count, pool_size, gen;
    key_entry *keys[KEY_CACHE_BUCKETS];
    unsigned long reopens;
};

static srv_status session_open(srv_hsm *hsm, CK_SESSION_HANDLE *out, srv_error *err)
{
    CK_RV rv =
        hsm->m.fn->C_OpenSession(hsm->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out);
    if (rv != CKR_OK)
        return hsm_fail(err, "C_OpenSession", rv);
    /* Login applies to every session of the application; a second one is harmless. */
    rv = hsm->m.fn->C_Login(*out, CKU_USER, (CK_UTF8CHAR_PTR)hsm->pin, strlen(hsm->pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        hsm->m.fn->C_CloseSession(*out);
        *out = CK_INVALID_HANDLE;
        return hsm_fail(err, "C_Login", rv);
    }
    return SRV_OK;
}

static srv_status session_acquire(srv_hsm *hsm, pooled *out, srv_error *err)
{
    unsigned gen;
    pthread_mutex_lock(&hsm->lock);
    while (hsm->free_count == 0)
        pthread_cond_wait(&hsm->available, &hsm->lock);
    *out = hsm->free_sessions[--hsm->free_count];
    gen = hsm->gen;
    pthread_mutex_unlock(&hsm->lock);
    if (out->h == CK_INVALID_HANDLE || out->gen != gen) {
        /* Lost earlier, or from a generation the HSM forgot: open a fresh one. */
        srv_status st;
        out->gen = gen;
        st = session_open(hsm, &out->h, err);
        if (st != SRV_OK) {
            out->h = CK_INVALID_HANDLE;
            pthread_mutex_lock(&hsm->lock);
            hsm->free_sessions[hsm->free_count++] = *out;
            pthread_cond_signal(&hsm->available);
            pthread_mutex_unlock(&hsm->lock);
            return st;
        }
    }
    return SRV_OK;
}

static void session_release(srv_hsm *hsm, pooled session)
{
    pthread_mutex_lock(&hsm->lock);
    hsm->free_sessions[hsm->free_count++] = session;
    pthread_cond_signal(&hsm->available);
    pthread_mutex_unlock(&hsm->lock);
}

/* Replaces a session the HSM no longer knows. The first to notice retires the whole
 * generation: when one session is gone, the others usually went with it. */
static srv_status session_replace(srv_hsm *hsm, pooled *session, CK_RV why, srv_error *err)
{
    if (why != CKR_SESSION_HANDLE_INVALID && why != CKR_SESSION_CLOSED)
        hsm->m.fn->C_CloseSession(session->h);
    pthread_mutex_lock(&hsm->lock);
    if (session->gen == hsm->gen)
        hsm->gen++;
    session->gen = hsm->gen;
    hsm->reopens++;
    pthread_mutex_unlock(&hsm->lock);
    session->h = CK_INVALID_HANDLE;
    srv_log(SRV_LOG_WARN, "hsm", "HSM session lost (%s); reopening", ckr_name(why));
    if (session_open(hsm, &session->h, NULL) == SRV_OK)
        return SRV_OK;
    /* A token that went away and came back may sit in another slot now. */
    if (find_slot(&hsm->m, hsm->label, &hsm->slot, err) != SRV_OK)
        return SRV_E_HSM;
    return session_open(hsm, &session->h, err);
}

srv_status srv_hsm_open(const srv_hsm_config *cfg, srv_hsm **out, srv_error *err)
{
    srv_hsm *hsm;
    srv_status st;
    unsigned i;

    *out = NULL;
    hsm = calloc(1, sizeof(*hsm));
    if (!hsm)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    pthread_mutex_init(&hsm->lock, NULL);
    pthread_cond_init(&hsm->available, NULL);
    hsm->pool_size = cfg->pool_size ? cfg->pool_size : 4;
    hsm->pin = strdup(cfg->pin);
    snprintf(hsm->label, sizeof(hsm->label), "%s", cfg->token_label);
    hsm->free_sessions = calloc(hsm->pool_size, sizeof(pooled));
    if (!hsm->pin || !hsm->free_sessions) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    st = module_load(cfg->module_path, &hsm->m, err);
    if (st != SRV_OK)
        goto fail;
    st = find_slot(&hsm->m, cfg->token_label, &hsm->slot, err);
    if (st != SRV_OK)
        goto fail;
    for (i = 0; i < hsm->pool_size; i++) {
        st = session_open(hsm, &hsm->free_sessions[i].h, err);
        if (st != SRV_OK)
            goto fail;
        hsm->free_count++;
    }
    srv_log(SRV_LOG_INFO, "hsm", "token \"%s\" ready with %u sessions", cfg->token_label,
            hsm->pool_size);
    *out = hsm;
    return SRV_OK;
fail:
    srv_hsm_close(hsm);
    return st;
}

void srv_hsm_close(srv_hsm *hsm)
{
    unsigned i;
    if (!hsm)
        return;
    if (hsm->m.fn) {
        for (i = 0; i < hsm->free_count; i++)
            if (hsm->free_sessions[i].h != CK_INVALID_HANDLE &&
                hsm->free_sessions[i].gen == hsm->gen)
                hsm->m.fn->C_CloseSession(hsm->free_sessions[i].h);
    }
    module_unload(&hsm->m);
    for (i = 0; i < KEY_CACHE_BUCKETS; i++) {
        key_entry *e = hsm->keys[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    if (hsm->pin) {
        OPENSSL_cleanse(hsm->pin, strlen(hsm->pin));
        free(hsm->pin);
    }
    free(hsm->free_sessions);
    pthread_mutex_destroy(&hsm->lock);
    pthread_cond_destroy(&hsm->available);
    free(hsm);
}

/* ---- key handles -------------------------------------------------------------------------- */

static unsigned id_bucket(const uint8_t *id, size_t len)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % KEY_CACHE_BUCKETS;
}

static int cache_get(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE *out)
{
    key_entry *e;
    int found = 0;
    pthread_mutex_lock(&hsm->lock);
    for (e = hsm->keys[id_bucket(id, len)]; e; e = e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            *out = e->handle;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&hsm->lock);
    return found;
}

static void cache_put(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE handle)
{
    unsigned b = id_bucket(id, len);
    key_entry *e;
    pthread_mutex_lock(&hsm->lock);
    for (e = hsm->keys[b]; e; e = e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            e->handle = handle;
            goto out;
        }
    e = calloc(1, sizeof(*e));
    if (e) {
        memcpy(e->id, id, len);
        e->id_len = len;
        e->handle = handle;
        e->next = hsm->keys[b];
        hsm->keys[b] = e;
    }
out:
    pthread_mutex_unlock(&hsm->lock);
}

static void cache_forget(srv_hsm *hsm, const uint8_t *id, size_t len)
{
    key_entry **p, *e;
    pthread_mutex_lock(&hsm->lock);
    for (p = &hsm->keys[id_bucket(id, len)]; (e = *p); p = &e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            *p = e->next;
            free(e);
            break;
        }
    pthread_mutex_unlock(&hsm->lock);
}

static CK_RV find_object(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const uint8_t *id,
                         size_t id_len, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_ULONG n = 0;
    CK_RV rv = hsm->m.fn->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK)
        return rv;
    rv = hsm->m.fn->C_FindObjects(s, out, 1, &n);
    hsm->m.fn->C_FindObjectsFinal(s);
    if (rv == CKR_OK && n == 0)
        return CKR_KEY_HANDLE_INVALID;
    return rv;
}

/* ---- public key export -------------------------------------------------------------------- */

static srv_status spki_from_pkey_params(const char *alg, OSSL_PARAM_BLD *bld, uint8_t **spki,
                                        size_t *spki_len, srv_error *err)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *pkey = NULL;
    unsigned char *der = NULL;
    int len;
    srv_status st = SRV_OK;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        st = srv_fail(err, SRV_E_HSM, "HSM returned an unusable public key");
        goto out;
    }
    len = i2d_PUBKEY(pkey, &der);
    if (len <= 0) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot encode public key");
        goto out;
    }
    *spki = malloc((size_t)len);
    if (!*spki) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*spki, der, (size_t)len);
    *spki_len = (size_t)len;
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return st;
}

static srv_status read_attr(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                            CK_ATTRIBUTE_TYPE type, uint8_t **val, CK_ULONG *len, srv_error *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = hsm->m.fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 4096)
        return hsm_fail(err, "C_GetAttributeValue", rv == CKR_OK ? CKR_GENERAL_ERROR : rv);
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    if (!a.pValue)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    rv = hsm->m.fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return hsm_fail(err, "C_GetAttributeValue", rv);
    }
    *val = a.pValue;
    *len = a.ulValueLen;
    return SRV_OK;
}

static srv_status export_public(srv_hsm *hsm, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                                srv_key_type type, uint8_t **spki, size_t *spki_len, srv_error *err)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    uint8_t *a = NULL, *b = NULL;
    CK_ULONG alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;
    srv_status st;

    if (!bld)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (srv_key_type_is_rsa(type)) {
        st = read_attr(hsm, s, pub, CKA_MODULUS, &a, &alen, err);
        if (st == SRV_OK)
            st = read_attr(hsm, s, pub, CKA_PUBLIC_EXPONENT, &b, &blen, err);
        if (st != SRV_OK)
            goto out;
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        st = spki_from_pkey_params("RSA", bld, spki, spki_len, err);
    } else {
        const uint8_t *point;
        size_t point_len;
        st = read_attr(hsm, s, pub, CKA_EC_POINT, &a, &alen, err);
        if (st != SRV_OK)
            goto out;
        /* CKA_EC_POINT is a DER OCTET STRING around the uncompressed point. */
        if (alen >= 3 && a[0] == 0x04 && a[1] < 0x80 && (CK_ULONG)a[1] + 2 == alen) {
            point = a + 2;
            point_len = a[1];
        } else if (alen >= 4 && a[0] == 0x04 && a[1] == 0x81 && (CK_ULONG)a[2] + 3 == alen) {
            point = a + 3;
            point_len = a[2];
        } else {
            point = a; /* some modules return the raw point */
            point_len = alen;
        }
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             type == SRV_KEY_EC_P256 ? "P-256" : "P-384", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        st = spki_from_pkey_params("EC", bld, spki, spki_len, err);
    }
out:
    BN_free(n);
    BN_free(e);
    free(a);
    free(b);
    OSSL_PARAM_BLD_free(bld);
    return st;
}

/* ---- operations --------------------------------------------------------------------------- */

srv_status srv_hsm_generate_key(srv_hsm *hsm, srv_key_type type, const uint8_t *id, size_t id_len,
                                const char *label, uint8_t **spki, size_t *spki_len, srv_error *err)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = key_types[type].bits;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {
        srv_key_type_is_rsa(type) ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[12];
    CK_ULONG npub = 0, npriv = 0;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    pooled s;
    CK_RV rv;
    srv_status st;
    int attempt;

    *spki = NULL;
    if ((unsigned)type >= SRV_KEY_TYPE_COUNT || id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key type or id");

#define ATTR(arr, n, t, v, l)                                                                      \
    (arr[n].type = (t), arr[n].pValue = (void *)(v), arr[n].ulValueLen = (l), n++)
    ATTR(pub, npub, CKA_TOKEN, &yes, sizeof(yes));
    ATTR(pub, npub, CKA_VERIFY, &yes, sizeof(yes));
    ATTR(pub, npub, CKA_ENCRYPT, &no, sizeof(no));
    ATTR(pub, npub, CKA_WRAP, &no, sizeof(no));
    ATTR(pub, npub, CKA_ID, id, id_len);
    ATTR(pub, npub, CKA_LABEL, label, strlen(label));
    if (srv_key_type_is_rsa(type)) {
        ATTR(pub, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
        ATTR(pub, npub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
    } else if (type == SRV_KEY_EC_P256) {
        ATTR(pub, npub, CKA_EC_PARAMS, oid_p256, sizeof(oid_p256));
    } else {
        ATTR(pub, npub, CKA_EC_PARAMS, oid_p384, sizeof(oid_p384));
    }
    ATTR(priv, npriv, CKA_TOKEN, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_PRIVATE, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
    ATTR(priv, npriv, CKA_SIGN, &yes, sizeof(yes));
    ATTR(priv, npriv, CKA_DECRYPT, &no, sizeof(no));
    ATTR(priv, npriv, CKA_UNWRAP, &no, sizeof(no));
    ATTR(priv, npriv, CKA_DERIVE, &no, sizeof(no));
    ATTR(priv, npriv, CKA_ID, id, id_len);
    ATTR(priv, npriv, CKA_LABEL, label, strlen(label));
#undef ATTR

    st = session_acquire(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (attempt = 0; attempt < 2; attempt++) {
        rv = hsm->m.fn->C_GenerateKeyPair(s.h, &mech, pub, npub, priv, npriv, &hpub, &hpriv);
        if (rv == CKR_OK || !session_lost(rv) || attempt == 1)
            break;
        st = session_replace(hsm, &s, rv, err);
        if (st != SRV_OK)
            goto out;
    }
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GenerateKeyPair", rv);
        goto out;
    }
    st = export_public(hsm, s.h, hpub, type, spki, spki_len, err);
    if (st != SRV_OK) {
        /* A key we cannot describe is useless: take it out again. */
        hsm->m.fn->C_DestroyObject(s.h, hpriv);
        hsm->m.fn->C_DestroyObject(s.h, hpub);
        goto out;
    }
    cache_put(hsm, id, id_len, hpriv);
out:
    session_release(hsm, s);
    return st;
}

srv_status srv_hsm_destroy_key(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_error *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    pooled s;
    srv_status st;

    if (id_len == 0 || id_len > MAX_ID_LEN)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key id");
    cache_forget(hsm, id, id_len);
    st = session_acquire(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        CK_OBJECT_HANDLE obj;
        CK_RV rv = find_object(hsm, s.h, classes[i], id, id_len, &obj);
        if (rv == CKR_OK)
            rv = hsm->m.fn->C_DestroyObject(s.h, obj);
        if (rv != CKR_OK && rv != CKR_KEY_HANDLE_INVALID && st == SRV_OK)
            st = hsm_fail(err, "C_DestroyObject", rv);
    }
    session_release(hsm, s);
    return st;
}

srv_status srv_hsm_sign(srv_hsm *hsm, const uint8_t *id, size_t id_len, srv_mech mech,
                        srv_hash hash, unsigned salt_len, const uint8_t *data, size_t data_len,
                        uint8_t *sig, size_t *sig_len, srv_error *err)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m = {0, NULL, 0};
    pooled s;
    CK_OBJECT_HANDLE key;
    CK_ULONG out_len = 0;
    CK_RV rv = CKR_OK;
    srv_status st;
    int attempt;

    if (id_len == 0 || id_len > MAX_ID_LEN || (unsigned)hash >= SRV_HASH_COUNT)
        return srv_fail(err, SRV_E_INVALID_FIELD, "bad key id or hash");
    switch (mech) {
    case SRV_MECH_RSA_PKCS1: m.mechanism = CKM_RSA_PKCS; break;
    case SRV_MECH_RSA_PSS:
        pss.hashAlg = hashes[hash].ck_hash;
        pss.mgf = hashes[hash].ck_mgf;
        pss.sLen = salt_len;
        m.mechanism = CKM_RSA_PKCS_PSS;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof(pss);
        break;
    case SRV_MECH_ECDSA: m.mechanism = CKM_ECDSA; break;
    default: return srv_fail(err, SRV_E_MECHANISM, "unknown mechanism");
    }

    st = session_acquire(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    for (attempt = 0; attempt < 3; attempt++) {
        rv = CKR_OK;
        if (!cache_get(hsm, id, id_len, &key)) {
            rv = find_object(hsm, s.h, CKO_PRIVATE_KEY, id, id_len, &key);
            if (rv == CKR_KEY_HANDLE_INVALID) {
                st = srv_fail(err, SRV_E_KEY_NOT_FOUND, "the HSM has no private key with this id");
                goto out;
            }
            if (rv == CKR_OK)
                cache_put(hsm, id, id_len, key);
        }
        if (rv == CKR_OK)
            rv = hsm->m.fn->C_SignInit(s.h, &m, key);
        if (rv == CKR_OK) {
            out_len = *sig_len;
            rv = hsm->m.fn->C_Sign(s.h, (CK_BYTE_PTR)data, data_len, sig, &out_len);
        }
        if (rv == CKR_OK)
            break;
        if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
            cache_forget(hsm, id, id_len);
            continue;
        }
        if (!session_lost(rv))
            break;
        st = session_replace(hsm, &s, rv, err);
        if (st != SRV_OK)
            goto out;
    }
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_Sign", rv);
        goto out;
    }
    *sig_len = out_len;
out:
    session_release(hsm, s);
    return st;
}

/* ---- data objects ---------------------------------------------------------------------- */

/* Finds up to max token data objects with this label; *n receives how many. */
static CK_RV find_data(srv_hsm *hsm, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *out,
                       CK_ULONG max, CK_ULONG *n)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_RV rv = hsm->m.fn->C_FindObjectsInit(s, tmpl, 3);
    *n = 0;
    if (rv != CKR_OK)
        return rv;
    rv = hsm->m.fn->C_FindObjects(s, out, max, n);
    hsm->m.fn->C_FindObjectsFinal(s);
    return rv;
}

#define DATA_OBJECTS_MAX 8

srv_status srv_hsm_data_put(srv_hsm *hsm, const char *label, const uint8_t *value, size_t len,
                            srv_error *err)
{
    static const char application[] = "signum-server";
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_HANDLE old[DATA_OBJECTS_MAX], obj;
    CK_ULONG n = 0;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, (void *)application, sizeof(application) - 1},
        {CKA_VALUE, (void *)value, len},
    };
    pooled s;
    srv_status st;
    CK_RV rv;

    if (len > 4096)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM data object too large");
    st = session_acquire(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    rv = find_data(hsm, s.h, label, old, DATA_OBJECTS_MAX, &n);
    if (session_lost(rv) && session_replace(hsm, &s, rv, err) == SRV_OK)
        rv = find_data(hsm, s.h, label, old, DATA_OBJECTS_MAX, &n);
    /* CKA_VALUE of a data object may be read-only (SoftHSMv2): write a new object, then drop
     * the old ones, so that a crash in between leaves two objects rather than none. */
    if (rv == CKR_OK)
        rv = hsm->m.fn->C_CreateObject(s.h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        rv = hsm->m.fn->C_DestroyObject(s.h, old[i]);
    if (rv != CKR_OK)
        st = hsm_fail(err, "storing a data object", rv);
    session_release(hsm, s);
    return st;
}

srv_status srv_hsm_data_get(srv_hsm *hsm, const char *label, uint8_t **value, size_t *len,
                            srv_error *err)
{
    CK_OBJECT_HANDLE obj[2];
    CK_ULONG n = 0, vlen = 0;
    pooled s;
    srv_status st;
    CK_RV rv;

    *value = NULL;
    *len = 0;
    st = session_acquire(hsm, &s, err);
    if (st != SRV_OK)
        return st;
    rv = find_data(hsm, s.h, label, obj, 2, &n);
    if (session_lost(rv) && session_replace(hsm, &s, rv, err) == SRV_OK)
        rv = find_data(hsm, s.h, label, obj, 2, &n);
    if (rv != CKR_OK)
        st = hsm_fail(err, "finding a data object", rv);
    else if (n == 0)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no HSM data object \"%s\"", label);
    else if (n > 1)
        st = srv_fail(err, SRV_E_HSM,
                      "several HSM data objects \"%s\" (an update was interrupted; the next "
                      "one repairs it)",
                      label);
    else if ((st = read_attr(hsm, s.h, obj[0], CKA_VALUE, value, &vlen, err)) == SRV_OK)
        *len = vlen;
    session_release(hsm, s);
    return st;
}

srv_status srv_hsm_health(srv_hsm *hsm, char *detail, size_t detail_len)
{
    CK_TOKEN_INFO info;
    CK_RV rv = hsm->m.fn->C_GetTokenInfo(hsm->slot, &info);
    unsigned free_now;
    pthread_mutex_lock(&hsm->lock);
    free_now = hsm->free_count;
    pthread_mutex_unlock(&hsm->lock);
    if (rv != CKR_OK) {
        snprintf(detail, detail_len, "C_GetTokenInfo: %s", ckr_name(rv));
        return SRV_E_HSM;
    }
    snprintf(detail, detail_len, "token present, %u of %u sessions idle", free_now, hsm->pool_size);
    return SRV_OK;
}

void srv_hsm_drop_sessions(srv_hsm *hsm)
{
    hsm->m.fn->C_CloseAllSessions(hsm->slot);
}

unsigned long srv_hsm_reopen_count(srv_hsm *hsm)
{
    unsigned long n;
    pthread_mutex_lock(&hsm->lock);
    n = hsm->reopens;
    pthread_mutex_unlock(&hsm->lock);
    return n;
}
