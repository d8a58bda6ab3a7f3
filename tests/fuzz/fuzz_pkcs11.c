/* The PKCS#11 module's argument checks (linux-pkcs11/src), driven through its C_* entry points
 * with fuzzer-chosen calls, templates, lengths, handles, mechanism parameters and NULLs, over
 * a stub client library (p11_stub_client.c) so no agent is needed. Each input is one
 * application: C_Initialize, up to 64 calls, C_Finalize; LeakSanitizer sees what a session or
 * operation left behind. Buffers are allocated at exactly their declared length, so a write
 * past ulValueLen or *pulSignatureLen is an ASan crash. */
#include <pthread.h>
#include <string.h>

#include "fuzz.h"
#include "p11.h"
#include "p11_stub_client.h"

typedef struct {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t u8(input *in)
{
    uint8_t v = 0;
    if (in->n) {
        v = *in->p++;
        in->n--;
    }
    return v;
}

static CK_ULONG ulong_of(input *in)
{
    CK_ULONG v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | u8(in);
    return v;
}

/* A malloc'd copy of the next n input bytes (zero-filled past the end); NULL if n == 0. */
static uint8_t *bytes(input *in, size_t n)
{
    uint8_t *b;
    if (!n)
        return NULL;
    b = calloc(1, n);
    FUZZ_CHECK(b != NULL);
    for (size_t i = 0; i < n && in->n; i++)
        b[i] = u8(in);
    return b;
}

static const CK_ATTRIBUTE_TYPE interesting_attrs[] = {
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_ID,
    CKA_KEY_TYPE,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_VALUE,
    CKA_SUBJECT,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_CERTIFICATE_TYPE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_PRIVATE_EXPONENT,
    CKA_DECRYPT,
    CKA_LOCAL,
    CKA_MODIFIABLE,
    CKA_CERTIFICATE_CATEGORY,
    CKA_TRUSTED,
    CKA_KEY_GEN_MECHANISM,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_DERIVE,
    CKA_WRAP_TEMPLATE,
    CKA_VENDOR_DEFINED,
};

static const CK_MECHANISM_TYPE interesting_mechs[] = {
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA_1,
    CKM_RSA_X_509,
    CKM_ECDSA_SHA1,
    CKM_AES_CBC,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    CK_ATTRIBUTE attrs[8];
    CK_ULONG count;
    int null_template;
} tmpl;

static CK_ULONG pick_attr_type(input *in)
{
    uint8_t b = u8(in);
    return b < 0xf0 ? interesting_attrs[b % NELEM(interesting_attrs)] : ulong_of(in);
}

/* A template: with values to match (find) or buffers to fill (get), and every odd shape. */
static void make_template(input *in, tmpl *t, int for_find)
{
    uint8_t shape = u8(in);
    memset(t, 0, sizeof(*t));
    t->count = shape % 9;
    if (t->count > NELEM(t->attrs))
        t->count = NELEM(t->attrs);
    t->null_template = (shape & 0xf0) == 0xf0;
    for (CK_ULONG i = 0; i < t->count; i++) {
        uint8_t how = u8(in);
        size_t len = u8(in);
        t->attrs[i].type = pick_attr_type(in);
        switch (how % 6) {
        case 0: /* a size query */
            t->attrs[i].pValue = NULL;
            t->attrs[i].ulValueLen = how & 0x80 ? len : 0;
            break;
        case 1: /* a CK_ULONG, as CKA_CLASS and CKA_KEY_TYPE are given */
            t->attrs[i].pValue = bytes(in, sizeof(CK_ULONG));
            t->attrs[i].ulValueLen = sizeof(CK_ULONG);
            break;
        case 2: /* a CK_BBOOL */
            t->attrs[i].pValue = bytes(in, 1);
            t->attrs[i].ulValueLen = 1;
            break;
        case 3: /* CK_UNAVAILABLE_INFORMATION with no buffer */
            t->attrs[i].pValue = NULL;
            t->attrs[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            break;
        default: /* a buffer of the length it claims */
            t->attrs[i].pValue = bytes(in, len);
            t->attrs[i].ulValueLen = len;
            break;
        }
        (void)for_find;
    }
}

static void free_template(tmpl *t)
{
    for (CK_ULONG i = 0; i < t->count; i++)
        free(t->attrs[i].pValue);
}

typedef struct {
    CK_SESSION_HANDLE sessions[8];
    size_t nsessions;
    CK_OBJECT_HANDLE objects[16];
    size_t nobjects;
} world;

static CK_SESSION_HANDLE pick_session(input *in, world *w)
{
    uint8_t b = u8(in);
    if (b < 0xe0 && w->nsessions)
        return w->sessions[b % w->nsessions];
    return b == 0xff ? ulong_of(in) : (CK_SESSION_HANDLE)b;
}

static CK_OBJECT_HANDLE pick_object(input *in, world *w)
{
    uint8_t b = u8(in);
    if (b < 0xe0 && w->nobjects)
        return w->objects[b % w->nobjects];
    return b == 0xff ? ulong_of(in) : (CK_OBJECT_HANDLE)b;
}

/* A mechanism with parameters of any length; PSS parameters from the input when sized right. */
static CK_MECHANISM *make_mech(input *in, CK_MECHANISM *m, CK_RSA_PKCS_PSS_PARAMS *pss)
{
    uint8_t b = u8(in), how = u8(in);
    if (b == 0xff)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->mechanism = b < 0xf0 ? interesting_mechs[b % NELEM(interesting_mechs)] : ulong_of(in);
    switch (how % 4) {
    case 0: break;
    case 1: /* PSS parameters, fields from the input, hashAlg and MGF mostly sensible */
        pss->hashAlg = (how & 0x10) ? ulong_of(in)
                                    : (CK_ULONG[]){CKM_SHA256, CKM_SHA384, CKM_SHA512}[u8(in) % 3];
        pss->mgf = (how & 0x20) ? ulong_of(in)
                                : (CK_ULONG[]){CKG_MGF1_SHA256, CKG_MGF1_SHA384,
                                               CKG_MGF1_SHA512}[u8(in) % 3];
        pss->sLen = (how & 0x40) ? ulong_of(in) : u8(in);
        m->pParameter = pss;
        m->ulParameterLen = (how & 0x80) ? u8(in) % (sizeof(*pss) + 1) : sizeof(*pss);
        break;
    case 2: /* a NULL parameter that claims a length */
        m->pParameter = NULL;
        m->ulParameterLen = u8(in);
        break;
    default: /* the parameter block with a length that is not its size */
        m->pParameter = pss;
        m->ulParameterLen = u8(in) % (sizeof(*pss) + 1);
        break;
    }
    return m;
}

/* C_Sign, C_SignFinal, C_Digest and C_DigestFinal outputs: NULL (a size query) or a buffer of
 * exactly the declared length; or no length pointer at all. */
typedef struct {
    uint8_t *buf;
    CK_ULONG len;
    CK_ULONG_PTR plen;
} outbuf;

static void make_out(input *in, outbuf *o)
{
    uint8_t how = u8(in);
    memset(o, 0, sizeof(*o));
    if (how % 5 == 0)
        return; /* plen NULL */
    o->plen = &o->len;
    if (how % 5 == 1) {
        o->len = u8(in);
        return; /* buf NULL: size query */
    }
    o->len = how % 5 == 2 ? u8(in) : (CK_ULONG)u8(in) * 2 + 1;
    if (how % 5 == 4)
        o->len = 256;
    o->buf = malloc(o->len ? o->len : 1);
    FUZZ_CHECK(o->buf != NULL);
}

static void check_out(const outbuf *o, CK_RV rv, CK_ULONG declared)
{
    /* A successful answer never claims more bytes than the buffer it wrote into. */
    if (rv == CKR_OK && o->buf)
        FUZZ_CHECK(o->len <= declared);
}

static CK_RV app_create(CK_VOID_PTR_PTR m)
{
    pthread_mutex_t *p = malloc(sizeof(*p));
    if (!p)
        return CKR_HOST_MEMORY;
    pthread_mutex_init(p, NULL);
    *m = p;
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
    return pthread_mutex_lock(m) ? CKR_GENERAL_ERROR : CKR_OK;
}

static CK_RV app_unlock(CK_VOID_PTR m)
{
    return pthread_mutex_unlock(m) ? CKR_GENERAL_ERROR : CKR_OK;
}

static const sg_status agent_answers[] = {
    SG_OK,
    SG_ERR_NOT_LOGGED_IN,
    SG_ERR_AGENT_UNAVAILABLE,
    SG_ERR_AUTH_FAILED,
    SG_ERR_DENIED,
    SG_ERR_NETWORK,
    SG_ERR_SERVER,
    SG_ERR_BAD_INPUT,
    SG_ERR_BUFFER_TOO_SMALL,
    SG_ERR_TIMEOUT,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    p11_stub_init();
    return 0;
}

static void one_call(input *in, world *w)
{
    uint8_t op = u8(in);
    CK_RV rv;
    switch (op % 22) {
    case 0: {
        CK_SESSION_HANDLE h = 0;
        uint8_t f = u8(in);
        CK_FLAGS flags =
            (f & 1 ? CKF_SERIAL_SESSION : 0) | (f & 2 ? CKF_RW_SESSION : 0) | (f & 4 ? 0x100 : 0);
        CK_SLOT_ID slot = f & 8 ? (CK_SLOT_ID)u8(in) : P11_SLOT_ID;
        rv = C_OpenSession(slot, flags, NULL, NULL, f & 0x10 ? NULL : &h);
        if (rv == CKR_OK && w->nsessions < NELEM(w->sessions))
            w->sessions[w->nsessions++] = h;
        break;
    }
    case 1: (void)C_CloseSession(pick_session(in, w)); break;
    case 2: {
        CK_SESSION_HANDLE s = pick_session(in, w);
        uint8_t type = u8(in), len = u8(in);
        uint8_t *pin = type & 0x80 ? NULL : bytes(in, len);
        (void)C_Login(s, type % 4, pin, type & 0x40 ? len : (pin ? len : 0));
        free(pin);
        break;
    }
    case 3: (void)C_Logout(pick_session(in, w)); break;
    case 4: {
        tmpl t;
        CK_SESSION_HANDLE s = pick_session(in, w);
        make_template(in, &t, 1);
        (void)C_FindObjectsInit(s, t.null_template ? NULL : t.attrs, t.count);
        free_template(&t);
        break;
    }
    case 5: {
        CK_OBJECT_HANDLE found[8];
        CK_ULONG count = 0, max;
        CK_SESSION_HANDLE s = pick_session(in, w);
        uint8_t how = u8(in);
        max = how % 9;
        rv = C_FindObjects(s, how & 0x40 ? NULL : found, max, how & 0x80 ? NULL : &count);
        if (rv == CKR_OK && !(how & 0xc0)) {
            FUZZ_CHECK(count <= max);
            for (CK_ULONG i = 0; i < count && w->nobjects < NELEM(w->objects); i++)
                w->objects[w->nobjects++] = found[i];
        }
        break;
    }
    case 6: (void)C_FindObjectsFinal(pick_session(in, w)); break;
    case 7: {
        tmpl t;
        CK_SESSION_HANDLE s = pick_session(in, w);
        CK_OBJECT_HANDLE o = pick_object(in, w);
        CK_ULONG declared[8];
        make_template(in, &t, 0);
        for (CK_ULONG i = 0; i < t.count; i++)
            declared[i] = t.attrs[i].ulValueLen;
        rv = C_GetAttributeValue(s, o, t.null_template ? NULL : t.attrs, t.count);
        for (CK_ULONG i = 0; !t.null_template && i < t.count; i++)
            if (t.attrs[i].pValue && t.attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
                FUZZ_CHECK(t.attrs[i].ulValueLen <= declared[i]);
        (void)rv;
        free_template(&t);
        break;
    }
    case 8: {
        CK_ULONG size = 0;
        CK_SESSION_HANDLE s = pick_session(in, w);
        CK_OBJECT_HANDLE o = pick_object(in, w);
        (void)C_GetObjectSize(s, o, u8(in) & 1 ? NULL : &size);
        break;
    }
    case 9: {
        CK_MECHANISM m, *pm;
        CK_RSA_PKCS_PSS_PARAMS pss;
        CK_SESSION_HANDLE s = pick_session(in, w);
        CK_OBJECT_HANDLE o = pick_object(in, w);
        pm = make_mech(in, &m, &pss);
        (void)C_SignInit(s, pm, o);
        break;
    }
    case 10:
    case 11: {
        CK_SESSION_HANDLE s = pick_session(in, w);
        uint8_t how = u8(in);
        size_t len = how & 0x80 ? (size_t)u8(in) * 4 : how & 0x7f;
        uint8_t *data = bytes(in, len);
        outbuf o;
        CK_ULONG declared;
        make_out(in, &o);
        declared = o.len;
        if (op % 22 == 10)
            rv = C_Sign(s, data, data ? len : (how & 0x40 ? len : 0), o.buf, o.plen);
        else
            rv = C_Digest(s, data, data ? len : (how & 0x40 ? len : 0), o.buf, o.plen);
        check_out(&o, rv, declared);
        free(o.buf);
        free(data);
        break;
    }
    case 12:
    case 13: {
        CK_SESSION_HANDLE s = pick_session(in, w);
        uint8_t how = u8(in);
        size_t len = how & 0x7f;
        uint8_t *data = bytes(in, len);
        CK_ULONG claimed = data ? len : (how & 0x80 ? len : 0);
        if (op % 22 == 12)
            (void)C_SignUpdate(s, data, claimed);
        else
            (void)C_DigestUpdate(s, data, claimed);
        free(data);
        break;
    }
    case 14:
    case 15: {
        CK_SESSION_HANDLE s = pick_session(in, w);
        outbuf o;
        CK_ULONG declared;
        make_out(in, &o);
        declared = o.len;
        rv = op % 22 == 14 ? C_SignFinal(s, o.buf, o.plen) : C_DigestFinal(s, o.buf, o.plen);
        check_out(&o, rv, declared);
        free(o.buf);
        break;
    }
    case 16: {
        CK_MECHANISM m, *pm;
        CK_RSA_PKCS_PSS_PARAMS pss;
        CK_SESSION_HANDLE s = pick_session(in, w);
        pm = make_mech(in, &m, &pss);
        (void)C_DigestInit(s, pm);
        break;
    }
    case 17: {
        CK_TOKEN_INFO ti;
        CK_SLOT_INFO si;
        CK_SLOT_ID slots[2];
        CK_ULONG n = u8(in) % 3;
        uint8_t how = u8(in);
        (void)C_GetSlotList(how & 1, how & 2 ? NULL : slots, how & 4 ? NULL : &n);
        (void)C_GetTokenInfo(how & 8 ? 1 : P11_SLOT_ID, how & 16 ? NULL : &ti);
        (void)C_GetSlotInfo(how & 32 ? 7 : P11_SLOT_ID, how & 64 ? NULL : &si);
        break;
    }
    case 18: {
        CK_MECHANISM_TYPE mechs[32];
        CK_MECHANISM_INFO info;
        CK_ULONG n = u8(in) % 33;
        uint8_t how = u8(in);
        rv = C_GetMechanismList(P11_SLOT_ID, how & 1 ? NULL : mechs, how & 2 ? NULL : &n);
        (void)C_GetMechanismInfo(P11_SLOT_ID, interesting_mechs[u8(in) % NELEM(interesting_mechs)],
                                 how & 4 ? NULL : &info);
        (void)rv;
        break;
    }
    case 19: {
        CK_SESSION_INFO si;
        CK_SESSION_HANDLE s = pick_session(in, w);
        (void)C_GetSessionInfo(s, u8(in) & 1 ? NULL : &si);
        break;
    }
    case 20:
        /* Stale handles stay in the world: later calls must refuse them. */
        (void)C_CloseAllSessions(u8(in) & 1 ? 3 : P11_SLOT_ID);
        break;
    default: {
        /* The agent's mood changes: a later listing, login or signature answers this. */
        uint8_t b = u8(in);
        p11_stub.sign_status = agent_answers[b % NELEM(agent_answers)];
        p11_stub.login_status = agent_answers[(b >> 4) % NELEM(agent_answers)];
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    world w;
    CK_C_INITIALIZE_ARGS args;
    uint8_t how = u8(&in);
    CK_RV rv;

    memset(&w, 0, sizeof(w));
    memset(&args, 0, sizeof(args));
    p11_stub.list_status = agent_answers[how % 3];
    p11_stub.sign_status = SG_OK;
    p11_stub.login_status = SG_OK;
    if (how & 0x10)
        args.flags = CKF_OS_LOCKING_OK;
    if (how & 0x20) {
        args.CreateMutex = app_create;
        args.DestroyMutex = app_destroy;
        args.LockMutex = app_lock;
        args.UnlockMutex = app_unlock;
    }
    rv = C_Initialize(how & 0x40 ? NULL : &args);
    if (rv != CKR_OK)
        return 0;
    for (int i = 0; i < 64 && in.n; i++)
        one_call(&in, &w);
    FUZZ_CHECK(C_Finalize(NULL) == CKR_OK);
    return 0;
}
