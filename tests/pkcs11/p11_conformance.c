/* A PKCS#11 conformance suite run against any module: SoftHSMv2 directly, and
 * libsignumpkcs11.so with a real signum-server and signum-agent behind it. The expectations
 * are the same wherever the behaviour should match; where it cannot (a write-protected token
 * that signs only digests, against a software token that does everything), each test says
 * what each module must answer. Signatures are verified with OpenSSL's libcrypto.
 *
 * Environment (set by run_conformance.py): P11_MODULE (path), P11_FLAVOR (softhsm|signum),
 * P11_PIN, P11_RSA_LABEL, P11_EC_LABEL. */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "pkcs11-3.0.h"

#define THREADS        16
#define SIGNS_PER_TASK 6

static struct {
    void *dl;
    CK_FUNCTION_LIST *f;
    int signum; /* our module; else SoftHSMv2 */
    const char *pin, *rsa_label, *ec_label;
    CK_SLOT_ID slot;
} M;

/* Per test: an initialized module, one logged-in session, the two keys. */
static struct {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE rsa, ec;   /* private keys */
    EVP_PKEY *rsa_pub, *ec_pub; /* from the certificates, for verification */
} T;

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *rv_name(CK_RV rv)
{
    switch (rv) {
#define N(x)                                                                                       \
    case x: return #x;
        N(CKR_OK)
        N(CKR_ARGUMENTS_BAD)
        N(CKR_ATTRIBUTE_SENSITIVE)
        N(CKR_ATTRIBUTE_TYPE_INVALID)
        N(CKR_BUFFER_TOO_SMALL)
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        N(CKR_CRYPTOKI_NOT_INITIALIZED)
        N(CKR_DATA_INVALID)
        N(CKR_DATA_LEN_RANGE)
        N(CKR_FUNCTION_NOT_SUPPORTED)
        N(CKR_KEY_FUNCTION_NOT_PERMITTED)
        N(CKR_KEY_HANDLE_INVALID)
        N(CKR_KEY_TYPE_INCONSISTENT)
        N(CKR_MECHANISM_INVALID)
        N(CKR_MECHANISM_PARAM_INVALID)
        N(CKR_OBJECT_HANDLE_INVALID)
        N(CKR_OPERATION_ACTIVE)
        N(CKR_OPERATION_NOT_INITIALIZED)
        N(CKR_RANDOM_NO_RNG)
        N(CKR_SESSION_HANDLE_INVALID)
        N(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
        N(CKR_SLOT_ID_INVALID)
        N(CKR_TOKEN_WRITE_PROTECTED)
        N(CKR_USER_ALREADY_LOGGED_IN)
        N(CKR_USER_NOT_LOGGED_IN)
        N(CKR_USER_TYPE_INVALID)
        N(CKR_FUNCTION_REJECTED)
        N(CKR_NO_EVENT)
        N(CKR_GENERAL_ERROR)
#undef N
    }
    return "other";
}

#define assert_rv(expr, want) check_rv((expr), (want), #expr, __FILE__, __LINE__)

static void check_rv(CK_RV got, CK_RV want, const char *expr, const char *file, int line)
{
    if (got != want)
        fail_msg("%s:%d: %s returned %s (0x%lx), expected %s (0x%lx)", file, line, expr,
                 rv_name(got), got, rv_name(want), want);
}

/* An answer that differs between the two modules by design. */
#define assert_rv_by_module(expr, want_softhsm, want_signum)                                       \
    assert_rv((expr), M.signum ? (want_signum) : (want_softhsm))

static CK_RV init_os_locking(void)
{
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    return M.f->C_Initialize(&a);
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    assert_rv(M.f->C_FindObjectsInit(s, t, 2), CKR_OK);
    assert_rv(M.f->C_FindObjects(s, h, 2, &n), CKR_OK);
    assert_rv(M.f->C_FindObjectsFinal(s), CKR_OK);
    assert_int_equal(n, 1);
    return h[0];
}

static void get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, uint8_t *buf,
                     CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, buf, *len};
    assert_rv(M.f->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
    *len = a.ulValueLen;
}

static CK_BBOOL get_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = 0xAA;
    CK_ULONG len = sizeof(b);
    get_attr(s, o, type, &b, &len);
    assert_int_equal(len, 1);
    return b;
}

static EVP_PKEY *cert_key(CK_SESSION_HANDLE s, const char *label)
{
    uint8_t der[8192];
    const uint8_t *p = der;
    CK_ULONG len = sizeof(der);
    X509 *x;
    EVP_PKEY *k;
    get_attr(s, find_one(s, CKO_CERTIFICATE, label), CKA_VALUE, der, &len);
    x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    k = X509_get_pubkey(x);
    X509_free(x);
    assert_non_null(k);
    return k;
}

typedef enum { V_PKCS1, V_PSS, V_ECDSA } vkind;

/* OpenSSL checks a signature over a digest; ECDSA arrives as PKCS#11's raw r||s. */
static int verify(EVP_PKEY *pk, const EVP_MD *md, vkind kind, int salt, const uint8_t *dgst,
                  size_t dlen, const uint8_t *sig, size_t slen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
    uint8_t der[256];
    unsigned char *dp = der;
    int ok = 0, dlen_der = 0;

    if (!c || EVP_PKEY_verify_init(c) != 1 || EVP_PKEY_CTX_set_signature_md(c, md) != 1)
        goto out;
    if (kind == V_ECDSA) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)slen / 2, NULL),
               *s = BN_bin2bn(sig + slen / 2, (int)slen / 2, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            ECDSA_SIG_free(es);
            goto out;
        }
        dlen_der = i2d_ECDSA_SIG(es, &dp);
        ECDSA_SIG_free(es);
        sig = der;
        slen = (size_t)dlen_der;
    } else if (kind == V_PSS) {
        if (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) != 1)
            goto out;
    } else if (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1) {
        goto out;
    }
    ok = EVP_PKEY_verify(c, sig, slen, dgst, dlen) == 1;
out:
    EVP_PKEY_CTX_free(c);
    return ok;
}

static void digest(const EVP_MD *md, const void *data, size_t len, uint8_t *out, size_t *out_len)
{
    unsigned n = 0;
    assert_int_equal(EVP_Digest(data, len, out, &n, md, NULL), 1);
    *out_len = n;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    CK_ULONG n = 0;
    (void)state;
    memset(&T, 0, sizeof(T));
    assert_rv(init_os_locking(), CKR_OK);
    assert_rv(M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &T.s), CKR_OK);
    assert_rv(M.f->C_Login(T.s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin)), CKR_OK);
    (void)n;
    T.rsa = find_one(T.s, CKO_PRIVATE_KEY, M.rsa_label);
    T.ec = find_one(T.s, CKO_PRIVATE_KEY, M.ec_label);
    T.rsa_pub = cert_key(T.s, M.rsa_label);
    T.ec_pub = cert_key(T.s, M.ec_label);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(T.rsa_pub);
    EVP_PKEY_free(T.ec_pub);
    M.f->C_Finalize(NULL);
    return 0;
}

/* ---- entry points and initialization ------------------------------------------------------ */

static void test_function_lists(void **state)
{
    CK_C_GetInterfaceList get_list = (CK_C_GetInterfaceList)dlsym(M.dl, "C_GetInterfaceList");
    CK_C_GetInterface get_one = (CK_C_GetInterface)dlsym(M.dl, "C_GetInterface");
    CK_FUNCTION_LIST *fl = NULL;
    CK_INTERFACE list[4], *iface = NULL;
    CK_VERSION v240 = {2, 40};
    CK_ULONG n = 0;
    (void)state;

    assert_rv(M.f->C_GetFunctionList(&fl), CKR_OK);
    assert_non_null(fl);
    assert_int_equal(fl->version.major, 2);
    assert_rv(M.f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    if (!M.signum) {
        /* SoftHSMv2 2.6 is a PKCS#11 2.40 module: no 3.0 interface to compare with. */
        assert_null(get_list);
        return;
    }
    assert_non_null(get_list);
    assert_non_null(get_one);
    assert_rv(get_list(NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    n = 1;
    assert_rv(get_list(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    assert_rv(get_list(list, &n), CKR_OK);
    assert_string_equal((char *)list[0].pInterfaceName, "PKCS 11");
    assert_int_equal(((CK_VERSION *)list[0].pFunctionList)->major, 3);
    assert_rv(get_one(NULL, NULL, &iface, 0), CKR_OK);
    assert_int_equal(((CK_VERSION *)iface->pFunctionList)->major, 3);
    assert_rv(get_one((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK);
    assert_int_equal(((CK_VERSION *)iface->pFunctionList)->minor, 40);
    assert_rv(get_one((CK_UTF8CHAR_PTR) "Vendor X", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
    /* Not fork-safe by design: a child initializes again. */
    assert_rv(get_one(NULL, NULL, &iface, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);
    {
        /* The 3.0 list works end to end, including a 3.0-only function. */
        CK_FUNCTION_LIST_3_0 *f3;
        CK_SESSION_HANDLE s;
        CK_INFO info;
        assert_rv(get_one(NULL, NULL, &iface, 0), CKR_OK);
        f3 = iface->pFunctionList;
        assert_rv(f3->C_Initialize(NULL), CKR_OK);
        assert_rv(f3->C_GetInfo(&info), CKR_OK);
        assert_int_equal(info.cryptokiVersion.major, 3);
        assert_rv(f3->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
        assert_rv(f3->C_LoginUser(s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin),
                                  (CK_UTF8CHAR_PTR) "anyone", 6),
                  CKR_OK);
        assert_rv(f3->C_SessionCancel(s, CKF_SIGN), CKR_OK);
        assert_rv(f3->C_SignMessageBegin(s, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
        assert_rv(f3->C_Finalize(NULL), CKR_OK);
    }
}

static void test_initialize_finalize(void **state)
{
    CK_C_INITIALIZE_ARGS a;
    CK_INFO info;
    CK_ULONG n;
    (void)state;

    assert_rv(M.f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(M.f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_rv(M.f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    memset(&a, 0, sizeof(a));
    a.pReserved = &a;
    assert_rv(M.f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    assert_rv(M.f->C_Initialize(NULL), CKR_OK);
    assert_rv(M.f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_rv(M.f->C_GetInfo(&info), CKR_OK);
    assert_rv(M.f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    assert_rv(M.f->C_Finalize(&a), CKR_ARGUMENTS_BAD);
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    assert_rv(M.f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Application mutex functions, counted. */
static int mutex_ops;

static CK_RV app_create(CK_VOID_PTR_PTR m)
{
    pthread_mutex_t *p = malloc(sizeof(*p));
    if (!p)
        return CKR_HOST_MEMORY;
    pthread_mutex_init(p, NULL);
    *m = p;
    __atomic_add_fetch(&mutex_ops, 1, __ATOMIC_SEQ_CST);
    return CKR_OK;
}

static CK_RV app_destroy(CK_VOID_PTR m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}

static CK_RV app_lock(CK_VOID_PTR m)
{
    __atomic_add_fetch(&mutex_ops, 1, __ATOMIC_SEQ_CST);
    return pthread_mutex_lock(m) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV app_unlock(CK_VOID_PTR m)
{
    return pthread_mutex_unlock(m) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

/* One signature through a freshly initialized module. */
static void sign_once_fresh(void)
{
    CK_SESSION_HANDLE s;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    uint8_t dg[32] = {1}, sig[256];
    CK_ULONG slen = sizeof(sig);
    assert_rv(M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    assert_rv(M.f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin)), CKR_OK);
    assert_rv(M.f->C_SignInit(s, &mech, find_one(s, CKO_PRIVATE_KEY, M.ec_label)), CKR_OK);
    assert_rv(M.f->C_Sign(s, dg, sizeof(dg), sig, &slen), CKR_OK);
    assert_int_equal(slen, 64);
    assert_rv(M.f->C_CloseSession(s), CKR_OK);
}

static void test_locking_cases(void **state)
{
    CK_C_INITIALIZE_ARGS a;
    (void)state;

    /* 1: no arguments. */
    assert_rv(M.f->C_Initialize(NULL), CKR_OK);
    sign_once_fresh();
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    /* 2: arguments, no functions, no flag. */
    memset(&a, 0, sizeof(a));
    assert_rv(M.f->C_Initialize(&a), CKR_OK);
    sign_once_fresh();
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    /* 3: CKF_OS_LOCKING_OK alone. */
    a.flags = CKF_OS_LOCKING_OK;
    assert_rv(M.f->C_Initialize(&a), CKR_OK);
    sign_once_fresh();
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    /* 4: the application's functions without the flag: they must be used. */
    a.flags = 0;
    a.CreateMutex = app_create;
    a.DestroyMutex = app_destroy;
    a.LockMutex = app_lock;
    a.UnlockMutex = app_unlock;
    mutex_ops = 0;
    assert_rv(M.f->C_Initialize(&a), CKR_OK);
    sign_once_fresh();
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    assert_true(mutex_ops > 0);
    /* 5: both. */
    a.flags = CKF_OS_LOCKING_OK;
    assert_rv(M.f->C_Initialize(&a), CKR_OK);
    sign_once_fresh();
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
    /* Some functions but not all: refused. */
    a.UnlockMutex = NULL;
    assert_rv(M.f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
}

/* ---- slots, token, mechanisms ------------------------------------------------------------- */

static void test_slots_without_slot_list(void **state)
{
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_SESSION_HANDLE s;
    (void)state;
    /* A fresh initialization, straight to the slot: no C_GetSlotList first. */
    assert_rv(init_os_locking(), CKR_OK);
    assert_rv(M.f->C_GetTokenInfo(M.slot, &ti), CKR_OK);
    assert_rv(M.f->C_GetSlotInfo(M.slot, &si), CKR_OK);
    assert_true(si.flags & CKF_TOKEN_PRESENT);
    assert_rv(M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    assert_rv(M.f->C_CloseSession(s), CKR_OK);
    assert_rv(M.f->C_Finalize(NULL), CKR_OK);
}

static void test_slot_list_and_token(void **state)
{
    CK_SLOT_ID slots[8];
    CK_ULONG n = 0;
    CK_TOKEN_INFO ti;
    (void)state;

    assert_rv(M.f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_true(n >= 1);
    if (n > 1) {
        CK_ULONG small = 0;
        assert_rv(M.f->C_GetSlotList(CK_TRUE, slots, &small), CKR_BUFFER_TOO_SMALL);
    }
    assert_rv(M.f->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
    n = 8;
    assert_rv(M.f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    assert_rv(M.f->C_GetTokenInfo(M.slot, &ti), CKR_OK);
    assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
    assert_true(ti.flags & CKF_USER_PIN_INITIALIZED);
    /* By design: our token is write-protected and needs no PIN while the agent holds a
     * session; SoftHSM's is writable and needs one. */
    assert_int_equal(!!(ti.flags & CKF_WRITE_PROTECTED), M.signum);
    assert_int_equal(!!(ti.flags & CKF_LOGIN_REQUIRED), !M.signum);
    assert_rv(M.f->C_GetTokenInfo(M.slot + 4242, &ti), CKR_SLOT_ID_INVALID);
    assert_rv(M.f->C_GetTokenInfo(M.slot, NULL), CKR_ARGUMENTS_BAD);
}

static void test_mechanisms(void **state)
{
    static const CK_MECHANISM_TYPE need[] = {
        CKM_RSA_PKCS,        CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS, CKM_RSA_PKCS_PSS,    CKM_SHA256_RSA_PKCS_PSS,
        CKM_ECDSA,           CKM_SHA256,          CKM_SHA384,
        CKM_SHA512,
    };
    CK_MECHANISM_TYPE list[256];
    CK_ULONG n = 0, small = 1;
    CK_MECHANISM_INFO mi;
    (void)state;

    assert_rv(M.f->C_GetMechanismList(M.slot, NULL, &n), CKR_OK);
    assert_true(n >= sizeof(need) / sizeof(need[0]) && n <= 256);
    assert_rv(M.f->C_GetMechanismList(M.slot, list, &small), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(small, n);
    assert_rv(M.f->C_GetMechanismList(M.slot, list, &n), CKR_OK);
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        int found = 0;
        for (CK_ULONG j = 0; j < n; j++)
            found |= list[j] == need[i];
        if (!found)
            fail_msg("mechanism 0x%lx missing", need[i]);
    }
    assert_rv(M.f->C_GetMechanismInfo(M.slot, CKM_SHA256_RSA_PKCS, &mi), CKR_OK);
    assert_true(mi.flags & CKF_SIGN);
    assert_true(mi.ulMinKeySize <= 2048 && mi.ulMaxKeySize >= 4096);
    assert_rv(M.f->C_GetMechanismInfo(M.slot, CKM_ECDSA, &mi), CKR_OK);
    assert_true(mi.flags & CKF_SIGN);
    assert_true(mi.ulMinKeySize <= 256 && mi.ulMaxKeySize >= 384);
    assert_rv(M.f->C_GetMechanismInfo(M.slot, CKM_SHA384, &mi), CKR_OK);
    assert_true(mi.flags & CKF_DIGEST);
    assert_rv(M.f->C_GetMechanismInfo(M.slot, 0x7FFFFFF0UL, &mi), CKR_MECHANISM_INVALID);
    assert_rv(M.f->C_GetMechanismInfo(M.slot + 4242, CKM_ECDSA, &mi), CKR_SLOT_ID_INVALID);
}

/* ---- sessions and login ------------------------------------------------------------------- */

static void test_sessions(void **state)
{
    CK_SESSION_HANDLE s2, rw;
    CK_SESSION_INFO si;
    (void)state;

    assert_rv(M.f->C_OpenSession(M.slot, 0, NULL, NULL, &s2), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_rv(M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    assert_rv(M.f->C_OpenSession(M.slot + 4242, CKF_SERIAL_SESSION, NULL, NULL, &s2),
              CKR_SLOT_ID_INVALID);
    assert_rv(M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_OK);
    assert_rv(M.f->C_GetSessionInfo(s2, &si), CKR_OK);
    assert_int_equal(si.slotID, M.slot);
    assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS); /* the login applies to every session */
    assert_true(si.flags & CKF_SERIAL_SESSION);
    assert_rv(M.f->C_CloseSession(s2), CKR_OK);
    assert_rv(M.f->C_CloseSession(s2), CKR_SESSION_HANDLE_INVALID);
    assert_rv(M.f->C_GetSessionInfo(s2, &si), CKR_SESSION_HANDLE_INVALID);
    assert_rv(M.f->C_GetSessionInfo(0, &si), CKR_SESSION_HANDLE_INVALID);
    /* An object handle is not a session handle. */
    assert_rv(M.f->C_GetSessionInfo(T.rsa, &si), CKR_SESSION_HANDLE_INVALID);
    /* Read-write sessions: ours is a write-protected token. */
    assert_rv_by_module(
        M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw), CKR_OK,
        CKR_TOKEN_WRITE_PROTECTED);
    if (!M.signum)
        assert_rv(M.f->C_CloseSession(rw), CKR_OK);
    assert_rv(M.f->C_CloseAllSessions(M.slot), CKR_OK);
    assert_rv(M.f->C_GetSessionInfo(T.s, &si), CKR_SESSION_HANDLE_INVALID);
}

static void test_login(void **state)
{
    CK_SESSION_INFO si;
    CK_ULONG n = 0;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE h[16];
    uint8_t buf[1];
    CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)}; /* every label here is longer */
    (void)state;

    /* Idempotent for us (the agent's session is the login); the spec's answer in SoftHSM. */
    assert_rv_by_module(M.f->C_Login(T.s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin)),
                        CKR_USER_ALREADY_LOGGED_IN, CKR_OK);
    assert_rv(M.f->C_Login(T.s, 77, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin)), CKR_USER_TYPE_INVALID);
    assert_rv(M.f->C_Logout(T.s), CKR_OK);
    /* The spec's answer to a second logout; SoftHSM 2.6 says CKR_OK. */
    assert_rv_by_module(M.f->C_Logout(T.s), CKR_OK, CKR_USER_NOT_LOGGED_IN);
    assert_rv(M.f->C_GetSessionInfo(T.s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
    /* Logged out: private keys are out of sight and out of reach. */
    assert_rv(M.f->C_FindObjectsInit(T.s, &t, 1), CKR_OK);
    assert_rv(M.f->C_FindObjects(T.s, h, 16, &n), CKR_OK);
    assert_rv(M.f->C_FindObjectsFinal(T.s), CKR_OK);
    assert_int_equal(n, 0);
    assert_rv(M.f->C_GetAttributeValue(T.s, T.rsa, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    /* Back in: with the same PIN (for us any PIN would do). */
    assert_rv(M.f->C_Login(T.s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin)), CKR_OK);
    assert_rv(M.f->C_GetSessionInfo(T.s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
    /* Found again (SoftHSM hands out new handles for private objects after a login). */
    T.rsa = find_one(T.s, CKO_PRIVATE_KEY, M.rsa_label);
    assert_rv(M.f->C_GetAttributeValue(T.s, T.rsa, &a, 1), CKR_BUFFER_TOO_SMALL);
}

/* ---- objects ------------------------------------------------------------------------------ */

static CK_ULONG count_matching(CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_OBJECT_HANDLE h[64];
    CK_ULONG got = 0, total = 0;
    assert_rv(M.f->C_FindObjectsInit(T.s, t, n), CKR_OK);
    do {
        /* Small batches: C_FindObjects must continue where it stopped. */
        assert_rv(M.f->C_FindObjects(T.s, h, 2, &got), CKR_OK);
        total += got;
    } while (got > 0);
    assert_rv(M.f->C_FindObjectsFinal(T.s), CKR_OK);
    return total;
}

static void test_find(void **state)
{
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE, pub = CKO_PUBLIC_KEY;
    CK_KEY_TYPE ec = CKK_EC;
    uint8_t id[64];
    CK_ULONG id_len = sizeof(id), n;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE by_label[] = {{CKA_LABEL, (void *)M.rsa_label, strlen(M.rsa_label)}};
    CK_ATTRIBUTE by_id[] = {{CKA_ID, id, 0}};
    CK_ATTRIBUTE by_class_type[] = {{CKA_CLASS, &priv, sizeof(priv)},
                                    {CKA_KEY_TYPE, &ec, sizeof(ec)}};
    CK_ATTRIBUTE none[] = {{CKA_LABEL, "no such label", 13}};
    CK_ATTRIBUTE classes[][1] = {{{CKA_CLASS, &priv, sizeof(priv)}},
                                 {{CKA_CLASS, &pub, sizeof(pub)}},
                                 {{CKA_CLASS, &cert, sizeof(cert)}}};
    (void)state;

    /* Key, public key and certificate share one non-empty CKA_ID and CKA_LABEL. */
    assert_int_equal(count_matching(by_label, 1), 3);
    get_attr(T.s, T.rsa, CKA_ID, id, &id_len);
    assert_true(id_len > 0);
    by_id[0].ulValueLen = id_len;
    assert_int_equal(count_matching(by_id, 1), 3);
    assert_int_equal(count_matching(by_class_type, 2), 1);
    assert_int_equal(count_matching(none, 1), 0);
    for (int i = 0; i < 3; i++)
        assert_true(count_matching(classes[i], 1) >= 2);
    assert_true(count_matching(NULL, 0) >= 6);
    /* Protocol errors. */
    assert_rv(M.f->C_FindObjects(T.s, &h, 1, &n), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_FindObjectsFinal(T.s), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_FindObjectsInit(T.s, none, 1), CKR_OK);
    assert_rv(M.f->C_FindObjectsInit(T.s, none, 1), CKR_OPERATION_ACTIVE);
    assert_rv(M.f->C_FindObjectsFinal(T.s), CKR_OK);
    assert_rv(M.f->C_FindObjectsInit(0, none, 1), CKR_SESSION_HANDLE_INVALID);
}

static void test_key_attributes(void **state)
{
    uint8_t buf[1024];
    CK_ULONG len;
    CK_OBJECT_HANDLE rsa_pub = find_one(T.s, CKO_PUBLIC_KEY, M.rsa_label);
    CK_OBJECT_HANDLE ec_pub = find_one(T.s, CKO_PUBLIC_KEY, M.ec_label);
    CK_OBJECT_HANDLE rsa_cert = find_one(T.s, CKO_CERTIFICATE, M.rsa_label);
    (void)state;

    for (int k = 0; k < 2; k++) {
        CK_OBJECT_HANDLE priv = k ? T.ec : T.rsa;
        assert_int_equal(get_bool(T.s, priv, CKA_SIGN), CK_TRUE);
        assert_int_equal(get_bool(T.s, priv, CKA_SENSITIVE), CK_TRUE);
        assert_int_equal(get_bool(T.s, priv, CKA_EXTRACTABLE), CK_FALSE);
        assert_int_equal(get_bool(T.s, priv, CKA_PRIVATE), CK_TRUE);
        assert_int_equal(get_bool(T.s, priv, CKA_TOKEN), CK_TRUE);
    }
    /* libp11 needs the modulus and exponent on the private key. */
    len = sizeof(buf);
    get_attr(T.s, T.rsa, CKA_MODULUS, buf, &len);
    assert_int_equal(len, 256);
    len = sizeof(buf);
    get_attr(T.s, T.rsa, CKA_PUBLIC_EXPONENT, buf, &len);
    assert_true(len >= 1 && len <= 8);
    len = sizeof(buf);
    get_attr(T.s, rsa_pub, CKA_MODULUS, buf, &len);
    assert_int_equal(len, 256);
    /* EC: the curve on both, the point (a DER OCTET STRING) on the public key. */
    len = sizeof(buf);
    get_attr(T.s, T.ec, CKA_EC_PARAMS, buf, &len);
    assert_int_equal(len, 10);
    assert_int_equal(buf[0], 0x06);
    len = sizeof(buf);
    get_attr(T.s, ec_pub, CKA_EC_POINT, buf, &len);
    assert_int_equal(len, 67);
    assert_int_equal(buf[0], 0x04);
    assert_int_equal(buf[1], 65);
    assert_int_equal(buf[2], 0x04);
    /* The certificate's parts, as DER. */
    len = sizeof(buf);
    get_attr(T.s, rsa_cert, CKA_SUBJECT, buf, &len);
    assert_int_equal(buf[0], 0x30);
    len = sizeof(buf);
    get_attr(T.s, rsa_cert, CKA_ISSUER, buf, &len);
    assert_int_equal(buf[0], 0x30);
    len = sizeof(buf);
    get_attr(T.s, rsa_cert, CKA_SERIAL_NUMBER, buf, &len);
    assert_int_equal(buf[0], 0x02);
    {
        CK_CERTIFICATE_TYPE ct = 99;
        len = sizeof(ct);
        get_attr(T.s, rsa_cert, CKA_CERTIFICATE_TYPE, (uint8_t *)&ct, &len);
        assert_int_equal(ct, CKC_X_509);
    }
}

static void test_bulk_get_attribute_value(void **state)
{
    uint8_t label[128], small[1], d[1024];
    CK_BBOOL sign = 0;
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, label, sizeof(label)},    /* filled */
        {CKA_PRIVATE_EXPONENT, d, sizeof(d)}, /* sensitive */
        {CKA_SIGN, &sign, sizeof(sign)},      /* filled */
        {CKA_MODULUS, small, sizeof(small)},  /* too small */
        {CKA_VALUE_LEN, d, sizeof(d)},        /* not an attribute of this object */
        {CKA_PUBLIC_EXPONENT, NULL, 0},       /* a length question */
    };
    CK_RV rv;
    (void)state;

    rv = M.f->C_GetAttributeValue(T.s, T.rsa, t, 6);
    assert_true(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
                rv == CKR_BUFFER_TOO_SMALL);
    assert_int_equal(t[0].ulValueLen, strlen(M.rsa_label));
    assert_memory_equal(label, M.rsa_label, strlen(M.rsa_label));
    assert_int_equal(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(sign, CK_TRUE);
    assert_int_equal(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(t[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_true(t[5].ulValueLen >= 1 && t[5].ulValueLen <= 8);
    /* One kind of problem at a time gives its own code. */
    t[0].ulValueLen = sizeof(label);
    assert_rv(M.f->C_GetAttributeValue(T.s, T.rsa, &t[1], 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_rv(M.f->C_GetAttributeValue(T.s, T.rsa, &t[4], 1), CKR_ATTRIBUTE_TYPE_INVALID);
    t[3].ulValueLen = 1;
    assert_rv(M.f->C_GetAttributeValue(T.s, T.rsa, &t[3], 1), CKR_BUFFER_TOO_SMALL);
    assert_rv(M.f->C_GetAttributeValue(T.s, 0, t, 1), CKR_OBJECT_HANDLE_INVALID);
    assert_rv(M.f->C_GetAttributeValue(T.s, T.s, t, 1), CKR_OBJECT_HANDLE_INVALID);
}

/* ---- signing ------------------------------------------------------------------------------ */

typedef struct {
    CK_MECHANISM_TYPE mech;
    const char *md; /* the hash the signature covers */
    vkind kind;
    int multipart;
    int pss_params; /* CK_RSA_PKCS_PSS_PARAMS with the hash, MGF1 and this salt */
} sign_case;

static CK_MECHANISM_TYPE ckm_of(const EVP_MD *md)
{
    int n = EVP_MD_get_size(md);
    return n == 32 ? CKM_SHA256 : n == 48 ? CKM_SHA384 : CKM_SHA512;
}

static CK_ULONG mgf_of(const EVP_MD *md)
{
    int n = EVP_MD_get_size(md);
    return n == 32 ? CKG_MGF1_SHA256 : n == 48 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA512;
}

static const uint8_t message[] = "Signum conformance: a message long enough to be split in parts";

/* Signs `message` (or its digest, for mechanisms that take one) and verifies with OpenSSL. */
static void sign_and_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, EVP_PKEY *pub,
                            const sign_case *c)
{
    const EVP_MD *md = EVP_get_digestbyname(c->md);
    uint8_t dg[64], input[128], sig[1024];
    size_t dlen = 0, in_len;
    CK_ULONG slen = 0, want;
    CK_RSA_PKCS_PSS_PARAMS pss = {ckm_of(md), mgf_of(md), (CK_ULONG)c->pss_params};
    CK_MECHANISM mech = {c->mech, c->pss_params ? &pss : NULL, c->pss_params ? sizeof(pss) : 0};
    int hashing = c->mech != CKM_RSA_PKCS && c->mech != CKM_RSA_PKCS_PSS && c->mech != CKM_ECDSA;

    digest(md, message, sizeof(message), dg, &dlen);
    if (c->mech == CKM_RSA_PKCS) {
        /* A DigestInfo, as OpenSSL's RSA_sign passes it (RFC 8017 section 9.2, note 1). */
        static const uint8_t prefix256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
        static const uint8_t prefix512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x03, 0x05, 0x00, 0x04, 0x40};
        const uint8_t *prefix = dlen == 32 ? prefix256 : prefix512;
        assert_true(dlen == 32 || dlen == 64);
        memcpy(input, prefix, sizeof(prefix256));
        memcpy(input + sizeof(prefix256), dg, dlen);
        in_len = sizeof(prefix256) + dlen;
    } else {
        memcpy(input, dg, dlen);
        in_len = dlen;
    }
    assert_rv(M.f->C_SignInit(s, &mech, key), CKR_OK);
    /* A size question, then a too-small buffer: both leave the operation running. */
    if (c->multipart) {
        assert_rv(M.f->C_SignUpdate(s, (CK_BYTE_PTR)message, 10), CKR_OK);
        assert_rv(M.f->C_SignUpdate(s, (CK_BYTE_PTR)message + 10, 0), CKR_OK);
        assert_rv(M.f->C_SignUpdate(s, (CK_BYTE_PTR)message + 10, sizeof(message) - 10), CKR_OK);
        assert_rv(M.f->C_SignFinal(s, NULL, &slen), CKR_OK);
        want = slen;
        slen = 3;
        assert_rv(M.f->C_SignFinal(s, sig, &slen), CKR_BUFFER_TOO_SMALL);
        assert_int_equal(slen, want);
        slen = sizeof(sig);
        assert_rv(M.f->C_SignFinal(s, sig, &slen), CKR_OK);
    } else {
        const uint8_t *data = hashing ? message : input;
        CK_ULONG len = hashing ? sizeof(message) : in_len;
        assert_rv(M.f->C_Sign(s, (CK_BYTE_PTR)data, len, NULL, &slen), CKR_OK);
        want = slen;
        slen = 3;
        assert_rv(M.f->C_Sign(s, (CK_BYTE_PTR)data, len, sig, &slen), CKR_BUFFER_TOO_SMALL);
        assert_int_equal(slen, want);
        slen = sizeof(sig);
        assert_rv(M.f->C_Sign(s, (CK_BYTE_PTR)data, len, sig, &slen), CKR_OK);
    }
    assert_int_equal(slen, want);
    /* The operation is over. */
    assert_rv(M.f->C_Sign(s, input, in_len, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
    if (!verify(pub, md, c->kind, c->pss_params, dg, dlen, sig, want))
        fail_msg("mechanism 0x%lx (%s%s): the signature does not verify", c->mech, c->md,
                 c->multipart ? ", multi-part" : "");
}

static void test_sign_rsa(void **state)
{
    static const sign_case cases[] = {
        {CKM_RSA_PKCS, "SHA256", V_PKCS1, 0, 0},
        {CKM_RSA_PKCS, "SHA512", V_PKCS1, 0, 0},
        {CKM_SHA256_RSA_PKCS, "SHA256", V_PKCS1, 0, 0},
        {CKM_SHA256_RSA_PKCS, "SHA256", V_PKCS1, 1, 0},
        {CKM_SHA384_RSA_PKCS, "SHA384", V_PKCS1, 1, 0},
        {CKM_SHA512_RSA_PKCS, "SHA512", V_PKCS1, 0, 0},
        {CKM_RSA_PKCS_PSS, "SHA256", V_PSS, 0, 32},
        {CKM_RSA_PKCS_PSS, "SHA384", V_PSS, 0, 20},
        {CKM_SHA256_RSA_PKCS_PSS, "SHA256", V_PSS, 1, 32},
        {CKM_SHA384_RSA_PKCS_PSS, "SHA384", V_PSS, 0, 48},
        {CKM_SHA512_RSA_PKCS_PSS, "SHA512", V_PSS, 1, 64},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        sign_and_verify(T.s, T.rsa, T.rsa_pub, &cases[i]);
}

static void test_sign_ecdsa(void **state)
{
    static const sign_case cases[] = {
        {CKM_ECDSA, "SHA256", V_ECDSA, 0, 0},        {CKM_ECDSA, "SHA384", V_ECDSA, 0, 0},
        {CKM_ECDSA_SHA256, "SHA256", V_ECDSA, 0, 0}, {CKM_ECDSA_SHA256, "SHA256", V_ECDSA, 1, 0},
        {CKM_ECDSA_SHA384, "SHA384", V_ECDSA, 1, 0}, {CKM_ECDSA_SHA512, "SHA512", V_ECDSA, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* SoftHSM 2.6 has CKM_ECDSA only; the hash-and-sign variants came in 2.7. */
        if (!M.signum && cases[i].mech != CKM_ECDSA)
            continue;
        sign_and_verify(T.s, T.ec, T.ec_pub, &cases[i]);
    }
}

static void test_sign_errors(void **state)
{
    CK_MECHANISM rsa = {CKM_SHA256_RSA_PKCS, NULL, 0}, ec = {CKM_ECDSA, NULL, 0};
    CK_MECHANISM raw = {CKM_RSA_PKCS, NULL, 0}, bogus = {0x7FFFFFF0UL, NULL, 0};
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA384, 32};
    CK_MECHANISM bad_pss = {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss)};
    CK_MECHANISM no_pss = {CKM_RSA_PKCS_PSS, NULL, 0};
    uint8_t sig[512], data[20] = {0};
    CK_ULONG slen = sizeof(sig);
    CK_OBJECT_HANDLE pub = find_one(T.s, CKO_PUBLIC_KEY, M.rsa_label);
    CK_RV rv;
    (void)state;

    assert_rv(M.f->C_Sign(T.s, data, sizeof(data), sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_SignUpdate(T.s, data, sizeof(data)), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_SignFinal(T.s, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_SignInit(T.s, &bogus, T.rsa), CKR_MECHANISM_INVALID);
    /* The spec's answer; SoftHSM 2.6 says CKR_OBJECT_HANDLE_INVALID. */
    assert_rv_by_module(M.f->C_SignInit(T.s, &rsa, 0), CKR_OBJECT_HANDLE_INVALID,
                        CKR_KEY_HANDLE_INVALID);
    assert_rv(M.f->C_SignInit(T.s, NULL, T.rsa), CKR_ARGUMENTS_BAD);
    /* A public key cannot sign. */
    rv = M.f->C_SignInit(T.s, &rsa, pub);
    assert_true(rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT);
    /* PSS parameters are checked: MGF1 must use the message hash; they are required. */
    rv = M.f->C_SignInit(T.s, &bad_pss, T.rsa);
    assert_true(rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD);
    rv = M.f->C_SignInit(T.s, &no_pss, T.rsa);
    assert_true(rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD);
    /* One operation at a time. */
    assert_rv(M.f->C_SignInit(T.s, &rsa, T.rsa), CKR_OK);
    assert_rv(M.f->C_SignInit(T.s, &rsa, T.rsa), CKR_OPERATION_ACTIVE);
    assert_rv(M.f->C_Sign(T.s, data, sizeof(data), sig, &slen), CKR_OK);
    /* Single-part mechanisms refuse parts and end the operation. */
    assert_rv(M.f->C_SignInit(T.s, &ec, T.ec), CKR_OK);
    rv = M.f->C_SignUpdate(T.s, data, sizeof(data));
    if (M.signum)
        assert_rv(rv, CKR_FUNCTION_NOT_SUPPORTED);
    else /* SoftHSM 2.6 answers as if no operation were running */
        assert_true(rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_SignInit(T.s, &ec, T.ec), CKR_OK);
    /* What only a digest signer refuses: ECDSA over a 20-byte (SHA-1) digest, and
     * CKM_RSA_PKCS over data that is not a DigestInfo. SoftHSM signs both. */
    slen = sizeof(sig);
    assert_rv_by_module(M.f->C_Sign(T.s, data, sizeof(data), sig, &slen), CKR_OK,
                        CKR_DATA_LEN_RANGE);
    assert_rv(M.f->C_SignInit(T.s, &raw, T.rsa), CKR_OK);
    slen = sizeof(sig);
    assert_rv_by_module(M.f->C_Sign(T.s, data, sizeof(data), sig, &slen), CKR_OK, CKR_DATA_INVALID);
    /* Input longer than the modulus allows. */
    {
        uint8_t big[300] = {0};
        assert_rv(M.f->C_SignInit(T.s, &raw, T.rsa), CKR_OK);
        slen = sizeof(sig);
        /* The spec's answer; SoftHSM 2.6 says CKR_GENERAL_ERROR. */
        assert_rv_by_module(M.f->C_Sign(T.s, big, sizeof(big), sig, &slen), CKR_GENERAL_ERROR,
                            CKR_DATA_LEN_RANGE);
    }
    /* A mechanism for the other key type: SoftHSM 2.6 only finds out in C_Sign. */
    assert_rv_by_module(M.f->C_SignInit(T.s, &ec, T.rsa), CKR_OK, CKR_KEY_TYPE_INCONSISTENT);
    if (M.signum)
        assert_rv(M.f->C_SignInit(T.s, &rsa, T.ec), CKR_KEY_TYPE_INCONSISTENT);
}

static void test_digest(void **state)
{
    CK_MECHANISM m = {CKM_SHA384, NULL, 0}, bad = {CKM_ECDSA, NULL, 0};
    uint8_t out[64], want[64];
    size_t wlen;
    CK_ULONG len = 0;
    (void)state;

    digest(EVP_sha384(), message, sizeof(message), want, &wlen);
    assert_rv(M.f->C_DigestInit(T.s, &m), CKR_OK);
    assert_rv(M.f->C_DigestInit(T.s, &m), CKR_OPERATION_ACTIVE);
    assert_rv(M.f->C_Digest(T.s, (CK_BYTE_PTR)message, sizeof(message), NULL, &len), CKR_OK);
    assert_int_equal(len, 48);
    len = 10;
    assert_rv(M.f->C_Digest(T.s, (CK_BYTE_PTR)message, sizeof(message), out, &len),
              CKR_BUFFER_TOO_SMALL);
    len = sizeof(out);
    assert_rv(M.f->C_Digest(T.s, (CK_BYTE_PTR)message, sizeof(message), out, &len), CKR_OK);
    assert_int_equal(len, 48);
    assert_memory_equal(out, want, 48);
    assert_rv(M.f->C_DigestInit(T.s, &m), CKR_OK);
    assert_rv(M.f->C_DigestUpdate(T.s, (CK_BYTE_PTR)message, 7), CKR_OK);
    assert_rv(M.f->C_DigestUpdate(T.s, (CK_BYTE_PTR)message + 7, sizeof(message) - 7), CKR_OK);
    len = sizeof(out);
    assert_rv(M.f->C_DigestFinal(T.s, out, &len), CKR_OK);
    assert_memory_equal(out, want, 48);
    assert_rv(M.f->C_DigestFinal(T.s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    assert_rv(M.f->C_DigestInit(T.s, &bad), CKR_MECHANISM_INVALID);
}

/* What we do not offer fails cleanly; SoftHSM offers all of it. */
static void test_unsupported(void **state)
{
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, dec = {CKM_RSA_PKCS, NULL, 0};
    CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE pub_t[] = {{CKA_EC_PARAMS, p256, sizeof(p256)}, {CKA_TOKEN, &no, 1}};
    CK_ATTRIBUTE priv_t[] = {{CKA_TOKEN, &no, 1}};
    CK_OBJECT_HANDLE pub, priv;
    uint8_t rnd[16];
    CK_RV rv;
    (void)state;

    assert_rv_by_module(M.f->C_GenerateKeyPair(T.s, &gen, pub_t, 2, priv_t, 1, &pub, &priv), CKR_OK,
                        CKR_FUNCTION_NOT_SUPPORTED);
    assert_rv_by_module(M.f->C_GenerateRandom(T.s, rnd, sizeof(rnd)), CKR_OK, CKR_RANDOM_NO_RNG);
    rv = M.f->C_DecryptInit(T.s, &dec, T.rsa);
    if (M.signum)
        assert_rv(rv, CKR_FUNCTION_NOT_SUPPORTED);
    else
        assert_true(rv == CKR_OK || rv == CKR_KEY_FUNCTION_NOT_PERMITTED);
    rv = M.f->C_DestroyObject(T.s, T.rsa);
    if (M.signum)
        assert_rv(rv, CKR_FUNCTION_NOT_SUPPORTED);
    else
        assert_true(rv == CKR_SESSION_READ_ONLY || rv == CKR_ACTION_PROHIBITED);
    assert_rv_by_module(M.f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_NO_EVENT,
                        CKR_FUNCTION_NOT_SUPPORTED);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct {
    int index;
    CK_SESSION_HANDLE shared; /* 0: open a session of its own */
    pthread_mutex_t *shared_lock;
    int race; /* shared without the application's lock: the module guards */
    int failures;
    int signatures;
} thread_task;

static void *thread_main(void *arg)
{
    thread_task *t = arg;
    CK_SESSION_HANDLE s = t->shared;
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 90;
    if (!s && M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
        t->failures++;
        return NULL;
    }
    for (int i = 0; i < SIGNS_PER_TASK; i++) {
        int use_ec = (t->index + i) % 2;
        CK_MECHANISM mech = {use_ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, NULL, 0};
        uint8_t msg[32], dg[32], sig[512];
        CK_ULONG slen = sizeof(sig);
        size_t dlen;
        CK_RV rv;
        struct timespec now;

        snprintf((char *)msg, sizeof(msg), "thread %d sig %d", t->index, i);
        digest(EVP_sha256(), msg, sizeof(msg), dg, &dlen);
        if (t->shared_lock)
            pthread_mutex_lock(t->shared_lock);
        /* Racing for one session: wait for the other thread's operation to end. */
        while ((rv = M.f->C_SignInit(s, &mech, use_ec ? T.ec : T.rsa)) == CKR_OPERATION_ACTIVE &&
               t->race) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > deadline.tv_sec)
                break;
            sched_yield();
        }
        if (rv == CKR_OK)
            rv = M.f->C_Sign(s, use_ec ? dg : msg, use_ec ? dlen : sizeof(msg), sig, &slen);
        if (t->shared_lock)
            pthread_mutex_unlock(t->shared_lock);
        if (rv != CKR_OK || !verify(use_ec ? T.ec_pub : T.rsa_pub, EVP_sha256(),
                                    use_ec ? V_ECDSA : V_PKCS1, 0, dg, dlen, sig, slen)) {
            fprintf(stderr, "thread %d signature %d: %s\n", t->index, i, rv_name(rv));
            t->failures++;
        } else {
            t->signatures++;
        }
    }
    if (!t->shared)
        M.f->C_CloseSession(s);
    return NULL;
}

static void run_threads(CK_SESSION_HANDLE shared, pthread_mutex_t *lock, int race)
{
    pthread_t th[THREADS];
    thread_task tasks[THREADS];
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].index = i;
        tasks[i].shared = shared;
        tasks[i].shared_lock = lock;
        tasks[i].race = race;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &tasks[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(tasks[i].failures, 0);
        total += tasks[i].signatures;
    }
    assert_int_equal(total, THREADS * SIGNS_PER_TASK);
}

static void test_threads_separate_sessions(void **state)
{
    (void)state;
    run_threads(0, NULL, 0);
}

static void test_threads_shared_session(void **state)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    (void)state;
    /* PKCS#11 leaves a session's operations to one thread at a time: the application locks. */
    run_threads(T.s, &lock, 0);
}

static void test_threads_shared_session_race(void **state)
{
    (void)state;
    /* Without the application's lock only the module's own guard stands between the threads:
     * ours answers CKR_OPERATION_ACTIVE to the losers and never mixes operations up. SoftHSM
     * does not promise that, so the race runs against our module only. */
    if (!M.signum)
        skip();
    run_threads(T.s, NULL, 1);
}

/* ---- fork --------------------------------------------------------------------------------- */

/* In the child: no cmocka (its state belongs to the parent's runner); an exit code instead. */
static int child_signs(CK_SESSION_HANDLE parent_session)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)M.ec_label, strlen(M.ec_label)}};
    CK_OBJECT_HANDLE key;
    CK_ULONG n = 0, slen;
    uint8_t dg[32] = {7}, sig[256];
    CK_RV rv;

    /* The parent's initialization does not carry over: ours says so; SoftHSM carries on. */
    slen = sizeof(sig);
    rv = M.f->C_SignInit(parent_session, &mech, T.ec);
    if (M.signum && rv != CKR_CRYPTOKI_NOT_INITIALIZED)
        return 10;
    if (!M.signum && rv == CKR_OK)
        M.f->C_Sign(parent_session, dg, sizeof(dg), sig, &slen);
    rv = init_os_locking();
    if (rv != CKR_OK && !(rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && !M.signum))
        return 11;
    if (M.f->C_OpenSession(M.slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return 12;
    rv = M.f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)M.pin, strlen(M.pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        return 13;
    if (M.f->C_FindObjectsInit(s, t, 2) != CKR_OK || M.f->C_FindObjects(s, &key, 1, &n) != CKR_OK ||
        M.f->C_FindObjectsFinal(s) != CKR_OK || n != 1)
        return 14;
    slen = sizeof(sig);
    if (M.f->C_SignInit(s, &mech, key) != CKR_OK || M.f->C_Sign(s, dg, 32, sig, &slen) != CKR_OK)
        return 15;
    if (!verify(T.ec_pub, EVP_sha256(), V_ECDSA, 0, dg, 32, sig, slen))
        return 16;
    if (M.f->C_Finalize(NULL) != CKR_OK)
        return 17;
    return 0;
}

static void test_fork(void **state)
{
    static const sign_case c = {CKM_ECDSA, "SHA256", V_ECDSA, 0, 0};
    int status = 0;
    pid_t pid;
    (void)state;

    sign_and_verify(T.s, T.ec, T.ec_pub, &c); /* the parent is connected before the fork */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_signs(T.s));
    /* Parent and child sign at the same time. */
    sign_and_verify(T.s, T.ec, T.ec_pub, &c);
    sign_and_verify(T.s, T.rsa, T.rsa_pub,
                    &(sign_case){CKM_SHA256_RSA_PKCS, "SHA256", V_PKCS1, 0, 0});
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the forked child failed at step %d", WEXITSTATUS(status));
    sign_and_verify(T.s, T.ec, T.ec_pub, &c);
}

/* ---- main --------------------------------------------------------------------------------- */

static void find_slot(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO ti;
    if (init_os_locking() != CKR_OK || M.f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0) {
        fprintf(stderr, "no slot with a token in %s\n", getenv("P11_MODULE"));
        exit(1);
    }
    M.slot = slots[0];
    if (M.f->C_GetTokenInfo(M.slot, &ti) == CKR_OK)
        fprintf(stderr, "module %s, token \"%.32s\"\n", getenv("P11_MODULE"), ti.label);
    M.f->C_Finalize(NULL);
}

int main(void)
{
    const char *path = getenv("P11_MODULE"), *flavor = getenv("P11_FLAVOR");
    CK_C_GetFunctionList gfl;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_lists),
        cmocka_unit_test(test_initialize_finalize),
        cmocka_unit_test(test_locking_cases),
        cmocka_unit_test(test_slots_without_slot_list),
        cmocka_unit_test_setup_teardown(test_slot_list_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mechanisms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_get_attribute_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_ecdsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_separate_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_shared_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_shared_session_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
    };

    if (!path || !flavor) {
        fprintf(stderr, "set P11_MODULE and P11_FLAVOR (softhsm|signum); see run_conformance.py\n");
        return 2;
    }
    M.signum = strcmp(flavor, "signum") == 0;
    M.pin = getenv("P11_PIN") ? getenv("P11_PIN") : "1234";
    M.rsa_label = getenv("P11_RSA_LABEL") ? getenv("P11_RSA_LABEL") : "rsa";
    M.ec_label = getenv("P11_EC_LABEL") ? getenv("P11_EC_LABEL") : "ec";
    M.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!M.dl) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return 1;
    }
    gfl = (CK_C_GetFunctionList)dlsym(M.dl, "C_GetFunctionList");
    if (!gfl || gfl(&M.f) != CKR_OK) {
        fprintf(stderr, "%s: no C_GetFunctionList\n", path);
        return 1;
    }
    find_slot();
    cmocka_set_message_output(CM_OUTPUT_STDOUT);
    return cmocka_run_group_tests_name(M.signum ? "pkcs11-signum" : "pkcs11-softhsm", tests, NULL,
                                       NULL);
}
